#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef FP_HELPER_DIR
#error "FP_HELPER_DIR must be defined by the build"
#endif

static void die(const char *what)
{
	fprintf(stderr, "testutil: %s: %s\n", what, strerror(errno));
	abort();
}

/* ------------------------------------------------------------------ */
/* Temporary directories                                                */
/* ------------------------------------------------------------------ */

#define TU_MAX_TEMP_DIRS 16
#define TU_TMP_ROOT_MAX 48 /* leaves room in sun_path (108) for "/<prefix>-XXXXXX/<name>" */

static char temp_dirs[TU_MAX_TEMP_DIRS][128];
static unsigned ntemp_dirs;
static pid_t temp_dirs_owner;

static const char *tmp_root(void)
{
	const char *t = getenv("TMPDIR");

	if (!t || t[0] != '/' || strlen(t) > TU_TMP_ROOT_MAX)
		return "/tmp";
	return t;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path); /* best effort: what is left, the watcher retries */
	return 0;
}

/* atexit: only the process that made the directories removes them.
 * FTW_MOUNT: never descend into something mounted inside. */
static void remove_temp_dirs(void)
{
	if (getpid() != temp_dirs_owner)
		return;
	for (unsigned i = 0; i < ntemp_dirs; i++)
		nftw(temp_dirs[i], remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* The watcher: `sh` reading its stdin (our pipe) until EOF, that is until
 * every process holding the write end has ended, then removing `dir`.  Its
 * own session, so that a Ctrl-C or a kill of our process group spares it.
 * Failure to start it is not fatal: remove_temp_dirs() still runs at exit. */
static void start_watcher(const char *dir)
{
	static const char script[] = "read -r _; exec rm -rf --one-file-system -- \"$1\"";
	char *const argv[] = {
		"sh", "-c", (char *)script, "fltport-test-cleanup", (char *)dir, NULL
	};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none;
	int p[2], rc;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0) {
		fprintf(stderr, "testutil: pipe2: %s: %s not watched\n", strerror(errno), dir);
		return;
	}
	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[0], STDIN_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
	posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
	rc = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(p[0]);
	if (rc != 0) {
		fprintf(stderr, "testutil: cannot start /bin/sh: %s: %s not watched\n",
			strerror(rc), dir);
		close(p[1]);
	}
	/* p[1] stays open until this process ends: its close is the signal. */
}

const char *tu_temp_dir(const char *prefix)
{
	static bool registered;
	char *path;

	if (temp_dirs_owner != getpid()) {
		/* A forked child starts its own list: the directories it
		 * inherited are its parent's to remove. */
		temp_dirs_owner = getpid();
		ntemp_dirs = 0;
	}
	if (!registered && atexit(remove_temp_dirs) != 0)
		die("atexit");
	registered = true;
	if (ntemp_dirs == TU_MAX_TEMP_DIRS) {
		errno = EMFILE;
		die("tu_temp_dir: too many directories");
	}
	path = temp_dirs[ntemp_dirs];
	snprintf(path, sizeof(temp_dirs[0]), "%s/%s-XXXXXX", tmp_root(), prefix);
	if (!mkdtemp(path))
		die("mkdtemp");
	ntemp_dirs++;
	if (chmod(path, 0755) != 0)
		die("chmod");
	start_watcher(path);
	return path;
}

const char *tu_private_dir(void)
{
	const char *path = tu_temp_dir("fltport-test");

	if (setenv("FLTPORT_DIR", path, 1) != 0)
		die("setenv");
	return path;
}

const char *tu_port_name(const char *prefix)
{
	static char name[64];
	static unsigned n;

	snprintf(name, sizeof(name), "%s-%d-%u", prefix, (int)getpid(), n++);
	return name;
}

struct tu_proc tu_spawn(const char *helper, const char *const *args)
{
	struct tu_proc p = { .pid = -1, .out = -1 };
	char path[512];
	const char *argv[64];
	size_t n = 0;
	int fds[2];

	snprintf(path, sizeof(path), "%s/%s", FP_HELPER_DIR, helper);
	argv[n++] = path;
	for (; args && args[n - 1] && n < 63; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	if (pipe2(fds, O_CLOEXEC) != 0)
		die("pipe2");
	fflush(NULL);
	p.pid = fork();
	if (p.pid < 0)
		die("fork");
	if (p.pid == 0) {
		/* Only async-signal-safe calls between fork and exec. */
		if (dup2(fds[1], STDOUT_FILENO) < 0)
			_exit(126);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	p.out = fds[0];
	return p;
}

bool tu_read_line(struct tu_proc *p, char *buf, size_t n, int timeout_ms)
{
	int64_t end = tu_now_ms() + timeout_ms;
	size_t len = 0;

	if (p->out < 0 || n == 0)
		return false;
	/* One byte at a time: lines are short and nothing is buffered past
	 * the newline, so the next call starts at the next line. */
	for (;;) {
		struct pollfd pfd = { .fd = p->out, .events = POLLIN };
		int64_t left = end - tu_now_ms();
		char c;
		ssize_t r;

		if (left < 0)
			left = 0;
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			buf[len < n ? len : n - 1] = '\0';
			return false;
		}
		r = read(p->out, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			buf[len < n ? len : n - 1] = '\0';
			return false;
		}
		if (c == '\n') {
			buf[len] = '\0';
			return true;
		}
		if (len + 1 < n)
			buf[len++] = c;
	}
}

bool tu_expect(struct tu_proc *p, const char *prefix, char *buf, size_t n, int timeout_ms)
{
	int64_t end = tu_now_ms() + timeout_ms;

	for (;;) {
		int64_t left = end - tu_now_ms();

		if (left < 0 || !tu_read_line(p, buf, n, (int)left))
			return false;
		if (strncmp(buf, prefix, strlen(prefix)) == 0)
			return true;
	}
}

int tu_wait(struct tu_proc *p, int timeout_ms)
{
	int64_t end = tu_now_ms() + timeout_ms;
	int st, rc = -1;

	for (;;) {
		pid_t r = waitpid(p->pid, &st, WNOHANG);

		if (r == p->pid) {
			if (WIFEXITED(st))
				rc = WEXITSTATUS(st);
			else if (WIFSIGNALED(st))
				rc = 128 + WTERMSIG(st);
			break;
		}
		if (r < 0 && errno != EINTR)
			break;
		if (tu_now_ms() >= end) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &st, 0);
			rc = -1;
			break;
		}
		tu_sleep_ms(2);
	}
	if (p->out >= 0)
		close(p->out);
	p->out = -1;
	return rc;
}

