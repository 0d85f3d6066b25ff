/*
 * fuzz_request.c - a browser's WebSocket frame (or POST /publish body)
 * through the request path that does not need a connection: the strict
 * request parser, topic validation of each filter and of a publish topic,
 * and payload decoding (JSON, string, base64). Aborts when an accepted
 * request breaks an invariant.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "payload.h"
#include "topic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_topics(const cJSON *topics)
{
	const cJSON *t;

	cJSON_ArrayForEach(t, topics) {
		if (!cJSON_IsString(t))
			continue;
		if (topic_validate(t->valuestring, strlen(t->valuestring),
				   TOPIC_FILTER, NULL) == 0 &&
		    memchr(t->valuestring, 0, strlen(t->valuestring)))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = NULL;
	cJSON *req = json_parse_object((const char *)data, size, &why);
	const cJSON *topic, *payload, *enc;

	if (!req) {
		if (!why)
			abort(); /* every refusal says why */
		return 0;
	}
	check_topics(cJSON_GetObjectItemCaseSensitive(req, "topics"));
	topic = cJSON_GetObjectItemCaseSensitive(req, "topic");
	if (cJSON_IsString(topic))
		(void)topic_validate(topic->valuestring, strlen(topic->valuestring),
				     TOPIC_NAME, NULL);
	payload = cJSON_GetObjectItemCaseSensitive(req, "payload");
	enc = cJSON_GetObjectItemCaseSensitive(req, "encoding");
	if (payload) {
		bool b64 = cJSON_IsString(enc) && strcmp(enc->valuestring, "base64") == 0;
		void *bytes = NULL;
		size_t len = 0;
		const char *pwhy = NULL;

		if (payload_from_json(payload, b64, &bytes, &len, &pwhy) < 0) {
			if (!pwhy || bytes)
				abort();
		} else if (len && !bytes) {
			abort();
		}
		free(bytes);
	}
	cJSON_Delete(req);
	return 0;
}
