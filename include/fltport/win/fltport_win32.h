/*
 * fltport Windows layer: the Win32 calls that minispy-style user programs
 * make besides the port API (included by windows.h; link with
 * libfltport-win).  Conventions as in windows.h: every call that fails sets
 * the thread's last error to the Win32 error Windows gives; out-parameters
 * are written only on success unless a call says otherwise; nothing prints.
 * Differences forced by Linux are listed in docs/PORTING.md ("Win32 subset
 * for minispy-style programs"); the ones that change results are repeated
 * here beside their call.
 */
#ifndef FLTPORT_WIN32_H
#define FLTPORT_WIN32_H

#include <stdarg.h>

#include "fltport_wintypes.h"

/* ---- named kernel objects, semaphores ----
 * Names live in one process-wide namespace shared by events and semaphores
 * (the process is the whole namespace: another process never sees them).
 * Names are compared exactly (case-sensitive), at most MAX_PATH characters
 * (longer: ERROR_FILENAME_EXCED_RANGE); "" is the same as NULL (unnamed).
 * A name lives as long as a handle to its object is open.  Creating an
 * object whose name exists returns a new handle to the existing object with
 * the last error ERROR_ALREADY_EXISTS (its initial state and counts are
 * ignored); a successful creation sets the last error to 0.  A name that
 * belongs to an object of another type: NULL, ERROR_INVALID_HANDLE.  Open*
 * of an unknown name: NULL, ERROR_FILE_NOT_FOUND.  Access masks and
 * bInheritHandle are accepted and not enforced. */
FLTPORT_WINAPI HANDLE CreateSemaphoreA(LPSECURITY_ATTRIBUTES lpSemaphoreAttributes,
				       LONG lInitialCount, LONG lMaximumCount, LPCSTR lpName);
FLTPORT_WINAPI HANDLE CreateSemaphoreW(LPSECURITY_ATTRIBUTES lpSemaphoreAttributes,
				       LONG lInitialCount, LONG lMaximumCount, LPCWSTR lpName);
FLTPORT_WINAPI HANDLE OpenSemaphoreA(DWORD dwDesiredAccess, BOOL bInheritHandle, LPCSTR lpName);
FLTPORT_WINAPI HANDLE OpenSemaphoreW(DWORD dwDesiredAccess, BOOL bInheritHandle, LPCWSTR lpName);
/* Adds lReleaseCount (> 0) to the count; over the maximum: FALSE,
 * ERROR_TOO_MANY_POSTS and the count unchanged.  *lpPreviousCount (may be
 * NULL) gets the count before.  Semaphores are waitable with
 * WaitForSingleObject / WaitForMultipleObjects: a successful wait takes one. */
FLTPORT_WINAPI BOOL ReleaseSemaphore(HANDLE hSemaphore, LONG lReleaseCount, LPLONG lpPreviousCount);
FLTPORT_WINAPI HANDLE OpenEventA(DWORD dwDesiredAccess, BOOL bInheritHandle, LPCSTR lpName);
FLTPORT_WINAPI HANDLE OpenEventW(DWORD dwDesiredAccess, BOOL bInheritHandle, LPCWSTR lpName);
#ifdef UNICODE
#define CreateSemaphore CreateSemaphoreW
#define OpenSemaphore OpenSemaphoreW
#define OpenEvent OpenEventW
#else
#define CreateSemaphore CreateSemaphoreA
#define OpenSemaphore OpenSemaphoreA
#define OpenEvent OpenEventA
#endif

/* ---- kernel32 string routines ----
 * lstrlen of NULL is 0; lstrcpy/lstrcpyn/lstrcat with a NULL string give
 * NULL (Windows catches the access violation and gives NULL).  lstrcpyn
 * copies at most iMaxLength - 1 characters and always ends the copy
 * (iMaxLength <= 0: nothing written).  lstrcmp/lstrcmpi return -1, 0 or 1
 * by code point (lstrcmpi after towlower): Windows compares by the user
 * locale's word sort (hyphens and apostrophes count less), so orders differ
 * there; NULL sorts before any string. */
FLTPORT_WINAPI int lstrlenA(LPCSTR lpString);
FLTPORT_WINAPI int lstrlenW(LPCWSTR lpString);
FLTPORT_WINAPI LPSTR lstrcpyA(LPSTR lpString1, LPCSTR lpString2);
FLTPORT_WINAPI LPWSTR lstrcpyW(LPWSTR lpString1, LPCWSTR lpString2);
FLTPORT_WINAPI LPSTR lstrcpynA(LPSTR lpString1, LPCSTR lpString2, int iMaxLength);
FLTPORT_WINAPI LPWSTR lstrcpynW(LPWSTR lpString1, LPCWSTR lpString2, int iMaxLength);
FLTPORT_WINAPI LPSTR lstrcatA(LPSTR lpString1, LPCSTR lpString2);
FLTPORT_WINAPI LPWSTR lstrcatW(LPWSTR lpString1, LPCWSTR lpString2);
FLTPORT_WINAPI int lstrcmpA(LPCSTR lpString1, LPCSTR lpString2);
FLTPORT_WINAPI int lstrcmpW(LPCWSTR lpString1, LPCWSTR lpString2);
FLTPORT_WINAPI int lstrcmpiA(LPCSTR lpString1, LPCSTR lpString2);
FLTPORT_WINAPI int lstrcmpiW(LPCWSTR lpString1, LPCWSTR lpString2);
#ifdef UNICODE
#define lstrlen lstrlenW
#define lstrcpy lstrcpyW
#define lstrcpyn lstrcpynW
#define lstrcat lstrcatW
#define lstrcmp lstrcmpW
#define lstrcmpi lstrcmpiW
#else
#define lstrlen lstrlenA
#define lstrcpy lstrcpyA
#define lstrcpyn lstrcpynA
#define lstrcat lstrcatA
#define lstrcmp lstrcmpA
#define lstrcmpi lstrcmpiA
#endif

/* ---- console control handlers ----
 * SIGINT is CTRL_C_EVENT, SIGHUP CTRL_CLOSE_EVENT, SIGTERM
 * CTRL_SHUTDOWN_EVENT (CTRL_BREAK_EVENT and CTRL_LOGOFF_EVENT never come).
 * Handlers run on a new thread per event, the last registered first, until
 * one returns TRUE; if none does, the process ends by the signal.  After a
 * CTRL_CLOSE_EVENT or CTRL_SHUTDOWN_EVENT it ends by the signal when the
 * handlers return, or after 5 s / 20 s.  SetConsoleCtrlHandler(NULL, TRUE)
 * ignores Ctrl+C (children inherit it), (NULL, FALSE) restores it.
 * Removing a handler not registered: FALSE, ERROR_INVALID_PARAMETER. */
