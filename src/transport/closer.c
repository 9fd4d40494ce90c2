/*
 * Closing fds a peer passed us, without letting the peer hold the closer.
 *
 * The last close of a pipe's read or write end takes the pipe's lock, and
 * whoever holds another end of the pipe can keep that lock as long as it
 * likes (a splice() from an empty socket into the pipe sleeps with it
 * held); a FUSE file's close can wait on its daemon.  A filter side that
 * closed such an fd in its I/O path (a frame it drops, a check that fails)
 * would sleep there, under io_lock, for as long as the client wants.  So a
 * received fd that is a FIFO, a socket or a FUSE file is closed by a thread
 * of its own; every other kind is closed at once.  Beyond FP_CLOSER_MAX fds
 * waiting for it (a client holding one lock and sending pipe after pipe),
 * fds are closed in place again: the bound is on what a client can make us
 * keep open.  Known gaps (docs/DESIGN.md, "Known limits"): that bound, an
 * fstat() that itself waits on a FUSE daemon, and the compat layer's
 * FltSendMessage trampoline, which closes its fds itself.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "transport/transport.h"

#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

#define FP_CLOSER_MAX 4096u

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int fds[FP_CLOSER_MAX];
	unsigned n;
	bool running; /* this process has the thread */
} closer = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static pthread_once_t closer_once = PTHREAD_ONCE_INIT;

static void *closer_main(void *arg)
{
	(void)arg;
	(void)pthread_setname_np(pthread_self(), "fltport-closer");
	pthread_mutex_lock(&closer.lock);
	for (;;) {
		int fd;

		while (closer.n == 0)
			pthread_cond_wait(&closer.cond, &closer.lock);
		fd = closer.fds[--closer.n];
		pthread_mutex_unlock(&closer.lock);
		close(fd);
		pthread_mutex_lock(&closer.lock);
	}
	return NULL;
}

/* fork(): the lock is taken across it.  The child has no closer thread (a
 * later close starts one, which also closes the fds still waiting), and the
 * parent's thread, which waited on the condition variable, does not exist
 * there: the lock and the condition are made new (reusing the condition
 * would wait for that thread forever, as a review reproduced with glibc
 * 2.36). */
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
	closer.running = false;
	pthread_mutex_init(&closer.lock, NULL);
	pthread_cond_init(&closer.cond, NULL);
}

static void closer_install(void)
{
	pthread_atfork(closer_prepare, closer_parent, closer_child);
}

/* Whether closing fd could wait on someone else: a pipe's other end (its
 * lock), a socket (the fds queued in it are released with it, pipes among
 * them; a TCP socket with SO_LINGER waits), a FUSE file (its daemon), or an
 * fd we cannot even fstat (a FUSE mount of another user). */
static bool may_block_on_close(int fd)
{
	struct statfs sfs;
	struct stat st;

	if (fstat(fd, &st) != 0)
		return true;
	if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
		return true;
	return fstatfs(fd, &sfs) != 0 || sfs.f_type == FUSE_SUPER_MAGIC;
}

/* Start the thread (lock held); false if it cannot run. */
static bool closer_start(void)
{
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_t t;
	int rc;

	if (closer.running)
		return true;
	if (pthread_attr_init(&attr) != 0)
		return false;
	(void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* no signal for this thread */
	rc = pthread_create(&t, &attr, closer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	closer.running = rc == 0;
	return closer.running;
}

void fp_close_received(int fd)
{
	bool queued = false;

	if (fd < 0)
		return;
	if (!may_block_on_close(fd)) {
		close(fd);
		return;
	}
	pthread_once(&closer_once, closer_install);
	pthread_mutex_lock(&closer.lock);
	if (closer.n < FP_CLOSER_MAX && closer_start()) {
		closer.fds[closer.n++] = fd;
		pthread_cond_signal(&closer.cond);
		queued = true;
	}
	pthread_mutex_unlock(&closer.lock);
	if (!queued)
		close(fd);
}
