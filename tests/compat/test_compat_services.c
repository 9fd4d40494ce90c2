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

#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include <windows.h>
#include <ntstatus.h>
#include <fltuser.h>

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
