/*
 * libFuzzer target for the frame decoder: any bytes, any fd count, any cap.
 * Build: clang -g -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
 *        tests/fuzz/fuzz_frame.c src/core/frame.c -o fuzz_frame
 * (`make fuzz` does this and runs it for a bounded time.)
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/frame.h"
#include "fltport/port.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fp_hdr h, again;
	uint8_t enc[FP_HDR_SIZE];
	unsigned nfds;

	if (size < 1)
		return 0;
	nfds = data[0] % 12;
	data++;
	size--;
	if (fp_frame_decode(data, size, nfds, 1u << 20, &h) != 0)
		return 0;
	/* Whatever decodes re-encodes to the same header and decodes again. */
	fp_hdr_encode(&h, enc);
	if (memcmp(enc, data, FP_HDR_SIZE) != 0)
		__builtin_trap();
	if (h.len > (1u << 20) || h.nfds > FLTPORT_MAX_FDS)
		__builtin_trap();
	if (fp_frame_decode(data, size, nfds, 1u << 20, &again) != 0)
		__builtin_trap();
	return 0;
}
