/*
 * The service side of the Service Control Manager API (winsvc.h) on a
 * Linux service manager.
 *
 * StartServiceCtrlDispatcher is the service control dispatcher: it starts
 * ServiceMain on a thread of its own and then runs, on the calling thread,
 * the handler for each control until the service reports SERVICE_STOPPED,
 * as on Windows.  The controls come from signals (console.c catches them
 * while the dispatcher runs and hands each to on_control()): SIGTERM and
 * SIGINT stop the service, SIGHUP asks it to read its parameters again — each
 * only when the service accepts that control, as the SCM sends none other.
 * The states it reports go to systemd through NOTIFY_SOCKET (sd_notify's
 * protocol: one datagram of "KEY=value" lines), in their order, before the
 * dispatcher can return.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "compat/compat.h"
#include "compat/wname.h"

static pthread_mutex_t svc_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t svc_cond = PTHREAD_COND_INITIALIZER;

/* The one service this process runs (under svc_lock). */
static struct {
	bool once;          /* StartServiceCtrlDispatcher was called: once per process */
	bool dispatching;   /* ... and has not returned */
	bool registered;    /* a handler is registered: the status handle is valid */
	bool stopped;       /* SERVICE_STOPPED reported: no control follows */
	bool stop_sent;     /* a stop control queued or delivered: none follows */
	int held_sig;       /* a stop signal that came while the service was starting */
	bool param_pending; /* SERVICE_CONTROL_PARAMCHANGE to deliver (repeats fold) */
	DWORD stop_pending; /* STOP, SHUTDOWN or PRESHUTDOWN to deliver, or 0 */
	size_t nentries;    /* the table's entries */
	char *name;         /* UTF-8, for RegisterServiceCtrlHandler's check */
	LPSERVICE_MAIN_FUNCTIONA main_a;
	LPSERVICE_MAIN_FUNCTIONW main_w;
	char *argv_a[2]; /* ServiceMain's arguments: the name, NULL */
	wchar_t *argv_w[2];
	LPHANDLER_FUNCTION handler;
	LPHANDLER_FUNCTION_EX handler_ex;
	void *context;
	SERVICE_STATUS status;
	struct sockaddr_un notify_sa; /* NOTIFY_SOCKET's, taken out of the environment */
	socklen_t notify_len;         /* 0: nobody listens */
} svc;

/* The handle RegisterServiceCtrlHandler* returns: one per process. */
static struct SERVICE_STATUS_HANDLE__ svc_handle_obj;
#define SVC_HANDLE (&svc_handle_obj)

/* ---- systemd's notification socket ---- */

/* NOTIFY_SOCKET's address, kept for the service's notifications; the
 * variable leaves the environment, as sd_notify(unset_environment) does,
 * so that the service's children do not take its socket for theirs.
 * svc_lock held. */
static void notify_take(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len = path ? strlen(path) : 0;

	svc.notify_len = 0;
	if (path && (path[0] == '/' || path[0] == '@') && len < sizeof(svc.notify_sa.sun_path)) {
		memset(&svc.notify_sa, 0, sizeof(svc.notify_sa));
		svc.notify_sa.sun_family = AF_UNIX;
		memcpy(svc.notify_sa.sun_path, path, len);
		if (path[0] == '@')
			svc.notify_sa.sun_path[0] = '\0'; /* an abstract name */
		svc.notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	}
	unsetenv("NOTIFY_SOCKET");
}

/* Send one notification (svc_lock held: notifications leave in the order
 * of the states they report).  Best effort and never blocking: a service
 * never waits or fails for its manager's sake. */
static void notify(const char *msg)
{
	int fd;

	if (!svc.notify_len)
		return;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)!sendto(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT,
		      (struct sockaddr *)&svc.notify_sa, svc.notify_len);
	close(fd);
}

