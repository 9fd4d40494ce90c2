/*
 * fltlib's management API on Linux (issue 11): FilterFindFirst,
 * FilterInstanceFindFirst, FilterVolumeFindFirst,
 * FilterVolumeInstanceFindFirst, FilterCreate/FilterGetInformation,
 * FilterInstanceCreate/FilterInstanceGetInformation, FilterAttach(AtAltitude),
 * FilterDetach, FilterGetDosName, FilterLoad/FilterUnload, FilterClose.
 *
 * Real filters: each is tests/helpers/fp_named_filter, a named filter engine
 * in its own process, attached only to tmpfs file systems this test mounted
 * in its own mount namespace (tests/filter/fsbox.h), with its management
 * sockets in a private port directory.  Root is needed for those; without
 * it they are skipped with the reason.  Every HRESULT is asserted by its
 * value, written out (docs/PORTING.md, "Management API").  Also runs
 * tests/compat/clients/win_fltmc, a `fltmc` written only against the
 * Windows API, and checks what it prints.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../filter/fsbox.h"
#include "testutil.h"

#include <windows.h>
#include <fltuser.h>

#include "compat/compat.h"

#define LINE_MS 15000
#define MAXP 4

#define HR_TOO_SMALL 0x8007007Au
#define HR_NO_MORE 0x80070103u
#define HR_FILTER_NOT_FOUND 0x801F0013u
#define HR_VOLUME_NOT_FOUND 0x801F0014u
#define HR_INSTANCE_NOT_FOUND 0x801F0015u
#define HR_NAME_COLLISION 0x801F0012u
#define HR_ALTITUDE_COLLISION 0x801F0011u
#define HR_DO_NOT_ATTACH 0x801F000Fu
#define HR_DO_NOT_DETACH 0x801F0010u
#define HR_ACCESS_DENIED 0x80070005u
#define HR_INVALIDARG 0x80070057u
#define HR_HANDLE 0x80070006u
#define HR_NOT_SUPPORTED 0x80070032u
#define HR_ALREADY_EXISTS 0x800700B7u
#define HR_PRIVILEGE_NOT_HELD 0x80070522u

_Static_assert(FilterFullInformation == 0 && FilterAggregateBasicInformation == 1 &&
		       FilterAggregateStandardInformation == 2,
	       "FILTER_INFORMATION_CLASS values");
_Static_assert(InstanceBasicInformation == 0 && InstancePartialInformation == 1 &&
		       InstanceFullInformation == 2 && InstanceAggregateStandardInformation == 3,
	       "INSTANCE_INFORMATION_CLASS values");
_Static_assert(FilterVolumeBasicInformation == 0 && FilterVolumeStandardInformation == 1,
	       "FILTER_VOLUME_INFORMATION_CLASS values");
_Static_assert(FLT_FSTYPE_UNKNOWN == 0 && FLT_FSTYPE_NTFS == 2 && FLT_FSTYPE_FAT == 3 &&
		       FLT_FSTYPE_NFS == 9 && FLT_FSTYPE_EXFAT == 22 && FLT_FSTYPE_REFS == 28 &&
		       FLT_FSTYPE_OPENAFS == 29 && FLT_FSTYPE_CIMFS == 30,
	       "FLT_FILESYSTEM_TYPE values");
_Static_assert(FLTFL_AGGREGATE_INFO_IS_MINIFILTER == 1 && FLTFL_ASI_IS_MINIFILTER == 1 &&
		       FLTFL_IASI_IS_MINIFILTER == 1,
	       "flags");

static struct tu_proc procs[MAXP];
static int nprocs;
static char fs2[320]; /* a second tmpfs, attached to nothing at first */

/* ---- setup ---- */

static void setup(void)
{
	tu_private_dir();
	fsbox_init(); /* skips without root */
	snprintf(fs2, sizeof(fs2), "%s/fs2", fsbox_dir);
	cr_assert_eq(mkdir(fs2, 0755), 0, "mkdir %s: %s", fs2, strerror(errno));
	cr_assert_eq(mount("fltport-test2", fs2, "tmpfs", 0, "size=16m,mode=0755"), 0,
		     "mount tmpfs: %s", strerror(errno));
}

static void teardown(void)
{
	for (int i = 0; i < nprocs; i++)
		if (procs[i].pid > 0)
			tu_kill(&procs[i], SIGKILL);
	nprocs = 0;
	if (fs2[0]) {
		umount2(fs2, MNT_DETACH);
		rmdir(fs2);
	}
	fsbox_fini();
}

/* Start a named filter (attached to `path` if not NULL) and wait for it. */
static struct tu_proc *start_filter(const char *name, const char *altitude, const char *path)
{
	const char *args[] = { name, altitude, path, NULL };
	struct tu_proc *p;
	char line[256];

	cr_assert_lt(nprocs, MAXP);
	p = &procs[nprocs++];
	*p = tu_spawn("fp_named_filter", args);
	cr_assert(tu_expect(p, "READY", line, sizeof(line), LINE_MS), "%s did not start", name);
	return p;
}

/* ---- wide strings ---- */

/* A wide copy of s (ASCII), in one of 8 rotating buffers. */
static const WCHAR *W(const char *s)
{
	static WCHAR bufs[8][512];
	static unsigned n;
	WCHAR *w = bufs[n++ % 8];
	size_t i;

	for (i = 0; s[i] && i < 511; i++)
		w[i] = (WCHAR)(unsigned char)s[i];
	w[i] = 0;
	return w;
}

/* A counted name inside a result, as text (ASCII), in a scratch buffer. */
static const char *S(const void *base, size_t offset, size_t bytes)
{
	const WCHAR *w = (const WCHAR *)((const char *)base + offset);
	char *out = tu_scratch();
	size_t n = bytes / sizeof(WCHAR), i;

	cr_assert_eq(bytes % sizeof(WCHAR), 0, "a length of %zu bytes is not whole WCHARs", bytes);
	for (i = 0; i < n && i < 2047; i++)
		out[i] = (char)w[i];
	out[i] = '\0';
	return out;
}

static size_t wbytes(const char *s)
{
	return strlen(s) * sizeof(WCHAR);
}

static ULONGLONG buf[2048]; /* 16 KiB, 8-aligned */

/* ---- filters ---- */

