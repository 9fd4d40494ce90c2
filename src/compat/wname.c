#include "compat/wname.h"

#include <stdint.h>

int fpw_wname_to_utf8(const wchar_t *w, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t c = (uint32_t)w[i];
		unsigned char b[4];
		size_t k;

		if (c == 0 || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
			return -1;
		if (c < 0x80) {
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
		if (o + k >= cap)
			return -1;
		for (size_t j = 0; j < k; j++)
			out[o++] = (char)b[j];
	}
	if (o >= cap)
		return -1;
	out[o] = '\0';
	return 0;
}

/* The code point of the sequence at s (its length in *len), or -1 for an
 * invalid, overlong or truncated one (then *len is 1). */
static int32_t utf8_next(const unsigned char *s, size_t *len)
{
	uint32_t c = s[0], min;
	size_t n;

	if (c < 0x80) {
		*len = 1;
		return (int32_t)c;
	}
	if ((c & 0xE0) == 0xC0) {
		n = 2, c &= 0x1F, min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		n = 3, c &= 0x0F, min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		n = 4, c &= 0x07, min = 0x10000;
	} else {
		*len = 1;
		return -1;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80) {
			*len = 1;
			return -1;
		}
		c = (c << 6) | (s[i] & 0x3F);
	}
	*len = n;
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
		*len = 1;
		return -1;
	}
	return (int32_t)c;
}

size_t fpw_utf8_to_wname(const char *s, wchar_t *out, size_t cap)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0, len;

	while (*p) {
		int32_t c = utf8_next(p, &len);

		if (n < cap)
			out[n] = c < 0 ? (wchar_t)0xFFFD : (wchar_t)c;
		n++;
		p += len;
	}
	return n;
}
