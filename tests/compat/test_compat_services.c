/*
 * What third-party port services (AV brokers, backup and monitoring
 * clients found on GitHub) use besides the port API and the minispy and
 * avscan subsets: sized types, winnt.h macros, clocks, pseudo-handles,
 * SRW locks and condition variables, files; each with Windows' values.
 */
#ifdef FP_PLAIN
#include "plain_criterion.h"
#else
#include <criterion/criterion.h>
#endif

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include <windows.h>
#include <ntstatus.h>
#include <fltuser.h>
#include <fltkernel.h>

#include "clients/service_wire.h"
#include "winport.h"

/* ---- types and macros ---- */

typedef struct _WITH_DUMMIES {
	union {
		ULONG Whole;
		struct {
			USHORT Low;
			USHORT High;
		} DUMMYSTRUCTNAME;
	} DUMMYUNIONNAME;
} WITH_DUMMIES;

C_ASSERT(sizeof(WITH_DUMMIES) == 4);

Test(win32_services, sized_types_and_winnt_macros, .timeout = 10)
{
	WITH_DUMMIES d;
	FILE_ID_128 id;
	unsigned char secret[32];
	int unused_local = 3;

	C_ASSERT(sizeof(INT8) == 1 && sizeof(UINT8) == 1);
	cr_assert_eq(sizeof(INT16), 2);
	cr_assert_eq(sizeof(UINT32), 4);
	cr_assert_eq(sizeof(ULONG32), 4);
	cr_assert_eq(sizeof(LONG32), 4);
	cr_assert_eq(sizeof(DWORD32), 4);
	cr_assert_eq(sizeof(INT64), 8);
	cr_assert_eq(sizeof(ULONG64), 8);
	cr_assert_eq(sizeof(DWORD64), 8);
	cr_assert((INT8)-1 < 0);
	cr_assert((UINT64)-1 > 0);
	cr_assert(_Generic((ULONG64)0, unsigned long long : 1, default : 0));
	cr_assert(_Generic((INT64)0, long long : 1, default : 0));

	d.Whole = 0x00020001u; /* the anonymous members are reachable */
	cr_assert_eq(d.Low, 1);
	cr_assert_eq(d.High, 2);
	cr_assert_eq(sizeof(id), 16);
	cr_assert_eq(sizeof(id.Identifier), 16);
	memset(secret, 0xA5, sizeof(secret));
	cr_assert_eq(SecureZeroMemory(secret, sizeof(secret)), secret);
	for (size_t i = 0; i < sizeof(secret); i++)
		cr_assert_eq(secret[i], 0);
	DBG_UNREFERENCED_LOCAL_VARIABLE(unused_local);

	cr_assert_eq(EVENTLOG_ERROR_TYPE, 1);
	cr_assert_eq(EVENTLOG_WARNING_TYPE, 2);
	cr_assert_eq(EVENTLOG_INFORMATION_TYPE, 4);
	cr_assert_eq(ERROR_DEVICE_NOT_CONNECTED, 1167);
	/* NTSTATUS_FROM_WIN32: winternl.h's rule. */
	cr_assert_eq(NTSTATUS_FROM_WIN32(ERROR_ACCESS_DENIED), (NTSTATUS)0xC0070005u);
	cr_assert_eq(NTSTATUS_FROM_WIN32(0), 0);
	cr_assert_eq(sizeof(NTSTATUS_FROM_WIN32(5)), 4);
	/* fltlib's HRESULT back to FltMgr's NTSTATUS. */
	cr_assert_eq(FILTER_FLT_NTSTATUS_FROM_HRESULT(ERROR_FLT_NO_WAITER_FOR_REPLY),
		     STATUS_FLT_NO_WAITER_FOR_REPLY);
	cr_assert_eq(FILTER_FLT_NTSTATUS_FROM_HRESULT(ERROR_FLT_FILTER_NOT_FOUND),
		     (NTSTATUS)0xC01C0013u);
}

/* ---- clocks and pseudo-handles ---- */

Test(win32_services, clocks, .timeout = 10)
{
	LARGE_INTEGER f, a, b;
	struct timespec ts;
	ULONGLONG t64;
	DWORD t32;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	t64 = GetTickCount64();
	t32 = GetTickCount();
	/* Milliseconds since boot: within a second of the kernel's count. */
	cr_assert_leq((ULONGLONG)ts.tv_sec * 1000 + (ULONGLONG)ts.tv_nsec / 1000000, t64);
	cr_assert_lt(t64, (ULONGLONG)ts.tv_sec * 1000 + 1000 + (ULONGLONG)ts.tv_nsec / 1000000);
	/* GetTickCount: the low 32 bits of the same count. */
	cr_assert_leq((DWORD)(t32 - (DWORD)t64), 1000u);
	cr_assert_leq((DWORD)(GetTickCount() - (DWORD)t64), 1000u);
	cr_assert(QueryPerformanceFrequency(&f));
	cr_assert_eq(f.QuadPart, 10000000);
	cr_assert(QueryPerformanceCounter(&a));
	Sleep(20);
	cr_assert(QueryPerformanceCounter(&b));
	cr_assert_geq(b.QuadPart - a.QuadPart, 200000, "20 ms are 200,000 ticks at 10 MHz");
	SetLastError(0);
	cr_assert_not(QueryPerformanceCounter(NULL));
	cr_assert_eq(GetLastError(), ERROR_NOACCESS);
}

Test(win32_services, pseudo_handles, .timeout = 10)
{
	cr_assert_eq(GetCurrentProcess(), (HANDLE)(LONG_PTR)-1);
	cr_assert_eq(GetCurrentThread(), (HANDLE)(LONG_PTR)-2);
	cr_assert(CloseHandle(GetCurrentProcess()), "closing a pseudo-handle does nothing");
	cr_assert(CloseHandle(GetCurrentThread()));
	SetLastError(0);
	cr_assert_not(CloseHandle((HANDLE)(LONG_PTR)-3));
	cr_assert_eq(GetLastError(), ERROR_INVALID_HANDLE);
}

/* ---- SRW locks and condition variables ---- */

static SRWLOCK counter_lock = SRWLOCK_INIT;
static unsigned long counter; /* under counter_lock */

static DWORD WINAPI count_up(LPVOID arg)
{
	(void)arg;
	for (int i = 0; i < 100000; i++) {
		AcquireSRWLockExclusive(&counter_lock);
		counter++;
		ReleaseSRWLockExclusive(&counter_lock);
		if (i % 1000 == 0) {
			AcquireSRWLockShared(&counter_lock);
			(void)counter;
			ReleaseSRWLockShared(&counter_lock);
		}
	}
	return 0;
}

Test(win32_services, srw_lock_excludes_writers, .timeout = 60)
{
	HANDLE t[4];

	for (int i = 0; i < 4; i++) {
		t[i] = CreateThread(NULL, 0, count_up, NULL, 0, NULL);
		cr_assert_not_null(t[i]);
	}
	cr_assert_eq(WaitForMultipleObjects(4, t, TRUE, 50000), WAIT_OBJECT_0);
	for (int i = 0; i < 4; i++)
		cr_assert(CloseHandle(t[i]));
	cr_assert_eq(counter, 400000);
	cr_assert_eq(counter_lock.Ptr, NULL, "free again, no sleeper left marked");
}

static SRWLOCK rw;
static atomic_int writer_in;

static DWORD WINAPI take_exclusive(LPVOID arg)
{
	(void)arg;
	AcquireSRWLockExclusive(&rw);
	atomic_store(&writer_in, 1);
	ReleaseSRWLockExclusive(&rw);
	return 0;
}

static bool writer_entered(void *arg)
{
	(void)arg;
	return atomic_load(&writer_in) != 0;
}

Test(win32_services, srw_lock_shared_and_exclusive, .timeout = 30)
{
	HANDLE w;

	InitializeSRWLock(&rw);
	cr_assert(TryAcquireSRWLockShared(&rw));
	cr_assert(TryAcquireSRWLockShared(&rw), "two shared owners");
	cr_assert_not(TryAcquireSRWLockExclusive(&rw));
	/* A writer waits for both readers. */
	w = CreateThread(NULL, 0, take_exclusive, NULL, 0, NULL);
	cr_assert_not_null(w);
	cr_assert_eq(WaitForSingleObject(w, 200), WAIT_TIMEOUT);
	cr_assert_eq(atomic_load(&writer_in), 0);
	ReleaseSRWLockShared(&rw);
	cr_assert_eq(WaitForSingleObject(w, 200), WAIT_TIMEOUT, "one reader is still in");
	ReleaseSRWLockShared(&rw);
	cr_assert(tu_wait_until(writer_entered, NULL, 20000), "the writer got in");
	cr_assert_eq(WaitForSingleObject(w, 20000), WAIT_OBJECT_0);
	cr_assert(CloseHandle(w));
	cr_assert(TryAcquireSRWLockExclusive(&rw));
	cr_assert_not(TryAcquireSRWLockShared(&rw), "no reader while a writer is in");
	cr_assert_not(TryAcquireSRWLockExclusive(&rw), "not recursive");
	ReleaseSRWLockExclusive(&rw);
	cr_assert(TryAcquireSRWLockShared(&rw));
	ReleaseSRWLockShared(&rw);
}

/* A bounded queue, SRW + two condition variables, one producer and three
 * consumers; then the same with a critical section. */
#define QCAP 8
#define QITEMS 20000

static struct {
	SRWLOCK lock;
	CRITICAL_SECTION cs;
	bool use_cs;
	CONDITION_VARIABLE not_empty, not_full;
	int items[QCAP];
	int head, n, produced_done;
	long sum;
	int taken;
} q = { SRWLOCK_INIT, .not_empty = CONDITION_VARIABLE_INIT, .not_full = CONDITION_VARIABLE_INIT };

static void q_lock(void)
{
	if (q.use_cs)
		EnterCriticalSection(&q.cs);
	else
		AcquireSRWLockExclusive(&q.lock);
}

static void q_unlock(void)
{
	if (q.use_cs)
		LeaveCriticalSection(&q.cs);
	else
		ReleaseSRWLockExclusive(&q.lock);
}

