/*
 * test_amqp.c - plugins/amqp.c through the fake host against a private
 * RabbitMQ node (tests/tools/rabbitmq-node; exit 77 without RabbitMQ).
 *
 * A second rabbitmq-c connection in this file plays the devices: it
 * publishes to amq.topic and reads queues with basic.get, so what the
 * plugin delivers and publishes is compared as exact bytes. Covered:
 * check() on urls and keys; delivery with topic mapping, exact (binary)
 * bytes and the timestamp; routing keys holding '/' and ones that map to
 * no topic; wildcard bindings both ways; QoS 1 publishes confirmed,
 * unroutable ones rejected (also interleaved, and many at once); QoS 0;
 * a durable queue keeping messages while the plugin is down; a broker
 * restart (down, then connected, rebound, delivering); connection.blocked;
 * deliver() refusing a message; wrong password, unknown vhost, missing
 * exchange and a refused connection reported and retried.
 *
 * Owns: the node (started once; a guard process stops it and removes its
 * directory when this program ends in any way).
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "plugin_host.h"

#define WAIT_UP_MS 60000    /* connect, including a reconnect backoff */
#define WAIT_MS 10000

static char plugin_path[PATH_MAX];
static char node_script[PATH_MAX];
static char node_dir[PATH_MAX];
static int node_port;
static int node_tls_port;   /* AMQPS (RABBITMQ_NODE_TLS=1) */
static char url[128];

/* ---- the node ------------------------------------------------------------ */

static int node_cmd(const char *cmd, char *out, size_t outlen)
{
	char line[PATH_MAX * 2 + 64];
	FILE *f;
	int st;

	snprintf(line, sizeof(line), "'%s' %s '%s'", node_script, cmd, node_dir);
	f = popen(line, "r");
	if (!f)
		return -1;
	if (out) {
		out[0] = '\0';
		if (!fgets(out, (int)outlen, f))
			out[0] = '\0';
	}
	while (fgetc(f) != EOF)
		;
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs rabbitmqctl against the node; its output goes to out (may be
 * NULL). Exit status. */
static int node_ctl(const char *args, char *out, size_t outlen)
{
	char line[PATH_MAX * 2 + 256];
	size_t n = 0;
	FILE *f;
	int c, st;

	snprintf(line, sizeof(line), "'%s' ctl '%s' %s 2>&1", node_script,
		 node_dir, args);
	f = popen(line, "r");
	if (!f)
		return -1;
	while ((c = fgetc(f)) != EOF)
		if (out && n + 1 < outlen)
			out[n++] = (char)c;
	if (out)
		out[n] = '\0';
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* TLS_PORT from the node's node.env. */
static int node_read_tls_port(void)
{
	char path[PATH_MAX + 16], line[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/node.env", node_dir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "TLS_PORT=%d", &node_tls_port) == 1)
			break;
	fclose(f);
	return node_tls_port > 0 ? 0 : -1;
}

static int node_start(void)
{
	char out[256];
	int r = node_cmd("start", out, sizeof(out));

	if (r != 0)
		return r;
	if (sscanf(out, "%d", &node_port) != 1 || node_port <= 0) {
		fprintf(stderr, "rabbitmq-node printed \"%s\"\n", out);
		return -1;
	}
	return node_read_tls_port();
}

/* A process that outlives this one only to stop the node and remove its
 * directory: it waits for EOF on a pipe whose write end only this
 * process holds (close-on-exec, so the node does not inherit it). */
static int node_guard(void)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char c, cmd[PATH_MAX * 3 + 64];

		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		close(p[1]);
		while (read(p[0], &c, 1) != 0)
			if (errno != EINTR)
				break;
		snprintf(cmd, sizeof(cmd), "'%s' stop '%s' >/dev/null 2>&1; "
			 "rm -rf '%s'", node_script, node_dir, node_dir);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(1);
	}
	close(p[0]);
	return 0;
}

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* ---- the devices' client ------------------------------------------------- */

struct tc_msg {
	char key[256];
	unsigned char body[4096];
	size_t len;
	uint8_t delivery_mode;
	char message_id[128];
};

static bool tc_reply_ok(amqp_rpc_reply_t r, const char *what)
{
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return true;
	fprintf(stderr, "test client: %s failed (reply type %d, library error "
		"%s)\n", what, r.reply_type,
		amqp_error_string2(r.library_error));
	return false;
}

static amqp_connection_state_t tc_open(void)
{
	amqp_connection_state_t c = amqp_new_connection();
	amqp_socket_t *s = c ? amqp_tcp_socket_new(c) : NULL;

	if (!s || amqp_socket_open(s, "127.0.0.1", node_port) != 0) {
		fprintf(stderr, "test client: cannot connect to port %d\n",
			node_port);
		goto fail;
	}
	if (!tc_reply_ok(amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
				    "guest", "guest"), "login"))
		goto fail;
	amqp_channel_open(c, 1);
	if (!tc_reply_ok(amqp_get_rpc_reply(c), "channel.open"))
		goto fail;
	return c;
fail:
	if (c)
		amqp_destroy_connection(c);
	return NULL;
}

