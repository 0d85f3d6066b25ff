/*
 * test_topic.c - topic.c: validation (table of UTF-8, NUL, length and
 * wildcard-placement cases), matching (tables, then 100,000 seeded random
 * pairs against libmosquitto's mosquitto_topic_matches_sub()), and the
 * subset/overlap relations against a brute-force oracle that enumerates
 * every topic the filters could tell apart.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "check.h"
#include "topic.h"

/* ---- validation --------------------------------------------------- */

struct valid_case {
	const char *s;
	size_t len; /* 0: strlen(s) */
	enum topic_kind kind;
	const char *why; /* NULL: valid */
};

#define NAME TOPIC_NAME
#define FILT TOPIC_FILTER
#define BAD_UTF8 "invalid UTF-8"
#define WILD_NAME "wildcard in a topic name"
#define WHOLE "wildcard must be a whole level"
#define HASH_LAST "'#' must be the last level"

static const struct valid_case valid_cases[] = {
	/* plain ASCII and level shapes */
	{ "a", 0, NAME, NULL },
	{ "a/b/c", 0, NAME, NULL },
	{ "/", 0, NAME, NULL },
	{ "//", 0, NAME, NULL },
	{ "a//b", 0, NAME, NULL },
	{ "a/", 0, NAME, NULL },
	{ "/a", 0, NAME, NULL },
	{ "$SYS/broker/uptime", 0, NAME, NULL },
	{ "$", 0, NAME, NULL },
	{ " ", 0, NAME, NULL },
	{ "\x7f", 0, NAME, NULL },
	{ "\x01", 0, NAME, NULL },
	{ "", 0, NAME, "empty topic" },
	{ "", 0, FILT, "empty topic" },
	/* NUL anywhere */
	{ "a\0b", 3, NAME, "NUL in topic" },
	{ "\0", 1, FILT, "NUL in topic" },
	{ "a/\0", 3, FILT, "NUL in topic" },
	/* valid UTF-8: boundaries of each sequence length */
	{ "caf\xc3\xa9", 0, NAME, NULL },
	{ "\xc2\x80", 0, NAME, NULL },               /* U+0080 */
	{ "\xdf\xbf", 0, NAME, NULL },               /* U+07FF */
	{ "\xe0\xa0\x80", 0, NAME, NULL },           /* U+0800 */
	{ "\xe2\x82\xac", 0, NAME, NULL },           /* U+20AC */
	{ "\xed\x9f\xbf", 0, NAME, NULL },           /* U+D7FF */
	{ "\xee\x80\x80", 0, NAME, NULL },           /* U+E000 */
	{ "\xef\xbf\xbf", 0, NAME, NULL },           /* U+FFFF */
	{ "\xf0\x90\x80\x80", 0, NAME, NULL },       /* U+10000 */
	{ "\xf0\x9f\x98\x80/x", 0, NAME, NULL },     /* U+1F600 */
	{ "\xf4\x8f\xbf\xbf", 0, NAME, NULL },       /* U+10FFFF */
	{ "\xe6\xb8\xa9\xe5\xba\xa6/+", 0, FILT, NULL },
	/* invalid UTF-8 */
	{ "\x80", 0, NAME, BAD_UTF8 },               /* lone continuation */
	{ "a\xbf", 0, NAME, BAD_UTF8 },
	{ "\xc0\xaf", 0, NAME, BAD_UTF8 },           /* overlong '/' */
	{ "\xc1\xbf", 0, NAME, BAD_UTF8 },           /* overlong U+7F */
	{ "\xc0\x80", 0, NAME, BAD_UTF8 },           /* overlong NUL */
	{ "\xe0\x80\xaf", 0, NAME, BAD_UTF8 },       /* overlong, 3 bytes */
	{ "\xe0\x9f\xbf", 0, NAME, BAD_UTF8 },       /* overlong U+07FF */
	{ "\xf0\x80\x80\xaf", 0, NAME, BAD_UTF8 },   /* overlong, 4 bytes */
	{ "\xf0\x8f\xbf\xbf", 0, NAME, BAD_UTF8 },   /* overlong U+FFFF */
	{ "\xed\xa0\x80", 0, NAME, BAD_UTF8 },       /* U+D800 */
	{ "\xed\xbf\xbf", 0, NAME, BAD_UTF8 },       /* U+DFFF */
	{ "\xed\xa0\xbd\xed\xb8\x80", 0, NAME, BAD_UTF8 }, /* CESU pair */
	{ "\xf4\x90\x80\x80", 0, NAME, BAD_UTF8 },   /* U+110000 */
	{ "\xf5\x80\x80\x80", 0, NAME, BAD_UTF8 },
	{ "\xf7\xbf\xbf\xbf", 0, NAME, BAD_UTF8 },
	{ "\xf8\x88\x80\x80\x80", 0, NAME, BAD_UTF8 }, /* 5-byte form */
	{ "\xfc\x84\x80\x80\x80\x80", 0, NAME, BAD_UTF8 },
	{ "\xfe", 0, NAME, BAD_UTF8 },
	{ "\xff", 0, NAME, BAD_UTF8 },
	{ "\xc3", 0, NAME, BAD_UTF8 },               /* truncated */
	{ "\xc3/a", 0, NAME, BAD_UTF8 },
	{ "\xe2\x82", 0, NAME, BAD_UTF8 },
	{ "\xe2\x82/", 0, NAME, BAD_UTF8 },
	{ "\xf0\x9f\x98", 0, NAME, BAD_UTF8 },
	{ "\xc3\xa9\xa9", 0, NAME, BAD_UTF8 },       /* stray continuation */
	{ "\xe2\x28\xa1", 0, NAME, BAD_UTF8 },
	{ "\xf0\x28\x8c\xbc", 0, NAME, BAD_UTF8 },
	{ "\xc3\xa9", 1, NAME, BAD_UTF8 },           /* cut by len */
	{ "\xf0\x9f\x98\x80", 3, FILT, BAD_UTF8 },
	{ "a/\xc3\x28", 0, FILT, BAD_UTF8 },
	/* wildcards in names */
	{ "+", 0, NAME, WILD_NAME },
	{ "#", 0, NAME, WILD_NAME },
	{ "a/+", 0, NAME, WILD_NAME },
	{ "a/#", 0, NAME, WILD_NAME },
	{ "a+b", 0, NAME, WILD_NAME },
	{ "sport#", 0, NAME, WILD_NAME },
	/* wildcard placement in filters */
	{ "+", 0, FILT, NULL },
	{ "#", 0, FILT, NULL },
	{ "+/+", 0, FILT, NULL },
	{ "+/#", 0, FILT, NULL },
	{ "a/#", 0, FILT, NULL },
	{ "/#", 0, FILT, NULL },
	{ "/+/", 0, FILT, NULL },
	{ "a/+/b/#", 0, FILT, NULL },
	{ "$SYS/#", 0, FILT, NULL },
	{ "a/b", 0, FILT, NULL },
	{ "#/", 0, FILT, HASH_LAST },
	{ "#/a", 0, FILT, HASH_LAST },
	{ "a/#/b", 0, FILT, HASH_LAST },
	{ "#/#", 0, FILT, HASH_LAST },
	{ "a#", 0, FILT, WHOLE },
	{ "#a", 0, FILT, WHOLE },
	{ "a/b#", 0, FILT, WHOLE },
	{ "a/#b", 0, FILT, WHOLE },
	{ "+a", 0, FILT, WHOLE },
	{ "a+", 0, FILT, WHOLE },
	{ "a/+b/c", 0, FILT, WHOLE },
	{ "a/b+/c", 0, FILT, WHOLE },
	{ "++", 0, FILT, WHOLE },
	{ "##", 0, FILT, WHOLE },
	{ "+#", 0, FILT, WHOLE },
	{ "#+", 0, FILT, WHOLE },
	{ "sport/tennis#", 0, FILT, WHOLE },
};

