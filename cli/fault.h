/* fault.h - faults injected on purpose, to prove that a check, the supervision or a gate fires.
 *
 * --fault takes one or more KIND:RANK[:ARG][@ITER] (comma-separated, or the
 * option repeated), each kind from one table (fault.c) that also says what
 * it must produce:
 *   corrupt:R    rank R flips one bit of a received row after its first op's
 *                checked run: exit 1, the mismatch names rank R and the tensor
 *   die:R        rank R is killed (SIGKILL) in its first timed iteration:
 *                exit 4, naming rank R and its phase
 *   hang:R       rank R stops in its first timed iteration: exit 4, its peers
 *                time out naming rank R and phase fault.hang
 *   slow:R:US    rank R sleeps US microseconds inside every timed op: each
 *                op's time grows by about US; `epbench ab` against a run
 *                without it must say "slower"
 * @ITER moves a fault to one iteration: for corrupt, the checked iteration
 * ITER of a --soak run (a run without --soak checks iteration 0 only); for
 * die and hang, timed iteration ITER (or soak iteration ITER); for slow,
 * only timed iteration ITER (one late arrival instead of every one).
 */
#ifndef EP_FAULT_H
#define EP_FAULT_H

#include <stddef.h>

enum ep_fault_kind { EP_FAULT_NONE, EP_FAULT_CORRUPT, EP_FAULT_DIE, EP_FAULT_HANG, EP_FAULT_SLOW };

struct ep_fault {
	enum ep_fault_kind kind;
	int rank;        /* global rank it strikes */
	long arg;        /* slow: microseconds */
	long iter;       /* @ITER, or -1: the kind's default (see above) */
};

#define EP_MAX_FAULTS 8

struct ep_faults {
	int n;
	struct ep_fault f[EP_MAX_FAULTS];
};

/* Adds the faults of spec ("kind:rank[:arg],..."). 0 or -EP_EUSAGE with one
 * line in err naming the bad item and the kinds there are. */
int ep_faults_parse(struct ep_faults *fs, const char *spec, char *err, size_t len);

/* The fault of that kind aimed at rank, or NULL. */
const struct ep_fault *ep_faults_find(const struct ep_faults *fs, enum ep_fault_kind kind, int rank);

/* Does that fault strike rank in iteration it? Without @ITER: corrupt, die
 * and hang strike iteration 0, slow every iteration. */
int ep_faults_at(const struct ep_faults *fs, enum ep_fault_kind kind, int rank, long it);

/* The largest @ITER of a corrupt fault, -1 when none has one. */
long ep_faults_max_check_iter(const struct ep_faults *fs);

/* The highest rank any fault targets, -1 when there is none. */
int ep_faults_max_rank(const struct ep_faults *fs);

/* "slow:1:3000,corrupt:2@7" (empty when none), for configuration texts. */
void ep_faults_text(const struct ep_faults *fs, char *buf, size_t len);

#endif
