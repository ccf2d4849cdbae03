#!/bin/sh
# gates_test.sh - results that carry their samples and provenance, and the commands that judge
# them: compare, ab, limits that exit 5, --baseline, plot. Every detector is shown to fire.
# Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=intranode
# the copy figures are checked here (--min-copy, the plot's copy series)
EPBENCH_COPY_PROBE=on
. "$(dirname "$0")/lib.sh"

shape="-r 2 -t 64 --hidden 512 -e 8 -k 2 -n 12 -w 1"
slow="$tmp/slow-epbench"
printf '#!/bin/sh\nexec "%s" "$@" --fault slow:1:3000\n' "$EPBENCH" >"$slow"
chmod +x "$slow"

# results: schema 2, every sample, provenance, a routing hash per point
run "result_a" 0 60 intranode $shape --json "$tmp/a.json"
run "result_b_slow" 0 60 intranode $shape --json "$tmp/b.json" --fault slow:1:3000
python3 - "$tmp/a.json" <<'PY' && ok "json_samples_provenance_hash" || bad "json_samples_provenance_hash" "see above"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["schema"] == "epbench/2"
p = d["points"][0]
for o in p["ops"]:
    assert len(o["samples_us"]) == 12 and min(o["samples_us"]) == o["time_us"]["min"], o
assert len(p["routing_hash"]) == 64
pr = d["provenance"]
for k in ("commit", "compiler", "kernel", "cpu_model", "libraries", "start_utc", "transport", "cflags"):
    assert pr[k], k
assert d["traffic"]["dtype"] == "bf16" and d["traffic"]["num_topk"] == "2"
PY

# compare: the same file is "same"; a rank sleeping 3 ms per op is "slower" and trips the gate
run "compare_same_file" 0 30 compare "$tmp/a.json" "$tmp/a.json" --max-regress 5
expect "compare_same_verdict" "dispatch .* same$"
run "compare_slow_exit_5" 5 30 compare "$tmp/a.json" "$tmp/b.json" --max-regress 5 --json "$tmp/cmp.json"
expect "compare_slow_verdict" "combine .* slower  REGRESSION"
python3 -c "import json; r=json.load(open('$tmp/cmp.json'))['rows']; assert all(x['verdict']=='slower' and x['regressed'] for x in r), r" &&
	ok "compare_json" || bad "compare_json" "rows"
run "compare_without_gate_exit_0" 0 30 compare "$tmp/a.json" "$tmp/b.json"
run "compare_reversed_is_faster" 0 30 compare "$tmp/b.json" "$tmp/a.json" --max-regress 5
expect "compare_faster_verdict" "dispatch .* faster"

# compare refuses what is not the same experiment, naming the key
run "result_fp8" 0 60 intranode $shape --dtype fp8 --json "$tmp/fp8.json"
run "compare_other_dtype_refused" 2 30 compare "$tmp/a.json" "$tmp/fp8.json"
expect "compare_names_dtype" "dtype: 'bf16' in A, 'fp8' in B"
run "result_narrow" 0 60 intranode $shape --payload narrow --json "$tmp/narrow.json"
run "compare_other_payload_refused" 2 30 compare "$tmp/a.json" "$tmp/narrow.json"
expect "compare_names_payload" "payload: 'wide' in A, 'narrow' in B"
# a result from before --payload had the narrow payload, and says so when read
python3 - "$tmp/narrow.json" "$tmp/old.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
del d["traffic"]["payload"]
json.dump(d, open(sys.argv[2], "w"))
PY
run "compare_old_result_is_narrow" 0 30 compare "$tmp/narrow.json" "$tmp/old.json"
run "result_seed" 0 60 intranode $shape --seed 7 --json "$tmp/seed.json"
run "compare_other_routing_refused" 2 30 compare "$tmp/a.json" "$tmp/seed.json"
expect "compare_names_routing_hash" "routing_hash of point ranks=2 tokens=64 hidden=512"
run "compare_force" 0 30 compare "$tmp/a.json" "$tmp/seed.json" --force
run "result_sweep" 0 60 intranode -r 2 -t 64,128 --hidden 512 -e 8 -k 2 -n 12 -w 1 --json "$tmp/sweep.json"
run "compare_lists_unmatched_points" 0 30 compare "$tmp/a.json" "$tmp/sweep.json"
expect "compare_only_in_b" "only in B: point ranks=2 tokens=128 hidden=512"

# an epbench/1 result is read, and what it lacks is said
python3 - "$tmp/a.json" "$tmp/v1.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["schema"] = "epbench/1"
for k in ("traffic", "provenance"):
    d.pop(k)
for p in d["points"]:
    p.pop("routing_hash")
    for o in p["ops"]:
        o.pop("samples_us")
json.dump(d, open(sys.argv[2], "w"))
PY
run "compare_reads_v1" 0 30 compare "$tmp/v1.json" "$tmp/v1.json"
expect "compare_v1_lacks" "epbench/1 has no samples"

# bad input: one line, exit 2
printf '{"schema": "epbench/9", "command": "intranode", "points": []}' >"$tmp/new.json"
printf '{"x": 1}' >"$tmp/other.json"
printf 'not json' >"$tmp/junk.json"
for c in "missing:$tmp/none.json" "newer:$tmp/new.json" "not_epbench:$tmp/other.json" "not_json:$tmp/junk.json"; do
	run "compare_bad_${c%%:*}" 2 10 compare "$tmp/a.json" "${c#*:}"
	[ "$(wc -l <"$tmp/out")" -eq 1 ] && ok "compare_bad_${c%%:*}_one_line" || bad "compare_bad_${c%%:*}_one_line" "$(cat "$tmp/out")"
