/* moe_slice.c - attention-TP slices and the MoE-EP groups' views of them. */
#include "reference/moe_slice.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int ep_slices_init(struct ep_slices *s, int world, int tp, int moe_tp, int moe_ep, enum ep_slice_pad pad,
		   int tokens_per_dp, int uneven, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	*s = (struct ep_slices){.world = world, .tp = tp, .moe_tp = moe_tp, .moe_ep = moe_ep, .ndp = world / tp,
				.pad = pad};
	s->tokens = calloc((size_t)s->ndp, sizeof(int));
	s->step = calloc((size_t)s->ndp, sizeof(int));
	if (!s->tokens || !s->step) {
		ep_slices_fini(s);
		return -ENOMEM;
	}
	int most = 0;
	for (int d = 0; d < s->ndp; d++) {
		s->tokens[d] = ep_rank_num_tokens(tokens_per_dp, seed ^ 0x4450ULL, d, uneven); /* "DP" */
		most = s->tokens[d] > most ? s->tokens[d] : most;
	}
	int common = (most + tp - 1) / tp; /* align(max T_d, tp) / tp */
	for (int d = 0; d < s->ndp; d++)
		s->step[d] = pad == EP_SLICE_REPLICATE0 ? common : (s->tokens[d] + tp - 1) / tp;
	for (int r = 0; r < world; r++)
		if (ep_slice_len(s, r) > s->max_slice)
			s->max_slice = ep_slice_len(s, r);
	return 0;
}

void ep_slices_fini(struct ep_slices *s)
{
	free(s->tokens);
	free(s->step);
	memset(s, 0, sizeof(*s));
}

int ep_slice_first(const struct ep_slices *s, int r)
{
	return (r % s->tp) * s->step[r / s->tp];
}

int ep_slice_len(const struct ep_slices *s, int r)
{
	int d = r / s->tp, c = s->step[d], first = ep_slice_first(s, r);
	if (s->pad != EP_SLICE_NONE)
		return c;
	int left = s->tokens[d] - first;
	return left <= 0 ? 0 : left < c ? left : c;
}

int ep_slices_gathered(const struct ep_slices *s, int d)
{
	return s->pad == EP_SLICE_NONE ? s->tokens[d] : s->tp * s->step[d];
}

void ep_group_arrays_fini(struct ep_group_arrays *a)
{
	free(a->world_rank);
	free(a->num_tokens);
	free(a->x_key);
	free(a->first);
	free(a->real);
	memset(a, 0, sizeof(*a));
}

int ep_slices_group(const struct ep_slices *s, int g, struct ep_group_arrays *out)
{
	size_t n = (size_t)s->moe_ep;
	memset(out, 0, sizeof(*out));
	out->world_rank = calloc(n, sizeof(int));
	out->num_tokens = calloc(n, sizeof(int));
	out->x_key = calloc(n, sizeof(int));
	out->first = calloc(n, sizeof(int));
	out->real = calloc(n, sizeof(int));
	if (!out->world_rank || !out->num_tokens || !out->x_key || !out->first || !out->real) {
		ep_group_arrays_fini(out);
		return -ENOMEM;
	}
	for (int q = 0; q < s->moe_ep; q++) {
		int r = q * s->moe_tp + g;
		out->world_rank[q] = r;
		out->num_tokens[q] = ep_slice_len(s, r);
		out->x_key[q] = r / s->tp;
		out->first[q] = ep_slice_first(s, r);
		out->real[q] = s->tokens[r / s->tp];
	}
	out->view = (struct ep_group_view){.world_rank = out->world_rank, .num_tokens = out->num_tokens,
					   .x_key = out->x_key, .first = out->first, .real = out->real,
					   .replicate0 = s->pad == EP_SLICE_REPLICATE0};
	return 0;
}
