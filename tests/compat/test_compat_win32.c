/*
 * The Win32 subset of minispy-style programs (include/fltport/win/
 * fltport_win32.h, fltport_winbase.h, strsafe.h, excpt.h): semaphores, named
 * events, FormatMessage and its tables, modules, code pages, time, full
 * paths, StringCch*, try/finally, lists; each with Windows' exact values.
 * The last test runs tests/compat/clients/win_sdkuse.c, a minispy-style
 * Windows program, against a filter port in this process.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <libgen.h>
#include <regex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include <windows.h>
#include <fltkernel.h>
#include <fltuser.h>
#include <strsafe.h>

#include "compat/compat.h"

#include "clients/sdkuse_wire.h"
#include "winport.h"

/* ---- semaphores ---- */

static HANDLE sem;
static LONG volatile passed;

static DWORD WINAPI sem_waiter(LPVOID arg)
{
	(void)arg;
	if (WaitForSingleObject(sem, 20000) != WAIT_OBJECT_0)
		return 1;
	InterlockedIncrement(&passed);
	return 0;
}

static bool two_passed(void *arg)
{
	(void)arg;
	return InterlockedCompareExchange(&passed, 0, 0) == 2;
}

/* Three threads wait; two releases let exactly two through, the third
 * stays blocked until one more. */
Test(win32, semaphore_counts_across_threads, .timeout = 60)
{
	HANDLE t[3];
	LONG prev = -1;
	DWORD code;

	sem = CreateSemaphoreW(NULL, 0, 3, NULL);
	cr_assert_not_null(sem);
	cr_assert_eq(GetLastError(), ERROR_SUCCESS);
	for (int i = 0; i < 3; i++) {
		t[i] = CreateThread(NULL, 0, sem_waiter, NULL, 0, NULL);
		cr_assert_not_null(t[i]);
	}
	cr_assert(ReleaseSemaphore(sem, 2, &prev));
	cr_assert_eq(prev, 0);
	cr_assert(tu_wait_until(two_passed, NULL, 20000), "two waiters pass");
	/* The third one is still waiting: its thread has not ended. */
	cr_assert_eq(WaitForMultipleObjects(3, t, TRUE, 0), WAIT_TIMEOUT);
	cr_assert_eq(InterlockedCompareExchange(&passed, 0, 0), 2);
	cr_assert(ReleaseSemaphore(sem, 1, &prev));
	cr_assert_eq(prev, 0);
	cr_assert_eq(WaitForMultipleObjects(3, t, TRUE, 20000), WAIT_OBJECT_0);
	cr_assert_eq(passed, 3);
	for (int i = 0; i < 3; i++) {
		cr_assert(GetExitCodeThread(t[i], &code));
		cr_assert_eq(code, 0);
		cr_assert(CloseHandle(t[i]));
	}
	cr_assert(CloseHandle(sem));
}

Test(win32, semaphore_limits_and_errors, .timeout = 10)
{
	HANDLE s = CreateSemaphoreA(NULL, 1, 2, NULL), ev;
	HANDLE both[2];
	LONG prev = -1;

	cr_assert_not_null(s);
	cr_assert_eq(WaitForSingleObject(s, 0), WAIT_OBJECT_0); /* takes the one */
	cr_assert_eq(WaitForSingleObject(s, 0), WAIT_TIMEOUT);
	cr_assert_eq(WaitForSingleObject(s, 10), WAIT_TIMEOUT);
	cr_assert(ReleaseSemaphore(s, 2, &prev));
	cr_assert_eq(prev, 0);
	/* Over the maximum: refused, count unchanged, *prev untouched. */
	prev = 77;
	SetLastError(0);
	cr_assert_not(ReleaseSemaphore(s, 1, &prev));
	cr_assert_eq(GetLastError(), ERROR_TOO_MANY_POSTS);
	cr_assert_eq(GetLastError(), 298);
	cr_assert_eq(prev, 77);
	cr_assert_not(ReleaseSemaphore(s, 0, NULL));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	cr_assert_not(ReleaseSemaphore(s, -1, NULL));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	/* WaitForMultipleObjects with an event: any-of picks the first ready. */
	ev = CreateEventW(NULL, TRUE, FALSE, NULL);
	both[0] = ev;
	both[1] = s;
	cr_assert_eq(WaitForMultipleObjects(2, both, FALSE, 0), WAIT_OBJECT_0 + 1);
	cr_assert_eq(WaitForMultipleObjects(2, both, TRUE, 0), WAIT_TIMEOUT);
	cr_assert(SetEvent(ev));
	cr_assert_eq(WaitForMultipleObjects(2, both, TRUE, 0), WAIT_OBJECT_0);
	/* Count 2 - 1 (any) - 1 (all): empty now. */
	cr_assert_eq(WaitForSingleObject(s, 0), WAIT_TIMEOUT);
	/* Bad arguments. */
	cr_assert_null(CreateSemaphoreW(NULL, 2, 1, NULL));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	cr_assert_null(CreateSemaphoreW(NULL, -1, 1, NULL));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	cr_assert_null(CreateSemaphoreW(NULL, 0, 0, NULL));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	cr_assert_not(ReleaseSemaphore(ev, 1, NULL)); /* an event is not a semaphore */
	cr_assert_eq(GetLastError(), ERROR_INVALID_HANDLE);
	cr_assert(CloseHandle(ev));
	cr_assert(CloseHandle(s));
	cr_assert_not(ReleaseSemaphore(s, 1, NULL));
	cr_assert_eq(GetLastError(), ERROR_INVALID_HANDLE);
}

/* Windows refuses a wait for all of an array that names one object twice:
 * checking each then taking each took such a semaphore twice, to -1. */
Test(win32, wait_all_refuses_one_object_twice, .timeout = 10)
{
	HANDLE s = CreateSemaphoreA(NULL, 1, 2, "fltport test dup sem"), t, ev, hs[3];
	LONG prev = -1;

	cr_assert_not_null(s);
	t = OpenSemaphoreA(SEMAPHORE_ALL_ACCESS, FALSE, "fltport test dup sem");
	cr_assert_not_null(t);
	ev = CreateEventW(NULL, TRUE, TRUE, NULL);
	cr_assert_not_null(ev);
	/* The same handle twice. */
	hs[0] = s;
	hs[1] = ev;
	hs[2] = s;
	SetLastError(0);
	cr_assert_eq(WaitForMultipleObjects(3, hs, TRUE, 0), WAIT_FAILED);
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	/* Two handles to one named semaphore. */
	hs[2] = t;
	SetLastError(0);
	cr_assert_eq(WaitForMultipleObjects(3, hs, TRUE, INFINITE), WAIT_FAILED);
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	/* Nothing was taken: the count is still 1. */
	cr_assert(ReleaseSemaphore(t, 1, &prev));
	cr_assert_eq(prev, 1);
	/* Any-of may name it twice: a wait takes one, at the first ready. */
	hs[0] = ev;
	hs[1] = s;
	cr_assert_eq(WaitForMultipleObjects(3, hs, FALSE, 0), WAIT_OBJECT_0);
	cr_assert(ResetEvent(ev));
	cr_assert_eq(WaitForMultipleObjects(3, hs, FALSE, 0), WAIT_OBJECT_0 + 1);
	cr_assert_eq(WaitForMultipleObjects(3, hs, FALSE, 0), WAIT_OBJECT_0 + 1);
	cr_assert_eq(WaitForMultipleObjects(3, hs, FALSE, 0), WAIT_TIMEOUT);
	/* Distinct objects: the all-of wait works. */
	cr_assert(ReleaseSemaphore(s, 1, &prev));
	cr_assert_eq(prev, 0);
	cr_assert(SetEvent(ev));
	cr_assert_eq(WaitForMultipleObjects(2, hs, TRUE, 0), WAIT_OBJECT_0);
	cr_assert_eq(WaitForSingleObject(t, 0), WAIT_TIMEOUT);
	cr_assert(CloseHandle(ev));
	cr_assert(CloseHandle(t));
	cr_assert(CloseHandle(s));
}

/* ---- handles ---- */

/* A closed handle stays dead however often its slot is reused: with an
 * 8-bit generation and the freed slot handed out first, the 255th new
 * event once came back with the old value. */
