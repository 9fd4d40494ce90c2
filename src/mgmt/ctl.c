/*
 * The answering side of the management plane: one control thread per
 * process serves the control sockets of every registered object
 * (mgmt_int.h).
 */
#include "mgmt/mgmt_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/debug.h"
#include "core/names.h"

#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)
#define REQ_TIMEOUT_MS 500 /* a permitted peer must send its request within this */
#define CTL_BACKLOG 64     /* connections waiting for the control thread */
#define DRAIN_MAX 8        /* packets taken from a refused peer */
/* All of one answer's packets: a peer that reads slowly holds the control
 * thread no longer than this. */
#define ANSWER_BUDGET_MS 2000

struct fp_mgmt_out {
	int fd;
	uint16_t op, kind;
	uint32_t count;
	int err;          /* first send error */
	int64_t deadline; /* for every packet of the answer */
};

/* Send one packet by the deadline (the whole answer's, not each packet's).
 * 0, -ETIMEDOUT, or the send's errno. */
static int send_by(int fd, const struct msghdr *m, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int rc;

		if (sendmsg(fd, m, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		rc = poll(&p, 1, fp_poll_ms(deadline));
		if (rc == 0)
			return -ETIMEDOUT;
		if (rc < 0 && errno != EINTR)
			return -errno;
	}
}

/* A control thread and what it waits on.  A new one is made when the
 * first object registers after the last unregistered (that one is joined
 * by whoever unregistered last). */
struct ctl {
	int epfd, wakefd;
	bool quit;      /* under reg_lock */
	bool self_free; /* under reg_lock: told to quit from its own handler */
	pthread_t thread;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fp_mgmt_reg *regs;                            /* under reg_lock */
static struct ctl *cur;                                     /* under reg_lock; NULL: no thread */
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER; /* a registration's busy hit 0 */
static uint64_t next_id = 1;

int64_t fp_mgmt_realtime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int fp_mgmt_addr(enum fp_mgmt_kind kind, const char *name, struct sockaddr_un *sa, socklen_t *salen)
{
	int rc, n;

	/* Port-name rules for the name (and the directory), then the longer
	 * path under the control subdirectory. */
	rc = fp_port_addr(name, sa, salen);
	if (rc < 0)
		return rc;
	while (*name == '\\')
		name++;
	n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/" FP_MGMT_SUBDIR "/%c.%s",
		     fltport_dir(), (char)kind, name);
	if (n < 0 || (size_t)n >= SUN_PATH_SIZE)
		return -ENAMETOOLONG;
	*salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
	return 0;
}

int fp_mgmt_emit(struct fp_mgmt_out *out, const void *rec, size_t len)
{
	struct fp_mgmt_hdr h = { .magic = FP_MGMT_MAGIC,
				 .version = FP_MGMT_VERSION,
				 .type = FP_MGMT_T_REC,
				 .op = out->op,
				 .kind = out->kind,
				 .len = (uint32_t)len };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)rec, len } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };

	if (out->err)
		return out->err;
	out->err = send_by(out->fd, &m, out->deadline);
	if (out->err)
		return out->err;
	out->count++;
	return 0;
}

