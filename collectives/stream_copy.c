/* stream_copy.c - cache-bypassing row copies (see stream_copy.h). */
#include "collectives/stream_copy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <emmintrin.h>
#endif

#define FALLBACK_LLC (8u << 20)

static size_t llc_bytes(void)
{
	static size_t llc;
	if (!llc) {
		long v = -1;
#ifdef _SC_LEVEL3_CACHE_SIZE
		v = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
		llc = v > 0 ? (size_t)v : FALLBACK_LLC;
	}
	return llc;
}

static int stream_off(void)
{
	static int off = -1;
	if (off < 0) {
		const char *s = getenv("EPBENCH_STREAM");
		off = s && (!strcmp(s, "off") || !strcmp(s, "0"));
	}
	return off;
}

int ep_stream_worth(size_t bytes, int writers)
{
	size_t w = writers > 0 ? (size_t)writers : 1;
	return !stream_off() && bytes > llc_bytes() / 2 / w;
}

#if defined(__x86_64__)
/* Head to a 16-byte boundary of dst and the tail with memcpy, the middle
 * with 64-byte groups of streaming stores (whole write-combining lines when
 * dst is line aligned, as the areas' rows are). */
static void copy_streamed(char *dst, const char *src, size_t n)
{
	size_t head = (16 - ((uintptr_t)dst & 15)) & 15;
	if (head > n)
		head = n;
	memcpy(dst, src, head);
	dst += head, src += head, n -= head;
	for (; n >= 64; n -= 64, dst += 64, src += 64) {
		__m128i a = _mm_loadu_si128((const __m128i *)src), b = _mm_loadu_si128((const __m128i *)(src + 16));
		__m128i c = _mm_loadu_si128((const __m128i *)(src + 32)), d = _mm_loadu_si128((const __m128i *)(src + 48));
		_mm_stream_si128((__m128i *)dst, a);
		_mm_stream_si128((__m128i *)(dst + 16), b);
		_mm_stream_si128((__m128i *)(dst + 32), c);
		_mm_stream_si128((__m128i *)(dst + 48), d);
	}
	memcpy(dst, src, n);
}
#endif

void ep_copy_row(int stream, void *dst, const void *src, size_t n)
{
#if defined(__x86_64__)
	if (stream) {
		copy_streamed(dst, src, n);
		return;
	}
#else
	(void)stream;
#endif
	memcpy(dst, src, n);
}

void ep_copy_fence(int stream)
{
#if defined(__x86_64__)
	if (stream)
		_mm_sfence();
#else
	(void)stream;
#endif
}
