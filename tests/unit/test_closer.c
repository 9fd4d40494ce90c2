/*
 * Closing received fds that can block (fp_close_received, src/transport/
 * closer.c): a FIFO's last close waits while someone holds the pipe's lock,
 * so it is handed to a closer thread; the caller never waits.  And a
 * process that forks after the closer thread started: the child's closes
 * must not wait for the parent's thread, which does not exist there (a
 * review found the child hung in pthread_cond_signal on its second close).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "transport/transport.h"

struct held {
	int p[2], sv[2];
	pthread_t t;
	_Atomic int tid;
};

static void *splice_main(void *arg)
{
	struct held *h = arg;

	atomic_store(&h->tid, (int)syscall(SYS_gettid));
	(void)splice(h->sv[0], NULL, h->p[1], NULL, 4096, 0);
	return NULL;
}

static bool in_splice(void *arg)
{
	struct held *h = arg;
	int tid = atomic_load(&h->tid);

	return tid > 0 && tu_task_syscall(tid) == SYS_splice;
}

/* Whether this process's closer thread waits for work (in a futex). */
static bool closer_waits(void *arg)
{
	int tid = tu_thread_named("fltport-closer");

	(void)arg;
	return tid > 0 && tu_task_syscall(tid) == SYS_futex;
}

/* A pipe whose lock a thread holds (splice from an empty socket), and a
 * read end of it that is the last one once *last is closed. */
static int locked_pipe(struct held *h)
{
	int last;

	cr_assert_eq(pipe2(h->p, O_CLOEXEC), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, h->sv), 0);
	atomic_store(&h->tid, 0);
	cr_assert_eq(pthread_create(&h->t, NULL, splice_main, h), 0);
	cr_assert(tu_wait_until(in_splice, h, 10000), "the splice never started");
	last = h->p[0];
	return last;
}

static void release(struct held *h)
{
	cr_assert_eq(write(h->sv[1], "x", 1), 1);
	pthread_join(h->t, NULL);
	close(h->p[1]);
	close(h->sv[0]);
	close(h->sv[1]);
}

Test(closer, a_locked_pipe_is_closed_without_waiting, .timeout = 30)
{
	struct held h;
	int fd = locked_pipe(&h);

	alarm(10); /* a close in place would sleep until release() */
	fp_close_received(fd);
	alarm(0);
	release(&h);
}

Test(closer, a_child_forked_after_the_thread_started_can_close, .timeout = 30)
{
	int p[2], status;
	pid_t pid;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	fp_close_received(p[0]); /* starts the closer thread */
	close(p[1]);
	cr_assert(tu_wait_until(closer_waits, NULL, 10000), "no closer thread waiting");
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		alarm(5);
		/* Each close with the child's closer thread back in its wait:
		 * the state the inherited condition variable hung in. */
		for (int i = 0; i < 10; i++) {
			int q[2];

			if (pipe2(q, O_CLOEXEC) != 0)
				_exit(2);
			close(q[1]);
			fp_close_received(q[0]);
			if (!tu_wait_until(closer_waits, NULL, 4000))
				_exit(3);
		}
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the child hung or failed (status 0x%x)", status);
}
