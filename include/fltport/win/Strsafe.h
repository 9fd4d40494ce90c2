/* Case alias: Windows sources write <Strsafe.h> (SPEC §8.30). */
#include "strsafe.h"
