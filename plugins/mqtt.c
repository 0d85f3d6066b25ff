/*
 * mqtt.c - the "mqtt" backend: one MQTT client (libmosquitto) per
 * [broker NAME] section of type mqtt.
 *
 * Protocol: MQTT 5. Over 3.1.1 it brings what the ABI's publish results
 * need: PUBACK reason codes (a publish the broker's ACL refuses is
 * REJECTED instead of a silent "ok", an oversized one TOO_LARGE) and the
 * broker's maximum packet size from CONNACK, which libmosquitto enforces
 * in mosquitto_publish (TOO_LARGE at once). CONNACK and DISCONNECT reason
 * codes also make the log lines precise. clean_session = false becomes
 * clean start off plus a session that never expires, as in 3.1.1.
 *
 * Threads. The instance owns one network thread. Each connection gets a
 * fresh libmosquitto handle, so nothing the library queued for a dead
 * connection is sent on the next one (those publishes were already
 * completed UNAVAILABLE). The thread connects, runs mosquitto_loop()
 * until the connection ends, destroys the handle, then waits a backoff.c
 * delay (full jitter, 1 s .. 30 s, reset by every accepted CONNECT) before
 * the next attempt; libmosquitto's own reconnect (no jitter) is never
 * used. The connect is non-blocking and times out after `keepalive`,
 * except with clean_session = false: the session expiry it needs is a
 * CONNECT property, which only libmosquitto's blocking connect takes, so
 * destroy() may then wait for a TCP connect (or name lookup) in progress
 * to fail. destroy() otherwise returns within about 3 s.
 *
 * On CONNACK the thread subscribes every in/both topic line, one
 * SUBSCRIBE per QoS (mosquitto_subscribe_multiple takes one QoS); the
 * host hears CONNECTED once every SUBACK is in (at once when there are no
 * subscriptions). A lost or refused connection is reported CONNECTING
 * (retrying) or DOWN (refused for a reason retrying will not cure: bad
 * credentials, not authorised, banned, TLS failure), with the reason; both
 * are retried.
 *
 * publish() runs on the host's thread and never blocks: it fails with
 * -ENOTCONN unless connected, -EBUSY beyond MQTT_MAX_PENDING publishes in
 * flight, else calls mosquitto_publish_v5 (which only queues and wakes
 * the loop; the handle is in threaded mode) and records mid -> token in a
 * bounded table. QoS 0 completes once libmosquitto has written it, QoS
 * 1/2 on PUBACK/PUBCOMP with the reason code mapped; a connection that
 * ends completes the rest UNAVAILABLE.
 *
 * Locking: `lock` guards the handle pointer, the connected/stop flags and
 * the pending table. publish() holds it across mosquitto_publish_v5 so
 * that the completion callback (network thread) cannot look the mid up
 * before it is recorded. Lock order: libmosquitto's callback (and
 * current-packet) mutexes, which its callbacks run under, then `lock`,
 * then its queue mutexes, which publish and disconnect take; host
 * callbacks are never called with `lock` held.
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "mqgate/backend.h"
#include "backoff.h"
#include "url.h"

#define MQTT_MAX_PENDING 10000     /* publishes in flight per broker */
#define MQTT_BUCKETS 1024          /* pending table; a power of two */
#define MQTT_LOOP_MS 1000          /* mosquitto_loop timeout */
#define MQTT_STOP_FLUSH_MS 2000    /* time to get DISCONNECT out on stop */
#define MQTT_CA_PATH "/etc/ssl/certs"
#define MQTT_MAX_CLIENT_ID 65535   /* an MQTT string */
#define MQTT_WHY 200              /* a reason, for logs and states */
#define MQTT_CLAUSE 128           /* one piece of a reason */

enum mqtt_key {
	MQTT_KEY_URL,
	MQTT_KEY_CLIENT_ID,
	MQTT_KEY_USERNAME,
	MQTT_KEY_PASSWORD,
	MQTT_KEY_CA_FILE,
	MQTT_KEY_CERT_FILE,
	MQTT_KEY_KEY_FILE,
	MQTT_KEY_KEEPALIVE,
	MQTT_KEY_CLEAN_SESSION,
};

static const struct mqgate_key mqtt_keys[] = {
	[MQTT_KEY_URL] = { "url", MQGATE_KEY_STRING, NULL, 0, 0,
			   "mqtt://[user[:password]@]host[:port] or mqtts://..." },
	[MQTT_KEY_CLIENT_ID] = { "client_id", MQGATE_KEY_STRING, "mqgate-%h-%p-%n", 0, 0,
				 "MQTT client id; %h = host name, %p = pid, %n = broker name, %% = %" },
	[MQTT_KEY_USERNAME] = { "username", MQGATE_KEY_STRING, NULL, 0, 0,
				"user name (or in the url)" },
	[MQTT_KEY_PASSWORD] = { "password", MQGATE_KEY_SECRET, NULL, 0, 0,
				"password; password_file = PATH reads it from a file" },
	[MQTT_KEY_CA_FILE] = { "ca_file", MQGATE_KEY_PATH, NULL, 0, 0,
			       "CA certificates (PEM) for mqtts://; default: "
			       "the system's, " MQTT_CA_PATH },
	[MQTT_KEY_CERT_FILE] = { "cert_file", MQGATE_KEY_PATH, NULL, 0, 0,
				 "client certificate (PEM), with key_file" },
	[MQTT_KEY_KEY_FILE] = { "key_file", MQGATE_KEY_PATH, NULL, 0, 0,
				"client private key (PEM, unencrypted), with cert_file" },
	[MQTT_KEY_KEEPALIVE] = { "keepalive", MQGATE_KEY_DURATION, "30s", 5000,
				 3600000, "MQTT keepalive (5s..1h); also the "
				 "connect timeout" },
	[MQTT_KEY_CLEAN_SESSION] = { "clean_session", MQGATE_KEY_BOOL, "true", 0, 0,
				     "start each connection with a fresh session" },
	{ NULL, MQGATE_KEY_STRING, NULL, 0, 0, NULL },
};

