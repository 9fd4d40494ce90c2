/*
 * Process handles: OpenProcess on a pidfd, the image name a service asks
 * of the process a filter names, waits on a process's end, its exit code,
 * TerminateProcess.  The processes are this test's own children.
 */
#ifdef FP_PLAIN
#include "plain_criterion.h"
#else
#include <criterion/criterion.h>
#endif
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include <windows.h>
#include <psapi.h>

/* Process handles stand on pidfd_open (Linux 5.3); valgrind 3.19 does not
 * know it. */
static void need_pidfd(void)
{
	int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);

	if (fd < 0 && errno == ENOSYS) {
		HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)getppid());

		cr_expect_null(h);
		cr_expect_eq(GetLastError(), ERROR_NOT_SUPPORTED);
		cr_skip_test("pidfd_open(2) is not available (Linux before 5.3, or valgrind): "
			     "OpenProcess says ERROR_NOT_SUPPORTED");
	}
	if (fd >= 0)
		close(fd);
}

/* A child that waits for a byte on a pipe, then exits with that byte's
 * value (or dies by a signal).  *go: the pipe's write end. */
static pid_t child(int *go)
{
	int p[2];
	pid_t pid;

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		unsigned char b = 0;

		close(p[1]);
		if (read(p[0], &b, 1) != 1)
			_exit(99);
		_exit(b);
	}
	close(p[0]);
	*go = p[1];
	return pid;
}

static void self_exe(char *buf, size_t cap)
{
	ssize_t n = readlink("/proc/self/exe", buf, cap - 1);

	cr_assert_gt(n, 0);
	buf[n] = '\0';
}

/* A running child: its image name (this test's executable), its pid, not
 * signalled, STILL_ACTIVE; once it exits: signalled, its exit code, and
 * no name any more. */
Test(process, open_ask_wait_and_exit_code, .timeout = 30)
{
	char exe[PATH_MAX], name[PATH_MAX];
	WCHAR wname[PATH_MAX];
	DWORD size, code;
	unsigned char seven = 7;
	HANDLE h;
	int go, st;
	pid_t pid;

	need_pidfd();
	pid = child(&go);

	self_exe(exe, sizeof(exe));
	h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, FALSE, (DWORD)pid);
	cr_assert_not_null(h, "OpenProcess: %lu", (unsigned long)GetLastError());
	cr_expect_eq(GetProcessId(h), (DWORD)pid);
	size = sizeof(name);
	cr_expect(QueryFullProcessImageNameA(h, 0, name, &size));
	cr_expect_str_eq(name, exe);
	cr_expect_eq(size, strlen(exe));
	size = PATH_MAX;
	cr_expect(QueryFullProcessImageNameW(h, PROCESS_NAME_NATIVE, wname, &size));
	cr_expect_eq(size, strlen(exe));
	cr_expect_eq(GetProcessImageFileNameA(h, name, sizeof(name)), strlen(exe));
	cr_expect_str_eq(name, exe);
	cr_expect_eq(K32GetProcessImageFileNameW(h, wname, PATH_MAX), strlen(exe));

	size = 3; /* too small: nothing written, the size kept */
	SetLastError(0);
	cr_expect_not(QueryFullProcessImageNameA(h, 0, name, &size));
	cr_expect_eq(GetLastError(), ERROR_INSUFFICIENT_BUFFER);
	cr_expect_eq(size, 3);
	SetLastError(0);
	cr_expect_eq(GetProcessImageFileNameA(h, name, 3), 0);
	cr_expect_eq(GetLastError(), ERROR_INSUFFICIENT_BUFFER);
	size = sizeof(name);
	SetLastError(0);
	cr_expect_not(QueryFullProcessImageNameA(h, 2, name, &size));
	cr_expect_eq(GetLastError(), ERROR_INVALID_PARAMETER);

	cr_expect_eq(WaitForSingleObject(h, 0), WAIT_TIMEOUT);
	cr_expect(GetExitCodeProcess(h, &code));
	cr_expect_eq(code, STILL_ACTIVE);

	cr_assert_eq(write(go, &seven, 1), 1);
	cr_expect_eq(WaitForSingleObject(h, 20000), WAIT_OBJECT_0);
	cr_expect_eq(WaitForSingleObject(h, 0), WAIT_OBJECT_0); /* stays signalled */
	cr_expect(GetExitCodeProcess(h, &code));
	cr_expect_eq(code, 7);
	size = sizeof(name);
	SetLastError(0);
	cr_expect_not(QueryFullProcessImageNameA(h, 0, name, &size));
	cr_expect_eq(GetLastError(), ERROR_GEN_FAILURE);
	cr_expect(CloseHandle(h));
	cr_expect_eq(waitpid(pid, &st, 0), pid); /* ours to reap: the waits did not */
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 7);
	close(go);
}

struct waiter {
	HANDLE h[2];
	DWORD rc;
};

