#!/bin/sh
# perf-timed.sh - run perf over exactly the timed loops of an epbench run.
#   scripts/perf-timed.sh stat  [PERF OPTIONS...] -- ./epbench intranode ...
#   scripts/perf-timed.sh record [PERF OPTIONS...] -- ./epbench intranode ...
# perf starts with its events disabled (-D -1); epbench's rank 0 enables them
# through perf's control FIFOs after the warm-up and check (--perf-ctl) and
# disables them after the last timed iteration. Rank processes are named
# epbench-r<N>, so `perf report --sort comm,sym` splits the profile per rank.
set -eu
mode=${1:-}
case "$mode" in stat|record) shift ;; *) echo "usage: $0 stat|record [perf options] -- epbench ..." >&2; exit 2 ;; esac
opts=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do opts="$opts $1"; shift; done
[ "${1:-}" = "--" ] || { echo "perf-timed: missing '--' before the epbench command" >&2; exit 2; }
shift
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT INT TERM
mkfifo "$dir/ctl" "$dir/ack"
# shellcheck disable=SC2086
perf "$mode" --control "fifo:$dir/ctl,$dir/ack" -D -1 $opts -- "$@" --perf-ctl "$dir/ctl,$dir/ack"
