/*
 * win_sdkuse — a Windows-style log reader for tests/compat/test_compat_win32.c,
 * written the way Microsoft's minispy user program (mspyUser.c, mspyLog.c)
 * is: UNICODE, a named shutdown semaphore released by the logging thread, a
 * polling FilterSendMessage loop that sleeps on
 * HRESULT_FROM_WIN32(ERROR_NO_MORE_ITEMS), errors shown with FormatMessage
 * (falling back to fltlib.dll's message table, found through
 * GetSystemDirectory + StringCchCat + LoadLibraryExW), times shown with
 * FileTimeToLocalFileTime + FileTimeToSystemTime, names converted with
 * MultiByteToWideChar / WideCharToMultiByte, records kept on a LIST_ENTRY
 * list.
 *
 * It includes only <windows.h>, <fltuser.h>, <strsafe.h> and the C library
 * (plus the shared message layout), so the same source also cross-compiles
 * for Windows with mingw-w64 (scripts/cross-compile-clients.sh).
 *
 *   win_sdkuse <port name> <log file>
 *
 * Prints one line per step (fflush after each); exit code 0 when it ran to
 * the end.  Every wait is bounded (10 s).
 */
#ifndef UNICODE
#define UNICODE
#endif
#ifndef _UNICODE
#define _UNICODE
#endif

#include <windows.h>
#include <fltuser.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdkuse_wire.h"

#include <strsafe.h> /* last, as in minispy: it deprecates the unsafe C functions */

#ifdef _WIN32
/* The list routines are in the WDK headers only; user programs on Windows
 * bring their own (fltport's windows.h has them). */
static void InitializeListHead(PLIST_ENTRY head)
{
	head->Flink = head->Blink = head;
}

static BOOLEAN IsListEmpty(const LIST_ENTRY *head)
{
	return head->Flink == head;
}

static void InsertTailList(PLIST_ENTRY head, PLIST_ENTRY entry)
{
	entry->Flink = head;
	entry->Blink = head->Blink;
	head->Blink->Flink = entry;
	head->Blink = entry;
}

static PLIST_ENTRY RemoveHeadList(PLIST_ENTRY head)
{
	PLIST_ENTRY entry = head->Flink;

	head->Flink = entry->Flink;
	entry->Flink->Blink = head;
	return entry;
}
#endif

#define POLL_INTERVAL 20 /* ms */
#define WAIT_LIMIT 10000 /* ms */
#define SHUTDOWN_NAME TEXT("sdkuse shut down")
#define DRAINED_NAME L"sdkuse drained"

typedef struct _LOG_COPY {
	LIST_ENTRY Entry;
	ULONG SequenceNumber;
	ULONG RecordType;
	ULONG FileTag;
	FILETIME Time;
	WCHAR Name[64];
} LOG_COPY, *PLOG_COPY;

typedef struct _LOG_CONTEXT {
	HANDLE Port;
	HANDLE ShutDown;
	LONG volatile CleaningUp;
	CRITICAL_SECTION Lock;
	LIST_ENTRY Records; /* LOG_COPY, under Lock */
	ULONG Count;        /* under Lock */
} LOG_CONTEXT, *PLOG_CONTEXT;

static void say(const char *line)
{
	printf("%s\n", line);
	fflush(stdout);
}

