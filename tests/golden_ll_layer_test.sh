#!/bin/sh
# golden_ll_layer_test.sh - a low-latency MoE layer's --dump, golden and
# verify (moe_tp = 1 and > 1, one host and 2 emulated nodes on loopback):
# every phase's tensors are dumped, one host's and the nodes' trees are
# byte-identical, a gathered block is its MoE-TP peer's receive layout;
# golden equals the run's dump byte for byte (4 and 8 ranks, fp8 with
# UE8M0 scales, 2 nodes) and verify passes it; a flipped byte in one
# phase's tensor is named with its phase, rank and tensor; receive rows in
# another order fail exactly and pass with --ll-order any (the partials and
# reduced rows beside them moving with them); what golden cannot write is
# refused with one line. Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=low-latency
. "$(dirname "$0")/lib.sh"

S="-t 16 --hidden 256 -e 8 -k 4 --payload special"

# golden = the run's dump (across nodes with --zero-copy --hook), verify passes it
i=0
for args in "-r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 $S" \
	"-r 4 --parallel dp=2,tp=2,moe_tp=1,moe_ep=4 $S --uneven-tokens 1" \
	"-r 8 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 -t 16 --hidden 512 -e 16 -k 4 --dtype fp8" \
	"-r 8 --parallel dp=1,tp=8,moe_tp=4,moe_ep=2 -t 8 --hidden 512 -e 8 -k 3 --dtype fp8 --round-scale --ue8m0" \
	"--nodes 2 --ranks-per-node 2 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 $S"; do
	i=$((i + 1))
	run "golden_$i" 0 60 golden low-latency $args --out "$tmp/g$i" || continue
	case "$args" in
	--nodes*) run "dump_$i" 0 60 low-latency --local-nodes $args -n 1 -w 0 --timeout 20 --zero-copy --hook --dump "$tmp/d$i" ;;
	*) run "dump_$i" 0 60 low-latency $args -n 1 -w 0 --dump "$tmp/d$i" ;;
	esac
	same_tensors "golden_equals_dump_$i" "$tmp/g$i" "$tmp/d$i" all
	run "verify_golden_$i" 0 60 verify low-latency "$tmp/g$i"
	expect "verify_checked_everything_$i" "^# not checked \(absent\): nothing"
done
expect "verify_phases_named" "^# phase attn_tp_gather .* 0 wrong elements"
# the dump: one host's tree = the nodes' (moe_tp = 2 and 1), every phase's tensors
same_tensors "dump_host_equals_nodes_moe_tp_2" "$tmp/d1" "$tmp/d5" all
run "dump_nodes_moe_tp_1" 0 60 low-latency --local-nodes --nodes 2 --ranks-per-node 2 \
	--parallel dp=2,tp=2,moe_tp=1,moe_ep=4 $S --uneven-tokens 1 -n 1 -w 0 --timeout 20 --dump "$tmp/n2"
same_tensors "dump_host_equals_nodes_moe_tp_1" "$tmp/d2" "$tmp/n2" all
ls "$tmp/d1/rank3" >"$tmp/out"
missing=""
for f in x topk_idx topk_weights packed_recv_x packed_recv_count packed_recv_src_info packed_recv_layout_range \
	moe_tp_gathered_x moe_tp_gathered_count moe_tp_gathered_src_info moe_tp_gathered_layout_range moe_tp_partial \
	moe_tp_reduced_x combined_x attn_tp_gathered_x; do
	grep -qx "$f.npy" "$tmp/out" || missing="$missing $f"
done
[ -z "$missing" ] && ok "dump_moe_tp_every_phase" || bad "dump_moe_tp_every_phase" "not written:$missing"
grep -qx "attn_tp_gathered_x.npy" "$tmp/out" && ls "$tmp/d2/rank1" | grep -qx attn_tp_gathered_x.npy &&
	ok "dump_moe_tp_1_attn" || bad "dump_moe_tp_1_attn" "no attn_tp_gathered_x with moe_tp = 1"
# block i of world rank r = q moe_tp + g is the receive layout of MoE-TP peer q moe_tp + (g + i) % moe_tp
python3 - "$tmp/d1" <<'PY' >"$tmp/out" 2>&1 && ok "dump_blocks_rotation" || bad "dump_blocks_rotation" "see above"
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

python3 - "$tmp/g1/manifest.json" <<'PY' >"$tmp/out" 2>&1 && ok "manifest_phases" || bad "manifest_phases" "see above"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["subcommand"] == "low-latency" and m["layer"]["moe_tp"] == 2, m["layer"]
ph = {(t["rank"], t["name"]): (t["phase"], t["role"]) for t in m["tensors"]}
assert ph[(1, "x")] == ("input", "input") and ph[(1, "packed_recv_x")] == ("ep_dispatch", "output"), ph
assert ph[(1, "moe_tp_gathered_layout_range")][0] == "moe_tp_gather" and ph[(1, "moe_tp_partial")] == ("experts", "expert")
assert ph[(1, "moe_tp_reduced_x")][0] == "moe_tp_reduce" and ph[(1, "combined_x")][0] == "ep_combine"
assert ph[(1, "attn_tp_gathered_x")][0] == "attn_tp_gather"
PY

