/*
 * A tiny program built against the *installed* fltport (headers, library
 * and pkg-config file) by .ci/run, to prove that an outside user can build
 * with `pkg-config --cflags --libs fltport` alone.  Not part of the CMake
 * build.  Exits 0 on success.
 */
#include <fltport/port.h>

#include <errno.h>
#include <stdio.h>

static int check(const char *what, int got, int want)
{
	if (got != want) {
		fprintf(stderr, "consumer: %s: got %d, want %d\n", what, got, want);
		return 1;
	}
	return 0;
}

int main(void)
{
	int bad = 0;

	bad |= check("fltport_name_valid(\"\\\\ScannerPort\")", fltport_name_valid("\\ScannerPort"),
		     0);
	bad |= check("fltport_name_valid(\"a/b\")", fltport_name_valid("a/b"), -EINVAL);
	const char *text = fltport_strerror(-ENOENT);
	if (!text || !*text) {
		fprintf(stderr, "consumer: fltport_strerror(-ENOENT) gave no text\n");
		return 1;
	}
	printf("consumer: fltport_strerror(-ENOENT) = \"%s\"\n", text);
	if (bad)
		return 1;
	printf("consumer: OK (wire version %u)\n", FLTPORT_WIRE_VERSION);
	return 0;
}
