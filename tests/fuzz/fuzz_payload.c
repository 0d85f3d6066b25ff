/*
 * fuzz_payload.c - broker bytes to the JSON a browser receives. Checks
 * that the result is always one valid JSON value without raw CR or LF
 * (so it can never break an SSE event), that base64 round-trips to the
 * input, and that a UTF-8 string round-trips through cJSON.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool b64;
	size_t n;
	char *j = payload_to_json(data, size, &b64, &n);
	cJSON *parsed;

	if (!j)
		return 0;
	if (memchr(j, '\n', n) || memchr(j, '\r', n) ||
	    json_scan(j, n, 0, NULL) < 0)
		abort();
	if (b64) {
		unsigned char *back = malloc(n);
		long m = base64_decode(j + 1, n - 2, back);

		if (m != (long)size || memcmp(back, data, size) != 0)
			abort();
		free(back);
	} else if (json_scan((const char *)data, size, 0, NULL) < 0 &&
		   !memchr(data, 0, size)) {
		/* Embedded as a string: cJSON must read back the same bytes. */
		parsed = cJSON_ParseWithLength(j, n);
		if (!cJSON_IsString(parsed) || strlen(parsed->valuestring) != size ||
		    memcmp(parsed->valuestring, data, size) != 0)
			abort();
		cJSON_Delete(parsed);
	}
	free(j);
	return 0;
}
