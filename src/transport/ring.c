/*
 * The shared-memory transport: two rings in a sealed memfd (ring.h).
 *
 * Layout of the memfd (little-endian, FP_RING_SIZE bytes):
 *   0      header: magic, ring bytes, the filter's wake-up offer, the
 *          user side's choice
 *   64     control words of ring 0 (filter → user), two cache lines
 *   192    control words of ring 1 (user → filter)
 *   4096   ring 0's records, FP_RING_BYTES
 *   …      ring 1's records, FP_RING_BYTES
 *
 * A record: u32 body length, u32 kind, the body, padded to 8 bytes.
 * Records never wrap: a PAD record fills the end of the ring instead.
 * Positions (head, tail) count bytes since the start and wrap at 2^32;
 * FP_RING_BYTES divides 2^32, so position % FP_RING_BYTES is the offset.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/shared.h"
#include "core/spin.h"
#include "transport/ring.h"

#define RING_MAGIC 0x474E4952u /* "RING" */
#define REC_HDR 8u
#define DATA_OFF 4096u
#define RING_SIZE (DATA_OFF + 2u * FP_RING_BYTES)
/* A producer waiting for room looks at the socket this often. */
#define ROOM_SLICE_NS (20 * 1000 * 1000)
/* The filter side's offer (`wake_offer`): it can wake the user side's
 * consumer with a futex wake on its `sleeping` word.  The user side's
 * answer (`user_wake`): it waits there, not on its doorbell. */
#define WAKE_FUTEX 1u
/* A consumer asleep on its futex looks at the socket this often (a filter
 * process that died wakes nobody; the receive thread looks every 100 ms). */
#define FP_RING_WAIT_SLICE_NS (1000 * 1000 * 1000)

_Static_assert((FP_RING_BYTES & (FP_RING_BYTES - 1)) == 0, "ring bytes: a power of two");
_Static_assert(REC_HDR + FP_HDR_SIZE + FP_RING_INLINE_MAX <= FP_RING_BYTES / 2,
	       "a record fits twice");

enum rec_kind {
	REC_FRAME = 1, /* body: an encoded frame (header, inline payload) */
	REC_MARK = 2,  /* no body: the next frame is on the socket */
	REC_PAD = 3,   /* skip to the start of the ring */
};

struct ring_ctl {
	_Atomic uint32_t head;     /* producer: bytes published */
	_Atomic uint32_t sleeping; /* consumer: 1 = about to sleep, wake me */
	uint32_t pad0[14];
	_Atomic uint32_t tail;       /* consumer: bytes consumed */
	_Atomic uint32_t space_wait; /* producer: 1 = waiting for room (futex on tail) */
	uint32_t pad1[14];
};

struct ring_shm {
	uint32_t magic;
	uint32_t bytes;
	uint32_t wake_offer;          /* filter side, at create: WAKE_FUTEX or 0 */
	_Atomic uint32_t user_wake;   /* user side, before it first sleeps */
	_Atomic uint32_t filter_done; /* filter side: 1 once it shut the connection down */
	uint32_t pad[11];
	struct ring_ctl ctl[2];
};

_Static_assert(sizeof(struct ring_ctl) == 128, "control words: two cache lines");
_Static_assert(sizeof(struct ring_shm) <= DATA_OFF, "header fits before the data");

struct fp_ring {
	struct ring_shm *shm;
	struct ring_ctl *rc, *tc; /* the ring this side reads, the one it writes */
	uint8_t *rd, *td;         /* their records */
	/* read position (ours; the shared copy is for the peer): atomic only
	 * because a filter thread about to sleep may look at it (fp_ring_spin)
	 * while another reads */
	_Atomic uint32_t rtail;
	uint32_t thead;          /* write position (under txl) */
	_Atomic uint32_t txl;    /* producers' lock: 0 free, 1 held, 2 held with waiters */
	_Atomic bool tx_stalled; /* its holder waits for room (txl_lock()) */
	_Atomic bool closing;
	struct fp_spin spin; /* the consumer's, before it sleeps */
	bool filter_side;
	bool offered;  /* filter side: it offered the futex wake (wake_offer) */
	int bell;      /* ours: the peer rings it */
	int peer_bell; /* the peer's */
	/* User side in futex mode (fp_ring_use_futex): the consumer sleeps on
	 * its `sleeping` word; `woken` (a kick), `peer_gone` (the socket was
	 * seen ended: fp_ring_check_end()), `closing` and the filter's
	 * `filter_done` end that sleep. */
	bool futex_mode;
	_Atomic bool woken;
	_Atomic bool peer_gone;
	int sock; /* the connection's socket, for its end */
};

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint32_t rec_total(uint32_t len)
{
	return REC_HDR + ((len + 7u) & ~7u);
}

