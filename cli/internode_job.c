/* internode_job.c - one node's part of a cluster job: `epbench internode`, `epbench low-latency --nodes`.
 *
 * Every node runs this. Its launcher maps the node arena and a small shared
 * context (addresses, per-rank figures), forks its ranks through
 * ep_launch_node, and meanwhile serves the cluster connections from the
 * supervision hook: it forwards its ranks' transport addresses to node 0 and
 * hands them the full table, relays failures, and ends the point when another
 * node fails. Each node then sends its raw per-rank results to node 0, which
 * prints the one table and verdict of the job; the other nodes print a short
 * line and exit with the job's status. The variant the ranks run comes
 * from the subcommand's struct ep_node_job (cli/node_job.h): internode's is
 * in internode_bench.c, low-latency's in low_latency_bench.c.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/bench.h"
#include "cli/cluster.h"
#include "cli/hostinfo.h"
#include "cli/launcher.h"
#include "cli/node_job.h"
#include "collectives/error.h"
#include "reports/report.h"

/* Supervision-hook state of one point. */
struct node_point {
	struct ep_cluster *cl;
	struct node_ctx *ctx;
	const struct ep_variant *v;  /* what the ranks run */
	int point, nodes, node, P;
	int addrs_sent, table_done;
	int remote;  /* the point ended because of another node (or node 0's order) */
};

/* ADDRS/TABLE payload: int32 point, then addresses. */
static int node_poll(void *arg, char *msg, size_t len)
{
	struct node_point *np = arg;
	struct node_ctx *ctx = np->ctx;
	int rc = ep_cluster_pump(np->cl, 0, msg, len);
	if (rc) {
		np->remote = 1;
		return rc;
	}
	size_t one = sizeof(struct ep_transport_addr);
	if (!np->addrs_sent && (int)atomic_load(&ctx->published.value) >= np->P) {
		if (np->node != 0) {
			size_t plen = 4 + one * (size_t)np->P;
			char *buf = malloc(plen);
			if (!buf)
				return snprintf(msg, len, "out of memory"), EP_EXIT_ENV;
			memcpy(buf, &np->point, 4);
			memcpy(buf + 4, &ctx->addr[np->node * np->P], one * (size_t)np->P);
			rc = ep_cluster_send(np->cl, 0, EP_MSG_ADDRS, buf, plen);
			free(buf);
			if (rc) {
				np->remote = 1;
				return snprintf(msg, len, "lost node 0 (the master) while sending addresses"),
				       EP_EXIT_TIMEOUT;
			}
		}
		np->addrs_sent = 1;
	}
	if (np->table_done || !np->addrs_sent)
		return 0;
	if (np->node == 0) {
		for (int k = 1; k < np->nodes; k++) {
			size_t got;
			const char *a = ep_cluster_received(np->cl, k, EP_MSG_ADDRS, np->point, &got);
			if (!a || got != 4 + one * (size_t)np->P)
				return 0;
		}
		for (int k = 1; k < np->nodes; k++) {
			const char *a = ep_cluster_received(np->cl, k, EP_MSG_ADDRS, np->point, NULL);
			memcpy(&ctx->addr[k * np->P], a + 4, one * (size_t)np->P);
		}
		size_t R = (size_t)np->nodes * (size_t)np->P, plen = 4 + one * R;
		char *buf = malloc(plen);
		if (!buf)
			return snprintf(msg, len, "out of memory"), EP_EXIT_ENV;
		memcpy(buf, &np->point, 4);
		memcpy(buf + 4, ctx->addr, one * R);
		ep_cluster_broadcast(np->cl, EP_MSG_TABLE, buf, plen);
		free(buf);
	} else {
		size_t got, R = (size_t)np->nodes * (size_t)np->P;
		const char *t = ep_cluster_received(np->cl, 0, EP_MSG_TABLE, np->point, &got);
		if (!t || got != 4 + one * R)
			return 0;
		memcpy(ctx->addr, t + 4, one * R);
	}
	np->table_done = 1;
	ep_flag_store(&ctx->table_ready, 1);
	return 0;
}

/* RESULT payload: header, then results [P], times [P][nops][iters], wrong [P][R], figures [P]. */
struct result_hdr {
	int32_t point, code, nlocal;
	char message[EP_TEXT_MAX];
	double wall_s;
};

