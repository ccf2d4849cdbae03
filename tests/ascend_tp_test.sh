#!/bin/sh
# ascend_tp_test.sh - Ascend's MoE-TP stage (`intranode --parallel ...,moe_tp>1 --ep-semantics ascend`,
# parallel-semantics.md sections 3-5): 4 and 8 ranks, bf16 and int8, one and several local experts, moe_tp 2
# and 4, uneven tokens and padding, each phase checked byte for byte; the warning outside Ascend's limits;
# --comm-quant int8 (the warning at moe_tp 2, combine's int8 bytes) and shared experts (4 and 8 ranks, a flipped
# shared row named); the dump's names and shapes (expand_x [moe_tp A, H], tp_recv_counts); the JSON rows; faults on the
# gathered tensors and handles end in exit 1; what is not built is refused with one line, exit 2.
# Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=intranode
. "$(dirname "$0")/lib.sh"
small="-t 16 --hidden 256 -n 2 -w 1 --ep-semantics ascend"

# phases NAME OP...: the table's op rows, in order
phases() {
	name=$1; shift
	got=$(awk '$1 ~ /^[0-9]+$/ && NF > 10 {print $4}' "$tmp/out" | tr '\n' ' ')
	[ "$got" = "$* " ] && ok "$name" || bad "$name" "phases '$got', want '$* '"
}

# runs: every phase checked, PASS
run "r4_bf16_L1" 0 60 intranode -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -e 2 -k 1 $small
expect "r4_bf16_L1_pass" "^# verdict: PASS"
phases "r4_bf16_L1_phases" ep_dispatch moe_tp_gather moe_tp_reduce ep_combine attn_tp_gather
expect "r4_bf16_L1_handles" "^# handles: .*tp_recv_counts\) in the check above, 0 wrong elements; data tensors: 0 wrong$"
grep -q "warning: .*MoE-TP\|warning: moe_tp" "$tmp/out" && bad "r4_bf16_L1_no_warning" "moe_tp 2 with L = 1 is inside Ascend's limits" ||
	ok "r4_bf16_L1_no_warning"
run "r4_int8_L1_smooth_prefix_shared_x" 0 60 intranode -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 -e 2 -k 2 $small \
	--dtype int8 --smooth-scales --expert-counts prefix --bias 1 --payload narrow
expect "r4_int8_L1_pass" "^# verdict: PASS"
run "r8_int8_L2" 0 120 intranode -r 8 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 -e 8 -k 3 $small --dtype int8
expect "r8_int8_L2_pass" "^# verdict: PASS"
expect "r8_int8_L2_warning" "^# warning: 2 local experts with MoE-TP: Ascend allows MoE-TP only with one local expert"
[ "$(grep -c "warning: .*MoE-TP\|warning: moe_tp" "$tmp/out")" -eq 1 ] && ok "r8_int8_L2_one_warning_line" || bad "r8_int8_L2_one_warning_line" "not one line"
run "r8_bf16_moe_tp4_uneven_replicate0" 0 120 intranode -r 8 --parallel dp=2,tp=4,moe_tp=4,moe_ep=2 -e 8 -k 3 $small \
	--uneven-tokens 1 --sp-pad replicate0 --masked-ratio 0.2
expect "r8_moe_tp4_pass" "^# verdict: PASS"
expect "r8_moe_tp4_warning" "^# warning: moe_tp=4: Ascend's MoE-TP stage takes tp_world_size 0, 1 or 2"
expect "r8_moe_tp4_warning_L" "^# warning: 4 local experts with MoE-TP"
run "r8_int8_moe_tp4_prefix_uneven" 0 120 intranode -r 8 --parallel dp=2,tp=4,moe_tp=4,moe_ep=2 -e 4 -k 2 $small \
	--dtype int8 --expert-counts prefix --uneven-tokens 1 --routing zipf:1.2
expect "r8_int8_moe_tp4_pass" "^# verdict: PASS"
run "r4_moe_tp4_one_expert" 0 60 intranode -r 4 --parallel dp=1,tp=4,moe_tp=4,moe_ep=1 -e 1 -k 1 $small --dtype int8
expect "r4_moe_tp4_one_expert_pass" "^# verdict: PASS"
expect "r4_moe_tp4_one_expert_warning" "^# warning: moe_tp=4: Ascend's MoE-TP stage takes tp_world_size 0, 1 or 2"
run "r4_moe_tp4_one_ep_rank" 0 60 intranode -r 4 --parallel dp=1,tp=4,moe_tp=4,moe_ep=1 -e 4 -k 2 $small --dtype int8
expect "r4_moe_tp4_one_ep_rank_pass" "^# verdict: PASS"
run "r4_tp2_moe_tp2_zero_pad" 0 60 intranode -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 -e 4 -k 2 $small \
	--sp-pad zero --tokens-per-dp 29 --uneven-tokens 1
expect "r4_zero_pad_pass" "^# verdict: PASS"
run "r4_soak" 0 60 intranode -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -e 4 -k 2 -t 16 --hidden 256 \
	--ep-semantics ascend --dtype int8 --soak 4
