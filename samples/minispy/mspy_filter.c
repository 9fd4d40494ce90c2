/*
 * The filter's callbacks: each operation becomes one fixed record, built on
 * the callback's stack and stored in the ring (mspy_ring.c).  The pre
 * callbacks (open, exec) only record and allow at once — an opener waits
 * for the engine's reader anyway, never for a reader of the log.  They
 * allow with FLTPORT_ALLOW, not FLTPORT_ALLOW_CACHE: a cached allow would
 * hide the file's next opens from the log.
 *
 * Who did it: the pid from fanotify (the process, not the thread), the
 * process's name (comm) and effective uid.  A pre event has the uid from
 * the engine (a pidfd, no race); for a notification the process may have
 * gone on or exited, so both are read from /proc/<pid>/status when the
 * notification is handled (unknown if it is gone).
 */
#include "mspy.h"
#include "sc_common.h"

#include <fltport/filter.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

bool mspy_verbose;
static pid_t self;

/* 100 ns intervals between 1601-01-01 and 1970-01-01 (UTC). */
#define FILETIME_UNIX_EPOCH 116444736000000000LL

static int64_t filetime_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return FILETIME_UNIX_EPOCH + (int64_t)ts.tv_sec * 10000000 + ts.tv_nsec / 100;
}

/* Read /proc/<pid>/<name> into buf (NUL-terminated); bytes read or -1. */
static ssize_t read_proc(pid_t pid, const char *name, char *buf, size_t cap)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

static void set_comm(char comm[16], const char *s, size_t n)
{
	if (n > 15)
		n = 15;
	memcpy(comm, s, n);
	comm[n] = '\0';
}

static void comm_of(pid_t pid, char comm[16])
{
	char buf[64];
	ssize_t n = read_proc(pid, "comm", buf, sizeof(buf));

	comm[0] = '\0';
	if (n <= 0)
		return;
	if (buf[n - 1] == '\n')
		n--;
	set_comm(comm, buf, (size_t)n);
}

/* Name and effective uid from /proc/<pid>/status. */
static void status_of(pid_t pid, char comm[16], uint32_t *uid)
{
	char buf[2048];
	const char *p;
	unsigned long r, e;

	comm[0] = '\0';
	*uid = FLTPORT_MSPY_UID_UNKNOWN;
	if (pid <= 0 || read_proc(pid, "status", buf, sizeof(buf)) <= 0)
		return;
	if (strncmp(buf, "Name:\t", 6) == 0)
		set_comm(comm, buf + 6, strcspn(buf + 6, "\n"));
	p = strstr(buf, "\nUid:\t");
	if (p && sscanf(p + 6, "%lu %lu", &r, &e) == 2)
		*uid = (uint32_t)e;
}

static void say(const struct mspy_rec *r)
{
	char path[2 * MSPY_NAMES_MAX], new_path[2 * MSPY_NAMES_MAX], comm[64];

	sc_escape(r->names, path, sizeof(path));
	sc_escape(r->new_len ? r->names + r->path_len + 1 : "", new_path, sizeof(new_path));
	sc_escape(r->comm, comm, sizeof(comm));
	sc_out("EVENT seq=%u op=%s pid=%d uid=%ld comm=%s path=%s%s%s", r->seq, mspy_op_name(r->op),
	       (int)r->pid, r->uid == FLTPORT_MSPY_UID_UNKNOWN ? -1L : (long)r->uid, comm, path,
	       r->new_len ? " new_path=" : "", r->new_len ? new_path : "");
}

static void store(struct mspy_rec *r)
{
	mspy_ring_put(r);
	if (mspy_verbose)
		say(r);
}

