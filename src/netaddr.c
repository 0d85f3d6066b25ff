/*
 * netaddr.c - client addresses and the trusted-proxy rule (see netaddr.h).
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char netaddr_v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

int netaddr_parse(const char *s, size_t len, struct netaddr *out)
{
	char buf[NETADDR_TEXT_MAX];

	while (len && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
	}
	if (!len || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = 0;
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->a) == 1) {
		out->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, out->a) != 1)
		return -EINVAL;
	out->family = AF_INET6;
	if (memcmp(out->a, netaddr_v4mapped, 12) == 0) {
		memmove(out->a, out->a + 12, 4);
		memset(out->a + 4, 0, 12);
		out->family = AF_INET;
	}
	return 0;
}

bool netaddr_in(const struct netaddr *addr, const char *cidr)
{
	const char *slash = strchr(cidr, '/');
	struct netaddr net;
	unsigned long bits;
	int max;

	if (netaddr_parse(cidr, slash ? (size_t)(slash - cidr) : strlen(cidr),
			  &net) < 0 || net.family != addr->family)
		return false;
	max = net.family == AF_INET ? 32 : 128;
	if (slash) {
		char *end;

		errno = 0;
		bits = strtoul(slash + 1, &end, 10);
		if (errno || *end || end == slash + 1 || bits > (unsigned long)max)
			return false;
	} else {
		bits = (unsigned long)max;
	}
	if (memcmp(net.a, addr->a, bits / 8) != 0)
		return false;
	if (bits % 8) {
		unsigned char mask = (unsigned char)(0xff << (8 - bits % 8));

		return (net.a[bits / 8] & mask) == (addr->a[bits / 8] & mask);
	}
	return true;
}

bool netaddr_in_list(const struct netaddr *addr, char *const *cidrs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (netaddr_in(addr, cidrs[i]))
			return true;
	return false;
}

static void netaddr_text(const struct netaddr *a, char *out)
{
	if (!inet_ntop(a->family, a->a, out, NETADDR_TEXT_MAX))
		snprintf(out, NETADDR_TEXT_MAX, "?");
}

void netaddr_client(const char *peer, const char *xff, char *const *trusted,
		    size_t ntrusted, char *out)
{
	struct netaddr a;
	const char *end;

	if (netaddr_parse(peer, strlen(peer), &a) < 0) {
		/* A unix socket peer, say: keep what lws said. */
		snprintf(out, NETADDR_TEXT_MAX, "%s", peer[0] ? peer : "local");
		return;
	}
	netaddr_text(&a, out);
	if (!xff || !netaddr_in_list(&a, trusted, ntrusted))
		return;
	/* Walk from the right: each hop was appended by the proxy before. */
	end = xff + strlen(xff);
	while (end > xff) {
		const char *start = end;
		struct netaddr hop;

		while (start > xff && start[-1] != ',')
			start--;
		if (netaddr_parse(start, (size_t)(end - start), &hop) < 0)
			return;
		netaddr_text(&hop, out);
		if (!netaddr_in_list(&hop, trusted, ntrusted))
			return;
		end = start > xff ? start - 1 : start;
	}
}