static void q_wait(PCONDITION_VARIABLE cv)
{
	if (q.use_cs)
		SleepConditionVariableCS(cv, &q.cs, INFINITE);
	else
		SleepConditionVariableSRW(cv, &q.lock, INFINITE, 0);
}

static DWORD WINAPI q_consumer(LPVOID arg)
{
	(void)arg;
	for (;;) {
		q_lock();
		while (q.n == 0 && !q.produced_done)
			q_wait(&q.not_empty);
		if (q.n == 0) {
			q_unlock();
			return 0;
		}
		q.sum += q.items[q.head];
		q.head = (q.head + 1) % QCAP;
		q.n--;
		q.taken++;
		q_unlock();
		WakeConditionVariable(&q.not_full);
	}
}

static void run_queue(bool use_cs)
{
	HANDLE c[3];

	q.use_cs = use_cs;
	q.head = q.n = q.produced_done = q.taken = 0;
	q.sum = 0;
	if (use_cs)
		InitializeCriticalSection(&q.cs);
	for (int i = 0; i < 3; i++) {
		c[i] = CreateThread(NULL, 0, q_consumer, NULL, 0, NULL);
		cr_assert_not_null(c[i]);
	}
	for (int v = 1; v <= QITEMS; v++) {
		q_lock();
		while (q.n == QCAP)
			q_wait(&q.not_full);
		q.items[(q.head + q.n) % QCAP] = v;
		q.n++;
		q_unlock();
		WakeConditionVariable(&q.not_empty);
	}
	q_lock();
	q.produced_done = 1;
	q_unlock();
	WakeAllConditionVariable(&q.not_empty);
	cr_assert_eq(WaitForMultipleObjects(3, c, TRUE, 50000), WAIT_OBJECT_0, "consumers stuck");
	for (int i = 0; i < 3; i++)
		cr_assert(CloseHandle(c[i]));
	cr_assert_eq(q.taken, QITEMS);
	cr_assert_eq(q.sum, (long)QITEMS * (QITEMS + 1) / 2, "every item once");
	if (use_cs)
		DeleteCriticalSection(&q.cs);
}

Test(win32_services, condition_variables_hand_over_every_item, .timeout = 60)
{
	run_queue(false);
	run_queue(true);
}

Test(win32_services, condition_variable_timeouts_and_errors, .timeout = 30)
{
	CONDITION_VARIABLE cv;
	SRWLOCK l = SRWLOCK_INIT;
	CRITICAL_SECTION cs;

	InitializeConditionVariable(&cv);
	AcquireSRWLockExclusive(&l);
	SetLastError(0);
	cr_assert_not(SleepConditionVariableSRW(&cv, &l, 50, 0));
	cr_assert_eq(GetLastError(), ERROR_TIMEOUT);
	cr_assert_not(TryAcquireSRWLockShared(&l), "held again on return");
	ReleaseSRWLockExclusive(&l);
	AcquireSRWLockShared(&l);
	cr_assert_not(SleepConditionVariableSRW(&cv, &l, 0, CONDITION_VARIABLE_LOCKMODE_SHARED));
	cr_assert_eq(GetLastError(), ERROR_TIMEOUT);
	cr_assert(TryAcquireSRWLockShared(&l), "held shared again: another reader may enter");
	ReleaseSRWLockShared(&l);
	SetLastError(0);
	cr_assert_not(SleepConditionVariableSRW(&cv, &l, 0, 0x2));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	ReleaseSRWLockShared(&l);
	cr_assert_eq(l.Ptr, NULL);

	InitializeCriticalSection(&cs);
	EnterCriticalSection(&cs);
	cr_assert_not(SleepConditionVariableCS(&cv, &cs, 30));
	cr_assert_eq(GetLastError(), ERROR_TIMEOUT);
	LeaveCriticalSection(&cs);
	DeleteCriticalSection(&cs);
}

/* Waiters that find the lock freed between their failed try and their
 * sleep must not sleep: eight threads hand one lock back and forth, each
 * yielding while it holds it so that the others pile up as sleepers (a
 * lost wake-up hangs this test). */
static SRWLOCK handoff = SRWLOCK_INIT;
static long handoffs; /* under handoff */

static DWORD WINAPI hand_over(LPVOID arg)
{
	bool shared = (intptr_t)arg % 2 == 1;

	for (int i = 0; i < 20000; i++) {
		if (shared && i % 2) {
			AcquireSRWLockShared(&handoff);
			sched_yield();
			ReleaseSRWLockShared(&handoff);
			continue;
		}
		AcquireSRWLockExclusive(&handoff);
		handoffs++;
		if (i % 4 == 0)
			sched_yield();
		ReleaseSRWLockExclusive(&handoff);
	}
	return 0;
}

Test(win32_services, srw_lock_hand_over_never_loses_a_waiter, .timeout = 120)
{
	HANDLE t[8];
	long want = 0;

	for (intptr_t i = 0; i < 8; i++) {
		t[i] = CreateThread(NULL, 0, hand_over, (LPVOID)i, 0, NULL);
		cr_assert_not_null(t[i]);
		want += i % 2 ? 10000 : 20000;
	}
	cr_assert_eq(WaitForMultipleObjects(8, t, TRUE, 100000), WAIT_OBJECT_0,
		     "a waiter was never woken");
	for (int i = 0; i < 8; i++)
		cr_assert(CloseHandle(t[i]));
	cr_assert_eq(handoffs, want);
	cr_assert_eq(handoff.Ptr, NULL);
}

/* ---- files ---- */

Test(win32_services, files_create_read_write_seek, .timeout = 30)
{
	char path[600], text[64];
	WCHAR wpath[600];
	DWORD n = 0, hi = 7;
	LARGE_INTEGER pos, size;
	OVERLAPPED ov;
	HANDLE h, r;
	size_t i;

	tu_private_dir();
	snprintf(path, sizeof(path), "%s/log.txt", tu_temp_dir("fltport-files"));
	for (i = 0; path[i]; i++)
		wpath[i] = (WCHAR)(unsigned char)path[i];
	wpath[i] = 0;

	/* OPEN_EXISTING of nothing; CREATE_NEW; CREATE_NEW again. */
	SetLastError(0);
	cr_assert_eq(CreateFileA(path, GENERIC_READ, 0, NULL, OPEN_EXISTING, 0, NULL),
		     INVALID_HANDLE_VALUE);
	cr_assert_eq(GetLastError(), ERROR_FILE_NOT_FOUND);
	h = CreateFileW(wpath, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ, NULL, CREATE_NEW,
			FILE_ATTRIBUTE_NORMAL, NULL);
	cr_assert_neq(h, INVALID_HANDLE_VALUE, "CreateFileW: error %u", GetLastError());
	cr_assert_eq(CreateFileA(path, GENERIC_WRITE, 0, NULL, CREATE_NEW, 0, NULL),
		     INVALID_HANDLE_VALUE);
	cr_assert_eq(GetLastError(), ERROR_FILE_EXISTS);

	cr_assert(WriteFile(h, "hello, ", 7, &n, NULL));
	cr_assert_eq(n, 7);
	cr_assert(WriteFile(h, "world", 5, &n, NULL));
	cr_assert(GetFileSizeEx(h, &size));
	cr_assert_eq(size.QuadPart, 12);
	cr_assert_eq(GetFileSize(h, &hi), 12);
	cr_assert_eq(hi, 0);
	/* Back to the start, read it all; at the end a read gives 0 bytes. */
	pos.QuadPart = 0;
	cr_assert(SetFilePointerEx(h, pos, NULL, FILE_BEGIN));
	memset(text, 0, sizeof(text));
	cr_assert(ReadFile(h, text, sizeof(text) - 1, &n, NULL));
	cr_assert_eq(n, 12);
	cr_assert_str_eq(text, "hello, world");
	cr_assert(ReadFile(h, text, 10, &n, NULL));
	cr_assert_eq(n, 0, "end of file: TRUE with 0 bytes");
	/* Positioned I/O through an OVERLAPPED on a synchronous handle. */
	memset(&ov, 0, sizeof(ov));
	ov.Offset = 7;
	cr_assert(WriteFile(h, "WORLD", 5, NULL, &ov));
	cr_assert_eq(ov.InternalHigh, 5);
	memset(&ov, 0, sizeof(ov));
	ov.Offset = 5;
	memset(text, 0, sizeof(text));
	cr_assert(ReadFile(h, text, 4, &n, &ov));
	cr_assert_str_eq(text, ", WO");
	cr_assert_eq(SetFilePointer(h, 0, NULL, FILE_CURRENT), 9, "the pointer moved past it");
	memset(&ov, 0, sizeof(ov));
	ov.Offset = 100;
	SetLastError(0);
	cr_assert_not(ReadFile(h, text, 4, &n, &ov), "past the end with an OVERLAPPED");
	cr_assert_eq(GetLastError(), ERROR_HANDLE_EOF);
	ov.Offset = ov.OffsetHigh = 0xFFFFFFFFu; /* append */
	cr_assert(WriteFile(h, "!", 1, &n, &ov));
	cr_assert(GetFileSizeEx(h, &size));
	cr_assert_eq(size.QuadPart, 13);
	/* Seeks. */
	pos.QuadPart = -2;
	cr_assert(SetFilePointerEx(h, pos, &size, FILE_END));
	cr_assert_eq(size.QuadPart, 11);
	pos.QuadPart = -100;
	SetLastError(0);
	cr_assert_not(SetFilePointerEx(h, pos, NULL, FILE_BEGIN));
	cr_assert_eq(GetLastError(), ERROR_NEGATIVE_SEEK);
	cr_assert_not(SetFilePointerEx(h, pos, NULL, 7));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	/* Cut it at 5. */
	cr_assert_eq(SetFilePointer(h, 5, NULL, FILE_BEGIN), 5);
	cr_assert(SetEndOfFile(h));
	cr_assert_eq(GetFileSize(h, NULL), 5);
	cr_assert(FlushFileBuffers(h));
	cr_assert(CloseHandle(h));

	/* OPEN_ALWAYS and CREATE_ALWAYS say whether it was there. */
	r = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_ALWAYS, 0, NULL);
	cr_assert_neq(r, INVALID_HANDLE_VALUE);
	cr_assert_eq(GetLastError(), ERROR_ALREADY_EXISTS);
	SetLastError(0);
	cr_assert_not(WriteFile(r, "x", 1, &n, NULL), "opened for reading only");
	cr_assert_eq(GetLastError(), ERROR_ACCESS_DENIED);
	cr_assert(CloseHandle(r));
	h = CreateFileA(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
	cr_assert_neq(h, INVALID_HANDLE_VALUE);
	cr_assert_eq(GetLastError(), ERROR_ALREADY_EXISTS);
	cr_assert_eq(GetFileSize(h, NULL), 0, "CREATE_ALWAYS truncates");
	SetLastError(0);
	cr_assert_not(ReadFile(h, text, 1, &n, NULL));
	cr_assert_eq(GetLastError(), ERROR_ACCESS_DENIED);
	cr_assert(CloseHandle(h));
	cr_assert(DeleteFileA(path));
	SetLastError(0);
	cr_assert_not(DeleteFileW(wpath));
	cr_assert_eq(GetLastError(), ERROR_FILE_NOT_FOUND);
	h = CreateFileA(path, GENERIC_WRITE, 0, NULL, OPEN_ALWAYS, 0, NULL);
	cr_assert_neq(h, INVALID_HANDLE_VALUE);
	cr_assert_eq(GetLastError(), ERROR_SUCCESS, "created: not there before");
	cr_assert(CloseHandle(h));
}

