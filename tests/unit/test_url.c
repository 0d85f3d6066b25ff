/*
 * test_url.c - plugins/url.c, table-driven: schemes and their default
 * ports, userinfo with percent-decoding, IPv4, names and bracketed IPv6,
 * paths, and malformed input with the reason reported (never the
 * password).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "url.h"

struct good {
	const char *text;
	const char *scheme, *user, *password, *host;
	int port;
	bool port_given, ipv6;
	const char *path;
};

static const struct good goods[] = {
	{ "mqtt://127.0.0.1", "mqtt", NULL, NULL, "127.0.0.1", 1883, false, false, NULL },
	{ "mqtt://127.0.0.1:1884", "mqtt", NULL, NULL, "127.0.0.1", 1884, true, false, NULL },
	{ "MQTTS://Broker.Example.com", "mqtts", NULL, NULL, "Broker.Example.com", 8883, false, false, NULL },
	{ "amqp://guest:guest@127.0.0.1:5672/", "amqp", "guest", "guest", "127.0.0.1", 5672, true, false, "" },
	{ "amqps://rabbit/", "amqps", NULL, NULL, "rabbit", 5671, false, false, "" },
	{ "amqp://h/%2F", "amqp", NULL, NULL, "h", 5672, false, false, "/" },
	{ "amqp://h/my%20vhost", "amqp", NULL, NULL, "h", 5672, false, false, "my vhost" },
	{ "amqp://h/a/b", "amqp", NULL, NULL, "h", 5672, false, false, "a/b" },
	{ "mqtt://[::1]", "mqtt", NULL, NULL, "::1", 1883, false, true, NULL },
	{ "mqtt://[::1]:1999/", "mqtt", NULL, NULL, "::1", 1999, true, true, "" },
	{ "mqtts://u@[2001:db8::5]:8884", "mqtts", "u", NULL, "2001:db8::5", 8884, true, true, NULL },
	{ "mqtt://[::ffff:10.0.0.1]", "mqtt", NULL, NULL, "::ffff:10.0.0.1", 1883, false, true, NULL },
	{ "mqtt://alice@h", "mqtt", "alice", NULL, "h", 1883, false, false, NULL },
	{ "mqtt://alice:@h", "mqtt", "alice", "", "h", 1883, false, false, NULL },
	{ "mqtt://:pw@h", "mqtt", "", "pw", "h", 1883, false, false, NULL },
	{ "mqtt://a%40b:p%3Aw%2Fx%25@h", "mqtt", "a@b", "p:w/x%", "h", 1883, false, false, NULL },
	/* a raw '@' in the password: the last '@' ends the userinfo */
	{ "mqtt://bob:p@ss@h:1", "mqtt", "bob", "p@ss", "h", 1, true, false, NULL },
	{ "mqtt://bob:a?b#c@h", "mqtt", "bob", "a?b#c", "h", 1883, false, false, NULL },
	{ "mqtt://h:065535", "mqtt", NULL, NULL, "h", 65535, true, false, NULL },
	{ "ws+x.y-z://h_1", "ws+x.y-z", NULL, NULL, "h_1", 0, false, false, NULL },
	{ "other://h:77", "other", NULL, NULL, "h", 77, true, false, NULL },
};

struct bad {
	const char *text;
	const char *why;   /* a piece of the message */
};