# a flipped byte in one phase's tensor: that phase, rank and tensor are named
# flip NAME DIR RANK TENSOR INDEX PATTERN: the low bit of the element at INDEX flipped
flip() {
	rm -rf "$tmp/f"; cp -r "$2" "$tmp/f"
	python3 -c "
import numpy as np
p = '$tmp/f/rank$3/$4.npy'; a = np.load(p)
a.view(np.uint8).reshape(a.shape + (a.dtype.itemsize,))[$5 + (0,)] ^= 1
np.save(p, a)" >"$tmp/out" 2>&1 || { bad "$1" "flip failed"; return; }
	run "$1" 1 60 verify low-latency "$tmp/f"
	expect "$1_named" "$6"
}
flip "flip_gathered" "$tmp/g1" 2 moe_tp_gathered_x "(1, 0, 0, 7)" "^# first wrong phase moe_tp_gather: rank 2: moe_tp_gathered_x\[1\]\[0\]\[0\]\[7\]"
flip "flip_reduced" "$tmp/g1" 3 moe_tp_reduced_x "(0, 1, 3)" "^# first wrong phase moe_tp_reduce: rank 3: moe_tp_reduced_x\[0\]\[1\]\[3\]"
flip "flip_attn" "$tmp/g1" 0 attn_tp_gathered_x "(20, 9)" "^# first wrong phase attn_tp_gather: rank 0: attn_tp_gathered_x\[20\]\[9\]"
flip "flip_count" "$tmp/g1" 1 packed_recv_count "(0,)" "^# first wrong phase ep_dispatch: rank 1: packed_recv_count"
flip "flip_fp8_scale" "$tmp/g3" 5 packed_recv_x_scales "(0, 0, 1)" "^# first wrong phase ep_dispatch: rank 5: packed_recv_x_scales\[0\]"

# DeepEP's receive order: source blocks in arrival order, rows within a block in
# any order; the rows of the partials and reduced rows beside them move along
rm -rf "$tmp/o"; cp -r "$tmp/g1" "$tmp/o"
python3 - "$tmp/o/rank1" "$(dirname "$0")" <<'PY' >"$tmp/out" 2>&1 && ok "reorder" || bad "reorder" "see above"
import numpy as np, os, sys
d = sys.argv[1]
sys.path.insert(0, sys.argv[2])
from ll_reorder import reorder
ld = lambda n: np.load(os.path.join(d, n + ".npy"))
own = {n: ld("packed_recv_" + n) for n in ("count", "layout_range", "src_info", "x")}
red = ld("moe_tp_reduced_x")
reorder(own["count"], own["layout_range"], own["src_info"], [own["x"], red])
gath = {n: ld("moe_tp_gathered_" + n) for n in ("count", "layout_range", "src_info", "x")}
part = ld("moe_tp_partial")
reorder(gath["count"][1], gath["layout_range"][1], gath["src_info"][1], [gath["x"][1], part[1]])
for n in ("layout_range", "src_info", "x"):
    np.save(os.path.join(d, "packed_recv_" + n + ".npy"), own[n])
    np.save(os.path.join(d, "moe_tp_gathered_" + n + ".npy"), gath[n])
np.save(os.path.join(d, "moe_tp_reduced_x.npy"), red)
np.save(os.path.join(d, "moe_tp_partial.npy"), part)
PY
run "reordered_exact_fails" 1 60 verify low-latency "$tmp/o"
expect "reordered_exact_named" "^# first wrong phase ep_dispatch: rank 1: packed_recv_"
run "reordered_any_passes" 0 60 verify low-latency "$tmp/o" --ll-order any
python3 -c "
import numpy as np
p = '$tmp/o/rank1/moe_tp_partial.npy'; a = np.load(p); a[1, 0, 0, 3] ^= 1; np.save(p, a)"
run "reordered_corrupt_any_fails" 1 60 verify low-latency "$tmp/o" --ll-order any
expect "reordered_corrupt_any_named" "^# first wrong phase experts: rank 1: moe_tp_partial\[1\]\[0\]"

# refused with one line, exit 2
run "golden_redundant_refused" 2 10 golden low-latency -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 $S \
	--redundant-experts 4 --out "$tmp/x"
expect "golden_redundant_refused_said" "--redundant-experts in a low-latency layer's golden is not built"
[ "$(wc -l <"$tmp/out")" -eq 1 ] && ok "golden_redundant_refused_one_line" || bad "golden_redundant_refused_one_line" "$(cat "$tmp/out")"
[ -z "$(live_ranks)" ] && ok "no_orphans" || bad "no_orphans" "$(live_ranks)"
finish golden_ll_layer_test.sh
