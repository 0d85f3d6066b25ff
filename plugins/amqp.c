/*
 * amqp.c - the "amqp" backend: an AMQP 0-9-1 broker (RabbitMQ) through
 * rabbitmq-c.
 *
 * Threads. rabbitmq-c is not thread-safe and serves heartbeats only inside
 * its own calls, so each broker instance has one thread that owns the
 * connection from connect to close. publish() (the host's loop thread)
 * never touches the connection: it copies the publish into a bounded queue
 * (AMQP_QUEUE_MAX publishes, AMQP_QUEUE_MAX_BYTES payload bytes; beyond
 * that -EBUSY) and wakes the thread through an eventfd. The thread polls
 * that eventfd together with the AMQP socket and reads frames with a zero
 * timeout, so publishes go out at once and heartbeats keep being served.
 *
 * Channels. Channel 1 consumes: basic.qos (prefetch), one queue (a durable
 * `queue = NAME`, or an exclusive auto-delete server-named one), one
 * queue.bind per `in`/`both` topic line, basic.consume with acks; a
 * message is acked once host->deliver() took it. Channel 2 publishes in
 * confirm mode: QoS 1 goes out `mandatory` and completes on basic.ack (OK),
 * basic.nack (REJECTED) or basic.return before the ack (REJECTED: nothing
 * is bound for the key); QoS 0 completes OK once written. The sent,
 * unconfirmed publishes live in a ring indexed by delivery tag
 * (AMQP_INFLIGHT_MAX; when it is full the queue waits). Each publish
 * carries a message_id "mqgate-<instance>-<channel generation>-<tag>" so a
 * basic.return names the publish it belongs to. A channel error on the
 * publish channel fails the publishes in flight and reopens the channel;
 * any other error reconnects with backoff (1 s..30 s, jitter), re-declaring
 * the queue and its bindings. Every publish still pending when a
 * connection is lost completes UNAVAILABLE. connection.blocked makes
 * publish() return -ENOTCONN until connection.unblocked. At destroy the
 * thread waits up to AMQP_STOP_GRACE_MS for confirms already on their way.
 *
 * States: CONNECTING from start() until the first attempt ends, CONNECTED
 * once the exchange is checked and the queue, bindings and consumer are
 * set up, DOWN with the reason of the last failure while retrying
 * ("ACCESS_REFUSED: wrong user or password", "vhost X not found",
 * "exchange X not found in vhost V", "connection refused", ...).
 *
 * A durable `queue = NAME` keeps what arrives while mqgate is away, and
 * keeps the bindings it ever had: a topic line removed from the config
 * leaves its binding on the broker until an operator unbinds it. While
 * host->deliver() waits for room (back-pressure), heartbeats are not
 * served; a wait longer than two heartbeat intervals makes the broker
 * close the connection, and the unacked messages are delivered again
 * after the reconnect.
 *
 * Topics and routing keys. A topic maps to a routing key by swapping '/'
 * and '.' (and a '+' level becomes '*' in binding keys; '#' stays), as
 * RabbitMQ's own MQTT plugin does: "line1/press/temp" is
 * "line1.press.temp", and "v1.2/x" is "v1/2.x". The swap is its own
 * inverse, so a routing key holding '/' comes back as a topic holding '.'
 * ("a/b.c" is topic "a.b/c"): nothing is lost either way. A routing key
 * that maps to no MQTT topic name (empty, or holding '+', '#' or NUL) is
 * acked and dropped with a warning. A literal '*' in a `topic` filter
 * would be an AMQP wildcard, so check() refuses it.
 *
 * Messages in: the payload is passed as bytes (the host picks the JSON
 * encoding from the bytes, whatever content_type says; content_type and
 * message_id are logged at debug level only: the ABI has no field for
 * them). The timestamp property (seconds) becomes ts_ms. AMQP has no
 * retained messages: retain is always false. The QoS reported is that of
 * the matching `in` line, at most 1. Messages out: retain cannot be kept
 * by an AMQP broker and is ignored; QoS 1 is persistent (delivery_mode 2),
 * QoS 0 transient; the timestamp property is set.
 *
 * Owns: the instance, its copies of the settings, the publish queue and
 * the payload copies in it, the connection and the in-flight ring (both
 * touched by the thread only).
 */
#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mqgate/backend.h"

#include "backoff.h"
#include "url.h"
#include "topic.h"

#define AMQP_CH_CONSUME 1
#define AMQP_CH_PUBLISH 2
#define AMQP_QUEUE_MAX 10000              /* publishes waiting to be sent */
#define AMQP_QUEUE_MAX_BYTES (64u << 20)  /* their payload bytes */
#define AMQP_INFLIGHT_MAX 10000           /* sent, not yet confirmed */
#define AMQP_KEY_MAX 255                  /* shortstr: routing keys, names */
#define AMQP_CONNECT_TIMEOUT_MS 10000
#define AMQP_PROBE_TIMEOUT_MS 2000
#define AMQP_RPC_TIMEOUT_MS 15000
#define AMQP_POLL_MS 250                  /* also the heartbeat service tick */
#define AMQP_FRAMES_PER_ROUND 256
#define AMQP_STOP_GRACE_MS 2000           /* waiting for confirms at stop */
#define AMQP_WARN_EVERY_MS 10000

enum amqp_key_index {
	AMQP_KEY_URL,
	AMQP_KEY_USERNAME,
	AMQP_KEY_PASSWORD,
	AMQP_KEY_EXCHANGE,
	AMQP_KEY_QUEUE,
	AMQP_KEY_HEARTBEAT,
	AMQP_KEY_PREFETCH,
	AMQP_KEY_CA_FILE,
	AMQP_KEY_CERT_FILE,
	AMQP_KEY_KEY_FILE,
	AMQP_NKEYS
};

static const struct mqgate_key amqp_keys[] = {
	[AMQP_KEY_URL] = { "url", MQGATE_KEY_STRING, "amqp://127.0.0.1:5672/",
			   0, 0,
			   "amqp://[user[:password]@]host[:port][/vhost] or "
			   "amqps://... for TLS" },
	[AMQP_KEY_USERNAME] = { "username", MQGATE_KEY_STRING, NULL, 0, 0,
				"user name (default: the url's, else guest)" },
	[AMQP_KEY_PASSWORD] = { "password", MQGATE_KEY_SECRET, NULL, 0, 0,
				"password (default: the url's, else guest)" },
	[AMQP_KEY_EXCHANGE] = { "exchange", MQGATE_KEY_STRING, "amq.topic", 0,
				0, "topic exchange to bind to and publish to" },
	[AMQP_KEY_QUEUE] = { "queue", MQGATE_KEY_STRING, "", 0, 0,
			     "durable queue name; empty = an exclusive "
			     "auto-delete queue" },
	[AMQP_KEY_HEARTBEAT] = { "heartbeat", MQGATE_KEY_DURATION, "30s", 0,
				 65535000, "AMQP heartbeat interval; 0 = off" },
	[AMQP_KEY_PREFETCH] = { "prefetch", MQGATE_KEY_INT, "1000", 1, 65535,
				"unacknowledged deliveries at most (basic.qos)" },
	[AMQP_KEY_CA_FILE] = { "ca_file", MQGATE_KEY_PATH, NULL, 0, 0,
			       "CA certificates (PEM) for amqps://" },
	[AMQP_KEY_CERT_FILE] = { "cert_file", MQGATE_KEY_PATH, NULL, 0, 0,
				 "client certificate (PEM) for amqps://" },
	[AMQP_KEY_KEY_FILE] = { "key_file", MQGATE_KEY_PATH, NULL, 0, 0,
				"client private key (PEM) for amqps://" },
	{ NULL, MQGATE_KEY_STRING, NULL, 0, 0, NULL },
};

/* The settings of one broker section, checked. Owns its strings. */
struct amqp_settings {
	char *host;
	int port;
	bool tls;
	char *vhost;
	char *user, *password;
	char *exchange;
	char *queue;              /* NULL: exclusive auto-delete */
	int heartbeat_s;
	int prefetch;
	char *ca_file, *cert_file, *key_file;
	char **bind_keys;         /* one per in/both line */
	size_t nbind;
};

