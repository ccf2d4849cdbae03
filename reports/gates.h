/* gates.h - performance limits a run must meet, or exit 5.
 *
 * Absolute limits per op: --min-algbw OP=GB/s, --max-median-us OP=us,
 * --min-copy OP=% (aggregate algorithm bandwidth against this host's copy
 * bandwidth measured in the same run); and a relative one: --baseline FILE
 * --max-regress PCT (each point against the stored result's point of the
 * same shape, with compare's statistics: slower by more than PCT with a
 * bootstrap interval that excludes zero). A point that passes its check
 * but misses a limit gets exit status 5; its ops are marked and every miss
 * is one line naming point, op, figure and limit. Wrong data, a lost rank
 * or an environment failure outrank 5 (collectives/error.h).
 */
#ifndef EP_GATES_H
#define EP_GATES_H

#include <stddef.h>

#include "reports/report.h"
#include "reports/result_json.h"

enum ep_gate_kind { EP_GATE_MIN_ALGBW, EP_GATE_MAX_MEDIAN, EP_GATE_MIN_COPY };

struct ep_gate {
	enum ep_gate_kind kind;
	char op[32];
	double limit;
};

#define EP_MAX_GATES 32

struct ep_gates {
	int n;
	struct ep_gate g[EP_MAX_GATES];
	const char *baseline_path;  /* --baseline FILE, or NULL */
	struct ep_doc baseline;     /* read by ep_gates_load */
	int have_baseline;
	double max_regress;         /* percent; < 0 when not given */
	double confidence;          /* of the bootstrap interval */
};

/* Adds the limits of spec ("dispatch=40,combine=30") given to option. 0 or
 * -EP_EUSAGE with one line in err. */
int ep_gates_add(struct ep_gates *g, enum ep_gate_kind kind, const char *option, const char *spec, char *err,
		 size_t len);

/* Refuses a limit naming an op the command does not have (ops[0..nops)). */
int ep_gates_check_ops(const struct ep_gates *g, const char *const *ops, int nops, const char *command, char *err,
		       size_t len);

/* Reads --baseline and checks it is the same experiment as this run (its
 * command and traffic lines). 0, or -EP_EUSAGE with one line in err. */
int ep_gates_load(struct ep_gates *g, const char *command, const char *traffic, int check, char *err, size_t len);
void ep_gates_free(struct ep_gates *g);

/* After a point that passed: marks the ops that missed a limit, writes one
 * line per miss into res->limits, and turns exit 0 into 5. copy_gbs: the
 * host copy bandwidth of the point (0: unknown). Returns the misses. */
int ep_gates_apply(const struct ep_gates *g, struct ep_point *pt, double copy_gbs);

/* Whether a gate needs the host copy bandwidth (--min-copy). */
int ep_gates_need_copy(const struct ep_gates *g);

#endif