Test(win32_services, file_errors_and_flags, .timeout = 30)
{
	const char *dir;
	char path[600], missing[700];
	HANDLE h;
	DWORD n;

	tu_private_dir();
	dir = tu_temp_dir("fltport-files");
	snprintf(path, sizeof(path), "%s\\back\\slash.txt", dir);
	snprintf(missing, sizeof(missing), "%s/no-such-dir/x.txt", dir);
	SetLastError(0);
	cr_assert_eq(CreateFileA(missing, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL),
		     INVALID_HANDLE_VALUE);
	cr_assert_eq(GetLastError(), ERROR_PATH_NOT_FOUND);
	cr_assert_eq(CreateFileA("", GENERIC_READ, 0, NULL, OPEN_EXISTING, 0, NULL),
		     INVALID_HANDLE_VALUE);
	cr_assert_eq(GetLastError(), ERROR_PATH_NOT_FOUND);
	cr_assert_eq(CreateFileA(dir, GENERIC_READ, 0, NULL, 9, 0, NULL), INVALID_HANDLE_VALUE);
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER, "no such disposition");
	cr_assert_eq(CreateFileA(dir, GENERIC_READ, 0, NULL, TRUNCATE_EXISTING, 0, NULL),
		     INVALID_HANDLE_VALUE);
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER, "TRUNCATE_EXISTING needs write");
	cr_assert_eq(CreateFileA(dir, GENERIC_READ, 0, NULL, OPEN_EXISTING, 0, NULL),
		     INVALID_HANDLE_VALUE);
	cr_assert_eq(GetLastError(), ERROR_ACCESS_DENIED, "a directory without BACKUP_SEMANTICS");
	h = CreateFileA(dir, GENERIC_READ, 0, NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS,
			NULL);
	cr_assert_neq(h, INVALID_HANDLE_VALUE);
	cr_assert(CloseHandle(h));
	cr_assert_eq(CreateFileA(missing, GENERIC_READ, 0, NULL, OPEN_ALWAYS, FILE_FLAG_OVERLAPPED,
				 NULL),
		     INVALID_HANDLE_VALUE);
	cr_assert_eq(GetLastError(), ERROR_NOT_SUPPORTED);
	SetLastError(0);
	cr_assert_not(DeleteFileA(dir));
	cr_assert_eq(GetLastError(), ERROR_ACCESS_DENIED, "a directory is not deleted");

	/* '\\' is a separator: "<dir>\\back\\slash.txt" is <dir>/back/slash.txt. */
	{
		char sub[600];

		snprintf(sub, sizeof(sub), "%s/back", dir);
		cr_assert_eq(mkdir(sub, 0700), 0);
	}
	h = CreateFileA(path, GENERIC_WRITE, 0, NULL, CREATE_NEW, FILE_FLAG_DELETE_ON_CLOSE, NULL);
	cr_assert_neq(h, INVALID_HANDLE_VALUE, "error %u", GetLastError());
	cr_assert(WriteFile(h, "x", 1, &n, NULL));
	{
		char real[700];

		snprintf(real, sizeof(real), "%s/back/slash.txt", dir);
		cr_assert_eq(access(real, F_OK), 0);
		cr_assert(CloseHandle(h));
		cr_assert_neq(access(real, F_OK), 0, "FILE_FLAG_DELETE_ON_CLOSE");
	}
	/* Append-only access. */
	snprintf(path, sizeof(path), "%s/append.log", dir);
	h = CreateFileA(path, GENERIC_WRITE, 0, NULL, CREATE_NEW, 0, NULL);
	cr_assert(WriteFile(h, "abc", 3, &n, NULL));
	cr_assert(CloseHandle(h));
	h = CreateFileA(path, FILE_APPEND_DATA, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
			OPEN_EXISTING, 0, NULL);
	cr_assert_neq(h, INVALID_HANDLE_VALUE);
	cr_assert_eq(SetFilePointer(h, 0, NULL, FILE_BEGIN), 0);
	cr_assert(WriteFile(h, "def", 3, &n, NULL));
	cr_assert_eq(GetFileSize(h, NULL), 6, "appended, not written over");
	cr_assert(CloseHandle(h));
	SetLastError(0);
	cr_assert_not(ReadFile((HANDLE)(LONG_PTR)0x7777, path, 1, &n, NULL));
	cr_assert_eq(GetLastError(), ERROR_INVALID_HANDLE);
}

Test(win32_services, file_sections_map_the_file, .timeout = 30)
{
	char path[600];
	unsigned char *v, *w;
	HANDLE h, s, ro;
	DWORD n;
	char text[16] = { 0 };

	tu_private_dir();
	snprintf(path, sizeof(path), "%s/mapped.bin", tu_temp_dir("fltport-files"));
	h = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, CREATE_NEW, 0, NULL);
	cr_assert_neq(h, INVALID_HANDLE_VALUE);
	SetLastError(0);
	cr_assert_null(CreateFileMappingA(h, NULL, PAGE_READONLY, 0, 0, NULL));
	cr_assert_eq(GetLastError(), ERROR_FILE_INVALID, "an empty file, size 0");
	cr_assert(WriteFile(h, "0123456789", 10, &n, NULL));
	s = CreateFileMappingA(h, NULL, PAGE_READONLY, 0, 0, NULL);
	cr_assert_not_null(s, "error %u", GetLastError());
	v = MapViewOfFile(s, FILE_MAP_READ, 0, 0, 0);
	cr_assert_not_null(v);
	cr_assert_eq(memcmp(v, "0123456789", 10), 0);
	cr_assert_null(MapViewOfFile(s, FILE_MAP_WRITE, 0, 0, 0));
	cr_assert_eq(GetLastError(), ERROR_ACCESS_DENIED);
	cr_assert_null(CreateFileMappingA(h, NULL, PAGE_READONLY, 0, 4096, NULL));
	cr_assert_eq(GetLastError(), ERROR_NOT_ENOUGH_MEMORY, "larger than a file it may not grow");
	/* A writable section grows the file; writes through a view reach it. */
	ro = CreateFileMappingA(h, NULL, PAGE_READWRITE, 0, 8192, NULL);
	cr_assert_not_null(ro);
	cr_assert_eq(GetFileSize(h, NULL), 8192);
	w = MapViewOfFile(ro, FILE_MAP_ALL_ACCESS, 0, 0, 0);
	cr_assert_not_null(w);
	memcpy(w + 2, "AB", 2);
	cr_assert_eq(v[2], 'A', "both views map the file's pages");
	cr_assert(CloseHandle(h));
	cr_assert(CloseHandle(s));
	cr_assert(CloseHandle(ro));
	cr_assert_eq(w[3], 'B', "the views outlive every handle");
	cr_assert(UnmapViewOfFile(w));
	cr_assert(UnmapViewOfFile(v));
	h = CreateFileA(path, GENERIC_READ, 0, NULL, OPEN_EXISTING, 0, NULL);
	cr_assert(ReadFile(h, text, 5, &n, NULL));
	cr_assert_str_eq(text, "01AB4");
	SetLastError(0);
	cr_assert_null(CreateFileMappingA(h, NULL, PAGE_READWRITE, 0, 0, NULL));
	cr_assert_eq(GetLastError(), ERROR_ACCESS_DENIED, "a read-only handle");
	cr_assert(CloseHandle(h));
}

/* Readers that overlap without a gap do not keep a waiting writer out:
 * new readers wait while a writer does. */
static SRWLOCK busy = SRWLOCK_INIT;
static atomic_int stop_readers;

static DWORD WINAPI overlapping_reader(LPVOID arg)
{
	(void)arg;
	while (!atomic_load(&stop_readers)) {
		AcquireSRWLockShared(&busy);
		usleep(200);
		ReleaseSRWLockShared(&busy);
	}
	return 0;
}

static DWORD WINAPI one_write(LPVOID arg)
{
	(void)arg;
	AcquireSRWLockExclusive(&busy);
	ReleaseSRWLockExclusive(&busy);
	return 0;
}

