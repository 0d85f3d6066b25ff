/*
 * payload.c - payload encoding between broker bytes and JSON (see
 * payload.h). The JSON check is json_scan(), which writes the compact form
 * as it goes, so a payload is read once: no parse tree is built for
 * messages that are only relayed.
 */
#include "payload.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON string literals ------------------------------------------------ */

size_t payload_json_string_max(size_t len)
{
	/* Worst case: every byte a control character, "\u00XX" = 6 bytes. */
	return 6 * len + 2;
}

size_t payload_json_string(char *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	char *o = out;
	size_t i;

	*o++ = '"';
	for (i = 0; i < len; i++) {
		unsigned char c = u[i];

		if (c >= 0x20 && c != '"' && c != '\\') {
			/* U+2028 and U+2029 (e2 80 a8/a9) end lines in some
			 * JavaScript parsers: escape them. */
			if (c == 0xe2 && i + 2 < len && u[i + 1] == 0x80 &&
			    (u[i + 2] == 0xa8 || u[i + 2] == 0xa9)) {
				memcpy(o, u[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
				o += 6;
				i += 2;
				continue;
			}
			*o++ = (char)c;
			continue;
		}
		*o++ = '\\';
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		case '\b': *o++ = 'b'; break;
		case '\f': *o++ = 'f'; break;
		default:
			*o++ = 'u';
			*o++ = '0';
			*o++ = '0';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o++ = '"';
	return (size_t)(o - out);
}

long payload_json_compact(const char *p, size_t len, char *out)
{
	return json_scan(p, len, 0, out);
}

/* ---- broker bytes -> JSON ---------------------------------------------- */

char *payload_to_json(const void *p, size_t len, bool *base64,
		      size_t *out_len)
{
	size_t cap = len;
	char *out;
	long n;

	*base64 = false;
	if (payload_json_string_max(len) > cap)
		cap = payload_json_string_max(len);
	if (base64_encoded_len(len) + 2 > cap)
		cap = base64_encoded_len(len) + 2;
	out = malloc(cap ? cap : 1);
	if (!out)
		return NULL;

	if (len && (n = payload_json_compact(p, len, out)) >= 0) {
		*out_len = (size_t)n;
	} else if (utf8_valid(p, len)) {
		*out_len = payload_json_string(out, p, len);
	} else {
		out[0] = '"';
		*out_len = base64_encode(p, len, out + 1) + 2;
		out[*out_len - 1] = '"';
		*base64 = true;
	}
	/* Give back the worst-case slack: messages live in history. */
	if (*out_len < cap / 2) {
		char *shrunk = realloc(out, *out_len ? *out_len : 1);

		if (shrunk)
			out = shrunk;
	}
	return out;
}

/* ---- browser JSON -> broker bytes -------------------------------------- */

int payload_from_json(const cJSON *v, bool base64, void **out,
		      size_t *out_len, const char **why)
{
	*out = NULL;
	*out_len = 0;
	if (!v) {
		*why = "missing 'payload'";
		return -EINVAL;
	}
	if (base64) {
		const char *s;
		size_t slen;
		long n;

		if (!cJSON_IsString(v)) {
			*why = "'payload' must be a string with encoding base64";
			return -EINVAL;
		}
		s = v->valuestring;
		slen = strlen(s);
		*out = malloc(slen / 4 * 3 + 3);
		if (!*out) {
			*why = "out of memory";
			return -ENOMEM;
		}
		n = base64_decode(s, slen, *out);
		if (n < 0) {
			free(*out);
			*out = NULL;
			*why = "'payload' is not valid base64";
			return -EINVAL;
		}
		*out_len = (size_t)n;
		return 0;
	}
	if (cJSON_IsString(v)) {
		size_t slen = strlen(v->valuestring);

		*out = malloc(slen ? slen : 1);
		if (!*out) {
			*why = "out of memory";
			return -ENOMEM;
		}
		memcpy(*out, v->valuestring, slen);
		*out_len = slen;
		return 0;
	}
	*out = cJSON_PrintUnformatted(v);
	if (!*out) {
		*why = "out of memory";
		return -ENOMEM;
	}
	*out_len = strlen(*out);
	return 0;
}

/* ---- base64 -------------------------------------------------------------- */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encoded_len(size_t len)
{
	return (len + 2) / 3 * 4;
}

size_t base64_encode(const void *in, size_t len, char *out)
{
	const unsigned char *s = in;
	char *o = out;
	size_t i;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

		*o++ = b64_alphabet[v >> 18];
		*o++ = b64_alphabet[(v >> 12) & 63];
		*o++ = b64_alphabet[(v >> 6) & 63];
		*o++ = b64_alphabet[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)s[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)s[i + 1] << 8;
		*o++ = b64_alphabet[v >> 18];
		*o++ = b64_alphabet[(v >> 12) & 63];
		*o++ = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	return (size_t)(o - out);
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long base64_decode(const char *in, size_t len, void *out)
{
	const unsigned char *s = (const unsigned char *)in;
	unsigned char *o = out;
	size_t i;

	if (len % 4)
		return -1;
	for (i = 0; i < len; i += 4) {
		int a = b64_value(s[i]), b = b64_value(s[i + 1]);
		int c = b64_value(s[i + 2]), d = b64_value(s[i + 3]);
		bool last = i + 4 == len;

		if (a < 0 || b < 0)
			return -1;
		*o++ = (unsigned char)(a << 2 | b >> 4);
		if (c < 0) {
			/* "xx==": only at the end, and the unused bits zero. */
			if (!last || s[i + 2] != '=' || s[i + 3] != '=' ||
			    (b & 15))
				return -1;
			break;
		}
		*o++ = (unsigned char)((b & 15) << 4 | c >> 2);
		if (d < 0) {
			if (!last || s[i + 3] != '=' || (c & 3))
				return -1;
			break;
		}
		*o++ = (unsigned char)((c & 3) << 6 | d);
	}
	return o - (unsigned char *)out;
}
