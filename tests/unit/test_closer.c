/*
 * Closing received fds that can block (fp_close_received, src/transport/
 * closer.c): a FIFO's last close waits while someone holds the pipe's lock,
 * so it is handed to a closer thread; the caller never waits.  And a
 * process that forks after the closer thread started: the child's closes
 * must not wait for the parent's thread, which does not exist there (a
 * review found the child hung in pthread_cond_signal on its second close).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fltport/port.h"
#include "testutil.h"
#include "transport/transport.h"

struct held {
	int p[2], sv[2];
	pthread_t t;
	_Atomic int tid;
};

static void *splice_main(void *arg)
{
	struct held *h = arg;

	atomic_store(&h->tid, (int)syscall(SYS_gettid));
	(void)splice(h->sv[0], NULL, h->p[1], NULL, 4096, 0);
	return NULL;
}

static bool in_splice(void *arg)
{
	struct held *h = arg;
	int tid = atomic_load(&h->tid);

	return tid > 0 && tu_task_syscall(tid) == SYS_splice;
}

/* Whether this process's closer thread waits for work (in a futex). */
static bool closer_waits(void *arg)
{
	int tid = tu_thread_named("fltport-closer");

	(void)arg;
	return tid > 0 && tu_task_syscall(tid) == SYS_futex;
}

/* Whether this process's (first) closer thread is in close(). */
static bool closer_in_close(void *arg)
{
	int tid = tu_thread_named("fltport-closer");

	(void)arg;
	return tid > 0 && tu_task_syscall(tid) == SYS_close;
}

/* A pipe whose lock a thread holds (splice from an empty socket), and a
 * read end of it that is the last one once *last is closed. */
static int locked_pipe(struct held *h)
{
	int last;

	cr_assert_eq(pipe2(h->p, O_CLOEXEC), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, h->sv), 0);
	atomic_store(&h->tid, 0);
	cr_assert_eq(pthread_create(&h->t, NULL, splice_main, h), 0);
	cr_assert(tu_wait_until(in_splice, h, 10000), "the splice never started");
	last = h->p[0];
	return last;
}

static void release(struct held *h)
{
	cr_assert_eq(write(h->sv[1], "x", 1), 1);
	pthread_join(h->t, NULL);
	close(h->p[1]);
	close(h->sv[0]);
	close(h->sv[1]);
}

Test(closer, a_locked_pipe_is_closed_without_waiting, .timeout = 30)
{
	struct held h;
	int fd = locked_pipe(&h);

	alarm(10); /* a close in place would sleep until release() */
	fp_close_received(fd);
	alarm(0);
	release(&h);
}

Test(closer, a_child_forked_after_the_thread_started_can_close, .timeout = 30)
{
	int p[2], status;
	pid_t pid;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	fp_close_received(p[0]); /* starts the closer thread */
	close(p[1]);
	cr_assert(tu_wait_until(closer_waits, NULL, 10000), "no closer thread waiting");
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		alarm(5);
		/* Each close with the child's closer thread back in its wait:
		 * the state the inherited condition variable hung in. */
		for (int i = 0; i < 10; i++) {
			int q[2];

			if (pipe2(q, O_CLOEXEC) != 0)
				_exit(2);
			close(q[1]);
			fp_close_received(q[0]);
			if (!tu_wait_until(closer_waits, NULL, 4000))
				_exit(3);
		}
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the child hung or failed (status 0x%x)", status);
}

