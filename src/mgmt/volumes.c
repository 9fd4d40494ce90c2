/*
 * Volumes: the mounted file systems of the caller's mount namespace, from
 * /proc/self/mountinfo (mount id, device, mount point, type, source).
 */
#include "mgmt/mgmt_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* Parse one mountinfo line:
 *   36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw
 * Fields are cut in place.  0, or -1 for a malformed line. */
static int parse_line(char *line, struct fltport_volume_info *v)
{
	char *f[6], *save = NULL, *p, *type, *source;
	unsigned maj, min;
	int i;

	for (i = 0, p = strtok_r(line, " ", &save); p && i < 6; i++, p = strtok_r(NULL, " ", &save))
		f[i] = p;
	if (i < 6)
		return -1;
	/* Optional fields up to the "-" separator. */
	while (p && strcmp(p, "-") != 0)
		p = strtok_r(NULL, " ", &save);
	if (!p)
		return -1;
	type = strtok_r(NULL, " ", &save);
	source = strtok_r(NULL, " ", &save);
	if (!type || !source || sscanf(f[2], "%u:%u", &maj, &min) != 2)
		return -1;
	memset(v, 0, sizeof(*v));
	v->mount_id = strtoull(f[0], NULL, 10);
	v->dev_major = maj;
	v->dev_minor = min;
	unescape(f[4]);
	unescape(type);
	unescape(source);
	snprintf(v->mount_point, sizeof(v->mount_point), "%s", f[4]);
	snprintf(v->fstype, sizeof(v->fstype), "%s", type);
	snprintf(v->source, sizeof(v->source), "%s", source);
	return 0;
}

static char *read_all(const char *path)
{
	size_t cap = 16384, n = 0;
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (!buf || fd < 0) {
		int e = fd < 0 ? errno : ENOMEM;

		free(buf);
		if (fd >= 0)
			close(fd);
		errno = e;
		return NULL;
	}
	for (;;) {
		ssize_t r;

		if (n + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				close(fd);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			free(buf);
			close(fd);
			errno = e;
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	return buf;
}

/* Each mount: fn(arg, v); stops at a negative return. */
static int each_mount(int (*fn)(void *arg, struct fltport_volume_info *v), void *arg)
{
	struct fltport_volume_info *v = malloc(sizeof(*v));
	char *buf = read_all("/proc/self/mountinfo");
	char *line, *save = NULL;
	int rc = 0;

	if (!v || !buf) {
		rc = !buf ? -errno : -ENOMEM;
		free(v);
		free(buf);
		return rc;
	}
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (parse_line(line, v) != 0)
			continue;
		rc = fn(arg, v);
		if (rc < 0)
			break;
	}
	free(v);
	free(buf);
	return rc;
}

struct find_mp {
	uint64_t mnt_id;
	char *out;
	size_t len;
	int rc;
};

static int match_id(void *arg, struct fltport_volume_info *v)
{
	struct find_mp *fm = arg;

	if (v->mount_id != fm->mnt_id)
		return 0;
	fm->rc = strlen(v->mount_point) < fm->len ? 0 : -ENAMETOOLONG;
	if (fm->rc == 0)
		strcpy(fm->out, v->mount_point);
	return -1; /* found: stop */
}

int fp_mgmt_mount_point(const char *path, char *out, size_t len)
{
	struct statx stx;
	struct find_mp fm = { .out = out, .len = len, .rc = -ENOENT };

	if (statx(AT_FDCWD, path, AT_NO_AUTOMOUNT, STATX_MNT_ID, &stx) != 0)
		return -errno;
	if (!(stx.stx_mask & STATX_MNT_ID))
		return -EOPNOTSUPP;
	fm.mnt_id = stx.stx_mnt_id;
	(void)each_mount(match_id, &fm);
	return fm.rc;
}

struct vol_list {
	struct fltport_volume_info *v;
	size_t n, cap;
};

static int add_volume(void *arg, struct fltport_volume_info *v)
{
	struct vol_list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct fltport_volume_info *nv = realloc(l->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = cap;
	}
	l->v[l->n++] = *v;
	return 0;
}

FLTPORT_API int fltport_mgmt_volumes(struct fltport_volume_info **out, size_t *count)
{
	struct vol_list l = { 0 };
	struct fltport_instance_info *inst = NULL;
	size_t ninst = 0;
	int rc;

	if (!out || !count)
		return -EINVAL;
	rc = each_mount(add_volume, &l);
	if (rc < 0) {
		free(l.v);
		return rc;
	}
	/* Instances each volume carries (those the caller may see). */
	if (fltport_mgmt_instances(NULL, &inst, &ninst, NULL) == 0) {
		for (size_t i = 0; i < l.n; i++)
			for (size_t j = 0; j < ninst; j++)
				if (strcmp(l.v[i].mount_point, inst[j].volume) == 0)
					l.v[i].instances++;
		free(inst);
	}
	if (!l.v && !(l.v = malloc(sizeof(*l.v))))
		return -ENOMEM;
	*out = l.v;
	*count = l.n;
	return 0;
}
