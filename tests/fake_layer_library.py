"""fake_layer_library.py - a stand-in "library" implementing a MoE layer's MoE-TP and world stages, for epbench verify.

    python3 fake_layer_library.py GOLDEN OUT [MODE]

Reads a layer's golden directory (epbench golden intranode --parallel ...),
takes the EP dispatch and each member's partial outputs from it as a
library's own EP collective and experts would give them, and computes the
layer's communication stages itself, with numpy, into OUT (a copy of
GOLDEN with the library's outputs written over epbench's):
  a2a:       moe_tp_gathered_* (block i from MoE-TP peer (g + i) % moe_tp)
             and moe_tp_reduced_x (float32 sum of the members' partials in
             rotation order from the rank itself, one bf16 rounding);
  allgather: world_reduced_x (every rank's world_partial rows of the slice,
             float32 sum over world ranks ascending, one bf16 rounding).
  ascend (--ep-semantics ascend, moe_tp > 1): expand_x, dynamic_scales and
             ep_recv_counts gathered (block i from member (g + i) % moe_tp,
             each member's own block from its golden folder, zeros past the
             rows), tp_recv_counts, expert_token_nums from the gathered
             counts, moe_tp_reduced_x from the members' expert_outputs
             (float32, rotation order, one bf16 rounding).
MODE injects one bug a real library could have:
  faithful      none (verify must pass);
  wrong_peer    block i from peer (g - i) % moe_tp (the rotation reversed);
  reduce_order  the MoE-TP partials summed in ascending member order;
  world_order   the world partials summed in descending world rank order.
"""
import json
import os
import shutil
import sys

import numpy as np


def bf16_rne(f):
    """float32 array -> bf16 bits, round to nearest even (no NaN in these payloads)."""
    u = np.ascontiguousarray(f, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def load(d, r, name):
    return np.load(os.path.join(d, "rank%d" % r, name + ".npy"))


def save(d, r, name, a):
    np.save(os.path.join(d, "rank%d" % r, name + ".npy"), a)


def a2a(golden, out, layer, W, mode):
    n = layer["moe_tp"]
    if n == 1:
        return
    recv = {r: {k: load(golden, r, "recv_" + k) for k in ("x", "src_idx", "topk_idx", "topk_weights")}
            for r in range(W)}
    rows = {r: len(recv[r]["x"]) for r in range(W)}
    for r in range(W):
        q, g = divmod(r, n)
        step = -1 if mode == "wrong_peer" else 1
        peers = [q * n + (g + step * i) % n for i in range(n)]
        for k in ("x", "src_idx", "topk_idx", "topk_weights"):
            save(out, r, "moe_tp_gathered_" + k, np.concatenate([recv[p][k] for p in peers]))
    for r in range(W):
        q, g = divmod(r, n)
        order = range(n) if mode == "reduce_order" else [(g + i) % n for i in range(n)]
        acc = None
        for p in order:
            # member p's gathered order: block j from (p + j) % n; r's rows are block (g - p) % n
            j = (g - p) % n
            off = sum(rows[q * n + (p + b) % n] for b in range(j))
            part = load(golden, q * n + p, "moe_tp_partial")[off:off + rows[r]]
            acc = f32(part) if acc is None else (acc + f32(part)).astype(np.float32)
        save(out, r, "moe_tp_reduced_x", bf16_rne(acc))


def allgather(golden, out, W, mode):
    lens = [len(load(golden, r, "x")) for r in range(W)]
    parts = [load(golden, w, "world_partial") for w in range(W)]
    for r in range(W):
        off = sum(lens[:r])
        acc = np.zeros((lens[r], parts[0].shape[1]), dtype=np.float32)
        for w in (reversed(range(W)) if mode == "world_order" else range(W)):
            acc = (acc + f32(parts[w][off:off + lens[r]])).astype(np.float32)
        save(out, r, "world_reduced_x", bf16_rne(acc))


def ascend_tp(golden, out, m, W, mode):
    n, R = m["layer"]["moe_tp"], m["layer"]["moe_ep"]
    own = {r: len(load(golden, r, "moe_tp_reduced_x")) for r in range(W)}
    quant = os.path.exists(os.path.join(golden, "rank0", "dynamic_scales.npy"))
    L = len(load(golden, 0, "expert_token_nums"))
    RL = R * L
    for r in range(W):
        q, g = divmod(r, n)
        step = -1 if mode == "wrong_peer" else 1
        peers = [q * n + (g + step * i) % n for i in range(n)]
        for name in ("expand_x", "dynamic_scales") if quant else ("expand_x",):
            gathered = load(golden, r, name).copy()
            gathered[:] = 0
            rows = np.concatenate([load(golden, p, name)[:own[p]] for p in peers])
            gathered[:len(rows)] = rows
            save(out, r, name, gathered)
        counts = np.concatenate([load(golden, p, "ep_recv_counts")[:RL] for p in peers]).astype(np.int32)
        save(out, r, "ep_recv_counts", counts)
        save(out, r, "tp_recv_counts", np.array([own[q * n + i] for i in range(n)], dtype=np.int32))
        c = counts.reshape(n, L, R).astype(np.int64)
        per = (c[:, :, R - 1] - np.concatenate([np.zeros((n, 1), np.int64), c[:, :-1, R - 1]], axis=1)).sum(axis=0)
        if m["shape"]["expert_counts"] == "prefix":
            per = np.cumsum(per)
        save(out, r, "expert_token_nums", per.astype(np.int64))
    for r in range(W):
        q, g = divmod(r, n)
        order = range(n) if mode == "reduce_order" else [(g + i) % n for i in range(n)]
        acc = None
        for p in order:
            j = (g - p) % n
            off = sum(own[q * n + (p + b) % n] for b in range(j))
            part = load(golden, q * n + p, "expert_outputs")[off:off + own[r]]
            acc = f32(part) if acc is None else (acc + f32(part)).astype(np.float32)
        save(out, r, "moe_tp_reduced_x", bf16_rne(acc))


def main():
    golden, out = sys.argv[1], sys.argv[2]
    mode = sys.argv[3] if len(sys.argv) > 3 else "faithful"
    m = json.load(open(os.path.join(golden, "manifest.json")))
    layer, W = m["layer"], m["shape"]["num_ranks"]
    shutil.copytree(golden, out)
    if m.get("ep_semantics") == "ascend":
        ascend_tp(golden, out, m, W, mode)
    elif layer["moe_comm"] == "a2a":
        a2a(golden, out, layer, W, mode)
    else:
        allgather(golden, out, W, mode)


if __name__ == "__main__":
    main()
