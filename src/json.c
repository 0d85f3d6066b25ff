/*
 * json.c - a strict RFC 8259 scanner (see json.h): one pass, no tree, no
 * allocation, bounded nesting. Optionally writes the compact form.
 */
#include "json.h"

#include <cjson/cJSON.h>
#include <string.h>

#include "utf8.h"

struct scan {
	const unsigned char *p, *end;
	char *out;          /* NULL: check only */
	unsigned depth;
	unsigned flags;
};

static void scan_emit(struct scan *s, const void *p, size_t n)
{
	if (!s->out)
		return;
	memcpy(s->out, p, n);
	s->out += n;
}

/* Copies the current input byte to the output and moves past it. */
static void scan_take(struct scan *s)
{
	scan_emit(s, s->p++, 1);
}

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
	scan_emit(s, lit, n);
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
	scan_emit(s, start, (size_t)(s->p - start));
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
			scan_emit(s, start, (size_t)(s->p - start));
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
				if ((s->flags & JSON_REFUSE_NUL) &&
				    memcmp(s->p + 1, "0000", 4) == 0)
					return false;
				s->p += 5;
				break;
			default:
				return false;
			}
		} else if (c < 0x80) {
			s->p++;
		} else {
			size_t n = utf8_char_len(s->p, (size_t)(s->end - s->p));

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
	if (++s->depth > JSON_MAX_DEPTH)
		return false;
	scan_take(s);
	scan_ws(s);
	if (s->p < s->end && *s->p == close) {
		scan_take(s);
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
			scan_take(s);
			scan_ws(s);
		}
		if (!scan_value(s))
			return false;
		scan_ws(s);
		if (s->p >= s->end)
			return false;
		if (*s->p == close) {
			scan_take(s);
			s->depth--;
			return true;
		}
		if (*s->p != ',')
			return false;
		scan_take(s);
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

long json_scan(const char *p, size_t len, unsigned flags, char *out)
{
	struct scan s = {
		.p = (const unsigned char *)p,
		.end = (const unsigned char *)p + len,
		.out = out,
		.flags = flags,
	};

	scan_ws(&s);
	if (!scan_value(&s))
		return -1;
	scan_ws(&s);
	if (s.p != s.end)
		return -1;
	return out ? s.out - out : (long)len;
}


struct cJSON *json_parse_object(const char *p, size_t len, const char **why)
{
	cJSON *root, *a, *b;
	int members = 0;

	if (json_scan(p, len, JSON_REFUSE_NUL, NULL) < 0) {
		*why = json_scan(p, len, 0, NULL) < 0
			       ? "malformed JSON"
			       : "\\u0000 is not allowed in a request";
		return NULL;
	}
	root = cJSON_ParseWithLength(p, len);
	if (!root) {
		*why = "malformed JSON";
		return NULL;
	}
	if (!cJSON_IsObject(root)) {
		*why = "a request must be a JSON object";
		goto fail;
	}
	for (a = root->child; a; a = a->next) {
		if (++members > JSON_MAX_MEMBERS) {
			*why = "too many members in the request object";
			goto fail;
		}
		for (b = root->child; b != a; b = b->next)
			if (strcmp(a->string, b->string) == 0) {
				*why = "duplicate member in the request object";
				goto fail;
			}
	}
	return root;
fail:
	cJSON_Delete(root);
	return NULL;
}
