/*
 * minispy_proto.h — what fltport-minispy (the filter) answers on its port
 * "MiniSpyPort" (man fltport-minispy): the messages of Microsoft's minispy
 * sample, byte for byte as a client built against fltport's Windows headers
 * (include/fltport/win) lays them out, plus a fltport extension block
 * inside each record that such a client skips without noticing.
 * Installed as <fltport/minispy_proto.h>.
 *
 * Usable two ways:
 *
 *  - Native code (fltport-spy): the fltport_mspy_* structures and
 *    FLTPORT_MSPY_* constants below, with <stdint.h> types only.
 *  - Windows-API code (include <windows.h> / <fltuser.h> first): also the
 *    names of minispy.h — COMMAND_MESSAGE, MINISPY_COMMAND (GetMiniSpyLog,
 *    GetMiniSpyVersion), MINISPYVER, LOG_RECORD, RECORD_DATA, FILE_ID,
 *    RECORD_TYPE_*, MINISPY_PORT_NAME — unless minispy.h itself was
 *    included before (its guard __MINISPY_H__).  On Linux both sets have one
 *    layout (checked below); with mingw-w64 the Windows set has Windows
 *    sizes (a 2-byte WCHAR) and only compiles, it does not talk to us.
 *
 * The wire (docs/MINISPY.md):
 *
 *   request  COMMAND_MESSAGE { MINISPY_COMMAND Command; ULONG Reserved;
 *            UCHAR Data[]; } — at least the 4 bytes of Command.
 *   GetMiniSpyLog      reply: LOG_RECORDs packed one after another; reply
 *                      status STATUS_SUCCESS, STATUS_NO_MORE_ENTRIES
 *                      (0x8000001A, FilterSendMessage: 0x80070103) when
 *                      there is none, STATUS_BUFFER_TOO_SMALL (0xC0000023)
 *                      when the next record does not fit the reply buffer.
 *                      A record is never longer than
 *                      FLTPORT_MSPY_RECORD_MAX (4096, the buffer Microsoft's
 *                      user program reads with).
 *   GetMiniSpyVersion  reply: MINISPYVER { USHORT Major = 2; USHORT Minor = 0; }
 *   anything else, a request shorter than 4 bytes, or no reply buffer:
 *                      STATUS_INVALID_PARAMETER (0xC000000D).
 *
 * A LOG_RECORD: Length (a multiple of 8, sizeof(void *), as the original
 * rounds it), SequenceNumber (one per recorded operation, also for the
 * ones the ring had to drop: a gap is a loss), RecordType, Reserved,
 * RECORD_DATA, then the name as NUL-terminated WCHARs.  WCHAR is the
 * Windows layer's: wchar_t, 4 bytes on Linux (UTF-32, host byte order;
 * SPEC §8.24), so sizeof(LOG_RECORD) is 152 on LP64 where Windows x64 has
 * 152 too but 2-byte name units.  A path byte that is not UTF-8 travels as
 * U+DC80 + the byte (the "surrogateescape" convention), so the path can be
 * rebuilt exactly.
 *
 * With RECORD_TYPE_FLAG_FLTPORT_EXT in RecordType, a struct
 * fltport_mspy_ext follows the name's NUL at the next 8-byte boundary
 * (fltport_mspy_ext_of() finds and checks it), then for a rename the new
 * path as NUL-terminated WCHARs; all of it is inside Length.
 *
 * Every field is host byte order (both ends are on one machine).
 */
#ifndef FLTPORT_MINISPY_PROTO_H
#define FLTPORT_MINISPY_PROTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define FLTPORT_MSPY_STATIC_ASSERT(e, m) static_assert(e, m)
#else
#define FLTPORT_MSPY_STATIC_ASSERT(e, m) _Static_assert(e, m)
#endif

#define FLTPORT_MSPY_PORT "MiniSpyPort"
#define FLTPORT_MSPY_FILTER_NAME "MiniSpy"
#define FLTPORT_MSPY_ALTITUDE "385100"