static const char *state_text(DWORD state)
{
	static const char *const text[] = { "",        "Stopped",    "Starting", "Stopping",
					    "Running", "Continuing", "Pausing",  "Paused" };

	return state < sizeof(text) / sizeof(text[0]) ? text[state] : "";
}

/* What the status means to systemd (svc_lock held). */
static void notify_status(const SERVICE_STATUS *st)
{
	char msg[256];
	int n = 0;

	if (st->dwCurrentState == SERVICE_RUNNING)
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, "READY=1\n");
	else if (st->dwCurrentState == SERVICE_STOP_PENDING)
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, "STOPPING=1\n");
	if (st->dwWaitHint && (st->dwCurrentState == SERVICE_START_PENDING ||
			       st->dwCurrentState == SERVICE_STOP_PENDING ||
			       st->dwCurrentState == SERVICE_CONTINUE_PENDING ||
			       st->dwCurrentState == SERVICE_PAUSE_PENDING))
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, "EXTEND_TIMEOUT_USEC=%llu\n",
			      (unsigned long long)st->dwWaitHint * 1000ull);
	if (st->dwCurrentState == SERVICE_STOPPED &&
	    st->dwWin32ExitCode == ERROR_SERVICE_SPECIFIC_ERROR)
		snprintf(msg + n, sizeof(msg) - (size_t)n, "STATUS=Stopped (service error %lu)",
			 (unsigned long)st->dwServiceSpecificExitCode);
	else if (st->dwCurrentState == SERVICE_STOPPED && st->dwWin32ExitCode != NO_ERROR)
		snprintf(msg + n, sizeof(msg) - (size_t)n, "STATUS=Stopped (error %lu)",
			 (unsigned long)st->dwWin32ExitCode);
	else
		snprintf(msg + n, sizeof(msg) - (size_t)n, "STATUS=%s",
			 state_text(st->dwCurrentState));
	notify(msg);
}

/* ---- who started us ---- */

/* Whether a service manager started this process (winsvc.h says how it is
 * told).  systemd (248 and later) names the process it started in
 * SYSTEMD_EXEC_PID: its children and a shell that inherited INVOCATION_ID
 * are not that process. */
static bool under_service_manager(void)
{
	const char *e = getenv("FLTPORT_SERVICE");
	const char *pid = getenv("SYSTEMD_EXEC_PID");
	char *end;
	long v;

	if (e && *e)
		return strcmp(e, "0") != 0;
	if (!pid || !*pid || (!getenv("NOTIFY_SOCKET") && !getenv("INVOCATION_ID")))
		return false;
	errno = 0;
	v = strtol(pid, &end, 10);
	return errno == 0 && *end == '\0' && v == (long)getpid();
}

/* ---- controls ---- */

/* The control that stops a service accepting `accepted`, or 0. */
static DWORD stop_control(DWORD accepted)
{
	if (accepted & SERVICE_ACCEPT_STOP)
		return SERVICE_CONTROL_STOP;
	if (accepted & SERVICE_ACCEPT_SHUTDOWN)
		return SERVICE_CONTROL_SHUTDOWN;
	if (accepted & SERVICE_ACCEPT_PRESHUTDOWN)
		return SERVICE_CONTROL_PRESHUTDOWN;
	return 0;
}

static bool starting(void)
{
	return !svc.registered || svc.status.dwCurrentState == 0 ||
	       svc.status.dwCurrentState == SERVICE_START_PENDING;
}

