#!/bin/sh
# intranode_test.sh - end-to-end cases of `epbench intranode` against the real binary.
# Every case runs under a deadline; the script ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=intranode
. "$(dirname "$0")/lib.sh"

# run NAME EXPECTED_EXIT DEADLINE ARGS...: runs epbench, checks the exit status

# Small shapes: every ranks count the issue names, odd hidden sizes, all dtypes.
small="-t 96 --hidden 256 -e 24 -k 4 -n 2 -w 1 --timeout 20"
for r in 1 2 3 4 8; do
	run "ranks_$r" 0 60 intranode -r $r $small
done
# Past half the cache the rows go with streaming stores (stream_copy.h);
# EPBENCH_STREAM=off with plain ones: both checked bit for bit.
for s in on off; do
	export EPBENCH_STREAM=$s
	run "streamed_rows_$s" 0 90 intranode -r 2 -t 1024 --hidden 4096 -e 8 -k 4 -n 2 -w 1
	run "streamed_rows_fp8_$s" 0 90 intranode -r 2 -t 1024 --hidden 4096 -e 8 -k 4 -n 2 -w 1 --dtype fp8
done
unset EPBENCH_STREAM
run "hidden_1000_not_pow2" 0 60 intranode -r 4 -t 64 --hidden 1000 -e 16 -k 3 -n 2 -w 1
run "fp8_hidden_384" 0 60 intranode -r 4 -t 64 --hidden 384 -e 16 -k 3 -n 2 -w 1 --dtype fp8
run "int8" 0 60 intranode -r 4 -t 64 --hidden 512 -e 16 -k 3 -n 2 -w 1 --dtype int8
run "zero_tokens" 0 60 intranode -r 4 -t 0 --hidden 256 -e 16 -k 3 -n 2 -w 1
# seed 1 with 3 tokens gives ranks 3, 0, 0 and 2 tokens (ep_rank_num_tokens)
run "zero_tokens_on_some_ranks" 0 60 intranode -r 4 -t 3 --hidden 256 -e 16 -k 4 --uneven-tokens 1 --seed 1 -n 2 -w 1 --bias 2
run "uneven_tokens_fp8" 0 60 intranode -r 3 -t 100 --hidden 256 -e 12 -k 4 --uneven-tokens 1 --dtype fp8 -n 2 -w 1
run "every_token_to_one_expert" 0 60 intranode -r 4 -t 128 --hidden 256 -e 16 -k 1 --routing hot:5 -n 2 -w 1
run "all_entries_masked" 0 60 intranode -r 4 -t 128 --hidden 256 -e 16 -k 4 --masked-ratio 1 -n 2 -w 1
run "half_masked_bias2" 0 60 intranode -r 3 -t 128 --hidden 256 -e 12 -k 4 --masked-ratio 0.5 --bias 2 -n 2 -w 1
run "alignment_prefix_counts" 0 60 intranode -r 2 -t 128 --hidden 256 -e 8 -k 2 --expert-alignment 16 --expert-counts prefix -n 2 -w 1
run "cached_dispatch" 0 60 intranode -r 4 -t 128 --hidden 256 -e 16 -k 4 --cached -n 3 -w 1
run "without_topk" 0 60 intranode -r 4 -t 128 --hidden 256 -e 16 -k 4 --with-topk 0 -n 2 -w 1
run "zipf_routing" 0 60 intranode -r 4 -t 128 --hidden 256 -e 32 -k 4 --routing zipf:1.5 -n 2 -w 1
run "group_limited" 0 60 intranode -r 4 -t 128 --hidden 256 -e 32 -k 4 --num-topk-groups 2 -n 2 -w 1
printf '# expert ids, one token per line\n0 5\n-1 7\n3 3\n' >"$tmp/routing.txt"
run "routing_file" 0 60 intranode -r 2 -t 10 --hidden 256 -e 8 -k 2 --routing "file:$tmp/routing.txt" -n 2 -w 1
run "more_ranks_than_cores_spin_then_sleep" 0 120 intranode -r 16 -t 64 --hidden 256 -e 32 -k 4 -n 3 -w 1

# Failures are caught.
if run "corrupt_byte_is_reported" 1 60 intranode -r 4 -t 64 --hidden 256 -e 16 -k 3 -n 2 -w 1 --fault corrupt:2; then
	grep -q "rank 2: recv_x\[" "$tmp/out" && grep -q "verdict: WRONG DATA" "$tmp/out" && ok "corrupt_byte_named" ||
		bad "corrupt_byte_named" "no mismatch line naming rank 2 recv_x"
