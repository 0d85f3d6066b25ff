/*
 * fuzz_conf.c - libFuzzer target for conf.c. The input is a config file
 * loaded with conf_load_string() (messages go to /dev/null). A loaded
 * conf must be complete: every string set, at least one listener, every
 * broker with a type, a mount and a topic line, no two brokers on the same
 * mount; a failed load leaves *out alone. The plugin keys of each broker
 * are then run through conf_value_parse() as every key type (SECRET only
 * in its direct form: the fuzzer must not pick files to read). Any
 * violation aborts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                    \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__,   \
				#cond);                                      \
			abort();                                             \
		}                                                            \
	} while (0)

static FILE *fuzz_null;

static void fuzz_strlist(const struct conf_strlist *l)
{
	FUZZ_ASSERT(l->n == 0 || l->v);
	for (size_t i = 0; i < l->n; i++)
		FUZZ_ASSERT(l->v[i] && l->v[i][0]);
}

/* Every plugin key as every type: no crash, and the value is consistent. */
static void fuzz_values(const struct conf_broker *b)
{
	static const enum mqgate_key_type types[] = {
		MQGATE_KEY_STRING, MQGATE_KEY_INT, MQGATE_KEY_SIZE,
		MQGATE_KEY_DURATION, MQGATE_KEY_BOOL, MQGATE_KEY_SECRET,
		MQGATE_KEY_PATH,
	};

	for (size_t i = 0; i < b->nkv; i++) {
		const struct conf_kv *kv = &b->kv[i];

		FUZZ_ASSERT(kv->key && kv->key[0] && kv->value);
		for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
			struct mqgate_key k = { kv->key, types[t], NULL,
						t % 2 ? -100 : 0, t % 2 ? 100 : 0,
						"" };
			struct mqgate_value v;
			char err[128], *owned = NULL;
			int r;

			err[0] = '\0';
			r = conf_value_parse(&k, kv, &v, &owned, err,
					     sizeof(err));
			FUZZ_ASSERT(r == 0 || r == -EINVAL);
			FUZZ_ASSERT(r == 0 || err[0]);
			FUZZ_ASSERT(owned == NULL); /* direct form only */
			FUZZ_ASSERT(v.str);
			if (r == 0 && (k.min || k.max) &&
			    types[t] != MQGATE_KEY_STRING &&
			    types[t] != MQGATE_KEY_SECRET &&
			    types[t] != MQGATE_KEY_PATH &&
			    types[t] != MQGATE_KEY_BOOL)
				FUZZ_ASSERT(v.num >= k.min && v.num <= k.max);
			if (r == 0 && types[t] == MQGATE_KEY_BOOL)
				FUZZ_ASSERT(v.num == 0 || v.num == 1);
		}
	}
}

static void fuzz_check(const struct conf *c)
{
	const struct conf_server *s = &c->server;
	const struct conf_auth *a = &c->auth;

	FUZZ_ASSERT(c->file && strcmp(c->file, "fuzz.conf") == 0);
	FUZZ_ASSERT(s->nlisten >= 1);
	for (size_t i = 0; i < s->nlisten; i++) {
		const struct conf_listen *l = &s->listen[i];

		FUZZ_ASSERT(l->host && l->host[0]);
		if (l->kind == LISTEN_UNIX)
			FUZZ_ASSERT(l->port == 0 && l->host[0] == '/');
		else
			FUZZ_ASSERT(l->port >= 1 && l->port <= 65535);
	}
	FUZZ_ASSERT(s->docroot && s->tls_cert_file && s->tls_key_file &&
		    s->plugin_dir && s->user);
	FUZZ_ASSERT(!s->tls_cert_file[0] == !s->tls_key_file[0]);
	FUZZ_ASSERT(s->queue >= 1 && s->queue_bytes >= 1024);
	FUZZ_ASSERT(s->max_clients >= 1 && s->max_message >= 1);
	FUZZ_ASSERT(s->keepalive_ms >= 0);
	FUZZ_ASSERT(s->publish_rate == 0 || s->publish_rate_ms > 0);
	FUZZ_ASSERT(s->slow_client == SLOW_CLIENT_DROP_OLDEST ||
		    s->slow_client == SLOW_CLIENT_CONFLATE ||
		    s->slow_client == SLOW_CLIENT_DISCONNECT);
	fuzz_strlist(&s->origins);
	fuzz_strlist(&s->trusted_proxies);
	fuzz_strlist(&a->anonymous_subscribe);
	fuzz_strlist(&a->anonymous_publish);
	FUZZ_ASSERT(a->anonymous_subscribe.n == 0 || a->anonymous_subscribe_set);
	FUZZ_ASSERT(a->anonymous_publish.n == 0 || a->anonymous_publish_set);
	FUZZ_ASSERT(!(a->jwt_secret && a->jwt_public_key));
	FUZZ_ASSERT(a->jwt_audience && a->jwt_issuer);
	FUZZ_ASSERT(a->jwt_subscribe_claim && a->jwt_subscribe_claim[0]);
	FUZZ_ASSERT(a->jwt_publish_claim && a->jwt_publish_claim[0]);
	for (size_t i = 0; i < c->nbrokers; i++) {
		const struct conf_broker *b = &c->brokers[i];
		size_t ml;

		FUZZ_ASSERT(b->name && b->name[0] && b->type && b->type[0]);
		FUZZ_ASSERT(b->mount && b->ntopics >= 1);
		ml = strlen(b->mount);
		FUZZ_ASSERT(ml == 0 || b->mount[ml - 1] == '/');
		FUZZ_ASSERT(!strpbrk(b->mount, "+#"));
		for (size_t j = 0; j < b->ntopics; j++) {
			FUZZ_ASSERT(b->topics[j].filter);
			FUZZ_ASSERT(b->topics[j].qos >= 0 &&
				    b->topics[j].qos <= 2);
			FUZZ_ASSERT(b->topics[j].dir >= MQGATE_DIR_IN &&
				    b->topics[j].dir <= MQGATE_DIR_BOTH);
		}
		for (size_t j = 0; j < i; j++) {
			FUZZ_ASSERT(strcmp(c->brokers[j].name, b->name) != 0);
			FUZZ_ASSERT(strcmp(c->brokers[j].mount, b->mount) != 0);
		}
		fuzz_values(b);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf *c = (struct conf *)&fuzz_null; /* must stay untouched */
	int r;

	if (!fuzz_null) {
		fuzz_null = fopen("/dev/null", "w");
		if (!fuzz_null)
			abort();
	}
	r = conf_load_string("fuzz.conf", (const char *)data, size, fuzz_null,
			     &c);
	if (r < 0) {
		FUZZ_ASSERT(r == -EINVAL || r == -ENOMEM);
		FUZZ_ASSERT(c == (struct conf *)&fuzz_null);
		return 0;
	}
	FUZZ_ASSERT(r == 0 && c);
	fuzz_check(c);
	conf_free(c);
	return 0;
}
