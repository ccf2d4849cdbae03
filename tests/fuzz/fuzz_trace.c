/* fuzz_trace.c - libFuzzer target: routing traces (reference/trace.c) with any bytes.
 * The first byte picks the mode: odd, the body's true SHA-256 is written
 * into the header first, so the fuzzer reaches the checks behind the
 * checksum (sizes, ids, weights); even, the bytes are parsed as given.
 * Whatever parses must replay every row within [-1, E) with no repeat;
 * whatever is refused says why in one line. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reference/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t n = size - 1;
	uint8_t *b = malloc(n + 1);
	struct ep_trace t;
	char err[512] = "", hex[EP_SHA256_HEX];
	if (!b)
		return 0;
	memcpy(b, data + 1, n);
	if ((data[0] & 1) && n >= EP_TRACE_HEADER) {
		ep_sha256_of(b + EP_TRACE_HEADER, n - EP_TRACE_HEADER, hex);
		for (int i = 0; i < 32; i++)
			b[40 + i] = (uint8_t)strtoul((char[3]){hex[2 * i], hex[2 * i + 1], 0}, NULL, 16);
	}
	if (ep_trace_parse(b, n, "fuzz.trace", &t, err, sizeof(err))) {
		if (!err[0] || strchr(err, '\n'))
			abort();
		free(b);
		return 0;
	}
	int64_t row[1024];
	for (int s = 0; s < t.num_steps; s++)
		for (int64_t k = 0; k < t.tokens_per_step; k++) {
			ep_trace_row(&t, s, k, row);
			for (int j = 0; j < t.num_topk; j++) {
				if (row[j] < -1 || row[j] >= t.num_experts)
					abort();
				for (int i = 0; i < j; i++)
					if (row[j] >= 0 && row[i] == row[j])
						abort();
			}
		}
	if (strlen(t.model) >= EP_TRACE_MODEL) /* the name keeps its NUL */
		abort();
	ep_trace_free(&t);
	free(b);
	return 0;
}