static struct fp_ring *ring_new(void *map, bool filter_side, int bell, int peer_bell)
{
	struct fp_ring *r = calloc(1, sizeof(*r));
	uint8_t *base = map;
	int me = filter_side ? 1 : 0; /* the ring this side reads */

	if (!r)
		return NULL;
	r->shm = map;
	r->rc = &r->shm->ctl[me];
	r->tc = &r->shm->ctl[1 - me];
	r->rd = base + DATA_OFF + (size_t)me * FP_RING_BYTES;
	r->td = base + DATA_OFF + (size_t)(1 - me) * FP_RING_BYTES;
	r->filter_side = filter_side;
	r->bell = bell;
	r->peer_bell = peer_bell;
	r->sock = -1;
	return r;
}

/* FLTPORT_RING_WAKE=doorbell: offer only the datagram doorbell, as
 * filter sides before the futex wake did (for tests of that path, and a
 * way back should a futex wake ever misbehave somewhere). */
static bool ring_doorbell_only(void)
{
	const char *e = getenv("FLTPORT_RING_WAKE");

	return e && strcmp(e, "doorbell") == 0;
}

int fp_ring_create(struct fp_ring **out, int fds[FP_RING_NFDS])
{
	int mfd = memfd_create("fltport-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int ev[2] = { -1, -1 };
	struct fp_ring *r = NULL;
	void *map = MAP_FAILED;
	int rc;

	if (mfd < 0)
		return -errno;
	/* The filter's doorbell: an eventfd (the user side writes it; the
	 * filter only waits on it, edge-triggered, never writes it).  The
	 * user's: a datagram socket pair, so that the filter rings it with a
	 * send that never blocks whatever the peer does to its end (an
	 * eventfd's O_NONBLOCK is shared with the peer, and a full counter
	 * would block a write). */
	int sp[2] = { -1, -1 };

	ev[0] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp) == 0) {
		ev[1] = sp[0];
	}
	if (ev[0] < 0 || ev[1] < 0 || ftruncate(mfd, RING_SIZE) != 0 ||
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
		goto fail_errno;
	map = mmap(NULL, RING_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (map == MAP_FAILED)
		goto fail_errno;
	((struct ring_shm *)map)->magic = RING_MAGIC;
	((struct ring_shm *)map)->bytes = FP_RING_BYTES;
	const bool offer = !ring_doorbell_only();

	if (offer)
		((struct ring_shm *)map)->wake_offer = WAKE_FUTEX;
	/* Both consumers start asleep: the first record rings. */
	atomic_store(&((struct ring_shm *)map)->ctl[0].sleeping, 1);
	atomic_store(&((struct ring_shm *)map)->ctl[1].sleeping, 1);
	/* The filter keeps its own doorbell and the user's (to ring it);
	 * the user gets both too, through the fds passed. */
	r = ring_new(map, true, ev[0], ev[1]);
	if (!r) {
		rc = -ENOMEM;
		goto fail;
	}
	r->offered = offer;
	fds[0] = mfd;
	fds[1] = ev[0];
	fds[2] = sp[1];
	*out = r;
	return 0;
fail_errno:
	rc = -errno;
fail:
	if (map != MAP_FAILED)
		munmap(map, RING_SIZE);
	for (int i = 0; i < 2; i++)
		if (ev[i] >= 0)
			close(ev[i]);
	if (sp[1] >= 0)
		close(sp[1]);
	close(mfd);
	return rc;
}

static bool is_eventfd(int fd)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = '\0';
	return strcmp(link, "anon_inode:[eventfd]") == 0;
}

