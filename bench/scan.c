/*
 * scan.c — the scanner rows' files, programs and in-process libclamav
 * (scan.h).
 *
 * Why the care: fltport-scanner and clamonacc hold fanotify permission
 * marks, which stall every opener on what they mark while they are slow or
 * stopped, and clamd and clamonacc are daemons by nature.  So the files
 * live on a tmpfs of their own inside the bench's private mount namespace,
 * each program is told only that path (and clamonacc's marks are checked
 * in /proc), the daemons are kept in the foreground as the bench's
 * children, and every exit path kills and reaps them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "scan.h"

#include "e2e.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef BENCH_HAVE_CLAMAV
#include <clamav.h>
#endif

#define FILES_TMPFS_OPTS "size=192m,nr_inodes=40000,mode=0755"
#define WORK_TMPFS_OPTS "size=64m,mode=0700"
#define NS_PER_MS 1000000LL
#define START_MS 30000     /* a program's start (clamd loads its database) */
#define STOP_MS 10000      /* a program's exit after SIGTERM */
#define POLL_STEP_MS 20    /* between looks at a starting program */
#define EXCLUDED_UID 65534 /* clamonacc's demanded exclusion: nobody, who opens nothing here */

/* ---- the two tmpfs ----------------------------------------------------- */

/* What scan_env_abort() undoes, set as each step is done. */
static char ab_files[64], ab_work[64];
static volatile sig_atomic_t ab_files_dir, ab_files_mnt, ab_work_dir, ab_work_mnt;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 * NS_PER_MS + ts.tv_nsec;
}

static void nap_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * NS_PER_MS };

	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

static int write_file(const char *path, const char *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode), rc = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, data, len);
	if (n != (ssize_t)len)
		rc = n < 0 ? -errno : -EIO;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	return rc;
}

int scan_file_path(const char *dir, unsigned i, char *buf, size_t cap)
{
	if ((size_t)snprintf(buf, cap, "%s/f%05u.txt", dir, i) >= cap)
		return -ENAMETOOLONG;
	return 0;
}

char *scan_file_paths(const char *dir, unsigned n)
{
	char *paths = malloc((size_t)n * SCAN_PATH_MAX);

	if (!paths)
		return NULL;
	for (unsigned i = 0; i < n; i++) {
		if (scan_file_path(dir, i, paths + (size_t)i * SCAN_PATH_MAX, SCAN_PATH_MAX)) {
			free(paths);
			return NULL;
		}
	}
	return paths;
}

/* Each clean file's contents differ (its number): ClamAV's cache and
 * clamd's are keyed by the contents' hash, and would otherwise turn every
 * miss after the first into a hit. */
static int write_clean_files(const char *dir)
{
	char path[SCAN_PATH_MAX], data[SCAN_FILE_SIZE];

	for (unsigned i = 0; i < SCAN_FILES; i++) {
		int n = snprintf(data, sizeof(data), "fltport-bench clean file %05u ", i), rc;

		memset(data + n, '.', sizeof(data) - 1 - (size_t)n);
		data[sizeof(data) - 1] = '\n';
		rc = scan_file_path(dir, i, path, sizeof(path));
		if (!rc)
			rc = write_file(path, data, sizeof(data), 0644);
		if (rc)
			return rc;
	}
	return 0;
}

/* One ClamAV body signature (.ndb): name, any target type, any offset, the
 * malware's bytes in hex — as `make demo` and the scanner tests make it. */
static int write_database(const char *db)
{
	char line[256], hex[2 * sizeof(SCAN_MALWARE)], path[128];
	int n;

	for (size_t i = 0; i < strlen(SCAN_MALWARE); i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned char)SCAN_MALWARE[i]);
	n = snprintf(line, sizeof(line), "%s:0:*:%s\n", SCAN_SIG_NAME, hex);
	snprintf(path, sizeof(path), "%s/bench.ndb", db);
	return write_file(path, line, (size_t)n, 0644);
}