Test(win32_services, srw_lock_readers_do_not_starve_a_writer, .timeout = 60)
{
	HANDLE r[3], w;
	DWORD got;

	for (int i = 0; i < 3; i++) {
		r[i] = CreateThread(NULL, 0, overlapping_reader, NULL, 0, NULL);
		cr_assert_not_null(r[i]);
	}
	Sleep(50);
	w = CreateThread(NULL, 0, one_write, NULL, 0, NULL);
	cr_assert_not_null(w);
	got = WaitForSingleObject(w, 20000);
	atomic_store(&stop_readers, 1);
	cr_assert_eq(WaitForMultipleObjects(3, r, TRUE, 20000), WAIT_OBJECT_0);
	cr_assert_eq(got, WAIT_OBJECT_0, "the writer waited 20 s behind readers");
	cr_assert_eq(WaitForSingleObject(w, 20000), WAIT_OBJECT_0);
	cr_assert(CloseHandle(w));
	for (int i = 0; i < 3; i++)
		cr_assert(CloseHandle(r[i]));
	cr_assert_eq(busy.Ptr, NULL);
}

/* Signals end a futex wait; a timed sleep still times out at its time. */
static void on_usr1(int sig)
{
	(void)sig;
}

struct pester {
	pthread_t target;
	atomic_int stop;
};

static void *pester_thread(void *arg)
{
	struct pester *p = arg;

	while (!atomic_load(&p->stop)) {
		pthread_kill(p->target, SIGUSR1);
		usleep(5000);
	}
	return NULL;
}

Test(win32_services, condition_variable_timeout_survives_signals, .timeout = 60)
{
	struct sigaction sa = { .sa_handler = on_usr1 }; /* no SA_RESTART */
	CONDITION_VARIABLE cv = CONDITION_VARIABLE_INIT;
	SRWLOCK l = SRWLOCK_INIT;
	struct pester p = { .target = pthread_self() };
	pthread_t th;
	BOOL ok = TRUE;
	int tries = 0;

	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	cr_assert_eq(pthread_create(&th, NULL, pester_thread, &p), 0);
	AcquireSRWLockExclusive(&l);
	/* No one wakes it: every return before the time is a signal's. */
	while (ok && tries++ < 50)
		ok = SleepConditionVariableSRW(&cv, &l, 300, 0);
	ReleaseSRWLockExclusive(&l);
	atomic_store(&p.stop, 1);
	pthread_join(th, NULL);
	cr_assert_not(ok, "300 ms sleeps returned early %d times in a row", tries);
	cr_assert_eq(GetLastError(), ERROR_TIMEOUT);
	cr_assert_eq(tries, 1, "the first sleep timed out");
}

/* ---- the secure CRT ---- */

static atomic_int invalid_calls;

static void count_invalid(const wchar_t *e, const wchar_t *f, const wchar_t *file, unsigned line,
			  uintptr_t r)
{
	(void)e;
	(void)f;
	(void)file;
	(void)line;
	(void)r;
	atomic_fetch_add(&invalid_calls, 1);
}

Test(win32_services, secure_string_functions, .timeout = 10)
{
	char s[8];
	wchar_t w[8];
	unsigned char m[4] = { 1, 2, 3, 4 };

	cr_assert_null(_set_invalid_parameter_handler(count_invalid));
	cr_assert_eq(_get_invalid_parameter_handler(), count_invalid);
	cr_assert_eq(strcpy_s(s, sizeof(s), "abc"), 0);
	cr_assert_str_eq(s, "abc");
	cr_assert_eq(strcat_s(s, sizeof(s), "defg"), 0);
	cr_assert_str_eq(s, "abcdefg");
	cr_assert_eq(strcat_s(s, sizeof(s), "h"), ERANGE);
	cr_assert_eq(s[0], 0, "the destination is emptied");
	cr_assert_eq(atomic_load(&invalid_calls), 1);
	cr_assert_eq(strcpy_s(s, sizeof(s), "12345678"), ERANGE, "no room for the terminator");
	cr_assert_eq(strcpy_s(s, sizeof(s), NULL), EINVAL);
	cr_assert_eq(strcpy_s(NULL, 4, "a"), EINVAL);
	cr_assert_eq(atomic_load(&invalid_calls), 4);
	cr_assert_eq(strncpy_s(s, sizeof(s), "0123456789", _TRUNCATE), STRUNCATE);
	cr_assert_str_eq(s, "0123456");
	cr_assert_eq(strncpy_s(s, sizeof(s), "0123456789", 3), 0);
	cr_assert_str_eq(s, "012");
	cr_assert_eq(strncat_s(s, sizeof(s), "abcdef", 2), 0);
	cr_assert_str_eq(s, "012ab");
	cr_assert_eq(strncat_s(s, sizeof(s), "XYZ", _TRUNCATE), STRUNCATE);
	cr_assert_str_eq(s, "012abXY");
	cr_assert_eq(strncpy_s(NULL, 0, NULL, 0), 0, "nothing to do");
	strcpy(s, "1234567");
	cr_assert_eq(strncat_s(s, sizeof(s), "ab", 1), ERANGE, "full already");
	cr_assert_eq(s[0], 0);
	cr_assert_eq(wcscpy_s(w, _countof(w), L"w\u00e9"), 0);
	cr_assert_eq(wcscat_s(w, _countof(w), L"xyz"), 0);
	cr_assert(wcscmp(w, L"w\u00e9xyz") == 0);
	cr_assert_eq(wcscat_s(w, _countof(w), L"123"), ERANGE);
	cr_assert_eq(w[0], 0);
	cr_assert_eq(wcsncpy_s(w, _countof(w), L"0123456789", _TRUNCATE), STRUNCATE);
	cr_assert(wcscmp(w, L"0123456") == 0);
	cr_assert_eq(memcpy_s(m, sizeof(m), "ab", 2), 0);
	cr_assert_eq(m[0], 'a');
	cr_assert_eq(memcpy_s(m, sizeof(m), "abcdef", 6), ERANGE);
	cr_assert_eq(m[0] | m[1] | m[2] | m[3], 0, "memcpy_s clears the destination");
	cr_assert_eq(memmove_s(m, sizeof(m), "xyz", 3), 0);
	cr_assert_eq(memmove_s(m, sizeof(m), "12345", 5), ERANGE);
	cr_assert_eq(m[0], 'x', "memmove_s leaves it");
	cr_assert_eq(_set_invalid_parameter_handler(NULL), count_invalid);
}

Test(win32_services, msvc_printf_family, .timeout = 10)
{
	char s[16];
	wchar_t w[16];

	_set_invalid_parameter_handler(count_invalid);
	atomic_store(&invalid_calls, 0);
	cr_assert_eq(sprintf_s(s, sizeof(s), "%d-%s-%I64u", 7, "ab", (ULONGLONG)9), 6);
	cr_assert_str_eq(s, "7-ab-9");
	cr_assert_eq(sprintf_s(s, sizeof(s), "%s", "0123456789abcdefgh"), -1);
	cr_assert_eq(s[0], 0);
	cr_assert_eq(atomic_load(&invalid_calls), 1);
	cr_assert_eq(_snprintf_s(s, sizeof(s), _TRUNCATE, "%s", "0123456789abcdefgh"), -1);
	cr_assert_str_eq(s, "0123456789abcde");
	cr_assert_eq(_snprintf_s(s, sizeof(s), 4, "%s", "0123456789"), -1);
	cr_assert_str_eq(s, "0123", "cut at count, terminated");
	cr_assert_eq(atomic_load(&invalid_calls), 1);
	/* Wide: %s is a wide string, %S and %hs narrow ones (MSVC). */
	cr_assert_eq(swprintf_s(w, _countof(w), L"%s|%S|%hs", L"wi", "na", "hs"), 8);
	cr_assert(wcscmp(w, L"wi|na|hs") == 0);
	cr_assert_eq(_snwprintf_s(w, _countof(w), _TRUNCATE, L"%d", 123456789), 9);
	/* _snprintf: no terminator when the output is exactly count long. */
	memset(s, 'Z', sizeof(s));
	cr_assert_eq(_snprintf(s, 3, "%d", 123), 3);
	cr_assert_eq(s[3], 'Z');
	memset(s, 'Z', sizeof(s));
	cr_assert_eq(_snprintf(s, 3, "%d", 45678), -1);
	cr_assert_eq(memcmp(s, "456Z", 4), 0, "cut at count, no terminator");
	cr_assert_eq(_snprintf(s, 8, "%d", 42), 2);
	cr_assert_str_eq(s, "42");
	cr_assert_eq(_snprintf(NULL, 0, "%d", 12345), 5, "(NULL, 0) measures");
	wmemset(w, L'Z', _countof(w));
	cr_assert_eq(_snwprintf(w, 2, L"%s", L"abc"), -1);
	cr_assert(w[0] == L'a' && w[1] == L'b' && w[2] == L'Z');
	/* Counts far beyond the output (SIZE_MAX / 4 + 1 wide units would
	 * overflow a scratch size): the output is written whole. */
	cr_assert_eq(_snwprintf(w, SIZE_MAX / 4 + 1, L"%d", 12345), 5);
	cr_assert(wcscmp(w, L"12345") == 0);
	cr_assert_eq(_snprintf(s, SIZE_MAX, "%s", "hello"), 5);
	cr_assert_str_eq(s, "hello");
	/* count >= size and too long: the handler, "" and -1. */
	atomic_store(&invalid_calls, 0);
	strcpy(s, "keep");
	cr_assert_eq(_snprintf_s(s, 4, 10, "%s", "0123456789"), -1);
	cr_assert_eq(s[0], 0);
	cr_assert_eq(atomic_load(&invalid_calls), 1);
	cr_assert_eq(_snprintf_s(NULL, 0, 0, "%d", 1), 0, "nothing to do");
	cr_assert_eq(atomic_load(&invalid_calls), 1);
	cr_assert_eq(sprintf_s(NULL, 0, "%d", 1), -1);
	cr_assert_eq(atomic_load(&invalid_calls), 2);
	strcpy(s, "keep");
	cr_assert_eq(sprintf_s(s, sizeof(s), NULL), -1);
	cr_assert_str_eq(s, "keep", "a NULL format leaves the buffer");
	_set_invalid_parameter_handler(NULL);
}

