#!/bin/sh
# run-one.sh RES LIMIT ID COMMAND... - tests/run.sh's worker. Runs COMMAND
# under a deadline of LIMIT seconds (then KILL 5 s later), keeps its output
# in RES/ID.out, its exit status in RES/ID.rc and its seconds in RES/ID.sec,
# then prints the output whole while holding RES/lock, so that commands run
# side by side never interleave their lines. Always exits 0: run.sh judges.
set -u
res=$1 limit=$2 id=$3
shift 3
t0=$(date +%s)
# in the background, so that a TERM from run.sh reaches timeout, which ends
# the command's whole process group
timeout -k 5 "$limit" "$@" >"$res/$id.out" 2>&1 &
child=$!
trap 'kill -TERM "$child" 2>/dev/null; exit 143' INT TERM
wait "$child"
echo $? >"$res/$id.rc"
echo "$(($(date +%s) - t0)) $*" >"$res/$id.sec"
flock "$res/lock" cat "$res/$id.out"
exit 0
