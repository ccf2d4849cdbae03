/* transport_test.c - the transport contract, run over tcp (loopback) and shm with forked ranks. */
#include "collectives/transport/transport.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>

#include "collectives/error.h"
#include "tests/harness.h"

#define NR 3
#define REGION_BYTES (1 << 20)

/* Addresses travel through a shared page, as the launcher's exchange would carry them. */
struct board {
	struct ep_transport_addr addr[NR];
	volatile int ready[NR];
	volatile int result[NR];
};

static struct board *board_new(void)
{
	struct board *b = mmap(NULL, sizeof(*b), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	EP_ASSERT(b != MAP_FAILED);
	memset(b, 0, sizeof(*b));
	return b;
}

static uint8_t pattern(int src, int dst, size_t i)
{
	return (uint8_t)(src * 31 + dst * 7 + i * 13 + (i >> 9));
}

/* The second half as a gathered put where the backend has one: from an
 * unregistered copy, in pieces of 731 bytes (more than one sendmsg batch),
 * an empty piece among them. */
static int put_second_half(struct ep_transport *t, int p, const uint8_t *send, size_t half, size_t at)
{
	static uint8_t *kept; /* the last call's pieces: a source stays put until the next signal returns */
	if (!ep_transport_has_putv(t))
		return ep_transport_put(t, p, send + half, 0, at + half, REGION_BYTES - half);
	free(kept);
	size_t len = REGION_BYTES - half, piece = 731, n = (len + piece - 1) / piece + 1;
	uint8_t *loose = kept = malloc(len);
	struct iovec *iov = calloc(n, sizeof(*iov));
	if (!loose || !iov)
		return -ENOMEM;
	memcpy(loose, send + half, len);
	iov[0] = (struct iovec){loose, 0};
	for (size_t i = 1, off = 0; i < n; i++, off += piece)
		iov[i] = (struct iovec){loose + off, off + piece <= len ? piece : len - off};
	int rc = ep_transport_putv(t, p, iov, (int)n, 0, at + half);
	free(iov);
	return rc;
}

/* Rank body: everyone puts a distinct pattern into every peer's region in
 * two pieces (the second gathered where the backend can), signals after
 * each, then checks what landed in its own. */
static int rank_body(const struct ep_transport_ops *ops, void *fabric, struct board *b, int me,
		     int die_early)
{
	struct ep_transport t;
	struct ep_transport_cfg cfg = {.rank = me, .num_ranks = NR, .ranks_per_node = 1,
				       .host = "127.0.0.1", .timeout_s = 5, .job_id = 42,
				       .shm_fabric = fabric};
	uint8_t *recv = fabric ? ep_shm_fabric_alloc(fabric, me, (size_t)NR * REGION_BYTES)
			       : malloc((size_t)NR * REGION_BYTES);
	uint8_t *send = fabric ? ep_shm_fabric_alloc(fabric, me, REGION_BYTES) : malloc(REGION_BYTES);
	if (!recv || !send)
		return 10;
	if (ep_transport_init(&t, ops, &cfg, &b->addr[me]) || ep_transport_reg_mem(&t, 0, recv, (size_t)NR * REGION_BYTES) ||
	    ep_transport_reg_mem(&t, 1, send, REGION_BYTES))
		return 11;
	__atomic_store_n(&b->ready[me], 1, __ATOMIC_SEQ_CST);
	for (int r = 0; r < NR; r++)
		while (!__atomic_load_n(&b->ready[r], __ATOMIC_SEQ_CST))
			usleep(1000);
	int peers[NR - 1], n = 0;
	for (int r = 0; r < NR; r++)
		if (r != me)
			peers[n++] = r;
	if (ep_transport_connect(&t, peers, n, b->addr)) {
		fprintf(stderr, "rank %d: %s\n", me, t.error);
		return 12;
	}
	if (die_early)
		_exit(0); /* vanish without BYE, as a killed process would */
	for (int k = 0; k < n; k++) {
		int p = peers[k];
		for (size_t i = 0; i < REGION_BYTES; i++)
			send[i] = pattern(me, p, i);
		size_t half = REGION_BYTES / 2 + 123;
		if (ep_transport_put(&t, p, send, 0, (size_t)me * REGION_BYTES, half) ||
		    ep_transport_signal(&t, p) ||
		    put_second_half(&t, p, send, half, (size_t)me * REGION_BYTES) ||
		    ep_transport_signal(&t, p)) {
			fprintf(stderr, "rank %d: %s\n", me, t.error);
			return 13;
		}
	}
	for (int k = 0; k < n; k++) {
		int p = peers[k];
		int rc = ep_transport_wait(&t, p, 2);
		if (rc) {
			fprintf(stderr, "rank %d: %s\n", me, t.error);
			return rc == -EP_EPEERDIED ? 20 : 14;
		}
		/* test agrees with wait: 2 signals came, a third never will */
		if (t.ops->test && (!ep_transport_test(&t, p, 2) || !ep_transport_test(&t, p, 1) ||
				    ep_transport_test(&t, p, 3))) {
			fprintf(stderr, "rank %d: test of %d's signals disagrees with wait\n", me, p);
			return 16;
		}
		for (size_t i = 0; i < REGION_BYTES; i++)
			if (recv[(size_t)p * REGION_BYTES + i] != pattern(p, me, i)) {
				fprintf(stderr, "rank %d: byte %zu from %d wrong\n", me, i, p);
				return 15;
			}
	}
	ep_transport_fini(&t);
	return 0;
}

static void run_ranks(const struct ep_transport_ops *ops, int with_fabric, int dying_rank,
		      int expect_rc[NR])
{
	struct board *b = board_new();
	void *fabric = with_fabric ? ep_shm_fabric_create(NR, 8u * REGION_BYTES) : NULL;
	pid_t pids[NR];
	for (int r = 0; r < NR; r++) {
		pids[r] = fork();
		if (pids[r] == 0)
			_exit(rank_body(ops, fabric, b, r, r == dying_rank));
	}
	for (int r = 0; r < NR; r++) {
		int st;
		waitpid(pids[r], &st, 0);
		EP_ASSERT(WIFEXITED(st));
		if (expect_rc[r] < 0) /* any failure of put or wait, reported as such */
			EP_ASSERT(WEXITSTATUS(st) == 13 || WEXITSTATUS(st) == 20);
		else
			EP_ASSERT_INT_EQ(WEXITSTATUS(st), expect_rc[r]);
	}
	ep_shm_fabric_destroy(fabric);
}

EP_TEST(tcp_put_signal_wait_three_ranks)
{
	int want[NR] = {0, 0, 0};
	run_ranks(&ep_transport_tcp, 0, -1, want);
}

EP_TEST(shm_put_signal_wait_three_ranks)
{
	int want[NR] = {0, 0, 0};
	run_ranks(&ep_transport_shm, 1, -1, want);
}

EP_TEST(tcp_dead_peer_is_named_not_waited_for)
{
	/* rank 2 connects, then vanishes: the others must fail fast (a put or
	 * wait naming the dead peer), long before the 5 s deadline */
	int want[NR] = {-1, -1, 0};
	int64_t t0 = time(NULL);
	run_ranks(&ep_transport_tcp, 0, 2, want);
	EP_ASSERT(time(NULL) - t0 < 4);
}

EP_TEST(tcp_wait_times_out_with_peer_named)
{
	struct board *b = board_new();
	pid_t pid = fork();
	if (pid == 0) {
		/* the peer connects and then never signals */
		struct ep_transport t;
		struct ep_transport_cfg cfg = {.rank = 1, .num_ranks = 2, .ranks_per_node = 1,
					       .host = "127.0.0.1", .timeout_s = 3, .job_id = 7};
		ep_transport_init(&t, &ep_transport_tcp, &cfg, &b->addr[1]);
		b->ready[1] = 1;
		while (!b->ready[0])
			usleep(1000);
		int p = 0;
		ep_transport_connect(&t, &p, 1, b->addr);
		sleep(10);
		_exit(0);
	}
	struct ep_transport t;
	struct ep_transport_cfg cfg = {.rank = 0, .num_ranks = 2, .ranks_per_node = 1,
				       .host = "127.0.0.1", .timeout_s = 1, .job_id = 7};
	EP_ASSERT_INT_EQ(ep_transport_init(&t, &ep_transport_tcp, &cfg, &b->addr[0]), 0);
	b->ready[0] = 1;
	while (!b->ready[1])
		usleep(1000);
	int p = 1;
	EP_ASSERT_INT_EQ(ep_transport_connect(&t, &p, 1, b->addr), 0);
	EP_ASSERT_INT_EQ(ep_transport_wait(&t, 1, 1), -EP_ETIMEDOUT);
	EP_ASSERT(strstr(t.error, "rank 1 (node 1)") != NULL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

EP_TEST(tcp_refuses_another_job)
{
	struct board *b = board_new();
	pid_t pid = fork();
	if (pid == 0) {
		struct ep_transport t;
		struct ep_transport_cfg cfg = {.rank = 1, .num_ranks = 2, .ranks_per_node = 1,
					       .host = "127.0.0.1", .timeout_s = 2, .job_id = 8};
		ep_transport_init(&t, &ep_transport_tcp, &cfg, &b->addr[1]);
		b->ready[1] = 1;
		while (!b->ready[0])
			usleep(1000);
		int p = 0;
		ep_transport_connect(&t, &p, 1, b->addr);
		sleep(5);
		_exit(0);
	}
	struct ep_transport t;
	struct ep_transport_cfg cfg = {.rank = 0, .num_ranks = 2, .ranks_per_node = 1,
				       .host = "127.0.0.1", .timeout_s = 1, .job_id = 7};
	EP_ASSERT_INT_EQ(ep_transport_init(&t, &ep_transport_tcp, &cfg, &b->addr[0]), 0);
	b->ready[0] = 1;
	while (!b->ready[1])
		usleep(1000);
	int p = 1;
	EP_ASSERT_INT_EQ(ep_transport_connect(&t, &p, 1, b->addr), -EP_ETIMEDOUT);
	EP_ASSERT(strstr(t.error, "ranks 1 to connect") != NULL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

EP_TEST(verbs_without_device_says_so)
{
	char why[128] = "";
	struct ep_transport_cfg cfg = {.rank = 0, .num_ranks = 1, .host = "127.0.0.1", .timeout_s = 1};
	int rc = ep_transport_verbs.probe(&cfg, why, sizeof(why));
	if (rc == 0)
		EP_SKIP("an RDMA device is present: nothing to check here");
	EP_ASSERT_INT_EQ(rc, -EP_ENODEV);
	EP_ASSERT(strstr(why, "no RDMA device") != NULL);
	EP_ASSERT(ep_transport_auto(&cfg, why, sizeof(why)) == &ep_transport_tcp);
}

EP_TEST_MAIN()
