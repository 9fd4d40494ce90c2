/*
 * win_svc — a Windows service written the usual way (a service table,
 * ServiceMain, a control handler, SetServiceStatus), for
 * test_compat_services.c; the same source cross-compiles with mingw-w64.
 * On Linux the service manager's requests are signals (winsvc.h).
 *
 *   win_svc run       UNICODE functions, HandlerEx with a context; accepts
 *                     STOP, SHUTDOWN and PARAMCHANGE; stops on STOP or
 *                     SHUTDOWN through STOP_PENDING
 *   win_svc ansi      the same with the A functions and a plain Handler
 *   win_svc shutdown  accepts SHUTDOWN only
 *   win_svc nostop    accepts PARAMCHANGE only
 *   win_svc errors    ServiceMain checks the calls' errors, then stops with
 *                     a service-specific error (42)
 *   win_svc install   installs itself the usual way (OpenSCManager,
 *                     CreateService, ChangeServiceConfig2): "INSTALL ok" or
 *                     "INSTALL <call> err=E"
 *   win_svc slowstart FILE
 *                     as run, but stays START_PENDING (accepting nothing)
 *                     until FILE exists
 *   win_svc systemd   (Linux only) as run, started the way systemd starts
 *                     a service: SYSTEMD_EXEC_PID (its own pid) and
 *                     INVOCATION_ID set, FLTPORT_SERVICE not (it execs
 *                     itself so)
 *   win_svc slowparam as run; PARAMCHANGE takes the handler 300 ms
 *   win_svc again     as run, then StartServiceCtrlDispatcher once more
 *                     after it returned: "AGAIN ret=R err=E"
 *
 * Prints "CONSOLE reg=R err=E" and exits 3 when not started as a service
 * (R, E: RegisterServiceCtrlHandlerExW outside a service); in a service:
 * "MAIN argc=N name=S notify=V" from ServiceMain (V: NOTIFY_SOCKET still in
 * the environment), "SELF <file name>" (its own image, through OpenProcess and
 * QueryFullProcessImageName), "STARTING" (slowstart), "READY" once running, "CONTROL
 * c dispatcher=D" per control (D: 1 if it runs on the thread that called
 * StartServiceCtrlDispatcher), "ERRORS ..." (errors mode), "DISPATCHER
 * ret=R err=E failures=F" when it returns (F: the checks that failed — a
 * wrong handler context, a SetServiceStatus that should have worked).
 */
#ifndef UNICODE
#define UNICODE
#endif
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <unistd.h>
#endif

static SERVICE_STATUS_HANDLE status_handle;
static SERVICE_STATUS status;
static HANDLE stop_event;
static DWORD dispatcher_tid;
static DWORD accepted;
static int mode_errors;
static int context_word = 7;
static const char *go_file; /* slowstart */
static int slow_param;
static volatile LONG failures;

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static void report(DWORD state, DWORD exit_code, DWORD specific, DWORD hint)
{
	status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
	status.dwCurrentState = state;
	status.dwControlsAccepted = state == SERVICE_START_PENDING ? 0 : accepted;
	status.dwWin32ExitCode = exit_code;
	status.dwServiceSpecificExitCode = specific;
	status.dwCheckPoint = hint ? status.dwCheckPoint + 1 : 0;
	status.dwWaitHint = hint;
	if (!SetServiceStatus(status_handle, &status)) {
		say("SETSTATUS failed err=%lu\n", (unsigned long)GetLastError());
		InterlockedIncrement(&failures);
	}
}

static void control(DWORD c)
{
	say("CONTROL %lu dispatcher=%d\n", (unsigned long)c,
	    GetCurrentThreadId() == dispatcher_tid);
	if (c == SERVICE_CONTROL_PARAMCHANGE && slow_param)
		Sleep(300); /* rereading a large configuration */
	if (c == SERVICE_CONTROL_STOP || c == SERVICE_CONTROL_SHUTDOWN) {
		report(SERVICE_STOP_PENDING, NO_ERROR, 0, 3000);
		SetEvent(stop_event);
	}
}

static DWORD WINAPI handler_ex(DWORD c, DWORD type, LPVOID data, LPVOID ctx)
{
	(void)type;
	(void)data;
	if (ctx != &context_word) {
		say("CONTEXT wrong\n");
		InterlockedIncrement(&failures);
	}
	control(c);
	return c == SERVICE_CONTROL_INTERROGATE || c == SERVICE_CONTROL_STOP ||
			       c == SERVICE_CONTROL_SHUTDOWN || c == SERVICE_CONTROL_PARAMCHANGE
		       ? NO_ERROR
		       : ERROR_CALL_NOT_IMPLEMENTED;
}

