/*
 * Slim reader/writer locks and condition variables (windows.h), on a
 * 32-bit futex word inside their one pointer.
 *
 * Lock word: bit 31 an exclusive owner, bit 30 "someone sleeps", bit 29 "a
 * writer waits", bits 0-28 the shared owners.  A thread that must wait sets
 * the sleeper bit (a writer also the writer-waits bit) and sleeps on the
 * word's value; whoever frees the lock while the sleeper bit is set clears
 * both and wakes every sleeper, who try again (and set the bits again if
 * they must sleep).  A wake-up is never lost: a sleeper whose value is gone
 * by the time it sleeps returns at once.  Readers enter while no writer
 * holds the lock or waits for it, so a stream of readers cannot keep a
 * writer out (and, as Windows warns, a thread that takes the lock shared
 * twice can deadlock against a waiting writer).
 *
 * The futex is invisible to ThreadSanitizer: when the program using this
 * (uninstrumented) library runs under TSan, the acquire and release points
 * are told to it through its __tsan_acquire/__tsan_release hooks.
 *
 * Condition variable: a sequence number.  A sleeper reads it, releases
 * the lock and sleeps while it is unchanged; Wake* bump it and wake one or
 * all.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "compat/compat.h"

#define SRW_WRITER 0x80000000u
#define SRW_SLEEPER 0x40000000u
#define SRW_WRITER_WAITS 0x20000000u
#define SRW_READERS 0x1FFFFFFFu

/* ThreadSanitizer's runtime, when the program has one. */
extern void __tsan_acquire(void *addr) __attribute__((weak));
extern void __tsan_release(void *addr) __attribute__((weak));

static void tsan_acquire(void *addr)
{
	if (__tsan_acquire)
		__tsan_acquire(addr);
}

static void tsan_release(void *addr)
{
	if (__tsan_release)
		__tsan_release(addr);
}

_Static_assert(sizeof(PVOID) >= sizeof(uint32_t), "room for the futex word");

static uint32_t *word_of(void *ptr_field)
{
	return (uint32_t *)ptr_field;
}

static int futex_wait(uint32_t *w, uint32_t val, const struct timespec *rel)
{
	return (int)syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, rel, NULL, 0);
}

