/* launcher.c - fork, pin, supervise and collect the rank processes of one point. */
#define _GNU_SOURCE
#include "cli/launcher.h"

#include <errno.h>
#include <numa.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/budget.h"
#include "collectives/error.h"
#include "reports/stats.h"

#define POLL_NS (10 * 1000 * 1000LL)
#define STALL_GRACE_S 5.0

static volatile sig_atomic_t interrupted;

void ep_launcher_interrupt(int sig)
{
	interrupted = sig;
}

int ep_launcher_interrupted(void)
{
	return interrupted != 0;
}

/* The pieces of the shared mapping, in order. */
struct shared_plan {
	size_t sync, results, times, wrong, arena, total;
};

static size_t align_page(size_t v)
{
	return (v + 4095) / 4096 * 4096;
}

/* n rank processes here (R on one host; a node's share across nodes). */
static void plan_shared(const struct ep_variant *v, const struct ep_run *run, size_t arena_bytes,
			int n, struct shared_plan *p)
{
	size_t R = (size_t)run->shape.num_ranks, nl = (size_t)n;
	p->sync = 0;
	p->results = align_page(ep_sync_bytes(n));
	p->times = p->results + align_page(nl * sizeof(struct ep_rank_result));
	p->wrong = p->times + align_page(nl * (size_t)v->nops * (size_t)run->opt->iters * sizeof(double));
	p->arena = p->wrong + align_page(nl * R * sizeof(uint64_t));
	p->total = p->arena + align_page(arena_bytes);
}

/* Pins rank r to one CPU (round robin) and, with several NUMA nodes, its
 * memory to that CPU's node. Best effort: a failure leaves it unpinned. */
static void pin_rank(int rank)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 1)
		return;
	int cpu = (int)(rank % ncpu);
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	if (numa_available() >= 0 && numa_num_configured_nodes() > 1) {
		int node = numa_node_of_cpu(cpu);
		if (node >= 0)
			numa_set_preferred(node);
	}
}

static void rank_process(const struct ep_variant *v, struct ep_run *run, char *base,
			 const struct shared_plan *p, int rank, pid_t parent,
			 const struct ep_node_hooks *hk)
{
	int global = hk ? hk->rank_base + rank : rank;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) /* the launcher died before prctl */
		_exit(EP_EXIT_TIMEOUT);
	char name[32]; /* the kernel keeps the first 15 bytes */
	snprintf(name, sizeof(name), "epbench-r%d", global);
	prctl(PR_SET_NAME, name);
	signal(SIGINT, SIG_IGN); /* the launcher decides; it kills us */
	signal(SIGTERM, SIG_DFL);
	if (run->opt->numa)
		pin_rank(rank);
	struct ep_sync *sync = (struct ep_sync *)(base + p->sync);
	struct ep_waiter w;
	ep_waiter_init(&w, sync, rank, run->opt->timeout_s, -1);
	size_t per_rank_times = (size_t)v->nops * (size_t)run->opt->iters;
	struct ep_bench_env env = {
		.run = run,
		.rank = global,
		.waiter = &w,
		.arena = base + p->arena,
		.result = (struct ep_rank_result *)(base + p->results) + rank,
		.times = (double *)(base + p->times) + (size_t)rank * per_rank_times,
		.wrong_by_src = (uint64_t *)(base + p->wrong) + (size_t)rank * run->shape.num_ranks,
		.variant_ctx = hk ? hk->variant_ctx : NULL,
	};
	_exit(ep_bench_rank(v, &env));
}

struct child {
	pid_t pid;
	int done;
	int status;
};

static void kill_all(struct child *kids, int n)
{
	for (int r = 0; r < n; r++)
		if (kids[r].pid > 0 && !kids[r].done)
			kill(kids[r].pid, SIGKILL);
	for (int r = 0; r < n; r++)
		if (kids[r].pid > 0 && !kids[r].done) {
			while (waitpid(kids[r].pid, &kids[r].status, 0) < 0 && errno == EINTR)
				;
			kids[r].done = 1;
		}
}

/* "ranks 0,2,5" of those waiting for rank r, into buf. */
static void waiters_of(const struct ep_sync *s, int r, int base, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = 0;
	for (int q = 0; q < s->num_ranks; q++)
		if (q != r && atomic_load(&s->ctl[q].waiting_on) == r && n + 12 < len)
			n += (size_t)snprintf(buf + n, len - n, "%s%d", n ? "," : "", base + q);
}

