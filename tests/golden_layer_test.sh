#!/bin/sh
# golden_layer_test.sh - epbench golden and verify of a --parallel
# configuration's MoE layer, phase by phase: golden equals a run's --dump
# (a2a with MoE-TP, allgather, padded and uneven slices, redundant
# experts; Ascend's layer with moe_tp 1 and with its MoE-TP stage (also with int8 combine transport and
# with shared experts, a flipped shared row named), whose
# fake library must pass and fail on a block from the wrong member and a
# reduce out of rotation order); verify passes it, passes tests/fake_layer_library.py computing
# the MoE-TP and world stages itself, and names the first wrong phase when
# that library takes a MoE-TP block from the wrong peer, sums the MoE-TP or
# world partials in the wrong order; a library's own replica choice passes
# when every physical id maps to golden's logical expert and fails on one
# that maps to another; a library that wrote some phases only is checked on
# those; a malformed layer manifest is refused with one line.
# Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=golden
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)

# py ARGS...: numpy's python on a script from stdin, output in $tmp/out
py() { python3 - "$@" >"$tmp/out" 2>&1; }


# fake NAME GOLDEN OUT MODE: the fake library's outputs
fake() { python3 "$root/tests/fake_layer_library.py" "$2" "$3" "$4" >"$tmp/out" 2>&1 && ok "$1" || bad "$1" "fake library failed"; }

S="-r 4 -t 16 --hidden 64 -e 8 -k 3"
i=0
for args in "--parallel dp=2,tp=2,moe_tp=2,moe_ep=2" \
	"--parallel dp=2,tp=2,moe_tp=1,moe_ep=4 --moe-comm allgather" \
	"--parallel dp=2,tp=2,moe_tp=4,moe_ep=1 --sp-pad zero --uneven-tokens 1" \
	"--parallel dp=4,tp=1,moe_tp=2,moe_ep=2 --moe-comm allgather --sp-pad replicate0 --tokens-per-dp 10 --uneven-tokens 1" \
	"--parallel dp=2,tp=2,moe_tp=2,moe_ep=2 --redundant-experts 4 --eplb-load zipf:1.2"; do
	i=$((i + 1))
	run "golden_$i" 0 60 golden intranode $S $args --out "$tmp/g$i" || continue
	run "dump_$i" 0 60 intranode $S $args -n 1 -w 0 --dump "$tmp/d$i"
	same_tensors "golden_equals_dump_$i" "$tmp/g$i" "$tmp/d$i" common
	run "verify_golden_$i" 0 60 verify intranode "$tmp/g$i"
	expect "verify_checked_everything_$i" "^# not checked \(absent\): nothing"
done
expect "redundant_input_phase_checked" "^# phase input .* 0 wrong elements"
py "$tmp/g1/manifest.json" <<'PY' && ok "manifest_layer_phases_groups" || bad "manifest_layer_phases_groups" "see above"
import json, sys
m = json.load(open(sys.argv[1]))
l = m["layer"]
assert (l["dp"], l["tp"], l["moe_tp"], l["moe_ep"], l["moe_comm"]) == (2, 2, 2, 2, "a2a"), l
assert l["groups"][3] == "attn_tp={2,3} dp=1 moe_tp={2,3} ep=1/{1,3}", l["groups"]
ph = {(t["rank"], t["name"]): (t["phase"], t["role"]) for t in m["tensors"]}
assert ph[(1, "x")] == ("input", "input") and ph[(1, "recv_x")] == ("ep_dispatch", "output"), ph
assert ph[(1, "moe_tp_gathered_x")][0] == "moe_tp_gather" and ph[(1, "moe_tp_partial")] == ("experts", "expert")
assert ph[(1, "moe_tp_reduced_x")][0] == "moe_tp_reduce" and ph[(1, "combined_x")][0] == "ep_combine"
assert ph[(1, "attn_tp_gathered_x")][0] == "attn_tp_gather"
PY
grep -q '"phase": "world_reduce"' "$tmp/g2/manifest.json" && grep -q '"phase": "world_partial"' "$tmp/g2/manifest.json" &&
	ok "manifest_allgather_phases" || bad "manifest_allgather_phases" "no world phases in the manifest"