static void test_validate_table(void)
{
	for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]);
	     i++) {
		const struct valid_case *c = &valid_cases[i];
		size_t len = c->len ? c->len : strlen(c->s);
		const char *why = "untouched";
		int rc = topic_validate(c->s, len, c->kind, &why);

		if (!c->why) {
			CHECK_INT(rc, 0);
			CHECK_STR(why, "untouched");
			if (rc != 0)
				fprintf(stderr, "  case %zu: %s\n", i, why);
		} else {
			CHECK_INT(rc, -EINVAL);
			CHECK_STR(why, c->why);
			if (rc != -EINVAL || strcmp(why, c->why) != 0)
				fprintf(stderr, "  case %zu\n", i);
			/* why may be NULL */
			CHECK_INT(topic_validate(c->s, len, c->kind, NULL),
				  -EINVAL);
		}
		/* A valid name is a valid filter too. */
		if (!c->why && c->kind == TOPIC_NAME)
			CHECK_INT(topic_validate(c->s, len, TOPIC_FILTER, NULL),
				  0);
	}
}

static void test_validate_length(void)
{
	char *s = malloc(TOPIC_MAX_LEN + 2);
	const char *why = NULL;

	if (!s) {
		CHECK(s != NULL);
		return;
	}
	memset(s, 'x', TOPIC_MAX_LEN + 1);
	s[TOPIC_MAX_LEN + 1] = '\0';
	CHECK_INT(topic_validate(s, TOPIC_MAX_LEN, TOPIC_NAME, &why), 0);
	CHECK_INT(topic_validate(s, TOPIC_MAX_LEN + 1, TOPIC_NAME, &why),
		  -EINVAL);
	CHECK_STR(why, "topic longer than 65535 bytes");
	CHECK_INT(topic_validate(s, TOPIC_MAX_LEN + 1, TOPIC_FILTER, &why),
		  -EINVAL);
	CHECK_INT(topic_validate(s, (size_t)-1, TOPIC_FILTER, NULL), -EINVAL);

	/* The deepest filter: 32768 levels of '+' in 65535 bytes. */
	for (size_t i = 0; i < TOPIC_MAX_LEN; i++)
		s[i] = i % 2 ? '/' : '+';
	s[TOPIC_MAX_LEN] = '\0';
	CHECK_INT(topic_validate(s, TOPIC_MAX_LEN, TOPIC_FILTER, NULL), 0);
	CHECK_INT(topic_validate(s, TOPIC_MAX_LEN, TOPIC_NAME, NULL), -EINVAL);

	/* A 4-byte character ending exactly at byte 65535 is fine; one
	 * that would cross it is cut, hence invalid. */
	memset(s, 'x', TOPIC_MAX_LEN + 1);
	memcpy(s + TOPIC_MAX_LEN - 4, "\xf0\x9f\x98\x80", 4);
	CHECK_INT(topic_validate(s, TOPIC_MAX_LEN, TOPIC_NAME, NULL), 0);
	memcpy(s + TOPIC_MAX_LEN - 3, "\xf0\x9f\x98\x80", 4);
	CHECK_INT(topic_validate(s, TOPIC_MAX_LEN, TOPIC_NAME, &why), -EINVAL);
	CHECK_STR(why, BAD_UTF8);
	free(s);
}

