/*
 * fp_debug_peer MODE — a process that prints FLTPORT_DEBUG lines and exits
 * (tests/integration/test_debug.c; run it with FLTPORT_DEBUG=1).  Its lines
 * come from fltport_name_valid() on a name one byte too long.
 *
 * stuck N: stderr on a full pipe nobody reads (tests/common/jam.h), N debug
 *   lines, then prints EXITING and returns from main: exit must not hang on
 *   the lines it could not write.
 * flush: stderr onto stdout, one debug line, then returns from main at
 *   once: the line must still come out (written at exit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fltport/port.h>

#include "jam.h"
#include "testutil.h"

static void debug_line(void)
{
	char name[FLTPORT_NAME_MAX + 2];

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	(void)fltport_name_valid(name);
}

int main(int argc, char **argv)
{
	struct tu_jam jam;

	if (argc == 3 && strcmp(argv[1], "stuck") == 0) {
		alarm(60); /* its test kills it; this if the test died first */
		tu_jam_stderr(&jam);
		for (long i = atol(argv[2]); i > 0; i--)
			debug_line();
		tu_say("EXITING");
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "flush") == 0) {
		if (dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
			return 3;
		debug_line();
		return 0;
	}
	fprintf(stderr, "usage: fp_debug_peer stuck <n> | flush\n");
	return 2;
}
