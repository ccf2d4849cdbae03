/* wire.c - frames over the node launchers' TCP connections. */
#define _GNU_SOURCE
#include "cli/cluster/wire.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "collectives/error.h"
#include "collectives/sync.h"
#include "collectives/transport/sock.h"

#define MSG_MAGIC 0x45504e31u       /* "EPN1" */
#define MAX_FRAME ((uint64_t)1 << 34) /* larger is not ours */

struct frame_hdr {
	uint32_t magic;
	uint32_t type;
	uint64_t len;
};

int ep_wire_send(int fd, uint32_t type, const void *data, size_t len, double timeout_s)
{
	struct frame_hdr h = {MSG_MAGIC, type, len};
	int64_t deadline = ep_now_ns() + (int64_t)(timeout_s * 1e9);
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)data, len}};
	return ep_sock_send_all(fd, iov, 2, deadline);
}

int ep_wire_fill(struct ep_wire *w)
{
	for (;;) {
		if (w->rcap - w->rlen < 65536) {
			size_t ncap = w->rcap ? w->rcap * 2 : 131072;
			char *nb = realloc(w->rbuf, ncap);
			if (!nb)
				return -ENOMEM;
			w->rbuf = nb;
			w->rcap = ncap;
		}
		ssize_t n = recv(w->fd, w->rbuf + w->rlen, w->rcap - w->rlen, MSG_DONTWAIT);
		if (n > 0) {
			w->rlen += (size_t)n;
			w->last_recv = ep_now_ns();
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

int ep_wire_take(struct ep_wire *w, uint32_t *type, void **data, size_t *len)
{
	struct frame_hdr h;
	if (w->rlen < sizeof(h))
		return 0;
	memcpy(&h, w->rbuf, sizeof(h));
	if (h.magic != MSG_MAGIC || h.len > MAX_FRAME)
		return -1;
	if (w->rlen < sizeof(h) + h.len)
		return 0;
	*data = malloc(h.len + 1);
	if (!*data)
		return -1;
	memcpy(*data, w->rbuf + sizeof(h), h.len);
	((char *)*data)[h.len] = 0;
	memmove(w->rbuf, w->rbuf + sizeof(h) + h.len, w->rlen - sizeof(h) - h.len);
	w->rlen -= sizeof(h) + h.len;
	*type = h.type;
	*len = h.len;
	return 1;
}

int ep_wire_recv(struct ep_wire *w, uint32_t *type, void **data, size_t *len, int64_t deadline)
{
	for (;;) {
		int rc = ep_wire_take(w, type, data, len);
		if (rc)
			return rc > 0 ? 0 : -EPROTO;
		int ms = ep_sock_ms_left(deadline);
		if (ms == 0)
			return -EP_ETIMEDOUT;
		struct pollfd pf = {.fd = w->fd, .events = POLLIN};
		poll(&pf, 1, ms);
		rc = ep_wire_fill(w);
		if (rc != 0) { /* a last frame may have come with the close */
			if (ep_wire_take(w, type, data, len) > 0)
				return 0;
			return rc > 0 ? -ECONNRESET : rc;
		}
	}
}

void ep_wire_close(struct ep_wire *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->rbuf);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
}
