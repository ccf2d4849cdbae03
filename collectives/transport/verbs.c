/* verbs.c - the transport over RDMA verbs: RC queue pairs set up with rdma_cm, one per peer.
 *
 * put is an RDMA WRITE into the peer's registered region (the peer's CPU
 * does nothing); signal is a zero-byte RDMA WRITE WITH IMMEDIATE, which
 * consumes one receive on the peer and completes there as
 * IBV_WC_RECV_RDMA_WITH_IMM carrying our rank: the peer counts those. On an
 * RC QP a WRITE WITH IMM completes at the receiver only after every earlier
 * WRITE on that QP is placed, which is the ordering the contract promises.
 *
 * Setup: init binds an rdma_cm listener to the node's address (the address
 * must belong to an RDMA device: RoCE/iWARP netdev or IPoIB) and publishes
 * {ip, port}; connect resolves and connects to lower ranks and accepts
 * higher ones (private data {magic, job, rank}), then every pair exchanges
 * its region table {addr, rkey, len} with one SEND each way.
 *
 * Completions: one send CQ and one receive CQ shared by all QPs. Every send
 * is signalled; put may leave completions pending (bounded by the send queue
 * depth), signal drains them for its peer. Waits spin briefly, then sleep on
 * the completion channel in slices, noticing rdma_cm DISCONNECTED events.
 * Every failed completion is reported with ibv_wc_status_str and the peer.
 *
 * Without a device, probe and init say "no RDMA device" (-EP_ENODEV).
 */
#define _GNU_SOURCE
#include "collectives/transport/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <netinet/in.h>
#include <poll.h>
#include <rdma/rdma_cma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collectives/error.h"
#include "collectives/sync.h"

#define VERBS_MAGIC 0x45505652u /* "EPVR" */
#define SQ_DEPTH 256
#define RQ_DEPTH 512
#define MAX_WRITE (256u << 20)  /* bytes per RDMA WRITE work request */
#define SPIN_POLLS 2000
#define CM_TIMEOUT_MS 5000

struct conn_hello {
	uint32_t magic;
	int32_t rank;
	uint64_t job_id;
};

struct region_key {
	uint64_t addr;
	uint64_t len;
	uint32_t rkey;
	uint32_t valid;
};

struct key_msg {
	uint32_t magic;
	int32_t rank;
	struct region_key r[EP_TRANSPORT_MAX_REGIONS];
};

struct vaddr {
	uint32_t magic;
	uint32_t ip;    /* network order */
	uint16_t port;  /* network order */
};

struct vpeer {
	int rank;
	struct rdma_cm_id *id;
	int connected, lost, keys_in;
	uint32_t signals;             /* WRITE WITH IMM received from this peer */
	uint32_t outstanding;         /* signalled sends not yet completed */
	struct key_msg keys;          /* the peer's regions (filled by its SEND) */
	struct key_msg *ctrl;         /* registered receive/send buffer for the key exchange */
	struct ibv_mr *ctrl_mr;
	char why[160];
};

struct verbs {
	struct rdma_event_channel *ch;
	struct rdma_cm_id *listen;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_comp_channel *cc;
	struct ibv_cq *scq, *rcq;
	struct ibv_mr *mr[EP_TRANSPORT_MAX_REGIONS];
	char *base[EP_TRANSPORT_MAX_REGIONS];
	size_t len[EP_TRANSPORT_MAX_REGIONS];
	int npeers;
	struct vpeer *peers;
	int *slot;                    /* [R] peer index of a global rank, -1 */
};


static int first_active_port(struct ibv_context *ctx)
{
	struct ibv_device_attr da;
	if (ibv_query_device(ctx, &da))
		return -1;
	for (int p = 1; p <= da.phys_port_cnt; p++) {
		struct ibv_port_attr pa;
		if (ibv_query_port(ctx, (uint8_t)p, &pa) == 0 && pa.state == IBV_PORT_ACTIVE)
			return p;
	}
	return -1;
}

