/*
 * loopback.c - the "loopback" backend: a broker inside the process, for
 * tests of the core that need no network. It is connected from start();
 * a publish is acknowledged after `delay` and, when its topic is inside an
 * `in`/`both` topic line, comes back as a message (retain flag kept, QoS
 * lowered to the line's). `fail = unavailable` makes every publish fail
 * at once with -ENOTCONN, `fail = rejected` completes each one REJECTED
 * (and loops nothing back).
 *
 * One worker thread per instance completes publishes in order from a
 * bounded queue (LOOPBACK_MAX_QUEUE; over that publish() returns -EBUSY).
 * The instance owns the queue and its copies of topics and payloads.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mqgate/backend.h"
#include "topic.h"

#define LOOPBACK_MAX_QUEUE 10000
#define LOOPBACK_MAX_DELAY_MS (3600 * 1000)

enum loopback_key {
	LOOPBACK_KEY_DELAY,
	LOOPBACK_KEY_FAIL,
};

static const struct mqgate_key loopback_keys[] = {
	[LOOPBACK_KEY_DELAY] = { "delay", MQGATE_KEY_DURATION, "0", 0,
				 LOOPBACK_MAX_DELAY_MS,
				 "time before a publish is acknowledged and "
				 "looped back" },
	[LOOPBACK_KEY_FAIL] = { "fail", MQGATE_KEY_STRING, "", 0, 0,
				"empty, 'unavailable' (publishes fail at once) "
				"or 'rejected' (the broker refuses them)" },
	{ NULL, MQGATE_KEY_STRING, NULL, 0, 0, NULL },
};

enum loopback_fail {
	LOOPBACK_FAIL_NONE,
	LOOPBACK_FAIL_UNAVAILABLE,
	LOOPBACK_FAIL_REJECTED,
};

struct loopback_job {
	struct loopback_job *next;
	int64_t due_ms;          /* monotonic */
	uint64_t token;
	int qos;
	bool retain;
	size_t len;
	char *topic;             /* points into data, after the payload */
	unsigned char data[];
};

struct loopback {
	const struct mqgate_host *host;
	struct mqgate_broker *broker;
	const struct mqgate_broker_conf *conf;
	int64_t delay_ms;
	enum loopback_fail fail;
	pthread_t thread;
	bool started;

	pthread_mutex_t lock;
	pthread_cond_t wake;     /* a job was queued, or stop */
	/* under lock */
	struct loopback_job *head, *tail;
	size_t queued;
	bool stop;
};

static int64_t loopback_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *loopback_str(const struct mqgate_value *v)
{
	return v->set && v->str && v->str[0] ? v->str : NULL;
}

static int loopback_parse_fail(const char *s, enum loopback_fail *out)
{
	if (!s)
		*out = LOOPBACK_FAIL_NONE;
	else if (strcmp(s, "unavailable") == 0)
		*out = LOOPBACK_FAIL_UNAVAILABLE;
	else if (strcmp(s, "rejected") == 0)
		*out = LOOPBACK_FAIL_REJECTED;
	else
		return -EINVAL;
	return 0;
}

/* The highest QoS of the in/both lines matching topic, or -1. */
static int loopback_match_qos(const struct mqgate_broker_conf *conf,
			      const char *topic)
{
	int best = -1;

	for (size_t i = 0; i < conf->ntopics; i++) {
		const struct mqgate_topic *t = &conf->topics[i];

		if ((t->dir & MQGATE_DIR_IN) && t->qos > best &&
		    topic_matches(t->filter, topic))
			best = t->qos;
	}
	return best;
}

static int loopback_check(const struct mqgate_broker_conf *conf, char *err,
			  size_t errlen)
{
	enum loopback_fail fail;

	if (loopback_parse_fail(loopback_str(&conf->values[LOOPBACK_KEY_FAIL]),
				&fail) < 0) {
		snprintf(err, errlen, "fail must be empty, 'unavailable' or "
			 "'rejected', not '%.64s'",
			 conf->values[LOOPBACK_KEY_FAIL].str);
		return LOOPBACK_KEY_FAIL;
	}
	return -2;
}

static void *loopback_create(const struct mqgate_host *host,
			     struct mqgate_broker *broker,
			     const struct mqgate_broker_conf *conf, char *err,
			     size_t errlen)
{
	struct loopback *lb;
	pthread_condattr_t ca;

	if (loopback_check(conf, err, errlen) != -2)
		return NULL;
	lb = calloc(1, sizeof(*lb));
	if (!lb) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	lb->host = host;
	lb->broker = broker;
	lb->conf = conf;
	if (conf->values[LOOPBACK_KEY_DELAY].set)
		lb->delay_ms = conf->values[LOOPBACK_KEY_DELAY].num;
	loopback_parse_fail(loopback_str(&conf->values[LOOPBACK_KEY_FAIL]),
			    &lb->fail);
	pthread_mutex_init(&lb->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&lb->wake, &ca);
	pthread_condattr_destroy(&ca);
	return lb;
}

