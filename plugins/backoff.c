/*
 * backoff.c - exponential backoff with full jitter above a floor, for the
 * reconnect loops of backend plugins. See backoff.h. Owns nothing.
 */
#include "backoff.h"

#include <stdint.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* splitmix64: small, fast and good enough to spread reconnect times. */
static uint64_t backoff_builtin_random(void *arg)
{
	struct backoff *b = arg;
	uint64_t z = (b->seed += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint64_t backoff_seed(const struct backoff *b)
{
	uint64_t seed = 0;
	struct timespec ts;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
		return seed;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
	       ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)b;
}

void backoff_init(struct backoff *b, int64_t min_ms, int64_t max_ms)
{
	b->min_ms = min_ms > 0 ? min_ms : BACKOFF_DEFAULT_MIN_MS;
	b->max_ms = max_ms >= b->min_ms ? max_ms : b->min_ms;
	b->attempt = 0;
	b->random = NULL;
	b->random_arg = NULL;
	b->seed = backoff_seed(b);
}

void backoff_set_random(struct backoff *b, backoff_random_fn fn, void *arg)
{
	b->random = fn;
	b->random_arg = arg;
}

/* min * 2^(attempt+1), saturating at max. */
static int64_t backoff_ceiling(const struct backoff *b)
{
	int64_t ceil = b->min_ms;

	for (unsigned i = 0; i <= b->attempt; i++) {
		if (ceil > b->max_ms / 2)
			return b->max_ms;
		ceil *= 2;
	}
	return ceil < b->max_ms ? ceil : b->max_ms;
}

/* The high 64 bits of a * b, without a 128-bit type. */
static uint64_t backoff_mulhi(uint64_t a, uint64_t b)
{
	uint64_t alo = (uint32_t)a, ahi = a >> 32, blo = (uint32_t)b, bhi = b >> 32;
	uint64_t lo = alo * blo, m1 = alo * bhi, m2 = ahi * blo, hi = ahi * bhi;
	uint64_t mid = (lo >> 32) + (uint32_t)m1 + (uint32_t)m2;

	return hi + (m1 >> 32) + (m2 >> 32) + (mid >> 32);
}

int64_t backoff_next(struct backoff *b)
{
	uint64_t span = (uint64_t)(backoff_ceiling(b) - b->min_ms);
	uint64_t r;

	r = b->random ? b->random(b->random_arg) : backoff_builtin_random(b);
	if (b->attempt < 64)
		b->attempt++;
	/* r scaled to [0, span]: 0 gives min, all ones gives the ceiling,
	 * without modulo bias. */
	return b->min_ms + (int64_t)backoff_mulhi(r, span + 1);
}

void backoff_reset(struct backoff *b)
{
	b->attempt = 0;
}
