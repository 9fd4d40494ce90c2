/*
 * The rest of the Win32 subset for minispy-style programs: process exit,
 * the system directory, time conversions, code pages, full path names.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>
#include <wctype.h>

#include "compat/compat.h"
#include "compat/wfmt.h"

FLTPORT_WINAPI void ExitProcess(UINT code)
{
	exit((int)code);
}

/* ---- clocks ---- */

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

FLTPORT_WINAPI ULONGLONG GetTickCount64(void)
{
	return clock_ns(CLOCK_BOOTTIME) / 1000000u;
}

FLTPORT_WINAPI DWORD GetTickCount(void)
{
	return (DWORD)GetTickCount64();
}

FLTPORT_WINAPI BOOL QueryPerformanceCounter(LARGE_INTEGER *count)
{
	if (!count) {
		SetLastError(ERROR_NOACCESS);
		return FALSE;
	}
	count->QuadPart = (LONGLONG)(clock_ns(CLOCK_MONOTONIC) / 100u);
	return TRUE;
}

FLTPORT_WINAPI BOOL QueryPerformanceFrequency(LARGE_INTEGER *freq)
{
	if (!freq) {
		SetLastError(ERROR_NOACCESS);
		return FALSE;
	}
	freq->QuadPart = 10000000;
	return TRUE;
}

/* ---- system directory ---- */

/* No Windows directory exists: the library directory is the nearest thing,
 * and LoadLibrary(Ex) only looks at the base name of what is built from it. */
static const char system_dir[] = "/usr/lib";

FLTPORT_WINAPI UINT GetSystemDirectoryA(LPSTR buf, UINT size)
{
	UINT n = (UINT)strlen(system_dir);

	if (!buf || size < n + 1)
		return n + 1;
	memcpy(buf, system_dir, n + 1);
	return n;
}

FLTPORT_WINAPI UINT GetSystemDirectoryW(LPWSTR buf, UINT size)
{
	UINT n = (UINT)strlen(system_dir);

	if (!buf || size < n + 1)
		return n + 1;
	for (UINT i = 0; i <= n; i++)
		buf[i] = (WCHAR)system_dir[i];
	return n;
}

/* ---- time ---- */

#define TICKS_PER_SECOND 10000000LL
#define TICKS_PER_DAY (86400LL * TICKS_PER_SECOND)
#define UNIX_EPOCH_TICKS 116444736000000000LL /* 1970-01-01 as a FILETIME */
#define DAYS_1601_TO_1970 134774LL

static long long ft_get(const FILETIME *f)
{
	return (long long)(((unsigned long long)f->dwHighDateTime << 32) | f->dwLowDateTime);
}

static void ft_set(FILETIME *f, long long v)
{
	f->dwLowDateTime = (DWORD)((unsigned long long)v & 0xFFFFFFFFu);
	f->dwHighDateTime = (DWORD)((unsigned long long)v >> 32);
}

