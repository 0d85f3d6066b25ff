/*
 * test_lvc.c - the last-value cache: newest message per topic, clearing
 * by an empty retained message, LRU eviction by topic count and bytes,
 * and lvc_match compared with topic_matches() over random topics and
 * filters (the '$' rule included).
 */
#include <stdlib.h>

#include "check.h"
#include "lvc.h"
#include "msg.h"
#include "topic.h"

static struct msg *mk(const char *topic, const char *payload, bool retain,
		      uint64_t seq)
{
	return msg_new(topic, strlen(topic), payload, strlen(payload), 0,
		       retain, 0, seq);
}

static void put(struct lvc *c, const char *topic, const char *payload,
		bool retain, uint64_t seq)
{
	struct msg *m = mk(topic, payload, retain, seq);

	CHECK_INT(lvc_put(c, m), 0);
	msg_unref(m);
}

struct seen {
	uint64_t seqs[64];
	size_t n;
};

static void collect(struct msg *m, void *arg)
{
	struct seen *s = arg;

	if (s->n < 64)
		s->seqs[s->n] = m->seq;
	s->n++;
}

static bool seen_has(const struct seen *s, uint64_t seq)
{
	for (size_t i = 0; i < s->n && i < 64; i++)
		if (s->seqs[i] == seq)
			return true;
	return false;
}

static void test_basics(void)
{
	struct lvc *c = lvc_new(100, 1 << 20);
	struct seen s = { .n = 0 };

	put(c, "a/b", "1", false, 1);
	put(c, "a/b", "2", true, 2);       /* replaces */
	put(c, "a/c", "3", false, 3);
	put(c, "a", "4", false, 4);
	put(c, "$SYS/x", "5", true, 5);
	put(c, "a//b", "6", false, 6);     /* empty level */
	CHECK_INT(lvc_count(c), 5);
	lvc_match(c, "a/b", collect, &s);
	CHECK(s.n == 1 && s.seqs[0] == 2);
	s.n = 0;
	lvc_match(c, "a/#", collect, &s);  /* '#' matches the parent too */
	CHECK_INT(s.n, 4);
	CHECK(seen_has(&s, 2) && seen_has(&s, 3) && seen_has(&s, 4) && seen_has(&s, 6));
	s.n = 0;
	lvc_match(c, "#", collect, &s);
	CHECK_INT(s.n, 4);                  /* not $SYS/x */
	CHECK(!seen_has(&s, 5));
	s.n = 0;
	lvc_match(c, "+/x", collect, &s);
	CHECK_INT(s.n, 0);
	lvc_match(c, "$SYS/#", collect, &s);
	CHECK(s.n == 1 && s.seqs[0] == 5);
	s.n = 0;
	lvc_match(c, "a/+/b", collect, &s);
	CHECK(s.n == 1 && s.seqs[0] == 6);

	/* An empty retained message clears; an empty plain one is a value. */
	put(c, "a/b", "", true, 7);
	CHECK_INT(lvc_count(c), 4);
	s.n = 0;
	lvc_match(c, "a/b", collect, &s);
	CHECK_INT(s.n, 0);
	put(c, "a/c", "", false, 8);
	s.n = 0;
	lvc_match(c, "a/c", collect, &s);
	CHECK(s.n == 1 && s.seqs[0] == 8);
	put(c, "never/seen", "", true, 9); /* clearing nothing */
	CHECK_INT(lvc_count(c), 4);
	lvc_free(c);
}

