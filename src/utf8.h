/*
 * utf8.h - strict UTF-8 validation (RFC 3629), shared by topic checks,
 * JSON scanning and payload encoding. Pure functions.
 */
#ifndef MQGATE_UTF8_H
#define MQGATE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1..4) of the valid UTF-8 sequence starting at s[0] of the
 * `len` bytes available, or 0 when it is invalid (overlong forms,
 * surrogates and code points over U+10FFFF refused). len >= 1. */
size_t utf8_char_len(const unsigned char *s, size_t len);

bool utf8_valid(const void *s, size_t len);

#endif
