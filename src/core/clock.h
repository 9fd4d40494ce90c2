/* Deadlines: absolute CLOCK_MONOTONIC nanoseconds; FP_NEVER for none. */
#ifndef FP_CLOCK_H
#define FP_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define FP_NEVER INT64_MAX

int64_t fp_now(void);

/* Relative timeout (FLTPORT_INFINITE, 0, > 0) to an absolute deadline. */
int64_t fp_deadline(int64_t timeout_ns);

/* Milliseconds left until `deadline` for poll(): -1 for FP_NEVER, 0 if past;
 * rounded up so that a wait never ends before the deadline. */
int fp_poll_ms(int64_t deadline);

struct timespec fp_abs_timespec(int64_t deadline);

/* Condition variables of this library use CLOCK_MONOTONIC. */
void fp_cond_init(pthread_cond_t *c);

/* Wait on `c` until signalled or `deadline` passes.  Returns 0 or ETIMEDOUT
 * (positive, as pthreads do). */
int fp_cond_wait(pthread_cond_t *c, pthread_mutex_t *m, int64_t deadline);

#endif