/* Acknowledges one job and loops it back. Called without the lock. */
static void loopback_complete(struct loopback *lb, struct loopback_job *j)
{
	struct mqgate_message m;
	int qos, r;

	if (lb->fail == LOOPBACK_FAIL_REJECTED) {
		lb->host->publish_done(lb->broker, j->token, MQGATE_PUB_REJECTED,
				       "refused by the loopback backend "
				       "(fail = rejected)");
		return;
	}
	lb->host->publish_done(lb->broker, j->token, MQGATE_PUB_OK, NULL);
	qos = loopback_match_qos(lb->conf, j->topic);
	if (qos < 0)
		return;
	m = (struct mqgate_message){
		.topic = j->topic,
		.payload = j->data,
		.payload_len = j->len,
		.qos = j->qos < qos ? j->qos : qos,
		.retain = j->retain,
		.ts_ms = 0,
	};
	r = lb->host->deliver(lb->broker, &m);
	if (r < 0 && r != -ESHUTDOWN)
		lb->host->log(lb->broker, MQGATE_LOG_WARNING,
			      "message on %s (%zu bytes) not delivered: %s",
			      j->topic, j->len, strerror(-r));
}

static void *loopback_run(void *arg)
{
	struct loopback *lb = arg;
	struct loopback_job *j;
	struct timespec ts;
	int64_t now;

	pthread_mutex_lock(&lb->lock);
	while (!lb->stop) {
		if (!lb->head) {
			pthread_cond_wait(&lb->wake, &lb->lock);
			continue;
		}
		now = loopback_now_ms();
		if (lb->head->due_ms > now) {
			ts.tv_sec = (time_t)(lb->head->due_ms / 1000);
			ts.tv_nsec = (long)(lb->head->due_ms % 1000) * 1000000L;
			pthread_cond_timedwait(&lb->wake, &lb->lock, &ts);
			continue;
		}
		j = lb->head;
		lb->head = j->next;
		if (!lb->head)
			lb->tail = NULL;
		lb->queued--;
		pthread_mutex_unlock(&lb->lock);
		loopback_complete(lb, j);
		free(j);
		pthread_mutex_lock(&lb->lock);
	}
	pthread_mutex_unlock(&lb->lock);
	return NULL;
}

static int loopback_start(void *instance)
{
	struct loopback *lb = instance;
	int r;

	if (lb->started)
		return -EALREADY;
	r = pthread_create(&lb->thread, NULL, loopback_run, lb);
	if (r)
		return -r;
	lb->started = true;
	lb->host->log(lb->broker, MQGATE_LOG_INFO,
		      "loopback backend up (delay %lld ms%s%s)",
		      (long long)lb->delay_ms,
		      lb->fail == LOOPBACK_FAIL_NONE ? "" : ", fail = ",
		      lb->fail == LOOPBACK_FAIL_UNAVAILABLE ? "unavailable" :
		      lb->fail == LOOPBACK_FAIL_REJECTED ? "rejected" : "");
	lb->host->set_state(lb->broker, MQGATE_STATE_CONNECTED, NULL);
	return 0;
}

static int loopback_publish(void *instance, const char *topic,
			    const void *payload, size_t len, int qos,
			    bool retain, uint64_t token)
{
	struct loopback *lb = instance;
	struct loopback_job *j;
	size_t tlen;

	if (!topic || (len && !payload) || qos < 0 || qos > 2)
		return -EINVAL;
	if (lb->fail == LOOPBACK_FAIL_UNAVAILABLE || !lb->started)
		return -ENOTCONN;
	tlen = strlen(topic);
	if (len > SIZE_MAX - sizeof(*j) - tlen - 1)
		return -EMSGSIZE;
	pthread_mutex_lock(&lb->lock);
	if (lb->stop) {
		pthread_mutex_unlock(&lb->lock);
		return -ENOTCONN;
	}
	if (lb->queued >= LOOPBACK_MAX_QUEUE) {
		pthread_mutex_unlock(&lb->lock);
		return -EBUSY;
	}
	j = malloc(sizeof(*j) + len + tlen + 1);
	if (!j) {
		pthread_mutex_unlock(&lb->lock);
		return -ENOMEM;
	}
	j->next = NULL;
	j->due_ms = loopback_now_ms() + lb->delay_ms;
	j->token = token;
	j->qos = qos;
	j->retain = retain;
	j->len = len;
	if (len)
		memcpy(j->data, payload, len);
	j->topic = (char *)j->data + len;
	memcpy(j->topic, topic, tlen + 1);
	if (lb->tail)
		lb->tail->next = j;
	else
		lb->head = j;
	lb->tail = j;
	lb->queued++;
	pthread_cond_signal(&lb->wake);
	pthread_mutex_unlock(&lb->lock);
	return 0;
}

static void loopback_destroy(void *instance)
{
	struct loopback *lb = instance;
	struct loopback_job *j, *next;

	if (!lb)
		return;
	pthread_mutex_lock(&lb->lock);
	lb->stop = true;
	pthread_cond_broadcast(&lb->wake);
	pthread_mutex_unlock(&lb->lock);
	if (lb->started)
		pthread_join(lb->thread, NULL);
	for (j = lb->head; j; j = next) {
		next = j->next;
		lb->host->publish_done(lb->broker, j->token,
				       MQGATE_PUB_UNAVAILABLE,
				       "loopback backend stopped");
		free(j);
	}
	pthread_cond_destroy(&lb->wake);
	pthread_mutex_destroy(&lb->lock);
	free(lb);
}

__attribute__((visibility("default")))
const struct mqgate_backend mqgate_backend = {
	.abi = MQGATE_BACKEND_ABI,
	.size = sizeof(struct mqgate_backend),
	.name = "loopback",
	.version = "1",
	.keys = loopback_keys,
	.check = loopback_check,
	.create = loopback_create,
	.start = loopback_start,
	.publish = loopback_publish,
	.destroy = loopback_destroy,
};
