/*
 * Process handles (OpenProcess and what is asked of them) on pidfds: a
 * handle names one process for its lifetime, whatever pid reuse does, as a
 * Windows process handle does.  A service typically opens the process a
 * filter's message names, asks its image name and closes it.
 *
 * Waits: a process handle is signalled once the process has ended (its
 * pidfd is readable).  A thread waiting on one (win32.c) registers the pidfd
 * with one watcher thread, whose epoll set wakes every waiter when any of
 * them ends; the waiters look again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compat/compat.h"
#include "compat/wfmt.h"
#include "psapi.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* PIDFD_GET_INFO (6.13+) with PIDFD_INFO_EXIT (6.15+): the exit status of a
 * process that is not our child.  Layout: the kernel ABI. */
struct fpw_pidfd_info {
	uint64_t mask;
	uint64_t cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t exit_code;
};
#define FPW_PIDFD_GET_INFO _IOWR(0xFF, 11, struct fpw_pidfd_info)
#define FPW_PIDFD_INFO_EXIT 0x8u

struct fpw_process {
	struct fpw_obj obj;
	int pidfd;
	pid_t pid;
	unsigned long long start; /* its start time (/proc stat field 22), or 0 */
	unsigned watched;         /* watch_gen when it entered the watcher's set, or 0 */
};

static void unwatch(struct fpw_process *p);

static void process_destroy(struct fpw_obj *o)
{
	struct fpw_process *p = (struct fpw_process *)o;

	unwatch(p); /* (a forked child may hold the pidfd open: not left to close) */
	close(p->pidfd);
	free(p);
}

/* Fields 22 (start time) and 52 (exit code: the wait status of a zombie)
 * of /proc/PID/stat.  False if unreadable. */
static bool stat_fields(pid_t pid, unsigned long long *start, int *code)
{
	char path[64], buf[2048], *f;
	ssize_t n;
	int fd, k;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	f = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
	if (!f)
		return false;
	/* f + 2 is field 3. */
	for (f += 2, k = 3; *f && k < 52; k++) {
		if (k == 22)
			*start = strtoull(f, NULL, 10);
		f = strchr(f, ' ');
		if (!f)
			return false;
		f++;
	}
	if (k != 52)
		return false;
	*code = atoi(f);
	return true;
}

static bool ended(const struct fpw_process *p)
{
	struct pollfd pf = { .fd = p->pidfd, .events = POLLIN };

	return poll(&pf, 1, 0) == 1;
}

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

FLTPORT_WINAPI HANDLE OpenProcess(DWORD dwDesiredAccess, BOOL bInheritHandle, DWORD dwProcessId)
{
	struct fpw_process *p;
	int fd, code;

	if (dwProcessId == 0 || dwProcessId > (DWORD)INT_MAX) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return NULL;
	}
	fd = pidfd_open_((pid_t)dwProcessId);
	if (fd < 0) {
		/* No such process: Windows says the parameter is wrong.  No
		 * pidfd_open (Linux before 5.3): no process handles. */
		SetLastError(errno == ESRCH || errno == EINVAL ? ERROR_INVALID_PARAMETER
			     : errno == ENOSYS                 ? ERROR_NOT_SUPPORTED
							       : fpw_errno_to_win32(errno));
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		close(fd);
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return NULL;
	}
	fpw_obj_init(&p->obj, FPW_PROCESS, NULL, process_destroy);
	p->pidfd = fd;
	p->pid = (pid_t)dwProcessId;
	/* Its start time tells its zombie from a later process of the same
	 * pid (exit_code()); read while the pidfd says it runs, else unknown.
	 * (The pidfd is close-on-exec already: pidfd_open(2) sets it.) */
	if (!stat_fields(p->pid, &p->start, &code) || ended(p))
		p->start = 0;
	return fpw_handle_new(&p->obj);
}

static bool is_self(HANDLE h)
{
	return h == GetCurrentProcess();
}

/* The process behind h with a reference, or NULL (ERROR_INVALID_HANDLE). */
static struct fpw_process *get(HANDLE h)
{
	return (struct fpw_process *)fpw_handle_get(h, FPW_PROCESS);
}

/* readlink() of /proc/PID/exe, or of any thread's when the main thread
 * has ended (its link goes with it) while others run.  -errno on failure. */
static ssize_t read_exe(pid_t pid, char *buf, size_t cap)
{
	char link[64];
	ssize_t n;
	DIR *d;

	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	n = readlink(link, buf, cap);
	if (n >= 0 || errno != ENOENT)
		return n >= 0 ? n : -errno;
	snprintf(link, sizeof(link), "/proc/%d/task", (int)pid);
	d = opendir(link);
	if (!d)
		return -ENOENT;
	n = -ENOENT;
	for (struct dirent *e; n < 0 && (e = readdir(d)) != NULL;) {
		if (e->d_name[0] == '.' || strlen(e->d_name) > 12)
			continue;
		snprintf(link, sizeof(link), "/proc/%d/task/%s/exe", (int)pid, e->d_name);
		n = readlink(link, buf, cap);
		if (n < 0)
			n = -errno;
	}
	closedir(d);
	return n;
}

