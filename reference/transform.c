/* transform.c - deterministic per-(rank, expert) affine map on BF16 rows. */
#include "reference/transform.h"

#include <math.h>

#include "collectives/numeric.h"

/* Exact binary fractions in [0.75, 1.25), distinct for nearby (rank, e). */
static float factor(int rank, int local_expert)
{
	unsigned k = (unsigned)(rank * 37 + (local_expert + 1) * 11 + 1) & 255u;
	if (k == 128)
		k = 129; /* never exactly 1.0 */
	return 0.75f + (float)k / 512.0f;
}

/* WIDE's 64 column factors of (rank, expert): +-{1, 1.5} x 2^{-10, 0, 10}. */
static void wide_factors(int rank, int local_expert, float f[64])
{
	static const int k[3] = {-10, 0, 10};
	uint64_t key = ep_mix64(0x5eedf00dULL ^ ((uint64_t)(uint32_t)rank << 32) ^ (uint32_t)(local_expert + 1));
	for (int j = 0; j < 64; j++) {
		uint64_t h = ep_mix64(key + (uint64_t)j * 0x9e3779b97f4a7c15ULL);
		float m = ep_mix64(0xc01u + (uint64_t)j) & 1 ? 1.5f : 1.0f;
		f[j] = ldexpf(h & 1 ? -m : m, k[(h >> 1) % 3]);
	}
}

void ep_expert_transform(enum ep_payload payload, int rank, int local_expert, const uint16_t *x, int hidden,
			 uint16_t *y)
{
	if (payload != EP_PAYLOAD_NARROW) {
		float f[64];
		wide_factors(rank, local_expert, f);
		for (int c = 0; c < hidden; c++)
			y[c] = ep_f32_to_bf16(ep_bf16_to_f32(x[c]) * f[c & 63]); /* exact product, one rounding */
		return;
	}
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
