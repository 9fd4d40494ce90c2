/*
 * The Windows API of fltport between two processes (issue 3, point 1).
 *
 * This process is the FILTER, written only with fltkernel.h names
 * (FltCreateCommunicationPort, FltSendMessage, FltCloseClientPort, ...).
 * The user side is tests/compat/clients/win_peer.c, a Windows-style program
 * (windows.h + fltuser.h only; it also cross-compiles with mingw-w64), driven
 * one command per stdin line and answering one line per command.  A second
 * Windows-style filter in its own process (clients/win_filter.c) is used
 * where the filter side has to die.
 *
 * Every test names the SPEC-ports.md section it proves and asserts the exact
 * values of §4/§8.  Every wait is bounded; synchronisation is on the peer's
 * output lines, never on sleeps.  Every test ends with
 * FltportUnloadFilter(NULL).
 */
#ifdef FP_PLAIN
#include "plain_criterion.h" /* the TSan pass builds this suite without Criterion */
#else
#include <criterion/criterion.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include <windows.h>
#include <fltuser.h>
#include <fltkernel.h>
#include <ntstatus.h>
#include <winioctl.h>

#define LINE_WAIT_MS 15000
#define MAXC 8

/* ---- shared layouts and values, checked at compile time (SPEC §3.6, §4,
 * §8.9, §8.19, §8.20, §8.28) ---- */

_Static_assert(sizeof(FILTER_MESSAGE_HEADER) == 16, "FILTER_MESSAGE_HEADER is 16 bytes");
_Static_assert(offsetof(FILTER_MESSAGE_HEADER, ReplyLength) == 0, "ReplyLength at 0");
_Static_assert(offsetof(FILTER_MESSAGE_HEADER, MessageId) == 8, "MessageId at 8");
_Static_assert(sizeof(FILTER_REPLY_HEADER) == 16, "FILTER_REPLY_HEADER is 16 bytes");
_Static_assert(offsetof(FILTER_REPLY_HEADER, Status) == 0, "Status at 0");
_Static_assert(offsetof(FILTER_REPLY_HEADER, MessageId) == 8, "MessageId at 8");
_Static_assert(sizeof(OVERLAPPED) == 32, "OVERLAPPED: Windows x64 layout");
_Static_assert(offsetof(OVERLAPPED, Internal) == 0, "Internal at 0");
_Static_assert(offsetof(OVERLAPPED, InternalHigh) == 8, "InternalHigh at 8");
_Static_assert(offsetof(OVERLAPPED, Offset) == 16, "Offset at 16");
_Static_assert(offsetof(OVERLAPPED, Pointer) == 16, "Pointer at 16");
_Static_assert(offsetof(OVERLAPPED, hEvent) == 24, "hEvent at 24");
_Static_assert(sizeof(ULONG) == 4 && sizeof(LONG) == 4 && sizeof(DWORD) == 4, "32-bit");
_Static_assert(sizeof(HRESULT) == 4 && sizeof(NTSTATUS) == 4, "32-bit HRESULT/NTSTATUS");
_Static_assert(sizeof(WORD) == 2 && sizeof(USHORT) == 2 && sizeof(BOOLEAN) == 1, "widths");
_Static_assert(sizeof(ULONGLONG) == 8 && sizeof(LARGE_INTEGER) == 8, "64-bit");
_Static_assert(sizeof(ULONG_PTR) == sizeof(void *) && sizeof(HANDLE) == sizeof(void *), "ptr");
_Static_assert(sizeof(WCHAR) == sizeof(wchar_t), "WCHAR is wchar_t (SPEC §8.24)");

#pragma pack(push, 1)
typedef struct {
	FILTER_REPLY_HEADER ReplyHeader;
	UCHAR Verdict;
} PACKED_REPLY;
#pragma pack(pop)
typedef struct {
	FILTER_REPLY_HEADER ReplyHeader;
	UCHAR Verdict;
} UNPACKED_REPLY;
_Static_assert(sizeof(PACKED_REPLY) == 17, "the packed reply is 16 + 1 (SPEC §3.6)");
_Static_assert(sizeof(UNPACKED_REPLY) == 24, "the padding pitfall: 24, not 17 (SPEC §3.6)");

/* §4 values, §8.20 names. */
_Static_assert(S_OK == 0 && S_FALSE == 1, "S_OK, S_FALSE");
_Static_assert(E_FAIL == (HRESULT)0x80004005u && E_NOTIMPL == (HRESULT)0x80004001u, "E_*");
_Static_assert(E_OUTOFMEMORY == (HRESULT)0x8007000Eu && E_INVALIDARG == (HRESULT)0x80070057u,
	       "E_*");
_Static_assert(E_HANDLE == (HRESULT)0x80070006u && E_ACCESSDENIED == (HRESULT)0x80070005u, "E_*");
_Static_assert(STATUS_TIMEOUT == 0x102 && STATUS_PENDING == 0x103, "success codes");
_Static_assert(STATUS_BUFFER_OVERFLOW == (NTSTATUS)0x80000005u, "BUFFER_OVERFLOW");
_Static_assert(STATUS_FLT_NO_WAITER_FOR_REPLY == (NTSTATUS)0xC01C0020u, "NO_WAITER");
_Static_assert(STATUS_CONNECTION_COUNT_LIMIT == (NTSTATUS)0xC0000246u, "COUNT_LIMIT");
_Static_assert(STATUS_BUFFER_OVERFLOW < 0 && STATUS_ACCESS_DENIED < 0, "negative NTSTATUS");
_Static_assert(NT_SUCCESS(STATUS_TIMEOUT) && !NT_SUCCESS(STATUS_BUFFER_OVERFLOW), "NT_SUCCESS");
_Static_assert(HRESULT_FROM_WIN32(ERROR_IO_PENDING) == (HRESULT)0x800703E5u, "IO_PENDING");
_Static_assert(HRESULT_FROM_WIN32(ERROR_ABANDONED_WAIT_0) == (HRESULT)0x800702DFu, "735");
_Static_assert(HRESULT_FROM_WIN32(0) == 0 && FAILED(E_FAIL) && SUCCEEDED(S_FALSE), "§8.19");
_Static_assert(IS_ERROR(E_FAIL) && !IS_ERROR(S_FALSE), "IS_ERROR on a 32-bit HRESULT");
_Static_assert(ERROR_FLT_NO_WAITER_FOR_REPLY == (HRESULT)0x801F0020u, "0x801F0020");
_Static_assert(WAIT_TIMEOUT == 258 && WAIT_OBJECT_0 == 0 && ERROR_NOT_FOUND == 1168, "waits");
_Static_assert(ERROR_OPERATION_ABORTED == 995 && ERROR_INSUFFICIENT_BUFFER == 122, "errors");
_Static_assert(FLT_PORT_FLAG_SYNC_HANDLE == 1 && FLT_PORT_CONTEXT_MAX == 0xFFE8, "§3.1");
_Static_assert(FLT_PORT_CONNECT == 1 && FLT_PORT_ALL_ACCESS == 0x001F0001u, "§2.6");

/* ---- payloads ---- */

static void fill_pattern(void *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		((unsigned char *)p)[i] = tu_pattern_byte(i, seed);
}

static const char *hexs(const void *p, size_t n)
{
	const unsigned char *b = p;
	char *out = tu_scratch();

	if (n > 64)
		n = 64;
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	out[2 * n] = '\0';
	if (n == 0)
		strcpy(out, "-");
	return out;
}

static HRESULT hr_of(const char *line)
{
	return (HRESULT)(uint32_t)strtoul(tu_field(line, "hr"), NULL, 0);
}

#define ASSERT_HR(line, want)                                                 \
	cr_assert_eq(hr_of(line), (HRESULT)(want), "want hr=0x%08X, got: %s", \
		     (unsigned)(HRESULT)(want), (line))
#define ASSERT_FIELD(line, key, want)                                                         \
	cr_assert_eq(tu_field_num((line), (key)), (long long)(want), "want %s=%lld, got: %s", \
		     (key), (long long)(want), (line))

/* ---- the filter side: fltkernel.h only ---- */

static struct {
	pthread_mutex_t lock;
	PFLT_PORT server;
	PFLT_PORT clients[MAXC];
	int nconn, ndisc, disc_of[MAXC];
	NTSTATUS connect_status;
	PVOID server_cookie_seen;
	unsigned char ctx[0x10000];
	ULONG ctx_len;
	bool ctx_null;
	FLTPORT_CLIENT_INFO info[MAXC];
	NTSTATUS info_status[MAXC];
	/* MessageNotify */
	NTSTATUS msg_status;
	ULONG msg_ret;
	int nmsg;
	ULONG in_len, out_len;
	bool in_null, out_null;
	unsigned char in[256];
	uint32_t in_sum;
} g = { .lock = PTHREAD_MUTEX_INITIALIZER };

static NTSTATUS on_connect(PFLT_PORT client, PVOID server_cookie, PVOID ctx, ULONG ctx_len,
			   PVOID *conn_cookie)
{
	NTSTATUS st;

	pthread_mutex_lock(&g.lock);
	g.server_cookie_seen = server_cookie;
	g.ctx_null = ctx == NULL;
	g.ctx_len = ctx_len;
	if (ctx && ctx_len <= sizeof(g.ctx))
		memcpy(g.ctx, ctx, ctx_len); /* a kernel copy, valid only now (SPEC §2.2) */
	st = g.connect_status;
	if (NT_SUCCESS(st)) {
		if (g.nconn >= MAXC) {
			st = STATUS_INSUFFICIENT_RESOURCES;
		} else {
			int i = g.nconn++;

			g.clients[i] = client;
			g.info_status[i] = FltportGetClientInfo(client, &g.info[i]);
			*conn_cookie = (PVOID)(intptr_t)(i + 1);
		}
	}
	pthread_mutex_unlock(&g.lock);
	return st;
}

static VOID on_disconnect(PVOID conn_cookie)
{
	int i = (int)(intptr_t)conn_cookie - 1;

	/* The usual pattern (SPEC §2.2); before the counters, so that a test
	 * that saw the count may look at the variable. */
	if (i >= 0 && i < MAXC)
		FltCloseClientPort(NULL, &g.clients[i]);
	pthread_mutex_lock(&g.lock);
	g.ndisc++;
	if (i >= 0 && i < MAXC)
		g.disc_of[i]++;
	pthread_mutex_unlock(&g.lock);
}

static NTSTATUS on_message(PVOID cookie, PVOID in, ULONG in_len, PVOID out, ULONG out_len,
			   PULONG ret)
{
	ULONG n;
	NTSTATUS st;

	(void)cookie;
	pthread_mutex_lock(&g.lock);
	g.nmsg++;
	g.in_null = in == NULL;
	g.in_len = in_len;
	if (in)
		memcpy(g.in, in, in_len < sizeof(g.in) ? in_len : sizeof(g.in));
	g.in_sum = in ? tu_fnv1a32(in, in_len) : 0;
	g.out_null = out == NULL;
	g.out_len = out_len;
	n = g.msg_ret < out_len ? g.msg_ret : out_len;
	st = g.msg_status;
	pthread_mutex_unlock(&g.lock);
	if (out && n)
		fill_pattern(out, n, 9);
	*ret = out ? n : 0;
	return st;
}

