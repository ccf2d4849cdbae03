/* markdown.c - the acceptance report for people: worst items first, preflight, nodes, the node-pair matrix. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "cli/accept/report.h"

static double figure(json_t *it, const char *key)
{
	return json_number_value(json_object_get(json_object_get(it, "figures"), key));
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static json_t *item(json_t *doc, const char *name)
{
	json_t *it;
	size_t i;
	json_array_foreach(json_object_get(doc, "items"), i, it) if (!strcmp(str(it, "name"), name)) return it;
	return NULL;
}

static void preflight(FILE *out, json_t *doc)
{
	json_t *pf, *x;
	size_t k, i;
	fprintf(out, "\n## Preflight\n\n| node | item | level | found |\n|---|---|---|---|\n");
	json_array_foreach(json_object_get(doc, "preflight"), k, pf) {
		json_array_foreach(json_object_get(pf, "items"), i, x)
			fprintf(out, "| %zu | %s | %s | %s |\n", k, str(x, "name"), str(x, "level"), str(x, "value"));
	}
}

static void nodes(FILE *out, json_t *doc, int N)
{
	char name[32];
	fprintf(out, "\n## Each node alone (intranode)\n\n| node | verdict | copy GB/s | dispatch / copy | combine / copy | why |\n"
		     "|---|---|---|---|---|---|\n");
	for (int k = 0; k < N; k++) {
		snprintf(name, sizeof(name), "node %d", k);
		json_t *it = item(doc, name);
		fprintf(out, "| %d | %s | %.2f | %.2f | %.2f | %s |\n", k, str(it, "verdict"), figure(it, "copy_gbs"),
			figure(it, "dispatch_over_copy"), figure(it, "combine_over_copy"), str(it, "why"));
	}
}

static void nics(FILE *out, json_t *doc)
{
	json_t *it;
	size_t i;
	fprintf(out, "\n## NICs (each node's RDMA ports and data interface)\n\n| NIC | verdict | rate Gb/s | sent MB | why |\n"
		     "|---|---|---|---|---|\n");
	json_array_foreach(json_object_get(doc, "items"), i, it) if (!strcmp(str(it, "scope"), "nic"))
		fprintf(out, "| %s | %s | %.4g | %.4g | %s |\n", str(it, "name"), str(it, "verdict"), figure(it, "rate_gbps"),
			figure(it, "tx_bytes") / 1e6, str(it, "why"));
}

/* Rows and columns are nodes; a cell is the pair's verdict, link rate and internode dispatch on it. */
static void matrix(FILE *out, json_t *doc, int N)
{
	char name[32];
	fprintf(out, "\n## Node pairs (verdict; iperf3 GB/s per direction; internode dispatch GB/s on the link)\n\n| |");
	for (int q = 0; q < N; q++)
		fprintf(out, " node %d |", q);
	fprintf(out, "\n|---|");
	for (int q = 0; q < N; q++)
		fprintf(out, "---|");
	for (int p = 0; p < N; p++) {
		fprintf(out, "\n| **node %d** |", p);
		for (int q = 0; q < N; q++) {
			snprintf(name, sizeof(name), "pair %d-%d", p < q ? p : q, p < q ? q : p);
			json_t *it = p == q ? NULL : item(doc, name);
			if (it)
				fprintf(out, " %s %.3g / %.3g |", str(it, "verdict"), figure(it, "link_gbs"),
					figure(it, "dispatch_link_gbs"));
			else
				fprintf(out, " - |");
		}
	}
	fprintf(out, "\n");
}

void ep_accept_markdown(FILE *out, json_t *doc)
{
	json_t *cfg = json_object_get(doc, "config"), *it, *f;
	size_t i, k;
	int N = (int)json_integer_value(json_object_get(cfg, "nodes"));
	fprintf(out, "# epbench accept: %s\n\n%s; %d nodes x %d ranks, %s; normal mode %lld tokens x hidden %lld, top-%lld of %lld "
		     "experts; low-latency %lld tokens, %lld experts. DEGRADED below %g%%, FAIL below %g%% of the reference.\n",
		str(doc, "verdict"), str(doc, "date"), N, (int)json_integer_value(json_object_get(cfg, "ranks_per_node")),
		str(cfg, "transport"), json_integer_value(json_object_get(cfg, "num_tokens")),
		json_integer_value(json_object_get(cfg, "hidden")), json_integer_value(json_object_get(cfg, "num_topk")),
		json_integer_value(json_object_get(cfg, "num_experts")), json_integer_value(json_object_get(cfg, "ll_tokens")),
		json_integer_value(json_object_get(cfg, "ll_experts")), json_number_value(json_object_get(cfg, "degraded_at")),
		json_number_value(json_object_get(cfg, "fail_at")));
	if (json_is_string(json_object_get(doc, "ended")))
		fprintf(out, "\n**The job ended early:** %s\n", str(doc, "ended"));
	fprintf(out, "\n## Verdicts, worst first\n\n| verdict | item | why |\n|---|---|---|\n");
	json_array_foreach(json_object_get(doc, "items"), i, it) {
		fprintf(out, "| %s | %s | %s |\n", str(it, "verdict"), str(it, "name"), str(it, "why"));
		json_array_foreach(json_object_get(it, "flags"), k, f)
			fprintf(out, "| | | note: %s |\n", json_string_value(f));
	}
	nodes(out, doc, N);
	nics(out, doc);
	matrix(out, doc, N);
	if ((it = item(doc, "job")))
		fprintf(out, "\n## Full job\n\n%s: internode dispatch %.3g GB/s, combine %.3g GB/s (algbw); low-latency dispatch "
			     "%.3g GB/s, combine %.3g GB/s. %s\n",
			str(it, "verdict"), figure(it, "dispatch_algbw_gbs"), figure(it, "combine_algbw_gbs"),
			figure(it, "ll_dispatch_algbw_gbs"), figure(it, "ll_combine_algbw_gbs"), str(it, "why"));
	preflight(out, doc);
	fprintf(out, "\nExit status %d.\n", (int)json_integer_value(json_object_get(doc, "exit")));
}
