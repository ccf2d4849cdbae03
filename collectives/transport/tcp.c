/* tcp.c - the transport over TCP sockets: one connection per peer, a receive thread per endpoint.
 *
 * Emulates what an RDMA NIC does with a thread: it reads framed messages
 * from every peer socket and lands PUT payloads straight into the target
 * region (no staging copy), counts SIGNALs, and notes BYE. Because the
 * receiving side always drains, a sender blocked on a full socket never
 * waits for its peer's application code, so no cycle of blocked senders can
 * form (a single-threaded progress engine could deadlock when one rank
 * waits on a shared-memory barrier while its peer's send is stuck).
 *
 * Connections: the higher global rank connects to the lower one's listener
 * and introduces itself with {magic, job id, rank}; connections from another
 * job or unknown ranks are dropped. Every socket gets TCP_NODELAY, keepalive
 * and TCP_USER_TIMEOUT (the --timeout), so a dead host is noticed even when
 * no RST ever comes.
 *
 * Frame: {u32 type, u32 region, u64 offset, u64 length} then length bytes
 * (PUT only). Per peer, frames are processed in order: a signal is counted
 * only after the bytes of every earlier put to this rank have landed.
 */
#define _GNU_SOURCE
#include "collectives/transport/transport.h"
#include "collectives/transport/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "collectives/error.h"
#include "collectives/sync.h"

#define TCP_MAGIC 0x45505431u /* "EPT1" */
#define BYE_WAIT_MAX_S 10.0

enum frame_type { FRAME_PUT = 1, FRAME_SIGNAL = 2, FRAME_BYE = 3 };
enum peer_state { PEER_UP = 0, PEER_BYE = 1, PEER_LOST = 2 };

struct frame {
	uint32_t type;
	uint32_t region;
	uint64_t off;
	uint64_t len;
};

struct hello {
	uint32_t magic;
	int32_t rank;
	uint64_t job_id;
};

/* What init publishes: IPv4 address and port of the listener. */
struct tcp_addr {
	uint32_t magic;
	uint32_t ip;    /* network order */
	uint16_t port;  /* network order */
};

struct peer {
	int rank;
	int fd;
	/* receive state, touched by the receive thread only */
	struct frame hdr;
	size_t hdr_got, body_got;
	int in_body, eof;
	/* shared with the rank's thread */
	_Atomic uint32_t signals;
	_Atomic int state;
	char why[160];                /* set once before state becomes PEER_LOST */
};

struct tcp {
	int listen_fd;
	int npeers;
	struct peer *peers;
	int *slot;                    /* [R] peer index of a global rank, -1 if none */
	struct { char *base; size_t len; } regions[EP_TRANSPORT_MAX_REGIONS];
	pthread_t thread;
	int thread_running;
	int wake[2];                  /* pipe: tells the receive thread to stop */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	_Atomic uint32_t sleepers;
};

static int64_t deadline_of(double secs)
{
	return ep_now_ns() + (int64_t)(secs * 1e9);
}