/* A signal while the dispatcher runs (console.c's dispatcher thread). */
static void on_control(int sig)
{
	DWORD accepted, control;
	bool die = false;

	pthread_mutex_lock(&svc_lock);
	accepted = svc.registered ? svc.status.dwControlsAccepted : 0;
	control = stop_control(accepted);
	if (!svc.dispatching || svc.stopped || svc.stop_sent) {
		/* After a stop the SCM sends nothing more: the service is
		 * on its way out (a service manager's SIGKILL still ends
		 * one that hangs). */
	} else if (sig == SIGHUP) {
		if (accepted & SERVICE_ACCEPT_PARAMCHANGE) {
			svc.param_pending = true;
			pthread_cond_broadcast(&svc_cond);
		}
	} else if (control) {
		svc.stop_pending = control;
		svc.stop_sent = true;
		pthread_cond_broadcast(&svc_cond);
	} else if (starting()) {
		/* Held until it reports a state past START_PENDING:
		 * delivered then if it accepts a stop, else the signal
		 * ends it (SetServiceStatus). */
		if (!svc.held_sig)
			svc.held_sig = sig;
	} else {
		die = true;
	}
	pthread_mutex_unlock(&svc_lock);
	if (die)
		fpw_signal_default(sig); /* nothing stops it: the signal does */
}

static void *service_main(void *arg)
{
	(void)arg;
	if (svc.main_w)
		svc.main_w(1, svc.argv_w);
	else
		svc.main_a(1, svc.argv_a);
	return NULL;
}

static void forget_names(void)
{
	free(svc.name);
	free(svc.argv_a[0]);
	free(svc.argv_w[0]);
	svc.name = NULL;
	svc.argv_a[0] = NULL;
	svc.argv_w[0] = NULL;
}

/* Both spellings of the started service's name (svc_lock held).  Set once
 * per process: ServiceMain may use them until the process ends. */
static bool set_names(const char *utf8)
{
	size_t n = fpw_utf8_to_wname(utf8, NULL, 0);

	forget_names(); /* (a forked child's copies: no thread of its uses them) */
	svc.name = strdup(utf8);
	svc.argv_a[0] = strdup(utf8);
	svc.argv_w[0] = calloc(n + 1, sizeof(wchar_t));
	if (!svc.name || !svc.argv_a[0] || !svc.argv_w[0]) {
		forget_names();
		return false;
	}
	fpw_utf8_to_wname(utf8, svc.argv_w[0], n);
	return true;
}

/* fork(): the child is another process, which has no service running and
 * may start its own; svc_lock is held across fork() so that the child's
 * copy is consistent. */
static void fork_prepare(void)
{
	pthread_mutex_lock(&svc_lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&svc_lock);
}

static void fork_child(void)
{
	svc.once = svc.dispatching = svc.registered = svc.stopped = svc.stop_sent = false;
	svc.held_sig = 0;
	svc.param_pending = false;
	svc.stop_pending = 0;
	svc.notify_len = 0;
	pthread_cond_init(&svc_cond, NULL);
	pthread_mutex_unlock(&svc_lock);
}

