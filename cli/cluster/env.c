/* env.c - node count, node rank, ranks per node and master address, from options or a launcher's environment. */
#include "cli/cluster/env.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cluster/endpoint.h"
#include "collectives/error.h"

#define DEFAULT_PORT 29500
#define DEFAULT_RANKS_PER_NODE 8 /* DeepEP's GPUs per node */

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -EP_EUSAGE;
}

/* 1 with *out, 0 when unset or empty, -1 when not a non-negative integer. */
static int env_int(ep_env_fn env, const char *name, int *out)
{
	const char *v = env(name);
	char *end;
	if (!v || !*v)
		return 0;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || *end || x < 0 || x > INT_MAX)
		return -1;
	*out = (int)x;
	return 1;
}

static int is_torchrun(ep_env_fn env)
{
	return env("TORCHELASTIC_RUN_ID") || env("GROUP_RANK");
}

static int has_master_addr(ep_env_fn env)
{
	return env("MASTER_ADDR") != NULL;
}

/* Where a launcher keeps the node count and this node's rank. */
struct convention {
	const char *nodes_var, *rank_var;
	int (*applies)(ep_env_fn env);  /* NULL: whenever the variable is set */
	int per_local_world;            /* nodes = nodes_var / LOCAL_WORLD_SIZE (torchrun) */
	const char *nodes_from, *rank_from; /* the banner's words */
};

static const struct convention conventions[] = {
	{"NNODES", "NODE_RANK", NULL, 0, "NNODES", "NODE_RANK"},
	{"WORLD_SIZE", "GROUP_RANK", is_torchrun, 1, "torchrun WORLD_SIZE/LOCAL_WORLD_SIZE", "torchrun GROUP_RANK"},
	{"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", NULL, 0, "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"},
	{"PMI_SIZE", "PMI_RANK", NULL, 0, "PMI_SIZE (MPICH)", "PMI_RANK"},
	{"SLURM_JOB_NUM_NODES", "SLURM_NODEID", NULL, 0, "SLURM_JOB_NUM_NODES", "SLURM_NODEID"},
	{"SLURM_NNODES", "SLURM_NODEID", NULL, 0, "SLURM_NNODES", "SLURM_NODEID"},
	{"WORLD_SIZE", "RANK", has_master_addr, 0, "WORLD_SIZE", "RANK"},
};
#define NCONV (int)(sizeof(conventions) / sizeof(conventions[0]))

/* The node count (want_rank 0) or rank (1) from the first convention that has it. */
static const char *from_env(ep_env_fn env, int want_rank, int *out)
{
	for (int i = 0; i < NCONV; i++) {
		const struct convention *c = &conventions[i];
		int v, lws = 1;
		if ((c->applies && !c->applies(env)) || env_int(env, want_rank ? c->rank_var : c->nodes_var, &v) <= 0)
			continue;
		if (!want_rank && c->per_local_world && (env_int(env, "LOCAL_WORLD_SIZE", &lws) <= 0 || lws < 1))
			lws = 1;
		*out = want_rank ? v : v / lws;
		return want_rank ? c->rank_from : c->nodes_from;
	}
	return NULL;
}

static int resolve_nodes(const struct ep_options *o, ep_env_fn env, struct ep_cluster_cfg *c, char *err,
			 size_t len)
{
	c->nodes = o->nodes;
	c->node_rank = o->node_rank;
	const char *nodes_from = o->nodes >= 0 ? "--nodes" : from_env(env, 0, &c->nodes);
	const char *rank_from = o->node_rank >= 0 ? "--node-rank" : from_env(env, 1, &c->node_rank);
	if (o->local_nodes) {
		if (c->nodes < 1)
			return fail(err, len, "--local-nodes needs --nodes N (or NNODES)");
		c->node_rank = 0;
		rank_from = "--local-nodes";
	}
	if (!nodes_from || c->nodes < 1)
		return fail(err, len, "how many nodes? give --nodes N, or set NNODES (or start under torchrun, mpirun or srun)");
	if (c->nodes > EP_MAX_NODES)
		return fail(err, len, "%d nodes (from %s): at most %d are supported", c->nodes, nodes_from, EP_MAX_NODES);
	if (!rank_from || c->node_rank < 0)
		return fail(err, len, "which node is this? give --node-rank I, or set NODE_RANK (or start under torchrun, mpirun or srun)");
	if (c->node_rank >= c->nodes)
		return fail(err, len, "node rank %d (from %s) is not below the node count %d (from %s)", c->node_rank,
			    rank_from, c->nodes, nodes_from);
	int torchrun = strncmp(nodes_from, "torchrun", 8) == 0 && strncmp(rank_from, "torchrun", 8) == 0;
	if (torchrun)
		snprintf(c->convention, sizeof(c->convention), "torchrun (WORLD_SIZE/LOCAL_WORLD_SIZE, GROUP_RANK)");
	else if (strcmp(nodes_from, rank_from) == 0)
		snprintf(c->convention, sizeof(c->convention), "%s", nodes_from);
	else
		snprintf(c->convention, sizeof(c->convention), "%s, %s", nodes_from, rank_from);
	return 0;
}

