/*
 * test_publish.c - browser publishes without a network: the checks of a
 * request (topic, payload, qos, retain, encoding: bad_request), the walls
 * and mounts and the ACL (forbidden), the max_message bound (too_large),
 * the per-session token bucket (rate_limited, refilled by moving the
 * session's rate.ms back instead of sleeping), and the completion path
 * with the loopback plugin started through the real inbox and hub: the
 * reply queued on the session as a WebSocket frame, what each broker
 * result becomes, the fail modes, completions after the broker stops,
 * the in-flight bounds, and requesters that go away first.
 * The HTTP reply (http_publish_reply) needs an lws connection and is not
 * exercised; only its detaching is.
 * Uses the loopback plugin (MQGATE_PLUGIN_DIR, set by make check).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "check.h"
#include "conf.h"
#include "hub.h"
#include "inbox.h"
#include "metrics.h"
#include "msg.h"
#include "publish.h"
#include "session.h"

static struct conf *conf;
static struct broker_set *brokers;
static char why[512];

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* conf + brokers + hub + inbox as the daemon has them; with start, the
 * brokers run and their CONNECTED state is applied. */
static void setup(const char *text, bool start)
{
	if (conf_load_string("pub.conf", text, strlen(text), stderr, &conf) < 0 ||
	    broker_set_load(conf, broker_plugin_dir(conf), stderr, &brokers) < 0) {
		fprintf(stderr, "setup failed (MQGATE_PLUGIN_DIR=%s)\n",
			getenv("MQGATE_PLUGIN_DIR") ? getenv("MQGATE_PLUGIN_DIR") : "");
		exit(99);
	}
	msg_set_epoch(1000);
	if (hub_init(conf) < 0)
		exit(99);
	hub.brokers = brokers;
	hub.inbox = inbox_new(1000, 1 << 20, NULL, NULL);
	if (!hub.inbox)
		exit(99);
	if (start) {
		if (broker_set_start(brokers, hub.inbox) < 0)
			exit(99);
		hub_drain_inbox();
		if (!broker_set_all_up(brokers)) {
			fprintf(stderr, "brokers not connected after start\n");
			exit(99);
		}
	}
}

static void teardown(void)
{
	broker_set_free(brokers);   /* completes what is still pending */
	brokers = NULL;
	hub.brokers = NULL;
	hub_drain_inbox();
	hub_fini();
	inbox_free(hub.inbox);
	conf_free(conf);
	conf = NULL;
	memset(&hub, 0, sizeof(hub));
}

/* Submits the JSON request from session s (which is also the rate bucket)
 * with the ACL acl (NULL: the anonymous one) and reply id id_json. */
static enum proto_code submit_as(struct session *s, const struct acl *acl,
				 const char *id_json, const char *json)
{
	cJSON *req = cJSON_Parse(json);
	struct publish_origin origin = { .session = s, .id_json = id_json };
	enum proto_code c;

	if (!req) {
		fprintf(stderr, "bad JSON in the test: %s\n", json);
		exit(99);
	}
	why[0] = 0;
	c = publish_submit(req, acl ? acl : &hub.anonymous, s ? &s->rate : NULL,
			   &origin, why, sizeof(why));
	cJSON_Delete(req);
	return c;
}

static enum proto_code submit(struct session *s, const char *json)
{
	return submit_as(s, NULL, "1", json);
}

/* The JSON texts of the WebSocket frames queued on s, one per line;
 * drains them. Checks each frame's header. */
static const char *frames(struct session *s)
{
	static char out[1 << 16];
	size_t o = 0;

	out[0] = 0;
	for (struct frame *f = s->ctrl_head; f; f = f->next) {
		size_t hl = 2, len;

		CHECK(f->len >= 2);
		if (f->len < 2)
			continue;
		CHECK_INT(f->data[0], 0x81);       /* FIN, text */
		len = f->data[1];
		if (len == 126) {
			hl = 4;
			len = (size_t)f->data[2] << 8 | f->data[3];
		}
		CHECK(len < 127);
		CHECK_INT(hl + len, f->len);
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%.*s\n",
				      (int)(f->len - hl), (const char *)f->data + hl);
	}
	session_clear_output(s);
	return out;
}

