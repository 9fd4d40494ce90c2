/*
 * fltport Windows layer: the subset of windows.h that a filter port client
 * needs, on Linux (link with libfltport-win: `pkg-config --libs fltport-win`).
 *
 * Handles are entries of a process-wide handle table: a closed or bogus
 * handle is detected (ERROR_INVALID_HANDLE), never dereferenced.  Every call
 * sets the thread's last error (GetLastError) when it fails.
 *
 * Named events and semaphores live in a namespace of this process only
 * (fltport_win32.h).  Not provided: alertable waits (the flag is accepted
 * and ignored), handle inheritance across exec (see docs/PORTING.md).
 */
#ifndef FLTPORT_WINDOWS_H
#define FLTPORT_WINDOWS_H

#include <pthread.h>

#include "excpt.h"
#include "fltport_crt.h"
#include "fltport_win32.h"
#include "fltport_wintypes.h"
#ifndef NOSERVICE
#include "winsvc.h"
#endif

/* A program may start at wmain (_tmain with _UNICODE) instead of main:
 * linked with -lfltport-wmain, whose main calls it (src/wmain/wmain.c).
 * C++ gives wmain C linkage through this declaration, as MSVC treats it
 * like main. */
#ifdef __cplusplus
extern "C" int wmain(int argc, wchar_t **argv);
#endif

typedef DWORD(WINAPI *PTHREAD_START_ROUTINE)(LPVOID lpThreadParameter);
typedef PTHREAD_START_ROUTINE LPTHREAD_START_ROUTINE;

#define CREATE_SUSPENDED 0x00000004u
#define STACK_SIZE_PARAM_IS_A_RESERVATION 0x00010000u
#define STILL_ACTIVE 259u

/* Last error: thread-local. */
FLTPORT_WINAPI DWORD GetLastError(void);
FLTPORT_WINAPI void SetLastError(DWORD dwErrCode);

/* CloseHandle works on every handle kind this layer hands out: ports,
 * events, semaphores, threads, I/O completion ports. */
FLTPORT_WINAPI BOOL CloseHandle(HANDLE hObject);

/* Events.  Named events: see fltport_win32.h (OpenEvent). */
FLTPORT_WINAPI HANDLE CreateEventA(LPSECURITY_ATTRIBUTES lpEventAttributes, BOOL bManualReset,
				   BOOL bInitialState, LPCSTR lpName);
FLTPORT_WINAPI HANDLE CreateEventW(LPSECURITY_ATTRIBUTES lpEventAttributes, BOOL bManualReset,
				   BOOL bInitialState, LPCWSTR lpName);
#ifdef UNICODE
#define CreateEvent CreateEventW
#else
#define CreateEvent CreateEventA
#endif
FLTPORT_WINAPI BOOL SetEvent(HANDLE hEvent);
FLTPORT_WINAPI BOOL ResetEvent(HANDLE hEvent);

/* Waits on events, semaphores and threads.  Return WAIT_OBJECT_0 (+ index),
 * WAIT_TIMEOUT or WAIT_FAILED.  With bWaitAll, an array naming one object
 * twice (the same handle, or two handles to one named object) fails:
 * WAIT_FAILED, ERROR_INVALID_PARAMETER. */
FLTPORT_WINAPI DWORD WaitForSingleObject(HANDLE hHandle, DWORD dwMilliseconds);
FLTPORT_WINAPI DWORD WaitForSingleObjectEx(HANDLE hHandle, DWORD dwMilliseconds, BOOL bAlertable);
FLTPORT_WINAPI DWORD WaitForMultipleObjects(DWORD nCount, const HANDLE *lpHandles, BOOL bWaitAll,
					    DWORD dwMilliseconds);
/* bAlertable is accepted: no APC is ever queued, so these never return
 * WAIT_IO_COMPLETION (SleepEx returns 0). */
FLTPORT_WINAPI DWORD WaitForMultipleObjectsEx(DWORD nCount, const HANDLE *lpHandles, BOOL bWaitAll,
					      DWORD dwMilliseconds, BOOL bAlertable);
FLTPORT_WINAPI DWORD SleepEx(DWORD dwMilliseconds, BOOL bAlertable);

