/*
 * test_conf.c - the config file of CONFIG.md: every default, every key's
 * good and bad values, each error message with its exact FILE:LINE:,
 * ${ENV} expansion, secrets from files, inline comments (the lone `#`
 * filter cases), several errors in one file, mount rules, relative paths,
 * conf_value_parse() for each plugin key type, and the installed sample
 * etc/mqgate.conf (found through $top_srcdir), which must load cleanly.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "conf.h"
#include "log.h"
#include "topic.h"

#ifndef PKGDATADIR
#define PKGDATADIR "/usr/local/share/mqgate"
#endif

static char *errtext;
static char *cwd;      /* the test's working directory */
static char *tmpdir;   /* files made by this test */

/* Loads text as "t.conf"; what it reports lands in errtext. */
static int load(const char *text, struct conf **c)
{
	size_t len = 0;
	FILE *f;
	int r;

	free(errtext);
	errtext = NULL;
	f = open_memstream(&errtext, &len);
	if (!f)
		return -ENOMEM;
	*c = NULL;
	r = conf_load_string("t.conf", text, strlen(text), f, c);
	fclose(f);
	return r;
}

static int load_file(const char *path, struct conf **c)
{
	size_t len = 0;
	FILE *f;
	int r;

	free(errtext);
	errtext = NULL;
	f = open_memstream(&errtext, &len);
	if (!f)
		return -ENOMEM;
	*c = NULL;
	r = conf_load(path, f, c);
	fclose(f);
	return r;
}

/* The text must fail with exactly `want` reported. */
#define CHECK_ERR(text, want)                                                \
	do {                                                                 \
		struct conf *c_;                                             \
		CHECK_INT(load(text, &c_), -EINVAL);                         \
		CHECK(c_ == NULL);                                           \
		CHECK_STR(errtext, want);                                    \
		conf_free(c_);                                               \
	} while (0)

/* The text must load with nothing reported; the conf goes to *c. */
#define CHECK_OK(text, c)                                                    \
	do {                                                                 \
		CHECK_INT(load(text, &(c)), 0);                              \
		CHECK_STR(errtext, "");                                      \
	} while (0)

/* Writes a file under tmpdir; returns its malloc'd path. */
static char *write_file(const char *name, const char *text, size_t len)
{
	char *path;
	FILE *f;

	if (asprintf(&path, "%s/%s", tmpdir, name) < 0)
		return NULL;
	f = fopen(path, "w");
	if (!f) {
		free(path);
		return NULL;
	}
	fwrite(text, 1, len, f);
	fclose(f);
	return path;
}

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *str_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	return r < 0 ? NULL : s;
}

/* ---- defaults ----------------------------------------------------------- */

static void test_defaults(void)
{
	struct conf *c;
	const struct conf_server *s;
	const struct conf_auth *a;

	CHECK_OK("", c);
	if (!c)
		return;
	s = &c->server;
	a = &c->auth;
	CHECK_STR(c->file, "t.conf");
	CHECK_INT(s->nlisten, 1);
	CHECK_INT(s->listen[0].kind, LISTEN_IPV4);
	CHECK_STR(s->listen[0].host, "127.0.0.1");
	CHECK_INT(s->listen[0].port, 8080);
	CHECK_INT(s->listen[0].line, 0);
	CHECK_STR(s->docroot, PKGDATADIR "/www");
	CHECK_INT(s->origins.n, 1);
	if (s->origins.n == 1)
		CHECK_STR(s->origins.v[0], "self");
	CHECK_STR(s->tls_cert_file, "");
	CHECK_STR(s->tls_key_file, "");
	CHECK_INT(s->keepalive_ms, 15000);
	CHECK_INT(s->history, 10000);
	CHECK_INT(s->history_bytes, 64 << 20);
	CHECK_INT(s->cache, 100000);
	CHECK_INT(s->cache_bytes, 64 << 20);
	CHECK_INT(s->queue, 1000);
	CHECK_INT(s->queue_bytes, 4 << 20);
	CHECK_INT(s->slow_client, SLOW_CLIENT_DROP_OLDEST);
	CHECK_INT(s->max_clients, 10000);
	CHECK_INT(s->max_message, 256 << 10);
	CHECK_INT(s->max_subscriptions, 100);
	CHECK_INT(s->publish_rate, 50);
	CHECK_INT(s->publish_rate_ms, 1000);
	CHECK_INT(s->publish_burst, 50);
	CHECK_INT(s->trusted_proxies.n, 2);
	if (s->trusted_proxies.n == 2) {
		CHECK_STR(s->trusted_proxies.v[0], "127.0.0.1");
		CHECK_STR(s->trusted_proxies.v[1], "::1");
	}
	CHECK_STR(s->plugin_dir, "");
	CHECK_STR(s->user, "");
	CHECK_INT(s->log_level, LOG_LEVEL_INFO);
	CHECK_INT(a->anonymous_subscribe.n, 0);
	CHECK_INT(a->anonymous_publish.n, 0);
	CHECK(!a->anonymous_subscribe_set);
	CHECK(!a->anonymous_publish_set);
	CHECK(a->jwt_secret == NULL);
	CHECK(a->jwt_public_key == NULL);
	CHECK_STR(a->jwt_audience, "");
	CHECK_STR(a->jwt_issuer, "");
	CHECK_STR(a->jwt_subscribe_claim, "sub_topics");
	CHECK_STR(a->jwt_publish_claim, "pub_topics");
	CHECK_INT(c->nbrokers, 0);
	conf_free(c);

	/* Empty sections change nothing either. */
	CHECK_OK("[server]\n[auth]\n", c);
	if (c) {
		CHECK_INT(c->server.queue, 1000);
		CHECK_INT(c->server.nlisten, 1);
	}
	conf_free(c);
}

/* ---- [server] keys ------------------------------------------------------ */

static void test_listen(void)
{
	struct conf *c;

	CHECK_OK("[server]\nlisten = 0.0.0.0:80\nlisten = [::1]:8443\n"
		 "listen = unix:/run/mqgate.sock\nlisten = *:8080\n"
		 "listen = :9000\nlisten = localhost:1\nlisten = [::]:65535\n", c);
	if (c && c->server.nlisten == 7) {
		const struct conf_listen *l = c->server.listen;

		CHECK_INT(l[0].kind, LISTEN_IPV4);
		CHECK_STR(l[0].host, "0.0.0.0");
		CHECK_INT(l[0].port, 80);
		CHECK_INT(l[0].line, 2);
		CHECK_INT(l[1].kind, LISTEN_IPV6);
		CHECK_STR(l[1].host, "::1");
		CHECK_INT(l[1].port, 8443);
		CHECK_INT(l[1].line, 3);
		CHECK_INT(l[2].kind, LISTEN_UNIX);
		CHECK_STR(l[2].host, "/run/mqgate.sock");
		CHECK_INT(l[2].port, 0);
		CHECK_INT(l[3].kind, LISTEN_IPV4);
		CHECK_STR(l[3].host, "0.0.0.0");
		CHECK_INT(l[3].port, 8080);
		CHECK_STR(l[4].host, "0.0.0.0");
		CHECK_INT(l[4].port, 9000);
		CHECK_STR(l[5].host, "127.0.0.1");
		CHECK_INT(l[5].port, 1);
		CHECK_INT(l[6].kind, LISTEN_IPV6);
		CHECK_STR(l[6].host, "::");
		CHECK_INT(l[6].port, 65535);
	} else {
		CHECK(0);
	}
	conf_free(c);

	CHECK_ERR("[server]\nlisten = foo\n",
		  "t.conf:2: bad value \"foo\" for \"listen\": expected "
		  "host:port, [IPv6]:port, *:port or unix:/path\n");
	CHECK_ERR("[server]\nlisten = 1.2.3.4:0\n",
		  "t.conf:2: bad value \"1.2.3.4:0\" for \"listen\": expected a "
		  "port number from 1 to 65535\n");
	CHECK_ERR("[server]\nlisten = 1.2.3.4:65536\n",
		  "t.conf:2: bad value \"1.2.3.4:65536\" for \"listen\": expected "
		  "a port number from 1 to 65535\n");
	CHECK_ERR("[server]\nlisten = 1.2.3.4:\n",
		  "t.conf:2: bad value \"1.2.3.4:\" for \"listen\": expected a "
		  "port number from 1 to 65535\n");
	CHECK_ERR("[server]\nlisten = 1.2.3.4:80x\n",
		  "t.conf:2: bad value \"1.2.3.4:80x\" for \"listen\": expected "
		  "a port number from 1 to 65535\n");
	CHECK_ERR("[server]\nlisten = example.com:80\n",
		  "t.conf:2: bad value \"example.com:80\" for \"listen\": "
		  "expected a numeric IPv4 address, *, localhost or [IPv6]\n");
	CHECK_ERR("[server]\nlisten = 1.2.3:80\n",
		  "t.conf:2: bad value \"1.2.3:80\" for \"listen\": "
		  "expected a numeric IPv4 address, *, localhost or [IPv6]\n");
	CHECK_ERR("[server]\nlisten = ::1:80\n",
		  "t.conf:2: bad value \"::1:80\" for \"listen\": an IPv6 "
		  "address goes in brackets: [::1]:8080\n");
	CHECK_ERR("[server]\nlisten = [::1]80\n",
		  "t.conf:2: bad value \"[::1]80\" for \"listen\": expected "
		  "host:port, [IPv6]:port, *:port or unix:/path\n");
	CHECK_ERR("[server]\nlisten = [1.2.3.4]:80\n",
		  "t.conf:2: bad value \"[1.2.3.4]:80\" for \"listen\": expected "
		  "an IPv6 address in brackets\n");
	CHECK_ERR("[server]\nlisten = unix:run/x.sock\n",
		  "t.conf:2: bad value \"unix:run/x.sock\" for \"listen\": a unix "
		  "socket path must be absolute\n");
	CHECK_ERR("[server]\nlisten =\n",
		  "t.conf:2: bad value \"\" for \"listen\": expected host:port, "
		  "[IPv6]:port, *:port or unix:/path\n");
	CHECK_ERR("[server]\nlisten = 127.0.0.1:80\nlisten = localhost:80\n",
		  "t.conf:3: listener \"localhost:80\" given twice (first on "
		  "line 2)\n");
	{
		char path[200], *text;

		memset(path, 'a', sizeof(path) - 1);
		path[0] = '/';
		path[sizeof(path) - 1] = '\0';
		text = str_printf("[server]\nlisten = unix:%s\n", path);
		CHECK_INT(load(text, &c), -EINVAL);
		CHECK(errtext && strstr(errtext, "t.conf:2: bad value") &&
		      strstr(errtext, "shorter than 108 bytes"));
		conf_free(c);
		free(text);
	}
}

