#!/bin/sh
# moe_layer_test.sh - a parallel configuration's MoE layer on one host (cli/moe_layer.h,
# parallel-semantics.md sections 2-3): every phase of every mode runs and is checked bit for bit
# on 4, 8 and 16 ranks (slices with each padding rule and uneven T_d, MoE-TP gather and reduce,
# attention-TP gather, allgather mode, fp8/int8 dispatch, redundant experts), the phases a
# configuration lacks are absent, a corrupted phase output is caught (exit 1), and what the layer
# does not run yet is refused with one line (exit 2) before anything is spawned. The group-building
# mistakes (a rank swapped between EP groups, a MoE-TP block from the wrong peer, the reduction in
# the wrong order) are mutants in tests/mutants_test.sh. Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=intranode
. "$(dirname "$0")/lib.sh"
fix="$lib_here/fixtures/mindie-a3-16.json"
small="--hidden 256 -e 16 -k 4 -n 2 -w 1"

# layer NAME RANKS SPEC ARGS...: a run that must pass
layer() {
	name=$1 ranks=$2 spec=$3; shift 3
	run "$name" 0 120 intranode -r "$ranks" --parallel "$spec" $small "$@"
	expect "${name}_pass" "verdict: PASS"
}
# phases NAME REGEX...: the table's op rows, in order, are exactly these
phases() {
	name=$1; shift
	got=$(awk '$1 ~ /^[0-9]+$/ && NF > 10 {print $4}' "$tmp/out" | tr '\n' ' ')
	[ "$got" = "$* " ] && ok "$name" || bad "$name" "phases '$got', want '$* '"
}

# layer_bytes NAME JSON AGREE SPANS: the point's layer.bytes (cli/layer_bytes.h) has a phase for
# every op it timed that is a phase (dispatch and combine are ep_dispatch and ep_combine), in the
# ops' order; alg and wire intra + inter equal the op's own bytes for the phases in AGREE (a comma
# list: the others move more than the spec's figure, README "Parallel configurations"); inter > 0
# for the phases in SPANS (their group spans nodes), 0 for every other phase (all on one host);
# the run's output stays in $tmp/out for the checks after it
layer_bytes() {
	python3 - "$@" >"$tmp/lb" 2>&1 <<'PY' && ok "$1" || bad "$1" "$(cat "$tmp/lb")"
import json, sys
name, path, agree, spans = sys.argv[1:5]
agree, spans = set(filter(None, agree.split(","))), set(filter(None, spans.split(",")))
p = json.load(open(path))["points"][0]
assert p["verdict"] == "PASS", p["verdict"]
b = p["layer"]["bytes"]
names = {"ep_dispatch", "moe_tp_gather", "moe_tp_reduce", "ep_combine", "attn_tp_gather", "world_gather", "world_reduce"}
alias = {"dispatch": "ep_dispatch", "combine": "ep_combine"}
ops = [(alias.get(o["op"], o["op"]), o) for o in p["ops"] if alias.get(o["op"], o["op"]) in names]
assert [ph for ph, _ in ops] == list(b), (list(b), [ph for ph, _ in ops])
assert agree <= set(b) and spans <= set(b), (agree, spans, list(b))
for ph, o in ops:
    x = b[ph]
    assert x["alg_intra"] + x["alg_inter"] > 0 and x["wire_inter"] == x["alg_inter"], (ph, x)
    assert x["wire_intra"] <= x["alg_intra"], (ph, x)
    if ph in agree:
        assert x["alg_intra"] + x["alg_inter"] == o["alg_bytes"], (ph, x, o["alg_bytes"])
        assert x["wire_intra"] + x["wire_inter"] == o["wire_bytes"], (ph, x, o["wire_bytes"])
    assert (x["alg_inter"] > 0) == (ph in spans), (ph, "inter", x)
PY
}

layer "a2a_moe_tp_4" 4 dp=2,tp=2,moe_tp=2,moe_ep=2 -t 16
phases "a2a_moe_tp_4_phases" ep_dispatch moe_tp_gather moe_tp_reduce ep_combine attn_tp_gather
expect "a2a_banner_groups" "parallel dp=2,tp=2,cp=1,sp=1,moe_tp=2,moe_ep=2,moe_comm=a2a"
layer "a2a_vllm_4" 4 dp=2,tp=2,moe_tp=1,moe_ep=4 -t 16
phases "a2a_vllm_4_phases" ep_dispatch ep_combine attn_tp_gather
layer "a2a_moe_tp_only_4" 4 dp=4,tp=1,moe_tp=2,moe_ep=2 -t 16
phases "a2a_moe_tp_only_phases" ep_dispatch moe_tp_gather moe_tp_reduce ep_combine
layer "allgather_4" 4 dp=2,tp=2,moe_tp=1,moe_ep=4 -t 16 --moe-comm allgather
phases "allgather_4_phases" world_gather world_reduce attn_tp_gather
for pad in none zero replicate0; do
	layer "pad_${pad}_uneven_8" 8 dp=2,tp=4,moe_tp=2,moe_ep=4 -t 10 --sp-pad $pad --uneven-tokens 1 --tokens-per-dp 37