static size_t result_bytes(int P, int R, int nops, int iters)
{
	return sizeof(struct result_hdr) + (size_t)P * sizeof(struct ep_rank_result) +
	       (size_t)P * nops * iters * sizeof(double) + (size_t)P * R * sizeof(uint64_t) +
	       (size_t)P * sizeof(struct rank_figures);
}

static char *pack_result(const struct node_point *np, const struct ep_run *run,
			 const struct ep_node_hooks *hk, const struct ep_run_result *res, size_t *len)
{
	int P = np->P, R = run->shape.num_ranks, nops = np->v->nops, it = run->opt->iters;
	*len = result_bytes(P, R, nops, it);
	char *buf = calloc(1, *len), *p = buf;
	if (!buf)
		return NULL;
	struct result_hdr h = {.point = np->point, .code = res->exit_code, .nlocal = P, .wall_s = res->wall_s};
	snprintf(h.message, sizeof(h.message), "%s", res->message);
	memcpy(p, &h, sizeof(h));
	p += sizeof(h);
	memcpy(p, hk->results, (size_t)P * sizeof(struct ep_rank_result));
	p += (size_t)P * sizeof(struct ep_rank_result);
	memcpy(p, hk->times, (size_t)P * nops * it * sizeof(double));
	p += (size_t)P * nops * it * sizeof(double);
	memcpy(p, hk->wrong, (size_t)P * R * sizeof(uint64_t));
	p += (size_t)P * R * sizeof(uint64_t);
	memcpy(p, np->ctx->figures, (size_t)P * sizeof(struct rank_figures));
	return buf;
}

/* Node 0: the job's result of one point from every node's raw blocks. */
static int aggregate(struct ep_cluster *cl, const struct ep_variant *v, const struct ep_run *run,
		     int nodes, int P, const char *const *blobs, struct ep_run_result *res)
{
	int R = run->shape.num_ranks, nops = v->nops, it = run->opt->iters;
	struct ep_rank_result *rr = calloc((size_t)R, sizeof(*rr));
	double *times = calloc((size_t)R * nops * it + 1, sizeof(double));
	uint64_t *wrong = calloc((size_t)R * R + 1, sizeof(uint64_t));
	struct rank_figures *fg = calloc((size_t)R, sizeof(*fg));
	res->nodes = calloc((size_t)nodes, sizeof(*res->nodes));
	res->links = calloc((size_t)nodes * nodes + 1, sizeof(*res->links));
	if (!rr || !times || !wrong || !fg || !res->nodes || !res->links) {
		free(rr), free(times), free(wrong), free(fg);
		return -ENOMEM;
	}
	for (int k = 0; k < nodes; k++) {
		const char *p = blobs[k] + sizeof(struct result_hdr);
		memcpy(rr + k * P, p, (size_t)P * sizeof(*rr));
		p += (size_t)P * sizeof(*rr);
		memcpy(times + (size_t)k * P * nops * it, p, (size_t)P * nops * it * sizeof(double));
		p += (size_t)P * nops * it * sizeof(double);
		memcpy(wrong + (size_t)k * P * R, p, (size_t)P * R * sizeof(uint64_t));
		p += (size_t)P * R * sizeof(uint64_t);
		memcpy(fg + k * P, p, (size_t)P * sizeof(*fg));
	}
	ep_launch_collect(v, run, rr, times, wrong, res);
	res->num_ranks = R;
	res->num_nodes = nodes;
	const struct ep_node_info *info = ep_cluster_nodes(cl);
	for (int k = 0; k < nodes; k++) {
		struct ep_node_result *nr = &res->nodes[k];
		snprintf(nr->host, sizeof(nr->host), "%s", info[k].host);
		nr->ranks = P;
		for (int i = 0; i < nops; i++)
			for (int g = 0; g < P; g++) {
				int q = k * P + g;
				if (res->ops[i].rank_median_us && res->ops[i].rank_median_us[q] > nr->median_us[i])
					nr->median_us[i] = res->ops[i].rank_median_us[q];
				nr->rdma_bytes[i] += fg[q].rdma_bytes[i];
				nr->wire_bytes[i] += fg[q].wire_bytes[i];
				nr->nvl_bytes[i] += fg[q].nvl_bytes[i];
			}
	}
	for (int a = 0; a < nodes; a++)
		for (int b = 0; b < nodes; b++) {
			if (a == b)
				continue;
			struct ep_link_result *l = &res->links[res->num_links++];
			l->src = a;
			l->dst = b;
			for (int i = 0; i < nops; i++) {
				for (int g = 0; g < P; g++) {
					l->bytes[i] += fg[a * P + g].link_bytes[i][b];
					if (fg[b * P + g].arrival_us[i][a] > l->arrival_us[i])
						l->arrival_us[i] = fg[b * P + g].arrival_us[i][a];
				}
				l->gbs[i] = l->arrival_us[i] > 0 ? (double)l->bytes[i] / l->arrival_us[i] / 1e3 : 0;
			}
		}
	free(rr), free(times), free(wrong), free(fg);
	return 0;
}