static int resolve_ranks_per_node(const struct ep_options *o, struct ep_cluster_cfg *c, char *err, size_t len)
{
	int ranks_given = ep_option_given(o, "num-ranks");
	if (o->ranks_per_node > 0) {
		c->ranks_per_node = o->ranks_per_node;
		if (ranks_given && (o->ranks.n != 1 || o->ranks.v[0] != c->nodes * c->ranks_per_node))
			return fail(err, len, "--num-ranks %d disagrees with --nodes %d x --ranks-per-node %d",
				    o->ranks.v[0], c->nodes, c->ranks_per_node);
	} else if (ranks_given) {
		if (o->ranks.n != 1 || o->ranks.v[0] % c->nodes)
			return fail(err, len, "--num-ranks %d is not a multiple of the %d nodes (or give --ranks-per-node)",
				    o->ranks.v[0], c->nodes);
		c->ranks_per_node = o->ranks.v[0] / c->nodes;
	} else {
		c->ranks_per_node = DEFAULT_RANKS_PER_NODE;
	}
	if (c->ranks_per_node < 1 || c->ranks_per_node > EP_MAX_LOCAL)
		return fail(err, len, "%d ranks per node: want 1 to %d", c->ranks_per_node, EP_MAX_LOCAL);
	return 0;
}

static int split_host_port(const char *spec, char *host, size_t hlen, int *port)
{
	const char *colon = strrchr(spec, ':');
	size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
	if (n == 0 || n >= hlen)
		return -1;
	memcpy(host, spec, n);
	host[n] = 0;
	if (!colon)
		return 0;
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end || p < 0 || p > 65535)
		return -1;
	*port = (int)p;
	return 0;
}

static int resolve_master(const struct ep_options *o, ep_env_fn env, struct ep_cluster_cfg *c, char *err,
			  size_t len)
{
	int v, port_env = env_int(env, "MASTER_PORT", &v) > 0 && v <= 65535, torchrun = is_torchrun(env);
	const char *addr = env("MASTER_ADDR"), *list = env("SLURM_JOB_NODELIST");
	c->master_port = port_env ? v : DEFAULT_PORT;
	if (o->master) {
		if (split_host_port(o->master, c->master_host, sizeof(c->master_host), &c->master_port))
			return fail(err, len, "invalid --master '%s': want HOST:PORT", o->master);
		snprintf(c->master_from, sizeof(c->master_from), "--master");
	} else if (o->local_nodes || (c->nodes == 1 && !(addr && *addr) && !list)) {
		snprintf(c->master_host, sizeof(c->master_host), "127.0.0.1");
		c->master_port = 0; /* the launcher picks a free port */
		snprintf(c->master_from, sizeof(c->master_from), o->local_nodes ? "--local-nodes" : "single node");
	} else if (addr && *addr) {
		snprintf(c->master_host, sizeof(c->master_host), "%s", addr);
		if (torchrun && port_env) /* torchrun's agent keeps its own store on MASTER_PORT: take the next one */
			c->master_port++;
		snprintf(c->master_from, sizeof(c->master_from), "MASTER_ADDR%s%s", port_env ? ", MASTER_PORT" : "",
			 torchrun && port_env ? " + 1 (torchrun's store has MASTER_PORT)" : "");
	} else if (list && ep_slurm_first_host(list, c->master_host, sizeof(c->master_host)) == 0) {
		snprintf(c->master_from, sizeof(c->master_from), "first host of SLURM_JOB_NODELIST");
	} else if (env("PMIX_RANK") || env("PMIX_NAMESPACE")) { /* mpirun, srun --mpi=pmix */
		c->master_via_pmix = 1;
		snprintf(c->master_from, sizeof(c->master_from), "PMIx (node 0 published it)");
	} else {
		return fail(err, len, "no master address: give --master HOST:PORT, set MASTER_ADDR (and MASTER_PORT), or launch under a PMIx launcher (mpirun, srun --mpi=pmix)");
	}
	return 0;
}

int ep_cluster_resolve(const struct ep_options *o, ep_env_fn env, struct ep_cluster_cfg *c,
		       char *err, size_t len)
{
	memset(c, 0, sizeof(*c));
	int rc = resolve_nodes(o, env, c, err, len);
	if (!rc)
		rc = resolve_ranks_per_node(o, c, err, len);
	if (!rc)
		rc = resolve_master(o, env, c, err, len);
	return rc;
}

int ep_slurm_first_host(const char *list, char *out, size_t len)
{
	/* "pre[a-b,c]post,..." -> pre + a (zero padding kept) ; "host1,host2" -> host1 */
	size_t i = 0, n = 0;
	while (list[i] && list[i] != ',' && list[i] != '[') {
		if (n + 1 < len)
			out[n++] = list[i];
		i++;
	}
	if (list[i] == '[') {
		i++;
		while (list[i] >= '0' && list[i] <= '9') {
			if (n + 1 < len)
				out[n++] = list[i];
			i++;
		}
		while (list[i] && list[i] != ']')
			i++;
		if (list[i] == ']')
			i++;
		while (list[i] && list[i] != ',') { /* suffix after the bracket */
			if (n + 1 < len)
				out[n++] = list[i];
			i++;
		}
	}
	if (len)
		out[n < len ? n : len - 1] = 0;
	return n > 0 ? 0 : -1;
}