static int verbs_probe(const struct ep_transport_cfg *cfg, char *why, size_t len)
{
	int n = 0, rc = -EP_ENODEV;
	struct ibv_device **list = ibv_get_device_list(&n);
	char names[160] = "";
	size_t used = 0;
	if (!list || n == 0) {
		snprintf(why, len, "no RDMA device (ibv_get_device_list found none%s%s)",
			 list ? "" : ": ", list ? "" : strerror(errno));
		if (list)
			ibv_free_device_list(list);
		return -EP_ENODEV;
	}
	for (int i = 0; i < n; i++) {
		const char *name = ibv_get_device_name(list[i]);
		if (used + 24 < sizeof(names))
			used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "", name);
		if (cfg->ib_dev && strcmp(cfg->ib_dev, name) != 0)
			continue;
		struct ibv_context *ctx = ibv_open_device(list[i]);
		if (!ctx)
			continue;
		int port = first_active_port(ctx);
		if (port > 0 && cfg->gid_index >= 0) {
			union ibv_gid gid;
			if (ibv_query_gid(ctx, (uint8_t)port, cfg->gid_index, &gid)) {
				snprintf(why, len, "RDMA device %s has no GID index %d", name, cfg->gid_index);
				ibv_close_device(ctx);
				ibv_free_device_list(list);
				return -EP_ENODEV;
			}
		}
		ibv_close_device(ctx);
		if (port > 0) {
			rc = 0;
			break;
		}
	}
	if (rc)
		snprintf(why, len, cfg->ib_dev ? "no RDMA device named %s with an active port (found: %s)"
					       : "no RDMA device with an active port (found: %s%s)",
			 cfg->ib_dev ? cfg->ib_dev : names, cfg->ib_dev ? names : "");
	ibv_free_device_list(list);
	return rc;
}

static int verbs_init(struct ep_transport *t, struct ep_transport_addr *self)
{
	char why[200];
	int rc = verbs_probe(&t->cfg, why, sizeof(why));
	if (rc)
		return ep_transport_fail(t, rc, "verbs: %s", why);
	struct verbs *v = calloc(1, sizeof(*v));
	if (!v)
		return ep_transport_fail(t, -ENOMEM, "verbs: out of memory");
	t->priv = v;
	v->slot = malloc(sizeof(int) * (size_t)t->cfg.num_ranks);
	if (!v->slot)
		return ep_transport_fail(t, -ENOMEM, "verbs: out of memory");
	for (int r = 0; r < t->cfg.num_ranks; r++)
		v->slot[r] = -1;
	struct vaddr a = {.magic = VERBS_MAGIC};
	if (!t->cfg.host || inet_pton(AF_INET, t->cfg.host, &a.ip) != 1)
		return ep_transport_fail(t, -EINVAL, "verbs: '%s' is not a numeric IPv4 address",
					 t->cfg.host ? t->cfg.host : "(none)");
	v->ch = rdma_create_event_channel();
	if (!v->ch)
		return ep_transport_fail(t, -errno, "verbs: rdma_create_event_channel: %s", strerror(errno));
	fcntl(v->ch->fd, F_SETFL, fcntl(v->ch->fd, F_GETFL) | O_NONBLOCK);
	if (rdma_create_id(v->ch, &v->listen, NULL, RDMA_PS_TCP))
		return ep_transport_fail(t, -errno, "verbs: rdma_create_id: %s", strerror(errno));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = a.ip};
	if (rdma_bind_addr(v->listen, (struct sockaddr *)&sa) || rdma_listen(v->listen, 256))
		return ep_transport_fail(t, -EP_ENODEV, "verbs: binding rdma_cm to %s: %s", t->cfg.host,
					 strerror(errno));
	if (!v->listen->verbs)
		return ep_transport_fail(t, -EP_ENODEV, "verbs: no RDMA device owns address %s", t->cfg.host);
	v->ctx = v->listen->verbs;
	const char *dev = ibv_get_device_name(v->ctx->device);
	if (t->cfg.ib_dev && strcmp(t->cfg.ib_dev, dev) != 0)
		return ep_transport_fail(t, -EP_ENODEV, "verbs: address %s belongs to %s, not --ib-dev %s",
					 t->cfg.host, dev, t->cfg.ib_dev);
	v->pd = ibv_alloc_pd(v->ctx);
	v->cc = v->pd ? ibv_create_comp_channel(v->ctx) : NULL;
	v->scq = v->cc ? ibv_create_cq(v->ctx, SQ_DEPTH * 32, NULL, NULL, 0) : NULL;
	v->rcq = v->scq ? ibv_create_cq(v->ctx, RQ_DEPTH * 32, NULL, v->cc, 0) : NULL;
	if (!v->rcq)
		return ep_transport_fail(t, -ENOMEM, "verbs: protection domain or completion queues on %s: %s",
					 dev, strerror(errno));
	fcntl(v->cc->fd, F_SETFL, fcntl(v->cc->fd, F_GETFL) | O_NONBLOCK);
	a.port = rdma_get_src_port(v->listen);
	memset(self, 0, sizeof(*self));
	memcpy(self->bytes, &a, sizeof(a));
	return 0;
}

