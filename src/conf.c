/*
 * conf.c - the configuration file (CONFIG.md) parsed into a struct conf.
 * Owns: the key tables of [server] and [auth], the line parser, the value
 * parsers shared with plugin key checking (conf_parse_*, conf_value_parse)
 * and secret files (conf_read_secret). A struct conf owns all its strings.
 *
 * The [server] and [auth] keys are declared in two tables (name, type,
 * default as config text, range, repeatable, where the value goes); one
 * generic parser walks the file, looks each key up, parses it by type,
 * checks the range and fills the struct; at the end the defaults of the
 * keys not given are parsed from their text by the same code. In a
 * [broker NAME] section the host keeps `type`, `mount` and `topic`; every
 * other key is stored raw with its line in kv[] for the plugin's own
 * table (src/backend.c checks it with conf_value_parse()).
 *
 * File format, as decided:
 * - A comment line starts with `#` or `;` after optional whitespace.
 *   An inline comment starts at a `#` or `;` preceded by whitespace. The
 *   exception is a value that is a filter: for `anonymous_subscribe`,
 *   `anonymous_publish` and the first word of `topic`, a `#` forming a
 *   whole word at the start of the value is the value (`topic = # in 1`).
 *   For other keys `docroot =   # static files` is an empty value.
 *   Trailing whitespace is trimmed; `key =` is an empty value. A value
 *   cannot hold " #" or " ;" literally; ${ENV} can.
 * - `${NAME}` and `${NAME:-default}` are replaced from the environment
 *   (after comments are removed); an unset NAME without a default is an
 *   error; `$$` is one `$`; any other `$` is kept as it is.
 * - Sizes: an integer with an optional K, M or G (1024-based), KB/MB/GB,
 *   any case. Durations: an integer with ms, s, m or h; a bare number is
 *   seconds. Booleans: yes/no, true/false, on/off, 1/0.
 * - Relative paths (docroot, tls_*_file, jwt_*_file, plugin_dir, and every
 *   broker key whose name ends in `_file`) are made absolute against the
 *   config file's directory (conf_load_string: the current directory).
 * - [server] defaults are CONFIG.md's example, except: listen is one
 *   listener 127.0.0.1:8080 when none is given; docroot is PKGDATADIR/www
 *   and an empty value disables static files; origins is `self` (the
 *   page's own host and port, an extension);
 *   trusted_proxies is 127.0.0.1 and ::1. Extensions: `cache` (100000
 *   topics) and `cache_bytes` (64M) bound the last-value cache;
 *   `publish_rate` is N/s, N/m or N/h or 0 (no limit), `publish_burst`
 *   defaults to the rate's N.
 * - List keys (listen, origins, trusted_proxies, anonymous_*) repeat;
 *   one line may hold several whitespace-separated items (origins and
 *   trusted_proxies also take commas). An empty anonymous_* line makes
 *   that list explicitly empty.
 * - [auth]: the jwt_*_file keys are read at load time; setting both is an
 *   error; an empty secret file is an error.
 * - [broker NAME]: NAME is [A-Za-z0-9_-]+ and unique; `type` is required
 *   and names a plugin ([A-Za-z0-9_-]+); `topic = FILTER in|out|both
 *   [QOS]` at least once; `mount` is "" or a wildcard-free prefix ending in
 *   `/`; two brokers may not share a mount (nested mounts are fine: the
 *   longest prefix wins).
 * - Errors are "FILE:LINE: message" on errs; parsing goes on to report up
 *   to CONF_MAX_ERRORS of them, then conf_load fails with -EINVAL. An
 *   unreadable file is "FILE: strerror" and -errno.
 * - Plugin values (conf_value_parse): an empty STRING, SECRET or PATH is
 *   "not set" (str "", no default applied); an empty number or boolean is
 *   an error.
 */
#include "conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "topic.h"

#ifndef PKGDATADIR
#define PKGDATADIR "/usr/local/share/mqgate"
#endif

#define CONF_MAX_ERRORS 20
#define CONF_MAX_FILE (16 << 20)      /* a config file larger is refused */
#define CONF_MAX_SECRET (1 << 20)     /* a secret file larger is refused */
#define CONF_SHOW 64                  /* value bytes quoted in messages */
#define CONF_KB ((uint64_t)1024)
#define CONF_MB (CONF_KB * 1024)
#define CONF_GB (CONF_MB * 1024)

/* ---- the key tables ---------------------------------------------------- */

enum conf_type {
	CONF_T_STR,       /* char *: text as written */
	CONF_T_PATH,      /* char *: made absolute; "" stays "" */
	CONF_T_COUNT,     /* uint64_t: integer in [min, max] */
	CONF_T_SIZE,      /* uint64_t: bytes in [min, max] */
	CONF_T_DURATION,  /* int64_t: milliseconds in [min, max] */
	CONF_T_LISTEN,    /* struct conf_server.listen[] */
	CONF_T_ORIGINS,   /* struct conf_strlist: "*" or scheme://host[:port] */
	CONF_T_ADDRS,     /* struct conf_strlist: IP or IP/prefix */
	CONF_T_FILTERS,   /* struct conf_strlist of filters; aux: bool set */
	CONF_T_SECRET,    /* char *: content of the file named by the value */
	CONF_T_SLOW,      /* enum slow_client_policy */
	CONF_T_LOGLEVEL,  /* int: enum log_level */
	CONF_T_RATE,      /* uint64_t tokens; aux: int64_t period in ms */
};

#define CONF_MULTI 1      /* may repeat */
#define CONF_NONEMPTY 2   /* an empty value is an error */
#define CONF_FILTER 4     /* a lone leading `#` is the value, not a comment */

struct conf_item {
	const char *name;
	enum conf_type type;
	const char *def;       /* default as config text; NULL = none */
	int64_t min, max;      /* COUNT, SIZE, DURATION, RATE */
	unsigned flags;
	size_t offset;         /* of the value in struct conf */
	size_t aux;            /* FILTERS: the _set flag; RATE: the period */
	const char *help;
};

#define CS(f) offsetof(struct conf, server.f)
#define CA(f) offsetof(struct conf, auth.f)

