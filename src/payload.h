/*
 * payload.h - payload encoding between broker bytes and JSON, as
 * PROTOCOL.md says:
 *   broker -> browser: one valid JSON value -> embedded (re-emitted
 *   compact, so it never holds a raw CR or LF); else valid UTF-8 -> JSON
 *   string; else base64 JSON string with "encoding":"base64".
 *   browser -> broker: JSON string -> its UTF-8 bytes; other values ->
 *   compact JSON text; with encoding base64 -> the decoded bytes.
 * Pure functions.
 */
#ifndef MQGATE_PAYLOAD_H
#define MQGATE_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>

struct cJSON;

#include "json.h"
#include "utf8.h"

/* Maximum nesting the embedder accepts; deeper JSON travels as a string. */
#define PAYLOAD_JSON_MAX_DEPTH JSON_MAX_DEPTH

/* Encodes broker bytes as a JSON value. Returns a malloc'd buffer of
 * *out_len bytes (not NUL-terminated) holding the JSON text, and sets
 * *base64 when base64 was used. NULL on ENOMEM. */
char *payload_to_json(const void *p, size_t len, bool *base64,
		      size_t *out_len);

/* Appends s[0..len) as a JSON string literal (with quotes) to the buffer
 * at out, which must have room for payload_json_string_max(len) bytes;
 * returns the bytes written. s must be valid UTF-8. Escapes '"', '\\',
 * control characters, U+2028 and U+2029. */
size_t payload_json_string(char *out, const char *s, size_t len);
size_t payload_json_string_max(size_t len);

/* If p[0..len) is exactly one JSON value (surrounding whitespace allowed),
 * writes its compact form to out (room for len bytes) and returns its
 * length; otherwise returns -1. */
long payload_json_compact(const char *p, size_t len, char *out);

/* Turns the `payload` member of a browser publish into bytes.
 * base64: the frame said "encoding":"base64" (then v must be a string).
 * Returns 0 with a malloc'd *out (may be NULL when *out_len is 0), or
 * -EINVAL with *why set. */
int payload_from_json(const struct cJSON *v, bool base64, void **out,
		      size_t *out_len, const char **why);

/* Base64 (RFC 4648, with padding). encode: out needs
 * base64_encoded_len(len) bytes; returns bytes written (no NUL).
 * decode: out needs len*3/4+3 bytes; returns length or -1 when invalid. */
size_t base64_encoded_len(size_t len);
size_t base64_encode(const void *in, size_t len, char *out);
long base64_decode(const char *in, size_t len, void *out);

#endif
