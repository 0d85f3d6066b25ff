/*
 * test_loopback.c - plugins/loopback.c through the fake host: key
 * checking, connected at start, publishes acknowledged in order and looped
 * back with exact bytes, QoS lowered to the topic line's and the retain
 * flag kept, only inside in/both lines (with the '$' rule), the delay, the
 * fail modes, the queue bound, destroy completing what is queued exactly
 * once, and deliver() errors.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "plugin_host.h"

static char plugin_path[PATH_MAX];

static const struct mqgate_topic topics[] = {
	{ "sensors/#", MQGATE_DIR_IN, 1 },
	{ "cmd/#", MQGATE_DIR_OUT, 1 },
	{ "both/+/x", MQGATE_DIR_BOTH, 2 },
	{ "low/#", MQGATE_DIR_BOTH, 0 },
	{ "#", MQGATE_DIR_IN, 0 },
};

static struct plugin_host *start_with(const char *const *kv, size_t ntopics)
{
	char err[256];
	struct plugin_host *ph = plugin_host_new(plugin_path, err, sizeof(err));

	if (!ph) {
		fprintf(stderr, "cannot load %s: %s\n", plugin_path, err);
		exit(99);
	}
	CHECK_INT(plugin_host_configure(ph, kv, topics, ntopics, err,
					sizeof(err)), 0);
	CHECK_INT(plugin_host_check(ph, err, sizeof(err)), -2);
	CHECK_INT(plugin_host_start(ph, err, sizeof(err)), 0);
	return ph;
}

static void test_keys(void)
{
	char err[256];
	struct plugin_host *ph = plugin_host_new(plugin_path, err, sizeof(err));
	const struct mqgate_backend *be;

	if (!ph) {
		fprintf(stderr, "cannot load %s: %s\n", plugin_path, err);
		exit(99);
	}
	be = plugin_host_backend(ph);
	CHECK_STR(be->name, "loopback");
	CHECK_STR(be->keys[0].name, "delay");
	CHECK_STR(be->keys[1].name, "fail");
	CHECK(be->keys[2].name == NULL);

	CHECK_INT(plugin_host_configure(ph, (const char *[]){ "fail=bogus", NULL },
					topics, 1, err, sizeof(err)), 0);
	CHECK_INT(plugin_host_check(ph, err, sizeof(err)), 1);
	CHECK(strstr(err, "bogus") != NULL);
	/* create refuses what check refuses */
	CHECK_INT(plugin_host_start(ph, err, sizeof(err)), -EINVAL);

	/* the host's own parsing of the DURATION key */
	CHECK_INT(plugin_host_configure(ph, (const char *[]){ "delay=soon", NULL },
					topics, 1, err, sizeof(err)), -EINVAL);
	CHECK_INT(plugin_host_configure(ph, (const char *[]){ "delay=2h", NULL },
					topics, 1, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "out of range") != NULL);
	CHECK_INT(plugin_host_configure(ph, (const char *[]){ "nope=1", NULL },
					topics, 1, err, sizeof(err)), -EINVAL);
	CHECK_INT(plugin_host_configure(ph, (const char *[]){ "fail=rejected",
							      "delay=250ms", NULL },
					topics, 1, err, sizeof(err)), 0);
	CHECK_INT(plugin_host_check(ph, err, sizeof(err)), -2);
	plugin_host_free(ph);
}

