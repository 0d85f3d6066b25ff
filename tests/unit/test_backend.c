/*
 * test_backend.c - the plugin host (src/backend.c): loading plugins through
 * broker_set_load() with configs from conf_load_string()/conf_load(), and
 * every refusal reported as FILE:LINE at the line to blame: an unknown or
 * malformed type, a plugin with another ABI, a too-small struct, no
 * symbol, missing functions or another name (the `type` line); unknown,
 * repeated and bad keys (the key's line); the plugin's own check() (the
 * key it names, else the section). Defaults, SECRET *_file keys and PATH
 * keys resolved against the config file's directory. Mount routing by
 * longest prefix with nested mounts, the in/out/both walls for publish and
 * subscribe, broker_set_all_up as states change (by hand and through the
 * real inbox and hub), broker_set_start failures, and the plugin directory
 * precedence.
 * Plugins: loopback from $MQGATE_PLUGIN_DIR (make check sets it), the test
 * plugins testkeys, badabi, small, nosym, incomplete and wrongname from
 * tests/unit/.libs (plugin_keys.c, plugin_bad.c).
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "check.h"
#include "conf.h"
#include "hub.h"
#include "inbox.h"
#include "msg.h"

#ifndef PKGLIBDIR
#define PKGLIBDIR "/usr/local/lib/mqgate"
#endif

/* The key indexes of plugin_keys.c. */
enum {
	TK_LABEL, TK_COUNT, TK_BUFFER, TK_TIMEOUT, TK_VERBOSE, TK_TOKEN,
	TK_CERT, TK_CA_FILE, TK_MODE, TK_LOW, TK_HIGH, TK_FAIL_CREATE,
	TK_FAIL_START, TK_NKEYS
};

static char loopback_dir[PATH_MAX];   /* plugins/.libs */
static char test_dir[PATH_MAX];       /* tests/unit/.libs */
static char tmpdir[] = "/tmp/mqgate-backend-XXXXXX";
static char *errtext;                 /* what the last load reported */
static struct conf *conf;
static struct broker_set *set;

static void unload(void)
{
	broker_set_free(set);
	conf_free(conf);
	set = NULL;
	conf = NULL;
}

/* Loads the config text (it must parse) and its brokers from dir;
 * returns broker_set_load's result, errtext holds what it reported. */
static int load_from(const char *name, const char *text, const char *dir,
		     const char *file)
{
	size_t len = 0;
	FILE *f;
	int r;

	unload();
	free(errtext);
	errtext = NULL;
	f = open_memstream(&errtext, &len);
	if (!f)
		exit(99);
	r = file ? conf_load(file, f, &conf)
		 : conf_load_string(name, text, strlen(text), f, &conf);
	if (r < 0) {
		fclose(f);
		fprintf(stderr, "config did not parse:\n%s\n%s", text ? text : file,
			errtext);
		exit(99);
	}
	r = broker_set_load(conf, dir, f, &set);
	fclose(f);
	if (r < 0)
		CHECK(set == NULL);      /* only set on success */
	return r;
}

static int load(const char *text, const char *dir)
{
	return load_from("b.conf", text, dir, NULL);
}

static struct broker *broker(const char *name)
{
	for (size_t i = 0; set && i < set->n; i++)
		if (strcmp(set->v[i]->name, name) == 0)
			return set->v[i];
	fprintf(stderr, "no broker %s\n", name);
	exit(99);
}

