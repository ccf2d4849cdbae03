#!/bin/sh
# run-fuzz.sh SECONDS TARGET... - runs each libFuzzer target (built by `make fuzz`)
# for SECONDS from a copy of its seed corpus in tests/fuzz/corpus/TARGET, and
# prints one line per target: executions, executions per second, corpus size.
# A crash, leak or sanitizer report fails it; the input is kept under
# build-fuzzer/artifacts/ and named in the output.
set -u
cd "$(dirname "$0")/.."
secs=$1; shift
status=0
mkdir -p build-fuzzer/artifacts
for t in "$@"; do
	corpus=build-fuzzer/corpus/$t
	mkdir -p "$corpus"
	cp tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null
	log=build-fuzzer/fuzz_$t.log
	build-fuzzer/tests/fuzz/fuzz_"$t" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix=build-fuzzer/artifacts/"$t"- "$corpus" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	files=$(ls "$corpus" | wc -l)
	if [ "$rc" -eq 0 ]; then
		echo "fuzz $t: ${runs:-?} executions in $secs s (${rate:-?}/s), corpus $files inputs: no crash"
	else
		echo "fuzz $t: FAILED (exit $rc): $(ls build-fuzzer/artifacts/"$t"-* 2>/dev/null | head -n 1)"
		grep -E "ERROR|SUMMARY|runtime error" "$log" | head -n 5
		status=1
	fi
done
exit $status