static void atfork_once(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* The dispatcher: `names` holds the table's names in UTF-8, `mains_a` or
 * `mains_w` its routines. */
static BOOL dispatch(size_t n, char **names, const LPSERVICE_MAIN_FUNCTIONA *mains_a,
		     const LPSERVICE_MAIN_FUNCTIONW *mains_w)
{
	static pthread_once_t atfork = PTHREAD_ONCE_INIT;
	const char *want = getenv("FLTPORT_SERVICE_NAME");
	size_t pick = 0;
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	pthread_mutex_lock(&svc_lock);
	if (svc.once) { /* once per process, as on Windows */
		pthread_mutex_unlock(&svc_lock);
		SetLastError(ERROR_SERVICE_ALREADY_RUNNING);
		return FALSE;
	}
	pthread_mutex_unlock(&svc_lock);
	/* Then: a console program sees 1063 whatever else is set. */
	if (!under_service_manager()) {
		SetLastError(ERROR_FAILED_SERVICE_CONTROLLER_CONNECT);
		return FALSE;
	}
	if (want && *want) {
		for (pick = 0; pick < n && strcmp(names[pick], want) != 0; pick++)
			;
		if (pick == n) {
			SetLastError(ERROR_SERVICE_NOT_IN_EXE);
			return FALSE;
		}
	}
	pthread_once(&atfork, atfork_once);
	pthread_mutex_lock(&svc_lock);
	if (svc.once) { /* once per process, as on Windows */
		pthread_mutex_unlock(&svc_lock);
		SetLastError(ERROR_SERVICE_ALREADY_RUNNING);
		return FALSE;
	}
	if (!set_names(names[pick])) {
		pthread_mutex_unlock(&svc_lock);
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return FALSE;
	}
	svc.once = svc.dispatching = true;
	svc.nentries = n;
	svc.main_a = mains_a ? mains_a[pick] : NULL;
	svc.main_w = mains_w ? mains_w[pick] : NULL;
	notify_take();
	unsetenv("FLTPORT_SERVICE"); /* the service's children are not it */
	pthread_mutex_unlock(&svc_lock);

	if (!fpw_console_route(on_control)) {
		rc = ENOMEM;
		goto fail;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, service_main, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		fpw_console_route(NULL);
		goto fail;
	}

	/* The control dispatcher: each control on this thread, in the order
	 * the signals came (a PARAMCHANGE before the stop that followed it). */
	pthread_mutex_lock(&svc_lock);
	while (!svc.stopped) {
		DWORD control;
		LPHANDLER_FUNCTION h;
		LPHANDLER_FUNCTION_EX hx;
		void *ctx;

		if (svc.param_pending) {
			control = SERVICE_CONTROL_PARAMCHANGE;
			svc.param_pending = false;
		} else if (svc.stop_pending) {
			control = svc.stop_pending;
			svc.stop_pending = 0;
		} else {
			pthread_cond_wait(&svc_cond, &svc_lock);
			continue;
		}
		h = svc.handler;
		hx = svc.handler_ex;
		ctx = svc.context;
		pthread_mutex_unlock(&svc_lock);
		if (hx)
			(void)hx(control, 0, NULL, ctx);
		else if (h)
			h(control);
		pthread_mutex_lock(&svc_lock);
	}
	svc.dispatching = false;
	pthread_mutex_unlock(&svc_lock);
	fpw_console_route(NULL);
	return TRUE;
fail:
	pthread_mutex_lock(&svc_lock);
	svc.once = svc.dispatching = false; /* nothing started */
	pthread_mutex_unlock(&svc_lock);
	SetLastError(fpw_errno_to_win32(rc));
	return FALSE;
}

/* A table ends at its first entry without a name or a routine (as Wine
 * reads it); one with no entry before that, or of TABLE_MAX entries or
 * more: ERROR_INVALID_PARAMETER. */
#define TABLE_MAX 64

FLTPORT_WINAPI BOOL StartServiceCtrlDispatcherA(const SERVICE_TABLE_ENTRYA *lpServiceStartTable)
{
	char *names[TABLE_MAX];
	LPSERVICE_MAIN_FUNCTIONA mains[TABLE_MAX];
	size_t n = 0;

	for (; lpServiceStartTable && n < TABLE_MAX && lpServiceStartTable[n].lpServiceName &&
	       lpServiceStartTable[n].lpServiceProc;
	     n++) {
		names[n] = lpServiceStartTable[n].lpServiceName;
		mains[n] = lpServiceStartTable[n].lpServiceProc;
	}
	if (n == 0 || n == TABLE_MAX) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	return dispatch(n, names, mains, NULL);
}

FLTPORT_WINAPI BOOL StartServiceCtrlDispatcherW(const SERVICE_TABLE_ENTRYW *lpServiceStartTable)
{
	char *names[TABLE_MAX];
	LPSERVICE_MAIN_FUNCTIONW mains[TABLE_MAX];
	size_t n = 0;
	BOOL ok;

	bool bad = !lpServiceStartTable;

	DWORD err = ERROR_INVALID_PARAMETER;

	for (; !bad && n < TABLE_MAX && lpServiceStartTable[n].lpServiceName &&
	       lpServiceStartTable[n].lpServiceProc;
	     n++) {
		const wchar_t *w = lpServiceStartTable[n].lpServiceName;

		names[n] = malloc(FPW_NAME_BYTES);
		mains[n] = lpServiceStartTable[n].lpServiceProc;
		if (!names[n])
			err = ERROR_NOT_ENOUGH_MEMORY;
		bad = !names[n] || wcslen(w) >= FPW_NAME_BYTES / 4 ||
		      fpw_wname_to_utf8(w, wcslen(w), names[n], FPW_NAME_BYTES) < 0;
	}
	if (bad || n == 0 || n == TABLE_MAX) {
		SetLastError(err);
		ok = FALSE;
	} else {
		ok = dispatch(n, names, NULL, mains);
	}
	while (n > 0)
		free(names[--n]);
	return ok;
}

/* Register (name in UTF-8, or NULL if it could not be converted). */
static SERVICE_STATUS_HANDLE do_register(const char *name, LPHANDLER_FUNCTION h,
					 LPHANDLER_FUNCTION_EX hx, void *ctx)
{
	DWORD err = 0;

	if (!h && !hx) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return NULL;
	}
	pthread_mutex_lock(&svc_lock);
	if (!svc.dispatching)
		err = ERROR_SERVICE_NOT_IN_EXE;
	else if (svc.nentries > 1 && (!name || strcmp(name, svc.name) != 0))
		err = ERROR_SERVICE_NOT_IN_EXE;
	if (!err) {
		svc.handler = h;
		svc.handler_ex = hx;
		svc.context = ctx;
		svc.registered = true;
	}
	pthread_mutex_unlock(&svc_lock);
	if (err) {
		SetLastError(err);
		return NULL;
	}
	return SVC_HANDLE;
}

