#!/usr/bin/env bash
# soft-roce.sh - run one command on two emulated nodes joined by Soft-RoCE, as node 0 and node 1.
#
# usage: scripts/soft-roce.sh [--timeout SECS] [--grace SECS] [--out DIR] [--keep] -- COMMAND [ARGS...]
#
# For machines without RDMA hardware or kernel InfiniBand support. Boots two qemu
# guests (software emulation, -smp 1) on Debian's own kernel package; each loads
# rdma_rxe and runs `rdma link add rxe0 type rxe netdev eth0`, so COMMAND sees one
# real verbs device, rxe0, and its peer across a private link. Nothing is
# installed into the host's kernel or boot files.
#
# What COMMAND sees in each guest:
#   - the host's root file system, read-only (9p): the host's own binaries and
#     libraries, this checkout, a freshly built ./epbench;
#   - the working directory this script was called from (read-only, same path,
#     through a share of its own when it lies below /tmp, /run or /dev/shm);
#   - tmpfs on /tmp, /run and /dev/shm, private to the guest (so the host's
#     other files there are not visible);
#   - SOFT_ROCE_OUT: a directory writable by both guests and kept on the host,
#     mounted at the same absolute path as on the host (--out DIR, default a
#     per-run temp dir that is removed at the end unless --keep). Write reports
#     there; anything else on the host is read-only in the guests;
#   - EPBENCH_NODE_RANK and NODE_RANK (0 or 1), NNODES=2,
#     MASTER_ADDR=192.168.77.1 (node 0; node 1 is .2), MASTER_PORT=29500,
#     SOFT_ROCE_DEV=rxe0, SOFT_ROCE_ADDR (this node's address) and
#     SOFT_ROCE_GID_INDEX: the GID table index of this node's IPv4 RoCE v2 GID,
#     found at boot, for `ib_write_bw -x`: 1 on Debian 12's 6.1 kernel, where
#     rxe lists RoCE v2 GIDs only, 0 the link-local IPv6 one, 1 ::ffff:ADDR;
#   - stdin from /dev/null; stdout and stderr go to a second serial port of the
#     guest and come out here on stdout, each line prefixed "[node0] "/"[node1] ".
# The command starts on each node once rxe0 is ACTIVE and the other node answers
# ping over the link, so the two start within about a second of each other.
#
# Exit status: node 0's, or node 1's when node 0 exited 0 (so the first failure
# of the two, node 0 first). When one node fails, the other gets --grace SECS
# (default 30) to end on its own, then it is stopped. Besides the command's own:
#   77  skipped: qemu cannot run here (cannot install it, no TCG, no kernel
#       package to be had, qemu refuses to start); one line "soft-roce: skipped: WHY"
#   124 --timeout SECS (default 600) for the whole run expired
#   125 the harness failed: a guest did not come up, or died without an exit status
#   2   usage
# Harness messages go to stderr, prefixed "soft-roce: ". With --keep the per-run
# directory stays for a look: nodeN.console (guest kernel and init log),
# nodeN.out (command output), nodeN.rc, nodeN.state, nodeN.qemu (qemu's stderr).
#
# Each guest: qemu -accel tcg -cpu max -smp 1 -m 1536 -nodefaults -display none
# -monitor none -nic none (-nographic's display without its stdio serial and
# monitor), Debian's vmlinuz, a busybox-static initramfs built here, three 9p
# shares (/ read-only, the run directory, --out) and one virtio-net NIC on a
# qemu socket netdev: node 0 listens on 127.0.0.1:PORT (a free port picked at
# run time), node 1 connects to it.
#
# Needs root to install missing packages (apt-get) and for qemu's 9p export of /.
# Caches Debian's kernel package, its vmlinuz and the initramfs in
# build/soft-roce/ of this checkout. Every qemu process and temp file it starts is
# gone when it returns, also on failure and Ctrl-C (qemu also dies with this
# script if it is killed with SIGKILL: setpriv --pdeathsig; its run directory is
# then removed by the next run). The guests have no
# network but one qemu socket link between them that listens on 127.0.0.1.
set -u
umask 022

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
cache=$top/build/soft-roce
start=$(date +%s)

