#!/bin/sh
# accept_test.sh - epbench accept --preflight-only: this host, then crafted
# sysfs/procfs trees (EP_PREFLIGHT_ROOT) where each item must reach its
# level: a port down, ports at two rates, no RoCE v2 GID, a small MTU, the
# locked-memory limit, NUMA balancing, the CPU governor. Ends with
# "N passed, N failed, N skipped".
# run.sh: alone (it compares nodes' copy bandwidth and link rates: a script beside it would skew them)
set -u
SUBCOMMAND=accept
. "$(dirname "$0")/lib.sh"

# this host: no RDMA device here (WARN), so exit 0; asking for verbs makes it a FAIL
run "host_preflight" 0 30 accept --preflight-only --json "$tmp/host.json"
expect "host_items" "^  (PASS|WARN) +kernel"
run "host_verbs_wanted" 3 30 accept --preflight-only --transport verbs
expect "host_verbs_named" "^  FAIL +rdma devices +none"
python3 - "$tmp/host.json" <<'PY' && ok "host_json" || bad "host_json" "see above"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["schema"] == "epbench-preflight/1" and d["verdict"] in ("PASS", "WARN")
names = [i["name"] for i in d["items"]]
for n in ("locked memory", "numa balancing", "cpu governor", "kernel", "rdma-core", "huge pages"):
    assert n in names, n
PY

