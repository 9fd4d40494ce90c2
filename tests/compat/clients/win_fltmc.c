/*
 * win_fltmc — a small `fltmc` written only against the Windows API
 * (windows.h, fltuser.h and the C library), for test_compat_mgmt.c.  The
 * same source cross-compiles with mingw-w64 (scripts/cross-compile-clients.sh).
 *
 *   win_fltmc filters
 *   win_fltmc instances [-f FILTER | -v VOLUME]
 *   win_fltmc volumes
 *   win_fltmc attach FILTER VOLUME [-i INSTANCE] [-a ALTITUDE]
 *   win_fltmc detach FILTER VOLUME [-i INSTANCE]
 *
 * Output is fltmc's: a header, a dashed line, one row per item, columns
 * separated by at least two spaces.  A failure prints
 * "<Call> failed with error: 0x%08X" and exits 1; bad usage exits 2.
 *
 * Every enumeration starts with a small buffer and grows it to the size a
 * HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER) answer names, as careful
 * Windows callers do.
 */
#include <windows.h>
#include <fltuser.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define HR_TOO_SMALL HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER)
#define HR_NO_MORE HRESULT_FROM_WIN32(ERROR_NO_MORE_ITEMS)
#define DOS_NAME_CHARS 4096

/* A growing, 8-byte-aligned result buffer. */
struct buf {
	void *p;
	DWORD size;
};

static int grow(struct buf *b, DWORD need)
{
	void *n;

	if (need <= b->size)
		need = b->size * 2;
	n = realloc(b->p, need);
	if (!n) {
		fprintf(stderr, "out of memory\n");
		return -1;
	}
	b->p = n;
	b->size = need;
	return 0;
}

static int failed(const char *call, HRESULT hr)
{
	printf("%s failed with error: 0x%08X\n", call, (unsigned)hr);
	return 1;
}

/* argv strings are multibyte; the API takes wide strings. */
static WCHAR *wide(const char *s)
{
	size_t n = mbstowcs(NULL, s, 0);
	WCHAR *w;

	if (n == (size_t)-1)
		return NULL;
	w = calloc(n + 1, sizeof(WCHAR));
	if (w)
		mbstowcs(w, s, n + 1);
	return w;
}

/* A counted, not NUL-terminated name inside a result. */
static const WCHAR *at(const void *base, USHORT offset)
{
	return (const WCHAR *)((const char *)base + offset);
}

#define CHARS(bytes) ((int)((bytes) / sizeof(WCHAR)))

static const char *fs_name(FLT_FILESYSTEM_TYPE t)
{
	switch (t) {
	case FLT_FSTYPE_RAW:
		return "RAW";
	case FLT_FSTYPE_NTFS:
		return "NTFS";
	case FLT_FSTYPE_FAT:
		return "FAT";
	case FLT_FSTYPE_EXFAT:
		return "exFAT";
	case FLT_FSTYPE_CDFS:
		return "CDFS";
	case FLT_FSTYPE_UDFS:
		return "UDFS";
	case FLT_FSTYPE_LANMAN:
		return "Remote";
	case FLT_FSTYPE_NFS:
		return "NFS";
	case FLT_FSTYPE_REFS:
		return "ReFS";
	default:
		return "Unknown";
	}
}

static int list_filters(void)
{
	struct buf b = { NULL, 0 };
	HANDLE find = INVALID_HANDLE_VALUE;
	DWORD got = 0;
	HRESULT hr;
	int first = 1;

	if (grow(&b, 32) < 0)
		return 1;
	printf("%-30s  %13s  %12s  %5s\n", "Filter Name", "Num Instances", "Altitude", "Frame");
	printf("------------------------------  -------------  ------------  -----\n");
	for (;;) {
		PFILTER_AGGREGATE_STANDARD_INFORMATION fi;

		if (first)
			hr = FilterFindFirst(FilterAggregateStandardInformation, b.p, b.size, &got,
					     &find);
		else
			hr = FilterFindNext(find, FilterAggregateStandardInformation, b.p, b.size,
					    &got);
		if (hr == HR_TOO_SMALL) {
			if (grow(&b, got) < 0)
				break;
			continue;
		}
		if (hr == HR_NO_MORE)
			break;
		if (FAILED(hr)) {
			free(b.p);
			if (find != INVALID_HANDLE_VALUE)
				FilterFindClose(find);
			return failed(first ? "FilterFindFirst" : "FilterFindNext", hr);
		}
		first = 0;
		fi = b.p;
		if (fi->Flags & FLTFL_ASI_IS_MINIFILTER)
			printf("%-30.*ls  %13u  %12.*ls  %5u\n",
			       CHARS(fi->Type.MiniFilter.FilterNameLength),
			       at(fi, fi->Type.MiniFilter.FilterNameBufferOffset),
			       (unsigned)fi->Type.MiniFilter.NumberOfInstances,
			       CHARS(fi->Type.MiniFilter.FilterAltitudeLength),
			       at(fi, fi->Type.MiniFilter.FilterAltitudeBufferOffset),
			       (unsigned)fi->Type.MiniFilter.FrameID);
	}
	if (find != INVALID_HANDLE_VALUE)
		FilterFindClose(find);
	free(b.p);
	return 0;
}