FLTPORT_WINAPI void GetSystemTimeAsFileTime(LPFILETIME ft)
{
	struct timespec ts;
	long long v;

	clock_gettime(CLOCK_REALTIME, &ts);
	v = UNIX_EPOCH_TICKS + (long long)ts.tv_sec * TICKS_PER_SECOND + ts.tv_nsec / 100;
	ft_set(ft, v < 0 ? 0 : v);
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and back: the
 * calendar counted in 400-year eras of 146097 days that start on March 1st,
 * so that the leap day is the last day of a year. */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	long long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(long long z, long long *y, unsigned *m, unsigned *d)
{
	long long era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	*m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

FLTPORT_WINAPI BOOL FileTimeToSystemTime(const FILETIME *ft, LPSYSTEMTIME st)
{
	long long v, days, rem, y;
	unsigned m, d;

	if (!ft || !st || (v = ft_get(ft)) < 0) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	days = v / TICKS_PER_DAY;
	rem = v % TICKS_PER_DAY;
	civil_from_days(days - DAYS_1601_TO_1970, &y, &m, &d);
	st->wYear = (WORD)y;
	st->wMonth = (WORD)m;
	st->wDay = (WORD)d;
	st->wDayOfWeek = (WORD)((days + 1) % 7); /* 1601-01-01 was a Monday */
	st->wHour = (WORD)(rem / (3600 * TICKS_PER_SECOND));
	st->wMinute = (WORD)(rem / (60 * TICKS_PER_SECOND) % 60);
	st->wSecond = (WORD)(rem / TICKS_PER_SECOND % 60);
	st->wMilliseconds = (WORD)(rem / 10000 % 1000);
	return TRUE;
}

static bool leap(unsigned y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

FLTPORT_WINAPI BOOL SystemTimeToFileTime(const SYSTEMTIME *st, LPFILETIME ft)
{
	static const unsigned char mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	long long days;

	if (!st || !ft || st->wYear < 1601 || st->wYear > 30827 || st->wMonth < 1 ||
	    st->wMonth > 12 || st->wDay < 1 ||
	    st->wDay > mdays[st->wMonth - 1] + (st->wMonth == 2 && leap(st->wYear)) ||
	    st->wHour > 23 || st->wMinute > 59 || st->wSecond > 59 || st->wMilliseconds > 999) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	days = days_from_civil(st->wYear, st->wMonth, st->wDay) + DAYS_1601_TO_1970;
	ft_set(ft,
	       days * TICKS_PER_DAY +
		       ((st->wHour * 60LL + st->wMinute) * 60 + st->wSecond) * TICKS_PER_SECOND +
		       st->wMilliseconds * 10000LL);
	return TRUE;
}

/* Seconds east of UTC now, by the TZ rules. */
static long local_offset(void)
{
	struct tm tm;
	time_t now = time(NULL);

	tzset();
	if (!localtime_r(&now, &tm))
		return 0;
	return tm.tm_gmtoff;
}

static BOOL shift(const FILETIME *in, LPFILETIME out, long seconds)
{
	long long v, d = (long long)seconds * TICKS_PER_SECOND;

	if (!in || !out || (v = ft_get(in)) < 0 || (d > 0 && v > LLONG_MAX - d) || v + d < 0) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	ft_set(out, v + d);
	return TRUE;
}

FLTPORT_WINAPI BOOL FileTimeToLocalFileTime(const FILETIME *ft, LPFILETIME local)
{
	return shift(ft, local, local_offset());
}

FLTPORT_WINAPI BOOL LocalFileTimeToFileTime(const FILETIME *local, LPFILETIME ft)
{
	return shift(local, ft, -local_offset());
}

FLTPORT_WINAPI void GetSystemTime(LPSYSTEMTIME st)
{
	FILETIME ft;

	GetSystemTimeAsFileTime(&ft);
	FileTimeToSystemTime(&ft, st);
}

FLTPORT_WINAPI void GetLocalTime(LPSYSTEMTIME st)
{
	FILETIME ft, local;

	GetSystemTimeAsFileTime(&ft);
	if (!FileTimeToLocalFileTime(&ft, &local))
		local = ft;
	FileTimeToSystemTime(&local, st);
}

/* ---- code pages ---- */

static bool utf8_code_page(UINT cp)
{
	return cp == CP_ACP || cp == CP_OEMCP || cp == CP_THREAD_ACP || cp == CP_UTF8;
}

FLTPORT_WINAPI int MultiByteToWideChar(UINT cp, DWORD flags, LPCCH src, int n, LPWSTR dst, int cap)
{
	DWORD allowed = cp == CP_UTF8 ? MB_ERR_INVALID_CHARS
				      : MB_PRECOMPOSED | MB_COMPOSITE | MB_USEGLYPHCHARS |
						MB_ERR_INVALID_CHARS;
	bool strict = (flags & MB_ERR_INVALID_CHARS) != 0;
	size_t len;
	ssize_t need;

	if (!utf8_code_page(cp) || !src || n == 0 || n < -1 || cap < 0 || (cap > 0 && !dst) ||
	    (dst && (const void *)src == (const void *)dst)) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return 0;
	}
	if (flags & ~allowed) {
		SetLastError(ERROR_INVALID_FLAGS);
		return 0;
	}
	len = n == -1 ? strlen(src) + 1 : (size_t)n;
	need = fpw_utf8_to_wide(src, len, NULL, 0, strict);
	if (need < 0) {
		SetLastError(ERROR_NO_UNICODE_TRANSLATION);
		return 0;
	}
	if (cap == 0)
		return (int)need;
	if (need > cap) {
		SetLastError(ERROR_INSUFFICIENT_BUFFER);
		return 0;
	}
	fpw_utf8_to_wide(src, len, dst, (size_t)cap, strict);
	return (int)need;
}

FLTPORT_WINAPI int WideCharToMultiByte(UINT cp, DWORD flags, LPCWCH src, int n, LPSTR dst, int cap,
				       LPCCH defchar, LPBOOL used)
{
	DWORD allowed = cp == CP_UTF8
				? WC_ERR_INVALID_CHARS
				: WC_COMPOSITECHECK | WC_DISCARDNS | WC_SEPCHARS | WC_DEFAULTCHAR |
					  WC_NO_BEST_FIT_CHARS | WC_ERR_INVALID_CHARS;
	bool strict = (flags & WC_ERR_INVALID_CHARS) != 0;
	size_t len;
	ssize_t need;

	if (!utf8_code_page(cp) || !src || n == 0 || n < -1 || cap < 0 || (cap > 0 && !dst) ||
	    (dst && (const void *)src == (const void *)dst) ||
	    (cp == CP_UTF8 && (defchar || used))) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return 0;
	}
	if (flags & ~allowed) {
		SetLastError(ERROR_INVALID_FLAGS);
		return 0;
	}
	len = n == -1 ? wcslen(src) + 1 : (size_t)n;
	need = fpw_wide_to_utf8(src, len, NULL, 0, strict);
	if (need < 0) {
		SetLastError(ERROR_NO_UNICODE_TRANSLATION);
		return 0;
	}
	if (need > INT_MAX) {
		SetLastError(ERROR_ARITHMETIC_OVERFLOW);
		return 0;
	}
	if (cap != 0 && need > cap) {
		SetLastError(ERROR_INSUFFICIENT_BUFFER);
		return 0;
	}
	if (cap != 0)
		fpw_wide_to_utf8(src, len, dst, (size_t)cap, strict);
	if (used) /* an invalid character was replaced (by U+FFFD) */
		*used = fpw_wide_to_utf8(src, len, NULL, 0, true) < 0;
	return (int)need;
}

/* ---- full path names ---- */

/* Longest result, in characters (Windows' limit for long paths). */
#define FPW_FULL_PATH_MAX 32767u

static bool is_sep(char c)
{
	return c == '/' || c == '\\';
}

static DWORD errno_to_win32(int e)
{
	switch (e) {
	case ENOENT:
		return ERROR_FILE_NOT_FOUND;
	case EACCES:
		return ERROR_ACCESS_DENIED;
	case ENOMEM:
		return ERROR_NOT_ENOUGH_MEMORY;
	case ENAMETOOLONG:
		return ERROR_FILENAME_EXCED_RANGE;
	default:
		return ERROR_GEN_FAILURE;
	}
}

/* The full path of `name` (UTF-8) as a malloc'ed string, or NULL with the
 * last error set.  Components are resolved on a copy, in place: `out`
 * grows by a component and shrinks back to the previous '/' on "..". */
static char *full_path(const char *name)
{
	char *cwd = NULL, *out;
	size_t nlen = strlen(name), clen = 0, o = 0;
	const char *parts[2];
	size_t lens[2];

	if (!is_sep(name[0])) {
		cwd = getcwd(NULL, 0);
		if (!cwd) {
			SetLastError(errno_to_win32(errno));
			return NULL;
		}
		clen = strlen(cwd);
	}
	out = malloc(clen + nlen + 3);
	if (!out) {
		free(cwd);
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return NULL;
	}
	parts[0] = cwd ? cwd : "";
	lens[0] = clen;
	parts[1] = name;
	lens[1] = nlen;
	out[o++] = '/';
	for (int p = 0; p < 2; p++) {
		size_t i = 0;

		while (i < lens[p]) {
			size_t start, len;

			while (i < lens[p] && is_sep(parts[p][i]))
				i++;
			start = i;
			while (i < lens[p] && !is_sep(parts[p][i]))
				i++;
			len = i - start;
			if (len == 0 || (len == 1 && parts[p][start] == '.'))
				continue;
			if (len == 2 && parts[p][start] == '.' && parts[p][start + 1] == '.') {
				while (o > 1 && out[o - 1] != '/')
					o--;
				if (o > 1)
					o--; /* the '/' before the dropped component */
				continue;
			}
			if (o > 1)
				out[o++] = '/';
			memcpy(out + o, parts[p] + start, len);
			o += len;
		}
	}
	/* A trailing separator stays (the name is then a directory). */
	if (o > 1 && nlen && is_sep(name[nlen - 1]))
		out[o++] = '/';
	out[o] = '\0';
	free(cwd);
	return out;
}

/* Store a result of n units (+ terminator) if it fits: Windows' return. */
static DWORD path_result(DWORD n, DWORD cap)
{
	if (n > FPW_FULL_PATH_MAX) {
		SetLastError(ERROR_FILENAME_EXCED_RANGE);
		return 0;
	}
	return n + 1 > cap ? n + 1 : n;
}

FLTPORT_WINAPI DWORD GetFullPathNameA(LPCSTR name, DWORD cap, LPSTR buf, LPSTR *file_part)
{
	char *full, *slash;
	DWORD n, r;

	if (!name) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return 0;
	}
	if (!name[0]) {
		SetLastError(ERROR_INVALID_NAME);
		return 0;
	}
	full = full_path(name);
	if (!full)
		return 0;
	n = (DWORD)strlen(full);
	r = path_result(n, buf ? cap : 0);
	if (r == n) {
		memcpy(buf, full, n + 1);
		slash = strrchr(buf, '/');
		if (file_part)
			*file_part = slash[1] ? slash + 1 : NULL;
	}
	free(full);
	return r;
}