/* DisplayError of mspyUser.c: the system's text, else fltlib.dll's. */
static void display_error(DWORD code)
{
	WCHAR buffer[MAX_PATH] = { 0 };
	char text[4 * MAX_PATH], line[4 * MAX_PATH + 16];
	HMODULE module;
	DWORD count;

	count = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM, NULL, code, 0, buffer, ARRAYSIZE(buffer),
			       NULL);
	if (count == 0) {
		count = GetSystemDirectoryW(buffer, ARRAYSIZE(buffer));
		if (count == 0 || count > ARRAYSIZE(buffer) ||
		    StringCchCatW(buffer, ARRAYSIZE(buffer), L"\\fltlib.dll") != S_OK) {
			say("ERROR no system directory");
			return;
		}
		module = LoadLibraryExW(buffer, NULL, LOAD_LIBRARY_AS_DATAFILE);
		count = FormatMessageW(FORMAT_MESSAGE_FROM_HMODULE, module, code, 0, buffer,
				       ARRAYSIZE(buffer), NULL);
		if (module != NULL)
			FreeLibrary(module);
		if (count == 0) {
			StringCchPrintfA(line, ARRAYSIZE(line), "ERROR untranslated 0x%08lX", code);
			say(line);
			return;
		}
	}
	while (count > 0 && (buffer[count - 1] == L'\r' || buffer[count - 1] == L'\n'))
		buffer[--count] = UNICODE_NULL;
	if (WideCharToMultiByte(CP_UTF8, 0, buffer, -1, text, sizeof(text), NULL, NULL) == 0) {
		say("ERROR not convertible");
		return;
	}
	StringCchPrintfA(line, ARRAYSIZE(line), "ERROR %s", text);
	say(line);
}

/* Copy the records of one reply onto the context's list. */
static void keep_records(PLOG_CONTEXT ctx, const char *buffer, DWORD bytes)
{
	DWORD used = 0;

	while (used + FIELD_OFFSET(SDKUSE_RECORD, Name) <= bytes) {
		const SDKUSE_RECORD *rec = (const SDKUSE_RECORD *)(buffer + used);
		PLOG_COPY copy;

		if (rec->Length < sizeof(SDKUSE_RECORD) + sizeof(WCHAR) ||
		    rec->Length > bytes - used) {
			say("BADRECORD");
			return;
		}
		copy = (PLOG_COPY)calloc(1, sizeof(*copy));
		if (!copy) {
			say("NOMEMORY");
			return;
		}
		copy->SequenceNumber = rec->SequenceNumber;
		copy->RecordType = rec->RecordType;
		copy->FileTag = rec->FileTag;
		copy->Time.dwLowDateTime = rec->OriginatingTime.LowPart;
		copy->Time.dwHighDateTime = (DWORD)rec->OriginatingTime.HighPart;
		StringCchCopyNW(copy->Name, ARRAYSIZE(copy->Name), rec->Name,
				(rec->Length - sizeof(SDKUSE_RECORD)) / sizeof(WCHAR));
		EnterCriticalSection(&ctx->Lock);
		InsertTailList(&ctx->Records, &copy->Entry);
		ctx->Count++;
		LeaveCriticalSection(&ctx->Lock);
		used += rec->Length;
	}
}

/* RetrieveLogRecords of mspyLog.c. */
static DWORD WINAPI retrieve_log_records(LPVOID parameter)
{
	PLOG_CONTEXT ctx = (PLOG_CONTEXT)parameter;
	PVOID aligned[4096 / sizeof(PVOID)];
	SDKUSE_COMMAND command = { SDKUSE_GET_LOG, 0 };
	BOOL drained = FALSE;
	DWORD bytes = 0;
	HRESULT hr;
	ULONG count;

	while (!InterlockedCompareExchange(&ctx->CleaningUp, 0, 0)) {
		hr = FilterSendMessage(ctx->Port, &command, sizeof(command), aligned,
				       sizeof(aligned), &bytes);
		if (IS_ERROR(hr)) {
			if (hr == HRESULT_FROM_WIN32(ERROR_INVALID_HANDLE)) {
				say("UNLOADED");
				ExitProcess(0);
			}
			if (hr != HRESULT_FROM_WIN32(ERROR_NO_MORE_ITEMS)) {
				char line[64];

				StringCchPrintfA(line, ARRAYSIZE(line), "UNEXPECTED hr=0x%08lX",
						 (unsigned long)hr);
				say(line);
			}
			EnterCriticalSection(&ctx->Lock);
			count = ctx->Count;
			LeaveCriticalSection(&ctx->Lock);
			if (!drained && count >= SDKUSE_RECORDS) {
				/* Tell the main thread, by name, as another component would. */
				HANDLE event = OpenEventW(EVENT_MODIFY_STATE, FALSE, DRAINED_NAME);

				if (event) {
					SetEvent(event);
					CloseHandle(event);
				}
				drained = TRUE;
			}
			Sleep(POLL_INTERVAL);
			continue;
		}
		keep_records(ctx, (const char *)aligned, bytes);
	}
	ReleaseSemaphore(ctx->ShutDown, 1, NULL);
	return 0;
}