static void test_paths(void)
{
	struct conf *c;
	char *want;

	CHECK_OK("[server]\ndocroot = /srv/www\nplugin_dir = /opt/p\n"
		 "tls_cert_file = /etc/c.pem\ntls_key_file = /etc/k.pem\n", c);
	if (c) {
		CHECK_STR(c->server.docroot, "/srv/www");
		CHECK_STR(c->server.plugin_dir, "/opt/p");
		CHECK_STR(c->server.tls_cert_file, "/etc/c.pem");
		CHECK_STR(c->server.tls_key_file, "/etc/k.pem");
	}
	conf_free(c);
	/* From a string, relative paths are against the current directory. */
	CHECK_OK("[server]\ndocroot = www\nplugin_dir = lib/p\n", c);
	want = str_printf("%s/www", cwd);
	if (c) {
		CHECK_STR(c->server.docroot, want);
		free(want);
		want = str_printf("%s/lib/p", cwd);
		CHECK_STR(c->server.plugin_dir, want);
	}
	free(want);
	conf_free(c);
	/* Empty disables static files. */
	CHECK_OK("[server]\ndocroot =\n", c);
	if (c)
		CHECK_STR(c->server.docroot, "");
	conf_free(c);
	CHECK_ERR("[server]\ntls_cert_file = /a.pem\n",
		  "t.conf:2: tls_cert_file and tls_key_file go together\n");
	CHECK_ERR("[server]\nuser = x\ntls_key_file = /a.pem\n",
		  "t.conf:3: tls_cert_file and tls_key_file go together\n");
	CHECK_ERR("[server]\ndocroot = /a\ndocroot = /b\n",
		  "t.conf:3: \"docroot\" given twice in [server] (first on line "
		  "2)\n");
}

static void test_origins_proxies(void)
{
	struct conf *c;

	CHECK_OK("[server]\norigins = http://a.example https://b.example:8443\n"
		 "origins = http://c, http://[::1]:80\n", c);
	if (c && c->server.origins.n == 4) {
		CHECK_STR(c->server.origins.v[0], "http://a.example");
		CHECK_STR(c->server.origins.v[1], "https://b.example:8443");
		CHECK_STR(c->server.origins.v[2], "http://c");
		CHECK_STR(c->server.origins.v[3], "http://[::1]:80");
	} else {
		CHECK(0);
	}
	conf_free(c);
	CHECK_OK("[server]\norigins = *\n", c);
	if (c && c->server.origins.n == 1)
		CHECK_STR(c->server.origins.v[0], "*");
	else
		CHECK(0);
	conf_free(c);
	CHECK_OK("[server]\norigins =\n", c);
	if (c)
		CHECK_INT(c->server.origins.n, 0);
	conf_free(c);
	CHECK_ERR("[server]\norigins = http://a.example/\n",
		  "t.conf:2: bad origin \"http://a.example/\": expected *, self or "
		  "scheme://host[:port] without a path\n");
	CHECK_ERR("[server]\norigins = localhost:8080\n",
		  "t.conf:2: bad origin \"localhost:8080\": expected *, self or "
		  "scheme://host[:port] without a path\n");
	CHECK_ERR("[server]\norigins = http://\n",
		  "t.conf:2: bad origin \"http://\": expected *, self or "
		  "scheme://host[:port] without a path\n");

	CHECK_OK("[server]\ntrusted_proxies = 10.0.0.0/8 fd00::/8, 192.168.1.1\n",
		 c);
	if (c && c->server.trusted_proxies.n == 3) {
		CHECK_STR(c->server.trusted_proxies.v[0], "10.0.0.0/8");
		CHECK_STR(c->server.trusted_proxies.v[1], "fd00::/8");
		CHECK_STR(c->server.trusted_proxies.v[2], "192.168.1.1");
	} else {
		CHECK(0);
	}
	conf_free(c);
	/* Given empty: nothing is trusted (the default does not apply). */
	CHECK_OK("[server]\ntrusted_proxies =\n", c);
	if (c)
		CHECK_INT(c->server.trusted_proxies.n, 0);
	conf_free(c);
	CHECK_ERR("[server]\ntrusted_proxies = 10.0.0.0/33\n",
		  "t.conf:2: bad address \"10.0.0.0/33\" in \"trusted_proxies\": "
		  "expected an IPv4 or IPv6 address, optionally /prefix\n");
	CHECK_ERR("[server]\ntrusted_proxies = ::1/129\n",
		  "t.conf:2: bad address \"::1/129\" in \"trusted_proxies\": "
		  "expected an IPv4 or IPv6 address, optionally /prefix\n");
	CHECK_ERR("[server]\ntrusted_proxies = proxy.example\n",
		  "t.conf:2: bad address \"proxy.example\" in \"trusted_proxies\": "
		  "expected an IPv4 or IPv6 address, optionally /prefix\n");
	CHECK_ERR("[server]\ntrusted_proxies = 1.2.3.4/\n",
		  "t.conf:2: bad address \"1.2.3.4/\" in \"trusted_proxies\": "
		  "expected an IPv4 or IPv6 address, optionally /prefix\n");
}

/* A numeric key: good values with what they store, bad ones with the
 * message after "t.conf:2: ". */
struct num_case {
	const char *line;
	size_t offset;      /* of the field in struct conf_server */
	int width;          /* 8: uint64_t / int64_t */
	long long want;     /* -1 = an error, see msg */
	const char *msg;
};

#define SO(f) offsetof(struct conf_server, f)

