/* bench.c - verification pass, warm-up and timed loops inside one rank. */
#include "cli/bench.h"

#include <fcntl.h>
#include <poll.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collectives/error.h"
#include "reference/placement.h"
#include "reference/routing_step.h"
#include "reports/stats.h"

/* Records err in the rank's control block (keeping a more specific message
 * a wait may already have written) and maps it to an exit status. */
static int rank_fail(struct ep_bench_env *env, const char *what, int err)
{
	ep_sync_fail(env->waiter, err, "rank %d: %s failed: %s", env->rank, what, ep_strerror(err));
	return ep_error_exit_code(err);
}

/* --fault slow:RANK:US / delay:RANK:US@ITER: this rank sleeps inside the
 * timed op, once for each such fault that strikes iteration it. */
static void inject_slow(const struct ep_bench_env *env, long it)
{
	const struct ep_faults *fs = &env->run->cfg->faults;
	for (int k = 0; k < fs->n; k++) {
		const struct ep_fault *f = &fs->f[k];
		if (f->kind != EP_FAULT_SLOW || !ep_fault_strikes(f, env->rank, it))
			continue;
		struct timespec ts = {f->arg / 1000000, f->arg % 1000000 * 1000};
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}
}

/* The untimed steps before one run of op i: the variant's hook, the op's. */
static int enter(const struct ep_variant *v, int i, void *st)
{
	int rc = v->op_enter ? v->op_enter(st, &v->ops[i], i) : 0;
	return rc ? rc : v->ops[i].before ? v->ops[i].before(st) : 0;
}

/* --fault link-down / qp-error: before iteration it, a rank on either end
 * cuts its connections to the other node. 0 or the rank's exit status. */
static int inject_link_down(const struct ep_variant *v, struct ep_bench_env *env, void *st, long it)
{
	int P = env->run->cfg->ranks_per_node;
	const char *name = "link-down";
	int other = P > 0 ? ep_faults_link_down(&env->run->cfg->faults, env->rank / P, it, &name) : -1;
	if (other >= 0 && !v->sever) {
		ep_sync_fail(env->waiter, -EP_EUSAGE, "rank %d: --fault %s: %s cannot cut its connections", env->rank, name,
			     v->name);
		return ep_error_exit_code(-EP_EUSAGE);
	}
	int rc = other >= 0 ? v->sever(st, other, !strcmp(name, "qp-error")) : 0;
	return rc ? rank_fail(env, "fault.link-down", rc) : 0;
}

/* --fault die / hang: this rank stops cooperating in the middle of an op's
 * iteration it, as a crashed or wedged process would: in the first op
 * timed (first), or in op (hang:R:OP; NULL in a soak pass). */
static void inject_stop(struct ep_bench_env *env, long it, const char *op, int first)
{
	const struct ep_faults *fs = &env->run->cfg->faults;
	if (ep_faults_stop_in(fs, EP_FAULT_DIE, env->rank, it, op, first))
		kill(getpid(), SIGKILL);
	if (ep_faults_stop_in(fs, EP_FAULT_HANG, env->rank, it, op, first)) {
		ep_set_phase(env->waiter, "fault.hang");
		for (;;)
			pause();
	}
}

#define MAX_VIEWS 12

/* The data faults (--fault bitflip, corrupt, permute, drop, stale) that
 * strike this rank in this pass, done to op's outputs; applied[k] notes
 * fault k done. stale[k]: the previous pass's last received row, or NULL. */
static int damage(const struct ep_op_desc *op, struct ep_bench_env *env, void *st, long pass, int *applied,
		  uint8_t *const *stale)
{
	const struct ep_faults *fs = &env->run->cfg->faults;
	struct ep_tensor_view v[MAX_VIEWS];
	int n = -1;
	for (int k = 0; k < fs->n; k++) {
		const struct ep_fault *f = &fs->f[k];
		if (applied[k] || !ep_fault_is_data(f) || !ep_fault_strikes(f, env->rank, pass))
			continue;
		if (n < 0)
			n = op->outputs ? op->outputs(st, v, MAX_VIEWS) : 0;
		const struct ep_tensor_view *t = ep_damage_target(f, v, n, op->receives);
		char err[256];
		if (!t)
			continue;
		if (ep_damage_apply(f, t, stale ? stale[k] : NULL, err, sizeof(err))) {
			ep_sync_fail(env->waiter, -EP_EUSAGE, "rank %d: %s", env->rank, err);
			return ep_error_exit_code(-EP_EUSAGE);
		}
		applied[k] = 1;
	}
	return 0;
}

