/*
 * fltport Windows layer: the service side of the Service Control Manager
 * API (winsvc.h; windows.h includes it unless NOSERVICE is defined).  A
 * Windows service — the user-mode half of most minifilters — starts the
 * same way here, under systemd or any service manager:
 *
 *   StartServiceCtrlDispatcher runs the table's service when a service
 *   manager started the process: FLTPORT_SERVICE=1 in the environment, or
 *   (without FLTPORT_SERVICE) systemd's SYSTEMD_EXEC_PID naming this process
 *   with NOTIFY_SOCKET or INVOCATION_ID set.  Otherwise it fails at once with
 *   ERROR_FAILED_SERVICE_CONTROLLER_CONNECT, as on Windows from a console,
 *   so a program's console fallback runs.  It takes NOTIFY_SOCKET and
 *   FLTPORT_SERVICE out of the environment: the service's children are not
 *   it.  ServiceMain runs on a new thread with the service name as its only
 *   argument; the handler runs on the thread that called
 *   StartServiceCtrlDispatcher, which returns TRUE once the service has
 *   reported SERVICE_STOPPED.  Once per process.  Several table entries: the
 *   one named by FLTPORT_SERVICE_NAME runs, else the first.
 *
 *   The service manager's requests are signals: SIGTERM (systemctl stop)
 *   and SIGINT are SERVICE_CONTROL_STOP when the service accepts it, else
 *   SERVICE_CONTROL_SHUTDOWN, else SERVICE_CONTROL_PRESHUTDOWN when it
 *   accepts that; one that comes while the service starts (START_PENDING,
 *   accepting none of them) waits until it reports another state; a service
 *   that accepts none ends by the signal.  SIGHUP (systemctl reload with
 *   ExecReload=kill -HUP $MAINPID) is SERVICE_CONTROL_PARAMCHANGE when
 *   accepted (reloads that come while one waits fold into it), else ignored,
 *   as the SCM refuses a control a service does not accept.  After a stop
 *   control or SERVICE_STOPPED, the three are ignored.  While the dispatcher
 *   runs, console control handlers get none of them.
 *
 *   SetServiceStatus also tells systemd (NOTIFY_SOCKET, for Type=notify):
 *   SERVICE_RUNNING is READY=1, SERVICE_STOP_PENDING STOPPING=1, a wait hint
 *   EXTEND_TIMEOUT_USEC, every state a STATUS= line.
 */
#ifndef FLTPORT_WINSVC_H
#define FLTPORT_WINSVC_H

#include "fltport_wintypes.h"

/* Service types (SERVICE_STATUS.dwServiceType) */
#define SERVICE_KERNEL_DRIVER 0x00000001
#define SERVICE_FILE_SYSTEM_DRIVER 0x00000002
#define SERVICE_WIN32_OWN_PROCESS 0x00000010
#define SERVICE_WIN32_SHARE_PROCESS 0x00000020
#define SERVICE_WIN32 (SERVICE_WIN32_OWN_PROCESS | SERVICE_WIN32_SHARE_PROCESS)
#define SERVICE_USER_SERVICE 0x00000040
#define SERVICE_USER_OWN_PROCESS (SERVICE_USER_SERVICE | SERVICE_WIN32_OWN_PROCESS)
#define SERVICE_USER_SHARE_PROCESS (SERVICE_USER_SERVICE | SERVICE_WIN32_SHARE_PROCESS)
#define SERVICE_INTERACTIVE_PROCESS 0x00000100

/* States (dwCurrentState) */
#define SERVICE_STOPPED 0x00000001
#define SERVICE_START_PENDING 0x00000002
#define SERVICE_STOP_PENDING 0x00000003
#define SERVICE_RUNNING 0x00000004
#define SERVICE_CONTINUE_PENDING 0x00000005
#define SERVICE_PAUSE_PENDING 0x00000006
#define SERVICE_PAUSED 0x00000007

