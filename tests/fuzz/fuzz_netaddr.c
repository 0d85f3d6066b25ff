/*
 * fuzz_netaddr.c - the X-Forwarded-For header as a client can send it,
 * behind a trusted proxy: the result is always a printable address that
 * came from the header or the peer, never more than NETADDR_TEXT_MAX.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *trusted[] = { "127.0.0.1", "10.0.0.0/8", "2001:db8::/32" };
	char *xff = malloc(size + 1), out[NETADDR_TEXT_MAX];
	struct netaddr a;

	memcpy(xff, data, size);
	xff[size] = 0;
	netaddr_client("127.0.0.1", xff, trusted, 3, out);
	if (!memchr(out, 0, sizeof(out)) ||
	    netaddr_parse(out, strlen(out), &a) < 0)
		abort();
	free(xff);
	return 0;
}