/* Threads (pthreads underneath).  dwCreationFlags: 0, CREATE_SUSPENDED,
 * STACK_SIZE_PARAM_IS_A_RESERVATION.  *lpThreadId (may be NULL) gets the
 * thread's id, the number GetCurrentThreadId() returns in it (its Linux
 * thread id), before CreateThread returns.  A suspended thread starts when
 * ResumeThread brings its suspend count to 0; ResumeThread returns the
 * count before, (DWORD)-1 on failure.  SuspendThread is not provided (a
 * running thread cannot be stopped safely on Linux: docs/PORTING.md). */
FLTPORT_WINAPI HANDLE CreateThread(LPSECURITY_ATTRIBUTES lpThreadAttributes, SIZE_T dwStackSize,
				   LPTHREAD_START_ROUTINE lpStartAddress, LPVOID lpParameter,
				   DWORD dwCreationFlags, LPDWORD lpThreadId);
FLTPORT_WINAPI BOOL GetExitCodeThread(HANDLE hThread, LPDWORD lpExitCode);
FLTPORT_WINAPI DWORD ResumeThread(HANDLE hThread);
FLTPORT_WINAPI DWORD GetThreadId(HANDLE Thread);
FLTPORT_WINAPI DWORD GetCurrentThreadId(void);
FLTPORT_WINAPI DWORD GetCurrentProcessId(void);
FLTPORT_WINAPI void Sleep(DWORD dwMilliseconds);

/* I/O completion ports.  CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL,
 * 0, n) creates one; CreateIoCompletionPort(port, iocp, key, 0) associates
 * a filter port handle with it (one association per port handle). */
FLTPORT_WINAPI HANDLE CreateIoCompletionPort(HANDLE FileHandle, HANDLE ExistingCompletionPort,
					     ULONG_PTR CompletionKey,
					     DWORD NumberOfConcurrentThreads);
FLTPORT_WINAPI BOOL GetQueuedCompletionStatus(HANDLE CompletionPort,
					      LPDWORD lpNumberOfBytesTransferred,
					      PULONG_PTR lpCompletionKey,
					      LPOVERLAPPED *lpOverlapped, DWORD dwMilliseconds);
FLTPORT_WINAPI BOOL PostQueuedCompletionStatus(HANDLE CompletionPort,
					       DWORD dwNumberOfBytesTransferred,
					       ULONG_PTR dwCompletionKey,
					       LPOVERLAPPED lpOverlapped);

/* Overlapped I/O on filter port handles. */
FLTPORT_WINAPI BOOL GetOverlappedResult(HANDLE hFile, LPOVERLAPPED lpOverlapped,
					LPDWORD lpNumberOfBytesTransferred, BOOL bWait);
FLTPORT_WINAPI BOOL CancelIoEx(HANDLE hFile, LPOVERLAPPED lpOverlapped);
FLTPORT_WINAPI BOOL CancelIo(HANDLE hFile);

/* Critical sections (recursive, like Windows'). */
typedef struct _RTL_CRITICAL_SECTION {
	pthread_mutex_t fltport_mutex;
} CRITICAL_SECTION, *PCRITICAL_SECTION, *LPCRITICAL_SECTION;
FLTPORT_WINAPI void InitializeCriticalSection(LPCRITICAL_SECTION cs);
FLTPORT_WINAPI BOOL InitializeCriticalSectionAndSpinCount(LPCRITICAL_SECTION cs, DWORD spin);
FLTPORT_WINAPI void EnterCriticalSection(LPCRITICAL_SECTION cs);
FLTPORT_WINAPI BOOL TryEnterCriticalSection(LPCRITICAL_SECTION cs);
FLTPORT_WINAPI void LeaveCriticalSection(LPCRITICAL_SECTION cs);
FLTPORT_WINAPI void DeleteCriticalSection(LPCRITICAL_SECTION cs);

/* Slim reader/writer locks and condition variables: one pointer each,
 * statically initialised with SRWLOCK_INIT / CONDITION_VARIABLE_INIT (all
 * zero) or by Initialize*; nothing to delete.  Within one process, as on
 * Windows.  Not recursive; a shared owner cannot upgrade; new readers wait
 * while a writer does (so a thread that takes it shared twice can deadlock
 * against a waiting writer, as Windows warns).  SleepConditionVariableCS
 * needs the critical section entered exactly once (as Windows says: entered
 * twice, it stays held while the thread sleeps).  Sleep* release
 * the lock, wait for a Wake* (or a spurious wake-up, which Windows allows
 * too) and take it again: FALSE with ERROR_TIMEOUT when dwMilliseconds
 * passed first.  SleepConditionVariableSRW takes the lock shared again with
 * CONDITION_VARIABLE_LOCKMODE_SHARED, exclusive otherwise. */
