/*
 * plugin_host.c - the fake host plugin unit tests drive a backend plugin
 * through. See plugin_host.h. Owns the dlopen handle, the parsed values,
 * the instance and the records of everything the plugin reported.
 */
#include "plugin_host.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"

#define PH_MAX_LOG 20000 /* log lines kept; later ones are only printed */

struct ph_log {
	enum mqgate_log_level level;
	char *text;
};

struct plugin_host {
	void *dl;
	const struct mqgate_backend *be;
	size_t nkeys;
	struct mqgate_value *values;
	char **owned;                   /* buffers values point into */
	char **raw;                     /* copies of the kv text */
	struct mqgate_broker_conf conf;
	void *instance;

	pthread_mutex_t lock;
	pthread_cond_t changed;
	/* under lock */
	enum mqgate_broker_state state;
	char state_why[160];
	size_t state_counts[3];
	struct ph_message *msgs;
	size_t nmsgs, capmsgs;
	struct ph_done *dones;
	size_t ndones, capdones;
	struct ph_log *logs;
	size_t nlogs, caplogs;
	int deliver_result;
};

static const char *ph_level_name(enum mqgate_log_level l)
{
	switch (l) {
	case MQGATE_LOG_ERR:
		return "ERR";
	case MQGATE_LOG_WARNING:
		return "WARNING";
	case MQGATE_LOG_NOTICE:
		return "NOTICE";
	case MQGATE_LOG_INFO:
		return "INFO";
	case MQGATE_LOG_DEBUG:
		return "DEBUG";
	}
	return "?";
}

/* Grows *v (elements of size sz) to hold one more; false on ENOMEM. */
static bool ph_grow(void **v, size_t n, size_t *cap, size_t sz)
{
	void *nv;
	size_t ncap;

	if (n < *cap)
		return true;
	ncap = *cap ? *cap * 2 : 16;
	nv = realloc(*v, ncap * sz);
	if (!nv)
		return false;
	*v = nv;
	*cap = ncap;
	return true;
}

/* ---- the host callbacks (any thread) ------------------------------------- */

static void ph_log_cb(struct mqgate_broker *b, enum mqgate_log_level level,
		      const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void ph_log_cb(struct mqgate_broker *b, enum mqgate_log_level level,
		      const char *fmt, ...)
{
	struct plugin_host *ph = (struct plugin_host *)b;
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "  [plugin %s] %s\n", ph_level_name(level), line);
	pthread_mutex_lock(&ph->lock);
	if (ph->nlogs < PH_MAX_LOG &&
	    ph_grow((void **)&ph->logs, ph->nlogs, &ph->caplogs,
		    sizeof(*ph->logs))) {
		ph->logs[ph->nlogs].level = level;
		ph->logs[ph->nlogs].text = strdup(line);
		if (ph->logs[ph->nlogs].text)
			ph->nlogs++;
	}
	pthread_cond_broadcast(&ph->changed);
	pthread_mutex_unlock(&ph->lock);
}

static int ph_deliver(struct mqgate_broker *b, const struct mqgate_message *m)
{
	struct plugin_host *ph = (struct plugin_host *)b;
	struct ph_message c = { 0 };
	unsigned char *payload;
	int r;

	if (!m || !m->topic || (m->payload_len && !m->payload))
		return -EINVAL;
	pthread_mutex_lock(&ph->lock);
	r = ph->deliver_result;
	pthread_mutex_unlock(&ph->lock);
	if (r)
		return r;
	c.topic = strdup(m->topic);
	payload = malloc(m->payload_len + 1);
	if (!c.topic || !payload) {
		free((char *)c.topic);
		free(payload);
		return -ENOMEM;
	}
	if (m->payload_len)
		memcpy(payload, m->payload, m->payload_len);
	payload[m->payload_len] = '\0';
	c.payload = payload;
	c.len = m->payload_len;
	c.qos = m->qos;
	c.retain = m->retain;
	c.ts_ms = m->ts_ms;
	pthread_mutex_lock(&ph->lock);
	if (!ph_grow((void **)&ph->msgs, ph->nmsgs, &ph->capmsgs,
		     sizeof(*ph->msgs))) {
		pthread_mutex_unlock(&ph->lock);
		free((char *)c.topic);
		free(payload);
		return -ENOMEM;
	}
	ph->msgs[ph->nmsgs++] = c;
	pthread_cond_broadcast(&ph->changed);
	pthread_mutex_unlock(&ph->lock);
	return 0;
}

