/*
 * test_netaddr.c - address parsing, CIDR membership and the
 * X-Forwarded-For rule (believed only from trusted proxies; the client is
 * the rightmost untrusted hop; garbage is never believed).
 */
#include <arpa/inet.h>
#include <errno.h>

#include "check.h"
#include "netaddr.h"

static bool in(const char *addr, const char *cidr)
{
	struct netaddr a;

	if (netaddr_parse(addr, strlen(addr), &a) < 0)
		return false;
	return netaddr_in(&a, cidr);
}

static void test_parse(void)
{
	struct netaddr a;

	CHECK_INT(netaddr_parse("10.1.2.3", 8, &a), 0);
	CHECK_INT(a.family, AF_INET);
	CHECK(a.a[0] == 10 && a.a[3] == 3);
	CHECK_INT(netaddr_parse(" ::1 ", 5, &a), 0);
	CHECK_INT(a.family, AF_INET6);
	CHECK_INT(netaddr_parse("[2001:db8::1]", 13, &a), 0);
	CHECK_INT(netaddr_parse("::ffff:192.0.2.7", 16, &a), 0);
	CHECK_INT(a.family, AF_INET);          /* v4-mapped becomes v4 */
	CHECK(a.a[0] == 192 && a.a[3] == 7);
	CHECK_INT(netaddr_parse("", 0, &a), -EINVAL);
	CHECK_INT(netaddr_parse("1.2.3", 5, &a), -EINVAL);
	CHECK_INT(netaddr_parse("1.2.3.4:80", 10, &a), -EINVAL);
	CHECK_INT(netaddr_parse("example.com", 11, &a), -EINVAL);
	CHECK_INT(netaddr_parse("256.1.1.1", 9, &a), -EINVAL);
}

static void test_cidr(void)
{
	CHECK(in("127.0.0.1", "127.0.0.1"));
	CHECK(!in("127.0.0.2", "127.0.0.1"));
	CHECK(in("10.9.8.7", "10.0.0.0/8"));
	CHECK(!in("11.0.0.1", "10.0.0.0/8"));
	CHECK(in("192.168.1.130", "192.168.1.128/25"));
	CHECK(!in("192.168.1.127", "192.168.1.128/25"));
	CHECK(in("1.2.3.4", "0.0.0.0/0"));
	CHECK(!in("::1", "0.0.0.0/0"));        /* families never mix */
	CHECK(in("::1", "::1"));
	CHECK(in("2001:db8::42", "2001:db8::/32"));
	CHECK(!in("2001:db9::42", "2001:db8::/32"));
	CHECK(in("::ffff:10.0.0.1", "10.0.0.0/8"));
	CHECK(!in("10.0.0.1", "10.0.0.0/33"));  /* bad prefix: no match */
	CHECK(!in("10.0.0.1", "10.0.0.0/"));
	CHECK(!in("10.0.0.1", "nonsense"));
}

static const char *client(const char *peer, const char *xff)
{
	static char out[NETADDR_TEXT_MAX];
	static char *trusted[] = { "127.0.0.1", "::1", "10.0.0.0/8" };

	netaddr_client(peer, xff, trusted, 3, out);
	return out;
}

static void test_client(void)
{
	CHECK_STR(client("203.0.113.5", NULL), "203.0.113.5");
	/* Not from a trusted proxy: the header is ignored. */
	CHECK_STR(client("203.0.113.5", "1.1.1.1"), "203.0.113.5");
	/* From a proxy: the rightmost untrusted hop. */
	CHECK_STR(client("127.0.0.1", "198.51.100.7"), "198.51.100.7");
	CHECK_STR(client("127.0.0.1", "6.6.6.6, 198.51.100.7, 10.1.1.1"), "198.51.100.7");
	/* A client cannot hide behind a forged left part. */
	CHECK_STR(client("10.0.0.2", "127.0.0.1, 198.51.100.7"), "198.51.100.7");
	/* All trusted: the leftmost. */
	CHECK_STR(client("127.0.0.1", "10.0.0.1, 10.0.0.2"), "10.0.0.1");
	/* Garbage stops the walk at what was last believed. */
	CHECK_STR(client("127.0.0.1", "6.6.6.6, bogus"), "127.0.0.1");
	CHECK_STR(client("127.0.0.1", "6.6.6.6, bogus, 10.0.0.3"), "10.0.0.3");
	CHECK_STR(client("127.0.0.1", ""), "127.0.0.1");
	CHECK_STR(client("::1", "[2001:db8::9]"), "2001:db8::9");
	CHECK_STR(client("", NULL), "local");   /* unix socket */
}

int main(void)
{
	test_parse();
	test_cidr();
	test_client();
	return check_summary("test_netaddr");
}
