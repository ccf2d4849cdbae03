#!/bin/sh
# eplb_test.sh - redundant experts end to end: EPLB placements run bit-exact
# in intranode, low-latency and internode under every replica policy and
# both expert placements; the report gives the placement and the imbalance
# before and after it, and a zipf routing is better balanced after an EPLB
# placement for its law; --dump writes the placement; a replica moved on
# one rank is caught (exit 1); bad input is one line and exit 2.
# Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=intranode
. "$(dirname "$0")/lib.sh"

small="-t 32 --hidden 256 -e 16 -k 4 -n 2 -w 1 --timeout 20"
eplb="--routing zipf:1.2 --redundant-experts 4 --eplb-load zipf:1.2"

# the value of a dotted KEY in the first point of a result JSON
json_get() {
	python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))["points"][0]
for k in sys.argv[2].split("."):
    v = v[k]
print(v)' "$1" "$2"
}

# every mode, every policy: the check passes byte for byte on physical ids
for policy in modpos static dynamic; do
	run "intranode_$policy" 0 60 intranode -r 4 $small $eplb --replica-policy $policy --masked-ratio 0.1
	run "low_latency_$policy" 0 60 low-latency -r 4 $small $eplb --replica-policy $policy
	run "internode_$policy" 0 60 internode --local-nodes --nodes 2 --ranks-per-node 2 $small $eplb --replica-policy $policy
done
expect "internode_placement_line" "^# placement: 20 physical experts \(16 logical \+ 4 redundant\) on 4 ranks, 5 each"
run "intranode_round_robin" 0 60 intranode -r 4 $small $eplb --expert-placement round_robin --dtype fp8 --bias 1
run "low_latency_round_robin_fp8" 0 60 low-latency -r 4 $small $eplb --expert-placement round_robin --dtype fp8
run "internode_round_robin_dynamic_fp8" 0 60 internode --local-nodes --nodes 2 --ranks-per-node 2 $small $eplb \
	--expert-placement round_robin --replica-policy dynamic --dtype fp8 --bias 2
run "soak_reseeds_through_the_placement" 0 60 intranode -r 4 $small --soak 10 --routing lognormal:1.0 \
	--redundant-experts 4 --eplb-load lognormal:1.0 --replica-policy dynamic
run "intranode_initial_map" 0 60 intranode -r 4 $small --redundant-experts 8 --routing lognormal:1.0
expect "initial_map_summary" "^# placement: 24 physical experts .*vLLM's initial map"
run "intranode_lognormal_groups" 0 60 intranode -r 4 $small --routing lognormal:1.0 --num-groups 4 --num-topk-groups 2 \
	--redundant-experts 4 --eplb-load lognormal:1.0 --eplb-nodes 2
run "internode_hierarchical" 0 60 internode --local-nodes --nodes 2 --ranks-per-node 2 $small --routing zipf:1.0 \
	--num-groups 4 --num-topk-groups 2 --redundant-experts 8 --eplb-load zipf:1.0 --uneven-tokens 1

# a load file: one load per logical expert, comments and commas allowed
printf '# loads of 16 experts\n90, 132, 40, 61\n104 165 39 4\n73 56 183 86\n1 2 3 4 # the rest\n' >"$tmp/loads.txt"
run "load_file" 0 60 intranode -r 4 $small --redundant-experts 4 --eplb-load "$tmp/loads.txt"
expect "load_file_in_header" "routing uniform; 20 physical = 16 \+ 4 redundant, eplb file:.*loads.txt, linear, modpos"

# what redundancy bought: rows per rank better balanced after an EPLB
# placement for the routing's own law; both figures in the JSON
run "before_after" 0 60 intranode -r 4 $small $eplb --json "$tmp/e.json" -v
expect "before_line" "^# imbalance before placement: rows/rank"
expect "after_line" "^# imbalance after placement: rows/rank"
expect "phy2log_line" "^# placement phy2log \(logical expert of each physical one, rank-major\): [0-9 ]+$"
before=$(json_get "$tmp/e.json" placement.imbalance_before.rows_per_rank.max_over_mean)
after=$(json_get "$tmp/e.json" imbalance.rows_per_rank.max_over_mean)
python3 -c "import sys; sys.exit(0 if float('$after') < float('$before') else 1)" &&
	ok "eplb_lowers_max_over_mean ($before -> $after)" || bad "eplb_lowers_max_over_mean" "$before -> $after"
[ "$(json_get "$tmp/e.json" placement.physical_experts)" = 20 ] && [ "$(json_get "$tmp/e.json" placement.logcnt | tr -d ' ')" != "" ] &&
	ok "json_placement" || bad "json_placement" "no placement object"

