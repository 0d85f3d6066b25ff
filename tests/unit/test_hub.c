/*
 * test_hub.c - the fan-out core without a network: broker messages go
 * through the real inbox into the hub, and sessions (without connections)
 * collect what would be written. Checks live delivery (once per session
 * however many of its filters match), snapshots (each topic once), resume
 * (exactly the missed matching messages, in order, no snapshot), reset on
 * a foreign epoch or a history gap, replay interleaved with live traffic
 * under a small queue, topic walls and max_subscriptions.
 * Uses the loopback plugin (MQGATE_PLUGIN_DIR, set by make check).
 */
#include <stdlib.h>

#include "backend.h"
#include "check.h"
#include "conf.h"
#include "history.h"
#include "hub.h"
#include "inbox.h"
#include "msg.h"
#include "session.h"

static struct conf *conf;
static struct broker_set *brokers;

static void setup(const char *text)
{
	if (conf_load_string("hub.conf", text, strlen(text), stderr, &conf) < 0 ||
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
}

static void teardown(void)
{
	hub_fini();
	inbox_free(hub.inbox);
	broker_set_free(brokers);
	conf_free(conf);
	memset(&hub, 0, sizeof(hub));
}

/* A message from the broker whose mount routes `topic`. */
static void from_broker(const char *topic, const char *payload, bool retain)
{
	const char *bt;
	struct broker *b = broker_set_route(brokers, topic, &bt);
	struct mqgate_message m = {
		.topic = bt, .payload = payload, .payload_len = strlen(payload),
		.retain = retain,
	};

	if (!b || inbox_push_message(hub.inbox, b, &m) < 0) {
		fprintf(stderr, "cannot route %s\n", topic);
		exit(99);
	}
	hub_drain_inbox();
}

/* What the session would write: "reset" for a reset frame, then
 * "TOPIC=SEQ" per message, comma separated; drains the session. */
static const char *output(struct session *s)
{
	static char out[4096];
	size_t o = 0;

	out[0] = 0;
	for (;;) {
		hub_session_fill(s);
		if (!session_has_output(s))
			break;
		for (struct frame *f = s->ctrl_head; f; f = f->next)
			if (memmem(f->data, f->len, "reset", 5))
				o += (size_t)snprintf(out + o, sizeof(out) - o, "%sreset",
						      o ? "," : "");
		for (size_t i = 0; i < s->q_len; i++) {
			const struct msg *m = session_queued(s, i);

			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s=%llu",
					      o ? "," : "", m->topic,
					      (unsigned long long)m->seq);
		}
		session_clear_output(s);
	}
	return out;
}

static enum proto_code sub(struct session *s, const char *f1, const char *f2,
			   const char *since, bool snapshot)
{
	char *f[3] = { (char *)f1, (char *)f2, NULL };
	size_t n = f2 ? 2 : 1;
	char why[256];
	enum proto_code c = hub_subscribe_check(s, f, n, why, sizeof(why));

	if (c == PROTO_OK)
		CHECK_INT(hub_subscribe(s, f, n, since, snapshot), 0);
	return c;
}

static const char *id(uint64_t seq)
{
	static char buf[64];

	msg_event_id(buf, sizeof(buf), msg_epoch(), seq);
	return buf;
}

static void test_live_and_snapshot(void)
{
	struct session *a, *b;

	setup("[broker lb]\ntype = loopback\ntopic = sensors/# in\ntopic = cmd/# out\n");
	a = hub_session_new(SESSION_WS, NULL);
	b = hub_session_new(SESSION_SSE, NULL);
	CHECK_INT(sub(a, "sensors/#", "sensors/+/temp", NULL, true), PROTO_OK);
	CHECK_INT(sub(b, "sensors/b/#", NULL, NULL, true), PROTO_OK);
	CHECK_STR(output(a), "");
	from_broker("sensors/a/temp", "1", true);
	from_broker("sensors/b/hum", "2", false);
	from_broker("other/x", "3", false);      /* outside the walls: mosquitto
						  * would not send it, but the hub
						  * still relays what arrives */
	CHECK_STR(output(a), "sensors/a/temp=1,sensors/b/hum=2");
	CHECK_STR(output(b), "sensors/b/hum=2");
	from_broker("sensors/a/temp", "4", false);

	/* A new subscriber gets the newest value of each topic once. */
	{
		struct session *c = hub_session_new(SESSION_WS, NULL);

		CHECK_INT(sub(c, "sensors/#", "sensors/a/+", NULL, true), PROTO_OK);
		CHECK_STR(output(c), "sensors/b/hum=2,sensors/a/temp=4"); /* oldest first */
		/* Snapshot off: nothing is queued. */
		CHECK_INT(sub(c, "sensors/a/temp", NULL, NULL, false), PROTO_OK);
		CHECK_STR(output(c), "");
		hub_session_free(c);
	}
	{
		struct session *d = hub_session_new(SESSION_WS, NULL);

		CHECK_INT(sub(d, "sensors/#", NULL, NULL, false), PROTO_OK);
		CHECK_STR(output(d), "");              /* snapshot off */
		/* walls and limits */
		CHECK_INT(sub(d, "cmd/#", NULL, NULL, true), PROTO_FORBIDDEN);
		CHECK_INT(sub(d, "sensors/ok", "other/#", NULL, true), PROTO_FORBIDDEN);
		CHECK_INT(d->nsubs, 1);                /* all or nothing */
		CHECK_INT(sub(d, "#", NULL, NULL, false), PROTO_OK); /* wider: granted */
		CHECK_INT(sub(d, "a/+b", NULL, NULL, false), PROTO_BAD_REQUEST);
		hub_session_free(d);
	}
	output(a);
	output(b);
	hub_session_free(a);
	hub_session_free(b);
	teardown();
}