static void tc_close(amqp_connection_state_t c)
{
	if (!c)
		return;
	amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
	amqp_connection_close(c, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(c);
}

/* Publishes bytes to exchange x; ts = 0 sets no timestamp. */
static int tc_publish_x(amqp_connection_state_t c, const char *x,
			const char *key, const void *body, size_t len,
			uint64_t ts)
{
	amqp_basic_properties_t p = { 0 };
	amqp_bytes_t b = { len, (void *)body };

	if (ts) {
		p._flags = AMQP_BASIC_TIMESTAMP_FLAG;
		p.timestamp = ts;
	}
	return amqp_basic_publish(c, 1, amqp_cstring_bytes(x),
				  amqp_cstring_bytes(key), 0, 0, &p, b);
}

static int tc_publish(amqp_connection_state_t c, const char *key,
		      const void *body, size_t len, uint64_t ts)
{
	return tc_publish_x(c, "amq.topic", key, body, len, ts);
}

/* Declares a queue (name NULL: server-named, exclusive) bound to key on
 * amq.topic; its name goes to out. */
static int tc_queue(amqp_connection_state_t c, const char *name,
		    const char *key, char *out, size_t outlen)
{
	amqp_queue_declare_ok_t *q;

	q = amqp_queue_declare(c, 1, name ? amqp_cstring_bytes(name)
					  : amqp_empty_bytes,
			       0, 0, name == NULL, 1, amqp_empty_table);
	if (!q || !tc_reply_ok(amqp_get_rpc_reply(c), "queue.declare"))
		return -1;
	snprintf(out, outlen, "%.*s", (int)q->queue.len,
		 (const char *)q->queue.bytes);
	amqp_queue_bind(c, 1, amqp_cstring_bytes(out),
			amqp_cstring_bytes("amq.topic"), amqp_cstring_bytes(key),
			amqp_empty_table);
	return tc_reply_ok(amqp_get_rpc_reply(c), "queue.bind") ? 0 : -1;
}

/* The next message of queue (basic.get, polled). 0 or -ETIMEDOUT. */
static int tc_get(amqp_connection_state_t c, const char *queue,
		  int timeout_ms, struct tc_msg *out)
{
	int64_t end = plugin_host_now_ms() + timeout_ms;

	memset(out, 0, sizeof(*out));
	do {
		amqp_rpc_reply_t r = amqp_basic_get(c, 1, amqp_cstring_bytes(queue), 1);
		amqp_message_t m;

		if (!tc_reply_ok(r, "basic.get"))
			return -EIO;
		if (r.reply.id == AMQP_BASIC_GET_OK_METHOD) {
			const amqp_basic_get_ok_t *ok = r.reply.decoded;

			snprintf(out->key, sizeof(out->key), "%.*s",
				 (int)ok->routing_key.len,
				 (const char *)ok->routing_key.bytes);
			if (!tc_reply_ok(amqp_read_message(c, 1, &m, 0),
					 "reading a message"))
				return -EIO;
			out->len = m.body.len;
			memcpy(out->body, m.body.bytes,
			       m.body.len < sizeof(out->body) ? m.body.len
							      : sizeof(out->body));
			if (m.properties._flags & AMQP_BASIC_DELIVERY_MODE_FLAG)
				out->delivery_mode = m.properties.delivery_mode;
			if (m.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG)
				snprintf(out->message_id, sizeof(out->message_id),
					 "%.*s", (int)m.properties.message_id.len,
					 (const char *)m.properties.message_id.bytes);
			amqp_destroy_message(&m);
			return 0;
		}
		usleep(20000);
	} while (plugin_host_now_ms() < end);
	return -ETIMEDOUT;
}

/* ---- plugin helpers ------------------------------------------------------- */

static struct plugin_host *ph_new(void)
{
	char err[256];
	struct plugin_host *ph = plugin_host_new(plugin_path, err, sizeof(err));

	if (!ph) {
		fprintf(stderr, "cannot load %s: %s\n", plugin_path, err);
		exit(99);
	}
	return ph;
}

/* A started plugin with settings kv (url added when not given). */
static struct plugin_host *start_with(const char *const *kv,
				      const struct mqgate_topic *topics,
				      size_t ntopics)
{
	const char *all[16];
	char err[256], urlkv[160];
	struct plugin_host *ph = ph_new();
	size_t n = 0;
	bool has_url = false;

	for (; kv && kv[n] && n < 14; n++) {
		all[n] = kv[n];
		if (strncmp(kv[n], "url=", 4) == 0)
			has_url = true;
	}
	if (!has_url) {
		snprintf(urlkv, sizeof(urlkv), "url=%s", url);
		all[n++] = urlkv;
	}
	all[n] = NULL;
	if (plugin_host_configure(ph, all, topics, ntopics, err, sizeof(err))) {
		fprintf(stderr, "configure: %s\n", err);
		CHECK(!"configure failed");
	}
	CHECK_INT(plugin_host_check(ph, err, sizeof(err)), -2);
	CHECK_INT(plugin_host_start(ph, err, sizeof(err)), 0);
	return ph;
}

static bool msg_is(struct plugin_host *ph, long i, const char *topic,
		   const void *payload, size_t len)
{
	struct ph_message m;

	if (i < 0 || !plugin_host_message(ph, (size_t)i, &m))
		return false;
	return strcmp(m.topic, topic) == 0 && m.len == len &&
	       memcmp(m.payload, payload, len) == 0;
}

/* ---- the tests ------------------------------------------------------------ */

/* check() result for one setting (plus the url unless given). */
static int check_one(const char *const *kv, const struct mqgate_topic *topics,
		     size_t ntopics, char *err, size_t errlen)
{
	struct plugin_host *ph = ph_new();
	int r;

	err[0] = '\0';
	r = plugin_host_configure(ph, kv, topics, ntopics, err, errlen);
	if (r == 0)
		r = plugin_host_check(ph, err, errlen);
	else
		r = -100; /* refused by the host's own key parsing */
	plugin_host_free(ph);
	return r;
}

static void test_check(void)
{
	static const struct mqgate_topic in[] = { { "a/+/b", MQGATE_DIR_IN, 1 } };
	static const struct mqgate_topic star[] = { { "a/*/b", MQGATE_DIR_IN, 1 } };
	static const struct mqgate_topic star_out[] = {
		{ "a/*/b", MQGATE_DIR_OUT, 1 }
	};
	char err[256], longf[400];
	struct mqgate_topic lt[1] = { { longf, MQGATE_DIR_IN, 0 } };
	const struct mqgate_backend *be;
	struct plugin_host *ph = ph_new();

	be = plugin_host_backend(ph);
	CHECK_STR(be->name, "amqp");
	CHECK_STR(be->keys[0].name, "url");
	CHECK_STR(be->keys[3].name, "exchange");
	CHECK_STR(be->keys[6].name, "prefetch");
	plugin_host_free(ph);

	CHECK_INT(check_one((const char *[]){ "url=amqp://127.0.0.1/", NULL },
			    in, 1, err, sizeof(err)), -2);
	CHECK_INT(check_one((const char *[]){ "url=amqps://u:p%40ss@[::1]:5671/v%2Fh",
					      "ca_file=/etc/ssl/ca.pem", NULL },
			    in, 1, err, sizeof(err)), -2);
	CHECK_INT(check_one((const char *[]){ "url=http://127.0.0.1/", NULL },
			    in, 1, err, sizeof(err)), 0);
	CHECK(strstr(err, "amqp://") != NULL);
	CHECK_INT(check_one((const char *[]){ "url=amqp://", NULL }, in, 1, err,
			    sizeof(err)), 0);
	CHECK_INT(check_one((const char *[]){ "url=amqp://host:0/", NULL }, in, 1,
			    err, sizeof(err)), 0);
	CHECK_INT(check_one((const char *[]){ "url=amqp://host:99999/", NULL }, in,
			    1, err, sizeof(err)), 0);
	CHECK_INT(check_one((const char *[]){ "url=amqp://host/%zz", NULL }, in, 1,
			    err, sizeof(err)), 0);
	CHECK_INT(check_one((const char *[]){ "url=127.0.0.1:5672", NULL }, in, 1,
			    err, sizeof(err)), 0);
	CHECK_INT(check_one((const char *[]){ "url=", NULL }, in, 1, err,
			    sizeof(err)), 0);
	CHECK_INT(check_one((const char *[]){ "exchange=bad name", NULL }, in, 1,
			    err, sizeof(err)), 3);
	CHECK(strstr(err, "exchange") != NULL);
	CHECK_INT(check_one((const char *[]){ "exchange=", NULL }, in, 1, err,
			    sizeof(err)), 3);
	CHECK_INT(check_one((const char *[]){ "exchange=x/y", NULL }, in, 1, err,
			    sizeof(err)), 3);
	CHECK_INT(check_one((const char *[]){ "exchange=my-x_1.a:b", NULL }, in,
			    1, err, sizeof(err)), -2);
	CHECK_INT(check_one((const char *[]){ "queue=amq.mine", NULL }, in, 1, err,
			    sizeof(err)), 4);
	CHECK_INT(check_one((const char *[]){ "queue=gw-1", NULL }, in, 1, err,
			    sizeof(err)), -2);
	CHECK_INT(check_one((const char *[]){ "prefetch=0", NULL }, in, 1, err,
			    sizeof(err)), -100);
	CHECK_INT(check_one((const char *[]){ "prefetch=65536", NULL }, in, 1, err,
			    sizeof(err)), -100);
	CHECK_INT(check_one((const char *[]){ "prefetch=65535", NULL }, in, 1, err,
			    sizeof(err)), -2);
	CHECK_INT(check_one((const char *[]){ "url=amqps://h/",
					      "cert_file=/c.pem", NULL },
			    in, 1, err, sizeof(err)), 8);
	CHECK(strstr(err, "together") != NULL);
	CHECK_INT(check_one((const char *[]){ "url=amqps://h/",
					      "key_file=/k.pem", NULL },
			    in, 1, err, sizeof(err)), 9);
	CHECK_INT(check_one((const char *[]){ "url=amqps://h/", "cert_file=/c.pem",
					      "key_file=/k.pem", NULL },
			    in, 1, err, sizeof(err)), -2);
	CHECK_INT(check_one((const char *[]){ "url=amqp://h/", "ca_file=/ca.pem",
					      NULL },
			    in, 1, err, sizeof(err)), 7);
	CHECK(strstr(err, "amqps://") != NULL);
	CHECK_INT(check_one((const char *[]){ "heartbeat=0", NULL }, in, 1, err,
			    sizeof(err)), -2);
	CHECK_INT(check_one((const char *[]){ "heartbeat=1000h", NULL }, in, 1,
			    err, sizeof(err)), -100);
	/* A literal '*' would be a wildcard in a binding key. */
	CHECK_INT(check_one((const char *[]){ "url=amqp://h/", NULL }, star, 1,
			    err, sizeof(err)), -1);
	CHECK(strstr(err, "'*'") != NULL);
	CHECK_INT(check_one((const char *[]){ "url=amqp://h/", NULL }, star_out, 1,
			    err, sizeof(err)), -2);
	memset(longf, 'x', 300);
	longf[300] = '\0';
	CHECK_INT(check_one((const char *[]){ "url=amqp://h/", NULL }, lt, 1, err,
			    sizeof(err)), -1);
}

static void test_deliver(void)
{
	static const struct mqgate_topic topics[] = {
		{ "line1/#", MQGATE_DIR_IN, 1 },
	};
	static const unsigned char bin[] = { 0x00, 0xff, 0x80, 'a', 0x00, 0xc3,
					     0x28, '\n', '\r', 0x7f };
	amqp_connection_state_t c = tc_open();
	struct plugin_host *ph = start_with(NULL, topics, 1);
	struct ph_message m;
	long i;

	CHECK(c != NULL);
	if (!c)
		goto out;
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, WAIT_UP_MS), 0);
	CHECK_INT(tc_publish(c, "line1.press.temp", "21.5", 4, 1700000000), 0);
	CHECK_INT(tc_publish(c, "line1.press.raw", bin, sizeof(bin), 0), 0);
	CHECK_INT(tc_publish(c, "line1.press.empty", "", 0, 0), 0);
	/* '/' in a routing key comes back as '.' in the topic. */
	CHECK_INT(tc_publish(c, "line1.v1/2.x", "s", 1, 0), 0);
	/* No MQTT topic name for these: dropped (and acked). */
	CHECK_INT(tc_publish(c, "line1.a#b", "h", 1, 0), 0);
	CHECK_INT(tc_publish(c, "line1.a+b", "p", 1, 0), 0);
	CHECK_INT(tc_publish(c, "line1.done", "end", 3, 0), 0);
	CHECK_INT(plugin_host_wait_messages(ph, 5, WAIT_MS), 0);
	CHECK_INT(plugin_host_message_count(ph), 5);

	i = plugin_host_find_message(ph, "line1/press/temp", 0);
	CHECK(msg_is(ph, i, "line1/press/temp", "21.5", 4));
	if (plugin_host_message(ph, (size_t)(i < 0 ? 0 : i), &m)) {
		CHECK_INT(m.ts_ms, 1700000000000LL);
		CHECK_INT(m.qos, 1);
		CHECK(!m.retain);
	}
	i = plugin_host_find_message(ph, "line1/press/raw", 0);
	CHECK(msg_is(ph, i, "line1/press/raw", bin, sizeof(bin)));
	if (plugin_host_message(ph, (size_t)(i < 0 ? 0 : i), &m))
		CHECK_INT(m.ts_ms, 0);
	i = plugin_host_find_message(ph, "line1/press/empty", 0);
	CHECK(msg_is(ph, i, "line1/press/empty", "", 0));
	i = plugin_host_find_message(ph, "line1/v1.2/x", 0);
	CHECK(msg_is(ph, i, "line1/v1.2/x", "s", 1));
	CHECK(plugin_host_find_message(ph, "line1/done", 0) == 4);
	CHECK(plugin_host_log_count(ph, "maps to no MQTT topic") >= 1);

	/* The dropped ones were acked: nothing is left in the queue. A
	 * message the host refuses as too large is acked and dropped too. */
	plugin_host_set_deliver_result(ph, -EMSGSIZE);
	CHECK_INT(tc_publish(c, "line1.big", "B", 1, 0), 0);
	CHECK_INT(plugin_host_wait_log(ph, "over the size limit", WAIT_MS), 0);
	plugin_host_set_deliver_result(ph, 0);
	CHECK_INT(tc_publish(c, "line1.after", "A", 1, 0), 0);
	CHECK_INT(plugin_host_wait_messages(ph, 6, WAIT_MS), 0);
	CHECK(msg_is(ph, 5, "line1/after", "A", 1));
	usleep(300000);
	CHECK_INT(plugin_host_message_count(ph), 6);
	CHECK_INT(plugin_host_state_count(ph, MQGATE_STATE_DOWN), 0);
