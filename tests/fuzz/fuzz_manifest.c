/* fuzz_manifest.c - libFuzzer target: golden manifests (cli/oracle.c) with any bytes.
 * The bytes are manifest.json in a private folder. Whatever loads must have
 * a shape that holds (the routed ranks - the world, or a MoE layer's
 * MoE-EP group, less Ascend's shared-expert ranks - divide the experts,
 * nodes divide the world; a MoE layer's dp x tp and moe_tp x moe_ep are the
 * world, its groups fit the nodes, allgather is bf16 without bias, Ascend's
 * MoE-TP stage is on one host) and tensors of ranks inside it; whatever is
 * refused says why in one line. */
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
	const struct ep_oracle_layer *l = &m.layer;
	int P = m.ranks_per_node, R = m.shape.num_ranks, E = m.shape.num_experts;
	/* the ranks that hold routed experts: the world, a layer's MoE-EP group, less Ascend's shared-expert ranks */
	int moe = (l->on ? l->moe_ep : R) - (a->on && (!l->on || l->moe_tp == 1) ? a->shared_expert_ranks : 0);
	if (R < 1 || moe < 1 || E % moe || (P && R % P))
		abort();
	if (a->on && ((a->shared_experts > 0) != (a->shared_expert_ranks > 0) ||
		      (a->shared_experts && a->shared_expert_ranks % a->shared_experts) || m.shape.dtype == EP_DTYPE_FP8))
		abort();
	/* a MoE layer's groups tile the world (parallel-semantics.md section 1); across nodes tp divides a node
	 * (or is the world) and, in a2a mode, so does moe_tp; allgather moves bf16 rows without bias; Ascend's
	 * layer is a2a, its MoE-TP stage on one host without shared experts or comm_quant */
	if (l->on && (l->dp * l->tp != R || l->moe_tp * l->moe_ep != R || l->tokens_per_dp < 1 ||
		      (P && ((P % l->tp && l->tp != R) || (!l->allgather && P % l->moe_tp))) ||
		      (!a->on && l->allgather && (m.shape.dtype != EP_DTYPE_BF16 || m.shape.num_bias)) ||
		      (a->on && (l->allgather || (l->moe_tp > 1 && (P || a->shared_experts || a->comm_quant))))))
		abort();
	for (int i = 0; i < m.ntensors; i++)
		if (m.tensors[i].rank < 0 || m.tensors[i].rank >= m.shape.num_ranks || m.tensors[i].ndim > EP_NPY_MAX_NDIM)
			abort();
	ep_oracle_manifest_free(&m);
	return 0;
}
