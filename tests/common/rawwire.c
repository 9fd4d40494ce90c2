#include "rawwire.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fltport/port.h"

struct fp_hdr rw_hdr(uint16_t type)
{
	return (struct fp_hdr){ .magic = FP_MAGIC, .version = FLTPORT_WIRE_VERSION, .type = type };
}

int rw_sendv(int fd, const struct iovec *iov, int iovcnt, const int *fds, unsigned nfds, int flags)
{
	union {
		struct cmsghdr a;
		char b[CMSG_SPACE(sizeof(int) * RW_MAX_FDS)];
	} cb;
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };

	if (nfds > RW_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(&cb, 0, sizeof(cb));
		mh.msg_control = cb.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	return sendmsg(fd, &mh, MSG_NOSIGNAL | flags) < 0 ? -errno : 0;
}

unsigned rw_take_fds(struct msghdr *mh, int *fds, unsigned maxfds)
{
	unsigned n = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < k; i++, n++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fds && n < maxfds)
				fds[n] = f;
			else
				close(f);
		}
	}
	return n;
}

int rw_send(int fd, const struct fp_hdr *h, const void *payload, size_t len, const int *fds,
	    unsigned nfds)
{
	uint8_t hb[FP_HDR_SIZE];
	struct iovec iov[2] = { { .iov_base = hb, .iov_len = FP_HDR_SIZE },
				{ .iov_base = (void *)payload, .iov_len = len } };

	if (nfds > 8)
		return -EINVAL;
	fp_hdr_encode(h, hb);
	return rw_sendv(fd, iov, len ? 2 : 1, fds, nfds, 0);
}

int rw_recv(int fd, struct fp_hdr *h, int *fds, unsigned maxfds, unsigned *nfds, int timeout_ms)
{
	static _Thread_local uint8_t buf[FP_FRAME_MAX];
	union {
		struct cmsghdr a;
		char b[CMSG_SPACE(sizeof(int) * 16)];
	} cb;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cb.b,
			     .msg_controllen = sizeof(cb.b) };
	struct pollfd p = { .fd = fd, .events = POLLIN };
	unsigned n;
	ssize_t got;

	if (nfds)
		*nfds = 0;
	if (poll(&p, 1, timeout_ms) != 1)
		return -ETIMEDOUT;
	got = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (got <= 0)
		return got == 0 ? -ENOTCONN : -errno;
	n = rw_take_fds(&mh, fds, maxfds);
	if (nfds)
		*nfds = n < maxfds ? n : maxfds;
	return fp_frame_decode(buf, (size_t)got, n, 1u << 30, h);
}
