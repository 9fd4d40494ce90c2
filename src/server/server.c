/*
 * The server port: listening socket, the I/O role (accept, handshake,
 * frame dispatch, death detection; "the I/O thread" below is whichever pool
 * thread holds it: see lead()), the control thread (connect and disconnect
 * callbacks) and the pool (the I/O role and message callbacks).
 *
 * Lifecycle of a connection's library reference: the I/O thread holds it
 * while the connection is in epoll; it moves into the CONNECT job, back
 * into epoll when the connect callback accepts, and finally into the
 * DISCONNECT job, which the control thread runs exactly once.  Only the I/O
 * thread removes a connection from epoll, so an event never refers to a
 * freed connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/debug.h"
#include "core/names.h"
#include "server/server_int.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

#define FP_MAX_GROUPS 256
#define FP_IO_BATCH 32 /* frames read from one connection per wake-up */

void fp_queue_push(struct fp_queue *q, struct fp_job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

/* The lock-free hints (server_int.h) after a change of the work queue,
 * quit or stopping (srv->lock held). */
static void pool_note(struct fltport_server *srv)
{
	atomic_store_explicit(&srv->pool_look, srv->workq.head || srv->quit, memory_order_release);
	atomic_store_explicit(&srv->ending, srv->quit || srv->stopping, memory_order_release);
}

struct fp_job *fp_queue_pop(struct fp_queue *q)
{
	struct fp_job *j = q->head;

	if (j) {
		q->head = j->next;
		if (!q->head)
			q->tail = NULL;
	}
	return j;
}

void fp_server_wake(struct fltport_server *srv)
{
	uint64_t one = 1;

	while (write(srv->wakefd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

/* Jobs are reused (srv->jfree), so a request costs no allocation: one
 * from the free list (srv->lock held), or NULL. */
static struct fp_job *job_pop_free(struct fltport_server *srv)
{
	struct fp_job *j = srv->jfree;

	if (j) {
		srv->jfree = j->next;
		srv->njfree--;
	}
	return j;
}

/* j (its rx released) onto the free list (srv->lock held); j itself if
 * the list is full, for the caller to free() after the unlock. */
static struct fp_job *job_push_free(struct fltport_server *srv, struct fp_job *j)
{
	if (srv->njfree >= FP_JOB_FREE_MAX)
		return j;
	j->next = srv->jfree;
	srv->jfree = j;
	srv->njfree++;
	return NULL;
}

/* j (reused, or malloc()ed when NULL) made ready for kind; NULL if out of
 * memory. */
static struct fp_job *job_init(struct fp_job *j, enum fp_job_kind kind, struct fltport_client *c)
{
	if (!j && !(j = malloc(sizeof(*j))))
		return NULL;
	j->next = NULL;
	j->kind = kind;
	j->c = c;
	j->fds_held = 0;
	j->cookie = NULL;
	fp_rx_init(&j->rx);
	return j;
}

static struct fp_job *job_new(struct fltport_server *srv, enum fp_job_kind kind,
			      struct fltport_client *c)
{
	struct fp_job *j;

	pthread_mutex_lock(&srv->lock);
	j = job_pop_free(srv);
	pthread_mutex_unlock(&srv->lock);
	return job_init(j, kind, c);
}

static void job_free(struct fltport_server *srv, struct fp_job *j)
{
	fp_rx_release(&j->rx);
	pthread_mutex_lock(&srv->lock);
	j = job_push_free(srv, j);
	pthread_mutex_unlock(&srv->lock);
	free(j);
}

/* Make rx's payload outlive the I/O thread's buffer, in the job when small.
 * 0 or -ENOMEM (rx unchanged). */
static int job_take_rx(struct fp_job *j, struct fp_rx *rx)
{
	if (rx->pfd < 0 && rx->h.len > 0 && rx->h.len <= FP_JOB_INLINE && !rx->owned) {
		memcpy(j->small, rx->data, rx->h.len);
		rx->data = j->small;
	} else if (fp_rx_own(rx) < 0) {
		return -ENOMEM;
	}
	j->rx = *rx;
	return 0;
}

/* Send a CONNECT_RESULT that carries only an error; never blocks long. */
static void send_result(struct fltport_server *srv, int fd, int err, uint32_t status)
{
	struct fp_hdr h = {
		.magic = FP_MAGIC,
		.version = FLTPORT_WIRE_VERSION,
		.type = FP_T_CONNECT_RESULT,
		.err = err,
		.status = status,
	};
	struct fp_tx tx = { .h = &h, .page_fd = -1 };

	(void)srv->tp->send(fd, &tx, fp_now());
}

/* ---- access policy ---- */

static bool in_groups(const struct fltport_server *srv, const gid_t *groups, int ngroups)
{
	for (size_t i = 0; i < srv->cfg.access.ngids; i++)
		for (int k = 0; k < ngroups; k++)
			if (groups[k] == srv->gids[i])
				return true;
	return false;
}

static bool access_ok(const struct fltport_server *srv, int fd, const struct ucred *cr)
{
	gid_t groups[FP_MAX_GROUPS];
	socklen_t glen = sizeof(groups);
	int ngroups;

	if (cr->uid == 0 || srv->cfg.access.mode == FLTPORT_ACCESS_EVERYONE)
		return true;
	if (srv->cfg.access.mode != FLTPORT_ACCESS_LIST)
		return false;
	for (size_t i = 0; i < srv->cfg.access.nuids; i++)
		if (srv->uids[i] == cr->uid)
			return true;
	groups[0] = cr->gid;
	if (in_groups(srv, groups, 1))
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) != 0)
		return false;
	ngroups = (int)(glen / sizeof(gid_t));
	return in_groups(srv, groups, ngroups);
}

/* ---- I/O thread ---- */

static int epoll_add(struct fltport_server *srv, int fd, void *tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

	return epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

static void epoll_del(struct fltport_server *srv, int fd)
{
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* An accepted connection.  On the shared-memory transport frames come
 * through the ring: its doorbell, edge-triggered (on_client() rings it
 * again when it leaves frames unread), and the socket only for its end
 * (frames there are read when the ring announces them). */
static int epoll_add_client(struct fltport_server *srv, struct fltport_client *c)
{
	struct epoll_event ev = { .events = EPOLLRDHUP, .data.ptr = c };
	int rc;

	if (!c->ring) {
		ev.events = EPOLLIN | EPOLLET;
		return epoll_ctl(srv->epfd, EPOLL_CTL_ADD, c->fd, &ev) == 0 ? 0 : -errno;
	}
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
		return -errno;
	ev.events = EPOLLIN | EPOLLET;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fp_ring_bell(c->ring), &ev) != 0) {
		rc = -errno;
		epoll_del(srv, c->fd);
		return rc;
	}
	return 0;
}

/* ---- handshakes: a FIFO, oldest first, each with a deadline ---- */

static void hs_append(struct fltport_server *srv, struct fltport_client *c)
{
	c->hs_deadline = fp_now() + FP_HANDSHAKE_NS;
	c->hs_next = NULL;
	c->hs_prev = srv->hs_tail;
	if (srv->hs_tail)
		srv->hs_tail->hs_next = c;
	else
		srv->hs_head = c;
	srv->hs_tail = c;
}

static void hs_remove(struct fltport_server *srv, struct fltport_client *c)
{
	if (c->hs_prev)
		c->hs_prev->hs_next = c->hs_next;
	else if (srv->hs_head == c)
		srv->hs_head = c->hs_next;
	if (c->hs_next)
		c->hs_next->hs_prev = c->hs_prev;
	else if (srv->hs_tail == c)
		srv->hs_tail = c->hs_prev;
	c->hs_prev = c->hs_next = NULL;
}

/* Out of fds (or memory) in accept4(): a level-triggered listening socket
 * would wake us at once, forever.  Stop listening for a while; the
 * connection waits in the backlog. */
static void accept_backoff(struct fltport_server *srv, int err)
{
	struct epoll_event ev = { .events = 0, .data.ptr = &srv->listen_kind };

	srv->accept_backoff =
		srv->accept_backoff ? srv->accept_backoff * 2 : FP_ACCEPT_BACKOFF_MIN_NS;
	if (srv->accept_backoff > FP_ACCEPT_BACKOFF_MAX_NS)
		srv->accept_backoff = FP_ACCEPT_BACKOFF_MAX_NS;
	srv->accept_rearm = fp_now() + srv->accept_backoff;
	fp_debug("accept: %s: not accepting for %lld ms", fltport_strerror(err),
		 (long long)(srv->accept_backoff / 1000000));
	epoll_ctl(srv->epfd, EPOLL_CTL_MOD, srv->lfd, &ev);
}

static void accept_rearm(struct fltport_server *srv)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &srv->listen_kind };
	bool open;

	srv->accept_rearm = 0;
	pthread_mutex_lock(&srv->lock);
	open = !srv->lfd_closed;
	pthread_mutex_unlock(&srv->lock);
	if (open)
		epoll_ctl(srv->epfd, EPOLL_CTL_MOD, srv->lfd, &ev);
}