Test(win32, closed_handle_stays_closed_after_reuse, .timeout = 30)
{
	HANDLE stale = CreateEventW(NULL, TRUE, FALSE, NULL), h;

	cr_assert_not_null(stale);
	cr_assert(CloseHandle(stale));
	for (int i = 0; i < 1000; i++) {
		h = CreateEventW(NULL, TRUE, FALSE, NULL);
		cr_assert_not_null(h);
		cr_assert_neq(h, stale, "cycle %d", i);
		SetLastError(0);
		cr_assert_not(SetEvent(stale), "cycle %d", i);
		cr_assert_eq(GetLastError(), ERROR_INVALID_HANDLE);
		cr_assert(CloseHandle(h));
	}
	SetLastError(0);
	cr_assert_not(CloseHandle(stale));
	cr_assert_eq(GetLastError(), ERROR_INVALID_HANDLE);
	cr_assert_eq(WaitForSingleObject(stale, 0), WAIT_FAILED);
	cr_assert_eq(GetLastError(), ERROR_INVALID_HANDLE);
}

/* ---- named objects ---- */

Test(win32, named_events_are_shared, .timeout = 10)
{
	HANDLE a, b, c, d;

	a = CreateEventW(NULL, TRUE, FALSE, L"fltport test event");
	cr_assert_not_null(a);
	cr_assert_eq(GetLastError(), ERROR_SUCCESS);
	b = CreateEventW(NULL, FALSE, TRUE, L"fltport test event"); /* state ignored */
	cr_assert_not_null(b);
	cr_assert_eq(GetLastError(), ERROR_ALREADY_EXISTS);
	cr_assert_eq(GetLastError(), 183);
	cr_assert_neq(a, b);
	cr_assert_eq(WaitForSingleObject(b, 0), WAIT_TIMEOUT); /* a's state: not set */
	cr_assert(SetEvent(a));
	cr_assert_eq(WaitForSingleObject(b, 0), WAIT_OBJECT_0);
	cr_assert_eq(WaitForSingleObject(b, 0), WAIT_OBJECT_0); /* manual reset: still set */
	/* OpenEvent, and the narrow name (UTF-8) reaches the same object. */
	c = OpenEventW(EVENT_ALL_ACCESS, FALSE, L"fltport test event");
	cr_assert_not_null(c);
	d = CreateEventA(NULL, FALSE, FALSE, "fltport test event");
	cr_assert_not_null(d);
	cr_assert_eq(GetLastError(), ERROR_ALREADY_EXISTS);
	cr_assert(ResetEvent(d));
	cr_assert_eq(WaitForSingleObject(c, 0), WAIT_TIMEOUT);
	/* Names are case-sensitive. */
	cr_assert_null(OpenEventW(SYNCHRONIZE, FALSE, L"FLTPORT TEST EVENT"));
	cr_assert_eq(GetLastError(), ERROR_FILE_NOT_FOUND);
	/* A semaphore cannot take an event's name. */
	cr_assert_null(CreateSemaphoreW(NULL, 0, 1, L"fltport test event"));
	cr_assert_eq(GetLastError(), ERROR_INVALID_HANDLE);
	cr_assert_null(OpenSemaphoreW(SEMAPHORE_ALL_ACCESS, FALSE, L"fltport test event"));
	cr_assert_eq(GetLastError(), ERROR_INVALID_HANDLE);
	/* The name lives while a handle is open. */
	cr_assert(CloseHandle(a));
	cr_assert(CloseHandle(b));
	cr_assert(CloseHandle(c));
	c = OpenEventA(SYNCHRONIZE, FALSE, "fltport test event");
	cr_assert_not_null(c);
	cr_assert(CloseHandle(c));
	cr_assert(CloseHandle(d));
	cr_assert_null(OpenEventW(SYNCHRONIZE, FALSE, L"fltport test event"));
	cr_assert_eq(GetLastError(), ERROR_FILE_NOT_FOUND);
	a = CreateEventW(NULL, TRUE, TRUE, L"fltport test event"); /* a new one */
	cr_assert_not_null(a);
	cr_assert_eq(GetLastError(), ERROR_SUCCESS);
	cr_assert_eq(WaitForSingleObject(a, 0), WAIT_OBJECT_0);
	cr_assert(CloseHandle(a));
}

Test(win32, named_object_name_rules, .timeout = 10)
{
	WCHAR longname[MAX_PATH + 2];
	HANDLE s, t, u;

	/* "" is unnamed: two creations are two objects. */
	s = CreateSemaphoreW(NULL, 0, 1, L"");
	t = CreateSemaphoreW(NULL, 0, 1, L"");
	cr_assert_not_null(s);
	cr_assert_not_null(t);
	cr_assert_eq(GetLastError(), ERROR_SUCCESS);
	cr_assert(ReleaseSemaphore(s, 1, NULL));
	cr_assert_eq(WaitForSingleObject(t, 0), WAIT_TIMEOUT);
	cr_assert(CloseHandle(s));
	cr_assert(CloseHandle(t));
	/* MAX_PATH characters is the longest name. */
	for (int i = 0; i < MAX_PATH + 1; i++)
		longname[i] = L'a' + (WCHAR)(i % 26);
	longname[MAX_PATH + 1] = 0;
	cr_assert_null(CreateEventW(NULL, TRUE, FALSE, longname));
	cr_assert_eq(GetLastError(), ERROR_FILENAME_EXCED_RANGE);
	longname[MAX_PATH] = 0;
	u = CreateEventW(NULL, TRUE, FALSE, longname);
	cr_assert_not_null(u);
	cr_assert(CloseHandle(u));
	/* Open needs a name; invalid UTF-8 is not one. */
	cr_assert_null(OpenEventW(SYNCHRONIZE, FALSE, NULL));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	cr_assert_null(OpenSemaphoreA(SYNCHRONIZE, FALSE, ""));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	cr_assert_null(CreateEventA(NULL, TRUE, FALSE, "bad \xff name"));
	cr_assert_eq(GetLastError(), ERROR_INVALID_NAME);
	/* Named semaphores: the second create shares the count. */
	s = CreateSemaphoreA(NULL, 1, 5, "fltport test sem");
	t = CreateSemaphoreW(NULL, 0, 1, L"fltport test sem");
	cr_assert_not_null(t);
	cr_assert_eq(GetLastError(), ERROR_ALREADY_EXISTS);
	u = OpenSemaphoreW(SEMAPHORE_MODIFY_STATE | SYNCHRONIZE, FALSE, L"fltport test sem");
	cr_assert_not_null(u);
	cr_assert(ReleaseSemaphore(u, 4, NULL)); /* the maximum is s's 5 */
	for (int i = 0; i < 5; i++)
		cr_assert_eq(WaitForSingleObject(t, 0), WAIT_OBJECT_0);
	cr_assert_eq(WaitForSingleObject(s, 0), WAIT_TIMEOUT);
	cr_assert(CloseHandle(s));
	cr_assert(CloseHandle(t));
	cr_assert(CloseHandle(u));
}

/* ---- process ---- */

Test(win32, exit_process_exits_with_its_code, .exit_code = 7, .timeout = 10)
{
	ExitProcess(7);
}

/* ---- FormatMessage ---- */

Test(win32, format_message_system_texts, .timeout = 10)
{
	char a[256];
	WCHAR w[256];
	LPSTR alloc = NULL;
	LPWSTR walloc = NULL;
	DWORD n;

	n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL,
			   ERROR_FILE_NOT_FOUND, 0, a, sizeof(a), NULL);
	cr_assert_str_eq(a, "The system cannot find the file specified.\r\n");
	cr_assert_eq(n, strlen(a));
	n = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM, NULL, ERROR_ACCESS_DENIED,
			   MAKELANGID(LANG_NEUTRAL, SUBLANG_DEFAULT), w, ARRAYSIZE(w), NULL);
	cr_assert_eq(wcscmp(w, L"Access is denied.\r\n"), 0);
	cr_assert_eq(n, 19);
	/* An HRESULT of facility Win32 reads as its error; E_* have their own. */
	FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM, NULL, (DWORD)E_INVALIDARG, 0, a, sizeof(a),
		       NULL);
	cr_assert_str_eq(a, "The parameter is incorrect.\r\n");
	FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM, NULL,
		       (DWORD)HRESULT_FROM_WIN32(ERROR_IO_PENDING), 0, a, sizeof(a), NULL);
	cr_assert_str_eq(a, "Overlapped I/O operation is in progress.\r\n");
	FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM, NULL, (DWORD)E_FAIL, 0, a, sizeof(a), NULL);
	cr_assert_str_eq(a, "Unspecified error\r\n");
	FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM, NULL, (DWORD)E_BOUNDS, 0, a, sizeof(a), NULL);
	cr_assert_str_eq(a, "The operation attempted to access data outside the valid range\r\n");
	FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM, NULL, WAIT_TIMEOUT, 0, a, sizeof(a), NULL);
	cr_assert_str_eq(a, "The wait operation timed out.\r\n");
	/* FORMAT_MESSAGE_MAX_WIDTH_MASK: the line break becomes a space. */
	n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_MAX_WIDTH_MASK, NULL,
			   ERROR_INVALID_HANDLE, 0, a, sizeof(a), NULL);
	cr_assert_str_eq(a, "The handle is invalid. ");
	cr_assert_eq(n, 23);
	/* FORMAT_MESSAGE_ALLOCATE_BUFFER, LocalFree. */
	n = FormatMessageA(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM |
				   FORMAT_MESSAGE_IGNORE_INSERTS,
			   NULL, ERROR_ALREADY_EXISTS, 0, (LPSTR)&alloc, 0, NULL);
	cr_assert_not_null(alloc);
	cr_assert_str_eq(alloc, "Cannot create a file when that file already exists.\r\n");
	cr_assert_eq(n, 53);
	cr_assert_null(LocalFree(alloc));
	n = FormatMessageW(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM, NULL,
			   ERROR_SUCCESS, 0, (LPWSTR)&walloc, 200, NULL);
	cr_assert_eq(wcscmp(walloc, L"The operation completed successfully.\r\n"), 0);
	cr_assert_eq(n, 39);
	cr_assert_null(LocalFree(walloc));
	cr_assert_null(LocalFree(NULL));
}

