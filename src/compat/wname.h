/* Wide (UTF-32 wchar_t) names to UTF-8 (SPEC §8.24). */
#ifndef FPW_WNAME_H
#define FPW_WNAME_H

#include <stddef.h>
#include <wchar.h>

#define FPW_NAME_BYTES 512

/* Convert n wide chars; -1 on an invalid code point, an embedded NUL, or no
 * room.  The result is NUL-terminated. */
int fpw_wname_to_utf8(const wchar_t *w, size_t n, char *out, size_t cap);

/* Decode UTF-8 into wide chars: the number of wide chars `s` holds (an
 * invalid byte counts as one U+FFFD), of which the first `cap` are
 * written to `out` (which may be NULL when cap is 0).  No terminator. */
size_t fpw_utf8_to_wname(const char *s, wchar_t *out, size_t cap);

#endif
