/* node.c - one node of an acceptance job: meet the others, run the plan step by step, report to node 0.
 *
 * Every node runs every step of the plan in order. A step ends when node
 * 0 has every node's object for it (RESULT) and has said so (DONE); so the
 * runs of a pair of nodes never overlap with another pair's, and a node
 * that is not in a step waits, keeping the heartbeats going. Node 0's DONE
 * after the preflight says whether to go on (a preflight FAIL: no runs,
 * every node exits 3). Node 0 returns the job's exit status; the others 0
 * when they finished their part. A lost node ends the job as the cluster code decides; node
 * 0 still judges and writes what was measured up to then.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/accept/accept.h"
#include "cli/accept/counters.h"
#include "cli/accept/iperf.h"
#include "cli/accept/report.h"
#include "cli/accept/spawn.h"
#include "cli/cluster/env.h"
#include "cli/cluster/pmix.h"
#include "cli/cluster/rendezvous.h"
#include "cli/preflight.h"
#include "collectives/error.h"
#include "collectives/sync.h"

struct job {
	struct accept_args *a;
	struct ep_cluster_cfg cfg;
	struct ep_cluster *cl;          /* NULL on a single node */
	int N, me, listen_fd;
	struct ep_accept_results res;   /* node 0 */
	char dir[64], exe[PATH_MAX];
};

static int pump(void *ctx, int ms, char *msg, size_t len)
{
	struct job *j = ctx;
	if (!j->cl)
		return usleep((useconds_t)ms * 1000), 0;
	int rc = ep_cluster_pump(j->cl, ms, msg, len);
	if (rc) /* the job ends: why goes with what was measured */
		snprintf(j->res.lost_msg, sizeof(j->res.lost_msg), "%s", msg);
	return rc;
}

static const char *addr_of(const struct job *j, int node)
{
	return j->cl ? ep_cluster_nodes(j->cl)[node].addr : "127.0.0.1";
}

static json_t *preflight_step(const struct job *j)
{
	struct ep_preflight pf;
	const struct accept_args *a = j->a;
	struct ep_pf_opts o = {.root = getenv("EP_PREFLIGHT_ROOT"), .want_verbs = !strcmp(a->transport, "verbs"),
			       .pin_bytes = (size_t)(2 * (a->nodes > 0 ? a->nodes : 1) * (size_t)a->tokens *
						     (2 * (size_t)a->hidden + 128))};
	ep_preflight_run(&o, &pf);
	return json_pack("{s:o}", "preflight", ep_accept_preflight_json(&pf));
}

static json_t *counters_json(const struct ep_nic_snap *d)
{
	json_t *c = json_object();
	for (int i = 0; i < d->n; i++)
		json_object_set_new(c, d->name[i], json_integer((json_int_t)d->v[i]));
	return json_pack("{s:s, s:b, s:o, s:s*}", "iface", d->iface, "loopback", d->loopback, "delta", c, "note",
			 d->note[0] ? d->note : NULL);
}

/* One child epbench run with the counters around it. */
static json_t *epbench_run(struct job *j, int k, char **argv, int *pump_rc)
{
	char log[128], out[128], msg[512], tail[1024];
	struct ep_nic_snap before, after, d;
	snprintf(log, sizeof(log), "%s/step%d.log", j->dir, k);
	snprintf(out, sizeof(out), "%s/step%d.json", j->dir, k);
	ep_nic_read(getenv("EP_PREFLIGHT_ROOT"), addr_of(j, j->me), &before);
	int rc = ep_accept_spawn(j->exe, argv, log, 10 * j->a->timeout_s + 30, pump, j, pump_rc, msg, sizeof(msg));
	ep_nic_read(getenv("EP_PREFLIGHT_ROOT"), addr_of(j, j->me), &after);
	ep_nic_delta(&before, &after, &d);
	ep_log_tail(log, 6, tail, sizeof(tail));
	json_error_t je;
	json_t *r = json_load_file(out, JSON_REJECT_DUPLICATES, &je);
	int code = rc >= 0 && rc < 128 ? rc : EP_EXIT_TIMEOUT;
	return json_pack("{s:b, s:i, s:s*, s:s, s:o*, s:o, s:f}", "ran", 1, "exit", code, "msg", msg[0] ? msg : NULL,
			 "log", tail, "result", r, "counters", counters_json(&d), "nominal_gbs",
			 ep_nic_nominal_gbs(getenv("EP_PREFLIGHT_ROOT"), d.iface));
}

