/* shm.c - the transport over one shared mapping: ranks of one host, puts are memcpy.
 *
 * A fabric is a MAP_SHARED | MAP_ANONYMOUS mapping made before fork: a
 * header (per rank: pid, connected flag, region table, signal counters) and
 * one slice of memory per rank from which that rank allocates the regions it
 * registers, so every peer can address them. put copies straight into the
 * peer's region; signal adds to a counter in the fabric and wakes futex
 * sleepers; wait sleeps on it in slices and notices a peer whose process is
 * gone. It is the reference backend for the transport contract (the tests
 * run the same cases over shm and tcp); the collectives' intranode hop uses
 * its node arena directly, as collectives/intranode.c does.
 */
#define _GNU_SOURCE
#include "collectives/transport/transport.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "collectives/error.h"
#include "collectives/sync.h"

struct shm_rank {
	_Atomic int32_t pid;
	_Atomic int32_t connected;
	_Atomic int32_t closed;
	_Atomic uint64_t used;                        /* bytes allocated from the slice */
	uint64_t region_off[EP_TRANSPORT_MAX_REGIONS]; /* from the slice start */
	uint64_t region_len[EP_TRANSPORT_MAX_REGIONS];
} __attribute__((aligned(64)));

struct shm_fabric {
	int num_ranks;
	size_t bytes_per_rank;
	size_t total;
	size_t slices;          /* offset of rank 0's slice */
	size_t signals;         /* offset of the [R][R] counters: [receiver][sender] */
	struct shm_rank ranks[];
};

static size_t page_up(size_t v)
{
	return (v + 4095) / 4096 * 4096;
}

