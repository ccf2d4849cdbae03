/* buffer_hints.c - DeepEP's buffer size hints and Ascend's HCCL_BUFFSIZE minimum, formula by formula.
 *
 * Every product and sum goes through mul()/add(), which set *ovf instead
 * of wrapping; a function returns -EP_EUSAGE when any step overflowed. The
 * constants are DeepEP's: kNumMaxTopK = kNumMaxScales = 128 in the normal
 * hints, sizeof(SourceMeta) = 8 (two ints, csrc/kernels/legacy/internode.cu
 * get_source_meta_bytes), topk_idx_t = int64_t, int4 = 16 bytes,
 * nv_bfloat162 = 4 bytes, NUM_BUFFER_ALIGNMENT_BYTES = 128.
 */
#include "cli/buffer_hints.h"

#include <stddef.h>

#include "collectives/error.h"

#define MB (1024ull * 1024ull)
#define SOURCE_META_BYTES 8ull
#define MAX_TOPK 128ull   /* kNumMaxTopK of the normal hints */
#define MAX_SCALES 128ull /* kNumMaxScales */

static uint64_t mul(uint64_t a, uint64_t b, int *ovf)
{
	uint64_t r;
	if (__builtin_mul_overflow(a, b, &r))
		*ovf = 1;
	return r;
}

static uint64_t add(uint64_t a, uint64_t b, int *ovf)
{
	uint64_t r;
	if (__builtin_add_overflow(a, b, &r))
		*ovf = 1;
	return r;
}

/* ((x + a - 1) / a) * a */
static uint64_t align_up(uint64_t x, uint64_t a, int *ovf)
{
	return mul(add(x, a - 1, ovf) / a, a, ovf);
}

static uint64_t ceil_div(uint64_t x, uint64_t d, int *ovf)
{
	return add(x, d - 1, ovf) / d;
}

/* deep_ep/buffers/legacy.py: config_map of get_dispatch_config / get_combine_config. */
static const struct {
	int ranks;
	int dispatch[4], combine[4]; /* nvl_send, nvl_recv, rdma_send, rdma_recv */
} default_configs[] = {
	{2, {24, 256, 6, 128}, {10, 256, 6, 128}},   {4, {6, 256, 6, 128}, {9, 256, 6, 128}},
	{8, {6, 256, 6, 128}, {4, 256, 6, 128}},     {16, {36, 288, 20, 128}, {4, 288, 12, 128}},
	{24, {32, 288, 8, 128}, {1, 288, 8, 128}},   {32, {32, 288, 8, 128}, {1, 288, 8, 128}},
	{48, {32, 288, 8, 128}, {1, 288, 8, 128}},   {64, {32, 288, 8, 128}, {1, 288, 8, 128}},
	{96, {20, 480, 12, 128}, {1, 480, 8, 128}},  {128, {20, 560, 12, 128}, {1, 560, 8, 128}},
	{144, {32, 720, 12, 128}, {2, 720, 8, 128}}, {160, {28, 720, 12, 128}, {2, 720, 8, 128}},
};

int ep_deepep_default_config(int R, int combine, struct ep_deepep_config *c)
{
	for (size_t i = 0; i < sizeof(default_configs) / sizeof(default_configs[0]); i++) {
		if (default_configs[i].ranks != R)
			continue;
		const int *v = combine ? default_configs[i].combine : default_configs[i].dispatch;
		/* Config's constructor: rdma recv rounded up to a multiple of rdma send */
		int recv = (v[3] + v[2] - 1) / v[2] * v[2];
		*c = (struct ep_deepep_config){EP_DEEPEP_NUM_SMS, v[0], v[1], v[2], recv};
		return 0;
	}
	return -1;
}

int ep_deepep_nvl_hint(const struct ep_deepep_config *c, uint64_t hidden_bytes, int R, uint64_t *out)
{
	if (R < 1 || !(R < EP_DEEPEP_NVL_PEERS || R % EP_DEEPEP_NVL_PEERS == 0) ||
	    !(R <= EP_DEEPEP_NVL_PEERS || c->num_sms % 2 == 0))
		return -1;
	int ovf = 0;
	uint64_t rdma_ranks = R / EP_DEEPEP_NVL_PEERS > 1 ? (uint64_t)(R / EP_DEEPEP_NVL_PEERS) : 1;
	uint64_t nvl_ranks = R < EP_DEEPEP_NVL_PEERS ? (uint64_t)R : EP_DEEPEP_NVL_PEERS;
	uint64_t ch = (uint64_t)(c->num_sms / 2);
	uint64_t slots = mul(mul(ch, nvl_ranks, &ovf), (uint64_t)c->nvl_recv, &ovf); /* channels x ranks x recv tokens */
	uint64_t per_token = add(add(hidden_bytes, SOURCE_META_BYTES, &ovf),
				 MAX_TOPK * 8 + MAX_TOPK * 4 + MAX_SCALES * 4, &ovf);
	uint64_t n = mul(mul(ch, nvl_ranks, &ovf), mul(2 * rdma_ranks + 3, 4, &ovf), &ovf);
	n = add(n, mul(slots, per_token, &ovf), &ovf);
	*out = align_up(n, 128, &ovf);
	return ovf ? -EP_EUSAGE : 0;
}