/* Controls (a handler's dwControl) */
#define SERVICE_CONTROL_STOP 0x00000001
#define SERVICE_CONTROL_PAUSE 0x00000002
#define SERVICE_CONTROL_CONTINUE 0x00000003
#define SERVICE_CONTROL_INTERROGATE 0x00000004
#define SERVICE_CONTROL_SHUTDOWN 0x00000005
#define SERVICE_CONTROL_PARAMCHANGE 0x00000006
#define SERVICE_CONTROL_NETBINDADD 0x00000007
#define SERVICE_CONTROL_NETBINDREMOVE 0x00000008
#define SERVICE_CONTROL_NETBINDENABLE 0x00000009
#define SERVICE_CONTROL_NETBINDDISABLE 0x0000000A
#define SERVICE_CONTROL_DEVICEEVENT 0x0000000B
#define SERVICE_CONTROL_HARDWAREPROFILECHANGE 0x0000000C
#define SERVICE_CONTROL_POWEREVENT 0x0000000D
#define SERVICE_CONTROL_SESSIONCHANGE 0x0000000E
#define SERVICE_CONTROL_PRESHUTDOWN 0x0000000F
#define SERVICE_CONTROL_TIMECHANGE 0x00000010
#define SERVICE_CONTROL_TRIGGEREVENT 0x00000020
#define SERVICE_CONTROL_USERMODEREBOOT 0x00000040

/* Controls accepted (dwControlsAccepted) */
#define SERVICE_ACCEPT_STOP 0x00000001
#define SERVICE_ACCEPT_PAUSE_CONTINUE 0x00000002
#define SERVICE_ACCEPT_SHUTDOWN 0x00000004
#define SERVICE_ACCEPT_PARAMCHANGE 0x00000008
#define SERVICE_ACCEPT_NETBINDCHANGE 0x00000010
#define SERVICE_ACCEPT_HARDWAREPROFILECHANGE 0x00000020
#define SERVICE_ACCEPT_POWEREVENT 0x00000040
#define SERVICE_ACCEPT_SESSIONCHANGE 0x00000080
#define SERVICE_ACCEPT_PRESHUTDOWN 0x00000100
#define SERVICE_ACCEPT_TIMECHANGE 0x00000200
#define SERVICE_ACCEPT_TRIGGEREVENT 0x00000400
#define SERVICE_ACCEPT_USERMODEREBOOT 0x00000800

typedef struct _SERVICE_STATUS {
	DWORD dwServiceType;
	DWORD dwCurrentState;
	DWORD dwControlsAccepted;
	DWORD dwWin32ExitCode;
	DWORD dwServiceSpecificExitCode;
	DWORD dwCheckPoint;
	DWORD dwWaitHint;
} SERVICE_STATUS, *LPSERVICE_STATUS;

DECLARE_HANDLE(SERVICE_STATUS_HANDLE);

typedef VOID WINAPI SERVICE_MAIN_FUNCTIONW(DWORD dwNumServicesArgs, LPWSTR *lpServiceArgVectors);
typedef VOID WINAPI SERVICE_MAIN_FUNCTIONA(DWORD dwNumServicesArgs, LPSTR *lpServiceArgVectors);
typedef SERVICE_MAIN_FUNCTIONW *LPSERVICE_MAIN_FUNCTIONW;
typedef SERVICE_MAIN_FUNCTIONA *LPSERVICE_MAIN_FUNCTIONA;

typedef struct _SERVICE_TABLE_ENTRYA {
	LPSTR lpServiceName;
	LPSERVICE_MAIN_FUNCTIONA lpServiceProc;
} SERVICE_TABLE_ENTRYA, *LPSERVICE_TABLE_ENTRYA;

typedef struct _SERVICE_TABLE_ENTRYW {
	LPWSTR lpServiceName;
	LPSERVICE_MAIN_FUNCTIONW lpServiceProc;
} SERVICE_TABLE_ENTRYW, *LPSERVICE_TABLE_ENTRYW;

typedef VOID WINAPI HANDLER_FUNCTION(DWORD dwControl);
typedef DWORD WINAPI HANDLER_FUNCTION_EX(DWORD dwControl, DWORD dwEventType, LPVOID lpEventData,
					 LPVOID lpContext);
