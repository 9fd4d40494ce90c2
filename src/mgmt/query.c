/*
 * The asking side of the management plane (fltport/mgmt.h): enumerate the
 * control sockets, ask each object, gather the records.
 */
#include "mgmt/mgmt_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/debug.h"
#include "core/names.h"

/* A growing array of fixed-size records. */
struct recs {
	void *v;
	size_t n, cap, size;
};

static int recs_add(struct recs *a, const void *rec, size_t len)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 8;
		void *nv = realloc(a->v, cap * a->size);

		if (!nv)
			return -ENOMEM;
		a->v = nv;
		a->cap = cap;
	}
	memset((char *)a->v + a->n * a->size, 0, a->size);
	memcpy((char *)a->v + a->n * a->size, rec, len < a->size ? len : a->size);
	a->n++;
	return 0;
}

static void recs_out(struct recs *a, void **out, size_t *count)
{
	if (!a->v)
		a->v = malloc(a->size); /* a valid, freeable pointer even when empty */
	*out = a->v;
	*count = a->n;
	a->v = NULL;
}

/* Records come from other processes: every string is cut to its field. */
#define TERM(field) ((field)[sizeof(field) - 1] = '\0')

static void term_filter(struct fltport_filter_info *v)
{
	TERM(v->name);
	TERM(v->altitude);
}

static void term_instance(struct fltport_instance_info *v)
{
	TERM(v->filter);
	TERM(v->name);
	TERM(v->altitude);
	TERM(v->volume);
	TERM(v->path);
}

static void term_port(struct fltport_port_info *v)
{
	TERM(v->name);
}

static void term_conn(struct fltport_conn_info *v)
{
	TERM(v->exe);
}

static void term_all(enum fp_mgmt_kind kind, enum fp_mgmt_op op, void *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (kind == FP_MGMT_FILTER && op == FP_MGMT_INFO)
			term_filter((struct fltport_filter_info *)v + i);
		else if (kind == FP_MGMT_FILTER && op == FP_MGMT_INSTANCES)
			term_instance((struct fltport_instance_info *)v + i);
		else if (kind == FP_MGMT_PORT && op == FP_MGMT_INFO)
			term_port((struct fltport_port_info *)v + i);
		else if (kind == FP_MGMT_PORT && op == FP_MGMT_CONNECTIONS)
			term_conn((struct fltport_conn_info *)v + i);
	}
}

/* Remove a control socket nobody answers (its process died), unless a new
 * object bound the name meanwhile: re-checked under the directory lock
 * that binding takes. */
static void remove_stale(const struct sockaddr_un *sa, socklen_t len)
{
	char dir[sizeof(sa->sun_path)];
	char *slash;
	int dfd, fd;

	snprintf(dir, sizeof(dir), "%s", sa->sun_path);
	slash = strrchr(dir, '/');
	if (!slash)
		return;
	*slash = '\0';
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	if (fp_flock_bounded(dfd, FP_FLOCK_MS)) {
		fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd >= 0 && connect(fd, (const struct sockaddr *)sa, len) != 0 &&
		    errno == ECONNREFUSED && unlink(sa->sun_path) == 0)
			fp_debug("management: removed stale %s", sa->sun_path);
		if (fd >= 0)
			close(fd);
	}
	close(dfd);
}

/* The most records an op can answer with: a peer that sends more is
 * broken or hostile, and never grows our memory without bound. */
static unsigned max_records(enum fp_mgmt_op op)
{
	switch (op) {
	case FP_MGMT_INFO:
		return 1;
	case FP_MGMT_INSTANCES:
		return FLTPORT_FILTER_MAX_PATHS;
	case FP_MGMT_CONNECTIONS:
		return 1u << 20;
	default:
		return 0;
	}
}

/* Would the object at sa refuse us?  It serves root and its own user: the
 * user that made its control socket. */
static bool refused_here(const struct sockaddr_un *sa)
{
	struct stat st;
	uid_t me = geteuid();

	return me != 0 && stat(sa->sun_path, &st) == 0 && st.st_uid != me;
}

