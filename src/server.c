/*
 * server.c - the libwebsockets context and everything around it (see
 * server.h): listeners as vhosts, mounts, the descriptor watcher protocol
 * (signals and SSE disconnects), the one-second tick, the drain.
 * Owns the lws context, the signalfd and the SSE epoll set.
 */
#include "server.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "acl.h"
#include "auth.h"
#include "conf.h"
#include "hub.h"
#include "inbox.h"
#include "log.h"
#include "metrics.h"
#include "netaddr.h"
#include "session.h"

#ifndef PKGDATADIR
#define PKGDATADIR "/usr/local/share/mqgate"
#endif

/* Receive buffer per WebSocket, allocated for the connection's life: 128
 * bytes hold a subscribe; ws.c reassembles longer messages in a buffer
 * that exists only while one is in flight. 1024 cost 0.9 KB more per
 * idle client (2.7 against 1.8 KB of RSS with 10,000 clients). */
#define SERVER_WS_RX_BUFFER 128
/* The most lws sends in one send(): with tx_packet_size 0 it is the
 * rx_buffer_size (+ LWS_PRE + 4), so a 32 KB batch of session.c went out
 * 148 bytes per writeable event and a reading client fell behind as soon
 * as others filled the loop. One batch per send. */
#define SERVER_TX_PACKET 32768
#define SERVER_DRAIN_MS 5000
/* Connections opened since the last trim before the free heap is handed
 * back to the system (about 6 MB of connection memory went through). */
#define SERVER_TRIM_CLIENTS 1000

enum fd_kind { FD_SIGNAL = 1, FD_SSE_WATCH = 2 };

static struct lws_context *server_ctx;
static const struct conf *server_conf;
static int server_sigfd = -1, server_sse_ep = -1;
static bool server_stop;
static int64_t server_drain_deadline;
static lws_sorted_usec_list_t server_tick_sul;
/* All zero: no lws ping/hang-up ("validity") timers, see server_tick. */
static const lws_retry_bo_t server_no_validity;
static struct lws_http_mount server_mounts[10];
static char server_docroot[4096];
/* lws keeps pointers to each vhost's name and interface: they live until
 * the context is destroyed. */
static char **server_vhost_strings;
static size_t server_nvhost_strings;

static int fd_callback(struct lws *wsi, enum lws_callback_reasons reason,
		       void *user, void *in, size_t len);

static const struct lws_protocols server_protocols[] = {
	/* [0] also serves every HTTP request no mount claims (404s). */
	{ PROTO_WS_SUBPROTOCOL, ws_callback, sizeof(void *),
	  SERVER_WS_RX_BUFFER, 0, NULL, SERVER_TX_PACKET },
	{ "mqgate-sse", sse_callback, sizeof(void *), 0, 0, NULL,
	  SERVER_TX_PACKET },
	{ "mqgate-api", api_callback, sizeof(void *), 0, 0, NULL, 0 },
	{ "mqgate-fd", fd_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* ---- shared helpers ----------------------------------------------------- */

bool server_full(void)
{
	uint64_t n = metrics.clients[METRICS_WS] + metrics.clients[METRICS_SSE];

	return hub.draining || n >= hub.conf->server.max_clients;
}

void server_client_address(struct lws *wsi, char *out)
{
	const struct conf_strlist *t = &hub.conf->server.trusted_proxies;
	char peer[NETADDR_TEXT_MAX] = "", xff[1024];
	bool have_xff = lws_hdr_copy(wsi, xff, sizeof(xff),
				     WSI_TOKEN_X_FORWARDED_FOR) > 0;

	lws_get_peer_simple(wsi, peer, sizeof(peer));
	netaddr_client(peer, have_xff ? xff : NULL, t->v, t->n, out);
}

/* `self` in origins: a page served by this very host and port (the
 * bundled dashboard), whose Origin names the Host the request went to. */
static bool server_same_origin(struct lws *wsi, const char *origin)
{
	const char *sep = strstr(origin, "://");
	char host[256];

	if (!sep || lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) <= 0)
		return false;
	return strcasecmp(sep + 3, host) == 0;
}

bool server_origin_allowed(struct lws *wsi, bool *present, char *origin,
			   size_t len)
{
	const struct conf_strlist *o = &hub.conf->server.origins;
	char buf[256];

	if (!origin) {
		origin = buf;
		len = sizeof(buf);
	}
	if (lws_hdr_copy(wsi, origin, (int)len, WSI_TOKEN_ORIGIN) <= 0) {
		if (present)
			*present = false;
		return true;
	}
	if (present)
		*present = true;
	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->v[i], "*") == 0 ||
		    strcasecmp(o->v[i], origin) == 0 ||
		    (strcmp(o->v[i], "self") == 0 &&
		     server_same_origin(wsi, origin)))
			return true;
	return false;
}

