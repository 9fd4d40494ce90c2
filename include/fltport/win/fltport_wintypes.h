/*
 * fltport Windows layer: the types, constants and macros shared by
 * windows.h, ntstatus.h, fltuser.h and fltkernel.h, so that one translation
 * unit may include all of them (SPEC §8.13).  Windows widths on LP64 Linux:
 * ULONG/LONG/DWORD/NTSTATUS/HRESULT are 32-bit, never `long` (§8.9, §8.23).
 * WCHAR is wchar_t (4 bytes on Linux, §8.24).
 */
#ifndef FLTPORT_WINTYPES_H
#define FLTPORT_WINTYPES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <wchar.h>

#ifdef __cplusplus
#define FLTPORT_WIN_EXTERN_C extern "C"
#define FLTPORT_STATIC_ASSERT(e, m) static_assert(e, m)
#define FLTPORT_ALIGN8 alignas(8)
#else
#define FLTPORT_WIN_EXTERN_C
#define FLTPORT_STATIC_ASSERT(e, m) _Static_assert(e, m)
#define FLTPORT_ALIGN8 _Alignas(8)
#endif

#define FLTPORT_WINAPI FLTPORT_WIN_EXTERN_C __attribute__((visibility("default")))

/* ---- calling conventions, linkage, SAL (§8.22): empty on Linux ---- */
#ifndef WINAPI
#define WINAPI
#endif
#define CALLBACK
#define APIENTRY
#define NTAPI
#define FLTAPI
#define WINBASEAPI
#ifndef __cdecl
#define __cdecl
#endif
#ifndef _cdecl
#define _cdecl
#endif
#ifndef __stdcall
#define __stdcall
#endif
#define IN
#define OUT
#define OPTIONAL
#define CONST const
#define VOID void

#define _In_
#define _In_opt_
#define _Out_
#define _Out_opt_
#define _Inout_
#define _Inout_opt_
#define _In_reads_(n)
#define _In_reads_bytes_(n)
#define _In_reads_opt_(n)
#define _In_reads_bytes_opt_(n)
#define _Out_writes_(n)
#define _Out_writes_bytes_(n)
#define _Out_writes_opt_(n)
#define _Out_writes_bytes_opt_(n)
#define _Out_writes_bytes_to_(n, m)
#define _Out_writes_bytes_to_opt_(n, m)
#define _Outptr_
#define _Outptr_result_maybenull_
#define _Ret_maybenull_
#define _Success_(x)
#define _Analysis_assume_(x)
#define _Must_inspect_result_
#define _Check_return_
#define _Pre_
#define _Post_
#define _IRQL_requires_(x)
#define _IRQL_requires_max_(x)
#define _When_(c, a)
#define _Field_size_bytes_(n)
#define _Unreferenced_parameter_
#define _Field_size_(n)
#define _Use_decl_annotations_
#define _Function_class_(x)

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

/* ---- basic types (§8.23) ---- */
typedef int BOOL;
typedef unsigned char BOOLEAN;
typedef unsigned char BYTE;
typedef unsigned char UCHAR;
typedef char CHAR;
typedef short SHORT;
typedef unsigned short USHORT;
typedef unsigned short WORD;
typedef int INT;
typedef unsigned int UINT;
typedef int32_t LONG;
typedef uint32_t ULONG;
typedef uint32_t DWORD;
/* long long, as MSVC's __int64: printf's %lld and %llu take them unchanged. */
typedef long long LONGLONG;
typedef unsigned long long ULONGLONG;
typedef unsigned long long DWORD64;
typedef uintptr_t ULONG_PTR;
typedef intptr_t LONG_PTR;
typedef uintptr_t DWORD_PTR;
typedef uintptr_t UINT_PTR;
typedef intptr_t INT_PTR;
typedef size_t SIZE_T;
typedef wchar_t WCHAR;
typedef LONG NTSTATUS;
typedef LONG HRESULT;
typedef void *PVOID;
typedef void *LPVOID;
typedef const void *LPCVOID;
typedef const void *PCVOID;
typedef void *HANDLE;
/* A handle type of its own (winnt.h): a pointer to a distinct struct, so
 * that handle kinds do not mix silently. */
