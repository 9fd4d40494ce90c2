/*
 * The user side of a connection.  Responses go to the thread whose request
 * they answer; messages go to the first waiting reader (blocking
 * fltport_get() callers and posted async gets, in arrival order) or wait in
 * a queue.  A message is handed to a reader only after winning the slot
 * word PENDING → TAKEN (core/shared.h), so a message whose sender gave up is
 * never delivered.
 *
 * Who reads: one thread at a time holds the reader role (client_int.h).  A
 * thread blocked in fltport_get() or fltport_request() takes it when it is
 * free and reads the socket itself, so the common case — one thread waiting
 * for its own message or response — costs no hand-over between threads.
 * Frames for other waiters are queued or handed to them as before.  When
 * the holder's own wait ends it passes the role to another blocked caller,
 * or to the connection's receive thread if something needs frames read
 * with no caller inside (posted async gets, a user of fltport_conn_fd()).
 * Async completions read by a caller run on the receive thread, never on
 * the caller's (a callback may close the connection) — except for a thread
 * in fltport_run_completions(), which is there to run them: it takes the
 * role like a blocked caller, and the callbacks of what it reads run on
 * it ("completions on the caller's thread", below).  On the socket
 * transport such threads wait parked and take the role only to read one
 * frame ("parked threads", below).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "client/client_int.h"
#include "core/clock.h"
#include "core/debug.h"
#include "core/names.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* ---- readers and messages (all under conn->lock) ---- */

static void publish(struct fltport_conn *c)
{
	bool want = c->qhead != NULL || c->ended;
	uint64_t v = 1;

	atomic_store_explicit(&c->page->readers, c->nreaders, memory_order_release);
	if (want && !c->ev_set) {
		while (write(c->evfd, &v, sizeof(v)) < 0 && errno == EINTR)
			;
		c->ev_set = true;
	} else if (!want && c->ev_set) {
		while (read(c->evfd, &v, sizeof(v)) < 0 && errno == EINTR)
			;
		c->ev_set = false;
	}
}

/* Put a node on the free list (or free it), keeping its big buffer if the
 * list does not already hold enough of those.  Lock held. */
static void qnode_put(struct fltport_conn *c, struct fp_qmsg *m)
{
	if (c->nqfree >= FP_QMSG_FREE_MAX) {
		free(m->big);
		free(m);
		return;
	}
	if (m->big && c->nqbig >= FP_QMSG_BIG_KEEP) {
		free(m->big);
		m->big = NULL;
		m->bigcap = 0;
	}
	if (m->big)
		c->nqbig++;
	m->next = c->qfree;
	c->qfree = m;
	c->nqfree++;
}

/* Release a message and keep its node for the next one.  Lock held. */
static void qmsg_free(struct fltport_conn *c, struct fp_qmsg *m)
{
	fp_rx_release(&m->rx);
	qnode_put(c, m);
}

/* Copy an inline payload above FP_QMSG_INLINE into the node's own buffer,
 * grown in 4 KiB steps up to FP_QMSG_BIG_MAX (above that rx owns a copy of
 * its own). */
static int qmsg_take_big(struct fp_qmsg *m, struct fp_rx *rx)
{
	if (rx->h.len > FP_QMSG_BIG_MAX)
		return fp_rx_own(rx);
	if (m->bigcap < rx->h.len) {
		uint32_t cap = (uint32_t)fp_align4096(rx->h.len); /* ≤ FP_QMSG_BIG_MAX */
		uint8_t *n = realloc(m->big, cap);

		if (!n)
			return -ENOMEM;
		m->big = n;
		m->bigcap = cap;
	}
	memcpy(m->big, rx->data, rx->h.len);
	rx->data = m->big;
	return 0;
}

/* A node for rx, its payload made to outlive the receive buffer: copied
 * into the node when small, else into the node's big buffer or an
 * allocation of its own.  NULL (-ENOMEM) leaves rx as it was.  Lock held. */
static struct fp_qmsg *qmsg_get(struct fltport_conn *c, struct fp_rx *rx)
{
	struct fp_qmsg *m = c->qfree;
	int rc;

	if (m) {
		c->qfree = m->next;
		c->nqfree--;
		if (m->big)
			c->nqbig--;
	} else if ((m = malloc(sizeof(*m)))) {
		m->big = NULL;
		m->bigcap = 0;
	} else {
		return NULL;
	}
	if (rx->pfd >= 0 || rx->owned || rx->area_busy || rx->h.len == 0) {
		rc = 0; /* nothing to copy: rx already owns what it has */
	} else if (rx->h.len <= FP_QMSG_INLINE) {
		memcpy(m->small, rx->data, rx->h.len);
		rx->data = m->small;
		rc = 0;
	} else {
		rc = qmsg_take_big(m, rx);
	}
	if (rc < 0) {
		qnode_put(c, m);
		return NULL;
	}
	m->rx = *rx;
	m->next = NULL;
	return m;
}

static struct fp_qmsg *queue_pop(struct fltport_conn *c)
{
	struct fp_qmsg *m = c->qhead;

	if (m) {
		c->qhead = m->next;
		if (!c->qhead)
			c->qtail = NULL;
		c->qlen--;
	}
	return m;
}

static void readers_append(struct fltport_conn *c, struct fp_reader *r)
{
	r->next = NULL;
	r->prev = c->rtail;
	if (c->rtail)
		c->rtail->next = r;
	else
		c->rhead = r;
	c->rtail = r;
	c->nreaders++;
	if (r->fn)
		c->nasync++;
}

static void readers_remove(struct fltport_conn *c, struct fp_reader *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		c->rhead = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		c->rtail = r->prev;
	r->next = r->prev = NULL;
	c->nreaders--;
	if (r->fn)
		c->nasync--;
}

/* Take the message for the reader: copy, win the slot word, fill in.  The
 * payload is copied first: one that cannot be read (a payload pipe the
 * filter side emptied) is dropped undelivered, its slot left PENDING, so
 * its sender sees it expire as if nobody had taken it — never a message
 * delivered with bytes it did not send.  A message that expired meanwhile
 * (the slot word moved) is dropped with its payload already read. */
static int take(struct fltport_conn *c, struct fp_qmsg *m, struct fp_reader *r)
{
	const struct fp_hdr *h = &m->rx.h;
	uint32_t slot = fp_id_slot(h->id);
	uint64_t seq = fp_id_seq(h->id);
	bool nowait = h->flags & FP_F_NOWAIT, wants = h->flags & FP_F_WANTS_REPLY;
	enum fp_slot_state to = nowait ? FP_S_ABANDONED : FP_S_TAKEN;

	if (fp_rx_copy(&m->rx, r->buf, h->len) < 0) {
		fp_debug("message %llu: payload unreadable: dropped", (unsigned long long)h->id);
		return -EIO;
	}
	if (!fp_slot_cas(c->page, slot, fp_word(seq, FP_S_PENDING), fp_word(seq, to)))
		return -ESTALE; /* expired before we got to it: never delivered */
	if (h->flags & FP_F_WAKE)
		fp_futex_wake(&c->page->slot[slot]);
	memset(&r->msg, 0, sizeof(r->msg));
	r->msg.id = h->id;
	r->msg.len = h->len;
	r->msg.wants_reply = wants;
	r->msg.reply_cap = wants ? h->arg : 0;
	r->msg.nfds = fp_rx_take_fds(&m->rx, r->msg.fds);
	c->taken[slot].id = h->id;
	c->taken[slot].cap = h->arg;
	c->taken[slot].replyable = wants && !nowait;
	return 0;
}

