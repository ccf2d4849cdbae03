#!/bin/sh
# soft_roce_test.sh - end-to-end cases of the verbs path on two emulated nodes (scripts/soft-roce.sh).
# One boot of the two guests runs every step in turn (this script writes them into
# a script both guests run); a second, short boot checks that one node's failure
# ends the run. When qemu cannot run here every case is skipped with
# the harness's reason. Ends with "N passed, N failed, N skipped".
# run.sh: alone (two qemu guests take both cores; their boot has deadlines)
set -u
here=$(dirname "$0")
HARNESS=${SOFT_ROCE:-$here/../scripts/soft-roce.sh}
EPBENCH=${EPBENCH:-./epbench}
# The epbench cases, run on both nodes (node rank and master come from the
# harness's NODE_RANK, NNODES, MASTER_ADDR, MASTER_PORT; the guest adds
# --gid-index, the IPv4 RoCE v2 GID it found).
EP_COMMON="--transport verbs --ib-dev rxe0 --nodes 2 -t 32 --hidden 256 -n 2 -w 1"
EP_ARGS="internode $EP_COMMON --ranks-per-node 1 -e 4 -k 2"
pass=0 fail=0 skip=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

ok() { echo "ok    $1"; pass=$((pass + 1)); }
skipped() { echo "SKIP  $1: $2"; skip=$((skip + 1)); }
# bad NAME WHY [LOG...]: a failed case, with the last lines of each log
bad() {
	echo "FAIL  $1: $2"; fail=$((fail + 1)); shift 2
	for f in "$@"; do [ -s "$f" ] && tail -n 15 "$f" | sed "s#^#      | $(basename "$f"): #"; done
	return 0
}

# The harness keeps its run directories in $tmp/runs (TMPDIR), so that this
# script can tell its own qemu processes and temp dirs from other runs'.
mkdir -p "$tmp/runs"
# shellcheck disable=SC2009  # pgrep -f would match this script's own lines
qemus() { ps -eo args= | grep -v grep | grep -cF "sr.run=$tmp/runs/"; }
runs() { ls -A "$tmp/runs"; }

# Is there an epbench verbs path to run yet?
ep_why=""
if [ ! -x "$EPBENCH" ]; then
	ep_why="no epbench binary at $EPBENCH"
elif ! "$EPBENCH" internode --help >"$tmp/ephelp" 2>&1; then
	ep_why="epbench has no internode subcommand yet ($(head -n 1 "$tmp/ephelp"))"
elif ! grep -q -- '--transport' "$tmp/ephelp" || ! grep -qw verbs "$tmp/ephelp"; then
	ep_why="epbench internode --help lists no --transport verbs yet"
fi
[ -z "$ep_why" ] && EP_CMD="$EPBENCH $EP_ARGS" || EP_CMD=""
# Low-latency across nodes, when the binary has it.
ll_why=""
if [ -n "$ep_why" ]; then
	ll_why=$ep_why
elif ! "$EPBENCH" low-latency --help 2>&1 | grep -q -- '--nodes'; then
	ll_why="epbench low-latency --help lists no --nodes yet (low-latency across nodes not built)"
fi

# The steps both guests run, one after another; each writes NAME.nodeN.log and
# NAME.nodeN.rc into SOFT_ROCE_OUT (this script's $tmp, shared read-write).
# perftest: server on node 0, client on node 1, retried while the server is
# not listening yet; each tool its own TCP port so a late client cannot reach
# the next tool's server.
cat >"$tmp/steps.sh" <<'EOF'
set -u
n=$NODE_RANK d=$SOFT_ROCE_OUT gid=$SOFT_ROCE_GID_INDEX
step() { name=$1; shift; "$@" >"$d/$name.node$n.log" 2>&1; echo $? >"$d/$name.node$n.rc"; }
perf() {
	if [ "$n" = 0 ]; then timeout 120 "$@"; return; fi
	for i in $(seq 60); do
		timeout 120 "$@" "$MASTER_ADDR" >/tmp/perf.log 2>&1; rc=$?
		grep -q "Couldn't connect to" /tmp/perf.log || break
		sleep 1
	done
	cat /tmp/perf.log; return $rc
}
step ibv_devices ibv_devices
step ib_write_bw perf ib_write_bw -d "$SOFT_ROCE_DEV" -x "$gid" -p 18515 -n 1000
step ib_send_lat perf ib_send_lat -d "$SOFT_ROCE_DEV" -x "$gid" -p 18516 -n 100
[ -n "${1:-}" ] || exit 0
ep=$1; shift
common="$EP_COMMON --gid-index $gid"
step preflight timeout 60 "$ep" accept --preflight-only --transport verbs --json "$d/preflight.node$n.json"
# --fault qp-error: node 0's queue pair to node 1 forced into the error state before
# timed iteration 2; the job must end (exit 4) naming the link, not hang
# shellcheck disable=SC2086
step qperr timeout 120 "$ep" internode $common --ranks-per-node 1 -e 4 -k 2 -n 20 --timeout 10 --fault qp-error:0-1@2
# the acceptance job over verbs: the pair's run checked, rxe0's counters read around it
step accept timeout 300 "$ep" accept --transport verbs --ib-dev "$SOFT_ROCE_DEV" --gid-index "$gid" --ranks-per-node 1 \
	-t 32 --hidden 256 -e 4 -k 2 --ll-experts 4 --ll-tokens 16 -n 2 --scopes nodes,pairs --iperf-seconds 1 \
	--json "$d/accept.node$n.json" --report "$d/accept.node$n.md"