/* Drains the inbox until n frames wait on s (or 5 s pass); returns them. */
static const char *wait_frames(struct session *s, size_t n)
{
	int64_t until = now_ms() + 5000;

	for (;;) {
		hub_drain_inbox();
		if (s->nctrl >= n || now_ms() > until)
			break;
		usleep(1000);
	}
	CHECK_INT(s->nctrl, n);
	return frames(s);
}

/* ---- checks of the request ---------------------------------------------- */

static void test_validation(void)
{
	static const struct {
		const char *json, *why;
	} bad[] = {
		{ "{}", "'topic' must be a string" },
		{ "{\"topic\":5,\"payload\":1}", "'topic' must be a string" },
		{ "{\"topic\":null,\"payload\":1}", "'topic' must be a string" },
		{ "{\"topic\":[\"cmd/a\"],\"payload\":1}", "'topic' must be a string" },
		{ "{\"topic\":\"cmd/+\",\"payload\":1}", NULL },
		{ "{\"topic\":\"cmd/#\",\"payload\":1}", NULL },
		{ "{\"topic\":\"cmd/a+\",\"payload\":1}", NULL },
		{ "{\"topic\":\"\",\"payload\":1}", NULL },
		{ "{\"topic\":\"cmd/a\"}", "'payload' is missing" },
		{ "{\"topic\":\"cmd/a\",\"payload\":1,\"qos\":2}", "'qos' must be 0 or 1" },
		{ "{\"topic\":\"cmd/a\",\"payload\":1,\"qos\":-1}", "'qos' must be 0 or 1" },
		{ "{\"topic\":\"cmd/a\",\"payload\":1,\"qos\":0.5}", "'qos' must be 0 or 1" },
		{ "{\"topic\":\"cmd/a\",\"payload\":1,\"qos\":\"1\"}", "'qos' must be 0 or 1" },
		{ "{\"topic\":\"cmd/a\",\"payload\":1,\"qos\":true}", "'qos' must be 0 or 1" },
		{ "{\"topic\":\"cmd/a\",\"payload\":1,\"qos\":null}", "'qos' must be 0 or 1" },
		{ "{\"topic\":\"cmd/a\",\"payload\":1,\"retain\":\"true\"}",
		  "'retain' must be true or false" },
		{ "{\"topic\":\"cmd/a\",\"payload\":1,\"retain\":1}",
		  "'retain' must be true or false" },
		{ "{\"topic\":\"cmd/a\",\"payload\":1,\"retain\":null}",
		  "'retain' must be true or false" },
		{ "{\"topic\":\"cmd/a\",\"payload\":\"AA==\",\"encoding\":\"hex\"}",
		  "'encoding' must be \"base64\"" },
		{ "{\"topic\":\"cmd/a\",\"payload\":\"AA==\",\"encoding\":\"BASE64\"}",
		  "'encoding' must be \"base64\"" },
		{ "{\"topic\":\"cmd/a\",\"payload\":\"AA==\",\"encoding\":1}",
		  "'encoding' must be \"base64\"" },
		{ "{\"topic\":\"cmd/a\",\"payload\":\"@@@\",\"encoding\":\"base64\"}", NULL },
		{ "{\"topic\":\"cmd/a\",\"payload\":5,\"encoding\":\"base64\"}", NULL },
	};
	struct session *s;
	uint64_t before;

	setup("[server]\nmax_message = 16\npublish_rate = 0\n"
	      "[auth]\nanonymous_publish = #\n"
	      "[broker lb]\ntype = loopback\ntopic = cmd/# out\ntopic = sensors/# in\n",
	      false);
	s = hub_session_new(SESSION_WS, NULL);
	before = metrics.publishes[METRICS_PUB_BAD_REQUEST];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum proto_code c = submit(s, bad[i].json);

		CHECK_INT(c, PROTO_BAD_REQUEST);
		if (bad[i].why)
			CHECK_STR(why, bad[i].why);
		else
			CHECK(why[0] != 0);
		if (c != PROTO_BAD_REQUEST || (bad[i].why && strcmp(why, bad[i].why)))
			fprintf(stderr, "  request: %s\n", bad[i].json);
	}
	CHECK_INT(metrics.publishes[METRICS_PUB_BAD_REQUEST] - before,
		  sizeof(bad) / sizeof(bad[0]));
	/* refused at once: nothing pending, nothing queued (ws.c replies) */
	CHECK_INT(s->pending_publishes, 0);
	CHECK(!session_has_output(s));

	/* Valid ones get past every check: the broker is not started. */
	CHECK_INT(submit(s, "{\"topic\":\"cmd/a\",\"payload\":{\"on\":true},"
			    "\"qos\":1,\"retain\":true}"), PROTO_UNAVAILABLE);
	CHECK_STR(why, "broker lb is not connected");
	CHECK_INT(submit(s, "{\"topic\":\"cmd/a\",\"payload\":null,\"qos\":0,"
			    "\"retain\":false}"), PROTO_UNAVAILABLE);
	CHECK_INT(submit(s, "{\"topic\":\"cmd/a\",\"payload\":\"AA==\","
			    "\"encoding\":\"base64\",\"qos\":1.0}"), PROTO_UNAVAILABLE);

	/* max_message = 16 bytes, counted as sent to the broker */
	CHECK_INT(submit(s, "{\"topic\":\"cmd/a\",\"payload\":\"0123456789abcdef\"}"),
		  PROTO_UNAVAILABLE);                  /* 16: fits */
	before = metrics.publishes[METRICS_PUB_TOO_LARGE];
	CHECK_INT(submit(s, "{\"topic\":\"cmd/a\",\"payload\":\"0123456789abcdefg\"}"),
		  PROTO_TOO_LARGE);                    /* 17 */
	CHECK_STR(why, "payload of 17 bytes is over max_message (16)");
	CHECK_INT(submit(s, "{\"topic\":\"cmd/a\",\"payload\":{\"k\":\"0123456789ab\"}}"),
		  PROTO_TOO_LARGE);                    /* compact JSON: 20 */
	CHECK_INT(submit(s, "{\"topic\":\"cmd/a\",\"payload\":[1, 2, 3, 4, 5, 6]}"),
		  PROTO_UNAVAILABLE);                  /* compact: 13 */
	CHECK_INT(submit(s, "{\"topic\":\"cmd/a\",\"payload\":\"AAAAAAAAAAAAAAAAAAAAAAAA\","
			    "\"encoding\":\"base64\"}"), PROTO_TOO_LARGE); /* 18 */
	CHECK_INT(submit(s, "{\"topic\":\"cmd/a\",\"payload\":\"AAAAAAAAAAAAAAAAAAAAAA==\","
			    "\"encoding\":\"base64\"}"), PROTO_UNAVAILABLE); /* 16 */
	CHECK_INT(submit(s, "{\"topic\":\"cmd/a\",\"payload\":\"\\u00e9\\u00e9\\u00e9"
			    "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"}"),
		  PROTO_TOO_LARGE);                    /* 9 chars, 18 UTF-8 bytes */
	CHECK_INT(metrics.publishes[METRICS_PUB_TOO_LARGE] - before, 4);
	hub_session_free(s);
	teardown();
}