# tree DIR: a host with one RoCE port (rxe0/1 on eth9, 10 Gb/s, MTU 9000, a RoCE v2 GID)
tree() {
	r=$1
	p=$r/sys/class/infiniband/rxe0/ports/1
	mkdir -p "$p/gid_attrs/ndevs" "$p/gid_attrs/types" "$p/gids" "$r/sys/class/infiniband/rxe0/device" \
		"$r/sys/class/net/eth9" "$r/sys/class/net/lo" "$r/proc/sys/kernel" "$r/sys/devices/system/cpu/cpu0/cpufreq" \
		"$r/sys/devices/system/cpu/cpu1/cpufreq" "$r/sys/kernel/mm/transparent_hugepage"
	echo "4: ACTIVE" >"$p/state"; echo Ethernet >"$p/link_layer"; echo "10 Gb/sec (1X QDR)" >"$p/rate"
	echo eth9 >"$p/gid_attrs/ndevs/0"; echo "IB/RoCE v1" >"$p/gid_attrs/types/0"; echo "RoCE v2" >"$p/gid_attrs/types/1"
	echo "fe80:0000:0000:0000:0000:0000:0a00:0001" >"$p/gids/0"; echo "0000:0000:0000:0000:0000:ffff:0a00:0001" >"$p/gids/1"
	echo 0 >"$r/sys/class/infiniband/rxe0/device/numa_node"
	echo up >"$r/sys/class/net/eth9/operstate"; echo 10000 >"$r/sys/class/net/eth9/speed"; echo 9000 >"$r/sys/class/net/eth9/mtu"
	echo 0 >"$r/proc/sys/kernel/numa_balancing"; echo 6.1.0-test >"$r/proc/sys/kernel/osrelease"
	echo performance >"$r/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"
	echo performance >"$r/sys/devices/system/cpu/cpu1/cpufreq/scaling_governor"
	echo "always [madvise] never" >"$r/sys/kernel/mm/transparent_hugepage/enabled"
	printf 'HugePages_Total:       4\n' >"$r/proc/meminfo"
}
# pf NAME WANT PATTERN ROOT [MEMLOCK_KB]: preflight of ROOT exits WANT with a
# line matching PATTERN. A small planned shape (verbs pins a few KiB), unless
# MEMLOCK_KB lowers the limit (lowering needs no privilege) under DeepEP's shape.
pf() {
	name=$1 want=$2 pattern=$3 r=$4 lim=${5:-}
	if [ -n "$lim" ]; then set -- sh -c "ulimit -l $lim && exec \"\$0\" accept --preflight-only" "$EPBENCH"
	else set -- "$EPBENCH" accept --preflight-only --nodes 1 --num-tokens 1 --hidden 128; fi
	EP_PREFLIGHT_ROOT=$r timeout 30 "$@" >"$tmp/out" 2>&1
	got=$?
	if [ "$got" -eq "$want" ] && grep -qE -- "$pattern" "$tmp/out"; then ok "$name"
	else bad "$name" "exit $got (want $want), or no line matching '$pattern'"; fi
}
tree "$tmp/good"
pf "good_host_passes" 0 "^# preflight: PASS" "$tmp/good"
pf "good_port_rate" 0 "PASS +port rxe0/1 rate +10 Gb/s, Ethernet" "$tmp/good"
pf "good_gid_index" 0 "PASS +port rxe0/1 RoCE v2 GID +index 1 \(IPv4 10.0.0.1\)" "$tmp/good"
pf "memlock_too_small" 3 "FAIL +locked memory +1 MiB" "$tmp/good" 1024
cp -r "$tmp/good" "$tmp/down"; echo "1: DOWN" >"$tmp/down/sys/class/infiniband/rxe0/ports/1/state"
pf "port_down_fails" 3 "FAIL +port rxe0/1 state +1: DOWN" "$tmp/down"
cp -r "$tmp/good" "$tmp/two"; cp -r "$tmp/two/sys/class/infiniband/rxe0" "$tmp/two/sys/class/infiniband/rxe1"
echo "25 Gb/sec (1X EDR)" >"$tmp/two/sys/class/infiniband/rxe1/ports/1/rate"
pf "ports_at_two_rates_fail" 3 "FAIL +ports at one rate +rxe0/1 10 Gb/s, rxe1/1 25 Gb/s" "$tmp/two"
cp -r "$tmp/good" "$tmp/nogid"; echo "0000:0000:0000:0000:0000:0000:0000:0000" >"$tmp/nogid/sys/class/infiniband/rxe0/ports/1/gids/1"
pf "no_roce_v2_gid_fails" 3 "FAIL +port rxe0/1 RoCE v2 GID +none" "$tmp/nogid"
cp -r "$tmp/good" "$tmp/mtu"; echo 1500 >"$tmp/mtu/sys/class/net/eth9/mtu"
pf "small_mtu_warns" 0 "WARN +port rxe0/1 mtu +1500 on eth9" "$tmp/mtu"
cp -r "$tmp/good" "$tmp/tune"; echo 1 >"$tmp/tune/proc/sys/kernel/numa_balancing"
echo powersave >"$tmp/tune/sys/devices/system/cpu/cpu1/cpufreq/scaling_governor"
pf "numa_balancing_warns" 0 "WARN +numa balancing +on" "$tmp/tune"
pf "governor_warns" 0 "WARN +cpu governor +1 of 2 cpus 'powersave'" "$tmp/tune"
pf "fix_is_given" 0 "fix: cpupower frequency-set -g performance" "$tmp/tune"

# ---- the acceptance job ------------------------------------------------------
small="--ranks-per-node 2 -t 512 --hidden 1024 -e 24 -k 4 --ll-experts 24 --ll-tokens 32 -n 5 --iperf-seconds 1"

# bad input: one line, exit 2, nothing run
run "fail_at_above_100" 2 10 accept --local-nodes --nodes 2 --fail-at 120
expect "fail_at_above_100_said" "out-of-range number '120'"
run "thresholds_out_of_order" 2 10 accept --local-nodes --nodes 2 --degraded-at 50 --fail-at 60
expect "thresholds_out_of_order_said" "thresholds out of order '--fail-at 60 above --degraded-at 50'"
run "experts_not_divisible" 2 10 accept --local-nodes --nodes 3 --ranks-per-node 2 -e 16
expect "experts_not_divisible_said" "experts must divide evenly"
run "scopes_unknown" 2 10 accept --local-nodes --nodes 2 --scopes nodes,links
run "max_regress_without_baseline" 2 10 accept --local-nodes --nodes 2 --max-regress 5
echo '{"schema": "epbench-accept/1", "items": [], "config": {"ranks_per_node": 2, "num_tokens": 512, "hidden": 7168}}' >"$tmp/other.json"
run "reference_other_shape" 2 10 accept --local-nodes --nodes 2 $small --reference "$tmp/other.json"
expect "reference_other_shape_said" "is for another shape: hidden 7168 there, 1024 here"
run "reference_not_accept_json" 2 10 accept --local-nodes --nodes 2 $small --reference "$tmp/host.json"

