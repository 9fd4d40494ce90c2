/*
 * FLTPORT_ATTACH_SUBMOUNTS: every file system mounted below an attached
 * path is attached too, now and as mounts come later.  The mount table of
 * the filter's mount namespace (/proc/self/mountinfo) signals a change with
 * POLLPRI; a watcher thread then rescans it and marks each new file system
 * mounted below a watched path.  Only the mount table is read: the watched
 * file systems are never touched (a mark names the mount point's path).
 *
 * A mount that appears is filtered from the moment the watcher marks it,
 * milliseconds later; opens in that window are not seen (docs/FILTER.md).
 * File systems mounted in other mount namespaces are seen only if they are
 * also mounted in ours (a file-system mark covers every view of it).
 */
#include "filter/filter_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Undo mountinfo's octal escapes (\040 space, \011 tab, \012, \134). */
static void unescape(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

/* Field 5 of a mountinfo line: the mount point (in place). */
static char *mount_point(char *line)
{
	char *p = line;

	for (int field = 1; field < 5; field++) {
		p = strchr(p, ' ');
		if (!p)
			return NULL;
		p++;
	}
	line = p;
	p = strchr(line, ' ');
	if (p)
		*p = '\0';
	unescape(line);
	return line;
}

static bool below(const struct fp_filter_watch *w, const char *mp)
{
	if (w->len == 1 && w->path[0] == '/')
		return mp[0] == '/' && mp[1] != '\0';
	return strncmp(mp, w->path, w->len) == 0 && mp[w->len] == '/';
}

/* Read the whole mount table (it changes between reads: read it at once). */
static char *read_mountinfo(int fd, size_t *len)
{
	size_t cap = 16384, n = 0;
	char *buf = malloc(cap);

	if (!buf || lseek(fd, 0, SEEK_SET) < 0) {
		free(buf);
		return NULL;
	}
	for (;;) {
		ssize_t r;

		if (n + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

void fp_filter_mounts_scan(struct fltport_filter *f)
{
	size_t len;
	char *buf, *line, *save = NULL;

	if (f->mountinfo_fd < 0)
		return;
	buf = read_mountinfo(f->mountinfo_fd, &len);
	if (!buf) {
		fp_filter_debug("mountinfo: %s", strerror(errno));
		return;
	}
	pthread_mutex_lock(&f->scope_lock);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *mp = mount_point(line);

		if (!mp)
			continue;
		for (unsigned i = 0; i < f->nwatch; i++) {
			int rc;

			if (!below(&f->watch[i], mp))
				continue;
			rc = fp_filter_attach_found(f, mp);
			if (rc && rc != -ENOENT && rc != -EACCES)
				fp_filter_debug("submount %s not attached: %s", mp, strerror(-rc));
			break;
		}
	}
	pthread_mutex_unlock(&f->scope_lock);
	free(buf);
}

static void *watcher_main(void *arg)
{
	struct fltport_filter *f = arg;

	for (;;) {
		struct pollfd p[2] = { { .fd = f->mountinfo_fd, .events = POLLPRI },
				       { .fd = f->wake_fd, .events = POLLIN } };
		int r = poll(p, 2, -1);

		if (atomic_load(&f->stopping))
			break;
		if (r < 0 && errno != EINTR)
			break;
		if (r > 0 && (p[0].revents & (POLLPRI | POLLERR)))
			fp_filter_mounts_scan(f);
	}
	return NULL;
}

int fp_filter_watch_add(struct fltport_filter *f, char *path)
{
	size_t len = strlen(path);
	int rc;

	for (unsigned i = 0; i < f->nwatch; i++)
		if (strcmp(f->watch[i].path, path) == 0)
			return 0;
	if (f->nwatch >= FLTPORT_FILTER_MAX_PATHS)
		return -ENOSPC;
	if (f->mountinfo_fd < 0) {
		f->mountinfo_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
		if (f->mountinfo_fd < 0)
			return -errno;
	}
	f->watch[f->nwatch].path = strdup(path);
	if (!f->watch[f->nwatch].path)
		return -ENOMEM;
	f->watch[f->nwatch].len = len;
	f->nwatch++;
	if (!f->have_mount_watcher) {
		rc = pthread_create(&f->mount_watcher, NULL, watcher_main, f);
		if (rc)
			return -rc;
		f->have_mount_watcher = true;
	}
	return 0;
}

void fp_filter_mounts_stop(struct fltport_filter *f)
{
	uint64_t one = 1;
	bool have;

	pthread_mutex_lock(&f->scope_lock);
	have = f->have_mount_watcher;
	f->have_mount_watcher = false;
	pthread_mutex_unlock(&f->scope_lock);
	if (!have)
		return;
	atomic_store(&f->stopping, true);
	(void)!write(f->wake_fd, &one, sizeof(one));
	pthread_join(f->mount_watcher, NULL);
}
