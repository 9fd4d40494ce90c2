/* SOCK_SEQPACKET transport: one frame per datagram, fds by SCM_RIGHTS,
 * payloads above FP_INLINE_MAX in the connection's payload area (area.c), a
 * pipe or a sealed memfd. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/debug.h"
#include "transport/transport.h"

#define FP_MAX_RX_FDS (FLTPORT_MAX_FDS + 2u)
#define FP_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

void fp_rx_init(struct fp_rx *rx)
{
	memset(rx, 0, sizeof(*rx));
	rx->pfd = -1;
	rx->page_fd = -1;
}

bool fp_sock_readable(const void *fdp)
{
	return recv(*(const int *)fdp, NULL, 0, MSG_PEEK | MSG_DONTWAIT) >= 0 || errno != EAGAIN;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Seal a payload memfd.  F_SEAL_WRITE fails with EBUSY while a page of the
 * file holds a reference besides the page cache's: the kernel waits ~0.1 s
 * for it to go, then gives up.  On a memfd just written by us such a
 * reference is transient — the per-CPU LRU batch a new page sits in until
 * that CPU drains it, another CPU's if this thread moved during the write —
 * so a refusal is tried again until the deadline, for at most
 * FP_SEAL_RETRY_NS.  (Before, the first refusal failed the send, reported
 * as a disconnect: seen as an overlapped get that never completed under
 * fuzzing, tests/fuzz/crashers/win-get-timeout-*.)
 */
int fp_payload_seal(int fd, int64_t deadline)
{
	const int64_t start = fp_now();
	const int64_t cap = start + FP_SEAL_RETRY_NS;

	for (;;) {
		int64_t t0 = fp_now(), now;

		if (fcntl(fd, F_ADD_SEALS, FP_SEALS | F_SEAL_SEAL) == 0)
			return 0;
		if (errno != EBUSY)
			return -errno;
		now = fp_now();
		if (now - t0 < 1000000) { /* refused without the kernel's wait: pace */
			struct timespec ms = { .tv_nsec = 1000000 };

			nanosleep(&ms, NULL);
			now = fp_now();
		}
		if (now >= deadline)
			return -ETIMEDOUT;
		if (now >= cap)
			return -ENOBUFS; /* not transient after all: a local shortage */
		fp_debug("payload memfd: sealing refused (pages still referenced), trying again");
	}
}

/* A sealed memfd holding the payload: the receiver can trust that its size
 * and content never change under it. */