static const struct conf_item conf_server_items[] = {
	{ "listen", CONF_T_LISTEN, NULL, 0, 0, CONF_MULTI, CS(listen), 0,
	  "host:port, [v6]:port or unix:/path" },
	{ "docroot", CONF_T_PATH, PKGDATADIR "/www", 0, 0, 0, CS(docroot), 0,
	  "static files; empty disables" },
	{ "origins", CONF_T_ORIGINS, "self", 0, 0, CONF_MULTI, CS(origins), 0,
	  "allowed Origin values; * = any" },
	{ "tls_cert_file", CONF_T_PATH, "", 0, 0, 0, CS(tls_cert_file), 0,
	  "PEM certificate chain" },
	{ "tls_key_file", CONF_T_PATH, "", 0, 0, 0, CS(tls_key_file), 0,
	  "PEM private key" },
	{ "keepalive", CONF_T_DURATION, "15s", 0, 3600000, 0, CS(keepalive_ms),
	  0, "SSE comment / WebSocket ping interval; 0 disables" },
	{ "history", CONF_T_COUNT, "10000", 0, 100000000, 0, CS(history), 0,
	  "messages kept for resume" },
	{ "history_bytes", CONF_T_SIZE, "64M", 0, 64 * CONF_GB, 0,
	  CS(history_bytes), 0, "bytes kept for resume" },
	{ "cache", CONF_T_COUNT, "100000", 0, 100000000, 0, CS(cache), 0,
	  "topics in the last-value cache" },
	{ "cache_bytes", CONF_T_SIZE, "64M", 0, 64 * CONF_GB, 0,
	  CS(cache_bytes), 0, "bytes in the last-value cache" },
	{ "queue", CONF_T_COUNT, "1000", 1, 1000000, 0, CS(queue), 0,
	  "per-client outbound queue, messages" },
	{ "queue_bytes", CONF_T_SIZE, "4M", 1024, CONF_GB, 0, CS(queue_bytes),
	  0, "per-client outbound queue, bytes" },
	{ "slow_client", CONF_T_SLOW, "drop_oldest", 0, 0, 0, CS(slow_client),
	  0, "drop_oldest | conflate | disconnect" },
	{ "max_clients", CONF_T_COUNT, "10000", 1, 1000000, 0,
	  CS(max_clients), 0, "concurrent WebSocket and SSE clients" },
	{ "max_message", CONF_T_SIZE, "256K", 1, 256 * CONF_MB, 0,
	  CS(max_message), 0, "largest payload relayed either way" },
	{ "max_subscriptions", CONF_T_COUNT, "100", 1, 1000000, 0,
	  CS(max_subscriptions), 0, "per client" },
	{ "publish_rate", CONF_T_RATE, "50/s", 1, 1000000, 0, CS(publish_rate),
	  CS(publish_rate_ms), "per client: N/s, N/m or N/h; 0 = no limit" },
	{ "publish_burst", CONF_T_COUNT, NULL, 1, 1000000, 0,
	  CS(publish_burst), 0, "token bucket size; default: the rate's N" },
	{ "trusted_proxies", CONF_T_ADDRS, "127.0.0.1 ::1", 0, 0, CONF_MULTI,
	  CS(trusted_proxies), 0, "X-Forwarded-For is believed from these" },
	{ "plugin_dir", CONF_T_PATH, "", 0, 0, 0, CS(plugin_dir), 0,
	  "where the backend plugins live; empty = built-in" },
	{ "user", CONF_T_STR, "", 0, 0, 0, CS(user), 0,
	  "drop privileges to this user after binding" },
	{ "log_level", CONF_T_LOGLEVEL, "info", 0, 0, 0, CS(log_level), 0,
	  "error | warning | notice | info | debug" },
	{ NULL, 0, NULL, 0, 0, 0, 0, 0, NULL },
};

static const struct conf_item conf_auth_items[] = {
	{ "anonymous_subscribe", CONF_T_FILTERS, NULL, 0, 0,
	  CONF_MULTI | CONF_FILTER, CA(anonymous_subscribe),
	  CA(anonymous_subscribe_set), "filters anonymous clients may read" },
	{ "anonymous_publish", CONF_T_FILTERS, NULL, 0, 0,
	  CONF_MULTI | CONF_FILTER, CA(anonymous_publish),
	  CA(anonymous_publish_set), "filters anonymous clients may write" },
	{ "jwt_secret_file", CONF_T_SECRET, NULL, 0, 0, 0, CA(jwt_secret), 0,
	  "HS256 secret" },
	{ "jwt_public_key_file", CONF_T_SECRET, NULL, 0, 0, 0,
	  CA(jwt_public_key), 0, "RS256 / ES256 public key (PEM)" },
	{ "jwt_audience", CONF_T_STR, "", 0, 0, 0, CA(jwt_audience), 0,
	  "required aud; empty = not checked" },
	{ "jwt_issuer", CONF_T_STR, "", 0, 0, 0, CA(jwt_issuer), 0,
	  "required iss; empty = not checked" },
	{ "jwt_subscribe_claim", CONF_T_STR, "sub_topics", 0, 0, CONF_NONEMPTY,
	  CA(jwt_subscribe_claim), 0, "claim listing subscribe filters" },
	{ "jwt_publish_claim", CONF_T_STR, "pub_topics", 0, 0, CONF_NONEMPTY,
	  CA(jwt_publish_claim), 0, "claim listing publish filters" },
	{ NULL, 0, NULL, 0, 0, 0, 0, 0, NULL },
};

#define CONF_NSERVER (sizeof(conf_server_items) / sizeof(conf_server_items[0]))
#define CONF_NAUTH (sizeof(conf_auth_items) / sizeof(conf_auth_items[0]))

/* ---- the parser's state ------------------------------------------------ */

enum conf_section {
	CONF_SEC_NONE,     /* before the first header */
	CONF_SEC_SERVER,
	CONF_SEC_AUTH,
	CONF_SEC_BROKER,
	CONF_SEC_SKIP,     /* a bad header: its keys are not checked */
};

struct conf_parser {
	struct conf *c;
	const char *file;          /* for messages (c->file) */
	char *dir;                 /* absolute base for relative paths */
	FILE *errs;
	int nerr;
	bool oom;
	bool stop;                 /* too many errors */
	int line;
	enum conf_section sec;
	struct conf_broker *broker; /* the current [broker], in c->brokers */
	int topic_lines;            /* `topic` lines in it, good or bad */
	int seen_server[CONF_NSERVER];  /* line each key was first given on */
	int seen_auth[CONF_NAUTH];
};

static void conf_error(struct conf_parser *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void conf_error(struct conf_parser *p, int line, const char *fmt, ...)
{
	va_list ap;

	if (p->stop)
		return;
	if (p->nerr == CONF_MAX_ERRORS) {
		fprintf(p->errs, "%s: too many errors, giving up\n", p->file);
		p->stop = true;
		return;
	}
	p->nerr++;
	if (line > 0)
		fprintf(p->errs, "%s:%d: ", p->file, line);
	else
		fprintf(p->errs, "%s: ", p->file);
	va_start(ap, fmt);
	vfprintf(p->errs, fmt, ap);
	va_end(ap);
	fputc('\n', p->errs);
}

static void conf_oom(struct conf_parser *p)
{
	if (!p->oom)
		fprintf(p->errs, "%s: out of memory\n", p->file);
	p->oom = true;
	p->stop = true;
}

/* Makes room for element n of *v (n elements in use): capacities go
 * 4, 8, 16... 0 or -ENOMEM. */
static int conf_reserve(void **v, size_t n, size_t size)
{
	size_t cap = n ? n * 2 : 4;
	void *nv;

	if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
		return 0;
	if (cap > SIZE_MAX / size)
		return -ENOMEM;
	nv = realloc(*v, cap * size);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	return 0;
}

static bool conf_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' ||
	       ch == '\v';
}

static char *conf_skip_space(char *s)
{
	while (conf_space(*s))
		s++;
	return s;
}

static void conf_rtrim(char *s)
{
	size_t n = strlen(s);

	while (n && conf_space(s[n - 1]))
		s[--n] = '\0';
}

/* Is s a name of [A-Za-z0-9_-]+? */
static bool conf_is_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return false;
	return true;
}

/* ---- value parsers ----------------------------------------------------- */

/* Reads the leading decimal digits of s into *out; *end after them. */
static int conf_parse_digits(const char *s, uint64_t *out, const char **end,
			     const char **why)
{
	uint64_t n = 0;

	if (!isdigit((unsigned char)*s)) {
		*why = "expected a number";
		return -EINVAL;
	}
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');

		if (n > (UINT64_MAX - d) / 10) {
			*why = "number too large";
			return -EINVAL;
		}
		n = n * 10 + d;
	}
	*out = n;
	*end = s;
	return 0;
}