# shellcheck disable=SC2086
step epbench timeout 300 "$ep" internode $common --ranks-per-node 1 -e 4 -k 2
# shellcheck disable=SC2086
step epbench_2x2 timeout 300 "$ep" internode $common --ranks-per-node 2 -e 8 -k 3 --dtype fp8 --bias 2
# shellcheck disable=SC2086
[ -z "$LL_WHY" ] && step epbench_ll timeout 300 "$ep" low-latency $common --ranks-per-node 1 -e 4 -k 2 --dtype fp8
# A node dies mid-run: node 1's whole epbench is killed; node 0 must end
# within its --timeout (10 s) with exit 4, naming node 1.
if [ "$n" = 1 ]; then
	# shellcheck disable=SC2086
	"$ep" internode $common --ranks-per-node 1 -e 4 -k 2 -n 100000 --timeout 10 >"$d/killed.node1.log" 2>&1 &
	sleep 20
	kill -9 $!
	echo killed >"$d/killed.node1.rc"
else
	start=$(date +%s)
	# shellcheck disable=SC2086
	step killed timeout 120 "$ep" internode $common --ranks-per-node 1 -e 4 -k 2 -n 100000 --timeout 10
	echo $(( $(date +%s) - start )) >"$d/killed.secs"
fi
exit 0
EOF

start=$(date +%s)
# shellcheck disable=SC2086
EP_COMMON=$EP_COMMON LL_WHY=$ll_why TMPDIR=$tmp/runs "$HARNESS" --timeout 780 --grace 60 --out "$tmp" -- \
	env EP_COMMON="$EP_COMMON" LL_WHY="$ll_why" bash "$tmp/steps.sh" ${EP_CMD:+$EPBENCH} >"$tmp/run.log" 2>&1
rc=$?
secs=$(( $(date +%s) - start ))

if [ "$rc" -eq 77 ]; then
	why=$(sed -n 's/^soft-roce: skipped: //p' "$tmp/run.log" | head -n 1)
	for c in ibv_devices_lists_rxe0 ib_write_bw_between_nodes ib_send_lat_between_nodes \
		epbench_internode_verbs epbench_internode_verbs_2x2_fp8 epbench_low_latency_verbs \
		epbench_killed_node_ends_job epbench_preflight_rxe0 epbench_accept_verbs epbench_qp_error node_failure_ends_run \
		nothing_left_behind; do
		skipped "$c" "${why:-qemu cannot run here}"
	done
	echo "soft_roce_test.sh: $pass passed, $fail failed, $skip skipped"
	exit 0
fi
grep '^soft-roce: ' "$tmp/run.log" | sed 's/^/# /'
echo "# two guests, every step: ${secs} s (harness exit $rc)"

# both NAME: the step NAME exited 0 on both nodes
both() { [ "$(cat "$tmp/$1.node0.rc" 2>/dev/null)" = 0 ] && [ "$(cat "$tmp/$1.node1.rc" 2>/dev/null)" = 0 ]; }
rcs() { echo "exit $(cat "$tmp/$1.node0.rc" 2>/dev/null || echo none) on node0, $(cat "$tmp/$1.node1.rc" 2>/dev/null || echo none) on node1 (harness exit $rc)"; }

