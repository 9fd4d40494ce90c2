/*
 * The payload area (transport.h, struct fp_area; docs/PROTOCOL.md, "Payload
 * area"): filter → user payloads above FP_INLINE_MAX copied into a shared
 * memfd made once per connection, instead of a pipe made, filled and
 * drained per message (whose pages the kernel allocates and frees each
 * time: 1 MiB cost about twice a socket's 16 datagrams of 64 KiB).
 *
 * Filter side: one sender at a time fills the area (in_use, under the
 * lock), and only while the user side has released it (the busy word, which
 * the user side writes: read only, never trusted for more than "may I reuse
 * it").  User side: fp_rx_bind_area() checks and maps it once, and every
 * frame's payload is read from the mapping; fp_rx_release() gives it back.
 */
#include "transport/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/debug.h"

/* What the user side requires of an area's memfd: it cannot change size,
 * so the mapping never faults past its end (SIGBUS). */
#define FP_AREA_SEALS (F_SEAL_SHRINK | F_SEAL_GROW)

static _Atomic uint32_t *busy_word(uint8_t *map)
{
	return (_Atomic uint32_t *)(void *)map;
}

void fp_area_init(struct fp_area *a, uint32_t cap, bool wanted)
{
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->lock, NULL);
	a->cap = cap;
	a->wanted = wanted && cap > FP_INLINE_MAX;
	a->fd = -1;
}

void fp_area_free(struct fp_area *a)
{
	if (a->map)
		munmap(a->map, a->map_size);
	if (a->fd >= 0)
		close(a->fd);
	pthread_mutex_destroy(&a->lock);
}

/* Make the memfd and map it (lock held). */
static int area_make(struct fp_area *a)
{
	size_t size = (FP_AREA_DATA + (size_t)a->cap + 4095) & ~(size_t)4095;
	int fd = memfd_create("fltport-area", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	uint8_t *map;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) != 0 ||
	    fcntl(fd, F_ADD_SEALS, FP_AREA_SEALS | F_SEAL_SEAL) != 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	a->fd = fd;
	a->map = map;
	a->map_size = size;
	return 0;
}

int fp_area_claim(struct fp_area *a, uint32_t len, int *newfd)
{
	int rc = 0;

	*newfd = -1;
	if (!a->wanted || len > a->cap)
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	if (a->failed) {
		rc = -ENOBUFS;
	} else if (a->in_use ||
		   (a->map && atomic_load_explicit(busy_word(a->map), memory_order_acquire))) {
		rc = -EBUSY; /* filling, or the user side still holds it */
	} else if (!a->map && (rc = area_make(a)) < 0) {
		/* A shortage now makes one later unlikely to go better: the
		 * pipes carry on as before. */
		fp_debug("payload area: %s: payloads go in pipes", strerror(-rc));
		a->failed = true;
	}
	if (rc == 0) {
		a->in_use = true;
		if (!a->delivered)
			*newfd = a->fd;
		atomic_store_explicit(busy_word(a->map), 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&a->lock);
	return rc;
}

void fp_area_done(struct fp_area *a, bool sent, bool with_fd)
{
	pthread_mutex_lock(&a->lock);
	if (!sent) /* the user side never saw it: still ours to release */
		atomic_store_explicit(busy_word(a->map), 0, memory_order_release);
	else if (with_fd)
		a->delivered = true;
	a->in_use = false;
	pthread_mutex_unlock(&a->lock);
}

int fp_rx_bind_area(struct fp_rx *rx, uint8_t **area, size_t *size)
{
	if (rx->h.flags & FP_F_AREA_NEW) {
		struct stat st;
		int seals = fcntl(rx->pfd, F_GET_SEALS);
		void *map;

		/* An area comes once; it must be a memfd that cannot change
		 * size, large enough for this payload. */
		if (*area || seals < 0 || (seals & FP_AREA_SEALS) != FP_AREA_SEALS ||
		    fstat(rx->pfd, &st) != 0 || !S_ISREG(st.st_mode) ||
		    (uint64_t)st.st_size < FP_AREA_DATA + (uint64_t)FP_INLINE_MAX ||
		    (uint64_t)st.st_size > FP_AREA_DATA + (uint64_t)FP_PAYLOAD_HARD_MAX)
			return -EBADMSG;
		map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, rx->pfd,
			   0);
		if (map == MAP_FAILED)
			return -EBADMSG;
		fp_close_received(rx->pfd);
		rx->pfd = -1;
		*area = map;
		*size = (size_t)st.st_size;
	}
	if (!*area || rx->h.len > *size - FP_AREA_DATA)
		return -EBADMSG;
	rx->data = *area + FP_AREA_DATA;
	rx->area_busy = busy_word(*area);
	return 0;
}