static void wake_waiters(struct tcp *c)
{
	if (atomic_load(&c->sleepers) == 0)
		return;
	pthread_mutex_lock(&c->mu);
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void peer_lost(struct tcp *c, struct peer *p, const char *why, const char *detail)
{
	if (atomic_load(&p->state) == PEER_LOST)
		return;
	snprintf(p->why, sizeof(p->why), "%s%s%s", why, detail ? ": " : "", detail ? detail : "");
	atomic_store(&p->state, PEER_LOST);
	wake_waiters(c);
}

/* Handles a complete frame header; 0 or -1 on a protocol error. */
static int frame_begin(struct tcp *c, struct peer *p)
{
	const struct frame *f = &p->hdr;
	switch (f->type) {
	case FRAME_PUT:
		if (f->region >= EP_TRANSPORT_MAX_REGIONS || !c->regions[f->region].base ||
		    f->off > c->regions[f->region].len || f->len > c->regions[f->region].len - f->off)
			return -1;
		p->in_body = f->len > 0;
		p->body_got = 0;
		return 0;
	case FRAME_SIGNAL:
		atomic_fetch_add(&p->signals, 1);
		wake_waiters(c);
		return 0;
	case FRAME_BYE:
		if (atomic_load(&p->state) == PEER_UP)
			atomic_store(&p->state, PEER_BYE);
		wake_waiters(c);
		return 0;
	}
	return -1;
}

/* Reads whatever the socket holds without blocking. */
static void drain(struct tcp *c, struct peer *p)
{
	for (;;) {
		ssize_t n;
		if (p->in_body) {
			char *dst = c->regions[p->hdr.region].base + p->hdr.off + p->body_got;
			n = recv(p->fd, dst, p->hdr.len - p->body_got, MSG_DONTWAIT);
		} else {
			n = recv(p->fd, (char *)&p->hdr + p->hdr_got, sizeof(p->hdr) - p->hdr_got,
				 MSG_DONTWAIT);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				peer_lost(c, p, "connection failed", strerror(errno));
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				p->eof = 1;
			return;
		}
		if (n == 0) {
			p->eof = 1;
			if (atomic_load(&p->state) != PEER_BYE || p->in_body || p->hdr_got)
				peer_lost(c, p, "closed the connection (process died or was killed)", NULL);
			wake_waiters(c);
			return;
		}
		if (p->in_body) {
			p->body_got += (size_t)n;
			if (p->body_got == p->hdr.len)
				p->in_body = 0;
			continue;
		}
		p->hdr_got += (size_t)n;
		if (p->hdr_got < sizeof(p->hdr))
			continue;
		p->hdr_got = 0;
		if (frame_begin(c, p)) {
			peer_lost(c, p, "sent a malformed frame (another program or version?)", NULL);
			p->eof = 1;
			return;
		}
	}
}

static void *receive_thread(void *arg)
{
	struct tcp *c = arg;
	struct pollfd *pf = calloc((size_t)c->npeers + 1, sizeof(*pf));
	int *who = calloc((size_t)c->npeers + 1, sizeof(int));
	if (!pf || !who) {
		for (int i = 0; i < c->npeers; i++)
			peer_lost(c, &c->peers[i], "receive thread out of memory", NULL);
		free(pf);
		free(who);
		return NULL;
	}
	for (;;) {
		int n = 0;
		pf[n++] = (struct pollfd){.fd = c->wake[0], .events = POLLIN};
		for (int i = 0; i < c->npeers; i++)
			if (c->peers[i].fd >= 0 && !c->peers[i].eof) {
				who[n] = i;
				pf[n++] = (struct pollfd){.fd = c->peers[i].fd, .events = POLLIN};
			}
		if (poll(pf, (nfds_t)n, 1000) < 0 && errno != EINTR)
			break;
		if (pf[0].revents)
			break;
		for (int k = 1; k < n; k++)
			if (pf[k].revents)
				drain(c, &c->peers[who[k]]);
	}
	free(pf);
	free(who);
	return NULL;
}

/* Reads exactly len bytes before the deadline (connection setup only). */
static int recv_all(int fd, void *buf, size_t len, int64_t deadline)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = recv(fd, (char *)buf + got, len - got, MSG_DONTWAIT);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int ms = ep_sock_ms_left(deadline);
		if (ms == 0)
			return -EP_ETIMEDOUT;
		poll(&pf, 1, ms);
	}
	return 0;
}

static int tcp_probe(const struct ep_transport_cfg *cfg, char *why, size_t len)
{
	(void)cfg;
	(void)why;
	(void)len;
	return 0;
}

