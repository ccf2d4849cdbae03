/* stream_copy_test.c - a streamed row copy writes memcpy's bytes, no more, at any alignment. */
#include "collectives/stream_copy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness.h"

#define SPAN 8192

/* Every length 0..300 and a few row sizes, every source and destination
 * offset 0..17: the destination equals the source, and the guard bytes on
 * both sides of it keep their pattern (nothing written outside). */
static void check_copies(int stream)
{
	static const size_t big[] = {1024, 3584, 7168, 7392};
	uint8_t *src = malloc(SPAN), *dst = malloc(SPAN + 64);
	EP_ASSERT(src && dst);
	for (size_t i = 0; i < SPAN; i++)
		src[i] = (uint8_t)(i * 131 + 7);
	for (size_t k = 0; k < 301 + sizeof(big) / sizeof(big[0]); k++) {
		size_t n = k < 301 ? k : big[k - 301];
		for (size_t so = 0; so < 18; so++)
			for (size_t d = 0; d < 18; d++) {
				memset(dst, 0xa5, SPAN + 64);
				ep_copy_row(stream, dst + 16 + d, src + so, n);
				ep_copy_fence(stream);
				EP_ASSERT(memcmp(dst + 16 + d, src + so, n) == 0);
				for (size_t g = 0; g < 16 + d; g++)
					EP_ASSERT_INT_EQ(dst[g], 0xa5);
				for (size_t g = 16 + d + n; g < SPAN + 64; g++)
					EP_ASSERT_INT_EQ(dst[g], 0xa5);
			}
	}
	free(src);
	free(dst);
}

EP_TEST(streamed_copy_is_memcpy_at_every_length_and_alignment)
{
	check_copies(1);
}

EP_TEST(plain_copy_is_memcpy_at_every_length_and_alignment)
{
	check_copies(0);
}

/* Small ops stay in the cache; an op past half of it, shared between its
 * writers, streams. */
EP_TEST(streams_only_past_half_the_cache)
{
	EP_ASSERT_INT_EQ(ep_stream_worth(0, 2), 0);
	EP_ASSERT_INT_EQ(ep_stream_worth(64 << 10, 2), 0);
	EP_ASSERT_INT_EQ(ep_stream_worth((size_t)1 << 40, 2), 1);
	long llc = -1;
#ifdef _SC_LEVEL3_CACHE_SIZE
	llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
	size_t half = llc > 0 ? (size_t)llc / 2 : (size_t)4 << 20;
	EP_ASSERT_INT_EQ(ep_stream_worth(half, 1), 0);
	EP_ASSERT_INT_EQ(ep_stream_worth(half + 1, 1), 1);
	EP_ASSERT_INT_EQ(ep_stream_worth(half / 4 + 1, 4), 1);
	EP_ASSERT_INT_EQ(ep_stream_worth(half / 4, 4), 0);
}

EP_TEST(environment_switches_streaming_off)
{
	setenv("EPBENCH_STREAM", "off", 1);
	EP_ASSERT_INT_EQ(ep_stream_worth((size_t)1 << 40, 2), 0);
}

EP_TEST_MAIN()
