/*
 * netaddr.h - client addresses: IPv4/IPv6 parsing, CIDR lists (the
 * trusted_proxies key) and the X-Forwarded-For rule: the header is
 * believed only when the peer is a trusted proxy, and then the client is
 * the rightmost address in it that is not itself a trusted proxy.
 * Pure functions.
 */
#ifndef MQGATE_NETADDR_H
#define MQGATE_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NETADDR_TEXT_MAX 64 /* room for any address in text form */

struct netaddr {
	int family;              /* AF_INET or AF_INET6 */
	unsigned char a[16];     /* network order; IPv4 in the first 4 bytes */
};

/* Parses "1.2.3.4", "::1" or "[::1]", with surrounding blanks; an
 * IPv4-mapped IPv6 address becomes IPv4. 0 or -EINVAL. */
int netaddr_parse(const char *s, size_t len, struct netaddr *out);

/* Is addr inside "ADDR" or "ADDR/PREFIX" (an entry as conf checks it)? */
bool netaddr_in(const struct netaddr *addr, const char *cidr);
bool netaddr_in_list(const struct netaddr *addr, char *const *cidrs,
		     size_t n);

/* The client's address as text into out (NETADDR_TEXT_MAX bytes): `peer`
 * (the TCP peer, text) unless it is trusted and `xff` (may be NULL) names
 * someone; then the rightmost X-Forwarded-For entry that is not trusted
 * (or the leftmost, when all are). Malformed entries end the walk: what
 * cannot be parsed is never believed. */
void netaddr_client(const char *peer, const char *xff, char *const *trusted,
		    size_t ntrusted, char *out);

#endif
