/*
 * loadgen.c - load generator for the benchmarks of tests/bench/run.sh:
 * N subscribers over WebSocket or SSE (one thread, epoll, non-blocking)
 * and one publisher thread, the send time carried in every payload.
 * Prints one line of key=value figures per run.
 *
 * Targets (what the subscribers speak):
 *   mqgate-ws   GET /ws, {"op":"subscribe"} frames, "message" replies
 *   mqgate-sse  GET /events?topic=...
 *   mqtt-ws     MQTT 3.1.1 over WebSocket (mosquitto's websockets listener)
 *   nchan-ws    nchan's WebSocket subscriber endpoint (raw payloads)
 *   nchan-sse   nchan's EventSource subscriber endpoint
 * Publishers: MQTT (libmosquitto) to --pub-port, or HTTP POST to
 * --pub-path PREFIX/TOPIC on the target (nchan).
 *
 * Workloads (one per run):
 *   fan-out    --messages M: every subscriber gets every message; delivered
 *              msgs/s, lost, reordered, latency, server CPU per message
 *   distinct   --distinct K: subscriber i subscribes TOPIC/(i%K)/+ and
 *              message n goes to TOPIC/(n%K)/x, so K distinct wildcard
 *              filters share the load (nchan, without wildcards: one
 *              exact channel per filter)
 *   filters    --filters K (mqgate-ws, mqtt-ws): client i subscribes the K
 *              filters TOPIC/(i*K+j)/+ (in requests of 100) and message n
 *              goes to TOPIC/(n%(N*K))/x: one delivery per message
 *              whatever K, so the server's CPU per message shows what
 *              matching among K filters costs
 *   connect    --messages 0: handshake + subscribe + reply, per second
 *   idle       --idle S: clients stay connected S seconds; server RSS per
 *              client
 *   resume     --resume M: a probe client sees M+1 messages, then N
 *              clients resume at once from the first one's event id
 *              (Last-Event-ID for SSE, "since" for mqgate-ws) and each
 *              must get exactly the M that followed, in order
 *
 * Payloads are {"t":NANOSECONDS,"n":SEQ,"pad":"..."}; a subscriber finds
 * "t": and "n": in what it receives, whatever the wrapping.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum target { T_MQGATE_WS, T_MQGATE_SSE, T_MQTT_WS, T_NCHAN_WS, T_NCHAN_SSE };
enum cstate { C_UNUSED, C_CONNECTING, C_HANDSHAKE, C_READY, C_DEAD };

#define RXCAP 65536
#define IDCAP 128

struct conn {
	int fd;
	enum cstate state;
	bool http_done;       /* response headers parsed */
	bool probe;           /* resume: the client that learns the event id */
	size_t rxlen;
	unsigned char *rx;    /* allocated while data is pending */
	/* MQTT over WS: packet bytes reassembled across frames */
	unsigned char *mq;
	size_t mqlen;
	uint64_t received;
	long long last_n;     /* highest "n" seen, -1 before the first */
	int acks;             /* subscribe replies so far (--filters) */
};

#define FILTERS_PER_REQUEST 100

/* MQTT 3.1.1 CONNECT: clean session, keepalive 600 s, empty client id. */
static const unsigned char mqtt_connect[] = {
	0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0x02, 0x58, 0, 0
};

static struct {
	enum target target;
	const char *host;
	int port;
	const char *topic;
	const char *pub_host;
	int pub_port;
	const char *pub_path;
	int clients;
	int messages;
	double rate;          /* msgs/s offered; 0 = as fast as possible */
	int payload;          /* bytes of padding */
	int server_pid;
	int idle_seconds;
	int timeout;
	int concurrency;      /* handshakes in flight at most */
	int distinct;         /* distinct filters; 0 = all on --topic */
	int filters;          /* filters per client (1, or K of --filters) */
	int resume;           /* messages each resuming client must replay */
	const char *label;
} opt = {
	.host = "127.0.0.1", .topic = "bench/t", .pub_host = "127.0.0.1",
	.clients = 100, .messages = 1000, .payload = 64, .timeout = 60,
	.concurrency = 256, .filters = 1, .label = "run",
};

