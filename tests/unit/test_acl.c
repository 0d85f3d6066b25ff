/*
 * test_acl.c - the ACL rules of CONFIG.md, table-driven: a subscribe filter
 * is granted only when it is a subset of an allowed filter, a publish
 * topic only when an allowed filter matches it; '$' topics only when
 * allowed explicitly. Over 200 cases, each checked with a one-filter ACL
 * and again inside a list of unrelated filters.
 */
#include <string.h>

#include "acl.h"
#include "check.h"
#include "topic.h"

struct acl_case {
	const char *allowed;
	const char *asked;
	int want;
};

static const struct acl_case acl_sub_cases[] = {
	{ "#", "a", 1 },
	{ "#", "a/b", 1 },
	{ "#", "#", 1 },
	{ "#", "+", 1 },
	{ "#", "a/#", 1 },
	{ "#", "+/+", 1 },
	{ "#", "$SYS/x", 0 },
	{ "#", "$SYS/#", 0 },
	{ "#", "/a", 1 },
	{ "#", "a//b", 1 },
	{ "#", "a/", 1 },
	{ "sensors/#", "sensors/#", 1 },
	{ "sensors/#", "sensors", 1 },
	{ "sensors/#", "sensors/a", 1 },
	{ "sensors/#", "sensors/+/temp", 1 },
	{ "sensors/#", "sensors/+", 1 },
	{ "sensors/#", "sensors/a/b/c", 1 },
	{ "sensors/#", "#", 0 },
	{ "sensors/#", "+/#", 0 },
	{ "sensors/#", "+", 0 },
	{ "sensors/#", "sensor/#", 0 },
	{ "sensors/#", "sensorsx/#", 0 },
	{ "sensors/#", "other", 0 },
	{ "sensors/#", "+/temp", 0 },
	{ "sensors/#", "sensors//x", 1 },
	{ "sensors/#", "sensors/", 1 },
	{ "sensors/+/temp", "sensors/a/temp", 1 },
	{ "sensors/+/temp", "sensors/+/temp", 1 },
	{ "sensors/+/temp", "sensors/#", 0 },
	{ "sensors/+/temp", "sensors/+/#", 0 },
	{ "sensors/+/temp", "sensors/+/+", 0 },
	{ "sensors/+/temp", "sensors/a/hum", 0 },
	{ "sensors/+/temp", "sensors/a/temp/x", 0 },
	{ "sensors/+/temp", "sensors/temp", 0 },
	{ "sensors/+/temp", "sensors//temp", 1 },
	{ "sensors/+/temp", "+/a/temp", 0 },
	{ "sensors/+/temp", "sensors/a/+", 0 },
	{ "a/+", "a/b", 1 },
	{ "a/+", "a/+", 1 },
	{ "a/+", "a", 0 },
	{ "a/+", "a/#", 0 },
	{ "a/+", "a/b/c", 0 },
	{ "a/+", "a/", 1 },
	{ "+", "a", 1 },
	{ "+", "+", 1 },
	{ "+", "#", 0 },
	{ "+", "a/b", 0 },
	{ "+", "$SYS", 0 },
	{ "+/+", "a/b", 1 },
	{ "+/+", "+/b", 1 },
	{ "+/+", "a/+", 1 },
	{ "+/+", "+/+", 1 },
	{ "+/+", "a", 0 },
	{ "+/+", "$SYS/x", 0 },
	{ "+/#", "a", 1 },
	{ "+/#", "a/b", 1 },
	{ "+/#", "#", 1 },
	{ "+/#", "+", 1 },
	{ "+/#", "$SYS/x", 0 },
	{ "+/#", "$SYS", 0 },
	{ "$SYS/#", "$SYS/x", 1 },
	{ "$SYS/#", "$SYS/#", 1 },
	{ "$SYS/#", "$SYS", 1 },
	{ "$SYS/#", "#", 0 },
	{ "$SYS/#", "+/x", 0 },
	{ "$SYS/+", "$SYS/x", 1 },
	{ "$SYS/+", "$SYS/#", 0 },
	{ "$SYS/broker/uptime", "$SYS/broker/uptime", 1 },
	{ "$SYS/broker/uptime", "$SYS/broker/+", 0 },
	{ "$SYS/broker/uptime", "+/broker/uptime", 0 },
	{ "a/b/c", "a/b/c", 1 },
	{ "a/b/c", "a/b", 0 },
	{ "a/b/c", "a/b/c/d", 0 },
	{ "a/b/c", "a/+/c", 0 },
	{ "a/b/c", "a/b/#", 0 },
	{ "a/#", "a", 1 },
	{ "a/#", "a/#", 1 },
	{ "a/#", "a/+", 1 },
	{ "a/#", "a/+/+/+", 1 },
	{ "a/#", "b/#", 0 },
	{ "a/#", "+", 0 },
	{ "a/+/c/#", "a/b/c", 1 },
	{ "a/+/c/#", "a/b/c/d", 1 },
	{ "a/+/c/#", "a/+/c/#", 1 },
	{ "a/+/c/#", "a/#", 0 },
	{ "a/+/c/#", "a/b/d", 0 },
	{ "a/+/c/#", "a/+/+/#", 0 },
	{ "a/+/c/#", "a/b", 0 },
	{ "/#", "/a", 1 },
	{ "/#", "/", 1 },
	{ "/#", "a", 0 },
	{ "/#", "+/a", 0 },
	{ "/+", "/a", 1 },
	{ "/+", "/", 1 },
	{ "/+", "a/b", 0 },
	{ "a//b", "a//b", 1 },
	{ "a//b", "a/+/b", 0 },
	{ "a/+/b", "a//b", 1 },
	{ "ünï/#", "ünï/x", 1 },
	{ "ünï/#", "uni/x", 0 },
	{ "home/+/+/state", "home/kitchen/light/state", 1 },
	{ "home/+/+/state", "home/+/light/state", 1 },
	{ "home/+/+/state", "home/kitchen/+/state", 1 },
	{ "home/+/+/state", "home/+/+/state", 1 },
	{ "home/+/+/state", "home/#", 0 },
	{ "home/+/+/state", "home/kitchen/state", 0 },
	{ "home/+/+/state", "home/a/b/c/state", 0 },
	{ "home/+/+/state", "+/+/+/state", 0 },
	{ "home/#", "home/+/+/state", 1 },
	{ "home/#", "home/kitchen/#", 1 },
	{ "home/#", "home/+/#", 1 },
	{ "home/#", "house/#", 0 },
	{ "home/kitchen/#", "home/#", 0 },
	{ "home/kitchen/#", "home/+/light", 0 },
	{ "home/kitchen/#", "home/kitchen/light", 1 },
	{ "+/kitchen/#", "home/kitchen/light", 1 },
	{ "+/kitchen/#", "+/kitchen", 1 },
	{ "+/kitchen/#", "home/+/light", 0 },
	{ "+/kitchen/#", "$SYS/kitchen/x", 0 },
	{ "+/+/#", "a/b", 1 },
	{ "+/+/#", "a", 0 },
	{ "+/+/#", "a/#", 0 },
	{ "+/+/#", "+/+", 1 },
	{ "+/+/#", "+/+/+/#", 1 },
	{ "#", "+/+/+/#", 1 },
	{ "a/b/#", "a/b", 1 },
	{ "a/b/#", "a", 0 },
	{ "a/b/#", "a/+/#", 0 },
	{ "a/b/#", "a/b/+/d", 1 },
	{ "a/+/+", "a/b/c", 1 },
	{ "a/+/+", "a/+/c", 1 },
	{ "a/+/+", "a/b/#", 0 },
	{ "a/+/+", "a/b", 0 },
	{ "plant/line1/#", "plant/line1/+/temp", 1 },
	{ "plant/line1/#", "plant/line2/+/temp", 0 },
	{ "plant/line1/#", "plant/+/press/temp", 0 },
	{ "plant/+/press/temp", "plant/line1/press/temp", 1 },
	{ "plant/+/press/temp", "plant/line1/+/temp", 0 },
	{ "x", "x", 1 },
	{ "x", "y", 0 },
	{ "x", "X", 0 },
	{ "x", "x/", 0 },
	{ "x/", "x/", 1 },
	{ "x/", "x", 0 },
	{ "x/+", "x/", 1 },
	{ "$share/g/#", "$share/g/a", 1 },
	{ "$share/g/#", "$share/+/a", 0 },
	{ "$SYS/#", "$SYS/broker/+", 1 },
	{ "$SYS/#", "$sys/a", 0 },
	{ "$x", "$x", 1 },
	{ "+/#", "$x", 0 },
};
static const struct acl_case acl_pub_cases[] = {
	{ "#", "a", 1 },
	{ "#", "a/b/c", 1 },
	{ "#", "$SYS/x", 0 },
	{ "#", "/a", 1 },
	{ "#", "a/", 1 },
	{ "cmd/#", "cmd", 1 },
	{ "cmd/#", "cmd/a", 1 },
	{ "cmd/#", "cmd/a/b", 1 },
	{ "cmd/#", "cmdx", 0 },
	{ "cmd/#", "other/cmd", 0 },
	{ "cmd/+/set", "cmd/a/set", 1 },
	{ "cmd/+/set", "cmd//set", 1 },
	{ "cmd/+/set", "cmd/a/b/set", 0 },
	{ "cmd/+/set", "cmd/set", 0 },
	{ "cmd/+/set", "cmd/a/set/x", 0 },
	{ "+", "a", 1 },
	{ "+", "a/b", 0 },
	{ "+", "$SYS", 0 },
	{ "+/+", "a/b", 1 },
	{ "+/+", "a", 0 },
	{ "$SYS/#", "$SYS/a", 1 },
	{ "$SYS/#", "$SYS", 1 },
	{ "+/#", "$SYS/a", 0 },
	{ "+/#", "a", 1 },
	{ "a/b", "a/b", 1 },
	{ "a/b", "a/b/c", 0 },
	{ "a/b", "a", 0 },
	{ "a/b", "A/b", 0 },
	{ "/+", "/x", 1 },
	{ "/+", "x", 0 },
	{ "a/+/c/#", "a/b/c", 1 },
	{ "a/+/c/#", "a/b/c/d/e", 1 },
	{ "a/+/c/#", "a/b/d", 0 },
	{ "home/+/+/set", "home/kitchen/light/set", 1 },
	{ "home/+/+/set", "home/kitchen/set", 0 },
	{ "home/#", "home", 1 },
	{ "home/#", "homes/a", 0 },
	{ "demo/cmd/#", "demo/cmd/kitchen/setpoint", 1 },
	{ "demo/cmd/#", "demo/sensors/kitchen", 0 },
	{ "#", "$SYS", 0 },
	{ "$SYS/+", "$SYS/a", 1 },
	{ "$SYS/+", "$SYS/a/b", 0 },
	{ "+/b/#", "a/b", 1 },
	{ "+/b/#", "a/c", 0 },
	{ "a/#", "a//", 1 },
	{ "a/+", "a/", 1 },
	{ "a/+/c", "a//c", 1 },
	{ "ünï/+", "ünï/x", 1 },
	{ "ünï/+", "uni/x", 0 },
	{ "x", "x", 1 },
	{ "x", "x/y", 0 },
};