# an emulated cluster on this host: every run checked, a report for people and one for machines
# (thresholds wide: the nodes share this host's two cores, so their speeds vary with its load)
run "local_two_nodes_pass" 0 240 accept --local-nodes --nodes 2 $small --degraded-at 5 --fail-at 2 \
	--report "$tmp/local.md" --json "$tmp/local.json"
expect "local_verdicts_printed" "^    PASS +pair 0-1 "
expect "local_acceptance_line" "^# acceptance: PASS \(exit 0\)"
# without iperf3 (scripts/install-deps.sh --with-iperf) the pair's link rate is not measured, and its note says so
iperf=0; command -v iperf3 >/dev/null 2>&1 && iperf=1
python3 - "$tmp/local.json" "$tmp/local.md" $iperf <<'PY' && ok "local_reports" || bad "local_reports" "see above"
import json, sys
d = json.load(open(sys.argv[1])); md = open(sys.argv[2]).read(); iperf = sys.argv[3] == "1"
assert d["schema"] == "epbench-accept/1" and d["verdict"] == "PASS" and d["exit"] == 0, d["verdict"]
names = sorted(i["name"] for i in d["items"])
assert names == ["job", "node 0", "node 1", "pair 0-1"], names
pair = [i for i in d["items"] if i["name"] == "pair 0-1"][0]
assert pair["figures"]["dispatch_link_gbs"] > 0 and pair["figures"].get("link_gbs", 0) > 0 or not iperf, pair["figures"]
assert iperf or ("link_gbs" not in pair["figures"] and "iperf3 is not installed" in json.dumps(pair)), pair
assert len(d["preflight"]) == 2 and all(p["items"] for p in d["preflight"])
assert {r["step"] for r in d["runs"]} >= {"node 0", "node 1", "pair 0-1", "job", "job low-latency"}
assert "## Node pairs" in md and "| **node 0** | - | PASS" in md, md
PY
# per-run shapes: from a suite's first case of each subcommand (--shapes), a scope's own --X-args winning
cat >"$tmp/shapes.suite" <<'SUITE'
n intranode -r 8 -t 96 --hidden 512 -e 8 -k 2 -n 3 --json x.json
p internode --local-nodes --nodes 2 --ranks-per-node 4 -t 80 --hidden 256 -e 8 -k 2 -n 3
l low-latency -r 8 -t 16 --hidden 256 -e 8 -k 2 --dtype fp8
SUITE
run "shapes_from_suite" 0 240 accept --local-nodes --nodes 2 -e 8 -k 2 --ll-experts 8 --no-iperf \
	--shapes "$tmp/shapes.suite" --pair-args "-t 72 --hidden 256" --degraded-at 5 --fail-at 2 --json "$tmp/shapes.json"
python3 - "$tmp/shapes.json" <<'PY' && ok "shapes_used" || bad "shapes_used" "see above"
import json, sys
d = json.load(open(sys.argv[1]))
got = {r["step"]: (r["run"]["result"]["points"][0]["tokens"], r["run"]["result"]["points"][0]["hidden"])
       for r in d["runs"] if r["node"] == 0}
assert got == {"node 0": (96, 512), "pair 0-1": (72, 256), "job": (80, 256), "job low-latency": (16, 256)}, got
assert d["config"]["pair_args"] == "-t 72 --hidden 256" and d["config"]["node_args"].startswith("-t 96"), d["config"]
PY
run "shapes_missing_file" 2 10 accept --local-nodes --nodes 2 --shapes "$tmp/none.suite"

