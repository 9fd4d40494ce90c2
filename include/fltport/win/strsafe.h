/*
 * fltport Windows layer: strsafe.h — the StringCch* / StringCb* functions
 * (library functions in libfltport-win, not inline as in the SDK), with the
 * SDK's results:
 *   S_OK                           done, NUL-terminated;
 *   STRSAFE_E_INSUFFICIENT_BUFFER  the result did not fit: the destination
 *                                  holds as much as fits, NUL-terminated;
 *   STRSAFE_E_INVALID_PARAMETER    cchDest is 0 or over STRSAFE_MAX_CCH (the
 *                                  destination then gets "" if cchDest is
 *                                  not 0), or (Cat, Length) the string is
 *                                  not terminated within its size, or
 *                                  (CopyN, CatN) the count is over
 *                                  STRSAFE_MAX_LENGTH (CopyN then leaves "").
 * Sizes: Cch in characters, Cb in bytes (sizeof(WCHAR) is 4 here, so
 * sizeof(buffer) is right for both).
 *
 * Printf follows MSVC's rules, not glibc's: in the W functions %s and %c take
 * wide strings/characters and %S / %C narrow ones (in the A functions the
 * reverse); %hs/%hc are narrow and %ls/%lc/%ws/%wc wide everywhere; `l` on an
 * integer conversion is 32-bit (LONG, ULONG, DWORD), I64 / ll 64-bit, I / z
 * pointer-sized; %p prints 16 upper-case hex digits without 0x.  Narrow
 * strings are UTF-8 when converted; the precision of %s counts units of the
 * argument string.  %n writes nothing (MSVC disables it).
 * The unsafe C functions are not deprecated (no STRSAFE_NO_DEPRECATE needed).
 */
#ifndef FLTPORT_STRSAFE_H
#define FLTPORT_STRSAFE_H

#include <stdarg.h>

#include "fltport_wintypes.h"

#define STRSAFE_MAX_CCH 2147483647
/* The longest string: the most the N forms take (cchToCopy, cchToAppend). */
#define STRSAFE_MAX_LENGTH (STRSAFE_MAX_CCH - 1)
#define STRSAFE_E_INSUFFICIENT_BUFFER ((HRESULT)0x8007007Au)
#define STRSAFE_E_INVALID_PARAMETER ((HRESULT)0x80070057u)
#define STRSAFE_E_END_OF_FILE ((HRESULT)0x80070026u)

typedef char *STRSAFE_LPSTR;
typedef const char *STRSAFE_LPCSTR;
typedef wchar_t *STRSAFE_LPWSTR;
typedef const wchar_t *STRSAFE_LPCWSTR;
typedef const char *STRSAFE_PCNZCH;
typedef const wchar_t *STRSAFE_PCNZWCH;

#define STRSAFEAPI FLTPORT_WINAPI HRESULT

STRSAFEAPI StringCchCopyA(STRSAFE_LPSTR pszDest, size_t cchDest, STRSAFE_LPCSTR pszSrc);
STRSAFEAPI StringCchCopyW(STRSAFE_LPWSTR pszDest, size_t cchDest, STRSAFE_LPCWSTR pszSrc);
/* At most cchToCopy characters of pszSrc (which need not be terminated
 * within them). */
STRSAFEAPI StringCchCopyNA(STRSAFE_LPSTR pszDest, size_t cchDest, STRSAFE_PCNZCH pszSrc,
			   size_t cchToCopy);
STRSAFEAPI StringCchCopyNW(STRSAFE_LPWSTR pszDest, size_t cchDest, STRSAFE_PCNZWCH pszSrc,
			   size_t cchToCopy);
STRSAFEAPI StringCchCatA(STRSAFE_LPSTR pszDest, size_t cchDest, STRSAFE_LPCSTR pszSrc);
STRSAFEAPI StringCchCatW(STRSAFE_LPWSTR pszDest, size_t cchDest, STRSAFE_LPCWSTR pszSrc);
STRSAFEAPI StringCchCatNA(STRSAFE_LPSTR pszDest, size_t cchDest, STRSAFE_PCNZCH pszSrc,
			  size_t cchToAppend);
