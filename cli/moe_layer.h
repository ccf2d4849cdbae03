/* moe_layer.h - a parallel configuration's MoE layer, as one variant whose ops are its phases.
 *
 * parallel-semantics.md sections 2-3, on one host through shared memory.
 * Every rank puts its attention-TP slice (reference/moe_slice.h) into the
 * layer, then, in a2a mode:
 *   ep_dispatch     DeepEP normal dispatch inside its MoE-EP group
 *                   (collectives/intranode.h over the group's own arena);
 *   moe_tp_gather   the MoE-TP group's received rows, block i from member
 *                   (g + i) % moe_tp (block 0 its own);
 *   moe_tp_reduce   every member's partial output of the rows summed back to
 *                   the rows' owner (expert stand-in per member, untimed);
 *   ep_combine      DeepEP normal combine inside the MoE-EP group;
 *   attn_tp_gather  the attention-TP group's combined slices put back
 *                   together into the group's T_d rows;
 * and in allgather mode (MindIE ep_level 1): world_gather (every slice to
 * every rank), world_reduce (each rank's partial outputs summed, ascending
 * world rank, into the slice owners' rows), attn_tp_gather. Each op is
 * timed and checked bit for bit on its own; an op's prepare runs the phases
 * before it that have not run. The phases a configuration lacks (no
 * MoE-TP, tp = 1) are not in its runs (EP_OPS_* feature bits). With
 * --cached (a2a mode) every EP dispatch after the first is DeepEP's cached
 * dispatch with the group's handle; the later phases read the handle
 * dispatch's recv_src_idx and top-k (layer_ep_dispatch).
 *
 * Across nodes (epbench internode) the EP groups go over the network
 * (cli/moe_layer_ep.c). A MoE-TP or attention-TP group either lies inside
 * a node (its size divides the ranks of a node: shared memory) or holds
 * whole nodes (the node count divides it): then its members on other nodes
 * are reached over the rail peers, as allgather mode's world gather does
 * (cli/moe_layer_net.c, cli/moe_layer_tpnet.c), and when MoE-TP spans
 * nodes an EP group has one rank on each of moe_ep nodes. The arena (one host's, or each node's): moe_tp EP group arenas,
 * then the layer area (every local rank's partial outputs, combined rows
 * and, in allgather mode, its published slice). This header is the
 * variant's own; cli/moe_layer*.c share it.
 */
#ifndef EP_MOE_LAYER_H
#define EP_MOE_LAYER_H

#include "cli/attn_gather.h"
#include "cli/bench.h"
#include "cli/cluster/endpoint.h"
#include "cli/normal_io.h"
#include "collectives/internode.h"
#include "collectives/intranode.h"
#include "collectives/traffic.h"
#include "reference/internode_ref.h"
#include "reference/moe_layer_ref.h"
#include "reference/moe_slice.h"
#include "reference/reference.h"

/* The op table's rows (cli/moe_layer.c), in the order a pass runs them;
 * an op's row is also where its arrivals and network figures go
 * (cli/cluster/endpoint.h). */
enum layer_op {
	LAYER_OP_DISPATCH, LAYER_OP_MOE_TP_GATHER, LAYER_OP_WORLD_GATHER, LAYER_OP_MOE_TP_REDUCE,
	LAYER_OP_WORLD_REDUCE, LAYER_OP_COMBINE, LAYER_OP_ATTN_GATHER, LAYER_NOPS
};

/* How far the layer got in this pass (each op's prepare runs what is missing). */
enum layer_stage { STAGE_NONE, STAGE_DISPATCHED, STAGE_GATHERED, STAGE_REDUCED, STAGE_COMBINED };

/* Shared pieces of the layer area, every rank's at the same address. */
struct layer_area {
	uint16_t *partials;   /* [W][part_rows][H] each rank's partial outputs */
	uint16_t *ag_x;       /* allgather: [W][max_slice][H] published slices */
	int64_t *ag_idx;      /* [W][max_slice][K] */
	float *ag_w;          /* [W][max_slice][K] */
	size_t part_rows;
};