static void ph_set_state(struct mqgate_broker *b,
			 enum mqgate_broker_state state, const char *why)
{
	struct plugin_host *ph = (struct plugin_host *)b;

	fprintf(stderr, "  [plugin state] %s%s%s\n",
		state == MQGATE_STATE_CONNECTED ? "connected" :
		state == MQGATE_STATE_CONNECTING ? "connecting" : "down",
		why ? ": " : "", why ? why : "");
	pthread_mutex_lock(&ph->lock);
	ph->state = state;
	snprintf(ph->state_why, sizeof(ph->state_why), "%s", why ? why : "");
	if ((unsigned)state < 3)
		ph->state_counts[state]++;
	pthread_cond_broadcast(&ph->changed);
	pthread_mutex_unlock(&ph->lock);
}

static void ph_publish_done(struct mqgate_broker *b, uint64_t token,
			    enum mqgate_publish_result result, const char *why)
{
	struct plugin_host *ph = (struct plugin_host *)b;

	pthread_mutex_lock(&ph->lock);
	if (ph_grow((void **)&ph->dones, ph->ndones, &ph->capdones,
		    sizeof(*ph->dones))) {
		struct ph_done *d = &ph->dones[ph->ndones++];

		d->token = token;
		d->result = result;
		snprintf(d->why, sizeof(d->why), "%s", why ? why : "");
	}
	pthread_cond_broadcast(&ph->changed);
	pthread_mutex_unlock(&ph->lock);
}

static const struct mqgate_host ph_api = {
	.abi = MQGATE_BACKEND_ABI,
	.size = sizeof(struct mqgate_host),
	.log = ph_log_cb,
	.deliver = ph_deliver,
	.set_state = ph_set_state,
	.publish_done = ph_publish_done,
};

/* ---- loading, configuring, running --------------------------------------- */

int64_t plugin_host_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct plugin_host *plugin_host_new(const char *path, char *err, size_t errlen)
{
	struct plugin_host *ph = calloc(1, sizeof(*ph));
	pthread_condattr_t ca;

	if (!ph) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&ph->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ph->changed, &ca);
	pthread_condattr_destroy(&ca);
	ph->state = MQGATE_STATE_CONNECTING;
	ph->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!ph->dl) {
		snprintf(err, errlen, "dlopen: %s", dlerror());
		goto fail;
	}
	ph->be = dlsym(ph->dl, MQGATE_BACKEND_SYMBOL);
	if (!ph->be) {
		snprintf(err, errlen, "no %s in %s", MQGATE_BACKEND_SYMBOL, path);
		goto fail;
	}
	if (ph->be->abi != MQGATE_BACKEND_ABI ||
	    ph->be->size < sizeof(struct mqgate_backend) || !ph->be->keys ||
	    !ph->be->create || !ph->be->start || !ph->be->publish ||
	    !ph->be->destroy) {
		snprintf(err, errlen, "%s: bad ABI %u or size %u, or incomplete",
			 path, ph->be->abi, ph->be->size);
		goto fail;
	}
	while (ph->be->keys[ph->nkeys].name)
		ph->nkeys++;
	ph->values = calloc(ph->nkeys + 1, sizeof(*ph->values));
	ph->owned = calloc(ph->nkeys + 1, sizeof(*ph->owned));
	ph->raw = calloc(ph->nkeys + 1, sizeof(*ph->raw));
	if (!ph->values || !ph->owned || !ph->raw) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	return ph;
