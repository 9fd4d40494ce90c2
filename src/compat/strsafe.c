/*
 * strsafe.h.  One worker per operation, over both character widths (the A
 * and W entry points only pick the width), so that the truncation and
 * validation rules, which are the whole point of these functions, exist
 * once.
 */
#include <stdint.h>
#include <string.h>

#include "compat/compat.h"
#include "compat/wfmt.h"
#include "strsafe.h"

/* A string of either width. */
struct str {
	bool wide;
	void *p;
};

static size_t unit_size(bool wide)
{
	return wide ? sizeof(wchar_t) : sizeof(char);
}

static uint32_t get(struct str s, size_t i)
{
	return s.wide ? (uint32_t)((const wchar_t *)s.p)[i] : ((const unsigned char *)s.p)[i];
}

static void put(struct str s, size_t i, uint32_t c)
{
	if (s.wide)
		((wchar_t *)s.p)[i] = (wchar_t)c;
	else
		((char *)s.p)[i] = (char)c;
}

/* Length within max units; false if there is no terminator there. */
static bool bounded_len(struct str s, size_t max, size_t *len)
{
	size_t n = 0;

	while (n < max && get(s, n) != 0)
		n++;
	*len = n;
	return n < max;
}

/* The SDK's destination check: 0 < cch <= STRSAFE_MAX_CCH.  On failure
 * the destination gets "" when it has room for it (`clear`). */
static bool valid_dest(struct str d, size_t cch, bool clear)
{
	if (cch != 0 && cch <= STRSAFE_MAX_CCH)
		return true;
	if (clear && cch != 0)
		put(d, 0, 0);
	return false;
}

/* Copy at most max units of src (stopping at its terminator) to d + at,
 * within cch units in all; always terminates. */
static HRESULT copy_at(struct str d, size_t cch, size_t at, struct str src, size_t max)
{
	size_t i = 0;

	while (i < max && get(src, i) != 0) {
		if (at + i + 1 >= cch) {
			put(d, at + i, 0);
			return STRSAFE_E_INSUFFICIENT_BUFFER;
		}
		put(d, at + i, get(src, i));
		i++;
	}
	put(d, at + i, 0);
	return S_OK;
}

/* The count of the N forms (`counted`): the SDK takes at most
 * STRSAFE_MAX_LENGTH, the longest string a destination can hold.  The other
 * forms have no count; only the source's terminator and the destination's
 * size end them. */
static HRESULT cch_copy(struct str d, size_t cch, struct str src, bool counted, size_t n)
{
	if (!valid_dest(d, cch, true))
		return STRSAFE_E_INVALID_PARAMETER;
	if (counted && n > STRSAFE_MAX_LENGTH) {
		put(d, 0, 0);
		return STRSAFE_E_INVALID_PARAMETER;
	}
	return copy_at(d, cch, 0, src, counted ? n : SIZE_MAX);
}

static HRESULT cch_cat(struct str d, size_t cch, struct str src, bool counted, size_t n)
{
	size_t len;

	if (!valid_dest(d, cch, false) || !bounded_len(d, cch, &len) ||
	    (counted && n > STRSAFE_MAX_LENGTH))
		return STRSAFE_E_INVALID_PARAMETER;
	return copy_at(d, cch, len, src, counted ? n : SIZE_MAX);
}

static HRESULT cch_vprintf(struct str d, size_t cch, const void *fmt, va_list ap)
{
	struct fpw_sink sink;
	struct fpw_args args;
	va_list copy;

	if (!valid_dest(d, cch, true))
		return STRSAFE_E_INVALID_PARAMETER;
	if (!fmt) {
		put(d, 0, 0);
		return STRSAFE_E_INVALID_PARAMETER;
	}
	va_copy(copy, ap);
	args = (struct fpw_args){ .ap = &copy };
	fpw_sink_init(&sink, d.wide, d.p, cch);
	fpw_vformat(&sink, fmt, d.wide, &args);
	fpw_sink_end(&sink);
	va_end(copy);
	return sink.full ? STRSAFE_E_INSUFFICIENT_BUFFER : S_OK;
}

static HRESULT cch_length(struct str s, size_t max, size_t *out)
{
	size_t len;

	if (!s.p || max > STRSAFE_MAX_CCH || !bounded_len(s, max, &len)) {
		if (out)
			*out = 0;
		return STRSAFE_E_INVALID_PARAMETER;
	}
	if (out)
		*out = len;
	return S_OK;
}

#define NARROW(x) ((struct str){ false, (void *)(x) })
#define WIDE(x) ((struct str){ true, (void *)(x) })

STRSAFEAPI StringCchCopyA(STRSAFE_LPSTR d, size_t cch, STRSAFE_LPCSTR s)
{
	return cch_copy(NARROW(d), cch, NARROW(s), false, 0);
}

STRSAFEAPI StringCchCopyW(STRSAFE_LPWSTR d, size_t cch, STRSAFE_LPCWSTR s)
{
	return cch_copy(WIDE(d), cch, WIDE(s), false, 0);
}

STRSAFEAPI StringCchCopyNA(STRSAFE_LPSTR d, size_t cch, STRSAFE_PCNZCH s, size_t n)
{
	return cch_copy(NARROW(d), cch, NARROW(s), true, n);
}

