/*
 * plugin_bad.c - broken backend plugins that src/backend.c must refuse,
 * for test_backend. One source, built once per variant (tests/unit/
 * local.mk defines one of these, and the module is named after it):
 *   PLUGIN_BAD_ABI         badabi.so: an ABI number from the future
 *   PLUGIN_BAD_SMALL       small.so: a struct size that ends before
 *                          the functions the host needs
 *   PLUGIN_BAD_NOSYM       nosym.so: no mqgate_backend symbol at all
 *   PLUGIN_BAD_INCOMPLETE  incomplete.so: no create function
 *   PLUGIN_BAD_WRONGNAME   wrongname.so: its name is not its type
 * None of them is ever started: every function fails.
 */
#include <stddef.h>
#include <stdio.h>

#include "mqgate/backend.h"

#if defined(PLUGIN_BAD_ABI)
#define BAD_NAME "badabi"
#define BAD_ABI (MQGATE_BACKEND_ABI + 98)
#elif defined(PLUGIN_BAD_SMALL)
#define BAD_NAME "small"
#define BAD_SIZE offsetof(struct mqgate_backend, publish)
#elif defined(PLUGIN_BAD_INCOMPLETE)
#define BAD_NAME "incomplete"
#define BAD_NO_CREATE
#elif defined(PLUGIN_BAD_WRONGNAME)
#define BAD_NAME "somethingelse"
#elif !defined(PLUGIN_BAD_NOSYM)
#error "define one PLUGIN_BAD_* variant"
#endif

#ifndef BAD_ABI
#define BAD_ABI MQGATE_BACKEND_ABI
#endif
#ifndef BAD_SIZE
#define BAD_SIZE sizeof(struct mqgate_backend)
#endif

static const struct mqgate_key bad_keys[] = {
	{ NULL, MQGATE_KEY_STRING, NULL, 0, 0, NULL },
};

static int bad_check(const struct mqgate_broker_conf *conf, char *err,
		     size_t errlen)
{
	(void)conf;
	snprintf(err, errlen, "a refused plugin was checked");
	return -1;
}

#ifndef BAD_NO_CREATE
static void *bad_create(const struct mqgate_host *host,
			struct mqgate_broker *broker,
			const struct mqgate_broker_conf *conf, char *err,
			size_t errlen)
{
	(void)host;
	(void)broker;
	(void)conf;
	snprintf(err, errlen, "a refused plugin was created");
	return NULL;
}
#endif

static int bad_start(void *instance)
{
	(void)instance;
	return -1;
}

static int bad_publish(void *instance, const char *topic, const void *payload,
		       size_t len, int qos, bool retain, uint64_t token)
{
	(void)instance;
	(void)topic;
	(void)payload;
	(void)len;
	(void)qos;
	(void)retain;
	(void)token;
	return -1;
}

static void bad_destroy(void *instance)
{
	(void)instance;
}

#ifdef PLUGIN_BAD_NOSYM
/* Exported under another name: dlsym(mqgate_backend) finds nothing. */
__attribute__((visibility("default")))
const struct mqgate_backend not_the_backend = {
	.abi = MQGATE_BACKEND_ABI,
	.size = sizeof(struct mqgate_backend),
	.name = "nosym",
	.version = "0",
	.keys = bad_keys,
	.check = bad_check,
	.create = bad_create,
	.start = bad_start,
	.publish = bad_publish,
	.destroy = bad_destroy,
};
#else
__attribute__((visibility("default")))
const struct mqgate_backend mqgate_backend = {
	.abi = BAD_ABI,
	.size = BAD_SIZE,
	.name = BAD_NAME,
	.version = "0",
	.keys = bad_keys,
	.check = bad_check,
#ifdef BAD_NO_CREATE
	.create = NULL,
#else
	.create = bad_create,
#endif
	.start = bad_start,
	.publish = bad_publish,
	.destroy = bad_destroy,
};
#endif
