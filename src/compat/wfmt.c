/*
 * UTF-8 <-> UTF-32 and the MSVC-rules formatter (wfmt.h).
 *
 * The formatter parses each conversion itself and hands glibc only
 * conversions whose meaning is the same on both systems (one number at a
 * time, with `ll` / `L` made explicit), because the differences are in the
 * parts that change the arguments' types: `l` is 32-bit on Windows, %s is
 * wide in the wide functions, I64 / I exist.  Passing a translated format
 * to vsnprintf would still leave %ls / %s conversions to the C locale,
 * which refuses non-ASCII text; here strings are converted as UTF-8.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat/wfmt.h"

/* ---- UTF-8 ---- */

static bool cont(unsigned char b, unsigned char lo, unsigned char hi)
{
	return b >= lo && b <= hi;
}

bool fpw_utf8_next(const unsigned char *s, size_t n, uint32_t *cp, size_t *len)
{
	unsigned char b = s[0], lo = 0x80, hi = 0xBF;
	size_t need;
	uint32_t c;

	if (b < 0x80) {
		*cp = b;
		*len = 1;
		return true;
	}
	if (b >= 0xC2 && b <= 0xDF) {
		need = 2;
		c = b & 0x1Fu;
	} else if (b >= 0xE0 && b <= 0xEF) {
		need = 3;
		c = b & 0x0Fu;
		if (b == 0xE0)
			lo = 0xA0; /* no overlong forms */
		else if (b == 0xED)
			hi = 0x9F; /* no surrogates */
	} else if (b >= 0xF0 && b <= 0xF4) {
		need = 4;
		c = b & 0x07u;
		if (b == 0xF0)
			lo = 0x90;
		else if (b == 0xF4)
			hi = 0x8F; /* nothing over U+10FFFF */
	} else {
		*len = 1;
		return false;
	}
	for (size_t k = 1; k < need; k++) {
		if (k >= n || !cont(s[k], k == 1 ? lo : 0x80, k == 1 ? hi : 0xBF)) {
			*len = k;
			return false;
		}
		c = (c << 6) | (s[k] & 0x3Fu);
	}
	*cp = c;
	*len = need;
	return true;
}

