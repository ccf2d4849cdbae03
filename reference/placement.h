/* placement.h - logical experts on physical ones: redundant experts (EPLB).
 *
 * parallel-semantics.md section 6. The router picks logical experts
 * [0, E); the run moves physical ones [0, P), P = E + N_red, and every
 * formula of deepep-semantics.md holds with E := P. A placement is what
 * ep_gen_routing needs to turn a rank's logical top-k into physical ids, so
 * the engine and the reference (which both call it) see the same ids.
 *
 * Physical ids here are the engine's: id q lives on rank q / (P / R), local
 * expert q % (P / R). EPLB numbers its physical experts GPU-major too
 * (linear, the default); with round_robin EPLB's physical expert p sits on
 * rank p % R, local p / R, i.e. engine id (p % R) (P / R) + p / R, as vLLM's
 * expert_placement_strategy places its experts. phy2log, log2phy and the
 * dump are in engine ids.
 *
 * Replica choice for slot (t, j) of rank `rank` with logical expert e and
 * cnt = logcnt[e] (masked -1 entries stay -1):
 *   modpos   log2phy[e][(t K + j) % cnt]                       (vLLM)
 *   static   C = e's replicas on this rank, else on its node, else all
 *            (each in log2phy order); C[rank % |C|]          (SGLang, section 6 choice)
 *   dynamic  log2phy[e][h % cnt], h = splitmix64 of (seed, rank, t, j)  (SGLang)
 */
#ifndef EP_PLACEMENT_H
#define EP_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

#include "reference/eplb_load.h"

enum ep_expert_placement { EP_PLACE_LINEAR, EP_PLACE_ROUND_ROBIN };
enum ep_replica_policy { EP_REPLICA_MODPOS, EP_REPLICA_STATIC, EP_REPLICA_DYNAMIC };

/* What the options ask for (--redundant-experts, --eplb-*, --expert-placement,
 * --replica-policy). */
struct ep_eplb_spec {
	int redundant;            /* N_red */
	int load_given;           /* --eplb-load was given */
	struct ep_eplb_load load; /* the loads EPLB balances (default uniform) */
	int groups, nodes;        /* 0: the routing's groups when group-limited else 1; the run's nodes */
	int placement;            /* enum ep_expert_placement */
	int policy;               /* enum ep_replica_policy */
};

/* Logical experts are mapped at all: redundant experts, an EPLB load or
 * round_robin placement asked for. */
int ep_eplb_spec_active(const struct ep_eplb_spec *sp);

/* One run's placement; identical on every rank (built before ranks exist). */
struct ep_placement {
	int logical, physical, ranks; /* E, P, R */
	int ranks_per_node;           /* static policy: rank q on node q / this; 0: one node */
	int eplb;                     /* 1: EPLB placed them (--eplb-load), 0: vLLM's initial map */
	int groups, nodes;            /* what EPLB was given (after defaults) */
	int policy;                   /* enum ep_replica_policy */
	int placement;                /* enum ep_expert_placement */
	int maxcnt;                   /* most replicas of one logical expert */
	int *phy2log;                 /* [P] logical expert of each engine id */
	int *logcnt;                  /* [E] replicas per logical expert */
	int *log2phy;                 /* [E][maxcnt] engine ids, -1 padded */
};

/* Checks a spec against E logical experts, R ranks, `nodes` nodes (0: one
 * host) and group-limited routing's `route_groups` (0: none): P % R, load
 * file length, --eplb-groups dividing E, --eplb-nodes dividing R. 0 or
 * -EP_EUSAGE with one line quoting the value. */
int ep_placement_check(const struct ep_eplb_spec *sp, int E, int R, int nodes, int route_groups, char *err,
		       size_t errlen);

/* The placement for that run (the loads from seed), or NULL when the spec
 * does not pass ep_placement_check or memory is short. */
struct ep_placement *ep_placement_new(const struct ep_eplb_spec *sp, int E, int R, int nodes, int ranks_per_node,
				      int route_groups, uint64_t seed);
void ep_placement_free(struct ep_placement *pl); /* NULL is fine */

/* Turns rank `rank`'s logical top-k ids [T][K] (-1 allowed) into engine
 * ids in place, by the placement's replica policy. */
void ep_placement_map(const struct ep_placement *pl, uint64_t seed, int rank, int64_t *topk_idx, int T, int K);

/* --fault replica: placement B, A with one replica moved. Physical expert
 * 0 (rank 0's first) exchanges places with the first expert of rank 1 (of
 * local expert 1 when there is one rank) that holds another logical
 * expert; under modpos or dynamic choice, ids mapped by B are ids mapped by
 * A with those two exchanged, which this does to one rank's ids [n]. */
void ep_placement_move_replica(const struct ep_placement *pl, int64_t *topk_idx, size_t n);

/* One point's placement in a line: "80 physical experts (64 logical +
 * 16 redundant) on 4 ranks, 20 each; up to 3 replicas; eplb groups 1 nodes 1". */
void ep_placement_summary(const struct ep_placement *pl, char *buf, size_t len);

/* Writes phy2log.npy [P], log2phy.npy [E][maxcnt] and logcnt.npy [E]
 * (int32) into dir. 0 or a negative errno. */
int ep_placement_dump(const struct ep_placement *pl, const char *dir);

/* "288 physical = 256 + 32 redundant, eplb zipf:1.2 groups 8 nodes 1, linear, modpos". */
void ep_placement_text(const struct ep_eplb_spec *sp, int E, char *buf, size_t len);

#endif