/* Message for the first rank that failed. */
static void describe_failure(const struct ep_sync *s, int r, int base, int status, char *msg,
			     size_t len)
{
	const struct ep_rank_ctl *c = &s->ctl[r];
	char waiters[128];
	waiters_of(s, r, base, waiters, sizeof(waiters));
	if (WIFSIGNALED(status)) {
		snprintf(msg, len, "rank %d (pid %d) was killed by signal %d (%s) in phase %s%s%s%s",
			 base + r, (int)atomic_load(&c->pid), WTERMSIG(status), strsignal(WTERMSIG(status)),
			 atomic_load(&c->phase), waiters[0] ? "; ranks " : "", waiters,
			 waiters[0] ? " were waiting for it" : "");
	} else if (c->message[0]) {
		snprintf(msg, len, "%s", c->message);
	} else {
		snprintf(msg, len, "rank %d exited with status %d in phase %s", base + r, WEXITSTATUS(status),
			 atomic_load(&c->phase));
	}
}

/* Message when nobody progresses: every rank that waits, and on whom. */
static void describe_stall(const struct ep_sync *s, int base, double secs, char *msg, size_t len)
{
	size_t n = (size_t)snprintf(msg, len, "no rank made progress for %.0f s:", secs);
	for (int r = 0; r < s->num_ranks && n + 80 < len; r++) {
		int peer = atomic_load(&s->ctl[r].waiting_on);
		if (peer >= 0)
			n += (size_t)snprintf(msg + n, len - n, " rank %d in %s waits for rank %d;", base + r,
					      atomic_load(&s->ctl[r].phase), base + peer);
		else
			n += (size_t)snprintf(msg + n, len - n, " rank %d in %s;", base + r,
					      atomic_load(&s->ctl[r].phase));
	}
}

static uint64_t total_progress(const struct ep_sync *s)
{
	uint64_t sum = 0;
	for (int r = 0; r < s->num_ranks; r++)
		sum += atomic_load(&s->ctl[r].progress);
	return sum;
}

/* When each rank last made progress, as the supervisor saw it. */
struct watch {
	uint64_t progress;
	int64_t since_ns;
};

static void watch_update(struct watch *w, const struct ep_sync *s, int64_t now)
{
	for (int r = 0; r < s->num_ranks; r++) {
		uint64_t p = atomic_load(&s->ctl[r].progress);
		if (p != w[r].progress || !w[r].since_ns)
			w[r].progress = p, w[r].since_ns = now;
	}
}

/* The scheduler state of a process ('R', 'S', 'T' stopped, ...), or '?'. */
static char proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = 0;
	const char *paren = strrchr(buf, ')'); /* the name may hold spaces */
	return paren && paren[1] == ' ' ? paren[2] : '?';
}

/* After another node's failure: which of this node's ranks held the others
 * up, appended to msg as "; on node N, rank ...". A rank whose process is
 * stopped (SIGSTOP, a debugger) is named as such; otherwise a rank that
 * local peers wait for, that waits for no one here and has made no
 * progress for a second is stalled (wedged or starved). A network wait
 * that timed out on another node often blames a rank here that was merely
 * waiting for such a rank, so this view goes with the message. With a
 * timeout, the deadline in force is named too. */
static void describe_local_stall(const struct ep_sync *s, const struct child *kids,
				 const struct watch *w, int base, int code, double timeout_s, int64_t now,
				 char *msg, size_t len)
{
	size_t n = strlen(msg);
	int found = 0;
	for (int r = 0; r < s->num_ranks && n + 200 < len; r++) {
		char waiters[128], st = kids[r].done ? 'X' : proc_state(kids[r].pid);
		double idle = (double)(now - w[r].since_ns) * 1e-9;
		int stopped = st == 'T' || st == 't';
		waiters_of(s, r, base, waiters, sizeof(waiters));
		if (!stopped && (!waiters[0] || atomic_load(&s->ctl[r].waiting_on) >= 0 || idle < 1.0))
			continue;
		if (!found++)
			n += (size_t)snprintf(msg + n, len - n, "; on node %d", base / s->num_ranks);
		n += (size_t)snprintf(msg + n, len - n, ", rank %d %s for %.1f s in phase %s", base + r,
				      stopped ? "is stopped (SIGSTOP or a debugger): no progress" : "made no progress",
				      idle, atomic_load(&s->ctl[r].phase));
		if (waiters[0])
			n += (size_t)snprintf(msg + n, len - n, " (ranks %s wait for it)", waiters);
	}
	if (code == EP_EXIT_TIMEOUT && n + 96 < len)
		snprintf(msg + n, len - n, "; --timeout %.1f s (network waits give up 1 s earlier)", timeout_s);
}

