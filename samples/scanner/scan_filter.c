/*
 * fltport-scanner: the filter's side of a scan.
 *
 *   pre_open          an open of a file with a scanned extension: a denial
 *                     remembered for this exact file version answers at
 *                     once; otherwise the connected service is asked (the
 *                     first 1 KiB, or the fd), within the event's deadline.
 *                     Clean → FLTPORT_ALLOW_CACHE (the kernel answers the
 *                     next opens until the file changes); infected → -EPERM,
 *                     remembered, and queued for quarantine.
 *   post_close_write  a file open for writing was closed: queued for a
 *                     background rescan, which drops the file's cached
 *                     allow (a write through a mapping leaves it), forgets a
 *                     remembered denial, asks the service and stores the new
 *                     verdict — a clean one in the kernel cache, under a
 *                     read lease taken before the scan, an infected one in
 *                     the memory — so the next open is answered from it.
 *
 * The verdict memory holds denials only, keyed by (st_dev, st_ino) and
 * valid while size, mtime and ctime are those seen before the scan began;
 * a close-write forgets the entry.  Clean verdicts live in the kernel
 * (fltport_filter_cache_*), which clears them on modification.
 */
#include "scanner_int.h"
#include "scanner_proto.h"
#include "sc_common.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* ---- which files ------------------------------------------------------- */

static bool wanted(const char *path)
{
	const char *base, *dot;
	char ext[SC_EXT_MAX];
	size_t n;

	if (sc.o.all)
		return true;
	if (!path)
		return false;
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	dot = strrchr(base, '.');
	if (!dot || dot == base || (n = strlen(dot + 1)) == 0 || n >= sizeof(ext))
		return false;
	for (size_t i = 0; i <= n; i++)
		ext[i] = (char)tolower((unsigned char)dot[1 + i]);
	for (unsigned i = 0; i < sc.o.nexts; i++)
		if (strcmp(ext, sc.o.exts[i]) == 0)
			return true;
	return false;
}

/* Inside the quarantine directory: never rescanned nor moved again. */
static bool in_quarantine(const char *path)
{
	size_t n = strlen(sc.qdir_path);

	return sc.qdir_fd >= 0 && path && strncmp(path, sc.qdir_path, n) == 0 && path[n] == '/';
}

/* ---- verdict memory (denials) ----------------------------------------- */

#define MEMO_SLOTS 4096u /* direct-mapped: a collision evicts */

struct memo {
	bool used;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	char sig[FLTPORT_SCAN_SIG_MAX];
};

static struct memo memo[MEMO_SLOTS];
static pthread_mutex_t memo_lock = PTHREAD_MUTEX_INITIALIZER;

static struct memo *memo_slot(dev_t dev, ino_t ino)
{
	uint64_t h =
		((uint64_t)dev * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)ino * 0xC2B2AE3D27D4EB4Full);

	return &memo[(h >> 20) % MEMO_SLOTS];
}

