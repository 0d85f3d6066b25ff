/*
 * test_backoff.c - plugins/backoff.c: the exponential ceiling, the floor,
 * the bounds of the jitter with an injected random source (all zeros, all
 * ones, the middle), reset, bad bounds, saturation with huge attempt
 * counts, and the spread of the built-in generator.
 */
#include <stdint.h>
#include <stdio.h>

#include "backoff.h"
#include "check.h"

static uint64_t fixed_random(void *arg)
{
	return *(const uint64_t *)arg;
}

static void test_bounds_with_injected_random(void)
{
	struct backoff b;
	uint64_t r = 0;
	const int64_t top[] = { 2000, 4000, 8000, 16000, 30000, 30000, 30000 };

	backoff_init(&b, 1000, 30000);
	backoff_set_random(&b, fixed_random, &r);
	for (int i = 0; i < 7; i++)
		CHECK_INT(backoff_next(&b), 1000);  /* r = 0: the floor */

	backoff_reset(&b);
	r = UINT64_MAX;                             /* all ones: the ceiling */
	for (int i = 0; i < 7; i++)
		CHECK_INT(backoff_next(&b), top[i]);

	backoff_reset(&b);
	r = UINT64_C(1) << 63;                      /* the middle */
	CHECK_INT(backoff_next(&b), 1000 + 1000 / 2);  /* [1000, 2000] */
	CHECK_INT(backoff_next(&b), 1000 + 3001 / 2);  /* [1000, 4000] */

	/* reset starts over from the shortest ceiling */
	backoff_reset(&b);
	r = UINT64_MAX;
	CHECK_INT(backoff_next(&b), 2000);
	CHECK_INT(backoff_next(&b), 4000);

	/* NULL restores the built-in generator: still inside the bounds */
	backoff_set_random(&b, NULL, NULL);
	for (int i = 0; i < 50; i++) {
		int64_t d = backoff_next(&b);

		CHECK(d >= 1000 && d <= 30000);
	}
}

static void test_bad_bounds(void)
{
	struct backoff b;
	uint64_t r = UINT64_MAX;

	backoff_init(&b, 0, 30000);                 /* min <= 0: default */
	CHECK_INT(b.min_ms, BACKOFF_DEFAULT_MIN_MS);
	backoff_init(&b, -5, -5);
	CHECK_INT(b.min_ms, BACKOFF_DEFAULT_MIN_MS);
	CHECK_INT(b.max_ms, BACKOFF_DEFAULT_MIN_MS); /* max < min: max = min */

	backoff_init(&b, 500, 100);                 /* max < min */
	backoff_set_random(&b, fixed_random, &r);
	for (int i = 0; i < 5; i++)
		CHECK_INT(backoff_next(&b), 500);

	/* no overflow with a huge max and many attempts */
	backoff_init(&b, 3, INT64_MAX);
	backoff_set_random(&b, fixed_random, &r);
	for (int i = 0; i < 200; i++) {
		int64_t d = backoff_next(&b);

		CHECK(d >= 3 && d <= INT64_MAX);
		if (i == 0)
			CHECK_INT(d, 6);
		if (i == 10)
			CHECK_INT(d, 3LL << 11);
	}
	CHECK(backoff_next(&b) > (INT64_MAX / 4));
}

static void test_builtin_spread(void)
{
	struct backoff b, c;
	int low = 0, high = 0, differ = 0;
	int64_t prev = -1;

	backoff_init(&b, 1000, 30000);
	for (int i = 0; i < 4; i++)
		(void)backoff_next(&b);             /* reach the 30 s ceiling */
	for (int i = 0; i < 2000; i++) {
		int64_t d = backoff_next(&b);

		CHECK(d >= 1000 && d <= 30000);
		if (d < 15500)
			low++;
		else
			high++;
		if (prev >= 0 && d != prev)
			differ++;
		prev = d;
	}
	/* uniform over [1000, 30000]: each half holds about 1000 of 2000 */
	CHECK(low > 800 && high > 800);
	CHECK(differ > 1900);

	/* two instances are seeded apart (different sequences) */
	backoff_init(&c, 1000, 30000);
	backoff_init(&b, 1000, 30000);
	differ = 0;
	for (int i = 0; i < 20; i++) {
		b.attempt = c.attempt = 10;
		if (backoff_next(&b) != backoff_next(&c))
			differ++;
	}
	CHECK(differ > 0);
}

int main(void)
{
	test_bounds_with_injected_random();
	test_bad_bounds();
	test_builtin_spread();
	return check_summary("test_backoff");
}
