#!/bin/sh
# cli_test.sh - the front door as a user meets it: --case for every subcommand,
# defaults shown from the option table, the progress line, and a dump from
# which an outside tool recomputes combine's outputs on its own.
# Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=intranode
. "$(dirname "$0")/lib.sh"

run() {
	name=$1 want=$2 limit=$3; shift 3
	timeout -k 2 "$limit" "$EPBENCH" "$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	cat "$tmp/err" >>"$tmp/out"
	if [ "$got" -eq "$want" ]; then ok "$name"; return 0; fi
	bad "$name" "exit $got, want $want (epbench $*)"
	return 1
}

# --case is expanded once, for every subcommand (internode used to refuse it)
printf -- '-t 16 --hidden 256 -k 2 -n 1 -w 0 # a small shape\n' >"$tmp/small.case"
run "case_intranode" 0 60 intranode --case "$tmp/small.case" -r 2 -e 8
run "case_low_latency" 0 60 low-latency --case "$tmp/small.case" -r 2 -e 8 --hidden 512
run "case_internode" 0 60 internode --case "$tmp/small.case" --local-nodes --nodes 2 --ranks-per-node 1 -e 8 --timeout 20
run "case_low_latency_nodes" 0 60 low-latency --case "$tmp/small.case" --local-nodes --nodes 2 --ranks-per-node 1 -e 8 --hidden 512 --timeout 20
run "case_file_overridden_by_command_line" 0 60 intranode --case "$tmp/small.case" -r 2 -e 8 -t 24 -q
grep -qE "^ +2 +24 +256 dispatch" "$tmp/out" && ok "case_later_option_wins" || bad "case_later_option_wins" "no row with 24 tokens"

# --simd: every level gives the same bytes; a level the CPU lacks is refused (exit 3) before anything runs
# (the header's "# iters ... simd LEVEL" line, not the refusal's text)
for l in baseline avx2 avx512; do
	case $l in
	avx2) flags="avx2 fma" ;; avx512) flags="avx512f avx512bw" ;; *) flags="" ;;
	esac
	missing=""
	for f in $flags; do grep -qw "$f" /proc/cpuinfo || missing="$missing $f"; done
	if [ -n "$missing" ]; then
		skipped "simd_$l" "this CPU lacks$missing (the level is refused here: simd_missing_refused)"
		continue
	fi
	run "simd_$l" 0 60 intranode -r 2 -t 64 --hidden 200 -e 8 -k 2 -n 1 -w 0 --bias 2 --payload special --simd $l
	grep -q "^# iters .*simd $l\$" "$tmp/out" && ok "simd_${l}_in_header" || bad "simd_${l}_in_header" "no 'simd $l' in the header"
done
export EP_SIMD_CPU=avx2 # as if the CPU stopped at AVX2
run "simd_missing_refused" 3 10 intranode -r 2 --simd avx512 --json "$tmp/simd.json"
grep -q "simd avx512: this CPU does not run it (the widest it runs: avx2)" "$tmp/out" && [ ! -e "$tmp/simd.json" ] &&
	ok "simd_missing_says_why" || bad "simd_missing_says_why" "$(head -c 300 "$tmp/out")"
EP_SIMD_CPU=baseline
run "simd_auto_takes_the_widest" 0 60 low-latency -r 2 -t 16 --hidden 256 -e 8 -k 2 -n 1 -w 0 --dtype fp8
grep -q "simd baseline" "$tmp/out" && ok "simd_auto_follows_the_cpu" || bad "simd_auto_follows_the_cpu" "not baseline"
unset EP_SIMD_CPU

# defaults come from one row each, the command's own where it has one
run "help_intranode" 0 10 intranode --help
grep -qE -- "--num-tokens N\|SWEEP +tokens per rank \[4096\]" "$tmp/out" && ok "help_intranode_default_tokens" ||
	bad "help_intranode_default_tokens" "no [4096]"
run "help_low_latency" 0 10 low-latency --help
grep -qE -- "tokens per rank \[128\]" "$tmp/out" && grep -qE -- "--num-experts N +experts the router picks from .*\[288\]" "$tmp/out" &&
	ok "help_low_latency_own_defaults" || bad "help_low_latency_own_defaults" "no [128]/[288]"
grep -q -- "--cached" "$tmp/out" && bad "help_low_latency_scope" "offers --cached" || ok "help_low_latency_scope"
run "help_top" 0 10 help
for c in intranode low-latency internode info version help; do
	grep -qE "^  $c " "$tmp/out" || bad "help_lists_$c" "missing"
done
ok "help_lists_every_command"

