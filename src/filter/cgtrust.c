/*
 * Trusted cgroups (cgroup2).  An entry is a cgroup's path as
 * /proc/<pid>/cgroup shows it ("/system.slice/x.service") and the cgroup's
 * id: the inode number of its directory, which kernfs never hands out twice
 * in a boot (64-bit).  cgroup2 has no rename, and a cgroup that holds a
 * process or a child cannot be removed.  So an event's process is trusted
 * when its cgroup's path is the entry's path or lies below it and that path
 * still names the entry's id (fstatat on the cgroup2 root): a cgroup made
 * again under the name of a removed one has another id.
 *
 * The reader reads /proc/<pid>/cgroup by pid; the event's pidfd, alive
 * afterwards, shows the pid was still the event's process.  With
 * PIDFD_GET_INFO (6.13+) the cgroup id comes through the pidfd itself; a path
 * read from /proc then counts only if it names that id, and the answer is
 * remembered per cgroup id until the trust set changes (a cgroup's place in
 * the tree never changes).  Only /proc and the cgroup2 file system are
 * touched, never a watched one.
 *
 * Paths are compared as the filter's cgroup namespace shows them; processes
 * outside it show paths with ".." and are never trusted by cgroup.
 */
#include "filter/filter_int.h"
#include "filter/fan_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/* A canonical cgroup path: "/" or "/a/b" — no empty, "." or ".."
 * component, no newline. */
static bool path_ok(const char *p, size_t len)
{
	const char *end = p + len, *c = p;

	if (len == 0 || p[0] != '/' || memchr(p, '\n', len))
		return false;
	if (len == 1)
		return true;
	while (c < end) {
		const char *next;
		size_t n;

		c++; /* past the '/' */
		next = memchr(c, '/', (size_t)(end - c));
		if (!next)
			next = end;
		n = (size_t)(next - c);
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c = next;
	}
	return true;
}

/* A path from the API: canonical, not "/" (every process). */
static int check_arg(const char *p, size_t *len)
{
	size_t n;

	if (!p)
		return -EINVAL;
	n = strnlen(p, PATH_MAX);
	if (n == PATH_MAX)
		return -ENAMETOOLONG;
	if (!path_ok(p, n) || n == 1)
		return -EINVAL;
	*len = n;
	return 0;
}

