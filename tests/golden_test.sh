#!/bin/sh
# golden_test.sh - epbench golden and verify: golden equals a run's --dump byte
# for byte; verify passes it, catches a corrupted byte, a permuted row (from
# the fake library through scripts/adapters/deepep_v1.py) and recomputes from
# the directory's own inputs; bad directories are refused with one line, exit
# 2; what would not fit is refused with exit 3. Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=golden
. "$(dirname "$0")/lib.sh"
root=$(cd "$lib_here/.." && pwd)


# golden = what a run dumps, for each kind of normal-mode point
i=0
for args in "intranode -r 3 -t 64 --hidden 256 -e 12 -k 3 --bias 2" \
	"intranode -r 4 -t 48 --hidden 256 -e 16 -k 4 --dtype fp8 --masked-ratio 0.3 --payload special" \
	"intranode -r 2 -t 40 --hidden 256 -e 8 -k 2 --dtype int8 --expert-counts prefix --expert-alignment 8 --uneven-tokens 1" \
	"internode --nodes 2 --ranks-per-node 2 -t 32 --hidden 256 -e 16 -k 4 --bias 1"; do
	i=$((i + 1))
	set -- $args
	sub=$1; shift
	run "golden_$i" 0 60 golden $sub "$@" --out "$tmp/g$i" || continue
	if [ "$sub" = internode ]; then
		run "dump_$i" 0 60 internode --local-nodes "$@" -n 1 -w 0 --dump "$tmp/d$i"
	else
		run "dump_$i" 0 60 $sub "$@" -n 1 -w 0 --dump "$tmp/d$i"
	fi
	same_tensors "golden_equals_dump_$i" "$tmp/g$i" "$tmp/d$i" listed
	run "verify_golden_$i" 0 60 verify $sub "$tmp/g$i"
	expect "verify_checked_everything_$i" "^# not checked \(absent\): nothing"
done

# low-latency: golden = the defined rows of a run's dump; verify exact and as sets
for args in "-r 4 -t 24 --hidden 512 -e 16 -k 4 --dtype fp8 --round-scale --ue8m0 --masked-ratio 0.2" \
	"-r 3 -t 16 --hidden 200 -e 12 -k 3 --payload special"; do
	i=$((i + 1))
	run "golden_ll_$i" 0 60 golden low-latency $args --out "$tmp/g$i" || continue
	run "dump_ll_$i" 0 60 low-latency $args -n 1 -w 0 --dump "$tmp/d$i"
	python3 - "$tmp/g$i" "$tmp/d$i" <<'PY' >"$tmp/out" 2>&1 && ok "golden_ll_equals_dump_$i" || bad "golden_ll_equals_dump_$i" "see above"
import numpy as np, os, sys
g, d = sys.argv[1:3]
for r in sorted(x for x in os.listdir(d) if x.startswith("rank")):
    cnt = np.load(os.path.join(g, r, "packed_recv_count.npy"))
    for f in os.listdir(os.path.join(d, r)):
        a, b = np.load(os.path.join(d, r, f)), np.load(os.path.join(g, r, f))
        assert a.dtype == b.dtype and a.shape == b.shape, f
        if f.startswith("packed_recv_x") or f in ("packed_recv_src_info.npy", "combine_x.npy"):
            assert all((a[e, :c] == b[e, :c]).all() for e, c in enumerate(cnt)), (r, f)
        else:
            assert a.tobytes() == b.tobytes(), (r, f)
PY
	run "verify_ll_$i" 0 60 verify low-latency "$tmp/g$i"
done
# DeepEP's receive order: source blocks in arrival order, rows within a block in any order
cp -r "$tmp/g$i" "$tmp/o$i"
python3 - "$tmp/o$i/rank1" "$(dirname "$0")" <<'PY'
import numpy as np, os, sys
d = sys.argv[1]
sys.path.insert(0, sys.argv[2])
from ll_reorder import reorder
ld = lambda n: np.load(os.path.join(d, n + ".npy"))
cnt, rng, src, x = ld("packed_recv_count"), ld("packed_recv_layout_range"), ld("packed_recv_src_info"), ld("packed_recv_x")
reorder(cnt, rng, src, [x])
for name, a in (("packed_recv_layout_range", rng), ("packed_recv_src_info", src), ("packed_recv_x", x)):
    np.save(os.path.join(d, name + ".npy"), a)