fail:
	plugin_host_free(ph);
	return NULL;
}

const struct mqgate_backend *plugin_host_backend(const struct plugin_host *ph)
{
	return ph->be;
}

static void ph_clear_values(struct plugin_host *ph)
{
	if (!ph->values || !ph->owned || !ph->raw)
		return;
	for (size_t i = 0; i < ph->nkeys; i++) {
		free(ph->owned[i]);
		free(ph->raw[i]);
		ph->owned[i] = ph->raw[i] = NULL;
		memset(&ph->values[i], 0, sizeof(ph->values[i]));
	}
}

/* The key index for a config key name (NAME, or NAME_file for secrets). */
static int ph_find_key(const struct plugin_host *ph, const char *name,
		       size_t namelen)
{
	for (size_t i = 0; i < ph->nkeys; i++) {
		const struct mqgate_key *k = &ph->be->keys[i];
		size_t n = strlen(k->name);

		if (n == namelen && memcmp(k->name, name, n) == 0)
			return (int)i;
		if (k->type == MQGATE_KEY_SECRET && namelen == n + 5 &&
		    memcmp(k->name, name, n) == 0 &&
		    memcmp(name + n, "_file", 5) == 0)
			return (int)i;
	}
	return -1;
}

int plugin_host_configure(struct plugin_host *ph, const char *const *kv,
			  const struct mqgate_topic *topics, size_t ntopics,
			  char *err, size_t errlen)
{
	bool *given = calloc(ph->nkeys + 1, sizeof(*given));
	char key[128];

	if (!given) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ph_clear_values(ph);
	for (size_t j = 0; kv && kv[j]; j++) {
		const char *eq = strchr(kv[j], '=');
		struct conf_kv ckv;
		int i;

		if (!eq || (size_t)(eq - kv[j]) >= sizeof(key)) {
			snprintf(err, errlen, "bad test setting \"%s\"", kv[j]);
			goto fail;
		}
		i = ph_find_key(ph, kv[j], (size_t)(eq - kv[j]));
		if (i < 0) {
			snprintf(err, errlen, "unknown key '%.*s'",
				 (int)(eq - kv[j]), kv[j]);
			goto fail;
		}
		if (given[i]) {
			snprintf(err, errlen, "'%.*s' given twice",
				 (int)(eq - kv[j]), kv[j]);
			goto fail;
		}
		given[i] = true;
		memcpy(key, kv[j], (size_t)(eq - kv[j]));
		key[eq - kv[j]] = '\0';
		ph->raw[i] = strdup(eq + 1);
		if (!ph->raw[i]) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		ckv = (struct conf_kv){ key, ph->raw[i], 1 };
		if (conf_value_parse(&ph->be->keys[i], &ckv, &ph->values[i],
				     &ph->owned[i], err, errlen) < 0)
			goto fail;
	}
	for (size_t i = 0; i < ph->nkeys; i++) {
		const struct mqgate_key *k = &ph->be->keys[i];
		struct conf_kv ckv = { (char *)k->name, (char *)k->def, 1 };

		if (given[i] || !k->def)
			continue;
		if (conf_value_parse(k, &ckv, &ph->values[i], &ph->owned[i],
				     err, errlen) < 0)
			goto fail;
	}
	free(given);
	ph->conf = (struct mqgate_broker_conf){ "test", ph->values, topics,
						ntopics };
	return 0;
fail:
	free(given);
	return -EINVAL;
}

int plugin_host_check(struct plugin_host *ph, char *err, size_t errlen)
{
	err[0] = '\0';
	if (!ph->be->check)
		return -2;
	return ph->be->check(&ph->conf, err, errlen);
}

