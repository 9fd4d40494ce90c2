/*
 * The service side of the SCM API (winsvc.h): a Windows service
 * (clients/win_svc.c) started the way a service manager starts it, stopped
 * and reloaded by its signals, telling its states through NOTIFY_SOCKET —
 * and its console fallback when no service manager started it.
 */
#ifdef FP_PLAIN
#include "plain_criterion.h"
#else
#include <criterion/criterion.h>
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "testutil.h"

#include <windows.h>
#include <fltuser.h>
#include <fltkernel.h>

#include "winport.h"

/* A NOTIFY_SOCKET of our own, as systemd gives a Type=notify service. */
struct notify_sock {
	int fd;
	char path[108];
};

static struct notify_sock notify_open(void)
{
	struct notify_sock n = { .fd = -1 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(n.path, sizeof(n.path), "%s/notify", tu_temp_dir("fltport-scm"));
	memcpy(sa.sun_path, n.path, strlen(n.path) + 1);
	n.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(n.fd, 0);
	cr_assert_eq(bind(n.fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind: %s",
		     strerror(errno));
	return n;
}

/* The next notification (NUL-terminated), or "" after 15 s. */
static const char *notify_next(struct notify_sock *n, char *buf, size_t cap)
{
	struct pollfd p = { .fd = n->fd, .events = POLLIN };
	ssize_t len = -1;

	if (poll(&p, 1, 15000) == 1)
		len = recv(n->fd, buf, cap - 1, 0);
	buf[len > 0 ? len : 0] = '\0';
	return buf;
}

/* Spawn win_svc (args) started as a service: FLTPORT_SERVICE=1 and, with
 * `notify`, our NOTIFY_SOCKET; the signals at their defaults. */
static struct tu_proc svc_spawn_args(const char *const *args, const struct notify_sock *notify)
{
	struct tu_proc p;