/* Offer the queued messages to reader r.  True if r is finished: it took
 * a message (err 0) or the head message does not fit (-EMSGSIZE; the
 * message stays queued). */
static bool offer(struct fltport_conn *c, struct fp_reader *r)
{
	struct fp_qmsg *m;

	while ((m = c->qhead)) {
		uint64_t id = m->rx.h.id;
		uint32_t w =
			atomic_load_explicit(&c->page->slot[fp_id_slot(id)], memory_order_acquire);

		/* An expired message is dropped before its size matters: it
		 * must not make the reader fail with -EMSGSIZE. */
		if (w != fp_word(fp_id_seq(id), FP_S_PENDING)) {
			qmsg_free(c, queue_pop(c));
			continue;
		}
		if (m->rx.h.len > r->cap) {
			memset(&r->msg, 0, sizeof(r->msg));
			r->msg.len = m->rx.h.len;
			r->err = -EMSGSIZE;
			return true;
		}
		queue_pop(c);
		if (take(c, m, r) == 0) {
			qmsg_free(c, m);
			r->err = 0;
			return true;
		}
		qmsg_free(c, m);
	}
	return false;
}

/* Mark a blocked caller's word (lock held) and wake it now (wk NULL) or
 * after the unlock (wakes_run). */
static void wake_mark(struct fp_wakes *wk, _Atomic uint32_t *w)
{
	atomic_store_explicit(w, 1, memory_order_release);
	if (wk && wk->n < FP_WAKES_MAX)
		wk->w[wk->n++] = w;
	else
		fp_futex_wake_private(w); /* under the lock: the waiter is still there */
}

/* wake_mark() for a waiter of connection c: the reader role's holder is
 * the thread reading (or was handed the role with its wake-up already
 * sent), so its word is only set. */
static void wake_mark_c(struct fltport_conn *c, struct fp_wakes *wk, _Atomic uint32_t *w)
{
	if (c->role == FP_ROLE_CALLER && c->role_owner == w)
		atomic_store_explicit(w, 1, memory_order_release);
	else
		wake_mark(wk, w);
}

static void wakes_run(struct fp_wakes *wk)
{
	for (unsigned i = 0; i < wk->n; i++)
		fp_futex_wake_private(wk->w[i]);
	wk->n = 0;
}

/* wakes_run() with the lock dropped (lock held on entry and return).
 * True if anyone was woken. */
static bool wakes_run_unlocked(struct fltport_conn *c, struct fp_wakes *wk)
{
	if (!wk->n)
		return false;
	pthread_mutex_unlock(&c->lock);
	wakes_run(wk);
	pthread_mutex_lock(&c->lock);
	return true;
}

/* Wake a thread in fltport_run_completions() now (lock held: it is still
 * there): through its eventfd when parked in epoll_wait(), else its word. */
static void pump_wake(struct fp_pump *pu)
{
	if (pu->parked) {
		uint64_t one = 1;

		atomic_store_explicit(&pu->wake, 1, memory_order_release);
		(void)!write(pu->pw->efd, &one, sizeof(one));
	} else {
		wake_mark(NULL, &pu->wake);
	}
}

/* Wait, lock dropped, until *w is set or the deadline passes (-ETIMEDOUT).
 * The caller rechecks its condition under the lock either way. */
static int wait_unlocked(struct fltport_conn *c, _Atomic uint32_t *w, int64_t deadline)
{
	int rc = 0;

	pthread_mutex_unlock(&c->lock);
	while (!atomic_load_explicit(w, memory_order_acquire) && rc != -ETIMEDOUT)
		rc = fp_futex_wait_private(w, 0, deadline);
	pthread_mutex_lock(&c->lock);
	return rc;
}

/* ---- the reader role (lock held) ---- */

/* Frames must be read with no caller inside the library. */
static bool need_rx(const struct fltport_conn *c)
{
	return (c->polled || c->nasync > 0) && !c->npump;
}

/* The waiter to pass the role to (other than self): a blocked reader, a
 * requester in await(), or a thread in fltport_run_completions(). */
static _Atomic uint32_t *next_holder(struct fltport_conn *c, _Atomic uint32_t *self)
{
	for (struct fp_reader *r = c->rhead; r; r = r->next)
		if (!r->fn && !r->done && &r->wake != self)
			return &r->wake;
	for (struct fp_reqw *w = c->reqs; w; w = w->next)
		if (!w->done && w->waiting && &w->wake != self)
			return &w->wake; /* (not one still sending: it would read late) */
	for (struct fp_pump *pu = c->pumps; pu; pu = pu->next)
		if (&pu->wake != self && !pu->parked) /* a parked one takes it itself */
			return &pu->wake;
	return NULL;
}

/* Give up the reader role (self: the leaver's wake word, or NULL for the
 * receive thread): to the receive thread when it has work, else to the
 * first blocked reader or requester, woken with 2 after the unlock. */
static void release_role(struct fltport_conn *c, _Atomic uint32_t *self, struct fp_wakes *wk)
{
	_Atomic uint32_t *next;

	c->role = FP_ROLE_NONE;
	c->role_owner = NULL;
	if (c->ended || c->closing || need_rx(c)) {
		pthread_cond_signal(&c->rx_cond);
		return;
	}
	next = next_holder(c, self);
	if (!next)
		return;
	c->role = FP_ROLE_CALLER;
	c->role_owner = next;
	atomic_store_explicit(next, 2, memory_order_release);
	if (wk->n < FP_WAKES_MAX)
		wk->w[wk->n++] = next;
	else
		fp_futex_wake_private(next);
}

/* Completions read by a caller: the receive thread runs them. */
static void defer_callbacks(struct fltport_conn *c, struct fp_reader *cbs)
{
	struct fp_reader *last = cbs;

	if (!cbs)
		return;
	while (last->cnext)
		last = last->cnext;
	last->cnext = c->cb_pending; /* newest first, as run_callbacks() expects */
	c->cb_pending = cbs;
	pthread_cond_signal(&c->rx_cond);
	if (c->pumps) /* or a thread in fltport_run_completions() runs them */
		pump_wake(c->pumps);
}

/* Reader r is done: wake it (wk: see wake_mark), or queue its callback for
 * after the unlock. */
static void complete(struct fltport_conn *c, struct fp_reader *r, struct fp_reader **cbs,
		     struct fp_wakes *wk)
{
	r->done = true;
	if (r->fn) {
		r->cnext = *cbs;
		*cbs = r;
	} else {
		wake_mark_c(c, wk, &r->wake);
	}
}

static void dispatch(struct fltport_conn *c, struct fp_reader **cbs, struct fp_wakes *wk)
{
	while (c->rhead && c->qhead) {
		struct fp_reader *r = c->rhead;

		if (!offer(c, r))
			break;
		readers_remove(c, r);
		complete(c, r, cbs, wk);
	}
	publish(c);
}

/* Run async completions, oldest first, with no lock held.  Returns how
 * many ran. */