/* Walls, mounts and the ACL: forbidden, whatever else the request is. */
static void test_walls_and_acl(void)
{
	static char lamp[] = "home/cmd/lamp", plant_all[] = "plant/#";
	static char *pub[] = { lamp, plant_all };
	struct acl narrow = { .pub = pub, .npub = 2 };
	struct acl none = { 0 };
	struct session *s;
	uint64_t before;

	setup("[server]\npublish_rate = 0\n[auth]\nanonymous_publish = #\n"
	      "[broker home]\ntype = loopback\nmount = home/\n"
	      "topic = cmd/# out\ntopic = sensors/# in\n"
	      "[broker plant]\ntype = loopback\nmount = plant/\ntopic = line1/# both\n",
	      false);
	s = hub_session_new(SESSION_WS, NULL);
	before = metrics.publishes[METRICS_PUB_FORBIDDEN];
	/* inside an out/both wall: past the check (then not connected) */
	CHECK_INT(submit(s, "{\"topic\":\"home/cmd/x\",\"payload\":1}"), PROTO_UNAVAILABLE);
	CHECK_STR(why, "broker home is not connected");
	CHECK_INT(submit(s, "{\"topic\":\"plant/line1/a/b\",\"payload\":1}"),
		  PROTO_UNAVAILABLE);
	CHECK_STR(why, "broker plant is not connected");
	/* an in-only wall, outside the walls, or under no mount */
	CHECK_INT(submit(s, "{\"topic\":\"home/sensors/x\",\"payload\":1}"), PROTO_FORBIDDEN);
	CHECK_STR(why, "not allowed to publish to home/sensors/x");
	CHECK_INT(submit(s, "{\"topic\":\"home/other\",\"payload\":1}"), PROTO_FORBIDDEN);
	CHECK_INT(submit(s, "{\"topic\":\"plant/line2/a\",\"payload\":1}"), PROTO_FORBIDDEN);
	CHECK_INT(submit(s, "{\"topic\":\"cmd/x\",\"payload\":1}"), PROTO_FORBIDDEN);
	CHECK_STR(why, "not allowed to publish to cmd/x");
	CHECK_INT(submit(s, "{\"topic\":\"home/\",\"payload\":1}"), PROTO_FORBIDDEN);
	CHECK_INT(submit(s, "{\"topic\":\"homes/cmd/x\",\"payload\":1}"), PROTO_FORBIDDEN);
	/* a forbidden topic is forbidden even when the rest is fine */
	CHECK_INT(submit(s, "{\"topic\":\"home/sensors/x\",\"payload\":\"x\","
			    "\"qos\":1,\"retain\":true}"), PROTO_FORBIDDEN);
	CHECK_INT(metrics.publishes[METRICS_PUB_FORBIDDEN] - before, 7);

	/* The ACL narrows inside the walls. */
	CHECK_INT(submit_as(s, &narrow, "1", "{\"topic\":\"home/cmd/lamp\",\"payload\":1}"),
		  PROTO_UNAVAILABLE);
	CHECK_INT(submit_as(s, &narrow, "1", "{\"topic\":\"home/cmd/fan\",\"payload\":1}"),
		  PROTO_FORBIDDEN);
	CHECK_STR(why, "not allowed to publish to home/cmd/fan");
	CHECK_INT(submit_as(s, &narrow, "1", "{\"topic\":\"plant/line1/x\",\"payload\":1}"),
		  PROTO_UNAVAILABLE);
	/* the ACL cannot open a wall */
	CHECK_INT(submit_as(s, &narrow, "1", "{\"topic\":\"plant/line2/x\",\"payload\":1}"),
		  PROTO_FORBIDDEN);
	CHECK_INT(submit_as(s, &none, "1", "{\"topic\":\"home/cmd/lamp\",\"payload\":1}"),
		  PROTO_FORBIDDEN);
	hub_session_free(s);
	teardown();

	/* The anonymous default (no jwt, no anonymous_publish): publish
	 * nowhere. */
	setup("[broker home]\ntype = loopback\ntopic = # both\n", false);
	s = hub_session_new(SESSION_WS, NULL);
	CHECK_INT(hub.anonymous.npub, 0);
	CHECK_INT(submit(s, "{\"topic\":\"a\",\"payload\":1}"), PROTO_FORBIDDEN);
	hub_session_free(s);
	teardown();

	/* anonymous_publish lists the topics */
	setup("[auth]\nanonymous_publish = a/+\n"
	      "[broker home]\ntype = loopback\ntopic = # both\n", false);
	s = hub_session_new(SESSION_WS, NULL);
	CHECK_INT(submit(s, "{\"topic\":\"a/b\",\"payload\":1}"), PROTO_UNAVAILABLE);
	CHECK_INT(submit(s, "{\"topic\":\"a/b/c\",\"payload\":1}"), PROTO_FORBIDDEN);
	CHECK_INT(submit(s, "{\"topic\":\"b\",\"payload\":1}"), PROTO_FORBIDDEN);
	hub_session_free(s);
	teardown();
}