int conf_parse_int(const char *s, int64_t *out, const char **why)
{
	bool neg = false;
	uint64_t n;
	const char *end;

	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (conf_parse_digits(s, &n, &end, why) < 0)
		return -EINVAL;
	if (*end) {
		*why = "expected an integer";
		return -EINVAL;
	}
	if (n > (uint64_t)INT64_MAX + (neg ? 1 : 0)) {
		*why = "number too large";
		return -EINVAL;
	}
	*out = neg ? (int64_t)(0 - n) : (int64_t)n;
	return 0;
}

int conf_parse_size(const char *s, uint64_t *out, const char **why)
{
	static const char expected[] =
		"expected a size: a number with an optional K, M or G suffix";
	uint64_t n, mul = 1;
	const char *p;

	if (!isdigit((unsigned char)*s)) {
		*why = expected;
		return -EINVAL;
	}
	if (conf_parse_digits(s, &n, &p, why) < 0)
		return -EINVAL;
	while (conf_space(*p))
		p++;
	switch (tolower((unsigned char)*p)) {
	case '\0':
		break;
	case 'k':
		mul = CONF_KB;
		break;
	case 'm':
		mul = CONF_MB;
		break;
	case 'g':
		mul = CONF_GB;
		break;
	case 'b':
		mul = 0; /* plain bytes: the B is the whole suffix */
		break;
	default:
		*why = expected;
		return -EINVAL;
	}
	if (*p) {
		p++;
		if (mul && tolower((unsigned char)*p) == 'b')
			p++;
		if (*p) {
			*why = expected;
			return -EINVAL;
		}
	}
	if (!mul)
		mul = 1;
	if (n > (uint64_t)INT64_MAX / mul) {
		*why = "size too large";
		return -EINVAL;
	}
	*out = n * mul;
	return 0;
}

int conf_parse_duration(const char *s, int64_t *ms, const char **why)
{
	static const char expected[] = "expected a duration: a number with "
				       "an optional ms, s, m or h suffix";
	uint64_t n, mul;
	const char *p;

	if (!isdigit((unsigned char)*s)) {
		*why = expected;
		return -EINVAL;
	}
	if (conf_parse_digits(s, &n, &p, why) < 0)
		return -EINVAL;
	while (conf_space(*p))
		p++;
	if (!*p || strcasecmp(p, "s") == 0)
		mul = 1000;
	else if (strcasecmp(p, "ms") == 0)
		mul = 1;
	else if (strcasecmp(p, "m") == 0)
		mul = 60 * 1000;
	else if (strcasecmp(p, "h") == 0)
		mul = 3600 * 1000;
	else {
		*why = expected;
		return -EINVAL;
	}
	if (n > (uint64_t)INT64_MAX / mul) {
		*why = "duration too large";
		return -EINVAL;
	}
	*ms = (int64_t)(n * mul);
	return 0;
}

int conf_parse_bool(const char *s, bool *out, const char **why)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	*why = "expected yes/no, true/false, on/off or 1/0";
	return -EINVAL;
}

/* "64M", "256K", "1G" or plain bytes, for range messages. */
static void conf_format_size(char *buf, size_t len, uint64_t n)
{
	if (n && n % CONF_GB == 0)
		snprintf(buf, len, "%" PRIu64 "G", n / CONF_GB);
	else if (n && n % CONF_MB == 0)
		snprintf(buf, len, "%" PRIu64 "M", n / CONF_MB);
	else if (n && n % CONF_KB == 0)
		snprintf(buf, len, "%" PRIu64 "K", n / CONF_KB);
	else
		snprintf(buf, len, "%" PRIu64, n);
}

static void conf_format_duration(char *buf, size_t len, int64_t ms)
{
	if (ms && ms % 3600000 == 0)
		snprintf(buf, len, "%" PRId64 "h", ms / 3600000);
	else if (ms && ms % 60000 == 0)
		snprintf(buf, len, "%" PRId64 "m", ms / 60000);
	else if (ms && ms % 1000 == 0)
		snprintf(buf, len, "%" PRId64 "s", ms / 1000);
	else
		snprintf(buf, len, "%" PRId64 "ms", ms);
}

enum conf_unit { CONF_UNIT_NUMBER, CONF_UNIT_BYTES, CONF_UNIT_MS };

/* "MIN to MAX" in the given unit. */
static void conf_format_range(char *buf, size_t len, enum conf_unit unit,
			      int64_t min, int64_t max)
{
	char a[32], b[32];

	if (unit == CONF_UNIT_BYTES) {
		conf_format_size(a, sizeof(a), (uint64_t)min);
		conf_format_size(b, sizeof(b), (uint64_t)max);
	} else if (unit == CONF_UNIT_MS) {
		conf_format_duration(a, sizeof(a), min);
		conf_format_duration(b, sizeof(b), max);
	} else {
		snprintf(a, sizeof(a), "%" PRId64, min);
		snprintf(b, sizeof(b), "%" PRId64, max);
	}
	snprintf(buf, len, "%s to %s", a, b);
}

/* ---- secrets ----------------------------------------------------------- */