static void on_handshake(struct fltport_server *srv, struct fltport_client *c);
static void drop_handshake(struct fltport_server *srv, struct fltport_client *c);

static void accept_one(struct fltport_server *srv)
{
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	struct fltport_client *c;
	int fd, pidfd = -1;
	socklen_t plen = sizeof(pidfd);
	bool open, full;

	pthread_mutex_lock(&srv->lock);
	open = !srv->lfd_closed;
	pthread_mutex_unlock(&srv->lock);
	fd = open ? accept4(srv->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK) : -1;
	if (fd < 0) {
		if (open &&
		    (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM))
			accept_backoff(srv, -errno);
		return;
	}
	srv->accept_backoff = 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) != 0)
		goto drop;
	if (!access_ok(srv, fd, &cr)) {
		fp_debug("refusing pid %d uid %u: port access policy", (int)cr.pid,
			 (unsigned)cr.uid);
		send_result(srv, fd, -EACCES, 0);
		fp_count(&srv->cnt.refused, 1);
		goto drop;
	}
	c = fp_client_new(srv, fd);
	if (!c)
		goto drop;
	c->peer.pid = cr.pid;
	c->peer.uid = cr.uid;
	c->peer.gid = cr.gid;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &plen) == 0)
		c->peer.pidfd = pidfd;
	c->state = FP_C_HANDSHAKE;
	/* Check and register in one critical section: a destroy that starts
	 * meanwhile either sees this connection or makes us drop it. */
	pthread_mutex_lock(&srv->lock);
	if (srv->stopping || srv->closed) {
		pthread_mutex_unlock(&srv->lock);
		fp_client_unref(c); /* not listed yet: frees it and closes fd */
		return;
	}
	full = srv->nhandshake >= FP_MAX_HANDSHAKES;
	pthread_mutex_unlock(&srv->lock);
	/* At the cap, the peer that has been silent longest makes room: a
	 * flood of silent peers cannot lock legitimate clients out. */
	if (full && srv->hs_head) {
		fp_debug("%u handshakes pending: dropping the oldest (pid %d)", FP_MAX_HANDSHAKES,
			 (int)srv->hs_head->peer.pid);
		drop_handshake(srv, srv->hs_head);
	}
	pthread_mutex_lock(&srv->lock);
	c->next = srv->clients;
	if (srv->clients)
		srv->clients->prev = c;
	srv->clients = c;
	srv->nhandshake++;
	pthread_mutex_unlock(&srv->lock);
	hs_append(srv, c);
	if (epoll_add(srv, fd, c) < 0) {
		drop_handshake(srv, c);
		return;
	}
	/* A client sends CONNECT right after connect(): it is usually here
	 * already, and the handshake ends before the next peer is accepted. */
	on_handshake(srv, c);
	return;
drop:
	close(fd);
}

/* Drop a connection that never got past the handshake. */
static void drop_handshake(struct fltport_server *srv, struct fltport_client *c)
{
	hs_remove(srv, c);
	epoll_del(srv, c->fd);
	pthread_mutex_lock(&srv->lock);
	srv->nhandshake--;
	c->state = FP_C_DEAD;
	pthread_cond_broadcast(&srv->state_cond);
	pthread_mutex_unlock(&srv->lock);
	fp_client_unref(c);
}

/* An accepted connection ended: out of epoll, disconnect job queued
 * (io_lock held). */
static void retire(struct fltport_server *srv, struct fltport_client *c)
{
	struct fp_job *j;

	fp_client_mark_dead(c);
	fp_client_shutdown(c);
	pthread_mutex_lock(&srv->lock);
	if (c->state != FP_C_ACTIVE) {
		pthread_mutex_unlock(&srv->lock);
		return;
	}
	c->state = FP_C_DEAD;
	pthread_mutex_unlock(&srv->lock);
	epoll_del(srv, c->fd);
	if (c->ring)
		epoll_del(srv, fp_ring_bell(c->ring));
	if (srv->spin_c == c) { /* an idle server may never look at it again */
		srv->spin_c = NULL;
		fp_client_unref(c);
	}
	/* The disconnect job must not be lost: retry the allocation. */
	while (!(j = job_new(srv, FP_JOB_DISCONNECT, c)))
		usleep(1000);
	/* It runs after every message callback of the connection returned;
	 * the control thread never waits for one (a slow callback must not
	 * hold up other clients' connects): with callbacks still running,
	 * the last of them queues it. */
	pthread_mutex_lock(&srv->lock);
	if (c->inflight > 0) {
		c->disc_job = j;
	} else {
		fp_queue_push(&srv->ctlq, j);
		pthread_cond_signal(&srv->ctl_cond);
	}
	pthread_mutex_unlock(&srv->lock);
}

static void on_handshake(struct fltport_server *srv, struct fltport_client *c)
{
	struct fp_rx rx;
	struct fp_job *j;
	int rc = srv->tp->recv(c->fd, srv->rxbuf, FP_FRAME_MAX, FLTPORT_CONTEXT_MAX, &rx, true);

	if (rc == -EAGAIN)
		return;
	if (rc == -EPROTO) {
		fp_debug("client pid %d speaks wire version %u, we speak %u", (int)c->peer.pid,
			 rx.h.version, FLTPORT_WIRE_VERSION);
		send_result(srv, c->fd, -EPROTO, 0);
	}
	if (rc < 0 || rx.h.type != FP_T_CONNECT) {
		if (rc == 0)
			fp_rx_release(&rx);
		drop_handshake(srv, c);
		return;
	}
	pthread_mutex_lock(&srv->lock);
	if (srv->nconn >= srv->cfg.max_connections || srv->stopping) {
		pthread_mutex_unlock(&srv->lock);
		fp_rx_release(&rx);
		send_result(srv, c->fd, -EUSERS, 0);
		fp_count(&srv->cnt.refused, 1);
		drop_handshake(srv, c);
		return;
	}
	pthread_mutex_unlock(&srv->lock);
	j = job_new(srv, FP_JOB_CONNECT, c);
	if (!j || job_take_rx(j, &rx) < 0) {
		free(j);
		fp_rx_release(&rx);
		send_result(srv, c->fd, -ENOMEM, 0);
		drop_handshake(srv, c);
		return;
	}
	hs_remove(srv, c);
	epoll_del(srv, c->fd);
	pthread_mutex_lock(&srv->lock);
	srv->nconn++;
	srv->nhandshake--;
	c->state = FP_C_CONNECTING;
	fp_queue_push(&srv->ctlq, j);
	pthread_cond_signal(&srv->ctl_cond);
	pthread_mutex_unlock(&srv->lock);
}

static void respond(struct fltport_server *srv, struct fltport_client *c, uint64_t id, int err,
		    uint32_t status, const void *out, size_t out_len, int64_t deadline);
static void request_done(struct fltport_server *srv, struct fltport_client *c, unsigned nfds,
			 bool busy);

static unsigned job_fds(const struct fp_job *j)
{
	return j->fds_held;
}

/*
 * A REQUEST read by the I/O leader: the batch's first one while another
 * pool thread is idle becomes *mine — the leader runs it itself once the
 * batch is done, handing the I/O role over (lead()); the others are queued
 * for idle threads or the first pool thread that comes back.
 */