out:
	plugin_host_free(ph);
	tc_close(c);
}

/* Whether a binding with routing key `key` exists on the node. */
static bool bindings_have(const char *key)
{
	char line[PATH_MAX * 2 + 128];
	bool found = false;
	FILE *f;

	snprintf(line, sizeof(line), "'%s' ctl '%s' -q list_bindings "
		 "routing_key 2>/dev/null", node_script, node_dir);
	f = popen(line, "r");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strcmp(line, key) == 0)
			found = true;
	}
	pclose(f);
	return found;
}

static void test_wildcards(void)
{
	static const struct mqgate_topic topics[] = {
		{ "line1/+/temp", MQGATE_DIR_IN, 0 },
		{ "plant/#", MQGATE_DIR_BOTH, 1 },
		{ "cmd/#", MQGATE_DIR_OUT, 1 },
	};
	amqp_connection_state_t c = tc_open();
	struct plugin_host *ph = start_with(NULL, topics, 3);
	struct ph_message m;
	struct ph_done d;
	struct tc_msg got;
	char q[256];

	CHECK(c != NULL);
	if (!c)
		goto out;
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, WAIT_UP_MS), 0);
	CHECK(bindings_have("line1.*.temp"));
	CHECK(bindings_have("plant.#"));
	CHECK(!bindings_have("cmd.#"));

	CHECK_INT(tc_publish(c, "line1.press.hum", "no", 2, 0), 0);
	CHECK_INT(tc_publish(c, "line1.a.b.temp", "no", 2, 0), 0);
	CHECK_INT(tc_publish(c, "line2.press.temp", "no", 2, 0), 0);
	CHECK_INT(tc_publish(c, "line1.press.temp", "yes1", 4, 0), 0);
	CHECK_INT(tc_publish(c, "plant", "yes2", 4, 0), 0);
	CHECK_INT(tc_publish(c, "plant.a.b.c", "yes3", 4, 0), 0);
	CHECK_INT(plugin_host_wait_messages(ph, 3, WAIT_MS), 0);
	usleep(300000);
	CHECK_INT(plugin_host_message_count(ph), 3);
	CHECK(msg_is(ph, 0, "line1/press/temp", "yes1", 4));
	CHECK(msg_is(ph, 1, "plant", "yes2", 4));
	CHECK(msg_is(ph, 2, "plant/a/b/c", "yes3", 4));
	/* QoS is the matching line's. */
	if (plugin_host_message(ph, 0, &m))
		CHECK_INT(m.qos, 0);
	if (plugin_host_message(ph, 2, &m))
		CHECK_INT(m.qos, 1);

	/* The other way: a topic with '.' in a level goes out with '/'. */
	CHECK_INT(tc_queue(c, NULL, "cmd.*.temp", q, sizeof(q)), 0);
	CHECK_INT(plugin_host_publish(ph, "cmd/x.y/temp", "v", 1, 1, false, 11), 0);
	CHECK_INT(plugin_host_wait_done(ph, 11, WAIT_MS, &d), 0);
	CHECK_INT(d.result, MQGATE_PUB_OK);
	CHECK_INT(tc_get(c, q, WAIT_MS, &got), 0);
	CHECK_STR(got.key, "cmd.x/y.temp");
	CHECK_MEM(got.body, got.len, "v");
