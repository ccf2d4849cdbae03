/* sync.c - futex-backed flags and barriers with deadlines. */
#include "collectives/sync.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "collectives/error.h"

/* Longest single sleep: bounds how late a deadline is noticed. */
#define EP_SLEEP_SLICE_NS (50 * 1000 * 1000LL)

int64_t ep_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

size_t ep_sync_bytes(int num_ranks)
{
	return sizeof(struct ep_sync) + (size_t)num_ranks * sizeof(struct ep_rank_ctl);
}

void ep_sync_init(struct ep_sync *s, int num_ranks)
{
	memset(s, 0, ep_sync_bytes(num_ranks));
	s->num_ranks = num_ranks;
	for (int r = 0; r < num_ranks; r++) {
		atomic_store(&s->ctl[r].phase, "start");
		atomic_store(&s->ctl[r].waiting_on, -1);
		atomic_store(&s->ctl[r].op, -1);
	}
}

void ep_waiter_init(struct ep_waiter *w, struct ep_sync *s, int rank,
		    double timeout_s, int spin_limit)
{
	w->sync = s;
	w->traffic = NULL;
	w->rank = rank;
	w->timeout_ns = (int64_t)(timeout_s * 1e9);
	if (spin_limit < 0) {
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		spin_limit = s->num_ranks <= cores ? 20000 : 0;
	}
	w->spin_limit = spin_limit;
	w->epoch = 0;
	atomic_store(&s->ctl[rank].pid, (int32_t)getpid());
}

void ep_set_phase(struct ep_waiter *w, const char *phase)
{
	struct ep_rank_ctl *c = &w->sync->ctl[w->rank];
	atomic_store_explicit(&c->phase, phase, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->progress, 1, memory_order_relaxed);
}

void ep_set_step(struct ep_waiter *w, int op, int iter)
{
	struct ep_rank_ctl *c = &w->sync->ctl[w->rank];
	atomic_store_explicit(&c->op, op, memory_order_relaxed);
	atomic_store_explicit(&c->iter, iter, memory_order_relaxed);
}

void ep_sync_view(const struct ep_sync *s, int rank, struct ep_rank_view *v)
{
	const struct ep_rank_ctl *c = &s->ctl[rank];
	v->phase = atomic_load(&c->phase);
	v->waiting_on = atomic_load(&c->waiting_on);
	v->progress = atomic_load(&c->progress);
	v->status = atomic_load(&c->status);
	v->pid = atomic_load(&c->pid);
	v->op = atomic_load(&c->op);
	v->iter = atomic_load(&c->iter);
	v->message = c->message;
}

int ep_waiter_failed(const struct ep_waiter *w)
{
	return atomic_load(&w->sync->ctl[w->rank].status);
}

static void futex_wake_all(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static void futex_wait(_Atomic uint32_t *addr, uint32_t seen, int64_t ns)
{
	struct timespec ts = {.tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL};
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT, seen, &ts, NULL, 0);
}

static void wake_if_waiters(struct ep_flag *f)
{
	if (atomic_load(&f->waiters) != 0)
		futex_wake_all(&f->value);
}

void ep_flag_store(struct ep_flag *f, uint32_t value)
{
	atomic_store(&f->value, value);
	wake_if_waiters(f);
}

void ep_flag_add(struct ep_flag *f, uint32_t delta)
{
	atomic_fetch_add(&f->value, delta);
	wake_if_waiters(f);
}

static inline int reached(uint32_t value, uint32_t target)
{
	return (int32_t)(value - target) >= 0;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

int ep_flag_wait_geq(struct ep_waiter *w, struct ep_flag *f, uint32_t target,
		     int peer)
{
	if (reached(atomic_load_explicit(&f->value, memory_order_acquire), target))
		return 0;
	int64_t start = ep_now_ns();
	for (int i = 0; i < w->spin_limit; i++) {
		cpu_relax();
		if (reached(atomic_load_explicit(&f->value, memory_order_acquire), target)) {
			w->wait_ns += ep_now_ns() - start;
			return 0;
		}
	}
	struct ep_rank_ctl *me = &w->sync->ctl[w->rank];
	atomic_store_explicit(&me->waiting_on, peer, memory_order_relaxed);
	int64_t deadline = ep_now_ns() + w->timeout_ns;
	int rc = 0;
	for (;;) {
		atomic_fetch_add(&f->waiters, 1);
		uint32_t seen = atomic_load(&f->value);
		if (reached(seen, target)) {
			atomic_fetch_sub(&f->waiters, 1);
			break;
		}
		int64_t left = deadline - ep_now_ns();
		if (left <= 0) {
			atomic_fetch_sub(&f->waiters, 1);
			rc = -EP_ETIMEDOUT;
			break;
		}
		futex_wait(&f->value, seen, left < EP_SLEEP_SLICE_NS ? left : EP_SLEEP_SLICE_NS);
		atomic_fetch_sub(&f->waiters, 1);
	}
	if (!rc) /* a wait that timed out keeps naming its peer, for the state block */
		atomic_store_explicit(&me->waiting_on, -1, memory_order_relaxed);
	atomic_fetch_add_explicit(&me->progress, 1, memory_order_relaxed);
	w->wait_ns += ep_now_ns() - start;
	if (rc) {
		const char *peer_phase = peer >= 0 && peer < w->sync->num_ranks
			? atomic_load(&w->sync->ctl[peer].phase) : "?";
		ep_sync_fail(w, rc,
			     "rank %d timed out after %.1f s in phase %s waiting for rank %d (rank %d is in phase %s)",
			     w->rank, (double)w->timeout_ns / 1e9,
			     atomic_load(&me->phase), peer, peer, peer_phase);
	}
	return rc;
}

int ep_barrier(struct ep_waiter *w)
{
	struct ep_sync *s = w->sync;
	uint32_t epoch = ++w->epoch;
	ep_flag_store(&s->ctl[w->rank].arrive, epoch);
	for (int i = 1; i < s->num_ranks; i++) {
		/* Start with the next rank so waits spread over peers. */
		int peer = (w->rank + i) % s->num_ranks;
		int rc = ep_flag_wait_geq(w, &s->ctl[peer].arrive, epoch, peer);
		if (rc)
			return rc;
	}
	return 0;
}

void ep_sync_fail(struct ep_waiter *w, int err, const char *fmt, ...)
{
	struct ep_rank_ctl *me = &w->sync->ctl[w->rank];
	if (atomic_load(&me->status) != 0)
		return; /* keep the first failure */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(me->message, sizeof(me->message), fmt, ap);
	va_end(ap);
	atomic_store(&me->status, err);
}