static int mount_tmpfs(const char *src, const char *dir, const char *opts)
{
	if (mount(src, dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
		return -errno;
	return 0;
}

static int env_mount(struct scan_env *s, const char *parent, const char **what)
{
	*what = "paths too long";
	if ((size_t)snprintf(s->files, sizeof(s->files), "%s/files", parent) >= sizeof(s->files) ||
	    (size_t)snprintf(s->work, sizeof(s->work), "%s/work", parent) >= sizeof(s->work) ||
	    (size_t)snprintf(s->db, sizeof(s->db), "%s/db", s->work) >= sizeof(s->db) ||
	    (size_t)snprintf(s->infected, sizeof(s->infected), "%s/infected.txt", s->files) >=
		    sizeof(s->infected))
		return -ENAMETOOLONG;
	memcpy(ab_files, s->files, sizeof(ab_files));
	memcpy(ab_work, s->work, sizeof(ab_work));

	*what = "mkdir files";
	if (mkdir(s->files, 0755) < 0)
		return -errno;
	ab_files_dir = 1;
	*what = "mount the files tmpfs";
	if (mount_tmpfs("fltport-scan", s->files, FILES_TMPFS_OPTS))
		return -errno;
	ab_files_mnt = 1;
	*what = "mkdir work";
	if (mkdir(s->work, 0700) < 0)
		return -errno;
	ab_work_dir = 1;
	*what = "mount the work tmpfs";
	if (mount_tmpfs("fltport-scan-work", s->work, WORK_TMPFS_OPTS))
		return -errno;
	ab_work_mnt = 1;
	return 0;
}

int scan_env_setup(struct scan_env *s, const char *parent, const char **what)
{
	char tmpdir[96];
	int rc = env_mount(s, parent, what);

	if (rc)
		goto undo;
	*what = "check that the files directory is the new tmpfs";
	rc = e2e_fs_check(s->files);
	if (rc)
		goto undo;
	*what = "write the database";
	snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", s->work);
	if (mkdir(s->db, 0755) < 0 || mkdir(tmpdir, 0700) < 0) {
		rc = -errno;
		goto undo;
	}
	rc = write_database(s->db);
	if (rc)
		goto undo;
	*what = "write the files";
	rc = write_clean_files(s->files);
	if (rc)
		goto undo;
	*what = "write the infected file";
	rc = write_file(s->infected, "header\n" SCAN_MALWARE " foul\n",
			strlen("header\n" SCAN_MALWARE " foul\n"), 0644);
	if (rc)
		goto undo;
	return 0;
undo:
	scan_env_abort();
	return rc;
}

static int unmount_dir(const char *dir)
{
	int rc = 0;

	if (umount2(dir, 0) < 0 && (errno != EBUSY || umount2(dir, MNT_DETACH) < 0))
		rc = -errno;
	return rc;
}

int scan_env_teardown(struct scan_env *s)
{
	int rc = 0, r;

	ab_work_mnt = 0;
	r = unmount_dir(s->work);
	rc = rc ? rc : r;
	ab_work_dir = 0;
	if (rmdir(s->work) < 0 && !rc)
		rc = -errno;
	ab_files_mnt = 0;
	r = unmount_dir(s->files);
	rc = rc ? rc : r;
	ab_files_dir = 0;
	if (rmdir(s->files) < 0 && !rc)
		rc = -errno;
	return rc;
}

void scan_env_abort(void)
{
	if (ab_work_mnt)
		umount2(ab_work, MNT_DETACH);
	ab_work_mnt = 0;
	if (ab_work_dir)
		rmdir(ab_work);
	ab_work_dir = 0;
	if (ab_files_mnt)
		umount2(ab_files, MNT_DETACH);
	ab_files_mnt = 0;
	if (ab_files_dir)
		rmdir(ab_files);
	ab_files_dir = 0;
}

/* ---- programs ---------------------------------------------------------- */

/* The running programs' pids, for scan_proc_kill_all(); 0 = free slot. */
static volatile sig_atomic_t running[SCAN_PROCS_MAX];

static void forget(pid_t pid)
{
	for (unsigned i = 0; i < SCAN_PROCS_MAX; i++)
		if (running[i] == pid)
			running[i] = 0;
}

/* The bench's environment with `env` ("NAME=VALUE") added or replacing
 * NAME's value; a malloc'd array of the same strings.  Made before fork:
 * the child may not allocate. */
static char **child_env(const char *env)
{
	size_t n = 0, k = 0, name = env ? strcspn(env, "=") + 1 : 0;
	char **envp;

	while (environ[n])
		n++;
	envp = calloc(n + 2, sizeof(*envp));
	if (!envp)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!env || strncmp(environ[i], env, name))
			envp[k++] = environ[i];
	if (env)
		envp[k++] = (char *)env;
	envp[k] = NULL;
	return envp;
}

int scan_proc_start(struct scan_proc *p, char *const argv[], const char *out_file, const char *env)
{
	unsigned slot = 0;
	pid_t parent = getpid(), pid;
	int fds[2] = { -1, -1 }, out, rc;
	char **envp;

	while (slot < SCAN_PROCS_MAX && running[slot])
		slot++;
	if (slot == SCAN_PROCS_MAX)
		return -EMFILE;
	envp = child_env(env);
	if (!envp)
		return -ENOMEM;
	if (out_file)
		fds[1] = open(out_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	else if (pipe2(fds, O_CLOEXEC) < 0)
		fds[1] = -1;
	if (fds[1] < 0) {
		rc = -errno;
		free(envp);
		return rc;
	}
	out = fds[1];
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		/* Async-signal-safe calls only: the bench has threads. */
		if (setpgid(0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 ||
		    getppid() != parent)
			_exit(127);
		if (dup2(out, STDOUT_FILENO) < 0 || (out_file && dup2(out, STDERR_FILENO) < 0))
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	rc = pid < 0 ? -errno : 0;
	free(envp);
	close(fds[1]);
	if (rc) {
		if (fds[0] >= 0)
			close(fds[0]);
		return rc;
	}
	running[slot] = pid;
	setpgid(pid, pid); /* also here: no window in which a Ctrl-C reaches it */
	p->pid = pid;
	p->out = fds[0];
	p->len = 0;
	return 0;
}

/* The next line of its stdout before `until_ns`. */
static int read_line(struct scan_proc *p, char *line, size_t cap, int64_t until_ns)
{
	for (;;) {
		char *nl = memchr(p->buf, '\n', p->len);
		struct pollfd pfd = { .fd = p->out, .events = POLLIN };
		int64_t left = (until_ns - now_ns()) / NS_PER_MS;
		ssize_t n;
		int r;

		if (nl) {
			size_t k = (size_t)(nl - p->buf);

			snprintf(line, cap, "%.*s", (int)k, p->buf);
			memmove(p->buf, nl + 1, p->len - k - 1);
			p->len -= k + 1;
			return 0;
		}
		if (p->len == sizeof(p->buf))
			p->len = 0; /* a line longer than the buffer: not one we wait for */
		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		n = read(p->out, p->buf + p->len, sizeof(p->buf) - p->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		p->len += (size_t)n;
	}
}

int scan_proc_expect(struct scan_proc *p, const char *prefix, char *line, size_t cap, int ms)
{
	int64_t until = now_ns() + ms * NS_PER_MS;

	if (p->out < 0)
		return -EBADF;
	for (;;) {
		int rc = read_line(p, line, cap, until);

		if (rc)
			return rc;
		if (!strncmp(line, prefix, strlen(prefix)))
			return 0;
	}
}

bool scan_proc_alive(struct scan_proc *p, int *status)
{
	int st = 0;
	pid_t r;

	if (p->pid <= 0)
		return false;
	do
		r = waitpid(p->pid, &st, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return true;
	forget(p->pid);
	p->pid = 0;
	if (status)
		*status = st;
	return false;
}

int scan_proc_stop(struct scan_proc *p, int ms)
{
	int64_t until = now_ns() + ms * NS_PER_MS;
	int st = 0;

	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
		while (scan_proc_alive(p, &st) && now_ns() < until)
			nap_ms(POLL_STEP_MS / 2);
		if (p->pid > 0) {
			kill(p->pid, SIGKILL);
			while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
				;
			forget(p->pid);
			p->pid = 0;
		}
	}
	if (p->out >= 0)
		close(p->out);
	p->out = -1;
	return st;
}

void scan_proc_kill_all(void)
{
	for (unsigned i = 0; i < SCAN_PROCS_MAX; i++) {
		pid_t pid = running[i];

		if (pid <= 0)
			continue;
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		running[i] = 0;
	}
}

static int read_text(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/* Context switches of one thread (/proc/PID/task/TID/status). */
static double task_csw(pid_t pid, const char *tid)
{
	char path[sizeof("/proc//task//status") + 24 + NAME_MAX], text[4096];
	const char *keys[] = { "\nvoluntary_ctxt_switches:", "\nnonvoluntary_ctxt_switches:" };
	double csw = 0;

	snprintf(path, sizeof(path), "/proc/%ld/task/%s/status", (long)pid, tid);
	if (read_text(path, text, sizeof(text)))
		return 0; /* the thread ended meanwhile */
	for (size_t i = 0; i < 2; i++) {
		const char *p = strstr(text, keys[i]);

		if (p)
			csw += strtod(p + strlen(keys[i]), NULL);
	}
	return csw;
}

int scan_proc_usage(pid_t pid, double *cpu_us, double *csw)
{
	char path[64], text[1024];
	unsigned long long utime, stime;
	const char *p;
	struct dirent *de;
	DIR *d;
	int rc;

	/* utime and stime (fields 14 and 15, the whole process): after the
	 * command's closing parenthesis come fields 3 to 13. */
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	rc = read_text(path, text, sizeof(text));
	if (rc)
		return rc;
	p = strrchr(text, ')');
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
			 &stime) != 2)
		return -EPROTO;
	*cpu_us += (double)(utime + stime) * 1e6 / (double)sysconf(_SC_CLK_TCK);

	snprintf(path, sizeof(path), "/proc/%ld/task", (long)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			*csw += task_csw(pid, de->d_name);
	closedir(d);
	return 0;
}

long long scan_field(const char *line, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), " %s=", key);
	p = strstr(line, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

/* The last non-empty line of a program's output file, for an error text. */
static void last_line(const char *path, char *out, size_t cap)
{
	char text[8192];
	char *end, *start;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t size;
	ssize_t n;

	out[0] = '\0';
	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size > (off_t)sizeof(text) - 1)
		lseek(fd, size - (off_t)sizeof(text) + 1, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return;
	text[n] = '\0';
	end = text + n;
	while (end > text && (end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	start = strrchr(text, '\n');
	start = start ? start + 1 : text;
	n = (ssize_t)strnlen(start, cap - 1); /* a long line: its start says enough */
	memcpy(out, start, (size_t)n);
	out[n] = '\0';
}

static void exit_text(int st, char *buf, size_t cap)
{
	if (WIFSIGNALED(st))
		snprintf(buf, cap, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, cap, "exit status %d", WEXITSTATUS(st));
}

/* ---- fltport-scanner + fltport-scanuser ---------------------------------- */

#define FILTER_PROG "fltport-scanner"
#define SERVICE_PROG "fltport-scanuser"

const char *scan_fltport_missing(const char *bindir)
{
	static char why[PATH_MAX + 128];
	const char *progs[] = { FILTER_PROG, SERVICE_PROG };

	for (size_t i = 0; i < 2; i++) {
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s/%s", bindir, progs[i]);
		if (access(path, X_OK) < 0) {
			snprintf(why, sizeof(why),
				 "%s not built (cmake --build BUILD --target fltport-scanner "
				 "fltport-scanuser)",
				 path);
			return why;
		}
	}
	return NULL;
}

bool scan_fltport_has_clamav(const char *bindir)
{
	char path[PATH_MAX], line[256] = "";
	char *argv[] = { path, "--version", NULL };
	struct scan_proc p;
	bool yes;

	snprintf(path, sizeof(path), "%s/%s", bindir, SERVICE_PROG);
	if (scan_proc_start(&p, argv, NULL, NULL))
		return false;
	yes = !scan_proc_expect(&p, SERVICE_PROG, line, sizeof(line), START_MS) &&
	      strstr(line, "clamav");
	scan_proc_stop(&p, STOP_MS);
	return yes;
}

static int fltport_start_filter(struct scan_fltport *f, const char *bindir, const char *dir,
				char *err, size_t cap)
{
	char prog[PATH_MAX], line[512];
	char *argv[] = { prog, "--deadline", "5", (char *)dir, NULL };
	int rc;

	snprintf(prog, sizeof(prog), "%s/%s", bindir, FILTER_PROG);
	rc = scan_proc_start(&f->filter, argv, NULL, NULL);
	if (!rc)
		rc = scan_proc_expect(&f->filter, "READY", line, sizeof(line), START_MS);
	if (rc)
		snprintf(err, cap, "%s did not start: %s", FILTER_PROG, strerror(-rc));
	return rc;
}

static int fltport_start_service(struct scan_fltport *f, const char *bindir,
				 const struct scan_env *s, bool clamav, char *err, size_t cap)
{
	char prog[PATH_MAX], line[512], tmpdir[96];
	char *argv[8] = { prog, "--quiet", "--once", "--connect-timeout", "10" };
	int rc;

	snprintf(prog, sizeof(prog), "%s/%s", bindir, SERVICE_PROG);
	/* libclamav makes a directory per scan in $TMPDIR (else /tmp): the
	 * same tmpfs directory as clamd's TemporaryDirectory and the
	 * in-process engine's. */
	snprintf(tmpdir, sizeof(tmpdir), "TMPDIR=%s/tmp", s->work);
	if (clamav) { /* libclamav alone, no pattern; else the built-in "foul" */
		argv[5] = "--clamav";
		argv[6] = (char *)s->db;
	}
	rc = scan_proc_start(&f->service, argv, NULL, tmpdir);
	if (!rc)
		rc = scan_proc_expect(&f->filter, "SERVICE connected", line, sizeof(line),
				      START_MS);
	if (!rc)
		rc = scan_proc_expect(&f->service, "READY", line, sizeof(line), START_MS);
	if (rc)
		snprintf(err, cap, "%s%s did not connect: %s", SERVICE_PROG,
			 clamav ? " --clamav" : "", strerror(-rc));
	return rc;
}

int scan_fltport_start(struct scan_fltport *f, const char *bindir, const struct scan_env *s,
		       bool clamav, char *err, size_t cap)
{
	int rc;

	f->filter = (struct scan_proc){ .out = -1 };
	f->service = (struct scan_proc){ .out = -1 };
	/* The filter marks the file system of the path it is given: only ours. */
	rc = e2e_fs_check(s->files);
	if (rc) {
		snprintf(err, cap, "%s is not the bench's tmpfs", s->files);
		return rc;
	}
	rc = fltport_start_filter(f, bindir, s->files, err, cap);
	if (!rc)
		rc = fltport_start_service(f, bindir, s, clamav, err, cap);
	if (rc) {
		scan_proc_stop(&f->service, STOP_MS);
		scan_proc_stop(&f->filter, STOP_MS);
	}
	return rc;
}

static int parse_stats(const char *line, struct scan_stats *st)
{
	st->seen = scan_field(line, "seen");
	st->scanned = scan_field(line, "scanned");
	st->cached = scan_field(line, "cached");
	st->timed_out = scan_field(line, "timed_out");
	st->failed = scan_field(line, "failed");
	st->no_service = scan_field(line, "no_service");
	st->infected = scan_field(line, "infected");
	if (st->seen < 0 || st->scanned < 0 || st->cached < 0 || st->timed_out < 0 ||
	    st->failed < 0 || st->no_service < 0 || st->infected < 0)
		return -EPROTO;
	return 0;
}

int scan_fltport_stats(struct scan_fltport *f, struct scan_stats *st)
{
	char line[1024];
	int rc;

	if (kill(f->filter.pid, SIGUSR1) < 0)
		return -errno;
	rc = scan_proc_expect(&f->filter, "STATS", line, sizeof(line), STOP_MS);
	return rc ? rc : parse_stats(line, st);
}

int scan_fltport_stop(struct scan_fltport *f, struct scan_stats *st, char *err, size_t cap)
{
	char line[1024], how[64];
	int rc = 0, sst, fst;

	sst = scan_proc_stop(&f->service, STOP_MS);
	if (f->filter.pid > 0 && kill(f->filter.pid, SIGTERM) == 0) {
		rc = scan_proc_expect(&f->filter, "STATS", line, sizeof(line), STOP_MS);
		if (!rc)
			rc = parse_stats(line, st);
		if (rc)
			snprintf(err, cap, "%s: no counters at exit: %s", FILTER_PROG,
				 strerror(-rc));
	}
	fst = scan_proc_stop(&f->filter, STOP_MS);
	if (!rc && (sst || fst)) {
		exit_text(sst ? sst : fst, how, sizeof(how));
		snprintf(err, cap, "%s: %s", sst ? SERVICE_PROG : FILTER_PROG, how);
		rc = -ECHILD;
	}
	return rc;
}

/* ---- ClamAV on-access ------------------------------------------------------ */

static char clamd_path[PATH_MAX], onacc_path[PATH_MAX];

/* Debian puts the daemons in /usr/sbin, which a user's PATH may lack. */
static bool find_prog(const char *name, char *out, size_t cap)
{
	const char *path = getenv("PATH");
	char dirs[4096];
	char *save = NULL;

	snprintf(dirs, sizeof(dirs), "/usr/sbin:/usr/local/sbin:/sbin:%s",
		 path ? path : "/usr/bin");
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		if ((size_t)snprintf(out, cap, "%s/%s", d, name) < cap && access(out, X_OK) == 0)
			return true;
	}
	out[0] = '\0';
	return false;
}

const char *scan_clamd_missing(void)
{
	if (!find_prog("clamd", clamd_path, sizeof(clamd_path)))
		return "ClamAV on-access not installed: no clamd (Debian clamav-daemon; "
		       "scripts/deps.sh --bench)";
	if (!find_prog("clamonacc", onacc_path, sizeof(onacc_path)))
		return "ClamAV on-access not installed: no clamonacc (Debian clamav-daemon; "
		       "scripts/deps.sh --bench)";
	return NULL;
}

static int clamd_conf(const struct scan_env *s, char *conf, size_t cap)
{
	char text[2048];
	int n;

	snprintf(conf, cap, "%s/clamd.conf", s->work);
	n = snprintf(text, sizeof(text),
		     "# fltport-bench: the clamonacc rows' private clamd (removed after the run)\n"
		     "LocalSocket %s/clamd.sock\n"
		     "LocalSocketMode 600\n"
		     "FixStaleSocket yes\n"
		     "DatabaseDirectory %s\n"
		     "TemporaryDirectory %s/tmp\n"
		     "Foreground yes\n"
		     "SelfCheck 0\n"
		     "OnAccessIncludePath %s\n"
		     "OnAccessPrevention yes\n"
		     "OnAccessDisableDDD yes\n"
		     "OnAccessExcludeUID %d\n",
		     s->work, s->db, s->work, s->files, EXCLUDED_UID);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -ENAMETOOLONG;
	unlink(conf);
	return write_file(conf, text, (size_t)n, 0600);
}

/* 0 if clamd answers PING with PONG. */
static int clamd_ping(const char *sock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd pfd;
	char buf[16];
	ssize_t n;
	int fd, rc = -EPROTO;

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || write(fd, "nPING\n", 6) != 6) {
		rc = -errno;
		goto out;
	}
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (poll(&pfd, 1, 2000) != 1) {
		rc = -ETIMEDOUT;
		goto out;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n == 5 && !memcmp(buf, "PONG\n", 5))
		rc = 0;
out:
	close(fd);
	return rc;
}

/* The kernel's encoding of a device number, as /proc's fdinfo prints it. */
static unsigned long long kernel_dev(dev_t dev)
{
	return ((unsigned long long)major(dev) << 20) | minor(dev);
}

/* Check one fanotify fdinfo text: the number of its marks, all inode marks
 * on `dir`, or -EXDEV at the first mark on anything else. */
static int fdinfo_marks(const char *text, const struct stat *dir)
{
	int marks = 0;

	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		unsigned long long ino, sdev;

		if (strncmp(l, "fanotify ", 9) || !strncmp(l, "fanotify flags:", 15))
			continue;
		if (sscanf(l, "fanotify ino:%llx sdev:%llx", &ino, &sdev) != 2 ||
		    ino != (unsigned long long)dir->st_ino || sdev != kernel_dev(dir->st_dev))
			return -EXDEV;
		marks++;
	}
	return marks;
}

/*
 * clamonacc's fanotify marks, from /proc/PID/fdinfo: 1 when it has marks
 * and every one is an inode mark on `dir`, 0 when none yet, -EXDEV when a
 * mark is on anything else (a mount, a file system, another inode).
 */
static int onacc_marks(pid_t pid, const struct stat *dir)
{
	char path[64], link[64], info[sizeof("/proc//fdinfo/") + 24 + NAME_MAX], text[8192];
	struct dirent *de;
	int marks = 0, rc = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)) && rc >= 0) {
		ssize_t n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);

		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strcmp(link, "anon_inode:[fanotify]"))
			continue;
		snprintf(info, sizeof(info), "/proc/%ld/fdinfo/%s", (long)pid, de->d_name);
		if (read_text(info, text, sizeof(text)))
			continue;
		rc = fdinfo_marks(text, dir);
		if (rc > 0)
			marks += rc;
	}
	closedir(d);
	return rc < 0 ? rc : marks > 0;
}

