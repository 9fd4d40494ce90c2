/*
 * Sealing a payload memfd (fp_payload_seal, src/transport/sock.c): every
 * payload above the inline limit travels in a memfd sealed against writes,
 * and the kernel refuses F_SEAL_WRITE (EBUSY, after waiting ~0.1 s) while a
 * page of the file holds a reference besides the page cache's.  Here a pipe
 * holds one (vmsplice of a mapped page), as the LRU batch of another CPU
 * holds one for a while after a write: the seal must be tried again until
 * the reference goes, bounded by the deadline.  Before the fix the first
 * refusal failed the send (and was reported as a disconnect).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/clock.h"
#include "transport/transport.h"

#define PAGE 4096

/* A one-page memfd, and a pipe holding a reference to its page. */
struct pinned {
	int fd;
	int pipe[2];
};

static int page_memfd(void)
{
	char b[PAGE];
	int fd = memfd_create("fp-test-seal", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	cr_assert_geq(fd, 0, "memfd_create: %s", strerror(errno));
	memset(b, 0x5a, sizeof(b));
	cr_assert_eq(write(fd, b, sizeof(b)), PAGE);
	return fd;
}

static struct pinned pin_page(void)
{
	struct pinned p = { .fd = page_memfd() };
	void *m = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, p.fd, 0);
	struct iovec iov = { .iov_base = m, .iov_len = PAGE };

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(pipe2(p.pipe, O_CLOEXEC), 0);
	/* Without SPLICE_F_GIFT the pipe takes a reference to the page. */
	cr_assert_eq(vmsplice(p.pipe[1], &iov, 1, 0), PAGE);
	munmap(m, PAGE);
	/* The kernel refuses the seal while the pipe holds the page (on a
	 * kernel whose vmsplice copied instead, there is nothing to test). */
	if (fcntl(p.fd, F_ADD_SEALS, F_SEAL_WRITE) == 0)
		cr_skip_test("this kernel's vmsplice holds no reference to the page");
	cr_assert_eq(errno, EBUSY, "sealing a referenced page: %s", strerror(errno));
	return p;
}

static void unpin(struct pinned *p)
{
	if (p->pipe[0] >= 0)
		close(p->pipe[0]);
	if (p->pipe[1] >= 0)
		close(p->pipe[1]);
	p->pipe[0] = p->pipe[1] = -1;
}

static bool seals_complete(int fd)
{
	int s = fcntl(fd, F_GET_SEALS);

	return s >= 0 && (s & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)) ==
				 (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
}

Test(seal, unreferenced_page_seals_at_once)
{
	int fd = page_memfd();

	cr_expect_eq(fp_payload_seal(fd, fp_deadline(5 * (int64_t)1000000000)), 0);
	cr_expect(seals_complete(fd));
	close(fd);
}

static atomic_bool released;

static void *release_later(void *arg)
{
	struct pinned *p = arg;

	usleep(300 * 1000);
	atomic_store(&released, true);
	unpin(p);
	return NULL;
}

/* The reference goes while the seal is being refused: it is tried again. */
Test(seal, transient_reference_is_waited_out, .timeout = 30)
{
	struct pinned p = pin_page();
	pthread_t t;
	int rc;

	/* The kernel refuses while the pipe holds the page (pin_page() saw
	 * it) ... */
	atomic_store(&released, false);
	cr_assert_eq(pthread_create(&t, NULL, release_later, &p), 0);
	/* ... and fp_payload_seal() waits until it lets go. */
	rc = fp_payload_seal(p.fd, fp_deadline(10 * (int64_t)1000000000));
	pthread_join(t, NULL);
	cr_expect_eq(rc, 0, "fp_payload_seal: %s", strerror(-rc));
	cr_expect(atomic_load(&released), "sealed while the page was still referenced");
	cr_expect(seals_complete(p.fd));
	close(p.fd);
}

/* A reference that outlives the deadline: -ETIMEDOUT, soon after it. */
Test(seal, deadline_ends_the_retries, .timeout = 30)
{
	struct pinned p = pin_page();
	int64_t t0 = fp_now();
	int rc = fp_payload_seal(p.fd, t0 + 300 * (int64_t)1000000);

	cr_expect_eq(rc, -ETIMEDOUT, "fp_payload_seal: %s", strerror(-rc));
	/* Bounded: one refusal of the kernel past the deadline at most. */
	cr_expect_lt(fp_now() - t0, 5 * (int64_t)1000000000);
	cr_expect_eq(fcntl(p.fd, F_GET_SEALS) & F_SEAL_WRITE, 0);
	unpin(&p);
	close(p.fd);
}

/* Without a deadline (a reply), retries end after FP_SEAL_RETRY_NS with a
 * resource error: the caller's message stays answerable. */
Test(seal, lasting_reference_is_a_resource_error, .timeout = 30)
{
	struct pinned p = pin_page();
	int64_t t0 = fp_now();
	int rc = fp_payload_seal(p.fd, FP_NEVER);

	cr_expect_eq(rc, -ENOBUFS, "fp_payload_seal: %s", strerror(-rc));
	cr_expect(fp_resource_error(rc));
	cr_expect_geq(fp_now() - t0, FP_SEAL_RETRY_NS);
	unpin(&p);
	close(p.fd);
}

Test(seal, other_errors_pass_through)
{
	int fd = memfd_create("fp-test-noseal", MFD_CLOEXEC); /* sealing not allowed */

	cr_assert_geq(fd, 0);
	cr_expect_eq(fp_payload_seal(fd, FP_NEVER), -EPERM);
	close(fd);
	cr_expect_eq(fp_payload_seal(-1, FP_NEVER), -EBADF);
}