done
layer "tp_slices_empty_8" 8 dp=2,tp=4,moe_tp=2,moe_ep=4 --tokens-per-dp 2
layer "fp8_bias_8" 8 dp=2,tp=4,moe_tp=4,moe_ep=2 -t 16 --dtype fp8 --bias 2
layer "int8_special_8" 8 dp=2,tp=4,moe_tp=4,moe_ep=2 -t 16 --dtype int8 --payload special
layer "redundant_experts_8" 8 dp=2,tp=4,moe_tp=2,moe_ep=4 -t 16 --redundant-experts 4 --eplb-load zipf:1.2
layer "allgather_moe_tp_8" 8 dp=2,tp=4,moe_tp=4,moe_ep=2 -t 16 --moe-comm allgather --sp-pad replicate0 --uneven-tokens 1
layer "allgather_ep_8" 8 dp=8,tp=1,moe_tp=1,moe_ep=8 -t 16 --moe-comm allgather
phases "allgather_ep_8_phases" world_gather world_reduce
# MindIE's A3 example (16 ranks, ep_level 1 in its file), and the same in a2a mode
run "mindie_a3_allgather_16" 0 180 intranode -r 16 --mindie-config "$fix" -t 4 --hidden 128 -e 16 -k 4 -n 1 -w 0
expect "mindie_a3_allgather_pass" "verdict: PASS"
run "mindie_a3_a2a_16" 0 180 intranode -r 16 --mindie-config "$fix" --moe-comm a2a -t 4 --hidden 128 -e 16 -k 4 -n 1 -w 0
expect "mindie_a3_a2a_pass" "verdict: PASS"
# --op dispatch times the dispatch side only (the check still runs every phase)
run "op_dispatch" 0 60 intranode -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 $small -t 16 --op dispatch
phases "op_dispatch_phases" ep_dispatch moe_tp_gather
run "json_phases" 0 60 intranode -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 $small -t 16 --json "$tmp/l.json"
python3 - "$tmp/l.json" >"$tmp/out" 2>&1 <<'PY' && ok "json_phases_listed" || bad "json_phases_listed" "$(cat "$tmp/out")"
import json, sys
d = json.load(open(sys.argv[1]))
ops = [o["op"] for o in d["points"][0]["ops"]]
assert ops == ["ep_dispatch", "moe_tp_gather", "moe_tp_reduce", "ep_combine", "attn_tp_gather"], ops
l = d["points"][0]["layer"]
assert l["moe_tokens"] == 64 and l["tokens_per_dp"] == [32, 32], l  # T_d = -t 16 x tp 2; each row enters once
assert len(l["ep_recv_rows"]) == 2 and 0 < l["balancedness"] <= 1, l
assert l["slowest_rank_groups"].startswith("attn_tp="), l
PY
all5=ep_dispatch,moe_tp_gather,moe_tp_reduce,ep_combine,attn_tp_gather
layer_bytes "json_layer_bytes_one_host" "$tmp/l.json" $all5 ""
run "op_dispatch_bytes" 0 60 intranode -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 $small -t 16 --op dispatch --json "$tmp/ld.json"
layer_bytes "op_dispatch_bytes_timed_phases" "$tmp/ld.json" ep_dispatch,moe_tp_gather ""
run "compare_reads_layer_bytes" 0 30 compare "$tmp/l.json" "$tmp/l.json"
run "csv_layer_columns" 0 60 intranode -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 $small -t 16 --csv "$tmp/l.csv"
python3 - "$tmp/l.csv" >"$tmp/out" 2>&1 <<'PY' && ok "csv_layer_columns_read" || bad "csv_layer_columns_read" "$(cat "$tmp/out")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [r["op"] for r in rows] == ["ep_dispatch", "moe_tp_gather", "moe_tp_reduce", "ep_combine", "attn_tp_gather"]
assert all(r["parallel"] == "dp=2,tp=2,cp=1,sp=1,moe_tp=2,moe_ep=2,moe_comm=a2a" and r["moe_tokens"] == "64" for r in rows), rows[0]
for r in rows:  # the row's phase's bytes (one host: inter 0); intra = the op's own bytes here
    assert r["layer_alg_inter"] == "0" and r["layer_wire_inter"] == "0", r
    assert r["layer_alg_intra"] == r["alg_bytes"] and r["layer_wire_intra"] == r["wire_bytes"], r