FLTPORT_WINAPI DWORD GetFullPathNameW(LPCWSTR name, DWORD cap, LPWSTR buf, LPWSTR *file_part)
{
	char *narrow, *full;
	ssize_t need;
	size_t len;
	DWORD n, r;

	if (!name) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return 0;
	}
	if (!name[0]) {
		SetLastError(ERROR_INVALID_NAME);
		return 0;
	}
	len = wcslen(name);
	if (len > FPW_FULL_PATH_MAX) {
		SetLastError(ERROR_FILENAME_EXCED_RANGE);
		return 0;
	}
	need = fpw_wide_to_utf8(name, len, NULL, 0, true);
	if (need < 0) {
		SetLastError(ERROR_INVALID_NAME);
		return 0;
	}
	narrow = malloc((size_t)need + 1);
	if (!narrow) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return 0;
	}
	fpw_wide_to_utf8(name, len, narrow, (size_t)need, true);
	narrow[need] = '\0';
	full = full_path(narrow);
	free(narrow);
	if (!full)
		return 0;
	need = fpw_utf8_to_wide(full, strlen(full), NULL, 0, false);
	n = (DWORD)need;
	r = path_result(n, buf ? cap : 0);
	if (r == n) {
		WCHAR *slash;

		fpw_utf8_to_wide(full, strlen(full), buf, n, false);
		buf[n] = L'\0';
		slash = wcsrchr(buf, L'/');
		if (file_part)
			*file_part = slash[1] ? slash + 1 : NULL;
	}
	free(full);
	return r;
}