void tu_kill(struct tu_proc *p, int sig)
{
	siginfo_t si;

	kill(p->pid, sig);
	if (sig == SIGSTOP) {
		/* kill() returns before every thread of the helper has stopped:
		 * one already running can still answer a request.  Wait for the
		 * stop (or an exit), leaving either for a later wait. */
		while (waitid(P_PID, (id_t)p->pid, &si, WSTOPPED | WEXITED | WNOWAIT) < 0 &&
		       errno == EINTR)
			;
		return;
	}
	(void)tu_wait(p, 10000);
}

int64_t tu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t tu_now_ms(void)
{
	return tu_now_ns() / 1000000;
}

void tu_sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

bool tu_wait_until(bool (*pred)(void *), void *arg, int timeout_ms)
{
	int64_t end = tu_now_ms() + timeout_ms;

	while (!pred(arg)) {
		if (tu_now_ms() >= end)
			return false;
		tu_sleep_ms(1);
	}
	return true;
}

long tu_task_syscall(int tid)
{
	char path[64], buf[256];
	long nr = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f) && sscanf(buf, "%ld", &nr) != 1)
		nr = -1; /* "running" */
	fclose(f);
	return nr;
}

bool tu_task_in_ring_wait(int tid)
{
	char path[64], line[512];
	unsigned long addr = 0, lo, hi;
	bool found = false;
	long nr = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(line, sizeof(line), f) || sscanf(line, "%ld %lx", &nr, &addr) != 2)
		nr = -1;
	fclose(f);
	if (nr != SYS_futex)
		return false;
	f = fopen("/proc/self/maps", "r");
	if (!f)
		return false;
	/* The user side's `sleeping` word: ring 0's control, +4 (ring.c). */
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, "fltport-ring") && sscanf(line, "%lx-%lx", &lo, &hi) == 2 &&
			addr == lo + 68;
	fclose(f);
	return found;
}

