/*
 * win_scanner — a user-mode scanner service in the style of the
 * Windows-driver-samples scanner (scanUser.c), for
 * tests/compat/test_compat_scanner.c (issue 3, point 2).
 *
 * It includes only <windows.h>, <fltuser.h> and standard C headers, so the
 * same source also cross-compiles for Windows with mingw-w64 (SPEC §8.31).
 *
 *   win_scanner <port name> <threads> <requests per thread> [--watchdog SECONDS]
 *
 * Connects, creates an I/O completion port, pre-posts threads × requests
 * overlapped FilterGetMessage calls (each SCANNER_MESSAGE embeds its
 * OVERLAPPED), and runs <threads> workers that take completions, scan the
 * contents, reply with a packed {FILTER_REPLY_HEADER; SCANNER_REPLY} of
 * sizeof(FILTER_REPLY_HEADER) + sizeof(SCANNER_REPLY) bytes and repost the
 * read.  When the filter closes the connection every posted read completes
 * with ERROR_INVALID_HANDLE (SPEC §8.14); once all have, the workers stop and
 * it prints
 *
 *   DONE answered=<n> failed=<reads ended> bad=<anomalies> lasterr=<err>
 *
 * and exits 0 if nothing was wrong, 1 otherwise (3 from the watchdog).
 * Lines before that: "CONNECTED hr=0x...", "READY posted=<n>".
 */
#include <windows.h>
#include <fltuser.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#ifndef FLT_PORT_FLAG_SYNC_HANDLE
#define FLT_PORT_FLAG_SYNC_HANDLE 0x00000001
#endif
#ifndef FLT_PORT_CONTEXT_MAX
#define FLT_PORT_CONTEXT_MAX 0xFFE8
#endif

#define MAX_THREADS 64
#define MAX_REQUESTS 64

#include "scanner_wire.h"

typedef struct _SCANNER_MESSAGE {
	FILTER_MESSAGE_HEADER MessageHeader;
	SCANNER_NOTIFICATION Notification;
	OVERLAPPED Ovlp;
} SCANNER_MESSAGE, *PSCANNER_MESSAGE;

#pragma pack(push, 1)
typedef struct _SCANNER_REPLY_MESSAGE {
	FILTER_REPLY_HEADER ReplyHeader;
	SCANNER_REPLY Reply;
} SCANNER_REPLY_MESSAGE, *PSCANNER_REPLY_MESSAGE;
#pragma pack(pop)

static HANDLE port, completion, lock;
static int nthreads, total_reads;
static unsigned long answered, failed, bad;
static DWORD lasterr;

static unsigned fnv32(const void *p, size_t n)
{
	const unsigned char *b = (const unsigned char *)p;
	unsigned h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 16777619u;
	}
	return h;
}

static BOOLEAN scan(const UCHAR *p, ULONG n)
{
	static const char foul[] = "foul";

	for (ULONG i = 0; i + 4 <= n; i++)
		if (memcmp(p + i, foul, 4) == 0)
			return FALSE;
	return TRUE;
}

static void note_bad(const char *why, unsigned long long v)
{
	WaitForSingleObject(lock, INFINITE);
	if (bad++ < 10)
		fprintf(stderr, "win_scanner: %s (%llu)\n", why, v);
	SetEvent(lock);
}

/* A posted read ended (the connection is gone): when all have, wake every
 * worker with a packet without an OVERLAPPED. */
static void read_ended(DWORD err)
{
	BOOL last;

	WaitForSingleObject(lock, INFINITE);
	failed++;
	lasterr = err;
	if (err != ERROR_INVALID_HANDLE && bad++ < 10)
		fprintf(stderr, "win_scanner: read ended with %u\n", (unsigned)err);
	last = failed == (unsigned long)total_reads;
	SetEvent(lock);
	if (last)
		for (int i = 0; i < nthreads; i++)
			PostQueuedCompletionStatus(completion, 0, 0, NULL);
}