static void record_pre(const struct fltport_filter_event *ev, uint16_t op)
{
	struct mspy_rec r;
	struct statx stx;

	memset(&r, 0, offsetof(struct mspy_rec, names));
	r.op = op;
	r.time = filetime_now();
	r.pid = ev->pid;
	r.uid = ev->uid == (uid_t)-1 ? FLTPORT_MSPY_UID_UNKNOWN : (uint32_t)ev->uid;
	/* The opener waits until we answer: no fstat, which on NFS or FUSE
	 * may ask the server.  DONT_SYNC takes what the kernel has cached;
	 * type and inode number are all we need, the device comes always. */
	if (statx(ev->fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO, &stx) ==
	    0) {
		r.dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
		if (stx.stx_mask & STATX_INO)
			r.ino = stx.stx_ino;
		if ((stx.stx_mask & STATX_TYPE) && S_ISDIR(stx.stx_mode))
			r.flags |= FLTPORT_MSPY_EXT_DIRECTORY;
	}
	comm_of(ev->pid, r.comm);
	mspy_rec_finish(&r, ev->path, NULL);
	store(&r);
}

static int on_open(void *cookie, const struct fltport_filter_event *ev)
{
	record_pre(ev, FLTPORT_MSPY_OP_OPEN);
	return FLTPORT_ALLOW;
}

static int on_exec(void *cookie, const struct fltport_filter_event *ev)
{
	record_pre(ev, FLTPORT_MSPY_OP_EXEC);
	return FLTPORT_ALLOW;
}

static void record_post(const struct fltport_filter_post_event *ev, uint16_t op)
{
	struct mspy_rec r;
	const char *path = ev->path;

	/* Our own writes (a --verbose stdout redirected into a watched file
	 * system) would otherwise record themselves without end. */
	if (ev->pid == self)
		return;
	memset(&r, 0, offsetof(struct mspy_rec, names));
	r.op = op;
	r.time = filetime_now();
	r.pid = ev->pid;
	status_of(ev->pid, r.comm, &r.uid);
	if (ev->is_dir)
		r.flags |= FLTPORT_MSPY_EXT_DIRECTORY;
	if (!path && ev->name && op != FLTPORT_MSPY_OP_RENAME) {
		path = ev->name; /* the directory could not be resolved */
		r.flags |= FLTPORT_MSPY_EXT_NO_PATH;
	}
	mspy_rec_finish(&r, path, op == FLTPORT_MSPY_OP_RENAME ? ev->new_path : NULL);
	store(&r);
}

static void on_post(void *cookie, const struct fltport_filter_post_event *ev)
{
	switch (ev->op) {
	case FLTPORT_OP_ACCESS:
		record_post(ev, FLTPORT_MSPY_OP_READ);
		break;
	case FLTPORT_OP_MODIFY:
		record_post(ev, FLTPORT_MSPY_OP_WRITE);
		break;
	case FLTPORT_OP_CLOSE_WRITE:
		record_post(ev, FLTPORT_MSPY_OP_CLOSE_WRITE);
		break;
	case FLTPORT_OP_CREATE:
		record_post(ev, FLTPORT_MSPY_OP_CREATE);
		break;
	case FLTPORT_OP_DELETE:
		record_post(ev, FLTPORT_MSPY_OP_DELETE);
		break;
	case FLTPORT_OP_RENAME:
		record_post(ev, FLTPORT_MSPY_OP_RENAME);
		break;
	default:
		break;
	}
}

void mspy_filter_callbacks(struct fltport_filter_config *cfg, unsigned ops)
{
	self = getpid();
	if (ops & (1u << FLTPORT_MSPY_OP_OPEN))
		cfg->pre_open = on_open;
	if (ops & (1u << FLTPORT_MSPY_OP_EXEC))
		cfg->pre_exec = on_exec;
	if (ops & (1u << FLTPORT_MSPY_OP_READ))
		cfg->post_read = on_post;
	if (ops & (1u << FLTPORT_MSPY_OP_WRITE))
		cfg->post_write = on_post;
	if (ops & (1u << FLTPORT_MSPY_OP_CLOSE_WRITE))
		cfg->post_close_write = on_post;
	if (ops & (1u << FLTPORT_MSPY_OP_CREATE))
		cfg->post_create = on_post;
	if (ops & (1u << FLTPORT_MSPY_OP_DELETE))
		cfg->post_delete = on_post;
	if (ops & (1u << FLTPORT_MSPY_OP_RENAME))
		cfg->post_rename = on_post;
}