out:
	plugin_host_free(ph);
	tc_close(c);
}

static void test_publish(void)
{
	static const struct mqgate_topic topics[] = {
		{ "cmd/#", MQGATE_DIR_OUT, 1 },
	};
	static const unsigned char bin[] = { 0xde, 0xad, 0x00, 0xbe, 0xef, 0xff };
	amqp_connection_state_t c = tc_open();
	struct plugin_host *ph = start_with(NULL, topics, 1);
	struct ph_done d;
	struct tc_msg got;
	char q[256], q2[256];
	size_t ok = 0, rejected = 0, want_ok = 0, want_rejected = 0, wrong = 0;

	CHECK(c != NULL);
	if (!c)
		goto out;
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, WAIT_UP_MS), 0);
	CHECK_INT(tc_queue(c, NULL, "cmd.line1.x", q, sizeof(q)), 0);

	/* QoS 1 to a bound key: confirmed, exact bytes, persistent. */
	CHECK_INT(plugin_host_publish(ph, "cmd/line1/x", bin, sizeof(bin), 1,
				      false, 1), 0);
	CHECK_INT(plugin_host_wait_done(ph, 1, WAIT_MS, &d), 0);
	CHECK_INT(d.result, MQGATE_PUB_OK);
	CHECK_INT(tc_get(c, q, WAIT_MS, &got), 0);
	CHECK_STR(got.key, "cmd.line1.x");
	CHECK_INT(got.len, sizeof(bin));
	CHECK(memcmp(got.body, bin, sizeof(bin)) == 0);
	CHECK_INT(got.delivery_mode, 2);
	CHECK(strncmp(got.message_id, "mqgate-", 7) == 0);

	/* QoS 0: done once written, transient. */
	CHECK_INT(plugin_host_publish(ph, "cmd/line1/x", "zero", 4, 0, false, 2),
		  0);
	CHECK_INT(plugin_host_wait_done(ph, 2, WAIT_MS, &d), 0);
	CHECK_INT(d.result, MQGATE_PUB_OK);
	CHECK_INT(tc_get(c, q, WAIT_MS, &got), 0);
	CHECK_MEM(got.body, got.len, "zero");
	CHECK_INT(got.delivery_mode, 1);

	/* QoS 1 nobody is bound for: rejected, naming the key. */
	CHECK_INT(plugin_host_publish(ph, "cmd/nobody", "x", 1, 1, false, 3), 0);
	CHECK_INT(plugin_host_wait_done(ph, 3, WAIT_MS, &d), 0);
	CHECK_INT(d.result, MQGATE_PUB_REJECTED);
	CHECK(strstr(d.why, "no queue is bound for routing key cmd.nobody") != NULL);
	/* QoS 0 nobody is bound for: fire and forget. */
	CHECK_INT(plugin_host_publish(ph, "cmd/nobody", "x", 1, 0, false, 4), 0);
	CHECK_INT(plugin_host_wait_done(ph, 4, WAIT_MS, &d), 0);
	CHECK_INT(d.result, MQGATE_PUB_OK);

	/* Interleaved routable and unroutable QoS 1 publishes: each gets its
	 * own answer, exactly once. */
	for (uint64_t t = 100; t < 300; t++)
		CHECK_INT(plugin_host_publish(ph, t % 3 ? "cmd/line1/x" : "cmd/void",
					      &t, sizeof(t), 1, false, t), 0);
	for (uint64_t t = 100; t < 300; t++) {
		*(t % 3 ? &want_ok : &want_rejected) += 1;
		if (plugin_host_wait_done(ph, t, WAIT_MS, &d) < 0) {
			wrong++;
			continue;
		}
		if (plugin_host_done_count(ph, t) != 1)
			wrong++;
		if (t % 3 ? d.result == MQGATE_PUB_OK
			  : d.result == MQGATE_PUB_REJECTED)
			*(t % 3 ? &ok : &rejected) += 1;
		else
			wrong++;
	}
	CHECK_INT(wrong, 0);
	CHECK_INT(ok, want_ok);
	CHECK_INT(rejected, want_rejected);
	CHECK(want_ok > 0 && want_rejected > 0);
	for (uint64_t t = 100; t < 300; t++) {
		if (!(t % 3))
			continue;
		if (tc_get(c, q, WAIT_MS, &got) < 0 || got.len != sizeof(t) ||
		    memcmp(got.body, &t, sizeof(t)) != 0) {
			CHECK(!"routable publishes arrive in order");
			break;
		}
	}

	/* Many at once: confirms (also `multiple` ones) complete them all. */
	CHECK_INT(tc_queue(c, NULL, "cmd.bulk", q2, sizeof(q2)), 0);
	for (uint64_t t = 1000; t < 6000; t++)
		if (plugin_host_publish(ph, "cmd/bulk", &t, sizeof(t), 1, false,
					t) != 0) {
			CHECK(!"bulk publish accepted");
			break;
		}
	wrong = 0;
	for (uint64_t t = 1000; t < 6000; t++)
		if (plugin_host_wait_done(ph, t, WAIT_MS, &d) < 0 ||
		    d.result != MQGATE_PUB_OK || plugin_host_done_count(ph, t) != 1)
			wrong++;
	CHECK_INT(wrong, 0);
	CHECK_INT(plugin_host_done_total(ph), 4 + 200 + 5000);

	/* A topic longer than a routing key may be. */
	{
		char lt[400];

		memset(lt, 'a', sizeof(lt) - 1);
		memcpy(lt, "cmd/", 4);
		lt[sizeof(lt) - 1] = '\0';
		CHECK_INT(plugin_host_publish(ph, lt, "x", 1, 1, false, 7000), 0);
		CHECK_INT(plugin_host_wait_done(ph, 7000, WAIT_MS, &d), 0);
		CHECK_INT(d.result, MQGATE_PUB_REJECTED);
	}