/* ---- kernel32 string routines (fltport_win32.h) ---- */

FLTPORT_WINAPI int lstrlenA(LPCSTR s)
{
	size_t n = s ? strlen(s) : 0;

	return n > INT_MAX ? INT_MAX : (int)n;
}

FLTPORT_WINAPI int lstrlenW(LPCWSTR s)
{
	size_t n = s ? wcslen(s) : 0;

	return n > INT_MAX ? INT_MAX : (int)n;
}

FLTPORT_WINAPI LPSTR lstrcpyA(LPSTR d, LPCSTR s)
{
	return d && s ? strcpy(d, s) : NULL;
}

FLTPORT_WINAPI LPWSTR lstrcpyW(LPWSTR d, LPCWSTR s)
{
	return d && s ? wcscpy(d, s) : NULL;
}

FLTPORT_WINAPI LPSTR lstrcpynA(LPSTR d, LPCSTR s, int max)
{
	int i = 0;

	if (!d || !s)
		return NULL;
	if (max <= 0)
		return d;
	for (; i < max - 1 && s[i]; i++)
		d[i] = s[i];
	d[i] = '\0';
	return d;
}

FLTPORT_WINAPI LPWSTR lstrcpynW(LPWSTR d, LPCWSTR s, int max)
{
	int i = 0;

	if (!d || !s)
		return NULL;
	if (max <= 0)
		return d;
	for (; i < max - 1 && s[i]; i++)
		d[i] = s[i];
	d[i] = L'\0';
	return d;
}

FLTPORT_WINAPI LPSTR lstrcatA(LPSTR d, LPCSTR s)
{
	return d && s ? strcat(d, s) : NULL;
}

FLTPORT_WINAPI LPWSTR lstrcatW(LPWSTR d, LPCWSTR s)
{
	return d && s ? wcscat(d, s) : NULL;
}

static int sign_of(long long v)
{
	return v < 0 ? -1 : v > 0;
}

/* NULL first, then by code point (after fpw_towlower when `fold`). */
static int lstr_cmp(const void *a, const void *b, bool wide, bool fold)
{
	if (!a || !b)
		return a ? 1 : b ? -1 : 0;
	for (size_t i = 0;; i++) {
		long long x = wide ? (long long)((const wchar_t *)a)[i]
				   : (long long)((const unsigned char *)a)[i];
		long long y = wide ? (long long)((const wchar_t *)b)[i]
				   : (long long)((const unsigned char *)b)[i];

		if (fold) {
			x = wide ? (long long)fpw_towlower((wint_t)x) : (long long)tolower((int)x);
			y = wide ? (long long)fpw_towlower((wint_t)y) : (long long)tolower((int)y);
		}
		if (x != y || !x)
			return sign_of(x - y);
	}
}

FLTPORT_WINAPI int lstrcmpA(LPCSTR a, LPCSTR b)
{
	return lstr_cmp(a, b, false, false);
}

FLTPORT_WINAPI int lstrcmpW(LPCWSTR a, LPCWSTR b)
{
	return lstr_cmp(a, b, true, false);
}

FLTPORT_WINAPI int lstrcmpiA(LPCSTR a, LPCSTR b)
{
	return lstr_cmp(a, b, false, true);
}

FLTPORT_WINAPI int lstrcmpiW(LPCWSTR a, LPCWSTR b)
{
	return lstr_cmp(a, b, true, true);
}