static void run(const struct acl_case *cases, size_t n, bool sub)
{
	char *noise[] = { "zz/unrelated/#", NULL, "yy/+" };

	for (size_t i = 0; i < n; i++) {
		const struct acl_case *c = &cases[i];
		char *one[] = { (char *)c->allowed };
		struct acl a = { 0 };
		bool got;

		if (sub) {
			a.sub = one;
			a.nsub = 1;
			got = acl_may_subscribe(&a, c->asked);
		} else {
			a.pub = one;
			a.npub = 1;
			got = acl_may_publish(&a, c->asked);
		}
		if (got != (bool)c->want)
			fprintf(stderr, "%s allowed '%s' asked '%s': got %d\n",
				sub ? "subscribe" : "publish", c->allowed,
				c->asked, got);
		CHECK_INT(got, c->want);
		/* The same inside a list: unrelated filters change nothing. */
		noise[1] = (char *)c->allowed;
		if (sub) {
			a.sub = noise;
			a.nsub = 3;
			CHECK_INT(acl_may_subscribe(&a, c->asked), c->want);
		} else {
			a.pub = noise;
			a.npub = 3;
			CHECK_INT(acl_may_publish(&a, c->asked), c->want);
		}
	}
}

int main(void)
{
	struct acl empty = { 0 };
	size_t nsub = sizeof(acl_sub_cases) / sizeof(acl_sub_cases[0]);
	size_t npub = sizeof(acl_pub_cases) / sizeof(acl_pub_cases[0]);

	CHECK(nsub + npub >= 200);
	run(acl_sub_cases, nsub, true);
	run(acl_pub_cases, npub, false);
	/* Nothing is allowed by an empty ACL or a NULL one. */
	CHECK(!acl_may_subscribe(&empty, "a"));
	CHECK(!acl_may_publish(&empty, "a"));
	CHECK(!acl_may_subscribe(NULL, "#"));
	return check_summary("acl");
}
