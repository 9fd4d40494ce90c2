/*
 * FLTPORT_DEBUG lines: formatted by the caller, queued in a bounded ring,
 * written to stderr by a drain thread of their own.
 *
 * Why a ring and a thread: the callers include the threads that must never
 * wait (the server's I/O thread, receive threads, the filter's reader,
 * workers and deadline thread).  A line used to be an fprintf on the caller's
 * thread; with stderr on a pipe nobody reads, the first line blocked a
 * filter worker, then the deadline thread, and every open on the marked file
 * system waited (issue 7, defect 6).  Now a caller formats on its own stack,
 * takes `R.lock` for one memcpy and returns: when the ring is full the line
 * is dropped and counted, never waited for.  Only the drain thread blocks on
 * stderr, with write(2) (writev), never stdio, whose FILE lock a blocked
 * writer would hold against everyone else.
 *
 * Locking: R.lock is a leaf (nothing is called under it that takes another
 * lock or blocks).  It guards head, tail and the drain state.  Slots in
 * [head, tail) belong to the drain thread, which reads them without the
 * lock and hands them back by advancing head under it; the others belong to
 * callers, who fill them under the lock.
 *
 * fork(): a pthread_atfork handler holds R.lock across fork, so the child's
 * copy is consistent; the child has no drain thread, so it forgets the
 * parent's queued lines (the parent writes them) and starts a drain thread
 * of its own on its first line.  Its condition variables are reinitialised:
 * the parent's drain thread may have been recorded as a waiter, and in the
 * child nobody would ever leave.
 */
#include "core/debug.h"

#include <fltport/port.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define FP_DEBUG_SLOTS 128 /* lines queued at most (64 KiB, static) */
#define FP_DEBUG_LINE 512  /* bytes per line, newline included; longer is cut */
#define FP_DEBUG_BATCH 16  /* lines per writev */
/* At exit, how long the drain thread is given to write what is queued. */
#define FP_DEBUG_EXIT_NS (250 * 1000000LL)

struct fp_debug_slot {
	size_t len;
	char text[FP_DEBUG_LINE];
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t more;    /* the drain thread waits: lines queued */
	pthread_cond_t drained; /* fp_debug_flush waits: head caught up with tail */
	uint64_t head, tail;    /* lines written / queued so far */
	bool ready;             /* the conditions are initialised */
	bool draining;          /* a drain thread exists (or is being started) */
	bool idle;              /* it waits on `more` */
	struct fp_debug_slot slot[FP_DEBUG_SLOTS];
} R = { .lock = PTHREAD_MUTEX_INITIALIZER };

static _Atomic uint64_t dropped;
static pthread_once_t once = PTHREAD_ONCE_INIT;

bool fp_debug_on(void)
{
	const char *v = getenv("FLTPORT_DEBUG");

	return v && strcmp(v, "1") == 0;
}

uint64_t fltport_debug_dropped(void)
{
	return atomic_load_explicit(&dropped, memory_order_relaxed);
}

/* `drained` waits with a deadline on the monotonic clock. */
static void init_conds(void)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&R.drained, &a);
	pthread_condattr_destroy(&a);
	pthread_cond_init(&R.more, NULL);
}

static void before_fork(void)
{
	pthread_mutex_lock(&R.lock);
}

static void after_fork_parent(void)
{
	pthread_mutex_unlock(&R.lock);
}

static void after_fork_child(void)
{
	R.head = R.tail;
	R.draining = false;
	R.idle = false;
	init_conds();
	pthread_mutex_unlock(&R.lock);
}

/* Exit: the drain thread gets a bounded time to write what is queued; if
 * stderr is stuck, the rest is lost and exit goes on.  Not O_NONBLOCK on
 * stderr for a last write of our own: that flag belongs to the open file
 * description, which the shell and other processes share, so even setting
 * it briefly could make their writes fail with EAGAIN. */
static void flush_at_exit(void)
{
	fp_debug_flush(FP_DEBUG_EXIT_NS);
}

static void setup(void)
{
	pthread_mutex_lock(&R.lock);
	init_conds();
	R.ready = true;
	pthread_mutex_unlock(&R.lock);
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
	atexit(flush_at_exit);
}

/* Write iov[0..n) to stderr, waiting as long as it takes.  Returns how many
 * lines were not written completely (0, or the rest after an error: stderr
 * closed, a pipe without reader, ...).  Only the drain thread calls it. */
