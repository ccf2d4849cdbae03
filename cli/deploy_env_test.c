/* deploy_env_test.c - the deployment's environment as options: values, scope, the command line winning. */
#include "cli/command.h"
#include "cli/deploy_env.h"
#include "collectives/error.h"
#include "tests/harness.h"

/* A fake environment: NULL-terminated name/value pairs. */
static const char *const *fake;
static const char *fake_env(const char *name)
{
	for (int i = 0; fake && fake[i]; i += 2)
		if (strcmp(fake[i], name) == 0)
			return fake[i + 1];
	return NULL;
}

/* Parses argv for cmd (the real environment's variables applied too: the
 * harness runs without them), then applies env. */
static int apply(const struct ep_command *cmd, char **argv, int argc, const char *const *env, struct ep_options *o,
		 char *err)
{
	char e[256];
	EP_ASSERT_INT_EQ(ep_options_parse(&cmd->options, argc, argv, o, stdout, e, sizeof(e)), 0);
	fake = env;
	return ep_deploy_env_apply(cmd->options.scope, o, fake_env, err, 256);
}

EP_TEST(bool_values_as_sglang_reads_them)
{
	EP_ASSERT_INT_EQ(ep_deploy_env_bool("1"), 1);
	EP_ASSERT_INT_EQ(ep_deploy_env_bool("TRUE"), 1);
	EP_ASSERT_INT_EQ(ep_deploy_env_bool("0"), 0);
	EP_ASSERT_INT_EQ(ep_deploy_env_bool("false"), 0);
	EP_ASSERT_INT_EQ(ep_deploy_env_bool("yes"), -1);
	EP_ASSERT_INT_EQ(ep_deploy_env_bool(" 1"), -1);
}

EP_TEST(environment_sets_options_the_command_line_lacks)
{
	static const char *const env[] = {"DEEP_NORMAL_MODE_USE_INT8_QUANT", "1", "MOE_EXPERT_TOKEN_NUMS_TYPE", "0", NULL};
	char *argv[] = {"intranode", NULL};
	struct ep_options o;
	char err[256];
	EP_ASSERT_INT_EQ(apply(&ep_cmd_intranode, argv, 1, env, &o, err), 0);
	EP_ASSERT_INT_EQ(o.dtype, EP_DTYPE_INT8);
	EP_ASSERT_INT_EQ(o.expert_counts, EP_COUNTS_PREFIX);
	EP_ASSERT(strstr(o.env_from, "DEEP_NORMAL_MODE_USE_INT8_QUANT=1: --dtype int8") != NULL);
	ep_options_free(&o);
}

EP_TEST(command_line_wins)
{
	static const char *const env[] = {"DEEP_NORMAL_MODE_USE_INT8_QUANT", "1", NULL};
	char *argv[] = {"intranode", "--dtype", "fp8", NULL};
	struct ep_options o;
	char err[256];
	EP_ASSERT_INT_EQ(apply(&ep_cmd_intranode, argv, 3, env, &o, err), 0);
	EP_ASSERT_INT_EQ(o.dtype, EP_DTYPE_FP8);
	EP_ASSERT(strstr(o.env_from, "ignored: --dtype on the command line") != NULL);
	ep_options_free(&o);
}

EP_TEST(low_latency_reads_bf16_dispatch_only)
{
	static const char *const env[] = {"SGLANG_DEEPEP_BF16_DISPATCH", "false", "DEEP_NORMAL_MODE_USE_INT8_QUANT", "1", NULL};
	char *argv[] = {"low-latency", NULL};
	struct ep_options o;
	char err[256];
	EP_ASSERT_INT_EQ(apply(&ep_cmd_low_latency, argv, 1, env, &o, err), 0);
	EP_ASSERT_INT_EQ(o.dtype, EP_DTYPE_FP8);
	EP_ASSERT(strstr(o.env_from, "DEEP_NORMAL_MODE_USE_INT8_QUANT=1 not applied") != NULL);
	ep_options_free(&o);
}

EP_TEST(undocumented_values_refused_by_name)
{
	static const char *const env[] = {"MOE_EXPERT_TOKEN_NUMS_TYPE", "2", NULL};
	char *argv[] = {"intranode", NULL};
	struct ep_options o;
	char err[256];
	EP_ASSERT_INT_EQ(apply(&ep_cmd_intranode, argv, 1, env, &o, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "MOE_EXPERT_TOKEN_NUMS_TYPE='2'") != NULL);
	ep_options_free(&o);
}

EP_TEST(empty_is_unset)
{
	static const char *const env[] = {"DEEP_NORMAL_MODE_USE_INT8_QUANT", "", NULL};
	char *argv[] = {"intranode", NULL};
	struct ep_options o;
	char err[256];
	EP_ASSERT_INT_EQ(apply(&ep_cmd_intranode, argv, 1, env, &o, err), 0);
	EP_ASSERT_INT_EQ(o.dtype, EP_DTYPE_BF16);
	EP_ASSERT_STR_EQ(o.env_from, "");
	ep_options_free(&o);
}

EP_TEST_MAIN()