int ep_deepep_rdma_hint(const struct ep_deepep_config *c, uint64_t hidden_bytes, int R, uint64_t *out)
{
	if (R <= EP_DEEPEP_NVL_PEERS) { /* legacy mode: no RDMA buffer */
		*out = 0;
		return 0;
	}
	if (R % EP_DEEPEP_NVL_PEERS || c->num_sms % 2)
		return -1;
	int ovf = 0;
	uint64_t rdma_ranks = (uint64_t)(R / EP_DEEPEP_NVL_PEERS), ch = (uint64_t)(c->num_sms / 2);
	uint64_t slots = mul(mul(ch, rdma_ranks, &ovf), (uint64_t)c->rdma_recv, &ovf);
	/* each term x 2 (send and receive halves); the last is the int4 of each token */
	uint64_t per_token = add(add(hidden_bytes, SOURCE_META_BYTES, &ovf),
				 MAX_TOPK * 8 + MAX_TOPK * 4 + MAX_SCALES * 4 + 16, &ovf);
	uint64_t n = mul(mul(ch, rdma_ranks, &ovf), (EP_DEEPEP_NVL_PEERS * 2 + 2) * 2 * 4, &ovf);
	n = add(n, mul(mul(slots, per_token, &ovf), 2, &ovf), &ovf);
	*out = align_up(n, 128, &ovf);
	return ovf ? -EP_EUSAGE : 0;
}

int ep_deepep_normal_bytes(int R, int H, uint64_t *nvl, uint64_t *rdma)
{
	*nvl = *rdma = 0;
	for (int combine = 0; combine < 2; combine++) {
		struct ep_deepep_config c;
		uint64_t a, b;
		int rc;
		if (ep_deepep_default_config(R, combine, &c))
			return -1;
		if ((rc = ep_deepep_nvl_hint(&c, 2 * (uint64_t)H, R, &a)) ||
		    (rc = ep_deepep_rdma_hint(&c, 2 * (uint64_t)H, R, &b)))
			return rc;
		*nvl = a > *nvl ? a : *nvl;
		*rdma = b > *rdma ? b : *rdma;
	}
	return 0;
}

int ep_deepep_ll_rdma_hint(int N, int H, int R, int E, uint64_t *out)
{
	(void)R; /* the layout depends on the experts, not on the ranks */
	int ovf = 0;
	uint64_t h = (uint64_t)H, scales = h / 128, n = (uint64_t)N, e = (uint64_t)E;
	uint64_t bf16_row = mul(h, 2, &ovf), fp8_row = add(h, scales * 4, &ovf);
	uint64_t dispatch_msg = add(16, bf16_row > fp8_row ? bf16_row : fp8_row, &ovf);
	uint64_t combine_msg = add(scales * 4, bf16_row, &ovf);
	uint64_t en = mul(e, n, &ovf);
	uint64_t d_send = mul(n, dispatch_msg, &ovf), c_send = mul(en, combine_msg, &ovf);
	uint64_t d_recv = mul(en, dispatch_msg, &ovf), c_recv = c_send;
	uint64_t send = d_send > c_send ? d_send : c_send, recv = d_recv > c_recv ? d_recv : c_recv;
	uint64_t signal = align_up(mul(e, 4, &ovf), 128, &ovf);
	uint64_t total = mul(add(add(send, recv, &ovf), signal, &ovf), 2, &ovf);
	*out = mul(add(total, 128, &ovf) / 128, 128, &ovf); /* ((total + 128) / 128) * 128, as DeepEP writes it */
	return ovf ? -EP_EUSAGE : 0;
}

int ep_hccl_a2_min_mb(uint64_t BS, uint64_t W, uint64_t L, uint64_t K, uint64_t H, uint64_t *mb)
{
	int ovf = 0;
	uint64_t m = L < K ? L : K;
	uint64_t bytes = mul(add(mul(mul(mul(mul(BS, W, &ovf), m, &ovf), H, &ovf), 2, &ovf), 2 * MB, &ovf), 2, &ovf);
	*mb = ceil_div(bytes, MB, &ovf);
	return ovf ? -EP_EUSAGE : 0;
}

int ep_hccl_a2_layered_min_mb(uint64_t E, uint64_t BS, uint64_t H, uint64_t x_bytes, uint64_t K, uint64_t *mb)
{
	int ovf = 0;
	uint64_t row = add(mul(H, x_bytes, &ovf), mul(4 * ((K + 7) / 8 * 8), 4, &ovf), &ovf);
	uint64_t bytes = add(mul(mul(E, BS, &ovf), row, &ovf), 104 * MB, &ovf);
	*mb = ceil_div(bytes, MB, &ovf);
	return ovf ? -EP_EUSAGE : 0;
}

int ep_hccl_a3_min_mb(uint64_t BS, uint64_t W, uint64_t L, uint64_t K, uint64_t H, uint64_t *mb)
{
	int ovf = 0;
	/* 2^20 * (X - 2) / 2 >= rhs  <=>  X >= 2 + ceil(rhs / 2^19) */
	uint64_t rhs = mul(mul(mul(BS, 2, &ovf), add(H, 128, &ovf), &ovf), add(add(mul(W, L, &ovf), K, &ovf), 1, &ovf), &ovf);
	*mb = add(2, ceil_div(rhs, MB / 2, &ovf), &ovf);
	return ovf ? -EP_EUSAGE : 0;
}
