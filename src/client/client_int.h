/* User side internals. */
#ifndef FP_CLIENT_INT_H
#define FP_CLIENT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/fork.h"
#include "core/shared.h"
#include "core/spin.h"
#include "fltport/port.h"
#include "transport/ring.h"
#include "transport/transport.h"

#define FP_QMSG_INLINE 256u    /* payloads up to this size live in the node itself */
#define FP_QMSG_FREE_MAX 64u   /* nodes kept for reuse per connection */
#define FP_QMSG_BIG_MAX 16384u /* a node keeps a larger payload buffer up to this size ... */
#define FP_QMSG_BIG_KEEP 4u    /* ... on at most this many free nodes */

/* Blocking reads of a connection's socket end within this slice
 * (SO_RCVTIMEO, set at connect): a requester waits in recvmsg() in slices
 * (client.c, read_for()), and a thread entering fltport_run_completions()
 * gets the reader role from the receive thread within one. */
#define FP_BLOCK_SLICE_NS (100LL * 1000 * 1000)

/* A received message no reader has taken yet.  Nodes are reused
 * (conn->qfree), and so are their payload buffers (big), so a message
 * whose payload came inline in its frame costs no allocation. */
struct fp_qmsg {
	struct fp_qmsg *next;
	struct fp_rx rx; /* owned payload and fds; data may point into small[] or big */
	uint8_t *big;    /* the node's buffer for inline payloads above FP_QMSG_INLINE */
	uint32_t bigcap;
	uint8_t small[FP_QMSG_INLINE];
};

/* A waiting reader: a blocked fltport_get() (on its stack) or a posted
 * async get (heap, fn set). */
struct fp_reader {
	struct fp_reader *next, *prev, *cnext;
	void *buf;
	size_t cap;
	struct fltport_msg msg;
	int err;
	bool done;
	fltport_get_fn fn;
	void *arg;
	uint64_t token;
	_Atomic uint32_t wake; /* blocking readers: 1 once done, 2 handed the reader role */
};

/* A request waiting for its response (on the requester's stack). */
struct fp_reqw {
	struct fp_reqw *next;
	uint64_t id;
	void *out;
	size_t cap;
	size_t out_len;
	uint32_t status;
	int err;
	bool done;
	bool waiting;          /* sent, now in await(): it may be handed the reader role */
	_Atomic uint32_t wake; /* 1 once done or the connection ended, 2 handed the role */
};

/* Blocked callers to wake once the lock is dropped.  One woken while the
 * waker still holds the lock would block on the lock at once: two more
 * context switches per message when both threads share a CPU.  The waker
 * sets the word under the lock and calls FUTEX_WAKE after the unlock; by
 * then the waiter may have seen the word and left, and the wake-up goes to
 * whatever waits at that address now (a spurious wake-up, which every
 * futex waiter tolerates).  When the list is full the wake-up happens
 * under the lock. */
#define FP_WAKES_MAX 8u
struct fp_wakes {
	_Atomic uint32_t *w[FP_WAKES_MAX];
	unsigned n;
};

/* The last message taken from each slot, for replies by id. */
struct fp_taken {
	uint64_t id;
	uint32_t cap;
	bool replyable;
};

/*
 * The reader role (client.c, "Who reads"): the one thread allowed to read
 * the socket.  The receive thread takes it only while something needs
 * frames read with no caller inside the library (posted async gets, a user
 * of fltport_conn_fd()); otherwise a thread blocked in fltport_get() or
 * fltport_request() takes it and reads for itself (and for the others).
 */
enum fp_role {
	FP_ROLE_NONE,
	FP_ROLE_RX,
	FP_ROLE_CALLER,
	/* The last thread in fltport_run_completions() left with async gets
	 * still posted: it is likely back soon (a completion port's loop), so
	 * the role waits for it for FP_AWAY_NS before the receive thread takes
	 * it; any caller may take it meanwhile. */
	FP_ROLE_AWAY,
};

/*
 * Where a thread in fltport_run_completions() waits on the socket transport
 * (client.c, "parked"): an epoll set of its own holding the socket with
 * EPOLLEXCLUSIVE, so that a frame wakes one parked thread and no other, and
 * an eventfd for the wake-ups that concern this thread alone.  Made on first
 * use and kept by the connection for the next thread (never freed before
 * the connection).
 */
struct fp_pumpwait {
	struct fp_pumpwait *next_free;
	struct fp_pumpwait *next_all;
	int ep;
	int efd;
};