struct mqtt_pending {
	struct mqtt_pending *next;
	uint64_t token;
	int mid;
};

/* The in/both filters of one QoS: one SUBSCRIBE. */
struct mqtt_subs {
	char **filters;
	int n;
	int mid;        /* of the SUBSCRIBE in flight */
	bool waiting;   /* SUBACK not in yet */
};

struct mqtt {
	const struct mqgate_host *host;
	struct mqgate_broker *broker;

	/* settings, fixed by create() */
	struct url url;
	bool tls;
	char *client_id;
	const char *username, *password;   /* borrowed: conf or url */
	const char *ca_file, *cert_file, *key_file;
	int keepalive_s;
	bool clean;
	mosquitto_property *connect_props; /* session expiry, when !clean */
	struct mqtt_subs subs[3];          /* by QoS */
	int nsubs;                         /* filters over all QoS */

	pthread_t thread;
	bool started;

	pthread_mutex_t lock;
	pthread_cond_t wake;               /* stop, for the backoff wait */
	/* under lock */
	struct mosquitto *mosq;            /* this connection's; NULL between */
	bool looping;                      /* mosq may be told to disconnect */
	bool connected;                    /* CONNACK and every SUBACK in */
	bool stop;
	struct mqtt_pending *pending[MQTT_BUCKETS];
	size_t npending;

	/* network thread only */
	struct backoff backoff;
	int subs_waiting;                  /* SUBACKs still to come */
	int subs_refused;                  /* filters refused in them */
	bool was_connected;                /* this connection reached CONNACK */
	bool refused;                      /* why is final: report DOWN */
	char why[MQTT_WHY];                /* why this connection ended */
	char lib_err[MQTT_WHY];            /* libmosquitto's last error line */
	bool reported_any;
	enum mqgate_broker_state reported;
	char reported_why[MQTT_WHY];
};

static pthread_once_t mqtt_lib_once = PTHREAD_ONCE_INIT;

static void mqtt_lib_init(void)
{
	mosquitto_lib_init();
}

static const char *mqtt_str(const struct mqgate_value *v)
{
	return v->set && v->str && v->str[0] ? v->str : NULL;
}

/* mosquitto's reason text with a lower-case first letter, for a clause. */
static void mqtt_clause(char *buf, size_t len, const char *text)
{
	snprintf(buf, len, "%s", text ? text : "unknown error");
	if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] = (char)(buf[0] - 'A' + 'a');
	len = strlen(buf);
	if (len && buf[len - 1] == '.')
		buf[len - 1] = '\0';
}

/* ---- configuration -------------------------------------------------------- */

/* Expands %h, %p, %n and %% of a client_id template into a malloc'd
 * string. The default holds all three, so two brokers of one mqgate, or
 * two mqgate instances, never take over each other's session. */
static int mqtt_expand_client_id(const char *tmpl, const char *name,
				 char **out, char *err, size_t errlen)
{
	char host[HOST_NAME_MAX + 1] = "", pid[24];
	size_t cap = strlen(tmpl) + 1, n = 0;
	char *s;

	if (!name)
		name = "";

	for (const char *p = tmpl; *p; p++) {
		if (*p != '%')
			continue;
		p++;
		if (*p == 'h') {
			if (!host[0]) {
				if (gethostname(host, sizeof(host)) < 0)
					snprintf(host, sizeof(host), "localhost");
				host[sizeof(host) - 1] = '\0';
			}
			cap += strlen(host);
		} else if (*p == 'p') {
			cap += 20;
		} else if (*p == 'n') {
			cap += strlen(name);
		} else if (*p != '%') {
			if (*p)
				snprintf(err, errlen, "client_id: unknown %%%c "
					 "(use %%h, %%p, %%n or %%%%)", *p);
			else
				snprintf(err, errlen, "client_id: lone %% at the "
					 "end (write %%%% for a %%)");
			return -EINVAL;
		}
	}
	s = malloc(cap);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	for (const char *p = tmpl; *p; p++) {
		const char *add = NULL;

		if (*p != '%') {
			s[n++] = *p;
			continue;
		}
		p++;
		add = *p == 'h' ? host : *p == 'p' ? pid : *p == 'n' ? name : "%";
		memcpy(s + n, add, strlen(add));
		n += strlen(add);
	}
	s[n] = '\0';
	if (n == 0 || n > MQTT_MAX_CLIENT_ID) {
		snprintf(err, errlen, "client_id expands to %zu bytes (want "
			 "1..%d)", n, MQTT_MAX_CLIENT_ID);
		free(s);
		return -EINVAL;
	}
	if (mosquitto_validate_utf8(s, (int)n) != MOSQ_ERR_SUCCESS) {
		snprintf(err, errlen, "client_id is not valid UTF-8");
		free(s);
		return -EINVAL;
	}
	*out = s;
	return 0;
}

/* Does a client_id template hold %p (a different id every run)? */
static bool mqtt_template_has_pid(const char *tmpl)
{
	for (const char *p = tmpl; *p; p++) {
		if (*p != '%')
			continue;
		if (*++p == 'p')
			return true;
		if (!*p)
			break;
	}
	return false;
}

