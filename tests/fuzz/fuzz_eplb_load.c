/* fuzz_eplb_load.c - libFuzzer target: EPLB load files (reference/eplb_load.c).
 * The first byte picks E (1..64); an accepted file gives E finite loads
 * >= 0, and EPLB places them (E + first byte % 8 physical experts on one
 * GPU) with every replica accounted for. */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>

#include "reference/eplb.h"
#include "reference/eplb_load.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int E = 1 + data[0] % 64, P = E + data[0] % 8;
	char path[64], err[512];
	int fd = ep_fuzz_file(data + 1, size - 1, path, sizeof(path));
	if (fd < 0)
		return 0;
	float *loads = NULL;
	if (ep_eplb_load_file(path, E, &loads, err, sizeof(err)) == 0) {
		struct ep_eplb_map m;
		for (int e = 0; e < E; e++)
			if (!isfinite(loads[e]) || loads[e] < 0)
				abort();
		if (ep_eplb_rebalance(loads, E, P, 1, 1, 1, &m) == 0) {
			int total = 0;
			for (int e = 0; e < E; e++)
				total += m.logcnt[e];
			if (total != P)
				abort();
			ep_eplb_map_free(&m);
		}
		free(loads);
	} else if (!err[0]) {
		abort(); /* a refusal always says why */
	}
	close(fd);
	return 0;
}
