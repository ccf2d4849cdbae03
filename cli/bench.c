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
#include "reports/stats.h"

/* Records err in the rank's control block (keeping a more specific message
 * a wait may already have written) and maps it to an exit status. */
static int rank_fail(struct ep_bench_env *env, const char *what, int err)
{
	ep_sync_fail(env->waiter, err, "rank %d: %s failed: %s", env->rank, what, ep_strerror(err));
	return ep_error_exit_code(err);
}

static int fault_here(const struct ep_bench_env *env, enum ep_fault_kind kind)
{
	return ep_faults_find(&env->run->cfg->faults, kind, env->rank) != NULL;
}

/* --fault slow:RANK:US: this rank sleeps inside every timed op. */
static void inject_slow(const struct ep_bench_env *env)
{
	const struct ep_fault *f = ep_faults_find(&env->run->cfg->faults, EP_FAULT_SLOW, env->rank);
	if (f) {
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

/* --fault die / hang: this rank stops cooperating in the middle of an op's
 * timed loop, as a crashed or wedged process would. */
static void inject_stop(struct ep_bench_env *env)
{
	if (fault_here(env, EP_FAULT_DIE))
		kill(getpid(), SIGKILL);
	if (fault_here(env, EP_FAULT_HANG)) {
		ep_set_phase(env->waiter, "fault.hang");
		for (;;)
			pause();
	}
}

static int verify(const struct ep_variant *v, struct ep_bench_env *env, void *st)
{
	const struct ep_run_cfg *o = env->run->cfg;
	struct ep_rank_result *res = env->result;
	struct ep_check_report rep;
	ep_report_init(&rep, env->run->shape.num_ranks, env->wrong_by_src);
	for (int i = 0; i < v->nops; i++) {
		const struct ep_op_desc *op = &v->ops[i];
		int rc;
		if (!ep_op_present(op, o))
			continue;
		if ((op->prepare && (rc = op->prepare(st))) || (rc = enter(v, i, st)) ||
		    (rc = op->run(st)) || (op->after && (rc = op->after(st))))
			return rank_fail(env, op->name, rc);
		if (i == 0 && op->corrupt && fault_here(env, EP_FAULT_CORRUPT))
			op->corrupt(st);
		if (o->check) {
			ep_set_phase(env->waiter, "check");
			if ((rc = op->check(st, &rep)))
				return rank_fail(env, "check", rc);
		}
	}
	if (o->dump_dir) {
		ep_set_phase(env->waiter, "dump");
		int rc = v->dump(st, o->dump_dir);
		if (rc)
			return rank_fail(env, "dump", rc);
	}
	res->checked = o->check;
	res->checked_bytes = rep.checked_bytes;
	res->wrong_elems = rep.wrong_elems;
	res->wrong_rows = rep.wrong_rows;
	res->has_first = rep.has_first;
	res->first = rep.first;
	return 0;
}

/* Times op i: warm-up, then iterations. Besides the op time, each iteration
 * records the rank's busy time (the op time less its waits on peers), whose
 * median tells a slow rank from one that merely waits for it. */
static int time_op(const struct ep_variant *v, int i, struct ep_bench_env *env, void *st)
{
	const struct ep_run_cfg *o = env->run->cfg;
	const struct ep_op_desc *op = &v->ops[i];
	double *times = env->times + (size_t)i * o->iters;
	double *busy = malloc(sizeof(double) * (size_t)o->iters);
	int rc = 0;
	if (!busy)
		return rank_fail(env, "timing buffers", -ENOMEM);
	if (op->prepare && (rc = op->prepare(st))) {
		free(busy);
		return rank_fail(env, op->name, rc);
	}
	for (int it = -o->warmup; it < o->iters; it++) {
		ep_set_phase(env->waiter, "iteration");
		ep_set_step(env->waiter, i, it);
		if ((rc = ep_barrier(env->waiter)) || (rc = enter(v, i, st))) {
			free(busy);
			return rank_fail(env, it < 0 ? "warm-up" : "iteration", rc);
		}
		env->waiter->wait_ns = 0;
		int64_t t0 = ep_now_ns();
		if (it == 0 && i == 0)
			inject_stop(env);
		inject_slow(env);
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
	}
	env->result->busy_median_us[i] = ep_median(busy, (size_t)o->iters);
	free(busy);
	ep_set_step(env->waiter, -1, 0);
	op->bytes(st, &env->result->alg_bytes[i], &env->result->wire_bytes[i]);
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
	void *st = NULL;
	int rc, code = EP_EXIT_OK;
	ep_set_phase(env->waiter, "setup");
	if ((rc = v->setup(env, &st)))
		return rank_fail(env, "setup", rc);
	if ((rc = ep_barrier(env->waiter))) {
		code = rank_fail(env, "setup barrier", rc);
		goto out;
	}
	if (o->check || o->dump_dir)
		if ((code = verify(v, env, st)))
			goto out;
	if (o->perf_ctl && (rc = ep_barrier(env->waiter))) {
		code = rank_fail(env, "perf barrier", rc);
		goto out;
	}
	perf_control(env, "enable\n");
	for (int i = 0; i < v->nops; i++)
		if (ep_op_present(&v->ops[i], o) && ep_op_timed(&v->ops[i], o))
			if ((code = time_op(v, i, env, st)))
				goto out;
	perf_control(env, "disable\n");
	for (int i = 0; i < v->nops; i++)
		if (v->ops[i].recv_rows)
			env->result->recv_rows = v->ops[i].recv_rows(st);
	ep_set_phase(env->waiter, "finish");
	if ((rc = ep_barrier(env->waiter)))
		code = rank_fail(env, "final barrier", rc);
out:
	v->teardown(st);
	atomic_store(&env->result->finished, 1);
	if (code == EP_EXIT_OK && env->result->wrong_elems)
		code = EP_EXIT_WRONG;
	return code;
}