static bool same_version(const struct memo *m, const struct stat *st)
{
	return m->used && m->dev == st->st_dev && m->ino == st->st_ino && m->size == st->st_size &&
	       m->mtime.tv_sec == st->st_mtim.tv_sec && m->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       m->ctime.tv_sec == st->st_ctim.tv_sec && m->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static bool memo_find(const struct stat *st, char *sig, size_t cap)
{
	struct memo *m = memo_slot(st->st_dev, st->st_ino);
	bool hit;

	pthread_mutex_lock(&memo_lock);
	hit = same_version(m, st);
	if (hit)
		snprintf(sig, cap, "%s", m->sig);
	pthread_mutex_unlock(&memo_lock);
	return hit;
}

/* `st` is the file as it was before the scan began: a change during the
 * scan makes the entry miss, never match a newer version. */
static void memo_put(const struct stat *st, const char *sig)
{
	struct memo *m = memo_slot(st->st_dev, st->st_ino);

	pthread_mutex_lock(&memo_lock);
	m->used = true;
	m->dev = st->st_dev;
	m->ino = st->st_ino;
	m->size = st->st_size;
	m->mtime = st->st_mtim;
	m->ctime = st->st_ctim;
	snprintf(m->sig, sizeof(m->sig), "%s", sig);
	pthread_mutex_unlock(&memo_lock);
}

static void memo_drop(dev_t dev, ino_t ino)
{
	struct memo *m = memo_slot(dev, ino);

	pthread_mutex_lock(&memo_lock);
	if (m->used && m->dev == dev && m->ino == ino)
		m->used = false;
	pthread_mutex_unlock(&memo_lock);
}

void sc_memo_clear(void)
{
	pthread_mutex_lock(&memo_lock);
	for (unsigned i = 0; i < MEMO_SLOTS; i++)
		memo[i].used = false;
	pthread_mutex_unlock(&memo_lock);
}

/* ---- asking the service ------------------------------------------------ */

struct sc_scan {
	int fd;
	const struct stat *st;
	const char *path;
	pid_t pid;
	uid_t uid;
	const char *exe;
	bool rescan;
	/* out */
	bool safe;
	char sig[FLTPORT_SCAN_SIG_MAX];
};

/* Microsoft's notification: the first ≤ 1 KiB, read by the filter. */
static int ask_windows(struct sc_service *s, struct sc_scan *q, int64_t timeout_ns)
{
	struct fltport_scan_win_notification n = { 0 };
	struct fltport_scan_win_reply r = { 0 };
	size_t rlen = sizeof(r);
	uint32_t status = 0;
	ssize_t got = pread(q->fd, n.contents, sizeof(n.contents), 0);
	int rc;

	if (got < 0)
		return -errno;
	n.bytes_to_scan = (uint32_t)got;
	rc = fltport_send(s->client, &n, sizeof(n), NULL, 0, &r, &rlen, &status, timeout_ns);
	if (rc == -EOVERFLOW) /* a longer reply than SCANNER_REPLY: its first byte is the verdict */
		rc = 0;
	if (rc < 0)
		return rc;
	if (status != 0 || rlen < 1)
		return -EPROTO;
	q->safe = r.safe_to_open != 0;
	snprintf(q->sig, sizeof(q->sig), "%s", q->safe ? "" : "(service)");
	return 0;
}

/* An fd service: the request names the file and the opener; the fd goes
 * with it. */
static int ask_fd(struct sc_service *s, struct sc_scan *q, int64_t timeout_ns)
{
	static __thread unsigned char buf[FLTPORT_SCAN_REQUEST_MAX];
	struct fltport_scan_request *h = (struct fltport_scan_request *)buf;
	struct fltport_scan_reply r = { 0 };
	size_t plen = strnlen(q->path, 4096), elen = strnlen(q->exe, 4096);
	size_t rlen = sizeof(r);
	uint32_t status = 0;
	int rc;

	memset(h, 0, sizeof(*h));
	h->version = FLTPORT_SCAN_VERSION;
	h->flags = q->rescan ? FLTPORT_SCAN_RESCAN : 0;
	h->size = (uint64_t)q->st->st_size;
	h->dev = (uint64_t)q->st->st_dev;
	h->ino = (uint64_t)q->st->st_ino;
	h->pid = (int32_t)q->pid;
	h->uid = (uint32_t)q->uid;
	h->path_len = (uint16_t)plen;
	h->exe_len = (uint16_t)elen;
	memcpy(buf + sizeof(*h), q->path, plen);
	memcpy(buf + sizeof(*h) + plen, q->exe, elen);
	rc = fltport_send(s->client, buf, sizeof(*h) + plen + elen, &q->fd, 1, &r, &rlen, &status,
			  timeout_ns);
	if (rc < 0)
		return rc;
	if (status != 0 || rlen < 1)
		return -EPROTO; /* the service could not scan: the policy decides */
	q->safe = r.safe != 0;
	if (rlen > offsetof(struct fltport_scan_reply, signature) && !q->safe) {
		size_t n = rlen - offsetof(struct fltport_scan_reply, signature);

		memcpy(q->sig, r.signature, n < sizeof(q->sig) ? n : sizeof(q->sig));
		q->sig[sizeof(q->sig) - 1] = '\0';
	} else {
		q->sig[0] = '\0';
	}
	if (!q->safe && !q->sig[0])
		snprintf(q->sig, sizeof(q->sig), "(service)");
	return 0;
}

static int ask(struct sc_service *s, struct sc_scan *q, int64_t timeout_ns)
{
	int rc = s->want_fd ? ask_fd(s, q, timeout_ns) : ask_windows(s, q, timeout_ns);

	atomic_fetch_add(&sc.c.scanned, 1);
	if (rc < 0)
		atomic_fetch_add(&sc.c.failed, 1);
	else
		atomic_fetch_add(q->safe ? &sc.c.clean : &sc.c.infected, 1);
	return rc;
}

/* ---- logging ----------------------------------------------------------- */

static void log_denial(const char *path, pid_t pid, uid_t uid, const char *exe, const char *sig,
		       const char *reason)
{
	char msg[1024], spid[24], suid[24];
	struct sc_field fields[] = {
		{ "MESSAGE_ID", "5c4e1b1f8a2d4f0e9b6a3c7d2e1f0a9b" },
		{ "FLTPORT_PATH", path },
		{ "FLTPORT_PID", spid },
		{ "FLTPORT_EXE", exe && exe[0] ? exe : NULL },
		{ "FLTPORT_UID", uid == (uid_t)-1 ? NULL : suid },
		{ "FLTPORT_SIGNATURE", sig },
		{ "FLTPORT_DECIDED_BY", reason },
	};

	snprintf(spid, sizeof(spid), "%ld", (long)pid);
	snprintf(suid, sizeof(suid), "%lu", (unsigned long)uid);
	snprintf(msg, sizeof(msg), "denied open of %s by pid %ld (%s): %s", path, (long)pid,
		 exe && exe[0] ? exe : "?", sig);
	sc_log(LOG_WARNING, msg, fields, sizeof(fields) / sizeof(fields[0]));
}

static void decision_line(const char *verdict, const char *source, const char *sig, int64_t t0,
			  pid_t pid, uid_t uid, const char *path)
{
	char epath[1024], esig[4 * FLTPORT_SCAN_SIG_MAX];

	if (!sc.o.verbose)
		return;
	sc_escape(path, epath, sizeof(epath));
	sc_escape(sig && sig[0] ? sig : "-", esig, sizeof(esig));
	sc_out("DECISION verdict=%s source=%s signature=%s us=%lld pid=%ld uid=%ld path=%s",
	       verdict, source, esig, (long long)((sc_now_ns() - t0) / 1000), (long)pid,
	       uid == (uid_t)-1 ? -1L : (long)uid, epath);
}

/* ---- background work: rescans and quarantine --------------------------- */

enum job_kind { JOB_RESCAN, JOB_QUARANTINE };

struct job {
	enum job_kind kind;
	char *path;
	dev_t dev;
	ino_t ino;
	char sig[FLTPORT_SCAN_SIG_MAX];
	struct job *next;
};

#define JOBS_MAX 4096u
#define BG_THREADS_MAX 16u

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *head, *tail;
	unsigned n;
	bool stop, running;
	pthread_t threads[BG_THREADS_MAX];
	unsigned nthreads;
} bg = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void job_free(struct job *j)
{
	free(j->path);
	free(j);
}

