/*
 * The messages of win_sdkuse.c and its filter in test_compat_win32.c: a
 * minispy-like log port.  The client polls with SDKUSE_GET_LOG; the filter
 * answers with log records packed one after another, or with
 * STATUS_NO_MORE_ENTRIES (the client sees
 * HRESULT_FROM_WIN32(ERROR_NO_MORE_ITEMS)) when it has none.  SDKUSE_BAD
 * gets STATUS_FLT_DELETING_OBJECT, a FltMgr error whose text only fltlib's
 * message table has.
 */
#ifndef SDKUSE_WIRE_H
#define SDKUSE_WIRE_H

#define SDKUSE_GET_LOG 1u
#define SDKUSE_BAD 2u

typedef struct _SDKUSE_COMMAND {
	ULONG Command;
	ULONG Reserved;
} SDKUSE_COMMAND;

#define SDKUSE_RECORD_FILETAG 0x1u /* Name is empty, FileTag holds a reparse tag */

typedef struct _SDKUSE_RECORD {
	ULONG Length; /* of the whole record, a multiple of 8 */
	ULONG SequenceNumber;
	ULONG RecordType;
	ULONG FileTag;
	LARGE_INTEGER OriginatingTime; /* a FILETIME, UTC */
	WCHAR Name[];                  /* NUL-terminated, within Length */
} SDKUSE_RECORD;

/* The records the filter sends (all in one reply), and the text win_sdkuse
 * prints for them when TZ is UTC. */
#define SDKUSE_RECORDS 3

#endif
