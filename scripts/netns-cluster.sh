#!/bin/sh
# netns-cluster.sh - an emulated cluster on one machine: N network namespaces on one bridge.
#
#   scripts/netns-cluster.sh [-n NODES] [--port P] [--logs DIR] -- COMMAND [ARGS...]
#   scripts/netns-cluster.sh [-n 2] --iperf [SECONDS] [-- IPERF3 CLIENT ARGS]
#                                  iperf3 from node 1 to node 0 over the same kind of link
#
# Each node i is a namespace with one veth "eth0" at 10.77.0.(i+1)/24, its
# peer enslaved to a bridge that lives in a namespace of its own (the host's
# network is never touched). COMMAND runs once per namespace, all at once,
# with NNODES, NODE_RANK, MASTER_ADDR=10.77.0.1 and MASTER_PORT set, so
#   scripts/netns-cluster.sh -n 2 -- ./epbench internode --ranks-per-node 2 ...
# runs a 2-node job whose traffic crosses a real TCP/IP stack and veth links.
# Node 0's output goes to stdout; every other node's goes to DIR/node<i>.log
# with --logs, else to stderr prefixed "[node i]". Exit status: node 0's, or
# the first nonzero of the others when node 0 passed; 3 when namespaces
# cannot be made here (needs root). Namespaces, links and every process are
# removed on exit, error, Ctrl-C or TERM.
set -u
N=2
PORT=29500
LOGS=""
IPERF=""
NET=10.77.0
while [ $# -gt 0 ]; do
	case "$1" in
	-n|--nodes) N=$2; shift 2 ;;
	--port) PORT=$2; shift 2 ;;
	--logs) LOGS=$2; shift 2 ;;
	--iperf) IPERF=10; shift
		case "${1:-}" in [0-9]*) IPERF=$1; shift ;; esac ;;
	--) shift; break ;;
	-h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "netns-cluster: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
done
case "$N" in ''|*[!0-9]*) echo "netns-cluster: invalid node count '$N'" >&2; exit 2 ;; esac
if [ "$N" -lt 1 ] || [ "$N" -gt 32 ]; then echo "netns-cluster: node count $N outside [1, 32]" >&2; exit 2; fi
if [ -z "$IPERF" ] && [ $# -eq 0 ]; then echo "netns-cluster: no command (see --help)" >&2; exit 2; fi

ID="epc$$"
SW="${ID}sw"
PIDS=""
TMP=$(mktemp -d)
made=""

cleanup() {
	trap - EXIT INT TERM
	for p in $PIDS; do kill -9 "-$p" 2>/dev/null || kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	for ns in $made; do ip netns del "$ns" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! ip netns add "$SW" 2>"$TMP/err"; then
	echo "netns-cluster: cannot create network namespaces here: $(cat "$TMP/err")" >&2
	exit 3
fi
made="$SW"
fail_setup() { echo "netns-cluster: $1" >&2; exit 3; }
ip -n "$SW" link add br0 type bridge 2>"$TMP/err" || fail_setup "no bridge: $(cat "$TMP/err")"
ip -n "$SW" link set br0 up
i=0
while [ "$i" -lt "$N" ]; do
	ns="${ID}n$i"
	ip netns add "$ns" || fail_setup "cannot create namespace $ns"
	made="$made $ns"
	ip link add eth0 netns "$ns" type veth peer name "v$i" netns "$SW" 2>"$TMP/err" ||
		fail_setup "no veth pair: $(cat "$TMP/err")"
	ip -n "$SW" link set "v$i" master br0 up
	ip -n "$ns" addr add "$NET.$((i + 1))/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" link set lo up
	i=$((i + 1))
done

if [ -n "$IPERF" ]; then
	command -v iperf3 >/dev/null || fail_setup "iperf3 is not installed (scripts/install-deps.sh installs it)"
	[ "$N" -ge 2 ] || fail_setup "--iperf needs two nodes"
	setsid ip netns exec "${ID}n0" iperf3 -s -1 -p "$PORT" >"$TMP/iperf-server" 2>&1 &
	PIDS="$!"
	sleep 1
	ip netns exec "${ID}n1" iperf3 -c "$NET.1" -p "$PORT" -t "$IPERF" -f g "$@"
	exit $?
fi

i=0
while [ "$i" -lt "$N" ]; do
	ns="${ID}n$i"
	if [ "$i" -eq 0 ]; then
		setsid ip netns exec "$ns" env NNODES="$N" NODE_RANK=0 MASTER_ADDR="$NET.1" \
			MASTER_PORT="$PORT" "$@" &
	else
		setsid ip netns exec "$ns" env NNODES="$N" NODE_RANK="$i" MASTER_ADDR="$NET.1" \
			MASTER_PORT="$PORT" "$@" >"$TMP/node$i.log" 2>&1 &
	fi
	PIDS="$PIDS $!"
	echo "$!" >"$TMP/pid$i"
	i=$((i + 1))
done

code=0
first_other=0
i=0
while [ "$i" -lt "$N" ]; do
	wait "$(cat "$TMP/pid$i")"
	c=$?
	if [ "$i" -eq 0 ]; then
		code=$c
	elif [ "$c" -ne 0 ] && [ "$first_other" -eq 0 ]; then
		first_other=$c
	fi
	if [ "$i" -gt 0 ]; then
		if [ -n "$LOGS" ]; then
			mkdir -p "$LOGS" && cp "$TMP/node$i.log" "$LOGS/node$i.log"
		else
			sed "s/^/[node $i] /" "$TMP/node$i.log" >&2
		fi
	fi
	i=$((i + 1))
done
PIDS=""
[ "$code" -eq 0 ] && code=$first_other
exit "$code"