/* Commands (MINISPY_COMMAND) and the version (MINISPYVER). */
#define FLTPORT_MSPY_GET_LOG 0u
#define FLTPORT_MSPY_GET_VERSION 1u
#define FLTPORT_MSPY_MAJOR 2u
#define FLTPORT_MSPY_MINOR 0u

/* Reply statuses (NTSTATUS). */
#define FLTPORT_MSPY_STATUS_SUCCESS 0x00000000u
#define FLTPORT_MSPY_STATUS_NO_MORE_ENTRIES 0x8000001Au
#define FLTPORT_MSPY_STATUS_INVALID_PARAMETER 0xC000000Du
#define FLTPORT_MSPY_STATUS_BUFFER_TOO_SMALL 0xC0000023u

/* The longest record; a reply buffer of this size always takes one. */
#define FLTPORT_MSPY_RECORD_MAX 4096u

/* RecordType. */
#define FLTPORT_MSPY_RECORD_TYPE_NORMAL 0x00000000u
/* Set on the first record stored after the ring was full: records were
 * dropped just before it (how many: fltport_mspy_ext.dropped). */
#define FLTPORT_MSPY_RECORD_TYPE_FLAG_EXCEED_MEMORY_ALLOWANCE 0x20000000u
/* A struct fltport_mspy_ext follows the name (a bit the original leaves free). */
#define FLTPORT_MSPY_RECORD_TYPE_FLAG_FLTPORT_EXT 0x01000000u

/* RECORD_DATA.Flags: what the original copies from FLT_CALLBACK_DATA. */
#define FLTPORT_MSPY_FLT_CALLBACK_DATA_IRP_OPERATION 0x00000001u
#define FLTPORT_MSPY_FLT_CALLBACK_DATA_FS_FILTER_OPERATION 0x00000004u

/* RECORD_DATA.CallbackMajorId: the IRP major codes used (docs/MINISPY.md). */
#define FLTPORT_MSPY_IRP_MJ_CREATE 0x00u
#define FLTPORT_MSPY_IRP_MJ_READ 0x03u
#define FLTPORT_MSPY_IRP_MJ_WRITE 0x04u
#define FLTPORT_MSPY_IRP_MJ_SET_INFORMATION 0x06u
#define FLTPORT_MSPY_IRP_MJ_CLEANUP 0x12u
#define FLTPORT_MSPY_IRP_MJ_ACQUIRE_FOR_SECTION_SYNCHRONIZATION 0xFFu /* (UCHAR)-1 */

/* RECORD_DATA.Information for IRP_MJ_CREATE (IoStatus.Information). */
#define FLTPORT_MSPY_FILE_OPENED 1u
#define FLTPORT_MSPY_FILE_CREATED 2u
/* RECORD_DATA.Arg2 for IRP_MJ_SET_INFORMATION (FileInformationClass). */
#define FLTPORT_MSPY_FILE_RENAME_INFORMATION 10u
#define FLTPORT_MSPY_FILE_DISPOSITION_INFORMATION 13u
/* RECORD_DATA.Arg1 / Arg2 for the exec record (AcquireForSectionSynchronization). */
#define FLTPORT_MSPY_SYNC_TYPE_CREATE_SECTION 1u
#define FLTPORT_MSPY_PAGE_EXECUTE 0x10u

/* COMMAND_MESSAGE */
struct fltport_mspy_command {
	uint32_t command; /* FLTPORT_MSPY_GET_* */
	uint32_t reserved;
	/* uint8_t data[]; unused by both commands */
};

/* MINISPYVER */
struct fltport_mspy_version {
	uint16_t major, minor;
};

