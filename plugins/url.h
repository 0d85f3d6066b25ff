/*
 * url.h - broker URLs for backend plugins:
 *
 *     scheme://[user[:password]@]host[:port][/path]
 *
 * The scheme is matched case-insensitively and stored in lower case. The
 * host is a name, an IPv4 address or an IPv6 address in brackets
 * ("[::1]", stored without them). User, password and path are
 * percent-decoded ("%40" is '@'); a raw '/' or '@' inside them must be
 * written that way. The userinfo ends at the last '@' before the path, so
 * a password holding a raw '@' still parses. A missing port takes the
 * scheme's default (mqtt 1883, mqtts 8883, amqp 5672, amqps 5671).
 * Queries and fragments ("?", "#") are refused.
 *
 * A struct url owns its strings; url_free() releases them.
 */
#ifndef MQGATE_PLUGIN_URL_H
#define MQGATE_PLUGIN_URL_H

#include <stdbool.h>
#include <stddef.h>

struct url {
	char *scheme;    /* lower case, e.g. "mqtts" */
	char *user;      /* decoded; NULL when the URL has no userinfo */
	char *password;  /* decoded; NULL when no ':' follows the user */
	char *host;      /* without the brackets of an IPv6 address */
	bool ipv6;       /* host was written in brackets */
	int port;        /* given, or the scheme's default; 0 = none known */
	bool port_given;
	char *path;      /* decoded text after the '/' that ends the
			  * authority ("" for "host/"); NULL when no '/' */
};

/* Parses text into *u (which is overwritten). Returns 0, -EINVAL with a
 * one-line reason in err (which never repeats the password), or -ENOMEM.
 * On failure *u holds nothing to free. */
int url_parse(const char *text, struct url *u, char *err, size_t errlen);

/* Frees the strings of u and clears it; u itself is the caller's. */
void url_free(struct url *u);

/* The default port of a scheme (case-insensitive), 0 when unknown. */
int url_default_port(const char *scheme);

/* Decodes %XX escapes of src[0..len) into a new NUL-terminated string.
 * -EINVAL for a malformed escape or an escaped NUL, -ENOMEM. */
int url_decode(const char *src, size_t len, char **out);

#endif
