/*
 * Connecting (the handshake), closing, and the small accessors of the user
 * side.  The handshake: connect the socket, authenticate the server by its
 * kernel credentials (SPEC §8.26), send CONNECT with the wire version and
 * the context, receive CONNECT_RESULT with the state page.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/client_int.h"
#include "core/clock.h"
#include "core/debug.h"
#include "core/names.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* §8.26: in the default directory only a root server in a root-owned
 * directory writable by root alone; with $FLTPORT_DIR, root or the
 * directory's owner. */
static int check_server(int fd)
{
	const char *dir = fltport_dir();
	struct ucred cr;
	socklen_t len = sizeof(cr);
	struct stat st;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || stat(dir, &st) != 0)
		return -EACCES;
	if (!fp_dir_is_custom()) {
		if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
			fp_debug("not trusting %s: owned by uid %u, mode %o (want root, 0755)", dir,
				 (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
			return -EACCES;
		}
		if (cr.uid != 0) {
			fp_debug(
				"not trusting the server of this port: it runs as uid %u, not root",
				(unsigned)cr.uid);
			return -EACCES;
		}
		return 0;
	}
	if (cr.uid != 0 && cr.uid != st.st_uid) {
		fp_debug("not trusting the server of this port: uid %u is neither root nor the "
			 "owner (%u) of %s",
			 (unsigned)cr.uid, (unsigned)st.st_uid, dir);
		return -EACCES;
	}
	return 0;
}

static int connect_socket(const char *name, int64_t deadline, int *out)
{
	struct sockaddr_un sa;
	socklen_t salen;
	int fd, rc = fp_port_addr(name, &sa, &salen);

	if (rc < 0)
		return rc;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Non-blocking: a full backlog (EAGAIN) is retried until the deadline. */
	while (connect(fd, (struct sockaddr *)&sa, salen) != 0) {
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && fp_now() < deadline) {
			usleep(1000);
			continue;
		}
		rc = errno == ENOENT || errno == ECONNREFUSED ? -ENOENT
		     : errno == EACCES || errno == EPERM      ? -EACCES
		     : errno == EAGAIN                        ? -ETIMEDOUT
							      : -errno;
		close(fd);
		return rc;
	}
	/* Blocking from here: the receive thread blocks in recvmsg(), senders
	 * pass MSG_DONTWAIT and wait with poll() for their deadline. */
	if (fcntl(fd, F_SETFL, 0) != 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

static int recv_result(int fd, int64_t deadline, uint8_t *buf, struct fp_rx *rx)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r, rc;

	do
		r = poll(&p, 1, fp_poll_ms(deadline));
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return -ETIMEDOUT;
	if (r < 0)
		return -errno;
	rc = fp_sock_ops.recv(fd, buf, FP_FRAME_MAX, FP_CONNECT_INFO_SIZE, rx, true);
	/* A server that refuses us at accept time closes without reading our
	 * CONNECT: the kernel then reports ECONNRESET once, ahead of the
	 * result that is still queued.  Read again. */
	for (int i = 0; i < 2 && rc == -ENOTCONN; i++)
		rc = fp_sock_ops.recv(fd, buf, FP_FRAME_MAX, FP_CONNECT_INFO_SIZE, rx, true);
	if (rc == -ENOTCONN || rc == -EAGAIN)
		return -ECONNRESET;
	if (rc == -EBADMSG)
		return -EPROTO;
	if (rc < 0)
		return rc;
	if (rx->h.type != FP_T_CONNECT_RESULT) {
		fp_rx_release(rx);
		return -EPROTO;
	}
	return 0;
}

