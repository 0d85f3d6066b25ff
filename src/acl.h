/*
 * acl.h - topic permissions of one client: the filters it may subscribe
 * inside and publish to (anonymous lists from [auth], or a token's
 * claims). Borrows or owns its strings as said by the creator.
 */
#ifndef MQGATE_ACL_H
#define MQGATE_ACL_H

#include <stdbool.h>
#include <stddef.h>

struct acl {
	char **sub;   /* allowed subscribe filters */
	size_t nsub;
	char **pub;   /* allowed publish filters */
	size_t npub;
	bool owned;   /* acl_free frees the strings */
};

/* A subscribe filter is granted when it is a subset of an allowed filter. */
bool acl_may_subscribe(const struct acl *a, const char *filter);
/* A publish topic is granted when an allowed filter matches it. */
bool acl_may_publish(const struct acl *a, const char *topic);
void acl_free(struct acl *a);

#endif