# the reference is used: a known-good file with figures ten times ours makes every speed FAIL
python3 - "$tmp/local.json" "$tmp/fast.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for i in d["items"]:
    i["figures"] = {k: v * 10 for k, v in i["figures"].items()}
json.dump(d, open(sys.argv[2], "w"))
PY
run "reference_ten_times_faster_fails" 5 240 accept --local-nodes --nodes 2 $small --scopes pairs --reference "$tmp/fast.json"
expect "reference_named" "FAIL +pair 0-1 .* of --reference's pair 0-1"
# wrong data is FAIL whatever the speed, exit 1
run "wrong_data_fails" 1 240 accept --local-nodes --nodes 2 $small --no-iperf --scopes nodes,pairs --fault corrupt:1
expect "wrong_data_named" "FAIL +pair 0-1 +wrong data on node 0"

# the NIC's error counters: one that moves during a run makes its item DEGRADED, named (a crafted
# sysfs tree under EP_PREFLIGHT_ROOT whose lo rx_dropped grows while the pair runs)
st="$tmp/drops/sys/class/net/lo/statistics"
mkdir -p "$st" && echo 0 >"$st/rx_dropped" && echo 0 >"$st/tx_bytes"
(i=0; while [ $i -lt 600 ] && [ -d "$st" ]; do i=$((i + 1)); echo $i >"$st/rx_dropped"; sleep 0.05; done) &
bg="$bg $!"
EP_PREFLIGHT_ROOT="$tmp/drops" run "nic_errors_degrade" 5 120 accept --local-nodes --nodes 2 $small --no-iperf --scopes pairs
expect "nic_errors_named" "DEGRADED +pair 0-1 +node [01]'s NIC counted lo rx_dropped \+[0-9]+ during the run"

# nodes started with different options: refused, naming the option (before anything runs)
next_port
start_node --nodes 2 --node-rank 1 --master "127.0.0.1:$port" -t 256 -e 8 --ll-experts 8 >"$tmp/m1" 2>&1
run "mismatched_nodes_refused" 2 30 accept --nodes 2 --node-rank 0 --master "127.0.0.1:$port" -t 512 -e 8 --ll-experts 8
expect "mismatched_nodes_named" "--num-tokens differs: node 0 has 512, node 1 has 256"

# a node lost in the middle of the pair run: node 0 still judges and writes what was measured
# (both preflights), the pair in flight is FAIL naming node 1, exit 4, no rank left behind
next_port
lost="--nodes 2 --ranks-per-node 2 -t 1024 --hidden 2048 -e 8 -k 2 --ll-experts 8 -n 100000 --no-iperf --timeout 10 --scopes pairs"
start_node $lost --node-rank 0 --master "127.0.0.1:$port" --json "$tmp/lost.json" >"$tmp/l0" 2>&1; l0=$last
start_node $lost --node-rank 1 --master "127.0.0.1:$port" >"$tmp/l1" 2>&1; l1=$last
for i in $(seq 300); do pgrep -f "internode --nodes 2 --node-rank 1 --master 127.0.0.1:$((port + 2))" >/dev/null && break; sleep 0.2; done
sleep 1
kill -9 "-$l1" 2>/dev/null
timeout 60 sh -c "while kill -0 $l0 2>/dev/null; do sleep 0.2; done"
wait "$l0"; got=$?
cp "$tmp/l0" "$tmp/out"
[ "$got" -eq 4 ] && ok "lost_node_exit_4" || bad "lost_node_exit_4" "node 0 exit $got"
expect "lost_node_pair_fails" "FAIL +pair 0-1 +pair 0-1: the job ended during this run: lost node 1"
python3 - "$tmp/lost.json" <<'PY' && ok "lost_node_report_kept" || bad "lost_node_report_kept" "see above"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["exit"] == 4 and d["ended"].startswith("lost node 1"), (d["exit"], d["ended"])
assert len(d["preflight"]) == 2 and all(p and p["items"] for p in d["preflight"]), d["preflight"]
PY
sleep 1
[ -z "$(live_ranks)" ] && ok "lost_node_no_orphans" || bad "lost_node_no_orphans" "$(live_ranks)"

