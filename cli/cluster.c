/* cluster.c - resolution of the job's shape, the rendezvous at node 0, and the node-to-node messages. */
#define _GNU_SOURCE
#include "cli/cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/bench.h"
#include "collectives/error.h"
#include "collectives/sync.h"
#include "collectives/transport/sock.h"

#define MSG_MAGIC 0x45504e31u /* "EPN1" */
#define HEARTBEAT_NS 1000000000LL
#define STALL_GRACE_S 5.0
#define DEFAULT_PORT 29500

/* ------------------------------------------------------------------ */
/* Resolution                                                           */

static int fail(char *err, size_t len, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t len, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return code;
}

static int env_int(ep_env_fn env, const char *name, int *out)
{
	const char *v = env(name);
	char *end;
	if (!v || !*v)
		return 0;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || *end || x < 0 || x > INT_MAX)
		return -1;
	*out = (int)x;
	return 1;
}

int ep_slurm_first_host(const char *list, char *out, size_t len)
{
	/* "pre[a-b,c]post,..." -> pre + a (zero padding kept) ; "host1,host2" -> host1 */
	size_t i = 0, n = 0;
	while (list[i] && list[i] != ',' && list[i] != '[') {
		if (n + 1 < len)
			out[n++] = list[i];
		i++;
	}
	if (list[i] == '[') {
		i++;
		while (list[i] >= '0' && list[i] <= '9') {
			if (n + 1 < len)
				out[n++] = list[i];
			i++;
		}
		while (list[i] && list[i] != ']')
			i++;
		if (list[i] == ']')
			i++;
		while (list[i] && list[i] != ',') { /* suffix after the bracket */
			if (n + 1 < len)
				out[n++] = list[i];
			i++;
		}
	}
	if (len)
		out[n < len ? n : len - 1] = 0;
	return n > 0 ? 0 : -1;
}

static int split_host_port(const char *spec, char *host, size_t hlen, int *port)
{
	const char *colon = strrchr(spec, ':');
	size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
	if (n == 0 || n >= hlen)
		return -1;
	memcpy(host, spec, n);
	host[n] = 0;
	if (!colon)
		return 0;
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end || p < 0 || p > 65535)
		return -1;
	*port = (int)p;
	return 0;
}