static bool starts_with(const char *s, const char *prefix)
{
	return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

/* ---- refusing plugins --------------------------------------------------- */

static void test_unknown_type(void)
{
	char want[PATH_MAX + 64];

	CHECK_INT(load("[broker x]\ntopic = a/# in\n\ntype = nosuch\n", test_dir),
		  -EINVAL);
	CHECK(set == NULL);
	CHECK(starts_with(errtext, "b.conf:4: cannot load plugin for type 'nosuch': "));
	snprintf(want, sizeof(want), "%s/nosuch.so", test_dir);
	CHECK(strstr(errtext, want) != NULL);   /* dlerror names the file */
	CHECK_INT(count_lines(errtext), 1);

	/* conf.c takes any [A-Za-z0-9_-] name; plugin files are lower case */
	CHECK_INT(load("[broker x]\ntype = Bad-Type\ntopic = a/# in\n", test_dir),
		  -EINVAL);
	CHECK_STR(errtext, "b.conf:2: bad broker type 'Bad-Type'\n");

	/* every broker is checked, each error reported */
	CHECK_INT(load("[broker one]\ntype = nosuch\ntopic = a in\n"
		       "[broker two]\ntopic = b in\ntype = alsonot\nmount = t/\n", test_dir),
		  -EINVAL);
	CHECK(starts_with(errtext, "b.conf:2: cannot load plugin for type 'nosuch': "));
	CHECK(strstr(errtext, "\nb.conf:6: cannot load plugin for type 'alsonot': ") != NULL);
	CHECK_INT(count_lines(errtext), 2);
	unload();
}

static void test_bad_plugins(void)
{
	char want[PATH_MAX + 256];

	CHECK_INT(load("[broker x]\ntopic = a in\ntype = badabi\n", test_dir), -EINVAL);
	snprintf(want, sizeof(want),
		 "b.conf:3: plugin %s/badabi.so has ABI %u (size %zu); this "
		 "mqgate needs ABI %u (size >= %zu)\n", test_dir,
		 MQGATE_BACKEND_ABI + 98, sizeof(struct mqgate_backend),
		 MQGATE_BACKEND_ABI, sizeof(struct mqgate_backend));
	CHECK_STR(errtext, want);

	CHECK_INT(load("[broker x]\ntype = small\ntopic = a in\n", test_dir), -EINVAL);
	snprintf(want, sizeof(want),
		 "b.conf:2: plugin %s/small.so has ABI %u (size %zu); this "
		 "mqgate needs ABI %u (size >= %zu)\n", test_dir,
		 MQGATE_BACKEND_ABI, offsetof(struct mqgate_backend, publish),
		 MQGATE_BACKEND_ABI, sizeof(struct mqgate_backend));
	CHECK_STR(errtext, want);

	CHECK_INT(load("[broker x]\ntype = nosym\ntopic = a in\n", test_dir), -EINVAL);
	snprintf(want, sizeof(want),
		 "b.conf:2: %s/nosym.so is not an mqgate plugin (no mqgate_backend)\n",
		 test_dir);
	CHECK_STR(errtext, want);

	CHECK_INT(load("[broker x]\ntype = incomplete\ntopic = a in\n", test_dir),
		  -EINVAL);
	snprintf(want, sizeof(want),
		 "b.conf:2: plugin %s/incomplete.so is incomplete or not of "
		 "type 'incomplete'\n", test_dir);
	CHECK_STR(errtext, want);

	CHECK_INT(load("[broker x]\ntype = wrongname\ntopic = a in\n", test_dir),
		  -EINVAL);
	snprintf(want, sizeof(want),
		 "b.conf:2: plugin %s/wrongname.so is incomplete or not of "
		 "type 'wrongname'\n", test_dir);
	CHECK_STR(errtext, want);

	/* a good broker next to a bad one: the set fails as a whole */
	CHECK_INT(load("[broker ok]\ntype = testkeys\ntopic = a in\n"
		       "[broker bad]\ntype = badabi\ntopic = b in\nmount = b/\n", test_dir),
		  -EINVAL);
	CHECK(set == NULL);
	CHECK(starts_with(errtext, "b.conf:5: plugin "));
	CHECK_INT(count_lines(errtext), 1);
	unload();
}

/* ---- keys --------------------------------------------------------------- */

static void test_keys(void)
{
	struct broker *b;

	/* Unknown keys are reported at their line, each one, with the rest. */
	CHECK_INT(load("[broker lb]\ntype = loopback\ntopic = a in\n"
		       "colour = blue\ndelay = 1s\nshape = round\n", loopback_dir),
		  -EINVAL);
	CHECK_STR(errtext,
		  "b.conf:4: unknown key 'colour' for a broker of type 'loopback'\n"
		  "b.conf:6: unknown key 'shape' for a broker of type 'loopback'\n");

	/* Bad values: at the key's line, whatever its type. */
	CHECK_INT(load("[broker lb]\ntype = loopback\ntopic = a in\ndelay = soon\n",
		       loopback_dir), -EINVAL);
	CHECK(starts_with(errtext, "b.conf:4: bad value \"soon\" for \"delay\": "));
	CHECK_INT(count_lines(errtext), 1);
	CHECK_INT(load("[broker lb]\ntype = loopback\ntopic = a in\n\ndelay = 2h\n",
		       loopback_dir), -EINVAL);
	CHECK(starts_with(errtext, "b.conf:5: value \"2h\" for \"delay\" is out of range"));
	CHECK_INT(load("[broker k]\ntype = testkeys\ntopic = a in\ncount = 11\n"
		       "buffer = 12X\nverbose = maybe\ntimeout = -1s\ncount = 2\n",
		       test_dir), -EINVAL);
	CHECK(starts_with(errtext, "b.conf:4: value \"11\" for \"count\" is out of range"));
	CHECK(strstr(errtext, "\nb.conf:5: bad value \"12X\" for \"buffer\": ") != NULL);
	CHECK(strstr(errtext, "\nb.conf:6: bad value \"maybe\" for \"verbose\": ") != NULL);
	CHECK(strstr(errtext, "\nb.conf:7: ") != NULL);
	CHECK(strstr(errtext, "\nb.conf:8: 'count' given twice (first on line 4)\n") != NULL);
	CHECK_INT(count_lines(errtext), 5);

	/* NAME and NAME_file of a secret are the same key */
	CHECK_INT(load("[broker k]\ntype = testkeys\ntopic = a in\ntoken = x\n"
		       "token_file = /dev/null\n", test_dir), -EINVAL);
	CHECK_STR(errtext, "b.conf:5: 'token_file' given twice (first on line 4)\n");
	/* _file only for secrets */
	CHECK_INT(load("[broker k]\ntype = testkeys\ntopic = a in\nlabel_file = x\n",
		       test_dir), -EINVAL);
	CHECK_STR(errtext, "b.conf:4: unknown key 'label_file' for a broker of type "
			   "'testkeys'\n");
	/* a secret file that cannot be read */
	CHECK_INT(load("[broker k]\ntype = testkeys\ntopic = a in\n"
		       "token_file = /nonexistent/token\n", test_dir), -EINVAL);
	CHECK_STR(errtext, "b.conf:4: token_file: cannot read /nonexistent/token: "
			   "No such file or directory\n");

	/* Given values and defaults. */
	CHECK_INT(load("[broker k]\ntype = testkeys\ntopic = a in\ncount = 7\n"
		       "verbose = yes\ntoken = s3cret\ntimeout = 250ms\nlabel =\n",
		       test_dir), 0);
	CHECK_STR(errtext, "");
	b = broker("k");
	CHECK_INT(b->nkeys, TK_NKEYS);
	CHECK(b->values[TK_COUNT].set);
	CHECK_INT(b->values[TK_COUNT].num, 7);
	CHECK_INT(b->values[TK_VERBOSE].num, 1);
	CHECK_STR(b->values[TK_TOKEN].str, "s3cret");
	CHECK_INT(b->values[TK_TIMEOUT].num, 250);
	CHECK(!b->values[TK_LABEL].set);         /* empty: not set, no default */
	CHECK(b->values[TK_BUFFER].set);          /* defaults */
	CHECK_INT(b->values[TK_BUFFER].num, 65536);
	CHECK_INT(b->values[TK_HIGH].num, 100);
	CHECK(b->values[TK_LOW].set);
	CHECK_INT(b->values[TK_LOW].num, 0);
	CHECK(b->values[TK_FAIL_CREATE].set);
	CHECK_INT(b->values[TK_FAIL_CREATE].num, 0);
	CHECK(!b->values[TK_MODE].set);           /* no default */
	CHECK(!b->values[TK_CA_FILE].set);
	CHECK(b->values[TK_CERT].set);            /* a PATH default */
	CHECK_STR(b->type, "testkeys");
	CHECK_STR(b->log_module, "testkeys[k]");
	CHECK_INT(b->state, MQGATE_STATE_CONNECTING);
	CHECK(b->instance == NULL);               /* nothing runs yet */

	b = NULL;
	CHECK_INT(load("[broker lb]\ntype = loopback\ntopic = a in\n", loopback_dir), 0);
	b = broker("lb");
	CHECK(b->values[0].set);                  /* delay = 0 */
	CHECK_INT(b->values[0].num, 0);
	CHECK(!b->values[1].set);                 /* fail = "" */
	unload();
}

/* The plugin's check(): at the line of the key it blames, else at the
 * section header. */
static void test_plugin_check(void)
{
	CHECK_INT(load("[broker lb]\ntype = loopback\ntopic = a in\nfail = sometimes\n",
		       loopback_dir), -EINVAL);
	CHECK_STR(errtext, "b.conf:4: broker lb: fail must be empty, 'unavailable' "
			   "or 'rejected', not 'sometimes'\n");

	CHECK_INT(load("\n[broker k]\ntype = testkeys\ntopic = a in\ncount = 2\n"
		       "mode = broken\n", test_dir), -EINVAL);
	CHECK_STR(errtext, "b.conf:6: broker k: mode 'broken' is broken\n");

	/* no single key: the [broker] line */
	CHECK_INT(load("\n[broker k]\ntype = testkeys\ntopic = a in\nlow = 5\nhigh = 4\n",
		       test_dir), -EINVAL);
	CHECK_STR(errtext, "b.conf:2: broker k: low (5) is above high (4)\n");
	CHECK_INT(load("\n[broker k]\ntype = testkeys\ntopic = a in\nlow = 500\n",
		       test_dir), -EINVAL);     /* against high's default */
	CHECK_STR(errtext, "b.conf:2: broker k: low (500) is above high (100)\n");
	CHECK_INT(load("[broker k]\ntype = testkeys\ntopic = a in\nmode = nowhere\n",
		       test_dir), -EINVAL);
	CHECK_STR(errtext, "b.conf:1: broker k: something is wrong somewhere\n");
	/* an index outside the key table: the section, not a crash */
	CHECK_INT(load("[broker k]\ntype = testkeys\ntopic = a in\nmode = outside\n",
		       test_dir), -EINVAL);
	CHECK_STR(errtext, "b.conf:1: broker k: blames a key that does not exist\n");
	/* no message from the plugin */
	CHECK_INT(load("[broker k]\ntype = testkeys\ntopic = a in\nmode = silent\n",
		       test_dir), -EINVAL);
	CHECK_STR(errtext, "b.conf:4: broker k: invalid configuration\n");
	/* check() runs only on values that parsed */
	CHECK_INT(load("[broker k]\ntype = testkeys\ntopic = a in\nlow = x\nhigh = -1\n",
		       test_dir), -EINVAL);
	CHECK(starts_with(errtext, "b.conf:4: bad value \"x\" for \"low\""));
	CHECK_INT(count_lines(errtext), 1);

	CHECK_INT(load("[broker k]\ntype = testkeys\ntopic = a in\nmode = safe\n",
		       test_dir), 0);
	CHECK_STR(errtext, "");
	unload();
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(99);
	}
}

