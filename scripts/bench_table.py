#!/usr/bin/env python3
"""bench_table.py - the table of ratios that scripts/bench.sh prints and writes as JSON.

usage: bench_table.py [--quick] DIR REPEAT [JSON]
DIR holds one repetition's files per run, NAME.I.json / NAME.I.txt (I = 1..REPEAT),
as bench.sh leaves them. A run that is missing or failed is left out of its
row (the row says how many repetitions it has); nothing is made up. --quick
(bench.sh --quick: small shapes that fit in cache) prints no goals: those
ratios say nothing about the machine's limits.
"""
import json
import os
import re
import statistics
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def iperf_rate(path):
    """Per-direction rate of an iperf3 --bidir -J run, GB/s: the slower direction's receiver."""
    try:
        text = open(path).read()
        doc = json.loads(text[text.index("{"):text.rindex("}") + 1])
        end = doc["end"]
        return min(end["sum_received"]["bits_per_second"], end["sum_received_bidir_reverse"]["bits_per_second"]) / 8e9
    except (OSError, ValueError, KeyError):
        return None


def ops_of(doc):
    return {o["op"]: o for o in doc["points"][0]["ops"]} if doc and doc.get("points") else {}


def copy_ratio(doc, op):
    o = ops_of(doc).get(op)
    return o["aggbw_gbs"] / doc["host"]["copy_gbs"] if o and doc["host"].get("copy_gbs") else None


def tail_ratio(doc, op):
    o = ops_of(doc).get(op)
    return o["time_us"]["p99"] / o["time_us"]["median"] if o else None


def link_ratio(doc, op, iperf):
    """Slowest link's bytes / the op's median time, against iperf3's per-direction rate."""
    o = ops_of(doc).get(op)
    links = doc["points"][0].get("links") if doc and doc.get("points") else None
    if not o or not links or not iperf:
        return None
    gbs = min(l[op]["bytes"] for l in links) / (o["time_us"]["median"] * 1e3)
    return gbs / iperf


class Table:
    def __init__(self, repeat, judge):
        self.repeat, self.rows, self.judge = repeat, [], judge

    def add(self, what, op, values, goal=None, higher=True):
        v = [x for x in values if x is not None]
        goal = goal if self.judge else None
        row = {"what": what, "op": op, "values": v, "runs": len(v), "goal": goal,
               "goal_is": "min" if higher else "max"}
        if v:
            row.update(median=statistics.median(v), min=min(v), max=max(v))
            if goal is not None:
                row["met"] = row["median"] >= goal if higher else row["median"] <= goal
        self.rows.append(row)

    def print(self):
        print("# %-40s %-16s %7s %17s %8s %4s %s" % ("what", "op", "ratio", "[min, max]", "goal", "met", "runs"))
        for r in self.rows:
            goal = "" if r["goal"] is None else ("%s%.2f" % (">=" if r["goal_is"] == "min" else "<=", r["goal"]))
            met = "" if "met" not in r else ("yes" if r["met"] else "NO")
            if r["runs"]:
                print("  %-40s %-16s %7.2f %17s %8s %4s %d/%d" % (r["what"], r["op"], r["median"],
                      "[%.2f, %.2f]" % (r["min"], r["max"]), goal, met, r["runs"], self.repeat))
            else:
                print("  %-40s %-16s %7s %17s %8s %4s 0/%d" % (r["what"], r["op"], "-", "", goal, "", self.repeat))


def scaling(d, n):
    """Time against bytes moved at each rank count: intranode, and internode over the namespace
    cluster (the median over repetitions of each run's median; bytes are one rank's)."""
    out = []
    names = set(re.sub(r"\.\d+\.json$", "", f) for f in os.listdir(d)
                if f.endswith(".json") and (f.startswith("intranode_r") or f.startswith("netns_")))
    for name in sorted(names):
        docs = [load("%s/%s.%d.json" % (d, name, i)) for i in range(1, n + 1)]
        docs = [x for x in docs if x]
        for op in ("dispatch", "combine"):
            os_ = [ops_of(x)[op] for x in docs if op in ops_of(x)]
            if os_:
                t = statistics.median(o["time_us"]["median"] for o in os_)
                b = os_[0]["alg_bytes"]
                out.append({"run": name, "ranks": docs[0]["points"][0]["ranks"], "op": op, "median_us": t, "alg_bytes": b // docs[0]["points"][0]["ranks"],
                            "us_per_mb": t / (b / docs[0]["points"][0]["ranks"] / 1e6),
                            "copy_pct": None if name.startswith("netns") else median_or_none([copy_ratio(x, op) for x in docs], 100)})
    return sorted(out, key=lambda r: (r["op"], r["run"].startswith("netns"), r["ranks"]))


