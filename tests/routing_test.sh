#!/bin/sh
# routing_test.sh - the routing kinds end to end: each new kind passes the
# check in intranode, low-latency and internode; the imbalance figures say
# what a crafted routing must give; skew grows with lognormal's sigma; a
# seed gives one routing; hot:EXPERT keeps its bytes; group limits hold.
# Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=intranode
. "$(dirname "$0")/lib.sh"

small="-t 32 --hidden 256 -e 16 -k 4 -n 2 -w 1 --timeout 20"

# the value of KEY under the first point's "imbalance" (or "routing_hash") in a result JSON
json_get() {
	python3 -c 'import json, sys
p = json.load(open(sys.argv[1]))["points"][0]
v = p["routing_hash"] if sys.argv[2] == "routing_hash" else p["imbalance"]
for k in sys.argv[2].split(".")[1:] if sys.argv[2] != "routing_hash" else []:
    v = v[k]
print(v)' "$1" "$2"
}

# every new kind passes the byte-for-byte check in every mode
for kind in lognormal:1.0 hot-rank:1:0.75 hot-experts:3:0.5; do
	kname=$(echo "$kind" | tr ':.-' '___')
	run "${kname}_intranode" 0 60 intranode -r 4 $small --routing "$kind" --masked-ratio 0.1
	run "${kname}_low_latency" 0 60 low-latency -r 4 $small --routing "$kind"
	run "${kname}_internode" 0 60 internode --local-nodes --nodes 2 --ranks-per-node 2 $small --routing "$kind"
	expect "${kname}_internode_per_node" "^# imbalance: .*rows/node max/mean"
done

# hot-rank:1:1.0 with K = 4 experts per rank: every row goes to rank 1, so
# rows per rank are (0, 4 x 32 tokens, 0, 0): max/mean 4, balancedness 1/4
run "hot_rank_all_rows_intranode" 0 60 intranode -r 4 $small --routing hot-rank:1:1.0 -v --json "$tmp/hot.json" --csv "$tmp/hot.csv"
expect "hot_rank_imbalance_line" "^# imbalance: rows/rank min 0 mean 32.0 max 128, max/mean 4.000, balancedness 0.250 \(hottest rank 1\)"
expect "hot_rank_per_rank_rows" "^# imbalance rows per rank, one per \(token, rank\): r0=0 r1=128 r2=0 r3=0$"
[ "$(json_get "$tmp/hot.json" imbalance.rank_matrix)" = "[[0, 32, 0, 0], [0, 32, 0, 0], [0, 32, 0, 0], [0, 32, 0, 0]]" ] &&
	ok "hot_rank_json_matrix" || bad "hot_rank_json_matrix" "$(json_get "$tmp/hot.json" imbalance.rank_matrix)"
head -n 1 "$tmp/hot.csv" | grep -q ",wrong_rows,rows_rank_min,.*,hottest_node$" &&
	grep -q "^intranode,bf16,4,32,256,4,16,dispatch,PASS,128,.*,0,32.0000,128,4.0000,0.2500,1," "$tmp/hot.csv" &&
	ok "hot_rank_csv_columns" || bad "hot_rank_csv_columns" "$(head -n 2 "$tmp/hot.csv")"
# low-latency counts a row per (token, expert): 4 x 32 x 4 on rank 1
run "hot_rank_all_rows_low_latency" 0 60 low-latency -r 4 $small --routing hot-rank:1:1.0
expect "hot_rank_low_latency_line" "^# imbalance: rows/rank min 0 mean 128.0 max 512, max/mean 4.000"
# across 2 nodes of 2 ranks, rank 3's node gets every row
run "hot_rank_all_rows_internode" 0 60 internode --local-nodes --nodes 2 --ranks-per-node 2 $small --routing hot-rank:3:1.0
expect "hot_rank_internode_node" "rows/node max/mean 2.000, balancedness 0.500 \(hottest node 1\);"
# only node 0 -> node 1 carries records (node 1's own tokens stay home): max/mean 2 over the 2 links
expect "hot_rank_internode_link" "records/link max/mean 2.000, balancedness 0.500 \(hottest link node 0 -> node 1\)$"
# every entry masked: nothing moves, nothing is out of balance
run "masked_everything" 0 60 intranode -r 2 $small -e 8 --routing hot-rank:0 --masked-ratio 1
expect "masked_everything_balanced" "^# imbalance: rows/rank min 0 mean 0.0 max 0, max/mean 1.000"

