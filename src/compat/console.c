/*
 * Console control handlers (SetConsoleCtrlHandler) on Linux signals.
 *
 * A Windows console program stops cleanly when its handler runs on Ctrl+C
 * (typically: cancel the pending FilterGetMessage calls, close the port).
 * Here the signals a Linux terminal or service manager sends stand for the
 * console's events: SIGINT for CTRL_C_EVENT, SIGHUP for CTRL_CLOSE_EVENT,
 * SIGTERM for CTRL_SHUTDOWN_EVENT.  Once a handler is registered, the
 * library catches those three; the signal handler only writes the event to
 * a pipe, and a dispatcher thread runs, for each event, a new thread that
 * calls the handlers, the last registered first, until one returns TRUE —
 * as Windows runs them on a thread it creates.  When none returns TRUE,
 * the default action follows: the signal's own (the process ends by it, as
 * it would without handlers).  After CTRL_CLOSE_EVENT and
 * CTRL_SHUTDOWN_EVENT the process ends by its signal whatever the handlers
 * returned, as Windows ends it when they return — or when they have not
 * returned after Windows' time-outs, 5 s and 20 s.
 *
 * SetConsoleCtrlHandler(NULL, TRUE) ignores Ctrl+C (SIGINT ignored, which
 * children inherit, as on Windows); (NULL, FALSE) restores it.  A SIGINT
 * ignored when the program started stays ignored (the inherited flag).
 * Dispositions the program sets itself are left alone (see apply()); a
 * child forked without exec starts with no handlers.
 *
 * While a service's control dispatcher runs (service.c), the three signals
 * are its controls instead: fpw_console_route().
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compat/compat.h"

static const struct {
	int sig;
	DWORD event;
} ctrl_sigs[] = {
	{ SIGINT, CTRL_C_EVENT },
	{ SIGHUP, CTRL_CLOSE_EVENT },
	{ SIGTERM, CTRL_SHUTDOWN_EVENT },
};
#define NSIGS (sizeof(ctrl_sigs) / sizeof(ctrl_sigs[0]))

static pthread_mutex_t ctrl_lock = PTHREAD_MUTEX_INITIALIZER;
/* Under ctrl_lock: */
static PHANDLER_ROUTINE *handlers; /* in registration order */
static size_t nhandlers, cap_handlers;
static bool ignore_ctrl_c;
static bool ctrl_c_set; /* SetConsoleCtrlHandler(NULL, ...) was called */
static bool initialized;
static struct sigaction saved[NSIGS]; /* each signal's disposition before us */
enum disp { D_SAVED, D_CATCH, D_IGNORE, D_DEFAULT };
static enum disp installed[NSIGS];         /* what we set last (D_SAVED: nothing) */
static bool started;                       /* the pipe and the dispatcher exist */
static int pipe_rd = -1;                   /* the dispatcher's; closed in a forked child */
static sigset_t base_mask;                 /* the mask handlers run with */
static volatile sig_atomic_t pipe_wr = -1; /* read by the signal handler */
static void (*svc_route)(int sig);         /* fpw_console_route() */

static void on_signal(int sig)
{
	int saved_errno = errno;
	unsigned char b = (unsigned char)sig;

	if (pipe_wr >= 0)
		(void)!write(pipe_wr, &b, 1);
	errno = saved_errno;
}

/* The signal's own action: default disposition, then the signal again. */
static void default_action(int sig)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
}

static DWORD event_of(int sig)
{
	for (size_t i = 0; i < NSIGS; i++)
		if (ctrl_sigs[i].sig == sig)
			return ctrl_sigs[i].event;
	return CTRL_C_EVENT;
}

/* One event, on a thread of its own, with the signal mask the program had
 * (not the dispatcher's, which blocks everything: threads and processes a
 * handler starts inherit it). */
