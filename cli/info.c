/* info.c - `epbench info`: this host, and how fast it copies memory. */
#include <stdio.h>
#include <string.h>

#include "cli/command.h"
#include "cli/hostinfo.h"
#include "collectives/error.h"

static int info_main(const struct ep_command *cmd, int argc, char **argv)
{
	(void)cmd;
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: epbench info\n");
		return EP_EXIT_OK;
	}
	if (argc > 1) {
		fprintf(stderr, "epbench info: unexpected argument '%s' (see epbench info --help)\n", argv[1]);
		return EP_EXIT_USAGE;
	}
	struct ep_hostinfo h;
	ep_hostinfo_read(&h);
	printf("# host %s\n# cpu %s\n# cores %d\n# numa_nodes %d\n# memory %.1f GiB (%.1f GiB available)\n",
	       h.hostname, h.cpu_model, h.cores, h.numa_nodes, (double)h.mem_total / (1 << 30),
	       (double)h.mem_available / (1 << 30));
	printf("# %7s %10s\n# %7s %10s\n", "threads", "memcpy", "", "(GB/s)");
	for (int t = 1; t <= h.cores && t <= 64; t *= 2)
		printf("  %7d %10.2f\n", t, ep_host_copy_gbs(t));
	return EP_EXIT_OK;
}

const struct ep_command ep_cmd_info = {
	.name = "info",
	.help = "describe this host and measure its memory copy bandwidth",
	.main = info_main,
};