static SERVICE_STATUS_HANDLE register_w(LPCWSTR name, LPHANDLER_FUNCTION h,
					LPHANDLER_FUNCTION_EX hx, void *ctx)
{
	char utf8[FPW_NAME_BYTES];
	bool ok = name && wcslen(name) < FPW_NAME_BYTES / 4 &&
		  fpw_wname_to_utf8(name, wcslen(name), utf8, sizeof(utf8)) == 0;

	return do_register(ok ? utf8 : NULL, h, hx, ctx);
}

FLTPORT_WINAPI SERVICE_STATUS_HANDLE RegisterServiceCtrlHandlerA(LPCSTR lpServiceName,
								 LPHANDLER_FUNCTION lpHandlerProc)
{
	return do_register(lpServiceName, lpHandlerProc, NULL, NULL);
}

FLTPORT_WINAPI SERVICE_STATUS_HANDLE RegisterServiceCtrlHandlerW(LPCWSTR lpServiceName,
								 LPHANDLER_FUNCTION lpHandlerProc)
{
	return register_w(lpServiceName, lpHandlerProc, NULL, NULL);
}

FLTPORT_WINAPI SERVICE_STATUS_HANDLE RegisterServiceCtrlHandlerExA(
	LPCSTR lpServiceName, LPHANDLER_FUNCTION_EX lpHandlerProc, LPVOID lpContext)
{
	return do_register(lpServiceName, NULL, lpHandlerProc, lpContext);
}

FLTPORT_WINAPI SERVICE_STATUS_HANDLE RegisterServiceCtrlHandlerExW(
	LPCWSTR lpServiceName, LPHANDLER_FUNCTION_EX lpHandlerProc, LPVOID lpContext)
{
	return register_w(lpServiceName, NULL, lpHandlerProc, lpContext);
}

/* The accept bits Windows knows (SERVICE_ACCEPT_STOP .. USERMODEREBOOT). */
#define ACCEPT_KNOWN 0x00000FFFu

/* MS-SCMR's rule for a reported type: exactly one of a driver type,
 * SERVICE_WIN32, SERVICE_WIN32_OWN_PROCESS or _SHARE_PROCESS (the last three
 * optionally | SERVICE_INTERACTIVE_PROCESS), or a user service's. */