static int mqtt_check_file(const struct mqgate_broker_conf *conf, int key,
			   char *err, size_t errlen)
{
	const char *path = mqtt_str(&conf->values[key]);

	if (path && access(path, R_OK) < 0) {
		snprintf(err, errlen, "cannot read %s %s: %s",
			 mqtt_keys[key].name, path, strerror(errno));
		return -1;
	}
	return 0;
}

/* The checks of check(), leaving the parsed URL in *u (url_free it) on
 * success. Returns -2 or the index of the key to blame (-1: none). */
static int mqtt_check_conf(const struct mqgate_broker_conf *conf,
			   struct url *u, char *err, size_t errlen)
{
	const struct mqgate_value *v = conf->values;
	const char *url = mqtt_str(&v[MQTT_KEY_URL]), *tmpl;
	char uerr[160], *id = NULL;
	bool tls;
	int r = -2;

	memset(u, 0, sizeof(*u));
	if (!url) {
		snprintf(err, errlen, "url is required (mqtt://HOST[:PORT] or "
			 "mqtts://HOST[:PORT])");
		return MQTT_KEY_URL;
	}
	if (url_parse(url, u, uerr, sizeof(uerr)) < 0) {
		snprintf(err, errlen, "bad url: %s", uerr);
		return MQTT_KEY_URL;
	}
	if (strcmp(u->scheme, "mqtt") != 0 && strcmp(u->scheme, "mqtts") != 0) {
		snprintf(err, errlen, "url scheme must be mqtt:// or mqtts://, "
			 "not %.32s://", u->scheme);
		r = MQTT_KEY_URL;
		goto fail;
	}
	tls = strcmp(u->scheme, "mqtts") == 0;
	if (u->path && u->path[0]) {
		snprintf(err, errlen, "an mqtt url takes no path");
		r = MQTT_KEY_URL;
		goto fail;
	}
	if (u->user && mqtt_str(&v[MQTT_KEY_USERNAME])) {
		snprintf(err, errlen, "user name given both in the url and in "
			 "username");
		r = MQTT_KEY_USERNAME;
		goto fail;
	}
	if (u->password && mqtt_str(&v[MQTT_KEY_PASSWORD])) {
		snprintf(err, errlen, "password given both in the url and in "
			 "password");
		r = MQTT_KEY_PASSWORD;
		goto fail;
	}
	if ((u->password || mqtt_str(&v[MQTT_KEY_PASSWORD])) &&
	    !((u->user && u->user[0]) || mqtt_str(&v[MQTT_KEY_USERNAME]))) {
		snprintf(err, errlen, "a password needs a user name");
		r = u->password ? MQTT_KEY_URL : MQTT_KEY_PASSWORD;
		goto fail;
	}
	tmpl = mqtt_str(&v[MQTT_KEY_CLIENT_ID]) ? mqtt_str(&v[MQTT_KEY_CLIENT_ID])
						 : mqtt_keys[MQTT_KEY_CLIENT_ID].def;
	if (mqtt_expand_client_id(tmpl, conf->name, &id, err, errlen) < 0) {
		r = MQTT_KEY_CLIENT_ID;
		goto fail;
	}
	free(id);
	/* A session kept for an id that is never used again only piles up
	 * queued messages on the broker. */
	if (v[MQTT_KEY_CLEAN_SESSION].set && !v[MQTT_KEY_CLEAN_SESSION].num &&
	    mqtt_template_has_pid(tmpl)) {
		snprintf(err, errlen, "clean_session = no needs a client_id that "
			 "stays the same across restarts (%.64s has %%p)", tmpl);
		/* the default id (not on any line) or the one given */
		r = strcmp(tmpl, mqtt_keys[MQTT_KEY_CLIENT_ID].def) == 0
			    ? MQTT_KEY_CLEAN_SESSION : MQTT_KEY_CLIENT_ID;
		goto fail;
	}
	for (int k = MQTT_KEY_CA_FILE; k <= MQTT_KEY_KEY_FILE; k++)
		if (!tls && mqtt_str(&v[k])) {
			snprintf(err, errlen, "%s is for TLS: use an mqtts:// url",
				 mqtt_keys[k].name);
			r = k;
			goto fail;
		}
	if (!mqtt_str(&v[MQTT_KEY_CERT_FILE]) != !mqtt_str(&v[MQTT_KEY_KEY_FILE])) {
		snprintf(err, errlen, "cert_file and key_file go together");
		r = mqtt_str(&v[MQTT_KEY_CERT_FILE]) ? MQTT_KEY_CERT_FILE
						      : MQTT_KEY_KEY_FILE;
		goto fail;
	}
	for (int k = MQTT_KEY_CA_FILE; k <= MQTT_KEY_KEY_FILE; k++)
		if (mqtt_check_file(conf, k, err, errlen) < 0) {
			r = k;
			goto fail;
		}
	if (tls && !mqtt_str(&v[MQTT_KEY_CA_FILE])) {
		struct stat st;

		if (stat(MQTT_CA_PATH, &st) < 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "no ca_file given and the system CA "
				 "directory %s is missing", MQTT_CA_PATH);
			r = MQTT_KEY_CA_FILE;
			goto fail;
		}
	}
	for (size_t i = 0; i < conf->ntopics; i++) {
		const struct mqgate_topic *t = &conf->topics[i];

		if (!(t->dir & MQGATE_DIR_IN))
			continue;
		if (t->qos < 0 || t->qos > 2 ||
		    mosquitto_sub_topic_check(t->filter) != MOSQ_ERR_SUCCESS) {
			snprintf(err, errlen, "topic '%.100s' (qos %d) cannot be "
				 "subscribed over MQTT", t->filter, t->qos);
			r = -1;
			goto fail;
		}
	}
	return -2;
