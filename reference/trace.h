/* trace.h - routing traces: recorded top-k ids, replayed step by step.
 *
 * A trace is what a model's router chose for a series of forward steps of
 * one MoE layer: per step, N tokens of K expert ids. `--routing
 * trace:FILE[:STEP]` replays it (reference/routing_step.h says which step
 * an iteration uses and how a step's tokens are split over ranks);
 * scripts/trace_convert.py makes one from NumPy arrays and back.
 *
 * The file, version 1, every number little-endian:
 *
 *   offset size  field
 *        0    8  magic "EPTRACE\0"
 *        8    4  u32 version, 1
 *       12    4  u32 flags: bit 0 set = float32 weights follow the ids; no other bit
 *       16    4  u32 num_experts E, 1 .. 2^20
 *       20    4  u32 num_topk K, 1 .. 1024
 *       24    4  u32 num_steps S, >= 1
 *       28    4  u32 tokens_per_step N, >= 1
 *       32    4  i32 layer, -1 when not recorded
 *       36    4  u32 reserved, 0
 *       40   32  SHA-256 of the body (every byte after the 128-byte header)
 *       72   56  model name, UTF-8, NUL-padded (at most 55 bytes and a NUL);
 *                a trace not captured from a model says so here
 *      128       body: int32 ids [S][N][K], each -1 (no expert) or in
 *                [0, E), no expert twice in a row; then, with flag bit 0,
 *                float32 weights [S][N][K], finite
 *
 * The file is exactly 128 + 4 S N K (1 + weights) bytes. A reader refuses,
 * with one line naming the file and quoting the value: a wrong magic or
 * version, unknown flags, a field out of range, a file shorter (truncated)
 * or longer than its header says, a body whose SHA-256 differs from the
 * header's, an id outside [-1, E) or repeated in its row, a weight that is
 * NaN or infinite.
 */
#ifndef EP_TRACE_H
#define EP_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "reports/digest.h"

#define EP_TRACE_MAGIC "EPTRACE\0"
#define EP_TRACE_VERSION 1
#define EP_TRACE_HEADER 128
#define EP_TRACE_MODEL 56                  /* bytes of the model field, NUL included */
#define EP_TRACE_MAX_BYTES ((size_t)1 << 31) /* largest trace read */

struct ep_trace {
	char model[EP_TRACE_MODEL];  /* NUL-terminated */
	int layer;                   /* -1: not recorded */
	int num_experts, num_topk;   /* E, K */
	int num_steps;               /* S */
	int tokens_per_step;         /* N: every rank's tokens of one step together */
	char sha256[EP_SHA256_HEX];  /* of the body, hex */
	int32_t *ids;                /* [S][N][K], -1 allowed */
	float *weights;              /* [S][N][K], or NULL: weights come from the seed */
};

/* Parses a whole trace held in buf[len] (name, already printable, goes into
 * messages). 0, -EP_EUSAGE with one line in err, or -EP_ENOMEM. On success
 * t owns its arrays (ep_trace_free). */
int ep_trace_parse(const void *buf, size_t len, const char *name, struct ep_trace *t, char *err,
		   size_t errlen);

/* Reads path (a regular file or pipe of at most EP_TRACE_MAX_BYTES) and parses it. */
int ep_trace_read(const char *path, struct ep_trace *t, char *err, size_t errlen);

void ep_trace_free(struct ep_trace *t); /* NULL and a zeroed trace are fine */

/* The file bytes of t (the body's SHA-256 computed here, t->sha256 ignored),
 * malloc'd into *buf; for tests and tools. 0, -EINVAL for a trace outside
 * the format's limits, or -ENOMEM. */
int ep_trace_encode(const struct ep_trace *t, void **buf, size_t *len);

/* Token `token` of step `step` as K int64 ids into row (no bounds checks:
 * the caller keeps step < S and token < N). */
void ep_trace_row(const struct ep_trace *t, int step, int64_t token, int64_t *row);

#endif