/* Waits for all ranks. Returns the exit status of the point. */
static int supervise(struct child *kids, int n, const struct ep_sync *s, double timeout_s,
		     const struct ep_node_hooks *hk, char *msg, size_t len)
{
	int base = hk ? hk->rank_base : 0;
	int remaining = n, code = EP_EXIT_OK;
	uint64_t last_progress = total_progress(s);
	int64_t last_change = ep_now_ns();
	struct watch *w = calloc((size_t)n, sizeof(*w));
	if (!w) {
		snprintf(msg, len, "out of memory");
		kill_all(kids, n);
		return EP_EXIT_ENV;
	}
	while (remaining > 0) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid > 0) {
			int r;
			for (r = 0; r < n && kids[r].pid != pid; r++)
				;
			if (r == n)
				continue;
			kids[r].done = 1;
			kids[r].status = status;
			remaining--;
			int ok = WIFEXITED(status) &&
				 (WEXITSTATUS(status) == EP_EXIT_OK || WEXITSTATUS(status) == EP_EXIT_WRONG);
			if (WIFEXITED(status) && WEXITSTATUS(status) == EP_EXIT_WRONG)
				code = EP_EXIT_WRONG;
			if (!ok) {
				describe_failure(s, r, base, status, msg, len);
				code = WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
					       WEXITSTATUS(status) != EP_EXIT_WRONG
					       ? WEXITSTATUS(status) : EP_EXIT_TIMEOUT;
				break;
			}
			continue;
		}
		if (interrupted) {
			snprintf(msg, len, "interrupted by signal %d", (int)interrupted);
			code = EP_EXIT_TIMEOUT;
			break;
		}
		int64_t now = ep_now_ns();
		watch_update(w, s, now);
		int hook_code = hk && hk->poll ? hk->poll(hk->arg, msg, len) : 0;
		if (hook_code) { /* another node failed, or the job was aborted */
			describe_local_stall(s, kids, w, base, hook_code, timeout_s, now, msg, len);
			code = hook_code;
			break;
		}
		uint64_t p = total_progress(s);
		if (p != last_progress) {
			last_progress = p;
			last_change = now;
		} else if ((double)(now - last_change) * 1e-9 > timeout_s + STALL_GRACE_S) {
			describe_stall(s, base, (double)(now - last_change) * 1e-9, msg, len);
			code = EP_EXIT_TIMEOUT;
			break;
		}
		struct timespec ts = {0, POLL_NS};
		nanosleep(&ts, NULL);
	}
	kill_all(kids, n);
	free(w);
	return code;
}

