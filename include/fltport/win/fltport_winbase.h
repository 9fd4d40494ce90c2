/*
 * fltport Windows layer: the winnt.h / winbase.h / winerror.h types,
 * constants and macros that minifilter programs use besides the port API
 * (included by fltport_wintypes.h, so windows.h, fltuser.h and fltkernel.h
 * all see them).  Values are Windows' own.  Differences forced by Linux
 * (docs/PORTING.md, "Win32 subset for minispy-style programs"):
 *   - WCHAR is wchar_t, 4 bytes: TCHAR/TEXT follow UNICODE as on Windows,
 *     but a wide character is one UTF-32 unit, never a surrogate pair;
 *   - the old-style annotations (__in, __out, ...) exist in C only: libstdc++
 *     uses those names for its own identifiers;
 *   - the list routines (InitializeListHead, InsertTailList, ...) live in the
 *     WDK headers on Windows; here every program gets them (define
 *     FLTPORT_NO_LIST_ROUTINES to keep them out, e.g. when a program defines
 *     its own).  A corrupt list kills the process, as the WDK's checked
 *     versions do.
 */
#ifndef FLTPORT_WINBASE_H
#define FLTPORT_WINBASE_H

/* ---- more SAL annotations: empty on Linux ---- */
#ifndef _In_z_
#define _In_z_
#endif
#ifndef _In_opt_z_
#define _In_opt_z_
#endif
#ifndef _Inout_z_
#define _Inout_z_
#endif
#ifndef _In_range_
#define _In_range_(lo, hi)
#endif
#ifndef _Out_range_
#define _Out_range_(lo, hi)
#endif
#ifndef _Ret_range_
#define _Ret_range_(lo, hi)
#endif
#ifndef _Deref_out_range_
#define _Deref_out_range_(lo, hi)
#endif
#ifndef _Out_writes_z_
#define _Out_writes_z_(n)
#endif
#ifndef _Out_writes_to_
#define _Out_writes_to_(n, m)
#endif
#ifndef _Out_writes_to_opt_
#define _Out_writes_to_opt_(n, m)
#endif
#ifndef _Out_writes_bytes_all_
#define _Out_writes_bytes_all_(n)
#endif
#ifndef _Inout_updates_
#define _Inout_updates_(n)
#endif
#ifndef _Inout_updates_bytes_
#define _Inout_updates_bytes_(n)
#endif
#ifndef _Inout_updates_opt_
#define _Inout_updates_opt_(n)
#endif
#ifndef _Outptr_opt_
#define _Outptr_opt_
#endif
#ifndef _Outptr_result_z_
#define _Outptr_result_z_
#endif
#ifndef _Outptr_result_buffer_
#define _Outptr_result_buffer_(n)
#endif
#ifndef _Outptr_result_bytebuffer_
#define _Outptr_result_bytebuffer_(n)
#endif
#ifndef _Outptr_opt_result_maybenull_
#define _Outptr_opt_result_maybenull_
#endif
#ifndef _Ret_z_
#define _Ret_z_
#endif
#ifndef _Ret_notnull_
#define _Ret_notnull_
#endif
#ifndef _Ret_writes_
#define _Ret_writes_(n)
#endif
#ifndef _Ret_writes_bytes_
#define _Ret_writes_bytes_(n)
#endif
#ifndef _Printf_format_string_
#define _Printf_format_string_
#endif
#ifndef _Null_terminated_
#define _Null_terminated_
#endif
#ifndef _NullNull_terminated_
#define _NullNull_terminated_
#endif
#ifndef _Notnull_
#define _Notnull_
#endif
#ifndef _Maybenull_
#define _Maybenull_
#endif
#ifndef _Pre_notnull_
#define _Pre_notnull_
#endif
#ifndef _Pre_maybenull_
#define _Pre_maybenull_
#endif
#ifndef _Pre_satisfies_
#define _Pre_satisfies_(x)
#endif
#ifndef _Post_satisfies_
#define _Post_satisfies_(x)
#endif
#ifndef _Post_notnull_
#define _Post_notnull_
#endif
#ifndef _Post_invalid_
#define _Post_invalid_
#endif
#ifndef _Post_writable_byte_size_
#define _Post_writable_byte_size_(n)
#endif
#ifndef _Frees_ptr_
#define _Frees_ptr_
#endif
#ifndef _Frees_ptr_opt_
#define _Frees_ptr_opt_
#endif
#ifndef _Reserved_
#define _Reserved_
#endif
#ifndef _At_
#define _At_(target, annotation)
#endif
#ifndef _Always_
#define _Always_(annotation)
#endif
#ifndef _Analysis_mode_
#define _Analysis_mode_(mode)
#endif
#ifndef _Struct_size_bytes_
#define _Struct_size_bytes_(n)
#endif
#ifndef _Field_range_
#define _Field_range_(lo, hi)
#endif
#ifndef _Field_z_
#define _Field_z_
#endif
#ifndef _Guarded_by_
#define _Guarded_by_(lock)
#endif
#ifndef _Requires_lock_held_
#define _Requires_lock_held_(lock)
#endif
#ifndef _Requires_lock_not_held_
#define _Requires_lock_not_held_(lock)
#endif
#ifndef _Acquires_lock_
#define _Acquires_lock_(lock)
#endif
#ifndef _Releases_lock_
#define _Releases_lock_(lock)
#endif
#ifndef _Dispatch_type_
#define _Dispatch_type_(x)
#endif
#ifndef _IRQL_saves_
#define _IRQL_saves_
#endif
#ifndef _IRQL_restores_
#define _IRQL_restores_
#endif
#ifndef _IRQL_requires_same_
#define _IRQL_requires_same_
#endif
#ifndef _Kernel_float_used_
#define _Kernel_float_used_
#endif
#ifndef _Flt_CompletionContext_Outptr_
#define _Flt_CompletionContext_Outptr_
#endif
#ifndef _Flt_ConnectionCookie_Outptr_
#define _Flt_ConnectionCookie_Outptr_
#endif