Test(win32_services, crt_comparisons_tokens_files, .timeout = 10)
{
	char line[] = "a,b;;c", *ctx = NULL, *tok, path[600], got[8] = { 0 };
	wchar_t wline[] = L"x y", *wctx = NULL, wpath[600];
	FILE *f = NULL;
	size_t i;

	cr_assert_eq(_stricmp("HeLLo", "hello"), 0);
	cr_assert_lt(_stricmp("abc", "ABD"), 0);
	cr_assert_eq(_strnicmp("ABCx", "abcy", 3), 0);
	cr_assert_eq(_wcsicmp(L"WiDe", L"wIdE"), 0);
	cr_assert_gt(_wcsnicmp(L"b", L"A", 1), 0);
	tok = strtok_s(line, ",;", &ctx);
	cr_assert_str_eq(tok, "a");
	cr_assert_str_eq(strtok_s(NULL, ",;", &ctx), "b");
	cr_assert_str_eq(strtok_s(NULL, ",;", &ctx), "c");
	cr_assert_null(strtok_s(NULL, ",;", &ctx));
	cr_assert(wcscmp(wcstok_s(wline, L" ", &wctx), L"x") == 0);
	cr_assert(wcscmp(wcstok_s(NULL, L" ", &wctx), L"y") == 0);
	tok = _strdup("dup");
	cr_assert_str_eq(tok, "dup");
	free(tok);

	tu_private_dir();
	snprintf(path, sizeof(path), "%s/f.txt", tu_temp_dir("fltport-crt"));
	cr_assert_eq(fopen_s(&f, path, "w"), 0);
	cr_assert_not_null(f);
	fputs("crt", f);
	fclose(f);
	for (i = 0; path[i]; i++)
		wpath[i] = (wchar_t)(unsigned char)path[i];
	wpath[i] = 0;
	cr_assert_eq(_wfopen_s(&f, wpath, L"r"), 0);
	cr_assert_not_null(fgets(got, sizeof(got), f));
	cr_assert_str_eq(got, "crt");
	fclose(f);
	f = (FILE *)1;
	cr_assert_eq(fopen_s(&f, "/nonexistent-dir/x", "r"), ENOENT);
	cr_assert_null(f);
	_set_invalid_parameter_handler(count_invalid);
	f = (FILE *)1;
	cr_assert_eq(fopen_s(&f, NULL, "r"), EINVAL);
	cr_assert_null(f, "*pFile cleared on every failure");
	cr_assert_eq(fopen_s(&f, "", "r"), EINVAL);
	cr_assert_eq(_stricmp(NULL, "a"), _NLSCMPERROR);
	cr_assert_eq(_wcsicmp(L"a", NULL), _NLSCMPERROR);
	_set_invalid_parameter_handler(NULL);
}

/* Without a handler, a parameter error ends the process, as MSVC's does. */
Test(win32_services, invalid_parameter_ends_the_process_by_default, .timeout = 30)
{
	int status;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char small[2];

		freopen("/dev/null", "w", stderr);
		strcpy_s(small, sizeof(small), "too long");
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status 0x%x", status);
}

/* ---- files: review cases ---- */

static HANDLE append_h;

static DWORD WINAPI append_lines(LPVOID arg)
{
	char line[11];

	snprintf(line, sizeof(line), "thread %d\n", (int)(intptr_t)arg);
	for (int i = 0; i < 2000; i++) {
		OVERLAPPED ov = { .Offset = 0xFFFFFFFFu, .OffsetHigh = 0xFFFFFFFFu };

		if (!WriteFile(append_h, line, 9, NULL, &ov))
			return 1;
	}
	return 0;
}

Test(win32_services, file_appends_and_seeks_are_atomic, .timeout = 60)
{
	char path[600];
	HANDLE t[2];
	LONG hi;
	DWORD n = 77;

	tu_private_dir();
	snprintf(path, sizeof(path), "%s/append.bin", tu_temp_dir("fltport-files"));
	append_h = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, CREATE_NEW, 0, NULL);
	cr_assert_neq(append_h, INVALID_HANDLE_VALUE);
	for (int i = 0; i < 2; i++)
		t[i] = CreateThread(NULL, 0, append_lines, (LPVOID)(intptr_t)i, 0, NULL);
	cr_assert_eq(WaitForMultipleObjects(2, t, TRUE, 50000), WAIT_OBJECT_0);
	for (int i = 0; i < 2; i++)
		cr_assert(CloseHandle(t[i]));
	cr_assert_eq(GetFileSize(append_h, NULL), 2 * 2000 * 9, "no append lost");

	/* SetFilePointer without a high part: a result over 32 bits fails
	 * and does not move; 0xFFFFFFFF itself is a position. */
	cr_assert_eq(SetFilePointer(append_h, 100, NULL, FILE_BEGIN), 100);
	hi = 1;
	cr_assert_eq(SetFilePointer(append_h, 4, &hi, FILE_BEGIN), 4);
	cr_assert_eq(hi, 1);
	SetLastError(0);
	cr_assert_eq(SetFilePointer(append_h, 8, NULL, FILE_CURRENT), INVALID_SET_FILE_POINTER);
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	hi = 0;
	cr_assert_eq(SetFilePointer(append_h, 0, &hi, FILE_CURRENT), 4, "not moved");
	cr_assert_eq(hi, 1);
	cr_assert_eq(SetFilePointer(append_h, (LONG)0xFFFFFFFF, &hi, FILE_BEGIN), 0xFFFFFFFFu);
	hi = 0;
	cr_assert_eq(SetFilePointer(append_h, 0, &hi, FILE_BEGIN), 0);
	cr_assert_eq(SetFilePointer(append_h, -1, NULL, FILE_CURRENT), INVALID_SET_FILE_POINTER);
	cr_assert_eq(GetLastError(), ERROR_NEGATIVE_SEEK);
	/* A count is zeroed before anything is checked. */
	cr_assert_not(ReadFile((HANDLE)(LONG_PTR)0x7777, path, 1, &n, NULL));
	cr_assert_eq(n, 0);
	{
		OVERLAPPED ov = { .Offset = 0, .OffsetHigh = 0x80000000u };

		SetLastError(0);
		cr_assert_not(WriteFile(append_h, "x", 1, NULL, &ov), "an offset no file has");
		cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	}
	cr_assert(CloseHandle(append_h));
}

Test(win32_services, file_review_cases, .timeout = 30)
{
	char path[600], cwd[600];
	const char *dir;
	HANDLE h, s;
	unsigned char *v;
	DWORD n;

	tu_private_dir();
	dir = tu_temp_dir("fltport-files");
	snprintf(path, sizeof(path), "%s/m.bin", dir);
	/* Shrinking a mapped file: ERROR_USER_MAPPED_FILE (no SIGBUS). */
	h = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, CREATE_NEW, 0, NULL);
	cr_assert_neq(h, INVALID_HANDLE_VALUE);
	s = CreateFileMappingA(h, NULL, PAGE_READWRITE, 0, 8192, NULL);
	cr_assert_not_null(s);
	v = MapViewOfFile(s, FILE_MAP_WRITE, 0, 0, 0);
	cr_assert_not_null(v);
	v[8000] = 7;
	cr_assert_eq(SetFilePointer(h, 10, NULL, FILE_BEGIN), 10);
	SetLastError(0);
	cr_assert_not(SetEndOfFile(h));
	cr_assert_eq(GetLastError(), ERROR_USER_MAPPED_FILE);
	cr_assert_eq(v[8000], 7);
	cr_assert(UnmapViewOfFile(v));
	cr_assert(CloseHandle(s));
	cr_assert(SetEndOfFile(h), "no view: it may shrink");
	cr_assert_eq(GetFileSize(h, NULL), 10);
	cr_assert(CloseHandle(h));
	/* Append-only access: no writable section, no TRUNCATE_EXISTING. */
	h = CreateFileA(path, FILE_READ_DATA | FILE_APPEND_DATA, 0, NULL, OPEN_EXISTING, 0, NULL);
	cr_assert_neq(h, INVALID_HANDLE_VALUE);
	cr_assert_null(CreateFileMappingA(h, NULL, PAGE_READWRITE, 0, 0, NULL));
	cr_assert_eq(GetLastError(), ERROR_ACCESS_DENIED);
	cr_assert_not(SetEndOfFile(h));
	cr_assert_eq(GetLastError(), ERROR_ACCESS_DENIED);
	cr_assert(WriteFile(h, "tail", 4, &n, NULL));
	cr_assert_eq(GetFileSize(h, NULL), 14);
	cr_assert(CloseHandle(h));
	cr_assert_eq(CreateFileA(path, FILE_APPEND_DATA, 0, NULL, TRUNCATE_EXISTING, 0, NULL),
		     INVALID_HANDLE_VALUE);
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	/* A directory is never created over, even with BACKUP_SEMANTICS. */
	cr_assert_eq(CreateFileA(dir, GENERIC_READ, 0, NULL, CREATE_ALWAYS,
				 FILE_FLAG_BACKUP_SEMANTICS, NULL),
		     INVALID_HANDLE_VALUE);
	/* Delete-on-close of a relative name survives a chdir. */
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	cr_assert_eq(chdir(dir), 0);
	h = CreateFileA("rel.tmp", GENERIC_WRITE, 0, NULL, CREATE_NEW, FILE_FLAG_DELETE_ON_CLOSE,
			NULL);
	cr_assert_neq(h, INVALID_HANDLE_VALUE);
	cr_assert_eq(chdir("/"), 0);
	cr_assert(CloseHandle(h));
	snprintf(path, sizeof(path), "%s/rel.tmp", dir);
	cr_assert_neq(access(path, F_OK), 0, "removed in the directory it was made in");
	cr_assert_eq(chdir(cwd), 0);
}

/* ---- system, environment, modules, directories ---- */

