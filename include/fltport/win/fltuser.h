/*
 * fltport Windows layer: fltuser.h — the user side of filter communication
 * ports, with Windows signatures and HRESULTs (SPEC §3, §4, §8).
 *
 * Differences forced by Linux are listed in docs/PORTING.md.  In short:
 * port names map to sockets in $FLTPORT_DIR (default /run/fltport);
 * FLT_PORT_FLAG_SYNC_HANDLE is accepted and every handle supports
 * concurrent calls from any number of threads; an async (default) handle
 * also supports OVERLAPPED FilterGetMessage, which always returns
 * HRESULT_FROM_WIN32(ERROR_IO_PENDING) and completes through the event
 * and/or the associated I/O completion port.
 */
#ifndef FLTPORT_FLTUSER_H
#define FLTPORT_FLTUSER_H

#include "fltuserstructures.h"
#include "windows.h"

FLTPORT_WINAPI HRESULT FilterConnectCommunicationPort(LPCWSTR lpPortName, DWORD dwOptions,
						      LPCVOID lpContext, WORD wSizeOfContext,
						      LPSECURITY_ATTRIBUTES lpSecurityAttributes,
						      HANDLE *hPort);

FLTPORT_WINAPI HRESULT FilterSendMessage(HANDLE hPort, LPVOID lpInBuffer, DWORD dwInBufferSize,
					 LPVOID lpOutBuffer, DWORD dwOutBufferSize,
					 LPDWORD lpBytesReturned);

FLTPORT_WINAPI HRESULT FilterGetMessage(HANDLE hPort, PFILTER_MESSAGE_HEADER lpMessageBuffer,
					DWORD dwMessageBufferSize, LPOVERLAPPED lpOverlapped);

FLTPORT_WINAPI HRESULT FilterReplyMessage(HANDLE hPort, PFILTER_REPLY_HEADER lpReplyBuffer,
					  DWORD dwReplyBufferSize);

/*
 * The management API (docs/PORTING.md, "Management API"), on the native
 * one in fltport/mgmt.h: filters are running filter engines created with a
 * name, instances their attachments, volumes the mounted file systems of
 * the caller's mount namespace.  A volume's name is its mount point
 * ("/mnt/data"; a trailing "/" is optional), and so is its DOS name.
 *
 * Enumerations take a snapshot at the *FindFirst call and return one entry
 * per call (NextEntryOffset 0): filters by decreasing altitude, instances
 * of a volume by decreasing altitude.  A buffer too small gives
 * HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER) with *lpBytesReturned set
 * to the size needed (a *FindFirst then returns no handle, a *FindNext
 * stays on its entry); the end gives HRESULT_FROM_WIN32(ERROR_NO_MORE_ITEMS).
 * Errors: ERROR_FLT_FILTER_NOT_FOUND, ERROR_FLT_VOLUME_NOT_FOUND,
 * ERROR_FLT_INSTANCE_NOT_FOUND, ERROR_FLT_INSTANCE_NAME_COLLISION,
 * ERROR_FLT_INSTANCE_ALTITUDE_COLLISION, ERROR_FLT_DO_NOT_ATTACH (the filter
 * refused), ERROR_FLT_DO_NOT_DETACH, E_ACCESSDENIED (neither root nor the
 * filter's user), E_INVALIDARG, E_HANDLE.  Search, filter and instance
 * handles are closed by their *Close call (CloseHandle works too).
 */
FLTPORT_WINAPI HRESULT FilterFindFirst(FILTER_INFORMATION_CLASS dwInformationClass, LPVOID lpBuffer,
				       DWORD dwBufferSize, LPDWORD lpBytesReturned,
				       LPHANDLE lpFilterFind);
FLTPORT_WINAPI HRESULT FilterFindNext(HANDLE hFilterFind,
				      FILTER_INFORMATION_CLASS dwInformationClass, LPVOID lpBuffer,
				      DWORD dwBufferSize, LPDWORD lpBytesReturned);
FLTPORT_WINAPI HRESULT FilterFindClose(HANDLE hFilterFind);

FLTPORT_WINAPI HRESULT FilterInstanceFindFirst(LPCWSTR lpFilterName,
					       INSTANCE_INFORMATION_CLASS dwInformationClass,
					       LPVOID lpBuffer, DWORD dwBufferSize,
					       LPDWORD lpBytesReturned,
					       LPHANDLE lpFilterInstanceFind);
FLTPORT_WINAPI HRESULT FilterInstanceFindNext(HANDLE hFilterInstanceFind,
					      INSTANCE_INFORMATION_CLASS dwInformationClass,
					      LPVOID lpBuffer, DWORD dwBufferSize,
					      LPDWORD lpBytesReturned);
FLTPORT_WINAPI HRESULT FilterInstanceFindClose(HANDLE hFilterInstanceFind);

FLTPORT_WINAPI HRESULT FilterVolumeFindFirst(FILTER_VOLUME_INFORMATION_CLASS dwInformationClass,
					     LPVOID lpBuffer, DWORD dwBufferSize,
					     LPDWORD lpBytesReturned, PHANDLE lpVolumeFind);