PY
run "ll_reordered_exact_fails" 1 60 verify low-latency "$tmp/o$i"
run "ll_reordered_any_passes" 0 60 verify low-latency "$tmp/o$i" --ll-order any
python3 -c "
import numpy as np
a = np.load('$tmp/o$i/rank1/packed_recv_x.npy'); a[0, 0, 3] ^= 1; np.save('$tmp/o$i/rank1/packed_recv_x.npy', a)"
run "ll_reordered_corrupt_any_fails" 1 60 verify low-latency "$tmp/o$i" --ll-order any
expect "ll_corrupt_named" "first: rank 1: packed_recv_x\[0\]"
run "ll_order_on_normal_refused" 2 10 verify intranode "$tmp/g1" --ll-order any

# a corrupted golden byte is caught and named
cp -r "$tmp/g1" "$tmp/c1"
python3 -c "
import numpy as np
a = np.load('$tmp/c1/rank2/combined_x.npy'); a[7, 9] ^= 1; np.save('$tmp/c1/rank2/combined_x.npy', a)"
run "corrupt_byte_exit_1" 1 60 verify intranode "$tmp/c1"
expect "corrupt_byte_named" "first: rank 2: combined_x\[7\]\[9\]"
# an input changed: named, and the outputs it feeds no longer match
cp -r "$tmp/g1" "$tmp/c2"
python3 -c "
import numpy as np
a = np.load('$tmp/c2/rank0/topk_weights.npy'); a[0, 0] *= 2; np.save('$tmp/c2/rank0/topk_weights.npy', a)"
run "changed_input_exit_1" 1 60 verify intranode "$tmp/c2"
expect "changed_input_named" "^# inputs: 1 file differ .*rank0/topk_weights.npy"

# verify computes from the directory's inputs, not from the seed: another
# seed's golden under the first one's manifest still passes
run "golden_seed_7" 0 60 golden intranode -r 3 -t 64 --hidden 256 -e 12 -k 3 --bias 2 --seed 7 --out "$tmp/s7"
cp "$tmp/g1/manifest.json" "$tmp/s7/manifest.json"
run "verify_other_inputs" 0 60 verify intranode "$tmp/s7"
expect "other_inputs_named_not_failed" "^# inputs: [0-9]+ files differ"

# the adapter with the fake library: faithful passes, a permuted row fails, a dropped output is not checked
run "golden_adapter" 0 60 golden intranode -r 3 -t 64 --hidden 256 -e 12 -k 3 --out "$tmp/a"
adapter() { EP_FAKE_GOLDEN="$tmp/a" python3 "$root/scripts/adapters/deepep_v1.py" "$tmp/a" \
	--library "$root/tests/fake_ep_library.py" --all-ranks >"$tmp/out" 2>&1; }
adapter && ok "adapter_faithful" || bad "adapter_faithful" "adapter failed"
run "verify_adapter_faithful" 0 60 verify intranode "$tmp/a"
EP_FAKE_PERMUTE=1 adapter && ok "adapter_permuted" || bad "adapter_permuted" "adapter failed"
run "verify_catches_permuted_row" 1 60 verify intranode "$tmp/a"
expect "permuted_row_named" "first: rank 1: recv_x\[0\]"
rm -f "$tmp/a/rank0/combined_topk_weights.npy" "$tmp/a/rank1/combined_topk_weights.npy" "$tmp/a/rank2/combined_topk_weights.npy"
run "verify_still_fails_without_one_output" 1 60 verify intranode "$tmp/a"
expect "absent_output_not_checked" "^# not checked \(absent\): combined_topk_weights"

