/*
 * Closing fds a peer passed us, without letting the peer hold the closer.
 *
 * The last close of a pipe's read or write end takes the pipe's lock, and
 * whoever holds another end of the pipe can keep that lock as long as it
 * likes (a splice() from an empty socket into the pipe sleeps with it
 * held); a FUSE file's close can wait on its daemon.  A filter side that
 * closed such an fd in its I/O path (a frame it drops, a check that fails)
 * would sleep there, under io_lock, for as long as the client wants.  So
 * every received fd but a shmem file (memfd, tmpfs) is closed by a closer
 * thread (may_block_on_close()).
 *
 * A close that waits holds its own thread, not the others' fds.  An fd goes
 * to an idle closer thread if there is one (the one idle the shortest
 * time, so that surplus ones reach FP_CLOSER_IDLE_S and end), else into a
 * FIFO queue that the closers drain as they come back.  A manager thread,
 * which never closes anything itself, watches the queue: when fds wait and
 * no close has finished for FP_CLOSER_STALL_NS, every closer is presumably
 * held, and it starts another (up to FP_CLOSER_THREADS_MAX).  So ordinary
 * traffic runs on one or two closers, even on a busy machine, and a peer
 * that holds one close delays the others' fds by milliseconds.  The queue
 * grows as needed: once the manager runs no fd is closed in place (only a
 * failed allocation does that, or a process that cannot start the manager).
 * Known gaps (docs/DESIGN.md, "Known limits"): a peer that holds
 * FP_CLOSER_THREADS_MAX closes at once makes later fds wait for it (open,
 * never on the caller's thread).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/clock.h"
#include "fltport/port.h"
#include "transport/transport.h"

#define FP_CLOSER_THREADS_MAX 64u
#define FP_CLOSER_IDLE_S 5
#define FP_CLOSER_STALL_NS (10 * (int64_t)1000000)  /* 10 ms */
#define FP_CLOSER_RETRY_NS (100 * (int64_t)1000000) /* at the cap, or no thread */
#define FP_CLOSER_INLINE 64u

/* An idle closer thread, waiting on its own condition for an fd. */
struct fp_closer_idle {
	pthread_cond_t cond;
	int fd; /* given to it, or -1 */
	struct fp_closer_idle *next;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t manager; /* the queue became non-empty */
	int inline_q[FP_CLOSER_INLINE];
	int *q; /* a ring: inline_q, or a heap array */
	unsigned head, n, cap;
	struct fp_closer_idle *idle; /* a stack: the last one idle on top */
	unsigned threads;            /* closer threads (the manager aside) */
	uint64_t done;               /* closes finished, ever */
	bool manager_running;
} closer = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.q = closer.inline_q,
	.cap = FP_CLOSER_INLINE,
};

static pthread_once_t closer_once = PTHREAD_ONCE_INIT;

static bool spawn(void *(*fn)(void *), void *arg);

/* Queue fd (lock held); false if there is no room and none can be made. */
static bool q_push(int fd)
{
	if (closer.n == closer.cap) {
		unsigned cap = closer.cap * 2;
		int *q = malloc(cap * sizeof(*q));

		if (!q)
			return false;
		for (unsigned i = 0; i < closer.n; i++)
			q[i] = closer.q[(closer.head + i) % closer.cap];
		if (closer.q != closer.inline_q)
			free(closer.q);
		closer.q = q;
		closer.cap = cap;
		closer.head = 0;
	}
	closer.q[(closer.head + closer.n) % closer.cap] = fd;
	closer.n++;
	return true;
}

static int q_pop(void)
{
	int fd = closer.q[closer.head];

	closer.head = (closer.head + 1) % closer.cap;
	closer.n--;
	return fd;
}

/* Take an idle closer off the stack (lock held). */
static void idle_unlink(struct fp_closer_idle *me)
{
	for (struct fp_closer_idle **pp = &closer.idle; *pp; pp = &(*pp)->next) {
		if (*pp == me) {
			*pp = me->next;
			return;
		}
	}
}

/* A closer: closes what it is given, then what is queued, then waits idle
 * (on top of the stack) and ends after FP_CLOSER_IDLE_S without work. */
static void *closer_main(void *arg)
{
	struct fp_closer_idle me = { .fd = (int)(intptr_t)arg };

	(void)pthread_setname_np(pthread_self(), "fltport-closer");
	fp_cond_init(&me.cond);
	pthread_mutex_lock(&closer.lock);
	for (;;) {
		int fd = me.fd;

		me.fd = -1;
		if (fd < 0 && closer.n > 0)
			fd = q_pop();
		if (fd >= 0) {
			pthread_mutex_unlock(&closer.lock);
			close(fd);
			pthread_mutex_lock(&closer.lock);
			closer.done++;
			continue;
		}
		me.next = closer.idle;
		closer.idle = &me;
		for (;;) {
			int rc = fp_cond_wait(&me.cond, &closer.lock,
					      fp_now() + FP_CLOSER_IDLE_S * (int64_t)1000000000);

			if (me.fd >= 0)
				break; /* given one: off the stack already */
			if (rc == ETIMEDOUT) {
				idle_unlink(&me);
				closer.threads--;
				pthread_mutex_unlock(&closer.lock);
				pthread_cond_destroy(&me.cond);
				return NULL;
			}
		}
	}
}

