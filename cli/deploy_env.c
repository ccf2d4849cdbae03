/* deploy_env.c - DeepEP-Ascend's and SGLang's environment variables as epbench options, one table row each.
 *
 * Where each variable is read, and what its values mean:
 *
 * DEEP_NORMAL_MODE_USE_INT8_QUANT: int8 quantisation of normal (prefill)
 *   dispatch. sgl-project/sgl-kernel-npu python/deep_ep/doc/A2_DEEPEP.md
 *   ("export DEEP_NORMAL_MODE_USE_INT8_QUANT=1 ... bfloat16 -> int8"; across
 *   nodes "unset or set to 0"); Buffer.dispatch falls back to it when no
 *   quant_mode is passed, read as os.getenv("DEEP_NORMAL_MODE_USE_INT8_QUANT")
 *   == "1" (tests/python/deepep/verify_env_var_int8.py), and SGLang's NPU MoE
 *   path (python/sglang/srt/layers/moe/.../forward_npu) as
 *   get_bool_env_var("DEEP_NORMAL_MODE_USE_INT8_QUANT"). 1 -> --dtype int8,
 *   0 -> --dtype bf16; normal-mode commands only.
 * SGLANG_DEEPEP_BF16_DISPATCH: SGLang's low-latency dispatch casts to FP8
 *   unless it is set (python/sglang/srt/layers/moe/ep_moe/layer.py and the
 *   DeepEP dispatcher: use_fp8 = not envs.SGLANG_DEEPEP_BF16_DISPATCH.get();
 *   an SGLang bool, get_bool_env_var: "1"/"true" on, "0"/"false" off).
 *   1 -> --dtype bf16, 0 -> --dtype fp8; low-latency commands only.
 * MOE_EXPERT_TOKEN_NUMS_TYPE: what normal dispatch returns in
 *   num_recv_tokens_per_expert_list: 1 (default) per-expert counts, 0 prefix
 *   sums. sgl-kernel-npu csrc/deepep (deep_ep.cpp):
 *   get_value_from_env("MOE_EXPERT_TOKEN_NUMS_TYPE", 1), checked to be 0 or 1
 *   ("expert_token_nums_type is invalid"); A2_DEEPEP.md says the same.
 *   0 -> --expert-counts prefix, 1 -> counts; normal-mode commands only.
 * EPBENCH_COPY_PROBE: epbench's own, for harnesses that run many small
 *   correctness runs (tests/lib.sh, a CI job's environment): off (or 0)
 *   -> --copy-probe off, on (or 1) -> on; every command that runs points.
 *   Applied silently: the header's host line says the probe did not run,
 *   and a harness's setting is not the deployment's environment.
 *
 * An empty variable counts as unset (as getenv-based readers that test for
 * a value do).
 */
#include "cli/deploy_env.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "collectives/error.h"

struct env_var {
	const char *name;
	unsigned scope;       /* EP_SCOPE_* bits a command must have for it to apply */
	unsigned not_scope;   /* ...and must not have (a plan of both modes: which dispatch?) */
	const char *option;   /* the option it stands for (the command line wins) */
	int (*meaning)(const char *value);          /* 0, 1, or -1: not a value the library defines */
	const char *want;                           /* those values, for the refusal */
	const char *as_option[2];                   /* the option's value for meaning 0 and 1 */
	void (*set)(struct ep_options *o, int m);
	int silent;                                 /* applied without a note in the banner and JSON */
};

/* MOE_EXPERT_TOKEN_NUMS_TYPE is an integer the C++ side checks: exactly 0 or 1. */
static int zero_one(const char *v)
{
	return !strcmp(v, "0") ? 0 : !strcmp(v, "1") ? 1 : -1;
}

int ep_deploy_env_bool(const char *v)
{
	if (!strcmp(v, "1") || !strcasecmp(v, "true"))
		return 1;
	if (!strcmp(v, "0") || !strcasecmp(v, "false"))
		return 0;
	return -1;
}

/* EPBENCH_COPY_PROBE: on/1 or off/0. */
static int on_off(const char *v)
{
	return !strcmp(v, "on") || !strcmp(v, "1") ? 1 : !strcmp(v, "off") || !strcmp(v, "0") ? 0 : -1;
}

