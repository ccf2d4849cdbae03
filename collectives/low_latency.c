/* low_latency.c - decode-time dispatch/combine into per-expert buffers.
 *
 * Arena: R equal rank regions, each page aligned:
 *   signals   4 flags, one per 128-byte line: dispatch sent / received,
 *             combine sent / received (values: call numbers, from 1)
 *   src_begin int32 [R][L]: first packed row of source s at local expert e
 *   send[2]   dispatch send areas, by dispatch call parity:
 *             counts int32 [E] | lists int32 [E][N] | rows [N][msg]
 *             msg = e4m3 [H] + float scale_inv [H/128] (FP8) or bf16 [H]
 *   combine   bf16 [L][R*N][H], the expert outputs at their packed rows
 *   outputs   packed_recv_x, scales, count, src_info, layout_range (only
 *             the owner touches them)
 * Who writes what: a rank writes only its own region; peers read signals,
 * src_begin, send areas and the combine area. See low_latency.h for the
 * reuse guards that make every read see a complete, current write.
 */
#include "collectives/low_latency.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/error.h"
#include "collectives/numeric.h"

#define PAGE 4096
#define LINE 128

enum { SIG_DISP_SENT, SIG_DISP_RECVD, SIG_COMB_SENT, SIG_COMB_RECVD, NUM_SIGNALS };

/* One flag per cache line, so peers polling one flag do not disturb another. */
struct ll_signal {
	struct ep_flag flag;
} __attribute__((aligned(LINE)));

static size_t align_up(size_t v, size_t a)
{
	return (v + a - 1) / a * a;
}

/* Offsets inside one rank region; one function so sizing and binding agree. */
struct rank_plan {
	size_t src_begin, send[2], combine;
	size_t recv_x, recv_scales, recv_count, src_info, layout_range;
	size_t lists, rows, msg;  /* inside a send area: offsets, message stride */
	size_t bytes;             /* the whole region */
};

int ep_ll_scale_cols(const struct ep_ll_config *cfg)
{
	if (cfg->dtype != EP_DTYPE_FP8)
		return 0;
	return cfg->use_ue8m0 ? cfg->hidden / 512 : cfg->hidden / 128;
}

size_t ep_ll_row_bytes(const struct ep_ll_config *cfg)
{
	return cfg->dtype == EP_DTYPE_FP8 ? (size_t)cfg->hidden : 2 * (size_t)cfg->hidden;
}

static void plan_rank(const struct ep_ll_config *cfg, struct rank_plan *p)
{
	size_t R = (size_t)cfg->num_ranks, E = (size_t)cfg->num_experts, L = E / R;
	size_t H = (size_t)cfg->hidden, N = (size_t)cfg->max_tokens, RN = R * N;
	size_t row = ep_ll_row_bytes(cfg);
	size_t wire_scales = cfg->dtype == EP_DTYPE_FP8 ? H / 128 * sizeof(float) : 0;
	size_t off = align_up(NUM_SIGNALS * sizeof(struct ll_signal), PAGE);
	p->lists = align_up(E * sizeof(int32_t), LINE);
	p->rows = align_up(p->lists + E * N * sizeof(int32_t), PAGE);
	p->msg = align_up(row + wire_scales, 64);
	size_t send_bytes = align_up(p->rows + N * p->msg, PAGE);
	p->src_begin = off;      off = align_up(off + R * L * sizeof(int32_t), PAGE);
	p->send[0] = off;        off += send_bytes;
	p->send[1] = off;        off += send_bytes;
	p->combine = off;        off = align_up(off + L * RN * H * sizeof(uint16_t), PAGE);
	p->recv_x = off;         off = align_up(off + L * RN * row, PAGE);
	p->recv_scales = off;    off = align_up(off + L * RN * (size_t)ep_ll_scale_cols(cfg) * 4, PAGE);
	p->recv_count = off;     off = align_up(off + L * sizeof(int32_t), PAGE);
	p->src_info = off;       off = align_up(off + L * RN * sizeof(int32_t), PAGE);
	p->layout_range = off;   off = align_up(off + L * R * sizeof(int64_t), PAGE);
	p->bytes = off;
}