/* Check and map the state page the server sent. */
static int map_page(struct fltport_conn *c, struct fp_rx *rx)
{
	struct fp_connect_info ci;
	struct stat st;
	int seals;
	void *p;

	if (rx->h.len != FP_CONNECT_INFO_SIZE || rx->page_fd < 0)
		return -EPROTO;
	fp_connect_info_decode(rx->data, &ci);
	if (ci.nslots == 0 || ci.nslots > FLTPORT_MAX_SLOTS ||
	    ci.max_message < FLTPORT_MIN_MAX_MESSAGE || ci.max_message > FP_PAYLOAD_HARD_MAX ||
	    ci.page_size != fp_page_size(ci.nslots))
		return -EPROTO;
	seals = fcntl(rx->page_fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK) || fstat(rx->page_fd, &st) != 0 ||
	    st.st_size < (off_t)ci.page_size)
		return -EPROTO;
	p = mmap(NULL, ci.page_size, PROT_READ | PROT_WRITE, MAP_SHARED, rx->page_fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	c->page = p;
	c->page_size = ci.page_size;
	if (c->page->magic != FP_PAGE_MAGIC || c->page->nslots != ci.nslots)
		return -EPROTO;
	c->nslots = ci.nslots;
	c->max_message = ci.max_message;
	return 0;
}

/* The table of the last message taken from each slot (16 bytes a slot,
 * 16 KiB at the default 1024 slots): zero pages of its own mapping, so
 * that only the pages of slots in use become resident (a calloc'd table
 * is written whole: 16 KiB per idle connection). */
static size_t taken_bytes(uint32_t nslots)
{
	return fp_align4096((size_t)nslots * sizeof(struct fp_taken));
}

