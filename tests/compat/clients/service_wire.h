/*
 * The messages of win_service.c and its filter in test_compat_services.c:
 * a request with a sequence number and a short text, and a reply with the
 * text's checksum.  Windows types only; natural layout, the same on both
 * ABIs.  Include after <windows.h>.
 */
#ifndef FP_SERVICE_WIRE_H
#define FP_SERVICE_WIRE_H

#define SVC_TEXT_MAX 32

typedef struct _SVC_REQUEST {
	ULONG Seq;
	CHAR Command[8]; /* "sum" (any case) */
	CHAR Text[SVC_TEXT_MAX];
} SVC_REQUEST;

typedef struct _SVC_REPLY {
	ULONG Seq;
	ULONG Sum; /* of Text's bytes; 0xFFFFFFFF: unknown command */
} SVC_REPLY;

#endif