int conf_read_secret(const char *path, char **out)
{
	size_t len = 0, cap = 4096;
	char *buf = NULL, *nb;
	ssize_t n;
	int fd, r;

	/* Non-blocking: a FIFO or terminal named by mistake must not hang
	 * the daemon (or `mqgate -t`). */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	buf = malloc(cap);
	if (!buf) {
		r = -ENOMEM;
		goto fail;
	}
	for (;;) {
		if (len + 1 >= cap) {
			if (cap > CONF_MAX_SECRET) {
				r = -EFBIG;
				goto fail;
			}
			nb = realloc(buf, cap * 2);
			if (!nb) {
				r = -ENOMEM;
				goto fail;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > CONF_MAX_SECRET) {
		r = -EFBIG;
		goto fail;
	}
	if (memchr(buf, '\0', len)) {
		r = -EINVAL; /* a C string would cut the secret short */
		goto fail;
	}
	if (len && buf[len - 1] == '\n') {
		len--;
		if (len && buf[len - 1] == '\r')
			len--;
	}
	buf[len] = '\0';
	close(fd);
	*out = buf;
	return 0;
fail:
	free(buf);
	close(fd);
	return r;
}

/* Why conf_read_secret failed, in words. */
static const char *conf_secret_error(int r)
{
	if (r == -EINVAL)
		return "the file contains a NUL byte";
	if (r == -EFBIG)
		return "the file is larger than 1M";
	return strerror(-r);
}

/* ---- plugin values ----------------------------------------------------- */

int conf_value_parse(const struct mqgate_key *k, const struct conf_kv *kv,
		     struct mqgate_value *v, char **owned, char *err,
		     size_t errlen)
{
	const char *raw = kv->value ? kv->value : "";
	const char *name = kv->key ? kv->key : k->name;
	const char *why = NULL;
	char range[80];
	uint64_t u = 0;
	bool b = false;
	int r;

	memset(v, 0, sizeof(*v));
	v->str = raw;
	switch (k->type) {
	case MQGATE_KEY_STRING:
	case MQGATE_KEY_PATH:
		v->set = raw[0] != '\0';
		return 0;
	case MQGATE_KEY_SECRET:
		if (!raw[0])
			return 0;
		if (strcmp(name, k->name) != 0) {
			/* NAME_file: the value is the file holding it */
			char *s = NULL;

			r = conf_read_secret(raw, &s);
			if (r < 0) {
				snprintf(err, errlen, "%s: cannot read %s: %s",
					 name, raw, conf_secret_error(r));
				return -EINVAL;
			}
			*owned = s;
			v->str = s;
		}
		v->set = true;
		return 0;
	case MQGATE_KEY_INT:
		r = conf_parse_int(raw, &v->num, &why);
		break;
	case MQGATE_KEY_SIZE:
		r = conf_parse_size(raw, &u, &why);
		v->num = (int64_t)u;
		break;
	case MQGATE_KEY_DURATION:
		r = conf_parse_duration(raw, &v->num, &why);
		break;
	case MQGATE_KEY_BOOL:
		r = conf_parse_bool(raw, &b, &why);
		v->num = b;
		break;
	default:
		snprintf(err, errlen, "%s: unsupported key type %d", name,
			 (int)k->type);
		return -EINVAL;
	}
	if (r < 0) {
		snprintf(err, errlen, "bad value \"%.*s\" for \"%s\": %s",
			 CONF_SHOW, raw, name, why);
		return -EINVAL;
	}
	if ((k->min || k->max) && (v->num < k->min || v->num > k->max)) {
		conf_format_range(range, sizeof(range),
				  k->type == MQGATE_KEY_SIZE ? CONF_UNIT_BYTES :
				  k->type == MQGATE_KEY_DURATION ? CONF_UNIT_MS :
				  CONF_UNIT_NUMBER, k->min, k->max);
		snprintf(err, errlen, "value \"%.*s\" for \"%s\" is out of "
			 "range (%s)", CONF_SHOW, raw, name, range);
		return -EINVAL;
	}
	v->set = true;
	return 0;
}

/* ---- pieces of struct conf --------------------------------------------- */

static void conf_strlist_free(struct conf_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int conf_strlist_add(struct conf_strlist *l, const char *s, size_t len)
{
	char *d;

	if (conf_reserve((void **)&l->v, l->n, sizeof(*l->v)) < 0)
		return -ENOMEM;
	d = strndup(s, len);
	if (!d)
		return -ENOMEM;
	l->v[l->n++] = d;
	return 0;
}

static void conf_broker_free(struct conf_broker *b)
{
	free(b->name);
	free(b->type);
	free(b->mount);
	for (size_t i = 0; i < b->ntopics; i++)
		free(b->topics[i].filter);
	free(b->topics);
	for (size_t i = 0; i < b->nkv; i++) {
		free(b->kv[i].key);
		free(b->kv[i].value);
	}
	free(b->kv);
}

void conf_free(struct conf *c)
{
	struct conf_server *s;
	struct conf_auth *a;

	if (!c)
		return;
	s = &c->server;
	a = &c->auth;
	for (size_t i = 0; i < s->nlisten; i++)
		free(s->listen[i].host);
	free(s->listen);
	free(s->docroot);
	conf_strlist_free(&s->origins);
	free(s->tls_cert_file);
	free(s->tls_key_file);
	conf_strlist_free(&s->trusted_proxies);
	free(s->plugin_dir);
	free(s->user);
	conf_strlist_free(&a->anonymous_subscribe);
	conf_strlist_free(&a->anonymous_publish);
	free(a->jwt_secret);
	free(a->jwt_public_key);
	free(a->jwt_audience);
	free(a->jwt_issuer);
	free(a->jwt_subscribe_claim);
	free(a->jwt_publish_claim);
	for (size_t i = 0; i < c->nbrokers; i++)
		conf_broker_free(&c->brokers[i]);
	free(c->brokers);
	free(c->file);
	free(c);
}

/* A path from the file, made absolute against p->dir; "" stays "".
 * Returns a malloc'd string or NULL (out of memory). */
static char *conf_path(const struct conf_parser *p, const char *value)
{
	char *s;
	size_t n = strlen(p->dir);

	if (!value[0] || value[0] == '/')
		return strdup(value);
	if (asprintf(&s, "%s%s%s", p->dir,
		     n && p->dir[n - 1] == '/' ? "" : "/", value) < 0)
		return NULL;
	return s;
}

/* ---- typed setters for the key tables ---------------------------------- */

static void conf_bad_value(struct conf_parser *p, int line, const char *name,
			   const char *value, const char *why)
{
	conf_error(p, line, "bad value \"%.*s\" for \"%s\": %s", CONF_SHOW,
		   value, name, why);
}

/* Replaces the string at *dst with a copy of s. */
static int conf_set_str(struct conf_parser *p, char **dst, char *s)
{
	if (!s) {
		conf_oom(p);
		return -ENOMEM;
	}
	free(*dst);
	*dst = s;
	return 0;
}

static int conf_set_listen(struct conf_parser *p, const char *name,
			   const char *value, int line)
{
	static const char expected[] = "expected host:port, [IPv6]:port, "
				       "*:port or unix:/path";
	struct conf_server *s = &p->c->server;
	struct conf_listen l = { LISTEN_IPV4, NULL, 0, line };
	char host[64];
	const char *colon, *why = NULL;
	struct in6_addr a6;
	struct in_addr a4;
	uint64_t port;
	const char *end;
	size_t hlen;

	if (strncmp(value, "unix:", 5) == 0) {
		const char *path = value + 5;

		if (path[0] != '/') {
			conf_bad_value(p, line, name, value,
				       "a unix socket path must be absolute");
			return -EINVAL;
		}
		if (strlen(path) >= 108) {
			conf_bad_value(p, line, name, value,
				       "a unix socket path must be shorter than "
				       "108 bytes");
			return -EINVAL;
		}
		l.kind = LISTEN_UNIX;
		l.host = strdup(path);
		goto add;
	}
	if (value[0] == '[') {
		const char *rb = strchr(value, ']');

		if (!rb || rb[1] != ':') {
			conf_bad_value(p, line, name, value, expected);
			return -EINVAL;
		}
		hlen = (size_t)(rb - value - 1);
		if (hlen >= sizeof(host)) {
			conf_bad_value(p, line, name, value,
				       "expected an IPv6 address in brackets");
			return -EINVAL;
		}
		memcpy(host, value + 1, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET6, host, &a6) != 1) {
			conf_bad_value(p, line, name, value,
				       "expected an IPv6 address in brackets");
			return -EINVAL;
		}
		l.kind = LISTEN_IPV6;
		colon = rb + 1;
	} else {
		colon = strrchr(value, ':');
		if (!colon) {
			conf_bad_value(p, line, name, value, expected);
			return -EINVAL;
		}
		if (memchr(value, ':', (size_t)(colon - value))) {
			conf_bad_value(p, line, name, value,
				       "an IPv6 address goes in brackets: "
				       "[::1]:8080");
			return -EINVAL;
		}
		hlen = (size_t)(colon - value);
		if (hlen >= sizeof(host)) {
			conf_bad_value(p, line, name, value,
				       "expected a numeric IPv4 address");
			return -EINVAL;
		}
		memcpy(host, value, hlen);
		host[hlen] = '\0';
		if (hlen == 0 || strcmp(host, "*") == 0)
			snprintf(host, sizeof(host), "0.0.0.0");
		else if (strcmp(host, "localhost") == 0)
			snprintf(host, sizeof(host), "127.0.0.1");
		else if (inet_pton(AF_INET, host, &a4) != 1) {
			conf_bad_value(p, line, name, value,
				       "expected a numeric IPv4 address, *, "
				       "localhost or [IPv6]");
			return -EINVAL;
		}
	}
	if (conf_parse_digits(colon + 1, &port, &end, &why) < 0 || *end ||
	    port < 1 || port > 65535) {
		conf_bad_value(p, line, name, value,
			       "expected a port number from 1 to 65535");
		return -EINVAL;
	}
	l.port = (int)port;
	l.host = strdup(host);
add:
	if (!l.host) {
		conf_oom(p);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->nlisten; i++) {
		const struct conf_listen *o = &s->listen[i];

		if (o->kind == l.kind && o->port == l.port &&
		    strcmp(o->host, l.host) == 0) {
			conf_error(p, line, "listener \"%.*s\" given twice "
				   "(first on line %d)", CONF_SHOW, value,
				   o->line);
			free(l.host);
			return -EINVAL;
		}
	}
	if (conf_reserve((void **)&s->listen, s->nlisten,
			 sizeof(*s->listen)) < 0) {
		free(l.host);
		conf_oom(p);
		return -ENOMEM;
	}
	s->listen[s->nlisten++] = l;
	return 0;
}

/* "*", "self" or scheme://host[:port], as browsers send it in Origin. */
static bool conf_origin_ok(const char *s, size_t len)
{
	size_t i = 0;

	if ((len == 1 && s[0] == '*') || (len == 4 && memcmp(s, "self", 4) == 0))
		return true;
	if (!len || !isalpha((unsigned char)s[0]))
		return false;
	while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '+' ||
			   s[i] == '-' || s[i] == '.'))
		i++;
	if (len - i < 4 || memcmp(s + i, "://", 3) != 0)
		return false;
	for (i += 3; i < len; i++)
		if (s[i] == '/' || s[i] == '?' || s[i] == '#' || s[i] == '*')
			return false;
	return true;
}