typedef struct _RTL_SRWLOCK {
	PVOID Ptr;
} RTL_SRWLOCK, SRWLOCK, *PSRWLOCK;
#define RTL_SRWLOCK_INIT \
	{                \
		0        \
	}
#define SRWLOCK_INIT RTL_SRWLOCK_INIT
typedef struct _RTL_CONDITION_VARIABLE {
	PVOID Ptr;
} RTL_CONDITION_VARIABLE, CONDITION_VARIABLE, *PCONDITION_VARIABLE;
#define RTL_CONDITION_VARIABLE_INIT \
	{                           \
		0                   \
	}
#define CONDITION_VARIABLE_INIT RTL_CONDITION_VARIABLE_INIT
#define CONDITION_VARIABLE_LOCKMODE_SHARED 0x1u
FLTPORT_WINAPI void InitializeSRWLock(PSRWLOCK SRWLock);
FLTPORT_WINAPI void AcquireSRWLockExclusive(PSRWLOCK SRWLock);
FLTPORT_WINAPI void AcquireSRWLockShared(PSRWLOCK SRWLock);
FLTPORT_WINAPI BOOLEAN TryAcquireSRWLockExclusive(PSRWLOCK SRWLock);
FLTPORT_WINAPI BOOLEAN TryAcquireSRWLockShared(PSRWLOCK SRWLock);
FLTPORT_WINAPI void ReleaseSRWLockExclusive(PSRWLOCK SRWLock);
FLTPORT_WINAPI void ReleaseSRWLockShared(PSRWLOCK SRWLock);
FLTPORT_WINAPI void InitializeConditionVariable(PCONDITION_VARIABLE ConditionVariable);
FLTPORT_WINAPI BOOL SleepConditionVariableSRW(PCONDITION_VARIABLE ConditionVariable,
					      PSRWLOCK SRWLock, DWORD dwMilliseconds, ULONG Flags);
FLTPORT_WINAPI BOOL SleepConditionVariableCS(PCONDITION_VARIABLE ConditionVariable,
					     PCRITICAL_SECTION CriticalSection,
					     DWORD dwMilliseconds);
FLTPORT_WINAPI void WakeConditionVariable(PCONDITION_VARIABLE ConditionVariable);
FLTPORT_WINAPI void WakeAllConditionVariable(PCONDITION_VARIABLE ConditionVariable);

/* Interlocked operations (full barriers, as on Windows). */
static inline LONG InterlockedIncrement(LONG volatile *p)
{
	return __atomic_add_fetch(p, 1, __ATOMIC_SEQ_CST);
}
static inline LONG InterlockedDecrement(LONG volatile *p)
{
	return __atomic_sub_fetch(p, 1, __ATOMIC_SEQ_CST);
}
static inline LONG InterlockedExchange(LONG volatile *p, LONG v)
{
	return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
}
static inline LONG InterlockedExchangeAdd(LONG volatile *p, LONG v)
{
	return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
static inline LONG InterlockedCompareExchange(LONG volatile *p, LONG exchange, LONG comparand)
{
	__atomic_compare_exchange_n(p, &comparand, exchange, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	return comparand;
}
static inline LONGLONG InterlockedIncrement64(LONGLONG volatile *p)
{
	return __atomic_add_fetch(p, 1, __ATOMIC_SEQ_CST);
}
static inline LONGLONG InterlockedDecrement64(LONGLONG volatile *p)
{
	return __atomic_sub_fetch(p, 1, __ATOMIC_SEQ_CST);
}
static inline LONGLONG InterlockedExchangeAdd64(LONGLONG volatile *p, LONGLONG v)
{
	return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
static inline PVOID InterlockedExchangePointer(PVOID volatile *p, PVOID v)
{
	return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
}
static inline PVOID InterlockedCompareExchangePointer(PVOID volatile *p, PVOID exchange,
						      PVOID comparand)
{
	__atomic_compare_exchange_n(p, &comparand, exchange, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	return comparand;
}

/* The NTSTATUS → Win32 error mapping of ntdll (the subset in SPEC §4). */
FLTPORT_WINAPI ULONG RtlNtStatusToDosError(NTSTATUS Status);

#endif /* FLTPORT_WINDOWS_H */
