#!/bin/sh
# fuzz_test.sh - a smoke run of every fuzz target (tests/fuzz/): `make fuzz` for
# EP_FUZZ_SECONDS (default 10) each. A crash, leak or sanitizer report fails
# the case and keeps the input under build-fuzzer/artifacts/. Skipped, with
# the reason, where clang cannot build libFuzzer targets.
set -u
SUBCOMMAND=intranode
. "$(dirname "$0")/lib.sh"
cd "$lib_here/.."
secs=${EP_FUZZ_SECONDS:-10}
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$tmp/probe.c"
if ! clang -fsanitize=fuzzer,address,undefined -o "$tmp/probe" "$tmp/probe.c" >"$tmp/out" 2>&1; then
	skipped "fuzz_smoke" "clang cannot build libFuzzer targets here ($(head -n 1 "$tmp/out")); scripts/install-deps.sh installs clang and libclang-rt-14-dev"
	finish fuzz_test.sh
	exit $?
fi
make --no-print-directory fuzz FUZZ_SECONDS="$secs" >"$tmp/out" 2>&1
# every target the Makefile builds (one list, there)
for t in $(sed -n 's/^FUZZ_TARGETS := //p' Makefile); do
	line=$(grep "^fuzz $t:" "$tmp/out")
	echo "# $line"
	case "$line" in *"no crash") ok "fuzz_$t" ;; *) bad "fuzz_$t" "${line:-no result line}" ;; esac
done
finish fuzz_test.sh