expect "r4_soak_passes" "^# soak: 4 passes .*: 0 failed"
run "r4_rotating" 0 60 intranode -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -e 4 -k 2 $small --routing rotating:1 -n 3
expect "r4_rotating_pass" "^# verdict: PASS"
run "r4_redundant_experts" 0 60 intranode -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -e 6 -k 2 $small \
	--redundant-experts 2 --eplb-load zipf:1.2
expect "r4_redundant_experts_pass" "^# verdict: PASS"

# --comm-quant int8: the EP return carries the MoE-TP reduced rows as int8 (section 5 step 1, then step 4);
# Ascend takes it only with tp != 2: moe_tp 2 runs with one warning line, moe_tp 4 without it
run "r4_comm_quant_tp2" 0 60 intranode -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -e 2 -k 1 $small --comm-quant int8 \
	--json "$tmp/cq.json"
expect "r4_comm_quant_tp2_pass" "^# verdict: PASS"
expect "r4_comm_quant_tp2_warning" "^# warning: --comm-quant int8 with moe_tp=2: Ascend's combine takes comm_quant_mode 2 only when tp_world_size != 2"
python3 - "$tmp/cq.json" >"$tmp/out" 2>&1 <<'PY' && ok "comm_quant_combine_bytes" || bad "comm_quant_combine_bytes" "$(cat "$tmp/out")"
import json, sys
ops = {x['op']: x for x in json.load(open(sys.argv[1]))['points'][0]['ops']}
d, c = ops['ep_dispatch']['alg_bytes'], ops['ep_combine']['alg_bytes']
assert c * 512 == d * 320, (d, c)  # the same rows: bf16 out (H 2), int8 and a bf16 scale per 8 back (H + 2 H / 8)
PY
run "r8_int8_comm_quant_moe_tp4" 0 120 intranode -r 8 --parallel dp=2,tp=4,moe_tp=4,moe_ep=2 -e 2 -k 2 $small \
	--dtype int8 --smooth-scales --comm-quant int8 --uneven-tokens 1
expect "r8_int8_comm_quant_moe_tp4_pass" "^# verdict: PASS"
grep -q "warning: --comm-quant" "$tmp/out" && bad "r8_comm_quant_moe_tp4_no_warning" "moe_tp 4 is not tp 2" ||
	ok "r8_comm_quant_moe_tp4_no_warning"
# shared experts: EP ranks [0, S_r) of each MoE-EP group (section 4), their rows gathered and reduced over
# MoE-TP as the routed ones; with int8 dispatch, smoothing, comm_quant, prefix counts, shared_expert_x
run "r4_shared" 0 60 intranode -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 -e 1 -k 1 $small \
	--shared-experts 1 --shared-expert-ranks 1 --bias 1
expect "r4_shared_pass" "^# verdict: PASS"
run "r8_shared_int8_comm_quant" 0 120 intranode -r 8 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 -e 4 -k 2 $small \
	--shared-experts 1 --shared-expert-ranks 2 --dtype int8 --smooth-scales --comm-quant int8 --expert-counts prefix
expect "r8_shared_int8_comm_quant_pass" "^# verdict: PASS"
run "r8_shared2_moe_tp2_uneven" 0 120 intranode -r 8 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 -e 2 -k 2 $small \
	--shared-experts 2 --shared-expert-ranks 2 --uneven-tokens 1
expect "r8_shared2_moe_tp2_uneven_pass" "^# verdict: PASS"
run "r8_shared_moe_tp4" 0 120 intranode -r 8 --parallel dp=2,tp=4,moe_tp=4,moe_ep=2 -e 2 -k 1 $small \
	--shared-experts 1 --shared-expert-ranks 1 --dtype int8 --sp-pad replicate0 --uneven-tokens 1
expect "r8_shared_moe_tp4_pass" "^# verdict: PASS"
# a flipped reduced row on a shared-expert rank (world rank 1: member 1 of EP rank 0) is named
run "fault_shared_reduced" 1 60 intranode -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -e 2 -k 1 $small \
	--shared-experts 1 --shared-expert-ranks 1 --fault bitflip:1:moe_tp_reduced_x
expect "fault_shared_reduced_named" "first: rank 1: moe_tp_reduced_x\["

# the JSON rows: one per phase, every one checked, handle figures present
run "r4_json" 0 60 intranode -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -e 4 -k 2 $small --json "$tmp/a.json"
python3 - "$tmp/a.json" >"$tmp/out" 2>&1 <<'PY' && ok "json_rows" || bad "json_rows" "the JSON's rows"
import json, sys
p = json.load(open(sys.argv[1]))['points'][0]
ops = [x['op'] for x in p['ops']]
assert ops == ['ep_dispatch', 'moe_tp_gather', 'moe_tp_reduce', 'ep_combine', 'attn_tp_gather'], ops
assert all(x['alg_bytes'] > 0 for x in p['ops']), p['ops']
c = p['check']
assert c['handle_compared_bytes'] > 0 and c['handle_wrong_elements'] == 0 and c['wrong_elements'] == 0, c
assert p['layer']['config'].startswith('dp=1,tp=4,') and len(p['layer']['ep_recv_rows']) == 2, p['layer']
PY

