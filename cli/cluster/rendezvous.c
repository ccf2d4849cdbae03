/* rendezvous.c - the node launchers' protocol: join at node 0, typed messages, heartbeats, failure. */
#define _GNU_SOURCE
#include "cli/cluster/rendezvous.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/cluster/config.h"
#include "cli/cluster/wire.h"
#include "collectives/error.h"
#include "collectives/sync.h"
#include "collectives/transport/sock.h"
#include "reports/results.h"

#define HEARTBEAT_NS 1000000000LL
#define STALL_GRACE_S 5.0

enum msg { HELLO = 1, WELCOME, REFUSE, HEARTBEAT, ADDRS, TABLE, FAIL, ABORT, RESULT, DONE, STATE_ASK, STATE, NMSG };

/* ADDRS, TABLE, RESULT and DONE start with this; value: a count or a verdict. */
struct point_hdr {
	int32_t point;
	int32_t value;
};

/* FAIL, ABORT and REFUSE: an exit status, then one NUL-terminated line. */
struct stop_hdr {
	int32_t code;
};

/* HELLO: who a joining node is, then its configuration text. */
struct hello {
	int32_t node_rank, nodes, ranks_per_node;
	char host[EP_HOST_MAX];
	char addr[EP_ADDR_STR_MAX];
	uint64_t hash;
	uint32_t text_len;
};

/* The last message of a type received from a peer. */
struct stored {
	int point;
	void *data;  /* the payload, header included */
	size_t len;
};

struct peer {
	struct ep_wire w;
	struct stored msgs[NMSG];
};

struct ep_cluster {
	struct ep_cluster_cfg cfg;
	double timeout_s;
	struct ep_node_info *nodes;
	struct peer *peers;       /* node 0: [N] (its own unused); others: [1] = node 0 */
	int npeers;
	int64_t last_heartbeat;
	int fatal_code;
	char fatal[EP_TEXT_MAX];
};

static int fail(char *err, size_t len, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t len, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return code;
}

/* ---- framing of the typed payloads ------------------------------------ */

static int send_typed(int fd, enum msg type, const void *hdr, size_t hlen, const void *data, size_t dlen,
		      double timeout_s)
{
	char *buf = malloc(hlen + dlen + 1);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, hdr, hlen);
	if (dlen)
		memcpy(buf + hlen, data, dlen);
	int rc = ep_wire_send(fd, type, buf, hlen + dlen, timeout_s);
	free(buf);
	return rc;
}

static int send_stop(int fd, enum msg type, int code, const char *line, double timeout_s)
{
	struct stop_hdr h = {code};
	return send_typed(fd, type, &h, sizeof(h), line, strlen(line) + 1, timeout_s);
}

/* The exit status and line of a FAIL/ABORT/REFUSE payload. */
static int read_stop(const void *data, size_t len, const char **line)
{
	struct stop_hdr h = {EP_EXIT_TIMEOUT};
	if (len >= sizeof(h))
		memcpy(&h, data, sizeof(h));
	*line = len > sizeof(h) ? (const char *)data + sizeof(h) : "(no reason given)";
	return h.code;
}

/* The job's error code for an exit status that ended the join. */
static int join_error(int code)
{
	return code == EP_EXIT_TIMEOUT ? -EP_ETIMEDOUT : code == EP_EXIT_USAGE ? -EP_EMISMATCH
	       : code == EP_EXIT_ENV ? -EP_ENODEV : -EP_EPEERDIED;
}

/* ---- join ---------------------------------------------------------- */

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

static void own_host(char *host, size_t len)
{
	if (gethostname(host, len))
		snprintf(host, len, "?");
	host[len - 1] = 0;
}

/* Node 0's own entry in the node table. */
static void master_entry(struct ep_cluster *cl, const char *node_addr)
{
	struct in_addr me;
	struct ep_node_info *n0 = &cl->nodes[0];
	own_host(n0->host, sizeof(n0->host));
	n0->ranks = cl->cfg.ranks_per_node;
	if (node_addr)
		snprintf(n0->addr, sizeof(n0->addr), "%s", node_addr);
	else if (resolve_ipv4(cl->cfg.master_host, &me) == 0 && me.s_addr != htonl(INADDR_ANY))
		inet_ntop(AF_INET, &me, n0->addr, sizeof(n0->addr));
	else
		snprintf(n0->addr, sizeof(n0->addr), "127.0.0.1");
}