done
expect "compare_not_json_named" "junk.json' is not JSON"
run "compare_max_regress_negative" 2 10 compare "$tmp/a.json" "$tmp/a.json" --max-regress -3
run "compare_confidence_above_1" 2 10 compare "$tmp/a.json" "$tmp/a.json" --confidence 1.5

# limits in any run: exit 5 naming point, op, figure and limit; the table marks the op
run "min_algbw_exit_5" 5 60 intranode $shape --min-algbw dispatch=100000
expect "min_algbw_named" "^#   dispatch algbw .* GB/s is below the limit of 100000 GB/s"
expect "min_algbw_marked" "dispatch .*< LIMIT$"
run "max_median_exit_5" 5 60 intranode $shape --max-median-us combine=0.001
run "min_copy_exit_5" 5 60 intranode $shape --min-copy dispatch=100000
run "limits_met_exit_0" 0 60 intranode $shape --min-algbw dispatch=0.0001 --max-median-us combine=1e9
run "wrong_data_outranks_limit" 1 60 intranode $shape --min-algbw dispatch=100000 --fault corrupt:1
run "limit_names_unknown_op" 2 10 intranode $shape --min-algbw hook=1
run "limit_malformed" 2 10 intranode $shape --min-algbw dispatch
run "baseline_regression_exit_5" 5 60 intranode $shape --fault slow:1:3000 --baseline "$tmp/a.json" --max-regress 5
expect "baseline_regression_named" "median .* us is \+[0-9.]+% .* against the baseline's .* over the limit of 5% \(--max-regress\)"
run "baseline_same_exit_0" 0 60 intranode $shape --baseline "$tmp/b.json" --max-regress 5
run "baseline_other_dtype_refused" 2 30 intranode $shape --dtype fp8 --baseline "$tmp/a.json" --max-regress 5
expect "baseline_names_key" "dtype"
run "max_regress_needs_baseline" 2 10 intranode $shape --max-regress 5

# ab: A and B alternately, pooled; a slow B is "slower" and exits 5
run "ab_slow_b_exit_5" 5 120 ab --rounds 2 "$EPBENCH" "$slow" --max-regress 5 --json-a "$tmp/pa.json" -- intranode $shape
expect "ab_slow_verdict" "dispatch .* slower  REGRESSION"
python3 -c "import json; d=json.load(open('$tmp/pa.json')); assert len(d['points'][0]['ops'][0]['samples_us']) == 24" &&
	ok "ab_pooled_json" || bad "ab_pooled_json" "not 2 rounds x 12 samples"
run "ab_no_binary" 2 10 ab ./no-such-epbench "$EPBENCH" -- intranode $shape
run "ab_failed_round" 2 30 ab --rounds 1 "$EPBENCH" "$EPBENCH" -- intranode -r 3 -e 8
expect "ab_failed_round_named" "round 1: .* exited with status 2"
run "ab_rounds_zero" 2 10 ab --rounds 0 "$EPBENCH" "$EPBENCH" -- intranode

# plots: each kind renders, parses as XML and holds its series
if command -v gnuplot >/dev/null && command -v xmllint >/dev/null; then
	run "plot_sweep" 0 60 plot "$tmp/sweep.json" -o "$tmp/sweep.svg"
	xmllint --noout "$tmp/sweep.svg" && grep -q "<title>intranode dispatch</title>" "$tmp/sweep.svg" &&
		grep -q "<title>host copy bandwidth per rank" "$tmp/sweep.svg" && ok "plot_sweep_svg" || bad "plot_sweep_svg" "series"
	run "plot_compare" 0 60 plot "$tmp/a.json" "$tmp/b.json" -o "$tmp/cmp.svg"
	xmllint --noout "$tmp/cmp.svg" && grep -q "<title>combine</title>" "$tmp/cmp.svg" && ok "plot_compare_svg" ||
		bad "plot_compare_svg" "series"
	run "internode_result" 0 120 internode --local-nodes --nodes 3 --ranks-per-node 1 -t 32 --hidden 256 -e 12 -k 3 -n 3 -w 1 --timeout 30 --json "$tmp/in.json"
	run "plot_links" 0 60 plot "$tmp/in.json" --kind links --op combine -o "$tmp/links.svg"
	xmllint --noout "$tmp/links.svg" && grep -q "<title>combine GB/s</title>" "$tmp/links.svg" && ok "plot_links_svg" ||
		bad "plot_links_svg" "series"
	run "plot_png" 0 60 plot "$tmp/sweep.json" --y time -o "$tmp/sweep.png"
	[ "$(head -c 4 "$tmp/sweep.png" | tail -c 3)" = "PNG" ] && ok "plot_png_is_png" || bad "plot_png_is_png" "not a PNG"
	mkdir -p "$tmp/nognuplot" && ln -sf "$(command -v timeout)" "$tmp/nognuplot/timeout"
	PATH="$tmp/nognuplot" run "plot_without_gnuplot_exit_3" 3 30 plot "$tmp/sweep.json" -o "$tmp/x.svg"
	expect "plot_without_gnuplot_names_package" "gnuplot-nox"
	[ ! -e "$tmp/x.svg" ] && ok "plot_failed_leaves_nothing" || bad "plot_failed_leaves_nothing" "x.svg exists"
else
	skipped "plots" "gnuplot or xmllint not installed (scripts/install-deps.sh installs them)"
fi
run "plot_bad_suffix" 2 10 plot "$tmp/a.json" -o "$tmp/x.jpg"
run "plot_links_of_intranode" 2 10 plot "$tmp/a.json" --kind links -o "$tmp/x.svg"
finish gates_test.sh