/* PATH keys (given or default) and *_file secrets are found next to the
 * config file, wherever the daemon runs. */
static void test_paths(void)
{
	char dir[PATH_MAX], file[PATH_MAX + 16], want[PATH_MAX + 64];
	char cwd[PATH_MAX], got[PATH_MAX], real_want[PATH_MAX];
	struct broker *b;

	snprintf(dir, sizeof(dir), "%s/etc", tmpdir);
	mkdir(dir, 0700);
	snprintf(file, sizeof(file), "%s/token.txt", dir);
	write_file(file, "s3cret\n");
	snprintf(file, sizeof(file), "%s/default.pem", dir);
	write_file(file, "pem\n");
	snprintf(file, sizeof(file), "%s/m.conf", dir);
	write_file(file, "[broker k]\ntype = testkeys\ntopic = a in\n"
			 "ca_file = certs/ca.pem\ntoken_file = token.txt\n");

	CHECK_INT(load_from(NULL, NULL, test_dir, file), 0);
	CHECK_STR(errtext, "");
	b = broker("k");
	snprintf(want, sizeof(want), "%s/certs/ca.pem", dir);
	CHECK_STR(b->values[TK_CA_FILE].str, want);
	snprintf(want, sizeof(want), "%s/default.pem", dir);
	CHECK_STR(b->values[TK_CERT].str, want);   /* the default, resolved */
	CHECK_STR(b->values[TK_TOKEN].str, "s3cret"); /* one newline removed */

	write_file(file, "[broker k]\ntype = testkeys\ntopic = a in\n"
			 "cert = sub/c.pem\nca_file = /abs/ca.pem\n");
	CHECK_INT(load_from(NULL, NULL, test_dir, file), 0);
	b = broker("k");
	snprintf(want, sizeof(want), "%s/sub/c.pem", dir);
	CHECK_STR(b->values[TK_CERT].str, want);
	CHECK_STR(b->values[TK_CA_FILE].str, "/abs/ca.pem");

	write_file(file, "[broker k]\ntype = testkeys\ntopic = a in\ncert =\n");
	CHECK_INT(load_from(NULL, NULL, test_dir, file), 0);
	b = broker("k");
	CHECK(!b->values[TK_CERT].set);            /* empty: no default either */

	/* A relative config path: the value names the file next to it. */
	write_file(file, "[broker k]\ntype = testkeys\ntopic = a in\n"
			 "token_file = token.txt\n");
	if (!getcwd(cwd, sizeof(cwd)) || chdir(tmpdir) < 0)
		exit(99);
	CHECK_INT(load_from(NULL, NULL, test_dir, "etc/m.conf"), 0);
	CHECK_STR(errtext, "");
	b = broker("k");
	CHECK_STR(b->values[TK_TOKEN].str, "s3cret");
	snprintf(want, sizeof(want), "%s/default.pem", dir);
	CHECK(realpath(b->values[TK_CERT].str, got) != NULL);
	CHECK(realpath(want, real_want) != NULL);
	CHECK_STR(got, real_want);
	if (chdir(cwd) < 0)
		exit(99);
	unload();
}