static int run_callbacks(struct fp_reader *cbs)
{
	struct fp_reader *rev = NULL;
	int n = 0;

	while (cbs) {
		struct fp_reader *next = cbs->cnext;

		cbs->cnext = rev;
		rev = cbs;
		cbs = next;
	}
	while (rev) {
		struct fp_reader *next = rev->cnext;
		bool ok = rev->err == 0 || rev->err == -EMSGSIZE;

		rev->fn(rev->arg, rev->err, rev->buf, ok ? &rev->msg : NULL);
		free(rev);
		rev = next;
		n++;
	}
	return n;
}

/* Fail every reader with err (requests are woken by the callers). */
static int fail_readers(struct fltport_conn *c, int err, struct fp_reader **cbs)
{
	int n = 0;

	while (c->rhead) {
		struct fp_reader *r = c->rhead;

		readers_remove(c, r);
		r->err = err;
		complete(c, r, cbs, NULL);
		n++;
	}
	publish(c);
	return n;
}

/* ---- the receive thread ---- */

/* The connection is over.  defer: called by a caller holding the reader
 * role, whose failed async gets complete on the receive thread. */
static void end_conn(struct fltport_conn *c, bool defer)
{
	struct fp_reader *cbs = NULL;
	struct fp_qmsg *m;

	pthread_mutex_lock(&c->lock);
	c->ended = true;
	while ((m = queue_pop(c)))
		qmsg_free(c, m); /* their senders see the disconnect */
	for (struct fp_reqw *w = c->reqs; w; w = w->next)
		wake_mark(NULL, &w->wake);
	for (struct fp_pump *pu = c->pumps; pu; pu = pu->next)
		pump_wake(pu);
	fail_readers(c, c->closing ? -ECANCELED : -ENOTCONN, &cbs);
	pthread_cond_signal(&c->rx_cond); /* it ends too */
	if (defer) {
		defer_callbacks(c, cbs);
		cbs = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	run_callbacks(cbs);
}

/* Drop queued messages whose sender already expired them (their slot word
 * moved on).  A service that reads slowly accumulates those; they must not
 * count against the queue bound.  Lock held. */
static void purge_expired(struct fltport_conn *c)
{
	struct fp_qmsg **pp = &c->qhead, *m;

	c->qtail = NULL;
	while ((m = *pp)) {
		uint64_t id = m->rx.h.id;
		uint32_t w =
			atomic_load_explicit(&c->page->slot[fp_id_slot(id)], memory_order_acquire);

		if (w != fp_word(fp_id_seq(id), FP_S_PENDING)) {
			*pp = m->next;
			c->qlen--;
			qmsg_free(c, m);
			continue;
		}
		c->qtail = m;
		pp = &m->next;
	}
}

static int on_message(struct fltport_conn *c, struct fp_rx *rx, struct fp_reader **cbs)
{
	struct fp_wakes wk = { .n = 0 };
	struct fp_qmsg *m;

	if (fp_id_slot(rx->h.id) >= c->nslots)
		return -EBADMSG;
	pthread_mutex_lock(&c->lock);
	if (c->qlen >= c->nslots)
		purge_expired(c);
	if (c->qlen >= c->nslots || c->ended) {
		pthread_mutex_unlock(&c->lock);
		/* rx still owns the payload and fds: the caller releases them. */
		return -EBADMSG; /* more messages than the server has slots */
	}
	m = qmsg_get(c, rx);
	if (!m) {
		pthread_mutex_unlock(&c->lock);
		return -ENOMEM;
	}
	if (c->qtail)
		c->qtail->next = m;
	else
		c->qhead = m;
	c->qtail = m;
	c->qlen++;
	dispatch(c, cbs, &wk);
	pthread_mutex_unlock(&c->lock);
	wakes_run(&wk);
	return 0;
}

/* A RESPONSE to its requester (lock held); wk: see wake_mark. */
static void deliver_response(struct fltport_conn *c, const struct fp_rx *rx, struct fp_wakes *wk)
{
	for (struct fp_reqw *w = c->reqs; w; w = w->next) {
		if (w->id != rx->h.id || w->done)
			continue;
		w->err = rx->h.err;
		w->status = rx->h.status;
		w->out_len = rx->h.len < w->cap ? rx->h.len : w->cap;
		if (w->err == 0 && fp_rx_copy(rx, w->out, w->out_len) < 0)
			w->err = -EIO;
		w->done = true;
		wake_mark_c(c, wk, &w->wake);
		break;
	}
}

static void on_response(struct fltport_conn *c, const struct fp_rx *rx)
{
	struct fp_wakes wk = { .n = 0 };

	pthread_mutex_lock(&c->lock);
	deliver_response(c, rx, &wk);
	pthread_mutex_unlock(&c->lock);
	wakes_run(&wk);
}

/* Read one frame as the holder of the reader role (lock not held) and act
 * on it; completions of async gets go to *cbs.  Returns 1 (a frame), 0
 * (nothing to read yet) or < 0 once the connection has ended: the end is
 * handled here (defer: see end_conn).  resp non-NULL: a RESPONSE is not
 * delivered but left in *resp (2), for the caller to deliver under the
 * lock it takes next (deliver_response, then fp_rx_release): one lock
 * section less per request. */
static int read_frame(struct fltport_conn *c, bool dontwait, bool defer, struct fp_reader **cbs,
		      struct fp_rx *resp)
{
	struct fp_rx rx;
	int rc =
		fp_link_recv(c->ring, c->fd, c->rxbuf, FP_FRAME_MAX, c->max_message, &rx, dontwait);

	if (rc == -EAGAIN)
		return 0;
	if (rc >= 0 && (rx.h.flags & FP_F_AREA) &&
	    fp_rx_bind_area(&rx, &c->area, &c->area_size) < 0) {
		fp_rx_release(&rx);
		fp_debug("server sent an unusable payload area: disconnecting");
		rc = -EBADMSG;
	}
	if (rc < 0) {
		/* the end, or a frame that ends the connection */
	} else if (rx.h.type == FP_T_MESSAGE) {
		rc = on_message(c, &rx, cbs);
		if (rc < 0) {
			fp_rx_release(&rx);
			fp_debug("server sent a bad message (%d): disconnecting", rc);
		}
	} else if (rx.h.type == FP_T_RESPONSE && resp) {
		*resp = rx;
		return 2;
	} else if (rx.h.type == FP_T_RESPONSE) {
		on_response(c, &rx);
		fp_rx_release(&rx);
	} else {
		fp_rx_release(&rx);
		fp_debug("server sent frame type %u: disconnecting", rx.h.type);
		rc = -EBADMSG;
	}
	if (rc < 0) {
		fp_client_shutdown_link(c);
		end_conn(c, defer);
		return rc;
	}
	return 1;
}

/* Wake the holder of the reader role out of its wait (holder_poll()). */
static void kick(struct fltport_conn *c)
{
	uint64_t one = 1;

	if (c->ring && fp_ring_futex(c->ring))
		fp_ring_kick(c->ring);
	else
		(void)!write(c->kickfd, &one, sizeof(one));
}

/* The holder waits for the socket, or for a kick (fltport_cancel_gets()).
 * Returns 0 (readable, or an error recv will report), 1 (look again), or
 * -ETIMEDOUT.  On the rings with a filter side that offers it, one futex
 * wait (fp_ring_wait(): records, a kick, the end); a kick then also
 * returns 0, and the read finds nothing. */
static int holder_poll(struct fltport_conn *c, int64_t deadline)
{
	/* On the shared-memory transport: the ring's doorbell, and the
	 * socket for its end only (frames there are announced by the ring). */
	struct pollfd p[3] = { { .fd = c->fd, .events = c->ring ? POLLRDHUP : POLLIN },
			       { .fd = c->kickfd, .events = POLLIN },
			       { .fd = c->ring ? fp_ring_bell(c->ring) : -1, .events = POLLIN } };
	uint64_t v;
	int n;

	if (c->ring && (fp_ring_spin(c->ring) || fp_ring_arm(c->ring)))
		return 0;
	if (c->ring && fp_ring_futex(c->ring))
		return fp_ring_wait(c->ring, deadline);
	n = poll(p, c->ring ? 3 : 2, fp_poll_ms(deadline));
	if (n < 0)
		return errno == EINTR ? 1 : 0;
	if (n == 0)
		return -ETIMEDOUT;
	if (p[2].revents & POLLIN)
		fp_ring_bell_clear(c->ring);
	if (p[1].revents & POLLIN) {
		(void)!read(c->kickfd, &v, sizeof(v));
		return 1;
	}
	return 0;
}

/* A requester or a get holding the reader role on the socket transport
 * waits in recvmsg() itself, in slices of this length (SO_RCVTIMEO), while
 * its deadline is further away: one system call per frame, as a raw
 * ping-pong, instead of poll() + recvmsg().  Nothing but a frame (or the
 * end, which shutdown() signals to recvmsg()) concerns it: a get cancelled
 * by fltport_cancel_gets() is completed by the canceller, and its thread
 * sees that at the end of the slice (the kick eventfd cannot reach
 * recvmsg()).  Threads in fltport_run_completions() and the receive thread
 * poll with the kick eventfd instead. */
static bool block_ok(struct fltport_conn *c, int64_t deadline)
{
	/* Not while threads are parked on the connection: a blocking
	 * recvmsg() waits as an exclusive waiter queued behind their epoll
	 * sets, so a parked thread would take its response's wake-up and it
	 * would sleep out its slice.  poll() is woken whoever else waits.  (No
	 * thread parks while a requester blocks: pump_parked().) */
	return !c->ring && c->rcvtimeo && !c->nparked && deadline - fp_now() > FP_BLOCK_SLICE_NS;
}

/* Holding the role, read until *done, the end, or the deadline.  `spin`
 * non-NULL: a requester or a get, which may block in recvmsg() (see
 * FP_BLOCK_SLICE_NS) after spinning on this state.  Lock held on entry and
 * on return.  Returns 0 or -ETIMEDOUT. */
static int read_for(struct fltport_conn *c, const bool *done, int64_t deadline,
		    struct fp_spin *spin)
{
	int rc = 0;

	while (!*done && !c->ended && !c->closing) {
		struct fp_reader *cbs = NULL;
		struct fp_rx resp;
		bool blocking = spin && block_ok(c, deadline);

		c->rx_blocking = blocking;
		pthread_mutex_unlock(&c->lock);
		/* A filter on another CPU answers within microseconds: watch
		 * for it a little before sleeping in recvmsg() (core/spin.h). */
		if (blocking)
			(void)fp_spin_until(spin, fp_sock_readable, &c->fd);
		rc = blocking ? 0 : holder_poll(c, deadline);
		if (rc == 0)
			rc = read_frame(c, !blocking, true, &cbs, &resp);
		pthread_mutex_lock(&c->lock);
		c->rx_blocking = false;
		if (rc == 2) {
			struct fp_wakes wk = { .n = 0 };

			deliver_response(c, &resp, &wk);
			fp_rx_release(&resp);
			(void)wakes_run_unlocked(c, &wk);
		}
		defer_callbacks(c, cbs);
		if (rc == -ETIMEDOUT)
			return rc;
	}
	return 0;
}

/* A blocked caller waits (lock held) until *done, the end of the
 * connection, or the deadline: reading frames itself while it holds the
 * reader role (taking it if it is free), else sleeping on *wake.  Returns 0
 * or -ETIMEDOUT.  The caller leaves the role with release_role(). */
static int await(struct fltport_conn *c, const bool *done, _Atomic uint32_t *wake, int64_t deadline,
		 struct fp_spin *spin)
{
	int rc = 0;

	while (!*done && !c->ended && !c->closing && rc != -ETIMEDOUT) {
		if ((c->role == FP_ROLE_NONE && !need_rx(c)) || c->role == FP_ROLE_AWAY) {
			c->role = FP_ROLE_CALLER;
			c->role_owner = wake;
		}
		if (c->role == FP_ROLE_CALLER && c->role_owner == wake)
			rc = read_for(c, done, deadline, spin);
		else
			rc = wait_unlocked(c, wake, deadline);
	}
	return rc;
}

/* On the way out of a blocking call (lock held): pass the role on if this
 * caller holds it. */
static void leave_role(struct fltport_conn *c, _Atomic uint32_t *wake, struct fp_wakes *wk)
{
	if (c->role == FP_ROLE_CALLER && c->role_owner == wake)
		release_role(c, wake, wk);
}

/* Idle, the receive thread still drains the socket this often: messages
 * reach the queue (and fltport_conn_fd()) and a departed server is noticed
 * without a caller, and frames whose sender gave up do not pile up in the
 * socket with their memfds. */
#define FP_RX_IDLE_NS (100 * 1000 * 1000)

/* How long the reader role waits for the last thread that left
 * fltport_run_completions() (FP_ROLE_AWAY) before the receive thread takes
 * it: a completion port's loop is back within it; a message that comes
 * meanwhile with no thread there waits at most this long. */
#define FP_AWAY_NS (20 * 1000 * 1000)

/* Whether the connection has something to read (a frame, or its end). */
static bool readable(const struct fltport_conn *c)
{
	struct pollfd p = { .fd = c->fd, .events = c->ring ? POLLRDHUP : POLLIN };

	if (c->ring && fp_ring_pending(c->ring))
		return true;
	return poll(&p, 1, 0) == 1;
}

/* Run the completions handed over by callers (lock held; dropped while
 * they run).  True if there were any. */
static bool run_pending(struct fltport_conn *c)
{
	struct fp_reader *cbs = c->cb_pending;

	if (!cbs)
		return false;
	c->cb_pending = NULL;
	pthread_mutex_unlock(&c->lock);
	run_callbacks(cbs);
	pthread_mutex_lock(&c->lock);
	return true;
}

/* The receive thread: runs completions read by callers, holds the reader
 * role while frames must be read with no caller inside, and drains the
 * socket when idle. */
static void *rx_main(void *arg)
{
	struct fltport_conn *c = arg;
	struct fp_wakes wk = { .n = 0 };
	struct fp_reader *cbs;
	bool self_free, drain = false;
	int rc;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		bool work, sweep, kickable;

		if (run_pending(c))
			continue;
		if (c->ended || c->closing)
			break;
		if (c->role == FP_ROLE_NONE && !need_rx(c)) {
			/* Woken for work that went away (an async get cancelled
			 * meanwhile): a blocked caller may be waiting for the role. */
			release_role(c, NULL, &wk);
			if (wakes_run_unlocked(c, &wk))
				continue;
		}
		if (c->role == FP_ROLE_AWAY && !need_rx(c))
			c->role = FP_ROLE_NONE; /* nothing left for it to wait for */
		work = c->role == FP_ROLE_NONE && need_rx(c);
		if (c->role == FP_ROLE_AWAY) {
			int64_t end = c->away_since + FP_AWAY_NS;

			if (fp_now() < end) {
				c->rx_timed = true;
				(void)fp_cond_wait(&c->rx_cond, &c->lock, end);
				c->rx_timed = false;
				continue;
			}
			work = true; /* the thread that left it did not come back */
		}
		/* Not while threads wait in fltport_run_completions(): they
		 * read (parked ones hold no role), and their callbacks run
		 * on them. */
		sweep = c->role == FP_ROLE_NONE && !c->npump && drain && readable(c);
		if (!work && !sweep) {
			/* Also while a caller reads: the sweep must not wait for a
			 * signal that a caller leaving the role does not send. */
			drain = fp_cond_wait(&c->rx_cond, &c->lock, fp_now() + FP_RX_IDLE_NS) != 0;
			/* A caller asleep on the ring's futex hears of a filter
			 * process that died from here (a filter that ends the
			 * connection wakes it itself): within FP_RX_IDLE_NS. */
			if (drain && c->role == FP_ROLE_CALLER && c->ring)
				(void)fp_ring_check_end(c->ring);
			continue;
		}
		c->role = FP_ROLE_RX;
		/* Kickable (poll() with the kick eventfd) once a thread has
		 * been in fltport_run_completions(), and always on the rings
		 * (whose blocking read has no SO_RCVTIMEO slice). */
		kickable = work && (c->pumped || c->ring);
		pthread_mutex_unlock(&c->lock);
		cbs = NULL;
		if (kickable) {
			/* A thread entering fltport_run_completions() kicks this
			 * wait to take the role over.  On the ring's futex, in
			 * slices: at the end of each the socket is looked at
			 * (a filter process that died wakes no futex). */
			rc = holder_poll(c, c->ring && fp_ring_futex(c->ring)
						    ? fp_now() + FP_RX_IDLE_NS
						    : INT64_MAX);
			rc = rc == 0 ? read_frame(c, true, false, &cbs, NULL) : 0;
		} else {
			rc = read_frame(c, !work, false, &cbs, NULL);
		}
		run_callbacks(cbs);
		pthread_mutex_lock(&c->lock);
		release_role(c, NULL, &wk);
		(void)wakes_run_unlocked(c, &wk);
		if (rc < 0)
			break;
		drain = !work && rc == 1; /* keep sweeping while frames come */
	}
	pthread_mutex_unlock(&c->lock);
	fp_client_shutdown_link(c);
	end_conn(c, false);
	/* A caller still inside may have read a completion for a posted get
	 * before the end: it hands it over here (defer_callbacks()).  Run those
	 * until the last caller has left (fp_client_leave() signals). */
	pthread_mutex_lock(&c->lock);
	for (;;) {
		if (run_pending(c))
			continue;
		if (atomic_load(&c->calls) == 0)
			break;
		pthread_cond_wait(&c->rx_cond, &c->lock);
	}
	self_free = c->free_on_exit;
	pthread_mutex_unlock(&c->lock);
	if (self_free) {
		/* fltport_close() ran in a callback on this thread. */
		pthread_detach(pthread_self());
		fp_client_conn_free(c);
	}
	return NULL;
}