PKGS="qemu-system-x86 busybox-static kmod cpio rdma-core ibverbs-utils ibverbs-providers perftest iproute2"
# Kernel modules the guests load, in this order, each after its dependencies
# (resolved with modprobe -D against the package's modules.dep). crc32_generic
# has no symbol link to rdma_rxe but must be there first: rxe allocates
# "crc32" by name and fails with "failed to init crc32 algorithm" without it.
# rdma_ucm gives /dev/infiniband/rdma_cm, which librdmacm (and so epbench's
# verbs transport) needs: without it rdma_create_event_channel fails ENOENT.
MODULES="virtio_pci 9pnet_virtio 9p virtio_net crc32_generic rdma_rxe rdma_ucm"
MEM=1536                  # MiB per guest

say() { echo "soft-roce: $*" >&2; }
skip() { echo "soft-roce: skipped: $*" >&2; exit 77; }
die() { echo "soft-roce: $*" >&2; exit 125; }
usage() {
	echo "usage: scripts/soft-roce.sh [--timeout SECS] [--grace SECS] [--out DIR] [--keep] -- COMMAND [ARGS...]" >&2
	exit 2
}

timeout_s=600 grace_s=30 keep=0 out=""
while [ $# -gt 0 ]; do
	case "$1" in
	--timeout) [ $# -ge 2 ] || usage; timeout_s=$2; shift 2 ;;
	--timeout=*) timeout_s=${1#*=}; shift ;;
	--grace) [ $# -ge 2 ] || usage; grace_s=$2; shift 2 ;;
	--grace=*) grace_s=${1#*=}; shift ;;
	--out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
	--out=*) out=${1#*=}; shift ;;
	--keep) keep=1; shift ;;
	--) shift; break ;;
	-h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "soft-roce: unknown option '$1'" >&2; usage ;;
	esac
done
[ $# -ge 1 ] || usage
case "$timeout_s" in ''|*[!0-9]*) echo "soft-roce: --timeout wants whole seconds, not '$timeout_s'" >&2; exit 2 ;; esac
case "$grace_s" in ''|*[!0-9]*) echo "soft-roce: --grace wants whole seconds, not '$grace_s'" >&2; exit 2 ;; esac
deadline=$((start + timeout_s))
left() { local l=$((deadline - $(date +%s))); [ $l -gt 0 ] && echo $l || echo 1; }   # never 0: timeout 0 waits forever

cwd=$(pwd -P)

# ---- host packages --------------------------------------------------------

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null || skip "missing packages:$missing (and not root to install them)"
		SUDO="sudo -n"
	fi
	say "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086  # $SUDO and $missing are word lists
	timeout "$(left)" $SUDO apt-get update -qq >/dev/null 2>&1
	# shellcheck disable=SC2086
	timeout "$(left)" $SUDO apt-get install -y -qq --no-install-recommends $missing </dev/null >/dev/null 2>&1 ||
		skip "cannot install:$missing (apt-get install failed)"
fi
qemu=$(command -v qemu-system-x86_64) || skip "qemu-system-x86_64 not found after installing qemu-system-x86"
"$qemu" -accel help 2>/dev/null | grep -qx tcg || skip "$qemu has no TCG accelerator"
[ "$(id -u)" -eq 0 ] || skip "needs root (qemu exports / over 9p with security_model=none)"

# ---- per-run directory and cleanup ----------------------------------------

# Run directories left by a harness killed with SIGKILL (its trap never ran):
# each holds the pid of its harness, removed by --keep.
for d in "${TMPDIR:-/tmp}"/soft-roce.??????; do
	[ -f "$d/pid" ] || continue
	p=$(cat "$d/pid" 2>/dev/null)
	grep -qs soft-roce "/proc/$p/cmdline" || rm -rf "$d"