#define CTRL_C_EVENT 0
#define CTRL_BREAK_EVENT 1
#define CTRL_CLOSE_EVENT 2
#define CTRL_LOGOFF_EVENT 5
#define CTRL_SHUTDOWN_EVENT 6
typedef BOOL(WINAPI *PHANDLER_ROUTINE)(DWORD CtrlType);
FLTPORT_WINAPI BOOL SetConsoleCtrlHandler(PHANDLER_ROUTINE HandlerRoutine, BOOL Add);

/* ---- processes ----
 * OpenProcess opens a process by pid on a pidfd: the handle names that
 * process for its lifetime, whatever pid reuse does.  Access rights are
 * accepted and not checked at open: a query the caller may not make fails
 * then (another user's process, not root: ERROR_ACCESS_DENIED).  pid 0 or
 * one that does not exist: NULL, ERROR_INVALID_PARAMETER; Linux before 5.3
 * (no pidfd_open): NULL, ERROR_NOT_SUPPORTED.  The handle is
 * waitable (signalled once the process has ended) and closed with
 * CloseHandle.  QueryFullProcessImageName and GetProcessImageFileName give
 * the executable's Linux path (PROCESS_NAME_NATIVE too: there are no NT
 * device paths), " (deleted)" when it was removed; *lpdwSize in characters
 * with the terminator in, without it out; too small: FALSE,
 * ERROR_INSUFFICIENT_BUFFER.  Once the process has ended its name is
 * gone (Windows keeps it while a handle is open): ERROR_GEN_FAILURE.
 * GetExitCodeProcess: STILL_ACTIVE while it runs, then its exit status (128 +
 * the signal that ended it): known until its parent reaps it, and after
 * that when this process is the parent or the kernel keeps it (6.15+); else
 * FALSE with ERROR_NOT_SUPPORTED.  TerminateProcess kills it with SIGKILL
 * (its exit code is then 128 + 9, not uExitCode); one that has ended, or
 * another user's when not root: ERROR_ACCESS_DENIED.  Waits on
 * GetCurrentProcess() or GetCurrentThread() never end but by time-out. */
#define PROCESS_TERMINATE 0x0001u
#define PROCESS_CREATE_THREAD 0x0002u
#define PROCESS_VM_OPERATION 0x0008u
#define PROCESS_VM_READ 0x0010u
#define PROCESS_VM_WRITE 0x0020u
#define PROCESS_DUP_HANDLE 0x0040u
#define PROCESS_CREATE_PROCESS 0x0080u
#define PROCESS_SET_QUOTA 0x0100u
#define PROCESS_SET_INFORMATION 0x0200u
#define PROCESS_QUERY_INFORMATION 0x0400u
#define PROCESS_SUSPEND_RESUME 0x0800u
#define PROCESS_QUERY_LIMITED_INFORMATION 0x1000u
#define PROCESS_ALL_ACCESS (STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0xFFFFu)
#define PROCESS_NAME_NATIVE 0x00000001u
FLTPORT_WINAPI HANDLE OpenProcess(DWORD dwDesiredAccess, BOOL bInheritHandle, DWORD dwProcessId);
FLTPORT_WINAPI BOOL QueryFullProcessImageNameA(HANDLE hProcess, DWORD dwFlags, LPSTR lpExeName,
					       PDWORD lpdwSize);
FLTPORT_WINAPI BOOL QueryFullProcessImageNameW(HANDLE hProcess, DWORD dwFlags, LPWSTR lpExeName,
					       PDWORD lpdwSize);
FLTPORT_WINAPI DWORD GetProcessId(HANDLE Process);
FLTPORT_WINAPI BOOL GetExitCodeProcess(HANDLE hProcess, LPDWORD lpExitCode);
FLTPORT_WINAPI BOOL TerminateProcess(HANDLE hProcess, UINT uExitCode);
#ifdef UNICODE
#define QueryFullProcessImageName QueryFullProcessImageNameW
#else
#define QueryFullProcessImageName QueryFullProcessImageNameA
#endif

/* ---- the event log, on syslog ----
 * RegisterEventSource gives a handle for a source name (lpUNCServerName
 * must be NULL or "": another machine's log is ERROR_ACCESS_DENIED; a NULL
 * source: ERROR_INVALID_PARAMETER).  ReportEvent sends one syslog(3) record,
 * facility LOG_DAEMON, "<source>: <strings, separated by spaces>" ("<source>:
 * event <id>" without strings), at the level of wType: EVENTLOG_ERROR_TYPE
 * LOG_ERR, EVENTLOG_WARNING_TYPE and EVENTLOG_AUDIT_FAILURE LOG_WARNING,
 * EVENTLOG_AUDIT_SUCCESS LOG_NOTICE, others LOG_INFO; under systemd it
 * reaches the journal.  There are no message files: the strings are the
 * text, as Event Viewer shows them when a source's message file is missing;
 * wCategory, lpUserSid and the raw data are not logged.  Control characters
 * are written as "#ooo" (octal, as rsyslog does: a string cannot forge a
 * line of its own) and invalid UTF-8 as U+FFFD; a record over 60 KiB is cut
 * and ends in " [truncated]".  A handle not from RegisterEventSource, or
 * deregistered: FALSE, ERROR_INVALID_HANDLE; wNumStrings > 0 with lpStrings
 * NULL, a NULL string, or one over 31,839 characters (Windows' limit):
 * FALSE, ERROR_INVALID_PARAMETER. */
FLTPORT_WINAPI HANDLE RegisterEventSourceA(LPCSTR lpUNCServerName, LPCSTR lpSourceName);
FLTPORT_WINAPI HANDLE RegisterEventSourceW(LPCWSTR lpUNCServerName, LPCWSTR lpSourceName);
FLTPORT_WINAPI BOOL DeregisterEventSource(HANDLE hEventLog);
FLTPORT_WINAPI BOOL ReportEventA(HANDLE hEventLog, WORD wType, WORD wCategory, DWORD dwEventID,
				 PSID lpUserSid, WORD wNumStrings, DWORD dwDataSize,
				 LPCSTR *lpStrings, LPVOID lpRawData);
