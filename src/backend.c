/*
 * backend.c - plugin loading, key checking and the host callbacks of the
 * backend ABI; mount routing and topic walls. See backend.h.
 */
#include "backend.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "inbox.h"
#include "log.h"
#include "topic.h"

#ifndef PKGLIBDIR
#define PKGLIBDIR "/usr/local/lib/mqgate"
#endif

/* ---- host callbacks (any thread) ---------------------------------------- */

static void host_log(struct mqgate_broker *hb, enum mqgate_log_level level,
		     const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void host_log(struct mqgate_broker *hb, enum mqgate_log_level level,
		     const char *fmt, ...)
{
	struct broker *b = (struct broker *)hb;
	va_list ap;

	va_start(ap, fmt);
	log_vmsg((enum log_level)level, b ? b->log_module : "backend", fmt, ap);
	va_end(ap);
}

static int host_deliver(struct mqgate_broker *hb, const struct mqgate_message *m)
{
	struct broker *b = (struct broker *)hb;

	if (!m || !m->topic || (m->payload_len && !m->payload))
		return -EINVAL;
	return inbox_push_message(b->inbox, b, m);
}

static void host_set_state(struct mqgate_broker *hb,
			   enum mqgate_broker_state state, const char *why)
{
	struct broker *b = (struct broker *)hb;

	if (inbox_push_state(b->inbox, b, state, why) == -ENOMEM)
		log_err(b->log_module, "out of memory reporting state");
}

static void host_publish_done(struct mqgate_broker *hb, uint64_t token,
			      enum mqgate_publish_result result,
			      const char *why)
{
	struct broker *b = (struct broker *)hb;

	if (inbox_push_done(b->inbox, b, token, result, why) == -ENOMEM)
		log_err(b->log_module, "out of memory completing publish %llu",
			(unsigned long long)token);
}

static const struct mqgate_host host_api = {
	.abi = MQGATE_BACKEND_ABI,
	.size = sizeof(struct mqgate_host),
	.log = host_log,
	.deliver = host_deliver,
	.set_state = host_set_state,
	.publish_done = host_publish_done,
};

/* ---- loading and checking ----------------------------------------------- */

const char *broker_plugin_dir(const struct conf *conf)
{
	const char *env = getenv("MQGATE_PLUGIN_DIR");

	if (conf && conf->server.plugin_dir && conf->server.plugin_dir[0])
		return conf->server.plugin_dir;
	if (env && env[0])
		return env;
	return PKGLIBDIR;
}

const char *broker_state_name(enum mqgate_broker_state s)
{
	switch (s) {
	case MQGATE_STATE_CONNECTED:
		return "connected";
	case MQGATE_STATE_CONNECTING:
		return "connecting";
	case MQGATE_STATE_DOWN:
		return "down";
	}
	return "down";
}

static void broker_free(struct broker *b)
{
	if (!b)
		return;
	if (b->instance)
		b->be->destroy(b->instance);
	for (size_t i = 0; i < b->nkeys; i++)
		free(b->owned ? b->owned[i] : NULL);
	free(b->owned);
	free(b->values);
	for (size_t i = 0; i < b->nin; i++)
		free(b->in_filters[i]);
	for (size_t i = 0; i < b->nout; i++)
		free(b->out_filters[i]);
	free(b->in_filters);
	free(b->out_filters);
	free(b->topics);
	if (b->dl)
		dlclose(b->dl);
	free(b->name);
	free(b);
}

static bool plugin_type_valid(const char *t)
{
	if (!t || !*t || strlen(t) > 32)
		return false;
	for (; *t; t++)
		if (!islower((unsigned char)*t) && !isdigit((unsigned char)*t) &&
		    *t != '_')
			return false;
	return true;
}

static int broker_open_plugin(struct broker *b, const struct conf *conf,
			      const char *dir, FILE *errs)
{
	const struct conf_broker *cb = b->conf;
	char path[PATH_MAX];
	const struct mqgate_backend *be;

	if (!plugin_type_valid(cb->type)) {
		fprintf(errs, "%s:%d: bad broker type '%s'\n", conf->file,
			cb->type_line, cb->type);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "%s/%s.so", dir, cb->type);
	b->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!b->dl) {
		fprintf(errs, "%s:%d: cannot load plugin for type '%s': %s\n",
			conf->file, cb->type_line, cb->type, dlerror());
		return -EINVAL;
	}
	be = dlsym(b->dl, MQGATE_BACKEND_SYMBOL);
	if (!be) {
		fprintf(errs, "%s:%d: %s is not an mqgate plugin (no %s)\n",
			conf->file, cb->type_line, path, MQGATE_BACKEND_SYMBOL);
		return -EINVAL;
	}
	if (be->abi != MQGATE_BACKEND_ABI ||
	    be->size < offsetof(struct mqgate_backend, destroy) +
			       sizeof(be->destroy)) {
		fprintf(errs,
			"%s:%d: plugin %s has ABI %u (size %u); this mqgate "
			"needs ABI %u (size >= %zu)\n",
			conf->file, cb->type_line, path, be->abi, be->size,
			MQGATE_BACKEND_ABI, sizeof(struct mqgate_backend));
		return -EINVAL;
	}
	if (!be->name || strcmp(be->name, cb->type) != 0 || !be->create ||
	    !be->start || !be->publish || !be->destroy || !be->keys) {
		fprintf(errs, "%s:%d: plugin %s is incomplete or not of type '%s'\n",
			conf->file, cb->type_line, path, cb->type);
		return -EINVAL;
	}
	b->be = be;
	return 0;
}

