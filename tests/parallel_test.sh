#!/bin/sh
# parallel_test.sh - parallel configurations (--parallel, --mindie-config): the groups of
# parallel-semantics.md section 1 rank by rank (`epbench groups`), MindIE's defaults and checks
# (one line, exit 2), the MindIE config file (tests/fixtures/mindie-a3-16.json is the layout of
# MindIE's documented A3 example), and runs: plain EP runs, every other shape is refused (not built).
# Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=groups
. "$(dirname "$0")/lib.sh"
fix="$lib_here/fixtures/mindie-a3-16.json"

# the worked example of section 1: W=16, dp=2, tp=8, moe_tp=4, moe_ep=4
run "a3_groups" 0 10 groups -r 16 --parallel dp=2,tp=8,moe_tp=4,moe_ep=4 --ranks-per-node 8
expect "a3_attn_tp" "^# attn-TP groups: \{0,1,2,3,4,5,6,7\} \{8,9,10,11,12,13,14,15\}$"
expect "a3_attn_dp" "^# attn-DP groups: \{0,8\}\* \{1,9\}\* \{2,10\}\* \{3,11\}\* \{4,12\}\* \{5,13\}\* \{6,14\}\* \{7,15\}\*$"
expect "a3_moe_tp" "^# MoE-TP groups: \{0,1,2,3\} \{4,5,6,7\} \{8,9,10,11\} \{12,13,14,15\}$"
expect "a3_moe_ep" "^# MoE-EP groups: \{0,4,8,12\}\* \{1,5,9,13\}\* \{2,6,10,14\}\* \{3,7,11,15\}\*$"
expect "a3_rank8_banner" "^  rank 8 +attn_tp=\[8\.\.15\] dp=1 moe_tp=\[8\.\.11\] ep=2/\{0,4,8,12\}$"
expect "a3_rank13" "^  rank 13 +attn_tp=\[8\.\.15\] dp=1 moe_tp=\[12\.\.15\] ep=3/\{1,5,9,13\}$"
# keys in any order, and MindIE's defaults: tp unset is the world, moe_tp unset is tp, moe_ep unset is 1
run "any_order" 0 10 groups -r 16 --parallel moe_ep=4,moe_tp=4,tp=8,dp=2
expect "any_order_same" "^# 16 ranks on one host: dp=2,tp=8,cp=1,sp=1,moe_tp=4,moe_ep=4,moe_comm=a2a$"
run "defaults" 0 10 groups -r 8 --parallel dp=1
expect "defaults_said" "dp=1,tp=8,cp=1,sp=1,moe_tp=8,moe_ep=1,moe_comm=a2a"
# vLLM's TP8+DP2 with expert parallelism: moe_tp=1, moe_ep=16 (MoE TP absorbed into EP)
run "vllm_tp8_dp2_ep" 0 10 groups -r 16 --parallel dp=2,tp=8,moe_tp=1,moe_ep=16
expect "vllm_ep_is_world" "^# MoE-EP groups: \{0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\}$"

# MindIE's config.json: its ModelConfig[0] keys and ep_level 1 (allgather); --parallel overrides key by key
run "mindie_file" 0 10 groups -r 16 --mindie-config "$fix"
expect "mindie_file_keys" "dp=2,tp=8,cp=1,sp=1,moe_tp=4,moe_ep=4,moe_comm=allgather from --mindie-config"
run "mindie_override" 0 10 groups -r 16 --mindie-config "$fix" --parallel moe_tp=2,moe_ep=8 --moe-comm a2a
expect "mindie_override_keys" "dp=2,tp=8,cp=1,sp=1,moe_tp=2,moe_ep=8,moe_comm=a2a"
run "mindie_world_mismatch" 2 10 groups -r 8 --mindie-config "$fix"
expect "mindie_world_mismatch_said" "worldSize 16 \(from --mindie-config '.*'\) is not the 8 ranks launched"
echo '{"BackendConfig": {"ModelDeployConfig": {}}}' >"$tmp/nomc.json"
run "mindie_no_modelconfig" 2 10 groups -r 8 --mindie-config "$tmp/nomc.json"
expect "mindie_no_modelconfig_said" "has no BackendConfig.ModelDeployConfig.ModelConfig\[0\]"
echo 'worldSize: 16' >"$tmp/notjson.json"
run "mindie_not_json" 2 10 groups -r 16 --mindie-config "$tmp/notjson.json"
expect "mindie_not_json_said" "is not JSON"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); d['BackendConfig']['ModelDeployConfig']['ModelConfig'][0]['tp']='8'; json.dump(d, open(sys.argv[2],'w'))" "$fix" "$tmp/strtp.json"
run "mindie_key_not_number" 2 10 groups -r 16 --mindie-config "$tmp/strtp.json"
expect "mindie_key_not_number_said" "ModelConfig\[0\].tp must be -1 \(unset\) or a whole number"

