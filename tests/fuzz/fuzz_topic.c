/*
 * fuzz_topic.c - libFuzzer target for topic.c (and the trie's matching).
 * The input is validated as a topic name and as a filter; when valid, the
 * relations must hold their invariants (a filter is a subset of itself,
 * a name matches itself, the '$' rule against "#" and "+/+/..."). The
 * input split at its first '\n' gives two strings a and b, whose
 * matching, subset and overlap answers must agree with each other and
 * with a trie holding b. Any violation aborts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"
#include "trie.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                    \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__,   \
				#cond);                                      \
			abort();                                             \
		}                                                            \
	} while (0)

/* Validates s[0..len) both ways; returns (valid name) | (valid filter)<<1
 * and checks what the two answers imply about each other. */
static unsigned fuzz_validate(const char *s, size_t len)
{
	const char *why_n = NULL, *why_f = NULL;
	bool name = topic_validate(s, len, TOPIC_NAME, &why_n) == 0;
	bool filter = topic_validate(s, len, TOPIC_FILTER, &why_f) == 0;

	FUZZ_ASSERT(name || why_n);
	FUZZ_ASSERT(filter || why_f);
	FUZZ_ASSERT(!name || filter); /* a name is a filter */
	if (len == 0 || len > TOPIC_MAX_LEN || memchr(s, 0, len))
		FUZZ_ASSERT(!filter);
	if (filter && !name) /* only wildcards tell them apart */
		FUZZ_ASSERT(memchr(s, '+', len) || memchr(s, '#', len));
	return (unsigned)name | (unsigned)filter << 1;
}

/* "+/+/.../+" with as many levels as s has, in a new string. */
static char *fuzz_all_plus(const char *s)
{
	size_t levels = 1, i;
	char *p;

	for (const char *c = s; *c; c++)
		levels += *c == '/';
	p = malloc(2 * levels);
	if (!p)
		return NULL;
	for (i = 0; i < levels; i++) {
		p[2 * i] = '+';
		p[2 * i + 1] = '/';
	}
	p[2 * levels - 1] = '\0';
	return p;
}

static void fuzz_count(void *value, void *arg)
{
	(void)value;
	++*(unsigned *)arg;
}

/* Invariants of one string, valid as a filter and maybe as a name. */
static void fuzz_one(const char *x, bool name)
{
	bool dollar = x[0] == '$';

	FUZZ_ASSERT(topic_filter_subset(x, x));
	FUZZ_ASSERT(topic_filters_overlap(x, x));
	FUZZ_ASSERT(topic_filter_subset(x, "#") == !dollar);
	FUZZ_ASSERT(topic_filters_overlap(x, "#") == !dollar);
	FUZZ_ASSERT(topic_filter_subset(x, "+/#") == !dollar);
	if (name) {
		char *plus = fuzz_all_plus(x);

		FUZZ_ASSERT(topic_matches(x, x));
		FUZZ_ASSERT(topic_matches("#", x) == !dollar);
		if (plus) {
			FUZZ_ASSERT(topic_matches(plus, x) == !dollar);
			FUZZ_ASSERT(topic_filter_subset(x, plus) == !dollar);
			FUZZ_ASSERT(topic_filters_overlap(plus, x) == !dollar);
			free(plus);
		}
	}
}

/* Invariants of a pair of valid filters; a_name: a is a topic name. */
static void fuzz_pair(const char *a, bool a_name, const char *b)
{
	bool sub = topic_filter_subset(a, b);
	bool ovl = topic_filters_overlap(a, b);

	FUZZ_ASSERT(topic_filters_overlap(b, a) == ovl);
	FUZZ_ASSERT(!sub || ovl); /* every filter matches some topic */
	if (sub && topic_filter_subset(b, a))
		FUZZ_ASSERT(topic_filters_overlap(a, "#") ==
			    topic_filters_overlap(b, "#"));
	if (a_name) {
		/* a is the one topic it matches */
		bool m = topic_matches(b, a);
		struct trie *t = trie_new();

		FUZZ_ASSERT(sub == m);
		FUZZ_ASSERT(ovl == m);
		if (t) {
			unsigned n = 0;

			if (trie_add(t, b, NULL) && trie_add(t, b, NULL)) {
				trie_match(t, a, fuzz_count, &n);
				FUZZ_ASSERT(n == (m ? 2u : 0u));
			}
			trie_free(t);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *x = malloc(size + 1);
	const char *nl;
	unsigned kx;

	if (!x)
		return 0;
	memcpy(x, data, size);
	x[size] = '\0';
	kx = fuzz_validate(x, size);
	if (kx & 2)
		fuzz_one(x, kx & 1);

	nl = memchr(x, '\n', size);
	if (nl) {
		size_t alen = (size_t)(nl - x), blen = size - alen - 1;
		const char *b = nl + 1;
		unsigned ka, kb;

		x[alen] = '\0';
		ka = fuzz_validate(x, alen);
		kb = fuzz_validate(b, blen);
		if (ka & 2)
			fuzz_one(x, ka & 1);
		if ((ka & 2) && (kb & 2)) {
			fuzz_pair(x, ka & 1, b);
			fuzz_pair(b, kb & 1, x);
		}
	}
	free(x);
	return 0;
}
