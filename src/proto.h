/*
 * proto.h - browser protocol constants: error codes with their names and
 * HTTP statuses, and builders for the small JSON replies. Pure functions.
 */
#ifndef MQGATE_PROTO_H
#define MQGATE_PROTO_H

#include <stddef.h>

#define PROTO_VERSION 1
#define PROTO_WS_SUBPROTOCOL "mqgate.v1"
#define PROTO_ID_MAX 128   /* longest client id (as JSON text) echoed */

/* In the order of enum metrics_pub, so a code indexes both. */
enum proto_code {
	PROTO_OK,
	PROTO_BAD_REQUEST,
	PROTO_FORBIDDEN,
	PROTO_UNAUTHORIZED,
	PROTO_TOO_LARGE,
	PROTO_RATE_LIMITED,
	PROTO_UNAVAILABLE,
	PROTO_INTERNAL,
};

const char *proto_code_name(enum proto_code c);
int proto_code_http_status(enum proto_code c);

/* {"op":"error","id":ID,"code":"...","message":"..."} (id omitted when
 * id_json is NULL). Returns a malloc'd NUL-terminated string or NULL. */
char *proto_ws_error(const char *id_json, enum proto_code c, const char *msg);
/* {"op":"OP","id":ID} plus optional extra members ("\"topics\":[...]"). */
char *proto_ws_reply(const char *op, const char *id_json, const char *extra);
/* {"error":"...","message":"..."} for HTTP error bodies. */
char *proto_http_error(enum proto_code c, const char *msg);

#endif
