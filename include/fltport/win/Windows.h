/* Case alias: Windows sources write <Windows.h>. */
#include "windows.h"