/* ---- routing and walls -------------------------------------------------- */

static void check_route(const char *topic, const char *want_broker,
			const char *want_rest)
{
	const char *rest = "(untouched)";
	struct broker *b = broker_set_route(set, topic, &rest);

	if (!want_broker) {
		CHECK(b == NULL);
		CHECK_STR(rest, "(untouched)");
		if (b)
			fprintf(stderr, "  %s routed to %s\n", topic, b->name);
		return;
	}
	CHECK(b != NULL);
	if (!b) {
		fprintf(stderr, "  %s not routed\n", topic);
		return;
	}
	CHECK_STR(b->name, want_broker);
	CHECK_STR(rest, want_rest);
	CHECK(rest >= topic && rest <= topic + strlen(topic)); /* into topic */
}

static void test_route(void)
{
	/* declared out of order on purpose */
	CHECK_INT(load("[broker ab]\ntype = loopback\nmount = a/b/\ntopic = # both\n"
		       "[broker root]\ntype = loopback\ntopic = # both\n"
		       "[broker a]\ntype = loopback\nmount = a/\ntopic = # both\n",
		       loopback_dir), 0);
	CHECK_STR(errtext, "");
	check_route("a/b/c", "ab", "c");
	check_route("a/b/c/d", "ab", "c/d");
	check_route("a/b", "a", "b");             /* "a/b" is not under "a/b/" */
	check_route("a/bc/d", "a", "bc/d");       /* whole levels only */
	check_route("a/x", "a", "x");
	check_route("a/b/", "a", "b/");           /* nothing after a/b/ */
	check_route("a/", "root", "a/");
	check_route("a", "root", "a");
	check_route("ab/c", "root", "ab/c");
	check_route("x/a/b/c", "root", "x/a/b/c");
	check_route("/a/b/c", "root", "/a/b/c");
	check_route("", NULL, NULL);
	/* the NULL out-parameter is allowed */
	CHECK(broker_set_route(set, "a/b/z", NULL) == broker("ab"));

	/* without a root mount, a topic outside every mount has no broker */
	CHECK_INT(load("[broker a]\ntype = loopback\nmount = a/\ntopic = # both\n"
		       "[broker ab]\ntype = loopback\nmount = a/b/\ntopic = # both\n",
		       loopback_dir), 0);
	check_route("a/b/c", "ab", "c");
	check_route("a/c", "a", "c");
	check_route("b/c", NULL, NULL);
	check_route("a", NULL, NULL);
	check_route("a/", NULL, NULL);
	unload();
}

