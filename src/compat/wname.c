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
