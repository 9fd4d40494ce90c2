/*
 * Filter object: create (probe, groups, threads), attach (marks, scope),
 * counters, destroy (close → stop → free).
 */
#include "filter/filter_int.h"
#include "filter/fan_compat.h"
#include "core/debug.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

void fp_filter_debug(const char *fmt, ...)
{
	static _Atomic int on = -1; /* read by every thread: atomic */
	int v = atomic_load_explicit(&on, memory_order_relaxed);
	va_list ap;

	if (v < 0) {
		v = fp_debug_on();
		atomic_store_explicit(&on, v, memory_order_relaxed);
	}
	if (!v)
		return;
	/* Queued, never written here: the caller may be a worker or the
	 * deadline thread, which must not wait on stderr (core/debug.c). */
	va_start(ap, fmt);
	fp_debug_vtag("filter ", fmt, ap);
	va_end(ap);
}

int64_t fp_filter_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const struct fp_filter_scope *fp_filter_scope_by_fsid(struct fltport_filter *f, uint64_t fsid)
{
	unsigned n = atomic_load_explicit(&f->nscope, memory_order_acquire);

	for (unsigned i = 0; i < n; i++)
		if (f->scope[i].fsid == fsid && !atomic_load(&f->scope[i].detached))
			return &f->scope[i];
	return NULL;
}

static bool has_pre(const struct fltport_filter_config *c)
{
	return c->pre_open || c->pre_exec || c->pre_read || c->pre_content;
}

static bool has_post(const struct fltport_filter_config *c)
{
	return c->post_create || c->post_delete || c->post_rename || c->post_close_write ||
	       c->post_read || c->post_write;
}

static int check_config(const struct fltport_filter_config *c)
{
	if (!has_pre(c) && !has_post(c))
		return -EINVAL;
	if (c->deadline_ns < 0 || c->workers > FLTPORT_FILTER_MAX_WORKERS ||
	    c->queue_max > FLTPORT_FILTER_MAX_QUEUE)
		return -EINVAL;
	if (c->policy != FLTPORT_FAIL_OPEN && c->policy != FLTPORT_FAIL_CLOSED)
		return -EINVAL;
	if (c->deny_errno < 0 || c->deny_errno > 255)
		return -EINVAL;
	if (c->flags & ~(FLTPORT_FILTER_NO_PIDFD | FLTPORT_FILTER_NO_DENY_ERRNO |
			 FLTPORT_FILTER_NO_CACHE | FLTPORT_FILTER_LAZY_INFO))
		return -EINVAL;
	return 0;
}

/* The pidfds perm.c keeps after their events (its threads have stopped). */
static void close_kept_pidfds(struct fltport_filter *f)
{
	for (unsigned i = 0; i < FP_PIDFD_KEEP; i++) {
		int fd = atomic_exchange(&f->pidfd_keep[i], -1);

		if (fd >= 0)
			close(fd);
	}
}

/* Half-built filters are freed here too: every field is checked. */
static void filter_free(struct fltport_filter *f)
{
	unsigned n = atomic_load(&f->nscope);

	fp_filter_manage_unregister(f);
	fp_fork_unregister(&f->fork);
	for (unsigned i = 0; i < n; i++) {
		free(f->scope[i].path);
		free(f->scope[i].instance);
		free(f->scope[i].volume);
		if (f->scope[i].mfd >= 0)
			close(f->scope[i].mfd);
	}
	for (unsigned i = 0; i < f->nwatch; i++)
		free(f->watch[i].path);
	if (f->mountinfo_fd >= 0)
		close(f->mountinfo_fd);
	if (f->selffd_dir >= 0)
		close(f->selffd_dir);
	if (f->proc_dir >= 0)
		close(f->proc_dir);
	close_kept_pidfds(f);
	pthread_cond_destroy(&f->budget_cond);
	pthread_mutex_destroy(&f->budget_lock);
	fp_filter_trust_free(f);
	if (f->perm_fd >= 0)
		close(f->perm_fd);
	if (f->notify_fd >= 0)
		close(f->notify_fd);
	if (f->wake_fd >= 0)
		close(f->wake_fd);
	if (f->queue_fd >= 0)
		close(f->queue_fd);
	if (f->worker_ep >= 0)
		close(f->worker_ep);
	if (f->follow_ep >= 0)
		close(f->follow_ep);
	if (f->lead_fd >= 0)
		close(f->lead_fd);
	free(f->workers);
	pthread_mutex_destroy(&f->scope_lock);
	pthread_mutex_destroy(&f->trust_lock);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->deadline_cond);
	pthread_cond_destroy(&f->spare_cond);
	free(f);
}

