/*
 * json.h - a strict RFC 8259 scanner: checks that a text is exactly one
 * JSON value (surrounding whitespace allowed), nested at most
 * JSON_MAX_DEPTH deep, with valid UTF-8 in its strings, and can write its
 * compact form (whitespace outside strings removed, so it never holds a
 * raw CR or LF). Used on broker payloads before embedding them and on
 * browser frames before cJSON reads them (cJSON is lenient: leading zeros,
 * raw control characters, and it cuts strings at an escaped NUL).
 * Pure functions.
 */
#ifndef MQGATE_JSON_H
#define MQGATE_JSON_H

#include <stddef.h>

#define JSON_MAX_DEPTH 64

/* Refuse the escape \u0000 (C strings cannot hold it). */
#define JSON_REFUSE_NUL 1u

/* Scans p[0..len). With out (room for len bytes) writes the compact form
 * and returns its length; without, returns len. -1 when p is not exactly
 * one JSON value under `flags`. */
long json_scan(const char *p, size_t len, unsigned flags, char *out);

struct cJSON;

/* Most members a request object may have. */
#define JSON_MAX_MEMBERS 32

/* Parses a request: exactly one JSON object (json_scan with
 * JSON_REFUSE_NUL), at most JSON_MAX_MEMBERS members, no member name
 * twice (so no two readers can disagree about it). Returns the tree
 * (cJSON_Delete it) or NULL with *why set to a static reason. */
struct cJSON *json_parse_object(const char *p, size_t len, const char **why);

#endif