static void test_walls(void)
{
	struct broker *a, *c;

	CHECK_INT(load("[broker a]\ntype = loopback\nmount = a/\n"
		       "topic = sensors/# in\ntopic = cmd/# out 1\ntopic = both/+ both\n"
		       "[broker c]\ntype = loopback\nmount = c/\ntopic = status in 1\n",
		       loopback_dir), 0);
	a = broker("a");
	c = broker("c");
	CHECK_INT(a->ntopics, 3);
	CHECK_INT(a->nin, 2);
	CHECK_INT(a->nout, 2);
	CHECK_STR(a->topics[1].filter, "cmd/#");  /* broker side, no mount */
	CHECK_INT(a->topics[1].dir, MQGATE_DIR_OUT);
	CHECK_INT(a->topics[1].qos, 1);
	CHECK_STR(a->in_filters[0], "a/sensors/#"); /* browser side */

	/* publish: broker-side topics inside out/both walls */
	CHECK(broker_may_publish(a, "cmd/go"));
	CHECK(broker_may_publish(a, "cmd/x/y/z"));
	CHECK(broker_may_publish(a, "cmd"));       /* cmd/# covers cmd */
	CHECK(broker_may_publish(a, "both/1"));
	CHECK(!broker_may_publish(a, "both/1/2"));
	CHECK(!broker_may_publish(a, "both"));
	CHECK(!broker_may_publish(a, "sensors/t")); /* in only */
	CHECK(!broker_may_publish(a, "commands"));
	CHECK(!broker_may_publish(a, "a/cmd/go")); /* the mount is not part */
	CHECK(!broker_may_publish(c, "status"));   /* in only */

	/* subscribe: browser-side filters that can meet an in/both wall */
	CHECK(broker_set_may_subscribe(set, "a/sensors/#"));
	CHECK(broker_set_may_subscribe(set, "a/sensors/+/temp"));
	CHECK(broker_set_may_subscribe(set, "a/sensors"));
	CHECK(broker_set_may_subscribe(set, "a/#"));      /* wider: granted */
	CHECK(broker_set_may_subscribe(set, "#"));
	CHECK(broker_set_may_subscribe(set, "+/sensors/x"));
	CHECK(broker_set_may_subscribe(set, "a/+"));      /* meets a/sensors */
	CHECK(broker_set_may_subscribe(set, "a/both/1"));
	CHECK(broker_set_may_subscribe(set, "c/status"));
	CHECK(broker_set_may_subscribe(set, "c/+"));
	CHECK(!broker_set_may_subscribe(set, "a/cmd/#")); /* out only */
	CHECK(!broker_set_may_subscribe(set, "a/cmd/x"));
	CHECK(!broker_set_may_subscribe(set, "a/both/1/2"));
	CHECK(!broker_set_may_subscribe(set, "c/status/x"));
	CHECK(!broker_set_may_subscribe(set, "sensors/#")); /* no mount */
	CHECK(!broker_set_may_subscribe(set, "b/#"));
	CHECK(!broker_set_may_subscribe(set, "other/#"));

	/* '$' topics are not met by a leading wildcard (PROTOCOL.md) */
	CHECK_INT(load("[broker r]\ntype = loopback\ntopic = # both\n"
		       "topic = $SYS/# in\n", loopback_dir), 0);
	CHECK(broker_may_publish(broker("r"), "x/y"));
	CHECK(!broker_may_publish(broker("r"), "$SYS/x"));
	CHECK(broker_set_may_subscribe(set, "$SYS/broker/#"));
	unload();
}