/* Bytes of the largest pieces of all ranks, in double so that absurd
 * shapes cannot wrap around: combine area, packed x, scales, src_info. */
static double arena_estimate(const struct ep_ll_config *c)
{
	double E = c->num_experts, N = c->max_tokens, H = c->hidden;
	return E * N * (H * 2 + H * 2 + H / 32 + 4) * c->num_ranks;
}

int ep_ll_config_check(const struct ep_ll_config *c)
{
	if (c->num_ranks < 1 || c->num_experts < 1 || c->num_experts % c->num_ranks ||
	    c->hidden < 1 || c->num_topk < 1 || c->max_tokens < 1)
		return -EINVAL;
	if (c->dtype != EP_DTYPE_BF16 && c->dtype != EP_DTYPE_FP8)
		return -EINVAL;
	if (c->dtype == EP_DTYPE_FP8 && c->hidden % 128)
		return -EINVAL;
	if ((c->round_scale || c->use_ue8m0) && c->dtype != EP_DTYPE_FP8)
		return -EINVAL;
	if (c->use_ue8m0 && (!c->round_scale || c->hidden % 512))
		return -EINVAL;
	if (arena_estimate(c) > 0x1p60)
		return -EOVERFLOW;
	return 0;
}

size_t ep_ll_arena_bytes(const struct ep_ll_config *cfg)
{
	struct rank_plan p;
	int rc = ep_ll_config_check(cfg);
	if (rc == -EOVERFLOW)
		return SIZE_MAX;
	if (rc)
		return 0;
	plan_rank(cfg, &p);
	return p.bytes * (size_t)cfg->num_ranks;
}

/* Accessors into rank r's region. */

static char *region(const struct ep_ll *ctx, int r)
{
	return ctx->arena + (size_t)r * ctx->rank_bytes;
}

static struct ep_flag *signal_of(const struct ep_ll *ctx, int r, int which)
{
	return &((struct ll_signal *)region(ctx, r))[which].flag;
}

/* Send area pieces of rank r for a dispatch call number. */
struct send_area {
	int32_t *counts;   /* [E] */
	int32_t *lists;    /* [E][N] */
	char *rows;        /* [N][msg] */
};

static struct send_area send_area_of(const struct ep_ll *ctx, int r, uint32_t call)
{
	char *a = region(ctx, r) + ctx->off.send[call & 1];
	return (struct send_area){(int32_t *)a, (int32_t *)(a + ctx->off.lists),
				  a + ctx->off.rows};
}

/* Row kernels */

/* Combine's reduction of one token: out[c] = bf16(acc), acc = fmaf(y_j[c],
 * w_j, acc) over its n rows in slot order from +0.0f. Columns go in chunks
 * whose accumulators stay in registers while all n rows stream by. The
 * FMA clone is bit-identical (an FMA instruction is exactly fmaf); without
 * one, libm's fmaf. */
typedef void (*reduce_fn)(const uint16_t *const *ys, const float *ws, int n, int H,
			  uint16_t *out);

#define REDUCE_CHUNK 32
#define REDUCE_BODY                                                                    \
	int c = 0;                                                                     \
	for (; c + REDUCE_CHUNK <= H; c += REDUCE_CHUNK) {                             \
		float acc[REDUCE_CHUNK] = {0};                                         \
		for (int j = 0; j < n; j++)                                            \
			for (int k = 0; k < REDUCE_CHUNK; k++)                         \
				acc[k] = fmaf(ep_bf16_to_f32(ys[j][c + k]), ws[j], acc[k]); \
		for (int k = 0; k < REDUCE_CHUNK; k++)                                 \
			out[c + k] = ep_f32_to_bf16(acc[k]);                           \
	}                                                                              \
	for (; c < H; c++) {                                                           \
		float acc = 0.0f;                                                      \
		for (int j = 0; j < n; j++)                                            \
			acc = fmaf(ep_bf16_to_f32(ys[j][c]), ws[j], acc);              \
		out[c] = ep_f32_to_bf16(acc);                                          \
	}

