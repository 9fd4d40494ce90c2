/*
 * The MSVC runtime's secure string functions and MSVC-only C runtime calls
 * (fltport_crt.h).  Formatting goes through wfmt.c, with MSVC's rules.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "compat/compat.h"
#include "compat/wfmt.h"

static _invalid_parameter_handler handler; /* NULL: the default */
static pthread_mutex_t handler_lock = PTHREAD_MUTEX_INITIALIZER;

FLTPORT_WINAPI _invalid_parameter_handler
_set_invalid_parameter_handler(_invalid_parameter_handler h)
{
	_invalid_parameter_handler old;

	pthread_mutex_lock(&handler_lock);
	old = handler;
	handler = h;
	pthread_mutex_unlock(&handler_lock);
	return old;
}

FLTPORT_WINAPI _invalid_parameter_handler _get_invalid_parameter_handler(void)
{
	_invalid_parameter_handler h;

	pthread_mutex_lock(&handler_lock);
	h = handler;
	pthread_mutex_unlock(&handler_lock);
	return h;
}

/* A parameter error in `func`: the handler runs; the default ends the
 * process, as MSVC's does.  Returns err for the caller to return. */
static errno_t invalid(const char *func, errno_t err)
{
	_invalid_parameter_handler h = _get_invalid_parameter_handler();

	if (!h) {
		char prefix[64];

		snprintf(prefix, sizeof(prefix), "fltport: %s", func);
		fpw_stderr_line(prefix, ": invalid parameter (the MSVC runtime ends the process "
					"here; _set_invalid_parameter_handler() can change that)");
		abort();
	}
	errno = err;
	h(NULL, NULL, NULL, 0, 0);
	return err;
}

/* ---- copies and concatenations, narrow and wide ---- */

/* One implementation for both widths: units of `w` bytes. */
struct units {
	void *p;
	size_t w;
};

static size_t ulen(const void *s, size_t w, size_t max)
{
	size_t n = 0;

	if (w == 1) {
		const char *c = s;

		while (n < max && c[n])
			n++;
	} else {
		const wchar_t *c = s;

		while (n < max && c[n])
			n++;
	}
	return n;
}

static void uput(void *d, size_t w, size_t i, const void *src, size_t n)
{
	if (n)
		memmove((char *)d + i * w, src, n * w);
	memset((char *)d + (i + n) * w, 0, w); /* the terminator */
}

/*
 * strncpy_s / strncat_s and their wide forms (count SIZE_MAX - 1 for the
 * non-N ones: "all of src"); `at` is where src goes (0: copy; the
 * destination's length: append).
 */
static errno_t copy_s(const char *func, void *dest, size_t w, rsize_t size, const void *src,
		      rsize_t count, bool append, bool counted)
{
	size_t at = 0, n;

	if (counted && !dest && size == 0 && count == 0)
		return 0;
	if (!dest || size == 0)
		return invalid(func, EINVAL);
	if (append) {
		at = ulen(dest, w, size);
		if (at == size) { /* not terminated within its size */
			uput(dest, w, 0, src, 0);
			return invalid(func, EINVAL);
		}
	}
	if (!src) {
		if (counted && count == 0) {
			uput(dest, w, at, src, 0);
			return 0;
		}
		uput(dest, w, 0, src, 0);
		return invalid(func, EINVAL);
	}
	n = ulen(src, w, counted && count != _TRUNCATE ? count : SIZE_MAX);
	if (at + n >= size) {
		if (counted && count == _TRUNCATE) {
			uput(dest, w, at, src, size - 1 - at);
			return STRUNCATE;
		}
		uput(dest, w, 0, src, 0);
		return invalid(func, ERANGE);
	}
	uput(dest, w, at, src, n);
	return 0;
}

FLTPORT_WINAPI errno_t strcpy_s(char *d, rsize_t size, const char *s)
{
	return copy_s("strcpy_s", d, 1, size, s, 0, false, false);
}

FLTPORT_WINAPI errno_t strncpy_s(char *d, rsize_t size, const char *s, rsize_t count)
{
	return copy_s("strncpy_s", d, 1, size, s, count, false, true);
}

