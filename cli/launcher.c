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
#include "cli/layer_figures.h"
#include "cli/supervise.h"
#include "collectives/error.h"
#include "collectives/traffic.h"
#include "reports/stats.h"

/* The pieces of the shared mapping, in order. */
struct shared_plan {
	size_t sync, traffic, results, times, wrong, arena, total;
};


static size_t page_up(size_t v)
{
	return ep_align_up(v, EP_PAGE);
}

/* Entries of a rank's times: [nops][iters] seconds, or one per soak pass. */
static size_t times_per_rank(const struct ep_variant *v, const struct ep_run *run)
{
	size_t timed = (size_t)v->nops * (size_t)run->cfg->iters;
	return run->cfg->soak > 0 && (size_t)run->cfg->soak > timed ? (size_t)run->cfg->soak : timed;
}

/* n rank processes here (R on one host; a node's share across nodes). */
static void plan_shared(const struct ep_variant *v, const struct ep_run *run, size_t arena_bytes,
			int n, struct shared_plan *p)
{
	size_t R = (size_t)run->shape.num_ranks, nl = (size_t)n;
	p->sync = 0;
	p->traffic = page_up(ep_sync_bytes(n));
	p->results = p->traffic + page_up(ep_traffic_bytes((int)R));
	p->times = p->results + page_up(nl * sizeof(struct ep_rank_result));
	p->wrong = p->times + page_up(nl * times_per_rank(v, run) * sizeof(double));
	p->arena = p->wrong + page_up(nl * R * sizeof(uint64_t));
	p->total = p->arena + page_up(arena_bytes);
}

/* Pins the rank in CPU slot `slot` to one CPU (round robin) and, with
 * several NUMA nodes, its memory to that CPU's node. Best effort: a failure
 * leaves it unpinned. */
static void pin_rank(int slot)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 1)
		return;
	int cpu = (int)(slot % ncpu);
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
			 const struct ep_launch_opts *lo)
{
	int global = lo->rank_base + rank;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) /* the launcher died before prctl */
		_exit(EP_EXIT_TIMEOUT);
	char name[32]; /* the kernel keeps the first 15 bytes */
	snprintf(name, sizeof(name), "epbench-r%d", global);
	prctl(PR_SET_NAME, name);
	signal(SIGINT, SIG_IGN); /* the launcher decides; it kills us */
	signal(SIGUSR1, SIG_IGN); /* a state request is the launcher's to answer */
	signal(SIGTERM, SIG_DFL);
	if (run->cfg->numa)
		pin_rank(lo->cpu_base + rank);
	struct ep_sync *sync = (struct ep_sync *)(base + p->sync);
	struct ep_waiter w;
	ep_waiter_init(&w, sync, rank, run->cfg->timeout_s, -1);
	w.traffic = (struct ep_traffic *)(base + p->traffic); /* bound before fork */
	size_t per_rank_times = times_per_rank(v, run);
	struct ep_bench_env env = {
		.run = run,
		.rank = global,
		.waiter = &w,
		.arena = base + p->arena,
		.result = (struct ep_rank_result *)(base + p->results) + rank,
		.times = (double *)(base + p->times) + (size_t)rank * per_rank_times,
		.wrong_by_src = (uint64_t *)(base + p->wrong) + (size_t)rank * run->shape.num_ranks,
		.variant_ctx = lo->variant_ctx,
	};
	_exit(ep_bench_rank(v, &env));
}

/* Checked bytes, wrong elements and rows, the first mismatch (of the
 * earliest failed pass, in a soak) and the [src][dst] wrong-row matrix. */