done
RUN=$(mktemp -d "${TMPDIR:-/tmp}/soft-roce.XXXXXX") || die "cannot make a temp dir"
echo $$ >"$RUN/pid"
qpids=()       # qemu per node (index = node)
spids=()       # output streamers
# shellcheck disable=SC2317  # reached through the traps
cleanup() {
	trap - EXIT INT TERM
	local p n
	for p in "${qpids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for n in 1 2 3 4 5 6 7 8 9 10; do
		alive_any "${qpids[@]}" || break
		sleep 0.3
	done
	for p in "${qpids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	for p in "${qpids[@]}" "${spids[@]}"; do wait "$p" 2>/dev/null; done
	if [ "$keep" -eq 1 ]; then
		rm -f "$RUN/pid"
		say "kept $RUN (node*.console: kernel and init log, node*.out: command output)"
	else
		rm -rf "$RUN"
	fi
	rm -rf "${prep:-}"
}
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
alive_any() { local p; for p in "$@"; do alive "$p" && return 0; done; return 1; }
trap cleanup EXIT
trap 'echo "soft-roce: interrupted" >&2; exit 130' INT
trap 'echo "soft-roce: terminated" >&2; exit 143' TERM

if [ -z "$out" ]; then
	out=$RUN/out
	mkdir -p "$out"
else
	mkdir -p "$out" || die "cannot make --out directory '$out'"
	out=$(cd "$out" && pwd -P)