static int clamd_up(struct scan_clamd *c, const struct scan_env *s, const char *conf, char *err,
		    size_t cap)
{
	char sock[128], out[128], last[256], how[64];
	char *argv[] = { clamd_path, "--config-file", (char *)conf, "--foreground", NULL };
	int64_t until = now_ns() + START_MS * NS_PER_MS;
	int rc, st = 0;

	snprintf(sock, sizeof(sock), "%s/clamd.sock", s->work);
	snprintf(out, sizeof(out), "%s/clamd.out", s->work);
	rc = scan_proc_start(&c->clamd, argv, out, NULL);
	if (rc) {
		snprintf(err, cap, "clamd: %s", strerror(-rc));
		return rc;
	}
	while ((rc = clamd_ping(sock)) != 0) {
		if (!scan_proc_alive(&c->clamd, &st) || now_ns() > until) {
			exit_text(st, how, sizeof(how));
			last_line(out, last, sizeof(last));
			snprintf(err, cap, "clamd did not answer PING (%s): %s",
				 c->clamd.pid ? "timed out" : how, last);
			return rc ? rc : -ETIMEDOUT;
		}
		nap_ms(POLL_STEP_MS);
	}
	return 0;
}

static int onacc_up(struct scan_clamd *c, const struct scan_env *s, const char *conf, char *err,
		    size_t cap)
{
	char out[128], log[128], logarg[160], last[256], how[64];
	char *argv[] = { onacc_path,     "--config-file", (char *)conf, "--fdpass",
			 "--foreground", logarg,          NULL };
	int64_t until = now_ns() + START_MS * NS_PER_MS;
	int rc, st = 0;

	if (stat(s->files, &c->files) < 0)
		return -errno;
	snprintf(out, sizeof(out), "%s/clamonacc.out", s->work);
	snprintf(log, sizeof(log), "%s/clamonacc.log", s->work);
	snprintf(logarg, sizeof(logarg), "--log=%s", log);
	rc = scan_proc_start(&c->onacc, argv, out, NULL);
	if (rc) {
		snprintf(err, cap, "clamonacc: %s", strerror(-rc));
		return rc;
	}
	while ((rc = onacc_marks(c->onacc.pid, &c->files)) == 0) {
		if (!scan_proc_alive(&c->onacc, &st) || now_ns() > until) {
			exit_text(st, how, sizeof(how));
			last_line(out, last, sizeof(last));
			snprintf(err, cap, "clamonacc placed no mark (%s): %s",
				 c->onacc.pid ? "timed out" : how, last);
			return -ETIMEDOUT;
		}
		nap_ms(POLL_STEP_MS);
	}
	if (rc < 0) {
		snprintf(err, cap,
			 rc == -EXDEV ? "clamonacc marked something other than %s: stopped"
				      : "clamonacc's marks: %s",
			 rc == -EXDEV ? s->files : strerror(-rc));
		return rc;
	}
	return 0;
}