static void queue_request(struct fltport_server *srv, struct fltport_client *c, struct fp_rx *rx,
			  bool stable, struct fp_job **mine)
{
	bool wake, here;
	unsigned nfds = rx->nfds + (rx->pfd >= 0 ? 1u : 0u);
	struct fp_job *j;
	void *cookie;

	pthread_mutex_lock(&srv->lock);
	if (c->inflight >= FP_MAX_REQUESTS) {
		unsigned inflight = c->inflight; /* read under the lock */

		pthread_mutex_unlock(&srv->lock);
		fp_debug("client pid %d has %u requests in flight: dropping it", (int)c->peer.pid,
			 inflight);
		fp_rx_release(rx);
		retire(srv, c);
		return;
	}
	if (nfds && c->fds_held + nfds > FP_MAX_FDS_HELD) {
		/* The fds a peer can park here are capped like its requests
		 * are; this one is answered at once and the peer stays. */
		uint64_t id = rx->h.id;
		unsigned held = c->fds_held;

		pthread_mutex_unlock(&srv->lock);
		fp_debug("client pid %d holds %u fds in queued requests: refusing one with %u",
			 (int)c->peer.pid, held, nfds);
		fp_rx_release(rx);
		respond(srv, c, id, -EMFILE, 0, NULL, 0, fp_now());
		return;
	}
	/* Admitted: counted now, in the section that checked the caps (and
	 * undone by request_done() if the job cannot be made). */
	here = !*mine && srv->busy < srv->cfg.workers && !srv->quit;
	if (here)
		srv->busy++; /* this thread runs it after the batch (io_round) */
	c->inflight++;
	c->fds_held += nfds;
	cookie = c->cookie;
	j = job_pop_free(srv);
	pthread_mutex_unlock(&srv->lock);
	j = job_init(j, FP_JOB_REQUEST, c);
	/* Run here from a buffer that outlives the callback (stable: a parked
	 * thread's own), the payload is not copied. */
	if (j && here && stable) {
		j->rx = *rx;
	} else if (!j || job_take_rx(j, rx) < 0) {
		free(j);
		fp_rx_release(rx);
		pthread_mutex_lock(&srv->lock);
		request_done(srv, c, nfds, here);
		pthread_mutex_unlock(&srv->lock);
		retire(srv, c);
		return;
	}
	j->fds_held = nfds;
	j->cookie = cookie;
	fp_count(&c->cnt.received, 1);
	fp_count(&c->cnt.received_bytes, j->rx.h.len);
	fp_client_ref(c);
	if (here) {
		*mine = j;
		return;
	}
	pthread_mutex_lock(&srv->lock);
	fp_queue_push(&srv->workq, j);
	pool_note(srv);
	wake = srv->busy < srv->cfg.workers;
	pthread_mutex_unlock(&srv->lock);
	/* An idle pool thread waits in epoll_wait(): the eventfd brings one.
	 * With cfg.workers callbacks running, the first to return takes it. */
	if (wake)
		fp_server_wake(srv);
}

/* Act on one frame read from an active connection (rc: the read's result,
 * not -EAGAIN): a REQUEST is queued or becomes *mine (queue_request; stable:
 * rx's buffer stays this thread's until *mine has run), a REPLY goes to its
 * sender; an error or any other frame ends the connection.  False if it
 * ended.  io_lock held. */
static bool on_frame(struct fltport_server *srv, struct fltport_client *c, int rc, struct fp_rx *rx,
		     bool stable, struct fp_job **mine)
{
	if (rc == -EMFILE && rx->h.type == FP_T_REQUEST) {
		/* Its fds did not fit in this process (RLIMIT_NOFILE): our
		 * shortage, not the peer's fault.  Answered like a request
		 * over the fds cap (queue_request); the peer stays. */
		fp_debug("client pid %d: a request's fds could not be received: refusing it",
			 (int)c->peer.pid);
		respond(srv, c, rx->h.id, -EMFILE, 0, NULL, 0, fp_now());
		return true;
	}
	if (rc < 0) {
		if (rc != -ENOTCONN)
			fp_debug("client pid %d: bad frame (%d): dropping it", (int)c->peer.pid,
				 rc);
		retire(srv, c);
		return false;
	}
	if (rx->h.type == FP_T_REQUEST) {
		queue_request(srv, c, rx, stable, mine);
		return true;
	}
	if (rx->h.type == FP_T_REPLY) {
		fp_client_deliver_reply(c, rx);
		fp_rx_release(rx);
		return true;
	}
	fp_debug("client pid %d sent frame type %u: dropping it", (int)c->peer.pid, rx->h.type);
	fp_rx_release(rx);
	retire(srv, c);
	return false;
}

/* Frames of one connection, until there are none (edge-triggered: the
 * next event comes with the next frame), at most FP_IO_BATCH so that one
 * busy peer cannot hold the others up: then it goes on the again queue
 * (a ring: its own doorbell) for the next round.  io_lock held. */
static void on_client(struct fltport_server *srv, struct fltport_client *c, struct fp_job **mine,
		      bool hup)
{
	if (atomic_load(&c->unwatched))
		return; /* a pool thread waits in recvmsg() on it: it reads (park()) */
	for (int i = 0; i < FP_IO_BATCH; i++) {
		struct fp_rx rx;
		/* A ring's socket is in the epoll set for its end only,
		 * level-triggered: it is looked at when that event came (hup),
		 * not after every frame (a poll(2) per message). */
		int rc = c->ring ? fp_ring_recv_watched(c->ring, c->fd, srv->rxbuf, FP_FRAME_MAX,
							srv->max_message, &rx, hup)
				 : fp_sock_ops.recv(c->fd, srv->rxbuf, FP_FRAME_MAX,
						    srv->max_message, &rx, true);

		if (rc == -EAGAIN)
			return; /* a ring is armed: its doorbell brings us back */
		if (!on_frame(srv, c, rc, &rx, false, mine))
			return;
	}
	/* Left with frames unread: no edge will come for them.  (A ring that
	 * turns out empty is armed now: its doorbell brings us back.) */
	if (c->ring && !fp_ring_arm(c->ring))
		return;
	if (!c->again_queued) {
		c->again_queued = true;
		fp_client_ref(c);
		c->again_next = srv->againq;
		srv->againq = c;
		fp_server_wake(srv);
	}
}

