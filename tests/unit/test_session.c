/*
 * test_session.c - a client's bounded outbound queue under each
 * slow_client policy (drop_oldest, conflate, disconnect), its byte bound,
 * the limit on unread control frames, and that references are balanced.
 * Sessions here have no connection, so nothing is written.
 */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "conf.h"
#include "hub.h"
#include "metrics.h"
#include "msg.h"
#include "session.h"

static struct conf *load(const char *text)
{
	struct conf *c = NULL;

	if (conf_load_string("test.conf", text, strlen(text), stderr, &c) < 0) {
		fprintf(stderr, "config did not load:\n%s\n", text);
		exit(99);
	}
	hub.conf = c;
	return c;
}

static struct msg *mk(const char *topic, uint64_t seq, size_t plen)
{
	static char buf[2048];

	memset(buf, 'x', sizeof(buf));
	return msg_new(topic, strlen(topic), buf, plen, 0, false, 0, seq);
}

/* Queued seqs in order, as a string like "3,4,5". */
static const char *queued(const struct session *s)
{
	static char out[512];
	size_t o = 0;

	out[0] = 0;
	for (size_t i = 0; i < s->q_len; i++)
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%llu", i ? "," : "",
				      (unsigned long long)session_queued(s, i)->seq);
	return out;
}

static void enqueue_all(struct session *s, struct msg **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		session_enqueue(s, v[i]);
}

static void test_drop_oldest(void)
{
	struct conf *c = load("[server]\nqueue = 3\nslow_client = drop_oldest\n");
	struct session s = { .kind = SESSION_WS };
	struct msg *v[6];
	uint64_t drops = metrics.drops[METRICS_DROP_QUEUE_FULL];

	for (size_t i = 0; i < 6; i++)
		v[i] = mk("a", i + 1, 4);
	enqueue_all(&s, v, 6);
	CHECK_STR(queued(&s), "4,5,6");
	CHECK_INT(metrics.drops[METRICS_DROP_QUEUE_FULL] - drops, 3);
	CHECK(!s.closing);
	CHECK_INT(v[0]->refs, 1);  /* dropped: the queue let go */
	CHECK_INT(v[5]->refs, 2);
	session_clear_output(&s);
	CHECK_INT(v[5]->refs, 1);
	CHECK_INT(s.q_bytes, 0);
	for (size_t i = 0; i < 6; i++)
		msg_unref(v[i]);
	conf_free(c);
}

/* The ring grows while it has wrapped around (a snapshot widens the bound
 * of a full queue whose oldest entries were dropped): order is kept. */
static void test_grow_wrapped(void)
{
	struct conf *c = load("[server]\nqueue = 8\nslow_client = drop_oldest\n");
	struct session s = { .kind = SESSION_WS };
	struct msg *v[12];

	for (size_t i = 0; i < 12; i++)
		v[i] = mk("a", i + 1, 4);
	enqueue_all(&s, v, 10);
	CHECK_STR(queued(&s), "3,4,5,6,7,8,9,10");
	CHECK_INT(s.q_cap, 8);
	CHECK(s.q_head != 0); /* wrapped */
	session_enqueue_snapshot(&s, v[10]);
	CHECK_INT(s.q_cap, 9);
	CHECK_STR(queued(&s), "3,4,5,6,7,8,9,10,11");
	session_enqueue(&s, v[11]);
	CHECK_STR(queued(&s), "4,5,6,7,8,9,10,11,12");
	session_clear_output(&s);
	for (size_t i = 0; i < 12; i++) {
		CHECK_INT(v[i]->refs, 1);
		msg_unref(v[i]);
	}
	conf_free(c);
}

static void test_conflate(void)
{
	struct conf *c = load("[server]\nqueue = 3\nslow_client = conflate\n");
	struct session s = { .kind = SESSION_SSE };
	static const char *topics[] = { "a", "b", "a", "c", "b", "d" };
	struct msg *v[6];
	uint64_t conf0 = metrics.drops[METRICS_DROP_CONFLATED];

	for (size_t i = 0; i < 6; i++)
		v[i] = mk(topics[i], i + 1, 4);
	enqueue_all(&s, v, 3);            /* a1 b2 a3: full */
	CHECK_STR(queued(&s), "1,2,3");
	session_enqueue(&s, v[3]);        /* c4: no older c, drop oldest */
	CHECK_STR(queued(&s), "2,3,4");
	session_enqueue(&s, v[4]);        /* b5 replaces b2 */
	CHECK_STR(queued(&s), "3,4,5");
	CHECK_INT(metrics.drops[METRICS_DROP_CONFLATED] - conf0, 1);
	session_enqueue(&s, v[5]);        /* d6: drop oldest (a3) */
	CHECK_STR(queued(&s), "4,5,6");
	session_clear_output(&s);
	for (size_t i = 0; i < 6; i++) {
		CHECK_INT(v[i]->refs, 1);
		msg_unref(v[i]);
	}
	conf_free(c);
}

