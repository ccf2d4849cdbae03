/* oracle.h - the directory `epbench golden` writes and `epbench verify` reads.
 *
 * Layout: DIR/manifest.json and, per rank, DIR/rank<N>/<tensor>.npy with
 * DeepEP's names, or Ascend's with --ep-semantics ascend (the --dump
 * layout, README "What --dump DIR writes"). Every tensor has a role: an
 * input (what a library is given: x, its scales, topk_idx, topk_weights,
 * the biases), an output (what its dispatch and combine must produce) or
 * an expert tensor (combine_x and combine_topk_weights, Ascend's
 * expert_outputs: epbench's expert stand-in applied to the expected
 * dispatch outputs, the input of combine). The manifest holds the
 * subcommand and ep_semantics, the full shape and options, the payload and
 * seed, and for every tensor its rank, role, dtype, shape and the SHA-256
 * (Nettle) of its .npy file.
 *
 * The reference is reached through one wrapper for normal mode, so golden
 * and verify compute the same expectations: intranode's reference, or
 * internode's when ranks are grouped in nodes (its layout adds
 * num_tokens_per_rdma_rank, its combine rounds per node, then across).
 */
#ifndef EP_ORACLE_H
#define EP_ORACLE_H

#include <stddef.h>
#include <stdint.h>

#include "collectives/ep.h"
#include "collectives/layout.h"
#include "collectives/recv_area.h"
#include "cli/bench.h"
#include "collectives/low_latency.h"
#include "reference/internode_ref.h"
#include "reports/npy.h"

#define EP_ORACLE_SCHEMA "epbench-golden/1"
#define EP_ORACLE_MAX_TENSORS 32

enum ep_oracle_role { EP_ROLE_INPUT, EP_ROLE_OUTPUT, EP_ROLE_EXPERT };

/* What a directory holds for one subcommand and shape (from the manifest). */
struct ep_oracle_manifest {
	char subcommand[32];
	char command_line[1024];
	struct ep_shape shape;
	int ranks_per_node;          /* 0: one host */
	enum ep_payload payload;
	uint64_t seed;
	int ll_max_tokens, ll_round_scale, ll_ue8m0; /* low-latency */
	struct ep_oracle_ascend {
		int on;                  /* --ep-semantics ascend (Ascend's names and numerics) */
		int shared_experts;      /* S_n */
		int shared_expert_ranks; /* S_r */
		int smooth_scales;       /* smooth_scales.npy is an input (int8 only) */
		int comm_quant;          /* comm_quant_mode 2 */
	} ascend;
	struct ep_oracle_layer {
		int on;                  /* a parallel configuration's MoE layer (cli/oracle_layer.h) */
		int dp, tp, moe_tp, moe_ep;
		int allgather;           /* --moe-comm allgather, else a2a */
		int sp_pad;              /* enum ep_slice_pad */
		int tokens_per_dp;       /* T_d before --uneven-tokens draws */
		int uneven;              /* --uneven-tokens: T_d drawn from (seed, d) */
	} layer;
	int ntensors;
	struct ep_oracle_tensor {
		int rank;
		char name[40];
		enum ep_oracle_role role;
		enum ep_npy_dtype dtype;
		int ndim;
		size_t shape[EP_NPY_MAX_NDIM];
		char sha256[65];
	} *tensors;
	int cap;
};

/* Adds rank/name's file (just written under dir) to m: dtype and shape
 * from the file, its SHA-256. 0 or -errno / -EP_EUSAGE. */
int ep_oracle_add(struct ep_oracle_manifest *m, const char *dir, int rank, const char *name,
		  enum ep_oracle_role role);
/* Writes dir/manifest.json. 0 or -errno. */
int ep_oracle_write_manifest(const struct ep_oracle_manifest *m, const char *dir);
/* Reads dir/manifest.json. 0, or -EP_EUSAGE with one line in err. */
int ep_oracle_read_manifest(const char *dir, struct ep_oracle_manifest *m, char *err, size_t len);
void ep_oracle_manifest_free(struct ep_oracle_manifest *m);

/* 1 when dir/rank<rank>/name.npy is listed in m with another SHA-256. */
int ep_oracle_hash_differs(const struct ep_oracle_manifest *m, const char *dir, int rank, const char *name);

/* Redundant experts: rank's physical ids idx [T][K] (golden's, or a
 * library's own replica choice written over topk_idx.npy) against the
 * router's: phy2log[idx] must be topk_idx_logical's id, -1 where it is -1,
 * compared as the row "topk_idx_phy2log" (expected the logical id, actual
 * phy2log of the physical one, -2 outside [0, P)). 0 (also when dir has no
 * placement for the rank) or exit 2 after one line. */
