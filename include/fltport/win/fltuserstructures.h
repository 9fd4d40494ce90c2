/*
 * fltport Windows layer: fltUserStructures.h — the structures and
 * information classes of fltlib's management API (FilterFindFirst,
 * FilterInstanceFindFirst, FilterVolumeFindFirst…), as the Windows SDK
 * defines them.  fltuser.h includes this header.
 *
 * Layouts are Windows' field for field, but WCHAR is wchar_t (4 bytes,
 * SPEC §8.24): a name of n characters is n * sizeof(WCHAR) bytes, and the
 * offset of an inline WCHAR array may differ from Windows' (FILTER_FULL_
 * INFORMATION.FilterNameBuffer is at 16, not 14).  Lengths are in bytes,
 * offsets are from the start of the structure, and names are not
 * NUL-terminated, as on Windows.  docs/PORTING.md, "Management API".
 */
#ifndef FLTPORT_FLTUSERSTRUCTURES_H
#define FLTPORT_FLTUSERSTRUCTURES_H

#include "fltport_wintypes.h"

#define FILTER_NAME_MAX_CHARS 255
#define FILTER_NAME_MAX_BYTES (FILTER_NAME_MAX_CHARS * sizeof(WCHAR))
#define INSTANCE_NAME_MAX_CHARS 255
#define INSTANCE_NAME_MAX_BYTES (INSTANCE_NAME_MAX_CHARS * sizeof(WCHAR))
#define VOLUME_NAME_MAX_CHARS 1024
#define VOLUME_NAME_MAX_BYTES (VOLUME_NAME_MAX_CHARS * sizeof(WCHAR))

typedef HANDLE HFILTER;
typedef HANDLE HFILTER_INSTANCE;
typedef HANDLE HFILTER_VOLUME;

/* The file system of a volume.  fltport maps Linux file-system types onto
 * these where the file system is the same one (vfat → FAT, ntfs3 → NTFS,
 * nfs → NFS…); everything else (ext4, xfs, btrfs, tmpfs…) is
 * FLT_FSTYPE_UNKNOWN (docs/PORTING.md lists the mapping). */
typedef enum _FLT_FILESYSTEM_TYPE {
	FLT_FSTYPE_UNKNOWN,
	FLT_FSTYPE_RAW,
	FLT_FSTYPE_NTFS,
	FLT_FSTYPE_FAT,
	FLT_FSTYPE_CDFS,
	FLT_FSTYPE_UDFS,
	FLT_FSTYPE_LANMAN,
	FLT_FSTYPE_WEBDAV,
	FLT_FSTYPE_RDPDR,
	FLT_FSTYPE_NFS,
	FLT_FSTYPE_MS_NETWARE,
	FLT_FSTYPE_NETWARE,
	FLT_FSTYPE_BSUDF,
	FLT_FSTYPE_MUP,
	FLT_FSTYPE_RSFX,
	FLT_FSTYPE_ROXIO_UDF1,
	FLT_FSTYPE_ROXIO_UDF2,
	FLT_FSTYPE_ROXIO_UDF3,
	FLT_FSTYPE_TACIT,
	FLT_FSTYPE_FS_REC,
	FLT_FSTYPE_INCD,
	FLT_FSTYPE_INCD_FAT,
	FLT_FSTYPE_EXFAT,
	FLT_FSTYPE_PSFS,
	FLT_FSTYPE_GPFS,
	FLT_FSTYPE_NPFS,
	FLT_FSTYPE_MSFS,
	FLT_FSTYPE_CSVFS,
	FLT_FSTYPE_REFS,
	FLT_FSTYPE_OPENAFS,
	FLT_FSTYPE_CIMFS
} FLT_FILESYSTEM_TYPE,
	*PFLT_FILESYSTEM_TYPE;

typedef enum _FILTER_INFORMATION_CLASS {
	FilterFullInformation,
	FilterAggregateBasicInformation,
	FilterAggregateStandardInformation
} FILTER_INFORMATION_CLASS,
	*PFILTER_INFORMATION_CLASS;

