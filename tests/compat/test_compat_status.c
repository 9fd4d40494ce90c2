/*
 * RtlNtStatusToDosError and the HRESULT a client sees (fltlib's rule,
 * fpw_hresult_from_ntstatus), row by row (SPEC §4; issue 8, defect 10: a
 * filter returning STATUS_NOT_A_DIRECTORY gave the client 0x8007013D instead
 * of 0x8007010B).
 *
 * The expected values below are written out by hand from Windows' mapping
 * (ntdll's table as Wine records it, and winerror.h), never computed from
 * the table under test.  Three checks tie them to the code: every row of the
 * table in src/compat/status.c has an expectation here, every STATUS_* the
 * Windows headers define has one, and every expectation holds.  The
 * end-to-end path (a real FilterSendMessage whose MessageNotify returns the
 * status) is Test(send, status_mapping) in test_compat_user.c.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <libgen.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>
#include <fltuser.h>
#include <fltkernel.h>
#include <ntstatus.h>

#include "compat/compat.h"

struct row {
	const char *name; /* the header's macro name */
	NTSTATUS macro;   /* the header's value */
	uint32_t status;  /* the value, written out */
	uint32_t win32;   /* RtlNtStatusToDosError on Windows */
	uint32_t hr;      /* what FilterSendMessage returns to the client */
};

/* The macro's name and its value, for the first two fields. */
#define NAMED(m) #m, m

