/* phase_tally.c - a MoE layer's verify results per phase (cli/phase_tally.h). */
#include <stdio.h>

#include "cli/phase_tally.h"
#include "collectives/error.h"

void ep_phase_tally_init(struct ep_phase_tally *t)
{
	*t = (struct ep_phase_tally){0};
	for (int k = 0; k < EP_LPH_N; k++)
		t->first_rank[k] = -1;
}

void ep_phase_tally_add(struct ep_phase_tally *t, int r, const struct ep_check_report *rep,
			struct ep_run_result *res)
{
	for (int k = 0; k < EP_LPH_N; k++) {
		t->checked[k] += rep[k].checked_bytes, t->wrong[k] += rep[k].wrong_elems;
		res->checked_bytes += rep[k].checked_bytes, res->wrong_elems += rep[k].wrong_elems;
		res->wrong_rows += rep[k].wrong_rows;
		res->handle_checked_bytes += rep[k].handle_checked_bytes;
		res->handle_wrong_elems += rep[k].handle_wrong_elems;
		if (rep[k].has_first && t->first_rank[k] < 0)
			t->first[k] = rep[k].first, t->first_rank[k] = r;
	}
}

int ep_phase_tally_report(const struct ep_phase_tally *t, struct ep_run_result *res, const char *dir)
{
	int first = -1;
	for (int k = 0; k < EP_LPH_N; k++) {
		if (t->checked[k] || t->wrong[k])
			printf("# phase %-15s %12llu bytes checked, %llu wrong elements\n", ep_layer_phase_names[k],
			       (unsigned long long)t->checked[k], (unsigned long long)t->wrong[k]);
		if (first < 0 && t->first_rank[k] >= 0)
			first = k;
	}
	if (!res->checked_bytes)
		return fprintf(stderr, "epbench verify: no output tensor in '%s' to compare\n", dir), EP_EXIT_USAGE;
	if (first >= 0) {
		char line[EP_TEXT_MAX - 64];
		ep_mismatch_format(&t->first[first], line, sizeof(line));
		snprintf(res->first_mismatch, sizeof(res->first_mismatch), "phase %s: rank %d: %.*s",
			 ep_layer_phase_names[first], t->first_rank[first], (int)sizeof(res->first_mismatch) - 64, line);
		printf("# first wrong %s\n", res->first_mismatch);
	}
	return 0;
}

void ep_phase_tally_inputs(int changed_inputs, const char *changed, const char *not_checked)
{
	if (changed_inputs)
		printf("# inputs: %d file%s differ from the manifest's SHA-256 (expectations follow the files): %s%s\n",
		       changed_inputs, changed_inputs == 1 ? "" : "s", changed, changed_inputs > 4 ? ", ..." : "");
	printf("# not checked (absent): %s\n", not_checked[0] ? not_checked : "nothing");
}