static void collect_check(const struct ep_run *run, const struct ep_rank_result *rr, const uint64_t *wrong,
			  struct ep_run_result *res)
{
	int R = run->shape.num_ranks, first = -1;
	res->checked = run->cfg->check;
	for (int r = 0; r < R; r++) {
		res->checked_bytes += rr[r].checked_bytes;
		res->wrong_elems += rr[r].wrong_elems;
		res->wrong_rows += rr[r].wrong_rows;
		res->handle_checked_bytes += rr[r].handle_checked_bytes;
		res->handle_wrong_elems += rr[r].handle_wrong_elems;
		res->recv_rows += rr[r].recv_rows;
		if (rr[r].has_first && (first < 0 || rr[r].first_pass < rr[first].first_pass ||
					(rr[r].first_pass == rr[first].first_pass && rr[r].first_op < rr[first].first_op)))
			first = r; /* the earliest pass, then the earliest op: where the damage began */
	}
	if (first >= 0) {
		char line[EP_TEXT_MAX - 32];
		ep_mismatch_format(&rr[first].first, line, sizeof(line));
		snprintf(res->first_mismatch, sizeof(res->first_mismatch), "rank %d: %s", first, line);
	} else if (res->message[0]) { /* a rank that stopped on wrong data its protocol read (e.g. ep_ll_clean skipped) */
		snprintf(res->first_mismatch, sizeof(res->first_mismatch), "%s", res->message);
	}
	res->wrong_matrix = calloc((size_t)R * R, sizeof(uint64_t));
	if (res->wrong_matrix) /* stored [dst][src] by the ranks; reported [src][dst] */
		for (int dst = 0; dst < R; dst++)
			for (int src = 0; src < R; src++)
				res->wrong_matrix[src * R + dst] =
					wrong[dst * R + src];
}

/* A soak: a pass failed when any rank found a wrong row in it. */
static void collect_soak(const struct ep_variant *v, const struct ep_run *run, const struct ep_rank_result *rr,
			 const double *times, struct ep_run_result *res)
{
	int R = run->shape.num_ranks;
	size_t stride = times_per_rank(v, run);
	struct ep_soak_result *s = &res->soak;
	s->passes = run->cfg->soak;
	for (int r = 0; r < R; r++) /* a soak cut short counts only the passes every rank finished */
		s->passes = rr[r].soak_done < s->passes ? (long)rr[r].soak_done : s->passes;
	s->first = run->cfg->soak_first;
	s->first_failed = -1;
	for (long i = 0; i < s->passes; i++) {
		int bad = 0;
		for (int r = 0; r < R; r++)
			bad |= times[(size_t)r * stride + (size_t)i] > 0;
		s->failed += bad;
		if (bad && s->first_failed < 0)
			s->first_failed = s->first + i;
	}
	for (int r = 0; r < R; r++)
		s->seconds = rr[r].soak_s > s->seconds ? rr[r].soak_s : s->seconds;
	s->upper95 = ep_rate_upper_bound((unsigned long)s->failed, (unsigned long)s->passes, 0.95);
	res->nops = v->nops;
	for (int i = 0; i < v->nops; i++)
		res->ops[i].name = v->ops[i].name; /* none timed */
}