typedef HANDLER_FUNCTION *LPHANDLER_FUNCTION;
typedef HANDLER_FUNCTION_EX *LPHANDLER_FUNCTION_EX;

/* The table ends at its first entry without a name or a routine.  No
 * service manager: FALSE, ERROR_FAILED_SERVICE_CONTROLLER_CONNECT; called
 * a second time in the process: FALSE, ERROR_SERVICE_ALREADY_RUNNING; no entry: FALSE,
 * ERROR_INVALID_PARAMETER; FLTPORT_SERVICE_NAME naming no entry: FALSE,
 * ERROR_SERVICE_NOT_IN_EXE.  It may be called from any thread; the handler
 * runs on that thread.  It returns once SERVICE_STOPPED is reported, whether
 * or not ServiceMain has returned. */
FLTPORT_WINAPI BOOL StartServiceCtrlDispatcherA(const SERVICE_TABLE_ENTRYA *lpServiceStartTable);
FLTPORT_WINAPI BOOL StartServiceCtrlDispatcherW(const SERVICE_TABLE_ENTRYW *lpServiceStartTable);

/* Called by ServiceMain.  The name is not checked when the table has one
 * entry (as Windows does not for SERVICE_WIN32_OWN_PROCESS); with several,
 * a name not in it: NULL, ERROR_SERVICE_NOT_IN_EXE.  No dispatcher running:
 * NULL, ERROR_SERVICE_NOT_IN_EXE.  A NULL handler: NULL,
 * ERROR_INVALID_PARAMETER.  A second registration replaces the handler. */
FLTPORT_WINAPI SERVICE_STATUS_HANDLE RegisterServiceCtrlHandlerA(LPCSTR lpServiceName,
								 LPHANDLER_FUNCTION lpHandlerProc);
FLTPORT_WINAPI SERVICE_STATUS_HANDLE RegisterServiceCtrlHandlerW(LPCWSTR lpServiceName,
								 LPHANDLER_FUNCTION lpHandlerProc);
FLTPORT_WINAPI SERVICE_STATUS_HANDLE RegisterServiceCtrlHandlerExA(
	LPCSTR lpServiceName, LPHANDLER_FUNCTION_EX lpHandlerProc, LPVOID lpContext);
FLTPORT_WINAPI SERVICE_STATUS_HANDLE RegisterServiceCtrlHandlerExW(
	LPCWSTR lpServiceName, LPHANDLER_FUNCTION_EX lpHandlerProc, LPVOID lpContext);

/* A handle not from RegisterServiceCtrlHandler*: FALSE, ERROR_INVALID_HANDLE;
 * a NULL status: FALSE, ERROR_INVALID_ADDRESS; a state outside 1..7, an
 * unknown accept bit or a type MS-SCMR rejects: FALSE, ERROR_INVALID_DATA.
 * After STOP, SHUTDOWN or PRESHUTDOWN no further control is sent. */
FLTPORT_WINAPI BOOL SetServiceStatus(SERVICE_STATUS_HANDLE hServiceStatus,
				     LPSERVICE_STATUS lpServiceStatus);

/* ---- the SCM's client side: not provided ----
 * There is no service database to install into or query: a service is
 * installed with a unit file (docs/PORTING.md, "Services").  These compile
 * so that a service's -install/-remove code builds; OpenSCManager fails with
 * ERROR_CALL_NOT_IMPLEMENTED ("This function is not supported on this
 * system."), and every call given an SC_HANDLE, which none can be, with
 * ERROR_INVALID_HANDLE. */
DECLARE_HANDLE(SC_HANDLE);
typedef SC_HANDLE *LPSC_HANDLE;