static void futex_wake(uint32_t *w, int n)
{
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

FLTPORT_WINAPI void InitializeSRWLock(PSRWLOCK l)
{
	l->Ptr = NULL;
}

/* Sleep until the word changes from s, after marking a sleeper — only
 * while s still shuts this thread out (`blocking`: the bits that do), or
 * the lock could be free with a sleeper marked and no one left to wake it. */
static void srw_sleep(uint32_t *w, uint32_t s, uint32_t blocking, uint32_t mark)
{
	if (!(s & blocking))
		return; /* freed meanwhile: try again */
	if ((s & mark) != mark) {
		if (!__atomic_compare_exchange_n(w, &s, s | mark, false, __ATOMIC_RELAXED,
						 __ATOMIC_RELAXED))
			return; /* it changed: look again */
		s |= mark;
	}
	futex_wait(w, s, NULL);
}

FLTPORT_WINAPI BOOLEAN TryAcquireSRWLockExclusive(PSRWLOCK l)
{
	uint32_t *w = word_of(&l->Ptr);
	uint32_t s = __atomic_load_n(w, __ATOMIC_RELAXED);

	while (!(s & (SRW_WRITER | SRW_READERS))) {
		if (__atomic_compare_exchange_n(w, &s, s | SRW_WRITER, true, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED)) {
			tsan_acquire(w);
			return TRUE;
		}
	}
	return FALSE;
}

FLTPORT_WINAPI BOOLEAN TryAcquireSRWLockShared(PSRWLOCK l)
{
	uint32_t *w = word_of(&l->Ptr);
	uint32_t s = __atomic_load_n(w, __ATOMIC_RELAXED);

	while (!(s & (SRW_WRITER | SRW_WRITER_WAITS)) && (s & SRW_READERS) != SRW_READERS) {
		if (__atomic_compare_exchange_n(w, &s, s + 1, true, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED)) {
			tsan_acquire(w);
			return TRUE;
		}
	}
	return FALSE;
}

FLTPORT_WINAPI void AcquireSRWLockExclusive(PSRWLOCK l)
{
	uint32_t *w = word_of(&l->Ptr);

	while (!TryAcquireSRWLockExclusive(l))
		srw_sleep(w, __atomic_load_n(w, __ATOMIC_RELAXED), SRW_WRITER | SRW_READERS,
			  SRW_SLEEPER | SRW_WRITER_WAITS);
}

FLTPORT_WINAPI void AcquireSRWLockShared(PSRWLOCK l)
{
	uint32_t *w = word_of(&l->Ptr);

	while (!TryAcquireSRWLockShared(l))
		srw_sleep(w, __atomic_load_n(w, __ATOMIC_RELAXED), SRW_WRITER | SRW_WRITER_WAITS,
			  SRW_SLEEPER);
}

FLTPORT_WINAPI void ReleaseSRWLockExclusive(PSRWLOCK l)
{
	uint32_t *w = word_of(&l->Ptr);

	/* With a writer in, there are no readers: the lock becomes free. */
	tsan_release(w);
	if (__atomic_exchange_n(w, 0, __ATOMIC_RELEASE) & SRW_SLEEPER)
		futex_wake(w, INT_MAX);
}

FLTPORT_WINAPI void ReleaseSRWLockShared(PSRWLOCK l)
{
	uint32_t *w = word_of(&l->Ptr);
	uint32_t s;

	tsan_release(w);
	s = __atomic_sub_fetch(w, 1, __ATOMIC_RELEASE);
	/* The last reader out with sleepers (a writer among them, maybe):
	 * free it and wake them, unless someone came in meanwhile (their
	 * release wakes them then). */
	if ((s & SRW_SLEEPER) && !(s & (SRW_WRITER | SRW_READERS)) &&
	    __atomic_compare_exchange_n(w, &s, 0, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		futex_wake(w, INT_MAX);
}

FLTPORT_WINAPI void InitializeConditionVariable(PCONDITION_VARIABLE cv)
{
	cv->Ptr = NULL;
}

/* Sleep on cv's sequence number seq for ms (INFINITE: no limit); false
 * when the time passed.  The deadline is absolute, so that signals (which
 * end a futex wait) do not restart the time. */
static bool cv_sleep(PCONDITION_VARIABLE cv, uint32_t seq, DWORD ms)
{
	uint32_t *w = word_of(&cv->Ptr);
	struct timespec at;

	if (ms == 0)
		return __atomic_load_n(w, __ATOMIC_ACQUIRE) != seq;
	clock_gettime(CLOCK_MONOTONIC, &at);
	at.tv_sec += ms / 1000;
	at.tv_nsec += (long)(ms % 1000) * 1000000;
	if (at.tv_nsec >= 1000000000) {
		at.tv_sec++;
		at.tv_nsec -= 1000000000;
	}
	for (;;) {
		long r = syscall(SYS_futex, w, FUTEX_WAIT_BITSET_PRIVATE, seq,
				 ms == INFINITE ? NULL : &at, NULL, FUTEX_BITSET_MATCH_ANY);

		if (r == 0 || errno == EAGAIN)
			return true; /* woken, or changed already */
		if (errno == ETIMEDOUT)
			return false;
		if (__atomic_load_n(w, __ATOMIC_ACQUIRE) != seq)
			return true; /* a signal, after a wake-up */
	}
}

FLTPORT_WINAPI BOOL SleepConditionVariableSRW(PCONDITION_VARIABLE cv, PSRWLOCK l, DWORD ms,
					      ULONG flags)
{
	uint32_t seq;
	bool woken;

	if (flags & ~(ULONG)CONDITION_VARIABLE_LOCKMODE_SHARED) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	seq = __atomic_load_n(word_of(&cv->Ptr), __ATOMIC_ACQUIRE);
	if (flags & CONDITION_VARIABLE_LOCKMODE_SHARED) {
		ReleaseSRWLockShared(l);
		woken = cv_sleep(cv, seq, ms);
		AcquireSRWLockShared(l);
	} else {
		ReleaseSRWLockExclusive(l);
		woken = cv_sleep(cv, seq, ms);
		AcquireSRWLockExclusive(l);
	}
	if (!woken) {
		SetLastError(ERROR_TIMEOUT);
		return FALSE;
	}
	return TRUE;
}

FLTPORT_WINAPI BOOL SleepConditionVariableCS(PCONDITION_VARIABLE cv, PCRITICAL_SECTION cs, DWORD ms)
{
	uint32_t seq = __atomic_load_n(word_of(&cv->Ptr), __ATOMIC_ACQUIRE);
	bool woken;

	LeaveCriticalSection(cs);
	woken = cv_sleep(cv, seq, ms);
	EnterCriticalSection(cs);
	if (!woken) {
		SetLastError(ERROR_TIMEOUT);
		return FALSE;
	}
	return TRUE;
}

FLTPORT_WINAPI void WakeConditionVariable(PCONDITION_VARIABLE cv)
{
	__atomic_add_fetch(word_of(&cv->Ptr), 1, __ATOMIC_RELEASE);
	futex_wake(word_of(&cv->Ptr), 1);
}

FLTPORT_WINAPI void WakeAllConditionVariable(PCONDITION_VARIABLE cv)
{
	__atomic_add_fetch(word_of(&cv->Ptr), 1, __ATOMIC_RELEASE);
	futex_wake(word_of(&cv->Ptr), INT_MAX);
}
