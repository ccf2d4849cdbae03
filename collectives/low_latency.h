/* low_latency.h - DeepEP low-latency dispatch/combine: shared memory within a node, a transport across nodes.
 *
 * Semantics are DeepEP V1's (csrc/kernels/internode_ll.cu). Dispatch sends one
 * message per (token, top-k slot) whose expert id is in [0, E) (-1 entries
 * are skipped), optionally cast to FP8 E4M3 per token and per 128 channels
 * (ep_fp8_cast_row: DeepEP's scale formulas, round_scale, UE8M0), and packs
 * them per local expert into [L][R*N][H]. Pack order is canonical where
 * DeepEP's is not: source rank ascending, then source token ascending (then
 * top-k slot, for a token naming one expert twice), so
 *   layout_range[e][r] = begin << 32 | count,  begin = sum of the counts
 * of sources < r. Scales come back as DeepEP returns them: float
 * [L][R*N][S] logically, stored column-major in the last two dims (storage
 * [L][S][R*N]), or with UE8M0 int32 [L][H/512][R*N] storage, byte k of a
 * word being block 4w + k. Combine brings every expert output back to its
 * token and computes out[t] = bf16(acc), acc = fmaf(y_j, w_j, acc) over the
 * top-k slots in order from +0.0f.
 *
 * Data path: the sender writes each token once, the receiver copies each
 * byte it receives once; every transfer is a pull. Pulling lets a receiver
 * put rows at their canonical positions as soon as it has every source's
 * counts, which arrive with the sources' flags: pushing would need either a
 * counts exchange first (one more round trip) or DeepEP's atomic slot
 * counters (a nondeterministic order).
 *  - dispatch.send: the sender casts each token ONCE into its own send area
 *    and publishes, per destination expert, the list of its tokens (in
 *    token order) and their count, then raises its dispatch flag;
 *  - dispatch.recv: the receiver waits for every source's flag, computes
 *    the canonical positions from the counts and copies the rows it needs
 *    straight from the senders' send areas into its packed outputs (FP8
 *    scales travel as floats; the receiver stores them column-major and,
 *    with UE8M0, packs their exponent bytes, as DeepEP's receiver does); it also
 *    publishes src_begin[s][e] (where source s's rows of local expert e
 *    start) for the token owners' combine;
 *  - combine.send: the expert owner's outputs sit in its shared combine
 *    area, [L][R*N][H] bf16 at the packed positions; zero-copy callers wrote
 *    them there themselves (ep_ll_combine_buffer), otherwise combine copies
 *    the valid rows of the caller's x there, as DeepEP's non-zero-copy path
 *    copies into its send buffer; then it raises its combine flag;
 *  - combine.recv: the token owner waits for every rank's combine flag and,
 *    for each of its tokens and slots, reads row src_begin[me][e] + i of the
 *    owner's area, i being the token's index in its own list for that
 *    expert (known since its dispatch.send), and reduces with fmaf.
 *
 * Reuse guards. A fast rank must not overwrite what a slow peer still reads:
 *  - dispatch send areas are double-buffered by dispatch call parity (as
 *    DeepEP toggles its two buffers). Call c writes area c % 2 once every
 *    rank finished receiving call c - 2, which is always already true: the
 *    writer's receive of call c - 1 waited for every peer's send c - 1, which
 *    each peer issued after its receive c - 2. The check is R loads;
 *  - the combine area is single: combine c (or a zero-copy writer) waits
 *    until every rank finished receiving combine c - 1. Between two
 *    combines separated by a dispatch this too holds already (the writer's
 *    dispatch receive waited for every peer's next send), so the common
 *    case pays R loads and no memory is doubled; back-to-back combines
 *    wait for the slowest reader, as they must. (DeepEP doubles this
 *    buffer too; at its test shape it is 528 MB per rank.)
 *  - src_begin is rewritten by the next dispatch.recv, which starts only once
 *    every peer sent that dispatch, i.e. finished its previous combine.
 * Calls are strictly ordered per rank: a send must be followed by its
 * receive before the next send (dispatch or combine); -EINVAL otherwise.
 *
 * Across nodes (cfg.ranks_per_node P < R): ranks q = node * P + local. The
 * arena is the node's (P rank regions); peers of the same node work as above,
 * through it. Every pair of ranks on different nodes is connected by the
 * transport (a full mesh, as DeepEP's low-latency kernels write straight to
 * each expert's rank: R * (R - P) / 2 connections in the job, R - P per
 * rank). Each rank registers two regions: its remote areas (receive areas
 * and staging) and its combine area (a put source):
 *  - dispatch.send also builds, per remote rank d, one block in its staging
 *    area: its counts for d's L experts, the token lists, then the messages
 *    (payload and float scales) in list order; one put into d's receive
 *    area (slot of this source, by dispatch parity), one signal;
 *  - dispatch.recv waits for every remote source's signal and copies its
 *    rows from the block, as it copies a local source's from its send area;
 *  - combine.send puts, per remote token owner t and local expert e, the
 *    rows of t's tokens (contiguous in the combine area) into t's combine
 *    receive area (slot of this owner, by combine parity), then signals t;
 *  - combine.recv waits for every remote owner's signal and reads those
 *    rows where they landed (the token's index in its list says which).
 * Signals are counted per peer: every rank signals every remote rank once
 * per dispatch.send, combine.send and ep_ll_barrier, so with the calls made
 * in the same order on every rank (as DeepEP requires) a rank waits for the
 * count of its own sends so far. Reuse of remote areas is guarded as the
 * send areas are, by parity: a rank's send of call c follows its receive
 * of call c - 1, which waited for every peer's send c - 1, which that peer
 * issued after its receive c - 2 (for dispatch and combine alike). The
 * staging area is free again once the signal after its put has returned.
 *
 * Kernels (low_latency_kernels.c): the sender's FP8 cast is a branch-free
 * rewrite of ep_fp8_cast_row that -O2 vectorises (bit-identical, tested on
 * every BF16 value); combine keeps each chunk of accumulators in L1 while a
 * token's rows stream by, with FMA instructions where the CPU has them
 * (exactly fmaf). Both pick an AVX2 clone at run time.
 *
 * Fast path: no allocation after ep_ll_init, and no system call when ranks
 * have cores of their own: flags are raised with an atomic add that calls
 * futex_wake only when someone sleeps, and waits spin before they sleep
 * (collectives/sync.h), every wait bounded by the waiter's deadline. Across
 * nodes, the transport's calls (each bounded by the transport's deadline)
 * are the only system calls.
 *
 * The arena holds, per rank: signals, src_begin, two dispatch send areas,
 * the combine area, and this rank's own outputs (packed_recv_x, scales,
 * counts, src_info, layout_range), and across nodes the two receive areas
 * for remote sources, the two for remote owners and the staging area, so
 * that the launcher's memory check covers everything the layout needs. All
 * sizes follow (N, H, E, R, P); a remote slot holds min(N*K, N*L) messages,
 * the most one rank can send another.
 */
