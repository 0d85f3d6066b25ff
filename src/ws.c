/*
 * ws.c - the WebSocket endpoint GET /ws (subprotocol mqgate.v1): upgrade
 * checks (path, Origin, credentials, capacity), message reassembly within
 * max_message, and the ops of PROTOCOL.md. Each connection's user data is
 * its session pointer; the session is owned by the hub.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "hub.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "netaddr.h"
#include "publish.h"
#include "server.h"
#include "session.h"
#include "utf8.h"

#include "config.h"

/* Room for the JSON around a payload of max_message bytes (base64 grows
 * it by a third, escaping more). */
static size_t ws_frame_limit(void)
{
	return hub.conf->server.max_message * 2 + 4096;
}

static void ws_send_text(struct session *s, char *json)
{
	if (!json)
		return;
	session_send_ws_json(s, json, strlen(json));
	free(json);
}

static void ws_error(struct session *s, const char *id, enum proto_code c,
		     const char *why)
{
	metrics.bad_requests++;
	ws_send_text(s, proto_ws_error(id, c, why));
}

/* Collects the strings of a "topics" array; NULL with why on error. */
static char **ws_topics(const cJSON *req, size_t *n, const char **why)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(req, "topics"), *it;
	char **v;
	size_t i = 0;

	if (!cJSON_IsArray(t)) {
		*why = "'topics' must be an array of strings";
		return NULL;
	}
	*n = (size_t)cJSON_GetArraySize(t);
	if (*n == 0 || *n > 10000) {
		*why = "'topics' must hold 1 to 10000 filters";
		return NULL;
	}
	v = calloc(*n + 1, sizeof(*v));
	if (!v) {
		*why = "out of memory";
		return NULL;
	}
	cJSON_ArrayForEach(it, t) {
		if (!cJSON_IsString(it)) {
			free(v);
			*why = "'topics' must be an array of strings";
			return NULL;
		}
		v[i++] = it->valuestring;
	}
	return v;
}

static char *ws_topics_json(char *const *v, size_t n)
{
	cJSON *arr = cJSON_CreateStringArray((const char *const *)v, (int)n);
	char *list, *out = NULL;

	if (!arr)
		return NULL;
	list = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	if (list && asprintf(&out, "\"topics\":%s", list) < 0)
		out = NULL;
	free(list);
	return out;
}

static void ws_op_subscribe(struct session *s, const cJSON *req,
			    const char *id)
{
	const cJSON *since = cJSON_GetObjectItemCaseSensitive(req, "since");
	const cJSON *snap = cJSON_GetObjectItemCaseSensitive(req, "snapshot");
	const char *why;
	char msg[320], *extra;
	size_t n;
	char **topics = ws_topics(req, &n, &why);
	enum proto_code c;

	if (!topics)
		return ws_error(s, id, PROTO_BAD_REQUEST, why);
	if ((since && !cJSON_IsString(since)) || (snap && !cJSON_IsBool(snap))) {
		free(topics);
		return ws_error(s, id, PROTO_BAD_REQUEST,
				"'since' must be a string and 'snapshot' a boolean");
	}
	c = hub_subscribe_check(s, topics, n, msg, sizeof(msg));
	if (c != PROTO_OK) {
		free(topics);
		return ws_error(s, id, c, msg);
	}
	extra = ws_topics_json(topics, n);
	ws_send_text(s, proto_ws_reply("ok", id, extra));
	free(extra);
	if (hub_subscribe(s, topics, n, since ? since->valuestring : NULL,
			  !snap || cJSON_IsTrue(snap)) < 0)
		session_close(s, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
			      "out of memory");
	free(topics);
}

static void ws_op_unsubscribe(struct session *s, const cJSON *req,
			      const char *id)
{
	const char *why;
	size_t n;
	char **topics = ws_topics(req, &n, &why), *extra;

	if (!topics)
		return ws_error(s, id, PROTO_BAD_REQUEST, why);
	hub_unsubscribe(s, topics, n);
	extra = ws_topics_json(topics, n);
	ws_send_text(s, proto_ws_reply("ok", id, extra));
	free(extra);
	free(topics);
}