PY
# --dump: the EP group's tensors under the world rank's folder, then each phase's (README, What --dump DIR writes)
run "dump_a2a" 0 60 intranode -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 $small -t 16 --dump "$tmp/ld"
python3 - "$tmp/ld" >"$tmp/out" 2>&1 <<'PY' && ok "dump_attn_gather_is_the_slices" || bad "dump_attn_gather_is_the_slices" "$(cat "$tmp/out")"
import os, struct, sys
def data(path):  # a .npy file's data bytes (format 1.0: 10-byte preamble with the header length)
    b = open(path, "rb").read()
    return b[10 + struct.unpack("<H", b[8:10])[0]:]
d = sys.argv[1]
for r in range(4):
    names = set(os.listdir(f"{d}/rank{r}"))
    assert {"x.npy", "recv_x.npy", "moe_tp_gathered_x.npy", "combine_x.npy", "combined_x.npy", "attn_tp_gathered_x.npy"} <= names, names
g = data(f"{d}/rank1/attn_tp_gathered_x.npy")
assert g == data(f"{d}/rank0/combined_x.npy") + data(f"{d}/rank1/combined_x.npy"), "rank 1's gathered rows are not ranks 0 and 1's slices"
PY
run "dump_allgather" 0 60 intranode -r 4 --parallel dp=2,tp=2,moe_tp=1,moe_ep=4 --moe-comm allgather $small -t 16 --dump "$tmp/lg"
[ -s "$tmp/lg/rank3/world_gathered_x.npy" ] && [ ! -e "$tmp/lg/rank3/recv_x.npy" ] && ok "dump_allgather_tensors" ||
	bad "dump_allgather_tensors" "$(ls "$tmp/lg/rank3")"
run "json_other_layer" 0 60 intranode -r 4 --parallel dp=2,tp=2,moe_tp=1,moe_ep=4 $small -t 16 --json "$tmp/l2.json"
run "compare_other_layer_refused" 2 30 compare "$tmp/l.json" "$tmp/l2.json"
expect "compare_other_layer_said" "not the same experiment: layer_parallel:"
run "layer_line" 0 60 intranode -r 8 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 $small -t 8 --sp-pad zero --tokens-per-dp 30
expect "layer_line_tokens" "^# layer dp=2,tp=4,cp=1,sp=1,moe_tp=2,moe_ep=4,moe_comm=a2a: 64 tokens enter the MoE layer \\(the 2 attention-DP groups' 60 rows"
expect "layer_line_slowest" "slowest rank [0-7]: attn_tp=\\[[0-9]\\.\\.[0-9]\\] dp=[01] moe_tp=\\{[0-9],[0-9]\\} ep="
expect "layer_bytes_line" "^# layer bytes: ep_dispatch +alg +[0-9.]+K intra +0 inter, wire +[0-9.]+K intra +0 inter \\(all 8 ranks\\)"
expect "layer_bytes_line_last" "^# layer bytes: attn_tp_gather +alg"