if both ibv_devices && grep -qw rxe0 "$tmp/ibv_devices.node0.log" && grep -qw rxe0 "$tmp/ibv_devices.node1.log"; then
	ok ibv_devices_lists_rxe0
else
	bad ibv_devices_lists_rxe0 "$(rcs ibv_devices); see whether the logs list rxe0" "$tmp/ibv_devices.node0.log" "$tmp/ibv_devices.node1.log" "$tmp/run.log"
fi
# The result row: "65536 1000 peak average rate".
row=$(awk '$1 == 65536 && $2 == 1000 { print $4; exit }' "$tmp/ib_write_bw.node1.log" 2>/dev/null)
if both ib_write_bw && [ -n "$row" ]; then
	ok ib_write_bw_between_nodes
	echo "#   ib_write_bw: 1000 RDMA WRITEs of 64 KiB, $row MB/s average"
else
	bad ib_write_bw_between_nodes "$(rcs ib_write_bw)" "$tmp/ib_write_bw.node0.log" "$tmp/ib_write_bw.node1.log"
fi
row=$(awk '$1 == 2 && $2 == 100 { print $5; exit }' "$tmp/ib_send_lat.node1.log" 2>/dev/null)
if both ib_send_lat && [ -n "$row" ]; then
	ok ib_send_lat_between_nodes
	echo "#   ib_send_lat: 100 SENDs of 2 B, typical $row us one way"
else
	bad ib_send_lat_between_nodes "$(rcs ib_send_lat)" "$tmp/ib_send_lat.node0.log" "$tmp/ib_send_lat.node1.log"
fi
if [ -n "$ep_why" ]; then
	skipped epbench_internode_verbs "$ep_why"
elif both epbench; then
	ok epbench_internode_verbs
	sed 's/^/#   node0: /' "$tmp/epbench.node0.log"
else
	bad epbench_internode_verbs "$(rcs epbench) ($EP_CMD)" "$tmp/epbench.node0.log" "$tmp/epbench.node1.log"
fi

if [ -n "$ep_why" ]; then
	skipped epbench_internode_verbs_2x2_fp8 "$ep_why"
	skipped epbench_killed_node_ends_job "$ep_why"
else
	if both epbench_2x2 && grep -q "verdict: PASS" "$tmp/epbench_2x2.node0.log"; then
		ok epbench_internode_verbs_2x2_fp8
		grep -E "^ +2 |verdict|check:" "$tmp/epbench_2x2.node0.log" | sed 's/^/#   node0: /'
	else
		bad epbench_internode_verbs_2x2_fp8 "$(rcs epbench_2x2)" "$tmp/epbench_2x2.node0.log" "$tmp/epbench_2x2.node1.log"
	fi
	secs_k=$(cat "$tmp/killed.secs" 2>/dev/null || echo 999)
	if [ "$(cat "$tmp/killed.node0.rc" 2>/dev/null)" = 4 ] && grep -q "node 1" "$tmp/killed.node0.log" && [ "$secs_k" -le 60 ]; then
		ok epbench_killed_node_ends_job
		grep -i "node 1" "$tmp/killed.node0.log" | head -n 2 | sed 's/^/#   node0: /'
	else
		bad epbench_killed_node_ends_job "node 0 exit $(cat "$tmp/killed.node0.rc" 2>/dev/null || echo none) after $secs_k s (want 4, naming node 1)" "$tmp/killed.node0.log" "$tmp/killed.node1.log"
	fi
fi
# the preflight in each guest finds rxe0, its rate and its RoCE v2 GID (exit 0, or 3 on a FAIL it names)
pf_rc0=$(cat "$tmp/preflight.node0.rc" 2>/dev/null || echo none)
if [ -n "$ep_why" ]; then
	skipped epbench_preflight_rxe0 "$ep_why"
elif ! "$EPBENCH" accept --help >/dev/null 2>&1; then
	skipped epbench_preflight_rxe0 "epbench has no accept subcommand yet"
elif { [ "$pf_rc0" = 0 ] || [ "$pf_rc0" = 3 ]; } && grep -qE "port rxe0/1 rate +[0-9.]+ Gb/s" "$tmp/preflight.node0.log" &&
     grep -qE "PASS +port rxe0/1 RoCE v2 GID +index" "$tmp/preflight.node0.log"; then
	ok epbench_preflight_rxe0
	grep -E "^  (PASS|WARN|FAIL)|^# preflight" "$tmp/preflight.node0.log" | sed 's/^/#   node0: /'