/* Finds the plugin key a config key names: NAME, or NAME_file for secrets. */
static int broker_find_key(const struct mqgate_backend *be, const char *name)
{
	for (int i = 0; be->keys[i].name; i++) {
		const struct mqgate_key *k = &be->keys[i];
		size_t n = strlen(k->name);

		if (strcmp(k->name, name) == 0)
			return i;
		if (k->type == MQGATE_KEY_SECRET && strncmp(name, k->name, n) == 0 &&
		    strcmp(name + n, "_file") == 0)
			return i;
	}
	return -1;
}

static void broker_resolve_path(struct broker *b, size_t i, const char *conf_file)
{
	char dirbuf[PATH_MAX], *dir, *joined;
	const char *p = b->values[i].str;

	if (!p || !*p || p[0] == '/')
		return;
	snprintf(dirbuf, sizeof(dirbuf), "%s", conf_file);
	dir = dirname(dirbuf);
	if (asprintf(&joined, "%s/%s", dir, p) < 0)
		return;
	free(b->owned[i]);
	b->owned[i] = joined;
	b->values[i].str = joined;
}

static int broker_check_keys(struct broker *b, const struct conf *conf,
			     FILE *errs)
{
	const struct conf_broker *cb = b->conf;
	const struct mqgate_backend *be = b->be;
	int *lines, bad = 0, idx;
	char err[256];
	struct mqgate_broker_conf bconf;

	while (be->keys[b->nkeys].name)
		b->nkeys++;
	b->values = calloc(b->nkeys + 1, sizeof(*b->values));
	b->owned = calloc(b->nkeys + 1, sizeof(*b->owned));
	lines = calloc(b->nkeys + 1, sizeof(*lines));
	if (!b->values || !b->owned || !lines) {
		free(lines);
		fprintf(errs, "%s: out of memory\n", conf->file);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cb->nkv; i++) {
		const struct conf_kv *kv = &cb->kv[i];

		idx = broker_find_key(be, kv->key);
		if (idx < 0) {
			fprintf(errs, "%s:%d: unknown key '%s' for a broker of type '%s'\n",
				conf->file, kv->line, kv->key, cb->type);
			bad = 1;
			continue;
		}
		if (lines[idx]) {
			fprintf(errs, "%s:%d: '%s' given twice (first on line %d)\n",
				conf->file, kv->line, kv->key, lines[idx]);
			bad = 1;
			continue;
		}
		lines[idx] = kv->line;
		if (conf_value_parse(&be->keys[idx], kv, &b->values[idx],
				     &b->owned[idx], err, sizeof(err)) < 0) {
			fprintf(errs, "%s:%d: %s\n", conf->file, kv->line, err);
			bad = 1;
		}
	}
	for (size_t i = 0; i < b->nkeys && !bad; i++) {
		const struct mqgate_key *k = &be->keys[i];
		struct conf_kv def = { (char *)k->name, (char *)k->def, cb->line };

		if (lines[i] || !k->def)
			continue;
		if (conf_value_parse(k, &def, &b->values[i], &b->owned[i], err,
				     sizeof(err)) < 0) {
			fprintf(errs, "%s:%d: default of '%s': %s\n", conf->file,
				cb->line, k->name, err);
			bad = 1;
		}
	}
	for (size_t i = 0; i < b->nkeys && !bad; i++)
		if (be->keys[i].type == MQGATE_KEY_PATH && b->values[i].set)
			broker_resolve_path(b, i, conf->file);
	if (!bad && be->check) {
		bconf = (struct mqgate_broker_conf){ cb->name, b->values,
						     b->topics, b->ntopics };
		err[0] = 0;
		idx = be->check(&bconf, err, sizeof(err));
		if (idx != -2) {
			int line = idx >= 0 && (size_t)idx < b->nkeys && lines[idx]
					   ? lines[idx]
					   : cb->line;
			fprintf(errs, "%s:%d: broker %s: %s\n", conf->file, line,
				cb->name, err[0] ? err : "invalid configuration");
			bad = 1;
		}
	}
	free(lines);
	return bad ? -EINVAL : 0;
}

static char *broker_join(const char *mount, const char *filter)
{
	char *s;

	if (asprintf(&s, "%s%s", mount, filter) < 0)
		return NULL;
	return s;
}

