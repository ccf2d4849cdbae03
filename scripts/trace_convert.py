#!/usr/bin/env python3
"""trace_convert.py - routing traces (reference/trace.h) to and from NumPy arrays.

  trace_convert.py to-trace IN.npy|IN.npz OUT --experts E [--model NAME] [--layer L]
                   [--ids-key KEY] [--weights-key KEY | --weights W.npy] [--tokens-per-step N]
      Top-k ids of shape [steps, tokens, K] or [tokens, K] (one step, or
      --tokens-per-step N to cut the tokens into steps of N), any integer
      dtype, -1 for no expert: what one saves from vLLM's, SGLang's or
      Megatron's router (e.g. numpy.save of topk_ids). An .npz gives the ids
      under --ids-key (default: topk_ids, topk_idx or its only array) and
      the weights under --weights-key (default: topk_weights when present).
  trace_convert.py to-npz IN.trace OUT.npz
      The trace's arrays back: topk_ids [S, N, K] int32, topk_weights
      [S, N, K] float32 when it has them, model and layer.
  trace_convert.py info IN.trace
      The header, and whether the checksum holds.
  trace_convert.py synth OUT.npz --experts E --topk K --steps S --tokens N [--seed X] [--sigma F]
      A generated distribution to try the format with (not a model
      capture): per step, expert popularities exp(sigma z) with z standard
      normal, drifting a little from step to step; each token draws K
      distinct experts with those weights, and weights a softmax of
      random scores.

Every check epbench makes on load is made here too, so a trace this script
writes is one epbench reads. Needs Python 3 and NumPy only.
"""
import argparse
import hashlib
import struct
import sys

import numpy as np

MAGIC = b"EPTRACE\0"
VERSION = 1
HEADER = struct.Struct("<8sIIIIIIiI32s56s")  # 128 bytes, trace.h's table
assert HEADER.size == 128
MAX_EXPERTS, MAX_TOPK, MAX_BODY = 1 << 20, 1024, 1 << 31


def fail(msg):
    sys.exit("trace_convert: " + msg)


def check_ids(ids, experts):
    """Ids in [-1, E), none twice in a row: one line naming the first bad one."""
    bad = (ids < -1) | (ids >= experts)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        fail("step %d token %d slot %d has expert %d, outside [-1, %d)" % (at + (int(ids[at]), experts)))
    s = np.sort(ids, axis=-1)
    dup = (s[..., 1:] == s[..., :-1]) & (s[..., 1:] >= 0)
    if dup.any():
        at = tuple(int(i) for i in np.argwhere(dup)[0])
        fail("step %d token %d has expert %d twice" % (at[0], at[1], int(s[at])))


def load_arrays(path, ids_key, weights_key, weights_path):
    if path.endswith(".npz"):
        z = np.load(path)
        keys = list(z.keys())
        key = ids_key or next((k for k in ("topk_ids", "topk_idx") if k in keys), keys[0] if len(keys) == 1 else None)
        if key not in keys:
            fail("%s: no ids array (keys: %s); name it with --ids-key" % (path, ", ".join(keys)))
        wkey = weights_key or ("topk_weights" if "topk_weights" in keys else None)
        if weights_key and weights_key not in keys:
            fail("%s: no array '%s' (keys: %s)" % (path, weights_key, ", ".join(keys)))
        ids, w = z[key], (z[wkey] if wkey else None)
    else:
        ids, w = np.load(path), None
    if weights_path:
        w = np.load(weights_path)
    return ids, w


