/* mindie_config.h - the parallel keys of a MindIE service's config.json.
 *
 * Reads BackendConfig.ModelDeployConfig.ModelConfig[0]: worldSize, dp, tp,
 * sp, cp, moe_tp, moe_ep (-1 = unset, as MindIE has it), and
 * models.deepseekv2.ep_level (1 = allgather mode, 2 = a2a) when present;
 * the rest of a real file is tolerated and ignored. The file is read
 * bounded (reports/text_file.h); no waits.
 */
#ifndef EP_MINDIE_CONFIG_H
#define EP_MINDIE_CONFIG_H

#include <stddef.h>

#include "cli/parallel.h"

/* Fills the keys p names from the text (n bytes); what names the source
 * for messages. 0, or -1 with one line in err (not JSON, no ModelConfig, a
 * key that is not a whole number from -1 up, ep_level not 1 or 2). */
int ep_mindie_config_parse(const char *text, size_t n, const char *what, struct ep_parallel *p, char *err, size_t len);

/* The same from a file. */
int ep_mindie_config_read(const char *path, struct ep_parallel *p, char *err, size_t len);

#endif