#define SERVICES_ACTIVE_DATABASEA "ServicesActive"
#define SERVICES_ACTIVE_DATABASEW L"ServicesActive"
#define SERVICES_FAILED_DATABASEA "ServicesFailed"
#define SERVICES_FAILED_DATABASEW L"ServicesFailed"
#define SC_MANAGER_CONNECT 0x0001
#define SC_MANAGER_CREATE_SERVICE 0x0002
#define SC_MANAGER_ENUMERATE_SERVICE 0x0004
#define SC_MANAGER_LOCK 0x0008
#define SC_MANAGER_QUERY_LOCK_STATUS 0x0010
#define SC_MANAGER_MODIFY_BOOT_CONFIG 0x0020
#define SC_MANAGER_ALL_ACCESS 0xF003F
#define SERVICE_QUERY_CONFIG 0x0001
#define SERVICE_CHANGE_CONFIG 0x0002
#define SERVICE_QUERY_STATUS 0x0004
#define SERVICE_ENUMERATE_DEPENDENTS 0x0008
#define SERVICE_START 0x0010
#define SERVICE_STOP 0x0020
#define SERVICE_PAUSE_CONTINUE 0x0040
#define SERVICE_INTERROGATE 0x0080
#define SERVICE_USER_DEFINED_CONTROL 0x0100
#define SERVICE_ALL_ACCESS 0xF01FF
#define SERVICE_BOOT_START 0x00000000
#define SERVICE_SYSTEM_START 0x00000001
#define SERVICE_AUTO_START 0x00000002
#define SERVICE_DEMAND_START 0x00000003
#define SERVICE_DISABLED 0x00000004
#define SERVICE_ERROR_IGNORE 0x00000000
#define SERVICE_ERROR_NORMAL 0x00000001
#define SERVICE_ERROR_SEVERE 0x00000002
#define SERVICE_ERROR_CRITICAL 0x00000003
#define SERVICE_NO_CHANGE 0xFFFFFFFF
#define SERVICE_CONFIG_DESCRIPTION 1
#define SERVICE_CONFIG_FAILURE_ACTIONS 2
#define SERVICE_CONFIG_DELAYED_AUTO_START_INFO 3
#define SERVICE_CONFIG_FAILURE_ACTIONS_FLAG 4
#define SERVICE_CONFIG_SERVICE_SID_INFO 5
#define SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO 6
#define SERVICE_CONFIG_PRESHUTDOWN_INFO 7

typedef enum _SC_STATUS_TYPE { SC_STATUS_PROCESS_INFO = 0 } SC_STATUS_TYPE;

typedef struct _SERVICE_STATUS_PROCESS {
	DWORD dwServiceType;
	DWORD dwCurrentState;
	DWORD dwControlsAccepted;
	DWORD dwWin32ExitCode;
	DWORD dwServiceSpecificExitCode;
	DWORD dwCheckPoint;
	DWORD dwWaitHint;
	DWORD dwProcessId;
	DWORD dwServiceFlags;
} SERVICE_STATUS_PROCESS, *LPSERVICE_STATUS_PROCESS;

typedef struct _SERVICE_DESCRIPTIONA {
	LPSTR lpDescription;
} SERVICE_DESCRIPTIONA, *LPSERVICE_DESCRIPTIONA;
typedef struct _SERVICE_DESCRIPTIONW {
	LPWSTR lpDescription;
} SERVICE_DESCRIPTIONW, *LPSERVICE_DESCRIPTIONW;

typedef enum _SC_ACTION_TYPE {
	SC_ACTION_NONE = 0,
	SC_ACTION_RESTART = 1,
	SC_ACTION_REBOOT = 2,
	SC_ACTION_RUN_COMMAND = 3,
	SC_ACTION_OWN_RESTART = 4
} SC_ACTION_TYPE;
typedef struct _SC_ACTION {
	SC_ACTION_TYPE Type;
	DWORD Delay;
} SC_ACTION, *LPSC_ACTION;
typedef struct _SERVICE_FAILURE_ACTIONSA {
	DWORD dwResetPeriod;
	LPSTR lpRebootMsg;
	LPSTR lpCommand;
	DWORD cActions;
	SC_ACTION *lpsaActions;
} SERVICE_FAILURE_ACTIONSA, *LPSERVICE_FAILURE_ACTIONSA;
typedef struct _SERVICE_FAILURE_ACTIONSW {
	DWORD dwResetPeriod;
	LPWSTR lpRebootMsg;
	LPWSTR lpCommand;
	DWORD cActions;
	SC_ACTION *lpsaActions;
} SERVICE_FAILURE_ACTIONSW, *LPSERVICE_FAILURE_ACTIONSW;
typedef struct _SERVICE_FAILURE_ACTIONS_FLAG {
	BOOL fFailureActionsOnNonCrashFailures;
} SERVICE_FAILURE_ACTIONS_FLAG, *LPSERVICE_FAILURE_ACTIONS_FLAG;
typedef struct _SERVICE_DELAYED_AUTO_START_INFO {
	BOOL fDelayedAutostart;
} SERVICE_DELAYED_AUTO_START_INFO, *LPSERVICE_DELAYED_AUTO_START_INFO;

