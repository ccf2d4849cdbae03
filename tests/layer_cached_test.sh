#!/bin/sh
# layer_cached_test.sh - the MoE layer's cached dispatch and Ascend's semantics in allgather mode
# (cli/moe_layer*.c, README "The MoE layer of a configuration"). --cached: each strided MoE-EP
# group's ep_dispatch is DeepEP's cached dispatch with the group's handle (one non-cached dispatch
# first), on one host and across nodes, in bf16, fp8 and int8, every phase checked bit for bit; its
# --dump equals `epbench golden` (with and without --cached: the same tensors); a damaged received
# row is caught. --ep-semantics ascend --moe-comm allgather runs the same phases as deepep, byte for
# byte, under one line saying Ascend's semantics do not apply. What stays refused (allgather with
# --cached, Ascend's a2a layer with --cached, Ascend's own options in allgather mode, low-latency in
# allgather mode, golden of Ascend's allgather layer) is one line, exit 2. The cached layer taking
# its handle's tensors from another EP group's dispatch is a mutant in tests/mutants_test.sh.
# Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=intranode
. "$(dirname "$0")/lib.sh"
small="--hidden 256 -e 16 -k 4 -n 2 -w 1 -t 16"
nodes="internode --local-nodes --nodes 2 --ranks-per-node 2 --timeout 30"

# same NAME A B: the two --dump/--out trees hold the same tensors (names, dtype, shape, bytes)
same() {
	python3 - "$2" "$3" >"$tmp/cmp" 2>&1 <<'PY' && ok "$1" || bad "$1" "$(cat "$tmp/cmp")"
import numpy as np, os, sys
a, b = sys.argv[1:3]
ranks = sorted(d for d in os.listdir(b) if d.startswith("rank"))
assert ranks and ranks == sorted(d for d in os.listdir(a) if d.startswith("rank")), ranks
n = 0
for r in ranks:
    fa, fb = sorted(os.listdir(os.path.join(a, r))), sorted(os.listdir(os.path.join(b, r)))
    for f in set(fa) & set(fb):
        x, y = np.load(os.path.join(a, r, f)), np.load(os.path.join(b, r, f))
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), (r, f)
        n += 1
assert n >= 10, n
print(n, "tensors identical")
PY
}

# ---- --cached: the EP dispatch of each MoE-EP group reuses the group's handle ----
run "cached_moe_tp_1" 0 60 intranode -r 4 --parallel dp=2,tp=2,moe_tp=1,moe_ep=4 $small --cached --json "$tmp/c.json"
expect "cached_moe_tp_1_pass" "verdict: PASS"
expect "cached_moe_tp_1_header" "cached dispatch"
python3 -c "import json,sys; p=json.load(open(sys.argv[1])); assert p['config']['cached'] is True; \
assert [o['op'] for o in p['points'][0]['ops']][0] == 'ep_dispatch'" "$tmp/c.json" 2>"$tmp/cmp" \
	&& ok "cached_moe_tp_1_json" || bad "cached_moe_tp_1_json" "$(cat "$tmp/cmp")"
run "cached_moe_tp_2_fp8" 0 60 intranode -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 $small --dtype fp8 --cached
expect "cached_moe_tp_2_fp8_pass" "verdict: PASS"
run "cached_dispatch_only" 0 60 intranode -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 $small --cached --op dispatch
expect "cached_dispatch_only_pass" "verdict: PASS"
run "cached_corrupt_caught" 1 60 intranode -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 $small --cached --fault corrupt:1
expect "cached_corrupt_named" "first: rank 1: recv_x"

# golden of a cached layer: the same tensors as without --cached, and as the cached run's --dump
g="intranode -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 --hidden 256 -e 16 -k 4 -t 16"
run "cached_dump" 0 60 $g -n 1 -w 0 --cached --dump "$tmp/dc"
run "cached_golden" 0 60 golden $g --cached --out "$tmp/gc"
run "golden" 0 60 golden $g --out "$tmp/gn"
same "cached_golden_equals_golden" "$tmp/gc" "$tmp/gn"
same "cached_dump_equals_golden" "$tmp/gc" "$tmp/dc"

