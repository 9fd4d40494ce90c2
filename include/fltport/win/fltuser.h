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

#endif /* FLTPORT_FLTUSER_H */