int ep_cluster_resolve(const struct ep_options *o, ep_env_fn env, struct ep_cluster_cfg *c,
		       char *err, size_t len)
{
	memset(c, 0, sizeof(*c));
	c->nodes = o->nodes;
	c->node_rank = o->node_rank;
	int torchrun = env("TORCHELASTIC_RUN_ID") || env("GROUP_RANK");
	const char *nodes_from = o->nodes >= 0 ? "--nodes" : NULL;
	const char *rank_from = o->node_rank >= 0 ? "--node-rank" : NULL;
	int v, lws = 1;
	/* Node count, then rank, each from the first convention that has it. */
	if (!nodes_from) {
		if (env_int(env, "NNODES", &v) > 0)
			c->nodes = v, nodes_from = "NNODES";
		else if (torchrun && env_int(env, "WORLD_SIZE", &v) > 0) {
			if (env_int(env, "LOCAL_WORLD_SIZE", &lws) <= 0 || lws < 1)
				lws = 1;
			c->nodes = v / lws, nodes_from = "torchrun WORLD_SIZE/LOCAL_WORLD_SIZE";
		} else if (env_int(env, "OMPI_COMM_WORLD_SIZE", &v) > 0)
			c->nodes = v, nodes_from = "OMPI_COMM_WORLD_SIZE";
		else if (env_int(env, "SLURM_JOB_NUM_NODES", &v) > 0)
			c->nodes = v, nodes_from = "SLURM_JOB_NUM_NODES";
		else if (env_int(env, "SLURM_NNODES", &v) > 0)
			c->nodes = v, nodes_from = "SLURM_NNODES";
		else if (env("MASTER_ADDR") && env_int(env, "WORLD_SIZE", &v) > 0)
			c->nodes = v, nodes_from = "WORLD_SIZE";
	}
	if (!rank_from) {
		if (env_int(env, "NODE_RANK", &v) > 0)
			c->node_rank = v, rank_from = "NODE_RANK";
		else if (torchrun && env_int(env, "GROUP_RANK", &v) > 0)
			c->node_rank = v, rank_from = "torchrun GROUP_RANK";
		else if (env_int(env, "OMPI_COMM_WORLD_RANK", &v) > 0)
			c->node_rank = v, rank_from = "OMPI_COMM_WORLD_RANK";
		else if (env_int(env, "SLURM_NODEID", &v) > 0)
			c->node_rank = v, rank_from = "SLURM_NODEID";
		else if (env("MASTER_ADDR") && env_int(env, "RANK", &v) > 0)
			c->node_rank = v, rank_from = "RANK";
	}
	if (o->local_nodes) {
		if (c->nodes < 1)
			return fail(err, len, -EP_EUSAGE, "--local-nodes needs --nodes N (or NNODES)");
		c->node_rank = 0;
		rank_from = "--local-nodes";
	}
	if (c->nodes < 1)
		return fail(err, len, -EP_EUSAGE,
			    "how many nodes? give --nodes N, or set NNODES (or start under torchrun, mpirun or srun)");
	if (c->nodes > EP_MAX_NODES)
		return fail(err, len, -EP_EUSAGE, "%d nodes (from %s): at most %d are supported", c->nodes,
			    nodes_from, EP_MAX_NODES);
	if (c->node_rank < 0)
		return fail(err, len, -EP_EUSAGE,
			    "which node is this? give --node-rank I, or set NODE_RANK (or start under torchrun, mpirun or srun)");
	if (c->node_rank >= c->nodes)
		return fail(err, len, -EP_EUSAGE, "node rank %d (from %s) is not below the node count %d (from %s)",
			    c->node_rank, rank_from, c->nodes, nodes_from);
	if (strcmp(nodes_from, rank_from) == 0 || (strncmp(nodes_from, "torchrun", 8) == 0 && strncmp(rank_from, "torchrun", 8) == 0))
		snprintf(c->convention, sizeof(c->convention), "%s", torchrun && rank_from[0] == 't' ? "torchrun (WORLD_SIZE/LOCAL_WORLD_SIZE, GROUP_RANK)" : nodes_from);
	else
		snprintf(c->convention, sizeof(c->convention), "%s, %s", nodes_from, rank_from);

	/* Ranks per node. */
	if (o->ranks_per_node > 0) {
		c->ranks_per_node = o->ranks_per_node;
		if (o->ranks_given && (o->ranks.n != 1 || o->ranks.v[0] != c->nodes * c->ranks_per_node))
			return fail(err, len, -EP_EUSAGE, "--num-ranks %d disagrees with --nodes %d x --ranks-per-node %d",
				    o->ranks.v[0], c->nodes, c->ranks_per_node);
	} else if (o->ranks_given) {
		if (o->ranks.n != 1 || o->ranks.v[0] % c->nodes)
			return fail(err, len, -EP_EUSAGE, "--num-ranks %d is not a multiple of the %d nodes (or give --ranks-per-node)",
				    o->ranks.v[0], c->nodes);
		c->ranks_per_node = o->ranks.v[0] / c->nodes;
	} else {
		c->ranks_per_node = 8; /* DeepEP's GPUs per node */
	}
	if (c->ranks_per_node < 1 || c->ranks_per_node > 32)
		return fail(err, len, -EP_EUSAGE, "%d ranks per node: want 1 to 32", c->ranks_per_node);

	/* Master address. */
	c->master_port = DEFAULT_PORT;
	const char *mp = env("MASTER_PORT");
	int port_env = 0;
	if (mp && env_int(env, "MASTER_PORT", &v) > 0 && v <= 65535)
		c->master_port = v, port_env = 1;
	if (o->master) {
		if (split_host_port(o->master, c->master_host, sizeof(c->master_host), &c->master_port))
			return fail(err, len, -EP_EUSAGE, "invalid --master '%s': want HOST:PORT", o->master);
		snprintf(c->master_from, sizeof(c->master_from), "--master");
	} else if (o->local_nodes) {
		snprintf(c->master_host, sizeof(c->master_host), "127.0.0.1");
		c->master_port = 0; /* the launcher picks a free port */
		snprintf(c->master_from, sizeof(c->master_from), "--local-nodes");
	} else if (env("MASTER_ADDR") && *env("MASTER_ADDR")) {
		snprintf(c->master_host, sizeof(c->master_host), "%s", env("MASTER_ADDR"));
		/* torchrun's agent keeps its own store on MASTER_PORT: take the next one */
		if (torchrun && port_env)
			c->master_port++;
		snprintf(c->master_from, sizeof(c->master_from), "MASTER_ADDR%s%s",
			 port_env ? ", MASTER_PORT" : "", torchrun && port_env ? " + 1 (torchrun's store has MASTER_PORT)" : "");
	} else if (env("SLURM_JOB_NODELIST") &&
		   ep_slurm_first_host(env("SLURM_JOB_NODELIST"), c->master_host, sizeof(c->master_host)) == 0) {
		snprintf(c->master_from, sizeof(c->master_from), "first host of SLURM_JOB_NODELIST");
	} else if (c->nodes == 1) {
		snprintf(c->master_host, sizeof(c->master_host), "127.0.0.1");
		c->master_port = 0;
		snprintf(c->master_from, sizeof(c->master_from), "single node");
	} else {
		return fail(err, len, -EP_EUSAGE,
			    "no master address: give --master HOST:PORT or set MASTER_ADDR (and MASTER_PORT)");
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Configuration text                                                   */

static size_t put_sweep(char *buf, size_t len, size_t n, const char *key, const struct ep_sweep *s)
{
	n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s=", key);
	for (int i = 0; i < s->n; i++)
		n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%d", i ? "," : "", s->v[i]);
	n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "\n");
	return n;
}

void ep_cluster_config_text(const struct ep_options *o, const struct ep_cluster_cfg *c,
			    const char *transport, char *buf, size_t len)
{
	size_t n = 0;
#define KV(key, fmt, ...) n += (size_t)snprintf(buf + n, n < len ? len - n : 0, key "=" fmt "\n", __VA_ARGS__)
	KV("version", "%s (results block %zu bytes)", EP_VERSION, sizeof(struct ep_rank_result));
	KV("command", "%s", o->command);
	KV("nodes", "%d", c->nodes);
	KV("ranks-per-node", "%d", c->ranks_per_node);
	n = put_sweep(buf, len, n, "num-tokens", &o->tokens);
	n = put_sweep(buf, len, n, "hidden", &o->hidden);
	KV("num-topk", "%d", o->num_topk);
	KV("num-experts", "%d", o->num_experts);
	KV("num-groups", "%d", o->num_groups);
	KV("num-topk-groups", "%d", o->num_topk_groups);
	KV("expert-alignment", "%d", o->expert_alignment);
	KV("dtype", "%s", ep_dtype_name(o->dtype));
	KV("with-topk", "%d", o->with_topk);
	KV("uneven-tokens", "%d", o->uneven_tokens);
	KV("bias", "%d", o->num_bias);
	KV("expert-counts", "%d", (int)o->expert_counts);
	KV("seed", "%llu", (unsigned long long)o->seed);
	KV("routing", "%d:%g:%d:%s", (int)o->routing.kind, o->routing.zipf_s, o->routing.hot_expert,
	   o->routing_path ? o->routing_path : "");
	KV("masked-ratio", "%g", o->routing.masked_ratio);
	KV("iters", "%d", o->iters);
	KV("warmup", "%d", o->warmup);
	KV("check", "%d", o->check);
	KV("cached", "%d", o->cached);
	KV("op", "%d", o->ops);
	KV("timeout", "%g", o->timeout_s);
	KV("fault", "%d:%d", (int)o->fault, o->fault_rank);
	KV("num-max-dispatch-tokens-per-rank", "%d", o->num_max_dispatch_tokens);
	KV("round-scale", "%d", o->round_scale);
	KV("ue8m0", "%d", o->use_ue8m0);
	KV("hook", "%d", o->hook);
	KV("zero-copy", "%d", o->zero_copy);
	KV("transport", "%s", o->transport ? o->transport : "auto");
	KV("transport (chosen)", "%s", transport);
#undef KV
}

uint64_t ep_config_hash(const char *text)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)text; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return h;
}

