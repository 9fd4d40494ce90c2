/*
 * fltport Windows layer: the part of psapi.h port services use — the image
 * name of a process (see OpenProcess in fltport_win32.h).  Returns the
 * characters copied without the terminator, or 0 with the last error set
 * (a buffer too small: ERROR_INSUFFICIENT_BUFFER).  The path is the Linux
 * one: there are no NT device paths ("\Device\HarddiskVolume1\...").
 */
#ifndef FLTPORT_PSAPI_H
#define FLTPORT_PSAPI_H

#include "windows.h"

FLTPORT_WINAPI DWORD GetProcessImageFileNameA(HANDLE hProcess, LPSTR lpImageFileName, DWORD nSize);
FLTPORT_WINAPI DWORD GetProcessImageFileNameW(HANDLE hProcess, LPWSTR lpImageFileName, DWORD nSize);
/* PSAPI_VERSION 2 spells them with K32 (kernel32 exports). */
#define K32GetProcessImageFileNameA GetProcessImageFileNameA
#define K32GetProcessImageFileNameW GetProcessImageFileNameW
#ifdef UNICODE
#define GetProcessImageFileName GetProcessImageFileNameW
#else
#define GetProcessImageFileName GetProcessImageFileNameA
#endif

#endif
