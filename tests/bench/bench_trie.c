/*
 * bench_trie.c - what trie_match costs with 10, 1,000 and 100,000
 * distinct filters stored, next to a linear scan with topic_matches()
 * (what matching would cost without the index). Prints ns per match; it
 * asserts nothing about time.
 *
 * Filters, for i in 0..N-1 (s = i % 100):
 *   i % 10 == 0       "site/<i>/#"
 *   i % 10 in {1, 2}  "site/<s>/+/<i>/temp"
 *   otherwise         "site/<s>/dev/<i>/temp"
 * Topics are "site/<r % 100>/dev/<r>/temp" for random r < N: each one
 * matches exactly one filter (a literal, a '+' or a '#' one), and the walk
 * goes through nodes with up to N/10 siblings (under "site") and N/100
 * (under "site/<s>/dev" and "site/<s>/+").
 *
 * Build and run (not part of `make check`):
 *   gcc -O2 -std=gnu11 -D_GNU_SOURCE -Iinclude -Isrc \
 *       tests/bench/bench_trie.c src/trie.c src/topic.c -o bench_trie
 *   ./bench_trie
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "topic.h"
#include "trie.h"

#define NTOPICS 4096

static uint64_t rng_state = 42;

static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void count_visit(void *value, void *arg)
{
	(void)value;
	++*(uint64_t *)arg;
}

static int bench(unsigned n)
{
	struct trie *t = trie_new();
	char (*filters)[48] = calloc(n, sizeof(*filters));
	char (*topics)[48] = calloc(NTOPICS, sizeof(*topics));
	struct trie_entry **e = calloc(n, sizeof(*e));
	uint64_t hits = 0, scan_hits = 0, iters = 0, scan_iters = 0, total = 0;
	double t0, add_ns, match_ns, scan_ns, remove_ns;
	int rc = -1;

	if (!t || !filters || !topics || !e)
		goto out;
	for (unsigned i = 0; i < n; i++) {
		unsigned s = i % 100;

		if (i % 10 == 0)
			snprintf(filters[i], sizeof(filters[i]), "site/%u/#", i);
		else if (i % 10 <= 2)
			snprintf(filters[i], sizeof(filters[i]),
				 "site/%u/+/%u/temp", s, i);
		else
			snprintf(filters[i], sizeof(filters[i]),
				 "site/%u/dev/%u/temp", s, i);
	}
	for (unsigned i = 0; i < NTOPICS; i++) {
		unsigned r = (unsigned)(rng_next() % n);

		snprintf(topics[i], sizeof(topics[i]), "site/%u/dev/%u/temp",
			 r % 100, r);
	}

	t0 = now_ns();
	for (unsigned i = 0; i < n; i++) {
		e[i] = trie_add(t, filters[i], filters[i]);
		if (!e[i])
			goto out;
	}
	add_ns = (now_ns() - t0) / n;

	/* Sanity, untimed: the trie finds what a scan finds. */
	for (unsigned i = 0; i < 256; i++) {
		uint64_t a = 0, b = 0;

		trie_match(t, topics[i], count_visit, &a);
		for (unsigned j = 0; j < n; j++)
			b += topic_matches(filters[j], topics[i]);
		if (a != b) {
			fprintf(stderr, "%s: trie %llu, scan %llu values\n",
				topics[i], (unsigned long long)a,
				(unsigned long long)b);
			goto out;
		}
	}

	/* Best of 5 rounds of at least 200,000 matches and 0.1 s each: the
	 * figure least disturbed by other work on the machine. */
	match_ns = 0;
	for (int round = 0; round < 5; round++) {
		double ns;

		iters = 0;
		t0 = now_ns();
		do {
			for (unsigned i = 0; i < NTOPICS; i++)
				trie_match(t, topics[i], count_visit, &hits);
			iters += NTOPICS;
		} while (iters < 200000 || now_ns() - t0 < 1e8);
		ns = (now_ns() - t0) / (double)iters;
		if (round == 0 || ns < match_ns)
			match_ns = ns;
		total += iters;
	}

	/* The linear scan, over fewer topics when n is large. */
	t0 = now_ns();
	do {
		for (unsigned i = 0; i < NTOPICS; i++) {
			for (unsigned j = 0; j < n; j++)
				scan_hits += topic_matches(filters[j],
							   topics[i]);
			scan_iters++;
			if (now_ns() - t0 > 3e8 && scan_iters >= 100)
				break;
		}
	} while (now_ns() - t0 < 3e8);
	scan_ns = (now_ns() - t0) / (double)scan_iters;

	t0 = now_ns();
	for (unsigned i = 0; i < n; i++)
		trie_remove(t, e[(unsigned)(((uint64_t)i * 7919) % n)]);
	remove_ns = (now_ns() - t0) / n;

	printf("%7u filters: match %7.1f ns (%.2f values per topic), "
	       "linear scan %11.1f ns (%.2f); add %6.1f ns, remove %6.1f ns\n",
	       n, match_ns, (double)hits / (double)total, scan_ns,
	       (double)scan_hits / (double)scan_iters, add_ns, remove_ns);
	rc = trie_count(t) == 0 ? 0 : -1;
out:
	trie_free(t);
	free(filters);
	free(topics);
	free(e);
	return rc;
}

int main(void)
{
	static const unsigned sizes[] = { 10, 1000, 100000 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		if (bench(sizes[i]) < 0) {
			fprintf(stderr, "bench_trie: failed\n");
			return 1;
		}
	return 0;
}
