/*
 * test_msg.c - message encoding: the shared JSON body, the WebSocket frame
 * (header forms for each length class), the SSE event, event ids, and
 * that encodings are built once and shared.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "msg.h"

static void test_event_ids(void)
{
	char buf[64];
	uint64_t e, s;

	CHECK_INT(msg_event_id(buf, sizeof(buf), 1732451, 42), 10);
	CHECK_STR(buf, "1732451-42");
	CHECK_INT(msg_event_id_parse("1732451-42", &e, &s), 0);
	CHECK_INT(e, 1732451);
	CHECK_INT(s, 42);
	CHECK_INT(msg_event_id_parse("18446744073709551615-18446744073709551615", &e, &s), 0);
	CHECK(e == UINT64_MAX && s == UINT64_MAX);
	CHECK_INT(msg_event_id_parse("18446744073709551616-1", &e, &s), -EINVAL);
	CHECK_INT(msg_event_id_parse("", &e, &s), -EINVAL);
	CHECK_INT(msg_event_id_parse("-", &e, &s), -EINVAL);
	CHECK_INT(msg_event_id_parse("1-", &e, &s), -EINVAL);
	CHECK_INT(msg_event_id_parse("-1", &e, &s), -EINVAL);
	CHECK_INT(msg_event_id_parse("1-2-3", &e, &s), -EINVAL);
	CHECK_INT(msg_event_id_parse("1-+2", &e, &s), -EINVAL);
	CHECK_INT(msg_event_id_parse("a-2", &e, &s), -EINVAL);
	CHECK_INT(msg_event_id_parse(" 1-2", &e, &s), -EINVAL);
	CHECK_INT(msg_event_id_parse(NULL, &e, &s), -EINVAL);
}

static void test_ws_header(void)
{
	unsigned char h[10];

	CHECK_INT(msg_ws_header(h, 0), 2);
	CHECK(h[0] == 0x81 && h[1] == 0);
	CHECK_INT(msg_ws_header(h, 125), 2);
	CHECK(h[1] == 125);
	CHECK_INT(msg_ws_header(h, 126), 4);
	CHECK(h[1] == 126 && h[2] == 0 && h[3] == 126);
	CHECK_INT(msg_ws_header(h, 65535), 4);
	CHECK(h[2] == 0xff && h[3] == 0xff);
	CHECK_INT(msg_ws_header(h, 65536), 10);
	CHECK(h[1] == 127 && h[2] == 0 && h[7] == 1 && h[8] == 0 && h[9] == 0);
}

/* Parses the JSON of a WS frame (after its header) and checks members. */
static cJSON *frame_json(const unsigned char *f, size_t len)
{
	size_t hl = f[1] == 126 ? 4 : f[1] == 127 ? 10 : 2;
	size_t plen = hl == 2 ? f[1] : hl == 4 ? (size_t)(f[2] << 8 | f[3]) : len - 10;
	char *s;
	cJSON *j;

	CHECK(f[0] == 0x81);
	CHECK_INT(hl + plen, len);
	s = strndup((const char *)f + hl, plen);
	j = cJSON_Parse(s);
	free(s);
	return j;
}

static void test_encodings(void)
{
	struct msg *m;
	const unsigned char *ws, *ws2;
	const char *sse, *sse2;
	size_t wl, wl2, sl, sl2;
	cJSON *j;

	msg_set_epoch(1732451);
	CHECK_INT(msg_epoch(), 1732451);
	m = msg_new("sensors/a/temp", 14, "21.5", 4, 1, true, 1732451234567, 42);
	CHECK(m && m->refs == 1 && !m->empty);
	CHECK_MEM(m->body, m->body_len,
		  "\"topic\":\"sensors/a/temp\",\"payload\":21.5,\"retain\":true,\"qos\":1,\"ts\":1732451234567");
	ws = msg_ws_frame(m, &wl);
	CHECK(ws && wl > 2);
	CHECK_MEM(ws + 2, wl - 2,
		  "{\"op\":\"message\",\"event\":\"1732451-42\",\"topic\":\"sensors/a/temp\",\"payload\":21.5,\"retain\":true,\"qos\":1,\"ts\":1732451234567}");
	ws2 = msg_ws_frame(m, &wl2);
	CHECK(ws2 == ws && wl2 == wl); /* built once */
	sse = msg_sse_event(m, &sl);
	CHECK_MEM(sse, sl,
		  "id: 1732451-42\ndata: {\"topic\":\"sensors/a/temp\",\"payload\":21.5,\"retain\":true,\"qos\":1,\"ts\":1732451234567}\n\n");
	sse2 = msg_sse_event(m, &sl2);
	CHECK(sse2 == sse && sl2 == sl);
	CHECK(msg_cost(m) >= m->body_len + m->topic_len);
	CHECK(msg_ref(m) == m && m->refs == 2);
	msg_unref(m);
	msg_unref(m);

	/* Binary payload, a topic that needs escaping, a large frame. */
	{
		static const char topic[] = "a/\"q\"/\xc3\xa9";
		char *big = malloc(70000);

		m = msg_new(topic, sizeof(topic) - 1, "\x00\xff", 2, 0, false, 5, 7);
		CHECK_MEM(m->body, m->body_len,
			  "\"topic\":\"a/\\\"q\\\"/\xc3\xa9\",\"payload\":\"AP8=\",\"encoding\":\"base64\",\"retain\":false,\"qos\":0,\"ts\":5");
		ws = msg_ws_frame(m, &wl);
		j = frame_json(ws, wl);
		CHECK(j != NULL);
		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "topic")), topic);
		CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "encoding")), "base64");
		cJSON_Delete(j);
		msg_unref(m);

		memset(big, 'x', 70000);
		big[0] = 'a';
		m = msg_new("big", 3, big, 70000, 0, false, 0, 8);
		ws = msg_ws_frame(m, &wl);
		CHECK(ws[1] == 127);
		j = frame_json(ws, wl);
		CHECK(j && strlen(cJSON_GetStringValue(cJSON_GetObjectItem(j, "payload"))) == 70000);
		cJSON_Delete(j);
		msg_unref(m);
		free(big);
	}

	/* CR/LF in the payload can never break an SSE event. */
	m = msg_new("t", 1, "line1\r\nline2\n\ndata: x", 21, 0, false, 0, 9);
	sse = msg_sse_event(m, &sl);
	{
		const char *nl = memchr(sse, '\n', sl);
		size_t k, newlines = 0;

		for (k = 0; k < sl; k++)
			newlines += sse[k] == '\n';
		CHECK_INT(newlines, 3); /* after id, after data, the blank line */
		CHECK(nl && strncmp(nl + 1, "data: {", 7) == 0);
		CHECK(memchr(sse, '\r', sl) == NULL);
	}
	msg_unref(m);

	/* Empty payload. */
	m = msg_new("t", 1, "", 0, 0, true, 0, 10);
	CHECK(m->empty);
	CHECK(memmem(m->body, m->body_len, "\"payload\":\"\"", 12) != NULL);
	msg_unref(m);
	msg_unref(NULL);
}

int main(void)
{
	test_event_ids();
	test_ws_header();
	test_encodings();
	return check_summary("test_msg");
}