FLTPORT_WINAPI BOOL ReportEventW(HANDLE hEventLog, WORD wType, WORD wCategory, DWORD dwEventID,
				 PSID lpUserSid, WORD wNumStrings, DWORD dwDataSize,
				 LPCWSTR *lpStrings, LPVOID lpRawData);
#ifdef UNICODE
#define RegisterEventSource RegisterEventSourceW
#define ReportEvent ReportEventW
#else
#define RegisterEventSource RegisterEventSourceA
#define ReportEvent ReportEventA
#endif

/* exit(uExitCode): atexit handlers run and stdio is flushed; other threads
 * are not stopped first. */
FLTPORT_WINAPI __attribute__((noreturn)) void ExitProcess(UINT uExitCode);

/* ---- messages ----
 * FORMAT_MESSAGE_FROM_SYSTEM knows the English (en-US) text of every Win32
 * error the layer's headers define, of WAIT_TIMEOUT, of those errors as
 * HRESULTs (0x8007xxxx) and of the generic E_* HRESULTs; the FltMgr
 * HRESULTs (0x801Fxxxx) are in the fltlib module, as on Windows (see
 * LoadLibraryExW).  Unknown ids: 0, ERROR_MR_MID_NOT_FOUND.  dwLanguageId
 * must be 0 or a neutral or English language (else
 * ERROR_RESOURCE_LANG_NOT_FOUND).  Inserts: %1..%99 with an optional
 * !printf-spec! (MSVC rules, as StringCchPrintf; no floating point, no `*`),
 * taken from Arguments (a va_list *, each argument pointer-sized) or, with
 * FORMAT_MESSAGE_ARGUMENT_ARRAY, from a DWORD_PTR array; inserts without
 * arguments: ERROR_INVALID_PARAMETER.  %0 %n %r %t %b %% %. %! and "% " as
 * Windows.  The system texts end with "\r\n" as Windows'; with
 * FORMAT_MESSAGE_MAX_WIDTH_MASK a line break of the text becomes a space.  A
 * numeric maximum width (1..254) is taken as FORMAT_MESSAGE_MAX_WIDTH_MASK:
 * lines are not wrapped.  Returns the characters stored without the
 * terminator; a buffer too small: 0, ERROR_INSUFFICIENT_BUFFER.  With
 * FORMAT_MESSAGE_ALLOCATE_BUFFER, lpBuffer is a pointer to the pointer that
 * receives a LocalAlloc'ed buffer (free it with LocalFree).  Output over
 * 32767 characters: 0, ERROR_MORE_DATA.  FormatMessageA writes UTF-8. */
#define FORMAT_MESSAGE_ALLOCATE_BUFFER 0x00000100u
#define FORMAT_MESSAGE_IGNORE_INSERTS 0x00000200u
#define FORMAT_MESSAGE_FROM_STRING 0x00000400u
#define FORMAT_MESSAGE_FROM_HMODULE 0x00000800u
#define FORMAT_MESSAGE_FROM_SYSTEM 0x00001000u
#define FORMAT_MESSAGE_ARGUMENT_ARRAY 0x00002000u
#define FORMAT_MESSAGE_MAX_WIDTH_MASK 0x000000FFu
FLTPORT_WINAPI DWORD FormatMessageA(DWORD dwFlags, LPCVOID lpSource, DWORD dwMessageId,
				    DWORD dwLanguageId, LPSTR lpBuffer, DWORD nSize,
				    va_list *Arguments);
FLTPORT_WINAPI DWORD FormatMessageW(DWORD dwFlags, LPCVOID lpSource, DWORD dwMessageId,
				    DWORD dwLanguageId, LPWSTR lpBuffer, DWORD nSize,
				    va_list *Arguments);
#ifdef UNICODE
#define FormatMessage FormatMessageW
#else
#define FormatMessage FormatMessageA
#endif

/* Local memory: fixed blocks only (LMEM_MOVEABLE: NULL,
 * ERROR_INVALID_PARAMETER).  LocalFree returns NULL, also for NULL. */
#define LMEM_FIXED 0x0000u
#define LMEM_MOVEABLE 0x0002u
#define LMEM_ZEROINIT 0x0040u
#define LPTR (LMEM_FIXED | LMEM_ZEROINIT)
FLTPORT_WINAPI HLOCAL LocalAlloc(UINT uFlags, SIZE_T uBytes);
FLTPORT_WINAPI HLOCAL LocalFree(HLOCAL hMem);

/* ---- heap ----
 * The process heap only (malloc underneath): GetProcessHeap's handle is
 * the one heap the calls accept (another: NULL, FALSE or (SIZE_T)-1).  A
 * pointer that is not a live block of HeapAlloc/HeapReAlloc (foreign, or
 * freed already) is looked up, never read, and refused the same way rather
 * than freed (Windows corrupts its heap).  Only HeapFree sets the last
 * error (ERROR_INVALID_HANDLE, ERROR_INVALID_PARAMETER): as on Windows,
 * HeapAlloc, HeapReAlloc and HeapSize do not.  HEAP_GENERATE_EXCEPTIONS
 * raises nothing (the result is NULL too); HEAP_NO_SERIALIZE is accepted
 * (the heap is always thread-safe).  HeapReAlloc with HEAP_ZERO_MEMORY
 * zeroes the bytes past the old size; HEAP_REALLOC_IN_PLACE_ONLY succeeds
 * only when shrinking.  HeapSize gives the size asked for. */
#define HEAP_NO_SERIALIZE 0x00000001u
#define HEAP_GENERATE_EXCEPTIONS 0x00000004u
#define HEAP_ZERO_MEMORY 0x00000008u
#define HEAP_REALLOC_IN_PLACE_ONLY 0x00000010u
FLTPORT_WINAPI HANDLE GetProcessHeap(void);
FLTPORT_WINAPI LPVOID HeapAlloc(HANDLE hHeap, DWORD dwFlags, SIZE_T dwBytes);
FLTPORT_WINAPI LPVOID HeapReAlloc(HANDLE hHeap, DWORD dwFlags, LPVOID lpMem, SIZE_T dwBytes);
FLTPORT_WINAPI BOOL HeapFree(HANDLE hHeap, DWORD dwFlags, LPVOID lpMem);
FLTPORT_WINAPI SIZE_T HeapSize(HANDLE hHeap, DWORD dwFlags, LPCVOID lpMem);

