/* ascend.h - Ascend's MoE dispatch/combine (npu_moe_distribute_dispatch_v2 / combine_v2) between ranks sharing memory.
 *
 * Semantics are parallel-semantics.md sections 4 and 5 (A3, V2): EP ranks
 * [0, S_r) host the shared experts (shared expert j on ranks j*rpse + [0,
 * rpse), rpse = S_r / S_n), ranks [S_r, R) host L = E / (R - S_r) routed
 * experts each (expert e on rank S_r + e / L, local e % L). Every slot
 * (t, j) with expert_ids[t][j] = e >= 0 sends one row to e's rank; every
 * active token also goes to each shared expert j on rank (me % rpse) +
 * j*rpse. A routed rank's rows are grouped by local expert, then source
 * rank, then source token (occurrence); a shared rank's by source rank,
 * then token. With quant the row is int8 with one float scale, per row and
 * destination: ds = 127/amax of x (times the smoothing row S_n + e, or j
 * for shared expert j), q = rint(x * ds), scale = 1/ds. Combine returns
 * each row to its source slot (by assist_info_for_combine) and sums there
 * in float, Muls and Add each rounded, routed slots in order weighted,
 * then the shared experts unweighted, then shared_expert_x; one rounding
 * to bf16. comm_quant sends the expert outputs as int8 in blocks of 8.
 *
 * The collective is a function of (params, EP rank, arena, waiter), so a
 * caller can run it over any group of ranks that share an arena: the
 * plain EP variant (cli/ascend.c) and a MoE layer's EP group alike.
 *
 * Across nodes (params.ranks_per_node P < R, a transport endpoint bound by
 * ep_ascend_attach_net) the arena is a node's: counts [R][E + 2] and the
 * areas of its P ranks. Rows for a rank of another node go through the
 * rank's staging area and one put per block into the same place of the
 * peer's area (collectives/ascend_net.c); the counts rows of other nodes
 * arrive by put in a private table of each rank. MC2 has no node
 * forwarding: a full mesh, every pair its own connection.
 *
 * Data path: push. After the counts exchange (one barrier), a sender
 * writes each row straight into its row of the receiver's area, with its
 * scale and its assist triple; a barrier closes dispatch. In combine the
 * expert rank writes each output row straight into the slot (t, j) of the
 * source's landing area; a barrier, then every source reduces its own
 * slots. Every wait is ep_barrier's, with its deadline; no printing, no
 * exit. Output pointers refer to the arena and stay valid until the next
 * dispatch.
 */
#ifndef EP_ASCEND_H
#define EP_ASCEND_H

#include <stddef.h>
#include <stdint.h>

#include "collectives/sync.h"

/* One EP group's problem; identical on every rank of the group. */
struct ep_ascend_params {
	int num_ranks;       /* R = moe_ep (EP ranks 0..R-1) */
	int max_tokens;      /* BS: tokens per rank at most (a rank's active tokens are its first T_r <= BS) */
	int hidden;          /* H */
	int num_topk;        /* K */
	int num_experts;     /* E: routed experts (moe_expert_num), E % (R - S_r) == 0 */
	int shared_experts;  /* S_n, 0: none */
	int shared_ranks;    /* S_r, S_r % S_n == 0; 0 with S_n = 0 */
	int quant;           /* 1: dynamic int8 quantisation (quant_mode 2), else bf16 rows */
	int comm_quant;      /* 1: combine moves expert outputs as int8 blocks of 8 (comm_quant_mode 2) */
	int counts_prefix;   /* expert_token_nums as inclusive prefix sums (type 0), else counts (type 1) */
	int ranks_per_node;  /* P: EP ranks r share memory with the ranks of r / P; 0 (or R): all of them */
};

/* Local experts of a routed rank: E / (R - S_r). */
int ep_ascend_local_experts(const struct ep_ascend_params *p);
/* Rows rank `rank` can receive at most (A of section 4: BS * R * min(L, K)
 * on a routed rank, BS * ceil(R / rpse) on a shared rank). */