/* A rate limit for one kind of warning. */
struct amqp_limit {
	int64_t last_ms;
	unsigned long skipped;
};

/* One publish waiting for the thread. */
struct amqp_job {
	struct amqp_job *next;
	uint64_t token;
	int qos;
	size_t len;
	char key[AMQP_KEY_MAX + 1];
	unsigned char payload[];
};

enum amqp_flight_state {
	AMQP_FLIGHT_WAIT,        /* QoS 1, waiting for basic.ack/nack */
	AMQP_FLIGHT_DONE,        /* completed (or QoS 0) */
};

/* One sent publish, by delivery tag. */
struct amqp_flight {
	uint64_t token;
	uint8_t state;
	char *returned;          /* why, once a basic.return named it */
};

struct amqp {
	const struct mqgate_host *host;
	struct mqgate_broker *broker;
	const struct mqgate_broker_conf *conf;
	struct amqp_settings set;
	char id[17];             /* instance id in message ids */
	int efd;                 /* wakes the thread */
	pthread_t thread;
	bool started;

	pthread_mutex_t lock;
	/* under lock */
	struct amqp_job *head, *tail;
	size_t queued, queued_bytes;
	bool accepting;          /* connected and not blocked */
	bool stop;

	/* the thread's own */
	amqp_connection_state_t conn;
	bool conn_dead;          /* the socket is gone: no close handshake */
	char *queue_name;        /* the queue consumed (server-named too) */
	unsigned gen;            /* publish channel generation */
	uint64_t next_tag;       /* delivery tag of the next publish */
	uint64_t base_tag;       /* oldest tag in the ring */
	struct amqp_flight *ring;
	bool blocked;
	struct amqp_limit warn_key;     /* routing keys without a topic */
	struct amqp_limit warn_deliver; /* messages the host refused */
};

/* ---- small helpers ------------------------------------------------------ */

static int64_t amqp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *amqp_str(const struct mqgate_value *v)
{
	return v->set && v->str && v->str[0] ? v->str : NULL;
}

static bool amqp_name_char(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':';
}

/* Maps an MQTT topic or filter to a routing or binding key ('/' <-> '.',
 * '+' -> '*'). Returns the key's length, or -ENAMETOOLONG. */
static int amqp_key_from_topic(const char *topic, char *out, size_t outlen)
{
	size_t n = 0;

	for (const char *p = topic; *p; p++) {
		char c = *p;

		if (c == '/')
			c = '.';
		else if (c == '.')
			c = '/';
		else if (c == '+')
			c = '*';
		if (n + 1 >= outlen || n >= AMQP_KEY_MAX)
			return -ENAMETOOLONG;
		out[n++] = c;
	}
	out[n] = '\0';
	return (int)n;
}

/* Maps a routing key to an MQTT topic name ('.' <-> '/') in out (at least
 * AMQP_KEY_MAX + 1 bytes). -EINVAL when it maps to no topic name. */
static int amqp_topic_from_key(const void *key, size_t len, char *out)
{
	const char *k = key;

	if (len == 0 || len > AMQP_KEY_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = k[i];

		if (c == '\0' || c == '+' || c == '#')
			return -EINVAL;
		out[i] = c == '.' ? '/' : c == '/' ? '.' : c;
	}
	out[len] = '\0';
	return 0;
}

/* The QoS of a delivered message: the highest of the matching `in` lines,
 * at most 1 (AMQP delivery with acks is at least once). */
static int amqp_topic_qos(const struct amqp *a, const char *topic)
{
	int qos = 0;

	for (size_t i = 0; i < a->conf->ntopics; i++) {
		const struct mqgate_topic *t = &a->conf->topics[i];

		if ((t->dir & MQGATE_DIR_IN) && t->qos > qos &&
		    topic_matches(t->filter, topic))
			qos = t->qos;
	}
	return qos > 1 ? 1 : qos;
}

/* ---- settings ----------------------------------------------------------- */

static void amqp_settings_free(struct amqp_settings *s)
{
	free(s->host);
	free(s->vhost);
	free(s->user);
	free(s->password);
	free(s->exchange);
	free(s->queue);
	free(s->ca_file);
	free(s->cert_file);
	free(s->key_file);
	for (size_t i = 0; i < s->nbind; i++)
		free(s->bind_keys[i]);
	free(s->bind_keys);
	memset(s, 0, sizeof(*s));
}

