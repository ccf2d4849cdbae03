#!/bin/sh
# golden_layer_nodes_test.sh - `epbench golden internode --nodes N --ranks-per-node P --parallel ...`: a MoE
# layer across nodes. The manifest records the node layout; DeepEP's layer in allgather mode and Ascend's
# (moe_tp 1, also with an attention-TP group of whole nodes, and with its MoE-TP stage, also with MoE-TP and
# attention-TP groups of whole nodes, with int8 combine transport and with shared experts) have the tensors of
# the same world on one host; DeepEP's a2a layer whose MoE-EP groups span nodes
# has internode's EP semantics in each group (num_tokens_per_rdma_rank, combine per node then across, as the
# run's checks), also with MoE-TP groups of whole nodes (2 x 2 moe_tp 4; 4 x 2 moe_tp 4 moe_ep 2: one
# rank of each MoE-EP group per node): golden equals the --dump of the same job run across emulated nodes, verify internode passes
# it and names the first wrong phase of a flipped element; what stays refused is said in one line.
# Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=internode
. "$(dirname "$0")/lib.sh"
cluster_init

# py ARGS...: numpy's python on a script from stdin, output in $tmp/out
py() { python3 - "$@" >"$tmp/out" 2>&1; }


S="-t 16 --hidden 64 -e 8 -k 3"
i=0
for args in "--parallel dp=2,tp=2,moe_tp=1,moe_ep=4" \
	"--parallel dp=2,tp=2,moe_tp=2,moe_ep=2 --uneven-tokens 1" \
	"--parallel dp=2,tp=2,moe_tp=1,moe_ep=4 --moe-comm allgather --sp-pad zero" \
	"--parallel dp=2,tp=2,moe_tp=1,moe_ep=4 --ep-semantics ascend --dtype int8 -k 2" \
	"--parallel dp=2,tp=2,moe_tp=1,moe_ep=4 --hidden 256 --dtype fp8 --bias 1" \
	"--parallel dp=2,tp=2,moe_tp=2,moe_ep=2 --ep-semantics ascend --dtype int8 -k 2" \
	"--parallel dp=1,tp=4,moe_tp=1,moe_ep=4 --ep-semantics ascend --dtype int8 -k 2 --uneven-tokens 1" \
	"--parallel dp=1,tp=4,moe_tp=4,moe_ep=1 --ep-semantics ascend --dtype int8 -k 2" \
	"--parallel dp=2,tp=2,moe_tp=4,moe_ep=1 --uneven-tokens 1" \
	"--parallel dp=2,tp=2,moe_tp=2,moe_ep=2 --ep-semantics ascend --dtype int8 -k 2 --smooth-scales --comm-quant int8 --uneven-tokens 1" \
	"--parallel dp=2,tp=2,moe_tp=2,moe_ep=2 --ep-semantics ascend -e 2 -k 1 --shared-experts 1 --shared-expert-ranks 1 --comm-quant int8 --bias 1"; do
	i=$((i + 1))
	A="internode --nodes 2 --ranks-per-node 2 $S $args"
	run "golden_$i" 0 60 golden $A --out "$tmp/g$i" || continue
	cluster "dump_$i" 0 90 2 --ranks-per-node 2 $S $args -n 1 -w 0 --timeout 20 --dump "$tmp/d$i" || continue
	same_tensors "golden_equals_internode_dump_$i" "$tmp/g$i" "$tmp/d$i" common
	case "$args" in *ascend*) sem="--ep-semantics ascend" ;; *) sem="" ;; esac
	run "verify_golden_$i" 0 60 verify internode "$tmp/g$i" $sem
	expect "verify_checked_everything_$i" "^# not checked \(absent\): nothing"
done
py "$tmp/g1/manifest.json" <<'PY' && ok "manifest_node_layout" || bad "manifest_node_layout" "see above"
import json, sys
m = json.load(open(sys.argv[1]))
l = m["layer"]
assert m["subcommand"] == "internode" and m["shape"]["ranks_per_node"] == 2, m["shape"]
assert (l["nodes"], l["ranks_per_node"]) == (2, 2) and l["groups"][3].endswith(" node=1"), l
ph = {(t["rank"], t["name"]): t["phase"] for t in m["tensors"]}
assert ph[(3, "num_tokens_per_rdma_rank")] == "ep_dispatch", ph
PY
# internode's combine (per node, then across) differs from one host's on these bytes: golden follows the job
run "golden_one_host" 0 60 golden intranode -r 4 $S --parallel dp=2,tp=2,moe_tp=1,moe_ep=4 --num-groups 2 \
	--num-topk-groups 2 --out "$tmp/one"