#ifndef DECLARE_HANDLE
#define DECLARE_HANDLE(name) \
	struct name##__ {    \
		int unused;  \
	};                   \
	typedef struct name##__ *name
#endif
typedef HANDLE *PHANDLE;
typedef HANDLE *LPHANDLE;
typedef char *PSTR, *LPSTR, *PCHAR;
typedef const char *PCSTR, *LPCSTR;
typedef WCHAR *PWSTR, *LPWSTR, *PWCHAR;
typedef const WCHAR *PCWSTR, *LPCWSTR;
typedef BOOL *PBOOL, *LPBOOL;
typedef BOOLEAN *PBOOLEAN;
typedef BYTE *PBYTE, *LPBYTE;
typedef UCHAR *PUCHAR;
typedef USHORT *PUSHORT;
typedef WORD *PWORD, *LPWORD;
typedef INT *PINT;
typedef UINT *PUINT;
typedef LONG *PLONG;
typedef ULONG *PULONG;
typedef DWORD *PDWORD, *LPDWORD;
typedef LONGLONG *PLONGLONG;
typedef ULONGLONG *PULONGLONG;
typedef ULONG_PTR *PULONG_PTR;
typedef SIZE_T *PSIZE_T;
typedef NTSTATUS *PNTSTATUS;

typedef union _LARGE_INTEGER {
	struct {
		DWORD LowPart;
		LONG HighPart;
	};
	struct {
		DWORD LowPart;
		LONG HighPart;
	} u;
	LONGLONG QuadPart;
} LARGE_INTEGER, *PLARGE_INTEGER;

typedef union _ULARGE_INTEGER {
	struct {
		DWORD LowPart;
		DWORD HighPart;
	};
	struct {
		DWORD LowPart;
		DWORD HighPart;
	} u;
	ULONGLONG QuadPart;
} ULARGE_INTEGER, *PULARGE_INTEGER;

#define INVALID_HANDLE_VALUE ((HANDLE)(LONG_PTR)-1)
#define INFINITE 0xFFFFFFFFu

/* ---- HRESULT / NTSTATUS helpers (§8.19: correct on a 32-bit HRESULT on LP64) ---- */
#define FACILITY_WIN32 7
#define FACILITY_USERMODE_FILTER_MANAGER 0x1F
#define SUCCEEDED(hr) (((HRESULT)(hr)) >= 0)
#define FAILED(hr) (((HRESULT)(hr)) < 0)
#define IS_ERROR(status) ((((ULONG)(status)) >> 31) == 1u)
#define HRESULT_CODE(hr) ((hr)&0xFFFF)
#define HRESULT_SEVERITY(hr) ((((ULONG)(hr)) >> 31) & 0x1u)
#define SEVERITY_SUCCESS 0
#define SEVERITY_ERROR 1
#define MAKE_HRESULT(sev, fac, code) \
	((HRESULT)((((ULONG)(sev)) << 31) | (((ULONG)(fac)) << 16) | ((ULONG)(code))))
#define HRESULT_FACILITY(hr) ((((ULONG)(hr)) >> 16) & 0x1FFF)
#define HRESULT_FROM_WIN32(x) \
	((HRESULT)(((LONG)(x)) <= 0 ? ((ULONG)(x)) : ((((ULONG)(x)) & 0x0000FFFFu) | 0x80070000u)))
/* Spelled as the SDK spells them, so that a program's own identical
 * definition (common where windows.h has none) is no redefinition. */
#define NT_SUCCESS(Status) (((NTSTATUS)(Status)) >= 0)
#define NT_INFORMATION(Status) ((((ULONG)(Status)) >> 30) == 1)
#define NT_WARNING(Status) ((((ULONG)(Status)) >> 30) == 2)
#define NT_ERROR(Status) ((((ULONG)(Status)) >> 30) == 3)

#define FIELD_OFFSET(type, field) ((LONG)offsetof(type, field))
#define CONTAINING_RECORD(address, type, field) ((type *)((char *)(address)-offsetof(type, field)))
#define UNREFERENCED_PARAMETER(p) ((void)(p))
#define ARRAYSIZE(a) (sizeof(a) / sizeof((a)[0]))
#define RTL_NUMBER_OF(a) ARRAYSIZE(a)