/* ---- states ------------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_all_up(void)
{
	struct broker_set none = { NULL, 0 };
	struct broker *x, *y;

	CHECK(broker_set_all_up(&none));
	CHECK_INT(load("[broker x]\ntype = loopback\nmount = x/\ntopic = # both\n"
		       "[broker y]\ntype = loopback\nmount = y/\ntopic = # both\n",
		       loopback_dir), 0);
	x = broker("x");
	y = broker("y");
	CHECK(!broker_set_all_up(set));            /* both connecting */
	x->state = MQGATE_STATE_CONNECTED;
	CHECK(!broker_set_all_up(set));
	y->state = MQGATE_STATE_CONNECTED;
	CHECK(broker_set_all_up(set));
	x->state = MQGATE_STATE_DOWN;
	CHECK(!broker_set_all_up(set));
	x->state = MQGATE_STATE_CONNECTING;
	CHECK(!broker_set_all_up(set));
	x->state = MQGATE_STATE_CONNECTED;
	CHECK(broker_set_all_up(set));
	CHECK_STR(broker_state_name(MQGATE_STATE_CONNECTED), "connected");
	CHECK_STR(broker_state_name(MQGATE_STATE_CONNECTING), "connecting");
	CHECK_STR(broker_state_name(MQGATE_STATE_DOWN), "down");
	CHECK_STR(broker_state_name((enum mqgate_broker_state)42), "down");
	unload();
}

