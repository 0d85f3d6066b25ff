/*
 * test_proto.c - error code names and HTTP statuses (PROTOCOL.md), and
 * the reply builders: valid JSON, ids echoed as given, messages escaped.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "check.h"
#include "proto.h"

static void test_codes(void)
{
	static const struct { enum proto_code c; const char *name; int http; } t[] = {
		{ PROTO_BAD_REQUEST, "bad_request", 400 },
		{ PROTO_FORBIDDEN, "forbidden", 403 },
		{ PROTO_UNAUTHORIZED, "unauthorized", 401 },
		{ PROTO_TOO_LARGE, "too_large", 413 },
		{ PROTO_RATE_LIMITED, "rate_limited", 429 },
		{ PROTO_UNAVAILABLE, "unavailable", 503 },
		{ PROTO_INTERNAL, "internal", 500 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		CHECK_STR(proto_code_name(t[i].c), t[i].name);
		CHECK_INT(proto_code_http_status(t[i].c), t[i].http);
	}
	CHECK_INT(proto_code_http_status(PROTO_OK), 200);
}

static void check_json(char *s, const char *want)
{
	cJSON *a = s ? cJSON_Parse(s) : NULL, *b = cJSON_Parse(want);

	check_run++;
	if (!a || !b || !cJSON_Compare(a, b, 1)) {
		check_failed++;
		fprintf(stderr, "%s:%d: got %s, want %s\n", __FILE__, __LINE__,
			s ? s : "NULL", want);
	}
	cJSON_Delete(a);
	cJSON_Delete(b);
	free(s);
}

static void test_builders(void)
{
	check_json(proto_ws_error("1", PROTO_FORBIDDEN, "not allowed to publish to cmd/#"),
		   "{\"op\":\"error\",\"id\":1,\"code\":\"forbidden\",\"message\":\"not allowed to publish to cmd/#\"}");
	check_json(proto_ws_error("\"a\\\"b\"", PROTO_BAD_REQUEST, "bad \"x\"\n"),
		   "{\"op\":\"error\",\"id\":\"a\\\"b\",\"code\":\"bad_request\",\"message\":\"bad \\\"x\\\"\\n\"}");
	check_json(proto_ws_error(NULL, PROTO_TOO_LARGE, "frame over max_message"),
		   "{\"op\":\"error\",\"code\":\"too_large\",\"message\":\"frame over max_message\"}");
	check_json(proto_ws_reply("ok", "7", "\"topics\":[\"a/#\"]"),
		   "{\"op\":\"ok\",\"id\":7,\"topics\":[\"a/#\"]}");
	check_json(proto_ws_reply("pong", NULL, NULL), "{\"op\":\"pong\"}");
	check_json(proto_http_error(PROTO_UNAVAILABLE, "broker down"),
		   "{\"error\":\"unavailable\",\"message\":\"broker down\"}");
	/* A message that is not UTF-8 still gives valid JSON. */
	{
		char *s = proto_http_error(PROTO_BAD_REQUEST, "bad \xff byte");
		cJSON *j = s ? cJSON_Parse(s) : NULL;

		CHECK(j != NULL);
		cJSON_Delete(j);
		free(s);
	}
}

int main(void)
{
	test_codes();
	test_builders();
	return check_summary("test_proto");
}