	unsetenv("INVOCATION_ID");
	unsetenv("SYSTEMD_EXEC_PID");
	setenv("FLTPORT_SERVICE", "1", 1);
	if (notify)
		setenv("NOTIFY_SOCKET", notify->path, 1);
	else
		unsetenv("NOTIFY_SOCKET");
	p = tw_spawn_sigdfl("win_svc", args);
	unsetenv("FLTPORT_SERVICE");
	unsetenv("NOTIFY_SOCKET");
	return p;
}

static struct tu_proc svc_spawn(const char *mode, const struct notify_sock *notify)
{
	return svc_spawn_args((const char *const[]){ mode, NULL }, notify);
}

/* The dispatcher returned TRUE with every check of the client passed, and
 * the program exited 0. */
static void svc_ends_cleanly(struct tu_proc *p)
{
	char line[128];
	int rc;

	tw_line(p, "DISPATCHER", line, sizeof(line));
	cr_expect_str_eq(line, "DISPATCHER ret=1 err=0 failures=0");
	rc = tu_wait(p, 15000);
	cr_expect_eq(rc, 0, "exit %d", rc);
}

/* A service with a NOTIFY_SOCKET (a Type=notify unit): ServiceMain runs
 * with the service name, and NOTIFY_SOCKET out of the environment (its
 * children are not the service); its states reach the socket as sd_notify
 * lines; SIGHUP is PARAMCHANGE and SIGTERM STOP, each run on the
 * dispatcher's thread with the handler's context; StartServiceCtrlDispatcher
 * returns TRUE once SERVICE_STOPPED is reported, and the program exits on
 * its own. */
Test(scm, a_service_runs_stops_and_tells_systemd, .timeout = 60)
{
	struct notify_sock n;
	struct tu_proc p;
	char line[128], msg[256];

	TW_SKIP_SIGNALS_UNDER_TSAN();
	n = notify_open();
	p = svc_spawn("run", &n);
	tw_line(&p, "MAIN", line, sizeof(line));
	cr_expect_str_eq(line, "MAIN argc=1 name=FltSvc notify=0");
	tw_line(&p, "SELF", line, sizeof(line));
	cr_expect_str_eq(line, "SELF win_svc");
	cr_expect_str_eq(notify_next(&n, msg, sizeof(msg)),
			 "EXTEND_TIMEOUT_USEC=5000000\nSTATUS=Starting");
	cr_expect_str_eq(notify_next(&n, msg, sizeof(msg)), "READY=1\nSTATUS=Running");
	tw_line(&p, "READY", line, sizeof(line));

	kill(p.pid, SIGHUP);
	tw_line(&p, "CONTROL", line, sizeof(line));
	cr_expect_str_eq(line, "CONTROL 6 dispatcher=1");
	kill(p.pid, SIGTERM);
	tw_line(&p, "CONTROL", line, sizeof(line));
	cr_expect_str_eq(line, "CONTROL 1 dispatcher=1");
	cr_expect_str_eq(notify_next(&n, msg, sizeof(msg)),
			 "STOPPING=1\nEXTEND_TIMEOUT_USEC=3000000\nSTATUS=Stopping");
	cr_expect_str_eq(notify_next(&n, msg, sizeof(msg)), "STATUS=Stopped");
	svc_ends_cleanly(&p);
	close(n.fd);
}

/* Started by systemd (SYSTEMD_EXEC_PID naming the process, INVOCATION_ID,
 * NOTIFY_SOCKET; no FLTPORT_SERVICE): a service. */
Test(scm, a_process_systemd_started_is_a_service, .timeout = 60)
{
	struct notify_sock n;
	struct tu_proc p;
	char line[128], msg[256];

	TW_SKIP_SIGNALS_UNDER_TSAN();
	n = notify_open();
	unsetenv("FLTPORT_SERVICE");
	setenv("NOTIFY_SOCKET", n.path, 1);
	p = tw_spawn_sigdfl("win_svc", (const char *const[]){ "systemd", NULL });
	unsetenv("NOTIFY_SOCKET");
	tw_line(&p, "MAIN", line, sizeof(line));
	cr_expect_str_eq(line, "MAIN argc=1 name=FltSvc notify=0");
	cr_expect_str_eq(notify_next(&n, msg, sizeof(msg)),
			 "EXTEND_TIMEOUT_USEC=5000000\nSTATUS=Starting");
	cr_expect_str_eq(notify_next(&n, msg, sizeof(msg)), "READY=1\nSTATUS=Running");
	tw_line(&p, "READY", line, sizeof(line));
	kill(p.pid, SIGTERM);
	svc_ends_cleanly(&p);
	close(n.fd);
}

/* A stop that comes while the service is starting (START_PENDING, no
 * control accepted, as Microsoft's sample reports it) waits for it, and is
 * delivered once it accepts STOP: the service ends cleanly. */
Test(scm, a_stop_during_start_waits_for_it, .timeout = 60)
{
	char go[256], line[128];
	struct tu_proc p;
	int fd;

	TW_SKIP_SIGNALS_UNDER_TSAN();
	snprintf(go, sizeof(go), "%s/go", tu_temp_dir("fltport-scm"));
	p = svc_spawn_args((const char *const[]){ "slowstart", go, NULL }, NULL);
	tw_line(&p, "STARTING", line, sizeof(line));
	kill(p.pid, SIGTERM);
	/* The signal ended the process at once before the fix; give it the
	 * time it took, then let the service finish starting. */
	tu_sleep_ms(200);
	cr_expect_eq(kill(p.pid, 0), 0, "the stop during START_PENDING killed the service");
	fd = open(go, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
	/* (The STOP may come before ServiceMain prints READY.) */
	tw_line(&p, "CONTROL", line, sizeof(line));
	cr_expect_str_eq(line, "CONTROL 1 dispatcher=1");
	svc_ends_cleanly(&p);
}

/* Reloads that come faster than the handler takes them fold into one
 * pending PARAMCHANGE, and a stop after them is never lost (a queue that
 * filled up once dropped it, and every later SIGTERM with it). */
Test(scm, a_stop_after_many_reloads_is_delivered, .timeout = 60)
{
	struct tu_proc p;
	char line[128];

	TW_SKIP_SIGNALS_UNDER_TSAN();
	p = svc_spawn("slowparam", NULL);
	tw_line(&p, "READY", line, sizeof(line));
	for (int i = 0; i < 24; i++) {
		kill(p.pid, SIGHUP);
		tu_sleep_ms(5); /* (each its own signal, not one pending twice) */
	}
	kill(p.pid, SIGTERM);
	for (;;) {
		tw_line(&p, "CONTROL", line, sizeof(line));
		if (strcmp(line, "CONTROL 6 dispatcher=1") != 0)
			break;
	}
	cr_expect_str_eq(line, "CONTROL 1 dispatcher=1");
	svc_ends_cleanly(&p);
}

/* Once per process, as on Windows: a second StartServiceCtrlDispatcher,
 * even after the first returned, fails with ERROR_SERVICE_ALREADY_RUNNING. */
Test(scm, the_dispatcher_runs_once_per_process, .timeout = 60)
{
	struct tu_proc p;
	char line[128];
	int rc;

	TW_SKIP_SIGNALS_UNDER_TSAN();
	p = svc_spawn("again", NULL);
	tw_line(&p, "READY", line, sizeof(line));
	kill(p.pid, SIGTERM);
	tw_line(&p, "DISPATCHER", line, sizeof(line));
	cr_expect_str_eq(line, "DISPATCHER ret=1 err=0 failures=0");
	tw_line(&p, "AGAIN", line, sizeof(line));
	cr_expect_str_eq(line, "AGAIN ret=0 err=1056");
	rc = tu_wait(&p, 15000);
	cr_expect_eq(rc, 0, "exit %d", rc);
}

/* The A functions and a plain Handler: SIGINT stops it as SIGTERM does. */
Test(scm, the_ansi_service_stops_on_sigint, .timeout = 60)
{
	struct tu_proc p;
	char line[128];

	TW_SKIP_SIGNALS_UNDER_TSAN();
	p = svc_spawn("ansi", NULL);
	tw_line(&p, "MAIN", line, sizeof(line));
	cr_expect_str_eq(line, "MAIN argc=1 name=FltSvc");
	tw_line(&p, "READY", line, sizeof(line));
	kill(p.pid, SIGINT);
	tw_line(&p, "CONTROL", line, sizeof(line));
	cr_expect_str_eq(line, "CONTROL 1 dispatcher=1");
	svc_ends_cleanly(&p);
}

/* Only the controls a service accepts reach it, as the SCM refuses the
 * others: one that accepts SHUTDOWN only gets SHUTDOWN for SIGTERM; one
 * that accepts neither STOP nor SHUTDOWN is ended by SIGTERM, and SIGHUP
 * reaches it as PARAMCHANGE. */
Test(scm, only_accepted_controls_reach_the_handler, .timeout = 60)
{
	struct tu_proc p;
	char line[128];
	int rc;

	TW_SKIP_SIGNALS_UNDER_TSAN();
	p = svc_spawn("shutdown", NULL);
	tw_line(&p, "READY", line, sizeof(line));
	kill(p.pid, SIGHUP); /* PARAMCHANGE not accepted: ignored */
	kill(p.pid, SIGTERM);
	tw_line(&p, "CONTROL", line, sizeof(line));
	cr_expect_str_eq(line, "CONTROL 5 dispatcher=1");
	tw_line(&p, "DISPATCHER", line, sizeof(line));
	cr_expect_str_eq(line, "DISPATCHER ret=1 err=0 failures=0");
	rc = tu_wait(&p, 15000);
	cr_expect_eq(rc, 0, "shutdown: exit %d", rc);

	p = svc_spawn("nostop", NULL);
	tw_line(&p, "READY", line, sizeof(line));
	kill(p.pid, SIGHUP);
	tw_line(&p, "CONTROL", line, sizeof(line));
	cr_expect_str_eq(line, "CONTROL 6 dispatcher=1");
	kill(p.pid, SIGTERM);
	rc = tu_wait(&p, 15000);
	cr_expect_eq(rc, 128 + SIGTERM, "nostop: exit %d", rc);
}

/* What the calls give for bad arguments inside a running service, and a
 * stop with a service-specific error, which systemd is told. */
Test(scm, service_calls_refuse_bad_arguments, .timeout = 60)
{
	struct notify_sock n;
	struct tu_proc p;
	char line[160], msg[256];

	n = notify_open();
	p = svc_spawn("errors", &n);
	tw_line(&p, "ERRORS", line, sizeof(line));
	cr_expect_str_eq(line, "ERRORS badhandle=0/6 badstate=0/13 badtype=0/13 again=0/1056 "
			       "badaccept=0/13 nostatus=0/487");
	cr_expect_str_eq(notify_next(&n, msg, sizeof(msg)),
			 "EXTEND_TIMEOUT_USEC=5000000\nSTATUS=Starting");
	cr_expect_str_eq(notify_next(&n, msg, sizeof(msg)), "STATUS=Stopped (service error 42)");
	svc_ends_cleanly(&p);
	close(n.fd);
}

/* Not started by a service manager (no NOTIFY_SOCKET, no INVOCATION_ID
 * under systemd, or FLTPORT_SERVICE=0 whatever else is set): the dispatcher
 * fails with ERROR_FAILED_SERVICE_CONTROLLER_CONNECT, as from a Windows
 * console, and the program's console fallback runs; a handler cannot be
 * registered outside a service. */
Test(scm, from_a_console_the_dispatcher_fails_with_1063, .timeout = 120)
{
	struct tu_proc p, p2;
	char line[128];
	int rc;

	unsetenv("NOTIFY_SOCKET");
	unsetenv("INVOCATION_ID");
	unsetenv("FLTPORT_SERVICE");
	p = tu_spawn("win_svc", (const char *const[]){ "run", NULL });
	tw_line(&p, "CONSOLE", line, sizeof(line));
	cr_expect_str_eq(line, "CONSOLE reg=0 err=1083");
	rc = tu_wait(&p, 15000);
	cr_expect_eq(rc, 3, "exit %d", rc);

	setenv("FLTPORT_SERVICE", "0", 1);
	setenv("NOTIFY_SOCKET", "/nonexistent/notify", 1);
	p = tu_spawn("win_svc", (const char *const[]){ "run", NULL });
	unsetenv("FLTPORT_SERVICE");
	unsetenv("NOTIFY_SOCKET");
	tw_line(&p, "CONSOLE", line, sizeof(line));
	cr_expect_str_eq(line, "CONSOLE reg=0 err=1083");
	rc = tu_wait(&p, 15000);
	cr_expect_eq(rc, 3, "FLTPORT_SERVICE=0: exit %d", rc);

	/* systemd's variables inherited from a unit (a child of a service, a
	 * shell with INVOCATION_ID): SYSTEMD_EXEC_PID names another process. */
	setenv("NOTIFY_SOCKET", "/nonexistent/notify", 1);
	setenv("INVOCATION_ID", "0f5e206d39166a026384b6dc53ba5b85", 1);
	setenv("SYSTEMD_EXEC_PID", "1", 1);
	p = tu_spawn("win_svc", (const char *const[]){ "run", NULL });
	unsetenv("SYSTEMD_EXEC_PID");
	p2 = tu_spawn("win_svc", (const char *const[]){ "run", NULL });
	unsetenv("NOTIFY_SOCKET");
	unsetenv("INVOCATION_ID");
	tw_line(&p2, "CONSOLE", line, sizeof(line));
	cr_expect_str_eq(line, "CONSOLE reg=0 err=1083", "no SYSTEMD_EXEC_PID");
	rc = tu_wait(&p2, 15000);
	cr_expect_eq(rc, 3, "no SYSTEMD_EXEC_PID: exit %d", rc);
	tw_line(&p, "CONSOLE", line, sizeof(line));
	cr_expect_str_eq(line, "CONSOLE reg=0 err=1083");
	rc = tu_wait(&p, 15000);
	cr_expect_eq(rc, 3, "SYSTEMD_EXEC_PID of another: exit %d", rc);
}

static VOID WINAPI never_main(DWORD argc, LPWSTR *argv)
{
	(void)argc;
	(void)argv;
}

/* In this process, with no service manager: tables without an entry, a
 * status handle that is not one, the SCM's client side, and the errors'
 * texts. */
Test(scm, calls_outside_a_service, .timeout = 30)
{
	SERVICE_TABLE_ENTRYW empty[] = { { NULL, NULL } };
	SERVICE_TABLE_ENTRYW noproc[] = { { (LPWSTR)L"X", NULL }, { NULL, NULL } };
	SERVICE_TABLE_ENTRYW one[] = { { (LPWSTR)L"", never_main }, { NULL, NULL } };
	SERVICE_STATUS st = { .dwServiceType = SERVICE_WIN32_OWN_PROCESS,
			      .dwCurrentState = SERVICE_RUNNING };
	char text[160], line[128];
	struct tu_proc p;
	int rc;

	setenv("FLTPORT_SERVICE", "0", 1);
	SetLastError(0);
	cr_expect_not(StartServiceCtrlDispatcherW(NULL));
	cr_expect_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	SetLastError(0);
	cr_expect_not(StartServiceCtrlDispatcherW(empty));
	cr_expect_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	SetLastError(0);
	cr_expect_not(StartServiceCtrlDispatcherW(noproc)); /* ends the table: empty */
	cr_expect_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	SetLastError(0);
	cr_expect_not(StartServiceCtrlDispatcherW(one));
	cr_expect_eq(GetLastError(), ERROR_FAILED_SERVICE_CONTROLLER_CONNECT);
	unsetenv("FLTPORT_SERVICE");

	SetLastError(0);
	cr_expect_not(SetServiceStatus(NULL, &st));
	cr_expect_eq(GetLastError(), ERROR_INVALID_HANDLE);
	SetLastError(0);
	cr_expect_null(RegisterServiceCtrlHandlerW(L"X", NULL));
	cr_expect_eq(GetLastError(), ERROR_INVALID_PARAMETER);

	/* No service database: installing fails on the first call, as a
	 * service's -install code reports it; no SC_HANDLE exists. */
	p = tu_spawn("win_svc", (const char *const[]){ "install", NULL });
	tw_line(&p, "INSTALL", line, sizeof(line));
	cr_expect_str_eq(line, "INSTALL OpenSCManager err=120");
	rc = tu_wait(&p, 15000);
	cr_expect_eq(rc, 1, "install: exit %d", rc);
	SetLastError(0);
	cr_expect_not(QueryServiceStatus(NULL, &st));
	cr_expect_eq(GetLastError(), ERROR_INVALID_HANDLE);
	SetLastError(0);
	cr_expect_not(CloseServiceHandle((SC_HANDLE)(ULONG_PTR)0x10));
	cr_expect_eq(GetLastError(), ERROR_INVALID_HANDLE);

	cr_expect_gt(FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
				    NULL, ERROR_FAILED_SERVICE_CONTROLLER_CONNECT, 0, text,
				    sizeof(text), NULL),
		     0);
	cr_expect_str_eq(text,
			 "The service process could not connect to the service controller.\r\n");
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The event log is syslog: each report is one record, facility LOG_DAEMON,
 * at the level of its type, "<source>: <strings>".  The test listens on
 * /dev/log in a mount namespace of its own (a tmpfs on /dev there). */
Test(scm, event_log_reports_reach_syslog, .timeout = 30)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = "/dev/log" };
	LPCWSTR wstrs[] = { L"scan failed:", L"/data/\u00e9t\u00e9.doc" };
	LPCSTR astrs[] = { "engine", "ready" };
	static char big_text[31841];
	LPCSTR forged[] = { "x.doc\nEngine: scan clean \xff\x1b[0m" }, big[] = { big_text };
	struct notify_sock log = { .fd = -1 };
	char rec[512];
	HANDLE h, ha, hb;