FLTPORT_WINAPI errno_t strcat_s(char *d, rsize_t size, const char *s)
{
	return copy_s("strcat_s", d, 1, size, s, 0, true, false);
}

FLTPORT_WINAPI errno_t strncat_s(char *d, rsize_t size, const char *s, rsize_t count)
{
	return copy_s("strncat_s", d, 1, size, s, count, true, true);
}

FLTPORT_WINAPI errno_t wcscpy_s(wchar_t *d, rsize_t size, const wchar_t *s)
{
	return copy_s("wcscpy_s", d, sizeof(wchar_t), size, s, 0, false, false);
}

FLTPORT_WINAPI errno_t wcsncpy_s(wchar_t *d, rsize_t size, const wchar_t *s, rsize_t count)
{
	return copy_s("wcsncpy_s", d, sizeof(wchar_t), size, s, count, false, true);
}

FLTPORT_WINAPI errno_t wcscat_s(wchar_t *d, rsize_t size, const wchar_t *s)
{
	return copy_s("wcscat_s", d, sizeof(wchar_t), size, s, 0, true, false);
}

FLTPORT_WINAPI errno_t wcsncat_s(wchar_t *d, rsize_t size, const wchar_t *s, rsize_t count)
{
	return copy_s("wcsncat_s", d, sizeof(wchar_t), size, s, count, true, true);
}

FLTPORT_WINAPI errno_t memcpy_s(void *d, rsize_t size, const void *s, rsize_t count)
{
	if (count == 0)
		return 0;
	if (!d)
		return invalid("memcpy_s", EINVAL);
	if (!s || count > size) {
		memset(d, 0, size); /* MSVC clears the destination */
		return invalid("memcpy_s", s ? ERANGE : EINVAL);
	}
	memcpy(d, s, count);
	return 0;
}

FLTPORT_WINAPI errno_t memmove_s(void *d, rsize_t size, const void *s, rsize_t count)
{
	if (count == 0)
		return 0;
	if (!d || !s)
		return invalid("memmove_s", EINVAL);
	if (count > size)
		return invalid("memmove_s", ERANGE);
	memmove(d, s, count);
	return 0;
}

/* ---- printf family ---- */

/* Format into buf (cap units with the terminator); the length the whole
 * output needs, and whether it fit. */
static size_t format(void *buf, bool wide, size_t cap, const void *fmt, va_list ap, bool *fit)
{
	struct fpw_sink sink;
	struct fpw_args args;
	va_list copy;

	va_copy(copy, ap);
	args = (struct fpw_args){ .ap = &copy };
	fpw_sink_init(&sink, wide, buf, cap);
	fpw_vformat(&sink, fmt, wide, &args);
	fpw_sink_end(&sink);
	va_end(copy);
	*fit = !sink.full;
	return sink.len;
}

static void term(void *buf, bool wide, size_t i)
{
	if (wide)
		((wchar_t *)buf)[i] = 0;
	else
		((char *)buf)[i] = 0;
}

/* _vsnprintf_s and its kin: count _TRUNCATE cuts to fit (-1 when cut);
 * otherwise at most count units must fit in size. */
static int vsnprintf_s_any(const char *func, void *buf, bool wide, size_t size, size_t count,
			   bool counted, const void *fmt, va_list ap)
{
	size_t limit, n;
	bool fit;

	/* _snprintf_s(NULL, 0, 0, ...): nothing to do, as in the UCRT. */
	if (counted && count == 0 && !buf && size == 0)
		return 0;
	if (!fmt || !buf || size == 0) {
		invalid(func, EINVAL);
		return -1;
	}
	limit = count == _TRUNCATE || count >= size ? size : count + 1;
	n = format(buf, wide, limit, fmt, ap, &fit);
	if (fit)
		return (int)n;
	if (count == _TRUNCATE || count < size)
		return -1; /* cut to fit (or to count units), terminated */
	term(buf, wide, 0);
	invalid(func, ERANGE);
	return -1;
}

