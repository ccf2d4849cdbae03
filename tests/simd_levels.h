/* simd_levels.h - one unit-test case per simd.h level, for kernels cloned per level.
 *
 * EP_TEST_EACH_LEVEL(name) { ... uses `level` ... } defines name_baseline,
 * name_avx2 and name_avx512; a level this CPU does not run is skipped with
 * that reason (never counted as passed). EP_EXHAUSTIVE_STRIDE is 1 in the
 * plain build and larger under a sanitizer, where exhaustive loops would
 * take minutes: sanitizer runs cover a sample, the plain run every input.
 */
#ifndef EP_TEST_SIMD_LEVELS_H
#define EP_TEST_SIMD_LEVELS_H

#include "collectives/simd.h"
#include "tests/harness.h"

#ifdef EP_SANITIZED
#define EP_EXHAUSTIVE_STRIDE 61
#else
#define EP_EXHAUSTIVE_STRIDE 1
#endif

#define EP_TEST_AT_LEVEL_(name_, l_)                                           \
	EP_TEST(name_##_##l_)                                                  \
	{                                                                      \
		enum ep_simd level_ = ep_simd_level_of_(#l_);                  \
		if (!ep_simd_runs(level_))                                     \
			EP_SKIP("this CPU does not run " #l_);                 \
		name_##_at(level_);                                            \
	}

#define EP_TEST_EACH_LEVEL(name_)                                              \
	static void name_##_at(enum ep_simd level);                            \
	EP_TEST_AT_LEVEL_(name_, baseline)                                     \
	EP_TEST_AT_LEVEL_(name_, avx2)                                         \
	EP_TEST_AT_LEVEL_(name_, avx512)                                       \
	static void name_##_at(enum ep_simd level)

static inline enum ep_simd ep_simd_level_of_(const char *name)
{
	enum ep_simd l = EP_SIMD_BASELINE;
	if (ep_simd_parse(name, &l))
		EP_FAIL("no simd level '%s'", name);
	return l;
}

#endif
