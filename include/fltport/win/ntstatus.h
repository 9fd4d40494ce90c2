/* fltport Windows layer: NTSTATUS values (those the port API uses, SPEC
 * §4, §8.20, and the usual file-system results a filter returns).  All of
 * them live in fltport_wintypes.h; RtlNtStatusToDosError maps every one as
 * Windows does. */
#ifndef FLTPORT_NTSTATUS_H
#define FLTPORT_NTSTATUS_H
#include "fltport_wintypes.h"
#endif
