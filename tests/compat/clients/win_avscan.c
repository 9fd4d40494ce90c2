/*
 * win_avscan — a user-mode antivirus service shaped like the
 * Windows-driver-samples avscan user program, for
 * tests/compat/test_compat_memory.c.  It uses what avscan uses around the
 * port: scan contexts on the process heap, worker threads created
 * suspended and found again by their thread ids, a scan buffer in a
 * pagefile-backed section read through a view whose size VirtualQuery
 * gives, errors built with MAKE_HRESULT.
 *
 * It includes only <windows.h>, <fltuser.h>, <strsafe.h> and standard C
 * headers, so the same source also cross-compiles for Windows with
 * mingw-w64 (SPEC §8.31).
 *
 *   win_avscan <port name> <workers>
 *
 * Every worker posts one overlapped FilterGetMessage of its own and takes
 * completions from the completion port; a message's content is copied into
 * the worker's section through its write view and scanned through its read
 * view; the reply says whether the signature is there.  When the filter
 * closes the connection every posted read completes with
 * ERROR_INVALID_HANDLE; once all have, it prints
 *
 *   DONE scanned=<n> infected=<n> bad=<anomalies>
 *
 * and exits 0 if nothing was wrong, 1 otherwise (3 from the watchdog).
 * Lines before that: "CONNECTED hr=0x...", "READY workers=<n> view=<bytes>".
 */
#include <windows.h>
#include <fltuser.h>
#include <strsafe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef _Unreferenced_parameter_
#define _Unreferenced_parameter_
#endif

#include "avscan_wire.h"

#define MAX_WORKERS 16
#define SCAN_VIEW_SIZE (2u * 65536u)

typedef struct _AV_MESSAGE {
	FILTER_MESSAGE_HEADER MessageHeader;
	AV_SCAN_REQUEST Request;
	OVERLAPPED Ovlp;
} AV_MESSAGE, *PAV_MESSAGE;

#pragma pack(push, 1)
typedef struct _AV_REPLY_MESSAGE {
	FILTER_REPLY_HEADER ReplyHeader;
	AV_SCAN_REPLY Reply;
} AV_REPLY_MESSAGE;
#pragma pack(pop)

typedef struct _SCAN_CONTEXT {
	DWORD ThreadId;
	HANDLE Thread;
	HANDLE Section;
	PUCHAR WriteView;
	PUCHAR ReadView;
	SIZE_T ViewSize;
	PAV_MESSAGE Message;
	ULONG Scanned;
} SCAN_CONTEXT, *PSCAN_CONTEXT;

static HANDLE port, completion;
static PSCAN_CONTEXT contexts;
static LONG nworkers, reads_ended, bad, infected;
static CRITICAL_SECTION print_lock;

static void note_bad(const char *why, HRESULT hr)
{
	EnterCriticalSection(&print_lock);
	if (bad++ < 10)
		fprintf(stderr, "win_avscan: %s (0x%08X)\n", why, (unsigned)hr);
	LeaveCriticalSection(&print_lock);
}

/* The context of the calling worker, by its thread id (avscan's way). */
static PSCAN_CONTEXT my_context(void)
{
	DWORD me = GetCurrentThreadId();

	for (LONG i = 0; i < nworkers; i++)
		if (contexts[i].ThreadId == me)
			return &contexts[i];
	return NULL;
}

static BOOLEAN has_signature(const UCHAR *p, SIZE_T n)
{
	SIZE_T k = sizeof(AV_SIGNATURE) - 1;

	for (SIZE_T i = 0; i + k <= n; i++)
		if (memcmp(p + i, AV_SIGNATURE, k) == 0)
			return TRUE;
	return FALSE;
}

static HRESULT post_read(PAV_MESSAGE msg)
{
	HRESULT hr;

	memset(&msg->Ovlp, 0, sizeof(msg->Ovlp));
	hr = FilterGetMessage(port, &msg->MessageHeader, FIELD_OFFSET(AV_MESSAGE, Ovlp),
			      &msg->Ovlp);
	return hr == HRESULT_FROM_WIN32(ERROR_IO_PENDING) ? S_OK : hr;
}

