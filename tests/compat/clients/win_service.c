/*
 * win_service — a port service built the way Windows services often are,
 * for tests/compat/test_compat_services.c: a reader thread takes messages
 * with synchronous FilterGetMessage calls and queues them (an SRW lock and
 * two condition variables), two workers answer them and append a line per
 * message to a log file (CreateFile, WriteFile, sprintf_s), timings from
 * GetTickCount64 and QueryPerformanceCounter.
 *
 * It includes only <windows.h>, <fltuser.h> and standard C headers, so the
 * same source also cross-compiles for Windows with mingw-w64 (SPEC §8.31).
 *
 *   win_service <port name> <log file>
 *
 * When the filter closes the connection the reader's FilterGetMessage fails
 * with HRESULT_FROM_WIN32(ERROR_INVALID_HANDLE) (SPEC §8.14); the queue
 * drains, the workers stop, the log is flushed, and it prints
 *
 *   DONE answered=<n> bad=<anomalies>
 *
 * and exits 0 if nothing was wrong.  Before that: "CONNECTED hr=0x...",
 * "SYSINFO granularity=<n>".
 */
#include <windows.h>
#include <fltuser.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service_wire.h"

#define QCAP 16

typedef struct _SVC_MESSAGE {
	FILTER_MESSAGE_HEADER Header;
	SVC_REQUEST Request;
} SVC_MESSAGE;

#pragma pack(push, 1)
typedef struct _SVC_REPLY_MESSAGE {
	FILTER_REPLY_HEADER Header;
	SVC_REPLY Reply;
} SVC_REPLY_MESSAGE;
#pragma pack(pop)

static HANDLE port, logfile;
static SRWLOCK qlock = SRWLOCK_INIT, loglock = SRWLOCK_INIT;
static CONDITION_VARIABLE not_empty = CONDITION_VARIABLE_INIT;
static CONDITION_VARIABLE not_full = CONDITION_VARIABLE_INIT;
static SVC_MESSAGE queue[QCAP];
static int qhead, qlen, stopping;
static LONG answered, bad;

static void log_line(const char *text)
{
	DWORD n = 0;

	AcquireSRWLockExclusive(&loglock);
	if (!WriteFile(logfile, text, (DWORD)strlen(text), &n, NULL) || n != strlen(text))
		InterlockedIncrement(&bad);
	ReleaseSRWLockExclusive(&loglock);
}

static DWORD WINAPI worker(LPVOID arg)
{
	(void)arg;
	for (;;) {
		SVC_MESSAGE m;
		SVC_REPLY_MESSAGE r;
		char line[96], cmd[8];
		HRESULT hr;

		AcquireSRWLockExclusive(&qlock);
		while (qlen == 0 && !stopping)
			SleepConditionVariableSRW(&not_empty, &qlock, INFINITE, 0);
		if (qlen == 0) {
			ReleaseSRWLockExclusive(&qlock);
			return 0;
		}
		m = queue[qhead];
		qhead = (qhead + 1) % QCAP;
		qlen--;
		ReleaseSRWLockExclusive(&qlock);
		WakeConditionVariable(&not_full);

		memset(&r, 0, sizeof(r));
		r.Header.MessageId = m.Header.MessageId;
		r.Reply.Seq = m.Request.Seq;
		m.Request.Text[SVC_TEXT_MAX - 1] = '\0';
		m.Request.Command[sizeof(m.Request.Command) - 1] = '\0';
		if (strcpy_s(cmd, sizeof(cmd), m.Request.Command) == 0 &&
		    _stricmp(cmd, "sum") == 0) {
			for (const char *p = m.Request.Text; *p; p++)
				r.Reply.Sum += (unsigned char)*p;
		} else {
			r.Reply.Sum = 0xFFFFFFFFu;
		}
		hr = FilterReplyMessage(port, &r.Header, sizeof(r));
		if (FAILED(hr) && hr != HRESULT_FROM_WIN32(ERROR_INVALID_HANDLE)) {
			InterlockedIncrement(&bad);
			continue;
		}
		if (SUCCEEDED(hr))
			InterlockedIncrement(&answered);
		/* MSVC's rules: %lu is a ULONG, 32-bit, on both targets. */
		if (sprintf_s(line, sizeof(line), "seq=%lu sum=%lu\n", r.Reply.Seq, r.Reply.Sum) <
		    0)
			InterlockedIncrement(&bad);
		else
			log_line(line);
	}
}

int main(int argc, char **argv)
{
	HANDLE workers[2];
	SYSTEM_INFO si;
	WCHAR name[256];
	LARGE_INTEGER t0, t1, freq;
	ULONGLONG start = GetTickCount64();
	HRESULT hr;
	size_t i;

	if (argc != 3) {
		fprintf(stderr, "usage: win_service <port> <log file>\n");
		return 2;
	}
	QueryPerformanceFrequency(&freq);
	QueryPerformanceCounter(&t0);
	GetSystemInfo(&si);
	printf("SYSINFO granularity=%lu\n", (unsigned long)si.dwAllocationGranularity);
	for (i = 0; argv[1][i] && i + 1 < 256; i++)
		name[i] = (WCHAR)(unsigned char)argv[1][i];
	name[i] = 0;
	logfile = CreateFileA(argv[2], GENERIC_WRITE, FILE_SHARE_READ, NULL, CREATE_ALWAYS,
			      FILE_ATTRIBUTE_NORMAL, NULL);
	if (logfile == INVALID_HANDLE_VALUE) {
		printf("ERROR CreateFile %lu\n", (unsigned long)GetLastError());
		return 1;
	}
	hr = FilterConnectCommunicationPort(name, 0, NULL, 0, NULL, &port);
	printf("CONNECTED hr=0x%08X\n", (unsigned)hr);
	fflush(stdout);
	if (FAILED(hr))
		return 1;
	for (int w = 0; w < 2; w++) {
		workers[w] = CreateThread(NULL, 0, worker, NULL, 0, NULL);
		if (!workers[w])
			return 1;
	}
	for (;;) {
		SVC_MESSAGE m;

		hr = FilterGetMessage(port, &m.Header, sizeof(m), NULL);
		if (FAILED(hr))
			break;
		AcquireSRWLockExclusive(&qlock);
		while (qlen == QCAP)
			SleepConditionVariableSRW(&not_full, &qlock, INFINITE, 0);
		queue[(qhead + qlen) % QCAP] = m;
		qlen++;
		ReleaseSRWLockExclusive(&qlock);
		WakeConditionVariable(&not_empty);
	}
	if (hr != HRESULT_FROM_WIN32(ERROR_INVALID_HANDLE))
		InterlockedIncrement(&bad);
	AcquireSRWLockExclusive(&qlock);
	stopping = 1;
	ReleaseSRWLockExclusive(&qlock);
	WakeAllConditionVariable(&not_empty);
	if (WaitForMultipleObjects(2, workers, TRUE, 30000) != WAIT_OBJECT_0)
		InterlockedIncrement(&bad);
	CloseHandle(workers[0]);
	CloseHandle(workers[1]);
	if (!FlushFileBuffers(logfile) || !CloseHandle(logfile))
		InterlockedIncrement(&bad);
	QueryPerformanceCounter(&t1);
	if (t1.QuadPart < t0.QuadPart || freq.QuadPart <= 0 || GetTickCount64() < start)
		InterlockedIncrement(&bad);
	printf("DONE answered=%ld bad=%ld\n", (long)answered, (long)bad);
	fflush(stdout);
	CloseHandle(port);
	return bad == 0 ? 0 : 1;
}