# DeepEP's a2a layer in fp8 (x cast by the caller, with x_scales), int8 (quantised by dispatch) and with biases
j=0
for args in "--parallel dp=2,tp=2,moe_tp=2,moe_ep=2 --dtype fp8 --bias 2 --uneven-tokens 1 --sp-pad replicate0" \
	"--parallel dp=1,tp=4,moe_tp=4,moe_ep=1 --dtype int8 --bias 1 --payload narrow --expert-counts prefix" \
	"--parallel dp=2,tp=2,moe_tp=1,moe_ep=4 --dtype fp8"; do
	j=$((j + 1))
	run "golden_quant_$j" 0 60 golden intranode $S --hidden 256 $args --out "$tmp/q$j" || continue
	run "dump_quant_$j" 0 60 intranode $S --hidden 256 $args -n 1 -w 0 --dump "$tmp/qd$j"
	same_tensors "golden_quant_equals_dump_$j" "$tmp/q$j" "$tmp/qd$j" common
	run "verify_golden_quant_$j" 0 60 verify intranode "$tmp/q$j"
	expect "verify_quant_checked_everything_$j" "^# not checked \(absent\): nothing"
done
q=1
[ -f "$tmp/q$q/rank1/moe_tp_gathered_x_scales.npy" ] && [ -f "$tmp/q$q/rank1/x_scales.npy" ] &&
	[ -f "$tmp/q$q/rank1/bias_1.npy" ] && ok "quant_tensors_written" || bad "quant_tensors_written" "no scales or biases"
cp -r "$tmp/q$q" "$tmp/qs"
py "$tmp/qs/rank1/recv_x_scales.npy" <<'PY'
import numpy as np, sys
a = np.load(sys.argv[1]); a[0, 1] *= 2; np.save(sys.argv[1], a)
PY
run "verify_quant_scale_fails" 1 60 verify intranode "$tmp/qs"
expect "verify_quant_scale_named" "^# first wrong phase ep_dispatch: rank 1: recv_x_scales\[0\]\[1\]"
cp -r "$tmp/q$q" "$tmp/qb"
py "$tmp/qb/rank2/bias_0.npy" <<'PY'
import numpy as np, sys
a = np.load(sys.argv[1]); a[0, 3] ^= 0x40; np.save(sys.argv[1], a)
PY
run "verify_changed_bias_fails" 1 60 verify intranode "$tmp/qb"
expect "verify_changed_bias_named_input" "^# inputs: 1 file differ.*rank2/bias_0.npy"
expect "verify_changed_bias_named_combine" "^# first wrong phase ep_combine: rank 2: combined_x\[0\]\[3\]"

# Ascend's layer (moe_tp=1: MC2 over the world, the attention-TP gather after combine)
for args in "--parallel dp=2,tp=2,moe_tp=1,moe_ep=4" \
	"--parallel dp=2,tp=2,moe_tp=1,moe_ep=4 -e 9 --dtype int8 --shared-experts 1 --shared-expert-ranks 1 --uneven-tokens 1 --sp-pad replicate0"; do
	i=$((i + 1))
	run "golden_ascend_$i" 0 60 golden intranode $S --ep-semantics ascend $args --out "$tmp/g$i" || continue
	run "dump_ascend_$i" 0 60 intranode $S --ep-semantics ascend $args -n 1 -w 0 --dump "$tmp/d$i"
	same_tensors "golden_ascend_equals_dump_$i" "$tmp/g$i" "$tmp/d$i" common
	run "verify_golden_ascend_$i" 0 60 verify intranode "$tmp/g$i" --ep-semantics ascend
	expect "verify_ascend_checked_everything_$i" "^# not checked \(absent\): nothing"
done
grep -q '"phase": "attn_tp_gather"' "$tmp/g6/manifest.json" && grep -q '"moe_tp": 1' "$tmp/g6/manifest.json" &&
	ok "manifest_ascend_layer" || bad "manifest_ascend_layer" "no layer or attention phase in Ascend's manifest"
cp -r "$tmp/g6" "$tmp/a1"
py "$tmp/a1/rank3/attn_tp_gathered_x.npy" <<'PY'
import numpy as np, sys
a = np.load(sys.argv[1]); a[5, 7] ^= 1; np.save(sys.argv[1], a)
PY
run "verify_ascend_attn_flip_fails" 1 60 verify intranode "$tmp/a1" --ep-semantics ascend
expect "ascend_attn_flip_named" "first: rank 3: attn_tp_gathered_x\[5\]\[7\]"

