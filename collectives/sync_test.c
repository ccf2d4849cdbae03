/* sync_test.c - barriers and flags across forked processes, with deadlines. */
#include "collectives/sync.h"

#include <sys/mman.h>

#include "collectives/error.h"
#include "tests/harness.h"

static struct ep_sync *shared_sync(int ranks)
{
	void *p = mmap(NULL, ep_sync_bytes(ranks), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	EP_ASSERT(p != MAP_FAILED);
	ep_sync_init(p, ranks);
	return p;
}

/* R processes pass 2000 barriers; a shared counter proves nobody ran ahead. */
static void barrier_lockstep(int ranks, int spin)
{
	struct ep_sync *s = shared_sync(ranks);
	_Atomic int *count = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	for (int r = 0; r < ranks; r++) {
		if (fork() == 0) {
			struct ep_waiter w;
			ep_waiter_init(&w, s, r, 10.0, spin);
			for (int i = 0; i < 2000; i++) {
				atomic_fetch_add(count, 1);
				if (ep_barrier(&w))
					_exit(2);
				int c = atomic_load(count);
				if (c < (i + 1) * ranks || c > (i + 2) * ranks)
					_exit(3);
				if (ep_barrier(&w))
					_exit(2);
			}
			_exit(0);
		}
	}
	for (int r = 0; r < ranks; r++) {
		int st;
		wait(&st);
		EP_ASSERT(WIFEXITED(st));
		EP_ASSERT_INT_EQ(WEXITSTATUS(st), 0);
	}
	EP_ASSERT_INT_EQ(atomic_load(count), 2000 * ranks);
}

EP_TEST(barrier_two_ranks_spinning) { barrier_lockstep(2, 20000); }
EP_TEST(barrier_eight_ranks_on_few_cores_sleeping) { barrier_lockstep(8, 0); }

EP_TEST(wait_times_out_naming_peer_and_phase)
{
	struct ep_sync *s = shared_sync(2);
	struct ep_waiter w;
	ep_waiter_init(&w, s, 0, 0.2, 0);
	ep_set_phase(&w, "test.phase");
	atomic_store(&s->ctl[1].phase, "peer.phase");
	int64_t t0 = ep_now_ns();
	int rc = ep_barrier(&w);
	double took = (double)(ep_now_ns() - t0) * 1e-9;
	EP_ASSERT_INT_EQ(rc, -EP_ETIMEDOUT);
	EP_ASSERT(took >= 0.2 && took < 1.0);
	EP_ASSERT_INT_EQ(atomic_load(&s->ctl[0].status), -EP_ETIMEDOUT);
	EP_ASSERT(strstr(s->ctl[0].message, "rank 0 timed out") != NULL);
	EP_ASSERT(strstr(s->ctl[0].message, "phase test.phase waiting for rank 1") != NULL);
	EP_ASSERT(strstr(s->ctl[0].message, "rank 1 is in phase peer.phase") != NULL);
	EP_ASSERT_INT_EQ(atomic_load(&s->ctl[0].waiting_on), 1); /* kept: the state block names whom it gave up on */
}

EP_TEST(flag_wakes_a_sleeper_promptly)
{
	struct ep_sync *s = shared_sync(2);
	struct ep_flag *f = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
		ep_flag_store(f, 5);
		_exit(0);
	}
	struct ep_waiter w;
	ep_waiter_init(&w, s, 0, 5.0, 0);
	int64_t t0 = ep_now_ns();
	EP_ASSERT_INT_EQ(ep_flag_wait_geq(&w, f, 5, 1), 0);
	double took = (double)(ep_now_ns() - t0) * 1e-9;
	EP_ASSERT(took < 1.0); /* woken, not waiting out the deadline */
	EP_ASSERT_INT_EQ(atomic_load(&f->waiters), 0);
	waitpid(pid, NULL, 0);
}

EP_TEST(wrap_safe_comparison)
{
	struct ep_sync *s = shared_sync(1);
	struct ep_flag f;
	atomic_store(&f.value, 3u);   /* wrapped past 0xffffffff */
	atomic_store(&f.waiters, 0u);
	struct ep_waiter w;
	ep_waiter_init(&w, s, 0, 0.1, 0);
	EP_ASSERT_INT_EQ(ep_flag_wait_geq(&w, &f, 0xfffffff0u, 0), 0);
	EP_ASSERT_INT_EQ(ep_flag_wait_geq(&w, &f, 10u, 0), -EP_ETIMEDOUT);
}

EP_TEST_MAIN()