size_t fpw_utf8_put(uint32_t c, unsigned char b[4])
{
	if (c < 0x80) {
		b[0] = (unsigned char)c;
		return 1;
	}
	if (c < 0x800) {
		b[0] = (unsigned char)(0xC0 | (c >> 6));
		b[1] = (unsigned char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		b[0] = (unsigned char)(0xE0 | (c >> 12));
		b[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
		b[2] = (unsigned char)(0x80 | (c & 0x3F));
		return 3;
	}
	b[0] = (unsigned char)(0xF0 | (c >> 18));
	b[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
	b[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
	b[3] = (unsigned char)(0x80 | (c & 0x3F));
	return 4;
}

static bool scalar(uint32_t c)
{
	return c <= 0x10FFFF && (c < 0xD800 || c > 0xDFFF);
}

ssize_t fpw_utf8_to_wide(const char *s, size_t n, wchar_t *out, size_t cap, bool strict)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, o = 0, len;
	uint32_t c;

	while (i < n) {
		if (!fpw_utf8_next(u + i, n - i, &c, &len)) {
			if (strict)
				return -1;
			c = 0xFFFD;
		}
		i += len;
		if (out && o < cap)
			out[o] = (wchar_t)c;
		o++;
	}
	return (ssize_t)o;
}

ssize_t fpw_wide_to_utf8(const wchar_t *s, size_t n, char *out, size_t cap, bool strict)
{
	unsigned char b[4];
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t c = (uint32_t)s[i];
		size_t k;

		if (c >= 0xD800 && c <= 0xDBFF && i + 1 < n && (uint32_t)s[i + 1] >= 0xDC00 &&
		    (uint32_t)s[i + 1] <= 0xDFFF) {
			c = 0x10000 + ((c - 0xD800) << 10) + ((uint32_t)s[i + 1] - 0xDC00);
			i++;
		} else if (!scalar(c)) {
			if (strict)
				return -1;
			c = 0xFFFD;
		}
		k = fpw_utf8_put(c, b);
		for (size_t j = 0; j < k; j++, o++) {
			if (out && o < cap)
				out[o] = (char)b[j];
		}
	}
	return (ssize_t)o;
}

/* ---- sink ---- */

void fpw_sink_init(struct fpw_sink *s, bool wide, void *buf, size_t cap)
{
	*s = (struct fpw_sink){ .wide = wide, .buf = buf, .cap = buf ? cap : SIZE_MAX };
}

/* Room for n more units besides the terminator? */
static bool room(struct fpw_sink *s, size_t n)
{
	if (s->full)
		return false;
	if (s->cap == 0 || s->len + n > s->cap - 1) {
		s->full = true;
		return false;
	}
	return true;
}

void fpw_sink_unit(struct fpw_sink *s, uint32_t unit)
{
	if (!room(s, 1))
		return;
	if (s->buf) {
		if (s->wide)
			((wchar_t *)s->buf)[s->len] = (wchar_t)unit;
		else
			((char *)s->buf)[s->len] = (char)unit;
	}
	s->len++;
}

void fpw_sink_cp(struct fpw_sink *s, uint32_t cp)
{
	unsigned char b[4];
	size_t k;

	if (s->wide) {
		fpw_sink_unit(s, cp);
		return;
	}
	k = fpw_utf8_put(scalar(cp) ? cp : 0xFFFD, b);
	if (!room(s, k))
		return;
	for (size_t j = 0; j < k; j++)
		fpw_sink_unit(s, b[j]);
}

void fpw_sink_text(struct fpw_sink *s, const void *text, bool text_wide, size_t n)
{
	if (text_wide) {
		const wchar_t *w = text;

		for (size_t i = 0; i < n && !s->full; i++)
			fpw_sink_cp(s, (uint32_t)w[i]);
	} else if (!s->wide) {
		const unsigned char *c = text;

		for (size_t i = 0; i < n && !s->full; i++)
			fpw_sink_unit(s, c[i]);
	} else {
		const unsigned char *c = text;
		size_t i = 0, len;
		uint32_t cp;

		while (i < n && !s->full) {
			if (!fpw_utf8_next(c + i, n - i, &cp, &len))
				cp = 0xFFFD;
			fpw_sink_cp(s, cp);
			i += len;
		}
	}
}

void fpw_sink_end(struct fpw_sink *s)
{
	if (!s->buf || s->cap == 0)
		return;
	if (s->wide)
		((wchar_t *)s->buf)[s->len] = L'\0';
	else
		((char *)s->buf)[s->len] = '\0';
}

/* ---- arguments ---- */

enum arg_kind { AK_INT, AK_LLONG, AK_SSIZE, AK_INTMAX, AK_DOUBLE, AK_LDOUBLE, AK_PTR };

union arg {
	long long i;
	double d;
	long double ld;
	const void *p;
};

static bool fetch(struct fpw_args *a, enum arg_kind k, union arg *v)
{
	uintptr_t x;

	if (a->ap) {
		switch (k) {
		case AK_INT:
			v->i = va_arg(*a->ap, int);
			break;
		case AK_LLONG:
			v->i = va_arg(*a->ap, long long);
			break;
		case AK_SSIZE:
			v->i = va_arg(*a->ap, intptr_t);
			break;
		case AK_INTMAX:
			v->i = (long long)va_arg(*a->ap, intmax_t);
			break;
		case AK_DOUBLE:
			v->d = va_arg(*a->ap, double);
			break;
		case AK_LDOUBLE:
			v->ld = va_arg(*a->ap, long double);
			break;
		case AK_PTR:
			v->p = va_arg(*a->ap, const void *);
			break;
		}
		return true;
	}
	if (a->next >= a->narr || k == AK_DOUBLE || k == AK_LDOUBLE)
		return false;
	x = a->arr[a->next++];
	if (k == AK_PTR)
		v->p = (const void *)x;
	else if (k == AK_INT)
		v->i = (int)x;
	else
		v->i = (long long)(intptr_t)x;
	return true;
}

/* ---- one conversion ---- */

enum len { L_NONE, L_HH, L_H, L_L, L_LL, L_I, L_I32, L_J, L_BIGL, L_W };

struct spec {
	char flags[8]; /* NUL-terminated, of "-+ #0" */
	int width;     /* -1: none */
	int prec;      /* -1: none */
	enum len len;
	uint32_t conv;
};

static uint32_t at(const void *f, bool w, size_t i)
{
	return w ? (uint32_t)((const wchar_t *)f)[i] : ((const unsigned char *)f)[i];
}

static bool has_flag(const struct spec *sp, char c)
{
	return strchr(sp->flags, c) != NULL;
}

/* A decimal field or `*`; -1 when absent. */
static bool parse_num(const void *f, bool w, size_t *i, struct fpw_args *a, int *out)
{
	union arg v;
	long n = 0;

	if (at(f, w, *i) == '*') {
		(*i)++;
		if (!fetch(a, AK_INT, &v))
			return false;
		*out = (int)v.i;
		return true;
	}
	if (at(f, w, *i) < '0' || at(f, w, *i) > '9') {
		*out = -1;
		return true;
	}
	while (at(f, w, *i) >= '0' && at(f, w, *i) <= '9') {
		if (n <= FPW_FMT_FIELD_MAX)
			n = n * 10 + (long)(at(f, w, *i) - '0');
		(*i)++;
	}
	*out = (int)(n > FPW_FMT_FIELD_MAX ? FPW_FMT_FIELD_MAX : n);
	return true;
}

static enum len parse_len(const void *f, bool w, size_t *i)
{
	uint32_t c = at(f, w, *i);

	switch (c) {
	case 'h':
		(*i)++;
		if (at(f, w, *i) == 'h') {
			(*i)++;
			return L_HH;
		}
		return L_H;
	case 'l':
		(*i)++;
		if (at(f, w, *i) == 'l') {
			(*i)++;
			return L_LL;
		}
		return L_L;
	case 'I':
		if (at(f, w, *i + 1) == '6' && at(f, w, *i + 2) == '4') {
			*i += 3;
			return L_LL;
		}
		if (at(f, w, *i + 1) == '3' && at(f, w, *i + 2) == '2') {
			*i += 3;
			return L_I32;
		}
		(*i)++;
		return L_I;
	case 'z':
	case 't':
		(*i)++;
		return L_I;
	case 'j':
		(*i)++;
		return L_J;
	case 'L':
		(*i)++;
		return L_BIGL;
	case 'w':
		(*i)++;
		return L_W;
	default:
		return L_NONE;
	}
}

static void pad(struct fpw_sink *s, int n)
{
	for (int k = 0; k < n && !s->full; k++)
		fpw_sink_unit(s, ' ');
}

/* "%<flags><width>.<prec><lenmod><conv>" for snprintf. */
static void c_spec(char *out, size_t n, const struct spec *sp, const char *lenmod, char conv)
{
	char w[16] = "", p[16] = "";

	if (sp->width >= 0)
		snprintf(w, sizeof(w), "%d", sp->width);
	if (sp->prec >= 0)
		snprintf(p, sizeof(p), ".%d", sp->prec);
	snprintf(out, n, "%%%s%s%s%s%c", sp->flags, w, p, lenmod, conv);
}

/* Format one number with snprintf (the value's type given by `kind`). */
static void emit_number(struct fpw_sink *s, const struct spec *sp, const union arg *v, int kind)
{
	char spec[64], small[256], *text = small;
	int n;

	switch (kind) {
	case 0: /* signed */
		c_spec(spec, sizeof(spec), sp, "ll", (char)sp->conv);
		n = snprintf(NULL, 0, spec, v->i);
		break;
	case 1: /* unsigned */
		c_spec(spec, sizeof(spec), sp, "ll", (char)sp->conv);
		n = snprintf(NULL, 0, spec, (unsigned long long)v->i);
		break;
	case 2: /* double */
		c_spec(spec, sizeof(spec), sp, "", (char)sp->conv);
		n = snprintf(NULL, 0, spec, v->d);
		break;
	default: /* long double */
		c_spec(spec, sizeof(spec), sp, "L", (char)sp->conv);
		n = snprintf(NULL, 0, spec, v->ld);
		break;
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(small)) {
		text = malloc((size_t)n + 1);
		if (!text) {
			s->full = true; /* reported as truncation */
			return;
		}
	}
	if (kind == 0)
		snprintf(text, (size_t)n + 1, spec, v->i);
	else if (kind == 1)
		snprintf(text, (size_t)n + 1, spec, (unsigned long long)v->i);
	else if (kind == 2)
		snprintf(text, (size_t)n + 1, spec, v->d);
	else
		snprintf(text, (size_t)n + 1, spec, v->ld);
	fpw_sink_text(s, text, false, (size_t)n);
	if (text != small)
		free(text);
}

/* Is the %c / %s argument wide?  MSVC: h narrow, l/w wide; otherwise the
 * lower-case conversion has the function's width and the upper-case one
 * the other. */
static bool arg_wide(const struct spec *sp, bool fmt_wide)
{
	if (sp->len == L_H || sp->len == L_HH)
		return false;
	if (sp->len == L_L || sp->len == L_W)
		return true;
	return (sp->conv == 'c' || sp->conv == 's') ? fmt_wide : !fmt_wide;
}

/* Characters the sink will get from text (as fpw_sink_text converts it). */
static size_t count_chars(const void *text, bool text_wide, size_t n, bool sink_wide)
{
	const unsigned char *c = text;
	size_t i = 0, len, count = 0;
	uint32_t cp;

	if (text_wide || !sink_wide)
		return n;
	while (i < n) {
		fpw_utf8_next(c + i, n - i, &cp, &len);
		i += len;
		count++;
	}
	return count;
}

static void emit_padded(struct fpw_sink *s, const struct spec *sp, const void *text, bool wide,
			size_t n)
{
	size_t chars = count_chars(text, wide, n, s->wide);
	int fill = sp->width > 0 && (size_t)sp->width > chars ? sp->width - (int)chars : 0;

	if (!has_flag(sp, '-'))
		pad(s, fill);
	fpw_sink_text(s, text, wide, n);
	if (has_flag(sp, '-'))
		pad(s, fill);
}

static bool emit_string(struct fpw_sink *s, const struct spec *sp, bool fmt_wide,
			struct fpw_args *a)
{
	bool wide = arg_wide(sp, fmt_wide);
	size_t max = sp->prec >= 0 ? (size_t)sp->prec : SIZE_MAX;
	union arg v;

	if (!fetch(a, AK_PTR, &v))
		return false;
	if (!v.p)
		emit_padded(s, sp, "(null)", false, max < 6 ? max : 6);
	else if (wide)
		emit_padded(s, sp, v.p, true, wcsnlen(v.p, max));
	else
		emit_padded(s, sp, v.p, false, strnlen(v.p, max));
	return true;
}

static bool emit_char(struct fpw_sink *s, const struct spec *sp, bool fmt_wide, struct fpw_args *a)
{
	union arg v;

	if (!fetch(a, AK_INT, &v))
		return false;
	if (arg_wide(sp, fmt_wide)) {
		wchar_t w = (wchar_t)v.i;

		emit_padded(s, sp, &w, true, 1);
	} else {
		unsigned char c = (unsigned char)v.i;

		emit_padded(s, sp, &c, false, 1);
	}
	return true;
}

static bool emit_pointer(struct fpw_sink *s, const struct spec *sp, struct fpw_args *a)
{
	char text[2 * sizeof(void *) + 1];
	union arg v;

	if (!fetch(a, AK_PTR, &v))
		return false;
	snprintf(text, sizeof(text), "%0*" PRIXPTR, (int)(2 * sizeof(void *)), (uintptr_t)v.p);
	emit_padded(s, sp, text, false, strlen(text));
	return true;
}

static bool emit_integer(struct fpw_sink *s, const struct spec *sp, struct fpw_args *a)
{
	bool is_signed = sp->conv == 'd' || sp->conv == 'i';
	enum arg_kind k = AK_INT;
	union arg v;

	if (sp->len == L_LL)
		k = AK_LLONG;
	else if (sp->len == L_I)
		k = AK_SSIZE;
	else if (sp->len == L_J)
		k = AK_INTMAX;
	if (!fetch(a, k, &v))
		return false;
	switch (sp->len) {
	case L_HH:
		v.i = is_signed ? (signed char)v.i : (unsigned char)v.i;
		break;
	case L_H:
		v.i = is_signed ? (short)v.i : (unsigned short)v.i;
		break;
	case L_LL:
	case L_J:
		break;
	case L_I:
		if (!is_signed)
			v.i = (long long)(size_t)v.i;
		break;
	default: /* none, l, I32, L, w: 32-bit, as on Windows */
		v.i = is_signed ? (int)v.i : (long long)(unsigned int)v.i;
		break;
	}
	emit_number(s, sp, &v, is_signed ? 0 : 1);
	return true;
}

bool fpw_format_conv(struct fpw_sink *s, const void *f, bool w, size_t *i, struct fpw_args *a)
{
	size_t start = *i, nf = 0;
	struct spec sp = { .width = -1, .prec = -1 };
	union arg v;
	uint32_t c;
	bool star;

	while ((c = at(f, w, *i)) == '-' || c == '+' || c == ' ' || c == '#' || c == '0') {
		if (nf + 1 < sizeof(sp.flags) && !strchr(sp.flags, (int)c))
			sp.flags[nf++] = (char)c;
		(*i)++;
	}
	star = at(f, w, *i) == '*';
	if (!parse_num(f, w, i, a, &sp.width))
		return false;
	if (star && sp.width < 0) {
		/* A negative `*` width: left-justified, as C and MSVC. */
		if (nf + 1 < sizeof(sp.flags) && !strchr(sp.flags, '-'))
			sp.flags[nf++] = '-';
		sp.width = sp.width < -FPW_FMT_FIELD_MAX ? FPW_FMT_FIELD_MAX : -sp.width;
	}
	if (at(f, w, *i) == '.') {
		(*i)++;
		star = at(f, w, *i) == '*';
		if (!parse_num(f, w, i, a, &sp.prec))
			return false;
		if (sp.prec < 0)
			sp.prec = star ? -1 : 0; /* "%.*" negative: none; "%.d": 0 */
	}
	if (sp.width > FPW_FMT_FIELD_MAX)
		sp.width = FPW_FMT_FIELD_MAX;
	if (sp.prec > FPW_FMT_FIELD_MAX)
		sp.prec = FPW_FMT_FIELD_MAX;
	sp.len = parse_len(f, w, i);
	sp.conv = at(f, w, *i);
	if (sp.conv == 0)
		return true;
	(*i)++;
	switch (sp.conv) {
	case 'd':
	case 'i':
	case 'u':
	case 'o':
	case 'x':
	case 'X':
		return emit_integer(s, &sp, a);
	case 'e':
	case 'E':
	case 'f':
	case 'F':
	case 'g':
	case 'G':
	case 'a':
	case 'A':
		if (!fetch(a, sp.len == L_BIGL ? AK_LDOUBLE : AK_DOUBLE, &v))
			return false;
		emit_number(s, &sp, &v, sp.len == L_BIGL ? 3 : 2);
		return true;
	case 'c':
	case 'C':
		return emit_char(s, &sp, w, a);
	case 's':
	case 'S':
		return emit_string(s, &sp, w, a);
	case 'p':
		return emit_pointer(s, &sp, a);
	case 'n':
		return fetch(a, AK_PTR, &v); /* MSVC disables %n: nothing is written */
	case '%':
		fpw_sink_unit(s, '%');
		return true;
	default:
		fpw_sink_unit(s, '%');
		for (size_t k = start; k < *i; k++)
			fpw_sink_unit(s, at(f, w, k));
		return true;
	}
}

bool fpw_vformat(struct fpw_sink *s, const void *f, bool w, struct fpw_args *a)
{
	size_t i = 0;
	uint32_t c;

	while ((c = at(f, w, i)) != 0 && !s->full) {
		i++;
		if (c != '%') {
			fpw_sink_unit(s, c);
			continue;
		}
		if (!fpw_format_conv(s, f, w, &i, a))
			return false;
	}
	return true;
}