static void send_end(int fd, uint16_t op, uint16_t kind, int status, uint32_t count,
		     int64_t deadline)
{
	struct fp_mgmt_hdr h = { .magic = FP_MGMT_MAGIC,
				 .version = FP_MGMT_VERSION,
				 .type = FP_MGMT_T_END,
				 .op = op,
				 .kind = kind,
				 .status = status,
				 .count = count };
	struct iovec iov = { &h, sizeof(h) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	(void)send_by(fd, &m, deadline);
}

static void ctl_free(struct ctl *c);
static struct ctl *stop_if_idle(void);
static void join_ctl(struct ctl *done);

static struct fp_mgmt_reg *find_id(uint64_t id)
{
	for (struct fp_mgmt_reg *r = regs; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

/* Take what a refused peer sent, at most a few packets: one that keeps
 * sending cannot hold the control thread. */
static void drain(int fd, uint8_t *buf, size_t len)
{
	for (int i = 0; i < DRAIN_MAX && recv(fd, buf, len, MSG_DONTWAIT) > 0; i++)
		;
}

/* One request on an accepted connection.  reg_lock not held: r is kept
 * registered by its busy count. */
static void serve(struct fp_mgmt_reg *r, int fd)
{
	uint8_t buf[sizeof(struct fp_mgmt_hdr) + sizeof(struct fp_mgmt_attach) + 64];
	const struct timeval tv = { .tv_sec = 0, .tv_usec = REQ_TIMEOUT_MS * 1000 };
	struct fp_mgmt_out out = { .fd = fd, .kind = (uint16_t)r->kind };
	struct fp_mgmt_hdr h;
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	ssize_t n;
	int rc;

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0)
		return;
	if (cr.uid != 0 && cr.uid != geteuid()) {
		fp_debug("management: uid %u (pid %d) refused on %s", (unsigned)cr.uid, (int)cr.pid,
			 r->addr.sun_path);
		/* Never waited for: the answer goes out at once.  What the peer
		 * sent is taken first (closing with it unread would reset the
		 * connection and lose the answer); what it sends later finds
		 * the answer queued and the socket closed. */
		drain(fd, buf, sizeof(buf));
		send_end(fd, 0, (uint16_t)r->kind, -EACCES, 0, fp_now()); /* never waits */
		drain(fd, buf, sizeof(buf)); /* a request that came meanwhile (the asker
					      * copes if one is still late) */
		return;
	}
	do
		n = recv(fd, buf, sizeof(buf), 0);
	while (n < 0 && errno == EINTR);
	if (n < (ssize_t)sizeof(h))
		return;
	out.deadline = fp_deadline((int64_t)ANSWER_BUDGET_MS * 1000000);
	memcpy(&h, buf, sizeof(h));
	if (h.magic != FP_MGMT_MAGIC || h.type != FP_MGMT_T_REQ || h.len != (size_t)n - sizeof(h)) {
		send_end(fd, h.op, (uint16_t)r->kind, -EPROTO, 0, out.deadline);
		return;
	}
	if (h.version != FP_MGMT_VERSION) {
		send_end(fd, h.op, (uint16_t)r->kind, -EPROTONOSUPPORT, 0, out.deadline);
		return;
	}
	out.op = h.op;
	rc = r->fn(r->obj, (enum fp_mgmt_op)h.op, buf + sizeof(h), h.len, &out);
	if (out.err)
		return; /* the requester went away, or stopped reading */
	send_end(fd, h.op, (uint16_t)r->kind, rc, out.count, out.deadline);
}

/* A connection on a control socket.  The registry lock is held only to
 * find the registration and count it busy: handlers, peer I/O and the
 * filter's instance_setup callback run without it, so that nothing else
 * in the process (fork, creating or closing ports) waits behind a peer. */
static void on_listen(uint64_t id)
{
	struct fp_mgmt_reg *r;
	int fd, lfd;

	pthread_mutex_lock(&reg_lock);
	r = find_id(id);
	if (r)
		r->busy++;
	pthread_mutex_unlock(&reg_lock);
	if (!r)
		return;
	lfd = r->lfd; /* not closed while busy */
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0) {
		serve(r, fd);
		close(fd);
	} else if (errno == EMFILE || errno == ENFILE) {
		usleep(10000); /* out of fds: the peer waits for its timeout; do not spin */
	}
	pthread_mutex_lock(&reg_lock);
	if (--r->busy == 0 && r->leaving)
		pthread_cond_broadcast(&idle_cond);
	pthread_mutex_unlock(&reg_lock);
}

static void *ctl_main(void *arg)
{
	struct ctl *c = arg;

	for (;;) {
		struct epoll_event ev[8];
		int n = epoll_wait(c->epfd, ev, 8, -1);

		for (int i = 0; i < n; i++) {
			bool quit;

			pthread_mutex_lock(&reg_lock);
			quit = c->quit;
			pthread_mutex_unlock(&reg_lock);
			if (quit)
				break;
			if (ev[i].data.u64 == 0) {
				uint64_t v;

				(void)!read(c->wakefd, &v, sizeof(v));
				continue;
			}
			on_listen(ev[i].data.u64);
		}
		pthread_mutex_lock(&reg_lock);
		if (c->quit) {
			bool self_free = c->self_free;

			pthread_mutex_unlock(&reg_lock);
			if (self_free)
				ctl_free(c); /* detached: nobody joins us */
			break;
		}
		pthread_mutex_unlock(&reg_lock);
	}
	return NULL;
}

/* A control-socket directory of ours, like the port directory: root's or
 * ours, never another user's. */
static int ensure_subdir(char *path)
{
	struct stat st;

	if (mkdir(path, 0755) == 0)
		return chmod(path, 0755) == 0 ? 0 : -errno;
	if (errno != EEXIST)
		return -errno;
	if (lstat(path, &st) != 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return -EACCES;
	return 0;
}

static int bind_ctl(struct fp_mgmt_reg *r)
{
	char dir[SUN_PATH_SIZE];
	struct stat st;
	int dfd, rc;

	rc = snprintf(dir, sizeof(dir), "%s/" FP_MGMT_SUBDIR, fltport_dir());
	if (rc < 0 || (size_t)rc >= sizeof(dir))
		return -ENAMETOOLONG;
	if (mkdir(fltport_dir(), 0755) != 0 && errno != EEXIST)
		return -errno;
	rc = ensure_subdir(dir);
	if (rc < 0)
		return rc;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	/* Bounded: anyone who may read the directory may hold its lock.  A
	 * lock not had within the bound only loses the check-and-replace
	 * atomicity against another creator (bind() still refuses a name in
	 * use). */
	if (!fp_flock_bounded(dfd, FP_FLOCK_MS))
		fp_debug("management: %s stays locked by someone else: going on without it", dir);
	rc = bind(r->lfd, (struct sockaddr *)&r->addr, r->addrlen) == 0 ? 0 : -errno;
	if (rc == -EADDRINUSE) {
		rc = fp_socket_live(&r->addr, r->addrlen);
		if (rc == 1) {
			rc = -EADDRINUSE;
		} else if (rc == 0) {
			if (unlink(r->addr.sun_path) != 0 && errno != ENOENT)
				rc = -errno;
			else if (bind(r->lfd, (struct sockaddr *)&r->addr, r->addrlen) != 0)
				rc = -errno;
		}
	}
	/* Only its owner (and root) may connect: the kernel refuses anyone
	 * else at connect(), so another user can neither fill the backlog
	 * nor hold the control thread.  serve() checks the credentials too. */
	if (rc == 0 && (chmod(r->addr.sun_path, 0600) != 0 || stat(r->addr.sun_path, &st) != 0))
		rc = -errno;
	if (rc == 0) {
		r->dev = st.st_dev;
		r->ino = st.st_ino;
		if (listen(r->lfd, CTL_BACKLOG) != 0) {
			rc = -errno;
			unlink(r->addr.sun_path);
		}
	}
	close(dfd);
	return rc;
}

static void unlink_ctl(struct fp_mgmt_reg *r)
{
	struct stat st;

	if (stat(r->addr.sun_path, &st) == 0 && st.st_dev == r->dev && st.st_ino == r->ino)
		unlink(r->addr.sun_path);
}

static void reg_in_child(struct fp_forkreg *f)
{
	struct fp_mgmt_reg *r =
		(struct fp_mgmt_reg *)((char *)f - offsetof(struct fp_mgmt_reg, fork));

	fp_fork_kill_fd(r->lfd);
}

static void ctl_free(struct ctl *c)
{
	if (c->epfd >= 0)
		close(c->epfd);
	if (c->wakefd >= 0)
		close(c->wakefd);
	free(c);
}

/* Across fork(): the registry is consistent (held from prepare to
 * parent/child); the child has no control thread and none of the parent's
 * objects (fork.c made their sockets inert). */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void prepare(void)
{
	pthread_mutex_lock(&reg_lock);
}

static void parent(void)
{
	pthread_mutex_unlock(&reg_lock);
}

static void child(void)
{
	regs = NULL;
	cur = NULL;
	pthread_mutex_unlock(&reg_lock);
}

static void atfork_init(void)
{
	pthread_atfork(prepare, parent, child);
}

/* Start the control thread if it does not run.  reg_lock held. */
static int start_thread(void)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0 };
	struct ctl *c;
	int rc;

	if (cur)
		return 0;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	c->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->epfd < 0 || c->wakefd < 0 ||
	    epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->wakefd, &ev) != 0) {
		rc = -errno;
		ctl_free(c);
		return rc;
	}
	rc = -pthread_create(&c->thread, NULL, ctl_main, c);
	if (rc) {
		ctl_free(c);
		return rc;
	}
	cur = c;
	return 0;
}