/* Set a field the callbacks read (on library threads): under the lock. */
#define SET_G(field, value)                    \
	do {                                   \
		pthread_mutex_lock(&g.lock);   \
		(field) = (value);             \
		pthread_mutex_unlock(&g.lock); \
	} while (0)

static int get_int(int *p)
{
	int v;

	pthread_mutex_lock(&g.lock);
	v = *p;
	pthread_mutex_unlock(&g.lock);
	return v;
}

struct int_at_least {
	int *p;
	int n;
};

static bool int_reached(void *arg)
{
	struct int_at_least *w = arg;

	return get_int(w->p) >= w->n;
}

/* Waits (bounded) until *p >= n. */
static bool wait_int(int *p, int n, int ms)
{
	struct int_at_least w = { p, n };

	return tu_wait_until(int_reached, &w, ms);
}

/* L"\\" + name, in static storage (one of four). */
static PCWSTR wname(const char *name)
{
	static WCHAR bufs[4][256];
	static unsigned k;
	WCHAR *w = bufs[k++ % 4];
	size_t i;

	w[0] = L'\\';
	for (i = 0; name[i] && i + 2 < 256; i++)
		w[i + 1] = (WCHAR)(unsigned char)name[i];
	w[i + 1] = 0;
	return w;
}

/* FltCreateCommunicationPort the way a minifilter does it. */
static NTSTATUS create_port(PCWSTR name, PFLT_PORT *out, PFLT_MESSAGE_NOTIFY mn, LONG max,
			    bool everyone, ULONG attributes)
{
	UNICODE_STRING uname;
	OBJECT_ATTRIBUTES oa;
	PSECURITY_DESCRIPTOR sd = NULL;
	NTSTATUS st;

	st = FltBuildDefaultSecurityDescriptor(&sd, FLT_PORT_ALL_ACCESS);
	cr_assert_eq(st, STATUS_SUCCESS, "FltBuildDefaultSecurityDescriptor: 0x%08X", (unsigned)st);
	if (everyone) {
		st = RtlSetDaclSecurityDescriptor(sd, TRUE, NULL, FALSE);
		cr_assert_eq(st, STATUS_SUCCESS, "RtlSetDaclSecurityDescriptor: 0x%08X",
			     (unsigned)st);
	}
	RtlInitUnicodeString(&uname, name);
	InitializeObjectAttributes(&oa, &uname, attributes, NULL, sd);
	st = FltCreateCommunicationPort(NULL, out, &oa, &g, on_connect, on_disconnect, mn, max);
	FltFreeSecurityDescriptor(sd);
	return st;
}

/* A private port directory, a unique name, and a port open to everyone. */
static const char *setup_port(PFLT_MESSAGE_NOTIFY mn, LONG max, bool everyone)
{
	const char *name;
	NTSTATUS st;

	tu_private_dir();
	name = tu_port_name("cw");
	st = create_port(wname(name), &g.server, mn, max, everyone,
			 OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE);
	cr_assert_eq(st, STATUS_SUCCESS, "FltCreateCommunicationPort: 0x%08X", (unsigned)st);
	return name;
}

/* ---- the user side: a Windows-style program driven over stdin ---- */

struct peer {
	struct tu_proc p;
	int cmd; /* its stdin */
	long pid;
	char line[4096];
};

/* Set to capture the peer's stderr along with its stdout. */
static bool peer_merge_stderr;