void ep_launch_collect(const struct ep_variant *v, const struct ep_run *run,
		       const struct ep_rank_result *rr, const double *times, const uint64_t *wrong,
		       struct ep_run_result *res)
{
	int R = run->shape.num_ranks, iters = run->opt->iters;
	res->nops = v->nops;
	res->checked = run->opt->check;
	for (int r = 0; r < R; r++) {
		res->checked_bytes += rr[r].checked_bytes;
		res->wrong_elems += rr[r].wrong_elems;
		res->wrong_rows += rr[r].wrong_rows;
		res->recv_rows += rr[r].recv_rows;
		if (rr[r].has_first && !res->first_mismatch[0]) {
			char line[EP_TEXT_MAX - 32];
			ep_mismatch_format(&rr[r].first, line, sizeof(line));
			snprintf(res->first_mismatch, sizeof(res->first_mismatch), "rank %d: %s", r, line);
		}
	}
	res->wrong_matrix = calloc((size_t)R * R, sizeof(uint64_t));
	if (res->wrong_matrix) /* stored [dst][src] by the ranks; reported [src][dst] */
		for (int dst = 0; dst < R; dst++)
			for (int src = 0; src < R; src++)
				res->wrong_matrix[src * R + dst] =
					wrong[dst * R + src];
	double *per_iter = malloc(sizeof(double) * (size_t)iters);
	double *mine = malloc(sizeof(double) * (size_t)iters);
	int *slowest = calloc((size_t)R, sizeof(int));
	for (int i = 0; i < v->nops && per_iter && mine && slowest; i++) {
		struct ep_op_result *op = &res->ops[i];
		op->name = v->ops[i].name;
		op->timed = (run->opt->ops & v->op_mask[i]) == v->op_mask[i];
		if (!op->timed)
			continue;
		memset(slowest, 0, sizeof(int) * (size_t)R);
		op->rank_median_us = calloc((size_t)R, sizeof(double));
		op->rank_busy_us = calloc((size_t)R, sizeof(double));
		for (int it = 0; it < iters; it++) {
			int arg = 0;
			double best = -1;
			for (int r = 0; r < R; r++) {
				double t = times[((size_t)r * v->nops + i) * iters + it];
				if (t > best)
					best = t, arg = r;
			}
			per_iter[it] = best * 1e6;
			slowest[arg]++;
		}
		ep_stats_compute(per_iter, (size_t)iters, &op->time_us);
		op->slowest_rank = 0;
		for (int r = 1; r < R; r++)
			if (slowest[r] > slowest[op->slowest_rank])
				op->slowest_rank = r;
		uint64_t alg = 0, wire = 0;
		for (int r = 0; r < R; r++) {
			alg += rr[r].alg_bytes[i];
			wire += rr[r].wire_bytes[i];
			if (rr[r].alg_bytes[i] > op->rank_alg_bytes_max)
				op->rank_alg_bytes_max = rr[r].alg_bytes[i];
			for (int it = 0; it < iters; it++)
				mine[it] = times[((size_t)r * v->nops + i) * iters + it] * 1e6;
			if (op->rank_busy_us)
				op->rank_busy_us[r] = rr[r].busy_median_us[i];
			if (op->rank_median_us)
				op->rank_median_us[r] = ep_median(mine, (size_t)iters);
		}
		op->alg_bytes = alg;
		op->wire_bytes = wire;
		double t = op->time_us.median * 1e-6;
		if (t > 0) {
			op->algbw_gbs = (double)alg / R / t / 1e9;
			op->wirebw_gbs = (double)wire / R / t / 1e9;
			op->aggbw_gbs = (double)alg / t / 1e9;
		}
	}
	free(per_iter);
	free(mine);
	free(slowest);
}

static void collect(const struct ep_variant *v, const struct ep_run *run, char *base,
		    const struct shared_plan *p, struct ep_run_result *res)
{
	ep_launch_collect(v, run, (const struct ep_rank_result *)(base + p->results),
			  (const double *)(base + p->times), (const uint64_t *)(base + p->wrong), res);
}

/* Copies a node's raw per-rank blocks out of the shared mapping for hk. */
static int copy_raw(const struct ep_variant *v, const struct ep_run *run, const char *base,
		    const struct shared_plan *p, struct ep_node_hooks *hk)
{
	size_t n = (size_t)hk->num_local;
	size_t nt = n * (size_t)v->nops * (size_t)run->opt->iters, nw = n * (size_t)run->shape.num_ranks;
	hk->results = malloc(n * sizeof(struct ep_rank_result));
	hk->times = malloc(nt * sizeof(double) + 1);
	hk->wrong = malloc(nw * sizeof(uint64_t) + 1);
	if (!hk->results || !hk->times || !hk->wrong)
		return -ENOMEM;
	memcpy(hk->results, base + p->results, n * sizeof(struct ep_rank_result));
	memcpy(hk->times, base + p->times, nt * sizeof(double));
	memcpy(hk->wrong, base + p->wrong, nw * sizeof(uint64_t));
	return 0;
}

/* Sizes a point of procs rank processes here and checks it fits this
 * machine: first from the cheap lower bound (a hopeless shape is refused
 * before the variant sizes anything), then from the variant's sizes. */
