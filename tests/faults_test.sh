#!/bin/sh
# faults_test.sh - cases/faults.suite: every --fault kind must end in its
# verdict and name its place (rank, tensor, phase); and the suite itself must
# fail when a fault is expected but the run passes. Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=suite
. "$(dirname "$0")/lib.sh"
root=$(cd "$lib_here/.." && pwd)
cd "$root" || exit 1

run "faults_suite" 0 300 suite cases/faults.suite --junit "$tmp/f.xml"
n=$(grep -c "^ok " "$tmp/out")
kinds=$(sed -n 's/^[a-z_0-9]* *[a-z-]* .*--fault \([a-z]*\):.*/\1/p' cases/faults.suite | sort -u | tr '\n' ' ')
[ "$n" -ge 30 ] && ok "faults_suite_cases ($n)" || bad "faults_suite_cases" "only $n cases ok"
for k in corrupt bitflip permute drop stale die hang stall slow delay noclean; do
	case " $kinds " in *" $k "*) ok "kind_$k" ;; *) bad "kind_$k" "no case in cases/faults.suite" ;; esac
done
# a fault blamed on the wrong tensor, and a fault that does not fire: the suite must fail
printf 'wrong_blame intranode -r 2 -t 32 --hidden 256 -e 8 -k 2 -n 1 -w 0 --fault bitflip:1:recv_x expect=1 blame=rank1:recv_topk_idx\n' >"$tmp/bad.suite"
printf 'wrong_rank intranode -r 2 -t 32 --hidden 256 -e 8 -k 2 -n 1 -w 0 --fault permute:1 expect=1 blame=rank0:recv_x\n' >>"$tmp/bad.suite"
printf 'no_fault intranode -r 2 -t 32 --hidden 256 -e 8 -k 2 -n 1 -w 0 expect=1 blame=rank1:recv_x\n' >>"$tmp/bad.suite"
run "misplaced_blames_fail" 1 60 suite "$tmp/bad.suite"
expect "three_cases_failed" "0 passed, 3 failed"
finish faults_test.sh