# across nodes (internode over loopback TCP): the EP groups span the nodes, the TP groups stay in a node
SUBCOMMAND=internode
nodes="internode --local-nodes --nodes 2"
run "nodes_a2a_2x4" 0 180 $nodes --ranks-per-node 4 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 $small -t 16 --json "$tmp/n.json"
expect "nodes_a2a_2x4_pass" "verdict: PASS"
layer_bytes "nodes_a2a_2x4_bytes_ep_spans" "$tmp/n.json" $all5 ep_dispatch,ep_combine
phases "nodes_a2a_2x4_phases" ep_dispatch moe_tp_gather moe_tp_reduce ep_combine attn_tp_gather
expect "nodes_ep_over_the_link" "^#   link 0->1 ep_dispatch +[0-9.]+K in"
expect "nodes_tp_phase_in_the_node" "^# +0 [^ ]+ +4 moe_tp_gather +[0-9.]+ +[0-9.]+K +0 +[0-9.]+K"
run "nodes_vllm_2x2_fp8" 0 180 $nodes --ranks-per-node 2 --parallel dp=2,tp=2,moe_tp=1,moe_ep=4 $small -t 16 --dtype fp8 --bias 2
expect "nodes_vllm_2x2_fp8_pass" "verdict: PASS"
run "nodes_replicate0_int8_2x4" 0 180 $nodes --ranks-per-node 4 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 $small -t 10 --dtype int8 --sp-pad replicate0 --uneven-tokens 1
expect "nodes_replicate0_int8_2x4_pass" "verdict: PASS"
run "nodes_3x2" 0 180 internode --local-nodes --nodes 3 --ranks-per-node 2 --parallel dp=3,tp=2,moe_tp=2,moe_ep=3 --hidden 256 -e 12 -k 4 -n 2 -w 1 -t 16
expect "nodes_3x2_pass" "verdict: PASS"
run "nodes_mindie_a3_2x8" 0 300 $nodes --ranks-per-node 8 --mindie-config "$fix" --moe-comm a2a $small -t 4
expect "nodes_mindie_a3_2x8_pass" "verdict: PASS"
run "nodes_corrupt_caught" 1 180 $nodes --ranks-per-node 4 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 $small -t 16 --fault corrupt:5
expect "nodes_corrupt_names_rank" "first: rank 5: recv_x"
run "nodes_hang_named" 4 60 $nodes --ranks-per-node 4 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 $small -t 16 --fault hang:5 --timeout 3
expect "nodes_hang_names_rank" "rank 5 made no progress .* in phase fault.hang"
expect "nodes_hang_traffic_names_rank" "likely: rank 5 never arrived anywhere"
run "nodes_allgather_2x4" 0 180 $nodes --ranks-per-node 4 --parallel dp=2,tp=4,moe_tp=4,moe_ep=2 --moe-comm allgather --sp-pad zero --uneven-tokens 1 $small -t 10 --json "$tmp/n.json"
expect "nodes_allgather_2x4_pass" "verdict: PASS"
layer_bytes "nodes_allgather_2x4_bytes_world_spans" "$tmp/n.json" world_reduce,attn_tp_gather world_gather,world_reduce
phases "nodes_allgather_2x4_phases" world_gather world_reduce attn_tp_gather
run "nodes_allgather_3x2" 0 180 internode --local-nodes --nodes 3 --ranks-per-node 2 --parallel dp=3,tp=2,moe_tp=1,moe_ep=6 --moe-comm allgather --sp-pad replicate0 --uneven-tokens 1 --hidden 256 -e 12 -k 4 -n 2 -w 1 -t 10
expect "nodes_allgather_3x2_pass" "verdict: PASS"
run "nodes_mindie_a3_allgather_2x8" 0 300 $nodes --ranks-per-node 8 --mindie-config "$fix" $small -t 4
expect "nodes_mindie_a3_allgather_2x8_pass" "verdict: PASS"
run "nodes_allgather_tp_world_2x4" 0 180 $nodes --ranks-per-node 4 --parallel dp=1,tp=8,moe_tp=2,moe_ep=4 --moe-comm allgather --sp-pad zero --tokens-per-dp 37 $small -t 8
expect "nodes_allgather_tp_world_2x4_pass" "verdict: PASS"
expect "nodes_attn_gather_over_the_link" "^#   link 0->1 attn_tp_gather +[0-9.]+K in"
run "nodes_mindie_pure_tp_2x8" 0 300 $nodes --ranks-per-node 8 --parallel tp=16 --moe-comm allgather $small -t 4
expect "nodes_mindie_pure_tp_2x8_pass" "verdict: PASS"
run "nodes_allgather_corrupt" 1 180 $nodes --ranks-per-node 4 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 --moe-comm allgather $small -t 16 --fault corrupt:5
expect "nodes_allgather_corrupt_named" "first: rank 5: world_gathered_x"
# vLLM's multi-node TP with EP: --tensor-parallel-size 16 --enable-expert-parallel on 2 nodes (the attention group is the world)
run "nodes_vllm_tp16_ep16_2x8" 0 300 $nodes --ranks-per-node 8 --parallel dp=1,tp=16,moe_tp=1,moe_ep=16 $small -t 4
expect "nodes_vllm_tp16_ep16_2x8_pass" "verdict: PASS"
expect "nodes_vllm_tp16_attn_over_the_link" "^#   link 0->1 attn_tp_gather +[0-9.]+K in"
run "nodes_tp_world_moe_tp_fp8_2x4" 0 180 $nodes --ranks-per-node 4 --parallel dp=1,tp=8,moe_tp=2,moe_ep=4 --sp-pad zero --tokens-per-dp 37 --dtype fp8 $small -t 8
expect "nodes_tp_world_moe_tp_fp8_2x4_pass" "verdict: PASS"
# TP groups of whole nodes: members on other nodes over the rail peers (cli/moe_layer_tpnet.c, moe_layer_net.c)
run "nodes_moe_tp_spans_2x2" 0 180 $nodes --ranks-per-node 2 --parallel dp=1,tp=4,moe_tp=4,moe_ep=1 $small -t 16 --json "$tmp/n.json"
expect "nodes_moe_tp_spans_2x2_pass" "verdict: PASS"
layer_bytes "nodes_moe_tp_spans_2x2_bytes" "$tmp/n.json" $all5 moe_tp_gather,moe_tp_reduce,attn_tp_gather
phases "nodes_moe_tp_spans_2x2_phases" ep_dispatch moe_tp_gather moe_tp_reduce ep_combine attn_tp_gather
expect "nodes_moe_tp_gather_over_the_link" "^#   link 0->1 moe_tp_gather +[0-9.]+K in"
expect "nodes_moe_tp_reduce_over_the_link" "^#   link 1->0 moe_tp_reduce +[0-9.]+K in"
expect "nodes_moe_tp_gather_wire_bytes" "^# +0 [^ ]+ +2 moe_tp_gather +[0-9.]+ +[0-9.]+K +[1-9][0-9.]*K +[0-9.]+K"
run "nodes_moe_tp_spans_2x4_fp8" 0 180 $nodes --ranks-per-node 4 --parallel dp=1,tp=8,moe_tp=8,moe_ep=1 $small -t 16 --dtype fp8 --bias 2
expect "nodes_moe_tp_spans_2x4_fp8_pass" "verdict: PASS"
run "nodes_moe_tp_mixed_4x2_int8" 0 240 internode --local-nodes --nodes 4 --ranks-per-node 2 --parallel dp=2,tp=4,moe_tp=4,moe_ep=2 $small -t 10 --dtype int8 --sp-pad replicate0 --uneven-tokens 1
expect "nodes_moe_tp_mixed_4x2_warns_mindie" "^# warning: tp=4 spans 2 nodes of 2 ranks: MindIE allows tp and moe_tp at most the ranks of a node or the world"
expect "nodes_moe_tp_mixed_4x2_int8_pass" "verdict: PASS"
expect "nodes_moe_tp_mixed_ep_over_the_link" "^#   link 0->2 ep_dispatch +[0-9.]+K in"
run "nodes_attn_tp_spans_4x2" 0 240 internode --local-nodes --nodes 4 --ranks-per-node 2 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 $small -t 16 --sp-pad zero --tokens-per-dp 37
expect "nodes_attn_tp_spans_4x2_pass" "verdict: PASS"
expect "nodes_attn_tp_spans_over_the_link" "^#   link 2->3 attn_tp_gather +[0-9.]+K in"
expect "nodes_attn_tp_stays_in_its_group" "^#   link 1->2 attn_tp_gather +0 in"
run "nodes_attn_tp_spans_2x2_moe_tp_in_node" 0 180 $nodes --ranks-per-node 2 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 $small -t 16
expect "nodes_attn_tp_spans_2x2_moe_tp_in_node_pass" "verdict: PASS"
run "nodes_allgather_attn_tp_spans_4x2" 0 240 internode --local-nodes --nodes 4 --ranks-per-node 2 --parallel dp=2,tp=4,moe_tp=1,moe_ep=8 --moe-comm allgather $small -t 16
expect "nodes_allgather_attn_tp_spans_4x2_pass" "verdict: PASS"
run "nodes_moe_tp_spans_rotating" 0 180 $nodes --ranks-per-node 2 --parallel dp=1,tp=4,moe_tp=4,moe_ep=1 $small -t 16 --routing rotating:2 -n 6
expect "nodes_moe_tp_spans_rotating_pass" "verdict: PASS"
run "nodes_moe_tp_block_damaged" 1 180 $nodes --ranks-per-node 2 --parallel dp=1,tp=4,moe_tp=4,moe_ep=1 $small -t 16 --fault bitflip:3:moe_tp_gathered_x
expect "nodes_moe_tp_block_damaged_named" "first: rank 3: moe_tp_gathered_x"
run "nodes_moe_tp_reduced_damaged" 1 180 $nodes --ranks-per-node 2 --parallel dp=1,tp=4,moe_tp=4,moe_ep=1 $small -t 16 --fault bitflip:2:moe_tp_reduced_x
expect "nodes_moe_tp_reduced_damaged_named" "first: rank 2: moe_tp_reduced_x"
shm_before=$(ls /dev/shm | sort)
run "nodes_moe_tp_reduce_hang" 4 60 $nodes --ranks-per-node 2 --parallel dp=1,tp=4,moe_tp=4,moe_ep=1 $small -t 16 --op combine --fault hang:3 --timeout 3
expect "nodes_moe_tp_reduce_hang_named" "rank 1 \\(node 0\\): waiting for a rail peer: tcp: no signal from rank 3 \\(node 1\\).*phase moe_tp_reduce"
[ -z "$(live_ranks)" ] && ok "nodes_moe_tp_reduce_hang_no_orphans" || bad "nodes_moe_tp_reduce_hang_no_orphans" "$(live_ranks)"
[ "$(ls /dev/shm | sort)" = "$shm_before" ] && ok "nodes_moe_tp_reduce_hang_nothing_in_dev_shm" ||
	bad "nodes_moe_tp_reduce_hang_nothing_in_dev_shm" "$(ls /dev/shm)"