/* ---- rate --------------------------------------------------------------- */

/* The bucket refills by the time since rate.ms: a rate.ms the clock
 * never reaches stops the refill, so the checks do not depend on how fast
 * the test runs; rewinding it by ms is the same as pausing that long. */
static void freeze(struct session *s)
{
	s->rate.ms = INT64_MAX / 2;
}

static void rewind_ms(struct session *s, int64_t ms)
{
	s->rate.ms = inbox_now_ms() - ms;
}

static void test_rate(void)
{
	static const char ok[] = "{\"topic\":\"cmd/a\",\"payload\":1}";
	struct session *s, *t;
	uint64_t before;

	/* 2 per second, bursts of 3; the broker is not started, so a publish
	 * that gets its token ends as unavailable */
	setup("[server]\npublish_rate = 2/s\npublish_burst = 3\n"
	      "[auth]\nanonymous_publish = #\n"
	      "[broker lb]\ntype = loopback\ntopic = cmd/# out\n", false);
	CHECK_INT(conf->server.publish_rate, 2);
	CHECK_INT(conf->server.publish_rate_ms, 1000);
	CHECK_INT(conf->server.publish_burst, 3);
	s = hub_session_new(SESSION_WS, NULL);
	t = hub_session_new(SESSION_WS, NULL);
	CHECK(s->rate.tokens == 3.0);                   /* a new session: full */
	freeze(s);
	before = metrics.publishes[METRICS_PUB_RATE_LIMITED];
	for (int i = 0; i < 3; i++)
		CHECK_INT(submit(s, ok), PROTO_UNAVAILABLE);
	CHECK_INT(submit(s, ok), PROTO_RATE_LIMITED);
	CHECK_STR(why, "publish rate limit exceeded");
	CHECK_INT(submit(s, ok), PROTO_RATE_LIMITED);
	CHECK_INT(metrics.publishes[METRICS_PUB_RATE_LIMITED] - before, 2);
	/* refusals before the bucket do not need a token */
	CHECK_INT(submit(s, "{\"topic\":\"cmd/a\"}"), PROTO_BAD_REQUEST);
	CHECK_INT(submit(s, "{\"topic\":\"x\",\"payload\":1}"), PROTO_FORBIDDEN);
	/* one bucket per session */
	CHECK_INT(submit(t, ok), PROTO_UNAVAILABLE);

	/* one second later: two more tokens */
	rewind_ms(s, 1000);
	CHECK_INT(submit(s, ok), PROTO_UNAVAILABLE);
	freeze(s);
	CHECK_INT(submit(s, ok), PROTO_UNAVAILABLE);
	CHECK_INT(submit(s, ok), PROTO_RATE_LIMITED);
	/* half a second: one */
	rewind_ms(s, 500);
	CHECK_INT(submit(s, ok), PROTO_UNAVAILABLE);
	freeze(s);
	CHECK_INT(submit(s, ok), PROTO_RATE_LIMITED);
	/* a quarter: not yet a whole token */
	rewind_ms(s, 250);
	CHECK_INT(submit(s, ok), PROTO_RATE_LIMITED);
	rewind_ms(s, 250);                         /* another quarter: one */
	CHECK_INT(submit(s, ok), PROTO_UNAVAILABLE);
	freeze(s);
	CHECK_INT(submit(s, ok), PROTO_RATE_LIMITED);
	/* a long pause refills to the burst, not beyond */
	rewind_ms(s, 60000);
	CHECK_INT(submit(s, ok), PROTO_UNAVAILABLE);
	freeze(s);
	CHECK_INT(submit(s, ok), PROTO_UNAVAILABLE);
	CHECK_INT(submit(s, ok), PROTO_UNAVAILABLE);
	CHECK_INT(submit(s, ok), PROTO_RATE_LIMITED);
	/* a token is spent on a payload that then fails */
	rewind_ms(s, 500);
	CHECK_INT(submit(s, "{\"topic\":\"cmd/a\",\"payload\":\"@\",\"encoding\":\"base64\"}"),
		  PROTO_BAD_REQUEST);
	freeze(s);
	CHECK_INT(submit(s, ok), PROTO_RATE_LIMITED);
	/* no session (POST /publish passes none): no bucket */
	{
		cJSON *req = cJSON_Parse(ok);
		struct publish_origin origin = { 0 };

		for (int i = 0; i < 10; i++)
			CHECK_INT(publish_submit(req, &hub.anonymous, NULL, &origin,
						 why, sizeof(why)), PROTO_UNAVAILABLE);
		cJSON_Delete(req);
	}
	hub_session_free(s);
	hub_session_free(t);
	teardown();

	/* publish_rate = 0: no limit */
	setup("[server]\npublish_rate = 0\n[auth]\nanonymous_publish = #\n"
	      "[broker lb]\ntype = loopback\ntopic = cmd/# out\n", false);
	s = hub_session_new(SESSION_WS, NULL);
	freeze(s);
	for (int i = 0; i < 200; i++)
		CHECK_INT(submit(s, ok), PROTO_UNAVAILABLE);
	hub_session_free(s);
	teardown();

	/* the default: 50/s with a burst of 50 */
	setup("[auth]\nanonymous_publish = #\n"
	      "[broker lb]\ntype = loopback\ntopic = cmd/# out\n", false);
	s = hub_session_new(SESSION_WS, NULL);
	freeze(s);
	for (int i = 0; i < 50; i++)
		CHECK_INT(submit(s, ok), PROTO_UNAVAILABLE);
	CHECK_INT(submit(s, ok), PROTO_RATE_LIMITED);
	rewind_ms(s, 100);                         /* 5 tokens */
	CHECK_INT(submit(s, ok), PROTO_UNAVAILABLE);
	freeze(s);
	for (int i = 0; i < 4; i++)
		CHECK_INT(submit(s, ok), PROTO_UNAVAILABLE);
	CHECK_INT(submit(s, ok), PROTO_RATE_LIMITED);
	hub_session_free(s);
	teardown();
}