static void reduce_plain(const uint16_t *const *ys, const float *ws, int n, int H, uint16_t *out)
{
	REDUCE_BODY
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void reduce_avx2(const uint16_t *const *ys,
							    const float *ws, int n, int H,
							    uint16_t *out)
{
	REDUCE_BODY
}
#endif

static reduce_fn reduce = reduce_plain;

/* |x| of the largest non-NaN element of a BF16 block, as BF16 bits: for
 * non-negative floats the bit order is the numeric order, and a 16-bit
 * integer max vectorises where a float max reduction does not. */
static uint16_t block_amax_bits(const uint16_t *restrict x)
{
	int16_t m = 0;
	for (int i = 0; i < EP_FP8_BLOCK; i++) {
		int16_t v = (int16_t)(x[i] & 0x7fff);
		v = v > 0x7f80 ? 0 : v; /* NaN: ignored, as fmaxf does */
		m = v > m ? v : m;
	}
	return (uint16_t)m;
}

/* ep_f32_to_e4m3 without branches: the same bit arithmetic for normal
 * results, |v| * 2^9 rounded to an integer by adding 2^23 (an exact
 * product, then one round-to-nearest-even sum) for subnormal ones, and
 * selects through masks for saturation and NaN. */
static inline uint8_t e4m3_branchless(float v)
{
	int32_t u = (int32_t)ep_f32_bits(v);
	int32_t a = u & 0x7fffffff, sign = (u >> 24) & 0x80;
	int32_t r = a - (120 << 23); /* rebias 127 -> 7 */
	r += 0x7ffff + ((r >> 20) & 1);
	int32_t normal = r >> 20;
	int32_t sub = (int32_t)ep_f32_bits(ep_f32_from_bits((uint32_t)a) * 512.0f + 0x1p23f) -
		      0x4b000000;
	int32_t is_normal = -(int32_t)(a >= 0x3c800000); /* 2^-6 */
	int32_t is_sat = -(int32_t)(a >= 0x43e00000);    /* 448 */
	int32_t is_nan = -(int32_t)(a > 0x7f800000);
	int32_t code = (normal & is_normal) | (sub & ~is_normal);
	code = (0x7e & is_sat) | (code & ~is_sat);
	return (uint8_t)((EP_E4M3_NAN & is_nan) | ((sign | code) & ~is_nan));
}

/* One 128-element block; an AVX2 clone where the CPU has it (same bits). */
typedef void (*cast_block_fn)(const uint16_t *restrict x, float scale, uint8_t *restrict q);

#define CAST_BLOCK_BODY                                                                \
	for (int i = 0; i < EP_FP8_BLOCK; i++)                                         \
		q[i] = e4m3_branchless(ep_bf16_to_f32(x[i]) * scale);

static void cast_block_plain(const uint16_t *restrict x, float scale, uint8_t *restrict q)
{
	CAST_BLOCK_BODY
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static void cast_block_avx2(const uint16_t *restrict x,
							    float scale, uint8_t *restrict q)
{
	CAST_BLOCK_BODY
}
#endif

static cast_block_fn cast_block = cast_block_plain;

/* Picks the vector clones this CPU can run (process-wide, once). */
static void pick_kernels(void)
{
	static int picked;
	if (picked)
		return;
	picked = 1;
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2")) {
		cast_block = cast_block_avx2;
		if (__builtin_cpu_supports("fma"))
			reduce = reduce_avx2;
	}
#endif
}

void ep_ll_fp8_cast_row(const uint16_t *x, size_t hidden, int round_scale, uint8_t *q,
			float *scale_inv)
{
	pick_kernels();
	for (size_t b = 0; b < hidden / EP_FP8_BLOCK; b++) {
		const uint16_t *xb = x + b * EP_FP8_BLOCK;
		float amax = ep_bf16_to_f32(block_amax_bits(xb)), scale;
		amax = amax > EP_FP8_MARGIN ? amax : EP_FP8_MARGIN;
		ep_fp8_scales(amax, round_scale, &scale, &scale_inv[b]);
		cast_block(xb, scale, q + b * EP_FP8_BLOCK);
	}
}

int ep_ll_init(struct ep_ll *ctx, const struct ep_ll_config *cfg, int rank, void *arena,
	       struct ep_waiter *w)
{
	struct rank_plan p;
	memset(ctx, 0, sizeof(*ctx));
	int rc = ep_ll_config_check(cfg);
	if (rc)
		return rc;
	if (rank < 0 || rank >= cfg->num_ranks || !arena)
		return -EINVAL;
	plan_rank(cfg, &p);
	pick_kernels();
	ctx->cfg = *cfg;
	ctx->rank = rank;
	ctx->waiter = w;
	ctx->arena = arena;
	ctx->rank_bytes = p.bytes;
	ctx->off.src_begin = p.src_begin;
	ctx->off.send[0] = p.send[0];
	ctx->off.send[1] = p.send[1];
	ctx->off.combine = p.combine;
	ctx->off.lists = p.lists;
	ctx->off.rows = p.rows;
	ctx->off.msg = p.msg;
	size_t E = (size_t)cfg->num_experts, N = (size_t)cfg->max_tokens, K = (size_t)cfg->num_topk;
	ctx->send_count = calloc(E, sizeof(int32_t));
	ctx->slot = calloc(N * K, sizeof(int32_t));
	ctx->rows = calloc(K, sizeof(*ctx->rows));
	ctx->weights = calloc(K, sizeof(float));
	ctx->packed = calloc((size_t)cfg->hidden / 512 + 1, sizeof(uint32_t));
	if (!ctx->send_count || !ctx->slot || !ctx->rows || !ctx->weights || !ctx->packed) {
		ep_ll_fini(ctx);
		return -ENOMEM;
	}
	char *me = region(ctx, rank);
	int scales = ep_ll_scale_cols(cfg) > 0;
	ctx->out = (struct ep_ll_dispatch_out){
		.packed_recv_x = me + p.recv_x,
		.packed_recv_x_scales = scales ? me + p.recv_scales : NULL,
		.packed_recv_count = (int32_t *)(me + p.recv_count),
		.packed_recv_src_info = (int32_t *)(me + p.src_info),
		.packed_recv_layout_range = (int64_t *)(me + p.layout_range),
	};
	return 0;
}

void ep_ll_fini(struct ep_ll *ctx)
{
	free(ctx->send_count);
	free(ctx->slot);
	free(ctx->rows);
	free(ctx->weights);
	free(ctx->packed);
	memset(ctx, 0, sizeof(*ctx));
}

/* Waits until signal `which` of every rank reached target, in rank order
 * starting after me (so waits spread over peers). */
static int wait_all(struct ep_ll *ctx, int which, uint32_t target)
{
	int R = ctx->cfg.num_ranks;
	for (int i = 1; i <= R; i++) {
		int r = (ctx->rank + i) % R;
		int rc = ep_flag_wait_geq(ctx->waiter, signal_of(ctx, r, which), target, r);
		if (rc)
			return rc;
	}
	return 0;
}

/* Dispatch */

/* Appends token t's valid slots to the expert lists; returns how many
 * slots it has (0: the token goes nowhere and need not be cast). */
static int list_token(struct ep_ll *ctx, struct send_area *a, const int64_t *idx, int t)
{
	int K = ctx->cfg.num_topk, E = ctx->cfg.num_experts, N = ctx->cfg.max_tokens, n = 0;
	int32_t *slot = ctx->slot + (size_t)t * K;
	for (int j = 0; j < K; j++) {
		int64_t e = idx[j];
		slot[j] = -1;
		if (e < 0 || e >= E)
			continue;
		int32_t k = ctx->send_count[e];
		if (k >= N) { /* one expert named more than N times */
			ctx->overflow = 1;
			continue;
		}
		a->lists[(size_t)e * N + (size_t)k] = t;
		ctx->send_count[e] = k + 1;
		slot[j] = k;
		n++;
	}
	return n;
}

/* Token t into its message: the FP8 cast (payload, then scale_inv per
 * 128 channels) or the BF16 row as is. */
static void put_message(const struct ep_ll *ctx, const uint16_t *x, char *msg)
{
	size_t H = (size_t)ctx->cfg.hidden;
	if (ctx->cfg.dtype == EP_DTYPE_FP8)
		ep_ll_fp8_cast_row(x, H, ctx->cfg.round_scale, (uint8_t *)msg, (float *)(msg + H));
	else
		memcpy(msg, x, H * sizeof(uint16_t));
}

int ep_ll_dispatch_send(struct ep_ll *ctx, const uint16_t *x, const int64_t *topk_idx,
			int num_tokens)
{
	const struct ep_ll_config *c = &ctx->cfg;
	struct ep_waiter *w = ctx->waiter;
	int rc;
	if (num_tokens < 0 || num_tokens > c->max_tokens || ctx->disp_pending || ctx->comb_pending)
		return -EINVAL;
	uint32_t call = ++ctx->disp_calls;
	ep_set_phase(w, "ll.dispatch.send");
	/* Reuse guard: area call % 2 was last read by call - 2 (see header). */
	if (call > 2 && (rc = wait_all(ctx, SIG_DISP_RECVD, call - 2)))
		return rc;
	struct send_area a = send_area_of(ctx, ctx->rank, call);
	memset(ctx->send_count, 0, sizeof(int32_t) * (size_t)c->num_experts);
	ctx->overflow = 0;
	for (int t = 0; t < num_tokens; t++)
		if (list_token(ctx, &a, topk_idx + (size_t)t * c->num_topk, t))
			put_message(ctx, x + (size_t)t * c->hidden, a.rows + (size_t)t * ctx->off.msg);
	memcpy(a.counts, ctx->send_count, sizeof(int32_t) * (size_t)c->num_experts);
	ep_flag_store(signal_of(ctx, ctx->rank, SIG_DISP_SENT), call);
	ctx->num_tokens = num_tokens;
	ctx->disp_pending = 1;
	ctx->have_handle = 0;
	ep_set_phase(w, "idle");
	return ctx->overflow ? -EP_ENOSPC : 0;
}

int ep_ll_dispatch_wait(struct ep_ll *ctx)
{
	if (!ctx->disp_pending)
		return -EINVAL;
	ep_set_phase(ctx->waiter, "ll.dispatch.wait");
	int rc = wait_all(ctx, SIG_DISP_SENT, ctx->disp_calls);
	ep_set_phase(ctx->waiter, "idle");
	return rc;
}

/* Canonical positions of local expert e: begin of each source, published
 * for the token owners' combine, and layout_range; returns the total. */
static int32_t layout_expert(struct ep_ll *ctx, int e, uint32_t call)
{
	int R = ctx->cfg.num_ranks, L = ctx->cfg.num_experts / R, g = ctx->rank * L + e;
	int32_t *src_begin = (int32_t *)(region(ctx, ctx->rank) + ctx->off.src_begin);
	int64_t *range = ctx->out.packed_recv_layout_range + (size_t)e * R;
	int32_t begin = 0;
	for (int s = 0; s < R; s++) {
		int32_t n = send_area_of(ctx, s, call).counts[g];
		src_begin[(size_t)s * L + e] = begin;
		range[s] = (int64_t)((uint64_t)(uint32_t)begin << 32 | (uint32_t)n);
		begin += n;
	}
	return begin;
}

/* Stores one row's scales at packed row `pos` of expert e, column-major:
 * float [e][b][pos], or UE8M0 words [e][w][pos]. */
static void put_scales(struct ep_ll *ctx, int e, size_t pos, const float *scale_inv)
{
	const struct ep_ll_config *c = &ctx->cfg;
	size_t RN = (size_t)c->num_ranks * c->max_tokens, S = (size_t)ep_ll_scale_cols(c);
	if (c->use_ue8m0) {
		uint32_t *dst = (uint32_t *)ctx->out.packed_recv_x_scales + (size_t)e * S * RN + pos;
		ep_ue8m0_pack(scale_inv, S * 4, ctx->packed);
		for (size_t k = 0; k < S; k++)
			dst[k * RN] = ctx->packed[k];
	} else {
		float *dst = (float *)ctx->out.packed_recv_x_scales + (size_t)e * S * RN + pos;
		for (size_t b = 0; b < S; b++)
			dst[b * RN] = scale_inv[b];
	}
}

/* Copies source s's rows of local expert e to packed rows [begin, begin + n). */
static void pull_rows(struct ep_ll *ctx, int e, int s, uint32_t call)
{
	const struct ep_ll_config *c = &ctx->cfg;
	int R = c->num_ranks, L = c->num_experts / R, N = c->max_tokens, g = ctx->rank * L + e;
	size_t RN = (size_t)R * N, row = ep_ll_row_bytes(c);
	struct send_area a = send_area_of(ctx, s, call);
	int64_t range = ctx->out.packed_recv_layout_range[(size_t)e * R + s];
	size_t begin = (size_t)((uint64_t)range >> 32);
	int32_t n = (int32_t)(range & 0xffffffff);
	const int32_t *list = a.lists + (size_t)g * N;
	char *dst = (char *)ctx->out.packed_recv_x + ((size_t)e * RN + begin) * row;
	int32_t *src_info = ctx->out.packed_recv_src_info + (size_t)e * RN + begin;
	for (int32_t i = 0; i < n; i++) {
		const char *msg = a.rows + (size_t)list[i] * ctx->off.msg;
		memcpy(dst + (size_t)i * row, msg, row);
		src_info[i] = list[i];
		if (c->dtype == EP_DTYPE_FP8)
			put_scales(ctx, e, begin + (size_t)i, (const float *)(msg + row));
	}
}

int ep_ll_dispatch_recv(struct ep_ll *ctx, struct ep_ll_dispatch_out *out)
{
	int R = ctx->cfg.num_ranks, L = ctx->cfg.num_experts / R, rc;
	if (!ctx->disp_pending)
		return -EINVAL;
	uint32_t call = ctx->disp_calls;
	ep_set_phase(ctx->waiter, "ll.dispatch.recv");
	if ((rc = wait_all(ctx, SIG_DISP_SENT, call)))
		return rc;
	for (int e = 0; e < L; e++) {
		ctx->out.packed_recv_count[e] = layout_expert(ctx, e, call);
		for (int s = 0; s < R; s++)
			pull_rows(ctx, e, s, call);
	}
	ep_flag_store(signal_of(ctx, ctx->rank, SIG_DISP_RECVD), call);
	ctx->disp_pending = 0;
	ctx->have_handle = 1;
	if (out)
		*out = ctx->out;
	ep_set_phase(ctx->waiter, "idle");
	return 0;
}

int ep_ll_dispatch(struct ep_ll *ctx, const uint16_t *x, const int64_t *topk_idx, int num_tokens,
		   struct ep_ll_dispatch_out *out)
{
	int rc = ep_ll_dispatch_send(ctx, x, topk_idx, num_tokens);
	if (rc && rc != -EP_ENOSPC)
		return rc;
	int rc2 = ep_ll_dispatch_recv(ctx, out);
	return rc2 ? rc2 : rc;
}

/* Combine */

static uint16_t *combine_area(const struct ep_ll *ctx, int r)
{
	return (uint16_t *)(region(ctx, r) + ctx->off.combine);
}

/* Reuse guard of the combine area: every rank received the last combine. */
static int combine_guard(struct ep_ll *ctx)
{
	return ctx->comb_calls ? wait_all(ctx, SIG_COMB_RECVD, ctx->comb_calls) : 0;
}

int ep_ll_combine_buffer(struct ep_ll *ctx, uint16_t **buf)
{
	if (ctx->comb_pending)
		return -EINVAL;
	ep_set_phase(ctx->waiter, "ll.combine.buffer");
	int rc = combine_guard(ctx);
	ep_set_phase(ctx->waiter, "idle");
	if (rc)
		return rc;
	*buf = combine_area(ctx, ctx->rank);
	return 0;
}

int ep_ll_combine_send(struct ep_ll *ctx, const uint16_t *x)
{
	const struct ep_ll_config *c = &ctx->cfg;
	int L = c->num_experts / c->num_ranks, rc;
	size_t RN = (size_t)c->num_ranks * c->max_tokens, H = (size_t)c->hidden;
	if (!ctx->have_handle || ctx->disp_pending || ctx->comb_pending)
		return -EINVAL;
	ep_set_phase(ctx->waiter, "ll.combine.send");
	/* Zero copy writes nothing here: the caller's ep_ll_combine_buffer
	 * already waited for the readers of the area. */
	if (x && (rc = combine_guard(ctx)))
		return rc;
	uint32_t call = ++ctx->comb_calls;
	uint16_t *area = combine_area(ctx, ctx->rank);
	for (int e = 0; x && e < L; e++) /* valid rows of an expert are contiguous */
		memcpy(area + (size_t)e * RN * H, x + (size_t)e * RN * H,
		       (size_t)ctx->out.packed_recv_count[e] * H * sizeof(uint16_t));
	ep_flag_store(signal_of(ctx, ctx->rank, SIG_COMB_SENT), call);
	ctx->comb_pending = 1;
	ep_set_phase(ctx->waiter, "idle");
	return 0;
}

int ep_ll_combine_wait(struct ep_ll *ctx)
{
	if (!ctx->comb_pending)
		return -EINVAL;
	ep_set_phase(ctx->waiter, "ll.combine.wait");
	int rc = wait_all(ctx, SIG_COMB_SENT, ctx->comb_calls);
	ep_set_phase(ctx->waiter, "idle");
	return rc;
}

/* out = bf16(fmaf over token t's slots in order), from +0.0f: gathers
 * where each slot's expert output lies, then reduces. */
static void reduce_token(struct ep_ll *ctx, int t, const int64_t *idx, const float *wt,
			 uint16_t *out)
{
	const struct ep_ll_config *c = &ctx->cfg;
	int R = c->num_ranks, L = c->num_experts / R, K = c->num_topk, H = c->hidden, n = 0;
	size_t RN = (size_t)R * c->max_tokens;
	const int32_t *slot = ctx->slot + (size_t)t * K;
	for (int j = 0; j < K; j++) {
		if (slot[j] < 0 || idx[j] < 0 || idx[j] >= c->num_experts)
			continue; /* a -1 entry, or one dropped by an overflow */
		int o = (int)(idx[j] / L), e = (int)(idx[j] % L);
		const int32_t *begin = (const int32_t *)(region(ctx, o) + ctx->off.src_begin);
		size_t pos = (size_t)begin[(size_t)ctx->rank * L + e] + (size_t)slot[j];
		ctx->rows[n] = combine_area(ctx, o) + ((size_t)e * RN + pos) * H;
		ctx->weights[n++] = wt[j];
	}
	reduce(ctx->rows, ctx->weights, n, H, out);
}

int ep_ll_combine_recv(struct ep_ll *ctx, const int64_t *topk_idx, const float *topk_weights,
		       uint16_t *out)
{
	int K = ctx->cfg.num_topk, H = ctx->cfg.hidden, rc;
	if (!ctx->comb_pending)
		return -EINVAL;
	uint32_t call = ctx->comb_calls;
	ep_set_phase(ctx->waiter, "ll.combine.recv");
	if ((rc = wait_all(ctx, SIG_COMB_SENT, call)))
		return rc;
	for (int t = 0; t < ctx->num_tokens; t++)
		reduce_token(ctx, t, topk_idx + (size_t)t * K, topk_weights + (size_t)t * K,
			     out + (size_t)t * H);
	ep_flag_store(signal_of(ctx, ctx->rank, SIG_COMB_RECVD), call);
	ctx->comb_pending = 0;
	ep_set_phase(ctx->waiter, "idle");
	return 0;
}

int ep_ll_combine(struct ep_ll *ctx, const uint16_t *x, const int64_t *topk_idx,
		  const float *topk_weights, uint16_t *out)
{
	int rc = ep_ll_combine_send(ctx, x);
	return rc ? rc : ep_ll_combine_recv(ctx, topk_idx, topk_weights, out);
}