static void send_code(struct ep_cluster *cl, int node, enum ep_msg type, int code, const char *msg)
{
	size_t n = strlen(msg) + 1;
	char *buf = malloc(4 + n);
	if (!buf)
		return;
	int32_t c = code;
	memcpy(buf, &c, 4);
	memcpy(buf + 4, msg, n);
	if (node < 0)
		ep_cluster_broadcast(cl, type, buf, 4 + n);
	else
		ep_cluster_send(cl, node, type, buf, 4 + n);
	free(buf);
}

static volatile sig_atomic_t stop_signal;
static void on_stop(int sig)
{
	stop_signal = sig;
	ep_launcher_interrupt(sig);
}

static const char *env_get(const char *name)
{
	return getenv(name);
}

static int exit_of(int err)
{
	return err == -EP_EMISMATCH ? EP_EXIT_USAGE : ep_error_exit_code(err);
}

/* Group-limited routing as DeepEP's test_internode: groups are nodes,
 * num_topk_groups defaults to min(nodes, 4). */
static void internode_routing(struct ep_options *o, int nodes)
{
	if (!o->num_groups)
		o->num_groups = nodes;
	if (!o->num_topk_groups)
		o->num_topk_groups = nodes < 4 ? nodes : 4;
	o->routing.num_groups = o->num_groups;
	o->routing.num_topk_groups = o->num_topk_groups;
}

static void joined_names(char *buf, size_t len, const struct ep_node_info *info, int nodes)
{
	size_t n = 0;
	buf[0] = 0;
	for (int k = 0; k < nodes && n + 80 < len; k++)
		n += (size_t)snprintf(buf + n, len - n, "%s%d=%s(%s)", k ? " " : "", k, info[k].host,
				      info[k].addr);
}

/* Every point of the job checked before anyone meets, once per process
 * (with --local-nodes, before the nodes fork): shapes, report paths (node
 * 0 writes them), and whether this host's share fits. Returns 0 or the
 * exit status, having printed one line. */
static int check_job(const struct ep_node_job *job, struct ep_options *o, const struct ep_cluster_cfg *cfg,
		     const char *me)
{
	int N = cfg->nodes, P = cfg->ranks_per_node, R = N * P;
	char err[EP_TEXT_MAX];
	struct ep_options prepared = *o; /* run_node prepares its own copy */
	prepared.ranks_per_node = P;
	if (job->prepare)
		job->prepare(&prepared, N);
	const struct ep_variant *variant = job->variant(&prepared);
	for (int pass = 0; pass < 2; pass++)
		for (int b = 0; b < o->tokens.n; b++)
			for (int c = 0; c < o->hidden.n; c++) {
				struct ep_run probe = {.opt = &prepared, .routing = prepared.routing};
				ep_options_shape(&prepared, R, o->tokens.v[b], o->hidden.v[c], &probe.shape);
				/* usage errors of every point first, then what the machine can take */
				int here = o->local_nodes ? R : P; /* --local-nodes: every node's ranks here */
				if (pass == 0 && ep_options_check_shape(&prepared, &probe.shape, err, sizeof(err)))
					return fprintf(stderr, "%s: %s\n", me, err), EP_EXIT_USAGE;
				if (pass == 0 && b + c == 0 && cfg->node_rank == 0 &&
				    ep_options_check_outputs(o, err, sizeof(err)))
					return fprintf(stderr, "%s: %s\n", me, err), EP_EXIT_USAGE;
				if (pass == 1 && ep_launch_precheck(variant, &probe, here, err, sizeof(err)))
					return fprintf(stderr, "%s: node %d: %s\n", me, cfg->node_rank, err), EP_EXIT_ENV;
			}
	return 0;
}

