/*
 * test_metrics.c - the Prometheus text rendering of GET /metrics. The
 * output is parsed line by line against the text format's grammar
 * (HELP and TYPE once per family and before its samples, metric and
 * label name syntax, quoted and escaped label values, a float value,
 * one family's samples together, a histogram's cumulative buckets up to
 * +Inf matching its _count). The families, their types and labels must
 * be the ones README.md documents, each counter shows the value set in
 * the global struct, latency observations land in the right buckets, and
 * label values that need it are escaped.
 * Brokers are built by hand: no plugin is loaded.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "backend.h"
#include "check.h"
#include "config.h"
#include "metrics.h"
#include "proto.h"

#define MAX_FAMILIES 64
#define MAX_SAMPLES 256
#define MAX_LABELS 4

struct label {
	char name[64];
	char value[256];     /* unescaped */
};

struct sample {
	char name[128];
	struct label labels[MAX_LABELS];
	size_t nlabels;
	double value;
	char raw[64];        /* the value as written */
};

struct family {
	char name[128];
	char type[16];
	char help[256];
	bool has_help, has_type, closed;
};

struct exposition {
	struct family fam[MAX_FAMILIES];
	size_t nfam;
	struct sample smp[MAX_SAMPLES];
	size_t nsmp;
	unsigned errors;     /* grammar violations found */
};

static bool name_start(char c, bool label)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       (!label && c == ':');
}

static bool name_char(char c, bool label)
{
	return name_start(c, label) || (c >= '0' && c <= '9');
}

/* Reads a metric name (label = false) or label name at *p into out. */
static bool parse_name(const char **p, char *out, size_t cap, bool label)
{
	size_t n = 0;

	if (!name_start(**p, label))
		return false;
	while (name_char((*p)[n], label)) {
		if (n + 1 >= cap)
			return false;
		out[n] = (*p)[n];
		n++;
	}
	out[n] = 0;
	*p += n;
	return true;
}

/* A quoted label value with the format's three escapes. */
static bool parse_label_value(const char **p, char *out, size_t cap)
{
	const char *s = *p;
	size_t n = 0;

	if (*s++ != '"')
		return false;
	for (; *s != '"'; s++) {
		char c = *s;

		if (!c || c == '\n')
			return false;
		if (c == '\\') {
			s++;
			if (*s == 'n')
				c = '\n';
			else if (*s == '\\' || *s == '"')
				c = *s;
			else
				return false;
		}
		if (n + 1 >= cap)
			return false;
		out[n++] = c;
	}
	out[n] = 0;
	*p = s + 1;
	return true;
}

static bool grammar_quiet;  /* test_parser: errors are expected */

static void grammar_error(struct exposition *e, const char *line,
			  const char *why)
{
	e->errors++;
	if (!grammar_quiet)
		fprintf(stderr, "metrics: %s: \"%s\"\n", why, line);
}

static struct family *family_find(struct exposition *e, const char *name)
{
	for (size_t i = 0; i < e->nfam; i++)
		if (strcmp(e->fam[i].name, name) == 0)
			return &e->fam[i];
	return NULL;
}

/* A "# HELP NAME text" or "# TYPE NAME type" line. */
static void parse_comment(struct exposition *e, const char *line,
			  struct family **cur)
{
	const char *p = line + 2;
	bool help = strncmp(p, "HELP ", 5) == 0;
	char name[128];
	struct family *f;

	if (!help && strncmp(p, "TYPE ", 5) != 0) {
		grammar_error(e, line, "comment is neither HELP nor TYPE");
		return;
	}
	p += 5;
	if (!parse_name(&p, name, sizeof(name), false) || *p++ != ' ') {
		grammar_error(e, line, "bad metric name");
		return;
	}
	f = family_find(e, name);
	if (!f) {
		if (e->nfam == MAX_FAMILIES) {
			grammar_error(e, line, "too many families");
			return;
		}
		f = &e->fam[e->nfam++];
		snprintf(f->name, sizeof(f->name), "%s", name);
	}
	if (f->closed)
		grammar_error(e, line, "family described after its samples");
	if (*cur && *cur != f)
		(*cur)->closed = true;
	*cur = f;
	if (help) {
		if (f->has_help)
			grammar_error(e, line, "second HELP");
		f->has_help = true;
		snprintf(f->help, sizeof(f->help), "%s", p);
		if (!*p)
			grammar_error(e, line, "empty HELP text");
		return;
	}
	if (f->has_type)
		grammar_error(e, line, "second TYPE");
	f->has_type = true;
	snprintf(f->type, sizeof(f->type), "%s", p);
	if (strcmp(p, "counter") && strcmp(p, "gauge") && strcmp(p, "histogram") &&
	    strcmp(p, "summary") && strcmp(p, "untyped"))
		grammar_error(e, line, "unknown TYPE");
}