/* Pre-2005 annotations: C only (libstdc++ names its own parameters __in,
 * __out, ...). */
#ifndef __cplusplus
#ifndef __in
#define __in
#endif
#ifndef __out
#define __out
#endif
#ifndef __inout
#define __inout
#endif
#ifndef __in_opt
#define __in_opt
#endif
#ifndef __out_opt
#define __out_opt
#endif
#ifndef __inout_opt
#define __inout_opt
#endif
#ifndef __in_ecount
#define __in_ecount(n)
#endif
#ifndef __in_bcount
#define __in_bcount(n)
#endif
#ifndef __in_ecount_opt
#define __in_ecount_opt(n)
#endif
#ifndef __in_bcount_opt
#define __in_bcount_opt(n)
#endif
#ifndef __out_ecount
#define __out_ecount(n)
#endif
#ifndef __out_bcount
#define __out_bcount(n)
#endif
#ifndef __out_ecount_opt
#define __out_ecount_opt(n)
#endif
#ifndef __out_bcount_opt
#define __out_bcount_opt(n)
#endif
#ifndef __out_ecount_part
#define __out_ecount_part(n, m)
#endif
#ifndef __out_bcount_part
#define __out_bcount_part(n, m)
#endif
#ifndef __inout_ecount
#define __inout_ecount(n)
#endif
#ifndef __inout_bcount
#define __inout_bcount(n)
#endif
#ifndef __deref_out
#define __deref_out
#endif
#ifndef __deref_out_opt
#define __deref_out_opt
#endif
#ifndef __deref_inout
#define __deref_inout
#endif
#ifndef __reserved
#define __reserved
#endif
#ifndef __callback
#define __callback
#endif
#ifndef __checkReturn
#define __checkReturn
#endif
#ifndef __nullterminated
#define __nullterminated
#endif
#endif /* !__cplusplus */

/* ---- more types ---- */
typedef unsigned char boolean; /* rpcndr.h's, which windows.h brings */
typedef void *HMODULE;
typedef void *HINSTANCE;
typedef void *HLOCAL;
/* In C, FARPROC takes any arguments (Windows: `()`), so that the result of
 * GetProcAddress can be called, or cast, as the SDK allows. */
#if defined(__cplusplus)
typedef INT_PTR(WINAPI *FARPROC)(void);
#else
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
typedef INT_PTR(WINAPI *FARPROC)();
#pragma GCC diagnostic pop
#endif
typedef const CHAR *LPCCH, *PCCH;
typedef const WCHAR *LPCWCH, *PCWCH;
typedef CHAR *LPCH, *PCH;
typedef WCHAR *LPWCH;
typedef LONG *LPLONG;
typedef WORD LANGID;

