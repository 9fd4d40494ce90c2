#include <errno.h>
#include <linux/futex.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/shared.h"

/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so EINTR
 * restarts need no arithmetic. */
static int futex_wait(_Atomic uint32_t *w, int op, uint32_t expect, int64_t deadline)
{
	struct timespec ts, *tp = NULL;
	long r;

	if (deadline != FP_NEVER) {
		ts = fp_abs_timespec(deadline);
		tp = &ts;
	}
	r = syscall(SYS_futex, (uint32_t *)w, op, expect, tp, NULL, FUTEX_BITSET_MATCH_ANY);
	if (r == 0)
		return 0;
	return errno == ETIMEDOUT ? -ETIMEDOUT : 0; /* EAGAIN, EINTR: recheck */
}

/* Not FUTEX_PRIVATE_FLAG: the word lives in a MAP_SHARED memfd and the
 * other process wakes it. */
int fp_futex_wait(_Atomic uint32_t *w, uint32_t expect, int64_t deadline)
{
	return futex_wait(w, FUTEX_WAIT_BITSET, expect, deadline);
}

void fp_futex_wake(_Atomic uint32_t *w)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
}

void fp_futex_wake_one(_Atomic uint32_t *w)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

int fp_futex_wait_private(_Atomic uint32_t *w, uint32_t expect, int64_t deadline)
{
	return futex_wait(w, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expect, deadline);
}

void fp_futex_wake_private(_Atomic uint32_t *w)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 0x7fffffff, NULL, NULL,
		0);
}