/* The family a sample belongs to: its own name, or for a histogram
 * NAME_bucket, NAME_sum and NAME_count (NAME_sum, NAME_count for a
 * summary). */
static struct family *sample_family(struct exposition *e, const char *name)
{
	static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
	struct family *f = family_find(e, name);
	size_t n = strlen(name);

	if (f)
		return f;
	for (size_t i = 0; i < 3; i++) {
		size_t sl = strlen(suffixes[i]);
		char base[128];

		if (n <= sl || n - sl >= sizeof(base) ||
		    strcmp(name + n - sl, suffixes[i]) != 0)
			continue;
		memcpy(base, name, n - sl);
		base[n - sl] = 0;
		f = family_find(e, base);
		if (f && (strcmp(f->type, "histogram") == 0 ||
			  (i > 0 && strcmp(f->type, "summary") == 0)))
			return f;
	}
	return NULL;
}

/* NAME[{l="v",...}] VALUE */
static void parse_sample(struct exposition *e, const char *line,
			 struct family **cur)
{
	const char *p = line;
	struct sample *s;
	struct family *f;
	char *end;

	if (e->nsmp == MAX_SAMPLES) {
		grammar_error(e, line, "too many samples");
		return;
	}
	s = &e->smp[e->nsmp];
	memset(s, 0, sizeof(*s));
	if (!parse_name(&p, s->name, sizeof(s->name), false)) {
		grammar_error(e, line, "bad metric name");
		return;
	}
	if (*p == '{') {
		p++;
		while (*p != '}') {
			struct label *l;

			if (s->nlabels == MAX_LABELS) {
				grammar_error(e, line, "too many labels");
				return;
			}
			l = &s->labels[s->nlabels++];
			if (!parse_name(&p, l->name, sizeof(l->name), true) ||
			    *p++ != '=' ||
			    !parse_label_value(&p, l->value, sizeof(l->value))) {
				grammar_error(e, line, "bad label");
				return;
			}
			for (size_t i = 0; i + 1 < s->nlabels; i++)
				if (strcmp(s->labels[i].name, l->name) == 0)
					grammar_error(e, line, "label given twice");
			if (*p == ',')
				p++;
			else if (*p != '}') {
				grammar_error(e, line, "expected , or }");
				return;
			}
		}
		p++;
	}
	if (*p++ != ' ') {
		grammar_error(e, line, "no space before the value");
		return;
	}
	snprintf(s->raw, sizeof(s->raw), "%s", p);
	errno = 0;
	s->value = strtod(p, &end);
	if (end == p || *end || errno) {
		grammar_error(e, line, "value is not a float");
		return;
	}
	f = sample_family(e, s->name);
	if (!f || !f->has_help || !f->has_type)
		grammar_error(e, line, "sample without HELP and TYPE before it");
	else if (f != *cur)
		grammar_error(e, line, "sample away from its family");
	e->nsmp++;
}

static void parse_exposition(struct exposition *e, const char *text,
			     size_t len)
{
	struct family *cur = NULL;
	size_t pos = 0;

	memset(e, 0, sizeof(*e));
	if (len == 0 || text[len - 1] != '\n')
		grammar_error(e, "", "output does not end with a newline");
	if (strlen(text) != len)
		grammar_error(e, "", "NUL byte in the output");
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		char line[1024];

		if (n >= sizeof(line)) {
			grammar_error(e, "", "line too long");
			break;
		}
		memcpy(line, text + pos, n);
		line[n] = 0;
		pos += n + 1;
		if (n == 0)
			grammar_error(e, line, "empty line");
		else if (line[0] == '#')
			parse_comment(e, line, &cur);
		else
			parse_sample(e, line, &cur);
	}
	for (size_t i = 0; i < e->nfam; i++)
		if (!e->fam[i].has_help || !e->fam[i].has_type)
			grammar_error(e, e->fam[i].name, "family without HELP or TYPE");
}

