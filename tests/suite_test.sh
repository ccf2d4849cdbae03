#!/bin/sh
# suite_test.sh - epbench suite: cases/ci.suite with JUnit (checked against
# tests/junit.xsd with xmllint), TAP and JSON; suites whose cases fail, miss
# their expectation, blame the wrong rank or run past their deadline; bad
# suite files refused before anything runs. Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=suite
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
out=${EP_BUILD:-build}
mkdir -p "$out"

# valid NAME XML: the file validates against tests/junit.xsd
valid() {
	if ! command -v xmllint >/dev/null; then skipped "$1" "xmllint missing (scripts/install-deps.sh installs libxml2-utils)"; return; fi
	xmllint --noout --schema "$here/junit.xsd" "$2" >"$tmp/out" 2>&1 && ok "$1" || bad "$1" "$2 does not validate"
}
small="-r 2 -t 32 --hidden 256 -e 8 -k 2 -n 2 -w 1"

# the shipped CI suite, as CI runs it; its reports under build/
run "ci_suite" 0 600 suite cases/ci.suite --junit "$out/ci-suite.xml" --tap "$out/ci-suite.tap" --json "$out/ci-suite.json"
expect "ci_suite_summary" "^# suite cases/ci.suite: [0-9]+ passed, 0 failed, 0 not run"
valid "ci_suite_junit_validates" "$out/ci-suite.xml"
python3 - "$out" <<'PY' && ok "ci_suite_tap_json" || bad "ci_suite_tap_json" "see above"
import json, os, re, sys
d = sys.argv[1]
tap = open(d + "/ci-suite.tap").read().splitlines()
assert tap[0] == "TAP version 13", tap[0]
n = int(re.match(r"1\.\.(\d+)$", tap[1]).group(1))
assert sum(l.startswith("ok ") for l in tap) == n and not any(l.startswith("not ok") for l in tap)
s = json.load(open(d + "/ci-suite.json"))
assert s["exit_code"] == 0 and s["cases"] == n == len(s["results"]) and s["passed"] == n
for c in s["results"]:
    assert c["passed"] and os.path.exists(os.path.join(d, c["result"])), c
    r = json.load(open(os.path.join(d, c["result"])))
    assert r["schema"] == "epbench/2" and r["points"], c["name"]
assert sum(c["expect"] != 0 for c in s["results"]) >= 3   # the self-tests are in it
PY

# a suite whose cases fail: each reported; the status is the most severe
# (collectives/error.h: wrong data 1 before a dead rank 4)
cat >"$tmp/f.suite" <<EOS
# cases that fail in different ways
good          intranode $small
corrupt       intranode $small --fault corrupt:1
missed        intranode $small expect=1
dead          intranode $small --fault die:1
caught        intranode $small --fault corrupt:1 expect=1 blame=rank1:recv_x
blamed_wrong  intranode $small --fault corrupt:1 expect=1 blame=rank0
EOS
run "failing_suite_exit_1" 1 120 suite "$tmp/f.suite" --junit "$tmp/f.xml" --tap "$tmp/f.tap" --json "$tmp/f.json"
expect "failing_suite_lines" "^FAIL corrupt +WRONG DATA .*recv_x"
expect "missed_expectation_line" "^FAIL missed .*exit 0, want 1"
expect "wrong_blame_line" "^FAIL blamed_wrong .*names rank 0"
expect "caught_passes" "^ok   caught +expected failure"
expect "failing_suite_summary" "2 passed, 4 failed, 0 not run"
valid "failing_junit_validates" "$tmp/f.xml"
python3 - "$tmp" <<'PY' && ok "junit_failures_tap_not_ok" || bad "junit_failures_tap_not_ok" "see above"
import sys, xml.etree.ElementTree as ET
d = sys.argv[1]
s = ET.parse(d + "/f.xml").getroot()
assert s.tag == "testsuite" and s.get("tests") == "6" and s.get("failures") == "4", s.attrib
fails = {c.get("name"): c.find("failure") for c in s.findall("testcase")}
assert fails["good"] is None and fails["caught"] is None
assert "recv_x" in fails["corrupt"].get("message") and "WRONG DATA" in fails["corrupt"].get("type")
assert "killed" in fails["dead"].get("message"), fails["dead"].attrib
out = s.find("testcase/system-out").text
assert "# verdict: PASS" in out
tap = open(d + "/f.tap").read()
assert tap.count("\nnot ok ") == 4 and "not ok 2 - corrupt" in tap
PY
printf 'only_missed intranode %s expect=1\n' "$small" >"$tmp/m.suite"
run "missed_expectation_exit_1" 1 60 suite "$tmp/m.suite"
printf 'ok1 intranode %s\ndead intranode %s --fault die:0\n' "$small" "$small" >"$tmp/d.suite"
run "dead_rank_suite_exit_4" 4 60 suite "$tmp/d.suite"