/* ---- files ----
 * CreateFile opens a Linux path ('\\' is taken for '/'; there are no drive
 * letters) for synchronous I/O: ReadFile, WriteFile (with an OVERLAPPED: at
 * its Offset, the file pointer moved past the transfer, as Windows does for
 * a synchronous handle; Offset and OffsetHigh 0xFFFFFFFF: at the end),
 * GetFileSize(Ex), SetFilePointer(Ex), SetEndOfFile, FlushFileBuffers,
 * CloseHandle, and CreateFileMapping.  Share modes are accepted and not
 * enforced (Linux has no mandatory share modes); FILE_FLAG_OVERLAPPED:
 * INVALID_HANDLE_VALUE, ERROR_NOT_SUPPORTED; a directory opens only with
 * FILE_FLAG_BACKUP_SEMANTICS (else ERROR_ACCESS_DENIED);
 * FILE_FLAG_DELETE_ON_CLOSE removes the name when the last handle closes;
 * FILE_FLAG_WRITE_THROUGH is O_DSYNC; other flags and attributes are
 * accepted.  CREATE_ALWAYS and OPEN_ALWAYS set the last error to
 * ERROR_ALREADY_EXISTS when the file was there, 0 otherwise.  Errors:
 * ERROR_FILE_NOT_FOUND, ERROR_PATH_NOT_FOUND (a directory on the way is
 * missing), ERROR_FILE_EXISTS (CREATE_NEW), ERROR_ACCESS_DENIED, ... */
#define GENERIC_READ 0x80000000u
#define GENERIC_WRITE 0x40000000u
#define GENERIC_EXECUTE 0x20000000u
#define GENERIC_ALL 0x10000000u
#define FILE_READ_DATA 0x0001u
#define FILE_LIST_DIRECTORY 0x0001u
#define FILE_WRITE_DATA 0x0002u
#define FILE_ADD_FILE 0x0002u
#define FILE_APPEND_DATA 0x0004u
#define FILE_READ_EA 0x0008u
#define FILE_WRITE_EA 0x0010u
#define FILE_EXECUTE 0x0020u
#define FILE_READ_ATTRIBUTES 0x0080u
#define FILE_WRITE_ATTRIBUTES 0x0100u
#define DELETE 0x00010000u
#define READ_CONTROL 0x00020000u
#define STANDARD_RIGHTS_READ READ_CONTROL
#define STANDARD_RIGHTS_WRITE READ_CONTROL
#define FILE_GENERIC_READ \
	(STANDARD_RIGHTS_READ | FILE_READ_DATA | FILE_READ_ATTRIBUTES | FILE_READ_EA | SYNCHRONIZE)
#define FILE_GENERIC_WRITE                                                                 \
	(STANDARD_RIGHTS_WRITE | FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES | FILE_WRITE_EA | \
	 FILE_APPEND_DATA | SYNCHRONIZE)
#define FILE_SHARE_READ 0x00000001u
#define FILE_SHARE_WRITE 0x00000002u
#define FILE_SHARE_DELETE 0x00000004u
#define CREATE_NEW 1u
#define CREATE_ALWAYS 2u
#define OPEN_EXISTING 3u
#define OPEN_ALWAYS 4u
#define TRUNCATE_EXISTING 5u
#define FILE_ATTRIBUTE_READONLY 0x00000001u
#define FILE_ATTRIBUTE_HIDDEN 0x00000002u
#define FILE_ATTRIBUTE_SYSTEM 0x00000004u
#define FILE_ATTRIBUTE_DIRECTORY 0x00000010u
#define FILE_ATTRIBUTE_ARCHIVE 0x00000020u
#define FILE_ATTRIBUTE_NORMAL 0x00000080u
#define FILE_ATTRIBUTE_TEMPORARY 0x00000100u
#define FILE_FLAG_WRITE_THROUGH 0x80000000u
#define FILE_FLAG_OVERLAPPED 0x40000000u
#define FILE_FLAG_NO_BUFFERING 0x20000000u
#define FILE_FLAG_RANDOM_ACCESS 0x10000000u
#define FILE_FLAG_SEQUENTIAL_SCAN 0x08000000u
#define FILE_FLAG_DELETE_ON_CLOSE 0x04000000u
#define FILE_FLAG_BACKUP_SEMANTICS 0x02000000u
#define FILE_FLAG_POSIX_SEMANTICS 0x01000000u
#define FILE_FLAG_OPEN_REPARSE_POINT 0x00200000u
#define FILE_BEGIN 0u
#define FILE_CURRENT 1u
#define FILE_END 2u
#define INVALID_FILE_SIZE ((DWORD)0xFFFFFFFFu)
#define INVALID_SET_FILE_POINTER ((DWORD)-1)
FLTPORT_WINAPI HANDLE CreateFileA(LPCSTR lpFileName, DWORD dwDesiredAccess, DWORD dwShareMode,
				  LPSECURITY_ATTRIBUTES lpSecurityAttributes,
				  DWORD dwCreationDisposition, DWORD dwFlagsAndAttributes,
				  HANDLE hTemplateFile);
FLTPORT_WINAPI HANDLE CreateFileW(LPCWSTR lpFileName, DWORD dwDesiredAccess, DWORD dwShareMode,
				  LPSECURITY_ATTRIBUTES lpSecurityAttributes,
				  DWORD dwCreationDisposition, DWORD dwFlagsAndAttributes,
				  HANDLE hTemplateFile);
FLTPORT_WINAPI BOOL ReadFile(HANDLE hFile, LPVOID lpBuffer, DWORD nNumberOfBytesToRead,
			     LPDWORD lpNumberOfBytesRead, LPOVERLAPPED lpOverlapped);
FLTPORT_WINAPI BOOL WriteFile(HANDLE hFile, LPCVOID lpBuffer, DWORD nNumberOfBytesToWrite,
			      LPDWORD lpNumberOfBytesWritten, LPOVERLAPPED lpOverlapped);
FLTPORT_WINAPI BOOL GetFileSizeEx(HANDLE hFile, PLARGE_INTEGER lpFileSize);
FLTPORT_WINAPI DWORD GetFileSize(HANDLE hFile, LPDWORD lpFileSizeHigh);
FLTPORT_WINAPI BOOL SetFilePointerEx(HANDLE hFile, LARGE_INTEGER liDistanceToMove,
				     PLARGE_INTEGER lpNewFilePointer, DWORD dwMoveMethod);
FLTPORT_WINAPI DWORD SetFilePointer(HANDLE hFile, LONG lDistanceToMove, PLONG lpDistanceToMoveHigh,
				    DWORD dwMoveMethod);