# three namespace nodes; the link between nodes 0 and 2 throttled with tc (htb + u32: this
# kernel has no netem) in both directions: exactly that pair must fail, every other item pass
cluster_init
if [ "$where" = netns ] && command -v tc >/dev/null && command -v iperf3 >/dev/null; then
	cat >"$tmp/throttle.sh" <<'SH'
#!/bin/sh
# on nodes 0 and 2: traffic to the other one at 40 Mbit/s; on node 1 (THROTTLE_MTU): a smaller MTU
if [ "$NODE_RANK" = 0 ] || [ "$NODE_RANK" = 2 ]; then
	peer=10.77.0.3; [ "$NODE_RANK" = 2 ] && peer=10.77.0.1
	tc qdisc add dev eth0 root handle 1: htb default 1 r2q 1000 &&
	tc class add dev eth0 parent 1: classid 1:1 htb rate 20gbit &&
	tc class add dev eth0 parent 1: classid 1:2 htb rate 40mbit &&
	tc filter add dev eth0 parent 1: protocol ip u32 match ip dst $peer/32 flowid 1:2 || exit 3
fi
[ "$NODE_RANK" = 1 ] && [ -n "${THROTTLE_MTU:-}" ] && { ip link set eth0 mtu "$THROTTLE_MTU" || exit 3; }
exec "$@"
SH
	next_port
	timeout -k 2 300 sh "$cluster_sh" -n 3 --port "$port" -- sh "$tmp/throttle.sh" "$EPBENCH" accept $small \
		--scopes pairs --degraded-at 40 --fail-at 20 --report "$tmp/tc.md" --json "$tmp/tc.json" >"$tmp/out" 2>&1
	got=$?
	[ "$got" -eq 5 ] && ok "throttled_pair_exit_5" || bad "throttled_pair_exit_5" "exit $got"
	expect "throttled_pair_named" "^    FAIL +pair 0-2 +link rate \(iperf3, per direction\)"
	python3 - "$tmp/tc.json" "$tmp/tc.md" <<'PY' && ok "only_throttled_pair_fails" || bad "only_throttled_pair_fails" "see above"
import json, sys
d = json.load(open(sys.argv[1])); md = open(sys.argv[2]).read()
v = {i["name"]: i["verdict"] for i in d["items"]}
assert v["pair 0-2"] in ("FAIL", "DEGRADED"), v
assert all(v[n] == "PASS" for n in v if n != "pair 0-2"), v
assert all("node %d eth0" % k in v for k in range(3)), v  # one item per NIC
assert "## NICs" in md
assert "| **node 0** | - | PASS" in md and "| FAIL" in md, md
# the NIC's counters: bytes on the wire next to the bytes epbench computed
w = [x for i in d["items"] for k, x in i["figures"].items() if k.endswith("_wire_over_computed")]
assert w and all(0.97 <= x <= 1.15 for x in w), w
PY
	next_port
	THROTTLE_MTU=1300 timeout -k 2 120 sh "$cluster_sh" -n 3 --port "$port" -- sh "$tmp/throttle.sh" "$EPBENCH" accept \
		$small --scopes nodes --no-iperf --degraded-at 5 --fail-at 2 >"$tmp/out" 2>&1
	got=$?
	[ "$got" -eq 5 ] && ok "mtu_differs_exit_5" || bad "mtu_differs_exit_5" "exit $got"
	expect "mtu_differs_named" "DEGRADED +node 1 +preflight differs from node 0: interface eth0 is '.*MTU 1300' on node 1"
else
	skipped "throttled_pair" "needs network namespaces, tc and iperf3 (root; scripts/install-deps.sh --with-iperf)"
fi
finish accept_test.sh