/* RECORD_DATA (Windows member names in the comments). */
struct fltport_mspy_record_data {
	int64_t originating_time; /* OriginatingTime: FILETIME, 100 ns since 1601 (UTC) */
	int64_t completion_time;  /* CompletionTime: when the filter saw it done */
	uintptr_t device_object;  /* DeviceObject: st_dev of the file (0: unknown) */
	uintptr_t file_object;    /* FileObject: its st_ino (0: unknown) */
	uintptr_t transaction;    /* Transaction: 0 */
	uintptr_t process_id;     /* ProcessId: the process (thread group) */
	uintptr_t thread_id;      /* ThreadId: 0, fanotify names the process only */
	uintptr_t information;    /* Information: FLTPORT_MSPY_FILE_OPENED/_CREATED */
	int32_t status;           /* Status: NTSTATUS, STATUS_SUCCESS */
	uint32_t irp_flags;       /* IrpFlags: 0 */
	uint32_t flags;           /* Flags: FLTPORT_MSPY_FLT_CALLBACK_DATA_* */
	uint8_t major;            /* CallbackMajorId: FLTPORT_MSPY_IRP_MJ_* */
	uint8_t minor;            /* CallbackMinorId: 0 */
	uint8_t reserved[2];
	uintptr_t arg[5]; /* Arg1..Arg5 (PVOID) */
	int64_t arg6;     /* Arg6 (LARGE_INTEGER) */
	uint32_t ecp_count, known_ecp_mask;
};

/* LOG_RECORD, without its name. */
struct fltport_mspy_log_record {
	uint32_t length;          /* Length: this record with its name, a multiple of 8 */
	uint32_t sequence_number; /* SequenceNumber */
	uint32_t record_type;     /* RecordType: FLTPORT_MSPY_RECORD_TYPE_* */
	uint32_t reserved;
	struct fltport_mspy_record_data data;
	/* WCHAR Name[]: 4-byte units, NUL-terminated */
};

/* The Linux operation (fltport_mspy_ext.op). */
enum fltport_mspy_op {
	FLTPORT_MSPY_OP_OPEN = 1,    /* IRP_MJ_CREATE, Information FILE_OPENED */
	FLTPORT_MSPY_OP_EXEC,        /* IRP_MJ_ACQUIRE_FOR_SECTION_SYNCHRONIZATION */
	FLTPORT_MSPY_OP_READ,        /* IRP_MJ_READ */
	FLTPORT_MSPY_OP_WRITE,       /* IRP_MJ_WRITE */
	FLTPORT_MSPY_OP_CLOSE_WRITE, /* IRP_MJ_CLEANUP */
	FLTPORT_MSPY_OP_CREATE,      /* IRP_MJ_CREATE, Information FILE_CREATED */
	FLTPORT_MSPY_OP_DELETE,      /* IRP_MJ_SET_INFORMATION, FileDispositionInformation */
	FLTPORT_MSPY_OP_RENAME,      /* IRP_MJ_SET_INFORMATION, FileRenameInformation */
};

#define FLTPORT_MSPY_EXT_MAGIC 0x58535046u /* "FPSX" */

/* fltport_mspy_ext.flags */
#define FLTPORT_MSPY_EXT_DIRECTORY 0x1u /* the entry is a directory */
#define FLTPORT_MSPY_EXT_TRUNCATED \
	0x2u                          /* a path was too long and was cut (at a
					 * character boundary) */
#define FLTPORT_MSPY_EXT_NO_PATH 0x4u /* the filter could not resolve the path */

#define FLTPORT_MSPY_UID_UNKNOWN 0xFFFFFFFFu

/* The extension block: at the first 8-byte boundary after the name's NUL. */
struct fltport_mspy_ext {
	uint32_t magic;        /* FLTPORT_MSPY_EXT_MAGIC */
	uint16_t size;         /* bytes of this block: 40 now; a later version may
				* add fields (a multiple of 4), so readers find
				* what follows at size, not sizeof */
	uint16_t op;           /* enum fltport_mspy_op */
	uint32_t uid;          /* effective uid; FLTPORT_MSPY_UID_UNKNOWN */
	uint32_t dropped;      /* records lost (ring full) just before this one */
	uint32_t flags;        /* FLTPORT_MSPY_EXT_* */
	uint32_t new_name_len; /* rename: 4-byte units of the new path that
				* follows this block, at size bytes from its
				* start (its NUL not counted); 0 */
	char process[16];      /* the process's name (comm), UTF-8, NUL-terminated */
};

