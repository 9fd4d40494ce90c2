/*
 * The messages of win_avscan.c and its filter in test_compat_memory.c: a
 * scan request with up to AV_CONTENT_MAX bytes of a file's content, and the
 * verdict.  Windows types only, so that the service still cross-compiles.
 * Natural layout, the same on both ABIs.  Include after <windows.h>.
 */
#ifndef FP_AVSCAN_WIRE_H
#define FP_AVSCAN_WIRE_H

#define AV_CONTENT_MAX 4096
/* What the service calls infected (not a real virus signature). */
#define AV_SIGNATURE "fltport-avscan-test-signature"

typedef struct _AV_SCAN_REQUEST {
	ULONG Seq;
	ULONG Length; /* of Content */
	UCHAR Content[AV_CONTENT_MAX];
} AV_SCAN_REQUEST;

typedef struct _AV_SCAN_REPLY {
	ULONG Seq;
	BOOLEAN Infected;
	UCHAR Reserved[3];
	ULONG WorkerId; /* the scanning thread's id */
} AV_SCAN_REPLY;

#endif