int scan_clamd_start(struct scan_clamd *c, const struct scan_env *s, char *err, size_t cap)
{
	char conf[128];
	int rc;

	c->clamd = (struct scan_proc){ .out = -1 };
	c->onacc = (struct scan_proc){ .out = -1 };
	if (!clamd_path[0] && scan_clamd_missing()) {
		snprintf(err, cap, "%s", scan_clamd_missing());
		return -ENOENT;
	}
	rc = e2e_fs_check(s->files);
	if (rc) {
		snprintf(err, cap, "%s is not the bench's tmpfs", s->files);
		return rc;
	}
	rc = clamd_conf(s, conf, sizeof(conf));
	if (rc) {
		snprintf(err, cap, "clamd.conf: %s", strerror(-rc));
		return rc;
	}
	rc = clamd_up(c, s, conf, err, cap);
	if (!rc)
		rc = onacc_up(c, s, conf, err, cap);
	if (rc) {
		scan_proc_stop(&c->onacc, STOP_MS);
		scan_proc_stop(&c->clamd, STOP_MS);
	}
	return rc;
}

int scan_clamd_stop(struct scan_clamd *c, char *err, size_t cap)
{
	char how[64];
	int ost, cst, marks = c->onacc.pid > 0 ? onacc_marks(c->onacc.pid, &c->files) : 1;

	/* clamonacc reports a SIGTERM as an error exit; only a kill counts. */
	ost = scan_proc_stop(&c->onacc, STOP_MS);
	cst = scan_proc_stop(&c->clamd, STOP_MS);
	if (marks != 1) {
		snprintf(err, cap, "clamonacc's marks changed during the rows: %s",
			 marks < 0 ? strerror(-marks) : "none left");
		return marks < 0 ? marks : -ENOENT;
	}
	if (WIFSIGNALED(ost) || WIFSIGNALED(cst)) {
		exit_text(WIFSIGNALED(ost) ? ost : cst, how, sizeof(how));
		snprintf(err, cap, "%s did not stop on SIGTERM: %s",
			 WIFSIGNALED(ost) ? "clamonacc" : "clamd", how);
		return -ECHILD;
	}
	return 0;
}

