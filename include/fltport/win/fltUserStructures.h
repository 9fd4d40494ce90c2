/* Case alias: Windows sources write <fltUserStructures.h>. */
#include "fltuserstructures.h"