/* ---- matching ----------------------------------------------------- */

struct pair_case {
	const char *a, *b;
	int want;
};

/* filter, topic, matches? */
static const struct pair_case match_cases[] = {
	{ "a", "a", 1 },
	{ "a", "b", 0 },
	{ "a", "ab", 0 },
	{ "ab", "a", 0 },
	{ "a/b", "a/b", 1 },
	{ "a/b", "a", 0 },
	{ "a", "a/b", 0 },
	{ "+", "a", 1 },
	{ "+", "a/b", 0 },
	{ "+", "/", 0 },
	{ "+/+", "/", 1 },
	{ "+/+", "a/", 1 },
	{ "a/+", "a/", 1 },
	{ "a/+", "a", 0 },
	{ "a/+/c", "a//c", 1 },
	{ "a/+/c", "a/c", 0 },
	{ "#", "a", 1 },
	{ "#", "a/b/c", 1 },
	{ "#", "/", 1 },
	{ "#", "$SYS", 0 },
	{ "#", "$SYS/x", 0 },
	{ "+", "$SYS", 0 },
	{ "+/x", "$a/x", 0 },
	{ "+/#", "$SYS/x", 0 },
	{ "$SYS/#", "$SYS", 1 },
	{ "$SYS/#", "$SYS/a/b", 1 },
	{ "$SYS/+", "$SYS/a", 1 },
	{ "$SYS", "$SYS", 1 },
	{ "a/$x", "a/$x", 1 },
	{ "a/+", "a/$x", 1 },
	{ "a/#", "a/$x", 1 },
	{ "a/#", "a", 1 },
	{ "a/#", "a/", 1 },
	{ "a/#", "a/b/c", 1 },
	{ "a/#", "ab", 0 },
	{ "a/#", "b", 0 },
	{ "a/+/#", "a", 0 },
	{ "a/+/#", "a/b", 1 },
	{ "a/+/#", "a/", 1 },
	{ "+/#", "a", 1 },
	{ "+/#", "/", 1 },
	{ "/#", "/", 1 },
	{ "/#", "/a/b", 1 },
	{ "/#", "a", 0 },
	{ "/+", "/a", 1 },
	{ "/+", "a", 0 },
	{ "a//b", "a//b", 1 },
	{ "a//b", "a/b", 0 },
	{ "+/+/+", "a/b", 0 },
	{ "sport/tennis/+", "sport/tennis/player1", 1 },
	{ "sport/tennis/+", "sport/tennis/player1/ranking", 0 },
	{ "sport/#", "sport", 1 },
};

