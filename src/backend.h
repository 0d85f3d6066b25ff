/*
 * backend.h - the host side of the plugin ABI: loads backend plugins with
 * dlopen, checks their ABI and their keys against each [broker NAME]
 * section, runs one instance per broker, and knows each broker's mount and
 * topic walls (routing). A broker_set owns its brokers, their parsed values
 * and plugin handles; it borrows the struct conf it was loaded from, which
 * must outlive it.
 */
#ifndef MQGATE_BACKEND_HOST_H
#define MQGATE_BACKEND_HOST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "mqgate/backend.h"

struct conf;
struct conf_broker;
struct inbox;

struct broker {
	char *name;
	const char *type;
	const char *mount;              /* from conf */
	size_t mount_len;
	const struct conf_broker *conf;
	void *dl;                       /* dlopen handle */
	const struct mqgate_backend *be;
	void *instance;                 /* NULL until started */
	struct mqgate_value *values;    /* one per plugin key */
	char **owned;                   /* buffers the values point into */
	size_t nkeys;
	struct mqgate_topic *topics;    /* broker-side walls */
	size_t ntopics;
	char **in_filters;              /* browser-side (mount + filter) */
	size_t nin;
	char **out_filters;
	size_t nout;
	struct mqgate_broker_conf bconf;/* what the instance was given */
	struct inbox *inbox;            /* where the host callbacks go */
	char log_module[96];            /* "mqtt[home]" */
	/* Loop-thread state, updated from inbox events. */
	enum mqgate_broker_state state;
	char why[160];
	uint64_t messages_in;
	uint64_t bytes_in;
	uint64_t connects;
};

struct broker_set {
	struct broker **v;
	size_t n;
};

/* Loads and checks every broker of conf: the plugin file
 * (plugin_dir/TYPE.so), its ABI, its keys and its own check(). Errors go
 * to errs as "FILE:LINE: message". Nothing connects. 0 or -EINVAL. */
int broker_set_load(const struct conf *conf, const char *plugin_dir,
		    FILE *errs, struct broker_set **out);
/* Creates and starts every instance; their events go to inbox.
 * 0 or -errno (logged). */
int broker_set_start(struct broker_set *set, struct inbox *inbox);
/* Stops instances (disconnecting cleanly, completing pending publishes
 * through the inbox) but keeps the structs their inbox events point to. */
void broker_set_stop(struct broker_set *set);
/* Stops instances (disconnecting cleanly) and frees everything. */
void broker_set_free(struct broker_set *set);

/* The broker whose mount is the longest prefix of the browser topic, or
 * NULL. *broker_topic points into topic, past the mount. */
struct broker *broker_set_route(const struct broker_set *set,
				const char *topic, const char **broker_topic);
/* Is the broker-side topic inside one of b's out/both walls? */
bool broker_may_publish(const struct broker *b, const char *broker_topic);
/* Can the browser-side filter match anything inside some in/both wall? */
bool broker_set_may_subscribe(const struct broker_set *set,
			      const char *filter);
/* True when every broker is connected. */
bool broker_set_all_up(const struct broker_set *set);

/* The plugin directory to use: conf's plugin_dir, else $MQGATE_PLUGIN_DIR,
 * else the installed one. */
const char *broker_plugin_dir(const struct conf *conf);

const char *broker_state_name(enum mqgate_broker_state s);

#endif
