/*
 * mqgate/backend.h - the plugin ABI between the mqgate daemon ("host") and a
 * broker backend ("plugin", a shared object such as mqtt.so or amqp.so).
 *
 * A plugin exports one symbol, MQGATE_BACKEND_SYMBOL, a const
 * struct mqgate_backend. The host hands each broker instance a const
 * struct mqgate_host. Both structs start with an ABI number and their own
 * size, so either side can grow at the end without breaking the other:
 * the host refuses a plugin whose abi differs from MQGATE_BACKEND_ABI or
 * whose size is smaller than the fields it needs.
 *
 * Threads. Every mqgate_backend function is called from the host's event
 * loop thread and must not block it. A plugin runs its network I/O in
 * threads of its own; from those threads it may call host->deliver,
 * host->set_state, host->publish_done and host->log (all thread-safe).
 *
 * Topics. A plugin speaks MQTT topic syntax to the host ('/' separated
 * levels, '+' and '#' wildcards in filters), without the broker's mount
 * prefix: the host adds and strips mounts. A plugin for a broker with
 * another syntax (AMQP routing keys) maps in both directions itself.
 */
#ifndef MQGATE_BACKEND_H
#define MQGATE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MQGATE_BACKEND_ABI 1
#define MQGATE_BACKEND_SYMBOL "mqgate_backend"

/* Log levels, syslog numbering. */
enum mqgate_log_level {
	MQGATE_LOG_ERR = 3,
	MQGATE_LOG_WARNING = 4,
	MQGATE_LOG_NOTICE = 5,
	MQGATE_LOG_INFO = 6,
	MQGATE_LOG_DEBUG = 7,
};

/* ---- configuration keys a plugin declares ------------------------------ */

enum mqgate_key_type {
	MQGATE_KEY_STRING,   /* any text */
	MQGATE_KEY_INT,      /* integer in [min, max] */
	MQGATE_KEY_SIZE,     /* bytes, K/M/G suffixes, in [min, max] */
	MQGATE_KEY_DURATION, /* milliseconds, ms/s/m/h suffixes, in [min, max] */
	MQGATE_KEY_BOOL,     /* yes/no, true/false, on/off, 1/0 */
	MQGATE_KEY_SECRET,   /* text; "NAME_file = PATH" is accepted too and
			      * the host reads the file (one trailing
			      * newline removed) */
	MQGATE_KEY_PATH,     /* a file path; the host resolves a relative
			      * one against the config file's directory */
};

struct mqgate_key {
	const char *name;
	enum mqgate_key_type type;
	const char *def;     /* default as config text; NULL = no value */
	int64_t min, max;    /* INT, SIZE, DURATION; both 0 = no range */
	const char *help;    /* one line, for messages and docs */
};

/* A parsed value, in the plugin's key table order. */
struct mqgate_value {
	bool set;            /* given in the file or by a default */
	const char *str;     /* STRING, SECRET: the text; others: raw text */
	int64_t num;         /* INT, SIZE (bytes), DURATION (ms), BOOL (0/1) */
};

/* ---- what the host tells a plugin about one broker section ------------ */

enum mqgate_direction {
	MQGATE_DIR_IN = 1,   /* broker -> browsers */
	MQGATE_DIR_OUT = 2,  /* browsers -> broker */
	MQGATE_DIR_BOTH = 3,
};

struct mqgate_topic {
	const char *filter;  /* broker-side filter, MQTT syntax, no mount */
	enum mqgate_direction dir;
	int qos;             /* 0..2 */
};

struct mqgate_broker_conf {
	const char *name;            /* the section's NAME */
	const struct mqgate_value *values; /* one per plugin key */
	const struct mqgate_topic *topics; /* the `topic` lines */
	size_t ntopics;
};

/* Opaque handle the host gives each broker instance. */
struct mqgate_broker;

enum mqgate_broker_state {
	MQGATE_STATE_CONNECTING = 0,
	MQGATE_STATE_CONNECTED = 1,
	MQGATE_STATE_DOWN = 2,
};

