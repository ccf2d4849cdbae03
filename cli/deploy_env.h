/* deploy_env.h - the environment variables DeepEP-Ascend and SGLang read, as epbench options.
 *
 * A deployment sets DEEP_NORMAL_MODE_USE_INT8_QUANT, SGLANG_DEEPEP_BF16_DISPATCH
 * and MOE_EXPERT_TOKEN_NUMS_TYPE in the environment of the serving
 * process; epbench reads the same variables and turns each into the option
 * it stands for (--dtype, --expert-counts) when the command line does not
 * give that option: the command line wins. A value other than those the
 * libraries define is refused (one line naming the variable), before
 * anything runs. What came from the environment is kept as one text for
 * the banner and the JSON ("environment"), as the launcher's variables are.
 */
#ifndef EP_DEPLOY_ENV_H
#define EP_DEPLOY_ENV_H

#include <stddef.h>

#include "cli/options.h"

/* Environment lookup: getenv in the program, a table in tests. */
typedef const char *(*ep_deploy_getenv_fn)(const char *name);

/* getenv, as an ep_deploy_getenv_fn. */
const char *ep_deploy_getenv(const char *name);

/* Applies the variables env holds to o for a command of the given scope
 * (EP_SCOPE_* bits: a variable applies only where its option does). Call
 * after the command line is parsed (o->given is read). Appends to
 * o->env_from what it did ("DEEP_NORMAL_MODE_USE_INT8_QUANT=1: --dtype int8")
 * or why not ("... ignored: --dtype on the command line"). 0, or
 * -EP_EUSAGE with one line in err naming the variable and its value. */
int ep_deploy_env_apply(unsigned scope, struct ep_options *o, ep_deploy_getenv_fn env, char *err, size_t len);

/* The value a boolean variable of SGLang means (get_bool_env_var: "1",
 * "true", "0", "false", any case): 1, 0, or -1 for anything else. */
int ep_deploy_env_bool(const char *value);

#endif