# a case past its deadline is stopped with its ranks; the suite goes on
printf 'stuck intranode %s --fault hang:1 --timeout 120 timeout=2\nafter intranode %s\n' "$small" "$small" >"$tmp/t.suite"
run "case_deadline_exit_4" 4 60 suite "$tmp/t.suite" --junit "$tmp/t.xml"
expect "case_deadline_named" "^FAIL stuck .*deadline of 2 s"
expect "suite_goes_on_after_deadline" "^ok   after"
[ -z "$(live_ranks)" ] && ok "no_orphans_after_deadline" || bad "no_orphans_after_deadline" "$(live_ranks)"

# include, --filter, --list
printf 'include f.suite\nextra intranode %s\n' "$small" >"$tmp/i.suite"
run "include_list" 0 10 suite "$tmp/i.suite" --list
expect "include_list_has_both" "^blamed_wrong .*expect=1"
run "filter" 0 60 suite "$tmp/i.suite" --filter 'g*'
expect "filter_runs_one" "1 passed, 0 failed"

# bad suites: one line naming file and line, exit 2, nothing run
bad_suite() {
	name=$1 pattern=$2; shift 2
	printf "$@" >"$tmp/b.suite"
	run "$name" 2 10 suite "$tmp/b.suite" --json "$tmp/b.json" && expect "${name}_says" "$pattern"
	[ ! -e "$tmp/b.json.d" ] && ok "${name}_nothing_run" || bad "${name}_nothing_run" "results folder made"
}
bad_suite "unknown_subcommand" "b.suite:2: case y: 'intranod' is not a subcommand" "x intranode -r 2\ny intranod -r 2\n"
bad_suite "unknown_option" "b.suite:1: case x: .*--bogus" "x intranode -r 2 --bogus 3\n"
bad_suite "bad_shape" "b.suite:1: case x: .*ue8m0" "x low-latency -r 2 --hidden 256 --dtype fp8 --round-scale --ue8m0\n"
bad_suite "duplicate_name" "b.suite:2: .*x" "x intranode -r 2\nx intranode -r 2\n"
bad_suite "unknown_key" "b.suite:1: unknown key" "x intranode -r 2 wish=1\n"
bad_suite "bad_expect" "b.suite:1: .*expect=0..5" "x intranode -r 2 expect=9\n"
bad_suite "bad_blame" "b.suite:1: .*blame=rankN" "x intranode -r 2 expect=1 blame=node1\n"
bad_suite "blame_without_failure" "b.suite:1: .*needs the failure" "x intranode -r 2 blame=rank1\n"
bad_suite "include_loop" "loop" "include b.suite\n"
bad_suite "include_missing" "b.suite:1: .*nothere.suite" "include nothere.suite\n"
bad_suite "no_subcommand" "b.suite:1" "lonely\n"
bad_suite "not_a_runner" "b.suite:1: .*'compare' is not" "x compare a.json b.json\n"
run "missing_suite_file" 2 10 suite "$tmp/none.suite"
run "unwritable_junit" 2 10 suite "$tmp/i.suite" --junit /nonexistent/dir/j.xml
run "bad_case_timeout" 2 10 suite "$tmp/i.suite" --case-timeout 0
run "suite_help" 0 10 suite --help
# blame=link must fire when a stuck rank, not a link, is the culprit
cat >"$tmp/l.suite" <<'SUITE'
rank_not_link internode --local-nodes --nodes 2 --ranks-per-node 1 -t 16 --hidden 256 -e 8 -k 2 -n 4 -w 0 --fault stall:1@2 --timeout 3 expect=4 blame=link
SUITE
run "blame_link_on_a_rank_fails" 4 60 suite "$tmp/l.suite"
expect "blame_link_said" "exit 4 as expected, but no '# point' line blames a link"
finish suite_test.sh
