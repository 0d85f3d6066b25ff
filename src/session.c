/*
 * session.c - a client's outbound path: the bounded queue with its
 * slow-client policy, control frames, and the batched writer that puts
 * everything pending into one lws_write per writeable callback (frames are
 * built once per message and shared; a batch is a copy of references'
 * bytes into one buffer). Owns the queue's references.
 */
#include "session.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "hub.h"
#include "inbox.h"
#include "metrics.h"
#include "msg.h"

#define SESSION_MAX_CTRL 256        /* replies waiting before we give up */
#define SESSION_BATCH 32768         /* bytes gathered into one write */
#define SESSION_CLOSE_GRACE_S 2     /* a closing client that cannot be
				     * written to is dropped after this */

/* The write buffer: LWS_PRE bytes of head room, then the batch. */
static unsigned char *session_wbuf;
static size_t session_wcap;

static int session_wbuf_reserve(size_t need)
{
	unsigned char *n;
	size_t cap = session_wcap ? session_wcap : SESSION_BATCH + LWS_PRE;

	if (need + LWS_PRE <= session_wcap)
		return 0;
	while (cap < need + LWS_PRE)
		cap *= 2;
	n = realloc(session_wbuf, cap);
	if (!n)
		return -ENOMEM;
	session_wbuf = n;
	session_wcap = cap;
	return 0;
}

void session_wake(struct session *s)
{
	if (s->write_requested || !s->wsi)
		return;
	s->write_requested = true;
	lws_callback_on_writable(s->wsi);
}

void session_close(struct session *s, int code, const char *reason)
{
	if (s->closing)
		return;
	s->closing = true;
	s->close_code = code;
	snprintf(s->close_reason, sizeof(s->close_reason), "%s", reason);
	session_wake(s);
	/* The close goes out at the next writeable callback, which a client
	 * that stopped reading never gets: lws ends the connection anyway
	 * after a short grace. */
	if (s->wsi)
		lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK,
				SESSION_CLOSE_GRACE_S);
}

bool session_has_output(const struct session *s)
{
	return s->q_len || s->ctrl_head;
}

/* Queue entries are message pointers whose lowest bit (free: messages
 * are malloc'd) says the entry is a snapshot or replay, not a live
 * delivery; only live ones count in the delivery latency histogram. */
#define SESSION_Q_OLD ((uintptr_t)1)

static struct msg *session_q_msg(struct msg *e)
{
	return (struct msg *)((uintptr_t)e & ~SESSION_Q_OLD);
}

/* The ring slot of the i-th queued entry (i < q_cap): a compare instead
 * of a division, as this runs once per message per client. */
static size_t session_slot(const struct session *s, size_t i)
{
	size_t at = s->q_head + i;

	return at < s->q_cap ? at : at - s->q_cap;
}

struct msg *session_queued(const struct session *s, size_t i)
{
	return session_q_msg(s->q[session_slot(s, i)]);
}

static struct msg *session_pop(struct session *s)
{
	struct msg *m = session_q_msg(s->q[s->q_head]);

	s->q_head = session_slot(s, 1);
	s->q_len--;
	s->q_bytes -= msg_cost(m);
	if (s->snap_msgs) {
		s->snap_msgs--;
		s->snap_bytes -= s->snap_bytes < msg_cost(m) ? s->snap_bytes
							      : msg_cost(m);
	}
	return m;
}

/* Removes the oldest queued message on m's topic; true if there was one. */
static bool session_conflate(struct session *s, const struct msg *m)
{
	for (size_t i = 0; i < s->q_len; i++) {
		struct msg *old = session_queued(s, i);

		if (old->topic_len != m->topic_len ||
		    memcmp(old->topic, m->topic, m->topic_len) != 0)
			continue;
		for (size_t j = i; j + 1 < s->q_len; j++)
			s->q[session_slot(s, j)] = s->q[session_slot(s, j + 1)];
		s->q_len--;
		s->q_bytes -= msg_cost(old);
		msg_unref(old);
		return true;
	}
	return false;
}

/* Doubles the ring (up to limit), oldest entry first in the new one: two
 * block copies, the part up to the end of the old ring and the part that
 * wrapped to its start. */
