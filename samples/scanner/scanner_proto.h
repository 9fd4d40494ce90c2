/*
 * scanner_proto.h — what fltport-scanner (the filter) and a scanning
 * service exchange through the port "ScannerPort" (man fltport-scanner).
 * Installed as <fltport/scanner_proto.h> for services of one's own.
 *
 * Two kinds of service, chosen by the connect context:
 *
 *  1. No context (Microsoft's scanner sample, built unchanged against
 *     fltport's Windows headers).  Each message is a SCANNER_NOTIFICATION:
 *     the first BytesToScan (≤ 1024) bytes of the file; the reply is a
 *     SCANNER_REPLY, one byte: SafeToOpen.  With FILTER_REPLY_HEADER in
 *     front that is a packed 17-byte FilterReplyMessage.
 *
 *  2. Context = struct fltport_scan_hello with FLTPORT_SCAN_WANT_FD.  Each
 *     message is a struct fltport_scan_request (followed by the path and
 *     the executable of the opener) with the file's fd attached (reads
 *     through it raise no fanotify events); the service scans the whole
 *     file and replies with a struct fltport_scan_reply (at least the first
 *     byte; the signature is optional).
 *
 * Every field is little-endian host order (both ends are on one machine);
 * the structures have no padding holes.
 */
#ifndef FLTPORT_SCANNER_PROTO_H
#define FLTPORT_SCANNER_PROTO_H

#include <stdint.h>

#define FLTPORT_SCAN_PORT "\\ScannerPort"

/* ---- 1. Microsoft's scanner sample ---------------------------------- */

#define FLTPORT_SCAN_WIN_BYTES 1024u /* SCANNER_READ_BUFFER_SIZE */

/* SCANNER_NOTIFICATION { ULONG BytesToScan; ULONG Reserved; UCHAR Contents[1024]; } */
struct fltport_scan_win_notification {
	uint32_t bytes_to_scan; /* never above FLTPORT_SCAN_WIN_BYTES */
	uint32_t reserved;      /* 0 */
	uint8_t contents[FLTPORT_SCAN_WIN_BYTES];
};

/* SCANNER_REPLY { BOOLEAN SafeToOpen; } */
struct fltport_scan_win_reply {
	uint8_t safe_to_open;
};

/* ---- 2. fd services ------------------------------------------------- */

#define FLTPORT_SCAN_MAGIC "fltport-scan"
#define FLTPORT_SCAN_VERSION 1u
#define FLTPORT_SCAN_WANT_FD 0x1u /* receive the file's fd, scan the whole file */

/* The connect context.  A filter that does not understand it (bad magic,
 * size or flags) refuses the connection with STATUS_INVALID_PARAMETER
 * (0xC000000D); another version, with STATUS_REVISION_MISMATCH
 * (0xC0000059). */
struct fltport_scan_hello {
	char magic[16];   /* FLTPORT_SCAN_MAGIC, NUL-padded */
	uint32_t version; /* FLTPORT_SCAN_VERSION */
	uint32_t flags;   /* FLTPORT_SCAN_WANT_FD */
};

#define FLTPORT_SCAN_RESCAN 0x1u /* a background rescan after a close-write: nobody waits */

/* A scan request; `path_len` bytes of path and `exe_len` bytes of the
 * opener's executable follow (no NUL), and one fd travels with it. */
struct fltport_scan_request {
	uint32_t version;  /* FLTPORT_SCAN_VERSION */
	uint32_t flags;    /* FLTPORT_SCAN_RESCAN */
	uint64_t size;     /* the file's size when the request was made */
	uint64_t dev, ino; /* its identity (st_dev, st_ino) */
	int32_t pid;       /* the opener; 0 for a rescan */
	uint32_t uid;      /* its effective uid; 0xFFFFFFFF if unknown */
	uint16_t path_len; /* as the filter sees it (its mount namespace) */
	uint16_t exe_len;  /* "" for a rescan or when unknown */
	uint32_t reserved; /* 0 */
};

#define FLTPORT_SCAN_SIG_MAX 124u

/* The reply.  Only `safe` is required (a 1-byte reply is fine). */
struct fltport_scan_reply {
	uint8_t safe; /* 1: safe to open; 0: deny */
	uint8_t reserved[3];
	char signature[FLTPORT_SCAN_SIG_MAX]; /* what was found, NUL-terminated */
};

/* Largest request: header, a path and an exe of up to 4096 bytes each. */
#define FLTPORT_SCAN_REQUEST_MAX (sizeof(struct fltport_scan_request) + 2 * 4096u)

#endif
