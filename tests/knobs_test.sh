#!/bin/sh
# knobs_test.sh - deployment knobs: the environment variables DeepEP-Ascend and SGLang read
# (cli/deploy_env.c), --limits profiles (cli/limits.c) and `epbench plan` (cli/plan.c).
# Every A2 rule is shown to fire with its source named, a too-small HCCL_BUFFSIZE with its
# shortfall, the command line winning over the environment, --warn-only, and plan's JSON.
# Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=intranode
. "$(dirname "$0")/lib.sh"

small="-r 2 -t 32 --hidden 256 -e 8 -k 2 -n 1 -w 0"
ll="-t 16 --hidden 512 -e 8 -k 2 -n 1 -w 0"
A2G="sgl-kernel-npu python/deep_ep/doc/A2_DEEPEP.md"
OPD="aclnnMoeDistributeDispatch"
PAIR="HCCL_INTRA_PCIE_ENABLE=1 HCCL_INTRA_ROCE_ENABLE=0"

# erun NAME WANT "VAR=V ..." ARGS...: epbench ARGS with those environment variables must exit WANT
erun() {
	name=$1 want=$2 vars=$3; shift 3
	# shellcheck disable=SC2086
	env $vars timeout -k 2 60 "$EPBENCH" "$@" >"$tmp/out" 2>&1
	got=$?
	if [ "$got" -eq "$want" ]; then ok "$name"; return 0; fi
	bad "$name" "exit $got, want $want ($vars epbench $*)"
	return 1
}
# json_is NAME FILE EXPR: a Python expression over the JSON document d holds
json_is() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert $3, d" "$2" 2>"$tmp/out" && ok "$1" || bad "$1" "$3"; }

# ---- the environment: each variable sets its option; the command line wins --------------
erun env_int8_runs 0 "DEEP_NORMAL_MODE_USE_INT8_QUANT=1" intranode $small --json "$tmp/i8.json"
expect env_int8_banner "environment: DEEP_NORMAL_MODE_USE_INT8_QUANT=1: --dtype int8"
json_is env_int8_json "$tmp/i8.json" "d['traffic']['dtype'] == 'int8' and 'DEEP_NORMAL_MODE_USE_INT8_QUANT=1' in d['provenance']['environment']"
erun env_cmdline_wins 0 "DEEP_NORMAL_MODE_USE_INT8_QUANT=1" intranode $small --dtype bf16 --json "$tmp/cl.json"
json_is env_cmdline_wins_json "$tmp/cl.json" "d['traffic']['dtype'] == 'bf16' and 'ignored: --dtype on the command line' in d['provenance']['environment']"
erun env_token_nums_prefix 0 "MOE_EXPERT_TOKEN_NUMS_TYPE=0" intranode $small --json "$tmp/tn.json"
json_is env_token_nums_json "$tmp/tn.json" "d['traffic']['expert_counts'] == 'prefix'"
erun env_bf16_dispatch_off_is_fp8 0 "SGLANG_DEEPEP_BF16_DISPATCH=0" low-latency -r 2 $ll --json "$tmp/fp8.json"
json_is env_bf16_dispatch_json "$tmp/fp8.json" "d['traffic']['dtype'] == 'fp8'"
erun env_int8_not_in_low_latency 0 "DEEP_NORMAL_MODE_USE_INT8_QUANT=1" low-latency -r 2 $ll
expect env_int8_not_applied "DEEP_NORMAL_MODE_USE_INT8_QUANT=1 not applied"
erun env_no_json_key_when_unset 0 "" intranode $small --json "$tmp/none.json"
json_is env_none_json "$tmp/none.json" "d['provenance']['environment'] is None"
# EPBENCH_COPY_PROBE (lib.sh sets it off): the host line says so, the copy figure is 0; the command line wins;
# a --min-copy gate measures anyway and must fire
erun copy_probe_off_by_env 0 "EPBENCH_COPY_PROBE=off" intranode $small --json "$tmp/cp.json"
expect copy_probe_off_said "memcpy not measured \(--copy-probe off or EPBENCH_COPY_PROBE=off\)"
json_is copy_probe_off_json "$tmp/cp.json" "d['host']['copy_gbs'] == 0 and d['provenance']['environment'] is None"
erun copy_probe_command_line_wins 0 "EPBENCH_COPY_PROBE=off" intranode $small --copy-probe on
expect copy_probe_measured "memcpy [0-9.]+ GB/s with [0-9]+ thread"
erun copy_probe_min_copy_measures 5 "EPBENCH_COPY_PROBE=off" intranode $small --min-copy dispatch=100000
expect copy_probe_min_copy_fires "below the limit of 100000% \(--min-copy\)"
erun copy_probe_bad_value 2 "EPBENCH_COPY_PROBE=maybe" intranode $small
expect copy_probe_bad_value_said "environment EPBENCH_COPY_PROBE='maybe': want on or off"
for v in "DEEP_NORMAL_MODE_USE_INT8_QUANT=2" "SGLANG_DEEPEP_BF16_DISPATCH=yes" "MOE_EXPERT_TOKEN_NUMS_TYPE=2"; do
	erun "env_refused_${v%%=*}" 2 "$v" intranode $small
	expect "env_refused_names_${v%%=*}" "environment ${v%%=*}='${v#*=}': want"