fi
shm_before=$(ls /dev/shm | wc -l)
start=$(date +%s)
if run "dead_rank_exit_4" 4 30 intranode -r 4 -t 64 --hidden 256 -e 16 -k 3 -n 5 -w 1 --timeout 5 --fault die:1; then
	grep -q "rank 1 (pid [0-9]*) was killed by signal 9" "$tmp/out" && ok "dead_rank_named" || bad "dead_rank_named" "message does not name rank 1"
	[ $(( $(date +%s) - start )) -le 10 ] && ok "dead_rank_within_timeout" || bad "dead_rank_within_timeout" "took $(( $(date +%s) - start )) s"
fi
if run "hung_rank_exit_4" 4 30 intranode -r 3 -t 64 --hidden 256 -e 12 -k 3 -n 5 -w 1 --timeout 2 --fault hang:2; then
	grep -q "waiting for rank 2 (rank 2 is in phase fault.hang)" "$tmp/out" && ok "hung_rank_named_with_phase" ||
		bad "hung_rank_named_with_phase" "message does not name the hung rank and its phase"
fi
[ -n "$(live_ranks)" ] && bad "no_orphans_after_faults" "rank processes left: $(live_ranks)" || ok "no_orphans_after_faults"
[ "$(ls /dev/shm | wc -l)" -eq "$shm_before" ] && ok "nothing_left_in_dev_shm" || bad "nothing_left_in_dev_shm" "$(ls /dev/shm)"

# kill -9 of one rank from outside, and of the launcher itself.
"$EPBENCH" intranode -r 4 -t 512 --hidden 2048 -e 16 -k 4 -n 100000 -w 1 --timeout 5 >"$tmp/out" 2>&1 &
lpid=$!
wait_rank epbench-r3 >/dev/null
sleep 0.5
kill_ranks 9 epbench-r3
wait $lpid; got=$?
[ "$got" -eq 4 ] && grep -q "rank 3" "$tmp/out" && ok "external_kill_of_rank" || bad "external_kill_of_rank" "exit $got"
"$EPBENCH" intranode -r 4 -t 512 --hidden 2048 -e 16 -k 4 -n 100000 -w 1 >"$tmp/out" 2>&1 &
lpid=$!
wait_rank epbench-r3 >/dev/null
[ -n "$(live_ranks)" ] && ok "ranks_running_before_launcher_kill" || bad "ranks_running_before_launcher_kill" "none found"
kill -9 $lpid
wait $lpid 2>/dev/null
sleep 0.5
[ -n "$(live_ranks)" ] && bad "ranks_die_with_launcher" "left: $(live_ranks)" || ok "ranks_die_with_launcher"

# Bad input: one line, exit 2, nothing spawned.
run "unknown_option" 2 10 intranode --bogus
grep -q "unknown option '--bogus'" "$tmp/out" && ok "unknown_option_quoted" || bad "unknown_option_quoted" "value not quoted"
run "experts_not_divisible" 2 10 intranode -r 8 -e 250
grep -q "250" "$tmp/out" && [ "$(wc -l <"$tmp/out")" -eq 1 ] && ok "one_line_quoting_value" || bad "one_line_quoting_value" "$(cat "$tmp/out")"
run "topk_above_experts" 2 10 intranode -r 2 -e 4 -k 5
run "fp8_hidden_not_128" 2 10 intranode --dtype fp8 --hidden 1000
run "bad_sweep" 2 10 intranode --num-tokens 10:5:x2
run "bad_routing_file" 2 10 intranode -r 2 -e 8 -k 2 --routing file:/nonexistent
run "underscore_spelling" 0 60 intranode --num_ranks 2 --num_tokens 32 --hidden 256 --num_experts 8 --num_topk 2 -n 1 -w 0
run "too_big_for_memory_exit_3" 3 60 intranode -r 2 -t 2000000 --hidden 65536 -e 2 -k 1 -n 1 -w 0
printf -- '--num-tokens 64 --hidden 256\n# comment\n--bogus-option 3\n' >"$tmp/bad.case"
run "malformed_case_file" 2 10 intranode --case "$tmp/bad.case"
printf 'num-tokens 64\n' >"$tmp/bad2.case"
run "case_file_without_options" 2 10 intranode --case "$tmp/bad2.case"
run "case_file_ci_small" 0 60 intranode --case cases/ci-small.case -r 4 -n 1
run "case_file_deepseek_overridden" 0 60 intranode --case cases/deepseek-v3.case -r 8 -t 32 --hidden 256 -n 1 -w 0
run "help" 0 10 intranode --help
run "version" 0 10 --version

