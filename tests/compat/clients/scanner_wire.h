/*
 * The messages of the scanner-style soak, shared by the filter
 * (tests/compat/test_compat_scanner.c) and the service (win_scanner.c).
 * Windows types only, so that the service still cross-compiles.  Natural
 * layout, the same on both ABIs.  Include after <windows.h>.
 */
#ifndef FP_SCANNER_WIRE_H
#define FP_SCANNER_WIRE_H

#define SCANNER_READ_BUFFER_SIZE 1024

typedef struct _SCANNER_NOTIFICATION {
	ULONG BytesToScan;
	ULONG Reserved; /* the sequence number */
	UCHAR Contents[SCANNER_READ_BUFFER_SIZE];
} SCANNER_NOTIFICATION, *PSCANNER_NOTIFICATION;

typedef struct _SCANNER_REPLY {
	BOOLEAN SafeToOpen;
	ULONG Seq;
	ULONG Sum;
} SCANNER_REPLY, *PSCANNER_REPLY;

#endif