static void peer_start_prog(struct peer *pe, const char *prog, const char *const *args)
{
	char path[512];
	const char *argv[16];
	int in[2], out[2];
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/%s", FP_HELPER_DIR, prog);
	argv[n++] = path;
	for (; args && args[n - 1] && n < 15; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	fflush(NULL);
	pe->p.pid = fork();
	cr_assert_geq(pe->p.pid, 0, "fork: %s", strerror(errno));
	if (pe->p.pid == 0) {
		if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0)
			_exit(126);
		if (peer_merge_stderr && dup2(out[1], STDERR_FILENO) < 0)
			_exit(126);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	pe->cmd = in[1];
	pe->p.out = out[0];
	cr_assert(tu_expect(&pe->p, "READY", pe->line, sizeof(pe->line), LINE_WAIT_MS),
		  "%s did not start (last: %s)", prog, pe->line);
	pe->pid = (long)tu_field_num(pe->line, "pid");
}

static void peer_start(struct peer *pe, const char *const *args)
{
	peer_start_prog(pe, "win_peer", args);
}

static void peer_cmd(struct peer *pe, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void peer_cmd(struct peer *pe, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	cr_assert(n > 0 && n < (int)sizeof(buf) - 1);
	buf[n++] = '\n';
	cr_assert_eq(write(pe->cmd, buf, (size_t)n), n, "peer command pipe: %s", strerror(errno));
}

/* The next line starting with prefix (bounded). */
static const char *peer_expect(struct peer *pe, const char *prefix)
{
	cr_assert(tu_expect(&pe->p, prefix, pe->line, sizeof(pe->line), LINE_WAIT_MS),
		  "no '%s' line from the peer (last: %s)", prefix, pe->line);
	return pe->line;
}

/* Command and its one answer line. */
static const char *peer_do(struct peer *pe, const char *prefix, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static const char *peer_do(struct peer *pe, const char *prefix, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	peer_cmd(pe, "%s", buf);
	return peer_expect(pe, prefix);
}

/* QUIT, then the exit code must be 0. */
static void peer_end(struct peer *pe)
{
	int rc;

	peer_cmd(pe, "QUIT");
	close(pe->cmd);
	rc = tu_wait(&pe->p, 10000);
	cr_assert_eq(rc, 0, "peer exit code %d", rc);
}

/* ---- FltSendMessage on a thread ---- */

struct sendop {
	PFLT_PORT *var;
	unsigned char msg[1024];
	ULONG len;
	bool want_reply;
	unsigned char reply[1024];
	ULONG rlen;
	bool has_timeout;
	LARGE_INTEGER timeout;
	NTSTATUS st;
	int64_t ms;
	pthread_t th;
};

static void *send_main(void *arg)
{
	struct sendop *s = arg;
	int64_t t0 = tu_now_ms();

	s->st = FltSendMessage(NULL, s->var, s->msg, s->len, s->want_reply ? s->reply : NULL,
			       s->want_reply ? &s->rlen : NULL,
			       s->has_timeout ? &s->timeout : NULL);
	s->ms = tu_now_ms() - t0;
	return NULL;
}

/* A send of `len` pattern bytes (seed) through the variable, with a reply
 * capacity (rcap < 0: no reply buffer) and a timeout in 100 ns units. */
static void send_init(struct sendop *s, PFLT_PORT *var, size_t len, unsigned seed, long rcap,
		      LONGLONG timeout100ns)
{
	memset(s, 0, sizeof(*s));
	s->var = var;
	s->len = (ULONG)len;
	fill_pattern(s->msg, len, seed);
	s->want_reply = rcap >= 0;
	s->rlen = rcap >= 0 ? (ULONG)rcap : 0;
	memset(s->reply, 0xEE, sizeof(s->reply));
	s->has_timeout = true;
	s->timeout.QuadPart = timeout100ns;
}

static void send_start(struct sendop *s)
{
	cr_assert_eq(pthread_create(&s->th, NULL, send_main, s), 0);
}

static void send_join(struct sendop *s)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;
	cr_assert_eq(pthread_timedjoin_np(s->th, NULL, &ts), 0, "FltSendMessage did not return");
}

static void finish(void)
{
	FltportUnloadFilter(NULL);
}

/* ======================================================================
 * Connect
 * ====================================================================== */

/* SPEC §3.1, §8.10: no such port → 0x80070002, *hPort = INVALID_HANDLE_VALUE. */
Test(connect, not_found, .timeout = 60)
{
	struct peer pe;

	tu_private_dir();
	peer_start(&pe, NULL);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", tu_port_name("nobody"));
	ASSERT_HR(pe.line, 0x80070002);
	ASSERT_FIELD(pe.line, "inval", 1);
	peer_end(&pe);
	finish();
}

/* SPEC §2.1 (cookie unchanged), §2.2, §8.7, §8.29: a connect reaches
 * ConnectNotify with the server cookie; FltportGetClientInfo gives the
 * client's pid and uid; the sync flag is accepted. */
Test(connect, client_info_and_sync_flag, .timeout = 60)
{
	const char *name = setup_port(on_message, 4, true);
	struct peer pe;

	peer_start(&pe, NULL);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
	ASSERT_HR(pe.line, S_OK);
	ASSERT_FIELD(pe.line, "inval", 0);
	cr_assert_eq(get_int(&g.nconn), 1);
	pthread_mutex_lock(&g.lock);
	cr_assert_eq(g.server_cookie_seen, (PVOID)&g, "ServerPortCookie passed unchanged");
	cr_assert(g.ctx_null && g.ctx_len == 0, "no context: NULL, 0");
	cr_assert_eq(g.info_status[0], STATUS_SUCCESS);
	cr_assert_eq((long)g.info[0].ProcessId, pe.pid, "pid %u vs %ld", g.info[0].ProcessId,
		     pe.pid);
	cr_assert_eq(g.info[0].UserId, (ULONG)geteuid());
	cr_assert_eq(g.info[0].GroupId, (ULONG)getegid());
	pthread_mutex_unlock(&g.lock);

	/* FLT_PORT_FLAG_SYNC_HANDLE = 1 (§3.1, §8.7): accepted, and the
	 * handle works. */
	peer_do(&pe, "CONNECT", "CONNECT \\%s 1 -", name);
	ASSERT_HR(pe.line, S_OK);
	SET_G(g.msg_ret, 3);
	peer_do(&pe, "SENT", "SEND x01 16");
	ASSERT_HR(pe.line, S_OK);
	ASSERT_FIELD(pe.line, "ret", 3);
	peer_end(&pe);
	finish();
}

static bool is_root(void)
{
	return geteuid() == 0;
}

/* SPEC §8.11, §8.21: the default descriptor admits root only: a uid-65534
 * client gets 0x80070005, and ConnectNotify never runs. */
Test(connect, denied_by_default_sd, .timeout = 60)
{
	const char *name;
	struct peer pe;

	if (!is_root())
		cr_skip("needs root: drops a client to uid 65534");
	name = setup_port(on_message, 4, false);
	peer_start(&pe, (const char *const[]){ "--as-uid", "65534", NULL });
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
	ASSERT_HR(pe.line, 0x80070005);
	ASSERT_FIELD(pe.line, "inval", 1);
	cr_assert_eq(get_int(&g.nconn), 0, "ConnectNotify must not run for a denied client");
	peer_end(&pe);
	finish();
}

/* SPEC §8.11, §8.29: a NULL DACL admits everyone; FltportGetClientInfo
 * reports the dropped uid/gid and the pid. */
Test(connect, admitted_by_null_dacl, .timeout = 60)
{
	const char *name;
	struct peer pe;

	if (!is_root())
		cr_skip("needs root: drops a client to uid 65534");
	name = setup_port(on_message, 4, true);
	peer_start(&pe, (const char *const[]){ "--as-uid", "65534", NULL });
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
	ASSERT_HR(pe.line, S_OK);
	pthread_mutex_lock(&g.lock);
	cr_assert_eq(g.nconn, 1);
	cr_assert_eq(g.info[0].UserId, 65534u);
	cr_assert_eq(g.info[0].GroupId, 65534u);
	cr_assert_eq((long)g.info[0].ProcessId, pe.pid);
	pthread_mutex_unlock(&g.lock);
	peer_end(&pe);
	finish();
}

/* SPEC §3.1, §8.6: MaxConnections 1 → the second connect gets 0x800704D6;
 * after the first closes and DisconnectNotify has run, a connect succeeds
 * (a retry may see 0x800704D6 for a moment, nothing else). */
Test(connect, limit, .timeout = 60)
{
	const char *name = setup_port(on_message, 1, true);
	struct peer pe;
	int64_t end;

	peer_start(&pe, NULL);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
	ASSERT_HR(pe.line, S_OK);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
	ASSERT_HR(pe.line, 0x800704D6);
	ASSERT_FIELD(pe.line, "inval", 1);
	cr_assert_eq(get_int(&g.nconn), 1);
	peer_do(&pe, "CLOSED", "CLOSE");
	ASSERT_FIELD(pe.line, "ok", 1);
	cr_assert(wait_int(&g.ndisc, 1, 10000), "DisconnectNotify after CloseHandle");
	end = tu_now_ms() + 10000;
	for (;;) {
		peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
		if (hr_of(pe.line) == S_OK)
			break;
		ASSERT_HR(pe.line, 0x800704D6);
		cr_assert_lt(tu_now_ms(), end, "the slot was never freed");
	}
	cr_assert_eq(get_int(&g.nconn), 2);
	peer_end(&pe);
	finish();
}

/* SPEC §3.1, §8.8: context rules.  NULL with a size, or non-NULL with 0 →
 * E_INVALIDARG; > 0xFFE8 → 0x80070216; none of these reach ConnectNotify;
 * exactly 0xFFE8 works and ConnectNotify sees the bytes. */
Test(connect, context, .timeout = 60)
{
	const char *name = setup_port(on_message, 8, true);
	static unsigned char want[0xFFE8];
	struct peer pe;

	peer_start(&pe, NULL);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 null:8", name);
	ASSERT_HR(pe.line, 0x80070057);
	ASSERT_FIELD(pe.line, "inval", 1);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 zero", name);
	ASSERT_HR(pe.line, 0x80070057);
	ASSERT_FIELD(pe.line, "inval", 1);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 p65513:1", name); /* 0xFFE9 */
	ASSERT_HR(pe.line, 0x80070216);
	ASSERT_FIELD(pe.line, "inval", 1);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 p65535:1", name);
	ASSERT_HR(pe.line, 0x80070216);
	cr_assert_eq(get_int(&g.nconn), 0, "rejected before ConnectNotify");

	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 p5:3", name);
	ASSERT_HR(pe.line, S_OK);
	fill_pattern(want, 5, 3);
	pthread_mutex_lock(&g.lock);
	cr_assert(!g.ctx_null);
	cr_assert_eq(g.ctx_len, 5u);
	cr_assert_arr_eq(g.ctx, want, 5);
	pthread_mutex_unlock(&g.lock);

	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 p65512:7", name); /* 0xFFE8 */
	ASSERT_HR(pe.line, S_OK);
	fill_pattern(want, sizeof(want), 7);
	pthread_mutex_lock(&g.lock);
	cr_assert_eq(g.ctx_len, 0xFFE8u);
	cr_assert(memcmp(g.ctx, want, sizeof(want)) == 0, "context bytes differ");
	pthread_mutex_unlock(&g.lock);
	cr_assert_eq(get_int(&g.nconn), 2);
	peer_end(&pe);
	finish();
}

/* SPEC §2.2, §3.1, §4, §8.6: ConnectNotify's failure status is mapped and
 * returned; a rejected connection never gets a DisconnectNotify. */
Test(connect, rejected_by_connect_notify, .timeout = 60)
{
	const char *name = setup_port(on_message, 8, true);
	struct peer pe;

	peer_start(&pe, NULL);
	SET_G(g.connect_status, STATUS_ACCESS_DENIED);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
	ASSERT_HR(pe.line, 0x80070005);
	ASSERT_FIELD(pe.line, "inval", 1);
	SET_G(g.connect_status, STATUS_INVALID_PARAMETER);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
	ASSERT_HR(pe.line, 0x80070057);
	ASSERT_FIELD(pe.line, "inval", 1);
	SET_G(g.connect_status, STATUS_INSUFFICIENT_RESOURCES);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
	ASSERT_HR(pe.line, 0x800705AA);
	SET_G(g.connect_status, STATUS_SUCCESS);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
	ASSERT_HR(pe.line, S_OK);
	peer_do(&pe, "CLOSED", "CLOSE");
	cr_assert(wait_int(&g.ndisc, 1, 10000));
	peer_end(&pe);
	finish();
	cr_assert_eq(get_int(&g.ndisc), 1, "only the accepted connection is disconnected");
}

/* SPEC §8.25: invalid names → 0x8007007B (ERROR_INVALID_NAME) for the
 * client; leading backslashes are stripped. */
Test(connect, invalid_names, .timeout = 60)
{
	const char *name = setup_port(on_message, 8, true);
	static const char *const bad[] = { "\\a\\b",  "\\.",     "\\..",  ".",      "..",
					   "\\a%01b", "\\a%1Fb", "\\a/b", "\\a%7Fb" };
	struct peer pe;

	peer_start(&pe, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		peer_do(&pe, "CONNECT", "CONNECT %s 0 -", bad[i]);
		cr_assert_eq(hr_of(pe.line), (HRESULT)0x8007007Bu, "%s: %s", bad[i], pe.line);
		ASSERT_FIELD(pe.line, "inval", 1);
	}
	/* Two leading backslashes, or none, name the same port. */
	peer_do(&pe, "CONNECT", "CONNECT \\\\%s 0 -", name);
	ASSERT_HR(pe.line, S_OK);
	peer_do(&pe, "CONNECT", "CONNECT %s 0 -", name);
	ASSERT_HR(pe.line, S_OK);
	peer_end(&pe);
	finish();
}

/* SPEC §2.1, §8.10, §8.25: FltCreateCommunicationPort's errors. */
Test(connect, create_errors, .timeout = 60)
{
	static const WCHAR *const bad[] = { L"\\a\\b",   L"\\.",   L"\\..",
					    L"\\a\x01z", L"\\a/b", L"\\a\x7fz" };
	const char *name;
	PFLT_PORT p = NULL, p2 = NULL;
	UNICODE_STRING uname;
	OBJECT_ATTRIBUTES oa;
	NTSTATUS st;

	tu_private_dir();
	name = tu_port_name("cw");
	st = create_port(wname(name), &p, on_message, 1, true, OBJ_CASE_INSENSITIVE);
	cr_assert_eq(st, STATUS_INVALID_PARAMETER, "no OBJ_KERNEL_HANDLE: 0x%08X", (unsigned)st);
	st = create_port(wname(name), &p, on_message, 0, true, OBJ_KERNEL_HANDLE);
	cr_assert_eq(st, STATUS_INVALID_PARAMETER, "MaxConnections 0: 0x%08X", (unsigned)st);
	st = create_port(wname(name), &p, on_message, -1, true, OBJ_KERNEL_HANDLE);
	cr_assert_eq(st, STATUS_INVALID_PARAMETER, "MaxConnections -1: 0x%08X", (unsigned)st);
	/* Connect and Disconnect callbacks are required (§2.1). */
	RtlInitUnicodeString(&uname, wname(name));
	InitializeObjectAttributes(&oa, &uname, OBJ_KERNEL_HANDLE, NULL, NULL);
	st = FltCreateCommunicationPort(NULL, &p, &oa, NULL, NULL, on_disconnect, on_message, 1);
	cr_assert_eq(st, STATUS_INVALID_PARAMETER, "no ConnectNotify: 0x%08X", (unsigned)st);
	st = FltCreateCommunicationPort(NULL, &p, &oa, NULL, on_connect, NULL, on_message, 1);
	cr_assert_eq(st, STATUS_INVALID_PARAMETER, "no DisconnectNotify: 0x%08X", (unsigned)st);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		st = create_port(bad[i], &p, on_message, 1, true, OBJ_KERNEL_HANDLE);
		cr_assert_eq(st, (NTSTATUS)0xC0000033u, "bad name %zu: 0x%08X", i, (unsigned)st);
	}

	st = create_port(wname(name), &p, on_message, 1, true, OBJ_KERNEL_HANDLE);
	cr_assert_eq(st, STATUS_SUCCESS, "0x%08X", (unsigned)st);
	st = create_port(wname(name), &p2, on_message, 1, true, OBJ_KERNEL_HANDLE);
	cr_assert_eq(st, (NTSTATUS)0xC0000035u, "same name twice: 0x%08X", (unsigned)st);
	cr_assert_eq(st, STATUS_OBJECT_NAME_COLLISION);
	FltCloseCommunicationPort(p);
	finish();
}

/* SPEC §2.3: FltCloseCommunicationPort blocks new connects and keeps the
 * existing connections. */
Test(connect, close_server_port_keeps_connections, .timeout = 60)
{
	const char *name = setup_port(on_message, 8, true);
	struct peer pe;

	peer_start(&pe, NULL);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
	ASSERT_HR(pe.line, S_OK);
	FltCloseCommunicationPort(g.server);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
	/* the port is gone: "no port" (§3.1) */
	ASSERT_HR(pe.line, 0x80070002);
	ASSERT_FIELD(pe.line, "inval", 1);
	peer_cmd(&pe, "USE 0");
	SET_G(g.msg_ret, 4);
	peer_do(&pe, "SENT", "SEND x0102 16");
	ASSERT_HR(pe.line, S_OK);
	ASSERT_FIELD(pe.line, "ret", 4);
	cr_assert_eq(get_int(&g.ndisc), 0, "the existing connection stays");
	peer_end(&pe);
	cr_assert(wait_int(&g.ndisc, 1, 10000));
	finish();
}

/* SPEC §8.6, §3.5, §5 (path 1): SIGKILL of the client → DisconnectNotify
 * exactly once (also after unload), and a FltSendMessage blocked waiting
 * for a reader returns STATUS_PORT_DISCONNECTED. */
Test(connect, sigkill_client, .timeout = 60)
{
	const char *name = setup_port(on_message, 8, true);
	struct sendop s;
	struct peer pe;

	peer_start(&pe, NULL);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
	ASSERT_HR(pe.line, S_OK);
	send_init(&s, &g.clients[0], 32, 1, 16, -300000000LL); /* 30 s */
	send_start(&s);
	tu_kill(&pe.p, SIGKILL);
	close(pe.cmd);
	send_join(&s);
	cr_assert_eq(s.st, STATUS_PORT_DISCONNECTED, "blocked send: 0x%08X", (unsigned)s.st);
	cr_assert_lt(s.ms, 20000);
	cr_assert(wait_int(&g.ndisc, 1, 10000), "DisconnectNotify after SIGKILL");
	finish();
	cr_assert_eq(get_int(&g.ndisc), 1, "DisconnectNotify exactly once");
	cr_assert_eq(g.disc_of[0], 1);
}

/* SPEC §8.6, §3.5: the user's CloseHandle → DisconnectNotify exactly once;
 * FltSendMessage afterwards → STATUS_PORT_DISCONNECTED. */
Test(connect, close_handle_disconnects, .timeout = 60)
{
	const char *name = setup_port(on_message, 8, true);
	struct sendop s;
	struct peer pe;

	peer_start(&pe, NULL);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
	ASSERT_HR(pe.line, S_OK);
	send_init(&s, &g.clients[0], 32, 1, -1, -300000000LL);
	send_start(&s);
	peer_do(&pe, "CLOSED", "CLOSE");
	ASSERT_FIELD(pe.line, "ok", 1);
	send_join(&s);
	cr_assert_eq(s.st, STATUS_PORT_DISCONNECTED, "0x%08X", (unsigned)s.st);
	cr_assert(wait_int(&g.ndisc, 1, 10000));
	send_init(&s, &g.clients[0], 8, 1, -1, -10000000LL);
	send_main(&s);
	cr_assert_eq(s.st, STATUS_PORT_DISCONNECTED, "0x%08X", (unsigned)s.st);
	peer_end(&pe);
	finish();
	cr_assert_eq(get_int(&g.ndisc), 1);
}

/* SPEC §3.2, §8.10, §8.14, §8.28: the filter process is SIGKILLed.  The
 * client's pending overlapped read completes with ERROR_INVALID_HANDLE
 * (Internal = STATUS_INVALID_HANDLE), every later call fails at once with
 * 0x80070006, the stale name is "not found" for a client and free for a new
 * FltCreateCommunicationPort. */
Test(connect, sigkill_filter, .timeout = 60)
{
	struct peer filter, pe;
	const char *name;
	PFLT_PORT p = NULL;
	NTSTATUS st;

	tu_private_dir();
	name = tu_port_name("cwf");
	peer_start_prog(&filter, "win_filter", (const char *const[]){ name, NULL });
	peer_start(&pe, NULL);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
	ASSERT_HR(pe.line, S_OK);
	peer_do(&pe, "SENT", "SEND x0a0b0c 8");
	ASSERT_HR(pe.line, S_OK);
	ASSERT_FIELD(pe.line, "ret", 3);
	cr_assert_str_eq(tu_field(pe.line, "data"), "0a0b0c");
	peer_do(&pe, "AGET", "AGET 1 4096 ev");
	ASSERT_HR(pe.line, 0x800703E5);

	tu_kill(&filter.p, SIGKILL);
	close(filter.cmd);

	peer_do(&pe, "WAITEV", "WAITEV 1 10000");
	ASSERT_FIELD(pe.line, "r", 0);
	ASSERT_FIELD(pe.line, "ok", 0);
	ASSERT_FIELD(pe.line, "err", 6);
	ASSERT_FIELD(pe.line, "internal", 0xC0000008u);
	peer_do(&pe, "SENT", "SEND x01 8");
	ASSERT_HR(pe.line, 0x80070006);
	peer_do(&pe, "GOT", "GET 4096 0");
	ASSERT_HR(pe.line, 0x80070006);
	peer_do(&pe, "AGET", "AGET 2 4096");
	ASSERT_HR(pe.line, 0x80070006);
	peer_do(&pe, "REPLIED", "REPLY 1 0 x00");
	ASSERT_HR(pe.line, 0x80070006);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
	ASSERT_HR(pe.line, 0x80070002);
	ASSERT_FIELD(pe.line, "inval", 1);

	st = create_port(wname(name), &p, on_message, 1, true, OBJ_KERNEL_HANDLE);
	cr_assert_eq(st, STATUS_SUCCESS, "stale name must be free: 0x%08X", (unsigned)st);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
	ASSERT_HR(pe.line, S_OK);
	peer_end(&pe);
	finish();
}

/* ======================================================================
 * FilterSendMessage → MessageNotify
 * ====================================================================== */

/* SPEC §2.2, §3.2, §4: MessageNotify's status becomes the HRESULT through
 * fltlib's mapping, for every row of the §4 table and the special rules
 * (FltMgr facility, other facilities → E_FAIL, STATUS_TIMEOUT →
 * 0x80070102); lpBytesReturned is exact; MessageNotify sees the exact input
 * and the output capacity. */
Test(send, status_mapping, .timeout = 60)
{
	static const struct {
		uint32_t status, hr;
	} rows[] = {
		{ 0x00000102, 0x80070102 }, /* STATUS_TIMEOUT: fltlib special case */
		{ 0x00000103, 0x800703E5 }, /* STATUS_PENDING */
		{ 0x80000005, 0x800700EA }, /* STATUS_BUFFER_OVERFLOW */
		{ 0x80000002, 0x800703E6 }, /* STATUS_DATATYPE_MISALIGNMENT */
		{ 0x8000001A, 0x80070103 }, /* STATUS_NO_MORE_ENTRIES (minispy) */
		{ 0xC0000001, 0x8007001F }, /* STATUS_UNSUCCESSFUL */
		{ 0xC0000008, 0x80070006 }, /* STATUS_INVALID_HANDLE */
		{ 0xC000000D, 0x80070057 }, /* STATUS_INVALID_PARAMETER */
		{ 0xC0000022, 0x80070005 }, /* STATUS_ACCESS_DENIED */
		{ 0xC0000023, 0x8007007A }, /* STATUS_BUFFER_TOO_SMALL */
		{ 0xC0000034, 0x80070002 }, /* STATUS_OBJECT_NAME_NOT_FOUND */
		{ 0xC0000035, 0x800700B7 }, /* STATUS_OBJECT_NAME_COLLISION */
		{ 0xC0000010, 0x80070001 }, /* STATUS_INVALID_DEVICE_REQUEST */
		{ 0xC0000037, 0x80070006 }, /* STATUS_PORT_DISCONNECTED */
		{ 0xC000004B, 0x80070005 }, /* STATUS_THREAD_IS_TERMINATING */
		{ 0xC0000095, 0x80070216 }, /* STATUS_INTEGER_OVERFLOW */
		{ 0xC000009A, 0x800705AA }, /* STATUS_INSUFFICIENT_RESOURCES */
		{ 0xC00000B5, 0x80070079 }, /* STATUS_IO_TIMEOUT */
		{ 0xC0000120, 0x800703E3 }, /* STATUS_CANCELLED */
		{ 0xC0000225, 0x80070490 }, /* STATUS_NOT_FOUND */
		{ 0xC0000246, 0x800704D6 }, /* STATUS_CONNECTION_COUNT_LIMIT */
		{ 0x801C0001, 0x8007007A }, /* STATUS_FLT_BUFFER_TOO_SMALL */
		{ 0xC01C000B, 0x801F000B }, /* STATUS_FLT_DELETING_OBJECT */
		{ 0xC01C0020, 0x801F0020 }, /* STATUS_FLT_NO_WAITER_FOR_REPLY */
		{ 0xC0050001, 0x80004005 }, /* another facility → E_FAIL */
		{ 0x80050001, 0x80004005 },
		/* Beyond §4 (test_compat_status.c has every row): */
		{ 0xC0000103, 0x8007010B }, /* STATUS_NOT_A_DIRECTORY (issue 8, defect 10) */
		{ 0xC00000BA, 0x80070005 }, /* STATUS_FILE_IS_A_DIRECTORY */
		{ 0xC0000906, 0x800700E1 }, /* STATUS_VIRUS_INFECTED */
		{ 0xC0000804, 0x80070510 }, /* STATUS_CONTENT_BLOCKED */
		{ 0xC0070005, 0x80004005 }, /* facility 7 is a facility: E_FAIL (§4) */
		{ 0xC0000036, 0x8007013D }, /* no such status: ERROR_MR_MID_NOT_FOUND */
	};
	const char *name = setup_port(on_message, 4, true);
	unsigned char want[16];
	struct peer pe;

	peer_start(&pe, NULL);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
	ASSERT_HR(pe.line, S_OK);

	/* STATUS_SUCCESS with ReturnOutputBufferLength 5 → S_OK, 5 bytes. */
	SET_G(g.msg_status, STATUS_SUCCESS);
	SET_G(g.msg_ret, 5);
	peer_do(&pe, "SENT", "SEND x0102030405060708 16");
	ASSERT_HR(pe.line, S_OK);
	ASSERT_FIELD(pe.line, "ret", 5);
	fill_pattern(want, 5, 9);
	cr_assert_str_eq(tu_field(pe.line, "data"), hexs(want, 5));
	pthread_mutex_lock(&g.lock);
	cr_assert_eq(g.in_len, 8u);
	cr_assert_eq(memcmp(g.in, "\x01\x02\x03\x04\x05\x06\x07\x08", 8), 0);
	cr_assert(!g.out_null);
	cr_assert_eq(g.out_len, 16u);
	pthread_mutex_unlock(&g.lock);

	SET_G(g.msg_ret, 0);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		SET_G(g.msg_status, (NTSTATUS)rows[i].status);
		peer_do(&pe, "SENT", "SEND x01 16");
		cr_assert_eq(hr_of(pe.line), (HRESULT)rows[i].hr,
			     "MessageNotify 0x%08X: want 0x%08X, got: %s", rows[i].status,
			     rows[i].hr, pe.line);
	}
	cr_assert_eq(get_int(&g.nmsg), 1 + (int)(sizeof(rows) / sizeof(rows[0])));
	peer_end(&pe);
	finish();
}