/* The sample of `name` whose labels are exactly `labels`
 * ("k=v,k=v" in order, "" for none); NULL if absent. */
static const struct sample *sample_find(const struct exposition *e,
					const char *name, const char *labels)
{
	for (size_t i = 0; i < e->nsmp; i++) {
		const struct sample *s = &e->smp[i];
		char got[512];
		size_t o = 0;

		if (strcmp(s->name, name) != 0)
			continue;
		got[0] = 0;
		for (size_t j = 0; j < s->nlabels; j++)
			o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%s=%s",
					      j ? "," : "", s->labels[j].name,
					      s->labels[j].value);
		if (strcmp(got, labels) == 0)
			return s;
	}
	return NULL;
}

static size_t sample_count(const struct exposition *e, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < e->nsmp; i++)
		n += strcmp(e->smp[i].name, name) == 0;
	return n;
}

/* The sample must exist and be written as `want` exactly. */
#define CHECK_SAMPLE(e, name, labels, want)                                   \
	do {                                                                  \
		const struct sample *s_ = sample_find(e, name, labels);       \
		CHECK(s_ != NULL);                                            \
		if (s_)                                                       \
			CHECK_STR(s_->raw, want);                             \
		else                                                          \
			fprintf(stderr, "  missing: %s{%s}\n", name, labels); \
	} while (0)

static char *render(struct exposition *e, const struct broker_set *set)
{
	size_t len = 0;
	char *text = metrics_render(set, &len);

	if (!text) {
		fprintf(stderr, "metrics_render failed\n");
		exit(99);
	}
	CHECK_INT(strlen(text), len);
	parse_exposition(e, text, len);
	return text;
}

/* The families README.md documents, with their type and label names. */
static const struct {
	const char *name, *type, *labels;
} documented[] = {
	{ "mqgate_build_info", "gauge", "version" },
	{ "mqgate_clients", "gauge", "protocol" },
	{ "mqgate_connections_total", "counter", "protocol" },
	{ "mqgate_connections_rejected_total", "counter", "protocol" },
	{ "mqgate_messages_out_total", "counter", "protocol" },
	{ "mqgate_bytes_out_total", "counter", "protocol" },
	{ "mqgate_drops_total", "counter", "reason" },
	{ "mqgate_publishes_total", "counter", "result" },
	{ "mqgate_error_replies_total", "counter", "" },
	{ "mqgate_broker_messages_too_large_total", "counter", "" },
	{ "mqgate_messages_in_total", "counter", "broker" },
	{ "mqgate_broker_up", "gauge", "broker,type" },
	{ "mqgate_broker_connects_total", "counter", "broker" },
	{ "mqgate_history_messages", "gauge", "" },
	{ "mqgate_history_bytes", "gauge", "" },
	{ "mqgate_cache_topics", "gauge", "" },
	{ "mqgate_cache_bytes", "gauge", "" },
	{ "mqgate_subscriptions", "gauge", "" },
	{ "mqgate_queued_messages", "gauge", "" },
	{ "mqgate_queued_messages_max", "gauge", "" },
	{ "mqgate_bytes_in_total", "counter", "broker" },
	{ "mqgate_delivery_latency_seconds", "histogram", "" },
};

/* Label names of each sample name, where they differ from its family's
 * (a histogram's buckets carry `le`). */
static const struct {
	const char *name, *labels;
} sample_labels[] = {
	{ "mqgate_delivery_latency_seconds_bucket", "le" },
	{ "mqgate_delivery_latency_seconds_sum", "" },
	{ "mqgate_delivery_latency_seconds_count", "" },
};

#define NDOCUMENTED (sizeof(documented) / sizeof(documented[0]))