/* The image path of h's process in buf (UTF-8, cap bytes: PATH_MAX + 1
 * leaves room for any path readlink() gives); 0 or a Win32 error. */
static DWORD image_path(HANDLE h, char *buf, size_t cap)
{
	struct fpw_process *p = NULL;
	ssize_t n;

	if (is_self(h)) {
		n = readlink("/proc/self/exe", buf, cap);
		if (n < 0)
			n = -errno;
	} else {
		p = get(h);
		if (!p)
			return ERROR_INVALID_HANDLE;
		n = read_exe(p->pid, buf, cap);
		/* The pid may have been reused once the process was gone: a
		 * name read after the end is not trusted (Windows keeps the
		 * name of an ended process while a handle is open; Linux does
		 * not). */
		if (ended(p))
			n = n == -EACCES ? n : -ESRCH;
		fpw_obj_put(&p->obj);
	}
	if (n == -EACCES)
		return ERROR_ACCESS_DENIED;
	if (n < 0)
		return ERROR_GEN_FAILURE;
	if ((size_t)n >= cap)
		return ERROR_FILENAME_EXCED_RANGE;
	buf[n] = '\0';
	return 0;
}

/* Copy a UTF-8 path out as A or W; *size in and out as
 * QueryFullProcessImageName has it. */
static BOOL give_a(const char *path, LPSTR out, PDWORD size)
{
	size_t len = strlen(path);

	if (!out || len + 1 > *size) {
		SetLastError(ERROR_INSUFFICIENT_BUFFER);
		return FALSE;
	}
	memcpy(out, path, len + 1);
	*size = (DWORD)len;
	return TRUE;
}

static BOOL give_w(const char *path, LPWSTR out, PDWORD size)
{
	ssize_t need = fpw_utf8_to_wide(path, strlen(path), NULL, 0, false);

	if (!out || need < 0 || (size_t)need + 1 > *size) {
		SetLastError(ERROR_INSUFFICIENT_BUFFER);
		return FALSE;
	}
	fpw_utf8_to_wide(path, strlen(path), out, (size_t)need, false);
	out[need] = L'\0';
	*size = (DWORD)need;
	return TRUE;
}

/* QueryFullProcessImageName (A or W, `wide`). */
static BOOL query_name(HANDLE h, DWORD flags, void *out, PDWORD size, bool wide)
{
	char path[PATH_MAX + 1];
	DWORD err = 0;

	if (!size || (flags & ~(DWORD)PROCESS_NAME_NATIVE))
		err = ERROR_INVALID_PARAMETER;
	else
		err = image_path(h, path, sizeof(path));
	if (err) {
		SetLastError(err);
		return FALSE;
	}
	return wide ? give_w(path, out, size) : give_a(path, out, size);
}

FLTPORT_WINAPI BOOL QueryFullProcessImageNameA(HANDLE hProcess, DWORD dwFlags, LPSTR lpExeName,
					       PDWORD lpdwSize)
{
	return query_name(hProcess, dwFlags, lpExeName, lpdwSize, false);
}

FLTPORT_WINAPI BOOL QueryFullProcessImageNameW(HANDLE hProcess, DWORD dwFlags, LPWSTR lpExeName,
					       PDWORD lpdwSize)
{
	return query_name(hProcess, dwFlags, lpExeName, lpdwSize, true);
}

/* GetProcessImageFileName: characters copied, or 0. */
static DWORD image_name(HANDLE h, void *out, DWORD n, bool wide)
{
	DWORD size = n;

	return query_name(h, 0, out, &size, wide) ? size : 0;
}

FLTPORT_WINAPI DWORD GetProcessImageFileNameA(HANDLE hProcess, LPSTR lpImageFileName, DWORD nSize)
{
	return image_name(hProcess, lpImageFileName, nSize, false);
}

FLTPORT_WINAPI DWORD GetProcessImageFileNameW(HANDLE hProcess, LPWSTR lpImageFileName, DWORD nSize)
{
	return image_name(hProcess, lpImageFileName, nSize, true);
}

FLTPORT_WINAPI DWORD GetProcessId(HANDLE Process)
{
	struct fpw_process *p;
	DWORD pid;

	if (is_self(Process))
		return (DWORD)getpid();
	p = get(Process);
	if (!p)
		return 0;
	pid = (DWORD)p->pid;
	fpw_obj_put(&p->obj);
	return pid;
}

static DWORD code_of(int st)
{
	return WIFEXITED(st) ? (DWORD)WEXITSTATUS(st) : 128u + (DWORD)WTERMSIG(st);
}

/* The exit code of an ended process: its exit status, or 128 + the signal
 * that ended it.  From waitid() when it is our child (WNOWAIT: reaping is
 * left to the program), from /proc while it is a zombie (its start time
 * telling it from a later process of the same pid), from PIDFD_GET_INFO
 * (6.15+) once reaped. */
