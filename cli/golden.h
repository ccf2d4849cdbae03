/* golden.h - what `epbench golden` and `epbench verify` share: a subcommand's command line taken apart.
 *
 * `epbench golden SUBCOMMAND OPTIONS --out DIR` and `epbench verify
 * SUBCOMMAND DIR` both name the subcommand whose semantics apply; golden
 * parses its options as a run would (one point; across nodes with --nodes
 * and --ranks-per-node, and no launcher), verify takes the shape from the
 * directory's manifest.
 */
#ifndef EP_GOLDEN_H
#define EP_GOLDEN_H

#include "cli/command.h"
#include "cli/oracle.h"

struct ep_golden {
	const struct ep_command *cmd;
	char **argv;                 /* the subcommand and its options (argv[0] its name) */
	int argc;
	const char *out;             /* golden: --out DIR */
	char out_parent[4096];       /* the folder DIR goes into */
	struct ep_options o;
	int parsed;
	struct ep_run_cfg cfg;
	struct ep_run run;
	int rpn;                     /* ranks per node, 0 on one host */
	int ll;                      /* low-latency mode */
	int ascend;                  /* --ep-semantics ascend (cli/oracle_ascend.c) */
	int layer;                   /* a --parallel configuration's MoE layer (cli/golden_layer.c) */
	struct ep_oracle_manifest m;
};

/* Takes argv (argv[0] the verb) apart and parses the subcommand's options.
 * 0, -1 after --help, or an exit status after one line on stderr. */
int ep_golden_setup(int argc, char **argv, struct ep_golden *g, const char *verb, int want_out);
void ep_golden_free(struct ep_golden *g);

/* cli/golden_layer.c: the manifest's layer from the run's configuration,
 * then every world rank's slice and phases into dir (0 or -errno). */
void ep_golden_layer_head(struct ep_golden *g);
int ep_golden_layer(struct ep_golden *g, const char *dir);
/* Ascend's layer (moe_tp 1): rank me's attn_tp_gathered_x from its
 * attention-TP group's expected combine outputs, already in dir. */
int ep_golden_ascend_attn(struct ep_golden *g, int me, const char *dir);
/* cli/verify_layer.c: a layer directory checked phase by phase; prints the
 * report, returns the exit status. */
int ep_verify_layer(const struct ep_oracle_manifest *m, const char *dir);
/* cli/oracle_ll_layer.c: a low-latency layer's golden (every world rank's
 * tensors into dir and the manifest, 0 or -errno) and verify (phase by
 * phase, order_any: --ll-order any; prints the report, returns the exit
 * status). */
int ep_golden_ll_layer(struct ep_golden *g, const char *dir);
int ep_verify_ll_layer(const struct ep_oracle_manifest *m, const char *dir, int order_any);

#endif