	memset(big_text, 'a', sizeof(big_text) - 1);
	if (geteuid() != 0)
		cr_skip_test("needs root: mounts a tmpfs on /dev in its own mount namespace");
	if (unshare(CLONE_NEWNS) != 0)
		cr_skip_test("unshare(CLONE_NEWNS) failed: %s", strerror(errno));
	cr_assert_eq(mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL), 0);
	cr_assert_eq(mount("tmpfs", "/dev", "tmpfs", 0, "mode=0755"), 0, "mount: %s",
		     strerror(errno));
	log.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(log.fd, 0);
	cr_assert_eq(bind(log.fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind: %s",
		     strerror(errno));

	h = RegisterEventSourceW(NULL, L"FltSvc");
	cr_assert_not_null(h);
	cr_expect(ReportEventW(h, EVENTLOG_ERROR_TYPE, 0, 1000, NULL, 2, 0, wstrs, NULL));
	notify_next(&log, rec, sizeof(rec));
	cr_expect_eq(strncmp(rec, "<27>", 4), 0, "priority: %s", rec); /* LOG_DAEMON|LOG_ERR */
	cr_expect(ends_with(rec, "FltSvc: scan failed: /data/\xc3\xa9t\xc3\xa9.doc"), "record: %s",
		  rec);
	cr_expect(ReportEventW(h, EVENTLOG_INFORMATION_TYPE, 0, 7, NULL, 0, 0, NULL, NULL));
	notify_next(&log, rec, sizeof(rec));
	cr_expect_eq(strncmp(rec, "<30>", 4), 0, "priority: %s", rec); /* LOG_DAEMON|LOG_INFO */
	cr_expect(ends_with(rec, "FltSvc: event 7"), "record: %s", rec);

	ha = RegisterEventSourceA("", "Engine");
	cr_assert_not_null(ha);
	cr_expect(ReportEventA(ha, EVENTLOG_WARNING_TYPE, 0, 2, NULL, 2, 0, astrs, NULL));
	notify_next(&log, rec, sizeof(rec));
	cr_expect_eq(strncmp(rec, "<28>", 4), 0, "priority: %s", rec); /* LOG_DAEMON|LOG_WARNING */
	cr_expect(ends_with(rec, ": Engine: engine ready"), "record: %s", rec);

	/* A string cannot forge a line of its own: control characters are
	 * escaped as rsyslog does, invalid UTF-8 replaced. */
	cr_expect(ReportEventA(ha, EVENTLOG_WARNING_TYPE, 0, 2, NULL, 1, 0, forged, NULL));
	notify_next(&log, rec, sizeof(rec));
	cr_expect(ends_with(rec, ": Engine: x.doc#012Engine: scan clean \xef\xbf\xbd#033[0m"),
		  "record: %s", rec);
	cr_expect_null(strchr(rec, '\n'));

	SetLastError(0);
	cr_expect_not(ReportEventA(ha, EVENTLOG_WARNING_TYPE, 0, 2, NULL, 2, 0, NULL, NULL));
	cr_expect_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	SetLastError(0); /* over Windows' 31,839 characters per string */
	cr_expect_not(ReportEventA(ha, EVENTLOG_WARNING_TYPE, 0, 2, NULL, 1, 0, big, NULL));
	cr_expect_eq(GetLastError(), ERROR_INVALID_PARAMETER);
	cr_expect(DeregisterEventSource(ha));
	/* A deregistered handle stays dead, even once another source is
	 * registered (its memory may be the same). */
	hb = RegisterEventSourceA(NULL, "Other");
	cr_assert_not_null(hb);
	cr_expect_neq(hb, ha);
	SetLastError(0);
	cr_expect_not(ReportEventA(ha, EVENTLOG_WARNING_TYPE, 0, 2, NULL, 2, 0, astrs, NULL));
	cr_expect_eq(GetLastError(), ERROR_INVALID_HANDLE);
	SetLastError(0);
	cr_expect_not(DeregisterEventSource(ha));
	cr_expect_eq(GetLastError(), ERROR_INVALID_HANDLE);
	cr_expect(DeregisterEventSource(hb));
	SetLastError(0);
	cr_expect_null(RegisterEventSourceW(L"\\\\other", L"FltSvc"));
	cr_expect_eq(GetLastError(), ERROR_ACCESS_DENIED);
	cr_expect(DeregisterEventSource(h));
	close(log.fd);
}
