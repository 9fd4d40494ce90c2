/*
 * Opt-in diagnostics: one line on stderr per call when FLTPORT_DEBUG=1.
 *
 * A call never blocks on stderr: the line is copied into a bounded ring
 * (no allocation, one short critical section under a leaf lock) and a
 * drain thread of its own, started on the first line, writes it.  When the
 * ring is full the line is dropped and counted (fltport_debug_dropped()).
 * Any thread may call these, holding any lock.  Without FLTPORT_DEBUG=1
 * nothing is queued and no thread is started.
 */
#ifndef FP_DEBUG_H
#define FP_DEBUG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

bool fp_debug_on(void);

/* "fltport[<pid>]: <text>", if fp_debug_on(). */
void fp_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "fltport[<tag><pid>]: <text>", always: the caller checked fp_debug_on()
 * (or its own cached copy of it). */
void fp_debug_vtag(const char *tag, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* Wait at most timeout_ns for every line queued so far to be written.
 * True if they were (or none was queued).  For exit and for tests that read
 * stderr back; never called on a path that must not wait. */
bool fp_debug_flush(int64_t timeout_ns);

#endif