static void print_instance(const INSTANCE_AGGREGATE_STANDARD_INFORMATION *ii)
{
	printf("%-20.*ls  %-40.*ls  %12.*ls  %-24.*ls  %5u  %s\n",
	       CHARS(ii->Type.MiniFilter.FilterNameLength),
	       at(ii, ii->Type.MiniFilter.FilterNameBufferOffset),
	       CHARS(ii->Type.MiniFilter.VolumeNameLength),
	       at(ii, ii->Type.MiniFilter.VolumeNameBufferOffset),
	       CHARS(ii->Type.MiniFilter.AltitudeLength),
	       at(ii, ii->Type.MiniFilter.AltitudeBufferOffset),
	       CHARS(ii->Type.MiniFilter.InstanceNameLength),
	       at(ii, ii->Type.MiniFilter.InstanceNameBufferOffset),
	       (unsigned)ii->Type.MiniFilter.FrameID,
	       fs_name(ii->Type.MiniFilter.VolumeFileSystemType));
}

/* The instances of one filter (by_volume 0) or of one volume. */
static int list_instances_of(const WCHAR *name, int by_volume)
{
	struct buf b = { NULL, 0 };
	HANDLE find = INVALID_HANDLE_VALUE;
	DWORD got = 0;
	HRESULT hr;
	int first = 1, rc = 0;

	if (grow(&b, 32) < 0)
		return 1;
	for (;;) {
		if (first && by_volume)
			hr = FilterVolumeInstanceFindFirst(name,
							   InstanceAggregateStandardInformation,
							   b.p, b.size, &got, &find);
		else if (first)
			hr = FilterInstanceFindFirst(name, InstanceAggregateStandardInformation,
						     b.p, b.size, &got, &find);
		else if (by_volume)
			hr = FilterVolumeInstanceFindNext(
				find, InstanceAggregateStandardInformation, b.p, b.size, &got);
		else
			hr = FilterInstanceFindNext(find, InstanceAggregateStandardInformation, b.p,
						    b.size, &got);
		if (hr == HR_TOO_SMALL) {
			if (grow(&b, got) < 0) {
				rc = 1;
				break;
			}
			continue;
		}
		if (hr == HR_NO_MORE)
			break;
		if (FAILED(hr)) {
			rc = failed(by_volume ? "FilterVolumeInstanceFind" : "FilterInstanceFind",
				    hr);
			break;
		}
		first = 0;
		print_instance(b.p);
	}
	if (find != INVALID_HANDLE_VALUE) {
		if (by_volume)
			FilterVolumeInstanceFindClose(find);
		else
			FilterInstanceFindClose(find);
	}
	free(b.p);
	return rc;
}

static void instances_header(void)
{
	printf("%-20s  %-40s  %12s  %-24s  %5s  %s\n", "Filter", "Volume Name", "Altitude",
	       "Instance Name", "Frame", "FileSystem");
	printf("--------------------  ----------------------------------------  ------------  "
	       "------------------------  -----  ----------\n");
}

/* Every filter's instances: the filters first, then each one's. */
static int list_all_instances(void)
{
	struct buf b = { NULL, 0 };
	HANDLE find = INVALID_HANDLE_VALUE;
	DWORD got = 0;
	HRESULT hr;
	int first = 1, rc = 0;

	if (grow(&b, 32) < 0)
		return 1;
	for (;;) {
		PFILTER_FULL_INFORMATION fi;
		WCHAR name[FILTER_NAME_MAX_CHARS + 1];
		size_t n;

		if (first)
			hr = FilterFindFirst(FilterFullInformation, b.p, b.size, &got, &find);
		else
			hr = FilterFindNext(find, FilterFullInformation, b.p, b.size, &got);
		if (hr == HR_TOO_SMALL) {
			if (grow(&b, got) < 0) {
				rc = 1;
				break;
			}
			continue;
		}
		if (hr == HR_NO_MORE)
			break;
		if (FAILED(hr)) {
			rc = failed(first ? "FilterFindFirst" : "FilterFindNext", hr);
			break;
		}
		first = 0;
		fi = b.p;
		n = fi->FilterNameLength / sizeof(WCHAR);
		if (n > FILTER_NAME_MAX_CHARS)
			n = FILTER_NAME_MAX_CHARS;
		memcpy(name, fi->FilterNameBuffer, n * sizeof(WCHAR));
		name[n] = L'\0';
		if (fi->NumberOfInstances > 0 && list_instances_of(name, 0) != 0)
			rc = 1;
	}
	if (find != INVALID_HANDLE_VALUE)
		FilterFindClose(find);
	free(b.p);
	return rc;
}

