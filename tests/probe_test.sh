#!/bin/sh
# probe_test.sh - what a hostile probe of epbench found (issue 8), each pinned by a case
# that failed before its fix. Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=intranode
. "$(dirname "$0")/lib.sh"

# run NAME EXPECTED_EXIT DEADLINE ARGS...: runs epbench, checks the exit status
small="-t 16 --hidden 256 -e 8 -k 2 -n 1 -w 0"

# 1. --case: the expanded buffer was not terminated (garbage "unexpected argument")
: >"$tmp/empty.case"
n_ok=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	"$EPBENCH" intranode --case "$tmp/empty.case" -r 2 $small -q >"$tmp/out" 2>&1 && n_ok=$((n_ok + 1))
done
[ "$n_ok" -eq 10 ] && ok "empty_case_file_10_of_10" || bad "empty_case_file_10_of_10" "$n_ok of 10 passed"

# 2. a sweep whose point count overflowed an int (segfault), 2^31 points (said "out of memory")
if run "huge_sweep_is_usage" 2 10 intranode -r 1:4096:+1 -t 0:4095:+1 --hidden 16:4096:+16 -k 4 -e 16; then
	expect "huge_sweep_names_points" "4294967296 points"
fi
run "sweep_of_2_31_points_is_usage" 2 10 intranode -r 1:2048:+1 -t 1:1024:+1 --hidden 16:16384:+16 -k 4 -e 16

# 3. a rank count that took the host down: refused from the estimate, in well under a second
start=$(date +%s)
if run "ranks_4096_refused_exit_3" 3 20 intranode -r 4096 -e 4096 -t 1 --hidden 256 -k 1 -n 1 -w 0; then
	expect "ranks_4096_figure_named" "needs about [0-9.]+ GiB .*4096 ranks x .* lower"
	[ "$(wc -l <"$tmp/out")" -eq 1 ] && ok "ranks_4096_one_line_before_the_table" || bad "ranks_4096_one_line_before_the_table" "table printed"
fi
[ $(( $(date +%s) - start )) -le 5 ] && ok "ranks_4096_refused_fast" || bad "ranks_4096_refused_fast" "took $(( $(date +%s) - start )) s"
[ -z "$(live_ranks)" ] && ok "ranks_4096_nothing_spawned" || bad "ranks_4096_nothing_spawned" "$(live_ranks)"
start=$(date +%s)
run "tokens_16m_refused_from_estimate" 3 20 intranode -t 16777216 --hidden 7168
[ $(( $(date +%s) - start )) -le 3 ] && ok "tokens_16m_refused_fast" || bad "tokens_16m_refused_fast" "took $(( $(date +%s) - start )) s (was 17-19 s)"

# 4. --routing file:/dev/zero looped forever, in every subcommand
for cmd in intranode low-latency internode; do
	run "dev_zero_routing_$cmd" 2 10 $cmd -r 2 -e 8 -k 2 --routing file:/dev/zero
done
expect "dev_zero_routing_named" "routing file '/dev/zero' is not a regular file or a pipe"

# 5. reports that cannot be written: refused before spawning, or exit 3 naming the path
mkdir -p "$tmp/rdir"
run "json_is_a_directory" 2 10 intranode -r 2 $small --json "$tmp/rdir"
run "json_missing_parent" 2 10 intranode -r 2 $small --json "$tmp/nope/r.json"
run "json_empty_name" 2 10 intranode -r 2 $small --json ''
run "json_in_proc" 2 10 intranode -r 2 $small --json /proc/x
run "csv_is_a_directory" 2 10 intranode -r 2 $small --csv "$tmp/rdir"
[ "$(wc -l <"$tmp/out")" -eq 1 ] && ok "report_refusal_one_line" || bad "report_refusal_one_line" "$(cat "$tmp/out")"
run "internode_json_missing_parent" 2 20 internode --local-nodes --nodes 2 --ranks-per-node 1 $small --json "$tmp/nope/r.json"
mkdir -p "$tmp/gone"
"$EPBENCH" intranode -r 2 -t 16,16 --hidden 256 -e 8 -k 2 -n 400000 -w 0 --json "$tmp/gone/r.json" >"$tmp/out" 2>&1 &
lp=$!
timeout 60 sh -c "until [ -e '$tmp/gone/r.json' ]; do sleep 0.05; done" # the first point's report
rm -rf "$tmp/gone"
wait $lp; got=$?
[ "$got" -eq 3 ] && grep -q "report: writing '$tmp/gone/r.json' failed" "$tmp/out" && ok "report_lost_after_run_exit_3" ||
	bad "report_lost_after_run_exit_3" "exit $got"

# 7. --perf-ctl: only FIFOs; a regular file was overwritten, a missing one ignored
printf 'keep me\n' >"$tmp/plain"
run "perf_ctl_regular_file_refused" 2 10 intranode -r 2 $small --perf-ctl "$tmp/plain"
[ "$(cat "$tmp/plain")" = "keep me" ] && ok "perf_ctl_file_untouched" || bad "perf_ctl_file_untouched" "overwritten"
run "perf_ctl_missing_refused" 2 10 intranode -r 2 $small --perf-ctl "$tmp/nofifo"
mkfifo "$tmp/ctl"
(cat "$tmp/ctl" >"$tmp/ctl.got") &
run "perf_ctl_fifo_accepted" 0 30 intranode -r 2 $small --perf-ctl "$tmp/ctl"
sleep 0.2
grep -q enable "$tmp/ctl.got" && ok "perf_ctl_fifo_written" || bad "perf_ctl_fifo_written" "nothing on the FIFO"

