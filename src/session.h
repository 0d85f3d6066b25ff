/*
 * session.h - one browser client, WebSocket or SSE: its subscriptions, its
 * bounded outbound queue (shared message references plus a few control
 * frames), the replay cursor of a resume, its permissions and publish rate.
 * A session is owned by the hub's list and freed by hub_session_free();
 * it borrows its lws connection. Loop thread only.
 */
#ifndef MQGATE_SESSION_H
#define MQGATE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acl.h"
#include "ratelimit.h"

struct lws;
struct msg;
struct trie_entry;

enum session_kind { SESSION_WS, SESSION_SSE };

/* One subscription filter of a session; the trie holds it by its entry. */
struct sub {
	struct session *session;
	struct trie_entry *entry;
	bool replaying;      /* resume in progress: only replay delivers */
	uint64_t since;      /* replaying: messages after this seq */
	uint64_t live_since; /* live: every message after this seq came live */
	char filter[];
};

/* A control frame (reply, reset, keepalive), already framed for the wire. */
struct frame {
	struct frame *next;
	size_t len;
	unsigned char data[];
};

struct session {
	struct session *prev, *next; /* hub list */
	enum session_kind kind;
	struct lws *wsi;
	uint64_t id;
	char name[24];               /* "ws#12", for logs */

	struct sub **subs;
	size_t nsubs, subs_cap;

	struct msg **q;              /* ring of queued messages (tagged:
				      * read with session_queued) */
	size_t q_head, q_len, q_cap, q_bytes;
	/* Room a snapshot added on top of the queue bounds, given back as
	 * messages leave, so a snapshot larger than `queue` is neither cut
	 * by the slow-client policy nor a reason to disconnect. */
	size_t snap_msgs, snap_bytes;
	struct frame *ctrl_head, *ctrl_tail;
	size_t nctrl;

	bool replaying;
	uint64_t replay_next;        /* next seq to consider */
	uint64_t last_seq;           /* de-duplicates live delivery */

	struct acl acl;
	int64_t expires_ms;          /* credentials expire; 0 = never */
	struct ratelimit rate;       /* publish rate bucket */
	unsigned pending_publishes;

	bool write_requested;
	bool closing;                /* close at the next writeable */
	int close_code;
	char close_reason[64];
	int64_t last_write_ms;

	/* WebSocket receive: a message being reassembled. */
	char *rx;
	size_t rx_len, rx_cap;
	bool rx_discard;             /* current message is over the limit */
};

/* Queues a message (takes a reference) under the slow-client policy.
 * Returns 0, or -ENOBUFS when the policy says disconnect. */
int session_enqueue(struct session *s, struct msg *m);
/* The same for a message replayed from history (not a live delivery). */
int session_enqueue_replay(struct session *s, struct msg *m);
/* The i-th queued message from the oldest (i < q_len), borrowed. */
struct msg *session_queued(const struct session *s, size_t i);
/* The same for a snapshot message: the bounds grow by its size (the
 * last-value cache bounds the snapshot). */
int session_enqueue_snapshot(struct session *s, struct msg *m);
/* Queues a control frame of len bytes (copied). 0, -ENOMEM, -ENOBUFS when
 * too many replies are waiting. */
int session_send_frame(struct session *s, const void *data, size_t len);
/* Frames and queues a JSON text as a WebSocket text frame. */
int session_send_ws_json(struct session *s, const char *json, size_t len);
/* Requests a writeable callback once. */
void session_wake(struct session *s);
/* Marks the session for closing at its next writeable. */
void session_close(struct session *s, int code, const char *reason);
bool session_has_output(const struct session *s);

/* Writes what is queued, batched into one lws_write. Returns 0, or -1 when
 * the connection must close (write error or session_close). Re-arms the
 * writeable callback when more remains. */
int session_write(struct session *s);

/* Frees queued output (on close). */
void session_clear_output(struct session *s);

#endif
