/* node_job.c - one node's part of a cluster job: rendezvous, per-point roles, --local-nodes (see node_job.h). */
#define _GNU_SOURCE
#include "cli/cluster/node_job.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cluster/config.h"
#include "cli/cluster/endpoint.h"
#include "cli/cluster/env.h"
#include "cli/cluster/pmix.h"
#include "cli/cluster/node_result.h"
#include "cli/cluster/rendezvous.h"
#include "cli/cluster/state_share.h"
#include "cli/launcher.h"
#include "cli/sweep.h"
#include "collectives/error.h"

/* This node's part of the job, for the whole sweep. */
struct node_job {
	const struct ep_command *cmd;
	const struct ep_options *o;
	const char *cmdline;          /* the command as typed, for the report */
	struct ep_cluster_cfg cfg;
	int N, P, R, nd;              /* nodes, ranks per node, ranks, this node */
	int local_mode, listen_fd;    /* --local-nodes: all nodes here; node 0's rendezvous socket */
	const struct ep_transport_ops *ops;
	char text[4096];              /* the configuration every node must share */
	struct ep_cluster *cl;
	char fatal[EP_TEXT_MAX];      /* why the job ended early, for this node's last line */
};

/* One point's state while its ranks run. */
struct node_point {
	struct node_job *job;
	struct ep_node_ctx *ctx;
	int point;
	int addrs_sent, table_done;
	int remote;   /* the point ended because of another node (or node 0's order) */
	int asks;     /* node 0: state requests sent for this point */
	int answered; /* other nodes: the last request answered; -1 once the final share is sent */
};

static const char *me(const struct node_job *j)
{
	return j->cmd->name;
}

/* ---- before the first point ------------------------------------------- */

/* The transport: verbs when it works (auto), or the one forced. 0 or exit status. */
static int choose_transport(struct node_job *j, char *desc, size_t len)
{
	char why[160] = "";
	struct ep_transport_cfg probe = {.num_ranks = j->R, .ib_dev = j->o->ib_dev, .gid_index = j->o->gid_index};
	if (strcmp(j->o->transport, "auto") == 0) {
		j->ops = ep_transport_auto(&probe, why, sizeof(why));
		snprintf(desc, len, "%s (auto%s%s)", j->ops->name, why[0] ? "; verbs: " : "", why);
		return 0;
	}
	j->ops = ep_transport_find(j->o->transport);
	if (j->ops->probe(&probe, why, sizeof(why))) {
		fprintf(stderr, "epbench %s: node %d: --transport %s: %s\n", me(j), j->nd, j->o->transport, why);
		return EP_EXIT_ENV;
	}
	snprintf(desc, len, "%s (forced)", j->ops->name);
	return 0;
}

static int exit_of(int err)
{
	return err == -EP_EMISMATCH ? EP_EXIT_USAGE : ep_error_exit_code(err);
}

/* The runner's begin: transport, rendezvous, and the header's cluster line. */
static int node_begin(void *arg, char *transport, size_t tlen, char *where, size_t wlen)
{
	struct node_job *j = arg;
	char err[EP_TEXT_MAX], names[1024];
	int rc = choose_transport(j, transport, tlen);
	if (rc)
		return rc;
	ep_cluster_config_text(j->o, &j->cfg, j->ops->name, j->text, sizeof(j->text));
	if ((rc = ep_cluster_join(&j->cl, &j->cfg, j->text, j->o->timeout_s, j->listen_fd, j->o->node_addr, err,
				  sizeof(err)))) {
		fprintf(stderr, "epbench %s: node %d: %s\n", me(j), j->nd, err);
		return exit_of(rc);
	}
	const struct ep_node_info *info = ep_cluster_nodes(j->cl);
	size_t n = 0;
	names[0] = 0;
	for (int k = 0; k < j->N && n + 80 < sizeof(names); k++)
		n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%d=%s(%s)", k ? " " : "", k, info[k].host,
				      info[k].addr);
	snprintf(where, wlen, "%d nodes x %d ranks (%d ranks), nodes/rank from %s; master %s:%d from %s%s; nodes %s",
		 j->N, j->P, j->R, j->cfg.convention, j->cfg.master_host, j->cfg.master_port, j->cfg.master_from,
		 j->local_mode ? " (all nodes on this host, loopback)" : "", names);
	if (j->nd != 0 && !j->local_mode)
		printf("# epbench %s: node %d of %d on %s (%s), %d ranks, transport %s; nodes/rank from %s; master %s:%d from %s; node 0 prints the table\n",
		       me(j), j->nd, j->N, info[j->nd].host, info[j->nd].addr, j->P, transport, j->cfg.convention,
		       j->cfg.master_host, j->cfg.master_port, j->cfg.master_from);
	fflush(stdout);
	return 0;
}

