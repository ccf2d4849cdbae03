/* stream_copy.h - row copies that bypass the cache when an op's output cannot stay in it.
 *
 * A plain store to a line the cache does not hold first reads that line
 * from memory (read for ownership), so a copy whose destination is larger
 * than the last-level cache moves each byte three times: read the source,
 * read the old destination, write it back. Non-temporal ("streaming") stores
 * skip the middle read; glibc's memcpy uses them itself above about 3/4 of
 * the cache, which is why the host copy probe (64 MiB blocks) runs at that
 * rate while an op copying thousands of 7 KiB rows into a 15 MiB area ran at
 * about two thirds of it. An op decides once, from the bytes it is about to
 * write (ep_stream_worth), then copies its rows with ep_copy_row.
 *
 * The bytes are memcpy's whatever the choice. Streaming stores are weakly
 * ordered: ep_copy_fence must run after the copies and before the flag that
 * tells another process they are done (a release store alone does not order
 * them). x86-64's SSE2 stores only, so every simd.h level gets the same
 * code; other CPUs copy with memcpy. Nothing here blocks, allocates or fails.
 */
#ifndef EP_STREAM_COPY_H
#define EP_STREAM_COPY_H

#include <stddef.h>

/* 1 if `bytes` written by each of `writers` processes at once overflow half
 * the last-level cache (sysconf's figure; 8 MiB when it gives none), and
 * streaming is not switched off: EPBENCH_STREAM=off in the environment
 * (read once per process) copies with plain stores, for comparison. */
int ep_stream_worth(size_t bytes, int writers);

/* dst[0..n) = src[0..n); streamed when `stream`, else memcpy. The regions
 * must not overlap. */
void ep_copy_row(int stream, void *dst, const void *src, size_t n);

/* Orders the streamed stores before every later store (sfence); free when
 * nothing was streamed. */
void ep_copy_fence(int stream);

#endif
