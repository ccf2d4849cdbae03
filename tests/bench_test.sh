#!/bin/sh
# bench_test.sh - scripts/bench.sh (make bench) end to end in its quick mode,
# and its table on crafted results where a goal must be met, missed, or
# missing. Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=bench
. "$(dirname "$0")/lib.sh"
root=$(cd "$lib_here/.." && pwd)
bench="$root/scripts/bench.sh"
table="$root/scripts/bench_table.py"

# bad arguments: one line, exit 2, nothing run
for a in "--repeat 0" "--repeat x" "--bogus" "--json /nonexistent/dir/b.json"; do
	# shellcheck disable=SC2086
	"$bench" --no-install $a >"$tmp/out" 2>&1
	got=$?
	[ "$got" -eq 2 ] && [ "$(wc -l <"$tmp/out")" -eq 1 ] && ok "refuses $a" || bad "refuses $a" "exit $got"
done

# the whole run at small shapes: every part that can run here runs and passes its check
timeout -k 2 300 "$bench" --quick --no-install --json "$tmp/b.json" >"$tmp/out" 2>&1
got=$?
[ "$got" -eq 0 ] && ok "quick_run" || bad "quick_run" "exit $got"
python3 - "$tmp/b.json" >"$tmp/check" 2>&1 <<'PY' && ok "quick_json" || { cat "$tmp/check" >>"$tmp/out"; bad "quick_json" "see above"; }
import json, sys
d = json.load(open(sys.argv[1]))
assert d["schema"] == "epbench-bench/1" and d["quick"] and d["repeat"] == 1
rows = {(r["what"], r["op"]): r for r in d["rows"]}
for what in ("intranode r2 aggbw / copy", "low-latency fp8 r2 aggbw / copy", "low-latency bf16 r2 p99 / median"):
    for op in ("dispatch", "combine"):
        r = rows[(what, op)]
        assert r["runs"] == 1 and r["median"] > 0, (what, op, r)
        assert r["goal"] is None and "met" not in r, "quick mode judges no goal"
assert any(s["ranks"] == 4 for s in d["scaling"])
PY
grep -q "no goal is judged" "$tmp/out" && ok "quick_says_no_goal_judged" || bad "quick_says_no_goal_judged" "missing"
if command -v mpicc >/dev/null; then
	grep -qE "^  MPI_Alltoallv r2 time / epbench +dispatch" "$tmp/out" && ok "quick_mpi_row" || bad "quick_mpi_row" "missing"
else
	grep -q "note: MPI peer skipped: mpicc not found" "$tmp/out" && ok "quick_mpi_skip_said" || bad "quick_mpi_skip_said" "no note"
fi
if [ "$(id -u)" -eq 0 ] && command -v iperf3 >/dev/null; then
	grep -qE "^  netns 2x2 link rate / iperf3 bidir +combine +[0-9]" "$tmp/out" && ok "quick_netns_row" ||
		bad "quick_netns_row" "missing"
else
	grep -q "note: namespace cluster skipped" "$tmp/out" && ok "quick_netns_skip_said" || bad "quick_netns_skip_said" "no note"
fi

# crafted results: 0.5 of copy misses the 0.9 goal, 0.95 meets it, a tail of 3x misses <= 2, a missing run is 0/2
mkdir "$tmp/d"
craft() { # NAME I AGGBW MEDIAN P99
	printf '{"host": {"copy_gbs": 10.0}, "points": [{"ranks": 2, "ops": [%s, %s]}]}\n' \
		"{\"op\": \"dispatch\", \"aggbw_gbs\": $3, \"alg_bytes\": 1000000, \"time_us\": {\"median\": $4, \"p99\": $5}}" \
		"{\"op\": \"combine\", \"aggbw_gbs\": $3, \"alg_bytes\": 1000000, \"time_us\": {\"median\": $4, \"p99\": $5}}" \
		>"$tmp/d/$1.$2.json"
}
craft intranode_r2 1 5.0 100 110
craft intranode_r2 2 5.2 100 110
craft ll_bf16_r2 1 9.5 100 300
craft ll_bf16_r2 2 9.6 100 150
craft ll_fp8_r2 1 9.5 100 110
python3 "$table" "$tmp/d" 2 "$tmp/t.json" >"$tmp/out" 2>&1 || bad "crafted_table" "exit $?"
expect_row() { # NAME PATTERN
	grep -qE "$2" "$tmp/out" && ok "$1" || bad "$1" "no line matching '$2'"
}
expect_row "goal_missed_fires" "^  intranode r2 aggbw / copy +dispatch +0\.51 +\[0\.50, 0\.52\] +>=0\.90 +NO 2/2"
expect_row "goal_met" "^  low-latency bf16 r2 aggbw / copy +combine +0\.95 +\[0\.95, 0\.96\] +>=0\.90 +yes 2/2"
expect_row "tail_goal_median_of_runs" "^  low-latency bf16 r2 p99 / median +dispatch +2\.25 +\[1\.50, 3\.00\] +<=2\.00 +NO 2/2"
expect_row "missing_run_counted" "^  low-latency fp8 r2 aggbw / copy +dispatch +0\.95 .* 1/2"
expect_row "absent_part_is_0_of_n" "^  MPI tcp 2x1 nodes time / epbench +dispatch +- .* 0/2"
finish bench_test.sh
