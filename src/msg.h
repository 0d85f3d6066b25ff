/*
 * msg.h - one message from a broker, as browsers see it: refcounted,
 * encoded once per wire format and shared by every recipient, the history
 * ring and the last-value cache. Loop thread only (plain refcount).
 *
 * The JSON body shared by both formats is built at creation:
 *   "topic":T,"payload":P[,"encoding":"base64"],"retain":R,"qos":Q,"ts":TS
 * The WebSocket frame (header + {"op":"message","event":E,<body>}) and the
 * SSE event ("id: E\ndata: {<body>}\n\n") are built on first use.
 */
#ifndef MQGATE_MSG_H
#define MQGATE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct msg {
	unsigned refs;
	uint64_t seq;        /* event sequence number, > 0 */
	int64_t ts_ms;       /* arrival, ms since the Unix epoch */
	int64_t arrival_us;  /* when made, msg_clock_us() */
	uint8_t qos;
	bool retain;
	bool empty;          /* zero-length payload (clears a retained topic) */
	char *topic;         /* browser topic (mount included), NUL-terminated */
	size_t topic_len;
	char *body;          /* JSON members, see above; not NUL-terminated */
	size_t body_len;
	unsigned char *ws;   /* complete unmasked WS text frame, or NULL */
	size_t ws_len;
	char *sse;           /* complete SSE event, or NULL */
	size_t sse_len;
	uint64_t mark;       /* scratch for the loop: de-duplicates a message
			      * within one snapshot (see hub.c) */
};

/* A monotonic clock in microseconds, for latencies. */
int64_t msg_clock_us(void);

/* The run's epoch, part of every event id ("<epoch>-<seq>"). Set once at
 * start-up before any message is made. */
void msg_set_epoch(uint64_t epoch);
uint64_t msg_epoch(void);

/* Makes a message with one reference. Copies topic and payload. The payload
 * is encoded as PROTOCOL.md says (JSON value / string / base64). NULL on
 * ENOMEM. */
struct msg *msg_new(const char *topic, size_t topic_len, const void *payload,
		    size_t payload_len, int qos, bool retain, int64_t ts_ms,
		    uint64_t seq);

static inline struct msg *msg_ref(struct msg *m)
{
	m->refs++;
	return m;
}
void msg_unref(struct msg *m);

/* The WebSocket frame / SSE event, built on first call. NULL on ENOMEM. */
const unsigned char *msg_ws_frame(struct msg *m, size_t *len);
const char *msg_sse_event(struct msg *m, size_t *len);

/* Bytes this message holds, for history/queue accounting. */
size_t msg_cost(const struct msg *m);

/* Writes "<epoch>-<seq>" into buf (at least 42 bytes); returns length. */
int msg_event_id(char *buf, size_t size, uint64_t epoch, uint64_t seq);
/* Parses an event id. 0, or -EINVAL when it is not of that form. */
int msg_event_id_parse(const char *s, uint64_t *epoch, uint64_t *seq);

/* Writes a WebSocket frame header for a text frame of `len` payload bytes
 * into hdr (at least 10 bytes); returns the header length. */
size_t msg_ws_header(unsigned char *hdr, size_t len);

#endif