# Ascend's MoE-TP stage (moe_tp > 1): the dump's TP shapes, every phase from the inputs
for args in "--parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -e 2 -k 1" \
	"--parallel dp=2,tp=2,moe_tp=2,moe_ep=2 -e 2 -k 2 --dtype int8 --smooth-scales --expert-counts prefix --bias 1 --payload narrow" \
	"--parallel dp=4,tp=1,moe_tp=2,moe_ep=2 -e 6 -k 2 --redundant-experts 2 --eplb-load zipf:1.2" \
	"--parallel dp=1,tp=4,moe_tp=4,moe_ep=1 -e 4 -k 2 --dtype int8 --uneven-tokens 1 --sp-pad replicate0"; do
	i=$((i + 1))
	run "golden_ascend_tp_$i" 0 60 golden intranode $S --ep-semantics ascend $args --out "$tmp/g$i" || continue
	run "dump_ascend_tp_$i" 0 60 intranode $S --ep-semantics ascend $args -n 1 -w 0 --dump "$tmp/d$i"
	same_tensors "golden_ascend_tp_equals_dump_$i" "$tmp/g$i" "$tmp/d$i" common
	run "verify_golden_ascend_tp_$i" 0 60 verify intranode "$tmp/g$i" --ep-semantics ascend
	expect "verify_ascend_tp_checked_everything_$i" "^# not checked \(absent\): nothing"
	expect "verify_ascend_tp_gather_phase_$i" "^# phase moe_tp_gather .* 0 wrong elements"
	expect "verify_ascend_tp_handles_$i" "^# handles: .*tp_recv_counts\) in the check above, 0 wrong elements"
done
atp=$i
py "$tmp/g$atp/manifest.json" <<'PY' && ok "manifest_ascend_tp_phases" || bad "manifest_ascend_tp_phases" "see above"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["layer"]["moe_tp"] == 4 and m["ep_semantics"] == "ascend", m["layer"]
ph = {(t["rank"], t["name"]): (t["phase"], t["role"]) for t in m["tensors"]}
assert ph[(2, "dispatch_x")] == ("input", "input") and ph[(2, "assist_info_for_combine")][0] == "ep_dispatch", ph
for n in ("expand_x", "dynamic_scales", "ep_recv_counts", "tp_recv_counts", "expert_token_nums"):
    assert ph[(2, n)][0] == "moe_tp_gather", n
assert ph[(2, "expert_outputs")] == ("experts", "expert") and ph[(2, "moe_tp_reduced_x")][0] == "moe_tp_reduce"
assert ph[(2, "x")][0] == "ep_combine" and ph[(2, "attn_tp_gathered_x")][0] == "attn_tp_gather"
PY
fake "fake_ascend_tp_faithful" "$tmp/g$atp" "$tmp/af1" faithful
run "verify_fake_ascend_tp_faithful" 0 60 verify intranode "$tmp/af1" --ep-semantics ascend
fake "fake_ascend_tp_wrong_peer" "$tmp/g$atp" "$tmp/af2" wrong_peer
run "verify_ascend_tp_wrong_peer_fails" 1 60 verify intranode "$tmp/af2" --ep-semantics ascend
expect "ascend_tp_wrong_peer_named" "^# first wrong phase moe_tp_gather: rank [0-9]+: "
fake "fake_ascend_tp_reduce_order" "$tmp/g$atp" "$tmp/af3" reduce_order
run "verify_ascend_tp_reduce_order_fails" 1 60 verify intranode "$tmp/af3" --ep-semantics ascend
expect "ascend_tp_reduce_order_named" "^# first wrong phase moe_tp_reduce: rank [1-3]: moe_tp_reduced_x\["
# a block's bytes from the wrong member (the counts right): the gather's data, not a handle
cp -r "$tmp/g$atp" "$tmp/af4"
py "$tmp/af4" <<'PY'
import numpy as np, os, sys
d = sys.argv[1]
own = [len(np.load(os.path.join(d, "rank%d" % r, "moe_tp_reduced_x.npy"))) for r in range(4)]
x = np.load(os.path.join(d, "rank0", "expand_x.npy"))  # block 1 is member 1's rows: put member 2's there
n = min(own[1], own[2])
x[own[0]:own[0] + n] = np.load(os.path.join(d, "rank2", "expand_x.npy"))[:n]
np.save(os.path.join(d, "rank0", "expand_x.npy"), x)
PY
run "verify_ascend_tp_block_of_wrong_member_fails" 1 60 verify intranode "$tmp/af4" --ep-semantics ascend
expect "ascend_tp_block_of_wrong_member_named" "^# first wrong phase moe_tp_gather: rank 0: expand_x\["
# a library without the MoE-TP stage's own tensors: checked on the rest, the rest said
cp -r "$tmp/g$atp" "$tmp/af5"
rm -f "$tmp"/af5/rank*/moe_tp_reduced_x.npy "$tmp"/af5/rank*/tp_recv_counts.npy
run "verify_ascend_tp_some_phases" 0 60 verify intranode "$tmp/af5" --ep-semantics ascend
expect "ascend_tp_some_phases_said" "^# not checked \(absent\): tp_recv_counts, moe_tp_reduced_x$"
py "$tmp/af5/rank3/expert_outputs.npy" <<'PY'
import numpy as np, sys
np.save(sys.argv[1], np.load(sys.argv[1])[1:])
PY
run "verify_ascend_tp_short_experts_fails" 1 60 verify intranode "$tmp/af5" --ep-semantics ascend
expect "ascend_tp_short_experts_named" "^# first wrong phase experts: rank 3: expert_outputs.rows"

