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
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include <windows.h>
#include <psapi.h>

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
	pid_t pid = child(&go);

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
 * the process ends; TerminateProcess ends it (SIGKILL: exit code 137). */
Test(process, an_infinite_wait_wakes_at_the_end, .timeout = 30)
{
	struct waiter w = { .rc = 12345 };
	HANDLE t;
	DWORD code;
	int go;
	pid_t pid = child(&go);

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
	cr_expect(TerminateProcess(w.h[1], 3)); /* ended already: nothing to do */
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

	SetLastError(0);
	cr_expect_eq(GetProcessId(e), 0);
	cr_expect_eq(GetLastError(), ERROR_INVALID_HANDLE);
	SetLastError(0);
	cr_expect_not(TerminateProcess(e, 1));
	cr_expect_eq(GetLastError(), ERROR_INVALID_HANDLE);
	CloseHandle(e);
}
