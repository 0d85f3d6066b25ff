/*
 * loadgen.c - load generator for fan-out benchmarks: N subscribers over
 * WebSocket or SSE (one thread, epoll, non-blocking), one publisher, the
 * send time carried in every payload. Prints one line per run: delivered
 * messages/s, lost messages, p50/p99/max end-to-end latency, connection
 * rate and the server's RSS.
 *
 * Targets (what the subscribers speak):
 *   mqgate-ws   GET /ws, {"op":"subscribe"} frames, "message" replies
 *   mqgate-sse  GET /events?topic=...
 *   mqtt-ws     MQTT 3.1.1 over WebSocket (mosquitto's websockets listener)
 *   nchan-ws    nchan's WebSocket subscriber endpoint (raw payloads)
 *   nchan-sse   nchan's EventSource subscriber endpoint
 * Publishers: MQTT (libmosquitto) to --pub-port, or HTTP POST to --pub-path
 * on the target (nchan).
 *
 * Payloads are {"t":NANOSECONDS,"n":SEQ,"pad":"..."}; a subscriber finds
 * "t": in what it receives, whatever the wrapping.
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
enum cstate { C_CONNECTING, C_HANDSHAKE, C_READY, C_DEAD };

#define RXCAP 65536

struct conn {
	int fd;
	enum cstate state;
	bool http_done;       /* response headers parsed */
	size_t rxlen;
	unsigned char *rx;    /* allocated while data is pending */
	/* MQTT over WS: packet bytes reassembled across frames */
	unsigned char *mq;
	size_t mqlen;
	uint64_t received;
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
	const char *label;
	const char *bind_base; /* spread clients over 127.0.0.X sources */
} opt = {
	.host = "127.0.0.1", .topic = "bench/t", .pub_host = "127.0.0.1",
	.clients = 100, .messages = 1000, .payload = 64, .timeout = 30,
	.label = "run",
};

static struct conn *conns;
static int ep;
static atomic_int ready_count;
static uint32_t *lat_us;      /* one sample per delivery (bounded) */
static size_t lat_n, lat_cap;
static uint64_t delivered;
static uint64_t first_rx_ns, last_rx_ns;

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

/* ---- the publisher ------------------------------------------------------ */

static atomic_int published;
static atomic_bool publisher_done;
static uint64_t publish_start_ns, publish_end_ns;

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

static void *publish_mqtt(void *arg)
{
	struct mosquitto *m;
	char buf[65536];

	(void)arg;
	mosquitto_lib_init();
	m = mosquitto_new(NULL, true, NULL);
	if (!m || mosquitto_connect(m, opt.pub_host, opt.pub_port, 30) != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "loadgen: cannot connect the MQTT publisher\n");
		exit(2);
	}
	mosquitto_loop_start(m);
	publish_start_ns = now_ns();
	for (int i = 0; i < opt.messages; i++) {
		size_t len;

		pace(i);
		len = make_payload(buf, sizeof(buf), i);
		while (mosquitto_publish(m, NULL, opt.topic, (int)len, buf, 0, false) ==
		       MOSQ_ERR_NOMEM)
			usleep(100);
		atomic_fetch_add(&published, 1);
	}
	publish_end_ns = now_ns();
	sleep(1);
	mosquitto_disconnect(m);
	mosquitto_loop_stop(m, false);
	mosquitto_destroy(m);
	atomic_store(&publisher_done, true);
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

/* nchan: POST each message to the publisher endpoint (keep-alive). */
static void *publish_http(void *arg)
{
	int fd = tcp_connect_blocking(opt.host, opt.port);
	char body[65536], req[70000], resp[4096];

	(void)arg;
	publish_start_ns = now_ns();
	for (int i = 0; i < opt.messages; i++) {
		size_t len;
		int rl;

		pace(i);
		len = make_payload(body, sizeof(body), i);
		rl = snprintf(req, sizeof(req),
			      "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\n"
			      "Content-Type: application/json\r\n\r\n%s",
			      opt.pub_path, opt.host, len, body);
		if (write(fd, req, (size_t)rl) != rl || read(fd, resp, sizeof(resp)) <= 0) {
			fprintf(stderr, "loadgen: HTTP publish failed\n");
			exit(2);
		}
		atomic_fetch_add(&published, 1);
	}
	publish_end_ns = now_ns();
	close(fd);
	atomic_store(&publisher_done, true);
	return NULL;
}

/* ---- subscribers -------------------------------------------------------- */

static void conn_send(struct conn *c, const void *p, size_t len)
{
	/* Requests are small; the kernel buffer takes them whole. */
	if (write(c->fd, p, len) != (ssize_t)len)
		c->state = C_DEAD;
}

