"""fake_ep_library.py - a stand-in "library" for testing scripts/adapters/deepep_v1.py without a GPU.

It answers with epbench's own expected outputs, read from the golden
directory, so that the adapter's reading and writing of the layout can be
tested; EP_FAKE_PERMUTE=RANK swaps two received rows of that rank's recv_x
(same bytes, wrong place), EP_FAKE_DROP=NAME leaves one output out. verify
must catch the first and list the second as not checked.
"""
import os

import numpy as np

OUTPUTS = ("num_tokens_per_rank", "num_tokens_per_rdma_rank", "num_tokens_per_expert", "is_token_in_rank",
           "recv_x", "recv_x_scales", "recv_topk_idx", "recv_topk_weights", "recv_src_idx",
           "rank_prefix_matrix", "num_recv_tokens_per_expert", "combined_x", "combined_topk_weights")


class Fake:
    def __init__(self, golden, rank):
        self.golden, self.rank = golden, rank

    def run(self, inputs):
        assert "x" in inputs and "topk_idx" in inputs and "combine_x" in inputs
        out = {}
        for name in OUTPUTS:
            p = os.path.join(self.golden, "rank%d" % self.rank, name + ".npy")
            if os.path.exists(p) and name != os.environ.get("EP_FAKE_DROP"):
                out[name] = np.load(p)
        if os.environ.get("EP_FAKE_PERMUTE") == str(self.rank) and len(out["recv_x"]) >= 2:
            out["recv_x"][[0, 1]] = out["recv_x"][[1, 0]]
        return out


def make_library(manifest, rank):
    return Fake(os.environ["EP_FAKE_GOLDEN"], rank)