static int broker_build_walls(struct broker *b)
{
	const struct conf_broker *cb = b->conf;

	b->ntopics = cb->ntopics;
	b->topics = calloc(cb->ntopics + 1, sizeof(*b->topics));
	b->in_filters = calloc(cb->ntopics + 1, sizeof(char *));
	b->out_filters = calloc(cb->ntopics + 1, sizeof(char *));
	if (!b->topics || !b->in_filters || !b->out_filters)
		return -ENOMEM;
	for (size_t i = 0; i < cb->ntopics; i++) {
		const struct conf_topic *t = &cb->topics[i];

		b->topics[i] = (struct mqgate_topic){ t->filter, t->dir, t->qos };
		if (t->dir & MQGATE_DIR_IN) {
			b->in_filters[b->nin] = broker_join(b->mount, t->filter);
			if (!b->in_filters[b->nin++])
				return -ENOMEM;
		}
		if (t->dir & MQGATE_DIR_OUT) {
			b->out_filters[b->nout] = strdup(t->filter);
			if (!b->out_filters[b->nout++])
				return -ENOMEM;
		}
	}
	return 0;
}

int broker_set_load(const struct conf *conf, const char *plugin_dir,
		    FILE *errs, struct broker_set **out)
{
	struct broker_set *set;
	int bad = 0;

	if (!errs)
		errs = stderr;
	set = calloc(1, sizeof(*set));
	if (!set || !(set->v = calloc(conf->nbrokers + 1, sizeof(*set->v)))) {
		free(set);
		return -ENOMEM;
	}
	for (size_t i = 0; i < conf->nbrokers; i++) {
		const struct conf_broker *cb = &conf->brokers[i];
		struct broker *b = calloc(1, sizeof(*b));

		if (!b || !(b->name = strdup(cb->name))) {
			free(b);
			broker_set_free(set);
			return -ENOMEM;
		}
		set->v[set->n++] = b;
		b->conf = cb;
		b->type = cb->type;
		b->mount = cb->mount ? cb->mount : "";
		b->mount_len = strlen(b->mount);
		b->state = MQGATE_STATE_CONNECTING;
		snprintf(b->log_module, sizeof(b->log_module), "%s[%s]",
			 cb->type, cb->name);
		if (broker_build_walls(b) < 0) {
			broker_set_free(set);
			return -ENOMEM;
		}
		if (broker_open_plugin(b, conf, plugin_dir, errs) < 0 ||
		    broker_check_keys(b, conf, errs) < 0)
			bad = 1;
	}
	if (bad) {
		broker_set_free(set);
		return -EINVAL;
	}
	*out = set;
	return 0;
}

int broker_set_start(struct broker_set *set, struct inbox *inbox)
{
	char err[256];

	for (size_t i = 0; i < set->n; i++) {
		struct broker *b = set->v[i];
		struct mqgate_broker_conf *bconf = &b->bconf;
		int r;

		/* The ABI says conf outlives the instance: it lives in b. */
		*bconf = (struct mqgate_broker_conf){ b->conf->name, b->values,
						      b->topics, b->ntopics };
		b->inbox = inbox;
		err[0] = 0;
		b->instance = b->be->create(&host_api, (struct mqgate_broker *)b,
					    bconf, err, sizeof(err));
		if (!b->instance) {
			log_err(b->log_module, "cannot create: %s",
				err[0] ? err : "unknown error");
			return -EINVAL;
		}
		r = b->be->start(b->instance);
		if (r < 0) {
			log_err(b->log_module, "cannot start: %s", strerror(-r));
			return r;
		}
		log_info(b->log_module, "started (mount '%s', %zu topic lines)",
			 b->mount, b->ntopics);
	}
	return 0;
}

void broker_set_stop(struct broker_set *set)
{
	for (size_t i = 0; set && i < set->n; i++) {
		struct broker *b = set->v[i];

		if (b->instance)
			b->be->destroy(b->instance);
		b->instance = NULL;
	}
}

void broker_set_free(struct broker_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++)
		broker_free(set->v[i]);
	free(set->v);
	free(set);
}

/* ---- routing ------------------------------------------------------------ */

struct broker *broker_set_route(const struct broker_set *set,
				const char *topic, const char **broker_topic)
{
	struct broker *best = NULL;

	for (size_t i = 0; i < set->n; i++) {
		struct broker *b = set->v[i];

		if (strncmp(topic, b->mount, b->mount_len) != 0 ||
		    topic[b->mount_len] == '\0')
			continue;
		if (!best || b->mount_len > best->mount_len)
			best = b;
	}
	if (best && broker_topic)
		*broker_topic = topic + best->mount_len;
	return best;
}

bool broker_may_publish(const struct broker *b, const char *broker_topic)
{
	for (size_t i = 0; i < b->nout; i++)
		if (topic_matches(b->out_filters[i], broker_topic))
			return true;
	return false;
}

bool broker_set_may_subscribe(const struct broker_set *set, const char *filter)
{
	for (size_t i = 0; i < set->n; i++)
		for (size_t j = 0; j < set->v[i]->nin; j++)
			if (topic_filters_overlap(filter, set->v[i]->in_filters[j]))
				return true;
	return false;
}

bool broker_set_all_up(const struct broker_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->v[i]->state != MQGATE_STATE_CONNECTED)
			return false;
	return true;
}