static void test_match_table(void)
{
	for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]);
	     i++) {
		const struct pair_case *c = &match_cases[i];
		bool got = topic_matches(c->a, c->b), mosq = !got;

		CHECK_INT(got, c->want);
		if (got != c->want)
			fprintf(stderr, "  topic_matches(\"%s\", \"%s\")\n",
				c->a, c->b);
		/* The table itself agrees with libmosquitto. */
		CHECK_INT(mosquitto_topic_matches_sub(c->a, c->b, &mosq),
			  MOSQ_ERR_SUCCESS);
		CHECK_INT(mosq, c->want);
	}
}

/* splitmix64: a small seeded PRNG, so every run sees the same pairs. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static unsigned rng_below(unsigned n)
{
	return (unsigned)(rng_next() % n);
}

static const char *const rand_levels[] = { "", "$SYS", "$x", "a", "b" };
#define N_RAND_LEVELS (sizeof(rand_levels) / sizeof(rand_levels[0]))

/* Appends "/level" (or "level" first) to buf. */
static void append_level(char *buf, size_t cap, size_t i, const char *lv)
{
	size_t used = strlen(buf);

	snprintf(buf + used, cap - used, "%s%s", i ? "/" : "", lv);
}

/* A random topic of 1..5 levels into buf; returns its depth. */
static size_t rand_topic(char *buf, size_t cap, const char **lv)
{
	size_t depth = 1 + rng_below(5);

	buf[0] = '\0';
	for (size_t i = 0; i < depth; i++) {
		lv[i] = rand_levels[rng_below(N_RAND_LEVELS)];
		append_level(buf, cap, i, lv[i]);
	}
	return depth;
}

/* A random filter: either made up level by level (literals, '+', '#'),
 * or derived from the topic's levels by swapping some for '+', cutting
 * it with '#' and sometimes changing a level, so that many pairs match. */
static void rand_filter(char *buf, size_t cap, const char **tl, size_t tdepth)
{
	buf[0] = '\0';
	if (rng_below(3) == 0) {
		size_t depth = 1 + rng_below(5);

		for (size_t i = 0; i < depth; i++) {
			unsigned r = rng_below(N_RAND_LEVELS + 2);

			if (r == N_RAND_LEVELS + 1 || (r == N_RAND_LEVELS &&
						       i + 1 == depth)) {
				append_level(buf, cap, i, "#");
				return;
			}
			append_level(buf, cap, i,
				     r == N_RAND_LEVELS ? "+" : rand_levels[r]);
		}
		return;
	}
	for (size_t i = 0; i < tdepth; i++) {
		unsigned r = rng_below(20);

		if (r < 2) {
			append_level(buf, cap, i, "#");
			return;
		}
		if (r < 7)
			append_level(buf, cap, i, "+");
		else if (r < 8)
			append_level(buf, cap, i,
				     rand_levels[rng_below(N_RAND_LEVELS)]);
		else
			append_level(buf, cap, i, tl[i]);
	}
	switch (rng_below(6)) {
	case 0:
		append_level(buf, cap, tdepth, "#");
		break;
	case 1:
		append_level(buf, cap, tdepth, "+");
		break;
	default:
		break;
	}
}

