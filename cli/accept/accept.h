/* accept.h - `epbench accept`: what its parts share (options, the plan of steps, what each node reports).
 *
 * An acceptance job is a list of steps run one after another on every node
 * of the job (cli/accept/plan.c): the preflight, each node alone
 * (intranode), each pair of nodes (iperf3 for the link's rate, then
 * internode between just those two), then the full job (internode and
 * low-latency). Every node runs the same plan; a step names the nodes
 * that take part and the epbench command line each runs as a child
 * process. After each step every node sends node 0 what it measured (one
 * JSON object, cli/accept/node.c); node 0 judges (cli/accept/verdict.c)
 * and writes the report (cli/accept/report.c).
 */
#ifndef EP_ACCEPT_H
#define EP_ACCEPT_H

#include <stddef.h>

#define EP_ACCEPT_MAX_NODES 32 /* the cluster's EP_MAX_NODES */
#define EP_ACCEPT_ARGV_MAX 160

struct accept_args {
	int preflight_only, local_nodes, no_iperf;
	const char *json, *report, *reference, *transport, *master, *baseline, *node_addr, *scopes, *fault, *ib_dev;
	int nodes, node_rank, ranks_per_node;         /* nodes/node_rank -1 when not given */
	int gid_index;                                /* -1 when not given */
	int tokens, hidden, experts, topk, groups, topk_groups, ll_tokens, ll_experts, iters, warmup;
	double degraded_at, fail_at, max_regress, timeout_s, iperf_s;
	int given_experts;                            /* -e given: no default expert groups */
	/* per-run options after the plan's own (the last of an option wins):
	 * from --node-args, --pair-args, --job-args, --ll-args, or --shapes SUITE */
	const char *shapes;
	const char *run_args[4];                      /* enum ep_run_scope; NULL: none */
	char shape_text[4][1024];                     /* what --shapes took from the suite */
};

enum ep_run_scope { EP_RUN_NODE, EP_RUN_PAIR, EP_RUN_JOB, EP_RUN_LL };

/* --shapes FILE: each scope's options from the suite's first case of the
 * matching subcommand (intranode: nodes; internode: pairs and the job;
 * low-latency: the job's low-latency run), without the options the plan
 * sets itself (ranks, nodes, master, reports). A scope given by
 * --X-args keeps those. 0 or EP_EXIT_USAGE with one line printed. */
int ep_accept_load_shapes(struct accept_args *a);

/* Parses argv into a (defaults first). 0, -1 after --help, or EP_EXIT_USAGE
 * with one line printed. */
int ep_accept_parse(int argc, char **argv, struct accept_args *a);

/* Experts divisible by the ranks of every run of the plan, top-k and
 * groups in range, once the node count is known: 0 or EP_EXIT_USAGE with
 * one line printed. */
int ep_accept_check_shape(const struct accept_args *a);

/* The options every node must share, as "key=value" lines (cluster/config.h). */
void ep_accept_config_text(const struct accept_args *a, char *buf, size_t len);

enum ep_step_kind { EP_STEP_PREFLIGHT, EP_STEP_NODE, EP_STEP_PAIR, EP_STEP_JOB, EP_STEP_JOB_LL };

/* One step of the plan. */
struct ep_step {
	enum ep_step_kind kind;
	int a, b;            /* NODE: a; PAIR: a < b; otherwise -1 */
	char name[32];       /* "preflight", "node 1", "pair 0-2", "job", "job low-latency" */
};

/* The steps of a job of a->nodes nodes, in order. Returns their count
 * (at most max). */
int ep_accept_plan(const struct accept_args *a, struct ep_step *steps, int max);

/* Does node take part in step? */
int ep_step_has(const struct ep_step *s, int node);

/* The epbench arguments (after the program) node runs in step s, into argv
 * (strings in buf): master is the address of the step's lead node, port
 * its port. Returns argc, or 0 for steps without a child run. */
int ep_step_argv(const struct accept_args *a, const struct ep_step *s, int node, const char *master, int port,
		 const char *json_path, char **argv, char *buf, size_t len);

/* The port step index uses: base + 1 + index (its iperf3 server: + 500). */
int ep_step_port(int base, int index);

/* What node 0 holds at the end: each step's object from each node
 * (r[s * nodes + k], NULL when it never came), and how the job ended. */
struct ep_accept_results {
	int nsteps, nodes, done_steps;      /* done_steps: steps every node finished */
	struct ep_step *steps;
	struct json_t **r;
	int lost_code;                      /* 0, or the exit status of a lost node / job */
	char lost_msg[512];
	struct json_t *reference;           /* --reference, loaded and checked, or NULL */
};

/* Runs the acceptance job on this node (or every node with --local-nodes).
 * Returns the exit status. */
int ep_accept_job(struct accept_args *a);

/* Node 0: judges res, prints the summary, writes --report and --json.
 * Returns the exit status (README: Hardware acceptance). */
int ep_accept_judge(const struct accept_args *a, const struct ep_accept_results *res);

/* Loads --reference: an `epbench accept --json` file for the same shape.
 * 0, or EP_EXIT_USAGE with one line in err. */
int ep_accept_load_reference(const struct accept_args *a, struct json_t **out, char *err, size_t len);

#endif
