/* command.h - one descriptor per subcommand: how `epbench NAME ...` is parsed and run.
 *
 * cli/commands.c holds the table of commands (one row each); main.c finds
 * the row and never looks at a command's name beyond that. A command that runs points (a sweep
 * of shapes, each run by rank processes) gives its option scope, its own
 * option defaults, the variant its ranks run and a few hooks; cli/sweep.c
 * does the rest, on one host or, when the command line asks for it, as one
 * node of a cluster job (cli/cluster/node_job.c). A command that does
 * something else (info, version, help; later compare, plot, ...) gives
 * main() instead.
 *
 * Adding a subcommand: one file with its descriptor (and its variant, if it
 * runs ranks), one row in cli/commands.c's table.
 */
#ifndef EP_COMMAND_H
#define EP_COMMAND_H

#include <stddef.h>
#include <stdio.h>

#include "cli/bench.h"
#include "cli/options.h"

struct ep_command {
	const char *name;
	const char *help;                  /* one line for `epbench help` */
	/* A command that does not run points: argv[0] is its name; returns the
	 * exit status. NULL for commands that run points. */
	int (*main)(const struct ep_command *cmd, int argc, char **argv);

	/* Commands that run points. */
	struct ep_option_spec options;     /* name, scope (EP_SCOPE_*), own defaults */
	const struct ep_variant *variant;  /* what every rank runs */
	/* The variant this command line runs when it is not `variant` (e.g. the
	 * MoE layer of a parallel configuration); NULL: always `variant`. */
	const struct ep_variant *(*variant_for)(const struct ep_options *o);
	/* Is this command line a job across nodes? NULL: never. */
	int (*across_nodes)(const struct ep_options *o);
	/* The routing of a point of R ranks on N nodes (N 0 on one host):
	 * o->routing with the command's defaults (e.g. expert groups). NULL:
	 * ep_command_default_routing. */
	void (*routing)(const struct ep_options *o, int ranks, int nodes, struct ep_routing *r);
	/* The command's own checks of a point, after the common ones (NULL: none). */
	int (*check)(const struct ep_options *o, const struct ep_shape *s, char *err, size_t len);
	/* The command's own options for the header and JSON ("key=value ..."),
	 * empty when it has none (NULL: none). */
	void (*describe)(const struct ep_options *o, char *buf, size_t len);
};

/* cmd as this command line runs it: a copy in *out with the variant its
 * variant_for hook picks (cmd itself when it has none). */
const struct ep_command *ep_command_for(const struct ep_command *cmd, const struct ep_options *o,
					struct ep_command *out);

/* --num-topk-groups without --num-groups makes one expert group per rank. */
void ep_command_default_routing(const struct ep_options *o, int ranks, int nodes, struct ep_routing *r);

/* The routing of a point under cmd (its hook, or the default). */
void ep_command_routing(const struct ep_command *cmd, const struct ep_options *o, int ranks, int nodes,
			struct ep_routing *r);
/* Frees what ep_command_routing built for the point (its placement). */
void ep_command_routing_free(struct ep_routing *r);

/* The commands that run points (their files define them). */
extern const struct ep_command ep_cmd_intranode, ep_cmd_low_latency, ep_cmd_internode, ep_cmd_mixed;

/* Every command, NULL-terminated (cli/commands.c), and lookup by name. */
extern const struct ep_command *const ep_commands[];
const struct ep_command *ep_command_find(const char *name);
/* `epbench help`'s text. */
void ep_commands_usage(FILE *out);

#endif
