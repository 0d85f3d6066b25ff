/*
 * test_mqtt.c - plugins/mqtt.c through the fake host against a real,
 * private mosquitto on a free loopback port: check() on bad settings;
 * connect and subscribe; messages from another client arriving with exact
 * bytes, QoS and retain; publishes (QoS 0 and 1) completing and arriving;
 * ACL refusals (REJECTED) and the broker's packet size limit (-EMSGSIZE);
 * the broker killed (state leaves CONNECTED, publish -ENOTCONN, pending
 * publishes UNAVAILABLE exactly once, the in-flight bound) and restarted
 * on the same port (connected, resubscribed, delivering, with no action);
 * a bad password (retried with a clear log line, DOWN) and a good one from
 * password_file; destroy sending DISCONNECT; persistent sessions; SUBACK
 * refusals (from a scripted server); mqtts with a private CA and a client
 * certificate, and the failures without them. Exits 77 without mosquitto.
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "check.h"
#include "plugin_host.h"

static char plugin_path[PATH_MAX];
static const char *mosquitto_bin = "/usr/sbin/mosquitto";
static char tmpdir[64];

/* ---- a private mosquitto ------------------------------------------------- */

struct tb {
	pid_t pid;
	int port;
	char conf[160], log[160];
};

static int tb_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static bool tb_listening(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void tb_write(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
		exit(99);
	}
}

/* Writes the config (name distinguishes brokers) and starts mosquitto on
 * b->port (a free one when 0). extra is appended to the config. */
static void tb_start(struct tb *b, const char *name, const char *extra)
{
	struct passwd *pw = getpwuid(getuid());
	char text[4096];

	if (!b->port)
		b->port = tb_free_port();
	snprintf(b->conf, sizeof(b->conf), "%s/%s.conf", tmpdir, name);
	snprintf(b->log, sizeof(b->log), "%s/%s.log", tmpdir, name);
	snprintf(text, sizeof(text),
		 "listener %d 127.0.0.1\n"
		 "persistence false\n"
		 "log_dest file %s\n"
		 "log_type all\n"
		 "user %s\n"
		 "%s\n",
		 b->port, b->log, pw ? pw->pw_name : "root",
		 extra ? extra : "allow_anonymous true\n");
	tb_write(b->conf, text);
	unlink(b->log);
	b->pid = fork();
	if (b->pid == 0) {
		execl(mosquitto_bin, mosquitto_bin, "-c", b->conf, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		if (tb_listening(b->port))
			return;
		if (waitpid(b->pid, NULL, WNOHANG) == b->pid)
			break;
		usleep(25000);
	}
	fprintf(stderr, "mosquitto did not start on port %d (see %s)\n",
		b->port, b->log);
	exit(99);
}

static void tb_signal(struct tb *b, int sig)
{
	if (b->pid > 0)
		kill(b->pid, sig);
}

static void tb_stop(struct tb *b, int sig)
{
	if (b->pid <= 0)
		return;
	kill(b->pid, sig);
	if (sig == SIGKILL)
		kill(b->pid, SIGCONT);
	waitpid(b->pid, NULL, 0);
	b->pid = 0;
}

/* Counts lines of the broker log containing needle (and needle2). */
static int tb_log_count2(const struct tb *b, const char *needle,
			 const char *needle2)
{
	FILE *f = fopen(b->log, "r");
	char line[2048];
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle) && (!needle2 || strstr(line, needle2)))
			n++;
	fclose(f);
	return n;
}

static int tb_log_count(const struct tb *b, const char *needle)
{
	return tb_log_count2(b, needle, NULL);
}

/* ---- a second client, on libmosquitto's own thread ---------------------- */

struct tc_msg {
	char *topic;
	unsigned char *payload;
	int len, qos;
	bool retain;
};

struct tc {
	struct mosquitto *mosq;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool connected;
	bool done[65536];
	int suback_mid;
	struct tc_msg msgs[4096];
	int nmsgs;
};

