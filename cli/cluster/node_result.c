/* node_result.c - a node's RESULT payload, and node 0's aggregation of the job's. */
#include "cli/cluster/node_result.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The payload: this header, then results [P], times [P][nops][iters],
 * wrong [P][R], figures [P]. */
struct result_hdr {
	int32_t code, nlocal;
	double wall_s;
	char message[EP_TEXT_MAX];
};

/* The sections' sizes, in payload order. */
static void sections(const struct ep_variant *v, const struct ep_run *run, int P, size_t sz[4])
{
	size_t p = (size_t)P;
	sz[0] = p * sizeof(struct ep_rank_result);
	sz[1] = p * (size_t)v->nops * (size_t)run->cfg->iters * sizeof(double);
	sz[2] = p * (size_t)run->shape.num_ranks * sizeof(uint64_t);
	sz[3] = p * sizeof(struct ep_rank_figures);
}

size_t ep_node_result_bytes(const struct ep_variant *v, const struct ep_run *run, int P)
{
	size_t sz[4];
	sections(v, run, P, sz);
	return sizeof(struct result_hdr) + sz[0] + sz[1] + sz[2] + sz[3];
}

char *ep_node_result_pack(const struct ep_variant *v, const struct ep_run *run, int P,
			  const struct ep_run_result *mine, const struct ep_raw_results *raw,
			  const struct ep_rank_figures *figures, size_t *len)
{
	size_t sz[4];
	const void *src[4] = {raw->results, raw->times, raw->wrong, figures};
	sections(v, run, P, sz);
	*len = ep_node_result_bytes(v, run, P);
	char *buf = calloc(1, *len), *p = buf + sizeof(struct result_hdr);
	if (!buf)
		return NULL;
	struct result_hdr h = {.code = mine->exit_code, .nlocal = P, .wall_s = mine->wall_s};
	snprintf(h.message, sizeof(h.message), "%s", mine->message);
	memcpy(buf, &h, sizeof(h));
	for (int i = 0; i < 4; p += sz[i], i++)
		memcpy(p, src[i], sz[i]);
	return buf;
}

int ep_node_result_code(const char *blob)
{
	struct result_hdr h;
	memcpy(&h, blob, sizeof(h));
	return h.code;
}

/* Per-node lines: the slowest local rank's median and the node's bytes. */
static void node_figures(const struct ep_variant *v, int nodes, int P, const struct ep_node_info *info,
			 const struct ep_rank_figures *fg, struct ep_run_result *res)
{
	for (int k = 0; k < nodes; k++) {
		struct ep_node_result *nr = &res->nodes[k];
		snprintf(nr->host, sizeof(nr->host), "%s", info[k].host);
		nr->ranks = P;
		for (int i = 0; i < v->nops; i++)
			for (int g = 0; g < P; g++) {
				int q = k * P + g;
				if (res->ops[i].rank_median_us && res->ops[i].rank_median_us[q] > nr->median_us[i])
					nr->median_us[i] = res->ops[i].rank_median_us[q];
				nr->rdma_bytes[i] += fg[q].rdma_bytes[i];
				nr->wire_bytes[i] += fg[q].wire_bytes[i];
				nr->nvl_bytes[i] += fg[q].nvl_bytes[i];
			}
	}
}

/* Per-link lines: bytes over all rails, and the latest rail's median arrival. */
static void link_figures(const struct ep_variant *v, int nodes, int P, const struct ep_rank_figures *fg,
			 struct ep_run_result *res)
{
	for (int a = 0; a < nodes; a++)
		for (int b = 0; b < nodes; b++) {
			if (a == b)
				continue;
			struct ep_link_result *l = &res->links[res->num_links++];
			l->src = a;
			l->dst = b;
			for (int i = 0; i < v->nops; i++) {
				for (int g = 0; g < P; g++) {
					l->bytes[i] += fg[a * P + g].link_bytes[i][b];
					if (fg[b * P + g].arrival_us[i][a] > l->arrival_us[i])
						l->arrival_us[i] = fg[b * P + g].arrival_us[i][a];
				}
				l->gbs[i] = l->arrival_us[i] > 0 ? (double)l->bytes[i] / l->arrival_us[i] / 1e3 : 0;
			}
		}
}

int ep_node_result_aggregate(const struct ep_variant *v, const struct ep_run *run, int nodes, int P,
			     const struct ep_node_info *info, const char *const *blobs,
			     struct ep_run_result *res)
{
	size_t sz[4];
	sections(v, run, P, sz);
	char *all[4];
	for (int i = 0; i < 4; i++)
		all[i] = malloc(sz[i] * (size_t)nodes + 1);
	res->nodes = calloc((size_t)nodes, sizeof(*res->nodes));
	res->links = calloc((size_t)nodes * nodes + 1, sizeof(*res->links));
	int rc = all[0] && all[1] && all[2] && all[3] && res->nodes && res->links ? 0 : -ENOMEM;
	for (int k = 0; !rc && k < nodes; k++) {
		const char *p = blobs[k] + sizeof(struct result_hdr);
		for (int i = 0; i < 4; p += sz[i], i++) /* node k's ranks are ranks k*P .. k*P+P-1 */
			memcpy(all[i] + sz[i] * (size_t)k, p, sz[i]);
	}
	if (!rc) {
		ep_launch_collect(v, run, (const struct ep_rank_result *)all[0], (const double *)all[1],
				  (const uint64_t *)all[2], res);
		res->num_ranks = run->shape.num_ranks;
		res->num_nodes = nodes;
		node_figures(v, nodes, P, info, (const struct ep_rank_figures *)all[3], res);
		link_figures(v, nodes, P, (const struct ep_rank_figures *)all[3], res);
	}
	for (int i = 0; i < 4; i++)
		free(all[i]);
	return rc;
}