static int verbs_reg_mem(struct ep_transport *t, int region, void *addr, size_t len)
{
	struct verbs *v = t->priv;
	if (region < 0 || region >= EP_TRANSPORT_MAX_REGIONS || v->mr[region])
		return ep_transport_fail(t, -EINVAL, "verbs: region %d: bad or duplicate id", region);
	v->mr[region] = ibv_reg_mr(v->pd, addr, len ? len : 1,
				   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	if (!v->mr[region])
		return ep_transport_fail(t, -errno, "verbs: ibv_reg_mr of %zu bytes (region %d): %s (memlock limit?)",
					 len, region, strerror(errno));
	v->base[region] = addr;
	v->len[region] = len;
	return 0;
}

static void peer_name(const struct ep_transport *t, int rank, char *buf, size_t len)
{
	ep_transport_peer_name(t, rank, buf, len);
}

/* Receive work request for peer slot i (wr_id = slot); the buffer only
 * matters for the one SEND carrying the peer's keys. */
static int post_recv(struct verbs *v, int i)
{
	struct vpeer *p = &v->peers[i];
	struct ibv_sge sge = {.addr = (uintptr_t)p->ctrl, .length = sizeof(*p->ctrl), .lkey = p->ctrl_mr->lkey};
	struct ibv_recv_wr wr = {.wr_id = (uint64_t)i, .sg_list = &sge, .num_sge = 1}, *bad;
	return ibv_post_recv(p->id->qp, &wr, &bad);
}

static int make_qp(struct ep_transport *t, int i, struct rdma_cm_id *id)
{
	struct verbs *v = t->priv;
	struct vpeer *p = &v->peers[i];
	struct ibv_qp_init_attr qa = {
		.send_cq = v->scq, .recv_cq = v->rcq, .qp_type = IBV_QPT_RC,
		.cap = {.max_send_wr = SQ_DEPTH, .max_recv_wr = RQ_DEPTH, .max_send_sge = 1, .max_recv_sge = 1},
	};
	char name[64];
	peer_name(t, p->rank, name, sizeof(name));
	p->id = id;
	id->context = p;
	if (rdma_create_qp(id, v->pd, &qa))
		return ep_transport_fail(t, -errno, "verbs: queue pair for %s: %s", name, strerror(errno));
	for (int k = 0; k < RQ_DEPTH; k++)
		if (post_recv(v, i))
			return ep_transport_fail(t, -EIO, "verbs: posting receives for %s failed", name);
	return 0;
}

static struct rdma_conn_param conn_param(const struct conn_hello *h)
{
	return (struct rdma_conn_param){
		.private_data = h, .private_data_len = sizeof(*h), .responder_resources = 1,
		.initiator_depth = 1, .retry_count = 7, .rnr_retry_count = 7,
	};
}

/* One rdma_cm event, handled; 0, or a failure. */
static int cm_event(struct ep_transport *t, struct rdma_cm_event *ev)
{
	struct verbs *v = t->priv;
	struct vpeer *p = ev->id ? ev->id->context : NULL;
	char name[64] = "a peer";
	if (p)
		peer_name(t, p->rank, name, sizeof(name));
	int rc = 0;
	switch (ev->event) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
		if (rdma_resolve_route(ev->id, CM_TIMEOUT_MS))
			rc = ep_transport_fail(t, -EP_EPEERDIED, "verbs: route to %s: %s", name, strerror(errno));
		break;
	case RDMA_CM_EVENT_ROUTE_RESOLVED: {
		struct conn_hello h = {VERBS_MAGIC, t->cfg.rank, t->cfg.job_id};
		struct rdma_conn_param cp = conn_param(&h);
		if ((rc = make_qp(t, (int)(p - v->peers), ev->id)) == 0 && rdma_connect(ev->id, &cp))
			rc = ep_transport_fail(t, -EP_EPEERDIED, "verbs: connecting to %s: %s", name, strerror(errno));
		break;
	}
	case RDMA_CM_EVENT_CONNECT_REQUEST: {
		struct conn_hello h = {0};
		if (ev->param.conn.private_data && ev->param.conn.private_data_len >= sizeof(h))
			memcpy(&h, ev->param.conn.private_data, sizeof(h));
		int i = h.magic == VERBS_MAGIC && h.job_id == t->cfg.job_id && h.rank >= 0 &&
				h.rank < t->cfg.num_ranks ? v->slot[h.rank] : -1;
		if (i < 0 || h.rank < t->cfg.rank || v->peers[i].id) {
			rdma_reject(ev->id, NULL, 0); /* another job, or a stranger */
			break;
		}
		struct conn_hello mine = {VERBS_MAGIC, t->cfg.rank, t->cfg.job_id};
		struct rdma_conn_param cp = conn_param(&mine);
		if ((rc = make_qp(t, i, ev->id)) == 0 && rdma_accept(ev->id, &cp))
			rc = ep_transport_fail(t, -EP_EPEERDIED, "verbs: accepting rank %d: %s", h.rank, strerror(errno));
		break;
	}
	case RDMA_CM_EVENT_ESTABLISHED:
		if (p)
			p->connected = 1;
		break;
	case RDMA_CM_EVENT_DISCONNECTED:
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
	case RDMA_CM_EVENT_TIMEWAIT_EXIT:
		if (p && !p->lost) {
			p->lost = 1;
			snprintf(p->why, sizeof(p->why), "disconnected (%s)", rdma_event_str(ev->event));
		}
		break;
	case RDMA_CM_EVENT_ADDR_ERROR:
	case RDMA_CM_EVENT_ROUTE_ERROR:
	case RDMA_CM_EVENT_CONNECT_ERROR:
	case RDMA_CM_EVENT_UNREACHABLE:
	case RDMA_CM_EVENT_REJECTED:
		rc = ep_transport_fail(t, -EP_EPEERDIED, "verbs: %s: %s (status %d)", name,
				       rdma_event_str(ev->event), ev->status);
		break;
	default:
		break;
	}
	return rc;
}

