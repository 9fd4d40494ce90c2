/* fltport_version(): the version of the library loaded (fltport/port.h). */
#include "fltport/port.h"

FLTPORT_API const char *fltport_version(unsigned *number)
{
	if (number)
		*number = FLTPORT_VERSION;
	return FLTPORT_VERSION_STRING;
}