/* ---- get ---- */

FLTPORT_API int fltport_get(fltport_conn *c, void *buf, size_t cap, struct fltport_msg *msg,
			    int64_t timeout_ns)
{
	const int64_t deadline = fp_deadline(timeout_ns);
	struct fp_reader r = { .buf = buf, .cap = cap };
	struct fp_wakes wk = { .n = 0 };
	int rc;

	if (!c || !msg || (!buf && cap))
		return -EINVAL;
	if (fp_forked(&c->fork))
		return -ENOTCONN;
	fp_client_enter(c);
	pthread_mutex_lock(&c->lock);
	if (c->closing) {
		rc = -ECANCELED;
	} else if (c->ended) {
		rc = -ENOTCONN;
	} else if (!c->rhead && offer(c, &r)) {
		rc = r.err; /* a queued message, or one that does not fit */
		publish(c);
	} else if (timeout_ns == 0 && (c->role != FP_ROLE_NONE || need_rx(c))) {
		/* Another thread reads: what has arrived is queued already. */
		rc = -ETIMEDOUT;
		publish(c); /* offer() may have dropped expired messages */
	} else {
		/* A poll with the role free reads what the socket holds; it
		 * does not announce itself as a waiting reader (a poll send
		 * would then count on a reader that leaves at once). */
		readers_append(c, &r);
		if (timeout_ns != 0)
			publish(c);
		(void)await(c, &r.done, &r.wake, deadline, &c->get_spin);
		if (!r.done) {
			readers_remove(c, &r);
			publish(c);
			r.err = -ETIMEDOUT;
		}
		leave_role(c, &r.wake, &wk);
		rc = r.err;
	}
	if (rc == 0 || rc == -EMSGSIZE)
		*msg = r.msg;
	fp_client_leave(c);
	pthread_mutex_unlock(&c->lock);
	wakes_run(&wk);
	return rc;
}