static int make_payload_memfd(const void *payload, size_t len, int64_t deadline)
{
	int fd = memfd_create("fltport-payload", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int rc;

	if (fd < 0)
		return -errno;
	rc = write_all(fd, payload, len);
	if (rc == 0)
		rc = fp_payload_seal(fd, deadline);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

/*
 * A pipe holding the payload, its write end closed: what the filter side
 * sends where the user side copies the payload out (MESSAGE, RESPONSE).  The
 * kernel copies it in and out as through a socket, where a memfd first has
 * its pages allocated, added to the page cache and sealed, then truncated at
 * the last close: for 1 MiB a memfd costs about twice a pipe.  The receiver
 * reads it once into memory of its own (pipe_read_nowait()).
 *
 * Only that direction: every operation on a pipe takes the pipe's lock, and
 * whoever holds an end can hold that lock as long as it likes (a splice()
 * from an empty socket into the write end sleeps with it held), which would
 * leave a reader in uninterruptible sleep.  A filter side must never touch a
 * pipe a client made, so the user side sends sealed memfds (frame.c refuses
 * FP_F_PIPE on REQUEST and REPLY); the user side trusts its filter anyway
 * (fltport_connect authenticates it).
 *
 * Needs a pipe as large as the payload (F_SETPIPE_SZ: up to
 * /proc/sys/fs/pipe-max-size, 1 MiB by default, for a process without
 * CAP_SYS_RESOURCE, and less once the user holds pipe-user-pages-soft);
 * -1 when that is refused, and the caller uses a memfd.
 */
#define FP_PIPE_PAYLOAD_MAX (16u << 20)

static int make_payload_pipe(const void *payload, size_t len)
{
	const uint8_t *p = payload;
	size_t left = len;
	int fds[2];

	if (len > FP_PIPE_PAYLOAD_MAX || pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
		return -1;
	if (fcntl(fds[1], F_SETPIPE_SZ, (int)len) < (int)len)
		goto fail;
	while (left > 0) {
		ssize_t w = write(fds[1], p, left);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail; /* EAGAIN: the pipe holds less than it said */
		p += w;
		left -= (size_t)w;
	}
	close(fds[1]);
	return fds[0];
fail:
	close(fds[0]);
	close(fds[1]);
	return -1;
}

static int wait_writable(int fd, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int r = poll(&p, 1, fp_poll_ms(deadline));

		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* Frames up to this payload size without fds go out in one piece. */
#define FP_SEND_FLAT_MAX 256u

static int send_flat(int fd, struct fp_hdr *h, uint8_t *buf, int64_t deadline)
{
	h->nfds = 0;
	fp_hdr_encode(h, buf);
	for (;;) {
		if (send(fd, buf, FP_HDR_SIZE + h->len, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			int rc = wait_writable(fd, deadline);

			if (rc < 0)
				return rc;
			continue;
		}
		return (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN) ? -ENOTCONN
										    : -errno;
	}
}

static int sock_send(int fd, const struct fp_tx *tx, int64_t deadline)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * FP_MAX_RX_FDS)];
	} cbuf;
	int fds[FP_MAX_RX_FDS];
	unsigned nfds = 0;
	uint8_t hb[FP_HDR_SIZE + FP_SEND_FLAT_MAX];
	struct fp_hdr h = *tx->h;
	struct iovec iov[2];
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 1 };
	int pfd = -1, area_fd = -1, rc;
	bool in_area = false;

	if (h.len > FP_INLINE_MAX && tx->area &&
	    (h.type == FP_T_MESSAGE || h.type == FP_T_RESPONSE) &&
	    fp_area_claim(tx->area, h.len, &area_fd) == 0) {
		/* Filter → user: the connection's payload area (area.c). */
		memcpy(tx->area->map + FP_AREA_DATA, tx->payload, h.len);
		in_area = true;
		h.flags |= FP_F_AREA;
		if (area_fd >= 0) {
			h.flags |= FP_F_AREA_NEW;
			fds[nfds++] = area_fd;
		}
	} else if (h.len > FP_INLINE_MAX) {
		/* Filter → user: a pipe, which the user side copies out.  User
		 * → filter: a sealed memfd (see make_payload_pipe()). */
		if (h.type == FP_T_MESSAGE || h.type == FP_T_RESPONSE)
			pfd = make_payload_pipe(tx->payload, h.len);
		if (pfd >= 0) {
			h.flags |= FP_F_PIPE;
		} else {
			pfd = make_payload_memfd(tx->payload, h.len, deadline);
			/* Nothing was sent and the peer is fine: a local failure. */
			if (pfd < 0)
				return pfd == -ETIMEDOUT || fp_resource_error(pfd) ? pfd : -ENOBUFS;
			h.flags |= FP_F_MEMFD;
		}
		fds[nfds++] = pfd;
	} else if (h.len <= FP_SEND_FLAT_MAX && !tx->nfds && tx->page_fd < 0 && !tx->nctl) {
		/* A small frame without fds: one buffer, sent with send(), which
		 * the kernel takes faster than a two-part sendmsg(). */
		if (h.len)
			memcpy(hb + FP_HDR_SIZE, tx->payload, h.len);
		return send_flat(fd, &h, hb, deadline);
	} else {
		iov[1].iov_base = (void *)tx->payload;
		iov[1].iov_len = h.len;
		mh.msg_iovlen = 2;
	}
	for (unsigned i = 0; i < tx->nfds; i++)
		fds[nfds++] = tx->fds[i];
	if (tx->page_fd >= 0)
		fds[nfds++] = tx->page_fd;
	for (unsigned i = 0; i < tx->nctl && nfds < FP_MAX_RX_FDS; i++)
		fds[nfds++] = tx->ctl_fds[i];
	h.nfds = (uint16_t)tx->nfds;
	fp_hdr_encode(&h, hb);
	iov[0].iov_base = hb;
	iov[0].iov_len = FP_HDR_SIZE;
	if (nfds > 0) {
		struct cmsghdr *c;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	for (;;) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n >= 0) {
			rc = 0;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			rc = wait_writable(fd, deadline);
			if (rc < 0)
				break;
			continue;
		}
		rc = (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN) ? -ENOTCONN
										  : -errno;
		break;
	}
	if (pfd >= 0)
		close(pfd);
	if (in_area)
		fp_area_done(tx->area, rc == 0, area_fd >= 0);
	return rc;
}

