/*
 * hub.h - the daemon's shared state and the fan-out: broker messages become
 * shared msg objects with event ids, enter the history ring and the
 * last-value cache, and are matched through the subscription trie to the
 * sessions' queues. Subscribe (snapshot, resume, reset) and unsubscribe.
 * One hub per process, owned and used by the event loop thread only
 * (redis-style global).
 */
#ifndef MQGATE_HUB_H
#define MQGATE_HUB_H

#include <stdbool.h>
#include <stdint.h>

#include "acl.h"
#include "proto.h"
#include "session.h"

struct conf;
struct lws_context;
struct broker_set;
struct inbox;
struct inbox_event;

struct hub {
	const struct conf *conf;     /* in force; owned by main */
	struct lws_context *ctx;
	struct broker_set *brokers;
	struct inbox *inbox;
	struct history *history;
	struct lvc *lvc;
	struct trie *trie;
	struct session *sessions;    /* every client */
	uint64_t seq;                /* last event sequence number */
	uint64_t next_session_id;
	uint64_t snapshot_gen;
	struct acl anonymous;        /* permissions without a token */
	bool draining;
};

extern struct hub hub;

/* Sets up history, cache, trie and the anonymous ACL from conf. 0/-ENOMEM. */
int hub_init(const struct conf *conf);
/* Applies a new conf's limits and ACL (reload). */
int hub_apply_conf(const struct conf *conf);
void hub_fini(void);

/* Handles every event the inbox holds. */
void hub_drain_inbox(void);

struct session *hub_session_new(enum session_kind kind, struct lws *wsi);
void hub_session_free(struct session *s);

/* Checks a subscribe request without changing anything: every filter valid,
 * inside the walls and allowed, and the count within max_subscriptions.
 * On failure returns the code and writes a message naming the filter. */
enum proto_code hub_subscribe_check(const struct session *s,
				    char *const *filters, size_t n,
				    char *why, size_t whylen);
/* Subscribes (after hub_subscribe_check succeeded): queues reset /
 * snapshot / replay as PROTOCOL.md says. since may be NULL. 0/-ENOMEM. */
int hub_subscribe(struct session *s, char *const *filters, size_t n,
		  const char *since, bool snapshot);
void hub_unsubscribe(struct session *s, char *const *filters, size_t n);

/* Moves replayed history into the session's queue as room allows. */
void hub_session_fill(struct session *s);

#endif
