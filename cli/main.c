/* main.c - the epbench command: a table of subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cases.h"
#include "cli/cluster/node_job.h"
#include "cli/command.h"
#include "cli/sweep.h"
#include "collectives/error.h"

#ifndef EP_VERSION
#define EP_VERSION "dev"
#endif

extern const struct ep_command ep_cmd_info, ep_cmd_compare, ep_cmd_ab, ep_cmd_plot;
static const struct ep_command cmd_version, cmd_help;

/* Every subcommand: one row each. */
static const struct ep_command *const commands[] = {
	&ep_cmd_intranode, &ep_cmd_low_latency, &ep_cmd_internode, &ep_cmd_compare, &ep_cmd_ab, &ep_cmd_plot,
	&ep_cmd_info, &cmd_version, &cmd_help,
};
#define NCMD (int)(sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: epbench COMMAND [options]\n\n"
		     "Benchmarks and checks, bit for bit, DeepEP-style MoE dispatch and combine.\n\n"
		     "commands:\n");
	for (int i = 0; i < NCMD; i++)
		fprintf(out, "  %-12s %s\n", commands[i]->name, commands[i]->help);
	fprintf(out, "\nexit codes: 0 pass, 1 wrong data, 2 usage, 3 environment, 4 timeout or dead rank, 5 too slow\n");
}

static int help_main(const struct ep_command *cmd, int argc, char **argv)
{
	(void)cmd, (void)argc, (void)argv;
	usage(stdout);
	return EP_EXIT_OK;
}

static int version_main(const struct ep_command *cmd, int argc, char **argv)
{
	(void)cmd, (void)argc, (void)argv;
	printf("epbench %s\n", EP_VERSION);
	return EP_EXIT_OK;
}

static const struct ep_command cmd_version = {
	.name = "version", .help = "print the version", .main = version_main,
};
static const struct ep_command cmd_help = {
	.name = "help", .help = "this text; 'epbench CMD --help' for a command's options", .main = help_main,
};

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
		usage(stderr);
		return EP_EXIT_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
		name = "help";
	if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0)
		name = "version";
	const struct ep_command *cmd = NULL;
	for (int i = 0; i < NCMD && !cmd; i++)
		if (strcmp(name, commands[i]->name) == 0)
			cmd = commands[i];
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
