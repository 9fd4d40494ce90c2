#include "fuzz_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/frame.h"
#include "rawwire.h"

/* ---- the script ---- */

void fz_script_init(struct fz_script *s, const uint8_t *data, size_t size)
{
	s->p = data;
	s->left = size;
	s->steps = 0;
}

bool fz_next(struct fz_script *s, struct fz_step *st)
{
	size_t len;

	if (s->left < FZ_REC_HDR || s->steps >= FZ_MAX_STEPS)
		return false;
	st->op = s->p[0];
	len = (size_t)s->p[1] | ((size_t)s->p[2] << 8);
	s->p += FZ_REC_HDR;
	s->left -= FZ_REC_HDR;
	if (len > s->left)
		len = s->left;
	st->data = s->p;
	st->len = len;
	s->p += len;
	s->left -= len;
	s->steps++;
	return true;
}

uint8_t fz_u8(const struct fz_step *st, size_t off)
{
	return off < st->len ? st->data[off] : 0;
}

uint16_t fz_u16(const struct fz_step *st, size_t off)
{
	return (uint16_t)(fz_u8(st, off) | (fz_u8(st, off + 1) << 8));
}

uint32_t fz_u32(const struct fz_step *st, size_t off)
{
	return (uint32_t)fz_u16(st, off) | ((uint32_t)fz_u16(st, off + 2) << 16);
}

uint64_t fz_u64(const struct fz_step *st, size_t off)
{
	return (uint64_t)fz_u32(st, off) | ((uint64_t)fz_u32(st, off + 4) << 32);
}

/* ---- the process ---- */

static char dir[64];
static void (*user_exit)(void);

/* Empty a directory: its files, and one level of subdirectories (the
 * management plane's .ctl). */
static void empty_dir(int dfd, int depth)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;

	if (!d) {
		close(dfd);
		return;
	}
	while ((e = readdir(d))) {
		int sub;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0 || errno != EISDIR || depth > 0)
			continue;
		sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sub >= 0)
			empty_dir(sub, depth + 1);
		unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

static void remove_dir(void)
{
	int dfd;

	if (!dir[0])
		return;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		empty_dir(dfd, 0);
	rmdir(dir);
	dir[0] = '\0';
}

static void on_exit_cb(void)
{
	if (user_exit)
		user_exit();
	remove_dir();
}

/* ASan (and UBSan with halt_on_error) end the process without atexit. */
void __sanitizer_set_death_callback(void (*cb)(void));

const char *fz_private_dir(const char *tag, void (*at_exit)(void))
{
	snprintf(dir, sizeof(dir), "/tmp/fltport-fuzz-%s-XXXXXX", tag);
	if (!mkdtemp(dir) || setenv("FLTPORT_DIR", dir, 1) != 0) {
		perror("fuzz: private port directory");
		exit(1);
	}
	user_exit = at_exit;
	atexit(on_exit_cb);
	__sanitizer_set_death_callback(remove_dir);
	return dir;
}

void fz_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\n==fuzz harness: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	if (getenv("FZ_GDB")) {
		/* Every thread's stack, for a hang that does not reproduce. */
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "gdb -p %d -batch -ex 'thread apply all bt' 1>&2",
			 (int)getpid());
		if (system(cmd) != 0)
			fprintf(stderr, "==fuzz harness: FZ_GDB: gdb failed\n");
	}
	abort();
}

