/*
 * test_trie.c - trie.c against a naive model: 100,000 seeded random
 * add/remove/match operations compared with a plain list of (filter,
 * value) matched by topic_matches(); duplicates; pruning (the count, and
 * the heap returning to where it was once every entry is gone); 10,000
 * siblings under one node; topics and filters of 30,000+ levels.
 */
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "topic.h"
#include "trie.h"

/* Values handed to the trie are small integers cast to pointers. */
#define VAL(i) ((void *)(uintptr_t)(i))

struct collect {
	uintptr_t *v;
	size_t n, cap;
	int overflow;
};

static void collect_visit(void *value, void *arg)
{
	struct collect *c = arg;

	if (c->n == c->cap) {
		c->overflow = 1;
		return;
	}
	c->v[c->n++] = (uintptr_t)value;
}

static int cmp_uptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

/* Matches topic and returns how many values were visited, sorted into
 * c->v. */
static size_t match_sorted(const struct trie *t, const char *topic,
			   struct collect *c)
{
	c->n = 0;
	c->overflow = 0;
	trie_match(t, topic, collect_visit, c);
	qsort(c->v, c->n, sizeof(c->v[0]), cmp_uptr);
	return c->n;
}

/* ---- fixed cases -------------------------------------------------- */

static void test_basic(void)
{
	struct trie *t = trie_new();
	uintptr_t buf[16];
	struct collect c = { buf, 0, 16, 0 };
	struct trie_entry *e[12];

	CHECK(t != NULL);
	if (!t)
		return;
	CHECK_INT(trie_count(t), 0);
	e[0] = trie_add(t, "a/b", VAL(1));
	e[1] = trie_add(t, "a/+", VAL(2));
	e[2] = trie_add(t, "a/#", VAL(3));
	e[3] = trie_add(t, "#", VAL(4));
	e[4] = trie_add(t, "+/b", VAL(5));
	e[5] = trie_add(t, "$SYS/#", VAL(6));
	e[6] = trie_add(t, "+/#", VAL(7));
	e[7] = trie_add(t, "a//c", VAL(8));
	e[8] = trie_add(t, "a/b", VAL(1)); /* duplicate (filter, value) */
	for (int i = 0; i < 9; i++)
		CHECK(e[i] != NULL);
	CHECK_INT(trie_count(t), 9);
	CHECK(trie_entry_value(e[4]) == VAL(5));

	/* a/b: 1 twice, 2, 3, 4, 5, 7 */
	CHECK_INT(match_sorted(t, "a/b", &c), 7);
	CHECK_INT(c.v[0], 1);
	CHECK_INT(c.v[1], 1);
	CHECK_INT(c.v[2], 2);
	CHECK_INT(c.v[6], 7);
	/* "a/#" and "+/#" match "a" (zero levels), "#" too */
	CHECK_INT(match_sorted(t, "a", &c), 3);
	CHECK_INT(c.v[0], 3);
	CHECK_INT(c.v[1], 4);
	CHECK_INT(c.v[2], 7);
	/* the '$' rule: only "$SYS/#" */
	CHECK_INT(match_sorted(t, "$SYS/b", &c), 1);
	CHECK_INT(c.v[0], 6);
	CHECK_INT(match_sorted(t, "$SYS", &c), 1);
	/* empty levels are levels */
	CHECK_INT(match_sorted(t, "a//c", &c), 4); /* 3, 4, 7, 8 */
	CHECK_INT(c.v[3], 8);
	CHECK_INT(match_sorted(t, "a/", &c), 4);   /* 2, 3, 4, 7 */
	CHECK_INT(match_sorted(t, "/b", &c), 3);   /* 4, 5, 7 */
	CHECK_INT(match_sorted(t, "b/c/d", &c), 2);

	/* removing one duplicate keeps the other */
	trie_remove(t, e[0]);
	CHECK_INT(trie_count(t), 8);
	CHECK_INT(match_sorted(t, "a/b", &c), 6);
	CHECK_INT(c.v[0], 1);
	CHECK_INT(c.v[1], 2);
	trie_remove(t, e[8]);
	CHECK_INT(match_sorted(t, "a/b", &c), 5);
	CHECK_INT(c.v[0], 2);

	/* a filter not stored as a valid filter is refused */
	errno = 0;
	CHECK(trie_add(t, "a/#/b", VAL(9)) == NULL);
	CHECK_INT(errno, EINVAL);
	CHECK_INT(trie_count(t), 7);

	for (int i = 1; i < 8; i++)
		trie_remove(t, e[i]);
	CHECK_INT(trie_count(t), 0);
	CHECK_INT(match_sorted(t, "a/b", &c), 0);
	CHECK_INT(match_sorted(t, "a", &c), 0);
	/* still usable after being emptied */
	e[0] = trie_add(t, "x", VAL(10));
	CHECK_INT(match_sorted(t, "x", &c), 1);
	trie_free(t); /* frees the remaining entry */
	trie_free(NULL);
}