static void print_record(PLOG_COPY rec, FILE *log)
{
	FILETIME local;
	SYSTEMTIME st;
	char when[32], name[256], line[512];
	WCHAR wide[128];

	if (!FileTimeToLocalFileTime(&rec->Time, &local) || !FileTimeToSystemTime(&local, &st)) {
		say("TIMEERROR");
		return;
	}
	StringCchPrintfA(when, ARRAYSIZE(when), "%04u-%02u-%02u %02u:%02u:%02u:%03u", st.wYear,
			 st.wMonth, st.wDay, st.wHour, st.wMinute, st.wSecond, st.wMilliseconds);
	if (rec->RecordType & SDKUSE_RECORD_FILETAG)
		StringCchCopyA(name, ARRAYSIZE(name),
			       rec->FileTag == IO_REPARSE_TAG_MOUNT_POINT ? "<mount point>"
									  : "<other tag>");
	else if (WideCharToMultiByte(CP_UTF8, 0, rec->Name, -1, name, sizeof(name), NULL, NULL) ==
		 0)
		StringCchCopyA(name, ARRAYSIZE(name), "<unconvertible>");
	StringCchPrintfA(line, ARRAYSIZE(line), "REC seq=%lu time=%s wday=%u name=%s",
			 rec->SequenceNumber, when, st.wDayOfWeek, name);
	say(line);
	fprintf(log, "%s\n", line);

	/* The wide form: %s is a wide string in StringCchPrintfW (MSVC's rule). */
	if (StringCchPrintfW(wide, ARRAYSIZE(wide), L"%s|%lu", rec->Name, rec->SequenceNumber) ==
		    S_OK &&
	    WideCharToMultiByte(CP_UTF8, 0, wide, -1, name, sizeof(name), NULL, NULL) != 0) {
		StringCchPrintfA(line, ARRAYSIZE(line), "WREC %s", name);
		say(line);
	}
}