/* SPEC §8.5: a port without MessageNotify → 0x80070001. */
Test(send, no_message_notify, .timeout = 60)
{
	const char *name = setup_port(NULL, 4, true);
	struct peer pe;

	peer_start(&pe, NULL);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
	ASSERT_HR(pe.line, S_OK);
	peer_do(&pe, "SENT", "SEND x01 16");
	ASSERT_HR(pe.line, 0x80070001);
	peer_end(&pe);
	finish();
}

/* SPEC §8.16, §3.2: lpOutBuffer NULL → MessageNotify sees NULL/0 whatever
 * dwOutBufferSize says; lpBytesReturned NULL → E_INVALIDARG, nothing sent. */
Test(send, null_buffers, .timeout = 60)
{
	const char *name = setup_port(on_message, 4, true);
	struct peer pe;

	peer_start(&pe, NULL);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
	ASSERT_HR(pe.line, S_OK);
	SET_G(g.msg_ret, 7);
	peer_do(&pe, "SENT", "SEND x0102 null"); /* dwOutBufferSize 100, lpOutBuffer NULL */
	ASSERT_HR(pe.line, S_OK);
	ASSERT_FIELD(pe.line, "ret", 0);
	pthread_mutex_lock(&g.lock);
	cr_assert_eq(g.nmsg, 1);
	cr_assert(g.out_null, "MessageNotify must see a NULL output buffer");
	cr_assert_eq(g.out_len, 0u);
	cr_assert_eq(g.in_len, 2u);
	pthread_mutex_unlock(&g.lock);

	peer_do(&pe, "SENT", "SEND x0102 16 noret");
	ASSERT_HR(pe.line, 0x80070057);
	cr_assert_eq(get_int(&g.nmsg), 1, "nothing sent without lpBytesReturned");
	peer_end(&pe);
	finish();
}