FLTPORT_WINAPI BOOL SetEndOfFile(HANDLE hFile);
FLTPORT_WINAPI BOOL FlushFileBuffers(HANDLE hFile);
FLTPORT_WINAPI BOOL DeleteFileA(LPCSTR lpFileName);
FLTPORT_WINAPI BOOL DeleteFileW(LPCWSTR lpFileName);
#ifdef UNICODE
#define CreateFile CreateFileW
#define DeleteFile DeleteFileW
#else
#define CreateFile CreateFileA
#define DeleteFile DeleteFileA
#endif

/* ---- system, environment, modules, directories ----
 * GetSystemInfo: the CPU architecture, page size, allocation granularity
 * (64 KiB, as MapViewOfFile's offsets need), the CPUs this process may run
 * on (at most 64, as one processor group).  GetEnvironmentVariable and the
 * other getters return the length without the terminator, or the size
 * needed with it when the buffer is too small (nothing written);
 * ERROR_ENVVAR_NOT_FOUND.  The Win32 environment is a block of its own, as
 * on Windows: read from environ at first use, changed only by
 * SetEnvironmentVariable (under a lock), names compared ignoring case;
 * getenv() does not see its changes (nor does the C runtime's on Windows).
 * GetComputerName: the host name's first label
 * in upper case, at most MAX_COMPUTERNAME_LENGTH characters (Windows'
 * NetBIOS name); too small: FALSE, ERROR_BUFFER_OVERFLOW, *nSize the size
 * needed.  GetModuleHandle(NULL) and GetModuleFileName(NULL) name the
 * program (/proc/self/exe); fltlib.dll is the one other module.
 * OutputDebugString writes to stderr when FLTPORT_DEBUG is set (no
 * debugger listens) and stderr has room (never blocking: a line that does
 * not fit is dropped), nothing otherwise.  Paths as CreateFile's. */
typedef struct _SYSTEM_INFO {
	union {
		DWORD dwOemId;
		struct {
			WORD wProcessorArchitecture;
			WORD wReserved;
		} DUMMYSTRUCTNAME;
	} DUMMYUNIONNAME;
	DWORD dwPageSize;
	LPVOID lpMinimumApplicationAddress;
	LPVOID lpMaximumApplicationAddress;
	DWORD_PTR dwActiveProcessorMask;
	DWORD dwNumberOfProcessors;
	DWORD dwProcessorType;
	DWORD dwAllocationGranularity;
	WORD wProcessorLevel;
	WORD wProcessorRevision;
} SYSTEM_INFO, *LPSYSTEM_INFO;
#define PROCESSOR_ARCHITECTURE_INTEL 0
#define PROCESSOR_ARCHITECTURE_ARM 5
#define PROCESSOR_ARCHITECTURE_AMD64 9
#define PROCESSOR_ARCHITECTURE_ARM64 12
#define PROCESSOR_ARCHITECTURE_UNKNOWN 0xFFFF
#define PROCESSOR_INTEL_PENTIUM 586
#define PROCESSOR_AMD_X8664 8664
#define MAX_COMPUTERNAME_LENGTH 15
#define INVALID_FILE_ATTRIBUTES ((DWORD)-1)
#define MOVEFILE_REPLACE_EXISTING 0x00000001u
#define MOVEFILE_COPY_ALLOWED 0x00000002u
#define MOVEFILE_DELAY_UNTIL_REBOOT 0x00000004u
#define MOVEFILE_WRITE_THROUGH 0x00000008u
FLTPORT_WINAPI void GetSystemInfo(LPSYSTEM_INFO lpSystemInfo);
FLTPORT_WINAPI void GetNativeSystemInfo(LPSYSTEM_INFO lpSystemInfo);
FLTPORT_WINAPI DWORD GetEnvironmentVariableA(LPCSTR lpName, LPSTR lpBuffer, DWORD nSize);
FLTPORT_WINAPI DWORD GetEnvironmentVariableW(LPCWSTR lpName, LPWSTR lpBuffer, DWORD nSize);
FLTPORT_WINAPI BOOL SetEnvironmentVariableA(LPCSTR lpName, LPCSTR lpValue);
FLTPORT_WINAPI BOOL SetEnvironmentVariableW(LPCWSTR lpName, LPCWSTR lpValue);
FLTPORT_WINAPI BOOL GetComputerNameA(LPSTR lpBuffer, LPDWORD nSize);
FLTPORT_WINAPI BOOL GetComputerNameW(LPWSTR lpBuffer, LPDWORD nSize);
FLTPORT_WINAPI HMODULE GetModuleHandleA(LPCSTR lpModuleName);
FLTPORT_WINAPI HMODULE GetModuleHandleW(LPCWSTR lpModuleName);
FLTPORT_WINAPI DWORD GetModuleFileNameA(HMODULE hModule, LPSTR lpFilename, DWORD nSize);
FLTPORT_WINAPI DWORD GetModuleFileNameW(HMODULE hModule, LPWSTR lpFilename, DWORD nSize);
FLTPORT_WINAPI void OutputDebugStringA(LPCSTR lpOutputString);
FLTPORT_WINAPI void OutputDebugStringW(LPCWSTR lpOutputString);
FLTPORT_WINAPI DWORD GetCurrentDirectoryA(DWORD nBufferLength, LPSTR lpBuffer);
FLTPORT_WINAPI DWORD GetCurrentDirectoryW(DWORD nBufferLength, LPWSTR lpBuffer);
FLTPORT_WINAPI BOOL SetCurrentDirectoryA(LPCSTR lpPathName);
FLTPORT_WINAPI BOOL SetCurrentDirectoryW(LPCWSTR lpPathName);
FLTPORT_WINAPI BOOL CreateDirectoryA(LPCSTR lpPathName, LPSECURITY_ATTRIBUTES lpSecurityAttributes);
FLTPORT_WINAPI BOOL CreateDirectoryW(LPCWSTR lpPathName,
				     LPSECURITY_ATTRIBUTES lpSecurityAttributes);
FLTPORT_WINAPI BOOL RemoveDirectoryA(LPCSTR lpPathName);
FLTPORT_WINAPI BOOL RemoveDirectoryW(LPCWSTR lpPathName);
/* FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_READONLY (no owner write
 * permission), else FILE_ATTRIBUTE_NORMAL; INVALID_FILE_ATTRIBUTES. */