static bool exit_code(const struct fpw_process *p, DWORD *code)
{
	struct fpw_pidfd_info info;
	unsigned long long start = 0;
	siginfo_t si;
	int st;

	memset(&si, 0, sizeof(si));
	if (waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	    si.si_pid != 0) {
		*code = si.si_code == CLD_EXITED ? (DWORD)si.si_status : 128u + (DWORD)si.si_status;
		return true;
	}
	if (p->start && stat_fields(p->pid, &start, &st) && start == p->start) {
		*code = code_of(st);
		return true;
	}
	memset(&info, 0, sizeof(info));
	info.mask = FPW_PIDFD_INFO_EXIT;
	if (ioctl(p->pidfd, FPW_PIDFD_GET_INFO, &info) == 0 && (info.mask & FPW_PIDFD_INFO_EXIT)) {
		*code = code_of(info.exit_code);
		return true;
	}
	return false;
}

FLTPORT_WINAPI BOOL GetExitCodeProcess(HANDLE hProcess, LPDWORD lpExitCode)
{
	struct fpw_process *p;
	bool ok = true;

	if (!lpExitCode) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	if (is_self(hProcess)) {
		*lpExitCode = STILL_ACTIVE;
		return TRUE;
	}
	p = get(hProcess);
	if (!p)
		return FALSE;
	if (!ended(p))
		*lpExitCode = STILL_ACTIVE;
	else
		ok = exit_code(p, lpExitCode);
	fpw_obj_put(&p->obj);
	if (!ok)
		SetLastError(ERROR_NOT_SUPPORTED); /* ended; its status is not ours to know */
	return ok;
}

FLTPORT_WINAPI BOOL TerminateProcess(HANDLE hProcess, UINT uExitCode)
{
	struct fpw_process *p;
	int rc;

	if (is_self(hProcess))
		_exit((int)(uExitCode & 0xFF));
	p = get(hProcess);
	if (!p)
		return FALSE;
	/* An ended process cannot be terminated: Windows says
	 * ERROR_ACCESS_DENIED while a handle keeps it. */
	if (ended(p)) {
		rc = -1;
		errno = EPERM;
	} else {
		rc = (int)syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
	}
	if (rc != 0)
		SetLastError(errno == EPERM || errno == ESRCH ? ERROR_ACCESS_DENIED
							      : fpw_errno_to_win32(errno));
	fpw_obj_put(&p->obj);
	return rc == 0;
}

/* ---- waits (win32.c) ---- */

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static int watch_ep = -1;
static unsigned watch_gen = 1; /* a new set after fork: objects enter it anew */

/* The watcher: any pidfd readable wakes every waiter.  Each is registered
 * one-shot: it fires once, at its process's end. */
static void *watcher(void *arg)
{
	int ep = (int)(intptr_t)arg;

	for (;;) {
		struct epoll_event ev[16];
		int n = epoll_wait(ep, ev, 16, -1);

		if (n < 0 && errno != EINTR) {
			/* (Not expected: the set is ours.)  Waiters must
			 * not hang: wake them now and then. */
			usleep(10000);
			n = 1;
		}
		if (n > 0) {
			pthread_mutex_lock(&fpw_wait_lock);
			fpw_wait_broadcast();
			pthread_mutex_unlock(&fpw_wait_lock);
		}
	}
	return NULL; /* (not reached) */
}

bool fpw_process_signalled(struct fpw_obj *o)
{
	return ended((struct fpw_process *)o);
}

static void watch_atfork(void);

/* A child forked without exec has no watcher (and shares the parent's
 * epoll set, which it must not change): it starts its own. */
static void watch_fork_child(void)
{
	if (watch_ep >= 0)
		close(watch_ep);
	watch_ep = -1;
	watch_gen++;
	pthread_mutex_init(&watch_lock, NULL);
}

bool fpw_process_watch(struct fpw_obj *o)
{
	static pthread_once_t atfork = PTHREAD_ONCE_INIT;

	struct fpw_process *p = (struct fpw_process *)o;
	bool ok = true;

	pthread_once(&atfork, watch_atfork);
	pthread_mutex_lock(&watch_lock);
	if (watch_ep < 0) {
		sigset_t all, old;
		pthread_t t;
		int ep = epoll_create1(EPOLL_CLOEXEC);

		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		if (ep >= 0 && pthread_create(&t, NULL, watcher, (void *)(intptr_t)ep) == 0) {
			pthread_detach(t);
			watch_ep = ep;
		} else if (ep >= 0) {
			close(ep);
		}
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	if (watch_ep < 0) {
		ok = false;
	} else if (p->watched != watch_gen) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.fd = p->pidfd };

		ok = epoll_ctl(watch_ep, EPOLL_CTL_ADD, p->pidfd, &ev) == 0;
		if (ok)
			p->watched = watch_gen;
	}
	pthread_mutex_unlock(&watch_lock);
	return ok;
}

static void unwatch(struct fpw_process *p)
{
	pthread_mutex_lock(&watch_lock);
	if (p->watched == watch_gen && watch_ep >= 0)
		(void)epoll_ctl(watch_ep, EPOLL_CTL_DEL, p->pidfd, NULL);
	p->watched = 0;
	pthread_mutex_unlock(&watch_lock);
}

static void watch_atfork(void)
{
	pthread_atfork(NULL, NULL, watch_fork_child);
}
