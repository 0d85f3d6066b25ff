/*
 * publish.c - browser publishes and their pending table (see publish.h).
 */
#include "publish.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "backend.h"
#include "conf.h"
#include "hub.h"
#include "inbox.h"
#include "log.h"
#include "metrics.h"
#include "payload.h"
#include "session.h"
#include "topic.h"

#define PUBLISH_BUCKETS 4096

struct pending {
	struct pending *next;        /* hash chain */
	uint64_t token;
	struct session *session;
	struct lws *http;
	char *id_json;
};

static struct pending *publish_table[PUBLISH_BUCKETS];
static size_t publish_npending;
static uint64_t publish_next_token;

static struct pending **publish_slot(uint64_t token)
{
	return &publish_table[token % PUBLISH_BUCKETS];
}

static void publish_reply(struct pending *p, enum proto_code code,
			  const char *why)
{
	char *text;

	if (p->http) {
		http_publish_reply(p->http, code, why);
		return;
	}
	if (!p->session)
		return;
	text = code == PROTO_OK ? proto_ws_reply("ok", p->id_json, NULL)
				: proto_ws_error(p->id_json, code, why);
	if (text) {
		session_send_ws_json(p->session, text, strlen(text));
		free(text);
	}
	if (p->session->pending_publishes)
		p->session->pending_publishes--;
}