fi
case "$RUN$out" in *[[:space:]]*) die "paths with blanks are not supported: '$RUN', '$out'" ;; esac
# The guests put tmpfs over these, hiding the host's files there: a working
# directory below them (a CI clone in /tmp, say) gets a read-only share of its
# own, mounted at the same path.
cwd_share=""
case "$cwd/" in
"$out"/*) ;;
/tmp/*|/run/*|/dev/shm/*)
	case "$cwd" in *[[:space:]]*) die "paths with blanks are not supported: '$cwd'" ;; esac
	cwd_share=$cwd ;;
esac

# ---- kernel and initramfs (cached) ----------------------------------------

# The guest's PID 1. Reads sr.node, sr.run, sr.out from the kernel command line.
# Its own log goes to ttyS0 (node*.console on the host), the command's output to
# ttyS1; a setup failure is reported on both, then the guest powers off
# without writing node*.rc, which the host reports as a harness failure.
IFS= read -r -d '' INIT <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs dev /dev
exec </dev/null >/dev/ttyS0 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
node="" run="" out="" cwd=""
for w in $(cat /proc/cmdline); do
	case "$w" in
	sr.node=*) node=${w#*=} ;;
	sr.run=*) run=${w#*=} ;;
	sr.out=*) out=${w#*=} ;;
	sr.cwd=*) cwd=${w#*=} ;;
	esac
done
stty -F /dev/ttyS1 115200 raw -echo 2>/dev/null
log() { echo "soft-roce-init[node$node] $(cut -d' ' -f1 /proc/uptime)s: $*"; }
fail() {
	log "setup failed: $*"
	echo "soft-roce: node$node: guest setup failed: $*" >/dev/ttyS1
	sync; reboot -f; sleep 30
}
log "starting"
while read -r m; do
	insmod "/lib/modules/$m.ko" || fail "insmod $m"
done </lib/modules/load-order
addr=192.168.77.$((node + 1))
peer=192.168.77.$((2 - node))
hostname "node$node"
ip link set lo up
n=0
while [ ! -e /sys/class/net/eth0 ]; do
	n=$((n + 1)); [ $n -gt 100 ] && fail "no eth0"; sleep 0.1
done
ip addr add "$addr/24" dev eth0 && ip link set eth0 up || fail "cannot configure eth0"

R=/newroot
mkdir -p $R
o9p=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o $o9p,ro,cache=loose host $R || fail "cannot mount the host root over 9p"
mount -t tmpfs -o mode=1777 tmp $R/tmp && mount -t tmpfs run $R/run &&
mount -t proc proc $R/proc && mount -t sysfs sys $R/sys && mount -t devtmpfs dev $R/dev &&
mkdir -p $R/dev/shm $R/dev/pts && mount -t tmpfs -o mode=1777 shm $R/dev/shm &&
mount -t devpts devpts $R/dev/pts || fail "cannot mount tmpfs/proc/sys/dev in the chroot"
share() { mkdir -p "$R$2" && mount -t 9p -o $o9p "$1" "$R$2" || fail "cannot mount the $1 directory $2"; }
# The working directory's own share (when tmpfs hides it) before the others.
[ -n "$cwd" ] && { mkdir -p "$R$cwd" && mount -t 9p -o $o9p,ro cwd "$R$cwd" || fail "cannot mount the working directory $cwd"; }
# The outer one first when one holds the other (the default --out is in run).
case "$run/" in
"$out"/*) share out "$out"; share run "$run" ;;
*) share run "$run"; share out "$out" ;;
esac
state() { echo "$*" >"$R$run/node$node.state"; }
state "setting up rxe0"

chroot $R /usr/bin/rdma link add rxe0 type rxe netdev eth0 || fail "rdma link add rxe0 type rxe netdev eth0"
port=/sys/class/infiniband/rxe0/ports/1
n=0
until grep -q ACTIVE $port/state 2>/dev/null; do
	n=$((n + 1)); [ $n -gt 100 ] && fail "rxe0 port not ACTIVE: $(cat $port/state)"; sleep 0.1
done
# The IPv4 RoCE v2 GID: ::ffff:a.b.c.d with type "RoCE v2".
want=$(printf '0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x' $(echo "$addr" | tr . ' '))
gid="" n=0
while [ -z "$gid" ]; do
	for i in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
		read -r g <$port/gids/$i
		[ "$g" = "$want" ] || continue
		t=""; read -r t <$port/gid_attrs/types/$i 2>/dev/null
		[ "$t" = "RoCE v2" ] && { gid=$i; break; }
	done
	n=$((n + 1)); [ -z "$gid" ] && [ $n -gt 100 ] && fail "no RoCE v2 GID for $addr on rxe0"
	[ -z "$gid" ] && sleep 0.1
done
log "rxe0 on eth0 $addr/24 ACTIVE, IPv4 RoCE v2 GID index $gid; waiting for $peer"
state "waiting for node$((1 - node)) ($peer) to answer ping"
# No bound here: the host's --timeout bounds the run, and a peer that dies ends it.
until ping -c 1 -W 1 "$peer" >/dev/null 2>&1; do sleep 0.2; done
log "peer $peer up; running the command"
state "running the command"
echo "$(cut -d' ' -f1 /proc/uptime)" >"$R$run/node$node.up"
chroot $R /usr/bin/env -i \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp LANG=C.UTF-8 \
	EPBENCH_NODE_RANK=$node NODE_RANK=$node NNODES=2 MASTER_ADDR=192.168.77.1 MASTER_PORT=29500 \
	SOFT_ROCE_DEV=rxe0 SOFT_ROCE_ADDR=$addr SOFT_ROCE_GID_INDEX=$gid SOFT_ROCE_OUT=$out \
	/bin/bash "$run/cmd" </dev/null >/dev/ttyS1 2>&1
rc=$?
log "command exited $rc"
echo $rc >"$R$run/node$node.rc.tmp" && mv "$R$run/node$node.rc.tmp" "$R$run/node$node.rc"
sync
reboot -f
sleep 30
EOF

prepare_kernel() {
	mkdir -p "$cache" || die "cannot make $cache"
	exec 9>"$cache/.lock"
	flock -w "$(left)" 9 || die "timed out waiting for the lock on $cache"
	local deb pkg
	# shellcheck disable=SC2012  # Debian's file names: no blanks
	deb=$(ls "$cache"/linux-image-*-amd64_*_amd64.deb 2>/dev/null | sort -V | tail -n 1)
	if [ -z "$deb" ]; then
		# linux-image-amd64 names the current ABI package (Debian 12: linux-image-6.1.0-NN-amd64).
		local i
		for i in 1 2; do
			pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
				awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ { print $2; exit }')
			[ -n "$pkg" ] && (cd "$cache" && timeout "$(left)" apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null 2>&1) && break
			pkg=""
			[ "$i" -eq 1 ] && timeout "$(left)" apt-get update -qq >/dev/null 2>&1
		done
		[ -n "$pkg" ] || skip "cannot download Debian's kernel package (linux-image-amd64's dependency) with apt-get download"
		# shellcheck disable=SC2012
		deb=$(ls "$cache"/"$pkg"_*_amd64.deb 2>/dev/null | sort -V | tail -n 1)
		[ -n "$deb" ] || skip "apt-get download $pkg left no .deb in $cache"
	fi
	kver=$(dpkg-deb -f "$deb" Package) && kver=${kver#linux-image-}
	vmlinuz=$cache/vmlinuz-$kver
	initrd=$cache/initramfs-$kver.cpio.gz
	local key
	key=$( { echo "format 1"; basename "$deb"; echo "$MODULES"; echo "$INIT";
		dpkg-query -W -f='${Version}\n' busybox-static; } | sha256sum | cut -d' ' -f1)
	if [ -s "$vmlinuz" ] && [ -s "$initrd" ] && [ "$(cat "$initrd.key" 2>/dev/null)" = "$key" ]; then
		exec 9>&-
		return 0
	fi
	say "building the guest initramfs for $kver in $cache"
	prep=$(mktemp -d "$cache/prep.XXXXXX") || die "cannot make a temp dir in $cache"
	dpkg -x "$deb" "$prep/pkg" || die "dpkg -x $deb failed"
	local mods=$prep/pkg/lib/modules/$kver
	[ -d "$mods" ] || die "$deb has no lib/modules/$kver"
	depmod -b "$prep/pkg" "$kver" || die "depmod -b for $kver failed"
	local fs=$prep/initramfs m line ko name
	mkdir -p "$fs"/bin "$fs"/dev "$fs"/proc "$fs"/sys "$fs"/newroot "$fs"/lib/modules
	cp /bin/busybox "$fs/bin/busybox" || die "no /bin/busybox (busybox-static)"
	mknod "$fs/dev/console" c 5 1 2>/dev/null
	: >"$fs/lib/modules/load-order"
	for m in $MODULES; do
		modprobe -d "$prep/pkg" -S "$kver" -D "$m" >"$prep/deps" 2>&1 || die "modprobe -D $m: $(cat "$prep/deps")"
		while read -r line; do
			case "$line" in
			insmod\ *) ko=${line#insmod }; ko=${ko%% *} ;;
			*) continue ;;   # builtin
			esac
			name=$(basename "$ko"); name=${name%%.ko*}
			grep -qx "$name" "$fs/lib/modules/load-order" && continue
			case "$ko" in
			*.ko) cp "$ko" "$fs/lib/modules/$name.ko" ;;
			*.ko.xz) xz -dc "$ko" >"$fs/lib/modules/$name.ko" ;;
			*.ko.zst) zstd -qdc "$ko" >"$fs/lib/modules/$name.ko" ;;
			*.ko.gz) gzip -dc "$ko" >"$fs/lib/modules/$name.ko" ;;
			*) die "unexpected module file $ko" ;;
			esac || die "cannot copy $ko"
			echo "$name" >>"$fs/lib/modules/load-order"
		done <"$prep/deps"
	done
	printf '%s\n' "$INIT" >"$fs/init" && chmod 755 "$fs/init"
	(cd "$fs" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$prep/initrd" || die "cpio of the initramfs failed"
	cp "$prep/pkg/boot/vmlinuz-$kver" "$prep/vmlinuz" || die "$deb has no boot/vmlinuz-$kver"
	if ! { mv "$prep/vmlinuz" "$vmlinuz" && mv "$prep/initrd" "$initrd" && echo "$key" >"$initrd.key"; }; then
		die "cannot write to $cache"
	fi
	rm -rf "$prep"; prep=""
	exec 9>&-
}
prepare_kernel

# ---- the command ----------------------------------------------------------

# Run in the guest by the host's bash, from the same working directory.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
	echo "cd $(quote "$cwd") || exit 125"
	printf 'exec'
	for a in "$@"; do printf ' %s' "$(quote "$a")"; done
	echo
} >"$RUN/cmd"

# ---- the two guests -------------------------------------------------------

free_port() {
	local i p
	for i in $(seq 100); do
		p=$((20000 + RANDOM % 40000))
		[ -z "$(ss -Htan "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return 0; }
	done
	return 1
}
listening() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

# boot NODE NETDEV: starts qemu for node NODE in the background, sets qpids[NODE]
boot() {
	local n=$1 netdev=$2
	local cwd_args=()
	[ -n "$cwd_share" ] && cwd_args=(-virtfs "local,path=$cwd_share,mount_tag=cwd,security_model=none,readonly=on,multidevs=remap")
	setpriv --pdeathsig KILL -- "$qemu" -name "soft-roce-node$n" \
		-nodefaults -no-user-config -accel tcg -cpu max -smp 1 -m "$MEM" \
		-display none -monitor none -no-reboot -nic none \
		-kernel "$vmlinuz" -initrd "$initrd" \
		-append "console=ttyS0 quiet panic=-1 sr.node=$n sr.run=$RUN sr.out=$out${cwd_share:+ sr.cwd=$cwd_share}" \
		-serial "file:$RUN/node$n.console" -serial "file:$RUN/node$n.out" \
		-virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
		-virtfs "local,path=$RUN,mount_tag=run,security_model=none,multidevs=remap" \
		-virtfs "local,path=$out,mount_tag=out,security_model=none,multidevs=remap" \
		"${cwd_args[@]}" \
		-netdev "socket,id=n0,$netdev" -device "virtio-net-pci,netdev=n0,mac=52:54:00:4d:00:0$((n + 1))" \
		</dev/null >"$RUN/node$n.qemu" 2>&1 &
	qpids[n]=$!
}

# stream NODE: copies node NODE's command output to stdout, prefixed, until its qemu exits
stream() {
	tail -n +1 -s 0.2 --pid="${qpids[$1]}" -f "$RUN/node$1.out" 2>/dev/null | sed -u "s/\r\$//; s/^/[node$1] /" &
	spids+=($!)
}

for _ in 1 2 3; do
	port=$(free_port) || die "no free loopback port"
	: >"$RUN/node0.out"   # exists before tail follows it; qemu truncates, and writes from 0
	boot 0 "listen=127.0.0.1:$port"
	while alive "${qpids[0]}" && ! listening "$port" && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
	listening "$port" && break
	if alive "${qpids[0]}"; then
		say "timeout after ${timeout_s} s: node0's qemu never listened on 127.0.0.1:$port"
		exit 124
	fi
	wait "${qpids[0]}" 2>/dev/null
	grep -qi "in use" "$RUN/node0.qemu" && continue
	skip "qemu does not start a guest here: $(head -n 1 "$RUN/node0.qemu")"
done
listening "$port" || die "qemu could not listen on a loopback port (3 tries)"
stream 0
: >"$RUN/node1.out"
boot 1 "connect=127.0.0.1:$port"
stream 1
say "booting 2 guests ($kver, TCG, link on 127.0.0.1:$port)"

rc=(x x)            # per node: exit status, "" = died without one
what=("" "")        # per node: what it was doing when stopped (its init's state file)
stopped=(0 0)       # per node: stopped by us
failed_at=0         # when the first node failed
up_at=""
verdict=""
while :; do
	now=$(date +%s)
	for n in 0 1; do
		if [ "${rc[$n]}" = x ] && ! alive "${qpids[$n]}"; then
			rc[n]=$(cat "$RUN/node$n.rc" 2>/dev/null)
			if [ "${rc[$n]}" != 0 ] && [ "$failed_at" -eq 0 ]; then failed_at=$now; fi
		fi
	done
	if [ -z "$up_at" ] && [ -e "$RUN/node0.up" ] && [ -e "$RUN/node1.up" ]; then up_at=$now; fi
	[ "${rc[0]}" != x ] && [ "${rc[1]}" != x ] && break
	if [ "$now" -ge "$deadline" ]; then
		verdict=timeout
		break
	fi
	if [ "$failed_at" -ne 0 ] && [ $((now - failed_at)) -ge "$grace_s" ]; then
		verdict=grace
		break
	fi
	sleep 0.5
done
for n in 0 1; do
	if [ "${rc[$n]}" = x ]; then
		stopped[n]=1
		what[n]=$(cat "$RUN/node$n.state" 2>/dev/null || echo "booting: its init has not started yet")
		kill -TERM "${qpids[$n]}" 2>/dev/null
	fi
done
for n in 1 2 3 4 5 6 7 8 9 10; do alive_any "${qpids[@]}" || break; sleep 0.3; done
for p in "${qpids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
for p in "${spids[@]}"; do wait "$p" 2>/dev/null; done

ended="" running=""   # how each node ended, for the closing line
for n in 0 1; do
	if [ "${stopped[$n]}" -eq 1 ]; then running="$running${running:+, }node$n (${what[$n]})"
	elif [ -z "${rc[$n]}" ]; then ended="$ended${ended:+, }node$n ended without an exit status"
	else ended="$ended${ended:+, }node$n exit ${rc[$n]}"; fi
done
total=$(( $(date +%s) - start ))
timing="total ${total} s"
[ -n "$up_at" ] && timing="guests up after $((up_at - start)) s, $timing"
case "$verdict" in
timeout) say "timeout after ${timeout_s} s: ${ended:+$ended; }still running, stopped: $running; host load average $(cut -d' ' -f1-3 /proc/loadavg)" ;;
grace) say "$ended; still running ${grace_s} s later, stopped: $running" ;;
*) say "$ended ($timing)" ;;
esac
for n in 0 1; do
	if [ -z "${rc[$n]}" ] || { [ "$verdict" = timeout ] && [ "${stopped[$n]}" -eq 1 ]; }; then
		[ -s "$RUN/node$n.console" ] || continue
		say "node$n: last lines of its console:"
		tail -n 15 "$RUN/node$n.console" | sed 's/\r$//; s/^/  | /' >&2
		[ -s "$RUN/node$n.qemu" ] && sed 's/^/  | qemu: /' "$RUN/node$n.qemu" >&2
	fi
done

# node 0's failure first, then node 1's; then what the harness saw.
status=0
for n in 0 1; do
	if [ "${stopped[$n]}" -eq 0 ] && [ -n "${rc[$n]}" ] && [ "${rc[$n]}" != 0 ]; then status=${rc[$n]}; break; fi
done
if [ "$status" -eq 0 ]; then
	if [ -z "${rc[0]}" ] || [ -z "${rc[1]}" ]; then status=125
	elif [ "${stopped[0]}" -eq 1 ] || [ "${stopped[1]}" -eq 1 ]; then status=124; fi
fi
exit "$status"
