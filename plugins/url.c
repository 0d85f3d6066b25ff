/*
 * url.c - parsing of broker URLs (scheme://[user[:password]@]host[:port]
 * [/path]) for backend plugins. See url.h. Owns the strings of the
 * struct url it fills.
 */
#include "url.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URL_SHOW 64 /* bytes of a host or port quoted in a message */

static const struct {
	const char *scheme;
	int port;
} url_ports[] = {
	{ "mqtt", 1883 },
	{ "mqtts", 8883 },
	{ "amqp", 5672 },
	{ "amqps", 5671 },
};

int url_default_port(const char *scheme)
{
	if (!scheme)
		return 0;
	for (size_t i = 0; i < sizeof(url_ports) / sizeof(url_ports[0]); i++)
		if (strcasecmp(scheme, url_ports[i].scheme) == 0)
			return url_ports[i].port;
	return 0;
}

static int url_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int url_decode(const char *src, size_t len, char **out)
{
	char *s = malloc(len + 1), *d = s;

	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (src[i] != '%') {
			*d++ = src[i];
			continue;
		}
		if (i + 2 >= len) {
			free(s);
			return -EINVAL;
		}
		hi = url_hex(src[i + 1]);
		lo = url_hex(src[i + 2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			free(s);
			return -EINVAL;
		}
		*d++ = (char)(hi << 4 | lo);
		i += 2;
	}
	*d = '\0';
	*out = s;
	return 0;
}

void url_free(struct url *u)
{
	if (!u)
		return;
	free(u->scheme);
	free(u->user);
	free(u->password);
	free(u->host);
	free(u->path);
	memset(u, 0, sizeof(*u));
}

