/*
 * topic.c - MQTT-syntax topic names and filters (see topic.h): strict
 * UTF-8 and wildcard-placement validation, filter matching with the '$'
 * rule, and the set relations between filters (subset, overlap) that the
 * ACL and the broker routing use. Pure functions: no state, no allocation.
 *
 * All the walkers below step level by level through NUL-terminated
 * strings. A level is the text between two '/' (or the string ends); it
 * may be empty. In a valid filter "+" and "#" are whole levels and "#"
 * is the last one, so a level that starts with '+' or '#' is a wildcard.
 */
#include "topic.h"

#include <errno.h>
#include <stdint.h>

#include "utf8.h"

int topic_validate(const char *s, size_t len, enum topic_kind kind,
		   const char **why)
{
	const unsigned char *p = (const unsigned char *)s;
	const char *reason;
	size_t i = 0;

	if (len == 0) {
		reason = "empty topic";
		goto fail;
	}
	if (len > TOPIC_MAX_LEN) {
		reason = "topic longer than 65535 bytes";
		goto fail;
	}
	while (i < len) {
		unsigned char c = p[i];

		if (c == 0) {
			reason = "NUL in topic";
			goto fail;
		}
		if (c >= 0x80) {
			size_t n = utf8_char_len(p + i, len - i);

			if (n == 0) {
				reason = "invalid UTF-8";
				goto fail;
			}
			i += n;
			continue;
		}
		if (c == '+' || c == '#') {
			bool whole = (i == 0 || p[i - 1] == '/') &&
				     (i + 1 == len || p[i + 1] == '/');

			if (kind == TOPIC_NAME) {
				reason = "wildcard in a topic name";
				goto fail;
			}
			if (!whole) {
				reason = "wildcard must be a whole level";
				goto fail;
			}
			if (c == '#' && i + 1 != len) {
				reason = "'#' must be the last level";
				goto fail;
			}
		}
		i++;
	}
	return 0;
fail:
	if (why)
		*why = reason;
	return -EINVAL;
}

/* End of the level that starts at s: the next '/' or the final NUL. */
static const char *topic_level_end(const char *s)
{
	while (*s && *s != '/')
		s++;
	return s;
}

/* Is the level [a, a_end) equal to the level [b, b_end)? */
static bool topic_level_eq(const char *a, const char *a_end, const char *b,
			   const char *b_end)
{
	if (a_end - a != b_end - b)
		return false;
	while (a < a_end)
		if (*a++ != *b++)
			return false;
	return true;
}

bool topic_matches(const char *filter, const char *topic)
{
	const char *f = filter, *t = topic;

	/* '$' rule: a leading wildcard never matches a '$' topic. */
	if (t[0] == '$' && (f[0] == '+' || f[0] == '#'))
		return false;
	for (;;) {
		/* f and t each start a level here. */
		if (f[0] == '#')
			return true; /* the remaining levels, zero or more */
		if (f[0] == '+') {
			f++;
			t = topic_level_end(t);
		} else {
			while (*f && *f != '/' && *f == *t) {
				f++;
				t++;
			}
			if ((*f && *f != '/') || (*t && *t != '/'))
				return false;
		}
		/* Both levels ended: each of f, t is at '/' or at the end. */
		if (!*t) /* "a/#" matches "a": '#' spans zero levels */
			return !*f || (f[1] == '#' && f[2] == '\0');
		if (!*f)
			return false; /* the topic has more levels */
		f++;
		t++;
	}
}

/* Kinds of a filter level. */
enum topic_lv {
	LV_END,  /* no level left */
	LV_LIT,  /* a literal level */
	LV_PLUS, /* '+' */
	LV_HASH, /* '#' */
};

/* Classifies the level at s; s is the start of a level or NULL when the
 * filter has ended. Sets *end to the level's end. */
static enum topic_lv topic_level_kind(const char *s, const char **end)
{
	if (!s)
		return LV_END;
	*end = topic_level_end(s);
	if (*end - s == 1 && (s[0] == '+' || s[0] == '#'))
		return s[0] == '+' ? LV_PLUS : LV_HASH;
	return LV_LIT;
}

/* The start of the level after the one that ends at end, or NULL. */
static const char *topic_level_next(const char *end)
{
	return *end ? end + 1 : NULL;
}

bool topic_filter_subset(const char *inner, const char *outer)
{
	const char *in = inner, *out = outer;
	size_t depth = 0; /* levels compared so far */

	for (;;) {
		const char *ie = NULL, *oe = NULL;
		enum topic_lv ik = topic_level_kind(in, &ie);
		enum topic_lv ok = topic_level_kind(out, &oe);

		if (ik == LV_END)
			/* inner's topics end here: outer must take zero more
			 * levels, which only a final '#' does. */
			return ok == LV_END || ok == LV_HASH;
		if (ok == LV_END)
			return false; /* inner's topics have more levels */
		if (ok == LV_HASH)
			/* '#' takes every remainder, but as the first level it
			 * refuses '$' topics, which only a '$' literal yields. */
			return !(depth == 0 && ik == LV_LIT && in[0] == '$');
		if (ik == LV_HASH) {
			/* inner takes any remainder, of zero levels too, but
			 * for two cases where that leaves no valid topic: as
			 * the first level (no topic has zero levels) and in
			 * "/#" (the topic "" is not valid). Outer (not '#')
			 * then has to take every remainder of one level or
			 * more, as "+/#" does, with the same '$' rule as '#'
			 * at the first level. */
			const char *n = topic_level_next(oe);
			const char *ne = NULL;
			bool no_zero = depth == 0 ||
				       (depth == 1 && inner[0] == '/');

			return no_zero && ok == LV_PLUS &&
			       topic_level_kind(n, &ne) == LV_HASH;
		}
		if (ok == LV_PLUS) {
			/* '+' takes any level, except '$' ones at first. */
			if (depth == 0 && ik == LV_LIT && in[0] == '$')
				return false;
		} else if (ik != LV_LIT || !topic_level_eq(in, ie, out, oe)) {
			return false; /* a '+' or another literal in inner */
		}
		in = topic_level_next(ie);
		out = topic_level_next(oe);
		depth++;
	}
}

bool topic_filters_overlap(const char *a, const char *b)
{
	const char *a0 = a, *b0 = b;
	size_t depth = 0; /* levels compared so far */

	for (;;) {
		const char *ae = NULL, *be = NULL;
		enum topic_lv ak = topic_level_kind(a, &ae);
		enum topic_lv bk = topic_level_kind(b, &be);

		if (ak == LV_END || bk == LV_END) {
			/* A topic with exactly this many levels: the other
			 * filter must end too, or end with '#'. With one
			 * level, that level must not be empty ("" is not a
			 * topic), so neither filter may begin with "/". */
			if (depth == 1 && (a0[0] == '/' || b0[0] == '/'))
				return false;
			return (ak == LV_END || ak == LV_HASH) &&
			       (bk == LV_END || bk == LV_HASH);
		}
		if (depth == 0 &&
		    ((ak == LV_LIT && a[0] == '$' && bk != LV_LIT) ||
		     (bk == LV_LIT && b[0] == '$' && ak != LV_LIT)))
			return false; /* '$' topic vs a leading wildcard */
		if (ak == LV_HASH || bk == LV_HASH)
			return true; /* the other filter's rest picks a topic */
		if (ak == LV_LIT && bk == LV_LIT &&
		    !topic_level_eq(a, ae, b, be))
			return false;
		a = topic_level_next(ae);
		b = topic_level_next(be);
		depth++;
	}
}
