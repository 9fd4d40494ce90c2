/*
 * win_scanuser — a scanner service written only with the Windows API, as
 * Microsoft's scanner sample's user program is: it connects with no
 * context, binds the port to an I/O completion port, pre-posts threads ×
 * requests overlapped FilterGetMessage calls, looks for "foul" in the
 * SCANNER_NOTIFICATION's bytes and answers with a packed 17-byte
 * {FILTER_REPLY_HEADER; SCANNER_REPLY} (tests/scanner/test_scanner.c drives
 * fltport-scanner with it).
 *
 * It includes only <windows.h>, <fltuser.h> and standard C headers: the
 * same source builds for Windows with mingw-w64 (-lfltlib).
 *
 *   win_scanuser <port> <threads> <requests>
 *
 * Lines: "CONNECTED hr=0x...", "READY posted=<n>", one "SCAN bytes=<n>
 * safe=<0|1> reply=<hr>" per message, and when the filter closes the port
 * "DONE scanned=<n> bad=<n>"; exit 0 if nothing was wrong.
 */
#include <windows.h>
#include <fltuser.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCANNER_READ_BUFFER_SIZE 1024
#define MAX_THREADS 16
#define MAX_REQUESTS 16

typedef struct _SCANNER_NOTIFICATION {
	ULONG BytesToScan;
	ULONG Reserved;
	UCHAR Contents[SCANNER_READ_BUFFER_SIZE];
} SCANNER_NOTIFICATION, *PSCANNER_NOTIFICATION;

typedef struct _SCANNER_REPLY {
	BOOLEAN SafeToOpen;
} SCANNER_REPLY, *PSCANNER_REPLY;

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

/* The packed reply is 16 + 1 bytes, as the sample sends it. */
typedef char reply_is_17_bytes[sizeof(SCANNER_REPLY_MESSAGE) == 17 ? 1 : -1];

static HANDLE port, completion, lock;
static int nthreads, total;
static unsigned long scanned, ended, bad;

static BOOLEAN safe_to_open(const UCHAR *p, ULONG n)
{
	for (ULONG i = 0; i + 4 <= n; i++)
		if (memcmp(p + i, "foul", 4) == 0)
			return FALSE;
	return TRUE;
}

static void note(unsigned long *counter)
{
	WaitForSingleObject(lock, INFINITE);
	(*counter)++;
	SetEvent(lock);
}

/* A read ended (the port is gone): once all have, stop every thread. */
static void read_ended(void)
{
	BOOL last;

	WaitForSingleObject(lock, INFINITE);
	last = ++ended == (unsigned long)total;
	SetEvent(lock);
	if (last)
		for (int i = 0; i < nthreads; i++)
			PostQueuedCompletionStatus(completion, 0, 0, NULL);
}

static void handle(PSCANNER_MESSAGE msg, DWORD bytes)
{
	SCANNER_REPLY_MESSAGE reply;
	ULONG n = msg->Notification.BytesToScan;
	HRESULT hr = S_OK;

	if (bytes != sizeof(FILTER_MESSAGE_HEADER) + sizeof(SCANNER_NOTIFICATION) ||
	    n > SCANNER_READ_BUFFER_SIZE)
		note(&bad);
	if (n > SCANNER_READ_BUFFER_SIZE)
		n = SCANNER_READ_BUFFER_SIZE;
	memset(&reply, 0, sizeof(reply));
	reply.ReplyHeader.Status = 0;
	reply.ReplyHeader.MessageId = msg->MessageHeader.MessageId;
	reply.Reply.SafeToOpen = safe_to_open(msg->Notification.Contents, n);
	if (msg->MessageHeader.ReplyLength != 0)
		hr = FilterReplyMessage(port, (PFILTER_REPLY_HEADER)&reply, sizeof(reply));
	note(&scanned);
	WaitForSingleObject(lock, INFINITE);
	printf("SCAN bytes=%lu safe=%d replylength=%lu reply=0x%08X\n", (unsigned long)n,
	       (int)reply.Reply.SafeToOpen, (unsigned long)msg->MessageHeader.ReplyLength,
	       (unsigned)hr);
	fflush(stdout);
	SetEvent(lock);
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
		HRESULT hr;

		if (!ov)
			return 0; /* the quit packet */
		msg = CONTAINING_RECORD(ov, SCANNER_MESSAGE, Ovlp);
		if (!ok) {
			read_ended();
			continue;
		}
		handle(msg, bytes);
		memset(&msg->Ovlp, 0, sizeof(OVERLAPPED));
		hr = FilterGetMessage(port, &msg->MessageHeader,
				      FIELD_OFFSET(SCANNER_MESSAGE, Ovlp), &msg->Ovlp);
		if (hr != HRESULT_FROM_WIN32(ERROR_IO_PENDING))
			read_ended();
	}
}

int main(int argc, char **argv)
{
	static SCANNER_MESSAGE msgs[MAX_THREADS * MAX_REQUESTS];
	HANDLE threads[MAX_THREADS];
	WCHAR name[256];
	int requests, posted = 0;
	size_t i;
	HRESULT hr;

	if (argc != 4)
		return 2;
	nthreads = atoi(argv[2]);
	requests = atoi(argv[3]);
	if (nthreads < 1 || nthreads > MAX_THREADS || requests < 1 || requests > MAX_REQUESTS)
		return 2;
	total = nthreads * requests;
	for (i = 0; argv[1][i] && i + 1 < 256; i++)
		name[i] = (WCHAR)(unsigned char)argv[1][i];
	name[i] = 0;
	lock = CreateEventW(NULL, FALSE, TRUE, NULL);

	hr = FilterConnectCommunicationPort(name, 0, NULL, 0, NULL, &port);
	printf("CONNECTED hr=0x%08X\n", (unsigned)hr);
	fflush(stdout);
	if (FAILED(hr))
		return 1;
	completion = CreateIoCompletionPort(port, NULL, 0, (DWORD)nthreads);
	if (!completion)
		return 1;
	for (int t = 0; t < nthreads; t++) {
		threads[t] = CreateThread(NULL, 0, worker, NULL, 0, NULL);
		if (!threads[t])
			return 1;
		for (int r = 0; r < requests; r++) {
			PSCANNER_MESSAGE msg = &msgs[posted++];

			memset(&msg->Ovlp, 0, sizeof(OVERLAPPED));
			hr = FilterGetMessage(port, &msg->MessageHeader,
					      FIELD_OFFSET(SCANNER_MESSAGE, Ovlp), &msg->Ovlp);
			if (hr != HRESULT_FROM_WIN32(ERROR_IO_PENDING))
				return 1;
		}
	}
	WaitForSingleObject(lock, INFINITE);
	printf("READY posted=%d\n", posted);
	fflush(stdout);
	SetEvent(lock);

	WaitForMultipleObjects((DWORD)nthreads, threads, TRUE, INFINITE);
	printf("DONE scanned=%lu bad=%lu\n", scanned, bad);
	fflush(stdout);
	for (int t = 0; t < nthreads; t++)
		CloseHandle(threads[t]);
	CloseHandle(completion);
	CloseHandle(port);
	return bad == 0 ? 0 : 1;
}