/* Value of key in text (up to the newline), or NULL. */
static const char *value_of(const char *text, const char *key, size_t klen, size_t *vlen)
{
	for (const char *line = text; line && *line;) {
		const char *eq = strchr(line, '='), *nl = strchr(line, '\n');
		if (!nl)
			nl = line + strlen(line);
		if (eq && eq < nl && (size_t)(eq - line) == klen && strncmp(line, key, klen) == 0) {
			*vlen = (size_t)(nl - eq - 1);
			return eq + 1;
		}
		line = *nl ? nl + 1 : NULL;
	}
	return NULL;
}

int ep_config_diff(const char *mine, const char *theirs, int their_node, char *out, size_t len)
{
	for (const char *line = mine; line && *line;) {
		const char *eq = strchr(line, '='), *nl = strchr(line, '\n');
		if (!nl)
			nl = line + strlen(line);
		if (eq && eq < nl) {
			size_t klen = (size_t)(eq - line), vlen = (size_t)(nl - eq - 1), tlen = 0;
			const char *tv = value_of(theirs, line, klen, &tlen);
			if (!tv || tlen != vlen || strncmp(tv, eq + 1, vlen) != 0) {
				int opt = strcmp("version", line) != 0 && strncmp(line, "transport (", 11) != 0 &&
					  strncmp(line, "version", klen) != 0;
				snprintf(out, len, "%s%.*s differs: node 0 has %.*s, node %d has %.*s",
					 opt && strncmp(line, "transport (chosen)", klen) ? "--" : "", (int)klen, line,
					 (int)vlen, eq + 1, their_node, (int)(tv ? tlen : 7),
					 tv ? tv : "nothing");
				return 1;
			}
		}
		line = *nl ? nl + 1 : NULL;
	}
	if (strlen(mine) != strlen(theirs)) {
		snprintf(out, len, "node %d's configuration has fields node 0's lacks (another version?)", their_node);
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Connections and messages                                             */

struct frame_hdr {
	uint32_t magic;
	uint32_t type;
	uint64_t len;
};

struct stored {
	int point;
	void *data;
	size_t len;
};

struct conn {
	int fd;
	char *rbuf;
	size_t rlen, rcap;
	int64_t last_recv;
	struct stored msgs[EP_MSG_DONE + 1];
};

struct ep_cluster {
	struct ep_cluster_cfg cfg;
	double timeout_s;
	struct ep_node_info *nodes;
	struct conn *conns;       /* node 0: [N] (own unused); others: [1] = node 0 */
	int nconns;
	int64_t last_heartbeat;
	int fatal_code;
	char fatal[EP_TEXT_MAX];
};

struct hello {
	int32_t node_rank, nodes, ranks_per_node;
	char host[EP_HOST_MAX];
	char addr[EP_ADDR_STR_MAX];
	uint64_t hash;
	uint32_t text_len;
};

static int send_msg(int fd, enum ep_msg type, const void *data, size_t len, double timeout_s)
{
	struct frame_hdr h = {MSG_MAGIC, (uint32_t)type, len};
	int64_t deadline = ep_now_ns() + (int64_t)(timeout_s * 1e9);
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)data, len}};
	return ep_sock_send_all(fd, iov, 2, deadline);
}

