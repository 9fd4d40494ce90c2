/* Install check of the Windows layer: a Windows-style program that finds
 * <windows.h> and <fltuser.h> through `pkg-config fltport-win` only. */
#include <stdio.h>
#include <stdlib.h>

#include <windows.h>
#include <fltuser.h>

int main(void)
{
	HANDLE port = NULL;
	HRESULT hr;

	/* A private, empty port directory: the port cannot exist. */
	if (!getenv("FLTPORT_DIR")) {
		fprintf(stderr, "win_consumer: set FLTPORT_DIR to an empty directory\n");
		return 2;
	}
	hr = FilterConnectCommunicationPort(L"\\NoSuchPort", 0, NULL, 0, NULL, &port);
	if (hr != HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND) || port != INVALID_HANDLE_VALUE) {
		fprintf(stderr, "win_consumer: hr 0x%08X, want 0x80070002\n", (unsigned)hr);
		return 1;
	}
	printf("win_consumer: OK (FilterConnectCommunicationPort: 0x%08X)\n", (unsigned)hr);
	return 0;
}