/* SPEC §8.18: 1 MiB payloads in each direction through the Windows API
 * (FilterSendMessage in and out, FltSendMessage → FilterGetMessage); above
 * the port's limit (8 MiB by default; fltkernel.h cannot change it) →
 * E_INVALIDARG / STATUS_INVALID_PARAMETER and nothing is sent. */
Test(send, large_payloads, .timeout = 60)
{
	const size_t mib = (size_t)1 << 20;
	const char *name = setup_port(on_message, 4, true);
	unsigned char *buf = malloc((8u << 20) + 1);
	LARGE_INTEGER t;
	struct peer pe;
	NTSTATUS st;

	cr_assert_not_null(buf);
	peer_start(&pe, NULL);
	peer_do(&pe, "CONNECT", "CONNECT \\%s 0 -", name);
	ASSERT_HR(pe.line, S_OK);

	SET_G(g.msg_ret, (ULONG)mib);
	peer_do(&pe, "SENT", "SEND p%zu:3 %zu", mib, mib);
	ASSERT_HR(pe.line, S_OK);
	ASSERT_FIELD(pe.line, "ret", mib);
	fill_pattern(buf, mib, 9);
	cr_assert_eq(strtoul(tu_field(pe.line, "sum"), NULL, 16),
		     (unsigned long)tu_fnv1a32(buf, mib), "%s", pe.line);
	fill_pattern(buf, mib, 3);
	pthread_mutex_lock(&g.lock);
	cr_assert_eq(g.in_len, (ULONG)mib);
	cr_assert_eq(g.in_sum, tu_fnv1a32(buf, mib), "MessageNotify saw other bytes");
	cr_assert_eq(g.out_len, (ULONG)mib);
	pthread_mutex_unlock(&g.lock);

	peer_do(&pe, "SENT", "SEND p%u:3 16", (8u << 20) + 1);
	ASSERT_HR(pe.line, 0x80070057);
	cr_assert_eq(get_int(&g.nmsg), 1, "an oversized request must not be sent");

	/* filter → user, 1 MiB */
	peer_cmd(&pe, "BIGAGET %zu", mib + 16);
	fill_pattern(buf, mib, 4);
	t.QuadPart = -100000000LL;
	st = FltSendMessage(NULL, &g.clients[0], buf, (ULONG)mib, NULL, NULL, &t);
	cr_assert_eq(st, STATUS_SUCCESS, "1 MiB FltSendMessage: 0x%08X", (unsigned)st);
	peer_expect(&pe, "BIGGOT");
	ASSERT_HR(pe.line, 0x800703E5);
	ASSERT_FIELD(pe.line, "ok", 1);
	ASSERT_FIELD(pe.line, "bytes", mib + 16);
	cr_assert_eq(strtoul(tu_field(pe.line, "sum"), NULL, 16),
		     (unsigned long)tu_fnv1a32(buf, mib), "%s", pe.line);

	/* above the limit: refused at once, nothing delivered */
	t.QuadPart = 0;
	st = FltSendMessage(NULL, &g.clients[0], buf, (8u << 20) + 1, NULL, NULL, &t);
	cr_assert_eq(st, STATUS_INVALID_PARAMETER, "8 MiB + 1: 0x%08X", (unsigned)st);
	free(buf);
	peer_end(&pe);
	finish();
}

/* ======================================================================
 * FltSendMessage → FilterGetMessage / FilterReplyMessage
 * ====================================================================== */

static const char *connect_one(struct peer *pe, const char *name)
{
	peer_start(pe, NULL);
	peer_do(pe, "CONNECT", "CONNECT \\%s 0 -", name);
	ASSERT_HR(pe->line, S_OK);
	cr_assert_eq(get_int(&g.nconn), 1);
	return name;
}

/* SPEC §2.5, §3.3, §3.4, §8.4: with a reply buffer the reader sees
 * ReplyLength = capacity + 16 and the message bytes at offset 16; the reply
 * to its MessageId fills the sender's buffer, *ReplyLength = bytes written;
 * the reply's Status does not change FltSendMessage's return value. */
Test(getreply, with_reply_buffer, .timeout = 60)
{
	const char *name = setup_port(on_message, 4, true);
	unsigned char want[10];
	struct sendop s;
	struct peer pe;
	unsigned long long id;

	connect_one(&pe, name);
	send_init(&s, &g.clients[0], 40, 2, 32, -100000000LL);
	send_start(&s);
	peer_do(&pe, "GOT", "GET 4096 40");
	ASSERT_HR(pe.line, S_OK);
	ASSERT_FIELD(pe.line, "rl", 32 + 16);
	cr_assert_str_eq(tu_field(pe.line, "data"), hexs(s.msg, 40));
	id = strtoull(tu_field(pe.line, "id"), NULL, 0);
	fill_pattern(want, sizeof(want), 5);
	peer_do(&pe, "REPLIED", "REPLY %llu 0xC0000022 x%s", id, hexs(want, sizeof(want)));
	ASSERT_HR(pe.line, S_OK);
	send_join(&s);
	cr_assert_eq(s.st, STATUS_SUCCESS, "0x%08X", (unsigned)s.st);
	cr_assert_eq(s.rlen, 10u);
	cr_assert_arr_eq(s.reply, want, 10);
	cr_assert_eq(s.reply[10], 0xEE, "nothing written past the reply");
	/* A second reply to the same id: nobody waits any more. */
	peer_do(&pe, "REPLIED", "REPLY %llu 0 x01", id);
	ASSERT_HR(pe.line, 0x801F0020);
	peer_end(&pe);
	finish();
}

/* SPEC §2.5, §3.4, §7.3: without a reply buffer the reader sees
 * ReplyLength 0, FltSendMessage returns STATUS_SUCCESS once the message is
 * taken, and a FilterReplyMessage to it → 0x801F0020. */
Test(getreply, without_reply_buffer, .timeout = 60)
{
	const char *name = setup_port(on_message, 4, true);
	struct sendop s;
	struct peer pe;

	connect_one(&pe, name);
	send_init(&s, &g.clients[0], 12, 3, -1, -100000000LL);
	send_start(&s);
	peer_do(&pe, "GOT", "GET 4096 12");
	ASSERT_HR(pe.line, S_OK);
	ASSERT_FIELD(pe.line, "rl", 0);
	cr_assert_str_eq(tu_field(pe.line, "data"), hexs(s.msg, 12));
	send_join(&s);
	cr_assert_eq(s.st, STATUS_SUCCESS, "0x%08X", (unsigned)s.st);
	peer_do(&pe, "REPLIED", "REPLY last 0 x0102");
	ASSERT_HR(pe.line, 0x801F0020);
	peer_end(&pe);
	finish();
}

/* After an expired message: post a read, send a fresh message B, and the
 * read must get B — the expired one was never delivered (SPEC §8.12). */
static void assert_next_is_fresh(struct peer *pe, int tag)
{
	struct sendop b;

	peer_do(pe, "AGET", "AGET %d 4096 ev", tag);
	ASSERT_HR(pe->line, 0x800703E5);
	send_init(&b, &g.clients[0], 24, 77, -1, -100000000LL);
	send_start(&b);
	peer_do(pe, "WAITEV", "WAITEV %d 10000", tag);
	ASSERT_FIELD(pe->line, "ok", 1);
	ASSERT_FIELD(pe->line, "len", 24);
	cr_assert_str_eq(tu_field(pe->line, "data"), hexs(b.msg, 24),
			 "an expired message was delivered");
	send_join(&b);
	cr_assert_eq(b.st, STATUS_SUCCESS, "0x%08X", (unsigned)b.st);
}

/* SPEC §2.5, §8.12: a -2,000,000 (200 ms) timeout with no reader →
 * STATUS_TIMEOUT (0x102, NT_SUCCESS true) after ≥ 150 ms, never delivered. */
Test(getreply, timeout_no_reader, .timeout = 60)
{
	const char *name = setup_port(on_message, 4, true);
	struct sendop s;
	struct peer pe;

	connect_one(&pe, name);
	send_init(&s, &g.clients[0], 16, 4, 16, -2000000LL);
	send_main(&s);
	cr_assert_eq(s.st, STATUS_TIMEOUT, "0x%08X", (unsigned)s.st);
	cr_assert_eq(s.st, (NTSTATUS)0x102);
	cr_assert(NT_SUCCESS(s.st), "STATUS_TIMEOUT is a success code");
	cr_assert_geq(s.ms, 150, "returned after %lld ms", (long long)s.ms);
	cr_assert_lt(s.ms, 10000, "returned after %lld ms", (long long)s.ms);
	/* the same without a reply buffer */
	send_init(&s, &g.clients[0], 16, 5, -1, -2000000LL);
	send_main(&s);
	cr_assert_eq(s.st, STATUS_TIMEOUT, "0x%08X", (unsigned)s.st);
	cr_assert_geq(s.ms, 150);
	assert_next_is_fresh(&pe, 1);
	peer_end(&pe);
	finish();
}

/* SPEC §8.1, §8.17: Timeout pointing to 0 = poll: nobody waiting →
 * STATUS_TIMEOUT at once, never delivered (with and without a reply
 * buffer). */
Test(getreply, poll_nobody_waiting, .timeout = 60)
{
	const char *name = setup_port(on_message, 4, true);
	struct sendop s;
	struct peer pe;

	connect_one(&pe, name);
	send_init(&s, &g.clients[0], 16, 6, -1, 0);
	send_main(&s);
	cr_assert_eq(s.st, STATUS_TIMEOUT, "0x%08X", (unsigned)s.st);
	cr_assert_lt(s.ms, 2000, "a poll must not wait (%lld ms)", (long long)s.ms);
	send_init(&s, &g.clients[0], 16, 7, 16, 0);
	send_main(&s);
	cr_assert_eq(s.st, STATUS_TIMEOUT, "0x%08X", (unsigned)s.st);
	cr_assert_lt(s.ms, 2000);
	assert_next_is_fresh(&pe, 1);
	peer_end(&pe);
	finish();
}

/* SPEC §8.1, §8.17: a poll (Timeout pointing to 0) with a reader already
 * waiting (a pending overlapped FilterGetMessage) is delivered; without a
 * reply buffer it returns STATUS_SUCCESS, with one it returns STATUS_TIMEOUT
 * at once and a later reply gets 0x801F0020. */