/* A masked client text/binary frame. */
static void ws_send(struct conn *c, int opcode, const void *p, size_t len)
{
	unsigned char buf[1024];
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

static void record(const char *p, size_t len)
{
	uint64_t now = now_ns(), t = 0;
	const char *s = memmem(p, len, "\"t\":", 4);

	if (!s)
		return;
	s += 4;
	while (s < p + len && *s >= '0' && *s <= '9')
		t = t * 10 + (uint64_t)(*s++ - '0');
	delivered++;
	if (!first_rx_ns)
		first_rx_ns = now;
	last_rx_ns = now;
	if (lat_n < lat_cap && t && now > t)
		lat_us[lat_n++] = (uint32_t)((now - t) / 1000 > UINT32_MAX ? UINT32_MAX
									   : (now - t) / 1000);
}

static void send_request(struct conn *c)
{
	char req[2048];
	int n;
	const char *key = "dGhlIHNhbXBsZSBub25jZQ==";

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
			     "Sec-WebSocket-Version: 13\r\n\r\n", opt.topic, opt.host, key);
		break;
	case T_MQGATE_SSE:
		n = snprintf(req, sizeof(req),
			     "GET /events?topic=%s&snapshot=0 HTTP/1.1\r\nHost: %s\r\n"
			     "Accept: text/event-stream\r\n\r\n", opt.topic, opt.host);
		break;
	case T_NCHAN_SSE:
	default:
		n = snprintf(req, sizeof(req),
			     "GET /sub/%s HTTP/1.1\r\nHost: %s\r\n"
			     "Accept: text/event-stream\r\n\r\n", opt.topic, opt.host);
		break;
	}
	conn_send(c, req, (size_t)n);
	c->state = C_HANDSHAKE;
}

static void mark_ready(struct conn *c)
{
	if (c->state != C_READY) {
		c->state = C_READY;
		atomic_fetch_add(&ready_count, 1);
	}
}

