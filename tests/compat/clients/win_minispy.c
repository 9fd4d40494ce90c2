/*
 * win_minispy — a minispy-style user program written only against the
 * Windows API (windows.h, fltuser.h, minispy's message definitions and the
 * C library), in the way Microsoft's minispy user program (mspyUser.c,
 * mspyLog.c) works: it lists volumes and whether MiniSpy is attached
 * (FilterVolumeFindFirst, FilterGetDosName, FilterVolumeInstanceFindFirst),
 * attaches and detaches (FilterAttach, FilterDetach), connects to
 * "\MiniSpyPort" and polls GetMiniSpyLog with FilterSendMessage, walking
 * the LOG_RECORDs of each reply by their Length.  For test_compat_minispy.c;
 * the same source cross-compiles with mingw-w64.
 *
 *   win_minispy COMMAND...   run in order:
 *     /a VOLUME   attach MiniSpy        ATTACHED volume=V instance=I | ERROR ...
 *     /d VOLUME   detach MiniSpy        DETACHED volume=V | ERROR ...
 *     /l          list volumes          VOLUME attached=yes|no instance=I name=V
 *     /v          GetMiniSpyVersion     VERSION major=2 minor=0
 *     /g SUFFIX   read the log until a delete of a name ending in SUFFIX has
 *                 been read (at most 20 s), one line per record:
 *                 RECORD seq=S irp=IRP op=OP pid=P type=0xT name=NAME
 *                 then "END records=N"
 *
 * Exit 0, or 1 after the first failed call (its line: "ERROR call=C
 * hr=0x...").
 */
#include <windows.h>
#include <fltuser.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "../../../samples/minispy/minispy_proto.h"

#define MINISPY_NAME L"MiniSpy"
#define BUFFER_SIZE 65536
#define POLL_MS 50
#define LOG_WAIT_MS 20000

#ifndef FILE_OPENED
#define FILE_OPENED 0x00000001
#endif
#ifndef FILE_CREATED
#define FILE_CREATED 0x00000002
#endif
#define IRP_MJ_CREATE 0x00
#define IRP_MJ_READ 0x03
#define IRP_MJ_WRITE 0x04
#define IRP_MJ_SET_INFORMATION 0x06
#define IRP_MJ_CLEANUP 0x12
#define IRP_MJ_ACQUIRE_FOR_SECTION_SYNCHRONIZATION ((UCHAR)-1)
#define FileRenameInformation 10
#define FileDispositionInformation 13

static int error(const char *call, HRESULT hr)
{
	printf("ERROR call=%s hr=0x%08X\n", call, (unsigned)hr);
	return 1;
}

static WCHAR *wide(const char *s)
{
	size_t n = mbstowcs(NULL, s, 0);
	WCHAR *w;

	if (n == (size_t)-1)
		return NULL;
	w = (WCHAR *)calloc(n + 1, sizeof(WCHAR));
	if (w)
		mbstowcs(w, s, n + 1);
	return w;
}

/* ---- volumes ---- */

/* Whether MiniSpy has an instance on the volume, and its name, as
 * mspyUser.c's IsAttachedToVolume finds out. */
static BOOL attached_to(const WCHAR *volume, WCHAR *instance, size_t cap)
{
	static ULONGLONG buf[BUFFER_SIZE / 8];
	HANDLE find = INVALID_HANDLE_VALUE;
	DWORD got;
	BOOL found = FALSE;
	HRESULT hr;

	for (hr = FilterVolumeInstanceFindFirst(volume, InstanceFullInformation, buf, sizeof(buf),
						&got, &find);
	     SUCCEEDED(hr) && !found;
	     hr = FilterVolumeInstanceFindNext(find, InstanceFullInformation, buf, sizeof(buf),
					       &got)) {
		PINSTANCE_FULL_INFORMATION ii = (PINSTANCE_FULL_INFORMATION)buf;
		const WCHAR *filter =
			(const WCHAR *)((const char *)ii + ii->FilterNameBufferOffset);
		size_t n = ii->InstanceNameLength / sizeof(WCHAR);

		if (ii->FilterNameLength != wcslen(MINISPY_NAME) * sizeof(WCHAR) ||
		    memcmp(filter, MINISPY_NAME, ii->FilterNameLength) != 0)
			continue;
		if (n >= cap)
			n = cap - 1;
		memcpy(instance, (const char *)ii + ii->InstanceNameBufferOffset,
		       n * sizeof(WCHAR));
		instance[n] = L'\0';
		found = TRUE;
	}
	if (find != INVALID_HANDLE_VALUE)
		FilterVolumeInstanceFindClose(find);
	return found;
}

