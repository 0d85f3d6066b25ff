/*
 * plugin_host.h - a fake mqgate host for plugin unit tests. It loads one
 * backend plugin (.so) with dlopen, checks its ABI like the daemon, parses
 * key values with the daemon's own conf_value_parse(), and runs check,
 * create/start, publish and destroy. What the plugin reports through the
 * struct mqgate_host callbacks (messages, states, publish completions and
 * log lines) is recorded under a mutex; the wait functions block on a
 * condition variable until a condition holds or a timeout passes.
 *
 * A struct plugin_host owns the dlopen handle, the parsed values, the
 * instance and every record; recorded strings stay valid until
 * plugin_host_clear() or plugin_host_free().
 */
#ifndef MQGATE_TEST_PLUGIN_HOST_H
#define MQGATE_TEST_PLUGIN_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqgate/backend.h"

struct plugin_host;

struct ph_message {
	const char *topic;
	const unsigned char *payload;  /* len bytes (NUL-terminated too) */
	size_t len;
	int qos;
	bool retain;
	int64_t ts_ms;
};

struct ph_done {
	uint64_t token;
	enum mqgate_publish_result result;
	char why[160];
};

/* Loads the plugin at path. NULL with err filled on failure. */
struct plugin_host *plugin_host_new(const char *path, char *err,
				    size_t errlen);
/* Destroys a running instance, unloads the plugin, frees everything. */
void plugin_host_free(struct plugin_host *ph);

const struct mqgate_backend *plugin_host_backend(const struct plugin_host *ph);

/* Sets the section's values: kv is a NULL-terminated list of "key=value"
 * strings (as in a config file, "password_file=/path" included); keys not
 * given take the plugin's defaults. topics are borrowed and must outlive
 * the instance. 0, or -EINVAL with the daemon's message in err. */
int plugin_host_configure(struct plugin_host *ph, const char *const *kv,
			  const struct mqgate_topic *topics, size_t ntopics,
			  char *err, size_t errlen);
/* Runs the plugin's check(): its return value (-2 = fine). */
int plugin_host_check(struct plugin_host *ph, char *err, size_t errlen);
/* create() then start(). 0 or -errno, err filled. */
int plugin_host_start(struct plugin_host *ph, char *err, size_t errlen);
/* destroy(); the records stay. */
void plugin_host_stop(struct plugin_host *ph);
/* The plugin's publish(). */
int plugin_host_publish(struct plugin_host *ph, const char *topic,
			const void *payload, size_t len, int qos, bool retain,
			uint64_t token);

/* Waits until the current (last reported) state is `state`. 0 or
 * -ETIMEDOUT. plugin_host_wait_state_not waits until it is anything
 * else. */
int plugin_host_wait_state(struct plugin_host *ph,
			   enum mqgate_broker_state state, int timeout_ms);
int plugin_host_wait_state_not(struct plugin_host *ph,
			       enum mqgate_broker_state state, int timeout_ms);
/* The current state and its reason (why may be NULL). */
enum mqgate_broker_state plugin_host_state(struct plugin_host *ph, char *why,
					   size_t whylen);
/* How many set_state calls reported `state` so far. */
size_t plugin_host_state_count(struct plugin_host *ph,
			       enum mqgate_broker_state state);

/* Waits until at least n messages were delivered. 0 or -ETIMEDOUT. */
int plugin_host_wait_messages(struct plugin_host *ph, size_t n,
			      int timeout_ms);
size_t plugin_host_message_count(struct plugin_host *ph);
/* The i-th delivered message (borrowed); false when there is none. */
bool plugin_host_message(struct plugin_host *ph, size_t i,
			 struct ph_message *out);
/* Index of the first message on `topic` at or after `from`, or -1. */
long plugin_host_find_message(struct plugin_host *ph, const char *topic,
			      size_t from);

/* Waits for the completion of token; copies it to out (may be NULL).
 * 0 or -ETIMEDOUT. */
int plugin_host_wait_done(struct plugin_host *ph, uint64_t token,
			  int timeout_ms, struct ph_done *out);
/* How many times token was completed (the ABI says exactly once). */
size_t plugin_host_done_count(struct plugin_host *ph, uint64_t token);
size_t plugin_host_done_total(struct plugin_host *ph);

/* Waits for a log line containing needle (at any level). 0 or
 * -ETIMEDOUT. */
int plugin_host_wait_log(struct plugin_host *ph, const char *needle,
			 int timeout_ms);
size_t plugin_host_log_count(struct plugin_host *ph, const char *needle);

/* Makes deliver() return r (0 = accept) from now on. */
void plugin_host_set_deliver_result(struct plugin_host *ph, int r);

/* Forgets recorded messages, completions and log lines. */
void plugin_host_clear(struct plugin_host *ph);

/* Milliseconds on the monotonic clock. */
int64_t plugin_host_now_ms(void);

#endif
