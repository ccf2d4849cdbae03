#!/bin/sh
# launchers_test.sh - a 2-node job under Open MPI's mpirun with no variable
# set by hand: nodes and node rank from OMPI_COMM_WORLD_*, the master
# address through PMIx. Ends with "N passed, N failed, N skipped".
# run.sh: alone (Open MPI's mpirun, where installed, keeps segments in /dev/shm that other scripts count)
set -u
SUBCOMMAND=internode
. "$(dirname "$0")/lib.sh"

if ! command -v mpirun >/dev/null; then
	skipped "mpirun_pmix" "needs Open MPI's mpirun (scripts/install-deps.sh --with-mpi)"
	finish launchers_test.sh
	exit $?
fi
# both node processes on this host; nothing of MASTER_*, NNODES or NODE_RANK in their environment
env -u MASTER_ADDR -u MASTER_PORT -u NNODES -u NODE_RANK -u WORLD_SIZE -u RANK timeout -k 5 120 \
	mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 "$EPBENCH" internode --ranks-per-node 2 \
	-t 32 --hidden 256 -e 16 -k 4 -n 2 -w 1 --timeout 30 >"$tmp/out" 2>&1
got=$?
[ "$got" -eq 0 ] && ok "mpirun_pmix_job" || bad "mpirun_pmix_job" "exit $got"
expect "mpirun_nodes_from_ompi" "nodes/rank from OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_RANK"
expect "mpirun_master_from_pmix" "from PMIx \\(node 0 published it\\)"
expect "mpirun_verdict" "^# verdict: PASS"
[ -z "$(live_ranks)" ] && ok "mpirun_no_orphans" || bad "mpirun_no_orphans" "$(live_ranks)"
finish launchers_test.sh
