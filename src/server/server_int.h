/* Filter side internals: the server port and its client ports. */
#ifndef FP_SERVER_INT_H
#define FP_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "core/fork.h"
#include "core/shared.h"
#include "mgmt/mgmt_int.h"
#include "fltport/port.h"
#include "core/spin.h"
#include "transport/ring.h"
#include "transport/transport.h"

#define FP_MAX_HANDSHAKES 64u         /* admitted peers that have not sent CONNECT yet */
#define FP_MAX_REQUESTS 1024u         /* queued + running requests per connection */
#define FP_POLL_GRACE_NS 1000000000LL /* a poll send's message expires after 1 s (§8.17) */
#define FP_REPLY_GRACE_NS \
	2000000000LL /* a reply committed before the deadline may arrive this late */
#define FP_RESPONSE_STALL_NS 10000000000LL /* a peer that takes no response for 10 s is dropped */
#define FP_HANDSHAKE_NS 5000000000LL       /* a peer must send CONNECT within 5 s of accept */
#define FP_MAX_FDS_HELD \
	64u /* fds (user fds + payload memfds) of one connection's queued requests */
#define FP_ACCEPT_BACKOFF_MIN_NS 10000000LL   /* out of fds: stop accepting for 10 ms ... */
#define FP_ACCEPT_BACKOFF_MAX_NS 1000000000LL /* ... doubling up to 1 s */

enum fp_ev_kind { FP_EV_LISTEN = 1, FP_EV_WAKE, FP_EV_CLIENT, FP_EV_PARK_TIMER };

/* Counters of a port and of each connection (fltport_port_stats; relaxed
 * atomics, bumped beside the work they count). */
struct fp_port_counters {
	atomic_uint_fast64_t connects, refused, disconnects, sent, sent_bytes, replies, timed_out,
		cancelled, received, received_bytes;
	atomic_uint pending;
};

/* Client port states; transitions under srv->lock, through set_state(). */
enum fp_cstate {
	FP_C_HANDSHAKE,  /* accepted, in epoll, waiting for CONNECT */
	FP_C_CONNECTING, /* connect callback queued or running; not in epoll */
	FP_C_ACTIVE,     /* accepted by the callback, in epoll */
	FP_C_DEAD,       /* ended; disconnect callback queued or done */
};

/* One fltport_send() waiting for its reply; lives on the sender's stack and
 * is reachable through client->pending[slot] under client->lock. */
struct fp_pending {
	uint64_t id;
	bool wants_reply;
	void *reply;
	size_t reply_cap;
	bool replied;
	bool overflow;
	size_t reply_len;
	uint32_t reply_status;
	pthread_cond_t cond;
};

enum fp_job_kind { FP_JOB_CONNECT, FP_JOB_DISCONNECT, FP_JOB_REQUEST };

#define FP_JOB_INLINE 4096u /* request payloads up to this size live in the job */
#define FP_JOB_FREE_MAX 64u /* jobs kept for reuse per server */
#define FP_OUT_KEEP 4096u   /* a worker keeps an output buffer up to this size */

struct fp_job {
	struct fp_job *next;
	enum fp_job_kind kind;
	struct fltport_client *c; /* holds a reference */
	struct fp_rx rx;          /* CONNECT context / REQUEST payload (owned) */
	unsigned fds_held;        /* REQUEST: fds counted in c->fds_held */
	void *cookie;             /* REQUEST: c's, read when it was queued */
	uint8_t small[FP_JOB_INLINE];
};

struct fp_queue {
	struct fp_job *head, *tail;
};

struct fltport_client {
	int ev_kind; /* FP_EV_CLIENT; first member: epoll data points here */
	struct fp_forkreg fork;
	struct fltport_server *srv;
	struct fltport_client *prev, *next; /* srv->clients, under srv->lock */
	struct fltport_client *kill_next;   /* srv->killq */
	struct fltport_client *add_next;    /* srv->addq (a connection can be on both) */
	struct fltport_client *again_next;  /* srv->againq, under io_lock */
	bool again_queued;                  /* under io_lock */
	/* Parking (server.c, park()): written under io_lock, read anywhere. */
	atomic_bool unwatched;    /* out of the epoll set's readiness (no EPOLLIN) */
	_Atomic int64_t cb_since; /* the parked thread runs its callback since (0: not) */
	bool rcvtimeo;            /* under io_lock: SO_RCVTIMEO set for park() */
	int fd;
	struct fp_area area;  /* filter → user payloads (transport.h): own lock */
	struct fp_ring *ring; /* the shared-memory transport, or NULL: set before
			       * `ready`, freed with the client */
	atomic_int refs;

	/* under srv->lock */
	enum fp_cstate state;
	bool killed, kill_queued, user_ref;
	unsigned inflight;       /* requests queued or running */
	unsigned fds_held;       /* fds those requests hold (FP_MAX_FDS_HELD) */
	struct fp_job *disc_job; /* disconnect job, queued when inflight drops to 0 */
	void *cookie;

	/* handshake list, I/O thread only: oldest first */
	struct fltport_client *hs_prev, *hs_next;
	int64_t hs_deadline;

	struct fltport_peer peer; /* immutable after accept */
	/* management plane: set when the connect callback accepted it */
	uint64_t conn_id;
	int64_t since_ns;
	char *exe;
	struct fp_port_counters cnt;

