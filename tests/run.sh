#!/bin/sh
# run.sh - run the test binaries given as arguments, then tests/*_test.sh,
# each under a deadline, and add their closing lines into one:
#   N passed, N failed, N skipped
# A binary or script that dies without its closing line counts as one failure.
set -u
here=$(dirname "$0")
# Validation helpers call python3: prefer Debian's, which has python3-numpy
# (scripts/install-deps.sh), over any other python3 earlier on PATH.
PATH=/usr/bin:$PATH
export PATH
# LeakSanitizer (address builds): leaks inside libraries we do not own are not ours
LSAN_OPTIONS="suppressions=$(cd "$here" && pwd)/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS
passed=0 failed=0 skipped=0
tmp=$(mktemp)
times=$(mktemp)
trap 'rm -f "$tmp" "$times"' EXIT INT TERM

run_one() {
	# $1: deadline in seconds, rest: the command
	limit=$1; shift
	t0=$(date +%s)
	timeout -k 5 "$limit" "$@" >"$tmp" 2>&1
	rc=$?
	cat "$tmp"
	# seconds per binary or script, for CI's budget (tail of the run: slowest first)
	echo "$(($(date +%s) - t0)) $*" >>"$times"
	line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$tmp" | tail -n 1)
	if [ -z "$line" ]; then
		echo "FAIL  $* (exit $rc, no closing line)"
		failed=$((failed + 1))
		return
	fi
	p=$(echo "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/')
	f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
	s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + ${s:-0}))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL  $* (exit $rc)"
		failed=$((failed + 1))
	fi
}

for t in "$@"; do
	run_one 300 "$t"
done
# EP_TEST_SCRIPTS: the scripts to run instead of every tests/*_test.sh;
# EP_TEST_LATER: script names this run leaves to a later step of the same
# job (.ci/run runs soft_roce_test.sh under the sanitizers); EP_TEST_LONG:
# names left to `make test-long` (CI's budget: its fuzzing covers
# fuzz_test.sh's smoke run and more). Both are counted skipped, with why.
for s in ${EP_TEST_SCRIPTS:-"$here"/*_test.sh}; do
	[ -e "$s" ] || continue
	why=""
	case " ${EP_TEST_LATER:-} " in *" $(basename "$s") "*) why="runs in a later step of this job (EP_TEST_LATER)" ;; esac
	case " ${EP_TEST_LONG:-} " in *" $(basename "$s") "*) why="left to make test-long (EP_TEST_LONG)" ;; esac
	if [ -n "$why" ]; then
		echo "SKIP  $(basename "$s"): $why"
		skipped=$((skipped + 1))
		continue
	fi
	run_one 900 sh "$s"
done
echo "# seconds each (the slowest 12):"
sort -rn "$times" | head -n 12 | sed 's/^/#   /'
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