static DWORD WINAPI wait_any(LPVOID arg)
{
	struct waiter *w = arg;

	w->rc = WaitForMultipleObjects(2, w->h, FALSE, INFINITE);
	return 0;
}

/* A thread waiting with no time-out, on an event and a process, wakes when
 * the process ends; TerminateProcess ends it (SIGKILL: exit code 137), and
 * an ended one cannot be terminated. */
Test(process, an_infinite_wait_wakes_at_the_end, .timeout = 30)
{
	struct waiter w = { .rc = 12345 };
	HANDLE t;
	DWORD code;
	int go;
	pid_t pid;

	need_pidfd();
	pid = child(&go);

	w.h[0] = CreateEventW(NULL, TRUE, FALSE, NULL);
	w.h[1] = OpenProcess(PROCESS_TERMINATE | SYNCHRONIZE, FALSE, (DWORD)pid);
	cr_assert_not_null(w.h[0]);
	cr_assert_not_null(w.h[1]);
	t = CreateThread(NULL, 0, wait_any, &w, 0, NULL);
	cr_assert_not_null(t);
	cr_expect_eq(WaitForSingleObject(t, 200), WAIT_TIMEOUT, "the wait returned early");
	cr_expect(TerminateProcess(w.h[1], 3));
	cr_expect_eq(WaitForSingleObject(t, 20000), WAIT_OBJECT_0);
	cr_expect_eq(w.rc, WAIT_OBJECT_0 + 1);
	cr_expect(GetExitCodeProcess(w.h[1], &code));
	cr_expect_eq(code, 128 + SIGKILL);
	SetLastError(0); /* ended: as on Windows, ERROR_ACCESS_DENIED */
	cr_expect_not(TerminateProcess(w.h[1], 3));
	cr_expect_eq(GetLastError(), ERROR_ACCESS_DENIED);
	CloseHandle(t);
	CloseHandle(w.h[0]);
	CloseHandle(w.h[1]);
	waitpid(pid, NULL, 0);
	close(go);
}

/* pid 0 and a pid that names no process: ERROR_INVALID_PARAMETER; this
 * process through GetCurrentProcess(); handles of other kinds refused. */
Test(process, bad_pids_and_this_process, .timeout = 30)
{
	char exe[PATH_MAX], name[PATH_MAX];
	HANDLE e = CreateEventW(NULL, TRUE, FALSE, NULL);
	DWORD size = sizeof(name), code;
	pid_t gone;

	need_pidfd();

	SetLastError(0);
	cr_expect_null(OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, 0));
	cr_expect_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	gone = fork();
	cr_assert_geq(gone, 0);
	if (gone == 0)
		_exit(0);
	cr_assert_eq(waitpid(gone, NULL, 0), gone); /* reaped: the pid names nothing now */
	SetLastError(0);
	cr_expect_null(OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)gone));
	cr_expect_eq(GetLastError(), ERROR_INVALID_PARAMETER);

	self_exe(exe, sizeof(exe));
	cr_expect(QueryFullProcessImageNameA(GetCurrentProcess(), 0, name, &size));
	cr_expect_str_eq(name, exe);
	cr_expect_eq(GetProcessId(GetCurrentProcess()), (DWORD)getpid());
	cr_expect(GetExitCodeProcess(GetCurrentProcess(), &code));
	cr_expect_eq(code, STILL_ACTIVE);
	/* This process and thread never end while they wait on themselves. */
	cr_expect_eq(WaitForSingleObject(GetCurrentProcess(), 10), WAIT_TIMEOUT);
	cr_expect_eq(WaitForSingleObject(GetCurrentThread(), 10), WAIT_TIMEOUT);

	SetLastError(0);
	cr_expect_eq(GetProcessId(e), 0);
	cr_expect_eq(GetLastError(), ERROR_INVALID_HANDLE);
	SetLastError(0);
	cr_expect_not(TerminateProcess(e, 1));
	cr_expect_eq(GetLastError(), ERROR_INVALID_HANDLE);
	CloseHandle(e);
}

/* The exit code of a process that is not ours (a service asks about the
 * process a filter named): its parent reaps it at once, and the code is
 * known before that (a zombie, from /proc) and after (PIDFD_GET_INFO,
 * 6.15+).  Many rounds, so that both windows are hit. */
