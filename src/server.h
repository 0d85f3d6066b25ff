/*
 * server.h - the libwebsockets side: one context, one vhost per listener,
 * the protocol table (WebSocket, SSE, HTTP API, descriptor watcher), the
 * static-file mounts, the periodic tick (SSE keepalives, expiries, drain),
 * and the helpers the protocol modules share (origin check, credentials,
 * immediate HTTP replies). Owns the lws context. Loop thread only, except
 * server_wake() which any thread may call.
 */
#ifndef MQGATE_SERVER_H
#define MQGATE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "proto.h"

struct conf;
struct lws;
struct acl;

int server_create(const struct conf *conf);
/* Runs the event loop until a drain completes. Returns the exit status. */
int server_run(void);
void server_destroy(void);
/* Wakes the loop from any thread (the inbox's wake callback). */
void server_wake(void *unused);

/* True when the request's Origin header is absent or allowed. */
bool server_origin_allowed(struct lws *wsi, bool *present, char *origin,
			   size_t len);
/* Resolves the request's credentials into an ACL (anonymous when none).
 * Returns PROTO_OK or PROTO_UNAUTHORIZED with why filled. */
enum proto_code server_authenticate(struct lws *wsi, struct acl *acl,
				    int64_t *expires_ms, char *why,
				    size_t whylen);
/* Writes a complete HTTP response now (status, JSON body). Returns what
 * the callback should return. */
int server_http_reply(struct lws *wsi, int status, const char *ctype,
		      const char *body, size_t len);
/* The same for a protocol error code: {"error":code,"message":why}. */
int server_http_error(struct lws *wsi, enum proto_code c, const char *why);
/* 404 with {"error":"not_found",...}. */
int server_http_not_found(struct lws *wsi);
/* Adds CORS headers for an allowed Origin. 0 or -1 (no room). */
int server_add_cors(struct lws *wsi, unsigned char **p, unsigned char *end);

/* SSE connections are watched for disconnects (libwebsockets 4.1.6 does
 * not notice an HTTP/1.1 client leaving mid-stream). */
void server_sse_watch(struct lws *wsi, void *session);
void server_sse_unwatch(struct lws *wsi);

/* The client's address (NETADDR_TEXT_MAX bytes), X-Forwarded-For
 * believed only from trusted_proxies. Headers must still be readable. */
void server_client_address(struct lws *wsi, char *out);

/* Too many clients, or draining: refuse new ones. */
bool server_full(void);

/* Begins the drain (SIGTERM/SIGINT): refuse new clients, close WebSockets
 * with 1001, end SSE streams; the loop ends when all are gone. */
void server_drain(void);

/* What SIGHUP runs (main.c re-reads the config); NULL = ignore SIGHUP. */
void server_set_reload(void (*fn)(void));

/* Protocol callbacks (ws.c, sse.c, http.c). Each connection's
 * per-session data is one pointer. */
int ws_callback(struct lws *wsi, enum lws_callback_reasons reason,
		void *user, void *in, size_t len);
int sse_callback(struct lws *wsi, enum lws_callback_reasons reason,
		 void *user, void *in, size_t len);
int api_callback(struct lws *wsi, enum lws_callback_reasons reason,
		 void *user, void *in, size_t len);

#endif
