#!/bin/sh
# golden_ascend_test.sh - epbench golden and verify with --ep-semantics ascend:
# golden equals a run's --dump byte for byte (bf16; int8 with smoothing,
# shared experts, comm-quant, prefix counts); verify passes it, takes
# torch_npu's int32 expert_ids, catches a flipped byte in expand_x (data)
# and in assist_info_for_combine (the handles verdict), says which optional
# tensor it skipped, and refuses another mode's directory with exit 2.
# Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=golden
. "$(dirname "$0")/lib.sh"

# py SCRIPT ARGS...: numpy's python (the one with numpy first on PATH)
py() { python3 - "$@" >"$tmp/out" 2>&1; }


# flip DIR RANK TENSOR INDEX: xor 1 into one element (a flat index)
flip() {
	py "$1/rank$2/$3.npy" "$4" <<'PY'
import numpy as np, sys
p, i = sys.argv[1], int(sys.argv[2])
a = np.load(p)
f = a.reshape(-1).view(np.uint8 if a.dtype.itemsize == 1 else np.uint16 if a.dtype.itemsize == 2 else np.uint32)
f[i] ^= 1
np.save(p, a)
PY
}

A=--ep-semantics
i=0
for args in "-r 3 -t 32 --hidden 256 -e 9 -k 3 --payload special --masked-ratio 0.2 --uneven-tokens 1" \
	"-r 4 -t 32 --hidden 256 -e 12 -k 4 --dtype int8 --smooth-scales --shared-experts 1 --shared-expert-ranks 1 --comm-quant int8 --bias 1 --expert-counts prefix" \
	"-r 4 -t 24 --hidden 128 -e 8 -k 3 --dtype int8 --shared-experts 2 --shared-expert-ranks 2 --routing zipf:1.2"; do
	i=$((i + 1))
	run "golden_$i" 0 60 golden intranode $A ascend $args --out "$tmp/g$i" || continue
	run "dump_$i" 0 60 intranode $A ascend $args -n 1 -w 0 --dump "$tmp/d$i"
	same_tensors "golden_equals_dump_$i" "$tmp/g$i" "$tmp/d$i" all
	run "verify_golden_$i" 0 60 verify intranode "$tmp/g$i" $A ascend
	expect "verify_checked_everything_$i" "^# not checked \(absent\): nothing"
	expect "verify_handles_line_$i" "^# handles: .* 0 wrong elements; data tensors: 0 wrong"
done
grep -q '"ep_semantics": "ascend"' "$tmp/g2/manifest.json" && grep -q '"role": "expert"' "$tmp/g2/manifest.json" &&
	ok "manifest_names_semantics" || bad "manifest_names_semantics" "no ep_semantics or expert role in the manifest"

# torch_npu's expert_ids are int32: taken as they are
cp -r "$tmp/g2" "$tmp/i32"
py "$tmp/i32" <<'PY' && ok "ids_int32_written" || bad "ids_int32_written" "see above"
import numpy as np, glob
for p in glob.glob(__import__("sys").argv[1] + "/rank*/expert_ids.npy"):
    np.save(p, np.load(p).astype(np.int32))
PY
run "verify_ids_int32" 0 60 verify intranode "$tmp/i32" $A ascend
expect "ids_int32_named_changed" "^# inputs: .*expert_ids.npy"

# verify computes from the directory's inputs (each rank's smoothing scales
# too), not from the seed: another seed's golden under this manifest passes
run "golden_seed_7" 0 60 golden intranode $A ascend -r 4 -t 32 --hidden 256 -e 12 -k 4 --dtype int8 --smooth-scales \
	--shared-experts 1 --shared-expert-ranks 1 --comm-quant int8 --bias 1 --expert-counts prefix --seed 7 --out "$tmp/s7"
cp "$tmp/g2/manifest.json" "$tmp/s7/manifest.json"
run "verify_other_inputs" 0 60 verify intranode "$tmp/s7" $A ascend
expect "other_inputs_named_not_failed" "^# inputs: [0-9]+ files differ.*smooth_scales"

# a flipped byte in expand_x: wrong data, named
cp -r "$tmp/g2" "$tmp/c1"
flip "$tmp/c1" 2 expand_x 300
run "expand_x_flip_exit_1" 1 60 verify intranode "$tmp/c1" $A ascend
expect "expand_x_flip_named" "first: rank 2: expand_x\[1\]\[44\]"
expect "expand_x_flip_is_data" "^# handles: .* 0 wrong elements; data tensors: 1 wrong"

