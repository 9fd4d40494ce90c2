/*
 * futex.c — the raw-futex baseline's round trip and echo (futex.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "futex.h"

#include <errno.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define AREA_BYTES (FUTEX_PAIRS_MAX * sizeof(struct futex_pair))
#define NS_PER_SEC 1000000000LL

enum { TURN_CALLER = 0, TURN_REQUEST = 1, TURN_REPLY = 2 };

_Static_assert(offsetof(struct futex_pair, data) == 64, "turn word alone on its cache line");

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

/* FUTEX_WAIT while *word == val, at most `rel_ns` (< 0: no limit).  0 when
 * woken or the word already differs, -ETIMEDOUT, or another -errno. */
static int wait_word(_Atomic uint32_t *word, uint32_t val, int64_t rel_ns)
{
	struct timespec ts = { rel_ns / NS_PER_SEC, rel_ns % NS_PER_SEC };
	long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, val, rel_ns < 0 ? NULL : &ts,
			  NULL, 0);

	if (rc == 0 || errno == EAGAIN || errno == EINTR)
		return 0;
	return -errno;
}

static void set_and_wake(_Atomic uint32_t *word, uint32_t val)
{
	atomic_store_explicit(word, val, memory_order_release);
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Wait until *word == want; deadline_ns 0 means no limit. */
static int wait_for(_Atomic uint32_t *word, uint32_t want, int64_t deadline_ns)
{
	for (;;) {
		uint32_t v = atomic_load_explicit(word, memory_order_acquire);
		int64_t left = -1;
		int rc;

		if (v == want)
			return 0;
		if (deadline_ns) {
			left = deadline_ns - mono_ns();
			if (left <= 0)
				return -ETIMEDOUT;
		}
		rc = wait_word(word, v, left);
		if (rc)
			return rc;
	}
}

static int map_area(int fd, struct futex_pair **pairs)
{
	void *p = mmap(NULL, AREA_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	*pairs = p;
	return 0;
}

int futex_area_create(int *fd, struct futex_pair **pairs)
{
	int mfd = memfd_create("fltport-bench-futex", MFD_CLOEXEC), rc;

	if (mfd < 0)
		return -errno;
	if (ftruncate(mfd, AREA_BYTES) < 0)
		rc = -errno;
	else
		rc = map_area(mfd, pairs); /* zero-filled: every turn is TURN_CALLER */
	if (rc) {
		close(mfd);
		return rc;
	}
	*fd = mfd;
	return 0;
}

int futex_area_map(int fd, struct futex_pair **pairs)
{
	return map_area(fd, pairs);
}

void futex_area_unmap(struct futex_pair *pairs)
{
	munmap(pairs, AREA_BYTES);
}

int futex_roundtrip(struct futex_pair *p, const void *msg, void *reply, size_t len,
		    int64_t timeout_ns)
{
	int rc;

	if (len > FUTEX_MSG_MAX)
		return -EMSGSIZE;
	memcpy(p->data, msg, len);
	p->len = (uint32_t)len;
	set_and_wake(&p->turn, TURN_REQUEST);
	rc = wait_for(&p->turn, TURN_REPLY, mono_ns() + timeout_ns);
	if (rc)
		return rc;
	if (p->len != len)
		return -EIO;
	memcpy(reply, p->data, len);
	return 0;
}

int futex_echo(struct futex_pair *p, unsigned char *buf)
{
	for (;;) {
		int rc = wait_for(&p->turn, TURN_REQUEST, 0);
		uint32_t len;

		if (rc)
			return rc;
		len = p->len;
		if (len > FUTEX_MSG_MAX)
			return -EMSGSIZE;
		memcpy(buf, p->data, len);
		memcpy(p->data, buf, len);
		set_and_wake(&p->turn, TURN_REPLY);
	}
}