/* Handles every pending rdma_cm event without blocking. */
static int cm_drain(struct ep_transport *t)
{
	struct verbs *v = t->priv;
	struct rdma_cm_event *ev;
	while (rdma_get_cm_event(v->ch, &ev) == 0) {
		/* The event is acked (freed) before it is handled, so that handling
		 * may block; its private data lives inside it and is copied too
		 * (reading it after the ack was a use-after-free, found by ASan
		 * under Soft-RoCE). */
		struct rdma_cm_event copy = *ev;
		unsigned char priv[256];
		size_t plen = ev->param.conn.private_data ? ev->param.conn.private_data_len : 0;
		if (plen > sizeof(priv))
			plen = sizeof(priv);
		if (plen)
			memcpy(priv, ev->param.conn.private_data, plen);
		copy.param.conn.private_data = plen ? priv : NULL;
		copy.param.conn.private_data_len = (uint8_t)plen;
		rdma_ack_cm_event(ev);
		int rc = cm_event(t, &copy);
		if (rc)
			return rc;
	}
	return 0;
}

/* Handles one receive completion: a key table or a counted signal. */
static int recv_done(struct ep_transport *t, const struct ibv_wc *wc)
{
	struct verbs *v = t->priv;
	if (wc->wr_id >= (uint64_t)v->npeers)
		return 0;
	struct vpeer *p = &v->peers[wc->wr_id];
	char name[64]; /* named only on failure: this runs once per signal */
	if (wc->status != IBV_WC_SUCCESS) {
		if (wc->status == IBV_WC_WR_FLUSH_ERR && p->lost)
			return 0;
		peer_name(t, p->rank, name, sizeof(name));
		p->lost = 1;
		snprintf(p->why, sizeof(p->why), "receive completion failed: %s", ibv_wc_status_str(wc->status));
		return ep_transport_fail(t, -EP_EPEERDIED, "verbs: %s: %s", name, p->why);
	}
	if (wc->opcode == IBV_WC_RECV_RDMA_WITH_IMM)
		p->signals++;
	else if (wc->opcode == IBV_WC_RECV && p->ctrl->magic == VERBS_MAGIC) {
		p->keys = *p->ctrl;
		p->keys_in = 1;
	}
	if (post_recv(v, (int)wc->wr_id)) {
		peer_name(t, p->rank, name, sizeof(name));
		return ep_transport_fail(t, -EIO, "verbs: reposting a receive for %s failed", name);
	}
	return 0;
}