/* Whether the read end of the pipe whose write end is *arg is gone. */
static bool reader_gone(void *arg)
{
	struct pollfd p = { .fd = *(int *)arg, .events = POLLOUT };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

/* Whether the peer of the socket *arg is closed (end of stream). */
static bool peer_gone(void *arg)
{
	char c;

	return recv(*(int *)arg, &c, 1, MSG_DONTWAIT) == 0;
}

/* One close that waits on its peer holds one closer thread, not the fds
 * queued after it: with a single closer thread, the second pipe stayed open
 * until the first one's lock was let go. */
Test(closer, a_waiting_close_holds_up_no_other_fd, .timeout = 30)
{
	struct held h;
	int fd = locked_pipe(&h), q[2];

	fp_close_received(fd);
	cr_assert(tu_wait_until(closer_in_close, NULL, 10000), "no closer thread took the fd");
	cr_assert_eq(pipe2(q, O_CLOEXEC), 0);
	fp_close_received(q[0]);
	cr_assert(tu_wait_until(reader_gone, &q[1], 10000),
		  "the second pipe waited behind the first one's close");
	close(q[1]);
	release(&h);
}

/* The public form, for a callback's fds: every kind closed, none waited on;
 * a memfd (shmem) at once. */
Test(closer, fltport_close_fds_closes_every_kind, .timeout = 30)
{
	struct held h;
	int fds[4], q[2], sv[2];

	fds[0] = locked_pipe(&h);
	cr_assert_eq(pipe2(q, O_CLOEXEC), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fds[1] = q[0];
	fds[2] = sv[0];
	fds[3] = memfd_create("closer-test", MFD_CLOEXEC); /* shmem: nothing to wait on */
	cr_assert_geq(fds[3], 0);
	alarm(10); /* a close in place of fds[0] would sleep until release() */
	fltport_close_fds(fds, 4);
	fltport_close_fds(NULL, 0);
	alarm(0);
	cr_assert_eq(fcntl(fds[3], F_GETFD), -1, "a memfd is closed at once");
	cr_assert(tu_wait_until(reader_gone, &q[1], 10000), "the pipe was not closed");
	cr_assert(tu_wait_until(peer_gone, &sv[1], 10000), "the socket was not closed");
	close(q[1]);
	close(sv[1]);
	release(&h);
}

/* This process's closer threads. */
static int closers(void)
{
	char path[300], comm[32];
	int n = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (f && fgets(comm, sizeof(comm), f) && strcmp(comm, "fltport-closer\n") == 0)
			n++;
		if (f)
			fclose(f);
	}
	closedir(d);
	return n;
}

/* Ordinary traffic (a pipe closed per large message, back to back) runs on
 * a closer or two: a thread starts only when an fd has waited for one (the
 * first pool started one per fd that found no thread free, 54 of 64 for
 * 2,000 closes in a row, as a review measured). */
Test(closer, closes_back_to_back_start_few_threads, .timeout = 60)
{
	int last[2];

	for (int i = 0; i < 2000; i++) {
		int q[2];

		cr_assert_eq(pipe2(q, O_CLOEXEC), 0);
		close(q[1]);
		fp_close_received(q[0]);
	}
	cr_assert_eq(pipe2(last, O_CLOEXEC), 0);
	fp_close_received(last[0]);
	cr_assert(tu_wait_until(reader_gone, &last[1], 10000), "the closes never finished");
	close(last[1]);
	cr_assert_leq(closers(), 16, "%d closer threads for closes that never wait", closers());
}

/*
 * A FUSE file whose daemon stops answering.  Deciding how to close it must
 * not ask the daemon: fstat() sends it GETATTR (attributes never cached
 * here) and fstatfs() STATFS, and a daemon that never answers kept the
 * caller asleep (the closer asked with fstat() until 2026-11-29).  Its
 * close sends FLUSH, which waits too: that is the closer thread's to wait.
 * The daemon below answers INIT, LOOKUP, GETATTR and OPEN until told to
 * stop; the mount is in this test's own mount namespace.
 */
struct fusefs {
	int dev;
	_Atomic bool stalled;
	_Atomic int asked; /* requests held while stalled (at most 8 kept) */
	uint64_t unique[8];
	uint32_t opcode[8];
};

static void fuse_reply(int dev, uint64_t unique, int error, const void *body, size_t n)
{
	char buf[512];
	struct fuse_out_header oh = { .len = (uint32_t)(sizeof(oh) + n),
				      .error = error,
				      .unique = unique };

	memcpy(buf, &oh, sizeof(oh));
	if (n)
		memcpy(buf + sizeof(oh), body, n);
	(void)write(dev, buf, sizeof(oh) + n);
}

static void fuse_attr_of(uint64_t node, struct fuse_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = node;
	a->mode = node == FUSE_ROOT_ID ? (S_IFDIR | 0755) : (S_IFREG | 0644);
	a->nlink = 1;
}

static void fuse_main(struct fusefs *fs)
{
	static char buf[1 << 17]; /* the kernel wants room for a whole write */

	for (;;) {
		struct fuse_in_header *ih = (struct fuse_in_header *)buf;
		struct pollfd p = { .fd = fs->dev, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 15000) == 0 && atomic_load(&fs->stalled)) {
			/* A failing test left a request of the test process
			 * waiting: answer it, or that process could not end
			 * (a FUSE request already read waits uninterruptibly). */
			for (int k = 0; k < atomic_load(&fs->asked) && k < 8; k++)
				fuse_reply(fs->dev, fs->unique[k], -EIO, NULL, 0);
			atomic_store(&fs->stalled, false);
			continue;
		}
		n = read(fs->dev, buf, sizeof(buf));
		if (n < (ssize_t)sizeof(*ih))
			_exit(0); /* the connection ended */
		if (atomic_load(&fs->stalled)) {
			int k = atomic_load(&fs->asked);

			if (k < 8) {
				fs->unique[k] = ih->unique;
				fs->opcode[k] = ih->opcode;
			}
			atomic_store(&fs->asked, k + 1);
			continue;
		}
		switch (ih->opcode) {
		case FUSE_INIT: {
			struct fuse_init_out o = { .major = FUSE_KERNEL_VERSION,
						   .minor = FUSE_KERNEL_MINOR_VERSION,
						   .max_write = 4096 };

			fuse_reply(fs->dev, ih->unique, 0, &o, sizeof(o));
			break;
		}
		case FUSE_LOOKUP: {
			struct fuse_entry_out o = { .nodeid = 2, .generation = 1 };

			fuse_attr_of(2, &o.attr);
			fuse_reply(fs->dev, ih->unique, 0, &o, sizeof(o));
			break;
		}
		case FUSE_GETATTR: {
			struct fuse_attr_out o = { 0 };

			fuse_attr_of(ih->nodeid, &o.attr);
			fuse_reply(fs->dev, ih->unique, 0, &o, sizeof(o));
			break;
		}
		case FUSE_OPEN: {
			struct fuse_open_out o = { .fh = 1 };

			fuse_reply(fs->dev, ih->unique, 0, &o, sizeof(o));
			break;
		}
		case FUSE_FORGET:
		case FUSE_BATCH_FORGET:
			break; /* no reply */
		default:
			fuse_reply(fs->dev, ih->unique, -ENOSYS, NULL, 0);
		}
	}
}