#ifndef EP_LOW_LATENCY_H
#define EP_LOW_LATENCY_H

#include <stddef.h>
#include <stdint.h>

#include "collectives/ep.h"
#include "collectives/low_latency_kernels.h"
#include "collectives/sync.h"
#include "collectives/transport/transport.h"

#define EP_LL_MAX_NODES 32

/* The shape of a low-latency buffer; identical in every rank. */
struct ep_ll_config {
	int num_ranks;    /* R */
	int hidden;       /* H: elements per token row */
	int num_topk;     /* K */
	int num_experts;  /* E, a multiple of R */
	int max_tokens;   /* N: num_max_dispatch_tokens_per_rank, >= 1 */
	enum ep_dtype dtype; /* BF16 or FP8 (cast by dispatch) */
	int round_scale;  /* FP8: power-of-two scales */
	int use_ue8m0;    /* FP8: scales packed as UE8M0 bytes (needs round_scale, H % 512 == 0) */
	int ranks_per_node; /* P: ranks sharing one arena (a node), dividing R; 0 = R (one host) */
};

/* Dispatch outputs of one rank (DeepEP's tensors); they live in the arena
 * and stay valid until the next dispatch.recv. Only the first
 * packed_recv_count[e] rows of expert e are defined. */
struct ep_ll_dispatch_out {
	void *packed_recv_x;           /* [L][R*N][H] e4m3 bytes or bf16 */
	void *packed_recv_x_scales;    /* float [L][S][R*N] or int32 [L][H/512][R*N]; NULL for BF16 */
	int32_t *packed_recv_count;    /* [L] */
	int32_t *packed_recv_src_info; /* [L][R*N] source token index */
	int64_t *packed_recv_layout_range; /* [L][R] begin << 32 | count */
};