static void check_families(const struct exposition *e)
{
	CHECK_INT(e->nfam, NDOCUMENTED);
	for (size_t i = 0; i < NDOCUMENTED; i++) {
		const struct family *f = family_find((struct exposition *)e,
						     documented[i].name);

		CHECK(f != NULL);
		if (!f) {
			fprintf(stderr, "  missing family %s\n", documented[i].name);
			continue;
		}
		CHECK_STR(f->type, documented[i].type);
		/* Prometheus naming: counters, and only they, end in _total. */
		{
			size_t n = strlen(f->name);
			bool total = n > 6 && strcmp(f->name + n - 6, "_total") == 0;

			CHECK_INT(total, strcmp(f->type, "counter") == 0);
		}
	}
	/* Every sample carries exactly its family's documented label names. */
	for (size_t i = 0; i < e->nsmp; i++) {
		const struct sample *s = &e->smp[i];
		char names[128];
		size_t o = 0;

		names[0] = 0;
		for (size_t j = 0; j < s->nlabels; j++)
			o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s",
					      j ? "," : "", s->labels[j].name);
		for (size_t k = 0; k < NDOCUMENTED; k++)
			if (strcmp(documented[k].name, s->name) == 0)
				CHECK_STR(names, documented[k].labels);
		for (size_t k = 0; k < sizeof(sample_labels) / sizeof(sample_labels[0]); k++)
			if (strcmp(sample_labels[k].name, s->name) == 0)
				CHECK_STR(names, sample_labels[k].labels);
	}
}

/* A histogram's buckets: `le` increasing and ending at +Inf, counts
 * cumulative, the +Inf bucket equal to _count. Returns the bucket count. */
static size_t check_histogram(const struct exposition *e, const char *name)
{
	char bucket[160], count[160];
	double last_le = -1.0, last_v = 0.0;
	const struct sample *c;
	size_t n = 0;
	bool inf = false;

	snprintf(bucket, sizeof(bucket), "%s_bucket", name);
	snprintf(count, sizeof(count), "%s_count", name);
	for (size_t i = 0; i < e->nsmp; i++) {
		const struct sample *s = &e->smp[i];
		char *end;
		double le;

		if (strcmp(s->name, bucket) != 0)
			continue;
		n++;
		CHECK(!inf);                  /* nothing after +Inf */
		CHECK_INT(s->nlabels, 1);
		le = strtod(s->labels[0].value, &end);
		CHECK(*end == 0 && end != s->labels[0].value);
		CHECK(le > last_le);
		CHECK(s->value >= last_v);
		inf = strcmp(s->labels[0].value, "+Inf") == 0;
		last_le = le;
		last_v = s->value;
	}
	CHECK(inf);
	c = sample_find(e, count, "");
	CHECK(c != NULL);
	if (c)
		CHECK(c->value == last_v);
	CHECK(sample_find(e, bucket, "") == NULL);
	return n;
}

/* All zero, no brokers: valid, every family described, one sample for
 * each unlabelled family, and the per-broker families without samples. */
static void test_empty(void)
{
	struct exposition e;
	char *text;

	memset(&metrics, 0, sizeof(metrics));
	text = render(&e, NULL);
	CHECK_INT(e.errors, 0);
	check_families(&e);
	CHECK_SAMPLE(&e, "mqgate_build_info", "version=" PACKAGE_VERSION, "1");
	CHECK_SAMPLE(&e, "mqgate_clients", "protocol=ws", "0");
	CHECK_SAMPLE(&e, "mqgate_subscriptions", "", "0");
	CHECK_INT(check_histogram(&e, "mqgate_delivery_latency_seconds"),
		  METRICS_NLAT);
	CHECK_SAMPLE(&e, "mqgate_delivery_latency_seconds_bucket", "le=+Inf", "0");
	CHECK_SAMPLE(&e, "mqgate_delivery_latency_seconds_count", "", "0");
	CHECK_INT(sample_count(&e, "mqgate_bytes_in_total"), 0);
	CHECK_INT(sample_count(&e, "mqgate_messages_in_total"), 0);
	CHECK_INT(sample_count(&e, "mqgate_broker_up"), 0);
	CHECK_INT(sample_count(&e, "mqgate_broker_connects_total"), 0);
	free(text);

	/* An empty broker set renders the same. */
	{
		struct broker_set none = { NULL, 0 };
		char *again = render(&e, &none);

		CHECK_INT(e.errors, 0);
		CHECK_INT(sample_count(&e, "mqgate_broker_up"), 0);
		free(again);
	}
}

