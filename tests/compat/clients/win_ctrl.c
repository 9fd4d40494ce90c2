/*
 * win_ctrl — a Windows console program that stops on console control
 * events through SetConsoleCtrlHandler, for test_compat_services.c (on
 * Linux the events are signals: docs/PORTING.md).  The same source
 * cross-compiles with mingw-w64.
 *
 *   win_ctrl handle   handler 1 returns TRUE for CTRL_C_EVENT: the main
 *                     thread, woken by it, prints "MAIN ctrl-c" and goes
 *                     on; for any other event it returns TRUE too (the
 *                     process ends all the same)
 *   win_ctrl pass     handler 1 returns FALSE: the default action ends it
 *   win_ctrl ignore   SetConsoleCtrlHandler(NULL, TRUE), then handler 1
 *   win_ctrl remove   handlers 1 and 2 registered, 2 removed (and removed
 *                     again: "REMOVE again ok=0 err=87")
 *   win_ctrl fork     (Linux only) as handle, and a child forked without
 *                     exec after the registration: "CHILDPID n", then, once
 *                     the child ends, "CHILD signal=S" (its own signal's
 *                     default action, not the parent's handlers)
 *   win_ctrl mask     (Linux only) as handle; handler 1 also prints the
 *                     signal mask it runs with: "MASK <SigBlk>"
 *
 * Each handler call prints "EVENT handler=N type=T".  "READY" once set up.
 */
#include <windows.h>

#include <stdio.h>
#include <string.h>
#ifndef _WIN32
#include <sys/wait.h>
#include <unistd.h>
#endif

static HANDLE wake;
static int mode_pass, mode_mask;

#ifndef _WIN32
/* This thread's blocked signals, as /proc shows them. */
static void print_mask(void)
{
	char line[128];
	FILE *f = fopen("/proc/thread-self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "SigBlk:", 7) == 0)
			printf("MASK %s", line + 8);
	if (f)
		fclose(f);
}

static void fork_and_watch(void)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		for (;;)
			pause();
	}
	printf("CHILDPID %d\n", (int)pid);
	printf("READY\n");
	fflush(stdout);
	if (waitpid(pid, &st, 0) == pid)
		printf("CHILD signal=%d\n", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	fflush(stdout);
}
#endif

static BOOL WINAPI handler1(DWORD type)
{
	printf("EVENT handler=1 type=%lu\n", (unsigned long)type);
#ifndef _WIN32
	if (mode_mask)
		print_mask();
#endif
	fflush(stdout);
	if (type == CTRL_C_EVENT && !mode_pass)
		SetEvent(wake);
	return mode_pass ? FALSE : TRUE;
}

static BOOL WINAPI handler2(DWORD type)
{
	printf("EVENT handler=2 type=%lu\n", (unsigned long)type);
	fflush(stdout);
	return TRUE;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "handle";

	wake = CreateEventA(NULL, FALSE, FALSE, NULL);
	mode_pass = strcmp(mode, "pass") == 0;
	mode_mask = strcmp(mode, "mask") == 0;
	if (strcmp(mode, "ignore") == 0 && !SetConsoleCtrlHandler(NULL, TRUE))
		return 2;
	if (!SetConsoleCtrlHandler(handler1, TRUE))
		return 3;
	if (strcmp(mode, "remove") == 0) {
		BOOL ok;

		if (!SetConsoleCtrlHandler(handler2, TRUE) ||
		    !SetConsoleCtrlHandler(handler2, FALSE))
			return 4;
		ok = SetConsoleCtrlHandler(handler2, FALSE);
		printf("REMOVE again ok=%d err=%lu\n", ok ? 1 : 0, (unsigned long)GetLastError());
	}
#ifndef _WIN32
	if (strcmp(mode, "fork") == 0)
		fork_and_watch();
	else
#endif
		printf("READY\n");
	fflush(stdout);
	for (;;) {
		if (WaitForSingleObject(wake, INFINITE) == WAIT_OBJECT_0) {
			printf("MAIN ctrl-c\n");
			fflush(stdout);
		}
	}
}