typedef enum _INSTANCE_INFORMATION_CLASS {
	InstanceBasicInformation,
	InstancePartialInformation,
	InstanceFullInformation,
	InstanceAggregateStandardInformation
} INSTANCE_INFORMATION_CLASS,
	*PINSTANCE_INFORMATION_CLASS;

typedef enum _FILTER_VOLUME_INFORMATION_CLASS {
	FilterVolumeBasicInformation,
	FilterVolumeStandardInformation
} FILTER_VOLUME_INFORMATION_CLASS,
	*PFILTER_VOLUME_INFORMATION_CLASS;

#define FLTFL_AGGREGATE_INFO_IS_MINIFILTER 0x00000001
#define FLTFL_AGGREGATE_INFO_IS_LEGACYFILTER 0x00000002
#define FLTFL_ASI_IS_MINIFILTER 0x00000001
#define FLTFL_ASI_IS_LEGACYFILTER 0x00000002
#define FLTFL_IASI_IS_MINIFILTER 0x00000001
#define FLTFL_IASI_IS_LEGACYFILTER 0x00000002
#define FLTFL_IASIM_DETACHED_VOLUME 0x00000001
#define FLTFL_IASIL_DETACHED_VOLUME 0x00000001
#define FLTFL_VSI_DETACHED_VOLUME 0x00000001

typedef struct _FILTER_FULL_INFORMATION {
	ULONG NextEntryOffset;
	ULONG FrameID;
	ULONG NumberOfInstances;
	USHORT FilterNameLength;
	WCHAR FilterNameBuffer[1];
} FILTER_FULL_INFORMATION, *PFILTER_FULL_INFORMATION;

typedef struct _FILTER_AGGREGATE_BASIC_INFORMATION {
	ULONG NextEntryOffset;
	ULONG Flags;
	union {
		struct {
			ULONG FrameID;
			ULONG NumberOfInstances;
			USHORT FilterNameLength;
			USHORT FilterNameBufferOffset;
			USHORT FilterAltitudeLength;
			USHORT FilterAltitudeBufferOffset;
		} MiniFilter;
		struct {
			USHORT FilterNameLength;
			USHORT FilterNameBufferOffset;
		} LegacyFilter;
	} Type;
} FILTER_AGGREGATE_BASIC_INFORMATION, *PFILTER_AGGREGATE_BASIC_INFORMATION;

typedef struct _FILTER_AGGREGATE_STANDARD_INFORMATION {
	ULONG NextEntryOffset;
	ULONG Flags;
	union {
		struct {
			ULONG Flags;
			ULONG FrameID;
			ULONG NumberOfInstances;
			USHORT FilterNameLength;
			USHORT FilterNameBufferOffset;
			USHORT FilterAltitudeLength;
			USHORT FilterAltitudeBufferOffset;
		} MiniFilter;
		struct {
			ULONG Flags;
			USHORT FilterNameLength;
			USHORT FilterNameBufferOffset;
			USHORT FilterAltitudeLength;
			USHORT FilterAltitudeBufferOffset;
		} LegacyFilter;
	} Type;
} FILTER_AGGREGATE_STANDARD_INFORMATION, *PFILTER_AGGREGATE_STANDARD_INFORMATION;

typedef struct _FILTER_VOLUME_BASIC_INFORMATION {
	USHORT FilterVolumeNameLength;
	WCHAR FilterVolumeName[1];
} FILTER_VOLUME_BASIC_INFORMATION, *PFILTER_VOLUME_BASIC_INFORMATION;

typedef struct _FILTER_VOLUME_STANDARD_INFORMATION {
	ULONG NextEntryOffset;
	ULONG Flags;
	ULONG FrameID;
	FLT_FILESYSTEM_TYPE FileSystemType;
	USHORT FilterVolumeNameLength;
	WCHAR FilterVolumeName[1];
} FILTER_VOLUME_STANDARD_INFORMATION, *PFILTER_VOLUME_STANDARD_INFORMATION;