int plugin_host_start(struct plugin_host *ph, char *err, size_t errlen)
{
	int r;

	err[0] = '\0';
	if (ph->instance)
		return -EALREADY;
	ph->instance = ph->be->create(&ph_api, (struct mqgate_broker *)ph,
				      &ph->conf, err, errlen);
	if (!ph->instance)
		return -EINVAL;
	r = ph->be->start(ph->instance);
	if (r < 0)
		snprintf(err, errlen, "start: %s", strerror(-r));
	return r;
}

void plugin_host_stop(struct plugin_host *ph)
{
	if (ph && ph->instance) {
		ph->be->destroy(ph->instance);
		ph->instance = NULL;
	}
}

int plugin_host_publish(struct plugin_host *ph, const char *topic,
			const void *payload, size_t len, int qos, bool retain,
			uint64_t token)
{
	if (!ph->instance)
		return -ENOTCONN;
	return ph->be->publish(ph->instance, topic, payload, len, qos, retain,
			       token);
}

void plugin_host_clear(struct plugin_host *ph)
{
	pthread_mutex_lock(&ph->lock);
	for (size_t i = 0; i < ph->nmsgs; i++) {
		free((char *)ph->msgs[i].topic);
		free((unsigned char *)ph->msgs[i].payload);
	}
	for (size_t i = 0; i < ph->nlogs; i++)
		free(ph->logs[i].text);
	ph->nmsgs = ph->ndones = ph->nlogs = 0;
	pthread_mutex_unlock(&ph->lock);
}

void plugin_host_free(struct plugin_host *ph)
{
	if (!ph)
		return;
	plugin_host_stop(ph);
	plugin_host_clear(ph);
	free(ph->msgs);
	free(ph->dones);
	free(ph->logs);
	ph_clear_values(ph);
	free(ph->values);
	free(ph->owned);
	free(ph->raw);
	if (ph->dl)
		dlclose(ph->dl);
	pthread_cond_destroy(&ph->changed);
	pthread_mutex_destroy(&ph->lock);
	free(ph);
}

/* ---- records and waits --------------------------------------------------- */

/* Waits on changed until pred(ph, arg) holds; the lock is held. */
static int ph_wait(struct plugin_host *ph,
		   bool (*pred)(struct plugin_host *ph, const void *arg),
		   const void *arg, int timeout_ms)
{
	struct timespec ts;
	int r = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ph->lock);
	while (!pred(ph, arg)) {
		if (pthread_cond_timedwait(&ph->changed, &ph->lock, &ts) ==
		    ETIMEDOUT) {
			r = pred(ph, arg) ? 0 : -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&ph->lock);
	return r;
}

static bool ph_state_is(struct plugin_host *ph, const void *arg)
{
	return ph->state == *(const enum mqgate_broker_state *)arg;
}

static bool ph_state_is_not(struct plugin_host *ph, const void *arg)
{
	return ph->state != *(const enum mqgate_broker_state *)arg;
}

int plugin_host_wait_state(struct plugin_host *ph,
			   enum mqgate_broker_state state, int timeout_ms)
{
	return ph_wait(ph, ph_state_is, &state, timeout_ms);
}

int plugin_host_wait_state_not(struct plugin_host *ph,
			       enum mqgate_broker_state state, int timeout_ms)
{
	return ph_wait(ph, ph_state_is_not, &state, timeout_ms);
}

enum mqgate_broker_state plugin_host_state(struct plugin_host *ph, char *why,
					   size_t whylen)
{
	enum mqgate_broker_state s;

	pthread_mutex_lock(&ph->lock);
	s = ph->state;
	if (why && whylen)
		snprintf(why, whylen, "%s", ph->state_why);
	pthread_mutex_unlock(&ph->lock);
	return s;
}

size_t plugin_host_state_count(struct plugin_host *ph,
			       enum mqgate_broker_state state)
{
	size_t n = 0;

	pthread_mutex_lock(&ph->lock);
	if ((unsigned)state < 3)
		n = ph->state_counts[state];
	pthread_mutex_unlock(&ph->lock);
	return n;
}

