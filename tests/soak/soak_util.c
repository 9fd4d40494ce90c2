/* Utilities every role of fltport-soak shares (soak.h). */
#include "soak.h"

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SOAK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SOAK_ASAN 1
#endif
#endif

/* ------------------------------------------------------------------ */
/* Randomness                                                           */
/* ------------------------------------------------------------------ */

uint64_t soak_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

void soak_rng_seed(struct soak_rng *r, uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
	r->s = soak_mix(soak_mix(soak_mix(seed ^ a) ^ b) ^ c);
}

uint64_t soak_next(struct soak_rng *r)
{
	r->s += 0x9e3779b97f4a7c15ULL;
	return soak_mix(r->s);
}

uint64_t soak_range(struct soak_rng *r, uint64_t lo, uint64_t hi)
{
	return lo + soak_next(r) % (hi - lo + 1);
}

bool soak_pct(struct soak_rng *r, unsigned pct)
{
	return soak_next(r) % 100 < pct;
}

/* ------------------------------------------------------------------ */
/* Payload                                                              */
/* ------------------------------------------------------------------ */

#define PATTERN_LEN (SOAK_BUF_CAP + SOAK_PATTERN_OFFS)

static unsigned char *pattern;

void soak_pattern_init(void)
{
	pattern = malloc(PATTERN_LEN);
	if (!pattern) {
		fprintf(stderr, "fltport-soak: out of memory\n");
		exit(2);
	}
	for (size_t i = 0; i < PATTERN_LEN; i++)
		pattern[i] = tu_pattern_byte(i, 0);
}

const unsigned char *soak_pattern(size_t off)
{
	return pattern + off;
}

size_t soak_pattern_off(uint64_t seq, uint32_t sender)
{
	return (size_t)(soak_mix(seq ^ ((uint64_t)sender << 40)) % SOAK_PATTERN_OFFS);
}

size_t soak_reply_off(uint64_t seq, uint32_t sender)
{
	return (soak_pattern_off(seq, sender) * 7u + 1u) % SOAK_PATTERN_OFFS;
}

uint32_t soak_reply_status(uint64_t seq, uint32_t sender)
{
	return (uint32_t)soak_mix(seq * 3u + sender) | 1u;
}

uint32_t soak_random_len(struct soak_rng *r)
{
	const uint32_t h = (uint32_t)sizeof(struct soak_hdr);
	unsigned c = (unsigned)soak_range(r, 0, 99);

	if (c < 5)
		return 0;
	if (c < 10)
		return h;
	if (c < 50)
		return h + (uint32_t)soak_range(r, 1, 512);
	if (c < 70)
		return h + (uint32_t)soak_range(r, 513, 16384);
	if (c < 82) /* both sides of the 64 KiB memfd threshold */
		return (uint32_t)soak_range(r, 60 * 1024, 70 * 1024);
	if (c < 92)
		return (uint32_t)soak_range(r, 70 * 1024, 256 * 1024);
	return (uint32_t)soak_range(r, 256 * 1024, SOAK_MAX_MSG);
}

void soak_build(unsigned char *buf, uint32_t len, uint32_t sender, uint64_t seq, uint32_t reply_len,
		uint32_t reply_cap, uint32_t nfds)
{
	struct soak_hdr h = { .magic = SOAK_MAGIC,
			      .sender = sender,
			      .seq = seq,
			      .len = len,
			      .reply_len = reply_len,
			      .reply_cap = reply_cap,
			      .nfds = nfds };
	size_t n;

	if (len == 0)
		return;
	n = len - sizeof(h);
	memcpy(buf + sizeof(h), soak_pattern(soak_pattern_off(seq, sender)), n);
	h.sum = tu_fnv1a64(buf + sizeof(h), n);
	memcpy(buf, &h, sizeof(h));
}

const char *soak_check(const unsigned char *buf, size_t len, struct soak_hdr *h)
{
	memset(h, 0, sizeof(*h));
	if (len == 0)
		return NULL;
	if (len < sizeof(*h))
		return "shorter than the header";
	memcpy(h, buf, sizeof(*h));
	if (h->magic != SOAK_MAGIC)
		return "bad magic";
	if (h->len != len)
		return "length differs from the header's";
	if (h->nfds > SOAK_TOKENS)
		return "bad fd count in the header";
	if (tu_fnv1a64(buf + sizeof(*h), len - sizeof(*h)) != h->sum)
		return "payload checksum mismatch";
	return NULL;
}

