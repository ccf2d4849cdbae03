/* fault.h - faults injected on purpose, to prove that a check, the supervision or a gate fires.
 *
 * --fault takes one or more KIND:RANK[:ARG] (comma-separated, or the option
 * repeated), each kind from one table (fault.c) that also says what it must
 * produce:
 *   corrupt:R    rank R flips one bit of a received row after its first op's
 *                checked run: exit 1, the mismatch names rank R and the tensor
 *   die:R        rank R is killed (SIGKILL) in its first timed iteration:
 *                exit 4, naming rank R and its phase
 *   hang:R       rank R stops in its first timed iteration: exit 4, its peers
 *                time out naming rank R and phase fault.hang
 *   slow:R:US    rank R sleeps US microseconds inside every timed op: each
 *                op's time grows by about US; `epbench ab` against a run
 *                without it must say "slower"
 */
#ifndef EP_FAULT_H
#define EP_FAULT_H

#include <stddef.h>

enum ep_fault_kind { EP_FAULT_NONE, EP_FAULT_CORRUPT, EP_FAULT_DIE, EP_FAULT_HANG, EP_FAULT_SLOW };

struct ep_fault {
	enum ep_fault_kind kind;
	int rank;        /* global rank it strikes */
	long arg;        /* slow: microseconds */
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

/* The highest rank any fault targets, -1 when there is none. */
int ep_faults_max_rank(const struct ep_faults *fs);

/* "slow:1:3000,corrupt:2" (empty when none), for configuration texts. */
void ep_faults_text(const struct ep_faults *fs, char *buf, size_t len);

#endif
