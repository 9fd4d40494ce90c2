/*
 * fltport Windows layer: the MSVC runtime's "secure" string functions and
 * the few MSVC-only C runtime calls that port services use (included by
 * windows.h; in libfltport-win).
 *
 * Parameter errors follow MSVC: the destination (when there is one) gets
 * "", then the invalid-parameter handler runs.  The default handler ends
 * the process as MSVC's does (one line on stderr if it has room, then abort()); with a
 * handler installed by _set_invalid_parameter_handler() that returns, the
 * call returns EINVAL or ERANGE (sprintf_s & co.: -1).
 *
 * Formats follow MSVC's rules, as StringCchPrintf's (strsafe.h): in the
 * wide functions %s is a wide string, %S a narrow one; %ws/%ls wide and %hs
 * narrow everywhere; I64 and ll 64-bit, l 32-bit.
 */
#ifndef FLTPORT_CRT_H
#define FLTPORT_CRT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <wchar.h>

#include "fltport_wintypes.h"

#ifndef _ERRNO_T_DEFINED
#define _ERRNO_T_DEFINED
typedef int errno_t;
#endif
#ifndef _RSIZE_T_DEFINED
#define _RSIZE_T_DEFINED
typedef size_t rsize_t;
#endif
#define _TRUNCATE ((size_t)-1)
#define STRUNCATE 80
#define _NLSCMPERROR 2147483647 /* _stricmp & co. given NULL */
#ifndef _countof
#define _countof(a) (sizeof(a) / sizeof((a)[0]))
#endif

typedef void (*_invalid_parameter_handler)(const wchar_t *expression, const wchar_t *function,
					   const wchar_t *file, unsigned int line,
					   uintptr_t reserved);
/* Install a handler (NULL: the default, which ends the process); returns
 * the previous one (NULL for the default). */
FLTPORT_WINAPI _invalid_parameter_handler
_set_invalid_parameter_handler(_invalid_parameter_handler handler);
FLTPORT_WINAPI _invalid_parameter_handler _get_invalid_parameter_handler(void);

FLTPORT_WINAPI errno_t strcpy_s(char *dest, rsize_t size, const char *src);
FLTPORT_WINAPI errno_t strncpy_s(char *dest, rsize_t size, const char *src, rsize_t count);
FLTPORT_WINAPI errno_t strcat_s(char *dest, rsize_t size, const char *src);
FLTPORT_WINAPI errno_t strncat_s(char *dest, rsize_t size, const char *src, rsize_t count);
FLTPORT_WINAPI errno_t wcscpy_s(wchar_t *dest, rsize_t size, const wchar_t *src);
FLTPORT_WINAPI errno_t wcsncpy_s(wchar_t *dest, rsize_t size, const wchar_t *src, rsize_t count);
FLTPORT_WINAPI errno_t wcscat_s(wchar_t *dest, rsize_t size, const wchar_t *src);
FLTPORT_WINAPI errno_t wcsncat_s(wchar_t *dest, rsize_t size, const wchar_t *src, rsize_t count);
FLTPORT_WINAPI errno_t memcpy_s(void *dest, rsize_t size, const void *src, rsize_t count);
FLTPORT_WINAPI errno_t memmove_s(void *dest, rsize_t size, const void *src, rsize_t count);

/* sprintf_s family: the characters written (without the terminator), or
 * -1.  _snprintf_s / _snwprintf_s with count _TRUNCATE: as much as fits,
 * -1 when cut.  _snprintf / _snwprintf (not secure): at most count
 * characters, terminated only if there is room, -1 when cut. */
FLTPORT_WINAPI int sprintf_s(char *buf, size_t size, const char *fmt, ...);
FLTPORT_WINAPI int vsprintf_s(char *buf, size_t size, const char *fmt, va_list ap);
FLTPORT_WINAPI int _snprintf_s(char *buf, size_t size, size_t count, const char *fmt, ...);
FLTPORT_WINAPI int _vsnprintf_s(char *buf, size_t size, size_t count, const char *fmt, va_list ap);
FLTPORT_WINAPI int _snprintf(char *buf, size_t count, const char *fmt, ...);
FLTPORT_WINAPI int _vsnprintf(char *buf, size_t count, const char *fmt, va_list ap);
FLTPORT_WINAPI int swprintf_s(wchar_t *buf, size_t size, const wchar_t *fmt, ...);
FLTPORT_WINAPI int vswprintf_s(wchar_t *buf, size_t size, const wchar_t *fmt, va_list ap);
FLTPORT_WINAPI int _snwprintf_s(wchar_t *buf, size_t size, size_t count, const wchar_t *fmt, ...);
FLTPORT_WINAPI int _vsnwprintf_s(wchar_t *buf, size_t size, size_t count, const wchar_t *fmt,
				 va_list ap);
FLTPORT_WINAPI int _snwprintf(wchar_t *buf, size_t count, const wchar_t *fmt, ...);
FLTPORT_WINAPI int _vsnwprintf(wchar_t *buf, size_t count, const wchar_t *fmt, va_list ap);

/* Case-insensitive comparisons (ASCII letters, as in the "C" locale; wide:
 * towlower), _strdup, _wcsdup, strtok_s, wcstok_s. */
FLTPORT_WINAPI int _stricmp(const char *a, const char *b);
FLTPORT_WINAPI int _strnicmp(const char *a, const char *b, size_t n);
FLTPORT_WINAPI int _wcsicmp(const wchar_t *a, const wchar_t *b);
FLTPORT_WINAPI int _wcsnicmp(const wchar_t *a, const wchar_t *b, size_t n);
FLTPORT_WINAPI char *_strdup(const char *s);
FLTPORT_WINAPI wchar_t *_wcsdup(const wchar_t *s);
FLTPORT_WINAPI char *strtok_s(char *str, const char *delim, char **context);
FLTPORT_WINAPI wchar_t *wcstok_s(wchar_t *str, const wchar_t *delim, wchar_t **context);

/* fopen_s: 0 with *pFile set, or the errno (*pFile NULL). _wfopen(_s): a
 * wide name and mode (UTF-8 underneath). */
FLTPORT_WINAPI errno_t fopen_s(FILE **pFile, const char *name, const char *mode);
FLTPORT_WINAPI FILE *_wfopen(const wchar_t *name, const wchar_t *mode);
FLTPORT_WINAPI errno_t _wfopen_s(FILE **pFile, const wchar_t *name, const wchar_t *mode);

#endif /* FLTPORT_CRT_H */