#define RtlEqualMemory(d, s, n) (!memcmp((d), (s), (n)))
#define RtlCopyMemory(d, s, n) memcpy((d), (s), (n))
#define RtlMoveMemory(d, s, n) memmove((d), (s), (n))
#define RtlZeroMemory(d, n) memset((d), 0, (n))
#define RtlFillMemory(d, n, c) memset((d), (c), (n))
#define ZeroMemory RtlZeroMemory
#define CopyMemory RtlCopyMemory
#define MoveMemory RtlMoveMemory
#define FillMemory RtlFillMemory
#ifndef NOMINMAX /* as windows.h: define NOMINMAX to keep them out */
#ifndef min
#define min(a, b) (((a) < (b)) ? (a) : (b))
#endif
#ifndef max
#define max(a, b) (((a) > (b)) ? (a) : (b))
#endif
#endif

/* ---- HRESULT values ---- */
#define S_OK ((HRESULT)0)
#define S_FALSE ((HRESULT)1)
#define E_FAIL ((HRESULT)0x80004005u)
#define E_NOTIMPL ((HRESULT)0x80004001u)
#define E_OUTOFMEMORY ((HRESULT)0x8007000Eu)
#define E_INVALIDARG ((HRESULT)0x80070057u)
#define E_HANDLE ((HRESULT)0x80070006u)
#define E_ACCESSDENIED ((HRESULT)0x80070005u)
#define E_UNEXPECTED ((HRESULT)0x8000FFFFu)
#define E_POINTER ((HRESULT)0x80004003u)

/* ---- Win32 error codes (winerror.h values) ---- */
#define ERROR_SUCCESS 0L
#define NO_ERROR 0L
#define ERROR_INVALID_FUNCTION 1L
#define ERROR_FILE_NOT_FOUND 2L
#define ERROR_PATH_NOT_FOUND 3L
#define ERROR_TOO_MANY_OPEN_FILES 4L
#define ERROR_ACCESS_DENIED 5L
#define ERROR_INVALID_HANDLE 6L
#define ERROR_NOT_ENOUGH_MEMORY 8L
#define ERROR_INVALID_DATA 13L
#define ERROR_OUTOFMEMORY 14L
#define ERROR_NOT_SAME_DEVICE 17L
#define ERROR_NO_MORE_FILES 18L
#define ERROR_WRITE_PROTECT 19L
#define ERROR_NOT_READY 21L
#define ERROR_BAD_COMMAND 22L
#define ERROR_BAD_LENGTH 24L
#define ERROR_GEN_FAILURE 31L
#define ERROR_SHARING_VIOLATION 32L
#define ERROR_LOCK_VIOLATION 33L
#define ERROR_HANDLE_EOF 38L
#define ERROR_NOT_SUPPORTED 50L
#define ERROR_FILE_EXISTS 80L
#define ERROR_INVALID_PARAMETER 87L
#define ERROR_BROKEN_PIPE 109L
#define ERROR_BUFFER_OVERFLOW 111L
#define ERROR_DISK_FULL 112L
#define ERROR_CALL_NOT_IMPLEMENTED 120L
#define ERROR_SEM_TIMEOUT 121L
#define ERROR_INSUFFICIENT_BUFFER 122L
#define ERROR_INVALID_NAME 123L
#define ERROR_NEGATIVE_SEEK 131L
#define ERROR_DIR_NOT_EMPTY 145L
#define ERROR_BAD_PATHNAME 161L
#define ERROR_BUSY 170L
#define ERROR_ALREADY_EXISTS 183L
#define ERROR_ENVVAR_NOT_FOUND 203L
#define ERROR_FILENAME_EXCED_RANGE 206L
#define ERROR_FILE_TOO_LARGE 223L
#define ERROR_VIRUS_INFECTED 225L
#define ERROR_VIRUS_DELETED 226L
#define ERROR_MORE_DATA 234L
#define ERROR_NO_MORE_ITEMS 259L
#define ERROR_DIRECTORY 267L
#define ERROR_MR_MID_NOT_FOUND 317L
#define ERROR_ARITHMETIC_OVERFLOW 534L
#define ERROR_INVALID_ADDRESS 487L
#define ERROR_ABANDONED_WAIT_0 735L
#define ERROR_REPARSE 741L
#define ERROR_OPERATION_ABORTED 995L
#define ERROR_IO_INCOMPLETE 996L
#define ERROR_IO_PENDING 997L
#define ERROR_NOACCESS 998L
#define ERROR_FILE_INVALID 1006L
#define ERROR_INVALID_SERVICE_CONTROL 1052L
#define ERROR_SERVICE_ALREADY_RUNNING 1056L
#define ERROR_SERVICE_DOES_NOT_EXIST 1060L
#define ERROR_SERVICE_CANNOT_ACCEPT_CTRL 1061L
#define ERROR_SERVICE_NOT_ACTIVE 1062L
#define ERROR_FAILED_SERVICE_CONTROLLER_CONNECT 1063L
#define ERROR_SERVICE_SPECIFIC_ERROR 1066L
#define ERROR_SERVICE_NOT_IN_EXE 1083L
#define ERROR_IO_DEVICE 1117L
#define ERROR_MAPPED_ALIGNMENT 1132L
#define ERROR_CAN_NOT_COMPLETE 1003L
#define ERROR_DEVICE_NOT_CONNECTED 1167L
#define ERROR_NOT_FOUND 1168L
#define ERROR_REQUEST_ABORTED 1235L
#define ERROR_RETRY 1237L
#define ERROR_CONNECTION_COUNT_LIMIT 1238L
#define ERROR_USER_MAPPED_FILE 1224L
#define ERROR_CONTENT_BLOCKED 1296L
#define ERROR_REVISION_MISMATCH 1306L
#define ERROR_PRIVILEGE_NOT_HELD 1314L
#define ERROR_INTERNAL_ERROR 1359L
#define ERROR_FILE_CORRUPT 1392L
#define ERROR_DISK_CORRUPT 1393L
#define ERROR_NO_SYSTEM_RESOURCES 1450L
#define ERROR_TIMEOUT 1460L
#define ERROR_INVALID_USER_BUFFER 1784L
#define ERROR_NOT_ENOUGH_QUOTA 1816L
/* fltlib's management errors: the FltMgr NTSTATUS 0xC01C00xx as fltlib
 * returns it, 0x801F00xx (fltwinerror.h). */
