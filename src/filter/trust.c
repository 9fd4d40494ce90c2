/*
 * Trusted processes and their descendants.  Trust is held by a pidfd: a
 * pid alone could be reused by an unrelated process after the trusted one
 * exits.  (Trusted cgroups: cgtrust.c.)
 *
 * Matching an event (called by the reader, so no file-system access but
 * /proc, under trust_lock):
 *   - the process itself: on pidfs (6.9+) every process has its own inode
 *     number: the event's pidfd (FAN_REPORT_PIDFD) and the trusted pidfd
 *     name the same process iff their inodes are equal; otherwise the pids
 *     must be equal and the trusted process alive (pidfd_send_signal(…, 0)):
 *     a live process keeps its pid, so the pid cannot have been reused.
 *   - a descendant of an entry with `tree`: the event process's parents are
 *     walked through /proc/<pid>/stat (ppid, field 4; start time, field 22),
 *     at most FLTPORT_FILTER_TRUST_DEPTH generations, up to a live trusted
 *     process.  /proc is read by pid, and a pid is free again the moment its
 *     process is reaped, so an answer counts only once confirmed:
 *       1. the trusted ancestor's pidfd shows it alive after its child's ppid
 *          was read (it held that pid then);
 *       2. every process on the way is read again, innermost first, and shows
 *          the same ppid and start time.  A process whose ppid did not change
 *          kept the same live parent in between (a parent's exit reparents
 *          its children to a reaper that was already alive, and a ppid never
 *          comes back), so all the links held at once, when 1. was checked;
 *       3. the event's own pidfd shows it alive after its /proc entry was
 *          read.  Without a pidfd the opener is blocked in the kernel on this
 *          very event and can only vanish by SIGKILL; the answer then goes
 *          nowhere.
 *     Anything else — an unreadable entry, a changed field — is a doubt,
 *     and a doubt is "not trusted": it costs a callback, never an exemption.
 *     A process more generations below its trusted ancestor than the limit
 *     is not trusted (nor ever after: it is remembered, below).
 *   - a confirmed "no" is remembered per process (its pidfs inode, and its
 *     pid and start time) until the trust set changes: a process's
 *     ancestors only ever leave it, so one that descends from no trusted
 *     process now never will.  That holds for every process on the way too,
 *     so the next walk from a child of a known process stops at it.  A "yes"
 *     is not remembered: a parent on the way may exit.  A key that comes back
 *     (a pid reused within the same clock tick) can only give a "no".
 */
#include "filter/filter_int.h"
#include "filter/fan_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

bool fp_filter_pidfd_alive(int pidfd)
{
	return syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0;
}

static uint64_t pidfd_ino(struct fltport_filter *f, int pidfd)
{
	struct stat st;

	if (!f->pidfs || pidfd < 0 || fstat(pidfd, &st) != 0)
		return 0;
	return (uint64_t)st.st_ino;
}

/* A small text file whole, NUL-terminated.  Returns its length, or -1 on
 * an error, an empty file or one that may not fit. */
static ssize_t read_text(const char *path, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	if (n < 0 || got == 0 || got == len - 1)
		return -1;
	buf[got] = '\0';
	return (ssize_t)got;
}

/* The pid a pidfd refers to, from /proc/self/fdinfo ("Pid:"), or -1. */
static pid_t pidfd_pid(int pidfd)
{
	char path[64], buf[1024];
	char *p;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	if (read_text(path, buf, sizeof(buf)) < 0)
		return -1;
	p = strstr(buf, "\nPid:");
	if (!p)
		return -1;
	return (pid_t)strtol(p + 5, NULL, 10);
}

ssize_t fp_filter_read_proc(pid_t pid, const char *name, char *buf, size_t len)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	return read_text(path, buf, len);
}

/* ---- remembered answers --------------------------------------------- */

static struct fp_filter_memo *memo_slot(struct fp_filter_memo *memo, uint64_t a, uint64_t b)
{
	uint64_t h = a * 0x9e3779b97f4a7c15ull ^ b * 0xc2b2ae3d27d4eb4full;

	return &memo[(h >> 32) & (FP_FILTER_MEMO - 1)];
}

bool fp_filter_memo_get(struct fltport_filter *f, struct fp_filter_memo *memo, uint64_t a,
			uint64_t b, bool *yes)
{
	const struct fp_filter_memo *m = memo_slot(memo, a, b);

	if (m->gen == 0 || m->gen != f->trust_gen || m->a != a || m->b != b)
		return false;
	*yes = m->yes;
	return true;
}

void fp_filter_memo_put(struct fltport_filter *f, struct fp_filter_memo *memo, uint64_t a,
			uint64_t b, bool yes)
{
	*memo_slot(memo, a, b) =
		(struct fp_filter_memo){ .a = a, .b = b, .gen = f->trust_gen, .yes = yes };
}

/* ---- descendants -------------------------------------------------------- */