/* The rendezvous socket of node 0 (or the one --local-nodes made). */
static int master_socket(const struct ep_cluster_cfg *cfg, int listen_fd, char *err, size_t len)
{
	int fd = listen_fd, one = 1;
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
	return fd;
}

/* Why node 0 refuses a hello, into why (empty when it is welcome). */
static void judge_hello(const struct ep_cluster *cl, const struct hello *h, size_t dlen, const char *theirs,
			const char *text, char *why, size_t wlen)
{
	int N = cl->cfg.nodes;
	why[0] = 0;
	if (h->text_len != dlen - sizeof(*h))
		snprintf(why, wlen, "node on %s sent a malformed hello", h->host);
	else if (h->node_rank <= 0 || h->node_rank >= N)
		snprintf(why, wlen, "node on %s says it is node %d, but node 0 expects nodes 1 to %d (--nodes %d)",
			 h->host, h->node_rank, N - 1, N);
	else if (cl->peers[h->node_rank].w.fd >= 0)
		snprintf(why, wlen, "node rank %d was given twice: to %s and to %s", h->node_rank,
			 cl->nodes[h->node_rank].host, h->host);
	else if (h->hash != ep_config_hash(text) && !ep_config_diff(text, theirs, h->node_rank, why, wlen))
		snprintf(why, wlen, "node %d's configuration hash differs", h->node_rank);
}

/* Node 0: one connection's hello. 1 joined, 0 not one of ours, <0 the job ends (err). */
static int accept_one(struct ep_cluster *cl, int cfd, const char *text, int64_t deadline, char *err, size_t len)
{
	struct ep_wire tmp = {.fd = cfd};
	uint32_t type;
	void *data = NULL;
	size_t dlen = 0;
	int64_t hd = ep_now_ns() + 10000000000LL;
	ep_sock_tune(cfd, cl->timeout_s);
	if (ep_wire_recv(&tmp, &type, &data, &dlen, hd < deadline ? hd : deadline) || type != HELLO ||
	    dlen < sizeof(struct hello)) {
		free(data);
		ep_wire_close(&tmp); /* not one of ours */
		return 0;
	}
	struct hello h;
	char why[EP_TEXT_MAX];
	memcpy(&h, data, sizeof(h));
	h.host[EP_HOST_MAX - 1] = h.addr[EP_ADDR_STR_MAX - 1] = 0;
	judge_hello(cl, &h, dlen, (const char *)data + sizeof(h), text, why, sizeof(why));
	free(data);
	if (why[0]) {
		char line[EP_TEXT_MAX];
		snprintf(line, sizeof(line), "refused node %d (%s): %s", h.node_rank, h.host, why);
		send_stop(cfd, REFUSE, EP_EXIT_USAGE, line, 2);
		ep_wire_close(&tmp);
		ep_cluster_abort(cl, EP_EXIT_USAGE, line);
		return fail(err, len, -EP_EMISMATCH, "%s", line);
	}
	cl->peers[h.node_rank].w = tmp;
	cl->peers[h.node_rank].w.last_recv = ep_now_ns();
	snprintf(cl->nodes[h.node_rank].host, EP_HOST_MAX, "%s", h.host);
	snprintf(cl->nodes[h.node_rank].addr, EP_ADDR_STR_MAX, "%s", h.addr);
	cl->nodes[h.node_rank].ranks = h.ranks_per_node;
	return 1;
}

/* Node 0: names the nodes that did not join, ends the job for those that did. */
static int missing_nodes(struct ep_cluster *cl, char *err, size_t len)
{
	char missing[256] = "", line[EP_TEXT_MAX];
	size_t n = 0;
	for (int k = 1; k < cl->cfg.nodes && n + 8 < sizeof(missing); k++)
		if (cl->peers[k].w.fd < 0)
			n += (size_t)snprintf(missing + n, sizeof(missing) - n, "%s%d", n ? ", " : "", k);
	snprintf(line, sizeof(line), "node%s %s did not join the rendezvous on port %d within %.0f s",
		 strchr(missing, ',') ? "s" : "", missing, cl->cfg.master_port, cl->timeout_s);
	ep_cluster_abort(cl, EP_EXIT_TIMEOUT, line);
	return fail(err, len, -EP_ETIMEDOUT, "%s", line);
}