FLTPORT_WINAPI DWORD GetFileAttributesA(LPCSTR lpFileName);
FLTPORT_WINAPI DWORD GetFileAttributesW(LPCWSTR lpFileName);
/* Without MOVEFILE_REPLACE_EXISTING an existing target gives
 * ERROR_ALREADY_EXISTS; across file systems ERROR_NOT_SAME_DEVICE (no
 * copy, even with MOVEFILE_COPY_ALLOWED); MOVEFILE_DELAY_UNTIL_REBOOT:
 * ERROR_INVALID_PARAMETER. */
FLTPORT_WINAPI BOOL MoveFileExA(LPCSTR lpExistingFileName, LPCSTR lpNewFileName, DWORD dwFlags);
FLTPORT_WINAPI BOOL MoveFileExW(LPCWSTR lpExistingFileName, LPCWSTR lpNewFileName, DWORD dwFlags);
FLTPORT_WINAPI BOOL MoveFileA(LPCSTR lpExistingFileName, LPCSTR lpNewFileName);
FLTPORT_WINAPI BOOL MoveFileW(LPCWSTR lpExistingFileName, LPCWSTR lpNewFileName);
#ifdef UNICODE
#define GetEnvironmentVariable GetEnvironmentVariableW
#define SetEnvironmentVariable SetEnvironmentVariableW
#define GetComputerName GetComputerNameW
#define GetModuleHandle GetModuleHandleW
#define GetModuleFileName GetModuleFileNameW
#define OutputDebugString OutputDebugStringW
#define GetCurrentDirectory GetCurrentDirectoryW
#define SetCurrentDirectory SetCurrentDirectoryW
#define CreateDirectory CreateDirectoryW
#define RemoveDirectory RemoveDirectoryW
#define GetFileAttributes GetFileAttributesW
#define MoveFileEx MoveFileExW
#define MoveFile MoveFileW
#else
#define GetEnvironmentVariable GetEnvironmentVariableA
#define SetEnvironmentVariable SetEnvironmentVariableA
#define GetComputerName GetComputerNameA
#define GetModuleHandle GetModuleHandleA
#define GetModuleFileName GetModuleFileNameA
#define OutputDebugString OutputDebugStringA
#define GetCurrentDirectory GetCurrentDirectoryA
#define SetCurrentDirectory SetCurrentDirectoryA
#define CreateDirectory CreateDirectoryA
#define RemoveDirectory RemoveDirectoryA
#define GetFileAttributes GetFileAttributesA
#define MoveFileEx MoveFileExA
#define MoveFile MoveFileA
#endif

/* ---- sections and views ----
 * CreateFileMapping makes sections of PAGE_READONLY, PAGE_READWRITE or
 * PAGE_WRITECOPY pages (SEC_COMMIT accepted): of a file opened with
 * CreateFile (the handle must allow the pages' access, else
 * ERROR_ACCESS_DENIED; size 0: the file's size, ERROR_FILE_INVALID for an
 * empty file; larger than the file: the file grows with PAGE_READWRITE,
 * ERROR_NOT_ENOUGH_MEMORY otherwise), or pagefile-backed (hFile
 * INVALID_HANDLE_VALUE: a memfd, zero-filled; size 0:
 * ERROR_INVALID_PARAMETER).  Another handle: ERROR_INVALID_HANDLE; a name:
 * NULL, ERROR_NOT_SUPPORTED.  The section lives while a handle or a view of
 * it does (also after its file's handle is closed).
 *
 * MapViewOfFile: FILE_MAP_READ, FILE_MAP_WRITE (or FILE_MAP_ALL_ACCESS),
 * FILE_MAP_COPY (private copy-on-write); more access than the section's
 * pages allow, FILE_MAP_EXECUTE, or a range past the section's end:
 * ERROR_ACCESS_DENIED; an offset that is not a multiple of the allocation
 * granularity (64 KiB): ERROR_MAPPED_ALIGNMENT; 0 bytes: to the end.
 * UnmapViewOfFile(Ex) take an address inside a view (another:
 * ERROR_INVALID_ADDRESS); UnmapViewOfFileEx accepts the flags 0 and
 * MEM_UNMAP_WITH_TRANSIENT_BOOST (placeholders: ERROR_INVALID_PARAMETER).
 *
 * VirtualQuery describes any address of the process from the kernel's
 * memory map (docs/PORTING.md: what Linux regions map to): a view of a
 * section gives its base as AllocationBase and MEM_MAPPED; another mapping
 * gives its kernel region's start; unmapped space is MEM_FREE.  dwLength
 * below sizeof(MEMORY_BASIC_INFORMATION): 0, ERROR_BAD_LENGTH; lpBuffer
 * NULL: 0, ERROR_NOACCESS; an address above user space: 0,
 * ERROR_INVALID_PARAMETER. */
#define PAGE_NOACCESS 0x01u
#define PAGE_READONLY 0x02u
#define PAGE_READWRITE 0x04u
#define PAGE_WRITECOPY 0x08u
#define PAGE_EXECUTE 0x10u
#define PAGE_EXECUTE_READ 0x20u
#define PAGE_EXECUTE_READWRITE 0x40u
#define PAGE_EXECUTE_WRITECOPY 0x80u
#define MEM_COMMIT 0x00001000u
#define MEM_RESERVE 0x00002000u
#define MEM_FREE 0x00010000u
#define MEM_PRIVATE 0x00020000u
#define MEM_MAPPED 0x00040000u
#define MEM_IMAGE 0x01000000u
#define MEM_UNMAP_WITH_TRANSIENT_BOOST 0x00000001u
#define MEM_PRESERVE_PLACEHOLDER 0x00000002u
#define SEC_COMMIT 0x08000000u
#define SECTION_QUERY 0x0001u
#define SECTION_MAP_WRITE 0x0002u
#define SECTION_MAP_READ 0x0004u
#define SECTION_MAP_EXECUTE 0x0008u
#define SECTION_EXTEND_SIZE 0x0010u
#define SECTION_MAP_EXECUTE_EXPLICIT 0x0020u
#define SECTION_ALL_ACCESS 0x000F001Fu
#define FILE_MAP_COPY SECTION_QUERY
#define FILE_MAP_WRITE SECTION_MAP_WRITE
#define FILE_MAP_READ SECTION_MAP_READ
#define FILE_MAP_EXECUTE SECTION_MAP_EXECUTE_EXPLICIT
#define FILE_MAP_ALL_ACCESS SECTION_ALL_ACCESS

/* Windows' layouts: 48 bytes on 64-bit ABIs (PartitionId sits in what was
 * padding), 28 on 32-bit ones (no PartitionId). */