/* ---- while a point's ranks run ------------------------------------------ */

/* Node 0: every node's addresses in, the table out. 1 once done. */
static int master_table(struct node_point *np)
{
	struct node_job *j = np->job;
	for (int k = 1; k < j->N; k++)
		if (!ep_cluster_addrs(j->cl, k, np->point, j->P))
			return 0;
	for (int k = 1; k < j->N; k++)
		memcpy(&np->ctx->addr[k * j->P], ep_cluster_addrs(j->cl, k, np->point, j->P),
		       sizeof(struct ep_transport_addr) * (size_t)j->P);
	ep_cluster_send_table(j->cl, np->point, np->ctx->addr, j->R);
	return 1;
}

/* Other nodes: the table in, once it arrived. 1 once done. */
static int worker_table(struct node_point *np)
{
	const struct ep_transport_addr *t = ep_cluster_table(np->job->cl, np->point, np->job->R);
	if (t)
		memcpy(np->ctx->addr, t, sizeof(*t) * (size_t)np->job->R);
	return t != NULL;
}

/* The supervisor's poll: serves the cluster, exchanges the ranks' addresses. */
static int node_poll(void *arg, char *msg, size_t len)
{
	struct node_point *np = arg;
	struct node_job *j = np->job;
	int rc = ep_cluster_pump(j->cl, 0, msg, len);
	if (rc) {
		np->remote = 1;
		return rc;
	}
	if (!np->addrs_sent && (int)atomic_load(&np->ctx->published.value) >= j->P) {
		if (j->nd != 0 && ep_cluster_send_addrs(j->cl, np->point, &np->ctx->addr[j->nd * j->P], j->P)) {
			np->remote = 1;
			return snprintf(msg, len, "lost node 0 (the master) while sending addresses"), EP_EXIT_TIMEOUT;
		}
		np->addrs_sent = 1;
	}
	if (np->addrs_sent && !np->table_done && (j->nd == 0 ? master_table(np) : worker_table(np))) {
		np->table_done = 1;
		ep_flag_store(&np->ctx->table_ready, 1);
	}
	return 0;
}

/* ---- the state block across nodes ---------------------------------------- */

#define STATE_DEADLINE_S 3.0

/* Node 0: has every other node sent a share for request ask (or its final one)? */
static int all_shared(struct node_job *j, int point, int ask, int num_ranks)
{
	for (int k = 1; k < j->N; k++) {
		int a;
		size_t len;
		const void *d = ep_cluster_state(j->cl, k, point, &a, &len);
		if (!d || !ep_state_share_valid(d, len, num_ranks) || (a != 0 && a < ask))
			return 0;
	}
	return 1;
}

/* Node 0: its own ranks' lines, then each answering node's; the nodes that
 * did not answer, named into missing. Fills the merged area and briefs. */
static void merge_shares(struct node_point *np, const struct ep_state_scene *sc, struct ep_traffic *merged,
			 struct ep_rank_brief *b, FILE *out, char *missing, size_t len)
{
	struct node_job *j = np->job;
	size_t at = 0;
	ep_state_rank_lines(out, sc->s, sc->kids, sc->n, sc->base, sc->op_names, sc->nops);
	missing[0] = 0;
	for (int k = 1; k < j->N; k++) {
		int a;
		size_t dlen;
		const void *d = ep_cluster_state(j->cl, k, np->point, &a, &dlen);
		if (d && ep_state_share_valid(d, dlen, merged->num_ranks))
			ep_state_share_merge(d, merged, b, out);
		else if (at + 16 < len)
			at += (size_t)snprintf(missing + at, len - at, "%s%d", at ? ", " : "", k);
	}
}

/* Node 0: asks every other node for its share, waits for them (at most
 * STATE_DEADLINE_S), prints one block over the whole job. */