fail:
	url_free(u);
	return r;
}

static int mqtt_check(const struct mqgate_broker_conf *conf, char *err,
		      size_t errlen)
{
	struct url u;
	int r = mqtt_check_conf(conf, &u, err, errlen);

	if (r == -2)
		url_free(&u);
	return r;
}

/* ---- the pending table (under lock) --------------------------------------- */

/* Adds p; returns an entry with the same mid it replaced (the mid space
 * wrapped while that one was still unacknowledged), or NULL. */
static struct mqtt_pending *mqtt_pending_add(struct mqtt *m,
					     struct mqtt_pending *p)
{
	struct mqtt_pending **pp = &m->pending[p->mid & (MQTT_BUCKETS - 1)];
	struct mqtt_pending *old = NULL;

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->mid == p->mid) {
			old = *pp;
			*pp = old->next;
			m->npending--;
			break;
		}
	pp = &m->pending[p->mid & (MQTT_BUCKETS - 1)];
	p->next = *pp;
	*pp = p;
	m->npending++;
	return old;
}

static struct mqtt_pending *mqtt_pending_take(struct mqtt *m, int mid)
{
	struct mqtt_pending **pp = &m->pending[mid & (MQTT_BUCKETS - 1)], *p;

	for (; (p = *pp); pp = &p->next)
		if (p->mid == mid) {
			*pp = p->next;
			m->npending--;
			return p;
		}
	return NULL;
}

/* Unlinks every pending publish into one list. */
static struct mqtt_pending *mqtt_pending_take_all(struct mqtt *m)
{
	struct mqtt_pending *all = NULL, *p, *next;

	for (size_t i = 0; i < MQTT_BUCKETS; i++) {
		for (p = m->pending[i]; p; p = next) {
			next = p->next;
			p->next = all;
			all = p;
		}
		m->pending[i] = NULL;
	}
	m->npending = 0;
	return all;
}

/* Completes and frees a list of pending publishes. Without lock. */
static void mqtt_complete_all(struct mqtt *m, struct mqtt_pending *list,
			      enum mqgate_publish_result result,
			      const char *why)
{
	struct mqtt_pending *next;

	for (; list; list = next) {
		next = list->next;
		m->host->publish_done(m->broker, list->token, result, why);
		free(list);
	}
}

/* ---- state reports and reasons (network thread) --------------------------- */

static void mqtt_report(struct mqtt *m, enum mqgate_broker_state state,
			const char *why)
{
	const char *w = why ? why : "";

	if (m->reported_any && m->reported == state &&
	    strcmp(m->reported_why, w) == 0)
		return;
	m->reported_any = true;
	m->reported = state;
	snprintf(m->reported_why, sizeof(m->reported_why), "%s", w);
	m->host->set_state(m->broker, state, why);
}