static VOID WINAPI handler(DWORD c)
{
	control(c);
}

static VOID WINAPI service_main_w(DWORD argc, LPWSTR *argv);

/* The event log, as services report to it (syslog here). */
static void log_event(WORD type, LPCWSTR text)
{
	HANDLE h = RegisterEventSourceW(NULL, L"FltSvc");

	if (!h)
		return;
	if (!ReportEventW(h, type, 0, 1, NULL, 1, 0, &text, NULL))
		say("REPORT failed err=%lu\n", (unsigned long)GetLastError());
	DeregisterEventSource(h);
}

/* What the calls give for bad arguments, then a stop with error 42. */
static void check_errors(void)
{
	SERVICE_STATUS bad = status;
	SERVICE_TABLE_ENTRYW again[] = { { (LPWSTR)L"Other", service_main_w }, { NULL, NULL } };
	DWORD e1, e2, e3, e4, e5, e6;
	BOOL r1, r2, r3, r4, r5, r6;

	SetLastError(0);
	r1 = SetServiceStatus((SERVICE_STATUS_HANDLE)(ULONG_PTR)0x1234, &status);
	e1 = GetLastError();
	bad.dwCurrentState = 9;
	SetLastError(0);
	r2 = SetServiceStatus(status_handle, &bad);
	e2 = GetLastError();
	bad.dwCurrentState = SERVICE_RUNNING;
	bad.dwServiceType = 0;
	SetLastError(0);
	r3 = SetServiceStatus(status_handle, &bad);
	e3 = GetLastError();
	SetLastError(0);
	r4 = StartServiceCtrlDispatcherW(again);
	e4 = GetLastError();
	bad = status;
	bad.dwControlsAccepted = 0x1000; /* no such SERVICE_ACCEPT_ bit */
	SetLastError(0);
	r5 = SetServiceStatus(status_handle, &bad);
	e5 = GetLastError();
	SetLastError(0);
	r6 = SetServiceStatus(status_handle, NULL);
	e6 = GetLastError();
	say("ERRORS badhandle=%d/%lu badstate=%d/%lu badtype=%d/%lu again=%d/%lu "
	    "badaccept=%d/%lu nostatus=%d/%lu\n",
	    r1, (unsigned long)e1, r2, (unsigned long)e2, r3, (unsigned long)e3, r4,
	    (unsigned long)e4, r5, (unsigned long)e5, r6, (unsigned long)e6);
	report(SERVICE_STOPPED, ERROR_SERVICE_SPECIFIC_ERROR, 42, 0);
}

/* Its own image name, the way a service names the process a message is
 * about: OpenProcess by id, QueryFullProcessImageName, CloseHandle. */
static void say_self(void)
{
	HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, GetCurrentProcessId());
	static WCHAR path[4096]; /* (a build directory may be deeper than MAX_PATH) */
	DWORD size = 4096;
	const WCHAR *base = path;

	if (!h || !QueryFullProcessImageNameW(h, 0, path, &size)) {
		say("SELF failed err=%lu\n", (unsigned long)GetLastError());
		InterlockedIncrement(&failures);
	} else {
		for (const WCHAR *c = path; *c; c++)
			if (*c == L'/' || *c == L'\\')
				base = c + 1;
		say("SELF %ls\n", base);
	}
	if (h)
		CloseHandle(h);
}

static VOID WINAPI service_main_w(DWORD argc, LPWSTR *argv)
{
	char name[64];

	snprintf(name, sizeof(name), "%ls", argc > 0 ? argv[0] : L"");
	say("MAIN argc=%lu name=%s notify=%d\n", (unsigned long)argc, name,
	    getenv("NOTIFY_SOCKET") != NULL);
	say_self();
	status_handle = RegisterServiceCtrlHandlerExW(L"FltSvc", handler_ex, &context_word);
	if (!status_handle) {
		say("REGISTER failed err=%lu\n", (unsigned long)GetLastError());
		return;
	}
	report(SERVICE_START_PENDING, NO_ERROR, 0, 5000);
	if (mode_errors) {
		check_errors();
		return;
	}
	if (go_file) {
		say("STARTING\n");
		for (int i = 0; i < 3000 && GetFileAttributesA(go_file) == INVALID_FILE_ATTRIBUTES;
		     i++)
			Sleep(10);
	}
	report(SERVICE_RUNNING, NO_ERROR, 0, 0);
	log_event(EVENTLOG_INFORMATION_TYPE, L"started");
	say("READY\n");
	WaitForSingleObject(stop_event, INFINITE);
	log_event(EVENTLOG_INFORMATION_TYPE, L"stopped");
	report(SERVICE_STOPPED, NO_ERROR, 0, 0);
}