static int list_volumes(void)
{
	struct buf b = { NULL, 0 };
	HANDLE find = INVALID_HANDLE_VALUE;
	DWORD got = 0;
	HRESULT hr;
	int first = 1, rc = 0;

	if (grow(&b, 16) < 0)
		return 1;
	printf("%-40s  %-40s  %-10s\n", "Dos Name", "Volume Name", "FileSystem");
	printf("----------------------------------------  "
	       "----------------------------------------  ----------\n");
	for (;;) {
		PFILTER_VOLUME_STANDARD_INFORMATION vi;
		WCHAR *volume, dos[DOS_NAME_CHARS];
		size_t n;

		if (first)
			hr = FilterVolumeFindFirst(FilterVolumeStandardInformation, b.p, b.size,
						   &got, &find);
		else
			hr = FilterVolumeFindNext(find, FilterVolumeStandardInformation, b.p,
						  b.size, &got);
		if (hr == HR_TOO_SMALL) {
			if (grow(&b, got) < 0) {
				rc = 1;
				break;
			}
			continue;
		}
		if (hr == HR_NO_MORE)
			break;
		if (FAILED(hr)) {
			rc = failed(first ? "FilterVolumeFindFirst" : "FilterVolumeFindNext", hr);
			break;
		}
		first = 0;
		vi = b.p;
		n = vi->FilterVolumeNameLength / sizeof(WCHAR);
		volume = calloc(n + 1, sizeof(WCHAR));
		if (!volume) {
			rc = 1;
			break;
		}
		memcpy(volume, vi->FilterVolumeName, n * sizeof(WCHAR));
		if (FAILED(FilterGetDosName(volume, dos, DOS_NAME_CHARS)))
			dos[0] = L'\0';
		printf("%-40ls  %-40ls  %-10s\n", dos, volume, fs_name(vi->FileSystemType));
		free(volume);
	}
	if (find != INVALID_HANDLE_VALUE)
		FilterVolumeFindClose(find);
	free(b.p);
	return rc;
}

/* The value of option `opt` in argv[from..], or NULL. */
static const char *option(int argc, char **argv, int from, const char *opt)
{
	for (int i = from; i + 1 < argc; i++)
		if (strcmp(argv[i], opt) == 0)
			return argv[i + 1];
	return NULL;
}

static int attach_detach(int argc, char **argv, int detach)
{
	const char *inst = option(argc, argv, 4, "-i"), *alt = option(argc, argv, 4, "-a");
	WCHAR *filter = wide(argv[2]), *volume = wide(argv[3]);
	WCHAR *winst = inst ? wide(inst) : NULL, *walt = alt ? wide(alt) : NULL;
	WCHAR created[INSTANCE_NAME_MAX_CHARS + 1];
	HRESULT hr;
	int rc = 0;

	if (!filter || !volume || (inst && !winst) || (alt && !walt)) {
		fprintf(stderr, "win_fltmc: bad name\n");
		rc = 2;
	} else if (detach) {
		hr = FilterDetach(filter, volume, winst);
		if (FAILED(hr))
			rc = failed("Detach", hr);
		else
			printf("Detached %s from %s\n", argv[2], argv[3]);
	} else {
		if (walt)
			hr = FilterAttachAtAltitude(filter, volume, walt, winst, sizeof(created),
						    created);
		else
			hr = FilterAttach(filter, volume, winst, sizeof(created), created);
		if (FAILED(hr))
			rc = failed("Attach", hr);
		else
			printf("Attached %s to %s as instance \"%ls\"\n", argv[2], argv[3],
			       created);
	}
	free(filter);
	free(volume);
	free(winst);
	free(walt);
	return rc;
}

static int usage(void)
{
	fprintf(stderr, "usage: win_fltmc filters | instances [-f FILTER | -v VOLUME] | volumes\n"
			"       win_fltmc attach FILTER VOLUME [-i INSTANCE] [-a ALTITUDE]\n"
			"       win_fltmc detach FILTER VOLUME [-i INSTANCE]\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "filters") == 0)
		return list_filters();
	if (strcmp(argv[1], "volumes") == 0)
		return list_volumes();
	if (strcmp(argv[1], "instances") == 0) {
		const char *f = option(argc, argv, 2, "-f"), *v = option(argc, argv, 2, "-v");
		WCHAR *w;
		int rc;

		instances_header();
		if (!f && !v)
			return list_all_instances();
		w = wide(f ? f : v);
		if (!w)
			return usage();
		rc = list_instances_of(w, v != NULL);
		free(w);
		return rc;
	}
	if ((strcmp(argv[1], "attach") == 0 || strcmp(argv[1], "detach") == 0) && argc >= 4)
		return attach_detach(argc, argv, argv[1][0] == 'd');
	return usage();
}