/* A connection to the object at sa by the deadline: the fd, or -ENOENT
 * (nothing listens there: a stale socket is removed), -ETIMEDOUT (its
 * backlog stayed full: it is alive but busy), another negative errno
 * (-EACCES: not ours to ask).  A full backlog is tried again, with a
 * growing pause, until the deadline. */
static int connect_by(const struct sockaddr_un *sa, socklen_t salen, int64_t deadline)
{
	int64_t pause_ns = 500000; /* 0.5 ms, doubling to 16 ms */

	for (;;) {
		int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		int64_t left;

		if (fd < 0)
			return -errno;
		if (connect(fd, (const struct sockaddr *)sa, salen) == 0)
			return fd;
		close(fd);
		if (errno == ECONNREFUSED) {
			remove_stale(sa, salen);
			return -ENOENT;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		left = deadline - fp_now();
		if (left <= 0)
			return -ETIMEDOUT;
		if (left > pause_ns)
			left = pause_ns;
		(void)nanosleep(&(struct timespec){ .tv_nsec = (long)left }, NULL);
		if (pause_ns < 16000000)
			pause_ns *= 2;
	}
}

/* Ask one object.  Each record is passed to `each` (if any).  Returns the
 * object's status: 0 or a negative errno; -ENOENT when nothing answers
 * there (a stale socket is removed). */
static int ask(const struct sockaddr_un *sa, socklen_t salen, enum fp_mgmt_op op, const void *in,
	       size_t in_len, int (*each)(void *arg, const void *rec, size_t len), void *arg)
{
	const int64_t deadline = fp_deadline((int64_t)FLTPORT_MGMT_TIMEOUT_MS * 1000000);
	struct fp_mgmt_hdr h = { .magic = FP_MGMT_MAGIC,
				 .version = FP_MGMT_VERSION,
				 .type = FP_MGMT_T_REQ,
				 .op = (uint16_t)op,
				 .len = (uint32_t)in_len };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)in, in_len } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = in_len ? 2 : 1 };
	uint8_t *buf = NULL;
	unsigned nrec = 0;
	int fd, rc;

	fd = connect_by(sa, salen, deadline);
	if (fd < 0) {
		rc = fd;
		fd = -1;
		goto out;
	}
	/* An object that refuses us answers before reading the request and
	 * closes: a failed send may still have its answer waiting. */
	if (sendmsg(fd, &m, MSG_NOSIGNAL) < 0 && errno != EPIPE && errno != ECONNRESET) {
		rc = -errno;
		goto out;
	}
	buf = malloc(FP_MGMT_PACKET_MAX);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		struct fp_mgmt_hdr r;
		ssize_t n;

		/* The deadline holds even against an object that keeps
		 * sending (poll with 0 ms left still says readable). */
		if (fp_now() >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		rc = poll(&p, 1, fp_poll_ms(deadline));
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc == 0) {
			rc = -ETIMEDOUT;
			break;
		}
		if (rc < 0) {
			rc = -errno;
			break;
		}
		n = recv(fd, buf, FP_MGMT_PACKET_MAX, MSG_TRUNC);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0) {
			rc = -ECONNRESET; /* it died while answering */
			break;
		}
		if ((size_t)n < sizeof(r) || (size_t)n > FP_MGMT_PACKET_MAX) {
			rc = -EPROTO;
			break;
		}
		memcpy(&r, buf, sizeof(r));
		if (r.magic != FP_MGMT_MAGIC || r.version != FP_MGMT_VERSION ||
		    r.len != (size_t)n - sizeof(r)) {
			rc = -EPROTO;
			break;
		}
		if (r.type == FP_MGMT_T_END) {
			rc = r.status > 0 ? -EPROTO : r.status;
			break;
		}
		if (r.type != FP_MGMT_T_REC || ++nrec > max_records(op)) {
			rc = -EPROTO; /* more records than the op can have */
			break;
		}
		if (each) {
			rc = each(arg, buf + sizeof(r), r.len);
			if (rc < 0)
				break;
		}
	}
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	/* A refusal is answered without waiting for the request; when the
	 * request lands just as the object closes, the kernel resets the
	 * connection and the answer is lost.  Who the object answers is no
	 * secret (its socket's owner, and root): say so. */
	if ((rc == -ECONNRESET || rc == -EPIPE) && nrec == 0 && refused_here(sa))
		rc = -EACCES;
	return rc;
}