/* Handles send completions; 0 or the first failure. */
static int send_done(struct ep_transport *t, const struct ibv_wc *wc)
{
	struct verbs *v = t->priv;
	if (wc->wr_id >= (uint64_t)v->npeers)
		return 0;
	struct vpeer *p = &v->peers[wc->wr_id];
	p->outstanding--;
	if (wc->status == IBV_WC_SUCCESS)
		return 0;
	char name[64];
	peer_name(t, p->rank, name, sizeof(name));
	p->lost = 1;
	snprintf(p->why, sizeof(p->why), "%s (%s)", ibv_wc_status_str(wc->status),
		 wc->status == IBV_WC_RETRY_EXC_ERR ? "peer unreachable or dead" : "work request failed");
	return ep_transport_fail(t, -EP_EPEERDIED, "verbs: write to %s: %s", name, p->why);
}

/* Polls both CQs once; returns completions seen (>= 0) or a failure. */
static int progress(struct ep_transport *t)
{
	struct verbs *v = t->priv;
	struct ibv_wc wc[32];
	int seen = 0, n, rc;
	while ((n = ibv_poll_cq(v->scq, 32, wc)) > 0) {
		for (int i = 0; i < n; i++)
			if ((rc = send_done(t, &wc[i])))
				return rc;
		seen += n;
	}
	while ((n = ibv_poll_cq(v->rcq, 32, wc)) > 0) {
		for (int i = 0; i < n; i++)
			if ((rc = recv_done(t, &wc[i])))
				return rc;
		seen += n;
	}
	if (n < 0)
		return ep_transport_fail(t, -EIO, "verbs: ibv_poll_cq failed");
	return seen;
}

/* Sleeps up to ms on the receive CQ's channel and the cm channel. */
static void sleep_on_events(struct ep_transport *t, int ms)
{
	struct verbs *v = t->priv;
	ibv_req_notify_cq(v->rcq, 0);
	if (progress(t) != 0) /* raced with an arrival: do not sleep */
		return;
	struct pollfd pf[2] = {{.fd = v->cc->fd, .events = POLLIN}, {.fd = v->ch->fd, .events = POLLIN}};
	if (poll(pf, 2, ms) > 0 && (pf[0].revents & POLLIN)) {
		struct ibv_cq *cq;
		void *cq_ctx;
		if (ibv_get_cq_event(v->cc, &cq, &cq_ctx) == 0)
			ibv_ack_cq_events(cq, 1);
	}
}

static int post_send_keys(struct ep_transport *t, int i)
{
	struct verbs *v = t->priv;
	struct vpeer *p = &v->peers[i];
	static struct key_msg msg; /* copied into p->ctrl below: sent from registered memory */
	memset(&msg, 0, sizeof(msg));
	msg.magic = VERBS_MAGIC;
	msg.rank = t->cfg.rank;
	for (int r = 0; r < EP_TRANSPORT_MAX_REGIONS; r++)
		if (v->mr[r])
			msg.r[r] = (struct region_key){(uintptr_t)v->base[r], v->len[r], v->mr[r]->rkey, 1};
	/* The receive buffer doubles as the send buffer: no receive has landed
	 * yet (the peer sends its keys only once connected, as we do). */
	struct key_msg *out = malloc(sizeof(*out));
	if (!out)
		return -ENOMEM;
	*out = msg;
	struct ibv_mr *mr = ibv_reg_mr(v->pd, out, sizeof(*out), IBV_ACCESS_LOCAL_WRITE);
	if (!mr) {
		free(out);
		return -errno;
	}
	struct ibv_sge sge = {.addr = (uintptr_t)out, .length = sizeof(*out), .lkey = mr->lkey};
	struct ibv_send_wr wr = {.wr_id = (uint64_t)i, .sg_list = &sge, .num_sge = 1,
				 .opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED}, *bad;
	int rc = ibv_post_send(p->id->qp, &wr, &bad);
	if (rc == 0) {
		p->outstanding++;
		int64_t deadline = ep_now_ns() + (int64_t)(t->cfg.timeout_s * 1e9);
		while (p->outstanding && ep_now_ns() < deadline && (rc = progress(t)) >= 0)
			rc = 0;
		if (rc >= 0 && p->outstanding)
			rc = -EP_ETIMEDOUT;
	}
	ibv_dereg_mr(mr);
	free(out);
	return rc > 0 ? 0 : rc;
}