out:
	plugin_host_free(ph);
	tc_close(c);
}

static void test_durable_queue(void)
{
	static const struct mqgate_topic topics[] = {
		{ "dur/#", MQGATE_DIR_IN, 1 },
	};
	static const char *const kv[] = { "queue=mqgate-test-durable", NULL };
	amqp_connection_state_t c = tc_open();
	struct plugin_host *ph = start_with(kv, topics, 1);

	CHECK(c != NULL);
	if (!c)
		goto out;
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, WAIT_UP_MS), 0);
	CHECK_INT(tc_publish(c, "dur.1", "one", 3, 0), 0);
	CHECK_INT(plugin_host_wait_messages(ph, 1, WAIT_MS), 0);
	CHECK(msg_is(ph, 0, "dur/1", "one", 3));
	plugin_host_free(ph);

	/* Published while no mqgate runs: the queue keeps them. */
	CHECK_INT(tc_publish(c, "dur.2", "two", 3, 0), 0);
	CHECK_INT(tc_publish(c, "dur.3", "three", 5, 0), 0);
	usleep(200000);
	ph = start_with(kv, topics, 1);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, WAIT_UP_MS), 0);
	CHECK_INT(plugin_host_wait_messages(ph, 2, WAIT_MS), 0);
	CHECK(msg_is(ph, 0, "dur/2", "two", 3));
	CHECK(msg_is(ph, 1, "dur/3", "three", 5));
	plugin_host_free(ph);
	ph = NULL;
	amqp_queue_delete(c, 1, amqp_cstring_bytes("mqgate-test-durable"), 0, 0);
	CHECK(tc_reply_ok(amqp_get_rpc_reply(c), "queue.delete"));