#define UNICODE_NULL ((WCHAR)0)
#define ANSI_NULL ((CHAR)0)
#define MAX_PATH 260

/* TCHAR follows UNICODE, as winnt.h does (tchar.h's _TCHAR follows _UNICODE). */
#ifdef UNICODE
typedef WCHAR TCHAR, TBYTE;
#define __TEXT(quote) L##quote
#else
typedef char TCHAR, TBYTE;
#define __TEXT(quote) quote
#endif
#define TEXT(quote) __TEXT(quote)
typedef TCHAR *PTCHAR, *PTBYTE, *LPTCH, *PTCH, *PTSTR, *LPTSTR;
typedef const TCHAR *LPCTSTR, *PCTSTR, *LPCTCH, *PCTCH;

/* 100-ns intervals since 1601-01-01 00:00 UTC, as two 32-bit halves. */
typedef struct _FILETIME {
	DWORD dwLowDateTime;
	DWORD dwHighDateTime;
} FILETIME, *PFILETIME, *LPFILETIME;

typedef struct _SYSTEMTIME {
	WORD wYear;
	WORD wMonth;     /* 1 = January */
	WORD wDayOfWeek; /* 0 = Sunday */
	WORD wDay;
	WORD wHour;
	WORD wMinute;
	WORD wSecond;
	WORD wMilliseconds;
} SYSTEMTIME, *PSYSTEMTIME, *LPSYSTEMTIME;

typedef struct _GUID {
	DWORD Data1;
	WORD Data2;
	WORD Data3;
	BYTE Data4[8];
} GUID, *PGUID, *LPGUID;
typedef const GUID *LPCGUID, *REFGUID;
#define IsEqualGUID(a, b) (!memcmp((a), (b), sizeof(GUID)))
/* DEFINE_GUID declares the GUID; in the one file that defines INITGUID
 * before including windows.h, it also defines it. */
#ifdef __cplusplus
#define FLTPORT_GUID_LINKAGE extern "C"
#define FLTPORT_GUID_DEF_LINKAGE extern "C"
#else
#define FLTPORT_GUID_LINKAGE extern
#define FLTPORT_GUID_DEF_LINKAGE
#endif
#ifdef INITGUID
#define DEFINE_GUID(name, l, w1, w2, b1, b2, b3, b4, b5, b6, b7, b8) \
	FLTPORT_GUID_DEF_LINKAGE const GUID name = { l, w1, w2, { b1, b2, b3, b4, b5, b6, b7, b8 } }
#else
#define DEFINE_GUID(name, l, w1, w2, b1, b2, b3, b4, b5, b6, b7, b8) \
	FLTPORT_GUID_LINKAGE const GUID name
#endif

FLTPORT_STATIC_ASSERT(sizeof(FILETIME) == 8 && sizeof(SYSTEMTIME) == 16, "FILETIME, SYSTEMTIME");
FLTPORT_STATIC_ASSERT(sizeof(GUID) == 16, "GUID is 16 bytes");

/* ---- doubly linked lists (LIST_ENTRY) ---- */
typedef struct _LIST_ENTRY {
	struct _LIST_ENTRY *Flink;
	struct _LIST_ENTRY *Blink;
} LIST_ENTRY, *PLIST_ENTRY, *PRLIST_ENTRY;

#ifndef FLTPORT_NO_LIST_ROUTINES
static inline void InitializeListHead(PLIST_ENTRY head)
{
	head->Flink = head->Blink = head;
}

static inline BOOLEAN IsListEmpty(const LIST_ENTRY *head)
{
	return (BOOLEAN)(head->Flink == head);
}

/* Both neighbours must point back at the entry; if not, the list is
 * corrupt and the process stops here, before the damage spreads. */
static inline void FltportCheckListEntry(const LIST_ENTRY *e)
{
	if (e->Flink->Blink != e || e->Blink->Flink != e)
		__builtin_trap();
}

static inline void InsertHeadList(PLIST_ENTRY head, PLIST_ENTRY entry)
{
	PLIST_ENTRY next = head->Flink;

	FltportCheckListEntry(head);
	entry->Flink = next;
	entry->Blink = head;
	next->Blink = entry;
	head->Flink = entry;
}