static void master_state(struct node_point *np, const char *why, const struct ep_state_scene *sc, FILE *out,
			 char *buf, size_t len)
{
	struct node_job *j = np->job;
	int R = sc->traffic->num_ranks, ask = ++np->asks;
	ep_cluster_ask_state(j->cl, np->point, ask);
	int64_t deadline = ep_now_ns() + (int64_t)(STATE_DEADLINE_S * 1e9);
	while (!all_shared(j, np->point, ask, R) && ep_now_ns() < deadline && ep_cluster_serve(j->cl, 20) == 0)
		;
	struct ep_traffic *merged = ep_state_share_copy(sc->traffic);
	struct ep_rank_brief *b = calloc((size_t)R, sizeof(*b));
	if (!merged || !b) {
		free(merged);
		free(b);
		ep_state_local(out, sc, why, buf, len);
		return;
	}
	char missing[160], likely[1024];
	ep_state_briefs(sc->s, sc->kids, sc->n, sc->base, sc->traffic, b);
	fprintf(out, "# state of %d ranks on %d nodes (%s; gathered by node 0):\n", R, j->N, why);
	ep_state_header_columns(out);
	merge_shares(np, sc, merged, b, out, missing, sizeof(missing));
	if (missing[0])
		fprintf(out, "# node%s %s did not answer within %.1f s: %s ranks are unknown\n",
			strchr(missing, ',') ? "s" : "", missing, STATE_DEADLINE_S, strchr(missing, ',') ? "their" : "its");
	struct ep_traffic_view v = {merged, b, j->P, 1};
	ep_state_tail(out, sc->s, sc->kids, sc->n, sc->base, &v, likely, sizeof(likely));
	ep_state_summary(sc->s, sc->kids, sc->n, sc->base, &v, buf, len);
	size_t at = strlen(buf);
	if (missing[0] && at + 40 < len)
		snprintf(buf + at, len - at, "; no answer from node%s %s", strchr(missing, ',') ? "s" : "", missing);
	free(merged);
	free(b);
}

/* Other nodes: the share, when node 0 asked for it (why NULL) or when this
 * node's point ends (sent unasked, once); this node's own block only when
 * node 0 cannot be told, or on a SIGUSR1 sent to this node itself. */
static void worker_state(struct node_point *np, const char *why, int ending, const struct ep_state_scene *sc,
			 FILE *out, char *buf, size_t len)
{
	struct node_job *j = np->job;
	int ask = ep_cluster_state_asked(j->cl, np->point);
	if (why && !ending) { /* SIGUSR1 to this node: its own block, the run goes on */
		ep_state_local(out, sc, why, buf, len);
		return;
	}
	if (np->answered < 0 || (!why && ask <= np->answered))
		return;
	size_t dlen;
	void *d = ep_state_share_pack(sc, &dlen);
	int sent = d && ep_cluster_send_state(j->cl, np->point, why ? 0 : ask, d, dlen) == 0;
	free(d);
	np->answered = why ? -1 : ask;
	if (why && !sent) /* node 0 prints the block over the job; unreachable, this node prints its own */
		ep_state_local(out, sc, why, buf, len);
}

/* The supervisor's state hook (cli/supervise.h). */
static void node_state(void *arg, const char *why, int ending, const struct ep_state_scene *sc, FILE *out,
		       char *buf, size_t len)
{
	struct node_point *np = arg;
	if (np->job->nd != 0)
		worker_state(np, why, ending, sc, out, buf, len);
	else if (why && sc->traffic)
		master_state(np, why, sc, out, buf, len);
	else if (why)
		ep_state_local(out, sc, why, buf, len);
}

/* ---- after a point: each node's role ------------------------------------- */

/* Waits (serving the cluster) until fetch says done, another node ends the
 * job, or a signal: 0, or an exit status with msg. */
static int wait_for(struct node_job *j, int (*fetch)(struct node_job *, int, void *), int point, void *out,
		    char *msg, size_t len)
{
	for (;;) {
		if (fetch(j, point, out))
			return 0;
		int rc = ep_cluster_pump(j->cl, 100, msg, len);
		if (rc) /* what we wait for may have come with the news (node 0 closes after its verdict) */
			return fetch(j, point, out) ? 0 : rc;
		if (ep_launcher_interrupted())
			return snprintf(msg, len, "interrupted by signal %d", ep_launcher_interrupted()), EP_EXIT_TIMEOUT;
	}
}