static int amqp_dup(char **dst, const char *src)
{
	if (!src) {
		*dst = NULL;
		return 0;
	}
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

static int amqp_check_exchange(const char *x, char *err, size_t errlen)
{
	size_t n = strlen(x);

	if (n == 0) {
		snprintf(err, errlen, "exchange must not be empty (the default "
			 "exchange cannot be bound to)");
		return -EINVAL;
	}
	if (n > AMQP_KEY_MAX) {
		snprintf(err, errlen, "exchange name is longer than %d bytes",
			 AMQP_KEY_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		if (!amqp_name_char((unsigned char)x[i])) {
			snprintf(err, errlen, "bad character '%c' in exchange "
				 "'%.64s' (want letters, digits, '-', '_', '.', "
				 "':')", isprint((unsigned char)x[i]) ? x[i] : '?',
				 x);
			return -EINVAL;
		}
	return 0;
}

static int amqp_check_queue(const char *q, char *err, size_t errlen)
{
	size_t n = strlen(q);

	if (n > AMQP_KEY_MAX) {
		snprintf(err, errlen, "queue name is longer than %d bytes",
			 AMQP_KEY_MAX);
		return -EINVAL;
	}
	if (strncmp(q, "amq.", 4) == 0) {
		snprintf(err, errlen, "queue names starting with 'amq.' are "
			 "reserved by the broker");
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)q[i] < 0x20 || q[i] == 0x7f) {
			snprintf(err, errlen, "control character in queue name");
			return -EINVAL;
		}
	return 0;
}

/*
 * Parses and checks a section's values into s (which the caller frees
 * with amqp_settings_free, also on failure). Returns -2 when all is well,
 * else the index of the key to blame (-1: none) with err filled.
 */
static int amqp_settings_parse(const struct mqgate_broker_conf *conf,
			       struct amqp_settings *s, char *err,
			       size_t errlen)
{
	const struct mqgate_value *v = conf->values;
	struct url u;
	char uerr[160], key[AMQP_KEY_MAX + 2];
	const char *text = amqp_str(&v[AMQP_KEY_URL]);
	int r;

	memset(s, 0, sizeof(*s));
	if (!text) {
		snprintf(err, errlen, "url is required");
		return AMQP_KEY_URL;
	}
	r = url_parse(text, &u, uerr, sizeof(uerr));
	if (r == -ENOMEM) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (r < 0) {
		snprintf(err, errlen, "bad url: %s", uerr);
		return AMQP_KEY_URL;
	}
	if (strcmp(u.scheme, "amqp") != 0 && strcmp(u.scheme, "amqps") != 0) {
		snprintf(err, errlen, "url scheme must be amqp:// or amqps://, "
			 "not %.16s://", u.scheme);
		url_free(&u);
		return AMQP_KEY_URL;
	}
	if (!u.host || !u.host[0] || u.port < 1 || u.port > 65535) {
		snprintf(err, errlen, "url needs a host and a port in 1..65535");
		url_free(&u);
		return AMQP_KEY_URL;
	}
	s->tls = strcmp(u.scheme, "amqps") == 0;
	s->port = u.port;
	r = amqp_dup(&s->host, u.host);
	/* The path is the vhost: empty or "/" is the default vhost "/". */
	if (!r)
		r = amqp_dup(&s->vhost, u.path && u.path[0] ? u.path : "/");
	if (!r)
		r = amqp_dup(&s->user, amqp_str(&v[AMQP_KEY_USERNAME])
					       ? amqp_str(&v[AMQP_KEY_USERNAME])
				       : u.user && u.user[0] ? u.user
							     : "guest");
	if (!r)
		r = amqp_dup(&s->password,
			     v[AMQP_KEY_PASSWORD].set && v[AMQP_KEY_PASSWORD].str
				     ? v[AMQP_KEY_PASSWORD].str
			     : u.password ? u.password
					  : "guest");
	url_free(&u);
	if (r) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (strlen(s->vhost) > AMQP_KEY_MAX) {
		snprintf(err, errlen, "vhost (the url's path) is longer than %d "
			 "bytes", AMQP_KEY_MAX);
		return AMQP_KEY_URL;
	}
	if (strlen(s->user) > 65535 || strlen(s->password) > 65535) {
		snprintf(err, errlen, "user name or password too long");
		return strlen(s->user) > 65535 ? AMQP_KEY_USERNAME
					       : AMQP_KEY_PASSWORD;
	}

	text = v[AMQP_KEY_EXCHANGE].set && v[AMQP_KEY_EXCHANGE].str
		       ? v[AMQP_KEY_EXCHANGE].str : "";
	if (amqp_check_exchange(text, err, errlen) < 0)
		return AMQP_KEY_EXCHANGE;
	if (amqp_dup(&s->exchange, text) < 0)
		goto nomem;
	text = amqp_str(&v[AMQP_KEY_QUEUE]);
	if (text && amqp_check_queue(text, err, errlen) < 0)
		return AMQP_KEY_QUEUE;
	if (amqp_dup(&s->queue, text) < 0)
		goto nomem;

	if (v[AMQP_KEY_HEARTBEAT].num < 0 ||
	    v[AMQP_KEY_HEARTBEAT].num > 65535000) {
		snprintf(err, errlen, "heartbeat must be 0..65535s");
		return AMQP_KEY_HEARTBEAT;
	}
	s->heartbeat_s = (int)((v[AMQP_KEY_HEARTBEAT].num + 999) / 1000);
	if (v[AMQP_KEY_PREFETCH].num < 1 || v[AMQP_KEY_PREFETCH].num > 65535) {
		snprintf(err, errlen, "prefetch must be 1..65535");
		return AMQP_KEY_PREFETCH;
	}
	s->prefetch = (int)v[AMQP_KEY_PREFETCH].num;

	if (amqp_dup(&s->ca_file, amqp_str(&v[AMQP_KEY_CA_FILE])) < 0 ||
	    amqp_dup(&s->cert_file, amqp_str(&v[AMQP_KEY_CERT_FILE])) < 0 ||
	    amqp_dup(&s->key_file, amqp_str(&v[AMQP_KEY_KEY_FILE])) < 0)
		goto nomem;
	if (!s->cert_file != !s->key_file) {
		snprintf(err, errlen, "cert_file and key_file go together");
		return s->cert_file ? AMQP_KEY_CERT_FILE : AMQP_KEY_KEY_FILE;
	}
	if (!s->tls && (s->ca_file || s->cert_file)) {
		snprintf(err, errlen, "%s needs an amqps:// url",
			 s->ca_file ? "ca_file" : "cert_file");
		return s->ca_file ? AMQP_KEY_CA_FILE : AMQP_KEY_CERT_FILE;
	}

	s->bind_keys = calloc(conf->ntopics + 1, sizeof(char *));
	if (!s->bind_keys)
		goto nomem;
	for (size_t i = 0; i < conf->ntopics; i++) {
		const struct mqgate_topic *t = &conf->topics[i];

		if (!(t->dir & MQGATE_DIR_IN))
			continue;
		if (strchr(t->filter, '*')) {
			snprintf(err, errlen, "topic %.100s: '*' is a wildcard in "
				 "AMQP binding keys and cannot be used literally",
				 t->filter);
			return -1;
		}
		if (amqp_key_from_topic(t->filter, key, sizeof(key)) < 0) {
			snprintf(err, errlen, "topic %.100s...: longer than an "
				 "AMQP routing key (%d bytes)", t->filter,
				 AMQP_KEY_MAX);
			return -1;
		}
		if (!(s->bind_keys[s->nbind] = strdup(key)))
			goto nomem;
		s->nbind++;
	}
	return -2;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* ---- logging and state -------------------------------------------------- */

#define amqp_log(a, level, ...) (a)->host->log((a)->broker, level, __VA_ARGS__)

/* A warning of one kind at most every AMQP_WARN_EVERY_MS, counting the
 * ones skipped meanwhile. */
static void amqp_warn_limited(struct amqp *a, struct amqp_limit *l,
			      const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void amqp_warn_limited(struct amqp *a, struct amqp_limit *l,
			      const char *fmt, ...)
{
	int64_t now = amqp_now_ms();
	char text[512];
	va_list ap;

	if (l->last_ms && now - l->last_ms < AMQP_WARN_EVERY_MS) {
		l->skipped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (l->skipped)
		amqp_log(a, MQGATE_LOG_WARNING, "%s (and %lu more since the last "
			 "such warning)", text, l->skipped);
	else
		amqp_log(a, MQGATE_LOG_WARNING, "%s", text);
	l->last_ms = now;
	l->skipped = 0;
}

/* Text of an AMQP shortstr/longstr for printf ("%.*s"). */
#define AMQP_BYTES_FMT(b) (int)((b).len > 400 ? 400 : (b).len), (const char *)(b).bytes

/* Describes a failed RPC reply in why. Returns the server's reply code
 * (connection.close or channel.close), or 0 for a library error. */
static int amqp_reply_why(const amqp_rpc_reply_t *r, const char *what,
			  char *why, size_t whylen, bool *conn_closed)
{
	*conn_closed = false;
	switch (r->reply_type) {
	case AMQP_RESPONSE_NORMAL:
		snprintf(why, whylen, "%s: no error", what);
		return 0;
	case AMQP_RESPONSE_NONE:
		snprintf(why, whylen, "%s: no reply", what);
		return 0;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		snprintf(why, whylen, "%s: %s", what,
			 amqp_error_string2(r->library_error));
		return 0;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r->reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			const amqp_connection_close_t *c = r->reply.decoded;

			*conn_closed = true;
			snprintf(why, whylen, "%s: %.*s", what,
				 AMQP_BYTES_FMT(c->reply_text));
			return c->reply_code;
		}
		if (r->reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			const amqp_channel_close_t *c = r->reply.decoded;

			snprintf(why, whylen, "%s: %.*s", what,
				 AMQP_BYTES_FMT(c->reply_text));
			return c->reply_code;
		}
		snprintf(why, whylen, "%s: unexpected method 0x%08x", what,
			 (unsigned)r->reply.id);
		return 0;
	}
	snprintf(why, whylen, "%s: unknown reply", what);
	return 0;
}

static void amqp_set_state(struct amqp *a, enum mqgate_broker_state st,
			   const char *why)
{
	a->host->set_state(a->broker, st, why);
}

/* ---- the publish queue (any thread, under lock) ------------------------- */

static void amqp_wake(struct amqp *a)
{
	uint64_t one = 1;

	/* A full counter (EAGAIN) is awake anyway. */
	if (write(a->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		amqp_log(a, MQGATE_LOG_ERR, "cannot wake the AMQP thread: %s",
			 strerror(errno));
}

static void amqp_set_accepting(struct amqp *a, bool accept)
{
	pthread_mutex_lock(&a->lock);
	a->accepting = accept && !a->stop;
	pthread_mutex_unlock(&a->lock);
}

/* Takes every queued job; accepting becomes `accept`. */
static struct amqp_job *amqp_queue_take_all(struct amqp *a, bool accept)
{
	struct amqp_job *j;

	pthread_mutex_lock(&a->lock);
	j = a->head;
	a->head = a->tail = NULL;
	a->queued = a->queued_bytes = 0;
	a->accepting = accept && !a->stop;
	pthread_mutex_unlock(&a->lock);
	return j;
}

static void amqp_jobs_fail(struct amqp *a, struct amqp_job *j,
			   enum mqgate_publish_result res, const char *why)
{
	while (j) {
		struct amqp_job *next = j->next;

		a->host->publish_done(a->broker, j->token, res, why);
		free(j);
		j = next;
	}
}

/* The oldest queued job, or NULL. */
static struct amqp_job *amqp_queue_pop(struct amqp *a)
{
	struct amqp_job *j;

	pthread_mutex_lock(&a->lock);
	j = a->head;
	if (j) {
		a->head = j->next;
		if (!a->head)
			a->tail = NULL;
		a->queued--;
		a->queued_bytes -= j->len;
	}
	pthread_mutex_unlock(&a->lock);
	return j;
}

static bool amqp_stopping(struct amqp *a)
{
	bool stop;

	pthread_mutex_lock(&a->lock);
	stop = a->stop;
	pthread_mutex_unlock(&a->lock);
	return stop;
}

/* ---- the in-flight ring (thread only) ----------------------------------- */

static struct amqp_flight *amqp_flight(struct amqp *a, uint64_t tag)
{
	return &a->ring[tag % AMQP_INFLIGHT_MAX];
}

static size_t amqp_inflight(const struct amqp *a)
{
	return (size_t)(a->next_tag - a->base_tag);
}

static void amqp_flight_advance(struct amqp *a)
{
	while (a->base_tag < a->next_tag &&
	       amqp_flight(a, a->base_tag)->state == AMQP_FLIGHT_DONE)
		a->base_tag++;
}

static void amqp_flight_complete(struct amqp *a, uint64_t tag,
				 enum mqgate_publish_result res,
				 const char *why)
{
	struct amqp_flight *f = amqp_flight(a, tag);

	if (f->state != AMQP_FLIGHT_WAIT)
		return;
	if (f->returned) {
		/* basic.return came first: nothing is bound for the key. */
		a->host->publish_done(a->broker, f->token, MQGATE_PUB_REJECTED,
				      f->returned);
		free(f->returned);
		f->returned = NULL;
	} else {
		a->host->publish_done(a->broker, f->token, res, why);
	}
	f->state = AMQP_FLIGHT_DONE;
}

/* Completes the publishes of tag (and every older one when multiple). */
static void amqp_flight_confirm(struct amqp *a, uint64_t tag, bool multiple,
				enum mqgate_publish_result res,
				const char *why)
{
	if (tag < a->base_tag || tag >= a->next_tag) {
		if (tag >= a->next_tag)
			amqp_log(a, MQGATE_LOG_DEBUG,
				 "confirm for unknown delivery tag %" PRIu64, tag);
		return;
	}
	if (multiple)
		for (uint64_t t = a->base_tag; t < tag; t++)
			amqp_flight_complete(a, t, res, why);
	amqp_flight_complete(a, tag, res, why);
	amqp_flight_advance(a);
}

/* Completes everything in flight with res and starts a new ring. */
static void amqp_flight_fail_all(struct amqp *a,
				 enum mqgate_publish_result res,
				 const char *why)
{
	for (uint64_t t = a->base_tag; t < a->next_tag; t++) {
		struct amqp_flight *f = amqp_flight(a, t);

		if (f->state == AMQP_FLIGHT_WAIT)
			a->host->publish_done(a->broker, f->token, res, why);
		free(f->returned);
		f->returned = NULL;
		f->state = AMQP_FLIGHT_DONE;
	}
	a->base_tag = a->next_tag = 1;
	a->gen++;
}

/* ---- connection set-up (thread) ----------------------------------------- */

static bool amqp_rpc_ok(struct amqp *a, const char *what, char *why,
			size_t whylen, int *code)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(a->conn);
	bool conn_closed;
	int c;

	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return true;
	c = amqp_reply_why(&r, what, why, whylen, &conn_closed);
	if (code)
		*code = c;
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION || conn_closed)
		a->conn_dead = true;
	return false;
}

static void amqp_close_channel_ok(struct amqp *a, amqp_channel_t ch)
{
	amqp_channel_close_ok_t ok = { 0 };

	amqp_send_method(a->conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
}

/* Opens the publish channel: checks the exchange, confirm mode. */
static int amqp_open_publish(struct amqp *a, char *why, size_t whylen)
{
	amqp_bytes_t x = amqp_cstring_bytes(a->set.exchange);
	int code = 0;

	amqp_channel_open(a->conn, AMQP_CH_PUBLISH);
	if (!amqp_rpc_ok(a, "cannot open a channel", why, whylen, NULL))
		return -EPROTO;
	amqp_exchange_declare(a->conn, AMQP_CH_PUBLISH, x, amqp_empty_bytes, 1,
			      0, 0, 0, amqp_empty_table);
	if (!amqp_rpc_ok(a, "exchange check", why, whylen, &code)) {
		if (code == AMQP_NOT_FOUND)
			snprintf(why, whylen, "exchange %s not found in vhost %s",
				 a->set.exchange, a->set.vhost);
		return -ENOENT;
	}
	amqp_confirm_select(a->conn, AMQP_CH_PUBLISH);
	if (!amqp_rpc_ok(a, "confirm.select", why, whylen, NULL))
		return -EPROTO;
	a->base_tag = a->next_tag = 1;
	return 0;
}

/* Opens the consumer channel: prefetch, queue, bindings, consumer. */
static int amqp_open_consume(struct amqp *a, char *why, size_t whylen)
{
	amqp_bytes_t x = amqp_cstring_bytes(a->set.exchange);
	amqp_queue_declare_ok_t *q;
	char what[AMQP_KEY_MAX + 64];
	bool named = a->set.queue != NULL;

	amqp_channel_open(a->conn, AMQP_CH_CONSUME);
	if (!amqp_rpc_ok(a, "cannot open a channel", why, whylen, NULL))
		return -EPROTO;
	amqp_basic_qos(a->conn, AMQP_CH_CONSUME, 0, (uint16_t)a->set.prefetch, 0);
	if (!amqp_rpc_ok(a, "basic.qos", why, whylen, NULL))
		return -EPROTO;
	q = amqp_queue_declare(a->conn, AMQP_CH_CONSUME,
			       named ? amqp_cstring_bytes(a->set.queue)
				     : amqp_empty_bytes,
			       0, named, !named, !named, amqp_empty_table);
	snprintf(what, sizeof(what), "cannot declare queue %s",
		 named ? a->set.queue : "(server-named)");
	if (!amqp_rpc_ok(a, what, why, whylen, NULL) || !q)
		return -EPROTO;
	free(a->queue_name);
	a->queue_name = strndup(q->queue.bytes, q->queue.len);
	if (!a->queue_name) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < a->set.nbind; i++) {
		amqp_queue_bind(a->conn, AMQP_CH_CONSUME,
				amqp_cstring_bytes(a->queue_name), x,
				amqp_cstring_bytes(a->set.bind_keys[i]),
				amqp_empty_table);
		snprintf(what, sizeof(what), "cannot bind key %s",
			 a->set.bind_keys[i]);
		if (!amqp_rpc_ok(a, what, why, whylen, NULL))
			return -EPROTO;
	}
	amqp_basic_consume(a->conn, AMQP_CH_CONSUME,
			   amqp_cstring_bytes(a->queue_name), amqp_empty_bytes,
			   0, 0, 0, amqp_empty_table);
	if (!amqp_rpc_ok(a, "basic.consume", why, whylen, NULL))
		return -EPROTO;
	return 0;
}

/* Turns a failed login into a reason an operator understands. */
static void amqp_login_why(struct amqp *a, const amqp_rpc_reply_t *r,
			   char *why, size_t whylen)
{
	bool conn_closed;
	char text[300];
	int code = amqp_reply_why(r, "login", text, sizeof(text), &conn_closed);

	if (code == AMQP_ACCESS_REFUSED)
		snprintf(why, whylen, "ACCESS_REFUSED: wrong user or password "
			 "(user %s)", a->set.user);
	else if (code == AMQP_NOT_ALLOWED && strstr(text, "not found"))
		snprintf(why, whylen, "vhost %s not found", a->set.vhost);
	else if (code == AMQP_NOT_ALLOWED)
		snprintf(why, whylen, "access to vhost %s refused for user %s",
			 a->set.vhost, a->set.user);
	else if (r->reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		 r->library_error == AMQP_STATUS_SSL_ERROR && !a->set.cert_file)
		snprintf(why, whylen, "TLS error during login (does the broker "
			 "want a client certificate? see cert_file, key_file)");
	else if (r->reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		 r->library_error == AMQP_STATUS_CONNECTION_CLOSED)
		snprintf(why, whylen, "the broker closed the connection during "
			 "login (wrong user, password or vhost?)");
	else
		snprintf(why, whylen, "%s", text);
}

/* Sets up the check that the server's certificate is for host. rabbitmq-c
 * checks names itself but knows no IP address entries (subjectAltName
 * IP), so for an address OpenSSL does it during the handshake instead.
 * 0 or -ENOMEM. */
static int amqp_tls_verify_ip(amqp_socket_t *sock, const char *host)
{
	unsigned char addr[16];
	SSL_CTX *ctx;

	if (inet_pton(AF_INET, host, addr) != 1 &&
	    inet_pton(AF_INET6, host, addr) != 1) {
		amqp_ssl_socket_set_verify_hostname(sock, 1);
		return 0;
	}
	amqp_ssl_socket_set_verify_hostname(sock, 0);
	ctx = amqp_ssl_socket_get_context(sock);
	if (!ctx || X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx),
						  host) != 1)
		return -ENOMEM;
	return 0;
}

/* rabbitmq-c reports a failed connect as a bare "socket error" (its
 * errno is EINPROGRESS from the non-blocking connect). To say why, one
 * plain TCP connect is tried: 0 when it works, else its errno. */
static int amqp_probe(const char *host, int port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	char service[16];
	int err = EHOSTUNREACH;

	snprintf(service, sizeof(service), "%d", port);
	if (getaddrinfo(host, service, &hints, &res) != 0)
		return EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd pfd;
		socklen_t len = sizeof(err);
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
					       SOCK_CLOEXEC, ai->ai_protocol);

		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			err = 0;
		} else if (errno != EINPROGRESS) {
			err = errno;
		} else {
			pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
			if (poll(&pfd, 1, AMQP_PROBE_TIMEOUT_MS) <= 0)
				err = ETIMEDOUT;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
				err = errno;
		}
		close(fd);
		if (err == 0)
			break;
	}
	freeaddrinfo(res);
	return err;
}