static void after_handshake(struct conn *c)
{
	char buf[512];
	int n;

	switch (opt.target) {
	case T_MQGATE_WS:
		n = snprintf(buf, sizeof(buf),
			     "{\"op\":\"subscribe\",\"id\":1,\"topics\":[\"%s\"],\"snapshot\":false}",
			     opt.topic);
		ws_send(c, 1, buf, (size_t)n);
		break;
	case T_MQTT_WS: {
		/* CONNECT, clean session, keepalive 600 */
		static const unsigned char connect_pkt[] = {
			0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0x02, 0x58, 0, 0
		};
		unsigned char sub[512];
		size_t tl = strlen(opt.topic), k = 0;

		ws_send(c, 2, connect_pkt, sizeof(connect_pkt));
		sub[k++] = 0x82;
		sub[k++] = (unsigned char)(2 + 2 + tl + 1);
		sub[k++] = 0;
		sub[k++] = 1;
		sub[k++] = (unsigned char)(tl >> 8);
		sub[k++] = (unsigned char)tl;
		memcpy(sub + k, opt.topic, tl);
		k += tl;
		sub[k++] = 0;
		ws_send(c, 2, sub, k);
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
			mark_ready(c);
			break;
		case 0x30: { /* PUBLISH, QoS 0 */
			size_t tl = (size_t)c->mq[i] << 8 | c->mq[i + 1];

			record((char *)c->mq + i + 2 + tl, rl - 2 - tl);
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

static void ws_payload(struct conn *c, int opcode, const unsigned char *p, size_t len)
{
	switch (opt.target) {
	case T_MQGATE_WS:
		if (len > 12 && memmem(p, len < 32 ? len : 32, "\"op\":\"message\"", 14))
			record((const char *)p, len);
		else if (memmem(p, len, "\"op\":\"ok\"", 9))
			mark_ready(c);
		break;
	case T_MQTT_WS:
		if (opcode == 2)
			mqtt_bytes(c, p, len);
		break;
	default:
		record((const char *)p, len);
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
			c->state = C_DEAD;
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
				record((char *)p + used + 6, ll - 6);
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
			c->state = C_DEAD;
		else
			ws_payload(c, f[0] & 0x0f, f + h, plen);
		used += h + plen;
	}
	return used;
}

static void on_readable(struct conn *c)
{
	for (;;) {
		ssize_t n;
		size_t used;

		if (!c->rx && !(c->rx = malloc(RXCAP)))
			exit(3);
		n = read(c->fd, c->rx + c->rxlen, RXCAP - c->rxlen);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			c->state = C_DEAD;
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
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Spread over 127.0.0.2.. so 10,000+ clients never run out of
	 * source ports. */
	src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(i / 20000));
	bind(c->fd, (struct sockaddr *)&src, sizeof(src));
	inet_pton(AF_INET, opt.host, &sa.sin_addr);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		perror("loadgen: connect");
		exit(2);
	}
	c->state = C_CONNECTING;
	ev.data.u32 = (uint32_t)i;
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void service(int ms)
{
	struct epoll_event evs[256];
	int n = epoll_wait(ep, evs, 256, ms);

	for (int i = 0; i < n; i++) {
		struct conn *c = &conns[evs[i].data.u32];

		if (c->state == C_DEAD)
			continue;
		if ((evs[i].events & EPOLLOUT) && c->state == C_CONNECTING)
			send_request(c);
		if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			on_readable(c);
	}
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
		"  [--rate R msgs/s, 0 = max] [--payload BYTES] [--pub-port P | --pub-path /pub/T]\n"
		"  [--server-pid PID] [--idle SECONDS] [--timeout S] [--label NAME]\n");
	exit(64);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "target", 1, 0, 'T' }, { "host", 1, 0, 'H' }, { "port", 1, 0, 'p' },
		{ "topic", 1, 0, 't' }, { "clients", 1, 0, 'n' }, { "messages", 1, 0, 'm' },
		{ "rate", 1, 0, 'r' }, { "payload", 1, 0, 's' }, { "pub-port", 1, 0, 'P' },
		{ "pub-path", 1, 0, 'U' }, { "server-pid", 1, 0, 'S' }, { "idle", 1, 0, 'i' },
		{ "timeout", 1, 0, 'o' }, { "label", 1, 0, 'l' }, { 0, 0, 0, 0 }
	};
	struct rlimit rl;
	pthread_t pub;
	uint64_t t0, t_ready, expected;
	long rss0, rss1;
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
		default: usage();
		}
	}
	if (!have_target || !opt.port || opt.clients < 1)
		usage();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	conns = calloc((size_t)opt.clients, sizeof(*conns));
	lat_cap = 20u << 20;
	lat_us = malloc(lat_cap * sizeof(*lat_us));
	ep = epoll_create1(0);
	if (!conns || !lat_us || ep < 0)
		return 3;

	rss0 = rss_kb(opt.server_pid);
	t0 = now_ns();
	for (int i = 0; i < opt.clients; i++) {
		open_conn(i);
		if (i % 64 == 63)
			service(0);
	}
	while (atomic_load(&ready_count) < opt.clients &&
	       now_ns() - t0 < (uint64_t)opt.timeout * 1000000000ull)
		service(10);
	t_ready = now_ns();
	if (atomic_load(&ready_count) < opt.clients) {
		fprintf(stderr, "loadgen: only %d of %d clients subscribed\n",
			atomic_load(&ready_count), opt.clients);
		return 1;
	}
	rss1 = rss_kb(opt.server_pid);
	if (opt.idle_seconds > 0) {
		uint64_t end = now_ns() + (uint64_t)opt.idle_seconds * 1000000000ull;

		while (now_ns() < end)
			service(100);
		rss1 = rss_kb(opt.server_pid);
		printf("%s: idle clients=%d connect_rate=%.0f/s server_rss_kb=%ld "
		       "per_client_kb=%.2f\n",
		       opt.label, opt.clients,
		       opt.clients / ((double)(t_ready - t0) / 1e9), rss1,
		       rss0 > 0 ? (double)(rss1 - rss0) / opt.clients : -1.0);
		return 0;
	}
	if (opt.messages > 0) {
		/* settle, then publish */
		for (int i = 0; i < 20; i++)
			service(10);
		pthread_create(&pub, NULL, opt.pub_path ? publish_http : publish_mqtt, NULL);
		expected = (uint64_t)opt.messages * (uint64_t)opt.clients;
		while (delivered < expected) {
			uint64_t idle_since = last_rx_ns ? last_rx_ns : now_ns();

			service(50);
			if (atomic_load(&publisher_done) &&
			    now_ns() - (last_rx_ns ? last_rx_ns : idle_since) > 3000000000ull)
				break;
		}
		pthread_join(pub, NULL);
		qsort(lat_us, lat_n, sizeof(*lat_us), cmp_u32);
		printf("%s: clients=%d messages=%d offered=%s delivered=%llu lost=%llu "
		       "rate=%.0f/s p50_ms=%.2f p99_ms=%.2f max_ms=%.2f "
		       "connect_rate=%.0f/s server_rss_kb=%ld\n",
		       opt.label, opt.clients, opt.messages,
		       opt.rate > 0 ? "fixed" : "max",
		       (unsigned long long)delivered,
		       (unsigned long long)(expected - (delivered < expected ? delivered : expected)),
		       last_rx_ns > publish_start_ns
			       ? (double)delivered / ((double)(last_rx_ns - publish_start_ns) / 1e9)
			       : 0.0,
		       lat_n ? lat_us[lat_n / 2] / 1000.0 : -1,
		       lat_n ? lat_us[(size_t)((double)lat_n * 0.99)] / 1000.0 : -1,
		       lat_n ? lat_us[lat_n - 1] / 1000.0 : -1,
		       opt.clients / ((double)(t_ready - t0) / 1e9), rss_kb(opt.server_pid));
		(void)rss1;
	}
	return 0;
}
