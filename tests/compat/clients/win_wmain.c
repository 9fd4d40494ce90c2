/*
 * win_wmain — a Windows console program that starts at wmain (with MSVC's
 * optional envp) and has no main: on Linux it links libfltport-wmain, whose
 * main calls it (src/wmain/wmain.c).  For test_compat_services.c; the same source
 * cross-compiles with mingw-w64 (-municode).
 *
 *   win_wmain ARG...   prints "ARGC n", one "ARG i" line per argument with
 *                      its code points in hex, "ENV name=1" if envp holds
 *                      WIN_WMAIN_PROBE, and exits with 40 + argc.
 */
#include <windows.h>

#include <stdio.h>
#include <wchar.h>

int __cdecl wmain(int argc, wchar_t *argv[], wchar_t *envp[]);

int __cdecl wmain(int argc, wchar_t *argv[], wchar_t *envp[])
{
	int found = 0;

	printf("ARGC %d\n", argc);
	for (int i = 1; i < argc; i++) {
		printf("ARG %d", i);
		for (const wchar_t *p = argv[i]; *p; p++)
			printf(" %X", (unsigned)*p);
		printf("\n");
	}
	for (int i = 0; envp && envp[i]; i++)
		if (wcsncmp(envp[i], L"WIN_WMAIN_PROBE=", 16) == 0)
			found = 1;
	printf("ENV WIN_WMAIN_PROBE=%d\n", found);
	fflush(stdout);
	return 40 + argc;
}