static struct fp_taken *taken_new(uint32_t nslots)
{
	void *p = mmap(NULL, taken_bytes(nslots), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void fp_client_conn_free(struct fltport_conn *c)
{
	/* A forked child's copy shares the parent's mappings (the state
	 * page, the payload area) and may hold a copy of a lock or condition
	 * variable some parent thread was inside at the fork. */
	const bool forked = fp_forked(&c->fork);
	struct fp_qmsg *m;

	fp_fork_unregister(&c->fork);
	while ((m = c->qhead)) {
		c->qhead = m->next;
		if (forked) /* the parent's copy of the message still holds the area */
			m->rx.area_busy = NULL;
		fp_rx_release(&m->rx);
		free(m->big);
		free(m);
	}
	while ((m = c->qfree)) {
		c->qfree = m->next;
		free(m->big);
		free(m);
	}
	if (c->page)
		munmap(c->page, c->page_size);
	fp_ring_free(c->ring);
	if (c->area)
		munmap(c->area, c->area_size);
	while (c->pw_all) {
		struct fp_pumpwait *pw = c->pw_all;

		c->pw_all = pw->next_all;
		close(pw->ep);
		close(pw->efd);
		free(pw);
	}
	if (c->fd >= 0)
		close(c->fd);
	if (c->evfd >= 0)
		close(c->evfd);
	if (c->kickfd >= 0)
		close(c->kickfd);
	if (c->peer.pidfd >= 0)
		close(c->peer.pidfd);
	if (c->taken)
		munmap(c->taken, taken_bytes(c->nslots));
	free(c->rxbuf);
	if (!forked) {
		/* In a child, destroying a condition variable a parent thread
		 * waited on at the fork would wait for that waiter forever. */
		pthread_cond_destroy(&c->calls_cond);
		pthread_cond_destroy(&c->rx_cond);
		pthread_mutex_destroy(&c->lock);
	}
	free(c);
}

/* In a forked child: the connection's fds become inert (core/fork.h). */
static void conn_in_child(struct fp_forkreg *r)
{
	struct fltport_conn *c = (struct fltport_conn *)r;

	fp_fork_kill_fd(c->fd);
	fp_fork_kill_fd(c->evfd);
	fp_fork_kill_fd(c->kickfd);
	for (struct fp_pumpwait *pw = c->pw_all; pw; pw = pw->next_all) {
		fp_fork_kill_fd(pw->ep);
		fp_fork_kill_fd(pw->efd);
	}
	if (c->ring) {
		int fds[2];

		fp_ring_fds(c->ring, fds);
		fp_fork_kill_fd(fds[0]);
		fp_fork_kill_fd(fds[1]);
	}
}

static struct fltport_conn *conn_new(int fd)
{
	struct fltport_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fd = fd;
	c->evfd = -1;
	c->kickfd = -1;
	c->peer.pidfd = -1;
	c->tp = &fp_sock_ops;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->calls_cond, NULL);
	fp_cond_init(&c->rx_cond);
	fp_fork_register(&c->fork, conn_in_child);
	return c;
}

/* Take the rings CONNECT_RESULT granted (its fds leave rx). */
static int attach_ring(struct fltport_conn *c, struct fp_rx *rx, bool asked)
{
	int fds[FP_RING_NFDS], rc;

	if (rx->h.arg != FP_TRANSPORT_SHM)
		return 0;
	if (!asked || rx->nfds != FP_RING_NFDS)
		return -EPROTO;
	memcpy(fds, rx->fds, sizeof(fds));
	rx->nfds = 0;
	rc = fp_ring_attach(&c->ring, fds);
	if (rc == 0)
		(void)fp_ring_use_futex(c->ring, c->fd); /* else the doorbell */
	return rc;
}

static int handshake(struct fltport_conn *c, const void *ctx, size_t ctx_len, bool shm,
		     int64_t deadline, uint32_t *status)
{
	struct fp_hdr h = { .magic = FP_MAGIC,
			    .version = FLTPORT_WIRE_VERSION,
			    .type = FP_T_CONNECT,
			    .len = (uint32_t)ctx_len,
			    .id = FP_CAP_AREA, /* capabilities (frame.h) */
			    .arg = shm ? FP_TRANSPORT_SHM : FP_TRANSPORT_SOCKET };
	struct fp_tx tx = { .h = &h, .payload = ctx, .page_fd = -1 };
	struct fp_rx rx;
	int rc;

	/* A refused peer may find the socket closed already; its result is
	 * still queued for us, so read it whatever the send said. */
	(void)c->tp->send(c->fd, &tx, deadline);
	rc = recv_result(c->fd, deadline, c->rxbuf, &rx);
	if (rc == -EPROTO && rx.h.magic == FP_MAGIC && rx.h.version != FLTPORT_WIRE_VERSION)
		fp_debug("server speaks wire version %u, we speak %u", rx.h.version,
			 FLTPORT_WIRE_VERSION);
	if (rc < 0)
		return rc;
	if (rx.h.err != 0) {
		rc = rx.h.err;
		if (rc == -EACCES)
			fp_debug("the server refused us (uid %u, gid %u): its port's access policy "
				 "does not admit this user",
				 (unsigned)geteuid(), (unsigned)getegid());
		if (rc == -ECONNREFUSED && status)
			*status = rx.h.status;
	} else {
		rc = map_page(c, &rx);
		if (rc == 0)
			rc = attach_ring(c, &rx, shm);
	}
	fp_rx_release(&rx);
	return rc;
}

static int conn_start(struct fltport_conn *c)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	const bool kick_fd = !c->ring || !fp_ring_futex(c->ring);
	int pidfd = -1, rc;

	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0) {
		c->peer.pid = cr.pid;
		c->peer.uid = cr.uid;
		c->peer.gid = cr.gid;
	}
	len = sizeof(pidfd);
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0)
		c->peer.pidfd = pidfd;
	c->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	/* On the rings in futex mode a kick is fp_ring_kick(): no eventfd. */
	if (kick_fd)
		c->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->taken = taken_new(c->nslots);
	if (c->evfd < 0 || (kick_fd && c->kickfd < 0) || !c->taken)
		return -ENOMEM;
	{
		struct timeval tv = { .tv_sec = 0, .tv_usec = FP_BLOCK_SLICE_NS / 1000 };

		c->rcvtimeo = setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0;
	}
	rc = pthread_create(&c->rx_thread, NULL, fp_client_rx_main, c);
	return -rc;
}

/* FLTPORT_CONNECT_SHM, or FLTPORT_TRANSPORT=shm in the environment (so a
 * whole test suite, or an unmodified program, runs on the rings). */
static bool want_shm(unsigned flags)
{
	const char *e = getenv("FLTPORT_TRANSPORT");

	if (e && !strcmp(e, "socket"))
		return false;
	return (flags & FLTPORT_CONNECT_SHM) || (e && !strcmp(e, "shm"));
}