/* Results of a publish, reported through host->publish_done. */
enum mqgate_publish_result {
	MQGATE_PUB_OK = 0,
	MQGATE_PUB_UNAVAILABLE = 1, /* not connected, blocked, timed out */
	MQGATE_PUB_REJECTED = 2,    /* broker refused it (nack, unroutable,
				     * not authorised) */
	MQGATE_PUB_TOO_LARGE = 3,
	MQGATE_PUB_INTERNAL = 4,
};

/* One message from a broker. Everything is borrowed for the call only:
 * the host copies what it keeps. */
struct mqgate_message {
	const char *topic;      /* MQTT syntax, no mount, NUL-terminated */
	const void *payload;
	size_t payload_len;
	int qos;
	bool retain;            /* the broker says it is a retained message */
	int64_t ts_ms;          /* broker-side timestamp, 0 = use arrival */
};

struct mqgate_host {
	uint32_t abi;           /* MQGATE_BACKEND_ABI */
	uint32_t size;          /* sizeof(struct mqgate_host) */

	void (*log)(struct mqgate_broker *b, enum mqgate_log_level level,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

	/* Hands one message to the host. Thread-safe. Copies the message and
	 * returns 0 once the host has it, which is when an acknowledging
	 * broker may be acked. May block while the host's inbox is full
	 * (back-pressure to the broker); returns -ESHUTDOWN when the host is
	 * stopping, -EMSGSIZE when the payload is over the size limit. */
	int (*deliver)(struct mqgate_broker *b, const struct mqgate_message *m);

	/* Reports the connection state. Thread-safe. `why` may be NULL. */
	void (*set_state)(struct mqgate_broker *b,
			  enum mqgate_broker_state state, const char *why);

	/* Completes the publish whose token the host passed to publish().
	 * Thread-safe. Called exactly once per publish() that returned 0.
	 * `why` (may be NULL) is a short human-readable reason. */
	void (*publish_done)(struct mqgate_broker *b, uint64_t token,
			     enum mqgate_publish_result result,
			     const char *why);
};

/* ---- what a plugin exports --------------------------------------------- */

struct mqgate_backend {
	uint32_t abi;           /* MQGATE_BACKEND_ABI */
	uint32_t size;          /* sizeof(struct mqgate_backend) */
	const char *name;       /* "mqtt": matches `type =` */
	const char *version;

	/* The keys this plugin accepts in its [broker NAME] section, besides
	 * the host's own `type`, `mount` and `topic`. Terminated by an entry
	 * with name == NULL. */
	const struct mqgate_key *keys;

	/* Checks a configuration without touching the network (used by
	 * `mqgate -t` too). On error writes a message to err and returns
	 * the index of the offending key (>= 0, for file:line reporting) or
	 * -1 when no single key is to blame. Returns -2 when all is well. */
	int (*check)(const struct mqgate_broker_conf *conf,
		     char *err, size_t errlen);

	/* Creates an instance; nothing runs yet. The conf and host outlive
	 * the instance. Returns NULL with err filled on failure. */
	void *(*create)(const struct mqgate_host *host,
			struct mqgate_broker *broker,
			const struct mqgate_broker_conf *conf,
			char *err, size_t errlen);

	/* Starts the instance's threads: connect (retrying forever with
	 * backoff), subscribe the `in` topics, deliver. 0 or -errno. */
	int (*start)(void *instance);

	/* Queues a publish; must not block. `topic` is MQTT syntax without
	 * mount; payload is borrowed for the call. Returns 0 and later calls
	 * host->publish_done(token) exactly once, or returns a negative
	 * errno at once (-ENOTCONN when not connected: the host replies
	 * `unavailable`) and never calls publish_done for it. */
	int (*publish)(void *instance, const char *topic, const void *payload,
		       size_t len, int qos, bool retain, uint64_t token);

	/* Stops threads, disconnects cleanly, completes every pending
	 * publish with MQGATE_PUB_UNAVAILABLE, frees the instance. */
	void (*destroy)(void *instance);
};

#ifdef __cplusplus
}
#endif

#endif
