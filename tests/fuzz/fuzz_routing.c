/* fuzz_routing.c - libFuzzer target: routing files (reference/inputs.c). The
 * first byte picks K (1..8); every accepted row must hold K ids in [-1, E). */
#define _GNU_SOURCE
#include <stdlib.h>

#include "reference/inputs.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int K = 1 + data[0] % 8, E = 64;
	char path[64], err[512];
	int fd = ep_fuzz_file(data + 1, size - 1, path, sizeof(path));
	if (fd < 0)
		return 0;
	int64_t *idx = NULL;
	size_t rows = 0;
	if (ep_load_routing_file(path, K, E, &idx, &rows, err, sizeof(err)) == 0) {
		if (rows == 0)
			abort();
		for (size_t i = 0; i < rows * (size_t)K; i++)
			if (idx[i] < -1 || idx[i] >= E)
				abort();
		free(idx);
	} else if (!err[0]) {
		abort(); /* a refusal always says why */
	}
	close(fd);
	return 0;
}