/*
 * In a forked child (core/fork.h): the group fds become inert, so a child
 * that never execs cannot keep the fanotify groups alive after the filter
 * process dies (every open on the watched file system would hang until the
 * child exits).  The child's copy of the filter is dead.
 */
static void filter_in_child(struct fp_forkreg *r)
{
	struct fltport_filter *f = (struct fltport_filter *)r;

	fp_fork_kill_fd(f->perm_fd);
	fp_fork_kill_fd(f->notify_fd);
	fp_fork_kill_fd(f->wake_fd);
	fp_fork_kill_fd(f->mountinfo_fd);
	/* In a child, /proc/self/fd would still name the parent's table. */
	fp_fork_kill_fd(f->selffd_dir);
	fp_fork_kill_fd(f->proc_dir);
	/* The kept pidfds are forgotten, not closed: the kernel copies the fd
	 * table before the memory, and the parent's threads go on meanwhile,
	 * so a slot may name a number that is another fd in the child.  They
	 * pin a struct pid only, and close on exec. */
	for (unsigned i = 0; i < FP_PIDFD_KEEP; i++)
		atomic_store(&f->pidfd_keep[i], -1);
}

static struct fltport_filter *filter_alloc(const struct fltport_filter_config *cfg)
{
	struct fltport_filter *f = calloc(1, sizeof(*f));
	pthread_condattr_t ca;

	if (!f)
		return NULL;
	f->cfg = *cfg;
	if (!f->cfg.deadline_ns)
		f->cfg.deadline_ns = FLTPORT_FILTER_DEFAULT_DEADLINE;
	if (!f->cfg.workers)
		f->cfg.workers = FLTPORT_FILTER_DEFAULT_WORKERS;
	if (!f->cfg.queue_max)
		f->cfg.queue_max = FLTPORT_FILTER_DEFAULT_QUEUE;
	if (!f->cfg.deny_errno)
		f->cfg.deny_errno = EPERM;
	f->self = getpid();
	f->perm_fd = f->notify_fd = f->wake_fd = f->mountinfo_fd = f->queue_fd = f->worker_ep = -1;
	f->follow_ep = f->lead_fd = -1;
	f->cg_root = -1; /* cgtrust.c: no cgroup2 root opened yet */
	for (unsigned i = 0; i < FP_PIDFD_KEEP; i++)
		atomic_init(&f->pidfd_keep[i], -1);
	f->selffd_dir = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	f->proc_dir = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	pthread_mutex_init(&f->scope_lock, NULL);
	pthread_mutex_init(&f->trust_lock, NULL);
	pthread_mutex_init(&f->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->deadline_cond, &ca);
	pthread_cond_init(&f->spare_cond, &ca);
	pthread_cond_init(&f->budget_cond, &ca);
	pthread_mutex_init(&f->budget_lock, NULL);
	pthread_condattr_destroy(&ca);
	fp_fork_register(&f->fork, filter_in_child);
	return f;
}

int fltport_filter_create(const struct fltport_filter_config *cfg, fltport_filter **out)
{
	struct fltport_filter *f;
	int rc;

	if (!cfg || !out)
		return -EINVAL;
	rc = check_config(cfg);
	if (rc)
		return rc;
	f = filter_alloc(cfg);
	if (!f)
		return -ENOMEM;
	rc = fp_filter_manage_init(f);
	if (rc)
		goto fail;
	f->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->wake_fd < 0) {
		rc = -errno;
		goto fail;
	}
	if (has_pre(cfg)) {
		rc = fp_filter_perm_probe(f);
		if (rc)
			goto fail;
	}
	if (has_post(cfg)) {
		rc = fp_filter_notify_init(f);
		if (rc)
			goto fail;
	}
	if (has_pre(cfg)) {
		rc = fp_filter_perm_start(f);
		if (rc)
			goto fail;
	}
	if (has_post(cfg)) {
		rc = fp_filter_notify_start(f);
		if (rc) {
			fp_filter_perm_stop(f);
			goto fail;
		}
	}
	/* Registered once the readers run: an attach request opens the path,
	 * and an open on a file system already attached waits for a reader.
	 * A name in use fails the create. */
	rc = fp_filter_manage_register(f);
	if (rc) {
		if (has_post(cfg))
			fp_filter_notify_stop(f);
		if (has_pre(cfg))
			fp_filter_perm_stop(f);
		goto fail;
	}
	fp_filter_debug("created: features 0x%x, deadline %lld ns, policy %s", f->features,
			(long long)f->cfg.deadline_ns,
			f->cfg.policy == FLTPORT_FAIL_CLOSED ? "fail-closed" : "fail-open");
	*out = f;
	return 0;
