/*
 * auth.c - client credentials (see auth.h).
 */
#include "auth.h"

#include <errno.h>
#include <stdio.h>

#include "acl.h"
#include "conf.h"

bool auth_enabled(const struct conf_auth *a)
{
	return a->jwt_secret || a->jwt_public_key;
}

int auth_verify(const struct conf_auth *a, const char *token, size_t len,
		struct acl *acl, int64_t *expires_ms, char *why,
		size_t whylen)
{
	(void)a;
	(void)token;
	(void)len;
	(void)acl;
	*expires_ms = 0;
	snprintf(why, whylen, "token authentication is not supported yet");
	return -EACCES;
}