/* Runs this node's part of the whole job; returns the process exit status. */
static int run_node(const struct ep_node_job *job, struct ep_options *o, struct ep_cluster_cfg *cfg,
		    int listen_fd, int local_mode, const char *cmdline)
{
	char me[64];
	snprintf(me, sizeof(me), "epbench %s", job->command);
	int N = cfg->nodes, P = cfg->ranks_per_node, R = N * P, nd = cfg->node_rank;
	char err[EP_TEXT_MAX], why[160] = "", transport_desc[200];
	o->ranks_per_node = P;
	if (job->prepare)
		job->prepare(o, N);
	const struct ep_variant *variant = job->variant(o);
	struct ep_transport_cfg probe_cfg = {.num_ranks = R, .ib_dev = o->ib_dev, .gid_index = o->gid_index};
	const struct ep_transport_ops *ops;
	if (strcmp(o->transport, "auto") == 0) {
		ops = ep_transport_auto(&probe_cfg, why, sizeof(why));
		snprintf(transport_desc, sizeof(transport_desc), "%s (auto%s%s)", ops->name,
			 why[0] ? "; verbs: " : "", why);
	} else {
		ops = ep_transport_find(o->transport);
		if (ops->probe(&probe_cfg, why, sizeof(why))) {
			fprintf(stderr, "%s: node %d: --transport %s: %s\n", me, nd, o->transport, why);
			return EP_EXIT_ENV;
		}
		snprintf(transport_desc, sizeof(transport_desc), "%s (forced)", ops->name);
	}
	char text[4096];
	ep_cluster_config_text(o, cfg, ops->name, text, sizeof(text));
	struct ep_cluster *cl = NULL;
	int rc = ep_cluster_join(&cl, cfg, text, ops->name, o->timeout_s, listen_fd, o->node_addr, err,
				 sizeof(err));
	if (rc) {
		fprintf(stderr, "%s: node %d: %s\n", me, nd, err);
		return exit_of(rc);
	}
	const struct ep_node_info *info = ep_cluster_nodes(cl);
	char names[1024], routing[300], extra[300];
	joined_names(names, sizeof(names), info, N);
	job->describe(o, routing, sizeof(routing), extra, sizeof(extra));
	struct ep_hostinfo h;
	ep_hostinfo_read(&h);
	char cluster_line[1800];
	snprintf(cluster_line, sizeof(cluster_line),
		 "%d nodes x %d ranks (%d ranks), nodes/rank from %s; master %s:%d from %s%s; nodes %s%s%s", N, P,
		 R, cfg->convention, cfg->master_host, cfg->master_port, cfg->master_from,
		 local_mode ? " (all nodes on this host, loopback)" : "", names, extra[0] ? "; " : "", extra);
	int copy_threads = P < h.cores ? P : h.cores;
	struct ep_report_meta meta = {
		.command = job->command, .version = EP_VERSION, .command_line = cmdline,
		.dtype = ep_dtype_name(o->dtype), .num_topk = o->num_topk, .num_experts = o->num_experts,
		.routing = routing, .masked_ratio = o->routing.masked_ratio, .seed = o->seed,
		.iters = o->iters, .warmup = o->warmup, .check = o->check, .cached = o->cached,
		.num_bias = o->num_bias, .timeout_s = o->timeout_s, .transport = transport_desc,
		.hostname = h.hostname, .cpu_model = h.cpu_model, .cores = h.cores,
		.numa_nodes = h.numa_nodes, .mem_total = h.mem_total, .variant_options = cluster_line,
		.copy_gbs = nd == 0 ? ep_host_copy_gbs(copy_threads) : 0, .copy_threads = copy_threads,
	};
	FILE *out = stdout;
	if (nd == 0) {
		ep_table_header(out, &meta, o->quiet);
	} else if (!local_mode) {
		printf("# %s: node %d of %d on %s (%s), %d ranks, transport %s; nodes/rank from %s; master %s:%d from %s; node 0 prints the table\n",
		       me, nd, N, info[nd].host, info[nd].addr, P, transport_desc, cfg->convention,
		       cfg->master_host, cfg->master_port, cfg->master_from);
	}
	fflush(stdout);

	struct sigaction sa = {.sa_handler = on_stop};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	int npts = o->tokens.n * o->hidden.n, done = 0, job_code = EP_EXIT_OK;
	struct ep_point *pts = calloc((size_t)npts, sizeof(*pts));
	char fatal[EP_TEXT_MAX] = "", report_error[EP_TEXT_MAX] = "";
	for (int pi = 0; pts && pi < npts && !stop_signal; pi++) {
		int tokens = o->tokens.v[pi / o->hidden.n], hidden = o->hidden.v[pi % o->hidden.n];
		struct ep_run run = {.opt = o, .routing = o->routing};
		ep_options_shape(o, R, tokens, hidden, &run.shape);
		struct node_ctx *ctx = mmap(NULL, sizeof(*ctx), PROT_READ | PROT_WRITE,
					    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (ctx == MAP_FAILED) {
			snprintf(fatal, sizeof(fatal), "mapping the node context failed: %s", strerror(errno));
			job_code = EP_EXIT_ENV;
			break;
		}
		memset(ctx, 0, sizeof(*ctx));
		ctx->nodes = N;
		ctx->per_node = P;
		ctx->node = nd;
		snprintf(ctx->host, sizeof(ctx->host), "%s", info[nd].addr);
		ctx->ops = ops;
		snprintf(ctx->ib_dev, sizeof(ctx->ib_dev), "%s", o->ib_dev ? o->ib_dev : "");
		ctx->gid_index = o->gid_index;
		ctx->job_id = ep_config_hash(text) ^ (uint64_t)pi;
		struct node_point np = {.cl = cl, .ctx = ctx, .v = variant, .point = pi, .nodes = N, .node = nd,
					.P = P};
		struct ep_node_hooks hk = {.num_local = P, .rank_base = nd * P, .variant_ctx = ctx,
					   .poll = node_poll, .arg = &np};
		struct ep_run_result mine;
		int code = ep_launch_node(variant, &run, &hk, &mine);
		int ok = code == EP_EXIT_OK || code == EP_EXIT_WRONG;
		char msg[EP_TEXT_MAX];
		pts[pi] = (struct ep_point){R, tokens, hidden, {0}};
		struct ep_run_result *res = &pts[pi].res;
		if (nd != 0) {
			/* report to node 0, then wait for its verdict on the point */
			if (ok) {
				size_t len;
				char *blob = pack_result(&np, &run, &hk, &mine, &len);
				if (!blob || ep_cluster_send(cl, 0, EP_MSG_RESULT, blob, len)) {
					ok = 0;
					code = EP_EXIT_TIMEOUT;
					snprintf(mine.message, sizeof(mine.message), "lost node 0 (the master) while sending results");
				}
				free(blob);
			} else if (!np.remote) {
				char line[EP_TEXT_MAX];
				snprintf(line, sizeof(line), "%s", mine.message);
				send_code(cl, 0, EP_MSG_FAIL, code, line);
			}
			int32_t verdict = code;
			while (ok) {
				int prc = ep_cluster_pump(cl, 100, msg, sizeof(msg));
				if (prc) {
					verdict = prc;
					snprintf(mine.message, sizeof(mine.message), "%s", msg);
					ok = 0;
					break;
				}
				const char *d = ep_cluster_received(cl, 0, EP_MSG_DONE, pi, NULL);
				if (d) {
					memcpy(&verdict, d + 4, 4);
					break;
				}
				if (stop_signal) {
					ok = 0;
					verdict = EP_EXIT_TIMEOUT;
					snprintf(mine.message, sizeof(mine.message), "interrupted by signal %d", (int)stop_signal);
				}
			}
			res->exit_code = verdict;
			snprintf(res->message, sizeof(res->message), "%s", mine.message);
			ep_run_result_free(&mine);
		} else if (!ok) {
			*res = mine;
			if (!np.remote) { /* say where it happened; others' messages already do */
				char where[EP_TEXT_MAX];
				snprintf(where, sizeof(where), "node 0: %.*s", EP_TEXT_MAX - 16, mine.message);
				snprintf(res->message, sizeof(res->message), "%s", where);
			}
			send_code(cl, -1, EP_MSG_ABORT, code, res->message);
		} else {
			/* gather every node's results, or the first failure */
			const char *blobs[EP_MAX_NODES] = {0};
			size_t mylen;
			char *myblob = pack_result(&np, &run, &hk, &mine, &mylen);
			blobs[0] = myblob;
			int fail_code = 0;
			while (myblob) {
				int have = 1;
				for (int k = 1; k < N; k++) {
					size_t got;
					blobs[k] = ep_cluster_received(cl, k, EP_MSG_RESULT, pi, &got);
					if (!blobs[k] || got != mylen)
						have = 0;
				}
				if (have)
					break;
				if ((fail_code = ep_cluster_pump(cl, 100, msg, sizeof(msg))))
					break;
				if (stop_signal) {
					fail_code = EP_EXIT_TIMEOUT;
					snprintf(msg, sizeof(msg), "interrupted by signal %d", (int)stop_signal);
					break;
				}
			}
			if (!myblob) {
				fail_code = EP_EXIT_ENV;
				snprintf(msg, sizeof(msg), "out of memory");
			}
			if (fail_code) {
				res->exit_code = fail_code;
				snprintf(res->message, sizeof(res->message), "%s", msg);
				send_code(cl, -1, EP_MSG_ABORT, fail_code, msg);
			} else if (aggregate(cl, variant, &run, N, P, blobs, res)) {
				res->exit_code = EP_EXIT_ENV;
				snprintf(res->message, sizeof(res->message), "out of memory aggregating results");
				send_code(cl, -1, EP_MSG_ABORT, EP_EXIT_ENV, res->message);
			} else {
				int worst = EP_EXIT_OK;
				for (int k = 0; k < N; k++) {
					struct result_hdr hh;
					memcpy(&hh, blobs[k], sizeof(hh));
					if (hh.code == EP_EXIT_WRONG)
						worst = EP_EXIT_WRONG;
				}
				if (res->wrong_elems)
					worst = EP_EXIT_WRONG;
				res->exit_code = worst;
				res->wall_s = mine.wall_s;
				char d[8];
				int32_t c = worst;
				memcpy(d, &pi, 4);
				memcpy(d + 4, &c, 4);
				ep_cluster_broadcast(cl, EP_MSG_DONE, d, sizeof(d));
			}
			free(myblob);
			ep_run_result_free(&mine);
		}
		free(hk.results);
		free(hk.times);
		free(hk.wrong);
		munmap(ctx, sizeof(*ctx));
		ep_cluster_forget(cl, pi);
		done = pi + 1;
		if (nd == 0) {
			ep_table_point(out, &pts[pi], 0, o->verbose);
			ep_table_nodes(out, &pts[pi]);
			ep_report_write_all(o->json_path, o->csv_path, &meta, pts, done, report_error, sizeof(report_error));
		}
		if (res->exit_code != EP_EXIT_OK && res->exit_code != EP_EXIT_WRONG) {
			snprintf(fatal, sizeof(fatal), "%s", res->message);
			break; /* a node is gone or the job was stopped: no later point can run */
		}
	}
	if (!pts) {
		snprintf(fatal, sizeof(fatal), "out of memory");
		job_code = EP_EXIT_ENV;
	}
	if (nd == 0) {
		if (fatal[0])
			fprintf(stderr, "%s: %s\n", me, fatal);
		job_code = done ? ep_table_footer(out, pts, done, o->check, report_error[0] ? report_error : NULL)
				: job_code;
	} else {
		for (int i = 0; i < done; i++) {
			int c = pts[i].res.exit_code;
			if (c != EP_EXIT_OK && (job_code == EP_EXIT_OK || (job_code == EP_EXIT_WRONG && c != EP_EXIT_WRONG)))
				job_code = c;
		}
		if (fatal[0])
			fprintf(stderr, "%s: node %d: %s\n", me, nd, fatal);
		if (!local_mode)
			printf("# node %d: verdict %s (%d point%s); node 0 has the table\n", nd,
			       ep_verdict_name(job_code), done, done == 1 ? "" : "s");
	}
	for (int i = 0; i < done; i++)
		ep_run_result_free(&pts[i].res);
	free(pts);
	ep_cluster_close(cl);
	return job_code;
}

/* --local-nodes: waits for the node processes. A signal to this process
 * alone (kill PID, not the group) is passed on to every node, which stops
 * as on Ctrl-C; a Ctrl-C reaches them anyway and the second copy is
 * harmless. The job's status is node 0's (it has the whole job's verdict),
 * else the most severe node's. */
static int wait_nodes(const pid_t *pids, int nodes)
{
	int code = EP_EXIT_OK, node0 = EP_EXIT_OK, forwarded = 0, left = nodes;
	int done[EP_MAX_NODES] = {0};
	while (left > 0) {
		if (stop_signal && !forwarded) {
			for (int j = 0; j < nodes; j++)
				if (!done[j])
					kill(pids[j], (int)stop_signal);
			forwarded = 1;
		}
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

/* --local-nodes: every node as a child process of this one, over loopback. */
static int run_local(const struct ep_node_job *job, struct ep_options *o, struct ep_cluster_cfg *cfg,
		     const char *cmdline)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons((uint16_t)cfg->master_port)};
	socklen_t sl = sizeof(sa);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64) ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl)) {
		fprintf(stderr, "epbench %s: --local-nodes: rendezvous socket: %s\n", job->command, strerror(errno));
		return EP_EXIT_ENV;
	}
	cfg->master_port = ntohs(sa.sin_port);
	pid_t pids[EP_MAX_NODES];
	pid_t parent = getpid();
	struct sigaction act = {.sa_handler = on_stop}; /* installed before fork: the nodes keep it */
	sigemptyset(&act.sa_mask);
	sigaction(SIGINT, &act, NULL);
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGHUP, &act, NULL);
	fflush(NULL);
	for (int k = 0; k < cfg->nodes; k++) {
		pids[k] = fork();
		if (pids[k] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(EP_EXIT_TIMEOUT);
			char name[32]; /* the kernel keeps the first 15 bytes */
			snprintf(name, sizeof(name), "epbench-n%d", k);
			prctl(PR_SET_NAME, name);
			struct ep_cluster_cfg mine = *cfg;
			mine.node_rank = k;
			if (k != 0)
				close(fd);
			_exit(run_node(job, o, &mine, k == 0 ? fd : -1, 1, cmdline));
		}
		if (pids[k] < 0) {
			fprintf(stderr, "epbench %s: fork of node %d failed: %s\n", job->command, k, strerror(errno));
			for (int j = 0; j < k; j++)
				kill(pids[j], SIGKILL);
			return EP_EXIT_ENV;
		}
	}
	close(fd);
	return wait_nodes(pids, cfg->nodes);
}