/* Reads what is there without blocking; 1 on EOF, -errno on error. */
static int fill(struct conn *c)
{
	for (;;) {
		if (c->rcap - c->rlen < 65536) {
			size_t ncap = c->rcap ? c->rcap * 2 : 131072;
			char *nb = realloc(c->rbuf, ncap);
			if (!nb)
				return -ENOMEM;
			c->rbuf = nb;
			c->rcap = ncap;
		}
		ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
		if (n > 0) {
			c->rlen += (size_t)n;
			c->last_recv = ep_now_ns();
			continue;
		}
		if (n == 0)
			return 1;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return -errno;
	}
}

/* Takes one complete frame off the buffer: 1 with type/data/len (data malloc'ed), 0 if none, -1 bad. */
static int take(struct conn *c, uint32_t *type, void **data, size_t *len)
{
	struct frame_hdr h;
	if (c->rlen < sizeof(h))
		return 0;
	memcpy(&h, c->rbuf, sizeof(h));
	if (h.magic != MSG_MAGIC || h.len > (1ULL << 34))
		return -1;
	if (c->rlen < sizeof(h) + h.len)
		return 0;
	*data = malloc(h.len + 1);
	if (!*data)
		return -1;
	memcpy(*data, c->rbuf + sizeof(h), h.len);
	((char *)*data)[h.len] = 0;
	memmove(c->rbuf, c->rbuf + sizeof(h) + h.len, c->rlen - sizeof(h) - h.len);
	c->rlen -= sizeof(h) + h.len;
	*type = h.type;
	*len = h.len;
	return 1;
}

/* Blocks until one frame arrives on c (setup only). */
static int recv_msg(struct conn *c, uint32_t *type, void **data, size_t *len, int64_t deadline)
{
	for (;;) {
		int rc = take(c, type, data, len);
		if (rc)
			return rc > 0 ? 0 : -EPROTO;
		int ms = ep_sock_ms_left(deadline);
		if (ms == 0)
			return -EP_ETIMEDOUT;
		struct pollfd pf = {.fd = c->fd, .events = POLLIN};
		poll(&pf, 1, ms);
		rc = fill(c);
		if (rc != 0) { /* a last frame may have come with the close */
			int got = take(c, type, data, len);
			if (got > 0)
				return 0;
			return rc > 0 ? -ECONNRESET : rc;
		}
	}
}

static int resolve_ipv4(const char *host, struct in_addr *out)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
	if (inet_pton(AF_INET, host, out) == 1)
		return 0;
	int rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc || !res)
		return -1;
	*out = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
	freeaddrinfo(res);
	return 0;
}

static void free_conn(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->rbuf);
	for (int t = 0; t <= EP_MSG_DONE; t++)
		free(c->msgs[t].data);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