/* The token from "Authorization: Bearer X" or "access_token=X". */
static int server_token(struct lws *wsi, char *buf, size_t len)
{
	char hdr[4096];
	const char *v;
	int n = lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_HTTP_AUTHORIZATION);

	if (n > 7 && strncasecmp(hdr, "Bearer ", 7) == 0) {
		snprintf(buf, len, "%s", hdr + 7);
		return (int)strlen(buf);
	}
	/* lws copies "access_token=VALUE" into buf and points past the '='. */
	v = lws_get_urlarg_by_name(wsi, "access_token=", buf, (int)len);
	if (!v)
		return 0;
	memmove(buf, v, strlen(v) + 1);
	return (int)strlen(buf);
}

enum proto_code server_authenticate(struct lws *wsi, struct acl *acl,
				    int64_t *expires_ms, char *why,
				    size_t whylen)
{
	const struct conf_auth *au = &hub.conf->auth;
	char token[4096];
	int n;

	memset(acl, 0, sizeof(*acl));
	*expires_ms = 0;
	if (!auth_enabled(au))
		return PROTO_OK; /* anonymous permissions */
	n = server_token(wsi, token, sizeof(token));
	if (n <= 0) {
		if (au->anonymous_subscribe_set || au->anonymous_publish_set)
			return PROTO_OK;
		snprintf(why, whylen, "a token is required");
		return PROTO_UNAUTHORIZED;
	}
	if (auth_verify(au, token, (size_t)n, acl, expires_ms, why, whylen) < 0)
		return PROTO_UNAUTHORIZED;
	return PROTO_OK;
}

int server_add_cors(struct lws *wsi, unsigned char **p, unsigned char *end)
{
	char origin[256];
	bool present;

	if (!server_origin_allowed(wsi, &present, origin, sizeof(origin)) ||
	    !present || hub.conf->server.origins.n == 0)
		return 0;
	if (lws_add_http_header_by_name(wsi,
			(const unsigned char *)"access-control-allow-origin:",
			(const unsigned char *)origin, (int)strlen(origin), p, end))
		return -1;
	if (lws_add_http_header_by_name(wsi, (const unsigned char *)"vary:",
					(const unsigned char *)"Origin", 6, p, end))
		return -1;
	return 0;
}

int server_http_reply(struct lws *wsi, int status, const char *ctype,
		      const char *body, size_t len)
{
	size_t cap = LWS_PRE + 1024 + len;
	unsigned char *buf = malloc(cap), *start, *p, *end;
	int r = -1;

	if (!buf)
		return -1;
	start = p = buf + LWS_PRE;
	end = buf + cap - 1;
	if (lws_add_http_common_headers(wsi, (unsigned)status, ctype, len, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (const unsigned char *)"no-store", 8,
					 &p, end) ||
	    server_add_cors(wsi, &p, end) ||
	    lws_finalize_http_header(wsi, &p, end))
		goto out;
	memcpy(p, body, len);
	p += len;
	if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_FINAL) < 0)
		goto out;
	r = lws_http_transaction_completed(wsi) ? -1 : 0;
out:
	free(buf);
	return r;
}

int server_http_error(struct lws *wsi, enum proto_code c, const char *why)
{
	char *body = proto_http_error(c, why);
	int r;

	if (!body)
		return -1;
	r = server_http_reply(wsi, proto_code_http_status(c),
			      "application/json", body, strlen(body));
	free(body);
	return r;
}

int server_http_not_found(struct lws *wsi)
{
	static const char body[] =
		"{\"error\":\"not_found\",\"message\":\"no such endpoint\"}";

	return server_http_reply(wsi, 404, "application/json", body,
				 sizeof(body) - 1);
}