static struct conn *conns;
static int nconns;            /* opt.clients, plus the resume probe */
static int ep;
static int ready_count, pending, next_open, open_limit, dead_count;
static uint32_t *lat_us;      /* one sample per delivery (bounded) */
static size_t lat_n, lat_cap;
static uint64_t delivered, reordered;
static uint64_t first_rx_ns, last_rx_ns;
static char resume_id[IDCAP]; /* event id of the probe's first message */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static long rss_kb(int pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* User + system CPU seconds of a process, -1 when unknown. */
static double cpu_s(int pid)
{
	char path[64], buf[1024];
	unsigned long long ut, st;
	const char *p;
	FILE *f;
	size_t n;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* fields after "(comm)": state is the 3rd, utime the 14th */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* The topic message n is published to, and the filter client i takes. */
static void pub_topic(char *buf, size_t cap, int n)
{
	if (opt.filters > 1)
		snprintf(buf, cap, "%s/%d/x", opt.topic,
			 n % (opt.clients * opt.filters));
	else if (opt.distinct > 0)
		snprintf(buf, cap, "%s/%d/x", opt.topic, n % opt.distinct);
	else
		snprintf(buf, cap, "%s", opt.topic);
}

static void sub_filter(char *buf, size_t cap, int i)
{
	bool nchan = opt.target == T_NCHAN_WS || opt.target == T_NCHAN_SSE;

	if (opt.distinct > 0 && !nchan)
		snprintf(buf, cap, "%s/%d/+", opt.topic, i % opt.distinct);
	else
		pub_topic(buf, cap, i);
}

/* ---- the publisher ------------------------------------------------------ */

static atomic_bool publisher_done, publisher_stop;
static uint64_t publish_start_ns, publish_end_ns;
static uint64_t publish_errors;
/* Opened before the subscribers, so the descriptor is small: libmosquitto
 * waits on its socket with select(), which cannot take one >= 1024. */
static struct mosquitto *pub_mosq;
static int pub_fd = -1;

static size_t make_payload(char *buf, size_t cap, int n)
{
	int len = snprintf(buf, cap, "{\"t\":%llu,\"n\":%d,\"pad\":\"",
			   (unsigned long long)now_ns(), n);

	for (int i = 0; i < opt.payload && (size_t)len + 3 < cap; i++)
		buf[len++] = 'x';
	buf[len++] = '"';
	buf[len++] = '}';
	buf[len] = 0;
	return (size_t)len;
}

static void pace(int i)
{
	uint64_t due;

	if (opt.rate <= 0)
		return;
	due = publish_start_ns + (uint64_t)((double)i * 1e9 / opt.rate);
	while (now_ns() < due) {
		uint64_t left = due - now_ns();
		struct timespec ts = { 0, (long)(left > 200000 ? 200000 : left) };

		nanosleep(&ts, NULL);
	}
}

/* Holds the publisher's connection until the subscribers are done, so
 * nothing it queued is cut off by a disconnect. */
static void publisher_linger(void)
{
	while (!atomic_load(&publisher_stop)) {
		struct timespec ts = { 0, 10000000 };

		nanosleep(&ts, NULL);
	}
}

static void publisher_open_mqtt(void)
{
	mosquitto_lib_init();
	pub_mosq = mosquitto_new(NULL, true, NULL);
	/* Without TCP_NODELAY a QoS 0 publish that follows another one
	 * waits for the broker's delayed ACK (about 40 ms): no reply
	 * carries it sooner. */
	if (!pub_mosq ||
	    mosquitto_int_option(pub_mosq, MOSQ_OPT_TCP_NODELAY, 1) != MOSQ_ERR_SUCCESS ||
	    mosquitto_connect(pub_mosq, opt.pub_host, opt.pub_port, 60) != MOSQ_ERR_SUCCESS ||
	    mosquitto_loop_start(pub_mosq) != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "loadgen: cannot connect the MQTT publisher\n");
		exit(2);
	}
}

static void publisher_close_mqtt(void)
{
	mosquitto_disconnect(pub_mosq);
	mosquitto_loop_stop(pub_mosq, false);
	mosquitto_destroy(pub_mosq);
	mosquitto_lib_cleanup();
}

static void *publish_mqtt(void *arg)
{
	char buf[65536], topic[256];

	(void)arg;
	publish_start_ns = now_ns();
	for (int i = 0; i < opt.messages; i++) {
		size_t len;
		int rc;

		pace(i);
		pub_topic(topic, sizeof(topic), i);
		len = make_payload(buf, sizeof(buf), i);
		while ((rc = mosquitto_publish(pub_mosq, NULL, topic, (int)len, buf, 0,
					       false)) == MOSQ_ERR_NOMEM)
			usleep(100);
		if (rc != MOSQ_ERR_SUCCESS && publish_errors++ == 0)
			fprintf(stderr, "loadgen: %s: publish: %s\n", opt.label,
				mosquitto_strerror(rc));
	}
	publish_end_ns = now_ns();
	atomic_store(&publisher_done, true);
	publisher_linger();
	return NULL;
}

static int tcp_connect_blocking(const char *host, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	inet_pton(AF_INET, host, &sa.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("loadgen: connect");
		exit(2);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Reads one HTTP response (headers and Content-Length body); returns the
 * status, or -1 when the connection closed. */
static int http_response(int fd)
{
	char buf[8192];
	size_t have = 0;
	long clen = 0;
	char *end = NULL, *cl;
	int status;

	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);

		if (n <= 0)
			return -1;
		have += (size_t)n;
		buf[have] = 0;
		if (!end && (end = strstr(buf, "\r\n\r\n"))) {
			cl = strcasestr(buf, "\r\ncontent-length:");
			clen = cl && cl < end ? atol(cl + 17) : 0;
		}
		if (end && have >= (size_t)(end + 4 - buf) + (size_t)clen)
			break;
		if (have == sizeof(buf) - 1)
			return -1;
	}
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		return -1;
	return status;
}

/* Reads `count` pipelined HTTP responses from fd, counting those that
 * are not 2xx as publish errors. */
static void *http_reader(void *arg)
{
	static char buf[262144];
	size_t have = 0;
	int fd = pub_fd, count = *(int *)arg;

	while (count > 0) {
		char *end = memmem(buf, have, "\r\n\r\n", 4), *cl;
		size_t hl, clen, total;
		ssize_t n;
		int status;

		if (end) {
			hl = (size_t)(end + 4 - buf);
			buf[hl - 1] = 0; /* the headers as a string */
			cl = strcasestr(buf, "\r\ncontent-length:");
			clen = cl ? (size_t)atol(cl + 17) : 0;
			total = hl + clen;
			if (have >= total) {
				if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 ||
				    status >= 300)
					publish_errors++;
				memmove(buf, buf + total, have - total);
				have -= total;
				count--;
				continue;
			}
			buf[hl - 1] = '\n';
		}
		if (have == sizeof(buf))
			break;
		n = read(fd, buf + have, sizeof(buf) - have);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	if (count > 0) {
		fprintf(stderr, "loadgen: %s: %d HTTP publishes unanswered\n",
			opt.label, count);
		publish_errors += (uint64_t)count;
	}
	return NULL;
}

/* Paces and writes the POST of message i into req; returns its length. */
static int http_publish_request(char *req, size_t size, int i)
{
	char body[65536], topic[256];
	size_t len;

	pace(i);
	pub_topic(topic, sizeof(topic), i);
	len = make_payload(body, sizeof(body), i);
	return snprintf(req, size,
			"POST %s/%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\n"
			"Content-Type: application/json\r\n\r\n%s",
			opt.pub_path, topic, opt.host, len, body);
}

/* nchan at a fixed rate: requests are pipelined on one connection, so a
 * server that cannot keep up gets the offered rate anyway (and shows it
 * in latency) instead of slowing the publisher down. */
static void publish_http_pipelined(void)
{
	static char req[70000];
	int count = opt.messages;
	pthread_t reader;

	if (pthread_create(&reader, NULL, http_reader, &count)) {
		fprintf(stderr, "loadgen: cannot start the HTTP reader\n");
		exit(3);
	}
	publish_start_ns = now_ns();
	for (int i = 0; i < opt.messages; i++) {
		int rl = http_publish_request(req, sizeof(req), i);

		if (write(pub_fd, req, (size_t)rl) != rl) {
			fprintf(stderr, "loadgen: HTTP publish failed\n");
			exit(2);
		}
	}
	publish_end_ns = now_ns();
	pthread_join(reader, NULL);
}

/* nchan: POST each message to PREFIX/TOPIC over a keep-alive connection
 * (reopened when the server closes it), one at a time when publishing as
 * fast as the server takes them, pipelined at a fixed rate. */
static void *publish_http(void *arg)
{
	int fd = pub_fd;
	static char req[70000];

	(void)arg;
	if (opt.rate > 0) {
		publish_http_pipelined();
		atomic_store(&publisher_done, true);
		return NULL;
	}
	publish_start_ns = now_ns();
	for (int i = 0; i < opt.messages; i++) {
		int rl = http_publish_request(req, sizeof(req), i), st;

		if (write(fd, req, (size_t)rl) != rl || (st = http_response(fd)) < 0) {
			/* the server ended the keep-alive connection: retry */
			close(fd);
			fd = tcp_connect_blocking(opt.host, opt.port);
			if (write(fd, req, (size_t)rl) != rl || (st = http_response(fd)) < 0) {
				fprintf(stderr, "loadgen: HTTP publish failed\n");
				exit(2);
			}
		}
		if (st >= 300) {
			fprintf(stderr, "loadgen: HTTP publish answered %d\n", st);
			exit(2);
		}
	}
	publish_end_ns = now_ns();
	pub_fd = fd;
	atomic_store(&publisher_done, true);
	return NULL;
}

static void publisher_open(void)
{
	if (opt.pub_path)
		pub_fd = tcp_connect_blocking(opt.host, opt.port);
	else
		publisher_open_mqtt();
}

static void publisher_close(void)
{
	if (opt.pub_path)
		close(pub_fd);
	else
		publisher_close_mqtt();
}

/* ---- subscribers -------------------------------------------------------- */

static void conn_dead(struct conn *c)
{
	if (c->state == C_DEAD)
		return;
	if (c->state == C_CONNECTING || c->state == C_HANDSHAKE)
		pending--;
	c->state = C_DEAD;
	dead_count++;
}

static void conn_send(struct conn *c, const void *p, size_t len)
{
	/* Requests are small; the kernel buffer takes them whole. */
	if (write(c->fd, p, len) != (ssize_t)len)
		conn_dead(c);
}

/* A masked client text/binary frame. */
static void ws_send(struct conn *c, int opcode, const void *p, size_t len)
{
	unsigned char buf[16384];
	size_t h = 0;
	static const unsigned char mask[4] = { 1, 2, 3, 4 };

	buf[h++] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		buf[h++] = (unsigned char)(0x80 | len);
	} else {
		buf[h++] = 0x80 | 126;
		buf[h++] = (unsigned char)(len >> 8);
		buf[h++] = (unsigned char)len;
	}
	memcpy(buf + h, mask, 4);
	h += 4;
	for (size_t i = 0; i < len && h < sizeof(buf); i++)
		buf[h++] = ((const unsigned char *)p)[i] ^ mask[i % 4];
	conn_send(c, buf, h);
}

