/*
 * Synchronisation helpers ported clients use besides the port API:
 * Interlocked* return values (Windows semantics: Increment/Decrement return
 * the new value, Exchange/ExchangeAdd/CompareExchange the old one) and
 * critical sections (recursive; mutual exclusion across CreateThread
 * threads).
 */
#ifdef FP_PLAIN
#include "plain_criterion.h" /* the TSan pass builds this suite without Criterion */
#else
#include <criterion/criterion.h>
#endif

#include <windows.h>

Test(sync, interlocked_return_values, .timeout = 10)
{
	LONG volatile v = 5;
	LONGLONG volatile w = 1;
	PVOID volatile p = NULL;
	int a, b;

	cr_assert_eq(InterlockedIncrement(&v), 6);
	cr_assert_eq(InterlockedDecrement(&v), 5);
	cr_assert_eq(InterlockedExchange(&v, 9), 5);
	cr_assert_eq(InterlockedExchangeAdd(&v, 3), 9);
	cr_assert_eq(v, 12);
	cr_assert_eq(InterlockedCompareExchange(&v, 1, 7), 12); /* no match: unchanged */
	cr_assert_eq(v, 12);
	cr_assert_eq(InterlockedCompareExchange(&v, 1, 12), 12);
	cr_assert_eq(v, 1);
	cr_assert_eq(InterlockedIncrement64(&w), 2);
	cr_assert_eq(InterlockedExchangeAdd64(&w, 10), 2);
	cr_assert_eq(InterlockedDecrement64(&w), 11);
	cr_assert_eq(InterlockedExchangePointer(&p, &a), NULL);
	cr_assert_eq(InterlockedCompareExchangePointer(&p, &b, NULL), &a);
	cr_assert_eq(InterlockedCompareExchangePointer(&p, &b, &a), &a);
	cr_assert_eq(p, &b);
}

static CRITICAL_SECTION cs;
static long counter;
static LONG volatile atomic_counter;

static DWORD WINAPI worker(LPVOID arg)
{
	for (int i = 0; i < 20000; i++) {
		EnterCriticalSection(&cs);
		EnterCriticalSection(&cs); /* recursive, as on Windows */
		counter++;
		LeaveCriticalSection(&cs);
		LeaveCriticalSection(&cs);
		InterlockedIncrement(&atomic_counter);
	}
	return (DWORD)(ULONG_PTR)arg;
}

Test(sync, critical_section_excludes_and_recurses, .timeout = 30)
{
	HANDLE t[4];
	DWORD code;

	InitializeCriticalSection(&cs);
	for (int i = 0; i < 4; i++) {
		t[i] = CreateThread(NULL, 0, worker, (LPVOID)(ULONG_PTR)(40 + i), 0, NULL);
		cr_assert_not_null(t[i]);
	}
	cr_assert_eq(WaitForMultipleObjects(4, t, TRUE, 20000), WAIT_OBJECT_0);
	cr_assert_eq(counter, 80000);
	cr_assert_eq(atomic_counter, 80000);
	for (int i = 0; i < 4; i++) {
		cr_assert(GetExitCodeThread(t[i], &code));
		cr_assert_eq(code, 40u + (DWORD)i);
		cr_assert(CloseHandle(t[i]));
	}
	cr_assert(TryEnterCriticalSection(&cs));
	LeaveCriticalSection(&cs);
	DeleteCriticalSection(&cs);
}
