/* Case alias: Windows sources write <fltKernel.h> (SPEC §8.30). */
#include "fltkernel.h"