static unsigned write_lines(struct iovec *iov, unsigned n)
{
	while (n > 0) {
		ssize_t w = writev(STDERR_FILENO, iov, (int)n);

		if (w < 0 && errno == EAGAIN) { /* someone made stderr O_NONBLOCK */
			struct pollfd p = { .fd = STDERR_FILENO, .events = POLLOUT };

			poll(&p, 1, -1);
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return n;
		for (; n > 0 && (size_t)w >= iov->iov_len; iov++, n--)
			w -= (ssize_t)iov->iov_len;
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Under R.lock: the queued lines from head, at most FP_DEBUG_BATCH and
 * PIPE_BUF bytes (a write to a pipe that size is atomic: our lines never
 * interleave with another writer's). */
static unsigned take_batch(struct iovec *iov)
{
	size_t bytes = 0;
	unsigned n = 0;

	while (n < FP_DEBUG_BATCH && R.head + n != R.tail) {
		struct fp_debug_slot *s = &R.slot[(R.head + n) % FP_DEBUG_SLOTS];

		if (n > 0 && bytes + s->len > PIPE_BUF)
			break;
		iov[n].iov_base = s->text;
		iov[n].iov_len = s->len;
		bytes += s->len;
		n++;
	}
	return n;
}

static void *drain_main(void *arg)
{
	struct iovec iov[FP_DEBUG_BATCH];

	pthread_mutex_lock(&R.lock);
	for (;;) {
		unsigned n, lost;

		while (R.head == R.tail) {
			R.idle = true;
			pthread_cond_wait(&R.more, &R.lock);
		}
		R.idle = false;
		n = take_batch(iov);
		pthread_mutex_unlock(&R.lock);
		lost = write_lines(iov, n);
		if (lost)
			atomic_fetch_add_explicit(&dropped, lost, memory_order_relaxed);
		pthread_mutex_lock(&R.lock);
		R.head += n;
		if (R.head == R.tail)
			pthread_cond_broadcast(&R.drained);
	}
	return NULL;
}

/* With every signal blocked: a signal meant for the application never
 * lands on our thread, and a SIGPIPE from writing to a pipe without reader
 * stays pending here instead of killing the process (the write fails with
 * EPIPE and the lines are counted as dropped). */
static void start_drain(void)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	sigfillset(&all);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&t, &attr, drain_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0) { /* the queued lines wait; the next line tries again */
		pthread_mutex_lock(&R.lock);
		R.draining = false;
		pthread_mutex_unlock(&R.lock);
	}
}

static void queue(const char *line, size_t len)
{
	bool start = false;

	pthread_once(&once, setup);
	pthread_mutex_lock(&R.lock);
	if (R.tail - R.head == FP_DEBUG_SLOTS) {
		pthread_mutex_unlock(&R.lock);
		atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
		return;
	}
	memcpy(R.slot[R.tail % FP_DEBUG_SLOTS].text, line, len);
	R.slot[R.tail % FP_DEBUG_SLOTS].len = len;
	R.tail++;
	if (!R.draining)
		R.draining = start = true;
	else if (R.idle)
		pthread_cond_signal(&R.more);
	pthread_mutex_unlock(&R.lock);
	if (start)
		start_drain();
}

void fp_debug_vtag(const char *tag, const char *fmt, va_list ap)
{
	char line[FP_DEBUG_LINE];
	int n = snprintf(line, sizeof(line), "fltport[%s%d]: ", tag, (int)getpid());
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	size_t len = (size_t)n + (size_t)(m > 0 ? m : 0);

	if (len > sizeof(line) - 1)
		len = sizeof(line) - 1; /* cut, room kept for the newline */
	line[len++] = '\n';
	queue(line, len);
}

void fp_debug(const char *fmt, ...)
{
	va_list ap;

	if (!fp_debug_on())
		return;
	va_start(ap, fmt);
	fp_debug_vtag("", fmt, ap);
	va_end(ap);
}

bool fp_debug_flush(int64_t timeout_ns)
{
	struct timespec dl;
	bool done;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += (time_t)(timeout_ns / 1000000000);
	dl.tv_nsec += (long)(timeout_ns % 1000000000);
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&R.lock);
	while (R.ready && R.draining && R.head != R.tail && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&R.drained, &R.lock, &dl);
	done = R.head == R.tail;
	pthread_mutex_unlock(&R.lock);
	return done;
}
