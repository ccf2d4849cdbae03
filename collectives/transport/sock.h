/* sock.h - the non-blocking TCP socket steps the tcp transport and the cluster rendezvous share.
 *
 * Deadlines are ep_now_ns() values (collectives/sync.h). Sockets are
 * non-blocking; every wait is a poll bounded by the deadline, in slices of
 * at most a second so callers can notice other events.
 */
#ifndef EP_SOCK_H
#define EP_SOCK_H

#include <stdint.h>
#include <sys/uio.h>

/* Milliseconds to poll before the deadline: 0 once it passed, at most 1000. */
int ep_sock_ms_left(int64_t deadline);

/* Our settings for a connected socket: no Nagle, keepalive probes, a TCP user
 * timeout of timeout_s (a dead peer fails the socket), non-blocking. */
void ep_sock_tune(int fd, double timeout_s);

/* Sends the whole iovec (advancing it) before the deadline, never raising
 * SIGPIPE. 0, -EP_ETIMEDOUT or -errno. */
int ep_sock_send_all(int fd, struct iovec *iov, int iovcnt, int64_t deadline);

#endif