/* Each timed op's per-iteration maxima, per-rank medians and bandwidths. */
static void collect_times(const struct ep_variant *v, const struct ep_run *run, const struct ep_rank_result *rr,
			  const double *times, struct ep_run_result *res)
{
	int R = run->shape.num_ranks, iters = run->cfg->iters;
	res->nops = v->nops;
	double *per_iter = malloc(sizeof(double) * (size_t)iters);
	double *mine = malloc(sizeof(double) * (size_t)iters);
	int *slowest = calloc((size_t)R, sizeof(int));
	for (int i = 0; i < v->nops && per_iter && mine && slowest; i++) {
		struct ep_op_result *op = &res->ops[i];
		op->name = v->ops[i].name;
		op->timed = ep_op_present(&v->ops[i], run->cfg) && ep_op_timed(&v->ops[i], run->cfg);
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
		op->samples_us = malloc(sizeof(double) * (size_t)iters);
		if (op->samples_us) {
			memcpy(op->samples_us, per_iter, sizeof(double) * (size_t)iters);
			op->nsamples = iters;
		}
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

void ep_launch_collect(const struct ep_variant *v, const struct ep_run *run,
		       const struct ep_rank_result *rr, const double *times, const uint64_t *wrong,
		       struct ep_run_result *res)
{
	collect_check(run, rr, wrong, res);
	if (run->cfg->soak)
		collect_soak(v, run, rr, times, res);
	else
		collect_times(v, run, rr, times, res);
	for (int i = 0; i < v->nops && i < EP_MAX_OPS; i++) { /* an op's own tokens and rows, where they differ */
		res->ops[i].tokens = v->op_tokens ? v->op_tokens(run, i) : 0;
		for (int r = 0; r < run->shape.num_ranks; r++)
			res->ops[i].recv_rows += rr[r].op_recv_rows[i];
	}
}

static void collect(const struct ep_variant *v, const struct ep_run *run, char *base,
		    const struct shared_plan *p, struct ep_run_result *res)
{
	ep_launch_collect(v, run, (const struct ep_rank_result *)(base + p->results),
			  (const double *)(base + p->times), (const uint64_t *)(base + p->wrong), res);
}

/* Copies a node's raw per-rank blocks out of the shared mapping. */
static int copy_raw(const struct ep_variant *v, const struct ep_run *run, const char *base,
		    const struct shared_plan *p, int n_local, struct ep_raw_results *raw)
{
	size_t n = (size_t)n_local;
	size_t nt = n * times_per_rank(v, run), nw = n * (size_t)run->shape.num_ranks;
	raw->results = malloc(n * sizeof(struct ep_rank_result));
	raw->times = malloc(nt * sizeof(double) + 1);
	raw->wrong = malloc(nw * sizeof(uint64_t) + 1);
	if (!raw->results || !raw->times || !raw->wrong)
		return -ENOMEM;
	memcpy(raw->results, base + p->results, n * sizeof(struct ep_rank_result));
	memcpy(raw->times, base + p->times, nt * sizeof(double));
	memcpy(raw->wrong, base + p->wrong, nw * sizeof(uint64_t));
	return 0;
}

void ep_raw_free(struct ep_raw_results *raw)
{
	free(raw->results);
	free(raw->times);
	free(raw->wrong);
	memset(raw, 0, sizeof(*raw));
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

int ep_launch_plan_bytes(const struct ep_variant *v, const struct ep_run *run, int procs, size_t *shared,
			 size_t *rank_private)
{
	struct ep_run copy = *run; /* size() fills capacity */
	struct shared_plan p;
	size_t arena_bytes = 0;
	int rc = v->size(&copy, &arena_bytes, rank_private);
	if (rc)
		return rc;
	plan_shared(v, &copy, arena_bytes, procs, &p);
	*shared = p.total;
	return 0;
}

/* Forks the R rank processes into kids; stops at a pending signal. 0, or
 * the point's status with the reason in msg (the forked ones are reaped). */
static int fork_ranks(const struct ep_variant *v, struct ep_run *run, char *base,
		      const struct shared_plan *p, const struct ep_launch_opts *lo, struct ep_child *kids,
		      int R, char *msg, size_t len)
{
	pid_t parent = getpid();
	fflush(NULL);
	for (int r = 0; r < R; r++) {
		if (ep_launcher_interrupted()) { /* a signal while forking: stop here, not after R forks */
			snprintf(msg, len, "interrupted by signal %d while starting rank %d",
				 ep_launcher_interrupted(), r);
			ep_kill_all(kids, r);
			return EP_EXIT_TIMEOUT;
		}
		pid_t pid = fork();
		if (pid == 0)
			rank_process(v, run, base, p, r, parent, lo);
		if (pid < 0) {
			snprintf(msg, len, "fork of rank %d failed: %s", r, strerror(errno));
			ep_kill_all(kids, r);
			return EP_EXIT_ENV;
		}
		kids[r].pid = pid;
	}
	return 0;
}

int ep_launch(const struct ep_variant *v, struct ep_run *run, struct ep_launch_opts *lo,
	      struct ep_run_result *res)
{
	struct ep_launch_opts here = {0};
	lo = lo ? lo : &here;
	int R = lo->num_local ? lo->num_local : run->shape.num_ranks;
	struct shared_plan p;
	int64_t t0 = ep_now_ns();
	memset(res, 0, sizeof(*res));
	res->num_ranks = R;
	if (v->nops > EP_MAX_OPS) /* every per-op array of a result holds EP_MAX_OPS */
		return snprintf(res->message, sizeof(res->message), "variant %s has %d ops, more than %d", v->name, v->nops,
				EP_MAX_OPS), res->exit_code = EP_EXIT_ENV;
	if (plan_point(v, run, R, &p, res->message, sizeof(res->message)))
		return res->exit_code = EP_EXIT_ENV;
	char *base = mmap(NULL, p.total, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	struct ep_child *kids = calloc((size_t)R, sizeof(*kids));
	if (base == MAP_FAILED || !kids) {
		snprintf(res->message, sizeof(res->message), "mapping %.2f GiB of shared memory failed: %s",
			 (double)p.total / (1 << 30), base == MAP_FAILED ? strerror(errno) : "out of memory");
		if (base != MAP_FAILED)
			munmap(base, p.total);
		free(kids);
		return res->exit_code = EP_EXIT_ENV;
	}
	struct ep_sync *sync = (struct ep_sync *)(base + p.sync);
	ep_sync_init(sync, R);
	struct ep_traffic *t = ep_traffic_init(base + p.traffic, run->shape.num_ranks);
	if (ep_layer_run(run) && run->parallel.moe_comm != EP_MOE_ALLGATHER) /* EP group k: ranks k mod moe_tp */
		t->pair_stride = run->parallel.v[EP_PAR_MOE_TP];
	lo->watch.traffic = t;
	int code = fork_ranks(v, run, base, &p, lo, kids, R, res->message, sizeof(res->message));
	lo->watch.rank_base = lo->rank_base;
	const char *op_names[EP_MAX_OPS];
	for (int i = 0; i < v->nops && i < EP_MAX_OPS; i++)
		op_names[i] = v->ops[i].name;
	lo->watch.op_names = op_names;
	lo->watch.nops = v->nops < EP_MAX_OPS ? v->nops : EP_MAX_OPS;
	if (!code)
		code = ep_supervise(kids, R, sync, run->cfg->timeout_s, &lo->watch, res->message,
				    sizeof(res->message));
	res->state_block = ep_supervise_take_block();
	int ok = code == EP_EXIT_OK || code == EP_EXIT_WRONG;
	if (ok && lo->keep_raw && copy_raw(v, run, base, &p, R, &lo->raw)) {
		ep_raw_free(&lo->raw);
		snprintf(res->message, sizeof(res->message), "out of memory");
		code = EP_EXIT_ENV;
	} else if (ok && !lo->keep_raw) {
		collect(v, run, base, &p, res);
	}
	if (code == EP_EXIT_OK && res->wrong_elems)
		code = EP_EXIT_WRONG;
	free(kids);
	munmap(base, p.total);
	lo->watch.traffic = NULL;
	res->wall_s = (double)(ep_now_ns() - t0) * 1e-9;
	return res->exit_code = code;
}

void ep_run_result_free(struct ep_run_result *r)
{
	free(r->wrong_matrix);
	for (int i = 0; i < EP_MAX_OPS; i++) {
		free(r->ops[i].rank_median_us);
		free(r->ops[i].rank_busy_us);
		free(r->ops[i].samples_us);
		r->ops[i].rank_median_us = r->ops[i].rank_busy_us = r->ops[i].samples_us = NULL;
	}
	free(r->nodes);
	free(r->links);
	ep_imbalance_free(r->imbalance);
	r->imbalance = NULL;
	free(r->state_block);
	r->state_block = NULL;
	if (r->layer)
		free(r->layer->tokens_per_dp);
	free(r->layer);
	r->layer = NULL;
	if (r->placement) {
		free(r->placement->phy2log);
		free(r->placement->logcnt);
		ep_imbalance_free(r->placement->before);
		free(r->placement);
		r->placement = NULL;
	}
	r->wrong_matrix = NULL;
	r->nodes = NULL;
	r->links = NULL;
}
