/* phase_tally.h - what `epbench verify` of a MoE layer found, phase by phase.
 *
 * verify of a layer's directory (cli/verify_layer.c for DeepEP's layer,
 * cli/oracle_ascend_tp.c for Ascend's MoE-TP stage) checks each world rank's
 * tensors into one ep_check_report per phase (cli/oracle_layer.h); the tally
 * sums them over ranks, keeps each phase's first wrong element with its rank,
 * and prints the per-phase lines and the first wrong phase: the lowest phase
 * any rank got wrong. Nothing here blocks or allocates.
 */
#ifndef EP_CLI_PHASE_TALLY_H
#define EP_CLI_PHASE_TALLY_H

#include <stdint.h>

#include "cli/oracle_layer.h"
#include "reports/results.h"

struct ep_phase_tally {
	uint64_t checked[EP_LPH_N], wrong[EP_LPH_N];
	int first_rank[EP_LPH_N];           /* -1 while the phase has no wrong element */
	struct ep_mismatch first[EP_LPH_N];
};

void ep_phase_tally_init(struct ep_phase_tally *t);
/* Adds world rank r's reports rep[EP_LPH_N] to the tally and to res's totals
 * (checked and wrong bytes, elements and rows, handles included). */
void ep_phase_tally_add(struct ep_phase_tally *t, int r, const struct ep_check_report *rep,
			struct ep_run_result *res);
/* Prints "# phase ..." for every phase checked and "# first wrong phase ..."
 * (also into res->first_mismatch); 0, or EP_EXIT_USAGE with one line on
 * stderr when nothing in dir was compared. */
int ep_phase_tally_report(const struct ep_phase_tally *t, struct ep_run_result *res, const char *dir);
/* Prints "# inputs: ..." when changed_inputs files differ from the
 * manifest's SHA-256 (changed: their names), and "# not checked (absent): ..."
 * (not_checked, or "nothing"). */
void ep_phase_tally_inputs(int changed_inputs, const char *changed, const char *not_checked);

#endif