static void test_match_random(void)
{
	unsigned pairs = 0, matched = 0, skipped = 0, disagree = 0;
	char topic[64], filter[64];
	const char *tl[8];

	rng_state = 20240611;
	while (pairs < 100000) {
		size_t td = rand_topic(topic, sizeof(topic), tl);
		bool got, want = false;
		int rc;

		rand_filter(filter, sizeof(filter), tl, td);
		/* Only "" (one empty level) is not a valid topic here. */
		if (topic_validate(topic, strlen(topic), TOPIC_NAME, NULL) < 0 ||
		    topic_validate(filter, strlen(filter), TOPIC_FILTER,
				   NULL) < 0) {
			skipped++;
			continue;
		}
		pairs++;
		got = topic_matches(filter, topic);
		rc = mosquitto_topic_matches_sub(filter, topic, &want);
		CHECK_INT(rc, MOSQ_ERR_SUCCESS);
		if (got != want) {
			if (disagree++ < 20)
				fprintf(stderr, "  \"%s\" vs \"%s\": %d, "
					"mosquitto %d\n", filter, topic, got,
					want);
		}
		matched += want;
	}
	CHECK_INT(disagree, 0);
	/* The generator is only useful if both outcomes are frequent. */
	CHECK(matched > pairs / 5);
	CHECK(matched < pairs - pairs / 5);
	/* The only invalid draws are "" topics (or a filter ""). */
	CHECK(skipped < pairs / 10);
	printf("random matching: %u pairs, %u match, %u draws skipped\n",
	       pairs, matched, skipped);
}

/* ---- subset and overlap ------------------------------------------- */

/* inner, outer, subset? */
static const struct pair_case subset_cases[] = {
	{ "a", "a", 1 },
	{ "a", "+", 1 },
	{ "a", "#", 1 },
	{ "a/b", "a/+", 1 },
	{ "a/b", "a/#", 1 },
	{ "a", "a/#", 1 },
	{ "a/#", "a", 0 },
	{ "a/#", "a/+", 0 },
	{ "a/+", "a/#", 1 },
	{ "a/+/#", "a/#", 1 },
	{ "a/#", "a/+/#", 0 },
	{ "+", "#", 1 },
	{ "#", "+", 0 },
	{ "+/#", "#", 1 },
	{ "#", "+/#", 1 }, /* both: every non-'$' topic */
	{ "a/#", "+/#", 1 },
	{ "+/+", "+/#", 1 },
	{ "$SYS/#", "#", 0 },
	{ "$SYS/x", "#", 0 },
	{ "$SYS/x", "+/+", 0 },
	{ "$SYS/x", "+/#", 0 },
	{ "$a/x", "+/x", 0 },
	{ "$SYS/x", "$SYS/#", 1 },
	{ "$SYS/x", "$SYS/+", 1 },
	{ "$SYS/#", "$SYS/#", 1 },
	{ "a/$x", "a/+", 1 },
	{ "a/$x", "a/#", 1 },
	{ "#", "$SYS/#", 0 },
	{ "+", "a", 0 },
	{ "/", "+/+", 1 },
	{ "/", "#", 1 },
	{ "/", "/#", 1 },
	{ "/#", "+/#", 1 },
	{ "/#", "/", 0 },
	{ "a//b", "a/+/b", 1 },
	{ "a/+/b", "a//b", 0 },
	/* "" is not a topic, so "/#" only has topics of 2+ levels */
	{ "/#", "/+/#", 1 },
	{ "/#", "+/+/#", 1 },
	{ "a/#", "a/+/#", 0 },
	{ "+", "/#", 0 },
};

