/* ascend_tp.h - the Ascend MoE layer with MoE-TP (cli/ascend_tp.c): what the front door needs of it. */
#ifndef EP_CLI_ASCEND_TP_H
#define EP_CLI_ASCEND_TP_H

#include <stddef.h>

#include "cli/bench.h"

/* `intranode --parallel ...,moe_tp=N (N > 1) --ep-semantics ascend`, a2a mode. */
extern const struct ep_variant ep_ascend_tp_variant;

/* The warning for a configuration outside Ascend's own limits (moe_tp > 2,
 * or MoE-TP with L > 1 local experts), else "" (section 7): the header
 * prints it as one `# warning:` line. */
void ep_ascend_tp_note(int moe_tp, int L, char *buf, size_t len);

#endif