/* Records why this connection ended, unless a reason is already known. */
static void mqtt_set_why(struct mqtt *m, bool final, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void mqtt_set_why(struct mqtt *m, bool final, const char *fmt, ...)
{
	va_list ap;

	if (m->why[0])
		return;
	va_start(ap, fmt);
	vsnprintf(m->why, sizeof(m->why), fmt, ap);
	va_end(ap);
	m->refused = final;
}

/* Records a libmosquitto error code (err = errno right after it). */
static void mqtt_set_why_rc(struct mqtt *m, int rc, int err)
{
	char clause[MQTT_CLAUSE];

	switch (rc) {
	case MOSQ_ERR_ERRNO:
		mqtt_clause(clause, sizeof(clause), strerror(err));
		mqtt_set_why(m, false, "%s", clause);
		break;
	case MOSQ_ERR_EAI:
		mqtt_set_why(m, false, "cannot resolve %s: %s", m->url.host,
			     gai_strerror(err));
		break;
	case MOSQ_ERR_TLS:
	case MOSQ_ERR_TLS_HANDSHAKE:
	case MOSQ_ERR_OCSP:
		mqtt_set_why(m, true, "TLS failure%s%s",
			     m->lib_err[0] ? ": " : "", m->lib_err);
		break;
	case MOSQ_ERR_KEEPALIVE:
		mqtt_set_why(m, false, "no answer from the broker within the "
			     "keepalive (%d s)", m->keepalive_s);
		break;
	default:
		mqtt_clause(clause, sizeof(clause), mosquitto_strerror(rc));
		mqtt_set_why(m, rc == MOSQ_ERR_AUTH, "%s", clause);
		break;
	}
}

/* CONNACK refusals that retrying will not cure. */
static bool mqtt_refusal_is_final(int rc)
{
	switch (rc) {
	case MQTT_RC_MALFORMED_PACKET:
	case MQTT_RC_PROTOCOL_ERROR:
	case MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION:
	case MQTT_RC_CLIENTID_NOT_VALID:
	case MQTT_RC_BAD_USERNAME_OR_PASSWORD:
	case MQTT_RC_NOT_AUTHORIZED:
	case MQTT_RC_BANNED:
	case MQTT_RC_BAD_AUTHENTICATION_METHOD:
		return true;
	}
	return false;
}

/* ---- libmosquitto callbacks (network thread) ------------------------------ */

static void mqtt_on_log(struct mosquitto *mosq, void *obj, int level,
			const char *text)
{
	struct mqtt *m = obj;

	(void)mosq;
	if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
		snprintf(m->lib_err, sizeof(m->lib_err), "%s", text);
}

static void mqtt_subscribe_all(struct mqtt *m, struct mosquitto *mosq)
{
	int rc;

	m->subs_waiting = 0;
	m->subs_refused = 0;
	for (int q = 0; q < 3; q++) {
		struct mqtt_subs *s = &m->subs[q];

		s->waiting = false;
		if (!s->n)
			continue;
		rc = mosquitto_subscribe_multiple(mosq, &s->mid, s->n, s->filters,
						  q, 0, NULL);
		if (rc != MOSQ_ERR_SUCCESS) {
			char clause[MQTT_CLAUSE];

			mqtt_clause(clause, sizeof(clause), mosquitto_strerror(rc));
			mqtt_set_why(m, false, "cannot subscribe: %s", clause);
			mosquitto_disconnect(mosq);
			return;
		}
		s->waiting = true;
		m->subs_waiting++;
	}
}

static void mqtt_up(struct mqtt *m, int refused_subs)
{
	char why[MQTT_WHY];

	pthread_mutex_lock(&m->lock);
	if (!m->stop)
		m->connected = true;
	pthread_mutex_unlock(&m->lock);
	if (refused_subs)
		snprintf(why, sizeof(why), "%d topic filter%s refused by the "
			 "broker", refused_subs, refused_subs == 1 ? "" : "s");
	m->host->log(m->broker, MQGATE_LOG_NOTICE, "connected to %s:%d%s%s",
		     m->url.host, m->url.port, refused_subs ? "; " : "",
		     refused_subs ? why : "");
	mqtt_report(m, MQGATE_STATE_CONNECTED, refused_subs ? why : NULL);
}

static void mqtt_on_connect(struct mosquitto *mosq, void *obj, int rc,
			    int flags, const mosquitto_property *props)
{
	struct mqtt *m = obj;
	char clause[MQTT_CLAUSE];

	(void)flags;
	(void)props;
	if (rc != MQTT_RC_SUCCESS) {
		mqtt_clause(clause, sizeof(clause), mosquitto_reason_string(rc));
		mqtt_set_why(m, mqtt_refusal_is_final(rc),
			     "broker refused the connection: %s", clause);
		return;
	}
	/* Connected: libmosquitto's log lines are no longer needed, and the
	 * host thread may call into the handle from here on. */
	mosquitto_log_callback_set(mosq, NULL);
	m->was_connected = true;
	backoff_reset(&m->backoff);
	mqtt_subscribe_all(m, mosq);
	if (m->subs_waiting == 0 && !m->why[0])
		mqtt_up(m, 0);
}

static void mqtt_on_subscribe(struct mosquitto *mosq, void *obj, int mid,
			      int count, const int *granted,
			      const mosquitto_property *props)
{
	struct mqtt *m = obj;
	struct mqtt_subs *s = NULL;
	int qos = 0;

	(void)mosq;
	(void)props;
	for (int q = 0; q < 3; q++)
		if (m->subs[q].waiting && m->subs[q].mid == mid) {
			s = &m->subs[q];
			qos = q;
		}
	if (!s)
		return;
	for (int i = 0; i < count && i < s->n; i++) {
		if (granted[i] >= 0x80) {
			char clause[MQTT_CLAUSE];

			mqtt_clause(clause, sizeof(clause),
				    mosquitto_reason_string(granted[i]));
			m->host->log(m->broker, MQGATE_LOG_ERR,
				     "broker refused the subscription to '%s': %s",
				     s->filters[i], clause);
			m->subs_refused++;
		} else if (granted[i] < qos) {
			m->host->log(m->broker, MQGATE_LOG_NOTICE,
				     "broker granted qos %d instead of %d for '%s'",
				     granted[i], qos, s->filters[i]);
		}
	}
	s->waiting = false;
	if (--m->subs_waiting == 0 && !m->why[0])
		mqtt_up(m, m->subs_refused);
}

static void mqtt_on_message(struct mosquitto *mosq, void *obj,
			    const struct mosquitto_message *msg,
			    const mosquitto_property *props)
{
	struct mqtt *m = obj;
	struct mqgate_message mm = {
		.topic = msg->topic,
		.payload = msg->payload,
		.payload_len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0,
		.qos = msg->qos,
		.retain = msg->retain,
		.ts_ms = 0,
	};
	int r;

	(void)mosq;
	(void)props;
	r = m->host->deliver(m->broker, &mm);
	if (r == -EMSGSIZE)
		m->host->log(m->broker, MQGATE_LOG_WARNING,
			     "dropped a message on %s: %zu bytes is over the "
			     "size limit", msg->topic, mm.payload_len);
	else if (r < 0 && r != -ESHUTDOWN)
		m->host->log(m->broker, MQGATE_LOG_WARNING,
			     "dropped a message on %s: %s", msg->topic,
			     strerror(-r));
}

static enum mqgate_publish_result mqtt_ack_result(int reason)
{
	if (reason < 0x80)
		return MQGATE_PUB_OK;
	switch (reason) {
	case MQTT_RC_PACKET_TOO_LARGE:
		return MQGATE_PUB_TOO_LARGE;
	case MQTT_RC_QUOTA_EXCEEDED:
	case MQTT_RC_SERVER_BUSY:
		return MQGATE_PUB_UNAVAILABLE;
	default:
		return MQGATE_PUB_REJECTED;
	}
}

static void mqtt_on_publish(struct mosquitto *mosq, void *obj, int mid,
			    int reason, const mosquitto_property *props)
{
	struct mqtt *m = obj;
	struct mqtt_pending *p;
	char clause[MQTT_CLAUSE], why[MQTT_WHY];
	enum mqgate_publish_result res = mqtt_ack_result(reason);

	(void)mosq;
	(void)props;
	pthread_mutex_lock(&m->lock);
	p = mqtt_pending_take(m, mid);
	pthread_mutex_unlock(&m->lock);
	if (!p)
		return;
	if (res != MQGATE_PUB_OK) {
		mqtt_clause(clause, sizeof(clause), mosquitto_reason_string(reason));
		snprintf(why, sizeof(why), "broker: %s", clause);
	}
	m->host->publish_done(m->broker, p->token, res,
			      res == MQGATE_PUB_OK ? NULL : why);
	free(p);
}

static void mqtt_on_disconnect(struct mosquitto *mosq, void *obj, int rc,
			       const mosquitto_property *props)
{
	struct mqtt *m = obj;
	int err = errno;
	bool stop;
	char clause[MQTT_CLAUSE];

	(void)mosq;
	(void)props;
	pthread_mutex_lock(&m->lock);
	m->connected = false;
	stop = m->stop;
	pthread_mutex_unlock(&m->lock);
	if (stop)
		return;
	if (rc == 0) {
		mqtt_set_why(m, false, "broker closed the connection");
	} else if (rc >= 0x80) {
		/* a DISCONNECT from the broker with a reason code */
		mqtt_clause(clause, sizeof(clause), mosquitto_reason_string(rc));
		mqtt_set_why(m, false, "broker closed the connection: %s", clause);
	} else {
		mqtt_set_why_rc(m, rc, err);
	}
}

/* ---- the network thread --------------------------------------------------- */

static int mqtt_tls_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	/* Never prompt on a terminal for an encrypted key: fail instead. */
	(void)rwflag;
	(void)arg;
	if (size > 0)
		buf[0] = '\0';
	return 0;
}