FLTPORT_API int fltport_get_async(fltport_conn *c, void *buf, size_t cap, fltport_get_fn fn,
				  void *arg, uint64_t *token)
{
	struct fp_reader *r, *cbs = NULL;
	int rc = 0;

	if (!c || !fn || (!buf && cap))
		return -EINVAL;
	if (fp_forked(&c->fork))
		return -ENOTCONN;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->buf = buf;
	r->cap = cap;
	r->fn = fn;
	r->arg = arg;
	fp_client_enter(c);
	pthread_mutex_lock(&c->lock);
	r->token = ++c->next_token;
	if (c->closing) {
		rc = -ECANCELED;
	} else if (c->ended) {
		rc = -ENOTCONN;
	} else if (!c->rhead && offer(c, r)) {
		complete(c, r, &cbs, NULL);
		publish(c);
	} else {
		readers_append(c, r);
		publish(c);
		/* Frames to read now — by the receive thread unless threads
		 * in fltport_run_completions() read them (parked, they hold
		 * no role: the receive thread would wake for nothing). */
		if (c->role == FP_ROLE_NONE && need_rx(c))
			pthread_cond_signal(&c->rx_cond);
	}
	if (rc == 0 && token)
		*token = r->token;
	fp_client_leave(c);
	pthread_mutex_unlock(&c->lock);
	if (rc < 0)
		free(r);
	run_callbacks(cbs);
	return rc;
}

FLTPORT_API int fltport_cancel_get(fltport_conn *c, uint64_t token)
{
	struct fp_reader *r, *cbs = NULL;

	if (!c)
		return -EINVAL;
	if (fp_forked(&c->fork))
		return -ENOENT;
	fp_client_enter(c);
	pthread_mutex_lock(&c->lock);
	for (r = c->rhead; r && !(r->fn && r->token == token); r = r->next)
		;
	if (r) {
		readers_remove(c, r);
		r->err = -ECANCELED;
		complete(c, r, &cbs, NULL);
		publish(c);
	}
	fp_client_leave(c);
	pthread_mutex_unlock(&c->lock);
	run_callbacks(cbs); /* touches only the readers: c may be gone */
	return r ? 0 : -ENOENT;
}