static uint64_t parse_u64(const char *s, const char *end)
{
	uint64_t v = 0;

	while (s < end && *s >= '0' && *s <= '9')
		v = v * 10 + (uint64_t)(*s++ - '0');
	return v;
}

/* One delivered payload: latency from "t", order from "n". */
static void record(struct conn *c, const char *p, size_t len)
{
	uint64_t now = now_ns(), t;
	const char *s = memmem(p, len, "\"t\":", 4), *ns;
	long long n;

	if (!s)
		return;
	t = parse_u64(s + 4, p + len);
	ns = memmem(s, (size_t)(p + len - s), "\"n\":", 4);
	n = ns ? (long long)parse_u64(ns + 4, p + len) : -1;
	if (n >= 0) {
		if (n <= c->last_n)
			reordered++;
		else
			c->last_n = n;
	}
	c->received++;
	if (c->probe)
		return;
	delivered++;
	if (!first_rx_ns)
		first_rx_ns = now;
	last_rx_ns = now;
	if (lat_n < lat_cap && t && now > t)
		lat_us[lat_n++] = (uint32_t)((now - t) / 1000 > UINT32_MAX ? UINT32_MAX
									   : (now - t) / 1000);
}

/* Percent-encodes a topic filter for a query string. */
static void url_encode(char *out, size_t cap, const char *in)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *in && o + 4 < cap; in++) {
		unsigned char ch = (unsigned char)*in;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("/-_.~", ch)) {
			out[o++] = (char)ch;
		} else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = 0;
}