Test(win32_services, system_environment_modules, .timeout = 10)
{
	SYSTEM_INFO si;
	char buf[4096], exe[4096], name[MAX_COMPUTERNAME_LENGTH + 1];
	wchar_t w[4096];
	DWORD n, size;
	ssize_t r;

	GetSystemInfo(&si);
	cr_assert_eq(si.dwPageSize, (DWORD)sysconf(_SC_PAGESIZE));
	cr_assert_eq(si.dwAllocationGranularity, 65536);
	cr_assert_geq(si.dwNumberOfProcessors, 1);
	cr_assert_neq(si.dwActiveProcessorMask, 0);
#if defined(__x86_64__)
	cr_assert_eq(si.wProcessorArchitecture, PROCESSOR_ARCHITECTURE_AMD64);
	cr_assert_eq(sizeof(SYSTEM_INFO), 48);
	cr_assert_eq(offsetof(SYSTEM_INFO, dwAllocationGranularity), 40);
#endif
	cr_assert_lt((uintptr_t)si.lpMinimumApplicationAddress,
		     (uintptr_t)si.lpMaximumApplicationAddress);

	cr_assert(SetEnvironmentVariableA("FLTPORT_TEST_VAR", "value"));
	cr_assert_eq(GetEnvironmentVariableA("FLTPORT_TEST_VAR", buf, sizeof(buf)), 5);
	cr_assert_str_eq(buf, "value");
	cr_assert_eq(GetEnvironmentVariableA("FLTPORT_TEST_VAR", buf, 5), 6, "size needed");
	cr_assert_eq(GetEnvironmentVariableW(L"FLTPORT_TEST_VAR", w, 10), 5);
	cr_assert(wcscmp(w, L"value") == 0);
	cr_assert(SetEnvironmentVariableW(L"FLTPORT_TEST_VAR", NULL));
	SetLastError(0);
	cr_assert_eq(GetEnvironmentVariableA("FLTPORT_TEST_VAR", buf, sizeof(buf)), 0);
	cr_assert_eq(GetLastError(), ERROR_ENVVAR_NOT_FOUND);
	cr_assert_not(SetEnvironmentVariableA("A=B", "x"));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);

	size = sizeof(name);
	cr_assert(GetComputerNameA(name, &size));
	cr_assert_eq(size, strlen(name));
	cr_assert_leq(size, MAX_COMPUTERNAME_LENGTH);
	for (DWORD i = 0; i < size; i++)
		cr_assert(name[i] != '.' && !(name[i] >= 'a' && name[i] <= 'z'), "%s", name);
	n = 1;
	SetLastError(0);
	cr_assert_not(GetComputerNameW(w, &n));
	cr_assert_eq(GetLastError(), ERROR_BUFFER_OVERFLOW);
	cr_assert_eq(n, size + 1, "the size needed");

	r = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	cr_assert_gt(r, 0);
	exe[r] = '\0';
	cr_assert_not_null(GetModuleHandleA(NULL));
	cr_assert_eq(GetModuleFileNameA(NULL, buf, sizeof(buf)), (DWORD)r);
	cr_assert_str_eq(buf, exe);
	cr_assert_eq(GetModuleHandleA(NULL), GetModuleHandleW(NULL));
	cr_assert_eq(GetModuleFileNameW(GetModuleHandleW(NULL), w, _countof(w)), (DWORD)r);
	for (ssize_t i = 0; i <= r; i++)
		cr_assert_eq(w[i], (wchar_t)(unsigned char)exe[i], "character %zd", i);
	SetLastError(0);
	cr_assert_eq(GetModuleFileNameW(NULL, w, 5), 5);
	cr_assert_eq(GetLastError(), ERROR_INSUFFICIENT_BUFFER);
	cr_assert_eq(wcslen(w), 4);
	SetLastError(0);
	cr_assert_eq(GetModuleFileNameA(NULL, buf, 4), 4, "cut: nSize returned");
	cr_assert_eq(GetLastError(), ERROR_INSUFFICIENT_BUFFER);
	cr_assert_eq(strlen(buf), 3);
	cr_assert_eq(memcmp(buf, exe, 3), 0);
	cr_assert_eq(GetModuleHandleA("fltlib.dll"), LoadLibraryA("fltlib.dll"));
	cr_assert_null(GetModuleHandleA("kernel32.dll"));
	cr_assert_eq(GetLastError(), ERROR_MOD_NOT_FOUND);
	OutputDebugStringA("nothing unless FLTPORT_DEBUG is set");
	SetLastError(1234);
	OutputDebugStringW(L"a lone surrogate \xD800 is no error");
	cr_assert_eq(GetLastError(), 1234, "it reports nothing");
}

/* The Win32 environment: names ignore case, an empty value is a value,
 * changes are safe beside other threads' reads and do not reach getenv()
 * (as on Windows, where the C runtime keeps its own copy). */
static atomic_int env_stop;

static DWORD WINAPI env_reader(LPVOID arg)
{
	char buf[64];

	(void)arg;
	while (!atomic_load(&env_stop))
		if (GetEnvironmentVariableA("FLTPORT_ALWAYS", buf, sizeof(buf)) != 6 ||
		    strcmp(buf, "always") != 0)
			return 1;
	return 0;
}

Test(win32_services, environment_block, .timeout = 60)
{
	char buf[64], name[32];
	HANDLE t[2];
	DWORD code;

	cr_assert(SetEnvironmentVariableA("MixedCase", "x"));
	cr_assert_eq(GetEnvironmentVariableA("MIXEDCASE", buf, sizeof(buf)), 1);
	cr_assert(SetEnvironmentVariableA("mixedcase", "y"), "replaces, whatever the case");
	cr_assert_eq(GetEnvironmentVariableA("MixedCase", buf, sizeof(buf)), 1);
	cr_assert_str_eq(buf, "y");
	cr_assert_null(getenv("MixedCase"), "getenv() does not see Win32 changes");
	cr_assert(SetEnvironmentVariableA("FLTPORT_EMPTY", ""));
	SetLastError(1234);
	strcpy(buf, "junk");
	cr_assert_eq(GetEnvironmentVariableA("FLTPORT_EMPTY", buf, sizeof(buf)), 0);
	cr_assert_eq(GetLastError(), 1234, "found: the last error stays");
	cr_assert_str_eq(buf, "");
	cr_assert_eq(GetEnvironmentVariableA("FLTPORT_EMPTY", NULL, 0), 1);
	/* A variable of the real environment is there from the start. */
	cr_assert_gt(GetEnvironmentVariableA("PATH", NULL, 0), 1);
	cr_assert_eq(GetEnvironmentVariableA("path", NULL, 0),
		     GetEnvironmentVariableA("PATH", NULL, 0));

	cr_assert(SetEnvironmentVariableA("FLTPORT_ALWAYS", "always"));
	for (int i = 0; i < 2; i++) {
		t[i] = CreateThread(NULL, 0, env_reader, NULL, 0, NULL);
		cr_assert_not_null(t[i]);
	}
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "FLTPORT_V%d", i % 500);
		cr_assert(SetEnvironmentVariableA(name, i % 2 ? "a somewhat longer value" : NULL));
	}
	atomic_store(&env_stop, 1);
	cr_assert_eq(WaitForMultipleObjects(2, t, TRUE, 20000), WAIT_OBJECT_0);
	for (int i = 0; i < 2; i++) {
		cr_assert(GetExitCodeThread(t[i], &code));
		cr_assert_eq(code, 0, "a reader lost a variable that was always there");
		cr_assert(CloseHandle(t[i]));
	}
}

Test(win32_services, directories_attributes_moves, .timeout = 10)
{
	char dir[600], sub[700], file[700], other[700], cwd[600], got[700];
	HANDLE h;
	DWORD n;

	tu_private_dir();
	snprintf(dir, sizeof(dir), "%s", tu_temp_dir("fltport-dirs"));
	snprintf(sub, sizeof(sub), "%s\\sub", dir);
	cr_assert(CreateDirectoryA(sub, NULL));
	SetLastError(0);
	cr_assert_not(CreateDirectoryA(sub, NULL));
	cr_assert_eq(GetLastError(), ERROR_ALREADY_EXISTS);
	snprintf(other, sizeof(other), "%s/no/such", dir);
	cr_assert_not(CreateDirectoryA(other, NULL));
	cr_assert_eq(GetLastError(), ERROR_PATH_NOT_FOUND);
	cr_assert_eq(GetFileAttributesA(sub), FILE_ATTRIBUTE_DIRECTORY);
	snprintf(file, sizeof(file), "%s/sub/a.txt", dir);
	h = CreateFileA(file, GENERIC_WRITE, 0, NULL, CREATE_NEW, 0, NULL);
	cr_assert_neq(h, INVALID_HANDLE_VALUE);
	cr_assert(WriteFile(h, "a", 1, &n, NULL));
	cr_assert(CloseHandle(h));
	cr_assert_eq(GetFileAttributesA(file), FILE_ATTRIBUTE_NORMAL);
	cr_assert_eq(chmod(file, 0444), 0);
	cr_assert_eq(GetFileAttributesA(file), FILE_ATTRIBUTE_READONLY);
	SetLastError(0);
	cr_assert_eq(GetFileAttributesA(other), INVALID_FILE_ATTRIBUTES);
	cr_assert_eq(GetLastError(), ERROR_PATH_NOT_FOUND);
	cr_assert_not(RemoveDirectoryA(sub));
	cr_assert_eq(GetLastError(), ERROR_DIR_NOT_EMPTY);
	cr_assert_not(RemoveDirectoryA(file));
	cr_assert_eq(GetLastError(), ERROR_DIRECTORY);

	/* Moves: no replace without the flag. */
	snprintf(other, sizeof(other), "%s/b.txt", dir);
	cr_assert(MoveFileA(file, other));
	cr_assert_eq(GetFileAttributesA(file), INVALID_FILE_ATTRIBUTES);
	cr_assert_eq(GetLastError(), ERROR_FILE_NOT_FOUND);
	h = CreateFileA(file, GENERIC_WRITE, 0, NULL, CREATE_NEW, 0, NULL);
	cr_assert(CloseHandle(h));
	SetLastError(0);
	cr_assert_not(MoveFileExA(file, other, 0));
	cr_assert_eq(GetLastError(), ERROR_ALREADY_EXISTS);
	cr_assert(MoveFileExW(L"", L"", 0) == FALSE);
	{
		char lost[800];

		snprintf(lost, sizeof(lost), "%s/no-dir/x", dir);
		SetLastError(0);
		cr_assert_not(MoveFileA(file, lost));
		cr_assert_eq(GetLastError(), ERROR_PATH_NOT_FOUND, "the target's directory");
		SetLastError(0);
		cr_assert_not(MoveFileExA(file, sub, MOVEFILE_REPLACE_EXISTING));
		cr_assert_eq(GetLastError(), ERROR_ACCESS_DENIED, "a directory is not replaced");
		snprintf(lost, sizeof(lost), "%s/x", file);
		cr_assert_not(RemoveDirectoryA(lost));
		cr_assert_eq(GetLastError(), ERROR_PATH_NOT_FOUND, "a file on the way");
		cr_assert_not(SetCurrentDirectoryA(file));
		cr_assert_eq(GetLastError(), ERROR_DIRECTORY);
	}
	cr_assert(MoveFileExA(file, other, MOVEFILE_REPLACE_EXISTING));
	cr_assert_not(MoveFileExA(other, file, MOVEFILE_DELAY_UNTIL_REBOOT));
	cr_assert_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	{
		char link[800];

		char target[800];

		snprintf(link, sizeof(link), "%s/link", dir);
		snprintf(target, sizeof(target), "%s/sub", dir);
		cr_assert_eq(symlink(target, link), 0);
		cr_assert(RemoveDirectoryA(link), "a link to a directory goes");
		cr_assert_eq(GetFileAttributesA(sub), FILE_ATTRIBUTE_DIRECTORY, "not its target");
	}
	cr_assert(RemoveDirectoryA(sub));
	SetLastError(0);
	cr_assert_not(RemoveDirectoryA(sub));
	cr_assert_eq(GetLastError(), ERROR_FILE_NOT_FOUND);

	/* The current directory. */
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	cr_assert(SetCurrentDirectoryA(dir));
	n = GetCurrentDirectoryA(sizeof(got), got);
	cr_assert_eq(n, strlen(dir));
	cr_assert_str_eq(got, dir);
	cr_assert_eq(GetCurrentDirectoryA(3, got), strlen(dir) + 1, "the size needed");
	cr_assert_not(SetCurrentDirectoryA("no-such-dir"));
	cr_assert_eq(GetLastError(), ERROR_FILE_NOT_FOUND);
	cr_assert(SetCurrentDirectoryA(cwd));
}