static void ws_op_publish(struct session *s, const cJSON *req, const char *id)
{
	struct publish_origin origin = { .session = s, .id_json = id };
	const struct acl *acl = s->acl.owned ? &s->acl : &hub.anonymous;
	char why[320];
	enum proto_code c = publish_submit(req, acl, &s->rate, &origin, why,
					   sizeof(why));

	if (c != PROTO_OK)
		ws_error(s, id, c, why);
}

/* The id of a refused frame, when a lenient reading finds one, so the
 * client can match the error to its request. malloc'd JSON text or NULL.
 * cJSON copies string bytes as they are: an id that is not valid UTF-8
 * is left out, or the reply would be a text frame a browser must fail
 * the connection for (RFC 6455, 8.1). */
static char *ws_salvage_id(const char *text, size_t len)
{
	cJSON *j = cJSON_ParseWithLength(text, len);
	const cJSON *jid = cJSON_GetObjectItemCaseSensitive(j, "id");
	char *id = NULL;

	if (cJSON_IsString(jid) ||
	    (cJSON_IsNumber(jid) && isfinite(jid->valuedouble))) {
		id = cJSON_PrintUnformatted(jid);
		if (id && (strlen(id) > PROTO_ID_MAX ||
			   !utf8_valid(id, strlen(id)))) {
			free(id);
			id = NULL;
		}
	}
	cJSON_Delete(j);
	return id;
}

/* One complete client message. */
static void ws_handle(struct session *s, const char *text, size_t len)
{
	const char *bad;
	cJSON *req = json_parse_object(text, len, &bad);
	const cJSON *op, *jid;
	char *id = NULL;

	if (!req) {
		id = ws_salvage_id(text, len);
		ws_error(s, id, PROTO_BAD_REQUEST, bad);
		free(id);
		return;
	}
	jid = cJSON_GetObjectItemCaseSensitive(req, "id");
	if (jid) {
		/* A number beyond a double (1e400) would be echoed as null. */
		if (!cJSON_IsString(jid) && !(cJSON_IsNumber(jid) &&
					      isfinite(jid->valuedouble))) {
			ws_error(s, NULL, PROTO_BAD_REQUEST,
				 "'id' must be a string or a finite number");
			goto out;
		}
		id = cJSON_PrintUnformatted(jid);
		if (id && strlen(id) > PROTO_ID_MAX) {
			free(id);
			id = NULL;
			ws_error(s, NULL, PROTO_BAD_REQUEST, "'id' is too long");
			goto out;
		}
	}
	op = cJSON_GetObjectItemCaseSensitive(req, "op");
	if (!cJSON_IsString(op)) {
		ws_error(s, id, PROTO_BAD_REQUEST, "'op' must be a string");
	} else if (strcmp(op->valuestring, "subscribe") == 0) {
		ws_op_subscribe(s, req, id);
	} else if (strcmp(op->valuestring, "unsubscribe") == 0) {
		ws_op_unsubscribe(s, req, id);
	} else if (strcmp(op->valuestring, "publish") == 0) {
		ws_op_publish(s, req, id);
	} else if (strcmp(op->valuestring, "ping") == 0) {
		ws_send_text(s, proto_ws_reply("pong", id, NULL));
	} else {
		char why[96];

		snprintf(why, sizeof(why), "unknown op '%.40s'", op->valuestring);
		ws_error(s, id, PROTO_BAD_REQUEST, why);
	}
out:
	free(id);
	cJSON_Delete(req);
}

/* Reassembles fragments; a message over the limit is answered with
 * too_large and its remaining bytes are discarded. */
