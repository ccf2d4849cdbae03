/* main.c - the epbench command: finds the subcommand (cli/commands.c), expands --case, runs it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cases.h"
#include "cli/cluster/node_job.h"
#include "cli/command.h"
#include "cli/sweep.h"
#include "collectives/error.h"


/* On one host: --ranks-per-node P (low-latency --nodes 1) means P ranks. */
static int one_host_ranks(const struct ep_command *cmd, struct ep_options *o)
{
	if (o->ranks_per_node <= 0)
		return 0;
	if (ep_option_given(o, "num-ranks") && (o->ranks.n != 1 || o->ranks.v[0] != o->ranks_per_node)) {
		fprintf(stderr, "epbench %s: --num-ranks %d disagrees with --nodes 1 x --ranks-per-node %d\n",
			cmd->name, o->ranks.v[0], o->ranks_per_node);
		return EP_EXIT_USAGE;
	}
	o->ranks.v[0] = o->ranks_per_node;
	o->ranks_per_node = 0;
	return 0;
}

/* A command that runs points: options, then a sweep here or a node job.
 * cmdline: the command as typed, for the reports. */
static int run_points(const struct ep_command *cmd, int argc, char **argv, const char *cmdline)
{
	struct ep_options o;
	char err[512];
	int code = ep_options_parse(&cmd->options, argc, argv, &o, stdout, err, sizeof(err));
	if (code == 1)
		return EP_EXIT_OK;
	if (code) {
		fprintf(stderr, "epbench %s: %s\n", cmd->name, err);
		return EP_EXIT_USAGE;
	}
	struct ep_command chosen;
	cmd = ep_command_for(cmd, &o, &chosen);
	if (cmd->across_nodes && cmd->across_nodes(&o)) {
		code = ep_node_job_main(cmd, &o, cmdline);
	} else if (!(code = one_host_ranks(cmd, &o))) {
		struct ep_sweep_runner here = ep_sweep_here(cmd);
		if ((code = ep_sweep_check(cmd, &o, 0, 0, 0, 1, err, sizeof(err))))
			fprintf(stderr, "epbench %s: %s\n", cmd->name, err);
		else
			code = ep_sweep_run(cmd, &o, &here, cmdline);
	}
	ep_options_free(&o);
	return code;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		ep_commands_usage(stderr);
		return EP_EXIT_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
		name = "help";
	if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0)
		name = "version";
	const struct ep_command *cmd = ep_command_find(name);
	if (!cmd) {
		fprintf(stderr, "epbench: unknown command '%s' (see epbench --help)\n", name);
		return EP_EXIT_USAGE;
	}
	/* --case FILE is expanded once, here, for every command */
	char **args = NULL, *case_text = NULL, err[512];
	int nargs = 0, code;
	if (ep_cases_expand(argc - 1, argv + 1, &nargs, &args, &case_text, err, sizeof(err))) {
		fprintf(stderr, "epbench %s: %s\n", cmd->name, err);
		return EP_EXIT_USAGE;
	}
	char *cmdline = ep_sweep_command_line(argc - 1, argv + 1);
	code = cmd->main ? cmd->main(cmd, nargs, args) : run_points(cmd, nargs, args, cmdline ? cmdline : name);
	free(cmdline);
	free(args);
	free(case_text);
	return code;
}