static int tcp_init(struct ep_transport *t, struct ep_transport_addr *self)
{
	struct tcp *c = calloc(1, sizeof(*c));
	struct tcp_addr a = {.magic = TCP_MAGIC};
	if (!c)
		return ep_transport_fail(t, -ENOMEM, "tcp: out of memory");
	c->listen_fd = c->wake[0] = c->wake[1] = -1;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	t->priv = c;
	if (!t->cfg.host || inet_pton(AF_INET, t->cfg.host, &a.ip) != 1)
		return ep_transport_fail(t, -EINVAL, "tcp: '%s' is not a numeric IPv4 address",
					 t->cfg.host ? t->cfg.host : "(none)");
	c->slot = malloc(sizeof(int) * (size_t)t->cfg.num_ranks);
	if (!c->slot)
		return ep_transport_fail(t, -ENOMEM, "tcp: out of memory");
	for (int r = 0; r < t->cfg.num_ranks; r++)
		c->slot[r] = -1;
	if (pipe2(c->wake, O_CLOEXEC))
		return ep_transport_fail(t, -errno, "tcp: pipe: %s", strerror(errno));
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		return ep_transport_fail(t, -errno, "tcp: socket: %s", strerror(errno));
	c->listen_fd = fd;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
	socklen_t sl = sizeof(sa);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 256) ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl))
		return ep_transport_fail(t, -errno, "tcp: listening socket: %s", strerror(errno));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	a.port = sa.sin_port;
	memset(self, 0, sizeof(*self));
	memcpy(self->bytes, &a, sizeof(a));
	return 0;
}

static int tcp_reg_mem(struct ep_transport *t, int region, void *addr, size_t len)
{
	struct tcp *c = t->priv;
	if (region < 0 || region >= EP_TRANSPORT_MAX_REGIONS || c->thread_running)
		return ep_transport_fail(t, -EINVAL, "tcp: region %d: bad id, or registered after connect", region);
	c->regions[region].base = addr;
	c->regions[region].len = len;
	return 0;
}

static int connect_one(struct ep_transport *t, struct peer *p, const struct tcp_addr *a,
		       int64_t deadline)
{
	char name[64], ip[INET_ADDRSTRLEN];
	ep_transport_peer_name(t, p->rank, name, sizeof(name));
	inet_ntop(AF_INET, &a->ip, ip, sizeof(ip));
	int err = 0;
	do {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return ep_transport_fail(t, -errno, "tcp: socket: %s", strerror(errno));
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = a->ip, .sin_port = a->port};
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS) {
			struct pollfd pf = {.fd = fd, .events = POLLOUT};
			while (poll(&pf, 1, ep_sock_ms_left(deadline)) < 0 && errno == EINTR)
				;
			socklen_t el = sizeof(err);
			err = 0;
			if (!(pf.revents & (POLLOUT | POLLERR | POLLHUP)))
				err = ETIMEDOUT;
			else
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		} else {
			err = errno;
		}
		if (err == 0) {
			ep_sock_tune(fd, t->cfg.timeout_s);
			struct hello h = {TCP_MAGIC, t->cfg.rank, t->cfg.job_id};
			struct iovec iov = {&h, sizeof(h)};
			int rc = ep_sock_send_all(fd, &iov, 1, deadline);
			if (rc) {
				close(fd);
				return ep_transport_fail(t, rc, "tcp: introducing rank %d to %s at %s:%u: %s",
							 t->cfg.rank, name, ip, ntohs(a->port),
							 rc == -EP_ETIMEDOUT ? "timed out" : strerror(-rc));
			}
			p->fd = fd;
			return 0;
		}
		close(fd);
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	} while (ep_now_ns() < deadline);
	return ep_transport_fail(t, err == ETIMEDOUT ? -EP_ETIMEDOUT : -EP_EPEERDIED,
				 "tcp: rank %d could not connect to %s at %s:%u within %.0f s: %s",
				 t->cfg.rank, name, ip, ntohs(a->port), t->cfg.timeout_s, strerror(err));
}