static bool resuming(const struct conn *c)
{
	return opt.resume > 0 && !c->probe;
}

static void send_request(struct conn *c)
{
	char req[2048], filter[256], enc[768], last[IDCAP + 32] = "";
	int n;
	const char *key = "dGhlIHNhbXBsZSBub25jZQ==";

	sub_filter(filter, sizeof(filter), (int)(c - conns));
	if (resuming(c) && (opt.target == T_MQGATE_SSE || opt.target == T_NCHAN_SSE))
		snprintf(last, sizeof(last), "Last-Event-ID: %s\r\n", resume_id);
	switch (opt.target) {
	case T_MQGATE_WS:
		n = snprintf(req, sizeof(req),
			     "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
			     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
			     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqgate.v1\r\n\r\n",
			     opt.host, key);
		break;
	case T_MQTT_WS:
		n = snprintf(req, sizeof(req),
			     "GET /mqtt HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
			     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
			     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
			     opt.host, key);
		break;
	case T_NCHAN_WS:
		n = snprintf(req, sizeof(req),
			     "GET /sub/%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
			     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
			     "Sec-WebSocket-Version: 13\r\n\r\n", filter, opt.host, key);
		break;
	case T_MQGATE_SSE:
		url_encode(enc, sizeof(enc), filter);
		n = snprintf(req, sizeof(req),
			     "GET /events?topic=%s&snapshot=0 HTTP/1.1\r\nHost: %s\r\n"
			     "Accept: text/event-stream\r\n%s\r\n", enc, opt.host, last);
		break;
	case T_NCHAN_SSE:
	default:
		n = snprintf(req, sizeof(req),
			     "GET /sub/%s HTTP/1.1\r\nHost: %s\r\n"
			     "Accept: text/event-stream\r\n%s\r\n", filter, opt.host, last);
		break;
	}
	conn_send(c, req, (size_t)n);
	if (c->state == C_CONNECTING)
		c->state = C_HANDSHAKE;
}

/* How many subscribe requests a client sends. */
static int sub_requests(void)
{
	return (opt.filters + FILTERS_PER_REQUEST - 1) / FILTERS_PER_REQUEST;
}

static void mark_ready(struct conn *c)
{
	if (c->state == C_CONNECTING || c->state == C_HANDSHAKE) {
		c->state = C_READY;
		pending--;
		ready_count++;
	}
}

/* MQTT SUBSCRIBE in a WebSocket binary frame: mqtt_sub_begin writes the
 * packet id, mqtt_sub_add a (length, filter, QoS 0) entry (the caller's
 * body has room), mqtt_sub_send the fixed header with the remaining
 * length as a variable-length integer, and the body. */
static size_t mqtt_sub_begin(unsigned char *body, int packet_id)
{
	body[0] = (unsigned char)(packet_id >> 8);
	body[1] = (unsigned char)packet_id;
	return 2;
}

static size_t mqtt_sub_add(unsigned char *body, size_t bl, const char *filter)
{
	size_t fl = strlen(filter);

	body[bl++] = (unsigned char)(fl >> 8);
	body[bl++] = (unsigned char)fl;
	memcpy(body + bl, filter, fl);
	bl += fl;
	body[bl++] = 0;
	return bl;
}

static void mqtt_sub_send(struct conn *c, const unsigned char *body, size_t bl)
{
	unsigned char pkt[8200];
	size_t pl = 0, rl = bl;

	pkt[pl++] = 0x82;
	do {
		pkt[pl] = (unsigned char)(rl & 127);
		rl >>= 7;
		if (rl)
			pkt[pl] |= 128;
		pl++;
	} while (rl);
	memcpy(pkt + pl, body, bl);
	ws_send(c, 2, pkt, pl + bl);
}

/* --filters: K filters in requests of FILTERS_PER_REQUEST. */
static void subscribe_many(struct conn *c)
{
	int base = (int)(c - conns) * opt.filters;

	if (opt.target == T_MQTT_WS)
		ws_send(c, 2, mqtt_connect, sizeof(mqtt_connect));
	for (int r = 0; r < sub_requests(); r++) {
		int from = r * FILTERS_PER_REQUEST, to = from + FILTERS_PER_REQUEST;
		char buf[8192];
		size_t k = 0;

		if (to > opt.filters)
			to = opt.filters;
		if (opt.target == T_MQGATE_WS) {
			k += (size_t)snprintf(buf, sizeof(buf),
					      "{\"op\":\"subscribe\",\"id\":%d,"
					      "\"snapshot\":false,\"topics\":[", r + 1);
			for (int j = from; j < to; j++)
				k += (size_t)snprintf(buf + k, sizeof(buf) - k,
						      "%s\"%s/%d/+\"", j > from ? "," : "",
						      opt.topic, base + j);
			k += (size_t)snprintf(buf + k, sizeof(buf) - k, "]}");
			ws_send(c, 1, buf, k);
		} else {
			unsigned char body[8192];
			size_t bl = mqtt_sub_begin(body, r + 1);

			for (int j = from; j < to; j++) {
				char f[256];

				snprintf(f, sizeof(f), "%s/%d/+", opt.topic, base + j);
				bl = mqtt_sub_add(body, bl, f);
			}
			mqtt_sub_send(c, body, bl);
		}
	}
}

