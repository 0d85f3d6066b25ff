/*
 * sse.c - the Server-Sent Events endpoint GET /events: query and
 * Last-Event-ID parsing, checks (credentials, filters, capacity) answered
 * with plain HTTP statuses before the stream starts, then a session whose
 * queue carries "id:/data:" events. Each connection's user data is its
 * session pointer; the session is owned by the hub.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "hub.h"
#include "log.h"
#include "metrics.h"
#include "netaddr.h"
#include "server.h"
#include "session.h"

#define SSE_MAX_TOPICS 100
#define SSE_ARG_MAX 8192

struct sse_request {
	char *topics[SSE_MAX_TOPICS];
	size_t ntopics;
	bool snapshot;
	char last_id[64];
	bool has_last_id;
};

static void sse_request_free(struct sse_request *r)
{
	for (size_t i = 0; i < r->ntopics; i++)
		free(r->topics[i]);
}

/* Reads topic=, snapshot=, lastEventId= from the query and the
 * Last-Event-ID header (which wins). Returns 0 or a message. */
static const char *sse_parse(struct lws *wsi, struct sse_request *r)
{
	char *arg = malloc(SSE_ARG_MAX);
	const char *err = NULL;
	int n;

	if (!arg)
		return "out of memory";
	r->snapshot = true;
	for (int i = 0;; i++) {
		n = lws_hdr_copy_fragment(wsi, arg, SSE_ARG_MAX,
					  WSI_TOKEN_HTTP_URI_ARGS, i);
		if (n < 0)
			break;
		if (strncmp(arg, "topic=", 6) == 0) {
			if (r->ntopics == SSE_MAX_TOPICS) {
				err = "too many topic parameters";
				break;
			}
			if (!(r->topics[r->ntopics] = strdup(arg + 6))) {
				err = "out of memory";
				break;
			}
			r->ntopics++;
		} else if (strncmp(arg, "snapshot=", 9) == 0) {
			if (strcmp(arg + 9, "0") == 0 || strcmp(arg + 9, "false") == 0)
				r->snapshot = false;
			else if (strcmp(arg + 9, "1") == 0 || strcmp(arg + 9, "true") == 0)
				r->snapshot = true;
			else {
				err = "snapshot must be 0 or 1";
				break;
			}
		} else if (strncmp(arg, "lastEventId=", 12) == 0) {
			snprintf(r->last_id, sizeof(r->last_id), "%s", arg + 12);
			r->has_last_id = r->last_id[0] != 0;
		}
	}
	free(arg);
	if (!err && lws_hdr_custom_length(wsi, "last-event-id:", 14) > 0) {
		char hdr[64];

		n = lws_hdr_custom_copy(wsi, hdr, sizeof(hdr), "last-event-id:", 14);
		if (n > 0) {
			snprintf(r->last_id, sizeof(r->last_id), "%s", hdr);
			r->has_last_id = true;
		}
	}
	if (!err && r->ntopics == 0)
		err = "at least one topic= parameter is required";
	return err;
}

static int sse_start(struct lws *wsi, struct session **pss, const char *path)
{
	struct sse_request r;
	struct session probe, *s;
	const char *err;
	char why[320];
	enum proto_code c;
	unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
			*end = buf + sizeof(buf) - 1;
	static const char retry[] = "retry: 2000\n\n";

	char uri[16];

	(void)path;
	/* The mount also sees /events/anything: only /events itself is ours. */
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0 &&
	    (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
	     strcmp(uri, "/events") != 0))
		return server_http_not_found(wsi);
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0)
		return server_http_error(wsi, PROTO_BAD_REQUEST,
					 "/events takes GET");
	memset(&r, 0, sizeof(r));
	memset(&probe, 0, sizeof(probe));
	c = server_authenticate(wsi, &probe.acl, &probe.expires_ms, why,
				sizeof(why));
	if (c == PROTO_OK && (err = sse_parse(wsi, &r))) {
		c = PROTO_BAD_REQUEST;
		snprintf(why, sizeof(why), "%s", err);
	}
	if (c == PROTO_OK)
		c = hub_subscribe_check(&probe, r.topics, r.ntopics, why,
					sizeof(why));
	if (c == PROTO_OK && server_full()) {
		c = PROTO_UNAVAILABLE;
		snprintf(why, sizeof(why), "%s",
			 hub.draining ? "shutting down" : "too many clients");
	}
	if (c != PROTO_OK) {
		acl_free(&probe.acl);
		sse_request_free(&r);
		metrics.rejected_total[METRICS_SSE]++;
		return server_http_error(wsi, c, why);
	}
	if (lws_add_http_common_headers(wsi, 200, "text/event-stream",
					LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (const unsigned char *)"no-cache", 8,
					 &p, end) ||
	    lws_add_http_header_by_name(wsi,
			(const unsigned char *)"x-accel-buffering:",
			(const unsigned char *)"no", 2, &p, end) ||
	    server_add_cors(wsi, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end)) {
		acl_free(&probe.acl);
		sse_request_free(&r);
		return -1;
	}
	s = hub_session_new(SESSION_SSE, wsi);
	if (!s) {
		acl_free(&probe.acl);
		sse_request_free(&r);
		return -1;
	}
	*pss = s;
	s->acl = probe.acl;
	s->expires_ms = probe.expires_ms;
	if (log_enabled(LOG_LEVEL_DEBUG)) {
		char addr[NETADDR_TEXT_MAX];

		server_client_address(wsi, addr);
		log_debug("sse", "%s connected from %s", s->name, addr);
	}
	/* After this the request headers are gone. */
	lws_http_mark_sse(wsi);
	session_send_frame(s, retry, sizeof(retry) - 1);
	if (hub_subscribe(s, r.topics, r.ntopics,
			  r.has_last_id ? r.last_id : NULL, r.snapshot) < 0)
		session_close(s, 0, "out of memory");
	sse_request_free(&r);
	server_sse_watch(wsi, s);
	return 0;
}

static void sse_end(struct lws *wsi, struct session **pss)
{
	if (!pss || !*pss)
		return;
	server_sse_unwatch(wsi);
	log_debug("sse", "%s closed", (*pss)->name);
	hub_session_free(*pss);
	*pss = NULL;
}

int sse_callback(struct lws *wsi, enum lws_callback_reasons reason,
		 void *user, void *in, size_t len)
{
	struct session **pss = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		*pss = NULL;
		return sse_start(wsi, pss, in);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (!pss || !*pss)
			return 0;
		return session_write(*pss);
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		sse_end(wsi, pss);
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}