# 8. a fault aimed at a rank that does not exist
run "fault_rank_outside_run" 2 10 intranode -r 2 $small --fault die:99
expect "fault_rank_named" "rank 99"
run "fault_rank_in_larger_sweep_point_ok" 4 60 intranode -r 2,4 $small --timeout 3 --fault die:3

# 9. node rank outside the job: one rule for every subcommand
run "ll_nodes_1_node_rank_5" 2 10 low-latency --nodes 1 --node-rank 5
run "internode_nodes_1_node_rank_5" 2 10 internode --nodes 1 --node-rank 5

# 10. SIGINT to the --local-nodes launcher alone (not its group): the job ends within a second
"$EPBENCH" internode --local-nodes --nodes 2 --ranks-per-node 1 -t 16 --hidden 256 -e 8 -k 2 -n 1000000 -w 0 >"$tmp/out" 2>&1 &
lp=$!
# once both ranks run (a loaded machine forks late; a signal during the rendezvous is another case)
wait_rank epbench-r0 >/dev/null
wait_rank epbench-r1 >/dev/null
sleep 1
kill -INT $lp
t0=$(date +%s%N)
wait $lp; got=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$got" -eq 4 ] && [ "$ms" -le 1500 ] && ok "sigint_to_node_launcher_ends_job" || bad "sigint_to_node_launcher_ends_job" "exit $got after $ms ms"
sleep 0.3
[ -z "$(live_ranks)" ] && [ -z "$(ours_named epbench-n0)" ] && ok "sigint_no_orphans" || bad "sigint_no_orphans" "left: $(live_ranks)"

# 11. SIGSTOP of rank 1 in a node job: rank 1 must be named, with the timeout in force
"$EPBENCH" internode --local-nodes --nodes 2 --ranks-per-node 2 -t 16 --hidden 256 -e 16 -k 4 -n 1000000 -w 1 --timeout 5 >"$tmp/out" 2>&1 &
lp=$!
# once rank 1 runs (a loaded machine forks late), give it time to reach its ops
wait_rank epbench-r1 >/dev/null
sleep 2
kill_ranks STOP epbench-r1
wait $lp; got=$?
kill_ranks 9 epbench-r1
[ "$got" -eq 4 ] && ok "stopped_rank_exit_4" || bad "stopped_rank_exit_4" "exit $got"
expect "stopped_rank_1_named" "on node 0, rank 1 is stopped .*--timeout 5.0 s"

# 12. smaller ones
printf '0 1\r\n2 3\r\n' >"$tmp/crlf.txt"
run "crlf_routing_file" 0 30 intranode -r 2 -t 4 --hidden 256 -e 4 -k 2 --routing "file:$tmp/crlf.txt" -n 1 -w 0
printf '0 1\n1 \001\002\033[31m\n' >"$tmp/junk.txt"
run "junk_routing_file" 2 10 intranode -r 2 -e 4 -k 2 --routing "file:$tmp/junk.txt"
if LC_ALL=C grep -q "$(printf '[\001-\010\016-\037]')" "$tmp/out"; then bad "junk_escaped" "raw control bytes printed"
else expect "junk_escaped" "bad entry '\\\\x01\\\\x02\\\\x1b\[31m'"; fi
run "routing_file_is_directory" 2 10 intranode -r 2 -e 4 -k 2 --routing "file:$tmp"
expect "routing_directory_named" "is a directory"
printf 'x' >"$tmp/afile"
run "dump_to_a_file_refused" 2 10 intranode -r 2 $small --dump "$tmp/afile"
expect "dump_file_named" "$tmp/afile"
run "dump_empty_refused" 2 10 intranode -r 2 $small --dump ''
run "empty_sweep_element" 2 10 intranode -t 1,,2
next_port
# the holder takes the port even past an earlier test's TIME_WAIT (SO_REUSEADDR still forbids a second listener)
python3 -c "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', $port)); s.listen(1); open('$tmp/held', 'w').close(); time.sleep(20)" &
holder=$!
for i in $(seq 50); do [ -e "$tmp/held" ] && break; sleep 0.1; done
run "port_in_use_exit_3" 3 20 internode --nodes 2 --node-rank 0 --ranks-per-node 1 --master 127.0.0.1:$port $small --timeout 3
expect "port_in_use_named" "port $port"
kill $holder 2>/dev/null
run "internode_shape_error_once" 2 20 internode --local-nodes --nodes 2 --ranks-per-node 2 -e 7
[ "$(wc -l <"$tmp/out")" -eq 1 ] && ok "internode_shape_error_printed_once" || bad "internode_shape_error_printed_once" "$(cat "$tmp/out")"

[ -z "$(live_ranks)" ] && ok "no_orphans" || bad "no_orphans" "$(live_ranks)"
finish probe_test.sh