/* a, b, overlap? */
static const struct pair_case overlap_cases[] = {
	{ "a", "a", 1 },
	{ "a", "b", 0 },
	{ "a/+", "+/b", 1 },
	{ "a/#", "+/b/c", 1 },
	{ "a/#", "a", 1 },
	{ "a/+", "a", 0 },
	{ "a/+/#", "a", 0 },
	{ "#", "$SYS/x", 0 },
	{ "#", "$SYS/#", 0 },
	{ "+", "$SYS", 0 },
	{ "+/#", "$SYS", 0 },
	{ "$SYS/#", "$SYS/+", 1 },
	{ "$SYS/#", "$x/#", 0 },
	{ "#", "+", 1 },
	{ "#", "a/b/c/d", 1 },
	{ "a/+/c", "a/b/+", 1 },
	{ "a/+/c", "a/b/d", 0 },
	{ "/", "+/+", 1 },
	{ "/", "+", 0 },
	{ "a/$x", "a/+", 1 },
	/* the only one-level topic "/#" or "/+" could share is "" */
	{ "+", "/#", 0 },
	{ "#", "/#", 1 },
	{ "/#", "/", 1 },
};

static void test_set_tables(void)
{
	for (size_t i = 0; i < sizeof(subset_cases) / sizeof(subset_cases[0]);
	     i++) {
		const struct pair_case *c = &subset_cases[i];
		bool got = topic_filter_subset(c->a, c->b);

		CHECK_INT(got, c->want);
		if (got != c->want)
			fprintf(stderr, "  subset(\"%s\", \"%s\")\n", c->a,
				c->b);
	}
	for (size_t i = 0;
	     i < sizeof(overlap_cases) / sizeof(overlap_cases[0]); i++) {
		const struct pair_case *c = &overlap_cases[i];

		CHECK_INT(topic_filters_overlap(c->a, c->b), c->want);
		CHECK_INT(topic_filters_overlap(c->b, c->a), c->want);
	}
}

/*
 * The oracle. Filters: every valid filter of 1..3 levels over
 * F = { "", "a", "b", "$x", "+", "#" }. Topics: every valid topic of 1..4
 * levels over T = { "", "a", "b", "$x", "z", "$y" }. A filter's meaning is
 * the set of enumerated topics it matches (by libmosquitto, so the oracle
 * does not lean on the code under test); subset and overlap are then set
 * inclusion and intersection.
 *
 * Why these topics are enough, i.e. two of these filters relate over all
 * topics exactly as they do over the enumerated ones:
 * - Depth. A filter of k <= 3 levels without '#' matches only topics of
 *   exactly k levels; one ending in '#' matches the topics of k-1 or more
 *   levels whose first k-1 levels match its first k-1. Either way, for a
 *   topic of d >= 4 levels the answer depends only on its first 2 levels
 *   and on d > 3, so it is the same as for the topic cut to its first 4
 *   levels. Every topic deeper than 4 thus behaves like a depth-4 one, and
 *   depths 1..3 are enumerated as they are.
 * - Level text. A level that is none of the filters' literals ("", "a",
 *   "b", "$x") only matches '+' or '#', and all such levels behave alike
 *   except that a first level starting with '$' is refused by a leading
 *   wildcard. "z" stands for the former and "$y" for the latter.
 * So any topic is equivalent, for every filter here at once, to one in
 * the enumeration; the only topic left out is "" (one empty level), which
 * is not a valid topic.
 */
static const char *const f_alpha[] = { "", "a", "b", "$x", "+", "#" };
static const char *const t_alpha[] = { "", "a", "b", "$x", "z", "$y" };
#define NF (sizeof(f_alpha) / sizeof(f_alpha[0]))
#define NT (sizeof(t_alpha) / sizeof(t_alpha[0]))
#define MAX_TOPICS (NT + NT * NT + NT * NT * NT + NT * NT * NT * NT)
#define MAX_FILTERS (NF + NF * NF + NF * NF * NF)
#define WORDS ((MAX_TOPICS + 63) / 64)