/* Queue a job; a rescan already queued for the same path is not repeated.
 * Never blocks (the notification thread calls it): a full queue drops. */
static void job_add(enum job_kind kind, const char *path, const struct stat *st, const char *sig)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j || !(j->path = strdup(path))) {
		free(j);
		return;
	}
	j->kind = kind;
	if (st) {
		j->dev = st->st_dev;
		j->ino = st->st_ino;
	}
	snprintf(j->sig, sizeof(j->sig), "%s", sig ? sig : "");
	pthread_mutex_lock(&bg.lock);
	if (!bg.running || bg.stop || bg.n >= JOBS_MAX)
		goto drop;
	for (struct job *o = bg.head; kind == JOB_RESCAN && o; o = o->next)
		if (o->kind == JOB_RESCAN && strcmp(o->path, path) == 0)
			goto drop;
	if (bg.tail)
		bg.tail->next = j;
	else
		bg.head = j;
	bg.tail = j;
	bg.n++;
	pthread_cond_signal(&bg.cond);
	pthread_mutex_unlock(&bg.lock);
	return;
drop:
	pthread_mutex_unlock(&bg.lock);
	job_free(j);
}

/* Open `path` (the filter's own opens are never asked) and check that it
 * is still the file `dev`/`ino` when those are given. */