typedef struct _MEMORY_BASIC_INFORMATION {
	PVOID BaseAddress;
	PVOID AllocationBase;
	DWORD AllocationProtect;
#if UINTPTR_MAX > 0xFFFFFFFFu
	WORD PartitionId;
#endif
	SIZE_T RegionSize;
	DWORD State;
	DWORD Protect;
	DWORD Type;
} MEMORY_BASIC_INFORMATION, *PMEMORY_BASIC_INFORMATION;

FLTPORT_WINAPI HANDLE CreateFileMappingA(HANDLE hFile, LPSECURITY_ATTRIBUTES lpAttributes,
					 DWORD flProtect, DWORD dwMaximumSizeHigh,
					 DWORD dwMaximumSizeLow, LPCSTR lpName);
FLTPORT_WINAPI HANDLE CreateFileMappingW(HANDLE hFile, LPSECURITY_ATTRIBUTES lpAttributes,
					 DWORD flProtect, DWORD dwMaximumSizeHigh,
					 DWORD dwMaximumSizeLow, LPCWSTR lpName);
#ifdef UNICODE
#define CreateFileMapping CreateFileMappingW
#else
#define CreateFileMapping CreateFileMappingA
#endif
FLTPORT_WINAPI LPVOID MapViewOfFile(HANDLE hFileMappingObject, DWORD dwDesiredAccess,
				    DWORD dwFileOffsetHigh, DWORD dwFileOffsetLow,
				    SIZE_T dwNumberOfBytesToMap);
FLTPORT_WINAPI BOOL UnmapViewOfFile(LPCVOID lpBaseAddress);
FLTPORT_WINAPI BOOL UnmapViewOfFileEx(PVOID BaseAddress, ULONG UnmapFlags);
FLTPORT_WINAPI SIZE_T VirtualQuery(LPCVOID lpAddress, PMEMORY_BASIC_INFORMATION lpBuffer,
				   SIZE_T dwLength);
/* Private memory: VirtualAlloc reserves (MEM_RESERVE: inaccessible pages)
 * and/or commits (MEM_COMMIT: zero-filled pages) a region at a 64 KiB
 * boundary, or commits pages inside a reserved region; PAGE_NOACCESS,
 * PAGE_READONLY, PAGE_READWRITE and the PAGE_EXECUTE forms (others:
 * ERROR_INVALID_PARAMETER).  VirtualFree: MEM_RELEASE of a whole region by
 * its base with size 0 (else ERROR_INVALID_PARAMETER / ERROR_INVALID_ADDRESS),
 * MEM_DECOMMIT of pages (their contents go).  VirtualProtect: *lpflOldProtect
 * gets the first page's protection (NULL: ERROR_NOACCESS).  VirtualQuery
 * shows these regions as MEM_PRIVATE with their base. */
#define MEM_DECOMMIT 0x00004000u
#define MEM_RELEASE 0x00008000u
#define MEM_TOP_DOWN 0x00100000u
FLTPORT_WINAPI LPVOID VirtualAlloc(LPVOID lpAddress, SIZE_T dwSize, DWORD flAllocationType,
				   DWORD flProtect);
FLTPORT_WINAPI BOOL VirtualFree(LPVOID lpAddress, SIZE_T dwSize, DWORD dwFreeType);
FLTPORT_WINAPI BOOL VirtualProtect(LPVOID lpAddress, SIZE_T dwSize, DWORD flNewProtect,
				   PDWORD lpflOldProtect);

/* ---- system directory, modules ----
 * GetSystemDirectory gives "/usr/lib" (no Windows directory exists): paths
 * built from it are only meaningful to LoadLibrary(Ex).  Returns the length
 * without the terminator, or the size needed with it when uSize is too
 * small. */
FLTPORT_WINAPI UINT GetSystemDirectoryA(LPSTR lpBuffer, UINT uSize);
FLTPORT_WINAPI UINT GetSystemDirectoryW(LPWSTR lpBuffer, UINT uSize);
#ifdef UNICODE
#define GetSystemDirectory GetSystemDirectoryW
#else
#define GetSystemDirectory GetSystemDirectoryA
#endif

/* No DLL is ever loaded.  LoadLibrary(Ex) knows one module, fltlib.dll (any
 * directory, any case, with or without ".dll", any dwFlags): its handle
 * serves FormatMessage(FORMAT_MESSAGE_FROM_HMODULE) with the FltMgr texts
 * and GetProcAddress with fltlib's port functions.  Any other name: NULL,
 * ERROR_MOD_NOT_FOUND.  hFile must be NULL (else ERROR_INVALID_PARAMETER).
 * GetProcAddress of anything else: NULL, ERROR_PROC_NOT_FOUND; FreeLibrary
 * of anything but a handle from LoadLibrary(Ex): FALSE, ERROR_INVALID_HANDLE. */
#define DONT_RESOLVE_DLL_REFERENCES 0x00000001u
#define LOAD_LIBRARY_AS_DATAFILE 0x00000002u
#define LOAD_WITH_ALTERED_SEARCH_PATH 0x00000008u
#define LOAD_IGNORE_CODE_AUTHZ_LEVEL 0x00000010u
#define LOAD_LIBRARY_AS_IMAGE_RESOURCE 0x00000020u
#define LOAD_LIBRARY_AS_DATAFILE_EXCLUSIVE 0x00000040u
#define LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR 0x00000100u
#define LOAD_LIBRARY_SEARCH_APPLICATION_DIR 0x00000200u
#define LOAD_LIBRARY_SEARCH_USER_DIRS 0x00000400u
#define LOAD_LIBRARY_SEARCH_SYSTEM32 0x00000800u
#define LOAD_LIBRARY_SEARCH_DEFAULT_DIRS 0x00001000u
FLTPORT_WINAPI HMODULE LoadLibraryA(LPCSTR lpLibFileName);
FLTPORT_WINAPI HMODULE LoadLibraryW(LPCWSTR lpLibFileName);
FLTPORT_WINAPI HMODULE LoadLibraryExA(LPCSTR lpLibFileName, HANDLE hFile, DWORD dwFlags);
FLTPORT_WINAPI HMODULE LoadLibraryExW(LPCWSTR lpLibFileName, HANDLE hFile, DWORD dwFlags);
FLTPORT_WINAPI BOOL FreeLibrary(HMODULE hLibModule);
FLTPORT_WINAPI FARPROC GetProcAddress(HMODULE hModule, LPCSTR lpProcName);
#ifdef UNICODE
#define LoadLibrary LoadLibraryW
#define LoadLibraryEx LoadLibraryExW
#else
#define LoadLibrary LoadLibraryA
#define LoadLibraryEx LoadLibraryExA
#endif

