/*
 * auth.h - client credentials: JSON Web Tokens (HS256 with a shared
 * secret, RS256/ES256 with a public key; the algorithm is pinned by the
 * configured key) carrying the topic filters a client may subscribe to and
 * publish to. Pure functions over the [auth] config.
 */
#ifndef MQGATE_AUTH_H
#define MQGATE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct acl;
struct conf_auth;

/* Is token authentication configured? */
bool auth_enabled(const struct conf_auth *a);

/* Verifies a compact JWT: signature, alg, exp/nbf (with leeway), aud, iss;
 * fills acl (owned strings) from the configured claims and *expires_ms
 * from exp (0 = none). 0, or -EACCES with why set (never containing the
 * token). */
int auth_verify(const struct conf_auth *a, const char *token, size_t len,
		struct acl *acl, int64_t *expires_ms, char *why,
		size_t whylen);

#endif