static void *run_event(void *arg)
{
	int sig = (int)(intptr_t)arg;
	DWORD event = event_of(sig);
	PHANDLER_ROUTINE *copy = NULL;
	size_t n;
	bool handled = false;

	pthread_mutex_lock(&ctrl_lock);
	pthread_sigmask(SIG_SETMASK, &base_mask, NULL);
	n = nhandlers;
	if (n && (copy = malloc(n * sizeof(*copy))) != NULL)
		memcpy(copy, handlers, n * sizeof(*copy));
	pthread_mutex_unlock(&ctrl_lock);
	for (size_t i = n; copy && i-- > 0 && !handled;)
		handled = copy[i](event) != FALSE;
	free(copy);
	if (!handled || event != CTRL_C_EVENT)
		default_action(sig);
	return NULL;
}

static void *dispatch(void *arg)
{
	int rd = (int)(intptr_t)arg; /* the pipe's read end */

	for (;;) {
		unsigned char b;
		void (*route)(int sig);
		pthread_attr_t attr;
		pthread_t t;
		ssize_t n = read(rd, &b, 1);
		DWORD event;

		if (n < 0 && errno == EINTR)
			continue;
		if (n != 1)
			return NULL;
		pthread_mutex_lock(&ctrl_lock);
		route = svc_route;
		pthread_mutex_unlock(&ctrl_lock);
		if (route) { /* a service's control: service.c */
			route(b);
			continue;
		}
		event = event_of(b);
		pthread_attr_init(&attr);
		if (event == CTRL_C_EVENT)
			pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, run_event, (void *)(intptr_t)b) != 0) {
			run_event((void *)(intptr_t)b); /* no thread: run it here */
		} else if (event != CTRL_C_EVENT) {
			/* The process ends: when the handlers return, or after
			 * Windows' time-out for the event. */
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += event == CTRL_CLOSE_EVENT ? 5 : 20;
			if (pthread_clockjoin_np(t, NULL, CLOCK_MONOTONIC, &ts) != 0)
				default_action(b);
		}
		pthread_attr_destroy(&attr);
	}
}

/* Set each signal's disposition to what the registrations want, touching
 * only those whose wanted disposition changed since we last set it: a
 * disposition the program set meanwhile stays.  SIGINT is caught while
 * handlers exist unless Ctrl+C is ignored; SIGHUP and SIGTERM while handlers
 * exist unless they were ignored before (nohup); with no handler each goes
 * back to what it was before us (SIGINT: the default after (NULL, FALSE)
 * if it was ignored then).  While a service's control dispatcher runs
 * (svc_route), the three are caught unless ignored before us.  ctrl_lock
 * held. */
static void apply(void)
{
	for (size_t i = 0; i < NSIGS; i++) {
		bool was_ignored = saved[i].sa_handler == SIG_IGN;
		enum disp want;
		struct sigaction sa;

		if (ctrl_sigs[i].sig == SIGINT && ignore_ctrl_c)
			want = D_IGNORE;
		else if (svc_route)
			want = was_ignored ? D_SAVED : D_CATCH;
		else if (ctrl_sigs[i].sig == SIGINT && nhandlers)
			want = D_CATCH;
		else if (ctrl_sigs[i].sig == SIGINT)
			want = was_ignored && ctrl_c_set ? D_DEFAULT : D_SAVED;
		else
			want = nhandlers && !was_ignored ? D_CATCH : D_SAVED;
		if (want == installed[i])
			continue;
		installed[i] = want;
		if (want == D_SAVED) {
			sigaction(ctrl_sigs[i].sig, &saved[i], NULL);
			continue;
		}
		memset(&sa, 0, sizeof(sa));
		sigemptyset(&sa.sa_mask);
		sa.sa_handler = want == D_CATCH ? on_signal : want == D_IGNORE ? SIG_IGN : SIG_DFL;
		sa.sa_flags = SA_RESTART;
		sigaction(ctrl_sigs[i].sig, &sa, NULL);
	}
}

/* fork(): the child is a process of its own, as a Windows child is: no
 * dispatcher, no pipe, no handlers (their signals back to what they were
 * before us); an ignored Ctrl+C stays ignored, as a Windows child inherits
 * it. */
static sigset_t fork_mask; /* the forking thread's, under ctrl_lock */

/* The three signals are blocked in the forking thread across fork(): a
 * signal sent to the child before its handler below has run would reach
 * on_signal there, and the pipe it shares with the parent. */
