/* env_test.c - resolution of nodes, rank and master from options and launcher variables; config diffs. */
#include "cli/cluster/config.h"
#include "cli/cluster/env.h"
#include "cli/command.h"

#include "collectives/error.h"
#include "tests/harness.h"

/* A fake environment: NULL-terminated name/value pairs. */
static const char *const *fake;
static const char *fake_env(const char *name)
{
	for (int i = 0; fake && fake[i]; i += 2)
		if (strcmp(fake[i], name) == 0)
			return fake[i + 1];
	return NULL;
}

static int resolve(const char *const *env, int nodes, int rank, const char *master, struct ep_cluster_cfg *c,
		   char *err)
{
	struct ep_options o;
	char e[256];
	char *argv[] = {"internode", NULL};
	EP_ASSERT_INT_EQ(ep_options_parse(&ep_cmd_internode.options, 1, argv, &o, stdout, e, sizeof(e)), 0);
	o.nodes = nodes;
	o.node_rank = rank;
	o.master = master;
	fake = env;
	int rc = ep_cluster_resolve(&o, fake_env, c, err, 256);
	ep_options_free(&o);
	return rc;
}

EP_TEST(options_win_over_environment)
{
	static const char *const env[] = {"NNODES", "4", "NODE_RANK", "3", "MASTER_ADDR", "h", NULL};
	struct ep_cluster_cfg c;
	char err[256];
	EP_ASSERT_INT_EQ(resolve(env, 2, 1, "10.0.0.1:29501", &c, err), 0);
	EP_ASSERT_INT_EQ(c.nodes, 2);
	EP_ASSERT_INT_EQ(c.node_rank, 1);
	EP_ASSERT_STR_EQ(c.master_host, "10.0.0.1");
	EP_ASSERT_INT_EQ(c.master_port, 29501);
	EP_ASSERT_INT_EQ(c.ranks_per_node, 8);
	EP_ASSERT_STR_EQ(c.convention, "--nodes, --node-rank");
}

EP_TEST(master_env_convention)
{
	static const char *const env[] = {"NNODES", "3", "NODE_RANK", "2", "MASTER_ADDR", "10.1.1.1",
					  "MASTER_PORT", "1234", NULL};
	struct ep_cluster_cfg c;
	char err[256];
	EP_ASSERT_INT_EQ(resolve(env, -1, -1, NULL, &c, err), 0);
	EP_ASSERT_INT_EQ(c.nodes, 3);
	EP_ASSERT_INT_EQ(c.node_rank, 2);
	EP_ASSERT_STR_EQ(c.master_host, "10.1.1.1");
	EP_ASSERT_INT_EQ(c.master_port, 1234);
	EP_ASSERT_STR_EQ(c.convention, "NNODES, NODE_RANK");
}

EP_TEST(torchrun_one_process_per_node)
{
	static const char *const env[] = {"TORCHELASTIC_RUN_ID", "x", "WORLD_SIZE", "4", "LOCAL_WORLD_SIZE", "1",
					  "GROUP_RANK", "3", "RANK", "3", "MASTER_ADDR", "m", "MASTER_PORT", "29500", NULL};
	struct ep_cluster_cfg c;
	char err[256];
	EP_ASSERT_INT_EQ(resolve(env, -1, -1, NULL, &c, err), 0);
	EP_ASSERT_INT_EQ(c.nodes, 4);
	EP_ASSERT_INT_EQ(c.node_rank, 3);
	EP_ASSERT_INT_EQ(c.master_port, 29501); /* torchrun's own store keeps MASTER_PORT */
	EP_ASSERT(strstr(c.convention, "torchrun") != NULL);
}

EP_TEST(mpirun_and_slurm)
{
	static const char *const ompi[] = {"OMPI_COMM_WORLD_SIZE", "2", "OMPI_COMM_WORLD_RANK", "1",
					   "MASTER_ADDR", "a", NULL};
	static const char *const slurm[] = {"SLURM_JOB_NUM_NODES", "4", "SLURM_NODEID", "0",
					    "SLURM_JOB_NODELIST", "gpu[07-10],cpu1", NULL};
	struct ep_cluster_cfg c;
	char err[256];
	EP_ASSERT_INT_EQ(resolve(ompi, -1, -1, NULL, &c, err), 0);
	EP_ASSERT_INT_EQ(c.nodes, 2);
	EP_ASSERT_INT_EQ(c.node_rank, 1);
	EP_ASSERT_STR_EQ(c.convention, "OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_RANK");
	EP_ASSERT_INT_EQ(resolve(slurm, -1, -1, NULL, &c, err), 0);
	EP_ASSERT_INT_EQ(c.nodes, 4);
	EP_ASSERT_INT_EQ(c.node_rank, 0);
	EP_ASSERT_STR_EQ(c.master_host, "gpu07");
	EP_ASSERT(strstr(c.master_from, "SLURM_JOB_NODELIST") != NULL);
}

