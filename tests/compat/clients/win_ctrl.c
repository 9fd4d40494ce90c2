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
 *
 * Each handler call prints "EVENT handler=N type=T".  "READY" once set up.
 */
#include <windows.h>

#include <stdio.h>
#include <string.h>

static HANDLE wake;
static int mode_pass;

static BOOL WINAPI handler1(DWORD type)
{
	printf("EVENT handler=1 type=%lu\n", (unsigned long)type);
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
	printf("READY\n");
	fflush(stdout);
	for (;;) {
		if (WaitForSingleObject(wake, INFINITE) == WAIT_OBJECT_0) {
			printf("MAIN ctrl-c\n");
			fflush(stdout);
		}
	}
}
