/*
 * inbox.c - locked hand-over queue from broker threads to the event loop.
 * See inbox.h. Owns queued events; one mutex, one condition variable for
 * producers waiting for room.
 */
#include "inbox.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>

struct inbox {
	pthread_mutex_t lock;
	pthread_cond_t room;
	struct inbox_event *head, *tail;
	size_t msgs, bytes;         /* queued messages and their payload bytes */
	size_t max_msgs, max_bytes;
	bool shutdown;
	struct broker *const *retiring; /* brokers being stopped (borrowed) */
	size_t nretiring;
	void (*wake)(void *arg);
	void *wake_arg;
};

int64_t inbox_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct inbox *inbox_new(size_t max_msgs, size_t max_bytes,
			void (*wake)(void *arg), void *arg)
{
	struct inbox *ib = calloc(1, sizeof(*ib));

	if (!ib)
		return NULL;
	pthread_mutex_init(&ib->lock, NULL);
	pthread_cond_init(&ib->room, NULL);
	ib->max_msgs = max_msgs ? max_msgs : 1;
	ib->max_bytes = max_bytes;
	ib->wake = wake;
	ib->wake_arg = arg;
	return ib;
}

void inbox_free(struct inbox *ib)
{
	struct inbox_event *e, *next;

	if (!ib)
		return;
	for (e = ib->head; e; e = next) {
		next = e->next;
		free(e);
	}
	pthread_cond_destroy(&ib->room);
	pthread_mutex_destroy(&ib->lock);
	free(ib);
}

void inbox_event_free(struct inbox_event *e)
{
	free(e);
}

/* Appends e; the caller holds the lock. Returns whether to wake the loop. */
static bool inbox_append_locked(struct inbox *ib, struct inbox_event *e)
{
	bool was_empty = ib->head == NULL;

	e->next = NULL;
	if (ib->tail)
		ib->tail->next = e;
	else
		ib->head = e;
	ib->tail = e;
	return was_empty;
}

static bool inbox_retiring_locked(const struct inbox *ib,
				  const struct broker *b)
{
	for (size_t i = 0; i < ib->nretiring; i++)
		if (ib->retiring[i] == b)
			return true;
	return false;
}

static int inbox_push(struct inbox *ib, struct inbox_event *e, bool wait)
{
	bool wake;

	pthread_mutex_lock(&ib->lock);
	if (wait) {
		/* An oversized message is let in alone rather than never. */
		while (!ib->shutdown && ib->msgs > 0 &&
		       !inbox_retiring_locked(ib, e->broker) &&
		       (ib->msgs >= ib->max_msgs ||
			ib->bytes + e->payload_len > ib->max_bytes))
			pthread_cond_wait(&ib->room, &ib->lock);
	}
	/* A stopping broker's messages are refused: its thread must not wait
	 * for a loop that is busy stopping it. Its other events go in. */
	if (ib->shutdown || (e->kind == INBOX_MESSAGE &&
			     inbox_retiring_locked(ib, e->broker))) {
		pthread_mutex_unlock(&ib->lock);
		free(e);
		return -ESHUTDOWN;
	}
	if (e->kind == INBOX_MESSAGE) {
		ib->msgs++;
		ib->bytes += e->payload_len;
	}
	wake = inbox_append_locked(ib, e);
	pthread_mutex_unlock(&ib->lock);
	if (wake && ib->wake)
		ib->wake(ib->wake_arg);
	return 0;
}

int inbox_push_message(struct inbox *ib, struct broker *b,
		       const struct mqgate_message *m)
{
	size_t tlen = strlen(m->topic);
	struct inbox_event *e;

	e = malloc(sizeof(*e) + tlen + 1 + m->payload_len);
	if (!e)
		return -ENOMEM;
	memset(e, 0, sizeof(*e));
	e->kind = INBOX_MESSAGE;
	e->broker = b;
	e->ts_ms = m->ts_ms > 0 ? m->ts_ms : inbox_now_ms();
	e->qos = (uint8_t)(m->qos < 0 ? 0 : m->qos > 2 ? 2 : m->qos);
	e->retain = m->retain;
	e->topic = (char *)e->data;
	e->topic_len = tlen;
	memcpy(e->topic, m->topic, tlen + 1);
	e->payload = e->data + tlen + 1;
	e->payload_len = m->payload_len;
	if (m->payload_len)
		memcpy(e->payload, m->payload, m->payload_len);
	return inbox_push(ib, e, true);
}

static struct inbox_event *inbox_event_small(enum inbox_kind kind,
					     struct broker *b, const char *why)
{
	struct inbox_event *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->kind = kind;
	e->broker = b;
	e->ts_ms = inbox_now_ms();
	if (why)
		snprintf(e->why, sizeof(e->why), "%s", why);
	return e;
}

int inbox_push_state(struct inbox *ib, struct broker *b,
		     enum mqgate_broker_state state, const char *why)
{
	struct inbox_event *e = inbox_event_small(INBOX_STATE, b, why);

	if (!e)
		return -ENOMEM;
	e->state = state;
	return inbox_push(ib, e, false);
}

int inbox_push_done(struct inbox *ib, struct broker *b, uint64_t token,
		    enum mqgate_publish_result result, const char *why)
{
	struct inbox_event *e = inbox_event_small(INBOX_PUBLISH_DONE, b, why);

	if (!e)
		return -ENOMEM;
	e->token = token;
	e->result = result;
	return inbox_push(ib, e, false);
}

struct inbox_event *inbox_take(struct inbox *ib)
{
	struct inbox_event *list;

	pthread_mutex_lock(&ib->lock);
	list = ib->head;
	ib->head = ib->tail = NULL;
	ib->msgs = 0;
	ib->bytes = 0;
	pthread_cond_broadcast(&ib->room);
	pthread_mutex_unlock(&ib->lock);
	return list;
}

void inbox_shutdown(struct inbox *ib)
{
	pthread_mutex_lock(&ib->lock);
	ib->shutdown = true;
	pthread_cond_broadcast(&ib->room);
	pthread_mutex_unlock(&ib->lock);
}

void inbox_retire(struct inbox *ib, struct broker *const *brokers, size_t n)
{
	pthread_mutex_lock(&ib->lock);
	ib->retiring = brokers;
	ib->nretiring = n;
	pthread_cond_broadcast(&ib->room);
	pthread_mutex_unlock(&ib->lock);
}