/* ---- random operations against a naive list ------------------------ */

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

static const char *const levels[] = { "", "$SYS", "$x", "a", "b", "c" };
#define N_LEVELS (sizeof(levels) / sizeof(levels[0]))

static void append_level(char *buf, size_t cap, size_t i, const char *lv)
{
	size_t used = strlen(buf);

	snprintf(buf + used, cap - used, "%s%s", i ? "/" : "", lv);
}

/* A random valid topic of 1..5 levels. */
static void rand_topic(char *buf, size_t cap)
{
	do {
		size_t depth = 1 + rng_below(5);

		buf[0] = '\0';
		for (size_t i = 0; i < depth; i++)
			append_level(buf, cap, i, levels[rng_below(N_LEVELS)]);
	} while (!buf[0]);
}

/* A random valid filter of 1..5 levels with '+' and '#'. */
static void rand_filter(char *buf, size_t cap)
{
	do {
		size_t depth = 1 + rng_below(5);

		buf[0] = '\0';
		for (size_t i = 0; i < depth; i++) {
			unsigned r = rng_below(N_LEVELS + 3);

			if (r >= N_LEVELS + 1) {
				if (r == N_LEVELS + 2 || i + 1 == depth) {
					append_level(buf, cap, i, "#");
					break;
				}
				r = N_LEVELS; /* '+' instead */
			}
			append_level(buf, cap, i,
				     r == N_LEVELS ? "+" : levels[r]);
		}
	} while (!buf[0]);
}

#define MAX_LIVE 1500

struct model_entry {
	char filter[40];
	uintptr_t value;
	struct trie_entry *e;
};

static void test_random(void)
{
	struct trie *t = trie_new();
	struct model_entry *live = calloc(MAX_LIVE, sizeof(*live));
	uintptr_t *want = calloc(MAX_LIVE, sizeof(*want));
	struct collect c = { calloc(MAX_LIVE, sizeof(uintptr_t)), 0,
			     MAX_LIVE, 0 };
	size_t nlive = 0;
	unsigned adds = 0, removes = 0, matches = 0, hits = 0, dups = 0;
	unsigned bad = 0, bad_count = 0, empty_sets = 0, big_sets = 0;
	uintptr_t next_value = 1;

	CHECK(t && live && want && c.v);
	if (!t || !live || !want || !c.v)
		goto out;
	rng_state = 7;
	for (unsigned op = 0; op < 100000; op++) {
		/* Phases of 10,000 operations alternately grow and shrink
		 * the set, so it is seen from empty to full. */
		bool grow = (op / 10000) % 2 == 0;
		unsigned r = rng_below(10), add_below = grow ? 5 : 2;

		if (r < add_below && nlive < MAX_LIVE) {
			struct model_entry *m = &live[nlive];

			if (nlive && rng_below(8) == 0) {
				/* the same (filter, value) once more */
				*m = live[rng_below((unsigned)nlive)];
				dups++;
			} else {
				rand_filter(m->filter, sizeof(m->filter));
				m->value = next_value++;
			}
			m->e = trie_add(t, m->filter, VAL(m->value));
			CHECK(m->e != NULL);
			if (!m->e)
				goto out;
			nlive++;
			adds++;
		} else if (r < 7 && nlive) { /* 2 or 5 in 10 */
			size_t i = rng_below((unsigned)nlive);

			trie_remove(t, live[i].e);
			live[i] = live[--nlive];
			removes++;
		} else {
			char topic[40];
			size_t nwant = 0, got;

			rand_topic(topic, sizeof(topic));
			for (size_t i = 0; i < nlive; i++)
				if (topic_matches(live[i].filter, topic))
					want[nwant++] = live[i].value;
			qsort(want, nwant, sizeof(want[0]), cmp_uptr);
			got = match_sorted(t, topic, &c);
			if (c.overflow || got != nwant ||
			    memcmp(c.v, want, nwant * sizeof(want[0])) != 0) {
				if (bad++ < 10)
					fprintf(stderr, "  \"%s\": %zu values, "
						"want %zu\n", topic, got, nwant);
			}
			matches++;
			hits += nwant != 0;
		}
		empty_sets += nlive == 0;
		big_sets += nlive > MAX_LIVE / 2;
		if (trie_count(t) != nlive)
			bad_count++;
	}
	CHECK_INT(bad, 0);
	CHECK_INT(bad_count, 0);
	/* the walk exercised every operation, and matches found values */
	CHECK(adds > 20000 && removes > 20000 && matches > 20000);
	CHECK(hits > matches / 2 && hits < matches);
	CHECK(dups > 1000);
	CHECK(empty_sets > 0 && big_sets > 10000);
	printf("random: %u adds (%u duplicates), %u removes, %u matches "
	       "(%u with values); %u ops on an empty set, %u on one over "
	       "%d entries\n", adds, dups, removes, matches, hits,
	       empty_sets, big_sets, MAX_LIVE / 2);
	while (nlive)
		trie_remove(t, live[--nlive].e);
	CHECK_INT(trie_count(t), 0);
out:
	trie_free(t);
	free(live);
	free(want);
	free(c.v);
}