/* What crossed the network in the last dispatch or combine of a rank
 * (multi-node only), for bandwidth reports. */
struct ep_ll_figures {
	int64_t start_ns;                       /* the send phase began (ep_now_ns) */
	int64_t arrival_ns[EP_LL_MAX_NODES];    /* start -> every rank of node m seen landed; 0 for ours */
	uint64_t net_bytes[EP_LL_MAX_NODES];    /* bytes this rank put to node m */
	int landed;                             /* arrival_ns is complete */
};

/* A rank's view of the collective; process-private. Fields are read-only
 * for callers. */
struct ep_ll {
	struct ep_ll_config cfg;   /* ranks_per_node resolved (P) */
	int rank;                  /* global */
	int node, local, nodes;    /* rank = node * P + local */
	struct ep_waiter *waiter;  /* the node's ranks, indexed by local rank (a group's: ll_waiter_rank) */
	int stride, base;          /* group rank q is world rank q stride + base (1, 0: the group is the world) */
	struct ep_transport *net;  /* connected to every rank of other nodes; NULL on one node */
	char *arena;               /* the node's, same address in its every rank */
	size_t rank_bytes;         /* bytes of one rank's region */
	struct {
		size_t src_begin, send[2], combine; /* offsets inside a rank region */
		size_t lists, rows, msg;   /* inside a send area; msg: message stride (bytes) */
		size_t net_recv[2], net_crecv[2], net_stage; /* multi-node areas of a rank region */
		size_t block, cblock, wire_msg; /* one remote source's / owner's slot; message stride on the wire */
	} off;
	struct ep_ll_dispatch_out out;
	uint32_t disp_calls;       /* dispatch sends issued */
	uint32_t comb_calls;       /* combine sends issued */
	uint32_t op_seq;           /* number of the op in flight (collectives/traffic.h) */
	int disp_pending;          /* a dispatch was sent, not yet received */
	int comb_pending;          /* likewise for combine */
	int have_handle;           /* a dispatch was received: combine may run */
	const uint16_t *own_x;     /* ep_ll_combine's x: its own tokens' rows read there, not copied */
	int num_tokens;            /* tokens of the last dispatch */
	int overflow;              /* the last dispatch.send dropped entries */
	int32_t *send_count;       /* [E] scratch of dispatch.send */
	int32_t *slot;             /* [N][K] index of (t, j) in its expert's list, -1 when skipped */
	const uint16_t **rows;     /* [K] combine: one token's expert output rows */
	float *weights;            /* [K] and their weights */
	/* multi-node */
	uint32_t net_sends;        /* signals sent to each remote rank so far */
	uint32_t disp_target, comb_target; /* signals from each remote rank that complete the pending op */
	int32_t *net_at;           /* [R] dispatch.recv: next row of a remote source's block */
	int32_t *net_first;        /* [E] row of expert g's first message in its owner's combine block */
	struct ep_ll_figures last_dispatch, last_combine;
};

/* Sizing and binding */

/* 0 when cfg is a valid low-latency shape, -EINVAL otherwise, -EOVERFLOW
 * when its arena would pass 2^60 bytes (more than any memory). */
int ep_ll_config_check(const struct ep_ll_config *cfg);

/* Arena bytes of one node: its P rank regions (page aligned); 0 for an
 * invalid cfg, SIZE_MAX for one too large to address. */
size_t ep_ll_arena_bytes(const struct ep_ll_config *cfg);
/* Private (heap) bytes one rank's context allocates: an upper estimate. */
size_t ep_ll_rank_bytes(const struct ep_ll_config *cfg);