Test(win32, format_message_failures, .timeout = 10)
{
	char a[64], tiny[8] = "xxxxxxx";

	/* Unknown ids, a FltMgr HRESULT (fltlib's table, not the system's). */
	SetLastError(0);
	cr_assert_eq(
		FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM, NULL, 0x12345, 0, a, sizeof(a), NULL),
		0);
	cr_assert_eq(GetLastError(), ERROR_MR_MID_NOT_FOUND);
	cr_assert_eq(FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM, NULL,
				    (DWORD)ERROR_FLT_NO_WAITER_FOR_REPLY, 0, a, sizeof(a), NULL),
		     0);
	cr_assert_eq(GetLastError(), 317);
	/* Too small: nothing written. */
	cr_assert_eq(FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM, NULL, ERROR_FILE_NOT_FOUND, 0, tiny,
				    sizeof(tiny), NULL),
		     0);
	cr_assert_eq(GetLastError(), ERROR_INSUFFICIENT_BUFFER);
	cr_assert_str_eq(tiny, "xxxxxxx");
	/* Another language, no source, both sources. */
	cr_assert_eq(FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM, NULL, 2, MAKELANGID(0x07, 0x01), a,
				    sizeof(a), NULL),
		     0);
	cr_assert_eq(GetLastError(), ERROR_RESOURCE_LANG_NOT_FOUND);
	cr_assert_eq(FormatMessageA(0, NULL, 2, 0, a, sizeof(a), NULL), 0);
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	cr_assert_eq(FormatMessageA(FORMAT_MESSAGE_FROM_STRING | FORMAT_MESSAGE_FROM_SYSTEM, "x", 2,
				    0, a, sizeof(a), NULL),
		     0);
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	/* A module with no table. */
	cr_assert_eq(FormatMessageA(FORMAT_MESSAGE_FROM_HMODULE, NULL, 2, 0, a, sizeof(a), NULL),
		     0);
	cr_assert_eq(GetLastError(), ERROR_RESOURCE_TYPE_NOT_FOUND);
	/* Inserts without arguments. */
	cr_assert_eq(FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM, NULL, ERROR_MR_MID_NOT_FOUND, 0, a,
				    sizeof(a), NULL),
		     0);
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
}

static DWORD format_va(char *buf, DWORD size, const char *fmt, ...)
{
	va_list ap;
	DWORD n;

	va_start(ap, fmt);
	n = FormatMessageA(FORMAT_MESSAGE_FROM_STRING, fmt, 0, 0, buf, size, &ap);
	va_end(ap);
	return n;
}

Test(win32, format_message_inserts, .timeout = 10)
{
	DWORD_PTR args[3] = { (DWORD_PTR) "file.txt", 42, (DWORD_PTR)L"wide" };
	char a[256], big[300];
	WCHAR w[128];
	DWORD n;

	n = FormatMessageA(FORMAT_MESSAGE_FROM_STRING | FORMAT_MESSAGE_ARGUMENT_ARRAY,
			   "%1 has %2!d! lines (%2!04X!), %3!ls!%n%%%t%0 never", 0, 0, a, sizeof(a),
			   (va_list *)args);
	cr_assert_str_eq(a, "file.txt has 42 lines (002A), wide\r\n%\t");
	cr_assert_eq(n, strlen(a));
	/* The W form reads %1 as a wide string, %3!S! as... the other width. */
	args[0] = (DWORD_PTR)L"caf\u00e9";
	args[2] = (DWORD_PTR) "narrow";
	FormatMessageW(FORMAT_MESSAGE_FROM_STRING | FORMAT_MESSAGE_ARGUMENT_ARRAY,
		       L"%1/%3!S!/%2!u!", 0, 0, w, ARRAYSIZE(w), (va_list *)args);
	cr_assert_eq(wcscmp(w, L"caf\u00e9/narrow/42"), 0, "got %ls", w);
	/* va_list arguments, in insert order. */
	n = format_va(a, sizeof(a), "%2-%1 %1", "one", "two");
	cr_assert_str_eq(a, "two-one one");
	cr_assert_eq(n, 11);
	/* IGNORE_INSERTS keeps them; the system's 317 has two. */
	FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, 317, 0,
		       big, sizeof(big), NULL);
	cr_assert_str_eq(big, "The system cannot find message text for message number 0x%1 in the "
			      "message file for %2.\r\n");
	args[0] = (DWORD_PTR) "1234";
	args[1] = (DWORD_PTR) "fltlib.dll";
	FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_ARGUMENT_ARRAY, NULL, 317, 0,
		       big, sizeof(big), (va_list *)args);
	cr_assert_str_eq(big, "The system cannot find message text for message number 0x1234 in "
			      "the message file for fltlib.dll.\r\n");
}

/* ---- modules ---- */

Test(win32, load_library_knows_only_fltlib, .timeout = 10)
{
	WCHAR sys[MAX_PATH];
	char a[256];
	HMODULE m;
	UINT n;

	SetLastError(0);
	cr_assert_null(LoadLibraryW(L"kernel32.dll"));
	cr_assert_eq(GetLastError(), ERROR_MOD_NOT_FOUND);
	cr_assert_eq(GetLastError(), 126);
	cr_assert_null(LoadLibraryA("/usr/lib/libc.so.6"));
	cr_assert_eq(GetLastError(), ERROR_MOD_NOT_FOUND);
	/* mspyUser.c's way: the system directory + "\fltlib.dll", as a data file. */
	n = GetSystemDirectoryW(sys, ARRAYSIZE(sys));
	cr_assert_eq(n, 8);
	cr_assert_eq(wcscmp(sys, L"/usr/lib"), 0);
	cr_assert_eq(StringCchCatW(sys, ARRAYSIZE(sys), L"\\FltLib.DLL"), S_OK);
	m = LoadLibraryExW(sys, NULL, LOAD_LIBRARY_AS_DATAFILE);
	cr_assert_not_null(m);
	cr_assert_eq(FormatMessageA(FORMAT_MESSAGE_FROM_HMODULE, m,
				    (DWORD)ERROR_FLT_NO_WAITER_FOR_REPLY, 0, a, sizeof(a), NULL),
		     strlen("No waiter is present for the filter's reply to this message.\r\n"));
	cr_assert_str_eq(a, "No waiter is present for the filter's reply to this message.\r\n");
	/* FROM_HMODULE | FROM_SYSTEM: the module first, then the system. */
	FormatMessageA(FORMAT_MESSAGE_FROM_HMODULE | FORMAT_MESSAGE_FROM_SYSTEM, m, 2, 0, a,
		       sizeof(a), NULL);
	cr_assert_str_eq(a, "The system cannot find the file specified.\r\n");
	cr_assert_eq(GetProcAddress(m, "FilterSendMessage"),
		     (FARPROC)(void (*)(void))FilterSendMessage);
	cr_assert_eq(GetProcAddress(m, "FilterConnectCommunicationPort"),
		     (FARPROC)(void (*)(void))FilterConnectCommunicationPort);
	cr_assert_null(GetProcAddress(m, "FilterLoad"));
	cr_assert_eq(GetLastError(), ERROR_PROC_NOT_FOUND);
	cr_assert_null(GetProcAddress(m, (LPCSTR)(ULONG_PTR)1)); /* an ordinal */
	cr_assert_eq(GetLastError(), ERROR_PROC_NOT_FOUND);
	cr_assert_eq(LoadLibraryA("fltlib"), m);
	cr_assert_null(LoadLibraryExW(L"fltlib.dll", INVALID_HANDLE_VALUE, 0));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	cr_assert(FreeLibrary(m));
	cr_assert_not(FreeLibrary(NULL));
	cr_assert_eq(GetLastError(), ERROR_INVALID_HANDLE);
	/* The A form, and the sizes. */
	cr_assert_eq(GetSystemDirectoryA(a, sizeof(a)), 8);
	cr_assert_str_eq(a, "/usr/lib");
	cr_assert_eq(GetSystemDirectoryA(a, 8), 9);
	cr_assert_eq(GetSystemDirectoryA(NULL, 0), 9);
	cr_assert_eq(GetSystemDirectoryW(NULL, 0), 9);
}