static const struct num_case num_cases[] = {
	{ "keepalive = 30s", SO(keepalive_ms), 8, 30000, NULL },
	{ "keepalive = 500ms", SO(keepalive_ms), 8, 500, NULL },
	{ "keepalive = 2m", SO(keepalive_ms), 8, 120000, NULL },
	{ "keepalive = 1h", SO(keepalive_ms), 8, 3600000, NULL },
	{ "keepalive = 15", SO(keepalive_ms), 8, 15000, NULL },
	{ "keepalive = 0", SO(keepalive_ms), 8, 0, NULL },
	{ "keepalive = 10 S", SO(keepalive_ms), 8, 10000, NULL },
	{ "keepalive = 2h", 0, 0, -1,
	  "value \"2h\" for \"keepalive\" is out of range (0ms to 1h)" },
	{ "keepalive = abc", 0, 0, -1,
	  "bad value \"abc\" for \"keepalive\": expected a duration: a number "
	  "with an optional ms, s, m or h suffix" },
	{ "keepalive = 10x", 0, 0, -1,
	  "bad value \"10x\" for \"keepalive\": expected a duration: a number "
	  "with an optional ms, s, m or h suffix" },
	{ "keepalive = -1s", 0, 0, -1,
	  "bad value \"-1s\" for \"keepalive\": expected a duration: a number "
	  "with an optional ms, s, m or h suffix" },
	{ "keepalive =", 0, 0, -1,
	  "bad value \"\" for \"keepalive\": expected a duration: a number "
	  "with an optional ms, s, m or h suffix" },
	{ "history = 0", SO(history), 8, 0, NULL },
	{ "history = 5", SO(history), 8, 5, NULL },
	{ "history = 100000000", SO(history), 8, 100000000, NULL },
	{ "history = 100000001", 0, 0, -1,
	  "value \"100000001\" for \"history\" is out of range (0 to "
	  "100000000)" },
	{ "history = -1", 0, 0, -1,
	  "bad value \"-1\" for \"history\": expected a number" },
	{ "history = ten", 0, 0, -1,
	  "bad value \"ten\" for \"history\": expected a number" },
	{ "history = 10k", 0, 0, -1,
	  "bad value \"10k\" for \"history\": expected an integer" },
	{ "history = 99999999999999999999", 0, 0, -1,
	  "bad value \"99999999999999999999\" for \"history\": number too "
	  "large" },
	{ "history_bytes = 1G", SO(history_bytes), 8, 1LL << 30, NULL },
	{ "history_bytes = 512k", SO(history_bytes), 8, 512 << 10, NULL },
	{ "history_bytes = 10MB", SO(history_bytes), 8, 10 << 20, NULL },
	{ "history_bytes = 2gb", SO(history_bytes), 8, 2LL << 30, NULL },
	{ "history_bytes = 100", SO(history_bytes), 8, 100, NULL },
	{ "history_bytes = 7B", SO(history_bytes), 8, 7, NULL },
	{ "history_bytes = 0", SO(history_bytes), 8, 0, NULL },
	{ "history_bytes = 65G", 0, 0, -1,
	  "value \"65G\" for \"history_bytes\" is out of range (0 to 64G)" },
	{ "history_bytes = 1T", 0, 0, -1,
	  "bad value \"1T\" for \"history_bytes\": expected a size: a number "
	  "with an optional K, M or G suffix" },
	{ "history_bytes = 1KBB", 0, 0, -1,
	  "bad value \"1KBB\" for \"history_bytes\": expected a size: a "
	  "number with an optional K, M or G suffix" },
	{ "history_bytes = M", 0, 0, -1,
	  "bad value \"M\" for \"history_bytes\": expected a size: a number "
	  "with an optional K, M or G suffix" },
	{ "cache = 7", SO(cache), 8, 7, NULL },
	{ "cache = 0", SO(cache), 8, 0, NULL },
	{ "cache = x", 0, 0, -1,
	  "bad value \"x\" for \"cache\": expected a number" },
	{ "cache = 100000001", 0, 0, -1,
	  "value \"100000001\" for \"cache\" is out of range (0 to "
	  "100000000)" },
	{ "cache_bytes = 1M", SO(cache_bytes), 8, 1 << 20, NULL },
	{ "cache_bytes = 1Q", 0, 0, -1,
	  "bad value \"1Q\" for \"cache_bytes\": expected a size: a number "
	  "with an optional K, M or G suffix" },
	{ "queue = 1", SO(queue), 8, 1, NULL },
	{ "queue = 1000000", SO(queue), 8, 1000000, NULL },
	{ "queue = 0", 0, 0, -1,
	  "value \"0\" for \"queue\" is out of range (1 to 1000000)" },
	{ "queue = 1000001", 0, 0, -1,
	  "value \"1000001\" for \"queue\" is out of range (1 to 1000000)" },
	{ "queue_bytes = 1K", SO(queue_bytes), 8, 1024, NULL },
	{ "queue_bytes = 1G", SO(queue_bytes), 8, 1LL << 30, NULL },
	{ "queue_bytes = 1023", 0, 0, -1,
	  "value \"1023\" for \"queue_bytes\" is out of range (1K to 1G)" },
	{ "queue_bytes = 2G", 0, 0, -1,
	  "value \"2G\" for \"queue_bytes\" is out of range (1K to 1G)" },
	{ "max_clients = 1", SO(max_clients), 8, 1, NULL },
	{ "max_clients = 0", 0, 0, -1,
	  "value \"0\" for \"max_clients\" is out of range (1 to 1000000)" },
	{ "max_message = 1M", SO(max_message), 8, 1 << 20, NULL },
	{ "max_message = 0", 0, 0, -1,
	  "value \"0\" for \"max_message\" is out of range (1 to 256M)" },
	{ "max_message = 257M", 0, 0, -1,
	  "value \"257M\" for \"max_message\" is out of range (1 to 256M)" },
	{ "max_subscriptions = 5", SO(max_subscriptions), 8, 5, NULL },
	{ "max_subscriptions = 0", 0, 0, -1,
	  "value \"0\" for \"max_subscriptions\" is out of range (1 to "
	  "1000000)" },
	{ "publish_burst = 7", SO(publish_burst), 8, 7, NULL },
	{ "publish_burst = 0", 0, 0, -1,
	  "value \"0\" for \"publish_burst\" is out of range (1 to 1000000)" },
	{ "slow_client = drop_oldest", SO(slow_client), 4,
	  SLOW_CLIENT_DROP_OLDEST, NULL },
	{ "slow_client = conflate", SO(slow_client), 4, SLOW_CLIENT_CONFLATE,
	  NULL },
	{ "slow_client = disconnect", SO(slow_client), 4,
	  SLOW_CLIENT_DISCONNECT, NULL },
	{ "slow_client = drop", 0, 0, -1,
	  "bad value \"drop\" for \"slow_client\": expected drop_oldest, "
	  "conflate or disconnect" },
	{ "log_level = error", SO(log_level), 4, LOG_LEVEL_ERR, NULL },
	{ "log_level = warning", SO(log_level), 4, LOG_LEVEL_WARNING, NULL },
	{ "log_level = notice", SO(log_level), 4, LOG_LEVEL_NOTICE, NULL },
	{ "log_level = info", SO(log_level), 4, LOG_LEVEL_INFO, NULL },
	{ "log_level = debug", SO(log_level), 4, LOG_LEVEL_DEBUG, NULL },
	{ "log_level = verbose", 0, 0, -1,
	  "bad value \"verbose\" for \"log_level\": expected error, warning, "
	  "notice, info or debug" },
};

static void test_numbers(void)
{
	for (size_t i = 0; i < sizeof(num_cases) / sizeof(num_cases[0]); i++) {
		const struct num_case *k = &num_cases[i];
		char *text = str_printf("[server]\n%s\n", k->line);
		struct conf *c;
		int r = load(text, &c);

		if (k->want == -1) {
			char *want = str_printf("t.conf:2: %s\n", k->msg);

			if (r != -EINVAL || !errtext || strcmp(errtext, want))
				fprintf(stderr, "case \"%s\":\n", k->line);
			CHECK_INT(r, -EINVAL);
			CHECK_STR(errtext, want);
			free(want);
		} else {
			long long got = -1;

			if (r != 0)
				fprintf(stderr, "case \"%s\": %s", k->line,
					errtext);
			CHECK_INT(r, 0);
			if (c && k->width == 8)
				memcpy(&got, (char *)&c->server + k->offset, 8);
			else if (c) {
				int v;

				memcpy(&v, (char *)&c->server + k->offset, 4);
				got = v;
			}
			if (got != k->want)
				fprintf(stderr, "case \"%s\":\n", k->line);
			CHECK_INT(got, k->want);
		}
		conf_free(c);
		free(text);
	}
}

static void test_rate(void)
{
	struct conf *c;

	CHECK_OK("[server]\npublish_rate = 10/m\n", c);
	if (c) {
		CHECK_INT(c->server.publish_rate, 10);
		CHECK_INT(c->server.publish_rate_ms, 60000);
		CHECK_INT(c->server.publish_burst, 10);
	}
	conf_free(c);
	CHECK_OK("[server]\npublish_rate = 5/h\npublish_burst = 2\n", c);
	if (c) {
		CHECK_INT(c->server.publish_rate, 5);
		CHECK_INT(c->server.publish_rate_ms, 3600000);
		CHECK_INT(c->server.publish_burst, 2);
	}
	conf_free(c);
	/* The burst may come before the rate. */
	CHECK_OK("[server]\npublish_burst = 3\npublish_rate = 100/s\n", c);
	if (c) {
		CHECK_INT(c->server.publish_rate, 100);
		CHECK_INT(c->server.publish_rate_ms, 1000);
		CHECK_INT(c->server.publish_burst, 3);
	}
	conf_free(c);
	CHECK_OK("[server]\npublish_rate = 0\n", c);
	if (c) {
		CHECK_INT(c->server.publish_rate, 0);
		CHECK_INT(c->server.publish_rate_ms, 0);
		CHECK_INT(c->server.publish_burst, 0);
	}
	conf_free(c);
	CHECK_ERR("[server]\npublish_rate = 10\n",
		  "t.conf:2: bad value \"10\" for \"publish_rate\": expected N/s, "
		  "N/m, N/h or 0\n");
	CHECK_ERR("[server]\npublish_rate = 10/d\n",
		  "t.conf:2: bad value \"10/d\" for \"publish_rate\": expected "
		  "N/s, N/m, N/h or 0\n");
	CHECK_ERR("[server]\npublish_rate = /s\n",
		  "t.conf:2: bad value \"/s\" for \"publish_rate\": expected N/s, "
		  "N/m, N/h or 0\n");
	CHECK_ERR("[server]\npublish_rate = 0/s\n",
		  "t.conf:2: value \"0/s\" for \"publish_rate\" is out of range "
		  "(1 to 1000000 per period, or 0)\n");
	CHECK_ERR("[server]\npublish_rate = 1000001/s\n",
		  "t.conf:2: value \"1000001/s\" for \"publish_rate\" is out of "
		  "range (1 to 1000000 per period, or 0)\n");
}