/* An IPv4 or IPv6 address, optionally /prefix. */
static bool conf_addr_ok(const char *s, size_t len)
{
	char buf[64];
	const char *slash;
	const char *end, *why;
	unsigned char a[16];
	uint64_t bits;
	int max;

	if (len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	slash = strchr(buf, '/');
	if (slash)
		buf[slash - buf] = '\0';
	if (inet_pton(AF_INET, buf, a) == 1)
		max = 32;
	else if (inet_pton(AF_INET6, buf, a) == 1)
		max = 128;
	else
		return false;
	if (!slash)
		return true;
	return conf_parse_digits(slash + 1, &bits, &end, &why) == 0 && !*end &&
	       bits <= (uint64_t)max;
}

/* Splits value into words (whitespace, and commas when `commas`), checks
 * each with the item's rule and appends it to the list. */
static int conf_set_list(struct conf_parser *p, const struct conf_item *it,
			 struct conf_strlist *l, const char *value, int line)
{
	const char *s = value, *why = NULL;
	int bad = 0;
	bool commas = it->type != CONF_T_FILTERS;

	for (;;) {
		size_t n = 0;

		while (conf_space(*s) || (commas && *s == ','))
			s++;
		if (!*s)
			break;
		while (s[n] && !conf_space(s[n]) && !(commas && s[n] == ','))
			n++;
		switch (it->type) {
		case CONF_T_ORIGINS:
			if (!conf_origin_ok(s, n)) {
				conf_error(p, line, "bad origin \"%.*s\": "
					   "expected *, self or scheme://host[:port] "
					   "without a path", (int)(n < CONF_SHOW ? n : CONF_SHOW), s);
				bad = 1;
				goto next;
			}
			break;
		case CONF_T_ADDRS:
			if (!conf_addr_ok(s, n)) {
				conf_error(p, line, "bad address \"%.*s\" in "
					   "\"%s\": expected an IPv4 or IPv6 "
					   "address, optionally /prefix",
					   (int)(n < CONF_SHOW ? n : CONF_SHOW), s,
					   it->name);
				bad = 1;
				goto next;
			}
			break;
		default:
			if (topic_validate(s, n, TOPIC_FILTER, &why) < 0) {
				conf_error(p, line, "bad topic filter \"%.*s\" "
					   "in \"%s\": %s",
					   (int)(n < CONF_SHOW ? n : CONF_SHOW), s,
					   it->name, why ? why : "invalid");
				bad = 1;
				goto next;
			}
			break;
		}
		if (conf_strlist_add(l, s, n) < 0) {
			conf_oom(p);
			return -ENOMEM;
		}
next:
		s += n;
	}
	return bad ? -EINVAL : 0;
}

static int conf_set_rate(struct conf_parser *p, const struct conf_item *it,
			 const char *value, int line)
{
	static const char expected[] = "expected N/s, N/m, N/h or 0";
	uint64_t *rate = (uint64_t *)((char *)p->c + it->offset);
	int64_t *period = (int64_t *)((char *)p->c + it->aux);
	const char *end, *why = NULL;
	char range[80];
	uint64_t n;
	int64_t ms;

	if (conf_parse_digits(value, &n, &end, &why) < 0) {
		conf_bad_value(p, line, it->name, value, expected);
		return -EINVAL;
	}
	if (n == 0 && !*end) {
		*rate = 0;
		*period = 0;
		return 0;
	}
	if (strcmp(end, "/s") == 0)
		ms = 1000;
	else if (strcmp(end, "/m") == 0)
		ms = 60000;
	else if (strcmp(end, "/h") == 0)
		ms = 3600000;
	else {
		conf_bad_value(p, line, it->name, value, expected);
		return -EINVAL;
	}
	if (n < (uint64_t)it->min || n > (uint64_t)it->max) {
		conf_format_range(range, sizeof(range), CONF_UNIT_NUMBER,
				  it->min, it->max);
		conf_error(p, line, "value \"%.*s\" for \"%s\" is out of range "
			   "(%s per period, or 0)", CONF_SHOW, value, it->name,
			   range);
		return -EINVAL;
	}
	*rate = n;
	*period = ms;
	return 0;
}

static int conf_set_secret(struct conf_parser *p, const struct conf_item *it,
			   const char *value, int line)
{
	char **dst = (char **)((char *)p->c + it->offset);
	char *path, *s = NULL;
	int r;

	if (!value[0])
		return 0; /* not set */
	path = conf_path(p, value);
	if (!path) {
		conf_oom(p);
		return -ENOMEM;
	}
	r = conf_read_secret(path, &s);
	if (r == -ENOMEM) {
		free(path);
		conf_oom(p);
		return r;
	}
	if (r < 0) {
		conf_error(p, line, "cannot read %s: %s", path,
			   conf_secret_error(r));
		free(path);
		return -EINVAL;
	}
	if (!s[0]) {
		conf_error(p, line, "%s: %s is empty", it->name, path);
		goto fail;
	}
	if (it->offset == CA(jwt_public_key) &&
	    !strstr(s, "-----BEGIN ")) {
		conf_error(p, line, "%s: %s is not a PEM file", it->name, path);
		goto fail;
	}
	free(path);
	free(*dst);
	*dst = s;
	return 0;
fail:
	free(path);
	free(s);
	return -EINVAL;
}

/* Parses `value` for table item `it` and stores it. line 0 = a default. */
static int conf_item_set(struct conf_parser *p, const struct conf_item *it,
			 const char *value, int line)
{
	char *base = (char *)p->c, range[80];
	const char *why = NULL;
	uint64_t u = 0;
	int64_t i = 0;
	int r;

	if ((it->flags & CONF_NONEMPTY) && !value[0]) {
		conf_error(p, line, "\"%s\" must not be empty", it->name);
		return -EINVAL;
	}
	switch (it->type) {
	case CONF_T_STR:
		return conf_set_str(p, (char **)(base + it->offset),
				    strdup(value));
	case CONF_T_PATH:
		return conf_set_str(p, (char **)(base + it->offset),
				    conf_path(p, value));
	case CONF_T_COUNT:
		r = conf_parse_int(value, &i, &why);
		if (r == 0 && i < 0) {
			why = "expected a number";
			r = -EINVAL;
		}
		u = (uint64_t)i;
		break;
	case CONF_T_SIZE:
		r = conf_parse_size(value, &u, &why);
		i = (int64_t)u;
		break;
	case CONF_T_DURATION:
		r = conf_parse_duration(value, &i, &why);
		break;
	case CONF_T_LISTEN:
		return conf_set_listen(p, it->name, value, line);
	case CONF_T_ORIGINS:
	case CONF_T_ADDRS:
		return conf_set_list(p, it,
				     (struct conf_strlist *)(base + it->offset),
				     value, line);
	case CONF_T_FILTERS:
		*(bool *)(base + it->aux) = true;
		return conf_set_list(p, it,
				     (struct conf_strlist *)(base + it->offset),
				     value, line);
	case CONF_T_SECRET:
		return conf_set_secret(p, it, value, line);
	case CONF_T_SLOW: {
		enum slow_client_policy *dst =
			(enum slow_client_policy *)(base + it->offset);

		if (strcmp(value, "drop_oldest") == 0)
			*dst = SLOW_CLIENT_DROP_OLDEST;
		else if (strcmp(value, "conflate") == 0)
			*dst = SLOW_CLIENT_CONFLATE;
		else if (strcmp(value, "disconnect") == 0)
			*dst = SLOW_CLIENT_DISCONNECT;
		else {
			conf_bad_value(p, line, it->name, value,
				       "expected drop_oldest, conflate or "
				       "disconnect");
			return -EINVAL;
		}
		return 0;
	}
	case CONF_T_LOGLEVEL:
		r = log_level_parse(value);
		if (r < 0) {
			conf_bad_value(p, line, it->name, value,
				       "expected error, warning, notice, info "
				       "or debug");
			return -EINVAL;
		}
		*(int *)(base + it->offset) = r;
		return 0;
	case CONF_T_RATE:
		return conf_set_rate(p, it, value, line);
	default:
		conf_error(p, line, "\"%s\": unsupported key type", it->name);
		return -EINVAL;
	}
	if (r < 0) {
		conf_bad_value(p, line, it->name, value, why);
		return -EINVAL;
	}
	if (i < it->min || i > it->max) {
		conf_format_range(range, sizeof(range),
				  it->type == CONF_T_SIZE ? CONF_UNIT_BYTES :
				  it->type == CONF_T_DURATION ? CONF_UNIT_MS :
				  CONF_UNIT_NUMBER, it->min, it->max);
		conf_error(p, line, "value \"%.*s\" for \"%s\" is out of range "
			   "(%s)", CONF_SHOW, value, it->name, range);
		return -EINVAL;
	}
	if (it->type == CONF_T_DURATION)
		*(int64_t *)(base + it->offset) = i;
	else
		*(uint64_t *)(base + it->offset) = u;
	return 0;
}

/* ---- [broker NAME] keys ------------------------------------------------ */

/* Finds the host's own broker key by name: 0 type, 1 mount, 2 topic. */
static int conf_broker_key(const char *key)
{
	if (strcmp(key, "type") == 0)
		return 0;
	if (strcmp(key, "mount") == 0)
		return 1;
	if (strcmp(key, "topic") == 0)
		return 2;
	return -1;
}

static int conf_broker_topic(struct conf_parser *p, struct conf_broker *b,
			     const char *value, int line)
{
	static const char expected[] = "expected FILTER in|out|both [QOS]";
	const char *w[4], *why = NULL;
	size_t wl[4], nw = 0;
	const char *s = value;
	struct conf_topic t = { NULL, MQGATE_DIR_IN, 0, line };

	for (;;) {
		size_t n = 0;

		while (conf_space(*s))
			s++;
		if (!*s)
			break;
		while (s[n] && !conf_space(s[n]))
			n++;
		if (nw == 3) {
			conf_bad_value(p, line, "topic", value, expected);
			return -EINVAL;
		}
		w[nw] = s;
		wl[nw++] = n;
		s += n;
	}
	if (nw < 2) {
		conf_bad_value(p, line, "topic", value, expected);
		return -EINVAL;
	}
	if (topic_validate(w[0], wl[0], TOPIC_FILTER, &why) < 0) {
		conf_error(p, line, "bad topic filter \"%.*s\": %s",
			   (int)(wl[0] < CONF_SHOW ? wl[0] : CONF_SHOW), w[0],
			   why ? why : "invalid");
		return -EINVAL;
	}
	if (wl[1] == 2 && strncmp(w[1], "in", 2) == 0)
		t.dir = MQGATE_DIR_IN;
	else if (wl[1] == 3 && strncmp(w[1], "out", 3) == 0)
		t.dir = MQGATE_DIR_OUT;
	else if (wl[1] == 4 && strncmp(w[1], "both", 4) == 0)
		t.dir = MQGATE_DIR_BOTH;
	else {
		conf_bad_value(p, line, "topic", value,
			       "the direction must be in, out or both");
		return -EINVAL;
	}
	if (nw == 3) {
		if (wl[2] != 1 || w[2][0] < '0' || w[2][0] > '2') {
			conf_bad_value(p, line, "topic", value,
				       "QOS must be 0, 1 or 2");
			return -EINVAL;
		}
		t.qos = w[2][0] - '0';
	}
	t.filter = strndup(w[0], wl[0]);
	if (!t.filter ||
	    conf_reserve((void **)&b->topics, b->ntopics, sizeof(*b->topics)) < 0) {
		free(t.filter);
		conf_oom(p);
		return -ENOMEM;
	}
	b->topics[b->ntopics++] = t;
	return 0;
}

static int conf_broker_mount(struct conf_parser *p, struct conf_broker *b,
			     const char *value, int line)
{
	const char *why = NULL;
	size_t n = strlen(value);

	if (n && value[n - 1] != '/') {
		conf_bad_value(p, line, "mount", value,
			       "a mount is empty or a prefix ending in \"/\"");
		return -EINVAL;
	}
	if (strpbrk(value, "+#")) {
		conf_bad_value(p, line, "mount", value,
			       "a mount may not contain + or #");
		return -EINVAL;
	}
	if (n && topic_validate(value, n, TOPIC_NAME, &why) < 0) {
		conf_bad_value(p, line, "mount", value, why ? why : "invalid");
		return -EINVAL;
	}
	b->mount_line = line;
	return conf_set_str(p, &b->mount, strdup(value));
}

/* A plugin key: kept raw. *_file values are made absolute here, so the
 * plugin's SECRET and PATH keys read the file the operator meant. */
static int conf_broker_kv(struct conf_parser *p, struct conf_broker *b,
			  const char *key, const char *value, int line)
{
	size_t kl = strlen(key);
	struct conf_kv kv = { NULL, NULL, line };

	kv.key = strdup(key);
	if (kl > 5 && strcmp(key + kl - 5, "_file") == 0)
		kv.value = conf_path(p, value);
	else
		kv.value = strdup(value);
	if (!kv.key || !kv.value ||
	    conf_reserve((void **)&b->kv, b->nkv, sizeof(*b->kv)) < 0) {
		free(kv.key);
		free(kv.value);
		conf_oom(p);
		return -ENOMEM;
	}
	b->kv[b->nkv++] = kv;
	return 0;
}

static void conf_broker_set(struct conf_parser *p, const char *key,
			    const char *value, int line)
{
	struct conf_broker *b = p->broker;

	switch (conf_broker_key(key)) {
	case 0:
		if (b->type_line) {
			conf_error(p, line, "\"type\" given twice in [broker %s] "
				   "(first on line %d)", b->name, b->type_line);
			return;
		}
		b->type_line = line;
		if (!conf_is_name(value)) {
			conf_bad_value(p, line, "type", value,
				       "expected a plugin name such as mqtt or "
				       "amqp");
			return;
		}
		conf_set_str(p, &b->type, strdup(value));
		return;
	case 1:
		if (b->mount_line) {
			conf_error(p, line, "\"mount\" given twice in [broker %s] "
				   "(first on line %d)", b->name, b->mount_line);
			return;
		}
		b->mount_line = line;
		conf_broker_mount(p, b, value, line);
		return;
	case 2:
		p->topic_lines++;
		conf_broker_topic(p, b, value, line);
		return;
	default:
		conf_broker_kv(p, b, key, value, line);
		return;
	}
}

/* ---- lines ------------------------------------------------------------- */

static const struct conf_item *conf_find(const struct conf_item *items,
					 const char *key, size_t *idx)
{
	for (size_t i = 0; items[i].name; i++) {
		if (strcmp(items[i].name, key) == 0) {
			*idx = i;
			return &items[i];
		}
	}
	return NULL;
}

/* The checks of a [broker] section that need all of its lines. */
static void conf_broker_end(struct conf_parser *p)
{
	struct conf_broker *b = p->broker;

	if (!b)
		return;
	if (!b->type_line)
		conf_error(p, b->line, "broker \"%s\": missing required key "
			   "\"type\"", b->name);
	if (!p->topic_lines)
		conf_error(p, b->line, "broker \"%s\": at least one \"topic\" "
			   "line is required", b->name);
	p->broker = NULL;
	p->topic_lines = 0;
}

static void conf_section(struct conf_parser *p, char *s)
{
	struct conf *c = p->c;
	char *rb = strchr(s, ']'), *rest, *name;
	struct conf_broker *b;

	conf_broker_end(p);
	p->sec = CONF_SEC_SKIP;
	if (!rb) {
		conf_error(p, p->line, "expected \"[section]\"");
		return;
	}
	rest = conf_skip_space(rb + 1);
	if (*rest && *rest != '#' && *rest != ';') {
		conf_error(p, p->line, "unexpected text after \"[section]\"");
		return;
	}
	*rb = '\0';
	name = conf_skip_space(s + 1);
	conf_rtrim(name);
	if (strcmp(name, "server") == 0) {
		p->sec = CONF_SEC_SERVER;
		return;
	}
	if (strcmp(name, "auth") == 0) {
		p->sec = CONF_SEC_AUTH;
		return;
	}
	if (strncmp(name, "broker", 6) != 0 ||
	    (name[6] && !conf_space(name[6]))) {
		conf_error(p, p->line, "unknown section \"[%.*s]\"", CONF_SHOW,
			   name);
		return;
	}
	name = conf_skip_space(name + 6);
	if (!*name) {
		conf_error(p, p->line, "a broker section needs a name: "
			   "[broker NAME]");
		return;
	}
	if (!conf_is_name(name)) {
		conf_error(p, p->line, "bad broker name \"%.*s\": use letters, "
			   "digits, \"_\" and \"-\"", CONF_SHOW, name);
		return;
	}
	for (size_t i = 0; i < c->nbrokers; i++) {
		if (strcmp(c->brokers[i].name, name) == 0) {
			conf_error(p, p->line, "duplicate broker name \"%s\" "
				   "(first on line %d)", name,
				   c->brokers[i].line);
			return;
		}
	}
	if (conf_reserve((void **)&c->brokers, c->nbrokers,
			 sizeof(*c->brokers)) < 0) {
		conf_oom(p);
		return;
	}
	b = &c->brokers[c->nbrokers];
	memset(b, 0, sizeof(*b));
	b->line = p->line;
	b->name = strdup(name);
	if (!b->name) {
		conf_oom(p);
		return;
	}
	c->nbrokers++;
	p->broker = b;
	p->sec = CONF_SEC_BROKER;
}

/* Strips the comment and the surrounding whitespace from a value (in
 * place). `filter`: a lone `#` at the start is the value. */
static char *conf_value_clean(char *v, bool filter)
{
	char *s = conf_skip_space(v);
	bool space = s != v;    /* is s[0] preceded by whitespace? */
	size_t i = 0;

	if (filter && s[0] == '#' && (s[1] == '\0' || conf_space(s[1])))
		i = 1;
	for (; s[i]; i++) {
		if ((s[i] == '#' || s[i] == ';') &&
		    (i ? conf_space(s[i - 1]) : space)) {
			s[i] = '\0';
			break;
		}
	}
	conf_rtrim(s);
	return s;
}

/* ${NAME}, ${NAME:-default} and $$ in s. Returns a malloc'd string, or
 * NULL after reporting the error (or running out of memory). */
static char *conf_expand(struct conf_parser *p, const char *s)
{
	char *out = NULL, *name = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (!f) {
		conf_oom(p);
		return NULL;
	}
	while (*s) {
		const char *end, *def = NULL, *val;
		size_t nl;

		if (s[0] != '$' || (s[1] != '$' && s[1] != '{')) {
			fputc(*s++, f);
			continue;
		}
		if (s[1] == '$') {
			fputc('$', f);
			s += 2;
			continue;
		}
		end = strchr(s + 2, '}');
		if (!end) {
			conf_error(p, p->line, "unterminated \"${\"");
			goto fail;
		}
		nl = strcspn(s + 2, ":}");
		if (s[2 + nl] == ':') {
			if (s[3 + nl] != '-') {
				conf_error(p, p->line, "expected ${NAME} or "
					   "${NAME:-default}");
				goto fail;
			}
			def = s + 4 + nl;
		}
		name = strndup(s + 2, nl);
		if (!name) {
			conf_oom(p);
			goto fail;
		}
		if (!nl || isdigit((unsigned char)name[0]) ||
		    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "abcdefghijklmnopqrstuvwxyz0123456789_") != nl) {
			conf_error(p, p->line, "bad environment variable name "
				   "\"%.*s\"", CONF_SHOW, name);
			goto fail;
		}
		val = getenv(name);
		if (val)
			fputs(val, f);
		else if (def)
			fwrite(def, 1, (size_t)(end - def), f);
		else {
			conf_error(p, p->line, "environment variable %s is not "
				   "set", name);
			goto fail;
		}
		free(name);
		name = NULL;
		s = end + 1;
	}
	if (fclose(f) != 0) {
		free(out);
		conf_oom(p);
		return NULL;
	}
	return out;
fail:
	free(name);
	fclose(f);
	free(out);
	return NULL;
}