/* ---- code pages ----
 * CP_ACP, CP_OEMCP, CP_THREAD_ACP and CP_UTF8 are all UTF-8; other code
 * pages: ERROR_INVALID_PARAMETER.  Wide strings are UTF-32 (wchar_t): a
 * character outside the BMP is one WCHAR, not a surrogate pair (a valid
 * pair in WideCharToMultiByte's input is still joined).  Invalid input
 * becomes U+FFFD, or with MB_ERR_INVALID_CHARS / WC_ERR_INVALID_CHARS fails
 * with ERROR_NO_UNICODE_TRANSLATION.  For CP_UTF8, flags other than those
 * give ERROR_INVALID_FLAGS and lpDefaultChar / lpUsedDefaultChar must be
 * NULL (else ERROR_INVALID_PARAMETER); for the others the flags are
 * accepted, lpDefaultChar is not used (U+FFFD is) and *lpUsedDefaultChar
 * tells whether an invalid character was replaced.  A count of -1 means
 * NUL-terminated (the terminator is converted and counted); a size of 0
 * asks for the size needed; too small: 0, ERROR_INSUFFICIENT_BUFFER. */
#define CP_ACP 0u
#define CP_OEMCP 1u
#define CP_MACCP 2u
#define CP_THREAD_ACP 3u
#define CP_SYMBOL 42u
#define CP_UTF7 65000u
#define CP_UTF8 65001u
#define MB_PRECOMPOSED 0x00000001u
#define MB_COMPOSITE 0x00000002u
#define MB_USEGLYPHCHARS 0x00000004u
#define MB_ERR_INVALID_CHARS 0x00000008u
#define WC_DISCARDNS 0x00000010u
#define WC_SEPCHARS 0x00000020u
#define WC_DEFAULTCHAR 0x00000040u
#define WC_ERR_INVALID_CHARS 0x00000080u
#define WC_COMPOSITECHECK 0x00000200u
#define WC_NO_BEST_FIT_CHARS 0x00000400u
FLTPORT_WINAPI int MultiByteToWideChar(UINT CodePage, DWORD dwFlags, LPCCH lpMultiByteStr,
				       int cbMultiByte, LPWSTR lpWideCharStr, int cchWideChar);
FLTPORT_WINAPI int WideCharToMultiByte(UINT CodePage, DWORD dwFlags, LPCWCH lpWideCharStr,
				       int cchWideChar, LPSTR lpMultiByteStr, int cbMultiByte,
				       LPCCH lpDefaultChar, LPBOOL lpUsedDefaultChar);

/* ---- clocks ----
 * GetTickCount(64): milliseconds since boot, suspend included
 * (CLOCK_BOOTTIME); GetTickCount wraps after 49.7 days as on Windows.
 * QueryPerformanceCounter counts CLOCK_MONOTONIC in units of 100 ns:
 * QueryPerformanceFrequency gives 10,000,000, Windows 10's value. */
FLTPORT_WINAPI DWORD GetTickCount(void);
FLTPORT_WINAPI ULONGLONG GetTickCount64(void);
FLTPORT_WINAPI BOOL QueryPerformanceCounter(LARGE_INTEGER *lpPerformanceCount);
FLTPORT_WINAPI BOOL QueryPerformanceFrequency(LARGE_INTEGER *lpFrequency);

/* The pseudo-handles of the calling process and thread: (HANDLE)-1 and
 * (HANDLE)-2, as on Windows.  CloseHandle accepts and ignores them; the
 * process calls below take GetCurrentProcess(); no other call does. */
static inline HANDLE GetCurrentProcess(void)
{
	return (HANDLE)(LONG_PTR)-1;
}
static inline HANDLE GetCurrentThread(void)
{
	return (HANDLE)(LONG_PTR)-2;
}

/* ---- time ----
 * FILETIMEs up to 0x7FFFFFFFFFFFFFFF (year 30828); beyond, and SYSTEMTIMEs
 * out of range (years 1601..30827): FALSE, ERROR_INVALID_PARAMETER.  Local
 * time uses the current offset of the TZ rules (as Windows, the offset of
 * now, not of the converted date). */
FLTPORT_WINAPI void GetSystemTimeAsFileTime(LPFILETIME lpSystemTimeAsFileTime);
FLTPORT_WINAPI void GetSystemTime(LPSYSTEMTIME lpSystemTime);
FLTPORT_WINAPI void GetLocalTime(LPSYSTEMTIME lpSystemTime);
FLTPORT_WINAPI BOOL FileTimeToSystemTime(const FILETIME *lpFileTime, LPSYSTEMTIME lpSystemTime);
FLTPORT_WINAPI BOOL SystemTimeToFileTime(const SYSTEMTIME *lpSystemTime, LPFILETIME lpFileTime);
FLTPORT_WINAPI BOOL FileTimeToLocalFileTime(const FILETIME *lpFileTime, LPFILETIME lpLocalFileTime);
FLTPORT_WINAPI BOOL LocalFileTimeToFileTime(const FILETIME *lpLocalFileTime, LPFILETIME lpFileTime);

/* ---- paths ----
 * A Linux absolute path: relative names are joined to the current
 * directory; `\` and `/` both separate (the result uses `/`); ".", ".." and
 * repeated separators are resolved lexically, symbolic links are not
 * followed; a trailing separator is kept (then *lpFilePart is NULL).  Drive
 * letters and UNC prefixes have no meaning (a name starting with a separator
 * is absolute); trailing dots and spaces are kept.  Returns the length
 * without the terminator, or the size needed with it when nBufferLength is
 * too small.  NULL: ERROR_INVALID_PARAMETER; "": ERROR_INVALID_NAME; over
 * 32767 characters: ERROR_FILENAME_EXCED_RANGE.  *lpFilePart (may be NULL)
 * is written on success only. */
FLTPORT_WINAPI DWORD GetFullPathNameA(LPCSTR lpFileName, DWORD nBufferLength, LPSTR lpBuffer,
				      LPSTR *lpFilePart);
FLTPORT_WINAPI DWORD GetFullPathNameW(LPCWSTR lpFileName, DWORD nBufferLength, LPWSTR lpBuffer,
				      LPWSTR *lpFilePart);
#ifdef UNICODE
#define GetFullPathName GetFullPathNameW
#else
#define GetFullPathName GetFullPathNameA
#endif

#endif /* FLTPORT_WIN32_H */
