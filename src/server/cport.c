/*
 * Client ports: the filter side of one connection.  fltport_send() and the
 * delivery decision (SPEC §8.12) live here; see core/shared.h for the slot
 * word protocol.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/debug.h"
#include "server/server_int.h"

/* In a forked child: the connection and state page fds become inert. */
static void client_in_child(struct fp_forkreg *r)
{
	struct fltport_client *c =
		(struct fltport_client *)((char *)r - offsetof(struct fltport_client, fork));

	fp_fork_kill_fd(c->fd);
	fp_fork_kill_fd(c->page_fd);
	fp_fork_kill_fd(c->area.fd);
	if (c->ring) {
		int fds[2];

		fp_ring_fds(c->ring, fds);
		fp_fork_kill_fd(fds[0]);
		fp_fork_kill_fd(fds[1]);
	}
}

/* Client memory is recycled, never freed while its server lives: an event
 * that epoll_wait() returned just before the connection left epoll may
 * still be looked at by another pool thread (io_round() in server.c), and
 * must find a client structure there, dead or reused.  Called under the
 * server's io_lock, as that look is. */
struct fltport_client *fp_client_new(struct fltport_server *srv, int fd)
{
	struct fltport_client *c;

	pthread_mutex_lock(&srv->lock);
	c = srv->cfree;
	if (c)
		srv->cfree = c->next;
	pthread_mutex_unlock(&srv->lock);
	if (!c && !(c = malloc(sizeof(*c))))
		return NULL;
	memset(c, 0, sizeof(*c));
	fp_fork_register(&c->fork, client_in_child);
	c->ev_kind = FP_EV_CLIENT;
	c->srv = srv;
	c->fd = fd;
	c->page_fd = -1;
	c->peer.pidfd = -1;
	atomic_init(&c->refs, 1);
	pthread_mutex_init(&c->lock, NULL);
	fp_cond_init(&c->slot_cond);
	fp_area_init(&c->area, srv->max_message, false); /* wanted: set at connect */
	return c;
}

