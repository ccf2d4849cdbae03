#!/bin/sh
# routing_test.sh - the routing kinds end to end: each new kind passes the
# check in intranode, low-latency and internode; rotating and trace routing
# on one host and across 2 nodes; the imbalance figures say what a crafted
# routing must give; skew grows with lognormal's sigma; a
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
head -n 1 "$tmp/hot.csv" | grep -q ",wrong_rows,rows_rank_min,.*,hottest_node,link_max_over_mean,link_balancedness,hottest_link,parallel,moe_tokens,layer_slowest_rank,layer_alg_intra,layer_alg_inter,layer_wire_intra,layer_wire_inter$" &&
	grep -q "^intranode,bf16,4,32,256,4,16,dispatch,PASS,128,.*,0,32.0000,128,4.0000,0.2500,1," "$tmp/hot.csv" &&
	ok "hot_rank_csv_columns" || bad "hot_rank_csv_columns" "$(head -n 2 "$tmp/hot.csv")"
# low-latency counts a row per (token, expert): 4 x 32 x 4 on rank 1
run "hot_rank_all_rows_low_latency" 0 60 low-latency -r 4 $small --routing hot-rank:1:1.0
expect "hot_rank_low_latency_line" "^# imbalance: rows/rank min 0 mean 128.0 max 512, max/mean 4.000"
# across 2 nodes of 2 ranks, rank 3's node gets every row
run "hot_rank_all_rows_internode" 0 60 internode --local-nodes --nodes 2 --ranks-per-node 2 $small --routing hot-rank:3:1.0 --csv "$tmp/hot2.csv"
expect "hot_rank_internode_node" "rows/node max/mean 2.000, balancedness 0.500 \(hottest node 1\);"
# only node 0 -> node 1 carries records (node 1's own tokens stay home): max/mean 2 over the 2 links
expect "hot_rank_internode_link" "records/link max/mean 2.000, balancedness 0.500 \(hottest link node 0 -> node 1\)$"
grep -q "^internode,.*,2.0000,0.5000,0->1,,,,,,,$" "$tmp/hot2.csv" && ok "hot_rank_internode_link_csv" ||
	bad "hot_rank_internode_link_csv" "$(tail -n 1 "$tmp/hot2.csv")"
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

# ---- routing that changes between iterations: rotating and trace ----------
tr=cases/synthetic-e16-k4.trace
one="-t 32 --hidden 256 -e 16 -k 4 --timeout 20"

# rotating passes the check at every step, with group limits and masks
run "rotating_intranode" 0 60 intranode -r 4 $one -n 4 -w 2 --routing rotating:2 --num-groups 8 --num-topk-groups 4 --masked-ratio 0.1
run "rotating_low_latency" 0 60 low-latency -r 4 $one -n 3 -w 1 --routing rotating:1:1.5
run "rotating_soak" 0 60 intranode -r 4 $one --soak 5 --routing rotating:1
# the load moves: with zipf:3 expert 0's rank is the hottest at step 0, rank 1 at step 1
run "rotating_step0" 0 60 intranode -r 4 $one -n 1 -w 0 --routing rotating:1:3
expect "rotating_step0_hottest_rank_0" "^# imbalance: .*\(hottest rank 0\); .*\(hottest expert 0\)"
run "rotating_step1" 0 60 intranode -r 4 $one -n 1 -w 1 --routing rotating:1:3
expect "rotating_step1_hottest_rank_1" "^# imbalance: .*\(hottest rank 1\); .*\(hottest expert 4\)"
# bad input: one line, exit 2, nothing spawned
run "rotating_zero" 2 20 intranode -r 4 $one --routing rotating:0
expect "rotating_zero_quoted" "invalid --routing 'rotating:0'"
run "rotating_cached" 2 20 intranode -r 4 $one --routing rotating:3 --cached
expect "rotating_cached_says_why" "--cached reuses one dispatch's handle, but --routing rotating:3"
[ -z "$(live_ranks)" ] && ok "rotating_refusals_spawn_nothing" || bad "rotating_refusals_spawn_nothing" "$(live_ranks)"