# Reports: JSON and CSV written atomically, sweeps keep earlier points.
if run "sweep_json_csv" 0 120 intranode -r 2 -t 32:128:x2 --hidden 256 -e 8 -k 2 -n 2 -w 1 --json "$tmp/r.json" --csv "$tmp/r.csv"; then
	[ "$(grep -c dispatch "$tmp/r.csv")" -eq 3 ] && ok "csv_one_row_per_op_and_point" || bad "csv_one_row_per_op_and_point" "$(cat "$tmp/r.csv")"
	if command -v python3 >/dev/null; then
		python3 - "$tmp/r.json" <<'PY' && ok "json_valid_schema" || bad "json_valid_schema" "see above"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["schema"] == "epbench/2", d["schema"]
assert len(d["points"]) == 3 and d["verdict"] == "PASS"
for p in d["points"]:
    assert p["check"]["wrong_elements"] == 0 and p["check"]["compared_bytes"] > 0
    ops = {o["op"]: o for o in p["ops"]}
    assert set(ops) == {"dispatch", "combine"}
    assert ops["dispatch"]["time_us"]["min"] <= ops["dispatch"]["time_us"]["median"] <= ops["dispatch"]["time_us"]["max"]
PY
	else
		echo "SKIP  json_valid_schema: python3 missing"; skip=$((skip + 1))
	fi
	ls "$tmp" | grep -q '\.tmp' && bad "no_temp_files_left" "$(ls "$tmp")" || ok "no_temp_files_left"
fi
if run "failed_point_keeps_earlier" 4 60 intranode -r 2,4 -t 64 --hidden 256 -e 8 -k 2 -n 2 -w 1 --timeout 3 --fault die:3 --json "$tmp/f.json"; then
	python3 -c "
import json; d = json.load(open('$tmp/f.json'))
assert [p['verdict'] for p in d['points']] == ['PASS', 'TIMEOUT OR DEAD RANK'], d['points']" && ok "failed_point_keeps_earlier_json" || bad "failed_point_keeps_earlier_json" "points lost"
fi

# Dump: the tensors DeepEP names, deterministic for a seed.
if run "dump" 0 60 intranode -r 2 -t 16 --hidden 256 -e 8 -k 2 -n 1 -w 0 --bias 2 --dump "$tmp/d1" --seed 7 &&
   run "dump_again" 0 60 intranode -r 2 -t 16 --hidden 256 -e 8 -k 2 -n 1 -w 0 --bias 2 --dump "$tmp/d2" --seed 7; then
	n=0
	for t in x topk_idx topk_weights num_tokens_per_rank is_token_in_rank num_tokens_per_expert recv_x \
		recv_topk_idx recv_topk_weights num_recv_tokens_per_expert rank_prefix_matrix recv_src_idx \
		combine_x bias_0 bias_1 combined_x combined_topk_weights; do
		[ -f "$tmp/d1/rank1/$t.npy" ] || { bad "dump_files" "missing rank1/$t.npy"; n=1; break; }
	done
	[ $n -eq 0 ] && ok "dump_files"
	head -c 6 "$tmp/d1/rank0/recv_x.npy" | od -c | grep -q "N   U   M   P   Y" && ok "dump_is_npy" || bad "dump_is_npy" "bad magic"
	diff -r "$tmp/d1" "$tmp/d2" >/dev/null && ok "same_seed_same_bytes" || bad "same_seed_same_bytes" "dumps differ"
fi

# The MPI peer moves the same rows (it checks them); needs Open MPI.
if command -v mpicc >/dev/null && command -v mpirun >/dev/null; then
	if timeout 120 scripts/compare-mpi.sh 2 64 256 2 8 2 >"$tmp/out" 2>&1 && grep -q "0 wrong" "$tmp/out" &&
	   grep -q "verdict PASS" "$tmp/out"; then ok "mpi_peer_same_traffic"; else bad "mpi_peer_same_traffic" "see output"; fi
else
	echo "SKIP  mpi_peer_same_traffic: Open MPI not installed (scripts/install-deps.sh --with-mpi)"; skip=$((skip + 1))
fi

finish intranode_test.sh