# one case in network namespaces joined by a bridge (scripts/netns-cluster.sh) where the machine allows it
cluster_init
if cluster "cluster_moe_tp_spans_2x2" 0 240 2 --ranks-per-node 2 --parallel dp=1,tp=4,moe_tp=4,moe_ep=1 $small -t 16 --timeout 30; then
	expect "cluster_moe_tp_spans_2x2_pass" "verdict: PASS"
	expect "cluster_moe_tp_reduce_over_the_link" "^#   link 0->1 moe_tp_reduce +[0-9.]+K in"
fi
run "nodes_tp_not_whole_nodes" 2 10 internode --local-nodes --nodes 3 --ranks-per-node 4 --parallel dp=3,tp=4,moe_tp=6,moe_ep=2 $small
expect "nodes_tp_not_whole_nodes_said" "moe_tp=6 must be at most the 4 ranks of a node, whole nodes, or the world \\(12\\)"
[ "$(wc -l <"$tmp/out")" -eq 1 ] && ok "nodes_tp_not_whole_nodes_one_line" || bad "nodes_tp_not_whole_nodes_one_line" "$(cat "$tmp/out")"
run "nodes_tp_straddles_nodes" 2 10 internode --local-nodes --nodes 3 --ranks-per-node 4 --parallel dp=4,tp=3,moe_tp=3,moe_ep=4 --hidden 256 -e 12 -k 4 -n 2 -w 1
expect "nodes_tp_straddles_nodes_said" "tp must divide the ranks of a node or be a multiple of them"
[ "$(wc -l <"$tmp/out")" -eq 1 ] && ok "nodes_tp_straddles_nodes_one_line" || bad "nodes_tp_straddles_nodes_one_line" "$(cat "$tmp/out")"
# Ascend's dispatch/combine (--ep-semantics ascend) with moe_tp = 1, as vllm-ascend calls MC2
run "ascend_layer_4" 0 120 intranode -r 4 --parallel dp=2,tp=2,moe_tp=1,moe_ep=4 --ep-semantics ascend $small -t 16
expect "ascend_layer_4_pass" "verdict: PASS"
phases "ascend_layer_4_phases" dispatch combine attn_tp_gather
run "ascend_layer_int8_shared_8" 0 120 intranode -r 8 --parallel dp=2,tp=4,moe_tp=1,moe_ep=8 --ep-semantics ascend --dtype int8 --smooth-scales --shared-experts 2 --shared-expert-ranks 2 --comm-quant int8 --bias 1 --sp-pad replicate0 --uneven-tokens 1 --payload narrow --hidden 256 -e 12 -k 4 -n 2 -w 1 -t 16 --json "$tmp/a.json"
expect "ascend_layer_int8_shared_8_pass" "verdict: PASS"
layer_bytes "ascend_layer_int8_shared_8_bytes" "$tmp/a.json" ep_dispatch,ep_combine,attn_tp_gather ""
run "ascend_layer_output_damaged" 1 60 intranode -r 4 --parallel dp=2,tp=2,moe_tp=1,moe_ep=4 --ep-semantics ascend $small -t 16 --fault bitflip:2:x
expect "ascend_layer_output_damaged_named" "first: rank 2: x\\["
# with moe_tp > 1 Ascend's own MoE-TP stage (cli/ascend_tp.c; tests/ascend_tp_test.sh has the rest)
run "ascend_moe_tp_4" 0 120 intranode -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 --ep-semantics ascend $small -t 16 --json "$tmp/a.json"
expect "ascend_moe_tp_4_pass" "verdict: PASS"
layer_bytes "ascend_moe_tp_4_bytes" "$tmp/a.json" $all5 ""
phases "ascend_moe_tp_4_phases" ep_dispatch moe_tp_gather moe_tp_reduce ep_combine attn_tp_gather
# in allgather mode there is no EP dispatch or combine: the deepep layer's phases (tests/layer_cached_test.sh has the rest)
run "ascend_allgather_moe_tp_4" 0 60 intranode -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 --moe-comm allgather --ep-semantics ascend $small -t 16
expect "ascend_allgather_moe_tp_4_pass" "verdict: PASS"
phases "ascend_allgather_moe_tp_4_phases" world_gather world_reduce attn_tp_gather