void fz_trace(const char *fmt, ...)
{
	static int on = -1;
	va_list ap;

	if (on < 0)
		on = getenv("FZ_TRACE") && strcmp(getenv("FZ_TRACE"), "1") == 0;
	if (!on)
		return;
	fprintf(stderr, "fz: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

int64_t fz_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t fz_page(void)
{
	static size_t page;

	if (!page)
		page = (size_t)sysconf(_SC_PAGESIZE);
	return page;
}

/* Pages of a big block: the block's pages, then the guard page. */
static size_t fz_span(size_t size)
{
	return (size + 7 + fz_page() - 1) / fz_page() * fz_page();
}

void *fz_alloc(size_t size, bool zero)
{
	uint8_t *base;
	size_t span;

	if (size == 0)
		return NULL;
	if (size <= FZ_HEAP_MAX) {
		void *p = zero ? calloc(1, size) : malloc(size);

		if (!p)
			fz_fail("malloc(%zu)", size);
		return p;
	}
	span = fz_span(size);
	base = mmap(NULL, span + fz_page(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		    0);
	if (base == MAP_FAILED || mprotect(base + span, fz_page(), PROT_NONE) != 0)
		fz_fail("mapping %zu bytes: %s", size, strerror(errno));
	/* Fresh anonymous pages are zero: `zero` needs nothing more. */
	return (void *)((uintptr_t)(base + span - size) & ~(uintptr_t)7);
}

void fz_free(void *p, size_t size)
{
	uintptr_t base;
	size_t span;

	if (!p)
		return;
	if (size <= FZ_HEAP_MAX) {
		free(p);
		return;
	}
	span = fz_span(size);
	base = ((uintptr_t)p + size + 7) / fz_page() * fz_page() - span;
	munmap((void *)base, span + fz_page());
}

int fz_count_fds(void)
{
	static int dfd = -1;
	char buf[8192];
	ssize_t r;
	int n = 0;

	if (dfd < 0)
		dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || lseek(dfd, 0, SEEK_SET) != 0)
		fz_fail("cannot read /proc/self/fd: %s", strerror(errno));
	while ((r = getdents64(dfd, buf, sizeof(buf))) > 0)
		for (ssize_t off = 0; off < r;) {
			struct dirent64 *e = (struct dirent64 *)(buf + off);

			if (e->d_name[0] != '.')
				n++;
			off += e->d_reclen;
		}
	return n;
}

void fz_backoff(int *spins)
{
	static const struct timespec nap = { .tv_nsec = 20000 };

	if ((*spins)++ < 32) {
		sched_yield();
		return;
	}
	/* A nap of 20 us, not the default 50 us of timer slack on top. */
	if (*spins == 33)
		prctl(PR_SET_TIMERSLACK, 1000UL);
	nanosleep(&nap, NULL);
}

void fz_wait_fds(int want, const char *what)
{
	const int64_t end = fz_now_ms() + FZ_WAIT_MS;
	int n, spins = 0;

	while ((n = fz_count_fds()) != want) {
		if (fz_now_ms() > end)
			fz_fail("%s: %d fds open, %d at the start of the input (leak)", what, n,
				want);
		fz_backoff(&spins);
	}
}

/* ---- datagrams ---- */

/* A memfd of `size` bytes (cut to FZ_MEMFD_MAX) with `seals`, or -1.  A
 * sparse file: the content does not matter, only the size and seals. */
static int sized_memfd(const char *name, uint64_t size, int seals)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -1;
	if (size > FZ_MEMFD_MAX)
		size = FZ_MEMFD_MAX;
	if (ftruncate(fd, (off_t)size) != 0 || (seals && fcntl(fd, F_ADD_SEALS, seals) != 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

int fz_memfd(uint64_t size, bool seal)
{
	return sized_memfd("fz", size,
			   seal ? F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL : 0);
}

/* A payload area as a filter side makes it (transport/area.c): sealed
 * against size changes, writable. */
int fz_area(uint64_t size)
{
	return sized_memfd("fz-area", size, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
}

int fz_payload_pipe(uint64_t size)
{
	static const uint8_t zeros[4096];
	int p[2];

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
		return -1;
	if (size > FZ_MEMFD_MAX)
		size = FZ_MEMFD_MAX;
	if (size > 65536 && fcntl(p[1], F_SETPIPE_SZ, (int)size) < 0)
		size = 0; /* an empty pipe: what a lying sender sends */
	while (size > 0) {
		size_t n = size < sizeof(zeros) ? (size_t)size : sizeof(zeros);
		ssize_t w = write(p[1], zeros, n);

		if (w <= 0)
			break;
		size -= (uint64_t)w;
	}
	close(p[1]);
	return p[0];
}

void fz_close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

/* The fds `attach` asks for, made for a datagram with header fields
 * flags/len/nfds.  Pipe ends share one pipe (the kernel duplicates them). */
static unsigned make_attach(unsigned attach, uint32_t flags, uint32_t len, unsigned nfds,
			    int fds[FZ_MAX_FDS])
{
	unsigned n = 0, npipe = 0;
	int p[2];

	switch (attach) {
	case FZ_A_ANNOUNCED:
	case FZ_A_ANNOUNCED_1:
		if (flags & FP_F_MEMFD)
			fds[n++] = fz_memfd(len, true);
		else if (flags & FP_F_PIPE)
			fds[n++] = fz_payload_pipe(len);
		else if (flags & FP_F_AREA_NEW)
			fds[n++] = fz_area((uint64_t)FP_AREA_DATA + len);
		npipe = (nfds > 8 ? 8 : nfds) + (attach == FZ_A_ANNOUNCED_1);
		break;
	case FZ_A_MEMFD_LONG:
		fds[n++] = fz_memfd((uint64_t)len + 1, true);
		break;
	case FZ_A_MEMFD_OPEN:
		fds[n++] = fz_memfd(len, false);
		break;
	case FZ_A_PIPE:
		npipe = 1;
		break;
	case FZ_A_MEMFD_PIPE:
		fds[n++] = fz_memfd(len, true);
		npipe = 1;
		break;
	case FZ_A_FLOOD:
		npipe = FZ_MAX_FDS;
		break;
	default:
		break;
	}
	if (npipe && pipe2(p, O_CLOEXEC) == 0) {
		for (unsigned i = 0; i < npipe && n < FZ_MAX_FDS; i++)
			fds[n++] = i == 0 ? p[0] : dup(p[0]);
		close(p[1]);
	}
	return n;
}

int fz_send(int sock, const void *buf, size_t len, const int *fds, unsigned nfds)
{
	const struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	const int64_t end = fz_now_ms() + 100;

	for (;;) {
		struct pollfd p = { .fd = sock, .events = POLLOUT };
		int rc = rw_sendv(sock, &iov, 1, fds, nfds, MSG_DONTWAIT);

		if (rc != -EINTR && (rc != -EAGAIN || fz_now_ms() > end))
			return rc;
		poll(&p, 1, 10);
	}
}

int fz_send_attached(int sock, const uint8_t *dgram, size_t len, unsigned attach)
{
	int fds[FZ_MAX_FDS];
	unsigned n = 0;
	int rc;

	if (len >= FP_HDR_SIZE)
		n = make_attach(attach, get32(dgram + 8), get32(dgram + 24),
				(unsigned)(dgram[36] | (dgram[37] << 8)), fds);
	else if (attach != FZ_A_NONE)
		n = make_attach(attach, 0, 0, 0, fds);
	for (unsigned i = 0; i < n; i++)
		if (fds[i] < 0) {
			fz_close_fds(fds, n);
			return -1;
		}
	rc = fz_send(sock, dgram, len, fds, n);
	fz_close_fds(fds, n);
	return rc < 0 ? -1 : (int)n;
}

int fz_recv(int sock, uint8_t *buf, size_t cap, struct fz_dgram *d, int timeout_ms)
{
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(int) * FZ_MAX_FDS)];
	} cb;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cb.b,
			     .msg_controllen = sizeof(cb.b) };
	struct pollfd p = { .fd = sock, .events = POLLIN };
	int r;

	d->n = 0;
	d->nfds = 0;
	d->truncated = false;
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return r < 0 ? -errno : 0;
	do
		d->n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (d->n < 0 && errno == EINTR);
	if (d->n < 0) {
		d->n = 0;
		if (errno == EAGAIN)
			return 0;
		/* A reset is the end of the stream. */
		return errno == ECONNRESET || errno == EPIPE ? 1 : -errno;
	}
	d->nfds = rw_take_fds(&mh, d->fds, FZ_MAX_FDS);
	if (d->nfds > FZ_MAX_FDS)
		d->nfds = FZ_MAX_FDS;
	d->truncated = (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
	return 1;
}