# a flipped byte in assist_info_for_combine: a handle, on the handles line
cp -r "$tmp/g2" "$tmp/c2"
flip "$tmp/c2" 1 assist_info_for_combine 4
run "assist_flip_exit_1" 1 60 verify intranode "$tmp/c2" $A ascend
expect "assist_flip_handles_count" "^# handles: .* 1 wrong element; data tensors: 0 wrong"
expect "assist_flip_handles_named" "^# handles: first wrong: rank 1: assist_info_for_combine\[1\]\[1\]"

# an ep_recv_counts entry and a combine output
cp -r "$tmp/g1" "$tmp/c3"
flip "$tmp/c3" 0 ep_recv_counts 1
flip "$tmp/c3" 1 x 17
run "counts_and_x_flip_exit_1" 1 60 verify intranode "$tmp/c3" $A ascend
expect "counts_flip_handles_named" "^# handles: first wrong: rank 0: ep_recv_counts\[0\]\[1\]"
expect "x_flip_is_data" "data tensors: 1 wrong"

# a library that did not write an optional output: skipped and said, still a pass
cp -r "$tmp/g2" "$tmp/m1"
rm -f "$tmp"/m1/rank*/dynamic_scales.npy "$tmp"/m1/rank3/assist_info_for_combine.npy
run "missing_optional_passes" 0 60 verify intranode "$tmp/m1" $A ascend
expect "missing_optional_said" "^# not checked \(absent\): dynamic_scales, assist_info_for_combine$"
# a missing input is not optional
rm -f "$tmp/m1/rank0/smooth_scales.npy"
run "missing_smooth_scales_refused" 2 10 verify intranode "$tmp/m1" $A ascend
expect "missing_smooth_scales_named" "rank0/smooth_scales.npy"

# another mode's directory, or this one without its mode: exit 2
run "golden_deepep" 0 60 golden intranode -r 3 -t 32 --hidden 256 -e 9 -k 3 --out "$tmp/deepep"
run "deepep_dir_as_ascend_refused" 2 10 verify intranode "$tmp/deepep" $A ascend
expect "deepep_dir_named" "golden data of DeepEP's semantics"
run "ascend_dir_as_deepep_refused" 2 10 verify intranode "$tmp/g1"
expect "ascend_dir_named" "add --ep-semantics ascend"
run "ascend_dir_as_low_latency_refused" 2 10 verify low-latency "$tmp/g1" $A ascend
run "bad_semantics_value" 2 10 verify intranode "$tmp/g1" $A nccl

# bad inputs: one line, exit 2
cp -r "$tmp/g1" "$tmp/b1"
py "$tmp/b1/rank0/expert_ids.npy" <<'PY'
import numpy as np, sys
a = np.load(sys.argv[1]); a[2, 0] = a[2, 1] = 5; np.save(sys.argv[1], a)
PY
run "repeated_expert_refused" 2 10 verify intranode "$tmp/b1" $A ascend
expect "repeated_expert_named" "rank0/expert_ids.npy row 2 repeats expert"
cp -r "$tmp/g1" "$tmp/b2"
py "$tmp/b2/rank1/expand_x.npy" <<'PY'
import numpy as np, sys
np.save(sys.argv[1], np.load(sys.argv[1])[:1])
PY
run "short_expand_x_refused" 2 10 verify intranode "$tmp/b2" $A ascend
expect "short_expand_x_named" "rank1/expand_x.npy has 1 entries, fewer than"

# golden refuses what a run refuses (tests/golden_layer_test.sh has Ascend's layers, moe_tp 1 and MoE-TP)
run "golden_fp8_refused" 2 10 golden intranode -r 2 -e 8 $A ascend --dtype fp8 --out "$tmp/x"
run "golden_layer_shared_refused" 2 10 golden intranode -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 -e 16 -k 4 $A ascend \
	--shared-experts 1 --shared-expert-ranks 2 --out "$tmp/x"
expect "golden_layer_shared_named" "shared-expert-ranks 2 leaves no MoE rank of moe_ep 2"
finish golden_ascend_test.sh