# the dump: Ascend's names and shapes with TP, and the same bytes from a second run
dump_args="-r 8 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 -e 8 -k 3 $small --dtype int8 --uneven-tokens 1"
run "dump" 0 120 intranode $dump_args --dump "$tmp/d1"
run "dump_again" 0 120 intranode $dump_args --dump "$tmp/d2"
diff -r "$tmp/d1" "$tmp/d2" >"$tmp/out" 2>&1 && ok "dump_bit_exact" || bad "dump_bit_exact" "two runs differ"
python3 - "$tmp/d1" >"$tmp/out" 2>&1 <<'PY' && ok "dump_shapes" || bad "dump_shapes" "the dump's tensors"
import sys
import numpy as np
d = sys.argv[1]
W, moe_tp, R, BS, H, K, E = 8, 2, 4, 16, 256, 3, 8
L = E // R
A = BS * R * min(L, K)
for w in range(W):
    t = lambda n: np.load(f"{d}/rank{w}/{n}.npy")
    g, q = w % moe_tp, w // moe_tp
    x, sc, tpc, epc = t("expand_x"), t("dynamic_scales"), t("tp_recv_counts"), t("ep_recv_counts")
    assert x.shape == (moe_tp * A, H) and x.dtype == np.int8 and sc.shape == (moe_tp * A,), w
    assert tpc.shape == (moe_tp,) and tpc.dtype == np.int32 and epc.shape == (R * moe_tp * L,), w
    n = int(tpc.sum())
    # block b comes from member (g + b) % moe_tp: its ep_recv_counts end with that member's rows
    for b in range(moe_tp):
        assert epc[(b + 1) * R * L - 1] == tpc[(g + b) % moe_tp], (w, b, epc, tpc)
    assert (sc[:n] > 0).all() and not x[n:].any() and not sc[n:].any(), w
    assert t("expert_token_nums").shape == (L,) and int(t("expert_token_nums").sum()) == n, w
    assert t("assist_info_for_combine").shape == (A * 128,), w
    assert t("expert_outputs").shape == (n, H) and t("moe_tp_reduced_x").shape == (int(tpc[g]), H), w
    # the own block: the EP rank's own rows, the same in every member's view of it
    peer = q * moe_tp + (g + 1) % moe_tp
    own = int(tpc[g])
    px = np.load(f"{d}/rank{peer}/expand_x.npy")
    ptpc = np.load(f"{d}/rank{peer}/tp_recv_counts.npy")
    assert (ptpc == tpc).all(), (w, peer)
    assert (px[n - own:n] == x[:own]).all() if moe_tp == 2 else True, (w, peer)
    T = t("dispatch_x").shape[0]
    assert t("x").shape == (T, H) and t("attn_tp_gathered_x").shape[1] == H, w
print("dump ok")
PY

# faults on the MoE-TP stage's outputs: exit 1, named; a handle counts under handles
run "fault_gathered_x" 1 60 intranode -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -e 4 -k 2 $small \
	--fault bitflip:1:moe_tp_gathered_x
expect "fault_gathered_x_named" "first: rank 1: expand_x\["
run "fault_tp_recv_counts" 1 60 intranode -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -e 4 -k 2 $small \
	--fault bitflip:2:tp_recv_counts
expect "fault_tp_recv_counts_handles" "^# handles: .* 1 wrong element; data tensors: 0 wrong$"
run "fault_reduced" 1 60 intranode -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -e 4 -k 2 $small \
	--fault bitflip:3:moe_tp_reduced_x
expect "fault_reduced_named" "first: rank 3: moe_tp_reduced_x\["
run "fault_corrupt" 1 60 intranode -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -e 4 -k 2 $small --fault corrupt:0

# not built: one line, exit 2, before any rank exists
bad_input() {
	name=$1 pattern=$2; shift 2
	run "$name" 2 10 "$@"
	expect "${name}_said" "$pattern"
	[ "$(wc -l <"$tmp/out")" -eq 1 ] && ok "${name}_one_line" || bad "${name}_one_line" "$(wc -l <"$tmp/out") lines"
}
tp4="intranode -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -e 4 -k 2 $small"
bad_input "shared_ranks_fill_moe_ep" "--shared-expert-ranks 2 leaves no MoE rank of moe_ep 2" $tp4 \
	--shared-experts 1 --shared-expert-ranks 2
bad_input "allgather_comm_quant_refused" "--comm-quant int8 with --ep-semantics ascend in allgather mode: the layer has no EP combine" \
	$tp4 --moe-comm allgather --comm-quant int8
bad_input "experts_not_multiple_of_moe_ep" "--num-experts 5 is not a multiple of the 2 MoE ranks \(moe_ep 2" \
	intranode -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -e 5 -k 2 $small
[ -z "$(live_ranks)" ] && ok "no_rank_left" || bad "no_rank_left" "$(live_ranks)"
finish ascend_tp_test.sh