def to_steps(a, tokens_per_step, what):
    if a.ndim == 2:
        n = tokens_per_step or a.shape[0]
        if a.shape[0] % n:
            fail("%s: %d tokens do not split into steps of %d" % (what, a.shape[0], n))
        a = a.reshape(a.shape[0] // n, n, a.shape[1])
    if a.ndim != 3 or 0 in a.shape:
        fail("%s has shape %s: want [steps, tokens, K] or [tokens, K], none empty" % (what, a.shape))
    return a


def encode(ids, weights, experts, model, layer):
    S, N, K = ids.shape
    if not (1 <= K <= MAX_TOPK and K <= experts <= MAX_EXPERTS):
        fail("top-k %d and %d experts: want 1 <= K <= E <= %d, K <= %d" % (K, experts, MAX_EXPERTS, MAX_TOPK))
    if S >= 1 << 31 or N >= 1 << 31:
        fail("%d steps of %d tokens: too many" % (S, N))
    check_ids(ids, experts)
    body = ids.astype("<i4").tobytes()
    if weights is not None:
        if weights.shape != ids.shape:
            fail("weights have shape %s, the ids %s" % (weights.shape, ids.shape))
        if not np.isfinite(weights).all():
            fail("a weight is NaN or infinite")
        body += weights.astype("<f4").tobytes()
    if len(body) > MAX_BODY:
        fail("the body would be %d bytes; epbench reads at most %d" % (len(body), MAX_BODY))
    name = model.encode("utf-8")
    if len(name) > 55:
        fail("model name '%s' is longer than 55 bytes" % model)
    head = HEADER.pack(MAGIC, VERSION, 1 if weights is not None else 0, experts, K, S, N, layer, 0,
                       hashlib.sha256(body).digest(), name)
    return head + body


def decode(data, path):
    if len(data) < 8 or data[:8] != MAGIC:
        fail("%s is not a routing trace (no EPTRACE magic)" % path)
    if len(data) < HEADER.size:
        fail("%s is truncated in its 128-byte header" % path)
    magic, ver, flags, E, K, S, N, layer, res, digest, name = HEADER.unpack_from(data)
    if ver != VERSION:
        fail("%s has version %d; this script reads version %d" % (path, ver, VERSION))
    if flags & ~1 or res:
        fail("%s has flags 0x%x and reserved %d" % (path, flags, res))
    if not (1 <= K <= MAX_TOPK and K <= E <= MAX_EXPERTS and S >= 1 and N >= 1):
        fail("%s has experts %d, top-k %d, steps %d, tokens per step %d" % (path, E, K, S, N))
    n = S * N * K
    want = 4 * n * (2 if flags & 1 else 1)
    if len(data) - HEADER.size != want:
        fail("%s is %s: %d body bytes, its header needs %d" % (
            path, "truncated" if len(data) - HEADER.size < want else "longer than its header says",
            len(data) - HEADER.size, want))
    body = data[HEADER.size:]
    if hashlib.sha256(body).digest() != digest:
        fail("%s fails its checksum (damaged file)" % path)
    ids = np.frombuffer(body, "<i4", n).reshape(S, N, K).astype(np.int32)
    check_ids(ids, E)
    w = np.frombuffer(body, "<f4", n, 4 * n).reshape(S, N, K).astype(np.float32) if flags & 1 else None
    if w is not None and not np.isfinite(w).all():
        fail("%s has a NaN or infinite weight" % path)
    return dict(ids=ids, weights=w, experts=E, layer=layer, model=name.split(b"\0")[0].decode("utf-8", "replace"),
                sha256=digest.hex())


def synth(a):
    rng = np.random.default_rng(a.seed)
    E, K, S, N = a.experts, a.topk, a.steps, a.tokens
    z = rng.standard_normal(E)
    ids = np.empty((S, N, K), np.int32)
    for s in range(S):
        z = 0.9 * z + np.sqrt(1 - 0.81) * rng.standard_normal(E)  # the popular experts drift
        p = np.exp(a.sigma * (z - z.max()))
        p /= p.sum()
        for t in range(N):
            ids[s, t] = rng.choice(E, K, replace=False, p=p)
    scores = rng.standard_normal((S, N, K))
    w = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
    np.savez(a.output, topk_ids=ids, topk_weights=w.astype(np.float32))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("to-trace")
    t.add_argument("input")
    t.add_argument("output")
    t.add_argument("--experts", type=int, required=True)
    t.add_argument("--model", default="unknown")
    t.add_argument("--layer", type=int, default=-1)
    t.add_argument("--ids-key")
    t.add_argument("--weights-key")
    t.add_argument("--weights")
    t.add_argument("--tokens-per-step", type=int)
    b = sub.add_parser("to-npz")
    b.add_argument("input")
    b.add_argument("output")
    i = sub.add_parser("info")
    i.add_argument("input")
    g = sub.add_parser("synth")
    g.add_argument("output")
    for k in ("experts", "topk", "steps", "tokens"):
        g.add_argument("--" + k, type=int, required=True)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--sigma", type=float, default=1.0)
    a = p.parse_args()
    if a.cmd == "to-trace":
        ids, w = load_arrays(a.input, a.ids_key, a.weights_key, a.weights)
        if not np.issubdtype(ids.dtype, np.integer):
            fail("%s: ids have dtype %s, want integers" % (a.input, ids.dtype))
        ids = to_steps(ids, a.tokens_per_step, "ids")
        w = None if w is None else to_steps(np.asarray(w, np.float32), a.tokens_per_step, "weights")
        with open(a.output, "wb") as f:
            f.write(encode(ids, w, a.experts, a.model, a.layer))
    elif a.cmd == "to-npz":
        d = decode(open(a.input, "rb").read(), a.input)
        arrays = dict(topk_ids=d["ids"], model=np.array(d["model"]), layer=np.array(d["layer"]))
        if d["weights"] is not None:
            arrays["topk_weights"] = d["weights"]
        np.savez(a.output, **arrays)
    elif a.cmd == "info":
        d = decode(open(a.input, "rb").read(), a.input)
        S, N, K = d["ids"].shape
        print("model '%s', layer %d: %d experts, top-%d, %d steps of %d tokens, %s; sha256 %s (checksum holds)" % (
            d["model"], d["layer"], d["experts"], K, S, N, "with weights" if d["weights"] is not None else "no weights",
            d["sha256"]))
    else:
        synth(a)


if __name__ == "__main__":
    main()
