/*
 * libFuzzer target: the filter side's reading of a shared-memory ring
 * (src/transport/ring.c) that a hostile user side writes.
 *
 * Everything in the memfd is writable by the user side's process: the
 * header, both rings' control words (the filter's own `tail` and
 * `sleeping` included) and the records.  Each input is a fresh pair of
 * rings (fp_ring_create, as a filter makes them for a connection) and a
 * script played as that user side: writes of any bytes at any offset of
 * the mapping, heads set to any value or to a value just past the filter's
 * published tail (so that real record sequences, wrap-around and padding
 * are reached), frames queued on the connection's socket (what a MARK
 * record announces), reads by the filter (fp_ring_recv, never
 * blocking), and sends by the filter (fp_ring_send with a deadline of now:
 * whatever the user side wrote in the header's user_wake, its `sleeping`
 * word or its tail, the filter's wake-up — a futex wake or a doorbell
 * datagram — and its wait for room must return).  What must hold: no read
 * outside the mapping or the receive buffer (ASan), no hang (every read
 * is non-blocking, every send bounded by its deadline), and every frame
 * the filter accepts is a well-formed frame within the payload limit;
 * after an error the ring stays in error or empty, never crashes.
 *
 * Build and run: `make fuzz-ring` (docs/TESTING.md).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/frame.h"
#include "transport/ring.h"
#include "transport/transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAP_BYTES (4096u + 2u * FP_RING_BYTES) /* ring.c's RING_SIZE */
#define CTL1_HEAD 192u                         /* ring 1 (user → filter): head */
#define CTL1_TAIL (192u + 64u)                 /* ... and the filter's tail */
#define MAX_PAYLOAD 8192u
#define STEPS_MAX 64

enum op { OP_WRITE, OP_HEAD, OP_HEAD_NEAR, OP_SOCK_FRAME, OP_READ, OP_RECORD, OP_SEND, OP_COUNT };

struct in {
	const uint8_t *p;
	size_t n;
};

static int take8(struct in *in)
{
	if (!in->n)
		return -1;
	in->n--;
	return *in->p++;
}

static uint32_t take32(struct in *in)
{
	uint32_t v = 0;

	for (int i = 0; i < 4 && in->n; i++)
		v |= (uint32_t)take8(in) << (8 * i);
	return v;
}

static uint32_t load32(const uint8_t *map, uint32_t off)
{
	uint32_t v;

	memcpy(&v, map + off, 4);
	return v;
}

static void store32(uint8_t *map, uint32_t off, uint32_t v)
{
	memcpy(map + off, &v, 4);
}

/* A valid frame on the socket (what a MARK announces), payload from the
 * input; or garbage when the input says so. */