size_t ep_ascend_rank_capacity(const struct ep_ascend_params *p, int rank);
/* Bytes of one expand_x row: H (int8) or 2H (bf16). */
size_t ep_ascend_row_bytes(const struct ep_ascend_params *p);

/* One rank's dispatch inputs. */
struct ep_ascend_in {
	int num_tokens;             /* T_r: active tokens (x_active_mask: the first T_r of BS) */
	const uint16_t *x;          /* [T_r][H] bf16 */
	const int64_t *expert_ids;  /* [T_r][K] routed ids in [0, E), -1 an inactive slot; no duplicate in a row */
	const float *smooth;        /* [(S_n + E)][H] smoothing scales (quant only), or NULL */
};

/* What dispatch returns on a rank; pointers into the arena or the context. */
struct ep_ascend_out {
	size_t num_recv;                  /* rows received (n_own) */
	size_t capacity;                  /* A of this rank */
	const void *expand_x;             /* [num_recv][H] int8 or bf16 */
	const float *dynamic_scales;      /* [num_recv], or NULL without quant */
	const int32_t *assist_info;       /* [num_recv][3]: (source EP rank, source token, slot) */
	const int64_t *expert_token_nums; /* [num_local] */
	const int32_t *ep_recv_counts;    /* [num_counts] */
	int num_local;                    /* L on a routed rank, 1 on a shared rank */
	int num_counts;                   /* R * L on a routed rank, R on a shared rank */
};

struct ep_transport;
#define EP_ASCEND_MAX_NODES 32

/* A rank's view of the collective; process-private, points into the arena. */
struct ep_ascend {
	struct ep_ascend_params p;
	int rank;                   /* EP rank */
	struct ep_waiter *waiter;
	size_t capacity;            /* rows of every rank's area (the largest A) */
	int32_t *counts;            /* shared [R][E + 1]: rows each source sends per routed expert, then T_r */
	char *areas;                /* shared: R areas of area_bytes */
	size_t area_bytes;
	size_t area_off[7];         /* offsets of an area's parts (ascend.c plan_area), set once at init */
	size_t stage_off[3];        /* sizes of the staging parts (ascend.c stage_bytes), set once at init */
	int num_tokens;             /* T_r of the last dispatch */
	const int64_t *expert_ids;  /* the last dispatch's [T_r][K] (caller-owned, kept until combine) */
	int64_t *expert_token_nums; /* [L or 1] */
	int32_t *ep_recv_counts;    /* [R * L or R] */
	int32_t *next_row;          /* [E + 1] scratch: next row per destination expert, then shared */
	int32_t *stage_row;         /* [E + S_n] scratch, across nodes: next staging row per expert, shared expert */
	int8_t *qrow;               /* [H] scratch */
	float *frow;                /* [H] scratch */
	float *acc;                 /* [H] combine's accumulator */
	const uint16_t **sum_rows;  /* [K + S_n] combine: a token's returned slots, in the sum's order */
	float *sum_w;               /* [K] their weights (routed slots first) */
	struct ep_ascend_out out;
	int have_handle;            /* a dispatch ran: combine may follow */
	/* across nodes (ascend_net.c); net NULL on one host */
	int P, node;                /* ranks per node (R on one host), this rank's node */
	struct ep_transport *net;   /* the endpoint, or NULL */
	int peer_stride, peer_base; /* EP rank q is transport peer q * peer_stride + peer_base (ep_ascend_net_group) */
	uint32_t net_sends;         /* collective sends so far: each signalled every remote rank once */
	uint32_t *ledger;           /* NULL, or signals sent to each world rank by every user of the transport (ep_ascend_net_ledger) */
	uint32_t combines;          /* combines so far: the landing set a combine uses is its parity */
	uint64_t net_bytes[2][EP_ASCEND_MAX_NODES];  /* bytes put to each node by the last dispatch [0] and combine [1] */
	int64_t start_ns;                          /* the last op's start (ep_now_ns) */
	int64_t arrival_ns[EP_ASCEND_MAX_NODES];   /* its data from node m complete, ns after start_ns */
};

