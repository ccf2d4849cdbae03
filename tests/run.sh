#!/bin/sh
# run.sh - run the test binaries given as arguments and tests/*_test.sh,
# each under a deadline, EP_TEST_JOBS at a time (default: the cores, at most
# 4), and add their closing lines into one:
#   N passed, N failed, N skipped
# A binary or script that dies without its closing line counts as one failure.
# A script whose header has the line "# run.sh: alone (WHY)" runs with
# nothing else beside it (it measures speed, runs Open MPI, or counts what
# the whole machine holds), after the others. Each command's output is
# printed whole when it ends (tests/run-one.sh), so lines never interleave.
set -u
here=$(dirname "$0")
# Validation helpers call python3: prefer Debian's, which has python3-numpy
# (scripts/install-deps.sh), over any other python3 earlier on PATH.
PATH=/usr/bin:$PATH
export PATH
# LeakSanitizer (address builds): leaks inside libraries we do not own are not ours
LSAN_OPTIONS="suppressions=$(cd "$here" && pwd)/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS
jobs=${EP_TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
case "$jobs" in '' | *[!0-9]* | 0) echo "run.sh: EP_TEST_JOBS='$jobs' is not a positive whole number" >&2; exit 2 ;; esac
[ -n "${EP_TEST_JOBS:-}" ] || [ "$jobs" -le 4 ] || jobs=4
res=$(mktemp -d)
worker=""
# stop: on INT or TERM, the running xargs and every command it started
stop() {
	[ -n "$worker" ] && { pkill -TERM -P "$worker"; kill -TERM "$worker"; } 2>/dev/null
	exit "$1"
}
trap 'rm -rf "$res"' EXIT
trap 'stop 130' INT
trap 'stop 143' TERM
: >"$res/pool" && : >"$res/alone" && : >"$res/skips" && : >"$res/lock"
n=0
# add LIST LIMIT COMMAND...: one line for run-one.sh, numbered in the order given
add() {
	list=$1; shift
	n=$((n + 1))
	echo "$1 $(printf '%04d' "$n") $2${3:+ $3}" >>"$res/$list"
}

for t in "$@"; do
	add pool 300 "$t"
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
		echo "SKIP  $(basename "$s"): $why" | tee -a "$res/skips"
		continue
	fi
	if grep -q '^# run.sh: alone' "$s"; then add alone 900 sh "$s"; else add pool 900 sh "$s"; fi
done
# The pool starts with the slowest (tests/seconds.txt, a hint from an earlier
# run; a command it does not know counts as slow), so that no long script
# starts last and runs on alone.
slowest_first() {
	awk 'NR == FNR { s[$2] = $1; next } { k = $3 == "sh" ? $4 : $3; sub(/.*\//, "", k); print (k in s ? s[k] : 999), $0 }' \
		"$here/seconds.txt" - | sort -k1,1nr -k3,3 | cut -d' ' -f2-
}
echo "# run.sh: $(wc -l <"$res/pool") commands $jobs at a time, then $(wc -l <"$res/alone") alone"
# (in the background: a shell runs its traps only between commands, and
# wait is where it waits)
slowest_first <"$res/pool" | xargs -r -P "$jobs" --process-slot-var=EP_TEST_SLOT -L 1 sh "$here/run-one.sh" "$res" &
worker=$!
wait "$worker"
xargs -r -L 1 sh "$here/run-one.sh" "$res" <"$res/alone" &
worker=$!
wait "$worker"
worker=""

# Add up, in the order given: each command's closing line and exit status.
passed=0 failed=0 skipped=$(wc -l <"$res/skips")
for id in $(cat "$res/pool" "$res/alone" | cut -d' ' -f2 | sort); do
	cmd=$(grep -h " $id " "$res/pool" "$res/alone" | cut -d' ' -f3-)
	rc=$(cat "$res/$id.rc" 2>/dev/null || echo none)
	line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$res/$id.out" 2>/dev/null | tail -n 1)
	if [ -z "$line" ]; then
		echo "FAIL  $cmd (exit $rc, no closing line)"
		failed=$((failed + 1))
		continue
	fi
	p=$(echo "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/')
	f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
	s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + ${s:-0}))
	[ "$f" -gt 0 ] && echo "FAIL  $cmd: $f failed"
	if [ "$rc" != 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL  $cmd (exit $rc)"
		failed=$((failed + 1))
	fi
done
cat "$res"/*.sec 2>/dev/null | sort -rn >"$res/seconds"
echo "# seconds each (the slowest 12; a run's wall time is less when EP_TEST_JOBS > 1):"
head -n 12 "$res/seconds" | sed 's/^/#   /'
# EP_TEST_TIMES=FILE: every binary's and script's seconds, slowest first
if [ -n "${EP_TEST_TIMES:-}" ] && ! cp "$res/seconds" "$EP_TEST_TIMES"; then
	echo "run.sh: cannot write EP_TEST_TIMES=$EP_TEST_TIMES" >&2
	failed=$((failed + 1))
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