/* Every counter shows what the global struct holds. */
static void test_values(void)
{
	static const char *const protos[] = { "ws", "sse" };
	static const char *const drops[] = { "queue_full", "conflated",
					     "slow_disconnect" };
	struct exposition e;
	char *text, want[64], labels[64];

	memset(&metrics, 0, sizeof(metrics));
	for (int i = 0; i < METRICS_NPROTO; i++) {
		metrics.clients[i] = 10 + (uint64_t)i;
		metrics.connections_total[i] = 20 + (uint64_t)i;
		metrics.rejected_total[i] = 30 + (uint64_t)i;
		metrics.messages_out[i] = 40 + (uint64_t)i;
		metrics.bytes_out[i] = 5000000000ULL + (uint64_t)i; /* > 32 bits */
	}
	for (int i = 0; i < METRICS_NDROP; i++)
		metrics.drops[i] = 60 + (uint64_t)i;
	for (int i = 0; i < METRICS_NPUB; i++)
		metrics.publishes[i] = 70 + (uint64_t)i;
	metrics.bad_requests = 81;
	metrics.messages_in = 82;
	metrics.messages_too_large = 83;
	metrics.history_msgs = 84;
	metrics.history_bytes = 85;
	metrics.cache_topics = 86;
	metrics.cache_bytes = 87;
	metrics.subscriptions = 88;
	metrics.queued_msgs = 89;
	metrics.queued_max = 90;

	text = render(&e, NULL);
	CHECK_INT(e.errors, 0);
	check_families(&e);
	for (int i = 0; i < METRICS_NPROTO; i++) {
		snprintf(labels, sizeof(labels), "protocol=%s", protos[i]);
		snprintf(want, sizeof(want), "%d", 10 + i);
		CHECK_SAMPLE(&e, "mqgate_clients", labels, want);
		snprintf(want, sizeof(want), "%d", 20 + i);
		CHECK_SAMPLE(&e, "mqgate_connections_total", labels, want);
		snprintf(want, sizeof(want), "%d", 30 + i);
		CHECK_SAMPLE(&e, "mqgate_connections_rejected_total", labels, want);
		snprintf(want, sizeof(want), "%d", 40 + i);
		CHECK_SAMPLE(&e, "mqgate_messages_out_total", labels, want);
		snprintf(want, sizeof(want), "%llu", 5000000000ULL + (unsigned)i);
		CHECK_SAMPLE(&e, "mqgate_bytes_out_total", labels, want);
	}
	CHECK_INT(sample_count(&e, "mqgate_clients"), METRICS_NPROTO);
	for (int i = 0; i < METRICS_NDROP; i++) {
		snprintf(labels, sizeof(labels), "reason=%s", drops[i]);
		snprintf(want, sizeof(want), "%d", 60 + i);
		CHECK_SAMPLE(&e, "mqgate_drops_total", labels, want);
	}
	CHECK_INT(sample_count(&e, "mqgate_drops_total"), METRICS_NDROP);
	/* results are the protocol's error code names (proto.h's order) */
	for (int i = 0; i < METRICS_NPUB; i++) {
		CHECK_STR(metrics_pub_names[i], proto_code_name((enum proto_code)i));
		snprintf(labels, sizeof(labels), "result=%s",
			 proto_code_name((enum proto_code)i));
		snprintf(want, sizeof(want), "%d", 70 + i);
		CHECK_SAMPLE(&e, "mqgate_publishes_total", labels, want);
	}
	CHECK_INT(sample_count(&e, "mqgate_publishes_total"), METRICS_NPUB);
	CHECK_SAMPLE(&e, "mqgate_error_replies_total", "", "81");
	CHECK_SAMPLE(&e, "mqgate_broker_messages_too_large_total", "", "83");
	CHECK_SAMPLE(&e, "mqgate_history_messages", "", "84");
	CHECK_SAMPLE(&e, "mqgate_history_bytes", "", "85");
	CHECK_SAMPLE(&e, "mqgate_cache_topics", "", "86");
	CHECK_SAMPLE(&e, "mqgate_cache_bytes", "", "87");
	CHECK_SAMPLE(&e, "mqgate_subscriptions", "", "88");
	CHECK_SAMPLE(&e, "mqgate_queued_messages", "", "89");
	CHECK_SAMPLE(&e, "mqgate_queued_messages_max", "", "90");
	free(text);

	/* The largest counter value is written in full. */
	metrics.subscriptions = UINT64_MAX;
	text = render(&e, NULL);
	CHECK_INT(e.errors, 0);
	CHECK_SAMPLE(&e, "mqgate_subscriptions", "", "18446744073709551615");
	free(text);
	memset(&metrics, 0, sizeof(metrics));
}