static void set_copy_probe(struct ep_options *o, int m)
{
	o->copy_probe_off = !m;
}

static void set_int8(struct ep_options *o, int m)
{
	o->dtype = m ? EP_DTYPE_INT8 : EP_DTYPE_BF16;
}

static void set_bf16_dispatch(struct ep_options *o, int m)
{
	o->dtype = m ? EP_DTYPE_BF16 : EP_DTYPE_FP8;
}

static void set_token_nums(struct ep_options *o, int m)
{
	o->expert_counts = m ? EP_COUNTS_PLAIN : EP_COUNTS_PREFIX;
}

static const struct env_var vars[] = {
	{"DEEP_NORMAL_MODE_USE_INT8_QUANT", EP_SCOPE_NORMAL, EP_SCOPE_LL, "dtype", ep_deploy_env_bool,
	 "1 or 0 (true/false)", {"bf16", "int8"}, set_int8, 0},
	{"SGLANG_DEEPEP_BF16_DISPATCH", EP_SCOPE_LL, EP_SCOPE_NORMAL, "dtype", ep_deploy_env_bool,
	 "1 or 0 (true/false)", {"fp8", "bf16"}, set_bf16_dispatch, 0},
	{"MOE_EXPERT_TOKEN_NUMS_TYPE", EP_SCOPE_NORMAL, 0, "expert-counts", zero_one,
	 "0 (prefix sums) or 1 (per-expert counts)", {"prefix", "counts"}, set_token_nums, 0},
	{"EPBENCH_COPY_PROBE", EP_SCOPE_RUN, 0, "copy-probe", on_off, "on or off (1 or 0)", {"off", "on"}, set_copy_probe, 1},
};
#define NVARS (int)(sizeof(vars) / sizeof(vars[0]))

static void note(struct ep_options *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct ep_options *o, const char *fmt, ...)
{
	size_t n = strlen(o->env_from);
	if (n + 3 >= sizeof(o->env_from))
		return;
	if (n)
		n += (size_t)snprintf(o->env_from + n, sizeof(o->env_from) - n, "; ");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->env_from + n, sizeof(o->env_from) - n, fmt, ap);
	va_end(ap);
}

/* A value quoted printably (what the environment holds may be anything). */
static void quote(const char *v, char *out, size_t len)
{
	size_t i = 0;
	for (; *v && i + 2 < len && i < 40; v++)
		out[i++] = (unsigned char)*v < 0x20 || (unsigned char)*v > 0x7e ? '?' : *v;
	out[i] = 0;
}

const char *ep_deploy_getenv(const char *name)
{
	return getenv(name);
}

int ep_deploy_env_apply(unsigned scope, struct ep_options *o, ep_deploy_getenv_fn env, char *err, size_t len)
{
	o->env_from[0] = 0;
	for (int i = 0; i < NVARS; i++) {
		const struct env_var *v = &vars[i];
		const char *value = env(v->name);
		char q[48];
		if (!value || !*value)
			continue;
		quote(value, q, sizeof(q));
		int m = v->meaning(value);
		if (m < 0) {
			snprintf(err, len, "environment %s='%s': want %s", v->name, q, v->want);
			return -EP_EUSAGE;
		}
		if (v->scope == EP_SCOPE_RUN && !(scope & EP_SCOPE_RUN))
			continue; /* a command that runs nothing: nothing to say */
		if ((scope & v->not_scope) && (scope & v->scope)) /* both modes (mixed, plan): one --dtype for both */
			note(o, "%s=%s not applied (%s runs both modes: say --%s on the command line)", v->name, q,
			     o->command, v->option);
		else if ((scope & v->scope) != v->scope || (scope & v->not_scope))
			note(o, "%s=%s not applied (%s runs no %s dispatch)", v->name, q, o->command,
			     v->scope == EP_SCOPE_LL ? "low-latency" : "normal");
		else if (ep_option_given(o, v->option))
			note(o, "%s=%s ignored: --%s on the command line", v->name, q, v->option);
		else {
			v->set(o, m);
			if (!v->silent)
				note(o, "%s=%s: --%s %s", v->name, q, v->option, v->as_option[m]);
		}
	}
	return 0;
}