/* Binds global rank `rank` to its node's arena (mapped before fork at the
 * same address in every rank of the node, zero-filled; ep_ll_arena_bytes)
 * and allocates its small private scratch. Several nodes: net is this
 * rank's transport endpoint, initialised but not connected; init registers
 * the rank's region with it as region 0, and the caller then connects it
 * to the ranks ep_ll_peers names. One node: net is NULL. Never blocks.
 * 0, -EINVAL (bad cfg or rank, net missing), -EOVERFLOW, -ENOMEM or the
 * transport's error (its line in net->error). */
int ep_ll_init(struct ep_ll *ctx, const struct ep_ll_config *cfg, int rank, void *arena,
	       struct ep_waiter *w, struct ep_transport *net);
/* A group strided in the world (a MoE layer's MoE-EP group g of a
 * configuration with moe_tp > 1, ranks_per_node P / moe_tp per node): group
 * rank q is world rank q * stride + base (0 <= base < stride). That world
 * rank is the group rank's transport peer and its name in every message;
 * the waiter is the world's (its node's world ranks: group local rank l is
 * the waiter's rank l * stride + base, modulo the node's ranks: with
 * MoE-TP groups of whole nodes, stride a multiple of P, the group has one
 * rank per node, ranks_per_node 1), so the world's node barriers and
 * control blocks serve every group of the node. */
struct ep_ll_group {
	int stride, base;
};

/* ep_ll_init for group rank `rank` of grp (NULL: the world, as ep_ll_init).
 * Same contract; -EINVAL also when w's rank is not this rank's world rank
 * (in its node) or grp is malformed. */
int ep_ll_init_group(struct ep_ll *ctx, const struct ep_ll_config *cfg, int rank, void *arena,
		     struct ep_waiter *w, struct ep_transport *net, const struct ep_ll_group *grp);

/* The dispatch outputs of rank `rank` in a node arena laid out for cfg
 * (the rank's region, as its own ep_ll_init binds them): a read-only view
 * for a process reading another rank's receive layout (a MoE-TP group's
 * gather). Never blocks. 0 or -EINVAL (bad cfg, or rank not of the node
 * whose arena it is: rank % ranks_per_node picks the region). */
int ep_ll_outputs_view(const struct ep_ll_config *cfg, int rank, void *arena, struct ep_ll_dispatch_out *out);

/* Frees the scratch; accepts a zeroed or finished ctx. The transport is
 * the caller's. */
void ep_ll_fini(struct ep_ll *ctx);

/* The ranks of other nodes as transport peers (world ranks, R - P of them). */
int ep_ll_peers(const struct ep_ll *ctx, int *peers);

/* All R ranks meet: the node's barrier, then one signal each way with every
 * remote rank. Collective like the ops (same order on every rank). 0 or
 * -EP_ETIMEDOUT / -EP_EPEERDIED, recorded in the rank's control block. */
int ep_ll_barrier(struct ep_ll *ctx);

/* The hand-over from another user of the node's arena (DeepEP's
 * clean_low_latency_buffer, which a buffer shared with normal mode needs
 * before low-latency kernels run again). Signals are raised by atomic adds
 * onto lines that must start at zero, as DeepEP's receive counters and
 * flags are; once normal mode wrote over the arena, they hold its bytes.
 * Collective over the node's ranks, one node only: a barrier (every rank
 * is done with the arena), this rank zeroes its signal lines and restarts
 * its call numbering, a barrier (no rank signals into a line not yet
 * clean). keep_signals leaves the lines as they are, as forgetting the
 * clean would (for --fault noclean and tests): a later receive then finds
 * a line more than one call ahead and fails with -EP_EWRONGDATA naming it,
 * or, when what was left reads as behind, times out waiting for it. 0,
 * -EINVAL (across nodes, or an op half done), -EP_ETIMEDOUT. */
int ep_ll_clean(struct ep_ll *ctx, int keep_signals);

/* Across nodes: one collective send of the caller's own puts on ctx's
 * transport (made before the call, e.g. a layer's attention gather): one
 * signal to every remote rank, then every remote rank's awaited. Collective
 * like the ops. 0 or a code as for ep_ll_barrier. */