/* ---- completion --------------------------------------------------------- */

static void test_complete_ok(void)
{
	struct session *s;
	uint64_t before;
	char want[1024];
	size_t o = 0;

	setup("[server]\npublish_rate = 0\n[auth]\nanonymous_publish = #\n"
	      "[broker lb]\ntype = loopback\nmount = m/\ntopic = cmd/# both\n", true);
	s = hub_session_new(SESSION_WS, NULL);
	before = metrics.publishes[METRICS_PUB_OK];
	CHECK_INT(submit_as(s, NULL, "7", "{\"topic\":\"m/cmd/a\",\"payload\":\"hi\"}"),
		  PROTO_OK);
	CHECK_INT(s->pending_publishes, 1);
	CHECK_STR(wait_frames(s, 1), "{\"op\":\"ok\",\"id\":7}\n");
	CHECK_INT(s->pending_publishes, 0);
	CHECK_INT(metrics.publishes[METRICS_PUB_OK] - before, 1);

	/* the id is echoed as given: string, or none */
	CHECK_INT(submit_as(s, NULL, "\"abc\"", "{\"topic\":\"m/cmd/a\",\"payload\":1,"
			    "\"qos\":1,\"retain\":true}"), PROTO_OK);
	CHECK_STR(wait_frames(s, 1), "{\"op\":\"ok\",\"id\":\"abc\"}\n");
	CHECK_INT(submit_as(s, NULL, NULL, "{\"topic\":\"m/cmd/a\",\"payload\":1}"),
		  PROTO_OK);
	CHECK_STR(wait_frames(s, 1), "{\"op\":\"ok\"}\n");

	/* several in flight: each answered once, in order */
	for (int i = 1; i <= 20; i++) {
		char id[16];

		snprintf(id, sizeof(id), "%d", i);
		CHECK_INT(submit_as(s, NULL, id, "{\"topic\":\"m/cmd/b\",\"payload\":[1]}"),
			  PROTO_OK);
		o += (size_t)snprintf(want + o, sizeof(want) - o,
				      "{\"op\":\"ok\",\"id\":%d}\n", i);
	}
	CHECK_STR(wait_frames(s, 20), want);
	CHECK_INT(s->pending_publishes, 0);
	/* the looped-back messages reached the hub: published bytes as sent */
	CHECK_INT(hub.seq, 23);
	hub_session_free(s);
	teardown();
}