static struct mosquitto *mqtt_client_new(struct mqtt *m)
{
	struct mosquitto *mosq = mosquitto_new(m->client_id, m->clean, m);
	int rc;

	if (!mosq) {
		mqtt_set_why(m, false, "cannot create a client: %s",
			     strerror(errno));
		return NULL;
	}
	rc = mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION,
				  MQTT_PROTOCOL_V5);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_threaded_set(mosq, true);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
	if (rc == MOSQ_ERR_SUCCESS && m->username)
		rc = mosquitto_username_pw_set(mosq, m->username, m->password);
	if (rc == MOSQ_ERR_SUCCESS && m->tls)
		rc = mosquitto_tls_set(mosq, m->ca_file,
				       m->ca_file ? NULL : MQTT_CA_PATH,
				       m->cert_file, m->key_file,
				       mqtt_tls_no_passphrase);
	if (rc != MOSQ_ERR_SUCCESS) {
		mqtt_set_why_rc(m, rc, errno);
		mosquitto_destroy(mosq);
		return NULL;
	}
	mosquitto_log_callback_set(mosq, mqtt_on_log);
	mosquitto_connect_v5_callback_set(mosq, mqtt_on_connect);
	mosquitto_subscribe_v5_callback_set(mosq, mqtt_on_subscribe);
	mosquitto_message_v5_callback_set(mosq, mqtt_on_message);
	mosquitto_publish_v5_callback_set(mosq, mqtt_on_publish);
	mosquitto_disconnect_v5_callback_set(mosq, mqtt_on_disconnect);
	return mosq;
}

static int64_t mqtt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One connection, from handle creation to its destruction. */
static void mqtt_session(struct mqtt *m)
{
	struct mosquitto *mosq;
	struct mqtt_pending *left;
	int64_t deadline = 0;
	bool stop;
	int rc;

	m->why[0] = '\0';
	m->lib_err[0] = '\0';
	m->refused = false;
	m->was_connected = false;
	mosq = mqtt_client_new(m);
	if (!mosq)
		return;
	pthread_mutex_lock(&m->lock);
	m->mosq = mosq;
	pthread_mutex_unlock(&m->lock);
	if (m->connect_props)
		rc = mosquitto_connect_bind_v5(mosq, m->url.host, m->url.port,
					       m->keepalive_s, NULL,
					       m->connect_props);
	else
		rc = mosquitto_connect_bind_async(mosq, m->url.host, m->url.port,
						  m->keepalive_s, NULL);
	if (rc != MOSQ_ERR_SUCCESS) {
		mqtt_set_why_rc(m, rc, errno);
		goto out;
	}
	pthread_mutex_lock(&m->lock);
	m->looping = true;
	stop = m->stop;
	pthread_mutex_unlock(&m->lock);
	if (stop)
		mosquitto_disconnect(mosq);
	for (;;) {
		rc = mosquitto_loop(mosq, MQTT_LOOP_MS, 1);
		if (rc != MOSQ_ERR_SUCCESS) {
			mqtt_set_why_rc(m, rc, errno);
			break;
		}
		pthread_mutex_lock(&m->lock);
		stop = m->stop;
		pthread_mutex_unlock(&m->lock);
		if (stop && !deadline)
			deadline = mqtt_now_ms() + MQTT_STOP_FLUSH_MS;
		else if (stop && mqtt_now_ms() > deadline)
			break;
	}
out:
	pthread_mutex_lock(&m->lock);
	m->mosq = NULL;
	m->looping = false;
	m->connected = false;
	stop = m->stop;
	left = mqtt_pending_take_all(m);
	pthread_mutex_unlock(&m->lock);
	mosquitto_destroy(mosq);
	mqtt_complete_all(m, left, MQGATE_PUB_UNAVAILABLE,
			  stop ? "broker backend stopped"
			       : "broker connection lost");
}