int ep_ll_exchange(struct ep_ll *ctx);

/* Dispatch. Across nodes any call below that waits or sends may also end
 * in -EP_EPEERDIED (a remote rank's process or connection is gone); the
 * rank's control block then names that rank and its node. */

/* Send phase (DeepEP's dispatch with return_recv_hook, before hook()):
 * casts x [T][H] bf16 into this rank's send area, publishes per-expert token
 * lists from topk_idx [T][K] and raises the flag; across nodes, then puts
 * one block to every remote rank. Blocks only in the (normally already
 * satisfied) reuse guard and in the transport's puts and signals. 0,
 * -EINVAL (T > N, a call out of order), -EP_ETIMEDOUT, -EP_EPEERDIED, or
 * -EP_ENOSPC when a token names one expert so often that its list passes
 * N entries (those entries are dropped, the flag is still raised so that
 * peers do not hang). */
int ep_ll_dispatch_send(struct ep_ll *ctx, const uint16_t *x, const int64_t *topk_idx,
			int num_tokens);

/* Blocks until every source's send of the current dispatch has landed
 * (optional: dispatch_recv waits by itself). 0 or -EP_ETIMEDOUT. */
int ep_ll_dispatch_wait(struct ep_ll *ctx);

/* Receive phase (hook()): waits for every source, packs the rows into the
 * outputs and fills out. 0, -EINVAL (no send pending) or -EP_ETIMEDOUT. */
int ep_ll_dispatch_recv(struct ep_ll *ctx, struct ep_ll_dispatch_out *out);

/* Both phases. */
int ep_ll_dispatch(struct ep_ll *ctx, const uint16_t *x, const int64_t *topk_idx, int num_tokens,
		   struct ep_ll_dispatch_out *out);

/* Combine */

/* Zero copy: the combine area, bf16 [L][R*N][H] at the packed positions of
 * the last dispatch (DeepEP's get_next_low_latency_combine_buffer). Blocks
 * until no peer reads it any more (every rank of the node received the last
 * combine; ranks of other nodes read the copies they were sent),
 * then the caller may write it and pass x = NULL to combine. 0 or
 * -EP_ETIMEDOUT. */
int ep_ll_combine_buffer(struct ep_ll *ctx, uint16_t **buf);

/* Send phase: x [L][R*N][H] bf16 expert outputs in the packed layout of the
 * last dispatch (only valid rows are read), or NULL when they were written
 * into ep_ll_combine_buffer (zero copy). 0, -EINVAL (no dispatch received,
 * or a call out of order) or -EP_ETIMEDOUT. */
int ep_ll_combine_send(struct ep_ll *ctx, const uint16_t *x);

/* Blocks until every rank's combine send has landed (optional). */
int ep_ll_combine_wait(struct ep_ll *ctx);

/* Receive phase: for each of the last dispatch's T tokens,
 * out[t] = bf16(fmaf over the top-k slots in order), topk_idx and
 * topk_weights [T][K] being the ones given to that dispatch. out [T][H].
 * 0, -EINVAL or -EP_ETIMEDOUT. */
int ep_ll_combine_recv(struct ep_ll *ctx, const int64_t *topk_idx, const float *topk_weights,
		       uint16_t *out);

/* Both phases. x must stay as it is until the call returns: the rows of
 * this rank's own tokens are reduced from x itself, not copied into the
 * area first (no peer reads them; DeepEP's kernel reads its own rows
 * through the same buffer, the bytes are the same). */
int ep_ll_combine(struct ep_ll *ctx, const uint16_t *x, const int64_t *topk_idx,
		  const float *topk_weights, uint16_t *out);

/* Layout helpers */

/* Scale entries per packed row as stored: H/128 floats, H/512 UE8M0 words,
 * or 0 for BF16. */
int ep_ll_scale_cols(const struct ep_ll_config *cfg);

/* Bytes of one packed_recv_x row: H (FP8) or 2H (BF16). */
size_t ep_ll_row_bytes(const struct ep_ll_config *cfg);

#endif
