/*
 * libfltport-wmain — the entry point of a Windows program that starts at
 * wmain (or _tmain with _UNICODE) and has no main.  Linux starts every
 * program at main(): link this static library (-lfltport-wmain, as
 * mingw-w64 wants -municode for the same program) and its main calls the
 * program's wmain with the arguments and the environment decoded from UTF-8
 * (as Windows hands a console program its wide command line).  A program
 * linked with it that has no wmain does not link.
 *
 * Not part of libfltport-win itself: a main there would also replace the
 * main that a program takes from another library (a test framework's, a
 * toolkit's).
 */
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

#include "compat/wname.h"

/* The program's (C, or C++ through windows.h's or tchar.h's extern "C"
 * declaration).  A strong reference: a program linked with this library
 * and no wmain fails to link (rather than failing at run time), and a wmain
 * inside a static library of the program's is found.  The third argument is
 * MSVC's optional envp. */
extern int wmain(int argc, wchar_t **argv, wchar_t **envp);

extern char **environ;

int main(int argc, char **argv);

/* Kept for the life of the process, as the C runtime keeps argv (not
 * static: a store only this file could read would be optimised away, and
 * the blocks would look leaked at exit). */
extern wchar_t **fltport_wmain_argv, **fltport_wmain_envp;
wchar_t **fltport_wmain_argv, **fltport_wmain_envp;

/* A NULL-terminated wide copy of a NULL-terminated vector, one block. */
static wchar_t **widen(char *const *v)
{
	size_t n = 0, chars = 0;
	wchar_t **out, *p;

	for (; v && v[n]; n++)
		chars += fpw_utf8_to_wname(v[n], NULL, 0) + 1;
	out = malloc((n + 1) * sizeof(*out) + chars * sizeof(wchar_t));
	if (!out)
		return NULL;
	p = (wchar_t *)(out + n + 1);
	for (size_t i = 0; i < n; i++) {
		size_t len = fpw_utf8_to_wname(v[i], NULL, 0);

		fpw_utf8_to_wname(v[i], p, len);
		p[len] = L'\0';
		out[i] = p;
		p += len + 1;
	}
	out[n] = NULL;
	return out;
}

int main(int argc, char **argv)
{
	fltport_wmain_argv = widen(argv);
	fltport_wmain_envp = widen(environ);
	if (!fltport_wmain_argv || !fltport_wmain_envp) {
		fputs("libfltport-wmain: out of memory for wmain's arguments\n", stderr);
		return 127;
	}
	return wmain(argc, fltport_wmain_argv, fltport_wmain_envp);
}