const char *soak_check_reply(const unsigned char *got, size_t got_len, size_t want_len,
			     uint64_t seq, uint32_t sender)
{
	if (got_len != want_len)
		return "reply length";
	if (want_len && memcmp(got, soak_pattern(soak_reply_off(seq, sender)), want_len) != 0)
		return "reply bytes";
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Token fds                                                            */
/* ------------------------------------------------------------------ */

static int token_text(char *buf, size_t n, pid_t pid, uint32_t sender, unsigned k)
{
	return snprintf(buf, n, "soak token pid=%d sender=%u k=%u\n", (int)pid, sender, k);
}

int soak_token_make(pid_t pid, uint32_t sender, unsigned k)
{
	char text[96];
	int len = token_text(text, sizeof(text), pid, sender, k);
	int fd = memfd_create("soak-token", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (write(fd, text, (size_t)len) != len) {
		close(fd);
		return -1;
	}
	return fd;
}

const char *soak_token_check(int fd, pid_t pid, uint32_t sender, unsigned k)
{
	char want[96], got[96];
	int len = token_text(want, sizeof(want), pid, sender, k);
	ssize_t n = pread(fd, got, sizeof(got), 0);

	if (n < 0)
		return "token fd unreadable";
	if (n != len || memcmp(got, want, (size_t)len) != 0)
		return "token fd has the wrong content";
	return NULL;
}

int64_t soak_random_deadline(struct soak_rng *r)
{
	unsigned c = (unsigned)soak_range(r, 0, 99);

	if (c < 10)
		return 0; /* FLTPORT_POLL */
	if (c < 40)
		return (int64_t)soak_range(r, 1, 20) * 1000000;
	if (c < 75)
		return (int64_t)soak_range(r, 50, 2000) * 1000000;
	if (c < 85)
		return 10LL * 1000000000;
	return -1; /* FLTPORT_INFINITE */
}

/* ------------------------------------------------------------------ */
/* Reports, resources, control                                          */
/* ------------------------------------------------------------------ */

atomic_long soak_errors;

void soak_fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (atomic_fetch_add(&soak_errors, 1) < 100)
		soak_say("FAIL %s", msg);
}

void soak_say(const char *fmt, ...)
{
	char line[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* One write of at most PIPE_BUF bytes: atomic on a pipe. */
	(void)!write(STDOUT_FILENO, line, (size_t)n);
}

int soak_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n - 1; /* the directory's own fd */
}

void soak_fds_take(struct soak_fds *s)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	struct stat st;

	s->n = 0;
	if (!d)
		return;
	while ((e = readdir(d)) != NULL && s->n < SOAK_FDS_MAX) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] == '.' || fd == dirfd(d) || fstat(fd, &st) != 0)
			continue;
		s->e[s->n].fd = fd;
		s->e[s->n].dev = st.st_dev;
		s->e[s->n].ino = st.st_ino;
		s->n++;
	}
	closedir(d);
}

int soak_fds_kept(const struct soak_fds *base)
{
	struct stat st;
	int i, kept = 0;

	for (i = 0; i < base->n; i++) {
		if (fstat(base->e[i].fd, &st) == 0 && st.st_dev == base->e[i].dev &&
		    st.st_ino == base->e[i].ino)
			kept++;
	}
	return kept;
}

long soak_heap_in_use(void)
{
#ifdef SOAK_ASAN
	return -1;
#else
	struct mallinfo2 mi = mallinfo2();

	return (long)(mi.uordblks + mi.hblkhd);
#endif
}

void soak_heap_setup(void)
{
#ifndef SOAK_ASAN
	mallopt(M_ARENA_MAX, 1);
#endif
}

struct control {
	atomic_bool *stop_send, *stop;
};

static void *control_main(void *arg)
{
	struct control *c = arg;
	char line[256];
	size_t len = 0;

	for (;;) {
		char ch;
		ssize_t n = read(STDIN_FILENO, &ch, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(3); /* the orchestrator is gone */
		if (ch != '\n') {
			if (len + 1 < sizeof(line))
				line[len++] = ch;
			continue;
		}
		line[len] = '\0';
		len = 0;
		if (strcmp(line, "stop-send") == 0)
			atomic_store(c->stop_send, true);
		else if (strcmp(line, "stop") == 0)
			atomic_store(c->stop, true);
	}
	return NULL;
}

void soak_start_control(atomic_bool *stop_send, atomic_bool *stop)
{
	static struct control c;
	pthread_t th;

	c.stop_send = stop_send;
	c.stop = stop;
	if (pthread_create(&th, NULL, control_main, &c) != 0) {
		fprintf(stderr, "fltport-soak: pthread_create failed\n");
		exit(2);
	}
	pthread_detach(th);
}

const char *soak_arg(int argc, char **argv, const char *name, const char *def)
{
	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	}
	return def;
}

long long soak_arg_num(int argc, char **argv, const char *name, long long def)
{
	const char *s = soak_arg(argc, argv, name, NULL);
	char *end;
	long long v;

	if (!s)
		return def;
	v = strtoll(s, &end, 0);
	if (*s == '\0' || *end != '\0') {
		fprintf(stderr, "fltport-soak: %s: not a number: '%s'\n", name, s);
		exit(2);
	}
	return v;
}