/* A data fault that struck no tensor: its tensor is not an output of this run. */
static int damage_missed(struct ep_bench_env *env, long pass, const int *applied)
{
	const struct ep_faults *fs = &env->run->cfg->faults;
	for (int k = 0; k < fs->n; k++)
		if (!applied[k] && ep_fault_is_data(&fs->f[k]) && ep_fault_strikes(&fs->f[k], env->rank, pass)) {
			ep_sync_fail(env->waiter, -EP_EUSAGE, "rank %d: --fault %s: this run has no output tensor '%s'",
				     env->rank, fs->f[k].name, fs->f[k].tensor[0] ? fs->f[k].tensor : "of received rows");
			return ep_error_exit_code(-EP_EUSAGE);
		}
	return 0;
}

/* One checked pass of every op the run has (pass numbers the soak's
 * passes; 0 otherwise), its findings added to rep. */
static int check_pass(const struct ep_variant *v, struct ep_bench_env *env, void *st, long pass,
		      struct ep_check_report *rep, uint8_t *const *stale)
{
	const struct ep_run_cfg *o = env->run->cfg;
	int applied[EP_MAX_FAULTS] = {0};
	for (int i = 0; i < v->nops; i++) {
		const struct ep_op_desc *op = &v->ops[i];
		int rc;
		if (!ep_op_present(op, o))
			continue;
		if ((op->prepare && (rc = op->prepare(st))) || (rc = enter(v, i, st)) ||
		    (rc = op->run(st)) || (op->after && (rc = op->after(st))))
			return rank_fail(env, op->name, rc);
		if ((rc = damage(op, env, st, pass, applied, stale)))
			return rc;
		if (o->check) {
			int had = rep->has_first;
			ep_set_phase(env->waiter, "check");
			if ((rc = op->check(st, rep)))
				return rank_fail(env, "check", rc);
			if (!had && rep->has_first && !env->result->has_first)
				env->result->first_op = i; /* kept with `first` by keep_findings */
		}
	}
	return damage_missed(env, pass, applied);
}

static void keep_findings(struct ep_rank_result *res, const struct ep_check_report *rep, long pass)
{
	res->checked_bytes += rep->checked_bytes;
	res->wrong_elems += rep->wrong_elems;
	res->wrong_rows += rep->wrong_rows;
	res->handle_checked_bytes += rep->handle_checked_bytes;
	res->handle_wrong_elems += rep->handle_wrong_elems;
	if (rep->has_first && !res->has_first)
		res->has_first = 1, res->first = rep->first, res->first_pass = pass;
}

/* The run a soak pass or a routing step sees (its seed or step moves). It
 * lives in ep_bench_rank's frame: the variant's state keeps pointing into
 * it (e.g. the reference's routing) until teardown. */
struct own_run {
	struct ep_run_cfg cfg;
	struct ep_run run;
};

/* Routing that changes between iterations (reference/routing_step.h):
 * moves every rank to routing step `step` unless it is there: a barrier,
 * the variant's reseed (routing, inputs, reference), a barrier. Untimed. */
static int route_step(const struct ep_variant *v, struct ep_bench_env *env, void *st, struct own_run *own, long step)
{
	int rc;
	if (own->run.routing.step == step)
		return 0;
	own->run.routing.step = step;
	ep_set_phase(env->waiter, "routing step");
	if ((rc = ep_barrier(env->waiter)) || (rc = v->reseed(st)) || (rc = ep_barrier(env->waiter)))
		return rank_fail(env, "routing step", rc);
	return 0;
}

/* A data fault aimed (@ITER) at a checked pass beyond the n this run has. */
static int fault_beyond(struct ep_bench_env *env, long n)
{
	const struct ep_faults *fs = &env->run->cfg->faults;
	for (int k = 0; k < fs->n; k++)
		if (ep_fault_is_data(&fs->f[k]) && fs->f[k].rank == env->rank && fs->f[k].iter >= n) {
			ep_sync_fail(env->waiter, -EP_EUSAGE, "rank %d: --fault %s:%d@%ld never strikes: the run checks %ld routing step%s (0 to %ld)",
				     env->rank, fs->f[k].name, fs->f[k].rank, fs->f[k].iter, n, n > 1 ? "s" : "", n - 1);
			return ep_error_exit_code(-EP_EUSAGE);
		}
	return 0;
}