/* Received fds: closed where closing cannot block (closer.c). */
static void close_fds(const int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		fp_close_received(fds[i]);
}

static int check_memfd(int fd, uint32_t len)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);

	if (seals < 0 || (seals & FP_SEALS) != FP_SEALS)
		return -EBADMSG;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != (off_t)len)
		return -EBADMSG;
	return 0;
}

#ifndef PIPEFS_MAGIC
#define PIPEFS_MAGIC 0x50495045
#endif

/* A payload pipe is an anonymous pipe (not a FIFO in a file system) holding
 * exactly the payload when it arrives. */
static int check_pipe(int fd, uint32_t len)
{
	struct statfs sfs;
	struct stat st;
	int avail = -1;

	if (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode) || fstatfs(fd, &sfs) != 0 ||
	    sfs.f_type != PIPEFS_MAGIC)
		return -EBADMSG;
	if (ioctl(fd, FIONREAD, &avail) != 0 || avail < 0 || (uint32_t)avail != len)
		return -EBADMSG;
	return 0;
}

/*
 * Read from a payload pipe without waiting for data: RWF_NOWAIT, which
 * pipes honour since Linux 6.4 (the description is shared with the sender,
 * so O_NONBLOCK set on it could be cleared again).  An older kernel refuses
 * the flag; the description is then made non-blocking, which is enough
 * here: only the user side reads pipes, sent by the filter it trusts.
 */
static ssize_t pipe_read_nowait(int fd, void *dst, size_t n)
{
	struct iovec iov = { .iov_base = dst, .iov_len = n };
	ssize_t r = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
	int fl;

	if (r >= 0 || errno != EOPNOTSUPP)
		return r;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0))
		return -1;
	return read(fd, dst, n);
}

/* Room for as many fds as the kernel passes in one message (SCM_MAX_FD):
 * fds beyond the control buffer would be closed by the kernel inside
 * recvmsg(), on this thread (closer.c says why that must not happen). */
#define FP_SCM_MAX_FD 253