static void test_strings(void)
{
	struct conf *c;

	CHECK_OK("[server]\nuser = mqgate\n", c);
	if (c)
		CHECK_STR(c->server.user, "mqgate");
	conf_free(c);
	CHECK_OK("[auth]\njwt_audience = api\njwt_issuer = https://id\n"
		 "jwt_subscribe_claim = r\njwt_publish_claim = w\n", c);
	if (c) {
		CHECK_STR(c->auth.jwt_audience, "api");
		CHECK_STR(c->auth.jwt_issuer, "https://id");
		CHECK_STR(c->auth.jwt_subscribe_claim, "r");
		CHECK_STR(c->auth.jwt_publish_claim, "w");
	}
	conf_free(c);
	CHECK_ERR("[auth]\njwt_subscribe_claim =\n",
		  "t.conf:2: \"jwt_subscribe_claim\" must not be empty\n");
	CHECK_ERR("[auth]\njwt_publish_claim =   # none\n",
		  "t.conf:2: \"jwt_publish_claim\" must not be empty\n");
}

/* ---- [auth] ------------------------------------------------------------- */

static void test_anonymous(void)
{
	struct conf *c;
	const char *why = NULL;
	char *want;

	CHECK_OK("[auth]\nanonymous_subscribe = #\n", c);
	if (c && c->auth.anonymous_subscribe.n == 1) {
		CHECK_STR(c->auth.anonymous_subscribe.v[0], "#");
		CHECK(c->auth.anonymous_subscribe_set);
		CHECK(!c->auth.anonymous_publish_set);
	} else {
		CHECK(0);
	}
	conf_free(c);
	/* The lone # with a comment after it; several per line; repeats. */
	CHECK_OK("[auth]\nanonymous_subscribe = #   # everything\n"
		 "anonymous_publish = cmd/# chat/+/in\n"
		 "anonymous_publish = x ; more\n", c);
	if (c && c->auth.anonymous_subscribe.n == 1 &&
	    c->auth.anonymous_publish.n == 3) {
		CHECK_STR(c->auth.anonymous_subscribe.v[0], "#");
		CHECK_STR(c->auth.anonymous_publish.v[0], "cmd/#");
		CHECK_STR(c->auth.anonymous_publish.v[1], "chat/+/in");
		CHECK_STR(c->auth.anonymous_publish.v[2], "x");
		CHECK(c->auth.anonymous_publish_set);
	} else {
		CHECK(0);
	}
	conf_free(c);
	CHECK_OK("[auth]\nanonymous_publish = #\n", c);
	if (c && c->auth.anonymous_publish.n == 1)
		CHECK_STR(c->auth.anonymous_publish.v[0], "#");
	else
		CHECK(0);
	conf_free(c);
	/* Empty: explicitly empty. "#comment" is a comment, not a filter. */
	CHECK_OK("[auth]\nanonymous_subscribe =\nanonymous_publish = #comment\n",
		 c);
	if (c) {
		CHECK(c->auth.anonymous_subscribe_set);
		CHECK_INT(c->auth.anonymous_subscribe.n, 0);
		CHECK(c->auth.anonymous_publish_set);
		CHECK_INT(c->auth.anonymous_publish.n, 0);
	}
	conf_free(c);
	/* "# #" keeps the first # and drops the comment. */
	CHECK_OK("[auth]\nanonymous_subscribe =\t# #\n", c);
	if (c && c->auth.anonymous_subscribe.n == 1)
		CHECK_STR(c->auth.anonymous_subscribe.v[0], "#");
	else
		CHECK(0);
	conf_free(c);

	CHECK(topic_validate("a/#/b", 5, TOPIC_FILTER, &why) < 0);
	want = str_printf("t.conf:2: bad topic filter \"a/#/b\" in "
			  "\"anonymous_subscribe\": %s\n", why);
	CHECK_ERR("[auth]\nanonymous_subscribe = a/#/b\n", want);
	free(want);
	CHECK(topic_validate("a+", 2, TOPIC_FILTER, &why) < 0);
	want = str_printf("t.conf:3: bad topic filter \"a+\" in "
			  "\"anonymous_publish\": %s\n", why);
	CHECK_ERR("[auth]\nanonymous_publish = ok/#\nanonymous_publish = a+\n",
		  want);
	free(want);
}

static void test_secrets(void)
{
	struct conf *c;
	char *sec = write_file("secret", "s3cret\n", 7);
	char *crlf = write_file("crlf", "abc\r\n", 5);
	char *two = write_file("two", "x\n\n", 3);
	char *empty = write_file("empty", "", 0);
	char *nul = write_file("nul", "a\0b", 3);
	static const char pem_text[] = "-----BEGIN PUBLIC KEY-----\nAAAA\n"
				       "-----END PUBLIC KEY-----\n";
	char *pem = write_file("key.pem", pem_text, sizeof(pem_text) - 1);
	char *missing = str_printf("%s/missing", tmpdir);
	char *text, *want, *s = NULL;
	char *big = malloc((1 << 20) + 2);

	if (!sec || !crlf || !two || !empty || !nul || !pem || !big) {
		CHECK(0);
		goto out;
	}
	/* conf_read_secret itself */
	CHECK_INT(conf_read_secret(sec, &s), 0);
	CHECK_STR(s, "s3cret");
	free(s);
	s = NULL;
	CHECK_INT(conf_read_secret(crlf, &s), 0);
	CHECK_STR(s, "abc");
	free(s);
	s = NULL;
	CHECK_INT(conf_read_secret(two, &s), 0);
	CHECK_STR(s, "x\n");
	free(s);
	s = NULL;
	CHECK_INT(conf_read_secret(empty, &s), 0);
	CHECK_STR(s, "");
	free(s);
	s = NULL;
	CHECK_INT(conf_read_secret(nul, &s), -EINVAL);
	CHECK_INT(conf_read_secret(missing, &s), -ENOENT);
	CHECK_INT(conf_read_secret(tmpdir, &s), -EISDIR);
	memset(big, 'k', (1 << 20) + 1);
	free(write_file("big", big, (1 << 20) + 1));
	text = str_printf("%s/big", tmpdir);
	CHECK_INT(conf_read_secret(text, &s), -EFBIG);
	free(text);
	/* exactly 1M is fine */
	free(write_file("big", big, 1 << 20));
	text = str_printf("%s/big", tmpdir);
	CHECK_INT(conf_read_secret(text, &s), 0);
	CHECK_INT(s ? strlen(s) : 0, 1 << 20);
	free(s);
	s = NULL;
	free(text);

	text = str_printf("[auth]\njwt_secret_file = %s\n", sec);
	CHECK_OK(text, c);
	if (c)
		CHECK_STR(c->auth.jwt_secret, "s3cret");
	conf_free(c);
	free(text);
	text = str_printf("[auth]\njwt_public_key_file = %s\n", pem);
	CHECK_OK(text, c);
	if (c) {
		CHECK(c->auth.jwt_secret == NULL);
		CHECK_STR(c->auth.jwt_public_key,
			  "-----BEGIN PUBLIC KEY-----\nAAAA\n"
			  "-----END PUBLIC KEY-----");
	}
	conf_free(c);
	free(text);
	/* Empty value: unset. */
	CHECK_OK("[auth]\njwt_secret_file =\njwt_public_key_file =\n", c);
	if (c) {
		CHECK(c->auth.jwt_secret == NULL);
		CHECK(c->auth.jwt_public_key == NULL);
	}
	conf_free(c);

	text = str_printf("[auth]\n\njwt_secret_file = %s\n", missing);
	want = str_printf("t.conf:3: cannot read %s: No such file or "
			  "directory\n", missing);
	CHECK_ERR(text, want);
	free(text);
	free(want);
	text = str_printf("[auth]\njwt_secret_file = %s\n", empty);
	want = str_printf("t.conf:2: jwt_secret_file: %s is empty\n", empty);
	CHECK_ERR(text, want);
	free(text);
	free(want);
	text = str_printf("[auth]\njwt_secret_file = %s\n", nul);
	want = str_printf("t.conf:2: cannot read %s: the file contains a NUL "
			  "byte\n", nul);
	CHECK_ERR(text, want);
	free(text);
	free(want);
	text = str_printf("[auth]\njwt_public_key_file = %s\n", sec);
	want = str_printf("t.conf:2: jwt_public_key_file: %s is not a PEM "
			  "file\n", sec);
	CHECK_ERR(text, want);
	free(text);
	free(want);
	text = str_printf("[auth]\njwt_public_key_file = %s\n"
			  "jwt_secret_file = %s\n", pem, sec);
	CHECK_ERR(text, "t.conf:3: set jwt_secret_file or jwt_public_key_file, "
			"not both (the other is on line 2)\n");
	free(text);
	text = str_printf("[auth]\njwt_secret_file = %s\njwt_secret_file = %s\n",
			  sec, sec);
	CHECK_ERR(text, "t.conf:3: \"jwt_secret_file\" given twice in [auth] "
			"(first on line 2)\n");
	free(text);
out:
	if (sec)
		unlink(sec);
	if (crlf)
		unlink(crlf);
	if (two)
		unlink(two);
	if (empty)
		unlink(empty);
	if (nul)
		unlink(nul);
	if (pem)
		unlink(pem);
	text = str_printf("%s/big", tmpdir);
	unlink(text);
	free(text);
	free(sec);
	free(crlf);
	free(two);
	free(empty);
	free(nul);
	free(pem);
	free(missing);
	free(big);
}