/* A subscribe reply: the client is ready after the last one. */
static void sub_acked(struct conn *c)
{
	if (++c->acks >= sub_requests())
		mark_ready(c);
}

static void after_handshake(struct conn *c)
{
	char buf[512], filter[256], since[IDCAP + 16] = "";
	int n;

	sub_filter(filter, sizeof(filter), (int)(c - conns));
	if (opt.filters > 1) {
		subscribe_many(c);
		return;
	}
	switch (opt.target) {
	case T_MQGATE_WS:
		if (resuming(c))
			snprintf(since, sizeof(since), ",\"since\":\"%s\"", resume_id);
		n = snprintf(buf, sizeof(buf),
			     "{\"op\":\"subscribe\",\"id\":1,\"topics\":[\"%s\"],"
			     "\"snapshot\":false%s}", filter, since);
		ws_send(c, 1, buf, (size_t)n);
		break;
	case T_MQTT_WS: {
		unsigned char body[512];

		ws_send(c, 2, mqtt_connect, sizeof(mqtt_connect));
		mqtt_sub_send(c, body, mqtt_sub_add(body, mqtt_sub_begin(body, 1),
						    filter));
		break;
	}
	case T_NCHAN_WS:
	case T_MQGATE_SSE:
	case T_NCHAN_SSE:
		mark_ready(c);
		break;
	}
}

/* MQTT packets inside WebSocket binary payloads. */
static void mqtt_bytes(struct conn *c, const unsigned char *p, size_t len)
{
	unsigned char *n = realloc(c->mq, c->mqlen + len);

	if (!n)
		exit(3);
	c->mq = n;
	memcpy(c->mq + c->mqlen, p, len);
	c->mqlen += len;
	for (;;) {
		size_t rl = 0, mult = 1, i = 1;

		if (c->mqlen < 2)
			break;
		while (i < c->mqlen && i < 5) {
			rl += (c->mq[i] & 127) * mult;
			mult *= 128;
			if (!(c->mq[i++] & 128))
				break;
		}
		if (i >= c->mqlen && (c->mq[i - 1] & 128))
			break;
		if (c->mqlen < i + rl)
			break;
		switch (c->mq[0] & 0xf0) {
		case 0x90: /* SUBACK */
			sub_acked(c);
			break;
		case 0x30: { /* PUBLISH, QoS 0 */
			size_t tl = (size_t)c->mq[i] << 8 | c->mq[i + 1];

			record(c, (char *)c->mq + i + 2 + tl, rl - 2 - tl);
			break;
		}
		default:
			break;
		}
		memmove(c->mq, c->mq + i + rl, c->mqlen - i - rl);
		c->mqlen -= i + rl;
	}
	if (!c->mqlen) {
		free(c->mq);
		c->mq = NULL;
	}
}

/* The probe keeps the event id of the first message it sees. */
static void learn_id(const char *id, size_t len)
{
	if (resume_id[0] || len == 0 || len >= IDCAP)
		return;
	memcpy(resume_id, id, len);
	resume_id[len] = 0;
}

static void ws_payload(struct conn *c, int opcode, const unsigned char *p, size_t len)
{
	switch (opt.target) {
	case T_MQGATE_WS:
		if (len > 12 && memmem(p, len < 32 ? len : 32, "\"op\":\"message\"", 14)) {
			const char *ev = memmem(p, len, "\"event\":\"", 9), *q;

			if (c->probe && ev && (q = memchr(ev + 9, '"', len - (size_t)(ev + 9 - (const char *)p))))
				learn_id(ev + 9, (size_t)(q - ev - 9));
			record(c, (const char *)p, len);
		} else if (memmem(p, len, "\"op\":\"ok\"", 9)) {
			sub_acked(c);
		} else if (memmem(p, len, "\"op\":\"error\"", 12)) {
			fprintf(stderr, "loadgen: %s: %.*s\n", opt.label,
				(int)(len < 300 ? len : 300), (const char *)p);
		} else if (memmem(p, len, "\"op\":\"reset\"", 12)) {
			fprintf(stderr, "loadgen: %s: reset instead of resume\n", opt.label);
		}
		break;
	case T_MQTT_WS:
		if (opcode == 2)
			mqtt_bytes(c, p, len);
		break;
	default:
		record(c, (const char *)p, len);
		break;
	}
}