FLTPORT_API int fltport_cancel_gets(fltport_conn *c)
{
	struct fp_reader *cbs = NULL;
	int n;

	if (!c)
		return -EINVAL;
	if (fp_forked(&c->fork))
		return 0;
	fp_client_enter(c);
	pthread_mutex_lock(&c->lock);
	n = fail_readers(c, -ECANCELED, &cbs);
	if (n > 0 && c->role == FP_ROLE_CALLER && !c->rx_blocking) {
		/* Out of its poll(); a get asleep in recvmsg() sees it at
		 * the end of its slice (block_ok()). */
		kick(c);
	}
	fp_client_leave(c);
	pthread_mutex_unlock(&c->lock);
	run_callbacks(cbs);
	return n;
}

/* ---- completions on the caller's thread (fltport_run_completions) ---- */

static void pump_unlink(struct fltport_conn *c, struct fp_pump *pu)
{
	for (struct fp_pump **pp = &c->pumps; *pp; pp = &(*pp)->next)
		if (*pp == pu) {
			*pp = pu->next;
			break;
		}
	c->npump--;
}

/* A thread leaving fltport_run_completions() with the role: to another
 * waiter, else kept for its return (FP_ROLE_AWAY) while posted gets need
 * frames read, else released. */
static void pump_leave_role(struct fltport_conn *c, struct fp_pump *pu, struct fp_wakes *wk)
{
	if (!(c->role == FP_ROLE_CALLER && c->role_owner == &pu->wake)) {
		/* A parked thread holds no role: the last one out keeps it
		 * free for its return the same way. */
		if (pu->pw && !c->npump && c->role == FP_ROLE_NONE && !c->ended && !c->closing &&
		    need_rx(c)) {
			c->role = FP_ROLE_AWAY;
			c->role_owner = NULL;
			c->away_since = fp_now();
			if (!c->rx_timed)
				pthread_cond_signal(&c->rx_cond);
		}
		return;
	}
	if (!c->ended && !c->closing && need_rx(c) && !next_holder(c, &pu->wake)) {
		c->role = FP_ROLE_AWAY;
		c->role_owner = NULL;
		c->away_since = fp_now();
		if (!c->rx_timed)
			pthread_cond_signal(&c->rx_cond);
		return;
	}
	release_role(c, &pu->wake, wk);
}

/* ---- parked threads (socket transport) ---- */

/*
 * On the socket transport, a thread in fltport_run_completions() that has
 * nothing to run waits "parked" in epoll_wait() on an epoll set of its own
 * (struct fp_pumpwait) that holds the socket with EPOLLEXCLUSIVE: a frame
 * wakes one parked thread, which takes the reader role for one read,
 * leaves it and runs the completion.  The others stay asleep, already
 * waiting for the next frame — so with several threads (a completion
 * port's), a message costs one wake-up, as with one thread, instead of
 * another for passing the role on.  A parked thread holds no role; one that
 * finds the role held by a caller that reads (a requester, the receive
 * thread) waits for it on its word as before.
 */
static struct fp_pumpwait *pw_get(struct fltport_conn *c)
{
	struct epoll_event sock = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = 0 };
	struct epoll_event own = { .events = EPOLLIN, .data.u32 = 1 };
	struct fp_pumpwait *pw = c->pw_free;

	if (pw) {
		c->pw_free = pw->next_free;
		return pw;
	}
	pw = calloc(1, sizeof(*pw));
	if (!pw)
		return NULL;
	pw->ep = epoll_create1(EPOLL_CLOEXEC);
	pw->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pw->ep < 0 || pw->efd < 0 || epoll_ctl(pw->ep, EPOLL_CTL_ADD, c->fd, &sock) != 0 ||
	    epoll_ctl(pw->ep, EPOLL_CTL_ADD, pw->efd, &own) != 0) {
		if (pw->ep >= 0)
			close(pw->ep);
		if (pw->efd >= 0)
			close(pw->efd);
		free(pw);
		return NULL; /* this thread waits the other way */
	}
	pw->next_all = c->pw_all;
	c->pw_all = pw; /* last: a forked child walks the list unlocked */
	return pw;
}

static void pw_put(struct fltport_conn *c, struct fp_pumpwait *pw)
{
	pw->next_free = c->pw_free;
	c->pw_free = pw;
}

/* A parked thread leaving with a frame it was woken for unread: the
 * wake-up was exclusive, so no other parked thread's epoll set saw it, and
 * none would (a frame wakes epoll sets once, as it comes).  The next parked
 * thread is told to read (`handed`); with none, the next thread to park
 * looks at the socket first (pw_lost), and the last one out leaves the role
 * to the receive thread (pump_leave_role()). */
static void pass_on(struct fltport_conn *c, const struct fp_pump *self)
{
	for (struct fp_pump *pu = c->pumps; pu; pu = pu->next)
		if (pu != self && pu->parked && !pu->handed) {
			pu->handed = true;
			pump_wake(pu);
			return;
		}
	c->pw_lost = true;
}

/* Another thread parked, and not already told to read. */
static bool other_parked(const struct fltport_conn *c, const struct fp_pump *self)
{
	for (const struct fp_pump *pu = c->pumps; pu; pu = pu->next)
		if (pu != self && pu->parked && !pu->handed)
			return true;
	return false;
}

/* fltport_run_completions() on the socket transport.  Lock held on entry
 * and return; returns 0, -ETIMEDOUT, -ECANCELED or -ENOTCONN, and adds the
 * completions it ran to *ran. */