static const struct bad bads[] = {
	{ "", "empty url" },
	{ "127.0.0.1:1883", "missing scheme" },
	{ "mqtt:/h", "missing scheme" },
	{ "mqtt//h", "missing scheme" },
	{ "://h", "missing scheme" },
	{ "1mqtt://h", "missing scheme" },
	{ "mq tt://h", "missing scheme" },
	{ "mqtt://", "missing host" },
	{ "mqtt:///path", "missing host" },
	{ "mqtt://:1883", "missing host" },
	{ "mqtt://user:pw@", "missing host" },
	{ "mqtt://h:", "missing port" },
	{ "mqtt://h:0", "out of range" },
	{ "mqtt://h:65536", "out of range" },
	{ "mqtt://h:99999999999999999999", "bad port" },
	{ "mqtt://h:12a", "bad port" },
	{ "mqtt://h:-1", "bad port" },
	{ "mqtt://h:+1", "bad port" },
	{ "mqtt://::1", "brackets" },
	{ "mqtt://[::1", "missing ']'" },
	{ "mqtt://[]", "bad IPv6" },
	{ "mqtt://[::g]", "bad IPv6" },
	{ "mqtt://[1.2.3.4]", "bad IPv6" },
	{ "mqtt://[::1]x", "unexpected text" },
	{ "mqtt://[::1]:", "missing port" },
	{ "mqtt://ho st", "bad character ' '" },
	{ "mqtt://h%41", "bad character '%'" },
	{ "mqtt://h?x=1", "queries" },
	{ "mqtt://h/p?x", "queries" },
	{ "mqtt://h#frag", "queries" },
	{ "mqtt://u%4@h", "percent-escape in the user name" },
	{ "mqtt://u:s3cr%zzet@h", "percent-escape in the password" },
	{ "mqtt://u:s3cr%00et@h", "percent-escape in the password" },
	{ "mqtt://u:s3cret%@h", "percent-escape in the password" },
	{ "amqp://h/%", "percent-escape in the path" },
	{ "amqp://h/%0", "percent-escape in the path" },
};

static void check_opt(const char *name, const char *got, const char *want)
{
	check_run++;
	if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0)) {
		check_failed++;
		fprintf(stderr, "%s: got \"%s\", want \"%s\"\n", name,
			got ? got : "(null)", want ? want : "(null)");
	}
}

static void test_good(void)
{
	for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		const struct good *g = &goods[i];
		struct url u;
		char err[200] = "";
		int r = url_parse(g->text, &u, err, sizeof(err));

		if (r != 0) {
			check_run++;
			check_failed++;
			fprintf(stderr, "%s: refused: %s\n", g->text, err);
			continue;
		}
		check_opt("scheme", u.scheme, g->scheme);
		check_opt("user", u.user, g->user);
		check_opt("password", u.password, g->password);
		check_opt("host", u.host, g->host);
		check_opt("path", u.path, g->path);
		CHECK_INT(u.port, g->port);
		CHECK_INT(u.port_given, g->port_given);
		CHECK_INT(u.ipv6, g->ipv6);
		url_free(&u);
		CHECK(u.scheme == NULL && u.host == NULL && u.port == 0);
	}
}

static void test_bad(void)
{
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		const struct bad *b = &bads[i];
		struct url u;
		char err[200] = "";
		int r = url_parse(b->text, &u, err, sizeof(err));

		CHECK_INT(r, -EINVAL);
		check_run++;
		if (!strstr(err, b->why)) {
			check_failed++;
			fprintf(stderr, "%s: message \"%s\" lacks \"%s\"\n",
				b->text, err, b->why);
		}
		/* the message never repeats a password */
		CHECK(!strstr(err, "s3cr"));
		/* nothing is left to free on failure */
		CHECK(u.scheme == NULL && u.user == NULL && u.password == NULL &&
		      u.host == NULL && u.path == NULL);
	}
	CHECK_INT(url_parse(NULL, &(struct url){ 0 }, (char[8]){ 0 }, 8), -EINVAL);
}

static void test_helpers(void)
{
	char *s = NULL;

	CHECK_INT(url_default_port("mqtt"), 1883);
	CHECK_INT(url_default_port("MQTTS"), 8883);
	CHECK_INT(url_default_port("amqp"), 5672);
	CHECK_INT(url_default_port("amqps"), 5671);
	CHECK_INT(url_default_port("http"), 0);
	CHECK_INT(url_default_port(NULL), 0);

	CHECK_INT(url_decode("a%2fb%2Fc", 9, &s), 0);
	CHECK_STR(s, "a/b/c");
	free(s);
	/* only len bytes are read */
	CHECK_INT(url_decode("ab%41zzz", 5, &s), 0);
	CHECK_STR(s, "abA");
	free(s);
	CHECK_INT(url_decode("ab%4", 4, &s), -EINVAL);
	CHECK_INT(url_decode("%ff%FE", 6, &s), 0);
	CHECK_MEM(s, 2, "\xff\xfe");
	free(s);
	CHECK_INT(url_decode("", 0, &s), 0);
	CHECK_STR(s, "");
	free(s);
}

int main(void)
{
	test_good();
	test_bad();
	test_helpers();
	return check_summary("test_url");
}
