/*
 * The version macros, fltport_version() and the build's project version
 * (CMakeLists.txt) agree.
 */
#include <criterion/criterion.h>

#include <stdio.h>

#include "fltport/port.h"

Test(version, macros_library_and_project_agree)
{
	char s[32];
	unsigned n = 0;

	snprintf(s, sizeof(s), "%d.%d.%d", FLTPORT_VERSION_MAJOR, FLTPORT_VERSION_MINOR,
		 FLTPORT_VERSION_PATCH);
	cr_expect_str_eq(s, FLTPORT_VERSION_STRING);
	cr_expect_str_eq(fltport_version(&n), FLTPORT_VERSION_STRING);
	cr_expect_eq(n, FLTPORT_VERSION);
	cr_expect_str_eq(fltport_version(NULL), FP_PROJECT_VERSION,
			 "port.h says %s, CMakeLists.txt says %s", FLTPORT_VERSION_STRING,
			 FP_PROJECT_VERSION);
	cr_expect_eq(FLTPORT_VERSION, FLTPORT_VERSION_MAJOR * 10000 + FLTPORT_VERSION_MINOR * 100 +
					      FLTPORT_VERSION_PATCH);
}