/* Delivery latency: each observation lands in the first bucket whose
 * bound it does not exceed; buckets render cumulatively, in seconds. */
static void test_latency(void)
{
	static const struct {
		const char *le, *want;
	} buckets[] = {
		{ "0.0001", "2" },    /* 0 (from -5) and 100 us */
		{ "0.00025", "3" },   /* 101 us */
		{ "0.0005", "3" },
		{ "0.001", "4" },     /* 1 ms */
		{ "0.0025", "4" },
		{ "0.005", "4" },
		{ "0.01", "4" },
		{ "0.025", "4" },
		{ "0.05", "4" },
		{ "0.1", "4" },
		{ "0.25", "5" },      /* 250 ms */
		{ "0.5", "5" },
		{ "1", "6" },         /* 1 s */
		{ "+Inf", "7" },      /* 3 s */
	};
	struct exposition e;
	char *text, labels[32];

	memset(&metrics, 0, sizeof(metrics));
	metrics_observe_latency(-5);
	metrics_observe_latency(100);
	metrics_observe_latency(101);
	metrics_observe_latency(1000);
	metrics_observe_latency(250000);
	metrics_observe_latency(1000000);
	metrics_observe_latency(3000000);
	text = render(&e, NULL);
	CHECK_INT(e.errors, 0);
	CHECK_INT(check_histogram(&e, "mqgate_delivery_latency_seconds"),
		  sizeof(buckets) / sizeof(buckets[0]));
	for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
		snprintf(labels, sizeof(labels), "le=%s", buckets[i].le);
		CHECK_SAMPLE(&e, "mqgate_delivery_latency_seconds_bucket", labels,
			     buckets[i].want);
	}
	CHECK_SAMPLE(&e, "mqgate_delivery_latency_seconds_count", "", "7");
	{
		const struct sample *sum = sample_find(&e, "mqgate_delivery_latency_seconds_sum", "");

		CHECK(sum != NULL);
		/* 0 + 100 + 101 + 1000 + 250000 + 1000000 + 3000000 us */
		if (sum)
			CHECK(sum->value > 4.251200 && sum->value < 4.251202);
	}
	free(text);
	memset(&metrics, 0, sizeof(metrics));
}

/* Per-broker families: one sample per broker, its state and counters. */
static void test_brokers(void)
{
	struct broker home = {
		.name = (char *)"home", .type = "mqtt",
		.state = MQGATE_STATE_CONNECTED, .messages_in = 12, .connects = 3,
		.bytes_in = 1200,
	};
	struct broker plant = {
		.name = (char *)"plant", .type = "amqp",
		.state = MQGATE_STATE_CONNECTING, .messages_in = 0, .connects = 0,
	};
	struct broker lost = {
		.name = (char *)"lost", .type = "mqtt",
		.state = MQGATE_STATE_DOWN, .messages_in = 7, .connects = 1,
	};
	struct broker *v[] = { &home, &plant, &lost };
	struct broker_set set = { v, 3 };
	struct exposition e;
	char *text;

	memset(&metrics, 0, sizeof(metrics));
	text = render(&e, &set);
	CHECK_INT(e.errors, 0);
	check_families(&e);
	CHECK_SAMPLE(&e, "mqgate_messages_in_total", "broker=home", "12");
	CHECK_SAMPLE(&e, "mqgate_messages_in_total", "broker=plant", "0");
	CHECK_SAMPLE(&e, "mqgate_messages_in_total", "broker=lost", "7");
	CHECK_SAMPLE(&e, "mqgate_broker_up", "broker=home,type=mqtt", "1");
	CHECK_SAMPLE(&e, "mqgate_broker_up", "broker=plant,type=amqp", "0");
	CHECK_SAMPLE(&e, "mqgate_broker_up", "broker=lost,type=mqtt", "0");
	CHECK_SAMPLE(&e, "mqgate_broker_connects_total", "broker=home", "3");
	CHECK_SAMPLE(&e, "mqgate_broker_connects_total", "broker=lost", "1");
	CHECK_INT(sample_count(&e, "mqgate_broker_up"), 3);
	CHECK_INT(sample_count(&e, "mqgate_messages_in_total"), 3);
	CHECK_INT(sample_count(&e, "mqgate_broker_connects_total"), 3);
	CHECK_SAMPLE(&e, "mqgate_bytes_in_total", "broker=home", "1200");
	CHECK_SAMPLE(&e, "mqgate_bytes_in_total", "broker=plant", "0");
	CHECK_INT(sample_count(&e, "mqgate_bytes_in_total"), 3);
	free(text);

	/* A state change shows at the next rendering. */
	plant.state = MQGATE_STATE_CONNECTED;
	home.state = MQGATE_STATE_DOWN;
	text = render(&e, &set);
	CHECK_SAMPLE(&e, "mqgate_broker_up", "broker=plant,type=amqp", "1");
	CHECK_SAMPLE(&e, "mqgate_broker_up", "broker=home,type=mqtt", "0");
	free(text);
}

