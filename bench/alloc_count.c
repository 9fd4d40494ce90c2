/*
 * alloc_count.c — the allocation counter behind mallocs_per_op
 * (alloc_count.h).
 *
 * Why interposition and not -Wl,--wrap: --wrap only redirects references
 * made by objects linked into the executable, so it would miss everything
 * libfltport.so allocates (the bench links the shared library, like a
 * user).  glibc ≥ 2.34 has no malloc hooks, but it supports replacing
 * malloc by a definition in the executable ("Replacing malloc" in its
 * manual): every shared object, glibc itself included, then calls these,
 * and glibc still exports its own implementation as __libc_malloc & co.
 * free() is not replaced: every block comes from glibc's allocator, so
 * glibc's free is the right one for all of them.
 *
 * The counter is a relaxed atomic add: no lock, no allocation, safe before
 * anything is initialised (it starts on a static word; alloc_count_share()
 * and alloc_count_attach() move it to the shared page before any thread).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "alloc_count.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE_BYTES 4096u

static _Atomic uint64_t local_count;
/* Written only while the process has one thread (share / attach). */
static _Atomic uint64_t *counter = &local_count;

static int map_counter(int fd)
{
	void *p = mmap(NULL, PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	counter = p;
	return 0;
}

int alloc_count_share(int *fd)
{
	int mfd = memfd_create("fltport-bench-allocs", MFD_CLOEXEC), rc;

	if (mfd < 0)
		return -errno;
	if (ftruncate(mfd, PAGE_BYTES) < 0) {
		rc = -errno;
		close(mfd);
		return rc;
	}
	rc = map_counter(mfd);
	if (rc) {
		close(mfd);
		return rc;
	}
	*fd = mfd;
	return 0;
}

int alloc_count_attach(void)
{
	const char *s = getenv(ALLOC_COUNT_ENV);
	char *end;
	long fd;
	int rc;

	if (!s)
		return 0;
	errno = 0;
	fd = strtol(s, &end, 10);
	if (errno || end == s || *end || fd < 0 || fd > INT32_MAX)
		return -EINVAL;
	rc = map_counter((int)fd);
	close((int)fd);
	return rc;
}

uint64_t alloc_count(void)
{
	return atomic_load_explicit(counter, memory_order_relaxed);
}

#ifdef BENCH_COUNT_ALLOCS

/* glibc's own allocator, exported under these names since glibc 2.0. */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);

/* Visible to the shared libraries (the build hides symbols by default);
 * CMakeLists.txt also puts them in the dynamic symbol table. */
#define EXPORTED __attribute__((visibility("default")))

static void count_one(void)
{
	atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

EXPORTED void *malloc(size_t size)
{
	count_one();
	return __libc_malloc(size);
}

EXPORTED void *calloc(size_t n, size_t size)
{
	count_one();
	return __libc_calloc(n, size);
}

EXPORTED void *realloc(void *p, size_t size)
{
	count_one();
	return __libc_realloc(p, size);
}

EXPORTED void *aligned_alloc(size_t align, size_t size)
{
	count_one();
	return __libc_memalign(align, size);
}

EXPORTED int posix_memalign(void **out, size_t align, size_t size)
{
	void *p;

	if (!align || (align & (align - 1)) || align % sizeof(void *))
		return EINVAL;
	count_one();
	p = __libc_memalign(align, size);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

/* Called through volatile pointers so that the compiler can neither drop
 * the pair nor turn strdup into its own malloc + memcpy. */
static void *(*volatile test_malloc)(size_t) = malloc;
static char *(*volatile test_strdup)(const char *) = strdup;

static bool self_test(void)
{
	uint64_t before = alloc_count(), after;
	void *p = test_malloc(16);
	char *s = test_strdup("alloc_count"); /* allocates inside glibc */

	after = alloc_count();
	free(p);
	free(s);
	return p && s && after - before == 2;
}

#else

static bool self_test(void)
{
	return false;
}

#endif

bool alloc_count_active(void)
{
	static int answer = -1;

	if (answer < 0)
		answer = self_test();
	return answer;
}
