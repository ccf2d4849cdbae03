/* transport.h - one-sided puts and counted signals between ranks on different nodes.
 *
 * The model is RDMA's: every rank registers the same numbered regions (same
 * ids, same lengths: a symmetric heap, as NVSHMEM has), then writes into a
 * peer's region at an offset (put) and tells it so with a counted signal
 * (RDMA WRITE with immediate). A receiver never takes part in a put: the
 * backend lands the bytes in place (verbs: the NIC; tcp: a receive thread per
 * endpoint; shm: the writer's own memcpy). A rank waits for "peer p has
 * signalled me n times", never for a message.
 *
 * Lifecycle, the same for every backend:
 *   init -> reg_mem (every region, same order everywhere) -> publish the
 *   address init produced -> connect (with every peer's address) ->
 *   put / signal / wait ... -> fini.
 *
 * Ordering: puts and signals from one rank to one peer arrive in issue order,
 * so a peer that has seen signal n also sees every byte put before it.
 * Nothing is ordered between different peers.
 *
 * Errors: every call returns 0 or a negative code (-EP_ETIMEDOUT,
 * -EP_EPEERDIED, -EP_ENODEV, -errno) and leaves one line naming the peer
 * (global rank, node) in t->error. Backends never print and never exit.
 */
#ifndef EP_TRANSPORT_H
#define EP_TRANSPORT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#define EP_TRANSPORT_ADDR_MAX 64
#define EP_TRANSPORT_MAX_REGIONS 8
#define EP_TRANSPORT_ERROR_MAX 256

/* What peers need to reach an endpoint; opaque outside its backend. */
struct ep_transport_addr {
	uint8_t bytes[EP_TRANSPORT_ADDR_MAX];
};

struct ep_transport_cfg {
	int rank;              /* this endpoint's global rank */
	int num_ranks;         /* R: peers are named by global rank */
	int ranks_per_node;    /* for messages only: node = rank / ranks_per_node */
	const char *host;      /* numeric IPv4 address peers reach this node at */
	double timeout_s;      /* deadline of every blocking call */
	uint64_t job_id;       /* configuration hash: a connection from another job is refused */
	const char *ib_dev;    /* verbs: device name, NULL = the first one */
	int gid_index;         /* verbs: GID index (RoCE v2 is usually 1 or 3), -1 = default */
	void *shm_fabric;      /* shm: fabric mapped before fork (ep_shm_fabric_create) */
};

struct ep_transport;

/* A backend: one file, one static const table. */
struct ep_transport_ops {
	const char *name;
	/* Is this backend usable on this host? Does not block. 0, or
	 * -EP_ENODEV with the reason in why ("no RDMA device"). */
	int (*probe)(const struct ep_transport_cfg *cfg, char *why, size_t len);
	/* Creates the endpoint (and its listener) and fills self with the
	 * address peers connect to. Does not block. t->cfg is set. */
	int (*init)(struct ep_transport *t, struct ep_transport_addr *self);
	/* Makes [addr, addr + len) region `region`, both as a put target and as
	 * a put source. Local, does not block; every region before connect. */
	int (*reg_mem)(struct ep_transport *t, int region, void *addr, size_t len);
	/* Connects to the npeers global ranks in peers, whose addresses are
	 * addrs[rank] (indexed by global rank). Collective between the peers:
	 * blocks until every connection is up (and region keys are exchanged),
	 * at most timeout_s. */
	int (*connect)(struct ep_transport *t, const int *peers, int npeers,
		       const struct ep_transport_addr *addrs);
	/* Writes len bytes from src (inside a registered region) to the peer's
	 * region `region` at offset off. May return before the bytes land; the
	 * source must stay unchanged until the next signal to that peer returns.
	 * Blocks only while the backend has no room (at most timeout_s). */
	int (*put)(struct ep_transport *t, int peer, const void *src, int region, size_t off,
		   size_t len);
	/* Optional (NULL: a put's source must be a registered region, so callers
	 * pack into one and put). Writes the concatenation of the n pieces
	 * iov[0..n-1], which may lie anywhere in this process's memory, to the
	 * peer's region `region` at offset off: one put in every other respect
	 * (ordering, completion, the sources stay unchanged until the next
	 * signal to that peer returns). Blocks only while the backend has no room. */
	int (*putv)(struct ep_transport *t, int peer, const struct iovec *iov, int n, int region, size_t off);
	/* Adds one to the peer's counter for this rank, after every earlier put
	 * to that peer. Returns once those puts and the signal are complete on
	 * this side (their sources may be reused). Blocks at most timeout_s. */
	int (*signal)(struct ep_transport *t, int peer);
	/* Blocks until peer has signalled this rank `target` times in all
	 * (wrap-safe 32-bit), or timeout_s passes (-EP_ETIMEDOUT), or the peer
	 * is gone (-EP_EPEERDIED). */
	int (*wait)(struct ep_transport *t, int peer, uint32_t target);
	/* Optional (NULL: callers only wait). Has peer signalled this rank
	 * `target` times in all (wrap-safe 32-bit)? 1 or 0; for a caller with
	 * other work to do until it has. Does not block and never fails: a
	 * lost peer answers 0, and the next wait reports it. */
	int (*test)(struct ep_transport *t, int peer, uint32_t target);
	/* Orderly close: tells connected peers, waits until they have said the
	 * same (at most cfg.timeout_s, which a failing caller may shorten first),
	 * frees everything. Accepts a half-built endpoint. */
	void (*fini)(struct ep_transport *t);
	/* Optional (NULL: the backend's name). One line saying where this
	 * endpoint is reached ("tcp 10.0.0.2:40111", "verbs rxe0 port 1 gid
	 * ::ffff:10.0.0.2"), for diagnostics. After init; does not block. */
	void (*describe)(const struct ep_transport *t, char *buf, size_t len);
	/* Optional (NULL: not possible here). A test hook for the link-down
	 * and qp-error faults: cuts the connection to peer (tcp: shutdown,
	 * seen at both ends; verbs: the queue pair forced into the error
	 * state, then disconnected); every later call involving that peer
	 * fails on both sides (-EP_EPEERDIED, the socket's error for a put, or
	 * a flushed completion). Does not block. */
	int (*sever)(struct ep_transport *t, int peer);
};