static bool conf_key_ok(const char *k)
{
	if (!*k)
		return false;
	for (; *k; k++)
		if (!isalnum((unsigned char)*k) && *k != '_' && *k != '-' &&
		    *k != '.')
			return false;
	return true;
}

static void conf_keyvalue(struct conf_parser *p, char *s)
{
	static const char *const names[] = { "", "server", "auth" };
	char *eq = strchr(s, '='), *key = s, *value;
	const struct conf_item *items = NULL, *it;
	bool filter = false;
	int *seen = NULL;
	size_t idx = 0;

	if (!eq) {
		conf_error(p, p->line, "expected \"key = value\"");
		return;
	}
	*eq = '\0';
	conf_rtrim(key);
	if (!conf_key_ok(key)) {
		conf_error(p, p->line, "expected \"key = value\"");
		return;
	}
	switch (p->sec) {
	case CONF_SEC_NONE:
		conf_error(p, p->line, "key \"%.*s\" outside of any section",
			   CONF_SHOW, key);
		return;
	case CONF_SEC_SKIP:
		return;
	case CONF_SEC_SERVER:
		items = conf_server_items;
		seen = p->seen_server;
		break;
	case CONF_SEC_AUTH:
		items = conf_auth_items;
		seen = p->seen_auth;
		break;
	case CONF_SEC_BROKER:
		filter = strcmp(key, "topic") == 0;
		break;
	}
	it = items ? conf_find(items, key, &idx) : NULL;
	if (items && !it) {
		conf_error(p, p->line, "unknown key \"%.*s\" in [%s]",
			   CONF_SHOW, key, names[p->sec]);
		return;
	}
	if (it) {
		filter = it->flags & CONF_FILTER;
		if (seen[idx] && !(it->flags & CONF_MULTI)) {
			conf_error(p, p->line, "\"%s\" given twice in [%s] "
				   "(first on line %d)", key, names[p->sec],
				   seen[idx]);
			return;
		}
		if (!seen[idx])
			seen[idx] = p->line;
	}
	value = conf_expand(p, conf_value_clean(eq + 1, filter));
	if (!value)
		return;
	if (it)
		conf_item_set(p, it, value, p->line);
	else
		conf_broker_set(p, key, value, p->line);
	free(value);
}