static inline void InsertTailList(PLIST_ENTRY head, PLIST_ENTRY entry)
{
	PLIST_ENTRY prev = head->Blink;

	FltportCheckListEntry(head);
	entry->Flink = head;
	entry->Blink = prev;
	prev->Flink = entry;
	head->Blink = entry;
}

/* TRUE if the list is empty afterwards. */
static inline BOOLEAN RemoveEntryList(PLIST_ENTRY entry)
{
	PLIST_ENTRY next = entry->Flink, prev = entry->Blink;

	FltportCheckListEntry(entry);
	prev->Flink = next;
	next->Blink = prev;
	return (BOOLEAN)(next == prev);
}

/* The head's first / last entry, unlinked (the head itself if empty). */
static inline PLIST_ENTRY RemoveHeadList(PLIST_ENTRY head)
{
	PLIST_ENTRY entry = head->Flink;

	RemoveEntryList(entry);
	return entry;
}

static inline PLIST_ENTRY RemoveTailList(PLIST_ENTRY head)
{
	PLIST_ENTRY entry = head->Blink;

	RemoveEntryList(entry);
	return entry;
}
#endif /* !FLTPORT_NO_LIST_ROUTINES */

/* ---- reparse tags (winnt.h) ---- */
#define IO_REPARSE_TAG_RESERVED_ZERO 0u
#define IO_REPARSE_TAG_RESERVED_ONE 1u
#define IO_REPARSE_TAG_RESERVED_TWO 2u
#define IO_REPARSE_TAG_RESERVED_RANGE IO_REPARSE_TAG_RESERVED_TWO
#define IO_REPARSE_TAG_MOUNT_POINT 0xA0000003u
#define IO_REPARSE_TAG_HSM 0xC0000004u
#define IO_REPARSE_TAG_DRIVE_EXTENDER 0x80000005u
#define IO_REPARSE_TAG_HSM2 0x80000006u
#define IO_REPARSE_TAG_SIS 0x80000007u
#define IO_REPARSE_TAG_WIM 0x80000008u
#define IO_REPARSE_TAG_CSV 0x80000009u
#define IO_REPARSE_TAG_DFS 0x8000000Au
#define IO_REPARSE_TAG_FILTER_MANAGER 0x8000000Bu
#define IO_REPARSE_TAG_SYMLINK 0xA000000Cu
#define IO_REPARSE_TAG_IIS_CACHE 0xA0000010u
#define IO_REPARSE_TAG_DFSR 0x80000012u
#define IO_REPARSE_TAG_DEDUP 0x80000013u
#define IO_REPARSE_TAG_NFS 0x80000014u
#define IO_REPARSE_TAG_FILE_PLACEHOLDER 0x80000015u
#define IO_REPARSE_TAG_WOF 0x80000017u
#define IO_REPARSE_TAG_WCI 0x80000018u
#define IO_REPARSE_TAG_WCI_1 0x90001018u
#define IO_REPARSE_TAG_GLOBAL_REPARSE 0xA0000019u
#define IO_REPARSE_TAG_CLOUD 0x9000001Au
#define IO_REPARSE_TAG_CLOUD_MASK 0x0000F000u
#define IO_REPARSE_TAG_APPEXECLINK 0x8000001Bu
#define IO_REPARSE_TAG_PROJFS 0x9000001Cu
#define IO_REPARSE_TAG_LX_SYMLINK 0xA000001Du
#define IO_REPARSE_TAG_STORAGE_SYNC 0x8000001Eu
#define IO_REPARSE_TAG_WCI_TOMBSTONE 0xA000001Fu
#define IO_REPARSE_TAG_UNHANDLED 0x80000020u
#define IO_REPARSE_TAG_ONEDRIVE 0x80000021u
#define IO_REPARSE_TAG_PROJFS_TOMBSTONE 0xA0000022u
#define IO_REPARSE_TAG_AF_UNIX 0x80000023u
#define IO_REPARSE_TAG_LX_FIFO 0x80000024u
#define IO_REPARSE_TAG_LX_CHR 0x80000025u
#define IO_REPARSE_TAG_LX_BLK 0x80000026u
#define IO_REPARSE_TAG_WCI_LINK 0xA0000027u
#define IsReparseTagMicrosoft(tag) (((tag)&0x80000000u) != 0)
#define IsReparseTagNameSurrogate(tag) (((tag)&0x20000000u) != 0)
#define IsReparseTagDirectory(tag) (((tag)&0x10000000u) != 0)