/* Consumes what it can from c->rx; returns bytes used. */
static size_t parse(struct conn *c)
{
	unsigned char *p = c->rx;
	size_t len = c->rxlen, used = 0;

	if (!c->http_done) {
		unsigned char *end = memmem(p, len, "\r\n\r\n", 4);

		if (!end)
			return 0;
		if (len < 12 || (memcmp(p + 9, "101", 3) && memcmp(p + 9, "200", 3))) {
			fprintf(stderr, "loadgen: %s: refused: %.12s\n", opt.label, p);
			conn_dead(c);
			return len;
		}
		c->http_done = true;
		used = (size_t)(end + 4 - p);
		after_handshake(c);
	}
	if (opt.target == T_MQGATE_SSE || opt.target == T_NCHAN_SSE) {
		for (;;) {
			unsigned char *nl = memchr(p + used, '\n', len - used);
			size_t ll;

			if (!nl)
				break;
			ll = (size_t)(nl - (p + used));
			if (ll > 6 && memcmp(p + used, "data: ", 6) == 0)
				record(c, (char *)p + used + 6, ll - 6);
			else if (c->probe && ll > 4 && memcmp(p + used, "id: ", 4) == 0)
				learn_id((char *)p + used + 4,
					 ll - 4 - (p[used + ll - 1] == '\r'));
			else if (ll > 12 && memcmp(p + used, "event: reset", 12) == 0)
				fprintf(stderr, "loadgen: %s: reset instead of resume\n",
					opt.label);
			used += ll + 1;
		}
		return used;
	}
	for (;;) {
		size_t h = 2, plen;
		unsigned char *f = p + used;
		size_t avail = len - used;

		if (avail < 2)
			break;
		plen = f[1] & 127;
		if (plen == 126) {
			if (avail < 4)
				break;
			plen = (size_t)f[2] << 8 | f[3];
			h = 4;
		} else if (plen == 127) {
			if (avail < 10)
				break;
			plen = 0;
			for (int i = 0; i < 8; i++)
				plen = plen << 8 | f[2 + i];
			h = 10;
		}
		if (avail < h + plen)
			break;
		if ((f[0] & 0x0f) == 9) /* ping: answer */
			ws_send(c, 10, f + h, plen);
		else if ((f[0] & 0x0f) == 8)
			conn_dead(c);
		else
			ws_payload(c, f[0] & 0x0f, f + h, plen);
		used += h + plen;
	}
	return used;
}

static void on_readable(struct conn *c)
{
	while (c->state != C_DEAD) {
		ssize_t n;
		size_t used;

		if (!c->rx && !(c->rx = malloc(RXCAP)))
			exit(3);
		n = read(c->fd, c->rx + c->rxlen, RXCAP - c->rxlen);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			if (dead_count < 3)
				fprintf(stderr, "loadgen: %s: client %d: %s (%s)\n", opt.label,
					(int)(c - conns), n ? strerror(errno) : "closed by the server",
					c->state == C_READY ? "after subscribing" : "during the handshake");
			conn_dead(c);
			break;
		}
		if (n < 0)
			break;
		c->rxlen += (size_t)n;
		used = parse(c);
		memmove(c->rx, c->rx + used, c->rxlen - used);
		c->rxlen -= used;
		if (c->rxlen == RXCAP) {
			fprintf(stderr, "loadgen: frame larger than %d bytes\n", RXCAP);
			exit(3);
		}
	}
	if (c->rxlen == 0) { /* keep idle clients small */
		free(c->rx);
		c->rx = NULL;
	}
	if (c->state == C_DEAD) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
}

static void open_conn(int i)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port) };
	struct sockaddr_in src = { .sin_family = AF_INET };
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET };
	struct conn *c = &conns[i];
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0) {
		perror("loadgen: socket");
		exit(2);
	}
	c->last_n = -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Spread over 127.0.K.2.., K from the process id: 10,000+ clients
	 * never run out of source ports, and the TIME_WAIT connections of
	 * the previous runs (60 s each) are never in the way. */
	src.sin_addr.s_addr = htonl(0x7f000002u + ((uint32_t)(getpid() % 250 + 1) << 8) +
				    (uint32_t)(i / 20000));
	bind(c->fd, (struct sockaddr *)&src, sizeof(src));
	inet_pton(AF_INET, opt.host, &sa.sin_addr);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		perror("loadgen: connect");
		exit(2);
	}
	c->state = C_CONNECTING;
	pending++;
	ev.data.u32 = (uint32_t)i;
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* Opens connections up to open_limit, at most opt.concurrency handshakes
 * at a time. */
static void open_more(void)
{
	while (next_open < open_limit && pending < opt.concurrency)
		open_conn(next_open++);
}

static void service(int ms)
{
	struct epoll_event evs[256];
	int n;

	open_more();
	n = epoll_wait(ep, evs, 256, ms);
	for (int i = 0; i < n; i++) {
		struct conn *c = &conns[evs[i].data.u32];

		if (c->state == C_DEAD)
			continue;
		if ((evs[i].events & EPOLLOUT) && c->state == C_CONNECTING)
			send_request(c);
		if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			on_readable(c);
	}
	open_more();
}

static bool timed_out(uint64_t since)
{
	return now_ns() - since > (uint64_t)opt.timeout * 1000000000ull;
}

