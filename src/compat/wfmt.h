/*
 * Text helpers of the Windows layer: UTF-8 <-> wide (UTF-32 wchar_t)
 * conversion, and a formatter with MSVC's printf rules, shared by
 * StringCchPrintf and FormatMessage's inserts.
 */
#ifndef FPW_WFMT_H
#define FPW_WFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <wchar.h>

#include "fltport_win32.h"

/* Field widths and precisions are clamped to this (output is bounded by
 * the destination anyway). */
#define FPW_FMT_FIELD_MAX 65536

/* One UTF-8 sequence of s[0..n): true with the code point and its length;
 * false if invalid (overlong, surrogate, over U+10FFFF, cut short) with
 * *len the bytes to skip (the maximal valid prefix, at least 1). */
bool fpw_utf8_next(const unsigned char *s, size_t n, uint32_t *cp, size_t *len);
/* Encode a Unicode scalar value; returns its length (1..4). */
size_t fpw_utf8_put(uint32_t cp, unsigned char b[4]);

/* Convert n units; write at most cap units to out (NULL: count only).
 * Returns the units the whole conversion needs (whatever cap is), or -1
 * when `strict` and the input holds an invalid sequence / code point;
 * otherwise each invalid one becomes U+FFFD.  wide_to_utf8 joins a valid
 * surrogate pair. */
ssize_t fpw_utf8_to_wide(const char *s, size_t n, wchar_t *out, size_t cap, bool strict);
ssize_t fpw_wide_to_utf8(const wchar_t *s, size_t n, char *out, size_t cap, bool strict);

/* Output: narrow (UTF-8 bytes) or wide units into buf, at most cap - 1 of
 * them, then a terminator (fpw_sink_end).  buf NULL: count only.  The first
 * thing that does not fit sets `full`, and nothing is written after it, so
 * the output is a prefix.  A converted character (fpw_sink_cp: wide text
 * into a narrow sink, UTF-8 into a wide one) goes in whole or not at all;
 * narrow text into a narrow sink (fpw_sink_unit) is copied byte by byte,
 * as the SDK's _vsnprintf does, so there a cut can fall inside a UTF-8
 * sequence. */
struct fpw_sink {
	bool wide;
	void *buf;
	size_t cap;
	size_t len;
	bool full;
};

void fpw_sink_init(struct fpw_sink *s, bool wide, void *buf, size_t cap);
void fpw_sink_cp(struct fpw_sink *s, uint32_t cp);     /* a character */
void fpw_sink_unit(struct fpw_sink *s, uint32_t unit); /* a byte (narrow) / a wchar_t (wide) */
/* n units of text, narrow (UTF-8) or wide, converted to the sink's kind. */
void fpw_sink_text(struct fpw_sink *s, const void *text, bool text_wide, size_t n);
void fpw_sink_end(struct fpw_sink *s);

/* Where the arguments of a format come from: a va_list, or an array of
 * pointer-sized values (FormatMessage's inserts; no floating point). */
struct fpw_args {
	va_list *ap;
	const uintptr_t *arr;
	size_t narr, next;
};

/* Format fmt (narrow or wide; the sink has the same kind) with MSVC's
 * rules (strsafe.h states them).  false: an argument was missing or of a
 * kind the array cannot hold; the output so far stays. */
bool fpw_vformat(struct fpw_sink *s, const void *fmt, bool fmt_wide, struct fpw_args *a);
/* One conversion; fmt[*i] is the character after the '%'.  On return *i
 * is past the conversion character (or at the terminator).  Unknown
 * conversions are copied as they are. */
bool fpw_format_conv(struct fpw_sink *s, const void *fmt, bool fmt_wide, size_t *i,
		     struct fpw_args *a);

#endif