/* --dump: every tensor of this rank, and the placement of redundant experts. */
static int dump(const struct ep_variant *v, struct ep_bench_env *env, void *st)
{
	const struct ep_run_cfg *o = env->run->cfg;
	char dir[4096];
	int rc;
	ep_set_phase(env->waiter, "dump");
	if ((rc = v->dump(st, o->dump_dir)))
		return rank_fail(env, "dump", rc);
	snprintf(dir, sizeof(dir), "%s/rank%d", o->dump_dir, env->rank);
	if (env->run->routing.placement && (rc = ep_placement_dump(env->run->routing.placement, dir)))
		return rank_fail(env, "dump", rc);
	return 0;
}

/* The verification pass: one checked pass of every op, and with routing
 * that changes between iterations one per distinct step the warm-up and
 * timed iterations use (checked pass d is the d-th step: what --fault
 * KIND:R@d strikes). --dump writes the first step's tensors. */
static int verify(const struct ep_variant *v, struct ep_bench_env *env, void *st, struct own_run *own)
{
	const struct ep_run_cfg *o = env->run->cfg;
	const struct ep_shape *s = &env->run->shape;
	const struct ep_routing *r = &env->run->routing;
	long n = ep_routing_distinct_steps(s, r, (long)o->warmup + o->iters), p = ep_routing_step_period(r);
	int rc = ep_routing_varies(r) ? fault_beyond(env, n) : 0;
	for (long d = 0; d < n && !rc; d++) {
		struct ep_check_report rep;
		ep_report_init(&rep, s->num_ranks, d == 0 ? env->wrong_by_src : NULL);
		rep.wrong_rows_by_src = env->wrong_by_src; /* summed over the steps */
		if ((d > 0 && (rc = route_step(v, env, st, own, ep_routing_step(s, r, d * p)))) ||
		    (rc = check_pass(v, env, st, d, &rep, NULL)))
			return rc;
		if (d == 0 && o->dump_dir && (rc = dump(v, env, st)))
			return rc;
		keep_findings(env->result, &rep, d);
	}
	env->result->checked = o->check;
	return rc;
}

/* For --fault stale: keeps this pass's last received row, which the next
 * pass's stale fault writes back (as a receiver that never rewrote it). */
static void keep_stale_rows(const struct ep_variant *v, struct ep_bench_env *env, void *st, uint8_t **stale)
{
	const struct ep_faults *fs = &env->run->cfg->faults;
	struct ep_tensor_view views[MAX_VIEWS];
	for (int k = 0; k < fs->n; k++) {
		if (fs->f[k].kind != EP_FAULT_STALE || fs->f[k].rank != env->rank)
			continue;
		for (int i = 0; i < v->nops; i++) {
			const struct ep_op_desc *op = &v->ops[i];
			if (!ep_op_present(op, env->run->cfg) || !op->receives || !op->outputs ||
			    op->outputs(st, views, MAX_VIEWS) < 1 || !views[0].rows)
				continue;
			uint8_t *row = realloc(stale[k], views[0].row_bytes);
			if (row) { /* out of memory keeps the older row: stale either way */
				memcpy(row, views[0].base + (views[0].rows - 1) * views[0].row_bytes, views[0].row_bytes);
				stale[k] = row;
			}
			break;
		}
	}
}

/* --soak N: N checked passes, pass p with seed + p and fresh inputs (and
 * the routing step of iteration p); the wrong rows of each pass go to
 * times[p] for the launcher's count. env->run is sr's. */
