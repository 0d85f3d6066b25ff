/*
 * history.h - the resume ring: the newest messages in sequence order,
 * bounded by count and bytes. Sequence numbers in the ring are contiguous
 * (every accepted message enters it), so finding a sequence is O(1).
 * Owns one reference to each message it holds. Loop thread only.
 */
#ifndef MQGATE_HISTORY_H
#define MQGATE_HISTORY_H

#include <stddef.h>
#include <stdint.h>

struct msg;
struct history;

struct history *history_new(size_t max_msgs, size_t max_bytes);
void history_free(struct history *h);
/* Changes the bounds (reload); evicts what no longer fits. */
void history_set_limits(struct history *h, size_t max_msgs, size_t max_bytes);

/* Appends m (takes a reference). m->seq must be one more than the last
 * pushed (or anything, for the first). Evicts the oldest to fit. Returns 0
 * or -ENOMEM (then nothing was taken). */
int history_push(struct history *h, struct msg *m);

/* The message with this sequence number, borrowed; NULL if not held. */
struct msg *history_get(const struct history *h, uint64_t seq);

/* Sequence numbers held: [first, last]; empty when first > last. Before
 * any push, first = 1 and last = 0 (or the next/previous of the last
 * evicted). */
uint64_t history_first(const struct history *h);
uint64_t history_last(const struct history *h);
size_t history_count(const struct history *h);
size_t history_bytes(const struct history *h);

/* Can a client that has seen everything up to `seq` resume, i.e. are all
 * messages after seq still held? */
int history_covers(const struct history *h, uint64_t seq);

#endif
