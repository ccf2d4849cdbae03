#!/bin/sh
# soak_test.sh - --soak: every pass checked with its own seed, failures counted
# per pass with a one-sided 95% Clopper-Pearson bound, the first failure
# named with a command that repeats just that pass; faults aimed at one
# iteration with @ITER. Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=intranode
. "$(dirname "$0")/lib.sh"
small="-r 2 -t 64 --hidden 256 -e 8 -k 2"
has() { grep -qF -- "$2" "$tmp/out" && ok "$1" || bad "$1" "no '$2'"; }

# shellcheck disable=SC2086
run "soak_clean" 0 120 intranode $small --soak 200 --json "$tmp/clean.json"
has "soak_bound_0_of_200" "200 passes (seeds 0 to 199)"
has "soak_bound_value" "0 failed, rate < 1.49% at 95% (one-sided Clopper-Pearson)"
python3 - "$tmp/clean.json" <<'PY' && ok "soak_json" || bad "soak_json" "soak object"
import json, sys
p = json.load(open(sys.argv[1]))["points"][0]
s = p["soak"]
assert s["passes"] == 200 and s["failed"] == 0 and s["first_failed_pass"] is None, s
assert abs(s["rate_upper_95"] - (1 - 0.05 ** (1 / 200))) < 1e-9, s
assert p["check"]["wrong_elements"] == 0 and p["check"]["compared_bytes"] > 0
PY

# one corrupted pass out of 100: counted once, named, and repeated alone
# shellcheck disable=SC2086
run "soak_one_bad_pass" 1 120 intranode $small --soak 100 --fault corrupt:1@37
has "soak_counts_one" "1 failed, rate < 4.66% at 95%"
has "soak_names_pass" "first failure in pass 37 (seed 37): rank 1: recv_x["
first=$(sed -n 's/^# soak: first failure in pass 37 (seed 37): //p' "$tmp/out")
repro=$(sed -n 's/^# soak: reproduce: epbench //p' "$tmp/out")
# shellcheck disable=SC2086
run "soak_reproduce_line" 1 60 $repro
has "soak_reproduce_same_failure" "first failure in pass 37 (seed 37): $first"
has "soak_reproduce_one_pass" "1 passes (seeds 37 to 37)"
# pass i runs seed + i: pass 0 of --seed 37 is pass 37 of --seed 0
# shellcheck disable=SC2086
run "soak_pass_is_seed_plus_index" 1 60 intranode $small --seed 37 --soak 1 --fault corrupt:1@0
has "soak_same_row_from_seed" "$first"

# a stale row: its reproduce line repeats the pass before it too
# shellcheck disable=SC2086
run "soak_stale" 1 60 intranode $small --soak 6 --fault stale:0@4
has "soak_stale_pass" "first failure in pass 4 (seed 4): rank 0: recv_x["
repro=$(sed -n 's/^# soak: reproduce: epbench //p' "$tmp/out")
case "$repro" in *"--soak-first 3 --soak 2") ok "soak_stale_repro_two_passes" ;; *) bad "soak_stale_repro_two_passes" "$repro" ;; esac
# shellcheck disable=SC2086
run "soak_stale_reproduced" 1 60 $repro
has "soak_stale_same_pass" "first failure in pass 4 (seed 4): rank 0: recv_x["

# fresh routing per pass, low-latency (FP8, uneven tokens, zero-copy) and intranode (bias, int8)
run "soak_low_latency" 0 120 low-latency -r 3 -t 16 --hidden 256 -e 12 -k 3 --dtype fp8 --uneven-tokens 1 --zero-copy --soak 150
has "soak_low_latency_count" "150 passes"
run "soak_intranode_variants" 0 120 intranode -r 3 -t 32 --hidden 256 -e 12 -k 3 --dtype int8 --bias 2 --uneven-tokens 1 --soak 150
has "soak_intranode_count" "0 failed"

# a rank dying in pass 3 of a soak, a late arrival in timed iteration 2
# shellcheck disable=SC2086
run "soak_die_at_pass" 4 60 intranode $small --soak 10 --fault die:1@3 --timeout 5
has "soak_die_names_rank" "rank 1"
# shellcheck disable=SC2086
run "slow_at_one_iteration" 0 60 intranode $small -n 5 -w 0 --op dispatch --fault slow:1:300000@2 --json "$tmp/slow.json"
python3 - "$tmp/slow.json" <<'PY' && ok "slow_strikes_only_its_iteration" || bad "slow_strikes_only_its_iteration" "samples"
import json, sys
s = json.load(open(sys.argv[1]))["points"][0]["ops"][0]["samples_us"]
assert s[2] >= 300000 and max(s[:2] + s[3:]) < 150000, s
PY
finish soak_test.sh
