/* Opt-in diagnostics: one line on stderr when FLTPORT_DEBUG=1. */
#ifndef FP_DEBUG_H
#define FP_DEBUG_H

#include <stdbool.h>

bool fp_debug_on(void);
void fp_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