/* fail = unavailable: publish() refuses at once, submit says unavailable
 * and nothing is pending. fail = rejected: the broker refuses later, the
 * reply is forbidden with the broker's reason. */
static void test_complete_fail(void)
{
	struct session *s;

	setup("[server]\npublish_rate = 0\n[auth]\nanonymous_publish = #\n"
	      "[broker lb]\ntype = loopback\ntopic = # both\nfail = unavailable\n", true);
	s = hub_session_new(SESSION_WS, NULL);
	CHECK_INT(submit(s, "{\"topic\":\"a\",\"payload\":1}"), PROTO_UNAVAILABLE);
	CHECK_STR(why, "broker lb is not accepting publishes (Transport endpoint "
		       "is not connected)");
	CHECK_INT(s->pending_publishes, 0);
	usleep(20000);
	hub_drain_inbox();
	CHECK(!session_has_output(s));
	hub_session_free(s);
	teardown();

	setup("[server]\npublish_rate = 0\n[auth]\nanonymous_publish = #\n"
	      "[broker lb]\ntype = loopback\ntopic = # both\nfail = rejected\n", true);
	s = hub_session_new(SESSION_WS, NULL);
	CHECK_INT(submit_as(s, NULL, "3", "{\"topic\":\"a\",\"payload\":1}"), PROTO_OK);
	CHECK_STR(wait_frames(s, 1),
		  "{\"op\":\"error\",\"id\":3,\"code\":\"forbidden\",\"message\":"
		  "\"refused by the loopback backend (fail = rejected)\"}\n");
	CHECK_INT(s->pending_publishes, 0);
	hub_session_free(s);
	teardown();
}

