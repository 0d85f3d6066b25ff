/*
 * hub.c - shared state and the fan-out (see hub.h): ingest, match,
 * snapshot, resume. Owns the history ring, the last-value cache, the
 * subscription trie and every session.
 */
#include "hub.h"

#include <errno.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "backend.h"
#include "conf.h"
#include "history.h"
#include "inbox.h"
#include "log.h"
#include "lvc.h"
#include "metrics.h"
#include "msg.h"
#include "publish.h"
#include "topic.h"
#include "trie.h"

struct hub hub;

/* ---- configuration ------------------------------------------------------ */

/* CONFIG.md: without jwt, anonymous clients may subscribe to '#' and
 * publish nowhere, unless the lists say otherwise; with jwt both lists
 * default to empty. */
static int hub_build_anonymous(const struct conf *conf, struct acl *a)
{
	const struct conf_auth *au = &conf->auth;
	bool jwt = au->jwt_secret || au->jwt_public_key;
	static char hash[] = "#";
	static char *all[] = { hash };

	memset(a, 0, sizeof(*a));
	if (au->anonymous_subscribe_set) {
		a->sub = au->anonymous_subscribe.v;
		a->nsub = au->anonymous_subscribe.n;
	} else if (!jwt) {
		a->sub = all;
		a->nsub = 1;
	}
	if (au->anonymous_publish_set) {
		a->pub = au->anonymous_publish.v;
		a->npub = au->anonymous_publish.n;
	}
	return 0;
}

int hub_init(const struct conf *conf)
{
	const struct conf_server *cs = &conf->server;

	hub.conf = conf;
	hub.history = history_new(cs->history, cs->history_bytes);
	hub.lvc = lvc_new(cs->cache, cs->cache_bytes);
	hub.trie = trie_new();
	if (!hub.history || !hub.lvc || !hub.trie)
		return -ENOMEM;
	return hub_build_anonymous(conf, &hub.anonymous);
}

int hub_apply_conf(const struct conf *conf)
{
	const struct conf_server *cs = &conf->server;

	hub.conf = conf;
	history_set_limits(hub.history, cs->history, cs->history_bytes);
	lvc_set_limits(hub.lvc, cs->cache, cs->cache_bytes);
	return hub_build_anonymous(conf, &hub.anonymous);
}

void hub_fini(void)
{
	while (hub.sessions)
		hub_session_free(hub.sessions);
	trie_free(hub.trie);
	lvc_free(hub.lvc);
	history_free(hub.history);
	hub.trie = NULL;
	hub.lvc = NULL;
	hub.history = NULL;
}

/* ---- ingest ------------------------------------------------------------- */

struct hub_match {
	struct msg *m;
};

static void hub_match_visit(void *value, void *arg)
{
	struct sub *sub = value;
	struct session *s = sub->session;
	struct msg *m = ((struct hub_match *)arg)->m;

	if (sub->replaying || s->last_seq == m->seq)
		return;
	s->last_seq = m->seq;
	session_enqueue(s, m);
}

static void hub_ingest(struct inbox_event *e)
{
	struct broker *b = e->broker;
	size_t tlen = b->mount_len + e->topic_len;
	char *topic;
	struct msg *m;
	struct hub_match hm;

	b->messages_in++;
	b->bytes_in += e->payload_len;
	metrics.messages_in++;
	if (e->payload_len > hub.conf->server.max_message) {
		metrics.messages_too_large++;
		log_debug(b->log_module, "message on '%s' over max_message (%zu bytes), not relayed",
			  e->topic, e->payload_len);
		return;
	}
	topic = malloc(tlen + 1);
	if (!topic)
		goto nomem;
	memcpy(topic, b->mount, b->mount_len);
	memcpy(topic + b->mount_len, e->topic, e->topic_len + 1);
	if (topic_validate(topic, tlen, TOPIC_NAME, NULL) < 0) {
		log_debug(b->log_module, "invalid topic from broker, dropped");
		free(topic);
		return;
	}
	m = msg_new(topic, tlen, e->payload, e->payload_len, e->qos, e->retain,
		    e->ts_ms, hub.seq + 1);
	free(topic);
	if (!m)
		goto nomem;
	if (history_push(hub.history, m) < 0) {
		msg_unref(m);
		goto nomem;
	}
	hub.seq++;
	if (lvc_put(hub.lvc, m) < 0)
		log_err("hub", "out of memory: last value of %s not cached",
			m->topic);
	hm.m = m;
	trie_match(hub.trie, m->topic, hub_match_visit, &hm);
	msg_unref(m);
	return;
nomem:
	log_err("hub", "out of memory: message from %s dropped", b->name);
}