static void conf_line(struct conf_parser *p, const char *text, size_t len)
{
	char *buf, *s;

	if (memchr(text, '\0', len)) {
		conf_error(p, p->line, "NUL byte in line");
		return;
	}
	buf = strndup(text, len);
	if (!buf) {
		conf_oom(p);
		return;
	}
	s = conf_skip_space(buf);
	if (*s == '\0' || *s == '#' || *s == ';')
		;
	else if (*s == '[')
		conf_section(p, s);
	else
		conf_keyvalue(p, s);
	free(buf);
}

/* ---- after the last line ----------------------------------------------- */

static void conf_defaults(struct conf_parser *p, const struct conf_item *items,
			  const int *seen)
{
	for (size_t i = 0; items[i].name && !p->oom; i++)
		if (!seen[i] && items[i].def)
			conf_item_set(p, &items[i], items[i].def, 0);
}

static void conf_finish(struct conf_parser *p)
{
	struct conf *c = p->c;
	struct conf_server *s = &c->server;
	struct conf_auth *a = &c->auth;
	size_t i_cert = 0, i_key = 0, i_sec = 0, i_pub = 0, i_burst = 0;
	bool cert, key;

	conf_broker_end(p);
	conf_defaults(p, conf_server_items, p->seen_server);
	conf_defaults(p, conf_auth_items, p->seen_auth);
	if (p->oom)
		return;
	if (!s->nlisten)
		conf_set_listen(p, "listen", "127.0.0.1:8080", 0);
	conf_find(conf_server_items, "publish_burst", &i_burst);
	if (!p->seen_server[i_burst])
		s->publish_burst = s->publish_rate;

	/* A key whose value was bad is seen but unset: its field may be
	 * NULL here (the load fails anyway). */
	conf_find(conf_server_items, "tls_cert_file", &i_cert);
	conf_find(conf_server_items, "tls_key_file", &i_key);
	cert = s->tls_cert_file && s->tls_cert_file[0];
	key = s->tls_key_file && s->tls_key_file[0];
	if (cert != key && s->tls_cert_file && s->tls_key_file)
		conf_error(p, cert ? p->seen_server[i_cert]
				   : p->seen_server[i_key],
			   "tls_cert_file and tls_key_file go together");

	conf_find(conf_auth_items, "jwt_secret_file", &i_sec);
	conf_find(conf_auth_items, "jwt_public_key_file", &i_pub);
	if (a->jwt_secret && a->jwt_public_key) {
		int l1 = p->seen_auth[i_sec], l2 = p->seen_auth[i_pub];

		conf_error(p, l1 > l2 ? l1 : l2, "set jwt_secret_file or "
			   "jwt_public_key_file, not both (the other is on "
			   "line %d)", l1 > l2 ? l2 : l1);
	}

	for (size_t i = 0; i < c->nbrokers; i++) {
		struct conf_broker *b = &c->brokers[i];

		if (!b->mount && !(b->mount = strdup(""))) {
			conf_oom(p);
			return;
		}
		for (size_t j = 0; j < i; j++) {
			const struct conf_broker *o = &c->brokers[j];

			if (strcmp(o->mount, b->mount) != 0)
				continue;
			conf_error(p, b->mount_line ? b->mount_line : b->line,
				   "broker \"%s\": mount \"%s\" is also broker "
				   "\"%s\"'s (line %d): each broker needs its "
				   "own mount", b->name, b->mount, o->name,
				   o->mount_line ? o->mount_line : o->line);
			break;
		}
	}
}