def median_or_none(values, scale=1):
    v = [x for x in values if x is not None]
    return scale * statistics.median(v) if v else None


def ranks_in(d, prefix):
    """The rank counts bench.sh ran for PREFIX<R>.<I>.json (or .txt: a run that left no JSON)."""
    pat = re.compile(re.escape(prefix) + r"(\d+)\.\d+\.(json|txt)$")
    return sorted(set(int(m.group(1)) for f in os.listdir(d) for m in [pat.match(f)] if m))


def main():
    args = sys.argv[1:]
    quick = bool(args) and args[0] == "--quick"
    args = args[1:] if quick else args
    d, n, out = args[0], int(args[1]), (args[2] if len(args) > 2 else "")
    runs = range(1, n + 1)
    j = lambda name: [load("%s/%s.%d.json" % (d, name, i)) for i in runs]
    t = Table(n, not quick)
    for r in ranks_in(d, "intranode_r"):
        docs = j("intranode_r%d" % r)
        for op in ("dispatch", "combine"):
            t.add("intranode r%d aggbw / copy" % r, op, [copy_ratio(x, op) for x in docs if x],
                  0.9 if r == 2 else None)
    for r in ranks_in(d, "ll_bf16_r"):
        for dt in ("bf16", "fp8"):
            docs = j("ll_%s_r%d" % (dt, r))
            for op in ("dispatch", "combine"):
                t.add("low-latency %s r%d aggbw / copy" % (dt, r), op, [copy_ratio(x, op) for x in docs if x],
                      0.9 if r == 2 else None)
                t.add("low-latency %s r%d p99 / median" % (dt, r), op, [tail_ratio(x, op) for x in docs if x],
                      2.0 if r == 2 else None, higher=False)
    mpi = [("mpi_intranode_r%d" % r, "MPI_Alltoallv r%d time / epbench" % r, None) for r in ranks_in(d, "mpi_intranode_r")]
    for name, what, goal in mpi + [("mpi_internode_n2", "MPI tcp 2x1 nodes time / epbench", 1.5)]:
        docs = j(name)
        for op in ("dispatch", "combine"):
            t.add(what, op, [x["speedup"][op] for x in docs if x], goal)
    iperf = [iperf_rate("%s/iperf_bidir.%d.txt" % (d, i)) for i in runs]
    for p, goal in ((2, 0.8), (4, 0.65)):
        docs = j("netns_p%d" % p)
        for op in ("dispatch", "combine"):
            t.add("netns 2x%d link rate / iperf3 bidir" % p, op,
                  [link_ratio(x, op, iperf[i]) for i, x in enumerate(docs) if x], goal)
    info = [open("%s/info.%d.txt" % (d, i)).read() for i in runs if os.path.exists("%s/info.%d.txt" % (d, i))]
    copy2 = [float(m.group(1)) for s in info for m in [re.search(r"^\s+2\s+([\d.]+)", s, re.M)] if m]
    notes = open(d + "/notes").read().splitlines() if os.path.exists(d + "/notes") else []
    iperf_ok = [x for x in iperf if x]
    if quick:
        print("# quick: small shapes that fit in cache, a smoke test; no goal is judged")
    print("# epbench bench: %d repetition%s; memcpy with 2 threads %s GB/s; iperf3 --bidir per direction %s GB/s"
          % (n, "" if n == 1 else "s", "/".join("%.1f" % x for x in copy2) or "-",
             "/".join("%.2f" % x for x in iperf_ok) or "-"))
    t.print()
    sc = scaling(d, n)
    print("# scaling: %-18s %-8s %6s %12s %12s %10s %7s" % ("run", "op", "ranks", "median (us)", "bytes/rank",
                                                         "us per MB", "copy %"))
    for r in sc:
        print("  %-27s %-8s %6d %12.1f %12d %10.1f %7s" % (r["run"], r["op"], r["ranks"], r["median_us"], r["alg_bytes"],
                                                        r["us_per_mb"], "-" if r["copy_pct"] is None else "%.1f" % r["copy_pct"]))
    for s in notes:
        print("# note: " + s)
    if out:
        doc = {"schema": "epbench-bench/1", "repeat": n, "quick": quick, "copy_gbs_2_threads": copy2, "iperf3_bidir_gbs": iperf,
               "rows": t.rows, "scaling": sc, "notes": notes}
        with open(out + ".tmp", "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()
