/*
 * lvc.h - last-value cache: the newest message of every topic, so a new
 * subscriber gets the current state at once, even from brokers that keep
 * no retained messages. Bounded by topics and bytes; the topic updated
 * longest ago is evicted first. A retained message with an empty payload
 * clears its topic (MQTT semantics). Stored as a topic trie, so a filter
 * visits only the topics it can match.
 * Owns one reference to each message it holds. Loop thread only.
 */
#ifndef MQGATE_LVC_H
#define MQGATE_LVC_H

#include <stddef.h>

struct msg;
struct lvc;

struct lvc *lvc_new(size_t max_topics, size_t max_bytes);
void lvc_free(struct lvc *c);
void lvc_set_limits(struct lvc *c, size_t max_topics, size_t max_bytes);

/* Records m as its topic's newest message (takes a reference), or clears
 * the topic for an empty retained message. 0 or -ENOMEM. */
int lvc_put(struct lvc *c, struct msg *m);

/* Calls fn(msg, arg) for every cached topic that the valid filter matches,
 * messages borrowed. fn must not modify the cache. */
typedef void (*lvc_visit_fn)(struct msg *m, void *arg);
void lvc_match(const struct lvc *c, const char *filter, lvc_visit_fn fn,
	       void *arg);

size_t lvc_count(const struct lvc *c);
size_t lvc_bytes(const struct lvc *c);

#endif