FLTPORT_WINAPI SC_HANDLE OpenSCManagerA(LPCSTR lpMachineName, LPCSTR lpDatabaseName,
					DWORD dwDesiredAccess);
FLTPORT_WINAPI SC_HANDLE OpenSCManagerW(LPCWSTR lpMachineName, LPCWSTR lpDatabaseName,
					DWORD dwDesiredAccess);
FLTPORT_WINAPI SC_HANDLE OpenServiceA(SC_HANDLE hSCManager, LPCSTR lpServiceName,
				      DWORD dwDesiredAccess);
FLTPORT_WINAPI SC_HANDLE OpenServiceW(SC_HANDLE hSCManager, LPCWSTR lpServiceName,
				      DWORD dwDesiredAccess);
FLTPORT_WINAPI SC_HANDLE CreateServiceA(SC_HANDLE hSCManager, LPCSTR lpServiceName,
					LPCSTR lpDisplayName, DWORD dwDesiredAccess,
					DWORD dwServiceType, DWORD dwStartType,
					DWORD dwErrorControl, LPCSTR lpBinaryPathName,
					LPCSTR lpLoadOrderGroup, LPDWORD lpdwTagId,
					LPCSTR lpDependencies, LPCSTR lpServiceStartName,
					LPCSTR lpPassword);
FLTPORT_WINAPI SC_HANDLE CreateServiceW(SC_HANDLE hSCManager, LPCWSTR lpServiceName,
					LPCWSTR lpDisplayName, DWORD dwDesiredAccess,
					DWORD dwServiceType, DWORD dwStartType,
					DWORD dwErrorControl, LPCWSTR lpBinaryPathName,
					LPCWSTR lpLoadOrderGroup, LPDWORD lpdwTagId,
					LPCWSTR lpDependencies, LPCWSTR lpServiceStartName,
					LPCWSTR lpPassword);
FLTPORT_WINAPI BOOL ChangeServiceConfigA(SC_HANDLE hService, DWORD dwServiceType, DWORD dwStartType,
					 DWORD dwErrorControl, LPCSTR lpBinaryPathName,
					 LPCSTR lpLoadOrderGroup, LPDWORD lpdwTagId,
					 LPCSTR lpDependencies, LPCSTR lpServiceStartName,
					 LPCSTR lpPassword, LPCSTR lpDisplayName);
FLTPORT_WINAPI BOOL ChangeServiceConfigW(SC_HANDLE hService, DWORD dwServiceType, DWORD dwStartType,
					 DWORD dwErrorControl, LPCWSTR lpBinaryPathName,
					 LPCWSTR lpLoadOrderGroup, LPDWORD lpdwTagId,
					 LPCWSTR lpDependencies, LPCWSTR lpServiceStartName,
					 LPCWSTR lpPassword, LPCWSTR lpDisplayName);
FLTPORT_WINAPI BOOL ChangeServiceConfig2A(SC_HANDLE hService, DWORD dwInfoLevel, LPVOID lpInfo);
FLTPORT_WINAPI BOOL ChangeServiceConfig2W(SC_HANDLE hService, DWORD dwInfoLevel, LPVOID lpInfo);
FLTPORT_WINAPI BOOL StartServiceA(SC_HANDLE hService, DWORD dwNumServiceArgs,
				  LPCSTR *lpServiceArgVectors);
