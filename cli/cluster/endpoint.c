/* endpoint.c - a node rank's transport endpoint, rendezvous through the node context, and figures. */
#include "cli/cluster/endpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/error.h"
#include "collectives/traffic.h"
#include "reports/stats.h"

#define RING 4096 /* arrival records kept per op */

int ep_endpoint_fail(struct ep_endpoint *e, int rc, const char *what)
{
	ep_sync_fail(e->waiter, rc, "rank %d (node %d): %s: %s", e->rank, e->node, what,
		     e->net.error[0] ? e->net.error : ep_strerror(rc));
	return rc;
}

int ep_endpoint_open(struct ep_endpoint *e, struct ep_bench_env *env, int num_ranks)
{
	struct ep_node_ctx *ctx = env->variant_ctx;
	const struct ep_run_cfg *cfg = env->run->cfg;
	memset(e, 0, sizeof(*e));
	e->ctx = ctx;
	e->waiter = env->waiter;
	e->rank = env->rank;
	e->node = env->rank / ctx->per_node;
	e->local = env->rank % ctx->per_node;
	e->ring = cfg->iters < RING ? cfg->iters : RING;
	ep_set_phase(e->waiter, "setup.transport");
	e->arrivals = calloc((size_t)EP_MAX_OPS * (size_t)e->ring * (size_t)ctx->nodes, sizeof(int64_t));
	if (!e->arrivals)
		return ep_endpoint_fail(e, -ENOMEM, "arrival records");
	double t = cfg->timeout_s; /* the network gives up a second earlier (half of it under 2 s) */
	struct ep_transport_cfg tc = {
		.rank = e->rank, .num_ranks = num_ranks, .ranks_per_node = ctx->per_node,
		.host = ctx->host, .timeout_s = t > 2 ? t - 1 : t / 2, .job_id = ctx->job_id,
		.ib_dev = ctx->ib_dev[0] ? ctx->ib_dev : NULL, .gid_index = ctx->gid_index,
	};
	int rc = ep_transport_init(&e->net, ctx->ops, &tc, &ctx->addr[e->rank]);
	if (rc) {
		ep_endpoint_fail(e, rc, ctx->ops->name);
		ep_transport_fini(&e->net);
		return rc;
	}
	e->up = 1;
	char path[EP_TRAFFIC_PATH_MAX];
	ep_transport_describe(&e->net, path, sizeof(path));
	ep_traffic_set_path(e->waiter->traffic, e->rank, path);
	return 0;
}

int ep_endpoint_connect(struct ep_endpoint *e, const int *peers, int npeers, const char *what)
{
	int rc;
	ep_flag_add(&e->ctx->published, 1);
	ep_set_phase(e->waiter, "setup.rendezvous");
	if ((rc = ep_flag_wait_geq(e->waiter, &e->ctx->table_ready, 1, -1)))
		return rc;
	ep_set_phase(e->waiter, "setup.connect");
	if ((rc = ep_transport_connect(&e->net, peers, npeers, e->ctx->addr))) {
		char why[96];
		snprintf(why, sizeof(why), "connecting to %s", what);
		return ep_endpoint_fail(e, rc, why);
	}
	return 0;
}

void ep_endpoint_close(struct ep_endpoint *e)
{
	if (e->up) {
		/* A rank that failed leaves at once: waiting for its peers' goodbyes
		 * would only delay the launcher's report by another timeout. */
		if (ep_waiter_failed(e->waiter))
			e->net.cfg.timeout_s = 0.01;
		ep_transport_fini(&e->net);
		e->up = 0;
	}
	free(e->arrivals);
	e->arrivals = NULL;
}

static int64_t *ring_at(const struct ep_endpoint *e, int op, int slot)
{
	return e->arrivals + ((size_t)op * (size_t)e->ring + (size_t)slot) * (size_t)e->ctx->nodes;
}

void ep_endpoint_arrived(struct ep_endpoint *e, int op, const int64_t *arrival_ns)
{
	if (op < 0 || op >= EP_MAX_OPS || !e->arrivals)
		return;
	memcpy(ring_at(e, op, e->narr[op]++ % e->ring), arrival_ns, sizeof(int64_t) * (size_t)e->ctx->nodes);
}

/* Median over the ring of op's arrivals from node m, in microseconds (0
 * when out of memory: it is a report, after the timed loop). */
static double median_arrival_us(const struct ep_endpoint *e, int op, int m)
{
	size_t n = (size_t)(e->narr[op] < e->ring ? e->narr[op] : e->ring);
	double *v = malloc(sizeof(double) * (n + 1)), med = 0;
	if (v) {
		for (size_t i = 0; i < n; i++)
			v[i] = (double)ring_at(e, op, (int)i)[m] * 1e-3;
		med = ep_median(v, n);
	}
	free(v);
	return med;
}

void ep_endpoint_figures(struct ep_endpoint *e, int op, uint64_t rdma, uint64_t nvl,
			 const uint64_t *net_bytes)
{
	struct ep_rank_figures *fg = &e->ctx->figures[e->local];
	uint64_t wire = 0;
	ep_set_phase(e->waiter, "figures");
	for (int m = 0; m < e->ctx->nodes; m++) {
		fg->link_bytes[op][m] = net_bytes[m];
		fg->arrival_us[op][m] = m == e->node ? 0 : median_arrival_us(e, op, m);
		wire += net_bytes[m];
	}
	fg->rdma_bytes[op] = rdma;
	fg->wire_bytes[op] = wire;
	fg->nvl_bytes[op] = nvl;
}