static void test_disconnect(void)
{
	struct conf *c = load("[server]\nqueue = 2\nslow_client = disconnect\n");
	struct session s = { .kind = SESSION_WS };
	struct msg *v[3];
	uint64_t d0 = metrics.drops[METRICS_DROP_SLOW_DISCONNECT];

	for (size_t i = 0; i < 3; i++)
		v[i] = mk("a", i + 1, 4);
	CHECK_INT(session_enqueue(&s, v[0]), 0);
	CHECK_INT(session_enqueue(&s, v[1]), 0);
	CHECK_INT(session_enqueue(&s, v[2]), -ENOBUFS);
	CHECK(s.closing);
	CHECK_INT(s.close_code, 1008);
	CHECK_STR(s.close_reason, "slow consumer");
	CHECK_INT(metrics.drops[METRICS_DROP_SLOW_DISCONNECT] - d0, 1);
	CHECK_INT(session_enqueue(&s, v[2]), -ENOBUFS); /* closing: refused */
	session_clear_output(&s);
	for (size_t i = 0; i < 3; i++)
		msg_unref(v[i]);
	conf_free(c);
}

static void test_byte_bound(void)
{
	struct conf *c;
	struct session s = { .kind = SESSION_WS };
	struct msg *v[5];
	char text[128];
	size_t cost;

	v[0] = mk("a", 1, 1000);
	cost = msg_cost(v[0]);
	snprintf(text, sizeof(text), "[server]\nqueue = 100\nqueue_bytes = %zu\n",
		 2 * cost);
	c = load(text);
	for (size_t i = 1; i < 5; i++)
		v[i] = mk("a", i + 1, 1000);
	enqueue_all(&s, v, 5);
	CHECK_STR(queued(&s), "4,5");
	CHECK(s.q_bytes <= 2 * cost);
	/* One message larger than the byte bound still goes through alone,
	 * so a client is never stuck. */
	{
		struct msg *big = mk("big", 6, 2000);

		session_enqueue(&s, big);
		CHECK_STR(queued(&s), "6");
		msg_unref(big);
	}
	session_clear_output(&s);
	for (size_t i = 0; i < 5; i++)
		msg_unref(v[i]);
	conf_free(c);
}

static void test_control_frames(void)
{
	struct conf *c = load("[server]\n");
	struct session s = { .kind = SESSION_WS };
	int r = 0, i;

	for (i = 0; i < 300 && r == 0; i++)
		r = session_send_ws_json(&s, "{\"op\":\"pong\"}", 13);
	CHECK_INT(r, -ENOBUFS);
	CHECK_INT(i, 257);            /* 256 waiting replies, then close */
	CHECK(s.closing);
	CHECK(session_has_output(&s));
	CHECK(s.ctrl_head && s.ctrl_head->len == 15 && s.ctrl_head->data[0] == 0x81 &&
	      s.ctrl_head->data[1] == 13);
	session_clear_output(&s);
	CHECK(!session_has_output(&s));
	conf_free(c);
}

/* A snapshot larger than the queue is kept whole, under every policy;
 * the room it took is given back as its messages leave. */
static void test_snapshot_room(void)
{
	struct conf *c = load("[server]\nqueue = 3\nslow_client = disconnect\n");
	struct session s = { .kind = SESSION_WS };
	struct msg *v[12];

	for (size_t i = 0; i < 12; i++)
		v[i] = mk("a", i + 1, 4);
	for (size_t i = 0; i < 10; i++)
		CHECK_INT(session_enqueue_snapshot(&s, v[i]), 0);
	CHECK_STR(queued(&s), "1,2,3,4,5,6,7,8,9,10");
	CHECK(!s.closing);
	/* Live traffic on top is bounded by `queue` beyond the snapshot. */
	CHECK_INT(session_enqueue(&s, v[10]), 0);
	CHECK_INT(session_enqueue(&s, v[11]), 0);
	CHECK_INT(s.q_len, 12);
	CHECK(!s.closing);
	session_clear_output(&s);
	CHECK_INT(s.snap_msgs, 0);
	CHECK_INT(s.snap_bytes, 0);
	/* With the snapshot gone, the plain bound is back. */
	for (size_t i = 0; i < 3; i++)
		CHECK_INT(session_enqueue(&s, v[i]), 0);
	CHECK_INT(session_enqueue(&s, v[3]), -ENOBUFS);
	session_clear_output(&s);
	for (size_t i = 0; i < 12; i++)
		msg_unref(v[i]);
	conf_free(c);
}

int main(void)
{
	test_snapshot_room();
	test_drop_oldest();
	test_grow_wrapped();
	test_conflate();
	test_disconnect();
	test_byte_bound();
	test_control_frames();
	return check_summary("test_session");
}