FLTPORT_WINAPI BOOL StartServiceW(SC_HANDLE hService, DWORD dwNumServiceArgs,
				  LPCWSTR *lpServiceArgVectors);
FLTPORT_WINAPI BOOL ControlService(SC_HANDLE hService, DWORD dwControl,
				   LPSERVICE_STATUS lpServiceStatus);
FLTPORT_WINAPI BOOL QueryServiceStatus(SC_HANDLE hService, LPSERVICE_STATUS lpServiceStatus);
FLTPORT_WINAPI BOOL QueryServiceStatusEx(SC_HANDLE hService, SC_STATUS_TYPE InfoLevel,
					 LPBYTE lpBuffer, DWORD cbBufSize, LPDWORD pcbBytesNeeded);
FLTPORT_WINAPI BOOL DeleteService(SC_HANDLE hService);
FLTPORT_WINAPI BOOL CloseServiceHandle(SC_HANDLE hSCObject);

#ifdef UNICODE
#define SERVICE_TABLE_ENTRY SERVICE_TABLE_ENTRYW
#define LPSERVICE_TABLE_ENTRY LPSERVICE_TABLE_ENTRYW
#define SERVICE_MAIN_FUNCTION SERVICE_MAIN_FUNCTIONW
#define LPSERVICE_MAIN_FUNCTION LPSERVICE_MAIN_FUNCTIONW
#define StartServiceCtrlDispatcher StartServiceCtrlDispatcherW
#define RegisterServiceCtrlHandler RegisterServiceCtrlHandlerW
#define RegisterServiceCtrlHandlerEx RegisterServiceCtrlHandlerExW
#define SERVICES_ACTIVE_DATABASE SERVICES_ACTIVE_DATABASEW
#define SERVICES_FAILED_DATABASE SERVICES_FAILED_DATABASEW
#define SERVICE_DESCRIPTION SERVICE_DESCRIPTIONW
#define LPSERVICE_DESCRIPTION LPSERVICE_DESCRIPTIONW
#define SERVICE_FAILURE_ACTIONS SERVICE_FAILURE_ACTIONSW
#define LPSERVICE_FAILURE_ACTIONS LPSERVICE_FAILURE_ACTIONSW
#define OpenSCManager OpenSCManagerW
#define OpenService OpenServiceW
#define CreateService CreateServiceW
#define ChangeServiceConfig ChangeServiceConfigW
#define ChangeServiceConfig2 ChangeServiceConfig2W
#define StartService StartServiceW
#else
#define SERVICE_TABLE_ENTRY SERVICE_TABLE_ENTRYA
#define LPSERVICE_TABLE_ENTRY LPSERVICE_TABLE_ENTRYA
#define SERVICE_MAIN_FUNCTION SERVICE_MAIN_FUNCTIONA
#define LPSERVICE_MAIN_FUNCTION LPSERVICE_MAIN_FUNCTIONA
#define StartServiceCtrlDispatcher StartServiceCtrlDispatcherA
#define RegisterServiceCtrlHandler RegisterServiceCtrlHandlerA
#define RegisterServiceCtrlHandlerEx RegisterServiceCtrlHandlerExA
#define SERVICES_ACTIVE_DATABASE SERVICES_ACTIVE_DATABASEA
#define SERVICES_FAILED_DATABASE SERVICES_FAILED_DATABASEA
#define SERVICE_DESCRIPTION SERVICE_DESCRIPTIONA
#define LPSERVICE_DESCRIPTION LPSERVICE_DESCRIPTIONA
#define SERVICE_FAILURE_ACTIONS SERVICE_FAILURE_ACTIONSA
#define LPSERVICE_FAILURE_ACTIONS LPSERVICE_FAILURE_ACTIONSA
#define OpenSCManager OpenSCManagerA
#define OpenService OpenServiceA
#define CreateService CreateServiceA
#define ChangeServiceConfig ChangeServiceConfigA
#define ChangeServiceConfig2 ChangeServiceConfig2A
#define StartService StartServiceA
#endif

#endif