/* Connects, logs in and sets both channels up. 0, or -errno with why. */
static int amqp_session_open(struct amqp *a, char *why, size_t whylen)
{
	struct timeval tv;
	amqp_socket_t *sock;
	amqp_rpc_reply_t r;
	int st;
	char cname[200];
	amqp_table_entry_t caps[5], props[3];
	amqp_table_t props_table;

	a->conn_dead = false;
	a->conn = amqp_new_connection();
	if (!a->conn) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	if (a->set.tls) {
		sock = amqp_ssl_socket_new(a->conn);
		if (!sock) {
			snprintf(why, whylen, "cannot create a TLS socket");
			return -ENOMEM;
		}
		amqp_ssl_socket_set_verify_peer(sock, 1);
		if (amqp_tls_verify_ip(sock, a->set.host) < 0) {
			snprintf(why, whylen, "cannot set up TLS verification of %s",
				 a->set.host);
			return -ENOMEM;
		}
		if (a->set.ca_file &&
		    (st = amqp_ssl_socket_set_cacert(sock, a->set.ca_file))) {
			snprintf(why, whylen, "cannot load ca_file %s: %s",
				 a->set.ca_file, amqp_error_string2(st));
			return -EINVAL;
		}
		if (a->set.cert_file &&
		    (st = amqp_ssl_socket_set_key(sock, a->set.cert_file,
						  a->set.key_file))) {
			snprintf(why, whylen, "cannot load cert_file %s / "
				 "key_file %s: %s", a->set.cert_file,
				 a->set.key_file, amqp_error_string2(st));
			return -EINVAL;
		}
	} else {
		sock = amqp_tcp_socket_new(a->conn);
		if (!sock) {
			snprintf(why, whylen, "cannot create a socket");
			return -ENOMEM;
		}
	}
	tv.tv_sec = AMQP_CONNECT_TIMEOUT_MS / 1000;
	tv.tv_usec = (AMQP_CONNECT_TIMEOUT_MS % 1000) * 1000;
	st = amqp_socket_open_noblock(sock, a->set.host, a->set.port, &tv);
	if (st) {
		int e = st == AMQP_STATUS_SOCKET_ERROR
				? amqp_probe(a->set.host, a->set.port) : 0;

		a->conn_dead = true;
		if (st == AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED)
			snprintf(why, whylen, "cannot resolve host %s",
				 a->set.host);
		else if (st == AMQP_STATUS_TIMEOUT)
			snprintf(why, whylen, "connect timed out");
		else if (e == ECONNREFUSED)
			snprintf(why, whylen, "connection refused");
		else if (e)
			snprintf(why, whylen, "cannot connect: %s", strerror(e));
		else
			snprintf(why, whylen, "cannot connect: %s",
				 amqp_error_string2(st));
		return -ECONNREFUSED;
	}
	tv.tv_sec = AMQP_RPC_TIMEOUT_MS / 1000;
	tv.tv_usec = 0;
	amqp_set_handshake_timeout(a->conn, &tv);
	amqp_set_rpc_timeout(a->conn, &tv);

	caps[0] = (amqp_table_entry_t){ amqp_cstring_bytes("connection.blocked"),
					{ AMQP_FIELD_KIND_BOOLEAN, { .boolean = 1 } } };
	caps[1] = (amqp_table_entry_t){ amqp_cstring_bytes("consumer_cancel_notify"),
					{ AMQP_FIELD_KIND_BOOLEAN, { .boolean = 1 } } };
	caps[2] = (amqp_table_entry_t){ amqp_cstring_bytes("publisher_confirms"),
					{ AMQP_FIELD_KIND_BOOLEAN, { .boolean = 1 } } };
	caps[3] = (amqp_table_entry_t){ amqp_cstring_bytes("basic.nack"),
					{ AMQP_FIELD_KIND_BOOLEAN, { .boolean = 1 } } };
	caps[4] = (amqp_table_entry_t){ amqp_cstring_bytes("authentication_failure_close"),
					{ AMQP_FIELD_KIND_BOOLEAN, { .boolean = 1 } } };
	snprintf(cname, sizeof(cname), "mqgate broker %s", a->conf->name);
	props[0] = (amqp_table_entry_t){ amqp_cstring_bytes("product"),
					 { AMQP_FIELD_KIND_UTF8,
					   { .bytes = amqp_cstring_bytes("mqgate") } } };
	props[1] = (amqp_table_entry_t){ amqp_cstring_bytes("connection_name"),
					 { AMQP_FIELD_KIND_UTF8,
					   { .bytes = amqp_cstring_bytes(cname) } } };
	props[2] = (amqp_table_entry_t){ amqp_cstring_bytes("capabilities"),
					 { AMQP_FIELD_KIND_TABLE,
					   { .table = { 5, caps } } } };
	props_table = (amqp_table_t){ 3, props };

	r = amqp_login_with_properties(a->conn, a->set.vhost, 0,
				       AMQP_DEFAULT_FRAME_SIZE,
				       a->set.heartbeat_s, &props_table,
				       AMQP_SASL_METHOD_PLAIN, a->set.user,
				       a->set.password);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		amqp_login_why(a, &r, why, whylen);
		a->conn_dead = true;
		return -EACCES;
	}
	st = amqp_open_publish(a, why, whylen);
	if (st == 0 && a->set.nbind)
		st = amqp_open_consume(a, why, whylen);
	return st;
}