/* Call fn(name, value) for each "#define <name> <value>" of the layer's
 * headers that re matches (groups: name, value); returns how many. */
static int each_header_define(const char *pattern, void (*fn)(const char *, unsigned long))
{
	char here[1024], dir[1200], path[1200 + 1 + 256], line[512];
	regmatch_t m[3];
	struct dirent *e;
	regex_t re;
	DIR *d;
	int found = 0;

	snprintf(here, sizeof(here), "%s", __FILE__);
	snprintf(dir, sizeof(dir), "%s/../../include/fltport/win", dirname(here));
	d = opendir(dir);
	cr_assert_not_null(d, "%s", dir);
	cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED), 0);
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		FILE *f;

		if (n < 3 || strcmp(e->d_name + n - 2, ".h") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		f = fopen(path, "r");
		cr_assert_not_null(f, "%s", path);
		while (fgets(line, sizeof(line), f)) {
			if (regexec(&re, line, 3, m, 0) != 0)
				continue;
			line[m[1].rm_eo] = '\0';
			fn(line + m[1].rm_so, strtoul(line + m[2].rm_so, NULL, 0));
			found++;
		}
		fclose(f);
	}
	closedir(d);
	regfree(&re);
	return found;
}

static void has_system_text(const char *name, unsigned long code)
{
	char a[512];

	cr_expect_gt(FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
				    NULL, (DWORD)code, 0, a, sizeof(a), NULL),
		     0, "%s (%lu) has no text", name, code);
}

/* fltlib's table, then the system's: where mspyUser.c's DisplayError looks. */
static void has_fltlib_text(const char *name, unsigned long code)
{
	HMODULE fltlib = LoadLibraryA("fltlib.dll");
	char a[512];

	cr_expect_gt(FormatMessageA(FORMAT_MESSAGE_FROM_HMODULE | FORMAT_MESSAGE_FROM_SYSTEM |
					    FORMAT_MESSAGE_IGNORE_INSERTS,
				    fltlib, (DWORD)code, 0, a, sizeof(a), NULL),
		     0, "%s (0x%08lX) has no text", name, code);
}

static void status_has_text(const char *name, unsigned long status)
{
	has_fltlib_text(name, (ULONG)fpw_hresult_from_ntstatus((NTSTATUS)status));
}

/* Every Win32 error the headers define has a system text, every FltMgr
 * HRESULT a text in fltlib's table, and so has every HRESULT the layer
 * hands out for a filter's NTSTATUS (fltlib's rule). */
Test(win32, every_error_has_a_text, .timeout = 30)
{
	char a[512];
	HMODULE fltlib = LoadLibraryA("fltlib.dll");
	NTSTATUS st;
	ULONG w32;
	int found;

	found = each_header_define("^#define (ERROR_[A-Z0-9_]+)[ \t]+([0-9]+)L", has_system_text);
	cr_assert_gt(found, 60, "only %d ERROR_* names found", found);
	found = each_header_define(
		"^#define (ERROR_FLT_[A-Z0-9_]+)[ \t]+\\(\\(HRESULT\\)(0x[0-9A-F]+)u",
		has_fltlib_text);
	cr_assert_geq(found, 8, "only %d ERROR_FLT_* names found", found);
	found = each_header_define(
		"^#define (STATUS_[A-Z0-9_]+)[ \t]+\\(\\(NTSTATUS\\)(0x[0-9A-F]+)[uL]?\\)",
		status_has_text);
	cr_assert_gt(found, 80, "only %d STATUS_* names found", found);
	for (size_t i = 0; fpw_dos_map_entry(i, &st, &w32); i++) {
		HRESULT hr = fpw_hresult_from_ntstatus(st);

		cr_expect_gt(
			FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
				       NULL, (DWORD)hr, 0, a, sizeof(a), NULL),
			0, "0x%08X (from 0x%08X) has no text", (unsigned)hr, (unsigned)st);
	}
	{
		static const NTSTATUS others[] = { STATUS_TIMEOUT, STATUS_FLT_DELETING_OBJECT,
						   STATUS_FLT_NO_WAITER_FOR_REPLY,
						   STATUS_FLT_BUFFER_TOO_SMALL, 0x12345678 };

		for (size_t i = 0; i < ARRAYSIZE(others); i++) {
			HRESULT hr = fpw_hresult_from_ntstatus(others[i]);

			cr_expect_gt(FormatMessageA(FORMAT_MESSAGE_FROM_HMODULE |
							    FORMAT_MESSAGE_FROM_SYSTEM |
							    FORMAT_MESSAGE_IGNORE_INSERTS,
						    fltlib, (DWORD)hr, 0, a, sizeof(a), NULL),
				     0, "0x%08X has no text", (unsigned)hr);
		}
	}
	FreeLibrary(fltlib);
}

/* ---- code pages ---- */

Test(win32, multibyte_to_wide, .timeout = 10)
{
	WCHAR w[16];
	int n;

	n = MultiByteToWideChar(CP_ACP, MB_ERR_INVALID_CHARS, "h\xc3\xa9llo", -1, w, ARRAYSIZE(w));
	cr_assert_eq(n, 6); /* the terminator counts */
	cr_assert_eq(wcscmp(w, L"h\u00e9llo"), 0);
	cr_assert_eq(MultiByteToWideChar(CP_UTF8, 0, "h\xc3\xa9llo", -1, NULL, 0), 6);
	cr_assert_eq(MultiByteToWideChar(CP_UTF8, 0, "abc", 2, w, ARRAYSIZE(w)), 2);
	cr_assert_eq(w[0], L'a');
	cr_assert_eq(w[1], L'b');
	/* Outside the BMP: one WCHAR (UTF-32). */
	cr_assert_eq(MultiByteToWideChar(CP_UTF8, 0, "\xf0\x9f\x98\x80", 4, w, ARRAYSIZE(w)), 1);
	cr_assert_eq(w[0], (WCHAR)0x1F600);
	/* Invalid input: U+FFFD, or refused. */
	cr_assert_eq(MultiByteToWideChar(CP_UTF8, 0,
					 "a\xff"
					 "b",
					 3, w, ARRAYSIZE(w)),
		     3);
	cr_assert_eq(w[1], (WCHAR)0xFFFD);
	cr_assert_eq(MultiByteToWideChar(CP_UTF8, 0, "\xed\xa0\x80", 3, w, ARRAYSIZE(w)), 3,
		     "an encoded surrogate is three invalid bytes");
	SetLastError(0);
	cr_assert_eq(MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, "a\xff", 2, w, 16), 0);
	cr_assert_eq(GetLastError(), ERROR_NO_UNICODE_TRANSLATION);
	cr_assert_eq(GetLastError(), 1113);
	cr_assert_eq(MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, "\xc0\x80", 2, w, 16), 0,
		     "overlong NUL");
	cr_assert_eq(GetLastError(), ERROR_NO_UNICODE_TRANSLATION);
	/* Sizes and arguments. */
	cr_assert_eq(MultiByteToWideChar(CP_UTF8, 0, "hello", -1, w, 5), 0);
	cr_assert_eq(GetLastError(), ERROR_INSUFFICIENT_BUFFER);
	cr_assert_eq(MultiByteToWideChar(CP_UTF8, 0, "hello", 0, w, 5), 0);
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	cr_assert_eq(MultiByteToWideChar(1252, 0, "hello", -1, w, 16), 0);
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	cr_assert_eq(MultiByteToWideChar(CP_UTF8, MB_PRECOMPOSED, "hello", -1, w, 16), 0);
	cr_assert_eq(GetLastError(), ERROR_INVALID_FLAGS);
	cr_assert_eq(MultiByteToWideChar(CP_ACP, MB_PRECOMPOSED, "hello", -1, w, 16), 6);
}

