/* fltport Windows layer: winioctl.h is included by many filter samples but
 * the port API needs nothing from it (SPEC §8.22). */
#ifndef FLTPORT_WINIOCTL_H
#define FLTPORT_WINIOCTL_H
#include "fltport_wintypes.h"
#endif
