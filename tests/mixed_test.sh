#!/bin/sh
# mixed_test.sh - `epbench mixed` (SGLang's --deepep-mode auto): normal and
# low-latency dispatch/combine alternating on the same ranks and one shared
# arena, every op checked bit for bit; the low-latency buffer cleaning at
# each hand-over must be there (--fault noclean makes the run fail);
# --deepep-mode as SGLang spells it; refusals of what the shared arena cannot
# hold. Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=mixed
. "$(dirname "$0")/lib.sh"
shape="--hidden 512 -e 16 -k 4 -n 2 -w 1"

# 2, 4 and 8 ranks; bf16 and fp8 low-latency dispatch (round-scale, UE8M0, zero-copy)
# shellcheck disable=SC2086
run "mixed_2_ranks_bf16" 0 60 mixed -r 2 -t 48 --ll-tokens 8 $shape
# one table: the normal ops with --num-tokens, the low-latency ones with --ll-tokens
# and their own rows (tokens x ranks x top-k messages: 8 x 2 x 4)
n=$(grep -cE "^ +2 +48 +512 normal-(dispatch|combine) " "$tmp/out")
m=$(grep -cE "^ +2 +8 +512 ll-(dispatch|combine) +64 " "$tmp/out")
[ "${n:-0}" -eq 2 ] && [ "${m:-0}" -eq 2 ] && ok "mixed_both_modes_in_one_table" ||
	bad "mixed_both_modes_in_one_table" "$n normal and $m low-latency rows"
expect "mixed_checked" "check: .* compared byte for byte with reference/, 0 wrong elements"
# shellcheck disable=SC2086
run "mixed_4_ranks_fp8" 0 60 mixed -r 4 -t 64 --ll-tokens 16 --dtype fp8 $shape --json "$tmp/m.json" --csv "$tmp/m.csv"
python3 - "$tmp/m.json" "$tmp/m.csv" <<'PY' && ok "mixed_json_csv_rows" || bad "mixed_json_csv_rows" "ops in JSON/CSV"
import csv, json, sys
p = json.load(open(sys.argv[1]))["points"][0]
names = [o["op"] for o in p["ops"]]
assert names == ["normal-dispatch", "normal-combine", "ll-dispatch", "ll-combine"], names
assert [o.get("tokens") for o in p["ops"]] == [None, None, 16, 16], p["ops"]
assert p["ops"][2]["recv_rows"] == 16 * 4 * 4 and "recv_rows" not in p["ops"][0], p["ops"]
assert p["check"]["wrong_elements"] == 0 and p["check"]["compared_bytes"] > 0, p["check"]
rows = list(csv.DictReader(open(sys.argv[2])))
assert [(r["op"], r["tokens"]) for r in rows] == [(n, t) for n, t in zip(names, ["64", "64", "16", "16"])], rows
PY
# shellcheck disable=SC2086
run "mixed_8_ranks_fp8_ue8m0_zero_copy" 0 90 mixed -r 8 -t 32 --ll-tokens 8 --dtype fp8 --round-scale --ue8m0 --zero-copy --bias 1 $shape
# shellcheck disable=SC2086
run "mixed_uneven_masked" 0 60 mixed -r 3 -t 40 --ll-tokens 12 --hidden 256 -e 12 -k 3 -n 2 -w 1 --uneven-tokens 1 --masked-ratio 0.2 --expert-counts prefix --expert-alignment 4
run "mixed_deepep_mode_auto" 0 60 mixed --deepep-mode auto -r 2 -t 32 --ll-tokens 8 --hidden 256 -e 8 -k 2 -n 1 -w 0
run "intranode_deepep_mode_normal" 0 60 intranode --deepep-mode normal -r 2 -t 32 --hidden 256 -e 8 -k 2 -n 1 -w 0
run "low_latency_deepep_mode" 0 60 low-latency --deepep_mode low_latency -r 2 -t 16 --hidden 256 -e 8 -k 2 -n 1 -w 0

# --soak: every pass alternates normal, hand-over, low-latency with fresh seeds
run "mixed_soak" 0 120 mixed -r 2 -t 32 --ll-tokens 8 --hidden 512 -e 8 -k 2 --dtype fp8 --soak 25
expect "mixed_soak_count" "25 passes \(seeds 0 to 24\) .*: 0 failed"
run "mixed_soak_4_ranks" 0 120 mixed -r 4 -t 24 --ll-tokens 6 --hidden 256 -e 16 -k 4 --soak 10 --bias 2

