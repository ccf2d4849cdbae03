/* sock.c - bounded non-blocking sends and socket settings (see sock.h). */
#include "collectives/transport/sock.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include "collectives/error.h"
#include "collectives/sync.h"

int ep_sock_ms_left(int64_t deadline)
{
	int64_t left = deadline - ep_now_ns();
	if (left <= 0)
		return 0;
	return left / 1000000 > 1000 ? 1000 : (int)(left / 1000000) + 1;
}

void ep_sock_tune(int fd, double timeout_s)
{
	int one = 1, idle = 5, intvl = 2, cnt = 3;
	unsigned user_timeout = (unsigned)(timeout_s * 1000);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

int ep_sock_send_all(int fd, struct iovec *iov, int iovcnt, int64_t deadline)
{
	while (iovcnt > 0) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			struct pollfd pf = {.fd = fd, .events = POLLOUT};
			int ms = ep_sock_ms_left(deadline);
			if (ms == 0)
				return -EP_ETIMEDOUT;
			poll(&pf, 1, ms);
			continue;
		}
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}