static bool ph_has_messages(struct plugin_host *ph, const void *arg)
{
	return ph->nmsgs >= *(const size_t *)arg;
}

int plugin_host_wait_messages(struct plugin_host *ph, size_t n, int timeout_ms)
{
	return ph_wait(ph, ph_has_messages, &n, timeout_ms);
}

size_t plugin_host_message_count(struct plugin_host *ph)
{
	size_t n;

	pthread_mutex_lock(&ph->lock);
	n = ph->nmsgs;
	pthread_mutex_unlock(&ph->lock);
	return n;
}

bool plugin_host_message(struct plugin_host *ph, size_t i,
			 struct ph_message *out)
{
	bool ok;

	pthread_mutex_lock(&ph->lock);
	ok = i < ph->nmsgs;
	if (ok)
		*out = ph->msgs[i];
	pthread_mutex_unlock(&ph->lock);
	return ok;
}

long plugin_host_find_message(struct plugin_host *ph, const char *topic,
			      size_t from)
{
	long found = -1;

	pthread_mutex_lock(&ph->lock);
	for (size_t i = from; i < ph->nmsgs; i++)
		if (strcmp(ph->msgs[i].topic, topic) == 0) {
			found = (long)i;
			break;
		}
	pthread_mutex_unlock(&ph->lock);
	return found;
}

static const struct ph_done *ph_find_done(struct plugin_host *ph,
					  uint64_t token)
{
	for (size_t i = 0; i < ph->ndones; i++)
		if (ph->dones[i].token == token)
			return &ph->dones[i];
	return NULL;
}

static bool ph_has_done(struct plugin_host *ph, const void *arg)
{
	return ph_find_done(ph, *(const uint64_t *)arg) != NULL;
}

int plugin_host_wait_done(struct plugin_host *ph, uint64_t token,
			  int timeout_ms, struct ph_done *out)
{
	int r = ph_wait(ph, ph_has_done, &token, timeout_ms);

	if (r == 0 && out) {
		pthread_mutex_lock(&ph->lock);
		*out = *ph_find_done(ph, token);
		pthread_mutex_unlock(&ph->lock);
	}
	return r;
}

size_t plugin_host_done_count(struct plugin_host *ph, uint64_t token)
{
	size_t n = 0;

	pthread_mutex_lock(&ph->lock);
	for (size_t i = 0; i < ph->ndones; i++)
		if (ph->dones[i].token == token)
			n++;
	pthread_mutex_unlock(&ph->lock);
	return n;
}

size_t plugin_host_done_total(struct plugin_host *ph)
{
	size_t n;

	pthread_mutex_lock(&ph->lock);
	n = ph->ndones;
	pthread_mutex_unlock(&ph->lock);
	return n;
}

static size_t ph_count_log_locked(struct plugin_host *ph, const char *needle)
{
	size_t n = 0;

	for (size_t i = 0; i < ph->nlogs; i++)
		if (strstr(ph->logs[i].text, needle))
			n++;
	return n;
}

static bool ph_has_log(struct plugin_host *ph, const void *arg)
{
	return ph_count_log_locked(ph, arg) > 0;
}

int plugin_host_wait_log(struct plugin_host *ph, const char *needle,
			 int timeout_ms)
{
	return ph_wait(ph, ph_has_log, needle, timeout_ms);
}

size_t plugin_host_log_count(struct plugin_host *ph, const char *needle)
{
	size_t n;

	pthread_mutex_lock(&ph->lock);
	n = ph_count_log_locked(ph, needle);
	pthread_mutex_unlock(&ph->lock);
	return n;
}

void plugin_host_set_deliver_result(struct plugin_host *ph, int r)
{
	pthread_mutex_lock(&ph->lock);
	ph->deliver_result = r;
	pthread_mutex_unlock(&ph->lock);
}