static void test_loop_back(void)
{
	struct plugin_host *ph = start_with(NULL, 4);
	static const unsigned char bin[] = { 0, 1, 2, 0xff, 0, 'x', 0x80, 0 };
	struct ph_message m;
	struct ph_done d;
	long i;

	/* connected from start(), reported once */
	CHECK_INT(plugin_host_state(ph, NULL, 0), MQGATE_STATE_CONNECTED);
	CHECK_INT(plugin_host_state_count(ph, MQGATE_STATE_CONNECTED), 1);

	/* inside an `in` line: acked, then looped back byte for byte */
	CHECK_INT(plugin_host_publish(ph, "sensors/a/temp", bin, sizeof(bin), 1,
				      true, 7), 0);
	CHECK_INT(plugin_host_wait_done(ph, 7, 5000, &d), 0);
	CHECK_INT(d.result, MQGATE_PUB_OK);
	CHECK_INT(plugin_host_wait_messages(ph, 1, 5000), 0);
	CHECK(plugin_host_message(ph, 0, &m));
	CHECK_STR(m.topic, "sensors/a/temp");
	CHECK_INT(m.len, sizeof(bin));
	CHECK(m.len == sizeof(bin) && memcmp(m.payload, bin, sizeof(bin)) == 0);
	CHECK_INT(m.qos, 1);
	CHECK_INT(m.retain, 1);
	CHECK_INT(m.ts_ms, 0);

	/* only out: acked, nothing comes back */
	CHECK_INT(plugin_host_publish(ph, "cmd/door", "open", 4, 1, false, 8), 0);
	/* QoS lowered to the line's; empty payload */
	CHECK_INT(plugin_host_publish(ph, "low/z", "", 0, 1, false, 9), 0);
	/* qos 0 publish on a qos 2 line stays 0; '+' matches one level */
	CHECK_INT(plugin_host_publish(ph, "both/q/x", "b", 1, 0, false, 10), 0);
	CHECK_INT(plugin_host_publish(ph, "both/q/y", "c", 1, 2, false, 11), 0);
	CHECK_INT(plugin_host_publish(ph, "both/q/x", "d", 1, 2, false, 12), 0);
	for (uint64_t t = 8; t <= 12; t++) {
		CHECK_INT(plugin_host_wait_done(ph, t, 5000, &d), 0);
		CHECK_INT(d.result, MQGATE_PUB_OK);
	}
	CHECK_INT(plugin_host_wait_messages(ph, 4, 5000), 0);
	CHECK_INT(plugin_host_message_count(ph), 4);
	CHECK(plugin_host_find_message(ph, "cmd/door", 0) < 0);
	CHECK(plugin_host_find_message(ph, "both/q/y", 0) < 0);
	i = plugin_host_find_message(ph, "low/z", 0);
	CHECK(i == 1 && plugin_host_message(ph, (size_t)i, &m) && m.len == 0 &&
	      m.qos == 0 && !m.retain);
	CHECK(plugin_host_message(ph, 2, &m) && strcmp(m.topic, "both/q/x") == 0 &&
	      m.qos == 0 && m.len == 1 && m.payload[0] == 'b');
	CHECK(plugin_host_message(ph, 3, &m) && strcmp(m.topic, "both/q/x") == 0 &&
	      m.qos == 2 && m.payload[0] == 'd');

	/* bad arguments are refused at once, never completed */
	CHECK_INT(plugin_host_publish(ph, "sensors/x", "a", 1, 3, false, 13), -EINVAL);
	CHECK_INT(plugin_host_publish(ph, NULL, "a", 1, 0, false, 14), -EINVAL);
	CHECK_INT(plugin_host_publish(ph, "sensors/x", NULL, 1, 0, false, 15), -EINVAL);

	/* many in a row: completed and looped back in order, each once */
	plugin_host_clear(ph);
	for (uint64_t t = 100; t < 600; t++) {
		char p[32];
		int n = snprintf(p, sizeof(p), "n%llu", (unsigned long long)t);

		CHECK_INT(plugin_host_publish(ph, "sensors/seq", p, (size_t)n,
					      1, false, t), 0);
	}
	CHECK_INT(plugin_host_wait_messages(ph, 500, 10000), 0);
	CHECK_INT(plugin_host_wait_done(ph, 599, 5000, NULL), 0);
	for (size_t k = 0; k < 500; k++) {
		char p[32];

		snprintf(p, sizeof(p), "n%llu", (unsigned long long)(100 + k));
		if (!plugin_host_message(ph, k, &m) ||
		    strcmp((const char *)m.payload, p) != 0) {
			CHECK(!"message out of order");
			break;
		}
	}
	CHECK_INT(plugin_host_done_total(ph), 500);
	for (uint64_t t = 100; t < 600; t++)
		if (plugin_host_done_count(ph, t) != 1) {
			CHECK_INT(plugin_host_done_count(ph, t), 1);
			break;
		}
	for (uint64_t t = 13; t <= 15; t++)
		CHECK_INT(plugin_host_done_count(ph, t), 0);
	plugin_host_free(ph);
}

static void test_dollar_rule(void)
{
	struct plugin_host *ph = start_with(NULL, 5);

	/* "#" does not match $SYS/...; "sensors/#" matches "sensors" */
	CHECK_INT(plugin_host_publish(ph, "$SYS/x", "s", 1, 0, false, 1), 0);
	CHECK_INT(plugin_host_publish(ph, "sensors", "p", 1, 1, false, 2), 0);
	CHECK_INT(plugin_host_publish(ph, "other/thing", "o", 1, 1, false, 3), 0);
	CHECK_INT(plugin_host_wait_done(ph, 3, 5000, NULL), 0);
	CHECK_INT(plugin_host_wait_messages(ph, 2, 5000), 0);
	CHECK_INT(plugin_host_done_count(ph, 1), 1);
	CHECK(plugin_host_find_message(ph, "$SYS/x", 0) < 0);
	CHECK(plugin_host_find_message(ph, "sensors", 0) == 0);
	CHECK(plugin_host_find_message(ph, "other/thing", 0) == 1);
	plugin_host_free(ph);
}