static int pump_parked(struct fltport_conn *c, struct fp_pump *pu, int64_t deadline, int *ran)
{
	bool ready = false, kicked = false;
	int rc = 0;

	for (;;) {
		struct epoll_event evs[2];
		int n;

		if (c->cb_pending) { /* read by a caller: run here */
			struct fp_reader *cbs = c->cb_pending;

			c->cb_pending = NULL;
			pthread_mutex_unlock(&c->lock);
			*ran += run_callbacks(cbs);
			pthread_mutex_lock(&c->lock);
			break;
		}
		if (c->closing || c->ended) {
			rc = c->closing ? -ECANCELED : -ENOTCONN;
			break;
		}
		if (pu->woken)
			break;
		if (ready && (c->role == FP_ROLE_NONE || c->role == FP_ROLE_AWAY)) {
			c->role = FP_ROLE_CALLER;
			c->role_owner = &pu->wake;
		}
		if (c->role == FP_ROLE_CALLER && c->role_owner == &pu->wake) {
			/* One frame (or none: another thread was first), the
			 * role left at once, then its completion run here. */
			struct fp_reader *cbs = NULL;
			struct fp_wakes wk = { .n = 0 };

			int r;

			ready = false;
			pthread_mutex_unlock(&c->lock);
			r = read_frame(c, true, false, &cbs, NULL);
			pthread_mutex_lock(&c->lock);
			if (c->role == FP_ROLE_CALLER && c->role_owner == &pu->wake)
				release_role(c, &pu->wake, &wk);
			/* Another frame already there: it may have no wake-up
			 * left for the parked threads (this one was woken for
			 * two, or a kernel woke it twice): one of them reads
			 * it while this one runs its completion. */
			if (r == 1 && other_parked(c, pu) && readable(c))
				pass_on(c, pu);
			pthread_mutex_unlock(&c->lock);
			wakes_run(&wk);
			*ran += run_callbacks(cbs);
			pthread_mutex_lock(&c->lock);
			if (*ran)
				break;
			continue;
		}
		if (ready || c->role == FP_ROLE_RX ||
		    (c->role == FP_ROLE_CALLER && c->rx_blocking)) {
			/* Another thread holds the role and reads: wait to be
			 * handed it.  The receive thread's blocking read is
			 * kicked once: its completions would run there.  A
			 * requester in a blocking recvmsg() is not parked
			 * beside: its exclusive wait is queued behind ours
			 * (block_ok()). */
			if (c->role == FP_ROLE_RX && !kicked) {
				kick(c);
				kicked = true;
			}
			atomic_store_explicit(&pu->wake, 0, memory_order_relaxed);
			if (wait_unlocked(c, &pu->wake, deadline) == -ETIMEDOUT &&
			    !atomic_load(&pu->wake) && !c->cb_pending && !pu->woken &&
			    !(c->role == FP_ROLE_CALLER && c->role_owner == &pu->wake)) {
				rc = -ETIMEDOUT;
				break;
			}
			continue;
		}
		if (c->pw_lost) {
			/* A frame some thread was woken for and left unread. */
			c->pw_lost = false;
			if (readable(c)) {
				ready = true;
				continue;
			}
		}
		pu->parked = true;
		c->nparked++;
		pthread_mutex_unlock(&c->lock);
		n = epoll_wait(pu->pw->ep, evs, 2, fp_poll_ms(deadline));
		pthread_mutex_lock(&c->lock);
		pu->parked = false;
		c->nparked--;
		if (pu->handed) { /* pass_on(): a frame to read */
			pu->handed = false;
			ready = true;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u32 == 1) {
				uint64_t v;

				(void)!read(pu->pw->efd, &v, sizeof(v));
			} else {
				ready = true;
			}
		}
		if (n == 0 && !c->cb_pending && !pu->woken && !c->closing && !c->ended) {
			rc = -ETIMEDOUT;
			break;
		}
	}
	/* Woken for a frame left unread — or, timed out, maybe (a timeout
	 * racing a frame can take its wake-up on older kernels). */
	if (ready || (rc == -ETIMEDOUT && readable(c)))
		pass_on(c, pu);
	return rc;
}

/* The connection whose completions this thread runs: a callback calling
 * fltport_run_completions() on it again would wait for the reader role
 * its own thread holds. */
static _Thread_local const struct fltport_conn *tl_pumping;

FLTPORT_API int fltport_run_completions(fltport_conn *c, int64_t timeout_ns)
{
	const int64_t deadline = fp_deadline(timeout_ns);
	struct fp_pump pu = { .next = NULL };
	struct fp_wakes wk = { .n = 0 };
	bool kicked = false;
	int ran = 0, rc = 0;

	if (!c)
		return -EINVAL;
	if (fp_forked(&c->fork))
		return -ENOTCONN;
	if (tl_pumping == c)
		return -EDEADLK;
	fp_client_enter(c);
	pthread_mutex_lock(&c->lock);
	if (c->closing)
		rc = -ECANCELED;
	else if (c->ended)
		rc = -ENOTCONN;
	else if (c->pump_wake)
		c->pump_wake = false; /* a wake-up that came with nobody inside: 0 */
	else if (!c->nasync && !c->cb_pending)
		rc = -EAGAIN;
	else
		goto run;
	fp_client_leave(c);
	pthread_mutex_unlock(&c->lock);
	return rc;
run:
	pu.next = c->pumps;
	c->pumps = &pu;
	c->npump++;
	/* The receive thread may be in a blocking read with the role: it
	 * ends within a slice (SO_RCVTIMEO), and from now on its reads are
	 * kickable. */
	c->pumped = true;
	tl_pumping = c;
	pu.pw = c->ring ? NULL : pw_get(c);
	if (pu.pw) {
		rc = pump_parked(c, &pu, deadline, &ran);
		goto out;
	}
	for (;;) {
		bool holder;

		if (c->cb_pending) { /* read by a caller: run here */
			struct fp_reader *cbs = c->cb_pending;

			c->cb_pending = NULL;
			pthread_mutex_unlock(&c->lock);
			ran += run_callbacks(cbs);
			pthread_mutex_lock(&c->lock);
			break;
		}
		if (c->closing || c->ended) {
			rc = c->closing ? -ECANCELED : -ENOTCONN;
			break;
		}
		if (pu.woken)
			break;
		if (c->role == FP_ROLE_NONE || c->role == FP_ROLE_AWAY) {
			c->role = FP_ROLE_CALLER;
			c->role_owner = &pu.wake;
		}
		holder = c->role == FP_ROLE_CALLER && c->role_owner == &pu.wake;
		if (holder) {
			struct fp_reader *cbs = NULL;
			int r;

			pthread_mutex_unlock(&c->lock);
			r = holder_poll(c, deadline);
			if (r == 0)
				(void)read_frame(c, true, false, &cbs, NULL);
			ran += run_callbacks(cbs);
			pthread_mutex_lock(&c->lock);
			if (ran)
				break;
			/* A wake (fltport_wake_completions()) or a completion
			 * handed over just as the wait timed out still counts,
			 * as it does for a thread that is not the holder. */
			if (r == -ETIMEDOUT && !pu.woken && !c->cb_pending) {
				rc = -ETIMEDOUT;
				break;
			}
			continue;
		}
		if (c->role == FP_ROLE_RX && !kicked) {
			kick(c); /* out of its poll(): it passes the role here */
			kicked = true;
		}
		atomic_store_explicit(&pu.wake, 0,
				      memory_order_relaxed); /* setters hold the lock */
		if (wait_unlocked(c, &pu.wake, deadline) == -ETIMEDOUT && !atomic_load(&pu.wake) &&
		    !c->cb_pending && !pu.woken) {
			rc = -ETIMEDOUT;
			break;
		}
	}
out:
	tl_pumping = NULL;
	pump_unlink(c, &pu);
	pump_leave_role(c, &pu, &wk);
	if (pu.pw)
		pw_put(c, pu.pw);
	fp_client_leave(c);
	pthread_mutex_unlock(&c->lock);
	wakes_run(&wk);
	return ran > 0 ? ran : rc;
}