static int list_volumes(void)
{
	static ULONGLONG buf[BUFFER_SIZE / 8];
	HANDLE find = INVALID_HANDLE_VALUE;
	DWORD got;
	HRESULT hr;
	int rc = 0;

	for (hr = FilterVolumeFindFirst(FilterVolumeBasicInformation, buf, sizeof(buf), &got,
					&find);
	     SUCCEEDED(hr); hr = FilterVolumeFindNext(find, FilterVolumeBasicInformation, buf,
						      sizeof(buf), &got)) {
		PFILTER_VOLUME_BASIC_INFORMATION vi = (PFILTER_VOLUME_BASIC_INFORMATION)buf;
		size_t n = vi->FilterVolumeNameLength / sizeof(WCHAR);
		WCHAR *volume = (WCHAR *)calloc(n + 1, sizeof(WCHAR));
		WCHAR dos[4096], instance[INSTANCE_NAME_MAX_CHARS + 1];
		BOOL on;

		if (!volume)
			break;
		memcpy(volume, vi->FilterVolumeName, n * sizeof(WCHAR));
		if (FAILED(FilterGetDosName(volume, dos, sizeof(dos) / sizeof(dos[0]))))
			dos[0] = L'\0';
		on = attached_to(volume, instance, sizeof(instance) / sizeof(instance[0]));
		printf("VOLUME attached=%s instance=%ls name=%ls\n", on ? "yes" : "no",
		       on ? instance : L"-", dos[0] ? dos : volume);
		free(volume);
	}
	if (hr != HRESULT_FROM_WIN32(ERROR_NO_MORE_ITEMS))
		rc = error("FilterVolumeFind", hr);
	if (find != INVALID_HANDLE_VALUE)
		FilterVolumeFindClose(find);
	return rc;
}

static int attach(const char *volume, BOOL detach)
{
	WCHAR *v = wide(volume), instance[INSTANCE_NAME_MAX_CHARS + 1];
	HRESULT hr;

	if (!v)
		return error("mbstowcs", E_INVALIDARG);
	if (detach)
		hr = FilterDetach(MINISPY_NAME, v, NULL);
	else
		hr = FilterAttach(MINISPY_NAME, v, NULL, sizeof(instance), instance);
	free(v);
	if (FAILED(hr))
		return error(detach ? "FilterDetach" : "FilterAttach", hr);
	if (detach)
		printf("DETACHED volume=%s\n", volume);
	else
		printf("ATTACHED volume=%s instance=%ls\n", volume, instance);
	return 0;
}

/* ---- the log ---- */

static HANDLE connect_port(void)
{
	HANDLE port = INVALID_HANDLE_VALUE;
	HRESULT hr = FilterConnectCommunicationPort(MINISPY_PORT_NAME, 0, NULL, 0, NULL, &port);

	if (FAILED(hr)) {
		error("FilterConnectCommunicationPort", hr);
		return INVALID_HANDLE_VALUE;
	}
	return port;
}

static int version(void)
{
	COMMAND_MESSAGE cmd;
	MINISPYVER ver;
	DWORD got = 0;
	HANDLE port = connect_port();
	HRESULT hr;

	if (port == INVALID_HANDLE_VALUE)
		return 1;
	memset(&cmd, 0, sizeof(cmd));
	cmd.Command = GetMiniSpyVersion;
	hr = FilterSendMessage(port, &cmd, sizeof(cmd), &ver, sizeof(ver), &got);
	CloseHandle(port);
	if (FAILED(hr))
		return error("FilterSendMessage", hr);
	printf("VERSION major=%u minor=%u bytes=%u\n", (unsigned)ver.Major, (unsigned)ver.Minor,
	       (unsigned)got);
	return 0;
}

static const char *irp_name(UCHAR major)
{
	switch (major) {
	case IRP_MJ_CREATE:
		return "IRP_MJ_CREATE";
	case IRP_MJ_READ:
		return "IRP_MJ_READ";
	case IRP_MJ_WRITE:
		return "IRP_MJ_WRITE";
	case IRP_MJ_SET_INFORMATION:
		return "IRP_MJ_SET_INFORMATION";
	case IRP_MJ_CLEANUP:
		return "IRP_MJ_CLEANUP";
	case IRP_MJ_ACQUIRE_FOR_SECTION_SYNCHRONIZATION:
		return "IRP_MJ_ACQUIRE_FOR_SECTION_SYNCHRONIZATION";
	default:
		return "?";
	}
}