/* The generic endpoint: the table, the configuration, the backend's state. */
struct ep_transport {
	const struct ep_transport_ops *ops;
	struct ep_transport_cfg cfg;
	void *priv;                          /* backend state */
	char error[EP_TRANSPORT_ERROR_MAX];  /* the last failure, one line */
};

extern const struct ep_transport_ops ep_transport_tcp;
extern const struct ep_transport_ops ep_transport_verbs;
extern const struct ep_transport_ops ep_transport_shm;

/* The backend called name ("tcp", "verbs", "shm"), or NULL. */
const struct ep_transport_ops *ep_transport_find(const char *name);

/* "auto": verbs when its probe succeeds, else tcp. why gets the reason when
 * verbs was passed over. Never NULL. */
const struct ep_transport_ops *ep_transport_auto(const struct ep_transport_cfg *cfg, char *why,
						 size_t len);

/* Records a failure line in t->error and returns err. */
int ep_transport_fail(struct ep_transport *t, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "rank 5 (node 1)" for messages. */
void ep_transport_peer_name(const struct ep_transport *t, int peer, char *buf, size_t len);

/* Thin wrappers: the only way the collectives call a backend. */
static inline int ep_transport_init(struct ep_transport *t, const struct ep_transport_ops *ops,
				    const struct ep_transport_cfg *cfg,
				    struct ep_transport_addr *self)
{
	t->ops = ops;
	t->cfg = *cfg;
	t->priv = NULL;
	t->error[0] = 0;
	return ops->init(t, self);
}

static inline int ep_transport_reg_mem(struct ep_transport *t, int region, void *addr, size_t len)
{
	return t->ops->reg_mem(t, region, addr, len);
}

static inline int ep_transport_connect(struct ep_transport *t, const int *peers, int npeers,
				       const struct ep_transport_addr *addrs)
{
	return t->ops->connect(t, peers, npeers, addrs);
}

static inline int ep_transport_put(struct ep_transport *t, int peer, const void *src, int region,
				   size_t off, size_t len)
{
	return t->ops->put(t, peer, src, region, off, len);
}

/* Can this endpoint put from unregistered memory (putv)? */
static inline int ep_transport_has_putv(const struct ep_transport *t)
{
	return t->ops->putv != NULL;
}

static inline int ep_transport_putv(struct ep_transport *t, int peer, const struct iovec *iov, int n, int region,
				    size_t off)
{
	return t->ops->putv(t, peer, iov, n, region, off);
}

static inline int ep_transport_signal(struct ep_transport *t, int peer)
{
	return t->ops->signal(t, peer);
}

static inline int ep_transport_wait(struct ep_transport *t, int peer, uint32_t target)
{
	return t->ops->wait(t, peer, target);
}

/* 1 when peer has signalled `target` times; 0 when not yet, or when the
 * backend cannot tell without blocking (then the caller's wait does). */
static inline int ep_transport_test(struct ep_transport *t, int peer, uint32_t target)
{
	return t->ops->test ? t->ops->test(t, peer, target) : 0;
}

static inline void ep_transport_describe(const struct ep_transport *t, char *buf, size_t len)
{
	if (t->ops->describe)
		t->ops->describe(t, buf, len);
	else if (len)
		snprintf(buf, len, "%s", t->ops->name);
}

static inline int ep_transport_sever(struct ep_transport *t, int peer)
{
	return t->ops->sever ? t->ops->sever(t, peer) : -EOPNOTSUPP;
}

static inline void ep_transport_fini(struct ep_transport *t)
{
	if (t && t->ops)
		t->ops->fini(t);
	if (t)
		t->ops = NULL;
}

/* shm backend only: a fabric for up to num_ranks endpoints, mapped shared
 * and anonymous; create it before fork, destroy it after every rank is gone. */
void *ep_shm_fabric_create(int num_ranks, size_t bytes_per_rank);
void ep_shm_fabric_destroy(void *fabric);
/* shm: allocates len bytes of fabric memory for this rank (registrable). */
void *ep_shm_fabric_alloc(void *fabric, int rank, size_t len);

#endif
