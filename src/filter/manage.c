/*
 * A named filter on the management plane (fltport/mgmt.h): it answers what
 * it is (name, altitude, counters), its instances, and attach / detach
 * requests, which its instance_setup callback may refuse.
 */
#include "filter/filter_int.h"
#include "filter/fan_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* An altitude as Windows writes them: digits, at most one '.', digits
 * around it ("385100", "385100.5"). */
static bool altitude_valid(const char *a)
{
	size_t len = strlen(a);
	bool dot = false, digit = false;

	if (len == 0 || len > FLTPORT_ALTITUDE_MAX || a[0] == '.' || a[len - 1] == '.')
		return false;
	for (const char *p = a; *p; p++) {
		if (*p == '.' && !dot)
			dot = true;
		else if (*p >= '0' && *p <= '9')
			digit = true;
		else
			return false;
	}
	return digit;
}

int fp_filter_manage_init(struct fltport_filter *f)
{
	const char *name = f->cfg.name, *alt = f->cfg.altitude ? f->cfg.altitude : "0";

	if (!altitude_valid(alt))
		return -EINVAL;
	snprintf(f->altitude, sizeof(f->altitude), "%s", alt);
	f->cfg.altitude = f->altitude;
	f->started_ns = fp_mgmt_realtime();
	if (name) {
		struct sockaddr_un sa;
		socklen_t salen;
		int rc = fp_mgmt_addr(FP_MGMT_FILTER, name, &sa, &salen);

		if (rc < 0)
			return rc;
		while (*name == '\\')
			name++;
		snprintf(f->name, sizeof(f->name), "%s", name);
		f->cfg.name = f->name;
	}
	return 0;
}

static unsigned count_instances(struct fltport_filter *f)
{
	unsigned n = atomic_load(&f->nscope), k = 0;

	for (unsigned i = 0; i < n; i++)
		if (!atomic_load(&f->scope[i].detached))
			k++;
	return k;
}

static int emit_info(struct fltport_filter *f, struct fp_mgmt_out *out)
{
	struct fltport_filter_info in;

	memset(&in, 0, sizeof(in));
	snprintf(in.name, sizeof(in.name), "%s", f->name);
	snprintf(in.altitude, sizeof(in.altitude), "%s", f->altitude);
	in.pid = (int32_t)getpid();
	in.uid = (uint32_t)geteuid();
	pthread_mutex_lock(&f->scope_lock);
	in.instances = count_instances(f);
	pthread_mutex_unlock(&f->scope_lock);
	in.features = f->features;
	in.started_ns = f->started_ns;
	fltport_filter_stats(f, &in.stats);
	return fp_mgmt_emit(out, &in, sizeof(in));
}

/* A snapshot under scope_lock (the mount watcher and attach need it),
 * sent after: a requester that reads slowly holds nothing up. */
static int emit_instances(struct fltport_filter *f, struct fp_mgmt_out *out)
{
	struct fltport_instance_info *v = calloc(FLTPORT_FILTER_MAX_PATHS, sizeof(*v));
	unsigned n, k = 0;
	int rc = 0;

	if (!v)
		return -ENOMEM;
	pthread_mutex_lock(&f->scope_lock);
	n = atomic_load(&f->nscope);
	for (unsigned i = 0; i < n && k < FLTPORT_FILTER_MAX_PATHS; i++) {
		const struct fp_filter_scope *s = &f->scope[i];
		struct fltport_instance_info *in = &v[k];

		if (atomic_load(&s->detached))
			continue;
		k++;
		snprintf(in->filter, sizeof(in->filter), "%s", f->name);
		snprintf(in->name, sizeof(in->name), "%s", s->instance ? s->instance : "");
		snprintf(in->altitude, sizeof(in->altitude), "%s", s->altitude);
		snprintf(in->volume, sizeof(in->volume), "%s", s->volume ? s->volume : s->path);
		snprintf(in->path, sizeof(in->path), "%s", s->path);
		in->flags = (s->flags & FLTPORT_ATTACH_MOUNT) |
			    ((s->flags & FP_SCOPE_FOUND) ? FLTPORT_INSTANCE_FOUND : 0);
		in->pid = (int32_t)getpid();
	}
	pthread_mutex_unlock(&f->scope_lock);
	for (unsigned i = 0; i < k && rc == 0; i++)
		rc = fp_mgmt_emit(out, &v[i], sizeof(v[i]));
	free(v);
	return rc;
}