/* Closes the connection (cleanly when it still works) and frees it. */
static void amqp_session_close(struct amqp *a)
{
	if (!a->conn)
		return;
	if (!a->conn_dead && amqp_get_socket(a->conn))
		amqp_connection_close(a->conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(a->conn);
	a->conn = NULL;
	a->blocked = false;
}

/* ---- the running connection (thread) ------------------------------------ */

/* Sends queued publishes while the in-flight ring has room. 0 or -EIO
 * (the connection failed; the job that failed is completed). */
static int amqp_send_queued(struct amqp *a, char *why, size_t whylen)
{
	struct amqp_job *j;
	amqp_basic_properties_t p;
	char mid[64];
	int st;

	while (amqp_inflight(a) < AMQP_INFLIGHT_MAX && (j = amqp_queue_pop(a))) {
		uint64_t tag = a->next_tag;
		struct amqp_flight *f = amqp_flight(a, tag);
		amqp_bytes_t body = { j->len, j->payload };

		snprintf(mid, sizeof(mid), "mqgate-%s-%u-%" PRIu64, a->id, a->gen,
			 tag);
		memset(&p, 0, sizeof(p));
		p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
			   AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_APP_ID_FLAG;
		p.delivery_mode = j->qos ? AMQP_DELIVERY_PERSISTENT
					 : AMQP_DELIVERY_NONPERSISTENT;
		p.timestamp = (uint64_t)time(NULL);
		p.message_id = amqp_cstring_bytes(mid);
		p.app_id = amqp_cstring_bytes("mqgate");
		st = amqp_basic_publish(a->conn, AMQP_CH_PUBLISH,
					amqp_cstring_bytes(a->set.exchange),
					amqp_cstring_bytes(j->key), j->qos > 0, 0,
					&p, body);
		if (st != AMQP_STATUS_OK) {
			snprintf(why, whylen, "cannot send a publish: %s",
				 amqp_error_string2(st));
			a->host->publish_done(a->broker, j->token,
					      MQGATE_PUB_UNAVAILABLE, why);
			free(j);
			a->conn_dead = true;
			return -EIO;
		}
		/* Every publish on a confirm channel takes a delivery tag. */
		a->next_tag++;
		f->token = j->token;
		f->returned = NULL;
		if (j->qos > 0) {
			f->state = AMQP_FLIGHT_WAIT;
		} else {
			f->state = AMQP_FLIGHT_DONE;
			a->host->publish_done(a->broker, j->token, MQGATE_PUB_OK,
					      NULL);
		}
		free(j);
		amqp_flight_advance(a);
	}
	return 0;
}

/* Logs what the ABI has no field for: message_id and content_type. */
static void amqp_log_properties(struct amqp *a, const char *rkey,
				const amqp_message_t *m)
{
	amqp_bytes_t none = { 0, (void *)"" };
	amqp_bytes_t id = none, ct = none;

	if (m->properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG)
		id = m->properties.message_id;
	if (m->properties._flags & AMQP_BASIC_CONTENT_TYPE_FLAG)
		ct = m->properties.content_type;
	if (id.len || ct.len)
		amqp_log(a, MQGATE_LOG_DEBUG, "message on %s: message_id '%.*s' "
			 "content_type '%.*s', %zu bytes", rkey,
			 AMQP_BYTES_FMT(id), AMQP_BYTES_FMT(ct), m->body.len);
}

/* A basic.deliver on the consumer channel: read it, deliver, ack. */
static int amqp_on_deliver(struct amqp *a, const amqp_basic_deliver_t *d,
			   char *why, size_t whylen)
{
	uint64_t tag = d->delivery_tag;
	char topic[AMQP_KEY_MAX + 1], rkey[AMQP_KEY_MAX + 1];
	size_t rlen = d->routing_key.len > AMQP_KEY_MAX ? AMQP_KEY_MAX
							: d->routing_key.len;
	amqp_message_t m;
	amqp_rpc_reply_t r;
	struct mqgate_message msg;
	bool bad_key, conn_closed;
	int res;

	memcpy(rkey, d->routing_key.bytes, rlen);
	rkey[rlen] = '\0';
	bad_key = amqp_topic_from_key(d->routing_key.bytes, d->routing_key.len,
				      topic) < 0;
	r = amqp_read_message(a->conn, AMQP_CH_CONSUME, &m, 0);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		amqp_reply_why(&r, "reading a delivery", why, whylen, &conn_closed);
		a->conn_dead = true;
		return -EIO;
	}
	if (bad_key) {
		amqp_warn_limited(a, &a->warn_key, "routing key '%.*s' maps to no MQTT topic "
				  "name; message dropped", (int)rlen, rkey);
		res = -EINVAL;
	} else {
		msg = (struct mqgate_message){
			.topic = topic,
			.payload = m.body.bytes,
			.payload_len = m.body.len,
			.qos = amqp_topic_qos(a, topic),
			.retain = false,
			.ts_ms = 0,
		};
		if ((m.properties._flags & AMQP_BASIC_TIMESTAMP_FLAG) &&
		    m.properties.timestamp > 0 &&
		    m.properties.timestamp < (uint64_t)INT64_MAX / 1000)
			msg.ts_ms = (int64_t)m.properties.timestamp * 1000;
		amqp_log_properties(a, rkey, &m);
		res = a->host->deliver(a->broker, &msg);
	}
	amqp_destroy_message(&m);
	switch (res) {
	case 0:
		break;
	case -EINVAL:
		break;
	case -EMSGSIZE:
		amqp_warn_limited(a, &a->warn_deliver, "message on %s is over the size limit; "
				  "dropped", rkey);
		break;
	case -ESHUTDOWN:
		/* Not acked: the broker keeps it for the next consumer. */
		return 0;
	default:
		amqp_warn_limited(a, &a->warn_deliver, "cannot hand a message on %s over (%s); "
				  "requeued", rkey, strerror(-res));
		if (amqp_basic_reject(a->conn, AMQP_CH_CONSUME, tag, 1)) {
			snprintf(why, whylen, "cannot send basic.reject");
			a->conn_dead = true;
			return -EIO;
		}
		return 0;
	}
	if (amqp_basic_ack(a->conn, AMQP_CH_CONSUME, tag, 0)) {
		snprintf(why, whylen, "cannot send basic.ack");
		a->conn_dead = true;
		return -EIO;
	}
	return 0;
}