/* ---- libclamav in process ---------------------------------------------------- */

#ifdef BENCH_HAVE_CLAMAV

const char *scan_clam_missing(void)
{
	return NULL;
}

/* Nothing here prints: libclamav's messages are dropped, its errors are
 * reported through cl_strerror(). */
static void clam_quiet(enum cl_msg severity, const char *fullmsg, const char *msg, void *ctx)
{
	(void)severity;
	(void)fullmsg;
	(void)msg;
	(void)ctx;
}

int scan_clam_load(const char *db, const char *tmpdir, void **engine, char *err, size_t cap)
{
	struct cl_engine *eng;
	unsigned sigs = 0;
	cl_error_t rc;

	cl_set_clcb_msg(clam_quiet);
	rc = cl_init(CL_INIT_DEFAULT);
	if (rc != CL_SUCCESS) {
		snprintf(err, cap, "cl_init: %s", cl_strerror(rc));
		return -EIO;
	}
	eng = cl_engine_new();
	if (!eng) {
		snprintf(err, cap, "cl_engine_new failed");
		return -ENOMEM;
	}
	rc = cl_engine_set_str(eng, CL_ENGINE_TMPDIR, tmpdir);
	if (rc == CL_SUCCESS)
		rc = cl_load(db, eng, &sigs, CL_DB_STDOPT);
	if (rc == CL_SUCCESS)
		rc = cl_engine_compile(eng);
	if (rc != CL_SUCCESS || !sigs) {
		snprintf(err, cap, "%s: %s", db,
			 rc != CL_SUCCESS ? cl_strerror(rc) : "no signature");
		cl_engine_free(eng);
		return -EIO;
	}
	*engine = eng;
	return 0;
}

