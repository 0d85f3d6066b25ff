/*
 * plugin_keys.c - the "testkeys" backend plugin for test_backend: one key
 * of every type, with defaults and ranges, and a check() that blames a
 * single key, no key, or an index outside its table, so the host's key
 * checking and FILE:LINE reporting can be tested without a network.
 * Instances do nothing but report CONNECTED from start(); `fail_create`
 * and `fail_start` make those steps fail. An instance owns only itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqgate/backend.h"

enum testkeys_key {
	TK_LABEL,       /* STRING, default "none" */
	TK_COUNT,       /* INT 1..10, default 3 */
	TK_BUFFER,      /* SIZE 1K..1G, default 64K */
	TK_TIMEOUT,     /* DURATION 0..1h, default 5s */
	TK_VERBOSE,     /* BOOL, default no */
	TK_TOKEN,       /* SECRET, token_file too, no default */
	TK_CERT,        /* PATH, default "default.pem" */
	TK_CA_FILE,     /* PATH, no default */
	TK_MODE,        /* STRING: "", fast, safe, or the check() cases */
	TK_LOW,         /* INT, default 0 */
	TK_HIGH,        /* INT, default 100; check(): low <= high */
	TK_FAIL_CREATE, /* BOOL */
	TK_FAIL_START,  /* BOOL */
};

static const struct mqgate_key testkeys_keys[] = {
	[TK_LABEL] = { "label", MQGATE_KEY_STRING, "none", 0, 0, "a label" },
	[TK_COUNT] = { "count", MQGATE_KEY_INT, "3", 1, 10, "how many" },
	[TK_BUFFER] = { "buffer", MQGATE_KEY_SIZE, "64K", 1024, 1 << 30,
			"buffer size" },
	[TK_TIMEOUT] = { "timeout", MQGATE_KEY_DURATION, "5s", 0, 3600000,
			 "a time" },
	[TK_VERBOSE] = { "verbose", MQGATE_KEY_BOOL, "no", 0, 0, "chatty" },
	[TK_TOKEN] = { "token", MQGATE_KEY_SECRET, NULL, 0, 0, "a secret" },
	[TK_CERT] = { "cert", MQGATE_KEY_PATH, "default.pem", 0, 0, "a path" },
	[TK_CA_FILE] = { "ca_file", MQGATE_KEY_PATH, NULL, 0, 0, "a path" },
	[TK_MODE] = { "mode", MQGATE_KEY_STRING, NULL, 0, 0, "fast or safe" },
	[TK_LOW] = { "low", MQGATE_KEY_INT, "0", 0, 0, "lower bound" },
	[TK_HIGH] = { "high", MQGATE_KEY_INT, "100", 0, 0, "upper bound" },
	[TK_FAIL_CREATE] = { "fail_create", MQGATE_KEY_BOOL, "no", 0, 0,
			     "create() fails" },
	[TK_FAIL_START] = { "fail_start", MQGATE_KEY_BOOL, "no", 0, 0,
			    "start() fails" },
	{ NULL, MQGATE_KEY_STRING, NULL, 0, 0, NULL },
};

struct testkeys {
	const struct mqgate_host *host;
	struct mqgate_broker *broker;
	bool fail_start;
};

/* mode: "" / fast / safe are fine; "broken" blames mode; "nowhere"
 * blames no key; "outside" returns an index past the table. low > high
 * blames no single key. */
static int testkeys_check(const struct mqgate_broker_conf *conf, char *err,
			  size_t errlen)
{
	const struct mqgate_value *v = conf->values;
	const char *mode = v[TK_MODE].set ? v[TK_MODE].str : "";

	if (strcmp(mode, "broken") == 0) {
		snprintf(err, errlen, "mode '%s' is broken", mode);
		return TK_MODE;
	}
	if (strcmp(mode, "nowhere") == 0) {
		snprintf(err, errlen, "something is wrong somewhere");
		return -1;
	}
	if (strcmp(mode, "outside") == 0) {
		snprintf(err, errlen, "blames a key that does not exist");
		return 1000;
	}
	if (strcmp(mode, "silent") == 0)
		return TK_MODE;   /* no message: the host says something */
	if (mode[0] && strcmp(mode, "fast") != 0 && strcmp(mode, "safe") != 0) {
		snprintf(err, errlen, "mode must be fast or safe");
		return TK_MODE;
	}
	if (v[TK_LOW].num > v[TK_HIGH].num) {
		snprintf(err, errlen, "low (%lld) is above high (%lld)",
			 (long long)v[TK_LOW].num, (long long)v[TK_HIGH].num);
		return -1;
	}
	return -2;
}

static void *testkeys_create(const struct mqgate_host *host,
			     struct mqgate_broker *broker,
			     const struct mqgate_broker_conf *conf, char *err,
			     size_t errlen)
{
	struct testkeys *tk;

	if (!host || host->abi != MQGATE_BACKEND_ABI ||
	    host->size < sizeof(struct mqgate_host) || !host->log ||
	    !host->deliver || !host->set_state || !host->publish_done) {
		snprintf(err, errlen, "the host's ABI is not what it says");
		return NULL;
	}
	if (conf->values[TK_FAIL_CREATE].num) {
		snprintf(err, errlen, "told to fail (fail_create)");
		return NULL;
	}
	tk = calloc(1, sizeof(*tk));
	if (!tk) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	tk->host = host;
	tk->broker = broker;
	tk->fail_start = conf->values[TK_FAIL_START].num != 0;
	return tk;
}

static int testkeys_start(void *instance)
{
	struct testkeys *tk = instance;

	if (tk->fail_start)
		return -EIO;
	tk->host->set_state(tk->broker, MQGATE_STATE_CONNECTED, "testkeys");
	return 0;
}

static int testkeys_publish(void *instance, const char *topic,
			    const void *payload, size_t len, int qos,
			    bool retain, uint64_t token)
{
	(void)instance;
	(void)topic;
	(void)payload;
	(void)len;
	(void)qos;
	(void)retain;
	(void)token;
	return -ENOTCONN;
}

static void testkeys_destroy(void *instance)
{
	free(instance);
}

__attribute__((visibility("default")))
const struct mqgate_backend mqgate_backend = {
	.abi = MQGATE_BACKEND_ABI,
	.size = sizeof(struct mqgate_backend),
	.name = "testkeys",
	.version = "1",
	.keys = testkeys_keys,
	.check = testkeys_check,
	.create = testkeys_create,
	.start = testkeys_start,
	.publish = testkeys_publish,
	.destroy = testkeys_destroy,
};
