/*
 * test_json.c - the strict scanner (grammar, depth, UTF-8, the NUL escape,
 * check-only mode) and request parsing (objects only, no duplicate or
 * excess members).
 */
#include <cjson/cJSON.h>

#include "check.h"
#include "json.h"

static long scan(const char *s, unsigned flags)
{
	return json_scan(s, strlen(s), flags, NULL);
}

static void test_scan(void)
{
	char out[64];

	CHECK_INT(scan("{\"a\":[1,2.5e-3,true,false,null,\"x\"]}", 0), 36);
	CHECK_INT(scan("  7 ", 0), 4);
	CHECK_INT(scan("\"\\u0000\"", 0), 8);
	CHECK_INT(scan("\"\\u0000\"", JSON_REFUSE_NUL), -1);
	CHECK_INT(scan("{\"k\":\"a\\u0000b\"}", JSON_REFUSE_NUL), -1);
	CHECK_INT(scan("\"\\\\u0000\"", JSON_REFUSE_NUL), 9); /* an escaped backslash, then text */
	CHECK_INT(scan("\"\\u0001\"", JSON_REFUSE_NUL), 8);
	CHECK_INT(scan("01", 0), -1);
	CHECK_INT(scan("[1,]", 0), -1);
	CHECK_INT(scan("{\"a\":1,}", 0), -1);
	CHECK_INT(scan("\"a\tb\"", 0), -1);        /* raw control character */
	CHECK_INT(scan("\"\xff\"", 0), -1);        /* not UTF-8 */
	CHECK_INT(scan("\"\xed\xa0\x80\"", 0), -1); /* surrogate */
	CHECK_INT(scan("1 2", 0), -1);
	CHECK_INT(scan("", 0), -1);
	CHECK_INT(scan("[", 0), -1);
	CHECK_INT(scan("{\"a\" 1}", 0), -1);
	CHECK_INT(json_scan("{ \"a\" : [ 1 ,\n2 ] }", 19, 0, out), 11);
	CHECK_MEM(out, 11, "{\"a\":[1,2]}");
	{
		char deep[2 * JSON_MAX_DEPTH + 3];
		int i;

		for (i = 0; i < JSON_MAX_DEPTH; i++) {
			deep[i] = '[';
			deep[2 * JSON_MAX_DEPTH - 1 - i] = ']';
		}
		deep[2 * JSON_MAX_DEPTH] = 0;
		CHECK_INT(scan(deep, 0), 2 * JSON_MAX_DEPTH);
		for (i = 0; i <= JSON_MAX_DEPTH; i++) {
			deep[i] = '[';
			deep[2 * JSON_MAX_DEPTH + 1 - i] = ']';
		}
		deep[2 * JSON_MAX_DEPTH + 2] = 0;
		CHECK_INT(scan(deep, 0), -1);
	}
}

static void check_object(const char *text, const char *want_why)
{
	const char *why = NULL;
	cJSON *j = json_parse_object(text, strlen(text), &why);

	check_run++;
	if (want_why ? (j || !why || strcmp(why, want_why)) : !j) {
		check_failed++;
		fprintf(stderr, "%s:%d: json_parse_object(%s): %s, want %s\n",
			__FILE__, __LINE__, text, j ? "parsed" : why,
			want_why ? want_why : "parsed");
	}
	cJSON_Delete(j);
}

static void test_objects(void)
{
	char many[1024];
	size_t o = 0;
	int i;

	check_object("{\"op\":\"ping\",\"id\":1}", NULL);
	check_object("{}", NULL);
	check_object("{\"op\":\"ping\",\"op\":\"publish\"}", "duplicate member in the request object");
	check_object("{\"op\":\"ping\",\"\\u006fp\":\"publish\"}", "duplicate member in the request object");
	check_object("[1]", "a request must be a JSON object");
	check_object("\"op\"", "a request must be a JSON object");
	check_object("{\"op\":", "malformed JSON");
	check_object("{\"topic\":\"a\\u0000b\"}", "\\u0000 is not allowed in a request");
	check_object("{\"n\":01}", "malformed JSON");
	/* nested duplicates are the payload's business */
	check_object("{\"payload\":{\"a\":1,\"a\":2}}", NULL);
	o += (size_t)snprintf(many + o, sizeof(many) - o, "{");
	for (i = 0; i < JSON_MAX_MEMBERS; i++)
		o += (size_t)snprintf(many + o, sizeof(many) - o, "%s\"k%d\":%d", i ? "," : "", i, i);
	snprintf(many + o, sizeof(many) - o, "}");
	check_object(many, NULL);
	many[o] = 0;
	snprintf(many + o, sizeof(many) - o, ",\"extra\":1}");
	check_object(many, "too many members in the request object");
}

int main(void)
{
	test_scan();
	test_objects();
	return check_summary("test_json");
}