static DWORD WINAPI worker(LPVOID arg)
{
	(void)arg;
	for (;;) {
		DWORD bytes = 0;
		ULONG_PTR key = 0;
		LPOVERLAPPED ov = NULL;
		BOOL ok = GetQueuedCompletionStatus(completion, &bytes, &key, &ov, INFINITE);
		PSCANNER_MESSAGE msg;
		SCANNER_REPLY_MESSAGE reply;
		HRESULT hr;

		if (!ov) {
			if (!ok)
				note_bad("GetQueuedCompletionStatus failed", GetLastError());
			return 0; /* the quit packet */
		}
		msg = CONTAINING_RECORD(ov, SCANNER_MESSAGE, Ovlp);
		if (!ok) {
			read_ended(GetLastError());
			continue;
		}
		if (bytes != sizeof(FILTER_MESSAGE_HEADER) + sizeof(SCANNER_NOTIFICATION))
			note_bad("bytes", bytes);
		if (msg->MessageHeader.ReplyLength !=
		    sizeof(FILTER_REPLY_HEADER) + sizeof(SCANNER_REPLY))
			note_bad("ReplyLength", msg->MessageHeader.ReplyLength);
		if (key != 0x5CA)
			note_bad("key", key);
		if (msg->Notification.BytesToScan > SCANNER_READ_BUFFER_SIZE)
			msg->Notification.BytesToScan = SCANNER_READ_BUFFER_SIZE;

		memset(&reply, 0, sizeof(reply));
		reply.ReplyHeader.Status = 0;
		reply.ReplyHeader.MessageId = msg->MessageHeader.MessageId;
		reply.Reply.SafeToOpen =
			scan(msg->Notification.Contents, msg->Notification.BytesToScan);
		reply.Reply.Seq = msg->Notification.Reserved;
		reply.Reply.Sum = fnv32(msg->Notification.Contents, msg->Notification.BytesToScan);
		hr = FilterReplyMessage(port, (PFILTER_REPLY_HEADER)&reply,
					sizeof(FILTER_REPLY_HEADER) + sizeof(SCANNER_REPLY));
		if (hr == S_OK) {
			WaitForSingleObject(lock, INFINITE);
			answered++;
			SetEvent(lock);
		} else {
			note_bad("FilterReplyMessage", (unsigned)hr);
		}

		memset(&msg->Ovlp, 0, sizeof(OVERLAPPED));
		hr = FilterGetMessage(port, &msg->MessageHeader,
				      FIELD_OFFSET(SCANNER_MESSAGE, Ovlp), &msg->Ovlp);
		if (hr == E_HANDLE) {
			read_ended(ERROR_INVALID_HANDLE); /* closed meanwhile: fails at once */
		} else if (hr != HRESULT_FROM_WIN32(ERROR_IO_PENDING)) {
			note_bad("FilterGetMessage repost", (unsigned)hr);
			read_ended(ERROR_GEN_FAILURE);
		}
	}
}

static DWORD WINAPI watchdog(LPVOID arg)
{
	DWORD secs = (DWORD)(ULONG_PTR)arg;

	Sleep(secs * 1000);
	fprintf(stderr, "win_scanner: watchdog: %u s passed, exiting\n", (unsigned)secs);
	exit(3);
}

int main(int argc, char **argv)
{
	static SCANNER_MESSAGE msgs[MAX_THREADS * MAX_REQUESTS];
	HANDLE threads[MAX_THREADS], wd;
	WCHAR name[256];
	DWORD secs = 30, w;
	int requests, posted = 0;
	size_t i;
	HRESULT hr;

	if (argc < 4) {
		fprintf(stderr, "usage: win_scanner <port> <threads> <requests> [--watchdog s]\n");
		return 2;
	}
	if (argc >= 6 && strcmp(argv[4], "--watchdog") == 0)
		secs = (DWORD)strtoul(argv[5], NULL, 0);
	wd = CreateThread(NULL, 0, watchdog, (LPVOID)(ULONG_PTR)secs, 0, NULL);
	if (wd)
		CloseHandle(wd);
	nthreads = atoi(argv[2]);
	requests = atoi(argv[3]);
	if (nthreads < 1 || nthreads > MAX_THREADS || requests < 1 || requests > MAX_REQUESTS)
		return 2;
	total_reads = nthreads * requests;
	for (i = 0; argv[1][i] && i + 1 < 256; i++)
		name[i] = (WCHAR)(unsigned char)argv[1][i];
	name[i] = 0;
	lock = CreateEventW(NULL, FALSE, TRUE, NULL);

	hr = FilterConnectCommunicationPort(name, 0, NULL, 0, NULL, &port);
	printf("CONNECTED hr=0x%08X\n", (unsigned)hr);
	fflush(stdout);
	if (FAILED(hr))
		return 1;
	completion = CreateIoCompletionPort(port, NULL, 0x5CA, (DWORD)nthreads);
	if (!completion) {
		printf("ERROR CreateIoCompletionPort %u\n", (unsigned)GetLastError());
		return 1;
	}
	for (int t = 0; t < nthreads; t++) {
		threads[t] = CreateThread(NULL, 0, worker, NULL, 0, NULL);
		if (!threads[t])
			return 1;
		for (int r = 0; r < requests; r++) {
			PSCANNER_MESSAGE msg = &msgs[posted++];

			memset(&msg->Ovlp, 0, sizeof(OVERLAPPED));
			hr = FilterGetMessage(port, &msg->MessageHeader,
					      FIELD_OFFSET(SCANNER_MESSAGE, Ovlp), &msg->Ovlp);
			if (hr != HRESULT_FROM_WIN32(ERROR_IO_PENDING)) {
				printf("ERROR FilterGetMessage hr=0x%08X\n", (unsigned)hr);
				return 1;
			}
		}
	}
	printf("READY posted=%d\n", posted);
	fflush(stdout);

	w = WaitForMultipleObjects((DWORD)nthreads, threads, TRUE, INFINITE);
	printf("DONE answered=%lu failed=%lu bad=%lu lasterr=%u wait=%u\n", answered, failed, bad,
	       (unsigned)lasterr, (unsigned)w);
	fflush(stdout);
	for (int t = 0; t < nthreads; t++)
		CloseHandle(threads[t]);
	CloseHandle(completion);
	CloseHandle(port);
	return bad == 0 && failed == (unsigned long)total_reads ? 0 : 1;
}