STRSAFEAPI StringCchCopyNW(STRSAFE_LPWSTR d, size_t cch, STRSAFE_PCNZWCH s, size_t n)
{
	return cch_copy(WIDE(d), cch, WIDE(s), true, n);
}

STRSAFEAPI StringCchCatA(STRSAFE_LPSTR d, size_t cch, STRSAFE_LPCSTR s)
{
	return cch_cat(NARROW(d), cch, NARROW(s), false, 0);
}

STRSAFEAPI StringCchCatW(STRSAFE_LPWSTR d, size_t cch, STRSAFE_LPCWSTR s)
{
	return cch_cat(WIDE(d), cch, WIDE(s), false, 0);
}

STRSAFEAPI StringCchCatNA(STRSAFE_LPSTR d, size_t cch, STRSAFE_PCNZCH s, size_t n)
{
	return cch_cat(NARROW(d), cch, NARROW(s), true, n);
}

STRSAFEAPI StringCchCatNW(STRSAFE_LPWSTR d, size_t cch, STRSAFE_PCNZWCH s, size_t n)
{
	return cch_cat(WIDE(d), cch, WIDE(s), true, n);
}

STRSAFEAPI StringCchVPrintfA(STRSAFE_LPSTR d, size_t cch, STRSAFE_LPCSTR fmt, va_list ap)
{
	return cch_vprintf(NARROW(d), cch, fmt, ap);
}

STRSAFEAPI StringCchVPrintfW(STRSAFE_LPWSTR d, size_t cch, STRSAFE_LPCWSTR fmt, va_list ap)
{
	return cch_vprintf(WIDE(d), cch, fmt, ap);
}

STRSAFEAPI StringCchPrintfA(STRSAFE_LPSTR d, size_t cch, STRSAFE_LPCSTR fmt, ...)
{
	HRESULT hr;
	va_list ap;

	va_start(ap, fmt);
	hr = cch_vprintf(NARROW(d), cch, fmt, ap);
	va_end(ap);
	return hr;
}

STRSAFEAPI StringCchPrintfW(STRSAFE_LPWSTR d, size_t cch, STRSAFE_LPCWSTR fmt, ...)
{
	HRESULT hr;
	va_list ap;

	va_start(ap, fmt);
	hr = cch_vprintf(WIDE(d), cch, fmt, ap);
	va_end(ap);
	return hr;
}

STRSAFEAPI StringCchLengthA(STRSAFE_PCNZCH s, size_t max, size_t *len)
{
	return cch_length(NARROW(s), max, len);
}

STRSAFEAPI StringCchLengthW(STRSAFE_PCNZWCH s, size_t max, size_t *len)
{
	return cch_length(WIDE(s), max, len);
}

/* ---- byte counts: the same with cb / sizeof(unit) ---- */

STRSAFEAPI StringCbCopyA(STRSAFE_LPSTR d, size_t cb, STRSAFE_LPCSTR s)
{
	return StringCchCopyA(d, cb, s);
}

STRSAFEAPI StringCbCopyW(STRSAFE_LPWSTR d, size_t cb, STRSAFE_LPCWSTR s)
{
	return StringCchCopyW(d, cb / sizeof(wchar_t), s);
}

STRSAFEAPI StringCbCatA(STRSAFE_LPSTR d, size_t cb, STRSAFE_LPCSTR s)
{
	return StringCchCatA(d, cb, s);
}

STRSAFEAPI StringCbCatW(STRSAFE_LPWSTR d, size_t cb, STRSAFE_LPCWSTR s)
{
	return StringCchCatW(d, cb / sizeof(wchar_t), s);
}

STRSAFEAPI StringCbVPrintfA(STRSAFE_LPSTR d, size_t cb, STRSAFE_LPCSTR fmt, va_list ap)
{
	return cch_vprintf(NARROW(d), cb, fmt, ap);
}

STRSAFEAPI StringCbVPrintfW(STRSAFE_LPWSTR d, size_t cb, STRSAFE_LPCWSTR fmt, va_list ap)
{
	return cch_vprintf(WIDE(d), cb / sizeof(wchar_t), fmt, ap);
}

STRSAFEAPI StringCbPrintfA(STRSAFE_LPSTR d, size_t cb, STRSAFE_LPCSTR fmt, ...)
{
	HRESULT hr;
	va_list ap;

	va_start(ap, fmt);
	hr = cch_vprintf(NARROW(d), cb, fmt, ap);
	va_end(ap);
	return hr;
}

STRSAFEAPI StringCbPrintfW(STRSAFE_LPWSTR d, size_t cb, STRSAFE_LPCWSTR fmt, ...)
{
	HRESULT hr;
	va_list ap;

	va_start(ap, fmt);
	hr = cch_vprintf(WIDE(d), cb / sizeof(wchar_t), fmt, ap);
	va_end(ap);
	return hr;
}

static HRESULT cb_length(struct str s, size_t cb, size_t *out)
{
	size_t len;
	HRESULT hr = cch_length(s, cb / unit_size(s.wide), &len);

	if (out)
		*out = SUCCEEDED(hr) ? len * unit_size(s.wide) : 0;
	return hr;
}

STRSAFEAPI StringCbLengthA(STRSAFE_PCNZCH s, size_t cb, size_t *len)
{
	return cb_length(NARROW(s), cb, len);
}

STRSAFEAPI StringCbLengthW(STRSAFE_PCNZWCH s, size_t cb, size_t *len)
{
	return cb_length(WIDE(s), cb, len);
}