struct fp_hop {
	pid_t pid, ppid;
	unsigned long long start; /* clock ticks after boot */
};

enum fp_answer { FP_NO, FP_YES, FP_DOUBT };

/* ppid (field 4) and start time (field 22) of pid, from /proc/<pid>/stat.
 * The command name (field 2) may hold spaces and parentheses: fields are
 * counted from its last ')'. */
static bool read_hop(pid_t pid, struct fp_hop *h)
{
	char buf[1024];
	char *p = NULL;
	long ppid = -1;

	if (fp_filter_read_proc(pid, "stat", buf, sizeof(buf)) > 0)
		p = strrchr(buf, ')');
	for (int field = 3; p && field <= 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return false;
		p++;
		if (field == 4)
			ppid = strtol(p, NULL, 10);
		else if (field == 22)
			h->start = strtoull(p, NULL, 10);
	}
	if (!p || ppid < 0)
		return false;
	h->pid = pid;
	h->ppid = (pid_t)ppid;
	return true;
}

/* A live trusted process, with its descendants, at pid. */
static bool tree_root_alive(struct fltport_filter *f, pid_t pid)
{
	for (unsigned i = 0; i < f->ntrust; i++) {
		const struct fp_filter_trust *t = &f->trust[i];

		if (t->tree && t->pid == pid && fp_filter_pidfd_alive(t->pidfd))
			return true;
	}
	return false;
}

/* Steps 2 and 3 of the header: hop[0..n) read again, innermost first. */
static bool confirm(const struct fp_hop *hop, unsigned n, int ev_pidfd)
{
	for (unsigned i = n; i-- > 0;) {
		struct fp_hop again;

		if (!read_hop(hop[i].pid, &again) || again.ppid != hop[i].ppid ||
		    again.start != hop[i].start)
			return false;
	}
	return ev_pidfd < 0 || fp_filter_pidfd_alive(ev_pidfd);
}

/* Whether hop[0]'s process descends from a live trusted process, walking
 * up to one, to init, to the depth limit, or to a process remembered as
 * descending from none.  On a confirmed "no", *n is the number of processes
 * (from hop[0] up) known not to descend from a trusted one. */
static enum fp_answer walk(struct fltport_filter *f, struct fp_hop *hop, unsigned *n, int ev_pidfd)
{
	bool deep = false, yes = false;
	unsigned i;

	for (i = 1;; i++) {
		pid_t parent = hop[i - 1].ppid;

		if (parent > 0 && tree_root_alive(f, parent))
			return confirm(hop, i, ev_pidfd) ? FP_YES : FP_DOUBT;
		if (parent <= 0) /* above init */
			break;
		if (i == FLTPORT_FILTER_TRUST_DEPTH) {
			deep = true;
			break;
		}
		if (!read_hop(parent, &hop[i]))
			return FP_DOUBT;
		if (fp_filter_memo_get(f, f->tree_memo, (uint64_t)parent, hop[i].start + 1, &yes))
			break;
	}
	if (yes || !confirm(hop, i, ev_pidfd))
		return FP_DOUBT;
	/* Past the depth limit, a process on the way may be near enough to a
	 * trusted one: only the event's own is known. */
	*n = deep ? 1 : i;
	return FP_NO;
}

/* A confirmed "no" for hop[0..n), by pid and start time (as the parents of
 * later processes are found), and for hop[0] by its pidfs inode too. */
static void remember_no(struct fltport_filter *f, const struct fp_hop *hop, unsigned n,
			uint64_t ino)
{
	for (unsigned i = 0; i < n; i++)
		fp_filter_memo_put(f, f->tree_memo, (uint64_t)hop[i].pid, hop[i].start + 1, false);
	if (ino)
		fp_filter_memo_put(f, f->tree_memo, ino, 0, false);
}

static bool tree_trusted(struct fltport_filter *f, pid_t pid, int ev_pidfd)
{
	struct fp_hop hop[FLTPORT_FILTER_TRUST_DEPTH];
	uint64_t ino = pidfd_ino(f, ev_pidfd);
	unsigned n = 0;
	enum fp_answer r;
	bool yes;

	if (ino && fp_filter_memo_get(f, f->tree_memo, ino, 0, &yes))
		return yes;
	if (!read_hop(pid, &hop[0]))
		return false;
	if (fp_filter_memo_get(f, f->tree_memo, (uint64_t)pid, hop[0].start + 1, &yes)) {
		/* Known by pid and start time (a child of it was walked
		 * first): known by its inode from now on, with no /proc read.
		 * Only a "no" is ever remembered. */
		if (ino && !yes)
			fp_filter_memo_put(f, f->tree_memo, ino, 0, false);
		return yes;
	}
	r = walk(f, hop, &n, ev_pidfd);
	if (r == FP_NO)
		remember_no(f, hop, n, ino);
	return r == FP_YES;
}