/* Shared arena bytes for a group (page aligned). */
size_t ep_ascend_arena_bytes(const struct ep_ascend_params *p);
/* Private bytes one rank's context allocates: an upper estimate. */
size_t ep_ascend_ctx_bytes(const struct ep_ascend_params *p);

/* Binds EP rank `rank` to an arena mapped at the same address in every rank
 * (zero-filled before fork). 0, or -EINVAL for params that break section 4's
 * rules, or -ENOMEM. */
int ep_ascend_init(struct ep_ascend *ctx, const struct ep_ascend_params *p, int rank, void *arena,
		   struct ep_waiter *w);
void ep_ascend_fini(struct ep_ascend *ctx);

/* Across nodes, after init: registers this rank's area with net (before
 * connect). 0 or the transport's code. */
int ep_ascend_attach_net(struct ep_ascend *ctx, struct ep_transport *net);
/* A group strided in the world (Ascend's MoE-EP group g with moe_tp > 1):
 * EP rank q is transport peer (world rank) q * stride + base. Before
 * ep_ascend_peers; without it EP rank = world rank. */
void ep_ascend_net_group(struct ep_ascend *ctx, int stride, int base);
/* Another module signals some of the group's peers over the same
 * transport (cli/ascend_tp.c: its attention-TP and MoE-TP groups across
 * nodes): ledger[w] counts every signal this rank sent to world rank w,
 * each user adds its own, and a wait for w waits for ledger[w] (every
 * exchange is symmetric per pair and runs in the same order on both
 * sides). Before the first op; the caller owns ledger [world ranks]. */
void ep_ascend_net_ledger(struct ep_ascend *ctx, uint32_t *ledger);
/* The transport peers (world ranks) of the group's ranks on other nodes
 * (the full mesh to connect); returns how many. */
int ep_ascend_peers(const struct ep_ascend *ctx, int *peers);
/* Every rank of the group meets (node barrier, then a signal to and from
 * every remote rank). 0, -EP_ETIMEDOUT or the transport's code. */
int ep_ascend_barrier(struct ep_ascend *ctx);
/* Ends a caller's own puts over the group's mesh (a layer's attention-TP
 * gather across nodes, cli/ascend.c): one signal to every remote rank,
 * after this rank's puts, then theirs awaited (the same count on every
 * rank, so the collective's sends stay in step). Collective over the
 * group; blocks. 0, or the transport's code with the rank, its node, its
 * phase and the silent peer named (the network deadline). */
int ep_ascend_exchange(struct ep_ascend *ctx);

/* Dispatch: collective, blocks until every row for this rank has landed.
 * in->expert_ids must stay valid until the next combine returns. 0,
 * -EP_ETIMEDOUT, -EP_ENOSPC (a rank's rows exceed its capacity: every rank
 * sees the same counts and fails alike) or -EINVAL (an id out of range or a
 * duplicate in a row). */
int ep_ascend_dispatch(struct ep_ascend *ctx, const struct ep_ascend_in *in, struct ep_ascend_out *out);

/* Combine: collective, blocks. expand_y [num_recv][H] bf16: the expert
 * outputs in dispatch row order (private memory is fine); weights [T_r][K]
 * (expert_scales); shared_x [T_r][H] bf16 or NULL; writes out [T_r][H] bf16.
 * Needs a previous dispatch. 0, -EP_ETIMEDOUT or -EINVAL. */
int ep_ascend_combine(struct ep_ascend *ctx, const uint16_t *expand_y, const float *weights,
		      const uint16_t *shared_x, uint16_t *out);

#endif