void ep_cluster_close(struct ep_cluster *cl)
{
	if (!cl)
		return;
	for (int i = 0; i < cl->nconns; i++)
		free_conn(&cl->conns[i]);
	free(cl->conns);
	free(cl->nodes);
	free(cl);
}

const struct ep_node_info *ep_cluster_nodes(const struct ep_cluster *cl)
{
	return cl->nodes;
}

static void own_host(char *host, size_t len)
{
	if (gethostname(host, len))
		snprintf(host, len, "?");
	host[len - 1] = 0;
}

/* Node 0: accept, check and welcome every other node. */
static int join_master(struct ep_cluster *cl, const char *text, const char *node_addr, int listen_fd,
		       char *err, size_t len)
{
	const struct ep_cluster_cfg *cfg = &cl->cfg;
	int N = cfg->nodes, fd = listen_fd, one = 1;
	int64_t deadline = ep_now_ns() + (int64_t)(cl->timeout_s * 1e9);
	struct in_addr me;
	own_host(cl->nodes[0].host, sizeof(cl->nodes[0].host));
	cl->nodes[0].ranks = cfg->ranks_per_node;
	if (node_addr)
		snprintf(cl->nodes[0].addr, sizeof(cl->nodes[0].addr), "%s", node_addr);
	else if (resolve_ipv4(cfg->master_host, &me) == 0 && me.s_addr != htonl(INADDR_ANY))
		inet_ntop(AF_INET, &me, cl->nodes[0].addr, sizeof(cl->nodes[0].addr));
	else
		snprintf(cl->nodes[0].addr, sizeof(cl->nodes[0].addr), "127.0.0.1");
	if (N == 1)
		return 0;
	if (fd < 0) {
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->master_port),
					 .sin_addr.s_addr = htonl(INADDR_ANY)};
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return fail(err, len, -errno, "rendezvous socket: %s", strerror(errno));
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64)) {
			int e = errno;
			close(fd);
			/* the environment (another program holds the port): exit 3, naming it */
			return fail(err, len, -e, "node 0 cannot listen on port %d for the rendezvous: %s%s",
				    cfg->master_port, strerror(e),
				    e == EADDRINUSE ? " (another program holds it: pick another --master port)" : "");
		}
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	int joined = 0, rc = 0;
	struct hello *hellos = calloc((size_t)N, sizeof(*hellos));
	if (!hellos) {
		close(fd);
		return fail(err, len, -ENOMEM, "out of memory");
	}
	while (joined < N - 1) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int ms = ep_sock_ms_left(deadline);
		if (ms == 0)
			break;
		if (poll(&pf, 1, ms) <= 0)
			continue;
		int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (cfd < 0)
			continue;
		ep_sock_tune(cfd, cl->timeout_s);
		struct conn tmp = {.fd = cfd};
		uint32_t type;
		void *data = NULL;
		size_t dlen = 0;
		int64_t hd = ep_now_ns() + 10000000000LL;
		if (recv_msg(&tmp, &type, &data, &dlen, hd < deadline ? hd : deadline) || type != EP_MSG_HELLO ||
		    dlen < sizeof(struct hello)) {
			free(data);
			free_conn(&tmp); /* not one of ours */
			continue;
		}
		struct hello h;
		memcpy(&h, data, sizeof(h));
		h.host[EP_HOST_MAX - 1] = h.addr[EP_ADDR_STR_MAX - 1] = 0;
		const char *their = (const char *)data + sizeof(h);
		char why[EP_TEXT_MAX] = "";
		if (h.text_len != dlen - sizeof(h))
			snprintf(why, sizeof(why), "node on %s sent a malformed hello", h.host);
		else if (h.node_rank <= 0 || h.node_rank >= N)
			snprintf(why, sizeof(why), "node on %s says it is node %d, but node 0 expects nodes 1 to %d (--nodes %d)",
				 h.host, h.node_rank, N - 1, N);
		else if (cl->conns[h.node_rank].fd >= 0)
			snprintf(why, sizeof(why), "node rank %d was given twice: to %s and to %s", h.node_rank,
				 cl->nodes[h.node_rank].host, h.host);
		else if (h.hash != ep_config_hash(text) &&
			 !ep_config_diff(text, their, h.node_rank, why, sizeof(why)))
			snprintf(why, sizeof(why), "node %d's configuration hash differs", h.node_rank);
		if (why[0]) {
			char line[EP_TEXT_MAX];
			snprintf(line, sizeof(line), "refused node %d (%s): %s", h.node_rank, h.host, why);
			send_msg(cfd, EP_MSG_REFUSE, line, strlen(line) + 1, 2);
			free(data);
			free_conn(&tmp);
			for (int k = 1; k < N; k++)
				if (cl->conns[k].fd >= 0)
					send_msg(cl->conns[k].fd, EP_MSG_ABORT, line, strlen(line) + 1, 2);
			rc = fail(err, len, -EP_EMISMATCH, "%s", line);
			goto out;
		}
		free(data);
		cl->conns[h.node_rank] = tmp;
		cl->conns[h.node_rank].last_recv = ep_now_ns();
		snprintf(cl->nodes[h.node_rank].host, EP_HOST_MAX, "%s", h.host);
		snprintf(cl->nodes[h.node_rank].addr, EP_ADDR_STR_MAX, "%s", h.addr);
		cl->nodes[h.node_rank].ranks = h.ranks_per_node;
		joined++;
	}
	if (joined < N - 1) {
		char missing[256] = "";
		size_t n = 0;
		for (int k = 1; k < N && n + 8 < sizeof(missing); k++)
			if (cl->conns[k].fd < 0)
				n += (size_t)snprintf(missing + n, sizeof(missing) - n, "%s%d", n ? ", " : "", k);
		char line[EP_TEXT_MAX];
		snprintf(line, sizeof(line), "node%s %s did not join the rendezvous on port %d within %.0f s",
			 strchr(missing, ',') ? "s" : "", missing, cfg->master_port, cl->timeout_s);
		for (int k = 1; k < N; k++)
			if (cl->conns[k].fd >= 0)
				send_msg(cl->conns[k].fd, EP_MSG_ABORT, line, strlen(line) + 1, 2);
		rc = fail(err, len, -EP_ETIMEDOUT, "%s", line);
		goto out;
	}
	for (int k = 1; k < N; k++)
		if (send_msg(cl->conns[k].fd, EP_MSG_WELCOME, cl->nodes, sizeof(*cl->nodes) * (size_t)N,
			     cl->timeout_s)) {
			rc = fail(err, len, -EP_EPEERDIED, "node %d (%s) left during the rendezvous", k,
				  cl->nodes[k].host);
			goto out;
		}