static void tc_on_connect(struct mosquitto *mosq, void *obj, int rc)
{
	struct tc *c = obj;

	(void)mosq;
	pthread_mutex_lock(&c->lock);
	c->connected = rc == 0;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static void tc_on_publish(struct mosquitto *mosq, void *obj, int mid)
{
	struct tc *c = obj;

	(void)mosq;
	pthread_mutex_lock(&c->lock);
	c->done[mid & 0xffff] = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static void tc_on_subscribe(struct mosquitto *mosq, void *obj, int mid, int n,
			    const int *granted)
{
	struct tc *c = obj;

	(void)mosq;
	(void)n;
	(void)granted;
	pthread_mutex_lock(&c->lock);
	c->suback_mid = mid;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static void tc_on_message(struct mosquitto *mosq, void *obj,
			  const struct mosquitto_message *m)
{
	struct tc *c = obj;
	struct tc_msg *t;

	(void)mosq;
	pthread_mutex_lock(&c->lock);
	if (c->nmsgs < (int)(sizeof(c->msgs) / sizeof(c->msgs[0]))) {
		t = &c->msgs[c->nmsgs++];
		t->topic = strdup(m->topic);
		t->payload = malloc((size_t)m->payloadlen + 1);
		if (m->payloadlen)
			memcpy(t->payload, m->payload, (size_t)m->payloadlen);
		t->len = m->payloadlen;
		t->qos = m->qos;
		t->retain = m->retain;
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static struct tc *tc_new(int port, const char *id)
{
	struct tc *c = calloc(1, sizeof(*c));
	struct timespec ts;

	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->suback_mid = -1;
	c->mosq = mosquitto_new(id, true, c);
	mosquitto_connect_callback_set(c->mosq, tc_on_connect);
	mosquitto_publish_callback_set(c->mosq, tc_on_publish);
	mosquitto_subscribe_callback_set(c->mosq, tc_on_subscribe);
	mosquitto_message_callback_set(c->mosq, tc_on_message);
	if (mosquitto_connect(c->mosq, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS ||
	    mosquitto_loop_start(c->mosq) != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "test client cannot connect to %d\n", port);
		exit(99);
	}
	deadline_in(&ts, 5000);
	pthread_mutex_lock(&c->lock);
	while (!c->connected &&
	       pthread_cond_timedwait(&c->cond, &c->lock, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&c->lock);
	CHECK(c->connected);
	return c;
}

static void tc_free(struct tc *c)
{
	mosquitto_disconnect(c->mosq);
	mosquitto_loop_stop(c->mosq, false);
	mosquitto_destroy(c->mosq);
	for (int i = 0; i < c->nmsgs; i++) {
		free(c->msgs[i].topic);
		free(c->msgs[i].payload);
	}
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Publishes and waits until libmosquitto reports it sent (QoS 0) or
 * acknowledged (QoS 1). */
static int tc_publish(struct tc *c, const char *topic, const void *payload,
		      int len, int qos, bool retain)
{
	struct timespec ts;
	int mid = 0, r;

	pthread_mutex_lock(&c->lock);
	r = mosquitto_publish(c->mosq, &mid, topic, len, payload, qos, retain);
	if (r == MOSQ_ERR_SUCCESS) {
		deadline_in(&ts, 5000);
		while (!c->done[mid & 0xffff] &&
		       pthread_cond_timedwait(&c->cond, &c->lock, &ts) != ETIMEDOUT)
			;
		r = c->done[mid & 0xffff] ? 0 : -ETIMEDOUT;
		c->done[mid & 0xffff] = false;
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

static int tc_subscribe(struct tc *c, const char *filter, int qos)
{
	struct timespec ts;
	int mid = 0, r;

	pthread_mutex_lock(&c->lock);
	r = mosquitto_subscribe(c->mosq, &mid, filter, qos);
	if (r == MOSQ_ERR_SUCCESS) {
		deadline_in(&ts, 5000);
		while (c->suback_mid != mid &&
		       pthread_cond_timedwait(&c->cond, &c->lock, &ts) != ETIMEDOUT)
			;
		r = c->suback_mid == mid ? 0 : -ETIMEDOUT;
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

static int tc_wait_messages(struct tc *c, int n, int timeout_ms)
{
	struct timespec ts;
	int r;

	deadline_in(&ts, timeout_ms);
	pthread_mutex_lock(&c->lock);
	while (c->nmsgs < n &&
	       pthread_cond_timedwait(&c->cond, &c->lock, &ts) != ETIMEDOUT)
		;
	r = c->nmsgs >= n ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* ---- a scripted MQTT 5 server ---------------------------------------------
 * For what mosquitto cannot be made to do (its acl_file never refuses a
 * SUBSCRIBE): one connection; CONNACK; each SUBSCRIBE answered with 0x87
 * (not authorised) for "low/#" and QoS 0 granted for the other filters;
 * PINGRESP; it closes on DISCONNECT. */

struct fake {
	int lfd, port;
	pthread_t thread;
};

static int fake_read(int fd, unsigned char *buf, size_t n)
{
	while (n) {
		ssize_t r = read(fd, buf, n);

		if (r <= 0)
			return -1;
		buf += r;
		n -= (size_t)r;
	}
	return 0;
}

/* One packet: its first byte in *type, its body in buf. */
static int fake_packet(int fd, unsigned char *type, unsigned char *buf,
		       size_t cap, size_t *len)
{
	unsigned char b;
	size_t n = 0;

	if (fake_read(fd, type, 1) < 0)
		return -1;
	for (int shift = 0; shift < 28; shift += 7) {
		if (fake_read(fd, &b, 1) < 0)
			return -1;
		n |= (size_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			break;
	}
	if (n > cap || fake_read(fd, buf, n) < 0)
		return -1;
	*len = n;
	return 0;
}

static void *fake_run(void *arg)
{
	struct fake *f = arg;
	unsigned char type, buf[4096], out[512];
	size_t len, pos, n;
	int fd = accept(f->lfd, NULL, NULL);

	while (fd >= 0 && fake_packet(fd, &type, buf, sizeof(buf), &len) == 0) {
		switch (type >> 4) {
		case 1: /* CONNECT */
			if (write(fd, "\x20\x03\x00\x00\x00", 5) != 5)
				goto out;
			break;
		case 8: /* SUBSCRIBE: id, properties, (filter, options)* */
			pos = 2;
			while (pos < len && (buf[pos] & 0x80))
				pos++;
			pos++;
			n = 0;
			while (pos + 2 <= len && n < 100) {
				size_t flen = (size_t)buf[pos] << 8 | buf[pos + 1];

				out[5 + n++] = flen == 5 &&
					memcmp(buf + pos + 2, "low/#", 5) == 0
					? 0x87 : 0x00;
				pos += 3 + flen;
			}
			out[0] = 0x90;
			out[1] = (unsigned char)(3 + n);
			out[2] = buf[0];
			out[3] = buf[1];
			out[4] = 0;
			if (write(fd, out, 5 + n) != (ssize_t)(5 + n))
				goto out;
			break;
		case 12: /* PINGREQ */
			if (write(fd, "\xd0\x00", 2) != 2)
				goto out;
			break;
		case 14: /* DISCONNECT */
			goto out;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void fake_start(struct fake *f)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(f->lfd, (struct sockaddr *)&a, &alen) < 0 ||
	    listen(f->lfd, 1) < 0 ||
	    pthread_create(&f->thread, NULL, fake_run, f) != 0) {
		perror("fake broker");
		exit(99);
	}
	f->port = ntohs(a.sin_port);
}

static void fake_stop(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->lfd);
}

/* ---- helpers around the plugin ------------------------------------------- */

static const struct mqgate_topic topics[] = {
	{ "sensors/#", MQGATE_DIR_IN, 1 },
	{ "low/#", MQGATE_DIR_BOTH, 0 },
	{ "cmd/#", MQGATE_DIR_OUT, 1 },
	{ "both/#", MQGATE_DIR_BOTH, 1 },
};
#define NTOPICS (sizeof(topics) / sizeof(topics[0]))

static struct plugin_host *ph_load(void)
{
	char err[256];
	struct plugin_host *ph = plugin_host_new(plugin_path, err, sizeof(err));

	if (!ph) {
		fprintf(stderr, "cannot load %s: %s\n", plugin_path, err);
		exit(99);
	}
	return ph;
}

static const char *fmt(char *buf, size_t len, const char *f, ...)
	__attribute__((format(printf, 3, 4)));

static const char *fmt(char *buf, size_t len, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(buf, len, f, ap);
	va_end(ap);
	return buf;
}

/* Configures and starts ph; expects both to succeed. */
static void ph_run(struct plugin_host *ph, const char *const *kv,
		   const struct mqgate_topic *t, size_t nt)
{
	char err[256];

	CHECK_INT(plugin_host_configure(ph, kv, t, nt, err, sizeof(err)), 0);
	CHECK_INT(plugin_host_check(ph, err, sizeof(err)), -2);
	if (err[0])
		fprintf(stderr, "check: %s\n", err);
	CHECK_INT(plugin_host_start(ph, err, sizeof(err)), 0);
}

/* ---- the tests ------------------------------------------------------------ */

static int check_one(struct plugin_host *ph, const char *const *kv,
		     const struct mqgate_topic *t, size_t nt, char *err,
		     size_t errlen)
{
	if (plugin_host_configure(ph, kv, t, nt, err, errlen) < 0)
		return -100;
	return plugin_host_check(ph, err, errlen);
}

static void test_check(void)
{
	struct plugin_host *ph = ph_load();
	const struct mqgate_backend *be = plugin_host_backend(ph);
	char err[256], ca[PATH_MAX], pwfile[PATH_MAX];
	static const struct mqgate_topic bad_topic[] = {
		{ "sensors/#/x", MQGATE_DIR_IN, 1 },
	};
	static const struct mqgate_topic out_only[] = {
		{ "a/#/b", MQGATE_DIR_OUT, 1 }, /* never subscribed: not checked */
	};
	static const struct {
		const char *kv[4];
		int want;           /* key index, -1, or -100 (host parse) */
		const char *why;
	} cases[] = {
		{ { NULL }, 0, "url is required" },
		{ { "url=", NULL }, 0, "url is required" },
		{ { "url=127.0.0.1:1883", NULL }, 0, "missing scheme" },
		{ { "url=amqp://h", NULL }, 0, "mqtt:// or mqtts://" },
		{ { "url=mqtt://", NULL }, 0, "missing host" },
		{ { "url=mqtt://h:0", NULL }, 0, "out of range" },
		{ { "url=mqtt://h:70000", NULL }, 0, "out of range" },
		{ { "url=mqtt://h:x", NULL }, 0, "bad port" },
		{ { "url=mqtt://::1", NULL }, 0, "brackets" },
		{ { "url=mqtt://h/path", NULL }, 0, "no path" },
		{ { "url=mqtt://:pw@h", NULL }, 0, "needs a user name" },
		{ { "url=mqtt://h", "password=pw", NULL }, 3, "needs a user name" },
		{ { "url=mqtt://u@h", "username=v", NULL }, 2, "both" },
		{ { "url=mqtt://u:p@h", "username=u", NULL }, 2, "both" },
		{ { "url=mqtt://u:p@h", "password=q", NULL }, 3, "both" },
		{ { "url=mqtt://h", "client_id=gw-%x", NULL }, 1, "unknown %x" },
		{ { "url=mqtt://h", "client_id=gw-%", NULL }, 1, "lone %" },
		{ { "url=mqtt://h", "clean_session=no", NULL }, 8, "has %p" },
		{ { "url=mqtt://h", "clean_session=no", "client_id=a-%p" }, 1,
		  "stays the same" },
		{ { "url=mqtt://h", "ca_file=/etc/hostname", NULL }, 4, "mqtts://" },
		{ { "url=mqtts://h", "cert_file=/etc/hostname", NULL }, 5, "together" },
		{ { "url=mqtts://h", "key_file=/etc/hostname", NULL }, 6, "together" },
		{ { "url=mqtts://h", "ca_file=/nonexistent/ca.pem", NULL }, 4,
		  "cannot read ca_file" },
		{ { "url=mqtt://h", "keepalive=1s", NULL }, -100, "out of range" },
		{ { "url=mqtt://h", "keepalive=2h", NULL }, -100, "out of range" },
		{ { "url=mqtt://h", "clean_session=maybe", NULL }, -100, "" },
	};

	CHECK_STR(be->name, "mqtt");
	CHECK_STR(be->keys[0].name, "url");
	CHECK_INT(be->keys[3].type, MQGATE_KEY_SECRET);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r;

		err[0] = '\0';
		r = check_one(ph, cases[i].kv, topics, NTOPICS, err, sizeof(err));
		if (r != cases[i].want || !strstr(err, cases[i].why)) {
			check_run++;
			check_failed++;
			fprintf(stderr, "case %zu (%s): got %d \"%s\", want %d \"%s\"\n",
				i, cases[i].kv[0] ? cases[i].kv[0] : "-", r, err,
				cases[i].want, cases[i].why);
		} else {
			check_run++;
		}
	}
	/* the password never appears in a message */
	CHECK_INT(check_one(ph, (const char *[]){ "url=mqtt://u:s3cret@h:99999", NULL },
			    topics, NTOPICS, err, sizeof(err)), 0);
	CHECK(strstr(err, "s3cret") == NULL);

	/* a topic line that cannot be subscribed; out-only lines are not */
	CHECK_INT(check_one(ph, (const char *[]){ "url=mqtt://h", NULL },
			    bad_topic, 1, err, sizeof(err)), -1);
	CHECK(strstr(err, "sensors/#/x") != NULL);
	CHECK_INT(check_one(ph, (const char *[]){ "url=mqtt://h", NULL },
			    out_only, 1, err, sizeof(err)), -2);

	/* good ones */
	snprintf(ca, sizeof(ca), "%s/ca.pem", tmpdir);
	tb_write(ca, "not checked here\n");
	snprintf(pwfile, sizeof(pwfile), "%s/pw", tmpdir);
	tb_write(pwfile, "secret\n");
	CHECK_INT(check_one(ph, (const char *[]){ "url=mqtt://h", NULL }, topics,
			    NTOPICS, err, sizeof(err)), -2);
	CHECK_INT(check_one(ph, (const char *[]){ "url=MQTT://[::1]:1884", NULL },
			    topics, NTOPICS, err, sizeof(err)), -2);
	CHECK_INT(check_one(ph, (const char *[]){ "url=mqtts://h/",
						  fmt((char[PATH_MAX + 16]){ 0 },
						      PATH_MAX + 16, "ca_file=%s", ca),
						  "client_id=a%%b-%p-%h", NULL },
			    topics, NTOPICS, err, sizeof(err)), -2);
	CHECK_INT(check_one(ph, (const char *[]){ "url=mqtts://h", NULL }, topics,
			    NTOPICS, err, sizeof(err)), -2);
	CHECK_INT(check_one(ph, (const char *[]){ "url=mqtt://h", "username=u",
						  fmt((char[PATH_MAX + 16]){ 0 },
						      PATH_MAX + 16,
						      "password_file=%s", pwfile),
						  NULL },
			    topics, NTOPICS, err, sizeof(err)), -2);
	CHECK_INT(check_one(ph, (const char *[]){ "url=mqtt://u:p%40ss@h", NULL },
			    topics, NTOPICS, err, sizeof(err)), -2);
	CHECK_INT(check_one(ph, (const char *[]){ "url=mqtt://h", "clean_session=no",
						  "client_id=gw-%%p-%h-%n", NULL },
			    topics, NTOPICS, err, sizeof(err)), -2);

	/* create() refuses what check() refuses */
	CHECK_INT(plugin_host_configure(ph, (const char *[]){ "url=ftp://h", NULL },
					topics, NTOPICS, err, sizeof(err)), 0);
	CHECK_INT(plugin_host_start(ph, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "scheme") != NULL);
	plugin_host_free(ph);
}

static void test_connect_refused_and_stop(void)
{
	struct plugin_host *ph = ph_load();
	char url[64], why[256];
	int port = tb_free_port();
	int64_t t0;

	ph_run(ph, (const char *[]){ fmt(url, sizeof(url), "url=mqtt://127.0.0.1:%d",
					 port), NULL }, topics, NTOPICS);
	CHECK_INT(plugin_host_wait_log(ph, "cannot connect to 127.0.0.1", 5000), 0);
	CHECK_INT(plugin_host_wait_log(ph, "retrying in", 5000), 0);
	for (int k = 0; k < 50; k++) {
		if (plugin_host_state(ph, why, sizeof(why)) ==
			    MQGATE_STATE_CONNECTING && strstr(why, "refused"))
			break;
		usleep(100000);
	}
	CHECK_INT(plugin_host_state(ph, why, sizeof(why)), MQGATE_STATE_CONNECTING);
	CHECK(strstr(why, "connection refused") != NULL);
	CHECK_INT(plugin_host_publish(ph, "cmd/x", "a", 1, 1, false, 1), -ENOTCONN);
	/* destroy during the backoff wait is prompt */
	t0 = plugin_host_now_ms();
	plugin_host_stop(ph);
	CHECK(plugin_host_now_ms() - t0 < 1500);
	CHECK_INT(plugin_host_done_total(ph), 0);
	plugin_host_free(ph);
}

static void test_broker(void)
{
	struct tb b = { 0 };
	struct plugin_host *ph = ph_load();
	struct tc *c;
	struct ph_message m;
	struct ph_done d;
	char url[64], why[256];
	static unsigned char bin[70000];
	static const unsigned char small[] = { 0, 'a', 0, 0xff, '\n', 0 };
	long i;
	uint64_t tok;
	int r = 0;

	for (size_t k = 0; k < sizeof(bin); k++)
		bin[k] = (unsigned char)(k * 7 + (k >> 8));
	tb_start(&b, "main", NULL);
	c = tc_new(b.port, "tc-main");
	/* retained before the plugin subscribes: comes with retain set */
	CHECK_INT(tc_publish(c, "sensors/kept", "old", 3, 1, true), 0);

	ph_run(ph, (const char *[]){ fmt(url, sizeof(url), "url=mqtt://127.0.0.1:%d",
					 b.port), "client_id=gw-%p", "keepalive=5s",
				     NULL }, topics, NTOPICS);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, 5000), 0);
	CHECK_INT(plugin_host_state_count(ph, MQGATE_STATE_CONNECTED), 1);
	CHECK_INT(plugin_host_wait_messages(ph, 1, 5000), 0);
	CHECK(plugin_host_message(ph, 0, &m) && strcmp(m.topic, "sensors/kept") == 0 &&
	      m.len == 3 && memcmp(m.payload, "old", 3) == 0 && m.retain &&
	      m.qos == 1);
	/* the subscriptions were made at each line's QoS, out lines not */
	CHECK(tb_log_count(&b, "sensors/# (QoS 1)") == 1);
	CHECK(tb_log_count(&b, "low/# (QoS 0)") == 1);
	CHECK(tb_log_count(&b, "both/# (QoS 1)") == 1);
	CHECK(tb_log_count(&b, "cmd/#") == 0);

	/* live messages: exact bytes, QoS, no retain */
	plugin_host_clear(ph);
	CHECK_INT(tc_publish(c, "sensors/bin", small, sizeof(small), 1, false), 0);
	CHECK_INT(tc_publish(c, "sensors/big", bin, sizeof(bin), 1, false), 0);
	CHECK_INT(tc_publish(c, "low/q", "down", 4, 1, false), 0);   /* sub qos 0 */
	CHECK_INT(tc_publish(c, "sensors/zero", "z", 1, 0, false), 0);
	CHECK_INT(tc_publish(c, "sensors/empty", "", 0, 1, false), 0);
	CHECK_INT(tc_publish(c, "cmd/not-subscribed", "x", 1, 1, false), 0);
	CHECK_INT(plugin_host_wait_messages(ph, 5, 5000), 0);
	i = plugin_host_find_message(ph, "sensors/bin", 0);
	CHECK(i >= 0 && plugin_host_message(ph, (size_t)i, &m) &&
	      m.len == sizeof(small) && memcmp(m.payload, small, sizeof(small)) == 0 &&
	      m.qos == 1 && !m.retain);
	i = plugin_host_find_message(ph, "sensors/big", 0);
	CHECK(i >= 0 && plugin_host_message(ph, (size_t)i, &m) &&
	      m.len == sizeof(bin) && memcmp(m.payload, bin, sizeof(bin)) == 0);
	i = plugin_host_find_message(ph, "low/q", 0);
	CHECK(i >= 0 && plugin_host_message(ph, (size_t)i, &m) && m.qos == 0);
	i = plugin_host_find_message(ph, "sensors/zero", 0);
	CHECK(i >= 0 && plugin_host_message(ph, (size_t)i, &m) && m.qos == 0);
	i = plugin_host_find_message(ph, "sensors/empty", 0);
	CHECK(i >= 0 && plugin_host_message(ph, (size_t)i, &m) && m.len == 0);
	usleep(200000);
	CHECK_INT(plugin_host_message_count(ph), 5);
	CHECK(plugin_host_find_message(ph, "cmd/not-subscribed", 0) < 0);

	/* publishes from the plugin: complete OK and arrive */
	CHECK_INT(tc_subscribe(c, "cmd/#", 1), 0);
	CHECK_INT(plugin_host_publish(ph, "cmd/q0", small, sizeof(small), 0, false, 10), 0);
	CHECK_INT(plugin_host_publish(ph, "cmd/q1", bin, sizeof(bin), 1, false, 11), 0);
	CHECK_INT(plugin_host_publish(ph, "cmd/kept", "on", 2, 1, true, 12), 0);
	for (tok = 10; tok <= 12; tok++) {
		CHECK_INT(plugin_host_wait_done(ph, tok, 5000, &d), 0);
		CHECK_INT(d.result, MQGATE_PUB_OK);
	}
	CHECK_INT(tc_wait_messages(c, 3, 5000), 0);
	pthread_mutex_lock(&c->lock);
	for (int k = 0; k < c->nmsgs; k++) {
		struct tc_msg *t = &c->msgs[k];

		if (strcmp(t->topic, "cmd/q0") == 0)
			CHECK(t->len == (int)sizeof(small) &&
			      memcmp(t->payload, small, sizeof(small)) == 0);
		else if (strcmp(t->topic, "cmd/q1") == 0)
			CHECK(t->len == (int)sizeof(bin) && t->qos == 1 &&
			      memcmp(t->payload, bin, sizeof(bin)) == 0);
	}
	pthread_mutex_unlock(&c->lock);
	CHECK_INT(tb_log_count(&b, "Received PUBLISH from gw-") >= 3, 1);
	CHECK_INT(tb_log_count2(&b, "(d0, q1, r1, m", "'cmd/kept'"), 1);
	/* a publish to a both line comes back to the plugin itself */
	plugin_host_clear(ph);
	CHECK_INT(plugin_host_publish(ph, "both/echo", "e", 1, 1, false, 13), 0);
	CHECK_INT(plugin_host_wait_messages(ph, 1, 5000), 0);
	CHECK(plugin_host_find_message(ph, "both/echo", 0) == 0);
	CHECK_INT(plugin_host_wait_done(ph, 13, 5000, &d), 0);
	CHECK_INT(d.result, MQGATE_PUB_OK);
	CHECK_INT(plugin_host_publish(ph, "cmd/bad", "a", 1, 3, false, 14), -EINVAL);
	CHECK_INT(plugin_host_done_count(ph, 14), 0);

	/* broker frozen: publishes stay in flight, up to the bound */
	tb_signal(&b, SIGSTOP);
	for (tok = 100; tok < 100 + 10001; tok++) {
		r = plugin_host_publish(ph, "cmd/stuck", "s", 1, 1, false, tok);
		if (r != 0)
			break;
	}
	CHECK_INT(tok, 100 + 10000);
	CHECK_INT(r, -EBUSY);
	/* broker killed: state leaves CONNECTED, all pending UNAVAILABLE once */
	tb_stop(&b, SIGKILL);
	CHECK_INT(plugin_host_wait_state_not(ph, MQGATE_STATE_CONNECTED, 5000), 0);
	CHECK_INT(plugin_host_state(ph, why, sizeof(why)), MQGATE_STATE_CONNECTING);
	CHECK_INT(plugin_host_publish(ph, "cmd/x", "a", 1, 1, false, 50000), -ENOTCONN);
	CHECK_INT(plugin_host_wait_done(ph, 100 + 9999, 5000, &d), 0);
	CHECK_INT(d.result, MQGATE_PUB_UNAVAILABLE);
	CHECK(strstr(d.why, "connection lost") != NULL);
	CHECK_INT(plugin_host_done_total(ph), 1 + 10000); /* 13, the stuck */
	CHECK_INT(plugin_host_done_count(ph, 100), 1);
	CHECK_INT(plugin_host_done_count(ph, 100 + 10000), 0);
	CHECK_INT(plugin_host_done_count(ph, 50000), 0);
	CHECK_INT(plugin_host_wait_log(ph, "lost the connection to 127.0.0.1", 5000), 0);

	/* restarted on the same port: connected and delivering again */
	tc_free(c);
	plugin_host_clear(ph);
	tb_start(&b, "main", NULL);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, 15000), 0);
	CHECK_INT(plugin_host_state_count(ph, MQGATE_STATE_CONNECTED), 2);
	c = tc_new(b.port, "tc-main2");
	CHECK_INT(tc_publish(c, "sensors/again", "back", 4, 1, false), 0);
	CHECK_INT(plugin_host_wait_messages(ph, 1, 5000), 0);
	CHECK(plugin_host_find_message(ph, "sensors/again", 0) >= 0);
	CHECK_INT(tc_subscribe(c, "cmd/#", 1), 0);
	CHECK_INT(plugin_host_publish(ph, "cmd/after", "a", 1, 1, false, 60000), 0);
	CHECK_INT(plugin_host_wait_done(ph, 60000, 5000, &d), 0);
	CHECK_INT(d.result, MQGATE_PUB_OK);
	/* nothing queued for the dead connection went out on this one */
	usleep(300000);
	CHECK_INT(tb_log_count(&b, "'cmd/stuck'"), 0);

	/* destroy sends DISCONNECT */
	plugin_host_stop(ph);
	usleep(200000);
	CHECK(tb_log_count(&b, "Received DISCONNECT from gw-") == 1);
	tc_free(c);
	plugin_host_free(ph);
	tb_stop(&b, SIGTERM);
}

static void test_limits(void)
{
	struct tb b = { 0 };
	struct plugin_host *ph = ph_load();
	char url[64], acl[PATH_MAX], extra[PATH_MAX + 256];
	static unsigned char big[4000];
	struct ph_done d;

	snprintf(acl, sizeof(acl), "%s/acl", tmpdir);
	tb_write(acl, "topic read #\ntopic readwrite cmd/#\n");
	snprintf(extra, sizeof(extra), "allow_anonymous true\nacl_file %s\n"
		 "max_packet_size 2000\nmessage_size_limit 500\n", acl);
	tb_start(&b, "limits", extra);
	ph_run(ph, (const char *[]){ fmt(url, sizeof(url), "url=mqtt://127.0.0.1:%d",
					 b.port), NULL }, topics, NTOPICS);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, 5000), 0);
	/* the ACL refuses both/x: REJECTED, not a silent ok */
	CHECK_INT(plugin_host_publish(ph, "both/x", "no", 2, 1, false, 1), 0);
	CHECK_INT(plugin_host_wait_done(ph, 1, 5000, &d), 0);
	CHECK_INT(d.result, MQGATE_PUB_REJECTED);
	CHECK(strstr(d.why, "not authori") != NULL);
	CHECK_INT(plugin_host_publish(ph, "cmd/ok", "yes", 3, 1, false, 2), 0);
	CHECK_INT(plugin_host_wait_done(ph, 2, 5000, &d), 0);
	CHECK_INT(d.result, MQGATE_PUB_OK);
	/* over the broker's maximum packet size: refused at once */
	CHECK_INT(plugin_host_publish(ph, "cmd/big", big, sizeof(big), 1, false, 3),
		  -EMSGSIZE);
	CHECK_INT(plugin_host_done_count(ph, 3), 0);
	CHECK_INT(plugin_host_publish(ph, "cmd/fits", big, 400, 0, false, 4), 0);
	CHECK_INT(plugin_host_wait_done(ph, 4, 5000, &d), 0);
	CHECK_INT(d.result, MQGATE_PUB_OK);
	/* within the packet size but over the message size limit: the
	 * broker's PUBACK says so */
	CHECK_INT(plugin_host_publish(ph, "cmd/over", big, 1000, 1, false, 5), 0);
	CHECK_INT(plugin_host_wait_done(ph, 5, 5000, &d), 0);
	CHECK_INT(d.result, MQGATE_PUB_TOO_LARGE);
	CHECK(strstr(d.why, "too large") != NULL);
	plugin_host_free(ph);
	tb_stop(&b, SIGTERM);
}

static void test_auth(void)
{
	struct tb b = { 0 };
	struct plugin_host *ph;
	char url[64], pw[PATH_MAX], pwfile[PATH_MAX], extra[PATH_MAX + 64];
	char cmd[3 * PATH_MAX], arg[PATH_MAX + 32], why[256];

	snprintf(pw, sizeof(pw), "%s/passwd", tmpdir);
	tb_write(pw, "");
	snprintf(cmd, sizeof(cmd), "mosquitto_passwd -b '%s' gw 'right pass' "
		 ">/dev/null 2>&1", pw);
	if (system(cmd) != 0) {
		fprintf(stderr, "mosquitto_passwd failed; auth test skipped\n");
		return;
	}
	snprintf(extra, sizeof(extra), "allow_anonymous false\npassword_file %s\n",
		 pw);
	tb_start(&b, "auth", extra);

	/* wrong password: refused, DOWN, retried with backoff, clear log */
	ph = ph_load();
	ph_run(ph, (const char *[]){ fmt(url, sizeof(url), "url=mqtt://127.0.0.1:%d",
					 b.port), "username=gw",
				     "password=wrong pass", NULL }, topics, NTOPICS);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_DOWN, 5000), 0);
	CHECK_INT(plugin_host_state(ph, why, sizeof(why)), MQGATE_STATE_DOWN);
	CHECK(strstr(why, "refused the connection") != NULL);
	CHECK(strstr(why, "not authorized") || strstr(why, "bad user name or password"));
	CHECK_INT(plugin_host_wait_log(ph, "cannot connect to 127.0.0.1", 1000), 0);
	/* a second attempt comes after a 1..2 s backoff */
	for (int k = 0; k < 50 && tb_log_count(&b, "Sending CONNACK to") < 2; k++)
		usleep(100000);
	CHECK(tb_log_count(&b, "Sending CONNACK to") >= 2);
	CHECK_INT(plugin_host_log_count(ph, "wrong pass"), 0);
	CHECK_INT(plugin_host_state_count(ph, MQGATE_STATE_CONNECTED), 0);
	plugin_host_free(ph);

	/* the right one, from password_file (trailing newline dropped) */
	snprintf(pwfile, sizeof(pwfile), "%s/gw.pass", tmpdir);
	tb_write(pwfile, "right pass\n");
	ph = ph_load();
	ph_run(ph, (const char *[]){ fmt(url, sizeof(url), "url=mqtt://gw@127.0.0.1:%d",
					 b.port),
				     fmt(arg, sizeof(arg), "password_file=%s", pwfile),
				     NULL }, topics, NTOPICS);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, 5000), 0);
	CHECK_INT(plugin_host_log_count(ph, "right pass"), 0);
	plugin_host_free(ph);
	tb_stop(&b, SIGTERM);
}

/* Publishes from the host thread while the network thread delivers:
 * every publish completes once, every message comes back. */
static void test_load(void)
{
	struct tb b = { 0 };
	struct plugin_host *ph = ph_load();
	struct tc *c;
	char url[64], p[32];
	enum { N = 3000 };
	size_t ok = 0;
	struct ph_done d;

	/* the broker's queue must not drop what the test counts */
	tb_start(&b, "load", "allow_anonymous true\nmax_queued_messages 0\n");
	c = tc_new(b.port, "tc-load");
	ph_run(ph, (const char *[]){ fmt(url, sizeof(url), "url=mqtt://127.0.0.1:%d",
					 b.port), NULL }, topics, NTOPICS);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, 5000), 0);
	for (int i = 0; i < N; i++) {
		int n = snprintf(p, sizeof(p), "%d", i);
		int r;

		/* the other client floods in too, without waiting */
		if (i % 3 == 0)
			mosquitto_publish(c->mosq, NULL, "sensors/flood", n, p, 0,
					  false);
		while ((r = plugin_host_publish(ph, "both/load", p, (size_t)n,
						i % 2, false, (uint64_t)i + 1)) ==
		       -EBUSY)
			usleep(1000);
		CHECK_INT(r, 0);
	}
	for (int i = 1; i <= N; i++)
		if (plugin_host_wait_done(ph, (uint64_t)i, 10000, &d) == 0 &&
		    d.result == MQGATE_PUB_OK &&
		    plugin_host_done_count(ph, (uint64_t)i) == 1)
			ok++;
	CHECK_INT(ok, N);
	CHECK_INT(plugin_host_done_total(ph), N);
	CHECK_INT(plugin_host_wait_messages(ph, N + N / 3, 20000), 0);
	plugin_host_free(ph);
	tc_free(c);
	tb_stop(&b, SIGTERM);
}

