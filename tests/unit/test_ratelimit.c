/*
 * test_ratelimit.c - the publish token bucket (burst, refill by elapsed
 * time, cap at the burst, no limit when publish_rate = 0) and the table of
 * buckets by client address (one bucket per address, a new address starts
 * full, the table's memory is fixed).
 */
#include <stdlib.h>

#include "check.h"
#include "conf.h"
#include "ratelimit.h"

static struct conf *load(const char *text)
{
	struct conf *c = NULL;

	if (conf_load_string("r.conf", text, strlen(text), stderr, &c) < 0)
		exit(99);
	return c;
}

static int take_all(struct ratelimit *r, const struct conf_server *cs,
		    int64_t now)
{
	int n = 0;

	while (n < 1000 && ratelimit_take(r, cs, now))
		n++;
	return n;
}

static void test_bucket(void)
{
	struct conf *c = load("[server]\npublish_rate = 10/s\npublish_burst = 5\n");
	const struct conf_server *cs = &c->server;
	struct ratelimit r;

	ratelimit_init(&r, cs, 1000);
	CHECK_INT(take_all(&r, cs, 1000), 5);      /* the burst */
	CHECK(!ratelimit_take(&r, cs, 1050));      /* 0.5 token after 50 ms */
	CHECK(ratelimit_take(&r, cs, 1100));       /* 1 token after 100 ms */
	CHECK_INT(take_all(&r, cs, 1400), 3);      /* 300 ms: 3 more */
	CHECK_INT(take_all(&r, cs, 60000), 5);     /* a long pause: only the burst */
	CHECK(!ratelimit_take(&r, cs, 50000));     /* time going back: no refill */
	conf_free(c);

	c = load("[server]\npublish_rate = 0\n");
	ratelimit_init(&r, &c->server, 0);
	CHECK_INT(take_all(&r, &c->server, 0), 1000); /* no limit */
	conf_free(c);

	c = load("[server]\npublish_rate = 60/m\n");   /* burst defaults to 60 */
	ratelimit_init(&r, &c->server, 0);
	CHECK_INT(take_all(&r, &c->server, 0), 60);
	CHECK_INT(take_all(&r, &c->server, 1000), 1);
	conf_free(c);
}

static void test_addresses(void)
{
	struct conf *c = load("[server]\npublish_rate = 1/s\npublish_burst = 2\n");
	const struct conf_server *cs = &c->server;
	struct ratelimit *a = ratelimit_for_address("192.0.2.1", cs, 0);
	struct ratelimit *b;
	char addr[32];

	CHECK_INT(take_all(a, cs, 0), 2);
	/* The same address finds its own, empty bucket again. */
	CHECK(ratelimit_for_address("192.0.2.1", cs, 10) == a);
	CHECK(!ratelimit_take(a, cs, 10));
	b = ratelimit_for_address("192.0.2.2", cs, 10);
	CHECK(b != a);
	CHECK_INT(take_all(b, cs, 10), 2);            /* others are not hurt */
	/* Many addresses: memory stays fixed, every lookup is served. */
	for (int i = 0; i < 3 * RATELIMIT_ADDRS; i++) {
		snprintf(addr, sizeof(addr), "10.%d.%d.%d", i >> 16 & 255,
			 i >> 8 & 255, i & 255);
		CHECK(ratelimit_for_address(addr, cs, 20) != NULL);
	}
	conf_free(c);
}

int main(void)
{
	test_bucket();
	test_addresses();
	return check_summary("test_ratelimit");
}
