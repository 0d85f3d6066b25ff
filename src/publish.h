/*
 * publish.h - browser -> broker publishes: checks (topic, walls, ACL, size,
 * rate), hand-off to the broker's plugin, and the table of publishes
 * waiting for the broker's answer, which routes each completion back to
 * the WebSocket session or HTTP request that asked. Owns the pending
 * records; a requester that goes away is detached, and its completion is
 * then only counted. Loop thread only.
 */
#ifndef MQGATE_PUBLISH_H
#define MQGATE_PUBLISH_H

#include <stdbool.h>
#include <stdint.h>

#include "mqgate/backend.h"
#include "proto.h"

struct acl;
struct cJSON;
struct lws;
struct ratelimit;
struct session;

#define PUBLISH_MAX_PENDING 10000   /* in flight, all clients together */
#define PUBLISH_MAX_PER_SESSION 256

/* Who gets the answer. */
struct publish_origin {
	struct session *session; /* WebSocket: reply frame with id_json */
	const char *id_json;     /* borrowed; copied when the reply waits */
	struct lws *http;        /* POST /publish: deferred HTTP reply */
};

/* Parses and checks a publish request object (a WS frame or a POST body:
 * topic, payload, qos, retain, encoding), then hands it to the broker.
 * `rate` is the client's bucket (NULL: no limit). Returns PROTO_OK when
 * it is now pending (the answer comes later through the origin), or an
 * error code with why filled (nothing pending). */
enum proto_code publish_submit(const struct cJSON *req,
			       const struct acl *acl, struct ratelimit *rate,
			       const struct publish_origin *origin, char *why,
			       size_t whylen);

/* A broker finished a publish (from the inbox). */
void publish_done(uint64_t token, enum mqgate_publish_result result,
		  const char *why);

/* The requester is going away: its pending publishes reply to no one. */
void publish_detach_session(struct session *s);
void publish_detach_http(struct lws *wsi);

/* Replies the HTTP side implements (http.c): status + JSON body. */
void http_publish_reply(struct lws *wsi, enum proto_code code,
			const char *why);

#endif