/* A basic.return on the publish channel: remember why for its publish. */
static int amqp_on_return(struct amqp *a, const amqp_basic_return_t *ret,
			  char *why, size_t whylen)
{
	char key[AMQP_KEY_MAX + 1], text[200], prefix[64], *reason;
	size_t klen = ret->routing_key.len > AMQP_KEY_MAX ? AMQP_KEY_MAX
							  : ret->routing_key.len;
	int code = ret->reply_code, n, r2;
	amqp_message_t m;
	amqp_rpc_reply_t r;
	bool conn_closed, found = false;

	memcpy(key, ret->routing_key.bytes, klen);
	key[klen] = '\0';
	snprintf(text, sizeof(text), "%.*s", AMQP_BYTES_FMT(ret->reply_text));
	r = amqp_read_message(a->conn, AMQP_CH_PUBLISH, &m, 0);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		amqp_reply_why(&r, "reading a returned message", why, whylen,
			       &conn_closed);
		a->conn_dead = true;
		return -EIO;
	}
	n = snprintf(prefix, sizeof(prefix), "mqgate-%s-%u-", a->id, a->gen);
	if ((m.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) &&
	    m.properties.message_id.len > (size_t)n &&
	    m.properties.message_id.len < 64 &&
	    memcmp(m.properties.message_id.bytes, prefix, (size_t)n) == 0) {
		char num[64], *end;
		uint64_t tag;

		memcpy(num, (const char *)m.properties.message_id.bytes + n,
		       m.properties.message_id.len - (size_t)n);
		num[m.properties.message_id.len - (size_t)n] = '\0';
		errno = 0;
		tag = strtoull(num, &end, 10);
		if (!errno && !*end && tag >= a->base_tag && tag < a->next_tag &&
		    amqp_flight(a, tag)->state == AMQP_FLIGHT_WAIT) {
			struct amqp_flight *f = amqp_flight(a, tag);

			if (code == AMQP_NO_ROUTE)
				r2 = asprintf(&reason, "no queue is bound for "
					      "routing key %s", key);
			else
				r2 = asprintf(&reason, "broker returned the "
					      "message: %s", text);
			free(f->returned);
			f->returned = r2 < 0 ? NULL : reason;
			if (r2 < 0) {
				/* Without memory, complete it at once. */
				amqp_flight_complete(a, tag, MQGATE_PUB_REJECTED,
						     "no queue is bound for the "
						     "routing key");
				amqp_flight_advance(a);
			}
			found = true;
		}
	}
	amqp_destroy_message(&m);
	if (!found)
		amqp_log(a, MQGATE_LOG_DEBUG, "basic.return for routing key %s "
			 "(%s) matches no publish in flight", key, text);
	return 0;
}