static bool type_ok(DWORD t)
{
	DWORD base = t & ~(DWORD)SERVICE_INTERACTIVE_PROCESS;
	bool win32 = base == SERVICE_WIN32_OWN_PROCESS || base == SERVICE_WIN32_SHARE_PROCESS ||
		     base == SERVICE_WIN32;

	if (t & SERVICE_INTERACTIVE_PROCESS)
		return win32;
	return win32 || t == SERVICE_KERNEL_DRIVER || t == SERVICE_FILE_SYSTEM_DRIVER ||
	       t == SERVICE_USER_OWN_PROCESS || t == SERVICE_USER_SHARE_PROCESS;
}

FLTPORT_WINAPI BOOL SetServiceStatus(SERVICE_STATUS_HANDLE hServiceStatus,
				     LPSERVICE_STATUS lpServiceStatus)
{
	SERVICE_STATUS st;
	DWORD err = 0;
	int die = 0;

	if (!lpServiceStatus) {
		SetLastError(ERROR_INVALID_ADDRESS);
		return FALSE;
	}
	st = *lpServiceStatus;
	pthread_mutex_lock(&svc_lock);
	if (hServiceStatus != SVC_HANDLE || !svc.registered)
		err = ERROR_INVALID_HANDLE;
	else if (st.dwCurrentState < SERVICE_STOPPED || st.dwCurrentState > SERVICE_PAUSED ||
		 !type_ok(st.dwServiceType) || (st.dwControlsAccepted & ~ACCEPT_KNOWN))
		err = ERROR_INVALID_DATA;
	if (!err) {
		svc.status = st;
		if (st.dwCurrentState == SERVICE_STOPPED) {
			svc.stopped = true;
			svc.held_sig = 0;
		} else if (svc.held_sig && !svc.stop_sent) {
			/* A stop signal that came while it was starting. */
			DWORD control = stop_control(st.dwControlsAccepted);

			if (control) {
				svc.stop_pending = control;
				svc.stop_sent = true;
				svc.held_sig = 0;
			} else if (st.dwCurrentState != SERVICE_START_PENDING) {
				die = svc.held_sig;
				svc.held_sig = 0;
			}
		}
		/* Under the lock: notifications leave in the order of the
		 * states, and before the dispatcher can return and the
		 * program exit. */
		notify_status(&st);
		pthread_cond_broadcast(&svc_cond);
	}
	pthread_mutex_unlock(&svc_lock);
	if (err) {
		SetLastError(err);
		return FALSE;
	}
	if (die)
		fpw_signal_default(die);
	return TRUE;
}

/* ---- the SCM's client side: no service database (winsvc.h) ---- */

static SC_HANDLE no_database(void)
{
	SetLastError(ERROR_CALL_NOT_IMPLEMENTED);
	return NULL;
}

/* No SC_HANDLE exists: whatever is passed is not one. */
static BOOL not_a_handle(void)
{
	SetLastError(ERROR_INVALID_HANDLE);
	return FALSE;
}

FLTPORT_WINAPI SC_HANDLE OpenSCManagerA(LPCSTR lpMachineName, LPCSTR lpDatabaseName,
					DWORD dwDesiredAccess)
{
	return no_database();
}

FLTPORT_WINAPI SC_HANDLE OpenSCManagerW(LPCWSTR lpMachineName, LPCWSTR lpDatabaseName,
					DWORD dwDesiredAccess)
{
	return no_database();
}

FLTPORT_WINAPI SC_HANDLE OpenServiceA(SC_HANDLE hSCManager, LPCSTR lpServiceName,
				      DWORD dwDesiredAccess)
{
	(void)not_a_handle();
	return NULL;
}

FLTPORT_WINAPI SC_HANDLE OpenServiceW(SC_HANDLE hSCManager, LPCWSTR lpServiceName,
				      DWORD dwDesiredAccess)
{
	(void)not_a_handle();
	return NULL;
}

