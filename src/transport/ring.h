/*
 * The shared-memory transport (ring.c): frames travel through two rings
 * in a sealed memfd, one per direction, instead of through the socket.
 * Negotiated at connect (docs/PROTOCOL.md, "Shared-memory transport"):
 * the user side asks, the filter side creates the memfd and two
 * doorbells (an eventfd, a datagram socket pair's end) and passes them in CONNECT_RESULT.
 *
 * The socket stays: for the handshake, for frames that carry fds or a
 * payload above FP_RING_INLINE_MAX (sent on the socket, announced in the
 * ring by a marker, so one direction keeps one order), and for death
 * detection (a peer's end shows as POLLRDHUP on the socket).
 *
 * Each ring has one producer process and one consumer process.  Threads
 * of the producer serialise on a local mutex; the consumer side reads
 * with one thread at a time (the transport contract).  Every word the
 * other process can write is untrusted: positions are checked against
 * the ring's size, records are copied out before they are decoded, and a
 * ring that does not add up ends the connection (-EBADMSG, or -ENOTCONN
 * for the producer).  Wake-ups: a consumer about to block says so in its
 * ring (`sleeping`) and the producer wakes it only then: the filter side
 * through its eventfd doorbell, the user side with a futex wake on that
 * word (or, with a filter side that does not offer it, through its
 * datagram doorbell); a producer waiting for room sleeps on the consumer's position
 * (a shared futex), in bounded slices that also watch the socket.
 */
#ifndef FP_RING_H
#define FP_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/transport.h"

#define FP_RING_BYTES (16u * 1024u) /* record bytes per direction */
#define FP_RING_INLINE_MAX 4096u    /* payload bytes a ring record carries */
#define FP_RING_NFDS 3u             /* memfd, the filter's doorbell, the user's */

struct fp_ring;

/* Filter side: a new pair of rings.  fds[] receives the three fds to pass
 * to the peer in CONNECT_RESULT: the memfd, the filter's doorbell (an
 * eventfd) and the user's (one end of a datagram socket pair).  The caller
 * closes fds[0] and fds[2] once they are sent (or not to be); the ring
 * keeps what the filter uses.  0 or -errno. */
int fp_ring_create(struct fp_ring **out, int fds[FP_RING_NFDS]);

/* User side: check and map what CONNECT_RESULT brought.  Takes the three
 * fds in every case (closed on error, or owned by the ring).  0, -EPROTO
 * (not a ring this library made), or -errno. */
int fp_ring_attach(struct fp_ring **out, const int fds[FP_RING_NFDS]);

void fp_ring_free(struct fp_ring *r);
/* User side, once attached: wait for the filter's records on a futex (one
 * system call per wake-up, as a raw futex ping-pong) instead of polling the
 * doorbell, if the filter side offers it.  A futex wait cannot watch the
 * socket: the filter side wakes it when it ends the connection
 * (fp_ring_shutdown()), and a filter process that dies is noticed by
 * fp_ring_check_end(), which the connection's receive thread calls while
 * a caller waits.  True if the ring now works that way. */
bool fp_ring_use_futex(struct fp_ring *r, int sock);
bool fp_ring_futex(const struct fp_ring *r);
/* Futex mode: sleep (armed: fp_ring_arm() returned false) until a record
 * may be there, a kick, the filter's end of the connection, the ring's
 * shutdown, fp_ring_check_end(), or the deadline; in 1 s slices, at the
 * end of which the socket is looked at (so a dead filter is noticed even
 * when nothing calls fp_ring_check_end()).  0 (look again) or -ETIMEDOUT
 * (the socket is looked at then too: an end already there is 0). */
int fp_ring_wait(struct fp_ring *r, int64_t deadline);
/* Futex mode: if the socket has ended, wake the waiting consumer (and
 * every later wait returns at once).  True if it had. */
bool fp_ring_check_end(struct fp_ring *r);
/* Futex mode: end the current or next fp_ring_wait() early. */
void fp_ring_kick(struct fp_ring *r);

/* The transport operations (transport.h's contract), through the rings
 * and `sock`. */
int fp_ring_send(struct fp_ring *r, int sock, const struct fp_tx *tx, int64_t deadline);
int fp_ring_recv(struct fp_ring *r, int sock, uint8_t *buf, size_t bufsz, uint32_t max_payload,
		 struct fp_rx *rx, bool dontwait);

/* fp_ring_recv(dontwait) for a caller that watches the socket's end
 * itself (level-triggered, as the server's epoll set does): the socket is
 * looked at only when sock_hup says it showed an end (POLLRDHUP, POLLHUP
 * or POLLERR), not on every empty read.  -EAGAIN, a frame, or the end. */
int fp_ring_recv_watched(struct fp_ring *r, int sock, uint8_t *buf, size_t bufsz,
			 uint32_t max_payload, struct fp_rx *rx, bool sock_hup);

/* Wakes local producers waiting for room; they then fail with -ENOTCONN.
 * (Readers are woken by the socket's shutdown, and in futex mode here.) */
void fp_ring_shutdown(struct fp_ring *r);

/* A consumer about to wait: true if a record is there already (do not
 * wait); else the peer will wake it (doorbell or futex) for the next one. */
bool fp_ring_arm(struct fp_ring *r);

/* A consumer about to wait spins a little first (core/spin.h): true if a
 * record came meanwhile. */
bool fp_ring_spin(struct fp_ring *r);

/* A consumer that will look at the ring itself (spinning): the producer
 * need not ring.  It must fp_ring_arm() before it sleeps. */
void fp_ring_disarm(struct fp_ring *r);

/* True if a record waits in the receive ring (no side effect). */
bool fp_ring_pending(const struct fp_ring *r);

/* The doorbell to poll for POLLIN, and (user side, not in futex mode) how
 * to clear it after a wake-up. */
int fp_ring_bell(const struct fp_ring *r);
void fp_ring_bell_clear(struct fp_ring *r);

/* The fds a forked child must make inert (core/fork.h); -1 ends. */
void fp_ring_fds(const struct fp_ring *r, int out[2]);

/* Dispatch: the ring when the connection has one, else the socket. */
static inline int fp_link_send(struct fp_ring *r, int sock, const struct fp_tx *tx,
			       int64_t deadline)
{
	return r ? fp_ring_send(r, sock, tx, deadline) : fp_sock_ops.send(sock, tx, deadline);
}

static inline int fp_link_recv(struct fp_ring *r, int sock, uint8_t *buf, size_t bufsz,
			       uint32_t max_payload, struct fp_rx *rx, bool dontwait)
{
	return r ? fp_ring_recv(r, sock, buf, bufsz, max_payload, rx, dontwait)
		 : fp_sock_ops.recv(sock, buf, bufsz, max_payload, rx, dontwait);
}

#endif