Test(getreply, poll_reader_waiting, .timeout = 60)
{
	const char *name = setup_port(on_message, 4, true);
	struct sendop s;
	struct peer pe;

	connect_one(&pe, name);
	peer_do(&pe, "AGET", "AGET 1 4096 ev");
	ASSERT_HR(pe.line, 0x800703E5);
	send_init(&s, &g.clients[0], 16, 30, -1, 0);
	send_main(&s);
	cr_assert_eq(s.st, STATUS_SUCCESS, "poll with a waiting reader: 0x%08X", (unsigned)s.st);
	cr_assert_lt(s.ms, 2000);
	peer_do(&pe, "WAITEV", "WAITEV 1 10000");
	ASSERT_FIELD(pe.line, "ok", 1);
	ASSERT_FIELD(pe.line, "rl", 0);
	cr_assert_str_eq(tu_field(pe.line, "data"), hexs(s.msg, 16));

	peer_do(&pe, "AGET", "AGET 2 4096 ev");
	ASSERT_HR(pe.line, 0x800703E5);
	send_init(&s, &g.clients[0], 16, 31, 8, 0);
	send_main(&s);
	cr_assert_eq(s.st, STATUS_TIMEOUT, "poll with a reply buffer: 0x%08X", (unsigned)s.st);
	cr_assert_lt(s.ms, 2000);
	peer_do(&pe, "WAITEV", "WAITEV 2 10000");
	ASSERT_FIELD(pe.line, "ok", 1);
	ASSERT_FIELD(pe.line, "rl", 8 + 16);
	cr_assert_str_eq(tu_field(pe.line, "data"), hexs(s.msg, 16));
	peer_do(&pe, "REPLIED", "REPLY last 0 x01");
	ASSERT_HR(pe.line, 0x801F0020);
	peer_end(&pe);
	finish();
}

/* 100-ns units since 1601-01-01 UTC (the Windows system time). */
static LONGLONG now_1601(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((LONGLONG)ts.tv_sec + 11644473600LL) * 10000000LL + ts.tv_nsec / 100;
}

/* SPEC §2.5, §8.1: a positive Timeout is absolute (1601 epoch) and is
 * converted; one in the past acts as a poll; NULL is infinite. */
Test(getreply, absolute_and_infinite_timeouts, .timeout = 60)
{
	const char *name = setup_port(on_message, 4, true);
	struct sendop s;
	struct peer pe;

	connect_one(&pe, name);
	send_init(&s, &g.clients[0], 16, 40, 8, now_1601() + 3000000LL); /* +300 ms */
	send_main(&s);
	cr_assert_eq(s.st, STATUS_TIMEOUT, "absolute: 0x%08X", (unsigned)s.st);
	cr_assert_geq(s.ms, 150, "absolute timeout after %lld ms", (long long)s.ms);
	cr_assert_lt(s.ms, 10000);
	send_init(&s, &g.clients[0], 16, 41, -1, now_1601() - 10000000LL); /* 1 s ago */
	send_main(&s);
	cr_assert_eq(s.st, STATUS_TIMEOUT, "absolute, past: 0x%08X", (unsigned)s.st);
	cr_assert_lt(s.ms, 2000);
	assert_next_is_fresh(&pe, 1);

	send_init(&s, &g.clients[0], 16, 42, 8, 0);
	s.has_timeout = false; /* NULL: infinite */
	send_start(&s);
	peer_do(&pe, "GOT", "GET 4096 16");
	ASSERT_HR(pe.line, S_OK);
	cr_assert_str_eq(tu_field(pe.line, "data"), hexs(s.msg, 16));
	peer_do(&pe, "REPLIED", "REPLY last 0 x0708");
	ASSERT_HR(pe.line, S_OK);
	send_join(&s);
	cr_assert_eq(s.st, STATUS_SUCCESS, "0x%08X", (unsigned)s.st);
	cr_assert_eq(s.rlen, 2u);
	peer_end(&pe);
	finish();
}

/* SPEC §2.5 (one budget for delivery and reply), §3.4, §7.2: taken but
 * replied late → STATUS_TIMEOUT, then the late FilterReplyMessage →
 * 0x801F0020. */
Test(getreply, late_reply, .timeout = 60)
{
	const char *name = setup_port(on_message, 4, true);
	struct sendop s;
	struct peer pe;

	connect_one(&pe, name);
	peer_do(&pe, "AGET", "AGET 1 4096 ev");
	ASSERT_HR(pe.line, 0x800703E5);
	send_init(&s, &g.clients[0], 20, 8, 8, -10000000LL); /* 1 s */
	send_start(&s);
	peer_do(&pe, "WAITEV", "WAITEV 1 10000");
	ASSERT_FIELD(pe.line, "ok", 1);
	ASSERT_FIELD(pe.line, "rl", 8 + 16);
	send_join(&s);
	cr_assert_eq(s.st, STATUS_TIMEOUT, "0x%08X", (unsigned)s.st);
	cr_assert_geq(s.ms, 750, "returned after %lld ms", (long long)s.ms);
	cr_assert_lt(s.ms, 10000);
	cr_assert_eq(s.reply[0], 0xEE, "no reply data after a timeout");
	peer_do(&pe, "REPLIED", "REPLY last 0 x0102030405060708");
	ASSERT_HR(pe.line, 0x801F0020);
	peer_end(&pe);
	finish();
}

/* SPEC §2.5, §8.2: a reply larger than the capacity → the sender gets
 * STATUS_BUFFER_OVERFLOW with the first `capacity` bytes and *ReplyLength =
 * capacity; the replier gets 0x800700EA. */
Test(getreply, reply_overflow, .timeout = 60)
{
	const char *name = setup_port(on_message, 4, true);
	unsigned char want[8];
	struct sendop s;
	struct peer pe;

	connect_one(&pe, name);
	send_init(&s, &g.clients[0], 8, 9, 4, -100000000LL);
	send_start(&s);
	peer_do(&pe, "GOT", "GET 4096 8");
	ASSERT_HR(pe.line, S_OK);
	ASSERT_FIELD(pe.line, "rl", 4 + 16);
	fill_pattern(want, sizeof(want), 11);
	peer_do(&pe, "REPLIED", "REPLY last 0 x%s", hexs(want, 8));
	ASSERT_HR(pe.line, 0x800700EA);
	send_join(&s);
	cr_assert_eq(s.st, STATUS_BUFFER_OVERFLOW, "0x%08X", (unsigned)s.st);
	cr_assert_eq(s.st, (NTSTATUS)0x80000005u);
	cr_assert_eq(s.rlen, 4u);
	cr_assert_arr_eq(s.reply, want, 4);
	cr_assert_eq(s.reply[4], 0xEE, "nothing past the capacity");
	peer_end(&pe);
	finish();
}

/* SPEC §3.6, §8.2: for a 1-byte reply buffer, the reader sees
 * ReplyLength 17; the #pragma pack(1) {FILTER_REPLY_HEADER; UCHAR} (17
 * bytes) works, the unpacked one (sizeof 24) gives 0x800700EA and
 * STATUS_BUFFER_OVERFLOW. */
Test(getreply, packed_reply_padding_pitfall, .timeout = 60)
{
	const char *name = setup_port(on_message, 4, true);
	struct sendop s;
	struct peer pe;

	connect_one(&pe, name);
	send_init(&s, &g.clients[0], 4, 12, 1, -100000000LL);
	send_start(&s);
	peer_do(&pe, "GOT", "GET 4096 4");
	ASSERT_FIELD(pe.line, "rl", 17);
	peer_do(&pe, "REPLIED", "REPLYPACK last 0x5A");
	ASSERT_HR(pe.line, S_OK);
	ASSERT_FIELD(pe.line, "size", 17);
	send_join(&s);
	cr_assert_eq(s.st, STATUS_SUCCESS, "0x%08X", (unsigned)s.st);
	cr_assert_eq(s.rlen, 1u);
	cr_assert_eq(s.reply[0], 0x5A);

	send_init(&s, &g.clients[0], 4, 13, 1, -100000000LL);
	send_start(&s);
	peer_do(&pe, "GOT", "GET 4096 4");
	ASSERT_FIELD(pe.line, "rl", 17);
	peer_do(&pe, "REPLIED", "REPLYUNPACK last 0x5B");
	ASSERT_HR(pe.line, 0x800700EA);
	ASSERT_FIELD(pe.line, "size", 24);
	send_join(&s);
	cr_assert_eq(s.st, STATUS_BUFFER_OVERFLOW, "0x%08X", (unsigned)s.st);
	cr_assert_eq(s.rlen, 1u);
	cr_assert_eq(s.reply[0], 0x5B);
	peer_end(&pe);
	finish();
}

/* SPEC §8.2: with FLTPORT_DEBUG=1, a reply too large for the sender makes
 * the client library print one line explaining the padding pitfall; a
 * fitting reply prints nothing. */
Test(getreply, padding_pitfall_debug_line, .timeout = 60)
{
	const char *name = setup_port(on_message, 4, true);
	struct sendop s;
	struct peer pe;

	cr_assert_eq(setenv("FLTPORT_DEBUG", "1", 1), 0);
	peer_merge_stderr = true;
	connect_one(&pe, name);
	send_init(&s, &g.clients[0], 4, 50, 1, -100000000LL);
	send_start(&s);
	peer_do(&pe, "GOT", "GET 4096 4");
	peer_cmd(&pe, "REPLYPACK last 1");
	cr_assert(tu_read_line(&pe.p, pe.line, sizeof(pe.line), LINE_WAIT_MS), "no line");
	cr_assert(strncmp(pe.line, "REPLIED", 7) == 0, "a fitting reply prints nothing: %s",
		  pe.line);
	ASSERT_HR(pe.line, S_OK);
	send_join(&s);
	send_init(&s, &g.clients[0], 4, 51, 1, -100000000LL);
	send_start(&s);
	/* The next line after GOT must be the explanation, then REPLIED. */
	peer_do(&pe, "GOT", "GET 4096 4");
	peer_cmd(&pe, "REPLYUNPACK last 2");
	cr_assert(tu_read_line(&pe.p, pe.line, sizeof(pe.line), LINE_WAIT_MS), "no line");
	cr_assert(strstr(pe.line, "FilterReplyMessage") && strstr(pe.line, "padding"),
		  "want the padding explanation, got: %s", pe.line);
	peer_expect(&pe, "REPLIED");
	ASSERT_HR(pe.line, 0x800700EA);
	send_join(&s);
	cr_assert_eq(s.st, STATUS_BUFFER_OVERFLOW, "0x%08X", (unsigned)s.st);
	peer_end(&pe);
	finish();
}

/* SPEC §8.3: a synchronous FilterGetMessage whose buffer is too small →
 * 0x8007007A and the message stays queued: the next read with a big buffer
 * gets it, and the sender completes normally. */
Test(getreply, get_buffer_too_small_sync, .timeout = 60)
{
	const char *name = setup_port(on_message, 4, true);
	struct sendop s;
	struct peer pe;

	connect_one(&pe, name);
	send_init(&s, &g.clients[0], 64, 14, 8, -100000000LL);
	send_start(&s);
	peer_do(&pe, "GOT", "GET 20 0");
	ASSERT_HR(pe.line, 0x8007007A);
	peer_do(&pe, "GOT", "GET 79 0"); /* 16 + 63: one byte short */
	ASSERT_HR(pe.line, 0x8007007A);
	peer_do(&pe, "GOT", "GET 80 64"); /* exactly 16 + 64 */
	ASSERT_HR(pe.line, S_OK);
	ASSERT_FIELD(pe.line, "rl", 24);
	cr_assert_str_eq(tu_field(pe.line, "data"), hexs(s.msg, 64));
	peer_do(&pe, "REPLIED", "REPLY last 0 x11");
	ASSERT_HR(pe.line, S_OK);
	send_join(&s);
	cr_assert_eq(s.st, STATUS_SUCCESS, "0x%08X", (unsigned)s.st);
	cr_assert_eq(s.rlen, 1u);
	cr_assert_eq(s.reply[0], 0x11);
	peer_end(&pe);
	finish();
}