/* Accepts connections until every higher-ranked peer has introduced itself. */
static int accept_peers(struct ep_transport *t, int expected, int64_t deadline)
{
	struct tcp *c = t->priv;
	while (expected > 0) {
		struct pollfd pf = {.fd = c->listen_fd, .events = POLLIN};
		int ms = ep_sock_ms_left(deadline);
		if (ms == 0)
			break;
		if (poll(&pf, 1, ms) <= 0)
			continue;
		int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			continue;
		struct hello h;
		int64_t hello_deadline = ep_now_ns() + 5000000000LL;
		if (recv_all(fd, &h, sizeof(h), hello_deadline < deadline ? hello_deadline : deadline) ||
		    h.magic != TCP_MAGIC || h.job_id != t->cfg.job_id || h.rank < 0 ||
		    h.rank >= t->cfg.num_ranks || c->slot[h.rank] < 0 ||
		    c->peers[c->slot[h.rank]].fd >= 0 || h.rank < t->cfg.rank) {
			close(fd); /* a stranger, another job, or a duplicate */
			continue;
		}
		ep_sock_tune(fd, t->cfg.timeout_s);
		c->peers[c->slot[h.rank]].fd = fd;
		expected--;
	}
	if (expected == 0)
		return 0;
	char missing[160] = "";
	size_t n = 0;
	for (int i = 0; i < c->npeers && n + 16 < sizeof(missing); i++)
		if (c->peers[i].fd < 0 && c->peers[i].rank > t->cfg.rank)
			n += (size_t)snprintf(missing + n, sizeof(missing) - n, "%s%d", n ? "," : "",
					      c->peers[i].rank);
	return ep_transport_fail(t, -EP_ETIMEDOUT,
				 "tcp: rank %d waited %.0f s for ranks %s to connect", t->cfg.rank,
				 t->cfg.timeout_s, missing);
}

static int tcp_connect(struct ep_transport *t, const int *peers, int npeers,
		       const struct ep_transport_addr *addrs)
{
	struct tcp *c = t->priv;
	int64_t deadline = deadline_of(t->cfg.timeout_s);
	c->peers = calloc((size_t)npeers + 1, sizeof(*c->peers));
	if (!c->peers)
		return ep_transport_fail(t, -ENOMEM, "tcp: out of memory");
	c->npeers = npeers;
	int incoming = 0;
	for (int i = 0; i < npeers; i++) {
		c->peers[i].rank = peers[i];
		c->peers[i].fd = -1;
		c->slot[peers[i]] = i;
		incoming += peers[i] > t->cfg.rank;
	}
	/* Outgoing first: they complete through the listener's backlog, so no
	 * pair of ranks can wait for each other here. */
	for (int i = 0; i < npeers; i++) {
		if (peers[i] > t->cfg.rank)
			continue;
		struct tcp_addr a;
		memcpy(&a, addrs[peers[i]].bytes, sizeof(a));
		if (a.magic != TCP_MAGIC)
			return ep_transport_fail(t, -EINVAL, "tcp: rank %d published no tcp address", peers[i]);
		int rc = connect_one(t, &c->peers[i], &a, deadline);
		if (rc)
			return rc;
	}
	int rc = accept_peers(t, incoming, deadline);
	if (rc)
		return rc;
	if ((rc = pthread_create(&c->thread, NULL, receive_thread, c)))
		return ep_transport_fail(t, -rc, "tcp: receive thread: %s", strerror(rc));
	c->thread_running = 1;
	return 0;
}

static struct peer *peer_of(struct ep_transport *t, int rank)
{
	struct tcp *c = t->priv;
	if (rank < 0 || rank >= t->cfg.num_ranks || c->slot[rank] < 0 || !c->thread_running)
		return NULL;
	return &c->peers[c->slot[rank]];
}

/* iovecs per sendmsg: well under IOV_MAX */
#define SEND_BATCH 256

/* The frame header, then its body gathered from n pieces (none for a
 * signal), in batches, in order on the one stream to the peer. */