/* Bytes of a record whose name has `name_units` units and whose new name
 * (rename) has `new_units` (0: none), both without their NULs. */
static inline size_t fltport_mspy_record_len(size_t name_units, size_t new_units)
{
	size_t n = sizeof(struct fltport_mspy_log_record) + (name_units + 1) * 4;

	n = (n + 7) & ~(size_t)7;
	n += sizeof(struct fltport_mspy_ext);
	if (new_units)
		n += (new_units + 1) * 4;
	return (n + 7) & ~(size_t)7;
}

/*
 * The extension block of the record at `rec` (`avail` bytes of it in the
 * buffer), or NULL if it has none or the record is malformed: Length out of
 * bounds, no NUL in the name, a block that does not fit.  `rec` must be
 * 4-byte aligned (records in a reply are 8-byte aligned to each other).
 * The new name, if any, is at fltport_mspy_ext_new_name(ext).
 */
static inline const struct fltport_mspy_ext *fltport_mspy_ext_of(const void *rec, size_t avail)
{
	const struct fltport_mspy_log_record *r = (const struct fltport_mspy_log_record *)rec;
	const uint32_t *name = (const uint32_t *)(r + 1);
	const struct fltport_mspy_ext *x;
	size_t len, off = sizeof(*r), units;

	if (avail < sizeof(*r) + 4)
		return NULL;
	len = r->length;
	if (len > avail || len < sizeof(*r) + 4 ||
	    !(r->record_type & FLTPORT_MSPY_RECORD_TYPE_FLAG_FLTPORT_EXT))
		return NULL;
	for (units = 0; off + 4 * (units + 1) <= len && name[units] != 0; units++)
		;
	if (off + 4 * (units + 1) > len)
		return NULL;
	off = (off + 4 * (units + 1) + 7) & ~(size_t)7;
	if (off + sizeof(*x) > len)
		return NULL;
	x = (const struct fltport_mspy_ext *)((const char *)rec + off);
	if (x->magic != FLTPORT_MSPY_EXT_MAGIC || x->size < sizeof(*x) || x->size % 4 != 0 ||
	    off + x->size + (x->new_name_len ? 4 * ((size_t)x->new_name_len + 1) : 0) > len)
		return NULL;
	return x;
}

/*
 * A rename's new path (x->new_name_len units, then a NUL) in a block that
 * fltport_mspy_ext_of() returned: at x->size bytes from the block's start,
 * not at x + 1, so that a reader of this version skips the fields a later,
 * larger block adds.
 */
static inline const uint32_t *fltport_mspy_ext_new_name(const struct fltport_mspy_ext *x)
{
	return (const uint32_t *)(const void *)((const char *)x + x->size);
}

#if !defined(_WIN32) && (defined(__x86_64__) || defined(__aarch64__))
FLTPORT_MSPY_STATIC_ASSERT(sizeof(struct fltport_mspy_record_data) == 136,
			   "RECORD_DATA is 136 bytes on LP64");
FLTPORT_MSPY_STATIC_ASSERT(sizeof(struct fltport_mspy_log_record) == 152,
			   "LOG_RECORD is 152 bytes on LP64");
FLTPORT_MSPY_STATIC_ASSERT(offsetof(struct fltport_mspy_record_data, status) == 64, "Status at 64");
FLTPORT_MSPY_STATIC_ASSERT(offsetof(struct fltport_mspy_record_data, major) == 76,
			   "CallbackMajorId at 76");
FLTPORT_MSPY_STATIC_ASSERT(offsetof(struct fltport_mspy_record_data, arg) == 80, "Arg1 at 80");
#endif
FLTPORT_MSPY_STATIC_ASSERT(sizeof(struct fltport_mspy_ext) == 40,
			   "the extension block is 40 bytes");