bool fp_filter_trusted(struct fltport_filter *f, pid_t pid, int ev_pidfd)
{
	bool yes = false, tree = false;

	pthread_mutex_lock(&f->trust_lock);
	for (unsigned i = 0; i < f->ntrust && !yes; i++) {
		const struct fp_filter_trust *t = &f->trust[i];

		tree = tree || t->tree;
		if (t->pid != pid)
			continue;
		if (t->ino && ev_pidfd >= 0)
			yes = pidfd_ino(f, ev_pidfd) == t->ino;
		else
			yes = fp_filter_pidfd_alive(t->pidfd);
	}
	/* Costs nothing until a process is trusted with its descendants or a
	 * cgroup is trusted. */
	if (!yes && tree)
		yes = tree_trusted(f, pid, ev_pidfd);
	if (!yes && f->ntrust_cg)
		yes = fp_filter_cg_trusted(f, pid, ev_pidfd);
	pthread_mutex_unlock(&f->trust_lock);
	return yes;
}

/* Drop entries whose process is gone.  Under trust_lock. */
static void prune(struct fltport_filter *f)
{
	unsigned j = 0;

	for (unsigned i = 0; i < f->ntrust; i++) {
		if (fp_filter_pidfd_alive(f->trust[i].pidfd))
			f->trust[j++] = f->trust[i];
		else
			close(f->trust[i].pidfd);
	}
	f->ntrust = j;
}

/* Takes ownership of pidfd. */
static int trust_add(struct fltport_filter *f, int pidfd, bool tree)
{
	struct fp_filter_trust t = { .pidfd = pidfd, .tree = tree };
	int rc = 0;

	t.pid = pidfd_pid(pidfd);
	if (t.pid <= 0 || !fp_filter_pidfd_alive(pidfd)) {
		close(pidfd);
		return -ESRCH;
	}
	t.ino = pidfd_ino(f, pidfd);
	pthread_mutex_lock(&f->trust_lock);
	prune(f);
	for (unsigned i = 0; i < f->ntrust; i++) {
		if (f->trust[i].pid == t.pid && f->trust[i].ino == t.ino) {
			close(pidfd); /* already trusted: the flags of this call */
			f->trust[i].tree = tree;
			f->trust_gen++;
			pthread_mutex_unlock(&f->trust_lock);
			return 0;
		}
	}
	if (f->ntrust >= FLTPORT_FILTER_MAX_TRUSTED) {
		rc = -ENOSPC;
	} else {
		f->trust[f->ntrust++] = t;
		f->trust_gen++;
	}
	pthread_mutex_unlock(&f->trust_lock);
	if (rc)
		close(pidfd);
	else
		fp_filter_debug("trusting pid %d%s", (int)t.pid,
				tree ? " and its descendants" : "");
	return rc;
}

int fltport_filter_trust_pid(fltport_filter *f, pid_t pid)
{
	int fd;

	if (!f || pid <= 0)
		return -EINVAL;
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -errno;
	/* pidfd_open gives no CLOEXEC flag choice: set it. */
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	return trust_add(f, fd, true);
}

int fltport_filter_trust_pidfd_ex(fltport_filter *f, int pidfd, unsigned flags)
{
	int fd;

	if (!f || pidfd < 0 || (flags & ~FLTPORT_TRUST_PROCESS_ONLY))
		return -EINVAL;
	fd = fcntl(pidfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	return trust_add(f, fd, !(flags & FLTPORT_TRUST_PROCESS_ONLY));
}

int fltport_filter_trust_pidfd(fltport_filter *f, int pidfd)
{
	return fltport_filter_trust_pidfd_ex(f, pidfd, 0);
}

int fltport_filter_trust_client(fltport_filter *f, const fltport_client *client)
{
	struct fltport_peer peer;

	if (!f || !client)
		return -EINVAL;
	fltport_client_peer(client, &peer);
	if (peer.pidfd >= 0)
		return fltport_filter_trust_pidfd(f, peer.pidfd);
	return fltport_filter_trust_pid(f, peer.pid);
}

int fltport_filter_untrust_pid(fltport_filter *f, pid_t pid)
{
	int rc = -ENOENT;
	unsigned j = 0;

	if (!f)
		return -EINVAL;
	pthread_mutex_lock(&f->trust_lock);
	for (unsigned i = 0; i < f->ntrust; i++) {
		if (f->trust[i].pid == pid) {
			close(f->trust[i].pidfd);
			rc = 0;
		} else {
			f->trust[j++] = f->trust[i];
		}
	}
	f->ntrust = j;
	if (rc == 0)
		f->trust_gen++;
	pthread_mutex_unlock(&f->trust_lock);
	return rc;
}

void fp_filter_trust_free(struct fltport_filter *f)
{
	for (unsigned i = 0; i < f->ntrust; i++)
		close(f->trust[i].pidfd);
	f->ntrust = 0;
	fp_filter_cg_free(f);
}
