/*
 * ratelimit.c - token buckets for publishes (see ratelimit.h). The
 * address table is direct-mapped: bounded memory whatever the number of
 * clients, at the price that a collision hands a client a fresh bucket.
 */
#include "ratelimit.h"

#include <stdio.h>
#include <string.h>

#include "conf.h"

struct ratelimit_slot {
	char addr[NETADDR_TEXT_MAX];
	struct ratelimit r;
};

static struct ratelimit_slot ratelimit_table[RATELIMIT_ADDRS];

void ratelimit_init(struct ratelimit *r, const struct conf_server *cs,
		    int64_t now)
{
	r->tokens = (double)cs->publish_burst;
	r->ms = now;
}

bool ratelimit_take(struct ratelimit *r, const struct conf_server *cs,
		    int64_t now)
{
	if (cs->publish_rate == 0 || cs->publish_rate_ms <= 0)
		return true;
	if (now > r->ms) {
		r->tokens += (double)(now - r->ms) * (double)cs->publish_rate /
			     (double)cs->publish_rate_ms;
		if (r->tokens > (double)cs->publish_burst)
			r->tokens = (double)cs->publish_burst;
		r->ms = now;
	}
	if (r->tokens < 1.0)
		return false;
	r->tokens -= 1.0;
	return true;
}

struct ratelimit *ratelimit_for_address(const char *addr,
					const struct conf_server *cs,
					int64_t now)
{
	uint32_t h = 2166136261u;
	struct ratelimit_slot *slot;

	for (const char *p = addr; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	slot = &ratelimit_table[h % RATELIMIT_ADDRS];
	if (strcmp(slot->addr, addr) != 0) {
		snprintf(slot->addr, sizeof(slot->addr), "%s", addr);
		ratelimit_init(&slot->r, cs, now);
	}
	return &slot->r;
}
