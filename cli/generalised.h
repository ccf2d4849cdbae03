/* generalised.h - what runs under parallel-semantics.md's generalisation beyond a vendor's own limits.
 *
 * parallel-semantics.md section 7: configurations outside Ascend's own
 * limits that the spec generalises (moe_tp > 2, L > 1 with MoE-TP,
 * --comm-quant int8 with moe_tp 2, K > 8, H != 7168 on A3; the limits of Ascend/op-plugin's
 * torch_npu-npu_moe_distribute_{dispatch,combine}{,_v2}.md) run, with one '#'
 * warning line each in the header and the JSON's config.warnings. They
 * are not refusals: `--limits` (a profile) is what refuses a shape.
 * With --ep-semantics ascend in allgather mode, which has no EP dispatch or
 * combine, those limits do not apply: one line says that Ascend's
 * semantics do not apply there instead.
 */
#ifndef EP_GENERALISED_H
#define EP_GENERALISED_H

#include <stddef.h>

#include "cli/options.h"

/* The warnings of a run of W ranks, one per line ('\n' after each) into
 * buf ("" when none); returns how many. */
int ep_generalised_warnings(const struct ep_options *o, int W, char *buf, size_t len);

#endif
