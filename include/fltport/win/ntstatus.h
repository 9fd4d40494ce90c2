/* fltport Windows layer: NTSTATUS values (the subset the port API uses;
 * SPEC §4, §8.20).  All of them live in fltport_wintypes.h. */
#ifndef FLTPORT_NTSTATUS_H
#define FLTPORT_NTSTATUS_H
#include "fltport_wintypes.h"
#endif