FLTPORT_WINAPI SC_HANDLE CreateServiceA(SC_HANDLE hSCManager, LPCSTR lpServiceName,
					LPCSTR lpDisplayName, DWORD dwDesiredAccess,
					DWORD dwServiceType, DWORD dwStartType,
					DWORD dwErrorControl, LPCSTR lpBinaryPathName,
					LPCSTR lpLoadOrderGroup, LPDWORD lpdwTagId,
					LPCSTR lpDependencies, LPCSTR lpServiceStartName,
					LPCSTR lpPassword)
{
	(void)not_a_handle();
	return NULL;
}

FLTPORT_WINAPI SC_HANDLE CreateServiceW(SC_HANDLE hSCManager, LPCWSTR lpServiceName,
					LPCWSTR lpDisplayName, DWORD dwDesiredAccess,
					DWORD dwServiceType, DWORD dwStartType,
					DWORD dwErrorControl, LPCWSTR lpBinaryPathName,
					LPCWSTR lpLoadOrderGroup, LPDWORD lpdwTagId,
					LPCWSTR lpDependencies, LPCWSTR lpServiceStartName,
					LPCWSTR lpPassword)
{
	(void)not_a_handle();
	return NULL;
}

FLTPORT_WINAPI BOOL ChangeServiceConfigA(SC_HANDLE hService, DWORD dwServiceType, DWORD dwStartType,
					 DWORD dwErrorControl, LPCSTR lpBinaryPathName,
					 LPCSTR lpLoadOrderGroup, LPDWORD lpdwTagId,
					 LPCSTR lpDependencies, LPCSTR lpServiceStartName,
					 LPCSTR lpPassword, LPCSTR lpDisplayName)
{
	return not_a_handle();
}

FLTPORT_WINAPI BOOL ChangeServiceConfigW(SC_HANDLE hService, DWORD dwServiceType, DWORD dwStartType,
					 DWORD dwErrorControl, LPCWSTR lpBinaryPathName,
					 LPCWSTR lpLoadOrderGroup, LPDWORD lpdwTagId,
					 LPCWSTR lpDependencies, LPCWSTR lpServiceStartName,
					 LPCWSTR lpPassword, LPCWSTR lpDisplayName)
{
	return not_a_handle();
}

FLTPORT_WINAPI BOOL ChangeServiceConfig2A(SC_HANDLE hService, DWORD dwInfoLevel, LPVOID lpInfo)
{
	return not_a_handle();
}

FLTPORT_WINAPI BOOL ChangeServiceConfig2W(SC_HANDLE hService, DWORD dwInfoLevel, LPVOID lpInfo)
{
	return not_a_handle();
}

FLTPORT_WINAPI BOOL StartServiceA(SC_HANDLE hService, DWORD dwNumServiceArgs,
				  LPCSTR *lpServiceArgVectors)
{
	return not_a_handle();
}

FLTPORT_WINAPI BOOL StartServiceW(SC_HANDLE hService, DWORD dwNumServiceArgs,
				  LPCWSTR *lpServiceArgVectors)
{
	return not_a_handle();
}

FLTPORT_WINAPI BOOL ControlService(SC_HANDLE hService, DWORD dwControl,
				   LPSERVICE_STATUS lpServiceStatus)
{
	return not_a_handle();
}

FLTPORT_WINAPI BOOL QueryServiceStatus(SC_HANDLE hService, LPSERVICE_STATUS lpServiceStatus)
{
	return not_a_handle();
}

FLTPORT_WINAPI BOOL QueryServiceStatusEx(SC_HANDLE hService, SC_STATUS_TYPE InfoLevel,
					 LPBYTE lpBuffer, DWORD cbBufSize, LPDWORD pcbBytesNeeded)
{
	return not_a_handle();
}

FLTPORT_WINAPI BOOL DeleteService(SC_HANDLE hService)
{
	return not_a_handle();
}

FLTPORT_WINAPI BOOL CloseServiceHandle(SC_HANDLE hSCObject)
{
	return not_a_handle();
}
