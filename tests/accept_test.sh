#!/bin/sh
# accept_test.sh - epbench accept --preflight-only: this host, then crafted
# sysfs/procfs trees (EP_PREFLIGHT_ROOT) where each item must reach its
# level: a port down, ports at two rates, no RoCE v2 GID, a small MTU, the
# locked-memory limit, NUMA balancing, the CPU governor. Ends with
# "N passed, N failed, N skipped".
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

# the rest of acceptance is not written: said, not pretended
run "runs_not_written" 2 10 accept --nodes 2
expect "runs_not_written_said" "only --preflight-only is written yet"
finish accept_test.sh
