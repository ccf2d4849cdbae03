/* recv_area.c - the receive/combine area of normal dispatch: layout, outputs, per-expert counts. */
#include "collectives/recv_area.h"

/* Offsets of the pieces inside one area; one function so sizing and binding agree. */
struct area_plan {
	size_t x, scales, topk_idx, topk_w, src, cx, cw, bytes;
};

static void plan(const struct ep_shape *s, size_t cap, struct area_plan *p)
{
	size_t H = (size_t)s->hidden, K = (size_t)s->num_topk;
	size_t S = (size_t)ep_dtype_num_scales(s->dtype, s->hidden), a = 0;
	p->x = a;        a = ep_align_up(a + cap * ep_dtype_row_bytes(s->dtype, s->hidden), EP_PAGE);
	p->scales = a;   a = ep_align_up(a + cap * S * sizeof(float), EP_PAGE);
	p->topk_idx = a; a = ep_align_up(a + cap * K * sizeof(int64_t), EP_PAGE);
	p->topk_w = a;   a = ep_align_up(a + cap * K * sizeof(float), EP_PAGE);
	p->src = a;      a = ep_align_up(a + cap * sizeof(int32_t), EP_PAGE);
	p->cx = a;       a = ep_align_up(a + cap * H * sizeof(uint16_t), EP_PAGE);
	p->cw = a;       a = ep_align_up(a + cap * K * sizeof(float), EP_PAGE);
	p->bytes = a;
}

size_t ep_recv_area_bytes(const struct ep_shape *s, size_t cap)
{
	struct area_plan p;
	plan(s, cap, &p);
	return p.bytes;
}

struct ep_recv_area ep_recv_area_at(void *base, const struct ep_shape *s, size_t cap)
{
	struct area_plan p;
	char *a = base;
	plan(s, cap, &p);
	return (struct ep_recv_area){
		.x = a + p.x,
		.x_scales = (float *)(a + p.scales),
		.topk_idx = (int64_t *)(a + p.topk_idx),
		.topk_weights = (float *)(a + p.topk_w),
		.src_idx = (int32_t *)(a + p.src),
		.combine_x = (uint16_t *)(a + p.cx),
		.combine_w = (float *)(a + p.cw),
	};
}

struct ep_dispatch_out ep_recv_area_outputs(struct ep_recv_area *a, const struct ep_shape *s,
					    size_t num_recv, int topk, int weights,
					    const int32_t *num_recv_tokens_per_expert,
					    const int32_t *rank_prefix_matrix)
{
	return (struct ep_dispatch_out){
		.num_recv = num_recv,
		.recv_x = a->x,
		.recv_x_scales = ep_dtype_num_scales(s->dtype, s->hidden) ? a->x_scales : NULL,
		.recv_topk_idx = topk ? a->topk_idx : NULL,
		.recv_topk_weights = weights ? a->topk_weights : NULL,
		.recv_src_idx = a->src_idx,
		.num_recv_tokens_per_expert = num_recv_tokens_per_expert,
		.rank_prefix_matrix = rank_prefix_matrix,
	};
}

void ep_recv_tokens_per_expert(const struct ep_shape *s, int rank, const int32_t *expert_counts,
			       int32_t *out)
{
	int R = s->num_ranks, E = s->num_experts, L = ep_local_experts(s);
	int align = s->expert_alignment > 0 ? s->expert_alignment : 1;
	int32_t prefix = 0;
	for (int e = 0; e < L; e++) {
		int32_t n = 0;
		for (int i = 0; i < R; i++)
			n += expert_counts[i * E + rank * L + e];
		n = (n + align - 1) / align * align;
		prefix += n;
		out[e] = s->expert_counts == EP_COUNTS_PREFIX ? prefix : n;
	}
}