/* ---- [broker NAME] ------------------------------------------------------ */

static void test_brokers(void)
{
	struct conf *c;
	const char *why = NULL;
	char *want;

	CHECK_OK("[broker home]\n"
		 "type = mqtt\n"
		 "url = mqtt://127.0.0.1:1883\n"
		 "topic = sensors/# in 1\n"
		 "topic = cmd/# out\n"
		 "topic = # both 2   # everything\n"
		 "password_file = /run/pw\n"
		 "client_id = mqgate-%h\n"
		 "username =\n"
		 "\n"
		 "[broker plant-2_x]\n"
		 "type = amqp\n"
		 "mount = plant/\n"
		 "topic = line1/# both 1\n"
		 "[broker nested]\n"
		 "type = amqp\n"
		 "mount = plant/inner/\n"
		 "topic = a in\n", c);
	if (!c || c->nbrokers != 3) {
		CHECK(0);
		conf_free(c);
		return;
	}
	{
		const struct conf_broker *b = &c->brokers[0];

		CHECK_STR(b->name, "home");
		CHECK_STR(b->type, "mqtt");
		CHECK_STR(b->mount, "");
		CHECK_INT(b->line, 1);
		CHECK_INT(b->type_line, 2);
		CHECK_INT(b->mount_line, 0);
		CHECK_INT(b->ntopics, 3);
		if (b->ntopics == 3) {
			CHECK_STR(b->topics[0].filter, "sensors/#");
			CHECK_INT(b->topics[0].dir, MQGATE_DIR_IN);
			CHECK_INT(b->topics[0].qos, 1);
			CHECK_INT(b->topics[0].line, 4);
			CHECK_STR(b->topics[1].filter, "cmd/#");
			CHECK_INT(b->topics[1].dir, MQGATE_DIR_OUT);
			CHECK_INT(b->topics[1].qos, 0);
			CHECK_STR(b->topics[2].filter, "#");
			CHECK_INT(b->topics[2].dir, MQGATE_DIR_BOTH);
			CHECK_INT(b->topics[2].qos, 2);
		}
		CHECK_INT(b->nkv, 4);
		if (b->nkv == 4) {
			CHECK_STR(b->kv[0].key, "url");
			CHECK_STR(b->kv[0].value, "mqtt://127.0.0.1:1883");
			CHECK_INT(b->kv[0].line, 3);
			CHECK_STR(b->kv[1].key, "password_file");
			CHECK_STR(b->kv[1].value, "/run/pw");
			CHECK_INT(b->kv[1].line, 7);
			CHECK_STR(b->kv[2].value, "mqgate-%h");
			CHECK_STR(b->kv[3].key, "username");
			CHECK_STR(b->kv[3].value, "");
		}
	}
	CHECK_STR(c->brokers[1].name, "plant-2_x");
	CHECK_STR(c->brokers[1].type, "amqp");
	CHECK_STR(c->brokers[1].mount, "plant/");
	CHECK_INT(c->brokers[1].mount_line, 13);
	CHECK_INT(c->brokers[1].nkv, 0);
	/* nested mounts are fine */
	CHECK_STR(c->brokers[2].mount, "plant/inner/");
	conf_free(c);

	/* A relative *_file plugin value is made absolute. */
	CHECK_OK("[broker a]\ntype = mqtt\ntopic = x in\nca_file = ca.pem\n"
		 "cert_file =\n", c);
	want = str_printf("%s/ca.pem", cwd);
	if (c && c->nbrokers == 1 && c->brokers[0].nkv == 2) {
		CHECK_STR(c->brokers[0].kv[0].value, want);
		CHECK_STR(c->brokers[0].kv[1].value, "");
	} else {
		CHECK(0);
	}
	free(want);
	conf_free(c);

	CHECK_ERR("[broker home]\nurl = x\ntopic = a in\n",
		  "t.conf:1: broker \"home\": missing required key \"type\"\n");
	CHECK_ERR("\n[broker home]\ntype = mqtt\n",
		  "t.conf:2: broker \"home\": at least one \"topic\" line is "
		  "required\n");
	CHECK_ERR("[broker a]\ntype = mqtt\ntype = amqp\ntopic = a in\n",
		  "t.conf:3: \"type\" given twice in [broker a] (first on line "
		  "2)\n");
	CHECK_ERR("[broker a]\ntype = ../../tmp/evil\ntopic = a in\n",
		  "t.conf:2: bad value \"../../tmp/evil\" for \"type\": expected "
		  "a plugin name such as mqtt or amqp\n");
	CHECK_ERR("[broker a]\ntype =\ntopic = a in\n",
		  "t.conf:2: bad value \"\" for \"type\": expected a plugin name "
		  "such as mqtt or amqp\n");
	CHECK_ERR("[broker a b]\n",
		  "t.conf:1: bad broker name \"a b\": use letters, digits, \"_\" "
		  "and \"-\"\n");
	CHECK_ERR("[broker a.b]\ntype = mqtt\n",
		  "t.conf:1: bad broker name \"a.b\": use letters, digits, \"_\" "
		  "and \"-\"\n");
	CHECK_ERR("[broker]\n",
		  "t.conf:1: a broker section needs a name: [broker NAME]\n");
	CHECK_ERR("[broker a]\ntype = mqtt\ntopic = x in\n\n[broker a]\n"
		  "type = mqtt\ntopic = y in\n",
		  "t.conf:5: duplicate broker name \"a\" (first on line 1)\n");

	/* topic lines */
	CHECK_ERR("[broker a]\ntype = mqtt\ntopic = a/#\n",
		  "t.conf:3: bad value \"a/#\" for \"topic\": expected FILTER "
		  "in|out|both [QOS]\n");
	CHECK_ERR("[broker a]\ntype = mqtt\ntopic =\n",
		  "t.conf:3: bad value \"\" for \"topic\": expected FILTER "
		  "in|out|both [QOS]\n");
	CHECK_ERR("[broker a]\ntype = mqtt\ntopic = a/# sideways\n",
		  "t.conf:3: bad value \"a/# sideways\" for \"topic\": the "
		  "direction must be in, out or both\n");
	CHECK_ERR("[broker a]\ntype = mqtt\ntopic = a/# IN\n",
		  "t.conf:3: bad value \"a/# IN\" for \"topic\": the direction "
		  "must be in, out or both\n");
	CHECK_ERR("[broker a]\ntype = mqtt\ntopic = a/# in 3\n",
		  "t.conf:3: bad value \"a/# in 3\" for \"topic\": QOS must be "
		  "0, 1 or 2\n");
	CHECK_ERR("[broker a]\ntype = mqtt\ntopic = a/# in 1 more\n",
		  "t.conf:3: bad value \"a/# in 1 more\" for \"topic\": expected "
		  "FILTER in|out|both [QOS]\n");
	CHECK(topic_validate("a/#/b", 5, TOPIC_FILTER, &why) < 0);
	want = str_printf("t.conf:3: bad topic filter \"a/#/b\": %s\n", why);
	CHECK_ERR("[broker a]\ntype = mqtt\ntopic = a/#/b in\n", want);
	free(want);
	/* "#comment" is not a lone #: the value is empty. */
	CHECK_ERR("[broker a]\ntype = mqtt\ntopic = #comment in\n",
		  "t.conf:3: bad value \"\" for \"topic\": expected FILTER "
		  "in|out|both [QOS]\n");

	/* mounts */
	CHECK_ERR("[broker a]\ntype = mqtt\nmount = plant\ntopic = x in\n",
		  "t.conf:3: bad value \"plant\" for \"mount\": a mount is empty "
		  "or a prefix ending in \"/\"\n");
	CHECK_ERR("[broker a]\ntype = mqtt\nmount = pl+/\ntopic = x in\n",
		  "t.conf:3: bad value \"pl+/\" for \"mount\": a mount may not "
		  "contain + or #\n");
	CHECK_ERR("[broker a]\ntype = mqtt\nmount = a/#/\ntopic = x in\n",
		  "t.conf:3: bad value \"a/#/\" for \"mount\": a mount may not "
		  "contain + or #\n");
	CHECK_ERR("[broker a]\ntype = mqtt\nmount = a/\nmount = b/\n"
		  "topic = x in\n",
		  "t.conf:4: \"mount\" given twice in [broker a] (first on line "
		  "3)\n");
	CHECK_ERR("[broker a]\ntype = mqtt\nmount = p/\ntopic = x in\n"
		  "[broker b]\ntype = amqp\ntopic = y in\nmount = p/\n",
		  "t.conf:8: broker \"b\": mount \"p/\" is also broker \"a\"'s "
		  "(line 3): each broker needs its own mount\n");
	/* two brokers without a mount share the empty one */
	CHECK_ERR("[broker a]\ntype = mqtt\ntopic = x in\n"
		  "[broker b]\ntype = amqp\ntopic = y in\n",
		  "t.conf:4: broker \"b\": mount \"\" is also broker \"a\"'s "
		  "(line 1): each broker needs its own mount\n");
	CHECK_OK("[broker a]\ntype = mqtt\ntopic = x in\nmount =\n"
		 "[broker b]\ntype = amqp\ntopic = y in\nmount = b/\n", c);
	if (c && c->nbrokers == 2) {
		CHECK_STR(c->brokers[0].mount, "");
		CHECK_INT(c->brokers[0].mount_line, 4);
		CHECK_STR(c->brokers[1].mount, "b/");
	} else {
		CHECK(0);
	}
	conf_free(c);
}