static void hub_broker_state(struct inbox_event *e)
{
	struct broker *b = e->broker;
	enum mqgate_broker_state old = b->state;

	b->state = e->state;
	snprintf(b->why, sizeof(b->why), "%s", e->why);
	if (old == e->state)
		return;
	if (e->state == MQGATE_STATE_CONNECTED) {
		b->connects++;
		/* The plugin says more about it at notice level. */
		log_debug(b->log_module, "state: connected%s%s",
			  e->why[0] ? ": " : "", e->why);
	} else if (e->state == MQGATE_STATE_DOWN) {
		log_warning(b->log_module, "down%s%s", e->why[0] ? ": " : "",
			    e->why);
	}
}

void hub_drain_inbox(void)
{
	struct inbox_event *e = inbox_take(hub.inbox), *next;

	for (; e; e = next) {
		next = e->next;
		switch (e->kind) {
		case INBOX_MESSAGE:
			hub_ingest(e);
			break;
		case INBOX_STATE:
			hub_broker_state(e);
			break;
		case INBOX_PUBLISH_DONE:
			publish_done(e->token, e->result, e->why);
			break;
		}
		inbox_event_free(e);
	}
}

/* ---- sessions ----------------------------------------------------------- */

/* A WebSocket peer that leaves data unacknowledged for twice the
 * keepalive plus 5 s (the server's pings make sure there is some) is
 * dropped by the kernel: the hang-up of lws's ping policy, which
 * server.c turns off because its timers cost O(clients) each. */
static void hub_session_user_timeout(struct lws *wsi)
{
	int64_t ka = hub.conf->server.keepalive_ms;
	unsigned int ms;
	int fd = lws_get_socket_fd(wsi);

	if (ka <= 0 || fd < 0 || ka > (int64_t)(UINT32_MAX - 5000) / 2)
		return;
	ms = (unsigned int)(2 * ka + 5000);
	if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms)) < 0)
		log_debug("hub", "TCP_USER_TIMEOUT: %s", strerror(errno));
}

struct session *hub_session_new(enum session_kind kind, struct lws *wsi)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->kind = kind;
	s->wsi = wsi;
	if (kind == SESSION_WS && wsi)
		hub_session_user_timeout(wsi);
	s->id = ++hub.next_session_id;
	snprintf(s->name, sizeof(s->name), "%s#%llu",
		 kind == SESSION_WS ? "ws" : "sse", (unsigned long long)s->id);
	s->last_write_ms = inbox_now_ms();
	ratelimit_init(&s->rate, &hub.conf->server, s->last_write_ms);
	s->next = hub.sessions;
	if (hub.sessions)
		hub.sessions->prev = s;
	hub.sessions = s;
	metrics.clients[kind == SESSION_WS ? METRICS_WS : METRICS_SSE]++;
	metrics.connections_total[kind == SESSION_WS ? METRICS_WS : METRICS_SSE]++;
	return s;
}

static void hub_sub_free(struct sub *sub)
{
	trie_remove(hub.trie, sub->entry);
	metrics.subscriptions--;
	free(sub);
}

void hub_session_free(struct session *s)
{
	if (!s)
		return;
	publish_detach_session(s);
	for (size_t i = 0; i < s->nsubs; i++)
		hub_sub_free(s->subs[i]);
	free(s->subs);
	session_clear_output(s);
	acl_free(&s->acl);
	free(s->rx);
	if (s->prev)
		s->prev->next = s->next;
	else
		hub.sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	metrics.clients[s->kind == SESSION_WS ? METRICS_WS : METRICS_SSE]--;
	free(s);
}