# Ascend's MoE-TP stage with --comm-quant int8 (the EP return carries the reduced rows as int8) and with
# shared experts (EP rank 0 of each MoE-EP group; its MoE-TP group's blocks have R counts, one local expert)
for args in "--parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -e 2 -k 1 --shared-experts 1 --shared-expert-ranks 1 --comm-quant int8" \
	"--parallel dp=2,tp=2,moe_tp=2,moe_ep=2 -e 1 -k 1 --dtype int8 --smooth-scales --shared-experts 1 --shared-expert-ranks 1 --bias 1 --uneven-tokens 1" \
	"--parallel dp=1,tp=4,moe_tp=4,moe_ep=1 -e 4 -k 2 --dtype int8 --comm-quant int8 --sp-pad replicate0"; do
	i=$((i + 1))
	run "golden_ascend_tp_sq_$i" 0 60 golden intranode $S --ep-semantics ascend $args --out "$tmp/g$i" || continue
	run "dump_ascend_tp_sq_$i" 0 60 intranode $S --ep-semantics ascend $args -n 1 -w 0 --dump "$tmp/d$i"
	same_tensors "golden_ascend_tp_sq_equals_dump_$i" "$tmp/g$i" "$tmp/d$i" common
	run "verify_golden_ascend_tp_sq_$i" 0 60 verify intranode "$tmp/g$i" --ep-semantics ascend
	expect "verify_ascend_tp_sq_checked_everything_$i" "^# not checked \(absent\): nothing"
done
# a shared expert's reduced row flipped (rank 1: member 1 of EP rank 0, a shared-expert rank) is named in its phase
cp -r "$tmp/g$((i - 2))" "$tmp/as1"
py "$tmp/as1/rank1/moe_tp_reduced_x.npy" <<'PY'
import numpy as np, sys
a = np.load(sys.argv[1]); a[2, 3] ^= 1; np.save(sys.argv[1], a)
PY
run "verify_ascend_tp_shared_flip_fails" 1 60 verify intranode "$tmp/as1" --ep-semantics ascend
expect "verify_ascend_tp_shared_flip_named" "^# first wrong phase moe_tp_reduce: rank 1: moe_tp_reduced_x\[2\]\[3\]"

# the fake library computing the MoE-TP stage (moe_tp 4: order matters) and the world reduce
fake "fake_mtp_faithful" "$tmp/g3" "$tmp/f1" faithful
run "verify_fake_mtp_faithful" 0 60 verify intranode "$tmp/f1"
fake "fake_wrong_peer" "$tmp/g3" "$tmp/f2" wrong_peer
run "verify_wrong_peer_fails" 1 60 verify intranode "$tmp/f2"
expect "wrong_peer_named" "^# first wrong phase moe_tp_gather: rank [0-9]+: moe_tp_gathered_"
fake "fake_reduce_order" "$tmp/g3" "$tmp/f3" reduce_order
cmp -s "$tmp/f3/rank1/moe_tp_reduced_x.npy" "$tmp/g3/rank1/moe_tp_reduced_x.npy" &&
	bad "reduce_order_changes_bytes" "ascending order gave the rotation's bytes" || ok "reduce_order_changes_bytes"
run "verify_reduce_order_fails" 1 60 verify intranode "$tmp/f3"
expect "reduce_order_named" "^# first wrong phase moe_tp_reduce: rank [1-3]: moe_tp_reduced_x\["
fake "fake_allgather_faithful" "$tmp/g2" "$tmp/f4" faithful
run "verify_fake_allgather_faithful" 0 60 verify intranode "$tmp/f4"
fake "fake_world_order" "$tmp/g2" "$tmp/f5" world_order
run "verify_world_order_fails" 1 60 verify intranode "$tmp/f5"
expect "world_order_named" "^# first wrong phase world_reduce: rank [0-9]+: world_reduced_x\["