static VOID WINAPI service_main_a(DWORD argc, LPSTR *argv)
{
	say("MAIN argc=%lu name=%s\n", (unsigned long)argc, argc > 0 ? argv[0] : "");
	status_handle = RegisterServiceCtrlHandlerA("FltSvc", handler);
	if (!status_handle) {
		say("REGISTER failed err=%lu\n", (unsigned long)GetLastError());
		return;
	}
	report(SERVICE_START_PENDING, NO_ERROR, 0, 5000);
	report(SERVICE_RUNNING, NO_ERROR, 0, 0);
	say("READY\n");
	WaitForSingleObject(stop_event, INFINITE);
	report(SERVICE_STOPPED, NO_ERROR, 0, 0);
}

/* -install, as services do it. */
static int install(void)
{
	WCHAR path[MAX_PATH] = L"/usr/local/bin/win_svc";
	SERVICE_DESCRIPTIONW desc = { (LPWSTR)L"fltport test service" };
	SC_HANDLE scm, svc;

	scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT | SC_MANAGER_CREATE_SERVICE);
	if (!scm) {
		say("INSTALL OpenSCManager err=%lu\n", (unsigned long)GetLastError());
		return 1;
	}
	svc = CreateServiceW(scm, L"FltSvc", L"FltSvc", SERVICE_ALL_ACCESS,
			     SERVICE_WIN32_OWN_PROCESS, SERVICE_AUTO_START, SERVICE_ERROR_NORMAL,
			     path, NULL, NULL, NULL, NULL, NULL);
	if (!svc) {
		say("INSTALL CreateService err=%lu\n", (unsigned long)GetLastError());
		CloseServiceHandle(scm);
		return 1;
	}
	if (!ChangeServiceConfig2W(svc, SERVICE_CONFIG_DESCRIPTION, &desc))
		say("INSTALL ChangeServiceConfig2 err=%lu\n", (unsigned long)GetLastError());
	else
		say("INSTALL ok\n");
	CloseServiceHandle(svc);
	CloseServiceHandle(scm);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "run";
	SERVICE_TABLE_ENTRYW table_w[] = { { (LPWSTR)L"FltSvc", service_main_w }, { NULL, NULL } };
	SERVICE_TABLE_ENTRYA table_a[] = { { (LPSTR) "FltSvc", service_main_a }, { NULL, NULL } };
	BOOL ok;

	stop_event = CreateEventW(NULL, TRUE, FALSE, NULL);
	dispatcher_tid = GetCurrentThreadId();
	accepted = SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN | SERVICE_ACCEPT_PARAMCHANGE;
	if (strcmp(mode, "shutdown") == 0)
		accepted = SERVICE_ACCEPT_SHUTDOWN;
	else if (strcmp(mode, "nostop") == 0)
		accepted = SERVICE_ACCEPT_PARAMCHANGE;
	mode_errors = strcmp(mode, "errors") == 0;
	if (strcmp(mode, "install") == 0)
		return install();
	if (strcmp(mode, "slowstart") == 0 && argc > 2)
		go_file = argv[2];
	slow_param = strcmp(mode, "slowparam") == 0;
#ifndef _WIN32
	if (strcmp(mode, "systemd") == 0) {
		char pid[24];

		snprintf(pid, sizeof(pid), "%ld", (long)getpid());
		setenv("SYSTEMD_EXEC_PID", pid, 1);
		setenv("INVOCATION_ID", "0f5e206d39166a026384b6dc53ba5b85", 1);
		unsetenv("FLTPORT_SERVICE");
		execv("/proc/self/exe", (char *const[]){ argv[0], (char *)"run", NULL });
		say("EXEC failed\n");
		return 1;
	}
#endif

	ok = strcmp(mode, "ansi") == 0 ? StartServiceCtrlDispatcherA(table_a)
				       : StartServiceCtrlDispatcherW(table_w);
	if (!ok && GetLastError() == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
		SERVICE_STATUS_HANDLE h;
		DWORD err;

		SetLastError(0);
		h = RegisterServiceCtrlHandlerExW(L"FltSvc", handler_ex, NULL);
		err = GetLastError();
		say("CONSOLE reg=%d err=%lu\n", h != NULL, (unsigned long)err);
		return 3;
	}
	say("DISPATCHER ret=%d err=%lu failures=%ld\n", ok,
	    ok ? 0ul : (unsigned long)GetLastError(), (long)failures);
	if (ok && strcmp(mode, "again") == 0) {
		SetLastError(0);
		ok = StartServiceCtrlDispatcherW(table_w);
		say("AGAIN ret=%d err=%lu\n", ok, (unsigned long)GetLastError());
		return 0;
	}
	return ok ? 0 : 1;
}