	/* under lock */
	pthread_mutex_t lock;
	atomic_bool dead; /* written under lock; read without it by waiting senders */
	bool ready;       /* CONNECT_RESULT sent: messages may follow */
	struct fp_page *page;
	size_t page_size;
	int page_fd;
	uint32_t nslots;
	struct fp_pending **pending; /* per slot */
	uint32_t *freelist;
	uint32_t nfree;
	uint64_t next_seq;
	struct fp_spin spin; /* senders waiting on a slot word (atomic: no lock) */
	pthread_cond_t slot_cond;
};

struct fltport_server {
	int listen_kind; /* FP_EV_LISTEN */
	struct fp_forkreg fork;
	int wake_kind; /* FP_EV_WAKE */
	struct sockaddr_un addr;
	socklen_t addrlen;
	dev_t dev;
	ino_t ino;
	struct fltport_server_config cfg; /* access arrays point to our copies */
	uid_t *uids;
	gid_t *gids;
	uint32_t max_message;
	int lfd, epfd, wakefd;
	pthread_t io_thread, ctl_thread, *workers;
	unsigned nworkers;
	const struct fp_transport_ops *tp;
	uint8_t *rxbuf; /* under io_lock */

	/* under io_lock */
	struct fltport_client *hs_head, *hs_tail; /* handshakes, oldest first */
	int64_t accept_rearm;                     /* 0, or when to listen again after EMFILE */
	int64_t accept_backoff;                   /* current backoff */

	pthread_mutex_t lock;
	pthread_cond_t ctl_cond, work_cond, state_cond;
	struct fp_queue ctlq, workq;
	struct fp_job *jfree; /* reusable jobs */
	unsigned njfree;
	struct fltport_client *clients;
	struct fltport_client *killq; /* to retire (I/O thread) */
	struct fltport_client *addq;  /* accepted: to add to epoll (I/O thread) */
	int nconn;                    /* connections holding a max_connections slot */
	uint64_t next_conn_id;        /* under lock */
	/* connects, refused, disconnects; and the per-connection counters of
	 * connections already freed (added under lock by fp_client_free):
	 * live connections count only in their own, so that senders on
	 * different connections never write one shared cache line */
	struct fp_port_counters cnt;
	struct fp_mgmt_reg mreg; /* manage.c */
	int mgmt_state;          /* under lock: FP_MGMT_OFF / _ON / _LEAVING */
	unsigned nhandshake;     /* clients in FP_C_HANDSHAKE */
	bool closed;             /* no longer listening */
	bool lfd_closed;
	bool stopping; /* destroy: drop everything */
	bool quit;     /* threads exit */
	/* Hints read without the lock, written under it (pool_note()):
	 * pool_look — workq not empty, or quit: a pool thread looks under the
	 * lock; ending — quit or stopping: an I/O round reads them under it.
	 * A stale false is harmless: each change is followed by a wake-up
	 * (fp_server_wake) or by a pool thread's return from a callback,
	 * which looks again. */
	atomic_bool pool_look, ending;
	unsigned busy;                /* pool threads running a callback (≤ cfg.workers) */
	bool parked;                  /* a pool thread waits on one connection (park()) */
	struct fltport_client *cfree; /* recycled client memory (fp_client_new) */

	/* The I/O state, under io_lock (io_round() in server.c): the
	 * handshake list above, the receive buffer, the timers, and these. */
	pthread_mutex_t io_lock;
	struct fltport_client *againq; /* frames left unread (edge-triggered) */
	/* The ring connection of the last one-event batch (a reference held),
	 * watched for a little while before epoll_wait (core/spin.h), by one
	 * thread at a time (spinning). */
	struct fltport_client *spin_c;
	bool spinning;
	struct fp_spin spin;
	/* Parking's watchdog (park()): a timerfd in the epoll set, armed while
	 * a thread is parked on park_c. */
	int park_tfd;
	int park_timer_kind; /* FP_EV_PARK_TIMER */
	struct fltport_client *park_c;
	struct fp_spin park_spin; /* the parked thread's, before recvmsg() blocks */
};

/* cport.c */
struct fltport_client *fp_client_new(struct fltport_server *srv, int fd);
void fp_client_ref(struct fltport_client *c);
bool fp_client_tryref(struct fltport_client *c);
void fp_client_unref(struct fltport_client *c);
void fp_client_free(struct fltport_client *c);
int fp_client_setup_page(struct fltport_client *c, uint32_t nslots);
void fp_client_mark_dead(struct fltport_client *c);
void fp_client_kill(struct fltport_client *c);
void fp_client_shutdown(struct fltport_client *c);
void fp_client_deliver_reply(struct fltport_client *c, const struct fp_rx *rx);

/* manage.c */
enum { FP_MGMT_OFF, FP_MGMT_ON, FP_MGMT_LEAVING };
void fp_port_manage_register(struct fltport_server *srv, const char *name);
void fp_port_manage_unregister(struct fltport_server *srv);
char *fp_port_peer_exe(pid_t pid); /* before srv->lock: reads /proc */
void fp_port_count_connect(struct fltport_server *srv, struct fltport_client *c, char *exe);
void fp_port_count_retire(struct fltport_server *srv, struct fltport_client *c); /* lock held */
void fp_port_count_send(struct fltport_client *c, size_t len, int rc, bool wants_reply);

static inline void fp_count(atomic_uint_fast64_t *a, uint64_t n)
{
	atomic_fetch_add_explicit(a, n, memory_order_relaxed);
}

/* server.c */
void fp_server_wake(struct fltport_server *srv);
void fp_server_rewatch(struct fltport_server *srv, struct fltport_client *c);
void fp_queue_push(struct fp_queue *q, struct fp_job *j);
struct fp_job *fp_queue_pop(struct fp_queue *q);

#endif
