/*
 * metrics.h - the daemon's counters and gauges, rendered in Prometheus
 * text format for GET /metrics. Loop thread only: plain integers.
 */
#ifndef MQGATE_METRICS_H
#define MQGATE_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct broker_set;

enum metrics_proto { METRICS_WS, METRICS_SSE, METRICS_NPROTO };

enum metrics_drop {
	METRICS_DROP_QUEUE_FULL,     /* drop_oldest evicted a message */
	METRICS_DROP_CONFLATED,      /* conflate replaced an older value */
	METRICS_DROP_SLOW_DISCONNECT,/* a client closed for being slow */
	METRICS_NDROP
};

/* Publish results, in PROTOCOL.md error-code terms. */
enum metrics_pub {
	METRICS_PUB_OK,
	METRICS_PUB_BAD_REQUEST,
	METRICS_PUB_FORBIDDEN,
	METRICS_PUB_UNAUTHORIZED,
	METRICS_PUB_TOO_LARGE,
	METRICS_PUB_RATE_LIMITED,
	METRICS_PUB_UNAVAILABLE,
	METRICS_PUB_INTERNAL,
	METRICS_NPUB
};

/* Delivery latency buckets (upper bounds, microseconds), +Inf last. */
#define METRICS_NLAT 14

struct metrics {
	uint64_t clients[METRICS_NPROTO];          /* gauge */
	uint64_t connections_total[METRICS_NPROTO];
	uint64_t rejected_total[METRICS_NPROTO];   /* refused at the door */
	uint64_t messages_out[METRICS_NPROTO];
	uint64_t bytes_out[METRICS_NPROTO];
	uint64_t drops[METRICS_NDROP];
	uint64_t publishes[METRICS_NPUB];
	uint64_t bad_requests;                     /* error replies sent */
	uint64_t messages_in;                      /* all brokers */
	uint64_t messages_too_large;               /* from brokers, dropped */
	uint64_t history_msgs, history_bytes;      /* gauges, set on render */
	uint64_t cache_topics, cache_bytes;
	uint64_t subscriptions;                    /* gauge */
	uint64_t queued_msgs, queued_max;          /* gauges, set on render */
	/* broker receive -> client write, live deliveries only */
	uint64_t latency_buckets[METRICS_NLAT];    /* not cumulative */
	uint64_t latency_count;
	uint64_t latency_sum_us;
};

extern struct metrics metrics;

/* Counts one live delivery written `us` microseconds after arrival. */
void metrics_observe_latency(int64_t us);

/* Renders every metric into a malloc'd buffer; NULL on ENOMEM. */
char *metrics_render(const struct broker_set *brokers, size_t *len);

extern const char *const metrics_pub_names[METRICS_NPUB];

#endif