/* ---- descriptor watcher: signals and SSE disconnects -------------------- */

void server_sse_watch(struct lws *wsi, void *session)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
	int fd;

	/* HTTP/2 streams are closed properly by lws itself. */
	if (server_sse_ep < 0 || lws_get_network_wsi(wsi) != wsi)
		return;
	fd = lws_get_socket_fd(wsi);
	ev.data.ptr = session;
	if (fd >= 0 && epoll_ctl(server_sse_ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		log_warning("server", "cannot watch SSE socket: %s",
			    strerror(errno));
}

void server_sse_unwatch(struct lws *wsi)
{
	int fd = lws_get_socket_fd(wsi);

	if (server_sse_ep >= 0 && fd >= 0)
		epoll_ctl(server_sse_ep, EPOLL_CTL_DEL, fd, NULL);
}

static void server_sse_events(void)
{
	struct epoll_event evs[64];
	int n = epoll_wait(server_sse_ep, evs, 64, 0);

	/* One batch per wakeup. Each close is a timer lws inserts into one
	 * sorted list, walking it from the start: 10,000 clients leaving
	 * at once cost 1.5 s of CPU that way. The epoll set stays readable,
	 * so the rest come on the next loop iterations. */
	for (int i = 0; i < n; i++) {
		struct session *s = evs[i].data.ptr;

		/* Any byte or hang-up from an SSE client ends it. */
		server_sse_unwatch(s->wsi);
		lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
	}
}

static void (*server_reload)(void);

void server_set_reload(void (*fn)(void))
{
	server_reload = fn;
}

static void server_signal(void)
{
	struct signalfd_siginfo si;

	while (read(server_sigfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			log_notice("server", "SIGHUP: reloading configuration");
			if (server_reload)
				server_reload();
			break;
		case SIGTERM:
		case SIGINT:
			log_notice("server", "%s: draining",
				   si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			server_drain();
			break;
		default:
			break;
		}
	}
}

static int fd_callback(struct lws *wsi, enum lws_callback_reasons reason,
		       void *user, void *in, size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		if (lws_get_socket_fd(wsi) == server_sigfd)
			server_signal();
		else
			server_sse_events();
		return 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		/* Arrives once per vhost per protocol: draining an empty
		 * inbox is cheap. */
		if (hub.inbox)
			hub_drain_inbox();
		return 0;
	default:
		return 0;
	}
}

void server_wake(void *unused)
{
	if (server_ctx)
		lws_cancel_service(server_ctx);
}

/* ---- tick: keepalives, expiry, drain ------------------------------------ */

void server_drain(void)
{
	if (hub.draining)
		return;
	hub.draining = true;
	server_drain_deadline = inbox_now_ms() + SERVER_DRAIN_MS;
	for (struct session *s = hub.sessions; s; s = s->next)
		session_close(s, LWS_CLOSE_STATUS_GOINGAWAY,
			      "server shutting down");
	if (!hub.sessions)
		server_stop = true;
	lws_cancel_service(server_ctx);
}

/*
 * glibc returns freed heap to the system only from the top of the heap:
 * after 5,000 WebSocket clients came and went the daemon kept 29 MB of
 * free heap (RSS 33.9 MB, 0.1 MB in use; malloc_trim brought it back to
 * 4.9). Once 1,000 connections were opened since the last trim and fewer
 * than half that many are still open, trim: after a crowd left, and at
 * most once per 2 x clients connections under steady churn.
 */
static void server_trim(void)
{
	static uint64_t opened_at_trim;
	uint64_t n = metrics.clients[METRICS_WS] + metrics.clients[METRICS_SSE];
	uint64_t total = metrics.connections_total[METRICS_WS] +
			 metrics.connections_total[METRICS_SSE];
	uint64_t opened = total - opened_at_trim;

	if (opened >= SERVER_TRIM_CLIENTS && n < opened / 2) {
#ifdef __GLIBC__
		malloc_trim(0);
#endif
		opened_at_trim = total;
	}
}

/*
 * Keepalives: an SSE comment or a WebSocket ping on a connection that
 * wrote nothing for `keepalive`. lws's own pings (its "validity" policy)
 * are off: 4.1.6 keeps their timers in one sorted list per thread that
 * every ping, pong and new connection walks from the start, which with
 * 5,000 idle WebSocket clients and a 5 s keepalive took 18% of a core
 * (2% without). A WebSocket peer that stops acknowledging is dropped by
 * the kernel instead (TCP_USER_TIMEOUT, hub.c).
 */
static void server_tick(lws_sorted_usec_list_t *sul)
{
	int64_t now = inbox_now_ms(), ka = hub.conf->server.keepalive_ms;
	static const char keepalive[] = ": keepalive\n\n";
	static const unsigned char ws_ping[] = { 0x89, 0x00 };

	for (struct session *s = hub.sessions; s; s = s->next) {
		if (s->expires_ms && now >= s->expires_ms) {
			session_close(s, 4001, "token expired");
			continue;
		}
		if (ka > 0 && now - s->last_write_ms >= ka &&
		    !session_has_output(s)) {
			if (s->kind == SESSION_SSE)
				session_send_frame(s, keepalive,
						   sizeof(keepalive) - 1);
			else
				session_send_frame(s, ws_ping, sizeof(ws_ping));
			s->last_write_ms = now;
		}
	}
	server_trim();
	if (hub.draining && (!hub.sessions || now >= server_drain_deadline)) {
		server_stop = true;
		lws_cancel_service(server_ctx); /* end the wait in lws_service */
		return;
	}
	lws_sul_schedule(server_ctx, 0, &server_tick_sul, server_tick,
			 hub.draining ? 100 * LWS_US_PER_MS : LWS_US_PER_SEC);
}

/* ---- lws logging -------------------------------------------------------- */

static void server_lws_log(int level, const char *line)
{
	char text[512];
	size_t n;

	/* 4.1.6 logs this at error level for every HTTP/1.1 SSE stream. */
	if (strstr(line, "lws_mux_mark_immortal"))
		return;
	snprintf(text, sizeof(text), "%s", line);
	n = strlen(text);
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		text[--n] = 0;
	/* lws prefixes lines with a timestamp and level letter. */
	log_msg(level & LLL_ERR ? LOG_LEVEL_ERR
		: level & LLL_WARN ? LOG_LEVEL_WARNING : LOG_LEVEL_DEBUG,
		"lws", "%s", text);
}

/* ---- setup -------------------------------------------------------------- */

static void server_add_mount(size_t *n, const char *mountpoint,
			     const char *origin, unsigned char kind,
			     const char *def)
{
	struct lws_http_mount *m = &server_mounts[*n];

	memset(m, 0, sizeof(*m));
	m->mountpoint = mountpoint;
	m->mountpoint_len = (unsigned char)strlen(mountpoint);
	m->origin = origin;
	m->origin_protocol = kind;
	m->def = def;
	if (*n)
		server_mounts[*n - 1].mount_next = m;
	(*n)++;
}

static const struct lws_http_mount *server_build_mounts(const struct conf *conf)
{
	static const char *const api[] = { "/publish", "/healthz", "/metrics",
					   "/livez", "/readyz" };
	size_t n = 0;

	server_add_mount(&n, "/events", "mqgate-sse", LWSMPRO_CALLBACK, NULL);
	for (size_t i = 0; i < sizeof(api) / sizeof(api[0]); i++)
		server_add_mount(&n, api[i], "mqgate-api", LWSMPRO_CALLBACK, NULL);
	if (conf->server.docroot && conf->server.docroot[0]) {
		snprintf(server_docroot, sizeof(server_docroot), "%s",
			 conf->server.docroot);
		server_add_mount(&n, "/", server_docroot, LWSMPRO_FILE,
				 "index.html");
	}
	return server_mounts;
}

static int server_open_fds(void)
{
	sigset_t set;
	struct lws_vhost *vh = lws_get_vhost_by_name(server_ctx, "listen0");
	lws_sock_file_fd_type u;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	server_sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	server_sse_ep = epoll_create1(EPOLL_CLOEXEC);
	if (server_sigfd < 0 || server_sse_ep < 0 || !vh)
		return -errno;
	u.filefd = (lws_filefd_type)(intptr_t)server_sigfd;
	if (!lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, u,
					"mqgate-fd", NULL))
		return -EIO;
	u.filefd = (lws_filefd_type)(intptr_t)server_sse_ep;
	if (!lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, u,
					"mqgate-fd", NULL))
		return -EIO;
	return 0;
}