/* Remove a SUBMOUNTS watch on `path` (the watcher stops attaching below
 * it).  scope_lock held. */
static void unwatch(struct fltport_filter *f, const char *path)
{
	for (unsigned i = 0; i < f->nwatch; i++) {
		if (strcmp(f->watch[i].path, path) != 0)
			continue;
		free(f->watch[i].path);
		f->watch[i] = f->watch[--f->nwatch];
		return;
	}
}

/* The first attached instance on `p` (a realpath: as attached, or its
 * volume), named `instance` if not NULL, or NULL.  scope_lock held. */
static struct fp_filter_scope *find_scope(struct fltport_filter *f, const char *p,
					  const char *instance)
{
	unsigned n = atomic_load(&f->nscope);

	for (unsigned i = 0; i < n; i++) {
		struct fp_filter_scope *s = &f->scope[i];

		if (atomic_load(&s->detached) ||
		    (strcmp(s->path, p) != 0 && (!s->volume || strcmp(s->volume, p) != 0)) ||
		    (instance && (!s->instance || strcmp(s->instance, instance) != 0)))
			continue;
		return s;
	}
	return NULL;
}

/* Detach the instance on `path` (as attached, or its volume), named
 * `instance` if not NULL.  0 or -ENXIO. */
static int detach(struct fltport_filter *f, const char *path, const char *instance)
{
	char *real = realpath(path, NULL);
	const char *p = real ? real : path;
	struct fp_filter_scope *s;
	int rc = -ENXIO;

	pthread_mutex_lock(&f->scope_lock);
	s = find_scope(f, p, instance);
	if (s) {
		unsigned how =
			(s->flags & FLTPORT_ATTACH_MOUNT) ? FAN_MARK_MOUNT : FAN_MARK_FILESYSTEM;

		/* Through the fd attached, not the path: something mounted
		 * over the path since would be another file system. */
		if ((f->perm_fd >= 0 && f->perm_mask &&
		     fanotify_mark(f->perm_fd, FAN_MARK_REMOVE | how, f->perm_mask, s->mfd, NULL) !=
			     0 &&
		     errno != ENOENT) ||
		    (f->notify_fd >= 0 && f->notify_mask &&
		     fanotify_mark(f->notify_fd, FAN_MARK_REMOVE | how, f->notify_mask, s->mfd,
				   NULL) != 0 &&
		     errno != ENOENT)) {
			rc = -errno;
			fp_filter_debug("detach %s: %s", s->path, strerror(errno));
		} else {
			atomic_store(&s->detached, true);
			unwatch(f, s->path);
			fp_filter_debug("detached %s (%s)", s->path,
					s->instance ? s->instance : "");
			rc = 0;
		}
	}
	pthread_mutex_unlock(&f->scope_lock);
	free(real);
	return rc;
}

int fltport_filter_detach(fltport_filter *f, const char *path)
{
	if (!f || !path || atomic_load(&f->stopping) || fp_forked(&f->fork))
		return -EINVAL;
	return detach(f, path, NULL);
}

/*
 * What a management-plane request would do, before instance_setup is asked
 * about it: the instance's name and its volume (mount point) as they will
 * be.  An attach of a path that does not resolve, or of a file system
 * already attached, and a detach of no attached instance fail here,
 * without asking.  A detach names the instance it found, so that what the
 * filter allowed is what goes (a request with no instance name: the first
 * instance on the path).  0 or a negative errno.
 */