/* Node 0: accept, check and welcome every other node. */
static int join_master(struct ep_cluster *cl, const char *text, const char *node_addr, int listen_fd,
		       char *err, size_t len)
{
	int N = cl->cfg.nodes, joined = 0, rc = 0;
	int64_t deadline = ep_now_ns() + (int64_t)(cl->timeout_s * 1e9);
	master_entry(cl, node_addr);
	if (N == 1)
		return 0;
	int fd = master_socket(&cl->cfg, listen_fd, err, len);
	if (fd < 0)
		return fd;
	while (joined < N - 1 && rc >= 0) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int ms = ep_sock_ms_left(deadline);
		if (ms == 0)
			break;
		if (poll(&pf, 1, ms) <= 0)
			continue;
		int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (cfd >= 0 && (rc = accept_one(cl, cfd, text, deadline, err, len)) > 0)
			joined++;
	}
	close(fd);
	if (rc < 0)
		return rc;
	if (joined < N - 1)
		return missing_nodes(cl, err, len);
	for (int k = 1; k < N; k++)
		if (ep_wire_send(cl->peers[k].w.fd, WELCOME, cl->nodes, sizeof(*cl->nodes) * (size_t)N, cl->timeout_s))
			return fail(err, len, -EP_EPEERDIED, "node %d (%s) left during the rendezvous", k,
				    cl->nodes[k].host);
	return 0;
}

