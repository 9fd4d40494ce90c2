#include "core/clock.h"

#include <errno.h>
#include <limits.h>

int64_t fp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t fp_deadline(int64_t timeout_ns)
{
	int64_t now;

	if (timeout_ns < 0)
		return FP_NEVER;
	now = fp_now();
	if (timeout_ns > FP_NEVER - now)
		return FP_NEVER;
	return now + timeout_ns;
}

int fp_poll_ms(int64_t deadline)
{
	int64_t left;

	if (deadline == FP_NEVER)
		return -1;
	left = deadline - fp_now();
	if (left <= 0)
		return 0;
	left = (left + 999999) / 1000000;
	return left > INT_MAX ? INT_MAX : (int)left;
}

struct timespec fp_abs_timespec(int64_t deadline)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline / 1000000000),
		.tv_nsec = (long)(deadline % 1000000000),
	};
	return ts;
}

void fp_cond_init(pthread_cond_t *c)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

int fp_cond_wait(pthread_cond_t *c, pthread_mutex_t *m, int64_t deadline)
{
	struct timespec ts;

	if (deadline == FP_NEVER)
		return pthread_cond_wait(c, m);
	if (fp_now() >= deadline)
		return ETIMEDOUT;
	ts = fp_abs_timespec(deadline);
	return pthread_cond_timedwait(c, m, &ts);
}