/* Through the real path: the loopback plugin reports CONNECTED from its
 * start() via the host callback into the inbox; the hub applies it. A
 * publish comes back as a completion and a message carrying the broker. */
static void test_start_and_states(void)
{
	struct inbox_event *e, *ev;
	struct broker *x, *y;
	bool done = false, looped = false;
	int64_t until;

	CHECK_INT(load("[broker x]\ntype = loopback\nmount = x/\ntopic = # both\n"
		       "[broker y]\ntype = loopback\nmount = y/\ntopic = # both\n",
		       loopback_dir), 0);
	x = broker("x");
	y = broker("y");
	msg_set_epoch(1000);
	if (hub_init(conf) < 0)
		exit(99);
	hub.brokers = set;
	hub.inbox = inbox_new(100, 1 << 20, NULL, NULL);
	if (!hub.inbox)
		exit(99);
	CHECK_INT(broker_set_start(set, hub.inbox), 0);
	CHECK(x->instance != NULL && y->instance != NULL);
	CHECK(x->inbox == hub.inbox);
	CHECK(!broker_set_all_up(set));            /* not applied yet */
	hub_drain_inbox();
	CHECK(broker_set_all_up(set));
	CHECK_INT(x->connects, 1);
	CHECK_INT(y->connects, 1);

	CHECK_INT(inbox_push_state(hub.inbox, y, MQGATE_STATE_DOWN, "cable cut"), 0);
	hub_drain_inbox();
	CHECK(!broker_set_all_up(set));
	CHECK_STR(y->why, "cable cut");
	CHECK_INT(inbox_push_state(hub.inbox, y, MQGATE_STATE_CONNECTED, NULL), 0);
	hub_drain_inbox();
	CHECK(broker_set_all_up(set));
	CHECK_INT(y->connects, 2);
	CHECK_STR(y->why, "");

	/* host_publish_done and host_deliver carry the broker */
	CHECK_INT(x->be->publish(x->instance, "t/1", "hi", 2, 0, false, 77), 0);
	until = now_ms() + 5000;
	while ((!done || !looped) && now_ms() < until) {
		ev = inbox_take(hub.inbox);
		for (; ev; ev = e) {
			e = ev->next;
			CHECK(ev->broker == x);
			if (ev->kind == INBOX_PUBLISH_DONE) {
				CHECK_INT(ev->token, 77);
				CHECK_INT(ev->result, MQGATE_PUB_OK);
				done = true;
			} else if (ev->kind == INBOX_MESSAGE) {
				CHECK_MEM(ev->topic, ev->topic_len, "t/1");
				CHECK_MEM(ev->payload, ev->payload_len, "hi");
				looped = true;
			}
			inbox_event_free(ev);
		}
		usleep(1000);
	}
	CHECK(done);
	CHECK(looped);

	broker_set_free(set);
	set = NULL;
	hub.brokers = NULL;
	hub_fini();
	inbox_free(hub.inbox);
	memset(&hub, 0, sizeof(hub));
	unload();
}

/* create() or start() failing: broker_set_start says so, and the set can
 * still be freed (a created instance is destroyed). */
