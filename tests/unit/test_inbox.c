/*
 * test_inbox.c - the broker-thread hand-over: order, wake-ups only on the
 * empty -> non-empty edge, the message/byte bounds with producers waiting
 * for room (never losing or duplicating), and shutdown releasing waiters.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "inbox.h"

static atomic_int wakes;

static void on_wake(void *arg)
{
	(void)arg;
	atomic_fetch_add(&wakes, 1);
}

static struct mqgate_message text_msg(const char *topic, const char *payload)
{
	struct mqgate_message m = { topic, payload, strlen(payload), 1, false, 0 };

	return m;
}

static void test_order_and_kinds(void)
{
	struct inbox *ib = inbox_new(100, 1 << 20, on_wake, NULL);
	struct mqgate_message m = text_msg("a/b", "hello");
	struct inbox_event *e, *next;
	int n = 0;

	atomic_store(&wakes, 0);
	CHECK_INT(inbox_push_message(ib, NULL, &m), 0);
	CHECK_INT(inbox_push_state(ib, NULL, MQGATE_STATE_CONNECTED, "up"), 0);
	CHECK_INT(inbox_push_done(ib, NULL, 42, MQGATE_PUB_REJECTED, "nope"), 0);
	CHECK_INT(atomic_load(&wakes), 1); /* only the first push wakes */
	e = inbox_take(ib);
	CHECK(e && e->kind == INBOX_MESSAGE);
	CHECK_MEM(e->topic, e->topic_len, "a/b");
	CHECK_MEM(e->payload, e->payload_len, "hello");
	CHECK(e->ts_ms > 0);
	CHECK(e->next && e->next->kind == INBOX_STATE);
	CHECK_STR(e->next->why, "up");
	CHECK(e->next->next && e->next->next->kind == INBOX_PUBLISH_DONE);
	CHECK_INT(e->next->next->token, 42);
	CHECK_INT(e->next->next->result, MQGATE_PUB_REJECTED);
	for (; e; e = next, n++) {
		next = e->next;
		inbox_event_free(e);
	}
	CHECK_INT(n, 3);
	CHECK(inbox_take(ib) == NULL);
	CHECK_INT(inbox_push_state(ib, NULL, MQGATE_STATE_DOWN, NULL), 0);
	CHECK_INT(atomic_load(&wakes), 2);
	inbox_free(ib); /* frees what is still queued */
}

struct producer {
	struct inbox *ib;
	int id, count;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	char topic[32], payload[32];

	for (int i = 0; i < p->count; i++) {
		struct mqgate_message m;

		snprintf(topic, sizeof(topic), "p%d", p->id);
		snprintf(payload, sizeof(payload), "%d", i);
		m = text_msg(topic, payload);
		if (inbox_push_message(p->ib, NULL, &m) != 0)
			break;
	}
	return NULL;
}

/* Four producers push 20,000 messages each through an inbox of 64: every
 * message arrives exactly once and in order per producer. */
static void test_backpressure(void)
{
	enum { NPROD = 4, COUNT = 20000 };
	struct inbox *ib = inbox_new(64, 1 << 20, on_wake, NULL);
	struct producer p[NPROD];
	pthread_t t[NPROD];
	int next[NPROD] = { 0 }, got = 0, bad = 0, max_batch = 0;

	for (int i = 0; i < NPROD; i++) {
		p[i] = (struct producer){ ib, i, COUNT };
		pthread_create(&t[i], NULL, produce, &p[i]);
	}
	while (got < NPROD * COUNT) {
		struct inbox_event *e = inbox_take(ib), *nx;
		int batch = 0;

		if (!e) {
			usleep(100);
			continue;
		}
		for (; e; e = nx) {
			int id = e->topic[1] - '0';
			char num[16];

			nx = e->next;
			/* The payload is not NUL-terminated. */
			snprintf(num, sizeof(num), "%.*s", (int)e->payload_len,
				 (const char *)e->payload);
			if (atoi(num) != next[id])
				bad++;
			next[id]++;
			got++;
			batch++;
			inbox_event_free(e);
		}
		if (batch > max_batch)
			max_batch = batch;
	}
	for (int i = 0; i < NPROD; i++)
		pthread_join(t[i], NULL);
	CHECK_INT(got, NPROD * COUNT);
	CHECK_INT(bad, 0);
	/* the bound held: a take never saw more than the limit (+ producers
	 * already past the check) */
	CHECK(max_batch <= 64 + NPROD);
	inbox_free(ib);
}

/* A byte bound: a message larger than the whole bound still goes through
 * alone; producers waiting for room are released by shutdown. */
static void test_bytes_and_shutdown(void)
{
	struct inbox *ib = inbox_new(1000, 10, on_wake, NULL);
	struct mqgate_message big = text_msg("t", "0123456789abcdef");
	struct producer p = { ib, 1, 1000 };
	pthread_t t;
	struct inbox_event *e;

	CHECK_INT(inbox_push_message(ib, NULL, &big), 0); /* alone: admitted */
	pthread_create(&t, NULL, produce, &p);            /* will wait */
	usleep(50000);
	inbox_shutdown(ib);
	pthread_join(t, NULL);                            /* released */
	CHECK_INT(inbox_push_message(ib, NULL, &big), -ESHUTDOWN);
	CHECK_INT(inbox_push_state(ib, NULL, MQGATE_STATE_DOWN, NULL), -ESHUTDOWN);
	e = inbox_take(ib);
	CHECK(e != NULL);
	while (e) {
		struct inbox_event *nx = e->next;

		inbox_event_free(e);
		e = nx;
	}
	inbox_free(ib);
}

int main(void)
{
	test_order_and_kinds();
	test_backpressure();
	test_bytes_and_shutdown();
	return check_summary("inbox");
}
