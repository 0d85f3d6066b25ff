/*
 * http.c - the small HTTP API: POST /publish (deferred until the broker
 * answers), GET /healthz, /livez, /readyz and /metrics. Each connection's
 * user data points to a struct api_req owned by this file, freed when the
 * transaction or the connection ends.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "conf.h"
#include "history.h"
#include "hub.h"
#include "inbox.h"
#include "json.h"
#include "log.h"
#include "lvc.h"
#include "netaddr.h"
#include "metrics.h"
#include "publish.h"
#include "ratelimit.h"
#include "server.h"

#define HTTP_PUBLISH_TIMEOUT_S 30  /* backstop; brokers answer within 10 s */

/* Replies with a JSON literal. */
#define api_reply_literal(wsi, status, text)                            \
	server_http_reply(wsi, status, "application/json", text,         \
			  sizeof(text) - 1)

struct api_req {
	char *body;
	size_t len, expected;
	bool pending;        /* waiting for the broker */
	bool reply_ready;
	int status;
	char *reply;         /* JSON body to send at the next writeable */
	struct acl acl;
	char addr[NETADDR_TEXT_MAX]; /* the client, for its rate bucket */
};

static void api_req_free(struct lws *wsi, struct api_req **pr)
{
	struct api_req *r = *pr;

	if (!r)
		return;
	if (r->pending)
		publish_detach_http(wsi);
	acl_free(&r->acl);
	free(r->body);
	free(r->reply);
	free(r);
	*pr = NULL;
}

/* Queues the reply for the next writeable callback (works for replies made
 * inside a callback and for those the broker completes later). */
static void api_reply_later(struct lws *wsi, struct api_req *r, int status,
			    char *body)
{
	free(r->reply);
	r->reply = body;
	r->status = status;
	r->reply_ready = true;
	r->pending = false;
	lws_callback_on_writable(wsi);
}

void http_publish_reply(struct lws *wsi, enum proto_code code, const char *why)
{
	struct api_req **pr = lws_wsi_user(wsi), *r = pr ? *pr : NULL;
	char *body;

	if (!r)
		return;
	body = code == PROTO_OK ? strdup("{\"ok\":true}")
				: proto_http_error(code, why);
	api_reply_later(wsi, r, proto_code_http_status(code), body);
}

static int api_healthz(struct lws *wsi, bool brief)
{
	cJSON *root = cJSON_CreateObject(), *brokers;
	bool up = broker_set_all_up(hub.brokers) && !hub.draining;
	char *text;
	int r;

	if (!root)
		return -1;
	cJSON_AddStringToObject(root, "status", up ? "ok" : "degraded");
	if (!brief) {
		brokers = cJSON_AddObjectToObject(root, "brokers");
		for (size_t i = 0; brokers && i < hub.brokers->n; i++) {
			const struct broker *b = hub.brokers->v[i];
			cJSON *o = cJSON_AddObjectToObject(brokers, b->name);

			if (!o)
				continue;
			cJSON_AddStringToObject(o, "type", b->type);
			cJSON_AddStringToObject(o, "state",
						broker_state_name(b->state));
			if (b->state != MQGATE_STATE_CONNECTED && b->why[0])
				cJSON_AddStringToObject(o, "reason", b->why);
		}
	}
	text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (!text)
		return -1;
	r = server_http_reply(wsi, up ? 200 : 503, "application/json", text,
			      strlen(text));
	free(text);
	return r;
}

static int api_metrics(struct lws *wsi)
{
	size_t len = 0;
	char *text;
	int r;

	metrics.history_msgs = history_count(hub.history);
	metrics.history_bytes = history_bytes(hub.history);
	metrics.cache_topics = lvc_count(hub.lvc);
	metrics.cache_bytes = lvc_bytes(hub.lvc);
	metrics.queued_msgs = metrics.queued_max = 0;
	for (const struct session *s = hub.sessions; s; s = s->next) {
		metrics.queued_msgs += s->q_len;
		if (s->q_len > metrics.queued_max)
			metrics.queued_max = s->q_len;
	}
	text = metrics_render(hub.brokers, &len);
	if (!text)
		return -1;
	r = server_http_reply(wsi, 200, "text/plain; version=0.0.4", text, len);
	free(text);
	return r;
}