static int fetch_verdict(struct node_job *j, int point, void *out)
{
	return ep_cluster_done(j->cl, point, out);
}

/* What node 0 waits for after a point: every node's result, of this size. */
struct results_in {
	const char *blobs[EP_MAX_NODES];
	size_t want;
};

static int fetch_results(struct node_job *j, int point, void *out)
{
	struct results_in *in = out;
	int have = 1;
	for (int k = 1; k < j->N; k++) {
		size_t got = 0;
		in->blobs[k] = ep_cluster_result(j->cl, k, point, &got);
		have &= in->blobs[k] && got == in->want;
	}
	return have;
}

/* Other nodes: the results to node 0 (or the failure), then node 0's verdict. */
static void report(struct node_point *np, const struct ep_run *run, struct ep_launch_opts *lo,
		   struct ep_run_result *res)
{
	struct node_job *j = np->job;
	char msg[EP_TEXT_MAX];
	int code = res->exit_code, ok = code == EP_EXIT_OK || code == EP_EXIT_WRONG, verdict = code;
	if (!ok) {
		if (!np->remote)
			ep_cluster_send_fail(j->cl, code, res->message);
		return;
	}
	size_t len;
	char *blob = ep_node_result_pack(j->cmd->variant, run, j->P, res, &lo->raw, np->ctx->figures, &len);
	int rc = blob ? ep_cluster_send_result(j->cl, np->point, blob, len) : -ENOMEM;
	free(blob);
	if (rc) {
		res->exit_code = EP_EXIT_TIMEOUT;
		snprintf(res->message, sizeof(res->message), "lost node 0 (the master) while sending results");
		return;
	}
	if ((rc = wait_for(j, fetch_verdict, np->point, &verdict, msg, sizeof(msg)))) {
		verdict = rc;
		snprintf(res->message, sizeof(res->message), "%s", msg);
	}
	res->exit_code = verdict;
}

/* Node 0, when its own ranks failed: the job ends on every node. */
static void abort_job(struct node_point *np, struct ep_run_result *res)
{
	if (!np->remote) { /* say where it happened; other nodes' messages already do */
		char where[EP_TEXT_MAX];
		snprintf(where, sizeof(where), "node 0: %.*s", EP_TEXT_MAX - 16, res->message);
		snprintf(res->message, sizeof(res->message), "%s", where);
	}
	ep_cluster_abort(np->job->cl, res->exit_code, res->message);
}

/* Node 0, when its ranks passed: every node's results, the job's result
 * and verdict (or the first failure, which ends the job). */
static void gather(struct node_point *np, const struct ep_run *run, struct ep_launch_opts *lo,
		   struct ep_run_result *res)
{
	struct node_job *j = np->job;
	struct results_in in = {.want = 0};
	char msg[EP_TEXT_MAX];
	struct ep_run_result mine = *res;
	char *myblob = ep_node_result_pack(j->cmd->variant, run, j->P, &mine, &lo->raw, np->ctx->figures, &in.want);
	int code = myblob ? wait_for(j, fetch_results, np->point, &in, msg, sizeof(msg)) : EP_EXIT_ENV;
	const char **blobs = in.blobs;
	memset(res, 0, sizeof(*res));
	blobs[0] = myblob;
	if (!code && ep_node_result_aggregate(j->cmd->variant, run, j->N, j->P, ep_cluster_nodes(j->cl), blobs, res))
		code = EP_EXIT_ENV, snprintf(msg, sizeof(msg), "out of memory aggregating results");
	if (!myblob)
		snprintf(msg, sizeof(msg), "out of memory");
	if (code) {
		res->exit_code = code;
		snprintf(res->message, sizeof(res->message), "%s", msg);
		ep_cluster_abort(j->cl, code, msg);
	} else {
		int worst = res->wrong_elems ? EP_EXIT_WRONG : EP_EXIT_OK;
		for (int k = 0; k < j->N; k++)
			worst = ep_exit_worse(worst, ep_node_result_code(blobs[k]));
		res->exit_code = worst;
		res->wall_s = mine.wall_s;
		ep_cluster_send_done(j->cl, np->point, worst);
	}
	free(myblob);
}

