/* commands.c - the table of every subcommand, one row each, and `help` and `version`.
 *
 * Adding a subcommand: its file defines a const struct ep_command
 * (cli/command.h); one row here makes it exist.
 */
#include <stdio.h>
#include <string.h>

#include "cli/command.h"
#include "collectives/error.h"

#ifndef EP_VERSION
#define EP_VERSION "dev"
#endif

extern const struct ep_command ep_cmd_compare, ep_cmd_ab, ep_cmd_plot, ep_cmd_info, ep_cmd_suite, ep_cmd_golden,
	ep_cmd_verify, ep_cmd_accept, ep_cmd_groups, ep_cmd_plan;
static const struct ep_command cmd_version, cmd_help;

const struct ep_command *const ep_commands[] = {
	&ep_cmd_intranode, &ep_cmd_low_latency, &ep_cmd_internode, &ep_cmd_mixed, &ep_cmd_suite, &ep_cmd_golden, &ep_cmd_verify, &ep_cmd_compare,
	&ep_cmd_ab, &ep_cmd_plot, &ep_cmd_accept, &ep_cmd_groups, &ep_cmd_plan, &ep_cmd_info, &cmd_version, &cmd_help, NULL,
};

const struct ep_command *ep_command_find(const char *name)
{
	for (int i = 0; ep_commands[i]; i++)
		if (strcmp(name, ep_commands[i]->name) == 0)
			return ep_commands[i];
	return NULL;
}

void ep_commands_usage(FILE *out)
{
	fprintf(out, "usage: epbench COMMAND [options]\n\n"
		     "Benchmarks and checks, bit for bit, DeepEP-style MoE dispatch and combine.\n\n"
		     "commands:\n");
	for (int i = 0; ep_commands[i]; i++)
		fprintf(out, "  %-12s %s\n", ep_commands[i]->name, ep_commands[i]->help);
	fprintf(out, "\nexit codes: 0 pass, 1 wrong data, 2 usage, 3 environment, 4 timeout or dead rank, 5 too slow\n");
}

static int help_main(const struct ep_command *cmd, int argc, char **argv)
{
	(void)cmd, (void)argc, (void)argv;
	ep_commands_usage(stdout);
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
