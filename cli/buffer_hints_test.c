/* buffer_hints_test.c - each buffer formula against a worked example of its source.
 *
 * The expected numbers are worked out below term by term from the source's
 * own expression (not from our code), for the shapes those sources use:
 * DeepEP's tests (hidden 7168, 8 and 16 ranks, test_low_latency.py's
 * defaults N = 128, E = 288) and the A2 guide's single-node figures.
 */
#include "cli/buffer_hints.h"
#include "collectives/error.h"
#include "tests/harness.h"

/* get_nvl_buffer_size_hint(7168 * 2, 8) under Config(20, 6, 256, 6, 128):
 * channels 10, nvl ranks 8, rdma ranks 1;
 *   10*8*(2*1+3)*4                 =       1,600
 *   10*8*256*14336 (hidden bytes)  = 293,601,280
 *   10*8*256*8 (SourceMeta)        =     163,840
 *   10*8*256*128*8 (topk idx)      =  20,971,520
 *   10*8*256*128*4 (topk weights)  =  10,485,760
 *   10*8*256*128*4 (scales)        =  10,485,760
 *   sum 335,709,760 -> rounded up to 128: 335,709,824 */
EP_TEST(nvl_hint_8_ranks)
{
	struct ep_deepep_config c;
	uint64_t v;
	EP_ASSERT_INT_EQ(ep_deepep_default_config(8, 0, &c), 0);
	EP_ASSERT_INT_EQ(c.nvl_recv, 256);
	EP_ASSERT_INT_EQ(ep_deepep_nvl_hint(&c, 7168 * 2, 8, &v), 0);
	EP_ASSERT_UINT_EQ(v, 335709824ull);
	uint64_t nvl, rdma; /* the combine config (20, 4, 256, 6, 128) gives the same: the max is it */
	EP_ASSERT_INT_EQ(ep_deepep_normal_bytes(8, 7168, &nvl, &rdma), 0);
	EP_ASSERT_UINT_EQ(nvl, 335709824ull);
	EP_ASSERT_UINT_EQ(rdma, 0); /* legacy mode: num_ranks <= 8 */
}

/* 16 ranks, dispatch Config(20, 36, 288, 20, 128): rdma recv becomes
 * align_up(128, 20) = 140 (Config's constructor).
 * NVL: 10*8*(2*2+3)*4 = 2,240; 10*8*288 = 23,040 slots x (14336 + 8 + 1024 + 512 + 512) = 377,671,680;
 *      sum 377,673,920 -> 377,673,984.
 * RDMA: 10*2*(8*2+2)*2*4 = 2,880; 10*2*140 = 2,800 slots x (14336 + 8 + 1024 + 512 + 512 + 16) x 2
 *      = 91,884,800; sum 91,887,680 -> 91,887,744 (the combine config's 132 slots give less). */
EP_TEST(normal_hints_16_ranks)
{
	struct ep_deepep_config c;
	uint64_t nvl, rdma;
	EP_ASSERT_INT_EQ(ep_deepep_default_config(16, 0, &c), 0);
	EP_ASSERT_INT_EQ(c.rdma_recv, 140);
	EP_ASSERT_INT_EQ(ep_deepep_default_config(16, 1, &c), 0);
	EP_ASSERT_INT_EQ(c.rdma_recv, 132);
	EP_ASSERT_INT_EQ(ep_deepep_normal_bytes(16, 7168, &nvl, &rdma), 0);
	EP_ASSERT_UINT_EQ(nvl, 377673984ull);
	EP_ASSERT_UINT_EQ(rdma, 91887744ull);
}

