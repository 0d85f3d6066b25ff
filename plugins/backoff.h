/*
 * backoff.h - reconnect delays for backend plugins: exponential backoff
 * with full jitter above a floor. A struct backoff is a plain value owned
 * by its user (one thread; no locking, no allocation).
 *
 * The n-th delay after a reset (n = 0, 1, ...) is drawn uniformly from
 * [min, min(max, min * 2^(n+1))]: 1-2 s, 1-4 s, 1-8 s, 1-16 s, then 1-30 s
 * with the defaults. The floor keeps a flapping broker from being hammered;
 * the jitter spreads the reconnects of many gateways after a broker
 * restart. The random source can be replaced for tests.
 */
#ifndef MQGATE_PLUGIN_BACKOFF_H
#define MQGATE_PLUGIN_BACKOFF_H

#include <stdint.h>

#define BACKOFF_DEFAULT_MIN_MS 1000
#define BACKOFF_DEFAULT_MAX_MS 30000

/* Returns 64 random bits; arg is what backoff_set_random() was given. */
typedef uint64_t (*backoff_random_fn)(void *arg);

struct backoff {
	int64_t min_ms, max_ms;
	unsigned attempt;          /* delays handed out since the last reset */
	backoff_random_fn random;  /* NULL: the built-in generator */
	void *random_arg;
	uint64_t seed;             /* built-in generator state */
};

/* Sets b up with the given bounds in milliseconds; min <= 0 means the
 * default (1 s), max < min means max = min. Seeds the built-in generator
 * from the kernel (the clock when that fails). */
void backoff_init(struct backoff *b, int64_t min_ms, int64_t max_ms);

/* Replaces the random source; fn NULL restores the built-in one. */
void backoff_set_random(struct backoff *b, backoff_random_fn fn, void *arg);

/* The next delay in milliseconds, in [min_ms, max_ms]. */
int64_t backoff_next(struct backoff *b);

/* Starts over from the shortest delays (after a successful connect). */
void backoff_reset(struct backoff *b);

#endif