# --dump: the placement beside the physical top-k
run "dump" 0 60 intranode -r 4 $small $eplb --dump "$tmp/d"
python3 - "$tmp/d" <<'PY' && ok "dump_placement_consistent" || bad "dump_placement_consistent" "see above"
import struct, sys
def npy(path):
    b = open(path, "rb").read()
    n = struct.unpack("<H", b[8:10])[0]
    hdr = b[10:10 + n].decode()
    fmt = {"'<i4'": "i", "'<i8'": "q"}[hdr.split("'descr': ")[1].split(",")[0]]
    data = b[10 + n:]
    return list(struct.unpack("<%d%s" % (len(data) // struct.calcsize(fmt), fmt), data)), hdr
for r in range(4):
    d = "%s/rank%d/" % (sys.argv[1], r)
    p2l, _ = npy(d + "phy2log.npy"); l2p, h = npy(d + "log2phy.npy"); cnt, _ = npy(d + "logcnt.npy"); topk, _ = npy(d + "topk_idx.npy")
    m = len(l2p) // 16
    assert len(p2l) == 20 and len(cnt) == 16 and sum(cnt) == 20, (len(p2l), cnt)
    for e in range(16):
        for k in range(m):
            q = l2p[e * m + k]
            assert (q >= 0) == (k < cnt[e]) and (q < 0 or p2l[q] == e), (e, k, q)
    assert all(-1 <= i < 20 for i in topk) and max(topk) >= 16
PY

# the check that must fail: rank 1 (and, across nodes, rank 3) dispatches
# with one replica moved while the reference keeps the placement, in every mode
run "replica_moved_intranode" 1 60 intranode -r 4 $small $eplb --fault replica:1
expect "replica_moved_named" "WRONG DATA: [0-9]+ wrong rows"
run "replica_moved_internode" 1 60 internode --local-nodes --nodes 2 --ranks-per-node 2 $small $eplb --fault replica:3
run "replica_moved_low_latency" 1 60 low-latency -r 4 $small $eplb --fault replica:1
expect "replica_moved_low_latency_named" "WRONG DATA: [0-9]+ wrong rows"
run "replica_moved_low_latency_nodes" 1 60 low-latency --local-nodes --nodes 2 --ranks-per-node 2 $small $eplb --fault replica:3
run "replica_moved_initial_map" 1 60 intranode -r 2 $small --redundant-experts 2 --fault replica:0

# bad input: one line quoting the value, exit 2, nothing spawned
run "bad_not_divisible" 2 10 intranode -r 4 $small --redundant-experts 2
expect "bad_not_divisible_msg" "--redundant-experts 2 gives 18 physical experts .*not a multiple of 4 ranks"
run "bad_load_kind" 2 10 intranode -r 4 $small --redundant-experts 4 --eplb-load zipf:-1
expect "bad_load_kind_msg" "invalid --eplb-load 'zipf:-1'"
run "bad_lognormal" 2 10 intranode -r 4 $small --redundant-experts 4 --eplb-load lognormal:0
printf '1 2 3\n' >"$tmp/short.txt"
run "bad_load_length" 2 10 intranode -r 4 $small --redundant-experts 4 --eplb-load "$tmp/short.txt"
expect "bad_load_length_msg" "has 3 loads, want 16"
printf '1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 -16\n' >"$tmp/neg.txt"
run "bad_load_negative" 2 10 intranode -r 4 $small --redundant-experts 4 --eplb-load "$tmp/neg.txt"
expect "bad_load_negative_msg" "bad load '-16'"
printf '1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 nan\n' >"$tmp/nan.txt"
run "bad_load_nan" 2 10 intranode -r 4 $small --redundant-experts 4 --eplb-load "$tmp/nan.txt"
run "bad_load_missing" 2 10 intranode -r 4 $small --redundant-experts 4 --eplb-load "$tmp/nothere.txt"
run "bad_groups" 2 10 intranode -r 4 $small --redundant-experts 4 --eplb-load zipf:1 --eplb-groups 3
expect "bad_groups_msg" "--eplb-groups 3 does not divide --num-experts 16"
run "bad_nodes" 2 10 intranode -r 4 -t 32 --hidden 256 -e 12 -k 2 --redundant-experts 4 --eplb-load zipf:1 --eplb-groups 3 --eplb-nodes 3
expect "bad_nodes_msg" "--eplb-nodes 3 does not divide the 4 ranks"
run "bad_placement" 2 10 intranode -r 4 $small --expert-placement diagonal
run "bad_policy" 2 10 intranode -r 4 $small --replica-policy random
run "bad_replica_fault_no_placement" 2 10 intranode -r 4 $small --fault replica:1

[ -z "$(live_ranks)" ] && ok "no_orphans" || bad "no_orphans" "$(live_ranks)"
finish eplb_test.sh