out:
	plugin_host_free(ph);
	tc_close(c);
}

static void test_blocked(void)
{
	static const struct mqgate_topic topics[] = {
		{ "cmd/#", MQGATE_DIR_OUT, 1 },
	};
	struct plugin_host *ph = start_with(NULL, topics, 1);
	struct ph_done d;
	char out[1024];
	int r = -1;

	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, WAIT_UP_MS), 0);
	CHECK_INT(node_ctl("set_vm_memory_high_watermark 0.0000001", out,
			   sizeof(out)), 0);
	/* The broker blocks a connection once it publishes under an alarm. */
	for (uint64_t t = 1; t < 200; t++) {
		r = plugin_host_publish(ph, "cmd/a", "x", 1, 0, false, t);
		if (r != 0)
			break;
		if (plugin_host_wait_log(ph, "blocking publishers", 100) == 0) {
			r = plugin_host_publish(ph, "cmd/a", "x", 1, 0, false,
						t + 1000);
			break;
		}
	}
	CHECK_INT(r, -ENOTCONN);
	CHECK_INT(plugin_host_log_count(ph, "blocking publishers"), 1);
	CHECK_INT(node_ctl("set_vm_memory_high_watermark 0.4", out, sizeof(out)),
		  0);
	CHECK_INT(plugin_host_wait_log(ph, "accepts publishes again", WAIT_MS), 0);
	CHECK_INT(plugin_host_publish(ph, "cmd/a", "x", 1, 0, false, 5000), 0);
	CHECK_INT(plugin_host_wait_done(ph, 5000, WAIT_MS, &d), 0);
	CHECK_INT(d.result, MQGATE_PUB_OK);
	CHECK_INT(plugin_host_state_count(ph, MQGATE_STATE_DOWN), 0);
	plugin_host_free(ph);
}

static void test_broker_restart(void)
{
	static const struct mqgate_topic topics[] = {
		{ "r/#", MQGATE_DIR_BOTH, 1 },
	};
	struct plugin_host *ph = start_with(NULL, topics, 1);
	amqp_connection_state_t c = NULL;
	struct ph_done d;
	char q[256];

	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, WAIT_UP_MS), 0);
	CHECK_INT(node_cmd("stop", NULL, 0), 0);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_DOWN, WAIT_MS), 0);
	CHECK_INT(plugin_host_publish(ph, "r/x", "x", 1, 1, false, 1), -ENOTCONN);
	CHECK_INT(plugin_host_wait_log(ph, "connection refused", WAIT_MS), 0);
	CHECK_INT(node_start(), 0);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, WAIT_UP_MS), 0);
	CHECK_INT(plugin_host_state_count(ph, MQGATE_STATE_CONNECTED), 2);
	c = tc_open();
	CHECK(c != NULL);
	if (!c)
		goto out;
	/* Rebound: a message published now reaches the plugin. */
	CHECK_INT(tc_publish(c, "r.after", "back", 4, 0), 0);
	CHECK_INT(plugin_host_wait_messages(ph, 1, WAIT_MS), 0);
	CHECK(msg_is(ph, 0, "r/after", "back", 4));
	/* And publishing works again, confirmed. */
	CHECK_INT(tc_queue(c, NULL, "r.cmd", q, sizeof(q)), 0);
	CHECK_INT(plugin_host_publish(ph, "r/cmd", "c", 1, 1, false, 2), 0);
	CHECK_INT(plugin_host_wait_done(ph, 2, WAIT_MS, &d), 0);
	CHECK_INT(d.result, MQGATE_PUB_OK);
out:
	plugin_host_free(ph);
	tc_close(c);
}

/* The broker deletes what the plugin uses: the queue (basic.cancel), then
 * the exchange (a publish closes the channel; reopening finds no
 * exchange). The plugin reconnects, re-declares and delivers again. */
static void test_channel_errors(void)
{
	static const struct mqgate_topic topics[] = {
		{ "t/#", MQGATE_DIR_BOTH, 1 },
	};
	static const char *const kv[] = { "exchange=mqgate-test-x",
					  "queue=mqgate-test-q2", NULL };
	amqp_connection_state_t c = tc_open();
	struct plugin_host *ph = NULL;
	struct ph_done d;
	char why[200];

	CHECK(c != NULL);
	if (!c)
		return;
	amqp_exchange_declare(c, 1, amqp_cstring_bytes("mqgate-test-x"),
			      amqp_cstring_bytes("topic"), 0, 0, 0, 0,
			      amqp_empty_table);
	CHECK(tc_reply_ok(amqp_get_rpc_reply(c), "exchange.declare"));
	ph = start_with(kv, topics, 1);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, WAIT_UP_MS), 0);
	CHECK_INT(tc_publish_x(c, "mqgate-test-x", "t.1", "1", 1, 0), 0);
	CHECK_INT(plugin_host_wait_messages(ph, 1, WAIT_MS), 0);
	CHECK(msg_is(ph, 0, "t/1", "1", 1));

	amqp_queue_delete(c, 1, amqp_cstring_bytes("mqgate-test-q2"), 0, 0);
	CHECK(tc_reply_ok(amqp_get_rpc_reply(c), "queue.delete"));
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_DOWN, WAIT_MS), 0);
	CHECK_INT(plugin_host_wait_log(ph, "cancelled the consumer", WAIT_MS), 0);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, WAIT_UP_MS), 0);
	CHECK_INT(tc_publish_x(c, "mqgate-test-x", "t.2", "2", 1, 0), 0);
	CHECK_INT(plugin_host_wait_messages(ph, 2, WAIT_MS), 0);
	CHECK(msg_is(ph, 1, "t/2", "2", 1));

	amqp_exchange_delete(c, 1, amqp_cstring_bytes("mqgate-test-x"), 0);
	CHECK(tc_reply_ok(amqp_get_rpc_reply(c), "exchange.delete"));
	CHECK_INT(plugin_host_publish(ph, "t/gone", "g", 1, 1, false, 1), 0);
	CHECK_INT(plugin_host_wait_done(ph, 1, WAIT_MS, &d), 0);
	CHECK_INT(d.result, MQGATE_PUB_REJECTED);
	CHECK(strstr(d.why, "NOT_FOUND") != NULL);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_DOWN, WAIT_MS), 0);
	plugin_host_state(ph, why, sizeof(why));
	CHECK(strstr(why, "exchange mqgate-test-x not found") != NULL);
	CHECK_INT(plugin_host_wait_log(ph, "cannot connect", WAIT_MS), 0);

	amqp_exchange_declare(c, 1, amqp_cstring_bytes("mqgate-test-x"),
			      amqp_cstring_bytes("topic"), 0, 0, 0, 0,
			      amqp_empty_table);
	CHECK(tc_reply_ok(amqp_get_rpc_reply(c), "exchange.declare"));
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, WAIT_UP_MS), 0);
	CHECK_INT(plugin_host_state_count(ph, MQGATE_STATE_CONNECTED), 3);
	CHECK_INT(tc_publish_x(c, "mqgate-test-x", "t.3", "3", 1, 0), 0);
	CHECK_INT(plugin_host_wait_messages(ph, 3, WAIT_MS), 0);
	CHECK(msg_is(ph, 2, "t/3", "3", 1));
	plugin_host_free(ph);
	amqp_queue_delete(c, 1, amqp_cstring_bytes("mqgate-test-q2"), 0, 0);
	CHECK(tc_reply_ok(amqp_get_rpc_reply(c), "queue.delete"));
	amqp_exchange_delete(c, 1, amqp_cstring_bytes("mqgate-test-x"), 0);
	CHECK(tc_reply_ok(amqp_get_rpc_reply(c), "exchange.delete"));
	tc_close(c);
}