/* Each thread's name (/proc/self/task/TID/comm, newline cut) to fn, until
 * fn returns true; returns that thread's id, or -1. */
static int each_thread(bool (*fn)(const char *comm, void *arg), void *arg)
{
	char path[300], buf[64];
	int found = -1;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	while (d && found < 0 && (e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue; /* gone meanwhile */
		if (fgets(buf, sizeof(buf), f)) {
			buf[strcspn(buf, "\n")] = '\0';
			if (fn(buf, arg))
				found = atoi(e->d_name);
		}
		fclose(f);
	}
	if (d)
		closedir(d);
	return found;
}

static bool is_named(const char *comm, void *arg)
{
	return strcmp(comm, arg) == 0;
}

struct count_except {
	const char *prefix;
	int n;
};

static bool count_unless_prefixed(const char *comm, void *arg)
{
	struct count_except *c = arg;

	c->n += strncmp(comm, c->prefix, strlen(c->prefix)) != 0;
	return false;
}

int tu_thread_count(const char *except_prefix)
{
	struct count_except c = { .prefix = except_prefix, .n = 0 };

	(void)each_thread(count_unless_prefixed, &c);
	return c.n;
}

int tu_thread_named(const char *comm)
{
	return each_thread(is_named, (void *)comm);
}

int tu_pipe_refs(ino_t ino)
{
	char want[64], link[64], got[64];
	int n = 0;

	snprintf(want, sizeof(want), "pipe:[%lu]", (unsigned long)ino);
	for (int fd = 0; fd < 1024; fd++) {
		ssize_t k;

		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		k = readlink(link, got, sizeof(got) - 1);
		if (k > 0) {
			got[k] = '\0';
			n += strcmp(got, want) == 0;
		}
	}
	return n;
}

long tu_scaled(long n, long min)
{
	const char *s = getenv("FLTPORT_TEST_SCALE");
	long pct = s ? strtol(s, NULL, 10) : 100;

	if (pct <= 0)
		pct = 100;
	n = n * pct / 100;
	return n < min ? min : n;
}

unsigned char tu_pattern_byte(size_t i, unsigned seed)
{
	return (unsigned char)(i * 131u + (i >> 8) * 7u + (i >> 16) + seed * 29u);
}

uint64_t tu_fnv1a64(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

uint32_t tu_fnv1a32(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 16777619u;
	}
	return h;
}

char *tu_scratch(void)
{
	static char bufs[8][2048];
	static unsigned n;

	return bufs[n++ % 8];
}

const char *tu_field(const char *line, const char *key)
{
	char pat[64], *out = tu_scratch();
	const char *p;
	size_t n;

	snprintf(pat, sizeof(pat), " %s=", key);
	p = strstr(line, pat);
	if (!p)
		return "";
	p += strlen(pat);
	n = strcspn(p, " ");
	if (n >= 2048)
		n = 2047;
	memcpy(out, p, n);
	out[n] = '\0';
	return out;
}

long long tu_field_num(const char *line, const char *key)
{
	return strtoll(tu_field(line, key), NULL, 0);
}

void tu_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

int tu_drop_to(uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
		return -errno;
	return 0;
}

/* Sanitizer defaults for every test executable (all link this file).
 * Criterion 2.4.1's runner process (not the test processes) leaks a few
 * bookkeeping objects allocated under criterion_run_all_tests when several
 * tests run; LeakSanitizer would fail the whole executable for it.  Only
 * that call chain is suppressed: test bodies run in worker processes whose
 * stacks never pass through it, so leaks in fltport stay visible.  Full
 * (slow) unwinding, because libcriterion has no frame pointers and the
 * fast unwinder would stop inside it.
 *
 * The second suppression is ASan's own: a thread still starting when the
 * process exits (a closer thread the library starts as a helper's last fds
 * are closed) leaks the attribute block glibc's pthread_getattr_np()
 * allocated for ASan's stack lookup, before ASan frees it.  Its stack holds
 * only sanitizer and glibc frames (seen in CI on 2026-11-29, plain_test_
 * connect's server helper), so nothing of fltport's is hidden. */
__attribute__((visibility("default"), used)) const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0";
}

__attribute__((visibility("default"), used)) const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:criterion_run_all_tests\n"
	       "leak:GetThreadStackTopAndBottom\n";
}