# MindIE's checks, one line each, exit 2
run "dp_tp_not_world" 2 10 groups -r 8 --parallel dp=2,tp=2
expect "dp_tp_not_world_said" "World size must equal to attention's dp_size \* attention's cp_size \* attention's tp_size: dp=2 \* cp=1 \* tp=2 != 8 ranks"
run "cp_and_dp" 2 10 groups -r 8 --parallel dp=2,cp=2,tp=2
expect "cp_and_dp_said" "cannot support context parallel and data parallel simultaneously: cp=2, dp=2"
run "sp_not_tp" 2 10 groups -r 8 --parallel dp=2,tp=4,sp=2
expect "sp_not_tp_said" "sp must equal tp: sp=2, tp=4"
run "moe_not_world" 2 10 groups -r 8 --parallel dp=2,tp=4,moe_tp=2,moe_ep=2
expect "moe_not_world_said" "moe_ep \* moe_tp must equal the world size: moe_ep=2 \* moe_tp=2 != 8 ranks"
# the issue's own `--parallel tp=4,moe_ep=4` on 4 ranks: moe_tp takes tp (MindIE), so the line says what fits
run "moe_tp_default" 2 10 intranode -r 4 --parallel tp=4,moe_ep=4 --ep-semantics ascend
expect "moe_tp_default_hint" "moe_ep=4 \* moe_tp=4 != 4 ranks \(moe_tp unset takes tp, as MindIE's does: give moe_tp=1\)$"
run "tp_across_nodes" 2 10 groups -r 12 --parallel dp=2,tp=6,moe_tp=6,moe_ep=2 --ranks-per-node 4
expect "tp_across_nodes_said" "tp=6 and moe_tp=6 must be at most the 4 ranks of a node, whole nodes, or the world \(12\)"
run "tp_whole_nodes" 0 10 groups -r 16 --parallel dp=2,tp=8,moe_tp=4,moe_ep=4 --ranks-per-node 4
run "unknown_key" 2 10 groups -r 8 --parallel dp=8,pp=2
expect "unknown_key_said" "invalid --parallel 'pp=2': unknown key"
run "key_twice" 2 10 groups -r 8 --parallel dp=8,dp=8
run "key_zero" 2 10 groups -r 8 --parallel dp=0

# runs: plain EP runs the intranode variant; other configurations run their MoE layer (tests/moe_layer_test.sh);
# what the layer does not run yet is refused before spawning
SUBCOMMAND=intranode
run "pure_ep_runs" 0 60 intranode -r 4 -t 64 --hidden 256 -e 8 -k 2 -n 2 -w 1 --parallel dp=4,tp=1,moe_ep=4
expect "pure_ep_banner" "^# intranode: parallel dp=4,tp=1,cp=1,sp=1,moe_tp=1,moe_ep=4,moe_comm=a2a \(rank 0: attn_tp=\{0\} dp=0 moe_tp=\{0\} ep=0/\[0\.\.3\]\)"
expect "pure_ep_checked" "verdict: PASS"
SUBCOMMAND=internode
run "layer_tp_straddling_nodes_refused" 2 10 internode --local-nodes --nodes 3 --ranks-per-node 4 -t 64 --hidden 256 -e 12 -k 2 --parallel dp=4,tp=3,moe_tp=3,moe_ep=4
expect "layer_tp_straddling_nodes_said" "tp must divide the ranks of a node or be a multiple of them \(a group that spans nodes holds whole nodes\)"
SUBCOMMAND=intranode
run "mindie_a3_on_8_refused" 2 10 intranode -r 8 --mindie-config "$fix"
[ -z "$(live_ranks)" ] && ok "refusals_spawn_nothing" || bad "refusals_spawn_nothing" "$(live_ranks)"
finish parallel_test.sh