/* ---- a Windows-style service end to end ---- */

#define SVC_MESSAGES 200

static struct tw_conn svc = TW_CONN_INIT;

/* win_service (SRW lock and condition-variable queue, workers, a log file
 * written with WriteFile, sprintf_s, strcpy_s, _stricmp) answers every
 * request, logs each once, and exits cleanly when the filter closes. */
Test(win32_services, windows_style_service_end_to_end, .timeout = 120)
{
	static bool seen[SVC_MESSAGES];
	char line[256], logpath[600], arg[128];
	const char *name;
	struct tu_proc p;
	NTSTATUS st;
	FILE *f;
	int rc, lines = 0;

	tu_private_dir();
	name = tu_port_name("svc");
	snprintf(logpath, sizeof(logpath), "%s/service.log", tu_temp_dir("fltport-svc"));
	st = tw_open_conn_port(name, &svc, NULL);
	cr_assert_eq(st, STATUS_SUCCESS, "FltCreateCommunicationPort: 0x%08X", (unsigned)st);
	snprintf(arg, sizeof(arg), "\\%s", name);
	p = tu_spawn("win_service", (const char *const[]){ arg, logpath, NULL });
	cr_assert(tu_expect(&p, "SYSINFO", line, sizeof(line), 15000));
	cr_assert_str_eq(line, "SYSINFO granularity=65536");
	cr_assert(tu_expect(&p, "CONNECTED", line, sizeof(line), 15000), "no CONNECTED (%s)", line);
	cr_assert_str_eq(line, "CONNECTED hr=0x00000000");
	for (ULONG seq = 0; seq < SVC_MESSAGES; seq++) {
		SVC_REQUEST rq;
		SVC_REPLY r;
		ULONG rlen = sizeof(r), want = 0;
		LARGE_INTEGER timeout;

		memset(&rq, 0, sizeof(rq));
		rq.Seq = seq;
		strcpy(rq.Command, seq % 10 == 9 ? "nope" : seq % 2 ? "SUM" : "sum");
		snprintf(rq.Text, sizeof(rq.Text), "text %lu", (unsigned long)seq * 7);
		for (const char *c = rq.Text; *c; c++)
			want += (unsigned char)*c;
		if (seq % 10 == 9)
			want = 0xFFFFFFFFu;
		timeout.QuadPart = -100000000LL;
		st = FltSendMessage(NULL, &svc.client, &rq, sizeof(rq), &r, &rlen, &timeout);
		cr_assert_eq(st, STATUS_SUCCESS, "seq %lu: 0x%08X", (unsigned long)seq,
			     (unsigned)st);
		cr_assert_eq(rlen, sizeof(r));
		cr_assert_eq(r.Seq, seq);
		cr_assert_eq(r.Sum, want, "seq %lu", (unsigned long)seq);
	}
	FltCloseClientPort(NULL, &svc.client);
	cr_assert(tu_expect(&p, "DONE", line, sizeof(line), 30000), "no DONE (%s)", line);
	snprintf(arg, sizeof(arg), "DONE answered=%d bad=0", SVC_MESSAGES);
	cr_assert_str_eq(line, arg);
	rc = tu_wait(&p, 10000);
	cr_assert_eq(rc, 0, "win_service exit code %d", rc);
	cr_assert(tu_wait_until(tw_disconnected, &svc, 10000));
	cr_assert_eq(svc.nconn, 1);
	FltCloseCommunicationPort(svc.server);
	FltportUnloadFilter(NULL);

	f = fopen(logpath, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long seq, sum;

		cr_assert_eq(sscanf(line, "seq=%lu sum=%lu", &seq, &sum), 2, "%s", line);
		cr_assert_lt(seq, SVC_MESSAGES);
		cr_assert_not(seen[seq], "seq %lu logged twice", seq);
		seen[seq] = true;
		lines++;
	}
	fclose(f);
	cr_assert_eq(lines, SVC_MESSAGES);
}

/* A stderr nobody reads (a full pipe) never blocks: OutputDebugString
 * drops its lines, and a parameter error still ends the process.  Each in a
 * child whose alarm turns a hang into SIGALRM. */
static void stderr_full_pipe(void)
{
	int p[2], fl;
	char junk[4096];

	memset(junk, 'j', sizeof(junk));
	if (pipe(p) != 0)
		_exit(90);
	fl = fcntl(p[1], F_GETFL);
	fcntl(p[1], F_SETFL, fl | O_NONBLOCK);
	while (write(p[1], junk, sizeof(junk)) > 0)
		;
	fcntl(p[1], F_SETFL, fl); /* a blocking write would hang now */
	dup2(p[1], STDERR_FILENO);
}

static int child_status(void (*body)(void))
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		alarm(10);
		stderr_full_pipe();
		body();
		_exit(0);
	}
	waitpid(pid, &status, 0);
	return status;
}

static void debug_strings(void)
{
	setenv("FLTPORT_DEBUG", "1", 1);
	for (int i = 0; i < 100; i++)
		OutputDebugStringA("a line nobody reads");
}

static void bad_strcpy(void)
{
	char small[2];

	strcpy_s(small, sizeof(small), "too long");
}

Test(win32_services, a_stderr_nobody_reads_blocks_nothing, .timeout = 60)
{
	int status = child_status(debug_strings);

	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "debug output: status 0x%x",
		  status);
	status = child_status(bad_strcpy);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		  "a parameter error: status 0x%x (SIGALRM 14: it hung)", status);
}

/* A program that starts at wmain (with envp) and has no main: it runs,
 * with its arguments decoded from UTF-8 (an invalid byte is U+FFFD, an
 * empty argument stays), its environment, and its exit code. */
Test(win32_services, a_program_starting_at_wmain_runs, .timeout = 60)
{
	char line[256];
	struct tu_proc p;
	int rc;

	setenv("WIN_WMAIN_PROBE", "1", 1);
	p = tu_spawn("win_wmain", (const char *const[]){ "h\xc3\xa9", "\xff", "", "a b", NULL });
	unsetenv("WIN_WMAIN_PROBE");
	cr_assert(tu_expect(&p, "ARGC", line, sizeof(line), 15000), "no ARGC line");
	cr_expect_str_eq(line, "ARGC 5");
	cr_assert(tu_expect(&p, "ARG 1", line, sizeof(line), 5000));
	cr_expect_str_eq(line, "ARG 1 68 E9");
	cr_assert(tu_expect(&p, "ARG 2", line, sizeof(line), 5000));
	cr_expect_str_eq(line, "ARG 2 FFFD");
	cr_assert(tu_expect(&p, "ARG 3", line, sizeof(line), 5000));
	cr_expect_str_eq(line, "ARG 3");
	cr_assert(tu_expect(&p, "ARG 4", line, sizeof(line), 5000));
	cr_expect_str_eq(line, "ARG 4 61 20 62");
	cr_assert(tu_expect(&p, "ENV", line, sizeof(line), 5000));
	cr_expect_str_eq(line, "ENV WIN_WMAIN_PROBE=1");
	rc = tu_wait(&p, 10000);
	cr_expect_eq(rc, 45, "exit code %d", rc);
}

/* Is `sig` in the /proc/PID/status mask on the line starting `key`? */
static bool sig_mask_has(pid_t pid, const char *key, int sig)
{
	char path[64], line[256];
	unsigned long long mask = 0;
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0)
			found = sscanf(line + strlen(key), "%llx", &mask) == 1;
	fclose(f);
	return found && (mask >> (sig - 1)) & 1u;
}

/* Start win_ctrl in `mode` and wait for its "READY" (killed if it does
 * not come: no helper outlives a test, holding the runner's pipes). */
static struct tu_proc ctrl_spawn(const char *mode)
{
	return tw_spawn_sigdfl("win_ctrl", (const char *const[]){ mode, NULL });
}