# progress: plain lines with --progress on (logs), nothing with off or when stderr is no terminal
run "progress_on" 0 60 intranode -r 2 -t 16 --hidden 256 -e 8 -k 2 -n 300000 -w 0 --progress on -q
grep -qE "^# point 1 of 1: [a-z.]+.*; [0-9]+ s elapsed, about ([0-9]+ (s|min)|\?) left" "$tmp/err" &&
	ok "progress_on_plain_lines" || bad "progress_on_plain_lines" "$(head -c 300 "$tmp/err")"
run "progress_auto_not_a_terminal" 0 60 intranode -r 2 -t 16 --hidden 256 -e 8 -k 2 -n 2000 -w 0 -q
[ -s "$tmp/err" ] && bad "progress_auto_silent_in_logs" "$(head -c 200 "$tmp/err")" || ok "progress_auto_silent_in_logs"
if command -v script >/dev/null; then
	TERM=dumb timeout 60 script -qec "$EPBENCH intranode -r 2 -t 16 --hidden 256 -e 8 -k 2 -n 300000 -w 0" "$tmp/tty" >/dev/null 2>&1
	if grep -q "# point 1 of 1" "$tmp/tty" && grep -q "$(printf '\r\033\[K')" "$tmp/tty"; then ok "progress_in_place_on_a_terminal"
	else bad "progress_in_place_on_a_terminal" "no status line rewritten in place"; fi
	grep -E "^ +2 +16 +256 combine" "$tmp/tty" | grep -q "# point" && bad "progress_erased_before_rows" "a row shares a line with the status" ||
		ok "progress_erased_before_rows"
else
	skipped "progress_in_place_on_a_terminal" "script(1) not installed"
fi

# the dump has combine's inputs: combined_x and combined_topk_weights recomputed from it alone
for cmd in intranode internode; do
	rm -rf "$tmp/d"
	if [ $cmd = intranode ]; then
		run "dump_$cmd" 0 60 intranode -r 3 -t 20 --hidden 256 -e 12 -k 3 -n 1 -w 0 --bias 2 --dump "$tmp/d"
	else
		run "dump_$cmd" 0 60 internode --local-nodes --nodes 2 --ranks-per-node 1 -t 20 --hidden 256 -e 8 -k 3 -n 1 -w 0 --dump "$tmp/d" --timeout 20
	fi
	python3 - "$tmp/d" $cmd <<'PY' && ok "dump_recomputes_combine_$cmd" || bad "dump_recomputes_combine_$cmd" "see above"
import glob, os, sys
import numpy as np
d, cmd = sys.argv[1], sys.argv[2]
R = len(glob.glob(os.path.join(d, "rank*")))
ld = lambda r, n: np.load(os.path.join(d, "rank%d" % r, n + ".npy"))
def f32(b): return (b.astype(np.uint32) << 16).view(np.float32)
def bf16(x):
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7fff + ((u >> 16) & 1)) >> 16).astype(np.uint16)
for me in range(R):
    T, H = ld(me, "combined_x").shape
    K = ld(me, "combined_topk_weights").shape[1]
    b = [f32(ld(me, "bias_%d" % i)) for i in (0, 1) if os.path.exists(os.path.join(d, "rank%d" % me, "bias_%d.npy" % i))]
    acc = (b[0] + b[1]) if len(b) == 2 else b[0] if b else np.zeros((T, H), np.float32)
    wacc = np.zeros((T, K), np.float32)
    parts = {}
    for dst in range(R):
        rpm = ld(dst, "rank_prefix_matrix")
        lo = rpm[me - 1][dst] if me else 0
        hi = rpm[me][dst]
        src = ld(dst, "recv_src_idx")[lo:hi]
        parts[dst] = (src, f32(ld(dst, "combine_x")[lo:hi]), ld(dst, "combine_topk_weights")[lo:hi])
    if cmd == "intranode":
        for dst in range(R):            # ascending destination ranks, one rounding
            src, x, w = parts[dst]
            acc[src] += x
            wacc[src] += w
        want = bf16(acc)
    else:                              # per node (from +0, a rounding), then across nodes (a second)
        for dst in range(R):           # one rank per node here: each node's partial is its rank's row
            src, x, w = parts[dst]
            p = np.zeros((T, H), np.float32); p[src] = x
            acc += f32(bf16(p)) * np.isin(np.arange(T), src)[:, None]
            wacc[src] += w
        want = bf16(acc)
    got = ld(me, "combined_x")
    assert (got == want).all(), "rank %d: %d of %d elements differ" % (me, (got != want).sum(), got.size)
    assert (ld(me, "combined_topk_weights").view(np.uint32) == wacc.view(np.uint32)).all(), "weights of rank %d" % me
PY
done
finish cli_test.sh