static int session_grow(struct session *s, size_t limit)
{
	size_t cap = s->q_cap ? s->q_cap * 2 : 8, first;
	struct msg **n;

	if (cap > limit)
		cap = limit;
	if (cap <= s->q_cap)
		return -ENOBUFS;
	n = malloc(cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	first = s->q_cap - s->q_head < s->q_len ? s->q_cap - s->q_head : s->q_len;
	if (first)
		memcpy(n, s->q + s->q_head, first * sizeof(*n));
	if (s->q_len > first)
		memcpy(n + first, s->q, (s->q_len - first) * sizeof(*n));
	free(s->q);
	s->q = n;
	s->q_cap = cap;
	s->q_head = 0;
	return 0;
}

static int session_push(struct session *s, struct msg *m, bool old)
{
	const struct conf_server *cs = &hub.conf->server;
	size_t limit = (cs->queue ? cs->queue : 1) + s->snap_msgs;
	size_t cost = msg_cost(m);

	if (s->closing)
		return -ENOBUFS;
	while (s->q_len >= limit ||
	       (s->q_len && s->q_bytes + cost > cs->queue_bytes + s->snap_bytes)) {
		if (cs->slow_client == SLOW_CLIENT_DISCONNECT) {
			metrics.drops[METRICS_DROP_SLOW_DISCONNECT]++;
			session_close(s, LWS_CLOSE_STATUS_POLICY_VIOLATION,
				      "slow consumer");
			return -ENOBUFS;
		}
		if (cs->slow_client == SLOW_CLIENT_CONFLATE &&
		    session_conflate(s, m)) {
			metrics.drops[METRICS_DROP_CONFLATED]++;
			continue;
		}
		msg_unref(session_pop(s));
		metrics.drops[METRICS_DROP_QUEUE_FULL]++;
	}
	if (s->q_len == s->q_cap && session_grow(s, limit) < 0) {
		metrics.drops[METRICS_DROP_QUEUE_FULL]++;
		return -ENOMEM;
	}
	s->q[session_slot(s, s->q_len)] =
		(struct msg *)((uintptr_t)msg_ref(m) | (old ? SESSION_Q_OLD : 0));
	s->q_len++;
	s->q_bytes += cost;
	session_wake(s);
	return 0;
}

int session_enqueue(struct session *s, struct msg *m)
{
	return session_push(s, m, false);
}

int session_enqueue_replay(struct session *s, struct msg *m)
{
	return session_push(s, m, true);
}

int session_enqueue_snapshot(struct session *s, struct msg *m)
{
	s->snap_msgs++;
	s->snap_bytes += msg_cost(m);
	return session_push(s, m, true);
}

int session_send_frame(struct session *s, const void *data, size_t len)
{
	struct frame *f;

	if (s->closing)
		return 0;
	if (s->nctrl >= SESSION_MAX_CTRL) {
		session_close(s, LWS_CLOSE_STATUS_POLICY_VIOLATION,
			      "too many unread replies");
		return -ENOBUFS;
	}
	f = malloc(sizeof(*f) + len);
	if (!f)
		return -ENOMEM;
	f->next = NULL;
	f->len = len;
	memcpy(f->data, data, len);
	if (s->ctrl_tail)
		s->ctrl_tail->next = f;
	else
		s->ctrl_head = f;
	s->ctrl_tail = f;
	s->nctrl++;
	session_wake(s);
	return 0;
}

int session_send_ws_json(struct session *s, const char *json, size_t len)
{
	unsigned char hdr[10];
	size_t hl = msg_ws_header(hdr, len);
	unsigned char *buf = malloc(hl + len);
	int r;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, hdr, hl);
	memcpy(buf + hl, json, len);
	r = session_send_frame(s, buf, hl + len);
	free(buf);
	return r;
}

void session_clear_output(struct session *s)
{
	struct frame *f, *next;

	while (s->q_len)
		msg_unref(session_pop(s));
	free(s->q);
	s->q = NULL;
	s->q_cap = s->q_head = 0;
	for (f = s->ctrl_head; f; f = next) {
		next = f->next;
		free(f);
	}
	s->ctrl_head = s->ctrl_tail = NULL;
	s->nctrl = 0;
}

/* Appends bytes to the batch; false when the batch is full (an empty batch
 * always takes the item, however large). */
static bool session_batch_add(size_t *used, const void *p, size_t len)
{
	if (*used && *used + len > SESSION_BATCH)
		return false;
	if (session_wbuf_reserve(*used + len) < 0)
		return false;
	memcpy(session_wbuf + LWS_PRE + *used, p, len);
	*used += len;
	return true;
}

int session_write(struct session *s)
{
	int64_t now_us = msg_clock_us();
	size_t used = 0;
	unsigned nmsgs = 0;
	int n;

	s->write_requested = false;
	if (s->closing) {
		if (s->kind == SESSION_WS)
			lws_close_reason(s->wsi, s->close_code,
					 (unsigned char *)s->close_reason,
					 strlen(s->close_reason));
		return -1;
	}
	hub_session_fill(s);
	while (s->ctrl_head) {
		struct frame *f = s->ctrl_head;

		if (!session_batch_add(&used, f->data, f->len))
			break;
		s->ctrl_head = f->next;
		if (!s->ctrl_head)
			s->ctrl_tail = NULL;
		s->nctrl--;
		free(f);
	}
	while (s->q_len) {
		bool live = !((uintptr_t)s->q[s->q_head] & SESSION_Q_OLD);
		struct msg *m = session_q_msg(s->q[s->q_head]);
		const void *wire;
		size_t len;

		if (s->kind == SESSION_WS)
			wire = msg_ws_frame(m, &len);
		else
			wire = msg_sse_event(m, &len);
		if (wire && !session_batch_add(&used, wire, len))
			break;
		if (live && wire)
			metrics_observe_latency(now_us - m->arrival_us);
		msg_unref(session_pop(s));
		if (wire)
			nmsgs++;
	}
	if (used) {
		/* Server frames are unmasked and complete, so a WebSocket
		 * batch goes out raw, like SSE text (no extensions are
		 * negotiated). */
		n = lws_write(s->wsi, session_wbuf + LWS_PRE, used,
			      LWS_WRITE_HTTP);
		if (n < 0)
			return -1;
		metrics.messages_out[s->kind == SESSION_WS ? METRICS_WS : METRICS_SSE] += nmsgs;
		metrics.bytes_out[s->kind == SESSION_WS ? METRICS_WS : METRICS_SSE] += used;
		s->last_write_ms = inbox_now_ms();
	}
	if (session_has_output(s) || s->replaying)
		session_wake(s);
	return 0;
}