static void test_eviction(void)
{
	struct lvc *c = lvc_new(3, 1 << 20);
	struct seen s = { .n = 0 };
	struct msg *probe;
	size_t cost;

	put(c, "t/1", "x", false, 1);
	put(c, "t/2", "x", false, 2);
	put(c, "t/3", "x", false, 3);
	put(c, "t/1", "y", false, 4);  /* t/1 is now the newest */
	put(c, "t/4", "x", false, 5);  /* evicts t/2 */
	CHECK_INT(lvc_count(c), 3);
	lvc_match(c, "t/#", collect, &s);
	CHECK_INT(s.n, 3);
	CHECK(seen_has(&s, 4) && seen_has(&s, 3) && seen_has(&s, 5));
	CHECK(!seen_has(&s, 2));
	lvc_set_limits(c, 1, 1 << 20);
	CHECK_INT(lvc_count(c), 1);
	s.n = 0;
	lvc_match(c, "#", collect, &s);
	CHECK(s.n == 1 && s.seqs[0] == 5);
	lvc_free(c);

	probe = mk("b/1", "x", false, 1);
	cost = msg_cost(probe);
	msg_unref(probe);
	c = lvc_new(1000, 2 * cost);
	put(c, "b/1", "x", false, 1);
	put(c, "b/2", "x", false, 2);
	put(c, "b/3", "x", false, 3);
	CHECK_INT(lvc_count(c), 2);
	CHECK(lvc_bytes(c) <= 2 * cost);
	lvc_set_limits(c, 0, 0);
	CHECK_INT(lvc_count(c), 0);
	CHECK_INT(lvc_bytes(c), 0);
	put(c, "b/4", "x", false, 4); /* cache disabled: not kept */
	CHECK_INT(lvc_count(c), 0);
	lvc_free(c);
}

/* Random topics and filters over a small alphabet against the reference
 * matcher. */
static const char *levels[] = { "a", "b", "", "$s", "c" };

static void rand_topic(unsigned *seed, char *out, bool filter)
{
	int depth, i;

	*seed = *seed * 1103515245u + 12345u;
	depth = 1 + (int)((*seed >> 16) % 4);
	out[0] = 0;
	for (i = 0; i < depth; i++) {
		const char *l;

		*seed = *seed * 1103515245u + 12345u;
		l = levels[(*seed >> 16) % 5];
		if (filter) {
			unsigned r = (*seed >> 8) % 7;

			if (r == 0)
				l = "+";
			else if (r == 1) {
				if (i)
					strcat(out, "/");
				strcat(out, "#");
				return;
			}
		}
		if (i)
			strcat(out, "/");
		strcat(out, l);
	}
}

static void test_random(void)
{
	enum { NT = 200 };
	struct lvc *c = lvc_new(100000, 1 << 30);
	char topics[NT][32];
	unsigned seed = 42;
	int i, f;

	for (i = 0; i < NT; i++) {
		rand_topic(&seed, topics[i], false);
		put(c, topics[i], "v", false, (uint64_t)i + 1);
	}
	for (f = 0; f < 3000; f++) {
		char filter[32];
		struct seen s = { .n = 0 };
		size_t want = 0;
		bool missing = false;

		rand_topic(&seed, filter, true);
		lvc_match(c, filter, collect, &s);
		for (i = 0; i < NT; i++) {
			bool dup = false;

			for (int k = 0; k < i; k++)
				dup |= strcmp(topics[k], topics[i]) == 0;
			if (dup || !topic_matches(filter, topics[i]))
				continue;
			want++;
			/* The newest message of that topic is the last put. */
			{
				int last = i;

				for (int k = i + 1; k < NT; k++)
					if (strcmp(topics[k], topics[i]) == 0)
						last = k;
				missing |= s.n <= 64 && !seen_has(&s, (uint64_t)last + 1);
			}
		}
		check_run++;
		if (s.n != want || missing) {
			check_failed++;
			fprintf(stderr, "%s:%d: filter '%s': %zu visited, want %zu%s\n",
				__FILE__, __LINE__, filter, s.n, want,
				missing ? " (wrong messages)" : "");
		}
	}
	lvc_free(c);
}

/* A very deep topic and a deep '+' filter walk without recursion. */
static void test_deep(void)
{
	struct lvc *c = lvc_new(10, 1 << 30);
	size_t n = 30000, i;
	char *t = malloc(2 * n + 1), *f = malloc(2 * n + 1);
	struct seen s = { .n = 0 };

	for (i = 0; i < n; i++) {
		t[2 * i] = 'x';
		t[2 * i + 1] = '/';
		f[2 * i] = '+';
		f[2 * i + 1] = '/';
	}
	t[2 * n - 1] = 0;
	f[2 * n - 1] = 0;
	put(c, t, "deep", false, 1);
	lvc_match(c, f, collect, &s);
	CHECK_INT(s.n, 1);
	s.n = 0;
	lvc_match(c, "x/#", collect, &s);
	CHECK_INT(s.n, 1);
	lvc_free(c);
	free(t);
	free(f);
}

int main(void)
{
	test_basics();
	test_eviction();
	test_random();
	test_deep();
	return check_summary("test_lvc");
}
