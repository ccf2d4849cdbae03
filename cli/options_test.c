/* options_test.c - option parsing, sweeps and the shape checks DeepEP would make. */
#include "cli/command.h"
#include "cli/options.h"
#include "collectives/error.h"
#include "reference/trace.h"
#include "tests/harness.h"

static int parse(const char *cmd, struct ep_options *o, char *err, const char **args, int n)
{
	char *argv[32];
	argv[0] = (char *)cmd;
	for (int i = 0; i < n; i++)
		argv[i + 1] = (char *)args[i];
	FILE *null = fopen("/dev/null", "w");
	const struct ep_command *c = strcmp(cmd, "low-latency") == 0 ? &ep_cmd_low_latency
				     : strcmp(cmd, "internode") == 0 ? &ep_cmd_internode : &ep_cmd_intranode;
	int rc = ep_options_parse(&c->options, n + 1, argv, o, null, err, 256);
	fclose(null);
	return rc;
}
#define PARSE(o, err, ...) parse("intranode", o, err, (const char *[]){__VA_ARGS__}, \
	(int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)))

EP_TEST(defaults_are_deepep_test_shape)
{
	struct ep_options o;
	char err[256];
	EP_ASSERT_INT_EQ(PARSE(&o, err, "-q"), 0);
	EP_ASSERT_INT_EQ(o.ranks.v[0], 8);
	EP_ASSERT_INT_EQ(o.tokens.v[0], 4096);
	EP_ASSERT_INT_EQ(o.hidden.v[0], 7168);
	EP_ASSERT_INT_EQ(o.num_topk, 8);
	EP_ASSERT_INT_EQ(o.num_experts, 256);
	EP_ASSERT_INT_EQ(o.check, 1);
	ep_options_free(&o);
}

EP_TEST(dash_and_underscore_spellings_and_letters)
{
	struct ep_options o;
	char err[256];
	EP_ASSERT_INT_EQ(PARSE(&o, err, "--num_tokens", "64", "--num-experts", "16", "-r", "4", "-n", "7",
			       "-w", "2", "-c", "0", "--dtype", "fp8", "--op", "combine"), 0);
	EP_ASSERT_INT_EQ(o.tokens.v[0], 64);
	EP_ASSERT_INT_EQ(o.num_experts, 16);
	EP_ASSERT_INT_EQ(o.ranks.v[0], 4);
	EP_ASSERT_INT_EQ(o.iters, 7);
	EP_ASSERT_INT_EQ(o.warmup, 2);
	EP_ASSERT_INT_EQ(o.check, 0);
	EP_ASSERT_INT_EQ(o.dtype, EP_DTYPE_FP8);
	EP_ASSERT_INT_EQ(o.ops, EP_OPS_COMBINE);
	ep_options_free(&o);
}

EP_TEST(bad_values_quote_the_value)
{
	struct ep_options o;
	char err[256];
	EP_ASSERT_INT_EQ(PARSE(&o, err, "--num-tokens", "12x"), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "'12x'") != NULL);
	EP_ASSERT_INT_EQ(PARSE(&o, err, "--dtype", "fp16"), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "'fp16'") != NULL);
	EP_ASSERT_INT_EQ(PARSE(&o, err, "--frobnicate"), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "'--frobnicate'") != NULL);
	EP_ASSERT_INT_EQ(PARSE(&o, err, "--masked-ratio", "1.5"), -EP_EUSAGE);
	EP_ASSERT_INT_EQ(PARSE(&o, err, "--hidden"), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "needs a value") != NULL);
	EP_ASSERT_INT_EQ(PARSE(&o, err, "extra"), -EP_EUSAGE);
	EP_ASSERT_INT_EQ(PARSE(&o, err, "--fault", "explode:1"), -EP_EUSAGE);
	/* low-latency-only options are unknown to intranode */
	EP_ASSERT_INT_EQ(PARSE(&o, err, "--ue8m0"), -EP_EUSAGE);
}

EP_TEST(sweeps)
{
	struct ep_sweep s = {0, NULL};
	EP_ASSERT_INT_EQ(ep_sweep_parse("128:8192:x2", 0, 1 << 20, &s), 0);
	EP_ASSERT_INT_EQ(s.n, 7);
	EP_ASSERT_INT_EQ(s.v[0], 128);
	EP_ASSERT_INT_EQ(s.v[6], 8192);
	EP_ASSERT_INT_EQ(ep_sweep_parse("1024:4096:+1024", 0, 1 << 20, &s), 0);
	EP_ASSERT_INT_EQ(s.n, 4);
	EP_ASSERT_INT_EQ(s.v[3], 4096);
	EP_ASSERT_INT_EQ(ep_sweep_parse("2,4,8", 1, 64, &s), 0);
	EP_ASSERT_INT_EQ(s.n, 3);
	EP_ASSERT_INT_EQ(s.v[2], 8);
	EP_ASSERT_INT_EQ(ep_sweep_parse("16:8", 0, 64, &s), -EP_EUSAGE);
	EP_ASSERT_INT_EQ(ep_sweep_parse("0:8:x2", 0, 64, &s), -EP_EUSAGE);
	EP_ASSERT_INT_EQ(ep_sweep_parse("1:8:x1", 0, 64, &s), -EP_EUSAGE);
	/* an empty element is a typo, not a value: refused */
	EP_ASSERT_INT_EQ(ep_sweep_parse("2,,", 1, 64, &s), -EP_EUSAGE);
	EP_ASSERT_INT_EQ(ep_sweep_parse("1,,2", 1, 64, &s), -EP_EUSAGE);
	EP_ASSERT_INT_EQ(ep_sweep_parse(",2", 1, 64, &s), -EP_EUSAGE);
	EP_ASSERT_INT_EQ(ep_sweep_parse("", 1, 64, &s), -EP_EUSAGE);
	EP_ASSERT_INT_EQ(ep_sweep_parse("2,100", 1, 64, &s), -EP_EUSAGE);
	free(s.v);
}