struct layer_state {
	struct ep_bench_env *env;          /* NULL when the launcher sizes a run */
	const struct ep_run *run;          /* the run the geometry is of */
	struct ep_parallel par;
	int W, me, tp, moe_tp, moe_ep, g, q, d, allgather;
	int nodes_job, P, Pg, node, kq;    /* P ranks per node (the world on one host), Pg of them per EP group; kq: EP rank within the node */
	int ep_node;                       /* the EP group's node this rank is on (node, or q when MoE-TP spans nodes) */
	struct ep_slices sl;
	struct ep_shape eshape;            /* the MoE-EP group's: R = moe_ep, T = the longest slice */
	struct ep_run grun;                /* this rank's group as a run (routing with its view) */
	struct ep_group_arrays *views;     /* [moe_tp] */
	struct ep_routing *routings;       /* [moe_tp] */
	struct ep_moe_tp_expert *experts;  /* [moe_tp] */
	struct ep_internode_ref *irefs;    /* [moe_tp], each for EP rank q (.base: one host's reference) */
	struct ep_normal_io io;            /* own inputs (group g, rank q) and dispatch outputs */
	/* the EP collective (cli/moe_layer_ep.c) */
	struct ep_intranode coll;          /* one host */
	struct ep_internode icoll;         /* across nodes */
	struct ep_endpoint net;
	int coll_up, net_up;
	char *group_arena;                 /* this rank's group's arena */
	void *recv;                        /* allgather across nodes: the node's receive regions (cli/moe_layer_net.c) */
	uint32_t expect[EP_MAX_NODES];     /* signals consumed from each rail peer (allgather mode's own count) */
	int net_recv_id;                   /* the transport region the layer's puts land in */
	uint64_t net_bytes[LAYER_NOPS][EP_MAX_NODES]; /* the layer's own puts: the last op's bytes to each node */
	int32_t **gcounts;                 /* [moe_tp] every group's count rows [R][R] (shared) */
	struct ep_recv_area *gareas;       /* [moe_tp] the receive area of EP rank q of every group */
	struct layer_area area;
	/* private */
	size_t *rows_of;                   /* [moe_tp] rows member i of the MoE-TP group received */
	void *gx;                          /* gathered rows: [n][row] (a2a: dispatch dtype; allgather: bf16) */
	float *gscales;
	int64_t *gidx;
	float *gw;
	int32_t *gsrc;
	size_t grows;
	struct ep_attn_gather attn;        /* the last phase (its slots: the layer area's combined rows) */
	struct ep_traffic *area_traffic;   /* the launcher's per-pair area (the waiter's before setup), or NULL */
	struct ep_traffic tview;           /* its view for the EP group: group ranks -> world ranks */
	int *tmap;                         /* [moe_ep] world rank of EP rank k of this rank's group: k moe_tp + g */
	float *combined_w;                 /* [max_slice][K] */
	enum layer_stage stage;
};

/* cli/moe_layer_geometry.c: rank me's place, the slices and every group's
 * reference for a run (me 0 when the launcher sizes it); 0 or -ENOMEM. */
int layer_geometry(struct layer_state *st, const struct ep_run *run, int me);
void layer_geometry_fini(struct layer_state *st);

/* cli/moe_layer_phases.c: the phases after EP dispatch and combine. */
int layer_moe_tp_gather(struct layer_state *st);
int layer_moe_tp_partials(struct layer_state *st);
int layer_moe_tp_reduce(struct layer_state *st);
int layer_world_gather(struct layer_state *st);
int layer_world_partials(struct layer_state *st);
int layer_world_reduce(struct layer_state *st);
size_t layer_row_bytes(const struct layer_state *st); /* one gathered row, every tensor */

/* cli/moe_layer_check.c: each phase's outputs against reference/. */
void layer_check_moe_tp_gather(struct layer_state *st, struct ep_check_report *rep);
void layer_check_moe_tp_reduce(struct layer_state *st, struct ep_check_report *rep);
void layer_check_world_gather(struct layer_state *st, struct ep_check_report *rep);
void layer_check_world_reduce(struct layer_state *st, struct ep_check_report *rep);
int layer_slice_len(void *st, int r);                        /* for struct ep_attn_gather */
int layer_expected_row(void *st, int r, int t, uint16_t *want);

/* cli/moe_layer_ep.c: EP dispatch and combine inside the MoE-EP group. */
size_t layer_ep_group_bytes(const struct layer_state *st, size_t capacity);
size_t layer_ep_rank_bytes(const struct layer_state *st, size_t capacity);
int layer_ep_bind(struct layer_state *st, char *base, size_t group_bytes, size_t capacity);
int layer_ep_reseed(struct layer_state *st);   /* a new seed or routing step: rebinds what must be */
int layer_any_routing(const struct ep_run *run); /* buffers must take any routing (soak, steps, replica fault) */
void layer_ep_fini(struct layer_state *st);
/* EP dispatch; cached (--cached, after a dispatch made the group's handle):
 * DeepEP's cached mode, the handle's tensors kept for the later phases. */