/* Label values are escaped as the text format requires: backslash,
 * double quote and line feed. conf.c restricts broker names, but the
 * renderer must not depend on that to stay parseable. */
static void test_escaping(void)
{
	struct broker odd = {
		.name = (char *)"a\"b\\c\nd", .type = "x\"y",
		.state = MQGATE_STATE_CONNECTED, .messages_in = 5,
	};
	struct broker *v[] = { &odd };
	struct broker_set set = { v, 1 };
	struct exposition e;
	char *text;

	memset(&metrics, 0, sizeof(metrics));
	text = render(&e, &set);
	CHECK_INT(e.errors, 0);
	CHECK(strstr(text, "mqgate_messages_in_total{broker=\"a\\\"b\\\\c\\nd\"} 5\n") != NULL);
	CHECK_SAMPLE(&e, "mqgate_messages_in_total", "broker=a\"b\\c\nd", "5");
	CHECK_SAMPLE(&e, "mqgate_broker_up", "broker=a\"b\\c\nd,type=x\"y", "1");
	free(text);
}

/* The parser itself refuses what the format forbids, so a clean parse
 * above means something. */
static void test_parser(void)
{
	static const char *const bad[] = {
		"# HELP m x\n# TYPE m counter\nm{l=\"v} 1\n",      /* open quote */
		"# HELP m x\n# TYPE m counter\nm{l=\"a\"b\"} 1\n", /* raw quote */
		"# HELP m x\n# TYPE m counter\nm{l=\"\\q\"} 1\n",  /* bad escape */
		"# HELP m x\n# TYPE m counter\nm 1x\n",            /* not a float */
		"# HELP m x\n# TYPE m counter\n1m 1\n",            /* name */
		"# HELP m x\n# TYPE m counter\nm{1l=\"v\"} 1\n",   /* label name */
		"# HELP m x\n# TYPE m counter\nm{l=\"v\",l=\"w\"} 1\n",
		"m 1\n",                                           /* no HELP/TYPE */
		"# HELP m x\n# TYPE m counter\nm 1\n# TYPE m counter\n",
		("# HELP m x\n# TYPE m counter\n# HELP n y\n# TYPE n gauge\n"
		 "n 1\nm 2\n"),                                    /* split family */
		"# HELP m x\n# TYPE m counter\nm 1",               /* no newline */
		"# HELP m x\n# TYPE m kounter\nm 1\n",
	};
	static const char good[] = "# HELP m x y\n# TYPE m gauge\n"
				   "m{a=\"\\\"\\\\\\n\",b=\"\"} -1.5e3\nm 2\n";
	struct exposition e;

	grammar_quiet = true;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		parse_exposition(&e, bad[i], strlen(bad[i]));
		CHECK(e.errors > 0);
		if (!e.errors)
			fprintf(stderr, "  accepted: %s\n", bad[i]);
	}
	grammar_quiet = false;
	parse_exposition(&e, good, strlen(good));
	CHECK_INT(e.errors, 0);
	CHECK_INT(e.nsmp, 2);
	CHECK_STR(e.smp[0].labels[0].value, "\"\\\n");
	CHECK(e.smp[0].value == -1500.0);
}

int main(void)
{
	test_parser();
	test_empty();
	test_values();
	test_latency();
	test_brokers();
	test_escaping();
	return check_summary("test_metrics");
}