int ep_oracle_check_replicas(const char *dir, int rank, const int64_t *idx, size_t T, size_t K,
			     struct ep_check_report *rep);

/* The role of a tensor name in the dump layout (DeepEP's, or Ascend's with ascend). */
enum ep_oracle_role ep_oracle_role_of(const char *name, int ascend);
const char *ep_oracle_role_name(enum ep_oracle_role r);

/* Loads dir/rank<rank>/name.npy into a and checks its dtype and shape
 * (want[d] 0: any size). Returns 0; 1 when the file is absent and not
 * required; or EP_EXIT_USAGE after one line naming the file, the dtype and
 * shape it has and those expected. */
int ep_oracle_load(const char *dir, int rank, const char *name, enum ep_npy_dtype dtype, int ndim,
		   const size_t *want, struct ep_npy *a, int required);
/* ep_oracle_load of an int64 index tensor that a library may hold as int32
 * (Ascend's expert_ids): int32 files are widened to int64. */
int ep_oracle_load_index(const char *dir, int rank, const char *name, int ndim, const size_t *want,
			 struct ep_npy *a, int required);

/* Low-latency (cli/oracle_ll.c): rank me's golden tensors into dir; its
 * check against the directory's outputs (inputs in r->loaded), absent
 * outputs added to not_checked, order_any: every expert's rows compared as
 * a set keyed by source rank and packed_recv_src_info. Golden: 0 or
 * -errno; verify: 0 or an exit status after one line. */
int ep_ll_golden_rank(const struct ep_run *run, int ranks_per_node, int me, const char *dir);
int ep_ll_verify_rank(const struct ep_ll_config *c, const struct ep_routing *r, int num_tokens, int me,
		      const char *dir, int order_any, struct ep_check_report *rep, char *not_checked, size_t len);

/* Ascend (cli/oracle_ascend.c), --ep-semantics ascend in a plain EP run.
 * Its tensor names: inputs dispatch_x, expert_ids, expert_scales,
 * smooth_scales, shared_expert_x; outputs expand_x, dynamic_scales,
 * assist_info_for_combine, expert_token_nums, ep_recv_counts and
 * combine's x; expert tensor expert_outputs (combine's expand_x). The
 * input names in the slots of DeepEP's (x, x_scales, topk_idx,
 * topk_weights, bias_0, bias_1; NULL: none) and every name, NULL-ended. */
extern const char *const ep_ascend_input_names[6];
extern const char *const ep_ascend_tensor_names[];
/* Upper bounds of the directory's bytes and of one rank's memory. */
double ep_ascend_golden_bytes(const struct ep_run *run, size_t *rank_bytes);
/* Golden: rank me's tensors into dir (0 or -errno). Verify: rank me's
 * inputs (the [6] slots above) into in and loaded (0 or an exit status
 * after one line); its check against the directory's outputs (inputs of
 * every rank in inputs [R][6], routing over them), absent outputs added to
 * not_checked. */
int ep_ascend_golden_rank(const struct ep_run *run, int me, const char *dir);
/* The collective's problem (every rank one EP group) from the manifest. */
struct ep_ascend_params;
void ep_ascend_manifest_params(const struct ep_oracle_manifest *m, struct ep_ascend_params *p);
int ep_ascend_load_inputs(const struct ep_oracle_manifest *m, const char *dir, int r, struct ep_npy *in,
			  struct ep_loaded_rank *loaded);
int ep_ascend_verify_rank(const struct ep_oracle_manifest *m, const struct ep_routing *r, const struct ep_npy *inputs,
			  int me, const char *dir, struct ep_check_report *rep, char *not_checked, size_t len);

/* Normal mode's reference (intranode, or internode with ranks_per_node). */
struct ep_normal_ref {
	struct ep_internode_ref in;  /* in.base is the intranode reference */
	int ranks_per_node;
};

int ep_normal_ref_init(struct ep_normal_ref *n, const struct ep_shape *s, const struct ep_routing *r,
		       uint64_t seed, int me, int ranks_per_node);
void ep_normal_ref_fini(struct ep_normal_ref *n);
/* Layout, dispatch (not cached) and combine checks of rank me, into rep. */
void ep_normal_ref_check(const struct ep_normal_ref *n, const struct ep_layout *layout,
			 const struct ep_dispatch_out *out, const uint16_t *combined_x, const float *combined_w,
			 struct ep_check_report *rep);

#endif