FLTPORT_WINAPI int _vsnprintf_s(char *buf, size_t size, size_t count, const char *fmt, va_list ap)
{
	return vsnprintf_s_any("_vsnprintf_s", buf, false, size, count, true, fmt, ap);
}

FLTPORT_WINAPI int _snprintf_s(char *buf, size_t size, size_t count, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf_s_any("_snprintf_s", buf, false, size, count, true, fmt, ap);
	va_end(ap);
	return n;
}

FLTPORT_WINAPI int vsprintf_s(char *buf, size_t size, const char *fmt, va_list ap)
{
	return vsnprintf_s_any("vsprintf_s", buf, false, size, size, false, fmt, ap);
}

FLTPORT_WINAPI int sprintf_s(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf_s_any("sprintf_s", buf, false, size, size, false, fmt, ap);
	va_end(ap);
	return n;
}

FLTPORT_WINAPI int _vsnwprintf_s(wchar_t *buf, size_t size, size_t count, const wchar_t *fmt,
				 va_list ap)
{
	return vsnprintf_s_any("_vsnwprintf_s", buf, true, size, count, true, fmt, ap);
}

FLTPORT_WINAPI int _snwprintf_s(wchar_t *buf, size_t size, size_t count, const wchar_t *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf_s_any("_snwprintf_s", buf, true, size, count, true, fmt, ap);
	va_end(ap);
	return n;
}

FLTPORT_WINAPI int vswprintf_s(wchar_t *buf, size_t size, const wchar_t *fmt, va_list ap)
{
	return vsnprintf_s_any("vswprintf_s", buf, true, size, size, false, fmt, ap);
}

FLTPORT_WINAPI int swprintf_s(wchar_t *buf, size_t size, const wchar_t *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf_s_any("swprintf_s", buf, true, size, size, false, fmt, ap);
	va_end(ap);
	return n;
}

/* _vsnprintf: at most count units; the terminator only if there is room;
 * -1 when the output was longer than count.  (NULL, 0): the length the
 * output needs.  The output is measured first, so that the scratch copy
 * (for a cut without a terminator) is never larger than the output. */
static int vsnprintf_legacy(void *buf, bool wide, size_t count, const void *fmt, va_list ap)
{
	size_t w = wide ? sizeof(wchar_t) : 1, need, keep;
	void *tmp;
	bool fit;

	if (!fmt || (!buf && count)) {
		invalid(wide ? "_vsnwprintf" : "_vsnprintf", EINVAL);
		return -1;
	}
	need = format(NULL, wide, 0, fmt, ap, &fit);
	if (need > INT_MAX) {
		errno = EOVERFLOW;
		return -1;
	}
	if (need < count) /* it fits with its terminator */
		return (int)format(buf, wide, need + 1, fmt, ap, &fit);
	if (!buf)
		return (int)need; /* count is 0 */
	keep = count;             /* count units, no terminator */
	tmp = malloc((keep + 1) * w);
	if (!tmp) {
		errno = ENOMEM;
		return -1;
	}
	format(tmp, wide, keep + 1, fmt, ap, &fit);
	memcpy(buf, tmp, keep * w);
	free(tmp);
	return need == count ? (int)need : -1;
}

FLTPORT_WINAPI int _vsnprintf(char *buf, size_t count, const char *fmt, va_list ap)
{
	return vsnprintf_legacy(buf, false, count, fmt, ap);
}

FLTPORT_WINAPI int _snprintf(char *buf, size_t count, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf_legacy(buf, false, count, fmt, ap);
	va_end(ap);
	return n;
}

FLTPORT_WINAPI int _vsnwprintf(wchar_t *buf, size_t count, const wchar_t *fmt, va_list ap)
{
	return vsnprintf_legacy(buf, true, count, fmt, ap);
}

FLTPORT_WINAPI int _snwprintf(wchar_t *buf, size_t count, const wchar_t *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf_legacy(buf, true, count, fmt, ap);
	va_end(ap);
	return n;
}

/* ---- comparisons, duplicates, tokens, files ---- */

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