FLTPORT_WINAPI HRESULT FilterVolumeFindNext(HANDLE hVolumeFind,
					    FILTER_VOLUME_INFORMATION_CLASS dwInformationClass,
					    LPVOID lpBuffer, DWORD dwBufferSize,
					    LPDWORD lpBytesReturned);
FLTPORT_WINAPI HRESULT FilterVolumeFindClose(HANDLE hVolumeFind);

FLTPORT_WINAPI HRESULT FilterVolumeInstanceFindFirst(LPCWSTR lpVolumeName,
						     INSTANCE_INFORMATION_CLASS dwInformationClass,
						     LPVOID lpBuffer, DWORD dwBufferSize,
						     LPDWORD lpBytesReturned,
						     LPHANDLE lpVolumeInstanceFind);
FLTPORT_WINAPI HRESULT FilterVolumeInstanceFindNext(HANDLE hVolumeInstanceFind,
						    INSTANCE_INFORMATION_CLASS dwInformationClass,
						    LPVOID lpBuffer, DWORD dwBufferSize,
						    LPDWORD lpBytesReturned);
FLTPORT_WINAPI HRESULT FilterVolumeInstanceFindClose(HANDLE hVolumeInstanceFind);

/* A handle on a running filter (by name), and what it answers now. */
FLTPORT_WINAPI HRESULT FilterCreate(LPCWSTR lpFilterName, HFILTER *hFilter);
/* Closes a filter handle; on any other handle of this layer (a port from
 * FilterConnectCommunicationPort…) it is CloseHandle. */
FLTPORT_WINAPI HRESULT FilterClose(HFILTER hFilter);
FLTPORT_WINAPI HRESULT FilterGetInformation(HFILTER hFilter,
					    FILTER_INFORMATION_CLASS dwInformationClass,
					    LPVOID lpBuffer, DWORD dwBufferSize,
					    LPDWORD lpBytesReturned);

/* A handle on an attached instance (lpInstanceName NULL: the filter's
 * first instance on the volume). */
FLTPORT_WINAPI HRESULT FilterInstanceCreate(LPCWSTR lpFilterName, LPCWSTR lpVolumeName,
					    LPCWSTR lpInstanceName, HFILTER_INSTANCE *hInstance);
FLTPORT_WINAPI HRESULT FilterInstanceClose(HFILTER_INSTANCE hInstance);
FLTPORT_WINAPI HRESULT FilterInstanceGetInformation(HFILTER_INSTANCE hInstance,
						    INSTANCE_INFORMATION_CLASS dwInformationClass,
						    LPVOID lpBuffer, DWORD dwBufferSize,
						    LPDWORD lpBytesReturned);

/* Ask a running filter to attach an instance to a volume, or to detach
 * it; the filter may refuse.  lpInstanceName NULL: "<filter> Instance".
 * lpCreatedInstanceName (optional) receives the instance's name,
 * NUL-terminated, if dwCreatedInstanceNameLength (bytes) holds it;
 * otherwise nothing is attached and the call fails with
 * HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER). */
FLTPORT_WINAPI HRESULT FilterAttach(LPCWSTR lpFilterName, LPCWSTR lpVolumeName,
				    LPCWSTR lpInstanceName, DWORD dwCreatedInstanceNameLength,
				    LPWSTR lpCreatedInstanceName);
FLTPORT_WINAPI HRESULT FilterAttachAtAltitude(LPCWSTR lpFilterName, LPCWSTR lpVolumeName,
					      LPCWSTR lpAltitude, LPCWSTR lpInstanceName,
					      DWORD dwCreatedInstanceNameLength,
					      LPWSTR lpCreatedInstanceName);
/* lpInstanceName NULL: the filter's instance on the volume. */
FLTPORT_WINAPI HRESULT FilterDetach(LPCWSTR lpFilterName, LPCWSTR lpVolumeName,
				    LPCWSTR lpInstanceName);

/* The volume's mount point, NUL-terminated, in lpDosName
 * (dwDosNameBufferSize in WCHARs). */
FLTPORT_WINAPI HRESULT FilterGetDosName(LPCWSTR lpVolumeName, LPWSTR lpDosName,
					DWORD dwDosNameBufferSize);

/* A filter is a process, not a driver fltport could load or unload:
 * HRESULT_FROM_WIN32(ERROR_PRIVILEGE_NOT_HELD) when not root, as without
 * SeLoadDriverPrivilege; FilterLoad of a running filter
 * HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS), FilterUnload of one that does
 * not run ERROR_FLT_FILTER_NOT_FOUND; otherwise
 * HRESULT_FROM_WIN32(ERROR_NOT_SUPPORTED). */
FLTPORT_WINAPI HRESULT FilterLoad(LPCWSTR lpFilterName);
FLTPORT_WINAPI HRESULT FilterUnload(LPCWSTR lpFilterName);

#endif /* FLTPORT_FLTUSER_H */