/* ---- pruning gives the memory back -------------------------------- */

/* Bytes the heap has handed out and not got back (glibc). 0 when the
 * allocator does not report it (e.g. under a sanitizer). */
static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks;
}

static void test_prune(void)
{
	enum { N = 20000 };
	struct trie *t = trie_new();
	struct trie_entry **e = calloc(N, sizeof(*e));
	size_t before, full, after;
	char f[64];

	CHECK(t && e);
	if (!t || !e)
		goto out;
	/* Warm up the allocator's caches with one fill-and-empty round. */
	for (int round = 0; round < 2; round++) {
		before = heap_in_use();
		for (int i = 0; i < N; i++) {
			snprintf(f, sizeof(f), "%s/dev%d/+/sensor%d/#",
				 i % 2 ? "site" : "$site", i % 1000, i);
			e[i] = trie_add(t, f, VAL(i));
			CHECK(e[i] != NULL);
			if (!e[i])
				goto out;
		}
		CHECK_INT(trie_count(t), N);
		full = heap_in_use();
		/* remove in an order unrelated to insertion */
		for (int i = 0; i < N; i++) {
			int k = (int)(((long long)i * 7919) % N);

			trie_remove(t, e[k]);
		}
		CHECK_INT(trie_count(t), 0);
		after = heap_in_use();
		if (before == 0 && full == 0) {
			printf("prune: heap use not reported, skipped\n");
			break;
		}
		/* Without pruning some 40,000 nodes (megabytes) would stay;
		 * allow for what the allocator keeps in its caches. */
		CHECK(full > before + 1000000);
		CHECK(after < before + 65536);
		if (round == 1)
			printf("prune: heap %zu -> %zu -> %zu bytes\n", before,
			       full, after);
	}
out:
	trie_free(t);
	free(e);
}

/* ---- wide and deep --------------------------------------------------- */

static void test_siblings(void)
{
	enum { N = 10000 };
	struct trie *t = trie_new();
	struct trie_entry **e = calloc(2 * N, sizeof(*e));
	uintptr_t buf[8];
	struct collect c = { buf, 0, 8, 0 };
	char s[64];
	unsigned bad = 0;

	CHECK(t && e);
	if (!t || !e)
		goto out;
	for (int i = 0; i < N; i++) {
		snprintf(s, sizeof(s), "room/%d", i);
		e[i] = trie_add(t, s, VAL(i));
		snprintf(s, sizeof(s), "k%d/#", i); /* siblings at the root */
		e[N + i] = trie_add(t, s, VAL(N + i));
		if (!e[i] || !e[N + i])
			bad++;
	}
	CHECK_INT(bad, 0);
	CHECK_INT(trie_count(t), 2 * N);
	for (int i = 0; i < N; i++) {
		snprintf(s, sizeof(s), "room/%d", i);
		if (match_sorted(t, s, &c) != 1 || c.v[0] != (uintptr_t)i)
			bad++;
		snprintf(s, sizeof(s), "k%d/x/y", i);
		if (match_sorted(t, s, &c) != 1 || c.v[0] != (uintptr_t)(N + i))
			bad++;
	}
	CHECK_INT(bad, 0);
	CHECK_INT(match_sorted(t, "room/10000", &c), 0);
	CHECK_INT(match_sorted(t, "room", &c), 0);
	/* remove the odd ones: the tables shrink, the rest still match */
	for (int i = 1; i < N; i += 2) {
		trie_remove(t, e[i]);
		trie_remove(t, e[N + i]);
	}
	CHECK_INT(trie_count(t), N);
	for (int i = 0; i < N; i++) {
		size_t want = i % 2 ? 0 : 1;

		snprintf(s, sizeof(s), "room/%d", i);
		if (match_sorted(t, s, &c) != want ||
		    (want && c.v[0] != (uintptr_t)i))
			bad++;
		snprintf(s, sizeof(s), "k%d", i);
		if (match_sorted(t, s, &c) != want)
			bad++;
	}
	CHECK_INT(bad, 0);
	for (int i = 0; i < N; i += 2) {
		trie_remove(t, e[i]);
		trie_remove(t, e[N + i]);
	}
	CHECK_INT(trie_count(t), 0);
out:
	trie_free(t);
	free(e);
}