out:
	free(hellos);
	close(fd);
	return rc;
}

/* Other nodes: reach node 0, say who we are, get the node table. */
static int join_worker(struct ep_cluster *cl, const char *text, const char *node_addr, char *err,
		       size_t len)
{
	const struct ep_cluster_cfg *cfg = &cl->cfg;
	int64_t deadline = ep_now_ns() + (int64_t)(cl->timeout_s * 1e9);
	struct in_addr ip;
	int fd = -1, last_err = 0;
	char where[300];
	snprintf(where, sizeof(where), "%s:%d", cfg->master_host, cfg->master_port);
	while (fd < 0) {
		if (resolve_ipv4(cfg->master_host, &ip) == 0) {
			struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->master_port),
						 .sin_addr = ip};
			int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			if (s >= 0 && (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS)) {
				struct pollfd pf = {.fd = s, .events = POLLOUT};
				int ms = ep_sock_ms_left(deadline);
				poll(&pf, 1, ms < 2000 ? ms : 2000);
				int e = ETIMEDOUT;
				socklen_t el = sizeof(e);
				if (pf.revents)
					getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &el);
				if (e == 0)
					fd = s;
				else
					last_err = e;
			} else {
				last_err = errno;
			}
			if (fd < 0 && s >= 0)
				close(s);
		} else {
			last_err = EHOSTUNREACH;
		}
		if (fd >= 0)
			break;
		if (ep_now_ns() >= deadline)
			return fail(err, len, -EP_ETIMEDOUT,
				    "node %d cannot reach the master (node 0) at %s within %.0f s: %s", cfg->node_rank,
				    where, cl->timeout_s, last_err == EHOSTUNREACH && resolve_ipv4(cfg->master_host, &ip)
				    ? "host name does not resolve" : strerror(last_err));
		struct timespec ts = {0, 200 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	ep_sock_tune(fd, cl->timeout_s);
	cl->conns[0].fd = fd;
	cl->conns[0].last_recv = ep_now_ns();
	struct hello h = {.node_rank = cfg->node_rank, .nodes = cfg->nodes, .ranks_per_node = cfg->ranks_per_node,
			  .hash = ep_config_hash(text), .text_len = (uint32_t)strlen(text)};
	own_host(h.host, sizeof(h.host));
	if (node_addr) {
		snprintf(h.addr, sizeof(h.addr), "%s", node_addr);
	} else {
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		getsockname(fd, (struct sockaddr *)&sa, &sl);
		inet_ntop(AF_INET, &sa.sin_addr, h.addr, sizeof(h.addr));
	}
	size_t plen = sizeof(h) + h.text_len;
	char *payload = malloc(plen);
	if (!payload)
		return fail(err, len, -ENOMEM, "out of memory");
	memcpy(payload, &h, sizeof(h));
	memcpy(payload + sizeof(h), text, h.text_len);
	int rc = send_msg(fd, EP_MSG_HELLO, payload, plen, cl->timeout_s);
	free(payload);
	if (rc)
		return fail(err, len, -EP_EPEERDIED, "node %d: sending the hello to %s failed: %s", cfg->node_rank,
			    where, ep_strerror(rc));
	uint32_t type;
	void *data = NULL;
	size_t dlen = 0;
	rc = recv_msg(&cl->conns[0], &type, &data, &dlen, deadline);
	if (rc) {
		free(data);
		return fail(err, len, rc == -EP_ETIMEDOUT ? -EP_ETIMEDOUT : -EP_EPEERDIED,
			    "node %d: no answer from the master at %s: %s", cfg->node_rank, where,
			    rc == -ECONNRESET ? "it closed the connection" : ep_strerror(rc));
	}
	if (type == EP_MSG_REFUSE || type == EP_MSG_ABORT) {
		rc = fail(err, len, -EP_EMISMATCH, "%s", (char *)data);
		if (type == EP_MSG_ABORT && strstr((char *)data, "did not join"))
			rc = -EP_ETIMEDOUT;
		free(data);
		return rc;
	}
	if (type != EP_MSG_WELCOME || dlen != sizeof(*cl->nodes) * (size_t)cfg->nodes) {
		free(data);
		return fail(err, len, -EPROTO, "node %d: unexpected answer from the master", cfg->node_rank);
	}
	memcpy(cl->nodes, data, dlen);
	free(data);
	return 0;
}