static json_t *run_step(struct job *j, int k, int *pump_rc)
{
	const struct ep_step *s = &j->res.steps[k];
	char *argv[EP_ACCEPT_ARGV_MAX], buf[8192], jpath[128];
	if (s->kind == EP_STEP_PREFLIGHT)
		return preflight_step(j);
	if (!ep_step_has(s, j->me))
		return json_pack("{s:b}", "ran", 0);
	json_t *iperf = NULL;
	if (s->kind == EP_STEP_PAIR && !j->a->no_iperf)
		iperf = ep_accept_iperf(j->me == s->a, addr_of(j, s->a), ep_step_port(j->cfg.master_port, k) + 500,
					j->a->iperf_s, j->dir, k, pump, j, pump_rc);
	if (*pump_rc)
		return json_decref(iperf), NULL;
	int lead = s->kind == EP_STEP_PAIR ? s->a : 0;
	snprintf(jpath, sizeof(jpath), "%s/step%d.json", j->dir, k);
	argv[0] = "epbench";
	int argc = ep_step_argv(j->a, s, j->me, addr_of(j, lead), ep_step_port(j->cfg.master_port, k), jpath, argv + 1,
				buf, sizeof(buf));
	if (argc <= 0)
		return json_decref(iperf), json_pack("{s:b}", "ran", 0);
	json_t *r = epbench_run(j, k, argv, pump_rc);
	if (iperf)
		json_object_set_new(r, "iperf", iperf);
	return r;
}

/* Node 0: waits until every node's object of step k is in; 0 or the job's end. */
static int gather(struct job *j, int k, json_t *mine, char *msg, size_t len)
{
	json_t **row = &j->res.r[(size_t)k * (size_t)j->N];
	row[0] = mine;
	for (int have = 1; have < j->N;) {
		int rc = j->cl ? ep_cluster_pump(j->cl, 100, msg, len) : 0;
		if (rc)
			return rc;
		have = 1;
		for (int n = 1; n < j->N; n++) {
			size_t got;
			const void *b = row[n] ? NULL : ep_cluster_result(j->cl, n, k, &got);
			if (b) {
				json_error_t je;
				row[n] = json_loadb(b, got, 0, &je);
				if (!row[n])
					row[n] = json_pack("{s:s}", "error", "node's object was not JSON");
			}
			have += row[n] != NULL;
		}
	}
	return 0;
}

/* Others: send step k's object, wait for node 0's word on it. */
static int report(struct job *j, int k, json_t *mine, int *verdict, char *msg, size_t len)
{
	char *text = json_dumps(mine, JSON_COMPACT);
	int rc = text ? ep_cluster_send_result(j->cl, k, text, strlen(text)) : -ENOMEM;
	free(text);
	json_decref(mine);
	if (rc)
		return snprintf(msg, len, "node %d: sending step %d's results failed: %s", j->me, k, ep_strerror(rc)),
		       EP_EXIT_TIMEOUT;
	while (!ep_cluster_done(j->cl, k, verdict))
		if ((rc = ep_cluster_pump(j->cl, 100, msg, len)))
			return ep_cluster_done(j->cl, k, verdict) ? 0 : rc; /* node 0 may close right after its word */
	return 0;
}

/* Does any node's preflight hold a FAIL? */
static int preflight_failed(const struct job *j)
{
	for (int n = 0; n < j->N; n++) {
		json_t *p = json_object_get(j->res.r[n], "preflight");
		const char *v = json_string_value(json_object_get(p, "verdict"));
		if (v && !strcmp(v, "FAIL"))
			return 1;
	}
	return 0;
}

/* Every step in order. Node 0 returns its verdict; the others node 0's word. */
static int run_plan(struct job *j)
{
	char msg[512] = "";
	int verdict = 0;
	for (int k = 0; k < j->res.nsteps; k++) {
		int prc = 0;
		json_t *mine = run_step(j, k, &prc);
		int rc = prc ? prc : j->me == 0 ? gather(j, k, mine, msg, sizeof(msg)) : report(j, k, mine, &verdict, msg, sizeof(msg));
		if (prc)
			json_decref(mine);
		if (rc) {
			j->res.lost_code = rc;
			if (msg[0])
				snprintf(j->res.lost_msg, sizeof(j->res.lost_msg), "%s", msg);
			break;
		}
		j->res.done_steps = k + 1;
		int stop = k == 0 && j->me == 0 && preflight_failed(j) ? EP_EXIT_ENV : 0;
		if (j->me == 0 && j->cl)
			ep_cluster_send_done(j->cl, k, stop);
		if (stop || verdict)
			return j->me == 0 ? ep_accept_judge(j->a, &j->res) : verdict;
		if (j->cl)
			ep_cluster_forget(j->cl, k);
	}
	if (j->me != 0)
		return j->res.lost_code ? (fprintf(stderr, "epbench accept: node %d: %s\n", j->me, j->res.lost_msg),
					   j->res.lost_code)
					: 0;
	return ep_accept_judge(j->a, &j->res);
}

/* The step logs and results go (EP_ACCEPT_KEEP=1 keeps them, for a look). */
static void remove_dir(const char *dir)
{
	char path[PATH_MAX];
	if (getenv("EP_ACCEPT_KEEP"))
		return (void)fprintf(stderr, "epbench accept: logs kept in %s\n", dir);
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' && snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < (int)sizeof(path))
			unlink(path);
	if (d)
		closedir(d);
	rmdir(dir);
}