static void fork_prepare(void)
{
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < NSIGS; i++)
		sigaddset(&set, ctrl_sigs[i].sig);
	pthread_mutex_lock(&ctrl_lock);
	pthread_sigmask(SIG_BLOCK, &set, &fork_mask);
}

static void fork_parent(void)
{
	sigset_t mask = fork_mask;

	pthread_mutex_unlock(&ctrl_lock);
	pthread_sigmask(SIG_SETMASK, &mask, NULL);
}

static void fork_child(void)
{
	if (started) {
		close(pipe_rd);
		close(pipe_wr);
	}
	pipe_wr = -1;
	pipe_rd = -1;
	started = false;
	nhandlers = 0;
	svc_route = NULL; /* the service is the parent */
	apply();
	pthread_mutex_unlock(&ctrl_lock);
	pthread_sigmask(SIG_SETMASK, &fork_mask, NULL); /* now a signal finds the child's own */
}

/* What the signals were before us, once.  ctrl_lock held. */
static void init(void)
{
	if (initialized)
		return;
	for (size_t i = 0; i < NSIGS; i++) {
		sigaction(ctrl_sigs[i].sig, NULL, &saved[i]);
		installed[i] = D_SAVED;
	}
	/* Ignored by whoever started us: stays ignored, as the Windows flag
	 * a child inherits. */
	ignore_ctrl_c = saved[0].sa_handler == SIG_IGN;
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	initialized = true;
}

/* The pipe and the dispatcher, once.  ctrl_lock held. */
static bool start(void)
{
	sigset_t all;
	pthread_t t;
	int p[2], rc;

	if (started)
		return true;
	if (pipe2(p, O_CLOEXEC) != 0)
		return false;
	(void)fcntl(p[1], F_SETFL, O_NONBLOCK); /* a signal never blocks on it */
	/* The dispatcher takes none of the signals itself. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &base_mask);
	rc = pthread_create(&t, NULL, dispatch, (void *)(intptr_t)p[0]);
	pthread_sigmask(SIG_SETMASK, &base_mask, NULL);
	if (rc != 0) {
		close(p[0]);
		close(p[1]);
		return false;
	}
	pthread_detach(t);
	pipe_rd = p[0];
	pipe_wr = p[1];
	started = true;
	return true;
}

FLTPORT_WINAPI BOOL SetConsoleCtrlHandler(PHANDLER_ROUTINE routine, BOOL add)
{
	BOOL ok = TRUE;

	pthread_mutex_lock(&ctrl_lock);
	init();
	if (!routine) {
		ignore_ctrl_c = add != FALSE;
		ctrl_c_set = true;
	} else if (add) {
		if (!start()) {
			SetLastError(ERROR_NOT_ENOUGH_MEMORY);
			ok = FALSE;
		} else if (nhandlers == cap_handlers) {
			size_t cap = cap_handlers ? cap_handlers * 2 : 8;
			PHANDLER_ROUTINE *v = realloc(handlers, cap * sizeof(*v));

			if (!v) {
				SetLastError(ERROR_NOT_ENOUGH_MEMORY);
				ok = FALSE;
			} else {
				handlers = v;
				cap_handlers = cap;
			}
		}
		if (ok)
			handlers[nhandlers++] = routine;
	} else {
		size_t i = nhandlers;

		/* The last registration of it goes, as on Windows. */
		while (i > 0 && handlers[i - 1] != routine)
			i--;
		if (i == 0) {
			SetLastError(ERROR_INVALID_PARAMETER);
			ok = FALSE;
		} else {
			memmove(&handlers[i - 1], &handlers[i],
				(nhandlers - i) * sizeof(*handlers));
			nhandlers--;
		}
	}
	if (ok)
		apply();
	pthread_mutex_unlock(&ctrl_lock);
	return ok;
}

void fpw_signal_default(int sig)
{
	default_action(sig);
}

bool fpw_console_route(void (*route)(int sig))
{
	bool ok = true;

	pthread_mutex_lock(&ctrl_lock);
	init();
	if (route && !start())
		ok = false;
	else
		svc_route = route;
	if (ok)
		apply();
	pthread_mutex_unlock(&ctrl_lock);
	return ok;
}