int main(int argc, char *argv[])
{
	WCHAR port_name[MAX_PATH], missing[MAX_PATH + 16];
	char line[1024], full[1024];
	LOG_CONTEXT context;
	HANDLE port = INVALID_HANDLE_VALUE, again, drained, thread;
	LPSTR message = NULL, file_part = NULL;
	HMODULE fltlib;
	FILE *log;
	HRESULT hr;
	DWORD r, chars;
	LONG previous = -1;

	if (argc != 3) {
		fprintf(stderr, "usage: win_sdkuse <port name> <log file>\n");
		return 2;
	}
	ZeroMemory(&context, sizeof(context));
	InitializeCriticalSection(&context.Lock);
	InitializeListHead(&context.Records);

	chars = (DWORD)MultiByteToWideChar(CP_ACP, MB_ERR_INVALID_CHARS, argv[1], -1, port_name,
					   ARRAYSIZE(port_name));
	if (chars == 0) {
		say("NAME invalid");
		return 1;
	}
	StringCchPrintfA(line, ARRAYSIZE(line), "NAME chars=%lu", chars);
	say(line);

	/* A port that does not exist first: the error path of mspyUser.c. */
	StringCchPrintfW(missing, ARRAYSIZE(missing), L"%s-missing", port_name);
	hr = FilterConnectCommunicationPort(missing, 0, NULL, 0, NULL, &port);
	StringCchPrintfA(line, ARRAYSIZE(line), "MISSING hr=0x%08lX", (unsigned long)hr);
	say(line);
	if (IS_ERROR(hr))
		display_error((DWORD)hr);

	hr = FilterConnectCommunicationPort(port_name, 0, NULL, 0, NULL, &port);
	StringCchPrintfA(line, ARRAYSIZE(line), "CONNECTED hr=0x%08lX", (unsigned long)hr);
	say(line);
	if (IS_ERROR(hr)) {
		display_error((DWORD)hr);
		return 1;
	}
	context.Port = port;

	context.ShutDown = CreateSemaphore(NULL, 0, 1, SHUTDOWN_NAME);
	if (context.ShutDown == NULL) {
		display_error(GetLastError());
		return 1;
	}
	again = CreateSemaphore(NULL, 0, 1, SHUTDOWN_NAME);
	StringCchPrintfA(line, ARRAYSIZE(line), "SEMAPHORE again=%d err=%lu", again != NULL,
			 GetLastError());
	say(line);
	if (again)
		CloseHandle(again);
	drained = CreateEventW(NULL, TRUE, FALSE, DRAINED_NAME);

	r = GetFullPathNameA(argv[2], sizeof(full), full, &file_part);
	if (r == 0 || r >= sizeof(full)) {
		say("LOGFILE error");
		return 1;
	}
	StringCchPrintfA(line, ARRAYSIZE(line), "LOGFILE %s part=%s", full,
			 file_part ? file_part : "(none)");
	say(line);
	log = fopen(full, "w");
	if (!log) {
		say("LOGFILE not opened");
		return 1;
	}

	thread = CreateThread(NULL, 0, retrieve_log_records, &context, 0, NULL);
	if (!thread) {
		display_error(GetLastError());
		return 1;
	}
	r = WaitForSingleObject(drained, WAIT_LIMIT);
	StringCchPrintfA(line, ARRAYSIZE(line), "DRAINED r=%lu", r);
	say(line);

	InterlockedExchange(&context.CleaningUp, TRUE);
	r = WaitForSingleObject(context.ShutDown, WAIT_LIMIT);
	StringCchPrintfA(line, ARRAYSIZE(line), "SHUTDOWN r=%lu", r);
	say(line);
	r = ReleaseSemaphore(context.ShutDown, 2, &previous);
	StringCchPrintfA(line, ARRAYSIZE(line), "OVERPOST ok=%lu err=%lu", r, GetLastError());
	say(line);
	WaitForSingleObject(thread, WAIT_LIMIT);

	while (!IsListEmpty(&context.Records)) {
		PLOG_COPY rec =
			CONTAINING_RECORD(RemoveHeadList(&context.Records), LOG_COPY, Entry);

		print_record(rec, log);
		free(rec);
	}
	fclose(log);

	/* A FltMgr error: its text comes from fltlib.dll's table. */
	{
		SDKUSE_COMMAND bad = { SDKUSE_BAD, 0 };
		DWORD bytes = 0;

		hr = FilterSendMessage(port, &bad, sizeof(bad), NULL, 0, &bytes);
		StringCchPrintfA(line, ARRAYSIZE(line), "BAD hr=0x%08lX", (unsigned long)hr);
		say(line);
		display_error((DWORD)hr);
	}

	r = FormatMessageA(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM |
				   FORMAT_MESSAGE_IGNORE_INSERTS | FORMAT_MESSAGE_MAX_WIDTH_MASK,
			   NULL, ERROR_ALREADY_EXISTS, MAKELANGID(LANG_NEUTRAL, SUBLANG_DEFAULT),
			   (LPSTR)&message, 0, NULL);
	StringCchPrintfA(line, ARRAYSIZE(line), "ALLOC n=%lu text=[%s]", r,
			 message ? message : "(null)");
	say(line);
	StringCchPrintfA(line, ARRAYSIZE(line), "FREED %d", LocalFree(message) == NULL);
	say(line);

	fltlib = LoadLibraryW(L"fltlib.dll");
	StringCchPrintfA(line, ARRAYSIZE(line), "PROC found=%d",
			 fltlib != NULL && GetProcAddress(fltlib, "FilterSendMessage") != NULL);
	say(line);
	if (fltlib)
		FreeLibrary(fltlib);

	CloseHandle(thread);
	CloseHandle(drained);
	CloseHandle(context.ShutDown);
	CloseHandle(port);
	DeleteCriticalSection(&context.Lock);
	say("DONE");
	return 0;
}
