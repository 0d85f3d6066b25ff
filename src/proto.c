/*
 * proto.c - protocol error codes and reply builders (see proto.h).
 */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"

static const struct {
	const char *name;
	int status;
} proto_codes[] = {
	[PROTO_OK] = { "ok", 200 },
	[PROTO_BAD_REQUEST] = { "bad_request", 400 },
	[PROTO_FORBIDDEN] = { "forbidden", 403 },
	[PROTO_UNAUTHORIZED] = { "unauthorized", 401 },
	[PROTO_TOO_LARGE] = { "too_large", 413 },
	[PROTO_RATE_LIMITED] = { "rate_limited", 429 },
	[PROTO_UNAVAILABLE] = { "unavailable", 503 },
	[PROTO_INTERNAL] = { "internal", 500 },
};

const char *proto_code_name(enum proto_code c)
{
	return c <= PROTO_INTERNAL ? proto_codes[c].name : "internal";
}

int proto_code_http_status(enum proto_code c)
{
	return c <= PROTO_INTERNAL ? proto_codes[c].status : 500;
}

/* A JSON string literal of msg; msg is made valid UTF-8 first by the
 * callers (messages are ASCII or echo validated topics). */
static char *proto_json_string(const char *msg)
{
	size_t len = strlen(msg);
	char *out = malloc(payload_json_string_max(len) + 1);

	if (!out)
		return NULL;
	if (!utf8_valid(msg, len))
		msg = "(invalid text)", len = strlen(msg);
	out[payload_json_string(out, msg, len)] = 0;
	return out;
}

char *proto_ws_error(const char *id_json, enum proto_code c, const char *msg)
{
	char *m = proto_json_string(msg ? msg : ""), *out = NULL;

	if (!m)
		return NULL;
	if (asprintf(&out, "{\"op\":\"error\"%s%s,\"code\":\"%s\",\"message\":%s}",
		     id_json ? ",\"id\":" : "", id_json ? id_json : "",
		     proto_code_name(c), m) < 0)
		out = NULL;
	free(m);
	return out;
}

char *proto_ws_reply(const char *op, const char *id_json, const char *extra)
{
	char *out;

	if (asprintf(&out, "{\"op\":\"%s\"%s%s%s%s}", op,
		     id_json ? ",\"id\":" : "", id_json ? id_json : "",
		     extra ? "," : "", extra ? extra : "") < 0)
		return NULL;
	return out;
}

char *proto_http_error(enum proto_code c, const char *msg)
{
	char *m = proto_json_string(msg ? msg : ""), *out = NULL;

	if (!m)
		return NULL;
	if (asprintf(&out, "{\"error\":\"%s\",\"message\":%s}",
		     proto_code_name(c), m) < 0)
		out = NULL;
	free(m);
	return out;
}