# across nodes: DeepEP's internode cached dispatch in every EP group
run "cached_nodes_2x2" 0 60 $nodes --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 $small --cached
expect "cached_nodes_2x2_pass" "verdict: PASS"
run "cached_nodes_moe_tp_spans_int8" 0 60 $nodes --parallel dp=1,tp=4,moe_tp=4,moe_ep=1 $small --dtype int8 --cached
expect "cached_nodes_moe_tp_spans_int8_pass" "verdict: PASS"

# ---- --ep-semantics ascend in allgather mode: no EP dispatch or combine, the deepep layer's phases ----
ag="intranode -r 4 --parallel dp=2,tp=2,moe_tp=1,moe_ep=4 --moe-comm allgather $small"
run "ascend_allgather" 0 60 $ag --ep-semantics ascend --dump "$tmp/aa"
expect "ascend_allgather_pass" "verdict: PASS"
expect "ascend_allgather_says" "^# warning: --ep-semantics ascend in allgather mode: .* Ascend's semantics do not apply"
[ "$(grep -c "ep-semantics ascend" "$tmp/out")" -eq 1 ] && ok "ascend_allgather_one_line" \
	|| bad "ascend_allgather_one_line" "$(grep -c "ep-semantics ascend" "$tmp/out") lines name it"
run "deepep_allgather" 0 60 $ag --dump "$tmp/ad"
same "ascend_allgather_equals_deepep" "$tmp/aa" "$tmp/ad"
run "ascend_allgather_nodes_tp_spans" 0 60 $nodes --parallel dp=1,tp=4,moe_tp=1,moe_ep=4 --moe-comm allgather $small --ep-semantics ascend
expect "ascend_allgather_nodes_tp_spans_pass" "verdict: PASS"

# ---- refused with one line, exit 2, nothing spawned ----
refuse() {
	name=$1 say=$2; shift 2
	run "$name" 2 10 "$@" && expect "${name}_said" "$say"
	[ "$(wc -l <"$tmp/out")" -eq 1 ] && ok "${name}_one_line" || bad "${name}_one_line" "$(wc -l <"$tmp/out") lines"
}
refuse "allgather_cached" "--cached: allgather mode has no EP dispatch" $ag --cached
refuse "ascend_a2a_cached" "--ep-semantics ascend has no cached mode" intranode -r 4 --parallel dp=2,tp=2,moe_tp=1,moe_ep=4 $small --ep-semantics ascend --cached
refuse "ascend_allgather_shared" "--shared-experts with --ep-semantics ascend in allgather mode" $ag --ep-semantics ascend --shared-experts 1 --shared-expert-ranks 1
refuse "ascend_allgather_comm_quant" "--comm-quant int8 with --ep-semantics ascend in allgather mode" $ag --ep-semantics ascend --comm-quant int8
refuse "ascend_allgather_int8" "--moe-comm allgather moves bf16 rows" $ag --ep-semantics ascend --dtype int8
refuse "low_latency_allgather" "allgather mode is a normal-mode phase" low-latency -r 4 --parallel dp=2,tp=2,moe_tp=1,moe_ep=4 --moe-comm allgather $small
refuse "golden_ascend_allgather" "write its golden without --ep-semantics ascend" golden $ag --ep-semantics ascend --out "$tmp/gx"
[ ! -e "$tmp/gx" ] && ok "golden_ascend_allgather_wrote_nothing" || bad "golden_ascend_allgather_wrote_nothing" "$tmp/gx exists"
[ -z "$(live_ranks)" ] && ok "no_orphans" || bad "no_orphans" "$(live_ranks)"
finish layer_cached_test.sh