static int verbs_connect(struct ep_transport *t, const int *peers, int npeers,
			 const struct ep_transport_addr *addrs)
{
	struct verbs *v = t->priv;
	int64_t deadline = ep_now_ns() + (int64_t)(t->cfg.timeout_s * 1e9);
	int rc;
	v->peers = calloc((size_t)npeers + 1, sizeof(*v->peers));
	if (!v->peers)
		return ep_transport_fail(t, -ENOMEM, "verbs: out of memory");
	v->npeers = npeers;
	for (int i = 0; i < npeers; i++) {
		struct vpeer *p = &v->peers[i];
		p->rank = peers[i];
		v->slot[peers[i]] = i;
		p->ctrl = calloc(1, sizeof(*p->ctrl));
		p->ctrl_mr = p->ctrl ? ibv_reg_mr(v->pd, p->ctrl, sizeof(*p->ctrl), IBV_ACCESS_LOCAL_WRITE) : NULL;
		if (!p->ctrl_mr)
			return ep_transport_fail(t, -ENOMEM, "verbs: control buffer: %s", strerror(errno));
	}
	/* active side: lower ranks; the rest arrive as connect requests */
	for (int i = 0; i < npeers; i++) {
		if (peers[i] > t->cfg.rank)
			continue;
		struct vaddr a;
		memcpy(&a, addrs[peers[i]].bytes, sizeof(a));
		struct sockaddr_in dst = {.sin_family = AF_INET, .sin_addr.s_addr = a.ip, .sin_port = a.port};
		struct rdma_cm_id *id;
		if (a.magic != VERBS_MAGIC || rdma_create_id(v->ch, &id, &v->peers[i], RDMA_PS_TCP))
			return ep_transport_fail(t, -EINVAL, "verbs: rank %d has no verbs address", peers[i]);
		v->peers[i].id = id;
		if (rdma_resolve_addr(id, NULL, (struct sockaddr *)&dst, CM_TIMEOUT_MS))
			return ep_transport_fail(t, -EP_EPEERDIED, "verbs: resolving rank %d: %s", peers[i],
						 strerror(errno));
	}
	for (;;) {
		if ((rc = cm_drain(t)))
			return rc;
		int up = 0;
		for (int i = 0; i < npeers; i++)
			up += v->peers[i].connected;
		if (up == npeers)
			break;
		if (ep_now_ns() >= deadline) {
			char missing[128] = "";
			size_t n = 0;
			for (int i = 0; i < npeers && n + 12 < sizeof(missing); i++)
				if (!v->peers[i].connected)
					n += (size_t)snprintf(missing + n, sizeof(missing) - n, "%s%d", n ? "," : "",
							      v->peers[i].rank);
			return ep_transport_fail(t, -EP_ETIMEDOUT, "verbs: rank %d: no connection with ranks %s within %.0f s",
						 t->cfg.rank, missing, t->cfg.timeout_s);
		}
		struct pollfd pf = {.fd = v->ch->fd, .events = POLLIN};
		poll(&pf, 1, 50);
	}
	/* region keys, one SEND each way */
	for (int i = 0; i < npeers; i++)
		if ((rc = post_send_keys(t, i)))
			return ep_transport_fail(t, rc, "verbs: sending region keys to rank %d failed%s%s",
						 v->peers[i].rank, t->error[0] ? ": " : "", t->error);
	for (;;) {
		int in = 0;
		for (int i = 0; i < npeers; i++)
			in += v->peers[i].keys_in;
		if (in == npeers)
			return 0;
		if ((rc = progress(t)) < 0)
			return rc;
		if (ep_now_ns() >= deadline)
			return ep_transport_fail(t, -EP_ETIMEDOUT, "verbs: region keys did not arrive within %.0f s",
						 t->cfg.timeout_s);
		if (rc == 0)
			sleep_on_events(t, 10);
	}
}

static struct vpeer *vpeer_of(struct ep_transport *t, int rank)
{
	struct verbs *v = t->priv;
	if (!v || rank < 0 || rank >= t->cfg.num_ranks || v->slot[rank] < 0 || !v->peers)
		return NULL;
	return &v->peers[v->slot[rank]];
}

/* Waits for room in the send queue of p. */
static int room(struct ep_transport *t, struct vpeer *p)
{
	int64_t deadline = ep_now_ns() + (int64_t)(t->cfg.timeout_s * 1e9);
	while (p->outstanding >= SQ_DEPTH - 1) {
		int rc = progress(t);
		if (rc < 0)
			return rc;
		if (ep_now_ns() >= deadline) {
			char name[64];
			peer_name(t, p->rank, name, sizeof(name));
			return ep_transport_fail(t, -EP_ETIMEDOUT, "verbs: writes to %s did not complete for %.0f s",
						 name, t->cfg.timeout_s);
		}
	}
	return 0;
}