/* A copy of s that lives as long as the context. NULL on ENOMEM. */
static const char *server_keep(const char *s)
{
	char **v = realloc(server_vhost_strings,
			   (server_nvhost_strings + 1) * sizeof(*v));
	char *copy;

	if (!v)
		return NULL;
	server_vhost_strings = v;
	copy = strdup(s);
	if (copy)
		v[server_nvhost_strings++] = copy;
	return copy;
}

int server_create(const struct conf *conf)
{
	struct lws_context_creation_info info;
	const struct lws_http_mount *mounts;
	bool tls = conf->server.tls_cert_file && conf->server.tls_cert_file[0];
	char iface[4096];

	server_conf = conf;
	lws_set_log_level(LLL_ERR | LLL_WARN, server_lws_log);
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
		       LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE;
	if (tls)
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.timeout_secs = 10;
	/* on the context too, or lws applies its default to every wsi */
	info.retry_and_idle_policy = &server_no_validity;
	server_ctx = lws_create_context(&info);
	if (!server_ctx) {
		log_err("server", "cannot create the libwebsockets context");
		return -EIO;
	}
	mounts = server_build_mounts(conf);
	for (size_t i = 0; i < conf->server.nlisten; i++) {
		const struct conf_listen *l = &conf->server.listen[i];
		struct lws_context_creation_info vi;
		char name[32];

		memset(&vi, 0, sizeof(vi));
		snprintf(name, sizeof(name), "listen%zu", i);
		snprintf(iface, sizeof(iface), "%s", l->host);
		vi.vhost_name = server_keep(name);
		vi.iface = server_keep(iface);
		if (!vi.vhost_name || !vi.iface)
			return -ENOMEM;
		vi.port = l->kind == LISTEN_UNIX ? 0 : l->port;
		vi.protocols = server_protocols;
		vi.mounts = mounts;
		vi.retry_and_idle_policy = &server_no_validity;
		vi.keepalive_timeout = 30;
		vi.timeout_secs_ah_idle = 10;
		vi.alpn = "http/1.1";
		vi.options = LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE;
		vi.headers = NULL;
		switch (l->kind) {
		case LISTEN_IPV4:
			/* Without this an IPv4 iface binds every address. */
			vi.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
			break;
		case LISTEN_IPV6:
			vi.options |= LWS_SERVER_OPTION_IPV6_V6ONLY_MODIFY |
				      LWS_SERVER_OPTION_IPV6_V6ONLY_VALUE;
			break;
		case LISTEN_UNIX:
			vi.options |= LWS_SERVER_OPTION_UNIX_SOCK;
			break;
		}
		if (tls) {
			vi.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
			vi.ssl_cert_filepath = conf->server.tls_cert_file;
			vi.ssl_private_key_filepath = conf->server.tls_key_file;
			vi.ssl_options_set = SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
		}
		if (!lws_create_vhost(server_ctx, &vi)) {
			log_err("server", "%s:%d: cannot listen on %s port %d",
				conf->file, l->line, l->host, l->port);
			return -EADDRINUSE;
		}
		log_info("server", "listening on %s port %d%s", l->host,
			 l->port, tls ? " (TLS)" : "");
	}
	if (server_open_fds() < 0) {
		log_err("server", "cannot set up signal and socket watchers");
		return -EIO;
	}
	lws_sul_schedule(server_ctx, 0, &server_tick_sul, server_tick,
			 LWS_US_PER_SEC);
	return 0;
}

int server_run(void)
{
	hub.ctx = server_ctx;
	while (!server_stop)
		if (lws_service(server_ctx, 0) < 0)
			break;
	return 0;
}

void server_destroy(void)
{
	if (server_ctx)
		lws_context_destroy(server_ctx);
	server_ctx = NULL;
	for (size_t i = 0; i < server_nvhost_strings; i++)
		free(server_vhost_strings[i]);
	free(server_vhost_strings);
	server_vhost_strings = NULL;
	server_nvhost_strings = 0;
	/* the adopted descriptors are closed by lws with their wsi */
	server_sigfd = server_sse_ep = -1;
}