# low-latency (DeepEP's decode kernels) with moe_tp = 1: the EP group is the world, slices dispatched
SUBCOMMAND=low-latency
run "ll_2x2" 0 120 low-latency -r 4 --parallel dp=2,tp=2,moe_tp=1,moe_ep=4 $small -t 16
expect "ll_2x2_pass" "verdict: PASS"
phases "ll_2x2_phases" dispatch combine dispatch+combine attn_tp_gather
run "ll_fp8_zero_pad_8" 0 120 low-latency -r 8 --parallel dp=2,tp=4,moe_tp=1,moe_ep=8 $small -t 16 --dtype fp8 --uneven-tokens 1 --sp-pad zero
expect "ll_fp8_zero_pad_8_pass" "verdict: PASS"
run "ll_replicate0_zero_copy_8" 0 120 low-latency -r 8 --parallel dp=2,tp=4,moe_tp=1,moe_ep=8 $small -t 16 --sp-pad replicate0 --uneven-tokens 1 --tokens-per-dp 37 --zero-copy
expect "ll_replicate0_zero_copy_8_pass" "verdict: PASS"
run "ll_nodes_2x4" 0 180 low-latency --local-nodes --nodes 2 --ranks-per-node 4 --parallel dp=2,tp=4,moe_tp=1,moe_ep=8 $small -t 16 --dtype fp8
expect "ll_nodes_2x4_pass" "verdict: PASS"
# an attention-TP group of whole nodes: its members on other nodes over low-latency's full mesh (cli/attn_gather.c)
run "ll_nodes_attn_tp_spans_2x2" 0 180 low-latency --local-nodes --nodes 2 --ranks-per-node 2 --parallel dp=1,tp=4,moe_tp=1,moe_ep=4 $small -t 16 --json "$tmp/ll.json"
expect "ll_nodes_attn_tp_spans_2x2_pass" "verdict: PASS"
# a low-latency message's 16-byte header is the op's, not the spec's dispatch figure
layer_bytes "ll_nodes_attn_tp_spans_2x2_bytes" "$tmp/ll.json" ep_combine,attn_tp_gather ep_dispatch,ep_combine,attn_tp_gather
expect "ll_nodes_attn_tp_over_the_link" "^#   link 0->1 attn_tp_gather +[0-9.]+K in"
run "ll_nodes_attn_tp_spans_4x2_fp8" 0 240 low-latency --local-nodes --nodes 4 --ranks-per-node 2 --parallel dp=2,tp=4,moe_tp=1,moe_ep=8 $small -t 16 --dtype fp8 --sp-pad replicate0 --uneven-tokens 1
expect "ll_nodes_attn_tp_spans_4x2_fp8_pass" "verdict: PASS"
expect "ll_nodes_attn_tp_stays_in_its_group" "^#   link 1->2 attn_tp_gather +0 in"
run "ll_nodes_attn_tp_damaged" 1 180 low-latency --local-nodes --nodes 2 --ranks-per-node 2 --parallel dp=1,tp=4,moe_tp=1,moe_ep=4 $small -t 16 --fault bitflip:3:combined_x
expect "ll_nodes_attn_tp_damaged_named" "first: rank 3: combined_x"
run "ll_nodes_tp_straddles_refused" 2 10 low-latency --local-nodes --nodes 3 --ranks-per-node 4 --parallel dp=4,tp=3,moe_tp=1,moe_ep=12 --hidden 256 -e 12 -k 4 -n 2 -w 1
expect "ll_nodes_tp_straddles_said" "tp must divide the ranks of a node or be a multiple of them"
run "ll_combined_damaged" 1 60 low-latency -r 4 --parallel dp=2,tp=2,moe_tp=1,moe_ep=4 $small -t 16 --fault bitflip:1:combined_x
expect "ll_combined_damaged_named" "first: rank 1: combined_x"
run "ll_allgather_refused" 2 10 low-latency -r 4 --parallel dp=2,tp=2,moe_tp=1,moe_ep=4 --moe-comm allgather $small -t 16
expect "ll_allgather_refused_said" "in low-latency mode the layer runs all-to-all"
# moe_tp > 1 in low-latency mode: tests/ll_layer_test.sh
SUBCOMMAND=intranode