typedef struct _INSTANCE_BASIC_INFORMATION {
	ULONG NextEntryOffset;
	USHORT InstanceNameLength;
	USHORT InstanceNameBufferOffset;
} INSTANCE_BASIC_INFORMATION, *PINSTANCE_BASIC_INFORMATION;

typedef struct _INSTANCE_PARTIAL_INFORMATION {
	ULONG NextEntryOffset;
	USHORT InstanceNameLength;
	USHORT InstanceNameBufferOffset;
	USHORT AltitudeLength;
	USHORT AltitudeBufferOffset;
} INSTANCE_PARTIAL_INFORMATION, *PINSTANCE_PARTIAL_INFORMATION;

typedef struct _INSTANCE_FULL_INFORMATION {
	ULONG NextEntryOffset;
	USHORT InstanceNameLength;
	USHORT InstanceNameBufferOffset;
	USHORT AltitudeLength;
	USHORT AltitudeBufferOffset;
	USHORT VolumeNameLength;
	USHORT VolumeNameBufferOffset;
	USHORT FilterNameLength;
	USHORT FilterNameBufferOffset;
} INSTANCE_FULL_INFORMATION, *PINSTANCE_FULL_INFORMATION;

typedef struct _INSTANCE_AGGREGATE_STANDARD_INFORMATION {
	ULONG NextEntryOffset;
	ULONG Flags;
	union {
		struct {
			ULONG Flags;
			ULONG FrameID;
			FLT_FILESYSTEM_TYPE VolumeFileSystemType;
			USHORT InstanceNameLength;
			USHORT InstanceNameBufferOffset;
			USHORT AltitudeLength;
			USHORT AltitudeBufferOffset;
			USHORT VolumeNameLength;
			USHORT VolumeNameBufferOffset;
			USHORT FilterNameLength;
			USHORT FilterNameBufferOffset;
			ULONG SupportedFeatures;
		} MiniFilter;
		struct {
			ULONG Flags;
			USHORT AltitudeLength;
			USHORT AltitudeBufferOffset;
			USHORT VolumeNameLength;
			USHORT VolumeNameBufferOffset;
			USHORT FilterNameLength;
			USHORT FilterNameBufferOffset;
			ULONG SupportedFeatures;
		} LegacyFilter;
	} Type;
} INSTANCE_AGGREGATE_STANDARD_INFORMATION, *PINSTANCE_AGGREGATE_STANDARD_INFORMATION;

/* The fixed parts have Windows' sizes (no WCHAR in them); the inline
 * WCHAR arrays start where a 4-byte wchar_t aligns. */
FLTPORT_STATIC_ASSERT(sizeof(FILTER_AGGREGATE_BASIC_INFORMATION) == 24, "FABI is 24 bytes");
FLTPORT_STATIC_ASSERT(sizeof(FILTER_AGGREGATE_STANDARD_INFORMATION) == 28, "FASI is 28 bytes");
FLTPORT_STATIC_ASSERT(sizeof(INSTANCE_BASIC_INFORMATION) == 8, "IBI is 8 bytes");
FLTPORT_STATIC_ASSERT(sizeof(INSTANCE_PARTIAL_INFORMATION) == 12, "IPI is 12 bytes");
FLTPORT_STATIC_ASSERT(sizeof(INSTANCE_FULL_INFORMATION) == 20, "IFI is 20 bytes");
FLTPORT_STATIC_ASSERT(sizeof(INSTANCE_AGGREGATE_STANDARD_INFORMATION) == 40, "IASI is 40 bytes");
FLTPORT_STATIC_ASSERT(offsetof(FILTER_FULL_INFORMATION, FilterNameLength) == 12,
		      "FilterNameLength at 12");
FLTPORT_STATIC_ASSERT(offsetof(FILTER_VOLUME_STANDARD_INFORMATION, FilterVolumeNameLength) == 16,
		      "FilterVolumeNameLength at 16");

#endif /* FLTPORT_FLTUSERSTRUCTURES_H */