/* amqps:// with the node's test CA and a client certificate, to a host
 * name and to an IP address (the certificate names both); without the
 * certificate, and with a CA that did not sign the server's, the plugin
 * stays down with a reason and retries. */
static void test_tls(void)
{
	static const struct mqgate_topic topics[] = {
		{ "tls/#", MQGATE_DIR_BOTH, 1 },
	};
	char u[128], ca[PATH_MAX + 32], other[PATH_MAX + 32],
		cert[PATH_MAX + 32], key[PATH_MAX + 32], q[256], why[200];
	amqp_connection_state_t c = tc_open();
	struct plugin_host *ph;
	struct ph_done d;
	struct tc_msg got;

	CHECK(c != NULL);
	if (!c)
		return;
	snprintf(u, sizeof(u), "url=amqps://localhost:%d/", node_tls_port);
	snprintf(ca, sizeof(ca), "ca_file=%s/tls/ca.pem", node_dir);
	snprintf(other, sizeof(other), "ca_file=%s/tls/other-ca.pem", node_dir);
	snprintf(cert, sizeof(cert), "cert_file=%s/tls/client.pem", node_dir);
	snprintf(key, sizeof(key), "key_file=%s/tls/client.key", node_dir);

	CHECK_INT(tc_queue(c, NULL, "tls.out", q, sizeof(q)), 0);
	for (int i = 0; i < 2; i++) {
		const char *host = i ? "127.0.0.1" : "localhost";
		char hu[128], seen[64];

		snprintf(hu, sizeof(hu), "url=amqps://%s:%d/", host,
			 node_tls_port);
		snprintf(seen, sizeof(seen), "connected to amqps://%s:", host);
		ph = start_with((const char *[]){ hu, ca, cert, key, NULL },
				topics, 1);
		CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED,
						 WAIT_UP_MS), 0);
		CHECK_INT(plugin_host_log_count(ph, seen), 1);
		CHECK_INT(tc_publish(c, "tls.in", "secret", 6, 0), 0);
		CHECK_INT(plugin_host_wait_messages(ph, 1, WAIT_MS), 0);
		CHECK(msg_is(ph, 0, "tls/in", "secret", 6));
		CHECK_INT(plugin_host_publish(ph, "tls/out", "sealed", 6, 1, false,
					      1), 0);
		CHECK_INT(plugin_host_wait_done(ph, 1, WAIT_MS, &d), 0);
		CHECK_INT(d.result, MQGATE_PUB_OK);
		CHECK_INT(tc_get(c, q, WAIT_MS, &got), 0);
		CHECK_MEM(got.body, got.len, "sealed");
		plugin_host_free(ph);
	}

	ph = start_with((const char *[]){ u, ca, NULL }, topics, 1);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_DOWN, WAIT_UP_MS), 0);
	plugin_host_state(ph, why, sizeof(why));
	CHECK(strstr(why, "client certificate") != NULL);
	CHECK_INT(plugin_host_wait_log(ph, "retrying in", WAIT_MS), 0);
	CHECK_INT(plugin_host_state_count(ph, MQGATE_STATE_CONNECTED), 0);
	plugin_host_free(ph);

	ph = start_with((const char *[]){ u, other, cert, key, NULL }, topics, 1);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_DOWN, WAIT_UP_MS), 0);
	plugin_host_state(ph, why, sizeof(why));
	CHECK(strstr(why, "verification failed") != NULL);
	CHECK_INT(plugin_host_state_count(ph, MQGATE_STATE_CONNECTED), 0);
	plugin_host_free(ph);
	tc_close(c);
}

/* The node's OS process id, from its pid file; 0 when unknown. */
static pid_t node_os_pid(void)
{
	char path[PATH_MAX + 16];
	long pid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/node.pid", node_dir);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	return (pid_t)pid;
}

/* Heartbeats: an idle connection with a 1 s heartbeat stays up (the
 * plugin's thread sends them while nothing else happens); a broker that
 * freezes (SIGSTOP) is noticed by the missing heartbeats, and once it
 * runs again the plugin reconnects and delivers. */
