/* inputs.h - every rank's inputs, regenerated from the seed alone.
 *
 * Routing (topk_idx, topk_weights) comes from a GSL generator seeded with
 * (seed, rank); payloads (x, biases) from a counter-based hash of
 * (seed, stream, rank, token, column), spread as the payload kind says. Any process can therefore regenerate
 * any rank's inputs, which is how each rank checks its outputs without extra
 * communication, and how the launcher sizes buffers before spawning.
 */
#ifndef EP_INPUTS_H
#define EP_INPUTS_H

#include <stddef.h>
#include <stdint.h>

#include "collectives/ep.h"

/* How tokens pick experts (README, "Routing and imbalance", has the
 * formulas). Every generated kind gives K distinct experts per token and
 * honours group-limited routing (num_groups, num_topk_groups): a token's
 * experts lie in at most num_topk_groups groups.
 *   weighted kinds (ZIPF, LOGNORMAL): each expert has a popularity w_e, the
 *     same on every rank; a token draws its groups with probability
 *     proportional to their summed w_e, then its experts within them with
 *     probability proportional to w_e, repeats rejected.
 *   hot kinds (HOT, HOT_EXPERTS, HOT_RANK): a contiguous hot set of experts
 *     takes a fixed number of every token's slots (ep_routing_hot_set), drawn
 *     uniformly from it; the other slots are uniform over the experts
 *     outside it (within the token's groups). */
enum ep_routing_kind {
	EP_ROUTE_UNIFORM,     /* K distinct experts, uniform (within the chosen groups) */
	EP_ROUTE_ZIPF,        /* weighted, w_e = 1/(e+1)^s */
	EP_ROUTE_HOT,         /* slot 0 is always expert hot_expert, the rest uniform */
	EP_ROUTE_FILE,        /* rows read from a text file (loaded before fork) */
	EP_ROUTE_LOGNORMAL,   /* weighted, w_e = exp(sigma z_e), z_e standard normal from the seed */
	EP_ROUTE_HOT_EXPERTS, /* experts 0..hot_count-1 take round(hot_frac K) slots */
	EP_ROUTE_HOT_RANK,    /* rank hot_rank's experts take round(hot_frac K) slots */
	EP_ROUTE_ROTATING,    /* ZIPF (zipf_s) with the ids moved on every rotate_period iterations */
	EP_ROUTE_TRACE,       /* rows of a routing trace (reference/trace.h), a step per iteration */
};

struct ep_trace;
struct ep_group_arrays; /* reference/moe_slice.h */

/* The values tokens carry (--payload). An oracle is only as strong as its
 * data: with NARROW, sums of a few values are exact in fp32 and no order of
 * summation or fusion can be told apart; WIDE is built so that they can.
 *   NARROW  every value +-[2^-7, 2): sign, exponent 120..127, 7 random
 *           mantissa bits (epbench before --payload; results of that time).
 *   WIDE    sign random, exponent uniform in 2^-24..2^24 (49 binades),
 *           7 random mantissa bits: never zero, subnormal, inf or NaN, and
 *           nothing the expert stand-in or a weight makes of it is an fp32
 *           subnormal. The expert stand-in scales each column by
 *           +-2^{-10,0,10} x {1, 1.5} (reference/transform.h), so one token's
 *           returns from different ranks and slots are a large value, its
 *           exact negation and small terms; top-k weights come from four
 *           values (ties between slots, as softmax outputs tie), so a
 *           fused multiply-add and its unfused form differ.
 *   SPECIAL WIDE, with about 1 value in 13 replaced, per element from an
 *           independent hash: +0 (1/64), -0 (1/64), a BF16 subnormal (1/32,
 *           random sign, nonzero 7-bit mantissa), a value near the BF16
 *           maximum (1/128, 2^127 x [1, 2)), +-infinity (1/256) and a quiet
 *           NaN with a random payload (1/512). Everything downstream follows
 *           CUDA's rules without flush-to-zero (DeepEP builds without
 *           --use_fast_math): subnormals are kept, overflow gives infinity,
 *           inf - inf gives NaN, and every conversion of a NaN to BF16 gives
 *           0x7fff; the FP8 and INT8 casts treat NaN and infinity as
 *           collectives/numeric.h says. */
enum ep_payload { EP_PAYLOAD_NARROW, EP_PAYLOAD_WIDE, EP_PAYLOAD_SPECIAL };

const char *ep_payload_name(enum ep_payload p);

/* One rank's input tensors as another library saw them (epbench verify
 * reads them from a directory): when a routing has them, they replace what
 * the seed would generate. */
struct ep_loaded_rank {
	int num_tokens;               /* T_r */
	const void *x;                /* [T_r][H]: bf16 bits (BF16, INT8, low-latency), e4m3 bytes (FP8) */
	const float *x_scales;        /* [T_r][H/128] for FP8 normal mode, else NULL */
	const int64_t *topk_idx;      /* [T_r][K] */
	const float *topk_weights;    /* [T_r][K] */
	const uint16_t *bias[2];      /* [T_r][H] or NULL */
};

/* An EP group's ranks as views of a parallel configuration's world
 * (parallel-semantics.md section 2; reference/moe_slice.h builds it): EP
 * rank q is world rank world_rank[q]; it sends num_tokens[q] rows, row t
 * being row first[q] + t of its attention-DP group's T_d = real[q] rows
 * (payload stream x_key[q]), and past them a padding row: zeros, or with
 * replicate0 a copy of row 0. Routing and biases are drawn for the world
 * rank, so no two ranks of the world share them. */