static int open_file(const char *path, struct stat *st, dev_t dev, ino_t ino)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) ||
	    (ino && (st->st_dev != dev || st->st_ino != ino))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int copy_fd(int in, int out)
{
	off_t off = 0;

	for (;;) {
		ssize_t n = sendfile(out, in, &off, 1 << 20);

		if (n == 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* Move the infected file out of the way, into the root-only directory.
 * Same file system: one rename.  Else: copy (mode 0600), then unlink the
 * original if the path still names the same file. */
static void quarantine(const char *path, dev_t dev, ino_t ino, const char *sig)
{
	const char *base = strrchr(path, '/');
	char name[512], dest[4096 + 512];
	struct stat st, now;
	int fd, out, ok = 0;

	base = base ? base + 1 : path;
	snprintf(name, sizeof(name), "%lld-%llu-%s", (long long)time(NULL), (unsigned long long)ino,
		 base);
	snprintf(dest, sizeof(dest), "%s/%s", sc.qdir_path, name);
	fd = open_file(path, &st, dev, ino);
	if (fd < 0)
		return; /* gone or replaced meanwhile */
	if (st.st_dev == sc.qdir_dev) {
		ok = renameat2(AT_FDCWD, path, sc.qdir_fd, name, RENAME_NOREPLACE) == 0;
		if (ok)
			(void)fchmod(fd, 0600);
	} else if ((out = openat(sc.qdir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
				 0600)) >= 0) {
		ok = copy_fd(fd, out) == 0 && fsync(out) == 0;
		close(out);
		if (ok && lstat(path, &now) == 0 && now.st_dev == dev && now.st_ino == ino)
			ok = unlink(path) == 0;
		else
			ok = 0;
		if (!ok)
			unlinkat(sc.qdir_fd, name, 0);
	}
	close(fd);
	if (ok) {
		struct sc_field fields[] = {
			{ "MESSAGE_ID", "8d1f6e2a0b3c4d5e9f7a6b5c4d3e2f1a" },
			{ "FLTPORT_PATH", path },
			{ "FLTPORT_QUARANTINE_PATH", dest },
			{ "FLTPORT_SIGNATURE", sig },
		};
		char msg[2048];

		atomic_fetch_add(&sc.c.quarantined, 1);
		snprintf(msg, sizeof(msg), "quarantined %.900s as %.900s: %s", path, dest, sig);
		sc_log(LOG_WARNING, msg, fields, sizeof(fields) / sizeof(fields[0]));
	}
	if (sc.o.verbose) {
		char e1[1024], e2[1024];

		sc_escape(path, e1, sizeof(e1));
		sc_escape(dest, e2, sizeof(e2));
		sc_out("QUARANTINE ok=%d path=%s to=%s", ok, e1, e2);
	}
}

static void rescan_line(const char *verdict, const char *sig, bool cached, const char *path)
{
	char epath[1024], esig[4 * FLTPORT_SCAN_SIG_MAX];

	if (!sc.o.verbose)
		return;
	sc_escape(path, epath, sizeof(epath));
	sc_escape(sig && sig[0] ? sig : "-", esig, sizeof(esig));
	sc_out("RESCAN verdict=%s signature=%s cached=%d path=%s", verdict, esig, cached, epath);
}

/* After a close-write: forget every verdict on the file, then scan it while
 * holding it (a read lease, so that a writer coming during the scan keeps
 * the clean verdict out of the cache) and store the new verdict. */
static void rescan(const char *path)
{
	struct sc_scan q = { .path = path, .uid = (uid_t)-1, .exe = "", .rescan = true };
	struct sc_service *s;
	struct stat st;
	bool held, cached = false;
	int rc;

	q.fd = open_file(path, &st, 0, 0);
	if (q.fd < 0)
		return;
	atomic_fetch_add(&sc.c.rescans, 1);
	(void)fltport_filter_cache_drop(sc.filter, q.fd);
	memo_drop(st.st_dev, st.st_ino);
	s = sc_service_get();
	if (!s) {
		rescan_line("no-service", NULL, false, path);
		close(q.fd);
		return;
	}
	held = fltport_filter_cache_hold(sc.filter, q.fd) == 0;
	if (fstat(q.fd, &st) < 0) /* the version the verdict is about */
		st.st_size = -1;
	q.st = &st;
	rc = ask(s, &q, sc.o.deadline_ns);
	sc_service_put(s);
	if (rc == 0 && q.safe && held)
		cached = fltport_filter_cache_allow(sc.filter, q.fd, FLTPORT_OP_OPEN) == 0;
	else if (held)
		fltport_filter_cache_release(sc.filter, q.fd);
	close(q.fd);
	if (rc < 0) {
		rescan_line("error", fltport_strerror(rc), false, path);
		return;
	}
	rescan_line(q.safe ? "clean" : "infected", q.sig, cached, path);
	if (q.safe)
		return;
	memo_put(&st, q.sig);
	log_denial(path, 0, (uid_t)-1, "", q.sig, "rescan");
	if (sc.qdir_fd >= 0 && !in_quarantine(path))
		quarantine(path, st.st_dev, st.st_ino, q.sig);
}

static void *bg_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&bg.lock);
	for (;;) {
		struct job *j;

		while (!bg.head && !bg.stop)
			pthread_cond_wait(&bg.cond, &bg.lock);
		if (bg.stop)
			break;
		j = bg.head;
		bg.head = j->next;
		if (!bg.head)
			bg.tail = NULL;
		bg.n--;
		pthread_mutex_unlock(&bg.lock);
		if (j->kind == JOB_RESCAN)
			rescan(j->path);
		else
			quarantine(j->path, j->dev, j->ino, j->sig);
		job_free(j);
		pthread_mutex_lock(&bg.lock);
	}
	pthread_mutex_unlock(&bg.lock);
	return NULL;
}

int sc_background_start(unsigned threads)
{
	if (threads > BG_THREADS_MAX)
		threads = BG_THREADS_MAX;
	pthread_mutex_lock(&bg.lock);
	bg.running = true;
	pthread_mutex_unlock(&bg.lock);
	for (bg.nthreads = 0; bg.nthreads < threads; bg.nthreads++)
		if (pthread_create(&bg.threads[bg.nthreads], NULL, bg_main, NULL) != 0)
			return bg.nthreads ? 0 : -1;
	return 0;
}

/* Stop the background threads: a job in progress finishes (bounded by the
 * deadline), queued ones are dropped. */
void sc_background_stop(void)
{
	pthread_mutex_lock(&bg.lock);
	bg.stop = true;
	pthread_cond_broadcast(&bg.cond);
	pthread_mutex_unlock(&bg.lock);
	for (unsigned i = 0; i < bg.nthreads; i++)
		pthread_join(bg.threads[i], NULL);
	bg.nthreads = 0;
	while (bg.head) {
		struct job *j = bg.head;

		bg.head = j->next;
		job_free(j);
	}
	bg.tail = NULL;
	bg.n = 0;
}

/* ---- the callbacks ----------------------------------------------------- */

/* The opener's identity, worked out on first use (the filter runs with
 * FLTPORT_FILTER_LAZY_INFO: most opens never need it). */
static void who(const struct fltport_filter_event *ev, struct sc_scan *q)
{
	if (q->exe)
		return;
	q->uid = (uid_t)-1;
	(void)fltport_filter_event_identity(ev, &q->uid, NULL, &q->exe);
	if (!q->exe)
		q->exe = "";
}

static void deny_line(const struct fltport_filter_event *ev, struct sc_scan *q, const char *source,
		      const char *sig, int64_t t0, bool log)
{
	who(ev, q);
	decision_line("deny", source, sig, t0, q->pid, q->uid, q->path);
	if (log)
		log_denial(q->path, q->pid, q->uid, q->exe, sig, source);
}

int sc_pre_open(void *cookie, const struct fltport_filter_event *ev)
{
	struct sc_scan q = { .fd = ev->fd,
			     .path = fltport_filter_event_path(ev),
			     .pid = ev->pid,
			     .uid = (uid_t)-1 };
	int64_t t0 = sc_now_ns();
	struct sc_service *s;
	struct stat st;
	bool windows;
	int rc;

	(void)cookie;
	if (!wanted(q.path) || fstat(ev->fd, &st) < 0 || !S_ISREG(st.st_mode))
		return FLTPORT_ALLOW;
	q.st = &st;
	if (memo_find(&st, q.sig, sizeof(q.sig))) {
		atomic_fetch_add(&sc.c.remembered, 1);
		deny_line(ev, &q, "memory", q.sig, t0, true);
		return -EPERM;
	}
	s = sc_service_get();
	if (!s) {
		atomic_fetch_add(&sc.c.no_service, 1);
		if (!sc.o.fail_closed) {
			if (sc.o.verbose)
				who(ev, &q);
			decision_line("allow", "no-service", NULL, t0, q.pid, q.uid, q.path);
			return FLTPORT_ALLOW;
		}
		deny_line(ev, &q, "no-service", "-", t0, true);
		return -EPERM;
	}
	windows = !s->want_fd;
	if (!windows)
		who(ev, &q); /* an fd service is told who opened the file */
	rc = ask(s, &q, fltport_filter_time_left(ev));
	sc_service_put(s);
	if (rc < 0) {
		if (sc.o.fail_closed) {
			deny_line(ev, &q, "policy", fltport_strerror(rc), t0, false);
			log_denial(q.path, q.pid, q.uid, q.exe, "-", "policy");
			return -EPERM;
		}
		if (sc.o.verbose)
			who(ev, &q);
		decision_line("allow", "policy", fltport_strerror(rc), t0, q.pid, q.uid, q.path);
		return FLTPORT_ALLOW;
	}
	if (q.safe) {
		if (sc.o.verbose)
			who(ev, &q);
		decision_line("allow", "service", q.sig, t0, q.pid, q.uid, q.path);
		return FLTPORT_ALLOW_CACHE;
	}
	/* an fd service logs its own denials, with the file named */
	deny_line(ev, &q, "service", q.sig, t0, windows);
	memo_put(&st, q.sig);
	if (sc.qdir_fd >= 0 && !in_quarantine(q.path))
		job_add(JOB_QUARANTINE, q.path, &st, q.sig);
	return -EPERM;
}

void sc_post_close_write(void *cookie, const struct fltport_filter_post_event *ev)
{
	(void)cookie;
	if (!ev->path || ev->is_dir || ev->pid == getpid() || !wanted(ev->path) ||
	    in_quarantine(ev->path))
		return;
	job_add(JOB_RESCAN, ev->path, NULL, NULL);
}