else
	bad epbench_preflight_rxe0 "$(rcs preflight)" "$tmp/preflight.node0.log"
fi
if [ -n "$ll_why" ]; then
	skipped epbench_low_latency_verbs "$ll_why"
elif both epbench_ll && grep -q "verdict: PASS" "$tmp/epbench_ll.node0.log"; then
	ok epbench_low_latency_verbs
	grep -E "verdict|check:" "$tmp/epbench_ll.node0.log" | sed 's/^/#   node0: /'
else
	bad epbench_low_latency_verbs "$(rcs epbench_ll)" "$tmp/epbench_ll.node0.log" "$tmp/epbench_ll.node1.log"
fi

# --fault qp-error under verbs: exit 4 on node 0 within its deadline, the link named
if [ -n "$ep_why" ]; then
	skipped epbench_qp_error "$ep_why"
elif [ "$(cat "$tmp/qperr.node0.rc" 2>/dev/null)" = 4 ] && grep -qi "link\|queue pair\|flush" "$tmp/qperr.node0.log"; then
	ok epbench_qp_error
	grep -iE "likely|queue pair|flush" "$tmp/qperr.node0.log" | head -n 3 | sed 's/^/#   node0: /'
else
	bad epbench_qp_error "$(rcs qperr)" "$tmp/qperr.node0.log" "$tmp/qperr.node1.log"
fi

# the acceptance job over verbs: the pair run is checked byte for byte and
# PASS, and rxe0's counters were read around it (Soft-RoCE has only
# hw_counters; the wire bytes are the guest interface's)
if [ -n "$ep_why" ]; then
	skipped epbench_accept_verbs "$ep_why"
elif [ -s "$tmp/accept.node0.json" ] && python3 - "$tmp/accept.node0.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
v = {i["name"]: i["verdict"] for i in d["items"]}
assert v.get("pair 0-1") == "PASS", v
pair = [r["run"] for r in d["runs"] if r["step"] == "pair 0-1" and r["node"] == 0][0]
assert pair["exit"] == 0 and pair["result"]["points"][0]["check"]["wrong_elements"] == 0
delta = pair["counters"]["delta"]
assert any(k.startswith("rxe0/1 hw ") for k in delta), sorted(delta)
assert any(k.endswith(" tx_bytes") and v > 0 for k, v in delta.items()), delta
print("#   accept over verbs: %s; pair 0-1 %s; rxe0 hw counters moved: %s; %s" % (d["verdict"], v["pair 0-1"],
      ", ".join("%s +%d" % (k.split(" hw ")[1], x) for k, x in sorted(delta.items()) if " hw " in k and x) or "none",
      ", ".join("%s %.3f" % (k, x) for i in d["items"] for k, x in i["figures"].items() if "wire" in k)))
for i in d["items"]:
    if i["verdict"] != "PASS":
        print("#   accept: %s %s: %s" % (i["verdict"], i["name"], i["why"]))
PY
then
	ok epbench_accept_verbs
else
	bad epbench_accept_verbs "$(rcs accept)" "$tmp/accept.node0.log" "$tmp/accept.node1.log"
fi

# One node fails while the other would run on: the harness returns the failed
# node's status, names it, and stops the other after --grace seconds. node0
# may still be booting or waiting for node1's ping when node1 gives up: any
# phase it is named in will do.
start=$(date +%s)
# shellcheck disable=SC2016  # expanded in the guest
TMPDIR=$tmp/runs "$HARNESS" --timeout 120 --grace 5 -- sh -c 'if [ "$NODE_RANK" = 1 ]; then echo giving up; exit 3; fi; sleep 600' \
	>"$tmp/fail.log" 2>&1
got=$?
secs=$(( $(date +%s) - start ))
if [ "$got" -eq 3 ] && grep -q '^\[node1\] giving up' "$tmp/fail.log" &&
   grep -q '^soft-roce: node1 exit 3; still running 5 s later, stopped: node0 (' "$tmp/fail.log" && [ "$secs" -le 120 ]; then
	ok node_failure_ends_run
else
	bad node_failure_ends_run "exit $got (want 3) after $secs s" "$tmp/fail.log"
fi

if [ "$(qemus)" -eq 0 ] && [ -z "$(runs)" ]; then
	ok nothing_left_behind
else
	bad nothing_left_behind "$(qemus) qemu processes left, run directories left: $(runs)"
fi

echo "soft_roce_test.sh: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
