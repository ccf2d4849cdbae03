/* transform.c - deterministic per-(rank, expert) affine map on BF16 rows. */
#include "reference/transform.h"

#include "collectives/numeric.h"

/* Exact binary fractions in [0.75, 1.25), distinct for nearby (rank, e). */
static float factor(int rank, int local_expert)
{
	unsigned k = (unsigned)(rank * 37 + (local_expert + 1) * 11 + 1) & 255u;
	if (k == 128)
		k = 129; /* never exactly 1.0 */
	return 0.75f + (float)k / 512.0f;
}

void ep_expert_transform(int rank, int local_expert, const uint16_t *x, int hidden,
			 uint16_t *y)
{
	float a = factor(rank, local_expert);
	float b = (float)((rank % 16) + 1) / 1024.0f;
	for (int c = 0; c < hidden; c++) {
		float v = ep_bf16_to_f32(x[c]) * a; /* two roundings, never an FMA */
		y[c] = ep_f32_to_bf16(v + b);
	}
}

float ep_expert_weight(int rank, int local_expert, float w)
{
	return local_expert < 0 ? 0.0f : w * factor(rank, local_expert);
}

int ep_row_expert(const int64_t *row, int num_topk)
{
	int best = -1;
	for (int j = 0; row && j < num_topk; j++)
		if (row[j] >= 0 && (best < 0 || row[j] < best))
			best = (int)row[j];
	return best;
}
