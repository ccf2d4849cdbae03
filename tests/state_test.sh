#!/bin/sh
# state_test.sh - every rank's state as one block: on SIGUSR1 while the run
# goes on (its result unchanged), and when a point ends stuck, with the
# likely culprit named in the block and in the JSON error.
# Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=intranode
. "$(dirname "$0")/lib.sh"
small="-r 3 -t 32 --hidden 256 -e 12 -k 3"

# SIGUSR1 mid-run: the block on stderr, the run goes on and passes
# shellcheck disable=SC2086
"$EPBENCH" intranode $small -n 400000 -w 0 --op dispatch --progress off -q --json "$tmp/usr1.json" \
	>"$tmp/out" 2>"$tmp/err" &
pid=$!
bg="$bg $pid"
sleep 1.5
kill -USR1 "$pid" 2>/dev/null
wait "$pid"
got=$?
cat "$tmp/err" >>"$tmp/out"
[ "$got" -eq 0 ] && ok "usr1_run_goes_on" || bad "usr1_run_goes_on" "exit $got"
grep -q "^# state of 3 ranks (SIGUSR1; the run goes on):" "$tmp/err" && ok "usr1_block" || bad "usr1_block" "no block"
[ "$(grep -cE '^#  +[0-2] +[0-9]+ ' "$tmp/err")" -eq 3 ] && ok "usr1_line_per_rank" || bad "usr1_line_per_rank" "not 3 lines"
grep -q '"verdict": "PASS"' "$tmp/usr1.json" && ok "usr1_result_kept" || bad "usr1_result_kept" "no PASS in JSON"

# a hung rank: the block when the point ends, the culprit in the error
# shellcheck disable=SC2086
run "hang_ends" 4 30 intranode $small -n 3 -w 0 --fault hang:2 --timeout 2 --json "$tmp/hang.json"
expect "hang_block" "^# state of 3 ranks \(the point ends stuck\):"
expect "hang_culprit" "^# likely: rank 2 \(phase fault.hang\) holds up ranks 0, 1 and waits for no one"
grep -q "likely: rank 2 (phase fault.hang) holds up" "$tmp/hang.json" && ok "hang_culprit_in_json" ||
	bad "hang_culprit_in_json" "not in the JSON error"

# a stopped rank process (a debugger, SIGSTOP): named as stopped
# shellcheck disable=SC2086
"$EPBENCH" intranode $small -n 400000 -w 0 --op dispatch --timeout 2 --progress off -q >"$tmp/out" 2>&1 &
pid=$!
bg="$bg $pid"
sleep 1.5
kill -STOP "$(pgrep -P "$pid" -x epbench-r1)" 2>/dev/null
wait "$pid"
got=$?
[ "$got" -eq 4 ] && ok "stopped_ends" || bad "stopped_ends" "exit $got"
expect "stopped_named" "^# likely: rank 1 is stopped \(SIGSTOP or a debugger\) in phase [a-z.]+; ranks 0, 2 wait for it"
finish state_test.sh