static HRESULT scan_and_reply(PSCAN_CONTEXT ctx, PAV_MESSAGE msg)
{
	AV_REPLY_MESSAGE reply;
	ULONG len = msg->Request.Length;

	if (len > sizeof(msg->Request.Content) || len > ctx->ViewSize)
		return MAKE_HRESULT(SEVERITY_ERROR, FACILITY_WIN32, ERROR_INVALID_PARAMETER);
	/* Through the section: written by one view, read by the other. */
	memcpy(ctx->WriteView, msg->Request.Content, len);
	memset(&reply, 0, sizeof(reply));
	reply.ReplyHeader.MessageId = msg->MessageHeader.MessageId;
	reply.Reply.Seq = msg->Request.Seq;
	reply.Reply.Infected = has_signature(ctx->ReadView, len);
	reply.Reply.WorkerId = ctx->ThreadId;
	if (reply.Reply.Infected)
		InterlockedIncrement(&infected);
	ctx->Scanned++;
	return FilterReplyMessage(port, &reply.ReplyHeader, sizeof(reply));
}

static DWORD WINAPI worker(_Unreferenced_parameter_ LPVOID arg)
{
	PSCAN_CONTEXT ctx = my_context();
	HRESULT hr;

	(void)arg;
	if (!ctx) {
		note_bad("a worker without a context", E_FAIL);
		return 1;
	}
	hr = post_read(ctx->Message);
	if (FAILED(hr)) {
		note_bad("FilterGetMessage", hr);
		InterlockedIncrement(&reads_ended);
	}
	for (;;) {
		DWORD bytes = 0;
		ULONG_PTR key = 0;
		LPOVERLAPPED ov = NULL;
		BOOL ok = GetQueuedCompletionStatus(completion, &bytes, &key, &ov, INFINITE);
		PAV_MESSAGE msg;

		if (!ov)
			return ok ? 0 : 1; /* the stop packet, or the port is gone */
		msg = CONTAINING_RECORD(ov, AV_MESSAGE, Ovlp);
		if (!ok) {
			DWORD err = GetLastError();

			if (err != ERROR_INVALID_HANDLE)
				note_bad("a read ended", HRESULT_FROM_WIN32(err));
			if (InterlockedIncrement(&reads_ended) == nworkers)
				for (LONG i = 0; i < nworkers; i++)
					PostQueuedCompletionStatus(completion, 0, 0, NULL);
			continue;
		}
		hr = scan_and_reply(ctx, msg);
		if (FAILED(hr))
			note_bad("scan or reply", hr);
		hr = post_read(msg);
		if (FAILED(hr) && hr != E_HANDLE)
			note_bad("FilterGetMessage", hr);
		if (FAILED(hr) && InterlockedIncrement(&reads_ended) == nworkers)
			for (LONG i = 0; i < nworkers; i++)
				PostQueuedCompletionStatus(completion, 0, 0, NULL);
	}
}

static DWORD WINAPI watchdog(LPVOID arg)
{
	Sleep((DWORD)(ULONG_PTR)arg * 1000);
	fprintf(stderr, "win_avscan: watchdog expired\n");
	exit(3);
}

/* The worker's section and its two views; the view's size from
 * VirtualQuery, as avscan learns the size of the view it maps. */
static HRESULT make_scan_buffer(PSCAN_CONTEXT ctx)
{
	MEMORY_BASIC_INFORMATION mbi;

	ctx->Section = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_COMMIT,
					  0, SCAN_VIEW_SIZE, NULL);
	if (!ctx->Section)
		return HRESULT_FROM_WIN32(GetLastError());
	ctx->WriteView = (PUCHAR)MapViewOfFile(ctx->Section, FILE_MAP_WRITE, 0, 0, 0);
	ctx->ReadView = (PUCHAR)MapViewOfFile(ctx->Section, FILE_MAP_READ, 0, 0, 0);
	if (!ctx->WriteView || !ctx->ReadView)
		return HRESULT_FROM_WIN32(GetLastError());
	if (VirtualQuery(ctx->ReadView, &mbi, sizeof(mbi)) != sizeof(mbi))
		return HRESULT_FROM_WIN32(GetLastError());
	if (mbi.BaseAddress != ctx->ReadView || mbi.State != MEM_COMMIT || mbi.Type != MEM_MAPPED ||
	    mbi.Protect != PAGE_READONLY)
		return MAKE_HRESULT(SEVERITY_ERROR, FACILITY_WIN32, ERROR_INVALID_DATA);
	ctx->ViewSize = mbi.RegionSize;
	return S_OK;
}