int ep_cluster_join(struct ep_cluster **out, const struct ep_cluster_cfg *cfg,
		    const char *config_text, const char *transport, double timeout_s, int listen_fd,
		    const char *node_addr, char *err, size_t len)
{
	(void)transport;
	struct ep_cluster *cl = calloc(1, sizeof(*cl));
	if (!cl)
		return fail(err, len, -ENOMEM, "out of memory");
	cl->cfg = *cfg;
	cl->timeout_s = timeout_s;
	cl->nconns = cfg->node_rank == 0 ? cfg->nodes : 1;
	cl->nodes = calloc((size_t)cfg->nodes, sizeof(*cl->nodes));
	cl->conns = calloc((size_t)cl->nconns, sizeof(*cl->conns));
	if (!cl->nodes || !cl->conns) {
		ep_cluster_close(cl);
		return fail(err, len, -ENOMEM, "out of memory");
	}
	for (int i = 0; i < cl->nconns; i++)
		cl->conns[i].fd = -1;
	if (node_addr) {
		struct in_addr a;
		if (inet_pton(AF_INET, node_addr, &a) != 1) {
			ep_cluster_close(cl);
			return fail(err, len, -EP_EUSAGE, "invalid --node-addr '%s': want a numeric IPv4 address", node_addr);
		}
	}
	int rc = cfg->node_rank == 0 ? join_master(cl, config_text, node_addr, listen_fd, err, len)
				     : join_worker(cl, config_text, node_addr, err, len);
	if (rc) {
		ep_cluster_close(cl);
		return rc;
	}
	cl->last_heartbeat = ep_now_ns();
	*out = cl;
	return 0;
}

/* Which node a connection index stands for. */
static int node_of(const struct ep_cluster *cl, int i)
{
	return cl->cfg.node_rank == 0 ? i : 0;
}

static struct conn *conn_of(struct ep_cluster *cl, int node)
{
	if (cl->cfg.node_rank == 0)
		return node > 0 && node < cl->nconns ? &cl->conns[node] : NULL;
	return node == 0 ? &cl->conns[0] : NULL;
}

int ep_cluster_send(struct ep_cluster *cl, int node, enum ep_msg type, const void *data, size_t len)
{
	struct conn *c = conn_of(cl, node);
	if (!c || c->fd < 0)
		return -ENOTCONN;
	return send_msg(c->fd, type, data, len, cl->timeout_s);
}

void ep_cluster_broadcast(struct ep_cluster *cl, enum ep_msg type, const void *data, size_t len)
{
	for (int k = 1; cl->cfg.node_rank == 0 && k < cl->nconns; k++)
		if (cl->conns[k].fd >= 0)
			send_msg(cl->conns[k].fd, type, data, len, 2);
}

static int set_fatal(struct ep_cluster *cl, int code, char *msg, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int set_fatal(struct ep_cluster *cl, int code, char *msg, size_t len, const char *fmt, ...)
{
	if (!cl->fatal_code) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(cl->fatal, sizeof(cl->fatal), fmt, ap);
		va_end(ap);
		cl->fatal_code = code;
	}
	snprintf(msg, len, "%s", cl->fatal);
	return cl->fatal_code;
}