/* DeepEP asserts num_ranks < 8 or num_ranks % 8 == 0, and has no default config for 12 ranks. */
EP_TEST(normal_hints_refuse_what_deepep_asserts)
{
	struct ep_deepep_config c;
	uint64_t v, w;
	EP_ASSERT_INT_EQ(ep_deepep_default_config(12, 0, &c), -1);
	EP_ASSERT_INT_EQ(ep_deepep_default_config(8, 0, &c), 0);
	EP_ASSERT_INT_EQ(ep_deepep_nvl_hint(&c, 14336, 12, &v), -1);
	EP_ASSERT_INT_EQ(ep_deepep_normal_bytes(12, 7168, &v, &w), -1);
}

/* get_low_latency_rdma_size_hint(128, 7168, R, 288) (test_low_latency.py's defaults):
 * scales 56; dispatch msg 16 + max(14336, 7168 + 224) = 14,352; combine msg 56*4 + 14336 = 14,560;
 * send max(128*14352, 288*128*14560) = 536,739,840; recv max(288*128*14352, 288*128*14560) = 536,739,840;
 * signalling align128(288*4) = 1,152; total 2*(536,739,840 + 536,739,840 + 1,152) = 2,146,961,664;
 * ((total + 128) / 128) * 128 = 2,146,961,792. */
EP_TEST(ll_hint_deepep_test_defaults)
{
	uint64_t v;
	EP_ASSERT_INT_EQ(ep_deepep_ll_rdma_hint(128, 7168, 16, 288, &v), 0);
	EP_ASSERT_UINT_EQ(v, 2146961792ull);
}

EP_TEST(ll_hint_overflow_refused)
{
	uint64_t v;
	EP_ASSERT_INT_EQ(ep_deepep_ll_rdma_hint(1 << 30, 1 << 30, 8, 1 << 30, &v), -EP_EUSAGE);
}

/* A2, the guide's single node in low-latency mode: BS 512, epWorldSize 8,
 * 256 experts (localExpertNum 32), K 8, H 7168:
 * 2 * (512*8*min(32, 8)*7168*2 + 2 MB) = 2 * (469,762,048 + 2,097,152) = 943,718,400 B = 900 MB
 * (the guide sets HCCL_BUFFSIZE=1024). */
EP_TEST(hccl_a2_single_node)
{
	uint64_t mb;
	EP_ASSERT_INT_EQ(ep_hccl_a2_min_mb(512, 8, 32, 8, 7168, &mb), 0);
	EP_ASSERT_UINT_EQ(mb, 900);
	EP_ASSERT_INT_EQ(ep_hccl_a2_min_mb(1, 8, 32, 8, 7168, &mb), 0); /* 2*(917,504 + 2 MB) = 6,029,312 B -> 5.75 -> 6 MB */
	EP_ASSERT_UINT_EQ(mb, 6);
}

/* A2 layered (HCCL_INTRA_PCIE_ENABLE=1): 256 * 512 * (7168*2 + 4*8*4) + 4 MB + 100 MB
 * = 1,895,825,408 + 109,051,904 = 2,004,877,312 B = 1912 MB exactly. */
EP_TEST(hccl_a2_layered)
{
	uint64_t mb;
	EP_ASSERT_INT_EQ(ep_hccl_a2_layered_min_mb(256, 512, 7168, 2, 8, &mb), 0);
	EP_ASSERT_UINT_EQ(mb, 1912);
}

/* A3: BS 512, epWorldSize 16, localExpertNum 16, K 8, H 7168:
 * rhs = 512*2*(7168+128)*(16*16 + 8 + 1) = 1,979,842,560; 2^20*(X-2)/2 >= rhs <=> X - 2 >= 3776.25 -> X = 3779. */
EP_TEST(hccl_a3)
{
	uint64_t mb;
	EP_ASSERT_INT_EQ(ep_hccl_a3_min_mb(512, 16, 16, 8, 7168, &mb), 0);
	EP_ASSERT_UINT_EQ(mb, 3779);
	EP_ASSERT_INT_EQ(ep_hccl_a3_min_mb(~0ull >> 1, 16, 16, 8, 7168, &mb), -EP_EUSAGE);
}

EP_TEST_MAIN()
