#!/bin/sh
# install-deps.sh - install the Debian packages epbench builds and tests with.
# Idempotent: asks apt-get only for what is missing; needs root (or sudo) then.
#   --with-mpi   also Open MPI, for the MPI_Alltoallv peer (scripts/compare-mpi.sh)
#   --with-iperf also iperf3, to measure an emulated link (scripts/netns-cluster.sh --iperf)
set -eu
PKGS="build-essential pkg-config libgsl-dev libnuma-dev libibverbs-dev librdmacm-dev iproute2 procps python3 python3-numpy"
# reading results (Jansson), SHA-256 (Nettle), plots (gnuplot), SVG checks (libxml2-utils)
PKGS="$PKGS libjansson-dev nettle-dev gnuplot-nox libxml2-utils"
# the master address under mpirun / srun --mpi=pmix (PMIx)
PKGS="$PKGS libpmix-dev"
# the fuzz targets (clang's libFuzzer) and the malformed-input test (strace)
PKGS="$PKGS clang libclang-rt-14-dev strace"
for arg in "$@"; do
	case "$arg" in
	--with-mpi) PKGS="$PKGS libopenmpi-dev openmpi-bin" ;;
	--with-iperf) PKGS="$PKGS iperf3" ;;
	*) echo "install-deps: unknown argument '$arg'" >&2; exit 2 ;;
	esac
done
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "# installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing </dev/null