void *ep_shm_fabric_create(int num_ranks, size_t bytes_per_rank)
{
	size_t head = page_up(sizeof(struct shm_fabric) + (size_t)num_ranks * sizeof(struct shm_rank));
	size_t sig = page_up((size_t)num_ranks * (size_t)num_ranks * sizeof(uint32_t));
	size_t per = page_up(bytes_per_rank);
	size_t total = head + sig + (size_t)num_ranks * per;
	struct shm_fabric *f = mmap(NULL, total, PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (f == MAP_FAILED)
		return NULL;
	f->num_ranks = num_ranks;
	f->bytes_per_rank = per;
	f->total = total;
	f->signals = head;
	f->slices = head + sig;
	return f;
}

void ep_shm_fabric_destroy(void *fabric)
{
	struct shm_fabric *f = fabric;
	if (f)
		munmap(f, f->total);
}

static char *slice(struct shm_fabric *f, int rank)
{
	return (char *)f + f->slices + (size_t)rank * f->bytes_per_rank;
}

static _Atomic uint32_t *counter(struct shm_fabric *f, int receiver, int sender)
{
	return (_Atomic uint32_t *)((char *)f + f->signals) + (size_t)receiver * f->num_ranks + sender;
}

void *ep_shm_fabric_alloc(void *fabric, int rank, size_t len)
{
	struct shm_fabric *f = fabric;
	if (!f || rank < 0 || rank >= f->num_ranks)
		return NULL;
	uint64_t off = atomic_fetch_add(&f->ranks[rank].used, (len + 63) / 64 * 64);
	if (off + len > f->bytes_per_rank)
		return NULL;
	return slice(f, rank) + off;
}


static int alive(struct shm_fabric *f, int rank)
{
	int32_t pid = atomic_load(&f->ranks[rank].pid);
	return pid <= 0 || kill(pid, 0) == 0 || errno != ESRCH;
}

static int shm_probe(const struct ep_transport_cfg *cfg, char *why, size_t len)
{
	if (cfg->shm_fabric)
		return 0;
	if (why && len)
		strncpy(why, "shm needs a fabric mapped before fork (single host only)", len - 1);
	return -EP_ENODEV;
}

static int shm_init(struct ep_transport *t, struct ep_transport_addr *self)
{
	struct shm_fabric *f = t->cfg.shm_fabric;
	if (!f || t->cfg.rank < 0 || t->cfg.rank >= f->num_ranks)
		return ep_transport_fail(t, -EP_ENODEV, "shm: no fabric for rank %d", t->cfg.rank);
	t->priv = f;
	atomic_store(&f->ranks[t->cfg.rank].pid, (int32_t)getpid());
	memset(self, 0, sizeof(*self));
	memcpy(self->bytes, &t->cfg.rank, sizeof(int));
	return 0;
}

static int shm_reg_mem(struct ep_transport *t, int region, void *addr, size_t len)
{
	struct shm_fabric *f = t->priv;
	char *base = slice(f, t->cfg.rank);
	if (region < 0 || region >= EP_TRANSPORT_MAX_REGIONS || (char *)addr < base ||
	    (char *)addr + len > base + f->bytes_per_rank)
		return ep_transport_fail(t, -EINVAL,
					 "shm: region %d must be allocated with ep_shm_fabric_alloc", region);
	f->ranks[t->cfg.rank].region_off[region] = (uint64_t)((char *)addr - base);
	f->ranks[t->cfg.rank].region_len[region] = len;
	return 0;
}

static int shm_connect(struct ep_transport *t, const int *peers, int npeers,
		       const struct ep_transport_addr *addrs)
{
	struct shm_fabric *f = t->priv;
	(void)addrs;
	atomic_store(&f->ranks[t->cfg.rank].connected, 1);
	int64_t deadline = ep_now_ns() + (int64_t)(t->cfg.timeout_s * 1e9);
	for (int i = 0; i < npeers; i++) {
		while (!atomic_load(&f->ranks[peers[i]].connected)) {
			if (ep_now_ns() > deadline)
				return ep_transport_fail(t, -EP_ETIMEDOUT,
							 "shm: rank %d never connected", peers[i]);
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
	}
	return 0;
}

static int shm_put(struct ep_transport *t, int peer, const void *src, int region, size_t off,
		   size_t len)
{
	struct shm_fabric *f = t->priv;
	if (peer < 0 || peer >= f->num_ranks || region < 0 || region >= EP_TRANSPORT_MAX_REGIONS ||
	    off + len > f->ranks[peer].region_len[region])
		return ep_transport_fail(t, -EINVAL, "shm: put of %zu bytes at %zu outside region %d of rank %d",
					 len, off, region, peer);
	memcpy(slice(f, peer) + f->ranks[peer].region_off[region] + off, src, len);
	return 0;
}

static int shm_signal(struct ep_transport *t, int peer)
{
	struct shm_fabric *f = t->priv;
	_Atomic uint32_t *c = counter(f, peer, t->cfg.rank);
	atomic_fetch_add(c, 1); /* seq_cst: orders the memcpy of earlier puts before it */
	syscall(SYS_futex, (uint32_t *)c, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	return 0;
}

static int shm_test(struct ep_transport *t, int peer, uint32_t target)
{
	struct shm_fabric *f = t->priv;
	return (int32_t)(atomic_load(counter(f, t->cfg.rank, peer)) - target) >= 0;
}

static int shm_wait(struct ep_transport *t, int peer, uint32_t target)
{
	struct shm_fabric *f = t->priv;
	_Atomic uint32_t *c = counter(f, t->cfg.rank, peer);
	int64_t deadline = ep_now_ns() + (int64_t)(t->cfg.timeout_s * 1e9);
	char name[64];
	for (;;) {
		uint32_t seen = atomic_load(c);
		if ((int32_t)(seen - target) >= 0)
			return 0;
		if (!alive(f, peer) || atomic_load(&f->ranks[peer].closed)) {
			ep_transport_peer_name(t, peer, name, sizeof(name));
			return ep_transport_fail(t, -EP_EPEERDIED, "shm: %s is gone (had %u of %u signals)",
						 name, seen, target);
		}
		int64_t left = deadline - ep_now_ns();
		if (left <= 0) {
			ep_transport_peer_name(t, peer, name, sizeof(name));
			return ep_transport_fail(t, -EP_ETIMEDOUT,
						 "shm: no signal from %s for %.1f s (had %u of %u)", name,
						 t->cfg.timeout_s, seen, target);
		}
		struct timespec ts = {0, left < 50000000 ? left : 50000000};
		syscall(SYS_futex, (uint32_t *)c, FUTEX_WAIT, seen, &ts, NULL, 0);
	}
}

static void shm_fini(struct ep_transport *t)
{
	struct shm_fabric *f = t->priv;
	if (f)
		atomic_store(&f->ranks[t->cfg.rank].closed, 1);
	t->priv = NULL;
}

const struct ep_transport_ops ep_transport_shm = {
	.name = "shm",
	.probe = shm_probe,
	.init = shm_init,
	.reg_mem = shm_reg_mem,
	.connect = shm_connect,
	.put = shm_put,
	.signal = shm_signal,
	.wait = shm_wait,
	.test = shm_test,
	.fini = shm_fini,
};