static void sock_frame(int peer, struct in *in)
{
	uint8_t buf[FP_HDR_SIZE + 256];
	int kind = take8(in);
	uint32_t len = (uint32_t)(take8(in) & 0xff);
	struct fp_hdr h = { .magic = FP_MAGIC,
			    .version = FLTPORT_WIRE_VERSION,
			    .type = FP_T_REQUEST,
			    .id = take32(in),
			    .len = len };

	if (kind < 0)
		return;
	fp_hdr_encode(&h, buf);
	for (uint32_t i = 0; i < len; i++)
		buf[FP_HDR_SIZE + i] = (uint8_t)take8(in);
	if (kind & 1) /* garbage header */
		buf[(uint32_t)kind % FP_HDR_SIZE] ^= (uint8_t)kind;
	(void)send(peer, buf, FP_HDR_SIZE + len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* A record written at the filter's published tail, as a producer would
 * (kind and length from the input, a frame body when it is one). */
static void record(uint8_t *map, struct in *in)
{
	uint32_t tail = load32(map, CTL1_TAIL), pos = tail % FP_RING_BYTES;
	uint8_t *rec = map + 4096u + FP_RING_BYTES + pos;
	uint32_t kind = (uint32_t)(take8(in) & 3), len = take32(in) % 4400u;
	uint32_t room = FP_RING_BYTES - pos, total = 8u + ((len + 7u) & ~7u);
	struct fp_hdr h = { .magic = FP_MAGIC,
			    .version = FLTPORT_WIRE_VERSION,
			    .type = FP_T_REQUEST,
			    .id = take32(in) };

	/* A hostile producer may claim a record that runs past the end. */
	if (room < 8u)
		return;
	store32(rec, 0, len);
	store32(rec, 4, kind);
	if (kind == 1 && len >= FP_HDR_SIZE && room >= 8u + FP_HDR_SIZE) {
		h.len = len - FP_HDR_SIZE;
		fp_hdr_encode(&h, rec + 8);
	}
	store32(map, CTL1_HEAD, tail + total);
}

/* A PROT_NONE page right after the filter's own mapping of the rings: a
 * read past the end of ring 1 (the last in the memfd) then faults instead
 * of reading a neighbour.  The kernel places a new mapping at the top of
 * the highest free gap that fits: reserve the mapping's size plus a page,
 * free all but the top page, and fp_ring_create()'s mmap lands right below
 * it.  Returns the guard (to unmap), or NULL. */
static void *guard_reserve(void)
{
	uint8_t *x = mmap(NULL, MAP_BYTES + 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (x == MAP_FAILED)
		return NULL;
	munmap(x, MAP_BYTES);
	return x + MAP_BYTES;
}

/* Whether the ring's mapping ended right at the guard. */
static bool guarded(const void *guard)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	bool ok = false;

	if (!f)
		return false;
	while (!ok && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (strstr(line, "fltport-ring") && sscanf(line, "%lx-%lx", &lo, &hi) == 2)
			ok = hi == (unsigned long)guard;
	}
	fclose(f);
	return ok;
}

/* The filter sends a message into ring 0 (filter → user), deadline now. */
static void filter_send(struct fp_ring *r, int sock, struct in *in)
{
	uint8_t payload[64];
	uint32_t len = (uint32_t)take8(in) % (sizeof(payload) + 1);
	struct fp_hdr h = { .magic = FP_MAGIC,
			    .version = FLTPORT_WIRE_VERSION,
			    .type = FP_T_MESSAGE,
			    .id = take32(in),
			    .len = len };
	struct fp_tx tx = { .h = &h, .payload = payload, .page_fd = -1 };
	int rc;

	memset(payload, 0x5a, sizeof(payload));
	rc = fp_ring_send(r, sock, &tx, fp_now());
	if (rc != 0 && rc != -ETIMEDOUT && rc != -ENOTCONN)
		__builtin_trap(); /* outside the transport's contract */
}

static void check_rx(struct fp_rx *rx, const uint8_t *buf, size_t bufsz)
{
	if (rx->h.len > MAX_PAYLOAD || rx->h.nfds > FLTPORT_MAX_FDS)
		__builtin_trap();
	if (rx->pfd < 0 && rx->h.len && (rx->data < buf || rx->data + rx->h.len > buf + bufsz))
		__builtin_trap();
	fp_rx_release(rx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[FP_FRAME_MAX];
	struct in in = { data, size };
	struct fp_ring *r;
	int fds[FP_RING_NFDS], sp[2];
	uint8_t *map;

	void *guard = guard_reserve();

	if (fp_ring_create(&r, fds) != 0) {
		if (guard)
			munmap(guard, 4096);
		return 0;
	}
	if (guard && !guarded(guard)) {
		munmap(guard, 4096); /* the mapping went elsewhere: no guard */
		guard = NULL;
	}
	map = mmap(NULL, MAP_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	if (map == MAP_FAILED || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0)
		abort();
	for (int step = 0; step < STEPS_MAX && in.n; step++) {
		int op = take8(&in) % OP_COUNT;

		switch (op) {
		case OP_WRITE: {
			uint32_t off = take32(&in) % MAP_BYTES, n = (uint32_t)take8(&in);

			for (uint32_t i = 0; i < n && off + i < MAP_BYTES && in.n; i++)
				map[off + i] = (uint8_t)take8(&in);
			break;
		}
		case OP_HEAD:
			store32(map, CTL1_HEAD, take32(&in));
			break;
		case OP_HEAD_NEAR:
			store32(map, CTL1_HEAD, load32(map, CTL1_TAIL) + (take32(&in) % 20000u));
			break;
		case OP_SOCK_FRAME:
			sock_frame(sp[1], &in);
			break;
		case OP_RECORD:
			record(map, &in);
			break;
		case OP_SEND:
			filter_send(r, sp[0], &in);
			break;
		case OP_READ:
			for (int i = 0; i < 8; i++) {
				struct fp_rx rx;
				int rc = fp_ring_recv(r, sp[0], buf, sizeof(buf), MAX_PAYLOAD, &rx,
						      true);

				if (rc == 0) {
					check_rx(&rx, buf, sizeof(buf));
					continue;
				}
				/* A broken ring ends the connection in the library;
				 * reading on must still be safe.  (-EMFILE, a frame
				 * whose fds did not fit, needs fds: none are sent
				 * here.) */
				if (rc != -EAGAIN && rc != -EBADMSG && rc != -EPROTO &&
				    rc != -ENOTCONN)
					__builtin_trap(); /* outside the transport's contract */
				break;
			}
			break;
		}
	}
	munmap(map, MAP_BYTES);
	close(sp[0]);
	close(sp[1]);
	close(fds[0]);
	close(fds[2]);
	fp_ring_free(r);
	if (guard)
		munmap(guard, 4096);
	return 0;
}
