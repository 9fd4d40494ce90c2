/* Case alias: Windows sources write <fltUser.h> (SPEC §8.30). */
#include "fltuser.h"