static void test_start_failures(void)
{
	struct inbox *ib = inbox_new(100, 1 << 20, NULL, NULL);

	if (!ib)
		exit(99);
	fprintf(stderr, "(two start errors expected)\n");
	CHECK_INT(load("[broker k]\ntype = testkeys\ntopic = a in\nfail_create = yes\n",
		       test_dir), 0);
	CHECK_INT(broker_set_start(set, ib), -EINVAL);
	CHECK(broker("k")->instance == NULL);
	unload();
	CHECK_INT(load("[broker k]\ntype = testkeys\ntopic = a in\nfail_start = yes\n",
		       test_dir), 0);
	CHECK_INT(broker_set_start(set, ib), -EIO);
	CHECK(broker("k")->instance != NULL);
	unload();
	/* the host struct passes the plugin's own ABI check */
	CHECK_INT(load("[broker k]\ntype = testkeys\ntopic = a in\n", test_dir), 0);
	CHECK_INT(broker_set_start(set, ib), 0);
	unload();
	inbox_free(ib);
}

/* ---- plugin directory --------------------------------------------------- */

static void test_plugin_dir(void)
{
	char *saved = getenv("MQGATE_PLUGIN_DIR") ? strdup(getenv("MQGATE_PLUGIN_DIR"))
						   : NULL;
	struct conf *c = NULL;
	char want[PATH_MAX + 16], cwd[PATH_MAX];
	const char *text;

	setenv("MQGATE_PLUGIN_DIR", "/from/env", 1);
	text = "[server]\nplugin_dir = /from/conf\n";
	CHECK_INT(conf_load_string("p.conf", text, strlen(text), stderr, &c), 0);
	CHECK_STR(broker_plugin_dir(c), "/from/conf");  /* conf wins */
	conf_free(c);
	text = "[server]\nplugin_dir = rel/plugins\n";
	CHECK_INT(conf_load_string("p.conf", text, strlen(text), stderr, &c), 0);
	if (!getcwd(cwd, sizeof(cwd)))
		exit(99);
	snprintf(want, sizeof(want), "%s/rel/plugins", cwd);
	CHECK_STR(broker_plugin_dir(c), want);
	conf_free(c);

	text = "[server]\nplugin_dir =\n";
	CHECK_INT(conf_load_string("p.conf", text, strlen(text), stderr, &c), 0);
	CHECK_STR(broker_plugin_dir(c), "/from/env");   /* then the environment */
	CHECK_STR(broker_plugin_dir(NULL), "/from/env");
	setenv("MQGATE_PLUGIN_DIR", "", 1);
	CHECK_STR(broker_plugin_dir(c), PKGLIBDIR);     /* then the built-in */
	unsetenv("MQGATE_PLUGIN_DIR");
	CHECK_STR(broker_plugin_dir(c), PKGLIBDIR);
	CHECK_STR(broker_plugin_dir(NULL), PKGLIBDIR);
	conf_free(c);

	if (saved) {
		setenv("MQGATE_PLUGIN_DIR", saved, 1);
		free(saved);
	}
}

/* Where the plugins are: $MQGATE_PLUGIN_DIR for loopback, .libs next to
 * this program for the test plugins (both relative to $top_builddir when
 * make check sets it). */
static void find_dirs(const char *argv0)
{
	const char *env = getenv("MQGATE_PLUGIN_DIR");
	const char *top = getenv("top_builddir");
	char buf[PATH_MAX];

	if (top && top[0]) {
		snprintf(test_dir, sizeof(test_dir), "%s/tests/unit/.libs", top);
		snprintf(loopback_dir, sizeof(loopback_dir), "%s/plugins/.libs", top);
	} else {
		const char *here;

		snprintf(buf, sizeof(buf), "%s", argv0);
		here = dirname(buf);
		snprintf(test_dir, sizeof(test_dir), "%s/.libs", here);
		snprintf(loopback_dir, sizeof(loopback_dir), "%s/../../plugins/.libs",
			 here);
	}
	if (env && env[0])
		snprintf(loopback_dir, sizeof(loopback_dir), "%s", env);
}

int main(int argc, char **argv)
{
	(void)argc;
	find_dirs(argv[0]);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 99;
	}
	test_unknown_type();
	test_bad_plugins();
	test_keys();
	test_plugin_check();
	test_paths();
	test_route();
	test_walls();
	test_all_up();
	test_start_and_states();
	test_start_failures();
	test_plugin_dir();
	unload();
	free(errtext);
	{
		char cmd[sizeof(tmpdir) + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
	return check_summary("test_backend");
}