# the cleaning must be there: rank 0's low-latency lines lie on normal mode's
# count matrix, so left uncleaned they read far ahead: wrong data, named
# shellcheck disable=SC2086
run "mixed_noclean_fails" 1 60 mixed -r 4 -t 64 --ll-tokens 16 $shape --fault noclean:0
expect "mixed_noclean_named" "WRONG DATA: .*rank 0's signal reads [0-9]+, [0-9]+ calls ahead .*clean_low_latency_buffer"
run "mixed_noclean_soak_fails" 1 60 mixed -r 2 -t 64 --ll-tokens 8 --hidden 256 -e 8 -k 2 --soak 3 --fault noclean:0
run "mixed_noclean_fp8_8_ranks" 1 90 mixed -r 8 -t 64 --ll-tokens 8 --dtype fp8 $shape --fault noclean:0
# the same run cleaned passes (the fault is the only difference)
# shellcheck disable=SC2086
run "mixed_cleaned_passes" 0 60 mixed -r 4 -t 64 --ll-tokens 16 $shape
# a data fault in either mode is caught in that mode's op
run "mixed_corrupt_normal" 1 60 mixed -r 2 -t 32 --ll-tokens 8 --hidden 256 -e 8 -k 2 -n 1 -w 0 --fault corrupt:1
expect "mixed_corrupt_normal_named" "first: rank 1: recv_x\["
run "mixed_bitflip_ll" 1 60 mixed -r 2 -t 32 --ll-tokens 8 --hidden 256 -e 8 -k 2 -n 1 -w 0 --fault bitflip:0:packed_recv_x
expect "mixed_bitflip_ll_named" "first: rank 0: packed_recv_x\["

# refusals: one line, exit 2, nothing spawned
refuse() {
	name=$1 pattern=$2; shift 2
	run "$name" 2 20 "$@" || return 0
	[ "$(wc -l <"$tmp/out")" -eq 1 ] && grep -qE -- "$pattern" "$tmp/out" && ok "${name}_line" ||
		bad "${name}_line" "want one line matching '$pattern'"
}
refuse "refuse_int8" "int8 quantises normal dispatch only" mixed -r 2 -t 32 --hidden 256 -e 8 -k 2 --dtype int8
refuse "refuse_cached" "--cached" mixed -r 2 -t 32 --hidden 256 -e 8 -k 2 --cached
refuse "refuse_hook" "--hook" mixed -r 2 -t 32 --hidden 256 -e 8 -k 2 --hook
refuse "refuse_ascend" "ep-semantics ascend" mixed -r 2 -t 32 --hidden 256 -e 8 -k 2 --ep-semantics ascend
refuse "refuse_parallel" "MoE layer of a parallel configuration runs in" mixed -r 4 -t 16 --hidden 256 -e 16 -k 4 --parallel dp=2,tp=2,moe_tp=1,moe_ep=4
refuse "refuse_dump" "--dump" mixed -r 2 -t 32 --hidden 256 -e 8 -k 2 --dump "$tmp"
refuse "refuse_rotating" "--routing rotating" mixed -r 2 -t 32 --hidden 256 -e 8 -k 2 --routing rotating:2
refuse "refuse_n_below_ll_tokens" "exceeds --num-max-dispatch-tokens-per-rank 8" mixed -r 2 -t 32 --ll-tokens 16 --num-max-dispatch-tokens-per-rank 8 --hidden 256 -e 8 -k 2
refuse "refuse_topk_12" "limit of 11" mixed -r 2 -t 32 --hidden 256 -e 24 -k 12
refuse "refuse_nodes" "nodes" mixed --nodes 2 -r 2 -t 32 --hidden 256 -e 8 -k 2
refuse "refuse_ll_tokens_0" "ll-tokens" mixed -r 2 --ll-tokens 0
refuse "refuse_mode_spelling" "deepep-mode" mixed --deepep-mode low-latency
refuse "refuse_mode_of_other_command" "--deepep-mode low_latency is .epbench low-latency.; .epbench intranode. runs --deepep-mode normal" intranode --deepep-mode low_latency
refuse "refuse_auto_on_low_latency" "--deepep-mode auto is .epbench mixed." low-latency --deepep-mode auto
refuse "refuse_noclean_elsewhere" "only .epbench mixed." intranode -r 2 --fault noclean:0
refuse "refuse_noclean_iter" "@ITER is not for it" mixed -r 2 --fault noclean:0@1
refuse "refuse_ll_tokens_elsewhere" "ll-tokens" intranode --ll-tokens 8

[ -z "$(live_ranks)" ] && ok "no_orphans" || bad "no_orphans" "$(live_ranks)"
finish mixed_test.sh