# bad input: one line, exit 2
run "no_manifest" 2 10 verify intranode "$tmp"
expect "no_manifest_named" "manifest"
run "other_subcommand" 2 10 verify internode "$tmp/g1"
cp -r "$tmp/g1" "$tmp/b1"
python3 -c "
import numpy as np
np.save('$tmp/b1/rank1/recv_x.npy', np.load('$tmp/b1/rank1/recv_x.npy').astype(np.int32))"
run "wrong_dtype" 2 10 verify intranode "$tmp/b1"
expect "wrong_dtype_named" "rank1/recv_x.npy is <i4 .*expected <u2"
head -c 90 "$tmp/g1/rank0/x.npy" >"$tmp/b1/rank0/x.npy"
run "truncated_npy" 2 10 verify intranode "$tmp/b1"
printf 'not numpy at all' >"$tmp/b1/rank0/x.npy"
run "not_npy" 2 10 verify intranode "$tmp/b1"
cp -r "$tmp/g1" "$tmp/b2"
python3 -c "
import numpy as np
a = np.load('$tmp/b2/rank0/topk_idx.npy'); a[1, 1] = 99; np.save('$tmp/b2/rank0/topk_idx.npy', a)"
run "expert_id_out_of_range" 2 10 verify intranode "$tmp/b2"
expect "expert_id_named" "topk_idx.npy has 99 at \[1\]\[1\]"
printf '{"schema": "epbench-golden/1"}' >"$tmp/b2/manifest.json"
run "malformed_manifest" 2 10 verify intranode "$tmp/b2"
run "golden_sweep_refused" 2 10 golden intranode -r 2,4 --out "$tmp/x"
run "golden_existing_dir_refused" 2 10 golden intranode -r 2 -t 8 --out "$tmp/g1"
# redundant experts: the router's logical ids and the placement beside the physical topk_idx
run "golden_placement" 0 60 golden intranode -r 4 -t 16 --hidden 256 -e 16 -k 4 --redundant-experts 4 --eplb-load zipf:1.2 --uneven-tokens 1 --out "$tmp/gp"
python3 - "$tmp/gp" >"$tmp/out" 2>&1 <<'PY' && ok "golden_placement_maps_physical_to_logical" || bad "golden_placement_maps_physical_to_logical" "$(cat "$tmp/out")"
import json, struct, sys
d = sys.argv[1]
def load(path, fmt, size):  # a .npy file's values (format 1.0)
    b = open(path, "rb").read()
    data = b[10 + struct.unpack("<H", b[8:10])[0]:]
    return struct.unpack("<%d%s" % (len(data) // size, fmt), data)
p2l = load(f"{d}/rank0/phy2log.npy", "i", 4)
assert len(p2l) == 20 and sorted(set(p2l)) == list(range(16)), p2l
for r in range(4):
    lg, ph = load(f"{d}/rank{r}/topk_idx_logical.npy", "q", 8), load(f"{d}/rank{r}/topk_idx.npy", "q", 8)
    assert len(lg) == len(ph), (r, len(lg), len(ph))
    assert all(p2l[p] == l for l, p in zip(lg, ph) if l >= 0), r
roles = {t["name"]: t["role"] for t in json.load(open(f"{d}/manifest.json"))["tensors"] if t["rank"] == 1}
assert all(roles[n] == "input" for n in ("topk_idx_logical", "phy2log", "logcnt", "log2phy")), roles
PY
run "verify_placement" 0 60 verify intranode "$tmp/gp"
run "golden_missing_parent" 2 10 golden intranode -r 2 -t 8 --out "$tmp/no/such/dir"
run "golden_needs_out" 2 10 golden intranode -r 2
run "golden_too_big_exit_3" 3 30 golden intranode -r 8 -t 16777216 --hidden 7168 -k 8 -e 256 --out "$tmp/big"
[ ! -e "$tmp/big" ] && [ ! -e "$tmp/big.partial" ] && ok "nothing_half_written" || bad "nothing_half_written" "left a folder"
finish golden_test.sh