static enum proto_code publish_fail(char *why, size_t whylen,
				    enum proto_code c, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static enum proto_code publish_fail(char *why, size_t whylen,
				    enum proto_code c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	metrics.publishes[c]++;
	return c;
}

enum proto_code publish_submit(const struct cJSON *req,
			       const struct acl *acl, struct ratelimit *rate,
			       const struct publish_origin *origin, char *why,
			       size_t whylen)
{
	const cJSON *jt = cJSON_GetObjectItemCaseSensitive(req, "topic");
	const cJSON *jp = cJSON_GetObjectItemCaseSensitive(req, "payload");
	const cJSON *jq = cJSON_GetObjectItemCaseSensitive(req, "qos");
	const cJSON *jr = cJSON_GetObjectItemCaseSensitive(req, "retain");
	const cJSON *je = cJSON_GetObjectItemCaseSensitive(req, "encoding");
	const char *topic, *btopic, *reason;
	bool base64 = false, retain = false;
	int qos = 0, r;
	void *bytes = NULL;
	size_t len = 0;
	struct broker *b;
	struct pending *p;

	if (!cJSON_IsString(jt))
		return publish_fail(why, whylen, PROTO_BAD_REQUEST,
				    "'topic' must be a string");
	topic = jt->valuestring;
	if (topic_validate(topic, strlen(topic), TOPIC_NAME, &reason) < 0)
		return publish_fail(why, whylen, PROTO_BAD_REQUEST,
				    "bad topic: %s", reason);
	if (!jp)
		return publish_fail(why, whylen, PROTO_BAD_REQUEST,
				    "'payload' is missing");
	if (jq) {
		if (!cJSON_IsNumber(jq) || (jq->valuedouble != 0 && jq->valuedouble != 1))
			return publish_fail(why, whylen, PROTO_BAD_REQUEST,
					    "'qos' must be 0 or 1");
		qos = jq->valueint;
	}
	if (jr) {
		if (!cJSON_IsBool(jr))
			return publish_fail(why, whylen, PROTO_BAD_REQUEST,
					    "'retain' must be true or false");
		retain = cJSON_IsTrue(jr);
	}
	if (je) {
		if (!cJSON_IsString(je) || strcmp(je->valuestring, "base64") != 0)
			return publish_fail(why, whylen, PROTO_BAD_REQUEST,
					    "'encoding' must be \"base64\"");
		base64 = true;
	}
	b = broker_set_route(hub.brokers, topic, &btopic);
	if (!b || !broker_may_publish(b, btopic) || !acl_may_publish(acl, topic))
		return publish_fail(why, whylen, PROTO_FORBIDDEN,
				    "not allowed to publish to %.200s", topic);
	if (rate && !ratelimit_take(rate, &hub.conf->server, inbox_now_ms()))
		return publish_fail(why, whylen, PROTO_RATE_LIMITED,
				    "publish rate limit exceeded");
	if (payload_from_json(jp, base64, &bytes, &len, &reason) < 0)
		return publish_fail(why, whylen, PROTO_BAD_REQUEST,
				    "bad payload: %s", reason);
	if (len > hub.conf->server.max_message) {
		free(bytes);
		return publish_fail(why, whylen, PROTO_TOO_LARGE,
				    "payload of %zu bytes is over max_message (%llu)",
				    len, (unsigned long long)hub.conf->server.max_message);
	}
	if (b->state != MQGATE_STATE_CONNECTED || !b->instance) {
		free(bytes);
		return publish_fail(why, whylen, PROTO_UNAVAILABLE,
				    "broker %s is not connected", b->name);
	}
	if (publish_npending >= PUBLISH_MAX_PENDING ||
	    (origin->session &&
	     origin->session->pending_publishes >= PUBLISH_MAX_PER_SESSION)) {
		free(bytes);
		return publish_fail(why, whylen, PROTO_UNAVAILABLE,
				    "too many publishes in flight");
	}
	p = calloc(1, sizeof(*p));
	if (!p || (origin->id_json && !(p->id_json = strdup(origin->id_json)))) {
		free(p);
		free(bytes);
		return publish_fail(why, whylen, PROTO_INTERNAL, "out of memory");
	}
	p->token = ++publish_next_token;
	p->session = origin->session;
	p->http = origin->http;
	r = b->be->publish(b->instance, btopic, bytes, len, qos, retain,
			   p->token);
	free(bytes);
	if (r < 0) {
		free(p->id_json);
		free(p);
		if (r == -EMSGSIZE)
			return publish_fail(why, whylen, PROTO_TOO_LARGE,
					    "broker %s refuses a payload this large",
					    b->name);
		return publish_fail(why, whylen, PROTO_UNAVAILABLE,
				    "broker %s is not accepting publishes (%s)",
				    b->name, strerror(-r));
	}
	p->next = *publish_slot(p->token);
	*publish_slot(p->token) = p;
	publish_npending++;
	if (p->session)
		p->session->pending_publishes++;
	return PROTO_OK;
}

void publish_done(uint64_t token, enum mqgate_publish_result result,
		  const char *why)
{
	struct pending **pp = publish_slot(token), *p;
	enum proto_code code;

	for (; (p = *pp); pp = &p->next)
		if (p->token == token)
			break;
	if (!p)
		return;
	*pp = p->next;
	publish_npending--;
	switch (result) {
	case MQGATE_PUB_OK:
		code = PROTO_OK;
		break;
	case MQGATE_PUB_REJECTED:
		code = PROTO_FORBIDDEN;
		break;
	case MQGATE_PUB_TOO_LARGE:
		code = PROTO_TOO_LARGE;
		break;
	case MQGATE_PUB_UNAVAILABLE:
		code = PROTO_UNAVAILABLE;
		break;
	default:
		code = PROTO_INTERNAL;
		break;
	}
	metrics.publishes[code]++;
	publish_reply(p, code, why && why[0] ? why
				 : code == PROTO_OK ? "" : "broker refused the publish");
	free(p->id_json);
	free(p);
}

void publish_detach_session(struct session *s)
{
	if (!s->pending_publishes)
		return;
	for (size_t i = 0; i < PUBLISH_BUCKETS; i++)
		for (struct pending *p = publish_table[i]; p; p = p->next)
			if (p->session == s)
				p->session = NULL;
}

void publish_detach_http(struct lws *wsi)
{
	for (size_t i = 0; i < PUBLISH_BUCKETS; i++)
		for (struct pending *p = publish_table[i]; p; p = p->next)
			if (p->http == wsi)
				p->http = NULL;
}