/* ---- more HRESULT values and Win32 errors (winerror.h) ---- */
#define E_NOINTERFACE ((HRESULT)0x80004002u)
#define E_ABORT ((HRESULT)0x80004004u)
#define E_BOUNDS ((HRESULT)0x8000000Bu)
#ifndef ERROR_MOD_NOT_FOUND
#define ERROR_MOD_NOT_FOUND 126L
#endif
#ifndef ERROR_PROC_NOT_FOUND
#define ERROR_PROC_NOT_FOUND 127L
#endif
#ifndef ERROR_TOO_MANY_POSTS
#define ERROR_TOO_MANY_POSTS 298L
#endif
#ifndef ERROR_INVALID_FLAGS
#define ERROR_INVALID_FLAGS 1004L
#endif
#ifndef ERROR_NO_UNICODE_TRANSLATION
#define ERROR_NO_UNICODE_TRANSLATION 1113L
#endif
#ifndef ERROR_RESOURCE_TYPE_NOT_FOUND
#define ERROR_RESOURCE_TYPE_NOT_FOUND 1813L
#endif
#ifndef ERROR_RESOURCE_LANG_NOT_FOUND
#define ERROR_RESOURCE_LANG_NOT_FOUND 1815L
#endif

/* ---- language ids (winnt.h) ---- */
#define MAKELANGID(p, s) ((WORD)((((WORD)(s)) << 10) | (WORD)(p)))
#define PRIMARYLANGID(lgid) ((WORD)(lgid)&0x3FF)
#define SUBLANGID(lgid) ((WORD)(lgid) >> 10)
#define LANG_NEUTRAL 0x00
#define LANG_ENGLISH 0x09
#define SUBLANG_NEUTRAL 0x00
#define SUBLANG_DEFAULT 0x01
#define SUBLANG_SYS_DEFAULT 0x02
#define SUBLANG_ENGLISH_US 0x01
#define LANG_SYSTEM_DEFAULT MAKELANGID(LANG_NEUTRAL, SUBLANG_SYS_DEFAULT)
#define LANG_USER_DEFAULT MAKELANGID(LANG_NEUTRAL, SUBLANG_DEFAULT)

/* ---- access rights of synchronisation objects (accepted, not enforced) ---- */
#define SYNCHRONIZE 0x00100000u
#define STANDARD_RIGHTS_REQUIRED 0x000F0000u
#define EVENT_MODIFY_STATE 0x0002u
#define EVENT_ALL_ACCESS (STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0x3u)
#define SEMAPHORE_MODIFY_STATE 0x0002u
#define SEMAPHORE_ALL_ACCESS (STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0x3u)

/* ---- more SAL annotations (empty) ---- */
#ifndef _In_bytecount_
#define _In_bytecount_(n)
#endif
#ifndef _In_opt_bytecount_
#define _In_opt_bytecount_(n)
#endif
#ifndef _Out_bytecap_
#define _Out_bytecap_(n)
#endif
#ifndef _Out_opt_bytecap_
#define _Out_opt_bytecap_(n)
#endif
#ifndef _Inout_bytecount_
#define _Inout_bytecount_(n)
#endif
#ifndef _In_count_
#define _In_count_(n)
#endif
#ifndef _Out_cap_
#define _Out_cap_(n)
#endif
#ifndef _In_reads_z_
#define _In_reads_z_(n)
#endif
#ifndef _Deref_out_
#define _Deref_out_
#endif
#ifndef _Deref_out_opt_
#define _Deref_out_opt_
#endif
#ifndef _Post_ptr_invalid_
#define _Post_ptr_invalid_
#endif
#ifndef _Return_type_success_
#define _Return_type_success_(x)
#endif
#ifndef _Interlocked_
#define _Interlocked_
#endif
#ifndef _Printf_format_string_params_
#define _Printf_format_string_params_(n)
#endif
#ifndef _Acquires_exclusive_lock_
#define _Acquires_exclusive_lock_(x)
#endif
#ifndef _Releases_exclusive_lock_
#define _Releases_exclusive_lock_(x)
#endif
#ifndef _Acquires_shared_lock_
#define _Acquires_shared_lock_(x)
#endif
#ifndef _Releases_shared_lock_
#define _Releases_shared_lock_(x)
#endif