static int api_options(struct lws *wsi)
{
	unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
			*end = buf + sizeof(buf) - 1;
	static const char methods[] = "POST, GET, OPTIONS";
	static const char headers[] = "Content-Type, Authorization, Last-Event-ID";

	if (lws_add_http_common_headers(wsi, 204, NULL, 0, &p, end) ||
	    server_add_cors(wsi, &p, end) ||
	    lws_add_http_header_by_name(wsi,
			(const unsigned char *)"access-control-allow-methods:",
			(const unsigned char *)methods, sizeof(methods) - 1, &p, end) ||
	    lws_add_http_header_by_name(wsi,
			(const unsigned char *)"access-control-allow-headers:",
			(const unsigned char *)headers, sizeof(headers) - 1, &p, end) ||
	    lws_add_http_header_by_name(wsi,
			(const unsigned char *)"access-control-max-age:",
			(const unsigned char *)"600", 3, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* A Content-Length that is digits only, as RFC 9110 has it (LLONG_MAX
 * past 18 of them); -1 for anything else ("+5", "1e3", "0x10", "5 5",
 * two headers joined by a comma). lws reads the body by its own, laxer,
 * reading of the header: a value the two could read differently must
 * not be served, or the rest of the body would be taken for the next
 * request. */
static long long api_content_length(const char *s)
{
	long long n = 0;
	size_t i;

	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (i < 18)
			n = n * 10 + (s[i] - '0');
		else
			n = LLONG_MAX;
	}
	return i ? n : -1;
}

static int api_publish_start(struct lws *wsi, struct api_req **pr)
{
	char cl[32], why[256];
	size_t limit = hub.conf->server.max_message * 2 + 4096;
	struct api_req *r;
	int64_t exp;
	enum proto_code c;
	long long n;

	if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0) {
		metrics.publishes[PROTO_BAD_REQUEST]++;
		api_reply_literal(wsi, 411,
				  "{\"error\":\"bad_request\",\"message\":\"Content-Length is required\"}");
		return -1;
	}
	n = api_content_length(cl);
	if (n < 0 || lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) !=
		     (int)strlen(cl)) {
		metrics.publishes[PROTO_BAD_REQUEST]++;
		server_http_error(wsi, PROTO_BAD_REQUEST, "bad Content-Length");
		return -1; /* close: where the body ends is not known */
	}
	if (n == 0) {
		/* Answered at once: lws 4.1.6 takes bytes pipelined after an
		 * empty POST for its body, then starts the next request and
		 * drops this one before a deferred reply could be written. */
		metrics.publishes[PROTO_BAD_REQUEST]++;
		server_http_error(wsi, PROTO_BAD_REQUEST, "empty body");
		return -1;
	}
	if ((unsigned long long)n > limit) {
		metrics.publishes[PROTO_TOO_LARGE]++;
		server_http_error(wsi, PROTO_TOO_LARGE, "request body too large");
		return -1; /* close rather than read the body */
	}
	if (hub.draining) {
		metrics.publishes[PROTO_UNAVAILABLE]++;
		server_http_error(wsi, PROTO_UNAVAILABLE, "shutting down");
		return -1;
	}
	r = calloc(1, sizeof(*r));
	if (!r || !(r->body = malloc((size_t)n + 1))) {
		free(r);
		return -1;
	}
	r->expected = (size_t)n;
	*pr = r;
	server_client_address(wsi, r->addr);
	c = server_authenticate(wsi, &r->acl, &exp, why, sizeof(why));
	if (c != PROTO_OK) {
		metrics.publishes[c]++;
		api_reply_later(wsi, r, proto_code_http_status(c),
				proto_http_error(c, why));
		return 0;
	}
	lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, 10);
	return 0;
}

static void api_publish_body_done(struct lws *wsi, struct api_req *r)
{
	struct publish_origin origin = { .http = wsi };
	const struct acl *acl = r->acl.owned ? &r->acl : &hub.anonymous;
	char why[320];
	const char *bad;
	cJSON *req;
	enum proto_code c;

	if (r->reply_ready)
		return; /* already refused (credentials) */
	req = json_parse_object(r->body, r->len, &bad);
	if (!req) {
		metrics.publishes[PROTO_BAD_REQUEST]++;
		api_reply_later(wsi, r, 400,
				proto_http_error(PROTO_BAD_REQUEST, bad));
		return;
	}
	r->pending = true;
	c = publish_submit(req, acl,
			   ratelimit_for_address(r->addr, &hub.conf->server,
						 inbox_now_ms()),
			   &origin, why, sizeof(why));
	cJSON_Delete(req);
	if (c != PROTO_OK) {
		api_reply_later(wsi, r, proto_code_http_status(c),
				proto_http_error(c, why));
		return;
	}
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, HTTP_PUBLISH_TIMEOUT_S);
}

static int api_http(struct lws *wsi, struct api_req **pr)
{
	char *uri = NULL;
	int ulen = 0, method = lws_http_get_uri_and_method(wsi, &uri, &ulen);
	bool get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
	bool post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
	bool options = lws_hdr_total_length(wsi, WSI_TOKEN_OPTIONS_URI) > 0;
	char path[64];

	*pr = NULL;
	if (method < 0 || !uri)
		return server_http_error(wsi, PROTO_BAD_REQUEST, "bad request");
	snprintf(path, sizeof(path), "%.*s", ulen, uri);
	if (options)
		return api_options(wsi);
	if (strcmp(path, "/publish") == 0) {
		if (!post)
			return api_reply_literal(wsi, 405,
				"{\"error\":\"bad_request\",\"message\":\"use POST\"}");
		return api_publish_start(wsi, pr);
	}
	if (!get)
		return api_reply_literal(wsi, 405,
			"{\"error\":\"bad_request\",\"message\":\"use GET\"}");
	if (strcmp(path, "/healthz") == 0)
		return api_healthz(wsi, false);
	if (strcmp(path, "/readyz") == 0)
		return api_healthz(wsi, true);
	if (strcmp(path, "/livez") == 0)
		return api_reply_literal(wsi, 200, "{\"status\":\"ok\"}");
	if (strcmp(path, "/metrics") == 0)
		return api_metrics(wsi);
	return server_http_not_found(wsi);
}

int api_callback(struct lws *wsi, enum lws_callback_reasons reason,
		 void *user, void *in, size_t len)
{
	struct api_req **pr = user, *r = pr ? *pr : NULL;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return api_http(wsi, pr);
	case LWS_CALLBACK_HTTP_BODY:
		if (!r || r->reply_ready)
			return 0;
		if (r->len + len > r->expected)
			return -1;
		memcpy(r->body + r->len, in, len);
		r->len += len;
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (r)
			api_publish_body_done(wsi, r);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (!r || !r->reply_ready)
			return 0;
		if (!r->reply)
			return -1;
		/* Completing the transaction drops the protocol, which frees
		 * r: nothing may touch it after the reply is written. */
		r->reply_ready = false;
		return server_http_reply(wsi, r->status, "application/json",
					 r->reply, strlen(r->reply));
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (pr)
			api_req_free(wsi, pr);
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}
