/* fault.h - faults injected on purpose, to prove that a check, the supervision or a gate fires.
 *
 * --fault takes one or more KIND:RANK[:ARG][@ITER] (comma-separated, or the
 * option repeated), each kind from one table (fault.c) that also says what
 * it must produce. Every data fault must end in exit 1 with a mismatch that
 * names rank R and the tensor (cases/faults.suite holds each to it):
 *   bitflip:R:T  rank R flips one bit of the last row of its output tensor T
 *                after the op that writes T ran (T: a tensor the check
 *                compares, e.g. recv_x, recv_topk_idx, combined_x,
 *                packed_recv_x, packed_recv_src_info)
 *   corrupt:R    bitflip of the received rows: recv_x (normal mode),
 *                packed_recv_x (low-latency)
 *   permute:R    two different received rows of R swap places (the same
 *                bytes, in the wrong place)
 *   drop:R       R's last received row is never written: it keeps what a
 *                fresh buffer holds (zeros)
 *   stale:R      R's last received row keeps the previous --soak pass's
 *                bytes (needs --soak; strikes the soak's second pass unless @ITER)
 *   replica:R    rank R's dispatch runs with a placement that has one replica
 *                moved (reference/placement.h, ep_placement_move_replica):
 *                its top-k ids and layout are those of placement B while
 *                every reference expects placement A (needs
 *                --redundant-experts)
 *   noclean:R    `epbench mixed` only: at every hand-over from normal to
 *                low-latency mode rank R leaves its low-latency signal lines
 *                as normal mode left them (DeepEP's clean_low_latency_buffer
 *                skipped, cli/mixed.c): exit 1 when what was left reads as
 *                ahead (rank 0's lines lie on normal mode's count matrix),
 *                exit 4 (a named timeout) when it reads as behind; no @ITER
 * and the supervision's:
 *   die:R        rank R is killed (SIGKILL) in its first timed iteration:
 *                exit 4, naming rank R and its phase
 *   hang:R       rank R stops in its first timed iteration: exit 4, its peers
 *                time out naming rank R and phase fault.hang
 *   hang:R:OP    the same in op OP's first timed iteration (OP an op the run
 *                times, e.g. attn_tp_gather: a hang inside a later phase)
 *   stall:R@I    hang from timed iteration I
 * and the gates':
 *   slow:R:US    rank R sleeps US microseconds inside every timed op: each
 *                op's time grows by about US; `epbench ab` against a run
 *                without it must say "slower"
 *   delay:R:US@I one late arrival: slow in timed iteration I only
 * and the network's (internode over tcp):
 *   link-down:A-B  every connection between nodes A and B is cut (both ends
 *                close) before timed iteration ITER (default 0): exit 4,
 *                the state block's culprit names the link between nodes A
 *                and B, not a rank
 * @ITER moves a fault to one iteration: for the data faults, checked pass
 * ITER of a --soak run (a run without --soak checks pass 0 only); for die
 * and hang, timed iteration ITER (or soak pass ITER); for slow, timed
 * iteration ITER only.
 */
#ifndef EP_FAULT_H
#define EP_FAULT_H

#include <stddef.h>

enum ep_fault_kind {
	EP_FAULT_NONE, EP_FAULT_BITFLIP, EP_FAULT_PERMUTE, EP_FAULT_DROP, EP_FAULT_STALE, /* data */
	EP_FAULT_DIE, EP_FAULT_HANG, EP_FAULT_SLOW, EP_FAULT_LINK_DOWN,
	EP_FAULT_REPLICA, /* inputs: one replica moved (must end in exit 1 too) */
	EP_FAULT_NOCLEAN, /* mixed: the low-latency buffer not cleaned after normal mode */
};

#define EP_FAULT_TENSOR_MAX 32

struct ep_fault {
	enum ep_fault_kind kind;
	int rank;        /* global rank it strikes; link-down: node A */
	long arg;        /* slow: microseconds; link-down: node B */
	long iter;       /* @ITER, or -1: the kind's default (see above) */
	char tensor[EP_FAULT_TENSOR_MAX]; /* bitflip: the output tensor; "" for corrupt: the received rows; hang:R:OP: the op */
	const char *name; /* the kind as given ("corrupt", "delay", ...), for texts */
};

#define EP_MAX_FAULTS 8

struct ep_faults {
	int n;
	struct ep_fault f[EP_MAX_FAULTS];
};

/* Adds the faults of spec ("kind:rank[:arg][@iter],..."). 0 or -EP_EUSAGE
 * with one line in err naming the bad item and the kinds there are. */
int ep_faults_parse(struct ep_faults *fs, const char *spec, char *err, size_t len);

/* Does that fault strike rank in iteration it? Without @ITER: the data
 * faults, die and hang strike iteration 0 (stale: 1), slow every iteration. */
int ep_fault_strikes(const struct ep_fault *f, int rank, long it);
int ep_faults_at(const struct ep_faults *fs, enum ep_fault_kind kind, int rank, long it);
/* die, hang: does one strike rank in iteration it of op (its name; NULL in
 * a soak pass)? One without an op when first (the first op timed, or a soak
 * pass), one naming op (hang:R:OP) only there. Never blocks. */
int ep_faults_stop_in(const struct ep_faults *fs, enum ep_fault_kind kind, int rank, long it, const char *op,
		      int first);

/* Is any fault of that kind in the set? */
int ep_faults_has(const struct ep_faults *fs, enum ep_fault_kind kind);

/* A data fault (one the check must catch, exit 1)? */
int ep_fault_is_data(const struct ep_fault *f);

/* link-down: the node whose link with node strikes before timed iteration
 * it, or -1. */
int ep_faults_link_down(const struct ep_faults *fs, int node, long it, const char **name);

/* 0, or -EP_EUSAGE with one line in err when a link-down names a node
 * outside the job's nodes (0 when the run is on one host). */
int ep_faults_check_nodes(const struct ep_faults *fs, int nodes, char *err, size_t len);

/* The highest rank any fault targets (link-down excluded), -1 when there is none. */
int ep_faults_max_rank(const struct ep_faults *fs);

/* "slow:1:3000,corrupt:2@7" (empty when none), for configuration texts. */
void ep_faults_text(const struct ep_faults *fs, char *buf, size_t len);

#endif