struct ep_group_view {
	const int *world_rank, *num_tokens, *x_key, *first, *real;
	int replicate0;
};

/* The traffic: how many tokens each rank has, which experts they choose and
 * the values they carry; identical on every rank. */
struct ep_routing {
	const struct ep_loaded_rank *loaded; /* [R] or NULL: inputs from the seed */
	enum ep_payload payload;
	int uneven_tokens;      /* ranks send ep_rank_num_tokens() tokens, not all T */
	enum ep_routing_kind kind;
	double zipf_s;          /* ZIPF exponent */
	int hot_expert;         /* HOT: the expert every token picks first */
	double lognormal_sigma; /* LOGNORMAL: sigma of log w_e */
	int hot_count;          /* HOT_EXPERTS: N, the hot experts are 0..N-1 */
	int hot_rank;           /* HOT_RANK: the rank whose experts are hot */
	double hot_frac;        /* HOT_EXPERTS, HOT_RANK: F in (0, 1], share of each token's slots */
	double masked_ratio;    /* probability that an entry becomes -1 */
	int num_groups;         /* expert groups for group-limited routing (0: none) */
	int num_topk_groups;    /* groups one token may use (0: all) */
	const int64_t *file_idx; /* FILE: file_rows x K expert ids (-1 allowed) */
	size_t file_rows;
	/* routing that changes between iterations (reference/routing_step.h) */
	int rotate_period;      /* ROTATING: iterations per step */
	const struct ep_trace *trace; /* TRACE: loaded before fork */
	int trace_first;        /* TRACE: the step the first iteration replays */
	long step;              /* ROTATING, TRACE: the step ep_gen_routing gives (0 at first) */
	const struct ep_group_view *group; /* an EP group of a parallel configuration, or NULL */
	struct ep_group_arrays *group_owned; /* what group points into, when the routing owns it (freed with it) */
	struct ep_placement *placement; /* redundant experts (reference/placement.h): the kind picks
					 * logical experts, then this maps them to physical ones; or NULL */
};

/* Tokens rank `rank` sends: num_tokens, or with uneven a value in
 * [0, num_tokens] derived from (seed, rank); rank 0 always keeps num_tokens,
 * so the largest count is the configured one. Routing is still generated for
 * num_tokens rows; a rank uses its first T_r. */
int ep_rank_num_tokens(int num_tokens, uint64_t seed, int rank, int uneven);

/* The same for traffic r: loaded T_r, or ep_rank_num_tokens. */
int ep_routing_num_tokens(const struct ep_routing *r, int num_tokens, uint64_t seed, int rank);

/* The hot set of a hot kind: experts [*first, *first + *count), of which
 * every token takes *slots distinct ones (the first slots of its row).
 * slots = min(N, max(round(F K), K - (E - N))) for N hot experts and share
 * F (round: half away from zero), so the rest always fit outside the set;
 * HOT is the set {hot_expert} with one slot. 0 when r is not a hot kind. */
int ep_routing_hot_set(const struct ep_shape *s, const struct ep_routing *r, int *first, int *count,
		       int *slots);

/* Group-limited routing in force: *groups groups of E / groups experts, a
 * token uses *topk of them (< groups). 0 when a token may use any expert. */
int ep_routing_groups(const struct ep_shape *s, const struct ep_routing *r, int *groups, int *topk);

/* Payload streams of the counter-based hash. */
enum ep_stream { EP_STREAM_X = 0, EP_STREAM_BIAS0 = 1, EP_STREAM_BIAS1 = 2 };

struct ep_placement;

/* Routing of one rank: topk_idx [T][K] int64 and topk_weights [T][K] float
 * (weights in (0,1), for WIDE one of four values; masked entries keep their
 * weight, as in DeepEP). The ids do not depend on the payload.
 * Deterministic in (seed, rank). Loaded traffic: its rows, and -1 / 0 past
 * T_r. With a placement the kind draws among its logical experts and the
 * ids returned are physical (s->num_experts of them). 0 or -ENOMEM. */
int ep_gen_routing(const struct ep_shape *s, const struct ep_routing *r,
		   uint64_t seed, int rank, int64_t *topk_idx, float *topk_weights);

/* One BF16 row of a payload stream of traffic r, spread as r->payload says
 * (NaN and inf only with SPECIAL), or the loaded row (zeros where the
 * loaded traffic has no such tensor). */
void ep_gen_bf16_row(uint64_t seed, const struct ep_routing *r, enum ep_stream stream, int rank,
		     int64_t token, int hidden, uint16_t *row);

/* One x row in the dispatch dtype: BF16 -> row (uint16_t[H]); FP8 -> the BF16
 * row cast per 128 channels (DeepEP's formula) into row (uint8_t[H]) and
 * scales (float[H/128]); INT8 -> the BF16 row (quantised by dispatch). */
void ep_gen_x_row(const struct ep_shape *s, uint64_t seed, const struct ep_routing *r, int rank,
		  int64_t token, void *row, float *scales);

/* Reads a routing file: one token per line, K integers (expert id or -1),
 * '#' comments and blank lines skipped. On error returns -EP_EUSAGE and
 * writes one line naming the file, line and value into err. */
int ep_load_routing_file(const char *path, int num_topk, int num_experts,
			 int64_t **idx, size_t *rows, char *err, size_t errlen);

/* The 64-bit mixer behind the payload hash (splitmix64 finaliser). */
static inline uint64_t ep_mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

#endif
