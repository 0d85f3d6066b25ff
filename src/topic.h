/*
 * topic.h - MQTT-syntax topic names and filters: validation, matching and
 * the set relations the ACL needs (subset, overlap). Pure functions.
 *
 * Levels are split by '/'. In filters '+' matches exactly one level and
 * '#' all remaining levels (zero or more, last level only). A topic whose
 * first level starts with '$' is never matched by a filter whose first
 * level is a wildcard.
 */
#ifndef MQGATE_TOPIC_H
#define MQGATE_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

#define TOPIC_MAX_LEN 65535

enum topic_kind {
	TOPIC_NAME,   /* a concrete topic: no wildcards */
	TOPIC_FILTER, /* a subscription filter: wildcards as whole levels */
};

/* Checks s[0..len): valid UTF-8 (no overlongs, surrogates or code points
 * over U+10FFFF), no NUL, 1..TOPIC_MAX_LEN bytes, wildcards only where
 * `kind` allows them. Returns 0, or -EINVAL with *why set to a static
 * reason when why is not NULL. */
int topic_validate(const char *s, size_t len, enum topic_kind kind,
		   const char **why);

/* Does `filter` match the topic name `topic`? Both NUL-terminated and
 * valid. */
bool topic_matches(const char *filter, const char *topic);

/* Is every topic that `inner` matches also matched by `outer`? Both are
 * valid filters (a topic name is a filter that matches itself). */
bool topic_filter_subset(const char *inner, const char *outer);

/* Is there at least one topic that both filters match? */
bool topic_filters_overlap(const char *a, const char *b);

#endif