STRSAFEAPI StringCchCatNW(STRSAFE_LPWSTR pszDest, size_t cchDest, STRSAFE_PCNZWCH pszSrc,
			  size_t cchToAppend);
STRSAFEAPI StringCchPrintfA(STRSAFE_LPSTR pszDest, size_t cchDest, STRSAFE_LPCSTR pszFormat, ...);
STRSAFEAPI StringCchPrintfW(STRSAFE_LPWSTR pszDest, size_t cchDest, STRSAFE_LPCWSTR pszFormat, ...);
STRSAFEAPI StringCchVPrintfA(STRSAFE_LPSTR pszDest, size_t cchDest, STRSAFE_LPCSTR pszFormat,
			     va_list argList);
STRSAFEAPI StringCchVPrintfW(STRSAFE_LPWSTR pszDest, size_t cchDest, STRSAFE_LPCWSTR pszFormat,
			     va_list argList);
/* *pcchLength (may be NULL): the length without the terminator; 0 on
 * failure (psz NULL, cchMax over STRSAFE_MAX_CCH, no terminator within
 * cchMax). */
STRSAFEAPI StringCchLengthA(STRSAFE_PCNZCH psz, size_t cchMax, size_t *pcchLength);
STRSAFEAPI StringCchLengthW(STRSAFE_PCNZWCH psz, size_t cchMax, size_t *pcchLength);

STRSAFEAPI StringCbCopyA(STRSAFE_LPSTR pszDest, size_t cbDest, STRSAFE_LPCSTR pszSrc);
STRSAFEAPI StringCbCopyW(STRSAFE_LPWSTR pszDest, size_t cbDest, STRSAFE_LPCWSTR pszSrc);
STRSAFEAPI StringCbCatA(STRSAFE_LPSTR pszDest, size_t cbDest, STRSAFE_LPCSTR pszSrc);
STRSAFEAPI StringCbCatW(STRSAFE_LPWSTR pszDest, size_t cbDest, STRSAFE_LPCWSTR pszSrc);
STRSAFEAPI StringCbPrintfA(STRSAFE_LPSTR pszDest, size_t cbDest, STRSAFE_LPCSTR pszFormat, ...);
STRSAFEAPI StringCbPrintfW(STRSAFE_LPWSTR pszDest, size_t cbDest, STRSAFE_LPCWSTR pszFormat, ...);
STRSAFEAPI StringCbVPrintfA(STRSAFE_LPSTR pszDest, size_t cbDest, STRSAFE_LPCSTR pszFormat,
			    va_list argList);
STRSAFEAPI StringCbVPrintfW(STRSAFE_LPWSTR pszDest, size_t cbDest, STRSAFE_LPCWSTR pszFormat,
			    va_list argList);
/* *pcbLength: the length in bytes without the terminator. */
STRSAFEAPI StringCbLengthA(STRSAFE_PCNZCH psz, size_t cbMax, size_t *pcbLength);
STRSAFEAPI StringCbLengthW(STRSAFE_PCNZWCH psz, size_t cbMax, size_t *pcbLength);

#ifdef UNICODE
#define StringCchCopy StringCchCopyW
#define StringCchCopyN StringCchCopyNW
#define StringCchCat StringCchCatW
#define StringCchCatN StringCchCatNW
#define StringCchPrintf StringCchPrintfW
#define StringCchVPrintf StringCchVPrintfW
#define StringCchLength StringCchLengthW
#define StringCbCopy StringCbCopyW
#define StringCbCat StringCbCatW
#define StringCbPrintf StringCbPrintfW
#define StringCbVPrintf StringCbVPrintfW
#define StringCbLength StringCbLengthW
#else
#define StringCchCopy StringCchCopyA
#define StringCchCopyN StringCchCopyNA
#define StringCchCat StringCchCatA
#define StringCchCatN StringCchCatNA
#define StringCchPrintf StringCchPrintfA
#define StringCchVPrintf StringCchVPrintfA
#define StringCchLength StringCchLengthA
#define StringCbCopy StringCbCopyA
#define StringCbCat StringCbCatA
#define StringCbPrintf StringCbPrintfA
#define StringCbVPrintf StringCbVPrintfA
#define StringCbLength StringCbLengthA
#endif

#endif /* FLTPORT_STRSAFE_H */