static int check(const char **args, int n, char *err)
{
	struct ep_options o;
	struct ep_shape s;
	int rc = parse("intranode", &o, err, args, n);
	if (rc)
		return rc;
	ep_options_shape(&o, o.ranks.v[0], o.tokens.v[0], o.hidden.v[0], &s);
	rc = ep_options_check_shape(&o, &s, &o.routing, err, 256);
	ep_options_free(&o);
	return rc;
}
#define CHECK(err, ...) check((const char *[]){__VA_ARGS__}, \
	(int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)), err)

EP_TEST(shapes_deepep_rejects)
{
	char err[256];
	EP_ASSERT_INT_EQ(CHECK(err, "-r", "8", "-e", "250"), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "250") && strstr(err, "8"));
	EP_ASSERT_INT_EQ(CHECK(err, "-r", "2", "-e", "4", "-k", "5"), -EP_EUSAGE);
	EP_ASSERT_INT_EQ(CHECK(err, "-k", "33", "-e", "256"), -EP_EUSAGE);
	EP_ASSERT_INT_EQ(CHECK(err, "--dtype", "fp8", "--hidden", "1000"), -EP_EUSAGE);
	EP_ASSERT_INT_EQ(CHECK(err, "--hidden", "1001"), -EP_EUSAGE); /* 2002-byte rows */
	EP_ASSERT_INT_EQ(CHECK(err, "-r", "1", "-e", "2048"), -EP_EUSAGE); /* > 1024 local experts */
	EP_ASSERT_INT_EQ(CHECK(err, "-r", "8", "--num-topk-groups", "9"), -EP_EUSAGE);
	EP_ASSERT_INT_EQ(CHECK(err, "-r", "8", "-k", "8", "-e", "16", "--num-topk-groups", "2"), -EP_EUSAGE);
	EP_ASSERT_INT_EQ(CHECK(err, "--routing", "hot:300"), -EP_EUSAGE);
	EP_ASSERT_INT_EQ(CHECK(err, "-r", "8", "--hidden", "1000"), 0);
	EP_ASSERT_INT_EQ(CHECK(err, "-r", "3", "-e", "12", "--dtype", "fp8", "--hidden", "384"), 0);
}

/* rotating:PERIOD[:S] and trace:FILE[:STEP]: values, limits, and what a trace must match. */
EP_TEST(rotating_and_trace_routing)
{
	struct ep_options o;
	char err[256], path[] = "/tmp/ep_options_test_XXXXXX", arg[64];
	EP_ASSERT_INT_EQ(PARSE(&o, err, "--routing", "rotating:3:0.8"), 0);
	EP_ASSERT(o.routing.kind == EP_ROUTE_ROTATING && o.routing.rotate_period == 3 && o.routing.zipf_s == 0.8);
	ep_options_free(&o);
	EP_ASSERT_INT_EQ(PARSE(&o, err, "--routing", "rotating:5"), 0);
	EP_ASSERT(o.routing.zipf_s == 1.2);
	ep_options_free(&o);
	EP_ASSERT_INT_EQ(PARSE(&o, err, "--routing", "rotating:0"), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "'rotating:0'"));
	EP_ASSERT_INT_EQ(PARSE(&o, err, "--routing", "rotating:2", "--cached"), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "--cached"));
	int32_t ids[2 * 8 * 2] = {0};
	for (int i = 0; i < 32; i++)
		ids[i] = i % 2 ? -1 : i % 16 / 2;
	struct ep_trace t = {.num_experts = 8, .num_topk = 2, .num_steps = 2, .tokens_per_step = 8, .ids = ids};
	void *b;
	size_t len;
	int fd = mkstemp(path);
	EP_ASSERT(fd >= 0 && ep_trace_encode(&t, &b, &len) == 0 && write(fd, b, len) == (ssize_t)len);
	close(fd);
	free(b);
	snprintf(arg, sizeof(arg), "trace:%s:1", path);
	EP_ASSERT_INT_EQ(PARSE(&o, err, "-e", "8", "-k", "2", "--routing", arg), 0);
	EP_ASSERT(o.routing.kind == EP_ROUTE_TRACE && o.routing.trace_first == 1 && o.routing.trace &&
		  o.routing.trace->num_steps == 2 && strcmp(o.routing_path, path) == 0);
	ep_options_free(&o);
	EP_ASSERT_INT_EQ(CHECK(err, "-r", "2", "-t", "4", "-e", "8", "-k", "2", "--routing", arg), 0);
	EP_ASSERT_INT_EQ(CHECK(err, "-r", "2", "-t", "5", "-e", "8", "-k", "2", "--routing", arg), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "a step has 8 tokens, the run asks for 2 ranks x 5 tokens = 10"));
	EP_ASSERT_INT_EQ(PARSE(&o, err, "-e", "16", "-k", "2", "--routing", arg), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "holds 8 experts and top-2"));
	snprintf(arg, sizeof(arg), "trace:%s:2", path);
	EP_ASSERT_INT_EQ(PARSE(&o, err, "-e", "8", "-k", "2", "--routing", arg), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "has 2 steps (0 to 1)"));
	EP_ASSERT_INT_EQ(PARSE(&o, err, "--routing", "trace:"), -EP_EUSAGE);
	unlink(path);
}

EP_TEST_MAIN()
