#!/bin/sh
# compare-mpi.sh - epbench next to the same traffic done with Open MPI's
# MPI_Alltoallv (scripts/mpi_peer.c), measured in the same run on this host.
#   scripts/compare-mpi.sh [--internode] [--json FILE] [RANKS [TOKENS [HIDDEN [TOPK [EXPERTS [ITERS]]]]]]
# Intranode (default): epbench intranode -r RANKS against mpirun -np RANKS
# with Open MPI's choice of shared-memory transport. --internode: RANKS
# nodes of one rank each over loopback TCP (epbench internode --local-nodes)
# against mpirun --mca btl tcp,self on the loopback interface. MPI runs with
# --bind-to core and with --bind-to none, and keeps the faster (the sum of
# its two medians), so it gets its best binding. Prints both medians and the
# ratio (MPI time / epbench time: above 1 means epbench is faster); --json
# writes them. Needs Open MPI (scripts/install-deps.sh --with-mpi).
set -eu
cd "$(dirname "$0")/.."
MODE=intranode JSON=""
while [ $# -gt 0 ]; do
	case "$1" in
	--internode) MODE=internode; shift ;;
	--json) JSON=$2; shift 2 ;;
	-h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "compare-mpi: unknown option '$1' (see --help)" >&2; exit 2 ;;
	*) break ;;
	esac
done
R=${1:-8} T=${2:-4096} H=${3:-7168} K=${4:-8} E=${5:-256} N=${6:-20}
for v in "$R" "$T" "$H" "$K" "$E" "$N"; do
	case "$v" in ''|*[!0-9]*) echo "compare-mpi: '$v' is not a count" >&2; exit 2 ;; esac
done
command -v mpicc >/dev/null || { echo "compare-mpi: mpicc not found (scripts/install-deps.sh --with-mpi)" >&2; exit 3; }
# The plain build, whatever SANITIZER a calling make passes down: the peer
# links the library without sanitizer runtimes, and timings want -O2 alone.
make --no-print-directory SANITIZER= epbench build/libep.a >/dev/null
mpicc -std=gnu11 -O2 -I. -o build/mpi_peer scripts/mpi_peer.c build/libep.a -lgsl -lgslcblas -lnuma -ljansson -lnettle -lm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
shape="-t $T --hidden $H -k $K -e $E -n $N -w 3 -q --json $tmp/ep.json"
if [ "$MODE" = internode ]; then
	# shellcheck disable=SC2086
	./epbench internode --local-nodes --nodes "$R" --ranks-per-node 1 $shape >"$tmp/ep.txt"
	mca="--mca btl tcp,self --mca btl_tcp_if_include lo"
else
	# shellcheck disable=SC2086
	./epbench intranode -r "$R" $shape >"$tmp/ep.txt"
	mca=""
fi
for bind in core none; do
	# shellcheck disable=SC2086
	mpirun --allow-run-as-root --oversubscribe --bind-to "$bind" $mca -np "$R" \
		build/mpi_peer "$T" "$H" "$K" "$E" "$N" 3 0 >"$tmp/mpi_$bind.txt" 2>"$tmp/mpi_$bind.err" ||
		echo "mpi_peer failed with --bind-to $bind" >"$tmp/mpi_$bind.txt"
done
python3 - "$tmp" "$MODE" "$JSON" "$R" "$T" "$H" "$K" "$E" <<'PY'
import json, sys
tmp, mode, out = sys.argv[1:4]
R, T, H, K, E = (int(x) for x in sys.argv[4:9])
ep = json.load(open(tmp + "/ep.json"))
ops = {o["op"]: o["time_us"]["median"] for o in ep["points"][0]["ops"]}
runs = {}
for bind in ("core", "none"):
    f = open("%s/mpi_%s.txt" % (tmp, bind)).read().split()
    if "dispatch_median_us" in f:
        runs[bind] = {"dispatch": float(f[f.index("dispatch_median_us") + 1]),
                      "combine": float(f[f.index("combine_median_us") + 1]), "wrong": int(f[f.index("wrong") + 1])}
if not runs:
    sys.exit("compare-mpi: mpi_peer failed with both bindings: " + open(tmp + "/mpi_none.err").read()[-400:])
bind = min(runs, key=lambda b: runs[b]["dispatch"] + runs[b]["combine"])
mpi = runs[bind]
where = "%d nodes x 1 rank, loopback TCP (MPI: btl tcp,self)" % R if mode == "internode" else "%d ranks, one host" % R
print("# %s: tokens %d hidden %d topk %d experts %d, bf16; medians of the per-iteration max over ranks" % (where, T, H, K, E))
print("# MPI --bind-to %s (faster of core and none: %s)" % (bind, ", ".join(
    "%s %.1f us" % (b, runs[b]["dispatch"] + runs[b]["combine"]) for b in sorted(runs))))
print("# %-9s %14s %18s %10s" % ("op", "epbench (us)", "MPI_Alltoallv (us)", "speedup"))
for op in ("dispatch", "combine"):
    print("  %-9s %14.1f %18.1f %9.2fx" % (op, ops[op], mpi[op], mpi[op] / ops[op]))
print("# epbench verdict %s; MPI peer rows checked, %d wrong" % (ep["verdict"], mpi["wrong"]))
if out:
    doc = {"mode": mode, "ranks": R, "tokens": T, "hidden": H, "topk": K, "experts": E,
           "epbench_us": ops, "epbench_verdict": ep["verdict"], "mpi_us": {k: mpi[k] for k in ("dispatch", "combine")},
           "mpi_binding": bind, "mpi_by_binding": runs, "mpi_wrong": mpi["wrong"],
           "speedup": {op: mpi[op] / ops[op] for op in ("dispatch", "combine")}}
    with open(out + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
    import os
    os.replace(out + ".tmp", out)
if ep["verdict"] != "PASS" or mpi["wrong"]:
    sys.exit(1)
PY
