#!/bin/sh
# ascend_test.sh - `intranode --ep-semantics ascend` (parallel-semantics.md sections 4-5): runs at 2, 4 and 8
# ranks in bf16 and int8, with smoothing scales, shared experts, prefix counts, int8 combine transport and
# shared_expert_x, each checked byte for byte; the dump's tensors and shapes; the handles line; faults that
# must end in exit 1 (wrong data, wrong scales, a damaged handle); bad input refused with one line, exit 2.
# Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=intranode
. "$(dirname "$0")/lib.sh"
small="-t 64 --hidden 256 -n 2 -w 1 --ep-semantics ascend"

# runs: every one checked, PASS
run "r2_bf16" 0 60 intranode -r 2 -e 8 -k 2 $small
expect "r2_bf16_pass" "^# verdict: PASS"
expect "r2_banner" "^# intranode: ep-semantics ascend \(quant_mode 0\), shared experts 0 on 0 ranks$"
expect "r2_handles_line" "^# handles: .* 0 wrong elements; data tensors: 0 wrong$"
# past Ascend's own limits (K > 8, H != 7168 on A3) it runs, with one '# warning:' line each (and in the JSON)
run "r2_past_limits_warns" 0 60 intranode -r 2 -e 16 -k 9 $small --json "$tmp/warn.json"
expect "r2_warns_k" "^# warning: --num-topk 9: Ascend's dispatch takes K <= 8 \(torch_npu-npu_moe_distribute_dispatch_v2.md\)$"
expect "r2_warns_h" "^# warning: --hidden 256: Ascend A3's dispatch takes H = 7168"
python3 -c "import json,sys; w=json.load(open(sys.argv[1]))['config']['warnings']; sys.exit(len(w) != 2)" "$tmp/warn.json" \
	&& ok "r2_warnings_in_json" || bad "r2_warnings_in_json" "config.warnings is not the two lines"
run "r2_within_limits_no_warning" 0 60 intranode -r 2 -e 8 -k 8 -t 8 --hidden 7168 -n 1 -w 1 --ep-semantics ascend
grep -q "^# warning" "$tmp/out" && bad "r2_within_limits_silent" "a warning line" || ok "r2_within_limits_silent"
run "r2_int8" 0 60 intranode -r 2 -e 8 -k 3 $small --dtype int8 --payload narrow
run "r4_int8_smooth_shared_prefix" 0 60 intranode -r 4 -e 12 -k 4 $small --dtype int8 --smooth-scales \
	--shared-experts 1 --shared-expert-ranks 1 --expert-counts prefix --payload narrow
run "r4_bf16_comm_quant_shared_x" 0 60 intranode -r 4 -e 8 -k 3 $small --comm-quant int8 --bias 1
run "r8_int8_everything" 0 120 intranode -r 8 -e 12 -k 4 $small --dtype int8 --smooth-scales \
	--shared-experts 2 --shared-expert-ranks 2 --comm-quant int8 --bias 1 --expert-counts prefix
run "r8_bf16_masked_uneven_zipf" 0 120 intranode -r 8 -e 16 -k 8 $small --shared-experts 1 \
	--shared-expert-ranks 4 --masked-ratio 0.2 --uneven-tokens 1 --routing zipf:1.2
run "r5_rpse_not_dividing" 0 60 intranode -r 5 -e 9 -k 3 $small --shared-experts 1 --shared-expert-ranks 2 --dtype int8
run "r4_special_payload" 0 60 intranode -r 4 -e 8 -k 3 $small --dtype int8 --payload special --comm-quant int8
run "r2_soak" 0 60 intranode -r 2 -e 8 -k 2 -t 32 --hidden 256 --ep-semantics ascend --dtype int8 --soak 5
run "r4_rotating" 0 60 intranode -r 4 -e 8 -k 2 $small --routing rotating:1 -n 3
run "r4_redundant_experts" 0 60 intranode -r 4 -e 12 -k 2 $small --redundant-experts 4 --eplb-load zipf:1.2
run "pure_ep_parallel" 0 60 intranode -r 4 -e 8 -k 2 $small --parallel dp=4,tp=1,moe_ep=4
run "r4_json" 0 60 intranode -r 4 -e 8 -k 2 $small --json "$tmp/a.json"
python3 -c "
import json, sys
c = json.load(open(sys.argv[1]))['points'][0]['check']
assert c['handle_compared_bytes'] > 0 and c['handle_wrong_elements'] == 0, c
" "$tmp/a.json" 2>"$tmp/out" && ok "json_handles" || bad "json_handles" "no handle figures in the JSON"

# bit-exactness: the same run twice gives the same bytes, and the dump holds Ascend's tensors in their shapes
run "dump" 0 60 intranode -r 4 -e 12 -k 4 $small --dtype int8 --shared-experts 1 --shared-expert-ranks 1 \
	--smooth-scales --comm-quant int8 --bias 1 --dump "$tmp/d1"
run "dump_again" 0 60 intranode -r 4 -e 12 -k 4 $small --dtype int8 --shared-experts 1 --shared-expert-ranks 1 \
	--smooth-scales --comm-quant int8 --bias 1 --dump "$tmp/d2"
