/*
 * Transports move frames between the two ends of a connection.  Today there
 * is one, SOCK_SEQPACKET Unix sockets (sock.c); a shared-memory data path
 * will sit behind the same table later, with the socket kept for control,
 * fds and death detection.
 *
 * Contract of every operation:
 *   send   — may block until `deadline` (absolute, FP_NEVER) for space in the
 *            peer's queue; never raises SIGPIPE; safe to call from several
 *            threads at once on one connection (frames never interleave).
 *            Returns 0, -ETIMEDOUT, -ENOTCONN (peer gone), -ENOMEM, or
 *            another -errno.  Borrowed fds are duplicated by the kernel.
 *   recv   — one frame, non-blocking when `dontwait`.  One thread at a time
 *            per connection.  Returns 0, -EAGAIN, -ENOTCONN (orderly end or
 *            reset), -EBADMSG (malformed: the caller drops the peer),
 *            -EPROTO (another wire version; rx->h has version and type).
 *            Every received fd ends up in rx (or is closed on error).
 *   shutdown — wakes every blocked send/recv on both ends; idempotent.
 */
#ifndef FP_TRANSPORT_H
#define FP_TRANSPORT_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/frame.h"
#include "fltport/port.h"

/* A received frame.  Payload: inline (data), or in a payload fd: a sealed
 * memfd (read at any offset, or mapped) or a pipe (read once, in order). */
struct fp_rx {
	struct fp_hdr h;
	const uint8_t *data; /* inline payload, or NULL */
	uint8_t *owned;      /* data's storage when copied out of the rx buffer */
	int pfd;             /* payload fd or -1 */
	bool pipe;           /* pfd is a pipe: fp_rx_copy() works once */
	int fds[FLTPORT_MAX_FDS];
	unsigned nfds;
	int page_fd; /* CONNECT_RESULT: the state page, or -1; the rings' fds
		      * follow in fds[] (no user fds there) */
	/* FP_F_AREA: data points into the connection's payload area, and its
	 * busy word is released (set to 0) with the frame (fp_rx_release). */
	_Atomic uint32_t *area_busy;
};

/*
 * The payload area of a connection, filter side (FP_F_AREA, frame.h): made
 * on the first payload above FP_INLINE_MAX that goes filter → user, as large
 * as the largest payload the connection carries (a sparse file: pages exist
 * once written), and reused by every later one while the user side has
 * released it — one copy in, one copy out, no pages allocated or fds made
 * per message.  While the user side still holds it (a message not yet
 * taken), a payload goes in a pipe as before.  The user side cannot shrink
 * it (sealed); whatever it writes there can only spoil its own messages.
 */
struct fp_area {
	pthread_mutex_t lock;
	uint32_t cap;   /* payload bytes it can hold (the connection's max_message) */
	bool wanted;    /* the user side asked for it at connect (FP_CAP_AREA) */
	bool failed;    /* could not be made: pipes from now on */
	bool in_use;    /* a sender fills it or sends its frame */
	bool delivered; /* the user side has its fd */
	int fd;         /* -1 until made */
	uint8_t *map;   /* FP_AREA_DATA + cap bytes */
	size_t map_size;
};

void fp_area_init(struct fp_area *a, uint32_t cap, bool wanted);
void fp_area_free(struct fp_area *a);

/* A sender takes the area for a payload of len bytes: 0 (the payload goes
 * to a->map + FP_AREA_DATA; *newfd is the area's memfd to send along the
 * first time, else -1), or -EBUSY / another -errno (use a pipe).  Every 0 is
 * followed by fp_area_done() with whether the frame went out. */
int fp_area_claim(struct fp_area *a, uint32_t len, int *newfd);
void fp_area_done(struct fp_area *a, bool sent, bool with_fd);

struct fp_tx {
	const struct fp_hdr *h; /* len, flags set by the caller (MEMFD set by send) */
	const void *payload;
	const int *fds;
	unsigned nfds;
	int page_fd;        /* -1, or the state page for CONNECT_RESULT */
	const int *ctl_fds; /* CONNECT_RESULT: more fds after the page (the rings) */
	unsigned nctl;
	struct fp_area *area; /* MESSAGE, RESPONSE: the connection's, or NULL */
};

struct fp_transport_ops {
	const char *name;
	int (*send)(int fd, const struct fp_tx *tx, int64_t deadline);
	/* 0 (a frame in *rx), -EAGAIN, -ENOTCONN, -EMFILE (a whole frame
	 * whose fds this process could not take: rx->h is its header, rx holds
	 * nothing to release; the fds are closed), or another -errno. */
	int (*recv)(int fd, uint8_t *buf, size_t bufsz, uint32_t max_payload, struct fp_rx *rx,
		    bool dontwait);
	void (*shutdown)(int fd);
};

extern const struct fp_transport_ops fp_sock_ops;

/* A local shortage (fds, memory, buffers), not a dead peer: callers pass it
 * through instead of reporting a disconnect. */
static inline bool fp_resource_error(int rc)
{
	return rc == -EMFILE || rc == -ENFILE || rc == -ENOMEM || rc == -ENOBUFS;
}

/* Seal a payload memfd (shrink, grow, write, seal), trying again while the
 * kernel refuses for pages still referenced (transient: sock.c).  0,
 * -ETIMEDOUT (the deadline came first), -ENOBUFS (still refused after
 * FP_SEAL_RETRY_NS) or another -errno. */
#define FP_SEAL_RETRY_NS (2 * (int64_t)1000000000)
int fp_payload_seal(int fd, int64_t deadline);

void fp_rx_init(struct fp_rx *rx);

/* Whether the socket *(const int *)fdp has a frame or its end to read, without
 * taking it (a core/spin.h readiness test). */
bool fp_sock_readable(const void *fdp);

/* Copy the first n bytes of the payload to dst (n ≤ h.len).  0 or -errno.
 * A payload in a pipe can be copied once: the bytes after n are dropped. */
int fp_rx_copy(const struct fp_rx *rx, void *dst, size_t n);

/* Make an inline payload survive the reuse of the receive buffer. */
int fp_rx_own(struct fp_rx *rx);

/* Close an fd received from the peer (-1: nothing).  A pipe's or a FUSE
 * file's last close can wait on whoever holds its other end or runs its
 * daemon: every fd but a shmem file is closed by a closer thread
 * (closer.c); a shmem file at once. */
void fp_close_received(int fd);

/* Close every fd in rx (payload fd, user fds, page fd), free owned data,
 * and release the payload area it held. */
void fp_rx_release(struct fp_rx *rx);

/* User side: a frame with FP_F_AREA read (lock-free; one reader at a time).
 * *area / *size: the connection's mapping of the area, set from the frame's
 * memfd with FP_F_AREA_NEW (taken from rx; an area comes once).  On success
 * rx's payload is the area's (data, area_busy).  0 or -EBADMSG (the caller
 * releases rx and ends the connection). */
int fp_rx_bind_area(struct fp_rx *rx, uint8_t **area, size_t *size);

/* Move the user fds out of rx (the receiver now owns them). */
unsigned fp_rx_take_fds(struct fp_rx *rx, int out[FLTPORT_MAX_FDS]);

#endif