int scan_clam_fd(void *engine, int fd, char *err, size_t cap)
{
	struct cl_scan_options o;
	const char *virname = NULL;
	unsigned long scanned = 0;
	cl_error_t rc;

	/* fltport-scanuser's options, which are clamd's defaults. */
	memset(&o, 0, sizeof(o));
	o.general = CL_SCAN_GENERAL_HEURISTICS;
	o.parse = ~0u;
	rc = cl_scandesc(fd, NULL, &virname, &scanned, engine, &o);
	if (rc == CL_CLEAN)
		return 0;
	if (rc == CL_VIRUS)
		return 1;
	snprintf(err, cap, "cl_scandesc: %s", cl_strerror(rc));
	return -EIO;
}

void scan_clam_free(void *engine)
{
	if (engine)
		cl_engine_free(engine);
}

#else /* built without libclamav */

const char *scan_clam_missing(void)
{
	return "fltport-bench built without libclamav (libclamav-dev: scripts/deps.sh)";
}

int scan_clam_load(const char *db, const char *tmpdir, void **engine, char *err, size_t cap)
{
	(void)db;
	(void)tmpdir;
	(void)engine;
	snprintf(err, cap, "%s", scan_clam_missing());
	return -ENOSYS;
}

int scan_clam_fd(void *engine, int fd, char *err, size_t cap)
{
	(void)engine;
	(void)fd;
	snprintf(err, cap, "%s", scan_clam_missing());
	return -ENOSYS;
}

void scan_clam_free(void *engine)
{
	(void)engine;
}

#endif
