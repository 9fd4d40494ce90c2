/*
 * fltport Windows layer: tchar.h — _TCHAR and _T / _TEXT, which follow
 * _UNICODE (windows.h's TCHAR and TEXT follow UNICODE; define both, as
 * Windows projects do).  Only the string routines whose wide forms behave
 * the same on Linux are mapped, and _tmain (wmain with _UNICODE: link
 * -lfltport-wmain, whose main calls it); no _tprintf (glibc's wide
 * printf reads %s as narrow: see strsafe.h's StringCchPrintf for MSVC's
 * rules).
 */
#ifndef FLTPORT_TCHAR_H
#define FLTPORT_TCHAR_H

#include <string.h>
#include <wchar.h>

#ifdef _UNICODE
typedef wchar_t _TCHAR;
#define _tmain wmain
#ifdef __cplusplus
/* C linkage for the program's wmain, as MSVC gives it (windows.h has the
 * same declaration). */
extern "C" int wmain(int argc, wchar_t **argv);
#endif
#define __T(x) L##x
#define _tcslen wcslen
#define _tcscpy wcscpy
#define _tcsncpy wcsncpy
#define _tcscat wcscat
#define _tcscmp wcscmp
#define _tcsncmp wcsncmp
#define _tcschr wcschr
#define _tcsrchr wcsrchr
#define _tcsstr wcsstr
#else
typedef char _TCHAR;
#define _tmain main
#define __T(x) x
#define _tcslen strlen
#define _tcscpy strcpy
#define _tcsncpy strncpy
#define _tcscat strcat
#define _tcscmp strcmp
#define _tcsncmp strncmp
#define _tcschr strchr
#define _tcsrchr strrchr
#define _tcsstr strstr
#endif
#define _T(x) __T(x)
#define _TEXT(x) __T(x)

#endif /* FLTPORT_TCHAR_H */