static int verbs_put(struct ep_transport *t, int peer, const void *src, int region, size_t off,
		     size_t len)
{
	struct verbs *v = t->priv;
	struct vpeer *p = vpeer_of(t, peer);
	char name[64];
	peer_name(t, peer, name, sizeof(name));
	if (!p)
		return ep_transport_fail(t, -EINVAL, "verbs: %s is not a connected peer", name);
	if (p->lost)
		return ep_transport_fail(t, -EP_EPEERDIED, "verbs: %s: %s", name, p->why);
	int lr = -1;
	for (int r = 0; r < EP_TRANSPORT_MAX_REGIONS; r++)
		if (v->mr[r] && (const char *)src >= v->base[r] && (const char *)src + len <= v->base[r] + v->len[r])
			lr = r;
	if (lr < 0 || region < 0 || region >= EP_TRANSPORT_MAX_REGIONS || !p->keys.r[region].valid ||
	    off > p->keys.r[region].len || len > p->keys.r[region].len - off)
		return ep_transport_fail(t, -EINVAL, "verbs: put of %zu bytes at %zu to region %d of %s: "
					 "outside a registered region", len, off, region, name);
	for (size_t done = 0; done < len;) {
		size_t n = len - done < MAX_WRITE ? len - done : MAX_WRITE;
		int rc = room(t, p);
		if (rc)
			return rc;
		struct ibv_sge sge = {.addr = (uintptr_t)src + done, .length = (uint32_t)n, .lkey = v->mr[lr]->lkey};
		struct ibv_send_wr wr = {
			.wr_id = (uint64_t)v->slot[peer], .sg_list = &sge, .num_sge = 1,
			.opcode = IBV_WR_RDMA_WRITE, .send_flags = IBV_SEND_SIGNALED,
			.wr.rdma = {.remote_addr = p->keys.r[region].addr + off + done, .rkey = p->keys.r[region].rkey},
		}, *bad;
		if ((rc = ibv_post_send(p->id->qp, &wr, &bad)))
			return ep_transport_fail(t, -EP_EPEERDIED, "verbs: posting a write to %s: %s", name, strerror(rc));
		p->outstanding++;
		done += n;
	}
	return 0;
}

static int verbs_signal(struct ep_transport *t, int peer)
{
	struct verbs *v = t->priv;
	struct vpeer *p = vpeer_of(t, peer);
	char name[64];
	peer_name(t, peer, name, sizeof(name));
	if (!p)
		return ep_transport_fail(t, -EINVAL, "verbs: %s is not a connected peer", name);
	if (p->lost)
		return ep_transport_fail(t, -EP_EPEERDIED, "verbs: %s: %s", name, p->why);
	int rc = room(t, p);
	if (rc)
		return rc;
	struct ibv_send_wr wr = {
		.wr_id = (uint64_t)v->slot[peer], .num_sge = 0, .opcode = IBV_WR_RDMA_WRITE_WITH_IMM,
		.send_flags = IBV_SEND_SIGNALED, .imm_data = htonl((uint32_t)t->cfg.rank),
		.wr.rdma = {.remote_addr = p->keys.r[0].addr, .rkey = p->keys.r[0].rkey},
	}, *bad;
	if ((rc = ibv_post_send(p->id->qp, &wr, &bad)))
		return ep_transport_fail(t, -EP_EPEERDIED, "verbs: posting a signal to %s: %s", name, strerror(rc));
	p->outstanding++;
	/* complete on this side: every earlier put and this signal */
	int64_t deadline = ep_now_ns() + (int64_t)(t->cfg.timeout_s * 1e9);
	while (p->outstanding) {
		if ((rc = progress(t)) < 0)
			return rc;
		if (ep_now_ns() >= deadline)
			return ep_transport_fail(t, -EP_ETIMEDOUT, "verbs: writes to %s did not complete for %.0f s",
						 name, t->cfg.timeout_s);
	}
	return 0;
}