# soak (fresh inputs every pass) and rotating routing: the layer rebuilds its slices and references
run "soak_a2a_8" 0 120 intranode -r 8 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 $small -t 10 --soak 8 --uneven-tokens 1 --sp-pad replicate0
expect "soak_a2a_8_passes" "^# soak: 8 passes .*: 0 failed"
run "soak_fault_found" 1 120 intranode -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 $small -t 16 --soak 6 --fault corrupt:1@3
expect "soak_fault_found_pass" "^# soak: first failure in pass 3 \\(seed 3\\): rank 1: recv_x"
for m in "intranode -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2" "intranode -r 4 --parallel dp=2,tp=2,moe_tp=1,moe_ep=4 --moe-comm allgather" "low-latency -r 4 --parallel dp=2,tp=2,moe_tp=1,moe_ep=4"; do
	run "trace_${m%% *}" 0 120 $m $small -t 16 -n 4 --routing trace:cases/synthetic-e16-k4.trace:2
	expect "trace_${m%% *}_pass" "verdict: PASS"
done
run "trace_too_short" 2 10 intranode -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 $small --tokens-per-dp 100000 --routing trace:cases/synthetic-e16-k4.trace
expect "trace_too_short_said" "a step has [0-9]+ tokens, the run asks for 4 ranks x 50000 tokens"
run "rotating_nodes_2x4" 0 180 internode --local-nodes --nodes 2 --ranks-per-node 4 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 $small -t 16 --routing rotating:2 -n 6
expect "rotating_nodes_2x4_pass" "verdict: PASS"
run "rotating_allgather_nodes" 0 180 internode --local-nodes --nodes 2 --ranks-per-node 2 --parallel dp=2,tp=2,moe_tp=1,moe_ep=4 --moe-comm allgather $small -t 16 --routing rotating:1 -n 4
expect "rotating_allgather_nodes_pass" "verdict: PASS"