FLTPORT_WINAPI int _strnicmp(const char *a, const char *b, size_t n)
{
	if (!a || !b) {
		invalid("_strnicmp", EINVAL);
		return _NLSCMPERROR;
	}
	for (size_t i = 0; i < n; i++) {
		int x = lower((unsigned char)a[i]), y = lower((unsigned char)b[i]);

		if (x != y || !x)
			return x - y;
	}
	return 0;
}

FLTPORT_WINAPI int _stricmp(const char *a, const char *b)
{
	return _strnicmp(a, b, SIZE_MAX);
}

static locale_t utf8_ctype;

static void utf8_init(void)
{
	utf8_ctype = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* For lstrcmpi, which folds by the user's locale on Windows (the CRT's
 * _wcsicmp folds by the C locale, ASCII only in "C", as here). */
wint_t fpw_towlower(wint_t c)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, utf8_init);
	return utf8_ctype ? towlower_l(c, utf8_ctype) : towlower(c);
}

FLTPORT_WINAPI int _wcsnicmp(const wchar_t *a, const wchar_t *b, size_t n)
{
	if (!a || !b) {
		invalid("_wcsnicmp", EINVAL);
		return _NLSCMPERROR;
	}
	for (size_t i = 0; i < n; i++) {
		wint_t x = towlower((wint_t)a[i]), y = towlower((wint_t)b[i]);

		if (x != y || !x)
			return x < y ? -1 : x > y;
	}
	return 0;
}

FLTPORT_WINAPI int _wcsicmp(const wchar_t *a, const wchar_t *b)
{
	return _wcsnicmp(a, b, SIZE_MAX);
}

FLTPORT_WINAPI char *_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

FLTPORT_WINAPI wchar_t *_wcsdup(const wchar_t *s)
{
	size_t n;
	wchar_t *d;

	if (!s)
		return NULL;
	n = wcslen(s) + 1;
	d = malloc(n * sizeof(*d));
	if (d)
		memcpy(d, s, n * sizeof(*d));
	return d;
}

FLTPORT_WINAPI char *strtok_s(char *str, const char *delim, char **context)
{
	if (!delim || !context || (!str && !*context)) {
		invalid("strtok_s", EINVAL);
		return NULL;
	}
	return strtok_r(str, delim, context);
}

FLTPORT_WINAPI wchar_t *wcstok_s(wchar_t *str, const wchar_t *delim, wchar_t **context)
{
	if (!delim || !context || (!str && !*context)) {
		invalid("wcstok_s", EINVAL);
		return NULL;
	}
	return wcstok(str, delim, context);
}

FLTPORT_WINAPI errno_t fopen_s(FILE **pf, const char *name, const char *mode)
{
	if (pf)
		*pf = NULL;
	if (!pf || !name || !mode || !name[0])
		return invalid("fopen_s", EINVAL);
	*pf = fopen(name, mode);
	return *pf ? 0 : errno;
}

/* A wide string as a malloc'ed UTF-8 one, or NULL (errno set). */
static char *utf8_of(const wchar_t *w)
{
	ssize_t n = fpw_wide_to_utf8(w, wcslen(w), NULL, 0, true);
	char *s;

	if (n < 0) {
		errno = EILSEQ;
		return NULL;
	}
	s = malloc((size_t)n + 1);
	if (!s)
		return NULL;
	fpw_wide_to_utf8(w, wcslen(w), s, (size_t)n, true);
	s[n] = '\0';
	return s;
}

FLTPORT_WINAPI FILE *_wfopen(const wchar_t *name, const wchar_t *mode)
{
	char *n, *m;
	FILE *f = NULL;

	if (!name || !mode) {
		errno = EINVAL;
		return NULL;
	}
	n = utf8_of(name);
	m = n ? utf8_of(mode) : NULL;
	if (n && m)
		f = fopen(n, m);
	free(n);
	free(m);
	return f;
}

FLTPORT_WINAPI errno_t _wfopen_s(FILE **pf, const wchar_t *name, const wchar_t *mode)
{
	if (pf)
		*pf = NULL;
	if (!pf || !name || !mode || !name[0])
		return invalid("_wfopen_s", EINVAL);
	*pf = _wfopen(name, mode);
	return *pf ? 0 : errno;
}