/* The broker closed the publish channel: fail what is in flight, close-ok,
 * open it again. 0, or -EIO when reopening failed. */
static int amqp_on_publish_channel_close(struct amqp *a,
					 const amqp_channel_close_t *c,
					 char *why, size_t whylen)
{
	char text[300];
	int code = c->reply_code;

	snprintf(text, sizeof(text), "the broker closed the publish channel: "
		 "%.*s", AMQP_BYTES_FMT(c->reply_text));
	amqp_log(a, MQGATE_LOG_WARNING, "%s; reopening it", text);
	amqp_close_channel_ok(a, AMQP_CH_PUBLISH);
	amqp_flight_fail_all(a, code == AMQP_NOT_FOUND ||
					code == AMQP_ACCESS_REFUSED ||
					code == AMQP_PRECONDITION_FAILED
				? MQGATE_PUB_REJECTED
				: MQGATE_PUB_UNAVAILABLE,
			     text);
	if (amqp_open_publish(a, why, whylen) < 0)
		return -EIO;
	return 0;
}

/* Handles one frame. 0, or -EIO with why when the connection must go. */
static int amqp_on_frame(struct amqp *a, const amqp_frame_t *fr, char *why,
			 size_t whylen)
{
	const amqp_method_t *m = &fr->payload.method;

	if (fr->frame_type != AMQP_FRAME_METHOD) {
		amqp_log(a, MQGATE_LOG_DEBUG, "unexpected frame type %u on "
			 "channel %u", fr->frame_type, fr->channel);
		return 0;
	}
	switch (m->id) {
	case AMQP_BASIC_DELIVER_METHOD:
		if (fr->channel != AMQP_CH_CONSUME)
			break;
		return amqp_on_deliver(a, m->decoded, why, whylen);
	case AMQP_BASIC_ACK_METHOD: {
		const amqp_basic_ack_t *ack = m->decoded;

		amqp_flight_confirm(a, ack->delivery_tag, ack->multiple,
				    MQGATE_PUB_OK, NULL);
		return 0;
	}
	case AMQP_BASIC_NACK_METHOD: {
		const amqp_basic_nack_t *nack = m->decoded;

		amqp_flight_confirm(a, nack->delivery_tag, nack->multiple,
				    MQGATE_PUB_REJECTED,
				    "broker refused the message (nack)");
		return 0;
	}
	case AMQP_BASIC_RETURN_METHOD:
		return amqp_on_return(a, m->decoded, why, whylen);
	case AMQP_CHANNEL_CLOSE_METHOD: {
		const amqp_channel_close_t *c = m->decoded;

		if (fr->channel == AMQP_CH_PUBLISH)
			return amqp_on_publish_channel_close(a, c, why, whylen);
		amqp_close_channel_ok(a, fr->channel);
		snprintf(why, whylen, "the broker closed the consumer channel: "
			 "%.*s", AMQP_BYTES_FMT(c->reply_text));
		return -EIO;
	}
	case AMQP_CONNECTION_CLOSE_METHOD: {
		const amqp_connection_close_t *c = m->decoded;
		amqp_connection_close_ok_t ok = { 0 };

		snprintf(why, whylen, "the broker closed the connection: %.*s",
			 AMQP_BYTES_FMT(c->reply_text));
		amqp_send_method(a->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
		a->conn_dead = true;
		return -EIO;
	}
	case AMQP_CONNECTION_BLOCKED_METHOD: {
		const amqp_connection_blocked_t *b = m->decoded;
		struct amqp_job *jobs;
		char text[300];

		snprintf(text, sizeof(text), "broker is blocking publishers: %.*s",
			 AMQP_BYTES_FMT(b->reason));
		a->blocked = true;
		jobs = amqp_queue_take_all(a, false);
		amqp_log(a, MQGATE_LOG_WARNING, "%s", text);
		amqp_jobs_fail(a, jobs, MQGATE_PUB_UNAVAILABLE, text);
		return 0;
	}
	case AMQP_CONNECTION_UNBLOCKED_METHOD:
		a->blocked = false;
		amqp_set_accepting(a, true);
		amqp_log(a, MQGATE_LOG_NOTICE, "broker accepts publishes again");
		return 0;
	case AMQP_BASIC_CANCEL_METHOD:
		snprintf(why, whylen, "the broker cancelled the consumer (queue "
			 "%s deleted?)", a->queue_name ? a->queue_name : "?");
		return -EIO;
	default:
		break;
	}
	amqp_log(a, MQGATE_LOG_DEBUG, "ignoring method 0x%08x on channel %u",
		 (unsigned)m->id, fr->channel);
	return 0;
}

/* Serves the connection until it fails (returns -EIO with why) or the
 * instance stops (returns 0 once nothing waits for a confirm, or after
 * AMQP_STOP_GRACE_MS). */
static int amqp_session_run(struct amqp *a, char *why, size_t whylen)
{
	struct timeval zero = { 0, 0 };
	int64_t stop_at = 0;
	int fd = amqp_get_sockfd(a->conn);

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = fd, .events = POLLIN },
			{ .fd = a->efd, .events = POLLIN },
		};
		int timeout = AMQP_POLL_MS, n;
		uint64_t cnt;

		if (amqp_stopping(a)) {
			if (!stop_at) {
				struct amqp_job *jobs = amqp_queue_take_all(a, false);

				amqp_jobs_fail(a, jobs, MQGATE_PUB_UNAVAILABLE,
					       "the broker connection is closing");
				stop_at = amqp_now_ms() + AMQP_STOP_GRACE_MS;
			}
			amqp_flight_advance(a);
			if (a->base_tag == a->next_tag || amqp_now_ms() >= stop_at)
				return 0;
		} else if (!a->blocked && amqp_send_queued(a, why, whylen) < 0) {
			return -EIO;
		}
		if (amqp_frames_enqueued(a->conn) || amqp_data_in_buffer(a->conn))
			timeout = 0;
		n = poll(pfd, 2, timeout);
		if (n < 0 && errno != EINTR) {
			snprintf(why, whylen, "poll: %s", strerror(errno));
			return -EIO;
		}
		if (n > 0 && (pfd[1].revents & POLLIN) &&
		    read(a->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN) {
			snprintf(why, whylen, "eventfd: %s", strerror(errno));
			return -EIO;
		}
		/* Always at least one zero-timeout read: it also sends a due
		 * heartbeat and notices a missed one. */
		for (int i = 0; i < AMQP_FRAMES_PER_ROUND; i++) {
			amqp_frame_t fr;
			int st = amqp_simple_wait_frame_noblock(a->conn, &fr, &zero);

			if (st == AMQP_STATUS_TIMEOUT)
				break;
			if (st != AMQP_STATUS_OK) {
				snprintf(why, whylen, "%s",
					 st == AMQP_STATUS_HEARTBEAT_TIMEOUT
						 ? "heartbeat timeout: the broker "
						   "went silent"
					 : st == AMQP_STATUS_CONNECTION_CLOSED
						 ? "connection lost"
						 : amqp_error_string2(st));
				a->conn_dead = true;
				return -EIO;
			}
			if (amqp_on_frame(a, &fr, why, whylen) < 0)
				return -EIO;
			amqp_maybe_release_buffers(a->conn);
		}
	}
}

