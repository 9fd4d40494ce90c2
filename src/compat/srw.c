/*
 * Slim reader/writer locks and condition variables (windows.h), on a
 * 32-bit futex word inside their one pointer.
 *
 * Lock word: bit 31 an exclusive owner, bit 30 "someone sleeps", bits 0-29
 * the shared owners.  A thread that must wait sets the sleeper bit and
 * sleeps on the word's value; whoever frees the lock while the bit is set
 * clears it and wakes every sleeper, who try again (and set the bit again
 * if they must sleep).  A wake-up is never lost: a sleeper whose value is
 * gone by the time it sleeps returns at once.  Readers enter whenever no
 * writer holds the lock (no fairness promised, as on Windows).
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
#define SRW_READERS 0x3FFFFFFFu

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
static void srw_sleep(uint32_t *w, uint32_t s, uint32_t blocking)
{
	if (!(s & blocking))
		return; /* freed meanwhile: try again */
	if (!(s & SRW_SLEEPER)) {
		if (!__atomic_compare_exchange_n(w, &s, s | SRW_SLEEPER, false, __ATOMIC_RELAXED,
						 __ATOMIC_RELAXED))
			return; /* it changed: look again */
		s |= SRW_SLEEPER;
	}
	futex_wait(w, s, NULL);
}

FLTPORT_WINAPI BOOLEAN TryAcquireSRWLockExclusive(PSRWLOCK l)
{
	uint32_t *w = word_of(&l->Ptr);
	uint32_t s = __atomic_load_n(w, __ATOMIC_RELAXED);

	while (!(s & (SRW_WRITER | SRW_READERS))) {
		if (__atomic_compare_exchange_n(w, &s, s | SRW_WRITER, true, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			return TRUE;
	}
	return FALSE;
}

FLTPORT_WINAPI BOOLEAN TryAcquireSRWLockShared(PSRWLOCK l)
{
	uint32_t *w = word_of(&l->Ptr);
	uint32_t s = __atomic_load_n(w, __ATOMIC_RELAXED);

	while (!(s & SRW_WRITER) && (s & SRW_READERS) != SRW_READERS) {
		if (__atomic_compare_exchange_n(w, &s, s + 1, true, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			return TRUE;
	}
	return FALSE;
}

FLTPORT_WINAPI void AcquireSRWLockExclusive(PSRWLOCK l)
{
	uint32_t *w = word_of(&l->Ptr);

	while (!TryAcquireSRWLockExclusive(l))
		srw_sleep(w, __atomic_load_n(w, __ATOMIC_RELAXED), SRW_WRITER | SRW_READERS);
}

FLTPORT_WINAPI void AcquireSRWLockShared(PSRWLOCK l)
{
	uint32_t *w = word_of(&l->Ptr);

	while (!TryAcquireSRWLockShared(l))
		srw_sleep(w, __atomic_load_n(w, __ATOMIC_RELAXED), SRW_WRITER);
}

FLTPORT_WINAPI void ReleaseSRWLockExclusive(PSRWLOCK l)
{
	uint32_t *w = word_of(&l->Ptr);

	/* With a writer in, there are no readers: the lock becomes free. */
	if (__atomic_exchange_n(w, 0, __ATOMIC_RELEASE) & SRW_SLEEPER)
		futex_wake(w, INT_MAX);
}

FLTPORT_WINAPI void ReleaseSRWLockShared(PSRWLOCK l)
{
	uint32_t *w = word_of(&l->Ptr);
	uint32_t s = __atomic_sub_fetch(w, 1, __ATOMIC_RELEASE);

	/* The last reader out with sleepers: free it and wake them, unless
	 * someone came in meanwhile (their release wakes them then). */
	if (s == SRW_SLEEPER &&
	    __atomic_compare_exchange_n(w, &s, 0, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		futex_wake(w, INT_MAX);
}

FLTPORT_WINAPI void InitializeConditionVariable(PCONDITION_VARIABLE cv)
{
	cv->Ptr = NULL;
}

/* Sleep on cv's sequence number seq for ms (INFINITE: no limit); false
 * when the time passed. */
static bool cv_sleep(PCONDITION_VARIABLE cv, uint32_t seq, DWORD ms)
{
	struct timespec rel = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	if (ms == 0)
		return __atomic_load_n(word_of(&cv->Ptr), __ATOMIC_ACQUIRE) != seq;
	if (futex_wait(word_of(&cv->Ptr), seq, ms == INFINITE ? NULL : &rel) != 0 &&
	    errno == ETIMEDOUT)
		return false;
	return true; /* woken, changed already, or a signal: a spurious wake-up */
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