struct oracle {
	char topics[MAX_TOPICS][24];
	size_t ntopics;
	char filters[MAX_FILTERS][24];
	uint64_t set[MAX_FILTERS][WORDS]; /* topics each filter matches */
	size_t nfilters;
};

/* Every string of 1..max_depth levels over alpha[0..n), in buf. */
static size_t enumerate(char (*buf)[24], const char *const *alpha, size_t n,
			size_t max_depth, enum topic_kind kind)
{
	size_t count = 0;

	for (size_t depth = 1; depth <= max_depth; depth++) {
		size_t total = 1;

		for (size_t i = 0; i < depth; i++)
			total *= n;
		for (size_t code = 0; code < total; code++) {
			char s[24] = "";
			size_t c = code;

			for (size_t i = 0; i < depth; i++, c /= n)
				append_level(s, sizeof(s), i, alpha[c % n]);
			if (topic_validate(s, strlen(s), kind, NULL) < 0)
				continue;
			memcpy(buf[count++], s, sizeof(s));
		}
	}
	return count;
}

static void test_set_oracle(void)
{
	struct oracle *o = calloc(1, sizeof(*o));
	unsigned subsets = 0, overlaps = 0, bad_sub = 0, bad_ovl = 0;
	unsigned bad_match = 0;

	if (!o) {
		CHECK(o != NULL);
		return;
	}
	o->ntopics = enumerate(o->topics, t_alpha, NT, 4, TOPIC_NAME);
	o->nfilters = enumerate(o->filters, f_alpha, NF, 3, TOPIC_FILTER);
	/* All but "" are topics; "" and the misplaced '#' are no filters. */
	CHECK_INT(o->ntopics, MAX_TOPICS - 1);
	CHECK(o->nfilters > 150);

	for (size_t f = 0; f < o->nfilters; f++) {
		for (size_t t = 0; t < o->ntopics; t++) {
			bool m = false;

			if (mosquitto_topic_matches_sub(o->filters[f],
							o->topics[t],
							&m) != MOSQ_ERR_SUCCESS)
				bad_match++;
			if (m)
				o->set[f][t / 64] |= 1ull << (t % 64);
			/* topic_matches, exhaustively on this space too */
			if (topic_matches(o->filters[f], o->topics[t]) != m)
				bad_match++;
		}
	}
	CHECK_INT(bad_match, 0);

	for (size_t a = 0; a < o->nfilters; a++) {
		for (size_t b = 0; b < o->nfilters; b++) {
			bool sub = true, ovl = false;

			for (size_t w = 0; w < WORDS; w++) {
				if (o->set[a][w] & ~o->set[b][w])
					sub = false;
				if (o->set[a][w] & o->set[b][w])
					ovl = true;
			}
			subsets += sub;
			overlaps += ovl;
			if (topic_filter_subset(o->filters[a],
						o->filters[b]) != sub &&
			    bad_sub++ < 20)
				fprintf(stderr, "  subset(\"%s\", \"%s\") "
					"should be %d\n", o->filters[a],
					o->filters[b], sub);
			if (topic_filters_overlap(o->filters[a],
						  o->filters[b]) != ovl &&
			    bad_ovl++ < 20)
				fprintf(stderr, "  overlap(\"%s\", \"%s\") "
					"should be %d\n", o->filters[a],
					o->filters[b], ovl);
		}
	}
	CHECK_INT(bad_sub, 0);
	CHECK_INT(bad_ovl, 0);
	/* Both answers occur often enough for the comparison to mean
	 * something. */
	CHECK(subsets > o->nfilters * 2);
	CHECK(overlaps > o->nfilters * 10);
	printf("oracle: %zu filters, %zu topics, %u subset pairs, "
	       "%u overlapping pairs\n", o->nfilters, o->ntopics, subsets,
	       overlaps);
	free(o);
}

int main(void)
{
	test_validate_table();
	test_validate_length();
	test_match_table();
	test_match_random();
	test_set_tables();
	test_set_oracle();
	return check_summary("test_topic");
}