static void *mqtt_run(void *arg)
{
	struct mqtt *m = arg;
	struct timespec ts;
	int64_t delay, until;
	bool stop;

	for (;;) {
		mqtt_session(m);
		pthread_mutex_lock(&m->lock);
		stop = m->stop;
		pthread_mutex_unlock(&m->lock);
		if (stop)
			break;
		if (!m->why[0])
			snprintf(m->why, sizeof(m->why), "connection closed");
		delay = backoff_next(&m->backoff);
		mqtt_report(m, m->refused ? MQGATE_STATE_DOWN
					  : MQGATE_STATE_CONNECTING, m->why);
		m->host->log(m->broker, MQGATE_LOG_WARNING,
			     "%s %s:%d: %s; retrying in %.1f s",
			     m->was_connected ? "lost the connection to"
					      : "cannot connect to",
			     m->url.host, m->url.port, m->why,
			     (double)delay / 1000.0);
		until = mqtt_now_ms() + delay;
		ts.tv_sec = (time_t)(until / 1000);
		ts.tv_nsec = (long)(until % 1000) * 1000000L;
		pthread_mutex_lock(&m->lock);
		while (!m->stop &&
		       pthread_cond_timedwait(&m->wake, &m->lock, &ts) != ETIMEDOUT)
			;
		stop = m->stop;
		pthread_mutex_unlock(&m->lock);
		if (stop)
			break;
	}
	return NULL;
}

/* ---- the ABI -------------------------------------------------------------- */

static void mqtt_free(struct mqtt *m)
{
	if (!m)
		return;
	for (int q = 0; q < 3; q++) {
		for (int i = 0; i < m->subs[q].n; i++)
			free(m->subs[q].filters[i]);
		free(m->subs[q].filters);
	}
	mosquitto_property_free_all(&m->connect_props);
	free(m->client_id);
	url_free(&m->url);
	pthread_cond_destroy(&m->wake);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static int mqtt_add_filter(struct mqtt *m, const struct mqgate_topic *t)
{
	struct mqtt_subs *s = &m->subs[t->qos];
	char **nf;

	for (int q = 0; q < 3; q++)
		for (int i = 0; i < m->subs[q].n; i++)
			if (strcmp(m->subs[q].filters[i], t->filter) == 0) {
				/* the same filter twice: keep the higher QoS */
				if (q >= t->qos)
					return 0;
				free(m->subs[q].filters[i]);
				m->subs[q].filters[i] =
					m->subs[q].filters[--m->subs[q].n];
				m->nsubs--;
				break;
			}
	nf = realloc(s->filters, (size_t)(s->n + 1) * sizeof(*nf));
	if (!nf)
		return -ENOMEM;
	s->filters = nf;
	s->filters[s->n] = strdup(t->filter);
	if (!s->filters[s->n])
		return -ENOMEM;
	s->n++;
	m->nsubs++;
	return 0;
}

static void *mqtt_create(const struct mqgate_host *host,
			 struct mqgate_broker *broker,
			 const struct mqgate_broker_conf *conf, char *err,
			 size_t errlen)
{
	const struct mqgate_value *v = conf->values;
	struct mqtt *m;
	pthread_condattr_t ca;

	pthread_once(&mqtt_lib_once, mqtt_lib_init);
	m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->wake, &ca);
	pthread_condattr_destroy(&ca);
	m->host = host;
	m->broker = broker;
	if (mqtt_check_conf(conf, &m->url, err, errlen) != -2)
		goto fail;
	m->tls = strcmp(m->url.scheme, "mqtts") == 0;
	if (mqtt_expand_client_id(mqtt_str(&v[MQTT_KEY_CLIENT_ID]) ?
				  mqtt_str(&v[MQTT_KEY_CLIENT_ID]) :
				  mqtt_keys[MQTT_KEY_CLIENT_ID].def,
				  conf->name, &m->client_id, err, errlen) < 0)
		goto fail;
	m->username = mqtt_str(&v[MQTT_KEY_USERNAME]);
	if (!m->username && m->url.user && m->url.user[0])
		m->username = m->url.user;
	m->password = v[MQTT_KEY_PASSWORD].set ? v[MQTT_KEY_PASSWORD].str
					       : m->url.password;
	m->ca_file = mqtt_str(&v[MQTT_KEY_CA_FILE]);
	m->cert_file = mqtt_str(&v[MQTT_KEY_CERT_FILE]);
	m->key_file = mqtt_str(&v[MQTT_KEY_KEY_FILE]);
	m->keepalive_s = v[MQTT_KEY_KEEPALIVE].set
				 ? (int)((v[MQTT_KEY_KEEPALIVE].num + 500) / 1000)
				 : 30;
	if (m->keepalive_s < 5)
		m->keepalive_s = 5;
	m->clean = v[MQTT_KEY_CLEAN_SESSION].set ? v[MQTT_KEY_CLEAN_SESSION].num
						 : true;
	if (!m->clean &&
	    mosquitto_property_add_int32(&m->connect_props,
					 MQTT_PROP_SESSION_EXPIRY_INTERVAL,
					 UINT32_MAX) != MOSQ_ERR_SUCCESS) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < conf->ntopics; i++)
		if ((conf->topics[i].dir & MQGATE_DIR_IN) &&
		    mqtt_add_filter(m, &conf->topics[i]) < 0) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	backoff_init(&m->backoff, BACKOFF_DEFAULT_MIN_MS, BACKOFF_DEFAULT_MAX_MS);
	if (strlen(m->client_id) > 23)
		host->log(broker, MQGATE_LOG_NOTICE,
			  "client id '%s' is over 23 bytes, which some brokers "
			  "refuse", m->client_id);
	return m;