fail:
	fp_filter_debug("create failed: %s", strerror(-rc));
	filter_free(f);
	return rc;
}

static int mark(int group, uint64_t mask, unsigned how, const char *path)
{
	if (group < 0 || !mask)
		return 0;
	if (fanotify_mark(group, FAN_MARK_ADD | how, mask, AT_FDCWD, path) != 0)
		return -errno;
	return 0;
}

static uint64_t fsid_of(int fd)
{
	struct statfs sfs;
	uint64_t v = 0;

	if (fstatfs(fd, &sfs) != 0)
		return 0;
	memcpy(&v, &sfs.f_fsid, sizeof(v) < sizeof(sfs.f_fsid) ? sizeof(v) : sizeof(sfs.f_fsid));
	return v;
}

/* Name the instance: `instance` or the default, the volume (mount point)
 * and the altitude.  0 or -ENOMEM. */
static int name_scope(struct fltport_filter *f, struct fp_filter_scope *s, const char *instance,
		      const char *altitude)
{
	char mp[PATH_MAX];
	char def[FLTPORT_NAME_MAX + 16];

	if (!instance) {
		snprintf(def, sizeof(def), "%s Instance", f->name[0] ? f->name : "fltport");
		instance = def;
	}
	if (fp_mgmt_mount_point(s->path, mp, sizeof(mp)) != 0)
		snprintf(mp, sizeof(mp), "%s", s->path);
	s->instance = strdup(instance);
	s->volume = strdup(mp);
	snprintf(s->altitude, sizeof(s->altitude), "%s", altitude ? altitude : f->altitude);
	if (!s->instance || !s->volume) {
		free(s->instance);
		free(s->volume);
		s->instance = s->volume = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Does the attached scope o already filter `path` (of file system fsid),
 * attached as `how`?  A file-system mark covers every mount of it; a mount
 * mark only its own mount. */
static bool scope_covers(const struct fp_filter_scope *o, uint64_t fsid, unsigned how,
			 const char *path)
{
	return o->fsid == fsid && (!(o->flags & FLTPORT_ATTACH_MOUNT) ||
				   (how == FAN_MARK_MOUNT && strcmp(o->path, path) == 0));
}

int fp_filter_attach_check(struct fltport_filter *f, const char *real, unsigned flags, char *volume,
			   size_t cap)
{
	unsigned how = (flags & FLTPORT_ATTACH_MOUNT) ? FAN_MARK_MOUNT : FAN_MARK_FILESYSTEM;
	struct statfs sfs;
	uint64_t fsid = 0;
	unsigned n;
	int rc = 0;

	if (statfs(real, &sfs) != 0)
		return -errno;
	memcpy(&fsid, &sfs.f_fsid,
	       sizeof(fsid) < sizeof(sfs.f_fsid) ? sizeof(fsid) : sizeof(sfs.f_fsid));
	pthread_mutex_lock(&f->scope_lock);
	n = atomic_load(&f->nscope);
	for (unsigned i = 0; i < n && !rc; i++)
		if (!atomic_load(&f->scope[i].detached) &&
		    scope_covers(&f->scope[i], fsid, how, real))
			rc = -EEXIST;
	pthread_mutex_unlock(&f->scope_lock);
	if (!rc && fp_mgmt_mount_point(real, volume, cap) != 0)
		snprintf(volume, cap, "%s", real);
	return rc;
}

/* Mark one file system (or mount) and record it.  scope_lock held; takes
 * ownership of `path`.  Already attached: 0, or -EEXIST when `strict`
 * (a management-plane attach names a new instance). */
static int attach_one(struct fltport_filter *f, char *path, unsigned flags, const char *instance,
		      const char *altitude, bool strict)
{
	struct fp_filter_scope s = { .path = path, .mfd = -1, .flags = flags };
	unsigned how = (flags & FLTPORT_ATTACH_MOUNT) ? FAN_MARK_MOUNT : FAN_MARK_FILESYSTEM;
	unsigned n = atomic_load(&f->nscope), reuse = n;
	int rc;

	/* Not O_PATH: open_by_handle_at() refuses O_PATH mount fds.  An open
	 * by the filter process itself is answered at once by its reader. */
	s.mfd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (s.mfd < 0) {
		rc = -errno;
		goto fail;
	}
	s.fsid = fsid_of(s.mfd);
	for (unsigned i = 0; i < n; i++) {
		const struct fp_filter_scope *o = &f->scope[i];

		if (atomic_load(&o->detached)) {
			/* Its own slot again: the notify thread may still
			 * read a detached slot's path and fd, so a slot is
			 * only ever reused for the same path. */
			if (reuse == n && o->flags == flags && o->fsid == s.fsid &&
			    strcmp(o->path, path) == 0)
				reuse = i;
			continue;
		}
		if (scope_covers(o, s.fsid, how, path)) {
			rc = strict ? -EEXIST : 0; /* already attached */
			goto fail;
		}
	}
	if (reuse == n && n >= FLTPORT_FILTER_MAX_PATHS) {
		rc = -ENOSPC;
		goto fail;
	}
	rc = name_scope(f, &s, instance, altitude);
	if (rc)
		goto fail;
	rc = mark(f->perm_fd, f->perm_mask, how, path);
	if (rc == -EINVAL && (f->perm_mask & FAN_PRE_ACCESS))
		rc = -EOPNOTSUPP;
	if (!rc) {
		rc = mark(f->notify_fd, f->notify_mask, how, path);
		if (rc == -ENODEV || rc == -EXDEV)
			rc = -EOPNOTSUPP;
		if (rc && f->perm_fd >= 0 && !fp_filter_scope_by_fsid(f, s.fsid))
			(void)fanotify_mark(f->perm_fd, FAN_MARK_REMOVE | how, f->perm_mask,
					    AT_FDCWD, path);
	}
	if (rc) {
		fp_filter_debug("attach %s: marks failed: %s", path, strerror(-rc));
		goto fail;
	}
	if (reuse < n) {
		/* Its detached slot (same path): only the instance fields,
		 * which only the management plane reads (under scope_lock),
		 * change. */
		struct fp_filter_scope *o = &f->scope[reuse];

		free(s.path);
		close(s.mfd);
		free(o->instance);
		free(o->volume);
		o->instance = s.instance;
		o->volume = s.volume;
		memcpy(o->altitude, s.altitude, sizeof(o->altitude));
		atomic_store(&o->detached, false);
	} else {
		f->scope[n] = s;
		atomic_store_explicit(&f->nscope, n + 1, memory_order_release);
	}
	fp_filter_debug("attached %s%s (perm 0x%llx notify 0x%llx)", path,
			how == FAN_MARK_MOUNT ? " (this mount)" : "",
			(unsigned long long)f->perm_mask, (unsigned long long)f->notify_mask);
	return 0;
fail:
	if (s.mfd >= 0)
		close(s.mfd);
	free(s.instance);
	free(s.volume);
	free(path);
	return rc;
}

int fltport_filter_attach_ex(fltport_filter *f, const char *path, unsigned flags)
{
	return fp_filter_attach_instance(f, path, flags, NULL, NULL, false);
}

int fp_filter_attach_instance(struct fltport_filter *f, const char *path, unsigned flags,
			      const char *instance, const char *altitude, bool strict)
{
	unsigned watches;
	char *real;
	int rc;

	if (!f || !path || (flags & ~(FLTPORT_ATTACH_MOUNT | FLTPORT_ATTACH_SUBMOUNTS)) ||
	    atomic_load(&f->stopping) || fp_forked(&f->fork))
		return -EINVAL;
	if ((flags & FLTPORT_ATTACH_MOUNT) && f->notify_fd >= 0)
		return -EOPNOTSUPP; /* directory-entry events need a file-system mark */
	real = realpath(path, NULL);
	if (!real)
		return -errno;
	pthread_mutex_lock(&f->scope_lock);
	watches = f->nwatch;
	if (flags & FLTPORT_ATTACH_SUBMOUNTS) {
		rc = fp_filter_watch_add(f, real);
		if (rc) {
			pthread_mutex_unlock(&f->scope_lock);
			free(real);
			return rc;
		}
	}
	rc = attach_one(f, real, flags & FLTPORT_ATTACH_MOUNT, instance, altitude, strict);
	if (rc && f->nwatch > watches) /* the watch this call added: not without its attach */
		free(f->watch[--f->nwatch].path);
	pthread_mutex_unlock(&f->scope_lock);
	if (!rc && (flags & FLTPORT_ATTACH_SUBMOUNTS))
		fp_filter_mounts_scan(f);
	return rc;
}

int fltport_filter_attach(fltport_filter *f, const char *path)
{
	return fltport_filter_attach_ex(f, path, 0);
}

/* For the mount watcher (mounts.c): attach a file system found mounted
 * below a SUBMOUNTS path.  scope_lock held. */
int fp_filter_attach_found(struct fltport_filter *f, const char *mount_point)
{
	char *p = strdup(mount_point);
	unsigned before = atomic_load(&f->nscope);
	int rc;

	if (!p)
		return -ENOMEM;
	rc = attach_one(f, p, FP_SCOPE_FOUND, NULL, NULL, false);
	if (!rc && atomic_load(&f->nscope) > before)
		atomic_fetch_add(&f->c.submounts, 1);
	return rc;
}

void fltport_filter_stats(const fltport_filter *cf, struct fltport_filter_stats *st)
{
	struct fltport_filter *f = (struct fltport_filter *)cf;

	if (!f || !st)
		return;
	memset(st, 0, sizeof(*st));
	st->seen = atomic_load(&f->c.seen);
	st->allowed = atomic_load(&f->c.allowed);
	st->denied = atomic_load(&f->c.denied);
	st->fast = atomic_load(&f->c.fast);
	st->timed_out = atomic_load(&f->c.timed_out);
	st->overflowed = atomic_load(&f->c.overflowed);
	st->late = atomic_load(&f->c.late);
	st->cached = atomic_load(&f->c.cached);
	st->answer_errors = atomic_load(&f->c.answer_errors);
	st->post_events = atomic_load(&f->c.post_events);
	st->in_flight = atomic_load(&f->c.in_flight);
	st->max_in_flight = f->max_in_flight;
	st->throttled = atomic_load(&f->c.throttled);
	st->kernel_denied = atomic_load(&f->c.kernel_denied);
	st->submounts = atomic_load(&f->c.submounts);
	pthread_mutex_lock(&f->lock);
	st->queue_depth = f->qlen;
	pthread_mutex_unlock(&f->lock);
}

unsigned fltport_filter_features(const fltport_filter *f)
{
	return f ? f->features : 0;
}

bool fltport_filter_errno_supported(const fltport_filter *f, int err)
{
	if (!f || err <= 0 || err > 255)
		return false;
	if (err == EPERM)
		return true;
	return (f->errno_ok[err / 64] >> (err % 64)) & 1;
}

int64_t fltport_filter_time_left(const struct fltport_filter_event *ev)
{
	int64_t left;

	if (!ev)
		return 0;
	left = ev->deadline_ns - fp_filter_now();
	return left > 0 ? left : 0;
}

void fltport_filter_destroy(fltport_filter *f)
{
	if (!f)
		return;
	if (fp_forked(&f->fork))
		return;                 /* a forked child's copy: its threads do not exist here */
	fp_filter_manage_unregister(f); /* no management request from now on */
	atomic_store(&f->stopping, true);
	fp_filter_mounts_stop(f);
	/* close: no new events.  Removing the marks first means the reader
	 * only has to drain what the kernel already queued. */
	/* One flush per kind of mark: file systems, mounts (FLTPORT_ATTACH_
	 * MOUNT: left in place until 2026-11-29, so a mount-scoped filter
	 * kept making events nobody read while its callbacks were held),
	 * inodes (the cache). */
	for (int g = 0; g < 2; g++) {
		int fd = g == 0 ? f->perm_fd : f->notify_fd;

		if (fd < 0)
			continue;
		(void)fanotify_mark(fd, FAN_MARK_FLUSH | FAN_MARK_FILESYSTEM, 0, AT_FDCWD, "/");
		(void)fanotify_mark(fd, FAN_MARK_FLUSH | FAN_MARK_MOUNT, 0, AT_FDCWD, "/");
		(void)fanotify_mark(fd, FAN_MARK_FLUSH, 0, AT_FDCWD, "/");
	}
	/* stop: threads drain, answer and exit. */
	if (f->notify_fd >= 0)
		fp_filter_notify_stop(f);
	if (f->perm_fd >= 0)
		fp_filter_perm_stop(f);
	fp_filter_debug("destroyed");
	/* free: closing the group releases anything the kernel still holds. */
	filter_free(f);
}