static void test_resume(void)
{
	struct session *a, *r;

	setup("[server]\nhistory = 100\n[broker lb]\ntype = loopback\ntopic = # in\n");
	a = hub_session_new(SESSION_WS, NULL);
	CHECK_INT(sub(a, "#", NULL, NULL, true), PROTO_OK);
	for (int i = 1; i <= 10; i++)
		from_broker(i % 2 ? "odd/x" : "even/x", "v", false);
	output(a);

	/* Resume after seq 4 on odd/#: 5, 7, 9 and no snapshot. */
	r = hub_session_new(SESSION_SSE, NULL);
	CHECK_INT(sub(r, "odd/#", NULL, id(4), true), PROTO_OK);
	CHECK_STR(output(r), "odd/x=5,odd/x=7,odd/x=9");
	from_broker("odd/x", "v", false);        /* 11, live */
	CHECK_STR(output(r), "odd/x=11");
	hub_session_free(r);

	/* Resume at the newest id: nothing to replay, nothing duplicated. */
	r = hub_session_new(SESSION_WS, NULL);
	CHECK_INT(sub(r, "#", NULL, id(11), true), PROTO_OK);
	CHECK_STR(output(r), "");
	hub_session_free(r);

	/* Another epoch: reset, then the snapshot. */
	r = hub_session_new(SESSION_WS, NULL);
	CHECK_INT(sub(r, "even/#", NULL, "999-3", true), PROTO_OK);
	CHECK_STR(output(r), "reset,even/x=10");
	hub_session_free(r);

	/* Garbage id: treated like an unknown one. */
	r = hub_session_new(SESSION_WS, NULL);
	CHECK_INT(sub(r, "even/#", NULL, "nonsense", false), PROTO_OK);
	CHECK_STR(output(r), "reset");
	hub_session_free(r);

	/* An id the history no longer covers: reset + snapshot. */
	history_set_limits(hub.history, 3, 1 << 30);  /* holds 9..11 */
	r = hub_session_new(SESSION_WS, NULL);
	CHECK_INT(sub(r, "#", NULL, id(5), true), PROTO_OK);
	CHECK_STR(output(r), "reset,even/x=10,odd/x=11");
	hub_session_free(r);
	r = hub_session_new(SESSION_WS, NULL);
	CHECK_INT(sub(r, "#", NULL, id(8), true), PROTO_OK); /* 9.. held */
	CHECK_STR(output(r), "odd/x=9,even/x=10,odd/x=11");
	hub_session_free(r);

	output(a);
	hub_session_free(a);
	teardown();
}

/* Replay through a queue of 2 while live messages keep coming: every
 * message exactly once, in sequence order. */
static void test_replay_interleaved(void)
{
	struct session *r;
	char want[2048] = "";
	size_t o = 0;
	char got[4096] = "";
	size_t g = 0;

	setup("[server]\nqueue = 2\nhistory = 1000\n[broker lb]\ntype = loopback\ntopic = # in\n");
	for (int i = 1; i <= 20; i++)
		from_broker("t", "v", false);
	r = hub_session_new(SESSION_WS, NULL);
	CHECK_INT(sub(r, "t", NULL, id(5), true), PROTO_OK);
	for (int i = 6; i <= 30; i++)
		o += (size_t)snprintf(want + o, sizeof(want) - o, "%st=%d", i > 6 ? "," : "", i);
	/* Take two at a time, with a live message after each take. */
	for (int step = 0; step < 40; step++) {
		const char *part;

		hub_session_fill(r);
		part = "";
		if (session_has_output(r)) {
			static char buf[256];
			size_t bo = 0;

			buf[0] = 0;
			for (size_t i = 0; i < r->q_len; i++)
				bo += (size_t)snprintf(buf + bo, sizeof(buf) - bo, "%st=%llu",
						       bo ? "," : "",
						       (unsigned long long)session_queued(r, i)->seq);
			session_clear_output(r);
			part = buf;
		}
		if (part[0])
			g += (size_t)snprintf(got + g, sizeof(got) - g, "%s%s", g ? "," : "", part);
		if (step < 10)
			from_broker("t", "v", false); /* 21..30 */
	}
	CHECK_STR(got, want);
	CHECK(!r->replaying);
	hub_session_free(r);
	teardown();
}

static void test_max_subscriptions(void)
{
	struct session *s;
	char f[32];

	setup("[server]\nmax_subscriptions = 3\n[broker lb]\ntype = loopback\ntopic = # in\n");
	s = hub_session_new(SESSION_WS, NULL);
	for (int i = 0; i < 3; i++) {
		snprintf(f, sizeof(f), "t/%d", i);
		CHECK_INT(sub(s, f, NULL, NULL, false), PROTO_OK);
	}
	CHECK_INT(sub(s, "t/9", NULL, NULL, false), PROTO_TOO_LARGE);
	CHECK_INT(sub(s, "t/0", NULL, NULL, false), PROTO_OK); /* already held */
	{
		char *u[] = { "t/0" };

		hub_unsubscribe(s, u, 1);
	}
	CHECK_INT(sub(s, "t/9", NULL, NULL, false), PROTO_OK);
	hub_session_free(s);
	teardown();
}

int main(void)
{
	test_live_and_snapshot();
	test_resume();
	test_replay_interleaved();
	test_max_subscriptions();
	return check_summary("test_hub");
}