Test(process, exit_code_of_another_parents_child, .timeout = 60)
{
	unsigned unknown = 0;

	need_pidfd();

	for (int round = 0; round < 40; round++) {
		int pids[2], gos[2];
		pid_t mid, grandchild = 0;
		unsigned char code = (unsigned char)(10 + round);
		HANDLE h;
		DWORD got = 0;

		cr_assert_eq(pipe(pids), 0);
		cr_assert_eq(pipe(gos), 0);
		mid = fork();
		cr_assert_geq(mid, 0);
		if (mid == 0) { /* the grandchild's parent: reaps it at once */
			pid_t g = fork();

			if (g == 0) {
				unsigned char b = 0;

				if (read(gos[0], &b, 1) != 1)
					_exit(99);
				_exit(b);
			}
			if (write(pids[1], &g, sizeof(g)) != sizeof(g))
				_exit(98);
			waitpid(g, NULL, 0);
			_exit(0);
		}
		close(pids[1]);
		close(gos[0]);
		cr_assert_eq(read(pids[0], &grandchild, sizeof(grandchild)), sizeof(grandchild));
		h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, FALSE,
				(DWORD)grandchild);
		cr_assert_not_null(h);
		cr_assert_eq(write(gos[1], &code, 1), 1);
		cr_expect_eq(WaitForSingleObject(h, 20000), WAIT_OBJECT_0);
		if (GetExitCodeProcess(h, &got))
			cr_expect_eq(got, code, "round %d", round);
		else
			unknown++;
		CloseHandle(h);
		waitpid(mid, NULL, 0);
		close(pids[0]);
		close(gos[1]);
	}
	/* Unknown only where the kernel cannot tell a reaped process's code
	 * (before 6.15), and there only when the reaping came first. */
	if (unknown)
		cr_log_info("exit code unknown in %u of 40 rounds (kernel before 6.15?)", unknown);
	{
		struct utsname u;
		unsigned major = 0, minor = 0;

		uname(&u);
		sscanf(u.release, "%u.%u", &major, &minor);
		if (major > 6 || (major == 6 && minor >= 15))
			cr_expect_eq(unknown, 0,
				     "the kernel tells reaped exit codes, yet %u unknown", unknown);
	}
}

static void *linger(void *arg)
{
	int fd = (int)(intptr_t)arg;
	unsigned char b;

	if (read(fd, &b, 1) != 1)
		_exit(99);
	_exit(0);
}

/* A process whose main thread has ended while another runs: still running,
 * and its name is still known. */
Test(process, a_process_whose_main_thread_ended, .timeout = 30)
{
	char exe[PATH_MAX], name[PATH_MAX];
	DWORD size = sizeof(name);
	int p[2];
	pid_t pid;
	HANDLE h;

	need_pidfd();

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		pthread_t t;

		close(p[1]);
		if (pthread_create(&t, NULL, linger, (void *)(intptr_t)p[0]) != 0)
			_exit(98);
		pthread_exit(NULL);
	}
	close(p[0]);
	/* Wait for the main thread to be gone: its task turns zombie. */
	for (int i = 0; i < 2000; i++) {
		char path[64], st[256] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)pid);
		f = fopen(path, "re");
		if (f) {
			if (!fgets(st, sizeof(st), f))
				st[0] = '\0';
			fclose(f);
		}
		if (strstr(st, ") Z ") || strstr(st, ") X "))
			break;
		tu_sleep_ms(5);
	}
	self_exe(exe, sizeof(exe));
	h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
	cr_assert_not_null(h);
	cr_expect_eq(WaitForSingleObject(h, 0), WAIT_TIMEOUT);
	cr_expect(QueryFullProcessImageNameA(h, 0, name, &size), "error %lu",
		  (unsigned long)GetLastError());
	cr_expect_str_eq(name, exe);
	CloseHandle(h);
	close(p[1]);
	waitpid(pid, NULL, 0);
}

/* A handle names its process, not its pid: once the process is gone and a
 * new one has its pid, the handle gives no name (the new one's would be a
 * lie).  Needs root, for clone3()'s set_tid. */
Test(process, a_reused_pid_is_not_the_process, .timeout = 30)
{
	struct clone_args_v1 {
		uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
		uint64_t set_tid, set_tid_size;
	} ca;
	char name[PATH_MAX];
	DWORD size = sizeof(name);
	pid_t first, again;
	int go;
	HANDLE h;

	need_pidfd();

	if (geteuid() != 0)
		cr_skip_test("needs root: clone3() with set_tid takes a chosen pid");
	first = child(&go);
	h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)first);
	cr_assert_not_null(h);
	close(go); /* it exits (EOF) */
	cr_assert_eq(waitpid(first, NULL, 0), first);
	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = SIGCHLD;
	ca.set_tid = (uint64_t)(uintptr_t)&first;
	ca.set_tid_size = 1;
	again = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	if (again == 0) {
		pause();
		_exit(0);
	}
	if (again < 0) {
		CloseHandle(h);
		cr_skip_test("clone3 with set_tid: %s", strerror(errno));
	}
	cr_assert_eq(again, first, "the pid was not reused");
	SetLastError(0);
	cr_expect_not(QueryFullProcessImageNameA(h, 0, name, &size),
		      "the new process's name was given: %s", name);
	cr_expect_eq(GetLastError(), ERROR_GEN_FAILURE);
	cr_expect_eq(WaitForSingleObject(h, 0), WAIT_OBJECT_0);
	CloseHandle(h);
	kill(again, SIGKILL);
	waitpid(again, NULL, 0);
}