#define ERROR_FLT_DO_NOT_ATTACH ((HRESULT)0x801F000Fu)
#define ERROR_FLT_DO_NOT_DETACH ((HRESULT)0x801F0010u)
#define ERROR_FLT_INSTANCE_ALTITUDE_COLLISION ((HRESULT)0x801F0011u)
#define ERROR_FLT_INSTANCE_NAME_COLLISION ((HRESULT)0x801F0012u)
#define ERROR_FLT_FILTER_NOT_FOUND ((HRESULT)0x801F0013u)
#define ERROR_FLT_VOLUME_NOT_FOUND ((HRESULT)0x801F0014u)
#define ERROR_FLT_INSTANCE_NOT_FOUND ((HRESULT)0x801F0015u)
#define ERROR_FLT_NO_WAITER_FOR_REPLY ((HRESULT)0x801F0020u)

#define WAIT_OBJECT_0 0L
#define WAIT_ABANDONED_0 0x80L
#define WAIT_TIMEOUT 258L
#define WAIT_IO_COMPLETION 0xC0L
#define WAIT_FAILED ((DWORD)0xFFFFFFFFu)
#define MAXIMUM_WAIT_OBJECTS 64

/* ---- NTSTATUS values: ntstatus.h, which windows.h includes unless
 * WIN32_NO_STATUS is defined (as Windows' winnt.h then leaves them out). ---- */
#ifndef WIN32_NO_STATUS
#include "ntstatus.h"
#endif

/* ---- structures ---- */
typedef struct _SECURITY_ATTRIBUTES {
	DWORD nLength;
	LPVOID lpSecurityDescriptor;
	BOOL bInheritHandle;
} SECURITY_ATTRIBUTES, *PSECURITY_ATTRIBUTES, *LPSECURITY_ATTRIBUTES;

