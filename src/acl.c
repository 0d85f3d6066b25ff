/*
 * acl.c - per-client topic permissions (see acl.h).
 */
#include "acl.h"

#include <stdlib.h>

#include "topic.h"

bool acl_may_subscribe(const struct acl *a, const char *filter)
{
	for (size_t i = 0; a && i < a->nsub; i++)
		if (topic_filter_subset(filter, a->sub[i]))
			return true;
	return false;
}

bool acl_may_publish(const struct acl *a, const char *topic)
{
	for (size_t i = 0; a && i < a->npub; i++)
		if (topic_matches(a->pub[i], topic))
			return true;
	return false;
}

void acl_free(struct acl *a)
{
	if (!a)
		return;
	if (a->owned) {
		for (size_t i = 0; i < a->nsub; i++)
			free(a->sub[i]);
		for (size_t i = 0; i < a->npub; i++)
			free(a->pub[i]);
		free(a->sub);
		free(a->pub);
	}
	a->sub = a->pub = NULL;
	a->nsub = a->npub = 0;
}
