/*
 * Paths on the wire: Linux paths are bytes, usually UTF-8; the wire's name
 * is 4-byte WCHARs (mspy.h).  A byte that does not start or continue a
 * well-formed UTF-8 sequence (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF) becomes U+DC00 + the byte, as Python's
 * "surrogateescape" does: such units are never produced by valid UTF-8, so
 * the reader can turn them back into the byte and get the path exactly.
 */
#include "mspy.h"

#include <string.h>

/* Length of the well-formed sequence at s[0..len), and its code point;
 * 0 if the byte at s does not start one. */
static size_t seq_at(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t v, min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2, v = c & 0x1F, min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3, v = c & 0x0F, min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4, v = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return n;
}

size_t mspy_utf8_units(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t units = 0;
	uint32_t cp;

	for (size_t i = 0; i < len; units++) {
		size_t n = seq_at(p + i, len - i, &cp);

		i += n ? n : 1;
	}
	return units;
}

size_t mspy_utf8_decode(const char *s, size_t len, uint32_t *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t units = 0;

	for (size_t i = 0; i < len; units++) {
		uint32_t cp;
		size_t n = seq_at(p + i, len - i, &cp);

		out[units] = n ? cp : 0xDC00u + p[i];
		i += n ? n : 1;
	}
	return units;
}

size_t mspy_utf8_cut(const char *s, size_t len, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	uint32_t cp;

	if (len <= max)
		return len;
	while (i < max) {
		size_t n = seq_at(p + i, len - i, &cp);

		if (!n)
			n = 1;
		if (i + n > max)
			break;
		i += n;
	}
	return i;
}

size_t mspy_utf8_encode(const uint32_t *in, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	if (cap == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t c = in[i];
		unsigned char b[4];
		size_t k;

		if (c >= 0xDC80 && c <= 0xDCFF) {
			b[0] = (unsigned char)(c - 0xDC00);
			k = 1;
		} else if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF || c == 0) {
			b[0] = '?';
			k = 1;
		} else if (c < 0x80) {
			b[0] = (unsigned char)c;
			k = 1;
		} else if (c < 0x800) {
			b[0] = (unsigned char)(0xC0 | (c >> 6));
			b[1] = (unsigned char)(0x80 | (c & 0x3F));
			k = 2;
		} else if (c < 0x10000) {
			b[0] = (unsigned char)(0xE0 | (c >> 12));
			b[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
			b[2] = (unsigned char)(0x80 | (c & 0x3F));
			k = 3;
		} else {
			b[0] = (unsigned char)(0xF0 | (c >> 18));
			b[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
			b[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
			b[3] = (unsigned char)(0x80 | (c & 0x3F));
			k = 4;
		}
		if (o + k > cap - 1)
			break;
		for (size_t j = 0; j < k; j++)
			out[o++] = (char)b[j];
	}
	out[o] = '\0';
	return o;
}

static const char *const op_names[] = {
	[FLTPORT_MSPY_OP_OPEN] = "open",
	[FLTPORT_MSPY_OP_EXEC] = "exec",
	[FLTPORT_MSPY_OP_READ] = "read",
	[FLTPORT_MSPY_OP_WRITE] = "write",
	[FLTPORT_MSPY_OP_CLOSE_WRITE] = "close-write",
	[FLTPORT_MSPY_OP_CREATE] = "create",
	[FLTPORT_MSPY_OP_DELETE] = "delete",
	[FLTPORT_MSPY_OP_RENAME] = "rename",
};

const char *mspy_op_name(unsigned op)
{
	return op < sizeof(op_names) / sizeof(op_names[0]) && op_names[op] ? op_names[op] : "?";
}

int mspy_op_parse(const char *name, size_t len)
{
	for (unsigned op = FLTPORT_MSPY_OP_OPEN; op <= FLTPORT_MSPY_OP_RENAME; op++) {
		const char *n = op_names[op];

		if (strlen(n) != len)
			continue;
		for (size_t i = 0;; i++) {
			if (i == len)
				return (int)op;
			/* "close_write" is accepted for "close-write" */
			if (n[i] != name[i] && !(n[i] == '-' && name[i] == '_'))
				break;
		}
	}
	return -1;
}

int mspy_ops_parse(const char *list, unsigned *ops)
{
	unsigned v = 0;

	while (*list) {
		size_t n = strcspn(list, ",");
		int op = mspy_op_parse(list, n);

		if (op < 0)
			return -1;
		v |= 1u << op;
		list += n;
		if (*list == ',')
			list++;
	}
	if (!v)
		return -1;
	*ops = v;
	return 0;
}