/* SUBACK refusals and downgrades: logged, and CONNECTED says so. */
static void test_suback(void)
{
	struct fake f;
	struct plugin_host *ph = ph_load();
	char url[64], why[256];

	fake_start(&f);
	ph_run(ph, (const char *[]){ fmt(url, sizeof(url), "url=mqtt://127.0.0.1:%d",
					 f.port), NULL }, topics, NTOPICS);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, 5000), 0);
	plugin_host_state(ph, why, sizeof(why));
	CHECK_STR(why, "1 topic filter refused by the broker");
	CHECK_INT(plugin_host_log_count(ph, "broker refused the subscription to "
					"'low/#': not authorized"), 1);
	CHECK_INT(plugin_host_log_count(ph, "granted qos 0 instead of 1 for "
					"'sensors/#'"), 1);
	CHECK_INT(plugin_host_log_count(ph, "granted qos 0 instead of 1 for "
					"'both/#'"), 1);
	plugin_host_free(ph);
	fake_stop(&f);
}

/* clean_session = false keeps the session (and what it queued) across
 * connections, true does not; no in lines means CONNECTED right after
 * CONNACK; destroy with the broker frozen completes what is in flight. */
static void test_session(void)
{
	struct tb b = { 0 };
	struct plugin_host *ph;
	struct tc *c;
	struct ph_done d;
	char url[64], why[256];
	static const struct mqgate_topic out_only[] = {
		{ "cmd/#", MQGATE_DIR_OUT, 1 },
	};
	int64_t t0;

	tb_start(&b, "session", NULL);
	fmt(url, sizeof(url), "url=mqtt://127.0.0.1:%d", b.port);
	c = tc_new(b.port, "tc-session");

	ph = ph_load();
	ph_run(ph, (const char *[]){ url, "client_id=gw-keep", "clean_session=no",
				     NULL }, topics, NTOPICS);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, 5000), 0);
	plugin_host_stop(ph);
	CHECK_INT(tc_publish(c, "sensors/while-away", "q", 1, 1, false), 0);
	plugin_host_clear(ph);
	CHECK_INT(plugin_host_start(ph, why, sizeof(why)), 0);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, 5000), 0);
	CHECK_INT(plugin_host_wait_messages(ph, 1, 5000), 0);
	CHECK(plugin_host_find_message(ph, "sensors/while-away", 0) >= 0);
	CHECK(tb_log_count(&b, "as gw-keep (p5, c0,") == 2);
	plugin_host_free(ph);

	ph = ph_load();
	ph_run(ph, (const char *[]){ url, "client_id=gw-fresh", NULL }, topics,
	       NTOPICS);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, 5000), 0);
	plugin_host_stop(ph);
	CHECK_INT(tc_publish(c, "sensors/missed", "m", 1, 1, false), 0);
	CHECK_INT(plugin_host_start(ph, why, sizeof(why)), 0);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, 5000), 0);
	usleep(300000);
	CHECK(plugin_host_find_message(ph, "sensors/missed", 0) < 0);
	plugin_host_free(ph);

	/* nothing to subscribe: connected at CONNACK */
	ph = ph_load();
	ph_run(ph, (const char *[]){ url, NULL }, out_only, 1);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, 5000), 0);
	/* broker frozen: destroy still returns, completing what is in flight */
	tb_signal(&b, SIGSTOP);
	CHECK_INT(plugin_host_publish(ph, "cmd/a", "a", 1, 1, false, 1), 0);
	CHECK_INT(plugin_host_publish(ph, "cmd/b", "b", 1, 1, false, 2), 0);
	t0 = plugin_host_now_ms();
	plugin_host_stop(ph);
	CHECK(plugin_host_now_ms() - t0 < 4000);
	CHECK_INT(plugin_host_done_total(ph), 2);
	CHECK_INT(plugin_host_wait_done(ph, 2, 0, &d), 0);
	CHECK_INT(d.result, MQGATE_PUB_UNAVAILABLE);
	CHECK(strstr(d.why, "stopped") != NULL);
	plugin_host_free(ph);
	tb_signal(&b, SIGCONT);
	tc_free(c);
	tb_stop(&b, SIGTERM);
}

