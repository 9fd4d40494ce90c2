/* Wide (UTF-32 wchar_t) names to UTF-8 (SPEC §8.24). */
#ifndef FPW_WNAME_H
#define FPW_WNAME_H

#include <stddef.h>
#include <wchar.h>

#define FPW_NAME_BYTES 512

/* Convert n wide chars; -1 on an invalid code point, an embedded NUL, or no
 * room.  The result is NUL-terminated. */
int fpw_wname_to_utf8(const wchar_t *w, size_t n, char *out, size_t cap);

#endif
