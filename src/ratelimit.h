/*
 * ratelimit.h - the publish rate limit: a token bucket per client
 * (publish_rate tokens per publish_rate_ms, at most publish_burst), and a
 * bounded table of buckets by client address for POST /publish, which has
 * no session. Loop thread only.
 */
#ifndef MQGATE_RATELIMIT_H
#define MQGATE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "netaddr.h"

struct conf_server;

struct ratelimit {
	double tokens;
	int64_t ms;          /* when tokens was last brought up to date */
};

/* A full bucket at `now`. */
void ratelimit_init(struct ratelimit *r, const struct conf_server *cs,
		    int64_t now);
/* Takes one token; false when the bucket is empty. No limit configured
 * (publish_rate = 0) always succeeds. */
bool ratelimit_take(struct ratelimit *r, const struct conf_server *cs,
		    int64_t now);

/* The bucket of a client address (text), from a fixed table of
 * RATELIMIT_ADDRS slots: an address seen for the first time, or whose slot
 * another address took since, starts with a full bucket. Never NULL. */
#define RATELIMIT_ADDRS 4096
struct ratelimit *ratelimit_for_address(const char *addr,
					const struct conf_server *cs,
					int64_t now);

#endif