/* The node's shared context of a point, mapped before its ranks fork. */
static struct ep_node_ctx *map_ctx(const struct node_job *j, int point)
{
	struct ep_node_ctx *ctx = mmap(NULL, sizeof(*ctx), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctx == MAP_FAILED)
		return NULL;
	memset(ctx, 0, sizeof(*ctx));
	ctx->nodes = j->N;
	ctx->per_node = j->P;
	ctx->node = j->nd;
	snprintf(ctx->host, sizeof(ctx->host), "%s", ep_cluster_nodes(j->cl)[j->nd].addr);
	ctx->ops = j->ops;
	snprintf(ctx->ib_dev, sizeof(ctx->ib_dev), "%s", j->o->ib_dev ? j->o->ib_dev : "");
	ctx->gid_index = j->o->gid_index;
	ctx->job_id = ep_config_hash(j->text) ^ (uint64_t)point;
	return ctx;
}

/* How many nodes before this one run on the same host (same name: the
 * nodes of --local-nodes, or network namespaces of one machine). Their
 * ranks take the CPUs after theirs, not the same ones: pinned by local
 * rank alone, 2 nodes x 1 rank on one host shared one CPU and left the
 * other idle. */
static int host_slot(const struct node_job *j)
{
	const struct ep_node_info *info = ep_cluster_nodes(j->cl);
	int slot = 0;
	for (int k = 0; k < j->nd; k++)
		slot += strcmp(info[k].host, info[j->nd].host) == 0;
	return slot;
}

/* The runner's run: one point on this node, then this node's role. */
static int node_run(void *arg, int index, struct ep_run *run, struct ep_launch_opts *lo, struct ep_run_result *res)
{
	struct node_job *j = arg;
	struct node_point np = {.job = j, .point = index, .ctx = map_ctx(j, index)};
	if (!np.ctx) {
		memset(res, 0, sizeof(*res));
		snprintf(res->message, sizeof(res->message), "mapping the node context failed: %s", strerror(errno));
		return res->exit_code = EP_EXIT_ENV;
	}
	lo->num_local = j->P;
	lo->rank_base = j->nd * j->P;
	lo->cpu_base = host_slot(j) * j->P;
	lo->variant_ctx = np.ctx;
	lo->watch.poll = node_poll;
	lo->watch.state = node_state;
	lo->watch.arg = &np;
	lo->keep_raw = 1;
	if (j->nd != 0)
		lo->watch.tick = NULL; /* node 0 shows the progress */
	int code = ep_launch(j->cmd->variant, run, lo, res);
	if (j->nd != 0)
		report(&np, run, lo, res);
	else if (code != EP_EXIT_OK && code != EP_EXIT_WRONG)
		abort_job(&np, res);
	else
		gather(&np, run, lo, res);
	ep_raw_free(&lo->raw);
	munmap(np.ctx, sizeof(*np.ctx));
	ep_cluster_forget(j->cl, index);
	if (res->exit_code != EP_EXIT_OK && res->exit_code != EP_EXIT_WRONG)
		snprintf(j->fatal, sizeof(j->fatal), "%s", res->message);
	return res->exit_code;
}

/* The runner's end: other nodes say their verdict (node 0 printed the table). */
static void node_end(void *arg, int done, int code)
{
	struct node_job *j = arg;
	if (j->nd != 0 && j->fatal[0])
		fprintf(stderr, "epbench %s: node %d: %s\n", me(j), j->nd, j->fatal);
	if (j->nd != 0 && !j->local_mode)
		printf("# node %d: verdict %s (%d point%s); node 0 has the table\n", j->nd, ep_verdict_name(code), done,
		       done == 1 ? "" : "s");
	ep_cluster_close(j->cl);
	j->cl = NULL;
}

/* This node's sweep. */
static int run_node(struct node_job *j)
{
	struct ep_sweep_runner r = {
		.ctx = j, .reporter = j->nd == 0, .fixed_ranks = j->R, .nodes = j->N, .ranks_here = j->P,
		.stop_on_failure = 1, .begin = node_begin, .run = node_run, .end = node_end,
	};
	return ep_sweep_run(j->cmd, j->o, &r, j->cmdline);
}

/* ---- --local-nodes ---------------------------------------------------- */

