/*
 * The compat tests' in-process filters: a Windows-style filter port open
 * to everyone.  Include after <fltkernel.h>.
 */
#ifndef FP_TEST_WINPORT_H
#define FP_TEST_WINPORT_H

/* FltCreateCommunicationPort of "\<name>" with a NULL DACL (everyone may
 * connect) and one connection at most; its status. */
static inline NTSTATUS tw_open_port(const char *name, PFLT_CONNECT_NOTIFY on_connect,
				    PFLT_DISCONNECT_NOTIFY on_disconnect,
				    PFLT_MESSAGE_NOTIFY on_message, PFLT_PORT *server)
{
	WCHAR wname[128];
	PSECURITY_DESCRIPTOR sd = NULL;
	UNICODE_STRING uname;
	OBJECT_ATTRIBUTES oa;
	NTSTATUS st;
	size_t i;

	wname[0] = L'\\';
	for (i = 0; name[i] && i + 2 < ARRAYSIZE(wname); i++)
		wname[i + 1] = (WCHAR)(unsigned char)name[i];
	wname[i + 1] = 0;
	RtlInitUnicodeString(&uname, wname);
	st = FltBuildDefaultSecurityDescriptor(&sd, FLT_PORT_ALL_ACCESS);
	if (st != STATUS_SUCCESS)
		return st;
	st = RtlSetDaclSecurityDescriptor(sd, TRUE, NULL, FALSE);
	if (st == STATUS_SUCCESS) {
		InitializeObjectAttributes(&oa, &uname, OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE,
					   NULL, sd);
		st = FltCreateCommunicationPort(NULL, server, &oa, NULL, on_connect, on_disconnect,
						on_message, 1);
	}
	FltFreeSecurityDescriptor(sd);
	return st;
}

#endif