/* "lv/lv/.../lv" with n levels into a new string. */
static char *repeat_levels(const char *lv, size_t n)
{
	size_t l = strlen(lv), len = n * (l + 1);
	char *s = malloc(len);

	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		memcpy(s + i * (l + 1), lv, l);
		s[i * (l + 1) + l] = '/';
	}
	s[len - 1] = '\0';
	return s;
}

static void test_deep(void)
{
	enum { LEVELS = 30000 };
	struct trie *t = trie_new();
	char *topic = repeat_levels("a", LEVELS);
	char *lit = repeat_levels("a", LEVELS);
	char *plus = repeat_levels("+", LEVELS);
	char *empty = repeat_levels("", 32768); /* 32767 '/': the most */
	char *empty_plus = repeat_levels("+", 32768);
	uintptr_t buf[16];
	struct collect c = { buf, 0, 16, 0 };
	struct trie_entry *deep[4];

	CHECK(t && topic && lit && plus && empty && empty_plus);
	if (!t || !topic || !lit || !plus || !empty || !empty_plus)
		goto out;
	CHECK_INT(topic_validate(empty_plus, strlen(empty_plus), TOPIC_FILTER,
				 NULL), 0);
	CHECK(trie_add(t, "#", VAL(1)) != NULL);
	CHECK(trie_add(t, "a/#", VAL(2)) != NULL);
	CHECK(trie_add(t, "a/a/+", VAL(3)) != NULL); /* too short */
	CHECK(trie_add(t, "+/+/#", VAL(4)) != NULL);
	/* The topic has more levels than most filters: only '#' ones. */
	CHECK_INT(match_sorted(t, topic, &c), 3);
	CHECK_INT(c.v[2], 4);

	/* Filters as deep as the topic: 30,000 nodes in a chain. */
	deep[0] = trie_add(t, lit, VAL(5));
	deep[1] = trie_add(t, plus, VAL(6));
	deep[2] = trie_add(t, empty_plus, VAL(7));
	CHECK(deep[0] && deep[1] && deep[2]);
	CHECK_INT(match_sorted(t, topic, &c), 5);
	CHECK_INT(c.v[3], 5);
	CHECK_INT(c.v[4], 6);
	/* 32768 empty levels: "#", "+/+/#" and the 32768 '+' */
	CHECK_INT(match_sorted(t, empty, &c), 3);
	CHECK_INT(c.v[2], 7);
	/* one level short of the deep filters */
	topic[2 * LEVELS - 3] = '\0';
	CHECK_INT(match_sorted(t, topic, &c), 3);

	/* Removing prunes the whole chain; freeing a deep trie is safe. */
	trie_remove(t, deep[0]);
	trie_remove(t, deep[1]);
	CHECK_INT(trie_count(t), 5);
	deep[3] = trie_add(t, lit, VAL(8));
	CHECK(deep[3] != NULL);
out:
	trie_free(t); /* with the 30,000- and 32,768-level chains in it */
	free(topic);
	free(lit);
	free(plus);
	free(empty);
	free(empty_plus);
}

int main(void)
{
	test_basic();
	test_random();
	test_prune();
	test_siblings();
	test_deep();
	return check_summary("test_trie");
}
