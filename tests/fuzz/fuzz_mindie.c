/* fuzz_mindie.c - libFuzzer target: MindIE's config.json reader and the --parallel grammar.
 * The first byte's low bits give the world size; the text up to the first
 * NUL is a --parallel spec, the rest a config.json. A configuration that
 * resolves must give groups that hold their rank. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "cli/mindie_config.h"
#include "cli/parallel.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	int W = 1 + data[0] % 64;
	char *text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = 0;
	size_t spec_len = strlen(text);
	struct ep_parallel p = {0}, r;
	char err[512], line[512];
	if (spec_len + 1 < size)
		ep_mindie_config_parse(text + spec_len + 1, size - 1 - spec_len - 1, "fuzz", &p, err, sizeof(err));
	if (spec_len)
		ep_parallel_parse(&p, text, err, sizeof(err));
	if (ep_parallel_resolve(&p, W, 1 + data[0] / 64, &r, err, sizeof(err)) == 0) {
		int m[64];
		for (int rank = 0; rank < W; rank++) {
			int n = ep_parallel_group(&r, EP_GROUP_MOE_EP, rank, m, 64), has = 0;
			for (int i = 0; i < n; i++)
				has |= m[i] == rank;
			if (!has)
				abort();
			ep_parallel_describe(&r, rank, line, sizeof(line));
		}
		ep_parallel_text(&r, line, sizeof(line));
	}
	free(text);
	return 0;
}