/* SPEC §8.15, §8.28: an overlapped read too small for the message that
 * arrives completes with ERROR_INSUFFICIENT_BUFFER (Internal =
 * STATUS_BUFFER_TOO_SMALL) — through the event + GetOverlappedResult and
 * through the IOCP — and the message stays queued for the next read. */
Test(getreply, get_buffer_too_small_overlapped, .timeout = 60)
{
	const char *name = setup_port(on_message, 4, true);
	struct sendop s;
	struct peer pe;

	connect_one(&pe, name);
	/* event + GetOverlappedResult */
	peer_do(&pe, "AGET", "AGET 1 20 ev");
	ASSERT_HR(pe.line, 0x800703E5);
	send_init(&s, &g.clients[0], 64, 15, -1, -100000000LL);
	send_start(&s);
	peer_do(&pe, "WAITEV", "WAITEV 1 10000");
	ASSERT_FIELD(pe.line, "r", 0);
	ASSERT_FIELD(pe.line, "ok", 0);
	ASSERT_FIELD(pe.line, "err", 122);
	ASSERT_FIELD(pe.line, "internal", 0xC0000023u);
	peer_do(&pe, "AGET", "AGET 2 4096 ev");
	ASSERT_HR(pe.line, 0x800703E5);
	peer_do(&pe, "WAITEV", "WAITEV 2 10000");
	ASSERT_FIELD(pe.line, "ok", 1);
	ASSERT_FIELD(pe.line, "bytes", 16 + 64);
	cr_assert_str_eq(tu_field(pe.line, "data"), hexs(s.msg, 64));
	send_join(&s);
	cr_assert_eq(s.st, STATUS_SUCCESS, "0x%08X", (unsigned)s.st);

	/* the IOCP */
	peer_do(&pe, "IOCP", "IOCP 0x77");
	ASSERT_FIELD(pe.line, "ok", 1);
	peer_do(&pe, "AGET", "AGET 3 30");
	ASSERT_HR(pe.line, 0x800703E5);
	send_init(&s, &g.clients[0], 64, 16, -1, -100000000LL);
	send_start(&s);
	peer_do(&pe, "GQCS", "GQCS 10000");
	ASSERT_FIELD(pe.line, "ok", 0);
	ASSERT_FIELD(pe.line, "err", 122);
	ASSERT_FIELD(pe.line, "ov", 3);
	ASSERT_FIELD(pe.line, "key", 0x77);
	peer_do(&pe, "AGET", "AGET 4 4096");
	ASSERT_HR(pe.line, 0x800703E5);
	peer_do(&pe, "GQCS", "GQCS 10000");
	ASSERT_FIELD(pe.line, "ok", 1);
	ASSERT_FIELD(pe.line, "ov", 4);
	ASSERT_FIELD(pe.line, "bytes", 16 + 64);
	cr_assert_str_eq(tu_field(pe.line, "data"), hexs(s.msg, 64));
	send_join(&s);
	cr_assert_eq(s.st, STATUS_SUCCESS, "0x%08X", (unsigned)s.st);
	peer_end(&pe);
	finish();
}

/* SPEC §2.4, §5 (path 2), §8.6, §8.14, §8.28: FltCloseClientPort sets the
 * variable to NULL; pending overlapped reads complete with
 * ERROR_INVALID_HANDLE (Internal = STATUS_INVALID_HANDLE); every later user
 * call fails at once with 0x80070006; FltSendMessage through the variable →
 * STATUS_PORT_DISCONNECTED; DisconnectNotify runs exactly once. */
Test(getreply, close_client_port, .timeout = 60)
{
	const char *name = setup_port(on_message, 4, true);
	bool seen[4] = { false };
	struct sendop s;
	struct peer pe;

	connect_one(&pe, name);
	peer_do(&pe, "IOCP", "IOCP 0x99");
	ASSERT_FIELD(pe.line, "ok", 1);
	for (int t = 1; t <= 3; t++) {
		peer_do(&pe, "AGET", "AGET %d 4096", t);
		ASSERT_HR(pe.line, 0x800703E5);
	}
	FltCloseClientPort(NULL, &g.clients[0]);
	for (int i = 0; i < 3; i++) {
		long long tag;

		peer_do(&pe, "GQCS", "GQCS 10000");
		ASSERT_FIELD(pe.line, "ok", 0);
		ASSERT_FIELD(pe.line, "err", 6);
		ASSERT_FIELD(pe.line, "key", 0x99);
		ASSERT_FIELD(pe.line, "internal", 0xC0000008u);
		tag = tu_field_num(pe.line, "ov");
		cr_assert(tag >= 1 && tag <= 3 && !seen[tag], "%s", pe.line);
		seen[tag] = true;
	}
	peer_do(&pe, "SENT", "SEND x01 8");
	ASSERT_HR(pe.line, 0x80070006);
	peer_do(&pe, "GOT", "GET 4096 0");
	ASSERT_HR(pe.line, 0x80070006);
	peer_do(&pe, "AGET", "AGET 4 4096");
	ASSERT_HR(pe.line, 0x80070006);
	peer_do(&pe, "GQCS", "GQCS 50"); /* the failed AGET queued nothing */
	ASSERT_FIELD(pe.line, "err", 258);
	peer_do(&pe, "REPLIED", "REPLY 1 0 x00");
	ASSERT_HR(pe.line, 0x80070006);

	send_init(&s, &g.clients[0], 8, 1, -1, -10000000LL);
	send_main(&s);
	cr_assert_eq(s.st, STATUS_PORT_DISCONNECTED, "0x%08X", (unsigned)s.st);
	cr_assert_null(g.clients[0]);
	FltCloseClientPort(NULL, &g.clients[0]); /* already NULL: a no-op */

	cr_assert(wait_int(&g.ndisc, 1, 10000), "DisconnectNotify after FltCloseClientPort");
	/* Read only now: DisconnectNotify's own FltCloseClientPort on the same
	 * variable happens before its g.ndisc++ (see on_disconnect). */
	pthread_mutex_lock(&g.lock);
	cr_assert_null(g.clients[0], "FltCloseClientPort sets the variable to NULL");
	pthread_mutex_unlock(&g.lock);
	peer_do(&pe, "CLOSED", "CLOSE");
	ASSERT_FIELD(pe.line, "ok", 1);
	peer_end(&pe);
	finish();
	cr_assert_eq(get_int(&g.ndisc), 1, "DisconnectNotify exactly once");
}

/* ======================================================================
 * Overlapped reads, completion ports, events, cancel
 * ====================================================================== */

struct verdict_send {
	struct sendop s;
	uint32_t verdict;
};

/* SPEC §3.3, §5, §3.6: every overlapped FilterGetMessage returns
 * 0x800703E5; completions come through GetQueuedCompletionStatus with the
 * key and the OVERLAPPED (CONTAINING_RECORD finds the read), taken by
 * several threads in any order; each read gets exactly one message and
 * each reply (packed, by MessageId) reaches its own sender. */
Test(overlapped, iocp_several_threads, .timeout = 60)
{
	enum { N = 8 };
	const char *name = setup_port(on_message, 4, true);
	static struct sendop s[N];
	bool tag_seen[N + 1] = { false }, msg_seen[N] = { false };
	struct peer pe;

	connect_one(&pe, name);
	peer_do(&pe, "IOCP", "IOCP 0xABC");
	ASSERT_FIELD(pe.line, "ok", 1);
	for (int t = 1; t <= N; t++) {
		peer_do(&pe, "AGET", "AGET %d 4096", t);
		ASSERT_HR(pe.line, 0x800703E5);
	}
	for (int i = 0; i < N; i++) {
		send_init(&s[i], &g.clients[0], 16 + (size_t)i, 100 + (unsigned)i, 4, -100000000LL);
		send_start(&s[i]);
	}
	peer_cmd(&pe, "DRAIN 4 %d 10000 reply", N);
	for (int i = 0; i < N; i++) {
		long long tag, len;
		int k;

		peer_expect(&pe, "COMP");
		ASSERT_FIELD(pe.line, "ok", 1);
		ASSERT_FIELD(pe.line, "key", 0xABC);
		ASSERT_FIELD(pe.line, "rl", 4 + 16);
		cr_assert_eq(strtoul(tu_field(pe.line, "replyhr"), NULL, 0), 0ul, "%s", pe.line);
		tag = tu_field_num(pe.line, "ov");
		cr_assert(tag >= 1 && tag <= N && !tag_seen[tag], "%s", pe.line);
		tag_seen[tag] = true;
		len = tu_field_num(pe.line, "len");
		ASSERT_FIELD(pe.line, "bytes", 16 + len);
		k = (int)len - 16;
		cr_assert(k >= 0 && k < N && !msg_seen[k], "%s", pe.line);
		msg_seen[k] = true;
		cr_assert_eq(strtoul(tu_field(pe.line, "sum"), NULL, 16),
			     (unsigned long)tu_fnv1a32(s[k].msg, s[k].len), "%s", pe.line);
	}
	peer_expect(&pe, "DRAINED");
	ASSERT_FIELD(pe.line, "wait", 0);
	ASSERT_FIELD(pe.line, "fails", 0);
	for (int i = 0; i < N; i++) {
		uint32_t v;

		send_join(&s[i]);
		cr_assert_eq(s[i].st, STATUS_SUCCESS, "sender %d: 0x%08X", i, (unsigned)s[i].st);
		cr_assert_eq(s[i].rlen, 4u);
		memcpy(&v, s[i].reply, 4);
		cr_assert_eq(v, tu_fnv1a32(s[i].msg, s[i].len), "sender %d got another's reply", i);
	}
	peer_end(&pe);
	finish();
}

/* SPEC §3.3, §8.19: an OVERLAPPED with hEvent: the event is reset when the
 * read is posted, signalled on delivery; WaitForSingleObject returns
 * WAIT_OBJECT_0 (0) and GetOverlappedResult gives the bytes (InternalHigh =
 * 16 + payload); without a message it returns WAIT_TIMEOUT (258). */
Test(overlapped, event, .timeout = 60)
{
	const char *name = setup_port(on_message, 4, true);
	struct sendop s;
	struct peer pe;

	connect_one(&pe, name);
	peer_do(&pe, "AGET", "AGET 1 4096 ev");
	ASSERT_HR(pe.line, 0x800703E5);
	ASSERT_FIELD(pe.line, "evstate", 258); /* created signalled, reset by the post */
	peer_do(&pe, "WAITEV", "WAITEV 1 50");
	ASSERT_FIELD(pe.line, "r", 258);
	peer_do(&pe, "GOR", "GOR 1 0");
	ASSERT_FIELD(pe.line, "ok", 0);
	ASSERT_FIELD(pe.line, "err", 996); /* ERROR_IO_INCOMPLETE */
	ASSERT_FIELD(pe.line, "internal", 0x103);
	send_init(&s, &g.clients[0], 33, 21, -1, -100000000LL);
	send_start(&s);
	peer_do(&pe, "WAITEV", "WAITEV 1 10000");
	ASSERT_FIELD(pe.line, "r", 0);
	ASSERT_FIELD(pe.line, "ok", 1);
	ASSERT_FIELD(pe.line, "bytes", 16 + 33);
	ASSERT_FIELD(pe.line, "internal", 0);
	ASSERT_FIELD(pe.line, "rl", 0);
	cr_assert_str_eq(tu_field(pe.line, "data"), hexs(s.msg, 33));
	send_join(&s);
	cr_assert_eq(s.st, STATUS_SUCCESS, "0x%08X", (unsigned)s.st);
	peer_do(&pe, "GOR", "GOR 1 1");
	ASSERT_FIELD(pe.line, "ok", 1);
	ASSERT_FIELD(pe.line, "bytes", 16 + 33);
	peer_end(&pe);
	finish();
}