/* Opens conns [from, to) and waits for them to be ready; the time taken. */
static double connect_all(int from, int to)
{
	uint64_t t0 = now_ns();

	next_open = from;
	open_limit = to;
	while (ready_count < to - from && !timed_out(t0))
		service(10);
	if (ready_count < to - from) {
		fprintf(stderr, "loadgen: %s: only %d of %d clients subscribed (%d dead)\n",
			opt.label, ready_count, to - from, dead_count);
		exit(1);
	}
	return (double)(now_ns() - t0) / 1e9;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static enum target parse_target(const char *s)
{
	static const char *const names[] = { "mqgate-ws", "mqgate-sse", "mqtt-ws",
					     "nchan-ws", "nchan-sse" };

	for (int i = 0; i < 5; i++)
		if (strcmp(s, names[i]) == 0)
			return (enum target)i;
	fprintf(stderr, "loadgen: unknown target '%s'\n", s);
	exit(64);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: loadgen --target mqgate-ws|mqgate-sse|mqtt-ws|nchan-ws|nchan-sse\n"
		"  --port P [--host H] [--topic T] --clients N [--messages M]\n"
		"  [--rate R msgs/s, 0 = max] [--payload BYTES] [--pub-port P | --pub-path /pub]\n"
		"  [--server-pid PID] [--idle SECONDS] [--timeout S] [--label NAME]\n"
		"  [--concurrency K] [--distinct K] [--filters K] [--resume M]\n");
	exit(64);
}

static pthread_t start_publisher(void)
{
	pthread_t pub;

	atomic_store(&publisher_done, false);
	atomic_store(&publisher_stop, false);
	if (pthread_create(&pub, NULL, opt.pub_path ? publish_http : publish_mqtt, NULL)) {
		fprintf(stderr, "loadgen: cannot start the publisher\n");
		exit(3);
	}
	return pub;
}

/* Services until `*count` reaches `want`, or the publisher is done and
 * nothing arrived for 3 s, or the timeout. */
static void wait_for(const uint64_t *count, uint64_t want)
{
	uint64_t t0 = now_ns(), seen = *count, quiet = now_ns();

	while (*count < want && !timed_out(t0)) {
		service(50);
		if (*count != seen) {
			seen = *count;
			quiet = now_ns();
		}
		if (atomic_load(&publisher_done) && now_ns() - quiet > 3000000000ull)
			break;
	}
}

static void stop_publisher(pthread_t pub)
{
	atomic_store(&publisher_stop, true);
	pthread_join(pub, NULL);
}

static int run_resume(double *setup_s)
{
	struct conn *probe = &conns[opt.clients];
	uint64_t t0, expected = (uint64_t)opt.clients * (uint64_t)opt.resume;
	double secs, cpu0, cpu1;
	pthread_t pub;

	probe->probe = true;
	*setup_s = connect_all(opt.clients, opt.clients + 1);
	for (int i = 0; i < 20; i++)
		service(10);
	opt.messages = opt.resume + 1;
	pub = start_publisher();
	wait_for(&probe->received, (uint64_t)opt.messages);
	stop_publisher(pub);
	if (probe->received < (uint64_t)opt.messages || !resume_id[0]) {
		fprintf(stderr, "loadgen: %s: the probe got %llu of %d messages\n",
			opt.label, (unsigned long long)probe->received, opt.messages);
		return 1;
	}
	ready_count = 0;
	cpu0 = cpu_s(opt.server_pid);
	t0 = now_ns();
	next_open = 0;
	open_limit = opt.clients;
	while (delivered < expected && !timed_out(t0))
		service(10);
	secs = (double)(now_ns() - t0) / 1e9;
	cpu1 = cpu_s(opt.server_pid);
	printf("%s: resume clients=%d replay_per_client=%d ready=%d delivered=%llu "
	       "lost=%llu reordered=%llu resume_s=%.3f replay_rate=%.0f/s "
	       "server_cpu_s=%.2f server_rss_kb=%ld\n",
	       opt.label, opt.clients, opt.resume, ready_count,
	       (unsigned long long)delivered,
	       (unsigned long long)(expected - (delivered < expected ? delivered : expected)),
	       (unsigned long long)reordered, secs, (double)delivered / secs,
	       cpu0 >= 0 ? cpu1 - cpu0 : -1.0, rss_kb(opt.server_pid));
	return delivered == expected ? 0 : 1;
}