# a library that implements some phases only: checked on those, the rest said
cp -r "$tmp/g1" "$tmp/p1"
rm -f "$tmp"/p1/rank*/combined_x.npy "$tmp"/p1/rank*/combined_topk_weights.npy "$tmp"/p1/rank*/attn_tp_gathered_x.npy
run "verify_some_phases" 0 60 verify intranode "$tmp/p1"
expect "some_phases_said" "^# not checked \(absent\): combined_x, combined_topk_weights, attn_tp_gathered_x$"
# a wrong row count is a wrong output of its phase
py "$tmp/p1/rank2/moe_tp_partial.npy" <<'PY'
import numpy as np, sys
np.save(sys.argv[1], np.load(sys.argv[1])[1:])
PY
run "verify_short_partial_fails" 1 60 verify intranode "$tmp/p1"
expect "short_partial_named" "^# first wrong phase experts: rank 2: moe_tp_partial.rows"
py "$tmp/p1/rank0/recv_topk_weights.npy" <<'PY'
import numpy as np, sys
np.save(sys.argv[1], np.load(sys.argv[1])[:, :2])
PY
run "verify_narrow_weights_fails" 1 60 verify intranode "$tmp/p1"
expect "narrow_weights_named" "^# first wrong phase ep_dispatch: rank 0: recv_topk_weights.cols: expected 3, got 2"

# redundant experts: a library's own replica choice (another policy, the
# same logical ids) passes; a physical id of another logical expert fails
run "golden_static_replicas" 0 60 golden intranode $S --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 --redundant-experts 4 \
	--eplb-load zipf:1.2 --replica-policy static --out "$tmp/st"
cp -r "$tmp/g5" "$tmp/lib"
for r in 0 1 2 3; do cp "$tmp/st/rank$r/"*.npy "$tmp/lib/rank$r/"; done
cmp -s "$tmp/lib/rank1/topk_idx.npy" "$tmp/g5/rank1/topk_idx.npy" &&
	bad "library_replicas_differ" "static picked modpos's replicas" || ok "library_replicas_differ"
run "verify_own_replica_choice_passes" 0 60 verify intranode "$tmp/lib"
expect "own_replica_choice_named_input" "^# inputs: .*topk_idx.npy"
replica_bug() {
	py "$1/rank1" <<'PY'
import numpy as np, os, sys
d = sys.argv[1]
idx, p2l, lg = (np.load(os.path.join(d, n + ".npy")) for n in ("topk_idx", "phy2log", "topk_idx_logical"))
t, j = np.argwhere(lg >= 0)[0]
idx[t, j] = [p for p in range(len(p2l)) if p2l[p] != lg[t, j] and p not in idx[t]][0]
np.save(os.path.join(d, "topk_idx.npy"), idx)
print(t, j)
PY
}
replica_bug "$tmp/lib"
run "verify_wrong_expert_fails" 1 60 verify intranode "$tmp/lib"
expect "wrong_expert_named" "^# first wrong phase input: rank 1: topk_idx_phy2log\["
# the same rule in a plain EP run's directory
run "golden_plain_replicas" 0 60 golden intranode -r 4 -t 16 --hidden 64 -e 16 -k 4 --redundant-experts 4 --out "$tmp/pe"
replica_bug "$tmp/pe"
run "verify_plain_wrong_expert_fails" 1 60 verify intranode "$tmp/pe"
expect "plain_wrong_expert_named" "first: rank 1: topk_idx_phy2log\["

# bad input: one line, exit 2
cp -r "$tmp/g1" "$tmp/b1"
sed -i 's/"moe_ep": 2/"moe_ep": 3/' "$tmp/b1/manifest.json"
run "layer_groups_refused" 2 10 verify intranode "$tmp/b1"
expect "layer_groups_named" "manifest.json'?: layer: moe_ep \* moe_tp must equal the world size"
sed -i 's/"moe_ep": 3/"moe_ep": 2/; s/"moe_comm": "a2a"/"moe_comm": "ring"/' "$tmp/b1/manifest.json"
run "layer_comm_refused" 2 10 verify intranode "$tmp/b1"
run "golden_layer_allgather_fp8_refused" 2 10 golden intranode $S --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 --moe-comm allgather \
	--dtype fp8 --out "$tmp/x"
expect "golden_layer_allgather_fp8_named" "allgather moves bf16 rows and adds no bias"
[ ! -e "$tmp/x" ] && ok "nothing_written_when_refused" || bad "nothing_written_when_refused" "left $tmp/x"
finish golden_layer_test.sh
