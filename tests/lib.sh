# lib.sh - what the end-to-end test scripts share; sourced, not run.
#
# Set SUBCOMMAND (the epbench subcommand under test) before sourcing. Gives:
# counters and verdict lines (ok, bad, skipped, finish), a private $tmp
# removed on exit with every background node started here, live_ranks,
# run (one epbench invocation with its wanted exit status), and for
# multi-node suites: where (netns or loopback), next_port, cluster (one
# job of N emulated nodes), start_node (one node by hand on loopback) and
# node_fault (kill or stop node 1 of a running 2-node job).
# Every process this script starts carries its tag in the environment (so
# do the ranks of emulated nodes in other sessions and namespaces):
# live_ranks and kill_ranks see only those, so another epbench job on the
# machine (a second test run, a benchmark) is neither an orphan nor killed.
EP_TEST_TAG=${EP_TEST_TAG:-$$.$(date +%s%N)}
export EP_TEST_TAG
# No host copy probe in each of the thousands of small runs (0.3-1 s of a
# 2-core machine each); a script that checks the copy figures sets it on.
EPBENCH_COPY_PROBE=${EPBENCH_COPY_PROBE:-off}
export EPBENCH_COPY_PROBE
EPBENCH=${EPBENCH:-./epbench}
lib_here=$(cd "$(dirname "$0")" && pwd)
cluster_sh="$lib_here/../scripts/netns-cluster.sh"
pass=0 fail=0 skip=0
tmp=$(mktemp -d)
bg=""
lib_cleanup() { for p in $bg; do kill -9 "-$p" 2>/dev/null || kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap lib_cleanup EXIT INT TERM

ok() { echo "ok    $1"; pass=$((pass + 1)); }
# bad NAME WHY: a failed case, with the tail of the last run's output
bad() { echo "FAIL  $1: $2"; fail=$((fail + 1)); [ -s "$tmp/out" ] && sed 's/^/      | /' "$tmp/out" | tail -n 15; return 0; }
skipped() { echo "SKIP  $1: $2"; skip=$((skip + 1)); }
# finish NAME: the closing line tests/run.sh adds up, and the exit status
finish() { echo "$1: $pass passed, $fail failed, $skip skipped"; [ "$fail" -eq 0 ]; }

# ours PID: the process carries this script's tag
ours() { tr '\0' '\n' 2>/dev/null <"/proc/$1/environ" | grep -qxF "EP_TEST_TAG=$EP_TEST_TAG"; }
# Live rank processes started by this script (zombies are dead: whoever
# adopted them reaps them).
live_ranks() {
	ps -eo pid=,stat=,comm= | awk '$3 ~ /^epbench-r[0-9]+$/ && $2 !~ /^Z/' | while read -r p st c; do
		ours "$p" && echo "$p $st $c"
	done
}
# wait_rank NAME: waits (up to 30 s, for a loaded machine) until this script's process NAME runs;
# prints its pid (nothing when it never came)
wait_rank() {
	i=0
	while [ "$i" -lt 300 ]; do
		for p in $(pgrep -x "$1"); do ours "$p" && { echo "$p"; return 0; }; done
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
# ours_named NAME: this script's processes named NAME (other jobs on the machine are not ours)
ours_named() { for p in $(pgrep -x "$1"); do ours "$p" && echo "$p"; done; }
# kill_ranks SIGNAL NAME: signal this script's processes named NAME
kill_ranks() { for p in $(pgrep -x "$2"); do ours "$p" && kill "-$1" "$p"; done; }

# run NAME WANT DEADLINE ARGS...: epbench ARGS must exit WANT within DEADLINE
# seconds; its output is in $tmp/out (a script may define its own run)
run() {
	name=$1 want=$2 limit=$3; shift 3
	timeout -k 2 "$limit" "$EPBENCH" "$@" >"$tmp/out" 2>&1
	got=$?
	if [ "$got" -eq "$want" ]; then ok "$name"; return 0; fi
	bad "$name" "exit $got, want $want (epbench $*)"
	return 1
}

# expect NAME PATTERN: the last run's output contains PATTERN (grep -E)
expect() { grep -qE -- "$2" "$tmp/out" && ok "$1" || bad "$1" "no line matching '$2'"; }

# ---- emulated clusters ------------------------------------------------------

# Ports of TCP runs: a range of 5000 per tests/run.sh worker slot (EP_TEST_SLOT,
# scripts run side by side never share one), spread within it by the pid.
port=$((20000 + ${EP_TEST_SLOT:-0} % 4 * 5000 + ($$ * 13) % 4000))
next_port() { port=$((port + 7)); }

# where: netns when namespaces work here (root, veth, bridge), else loopback;
# EP_NETNS=0 forces loopback. Case names carry it ("_netns" / "_loopback").
cluster_init() {
	if [ "${EP_NETNS:-1}" != 0 ] && timeout 20 sh "$cluster_sh" -n 1 -- true >"$tmp/probe" 2>&1; then
		where=netns
	else
		where=loopback
		echo "# network namespaces unavailable ($(tail -n 1 "$tmp/probe" 2>/dev/null || echo EP_NETNS=0)): emulated nodes run on loopback"
	fi
}

# cluster NAME WANT DEADLINE NODES ARGS...: one job of NODES nodes; output in $tmp/out
cluster() {
	name=$1 want=$2 limit=$3 nodes=$4; shift 4
	next_port
	if [ "$where" = netns ]; then
		timeout -k 2 "$limit" sh "$cluster_sh" -n "$nodes" --port "$port" -- "$EPBENCH" "$SUBCOMMAND" "$@" >"$tmp/out" 2>&1
	else
		timeout -k 2 "$limit" "$EPBENCH" "$SUBCOMMAND" --local-nodes --nodes "$nodes" "$@" >"$tmp/out" 2>&1
	fi
	got=$?
	if [ "$got" -eq "$want" ]; then ok "${name}_$where"; return 0; fi
	bad "${name}_$where" "exit $got, want $want (epbench $SUBCOMMAND $*)"
	return 1
}

# start_node ARGS...: one node in the background, in its own session; $last is its pid
start_node() {
	setsid "$EPBENCH" "$SUBCOMMAND" "$@" &
	bg="$bg $!"
	last=$!
}

# node_fault NAME SIGNAL SETTLE MAX_SECS PATTERN ARGS...: starts a 2-node job
# (ARGS must make it run long) on loopback, sends SIGNAL (KILL or STOP) to
# node 1 after SETTLE seconds, and wants node 0 to exit 4 within MAX_SECS
# with a line matching PATTERN (grep -E).
node_fault() {
	name=$1 sig=$2 settle=$3 max=$4 pattern=$5; shift 5
	next_port
	start_node "$@" --node-rank 0 --master 127.0.0.1:$port >"$tmp/f0" 2>&1; f0=$last
	start_node "$@" --node-rank 1 --master 127.0.0.1:$port >"$tmp/f1" 2>&1; f1=$last
	sleep "$settle"
	kill -"$sig" -"$f1" 2>/dev/null
	start=$(date +%s)
	timeout $((max + 20)) sh -c "while kill -0 $f0 2>/dev/null; do sleep 0.1; done"
	wait "$f0"; c0=$?
	took=$(( $(date +%s) - start ))
	kill -9 -"$f1" 2>/dev/null
	cp "$tmp/f0" "$tmp/out"
	if [ "$c0" -eq 4 ] && grep -Eq -- "$pattern" "$tmp/f0" && [ "$took" -le "$max" ]; then ok "$name"
	else bad "$name" "node 0 exit $c0 after ${took}s (want 4 within ${max}s, a line matching '$pattern')"; fi
}

# same_tensors NAME A B MODE: the .npy files of B's rank folders have the same dtype, shape and bytes in A;
# MODE all: both folders hold the same files; listed: every file of B is in A; common: the files both hold,
# at least 10 of them (a layer's golden holds more than a run dumps, and a run some a golden does not)
same_tensors() {
	python3 - "$2" "$3" "$4" <<'PY' >"$tmp/out" 2>&1 && ok "$1" || bad "$1" "see above"
import numpy as np, os, sys
a, b, mode = sys.argv[1:4]
n = 0
for r in sorted(d for d in os.listdir(b) if d.startswith("rank")):
    if mode == "all":
        assert sorted(os.listdir(os.path.join(a, r))) == sorted(os.listdir(os.path.join(b, r))), r
    for f in sorted(os.listdir(os.path.join(b, r))):
        if mode == "common" and not os.path.exists(os.path.join(a, r, f)):
            continue
        x, y = np.load(os.path.join(a, r, f)), np.load(os.path.join(b, r, f))
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), (r, f)
        n += 1
assert n >= 10, n
print(n, "tensors identical")
PY
}