/* mqtts: a private CA, a server certificate for 127.0.0.1 and a client
 * certificate the broker requires. */
static void test_tls(void)
{
	struct tb b = { 0 };
	struct plugin_host *ph;
	char d[PATH_MAX], cmd[8 * PATH_MAX], extra[4 * PATH_MAX], url[64];
	char ca[PATH_MAX + 32], cert[PATH_MAX + 32], key[PATH_MAX + 32];
	char why[256];
	struct ph_done done;

	if (access("/usr/bin/openssl", X_OK) != 0) {
		fprintf(stderr, "/usr/bin/openssl not found: TLS test skipped\n");
		return;
	}
	snprintf(d, sizeof(d), "%s/tls", tmpdir);
	snprintf(cmd, sizeof(cmd),
		 "set -e; exec >/dev/null 2>&1; mkdir -p '%s'; cd '%s'; "
		 "K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'; "
		 "openssl req -x509 $K -keyout ca.key -out ca.pem -days 2 "
		 "-subj '/CN=mqgate test CA'; "
		 "openssl req $K -keyout srv.key -out srv.csr -subj /CN=127.0.0.1; "
		 "echo subjectAltName=IP:127.0.0.1 > ext; "
		 "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key "
		 "-CAcreateserial -out srv.pem -days 2 -extfile ext; "
		 "openssl req $K -keyout cli.key -out cli.csr -subj /CN=gw; "
		 "openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key "
		 "-CAcreateserial -out cli.pem -days 2",
		 d, d);
	if (system(cmd) != 0) {
		fprintf(stderr, "cannot make test certificates: TLS test skipped\n");
		return;
	}
	snprintf(extra, sizeof(extra),
		 "allow_anonymous true\ncafile %s/ca.pem\ncertfile %s/srv.pem\n"
		 "keyfile %s/srv.key\nrequire_certificate true\n", d, d, d);
	tb_start(&b, "tls", extra);
	snprintf(url, sizeof(url), "url=mqtts://127.0.0.1:%d", b.port);
	snprintf(ca, sizeof(ca), "ca_file=%s/ca.pem", d);
	snprintf(cert, sizeof(cert), "cert_file=%s/cli.pem", d);
	snprintf(key, sizeof(key), "key_file=%s/cli.key", d);

	/* our CA and a client certificate: connected, publishing */
	ph = ph_load();
	ph_run(ph, (const char *[]){ url, ca, cert, key, NULL }, topics, NTOPICS);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_CONNECTED, 5000), 0);
	CHECK_INT(plugin_host_publish(ph, "cmd/tls", "t", 1, 1, false, 1), 0);
	CHECK_INT(plugin_host_wait_done(ph, 1, 5000, &done), 0);
	CHECK_INT(done.result, MQGATE_PUB_OK);
	plugin_host_free(ph);

	/* the system CAs do not know ours: DOWN with the reason */
	ph = ph_load();
	ph_run(ph, (const char *[]){ url, cert, key, NULL }, topics, NTOPICS);
	CHECK_INT(plugin_host_wait_state(ph, MQGATE_STATE_DOWN, 5000), 0);
	plugin_host_state(ph, why, sizeof(why));
	CHECK(strstr(why, "TLS failure") != NULL);
	CHECK(strstr(why, "certificate verify failed") != NULL);
	CHECK_INT(plugin_host_state_count(ph, MQGATE_STATE_CONNECTED), 0);
	plugin_host_free(ph);

	/* no client certificate: the broker refuses the handshake */
	ph = ph_load();
	ph_run(ph, (const char *[]){ url, ca, NULL }, topics, NTOPICS);
	CHECK_INT(plugin_host_wait_log(ph, "cannot connect to 127.0.0.1", 5000), 0);
	CHECK_INT(plugin_host_state_count(ph, MQGATE_STATE_CONNECTED), 0);
	plugin_host_free(ph);
	tb_stop(&b, SIGTERM);
}

static int cleanup_one(const char *path, const struct stat *st, int flag,
		       struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0)
		fprintf(stderr, "cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

static void cleanup_tmpdir(void)
{
	if (tmpdir[0])
		nftw(tmpdir, cleanup_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const char *dir = getenv("MQGATE_PLUGIN_DIR");
	const char *bin = getenv("MOSQUITTO_BIN");
	int r;

	if (bin && bin[0])
		mosquitto_bin = bin;
	if (access(mosquitto_bin, X_OK) != 0) {
		fprintf(stderr, "%s not found: skipped\n", mosquitto_bin);
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(plugin_path, sizeof(plugin_path), "%s/mqtt.so",
		 dir && dir[0] ? dir : "plugins/.libs");
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/mqgate-test-mqtt-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 99;
	}
	mosquitto_lib_init();
	test_check();
	test_connect_refused_and_stop();
	test_broker();
	test_limits();
	test_auth();
	test_load();
	test_suback();
	test_session();
	test_tls();
	mosquitto_lib_cleanup();
	r = check_summary("test_mqtt");
	if (r == 0)
		cleanup_tmpdir();
	else
		fprintf(stderr, "broker files kept in %s\n", tmpdir);
	return r;
}
