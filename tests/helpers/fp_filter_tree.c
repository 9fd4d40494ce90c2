/*
 * fp_filter_tree — a process that has its children touch files, for the
 * trust tests (tests/filter/test_filter_trust.c): a "service" whose helpers
 * open the files it is asked about.  Result lines on stdout, errors as
 * positive errno values, times in milliseconds.  Every wait on a gate (a
 * fifo the test writes one byte to per step) is bounded.
 *
 *   children <gate> <path>   READY pid=<pid>; after one gate byte:
 *                            a forked child opens <path>:    CHILD err=<e> ms=<t>
 *                            a forked child execs /bin/cat <path>:
 *                                                            CAT status=<s> ms=<t>
 *   orphan <gate> <tgate> <path>
 *                            forks a child that forks a grandchild, then
 *                            READY pid=<pid> child=<c> grandchild=<g>
 *                            and exits after one byte on <tgate>.  The
 *                            grandchild opens <path> after each of two bytes
 *                            on <gate>: GRAND1 err=<e> ms=<t>, GRAND2 ...
 *                            and exits; the child waits for it.
 *   chain <gate> <n> <path>  READY pid=<pid>; a chain of n generations below
 *                            it (child, grandchild, …); the last opens <path>
 *                            after one gate byte: DEEP err=<e> ms=<t>
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static double ms_since(int64_t t0)
{
	return (double)(tu_now_ns() - t0) / 1e6;
}

/* One byte from the fifo at `path`, within 30 s; exits on failure. */
static void gate(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	int64_t end = tu_now_ms() + 30000;
	char c;

	if (fd < 0)
		_exit(3);
	while (read(fd, &c, 1) != 1) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (tu_now_ms() > end)
			_exit(3);
		(void)poll(&pfd, 1, 50);
	}
	close(fd);
}

static int open_err(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static int children(const char *gate_path, const char *path)
{
	int64_t t0;
	pid_t pid;
	int st = 0;

	tu_say("READY pid=%d", (int)getpid());
	gate(gate_path);
	t0 = tu_now_ns();
	pid = fork();
	if (pid == 0) {
		tu_say("CHILD err=%d ms=%.1f", open_err(path), ms_since(t0));
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return 1;
	t0 = tu_now_ns();
	pid = fork();
	if (pid == 0) {
		int nul = open("/dev/null", O_WRONLY);

		dup2(nul, STDOUT_FILENO);
		dup2(nul, STDERR_FILENO);
		execl("/bin/cat", "cat", path, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return 1;
	tu_say("CAT status=%d ms=%.1f", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
	       ms_since(t0));
	return 0;
}

static void grandchild(const char *gate_path, const char *path)
{
	for (int i = 1; i <= 2; i++) {
		int64_t t0;

		gate(gate_path);
		t0 = tu_now_ns();
		tu_say("GRAND%d err=%d ms=%.1f", i, open_err(path), ms_since(t0));
	}
	_exit(0);
}

static int orphan(const char *gate_path, const char *tgate_path, const char *path)
{
	int link[2];
	pid_t child, grand = 0;

	if (pipe2(link, O_CLOEXEC) != 0)
		return 1;
	child = fork();
	if (child == 0) {
		grand = fork();
		if (grand == 0)
			grandchild(gate_path, path);
		(void)write(link[1], &grand, sizeof(grand));
		if (grand > 0)
			(void)waitpid(grand, NULL, 0);
		_exit(0);
	}
	close(link[1]);
	if (child < 0 || read(link[0], &grand, sizeof(grand)) != sizeof(grand) || grand <= 0)
		return 1;
	tu_say("READY pid=%d child=%d grandchild=%d", (int)getpid(), (int)child, (int)grand);
	gate(tgate_path);
	return 0;
}

static int chain(const char *gate_path, long n, const char *path)
{
	tu_say("READY pid=%d", (int)getpid());
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();
		int st;

		if (pid < 0)
			return 1;
		if (pid > 0) { /* every generation waits for the next */
			if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
				_exit(1);
			_exit(WEXITSTATUS(st));
		}
	}
	gate(gate_path);
	{
		int64_t t0 = tu_now_ns();
		int err = open_err(path);

		tu_say("DEEP err=%d ms=%.1f", err, ms_since(t0));
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "children") == 0)
		return children(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "orphan") == 0)
		return orphan(argv[2], argv[3], argv[4]);
	if (argc == 5 && strcmp(argv[1], "chain") == 0)
		return chain(argv[2], strtol(argv[3], NULL, 10), argv[4]);
	fprintf(stderr, "usage: fp_filter_tree children <gate> <path> | "
			"orphan <gate> <tgate> <path> | chain <gate> <n> <path>\n");
	return 2;
}
