/*
 * Compile check: samples/minispy/minispy_proto.h after the Windows layer's
 * headers gives minispy.h's names with the layout fltport-minispy sends
 * (the header's static assertions compare them with the native structs).
 */
#include <windows.h>
#include <fltuser.h>

#include "minispy_proto.h"

/* What Microsoft's user program does with a reply, in one function. */
ULONG mspy_wincheck_first_length(const void *reply);

ULONG mspy_wincheck_first_length(const void *reply)
{
	const LOG_RECORD *r = (const LOG_RECORD *)reply;
	COMMAND_MESSAGE m = { .Command = GetMiniSpyLog };

	(void)m;
	return r->Length >= sizeof(LOG_RECORD) + sizeof(WCHAR) ? r->Length : 0;
}