static int resolve_request(struct fltport_filter *f, enum fp_mgmt_op op,
			   const struct fp_mgmt_attach *a, char *inst, size_t inst_cap,
			   char *volume, size_t vol_cap)
{
	char *real = realpath(a->volume, NULL);
	struct fp_filter_scope *s;
	int rc;

	if (op == FP_MGMT_ATTACH) {
		if (!real)
			return -errno;
		if (a->instance[0])
			snprintf(inst, inst_cap, "%s", a->instance);
		else
			snprintf(inst, inst_cap, "%s Instance", f->name);
		rc = fp_filter_attach_check(f, real, a->flags & FLTPORT_ATTACH_MOUNT, volume,
					    vol_cap);
		free(real);
		return rc;
	}
	pthread_mutex_lock(&f->scope_lock);
	s = find_scope(f, real ? real : a->volume, a->instance[0] ? a->instance : NULL);
	if (s) {
		snprintf(inst, inst_cap, "%s", s->instance ? s->instance : "");
		snprintf(volume, vol_cap, "%s", s->volume ? s->volume : s->path);
	}
	pthread_mutex_unlock(&f->scope_lock);
	free(real);
	return s ? 0 : -ENXIO;
}

static int on_attach(struct fltport_filter *f, enum fp_mgmt_op op, const void *in, size_t len)
{
	struct fp_mgmt_attach a;
	char inst[FLTPORT_NAME_MAX + 16], volume[PATH_MAX];
	int rc;

	if (len != sizeof(a))
		return -EPROTO;
	memcpy(&a, in, sizeof(a));
	a.volume[sizeof(a.volume) - 1] = '\0';
	a.instance[sizeof(a.instance) - 1] = '\0';
	a.altitude[sizeof(a.altitude) - 1] = '\0';
	if (!a.volume[0] || (a.altitude[0] && !altitude_valid(a.altitude)) ||
	    (a.flags & ~(FLTPORT_ATTACH_MOUNT | FLTPORT_ATTACH_SUBMOUNTS)))
		return -EINVAL;
	rc = resolve_request(f, op, &a, inst, sizeof(inst), volume, sizeof(volume));
	if (rc < 0)
		return rc;
	if (f->cfg.instance_setup) {
		rc = f->cfg.instance_setup(f->cfg.cookie, volume, inst, op == FP_MGMT_DETACH);
		if (rc > 0 || rc < -4095)
			rc = -EPERM;
		if (rc < 0) {
			fp_filter_debug("%s of %s on %s refused by the filter: %s",
					op == FP_MGMT_DETACH ? "detach" : "attach", inst, volume,
					strerror(-rc));
			return rc;
		}
	}
	if (op == FP_MGMT_DETACH)
		return detach(f, a.volume, inst[0] ? inst : NULL);
	return fp_filter_attach_instance(f, a.volume, a.flags, inst,
					 a.altitude[0] ? a.altitude : NULL, true);
}

static int handle(void *obj, enum fp_mgmt_op op, const void *in, size_t len,
		  struct fp_mgmt_out *out)
{
	struct fltport_filter *f = obj;

	switch (op) {
	case FP_MGMT_INFO:
		return emit_info(f, out);
	case FP_MGMT_INSTANCES:
		return emit_instances(f, out);
	case FP_MGMT_ATTACH:
	case FP_MGMT_DETACH:
		return on_attach(f, op, in, len);
	default:
		return -EOPNOTSUPP;
	}
}

int fp_filter_manage_register(struct fltport_filter *f)
{
	int rc;

	if (!f->name[0])
		return 0;
	rc = fp_mgmt_register(&f->mreg, FP_MGMT_FILTER, f->name, handle, f);
	if (rc < 0) {
		fp_filter_debug("cannot register filter %s: %s", f->name, strerror(-rc));
		return rc;
	}
	f->registered = true;
	return 0;
}

void fp_filter_manage_unregister(struct fltport_filter *f)
{
	if (!f->registered)
		return;
	f->registered = false;
	fp_mgmt_unregister(&f->mreg);
}