static void test_delay(void)
{
	struct plugin_host *ph = start_with((const char *[]){ "delay=300ms", NULL }, 1);
	int64_t t0 = plugin_host_now_ms(), t1;
	struct ph_done d;

	CHECK_INT(plugin_host_publish(ph, "sensors/d", "x", 1, 1, false, 1), 0);
	CHECK_INT(plugin_host_wait_done(ph, 1, 150, NULL), -ETIMEDOUT);
	CHECK_INT(plugin_host_wait_done(ph, 1, 5000, &d), 0);
	t1 = plugin_host_now_ms();
	CHECK(t1 - t0 >= 295);
	CHECK_INT(d.result, MQGATE_PUB_OK);
	CHECK_INT(plugin_host_wait_messages(ph, 1, 5000), 0);
	plugin_host_free(ph);
}

static void test_destroy_completes_queue(void)
{
	struct plugin_host *ph = start_with((const char *[]){ "delay=1h", NULL }, 1);
	uint64_t t;
	int r = 0;
	struct ph_done d;

	/* the queue is bounded */
	for (t = 1; t <= 10001; t++) {
		r = plugin_host_publish(ph, "sensors/q", "x", 1, 1, false, t);
		if (r != 0)
			break;
	}
	CHECK_INT(t, 10001);
	CHECK_INT(r, -EBUSY);
	CHECK_INT(plugin_host_done_total(ph), 0);
	plugin_host_stop(ph);
	/* every accepted publish completed once, UNAVAILABLE; none looped */
	CHECK_INT(plugin_host_done_total(ph), 10000);
	CHECK_INT(plugin_host_done_count(ph, 1), 1);
	CHECK_INT(plugin_host_done_count(ph, 10000), 1);
	CHECK_INT(plugin_host_done_count(ph, 10001), 0);
	CHECK_INT(plugin_host_wait_done(ph, 5000, 0, &d), 0);
	CHECK_INT(d.result, MQGATE_PUB_UNAVAILABLE);
	CHECK(strstr(d.why, "stopped") != NULL);
	CHECK_INT(plugin_host_message_count(ph), 0);
	plugin_host_free(ph);
}

static void test_fail_modes(void)
{
	struct plugin_host *ph;
	struct ph_done d;

	ph = start_with((const char *[]){ "fail=unavailable", NULL }, 1);
	CHECK_INT(plugin_host_publish(ph, "sensors/a", "x", 1, 1, false, 1),
		  -ENOTCONN);
	CHECK_INT(plugin_host_wait_done(ph, 1, 200, NULL), -ETIMEDOUT);
	plugin_host_free(ph);

	ph = start_with((const char *[]){ "fail=rejected", NULL }, 1);
	CHECK_INT(plugin_host_publish(ph, "sensors/a", "x", 1, 1, false, 1), 0);
	CHECK_INT(plugin_host_wait_done(ph, 1, 5000, &d), 0);
	CHECK_INT(d.result, MQGATE_PUB_REJECTED);
	CHECK(d.why[0] != '\0');
	CHECK_INT(plugin_host_wait_messages(ph, 1, 200), -ETIMEDOUT);
	plugin_host_free(ph);
}

static void test_deliver_errors(void)
{
	struct plugin_host *ph = start_with(NULL, 1);
	struct ph_done d;

	plugin_host_set_deliver_result(ph, -EMSGSIZE);
	CHECK_INT(plugin_host_publish(ph, "sensors/big", "x", 1, 1, false, 1), 0);
	CHECK_INT(plugin_host_wait_done(ph, 1, 5000, &d), 0);
	CHECK_INT(d.result, MQGATE_PUB_OK);
	CHECK_INT(plugin_host_wait_log(ph, "not delivered", 5000), 0);
	plugin_host_set_deliver_result(ph, -ESHUTDOWN);
	CHECK_INT(plugin_host_publish(ph, "sensors/late", "x", 1, 1, false, 2), 0);
	CHECK_INT(plugin_host_wait_done(ph, 2, 5000, NULL), 0);
	CHECK_INT(plugin_host_log_count(ph, "not delivered"), 1);
	plugin_host_free(ph);
}

int main(void)
{
	const char *dir = getenv("MQGATE_PLUGIN_DIR");

	snprintf(plugin_path, sizeof(plugin_path), "%s/loopback.so",
		 dir && dir[0] ? dir : "plugins/.libs");
	test_keys();
	test_loop_back();
	test_dollar_rule();
	test_delay();
	test_destroy_completes_queue();
	test_fail_modes();
	test_deliver_errors();
	return check_summary("test_loopback");
}