/* ---- file format -------------------------------------------------------- */

static void test_comments(void)
{
	struct conf *c;

	CHECK_OK("# a comment\n; another\n   # indented\n\t; tabbed\n\n"
		 "[server]   # trailing comment on a header\n"
		 "user = bob # comment\n"
		 "docroot =    # static files\n"
		 "plugin_dir = /p#x\n"
		 "[auth]\n"
		 "jwt_audience = a;b\n"
		 "jwt_issuer = iss ; comment\n"
		 "jwt_subscribe_claim = claim   \t\n", c);
	if (c) {
		CHECK_STR(c->server.user, "bob");
		CHECK_STR(c->server.docroot, "");
		CHECK_STR(c->server.plugin_dir, "/p#x");
		CHECK_STR(c->auth.jwt_audience, "a;b");
		CHECK_STR(c->auth.jwt_issuer, "iss");
		CHECK_STR(c->auth.jwt_subscribe_claim, "claim");
	}
	conf_free(c);
	/* `key =#x`: the # is not preceded by whitespace, so it is text. */
	CHECK_OK("[server]\nuser =#x\n", c);
	if (c)
		CHECK_STR(c->server.user, "#x");
	conf_free(c);
	/* CRLF line ends, a byte order mark, no final newline. */
	CHECK_OK("\xEF\xBB\xBF[server]\r\nuser = bob\r\nqueue = 5", c);
	if (c) {
		CHECK_STR(c->server.user, "bob");
		CHECK_INT(c->server.queue, 5);
	}
	conf_free(c);
	/* Spaces around the header's name and the = sign are optional. */
	CHECK_OK("[ server ]\nuser=x\n[broker   b]\ntype=mqtt\ntopic=t in\n", c);
	if (c) {
		CHECK_STR(c->server.user, "x");
		CHECK_INT(c->nbrokers, 1);
		if (c->nbrokers == 1)
			CHECK_STR(c->brokers[0].name, "b");
	}
	conf_free(c);
}

static void test_errors(void)
{
	CHECK_ERR("[server]\njust text\n",
		  "t.conf:2: expected \"key = value\"\n");
	CHECK_ERR("[server]\n= value\n",
		  "t.conf:2: expected \"key = value\"\n");
	CHECK_ERR("[server]\nmy key = value\n",
		  "t.conf:2: expected \"key = value\"\n");
	CHECK_ERR("user = x\n",
		  "t.conf:1: key \"user\" outside of any section\n");
	CHECK_ERR("[server\n", "t.conf:1: expected \"[section]\"\n");
	CHECK_ERR("[server] x\n",
		  "t.conf:1: unexpected text after \"[section]\"\n");
	/* The keys of an unknown section are not reported one by one. */
	CHECK_ERR("[servers]\nqueue = 1\nbogus = 2\n",
		  "t.conf:1: unknown section \"[servers]\"\n");
	CHECK_ERR("[brokers x]\n", "t.conf:1: unknown section \"[brokers x]\"\n");
	CHECK_ERR("[server]\nbogus = 1\n",
		  "t.conf:2: unknown key \"bogus\" in [server]\n");
	CHECK_ERR("[auth]\nqueue = 1\n",
		  "t.conf:2: unknown key \"queue\" in [auth]\n");
	CHECK_ERR("[server]\nqueue = 1\n[auth]\n[server]\nqueue = 2\n",
		  "t.conf:5: \"queue\" given twice in [server] (first on line "
		  "2)\n");
	{
		static const char text[] = "[server]\nuser = a\0b\n";
		struct conf *c;
		size_t len = 0;
		FILE *f;

		free(errtext);
		errtext = NULL;
		f = open_memstream(&errtext, &len);
		if (f) {
			CHECK_INT(conf_load_string("t.conf", text,
						   sizeof(text) - 1, f, &c),
				  -EINVAL);
			fclose(f);
			CHECK_STR(errtext, "t.conf:2: NUL byte in line\n");
		}
	}
	/* Every error of a file is reported, in order, then it fails. */
	CHECK_ERR("[server]\n"
		  "queue = 0\n"
		  "bogus = 1\n"
		  "listen = nowhere\n"
		  "[auth]\n"
		  "jwt_issuer = ${MQGATE_TEST_UNSET_VAR}\n"
		  "[nope]\n"
		  "[broker x]\n"
		  "topic = a in\n",
		  "t.conf:2: value \"0\" for \"queue\" is out of range (1 to "
		  "1000000)\n"
		  "t.conf:3: unknown key \"bogus\" in [server]\n"
		  "t.conf:4: bad value \"nowhere\" for \"listen\": expected "
		  "host:port, [IPv6]:port, *:port or unix:/path\n"
		  "t.conf:6: environment variable MQGATE_TEST_UNSET_VAR is not "
		  "set\n"
		  "t.conf:7: unknown section \"[nope]\"\n"
		  "t.conf:8: broker \"x\": missing required key \"type\"\n");
	/* ... up to 20, then it gives up. */
	{
		char *text = NULL, *want = NULL;
		size_t tl = 0, wl = 0;
		FILE *t = open_memstream(&text, &tl);
		FILE *w = open_memstream(&want, &wl);

		if (!t || !w) {
			CHECK(0);
			return;
		}
		fputs("[server]\n", t);
		for (int i = 0; i < 30; i++) {
			fprintf(t, "bogus%d = 1\n", i);
			if (i < 20)
				fprintf(w, "t.conf:%d: unknown key \"bogus%d\" "
					"in [server]\n", i + 2, i);
		}
		fputs("t.conf: too many errors, giving up\n", w);
		fclose(t);
		fclose(w);
		CHECK_ERR(text, want);
		free(text);
		free(want);
	}
}

static void test_env(void)
{
	struct conf *c;

	setenv("MQGATE_TEST_USER", "alice", 1);
	setenv("MQGATE_TEST_EMPTY", "", 1);
	setenv("MQGATE_TEST_HASH", "a # b ; c", 1);
	unsetenv("MQGATE_TEST_UNSET_VAR");
	CHECK_OK("[server]\n"
		 "user = ${MQGATE_TEST_USER}\n"
		 "[auth]\n"
		 "jwt_audience = x-${MQGATE_TEST_UNSET_VAR:-dflt}-y\n"
		 "jwt_issuer = ${MQGATE_TEST_USER:-other}$$HOME$x$\n"
		 "jwt_subscribe_claim = ${MQGATE_TEST_HASH}\n"
		 "jwt_publish_claim = ${MQGATE_TEST_EMPTY:-}p${MQGATE_TEST_EMPTY}\n"
		 "[broker b]\n"
		 "type = ${MQGATE_TEST_UNSET_VAR:-mqtt}\n"
		 "topic = t in\n"
		 "username = ${MQGATE_TEST_USER}\n", c);
	if (c) {
		CHECK_STR(c->server.user, "alice");
		CHECK_STR(c->auth.jwt_audience, "x-dflt-y");
		CHECK_STR(c->auth.jwt_issuer, "alice$HOME$x$");
		/* expanded after comments are removed: kept whole */
		CHECK_STR(c->auth.jwt_subscribe_claim, "a # b ; c");
		CHECK_STR(c->auth.jwt_publish_claim, "p");
		if (c->nbrokers == 1 && c->brokers[0].nkv == 1) {
			CHECK_STR(c->brokers[0].type, "mqtt");
			CHECK_STR(c->brokers[0].kv[0].value, "alice");
		} else {
			CHECK(0);
		}
	}
	conf_free(c);
	CHECK_ERR("[server]\n\nuser = ${MQGATE_TEST_UNSET_VAR}\n",
		  "t.conf:3: environment variable MQGATE_TEST_UNSET_VAR is not "
		  "set\n");
	/* A key whose value failed does not trip the checks that pair it
	 * with another key. */
	CHECK_ERR("[server]\ntls_cert_file = ${MQGATE_TEST_UNSET_VAR}\n",
		  "t.conf:2: environment variable MQGATE_TEST_UNSET_VAR is not "
		  "set\n");
	CHECK_ERR("[server]\nuser = ${MQGATE_TEST_USER\n",
		  "t.conf:2: unterminated \"${\"\n");
	CHECK_ERR("[server]\nuser = ${1A}\n",
		  "t.conf:2: bad environment variable name \"1A\"\n");
	CHECK_ERR("[server]\nuser = ${}\n",
		  "t.conf:2: bad environment variable name \"\"\n");
	CHECK_ERR("[server]\nuser = ${A-B}\n",
		  "t.conf:2: bad environment variable name \"A-B\"\n");
	CHECK_ERR("[server]\nuser = ${A:x}\n",
		  "t.conf:2: expected ${NAME} or ${NAME:-default}\n");
	/* An expanded value is checked like a written one. */
	setenv("MQGATE_TEST_QUEUE", "0", 1);
	CHECK_ERR("[server]\nqueue = ${MQGATE_TEST_QUEUE}\n",
		  "t.conf:2: value \"0\" for \"queue\" is out of range (1 to "
		  "1000000)\n");
}