/* Every STATUS_* of include/fltport/win, in value order. */
static const struct row rows[] = {
	{ NAMED(STATUS_SUCCESS), 0x00000000, 0, 0x00000000 },
	{ NAMED(STATUS_WAIT_0), 0x00000000, 0, 0x00000000 },
	{ NAMED(STATUS_TIMEOUT), 0x00000102, 1460, 0x80070102 },
	{ NAMED(STATUS_PENDING), 0x00000103, 997, 0x800703E5 },
	{ NAMED(STATUS_REPARSE), 0x00000104, 741, 0x800702E5 },
	{ NAMED(STATUS_MORE_ENTRIES), 0x00000105, 234, 0x800700EA },
	{ NAMED(STATUS_DATATYPE_MISALIGNMENT), 0x80000002, 998, 0x800703E6 },
	{ NAMED(STATUS_BUFFER_OVERFLOW), 0x80000005, 234, 0x800700EA },
	{ NAMED(STATUS_NO_MORE_FILES), 0x80000006, 18, 0x80070012 },
	{ NAMED(STATUS_DEVICE_BUSY), 0x80000011, 170, 0x800700AA },
	{ NAMED(STATUS_NO_MORE_ENTRIES), 0x8000001A, 259, 0x80070103 },
	{ NAMED(STATUS_UNSUCCESSFUL), 0xC0000001, 31, 0x8007001F },
	{ NAMED(STATUS_NOT_IMPLEMENTED), 0xC0000002, 1, 0x80070001 },
	{ NAMED(STATUS_INVALID_INFO_CLASS), 0xC0000003, 87, 0x80070057 },
	{ NAMED(STATUS_INFO_LENGTH_MISMATCH), 0xC0000004, 24, 0x80070018 },
	{ NAMED(STATUS_ACCESS_VIOLATION), 0xC0000005, 998, 0x800703E6 },
	{ NAMED(STATUS_INVALID_HANDLE), 0xC0000008, 6, 0x80070006 },
	{ NAMED(STATUS_INVALID_PARAMETER), 0xC000000D, 87, 0x80070057 },
	{ NAMED(STATUS_NO_SUCH_DEVICE), 0xC000000E, 2, 0x80070002 },
	{ NAMED(STATUS_NO_SUCH_FILE), 0xC000000F, 2, 0x80070002 },
	{ NAMED(STATUS_INVALID_DEVICE_REQUEST), 0xC0000010, 1, 0x80070001 },
	{ NAMED(STATUS_END_OF_FILE), 0xC0000011, 38, 0x80070026 },
	{ NAMED(STATUS_MORE_PROCESSING_REQUIRED), 0xC0000016, 234, 0x800700EA },
	{ NAMED(STATUS_NO_MEMORY), 0xC0000017, 8, 0x80070008 },
	{ NAMED(STATUS_ACCESS_DENIED), 0xC0000022, 5, 0x80070005 },
	{ NAMED(STATUS_BUFFER_TOO_SMALL), 0xC0000023, 122, 0x8007007A },
	{ NAMED(STATUS_OBJECT_TYPE_MISMATCH), 0xC0000024, 6, 0x80070006 },
	{ NAMED(STATUS_DISK_CORRUPT_ERROR), 0xC0000032, 1393, 0x80070571 },
	{ NAMED(STATUS_OBJECT_NAME_INVALID), 0xC0000033, 123, 0x8007007B },
	{ NAMED(STATUS_OBJECT_NAME_NOT_FOUND), 0xC0000034, 2, 0x80070002 },
	{ NAMED(STATUS_OBJECT_NAME_COLLISION), 0xC0000035, 183, 0x800700B7 },
	{ NAMED(STATUS_PORT_DISCONNECTED), 0xC0000037, 6, 0x80070006 },
	{ NAMED(STATUS_OBJECT_PATH_INVALID), 0xC0000039, 161, 0x800700A1 },
	{ NAMED(STATUS_OBJECT_PATH_NOT_FOUND), 0xC000003A, 3, 0x80070003 },
	{ NAMED(STATUS_OBJECT_PATH_SYNTAX_BAD), 0xC000003B, 161, 0x800700A1 },
	{ NAMED(STATUS_SHARING_VIOLATION), 0xC0000043, 32, 0x80070020 },
	{ NAMED(STATUS_QUOTA_EXCEEDED), 0xC0000044, 1816, 0x80070718 },
	{ NAMED(STATUS_THREAD_IS_TERMINATING), 0xC000004B, 5, 0x80070005 },
	{ NAMED(STATUS_FILE_LOCK_CONFLICT), 0xC0000054, 33, 0x80070021 },
	{ NAMED(STATUS_LOCK_NOT_GRANTED), 0xC0000055, 33, 0x80070021 },
	{ NAMED(STATUS_DELETE_PENDING), 0xC0000056, 5, 0x80070005 },
	{ NAMED(STATUS_REVISION_MISMATCH), 0xC0000059, 1306, 0x8007051A },
	{ NAMED(STATUS_PRIVILEGE_NOT_HELD), 0xC0000061, 1314, 0x80070522 },
	{ NAMED(STATUS_DISK_FULL), 0xC000007F, 112, 0x80070070 },
	{ NAMED(STATUS_INTEGER_OVERFLOW), 0xC0000095, 534, 0x80070216 },
	{ NAMED(STATUS_FILE_INVALID), 0xC0000098, 1006, 0x800703EE },
	{ NAMED(STATUS_INSUFFICIENT_RESOURCES), 0xC000009A, 1450, 0x800705AA },
	{ NAMED(STATUS_MEDIA_WRITE_PROTECTED), 0xC00000A2, 19, 0x80070013 },
	{ NAMED(STATUS_DEVICE_NOT_READY), 0xC00000A3, 21, 0x80070015 },
	{ NAMED(STATUS_ILLEGAL_FUNCTION), 0xC00000AF, 1, 0x80070001 },
	{ NAMED(STATUS_IO_TIMEOUT), 0xC00000B5, 121, 0x80070079 },
	{ NAMED(STATUS_FILE_IS_A_DIRECTORY), 0xC00000BA, 5, 0x80070005 },
	{ NAMED(STATUS_NOT_SUPPORTED), 0xC00000BB, 50, 0x80070032 },
	{ NAMED(STATUS_NOT_SAME_DEVICE), 0xC00000D4, 17, 0x80070011 },
	{ NAMED(STATUS_INTERNAL_ERROR), 0xC00000E5, 1359, 0x8007054F },
	{ NAMED(STATUS_INVALID_USER_BUFFER), 0xC00000E8, 1784, 0x800706F8 },
	{ NAMED(STATUS_DIRECTORY_NOT_EMPTY), 0xC0000101, 145, 0x80070091 },
	{ NAMED(STATUS_FILE_CORRUPT_ERROR), 0xC0000102, 1392, 0x80070570 },
	{ NAMED(STATUS_NOT_A_DIRECTORY), 0xC0000103, 267, 0x8007010B },
	{ NAMED(STATUS_NAME_TOO_LONG), 0xC0000106, 206, 0x800700CE },
	{ NAMED(STATUS_PROCESS_IS_TERMINATING), 0xC000010A, 5, 0x80070005 },
	{ NAMED(STATUS_TOO_MANY_OPENED_FILES), 0xC000011F, 4, 0x80070004 },
	{ NAMED(STATUS_CANCELLED), 0xC0000120, 995, 0x800703E3 },
	{ NAMED(STATUS_CANNOT_DELETE), 0xC0000121, 5, 0x80070005 },
	{ NAMED(STATUS_FILE_DELETED), 0xC0000123, 5, 0x80070005 },
	{ NAMED(STATUS_FILE_CLOSED), 0xC0000128, 6, 0x80070006 },
	{ NAMED(STATUS_PIPE_BROKEN), 0xC000014B, 109, 0x8007006D },
	{ NAMED(STATUS_INVALID_DEVICE_STATE), 0xC0000184, 22, 0x80070016 },
	{ NAMED(STATUS_IO_DEVICE_ERROR), 0xC0000185, 1117, 0x8007045D },
	{ NAMED(STATUS_INVALID_BUFFER_SIZE), 0xC0000206, 1784, 0x800706F8 },
	{ NAMED(STATUS_NOT_FOUND), 0xC0000225, 1168, 0x80070490 },
	{ NAMED(STATUS_RETRY), 0xC000022D, 1237, 0x800704D5 },
	{ NAMED(STATUS_REQUEST_ABORTED), 0xC0000240, 1235, 0x800704D3 },
	{ NAMED(STATUS_CONNECTION_COUNT_LIMIT), 0xC0000246, 1238, 0x800704D6 },
	{ NAMED(STATUS_VOLUME_DISMOUNTED), 0xC000026E, 21, 0x80070015 },
	{ NAMED(STATUS_CONTENT_BLOCKED), 0xC0000804, 1296, 0x80070510 },
	{ NAMED(STATUS_VIRUS_INFECTED), 0xC0000906, 225, 0x800700E1 },
	{ NAMED(STATUS_VIRUS_DELETED), 0xC0000907, 226, 0x800700E2 },
	/* FltMgr codes: ntdll has no row (ERROR_MR_MID_NOT_FOUND); fltlib
	 * maps them itself. */
	{ NAMED(STATUS_FLT_BUFFER_TOO_SMALL), 0x801C0001, 317, 0x8007007A },
	{ NAMED(STATUS_FLT_DELETING_OBJECT), 0xC01C000B, 317, 0x801F000B },
	{ NAMED(STATUS_FLT_DO_NOT_ATTACH), 0xC01C000F, 317, 0x801F000F },
	{ NAMED(STATUS_FLT_DO_NOT_DETACH), 0xC01C0010, 317, 0x801F0010 },
	{ NAMED(STATUS_FLT_INSTANCE_ALTITUDE_COLLISION), 0xC01C0011, 317, 0x801F0011 },
	{ NAMED(STATUS_FLT_INSTANCE_NAME_COLLISION), 0xC01C0012, 317, 0x801F0012 },
	{ NAMED(STATUS_FLT_FILTER_NOT_FOUND), 0xC01C0013, 317, 0x801F0013 },
	{ NAMED(STATUS_FLT_VOLUME_NOT_FOUND), 0xC01C0014, 317, 0x801F0014 },
	{ NAMED(STATUS_FLT_INSTANCE_NOT_FOUND), 0xC01C0015, 317, 0x801F0015 },
	{ NAMED(STATUS_FLT_NO_WAITER_FOR_REPLY), 0xC01C0020, 317, 0x801F0020 },
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

static const struct row *row_of_name(const char *name)
{
	for (size_t i = 0; i < NROWS; i++)
		if (strcmp(rows[i].name, name) == 0)
			return &rows[i];
	return NULL;
}

static const struct row *row_of_status(uint32_t status)
{
	for (size_t i = 0; i < NROWS; i++)
		if (rows[i].status == status)
			return &rows[i];
	return NULL;
}

/* The header's macros have the values written out above. */
Test(status, header_values)
{
	for (size_t i = 0; i < NROWS; i++)
		cr_expect_eq((uint32_t)rows[i].macro, rows[i].status, "%s is 0x%08X, want 0x%08X",
			     rows[i].name, (unsigned)rows[i].macro, rows[i].status);
}

/* RtlNtStatusToDosError and the client's HRESULT for one row. */
static void check_row(const struct row *r)
{
	ULONG win32 = RtlNtStatusToDosError((NTSTATUS)r->status);
	HRESULT hr = fpw_hresult_from_ntstatus((NTSTATUS)r->status);

	cr_expect_eq(win32, r->win32, "RtlNtStatusToDosError(0x%08X, %s) = %lu (0x%lX), want %u",
		     r->status, r->name, (unsigned long)win32, (unsigned long)win32, r->win32);
	cr_expect_eq((uint32_t)hr, r->hr, "0x%08X (%s): HRESULT 0x%08X, want 0x%08X", r->status,
		     r->name, (unsigned)hr, r->hr);
}

Test(status, every_status_maps_as_on_windows)
{
	for (size_t i = 0; i < NROWS; i++)
		check_row(&rows[i]);
}

/* The defect, on its own: not 0x8007013D (ERROR_MR_MID_NOT_FOUND). */
Test(status, not_a_directory_is_error_directory)
{
	cr_assert_eq(RtlNtStatusToDosError((NTSTATUS)0xC0000103u), 267u);
	cr_assert_eq((uint32_t)fpw_hresult_from_ntstatus((NTSTATUS)0xC0000103u), 0x8007010Bu);
}

/* No row of the table goes untested, and the table is in value order
 * without duplicates. */
Test(status, every_table_row_is_expected)
{
	NTSTATUS st;
	ULONG err;
	uint32_t prev = 0;
	size_t i;

	for (i = 0; fpw_dos_map_entry(i, &st, &err); i++) {
		const struct row *r = row_of_status((uint32_t)st);

		cr_expect(r != NULL, "table row %zu (0x%08X -> %lu) has no expectation here", i,
			  (unsigned)st, (unsigned long)err);
		if (r)
			cr_expect_eq(err, r->win32, "table row %zu: %s -> %lu, want %u", i, r->name,
				     (unsigned long)err, r->win32);
		cr_expect((uint32_t)st > prev, "table row %zu (0x%08X) out of order", i,
			  (unsigned)st);
		prev = (uint32_t)st;
	}
	cr_assert_gt(i, 70, "the table has %zu rows", i);
}

/* Every "#define STATUS_x" in include/fltport/win/ (found from this file's
 * path) has a row above. */
Test(status, every_header_status_is_expected)
{
	char here[1024], dir[1200], path[1200 + 1 + 256], line[512];
	regex_t re;
	regmatch_t m[2];
	struct dirent *e;
	DIR *d;
	int found = 0;

	snprintf(here, sizeof(here), "%s", __FILE__);
	cr_assert(here[0] == '/', "__FILE__ is not absolute: %s", __FILE__);
	snprintf(dir, sizeof(dir), "%s/../../include/fltport/win", dirname(here));
	d = opendir(dir);
	cr_assert_not_null(d, "%s: cannot open", dir);
	cr_assert_eq(regcomp(&re, "^#define (STATUS_[A-Z0-9_]+)[ \t]", REG_EXTENDED), 0);
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		FILE *f;

		if (n < 3 || strcmp(e->d_name + n - 2, ".h") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		f = fopen(path, "r");
		cr_assert_not_null(f, "%s", path);
		while (fgets(line, sizeof(line), f)) {
			if (regexec(&re, line, 2, m, 0) != 0)
				continue;
			line[m[1].rm_eo] = '\0';
			found++;
			cr_expect_not_null(row_of_name(line + m[1].rm_so),
					   "%s defines %s, which has no expectation here",
					   e->d_name, line + m[1].rm_so);
		}
		fclose(f);
	}
	closedir(d);
	regfree(&re);
	cr_assert_eq((size_t)found, NROWS, "the headers define %d STATUS_* names, %zu expected",
		     found, NROWS);
}

/* The rules around the table, in Windows' order (RtlNtStatusToDosError),
 * and fltlib's rule for other facilities (SPEC §4).  (`macro` unused.) */
Test(status, rules_outside_the_table)
{
	static const struct row cases[] = {
		{ "customer code: unchanged", 0, 0xE0000001, 0xE0000001, 0xE0000001 },
		{ "customer code: unchanged", 0, 0x20000005, 0x20000005, 0x80070005 },
		{ "NTSTATUS_FROM_WIN32(ERROR_ACCESS_DENIED): unwrapped; fltlib: E_FAIL", 0,
		  0xC0070005, 5, 0x80004005 },
		{ "NTSTATUS_FROM_WIN32(ERROR_DIRECTORY): unwrapped; fltlib: E_FAIL", 0, 0xC007010B,
		  267, 0x80004005 },
		{ "HRESULT_FROM_WIN32(ERROR_INVALID_PARAMETER): fltlib: E_FAIL", 0, 0x80070057, 87,
		  0x80004005 },
		{ "severity 0xD reads as 0xC", 0, 0xD0000022, 5, 0x80070005 },
		{ "severity 0xD reads as 0xC", 0, 0xD0000103, 267, 0x8007010B },
		{ "0xD007 is no wrapped Win32 error; fltlib: E_FAIL", 0, 0xD0070005, 317,
		  0x80004005 },
		{ "facility 1: the low word; fltlib: E_FAIL", 0, 0xC0010005, 5, 0x80004005 },
		{ "no such code", 0, 0xC0000036, 317, 0x8007013D },
		{ "no such code", 0, 0xC0001234, 317, 0x8007013D },
		{ "not in fltport's headers", 0, 0x40000000, 317, 0x8007013D },
		{ "another facility: E_FAIL", 0, 0xC0050001, 317, 0x80004005 },
		{ "another facility: E_FAIL", 0, 0x80050001, 317, 0x80004005 },
		{ "FltMgr: (s & 0x8000FFFF) | 0x001F0000", 0, 0xC01C0001, 317, 0x801F0001 },
		{ "FltMgr warning", 0, 0x801C0002, 317, 0x801F0002 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_row(&cases[i]);
}

/* fltlib's management HRESULTs (fltwinerror.h; Microsoft's Win32 metadata
 * gives the same values): each macro has its value, and is what the FltMgr
 * status it stands for becomes on the way to the caller. */
Test(status, flt_management_hresults)
{
	static const struct {
		const char *name;
		HRESULT macro;
		uint32_t hr;
		NTSTATUS status;
	} hrs[] = {
		{ "ERROR_FLT_DO_NOT_ATTACH", ERROR_FLT_DO_NOT_ATTACH, 0x801F000F,
		  STATUS_FLT_DO_NOT_ATTACH },
		{ "ERROR_FLT_DO_NOT_DETACH", ERROR_FLT_DO_NOT_DETACH, 0x801F0010,
		  STATUS_FLT_DO_NOT_DETACH },
		{ "ERROR_FLT_INSTANCE_ALTITUDE_COLLISION", ERROR_FLT_INSTANCE_ALTITUDE_COLLISION,
		  0x801F0011, STATUS_FLT_INSTANCE_ALTITUDE_COLLISION },
		{ "ERROR_FLT_INSTANCE_NAME_COLLISION", ERROR_FLT_INSTANCE_NAME_COLLISION,
		  0x801F0012, STATUS_FLT_INSTANCE_NAME_COLLISION },
		{ "ERROR_FLT_FILTER_NOT_FOUND", ERROR_FLT_FILTER_NOT_FOUND, 0x801F0013,
		  STATUS_FLT_FILTER_NOT_FOUND },
		{ "ERROR_FLT_VOLUME_NOT_FOUND", ERROR_FLT_VOLUME_NOT_FOUND, 0x801F0014,
		  STATUS_FLT_VOLUME_NOT_FOUND },
		{ "ERROR_FLT_INSTANCE_NOT_FOUND", ERROR_FLT_INSTANCE_NOT_FOUND, 0x801F0015,
		  STATUS_FLT_INSTANCE_NOT_FOUND },
		{ "ERROR_FLT_NO_WAITER_FOR_REPLY", ERROR_FLT_NO_WAITER_FOR_REPLY, 0x801F0020,
		  STATUS_FLT_NO_WAITER_FOR_REPLY },
	};

	for (size_t i = 0; i < sizeof(hrs) / sizeof(hrs[0]); i++) {
		cr_expect_eq((uint32_t)hrs[i].macro, hrs[i].hr, "%s is 0x%08X, want 0x%08X",
			     hrs[i].name, (unsigned)hrs[i].macro, hrs[i].hr);
		cr_expect_eq((uint32_t)fpw_hresult_from_ntstatus(hrs[i].status), hrs[i].hr,
			     "%s: its status maps to 0x%08X", hrs[i].name,
			     (unsigned)fpw_hresult_from_ntstatus(hrs[i].status));
	}
}