/* Windows x64 layout, 32 bytes (§8.28).  On completion Internal holds the
 * NTSTATUS and InternalHigh the bytes written. */
typedef struct _OVERLAPPED {
	ULONG_PTR Internal;
	ULONG_PTR InternalHigh;
	union {
		struct {
			DWORD Offset;
			DWORD OffsetHigh;
		};
		PVOID Pointer;
	};
	HANDLE hEvent;
} OVERLAPPED, *LPOVERLAPPED;

#define HasOverlappedIoCompleted(ov) (((NTSTATUS)(ov)->Internal) != ((NTSTATUS)0x00000103L))

/* Filter message headers (fltUserStructures.h): 16 bytes, fields at 0 and
 * 8, on every ABI (§8.9) — the 64-bit field is forced to 8-byte alignment
 * (i386 would otherwise give 12 bytes). */
typedef struct _FILTER_MESSAGE_HEADER {
	ULONG ReplyLength;
	FLTPORT_ALIGN8 ULONGLONG MessageId;
} FILTER_MESSAGE_HEADER, *PFILTER_MESSAGE_HEADER;

typedef struct _FILTER_REPLY_HEADER {
	NTSTATUS Status;
	FLTPORT_ALIGN8 ULONGLONG MessageId;
} FILTER_REPLY_HEADER, *PFILTER_REPLY_HEADER;

FLTPORT_STATIC_ASSERT(sizeof(ULONG) == 4 && sizeof(LONG) == 4 && sizeof(DWORD) == 4,
		      "32-bit ULONG/LONG/DWORD");
FLTPORT_STATIC_ASSERT(sizeof(HRESULT) == 4 && sizeof(NTSTATUS) == 4, "32-bit HRESULT/NTSTATUS");
FLTPORT_STATIC_ASSERT(sizeof(WORD) == 2 && sizeof(BOOLEAN) == 1 && sizeof(ULONGLONG) == 8,
		      "WORD, BOOLEAN, ULONGLONG");
FLTPORT_STATIC_ASSERT(sizeof(LARGE_INTEGER) == 8, "LARGE_INTEGER");
FLTPORT_STATIC_ASSERT(sizeof(FILTER_MESSAGE_HEADER) == 16, "FILTER_MESSAGE_HEADER is 16 bytes");
FLTPORT_STATIC_ASSERT(offsetof(FILTER_MESSAGE_HEADER, ReplyLength) == 0, "ReplyLength at 0");
FLTPORT_STATIC_ASSERT(offsetof(FILTER_MESSAGE_HEADER, MessageId) == 8, "MessageId at 8");
FLTPORT_STATIC_ASSERT(sizeof(FILTER_REPLY_HEADER) == 16, "FILTER_REPLY_HEADER is 16 bytes");
FLTPORT_STATIC_ASSERT(offsetof(FILTER_REPLY_HEADER, Status) == 0, "Status at 0");
FLTPORT_STATIC_ASSERT(offsetof(FILTER_REPLY_HEADER, MessageId) == 8, "MessageId at 8");
#if UINTPTR_MAX == 0xFFFFFFFFFFFFFFFFu
FLTPORT_STATIC_ASSERT(sizeof(OVERLAPPED) == 32, "OVERLAPPED has the x64 layout");
FLTPORT_STATIC_ASSERT(offsetof(OVERLAPPED, InternalHigh) == 8, "InternalHigh at 8");
FLTPORT_STATIC_ASSERT(offsetof(OVERLAPPED, hEvent) == 24, "hEvent at 24");
#endif

/* Port options and limits (fltUser.h, §3.1). */
#define FLT_PORT_FLAG_SYNC_HANDLE 0x00000001u
#define FLT_PORT_CONTEXT_MAX 0xFFE8u
#define FLT_PORT_CONNECT 0x0001u
#define STANDARD_RIGHTS_ALL 0x001F0000u
#define FLT_PORT_ALL_ACCESS (FLT_PORT_CONNECT | STANDARD_RIGHTS_ALL)

/* The rest of winnt.h / winbase.h / winerror.h that programs use. */
#include "fltport_winbase.h"

#endif /* FLTPORT_WINTYPES_H */