static int soak(const struct ep_variant *v, struct ep_bench_env *env, void **st, struct own_run *sr)
{
	const struct ep_run_cfg *base = sr->run.cfg;
	const uint64_t seed0 = base->seed;
	uint8_t *stale[EP_MAX_FAULTS] = {0};
	int rc = 0, n = base->soak;
	int64_t t0 = ep_now_ns();
	struct ep_run_cfg *const cfgp = &sr->cfg;
	env->result->checked = cfgp->check;
	for (int i = 0; i < n && !rc; i++) {
		long pass = (long)cfgp->soak_first + i;
		struct ep_check_report rep;
		cfgp->seed = seed0 + (uint64_t)pass;
		sr->run.routing.step = ep_routing_step(&sr->run.shape, &sr->run.routing, pass);
		ep_set_step(env->waiter, -1, i);
		if (i > 0 || pass > 0) { /* every rank is done with the last pass's buffers */
			ep_set_phase(env->waiter, "soak.reseed");
			if ((rc = ep_barrier(env->waiter)) || (rc = v->reseed(*st)) || (rc = ep_barrier(env->waiter))) {
				rc = rank_fail(env, "soak reseed", rc);
				break;
			}
		}
		inject_stop(env, pass, NULL, 1);
		ep_report_init(&rep, sr->run.shape.num_ranks, i == 0 ? env->wrong_by_src : NULL);
		rep.wrong_rows_by_src = env->wrong_by_src; /* summed over the passes */
		if ((rc = check_pass(v, env, *st, pass, &rep, stale)))
			break;
		env->times[i] = (double)rep.wrong_rows;
		env->result->soak_done = i + 1;
		keep_findings(env->result, &rep, pass);
		keep_stale_rows(v, env, *st, stale);
	}
	for (int k = 0; k < EP_MAX_FAULTS; k++)
		free(stale[k]);
	env->result->soak_s = (double)(ep_now_ns() - t0) * 1e-9;
	return rc;
}

/* With routing that changes between iterations, op i's iteration j moves
 * to its step first (untimed) and, when the step changed, prepares again
 * (combine needs the new step's dispatch). */
static int step_op(const struct ep_variant *v, int i, struct ep_bench_env *env, void *st, struct own_run *own, long j)
{
	const struct ep_op_desc *op = &v->ops[i];
	long step = ep_routing_step(&own->run.shape, &own->run.routing, j);
	int rc;
	if (!ep_routing_varies(&own->run.routing) || own->run.routing.step == step)
		return 0;
	if ((rc = route_step(v, env, st, own, step)))
		return rc;
	if (op->prepare && (rc = op->prepare(st)))
		return rank_fail(env, op->name, rc);
	return 0;
}

/* This iteration's bytes of op, added to the run's sums (which with
 * routing that changes between iterations are averaged over the timed ones). */
static void add_bytes(const struct ep_op_desc *op, void *st, uint64_t *alg, uint64_t *wire)
{
	uint64_t a, w;
	op->bytes(st, &a, &w);
	*alg += a;
	*wire += w;
}

/* Times op i: warm-up, then iterations. Besides the op time, each iteration
 * records the rank's busy time (the op time less its waits on peers), whose
 * median tells a slow rank from one that merely waits for it. */
static int time_op(const struct ep_variant *v, int i, struct ep_bench_env *env, void *st, int first_timed,
		   struct own_run *own)
{
	const struct ep_run_cfg *o = env->run->cfg;
	const struct ep_op_desc *op = &v->ops[i];
	double *times = env->times + (size_t)i * o->iters;
	double *busy = malloc(sizeof(double) * (size_t)o->iters);
	uint64_t alg = 0, wire = 0;
	int rc = 0;
	if (!busy)
		return rank_fail(env, "timing buffers", -ENOMEM);
	if (op->prepare && (rc = op->prepare(st))) {
		free(busy);
		return rank_fail(env, op->name, rc);
	}
	for (int it = -o->warmup; it < o->iters; it++) {
		if ((rc = step_op(v, i, env, st, own, it + o->warmup))) {
			free(busy);
			return rc;
		}
		ep_set_phase(env->waiter, "iteration");
		ep_set_step(env->waiter, i, it);
		if ((rc = ep_barrier(env->waiter)) || (rc = enter(v, i, st))) {
			free(busy);
			return rank_fail(env, it < 0 ? "warm-up" : "iteration", rc);
		}
		env->waiter->wait_ns = 0;
		int64_t t0 = ep_now_ns();
		if (it >= 0)
			inject_stop(env, it, op->name, first_timed);
		if (first_timed && it >= 0) {
			if ((rc = inject_link_down(v, env, st, it))) {
				free(busy);
				return rc;
			}
		}
		inject_slow(env, it);
		if ((rc = op->run(st))) {
			free(busy);
			return rank_fail(env, op->name, rc);
		}
		int64_t t1 = ep_now_ns();
		if (it >= 0) {
			times[it] = (double)(t1 - t0) * 1e-9;
			busy[it] = (double)(t1 - t0 - env->waiter->wait_ns) * 1e-3;
		}
		if (op->after && (rc = op->after(st))) {
			free(busy);
			return rank_fail(env, op->name, rc);
		}
		if (it >= 0)
			add_bytes(op, st, &alg, &wire);
	}
	env->result->busy_median_us[i] = ep_median(busy, (size_t)o->iters);
	free(busy);
	ep_set_step(env->waiter, -1, 0);
	env->result->alg_bytes[i] = alg / (uint64_t)o->iters;
	env->result->wire_bytes[i] = wire / (uint64_t)o->iters;
	if (v->op_leave)
		v->op_leave(st, op, i, env->result->alg_bytes[i]);
	return 0;
}

