/*
 * metrics.c - Prometheus text rendering of struct metrics and the brokers'
 * state. Owns the global counters.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"
#include "config.h"

struct metrics metrics;

static const char *const proto_names[METRICS_NPROTO] = { "ws", "sse" };
static const char *const drop_names[METRICS_NDROP] = {
	"queue_full", "conflated", "slow_disconnect"
};
const char *const metrics_pub_names[METRICS_NPUB] = {
	"ok", "bad_request", "forbidden", "unauthorized",
	"too_large", "rate_limited", "unavailable", "internal",
};

static const int64_t latency_bounds_us[METRICS_NLAT - 1] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
	250000, 500000, 1000000,
};

void metrics_observe_latency(int64_t us)
{
	int i = 0;

	if (us < 0)
		us = 0;
	while (i < METRICS_NLAT - 1 && us > latency_bounds_us[i])
		i++;
	metrics.latency_buckets[i]++;
	metrics.latency_count++;
	metrics.latency_sum_us += (uint64_t)us;
}

/* Writes a label value escaped as the text format requires (backslash,
 * double quote, line feed), so any name keeps the output parseable. */
static void metrics_label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void metrics_head(FILE *f, const char *name, const char *type,
			 const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_per_proto(FILE *f, const char *name, const char *type,
			      const char *help, const uint64_t *v)
{
	metrics_head(f, name, type, help);
	for (int i = 0; i < METRICS_NPROTO; i++)
		fprintf(f, "%s{protocol=\"%s\"} %llu\n", name, proto_names[i],
			(unsigned long long)v[i]);
}

static void metrics_one(FILE *f, const char *name, const char *type,
			const char *help, uint64_t v)
{
	metrics_head(f, name, type, help);
	fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

static void metrics_latency(FILE *f)
{
	static const char name[] = "mqgate_delivery_latency_seconds";
	uint64_t cum = 0;

	metrics_head(f, name, "histogram",
		     "Time from a message's arrival from the broker to its "
		     "write to a client (live deliveries).");
	for (int i = 0; i < METRICS_NLAT; i++) {
		cum += metrics.latency_buckets[i];
		if (i < METRICS_NLAT - 1)
			fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name,
				(double)latency_bounds_us[i] / 1e6,
				(unsigned long long)cum);
		else
			fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name,
				(unsigned long long)cum);
	}
	fprintf(f, "%s_sum %.6f\n%s_count %llu\n", name,
		(double)metrics.latency_sum_us / 1e6, name,
		(unsigned long long)metrics.latency_count);
}

static uint64_t broker_messages_in(const struct broker *b)
{
	return b->messages_in;
}

static uint64_t broker_bytes_in(const struct broker *b)
{
	return b->bytes_in;
}

static uint64_t broker_connects(const struct broker *b)
{
	return b->connects;
}

static uint64_t broker_up(const struct broker *b)
{
	return b->state == MQGATE_STATE_CONNECTED;
}

/* One family with a sample per broker, labelled by name (and type). */
static void metrics_per_broker(FILE *f, const struct broker_set *brokers,
			       const char *name, const char *type,
			       const char *help,
			       uint64_t (*value)(const struct broker *),
			       bool type_label)
{
	metrics_head(f, name, type, help);
	for (size_t i = 0; brokers && i < brokers->n; i++) {
		const struct broker *b = brokers->v[i];

		fprintf(f, "%s{broker=\"", name);
		metrics_label(f, b->name);
		if (type_label) {
			fputs("\",type=\"", f);
			metrics_label(f, b->type);
		}
		fprintf(f, "\"} %llu\n", (unsigned long long)value(b));
	}
}

char *metrics_render(const struct broker_set *brokers, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (!f)
		return NULL;
	metrics_head(f, "mqgate_build_info", "gauge", "Version of this mqgate.");
	fputs("mqgate_build_info{version=\"", f);
	metrics_label(f, PACKAGE_VERSION);
	fputs("\"} 1\n", f);
	metrics_per_proto(f, "mqgate_clients", "gauge",
			  "Connected browser clients.", metrics.clients);
	metrics_per_proto(f, "mqgate_connections_total", "counter",
			  "Client connections accepted.",
			  metrics.connections_total);
	metrics_per_proto(f, "mqgate_connections_rejected_total", "counter",
			  "Client connections refused (auth, origin, limits).",
			  metrics.rejected_total);
	metrics_per_proto(f, "mqgate_messages_out_total", "counter",
			  "Messages delivered to clients.", metrics.messages_out);
	metrics_per_proto(f, "mqgate_bytes_out_total", "counter",
			  "Bytes written to clients.", metrics.bytes_out);
	metrics_head(f, "mqgate_drops_total", "counter",
		     "Messages not delivered to a client, by reason.");
	for (int i = 0; i < METRICS_NDROP; i++)
		fprintf(f, "mqgate_drops_total{reason=\"%s\"} %llu\n",
			drop_names[i], (unsigned long long)metrics.drops[i]);
	metrics_head(f, "mqgate_publishes_total", "counter",
		     "Publishes from clients, by result.");
	for (int i = 0; i < METRICS_NPUB; i++)
		fprintf(f, "mqgate_publishes_total{result=\"%s\"} %llu\n",
			metrics_pub_names[i],
			(unsigned long long)metrics.publishes[i]);
	metrics_one(f, "mqgate_error_replies_total", "counter",
		    "Error replies sent to clients.", metrics.bad_requests);
	metrics_one(f, "mqgate_broker_messages_too_large_total", "counter",
		    "Broker messages over max_message, not relayed.",
		    metrics.messages_too_large);
	metrics_per_broker(f, brokers, "mqgate_messages_in_total", "counter",
			   "Messages received from each broker.",
			   broker_messages_in, false);
	metrics_per_broker(f, brokers, "mqgate_broker_up", "gauge",
			   "1 when the broker connection is up.", broker_up,
			   true);
	metrics_per_broker(f, brokers, "mqgate_broker_connects_total",
			   "counter",
			   "Successful broker connections (first and reconnects).",
			   broker_connects, false);
	metrics_one(f, "mqgate_history_messages", "gauge",
		    "Messages held for resume.", metrics.history_msgs);
	metrics_one(f, "mqgate_history_bytes", "gauge",
		    "Bytes held for resume.", metrics.history_bytes);
	metrics_one(f, "mqgate_cache_topics", "gauge",
		    "Topics in the last-value cache.", metrics.cache_topics);
	metrics_one(f, "mqgate_cache_bytes", "gauge",
		    "Bytes in the last-value cache.", metrics.cache_bytes);
	metrics_one(f, "mqgate_subscriptions", "gauge",
		    "Client subscriptions.", metrics.subscriptions);
	metrics_one(f, "mqgate_queued_messages", "gauge",
		    "Messages waiting in client queues, all clients.",
		    metrics.queued_msgs);
	metrics_one(f, "mqgate_queued_messages_max", "gauge",
		    "Messages waiting in the longest client queue.",
		    metrics.queued_max);
	metrics_per_broker(f, brokers, "mqgate_bytes_in_total", "counter",
			   "Payload bytes received from each broker.",
			   broker_bytes_in, false);
	metrics_latency(f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