static int sock_recv(int fd, uint8_t *buf, size_t bufsz, uint32_t max_payload, struct fp_rx *rx,
		     bool dontwait)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * FP_SCM_MAX_FD)];
	} cbuf;
	struct iovec iov = { .iov_base = buf, .iov_len = bufsz };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf.buf,
		.msg_controllen = sizeof(cbuf.buf),
	};
	int fds[FP_MAX_RX_FDS];
	unsigned nfds = 0, idx = 0;
	ssize_t n;
	int rc;

	fp_rx_init(rx);
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | (dontwait ? MSG_DONTWAIT : 0));
	while (n < 0 && errno == EINTR && dontwait);
	/* A blocking read waits a slice at most (SO_RCVTIMEO): restarted after
	 * a signal, it would start a new slice every time, and a thread that
	 * gets signals often would never see its deadline.  Its caller checks
	 * the deadline and reads again. */
	if (n < 0 && errno == EINTR)
		return -EAGAIN;
	if (n < 0) {
		if (errno == EAGAIN)
			return -EAGAIN;
		return (errno == ECONNRESET || errno == ENOTCONN || errno == EPIPE) ? -ENOTCONN
										    : -errno;
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (nfds < FP_MAX_RX_FDS)
				fds[nfds++] = f;
			else
				fp_close_received(f); /* more than any frame may carry */
		}
	}
	if (n == 0 && nfds == 0)
		return -ENOTCONN;
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		close_fds(fds, nfds);
		/* Fds cut off with room for all of them (FP_SCM_MAX_FD): this
		 * process could not take them (RLIMIT_NOFILE, or a security
		 * module).  The frame itself is whole: its header says whose
		 * it was, for an answer that keeps the peer (transport.h). */
		if (!(mh.msg_flags & MSG_TRUNC) &&
		    fp_frame_decode(buf, (size_t)n, FP_NFDS_LOST, max_payload, &rx->h) == 0) {
			fp_debug("a frame's fds could not be received (type %u): out of fds?",
				 rx->h.type);
			return -EMFILE;
		}
		fp_debug("dropping a truncated frame (%zd bytes, flags 0x%x)", n, mh.msg_flags);
		fp_rx_init(rx);
		return -EBADMSG;
	}
	rc = fp_frame_decode(buf, (size_t)n, nfds, max_payload, &rx->h);
	if (rc < 0) {
		close_fds(fds, nfds);
		return rc;
	}
	if (rx->h.flags & (FP_F_MEMFD | FP_F_PIPE)) {
		rx->pfd = fds[idx++];
		rx->pipe = rx->h.flags & FP_F_PIPE;
		if ((rx->pipe ? check_pipe(rx->pfd, rx->h.len) : check_memfd(rx->pfd, rx->h.len)) <
		    0) {
			close_fds(fds, nfds);
			fp_rx_init(rx);
			return -EBADMSG;
		}
	} else if (rx->h.flags & FP_F_AREA) {
		/* The payload is in the area: fp_rx_bind_area() points data
		 * there (and takes the area's memfd, if it came). */
		if (rx->h.flags & FP_F_AREA_NEW)
			rx->pfd = fds[idx++];
	} else {
		rx->data = buf + FP_HDR_SIZE;
	}
	for (unsigned i = 0; i < rx->h.nfds; i++)
		rx->fds[rx->nfds++] = fds[idx++];
	if (idx < nfds)
		rx->page_fd = fds[idx++];
	while (idx < nfds) /* CONNECT_RESULT's rings (decode counted them) */
		rx->fds[rx->nfds++] = fds[idx++];
	return 0;
}

static void sock_shutdown(int fd)
{
	shutdown(fd, SHUT_RDWR);
}

const struct fp_transport_ops fp_sock_ops = {
	.name = "seqpacket",
	.send = sock_send,
	.recv = sock_recv,
	.shutdown = sock_shutdown,
};

int fp_rx_copy(const struct fp_rx *rx, void *dst, size_t n)
{
	size_t off = 0;

	if (n > rx->h.len)
		n = rx->h.len;
	if (rx->pfd < 0) {
		if (n && !rx->data)
			return -EIO; /* an area payload never bound */
		if (n)
			memcpy(dst, rx->data, n);
		return 0;
	}
	while (off < n) {
		ssize_t r = rx->pipe ? pipe_read_nowait(rx->pfd, (uint8_t *)dst + off, n - off)
				     : pread(rx->pfd, (uint8_t *)dst + off, n - off, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		off += (size_t)r;
	}
	return 0;
}

int fp_rx_own(struct fp_rx *rx)
{
	if (rx->pfd >= 0 || rx->owned || rx->area_busy || rx->h.len == 0)
		return 0;
	rx->owned = malloc(rx->h.len);
	if (!rx->owned)
		return -ENOMEM;
	memcpy(rx->owned, rx->data, rx->h.len);
	rx->data = rx->owned;
	return 0;
}

void fp_rx_release(struct fp_rx *rx)
{
	if (rx->area_busy) /* the filter side may fill the area again */
		atomic_store_explicit(rx->area_busy, 0, memory_order_release);
	fp_close_received(rx->pfd);
	close_fds(rx->fds, rx->nfds);
	fp_close_received(rx->page_fd);
	free(rx->owned);
	fp_rx_init(rx);
}

unsigned fp_rx_take_fds(struct fp_rx *rx, int out[FLTPORT_MAX_FDS])
{
	unsigned n = rx->nfds;

	memcpy(out, rx->fds, sizeof(int) * n);
	rx->nfds = 0;
	return n;
}
