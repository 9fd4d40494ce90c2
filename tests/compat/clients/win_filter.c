/*
 * win_filter — a filter written with fltport's fltkernel.h, in its own
 * process, so that tests/compat/test_compat_user.c can SIGKILL the filter
 * side (SPEC §3.2 "once the filter is gone", §8.10 stale names, §8.14).
 *
 *   win_filter <port name> [--watchdog SECONDS]
 *
 * Creates the port with a NULL DACL (everyone), MaxConnections 8; its
 * MessageNotify echoes the input into the output buffer.  Prints
 * "READY pid=<pid>", then "CONNECTED n=<count>" per connect, and waits to
 * be killed (exit 3 after the watchdog deadline, default 30 s).
 *
 * fltkernel.h does not exist on Windows: the whole program is Linux-only,
 * and cross-compiles to an empty program (scripts/cross-compile-clients.sh
 * compiles every file in this directory).
 */
#ifndef _WIN32
#include <windows.h>
#include <fltkernel.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

static PFLT_PORT server_port;
static PFLT_PORT client_ports[8];
static int nconn;

static NTSTATUS on_connect(PFLT_PORT client, PVOID server_cookie, PVOID ctx, ULONG ctx_len,
			   PVOID *conn_cookie)
{
	(void)server_cookie;
	(void)ctx;
	(void)ctx_len;
	if (nconn >= 8)
		return STATUS_INSUFFICIENT_RESOURCES;
	client_ports[nconn] = client;
	*conn_cookie = &client_ports[nconn];
	nconn++;
	printf("CONNECTED n=%d\n", nconn);
	fflush(stdout);
	return STATUS_SUCCESS;
}

static VOID on_disconnect(PVOID conn_cookie)
{
	FltCloseClientPort(NULL, (PFLT_PORT *)conn_cookie);
}

static NTSTATUS on_message(PVOID cookie, PVOID in, ULONG in_len, PVOID out, ULONG out_len,
			   PULONG ret)
{
	ULONG n = in_len < out_len ? in_len : out_len;

	(void)cookie;
	if (out && in && n)
		memcpy(out, in, n);
	*ret = out ? n : 0;
	return STATUS_SUCCESS;
}

int main(int argc, char **argv)
{
	static WCHAR wname[256];
	UNICODE_STRING uname;
	OBJECT_ATTRIBUTES oa;
	PSECURITY_DESCRIPTOR sd = NULL;
	DWORD secs = 30;
	NTSTATUS st;
	size_t i;

	if (argc < 2)
		return 2;
	if (argc >= 4 && strcmp(argv[2], "--watchdog") == 0)
		secs = (DWORD)strtoul(argv[3], NULL, 0);
	wname[0] = L'\\';
	for (i = 0; argv[1][i] && i + 2 < 256; i++)
		wname[i + 1] = (WCHAR)(unsigned char)argv[1][i];
	wname[i + 1] = 0;
	RtlInitUnicodeString(&uname, wname);
	st = FltBuildDefaultSecurityDescriptor(&sd, FLT_PORT_ALL_ACCESS);
	if (!NT_SUCCESS(st))
		return 1;
	RtlSetDaclSecurityDescriptor(sd, TRUE, NULL, FALSE);
	InitializeObjectAttributes(&oa, &uname, OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE, NULL, sd);
	st = FltCreateCommunicationPort(NULL, &server_port, &oa, NULL, on_connect, on_disconnect,
					on_message, 8);
	FltFreeSecurityDescriptor(sd);
	if (!NT_SUCCESS(st)) {
		printf("ERROR FltCreateCommunicationPort 0x%08X\n", (unsigned)st);
		return 1;
	}
	printf("READY pid=%u\n", (unsigned)GetCurrentProcessId());
	fflush(stdout);
	Sleep(secs * 1000);
	fprintf(stderr, "win_filter: watchdog: %u s passed, exiting\n", (unsigned)secs);
	return 3;
}

#else /* _WIN32: a filter is a driver there; nothing to build. */
int main(void)
{
	return 0;
}
#endif
