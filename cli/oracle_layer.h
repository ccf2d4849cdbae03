/* oracle_layer.h - the expectations of a parallel configuration's MoE layer, phase by phase, for golden and verify.
 *
 * parallel-semantics.md sections 2, 3 and 7. Every world rank r puts its
 * attention-TP slice (x, topk_idx, topk_weights: the "loaded" inputs, from
 * the seed for golden, from the directory for verify) into the layer; this
 * module derives, with reference/ only, what each phase must leave on r:
 *   a2a:       ep_dispatch (DeepEP's outputs of EP rank r / moe_tp in MoE-EP
 *              group r % moe_tp), moe_tp_gather (moe_tp > 1: block i from
 *              MoE-TP peer (g + i) % moe_tp), experts (r's own stand-in on
 *              every gathered row: moe_tp_partial, or combine_x when
 *              moe_tp = 1, and the combine weights of its own rows),
 *              moe_tp_reduce (moe_tp > 1: the partials summed in rotation
 *              order), ep_combine (combined_x of the slice);
 *   allgather: world_gather (every slice, world ranks ascending),
 *              world_partial (r's partial of every row), world_reduce (its
 *              slice's rows summed over world ranks ascending);
 *   both:      attn_tp_gather (tp > 1: the attention-TP group's rows).
 * Each phase's expectation follows from the inputs through the reference
 * chain, never from a library's earlier phase, so the first wrong phase is
 * where a library went wrong. Golden and verify describe rank r's tensors
 * with the same table (ep_layer_tensors) and compare through the same
 * function: golden captures the expected rows into zeroed tensors (check
 * hooks), verify compares the library's. DeepEP semantics in bf16, and
 * in a2a mode fp8 (x cast by the caller, with x_scales), int8 (quantised
 * by dispatch; recv_x and the gathered rows carry their scales, the
 * experts see them dequantised) and biases (added by combine); one host or
 * across nodes (Pg). Ascend's layer: oracle_ascend.c with moe_tp 1,
 * oracle_ascend_tp.c with MoE-TP.
 */
#ifndef EP_ORACLE_LAYER_H
#define EP_ORACLE_LAYER_H

#include "cli/oracle.h"
#include "reference/internode_ref.h"
#include "reference/moe_layer_ref.h"
#include "reference/moe_slice.h"
#include "reference/reference.h"

enum ep_layer_phase {
	EP_LPH_INPUT, EP_LPH_EP_DISPATCH, EP_LPH_MOE_TP_GATHER, EP_LPH_EXPERTS, EP_LPH_MOE_TP_REDUCE, EP_LPH_EP_COMBINE,
	EP_LPH_WORLD_GATHER, EP_LPH_WORLD_PARTIAL, EP_LPH_WORLD_REDUCE, EP_LPH_ATTN_TP_GATHER, EP_LPH_N
};
extern const char *const ep_layer_phase_names[EP_LPH_N];

/* One tensor of rank r: name, phase, role, dtype and dims (d1 0: 1-D). */
struct ep_layer_tensor {
	const char *name;
	enum ep_layer_phase phase;
	enum ep_oracle_role role;
	enum ep_npy_dtype dtype;
	size_t d0, d1;
	void *data;               /* the caller's: every one set before ep_layer_check */
};
#define EP_LAYER_MAX_TENSORS 32 /* at most 28: fp8 with two biases across nodes, MoE-TP, attention TP */

struct ep_layer {
	struct ep_oracle_layer cfg;     /* the configuration (manifest's "layer") */
	int W;                          /* world ranks */
	enum ep_payload payload;
	uint64_t seed;
	struct ep_shape eshape;         /* a MoE-EP group's: R = moe_ep, T = the longest slice, E physical */
	struct ep_slices sl;
	struct ep_group_arrays *views;  /* [moe_tp] */
	struct ep_routing *routings;    /* [moe_tp] over the loaded inputs (after ep_layer_bind) */
	struct ep_moe_tp_expert *experts; /* [moe_tp] */
	struct ep_loaded_rank *gl;      /* [moe_tp][moe_ep] the loaded inputs by group */
	const struct ep_loaded_rank *loaded; /* [W] */
	int Pg;                         /* a2a across nodes: EP ranks of a group per node (internode's
					 * reference: num_tokens_per_rdma_rank, combine per node then
					 * across); 0: one host's reference */
	struct ep_internode_ref *irefs; /* [moe_tp] every group's reference for EP rank q (.base) */
	int q;                          /* the EP rank refs are of, -1: none */
};

/* The slices and groups of a layer (m: its shape, payload, seed, layer
 * and ranks_per_node: an a2a layer across nodes has internode's EP
 * semantics in each group, ranks_per_node / moe_tp EP ranks per node, as
 * cli/moe_layer_geometry.c runs it). 0 or -ENOMEM. */
int ep_layer_init(struct ep_layer *l, const struct ep_oracle_manifest *m);
/* The world's inputs, [W], each rank's slice (kept, not copied). */
void ep_layer_bind(struct ep_layer *l, const struct ep_loaded_rank *loaded);
void ep_layer_fini(struct ep_layer *l);

/* Rank r's tensors (inputs first, then each phase's); their count, or
 * -ENOMEM. data is left NULL. */
int ep_layer_tensors(struct ep_layer *l, int r, struct ep_layer_tensor *t);
/* Checks rank r's tensors t[n] (from ep_layer_tensors, every data set),
 * each phase into rep[phase] (with its hooks: golden captures, verify
 * skips what a library did not write). 0 or -ENOMEM. */
int ep_layer_check(struct ep_layer *l, int r, const struct ep_layer_tensor *t, int n,
		   struct ep_check_report *rep);

/* The input tensor `name` of a rank's slice (x, x_scales, topk_idx,
 * topk_weights, bias_0, bias_1; NULL for another name). */
const void *ep_layer_input(const struct ep_loaded_rank *in, const char *name);

/* The phase a layer tensor belongs to, by name (DeepEP's or, with ascend,
 * Ascend's names, with moe_tp > 1 those of its MoE-TP stage; "input" for
 * unknown ones). */
const char *ep_layer_phase_of(const char *name, int ascend, int moe_tp);

#endif