# lognormal: a larger sigma, a larger spread of tokens per expert (same seed)
big="-r 4 -t 256 --hidden 256 -e 64 -k 4 -n 1 -w 0 -s 3"
run "lognormal_small_sigma" 0 60 intranode $big --routing lognormal:0.3 --json "$tmp/ln03.json"
run "lognormal_large_sigma" 0 60 intranode $big --routing lognormal:1.5 --json "$tmp/ln15.json"
cv03=$(json_get "$tmp/ln03.json" imbalance.tokens_per_expert.cv)
cv15=$(json_get "$tmp/ln15.json" imbalance.tokens_per_expert.cv)
python3 -c "import sys; sys.exit(not (float('$cv03') < float('$cv15')))" && ok "lognormal_cv_grows_with_sigma" ||
	bad "lognormal_cv_grows_with_sigma" "cv $cv03 (sigma 0.3) vs $cv15 (sigma 1.5)"

# one seed, one routing; another seed, another
run "lognormal_seed_again" 0 60 intranode $big --routing lognormal:1.5 --json "$tmp/ln15b.json"
run "lognormal_other_seed" 0 60 intranode $big --routing lognormal:1.5 -s 4 --json "$tmp/ln15c.json"
h1=$(json_get "$tmp/ln15.json" routing_hash) h2=$(json_get "$tmp/ln15b.json" routing_hash) h3=$(json_get "$tmp/ln15c.json" routing_hash)
[ "$h1" = "$h2" ] && [ ${#h1} -eq 64 ] && ok "same_seed_same_routing" || bad "same_seed_same_routing" "$h1 vs $h2"
[ "$h1" != "$h3" ] && ok "other_seed_other_routing" || bad "other_seed_other_routing" "$h1 twice"

# hot:0 is hot-experts with the set {0} and one slot (round(0.25 x 4) = 1): the same bytes
run "hot_alias" 0 60 intranode -r 2 $small --routing hot:0 --masked-ratio 0.2 --json "$tmp/hot0.json"
run "hot_experts_one" 0 60 intranode -r 2 $small --routing hot-experts:1:0.25 --masked-ratio 0.2 --json "$tmp/he1.json"
[ "$(json_get "$tmp/hot0.json" routing_hash)" = "$(json_get "$tmp/he1.json" routing_hash)" ] &&
	ok "hot_alias_is_hot_experts_one" || bad "hot_alias_is_hot_experts_one" "routing hashes differ"
# and the bytes of the build before the hot kinds, when one is at hand
if [ -x "${EP_OLD_EPBENCH:-}" ]; then
	timeout 60 "$EP_OLD_EPBENCH" intranode -r 2 $small --routing hot:3 --masked-ratio 0.2 --json "$tmp/old.json" >/dev/null 2>&1
	run "hot_alias_now" 0 60 intranode -r 2 $small --routing hot:3 --masked-ratio 0.2 --json "$tmp/new.json"
	[ "$(json_get "$tmp/old.json" routing_hash)" = "$(json_get "$tmp/new.json" routing_hash)" ] &&
		ok "hot_alias_same_bytes_as_old_build" || bad "hot_alias_same_bytes_as_old_build" "routing hashes differ"
else
	skipped "hot_alias_same_bytes_as_old_build" "EP_OLD_EPBENCH (an epbench built before the hot kinds) not given; reference/inputs_test replays the old code path"
fi

# group-limited routing: every token of every rank within 2 of 8 groups
for kind in lognormal:1.0 zipf:1.2 hot-rank:0:0.5; do
	kname=$(echo "$kind" | tr ':.-' '___')
	rm -rf "$tmp/dump"
	run "${kname}_groups" 0 60 intranode -r 4 -t 64 --hidden 256 -e 32 -k 4 -n 1 -w 0 --num-groups 4 \
		--num-topk-groups 2 --routing "$kind" --dump "$tmp/dump"
	python3 -c 'import numpy, sys, glob
for f in glob.glob(sys.argv[1] + "/rank*/topk_idx.npy"):
    for row in numpy.load(f):
        assert len({int(e) // 8 for e in row if e >= 0}) <= 2, (f, row)' "$tmp/dump" 2>"$tmp/out" &&
		ok "${kname}_within_2_groups" || bad "${kname}_within_2_groups" "a token beyond 2 groups"
done

finish routing_test.sh