static struct tu_proc ctrl_start(const char *mode)
{
	char line[128];
	struct tu_proc p = ctrl_spawn(mode);
	bool ready = tu_expect(&p, "READY", line, sizeof(line), 15000);

	if (!ready)
		tu_kill(&p, SIGKILL);
	cr_assert(ready, "win_ctrl %s: no READY", mode);
	return p;
}

/* SIGINT is CTRL_C_EVENT: the handler runs on a thread of its own, returns
 * TRUE and the program goes on; SIGTERM is CTRL_SHUTDOWN_EVENT: the handler
 * runs, and the process ends by the signal all the same. */
Test(win32_services, ctrl_c_runs_the_handler_and_the_program_goes_on, .timeout = 60)
{
	struct tu_proc p;
	char line[128];
	int rc;

	TW_SKIP_SIGNALS_UNDER_TSAN();
	p = ctrl_start("handle");

	kill(p.pid, SIGINT);
	tw_line(&p, "EVENT", line, sizeof(line));
	cr_expect_str_eq(line, "EVENT handler=1 type=0");
	tw_line(&p, "MAIN", line, sizeof(line));
	kill(p.pid, SIGINT); /* again: handled again */
	tw_line(&p, "EVENT", line, sizeof(line));
	cr_expect_str_eq(line, "EVENT handler=1 type=0");
	tw_line(&p, "MAIN", line, sizeof(line));
	kill(p.pid, SIGTERM);
	tw_line(&p, "EVENT", line, sizeof(line));
	cr_expect_str_eq(line, "EVENT handler=1 type=6");
	rc = tu_wait(&p, 15000);
	cr_expect_eq(rc, 128 + SIGTERM, "exit %d", rc);
}

/* A handler that returns FALSE: the default action, the process ends by
 * SIGINT.  Ignored Ctrl+C reaches no handler; removal takes the handler
 * out, and a second removal fails with ERROR_INVALID_PARAMETER. */
Test(win32_services, ctrl_handlers_pass_ignore_and_remove, .timeout = 60)
{
	struct tu_proc p;
	char line[128];
	int rc;

	TW_SKIP_SIGNALS_UNDER_TSAN();
	p = ctrl_start("pass");

	kill(p.pid, SIGINT);
	tw_line(&p, "EVENT", line, sizeof(line));
	cr_expect_str_eq(line, "EVENT handler=1 type=0");
	rc = tu_wait(&p, 15000);
	cr_expect_eq(rc, 128 + SIGINT, "pass: exit %d", rc);

	p = ctrl_start("ignore");
	cr_expect(sig_mask_has(p.pid, "SigIgn:", SIGINT), "ignore: SIGINT not ignored");
	cr_expect(sig_mask_has(p.pid, "SigCgt:", SIGHUP), "ignore: SIGHUP not caught");
	kill(p.pid, SIGINT);
	kill(p.pid, SIGHUP);
	tw_line(&p, "EVENT", line, sizeof(line));
	cr_expect_str_eq(line, "EVENT handler=1 type=2", "ignore: Ctrl+C reached the handler");
	rc = tu_wait(&p, 15000);
	cr_expect_eq(rc, 128 + SIGHUP, "ignore: exit %d", rc);

	p = ctrl_spawn("remove");
	tw_line(&p, "REMOVE", line, sizeof(line));
	cr_expect_str_eq(line, "REMOVE again ok=0 err=87");
	tw_line(&p, "READY", line, sizeof(line));
	kill(p.pid, SIGTERM);
	tw_line(&p, "EVENT", line, sizeof(line));
	cr_expect_str_eq(line, "EVENT handler=1 type=6", "remove: a removed handler ran");
	rc = tu_wait(&p, 15000);
	cr_expect_eq(rc, 128 + SIGTERM, "remove: exit %d", rc);
}

/* kernel32's string routines, as services use them: NULL-tolerant lengths,
 * lstrcpyn's count with its terminator, -1/0/1 comparisons. */
Test(win32_services, lstr_routines)
{
	char a[8];
	WCHAR w[8];

	cr_expect_eq(lstrlenA(NULL), 0);
	cr_expect_eq(lstrlenW(NULL), 0);
	cr_expect_eq(lstrlenW(L"port"), 4);
	cr_expect_eq(lstrcpyA(a, "ab"), a);
	cr_expect_eq(lstrcatA(a, "cd"), a);
	cr_expect_str_eq(a, "abcd");
	cr_expect_null(lstrcpyA(NULL, "x"));
	cr_expect_null(lstrcatW(w, NULL));
	memset(a, 'z', sizeof(a));
	cr_expect_eq(lstrcpynA(a, "abcdef", 4), a);
	cr_expect_str_eq(a, "abc", "lstrcpyn copies iMaxLength - 1 and ends the copy");
	cr_expect_eq(lstrcpynA(a, "q", 0), a);
	cr_expect_str_eq(a, "abc", "iMaxLength 0 writes nothing");
	cr_expect_eq(lstrcpynW(w, L"scanner", 8), w);
	cr_expect(wcscmp(w, L"scanner") == 0);
	cr_expect_eq(lstrcmpW(L"abc", L"abd"), -1);
	cr_expect_eq(lstrcmpA("abd", "abc"), 1);
	cr_expect_eq(lstrcmpA("abc", "abc"), 0);
	cr_expect_eq(lstrcmpA("ABC", "abc"), -1);
	cr_expect_eq(lstrcmpiA("ABC", "abc"), 0);
	cr_expect_eq(lstrcmpiW(L"\u00c9T\u00c9", L"\u00e9t\u00e9"), 0);
	cr_expect_eq(lstrcmpA(NULL, "a"), -1);
	cr_expect_eq(lstrcmpiW(L"a", NULL), 1);
	cr_expect_eq(lstrcmpA(NULL, NULL), 0);
}

/* Alertable waits are ordinary waits: no APC is ever queued. */
Test(win32_services, alertable_waits)
{
	HANDLE e[2] = { CreateEventW(NULL, TRUE, FALSE, NULL),
			CreateEventW(NULL, TRUE, TRUE, NULL) };
	char text[128];

	cr_assert_not_null(e[0]);
	cr_assert_not_null(e[1]);
	cr_expect_eq(WaitForMultipleObjectsEx(2, e, FALSE, 0, TRUE), WAIT_OBJECT_0 + 1);
	cr_expect_eq(WaitForMultipleObjectsEx(2, e, TRUE, 10, TRUE), WAIT_TIMEOUT);
	cr_expect_eq(SleepEx(1, TRUE), 0);
	SetEvent(e[0]);
	cr_expect_eq(WaitForMultipleObjectsEx(2, e, TRUE, INFINITE, FALSE), WAIT_OBJECT_0);
	CloseHandle(e[0]);
	CloseHandle(e[1]);
	cr_expect_gt(FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
				    NULL, ERROR_CAN_NOT_COMPLETE, 0, text, sizeof(text), NULL),
		     0);
	cr_expect_str_eq(text, "Cannot complete this function.\r\n");
}

/* A child forked without exec after the registration is a process of its
 * own: SIGTERM ends it by its default action and reaches no handler of the
 * parent (it used to write into the parent's pipe: the parent ran its
 * handlers and died).  The parent's handlers still work afterwards. */
Test(win32_services, ctrl_handlers_stay_with_their_process, .timeout = 60)
{
	struct tu_proc p;
	char line[128];
	long child = 0;
	int rc;

	TW_SKIP_SIGNALS_UNDER_TSAN();
	p = ctrl_spawn("fork");
	if (*tw_line(&p, "CHILDPID", line, sizeof(line)))
		child = strtol(line + 9, NULL, 10);
	tw_line(&p, "READY", line, sizeof(line));
	line[0] = '\0';
	if (child > 0) {
		kill((pid_t)child, SIGTERM);
		if (!tu_read_line(&p, line, sizeof(line), 15000))
			line[0] = '\0';
		kill((pid_t)child, SIGKILL); /* whatever happened: no child left behind */
	}
	cr_expect_str_eq(line, "CHILD signal=15", "the child's SIGTERM reached the parent");
	kill(p.pid, SIGINT);
	tw_line(&p, "EVENT", line, sizeof(line));
	cr_expect_str_eq(line, "EVENT handler=1 type=0");
	kill(p.pid, SIGTERM);
	rc = tu_wait(&p, 15000);
	cr_expect_eq(rc, 128 + SIGTERM, "exit %d", rc);
}

/* What the program was started with stays: a SIGHUP ignored (nohup) is
 * not caught, an ignored SIGINT stays ignored (the inherited flag); and the
 * handlers run with the program's signal mask, not the dispatcher's. */
Test(win32_services, ctrl_handlers_keep_inherited_dispositions, .timeout = 60)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, old_hup, old_int;
	struct tu_proc p;
	char line[128];
	int rc;

	TW_SKIP_SIGNALS_UNDER_TSAN();

	sigemptyset(&ign.sa_mask);
	sigaction(SIGHUP, &ign, &old_hup);
	sigaction(SIGINT, &ign, &old_int);
	p = tu_spawn("win_ctrl", (const char *const[]){ "mask", NULL }); /* with the ignores */
	sigaction(SIGHUP, &old_hup, NULL);
	sigaction(SIGINT, &old_int, NULL);
	tw_line(&p, "READY", line, sizeof(line));
	cr_expect(sig_mask_has(p.pid, "SigIgn:", SIGHUP), "an ignored SIGHUP is caught");
	cr_expect(sig_mask_has(p.pid, "SigIgn:", SIGINT), "an inherited ignored SIGINT is caught");
	cr_expect(sig_mask_has(p.pid, "SigCgt:", SIGTERM), "SIGTERM not caught");
	kill(p.pid, SIGTERM);
	tw_line(&p, "EVENT", line, sizeof(line));
	cr_expect_str_eq(line, "EVENT handler=1 type=6");
	tw_line(&p, "MASK", line, sizeof(line));
	cr_expect_str_eq(line, "MASK 0000000000000000", "handlers run with every signal blocked");
	rc = tu_wait(&p, 15000);
	cr_expect_eq(rc, 128 + SIGTERM, "exit %d", rc);
}