static void test_heartbeat(void)
{
	static const struct mqgate_topic topics[] = {
		{ "hb/#", MQGATE_DIR_IN, 1 },
	};
	static const char *const kv[] = { "heartbeat=1s", NULL };
	struct plugin_host *ph = start_with(kv, topics, 1);
	amqp_connection_state_t c = NULL;
	pid_t pid = node_os_pid();
	char why[200];

	CHECK(pid > 0);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, WAIT_UP_MS), 0);
	usleep(6 * 1000 * 1000);
	CHECK_INT(plugin_host_state_count(ph, MQGATE_STATE_DOWN), 0);
	if (pid <= 0)
		goto out;
	CHECK_INT(kill(pid, SIGSTOP), 0);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_DOWN, WAIT_MS), 0);
	CHECK_INT(kill(pid, SIGCONT), 0);
	plugin_host_state(ph, why, sizeof(why));
	CHECK(strstr(why, "heartbeat") != NULL);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, WAIT_UP_MS), 0);
	c = tc_open();
	CHECK(c != NULL);
	if (!c)
		goto out;
	CHECK_INT(tc_publish(c, "hb.back", "b", 1, 0), 0);
	CHECK_INT(plugin_host_wait_messages(ph, 1, WAIT_MS), 0);
	CHECK(msg_is(ph, 0, "hb/back", "b", 1));
out:
	if (pid > 0)
		kill(pid, SIGCONT);
	plugin_host_free(ph);
	tc_close(c);
}

/* A setting that cannot work: reported clearly, retried, never a crash. */
static void expect_failure(const char *const *kv, const char *why_part)
{
	static const struct mqgate_topic topics[] = {
		{ "x/#", MQGATE_DIR_BOTH, 1 },
	};
	struct plugin_host *ph = start_with(kv, topics, 1);
	char why[200];

	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_DOWN, WAIT_UP_MS), 0);
	plugin_host_state(ph, why, sizeof(why));
	if (!strstr(why, why_part)) {
		fprintf(stderr, "state reason \"%s\" lacks \"%s\"\n", why,
			why_part);
		CHECK(!"clear state reason");
	}
	CHECK(plugin_host_log_count(ph, why_part) >= 1);
	/* It tries again (the first delays are 1-2 s, then 1-4 s). */
	CHECK_INT(plugin_host_wait_log(ph, "retrying in", WAIT_MS), 0);
	{
		int64_t end = plugin_host_now_ms() + WAIT_MS;

		while (plugin_host_log_count(ph, "cannot connect") < 2 &&
		       plugin_host_now_ms() < end)
			usleep(50000);
	}
	CHECK(plugin_host_log_count(ph, "cannot connect") >= 2);
	CHECK_INT(plugin_host_state_count(ph, MQGATE_STATE_CONNECTED), 0);
	CHECK_INT(plugin_host_publish(ph, "x/y", "z", 1, 1, false, 1), -ENOTCONN);
	plugin_host_free(ph);
}

static void test_failures(void)
{
	char u[200], bad_pw[220], vh[220], refused[220];

	snprintf(bad_pw, sizeof(bad_pw), "url=amqp://guest:nope@127.0.0.1:%d/",
		 node_port);
	expect_failure((const char *[]){ bad_pw, NULL },
		       "ACCESS_REFUSED: wrong user or password");
	/* The password key wins over the url's. */
	snprintf(u, sizeof(u), "url=amqp://guest:guest@127.0.0.1:%d/", node_port);
	expect_failure((const char *[]){ u, "password=wrong", NULL },
		       "ACCESS_REFUSED");
	snprintf(vh, sizeof(vh), "url=amqp://127.0.0.1:%d/no%%2Fsuch", node_port);
	expect_failure((const char *[]){ vh, NULL }, "vhost no/such not found");
	expect_failure((const char *[]){ "exchange=no.such.exchange", NULL },
		       "exchange no.such.exchange not found");
	snprintf(refused, sizeof(refused), "url=amqp://127.0.0.1:%d/", free_port());
	expect_failure((const char *[]){ refused, NULL }, "connection refused");
}

/* A publish queued while the connection is up and never confirmed (the
 * plugin is destroyed at once) completes exactly once. */
static void test_destroy_completes(void)
{
	static const struct mqgate_topic topics[] = {
		{ "cmd/#", MQGATE_DIR_OUT, 1 },
	};
	struct plugin_host *ph = start_with(NULL, topics, 1);
	size_t accepted = 0, wrong = 0;

	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, WAIT_UP_MS), 0);
	for (uint64_t t = 1; t <= 3000; t++)
		if (plugin_host_publish(ph, "cmd/d", &t, sizeof(t), 1, false, t) == 0)
			accepted++;
	plugin_host_stop(ph);
	CHECK_INT(accepted, 3000);
	for (uint64_t t = 1; t <= 3000; t++)
		if (plugin_host_done_count(ph, t) != 1)
			wrong++;
	CHECK_INT(wrong, 0);
	plugin_host_free(ph);
}

int main(void)
{
	const char *dir = getenv("MQGATE_PLUGIN_DIR");
	const char *top = getenv("top_srcdir");
	int r;

	snprintf(plugin_path, sizeof(plugin_path), "%s/amqp.so",
		 dir && dir[0] ? dir : "plugins/.libs");
	snprintf(node_script, sizeof(node_script), "%s/tests/tools/rabbitmq-node",
		 top && top[0] ? top : ".");
	if (access(node_script, X_OK) != 0) {
		fprintf(stderr, "no %s\n", node_script);
		return 99;
	}
	test_check();

	snprintf(node_dir, sizeof(node_dir), "/tmp/mqgate-amqp-XXXXXX");
	if (!mkdtemp(node_dir)) {
		perror("mkdtemp");
		return 99;
	}
	/* The node listens for AMQPS too (also after a restart). */
	setenv("RABBITMQ_NODE_TLS", "1", 1);
	if (node_guard() < 0) {
		perror("fork");
		return 99;
	}
	r = node_start();
	if (r == 77) {
		printf("SKIP: RabbitMQ is not installed\n");
		return 77;
	}
	if (r != 0) {
		fprintf(stderr, "cannot start a RabbitMQ node (%d)\n", r);
		return 99;
	}
	snprintf(url, sizeof(url), "amqp://127.0.0.1:%d/", node_port);

	test_deliver();
	test_wildcards();
	test_publish();
	test_durable_queue();
	test_channel_errors();
	test_tls();
	test_heartbeat();
	test_destroy_completes();
	test_failures();
	test_blocked();
	test_broker_restart();
	return check_summary("test_amqp");
}
