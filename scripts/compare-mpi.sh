#!/bin/sh
# compare-mpi.sh - epbench intranode next to the same traffic done with Open MPI's
# MPI_Alltoallv (scripts/mpi_peer.c), measured in the same run on this host.
#   scripts/compare-mpi.sh [RANKS [TOKENS [HIDDEN [TOPK [EXPERTS [ITERS]]]]]]
# Prints both medians and the ratio (MPI time / epbench time: above 1 means
# epbench is faster). Needs Open MPI (apt-get install libopenmpi-dev openmpi-bin).
set -eu
cd "$(dirname "$0")/.."
R=${1:-8} T=${2:-4096} H=${3:-7168} K=${4:-8} E=${5:-256} N=${6:-20}
command -v mpicc >/dev/null || { echo "compare-mpi: mpicc not found (apt-get install libopenmpi-dev openmpi-bin)" >&2; exit 3; }
# The plain build, whatever SANITIZER a calling make passes down: the peer
# links the library without sanitizer runtimes, and timings want -O2 alone.
make --no-print-directory SANITIZER= epbench build/libep.a >/dev/null
mpicc -std=gnu11 -O2 -I. -o build/mpi_peer scripts/mpi_peer.c build/libep.a -lgsl -lgslcblas -lnuma -ljansson -lnettle -lm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
./epbench intranode -r "$R" -t "$T" --hidden "$H" -k "$K" -e "$E" -n "$N" -w 3 -q --json "$tmp/ep.json" >"$tmp/ep.txt"
mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$R" build/mpi_peer "$T" "$H" "$K" "$E" "$N" 3 0 >"$tmp/mpi.txt"
python3 - "$tmp/ep.json" "$tmp/mpi.txt" "$R" "$T" "$H" "$K" "$E" <<'PY'
import json, sys
ep = json.load(open(sys.argv[1]))
ops = {o["op"]: o["time_us"]["median"] for o in ep["points"][0]["ops"]}
f = open(sys.argv[2]).read().split()
mpi = {"dispatch": float(f[f.index("dispatch_median_us") + 1]), "combine": float(f[f.index("combine_median_us") + 1])}
wrong = int(f[f.index("wrong") + 1])
print("# ranks %s tokens %s hidden %s topk %s experts %s, bf16, medians of the per-iteration max over ranks" % tuple(sys.argv[3:8]))
print("# %-9s %14s %18s %10s" % ("op", "epbench (us)", "MPI_Alltoallv (us)", "speedup"))
for op in ("dispatch", "combine"):
    print("  %-9s %14.1f %18.1f %9.2fx" % (op, ops[op], mpi[op], mpi[op] / ops[op]))
print("# epbench verdict %s; MPI peer rows checked, %d wrong" % (ep["verdict"], wrong))
PY
