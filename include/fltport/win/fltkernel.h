/*
 * fltport Windows layer: the filter-side ("kernel") subset of fltkernel.h
 * for communication ports, running in a privileged Linux process (SPEC §2,
 * §8).  Callbacks run on fltport library threads: ConnectNotify and
 * DisconnectNotify on the port's control thread, MessageNotify on a worker
 * (concurrently).  PsGetCurrentProcess() has no meaning there; use
 * FltportGetClientInfo() to learn who connected (§8.29).
 *
 * The Filter argument of every call may be NULL (the process is the
 * filter) or a handle from fltport's filter engine.  Extensions are prefixed
 * Fltport and listed in docs/PORTING.md.
 */
#ifndef FLTPORT_FLTKERNEL_H
#define FLTPORT_FLTKERNEL_H

#include "excpt.h"
#include "fltport_wintypes.h"
#include "ntstatus.h" /* also under WIN32_NO_STATUS, as ntifs.h includes it */

typedef struct _FLT_FILTER *PFLT_FILTER;
typedef struct _FLT_PORT *PFLT_PORT;
typedef PVOID PSECURITY_DESCRIPTOR;
typedef ULONG ACCESS_MASK;
typedef struct _ACL ACL, *PACL;

typedef struct _UNICODE_STRING {
	USHORT Length;        /* bytes, without the terminator */
	USHORT MaximumLength; /* bytes */
	PWSTR Buffer;
} UNICODE_STRING, *PUNICODE_STRING;
typedef const UNICODE_STRING *PCUNICODE_STRING;

typedef struct _OBJECT_ATTRIBUTES {
	ULONG Length;
	HANDLE RootDirectory;
	PUNICODE_STRING ObjectName;
	ULONG Attributes;
	PVOID SecurityDescriptor;
	PVOID SecurityQualityOfService;
} OBJECT_ATTRIBUTES, *POBJECT_ATTRIBUTES;

#define OBJ_INHERIT 0x00000002u
#define OBJ_CASE_INSENSITIVE 0x00000040u
#define OBJ_KERNEL_HANDLE 0x00000200u

#define InitializeObjectAttributes(p, n, a, r, s)               \
	do {                                                    \
		(p)->Length = (ULONG)sizeof(OBJECT_ATTRIBUTES); \
		(p)->RootDirectory = (r);                       \
		(p)->Attributes = (a);                          \
		(p)->ObjectName = (n);                          \
		(p)->SecurityDescriptor = (s);                  \
		(p)->SecurityQualityOfService = NULL;           \
	} while (0)

#define RTL_CONSTANT_STRING(s)                                                      \
	{                                                                           \
		(USHORT)(sizeof(s) - sizeof((s)[0])), (USHORT)sizeof(s), (PWSTR)(s) \
	}

/* Callbacks (SPEC §2.2). */
typedef NTSTATUS (*PFLT_CONNECT_NOTIFY)(PFLT_PORT ClientPort, PVOID ServerPortCookie,
					PVOID ConnectionContext, ULONG SizeOfContext,
					PVOID *ConnectionPortCookie);
typedef VOID (*PFLT_DISCONNECT_NOTIFY)(PVOID ConnectionCookie);
typedef NTSTATUS (*PFLT_MESSAGE_NOTIFY)(PVOID PortCookie, PVOID InputBuffer,
					ULONG InputBufferLength, PVOID OutputBuffer,
					ULONG OutputBufferLength, PULONG ReturnOutputBufferLength);

FLTPORT_WINAPI VOID RtlInitUnicodeString(PUNICODE_STRING DestinationString, PCWSTR SourceString);

/* Security descriptors: the default admits root only; a NULL DACL
 * (RtlSetDaclSecurityDescriptor(sd, TRUE, NULL, FALSE)) admits everyone
 * (SPEC §8.11). */
FLTPORT_WINAPI NTSTATUS FltBuildDefaultSecurityDescriptor(PSECURITY_DESCRIPTOR *SecurityDescriptor,
							  ACCESS_MASK DesiredAccess);
FLTPORT_WINAPI VOID FltFreeSecurityDescriptor(PSECURITY_DESCRIPTOR SecurityDescriptor);
FLTPORT_WINAPI NTSTATUS RtlSetDaclSecurityDescriptor(PSECURITY_DESCRIPTOR SecurityDescriptor,
						     BOOLEAN DaclPresent, PACL Dacl,
						     BOOLEAN DaclDefaulted);

FLTPORT_WINAPI NTSTATUS FltCreateCommunicationPort(PFLT_FILTER Filter, PFLT_PORT *ServerPort,
						   POBJECT_ATTRIBUTES ObjectAttributes,
						   PVOID ServerPortCookie,
						   PFLT_CONNECT_NOTIFY ConnectNotifyCallback,
						   PFLT_DISCONNECT_NOTIFY DisconnectNotifyCallback,
						   PFLT_MESSAGE_NOTIFY MessageNotifyCallback,
						   LONG MaxConnections);

FLTPORT_WINAPI VOID FltCloseCommunicationPort(PFLT_PORT ServerPort);

FLTPORT_WINAPI VOID FltCloseClientPort(PFLT_FILTER Filter, PFLT_PORT *ClientPort);

FLTPORT_WINAPI NTSTATUS FltSendMessage(PFLT_FILTER Filter, PFLT_PORT *ClientPort,
				       PVOID SenderBuffer, ULONG SenderBufferLength,
				       PVOID ReplyBuffer, PULONG ReplyLength,
				       PLARGE_INTEGER Timeout);

/* ---- fltport extensions ---- */

typedef struct _FLTPORT_CLIENT_INFO {
	ULONG ProcessId;
	ULONG UserId;
	ULONG GroupId;
} FLTPORT_CLIENT_INFO, *PFLTPORT_CLIENT_INFO;

/* Who is at the other end of a client port (from the kernel, at connect
 * time).  STATUS_SUCCESS, or STATUS_INVALID_PARAMETER for NULL arguments. */
FLTPORT_WINAPI NTSTATUS FltportGetClientInfo(PFLT_PORT ClientPort, PFLTPORT_CLIENT_INFO Info);

/* Filter unload for the ports of `Filter` (NULL: this process's): closes
 * every server port created with it, ends every connection (each
 * DisconnectNotify runs once), waits for running callbacks and frees
 * everything, like FltUnregisterFilter does for ports on Windows.  Client
 * port variables the filter did not close become invalid.  Must not be
 * called from a port callback. */
FLTPORT_WINAPI VOID FltportUnloadFilter(PFLT_FILTER Filter);

#endif /* FLTPORT_FLTKERNEL_H */