/* One node: meet, run the plan, clean up. */
static int run_node(struct job *j)
{
	char err[EP_TEXT_MAX], text[2048];
	int rc;
	j->me = j->cfg.node_rank;
	snprintf(j->dir, sizeof(j->dir), "/tmp/epbench-accept.XXXXXX");
	if (!mkdtemp(j->dir))
		return fprintf(stderr, "epbench accept: node %d: temporary folder: %s\n", j->me, strerror(errno)), EP_EXIT_ENV;
	if (j->N > 1) {
		ep_accept_config_text(j->a, text, sizeof(text));
		if ((rc = ep_cluster_join(&j->cl, &j->cfg, text, j->a->timeout_s, j->listen_fd, j->a->node_addr, err,
					  sizeof(err)))) {
			fprintf(stderr, "epbench accept: node %d: %s\n", j->me, err);
			remove_dir(j->dir);
			return ep_error_exit_code(rc);
		}
	}
	rc = run_plan(j);
	if (j->cl)
		ep_cluster_close(j->cl);
	remove_dir(j->dir);
	return rc;
}

static int local_node(void *ctx, int k, int fd)
{
	struct job *j = ctx;
	j->cfg.node_rank = k;
	j->listen_fd = fd;
	return run_node(j);
}

/* --local-nodes: every node a child of this process, over loopback; node 0's status. */
static int run_local(struct job *j)
{
	char err[EP_TEXT_MAX];
	pid_t pids[EP_ACCEPT_MAX_NODES];
	int code = EP_EXIT_OK, st, fd = ep_cluster_local_listener(&j->cfg.master_port, err, sizeof(err));
	if (fd < 0)
		return fprintf(stderr, "epbench accept: %s\n", err), EP_EXIT_ENV;
	int rc = ep_cluster_fork_nodes(j->N, fd, local_node, j, pids, err, sizeof(err));
	close(fd);
	if (rc)
		return fprintf(stderr, "epbench accept: %s\n", err), EP_EXIT_ENV;
	for (int k = 0; k < j->N; k++) {
		while (waitpid(pids[k], &st, 0) < 0 && errno == EINTR)
			;
		int c = WIFEXITED(st) ? WEXITSTATUS(st) : EP_EXIT_TIMEOUT;
		code = k == 0 ? c : code ? code : c;
	}
	return code;
}

static const char *env_get(const char *name)
{
	return getenv(name);
}

/* Who this node is: the options, else the launcher's variables, else a single node. */
static int resolve(struct job *j, char *err, size_t len)
{
	struct accept_args *a = j->a;
	struct ep_options o = {.nodes = a->nodes, .node_rank = a->node_rank, .master = a->master,
			       .local_nodes = a->local_nodes, .ranks_per_node = a->ranks_per_node};
	int rc = ep_cluster_resolve(&o, env_get, &j->cfg, err, len);
	if (rc && a->nodes < 0 && a->node_rank < 0 && !a->master) { /* nothing says there are other nodes */
		j->cfg = (struct ep_cluster_cfg){.nodes = 1, .ranks_per_node = a->ranks_per_node};
		rc = 0;
	}
	if (!rc && j->cfg.master_via_pmix)
		rc = ep_pmix_master(a->node_addr, a->timeout_s, j->cfg.master_host, sizeof(j->cfg.master_host), err, len);
	a->nodes = j->N = j->cfg.nodes;
	return rc;
}

int ep_accept_job(struct accept_args *a)
{
	struct job j = {.a = a, .listen_fd = -1};
	struct ep_step *steps = NULL;
	char err[EP_TEXT_MAX];
	int rc = resolve(&j, err, sizeof(err));
	if (rc)
		return fprintf(stderr, "epbench accept: %s\n", err), rc == -EP_EUSAGE ? EP_EXIT_USAGE : ep_error_exit_code(rc);
	if ((rc = ep_accept_load_shapes(a)) || (rc = ep_accept_check_shape(a)))
		return rc;
	if (a->reference && (rc = ep_accept_load_reference(a, &j.res.reference, err, sizeof(err))))
		return fprintf(stderr, "epbench accept: %s\n", err), rc;
	ssize_t n = readlink("/proc/self/exe", j.exe, sizeof(j.exe) - 1);
	j.exe[n > 0 ? n : 0] = 0;
	int max = 3 + j.N + j.N * (j.N - 1) / 2;
	steps = calloc((size_t)max, sizeof(*steps));
	j.res.r = calloc((size_t)max * (size_t)j.N, sizeof(*j.res.r));
	if (!steps || !j.res.r || n <= 0)
		return free(steps), free(j.res.r), fprintf(stderr, "epbench accept: out of memory\n"), EP_EXIT_ENV;
	j.res.steps = steps;
	j.res.nodes = j.N;
	j.res.nsteps = ep_accept_plan(a, steps, max);
	rc = a->local_nodes ? run_local(&j) : run_node(&j);
	for (int i = 0; i < max * j.N; i++)
		json_decref(j.res.r[i]);
	json_decref(j.res.reference);
	free(j.res.r);
	free(steps);
	return rc;
}