# the verification checks every step the iterations use: 2 warm-up + 6 timed
# iterations of rotating:2 are 4 steps; damage in the 4th step's check is caught
run "rotating_fault_last_step" 1 60 intranode -r 4 $one -n 6 -w 2 --routing rotating:2 --fault corrupt:1@3
run "rotating_fault_beyond_steps" 2 60 intranode -r 4 $one -n 6 -w 2 --routing rotating:2 --fault corrupt:1@4
expect "rotating_fault_beyond_says_steps" "never strikes: the run checks 4 routing steps \(0 to 3\)"

# trace replay passes in both modes, from any step, uneven and masked
run "trace_intranode" 0 60 intranode -r 4 $one -n 4 -w 1 --routing trace:$tr
expect "trace_header_names_it" "routing trace:$tr:0 \(sha256 [0-9a-f]{16}\)"
run "trace_low_latency" 0 60 low-latency -r 4 -t 64 --hidden 256 -e 16 -k 4 -n 3 -w 1 --routing trace:$tr:5 --uneven-tokens 1 --masked-ratio 0.1
# a later step's damage is caught (6 steps, the 5th checked pass) and steps differ
run "trace_fault_step_4" 1 60 intranode -r 4 $one -n 5 -w 1 --routing trace:$tr --fault corrupt:2@4
run "trace_step0" 0 60 intranode -r 4 $one -n 1 -w 0 --routing trace:$tr:0 --json "$tmp/t0.json"
run "trace_step1" 0 60 intranode -r 4 $one -n 1 -w 0 --routing trace:$tr:1 --json "$tmp/t1.json"
run "trace_steps01" 0 60 intranode -r 4 $one -n 2 -w 0 --routing trace:$tr:0 --json "$tmp/t01.json"
h0=$(json_get "$tmp/t0.json" routing_hash) h1=$(json_get "$tmp/t1.json" routing_hash) h01=$(json_get "$tmp/t01.json" routing_hash)
[ "$h0" != "$h1" ] && [ "$h01" != "$h0" ] && [ ${#h01} -eq 64 ] && ok "trace_steps_differ" ||
	bad "trace_steps_differ" "step 0 $h0, step 1 $h1, steps 0-1 $h01"

# damaged or mismatched traces are refused before anything runs
cp "$tr" "$tmp/flip.trace"
printf '\125' | dd of="$tmp/flip.trace" bs=1 seek=4000 conv=notrunc 2>/dev/null
run "trace_flipped_byte" 2 20 intranode -r 4 $one --routing trace:$tmp/flip.trace
expect "trace_flipped_byte_checksum" "^epbench intranode: trace '.*flip.trace' fails its checksum"
head -c 30000 "$tr" >"$tmp/short.trace"
run "trace_truncated" 2 20 intranode -r 4 $one --routing trace:$tmp/short.trace
expect "trace_truncated_says_so" "is truncated: 29872 body bytes, its header needs 49152"
run "trace_other_experts" 2 20 intranode -r 4 -t 32 --hidden 256 -e 32 -k 4 --routing trace:$tr
expect "trace_other_experts_says_both" "holds 16 experts and top-4 .*the run has --num-experts 32 --num-topk 4"
run "trace_other_topk" 2 20 intranode -r 4 -t 32 --hidden 256 -e 16 -k 2 --routing trace:$tr
# a sweep whose last point asks for more tokens than a step has: refused before its first point runs
run "trace_too_few_tokens_sweep" 2 20 intranode -r 4 -t 32:128:x2 --hidden 256 -e 16 -k 4 --routing trace:$tr
expect "trace_too_few_tokens_sweep_says_asked" "^epbench intranode: --routing trace:$tr: a step has 256 tokens, the run asks for 4 ranks x 128 tokens = 512$"
grep -q "^ *4 *32 " "$tmp/out" && bad "trace_too_few_tokens_sweep_nothing_ran" "a point ran" || ok "trace_too_few_tokens_sweep_nothing_ran"
run "trace_too_few_tokens_t" 2 20 intranode -r 4 -t 65 --hidden 256 -e 16 -k 4 --routing trace:$tr
expect "trace_too_few_tokens_quoted" "a step has 256 tokens, the run asks for 4 ranks x 65 tokens = 260"
run "trace_step_beyond" 2 20 intranode -r 4 $one --routing trace:$tr:6
run "trace_cached" 2 20 intranode -r 4 $one --routing trace:$tr --cached
run "trace_not_a_trace" 2 20 intranode -r 4 $one --routing trace:cases/routing-small.txt
expect "trace_not_a_trace_magic" "no EPTRACE magic"
[ -z "$(live_ranks)" ] && ok "trace_refusals_spawn_nothing" || bad "trace_refusals_spawn_nothing" "$(live_ranks)"

# ---- rotating and trace across nodes ---------------------------------------
# Every rank of every node moves to a step at the same iteration (the step is
# a function of the iteration's index) and the verification checks each
# step; 1 warm-up + 4 timed iterations of rotating:2 are 3 steps (0 to 2).
cluster_init
across="--ranks-per-node 2 -t 64 --hidden 256 -e 16 -k 4 -n 4 -w 1 --timeout 20"
for SUBCOMMAND in internode low-latency; do
	m=$(echo "$SUBCOMMAND" | tr '-' '_')
	cluster "rotating_${m}_2_nodes" 0 90 2 $across --routing rotating:2
	expect "rotating_${m}_2_nodes_checked" "^# check: .* 0 wrong elements$"
	cluster "trace_${m}_2_nodes" 0 90 2 $across --routing trace:$tr
	expect "trace_${m}_2_nodes_names_it" "routing trace:$tr:0 \(sha256 [0-9a-f]{16}\)"
	# damage to rank 1's outputs in the third step's check (pass 2) is caught
	cluster "rotating_${m}_2_nodes_fault_step_2" 1 90 2 $across --routing rotating:2 --fault corrupt:1@2
	expect "rotating_${m}_2_nodes_fault_names_rank_1" "WRONG DATA: .*first: rank 1: "
	cluster "rotating_${m}_2_nodes_fault_beyond" 2 90 2 $across --routing rotating:2 --fault corrupt:1@3
	expect "rotating_${m}_2_nodes_fault_beyond_says_steps" "never strikes: the run checks 3 routing steps \(0 to 2\)"
done
# from a later step, wrapping past the last, uneven and masked; the fifth
# step's damage on node 1 (rank 2) is caught
SUBCOMMAND=internode
cluster "trace_internode_2_nodes_uneven" 0 90 2 $across --routing trace:$tr:3 --uneven-tokens 1 --masked-ratio 0.1
cluster "trace_internode_2_nodes_fault_step_4" 1 90 2 $across --routing trace:$tr:3 --fault corrupt:2@4
SUBCOMMAND=low-latency
cluster "trace_low_latency_2_nodes_hook" 0 90 2 $across --routing trace:$tr:5 --uneven-tokens 1 --masked-ratio 0.1 --hook
cluster "trace_low_latency_2_nodes_fault_step_4" 1 90 2 $across --routing trace:$tr --fault corrupt:3@4
SUBCOMMAND=internode
# soak across nodes is still refused, before anything runs
run "rotating_internode_soak_refused" 2 20 internode --local-nodes --nodes 2 $across --routing rotating:1 --soak 3
expect "rotating_internode_soak_says_why" "--soak runs on one host"

# nodes that would replay different traces (same name, other contents) refuse each other
mkdir -p "$tmp/a" "$tmp/b"
cp "$tr" "$tmp/a/x.trace"
python3 -c 'import hashlib, struct, sys
b = open(sys.argv[1], "rb").read()
K, S, N = struct.unpack_from("<III", b, 20)
step, body = 4 * N * K, b[128:]
body = body[step:S * step] + body[:step] + body[S * step:] # ids one step on, weights as they were
open(sys.argv[2], "wb").write(b[:40] + hashlib.sha256(body).digest() + b[72:128] + body)' "$tmp/a/x.trace" "$tmp/b/x.trace"
two="--nodes 2 --ranks-per-node 1 -t 32 --hidden 256 -e 16 -k 4 -n 1 -w 0 --timeout 10 --routing trace:x.trace"
next_port
(cd "$tmp/a" && exec setsid "$EPBENCH" internode $two --node-rank 0 --master 127.0.0.1:$port) >"$tmp/n0" 2>&1 &
p0=$!; bg="$bg $p0"
(cd "$tmp/b" && exec setsid "$EPBENCH" internode $two --node-rank 1 --master 127.0.0.1:$port) >"$tmp/n1" 2>&1 &
p1=$!; bg="$bg $p1"
timeout 20 sh -c "while kill -0 $p0 2>/dev/null || kill -0 $p1 2>/dev/null; do sleep 0.1; done"
wait $p0; c0=$?; wait $p1; c1=$?
cat "$tmp/n0" "$tmp/n1" >"$tmp/out"
if [ "$c0" -eq 2 ] && [ "$c1" -eq 2 ] && grep -q "routing (steps) differs: node 0 has .*trace body sha256 0e233a9e" "$tmp/n0"; then
	ok "trace_differs_across_nodes_refused"
else bad "trace_differs_across_nodes_refused" "exits $c0/$c1, want 2/2 and a line naming the routing steps"; fi

# the converter: npz -> trace -> npz gives the arrays back; a [tokens, K] .npy
# is cut into steps; ids outside [-1, E) are refused
conv="python3 scripts/trace_convert.py"
if python3 -c "import numpy" 2>/dev/null; then
	$conv to-npz "$tr" "$tmp/back.npz" && $conv to-trace "$tmp/back.npz" "$tmp/again.trace" --experts 16 \
		--model "synthetic lognormal drift, not a model capture" && cmp -s "$tr" "$tmp/again.trace" &&
		ok "converter_round_trip_bytes" || bad "converter_round_trip_bytes" "the trace differs after to-npz and to-trace"
	python3 -c 'import numpy as np, sys
np.save(sys.argv[1], np.array([[e % 8, (e + 3) % 8] for e in range(12)], dtype=np.int64))' "$tmp/flat.npy"
	$conv to-trace "$tmp/flat.npy" "$tmp/flat.trace" --experts 8 --tokens-per-step 4 --model test >"$tmp/out" 2>&1 &&
		$conv info "$tmp/flat.trace" >"$tmp/out" 2>&1 && expect "converter_cuts_steps" "8 experts, top-2, 3 steps of 4 tokens, no weights"
	run "converter_trace_runs" 0 60 intranode -r 2 -t 2 --hidden 256 -e 8 -k 2 -n 3 -w 0 --routing trace:$tmp/flat.trace
	python3 -c 'import numpy as np, sys; np.save(sys.argv[1], np.array([[0, 9]]))' "$tmp/bad.npy"
	if $conv to-trace "$tmp/bad.npy" "$tmp/bad.trace" --experts 8 >"$tmp/out" 2>&1; then
		bad "converter_refuses_ids" "accepted expert 9 of 8"
	else
		expect "converter_refuses_ids" "step 0 token 0 slot 1 has expert 9, outside \[-1, 8\)"
	fi
else
	skipped "converter" "python3 has no numpy (scripts/install-deps.sh installs python3-numpy)"
fi

finish routing_test.sh