static void run_fanout(double setup_s)
{
	uint64_t expected, per_msg;
	double cpu0, cpu1, self0, self1;
	pthread_t pub;

	/* settle, then publish */
	for (int i = 0; i < 20; i++)
		service(10);
	per_msg = opt.filters > 1 ? 1
		  : opt.distinct > 0 ? (uint64_t)(opt.clients / opt.distinct)
				     : (uint64_t)opt.clients;
	expected = (uint64_t)opt.messages * per_msg;
	cpu0 = cpu_s(opt.server_pid);
	self0 = self_cpu_s();
	pub = start_publisher();
	wait_for(&delivered, expected);
	cpu1 = cpu_s(opt.server_pid);
	self1 = self_cpu_s();
	stop_publisher(pub);
	qsort(lat_us, lat_n, sizeof(*lat_us), cmp_u32);
	printf("%s: clients=%d messages=%d distinct=%d filters=%d offered=%s pub_rate=%.0f/s "
	       "pub_errors=%llu delivered=%llu lost=%llu reordered=%llu dead=%d "
	       "rate=%.0f/s p50_ms=%.2f p99_ms=%.2f max_ms=%.2f "
	       "connect_rate=%.0f/s server_rss_kb=%ld server_cpu_s=%.2f "
	       "server_us_per_msg=%.2f loadgen_cpu_s=%.2f wall_s=%.2f\n",
	       opt.label, opt.clients, opt.messages, opt.distinct, opt.filters,
	       opt.rate > 0 ? "fixed" : "max",
	       publish_end_ns > publish_start_ns
		       ? opt.messages / ((double)(publish_end_ns - publish_start_ns) / 1e9)
		       : 0.0,
	       (unsigned long long)publish_errors, (unsigned long long)delivered,
	       (unsigned long long)(expected - (delivered < expected ? delivered : expected)),
	       (unsigned long long)reordered, dead_count,
	       last_rx_ns > publish_start_ns
		       ? (double)delivered / ((double)(last_rx_ns - publish_start_ns) / 1e9)
		       : 0.0,
	       lat_n ? lat_us[lat_n / 2] / 1000.0 : -1,
	       lat_n ? lat_us[(size_t)((double)lat_n * 0.99)] / 1000.0 : -1,
	       lat_n ? lat_us[lat_n - 1] / 1000.0 : -1,
	       opt.clients / setup_s, rss_kb(opt.server_pid),
	       cpu0 >= 0 ? cpu1 - cpu0 : -1.0,
	       cpu0 >= 0 && opt.messages ? (cpu1 - cpu0) * 1e6 / opt.messages : -1.0,
	       self1 - self0,
	       last_rx_ns > publish_start_ns ? (double)(last_rx_ns - publish_start_ns) / 1e9
					     : 0.0);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "target", 1, 0, 'T' }, { "host", 1, 0, 'H' }, { "port", 1, 0, 'p' },
		{ "topic", 1, 0, 't' }, { "clients", 1, 0, 'n' }, { "messages", 1, 0, 'm' },
		{ "rate", 1, 0, 'r' }, { "payload", 1, 0, 's' }, { "pub-port", 1, 0, 'P' },
		{ "pub-path", 1, 0, 'U' }, { "server-pid", 1, 0, 'S' }, { "idle", 1, 0, 'i' },
		{ "timeout", 1, 0, 'o' }, { "label", 1, 0, 'l' },
		{ "concurrency", 1, 0, 'c' }, { "distinct", 1, 0, 'd' },
		{ "resume", 1, 0, 'R' }, { "filters", 1, 0, 'F' }, { 0, 0, 0, 0 }
	};
	struct rlimit rl;
	long rss0, rss1;
	double setup_s;
	int o;
	bool have_target = false;

	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 'T': opt.target = parse_target(optarg); have_target = true; break;
		case 'H': opt.host = optarg; break;
		case 'p': opt.port = atoi(optarg); break;
		case 't': opt.topic = optarg; break;
		case 'n': opt.clients = atoi(optarg); break;
		case 'm': opt.messages = atoi(optarg); break;
		case 'r': opt.rate = atof(optarg); break;
		case 's': opt.payload = atoi(optarg); break;
		case 'P': opt.pub_port = atoi(optarg); break;
		case 'U': opt.pub_path = optarg; break;
		case 'S': opt.server_pid = atoi(optarg); break;
		case 'i': opt.idle_seconds = atoi(optarg); break;
		case 'o': opt.timeout = atoi(optarg); break;
		case 'l': opt.label = optarg; break;
		case 'c': opt.concurrency = atoi(optarg); break;
		case 'd': opt.distinct = atoi(optarg); break;
		case 'R': opt.resume = atoi(optarg); break;
		case 'F': opt.filters = atoi(optarg); break;
		default: usage();
		}
	}
	if (!have_target || !opt.port || opt.clients < 1 || opt.concurrency < 1 ||
	    opt.distinct < 0 || opt.resume < 0 || opt.filters < 1 ||
	    (opt.filters > 1 && (opt.distinct || opt.resume ||
				 (opt.target != T_MQGATE_WS && opt.target != T_MQTT_WS))) ||
	    (opt.distinct > 0 && opt.clients % opt.distinct) ||
	    (opt.resume > 0 && (opt.target == T_MQTT_WS || opt.target == T_NCHAN_WS)) ||
	    (!opt.pub_path && !opt.pub_port && (opt.messages > 0 || opt.resume > 0)))
		usage();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	nconns = opt.clients + (opt.resume > 0);
	conns = calloc((size_t)nconns, sizeof(*conns));
	lat_cap = 20u << 20;
	lat_us = malloc(lat_cap * sizeof(*lat_us));
	ep = epoll_create1(0);
	if (!conns || !lat_us || ep < 0)
		return 3;

	if (opt.messages > 0 || opt.resume > 0)
		publisher_open();
	if (opt.resume > 0) {
		o = run_resume(&setup_s);
		publisher_close();
		return o;
	}

	rss0 = rss_kb(opt.server_pid);
	setup_s = connect_all(0, opt.clients);
	if (opt.idle_seconds > 0) {
		uint64_t end = now_ns() + (uint64_t)opt.idle_seconds * 1000000000ull;

		while (now_ns() < end)
			service(100);
		rss1 = rss_kb(opt.server_pid);
		printf("%s: idle clients=%d dead=%d connect_rate=%.0f/s server_rss_kb=%ld "
		       "per_client_kb=%.2f\n",
		       opt.label, opt.clients, dead_count, opt.clients / setup_s, rss1,
		       rss0 > 0 ? (double)(rss1 - rss0) / opt.clients : -1.0);
		return dead_count ? 1 : 0;
	}
	if (opt.messages == 0) {
		printf("%s: connect clients=%d connect_s=%.3f connect_rate=%.0f/s "
		       "server_rss_kb=%ld\n", opt.label, opt.clients, setup_s,
		       opt.clients / setup_s, rss_kb(opt.server_pid));
		return 0;
	}
	run_fanout(setup_s);
	publisher_close();
	return 0;
}