/* A thread in fltport_run_completions() (on its stack). */
struct fp_pump {
	struct fp_pump *next;
	_Atomic uint32_t wake;  /* 1: look again (completions handed over, the
				 * end); 2: handed the reader role */
	bool woken;             /* fltport_wake_completions() (under the lock) */
	bool parked;            /* in epoll_wait() on pw: woken through pw->efd */
	bool handed;            /* parked, told to read a frame (pass_on()) */
	struct fp_pumpwait *pw; /* NULL: waits as a reader-role holder or on wake */
};

struct fltport_conn {
	struct fp_forkreg fork; /* first: in_child() casts */
	int fd;
	int evfd;
	int kickfd; /* wakes a caller holding the reader role from its poll()
		     * (-1 on rings in futex mode: fp_ring_kick()) */
	const struct fp_transport_ops *tp;
	struct fp_ring *ring; /* the shared-memory transport, or NULL (set at connect) */
	pthread_t rx_thread;
	struct fltport_peer peer;
	struct fp_page *page;
	size_t page_size;
	uint32_t nslots;
	uint32_t max_message;
	uint8_t *rxbuf; /* the reader role's */
	uint8_t *area;  /* the payload area (FP_F_AREA), mapped by the reader role */
	size_t area_size;

	pthread_mutex_t lock; /* everything below */
	enum fp_role role;
	_Atomic uint32_t *role_owner; /* FP_ROLE_CALLER: the holder's wake word */
	pthread_cond_t rx_cond;       /* the receive thread waits here for work */
	unsigned nasync;              /* posted async gets among the readers */
	bool polled;                  /* fltport_conn_fd() was called */
	bool rcvtimeo;                /* SO_RCVTIMEO of FP_BLOCK_SLICE_NS set (connect) */
	struct fp_spin block_spin;    /* a requester's, before recvmsg() blocks */
	struct fp_spin get_spin;      /* a get's: its waits are long, kept apart */
	struct fp_pump *pumps;        /* threads in fltport_run_completions() */
	unsigned npump;
	struct fp_pumpwait *pw_free, *pw_all; /* their epoll sets (socket transport) */
	bool pw_lost;                         /* a frame woke a thread that left it unread */
	unsigned nparked;                     /* pumps in epoll_wait() now */
	bool rx_blocking;   /* the role's holder is in a blocking recvmsg() (read_for()) */
	bool pumped;        /* one has been: the receive thread reads kickably */
	bool pump_wake;     /* a fltport_wake_completions() with nobody inside */
	bool rx_timed;      /* the receive thread waits for FP_ROLE_AWAY's end */
	int64_t away_since; /* FP_ROLE_AWAY since */
	struct fp_reader *cb_pending; /* completions read by a caller, for the receive thread */
	struct fp_taken *taken;
	struct fp_qmsg *qhead, *qtail;
	size_t qlen;
	struct fp_qmsg *qfree; /* reusable nodes */
	unsigned nqfree;
	unsigned nqbig; /* of those, how many keep a big buffer */
	struct fp_reader *rhead, *rtail;
	unsigned nreaders;
	struct fp_reqw *reqs;
	bool ended;   /* the connection is over */
	bool closing; /* fltport_close() called */
	bool ev_set;  /* evfd is readable */
	uint64_t next_req, next_token;
	atomic_uint calls; /* threads inside the API: counted before locking */
	pthread_cond_t calls_cond;
	bool free_on_exit; /* fltport_close() ran on the receive thread: it frees */
};

/* Entering and leaving the API: fltport_close() waits until every call
 * that had begun has left.  A call counts itself before it takes the lock,
 * so one still waiting for the lock is waited for too; it leaves under the
 * lock, so that fltport_close() frees nothing a leaver still touches. */
static inline void fp_client_enter(struct fltport_conn *c)
{
	atomic_fetch_add_explicit(&c->calls, 1, memory_order_relaxed);
}

static inline void fp_client_leave(struct fltport_conn *c) /* lock held */
{
	if (atomic_fetch_sub_explicit(&c->calls, 1, memory_order_relaxed) == 1 &&
	    (c->closing || c->ended)) {
		pthread_cond_broadcast(&c->calls_cond);
		pthread_cond_signal(&c->rx_cond); /* its last run of handed-over completions */
	}
}

/* client.c, for connect.c */
void *fp_client_rx_main(void *arg);
void fp_client_fail_all(struct fltport_conn *c, struct fp_reader **cbs);
void fp_client_run_callbacks(struct fp_reader *cbs);
void fp_client_conn_free(struct fltport_conn *c);

/* Wake every blocked send and receive of the connection, on both sides. */
static inline void fp_client_shutdown_link(struct fltport_conn *c)
{
	c->tp->shutdown(c->fd);
	if (c->ring)
		fp_ring_shutdown(c->ring);
}
#endif