/* What happened, from the fields a Windows minispy reader looks at. */
static const char *op_name(const RECORD_DATA *d)
{
	switch (d->CallbackMajorId) {
	case IRP_MJ_CREATE:
		return d->Information == FILE_CREATED ? "create" : "open";
	case IRP_MJ_READ:
		return "read";
	case IRP_MJ_WRITE:
		return "write";
	case IRP_MJ_CLEANUP:
		return "close-write";
	case IRP_MJ_ACQUIRE_FOR_SECTION_SYNCHRONIZATION:
		return "exec";
	case IRP_MJ_SET_INFORMATION:
		if ((ULONG_PTR)d->Arg2 == FileDispositionInformation)
			return "delete";
		if ((ULONG_PTR)d->Arg2 == FileRenameInformation)
			return "rename";
		return "set-information";
	default:
		return "?";
	}
}

/* Whether the name ends with `suffix`. */
static BOOL ends_with(const WCHAR *name, const WCHAR *suffix)
{
	size_t n = wcslen(name), k = wcslen(suffix);

	return n >= k && wcscmp(name + n - k, suffix) == 0;
}

/* Print the records of one reply, as mspyLog.c walks them; TRUE once the
 * delete of a name ending in `until` went by. */
static BOOL print_records(const BYTE *buf, DWORD len, const WCHAR *until, unsigned *count)
{
	const BYTE *p = buf;
	BOOL done = FALSE;

	while (p + sizeof(LOG_RECORD) <= buf + len) {
		const LOG_RECORD *r = (const LOG_RECORD *)p;
		size_t max, n;

		if (r->Length < sizeof(LOG_RECORD) + sizeof(WCHAR) ||
		    r->Length > (size_t)(buf + len - p)) {
			printf("MALFORMED offset=%u length=%u\n", (unsigned)(p - buf),
			       (unsigned)r->Length);
			return TRUE;
		}
		max = (r->Length - sizeof(LOG_RECORD)) / sizeof(WCHAR);
		for (n = 0; n < max && r->Name[n]; n++)
			;
		if (n == max) {
			printf("MALFORMED offset=%u no-terminator\n", (unsigned)(p - buf));
			return TRUE;
		}
		printf("RECORD seq=%u irp=%s op=%s pid=%llu type=0x%08X name=%ls\n",
		       (unsigned)r->SequenceNumber, irp_name(r->Data.CallbackMajorId),
		       op_name(&r->Data), (unsigned long long)r->Data.ProcessId,
		       (unsigned)r->RecordType, r->Name);
		(*count)++;
		if (strcmp(op_name(&r->Data), "delete") == 0 && ends_with(r->Name, until))
			done = TRUE;
		p += r->Length;
	}
	return done;
}

static int read_log(const char *suffix)
{
	static ULONGLONG buf[BUFFER_SIZE / 8];
	WCHAR *until = wide(suffix);
	HANDLE port;
	COMMAND_MESSAGE cmd;
	unsigned count = 0, waited = 0;
	BOOL done = FALSE;
	int rc = 0;

	if (!until)
		return error("mbstowcs", E_INVALIDARG);
	port = connect_port();
	if (port == INVALID_HANDLE_VALUE) {
		free(until);
		return 1;
	}
	memset(&cmd, 0, sizeof(cmd));
	cmd.Command = GetMiniSpyLog;
	while (!done) {
		DWORD got = 0;
		HRESULT hr = FilterSendMessage(port, &cmd, sizeof(cmd), buf, sizeof(buf), &got);

		if (hr == HRESULT_FROM_WIN32(ERROR_NO_MORE_ITEMS)) {
			if (waited >= LOG_WAIT_MS) {
				rc = error("GetMiniSpyLog(wait)", hr);
				break;
			}
			Sleep(POLL_MS);
			waited += POLL_MS;
			continue;
		}
		if (FAILED(hr)) {
			rc = error("FilterSendMessage", hr);
			break;
		}
		done = print_records((const BYTE *)buf, got, until, &count);
	}
	printf("END records=%u\n", count);
	CloseHandle(port);
	free(until);
	return rc;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	for (int i = 1; i < argc; i++) {
		int rc;

		if (strcmp(argv[i], "/l") == 0)
			rc = list_volumes();
		else if (strcmp(argv[i], "/v") == 0)
			rc = version();
		else if ((strcmp(argv[i], "/a") == 0 || strcmp(argv[i], "/d") == 0) && i + 1 < argc)
			rc = attach(argv[i + 1], argv[i][1] == 'd'), i++;
		else if (strcmp(argv[i], "/g") == 0 && i + 1 < argc)
			rc = read_log(argv[++i]);
		else {
			fprintf(stderr, "usage: win_minispy [/l] [/v] [/a VOLUME] [/d VOLUME] "
					"[/g SUFFIX]...\n");
			return 2;
		}
		if (rc)
			return rc;
	}
	return 0;
}