static int send_frame(struct ep_transport *t, int peer, const struct frame *f, const struct iovec *body, int n,
		      const char *what)
{
	struct peer *p = peer_of(t, peer);
	char name[64];
	ep_transport_peer_name(t, peer, name, sizeof(name));
	if (!p)
		return ep_transport_fail(t, -EINVAL, "tcp: %s is not a connected peer", name);
	if (atomic_load(&p->state) == PEER_LOST)
		return ep_transport_fail(t, -EP_EPEERDIED, "tcp: %s %s", name, p->why);
	struct iovec batch[SEND_BATCH + 1];
	int64_t deadline = deadline_of(t->cfg.timeout_s);
	int k = 0, rc = 0, m = 0;
	batch[m++] = (struct iovec){(void *)f, sizeof(*f)};
	do {
		for (; k < n && m < SEND_BATCH + 1; k++)
			if (body[k].iov_len)
				batch[m++] = body[k];
		rc = ep_sock_send_all(p->fd, batch, m, deadline);
		m = 0;
	} while (!rc && k < n);
	if (rc == -EP_ETIMEDOUT)
		return ep_transport_fail(t, rc, "tcp: %s to %s made no progress for %.0f s (peer stalled?)",
					 what, name, t->cfg.timeout_s);
	if (rc)
		return ep_transport_fail(t, -EP_EPEERDIED, "tcp: %s to %s failed: %s", what, name,
					 strerror(-rc));
	return 0;
}

/* A put of len bytes at off inside region: checked against our own region (they are symmetric). */
static int put_fits(struct ep_transport *t, int region, size_t off, size_t len)
{
	struct tcp *c = t->priv;
	if (region < 0 || region >= EP_TRANSPORT_MAX_REGIONS || !c->regions[region].base ||
	    off > c->regions[region].len || len > c->regions[region].len - off)
		return ep_transport_fail(t, -EINVAL, "tcp: put of %zu bytes at %zu is outside region %d",
					 len, off, region);
	return 0;
}

static int tcp_put(struct ep_transport *t, int peer, const void *src, int region, size_t off,
		   size_t len)
{
	struct frame f = {FRAME_PUT, (uint32_t)region, off, len};
	struct iovec body = {(void *)src, len};
	int rc = put_fits(t, region, off, len);
	return rc ? rc : send_frame(t, peer, &f, &body, 1, "put");
}

/* A put gathered from pieces anywhere in memory: the receive thread lands
 * bytes wherever they came from, so nothing needs registering. */
static int tcp_putv(struct ep_transport *t, int peer, const struct iovec *iov, int n, int region, size_t off)
{
	size_t len = 0;
	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	struct frame f = {FRAME_PUT, (uint32_t)region, off, len};
	int rc = put_fits(t, region, off, len);
	return rc ? rc : send_frame(t, peer, &f, iov, n, "put");
}

static int tcp_signal(struct ep_transport *t, int peer)
{
	struct frame f = {FRAME_SIGNAL, 0, 0, 0};
	return send_frame(t, peer, &f, NULL, 0, "signal");
}