/* Every live object of one kind: calls fn(name) for each control socket. */
static int each_object(enum fp_mgmt_kind kind, int (*fn)(void *arg, const char *name), void *arg)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct dirent *de;
	DIR *d;
	int rc = 0, n;

	n = snprintf(dir, sizeof(dir), "%s/" FP_MGMT_SUBDIR, fltport_dir());
	if (n < 0 || (size_t)n >= sizeof(dir))
		return -ENAMETOOLONG;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != (char)kind || de->d_name[1] != '.' || !de->d_name[2])
			continue;
		rc = fn(arg, de->d_name + 2);
		if (rc < 0)
			break;
	}
	closedir(d);
	return rc;
}

/* ---- listings ---- */

struct listing {
	enum fp_mgmt_kind kind;
	enum fp_mgmt_op op;
	const char *only; /* a name, or NULL */
	struct recs recs;
	size_t denied;
	size_t answered; /* objects that answered (0 or not) */
	int named_rc;    /* `only`: why it did not answer */
};

static int add_rec(void *arg, const void *rec, size_t len)
{
	return recs_add(arg, rec, len);
}

static int list_one(void *arg, const char *name)
{
	struct listing *l = arg;
	struct sockaddr_un sa;
	socklen_t salen;
	int rc;

	if (l->only && strcmp(l->only, name) != 0)
		return 0;
	if (fp_mgmt_addr(l->kind, name, &sa, &salen) < 0)
		return 0;
	rc = ask(&sa, salen, l->op, NULL, 0, add_rec, &l->recs);
	if (rc == 0)
		l->answered++;
	else if (l->only)
		l->named_rc = rc;
	if (rc == -EACCES)
		l->denied++;
	else if (rc == -ENOMEM)
		return rc;
	else if (rc < 0 && rc != -ENOENT)
		fp_debug("management: %s: %s", sa.sun_path, strerror(-rc));
	return 0;
}

static int list(enum fp_mgmt_kind kind, enum fp_mgmt_op op, const char *only, size_t size,
		void **out, size_t *count, size_t *denied)
{
	struct listing l = { .kind = kind, .op = op, .only = only, .recs = { .size = size } };
	int rc;

	if (!out || !count)
		return -EINVAL;
	rc = each_object(kind, list_one, &l);
	/* One object asked by name: say why there is nothing. */
	if (rc == 0 && only && !l.answered)
		rc = l.named_rc ? l.named_rc : -ENOENT;
	if (rc < 0) {
		free(l.recs.v);
		return rc;
	}
	term_all(kind, op, l.recs.v, l.recs.n);
	recs_out(&l.recs, out, count);
	if (!*out)
		return -ENOMEM;
	if (denied)
		*denied = l.denied;
	return 0;
}

static const char *strip(const char *name)
{
	while (name && *name == '\\')
		name++;
	return name;
}

FLTPORT_API int fltport_mgmt_filters(struct fltport_filter_info **out, size_t *count,
				     size_t *denied)
{
	return list(FP_MGMT_FILTER, FP_MGMT_INFO, NULL, sizeof(**out), (void **)out, count, denied);
}

FLTPORT_API int fltport_mgmt_instances(const char *filter, struct fltport_instance_info **out,
				       size_t *count, size_t *denied)
{
	return list(FP_MGMT_FILTER, FP_MGMT_INSTANCES, strip(filter), sizeof(**out), (void **)out,
		    count, denied);
}

FLTPORT_API int fltport_mgmt_ports(struct fltport_port_info **out, size_t *count, size_t *denied)
{
	return list(FP_MGMT_PORT, FP_MGMT_INFO, NULL, sizeof(**out), (void **)out, count, denied);
}