FLTPORT_API void fltport_wake_completions(fltport_conn *c)
{
	if (!c || fp_forked(&c->fork))
		return;
	pthread_mutex_lock(&c->lock);
	if (!c->pumps)
		c->pump_wake = true;
	for (struct fp_pump *pu = c->pumps; pu; pu = pu->next) {
		pu->woken = true;
		if (c->role == FP_ROLE_CALLER && c->role_owner == &pu->wake && !pu->pw) {
			kick(c); /* the holder: out of its poll() */
		} else {
			pump_wake(pu);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

/* ---- reply ---- */

/* Write a slot's reply area: the reply itself when it fits (truncated to
 * the sender's capacity), or only "a frame follows". */
static void area_fill(struct fp_reply_area *a, uint8_t *area, bool inline_ok, uint32_t status,
		      const void *data, size_t len, uint32_t cap)
{
	size_t n = len < cap ? len : cap;

	a->status = status;
	if (!inline_ok) {
		a->len = 0;
		a->flags = 0;
		return;
	}
	if (n)
		memcpy(area, data, n);
	a->len = (uint32_t)n;
	a->flags = FP_R_INLINE | (len > cap ? FP_R_OVERFLOW : 0);
}

/* The reply frame did not go out (e.g. no fd for its memfd): take the
 * commit back, REPLIED → TAKEN, so that the message stays answerable and a
 * sender waiting without a deadline does not wait for a frame that never
 * comes.  If the sender's deadline already abandoned the slot, it is
 * answered (-ETIMEDOUT) and nothing is left to undo. */
static void undo_reply(struct fltport_conn *c, uint64_t id, int err)
{
	uint32_t slot = fp_id_slot(id);
	uint64_t seq = fp_id_seq(id);

	fp_debug("reply to message %llu not sent (%s): it can be retried", (unsigned long long)id,
		 fltport_strerror(err));
	pthread_mutex_lock(&c->lock);
	if (c->taken[slot].id == id &&
	    fp_slot_cas(c->page, slot, fp_word(seq, FP_S_REPLIED), fp_word(seq, FP_S_TAKEN)))
		c->taken[slot].replyable = true;
	pthread_mutex_unlock(&c->lock);
}

FLTPORT_API int fltport_reply(fltport_conn *c, uint64_t id, uint32_t status, const void *data,
			      size_t len)
{
	struct fp_hdr h = { .magic = FP_MAGIC,
			    .version = FLTPORT_WIRE_VERSION,
			    .type = FP_T_REPLY,
			    .id = id,
			    .status = status };
	struct fp_tx tx = { .h = &h, .payload = data, .page_fd = -1 };
	uint32_t slot = fp_id_slot(id), cap = 0;
	uint64_t seq = fp_id_seq(id);
	bool inline_ok = false;
	int rc = 0;

	if (!c || (!data && len))
		return -EINVAL;
	if (len > c->max_message)
		return -EMSGSIZE;
	if (fp_forked(&c->fork))
		return -ENOTCONN;
	fp_client_enter(c);
	pthread_mutex_lock(&c->lock);
	if (c->closing || c->ended) {
		rc = -ENOTCONN;
	} else if (slot >= c->nslots || c->taken[slot].id != id || !c->taken[slot].replyable) {
		rc = -ENOENT;
	} else {
		cap = c->taken[slot].cap;
		inline_ok = (len < cap ? len : cap) <= FP_SMALL_REPLY;
		/* Commit: from here the sender waits for this reply (and its
		 * deadline can no longer take the message away).  A small
		 * reply is written into the page first and is complete the
		 * moment the word says REPLIED; the area is written under the
		 * lock, so a replier of an older message in this slot cannot
		 * write it at the same time. */
		c->taken[slot].replyable = false;
		area_fill(fp_area(c->page, c->nslots, slot), fp_area_data(c->page, c->nslots, slot),
			  inline_ok, status, data, len, cap);
		if (!fp_slot_cas(c->page, slot, fp_word(seq, FP_S_TAKEN),
				 fp_word(seq, FP_S_REPLIED)))
			rc = -ENOENT; /* the sender gave up first */
	}
	pthread_mutex_unlock(&c->lock);
	if (rc == 0 && inline_ok) {
		fp_futex_wake(&c->page->slot[slot]);
		rc = len > cap ? -EOVERFLOW : 0;
	} else if (rc == 0) {
		h.len = (uint32_t)(len > cap ? cap : len);
		if (len > cap)
			h.flags = FP_F_OVERFLOW;
		rc = fp_link_send(c->ring, c->fd, &tx, FP_NEVER);
		if (rc < 0)
			undo_reply(c, id, rc);
		else if (len > cap)
			rc = -EOVERFLOW;
	}
	pthread_mutex_lock(&c->lock);
	fp_client_leave(c);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* ---- request ---- */

static void reqs_remove(struct fltport_conn *c, struct fp_reqw *w)
{
	for (struct fp_reqw **p = &c->reqs; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			return;
		}
}

FLTPORT_API int fltport_request(fltport_conn *c, const void *in, size_t in_len, const int *fds,
				unsigned nfds, void *out, size_t out_cap, size_t *out_len,
				uint32_t *status, int64_t timeout_ns)
{
	const int64_t deadline = fp_deadline(timeout_ns);
	struct fp_reqw w = { .out = out, .cap = out_cap };
	struct fp_wakes wk = { .n = 0 };
	struct fp_hdr h = { .magic = FP_MAGIC,
			    .version = FLTPORT_WIRE_VERSION,
			    .type = FP_T_REQUEST,
			    .len = (uint32_t)in_len };
	struct fp_tx tx = { .h = &h, .payload = in, .fds = fds, .nfds = nfds, .page_fd = -1 };
	int rc = 0;

	if (!c || (!in && in_len) || (!out && out_cap) || nfds > FLTPORT_MAX_FDS || (nfds && !fds))
		return -EINVAL;
	for (unsigned i = 0; i < nfds; i++)
		if (fds[i] < 0)
			return -EINVAL;
	if (fp_forked(&c->fork))
		return -ENOTCONN;
	if (in_len > c->max_message)
		return -EMSGSIZE;
	h.arg = (uint32_t)(out_cap < c->max_message ? out_cap : c->max_message);
	if (w.cap > h.arg)
		w.cap = h.arg;
	fp_client_enter(c);
	pthread_mutex_lock(&c->lock);
	if (c->closing || c->ended) {
		fp_client_leave(c);
		pthread_mutex_unlock(&c->lock);
		return -ENOTCONN;
	}
	h.id = w.id = ++c->next_req;
	w.next = c->reqs;
	c->reqs = &w;
	pthread_mutex_unlock(&c->lock);

	rc = fp_link_send(c->ring, c->fd, &tx, deadline);

	pthread_mutex_lock(&c->lock);
	w.waiting = true;
	if (rc == 0 && await(c, &w.done, &w.wake, deadline, &c->block_spin) == -ETIMEDOUT &&
	    !w.done)
		rc = -ETIMEDOUT;
	if (w.done) {
		rc = w.err;
		if (rc == 0 && out_len)
			*out_len = w.out_len;
		if (rc == 0 && status)
			*status = w.status;
	} else if (rc != -ETIMEDOUT && !fp_resource_error(rc)) {
		rc = -ENOTCONN;
	}
	reqs_remove(c, &w);
	leave_role(c, &w.wake, &wk);
	fp_client_leave(c);
	pthread_mutex_unlock(&c->lock);
	wakes_run(&wk);
	return rc;
}

/* ---- for connect.c ---- */

void *fp_client_rx_main(void *arg)
{
	return rx_main(arg);
}

/* fltport_close(): cancel readers, wake requesters. */
void fp_client_fail_all(struct fltport_conn *c, struct fp_reader **cbs)
{
	for (struct fp_reqw *w = c->reqs; w; w = w->next)
		wake_mark(NULL, &w->wake);
	for (struct fp_pump *pu = c->pumps; pu; pu = pu->next)
		pump_wake(pu);
	fail_readers(c, -ECANCELED, cbs);
	pthread_cond_signal(&c->rx_cond);
}

void fp_client_run_callbacks(struct fp_reader *cbs)
{
	run_callbacks(cbs);
}