int layer_ep_dispatch(struct layer_state *st, int cached);
int layer_ep_have_handle(const struct layer_state *st); /* a non-cached dispatch made the group's handle */
int layer_ep_combine(struct layer_state *st, uint16_t *x, float *w);
uint16_t *layer_ep_combine_x(struct layer_state *st);
float *layer_ep_combine_w(struct layer_state *st);
size_t layer_ep_num_recv(const struct layer_state *st);
uint64_t layer_ep_rows_from_self(const struct layer_state *st);
int layer_ep_barrier(struct layer_state *st);
void layer_ep_check_dispatch(struct layer_state *st, struct ep_check_report *rep);
void layer_ep_check_combine(struct layer_state *st, const uint16_t *x, const float *w, struct ep_check_report *rep);
int layer_ep_combined_row(struct layer_state *st, int r, int t, uint16_t *want);
int layer_ep_world_node(const struct layer_state *st, int k); /* the world node of EP rank k of this rank's group */
int layer_ep_rank_on(const struct layer_state *st, int m);   /* this rank's EP group's node index of world node m, or -1 */
void layer_ep_net_bytes(const struct layer_state *st, const uint64_t *by_k, uint64_t *by_node); /* [EP_MAX_NODES] */

/* cli/moe_layer_net.c: allgather mode across nodes. */
struct layer_net_regions {
	void *recv;                 /* this node's receive regions, P of layer_net_recv_bytes */
	void *slices, *partials;    /* the node's published slices and partial rows (put sources) */
	void *combined;             /* the node's combined rows (the attention gather's source) */
	size_t slices_bytes, partials_bytes, combined_bytes;
};
size_t layer_net_recv_bytes(const struct layer_state *st);
int layer_net_bind(struct layer_state *st, const struct layer_net_regions *r);
/* a2a mode with a TP group that spans nodes: the layer's receive region and
 * its put source (the node arena's group arenas, partials and combined
 * rows) beside the internode collective's regions (after its init, before
 * connecting); signals to a node of the EP group are counted in the
 * collective's own per-node counts. */
int layer_net_bind_a2a(struct layer_state *st, void *source, size_t source_bytes);
int layer_net_spans(const struct layer_state *st);   /* a TP group (or allgather's world) spans nodes */
/* The rail peers of the nodes the spanning groups hold, not yet in peers[0..n); the new n. */
int layer_net_add_peers(const struct layer_state *st, int *peers, int n);
int layer_net_barrier(struct layer_state *st);
int layer_net_world_gather(struct layer_state *st);
int layer_net_world_reduce(struct layer_state *st);
int layer_net_attn_gather(struct layer_state *st);    /* the attention-TP group spans nodes */
/* The rail exchange of a group holding nodes [first, first + count): ready
 * (signal each, wait for each), and after the puts, the data signals
 * awaited, with when each came (ns after t0; arrival indexed by node). */
int layer_net_ready(struct layer_state *st, int first, int count);
int layer_net_wait_data(struct layer_state *st, int first, int count, int64_t t0, int64_t *arrival);
int layer_net_signal(struct layer_state *st, int node);
int layer_net_fail(struct layer_state *st, int rc, const char *what);
char *layer_net_recv_block(const struct layer_state *st, int l, int m, size_t block);

/* cli/moe_layer_tpnet.c: the MoE-TP gather and reduce when the group spans nodes. */
int layer_tpnet_gather(struct layer_state *st);
int layer_tpnet_reduce(struct layer_state *st);
size_t layer_tpnet_block_bytes(const struct layer_state *st); /* one source node's block of a receive region */

/* The EP group arenas a node's arena holds: every group's, or, when MoE-TP
 * spans nodes, the P groups of the node's ranks (group g at g % P). */
static inline int layer_group_slots(const struct layer_state *st)
{
	return st->nodes_job && st->moe_tp > st->P ? st->P : st->moe_tp;
}

/* Helpers shared by the files: world rank r's rows in the layer area (r on this node). */
static inline uint16_t *layer_combined(const struct layer_state *st, int r)
{
	return ep_attn_gather_slot(&st->attn, r);
}
static inline uint16_t *layer_partials(const struct layer_state *st, int r)
{
	return st->area.partials + (size_t)(r % st->P) * st->area.part_rows * (size_t)st->eshape.hidden;
}
static inline struct ep_reference *layer_ref(const struct layer_state *st, int group)
{
	return &st->irefs[group].base;
}

#endif
