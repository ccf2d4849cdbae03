/* simd.c - the kernels' instruction set, detected once and overridable (see simd.h). */
#include "collectives/simd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[EP_SIMD_LEVELS] = {"baseline", "avx2", "avx512"};
static int chosen = -1; /* -1: not chosen, so the best */

/* EP_SIMD_CPU=LEVEL: behave as a CPU whose widest level is LEVEL. */
static int capped(enum ep_simd l)
{
	const char *cap = getenv("EP_SIMD_CPU");
	for (int i = 0; cap && i < EP_SIMD_LEVELS; i++)
		if (!strcmp(cap, names[i]))
			return (int)l > i;
	return 0;
}

int ep_simd_runs(enum ep_simd l)
{
	if (capped(l))
		return 0;
	switch (l) {
	case EP_SIMD_BASELINE:
		return 1;
#if defined(__x86_64__)
	case EP_SIMD_AVX2:
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	case EP_SIMD_AVX512:
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#endif
	default:
		return 0;
	}
}

enum ep_simd ep_simd_best(void)
{
	static int best = -1;
	if (best < 0) {
		best = EP_SIMD_BASELINE;
		for (int l = EP_SIMD_LEVELS - 1; l > EP_SIMD_BASELINE; l--)
			if (ep_simd_runs((enum ep_simd)l)) {
				best = l;
				break;
			}
	}
	return (enum ep_simd)best;
}

enum ep_simd ep_simd_active(void)
{
	return chosen >= 0 ? (enum ep_simd)chosen : ep_simd_best();
}

int ep_simd_use(enum ep_simd l)
{
	if ((int)l < 0 || l >= EP_SIMD_LEVELS || !ep_simd_runs(l))
		return -ENOTSUP;
	chosen = (int)l;
	return 0;
}

const char *ep_simd_name(enum ep_simd l)
{
	return (int)l >= 0 && l < EP_SIMD_LEVELS ? names[l] : "unknown";
}

int ep_simd_parse(const char *name, enum ep_simd *l)
{
	if (!strcmp(name, "auto")) {
		*l = ep_simd_best();
		return 0;
	}
	for (int i = 0; i < EP_SIMD_LEVELS; i++)
		if (!strcmp(name, names[i])) {
			*l = (enum ep_simd)i;
			return 0;
		}
	return -EINVAL;
}
