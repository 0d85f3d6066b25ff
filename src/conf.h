/*
 * conf.h - the configuration: CONFIG.md's file format parsed into a
 * struct conf, driven by a declarative key table (type, default, range,
 * repeatable). Any error is reported as "FILE:LINE: message" and makes
 * conf_load fail. Plugin keys of [broker NAME] sections are kept as raw
 * text with their line numbers; backend.c checks them against the plugin's
 * own key table with conf_value_parse().
 * A struct conf owns all of its strings.
 */
#ifndef MQGATE_CONF_H
#define MQGATE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mqgate/backend.h"

#define EX_CONFIG_STATUS 78

enum slow_client_policy {
	SLOW_CLIENT_DROP_OLDEST,
	SLOW_CLIENT_CONFLATE,
	SLOW_CLIENT_DISCONNECT,
};

enum listen_kind { LISTEN_IPV4, LISTEN_IPV6, LISTEN_UNIX };

struct conf_listen {
	enum listen_kind kind;
	char *host;     /* "127.0.0.1", "::1", "0.0.0.0", "::"; unix: the path */
	int port;       /* 0 for unix sockets */
	int line;
};

struct conf_strlist {
	char **v;
	size_t n;
};

/* One `topic = FILTER in|out|both [QOS]` line. */
struct conf_topic {
	char *filter;   /* broker-side, as written */
	enum mqgate_direction dir;
	int qos;
	int line;
};

/* One plugin key as written in a [broker] section. */
struct conf_kv {
	char *key;      /* as written, e.g. "password_file" */
	char *value;    /* ${ENV} already expanded */
	int line;
};

struct conf_broker {
	char *name;
	char *type;     /* required */
	char *mount;    /* "" when not given */
	int line;       /* the section header's line */
	int type_line, mount_line;
	struct conf_topic *topics;
	size_t ntopics;
	struct conf_kv *kv;      /* everything else, for the plugin */
	size_t nkv;
};

struct conf_server {
	struct conf_listen *listen;
	size_t nlisten;
	char *docroot;               /* "" = disabled */
	struct conf_strlist origins; /* "*" = any */
	char *tls_cert_file, *tls_key_file;
	int64_t keepalive_ms;
	uint64_t history, history_bytes;
	uint64_t cache, cache_bytes;        /* last-value cache bounds */
	uint64_t queue, queue_bytes;
	enum slow_client_policy slow_client;
	uint64_t max_clients;
	uint64_t max_message;
	uint64_t max_subscriptions;
	uint64_t publish_rate;              /* tokens per publish_rate_ms */
	int64_t publish_rate_ms;
	uint64_t publish_burst;             /* bucket size */
	struct conf_strlist trusted_proxies;
	char *plugin_dir;                   /* "" = built-in default */
	char *user;                         /* "" = stay */
	int log_level;                      /* enum log_level */
};

struct conf_auth {
	struct conf_strlist anonymous_subscribe;
	struct conf_strlist anonymous_publish;
	bool anonymous_subscribe_set, anonymous_publish_set;
	char *jwt_secret;            /* read from jwt_secret_file; NULL = unset */
	char *jwt_public_key;        /* PEM text from jwt_public_key_file */
	char *jwt_audience, *jwt_issuer;    /* "" = not checked */
	char *jwt_subscribe_claim, *jwt_publish_claim;
};

struct conf {
	char *file;
	struct conf_server server;
	struct conf_auth auth;
	struct conf_broker *brokers;
	size_t nbrokers;
};

/* Reads and checks `path`. On error prints "FILE:LINE: message" lines to
 * `errs` (stderr when NULL), and returns -EINVAL (any config error) or
 * another -errno (file unreadable: "FILE: strerror"). *out is set only on
 * success. */
int conf_load(const char *path, FILE *errs, struct conf **out);
/* The same from a string; `name` is used in messages. For tests, fuzzing. */
int conf_load_string(const char *name, const char *text, size_t len,
		     FILE *errs, struct conf **out);
void conf_free(struct conf *c);

/* Value parsers shared with plugin key checking. Each returns 0 or
 * -EINVAL with *why set to a static message. */
int conf_parse_size(const char *s, uint64_t *out, const char **why);
int conf_parse_duration(const char *s, int64_t *ms, const char **why);
int conf_parse_bool(const char *s, bool *out, const char **why);
int conf_parse_int(const char *s, int64_t *out, const char **why);

/* Parses one plugin key's raw text into v (strings point into raw or into
 * a malloc'd *owned buffer that the caller frees, for SECRET *_file keys).
 * Writes a message into err on failure and returns -EINVAL. */
int conf_value_parse(const struct mqgate_key *k, const struct conf_kv *kv,
		     struct mqgate_value *v, char **owned, char *err,
		     size_t errlen);

/* Reads a secret file: whole content minus one trailing newline.
 * 0 or -errno; *out malloc'd. */
int conf_read_secret(const char *path, char **out);

#endif