/* Publishes still queued when the broker stops complete as unavailable. */
static void test_complete_on_stop(void)
{
	struct session *s;

	setup("[server]\npublish_rate = 0\n[auth]\nanonymous_publish = #\n"
	      "[broker lb]\ntype = loopback\ntopic = # both\ndelay = 1h\n", true);
	s = hub_session_new(SESSION_WS, NULL);
	CHECK_INT(submit_as(s, NULL, "1", "{\"topic\":\"a\",\"payload\":1}"), PROTO_OK);
	CHECK_INT(submit_as(s, NULL, "2", "{\"topic\":\"b\",\"payload\":2}"), PROTO_OK);
	hub_drain_inbox();
	CHECK(!session_has_output(s));         /* an hour to go */
	broker_set_free(brokers);
	brokers = NULL;
	hub.brokers = NULL;
	CHECK_STR(wait_frames(s, 2),
		  "{\"op\":\"error\",\"id\":1,\"code\":\"unavailable\",\"message\":"
		  "\"loopback backend stopped\"}\n"
		  "{\"op\":\"error\",\"id\":2,\"code\":\"unavailable\",\"message\":"
		  "\"loopback backend stopped\"}\n");
	CHECK_INT(s->pending_publishes, 0);
	hub_session_free(s);
	teardown();
}

/* Completes every pending publish (the one token among 1..limit that is
 * pending) with result; unknown tokens are ignored. */
static void complete_all(enum mqgate_publish_result result, const char *reason)
{
	for (uint64_t t = 1; t <= 200000; t++)
		publish_done(t, result, reason);
}

/* What each broker result becomes (PROTOCOL.md error codes). */
static void test_result_mapping(void)
{
	static const struct {
		enum mqgate_publish_result result;
		const char *why, *reply;
	} cases[] = {
		{ MQGATE_PUB_OK, "ignored", "{\"op\":\"ok\",\"id\":9}\n" },
		{ MQGATE_PUB_REJECTED, "not authorised",
		  "{\"op\":\"error\",\"id\":9,\"code\":\"forbidden\",\"message\":\"not authorised\"}\n" },
		{ MQGATE_PUB_TOO_LARGE, "packet too large",
		  "{\"op\":\"error\",\"id\":9,\"code\":\"too_large\",\"message\":\"packet too large\"}\n" },
		{ MQGATE_PUB_UNAVAILABLE, "timed out",
		  "{\"op\":\"error\",\"id\":9,\"code\":\"unavailable\",\"message\":\"timed out\"}\n" },
		{ MQGATE_PUB_INTERNAL, "oops",
		  "{\"op\":\"error\",\"id\":9,\"code\":\"internal\",\"message\":\"oops\"}\n" },
		{ (enum mqgate_publish_result)42, "what",
		  "{\"op\":\"error\",\"id\":9,\"code\":\"internal\",\"message\":\"what\"}\n" },
		/* no reason from the broker */
		{ MQGATE_PUB_REJECTED, NULL,
		  "{\"op\":\"error\",\"id\":9,\"code\":\"forbidden\",\"message\":"
		  "\"broker refused the publish\"}\n" },
		{ MQGATE_PUB_UNAVAILABLE, "",
		  "{\"op\":\"error\",\"id\":9,\"code\":\"unavailable\",\"message\":"
		  "\"broker refused the publish\"}\n" },
	};
	struct session *s;

	setup("[server]\npublish_rate = 0\n[auth]\nanonymous_publish = #\n"
	      "[broker lb]\ntype = loopback\ntopic = # both\ndelay = 1h\n", true);
	s = hub_session_new(SESSION_WS, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_INT(submit_as(s, NULL, "9", "{\"topic\":\"a\",\"payload\":1}"),
			  PROTO_OK);
		complete_all(cases[i].result, cases[i].why);
		CHECK_STR(frames(s), cases[i].reply);
		CHECK_INT(s->pending_publishes, 0);
	}
	/* a completion for a publish already answered is not answered again */
	complete_all(MQGATE_PUB_OK, NULL);
	CHECK(!session_has_output(s));
	/* neither is the broker's own late completion when it stops */
	broker_set_free(brokers);
	brokers = NULL;
	hub.brokers = NULL;
	usleep(20000);
	hub_drain_inbox();
	CHECK(!session_has_output(s));
	hub_session_free(s);
	teardown();
}