Test(win32, wide_to_multibyte, .timeout = 10)
{
	WCHAR bad[] = { L'a', (WCHAR)0xD800, L'b', 0 };
	WCHAR pair[] = { (WCHAR)0xD83D, (WCHAR)0xDE00, 0 };
	char a[16];
	BOOL used = TRUE;
	int n;

	n = WideCharToMultiByte(CP_UTF8, 0, L"h\u00e9\U0001F600", -1, a, sizeof(a), NULL, NULL);
	cr_assert_eq(n, 8);
	cr_assert_str_eq(a, "h\xc3\xa9\xf0\x9f\x98\x80");
	cr_assert_eq(WideCharToMultiByte(CP_UTF8, 0, L"h\u00e9", -1, NULL, 0, NULL, NULL), 4);
	/* A lone surrogate: U+FFFD, or refused; a pair is joined. */
	cr_assert_eq(WideCharToMultiByte(CP_UTF8, 0, bad, -1, a, sizeof(a), NULL, NULL), 6);
	cr_assert_str_eq(a, "a\xef\xbf\xbd"
			    "b");
	cr_assert_eq(WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, bad, -1, a, sizeof(a), NULL,
					 NULL),
		     0);
	cr_assert_eq(GetLastError(), ERROR_NO_UNICODE_TRANSLATION);
	cr_assert_eq(WideCharToMultiByte(CP_UTF8, 0, pair, -1, a, sizeof(a), NULL, NULL), 5);
	cr_assert_str_eq(a, "\xf0\x9f\x98\x80");
	/* CP_ACP reports the replacement; CP_UTF8 takes no default char. */
	cr_assert_eq(WideCharToMultiByte(CP_ACP, 0, bad, -1, a, sizeof(a), NULL, &used), 6);
	cr_assert_eq(used, TRUE);
	cr_assert_eq(WideCharToMultiByte(CP_ACP, 0, L"ok", -1, a, sizeof(a), "?", &used), 3);
	cr_assert_eq(used, FALSE);
	cr_assert_eq(WideCharToMultiByte(CP_UTF8, 0, L"ok", -1, a, sizeof(a), NULL, &used), 0);
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	cr_assert_eq(
		WideCharToMultiByte(CP_UTF8, WC_NO_BEST_FIT_CHARS, L"ok", -1, a, 16, NULL, NULL),
		0);
	cr_assert_eq(GetLastError(), ERROR_INVALID_FLAGS);
	cr_assert_eq(WideCharToMultiByte(CP_UTF8, 0, L"hello", -1, a, 5, NULL, NULL), 0);
	cr_assert_eq(GetLastError(), ERROR_INSUFFICIENT_BUFFER);
}

/* ---- time ---- */

static SYSTEMTIME st_of(ULONGLONG v)
{
	FILETIME ft = { (DWORD)v, (DWORD)(v >> 32) };
	SYSTEMTIME st;

	memset(&st, 0xAB, sizeof(st));
	cr_assert(FileTimeToSystemTime(&ft, &st), "FileTimeToSystemTime(%llu)", v);
	return st;
}

#define ASSERT_ST(st, y, mo, dow, d, h, mi, s, ms)    \
	do {                                          \
		cr_assert_eq((st).wYear, y);          \
		cr_assert_eq((st).wMonth, mo);        \
		cr_assert_eq((st).wDayOfWeek, dow);   \
		cr_assert_eq((st).wDay, d);           \
		cr_assert_eq((st).wHour, h);          \
		cr_assert_eq((st).wMinute, mi);       \
		cr_assert_eq((st).wSecond, s);        \
		cr_assert_eq((st).wMilliseconds, ms); \
	} while (0)

Test(win32, file_time_to_system_time, .timeout = 10)
{
	FILETIME ft = { 0, 0x80000000u }, back;
	SYSTEMTIME st;

	ASSERT_ST(st_of(0), 1601, 1, 1, 1, 0, 0, 0, 0);                     /* a Monday */
	ASSERT_ST(st_of(116444736000000000ULL), 1970, 1, 4, 1, 0, 0, 0, 0); /* a Thursday */
	ASSERT_ST(st_of(132223104001234567ULL), 2020, 1, 3, 1, 0, 0, 0, 123);
	ASSERT_ST(st_of(125963012967890000ULL), 2000, 2, 2, 29, 12, 34, 56, 789);
	ASSERT_ST(st_of(125963012967890000ULL + 864000000000ULL - 1), 2000, 3, 3, 1, 12, 34, 56,
		  788);
	ASSERT_ST(st_of(0x7FFFFFFFFFFFFFFFULL), 30828, 9, 4, 14, 2, 48, 5, 477);
	cr_assert_not(FileTimeToSystemTime(&ft, &st));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	/* And back. */
	st = st_of(125963012967890000ULL);
	cr_assert(SystemTimeToFileTime(&st, &back));
	cr_assert_eq(((ULONGLONG)back.dwHighDateTime << 32) | back.dwLowDateTime,
		     125963012967890000ULL);
	st.wDay = 30; /* 2000-02-30 */
	cr_assert_not(SystemTimeToFileTime(&st, &back));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	st = st_of(0);
	st.wYear = 1600;
	cr_assert_not(SystemTimeToFileTime(&st, &back));
}

Test(win32, local_file_time_follows_tz, .timeout = 10)
{
	FILETIME utc = { 0, 0 }, local, back;
	ULONGLONG v = 132223104000000000ULL;

	utc.dwLowDateTime = (DWORD)v;
	utc.dwHighDateTime = (DWORD)(v >> 32);
	setenv("TZ", "XYZ-2", 1); /* two hours east of UTC, no DST */
	cr_assert(FileTimeToLocalFileTime(&utc, &local));
	cr_assert_eq(((ULONGLONG)local.dwHighDateTime << 32) | local.dwLowDateTime,
		     v + 2ULL * 3600 * 10000000);
	cr_assert(LocalFileTimeToFileTime(&local, &back));
	cr_assert_eq(back.dwLowDateTime, utc.dwLowDateTime);
	cr_assert_eq(back.dwHighDateTime, utc.dwHighDateTime);
	setenv("TZ", "ABC5", 1); /* five hours west */
	cr_assert(FileTimeToLocalFileTime(&utc, &local));
	cr_assert_eq(((ULONGLONG)local.dwHighDateTime << 32) | local.dwLowDateTime,
		     v - 5ULL * 3600 * 10000000);
	/* Before 1601 in local time: refused. */
	utc.dwLowDateTime = utc.dwHighDateTime = 0;
	cr_assert_not(FileTimeToLocalFileTime(&utc, &local));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
}

