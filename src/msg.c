/*
 * msg.c - refcounted broker messages, encoded once per wire format (see
 * msg.h). The JSON body is built when the message is made; the WebSocket
 * frame and the SSE event are built on first use, so a message nobody
 * receives over one transport never pays for that encoding.
 */
#include "msg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "payload.h"

static uint64_t msg_run_epoch;

void msg_set_epoch(uint64_t epoch)
{
	msg_run_epoch = epoch;
}

uint64_t msg_epoch(void)
{
	return msg_run_epoch;
}

int64_t msg_clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int msg_event_id(char *buf, size_t size, uint64_t epoch, uint64_t seq)
{
	return snprintf(buf, size, "%" PRIu64 "-%" PRIu64, epoch, seq);
}

/* Digits only, no sign, no leading '+', fits in 64 bits. */
static int msg_parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (!len || len > 20)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int msg_event_id_parse(const char *s, uint64_t *epoch, uint64_t *seq)
{
	const char *dash;

	if (!s || !(dash = strchr(s, '-')))
		return -EINVAL;
	if (msg_parse_u64(s, (size_t)(dash - s), epoch) < 0 ||
	    msg_parse_u64(dash + 1, strlen(dash + 1), seq) < 0)
		return -EINVAL;
	return 0;
}

size_t msg_ws_header(unsigned char *hdr, size_t len)
{
	hdr[0] = 0x81; /* FIN + text */
	if (len < 126) {
		hdr[1] = (unsigned char)len;
		return 2;
	}
	if (len <= 0xffff) {
		hdr[1] = 126;
		hdr[2] = (unsigned char)(len >> 8);
		hdr[3] = (unsigned char)len;
		return 4;
	}
	hdr[1] = 127;
	for (int i = 0; i < 8; i++)
		hdr[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
	return 10;
}

struct msg *msg_new(const char *topic, size_t topic_len, const void *payload,
		    size_t payload_len, int qos, bool retain, int64_t ts_ms,
		    uint64_t seq)
{
	struct msg *m = calloc(1, sizeof(*m));
	char *pj = NULL, *o;
	size_t pj_len, cap;
	bool base64;
	char tail[96];
	int tail_len;

	if (!m)
		return NULL;
	m->refs = 1;
	m->seq = seq;
	m->arrival_us = msg_clock_us();
	m->ts_ms = ts_ms;
	m->qos = (uint8_t)qos;
	m->retain = retain;
	m->empty = payload_len == 0;
	m->topic = malloc(topic_len + 1);
	if (!m->topic)
		goto fail;
	memcpy(m->topic, topic, topic_len);
	m->topic[topic_len] = 0;
	m->topic_len = topic_len;

	pj = payload_to_json(payload, payload_len, &base64, &pj_len);
	if (!pj)
		goto fail;
	tail_len = snprintf(tail, sizeof(tail),
			    "%s,\"retain\":%s,\"qos\":%d,\"ts\":%" PRId64,
			    base64 ? ",\"encoding\":\"base64\"" : "",
			    retain ? "true" : "false", qos, ts_ms);
	cap = sizeof("\"topic\":,\"payload\":") + payload_json_string_max(topic_len) +
	      pj_len + (size_t)tail_len;
	m->body = malloc(cap);
	if (!m->body)
		goto fail;
	o = m->body;
	memcpy(o, "\"topic\":", 8);
	o += 8;
	o += payload_json_string(o, topic, topic_len);
	memcpy(o, ",\"payload\":", 11);
	o += 11;
	memcpy(o, pj, pj_len);
	o += pj_len;
	memcpy(o, tail, (size_t)tail_len);
	o += tail_len;
	m->body_len = (size_t)(o - m->body);
	free(pj);
	/* The topic's escaping was sized for the worst case. */
	if (m->body_len < cap / 2) {
		char *shrunk = realloc(m->body, m->body_len);

		if (shrunk)
			m->body = shrunk;
	}
	return m;
fail:
	free(pj);
	free(m->topic);
	free(m->body);
	free(m);
	return NULL;
}

void msg_unref(struct msg *m)
{
	if (!m || --m->refs)
		return;
	free(m->topic);
	free(m->body);
	free(m->ws);
	free(m->sse);
	free(m);
}

const unsigned char *msg_ws_frame(struct msg *m, size_t *len)
{
	char head[80];
	int hl;
	size_t plen, fl;
	unsigned char *f;

	if (m->ws) {
		*len = m->ws_len;
		return m->ws;
	}
	hl = snprintf(head, sizeof(head),
		      "{\"op\":\"message\",\"event\":\"%" PRIu64 "-%" PRIu64 "\",",
		      msg_run_epoch, m->seq);
	plen = (size_t)hl + m->body_len + 1;
	f = malloc(10 + plen);
	if (!f)
		return NULL;
	fl = msg_ws_header(f, plen);
	memcpy(f + fl, head, (size_t)hl);
	memcpy(f + fl + hl, m->body, m->body_len);
	f[fl + (size_t)hl + m->body_len] = '}';
	m->ws = f;
	m->ws_len = fl + plen;
	*len = m->ws_len;
	return m->ws;
}

const char *msg_sse_event(struct msg *m, size_t *len)
{
	char head[80];
	int hl;
	char *e;

	if (m->sse) {
		*len = m->sse_len;
		return m->sse;
	}
	hl = snprintf(head, sizeof(head), "id: %" PRIu64 "-%" PRIu64 "\ndata: {",
		      msg_run_epoch, m->seq);
	e = malloc((size_t)hl + m->body_len + 3);
	if (!e)
		return NULL;
	memcpy(e, head, (size_t)hl);
	memcpy(e + hl, m->body, m->body_len);
	memcpy(e + hl + m->body_len, "}\n\n", 3);
	m->sse = e;
	m->sse_len = (size_t)hl + m->body_len + 3;
	*len = m->sse_len;
	return m->sse;
}

size_t msg_cost(const struct msg *m)
{
	/* What the message may come to hold: its body plus both wire forms,
	 * so queue and history bounds hold whichever transports use it. */
	return sizeof(*m) + m->topic_len + 1 + 3 * m->body_len + 128;
}
