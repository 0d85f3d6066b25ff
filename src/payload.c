/*
 * payload.c - payload encoding between broker bytes and JSON (see
 * payload.h). The JSON check is a strict RFC 8259 scanner that writes the
 * compact form as it goes, so a payload is read once: no parse tree is
 * built for messages that are only relayed.
 */
#include "payload.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[0..len), or 0 when invalid
 * (overlong forms, surrogates and code points over U+10FFFF refused). */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return len >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned char lo = c == 0xe0 ? 0xa0 : 0x80;
		unsigned char hi = c == 0xed ? 0x9f : 0xbf;

		if (len < 3 || s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80)
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned char lo = c == 0xf0 ? 0x90 : 0x80;
		unsigned char hi = c == 0xf4 ? 0x8f : 0xbf;

		if (len < 4 || s[1] < lo || s[1] > hi ||
		    (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		return 4;
	}
	return 0;
}

bool utf8_valid(const void *p, size_t len)
{
	const unsigned char *s = p;
	size_t i = 0;

	while (i < len) {
		size_t n;

		/* Fast path over ASCII runs. */
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		n = utf8_seq(s + i, len - i);
		if (!n)
			return false;
		i += n;
	}
	return true;
}

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

/* ---- JSON scanner / compactor -------------------------------------------- */

struct scan {
	const unsigned char *p, *end;
	char *out;
	unsigned depth;
};

static void scan_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
				 *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static bool scan_lit(struct scan *s, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
		return false;
	memcpy(s->out, lit, n);
	s->out += n;
	s->p += n;
	return true;
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool scan_number(struct scan *s)
{
	const unsigned char *start = s->p;

	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (s->p >= s->end)
		return false;
	if (*s->p == '0') {
		s->p++;
	} else if (is_digit(*s->p)) {
		while (s->p < s->end && is_digit(*s->p))
			s->p++;
	} else {
		return false;
	}
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (s->p >= s->end || !is_digit(*s->p))
			return false;
		while (s->p < s->end && is_digit(*s->p))
			s->p++;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (s->p >= s->end || !is_digit(*s->p))
			return false;
		while (s->p < s->end && is_digit(*s->p))
			s->p++;
	}
	memcpy(s->out, start, (size_t)(s->p - start));
	s->out += s->p - start;
	return true;
}

/* A string literal, copied as written (it holds no raw control byte, so
 * no raw CR or LF). Raw U+2028/U+2029 are kept: they are valid JSON. */
static bool scan_string(struct scan *s)
{
	const unsigned char *start = s->p++;

	while (s->p < s->end) {
		unsigned char c = *s->p;

		if (c == '"') {
			s->p++;
			memcpy(s->out, start, (size_t)(s->p - start));
			s->out += s->p - start;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			if (++s->p >= s->end)
				return false;
			switch (*s->p) {
			case '"': case '\\': case '/': case 'b': case 'f':
			case 'n': case 'r': case 't':
				s->p++;
				break;
			case 'u':
				if (s->end - s->p < 5 || !is_hex(s->p[1]) ||
				    !is_hex(s->p[2]) || !is_hex(s->p[3]) ||
				    !is_hex(s->p[4]))
					return false;
				s->p += 5;
				break;
			default:
				return false;
			}
		} else if (c < 0x80) {
			s->p++;
		} else {
			size_t n = utf8_seq(s->p, (size_t)(s->end - s->p));

			if (!n)
				return false;
			s->p += n;
		}
	}
	return false;
}

static bool scan_value(struct scan *s);

static bool scan_container(struct scan *s, unsigned char close, bool object)
{
	if (++s->depth > PAYLOAD_JSON_MAX_DEPTH)
		return false;
	*s->out++ = (char)*s->p++;
	scan_ws(s);
	if (s->p < s->end && *s->p == close) {
		*s->out++ = (char)*s->p++;
		s->depth--;
		return true;
	}
	for (;;) {
		if (object) {
			if (s->p >= s->end || *s->p != '"' || !scan_string(s))
				return false;
			scan_ws(s);
			if (s->p >= s->end || *s->p != ':')
				return false;
			*s->out++ = (char)*s->p++;
			scan_ws(s);
		}
		if (!scan_value(s))
			return false;
		scan_ws(s);
		if (s->p >= s->end)
			return false;
		if (*s->p == close) {
			*s->out++ = (char)*s->p++;
			s->depth--;
			return true;
		}
		if (*s->p != ',')
			return false;
		*s->out++ = (char)*s->p++;
		scan_ws(s);
	}
}

static bool scan_value(struct scan *s)
{
	if (s->p >= s->end)
		return false;
	switch (*s->p) {
	case '{': return scan_container(s, '}', true);
	case '[': return scan_container(s, ']', false);
	case '"': return scan_string(s);
	case 't': return scan_lit(s, "true");
	case 'f': return scan_lit(s, "false");
	case 'n': return scan_lit(s, "null");
	default: return scan_number(s);
	}
}

long payload_json_compact(const char *p, size_t len, char *out)
{
	struct scan s = {
		.p = (const unsigned char *)p,
		.end = (const unsigned char *)p + len,
		.out = out,
	};

	scan_ws(&s);
	if (!scan_value(&s))
		return -1;
	scan_ws(&s);
	if (s.p != s.end)
		return -1;
	return s.out - out;
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