done

# ---- --limits ascend-a2: every rule of the A2 guide and the operator, refused with its source --
erun a2_node_of_8 2 "" intranode -r 9 -t 32 --hidden 256 -e 18 -k 2 --limits ascend-a2
expect a2_node_of_8_source "an A2 node holds 8 ranks .*$A2G"
erun a2_normal_8000 2 "" intranode -r 8 -t 8001 --hidden 256 -e 16 -k 2 --limits ascend-a2
expect a2_normal_8000_source "up to 8000 tokens per rank \[$A2G\]: 8001 tokens"
erun a2_normal_nodes_4096 2 "$PAIR" internode --local-nodes --nodes 2 --ranks-per-node 2 -t 4097 --hidden 256 -e 16 -k 2 --limits ascend-a2
expect a2_normal_nodes_4096_source "across nodes: up to 4096 tokens per rank \[$A2G\]"
erun a2_ll_512 2 "" low-latency -r 2 -t 513 --hidden 512 -e 8 -k 2 --limits ascend-a2
expect a2_ll_512_source "up to 512 tokens per rank \[$A2G\]: 513"
erun a2_int8_nodes 2 "$PAIR" internode --local-nodes --nodes 2 --ranks-per-node 2 -t 32 --hidden 256 -e 16 -k 2 --dtype int8 --limits ascend-a2
expect a2_int8_nodes_source "no int8 quantisation .* \[$A2G\]"
erun a2_expansion_mode 2 "HCCL_OP_EXPANSION_MODE=AIV" intranode $small --limits ascend-a2
expect a2_expansion_mode_source "HCCL_OP_EXPANSION_MODE must be unset on A2 \[$A2G\]"
erun a2_intra_pair 2 "HCCL_INTRA_PCIE_ENABLE=1" internode --local-nodes --nodes 2 --ranks-per-node 2 -t 32 --hidden 256 -e 16 -k 2 --limits ascend-a2
expect a2_intra_pair_source "HCCL_INTRA_PCIE_ENABLE=1 and HCCL_INTRA_ROCE_ENABLE=0 are required \[$A2G\]: .*ROCE_ENABLE=\(unset\)"
erun a2_servers 2 "$PAIR" low-latency --local-nodes --nodes 3 --ranks-per-node 1 -t 16 --hidden 512 -e 12 -k 2 --limits ascend-a2
expect a2_servers_source "serverNum 2, 4 or 8 \[.*$OPD"
erun a2_hidden 2 "" low-latency -r 2 -t 16 --hidden 7200 -e 8 -k 2 --limits ascend-a2
expect a2_hidden_source "H in \(0, 7168\] .*$OPD.*--hidden 7200"
erun a2_topk 2 "" intranode --ep-semantics ascend -r 2 -t 16 --hidden 512 -e 32 -k 17 --limits ascend-a2
expect a2_topk_source "0 < K <= 16 \[.*$OPD"
erun a2_buffsize_short 2 "HCCL_BUFFSIZE=100" low-latency -r 8 -t 512 --hidden 7168 -e 256 -k 8 --limits ascend-a2
expect a2_buffsize_shortfall "HCCL_BUFFSIZE=100 MB is 800 MB short of the 900 MB the A2 formula needs"
erun a2_buffsize_enough 0 "HCCL_BUFFSIZE=1024" low-latency -r 8 -t 16 --hidden 512 -e 8 -k 2 -n 1 -w 0 --limits ascend-a2
erun a2_buffsize_malformed 2 "HCCL_BUFFSIZE=12MB" low-latency -r 2 $ll --limits ascend-a2
expect a2_buffsize_malformed_names "environment HCCL_BUFFSIZE='12MB'"
erun a2_advice_fewer_than_8 0 "" intranode $small --limits ascend-a2
expect a2_advice_line "^# warning: limits ascend-a2 \(advice\): one A2 node runs 8 ranks"
erun a2_warn_only 0 "HCCL_OP_EXPANSION_MODE=AIV" intranode $small --limits ascend-a2 --warn-only
expect a2_warn_only_line "^# warning: limits ascend-a2 \(warn only\): HCCL_OP_EXPANSION_MODE must be unset"
[ "$(grep -c "^# warning: limits" "$tmp/out")" -eq 2 ] && ok a2_warn_lines_once || bad a2_warn_lines_once "want the advice and the rule, once each"
expect a2_warn_only_ran "verdict: PASS"
erun warn_only_needs_limits 2 "" intranode $small --warn-only
erun limits_unknown_profile 2 "" intranode $small --limits ascend-a5
expect limits_unknown_profile_line "invalid --limits 'ascend-a5'"

# ---- --limits deepep and ascend-a3: one row of each ---------------------------------------
erun deepep_intranode_ranks 2 "" intranode -r 3 -t 32 --hidden 256 -e 12 -k 2 --limits deepep
expect deepep_intranode_ranks_source "2, 4 or 8 ranks \(SWITCH_RANKS\) \[DeepEP csrc/kernels/legacy/launch.cuh\]: 3 ranks"
erun deepep_ll_hidden 2 "" low-latency -r 2 $ll --limits deepep
expect deepep_ll_hidden_source "SWITCH_HIDDEN\) \[DeepEP .*--hidden 512"
erun a3_world_size 2 "" low-latency -r 4 $ll --limits ascend-a3
expect a3_world_size_source "ep_world_size 8, 16, .*$OPD.*ep_world_size 4"

# ---- epbench plan -----------------------------------------------------------------------
erun plan_json 0 "" plan -r 8 -t 128 --hidden 7168 -k 8 -e 288 --json "$tmp/plan.json"
expect plan_table_line "^ +8 +1 +128 +7168 +335709824 +0 +2146961792 "
json_is plan_json_deepep "$tmp/plan.json" "d['schema'] == 'epbench-plan/1' and d['points'][0]['deepep'] == {'nvl_bytes': 335709824, 'rdma_bytes': 0, 'll_rdma_bytes': 2146961792}"
json_is plan_json_epbench "$tmp/plan.json" "d['points'][0]['epbench']['normal_arena_bytes_per_rank'] > 0 and d['points'][0]['hccl_buffsize_min_mb']['a2_pcie'] is None and 'hccl_buffsize' not in d['points'][0]"
erun plan_buffsize_short 0 "HCCL_BUFFSIZE=100" plan -r 8 -t 512 --hidden 7168 -k 8 -e 256 --json "$tmp/plan2.json"
expect plan_buffsize_short_line "HCCL_BUFFSIZE=100 MB at 8 ranks x 512 tokens x hidden 7168: A2 short by 800 MB \(needs 900 MB\)"
json_is plan_buffsize_json "$tmp/plan2.json" "d['points'][0]['hccl_buffsize'] == {'set_mb': 100, 'a2_short_mb': 800, 'a3_short_mb': d['points'][0]['hccl_buffsize_min_mb']['a3'] - 100}"
erun plan_buffsize_enough 0 "HCCL_BUFFSIZE=1024" plan -r 8 -t 512 --hidden 7168 -k 8 -e 256
expect plan_buffsize_enough_line "enough for A2 \(needs 900 MB\)"
erun plan_nodes_pcie 0 "" plan --nodes 2 --ranks-per-node 8 -t 512 --hidden 7168 -k 8 -e 256
expect plan_nodes_pcie_line "^ +16 +2 +512 +7168 +377673984 +91887744 .* 1912 "
erun plan_layer 0 "" plan -r 16 --parallel dp=2,tp=8,moe_tp=1,moe_ep=16 --tokens-per-dp 100 --hidden 7168 -e 256 -k 8 --json "$tmp/plan3.json"
expect plan_layer_line "the MoE-EP group is 16 ranks of 13 tokens each"
json_is plan_layer_json "$tmp/plan3.json" "d['points'][0]['ep_ranks'] == 16 and d['points'][0]['ep_tokens'] == 13 and d['points'][0]['epbench']['normal_arena_bytes_per_rank'] > 0"
erun plan_overflow 2 "" plan -r 1024 -e 1048576 -t 16777216 --hidden 1048576 -k 8
expect plan_overflow_line "overflows 64 bits"
erun plan_past_devices 2 "" plan -r 8 -t 100000 --hidden 7168 -e 256 -k 8
expect plan_past_devices_line "exceeds any device's memory"
erun plan_bad_buffsize 2 "HCCL_BUFFSIZE=-5" plan -r 8
expect plan_bad_buffsize_line "environment HCCL_BUFFSIZE='-5'"
erun plan_nodes_disagree 2 "" plan -r 8 --nodes 2 --ranks-per-node 8
erun plan_in_help 0 "" help
expect plan_in_help_line "^  plan "

finish knobs_test