/* Relative paths in a file are against the file's directory. */
static void test_relative_paths(void)
{
	struct conf *c;
	char *secret = write_file("jwt.key", "k\n", 2);
	char *path, *want, *here = NULL;
	static const char text[] =
		"[server]\n"
		"docroot = www\n"
		"tls_cert_file = tls/c.pem\n"
		"tls_key_file = /abs/k.pem\n"
		"plugin_dir = ../plugins\n"
		"[auth]\n"
		"jwt_secret_file = jwt.key\n"
		"[broker b]\n"
		"type = mqtt\n"
		"topic = t in\n"
		"password_file = pw\n"
		"url = relative\n";

	path = write_file("mqgate.conf", text, sizeof(text) - 1);
	if (!secret || !path) {
		CHECK(0);
		goto out;
	}
	CHECK_INT(load_file(path, &c), 0);
	CHECK_STR(errtext, "");
	if (c) {
		CHECK_STR(c->file, path);
		want = str_printf("%s/www", tmpdir);
		CHECK_STR(c->server.docroot, want);
		free(want);
		want = str_printf("%s/tls/c.pem", tmpdir);
		CHECK_STR(c->server.tls_cert_file, want);
		free(want);
		CHECK_STR(c->server.tls_key_file, "/abs/k.pem");
		want = str_printf("%s/../plugins", tmpdir);
		CHECK_STR(c->server.plugin_dir, want);
		free(want);
		CHECK_STR(c->auth.jwt_secret, "k");
		if (c->nbrokers == 1 && c->brokers[0].nkv == 2) {
			want = str_printf("%s/pw", tmpdir);
			CHECK_STR(c->brokers[0].kv[0].value, want);
			free(want);
			/* only *_file keys are paths */
			CHECK_STR(c->brokers[0].kv[1].value, "relative");
		} else {
			CHECK(0);
		}
	}
	conf_free(c);
	/* A relative config path: against the current directory + its dir. */
	if (chdir(tmpdir) == 0) {
		here = get_current_dir_name();
		CHECK_INT(load_file("./mqgate.conf", &c), 0);
		want = str_printf("%s/./www", here);
		if (c)
			CHECK_STR(c->server.docroot, want);
		free(want);
		conf_free(c);
		CHECK_INT(load_file("mqgate.conf", &c), 0);
		want = str_printf("%s/www", here);
		if (c)
			CHECK_STR(c->server.docroot, want);
		free(want);
		conf_free(c);
		CHECK(chdir(cwd) == 0);
	} else {
		CHECK(0);
	}
	/* Unreadable files: "FILE: strerror" and -errno. */
	want = str_printf("%s/none.conf", tmpdir);
	CHECK_INT(load_file(want, &c), -ENOENT);
	CHECK(c == NULL);
	free(path);
	path = str_printf("%s: No such file or directory\n", want);
	CHECK_STR(errtext, path);
	free(want);
	CHECK_INT(load_file(tmpdir, &c), -EISDIR);
	want = str_printf("%s: Is a directory\n", tmpdir);
	CHECK_STR(errtext, want);
	free(want);
	/* A bad file reports with its own name. */
	free(path);
	path = write_file("bad.conf", "[server]\nqueue = x\n", 19);
	CHECK_INT(load_file(path, &c), -EINVAL);
	want = str_printf("%s:2: bad value \"x\" for \"queue\": expected a "
			  "number\n", path);
	CHECK_STR(errtext, want);
	free(want);
	unlink(path);
	want = str_printf("%s/mqgate.conf", tmpdir);
	unlink(want);
	free(want);
out:
	if (secret)
		unlink(secret);
	free(secret);
	free(path);
	free(here);
}

/* ---- conf_value_parse and the value parsers ----------------------------- */

static int value(const struct mqgate_key *k, const char *key, const char *raw,
		 struct mqgate_value *v, char **owned, char *err, size_t len)
{
	struct conf_kv kv = { (char *)key, (char *)raw, 7 };

	*owned = NULL;
	err[0] = '\0';
	return conf_value_parse(k, &kv, v, owned, err, len);
}