Test(win32, system_time_is_now, .timeout = 10)
{
	FILETIME ft;
	SYSTEMTIME st;
	struct timespec ts;
	time_t before, after;
	ULONGLONG v;

	/* Not time(NULL): glibc reads it from the coarse clock, which can
	 * still say second S when the precise one GetSystemTimeAsFileTime
	 * reads is past S + 1 (seen once in a make test run). */
	clock_gettime(CLOCK_REALTIME, &ts);
	before = ts.tv_sec;
	GetSystemTimeAsFileTime(&ft);
	clock_gettime(CLOCK_REALTIME, &ts);
	after = ts.tv_sec;
	v = ((ULONGLONG)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
	cr_assert_geq(v, 116444736000000000ULL + (ULONGLONG)before * 10000000);
	cr_assert_lt(v, 116444736000000000ULL + ((ULONGLONG)after + 1) * 10000000);
	GetSystemTime(&st);
	cr_assert_geq(st.wYear, 2024);
	setenv("TZ", "UTC0", 1);
	GetLocalTime(&st);
	cr_assert_geq(st.wYear, 2024);
}

/* ---- paths ---- */

Test(win32, full_path_names, .timeout = 10)
{
	const char *dir = tu_temp_dir("fltport-win32");
	char a[1024], want[1024];
	WCHAR w[1024];
	LPSTR part = (LPSTR)1;
	LPWSTR wpart = (LPWSTR)1;
	DWORD n;

	cr_assert_eq(chdir(dir), 0);
	cr_assert_not_null(getcwd(want, sizeof(want) - 32));
	strcat(want, "/a/c.txt");
	n = GetFullPathNameA("a\\b\\..\\.\\c.txt", sizeof(a), a, &part);
	cr_assert_str_eq(a, want);
	cr_assert_eq(n, strlen(want));
	cr_assert_str_eq(part, "c.txt");
	cr_assert_eq(part, a + n - 5);
	/* Absolute; repeated and trailing separators; ".." above the root. */
	n = GetFullPathNameA("/x/.//y\\z/", sizeof(a), a, &part);
	cr_assert_str_eq(a, "/x/y/z/");
	cr_assert_eq(n, 7);
	cr_assert_null(part);
	cr_assert_eq(GetFullPathNameA("/../..", sizeof(a), a, NULL), 1);
	cr_assert_str_eq(a, "/");
	/* Too small: the size needed, with the terminator; nothing written. */
	strcpy(a, "untouched");
	cr_assert_eq(GetFullPathNameA("/x/y", 4, a, &part), 5);
	cr_assert_str_eq(a, "untouched");
	cr_assert_eq(GetFullPathNameA("/x/y", 0, NULL, NULL), 5);
	/* Wide, with a non-ASCII name. */
	n = GetFullPathNameW(L"/d\u00e9j\u00e0/vu", ARRAYSIZE(w), w, &wpart);
	cr_assert_eq(wcscmp(w, L"/d\u00e9j\u00e0/vu"), 0);
	cr_assert_eq(n, 8);
	cr_assert_eq(wcscmp(wpart, L"vu"), 0);
	/* Errors. */
	cr_assert_eq(GetFullPathNameA("", sizeof(a), a, NULL), 0);
	cr_assert_eq(GetLastError(), ERROR_INVALID_NAME);
	cr_assert_eq(GetFullPathNameW(NULL, ARRAYSIZE(w), w, NULL), 0);
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
}

/* ---- strsafe.h ---- */

Test(win32, string_cch_copy_and_cat, .timeout = 10)
{
	char a[8];
	WCHAR w[6];
	size_t len = 99;

	cr_assert_eq(STRSAFE_E_INSUFFICIENT_BUFFER, (HRESULT)0x8007007A);
	cr_assert_eq(STRSAFE_E_INVALID_PARAMETER, (HRESULT)0x80070057);
	cr_assert_eq(StringCchCopyA(a, ARRAYSIZE(a), "short"), S_OK);
	cr_assert_str_eq(a, "short");
	cr_assert_eq(StringCchCopyA(a, ARRAYSIZE(a), "much too long"),
		     STRSAFE_E_INSUFFICIENT_BUFFER);
	cr_assert_str_eq(a, "much to"); /* 7 characters and the terminator */
	cr_assert_eq(StringCchCopyA(a, ARRAYSIZE(a), "1234567"), S_OK);
	cr_assert_eq(StringCchCopyA(a, 0, "x"), STRSAFE_E_INVALID_PARAMETER);
	cr_assert_str_eq(a, "1234567"); /* untouched */
	cr_assert_eq(StringCchCopyA(a, (size_t)STRSAFE_MAX_CCH + 1, "x"),
		     STRSAFE_E_INVALID_PARAMETER);
	cr_assert_str_eq(a, ""); /* emptied */
	cr_assert_eq(StringCchCopyW(w, ARRAYSIZE(w), L"wide string"),
		     STRSAFE_E_INSUFFICIENT_BUFFER);
	cr_assert_eq(wcscmp(w, L"wide "), 0);
	cr_assert_eq(StringCchCopyNA(a, ARRAYSIZE(a), "abcdef", 3), S_OK);
	cr_assert_str_eq(a, "abc");
	/* The N counts: at most STRSAFE_MAX_LENGTH; CopyN empties the
	 * destination when refused, CatN leaves it. */
	cr_assert_eq(STRSAFE_MAX_LENGTH, 2147483646);
	cr_assert_eq(StringCchCopyNA(a, ARRAYSIZE(a), "abc", STRSAFE_MAX_LENGTH + 1),
		     STRSAFE_E_INVALID_PARAMETER);
	cr_assert_str_eq(a, "");
	cr_assert_eq(StringCchCopyNW(w, ARRAYSIZE(w), L"abc", SIZE_MAX),
		     STRSAFE_E_INVALID_PARAMETER);
	cr_assert_eq(w[0], 0);
	cr_assert_eq(StringCchCopyNA(a, ARRAYSIZE(a), "abc", STRSAFE_MAX_LENGTH), S_OK);
	cr_assert_str_eq(a, "abc");
	cr_assert_eq(StringCchCatNA(a, ARRAYSIZE(a), "de", STRSAFE_MAX_LENGTH + 1),
		     STRSAFE_E_INVALID_PARAMETER);
	cr_assert_str_eq(a, "abc");
	cr_assert_eq(StringCchCatNW(w, ARRAYSIZE(w), L"de", SIZE_MAX), STRSAFE_E_INVALID_PARAMETER);
	cr_assert_eq(w[0], 0);
	cr_assert_eq(StringCchCatNA(a, ARRAYSIZE(a), "de", STRSAFE_MAX_LENGTH), S_OK);
	cr_assert_str_eq(a, "abcde");
	cr_assert_eq(StringCchCopyNA(a, ARRAYSIZE(a), "abc", 3), S_OK);
	/* Cat. */
	cr_assert_eq(StringCchCatA(a, ARRAYSIZE(a), "de"), S_OK);
	cr_assert_str_eq(a, "abcde");
	cr_assert_eq(StringCchCatA(a, ARRAYSIZE(a), "fghij"), STRSAFE_E_INSUFFICIENT_BUFFER);
	cr_assert_str_eq(a, "abcdefg");
	cr_assert_eq(StringCchCatA(a, ARRAYSIZE(a), "x"), STRSAFE_E_INSUFFICIENT_BUFFER);
	cr_assert_str_eq(a, "abcdefg");
	cr_assert_eq(StringCchCatA(a, ARRAYSIZE(a), ""), S_OK);
	memcpy(a, "12345678", 8); /* not terminated within its size */
	cr_assert_eq(StringCchCatA(a, ARRAYSIZE(a), "x"), STRSAFE_E_INVALID_PARAMETER);
	cr_assert_eq(memcmp(a, "12345678", 8), 0);
	cr_assert_eq(StringCchLengthA(a, ARRAYSIZE(a), &len), STRSAFE_E_INVALID_PARAMETER);
	cr_assert_eq(len, 0);
	cr_assert_eq(StringCchCopyW(w, ARRAYSIZE(w), L"ab"), S_OK);
	cr_assert_eq(StringCchCatNW(w, ARRAYSIZE(w), L"cdefgh", 2), S_OK);
	cr_assert_eq(wcscmp(w, L"abcd"), 0);
	/* Length. */
	cr_assert_eq(StringCchLengthW(w, ARRAYSIZE(w), &len), S_OK);
	cr_assert_eq(len, 4);
	cr_assert_eq(StringCchLengthW(w, 4, &len), STRSAFE_E_INVALID_PARAMETER);
	cr_assert_eq(StringCchLengthA(NULL, 10, &len), STRSAFE_E_INVALID_PARAMETER);
	cr_assert_eq(StringCbLengthW(w, sizeof(w), &len), S_OK);
	cr_assert_eq(len, 4 * sizeof(WCHAR));
	/* Cb: bytes. */
	cr_assert_eq(StringCbCopyW(w, sizeof(w), L"12345678"), STRSAFE_E_INSUFFICIENT_BUFFER);
	cr_assert_eq(wcscmp(w, L"12345"), 0);
	cr_assert_eq(StringCbCopyA(a, 4, "abcdef"), STRSAFE_E_INSUFFICIENT_BUFFER);
	cr_assert_str_eq(a, "abc");
}

static HRESULT vprintf_a(char *d, size_t n, const char *fmt, ...)
{
	va_list ap;
	HRESULT hr;

	va_start(ap, fmt);
	hr = StringCchVPrintfA(d, n, fmt, ap);
	va_end(ap);
	return hr;
}

Test(win32, string_cch_printf_msvc_rules, .timeout = 10)
{
	char a[128];
	WCHAR w[64];
	LONG neg = -1;
	ULONG big = 0xFFFFFFFFu;
	LONGLONG ll = -1234567890123LL;

	cr_assert_eq(StringCchPrintfA(a, ARRAYSIZE(a), "%ld %lu %lx %I64d %Iu|%5.2f|%-4s|%c%%", neg,
				      big, big, ll, (SIZE_T)77, 3.14159, "ab", 'z'),
		     S_OK);
	cr_assert_str_eq(a, "-1 4294967295 ffffffff -1234567890123 77| 3.14|ab  |z%");
	/* Narrow and wide strings, both ways, converted as UTF-8. */
	cr_assert_eq(StringCchPrintfA(a, ARRAYSIZE(a), "[%s][%S][%ls][%ws][%hs][%C]", "n",
				      L"caf\u00e9", L"w", L"x", "h", (int)L'\u00e9'),
		     S_OK);
	cr_assert_str_eq(a, "[n][caf\xc3\xa9][w][x][h][\xc3\xa9]");
	cr_assert_eq(StringCchPrintfW(w, ARRAYSIZE(w), L"[%s][%S][%hs][%ls][%c][%C]", L"wide",
				      "caf\xc3\xa9", "h", L"l", (int)L'W', 'n'),
		     S_OK);
	cr_assert_eq(wcscmp(w, L"[wide][caf\u00e9][h][l][W][n]"), 0, "got %ls", w);
	cr_assert_eq(StringCchPrintfA(a, ARRAYSIZE(a), "%s|%.2s|%*d|%-*d|%.*s", (char *)NULL, "abc",
				      4, 7, 3, 8, 1, "xyz"),
		     S_OK);
	cr_assert_str_eq(a, "(null)|ab|   7|8  |x");
	cr_assert_eq(StringCchPrintfA(a, ARRAYSIZE(a), "%p", (void *)0x1234), S_OK);
	cr_assert_str_eq(a, "0000000000001234");
	cr_assert_eq(
		StringCchPrintfA(a, ARRAYSIZE(a), "%hd %hu %hhx %08.3X", 70000, 70000, 0x1FF, 0xAB),
		S_OK);
	cr_assert_str_eq(a, "4464 4464 ff      0AB");
	/* Truncation: NUL-terminated, STRSAFE_E_INSUFFICIENT_BUFFER. */
	cr_assert_eq(StringCchPrintfA(a, 6, "%d-%s", 12345, "tail"), STRSAFE_E_INSUFFICIENT_BUFFER);
	cr_assert_str_eq(a, "12345");
	cr_assert_eq(StringCchPrintfA(a, 5,
				      "ab\xc3\xa9"
				      "cd"),
		     STRSAFE_E_INSUFFICIENT_BUFFER);
	cr_assert_str_eq(a, "ab\xc3\xa9");
	cr_assert_eq(StringCchPrintfW(w, 4, L"%s", L"abcdef"), STRSAFE_E_INSUFFICIENT_BUFFER);
	cr_assert_eq(wcscmp(w, L"abc"), 0);
	cr_assert_eq(StringCchPrintfA(a, 6, "%S", L"\u00e9\u00e9\u00e9"),
		     STRSAFE_E_INSUFFICIENT_BUFFER);
	cr_assert_str_eq(a, "\xc3\xa9\xc3\xa9", "a character is never cut");
	cr_assert_eq(StringCchPrintfA(a, 0, "x"), STRSAFE_E_INVALID_PARAMETER);
	cr_assert_eq(vprintf_a(a, ARRAYSIZE(a), "%s=%u", "v", 5u), S_OK);
	cr_assert_str_eq(a, "v=5");
	cr_assert_eq(vprintf_a(a, 3, "%s=%u", "v", 5u), STRSAFE_E_INSUFFICIENT_BUFFER);
	cr_assert_str_eq(a, "v=");
	cr_assert_eq(StringCbPrintfW(w, sizeof(w), L"%d", 42), S_OK);
	cr_assert_eq(wcscmp(w, L"42"), 0);
}

/* ---- excpt.h ---- */

static int try_run(int leave_at, int *log)
{
	*log = 0;
	__try {
		*log |= 1;
		for (int i = 0; i < 3; i++) {
			for (int j = 0; j < 3; j++) {
				if (i * 3 + j == leave_at)
					__leave; /* out of both loops and the __try */
			}
		}
		*log |= 2;
	} __finally {
		*log |= 4;
		if (AbnormalTermination())
			*log |= 8;
	}
	return *log;
}

Test(win32, try_finally_runs_on_leave_and_normal_exit, .timeout = 10)
{
	int log, outer = 0, handler = 0, filter = 0;

	cr_assert_eq(try_run(4, &log), 1 | 4);       /* left from the inner loop */
	cr_assert_eq(try_run(100, &log), 1 | 2 | 4); /* normal exit */
	/* Nested, with the lower-case SDK keywords. */
	try {
		outer |= 1;
		try {
			outer |= 2;
			leave;
		} finally {
			outer |= 4;
		}
		outer |= 8; /* the inner leave left only the inner try */
		leave;
		outer |= 16;
	} finally {
		outer |= 32;
	}
	cr_assert_eq(outer, 1 | 2 | 4 | 8 | 32);
	/* __except: the body runs; with no exception, neither the filter nor
	 * the handler does. */
	__try {
		outer |= 64;
	} __except (filter++, EXCEPTION_EXECUTE_HANDLER) {
		handler = 1;
	}
	cr_assert_eq(outer & 64, 64);
	cr_assert_eq(filter, 0);
	cr_assert_eq(handler, 0);
	cr_assert_eq(GetExceptionCode(), 0);
	cr_assert_eq(EXCEPTION_EXECUTE_HANDLER, 1);
	cr_assert_eq(EXCEPTION_CONTINUE_SEARCH, 0);
	cr_assert_eq(EXCEPTION_CONTINUE_EXECUTION, -1);
}

/* ---- types and constants ---- */

typedef struct {
	ULONG value;
	LIST_ENTRY link;
} ITEM;

Test(win32, list_entry_routines, .timeout = 10)
{
	LIST_ENTRY head;
	ITEM items[4];
	ULONG order[4], n = 0;

	InitializeListHead(&head);
	cr_assert(IsListEmpty(&head));
	for (ULONG i = 0; i < 4; i++) {
		items[i].value = i;
		if (i % 2)
			InsertHeadList(&head, &items[i].link);
		else
			InsertTailList(&head, &items[i].link);
	}
	/* 3 1 0 2 */
	cr_assert_not(IsListEmpty(&head));
	cr_assert_not(RemoveEntryList(&items[1].link)); /* 3 0 2 */
	cr_assert_eq(CONTAINING_RECORD(RemoveTailList(&head), ITEM, link)->value, 2);
	while (!IsListEmpty(&head))
		order[n++] = CONTAINING_RECORD(RemoveHeadList(&head), ITEM, link)->value;
	cr_assert_eq(n, 2);
	cr_assert_eq(order[0], 3);
	cr_assert_eq(order[1], 0);
	InsertTailList(&head, &items[0].link);
	cr_assert(RemoveEntryList(&items[0].link)); /* now empty */
	cr_assert(IsListEmpty(&head));
	cr_assert_eq(RemoveHeadList(&head), &head);
}

Test(win32, list_corruption_stops_the_process, .signal = SIGILL, .timeout = 10)
{
	LIST_ENTRY head, a, stray;

	InitializeListHead(&head);
	InitializeListHead(&stray); /* a list of its own: its Blink is not &a */
	InsertTailList(&head, &a);
	a.Flink = &stray; /* corrupt */
	RemoveEntryList(&a);
}

DEFINE_GUID(fp_test_guid, 0x12345678, 0x9abc, 0xdef0, 1, 2, 3, 4, 5, 6, 7, 8);
const GUID fp_test_guid = { 0x12345678, 0x9abc, 0xdef0, { 1, 2, 3, 4, 5, 6, 7, 8 } };

Test(win32, types_and_constants, .timeout = 10)
{
	GUID g = fp_test_guid;
	TCHAR t[] = TEXT("narrow"); /* UNICODE is not defined here */

	cr_assert_eq(sizeof(FILETIME), 8);
	cr_assert_eq(sizeof(SYSTEMTIME), 16);
	cr_assert_eq(sizeof(GUID), 16);
	cr_assert_eq(sizeof(LIST_ENTRY), 2 * sizeof(void *));
	cr_assert(IsEqualGUID(&g, &fp_test_guid));
	g.Data4[7] = 9;
	cr_assert_not(IsEqualGUID(&g, &fp_test_guid));
	cr_assert_eq(sizeof(t[0]), 1);
	cr_assert_eq(UNICODE_NULL, 0);
	cr_assert_eq(sizeof(UNICODE_NULL), sizeof(WCHAR));
	cr_assert_eq(MAX_PATH, 260);
	cr_assert_eq(E_BOUNDS, (HRESULT)0x8000000Bu);
	cr_assert_eq(E_NOINTERFACE, (HRESULT)0x80004002u);
	cr_assert_eq(E_ABORT, (HRESULT)0x80004004u);
	cr_assert_eq(IO_REPARSE_TAG_MOUNT_POINT, 0xA0000003u);
	cr_assert_eq(IO_REPARSE_TAG_SYMLINK, 0xA000000Cu);
	cr_assert_eq(IO_REPARSE_TAG_HSM, 0xC0000004u);
	cr_assert_eq(IO_REPARSE_TAG_DFS, 0x8000000Au);
	cr_assert_eq(IO_REPARSE_TAG_DEDUP, 0x80000013u);
	cr_assert_eq(IO_REPARSE_TAG_WOF, 0x80000017u);
	cr_assert_eq(IO_REPARSE_TAG_CLOUD, 0x9000001Au);
	cr_assert_eq(IO_REPARSE_TAG_AF_UNIX, 0x80000023u);
	cr_assert(IsReparseTagMicrosoft(IO_REPARSE_TAG_MOUNT_POINT));
	cr_assert(IsReparseTagNameSurrogate(IO_REPARSE_TAG_SYMLINK));
	cr_assert_not(IsReparseTagNameSurrogate(IO_REPARSE_TAG_DEDUP));
	cr_assert_eq(ERROR_ALREADY_EXISTS, 183);
	cr_assert_eq(ERROR_TOO_MANY_POSTS, 298);
	cr_assert_eq(ERROR_MOD_NOT_FOUND, 126);
	cr_assert_eq(ERROR_PROC_NOT_FOUND, 127);
	cr_assert_eq(ERROR_INVALID_FLAGS, 1004);
	cr_assert_eq(ERROR_NO_UNICODE_TRANSLATION, 1113);
	cr_assert_eq(ERROR_RESOURCE_TYPE_NOT_FOUND, 1813);
	cr_assert_eq(ERROR_RESOURCE_LANG_NOT_FOUND, 1815);
	cr_assert_eq(FORMAT_MESSAGE_ALLOCATE_BUFFER, 0x100);
	cr_assert_eq(FORMAT_MESSAGE_IGNORE_INSERTS, 0x200);
	cr_assert_eq(FORMAT_MESSAGE_FROM_STRING, 0x400);
	cr_assert_eq(FORMAT_MESSAGE_FROM_HMODULE, 0x800);
	cr_assert_eq(FORMAT_MESSAGE_FROM_SYSTEM, 0x1000);
	cr_assert_eq(FORMAT_MESSAGE_ARGUMENT_ARRAY, 0x2000);
	cr_assert_eq(LOAD_LIBRARY_AS_DATAFILE, 2);
	cr_assert_eq(CP_UTF8, 65001);
	cr_assert_eq(MB_ERR_INVALID_CHARS, 8);
	cr_assert_eq(WC_ERR_INVALID_CHARS, 0x80);
	cr_assert_eq(EVENT_ALL_ACCESS, 0x1F0003);
	cr_assert_eq(SEMAPHORE_ALL_ACCESS, 0x1F0003);
	cr_assert_eq(SYNCHRONIZE, 0x100000);
	cr_assert_eq(MAKELANGID(LANG_NEUTRAL, SUBLANG_DEFAULT), 0x400);
	cr_assert_eq(LANG_USER_DEFAULT, 0x400);
	cr_assert_eq(LPTR, 0x40);
}

/* ---- win_sdkuse: a minispy-style program, end to end ---- */

static atomic_int log_sent;

static ULONG put_record(UCHAR *out, ULONG seq, ULONG type, ULONG tag, ULONGLONG time,
			const WCHAR *name)
{
	SDKUSE_RECORD *r = (SDKUSE_RECORD *)out;
	ULONG len = (ULONG)(sizeof(*r) + (wcslen(name) + 1) * sizeof(WCHAR));

	len = (len + 7) & ~7u;
	memset(r, 0, len);
	r->Length = len;
	r->SequenceNumber = seq;
	r->RecordType = type;
	r->FileTag = tag;
	r->OriginatingTime.QuadPart = (LONGLONG)time;
	wcscpy(r->Name, name);
	return len;
}

static NTSTATUS sdk_message(PVOID cookie, PVOID in, ULONG in_len, PVOID out, ULONG out_len,
			    PULONG ret_len)
{
	const SDKUSE_COMMAND *c = in;
	UCHAR *p = out;
	ULONG n = 0;

	(void)cookie;
	*ret_len = 0;
	if (in_len < sizeof(*c))
		return STATUS_INVALID_PARAMETER;
	if (c->Command == SDKUSE_BAD)
		return STATUS_FLT_DELETING_OBJECT;
	if (c->Command != SDKUSE_GET_LOG || out_len < 1024)
		return STATUS_INVALID_PARAMETER;
	if (atomic_exchange(&log_sent, 1))
		return STATUS_NO_MORE_ENTRIES; /* minispy's "nothing new" */
	n += put_record(p + n, 1, 0, 0, 132223104001234567ULL,
			L"\\Device\\HarddiskVolume1\\caf\u00e9.txt");
	n += put_record(p + n, 2, 0, 0, 125963012967890000ULL,
			L"\\Device\\HarddiskVolume1\\\U0001F600.log");
	n += put_record(p + n, 3, SDKUSE_RECORD_FILETAG, IO_REPARSE_TAG_MOUNT_POINT, 0, L"");
	*ret_len = n;
	return STATUS_SUCCESS;
}

static NTSTATUS sdk_connect(PFLT_PORT client, PVOID server_cookie, PVOID ctx, ULONG ctx_len,
			    PVOID *cookie)
{
	(void)client;
	(void)server_cookie;
	(void)ctx;
	(void)ctx_len;
	*cookie = NULL;
	return STATUS_SUCCESS;
}

static void sdk_disconnect(PVOID cookie)
{
	(void)cookie;
}

Test(win32, sdkuse_client_end_to_end, .timeout = 60)
{
	static const char *const expected[] = {
		NULL, /* NAME chars=..., checked below */
		"MISSING hr=0x80070002",
		"ERROR The system cannot find the file specified.",
		"CONNECTED hr=0x00000000",
		"SEMAPHORE again=1 err=183",
		NULL, /* LOGFILE ..., checked below */
		"DRAINED r=0",
		"SHUTDOWN r=0",
		"OVERPOST ok=0 err=298",
		"REC seq=1 time=2020-01-01 00:00:00:123 wday=3 "
		"name=\\Device\\HarddiskVolume1\\caf\xc3\xa9.txt",
		"WREC \\Device\\HarddiskVolume1\\caf\xc3\xa9.txt|1",
		"REC seq=2 time=2000-02-29 12:34:56:789 wday=2 "
		"name=\\Device\\HarddiskVolume1\\\xf0\x9f\x98\x80.log",
		"WREC \\Device\\HarddiskVolume1\\\xf0\x9f\x98\x80.log|2",
		"REC seq=3 time=1601-01-01 00:00:00:000 wday=1 name=<mount point>",
		"WREC |3",
		"BAD hr=0x801F000B",
		"ERROR The object specified for this action is in the process of being deleted, "
		"therefore the action requested cannot be completed at this time.",
		"ALLOC n=52 text=[Cannot create a file when that file already exists. ]",
		"FREED 1",
		"PROC found=1",
		"DONE",
	};
	char line[1024], arg[160], want[1024], cwd[900];
	PFLT_PORT server = NULL;
	struct tu_proc p;
	const char *name, *dir;
	FILE *f;
	NTSTATUS st;
	size_t i;
	int rc, nrec = 0;

	tu_private_dir();
	dir = tu_temp_dir("fltport-sdkuse");
	cr_assert_eq(chdir(dir), 0);
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	setenv("TZ", "UTC0", 1); /* the client prints local times */
	name = tu_port_name("sdkuse");
	st = tw_open_port(name, sdk_connect, sdk_disconnect, sdk_message, &server);
	cr_assert_eq(st, STATUS_SUCCESS, "FltCreateCommunicationPort: 0x%08X", (unsigned)st);

	snprintf(arg, sizeof(arg), "\\%s", name);
	p = tu_spawn("win_sdkuse", (const char *const[]){ arg, "sdkuse.log", NULL });
	for (i = 0; i < ARRAYSIZE(expected); i++) {
		cr_assert(tu_read_line(&p, line, sizeof(line), 20000), "line %zu: nothing", i);
		if (i == 0) {
			snprintf(want, sizeof(want), "NAME chars=%zu", strlen(arg) + 1);
			cr_assert_str_eq(line, want);
		} else if (i == 5) {
			snprintf(want, sizeof(want), "LOGFILE %s/sdkuse.log part=sdkuse.log", cwd);
			cr_assert_str_eq(line, want);
		} else {
			cr_assert_str_eq(line, expected[i], "line %zu", i);
		}
	}
	rc = tu_wait(&p, 20000);
	cr_assert_eq(rc, 0, "win_sdkuse exit code %d", rc);
	FltCloseCommunicationPort(server);
	FltportUnloadFilter(NULL);

	/* The log file holds the REC lines. */
	f = fopen("sdkuse.log", "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		cr_assert_str_eq(line, expected[9 + 2 * nrec], "log line %d", nrec);
		nrec++;
	}
	fclose(f);
	cr_assert_eq(nrec, SDKUSE_RECORDS);
}
