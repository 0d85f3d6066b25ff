/*
 * inbox.h - the hand-over from broker threads to the event loop: a locked,
 * bounded queue of events (messages, state changes, publish completions).
 * Producers push from any thread; the loop takes everything at once.
 * Messages are bounded by count and bytes: a producer waits while the inbox
 * is full (back-pressure to its broker), until the loop makes room or the
 * inbox is shut down. State changes and completions never wait (they are
 * few and bounded by the publishes in flight).
 * Owns the events until the loop takes them; the loop frees them with
 * inbox_event_free().
 */
#ifndef MQGATE_INBOX_H
#define MQGATE_INBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqgate/backend.h"

enum inbox_kind { INBOX_MESSAGE, INBOX_STATE, INBOX_PUBLISH_DONE };

struct inbox_event {
	struct inbox_event *next;
	enum inbox_kind kind;
	struct broker *broker;
	int64_t ts_ms;          /* arrival time */
	/* INBOX_MESSAGE */
	uint8_t qos;
	bool retain;
	size_t topic_len, payload_len;
	char *topic;            /* points into data[] */
	unsigned char *payload; /* points into data[] */
	/* INBOX_STATE */
	enum mqgate_broker_state state;
	/* INBOX_PUBLISH_DONE */
	uint64_t token;
	enum mqgate_publish_result result;
	char why[160];          /* STATE and PUBLISH_DONE: reason, may be "" */
	unsigned char data[];
};

struct inbox;

/* wake(arg) is called (from the producer's thread) when an event lands in
 * an empty inbox: the loop must then call inbox_take(). */
struct inbox *inbox_new(size_t max_msgs, size_t max_bytes,
			void (*wake)(void *arg), void *arg);
void inbox_free(struct inbox *ib);

/* Producers. 0, -ENOMEM, or -ESHUTDOWN. push_message may wait. */
int inbox_push_message(struct inbox *ib, struct broker *b,
		       const struct mqgate_message *m);
int inbox_push_state(struct inbox *ib, struct broker *b,
		     enum mqgate_broker_state state, const char *why);
int inbox_push_done(struct inbox *ib, struct broker *b, uint64_t token,
		    enum mqgate_publish_result result, const char *why);

/* Loop: takes every queued event, oldest first (NULL when empty), and
 * wakes producers waiting for room. */
struct inbox_event *inbox_take(struct inbox *ib);
void inbox_event_free(struct inbox_event *e);

/* Makes every waiting and future push fail with -ESHUTDOWN. */
void inbox_shutdown(struct inbox *ib);
/* While brokers[0..n) are being stopped, their messages are refused at
 * once (-ESHUTDOWN) instead of waiting for room, so the loop thread can
 * join their threads. The array is borrowed until the next call; n = 0
 * ends it. */
void inbox_retire(struct inbox *ib, struct broker *const *brokers, size_t n);

int64_t inbox_now_ms(void); /* wall clock, ms since the Unix epoch */

#endif