cmp -s "$tmp/one/rank3/combined_x.npy" "$tmp/g1/rank3/combined_x.npy" &&
	skipped "internode_combine_differs" "these bytes round alike on one host" || ok "internode_combine_differs"
cp -r "$tmp/g1" "$tmp/w1"
py "$tmp/w1/rank2/combined_x.npy" <<'PY'
import numpy as np, sys
a = np.load(sys.argv[1]); a[3, 5] ^= 1; np.save(sys.argv[1], a)
PY
run "verify_flip_fails" 1 60 verify internode "$tmp/w1"
expect "verify_flip_named" "^# first wrong phase ep_combine: rank 2: combined_x\[3\]\[5\]"

# DeepEP's MoE-TP groups of whole nodes with MoE-EP groups across nodes (one rank per node): 4 x 2
A="internode --nodes 4 --ranks-per-node 2 $S --parallel dp=4,tp=2,moe_tp=4,moe_ep=2"
if run "golden_moe_tp_whole_nodes_4x2" 0 60 golden $A --out "$tmp/g42" &&
	cluster "dump_moe_tp_whole_nodes_4x2" 0 120 4 --ranks-per-node 2 $S --parallel dp=4,tp=2,moe_tp=4,moe_ep=2 \
		-n 1 -w 0 --timeout 20 --dump "$tmp/d42"; then
	same_tensors "golden_equals_internode_dump_moe_tp_whole_nodes_4x2" "$tmp/g42" "$tmp/d42" common
	run "verify_golden_moe_tp_whole_nodes_4x2" 0 60 verify internode "$tmp/g42"
	expect "verify_checked_everything_moe_tp_whole_nodes_4x2" "^# not checked \(absent\): nothing"
fi
# ... and (case 9, 2 x 2) a flipped element of the MoE-TP reduce is named in its phase
cp -r "$tmp/g9" "$tmp/w9"
py "$tmp/w9/rank2/moe_tp_reduced_x.npy" <<'PY'
import numpy as np, sys
a = np.load(sys.argv[1]); a[0, 1] ^= 1; np.save(sys.argv[1], a)
PY
run "verify_moe_tp_whole_nodes_flip_fails" 1 60 verify internode "$tmp/w9"
expect "verify_moe_tp_whole_nodes_flip_named" "moe_tp_reduce.*rank 2: moe_tp_reduced_x"
# still refused: one line, exit 2, nothing written
run "golden_layer_mixed_refused" 2 10 golden mixed -r 4 $S --parallel dp=2,tp=2,moe_tp=1,moe_ep=4 --out "$tmp/x"
expect "golden_layer_mixed_named" "MoE layer is written for intranode, internode and low-latency"
# Ascend's MoE-TP stage across nodes (case 6): a flipped element of the MoE-TP reduce is named in its phase
cp -r "$tmp/g6" "$tmp/w6"
py "$tmp/w6/rank1/moe_tp_reduced_x.npy" <<'PY'
import numpy as np, sys
a = np.load(sys.argv[1]); a[0, 1] ^= 1; np.save(sys.argv[1], a)
PY
run "verify_ascend_tp_flip_fails" 1 60 verify internode "$tmp/w6" --ep-semantics ascend
expect "verify_ascend_tp_flip_named" "moe_tp_reduce.*rank 1: moe_tp_reduced_x"
run "golden_ascend_shared_ranks_fill_moe_ep_refused" 2 10 golden internode --nodes 2 --ranks-per-node 2 $S \
	--parallel dp=2,tp=2,moe_tp=2,moe_ep=2 --ep-semantics ascend --shared-experts 1 --shared-expert-ranks 2 -k 2 --out "$tmp/x"
expect "golden_ascend_shared_ranks_fill_moe_ep_named" "--shared-expert-ranks 2 leaves no MoE rank of moe_ep 2"
[ ! -e "$tmp/x" ] && ok "nothing_written_when_refused" || bad "nothing_written_when_refused" "left $tmp/x"
[ -z "$(live_ranks)" ] && ok "no_rank_left" || bad "no_rank_left" "$(live_ranks)"
finish golden_layer_nodes_test.sh