int fp_ring_attach(struct fp_ring **out, const int fds[FP_RING_NFDS])
{
	struct stat st;
	int seals = fcntl(fds[0], F_GET_SEALS), rc = -EPROTO;
	void *map = MAP_FAILED;
	struct fp_ring *r;

	if (seals < 0 || !(seals & F_SEAL_SHRINK) || fstat(fds[0], &st) != 0 ||
	    !S_ISREG(st.st_mode) || st.st_size != (off_t)RING_SIZE || !is_eventfd(fds[1]) ||
	    fstat(fds[2], &st) != 0 || !S_ISSOCK(st.st_mode))
		goto fail;
	map = mmap(NULL, RING_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	if (map == MAP_FAILED) {
		rc = -errno;
		goto fail;
	}
	if (((struct ring_shm *)map)->magic != RING_MAGIC ||
	    ((struct ring_shm *)map)->bytes != FP_RING_BYTES)
		goto fail;
	/* The filter's doorbell was made non-blocking by the filter, which
	 * never changes it. */
	r = ring_new(map, false, fds[2], fds[1]);
	if (!r) {
		rc = -ENOMEM;
		goto fail;
	}
	close(fds[0]);
	*out = r;
	return 0;
fail:
	if (map != MAP_FAILED)
		munmap(map, RING_SIZE);
	for (unsigned i = 0; i < FP_RING_NFDS; i++)
		close(fds[i]);
	return rc;
}

void fp_ring_free(struct fp_ring *r)
{
	if (!r)
		return;
	munmap(r->shm, RING_SIZE);
	close(r->bell);
	close(r->peer_bell);
	free(r);
}

void fp_ring_fds(const struct fp_ring *r, int out[2])
{
	out[0] = r->bell;
	out[1] = r->peer_bell;
}

int fp_ring_bell(const struct fp_ring *r)
{
	return r->bell;
}

/* The user side's doorbell is a datagram socket: drain it, in one system
 * call as a rule (a wake-up leaves one datagram, rarely two: a producer
 * rings once per arm of the consumer, and an arm that finds a record
 * leaves that ring's datagram for the next drain). */
void fp_ring_bell_clear(struct fp_ring *r)
{
	enum { N = 8 };
	char b[N];
	struct iovec iov[N];
	struct mmsghdr m[N];
	int n, rounds = 0;

	memset(m, 0, sizeof(m));
	for (int i = 0; i < N; i++) {
		iov[i] = (struct iovec){ .iov_base = &b[i], .iov_len = 1 };
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
	}
	/* A peer that rings without pause cannot keep this loop going: what
	 * is left wakes the next poll(), which is level-triggered. */
	do
		n = recvmmsg(r->bell, m, N, MSG_DONTWAIT, NULL);
	while ((n == N || (n < 0 && errno == EINTR)) && ++rounds < 4);
}

/* Ring the peer's doorbell; never blocks.  A full doorbell (EAGAIN) has a
 * wake-up pending already. */
static void ring_bell(const struct fp_ring *r)
{
	uint64_t one = 1;

	if (r->filter_side) {
		/* user_wake is the peer's word: only the value we offered
		 * counts, and one waiter at most is woken (only the role's
		 * holder sleeps there; a peer that parks more on it must not
		 * make each record cost us one wake-up per thread). */
		if (r->offered &&
		    atomic_load_explicit(&r->shm->user_wake, memory_order_relaxed) == WAKE_FUTEX) {
			fp_futex_wake_one(&r->tc->sleeping);
			return;
		}
		while (send(r->peer_bell, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno == EINTR)
			;
		return;
	}
	while (write(r->peer_bell, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

/* Whether the socket's peer is gone (or the socket shut down). */
static bool sock_ended(int sock)
{
	struct pollfd p = { .fd = sock, .events = POLLRDHUP };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* ---- producing ---- */

/* The producers' lock.  Its holder keeps it for a copy (microseconds)
 * unless it waits for room (in the ring, or in the socket for a frame the
 * ring announces): only then does a sender's deadline end its wait for the
 * lock, as it would end its wait for room — a deadline of "now" (the
 * filter's answers to refused requests) must not fail on a mere copy. */
static int txl_lock(struct fp_ring *r, int64_t deadline)
{
	uint32_t v = 0;

	if (atomic_compare_exchange_strong_explicit(&r->txl, &v, 1, memory_order_acquire,
						    memory_order_relaxed))
		return 0;
	while (atomic_exchange_explicit(&r->txl, 2, memory_order_acquire) != 0) {
		int64_t now = fp_now(), until = now + ROOM_SLICE_NS;

		if (now >= deadline && atomic_load(&r->tx_stalled))
			return -ETIMEDOUT;
		if (deadline > now && deadline < until)
			until = deadline;
		(void)fp_futex_wait_private(&r->txl, 2, until);
	}
	return 0;
}

static void txl_unlock(struct fp_ring *r)
{
	if (atomic_exchange_explicit(&r->txl, 0, memory_order_release) == 2)
		fp_futex_wake_private(&r->txl);
}

/* Bytes a record of `total` bytes takes at the write position, with the
 * PAD that moves it to the start if it does not fit before the end. */
static uint32_t need_for(const struct fp_ring *r, uint32_t total)
{
	uint32_t left = FP_RING_BYTES - r->thead % FP_RING_BYTES;

	return left < total ? left + total : total;
}

/* Wait (txl held) until `need` bytes are free.  0, -ETIMEDOUT, or
 * -ENOTCONN (closing, the peer gone, or a ring the peer broke). */
static int room(struct fp_ring *r, uint32_t need, int sock, int64_t deadline)
{
	for (;;) {
		uint32_t tail = atomic_load_explicit(&r->tc->tail, memory_order_acquire);
		uint32_t used = r->thead - tail;
		int64_t now, until;

		if (used > FP_RING_BYTES)
			return -ENOTCONN;
		if (FP_RING_BYTES - used >= need)
			return 0;
		if (atomic_load(&r->closing))
			return -ENOTCONN;
		atomic_store(&r->tc->space_wait, 1);
		if (atomic_load(&r->tc->tail) != tail)
			continue;
		now = fp_now();
		if (deadline != FP_NEVER && now >= deadline)
			return -ETIMEDOUT;
		until = now + ROOM_SLICE_NS;
		if (deadline != FP_NEVER && deadline < until)
			until = deadline;
		(void)fp_futex_wait(&r->tc->tail, tail, until);
		if (sock_ended(sock))
			return -ENOTCONN;
	}
}

static void put_hdr(uint8_t *at, uint32_t len, uint32_t kind)
{
	memcpy(at, &len, 4);
	memcpy(at + 4, &kind, 4);
}

/* Write a record (room checked; txl held); published by publish(). */
static void write_rec(struct fp_ring *r, uint32_t kind, const uint8_t *a, uint32_t alen,
		      const void *b, uint32_t blen)
{
	uint32_t len = alen + blen, total = rec_total(len);
	uint32_t pos = r->thead % FP_RING_BYTES;

	if (FP_RING_BYTES - pos < total) {
		put_hdr(r->td + pos, FP_RING_BYTES - pos - REC_HDR, REC_PAD);
		r->thead += FP_RING_BYTES - pos;
		pos = 0;
	}
	put_hdr(r->td + pos, len, kind);
	if (alen)
		memcpy(r->td + pos + REC_HDR, a, alen);
	if (blen)
		memcpy(r->td + pos + REC_HDR + alen, b, blen);
	r->thead += total;
}

static void publish(struct fp_ring *r)
{
	/* seq_cst store, then seq_cst load: against the consumer's store of
	 * `sleeping` and load of `head` (fp_ring_arm), one of the two sees
	 * the other's store, so a record is never left with nobody woken. */
	atomic_store(&r->tc->head, r->thead);
	if (atomic_load(&r->tc->sleeping) && atomic_exchange(&r->tc->sleeping, 0))
		ring_bell(r);
}

int fp_ring_send(struct fp_ring *r, int sock, const struct fp_tx *tx, int64_t deadline)
{
	struct fp_hdr h = *tx->h;
	bool via_sock = tx->nfds > 0 || tx->page_fd >= 0 || h.len > FP_RING_INLINE_MAX;
	uint32_t total = via_sock ? REC_HDR : rec_total(FP_HDR_SIZE + h.len);
	uint8_t hb[FP_HDR_SIZE];
	int rc;

	if (atomic_load(&r->closing))
		return -ENOTCONN;
	rc = txl_lock(r, deadline);
	if (rc < 0)
		return rc;
	/* Room first: a frame on the socket must never go unannounced. */
	atomic_store(&r->tx_stalled, true);
	rc = room(r, need_for(r, total), sock, deadline);
	if (rc == 0 && via_sock)
		rc = fp_sock_ops.send(sock, tx, deadline);
	atomic_store(&r->tx_stalled, false);
	if (rc == 0) {
		if (via_sock) {
			write_rec(r, REC_MARK, NULL, 0, NULL, 0);
		} else {
			h.nfds = 0;
			fp_hdr_encode(&h, hb);
			write_rec(r, REC_FRAME, hb, FP_HDR_SIZE, tx->payload, h.len);
		}
		publish(r);
	}
	txl_unlock(r);
	return rc;
}

/* Wake the consumer sleeping in fp_ring_wait(), if it sleeps; the flag
 * that says why is set (seq_cst) before: it either sees the flag after it
 * armed, or its `sleeping` is cleared here and its futex wait returns. */
static void wake_consumer(struct fp_ring *r)
{
	if (r->futex_mode && atomic_exchange(&r->rc->sleeping, 0))
		fp_futex_wake_one(&r->rc->sleeping);
}

void fp_ring_shutdown(struct fp_ring *r)
{
	atomic_store(&r->closing, true);
	fp_futex_wake(&r->tc->tail);
	wake_consumer(r);
	/* The filter side ending the connection (its socket is shut down
	 * already) wakes a user side asleep on the futex, which no socket
	 * event reaches: said in the ring first, whatever user_wake says yet
	 * (a user side about to take the futex wake stores user_wake before
	 * it arms, and looks at filter_done after: seq_cst on both sides, so
	 * it sees filter_done or we see user_wake and its `sleeping`). */
	if (r->filter_side && r->offered) {
		atomic_store(&r->shm->filter_done, 1);
		if (atomic_load(&r->shm->user_wake) == WAKE_FUTEX &&
		    atomic_exchange(&r->tc->sleeping, 0))
			fp_futex_wake_one(&r->tc->sleeping);
	}
}

void fp_ring_kick(struct fp_ring *r)
{
	atomic_store(&r->woken, true);
	wake_consumer(r);
}

bool fp_ring_futex(const struct fp_ring *r)
{
	return r->futex_mode;
}

bool fp_ring_use_futex(struct fp_ring *r, int sock)
{
	if (r->filter_side || r->shm->wake_offer != WAKE_FUTEX)
		return false;
	r->sock = sock;
	r->futex_mode = true;
	atomic_store(&r->shm->user_wake, WAKE_FUTEX);
	return true;
}

/* The socket has ended: every wait returns at once from now on. */
static bool ended_now(struct fp_ring *r)
{
	if (!sock_ended(r->sock))
		return false;
	atomic_store(&r->peer_gone, true);
	return true;
}

bool fp_ring_check_end(struct fp_ring *r)
{
	if (!r->futex_mode || !ended_now(r))
		return false;
	wake_consumer(r);
	return true;
}

int fp_ring_wait(struct fp_ring *r, int64_t deadline)
{
	if (atomic_exchange(&r->woken, false) || atomic_load(&r->peer_gone) ||
	    atomic_load(&r->closing) ||
	    /* only a hint: a filter that says so without ending the socket
	     * must not make every wait return at once (a spin) */
	    (atomic_load(&r->shm->filter_done) && ended_now(r))) {
		atomic_store(&r->rc->sleeping, 0);
		return 0;
	}
	for (;;) {
		int64_t now = fp_now(), until = now + FP_RING_WAIT_SLICE_NS;

		if (deadline < until)
			until = deadline;
		if (fp_futex_wait(&r->rc->sleeping, 1, until) != -ETIMEDOUT)
			return 0;
		/* At the end of each slice, and at the deadline (FLTPORT_POLL's
		 * is now), the socket: a filter process that died wakes no
		 * futex (fp_ring_check_end() from the receive thread is the
		 * quicker way; this one holds whatever that thread is doing). */
		if (ended_now(r))
			break;
		if (until == deadline) {
			atomic_store(&r->rc->sleeping, 0); /* nobody sleeps: no wake needed */
			return -ETIMEDOUT;
		}
	}
	atomic_store(&r->rc->sleeping, 0);
	return 0;
}

/* ---- consuming ---- */

static uint32_t rtail(const struct fp_ring *r)
{
	return atomic_load_explicit(&r->rtail, memory_order_relaxed);
}

static void consumed(struct fp_ring *r, uint32_t total)
{
	uint32_t t = rtail(r) + total;

	atomic_store_explicit(&r->rtail, t, memory_order_relaxed);
	atomic_store(&r->rc->tail, t); /* seq_cst: as in publish(), against room() */
	if (atomic_load(&r->rc->space_wait) && atomic_exchange(&r->rc->space_wait, 0))
		fp_futex_wake(&r->rc->tail);
}

bool fp_ring_pending(const struct fp_ring *r)
{
	return atomic_load_explicit(&r->rc->head, memory_order_acquire) != rtail(r);
}

static bool pending_cb(const void *r)
{
	return fp_ring_pending(r);
}

bool fp_ring_spin(struct fp_ring *r)
{
	return fp_spin_until(&r->spin, pending_cb, r);
}

void fp_ring_disarm(struct fp_ring *r)
{
	atomic_store(&r->rc->sleeping, 0);
}

bool fp_ring_arm(struct fp_ring *r)
{
	atomic_store(&r->rc->sleeping, 1);
	if (atomic_load(&r->rc->head) == rtail(r))
		return false;
	atomic_store(&r->rc->sleeping, 0);
	return true;
}

/* One record's frame, or -EAGAIN (the ring is empty). */
static int take(struct fp_ring *r, int sock, uint8_t *buf, size_t bufsz, uint32_t max_payload,
		struct fp_rx *rx)
{
	for (;;) {
		uint32_t head = atomic_load_explicit(&r->rc->head, memory_order_acquire);
		uint32_t avail = head - rtail(r), pos = rtail(r) % FP_RING_BYTES;
		uint32_t len, kind, total;
		int rc;

		if (avail == 0)
			return -EAGAIN;
		if (avail > FP_RING_BYTES || avail < REC_HDR)
			return -EBADMSG;
		len = get32(r->rd + pos);
		kind = get32(r->rd + pos + 4);
		if (len > FP_RING_BYTES)
			return -EBADMSG;
		total = rec_total(len);
		if (total > avail || total > FP_RING_BYTES - pos)
			return -EBADMSG;
		switch (kind) {
		case REC_PAD:
			/* Only ever the end of the ring, after a record: at most
			 * one per call, whatever the peer writes. */
			if (pos == 0 || pos + total != FP_RING_BYTES)
				return -EBADMSG;
			consumed(r, total);
			continue;
		case REC_MARK:
			if (len != 0)
				return -EBADMSG;
			consumed(r, total);
			/* Sent before its mark was published: it is queued. */
			rc = fp_sock_ops.recv(sock, buf, bufsz, max_payload, rx, true);
			return rc == -EAGAIN ? -EBADMSG : rc;
		case REC_FRAME:
			if (len < FP_HDR_SIZE || len > FP_HDR_SIZE + FP_RING_INLINE_MAX ||
			    len > bufsz)
				return -EBADMSG;
			/* Copied before anything looks at it: the peer can
			 * still write the ring. */
			memcpy(buf, r->rd + pos + REC_HDR, len);
			consumed(r, total);
			fp_rx_init(rx);
			rc = fp_frame_decode(buf, len, 0, max_payload, &rx->h);
			if (rc < 0)
				return rc;
			rx->data = buf + FP_HDR_SIZE;
			return 0;
		default:
			return -EBADMSG;
		}
	}
}

/* check_end: look at the socket for the peer's end once the ring is
 * empty (a poll(2) of it: a system call per empty read). */
static int ring_recv(struct fp_ring *r, int sock, uint8_t *buf, size_t bufsz, uint32_t max_payload,
		     struct fp_rx *rx, bool dontwait, bool check_end)
{
	for (;;) {
		int rc = take(r, sock, buf, bufsz, max_payload, rx);

		if (rc != -EAGAIN)
			return rc;
		if (fp_ring_arm(r))
			continue;
		if (check_end && sock_ended(sock))
			return -ENOTCONN;
		if (dontwait)
			return -EAGAIN;
		if (r->futex_mode) {
			/* Not kickable, as the poll() below is not: a kick
			 * only makes it look again. */
			(void)fp_ring_wait(r, FP_NEVER);
		} else {
			struct pollfd p[2] = { { .fd = r->bell, .events = POLLIN },
					       { .fd = sock, .events = POLLRDHUP } };

			if (poll(p, 2, -1) < 0 && errno != EINTR)
				return -errno;
			if (p[0].revents & POLLIN)
				fp_ring_bell_clear(r);
		}
	}
}

int fp_ring_recv(struct fp_ring *r, int sock, uint8_t *buf, size_t bufsz, uint32_t max_payload,
		 struct fp_rx *rx, bool dontwait)
{
	return ring_recv(r, sock, buf, bufsz, max_payload, rx, dontwait, true);
}

int fp_ring_recv_watched(struct fp_ring *r, int sock, uint8_t *buf, size_t bufsz,
			 uint32_t max_payload, struct fp_rx *rx, bool sock_hup)
{
	return ring_recv(r, sock, buf, bufsz, max_payload, rx, true, sock_hup);
}