# a damaged output is caught: the received rows of one rank, in the layer's first phase
run "corrupt_caught" 1 60 intranode -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 $small -t 16 --fault corrupt:1
expect "corrupt_caught_said" "WRONG DATA"
run "hang_named" 4 60 intranode -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 $small -t 16 --fault hang:2 --timeout 2
expect "hang_named_rank" "rank 2"
# the per-pair traffic of the layer's EP dispatch, in world ranks: rank 2's EP
# group is {0, 2}, so only the pairs 0<->2 are suspect (none with ranks 1, 3)
expect "hang_traffic_in_world_ranks" "by traffic: rank 2 never arrived anywhere: its traffic to rank 0 and from rank 0 is missing"
grep -qE "^#  +2 -> (1|3) " "$tmp/out" && bad "hang_traffic_only_group_pairs" "a pair across EP groups listed" \
	|| ok "hang_traffic_only_group_pairs"

# refused with one line, exit 2, nothing spawned
run "sp_pad_plain_ep" 2 10 intranode -r 4 $small --parallel dp=4,tp=1,moe_ep=4 --sp-pad zero
expect "sp_pad_plain_ep_said" "--sp-pad applies to attention-TP slices; this configuration is plain EP"
run "allgather_fp8" 2 10 intranode -r 4 $small --parallel dp=2,tp=2,moe_tp=1,moe_ep=4 --moe-comm allgather --dtype fp8
expect "allgather_fp8_said" "allgather moves bf16 rows and adds no bias"
run "layer_rank_sweep" 2 10 intranode -r 4,8 $small --parallel dp=2,tp=2,moe_tp=1,moe_ep=4
run "experts_not_moe_ep_multiple" 2 10 intranode -r 8 --hidden 256 -k 2 -e 6 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4
expect "experts_said" "--num-experts 6 is not a multiple of moe_ep 4"
[ -z "$(live_ranks)" ] && ok "no_orphans" || bad "no_orphans" "$(live_ranks)"
finish moe_layer_test.sh