static int verbs_wait(struct ep_transport *t, int peer, uint32_t target)
{
	struct vpeer *p = vpeer_of(t, peer);
	char name[64];
	peer_name(t, peer, name, sizeof(name));
	if (!p)
		return ep_transport_fail(t, -EINVAL, "verbs: %s is not a connected peer", name);
	int64_t deadline = ep_now_ns() + (int64_t)(t->cfg.timeout_s * 1e9);
	for (int spins = 0;; spins++) {
		if ((int32_t)(p->signals - target) >= 0)
			return 0;
		int rc = progress(t);
		if (rc < 0)
			return rc;
		if (rc > 0)
			continue;
		if (p->lost)
			return ep_transport_fail(t, -EP_EPEERDIED, "verbs: %s %s (had %u of %u signals)", name,
						 p->why, p->signals, target);
		int64_t left = deadline - ep_now_ns();
		if (left <= 0)
			return ep_transport_fail(t, -EP_ETIMEDOUT, "verbs: no signal from %s for %.1f s (had %u of %u)",
						 name, t->cfg.timeout_s, p->signals, target);
		if (spins > SPIN_POLLS) {
			cm_drain(t); /* notices DISCONNECTED */
			sleep_on_events(t, left > 50000000 ? 50 : (int)(left / 1000000) + 1);
		}
	}
}

static void verbs_fini(struct ep_transport *t)
{
	struct verbs *v = t->priv;
	if (!v)
		return;
	for (int i = 0; v->peers && i < v->npeers; i++) {
		struct vpeer *p = &v->peers[i];
		if (p->id) {
			if (p->connected && !p->lost)
				rdma_disconnect(p->id);
			if (p->id->qp)
				rdma_destroy_qp(p->id);
			rdma_destroy_id(p->id);
		}
		if (p->ctrl_mr)
			ibv_dereg_mr(p->ctrl_mr);
		free(p->ctrl);
	}
	for (int r = 0; r < EP_TRANSPORT_MAX_REGIONS; r++)
		if (v->mr[r])
			ibv_dereg_mr(v->mr[r]);
	if (v->rcq)
		ibv_destroy_cq(v->rcq);
	if (v->scq)
		ibv_destroy_cq(v->scq);
	if (v->cc)
		ibv_destroy_comp_channel(v->cc);
	if (v->pd)
		ibv_dealloc_pd(v->pd);
	if (v->listen)
		rdma_destroy_id(v->listen);
	if (v->ch)
		rdma_destroy_event_channel(v->ch);
	free(v->peers);
	free(v->slot);
	free(v);
	t->priv = NULL;
}

static void verbs_describe(const struct ep_transport *t, char *buf, size_t len)
{
	struct verbs *v = t->priv;
	union ibv_gid gid;
	char g[INET6_ADDRSTRLEN] = "?";
	if (!v || !v->ctx || !v->listen) {
		snprintf(buf, len, "verbs %s", t->cfg.host ? t->cfg.host : "?");
		return;
	}
	int port = v->listen->port_num ? v->listen->port_num : 1;
	if (!ibv_query_gid(v->ctx, (uint8_t)port, t->cfg.gid_index >= 0 ? t->cfg.gid_index : 0, &gid))
		inet_ntop(AF_INET6, gid.raw, g, sizeof(g));
	snprintf(buf, len, "verbs %s port %d gid %s", ibv_get_device_name(v->ctx->device), port, g);
}

/* --fault link-down / qp-error: the queue pair to peer is forced into the
 * error state (its work requests flush with errors), then disconnected so
 * that the peer's side fails too (it sees the disconnect event). */
static int verbs_sever(struct ep_transport *t, int peer)
{
	struct verbs *v = t->priv;
	int i = v && peer >= 0 && peer < t->cfg.num_ranks ? v->slot[peer] : -1;
	if (i < 0 || !v->peers[i].id || !v->peers[i].id->qp)
		return ep_transport_fail(t, -EINVAL, "verbs: no queue pair to rank %d to break", peer);
	struct ibv_qp_attr attr = {.qp_state = IBV_QPS_ERR};
	if (ibv_modify_qp(v->peers[i].id->qp, &attr, IBV_QP_STATE))
		return ep_transport_fail(t, -errno, "verbs: the queue pair to rank %d would not enter the error state: %s",
					 peer, strerror(errno));
	rdma_disconnect(v->peers[i].id);
	return 0;
}

const struct ep_transport_ops ep_transport_verbs = {
	.name = "verbs",
	.probe = verbs_probe,
	.init = verbs_init,
	.reg_mem = verbs_reg_mem,
	.connect = verbs_connect,
	.put = verbs_put,
	.signal = verbs_signal,
	.wait = verbs_wait,
	.fini = verbs_fini,
	.describe = verbs_describe,
	.sever = verbs_sever,
};