static int tcp_wait(struct ep_transport *t, int peer, uint32_t target)
{
	struct tcp *c = t->priv;
	struct peer *p = peer_of(t, peer);
	char name[64];
	ep_transport_peer_name(t, peer, name, sizeof(name));
	if (!p)
		return ep_transport_fail(t, -EINVAL, "tcp: %s is not a connected peer", name);
	if ((int32_t)(atomic_load(&p->signals) - target) >= 0)
		return 0;
	int64_t deadline = deadline_of(t->cfg.timeout_s);
	int rc = 0;
	pthread_mutex_lock(&c->mu);
	atomic_fetch_add(&c->sleepers, 1);
	for (;;) {
		if ((int32_t)(atomic_load(&p->signals) - target) >= 0)
			break;
		int st = atomic_load(&p->state);
		if (st != PEER_UP) {
			rc = ep_transport_fail(t, -EP_EPEERDIED, "tcp: %s %s (had %u of %u signals)",
					       name, st == PEER_LOST ? p->why : "closed its endpoint early",
					       atomic_load(&p->signals), target);
			break;
		}
		int64_t now = ep_now_ns();
		if (now >= deadline) {
			rc = ep_transport_fail(t, -EP_ETIMEDOUT,
					       "tcp: no signal from %s for %.1f s (had %u of %u)", name,
					       t->cfg.timeout_s, atomic_load(&p->signals), target);
			break;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t slice = deadline - now < 100000000LL ? deadline - now : 100000000LL;
		ts.tv_nsec += (long)slice;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&c->cv, &c->mu, &ts);
	}
	atomic_fetch_sub(&c->sleepers, 1);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

static int tcp_test(struct ep_transport *t, int peer, uint32_t target)
{
	struct peer *p = peer_of(t, peer);
	return p && (int32_t)(atomic_load(&p->signals) - target) >= 0;
}

static void tcp_fini(struct ep_transport *t)
{
	struct tcp *c = t->priv;
	if (!c)
		return;
	if (c->thread_running) {
		/* Orderly close: BYE to everyone, then keep reading until every
		 * peer has said BYE too, so no unread byte makes close() send RST
		 * over data a peer still needs. */
		struct frame bye = {FRAME_BYE, 0, 0, 0};
		int64_t deadline = deadline_of(t->cfg.timeout_s < BYE_WAIT_MAX_S ? t->cfg.timeout_s
										      : BYE_WAIT_MAX_S);
		for (int i = 0; i < c->npeers; i++)
			if (atomic_load(&c->peers[i].state) != PEER_LOST) {
				struct iovec iov = {&bye, sizeof(bye)};
				ep_sock_send_all(c->peers[i].fd, &iov, 1, deadline);
			}
		pthread_mutex_lock(&c->mu);
		atomic_fetch_add(&c->sleepers, 1);
		for (;;) {
			int open = 0;
			for (int i = 0; i < c->npeers; i++)
				open += atomic_load(&c->peers[i].state) == PEER_UP;
			if (!open || ep_now_ns() >= deadline)
				break;
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 50000000L;
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&c->cv, &c->mu, &ts);
		}
		atomic_fetch_sub(&c->sleepers, 1);
		pthread_mutex_unlock(&c->mu);
		if (write(c->wake[1], "x", 1) < 0) {
			/* nothing left to do: the join below would hang, so detach */
			pthread_detach(c->thread);
		} else {
			pthread_join(c->thread, NULL);
		}
	}
	for (int i = 0; c->peers && i < c->npeers; i++)
		if (c->peers[i].fd >= 0)
			close(c->peers[i].fd);
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	if (c->wake[0] >= 0)
		close(c->wake[0]);
	if (c->wake[1] >= 0)
		close(c->wake[1]);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c->peers);
	free(c->slot);
	free(c);
	t->priv = NULL;
}

static int tcp_sever(struct ep_transport *t, int peer)
{
	struct tcp *c = t->priv;
	int i = c && peer >= 0 && peer < t->cfg.num_ranks ? c->slot[peer] : -1;
	if (i < 0 || c->peers[i].fd < 0)
		return ep_transport_fail(t, -EINVAL, "tcp: no connection to rank %d to cut", peer);
	shutdown(c->peers[i].fd, SHUT_RDWR); /* the receive thread sees the end on both sides */
	return 0;
}

static void tcp_describe(const struct ep_transport *t, char *buf, size_t len)
{
	struct tcp *c = t->priv;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	if (!c || c->listen_fd < 0 || getsockname(c->listen_fd, (struct sockaddr *)&sa, &sl))
		snprintf(buf, len, "tcp %s", t->cfg.host ? t->cfg.host : "?");
	else
		snprintf(buf, len, "tcp %s:%u", t->cfg.host ? t->cfg.host : "?", ntohs(sa.sin_port));
}

const struct ep_transport_ops ep_transport_tcp = {
	.name = "tcp",
	.probe = tcp_probe,
	.init = tcp_init,
	.reg_mem = tcp_reg_mem,
	.connect = tcp_connect,
	.put = tcp_put,
	.putv = tcp_putv,
	.signal = tcp_signal,
	.wait = tcp_wait,
	.test = tcp_test,
	.fini = tcp_fini,
	.describe = tcp_describe,
	.sever = tcp_sever,
};