/* ---- entry points ------------------------------------------------------ */

/* The absolute directory holding `path` (for conf_load_string, NULL:
 * the current directory). malloc'd or NULL. */
static char *conf_base_dir(const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;
	char *cwd, *dir, *s;

	if (slash && slash == path)
		return strdup("/");
	if (slash && path[0] == '/')
		return strndup(path, (size_t)(slash - path));
	cwd = get_current_dir_name();
	if (!cwd)
		cwd = strdup(".");
	if (!slash || !cwd)
		return cwd;
	dir = strndup(path, (size_t)(slash - path));
	if (!dir || asprintf(&s, "%s/%s", cwd, dir) < 0)
		s = NULL;
	free(dir);
	free(cwd);
	return s;
}

static int conf_parse(const char *name, const char *dir_of, const char *text,
		      size_t len, FILE *errs, struct conf **out)
{
	struct conf_parser p;
	size_t pos = 0;
	int r = 0;

	memset(&p, 0, sizeof(p));
	p.errs = errs ? errs : stderr;
	p.file = name;
	p.c = calloc(1, sizeof(*p.c));
	if (!p.c || !(p.c->file = strdup(name)) ||
	    !(p.dir = conf_base_dir(dir_of))) {
		fprintf(p.errs, "%s: out of memory\n", name);
		r = -ENOMEM;
		goto fail;
	}
	p.c->server.log_level = LOG_LEVEL_INFO;
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		pos = 3; /* a UTF-8 byte order mark */
	while (pos < len && !p.stop) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;

		p.line++;
		conf_line(&p, text + pos, n);
		pos += n + 1;
	}
	if (!p.stop)
		conf_finish(&p);
	if (p.oom)
		r = -ENOMEM;
	else if (p.nerr)
		r = -EINVAL;
	if (r < 0)
		goto fail;
	free(p.dir);
	*out = p.c;
	return 0;
fail:
	free(p.dir);
	conf_free(p.c);
	return r;
}

int conf_load_string(const char *name, const char *text, size_t len,
		     FILE *errs, struct conf **out)
{
	return conf_parse(name, NULL, text, len, errs, out);
}

int conf_load(const char *path, FILE *errs, struct conf **out)
{
	char *text = NULL, *nt;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd, r;

	if (!errs)
		errs = stderr;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		fprintf(errs, "%s: %s\n", path, strerror(-r));
		return r;
	}
	for (;;) {
		if (len == cap) {
			if (cap >= CONF_MAX_FILE) {
				fprintf(errs, "%s: larger than 16M\n", path);
				r = -EFBIG;
				goto fail;
			}
			cap = cap ? cap * 2 : 16384;
			nt = realloc(text, cap);
			if (!nt) {
				fprintf(errs, "%s: out of memory\n", path);
				r = -ENOMEM;
				goto fail;
			}
			text = nt;
		}
		n = read(fd, text + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			fprintf(errs, "%s: %s\n", path, strerror(-r));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	r = conf_parse(path, path, text ? text : "", len, errs, out);
	free(text);
	return r;
fail:
	close(fd);
	free(text);
	return r;
}