EP_TEST(mpirun_without_master_addr_reads_it_through_pmix)
{
	static const char *const env[] = {"OMPI_COMM_WORLD_SIZE", "2", "OMPI_COMM_WORLD_RANK", "1", "PMIX_RANK", "1", NULL};
	static const char *const bare[] = {"OMPI_COMM_WORLD_SIZE", "2", "OMPI_COMM_WORLD_RANK", "1", NULL};
	struct ep_cluster_cfg c;
	char err[256];
	EP_ASSERT_INT_EQ(resolve(env, -1, -1, NULL, &c, err), 0);
	EP_ASSERT_INT_EQ(c.nodes, 2);
	EP_ASSERT_INT_EQ(c.node_rank, 1);
	EP_ASSERT_INT_EQ(c.master_via_pmix, 1);
	EP_ASSERT_STR_EQ(c.master_from, "PMIx (node 0 published it)");
	EP_ASSERT_INT_EQ(resolve(bare, -1, -1, NULL, &c, err), -EP_EUSAGE); /* no PMIx, no MASTER_ADDR */
	EP_ASSERT(strstr(err, "PMIx launcher") != NULL);
}

EP_TEST(mpich_hydra_variables)
{
	static const char *const env[] = {"PMI_SIZE", "3", "PMI_RANK", "2", "MASTER_ADDR", "10.2.0.1", NULL};
	struct ep_cluster_cfg c;
	char err[256];
	EP_ASSERT_INT_EQ(resolve(env, -1, -1, NULL, &c, err), 0);
	EP_ASSERT_INT_EQ(c.nodes, 3);
	EP_ASSERT_INT_EQ(c.node_rank, 2);
	EP_ASSERT_STR_EQ(c.master_host, "10.2.0.1");
}

EP_TEST(missing_or_bad_values_are_named)
{
	static const char *const none[] = {NULL};
	static const char *const bad_rank[] = {"NNODES", "2", "NODE_RANK", "2", "MASTER_ADDR", "m", NULL};
	static const char *const no_master[] = {"NNODES", "2", "NODE_RANK", "1", NULL};
	struct ep_cluster_cfg c;
	char err[256];
	EP_ASSERT_INT_EQ(resolve(none, -1, -1, NULL, &c, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "--nodes") != NULL);
	EP_ASSERT_INT_EQ(resolve(bad_rank, -1, -1, NULL, &c, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "node rank 2 (from NODE_RANK)") != NULL);
	EP_ASSERT_INT_EQ(resolve(no_master, -1, -1, NULL, &c, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "MASTER_ADDR") != NULL);
	EP_ASSERT_INT_EQ(resolve(none, 2, 0, "host:notaport", &c, err), -EP_EUSAGE);
}

EP_TEST(slurm_node_lists)
{
	char h[64];
	EP_ASSERT_INT_EQ(ep_slurm_first_host("node[001-004]", h, sizeof(h)), 0);
	EP_ASSERT_STR_EQ(h, "node001");
	EP_ASSERT_INT_EQ(ep_slurm_first_host("a1,b2", h, sizeof(h)), 0);
	EP_ASSERT_STR_EQ(h, "a1");
	EP_ASSERT_INT_EQ(ep_slurm_first_host("rack[3,5]-gpu", h, sizeof(h)), 0);
	EP_ASSERT_STR_EQ(h, "rack3-gpu");
}

EP_TEST(config_diff_names_the_field)
{
	char out[256];
	EP_ASSERT_INT_EQ(ep_config_diff("a=1\nhidden=512\n", "a=1\nhidden=512\n", 1, out, sizeof(out)), 0);
	EP_ASSERT_INT_EQ(ep_config_diff("a=1\nhidden=512\n", "a=1\nhidden=1024\n", 2, out, sizeof(out)), 1);
	EP_ASSERT_STR_EQ(out, "--hidden differs: node 0 has 512, node 2 has 1024");
	EP_ASSERT_INT_EQ(ep_config_diff("transport (chosen)=verbs\n", "transport (chosen)=tcp\n", 1, out, sizeof(out)), 1);
	EP_ASSERT_STR_EQ(out, "transport (chosen) differs: node 0 has verbs, node 1 has tcp");
	EP_ASSERT_INT_EQ(ep_config_diff("routing (steps)=a\n", "routing (steps)=b\n", 1, out, sizeof(out)), 1);
	EP_ASSERT_STR_EQ(out, "routing (steps) differs: node 0 has a, node 1 has b");
	EP_ASSERT(ep_config_hash("a=1\n") != ep_config_hash("a=2\n"));
}

EP_TEST_MAIN()
