/* ascend_tp.h - the Ascend MoE layer with MoE-TP (cli/ascend_tp.c): what the front door needs of it. */
#ifndef EP_CLI_ASCEND_TP_H
#define EP_CLI_ASCEND_TP_H

#include <stddef.h>

#include "cli/bench.h"

/* `intranode --parallel ...,moe_tp=N (N > 1) --ep-semantics ascend`, a2a mode. */
extern const struct ep_variant ep_ascend_tp_variant;

#endif