/* ---- basetsd.h's sized types ---- */
typedef signed char INT8, *PINT8;
typedef unsigned char UINT8, *PUINT8;
typedef short INT16, *PINT16;
typedef unsigned short UINT16, *PUINT16;
typedef int INT32, *PINT32;
typedef unsigned int UINT32, *PUINT32;
typedef int LONG32, *PLONG32;
typedef unsigned int ULONG32, *PULONG32;
typedef unsigned int DWORD32, *PDWORD32;
typedef long long INT64, *PINT64;
typedef unsigned long long UINT64, *PUINT64;
typedef long long LONG64, *PLONG64;
typedef unsigned long long ULONG64, *PULONG64;
typedef DWORD64 *PDWORD64;

/* ---- winnt.h odds and ends ---- */
/* A compile-time assertion, at file or block scope. */
#ifdef __cplusplus
#define C_ASSERT(e) static_assert((e), "C_ASSERT(" #e ")")
#else
#define C_ASSERT(e) _Static_assert((e), "C_ASSERT(" #e ")")
#endif
/* Anonymous unions and structures (C11 has them): the names are empty
 * unless NONAMELESSUNION asks for named ones, as in the SDK. */
#ifndef NONAMELESSUNION
#define DUMMYUNIONNAME
#define DUMMYUNIONNAME2
#define DUMMYUNIONNAME3
#define DUMMYUNIONNAME4
#define DUMMYUNIONNAME5
#define DUMMYSTRUCTNAME
#define DUMMYSTRUCTNAME2
#define DUMMYSTRUCTNAME3
#define DUMMYSTRUCTNAME4
#define DUMMYSTRUCTNAME5
#else
#define DUMMYUNIONNAME u
#define DUMMYUNIONNAME2 u2
#define DUMMYUNIONNAME3 u3
#define DUMMYUNIONNAME4 u4
#define DUMMYUNIONNAME5 u5
#define DUMMYSTRUCTNAME s
#define DUMMYSTRUCTNAME2 s2
#define DUMMYSTRUCTNAME3 s3
#define DUMMYSTRUCTNAME4 s4
#define DUMMYSTRUCTNAME5 s5
#endif
#define DBG_UNREFERENCED_PARAMETER(p) ((void)(p))
#define DBG_UNREFERENCED_LOCAL_VARIABLE(v) ((void)(v))
typedef struct _FILE_ID_128 {
	BYTE Identifier[16];
} FILE_ID_128, *PFILE_ID_128;
/* Zeroes memory in a way the compiler cannot drop (RtlSecureZeroMemory). */
static inline PVOID SecureZeroMemory(PVOID ptr, SIZE_T cnt)
{
	volatile char *p = (volatile char *)ptr;

	while (cnt--)
		*p++ = 0;
	return ptr;
}
#define RtlSecureZeroMemory SecureZeroMemory

/* A security identifier (winnt.h); opaque here. */
typedef PVOID PSID;

/* Event-log types (winnt.h); ReportEvent maps them to syslog levels. */
#define EVENTLOG_SUCCESS 0x0000
#define EVENTLOG_ERROR_TYPE 0x0001
#define EVENTLOG_WARNING_TYPE 0x0002
#define EVENTLOG_INFORMATION_TYPE 0x0004
#define EVENTLOG_AUDIT_SUCCESS 0x0008
#define EVENTLOG_AUDIT_FAILURE 0x0010

/* NTSTATUS from a Win32 error (winternl.h): severity error, FACILITY_NTWIN32. */
#define FACILITY_NTWIN32 0x7
#define NTSTATUS_FROM_WIN32(x)     \
	((NTSTATUS)(x) <= 0        \
		 ? ((NTSTATUS)(x)) \
		 : ((NTSTATUS)(((x)&0x0000FFFF) | (FACILITY_NTWIN32 << 16) | 0xC0000000u)))
/* A FltMgr NTSTATUS (0xC01Cxxxx) from fltlib's HRESULT (0x801Fxxxx). */
#define FILTER_FLT_NTSTATUS_FROM_HRESULT(x) \
	((NTSTATUS)((((ULONG)(x)) & 0xC0007FFFu) | (0x1Cu << 16) | 0x40000000u))

#endif /* FLTPORT_WINBASE_H */