/* Waits ms milliseconds or until the instance stops. true = stop. */
static bool amqp_sleep(struct amqp *a, int64_t ms)
{
	int64_t end = amqp_now_ms() + ms;

	for (;;) {
		struct pollfd pfd = { .fd = a->efd, .events = POLLIN };
		int64_t left = end - amqp_now_ms();
		uint64_t cnt;

		if (amqp_stopping(a))
			return true;
		if (left <= 0)
			return false;
		if (poll(&pfd, 1, (int)(left > 1000 ? 1000 : left)) > 0 &&
		    read(a->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
			return amqp_stopping(a);
	}
}

static void *amqp_thread(void *arg)
{
	struct amqp *a = arg;
	struct backoff bo;
	char why[512];
	bool connected_once = false;

	backoff_init(&bo, BACKOFF_DEFAULT_MIN_MS, BACKOFF_DEFAULT_MAX_MS);
	amqp_set_state(a, MQGATE_STATE_CONNECTING, NULL);
	while (!amqp_stopping(a)) {
		int64_t delay;

		why[0] = '\0';
		if (amqp_session_open(a, why, sizeof(why)) == 0) {
			amqp_log(a, MQGATE_LOG_NOTICE,
				 "connected to %s://%s:%d vhost %s as %s "
				 "(exchange %s%s%s, %zu binding%s)",
				 a->set.tls ? "amqps" : "amqp", a->set.host,
				 a->set.port, a->set.vhost, a->set.user,
				 a->set.exchange, a->queue_name ? ", queue " : "",
				 a->queue_name ? a->queue_name : "", a->set.nbind,
				 a->set.nbind == 1 ? "" : "s");
			backoff_reset(&bo);
			connected_once = true;
			amqp_set_accepting(a, true);
			amqp_set_state(a, MQGATE_STATE_CONNECTED, NULL);
			if (amqp_session_run(a, why, sizeof(why)) == 0) {
				amqp_jobs_fail(a, amqp_queue_take_all(a, false),
					       MQGATE_PUB_UNAVAILABLE,
					       "the broker connection is closing");
				amqp_flight_fail_all(a, MQGATE_PUB_UNAVAILABLE,
						     "the broker connection closed "
						     "before the broker confirmed "
						     "the message");
				break;
			}
			amqp_log(a, MQGATE_LOG_WARNING, "connection lost: %s", why);
		} else {
			amqp_log(a, MQGATE_LOG_WARNING,
				 "cannot connect to %s://%s:%d vhost %s: %s",
				 a->set.tls ? "amqps" : "amqp", a->set.host,
				 a->set.port, a->set.vhost, why);
		}
		amqp_jobs_fail(a, amqp_queue_take_all(a, false),
			       MQGATE_PUB_UNAVAILABLE, "the broker connection was lost");
		amqp_flight_fail_all(a, MQGATE_PUB_UNAVAILABLE,
				     "the broker connection was lost before the "
				     "broker confirmed the message");
		amqp_session_close(a);
		amqp_set_state(a, MQGATE_STATE_DOWN, why);
		delay = backoff_next(&bo);
		amqp_log(a, MQGATE_LOG_INFO, "%s in %.1f s",
			 connected_once ? "reconnecting" : "retrying",
			 (double)delay / 1000.0);
		if (amqp_sleep(a, delay))
			break;
	}
	amqp_session_close(a);
	return NULL;
}

/* ---- the ABI ------------------------------------------------------------ */

static int amqp_check(const struct mqgate_broker_conf *conf, char *err,
		      size_t errlen)
{
	struct amqp_settings s;
	int r = amqp_settings_parse(conf, &s, err, errlen);

	amqp_settings_free(&s);
	return r;
}

static void amqp_free(struct amqp *a)
{
	struct amqp_job *j;

	if (!a)
		return;
	j = a->head;
	while (j) {
		struct amqp_job *next = j->next;

		free(j);
		j = next;
	}
	if (a->ring) {
		for (size_t i = 0; i < AMQP_INFLIGHT_MAX; i++)
			free(a->ring[i].returned);
		free(a->ring);
	}
	if (a->efd >= 0)
		close(a->efd);
	free(a->queue_name);
	amqp_settings_free(&a->set);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

static void *amqp_create(const struct mqgate_host *host,
			 struct mqgate_broker *broker,
			 const struct mqgate_broker_conf *conf, char *err,
			 size_t errlen)
{
	struct amqp *a = calloc(1, sizeof(*a));
	uint64_t id = 0;

	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->efd = -1;
	if (pthread_mutex_init(&a->lock, NULL) != 0) {
		free(a);
		snprintf(err, errlen, "cannot create a mutex");
		return NULL;
	}
	a->host = host;
	a->broker = broker;
	a->conf = conf;
	if (amqp_settings_parse(conf, &a->set, err, errlen) != -2)
		goto fail;
	a->ring = calloc(AMQP_INFLIGHT_MAX, sizeof(*a->ring));
	if (!a->ring) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != (ssize_t)sizeof(id))
		id = (uint64_t)amqp_now_ms() ^ ((uint64_t)getpid() << 32) ^
		     (uint64_t)(uintptr_t)a;
	snprintf(a->id, sizeof(a->id), "%016" PRIx64, id);
	a->base_tag = a->next_tag = 1;
	return a;
fail:
	amqp_free(a);
	return NULL;
}

static int amqp_start(void *instance)
{
	struct amqp *a = instance;
	int r;

	if (a->started)
		return -EALREADY;
	r = pthread_create(&a->thread, NULL, amqp_thread, a);
	if (r)
		return -r;
	a->started = true;
	return 0;
}

static int amqp_publish(void *instance, const char *topic, const void *payload,
			size_t len, int qos, bool retain, uint64_t token)
{
	struct amqp *a = instance;
	struct amqp_job *j;
	char key[AMQP_KEY_MAX + 2];

	(void)retain; /* AMQP brokers keep no retained messages */
	if (!topic || !*topic || (len && !payload) || qos < 0 || qos > 2)
		return -EINVAL;
	if (amqp_key_from_topic(topic, key, sizeof(key)) < 0) {
		a->host->publish_done(a->broker, token, MQGATE_PUB_REJECTED,
				      "topic is longer than an AMQP routing key "
				      "(255 bytes)");
		return 0;
	}
	if (len > AMQP_QUEUE_MAX_BYTES)
		return -EMSGSIZE;
	j = malloc(sizeof(*j) + len);
	if (!j)
		return -ENOMEM;
	j->next = NULL;
	j->token = token;
	j->qos = qos;
	j->len = len;
	memcpy(j->key, key, strlen(key) + 1);
	if (len)
		memcpy(j->payload, payload, len);
	pthread_mutex_lock(&a->lock);
	if (a->stop || !a->accepting) {
		pthread_mutex_unlock(&a->lock);
		free(j);
		return -ENOTCONN;
	}
	if (a->queued >= AMQP_QUEUE_MAX ||
	    a->queued_bytes + len > AMQP_QUEUE_MAX_BYTES) {
		pthread_mutex_unlock(&a->lock);
		free(j);
		return -EBUSY;
	}
	if (a->tail)
		a->tail->next = j;
	else
		a->head = j;
	a->tail = j;
	a->queued++;
	a->queued_bytes += len;
	pthread_mutex_unlock(&a->lock);
	amqp_wake(a);
	return 0;
}

static void amqp_destroy(void *instance)
{
	struct amqp *a = instance;

	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	a->accepting = false;
	pthread_mutex_unlock(&a->lock);
	if (a->started) {
		amqp_wake(a);
		pthread_join(a->thread, NULL);
	}
	amqp_jobs_fail(a, amqp_queue_take_all(a, false), MQGATE_PUB_UNAVAILABLE,
		       "the broker connection is closing");
	amqp_flight_fail_all(a, MQGATE_PUB_UNAVAILABLE,
			     "the broker connection closed before the broker "
			     "confirmed the message");
	amqp_free(a);
}

const struct mqgate_backend mqgate_backend = {
	.abi = MQGATE_BACKEND_ABI,
	.size = sizeof(struct mqgate_backend),
	.name = "amqp",
	.version = "1.0",
	.keys = amqp_keys,
	.check = amqp_check,
	.create = amqp_create,
	.start = amqp_start,
	.publish = amqp_publish,
	.destroy = amqp_destroy,
};