/* Other nodes: a connection to node 0, retried until the deadline. */
static int reach_master(struct ep_cluster *cl, int64_t deadline, const char *where, char *err, size_t len)
{
	const struct ep_cluster_cfg *cfg = &cl->cfg;
	struct in_addr ip;
	int last_err = EHOSTUNREACH;
	for (;;) {
		int s = -1, e = EHOSTUNREACH;
		if (resolve_ipv4(cfg->master_host, &ip) == 0) {
			struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->master_port),
						 .sin_addr = ip};
			s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			e = s < 0 ? errno : connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : errno;
			if (e == EINPROGRESS) {
				struct pollfd pf = {.fd = s, .events = POLLOUT};
				int ms = ep_sock_ms_left(deadline);
				socklen_t el = sizeof(e);
				e = ETIMEDOUT;
				if (poll(&pf, 1, ms < 2000 ? ms : 2000) > 0)
					getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &el);
			}
		}
		if (e == 0)
			return s;
		if (s >= 0)
			close(s);
		last_err = e;
		if (ep_now_ns() >= deadline)
			return fail(err, len, -EP_ETIMEDOUT, "node %d cannot reach the master (node 0) at %s within %.0f s: %s",
				    cfg->node_rank, where, cl->timeout_s,
				    last_err == EHOSTUNREACH && resolve_ipv4(cfg->master_host, &ip)
					    ? "host name does not resolve" : strerror(last_err));
		struct timespec ts = {0, 200 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

static int send_hello(struct ep_cluster *cl, int fd, const char *text, const char *node_addr)
{
	const struct ep_cluster_cfg *cfg = &cl->cfg;
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
	return send_typed(fd, HELLO, &h, sizeof(h), text, h.text_len, cl->timeout_s);
}

/* Other nodes: reach node 0, say who we are, get the node table. */
static int join_worker(struct ep_cluster *cl, const char *text, const char *node_addr, char *err, size_t len)
{
	const struct ep_cluster_cfg *cfg = &cl->cfg;
	int64_t deadline = ep_now_ns() + (int64_t)(cl->timeout_s * 1e9);
	char where[300];
	snprintf(where, sizeof(where), "%s:%d", cfg->master_host, cfg->master_port);
	int fd = reach_master(cl, deadline, where, err, len), rc;
	if (fd < 0)
		return fd;
	ep_sock_tune(fd, cl->timeout_s);
	cl->peers[0].w.fd = fd;
	cl->peers[0].w.last_recv = ep_now_ns();
	if ((rc = send_hello(cl, fd, text, node_addr)))
		return fail(err, len, -EP_EPEERDIED, "node %d: sending the hello to %s failed: %s", cfg->node_rank,
			    where, ep_strerror(rc));
	uint32_t type;
	void *data = NULL;
	size_t dlen = 0;
	if ((rc = ep_wire_recv(&cl->peers[0].w, &type, &data, &dlen, deadline))) {
		free(data);
		return fail(err, len, rc == -EP_ETIMEDOUT ? -EP_ETIMEDOUT : -EP_EPEERDIED,
			    "node %d: no answer from the master at %s: %s", cfg->node_rank, where,
			    rc == -ECONNRESET ? "it closed the connection" : ep_strerror(rc));
	}
	if (type == REFUSE || type == ABORT) {
		const char *line;
		int code = read_stop(data, dlen, &line);
		rc = fail(err, len, join_error(code), "%s", line);
	} else if (type != WELCOME || dlen != sizeof(*cl->nodes) * (size_t)cfg->nodes) {
		rc = fail(err, len, -EPROTO, "node %d: unexpected answer from the master", cfg->node_rank);
	} else {
		memcpy(cl->nodes, data, dlen);
	}
	free(data);
	return rc;
}

int ep_cluster_join(struct ep_cluster **out, const struct ep_cluster_cfg *cfg, const char *config_text,
		    double timeout_s, int listen_fd, const char *node_addr, char *err, size_t len)
{
	struct in_addr a;
	if (node_addr && inet_pton(AF_INET, node_addr, &a) != 1)
		return fail(err, len, -EP_EUSAGE, "invalid --node-addr '%s': want a numeric IPv4 address", node_addr);
	struct ep_cluster *cl = calloc(1, sizeof(*cl));
	if (!cl)
		return fail(err, len, -ENOMEM, "out of memory");
	cl->cfg = *cfg;
	cl->timeout_s = timeout_s;
	cl->npeers = cfg->node_rank == 0 ? cfg->nodes : 1;
	cl->nodes = calloc((size_t)cfg->nodes, sizeof(*cl->nodes));
	cl->peers = calloc((size_t)cl->npeers, sizeof(*cl->peers));
	if (!cl->nodes || !cl->peers) {
		ep_cluster_close(cl);
		return fail(err, len, -ENOMEM, "out of memory");
	}
	for (int i = 0; i < cl->npeers; i++)
		cl->peers[i].w.fd = -1;
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

void ep_cluster_close(struct ep_cluster *cl)
{
	if (!cl)
		return;
	for (int i = 0; cl->peers && i < cl->npeers; i++) {
		ep_wire_close(&cl->peers[i].w);
		for (int t = 0; t < NMSG; t++)
			free(cl->peers[i].msgs[t].data);
	}
	free(cl->peers);
	free(cl->nodes);
	free(cl);
}

const struct ep_node_info *ep_cluster_nodes(const struct ep_cluster *cl)
{
	return cl->nodes;
}

/* ---- during the job -------------------------------------------------- */

static int serve_peer(struct ep_cluster *cl, int i, int readable, char *msg, size_t len);

/* Which node a peer index stands for, and the peer of a node (or NULL). */
static int node_of(const struct ep_cluster *cl, int i)
{
	return cl->cfg.node_rank == 0 ? i : 0;
}

static struct peer *peer_of(struct ep_cluster *cl, int node)
{
	if (cl->cfg.node_rank == 0)
		return node > 0 && node < cl->npeers ? &cl->peers[node] : NULL;
	return node == 0 ? &cl->peers[0] : NULL;
}

static int send_point(struct ep_cluster *cl, int node, enum msg type, int point, int value, const void *data,
		      size_t len)
{
	struct peer *p = peer_of(cl, node);
	struct point_hdr h = {point, value};
	if (!p || p->w.fd < 0)
		return -ENOTCONN;
	return send_typed(p->w.fd, type, &h, sizeof(h), data, len, cl->timeout_s);
}

/* Node 0: the same to every other node (best effort: a lost node is noticed by the pump). */
static void broadcast_point(struct ep_cluster *cl, enum msg type, int point, int value, const void *data,
			    size_t len)
{
	for (int k = 1; cl->cfg.node_rank == 0 && k < cl->npeers; k++)
		send_point(cl, k, type, point, value, data, len);
}

/* The stored payload (past its header) of type for point from node, or NULL. */
static const void *received(struct ep_cluster *cl, int node, enum msg type, int point, int *value, size_t *len)
{
	struct peer *p = peer_of(cl, node);
	if (!p || !p->msgs[type].data || p->msgs[type].point != point)
		return NULL;
	struct point_hdr h;
	memcpy(&h, p->msgs[type].data, sizeof(h));
	if (value)
		*value = h.value;
	if (len)
		*len = p->msgs[type].len - sizeof(h);
	return (const char *)p->msgs[type].data + sizeof(h);
}

int ep_cluster_send_addrs(struct ep_cluster *cl, int point, const struct ep_transport_addr *a, int n)
{
	return send_point(cl, 0, ADDRS, point, n, a, sizeof(*a) * (size_t)n);
}

const struct ep_transport_addr *ep_cluster_addrs(struct ep_cluster *cl, int node, int point, int n)
{
	int count;
	const void *a = received(cl, node, ADDRS, point, &count, NULL);
	return a && count == n ? a : NULL;
}

void ep_cluster_send_table(struct ep_cluster *cl, int point, const struct ep_transport_addr *a, int n)
{
	broadcast_point(cl, TABLE, point, n, a, sizeof(*a) * (size_t)n);
}

const struct ep_transport_addr *ep_cluster_table(struct ep_cluster *cl, int point, int n)
{
	int count;
	const void *a = received(cl, 0, TABLE, point, &count, NULL);
	return a && count == n ? a : NULL;
}

int ep_cluster_send_result(struct ep_cluster *cl, int point, const void *data, size_t len)
{
	return send_point(cl, 0, RESULT, point, 0, data, len);
}

const void *ep_cluster_result(struct ep_cluster *cl, int node, int point, size_t *len)
{
	return received(cl, node, RESULT, point, NULL, len);
}

void ep_cluster_send_done(struct ep_cluster *cl, int point, int verdict)
{
	broadcast_point(cl, DONE, point, verdict, NULL, 0);
}

int ep_cluster_done(struct ep_cluster *cl, int point, int *verdict)
{
	return received(cl, 0, DONE, point, verdict, NULL) != NULL;
}

void ep_cluster_ask_state(struct ep_cluster *cl, int point, int ask)
{
	broadcast_point(cl, STATE_ASK, point, ask, NULL, 0);
}

int ep_cluster_state_asked(struct ep_cluster *cl, int point)
{
	int ask = 0;
	return received(cl, 0, STATE_ASK, point, &ask, NULL) ? ask : 0;
}

int ep_cluster_send_state(struct ep_cluster *cl, int point, int ask, const void *data, size_t len)
{
	return send_point(cl, 0, STATE, point, ask, data, len);
}

const void *ep_cluster_state(struct ep_cluster *cl, int node, int point, int *ask, size_t *len)
{
	return received(cl, node, STATE, point, ask, len);
}

int ep_cluster_serve(struct ep_cluster *cl, int wait_ms)
{
	struct pollfd pf[EP_MAX_NODES];
	int idx[EP_MAX_NODES], n = 0;
	char msg[EP_TEXT_MAX];
	for (int i = 0; i < cl->npeers; i++)
		if (cl->peers[i].w.fd >= 0) {
			idx[n] = i;
			pf[n++] = (struct pollfd){.fd = cl->peers[i].w.fd, .events = POLLIN};
		}
	if (!n || (poll(pf, (nfds_t)n, wait_ms) < 0 && errno != EINTR))
		return -1;
	for (int k = 0; k < n; k++)
		if (pf[k].revents)
			serve_peer(cl, idx[k], 1, msg, sizeof(msg)); /* a stop is kept as the job's fatal */
	return 0;
}

void ep_cluster_forget(struct ep_cluster *cl, int point)
{
	for (int i = 0; i < cl->npeers; i++)
		for (int t = 0; t < NMSG; t++)
			if (cl->peers[i].msgs[t].data && cl->peers[i].msgs[t].point <= point) {
				free(cl->peers[i].msgs[t].data);
				cl->peers[i].msgs[t].data = NULL;
			}
}

void ep_cluster_send_fail(struct ep_cluster *cl, int code, const char *msg)
{
	struct peer *p = peer_of(cl, 0);
	if (p && p->w.fd >= 0)
		send_stop(p->w.fd, FAIL, code, msg, cl->timeout_s);
}

void ep_cluster_abort(struct ep_cluster *cl, int code, const char *msg)
{
	for (int k = 1; cl->cfg.node_rank == 0 && k < cl->npeers; k++)
		if (cl->peers[k].w.fd >= 0)
			send_stop(cl->peers[k].w.fd, ABORT, code, msg, 2);
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

/* One message from peer i: a stop ends the job; others are kept for their getter. */
static int handle(struct ep_cluster *cl, int i, uint32_t type, void *data, size_t dlen, char *msg, size_t len)
{
	int node = node_of(cl, i), rc = 0;
	if (type == FAIL || type == ABORT) {
		const char *line;
		int code = read_stop(data, dlen, &line);
		rc = type == FAIL ? set_fatal(cl, code, msg, len, "node %d (%s): %s", node, cl->nodes[node].host, line)
				  : set_fatal(cl, code, msg, len, "%s", line);
	} else if (type != HEARTBEAT && type < NMSG && dlen >= sizeof(struct point_hdr)) {
		struct stored *s = &cl->peers[i].msgs[type];
		free(s->data);
		memcpy(&s->point, data, sizeof(int32_t));
		s->data = data;
		s->len = dlen;
		return 0;
	}
	free(data);
	return rc;
}

/* Reads and handles what peer i sent; 0 or the job's end (msg says why). */
static int serve_peer(struct ep_cluster *cl, int i, int readable, char *msg, size_t len)
{
	struct peer *p = &cl->peers[i];
	int node = node_of(cl, i), rc = readable ? ep_wire_fill(&p->w) : 0, got;
	uint32_t type;
	void *data;
	size_t dlen;
	while ((got = ep_wire_take(&p->w, &type, &data, &dlen)) > 0) {
		int end = handle(cl, i, type, data, dlen, msg, len);
		if (end)
			return end;
	}
	if (got < 0)
		return set_fatal(cl, EP_EXIT_TIMEOUT, msg, len, "node %d (%s) sent garbage", node, cl->nodes[node].host);
	if (rc)
		return set_fatal(cl, EP_EXIT_TIMEOUT, msg, len,
				 "lost node %d (%s%s): connection closed: its epbench died, was killed, or the network failed",
				 node, cl->nodes[node].host, node == 0 ? ", the master" : "");
	double silent = (double)(ep_now_ns() - p->w.last_recv) * 1e-9;
	if (silent > cl->timeout_s + STALL_GRACE_S)
		return set_fatal(cl, EP_EXIT_TIMEOUT, msg, len, "node %d (%s) sent nothing for %.0f s: stalled or unreachable",
				 node, cl->nodes[node].host, silent);
	return 0;
}

int ep_cluster_pump(struct ep_cluster *cl, int wait_ms, char *msg, size_t len)
{
	if (cl->fatal_code)
		return set_fatal(cl, cl->fatal_code, msg, len, "%s", cl->fatal);
	int64_t now = ep_now_ns();
	if (now - cl->last_heartbeat >= HEARTBEAT_NS) {
		cl->last_heartbeat = now;
		for (int i = 0; i < cl->npeers; i++)
			if (cl->peers[i].w.fd >= 0)
				ep_wire_send(cl->peers[i].w.fd, HEARTBEAT, "beat", 4, 1);
	}
	struct pollfd pf[EP_MAX_NODES];
	int idx[EP_MAX_NODES], n = 0;
	for (int i = 0; i < cl->npeers; i++)
		if (cl->peers[i].w.fd >= 0) {
			idx[n] = i;
			pf[n++] = (struct pollfd){.fd = cl->peers[i].w.fd, .events = POLLIN};
		}
	if (n && poll(pf, (nfds_t)n, wait_ms) < 0 && errno != EINTR)
		return set_fatal(cl, EP_EXIT_ENV, msg, len, "poll: %s", strerror(errno));
	if (!n && wait_ms > 0) {
		struct timespec ts = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	for (int k = 0; k < n; k++) {
		int end = serve_peer(cl, idx[k], pf[k].revents != 0, msg, len);
		if (end)
			return end;
	}
	return 0;
}

int ep_cluster_local_listener(int *port, char *err, size_t len)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons((uint16_t)*port)};
	socklen_t sl = sizeof(sa);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64) ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl)) {
		snprintf(err, len, "--local-nodes: rendezvous socket: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

int ep_cluster_fork_nodes(int N, int listen_fd, int (*node)(void *ctx, int k, int fd), void *ctx, pid_t *pids,
			  char *err, size_t len)
{
	pid_t parent = getpid();
	fflush(NULL);
	for (int k = 0; k < N; k++) {
		if ((pids[k] = fork()) == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(EP_EXIT_TIMEOUT);
			char name[32]; /* the kernel keeps the first 15 bytes */
			snprintf(name, sizeof(name), "epbench-n%d", k);
			prctl(PR_SET_NAME, name);
			if (k)
				close(listen_fd);
			_exit(node(ctx, k, k ? -1 : listen_fd));
		}
		if (pids[k] < 0) {
			snprintf(err, len, "fork of node %d failed: %s", k, strerror(errno));
			for (int q = 0; q < k; q++)
				kill(pids[q], SIGKILL);
			return -1;
		}
	}
	return 0;
}