/* One named object: its records, or -ENOENT. */
static int ask_named(enum fp_mgmt_kind kind, const char *name, enum fp_mgmt_op op, const void *in,
		     size_t in_len, struct recs *recs)
{
	struct sockaddr_un sa;
	socklen_t salen;
	int rc;

	if (!name)
		return -EINVAL;
	rc = fp_mgmt_addr(kind, name, &sa, &salen);
	if (rc < 0)
		return rc;
	return ask(&sa, salen, op, in, in_len, recs ? add_rec : NULL, recs);
}

FLTPORT_API int fltport_mgmt_connections(const char *port, struct fltport_conn_info **out,
					 size_t *count)
{
	struct recs r = { .size = sizeof(**out) };
	int rc;

	if (!out || !count)
		return -EINVAL;
	rc = ask_named(FP_MGMT_PORT, port, FP_MGMT_CONNECTIONS, NULL, 0, &r);
	if (rc < 0) {
		free(r.v);
		return rc;
	}
	term_all(FP_MGMT_PORT, FP_MGMT_CONNECTIONS, r.v, r.n);
	recs_out(&r, (void **)out, count);
	return *out ? 0 : -ENOMEM;
}

static int get_one(enum fp_mgmt_kind kind, const char *name, void *out, size_t size)
{
	struct recs r = { .size = size };
	int rc;

	if (!out)
		return -EINVAL;
	rc = ask_named(kind, name, FP_MGMT_INFO, NULL, 0, &r);
	if (rc == 0 && r.n != 1)
		rc = -EPROTO;
	if (rc == 0) {
		term_all(kind, FP_MGMT_INFO, r.v, 1);
		memcpy(out, r.v, size);
	}
	free(r.v);
	return rc;
}

FLTPORT_API int fltport_mgmt_filter(const char *name, struct fltport_filter_info *out)
{
	return get_one(FP_MGMT_FILTER, name, out, sizeof(*out));
}

FLTPORT_API int fltport_mgmt_port(const char *name, struct fltport_port_info *out)
{
	return get_one(FP_MGMT_PORT, name, out, sizeof(*out));
}

static int copy_str(char *dst, size_t cap, const char *src)
{
	if (!src)
		return 0;
	if (strlen(src) >= cap)
		return -ENAMETOOLONG;
	strcpy(dst, src);
	return 0;
}

static int attach_req(const char *filter, const char *volume, const char *instance,
		      const char *altitude, unsigned flags, enum fp_mgmt_op op)
{
	struct fp_mgmt_attach *a;
	char *real;
	int rc;

	if (!filter || !volume)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	/* The filter resolves the path in its own mount namespace; resolve
	 * it here first so that a relative path means what the caller meant. */
	real = realpath(volume, NULL);
	rc = copy_str(a->volume, sizeof(a->volume), real ? real : volume);
	free(real);
	if (rc == 0)
		rc = copy_str(a->instance, sizeof(a->instance), instance);
	if (rc == 0)
		rc = copy_str(a->altitude, sizeof(a->altitude), altitude);
	a->flags = flags;
	if (rc == 0)
		rc = ask_named(FP_MGMT_FILTER, filter, op, a, sizeof(*a), NULL);
	free(a);
	return rc;
}

FLTPORT_API int fltport_mgmt_attach(const char *filter, const char *volume, const char *instance,
				    const char *altitude, unsigned flags)
{
	if (flags & ~(FLTPORT_ATTACH_MOUNT | FLTPORT_ATTACH_SUBMOUNTS))
		return -EINVAL;
	return attach_req(filter, volume, instance, altitude, flags, FP_MGMT_ATTACH);
}

FLTPORT_API int fltport_mgmt_detach(const char *filter, const char *volume, const char *instance)
{
	return attach_req(filter, volume, instance, NULL, 0, FP_MGMT_DETACH);
}

FLTPORT_API void fltport_mgmt_free(void *array)
{
	free(array);
}