FLTPORT_API const char *fltport_conn_transport(const fltport_conn *c)
{
	return !c ? NULL : c->ring ? "shm" : "socket";
}

FLTPORT_API int fltport_connect(const char *name, const void *ctx, size_t ctx_len, unsigned flags,
				int64_t timeout_ns, fltport_conn **out, uint32_t *status)
{
	const int64_t deadline = fp_deadline(timeout_ns);
	struct fltport_conn *c;
	int fd = -1, rc;

	if (!out || (flags & ~FLTPORT_CONNECT_SHM) || (!ctx) != (ctx_len == 0))
		return -EINVAL;
	if (ctx_len > FLTPORT_CONTEXT_MAX)
		return -E2BIG;
	rc = connect_socket(name, deadline, &fd);
	if (rc < 0)
		return rc;
	rc = check_server(fd);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	c = conn_new(fd);
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->rxbuf = malloc(FP_FRAME_MAX);
	rc = c->rxbuf ? handshake(c, ctx, ctx_len, want_shm(flags), deadline, status) : -ENOMEM;
	if (rc == 0)
		rc = conn_start(c);
	if (rc < 0) {
		fp_client_conn_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

FLTPORT_API void fltport_shutdown(fltport_conn *c)
{
	struct fp_reader *cbs = NULL;

	if (!c || fp_forked(&c->fork))
		return;
	pthread_mutex_lock(&c->lock);
	c->closing = true;
	fp_client_fail_all(c, &cbs);
	pthread_mutex_unlock(&c->lock);
	fp_client_run_callbacks(cbs);
	fp_client_shutdown_link(c);
}

FLTPORT_API void fltport_close(fltport_conn *c)
{
	bool self;

	if (!c)
		return;
	if (fp_forked(&c->fork)) {
		/* A forked child's copy: no thread of ours runs here, nothing
		 * to wait for; its fds are inert already. */
		fp_client_conn_free(c);
		return;
	}
	fltport_shutdown(c);
	/* From a completion callback on the receive thread (the last
	 * reference to a Windows port handle can go there): that thread
	 * cannot join itself; it frees the connection on its way out. */
	self = pthread_equal(pthread_self(), c->rx_thread);
	if (self) {
		pthread_mutex_lock(&c->lock);
		c->free_on_exit = true;
		pthread_mutex_unlock(&c->lock);
		return;
	}
	pthread_join(c->rx_thread, NULL);
	pthread_mutex_lock(&c->lock);
	while (atomic_load(&c->calls) > 0)
		pthread_cond_wait(&c->calls_cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
	fp_client_conn_free(c);
}

FLTPORT_API int fltport_conn_fd(const fltport_conn *c)
{
	struct fltport_conn *m = (struct fltport_conn *)c;

	if (fp_forked(&m->fork))
		return c->evfd;
	/* From now on frames are read as they come, so the fd is readable
	 * once a message has arrived, whoever waits (client.c, "Who reads"). */
	pthread_mutex_lock(&m->lock);
	if (!m->polled) {
		m->polled = true;
		pthread_cond_signal(&m->rx_cond);
	}
	pthread_mutex_unlock(&m->lock);
	return c->evfd;
}

FLTPORT_API void fltport_conn_peer(const fltport_conn *c, struct fltport_peer *peer)
{
	*peer = c->peer;
}

FLTPORT_API bool fltport_conn_ended(const fltport_conn *c)
{
	struct fltport_conn *m = (struct fltport_conn *)c;
	bool ended;

	if (fp_forked(&m->fork))
		return true;
	fp_client_enter(m);
	pthread_mutex_lock(&m->lock);
	ended = m->ended || m->closing;
	if (!ended && m->role == FP_ROLE_NONE) {
		/* Nobody is reading the socket now (client.c, "Who reads"):
		 * ask it whether the server has gone. */
		struct pollfd p = { .fd = m->fd, .events = POLLRDHUP };

		ended = poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
	}
	fp_client_leave(m);
	pthread_mutex_unlock(&m->lock);
	return ended;
}

FLTPORT_API size_t fltport_conn_max_message(const fltport_conn *c)
{
	return c->max_message;
}