/* Whether `path` names the cgroup `id` now. */
static bool names(struct fltport_filter *f, const char *path, uint64_t id)
{
	struct stat st;

	return fstatat(f->cg_root, path[1] ? path + 1 : ".", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       (uint64_t)st.st_ino == id;
}

static bool below(const char *path, const struct fp_filter_trust_cg *t)
{
	return strncmp(path, t->path, t->len) == 0 && (path[t->len] == '\0' || path[t->len] == '/');
}

/* ---- the cgroup2 root ---------------------------------------------------- */

/* Undo mountinfo's octal escapes ("\040" for a space) in place. */
static void unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

/* The mount point of a cgroup2 mount of the whole hierarchy (root "/"),
 * from mountinfo: "id parent maj:min root mount-point opts... - type ...". */
static int mount_point(char *buf, size_t len)
{
	FILE *fp = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, *save, *root, *mp;
	size_t cap = 0;
	int rc = -EOPNOTSUPP;

	if (!fp)
		return -errno;
	while (rc && getline(&line, &cap, fp) > 0) {
		char *sep = strstr(line, " - ");

		if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		*sep = '\0';
		root = mp = NULL;
		for (int i = 1; i <= 5; i++) {
			char *tok = strtok_r(i == 1 ? line : NULL, " ", &save);

			if (i == 4)
				root = tok;
			else if (i == 5)
				mp = tok;
		}
		if (!root || !mp || strcmp(root, "/") != 0)
			continue;
		unescape(mp);
		if (strlen(mp) < len) {
			memcpy(buf, mp, strlen(mp) + 1);
			rc = 0;
		}
	}
	free(line);
	fclose(fp);
	return rc;
}

static int root_open(void)
{
	char mp[PATH_MAX];
	struct statfs sfs;
	int fd, rc = mount_point(mp, sizeof(mp));

	if (rc)
		return rc;
	fd = open(mp, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -EOPNOTSUPP;
	if (fstatfs(fd, &sfs) != 0 || (unsigned long)sfs.f_type != CGROUP2_SUPER_MAGIC) {
		close(fd);
		return -EOPNOTSUPP;
	}
	return fd;
}

/* f->cg_root, opened once; the lookup runs outside trust_lock (the reader
 * waits on it). */
static int root_get(struct fltport_filter *f)
{
	int fd;

	pthread_mutex_lock(&f->trust_lock);
	fd = f->cg_root;
	pthread_mutex_unlock(&f->trust_lock);
	if (fd >= 0)
		return 0;
	fd = root_open();
	if (fd < 0)
		return fd;
	pthread_mutex_lock(&f->trust_lock);
	if (f->cg_root < 0) {
		f->cg_root = fd;
		fd = -1;
	}
	pthread_mutex_unlock(&f->trust_lock);
	if (fd >= 0)
		close(fd);
	return 0;
}

/* ---- the API -------------------------------------------------------------- */

static void entry_drop(struct fltport_filter *f, unsigned i)
{
	free(f->trust_cg[i].path);
	f->trust_cg[i] = f->trust_cg[--f->ntrust_cg];
	f->trust_gen++;
}

/* Drop entries whose cgroup is gone (its path is free or names another).
 * Under trust_lock. */
static void prune(struct fltport_filter *f)
{
	for (unsigned i = f->ntrust_cg; i-- > 0;)
		if (!names(f, f->trust_cg[i].path, f->trust_cg[i].id))
			entry_drop(f, i);
}

/* Under trust_lock; takes `path` (malloc'ed). */
static int entry_add(struct fltport_filter *f, char *path, size_t len, uint64_t id)
{
	prune(f);
	for (unsigned i = 0; i < f->ntrust_cg; i++) {
		if (f->trust_cg[i].id == id) {
			free(path); /* already trusted */
			return 0;
		}
	}
	if (f->ntrust_cg >= FLTPORT_FILTER_MAX_TRUSTED_CGROUPS) {
		free(path);
		return -ENOSPC;
	}
	f->trust_cg[f->ntrust_cg++] = (struct fp_filter_trust_cg){ path, len, id };
	f->trust_gen++;
	return 0;
}

int fltport_filter_trust_cgroup(fltport_filter *f, const char *cgroup_path)
{
	struct stat st;
	size_t len = 0;
	char *path;
	int rc = f ? check_arg(cgroup_path, &len) : -EINVAL;

	if (rc == 0)
		rc = root_get(f);
	if (rc)
		return rc;
	/* cg_root is set for good: read without the lock */
	if (fstatat(f->cg_root, cgroup_path + 1, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	path = strndup(cgroup_path, len);
	if (!path)
		return -ENOMEM;
	pthread_mutex_lock(&f->trust_lock);
	rc = entry_add(f, path, len, (uint64_t)st.st_ino);
	pthread_mutex_unlock(&f->trust_lock);
	if (rc == 0)
		fp_filter_debug("trusting cgroup %s (id %llu)", cgroup_path,
				(unsigned long long)st.st_ino);
	return rc;
}

int fltport_filter_untrust_cgroup(fltport_filter *f, const char *cgroup_path)
{
	size_t len = 0;
	int rc = f ? check_arg(cgroup_path, &len) : -EINVAL;

	if (rc)
		return rc;
	rc = -ENOENT;
	pthread_mutex_lock(&f->trust_lock);
	for (unsigned i = f->ntrust_cg; i-- > 0;) {
		if (f->trust_cg[i].len == len &&
		    memcmp(f->trust_cg[i].path, cgroup_path, len) == 0) {
			entry_drop(f, i);
			rc = 0;
		}
	}
	pthread_mutex_unlock(&f->trust_lock);
	return rc;
}

void fp_filter_cg_free(struct fltport_filter *f)
{
	for (unsigned i = 0; i < f->ntrust_cg; i++)
		free(f->trust_cg[i].path);
	f->ntrust_cg = 0;
	if (f->cg_root >= 0)
		close(f->cg_root);
	f->cg_root = -1;
}

/* ---- the reader's check ------------------------------------------------- */

/* The cgroup id of the pidfd's process, through the pidfd (6.13+); 0 if
 * unknown. */
static uint64_t pidfd_cgroup(struct fltport_filter *f, int pidfd)
{
	struct fp_pidfd_info info;

	if (pidfd < 0 || !(f->features & FLTPORT_FILTER_HAVE_PIDFD_INFO))
		return 0;
	memset(&info, 0, sizeof(info));
	info.mask = FP_PIDFD_INFO_CGROUPID;
	if (ioctl(pidfd, FP_PIDFD_GET_INFO, &info) != 0 || !(info.mask & FP_PIDFD_INFO_CGROUPID))
		return 0;
	return info.cgroupid;
}

/* The cgroup2 path of pid ("0::<path>" in /proc/<pid>/cgroup), in buf;
 * NULL if unreadable or not canonical. */
static const char *proc_cgroup(pid_t pid, char *buf, size_t len)
{
	char *p, *nl;

	if (fp_filter_read_proc(pid, "cgroup", buf, len) < 0)
		return NULL;
	if (strncmp(buf, "0::", 3) == 0)
		p = buf + 3;
	else if ((p = strstr(buf, "\n0::")) != NULL)
		p += 4;
	else
		return NULL;
	nl = strchr(p, '\n');
	if (nl)
		*nl = '\0';
	return path_ok(p, strlen(p)) ? p : NULL;
}

bool fp_filter_cg_trusted(struct fltport_filter *f, pid_t pid, int ev_pidfd)
{
	char buf[PATH_MAX + 256];
	uint64_t id = pidfd_cgroup(f, ev_pidfd);
	const char *path;
	bool yes = false;

	if (id && fp_filter_memo_get(f, f->cg_memo, id, 0, &yes))
		return yes;
	path = proc_cgroup(pid, buf, sizeof(buf));
	if (!path || (ev_pidfd >= 0 && !fp_filter_pidfd_alive(ev_pidfd)))
		return false;
	if (id && !names(f, path, id))
		return false; /* it moved meanwhile: a doubt */
	for (unsigned i = 0; i < f->ntrust_cg && !yes; i++) {
		const struct fp_filter_trust_cg *t = &f->trust_cg[i];

		yes = below(path, t) && names(f, t->path, t->id);
	}
	if (id)
		fp_filter_memo_put(f, f->cg_memo, id, 0, yes);
	return yes;
}