static void ws_receive(struct session *s, struct lws *wsi, const char *in,
		       size_t len)
{
	bool first = lws_is_first_fragment(wsi);
	bool last = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);
	size_t limit = ws_frame_limit();

	if (lws_frame_is_binary(wsi) && first) {
		s->rx_discard = true;
		ws_error(s, NULL, PROTO_BAD_REQUEST, "binary frames are not supported");
	}
	if (first && last && !s->rx_discard) {
		if (len > limit)
			ws_error(s, NULL, PROTO_TOO_LARGE, "frame over max_message");
		else
			ws_handle(s, in, len);
		return;
	}
	if (first)
		s->rx_len = 0;
	if (!s->rx_discard && s->rx_len + len > limit) {
		s->rx_discard = true;
		free(s->rx);
		s->rx = NULL;
		s->rx_cap = s->rx_len = 0;
		ws_error(s, NULL, PROTO_TOO_LARGE, "frame over max_message");
	}
	if (!s->rx_discard) {
		if (s->rx_len + len > s->rx_cap) {
			size_t cap = s->rx_cap ? s->rx_cap : 4096;
			char *n;

			while (cap < s->rx_len + len)
				cap *= 2;
			n = realloc(s->rx, cap);
			if (!n) {
				session_close(s, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
					      "out of memory");
				return;
			}
			s->rx = n;
			s->rx_cap = cap;
		}
		memcpy(s->rx + s->rx_len, in, len);
		s->rx_len += len;
	}
	if (!last)
		return;
	if (!s->rx_discard)
		ws_handle(s, s->rx, s->rx_len);
	/* The buffer exists only while a message is in flight. */
	free(s->rx);
	s->rx = NULL;
	s->rx_cap = s->rx_len = 0;
	s->rx_discard = false;
}

static int ws_confirm_upgrade(struct lws *wsi, const char *in)
{
	char path[64], why[256];
	struct acl acl;
	int64_t exp;
	enum proto_code c;

	if (!in || strcmp(in, "websocket") != 0)
		return server_http_error(wsi, PROTO_BAD_REQUEST,
					 "unsupported upgrade") ? -1 : 1;
	if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0 ||
	    strcmp(path, "/ws") != 0) {
		server_http_not_found(wsi);
		return 1;
	}
	if (!server_origin_allowed(wsi, NULL, NULL, 0)) {
		metrics.rejected_total[METRICS_WS]++;
		server_http_error(wsi, PROTO_FORBIDDEN, "origin not allowed");
		return 1;
	}
	c = server_authenticate(wsi, &acl, &exp, why, sizeof(why));
	acl_free(&acl);
	if (c != PROTO_OK) {
		metrics.rejected_total[METRICS_WS]++;
		server_http_error(wsi, c, why);
		return 1;
	}
	if (server_full()) {
		metrics.rejected_total[METRICS_WS]++;
		server_http_error(wsi, PROTO_UNAVAILABLE,
				  hub.draining ? "shutting down" : "too many clients");
		return 1;
	}
	return 0;
}

static int ws_established(struct lws *wsi, struct session **pss)
{
	struct session *s = hub_session_new(SESSION_WS, wsi);
	char why[256], *hello;
	enum proto_code c;

	if (!s)
		return -1;
	*pss = s;
	c = server_authenticate(wsi, &s->acl, &s->expires_ms, why, sizeof(why));
	if (c != PROTO_OK) {
		session_close(s, 4001, "unauthorized");
		return 0;
	}
	if (asprintf(&hello, "{\"op\":\"hello\",\"version\":%d,\"server\":\"mqgate/%s\",\"session\":\"%llu-%llu\"}",
		     PROTO_VERSION, PACKAGE_VERSION,
		     (unsigned long long)msg_epoch(),
		     (unsigned long long)s->id) < 0)
		return -1;
	ws_send_text(s, hello);
	if (log_enabled(LOG_LEVEL_DEBUG)) {
		char addr[NETADDR_TEXT_MAX];

		server_client_address(wsi, addr);
		log_debug("ws", "%s connected from %s", s->name, addr);
	}
	return 0;
}

int ws_callback(struct lws *wsi, enum lws_callback_reasons reason,
		void *user, void *in, size_t len)
{
	struct session **pss = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return ws_confirm_upgrade(wsi, in);
	case LWS_CALLBACK_ESTABLISHED:
		return ws_established(wsi, pss);
	case LWS_CALLBACK_RECEIVE:
		if (*pss && !(*pss)->closing)
			ws_receive(*pss, wsi, in, len);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!*pss)
			return -1;
		return session_write(*pss);
	case LWS_CALLBACK_CLOSED:
		if (pss && *pss) {
			log_debug("ws", "%s closed", (*pss)->name);
			hub_session_free(*pss);
			*pss = NULL;
		}
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}