diff -r "$tmp/d1" "$tmp/d2" >"$tmp/out" 2>&1 && ok "dump_bit_exact" || bad "dump_bit_exact" "two runs differ"
python3 - "$tmp/d1" >"$tmp/out" 2>&1 <<'PY' && ok "dump_shapes" || bad "dump_shapes" "the dump's tensors"
import sys
import numpy as np
d = sys.argv[1]
R, BS, H, K, E, Sn = 4, 64, 256, 4, 12, 1
L = E // (R - 1)
for r in range(R):
    t = lambda n: np.load(f"{d}/rank{r}/{n}.npy")
    A = BS * R * min(L, K) if r >= 1 else BS * R
    assert t("expand_x").shape == (A, H) and t("expand_x").dtype == np.int8, r
    assert t("dynamic_scales").shape == (A,), r
    info = t("assist_info_for_combine")
    assert info.shape == (A * 128,), r
    nums, counts = t("expert_token_nums"), t("ep_recv_counts")
    n = int(nums.sum())  # counts (type 1): their sum is the row count
    assert nums.shape == ((L,) if r >= 1 else (1,)) and counts.shape == ((R * L,) if r >= 1 else (R,)), r
    assert counts[-1] == n and not t("expand_x")[n:].any() and not info[3 * n:].any(), r
    tri = info[:3 * n].reshape(n, 3)
    if r == 0:  # the shared rank: every token of every source, slot K + 0
        assert (tri[:, 2] == K).all() and (np.diff(tri[:, 0]) >= 0).all(), tri
    # dequantised rows are what the expert stand-in saw; x is [T, H] bf16
    assert t("x").shape == (BS, H) and t("x").dtype == np.uint16
    assert t("smooth_scales").shape == (Sn + E, H) and t("shared_expert_x").shape == (BS, H)
print("dump ok")
PY

# faults: wrong data, wrong scales and a damaged handle each end in exit 1 naming the tensor
run "fault_corrupt" 1 60 intranode -r 4 -e 8 -k 3 $small --dtype int8 --fault corrupt:1
expect "fault_corrupt_named" "first: rank 1: expand_x\["
run "fault_scales" 1 60 intranode -r 4 -e 8 -k 3 $small --dtype int8 --fault bitflip:2:dynamic_scales
expect "fault_scales_named" "first: rank 2: dynamic_scales\["
run "fault_assist" 1 60 intranode -r 4 -e 8 -k 3 $small --fault bitflip:3:assist_info_for_combine
expect "fault_assist_handles" "^# handles: .* 1 wrong element;"
run "fault_recv_counts" 1 60 intranode -r 4 -e 8 -k 3 $small --fault bitflip:0:ep_recv_counts
expect "fault_recv_counts_data_clean" "^# handles: .* 1 wrong element; data tensors: 0 wrong$"
run "fault_token_nums" 1 60 intranode -r 4 -e 8 -k 3 $small --fault bitflip:1:expert_token_nums
run "fault_combine_x" 1 60 intranode -r 2 -e 8 -k 2 $small --fault bitflip:1:x
run "fault_permute" 1 60 intranode -r 4 -e 8 -k 3 $small --shared-experts 1 --shared-expert-ranks 1 \
	--num-experts 9 --fault permute:0
run "fault_unknown_tensor" 2 10 intranode -r 2 -e 8 -k 2 $small --fault bitflip:1:recv_x
expect "fault_unknown_tensor_said" "has no output tensor 'recv_x'"

# bad input: one line, exit 2, before any rank exists
bad_input() {
	name=$1 pattern=$2; shift 2
	run "$name" 2 10 intranode -r 4 -t 64 --hidden 256 -k 2 "$@"
	expect "${name}_said" "$pattern"
	[ "$(wc -l <"$tmp/out")" -eq 1 ] && ok "${name}_one_line" || bad "${name}_one_line" "$(wc -l <"$tmp/out") lines"
}
bad_input "experts_not_multiple" "--num-experts 8 is not a multiple of the 3 MoE ranks" \
	-e 8 --ep-semantics ascend --shared-experts 1 --shared-expert-ranks 1
bad_input "shared_ranks_not_multiple" "--shared-expert-ranks 3 is not a multiple of --shared-experts 2" \
	-e 9 --ep-semantics ascend --shared-experts 2 --shared-expert-ranks 3
bad_input "shared_without_ranks" "give both or neither" -e 8 --ep-semantics ascend --shared-experts 1
bad_input "no_moe_rank" "leaves no MoE rank" -e 8 --ep-semantics ascend --shared-experts 1 --shared-expert-ranks 4
bad_input "fp8" "not --dtype fp8" -e 8 --ep-semantics ascend --dtype fp8
bad_input "smooth_without_int8" "--smooth-scales .* needs --dtype int8" -e 8 --ep-semantics ascend --smooth-scales
bad_input "cached" "has no cached mode" -e 8 --ep-semantics ascend --cached
bad_input "bias2" "has no second bias" -e 8 --ep-semantics ascend --bias 2
bad_input "shared_without_ascend" "--shared-experts applies only with --ep-semantics ascend" \
	-e 8 --shared-experts 1 --shared-expert-ranks 1
bad_input "comm_quant_without_ascend" "--comm-quant applies only with --ep-semantics ascend" -e 8 --comm-quant int8
bad_input "comm_quant_bad_value" "comm-quant" -e 8 --ep-semantics ascend --comm-quant fp8
bad_input "eplb_with_shared_ranks" "placing physical experts on the 3 MoE ranks only is not built" -e 12 \
	--ep-semantics ascend --redundant-experts 4 --shared-experts 1 --shared-expert-ranks 1
bad_input "fault_replica" "replica:1 is not built" -e 12 --ep-semantics ascend --redundant-experts 4 --fault replica:1
printf '0 1\n1 1\n' >"$tmp/dup.txt"
bad_input "routing_file_duplicate" "row 2 repeats an expert" -e 8 --ep-semantics ascend --routing "file:$tmp/dup.txt"
run "low_latency_refused" 2 10 low-latency -r 2 -t 16 --hidden 256 -e 8 -k 2 --ep-semantics ascend
expect "low_latency_refused_said" "unknown option '--ep-semantics'"
[ -z "$(live_ranks)" ] && ok "no_rank_left" || bad "no_rank_left" "$(live_ranks)"
finish ascend_test.sh