static struct sub *hub_find_sub(const struct session *s, const char *filter)
{
	for (size_t i = 0; i < s->nsubs; i++)
		if (strcmp(s->subs[i]->filter, filter) == 0)
			return s->subs[i];
	return NULL;
}

static const struct acl *hub_session_acl(const struct session *s)
{
	return s->acl.sub || s->acl.pub || s->acl.owned ? &s->acl
							: &hub.anonymous;
}

enum proto_code hub_subscribe_check(const struct session *s,
				    char *const *filters, size_t n,
				    char *why, size_t whylen)
{
	const struct acl *acl = hub_session_acl(s);
	size_t added = 0;
	const char *reason;

	if (n == 0) {
		snprintf(why, whylen, "no topics given");
		return PROTO_BAD_REQUEST;
	}
	for (size_t i = 0; i < n; i++) {
		const char *f = filters[i];

		if (topic_validate(f, strlen(f), TOPIC_FILTER, &reason) < 0) {
			snprintf(why, whylen, "bad topic filter '%.200s': %s", f,
				 reason);
			return PROTO_BAD_REQUEST;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const char *f = filters[i];

		if (!broker_set_may_subscribe(hub.brokers, f) ||
		    !acl_may_subscribe(acl, f)) {
			snprintf(why, whylen, "not allowed to subscribe to %.200s",
				 f);
			return PROTO_FORBIDDEN;
		}
		if (!hub_find_sub(s, f))
			added++;
	}
	if (s->nsubs + added > hub.conf->server.max_subscriptions) {
		snprintf(why, whylen, "too many subscriptions (at most %llu)",
			 (unsigned long long)hub.conf->server.max_subscriptions);
		return PROTO_TOO_LARGE;
	}
	return PROTO_OK;
}

struct hub_snapshot {
	struct msg **v;
	size_t n, cap;
	uint64_t gen;
	bool nomem;
};

static void hub_snapshot_visit(struct msg *m, void *arg)
{
	struct hub_snapshot *hs = arg;

	if (m->mark == hs->gen)
		return;
	if (hs->n == hs->cap) {
		size_t cap = hs->cap ? hs->cap * 2 : 64;
		struct msg **v = realloc(hs->v, cap * sizeof(*v));

		if (!v) {
			hs->nomem = true;
			return;
		}
		hs->v = v;
		hs->cap = cap;
	}
	m->mark = hs->gen;
	hs->v[hs->n++] = m;
}

static int hub_by_seq(const void *a, const void *b)
{
	const struct msg *x = *(struct msg *const *)a, *y = *(struct msg *const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Queues the newest message of every topic the filters match, each once,
 * oldest first. */
static void hub_snapshot(struct session *s, char *const *filters, size_t n)
{
	struct hub_snapshot hs = { .gen = ++hub.snapshot_gen };

	for (size_t i = 0; i < n; i++)
		lvc_match(hub.lvc, filters[i], hub_snapshot_visit, &hs);
	if (hs.nomem)
		log_err("hub", "%s: out of memory, snapshot incomplete", s->name);
	if (hs.n > 1)
		qsort(hs.v, hs.n, sizeof(*hs.v), hub_by_seq);
	for (size_t i = 0; i < hs.n; i++)
		session_enqueue_snapshot(s, hs.v[i]);
	free(hs.v);
}

static void hub_send_reset(struct session *s)
{
	static const char ws[] = "{\"op\":\"reset\",\"reason\":\"history_gap\"}";
	static const char sse[] =
		"event: reset\ndata: {\"reason\":\"history_gap\"}\n\n";

	if (s->kind == SESSION_WS)
		session_send_ws_json(s, ws, sizeof(ws) - 1);
	else
		session_send_frame(s, sse, sizeof(sse) - 1);
}

static int hub_add_sub(struct session *s, const char *filter, bool replay,
		       uint64_t since)
{
	size_t len = strlen(filter);
	struct sub *sub;

	if (s->nsubs == s->subs_cap) {
		size_t cap = s->subs_cap ? s->subs_cap * 2 : 4;
		struct sub **v = realloc(s->subs, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->subs = v;
		s->subs_cap = cap;
	}
	sub = malloc(sizeof(*sub) + len + 1);
	if (!sub)
		return -ENOMEM;
	memcpy(sub->filter, filter, len + 1);
	sub->session = s;
	sub->replaying = replay;
	sub->since = since;
	sub->live_since = hub.seq;
	sub->entry = trie_add(hub.trie, sub->filter, sub);
	if (!sub->entry) {
		free(sub);
		return -ENOMEM;
	}
	s->subs[s->nsubs++] = sub;
	metrics.subscriptions++;
	return 0;
}

int hub_subscribe(struct session *s, char *const *filters, size_t n,
		  const char *since, bool snapshot)
{
	bool resume = false;
	uint64_t epoch, seq = 0;

	if (since) {
		resume = msg_event_id_parse(since, &epoch, &seq) == 0 &&
			 epoch == msg_epoch() &&
			 history_covers(hub.history, seq) &&
			 (!s->replaying || seq + 1 >= s->replay_next);
		if (!resume)
			hub_send_reset(s);
	}
	for (size_t i = 0; i < n; i++) {
		if (hub_find_sub(s, filters[i]))
			continue;
		if (hub_add_sub(s, filters[i], resume, seq) < 0)
			return -ENOMEM;
	}
	if (resume) {
		if (!s->replaying || seq + 1 < s->replay_next)
			s->replay_next = seq + 1;
		s->replaying = true;
		session_wake(s);
	} else if (snapshot) {
		hub_snapshot(s, filters, n);
	}
	return 0;
}

void hub_unsubscribe(struct session *s, char *const *filters, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < s->nsubs; j++) {
			if (strcmp(s->subs[j]->filter, filters[i]) != 0)
				continue;
			hub_sub_free(s->subs[j]);
			s->subs[j] = s->subs[--s->nsubs];
			break;
		}
	}
}

/* ---- resume ------------------------------------------------------------- */

/* Should replay deliver m? Only for a replaying filter that wants it, and
 * not when a live filter of the session already delivered it. */
static bool hub_replay_wants(const struct session *s, const struct msg *m)
{
	bool want = false;

	for (size_t i = 0; i < s->nsubs; i++) {
		const struct sub *sub = s->subs[i];

		if (!topic_matches(sub->filter, m->topic))
			continue;
		if (!sub->replaying && m->seq > sub->live_since)
			return false;
		if (sub->replaying && m->seq > sub->since)
			want = true;
	}
	return want;
}

static void hub_replay_finish(struct session *s, bool gap)
{
	char **filters = NULL;
	size_t n = 0;

	if (gap)
		filters = calloc(s->nsubs + 1, sizeof(*filters));
	for (size_t i = 0; i < s->nsubs; i++) {
		struct sub *sub = s->subs[i];

		if (!sub->replaying)
			continue;
		sub->replaying = false;
		sub->live_since = hub.seq;
		if (filters)
			filters[n++] = sub->filter;
	}
	s->replaying = false;
	if (gap) {
		/* The history moved past the cursor while the client was
		 * catching up: start over from the current state. */
		hub_send_reset(s);
		if (filters)
			hub_snapshot(s, filters, n);
		free(filters);
	}
}

void hub_session_fill(struct session *s)
{
	uint64_t last = history_last(hub.history);
	size_t room, limit = hub.conf->server.queue ? hub.conf->server.queue : 1;

	if (!s->replaying)
		return;
	if (s->replay_next < history_first(hub.history) &&
	    s->replay_next <= last) {
		hub_replay_finish(s, true);
		return;
	}
	room = s->q_len < limit ? limit - s->q_len : 0;
	while (room && s->replay_next <= last) {
		struct msg *m = history_get(hub.history, s->replay_next++);

		if (m && hub_replay_wants(s, m)) {
			session_enqueue_replay(s, m);
			room--;
		}
	}
	if (s->replay_next > last)
		hub_replay_finish(s, false);
}
