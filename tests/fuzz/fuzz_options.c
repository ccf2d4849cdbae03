/* fuzz_options.c - libFuzzer target: the option parser (cli/options.c), the
 * environment it reads (cli/deploy_env.c), its shape checks and the --limits
 * profiles (cli/limits.c). The first byte picks the subcommand; the rest is
 * split at NUL and newline bytes into arguments. An argument "@NAME=VALUE"
 * naming one of the variables those modules read sets it for this input
 * (and is not passed on as an argument). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "cli/command.h"
#include "cli/limits.h"
#include "cli/options.h"
#include "tests/fuzz/fuzz.h"

#define MAX_ARGS 64

static const char *const env_names[] = {
	"DEEP_NORMAL_MODE_USE_INT8_QUANT", "SGLANG_DEEPEP_BF16_DISPATCH", "MOE_EXPERT_TOKEN_NUMS_TYPE", "HCCL_BUFFSIZE",
	"HCCL_OP_EXPANSION_MODE", "HCCL_INTRA_PCIE_ENABLE", "HCCL_INTRA_ROCE_ENABLE",
};
#define NENV (sizeof(env_names) / sizeof(env_names[0]))

/* "@NAME=VALUE" of a known variable: set it; 1 when the argument was one. */
static int env_arg(const char *a)
{
	for (size_t i = 0; a[0] == '@' && i < NENV; i++) {
		size_t n = strlen(env_names[i]);
		if (!strncmp(a + 1, env_names[i], n) && a[1 + n] == '=') {
			setenv(env_names[i], a + 2 + n, 1);
			return 1;
		}
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ep_command *const cmds[] = {&ep_cmd_intranode, &ep_cmd_low_latency, &ep_cmd_internode,
							&ep_cmd_mixed};
	if (size < 1 || size > 4096)
		return 0;
	char *text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = 0;
	char *argv[MAX_ARGS + 2];
	int argc = 0;
	const struct ep_command *cmd = cmds[data[0] % 4];
	argv[argc++] = (char *)cmd->name;
	for (char *p = text; argc < MAX_ARGS && p < text + size - 1;) {
		char *a = p;
		p += strcspn(p, "\n");
		if (*p)
			*p++ = 0;
		else
			p++;
		if (!env_arg(a))
			argv[argc++] = a;
	}
	argv[argc] = NULL;
	struct ep_options o;
	char err[512] = "";
	FILE *null = fopen("/dev/null", "w");
	int rc = ep_options_parse(&cmd->options, argc, argv, &o, null, err, sizeof(err));
	if (rc == 0) {
		if (o.ranks.n < 1 || o.tokens.n < 1 || o.hidden.n < 1 ||
		    (long long)o.ranks.n * o.tokens.n * o.hidden.n > EP_MAX_POINTS)
			abort();
		struct ep_shape s;
		ep_options_shape(&o, o.ranks.v[0], o.tokens.v[0], o.hidden.v[0], &s);
		struct ep_routing r;
		ep_command_routing(cmd, &o, s.num_ranks, 0, &r);
		if (!ep_options_check_shape(&o, &s, &r, err, sizeof(err)) && (!cmd->check || !cmd->check(&o, &s, err, sizeof(err)))) {
			struct ep_limits_point lp;
			ep_limits_point_of(&o, &s, o.nodes > 0 ? o.nodes : 0, &lp);
			if (ep_limits_check(o.limits, o.warn_only, &lp, ep_deploy_getenv, null, err, sizeof(err)))
				for (const char *c = err; *c; c++)
					if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
						abort(); /* a refused limit is one printable line */
		}
		ep_command_routing_free(&r);
		ep_options_free(&o);
	} else if (rc < 0) {
		for (const char *c = err; *c; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
				abort(); /* refusals are one printable line */
		if (!err[0])
			abort();
	}
	if (null)
		fclose(null);
	for (size_t i = 0; i < NENV; i++)
		unsetenv(env_names[i]);
	free(text);
	return 0;
}