int ep_node_job_main(const struct ep_node_job *job, int argc, char **argv)
{
	struct ep_options o;
	char err[512], me[64];
	snprintf(me, sizeof(me), "epbench %s", job->command);
	int rc = ep_options_parse(job->command, argc, argv, &o, stdout, err, sizeof(err));
	if (rc == 1)
		return EP_EXIT_OK;
	if (rc) {
		fprintf(stderr, "%s: %s\n", me, err);
		return EP_EXIT_USAGE;
	}
	struct ep_cluster_cfg cfg;
	if (o.tokens.n * o.hidden.n < 1 || o.ranks.n > 1)
		rc = -EP_EUSAGE, snprintf(err, sizeof(err), "--num-ranks cannot be swept across nodes; sweep --num-tokens or --hidden");
	else
		rc = ep_cluster_resolve(&o, env_get, &cfg, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "%s: %s\n", me, err);
		ep_options_free(&o);
		return EP_EXIT_USAGE;
	}
	size_t len = 16;
	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	char *cmdline = malloc(len);
	if (cmdline) {
		size_t n = (size_t)snprintf(cmdline, len, "epbench");
		for (int i = 0; i < argc; i++)
			n += (size_t)snprintf(cmdline + n, len - n, " %s", argv[i]);
	}
	int code = check_job(job, &o, &cfg, me);
	if (code == 0)
		code = o.local_nodes ? run_local(job, &o, &cfg, cmdline ? cmdline : me)
				     : run_node(job, &o, &cfg, -1, 0, cmdline ? cmdline : me);
	free(cmdline);
	ep_options_free(&o);
	return code;
}

/* `epbench internode` */

static const struct ep_variant *internode_variant(const struct ep_options *o)
{
	(void)o;
	return &ep_internode_variant;
}

static void internode_describe(const struct ep_options *o, char *routing, size_t rlen, char *extra,
			       size_t elen)
{
	snprintf(routing, rlen, "uniform, top-%d of %d node groups", o->num_topk_groups, o->num_groups);
	if (elen)
		extra[0] = 0;
}

static const struct ep_node_job internode_job = {
	.command = "internode",
	.variant = internode_variant,
	.prepare = internode_routing,
	.describe = internode_describe,
};

int ep_internode_main(int argc, char **argv)
{
	return ep_node_job_main(&internode_job, argc, argv);
}