/* ---- minispy.h's names, for code written against the Windows API ---- */
#if (defined(_WIN32) || defined(FLTPORT_WINTYPES_H)) && !defined(__MINISPY_H__)

#define MINISPY_MAJ_VERSION 2
#define MINISPY_MIN_VERSION 0
#define MINISPY_PORT_NAME L"\\MiniSpyPort"

typedef struct _MINISPYVER {
	USHORT Major;
	USHORT Minor;
} MINISPYVER, *PMINISPYVER;

typedef ULONG_PTR FILE_ID;

#define RECORD_TYPE_NORMAL 0x00000000
#define RECORD_TYPE_FILETAG 0x00000004
#define RECORD_TYPE_FLAG_STATIC 0x80000000
#define RECORD_TYPE_FLAG_EXCEED_MEMORY_ALLOWANCE 0x20000000
#define RECORD_TYPE_FLAG_OUT_OF_MEMORY 0x10000000
#define RECORD_TYPE_FLAG_MASK 0xffff0000
#define RECORD_TYPE_FLAG_FLTPORT_EXT FLTPORT_MSPY_RECORD_TYPE_FLAG_FLTPORT_EXT

typedef struct _RECORD_DATA {
	LARGE_INTEGER OriginatingTime;
	LARGE_INTEGER CompletionTime;
	FILE_ID DeviceObject;
	FILE_ID FileObject;
	FILE_ID Transaction;
	FILE_ID ProcessId;
	FILE_ID ThreadId;
	ULONG_PTR Information;
	NTSTATUS Status;
	ULONG IrpFlags;
	ULONG Flags;
	UCHAR CallbackMajorId;
	UCHAR CallbackMinorId;
	UCHAR Reserved[2];
	PVOID Arg1;
	PVOID Arg2;
	PVOID Arg3;
	PVOID Arg4;
	PVOID Arg5;
	LARGE_INTEGER Arg6;
	ULONG EcpCount;
	ULONG KnownEcpMask;
} RECORD_DATA, *PRECORD_DATA;

typedef struct _LOG_RECORD {
	ULONG Length;
	ULONG SequenceNumber;
	ULONG RecordType;
	ULONG Reserved;
	RECORD_DATA Data;
	WCHAR Name[];
} LOG_RECORD, *PLOG_RECORD;

typedef enum _MINISPY_COMMAND { GetMiniSpyLog, GetMiniSpyVersion } MINISPY_COMMAND;

typedef struct _COMMAND_MESSAGE {
	MINISPY_COMMAND Command;
	ULONG Reserved;
	UCHAR Data[];
} COMMAND_MESSAGE, *PCOMMAND_MESSAGE;

#ifndef _WIN32
FLTPORT_MSPY_STATIC_ASSERT(sizeof(WCHAR) == 4, "fltport's WCHAR is wchar_t, 4 bytes (SPEC 8.24)");
FLTPORT_MSPY_STATIC_ASSERT(sizeof(LOG_RECORD) == sizeof(struct fltport_mspy_log_record),
			   "LOG_RECORD: one layout natively and through the Windows headers");
FLTPORT_MSPY_STATIC_ASSERT(offsetof(LOG_RECORD, Name) == sizeof(struct fltport_mspy_log_record),
			   "LOG_RECORD.Name right after RECORD_DATA");
FLTPORT_MSPY_STATIC_ASSERT(offsetof(RECORD_DATA, CallbackMajorId) ==
				   offsetof(struct fltport_mspy_record_data, major),
			   "RECORD_DATA: one layout");
FLTPORT_MSPY_STATIC_ASSERT(offsetof(RECORD_DATA, Arg6) ==
				   offsetof(struct fltport_mspy_record_data, arg6),
			   "RECORD_DATA: one layout");
FLTPORT_MSPY_STATIC_ASSERT(sizeof(COMMAND_MESSAGE) == sizeof(struct fltport_mspy_command),
			   "COMMAND_MESSAGE: 8 bytes");
#endif

#endif /* Windows names */

#endif