fail:
	mqtt_free(m);
	return NULL;
}

static int mqtt_start(void *instance)
{
	struct mqtt *m = instance;
	char why[MQTT_WHY];
	int r;

	if (m->started)
		return -EALREADY;
	snprintf(why, sizeof(why), "connecting to %s:%d", m->url.host,
		 m->url.port);
	m->host->log(m->broker, MQGATE_LOG_INFO,
		     "connecting to %s://%s%s%s:%d as '%s'%s%s%s, %d topic "
		     "filter%s, keepalive %d s%s",
		     m->url.scheme, m->url.ipv6 ? "[" : "", m->url.host,
		     m->url.ipv6 ? "]" : "", m->url.port, m->client_id,
		     m->username ? " (user '" : "",
		     m->username ? m->username : "", m->username ? "')" : "",
		     m->nsubs, m->nsubs == 1 ? "" : "s", m->keepalive_s,
		     m->clean ? "" : ", persistent session");
	mqtt_report(m, MQGATE_STATE_CONNECTING, why);
	r = pthread_create(&m->thread, NULL, mqtt_run, m);
	if (r)
		return -r;
	m->started = true;
	return 0;
}

static int mqtt_publish(void *instance, const char *topic, const void *payload,
			size_t len, int qos, bool retain, uint64_t token)
{
	struct mqtt *m = instance;
	struct mqtt_pending *p, *old = NULL;
	enum mqgate_publish_result res;
	char why[MQTT_WHY];
	int mid = 0, rc;

	if (!topic || (len && !payload) || qos < 0 || qos > 2)
		return -EINVAL;
	if (len > INT_MAX)
		return -EMSGSIZE;
	p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_lock(&m->lock);
	if (!m->connected || !m->mosq) {
		pthread_mutex_unlock(&m->lock);
		free(p);
		return -ENOTCONN;
	}
	if (m->npending >= MQTT_MAX_PENDING) {
		pthread_mutex_unlock(&m->lock);
		free(p);
		return -EBUSY;
	}
	rc = mosquitto_publish_v5(m->mosq, &mid, topic, (int)len, payload, qos,
				  retain, NULL);
	if (rc == MOSQ_ERR_SUCCESS) {
		p->mid = mid;
		p->token = token;
		old = mqtt_pending_add(m, p);
	}
	pthread_mutex_unlock(&m->lock);
	if (rc == MOSQ_ERR_SUCCESS) {
		if (old)
			mqtt_complete_all(m, old, MQGATE_PUB_UNAVAILABLE,
					  "message id reused before the broker "
					  "acknowledged it");
		return 0;
	}
	free(p);
	switch (rc) {
	case MOSQ_ERR_OVERSIZE_PACKET:
	case MOSQ_ERR_PAYLOAD_SIZE:
		return -EMSGSIZE;
	case MOSQ_ERR_NO_CONN:
		return -ENOTCONN;
	case MOSQ_ERR_NOMEM:
		return -ENOMEM;
	case MOSQ_ERR_QOS_NOT_SUPPORTED:
		snprintf(why, sizeof(why), "broker does not support qos %d", qos);
		res = MQGATE_PUB_REJECTED;
		break;
	case MOSQ_ERR_RETAIN_NOT_SUPPORTED:
		snprintf(why, sizeof(why), "broker does not support retained "
			 "messages");
		res = MQGATE_PUB_REJECTED;
		break;
	default:
		mqtt_clause(why, sizeof(why), mosquitto_strerror(rc));
		res = MQGATE_PUB_INTERNAL;
		break;
	}
	m->host->publish_done(m->broker, token, res, why);
	return 0;
}

static void mqtt_destroy(void *instance)
{
	struct mqtt *m = instance;
	struct mqtt_pending *left;
	bool was_connected;

	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	was_connected = m->connected;
	m->connected = false;
	/* Queues DISCONNECT and wakes the loop; the thread sends it. */
	if (m->looping && m->mosq)
		mosquitto_disconnect(m->mosq);
	pthread_cond_broadcast(&m->wake);
	pthread_mutex_unlock(&m->lock);
	if (m->started)
		pthread_join(m->thread, NULL);
	pthread_mutex_lock(&m->lock);
	left = mqtt_pending_take_all(m);
	pthread_mutex_unlock(&m->lock);
	mqtt_complete_all(m, left, MQGATE_PUB_UNAVAILABLE,
			  "broker backend stopped");
	if (m->started)
		m->host->log(m->broker, MQGATE_LOG_INFO, "stopped; %s %s:%d",
			     was_connected ? "disconnected from"
					   : "was not connected to",
			     m->url.host, m->url.port);
	mqtt_free(m);
}

__attribute__((visibility("default")))
const struct mqgate_backend mqgate_backend = {
	.abi = MQGATE_BACKEND_ABI,
	.size = sizeof(struct mqgate_backend),
	.name = "mqtt",
	.version = "1",
	.keys = mqtt_keys,
	.check = mqtt_check,
	.create = mqtt_create,
	.start = mqtt_start,
	.publish = mqtt_publish,
	.destroy = mqtt_destroy,
};