/* FAIL/ABORT payload: int32 exit code, then the message. */
static int handle(struct ep_cluster *cl, int i, uint32_t type, void *data, size_t dlen, char *msg,
		  size_t len)
{
	struct conn *c = &cl->conns[i];
	int node = node_of(cl, i);
	if (type == EP_MSG_FAIL || type == EP_MSG_ABORT) {
		int32_t code = EP_EXIT_TIMEOUT;
		if (dlen >= 4)
			memcpy(&code, data, 4);
		const char *text = dlen > 4 ? (const char *)data + 4 : "(no reason given)";
		int rc = type == EP_MSG_FAIL
			? set_fatal(cl, code, msg, len, "node %d (%s): %s", node, cl->nodes[node].host, text)
			: set_fatal(cl, code, msg, len, "%s", text);
		free(data);
		return rc;
	}
	if (type == EP_MSG_HEARTBEAT || type > EP_MSG_DONE || dlen < 4) {
		free(data);
		return 0;
	}
	struct stored *s = &c->msgs[type];
	free(s->data);
	memcpy(&s->point, data, 4);
	s->data = data;
	s->len = dlen;
	return 0;
}

int ep_cluster_pump(struct ep_cluster *cl, int wait_ms, char *msg, size_t len)
{
	if (cl->fatal_code)
		return set_fatal(cl, cl->fatal_code, msg, len, "%s", cl->fatal);
	int64_t now = ep_now_ns();
	if (now - cl->last_heartbeat >= HEARTBEAT_NS) {
		cl->last_heartbeat = now;
		for (int i = 0; i < cl->nconns; i++)
			if (cl->conns[i].fd >= 0)
				send_msg(cl->conns[i].fd, EP_MSG_HEARTBEAT, "beat", 4, 1);
	}
	struct pollfd pf[EP_MAX_NODES];
	int idx[EP_MAX_NODES], n = 0;
	for (int i = 0; i < cl->nconns; i++)
		if (cl->conns[i].fd >= 0) {
			idx[n] = i;
			pf[n++] = (struct pollfd){.fd = cl->conns[i].fd, .events = POLLIN};
		}
	if (n && poll(pf, (nfds_t)n, wait_ms) < 0 && errno != EINTR)
		return set_fatal(cl, EP_EXIT_ENV, msg, len, "poll: %s", strerror(errno));
	if (!n && wait_ms > 0) {
		struct timespec ts = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	for (int k = 0; k < n; k++) {
		int i = idx[k], node = node_of(cl, i);
		struct conn *c = &cl->conns[i];
		int rc = pf[k].revents ? fill(c) : 0;
		uint32_t type;
		void *data;
		size_t dlen;
		int got;
		while ((got = take(c, &type, &data, &dlen)) > 0)
			if ((rc = handle(cl, i, type, data, dlen, msg, len)))
				return rc;
		if (got < 0)
			return set_fatal(cl, EP_EXIT_TIMEOUT, msg, len, "node %d (%s) sent garbage", node,
					 cl->nodes[node].host);
		if (rc > 0 || rc < 0)
			return set_fatal(cl, EP_EXIT_TIMEOUT, msg, len,
					 "lost node %d (%s%s): connection closed: its epbench died, was killed, or the network failed",
					 node, cl->nodes[node].host, node == 0 ? ", the master" : "");
		double silent = (double)(ep_now_ns() - c->last_recv) * 1e-9;
		if (silent > cl->timeout_s + STALL_GRACE_S)
			return set_fatal(cl, EP_EXIT_TIMEOUT, msg, len,
					 "node %d (%s) sent nothing for %.0f s: stalled or unreachable", node,
					 cl->nodes[node].host, silent);
	}
	return 0;
}

const void *ep_cluster_received(const struct ep_cluster *cl, int node, enum ep_msg type,
				int point, size_t *len)
{
	const struct conn *c = conn_of((struct ep_cluster *)cl, node);
	if (!c || type > EP_MSG_DONE || !c->msgs[type].data || c->msgs[type].point != point)
		return NULL;
	if (len)
		*len = c->msgs[type].len;
	return c->msgs[type].data;
}

void ep_cluster_forget(struct ep_cluster *cl, int point)
{
	for (int i = 0; i < cl->nconns; i++)
		for (int t = 0; t <= EP_MSG_DONE; t++)
			if (cl->conns[i].msgs[t].data && cl->conns[i].msgs[t].point <= point) {
				free(cl->conns[i].msgs[t].data);
				cl->conns[i].msgs[t].data = NULL;
			}
}
