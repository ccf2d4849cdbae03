#!/bin/sh
# bench.sh - the performance claims of the README, reproduced in one go (make bench).
#
#   scripts/bench.sh [--repeat N] [--json FILE] [--quick] [--no-install]
#
# Runs, N times (default 3), at DeepEP's shapes: the host copy probe
# (epbench info); epbench intranode at 2, 4 and 8 ranks; low-latency bf16
# and fp8 at 2 and 8 ranks (200 timed iterations); Open MPI's MPI_Alltoallv
# moving the same rows on one host (2 and 8 ranks) and between 2 local nodes
# over loopback TCP (scripts/compare-mpi.sh, MPI's faster binding of core
# and none); and, as root, internode across the namespace cluster
# (scripts/netns-cluster.sh, 2 nodes x 2 and x 4 ranks, 3 nodes x 2) next to iperf3
# --bidir on the same kind of link. Then prints one table of ratios with
# their goals (epbench / copy, epbench vs MPI, epbench link rate / iperf3
# per direction; median [min, max] over the repetitions) and writes it as
# JSON. --quick: small shapes and one repetition (a smoke test, not a
# measurement). Installs Open MPI and iperf3 through install-deps.sh unless
# --no-install; what cannot run here is skipped and said so. Exit 0 when
# every run passed its check (a goal not met is reported, not an error),
# 1 when a check failed, 3 when a run could not be made.
set -eu
cd "$(dirname "$0")/.."
REPEAT=3 JSON="" QUICK="" INSTALL=1
while [ $# -gt 0 ]; do
	case "$1" in
	--repeat) REPEAT=$2; shift 2 ;;
	--json) JSON=$2; shift 2 ;;
	--quick) QUICK=1; REPEAT=1; shift ;;
	--no-install) INSTALL=""; shift ;;
	-h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done
case "$REPEAT" in ''|*[!0-9]*|0) echo "bench: invalid --repeat '$REPEAT'" >&2; exit 2 ;; esac
if [ -n "$JSON" ] && ! [ -d "$(dirname "$JSON")" -a -w "$(dirname "$JSON")" ]; then
	echo "bench: cannot write '$JSON': no writable directory $(dirname "$JSON")" >&2; exit 2
fi
[ -n "$INSTALL" ] && scripts/install-deps.sh --with-mpi --with-iperf
# the ratios are to the copy probe: never skip it, whatever the caller's environment says
EPBENCH_COPY_PROBE=on
export EPBENCH_COPY_PROBE
make --no-print-directory SANITIZER= epbench >/dev/null
if [ -n "$QUICK" ]; then
	NORMAL="-t 512 --hidden 1024 -k 8 -e 64" LL="-t 32 --hidden 1024 -k 8 -e 64" ITERS=5 LLITERS=20 E3="-e 96"
	MPI_SHAPE="512 1024 8 64 5" BIG="4"
else
	NORMAL="-t 4096 --hidden 7168 -k 8 -e 256" LL="-t 128 --hidden 7168 -k 8 -e 288" ITERS=20 LLITERS=200 E3="-e 288"
	MPI_SHAPE="4096 7168 8 256 20" BIG="8"
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT INT TERM
status=0
note() { echo "# $*"; echo "$*" >>"$out/notes"; }
# run NAME COMMAND...: output to $out/NAME.txt; a failure is remembered, the rest goes on
run() {
	name=$1; shift
	"$@" >"$out/$name.txt" 2>&1 && return 0
	rc=$?
	note "$name: exit $rc: $(grep -v '^#' "$out/$name.txt" | tail -n 2 | tr '\n' ' ')"
	[ "$rc" -eq 1 ] && status=1 || { [ "$status" -eq 0 ] && status=3; }
	return 0
}
for i in $(seq 1 "$REPEAT"); do
	echo "# repetition $i of $REPEAT ($(date +%T))"
	./epbench info >"$out/info.$i.txt"
	for r in 2 4 $BIG; do
		# shellcheck disable=SC2086
		run "intranode_r$r.$i" ./epbench intranode -r "$r" $NORMAL -n "$ITERS" -w 3 -q --json "$out/intranode_r$r.$i.json"
	done
	for r in 2 $BIG; do
		for d in bf16 fp8; do
			# shellcheck disable=SC2086
			run "ll_${d}_r$r.$i" ./epbench low-latency -r "$r" $LL --dtype "$d" -n "$LLITERS" -w 10 -q \
				--json "$out/ll_${d}_r$r.$i.json"
		done
	done
	if command -v mpicc >/dev/null; then
		for r in 2 $BIG; do
			# shellcheck disable=SC2086
			run "mpi_intranode_r$r.$i" scripts/compare-mpi.sh --json "$out/mpi_intranode_r$r.$i.json" "$r" $MPI_SHAPE
		done
		# shellcheck disable=SC2086
		run "mpi_internode_n2.$i" scripts/compare-mpi.sh --internode --json "$out/mpi_internode_n2.$i.json" 2 $MPI_SHAPE
	else
		[ "$i" -eq 1 ] && note "MPI peer skipped: mpicc not found (scripts/install-deps.sh --with-mpi)"
	fi
	if [ "$(id -u)" -ne 0 ]; then
		[ "$i" -eq 1 ] && note "namespace cluster skipped: needs root (network namespaces)"
	elif ! command -v iperf3 >/dev/null; then
		[ "$i" -eq 1 ] && note "namespace cluster skipped: iperf3 not found (scripts/install-deps.sh --with-iperf)"
	else
		run "iperf_bidir.$i" scripts/netns-cluster.sh -n 2 --iperf 5 -- --bidir -J
		for p in 2 4; do
			# shellcheck disable=SC2086
			run "netns_p$p.$i" scripts/netns-cluster.sh -n 2 -- ./epbench internode --ranks-per-node "$p" $NORMAL \
				-n "$ITERS" -w 3 -q --timeout 120 --json "$out/netns_p$p.$i.json"
		done
		# scaling across nodes: 3 nodes of 2 ranks (experts a multiple of 6 ranks)
		# shellcheck disable=SC2086
		run "netns_n3_p2.$i" scripts/netns-cluster.sh -n 3 -- ./epbench internode --ranks-per-node 2 $NORMAL $E3 \
			-n "$ITERS" -w 3 -q --timeout 120 --json "$out/netns_n3_p2.$i.json"
	fi
done
python3 scripts/bench_table.py ${QUICK:+--quick} "$out" "$REPEAT" "${JSON:-}" || status=3
exit "$status"
