#!/bin/sh
# golden_ll_layer_test.sh - a low-latency MoE layer's --dump (moe_tp = 1 and
# > 1, one host and 2 emulated nodes on loopback): every phase's tensors are
# written, one host's and the nodes' trees are byte-identical, a gathered
# block is its MoE-TP peer's receive layout.
# Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=low-latency
. "$(dirname "$0")/lib.sh"

S="-t 16 --hidden 256 -e 8 -k 4"

# dump on one host and across 2 nodes of 2 ranks: the same tree
for spec in dp=1,tp=4,moe_tp=2,moe_ep=2 dp=2,tp=2,moe_tp=1,moe_ep=4; do
	run "dump_host_$spec" 0 60 low-latency -r 4 --parallel $spec $S -n 1 -w 0 --dump "$tmp/h_$spec"
	run "dump_nodes_$spec" 0 60 low-latency --local-nodes --nodes 2 --ranks-per-node 2 --parallel $spec $S \
		-n 1 -w 0 --timeout 20 --dump "$tmp/n_$spec"
	same_tensors "dump_host_equals_nodes_$spec" "$tmp/h_$spec" "$tmp/n_$spec" all
done
ls "$tmp/h_dp=1,tp=4,moe_tp=2,moe_ep=2/rank3" >"$tmp/out"
missing=""
for f in x topk_idx topk_weights packed_recv_x packed_recv_count packed_recv_src_info packed_recv_layout_range \
	moe_tp_gathered_x moe_tp_gathered_count moe_tp_gathered_src_info moe_tp_gathered_layout_range moe_tp_partial \
	combine_x combined_x attn_tp_gathered_x; do
	grep -qx "$f.npy" "$tmp/out" || missing="$missing $f"
done
[ -z "$missing" ] && ok "dump_moe_tp_every_phase" || bad "dump_moe_tp_every_phase" "not written:$missing"
grep -qx "attn_tp_gathered_x.npy" "$tmp/out" && ls "$tmp/h_dp=2,tp=2,moe_tp=1,moe_ep=4/rank1" | grep -qx attn_tp_gathered_x.npy &&
	ok "dump_moe_tp_1_attn" || bad "dump_moe_tp_1_attn" "no attn_tp_gathered_x with moe_tp = 1"
# block i of world rank r = q moe_tp + g is the receive layout of MoE-TP peer q moe_tp + (g + i) % moe_tp
python3 - "$tmp/h_dp=1,tp=4,moe_tp=2,moe_ep=2" <<'PY' >"$tmp/out" 2>&1 && ok "dump_blocks_rotation" || bad "dump_blocks_rotation" "see above"
import numpy as np, os, sys
d, M = sys.argv[1], 2
ld = lambda r, n: np.load(os.path.join(d, "rank%d" % r, n + ".npy"))
for r in range(4):
    g, q = r % M, r // M
    for i in range(M):
        peer = q * M + (g + i) % M
        for t in ("x", "count", "src_info", "layout_range"):
            assert (ld(r, "moe_tp_gathered_" + t)[i] == ld(peer, "packed_recv_" + t)).all(), (r, i, t)
PY
[ -z "$(live_ranks)" ] && ok "no_orphans" || bad "no_orphans" "$(live_ranks)"
finish golden_ll_layer_test.sh