static void on_wake(struct fltport_server *srv, struct fp_job **mine)
{
	struct fltport_client *kq, *aq;
	uint64_t v;

	(void)mine;
	pthread_mutex_lock(&srv->lock);
	if (srv->quit) {
		/* Left readable (level-triggered): every pool thread wakes. */
		pthread_mutex_unlock(&srv->lock);
		return;
	}
	pthread_mutex_unlock(&srv->lock);
	while (read(srv->wakefd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&srv->lock);
	aq = srv->addq;
	srv->addq = NULL;
	kq = srv->killq;
	srv->killq = NULL;
	if (srv->closed && !srv->lfd_closed) {
		epoll_del(srv, srv->lfd);
		close(srv->lfd);
		srv->lfd_closed = true;
	}
	pthread_mutex_unlock(&srv->lock);
	while (aq) {
		struct fltport_client *c = aq;
		enum fp_cstate st;
		bool killed;

		aq = c->add_next;
		pthread_mutex_lock(&srv->lock);
		killed = c->killed;
		st = c->state;
		pthread_mutex_unlock(&srv->lock);
		/* The connection's own reference becomes epoll's.  A kill
		 * since it became ACTIVE may have retired it already (the
		 * kill queue is handled too): then its disconnect job owns
		 * that reference, and only the add queue's is dropped here. */
		if (st == FP_C_ACTIVE && (killed || epoll_add_client(srv, c) < 0))
			retire(srv, c);
		fp_client_unref(c); /* the add queue's */
	}
	while (kq) {
		struct fltport_client *c = kq;
		enum fp_cstate st;

		kq = c->kill_next;
		pthread_mutex_lock(&srv->lock);
		st = c->state;
		c->kill_queued = false;
		pthread_mutex_unlock(&srv->lock);
		if (st == FP_C_ACTIVE)
			retire(srv, c);
		else if (st == FP_C_HANDSHAKE)
			drop_handshake(srv, c);
		fp_client_unref(c); /* the kill queue's reference */
	}
}

/* On destroy: connections still in the handshake are simply dropped. */
static void drop_all_handshakes(struct fltport_server *srv)
{
	for (;;) {
		struct fltport_client *c;

		pthread_mutex_lock(&srv->lock);
		for (c = srv->clients; c && c->state != FP_C_HANDSHAKE; c = c->next)
			;
		pthread_mutex_unlock(&srv->lock);
		if (!c)
			return;
		drop_handshake(srv, c);
	}
}

/* Handshakes past their deadline are dropped; the listening socket is
 * re-armed after a backoff.  Returns epoll_wait()'s timeout for the next
 * of these. */
static int io_timers(struct fltport_server *srv)
{
	int64_t now = fp_now(), next = FP_NEVER;

	while (srv->hs_head && srv->hs_head->hs_deadline <= now) {
		fp_debug("client pid %d sent no CONNECT in time: dropping it",
			 (int)srv->hs_head->peer.pid);
		drop_handshake(srv, srv->hs_head);
	}
	if (srv->accept_rearm && srv->accept_rearm <= now)
		accept_rearm(srv);
	if (srv->hs_head)
		next = srv->hs_head->hs_deadline;
	if (srv->accept_rearm && srv->accept_rearm < next)
		next = srv->accept_rearm;
	return fp_poll_ms(next);
}

static bool spin_ready(const void *arg)
{
	return fp_ring_pending(((const struct fltport_client *)arg)->ring);
}

/* The ring connection a thread about to wait watches for a little while
 * first (its next frame is usually close behind: a requester's next
 * request), with a reference; one thread at a time.  io_lock held. */
static struct fltport_client *spin_claim(struct fltport_server *srv)
{
	struct fltport_client *c = srv->spin_c;

	if (c && atomic_load(&c->dead)) {
		srv->spin_c = NULL;
		fp_client_unref(c);
		return NULL;
	}
	if (!c || srv->spinning)
		return NULL;
	srv->spinning = true;
	fp_client_ref(c);
	fp_ring_disarm(c->ring); /* this thread looks: no doorbell needed */
	return c;
}

/* After a batch of one event on a ring connection, that connection is the
 * one to watch (a reference held while it is); else none.  io_lock held. */
static void spin_target(struct fltport_server *srv, struct fltport_client *c)
{
	struct fltport_client *old = srv->spin_c;

	if (c == old)
		return;
	if (c)
		fp_client_ref(c);
	srv->spin_c = c;
	if (old)
		fp_client_unref(old);
}

/* Connections with frames left unread (edge-triggered sockets): again. */
static void run_again(struct fltport_server *srv, struct fp_job **mine)
{
	/* The queue as it is now: a connection that goes back on it waits for
	 * the next round, so one busy peer cannot keep this one going. */
	struct fltport_client *q = srv->againq;

	srv->againq = NULL;
	while (q) {
		struct fltport_client *c = q;
		enum fp_cstate st;

		q = c->again_next;
		c->again_queued = false;
		pthread_mutex_lock(&srv->lock);
		st = c->state;
		pthread_mutex_unlock(&srv->lock);
		if (st == FP_C_ACTIVE)
			on_client(srv, c, mine, false);
		fp_client_unref(c); /* the again queue's */
	}
}

static void on_park_timer(struct fltport_server *srv);

/* One event of a batch (io_lock held); returns the active connection it
 * was for, with a reference, or NULL.  A client event may be stale: the
 * connection left epoll (and even its memory was recycled for another,
 * fp_client_new()) after epoll_wait() returned it; client memory lives as
 * long as the server, and a reference is taken only on a live one. */
static struct fltport_client *on_event(struct fltport_server *srv, void *tag, uint32_t events,
				       struct fp_job **mine)
{
	int kind = *(int *)tag;
	struct fltport_client *c = tag;
	enum fp_cstate st;

	if (kind == FP_EV_LISTEN) {
		accept_one(srv);
		return NULL;
	}
	if (kind == FP_EV_WAKE) {
		on_wake(srv, mine);
		return NULL;
	}
	if (kind == FP_EV_PARK_TIMER) {
		on_park_timer(srv);
		return NULL;
	}
	pthread_mutex_lock(&srv->lock);
	st = c->state;
	if (st != FP_C_HANDSHAKE && st != FP_C_ACTIVE)
		c = NULL;
	else if (!fp_client_tryref(c))
		c = NULL;
	pthread_mutex_unlock(&srv->lock);
	if (!c)
		return NULL;
	if (st == FP_C_HANDSHAKE) {
		on_handshake(srv, c);
		fp_client_unref(c);
		return NULL;
	}
	on_client(srv, c, mine, (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
	return c; /* an active connection, its reference with it */
}

/*
 * The I/O: every pool thread that is not running a callback waits here, in
 * epoll_wait() on the one epoll set; the kernel wakes one of them per
 * event.  Connections' sockets are edge-triggered (a ring connection's
 * doorbell too), so the one woken thread reads what is there and no other
 * thread is woken for it.  The I/O state (handshake list, receive buffer,
 * timers, epoll registrations) is touched under io_lock only, so batches
 * of two woken threads never interleave.  A request read here becomes the
 * reading thread's own (*mine) while fewer than cfg.workers callbacks run,
 * and it runs the callback itself once the batch is done: no hand-off
 * between threads on a request's path, and at least one pool thread is
 * always free for I/O.  Other requests are queued for idle threads (the
 * wake-up eventfd brings one).  Returns the thread's own request, or NULL.
 */
static struct fp_job *io_round(struct fltport_server *srv, struct epoll_event *evs, int max)
{
	struct fp_job *mine = NULL;
	struct fltport_client *spin, *one = NULL;
	int timeout, n = -1;
	bool quit, stopping, timers = false;

	pthread_mutex_lock(&srv->io_lock);
	timeout = io_timers(srv);
	spin = spin_claim(srv);
	pthread_mutex_unlock(&srv->io_lock);
	/* A record that came while spinning, or before the ring was armed
	 * again, is read as if its doorbell had rung. */
	if (spin && ((timeout != 0 && fp_spin_until(&srv->spin, spin_ready, spin)) ||
		     fp_ring_arm(spin->ring))) {
		evs[0].events = EPOLLIN;
		evs[0].data.ptr = spin;
		n = 1;
	} else if (spin) {
		/* Nothing came: let it go before sleeping, which may be for
		 * good on an idle server (the connection may be dead). */
		pthread_mutex_lock(&srv->io_lock);
		srv->spinning = false;
		pthread_mutex_unlock(&srv->io_lock);
		fp_client_unref(spin);
		spin = NULL;
	}
	if (n < 0)
		n = epoll_wait(srv->epfd, evs, max, timeout);
	pthread_mutex_lock(&srv->io_lock);
	if (spin)
		srv->spinning = false;
	quit = stopping = false;
	if (atomic_load_explicit(&srv->ending, memory_order_acquire)) {
		pthread_mutex_lock(&srv->lock);
		quit = srv->quit;
		stopping = srv->stopping;
		pthread_mutex_unlock(&srv->lock);
	}
	if (!quit) {
		for (int i = 0; i < n; i++) {
			struct fltport_client *c =
				on_event(srv, evs[i].data.ptr, evs[i].events, &mine);

			if (c && n == 1 && c->ring && !atomic_load(&c->dead))
				one = c; /* the one to watch: its reference goes below */
			else if (c)
				fp_client_unref(c);
		}
		run_again(srv, &mine);
		spin_target(srv, one);
		if (stopping)
			drop_all_handshakes(srv);
		/* This thread goes to run a callback: the other threads may
		 * wait with no timeout while a timer is now due (a handshake's
		 * deadline, the listening socket's re-arm).  One of them wakes
		 * to take it into account. */
		timers = mine && (srv->hs_head || srv->accept_rearm);
	} else {
		spin_target(srv, NULL);
	}
	pthread_mutex_unlock(&srv->io_lock);
	if (timers)
		fp_server_wake(srv);
	if (one)
		fp_client_unref(one);
	if (spin)
		fp_client_unref(spin);
	return mine;
}

/* ---- control thread: connect and disconnect callbacks ---- */

/* The shared-memory transport is granted to a user side that asks, unless
 * this process runs with FLTPORT_TRANSPORT=socket. */
static bool shm_allowed(void)
{
	const char *e = getenv("FLTPORT_TRANSPORT");

	return !e || strcmp(e, "socket") != 0;
}

static void run_connect(struct fltport_server *srv, struct fp_job *j)
{
	struct fltport_client *c = j->c;
	uint8_t info[FP_CONNECT_INFO_SIZE];
	struct fp_connect_info ci = { .max_message = srv->max_message };
	struct fp_hdr h = { .magic = FP_MAGIC,
			    .version = FLTPORT_WIRE_VERSION,
			    .type = FP_T_CONNECT_RESULT,
			    .len = FP_CONNECT_INFO_SIZE };
	struct fp_tx tx = { .h = &h, .payload = info, .page_fd = -1 };
	int ring_fds[FP_RING_NFDS] = { -1, -1, -1 };
	bool have_ring = false;
	const void *ctx = j->rx.data;
	uint32_t status = 0;
	void *cookie = NULL;
	char *exe;
	int rc;

	rc = fp_client_setup_page(c, srv->cfg.slots);
	/* Before `ready`: no message is sent before this. */
	c->area.wanted = (j->rx.h.id & FP_CAP_AREA) && c->area.cap > FP_INLINE_MAX;
	if (rc == 0 && j->rx.h.arg == FP_TRANSPORT_SHM && shm_allowed()) {
		/* Before the callback: a handle it gets is complete. */
		pthread_mutex_lock(&c->lock);
		rc = fp_ring_create(&c->ring, ring_fds);
		pthread_mutex_unlock(&c->lock);
		have_ring = rc == 0;
		if (rc < 0) /* a shortage here: the socket still works */
			fp_debug("client pid %d: no rings (%s): on the socket", (int)c->peer.pid,
				 fltport_strerror(rc));
		rc = 0;
	}
	if (rc == 0)
		rc = srv->cfg.on_connect(c, srv->cfg.cookie, ctx, j->rx.h.len, &c->peer, &cookie,
					 &status) == 0
			     ? 0
			     : -ECONNREFUSED;
	if (rc < 0) {
		/* The slot is free before the client learns of the refusal: a
		 * client that connects again at once must not find it taken. */
		pthread_mutex_lock(&srv->lock);
		srv->nconn--;
		c->state = FP_C_DEAD;
		pthread_cond_broadcast(&srv->state_cond);
		pthread_mutex_unlock(&srv->lock);
		if (have_ring) {
			close(ring_fds[0]);
			close(ring_fds[2]);
		}
		send_result(srv, c->fd, rc, status);
		fp_count(&srv->cnt.refused, 1);
		fp_client_unref(c); /* never accepted: no disconnect callback */
		return;
	}
	exe = fp_port_peer_exe(c->peer.pid);
	ci.nslots = c->nslots;
	ci.page_size = (uint32_t)c->page_size;
	fp_connect_info_encode(&ci, info);
	tx.page_fd = c->page_fd;
	if (have_ring) {
		h.arg = FP_TRANSPORT_SHM;
		tx.ctl_fds = ring_fds;
		tx.nctl = FP_RING_NFDS;
	}
	pthread_mutex_lock(&srv->lock);
	c->cookie = cookie;
	c->user_ref = true;
	fp_client_ref(c);
	c->state = FP_C_ACTIVE;
	fp_port_count_connect(srv, c, exe);
	pthread_mutex_unlock(&srv->lock);
	/* The result goes out before any message a sender may already be
	 * trying to send (senders wait for `ready`).  A client that vanished
	 * meanwhile is retired by the I/O thread: it was accepted, so its
	 * disconnect callback runs all the same. */
	pthread_mutex_lock(&c->lock);
	if (srv->tp->send(c->fd, &tx, fp_now() + FP_RESPONSE_STALL_NS) < 0)
		fp_debug("client pid %d left before its connect result", (int)c->peer.pid);
	if (have_ring) { /* the memfd (mapped on both sides now), the user's end */
		close(ring_fds[0]);
		close(ring_fds[2]);
	}
	c->ready = true;
	pthread_cond_broadcast(&c->slot_cond);
	pthread_mutex_unlock(&c->lock);
	/* Only the I/O thread touches epoll: hand the library's reference over. */
	pthread_mutex_lock(&srv->lock);
	/* Its own link: a kill since the state became ACTIVE may have put it
	 * on the kill queue already, through kill_next (sharing that field
	 * corrupted both lists: a later unref of a client never on the kill
	 * queue, and a use after free that TSan caught in CI, 2026-11-29). */
	fp_client_ref(c); /* the add queue's: a kill may retire it before it arrives */
	c->add_next = srv->addq;
	srv->addq = c;
	pthread_mutex_unlock(&srv->lock);
	fp_server_wake(srv);
}

static void run_disconnect(struct fltport_server *srv, struct fp_job *j)
{
	struct fp_job *spare = NULL;
	struct fltport_client *c = j->c;
	void *cookie;

	/* Every message callback of this connection has returned (retire()
	 * and worker_main() queue this job only then). */
	pthread_mutex_lock(&srv->lock);
	cookie = c->cookie;
	/* The max_connections slot is free before the disconnect callback
	 * runs: a service that saw its connection end and connects again at
	 * once is admitted (its connect callback still runs after this
	 * disconnect callback: both run on this thread, in order). */
	srv->nconn--;
	/* No connection left: the reusable jobs go back to the heap (a port
	 * that sits idle holds no cache). */
	if (srv->nconn == 0) {
		spare = srv->jfree;
		srv->jfree = NULL;
		srv->njfree = 0;
	}
	pthread_cond_broadcast(&srv->state_cond);
	pthread_mutex_unlock(&srv->lock);
	fp_count(&srv->cnt.disconnects, 1);
	srv->cfg.on_disconnect(cookie);
	while (spare) {
		struct fp_job *n = spare->next;

		free(spare);
		spare = n;
	}
	fp_client_unref(c);
}

static void *ctl_main(void *arg)
{
	struct fltport_server *srv = arg;

	for (;;) {
		struct fp_job *j;

		pthread_mutex_lock(&srv->lock);
		while (!(j = fp_queue_pop(&srv->ctlq)) && !srv->quit)
			pthread_cond_wait(&srv->ctl_cond, &srv->lock);
		pthread_mutex_unlock(&srv->lock);
		if (!j)
			return NULL;
		if (j->kind == FP_JOB_CONNECT)
			run_connect(srv, j);
		else
			run_disconnect(srv, j);
		job_free(srv, j);
	}
}

/* ---- workers: message callbacks ---- */

/* Send a RESPONSE.  A peer that takes none before `deadline` is dropped. */
static void respond(struct fltport_server *srv, struct fltport_client *c, uint64_t id, int err,
		    uint32_t status, const void *out, size_t out_len, int64_t deadline)
{
	struct fp_hdr h = { .magic = FP_MAGIC,
			    .version = FLTPORT_WIRE_VERSION,
			    .type = FP_T_RESPONSE,
			    .id = id,
			    .err = err,
			    .status = status,
			    .len = (uint32_t)out_len };
	struct fp_tx tx = { .h = &h, .payload = out, .page_fd = -1, .area = &c->area };

	if (fp_link_send(c->ring, c->fd, &tx, deadline) < 0)
		fp_client_kill(c);
}

/* The input of a request: inline bytes, or the sealed memfd mapped (a
 * REQUEST never comes with a pipe: frame.c). */
static const void *map_input(struct fp_rx *rx, void **map)
{
	*map = NULL;
	if (rx->pfd < 0)
		return rx->data;
	*map = mmap(NULL, rx->h.len, PROT_READ, MAP_PRIVATE, rx->pfd, 0);
	return *map == MAP_FAILED ? NULL : *map;
}

/* The worker's output buffer for a capacity: its own, kept between requests
 * up to FP_OUT_KEEP bytes; above that one for this request only. */
struct fp_outbuf {
	uint8_t *p;
	size_t cap;
};

static void *outbuf_get(struct fp_outbuf *ob, size_t cap)
{
	uint8_t *n;

	if (cap <= ob->cap)
		return ob->p;
	if (cap > FP_OUT_KEEP)
		return malloc(cap);
	n = realloc(ob->p, cap);
	if (!n)
		return NULL;
	ob->p = n;
	ob->cap = cap;
	return n;
}

static void outbuf_put(struct fp_outbuf *ob, void *p)
{
	if (p != ob->p)
		free(p);
}

/* Run the callback on a request (rx: its payload, in a buffer that
 * outlives the call; its fds are the callback's) and answer it.  cookie:
 * c's, read under srv->lock. */
static void serve(struct fltport_server *srv, struct fltport_client *c, struct fp_rx *rx,
		  void *cookie, struct fp_outbuf *ob)
{
	struct fltport_request req = { .client = c };
	size_t cap = rx->h.arg < srv->max_message ? rx->h.arg : srv->max_message;
	void *out = NULL, *map;
	size_t out_len = 0;
	uint32_t status;

	if (atomic_load(&c->dead))
		return;
	if (!srv->cfg.on_message) {
		respond(srv, c, rx->h.id, -EOPNOTSUPP, 0, NULL, 0, fp_now() + FP_RESPONSE_STALL_NS);
		return;
	}
	req.in = map_input(rx, &map);
	req.in_len = rx->h.len;
	if ((!req.in && req.in_len) || (cap && !(out = outbuf_get(ob, cap)))) {
		if (map && map != MAP_FAILED)
			munmap(map, rx->h.len);
		respond(srv, c, rx->h.id, -ENOMEM, 0, NULL, 0, fp_now() + FP_RESPONSE_STALL_NS);
		return;
	}
	req.nfds = fp_rx_take_fds(rx, req.fds);
	status = srv->cfg.on_message(cookie, &req, out, cap, &out_len);
	if (out_len > cap)
		out_len = cap;
	if (map)
		munmap(map, rx->h.len);
	respond(srv, c, rx->h.id, 0, status, out, out_len, fp_now() + FP_RESPONSE_STALL_NS);
	outbuf_put(ob, out);
}

/* A request of c holding nfds has run, or could not be queued (srv->lock
 * held): the accounting that admitted it (queue_request, park_admit)
 * undone; busy: it counted in srv->busy. */
static void request_done(struct fltport_server *srv, struct fltport_client *c, unsigned nfds,
			 bool busy)
{
	if (busy)
		srv->busy--;
	c->fds_held -= nfds;
	if (--c->inflight == 0 && c->disc_job) {
		fp_queue_push(&srv->ctlq, c->disc_job);
		c->disc_job = NULL;
		pthread_cond_signal(&srv->ctl_cond);
	}
	pthread_cond_broadcast(&srv->state_cond);
}

static void run_job(struct fltport_server *srv, struct fp_job *j, struct fp_outbuf *ob)
{
	struct fltport_client *c = j->c;

	serve(srv, c, &j->rx, j->cookie, ob);
	fp_rx_release(&j->rx);
	pthread_mutex_lock(&srv->lock);
	request_done(srv, c, job_fds(j), true);
	j = job_push_free(srv, j);
	pthread_mutex_unlock(&srv->lock);
	free(j);
	fp_client_unref(c);
}

/*
 * Parking (the socket transport).  A pool thread that has just answered a
 * connection's request waits for that connection's next frame in a
 * blocking recvmsg() of its own, with the connection taken out of the
 * epoll set's readiness (EPOLL_CTL_MOD without EPOLLIN): a requester's next
 * request then costs the two system calls of a raw ping-pong (recvmsg,
 * sendmsg), not epoll_wait + recvmsg + the recvmsg that finds the
 * edge-triggered socket empty.  One thread parks at a time, only while
 * fewer than cfg.workers callbacks run and no request is queued, and for
 * FP_PARK_SLICE_MS at most without a frame (SO_RCVTIMEO): then, or at
 * quit, or when a request must be queued, the connection goes back to the
 * epoll set, and a frame that came meanwhile raises its event there
 * (EPOLL_CTL_MOD reports what is already readable).
 *
 * The parked thread runs the requests it reads itself.  While it does,
 * nobody reads that connection: the connection is watched again (EPOLLIN
 * back, other pool threads read it, the parked thread leaves when the
 * callback returns) as soon as anything needs it read — fltport_send() to
 * it (its reply may come as a frame: fp_server_rewatch()) — or once the
 * callback has run for FP_PARK_WATCH_NS (a timerfd in the epoll set,
 * armed while a thread is parked): so other requests of the connection run
 * concurrently and its end is noticed, at most that much later than
 * without parking.  While the pool's other threads all run callbacks, other
 * connections' I/O waits for the slice's end: FP_PARK_SLICE_MS bounds that
 * delay.
 */
#define FP_PARK_SLICE_MS 10
#define FP_PARK_WATCH_NS (2 * 1000 * 1000)

static void park_timer(struct fltport_server *srv, bool on)
{
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };

	if (on)
		its.it_value.tv_nsec = its.it_interval.tv_nsec = FP_PARK_WATCH_NS;
	(void)timerfd_settime(srv->park_tfd, 0, &its, NULL);
}

/* Give a parked connection back to the epoll set (io_lock held). */
static void rewatch(struct fltport_server *srv, struct fltport_client *c)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.ptr = c };
	bool active;

	if (!atomic_load(&c->unwatched))
		return;
	atomic_store(&c->unwatched, false);
	pthread_mutex_lock(&srv->lock);
	active = c->state == FP_C_ACTIVE;
	pthread_mutex_unlock(&srv->lock);
	if (active && epoll_ctl(srv->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
		retire(srv, c); /* cannot happen (ENOMEM at most): never leave it unwatched */
}

/* fltport_send() to a parked connection: its reply may come as a frame. */
void fp_server_rewatch(struct fltport_server *srv, struct fltport_client *c)
{
	pthread_mutex_lock(&srv->io_lock);
	rewatch(srv, c);
	pthread_mutex_unlock(&srv->io_lock);
}

/* The watchdog's tick (io_lock held): a callback of the parked thread
 * running for FP_PARK_WATCH_NS gets its connection watched again. */
static void on_park_timer(struct fltport_server *srv)
{
	struct fltport_client *c = srv->park_c;
	uint64_t v;
	int64_t since;

	while (read(srv->park_tfd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	if (!c || !atomic_load(&c->unwatched))
		return;
	since = atomic_load(&c->cb_since);
	if (since && fp_now() - since >= FP_PARK_WATCH_NS)
		rewatch(srv, c);
}

static bool park_begin(struct fltport_server *srv, struct fltport_client *c)
{
	struct epoll_event ev = { .events = EPOLLET, .data.ptr = c };
	bool ok;

	if (srv->park_tfd < 0)
		return false;
	pthread_mutex_lock(&srv->io_lock);
	pthread_mutex_lock(&srv->lock);
	ok = !srv->quit && !srv->stopping && !srv->parked && c->state == FP_C_ACTIVE &&
	     srv->busy < srv->cfg.workers && !srv->workq.head;
	if (ok)
		srv->parked = true;
	pthread_mutex_unlock(&srv->lock);
	if (ok && !c->rcvtimeo) {
		struct timeval tv = { .tv_sec = 0, .tv_usec = FP_PARK_SLICE_MS * 1000 };

		/* Every other read and write of the socket says MSG_DONTWAIT:
		 * only park()'s recvmsg() blocks, for a slice at most. */
		c->rcvtimeo = setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 &&
			      fcntl(c->fd, F_SETFL, O_RDWR) == 0;
		ok = c->rcvtimeo;
	}
	ok = ok && !c->again_queued && epoll_ctl(srv->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0;
	if (ok) {
		atomic_store(&c->unwatched, true);
		srv->park_c = c; /* the parking thread's reference covers it */
		park_timer(srv, true);
	} else {
		pthread_mutex_lock(&srv->lock);
		srv->parked = false;
		pthread_mutex_unlock(&srv->lock);
	}
	pthread_mutex_unlock(&srv->io_lock);
	return ok;
}

static void park_end(struct fltport_server *srv, struct fltport_client *c)
{
	pthread_mutex_lock(&srv->io_lock);
	rewatch(srv, c);
	srv->park_c = NULL;
	park_timer(srv, false);
	pthread_mutex_lock(&srv->lock);
	srv->parked = false;
	pthread_mutex_unlock(&srv->lock);
	pthread_mutex_unlock(&srv->io_lock);
}

/*
 * A request read by the parked thread, run by it at once when
 * queue_request() would make it the thread's own anyway (a pool thread
 * free, the connection under its caps): admitted under one srv->lock
 * (which also reads the cookie), without io_lock and without a job — the
 * payload stays in the parked thread's buffer.  False: on_frame() decides,
 * under io_lock, as for any frame.
 */
static bool park_admit(struct fltport_server *srv, struct fltport_client *c, const struct fp_rx *rx,
		       unsigned nfds, void **cookie)
{
	bool ok;

	pthread_mutex_lock(&srv->lock);
	ok = c->inflight < FP_MAX_REQUESTS && c->fds_held + nfds <= FP_MAX_FDS_HELD &&
	     srv->busy < srv->cfg.workers && !srv->quit;
	if (ok) {
		srv->busy++;
		c->inflight++;
		c->fds_held += nfds;
		*cookie = c->cookie;
	}
	pthread_mutex_unlock(&srv->lock);
	if (ok) {
		fp_count(&c->cnt.received, 1);
		fp_count(&c->cnt.received_bytes, rx->h.len);
	}
	return ok;
}

/* Whether the parked thread reads c's next frame (srv->lock held), after a
 * request it ran: a request queued (by this thread or another, while
 * cfg.workers callbacks ran) waits for a pool thread coming back from a
 * callback, as this one is; a connection watched again is read by the
 * epoll set. */
static bool park_goes_on(struct fltport_server *srv, struct fltport_client *c)
{
	return !srv->quit && !srv->stopping && c->state == FP_C_ACTIVE && !srv->workq.head &&
	       atomic_load(&c->unwatched);
}

/* Wait on c (a reference held by the caller) as long as it keeps sending
 * requests this thread may run; buf: FP_FRAME_MAX bytes. */
static void park(struct fltport_server *srv, struct fltport_client *c, uint8_t *buf,
		 struct fp_outbuf *ob)
{
	if (!park_begin(srv, c))
		return;
	for (;;) {
		struct fp_job *mine = NULL;
		struct fp_rx rx;
		void *cookie;
		unsigned nfds;
		bool go_on;
		int rc;

		/* A client on another CPU sends its next request within
		 * microseconds: watching for it a little (core/spin.h) saves
		 * this thread's sleep and the client its cross-CPU wake-up. */
		(void)fp_spin_until(&srv->park_spin, fp_sock_readable, &c->fd);
		rc = fp_sock_ops.recv(c->fd, buf, FP_FRAME_MAX, srv->max_message, &rx, false);

		if (rc == -EAGAIN)
			break; /* a slice without a frame */
		nfds = rc == 0 ? rx.nfds + (rx.pfd >= 0 ? 1u : 0u) : 0;
		if (rc == 0 && rx.h.type == FP_T_REQUEST &&
		    park_admit(srv, c, &rx, nfds, &cookie)) {
			atomic_store(&c->cb_since, fp_now());
			serve(srv, c, &rx, cookie, ob);
			atomic_store(&c->cb_since, 0);
			fp_rx_release(&rx);
			pthread_mutex_lock(&srv->lock);
			request_done(srv, c, nfds, true);
			go_on = park_goes_on(srv, c);
			pthread_mutex_unlock(&srv->lock);
			if (!go_on)
				break;
			continue;
		}
		pthread_mutex_lock(&srv->io_lock);
		(void)on_frame(srv, c, rc, &rx, true, &mine);
		pthread_mutex_unlock(&srv->io_lock);
		if (mine) {
			atomic_store(&c->cb_since, fp_now());
			run_job(srv, mine, ob);
			atomic_store(&c->cb_since, 0);
		}
		/* Only while it runs what it reads. */
		pthread_mutex_lock(&srv->lock);
		go_on = mine && park_goes_on(srv, c);
		pthread_mutex_unlock(&srv->lock);
		if (!go_on)
			break;
	}
	park_end(srv, c);
}

/*
 * A pool thread (cfg.workers + 1 of them): runs queued requests while
 * fewer than cfg.workers callbacks run, else waits for I/O (io_round) and
 * runs the request it read itself.  Requests queued at quit are still run.
 */
static void pool(struct fltport_server *srv)
{
	struct fp_outbuf ob = { 0 };
	struct epoll_event evs[64];
	/* park()'s receive buffer: on the stack (its pages become resident as
	 * frames use them), not a heap block per pool thread. */
	uint8_t pbuf[FP_FRAME_MAX] __attribute__((aligned(8)));

	for (;;) {
		struct fltport_client *pc = NULL;
		struct fp_job *j;
		bool quit, more;

		quit = more = false;
		j = NULL;
		if (atomic_load_explicit(&srv->pool_look, memory_order_acquire)) {
			pthread_mutex_lock(&srv->lock);
			quit = srv->quit;
			j = srv->busy < srv->cfg.workers || quit ? fp_queue_pop(&srv->workq) : NULL;
			if (j) {
				srv->busy++;
				pool_note(srv);
			}
			more = !quit && srv->workq.head && srv->busy < srv->cfg.workers;
			pthread_mutex_unlock(&srv->lock);
		}
		/* Wake-ups for queued requests merge in the eventfd: pass one
		 * on while requests wait and threads may run them. */
		if (more)
			fp_server_wake(srv);
		if (!j && quit) {
			/* The wake-up that quit sent may have been drained by a
			 * thread that had not seen quit yet: pass it on to the
			 * threads still in epoll_wait(). */
			fp_server_wake(srv);
			break;
		}
		if (!j) {
			j = io_round(srv, evs, 64);
			/* This thread runs its own request: queued ones (its
			 * batch's, or ones whose wake-up it drained) go to
			 * another. */
			more = false;
			if (j && atomic_load_explicit(&srv->pool_look, memory_order_acquire)) {
				pthread_mutex_lock(&srv->lock);
				more = srv->workq.head && srv->busy < srv->cfg.workers;
				pthread_mutex_unlock(&srv->lock);
			}
			if (more)
				fp_server_wake(srv);
		}
		if (!j)
			continue;
		if (j->kind == FP_JOB_REQUEST && !j->c->ring) {
			pc = j->c;
			fp_client_ref(pc);
		}
		run_job(srv, j, &ob);
		if (pc) {
			park(srv, pc, pbuf, &ob);
			fp_client_unref(pc);
		}
	}
	free(ob.p);
}

static void *io_main(void *arg)
{
	pool(arg);
	return NULL;
}

static void *worker_main(void *arg)
{
	pool(arg);
	return NULL;
}

/* ---- create / close / destroy ---- */

static int check_config(const struct fltport_server_config *cfg)
{
	if (!cfg || !cfg->on_connect || !cfg->on_disconnect || cfg->max_connections <= 0)
		return -EINVAL;
	if (cfg->slots > FLTPORT_MAX_SLOTS)
		return -EINVAL;
	if (cfg->max_message &&
	    (cfg->max_message < FLTPORT_MIN_MAX_MESSAGE || cfg->max_message > FP_PAYLOAD_HARD_MAX))
		return -EINVAL;
	if (cfg->access.mode != FLTPORT_ACCESS_ROOT && cfg->access.mode != FLTPORT_ACCESS_LIST &&
	    cfg->access.mode != FLTPORT_ACCESS_EVERYONE)
		return -EINVAL;
	if ((cfg->access.nuids && !cfg->access.uids) || (cfg->access.ngids && !cfg->access.gids))
		return -EINVAL;
	return 0;
}

static int copy_config(struct fltport_server *srv, const struct fltport_server_config *cfg)
{
	srv->cfg = *cfg;
	if (!srv->cfg.workers)
		srv->cfg.workers = FLTPORT_DEFAULT_WORKERS;
	if (!srv->cfg.slots)
		srv->cfg.slots = FLTPORT_DEFAULT_SLOTS;
	srv->max_message =
		(uint32_t)(cfg->max_message ? cfg->max_message : FLTPORT_DEFAULT_MAX_MESSAGE);
	srv->cfg.max_message = srv->max_message;
	if (cfg->access.nuids) {
		srv->uids = malloc(cfg->access.nuids * sizeof(uid_t));
		if (!srv->uids)
			return -ENOMEM;
		memcpy(srv->uids, cfg->access.uids, cfg->access.nuids * sizeof(uid_t));
	}
	if (cfg->access.ngids) {
		srv->gids = malloc(cfg->access.ngids * sizeof(gid_t));
		if (!srv->gids)
			return -ENOMEM;
		memcpy(srv->gids, cfg->access.gids, cfg->access.ngids * sizeof(gid_t));
	}
	srv->cfg.access.uids = srv->uids;
	srv->cfg.access.gids = srv->gids;
	return 0;
}

/* The directory: created 0755 if missing (§8.21).  An existing one must
 * belong to root or to us: clients trust a custom directory's owner as a
 * server (§8.26), so a port made in another user's directory would be
 * impersonable by that user. */
static int ensure_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0755) == 0)
		return chmod(dir, 0755) == 0 ? 0 : -errno;
	if (errno != EEXIST)
		return -errno;
	if (stat(dir, &st) != 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		fp_debug("port directory %s belongs to uid %u (neither root nor us): refusing it",
			 dir, (unsigned)st.st_uid);
		return -EACCES;
	}
	return 0;
}

/* Bind the name, replacing a stale socket file left by a dead server.  The
 * directory lock makes check-and-replace atomic between creators. */
static int bind_name(struct fltport_server *srv)
{
	int dfd, rc;
	struct stat st;

	dfd = open(fltport_dir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	/* Bounded: anyone who may read the directory may hold its lock (a
	 * lock not had in time only loses the atomicity of replacing a stale
	 * socket against another creator; bind() still refuses a live name). */
	if (!fp_flock_bounded(dfd, FP_FLOCK_MS))
		fp_debug("port directory %s stays locked by someone else: going on without it",
			 fltport_dir());
	rc = bind(srv->lfd, (struct sockaddr *)&srv->addr, srv->addrlen) == 0 ? 0 : -errno;
	if (rc == -EADDRINUSE) {
		rc = fp_socket_live(&srv->addr, srv->addrlen);
		if (rc == 1) {
			rc = -EADDRINUSE;
		} else if (rc == 0) {
			fp_debug("replacing stale socket %s", srv->addr.sun_path);
			if (unlink(srv->addr.sun_path) != 0 && errno != ENOENT)
				rc = -errno;
			else if (bind(srv->lfd, (struct sockaddr *)&srv->addr, srv->addrlen) != 0)
				rc = -errno;
		}
	}
	if (rc == 0 && (chmod(srv->addr.sun_path, 0666) != 0 || stat(srv->addr.sun_path, &st) != 0))
		rc = -errno;
	if (rc == 0) {
		srv->dev = st.st_dev;
		srv->ino = st.st_ino;
		if (listen(srv->lfd, 128) != 0) {
			rc = -errno;
			unlink(srv->addr.sun_path);
		}
	}
	close(dfd);
	return rc;
}

static void unlink_name(struct fltport_server *srv)
{
	struct stat st;

	/* Only our own socket: a newer server may own the name by now. */
	if (stat(srv->addr.sun_path, &st) == 0 && st.st_dev == srv->dev && st.st_ino == srv->ino)
		unlink(srv->addr.sun_path);
}

static int start_threads(struct fltport_server *srv)
{
	int rc;

	srv->workers = calloc(srv->cfg.workers, sizeof(pthread_t));
	if (!srv->workers)
		return -ENOMEM;
	rc = pthread_create(&srv->io_thread, NULL, io_main, srv);
	if (rc)
		return -rc;
	rc = pthread_create(&srv->ctl_thread, NULL, ctl_main, srv);
	if (rc)
		return -rc;
	for (; srv->nworkers < srv->cfg.workers; srv->nworkers++) {
		rc = pthread_create(&srv->workers[srv->nworkers], NULL, worker_main, srv);
		if (rc)
			return -rc;
	}
	return 0;
}

static void stop_threads(struct fltport_server *srv, bool io, bool ctl)
{
	pthread_mutex_lock(&srv->lock);
	srv->quit = true;
	pool_note(srv);
	pthread_cond_broadcast(&srv->ctl_cond);
	pthread_cond_broadcast(&srv->work_cond);
	pthread_mutex_unlock(&srv->lock);
	fp_server_wake(srv);
	if (io)
		pthread_join(srv->io_thread, NULL);
	if (ctl)
		pthread_join(srv->ctl_thread, NULL);
	for (unsigned i = 0; i < srv->nworkers; i++)
		pthread_join(srv->workers[i], NULL);
}

/* In a forked child: the server's fds become inert (core/fork.h); its
 * threads do not exist there. */
static void server_in_child(struct fp_forkreg *r)
{
	struct fltport_server *srv =
		(struct fltport_server *)((char *)r - offsetof(struct fltport_server, fork));

	if (!srv->lfd_closed)
		fp_fork_kill_fd(srv->lfd);
	fp_fork_kill_fd(srv->epfd);
	fp_fork_kill_fd(srv->wakefd);
	if (srv->park_tfd >= 0)
		fp_fork_kill_fd(srv->park_tfd);
}

static void server_free(struct fltport_server *srv)
{
	fp_fork_unregister(&srv->fork);
	if (srv->lfd >= 0 && !srv->lfd_closed)
		close(srv->lfd);
	if (srv->epfd >= 0)
		close(srv->epfd);
	if (srv->wakefd >= 0)
		close(srv->wakefd);
	if (srv->park_tfd >= 0)
		close(srv->park_tfd);
	while (srv->jfree) {
		struct fp_job *j = srv->jfree;

		srv->jfree = j->next;
		free(j);
	}
	while (srv->cfree) {
		struct fltport_client *c = srv->cfree;

		srv->cfree = c->next;
		free(c);
	}
	pthread_mutex_destroy(&srv->io_lock);
	pthread_cond_destroy(&srv->ctl_cond);
	pthread_cond_destroy(&srv->work_cond);
	pthread_cond_destroy(&srv->state_cond);
	pthread_mutex_destroy(&srv->lock);
	free(srv->workers);
	free(srv->rxbuf);
	free(srv->uids);
	free(srv->gids);
	free(srv);
}

static int server_init(struct fltport_server *srv, const char *name,
		       const struct fltport_server_config *cfg)
{
	int rc;

	srv->listen_kind = FP_EV_LISTEN;
	srv->wake_kind = FP_EV_WAKE;
	srv->park_timer_kind = FP_EV_PARK_TIMER;
	srv->lfd = srv->epfd = srv->wakefd = srv->park_tfd = -1;
	fp_fork_register(&srv->fork, server_in_child);
	srv->tp = &fp_sock_ops;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_mutex_init(&srv->io_lock, NULL);
	pthread_cond_init(&srv->ctl_cond, NULL);
	pthread_cond_init(&srv->work_cond, NULL);
	pthread_cond_init(&srv->state_cond, NULL);
	rc = copy_config(srv, cfg);
	if (rc < 0)
		return rc;
	rc = fp_port_addr(name, &srv->addr, &srv->addrlen);
	if (rc < 0)
		return rc;
	srv->rxbuf = malloc(FP_FRAME_MAX);
	if (!srv->rxbuf)
		return -ENOMEM;
	srv->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	srv->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (srv->lfd < 0 || srv->epfd < 0 || srv->wakefd < 0)
		return -errno;
	rc = ensure_dir(fltport_dir());
	if (rc == 0)
		rc = bind_name(srv);
	if (rc < 0 && rc != -EADDRINUSE) {
		fp_debug("cannot create port %s: %s", srv->addr.sun_path, strerror(-rc));
		return rc;
	}
	if (rc < 0)
		return rc;
	if ((rc = epoll_add(srv, srv->lfd, &srv->listen_kind)) < 0 ||
	    (rc = epoll_add(srv, srv->wakefd, &srv->wake_kind)) < 0) {
		unlink_name(srv);
		return rc;
	}
	/* Parking's watchdog: without it (no fd to spare), nothing parks. */
	srv->park_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (srv->park_tfd >= 0 && epoll_add(srv, srv->park_tfd, &srv->park_timer_kind) < 0) {
		close(srv->park_tfd);
		srv->park_tfd = -1;
	}
	return 0;
}

FLTPORT_API int fltport_server_create(const char *name, const struct fltport_server_config *cfg,
				      fltport_server **out)
{
	struct fltport_server *srv;
	int rc = check_config(cfg);

	if (rc < 0)
		return rc;
	if (!out)
		return -EINVAL;
	rc = fltport_name_valid(name);
	if (rc < 0)
		return rc;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	rc = server_init(srv, name, cfg);
	if (rc == 0) {
		rc = start_threads(srv);
		if (rc < 0) {
			unlink_name(srv);
			stop_threads(srv, srv->io_thread != 0, srv->ctl_thread != 0);
		}
	}
	if (rc == 0)
		fp_port_manage_register(srv, name);
	if (rc < 0) {
		server_free(srv);
		return rc;
	}
	*out = srv;
	return 0;
}

FLTPORT_API void fltport_server_close(fltport_server *srv)
{
	bool first;

	if (!srv || fp_forked(&srv->fork))
		return; /* a forked child's copy: the name is the parent's */
	pthread_mutex_lock(&srv->lock);
	first = !srv->closed;
	srv->closed = true;
	pthread_mutex_unlock(&srv->lock);
	if (!first)
		return;
	fp_port_manage_unregister(srv);
	unlink_name(srv);
	fp_server_wake(srv); /* the I/O thread closes the listening socket */
}

FLTPORT_API void fltport_server_destroy(fltport_server *srv)
{
	struct fltport_client *c;

	if (!srv)
		return;
	if (fp_forked(&srv->fork)) {
		/* A forked child's copy: no thread of it runs here and its fds
		 * are inert.  Its memory stays (still reachable); nothing is
		 * waited for. */
		return;
	}
	fltport_server_close(srv);
	fp_port_manage_unregister(srv); /* a close on another thread may still be at it */
	pthread_mutex_lock(&srv->lock);
	srv->stopping = true;
	pool_note(srv);
	pthread_mutex_unlock(&srv->lock);
	/* Kill every connection, one at a time, each under a reference taken
	 * while it is listed (and not one already dying).  The I/O thread
	 * retires them, the control thread runs each disconnect callback
	 * once.  No new connection is listed once `stopping` is set. */
	for (;;) {
		pthread_mutex_lock(&srv->lock);
		for (c = srv->clients; c; c = c->next)
			if (!c->killed && fp_client_tryref(c))
				break;
		pthread_mutex_unlock(&srv->lock);
		if (!c)
			break;
		fp_client_kill(c); /* sets c->killed */
		fp_client_unref(c);
	}
	fp_server_wake(srv);
	pthread_mutex_lock(&srv->lock);
	while (srv->nconn > 0 || srv->nhandshake > 0)
		pthread_cond_wait(&srv->state_cond, &srv->lock);
	pthread_mutex_unlock(&srv->lock);
	stop_threads(srv, true, true);
	/* Kill-queue and again-queue entries no pool thread got to, and the
	 * connection the I/O watched: their references. */
	while (srv->killq) {
		c = srv->killq;
		srv->killq = c->kill_next;
		fp_client_unref(c);
	}
	while (srv->addq) { /* retired (killed) before the I/O thread took them in */
		c = srv->addq;
		srv->addq = c->add_next;
		fp_client_unref(c);
	}
	while (srv->againq) {
		c = srv->againq;
		srv->againq = c->again_next;
		fp_client_unref(c);
	}
	if (srv->spin_c)
		fp_client_unref(srv->spin_c);
	srv->spin_c = NULL;
	/* What is left is held only by users who never closed their client
	 * ports, and by senders on their way out. */
	pthread_mutex_lock(&srv->lock);
	while (srv->clients) {
		c = srv->clients;
		if (atomic_load(&c->refs) > (c->user_ref ? 1 : 0)) {
			/* A sender woken by the kill is still leaving fltport_send(). */
			pthread_mutex_unlock(&srv->lock);
			usleep(1000);
			pthread_mutex_lock(&srv->lock);
			continue;
		}
		srv->clients = c->next;
		if (c->next)
			c->next->prev = NULL;
		c->prev = c->next = NULL;
		pthread_mutex_unlock(&srv->lock);
		fp_client_free(c);
		pthread_mutex_lock(&srv->lock);
	}
	pthread_mutex_unlock(&srv->lock);
	server_free(srv);
}