TestSuite(filters, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(instances, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(volumes, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(attach, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(handles, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(fltmc, .init = setup, .fini = teardown, .timeout = 60);

/* Without filters nothing needs root: a private port directory only. */
static void private_dir(void)
{
	tu_private_dir();
}

TestSuite(args, .init = private_dir, .timeout = 60);

/* Check one FILTER_AGGREGATE_STANDARD_INFORMATION entry. */
static void expect_filter(const char *name, const char *altitude, ULONG instances, DWORD got)
{
	PFILTER_AGGREGATE_STANDARD_INFORMATION fi = (void *)buf;

	cr_expect_eq(fi->NextEntryOffset, 0u);
	cr_expect_eq(fi->Flags, (ULONG)FLTFL_ASI_IS_MINIFILTER);
	cr_expect_eq(fi->Type.MiniFilter.FrameID, 0u);
	cr_expect_eq(fi->Type.MiniFilter.NumberOfInstances, instances, "%s: %u instances", name,
		     (unsigned)fi->Type.MiniFilter.NumberOfInstances);
	cr_expect_str_eq(S(fi, fi->Type.MiniFilter.FilterNameBufferOffset,
			   fi->Type.MiniFilter.FilterNameLength),
			 name);
	cr_expect_str_eq(S(fi, fi->Type.MiniFilter.FilterAltitudeBufferOffset,
			   fi->Type.MiniFilter.FilterAltitudeLength),
			 altitude);
	cr_expect_eq(got, sizeof(*fi) + wbytes(name) + wbytes(altitude), "%s: %u bytes", name,
		     (unsigned)got);
}

/* Filters come highest altitude first; each class has its layout; the
 * end is ERROR_NO_MORE_ITEMS. */
Test(filters, enumerate_by_altitude)
{
	HANDLE h = INVALID_HANDLE_VALUE;
	DWORD got = 0;

	start_filter("FpMgmtLow", "140000", NULL);
	start_filter("FpMgmtHigh", "385100", fsbox_mnt);

	cr_assert_eq(
		FilterFindFirst(FilterAggregateStandardInformation, buf, sizeof(buf), &got, &h),
		S_OK);
	cr_assert_neq(h, INVALID_HANDLE_VALUE);
	expect_filter("FpMgmtHigh", "385100", 1, got);
	cr_assert_eq(FilterFindNext(h, FilterAggregateStandardInformation, buf, sizeof(buf), &got),
		     S_OK);
	expect_filter("FpMgmtLow", "140000", 0, got);
	cr_assert_eq((uint32_t)FilterFindNext(h, FilterAggregateStandardInformation, buf,
					      sizeof(buf), &got),
		     HR_NO_MORE);
	cr_assert_eq((uint32_t)FilterFindNext(h, FilterFullInformation, buf, sizeof(buf), &got),
		     HR_NO_MORE, "the end stays the end");
	cr_assert_eq(FilterFindClose(h), S_OK);
	cr_assert_eq((uint32_t)FilterFindClose(h), HR_HANDLE);

	/* FilterFullInformation: the name inline, not NUL-terminated. */
	cr_assert_eq(FilterFindFirst(FilterFullInformation, buf, sizeof(buf), &got, &h), S_OK);
	{
		PFILTER_FULL_INFORMATION f = (void *)buf;

		cr_expect_eq(f->NextEntryOffset, 0u);
		cr_expect_eq(f->FrameID, 0u);
		cr_expect_eq(f->NumberOfInstances, 1u);
		cr_expect_eq(f->FilterNameLength, wbytes("FpMgmtHigh"));
		cr_expect_str_eq(S(f, offsetof(FILTER_FULL_INFORMATION, FilterNameBuffer),
				   f->FilterNameLength),
				 "FpMgmtHigh");
		cr_expect_eq(got, offsetof(FILTER_FULL_INFORMATION, FilterNameBuffer) +
					  wbytes("FpMgmtHigh"));
	}
	/* Another class on the same search. */
	cr_assert_eq(FilterFindNext(h, FilterAggregateBasicInformation, buf, sizeof(buf), &got),
		     S_OK);
	{
		PFILTER_AGGREGATE_BASIC_INFORMATION a = (void *)buf;

		cr_expect_eq(a->Flags, (ULONG)FLTFL_AGGREGATE_INFO_IS_MINIFILTER);
		cr_expect_eq(a->Type.MiniFilter.NumberOfInstances, 0u);
		cr_expect_str_eq(S(a, a->Type.MiniFilter.FilterNameBufferOffset,
				   a->Type.MiniFilter.FilterNameLength),
				 "FpMgmtLow");
		cr_expect_str_eq(S(a, a->Type.MiniFilter.FilterAltitudeBufferOffset,
				   a->Type.MiniFilter.FilterAltitudeLength),
				 "140000");
		cr_expect_eq(got, sizeof(*a) + wbytes("FpMgmtLow") + wbytes("140000"));
	}
	cr_assert_eq(FilterFindClose(h), S_OK);
}

/* A buffer too small: ERROR_INSUFFICIENT_BUFFER with the size needed, no
 * handle from FindFirst, and FindNext stays on its entry. */
Test(filters, buffer_too_small)
{
	size_t need_high = sizeof(FILTER_AGGREGATE_STANDARD_INFORMATION) + wbytes("FpMgmtHigh") +
			   wbytes("385100");
	size_t need_low = sizeof(FILTER_AGGREGATE_STANDARD_INFORMATION) + wbytes("FpMgmtLow") +
			  wbytes("140000");
	HANDLE h = (HANDLE)0x1234;
	DWORD got = 0;

	start_filter("FpMgmtLow", "140000", NULL);
	start_filter("FpMgmtHigh", "385100", fsbox_mnt);

	cr_assert_eq(
		(uint32_t)FilterFindFirst(FilterAggregateStandardInformation, NULL, 0, &got, &h),
		HR_TOO_SMALL);
	cr_expect_eq(got, need_high);
	cr_expect_eq(h, INVALID_HANDLE_VALUE);
	got = 0;
	cr_assert_eq((uint32_t)FilterFindFirst(FilterAggregateStandardInformation, buf,
					       (DWORD)need_high - 1, &got, &h),
		     HR_TOO_SMALL);
	cr_expect_eq(got, need_high);
	cr_assert_eq(FilterFindFirst(FilterAggregateStandardInformation, buf, (DWORD)need_high,
				     &got, &h),
		     S_OK);
	expect_filter("FpMgmtHigh", "385100", 1, got);

	cr_assert_eq((uint32_t)FilterFindNext(h, FilterAggregateStandardInformation, buf,
					      sizeof(FILTER_AGGREGATE_STANDARD_INFORMATION), &got),
		     HR_TOO_SMALL);
	cr_expect_eq(got, need_low);
	cr_assert_eq(
		FilterFindNext(h, FilterAggregateStandardInformation, buf, (DWORD)need_low, &got),
		S_OK, "the entry that did not fit comes again");
	expect_filter("FpMgmtLow", "140000", 0, got);
	cr_assert_eq(FilterFindClose(h), S_OK);
}

/* No filter runs: FindFirst ends at once.  Bad arguments: E_INVALIDARG. */
Test(args, no_filters_and_bad_arguments)
{
	HANDLE h = (HANDLE)0x1234;
	DWORD got = 0;

	cr_assert_eq((uint32_t)FilterFindFirst(FilterFullInformation, buf, sizeof(buf), &got, &h),
		     HR_NO_MORE);
	cr_expect_eq(h, INVALID_HANDLE_VALUE);
	cr_expect_eq(
		(uint32_t)FilterFindFirst((FILTER_INFORMATION_CLASS)3, buf, sizeof(buf), &got, &h),
		HR_INVALIDARG);
	cr_expect_eq((uint32_t)FilterFindFirst(FilterFullInformation, buf, sizeof(buf), NULL, &h),
		     HR_INVALIDARG);
	cr_expect_eq((uint32_t)FilterFindFirst(FilterFullInformation, NULL, 64, &got, &h),
		     HR_INVALIDARG);
	cr_expect_eq((uint32_t)FilterFindNext((HANDLE)0x1234, FilterFullInformation, buf,
					      sizeof(buf), &got),
		     HR_HANDLE);
}

/* Neither root nor the filters' user: E_ACCESSDENIED, as fltmc without
 * administrator rights. */
Test(filters, not_root_is_denied)
{
	int status;
	pid_t pid;

	start_filter("FpMgmtHigh", "385100", fsbox_mnt);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		HANDLE h;
		DWORD got;
		HRESULT hr;
		int bad = 0;

		if (tu_drop_to(65534, 65534) != 0)
			_exit(10);
		hr = FilterFindFirst(FilterFullInformation, buf, sizeof(buf), &got, &h);
		bad |= (uint32_t)hr != HR_ACCESS_DENIED;
		hr = FilterCreate(L"FpMgmtHigh", &h);
		bad |= ((uint32_t)hr != HR_ACCESS_DENIED) << 1;
		hr = FilterInstanceFindFirst(L"FpMgmtHigh", InstanceBasicInformation, buf,
					     sizeof(buf), &got, &h);
		bad |= ((uint32_t)hr != HR_ACCESS_DENIED) << 2;
		hr = FilterAttach(L"FpMgmtHigh", W(fs2), NULL, 0, NULL);
		bad |= ((uint32_t)hr != HR_ACCESS_DENIED) << 3;
		hr = FilterLoad(L"FpMgmtHigh");
		bad |= ((uint32_t)hr != HR_PRIVILEGE_NOT_HELD) << 4;
		hr = FilterUnload(L"FpMgmtHigh");
		bad |= ((uint32_t)hr != HR_PRIVILEGE_NOT_HELD) << 5;
		hr = FilterVolumeInstanceFindFirst(W(fsbox_mnt), InstanceBasicInformation, buf,
						   sizeof(buf), &got, &h);
		bad |= ((uint32_t)hr != HR_ACCESS_DENIED) << 6;
		/* The mount table is everyone's. */
		hr = FilterGetDosName(W(fsbox_mnt), (WCHAR *)buf, 512);
		bad |= (hr != S_OK) << 7;
		_exit(bad);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 0,
		     "unprivileged results wrong (bits: 1 find, 2 create, 4 instances, 8 attach, "
		     "16 load, 32 unload, 64 volume instances, 128 dos name): %d",
		     WEXITSTATUS(status));
}

/* ---- instances ---- */

Test(instances, of_a_filter)
{
	HANDLE h = INVALID_HANDLE_VALUE;
	DWORD got = 0;

	start_filter("FpMgmtHigh", "385100", fsbox_mnt);
	start_filter("FpMgmtLow", "140000", NULL);

	cr_assert_eq(FilterInstanceFindFirst(L"FpMgmtHigh", InstanceFullInformation, buf,
					     sizeof(buf), &got, &h),
		     S_OK);
	{
		PINSTANCE_FULL_INFORMATION f = (void *)buf;

		cr_expect_eq(f->NextEntryOffset, 0u);
		cr_expect_str_eq(S(f, f->InstanceNameBufferOffset, f->InstanceNameLength),
				 "FpMgmtHigh Instance");
		cr_expect_str_eq(S(f, f->AltitudeBufferOffset, f->AltitudeLength), "385100");
		cr_expect_str_eq(S(f, f->VolumeNameBufferOffset, f->VolumeNameLength), fsbox_mnt);
		cr_expect_str_eq(S(f, f->FilterNameBufferOffset, f->FilterNameLength),
				 "FpMgmtHigh");
		cr_expect_eq(got, sizeof(*f) + wbytes("FpMgmtHigh Instance") + wbytes("385100") +
					  wbytes(fsbox_mnt) + wbytes("FpMgmtHigh"));
	}
	cr_assert_eq((uint32_t)FilterInstanceFindNext(h, InstanceFullInformation, buf, sizeof(buf),
						      &got),
		     HR_NO_MORE);
	cr_assert_eq(FilterInstanceFindClose(h), S_OK);

	/* The other classes. */
	cr_assert_eq(FilterInstanceFindFirst(L"FpMgmtHigh", InstanceBasicInformation, buf,
					     sizeof(buf), &got, &h),
		     S_OK);
	{
		PINSTANCE_BASIC_INFORMATION b = (void *)buf;

		cr_expect_str_eq(S(b, b->InstanceNameBufferOffset, b->InstanceNameLength),
				 "FpMgmtHigh Instance");
		cr_expect_eq(got, sizeof(*b) + wbytes("FpMgmtHigh Instance"));
	}
	cr_assert_eq(FilterInstanceFindClose(h), S_OK);
	cr_assert_eq(FilterInstanceFindFirst(L"FpMgmtHigh", InstancePartialInformation, buf,
					     sizeof(buf), &got, &h),
		     S_OK);
	{
		PINSTANCE_PARTIAL_INFORMATION p = (void *)buf;

		cr_expect_str_eq(S(p, p->AltitudeBufferOffset, p->AltitudeLength), "385100");
	}
	cr_assert_eq(FilterInstanceFindClose(h), S_OK);
	cr_assert_eq(FilterInstanceFindFirst(L"FpMgmtHigh", InstanceAggregateStandardInformation,
					     buf, sizeof(buf), &got, &h),
		     S_OK);
	{
		PINSTANCE_AGGREGATE_STANDARD_INFORMATION a = (void *)buf;

		cr_expect_eq(a->Flags, (ULONG)FLTFL_IASI_IS_MINIFILTER);
		cr_expect_eq(a->Type.MiniFilter.Flags, 0u);
		cr_expect_eq(a->Type.MiniFilter.FrameID, 0u);
		cr_expect_eq(a->Type.MiniFilter.VolumeFileSystemType, FLT_FSTYPE_UNKNOWN,
			     "tmpfs has no Windows type");
		cr_expect_str_eq(S(a, a->Type.MiniFilter.VolumeNameBufferOffset,
				   a->Type.MiniFilter.VolumeNameLength),
				 fsbox_mnt);
		cr_expect_str_eq(S(a, a->Type.MiniFilter.FilterNameBufferOffset,
				   a->Type.MiniFilter.FilterNameLength),
				 "FpMgmtHigh");
	}
	cr_assert_eq(FilterInstanceFindClose(h), S_OK);

	/* A filter without instances, and one that does not run. */
	h = (HANDLE)0x1234;
	cr_assert_eq((uint32_t)FilterInstanceFindFirst(L"FpMgmtLow", InstanceBasicInformation, buf,
						       sizeof(buf), &got, &h),
		     HR_NO_MORE);
	cr_expect_eq(h, INVALID_HANDLE_VALUE);
	cr_assert_eq((uint32_t)FilterInstanceFindFirst(L"FpMgmtNoSuch", InstanceBasicInformation,
						       buf, sizeof(buf), &got, &h),
		     HR_FILTER_NOT_FOUND);
	/* Too small. */
	got = 0;
	cr_assert_eq((uint32_t)FilterInstanceFindFirst(L"FpMgmtHigh", InstanceBasicInformation, buf,
						       4, &got, &h),
		     HR_TOO_SMALL);
	cr_expect_eq(got, sizeof(INSTANCE_BASIC_INFORMATION) + wbytes("FpMgmtHigh Instance"));
	cr_expect_eq(h, INVALID_HANDLE_VALUE);
}

Test(instances, of_a_volume)
{
	HANDLE h = INVALID_HANDLE_VALUE;
	DWORD got = 0;
	char slash[400];

	start_filter("FpMgmtHigh", "385100", fsbox_mnt);
	start_filter("FpMgmtLow", "140000", fsbox_mnt);

	/* Top of the stack first; a trailing "/" is optional. */
	snprintf(slash, sizeof(slash), "%s/", fsbox_mnt);
	cr_assert_eq(FilterVolumeInstanceFindFirst(W(slash), InstancePartialInformation, buf,
						   sizeof(buf), &got, &h),
		     S_OK);
	{
		PINSTANCE_PARTIAL_INFORMATION p = (void *)buf;

		cr_expect_str_eq(S(p, p->InstanceNameBufferOffset, p->InstanceNameLength),
				 "FpMgmtHigh Instance");
		cr_expect_str_eq(S(p, p->AltitudeBufferOffset, p->AltitudeLength), "385100");
	}
	cr_assert_eq(
		FilterVolumeInstanceFindNext(h, InstancePartialInformation, buf, sizeof(buf), &got),
		S_OK);
	{
		PINSTANCE_PARTIAL_INFORMATION p = (void *)buf;

		cr_expect_str_eq(S(p, p->InstanceNameBufferOffset, p->InstanceNameLength),
				 "FpMgmtLow Instance");
	}
	cr_assert_eq((uint32_t)FilterVolumeInstanceFindNext(h, InstancePartialInformation, buf,
							    sizeof(buf), &got),
		     HR_NO_MORE);
	cr_assert_eq((uint32_t)FilterInstanceFindClose(h), HR_HANDLE, "not that kind of search");
	cr_assert_eq(FilterVolumeInstanceFindClose(h), S_OK);

	cr_assert_eq((uint32_t)FilterVolumeInstanceFindFirst(W(fs2), InstanceBasicInformation, buf,
							     sizeof(buf), &got, &h),
		     HR_NO_MORE, "nothing is attached to the second tmpfs");
	cr_assert_eq((uint32_t)FilterVolumeInstanceFindFirst(L"/no/such/volume",
							     InstanceBasicInformation, buf,
							     sizeof(buf), &got, &h),
		     HR_VOLUME_NOT_FOUND);
	cr_assert_eq((uint32_t)FilterVolumeInstanceFindFirst(W(fsbox_dir), InstanceBasicInformation,
							     buf, sizeof(buf), &got, &h),
		     HR_VOLUME_NOT_FOUND, "a directory is not a volume");
}

/* ---- volumes ---- */

static size_t mount_count(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[8192];
	size_t n = 0;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n;
}

Test(volumes, enumerate_and_dos_names)
{
	HANDLE h = INVALID_HANDLE_VALUE;
	DWORD got = 0;
	size_t n = 0, seen = 0;
	WCHAR dos[512];
	char slash[400];
	HRESULT hr;

	for (hr = FilterVolumeFindFirst(FilterVolumeStandardInformation, buf, sizeof(buf), &got,
					&h);
	     hr == S_OK; hr = FilterVolumeFindNext(h, FilterVolumeStandardInformation, buf,
						   sizeof(buf), &got)) {
		PFILTER_VOLUME_STANDARD_INFORMATION v = (void *)buf;
		const char *name =
			S(v, offsetof(FILTER_VOLUME_STANDARD_INFORMATION, FilterVolumeName),
			  v->FilterVolumeNameLength);

		n++;
		cr_expect_eq(v->NextEntryOffset, 0u);
		cr_expect_eq(v->FrameID, 0u);
		cr_expect_eq(got, offsetof(FILTER_VOLUME_STANDARD_INFORMATION, FilterVolumeName) +
					  v->FilterVolumeNameLength);
		if (strcmp(name, fsbox_mnt) == 0 || strcmp(name, fs2) == 0) {
			seen++;
			cr_expect_eq(v->FileSystemType, FLT_FSTYPE_UNKNOWN);
			cr_expect_eq(v->Flags, 0u);
		}
	}
	cr_assert_eq((uint32_t)hr, HR_NO_MORE);
	cr_assert_eq(FilterVolumeFindClose(h), S_OK);
	cr_expect_eq(n, mount_count(), "one volume per mount");
	cr_expect_eq(seen, 2u, "both test file systems listed");

	/* The basic class, and a buffer too small for it. */
	cr_assert_eq(
		(uint32_t)FilterVolumeFindFirst(FilterVolumeBasicInformation, buf, 2, &got, &h),
		HR_TOO_SMALL);
	cr_assert_eq(FilterVolumeFindFirst(FilterVolumeBasicInformation, buf, got, &got, &h), S_OK);
	{
		PFILTER_VOLUME_BASIC_INFORMATION b = (void *)buf;

		cr_expect_eq(got, offsetof(FILTER_VOLUME_BASIC_INFORMATION, FilterVolumeName) +
					  b->FilterVolumeNameLength);
	}
	cr_assert_eq(FilterVolumeFindClose(h), S_OK);

	/* A volume's DOS name is its mount point. */
	snprintf(slash, sizeof(slash), "%s/", fsbox_mnt);
	cr_assert_eq(FilterGetDosName(W(slash), dos, 512), S_OK);
	cr_expect(wcscmp(dos, W(fsbox_mnt)) == 0, "dos name %ls", dos);
	cr_assert_eq((uint32_t)FilterGetDosName(W(fsbox_mnt), dos, (DWORD)strlen(fsbox_mnt)),
		     HR_TOO_SMALL, "no room for the NUL");
	cr_assert_eq(FilterGetDosName(W(fsbox_mnt), dos, (DWORD)strlen(fsbox_mnt) + 1), S_OK);
	cr_assert_eq((uint32_t)FilterGetDosName(L"/no/such/volume", dos, 512), HR_VOLUME_NOT_FOUND);
}

/* ---- attach, detach ---- */

/* The instance names on a volume, highest first, joined with ",". */
static const char *volume_instances(const char *volume)
{
	char *out = tu_scratch();
	HANDLE h;
	DWORD got;
	HRESULT hr;

	out[0] = '\0';
	for (hr = FilterVolumeInstanceFindFirst(W(volume), InstanceBasicInformation, buf,
						sizeof(buf), &got, &h);
	     hr == S_OK; hr = FilterVolumeInstanceFindNext(h, InstanceBasicInformation, buf,
							   sizeof(buf), &got)) {
		PINSTANCE_BASIC_INFORMATION b = (void *)buf;

		if (out[0])
			strcat(out, ",");
		strcat(out, S(b, b->InstanceNameBufferOffset, b->InstanceNameLength));
	}
	cr_assert_eq((uint32_t)hr, HR_NO_MORE, "listing %s: 0x%08X", volume, (unsigned)hr);
	if (h != INVALID_HANDLE_VALUE)
		FilterVolumeInstanceFindClose(h);
	return out;
}

/* The next OPEN or SETUP line of a filter. */
static const char *next_line(struct tu_proc *p, const char *prefix)
{
	char *line = tu_scratch();

	cr_assert(tu_expect(p, prefix, line, 2048, LINE_MS), "no %s line", prefix);
	return line;
}

Test(attach, attach_and_detach_change_what_the_filter_sees)
{
	struct tu_proc *f = start_filter("FpMgmtLow", "140000", NULL);
	WCHAR created[INSTANCE_NAME_MAX_CHARS + 1];
	char probe[512];
	const char *line;

	/* Attach: the filter is asked, the instance is listed, and opens on
	 * the volume reach the filter. */
	cr_assert_eq(FilterAttach(L"FpMgmtLow", W(fs2), NULL, sizeof(created), created), S_OK);
	cr_expect(wcscmp(created, L"FpMgmtLow Instance") == 0, "created %ls", created);
	line = next_line(f, "SETUP");
	cr_expect_str_eq(tu_field(line, "op"), "attach");
	cr_expect_str_eq(volume_instances(fs2), "FpMgmtLow Instance");
	snprintf(probe, sizeof(probe), "%s/probe1", fs2);
	fsbox_write(probe, "x", 0644);
	line = next_line(f, "OPEN");
	cr_expect_str_eq(tu_field(line, "path"), probe);

	/* Detach: gone from the list, and the volume is no longer seen. */
	cr_assert_eq(FilterDetach(L"FpMgmtLow", W(fs2), NULL), S_OK);
	line = next_line(f, "SETUP");
	cr_expect_str_eq(tu_field(line, "op"), "detach");
	cr_expect_str_eq(volume_instances(fs2), "");
	snprintf(probe, sizeof(probe), "%s/probe2", fs2);
	fsbox_write(probe, "x", 0644);
	/* A later open elsewhere is the next thing the filter reports: the
	 * one on the detached volume never reached it. */
	cr_assert_eq(FilterAttach(L"FpMgmtLow", W(fsbox_mnt), L"Second", 0, NULL), S_OK);
	next_line(f, "SETUP");
	fsbox_write(fsbox_path("probe3"), "x", 0644);
	line = next_line(f, "OPEN");
	cr_expect_str_eq(tu_field(line, "path"), fsbox_path("probe3"));
	cr_expect_str_eq(volume_instances(fsbox_mnt), "Second");

	cr_assert_eq((uint32_t)FilterDetach(L"FpMgmtLow", W(fs2), NULL), HR_INSTANCE_NOT_FOUND);
	cr_assert_eq((uint32_t)FilterDetach(L"FpMgmtLow", W(fsbox_mnt), L"NoSuchInstance"),
		     HR_INSTANCE_NOT_FOUND);
	cr_assert_eq(FilterDetach(L"FpMgmtLow", W(fsbox_mnt), L"Second"), S_OK);
}

Test(attach, errors)
{
	struct tu_proc *f = start_filter("FpMgmtLow", "140000", NULL);
	WCHAR small[4];

	start_filter("FpMgmtHigh", "385100", fsbox_mnt);

	cr_expect_eq((uint32_t)FilterAttach(L"FpMgmtNoSuch", W(fs2), NULL, 0, NULL),
		     HR_FILTER_NOT_FOUND);
	cr_expect_eq((uint32_t)FilterDetach(L"FpMgmtNoSuch", W(fs2), NULL), HR_FILTER_NOT_FOUND);
	cr_expect_eq((uint32_t)FilterAttach(L"FpMgmtLow", L"/no/such/volume", NULL, 0, NULL),
		     HR_VOLUME_NOT_FOUND);
	cr_expect_eq((uint32_t)FilterDetach(L"FpMgmtLow", L"/no/such/volume", NULL),
		     HR_VOLUME_NOT_FOUND);
	cr_expect_eq((uint32_t)FilterAttach(NULL, W(fs2), NULL, 0, NULL), HR_INVALIDARG);
	cr_expect_eq((uint32_t)FilterAttachAtAltitude(L"FpMgmtLow", W(fs2), L"12x", NULL, 0, NULL),
		     HR_INVALIDARG);
	/* The created name would not fit: nothing is attached. */
	cr_expect_eq((uint32_t)FilterAttach(L"FpMgmtLow", W(fs2), NULL, sizeof(small), small),
		     HR_TOO_SMALL);
	cr_expect_str_eq(volume_instances(fs2), "");

	/* The filter's instance setup refuses. */
	cr_expect_eq((uint32_t)FilterAttach(L"FpMgmtLow", W(fs2), L"refuse-me", 0, NULL),
		     HR_DO_NOT_ATTACH);
	cr_expect_str_eq(tu_field(next_line(f, "SETUP"), "instance"), "refuse-me");
	cr_expect_str_eq(volume_instances(fs2), "");

	/* Collisions on a volume: the name, then the altitude. */
	cr_expect_eq(
		(uint32_t)FilterAttach(L"FpMgmtLow", W(fsbox_mnt), L"FpMgmtHigh Instance", 0, NULL),
		HR_NAME_COLLISION);
	cr_expect_eq((uint32_t)FilterAttachAtAltitude(L"FpMgmtLow", W(fsbox_mnt), L"385100",
						      L"Other", 0, NULL),
		     HR_ALTITUDE_COLLISION);
	cr_expect_str_eq(volume_instances(fsbox_mnt), "FpMgmtHigh Instance");

	/* At another altitude it goes; a second instance of the same filter
	 * on the same file system is a collision. */
	cr_expect_eq(
		FilterAttachAtAltitude(L"FpMgmtLow", W(fsbox_mnt), L"200000", L"Middle", 0, NULL),
		S_OK);
	next_line(f, "SETUP");
	cr_expect_str_eq(volume_instances(fsbox_mnt), "FpMgmtHigh Instance,Middle");
	cr_expect_eq((uint32_t)FilterAttach(L"FpMgmtLow", W(fsbox_mnt), L"Another", 0, NULL),
		     HR_NAME_COLLISION);
	/* (the filter is not asked about an attach that cannot be done) */

	/* Detach refused by the filter. */
	cr_expect_eq(FilterAttach(L"FpMgmtLow", W(fs2), L"keep-me", 0, NULL), S_OK);
	cr_expect_str_eq(tu_field(next_line(f, "SETUP"), "instance"), "keep-me");
	cr_expect_eq((uint32_t)FilterDetach(L"FpMgmtLow", W(fs2), L"keep-me"), HR_DO_NOT_DETACH);
	cr_expect_str_eq(volume_instances(fs2), "keep-me");
}

/* ---- handles ---- */

Test(handles, filter_and_instance_handles)
{
	struct tu_proc *f = start_filter("FpMgmtHigh", "385100", fsbox_mnt);
	HANDLE h = (HANDLE)0x1234, hi = (HANDLE)0x1234;
	DWORD got = 0;

	cr_assert_eq((uint32_t)FilterCreate(L"FpMgmtNoSuch", &h), HR_FILTER_NOT_FOUND);
	cr_expect_eq(h, INVALID_HANDLE_VALUE);
	cr_assert_eq(FilterCreate(L"FpMgmtHigh", &h), S_OK);
	cr_assert_eq(FilterGetInformation(h, FilterFullInformation, buf, sizeof(buf), &got), S_OK);
	{
		PFILTER_FULL_INFORMATION fi = (void *)buf;

		cr_expect_eq(fi->NumberOfInstances, 1u);
		cr_expect_str_eq(S(fi, offsetof(FILTER_FULL_INFORMATION, FilterNameBuffer),
				   fi->FilterNameLength),
				 "FpMgmtHigh");
	}
	cr_assert_eq(
		(uint32_t)FilterGetInformation(h, FilterAggregateStandardInformation, buf, 8, &got),
		HR_TOO_SMALL);
	cr_expect_eq(got, sizeof(FILTER_AGGREGATE_STANDARD_INFORMATION) + wbytes("FpMgmtHigh") +
				  wbytes("385100"));

	cr_assert_eq((uint32_t)FilterInstanceCreate(L"FpMgmtHigh", W(fs2), NULL, &hi),
		     HR_INSTANCE_NOT_FOUND);
	cr_expect_eq(hi, INVALID_HANDLE_VALUE);
	cr_assert_eq((uint32_t)FilterInstanceCreate(L"FpMgmtHigh", L"/no/such/volume", NULL, &hi),
		     HR_VOLUME_NOT_FOUND);
	cr_assert_eq((uint32_t)FilterInstanceCreate(L"FpMgmtHigh", W(fsbox_mnt), L"NoSuch", &hi),
		     HR_INSTANCE_NOT_FOUND);
	cr_assert_eq(FilterInstanceCreate(L"FpMgmtHigh", W(fsbox_mnt), NULL, &hi), S_OK);
	cr_assert_eq(FilterInstanceGetInformation(hi, InstancePartialInformation, buf, sizeof(buf),
						  &got),
		     S_OK);
	{
		PINSTANCE_PARTIAL_INFORMATION p = (void *)buf;

		cr_expect_str_eq(S(p, p->InstanceNameBufferOffset, p->InstanceNameLength),
				 "FpMgmtHigh Instance");
		cr_expect_str_eq(S(p, p->AltitudeBufferOffset, p->AltitudeLength), "385100");
	}
	cr_assert_eq(
		(uint32_t)FilterGetInformation(hi, FilterFullInformation, buf, sizeof(buf), &got),
		HR_HANDLE, "an instance handle is no filter handle");

	/* The filter dies: its handles answer "not found", and are still
	 * closed normally. */
	tu_kill(f, SIGKILL);
	cr_assert_eq(
		(uint32_t)FilterGetInformation(h, FilterFullInformation, buf, sizeof(buf), &got),
		HR_FILTER_NOT_FOUND);
	cr_assert_eq((uint32_t)FilterInstanceGetInformation(hi, InstanceBasicInformation, buf,
							    sizeof(buf), &got),
		     HR_INSTANCE_NOT_FOUND);
	cr_assert_eq(FilterInstanceClose(hi), S_OK);
	cr_assert_eq((uint32_t)FilterInstanceClose(hi), HR_HANDLE);
	cr_assert_eq(FilterClose(h), S_OK);
	cr_assert_eq((uint32_t)FilterClose(h), HR_HANDLE);
}

/* FilterClose on a port handle is CloseHandle. */
Test(handles, filter_close_closes_a_port)
{
	const char *port = tu_port_name("mgmt");
	const char *args[] = { "serve", port, "--everyone", NULL };
	struct tu_proc p = tu_spawn("fp_server_peer", args);
	char line[256];
	HANDLE h = INVALID_HANDLE_VALUE;
	DWORD got = 0;

	cr_assert(tu_expect(&p, "LISTENING", line, sizeof(line), LINE_MS));
	procs[nprocs++] = p;
	cr_assert_eq(FilterConnectCommunicationPort(W(port), 0, NULL, 0, NULL, &h), S_OK);
	cr_assert(tu_expect(&p, "CONNECT", line, sizeof(line), LINE_MS));
	cr_assert_eq(FilterClose(h), S_OK);
	cr_assert(tu_expect(&p, "DISCONNECT", line, sizeof(line), LINE_MS),
		  "closing the handle ends the connection");
	cr_assert_eq((uint32_t)FilterSendMessage(h, "x", 1, NULL, 0, &got), HR_HANDLE);
	cr_assert_eq((uint32_t)CloseHandle(h), (uint32_t)FALSE);
}

/* No driver to load: what each case gives (as root). */
Test(handles, load_and_unload)
{
	start_filter("FpMgmtHigh", "385100", NULL);
	cr_expect_eq((uint32_t)FilterLoad(L"FpMgmtHigh"), HR_ALREADY_EXISTS);
	cr_expect_eq((uint32_t)FilterLoad(L"FpMgmtNoSuch"), HR_NOT_SUPPORTED);
	cr_expect_eq((uint32_t)FilterUnload(L"FpMgmtHigh"), HR_NOT_SUPPORTED);
	cr_expect_eq((uint32_t)FilterUnload(L"FpMgmtNoSuch"), HR_FILTER_NOT_FOUND);
	cr_expect_eq((uint32_t)FilterLoad(NULL), HR_INVALIDARG);
}

/* ---- win_fltmc ---- */

/* Run win_fltmc with arguments; its output in `out` (lines), exit code. */
static int fltmc(char *out, size_t cap, const char *a1, const char *a2, const char *a3,
		 const char *a4)
{
	const char *args[] = { a1, a2, a3, a4, NULL };
	struct tu_proc p = tu_spawn("win_fltmc", args);
	char line[1024];
	size_t n = 0;

	out[0] = '\0';
	while (tu_read_line(&p, line, sizeof(line), LINE_MS)) {
		size_t k = strlen(line);

		cr_assert_lt(n + k + 2, cap, "win_fltmc output too long");
		memcpy(out + n, line, k);
		n += k;
		out[n++] = '\n';
		out[n] = '\0';
	}
	return tu_wait(&p, LINE_MS);
}

/* A line of `out` that contains every one of the strings. */
static bool has_row(const char *out, const char *a, const char *b, const char *c, const char *d)
{
	const char *line = out;

	while (*line) {
		const char *end = strchr(line, '\n');
		char row[1024];
		size_t k = end ? (size_t)(end - line) : strlen(line);

		snprintf(row, sizeof(row), "%.*s", (int)k, line);
		if (strstr(row, a) && (!b || strstr(row, b)) && (!c || strstr(row, c)) &&
		    (!d || strstr(row, d)))
			return true;
		line += k + (end ? 1 : 0);
	}
	return false;
}

Test(fltmc, lists_attaches_detaches)
{
	static char out[1 << 16];
	char inst[512];

	start_filter("FpMgmtHigh", "385100", fsbox_mnt);
	start_filter("FpMgmtLow", "140000", NULL);

	cr_assert_eq(fltmc(out, sizeof(out), "filters", NULL, NULL, NULL), 0, "%s", out);
	cr_expect(strncmp(out, "Filter Name", 11) == 0, "%s", out);
	cr_expect(has_row(out, "FpMgmtHigh", " 1 ", "385100", NULL), "%s", out);
	cr_expect(has_row(out, "FpMgmtLow", " 0 ", "140000", NULL), "%s", out);
	cr_expect(strstr(out, "FpMgmtHigh") < strstr(out, "FpMgmtLow"), "highest first: %s", out);

	cr_assert_eq(fltmc(out, sizeof(out), "instances", NULL, NULL, NULL), 0, "%s", out);
	cr_expect(has_row(out, "FpMgmtHigh", fsbox_mnt, "385100", "FpMgmtHigh Instance"), "%s",
		  out);
	cr_expect(!has_row(out, "FpMgmtLow", NULL, NULL, NULL), "%s", out);

	cr_assert_eq(fltmc(out, sizeof(out), "volumes", NULL, NULL, NULL), 0, "%s", out);
	cr_expect(has_row(out, fsbox_mnt, "Unknown", NULL, NULL), "%s", out);
	cr_expect(has_row(out, fs2, "Unknown", NULL, NULL), "%s", out);

	cr_assert_eq(fltmc(out, sizeof(out), "attach", "FpMgmtLow", fs2, NULL), 0, "%s", out);
	cr_expect(strstr(out, "\"FpMgmtLow Instance\"") != NULL, "%s", out);
	cr_assert_eq(fltmc(out, sizeof(out), "instances", "-v", fs2, NULL), 0, "%s", out);
	cr_expect(has_row(out, "FpMgmtLow", fs2, "140000", "FpMgmtLow Instance"), "%s", out);
	cr_assert_eq(fltmc(out, sizeof(out), "attach", "FpMgmtLow", fs2, NULL), 1, "%s", out);
	cr_expect(strstr(out, "Attach failed with error: 0x801F0012") != NULL, "%s", out);
	cr_assert_eq(fltmc(out, sizeof(out), "detach", "FpMgmtLow", fs2, NULL), 0, "%s", out);
	cr_assert_eq(fltmc(out, sizeof(out), "instances", "-f", "FpMgmtLow", NULL), 0, "%s", out);
	cr_expect(!has_row(out, "FpMgmtLow Instance", NULL, NULL, NULL), "%s", out);

	cr_assert_eq(fltmc(out, sizeof(out), "instances", "-f", "FpMgmtNoSuch", NULL), 1, "%s",
		     out);
	cr_expect(strstr(out, "failed with error: 0x801F0013") != NULL, "%s", out);
	snprintf(inst, sizeof(inst), "%s/nothing-mounted-here", fsbox_dir);
	cr_assert_eq(fltmc(out, sizeof(out), "detach", "FpMgmtLow", inst, NULL), 1, "%s", out);
	cr_expect(strstr(out, "Detach failed with error: 0x801F0014") != NULL, "%s", out);
}

/* The file-system types, row by row as docs/PORTING.md lists them. */
Test(args, file_system_types)
{
	static const struct {
		const char *linux_type;
		FLT_FILESYSTEM_TYPE want;
	} rows[] = {
		{ "ntfs", FLT_FSTYPE_NTFS },       { "ntfs3", FLT_FSTYPE_NTFS },
		{ "vfat", FLT_FSTYPE_FAT },        { "msdos", FLT_FSTYPE_FAT },
		{ "fat", FLT_FSTYPE_FAT },         { "exfat", FLT_FSTYPE_EXFAT },
		{ "iso9660", FLT_FSTYPE_CDFS },    { "udf", FLT_FSTYPE_UDFS },
		{ "cifs", FLT_FSTYPE_LANMAN },     { "smb3", FLT_FSTYPE_LANMAN },
		{ "smbfs", FLT_FSTYPE_LANMAN },    { "nfs", FLT_FSTYPE_NFS },
		{ "nfs4", FLT_FSTYPE_NFS },        { "davfs", FLT_FSTYPE_WEBDAV },
		{ "gpfs", FLT_FSTYPE_GPFS },       { "afs", FLT_FSTYPE_OPENAFS },
		{ "openafs", FLT_FSTYPE_OPENAFS }, { "ext4", FLT_FSTYPE_UNKNOWN },
		{ "xfs", FLT_FSTYPE_UNKNOWN },     { "btrfs", FLT_FSTYPE_UNKNOWN },
		{ "tmpfs", FLT_FSTYPE_UNKNOWN },   { "overlay", FLT_FSTYPE_UNKNOWN },
		{ "fuseblk", FLT_FSTYPE_UNKNOWN }, { "proc", FLT_FSTYPE_UNKNOWN },
		{ "", FLT_FSTYPE_UNKNOWN },        { "NTFS", FLT_FSTYPE_UNKNOWN },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		cr_expect_eq(fpw_fs_type(rows[i].linux_type), rows[i].want, "%s -> %d, want %d",
			     rows[i].linux_type, (int)fpw_fs_type(rows[i].linux_type),
			     (int)rows[i].want);
}

/* Altitudes compare as numbers, by their digits: exact at any length. */
Test(args, altitude_order)
{
	static const struct {
		const char *a, *b;
		int want;
	} rows[] = {
		{ "385100", "385100", 0 },
		{ "0385100", "385100", 0 },
		{ "370030.5", "370030.50", 0 },
		{ "370030", "370030.0", 0 },
		{ "370030.", "370030", 0 },
		{ "370030.5", "370030.2", 1 },
		{ "370030.25", "370030.3", -1 },
		{ "99", "100", -1 },
		{ "100.1", "99.9", 1 },
		{ ".5", "0.4", 1 },
		{ "12345678901234567890.1", "12345678901234567890.2", -1 },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int ab = fpw_altitude_cmp(rows[i].a, rows[i].b);
		int ba = fpw_altitude_cmp(rows[i].b, rows[i].a);

		cr_expect_eq((ab > 0) - (ab < 0), rows[i].want, "%s vs %s: %d", rows[i].a,
			     rows[i].b, ab);
		cr_expect_eq((ba > 0) - (ba < 0), -rows[i].want, "%s vs %s: %d", rows[i].b,
			     rows[i].a, ba);
	}
}

/* Where the decimal point is ',', strtod read "370030.5" as 370030: the
 * fraction was lost and two altitudes compared equal. */
Test(args, altitude_order_ignores_lc_numeric)
{
	static const char *const comma[] = { "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8",
					     "fr_FR.utf8",  "de_DE",      "fr_FR" };
	const char *used = NULL;

	for (size_t i = 0; i < sizeof(comma) / sizeof(comma[0]) && !used; i++) {
		if (setlocale(LC_NUMERIC, comma[i]) &&
		    strcmp(localeconv()->decimal_point, ",") == 0)
			used = comma[i];
	}
	if (!used)
		cr_skip_test("no comma-decimal locale installed (de_DE.UTF-8, fr_FR.UTF-8); "
			     "args/altitude_order covers the comparison");
	cr_expect_gt(fpw_altitude_cmp("370030.5", "370030.2"), 0, "in %s", used);
	cr_expect_lt(fpw_altitude_cmp("370030.25", "370030.3"), 0, "in %s", used);
	cr_expect_eq(fpw_altitude_cmp("370030.5", "370030.50"), 0, "in %s", used);
	setlocale(LC_NUMERIC, "C");
}