int fp_mgmt_register(struct fp_mgmt_reg *r, enum fp_mgmt_kind kind, const char *name, fp_mgmt_fn fn,
		     void *obj)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct ctl *done;
	int rc;

	memset(r, 0, sizeof(*r));
	r->lfd = -1;
	rc = fp_mgmt_addr(kind, name, &r->addr, &r->addrlen);
	if (rc < 0)
		return rc;
	while (*name == '\\')
		name++;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->kind = kind;
	r->fn = fn;
	r->obj = obj;
	r->started_ns = fp_mgmt_realtime();
	r->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (r->lfd < 0)
		return -errno;
	rc = bind_ctl(r);
	if (rc < 0)
		goto fail;
	pthread_once(&atfork_once, atfork_init);
	/* Before reg_lock: fork.c's lock is never taken under it (fork order). */
	fp_fork_register(&r->fork, reg_in_child);
	pthread_mutex_lock(&reg_lock);
	rc = start_thread();
	if (rc == 0) {
		r->id = next_id++;
		ev.data.u64 = r->id;
		if (epoll_ctl(cur->epfd, EPOLL_CTL_ADD, r->lfd, &ev) != 0)
			rc = -errno;
	}
	if (rc == 0) {
		r->next = regs;
		regs = r;
	}
	done = rc < 0 ? stop_if_idle() : NULL;
	pthread_mutex_unlock(&reg_lock);
	if (rc < 0) {
		join_ctl(done);
		fp_fork_unregister(&r->fork);
		unlink_ctl(r);
		goto fail;
	}
	return 0;