/* SPEC §3.3, §8.14, §8.19, §8.28: CancelIoEx(h, &ov) → TRUE and that read
 * completes with ERROR_OPERATION_ABORTED (995, Internal STATUS_CANCELLED);
 * the others stay pending; CancelIoEx(h, NULL) cancels the rest; with
 * nothing pending → FALSE + ERROR_NOT_FOUND (1168).  Nothing is lost: a
 * message sent afterwards reaches a new read. */
Test(overlapped, cancel, .timeout = 60)
{
	const char *name = setup_port(on_message, 4, true);
	struct peer pe;

	connect_one(&pe, name);
	peer_do(&pe, "AGET", "AGET 1 4096 ev");
	ASSERT_HR(pe.line, 0x800703E5);
	peer_do(&pe, "AGET", "AGET 2 4096 ev");
	ASSERT_HR(pe.line, 0x800703E5);
	peer_do(&pe, "AGET", "AGET 3 4096 ev");
	ASSERT_HR(pe.line, 0x800703E5);
	peer_do(&pe, "CANCEL", "CANCEL 1");
	ASSERT_FIELD(pe.line, "ok", 1);
	peer_do(&pe, "WAITEV", "WAITEV 1 10000");
	ASSERT_FIELD(pe.line, "r", 0);
	ASSERT_FIELD(pe.line, "ok", 0);
	ASSERT_FIELD(pe.line, "err", 995);
	ASSERT_FIELD(pe.line, "internal", 0xC0000120u);
	peer_do(&pe, "WAITEV", "WAITEV 2 0");
	ASSERT_FIELD(pe.line, "r", 258);
	peer_do(&pe, "CANCEL", "CANCEL idle");
	ASSERT_FIELD(pe.line, "ok", 0);
	ASSERT_FIELD(pe.line, "err", 1168);
	peer_do(&pe, "CANCEL", "CANCEL all");
	ASSERT_FIELD(pe.line, "ok", 1);
	peer_do(&pe, "WAITEV", "WAITEV 2 10000");
	ASSERT_FIELD(pe.line, "err", 995);
	peer_do(&pe, "WAITEV", "WAITEV 3 10000");
	ASSERT_FIELD(pe.line, "err", 995);
	peer_do(&pe, "CANCEL", "CANCEL all");
	ASSERT_FIELD(pe.line, "ok", 0);
	ASSERT_FIELD(pe.line, "err", 1168);
	peer_do(&pe, "CANCEL", "CANCEL 1"); /* completed already */
	ASSERT_FIELD(pe.line, "ok", 0);
	ASSERT_FIELD(pe.line, "err", 1168);
	assert_next_is_fresh(&pe, 4);
	peer_end(&pe);
	finish();
}

/* SPEC §3.5, §8.14, §8.6: the user's CloseHandle with pending reads → each
 * completes with ERROR_OPERATION_ABORTED (995) through the IOCP;
 * CloseHandle on the closed handle → FALSE + ERROR_INVALID_HANDLE;
 * DisconnectNotify once. */
Test(overlapped, close_handle_with_pending_reads, .timeout = 60)
{
	const char *name = setup_port(on_message, 4, true);
	bool seen[4] = { false };
	struct peer pe;

	connect_one(&pe, name);
	peer_do(&pe, "IOCP", "IOCP 5");
	ASSERT_FIELD(pe.line, "ok", 1);
	for (int t = 1; t <= 3; t++) {
		peer_do(&pe, "AGET", "AGET %d 4096", t);
		ASSERT_HR(pe.line, 0x800703E5);
	}
	peer_do(&pe, "CLOSED", "CLOSE");
	ASSERT_FIELD(pe.line, "ok", 1);
	for (int i = 0; i < 3; i++) {
		long long tag;

		peer_do(&pe, "GQCS", "GQCS 10000");
		ASSERT_FIELD(pe.line, "ok", 0);
		ASSERT_FIELD(pe.line, "err", 995);
		ASSERT_FIELD(pe.line, "key", 5);
		ASSERT_FIELD(pe.line, "internal", 0xC0000120u);
		tag = tu_field_num(pe.line, "ov");
		cr_assert(tag >= 1 && tag <= 3 && !seen[tag], "%s", pe.line);
		seen[tag] = true;
	}
	peer_do(&pe, "CLOSED", "CLOSE");
	ASSERT_FIELD(pe.line, "ok", 0);
	ASSERT_FIELD(pe.line, "err", 6);
	cr_assert(wait_int(&g.ndisc, 1, 10000));
	peer_end(&pe);
	finish();
	cr_assert_eq(get_int(&g.ndisc), 1);
}

struct blocked_wait {
	long pid, tid;
};

/* Is the thread asleep ('S') in the futex system call? */
static bool thread_in_futex(void *arg)
{
	struct blocked_wait *w = arg;
	char path[128], buf[512], *p;
	long nr = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/stat", w->pid, w->tid);
	f = fopen(path, "r");
	if (!f)
		return false;
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	if (!p || p[1] != ' ' || p[2] != 'S')
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/syscall", w->pid, w->tid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fscanf(f, "%ld", &nr) != 1)
		nr = -1;
	fclose(f);
	return nr == SYS_futex;
}

/* One try of the abandoned wait: true if the waiter was inside GQCS when the
 * port closed (then it must see 735); false if it had not got there yet
 * (ERROR_INVALID_HANDLE, 6: a closed handle, correct too) — a thread shown
 * asleep in futex() can still be on its way in, e.g. in a sanitizer's lock. */
static bool abandoned_wait_once(const char *name, bool check_timeout)
{
	bool closed = false, inside = false;
	struct blocked_wait bw;
	struct peer pe;
	long err = -1;

	connect_one(&pe, name);
	peer_do(&pe, "IOCP", "IOCP 1");
	ASSERT_FIELD(pe.line, "ok", 1);
	if (check_timeout) {
		peer_do(&pe, "GQCS", "GQCS 100");
		ASSERT_FIELD(pe.line, "ok", 0);
		ASSERT_FIELD(pe.line, "err", 258);
		cr_assert_str_eq(tu_field(pe.line, "ov"), "null");
	}
	peer_do(&pe, "BGWAITING", "GQCSBG 20000");
	/* The thread printed BGWAITING just before calling GQCS: wait until
	 * the kernel shows it asleep in futex(), normally blocked in GQCS. */
	bw.pid = pe.pid;
	bw.tid = (long)tu_field_num(pe.line, "tid");
	cr_assert(tu_wait_until(thread_in_futex, &bw, 10000), "the waiter never blocked");
	peer_cmd(&pe, "CLOSEIOCP");
	/* Two lines, in either order: the waiter may wake before the closer
	 * prints. */
	for (int i = 0; i < 2; i++) {
		cr_assert(tu_read_line(&pe.p, pe.line, sizeof(pe.line), LINE_WAIT_MS),
			  "no line from the peer");
		if (strncmp(pe.line, "CLOSEDIOCP", 10) == 0) {
			ASSERT_FIELD(pe.line, "ok", 1);
			closed = true;
		} else {
			cr_assert(strncmp(pe.line, "BG ", 3) == 0, "unexpected: %s", pe.line);
			ASSERT_FIELD(pe.line, "ok", 0);
			cr_assert_str_eq(tu_field(pe.line, "ov"), "null");
			err = tu_field_num(pe.line, "err");
			cr_assert(err == 735 || err == 6, "want err=735, got: %s", pe.line);
			inside = err == 735;
		}
	}
	cr_assert(closed && err >= 0);
	peer_end(&pe);
	return inside;
}

/* SPEC §8.19: GetQueuedCompletionStatus that times out → FALSE,
 * WAIT_TIMEOUT (258), NULL overlapped; a waiter blocked in it when the
 * completion port is closed → FALSE + ERROR_ABANDONED_WAIT_0 (735). */
Test(overlapped, gqcs_timeout_and_abandoned, .timeout = 120)
{
	const char *name = setup_port(on_message, 4, true);
	bool seen = false;

	for (int attempt = 0; attempt < 5 && !seen; attempt++)
		seen = abandoned_wait_once(name, attempt == 0);
	cr_assert(seen, "the waiter never was inside GQCS when the port closed (5 tries)");
	finish();
}

/* SPEC §8.19: events (auto/manual reset), WaitForMultipleObjects (any/all,
 * WAIT_OBJECT_0 + index, WAIT_TIMEOUT), thread handles and exit codes,
 * PostQueuedCompletionStatus, CloseHandle twice → FALSE +
 * ERROR_INVALID_HANDLE, waits on a closed handle → WAIT_FAILED. */
Test(overlapped, win32_basics, .timeout = 60)
{
	static const struct {
		const char *name;
		unsigned long long want;
	} rows[] = {
		{ "wait_none", 258 },          { "wait_any", 1 },
		{ "wait_all_one_set", 258 },   { "wait_all", 0 },
		{ "auto_consumed", 258 },      { "manual_kept", 0 },
		{ "manual_reset", 258 },       { "any_first", 0 },
		{ "thread_wait", 0 },          { "thread_code_ok", 1 },
		{ "thread_code", 42 },         { "close_thread", 1 },
		{ "close_event", 1 },          { "close_again", 0 },
		{ "close_again_err", 6 },      { "wait_closed", 0xFFFFFFFFull },
		{ "wait_closed_err", 6 },      { "iocp_created", 1 },
		{ "gqcs_timeout_ok", 0 },      { "gqcs_timeout_err", 258 },
		{ "gqcs_timeout_ov_null", 1 }, { "post", 1 },
		{ "gqcs_posted_ok", 1 },       { "gqcs_posted_bytes", 7 },
		{ "gqcs_posted_key", 0x77 },   { "gqcs_posted_ov", 1 },
		{ "close_iocp", 1 },           { "close_iocp_again", 0 },
		{ "close_iocp_again_err", 6 }, { "hr_from_win32_5", 0x80070005ull },
		{ "failed_e_fail", 1 },        { "succeeded_s_false", 1 },
	};
	struct peer pe;

	tu_private_dir();
	peer_start(&pe, NULL);
	peer_cmd(&pe, "BASICS");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char key[64];

		peer_expect(&pe, "BASIC ");
		snprintf(key, sizeof(key), "BASIC %s=", rows[i].name);
		cr_assert(strncmp(pe.line, key, strlen(key)) == 0, "want %s, got %s", key, pe.line);
		cr_assert_eq(strtoull(pe.line + strlen(key), NULL, 0), rows[i].want,
			     "%s: want %llu", pe.line, rows[i].want);
	}
	peer_expect(&pe, "BASICS done");
	peer_end(&pe);
	finish();
}