static int plan_point(const struct ep_variant *v, struct ep_run *run, int procs,
		      struct shared_plan *p, char *msg, size_t len)
{
	size_t arena_bytes = 0, rank_bytes = 0;
	int rc = ep_budget_check(0, ep_budget_rank_floor(&run->shape), procs, msg, len);
	if (rc)
		return rc;
	if ((rc = v->size(run, &arena_bytes, &rank_bytes))) {
		snprintf(msg, len, "sizing buffers failed: %s", ep_strerror(rc));
		return rc;
	}
	plan_shared(v, run, arena_bytes, procs, p);
	return ep_budget_check(p->total, rank_bytes, procs, msg, len);
}

int ep_launch_precheck(const struct ep_variant *v, const struct ep_run *run, int procs, char *msg,
		       size_t len)
{
	struct ep_run copy = *run; /* size() fills capacity: the launch sizes again */
	struct shared_plan p;
	return plan_point(v, &copy, procs, &p, msg, len);
}

/* One point on this host: all R ranks (hk NULL), or one node's share (hk). */
static int launch(const struct ep_variant *v, struct ep_run *run, struct ep_node_hooks *hk,
		  struct ep_run_result *res)
{
	int R = hk ? hk->num_local : run->shape.num_ranks;
	struct shared_plan p;
	int64_t t0 = ep_now_ns();
	memset(res, 0, sizeof(*res));
	res->num_ranks = R;
	if (plan_point(v, run, R, &p, res->message, sizeof(res->message)))
		return res->exit_code = EP_EXIT_ENV;
	char *base = mmap(NULL, p.total, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED) {
		snprintf(res->message, sizeof(res->message), "mapping %.2f GiB of shared memory failed: %s",
			 (double)p.total / (1 << 30), strerror(errno));
		return res->exit_code = EP_EXIT_ENV;
	}
	struct ep_sync *sync = (struct ep_sync *)(base + p.sync);
	ep_sync_init(sync, R);
	struct child *kids = calloc((size_t)R, sizeof(*kids));
	if (!kids) {
		munmap(base, p.total);
		snprintf(res->message, sizeof(res->message), "out of memory");
		return res->exit_code = EP_EXIT_ENV;
	}
	pid_t parent = getpid();
	fflush(NULL);
	int code = EP_EXIT_OK;
	for (int r = 0; r < R; r++) {
		if (interrupted) { /* a signal while forking: stop here, not after R forks */
			snprintf(res->message, sizeof(res->message), "interrupted by signal %d while starting rank %d",
				 (int)interrupted, r);
			kill_all(kids, r);
			code = EP_EXIT_TIMEOUT;
			goto out;
		}
		pid_t pid = fork();
		if (pid == 0)
			rank_process(v, run, base, &p, r, parent, hk);
		if (pid < 0) {
			snprintf(res->message, sizeof(res->message), "fork of rank %d failed: %s", r,
				 strerror(errno));
			kill_all(kids, r);
			code = EP_EXIT_ENV;
			goto out;
		}
		kids[r].pid = pid;
	}
	code = supervise(kids, R, sync, run->opt->timeout_s, hk, res->message, sizeof(res->message));
	if (hk && (code == EP_EXIT_OK || code == EP_EXIT_WRONG) && copy_raw(v, run, base, &p, hk)) {
		snprintf(res->message, sizeof(res->message), "out of memory");
		code = EP_EXIT_ENV;
	} else if (!hk && (code == EP_EXIT_OK || code == EP_EXIT_WRONG)) {
		collect(v, run, base, &p, res);
	}
	if (code == EP_EXIT_OK && res->wrong_elems)
		code = EP_EXIT_WRONG;
out:
	free(kids);
	munmap(base, p.total);
	res->wall_s = (double)(ep_now_ns() - t0) * 1e-9;
	return res->exit_code = code;
}

int ep_launch(const struct ep_variant *v, struct ep_run *run, struct ep_run_result *res)
{
	return launch(v, run, NULL, res);
}

int ep_launch_node(const struct ep_variant *v, struct ep_run *run, struct ep_node_hooks *hk,
		   struct ep_run_result *res)
{
	return launch(v, run, hk, res);
}

void ep_run_result_free(struct ep_run_result *r)
{
	free(r->wrong_matrix);
	for (int i = 0; i < EP_MAX_OPS; i++) {
		free(r->ops[i].rank_median_us);
		free(r->ops[i].rank_busy_us);
	}
	free(r->nodes);
	free(r->links);
	r->wrong_matrix = NULL;
	r->nodes = NULL;
	r->links = NULL;
}