fail:
	close(r->lfd);
	r->lfd = -1;
	return rc;
}

/* No registration left: the control thread is told to stop (reg_lock
 * held).  Returns it to be joined, or NULL when there is none or when the
 * caller is the control thread itself (a handler: it is detached and
 * frees itself). */
static struct ctl *stop_if_idle(void)
{
	struct ctl *done = cur;
	uint64_t one = 1;

	if (regs || !done)
		return NULL;
	cur = NULL;
	done->quit = true;
	(void)!write(done->wakefd, &one, sizeof(one));
	if (pthread_equal(pthread_self(), done->thread)) {
		done->self_free = true;
		pthread_detach(done->thread);
		return NULL;
	}
	return done;
}

static void join_ctl(struct ctl *done)
{
	if (done) {
		pthread_join(done->thread, NULL);
		ctl_free(done);
	}
}

void fp_mgmt_unregister(struct fp_mgmt_reg *r)
{
	struct fp_mgmt_reg **pp;
	struct ctl *done;
	bool own;

	if (!r || r->lfd < 0)
		return;
	if (fp_forked(&r->fork))
		return; /* the parent's: its fd is inert here, the name is not ours */
	pthread_mutex_lock(&reg_lock);
	for (pp = &regs; *pp && *pp != r; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = r->next;
	if (cur)
		(void)epoll_ctl(cur->epfd, EPOLL_CTL_DEL, r->lfd, NULL);
	/* A handler of this object may be running: wait for it, unless it is
	 * the caller (a handler that destroys its own object: forbidden by
	 * filter.h, and not waited for, which would never end). */
	own = cur && pthread_equal(pthread_self(), cur->thread);
	r->leaving = true;
	while (r->busy > 0 && !own)
		pthread_cond_wait(&idle_cond, &reg_lock);
	done = stop_if_idle();
	pthread_mutex_unlock(&reg_lock);
	fp_fork_unregister(&r->fork);
	unlink_ctl(r);
	close(r->lfd);
	r->lfd = -1;
	join_ctl(done);
}
