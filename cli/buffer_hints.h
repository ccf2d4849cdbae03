/* buffer_hints.h - how big a buffer DeepEP and Ascend's HCCL need for a shape, by their own formulas.
 *
 * Each function is one formula of its library's source or documentation,
 * in 64-bit unsigned arithmetic checked for overflow (a shape whose size
 * does not fit returns -EP_EUSAGE, never a wrapped number):
 *
 * - DeepEP normal mode, per rank: Config::get_nvl_buffer_size_hint and
 *   Config::get_rdma_buffer_size_hint (deepseek-ai/DeepEP csrc/legacy/config.hpp,
 *   commit dd758ca), under the default Config DeepEP picks for the world size
 *   (deep_ep/buffers/legacy.py Buffer.get_dispatch_config / get_combine_config,
 *   Buffer.num_sms = 20), as SGLang sizes its buffer: the larger of the
 *   dispatch and combine configs' hints, hidden_bytes = hidden x 2.
 * - DeepEP low-latency, per rank: get_low_latency_rdma_size_hint (same
 *   file: LowLatencyLayout's total, rounded up past the next 128 bytes).
 * - Ascend HCCL_BUFFSIZE, in MB, for npu_moe_distribute_dispatch/combine
 *   (aclnnMoeDistributeDispatch / Combine, "约束说明 - HCCL_BUFFSIZE";
 *   CANN ops-transformer moe_distribute_dispatch and torch_npu's
 *   npu_moe_distribute_dispatch page; "/" there is integer division):
 *     A2:          >= 2 * (BS * epWorldSize * min(localExpertNum, K) * H * sizeof(uint16) + 2MB)
 *     A2 layered   (HCCL_INTRA_PCIE_ENABLE=1, HCCL_INTRA_ROCE_ENABLE=0):
 *                  >= moeExpertNum * BS * (H * sizeof(dtypeX) + 4 * ((K + 7) / 8 * 8) * sizeof(uint32)) + 4MB + 100MB
 *     A3:          >= 2 and 1024^2 * (HCCL_BUFFSIZE - 2) / 2 >= BS * 2 * (H + 128) * (epWorldSize * localExpertNum + K + 1)
 *   localExpertNum = moeExpertNum / (epWorldSize - sharedExpertRankNum).
 */
#ifndef EP_BUFFER_HINTS_H
#define EP_BUFFER_HINTS_H

#include <stdint.h>

/* DeepEP's Config (the chunk sizes of its normal kernels). */
struct ep_deepep_config {
	int num_sms;                                 /* SMs of the normal kernels; channels = num_sms / 2 */
	int nvl_send, nvl_recv;                      /* num_max_nvl_chunked_{send,recv}_tokens */
	int rdma_send, rdma_recv;                    /* num_max_rdma_chunked_{send,recv}_tokens (recv
						      * rounded up to a multiple of send, as Config's constructor does) */
};

#define EP_DEEPEP_NUM_SMS 20      /* Buffer.num_sms's default */
#define EP_DEEPEP_NVL_PEERS 8     /* NUM_MAX_NVL_PEERS */

/* DeepEP's default dispatch (combine 0) or combine (1) Config for R ranks.
 * 0, or -1 when DeepEP has none for R (it asserts). */
int ep_deepep_default_config(int R, int combine, struct ep_deepep_config *c);

/* get_nvl_buffer_size_hint(hidden_bytes, R) of config c: bytes per rank.
 * 0; -1 when DeepEP's assertions refuse R (R >= 8 and not a multiple of 8);
 * -EP_EUSAGE on overflow. */
int ep_deepep_nvl_hint(const struct ep_deepep_config *c, uint64_t hidden_bytes, int R, uint64_t *out);

/* get_rdma_buffer_size_hint(hidden_bytes, R): 0 bytes for R <= 8. Same returns. */
int ep_deepep_rdma_hint(const struct ep_deepep_config *c, uint64_t hidden_bytes, int R, uint64_t *out);

/* The larger hint of the dispatch and combine defaults for R ranks and
 * hidden H (hidden_bytes = 2H), NVL and RDMA. 0, -1 (no default config
 * for R, or refused), -EP_EUSAGE on overflow. */
int ep_deepep_normal_bytes(int R, int H, uint64_t *nvl, uint64_t *rdma);

/* get_low_latency_rdma_size_hint(N, H, R, E): bytes per rank. 0 or -EP_EUSAGE. */
int ep_deepep_ll_rdma_hint(int N, int H, int R, int E, uint64_t *out);

/* HCCL_BUFFSIZE minimum (MB, rounded up) for Ascend's dispatch/combine:
 * BS tokens per rank, W = epWorldSize, L = localExpertNum, E experts, K,
 * H; x_bytes = sizeof(dtypeX). 0 or -EP_EUSAGE on overflow. */
int ep_hccl_a2_min_mb(uint64_t BS, uint64_t W, uint64_t L, uint64_t K, uint64_t H, uint64_t *mb);
int ep_hccl_a2_layered_min_mb(uint64_t E, uint64_t BS, uint64_t H, uint64_t x_bytes, uint64_t K, uint64_t *mb);
int ep_hccl_a3_min_mb(uint64_t BS, uint64_t W, uint64_t L, uint64_t K, uint64_t H, uint64_t *mb);

#endif
