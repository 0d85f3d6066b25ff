/*
 * test_history.c - the resume ring: bounds by count and bytes, O(1)
 * lookup across wrap-around and growth, covers(), limits changed at
 * run time, and a sequence gap.
 */
#include <stdlib.h>

#include "check.h"
#include "history.h"
#include "msg.h"

static struct msg *mk(uint64_t seq, size_t payload)
{
	static char buf[4096];

	memset(buf, 'p', sizeof(buf));
	return msg_new("t/x", 3, buf, payload, 0, false, 0, seq);
}

static void push(struct history *h, uint64_t seq, size_t payload)
{
	struct msg *m = mk(seq, payload);

	CHECK_INT(history_push(h, m), 0);
	msg_unref(m);
}

static void test_count_bound(void)
{
	struct history *h = history_new(100, 1 << 30);
	uint64_t s;

	CHECK_INT(history_first(h), 1);
	CHECK_INT(history_last(h), 0);
	CHECK(history_covers(h, 0));
	CHECK(!history_covers(h, 5));
	for (s = 1; s <= 1000; s++) {
		push(h, s, 10);
		CHECK_INT(history_last(h), s);
		CHECK_INT(history_count(h), s < 100 ? s : 100);
	}
	CHECK_INT(history_first(h), 901);
	for (s = 901; s <= 1000; s++) {
		struct msg *m = history_get(h, s);

		CHECK(m && m->seq == s);
	}
	CHECK(history_get(h, 900) == NULL);
	CHECK(history_get(h, 1001) == NULL);
	CHECK(history_get(h, 0) == NULL);
	CHECK(history_covers(h, 900));   /* has seen 900: 901.. are held */
	CHECK(!history_covers(h, 899));  /* missed 900 */
	CHECK(history_covers(h, 1000));
	CHECK(!history_covers(h, 1001)); /* from the future */

	/* Shrinking evicts the oldest. */
	history_set_limits(h, 10, 1 << 30);
	CHECK_INT(history_count(h), 10);
	CHECK_INT(history_first(h), 991);
	/* Growing again keeps them. */
	history_set_limits(h, 500, 1 << 30);
	push(h, 1001, 10);
	CHECK_INT(history_count(h), 11);
	CHECK(history_get(h, 991) && history_get(h, 1001));
	history_free(h);
}

static void test_byte_bound(void)
{
	struct msg *probe = mk(1, 1000);
	size_t cost = msg_cost(probe);
	struct history *h = history_new(1000, 5 * cost);
	uint64_t s;

	msg_unref(probe);
	for (s = 1; s <= 20; s++)
		push(h, s, 1000);
	CHECK_INT(history_count(h), 5);
	CHECK(history_bytes(h) <= 5 * cost);
	CHECK_INT(history_first(h), 16);
	/* A message larger than the byte bound is not kept, and leaves a gap
	 * that resumes from before it cannot cross. */
	history_set_limits(h, 1000, cost / 2);
	CHECK_INT(history_count(h), 0);
	push(h, 21, 1000);
	CHECK_INT(history_count(h), 0);
	CHECK_INT(history_first(h), 22);
	CHECK(!history_covers(h, 20));
	CHECK(history_covers(h, 21));
	history_free(h);
}

static void test_gap_and_zero(void)
{
	struct history *h = history_new(10, 1 << 20);

	push(h, 5, 1);
	push(h, 6, 1);
	push(h, 9, 1); /* gap: start over */
	CHECK_INT(history_count(h), 1);
	CHECK_INT(history_first(h), 9);
	CHECK(!history_covers(h, 6));
	history_free(h);

	h = history_new(0, 1 << 20); /* history disabled */
	push(h, 1, 1);
	push(h, 2, 1);
	CHECK_INT(history_count(h), 0);
	CHECK(history_covers(h, 2));
	CHECK(!history_covers(h, 1));
	history_free(h);
}

/* References: the ring holds exactly one per message. */
static void test_refs(void)
{
	struct history *h = history_new(2, 1 << 20);
	struct msg *a = mk(1, 1), *b = mk(2, 1), *c = mk(3, 1);

	history_push(h, a);
	history_push(h, b);
	CHECK_INT(a->refs, 2);
	history_push(h, c);
	CHECK_INT(a->refs, 1); /* evicted */
	CHECK_INT(c->refs, 2);
	history_free(h);
	CHECK_INT(b->refs, 1);
	msg_unref(a);
	msg_unref(b);
	msg_unref(c);
}

int main(void)
{
	test_count_bound();
	test_byte_bound();
	test_gap_and_zero();
	test_refs();
	return check_summary("test_history");
}