/* The manager: starts a closer when fds are queued and no close has
 * finished for FP_CLOSER_STALL_NS (every closer presumably held by its
 * close; closers that are merely slow, on a busy machine, still finish
 * some), or at once when there is none. */
static void *manager_main(void *arg)
{
	uint64_t seen = 0;
	int64_t since = 0; /* when `seen` was last seen to change */

	(void)arg;
	(void)pthread_setname_np(pthread_self(), "fltport-closem");
	pthread_mutex_lock(&closer.lock);
	for (;;) {
		int64_t now, nap = FP_CLOSER_RETRY_NS;

		if (closer.n == 0) {
			while (closer.n == 0)
				pthread_cond_wait(&closer.manager, &closer.lock);
			seen = closer.done;
			since = fp_now();
		}
		now = fp_now();
		if (closer.done != seen) {
			seen = closer.done;
			since = now;
		}
		if (closer.threads == 0 ||
		    (now - since >= FP_CLOSER_STALL_NS && closer.threads < FP_CLOSER_THREADS_MAX)) {
			int fd = closer.q[closer.head];

			if (spawn(closer_main, (void *)(intptr_t)fd)) {
				(void)q_pop(); /* the new closer's */
				closer.threads++;
				since = now; /* its turn to make progress */
				continue;
			}
			/* No thread: the fd stays first in line; retry later. */
		} else if (now - since < FP_CLOSER_STALL_NS) {
			nap = FP_CLOSER_STALL_NS - (now - since);
		}
		(void)fp_cond_wait(&closer.manager, &closer.lock, now + nap);
	}
	return NULL;
}

/* fork(): the lock is taken across it.  The child has no closer threads (a
 * later close starts them), and the parent's threads, which waited on the
 * condition variables, do not exist there: the lock and the conditions are
 * made new (reusing a condition would wait for those threads forever, as a
 * review reproduced with glibc 2.36).  The fds still queued stay open in the
 * child, as every fd it inherits: their numbers may be reused there, so the
 * child must not close them later (a review saw a child's /dev/null closed). */
static void closer_prepare(void)
{
	pthread_mutex_lock(&closer.lock);
}

static void closer_parent(void)
{
	pthread_mutex_unlock(&closer.lock);
}

static void closer_child(void)
{
	closer.head = closer.n = 0;
	closer.idle = NULL;
	closer.threads = 0;
	closer.manager_running = false;
	pthread_mutex_init(&closer.lock, NULL);
	fp_cond_init(&closer.manager);
}

static void closer_install(void)
{
	fp_cond_init(&closer.manager); /* CLOCK_MONOTONIC: a clock step is no stall */
	pthread_atfork(closer_prepare, closer_parent, closer_child);
}

/*
 * Whether closing fd could wait on someone else.  Closed at once: a shmem
 * file only (a memfd, a tmpfs file: F_GET_SEALS answers, and fails at once
 * on anything else without asking any file system).  Everything else goes
 * to a closer: a pipe (its lock), a socket (the fds queued in it are
 * released with it, pipes among them; a TCP socket with SO_LINGER waits),
 * a device, and any file of another file system, since a FUSE one (fuse,
 * or fuseblk on a block device) waits on its daemon at close, and telling
 * it apart would mean asking: fstat() and fstatfs() send the daemon a
 * request it need not answer.  Peer-supplied fds are closed on error and
 * drop paths only, so the closer's hop costs nothing that matters.
 */
static bool may_block_on_close(int fd)
{
	return fcntl(fd, F_GET_SEALS) < 0;
}

/* Start a detached thread with every signal blocked. */
static bool spawn(void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_t t;
	int rc;

	if (pthread_attr_init(&attr) != 0)
		return false;
	(void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&t, &attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return rc == 0;
}

void fp_close_received(int fd)
{
	bool taken = false;

	if (fd < 0)
		return;
	if (!may_block_on_close(fd)) {
		close(fd);
		return;
	}
	pthread_once(&closer_once, closer_install);
	pthread_mutex_lock(&closer.lock);
	if (closer.idle) {
		struct fp_closer_idle *w = closer.idle;

		closer.idle = w->next;
		w->fd = fd;
		pthread_cond_signal(&w->cond);
		taken = true;
	} else if ((closer.manager_running ||
		    (closer.manager_running = spawn(manager_main, NULL))) &&
		   q_push(fd)) {
		if (closer.n == 1)
			pthread_cond_signal(&closer.manager);
		taken = true;
	}
	pthread_mutex_unlock(&closer.lock);
	if (!taken)
		close(fd);
}

FLTPORT_API void fltport_close_fds(const int *fds, unsigned nfds)
{
	for (unsigned i = 0; fds && i < nfds; i++)
		fp_close_received(fds[i]);
}
