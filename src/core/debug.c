#include "core/debug.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool fp_debug_on(void)
{
	const char *v = getenv("FLTPORT_DEBUG");

	return v && strcmp(v, "1") == 0;
}

void fp_debug(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	if (!fp_debug_on())
		return;
	n = snprintf(line, sizeof(line), "fltport[%d]: ", (int)getpid());
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
}