static char *url_strndup_lower(const char *s, size_t n)
{
	char *d = strndup(s, n);

	for (char *p = d; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

/* Decodes one part into *out; a message names the part on failure. */
static int url_decode_part(const char *src, size_t len, char **out,
			   const char *what, char *err, size_t errlen)
{
	int r = url_decode(src, len, out);

	if (r == -EINVAL)
		snprintf(err, errlen, "bad percent-escape in the %s (want %%XX "
			 "with two hex digits, not %%00)", what);
	return r;
}

static bool url_host_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_';
}

/* host[:port] or [v6][:port] in s[0..len). */
static int url_parse_hostport(const char *s, size_t len, struct url *u,
			      char *err, size_t errlen)
{
	const char *host = s, *port = NULL;
	size_t hlen = len, plen = 0;
	char v6[INET6_ADDRSTRLEN + 1], buf[16];
	unsigned long n;
	char *end;

	if (len && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		unsigned char addr[16];

		if (!close) {
			snprintf(err, errlen, "missing ']' after the IPv6 address");
			return -EINVAL;
		}
		host = s + 1;
		hlen = (size_t)(close - host);
		if (hlen == 0 || hlen >= sizeof(v6)) {
			snprintf(err, errlen, "bad IPv6 address \"[%.*s]\"",
				 URL_SHOW, host);
			return -EINVAL;
		}
		memcpy(v6, host, hlen);
		v6[hlen] = '\0';
		if (inet_pton(AF_INET6, v6, addr) != 1) {
			snprintf(err, errlen, "bad IPv6 address \"[%s]\"", v6);
			return -EINVAL;
		}
		u->ipv6 = true;
		if (close + 1 < s + len) {
			if (close[1] != ':') {
				snprintf(err, errlen, "unexpected text after "
					 "\"[%s]\" (want :PORT or /PATH)", v6);
				return -EINVAL;
			}
			port = close + 2;
			plen = (size_t)(s + len - port);
		}
	} else {
		const char *colon = memchr(s, ':', len);

		if (colon) {
			if (memchr(colon + 1, ':', (size_t)(s + len - colon - 1))) {
				snprintf(err, errlen, "an IPv6 address must be "
					 "written in brackets, as in [::1]");
				return -EINVAL;
			}
			hlen = (size_t)(colon - s);
			port = colon + 1;
			plen = (size_t)(s + len - port);
		}
		if (hlen == 0) {
			snprintf(err, errlen, "missing host");
			return -EINVAL;
		}
		for (size_t i = 0; i < hlen; i++)
			if (!url_host_char(host[i])) {
				snprintf(err, errlen, "bad character '%c' in host "
					 "\"%.*s\"", host[i],
					 (int)(hlen < URL_SHOW ? hlen : URL_SHOW),
					 host);
				return -EINVAL;
			}
	}
	if (port) {
		if (plen == 0) {
			snprintf(err, errlen, "missing port after ':'");
			return -EINVAL;
		}
		if (plen >= sizeof(buf) ||
		    strspn(port, "0123456789") < plen) {
			snprintf(err, errlen, "bad port \"%.*s\" (want 1..65535)",
				 (int)(plen < URL_SHOW ? plen : URL_SHOW), port);
			return -EINVAL;
		}
		memcpy(buf, port, plen);
		buf[plen] = '\0';
		n = strtoul(buf, &end, 10);
		if (n < 1 || n > 65535) {
			snprintf(err, errlen, "port %s is out of range (1..65535)",
				 buf);
			return -EINVAL;
		}
		u->port = (int)n;
		u->port_given = true;
	}
	u->host = strndup(host, hlen);
	return u->host ? 0 : -ENOMEM;
}

int url_parse(const char *text, struct url *u, char *err, size_t errlen)
{
	const char *p, *auth, *auth_end, *at = NULL, *hp;
	int r;

	memset(u, 0, sizeof(*u));
	if (!text || !*text) {
		snprintf(err, errlen, "empty url");
		return -EINVAL;
	}
	for (p = text; *p && *p != ':'; p++)
		if (!(isalpha((unsigned char)*p) ||
		      (p > text && (isdigit((unsigned char)*p) || *p == '+' ||
				    *p == '-' || *p == '.'))))
			break;
	if (p == text || *p != ':' || strncmp(p, "://", 3) != 0) {
		snprintf(err, errlen, "missing scheme: want SCHEME://HOST[:PORT]");
		return -EINVAL;
	}
	u->scheme = url_strndup_lower(text, (size_t)(p - text));
	if (!u->scheme)
		return -ENOMEM;
	auth = p + 3;
	auth_end = auth + strcspn(auth, "/");
	for (const char *q = auth; q < auth_end; q++)
		if (*q == '@')
			at = q;
	hp = at ? at + 1 : auth;
	if (memchr(hp, '?', (size_t)(auth_end - hp)) ||
	    memchr(hp, '#', (size_t)(auth_end - hp)) ||
	    strpbrk(auth_end, "?#")) {
		snprintf(err, errlen, "queries and fragments ('?', '#') are not "
			 "supported in a broker url");
		r = -EINVAL;
		goto fail;
	}
	if (at) {
		const char *colon = memchr(auth, ':', (size_t)(at - auth));
		const char *uend = colon ? colon : at;

		r = url_decode_part(auth, (size_t)(uend - auth), &u->user,
				    "user name", err, errlen);
		if (r < 0)
			goto fail;
		if (colon) {
			r = url_decode_part(colon + 1, (size_t)(at - colon - 1),
					    &u->password, "password", err,
					    errlen);
			if (r < 0)
				goto fail;
		}
	}
	r = url_parse_hostport(hp, (size_t)(auth_end - hp), u, err, errlen);
	if (r < 0)
		goto fail;
	if (*auth_end == '/') {
		r = url_decode_part(auth_end + 1, strlen(auth_end + 1), &u->path,
				    "path", err, errlen);
		if (r < 0)
			goto fail;
	}
	if (!u->port_given)
		u->port = url_default_port(u->scheme);
	return 0;
fail:
	if (r == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	url_free(u);
	return r;
}