int main(int argc, char **argv)
{
	HANDLE threads[MAX_WORKERS], wd;
	WCHAR name[256];
	HRESULT hr;
	size_t i;
	LONG scanned = 0;
	DWORD w;

	if (argc < 3) {
		fprintf(stderr, "usage: win_avscan <port> <workers>\n");
		return 2;
	}
	nworkers = atoi(argv[2]);
	if (nworkers < 1 || nworkers > MAX_WORKERS)
		return 2;
	wd = CreateThread(NULL, 0, watchdog, (LPVOID)(ULONG_PTR)55, 0, NULL);
	if (wd)
		CloseHandle(wd);
	InitializeCriticalSection(&print_lock);
	for (i = 0; argv[1][i] && i + 1 < 256; i++)
		name[i] = (WCHAR)(unsigned char)argv[1][i];
	name[i] = 0;

	hr = FilterConnectCommunicationPort(name, 0, NULL, 0, NULL, &port);
	printf("CONNECTED hr=0x%08X\n", (unsigned)hr);
	fflush(stdout);
	if (FAILED(hr))
		return 1;
	completion = CreateIoCompletionPort(port, NULL, 0, (DWORD)nworkers);
	contexts = (PSCAN_CONTEXT)HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY,
					    sizeof(SCAN_CONTEXT) * (SIZE_T)nworkers);
	if (!completion || !contexts)
		return 1;
	for (LONG t = 0; t < nworkers; t++) {
		PSCAN_CONTEXT ctx = &contexts[t];

		ctx->Message = (PAV_MESSAGE)HeapAlloc(GetProcessHeap(), 0, sizeof(AV_MESSAGE));
		if (!ctx->Message)
			return 1;
		hr = make_scan_buffer(ctx);
		if (FAILED(hr)) {
			printf("ERROR scan buffer hr=0x%08X\n", (unsigned)hr);
			return 1;
		}
		/* Suspended until its context is complete, id included. */
		ctx->Thread = CreateThread(NULL, 0, worker, NULL, CREATE_SUSPENDED, &ctx->ThreadId);
		if (!ctx->Thread || ctx->ThreadId == 0)
			return 1;
		threads[t] = ctx->Thread;
	}
	for (LONG t = 0; t < nworkers; t++) {
		if (ResumeThread(contexts[t].Thread) != 1) {
			printf("ERROR ResumeThread %u\n", (unsigned)GetLastError());
			return 1;
		}
	}
	printf("READY workers=%ld view=%lu\n", (long)nworkers, (unsigned long)contexts[0].ViewSize);
	fflush(stdout);

	w = WaitForMultipleObjects((DWORD)nworkers, threads, TRUE, INFINITE);
	for (LONG t = 0; t < nworkers; t++) {
		PSCAN_CONTEXT ctx = &contexts[t];
		DWORD code = 1;

		if (!GetExitCodeThread(ctx->Thread, &code) || code != 0)
			note_bad("a worker failed", (HRESULT)code);
		scanned += (LONG)ctx->Scanned;
		CloseHandle(ctx->Thread);
		if (!UnmapViewOfFileEx(ctx->ReadView, MEM_UNMAP_WITH_TRANSIENT_BOOST) ||
		    !UnmapViewOfFile(ctx->WriteView))
			note_bad("unmap", HRESULT_FROM_WIN32(GetLastError()));
		CloseHandle(ctx->Section);
		HeapFree(GetProcessHeap(), 0, ctx->Message);
	}
	HeapFree(GetProcessHeap(), 0, contexts);
	printf("DONE scanned=%ld infected=%ld bad=%ld wait=%u\n", (long)scanned, (long)infected,
	       (long)bad, (unsigned)w);
	fflush(stdout);
	CloseHandle(completion);
	CloseHandle(port);
	DeleteCriticalSection(&print_lock);
	return bad == 0 ? 0 : 1;
}