static void test_value_parse(void)
{
	static const struct mqgate_key kstr = { "client_id", MQGATE_KEY_STRING,
						NULL, 0, 0, "" };
	static const struct mqgate_key kpath = { "ca_file", MQGATE_KEY_PATH,
						 NULL, 0, 0, "" };
	static const struct mqgate_key ksec = { "password", MQGATE_KEY_SECRET,
						NULL, 0, 0, "" };
	static const struct mqgate_key kint = { "prefetch", MQGATE_KEY_INT,
						NULL, -5, 65535, "" };
	static const struct mqgate_key kint0 = { "n", MQGATE_KEY_INT, NULL, 0,
						 0, "" };
	static const struct mqgate_key ksize = { "buf", MQGATE_KEY_SIZE, NULL,
						 1024, 1 << 20, "" };
	static const struct mqgate_key kdur = { "keepalive",
						MQGATE_KEY_DURATION, NULL,
						1000, 3600000, "" };
	static const struct mqgate_key kbool = { "clean_session",
						 MQGATE_KEY_BOOL, NULL, 0, 0,
						 "" };
	static const char *const yes[] = { "yes", "true", "on", "1", "YES",
					   "True" };
	static const char *const no[] = { "no", "false", "off", "0", "No",
					  "OFF" };
	struct mqgate_value v;
	char err[256], *owned = NULL, *pw, *want;

	/* STRING, PATH: text as given; empty = not set */
	CHECK_INT(value(&kstr, "client_id", "mqgate-%h", &v, &owned, err,
			sizeof(err)), 0);
	CHECK(v.set);
	CHECK_STR(v.str, "mqgate-%h");
	CHECK(owned == NULL);
	CHECK_INT(value(&kstr, "client_id", "", &v, &owned, err, sizeof(err)),
		  0);
	CHECK(!v.set);
	CHECK_STR(v.str, "");
	CHECK_INT(value(&kpath, "ca_file", "/etc/ca.pem", &v, &owned, err,
			sizeof(err)), 0);
	CHECK(v.set);
	CHECK_STR(v.str, "/etc/ca.pem");
	CHECK_INT(value(&kpath, "ca_file", "", &v, &owned, err, sizeof(err)), 0);
	CHECK(!v.set);

	/* SECRET: direct, or read from NAME_file */
	CHECK_INT(value(&ksec, "password", "hunter2", &v, &owned, err,
			sizeof(err)), 0);
	CHECK(v.set);
	CHECK_STR(v.str, "hunter2");
	CHECK(owned == NULL);
	pw = write_file("pw", "from-file\n", 10);
	CHECK_INT(value(&ksec, "password_file", pw, &v, &owned, err,
			sizeof(err)), 0);
	CHECK(v.set);
	CHECK_STR(v.str, "from-file");
	CHECK(owned != NULL && v.str == owned);
	free(owned);
	CHECK_INT(value(&ksec, "password_file", "", &v, &owned, err,
			sizeof(err)), 0);
	CHECK(!v.set);
	CHECK(owned == NULL);
	unlink(pw);
	CHECK_INT(value(&ksec, "password_file", pw, &v, &owned, err,
			sizeof(err)), -EINVAL);
	want = str_printf("password_file: cannot read %s: No such file or "
			  "directory", pw);
	CHECK_STR(err, want);
	CHECK(owned == NULL);
	free(want);
	free(pw);

	/* INT */
	CHECK_INT(value(&kint, "prefetch", "1000", &v, &owned, err,
			sizeof(err)), 0);
	CHECK(v.set);
	CHECK_INT(v.num, 1000);
	CHECK_STR(v.str, "1000");
	CHECK_INT(value(&kint, "prefetch", "-5", &v, &owned, err, sizeof(err)),
		  0);
	CHECK_INT(v.num, -5);
	CHECK_INT(value(&kint, "prefetch", "65536", &v, &owned, err,
			sizeof(err)), -EINVAL);
	CHECK(!v.set);
	CHECK_STR(err, "value \"65536\" for \"prefetch\" is out of range (-5 "
		       "to 65535)");
	CHECK_INT(value(&kint, "prefetch", "-6", &v, &owned, err, sizeof(err)),
		  -EINVAL);
	CHECK_INT(value(&kint, "prefetch", "12abc", &v, &owned, err,
			sizeof(err)), -EINVAL);
	CHECK_STR(err, "bad value \"12abc\" for \"prefetch\": expected an "
		       "integer");
	CHECK_INT(value(&kint, "prefetch", "", &v, &owned, err, sizeof(err)),
		  -EINVAL);
	CHECK_STR(err, "bad value \"\" for \"prefetch\": expected a number");
	/* min = max = 0: no range */
	CHECK_INT(value(&kint0, "n", "-9223372036854775808", &v, &owned, err,
			sizeof(err)), 0);
	CHECK_INT(v.num, INT64_MIN);
	CHECK_INT(value(&kint0, "n", "9223372036854775807", &v, &owned, err,
			sizeof(err)), 0);
	CHECK_INT(v.num, INT64_MAX);
	CHECK_INT(value(&kint0, "n", "9223372036854775808", &v, &owned, err,
			sizeof(err)), -EINVAL);
	CHECK_STR(err, "bad value \"9223372036854775808\" for \"n\": number "
		       "too large");

	/* SIZE */
	CHECK_INT(value(&ksize, "buf", "4K", &v, &owned, err, sizeof(err)), 0);
	CHECK_INT(v.num, 4096);
	CHECK_INT(value(&ksize, "buf", "1mb", &v, &owned, err, sizeof(err)), 0);
	CHECK_INT(v.num, 1 << 20);
	CHECK_INT(value(&ksize, "buf", "2M", &v, &owned, err, sizeof(err)),
		  -EINVAL);
	CHECK_STR(err, "value \"2M\" for \"buf\" is out of range (1K to 1M)");
	CHECK_INT(value(&ksize, "buf", "lots", &v, &owned, err, sizeof(err)),
		  -EINVAL);
	CHECK_STR(err, "bad value \"lots\" for \"buf\": expected a size: a "
		       "number with an optional K, M or G suffix");

	/* DURATION */
	CHECK_INT(value(&kdur, "keepalive", "30s", &v, &owned, err,
			sizeof(err)), 0);
	CHECK_INT(v.num, 30000);
	CHECK_INT(value(&kdur, "keepalive", "2", &v, &owned, err, sizeof(err)),
		  0);
	CHECK_INT(v.num, 2000);
	CHECK_INT(value(&kdur, "keepalive", "1500ms", &v, &owned, err,
			sizeof(err)), 0);
	CHECK_INT(v.num, 1500);
	CHECK_INT(value(&kdur, "keepalive", "999ms", &v, &owned, err,
			sizeof(err)), -EINVAL);
	CHECK_STR(err, "value \"999ms\" for \"keepalive\" is out of range (1s "
		       "to 1h)");
	CHECK_INT(value(&kdur, "keepalive", "1d", &v, &owned, err,
			sizeof(err)), -EINVAL);
	CHECK_STR(err, "bad value \"1d\" for \"keepalive\": expected a "
		       "duration: a number with an optional ms, s, m or h "
		       "suffix");

	/* BOOL */
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		CHECK_INT(value(&kbool, "clean_session", yes[i], &v, &owned,
				err, sizeof(err)), 0);
		CHECK(v.set);
		CHECK_INT(v.num, 1);
		CHECK_INT(value(&kbool, "clean_session", no[i], &v, &owned,
				err, sizeof(err)), 0);
		CHECK(v.set);
		CHECK_INT(v.num, 0);
	}
	CHECK_INT(value(&kbool, "clean_session", "maybe", &v, &owned, err,
			sizeof(err)), -EINVAL);
	CHECK_STR(err, "bad value \"maybe\" for \"clean_session\": expected "
		       "yes/no, true/false, on/off or 1/0");
	/* a failed value is left unset and zero */
	CHECK(!v.set);
	CHECK_INT(v.num, 0);
	CHECK_INT(value(&kbool, "clean_session", "", &v, &owned, err,
			sizeof(err)), -EINVAL);
}

static void test_parsers(void)
{
	const char *why = NULL;
	uint64_t u = 0;
	int64_t i = 0;
	bool b = false;

	CHECK_INT(conf_parse_size("0", &u, &why), 0);
	CHECK_INT(u, 0);
	CHECK_INT(conf_parse_size("3 G", &u, &why), 0);
	CHECK_INT(u, 3LL << 30);
	CHECK_INT(conf_parse_size("5kB", &u, &why), 0);
	CHECK_INT(u, 5 << 10);
	CHECK_INT(conf_parse_size("8589934591G", &u, &why), 0);
	CHECK_INT(u, 8589934591LL << 30);
	CHECK_INT(conf_parse_size("8589934592G", &u, &why), -EINVAL);
	CHECK_STR(why, "size too large");
	CHECK_INT(conf_parse_size("99999999999999999999", &u, &why), -EINVAL);
	CHECK_STR(why, "number too large");
	CHECK_INT(conf_parse_size("-1", &u, &why), -EINVAL);
	CHECK_INT(conf_parse_size("", &u, &why), -EINVAL);
	CHECK_INT(conf_parse_size("1BB", &u, &why), -EINVAL);
	CHECK_INT(conf_parse_size("1.5M", &u, &why), -EINVAL);

	CHECK_INT(conf_parse_duration("0", &i, &why), 0);
	CHECK_INT(i, 0);
	CHECK_INT(conf_parse_duration("90m", &i, &why), 0);
	CHECK_INT(i, 90 * 60000);
	CHECK_INT(conf_parse_duration("24h", &i, &why), 0);
	CHECK_INT(i, 24 * 3600000);
	CHECK_INT(conf_parse_duration("9223372036854775807ms", &i, &why), 0);
	CHECK_INT(i, INT64_MAX);
	CHECK_INT(conf_parse_duration("9223372036854775807s", &i, &why),
		  -EINVAL);
	CHECK_STR(why, "duration too large");
	CHECK_INT(conf_parse_duration("s", &i, &why), -EINVAL);
	CHECK_INT(conf_parse_duration("1 sec", &i, &why), -EINVAL);

	CHECK_INT(conf_parse_int("+12", &i, &why), 0);
	CHECK_INT(i, 12);
	CHECK_INT(conf_parse_int("-", &i, &why), -EINVAL);
	CHECK_INT(conf_parse_int("0x10", &i, &why), -EINVAL);
	CHECK_INT(conf_parse_int(" 1", &i, &why), -EINVAL);

	CHECK_INT(conf_parse_bool("On", &b, &why), 0);
	CHECK(b);
	CHECK_INT(conf_parse_bool("oFf", &b, &why), 0);
	CHECK(!b);
	CHECK_INT(conf_parse_bool("y", &b, &why), -EINVAL);
	CHECK_INT(conf_parse_bool("2", &b, &why), -EINVAL);
}

/* ---- the installed sample ----------------------------------------------- */

static void test_sample(void)
{
	const char *top = getenv("top_srcdir");
	char *path = str_printf("%s/etc/mqgate.conf", top ? top : ".");
	struct conf *c;
	bool mqtt = false;

	CHECK_INT(load_file(path, &c), 0);
	CHECK_STR(errtext, "");
	if (errtext && *errtext)
		fprintf(stderr, "%s", errtext);
	if (c) {
		for (size_t i = 0; i < c->nbrokers; i++)
			if (strcmp(c->brokers[i].type, "mqtt") == 0)
				mqtt = true;
		CHECK(mqtt);
		CHECK(c->server.nlisten >= 1);
	}
	conf_free(c);
	free(path);
}

int main(void)
{
	char tmpl[] = "/tmp/test_conf.XXXXXX";

	cwd = get_current_dir_name();
	tmpdir = mkdtemp(tmpl);
	if (!cwd || !tmpdir) {
		perror("test_conf: setup");
		return 99;
	}
	test_defaults();
	test_listen();
	test_paths();
	test_origins_proxies();
	test_numbers();
	test_rate();
	test_strings();
	test_anonymous();
	test_secrets();
	test_brokers();
	test_comments();
	test_errors();
	test_env();
	test_relative_paths();
	test_value_parse();
	test_parsers();
	test_sample();
	rmdir(tmpdir);
	free(errtext);
	free(cwd);
	return check_summary("conf");
}
