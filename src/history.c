/*
 * history.c - the resume ring (see history.h): a circular array of message
 * references that grows by doubling up to its count bound, so a quiet
 * daemon does not hold a large array it never fills.
 */
#include "history.h"

#include <errno.h>
#include <stdlib.h>

#include "msg.h"

struct history {
	struct msg **ring;
	size_t cap;        /* slots allocated */
	size_t head;       /* index of the oldest */
	size_t count;
	size_t bytes;      /* sum of msg_cost() */
	size_t max_msgs, max_bytes;
	uint64_t first;    /* seq of ring[head]; next seq when empty */
};

struct history *history_new(size_t max_msgs, size_t max_bytes)
{
	struct history *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->max_msgs = max_msgs;
	h->max_bytes = max_bytes;
	h->first = 1;
	return h;
}

static void history_evict_oldest(struct history *h)
{
	struct msg *m = h->ring[h->head];

	h->bytes -= msg_cost(m);
	msg_unref(m);
	h->ring[h->head] = NULL;
	h->head = (h->head + 1) % h->cap;
	h->count--;
	h->first++;
}

static void history_fit(struct history *h, size_t msgs, size_t bytes)
{
	while (h->count && (h->count + msgs > h->max_msgs ||
			    h->bytes + bytes > h->max_bytes))
		history_evict_oldest(h);
}

void history_free(struct history *h)
{
	if (!h)
		return;
	while (h->count)
		history_evict_oldest(h);
	free(h->ring);
	free(h);
}

void history_set_limits(struct history *h, size_t max_msgs, size_t max_bytes)
{
	h->max_msgs = max_msgs;
	h->max_bytes = max_bytes;
	history_fit(h, 0, 0);
}

static int history_grow(struct history *h)
{
	size_t ncap = h->cap ? h->cap * 2 : 64, i;
	struct msg **n;

	if (ncap > h->max_msgs)
		ncap = h->max_msgs;
	n = malloc(ncap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	for (i = 0; i < h->count; i++)
		n[i] = h->ring[(h->head + i) % h->cap];
	free(h->ring);
	h->ring = n;
	h->cap = ncap;
	h->head = 0;
	return 0;
}

int history_push(struct history *h, struct msg *m)
{
	size_t cost = msg_cost(m);

	/* A gap in sequence numbers breaks the O(1) lookup: start over, so
	 * resumes from before the gap get a reset. */
	if (h->count && m->seq != h->first + h->count) {
		while (h->count)
			history_evict_oldest(h);
	}
	if (!h->count)
		h->first = m->seq;
	if (!h->max_msgs || cost > h->max_bytes) {
		/* Nothing can be kept: what came before is gone too. */
		while (h->count)
			history_evict_oldest(h);
		h->first = m->seq + 1;
		return 0;
	}
	history_fit(h, 1, cost);
	if (h->count == h->cap && history_grow(h) < 0)
		return -ENOMEM;
	h->ring[(h->head + h->count) % h->cap] = msg_ref(m);
	h->count++;
	h->bytes += cost;
	return 0;
}

struct msg *history_get(const struct history *h, uint64_t seq)
{
	if (seq < h->first || seq - h->first >= h->count)
		return NULL;
	return h->ring[(h->head + (seq - h->first)) % h->cap];
}

uint64_t history_first(const struct history *h)
{
	return h->first;
}

uint64_t history_last(const struct history *h)
{
	return h->first + h->count - 1;
}

size_t history_count(const struct history *h)
{
	return h->count;
}

size_t history_bytes(const struct history *h)
{
	return h->bytes;
}

int history_covers(const struct history *h, uint64_t seq)
{
	return seq + 1 >= h->first && seq <= history_last(h);
}