/* Waits for the node processes. A signal to this process alone (kill PID,
 * not the group) is passed on to every node, which stops as on Ctrl-C; a
 * Ctrl-C reaches them anyway and the second copy is harmless. The job's
 * status is node 0's (it has the whole job's verdict), else the most
 * severe node's. */
static int wait_nodes(const pid_t *pids, int nodes)
{
	int code = EP_EXIT_OK, node0 = EP_EXIT_OK, forwarded = 0, left = nodes;
	int done[EP_MAX_NODES] = {0};
	while (left > 0) {
		if (ep_launcher_interrupted() && !forwarded) {
			for (int k = 0; k < nodes; k++)
				if (!done[k])
					kill(pids[k], ep_launcher_interrupted());
			forwarded = 1;
		}
		if (ep_launcher_state_requested() && !done[0]) /* SIGUSR1: node 0 gathers the block */
			kill(pids[0], SIGUSR1);
		for (int k = 0; k < nodes; k++) {
			int st;
			if (done[k] || waitpid(pids[k], &st, WNOHANG) <= 0)
				continue;
			done[k] = 1, left--;
			int c = WIFEXITED(st) ? WEXITSTATUS(st) : EP_EXIT_TIMEOUT;
			if (k == 0)
				node0 = c;
			code = ep_exit_worse(code, c);
		}
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return node0 != EP_EXIT_OK ? node0 : code;
}

static int local_node(void *ctx, int k, int fd)
{
	struct node_job *j = ctx;
	j->nd = j->cfg.node_rank = k;
	j->listen_fd = fd;
	return run_node(j);
}

/* --local-nodes: every node as a child process of this one, over loopback. */
static int run_local(struct node_job *j)
{
	char err[EP_TEXT_MAX];
	pid_t pids[EP_MAX_NODES];
	int fd = ep_cluster_local_listener(&j->cfg.master_port, err, sizeof(err));
	if (fd < 0)
		return fprintf(stderr, "epbench %s: %s\n", me(j), err), EP_EXIT_ENV;
	ep_launcher_catch_signals(); /* before fork: the nodes keep it */
	int rc = ep_cluster_fork_nodes(j->N, fd, local_node, j, pids, err, sizeof(err));
	close(fd);
	if (rc)
		return fprintf(stderr, "epbench %s: %s\n", me(j), err), EP_EXIT_ENV;
	return wait_nodes(pids, j->N);
}

static const char *env_get(const char *name)
{
	return getenv(name);
}

int ep_node_job_main(const struct ep_command *cmd, struct ep_options *o, const char *cmdline)
{
	struct node_job j = {.cmd = cmd, .o = o, .cmdline = cmdline, .listen_fd = -1};
	char err[EP_TEXT_MAX];
	int rc;
	if (o->ranks.n > 1)
		rc = -EP_EUSAGE, snprintf(err, sizeof(err), "--num-ranks cannot be swept across nodes; sweep --num-tokens or --hidden");
	else
		rc = ep_cluster_resolve(o, env_get, &j.cfg, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "epbench %s: %s\n", cmd->name, err);
		return EP_EXIT_USAGE;
	}
	if (j.cfg.master_via_pmix && (rc = ep_pmix_master(o->node_addr, o->timeout_s, j.cfg.master_host,
							sizeof(j.cfg.master_host), err, sizeof(err)))) {
		fprintf(stderr, "epbench %s: node %d: %s\n", cmd->name, j.cfg.node_rank, err);
		return ep_error_exit_code(rc);
	}
	j.N = j.cfg.nodes, j.P = j.cfg.ranks_per_node, j.R = j.N * j.P, j.nd = j.cfg.node_rank;
	j.local_mode = o->local_nodes;
	o->ranks_per_node = j.P;
	ep_options_set_world(o, j.R); /* a parallel configuration resolves for the job's world */
	struct ep_command chosen;
	j.cmd = cmd = ep_command_for(cmd, o, &chosen);
	/* every point checked before anyone meets (with --local-nodes, before the nodes fork) */
	if ((rc = ep_sweep_check(cmd, o, j.R, j.N, j.local_mode ? j.R : j.P, j.nd == 0, err, sizeof(err)))) {
		fprintf(stderr, "epbench %s: %s%s\n", cmd->name, rc == EP_EXIT_ENV ? "this host: " : "", err);
		return rc;
	}
	return j.local_mode ? run_local(&j) : run_node(&j);
}
