/* fuzz_manifest.c - libFuzzer target: golden manifests (cli/oracle.c) with any bytes.
 * The bytes are manifest.json in a private folder. Whatever loads must have
 * a shape that holds (ranks divide experts and nodes; with ep_semantics
 * ascend, the routed ranks divide experts and the shared experts fit their
 * ranks; a MoE layer's dp x tp and moe_tp x moe_ep are the world, moe_ep
 * divides the experts, Ascend's layer has no MoE-TP) and tensors of ranks
 * inside it; whatever is refused says why in one line. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/oracle.h"

static char dir[64], path[128];

static void remove_dir(void)
{
	unlink(path);
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct ep_oracle_manifest m;
	char err[512] = "";
	if (!ready) {
		snprintf(dir, sizeof(dir), "/tmp/ep_fuzz_manifest.XXXXXX");
		if (!mkdtemp(dir))
			return 0;
		snprintf(path, sizeof(path), "%s/manifest.json", dir);
		atexit(remove_dir);
		ready = 1;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return 0;
	int ok = size == 0 || write(fd, data, size) == (ssize_t)size;
	close(fd);
	if (!ok)
		return 0;
	if (ep_oracle_read_manifest(dir, &m, err, sizeof(err))) {
		if (!err[0] || strchr(err, '\n'))
			abort();
		return 0;
	}
	const struct ep_oracle_ascend *a = &m.ascend;
	int moe = m.shape.num_ranks - a->shared_expert_ranks; /* Ascend: the ranks of routed experts */
	if (m.shape.num_ranks < 1 || (!a->on && m.shape.num_experts % m.shape.num_ranks) ||
	    (m.ranks_per_node && m.shape.num_ranks % m.ranks_per_node))
		abort();
	if (a->on && (moe < 1 || m.shape.num_experts % moe || (a->shared_experts > 0) != (a->shared_expert_ranks > 0) ||
		      (a->shared_experts && a->shared_expert_ranks % a->shared_experts) || m.ranks_per_node ||
		      m.shape.dtype == EP_DTYPE_FP8))
		abort();
	const struct ep_oracle_layer *l = &m.layer; /* a MoE layer's groups tile the world (parallel-semantics.md section 1) */
	if (l->on && (l->dp * l->tp != m.shape.num_ranks || l->moe_tp * l->moe_ep != m.shape.num_ranks || l->tokens_per_dp < 1 ||
		      (!a->on && (m.shape.num_experts % l->moe_ep || m.shape.dtype != EP_DTYPE_BF16 || m.shape.num_bias)) ||
		      (a->on && (l->moe_tp != 1 || l->allgather)) || m.ranks_per_node))
		abort();
	for (int i = 0; i < m.ntensors; i++)
		if (m.tensors[i].rank < 0 || m.tensors[i].rank >= m.shape.num_ranks || m.tensors[i].ndim > EP_NPY_MAX_NDIM)
			abort();
	ep_oracle_manifest_free(&m);
	return 0;
}