/* At most PUBLISH_MAX_PER_SESSION in flight per session. */
static void test_in_flight_limit(void)
{
	struct session *s, *t;
	unsigned ok = 0;

	setup("[server]\npublish_rate = 0\n[auth]\nanonymous_publish = #\n"
	      "[broker lb]\ntype = loopback\ntopic = # both\ndelay = 1h\n", true);
	s = hub_session_new(SESSION_WS, NULL);
	t = hub_session_new(SESSION_WS, NULL);
	for (int i = 0; i < PUBLISH_MAX_PER_SESSION; i++)
		ok += submit(s, "{\"topic\":\"a\",\"payload\":1}") == PROTO_OK;
	CHECK_INT(ok, PUBLISH_MAX_PER_SESSION);
	CHECK_INT(s->pending_publishes, PUBLISH_MAX_PER_SESSION);
	CHECK_INT(submit(s, "{\"topic\":\"a\",\"payload\":1}"), PROTO_UNAVAILABLE);
	CHECK_STR(why, "too many publishes in flight");
	CHECK_INT(submit(t, "{\"topic\":\"a\",\"payload\":1}"), PROTO_OK);
	/* the stop answers each of them */
	broker_set_free(brokers);
	brokers = NULL;
	hub.brokers = NULL;
	wait_frames(s, PUBLISH_MAX_PER_SESSION);
	CHECK_INT(s->pending_publishes, 0);
	CHECK(!s->closing);
	wait_frames(t, 1);
	hub_session_free(s);
	hub_session_free(t);
	teardown();
}

/* A requester that goes away first: its completion is only counted. */
static void test_detach(void)
{
	struct session *s, *keep;
	uint64_t before;
	int http_dummy;
	struct publish_origin origin = { .http = (struct lws *)&http_dummy };
	cJSON *req;

	setup("[server]\npublish_rate = 0\n[auth]\nanonymous_publish = #\n"
	      "[broker lb]\ntype = loopback\ntopic = # both\ndelay = 30ms\n", true);
	keep = hub_session_new(SESSION_WS, NULL);
	s = hub_session_new(SESSION_WS, NULL);
	before = metrics.publishes[METRICS_PUB_OK];
	CHECK_INT(submit(s, "{\"topic\":\"a\",\"payload\":1}"), PROTO_OK);
	hub_session_free(s);                    /* detaches it */
	/* an HTTP request that closed: never replied to */
	req = cJSON_Parse("{\"topic\":\"a\",\"payload\":1}");
	CHECK_INT(publish_submit(req, &hub.anonymous, NULL, &origin, why, sizeof(why)),
		  PROTO_OK);
	cJSON_Delete(req);
	publish_detach_http(origin.http);
	/* a later publish of another session is answered as usual */
	CHECK_INT(submit_as(keep, NULL, "5", "{\"topic\":\"a\",\"payload\":1}"), PROTO_OK);
	CHECK_STR(wait_frames(keep, 1), "{\"op\":\"ok\",\"id\":5}\n");
	CHECK_INT(metrics.publishes[METRICS_PUB_OK] - before, 3);
	hub_session_free(keep);
	teardown();
}

int main(void)
{
	test_validation();
	test_walls_and_acl();
	test_rate();
	test_complete_ok();
	test_complete_fail();
	test_complete_on_stop();
	test_result_mapping();
	test_in_flight_limit();
	test_detach();
	return check_summary("test_publish");
}