static bool fuse_asked(void *arg)
{
	return atomic_load(&((struct fusefs *)arg)->asked) > 0;
}

Test(closer, a_fuse_file_is_closed_without_asking_its_daemon, .timeout = 60)
{
	const char *dir;
	char mnt[300], path[320], opts[128];
	struct fusefs *fs;
	pid_t daemon;
	int fd, status;

	if (geteuid() != 0)
		cr_skip_test("needs root: a FUSE mount in a mount namespace of its own");
	if (access("/dev/fuse", R_OK | W_OK) != 0)
		cr_skip_test("no /dev/fuse: %s", strerror(errno));
	dir = tu_temp_dir("fltport-fuse"); /* before the namespace: its cleanup stays out */
	snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
	cr_assert_eq(mkdir(mnt, 0755), 0);
	cr_assert_eq(unshare(CLONE_NEWNS), 0, "unshare: %s", strerror(errno));
	cr_assert_eq(mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL), 0);
	/* The daemon is a process of its own, killed with this one: a daemon
	 * thread of the test process could never answer once that process is
	 * dying, and a close waiting on it would sleep uninterruptibly for
	 * good (as the fstat() version of the closer did). */
	fs = mmap(NULL, sizeof(*fs), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(fs, MAP_FAILED);
	atomic_init(&fs->stalled, false);
	atomic_init(&fs->asked, 0);
	fs->dev = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	cr_assert_geq(fs->dev, 0, "/dev/fuse: %s", strerror(errno));
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,group_id=0", fs->dev);
	if (mount("fltport-test", mnt, "fuse", MS_NOSUID | MS_NODEV, opts) != 0)
		cr_skip_test("mount -t fuse: %s", strerror(errno));
	daemon = fork(); /* not into *fs: the child's 0 would land there too */
	cr_assert_geq(daemon, 0);
	if (daemon == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		fuse_main(fs);
	}
	snprintf(path, sizeof(path), "%s/f", mnt);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open on the FUSE mount: %s", strerror(errno));

	atomic_store(&fs->stalled, true);
	alarm(10); /* an fstat() or fstatfs() would wait for an answer that never comes */
	fp_close_received(fd);
	alarm(0);
	/* The closer's close sent FLUSH, which waits for the daemon; nothing
	 * else was asked (no GETATTR, no STATFS). */
	cr_assert(tu_wait_until(closer_in_close, NULL, 10000), "no closer thread took the fd");
	cr_assert(tu_wait_until(fuse_asked, fs, 10000), "the close sent nothing");
	cr_assert_eq(atomic_load(&fs->asked), 1, "%d requests (first opcode %u)",
		     atomic_load(&fs->asked), fs->opcode[0]);
	cr_assert_eq(fs->opcode[0], FUSE_FLUSH);
	fuse_reply(fs->dev, fs->unique[0], 0, NULL, 0); /* the closer's close returns */
	cr_assert_eq(umount2(mnt, MNT_DETACH), 0);
	kill(daemon, SIGKILL);
	cr_assert_eq(waitpid(daemon, &status, 0), daemon);
	close(fs->dev); /* the last /dev/fuse fd: the connection ends */
}