void fp_client_ref(struct fltport_client *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

/* A reference on a connection found through the server's list, unless it
 * is already dying (its last reference gone, its free about to unlink it):
 * such a one must not be brought back. */
bool fp_client_tryref(struct fltport_client *c)
{
	int r = atomic_load_explicit(&c->refs, memory_order_relaxed);

	while (r > 0)
		if (atomic_compare_exchange_weak_explicit(&c->refs, &r, r + 1, memory_order_acquire,
							  memory_order_relaxed))
			return true;
	return false;
}

/* Unlink from the server and free.  The caller made sure nobody else can
 * reach it. */
void fp_client_free(struct fltport_client *c)
{
	struct fltport_server *srv = c->srv;

	fp_fork_unregister(&c->fork);
	pthread_mutex_lock(&srv->lock);
	if (c->prev)
		c->prev->next = c->next;
	else if (srv->clients == c)
		srv->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	fp_port_count_retire(srv, c);
	pthread_cond_broadcast(&srv->state_cond);
	pthread_mutex_unlock(&srv->lock);

	if (c->page)
		munmap(c->page, c->page_size);
	if (c->page_fd >= 0)
		close(c->page_fd);
	if (c->peer.pidfd >= 0)
		close(c->peer.pidfd);
	free(c->exe);
	fp_ring_free(c->ring);
	fp_area_free(&c->area);
	/* Frames the client left unread hold their fds: its socket's close
	 * releases them, and may block as a received fd's (closer.c). */
	fp_close_received(c->fd);
	free(c->pending);
	free(c->freelist);
	pthread_cond_destroy(&c->slot_cond);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_lock(&srv->lock);
	c->next = srv->cfree; /* see fp_client_new() */
	srv->cfree = c;
	pthread_mutex_unlock(&srv->lock);
}

void fp_client_unref(struct fltport_client *c)
{
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		fp_client_free(c);
}

/* The state page: a sealed memfd, mapped here and sent to the client. */
int fp_client_setup_page(struct fltport_client *c, uint32_t nslots)
{
	size_t size = fp_page_size(nslots);
	int fd = memfd_create("fltport-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	void *p;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) != 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
		goto fail;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	c->pending = calloc(nslots, sizeof(*c->pending));
	c->freelist = malloc(nslots * sizeof(*c->freelist));
	if (!c->pending || !c->freelist) {
		munmap(p, size);
		close(fd);
		return -ENOMEM;
	}
	/* Hand out low slots first: LIFO keeps the hot words in one line. */
	for (uint32_t i = 0; i < nslots; i++)
		c->freelist[i] = nslots - 1 - i;
	c->nfree = nslots;
	c->page = p;
	c->page->magic = FP_PAGE_MAGIC;
	c->page->nslots = nslots;
	c->page_size = size;
	c->page_fd = fd;
	c->nslots = nslots;
	return 0;
fail:
	close(fd);
	return -errno;
}

/*
 * Mark the connection dead: no new sends, every pending message that no
 * reader took is expired (so it can never be delivered), every waiting
 * sender is woken.  Idempotent.
 */
void fp_client_mark_dead(struct fltport_client *c)
{
	pthread_mutex_lock(&c->lock);
	if (c->dead) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	c->dead = true;
	for (uint32_t i = 0; c->pending && i < c->nslots; i++) {
		struct fp_pending *p = c->pending[i];
		uint64_t seq;

		if (!p)
			continue;
		seq = fp_id_seq(p->id);
		/* Move the word off whatever a sender may sleep on (PENDING, or
		 * TAKEN while it waits for a reply): its futex wait compares
		 * the word, and a wake that came between its check of c->dead
		 * and its sleep would otherwise find the same word and be
		 * lost, leaving an infinite send asleep for good (a review
		 * saw FltSendMessage hang so, 1 run in 12). */
		if (!fp_slot_cas(c->page, i, fp_word(seq, FP_S_PENDING),
				 fp_word(seq, FP_S_EXPIRED)))
			(void)fp_slot_cas(c->page, i, fp_word(seq, FP_S_TAKEN),
					  fp_word(seq, FP_S_ABANDONED));
		fp_futex_wake(&c->page->slot[i]);
		pthread_cond_signal(&p->cond);
	}
	pthread_cond_broadcast(&c->slot_cond);
	pthread_mutex_unlock(&c->lock);
}

/* Wake every blocked send and receive of the connection, on both sides. */
void fp_client_shutdown(struct fltport_client *c)
{
	c->srv->tp->shutdown(c->fd);
	if (c->ring)
		fp_ring_shutdown(c->ring);
}

/*
 * End the connection from this side: mark it dead, wake the peer (shutdown)
 * and have the I/O thread retire it (disconnect callback).  Any thread.
 */
void fp_client_kill(struct fltport_client *c)
{
	struct fltport_server *srv = c->srv;
	bool wake = false;

	fp_client_mark_dead(c);
	fp_client_shutdown(c);
	pthread_mutex_lock(&srv->lock);
	c->killed = true;
	if (!c->kill_queued && (c->state == FP_C_ACTIVE || c->state == FP_C_HANDSHAKE)) {
		c->kill_queued = true;
		fp_client_ref(c);
		c->kill_next = srv->killq;
		srv->killq = c;
		wake = true;
	}
	pthread_mutex_unlock(&srv->lock);
	if (wake)
		fp_server_wake(srv);
}

/* A REPLY frame from the I/O thread: hand it to its waiting sender, if the
 * sender still waits for exactly that message. */
void fp_client_deliver_reply(struct fltport_client *c, const struct fp_rx *rx)
{
	uint32_t slot = fp_id_slot(rx->h.id);
	struct fp_pending *p;
	bool wake = false;

	if (slot >= c->nslots)
		return;
	pthread_mutex_lock(&c->lock);
	p = c->pending[slot];
	if (p && p->id == rx->h.id && p->wants_reply && !p->replied) {
		size_t n = rx->h.len < p->reply_cap ? rx->h.len : p->reply_cap;

		if (fp_rx_copy(rx, p->reply, n) == 0) {
			p->reply_len = n;
			/* The peer's OVERFLOW flag counts only with a reply cut to
			 * exactly the capacity (port.h: on -EOVERFLOW *reply_len
			 * is the capacity). */
			p->overflow = rx->h.len > p->reply_cap ||
				      ((rx->h.flags & FP_F_OVERFLOW) && n == p->reply_cap);
			p->reply_status = rx->h.status;
			p->replied = true;
			pthread_cond_signal(&p->cond);
			wake = true;
		}
	}
	pthread_mutex_unlock(&c->lock);
	/* The sender may still sleep on the slot word (REPLIED was set
	 * without a wake for a frame reply).  Woken after the unlock, or it
	 * would block on the lock at once; the page lives as long as c. */
	if (wake)
		fp_futex_wake(&c->page->slot[slot]);
}

/* ---- fltport_send ---- */

static int take_slot(struct fltport_client *c, bool poll, int64_t deadline, uint32_t *slot)
{
	while (c->nfree == 0) {
		if (c->dead)
			return -ENOTCONN;
		if (poll || fp_cond_wait(&c->slot_cond, &c->lock, deadline) == ETIMEDOUT)
			return -ETIMEDOUT;
	}
	if (c->dead)
		return -ENOTCONN;
	*slot = c->freelist[--c->nfree];
	return 0;
}

static void release_slot(struct fltport_client *c, uint32_t slot)
{
	pthread_mutex_lock(&c->lock);
	c->pending[slot] = NULL;
	c->freelist[c->nfree++] = slot;
	pthread_cond_signal(&c->slot_cond);
	pthread_mutex_unlock(&c->lock);
}

/* A word the protocol cannot produce: the peer scribbled on the page. */
static int peer_garbage(struct fltport_client *c, uint32_t slot, uint32_t w)
{
	fp_debug("client pid %d wrote 0x%08x into slot %u: dropping it", (int)c->peer.pid, w, slot);
	fp_client_kill(c);
	return -ENOTCONN;
}

/* No reply wanted (or a poll send): wait until a reader takes the message,
 * or expire it at the deadline — exactly one of the two wins the slot. */
struct word_wait {
	_Atomic uint32_t *w;
	uint32_t seen;
};

static bool word_moved(const void *arg)
{
	const struct word_wait *ww = arg;

	return atomic_load_explicit(ww->w, memory_order_acquire) != ww->seen;
}

/* Sleep on a slot word until it is no longer `seen` (or the deadline),
 * spinning a little first when the peer may be running on another CPU. */
static void word_wait(struct fltport_client *c, _Atomic uint32_t *wp, uint32_t seen,
		      int64_t deadline)
{
	struct word_wait ww = { wp, seen };

	if (!fp_spin_until(&c->spin, word_moved, &ww))
		fp_futex_wait(wp, seen, deadline);
}

static int wait_taken(struct fltport_client *c, uint32_t slot, uint64_t seq, int64_t deadline)
{
	_Atomic uint32_t *wp = &c->page->slot[slot];
	const uint32_t pending = fp_word(seq, FP_S_PENDING);
	uint32_t w;

	for (;;) {
		w = atomic_load_explicit(wp, memory_order_acquire);
		if (w != pending)
			break;
		if (fp_now() >= deadline) {
			if (fp_slot_cas(c->page, slot, pending, fp_word(seq, FP_S_EXPIRED)))
				return -ETIMEDOUT;
			continue;
		}
		word_wait(c, wp, pending, deadline);
	}
	if (w == fp_word(seq, FP_S_TAKEN) || w == fp_word(seq, FP_S_ABANDONED))
		return 0;
	if (w == fp_word(seq, FP_S_EXPIRED))
		return -ENOTCONN; /* expired by mark_dead */
	return peer_garbage(c, slot, w);
}

static int finish_reply(struct fp_pending *p, size_t *reply_len, uint32_t *reply_status)
{
	*reply_len = p->reply_len;
	if (reply_status)
		*reply_status = p->reply_status;
	return p->overflow ? -EOVERFLOW : 0;
}

static bool wait_cond(struct fltport_client *c, struct fp_pending *p, int64_t deadline)
{
	while (!p->replied && !c->dead)
		if (fp_cond_wait(&p->cond, &c->lock, deadline) == ETIMEDOUT)
			return false;
	return true;
}

/* A reply in the page: copy it (once, every length clamped: the page is
 * written by the peer).  Returns false if the area says a frame carries the
 * reply instead.  Called after REPLIED for this sequence was seen. */
static bool inline_reply(struct fltport_client *c, struct fp_pending *p, uint32_t slot,
			 size_t *reply_len, uint32_t *reply_status, int *rc)
{
	const struct fp_reply_area *a = fp_area(c->page, c->nslots, slot);
	uint32_t flags = a->flags, len = a->len;
	size_t n;

	if (!(flags & FP_R_INLINE))
		return false;
	if (len > FP_SMALL_REPLY)
		len = FP_SMALL_REPLY;
	n = len < p->reply_cap ? len : p->reply_cap;
	if (n)
		memcpy(p->reply, fp_area_data(c->page, c->nslots, slot), n);
	*reply_len = n;
	if (reply_status)
		*reply_status = a->status;
	*rc = len > p->reply_cap || ((flags & FP_R_OVERFLOW) && n == p->reply_cap) ? -EOVERFLOW : 0;
	return true;
}

/* Until the deadline, sleep on the slot word: a small reply arrives with
 * REPLIED in the page (the replier wakes us), so the common case involves
 * no thread of this process but the sender.  Returns true with *rc set if
 * the reply was in the page; false to go on with the frame / timeout path. */
static bool wait_word(struct fltport_client *c, struct fp_pending *p, uint32_t slot, uint64_t seq,
		      int64_t deadline, size_t *reply_len, uint32_t *reply_status, int *rc)
{
	_Atomic uint32_t *wp = &c->page->slot[slot];
	const uint32_t pending = fp_word(seq, FP_S_PENDING), taken = fp_word(seq, FP_S_TAKEN);

	for (;;) {
		uint32_t w = atomic_load_explicit(wp, memory_order_acquire);

		if (w == fp_word(seq, FP_S_REPLIED))
			return inline_reply(c, p, slot, reply_len, reply_status, rc);
		if ((w != pending && w != taken) || atomic_load(&c->dead) || fp_now() >= deadline)
			return false;
		word_wait(c, wp, w, deadline);
	}
}

/* Reply wanted: wait for it within the deadline.  At the deadline the
 * message is expired (never delivered) or abandoned (taken; a late reply
 * gets "no waiter").  A reply committed before the deadline (REPLIED) is
 * waited for a grace period longer, since its frame is on its way; the
 * replier takes the commit back (REPLIED → TAKEN) if the frame could not be
 * sent, and the grace then ends like the deadline.  Lock not held. */
static int wait_reply(struct fltport_client *c, struct fp_pending *p, uint32_t slot, uint64_t seq,
		      int64_t deadline, size_t *reply_len, uint32_t *reply_status)
{
	const int64_t grace =
		deadline > FP_NEVER - FP_REPLY_GRACE_NS ? FP_NEVER : deadline + FP_REPLY_GRACE_NS;
	const uint32_t replied = fp_word(seq, FP_S_REPLIED),
		       abandoned = fp_word(seq, FP_S_ABANDONED);
	int rc;
	uint32_t w;

	if (wait_word(c, p, slot, seq, deadline, reply_len, reply_status, &rc))
		return rc;
	pthread_mutex_lock(&c->lock);
	wait_cond(c, p, deadline);
	for (;;) {
		if (p->replied) {
			rc = finish_reply(p, reply_len, reply_status);
			break;
		}
		if (c->dead) {
			rc = -ENOTCONN;
			break;
		}
		if (fp_slot_cas(c->page, slot, fp_word(seq, FP_S_PENDING),
				fp_word(seq, FP_S_EXPIRED)) ||
		    fp_slot_cas(c->page, slot, fp_word(seq, FP_S_TAKEN), abandoned)) {
			rc = -ETIMEDOUT;
			break;
		}
		w = atomic_load_explicit(&c->page->slot[slot], memory_order_acquire);
		if (w != replied) {
			if (w == fp_word(seq, FP_S_PENDING) || w == fp_word(seq, FP_S_TAKEN))
				continue; /* moved under our CAS: try again */
			pthread_mutex_unlock(&c->lock);
			return peer_garbage(c, slot, w);
		}
		if (inline_reply(c, p, slot, reply_len, reply_status, &rc))
			break; /* committed in the page just before the deadline */
		if (!wait_cond(c, p, grace) && fp_slot_cas(c->page, slot, replied, abandoned)) {
			rc = -ETIMEDOUT; /* the committed reply never came */
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static int send_checks(struct fltport_client *c, const void *msg, size_t len, const int *fds,
		       unsigned nfds, void *reply, size_t *reply_len)
{
	if (!c || (!msg && len) || nfds > FLTPORT_MAX_FDS || (nfds && !fds) ||
	    (reply && !reply_len))
		return -EINVAL;
	for (unsigned i = 0; i < nfds; i++)
		if (fds[i] < 0)
			return -EINVAL;
	if (len > c->srv->max_message)
		return -EMSGSIZE;
	return 0;
}

FLTPORT_API int fltport_send(fltport_client *c, const void *msg, size_t len, const int *fds,
			     unsigned nfds, void *reply, size_t *reply_len, uint32_t *reply_status,
			     int64_t timeout_ns)
{
	const bool poll = timeout_ns == 0, wants = reply != NULL;
	const int64_t deadline = poll ? fp_now() + FP_POLL_GRACE_NS : fp_deadline(timeout_ns);
	struct fp_pending p = { .wants_reply = wants && !poll, .reply = reply };
	struct fp_hdr h = { .magic = FP_MAGIC,
			    .version = FLTPORT_WIRE_VERSION,
			    .type = FP_T_MESSAGE };
	struct fp_tx tx = {
		.h = &h, .payload = msg, .fds = fds, .nfds = nfds, .page_fd = -1, .area = &c->area
	};
	uint32_t slot;
	uint64_t seq;
	int rc = send_checks(c, msg, len, fds, nfds, reply, reply_len);

	if (rc < 0)
		return rc;
	if (fp_forked(&c->fork))
		return -ENOTCONN;
	p.reply_cap = wants ? *reply_len : 0;
	fp_client_ref(c);
	/* A pool thread parked on the connection (server.c, park()) may be
	 * running a callback — maybe this very send's: the reply may come as a
	 * frame, so the connection must be read by the epoll set again. */
	if (wants && atomic_load_explicit(&c->unwatched, memory_order_relaxed))
		fp_server_rewatch(c->srv, c);
	pthread_mutex_lock(&c->lock);
	/* A poll send does not wait for the connect result: no reader can be
	 * waiting before the client has it (§8.17). */
	while (!c->ready && !c->dead && rc == 0)
		if (poll || fp_cond_wait(&c->slot_cond, &c->lock, deadline) == ETIMEDOUT)
			rc = -ETIMEDOUT;
	if (rc < 0)
		;
	else if (c->dead || !c->page)
		rc = -ENOTCONN;
	else if (poll && atomic_load_explicit(&c->page->readers, memory_order_acquire) == 0)
		rc = -ETIMEDOUT; /* §8.17: nobody waiting, nothing delivered */
	else
		rc = take_slot(c, poll, deadline, &slot);
	if (rc < 0) {
		pthread_mutex_unlock(&c->lock);
		fp_port_count_send(c, len, rc, false);
		fp_client_unref(c);
		return rc;
	}
	atomic_fetch_add_explicit(&c->cnt.pending, 1, memory_order_relaxed);
	seq = ++c->next_seq;
	p.id = fp_msg_id(seq, slot);
	fp_cond_init(&p.cond);
	c->pending[slot] = &p;
	atomic_store_explicit(&c->page->slot[slot], fp_word(seq, FP_S_PENDING),
			      memory_order_release);
	pthread_mutex_unlock(&c->lock);

	h.id = p.id;
	h.len = (uint32_t)len;
	h.arg = (uint32_t)(p.reply_cap < c->srv->max_message ? p.reply_cap : c->srv->max_message);
	h.flags = (wants ? FP_F_WANTS_REPLY : 0) | (wants && poll ? FP_F_NOWAIT : 0) |
		  (p.wants_reply ? 0 : FP_F_WAKE);
	rc = fp_link_send(c->ring, c->fd, &tx, deadline);
	if (rc < 0) {
		/* Never reached the peer: expire it so that the slot is ours. */
		fp_slot_cas(c->page, slot, fp_word(seq, FP_S_PENDING), fp_word(seq, FP_S_EXPIRED));
		if (rc != -ETIMEDOUT && !fp_resource_error(rc))
			rc = -ENOTCONN;
	} else if (!p.wants_reply) {
		rc = wait_taken(c, slot, seq, deadline);
		if (rc == 0 && wants)
			rc = -ETIMEDOUT; /* poll with a reply buffer: delivered, never waited for */
	} else {
		rc = wait_reply(c, &p, slot, seq, deadline, reply_len, reply_status);
	}
	release_slot(c, slot);
	pthread_cond_destroy(&p.cond);
	atomic_fetch_sub_explicit(&c->cnt.pending, 1, memory_order_relaxed);
	fp_port_count_send(c, len, rc, p.wants_reply);
	fp_client_unref(c);
	return rc;
}

FLTPORT_API void fltport_client_close(fltport_client *c)
{
	struct fltport_server *srv;
	bool drop = false;

	if (!c || fp_forked(&c->fork))
		return;
	srv = c->srv;
	fp_client_kill(c);
	pthread_mutex_lock(&srv->lock);
	if (c->user_ref) {
		c->user_ref = false;
		drop = true;
	}
	pthread_mutex_unlock(&srv->lock);
	if (drop)
		fp_client_unref(c);
}

FLTPORT_API void fltport_client_disconnect(fltport_client *c)
{
	if (c && !fp_forked(&c->fork))
		fp_client_kill(c);
}

FLTPORT_API void fltport_client_peer(const fltport_client *c, struct fltport_peer *peer)
{
	*peer = c->peer;
}