/* --perf-ctl CTL[,ACK]: rank 0 tells `perf record|stat --control fifo:CTL,ACK -D -1`
 * to count only while the ops are timed (after a barrier, so every rank is
 * there). Best effort: a perf that is not listening does not stop the run. */
static void perf_control(struct ep_bench_env *env, const char *cmd)
{
	const char *spec = env->run->cfg->perf_ctl;
	if (!spec || env->rank != 0)
		return;
	char ctl[4096], *ack = NULL;
	snprintf(ctl, sizeof(ctl), "%s", spec);
	if ((ack = strchr(ctl, ',')))
		*ack++ = 0;
	int fd = open(ctl, O_WRONLY | O_NONBLOCK);
	if (fd < 0)
		return;
	if (write(fd, cmd, strlen(cmd)) < 0) { /* nothing to do: perf is gone */
	}
	close(fd);
	if (ack && (fd = open(ack, O_RDONLY)) >= 0) {
		char buf[16];
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, 5000) > 0 && read(fd, buf, sizeof(buf)) < 0) {
		}
		close(fd);
	}
}

int ep_bench_rank(const struct ep_variant *v, struct ep_bench_env *env)
{
	const struct ep_run_cfg *o = env->run->cfg;
	const struct ep_run *base = env->run;
	struct own_run own = {.cfg = *o, .run = *env->run};
	void *st = NULL;
	int rc, code = EP_EXIT_OK;
	own.run.cfg = &own.cfg;
	own.run.routing.step = ep_routing_step(&own.run.shape, &own.run.routing, 0);
	env->run = &own.run; /* seeds and steps move in own; the variant sees it */
	ep_set_phase(env->waiter, "setup");
	if ((rc = v->setup(env, &st))) {
		env->run = base;
		return rank_fail(env, "setup", rc);
	}
	if ((rc = ep_barrier(env->waiter))) {
		code = rank_fail(env, "setup barrier", rc);
		goto out;
	}
	if (o->soak) {
		if ((code = soak(v, env, &st, &own)))
			goto out;
		goto finish;
	}
	if (o->check || o->dump_dir)
		if ((code = verify(v, env, st, &own)))
			goto out;
	if (o->perf_ctl && (rc = ep_barrier(env->waiter))) {
		code = rank_fail(env, "perf barrier", rc);
		goto out;
	}
	perf_control(env, "enable\n");
	for (int i = 0, first = 1; i < v->nops; i++)
		if (ep_op_present(&v->ops[i], o) && ep_op_timed(&v->ops[i], o)) {
			if ((code = time_op(v, i, env, st, first, &own)))
				goto out;
			first = 0; /* die and hang strike in the first op timed */
		}
	perf_control(env, "disable\n");
	for (int i = v->nops - 1; i >= 0; i--) /* the run's rows: the first op's that has them */
		if (v->ops[i].recv_rows && i < EP_MAX_OPS)
			env->result->recv_rows = env->result->op_recv_rows[i] = v->ops[i].recv_rows(st);
finish:
	ep_set_phase(env->waiter, "finish");
	if ((rc = ep_barrier(env->waiter)))
		code = rank_fail(env, "final barrier", rc);
out:
	v->teardown(st);
	env->run = base;
	atomic_store(&env->result->finished, 1);
	if (code == EP_EXIT_OK && env->result->wrong_elems)
		code = EP_EXIT_WRONG;
	return code;
}
