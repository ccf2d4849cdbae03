/* wire.h - framed messages on the TCP connections between node launchers.
 *
 * A frame is a 16-byte header (magic "EPN1", type, payload length) and the
 * payload. Connections are non-blocking; a connection buffers what it has
 * read until a whole frame is there. Sends block until written or the
 * deadline passes (collectives/transport/sock.h). This is the framing only:
 * which messages exist and what they carry is cli/cluster/rendezvous.c.
 */
#ifndef EP_CLUSTER_WIRE_H
#define EP_CLUSTER_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* One connection to another node's launcher. */
struct ep_wire {
	int fd;            /* -1 when closed */
	char *rbuf;        /* bytes read, not yet taken */
	size_t rlen, rcap;
	int64_t last_recv; /* ep_now_ns of the last byte read */
};

/* Sends one frame; blocks at most timeout_s. 0 or -errno. */
int ep_wire_send(int fd, uint32_t type, const void *data, size_t len, double timeout_s);

/* Reads what is there without blocking: 0, 1 on EOF, -errno on error. */
int ep_wire_fill(struct ep_wire *w);

/* Takes one whole frame off the buffer: 1 with type/data/len (data
 * malloc'ed, NUL-terminated beyond len), 0 when none is complete, -1 when
 * the stream is not ours (bad magic or size) or memory ran out. */
int ep_wire_take(struct ep_wire *w, uint32_t *type, void **data, size_t *len);

/* Blocks until one frame arrives or the deadline (ep_now_ns) passes: 0,
 * -EP_ETIMEDOUT, -ECONNRESET (closed), -EPROTO (not ours), -errno. */
int ep_wire_recv(struct ep_wire *w, uint32_t *type, void **data, size_t *len, int64_t deadline);

/* Closes the connection and frees its buffer; leaves w closed (fd -1). */
void ep_wire_close(struct ep_wire *w);

#endif
