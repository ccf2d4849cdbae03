#!/usr/bin/env python3
"""deepep_v1.py - run another library's dispatch/combine on an `epbench golden` directory.

    torchrun --nproc-per-node 8 scripts/adapters/deepep_v1.py golden/     # DeepEP V1 on 8 GPUs
    python3 scripts/adapters/deepep_v1.py golden/ --library tests/fake_ep_library.py --all-ranks
    ./epbench verify intranode golden/

For each rank it reads the inputs epbench wrote (x and its FP8 scales,
topk_idx, topk_weights, the biases), calls the library's dispatch with
exactly those, hands its combine the expert outputs epbench wrote
(combine_x, combine_topk_weights: epbench's expert stand-in applied to the
expected dispatch outputs; normal mode's receive order is defined, so they
line up with the library's rows when its dispatch is right), calls combine
and writes the outputs back under DeepEP's names (recv_x, recv_x_scales,
recv_topk_idx, recv_topk_weights, recv_src_idx, rank_prefix_matrix,
num_recv_tokens_per_expert, the layout, combined_x, combined_topk_weights),
replacing epbench's expected ones. `epbench verify` then recomputes every
expectation from the inputs and compares byte for byte.

The DeepEP call itself (class DeepEPV1) has NOT been run by epbench's
authors: these machines have no GPU. What is tested here is everything
around it: reading and writing the layout with numpy, and a fake library
(tests/fake_ep_library.py) whose wrong row `verify` must catch.

A library is a Python file defining `make_library(manifest, rank)` that
returns an object with `run(inputs) -> outputs` (dicts of numpy arrays
named as in the directory). Normal mode (intranode, internode) only.
"""
import argparse
import importlib.util
import json
import os
import sys

import numpy as np

INPUTS = ("x", "x_scales", "topk_idx", "topk_weights", "bias_0", "bias_1")
EXPERT = ("combine_x", "combine_topk_weights")


def load_rank(golden, rank):
    """The rank's inputs and epbench's expert outputs, as numpy arrays."""
    d = os.path.join(golden, "rank%d" % rank)
    out = {}
    for name in INPUTS + EXPERT:
        p = os.path.join(d, name + ".npy")
        if os.path.exists(p):
            out[name] = np.load(p)
    return out


def write_rank(golden, rank, outputs):
    """Writes each output array as DIR/rank<N>/<name>.npy (replacing epbench's expected one)."""
    d = os.path.join(golden, "rank%d" % rank)
    for name, a in outputs.items():
        if name in INPUTS or name in EXPERT:
            raise ValueError("a library may not overwrite input %s" % name)
        tmp = os.path.join(d, name + ".npy.tmp")
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(a))
        os.replace(tmp, os.path.join(d, name + ".npy"))


class DeepEPV1:
    """DeepEP V1's Buffer on this process's GPU (launched by torchrun, one process per rank).
    Not run by epbench's authors: no GPU here."""

    def __init__(self, manifest, rank):
        import torch
        import torch.distributed as dist
        import deep_ep
        self.torch, self.m, self.rank = torch, manifest, rank
        if not dist.is_initialized():
            dist.init_process_group("nccl")
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
        self.group = dist.new_group(list(range(manifest["shape"]["num_ranks"])))
        self.buffer = deep_ep.Buffer(self.group, int(1e9), 0)

    def _t(self, a, dtype=None):
        t = self.torch.from_numpy(np.ascontiguousarray(a)).cuda()
        return t.view(dtype) if dtype is not None else t

    def run(self, inp):
        torch, s = self.torch, self.m["shape"]
        fp8 = s["dtype"] == "fp8"
        x = self._t(inp["x"], torch.float8_e4m3fn if fp8 else torch.bfloat16)
        if fp8:
            x = (x, self._t(inp["x_scales"]))
        idx, w = self._t(inp["topk_idx"]), self._t(inp["topk_weights"])
        ntpr, ntprdma, ntpe, itir, _ = self.buffer.get_dispatch_layout(idx, s["num_experts"])
        recv_x, recv_idx, recv_w, nrtpe, handle, _ = self.buffer.dispatch(
            x, topk_idx=idx, topk_weights=w, num_tokens_per_rank=ntpr, num_tokens_per_rdma_rank=ntprdma,
            is_token_in_rank=itir, num_tokens_per_expert=ntpe, expert_alignment=s["expert_alignment"])
        bias = tuple(self._t(inp[b], torch.bfloat16) for b in ("bias_0", "bias_1") if b in inp)
        combined_x, combined_w, _ = self.buffer.combine(
            self._t(inp["combine_x"], torch.bfloat16), handle,
            topk_weights=self._t(inp["combine_topk_weights"]) if "combine_topk_weights" in inp else None,
            bias=bias if bias else None)
        torch.cuda.synchronize()
        cpu = lambda t: t.cpu().numpy()
        bits = lambda t: t.view(torch.uint16 if t.dtype == torch.bfloat16 else torch.uint8).cpu().numpy()
        rx = recv_x[0] if fp8 else recv_x
        out = {"num_tokens_per_rank": cpu(ntpr), "num_tokens_per_expert": cpu(ntpe),
               "is_token_in_rank": cpu(itir), "recv_x": bits(rx), "recv_topk_idx": cpu(recv_idx),
               "recv_topk_weights": cpu(recv_w), "recv_src_idx": cpu(handle[3]),
               "rank_prefix_matrix": cpu(handle[0]),
               "num_recv_tokens_per_expert": np.array(nrtpe, dtype=np.int32),
               "combined_x": bits(combined_x)}
        if fp8:
            out["recv_x_scales"] = cpu(recv_x[1])
        if ntprdma is not None:
            out["num_tokens_per_rdma_rank"] = cpu(ntprdma)
        if combined_w is not None:
            out["combined_topk_weights"] = cpu(combined_w)
        return out


def library_from(path, manifest, rank):
    if path is None:
        return DeepEPV1(manifest, rank)
    spec = importlib.util.spec_from_file_location("ep_library", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make_library(manifest, rank)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("golden", help="a directory written by `epbench golden`")
    ap.add_argument("--library", help="a Python file with make_library(manifest, rank) (default: DeepEP V1)")
    ap.add_argument("--all-ranks", action="store_true", help="run every rank in this process (fake libraries)")
    a = ap.parse_args(argv)
    with open(os.path.join(a.golden, "manifest.json")) as f:
        manifest = json.load(f)
    if manifest.get("schema") != "epbench-golden/1" or manifest["subcommand"] == "low-latency":
        sys.exit("deepep_v1.py: want an epbench-golden/1 directory of normal mode (intranode, internode)")
    R = manifest["shape"]["num_ranks"]
    ranks = range(R) if a.all_ranks else [int(os.environ.get("RANK", "0"))]
    for r in ranks:
        write_rank(a.golden, r, library_from(a.library, manifest, r).run(load_rank(a.golden, r)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
