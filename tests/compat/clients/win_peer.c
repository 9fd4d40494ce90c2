/*
 * win_peer — a Windows-style user-side program for tests/compat/test_compat_user.c.
 *
 * It includes only <windows.h>, <fltuser.h> and standard C headers, so the
 * same source also cross-compiles for Windows with mingw-w64
 * (scripts/cross-compile-clients.sh, SPEC §8.31).
 *
 *   win_peer [--as-uid N] [--watchdog SECONDS]
 *
 * Prints "READY pid=<pid>", then runs one command per stdin line and prints
 * one result line per command (fflush after each).  Values: HRESULTs as
 * hr=0x%08X, Win32 errors in decimal, payloads as len=, sum= (FNV-1a 32) and
 * data= (hex, at most 64 bytes).  EOF on stdin or QUIT ends the program; a
 * watchdog thread ends it with exit code 3 after the deadline (default 30 s).
 *
 * Port handles live in slots; CONNECT fills the next slot and makes it the
 * current one, USE switches.
 *
 *   CONNECT <name> <opts> <ctx>    -> CONNECT hr= slot= inval=<1 if *hPort == INVALID_HANDLE_VALUE>
 *   USE <slot>
 *   SEND <data> <outcap|null> [noret] -> SENT hr= ret= sum= data=
 *   BIGAGET <size>                 overlapped read into a heap buffer, waited for -> BIGGOT hr= r= ok= err= bytes= rl= sum=
 *   GET <size> <shown>             sync FilterGetMessage -> GOT hr= rl= id= data=<first shown bytes>
 *   AGET <tag> <size> [ev]         overlapped FilterGetMessage -> AGET tag= hr= evstate=
 *   IOCP <key>                     CreateIoCompletionPort + associate -> IOCP ok= err=
 *   GQCS <ms>                      -> GQCS ok= err= bytes= key= ov=<tag|null> internal= rl= id= len= sum= data=
 *   DRAIN <threads> <count> <ms> <reply|noreply>
 *                                  threads call GQCS until <count> completions -> COMP ... lines, DRAINED
 *   WAITEV <tag> <ms>              WaitForSingleObject(event) + GetOverlappedResult -> WAITEV r= ok= ...
 *   GOR <tag> <wait>               GetOverlappedResult -> GOR ok= err= ...
 *   CANCEL <tag|all|idle>          CancelIoEx(h, &ov | NULL | never-posted ov) -> CANCEL ok= err=
 *   REPLY <id|last> <status> <data> [size]   FilterReplyMessage -> REPLIED hr= size=
 *   REPLYPACK <id|last> <byte>     #pragma pack(1) {FILTER_REPLY_HEADER; UCHAR}, sizeof (17)
 *   REPLYUNPACK <id|last> <byte>   unpacked {FILTER_REPLY_HEADER; UCHAR}, sizeof (24)
 *   CLOSE                          CloseHandle(current port) -> CLOSED ok= err=
 *   CLOSEIOCP                      CloseHandle(iocp) -> CLOSEDIOCP ok= err=
 *   GQCSBG <ms>                    a thread blocks in GQCS -> BGWAITING tid=, later BG ok= err= ov=
 *   BASICS                         events, waits, handles -> BASIC <name>=<value> ..., BASICS done
 *   QUIT                           -> BYE, exit 0
 *
 * <name>: the port name; %XX is the character with hex code XX.
 * <data>: "-" (empty), "x<hex>", or "p<len>:<seed>" (the test pattern).
 * <ctx>:  "-" (NULL, 0), "null:<n>" (NULL, n), "zero" (a buffer, 0), or a <data>.
 */
#ifndef _WIN32
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif
#include <grp.h>
#include <unistd.h>
#endif

#include <windows.h>
#include <fltuser.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* Debian 12's mingw-w64 headers lack these (SPEC §8.31, §3.1). */
#ifndef FLT_PORT_FLAG_SYNC_HANDLE
#define FLT_PORT_FLAG_SYNC_HANDLE 0x00000001
#endif
#ifndef FLT_PORT_CONTEXT_MAX
#define FLT_PORT_CONTEXT_MAX 0xFFE8
#endif

#define MAX_PORTS 8
#define MAX_READS 64
#define DATA_MAX 16384
#define HEX_MAX 64
#define DATA_ARG_MAX 0x10000
#define BIG_MAX (9u << 20) /* SEND payloads: above the 8 MiB default limit */

/* The embedded-OVERLAPPED pattern of the scanner sample: the message
 * buffer, then the OVERLAPPED; CONTAINING_RECORD finds the read again. */
typedef struct _READ_SLOT {
	FILTER_MESSAGE_HEADER MessageHeader;
	UCHAR Data[DATA_MAX];
	OVERLAPPED Ovlp;
	int Tag;
	int InUse;
	HANDLE Event;
} READ_SLOT, *PREAD_SLOT;

#pragma pack(push, 1)
typedef struct _PACKED_REPLY {
	FILTER_REPLY_HEADER ReplyHeader;
	UCHAR Verdict;
} PACKED_REPLY;
#pragma pack(pop)

typedef struct _UNPACKED_REPLY {
	FILTER_REPLY_HEADER ReplyHeader;
	UCHAR Verdict;
} UNPACKED_REPLY;

static HANDLE ports[MAX_PORTS];
static int cur;
static HANDLE iocp;
static READ_SLOT reads[MAX_READS];
static ULONGLONG last_id;

/* Read a pending OVERLAPPED's status while the completion may be writing it
 * (what HasOverlappedIoCompleted does on Windows): an atomic load, so that
 * ThreadSanitizer sees no race with the library's atomic store. */
static ULONG_PTR internal_of(PREAD_SLOT r)
{
	return __atomic_load_n(&r->Ovlp.Internal, __ATOMIC_ACQUIRE);
}

static unsigned char pattern_byte(size_t i, unsigned seed)
{
	return (unsigned char)(i * 131u + (i >> 8) * 7u + (i >> 16) + seed * 29u);
}

static unsigned fnv32(const void *p, size_t n)
{
	const unsigned char *b = (const unsigned char *)p;
	unsigned h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 16777619u;
	}
	return h;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	/* One printf per line: lines from several threads never interleave. */
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	printf("%s\n", buf);
	fflush(stdout);
}

static const char *hex(const void *p, size_t n)
{
	static char buf[4][2 * HEX_MAX + 1];
	static int k;
	const unsigned char *b = (const unsigned char *)p;
	char *out = buf[k++ % 4];
	size_t i;

	if (n > HEX_MAX)
		n = HEX_MAX;
	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	out[2 * n] = '\0';
	if (n == 0)
		strcpy(out, "-");
	return out;
}

/* Parses a <data> token into buf (capacity cap); returns the length or -1. */
static long parse_data(const char *s, unsigned char *buf, size_t cap)
{
	size_t n = 0;

	if (!s || strcmp(s, "-") == 0)
		return 0;
	if (s[0] == 'x') {
		for (s++; s[0] && s[1]; s += 2) {
			unsigned v;

			if (n >= cap || sscanf(s, "%2x", &v) != 1)
				return -1;
			buf[n++] = (unsigned char)v;
		}
		return (long)n;
	}
	if (s[0] == 'p') {
		unsigned long len = 0;
		unsigned seed = 0;

		if (sscanf(s + 1, "%lu:%u", &len, &seed) != 2 || len > cap)
			return -1;
		for (n = 0; n < len; n++)
			buf[n] = pattern_byte(n, seed);
		return (long)n;
	}
	return -1;
}

static void parse_name(const char *s, WCHAR *out, size_t cap)
{
	size_t n = 0;

	while (*s && n + 1 < cap) {
		unsigned v;

		if (s[0] == '%' && s[1] && s[2] && sscanf(s + 1, "%2x", &v) == 1) {
			out[n++] = (WCHAR)v;
			s += 3;
		} else {
			out[n++] = (WCHAR)(unsigned char)*s++;
		}
	}
	out[n] = 0;
}

static PREAD_SLOT find_tag(int tag)
{
	for (int i = 0; i < MAX_READS; i++)
		if (reads[i].InUse && reads[i].Tag == tag)
			return &reads[i];
	return NULL;
}

static PREAD_SLOT new_read(int tag)
{
	PREAD_SLOT r = find_tag(tag);

	if (r)
		return r; /* reposting the same read */
	for (int i = 0; i < MAX_READS; i++)
		if (!reads[i].InUse) {
			reads[i].InUse = 1;
			reads[i].Tag = tag;
			return &reads[i];
		}
	return NULL;
}

/* Reports a completed read: "rl= id= len= sum= data=". */
static const char *describe_read(PREAD_SLOT r, DWORD bytes)
{
	static char buf[512];
	DWORD len =
		bytes >= sizeof(FILTER_MESSAGE_HEADER) ? bytes - sizeof(FILTER_MESSAGE_HEADER) : 0;

	if (bytes < sizeof(FILTER_MESSAGE_HEADER)) {
		snprintf(buf, sizeof(buf), "rl=- id=- len=0 sum=- data=-");
		return buf;
	}
	last_id = r->MessageHeader.MessageId;
	snprintf(buf, sizeof(buf), "rl=%u id=%llu len=%u sum=%08x data=%s",
		 (unsigned)r->MessageHeader.ReplyLength,
		 (unsigned long long)r->MessageHeader.MessageId, (unsigned)len, fnv32(r->Data, len),
		 hex(r->Data, len));
	return buf;
}

static HANDLE port(void)
{
	return ports[cur];
}

static DWORD WINAPI watchdog(LPVOID arg)
{
	DWORD secs = (DWORD)(ULONG_PTR)arg;

	Sleep(secs * 1000);
	fprintf(stderr, "win_peer: watchdog: %u s passed, exiting\n", (unsigned)secs);
	exit(3);
}

/* ---- commands ---- */

static void cmd_connect(const char *name, const char *opts, const char *ctx)
{
	static unsigned char cbuf[DATA_ARG_MAX];
	WCHAR wname[512];
	LPCVOID c = NULL;
	WORD clen = 0;
	HANDLE h = NULL;
	HRESULT hr;
	int slot;

	parse_name(name, wname, 512);
	if (strcmp(ctx, "-") == 0) {
		c = NULL;
		clen = 0;
	} else if (strncmp(ctx, "null:", 5) == 0) {
		c = NULL;
		clen = (WORD)strtoul(ctx + 5, NULL, 0);
	} else if (strcmp(ctx, "zero") == 0) {
		c = cbuf;
		clen = 0;
	} else {
		long n = parse_data(ctx, cbuf, sizeof(cbuf));

		if (n < 0) {
			say("CONNECT error=badctx");
			return;
		}
		c = cbuf;
		clen = (WORD)n;
	}
	for (slot = 0; slot < MAX_PORTS; slot++)
		if (ports[slot] == NULL)
			break;
	if (slot == MAX_PORTS) {
		say("CONNECT error=noslot");
		return;
	}
	hr = FilterConnectCommunicationPort(wname, (DWORD)strtoul(opts, NULL, 0), c, clen, NULL,
					    &h);
	if (SUCCEEDED(hr)) {
		ports[slot] = h;
		cur = slot;
	}
	say("CONNECT hr=0x%08X slot=%d inval=%d", (unsigned)hr, SUCCEEDED(hr) ? slot : -1,
	    h == INVALID_HANDLE_VALUE ? 1 : 0);
}

static void cmd_send(const char *data, const char *outcap, const char *noret)
{
	static unsigned char *in, *out;
	long n;
	DWORD cap = 0, ret = 0xDEADBEEFu;
	LPVOID o = NULL;
	HRESULT hr;

	if (!in)
		in = (unsigned char *)malloc(BIG_MAX);
	if (!out)
		out = (unsigned char *)malloc(BIG_MAX);
	if (!in || !out) {
		say("SENT error=nomem");
		return;
	}
	n = parse_data(data, in, BIG_MAX);
	if (n < 0) {
		say("SENT error=baddata");
		return;
	}
	if (strcmp(outcap, "null") == 0) {
		o = NULL;
		cap = 100; /* ignored without a buffer (SPEC §8.16) */
	} else {
		cap = (DWORD)strtoul(outcap, NULL, 0);
		if (cap > BIG_MAX)
			cap = BIG_MAX;
		memset(out, 0xEE, cap);
		o = out;
	}
	hr = FilterSendMessage(port(), n ? in : NULL, (DWORD)n, o, cap,
			       noret && strcmp(noret, "noret") == 0 ? NULL : &ret);
	say("SENT hr=0x%08X ret=%u sum=%08x data=%s", (unsigned)hr, (unsigned)ret,
	    o && ret <= cap ? fnv32(out, ret) : 0u, o && ret <= cap ? hex(out, ret) : "-");
}

/* BIGAGET <size>: one overlapped read into a heap buffer of <size> bytes
 * (header included), waited for with its event (10 s). */
static void cmd_bigaget(const char *size)
{
	DWORD sz = (DWORD)strtoul(size, NULL, 0), bytes = 0, w, err = 0;
	PFILTER_MESSAGE_HEADER m = (PFILTER_MESSAGE_HEADER)malloc(sz);
	OVERLAPPED ov;
	HRESULT hr;
	BOOL ok = FALSE;

	if (!m) {
		say("BIGGOT error=nomem");
		return;
	}
	memset(&ov, 0, sizeof(ov));
	ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
	hr = FilterGetMessage(port(), m, sz, &ov);
	w = WaitForSingleObject(ov.hEvent, 10000);
	if (w == WAIT_OBJECT_0) {
		ok = GetOverlappedResult(port(), &ov, &bytes, FALSE);
		if (!ok)
			err = GetLastError();
	}
	if (ok)
		last_id = m->MessageId;
	say("BIGGOT hr=0x%08X r=%u ok=%d err=%u bytes=%u rl=%u sum=%08x", (unsigned)hr, (unsigned)w,
	    ok ? 1 : 0, (unsigned)err, (unsigned)bytes, ok ? (unsigned)m->ReplyLength : 0u,
	    ok && bytes >= sizeof(*m) ? fnv32(m + 1, bytes - sizeof(*m)) : 0u);
	CloseHandle(ov.hEvent);
	free(m);
}

static void cmd_get(const char *size, const char *shown)
{
	static READ_SLOT r;
	DWORD sz = (DWORD)strtoul(size, NULL, 0);
	DWORD show = (DWORD)strtoul(shown, NULL, 0);
	HRESULT hr;

	if (sz > sizeof(FILTER_MESSAGE_HEADER) + DATA_MAX)
		sz = sizeof(FILTER_MESSAGE_HEADER) + DATA_MAX;
	if (show > DATA_MAX)
		show = DATA_MAX;
	memset(&r, 0xEE, sizeof(r));
	hr = FilterGetMessage(port(), &r.MessageHeader, sz, NULL);
	if (hr == S_OK)
		last_id = r.MessageHeader.MessageId;
	say("GOT hr=0x%08X rl=%u id=%llu data=%s", (unsigned)hr,
	    hr == S_OK ? (unsigned)r.MessageHeader.ReplyLength : 0u,
	    hr == S_OK ? (unsigned long long)r.MessageHeader.MessageId : 0ull,
	    hr == S_OK ? hex(r.Data, show) : "-");
}

static void cmd_aget(const char *tag, const char *size, const char *ev)
{
	PREAD_SLOT r = new_read(atoi(tag));
	DWORD sz = (DWORD)strtoul(size, NULL, 0);
	DWORD evstate = 0xFFFFFFFFu;
	HRESULT hr;

	if (!r) {
		say("AGET error=noslot");
		return;
	}
	if (sz > FIELD_OFFSET(READ_SLOT, Ovlp))
		sz = FIELD_OFFSET(READ_SLOT, Ovlp);
	memset(&r->MessageHeader, 0xEE, FIELD_OFFSET(READ_SLOT, Ovlp));
	memset(&r->Ovlp, 0, sizeof(r->Ovlp));
	if (ev && strcmp(ev, "ev") == 0) {
		if (!r->Event)
			r->Event =
				CreateEventW(NULL, TRUE, TRUE, NULL); /* signalled: must be reset */
		else
			SetEvent(r->Event);
		r->Ovlp.hEvent = r->Event;
	}
	hr = FilterGetMessage(port(), &r->MessageHeader, sz, &r->Ovlp);
	if (r->Event)
		evstate = WaitForSingleObject(r->Event, 0);
	say("AGET tag=%d hr=0x%08X evstate=%u", r->Tag, (unsigned)hr, (unsigned)evstate);
}

static void cmd_iocp(const char *key)
{
	HANDLE q = CreateIoCompletionPort(port(), NULL, (ULONG_PTR)strtoull(key, NULL, 0), 0);

	if (q)
		iocp = q;
	say("IOCP ok=%d err=%u", q != NULL, q ? 0u : (unsigned)GetLastError());
}

static void report_completion(const char *what, BOOL ok, DWORD err, DWORD bytes, ULONG_PTR key,
			      LPOVERLAPPED ov)
{
	PREAD_SLOT r = ov ? CONTAINING_RECORD(ov, READ_SLOT, Ovlp) : NULL;
	char tagbuf[32];

	if (r)
		snprintf(tagbuf, sizeof(tagbuf), "%d", r->Tag);
	else
		strcpy(tagbuf, "null");
	say("%s ok=%d err=%u bytes=%u key=0x%llx ov=%s internal=0x%08X %s", what, ok ? 1 : 0,
	    (unsigned)err, (unsigned)bytes, (unsigned long long)key, tagbuf,
	    r ? (unsigned)internal_of(r) : 0u,
	    ok && r ? describe_read(r, bytes) : "rl=- id=- len=0 sum=- data=-");
}

static void cmd_gqcs(const char *ms)
{
	DWORD bytes = 0xFFFFFFFFu, err = 0;
	ULONG_PTR key = 0;
	LPOVERLAPPED ov = (LPOVERLAPPED)(ULONG_PTR)1; /* must come back NULL on a timeout */
	BOOL ok = GetQueuedCompletionStatus(iocp, &bytes, &key, &ov, (DWORD)strtoul(ms, NULL, 0));

	if (!ok)
		err = GetLastError();
	report_completion("GQCS", ok, err, ok || ov ? bytes : 0, key, ov);
}

/* DRAIN: several threads take completions in any order, optionally reply
 * with a 4-byte verdict (FNV-1a 32 of the payload) in a packed reply. */
#pragma pack(push, 1)
typedef struct _VERDICT_REPLY {
	FILTER_REPLY_HEADER ReplyHeader;
	ULONG Verdict;
} VERDICT_REPLY;
#pragma pack(pop)

/* The drain counters, under an auto-reset event used as a lock (the
 * Windows layer has no Interlocked* or critical sections). */
static HANDLE drain_lock;
static LONG drain_left;
static LONG drain_fails;
static int drain_reply;
static DWORD drain_ms;

static BOOL drain_take(void)
{
	BOOL more;

	WaitForSingleObject(drain_lock, INFINITE);
	more = drain_left > 0;
	if (more)
		drain_left--;
	SetEvent(drain_lock);
	return more;
}

static DWORD WINAPI drain_thread(LPVOID arg)
{
	int thr = (int)(ULONG_PTR)arg;

	while (drain_take()) {
		DWORD bytes = 0, err = 0;
		ULONG_PTR key = 0;
		LPOVERLAPPED ov = NULL;
		BOOL ok = GetQueuedCompletionStatus(iocp, &bytes, &key, &ov, drain_ms);
		PREAD_SLOT r = ov ? CONTAINING_RECORD(ov, READ_SLOT, Ovlp) : NULL;
		DWORD len = ok && r ? bytes - (DWORD)sizeof(FILTER_MESSAGE_HEADER) : 0;
		HRESULT rhr = S_OK;
		char tagbuf[32];

		if (!ok) {
			err = GetLastError();
			WaitForSingleObject(drain_lock, INFINITE);
			drain_fails++;
			SetEvent(drain_lock);
		}
		if (ok && r && drain_reply && r->MessageHeader.ReplyLength > 0) {
			VERDICT_REPLY rep;

			memset(&rep, 0, sizeof(rep));
			rep.ReplyHeader.Status = 0;
			rep.ReplyHeader.MessageId = r->MessageHeader.MessageId;
			rep.Verdict = fnv32(r->Data, len);
			rhr = FilterReplyMessage(port(), &rep.ReplyHeader, sizeof(rep));
		}
		if (r)
			snprintf(tagbuf, sizeof(tagbuf), "%d", r->Tag);
		else
			strcpy(tagbuf, "null");
		say("COMP thr=%d ok=%d err=%u key=0x%llx ov=%s bytes=%u rl=%u id=%llu len=%u "
		    "sum=%08x "
		    "replyhr=0x%08X",
		    thr, ok ? 1 : 0, (unsigned)err, (unsigned long long)key, tagbuf,
		    (unsigned)bytes, ok && r ? (unsigned)r->MessageHeader.ReplyLength : 0u,
		    ok && r ? (unsigned long long)r->MessageHeader.MessageId : 0ull, (unsigned)len,
		    ok && r ? fnv32(r->Data, len) : 0u, (unsigned)rhr);
	}
	return 0;
}

static void cmd_drain(const char *threads, const char *count, const char *ms, const char *reply)
{
	HANDLE th[16];
	int n = atoi(threads);
	DWORD w;

	if (n < 1 || n > 16) {
		say("DRAINED error=threads");
		return;
	}
	if (!drain_lock)
		drain_lock = CreateEventW(NULL, FALSE, TRUE, NULL);
	drain_left = atoi(count);
	drain_fails = 0;
	drain_ms = (DWORD)strtoul(ms, NULL, 0);
	drain_reply = reply && strcmp(reply, "reply") == 0;
	for (int i = 0; i < n; i++)
		th[i] = CreateThread(NULL, 0, drain_thread, (LPVOID)(ULONG_PTR)i, 0, NULL);
	w = WaitForMultipleObjects((DWORD)n, th, TRUE, 60000);
	for (int i = 0; i < n; i++)
		CloseHandle(th[i]);
	say("DRAINED wait=%u fails=%d", (unsigned)w, (int)drain_fails);
}

static void cmd_gor(const char *what, PREAD_SLOT r, BOOL wait, DWORD waitres)
{
	DWORD bytes = 0, err = 0;
	BOOL ok = GetOverlappedResult(port(), &r->Ovlp, &bytes, wait);

	if (!ok)
		err = GetLastError();
	say("%s r=%u ok=%d err=%u bytes=%u internal=0x%08X %s", what, (unsigned)waitres, ok ? 1 : 0,
	    (unsigned)err, (unsigned)bytes, (unsigned)internal_of(r),
	    ok ? describe_read(r, bytes) : "rl=- id=- len=0 sum=- data=-");
}

static void cmd_waitev(const char *tag, const char *ms)
{
	PREAD_SLOT r = find_tag(atoi(tag));
	DWORD w;

	if (!r || !r->Event) {
		say("WAITEV error=notag");
		return;
	}
	w = WaitForSingleObject(r->Event, (DWORD)strtoul(ms, NULL, 0));
	if (w == WAIT_OBJECT_0)
		cmd_gor("WAITEV", r, FALSE, w);
	else
		say("WAITEV r=%u ok=0 err=%u", (unsigned)w, (unsigned)GetLastError());
}

static void cmd_cancel(const char *what)
{
	static OVERLAPPED idle;
	LPOVERLAPPED ov;
	BOOL ok;

	if (strcmp(what, "all") == 0) {
		ov = NULL;
	} else if (strcmp(what, "idle") == 0) {
		ov = &idle;
	} else {
		PREAD_SLOT r = find_tag(atoi(what));

		if (!r) {
			say("CANCEL error=notag");
			return;
		}
		ov = &r->Ovlp;
	}
	ok = CancelIoEx(port(), ov);
	say("CANCEL ok=%d err=%u", ok ? 1 : 0, ok ? 0u : (unsigned)GetLastError());
}

static ULONGLONG parse_id(const char *s)
{
	return strcmp(s, "last") == 0 ? last_id : strtoull(s, NULL, 0);
}

static void cmd_reply(const char *id, const char *status, const char *data, const char *size)
{
	static unsigned char buf[sizeof(FILTER_REPLY_HEADER) + DATA_ARG_MAX];
	PFILTER_REPLY_HEADER h = (PFILTER_REPLY_HEADER)buf;
	long n = parse_data(data, buf + sizeof(FILTER_REPLY_HEADER),
			    sizeof(buf) - sizeof(FILTER_REPLY_HEADER));
	DWORD sz;
	HRESULT hr;

	if (n < 0) {
		say("REPLIED error=baddata");
		return;
	}
	h->Status = (NTSTATUS)strtoul(status, NULL, 0);
	h->MessageId = parse_id(id);
	sz = size ? (DWORD)strtoul(size, NULL, 0)
		  : (DWORD)(sizeof(FILTER_REPLY_HEADER) + (size_t)n);
	hr = FilterReplyMessage(port(), h, sz);
	say("REPLIED hr=0x%08X size=%u", (unsigned)hr, (unsigned)sz);
}

static void cmd_replypack(const char *id, const char *byte, int packed)
{
	HRESULT hr;
	DWORD sz;

	if (packed) {
		PACKED_REPLY rep;

		memset(&rep, 0, sizeof(rep));
		rep.ReplyHeader.MessageId = parse_id(id);
		rep.Verdict = (UCHAR)strtoul(byte, NULL, 0);
		sz = sizeof(rep);
		hr = FilterReplyMessage(port(), &rep.ReplyHeader, sz);
	} else {
		UNPACKED_REPLY rep;

		memset(&rep, 0, sizeof(rep));
		rep.ReplyHeader.MessageId = parse_id(id);
		rep.Verdict = (UCHAR)strtoul(byte, NULL, 0);
		sz = sizeof(rep);
		hr = FilterReplyMessage(port(), &rep.ReplyHeader, sz);
	}
	say("REPLIED hr=0x%08X size=%u", (unsigned)hr, (unsigned)sz);
}

static DWORD bg_ms;

static DWORD WINAPI gqcs_bg(LPVOID arg)
{
	DWORD bytes = 0, err = 0;
	ULONG_PTR key = 0;
	LPOVERLAPPED ov = (LPOVERLAPPED)(ULONG_PTR)1;
	BOOL ok;

	(void)arg;
	say("BGWAITING tid=%u", (unsigned)GetCurrentThreadId());
	ok = GetQueuedCompletionStatus(iocp, &bytes, &key, &ov, bg_ms);
	if (!ok)
		err = GetLastError();
	say("BG ok=%d err=%u ov=%s", ok ? 1 : 0, (unsigned)err, ov ? "set" : "null");
	return 0;
}

static void cmd_gqcsbg(const char *ms)
{
	HANDLE t;

	bg_ms = (DWORD)strtoul(ms, NULL, 0);
	t = CreateThread(NULL, 0, gqcs_bg, NULL, 0, NULL);
	if (t)
		CloseHandle(t);
	else
		say("BG error=thread");
}

static void basic(const char *name, unsigned long long v)
{
	say("BASIC %s=%llu", name, v);
}

static DWORD WINAPI exit_code_thread(LPVOID arg)
{
	return (DWORD)(ULONG_PTR)arg;
}

/* Win32 basics port clients rely on (SPEC §8.19). */
static void cmd_basics(void)
{
	HANDLE e[2], t, q;
	DWORD code = 0, bytes = 0;
	ULONG_PTR key = 0;
	LPOVERLAPPED ov = (LPOVERLAPPED)(ULONG_PTR)1;
	OVERLAPPED mine;
	BOOL ok;

	e[0] = CreateEventW(NULL, FALSE, FALSE, NULL); /* auto-reset */
	e[1] = CreateEventW(NULL, TRUE, FALSE, NULL);  /* manual-reset */
	basic("wait_none", WaitForMultipleObjects(2, e, FALSE, 10));
	SetEvent(e[1]);
	basic("wait_any", WaitForMultipleObjects(2, e, FALSE, 1000));
	basic("wait_all_one_set", WaitForMultipleObjects(2, e, TRUE, 10));
	SetEvent(e[0]);
	basic("wait_all", WaitForMultipleObjects(2, e, TRUE, 1000));
	basic("auto_consumed", WaitForSingleObject(e[0], 0));
	basic("manual_kept", WaitForSingleObject(e[1], 0));
	ResetEvent(e[1]);
	basic("manual_reset", WaitForSingleObject(e[1], 0));
	SetEvent(e[0]);
	basic("any_first", WaitForMultipleObjects(2, e, FALSE, 0));

	t = CreateThread(NULL, 0, exit_code_thread, (LPVOID)(ULONG_PTR)42, 0, NULL);
	basic("thread_wait", WaitForSingleObject(t, 10000));
	ok = GetExitCodeThread(t, &code);
	basic("thread_code_ok", (unsigned long long)ok);
	basic("thread_code", code);
	basic("close_thread", (unsigned long long)CloseHandle(t));

	basic("close_event", (unsigned long long)CloseHandle(e[0]));
	SetLastError(0);
	basic("close_again", (unsigned long long)CloseHandle(e[0]));
	basic("close_again_err", GetLastError());
	SetLastError(0);
	basic("wait_closed", WaitForSingleObject(e[0], 0));
	basic("wait_closed_err", GetLastError());
	CloseHandle(e[1]);

	q = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 0);
	basic("iocp_created", q != NULL);
	ok = GetQueuedCompletionStatus(q, &bytes, &key, &ov, 50);
	basic("gqcs_timeout_ok", (unsigned long long)ok);
	basic("gqcs_timeout_err", GetLastError());
	basic("gqcs_timeout_ov_null", ov == NULL);
	memset(&mine, 0, sizeof(mine));
	basic("post", (unsigned long long)PostQueuedCompletionStatus(q, 7, 0x77, &mine));
	ok = GetQueuedCompletionStatus(q, &bytes, &key, &ov, 1000);
	basic("gqcs_posted_ok", (unsigned long long)ok);
	basic("gqcs_posted_bytes", bytes);
	basic("gqcs_posted_key", key);
	basic("gqcs_posted_ov", ov == &mine);
	basic("close_iocp", (unsigned long long)CloseHandle(q));
	SetLastError(0);
	basic("close_iocp_again", (unsigned long long)CloseHandle(q));
	basic("close_iocp_again_err", GetLastError());
	basic("hr_from_win32_5", (unsigned)HRESULT_FROM_WIN32(ERROR_ACCESS_DENIED));
	basic("failed_e_fail", FAILED(E_FAIL) ? 1u : 0u);
	basic("succeeded_s_false", SUCCEEDED(S_FALSE) ? 1u : 0u);
	say("BASICS done");
}

static void cmd_close(void)
{
	BOOL ok = CloseHandle(port());

	say("CLOSED ok=%d err=%u", ok ? 1 : 0, ok ? 0u : (unsigned)GetLastError());
}

static void cmd_closeiocp(void)
{
	BOOL ok = CloseHandle(iocp);

	say("CLOSEDIOCP ok=%d err=%u", ok ? 1 : 0, ok ? 0u : (unsigned)GetLastError());
}

static int run(char *line)
{
	char *argv[8] = { 0 };
	int argc = 0;
	char *p = strtok(line, " \t\r\n");

	while (p && argc < 8) {
		argv[argc++] = p;
		p = strtok(NULL, " \t\r\n");
	}
	if (argc == 0)
		return 1;
#define ARG(i) (argc > (i) ? argv[i] : "0")
#define OPT(i) (argc > (i) ? argv[i] : NULL)
	if (strcmp(argv[0], "CONNECT") == 0)
		cmd_connect(ARG(1), ARG(2), argc > 3 ? argv[3] : "-");
	else if (strcmp(argv[0], "USE") == 0)
		cur = atoi(ARG(1)) % MAX_PORTS;
	else if (strcmp(argv[0], "SEND") == 0)
		cmd_send(ARG(1), ARG(2), OPT(3));
	else if (strcmp(argv[0], "GET") == 0)
		cmd_get(ARG(1), ARG(2));
	else if (strcmp(argv[0], "BIGAGET") == 0)
		cmd_bigaget(ARG(1));
	else if (strcmp(argv[0], "AGET") == 0)
		cmd_aget(ARG(1), ARG(2), OPT(3));
	else if (strcmp(argv[0], "IOCP") == 0)
		cmd_iocp(ARG(1));
	else if (strcmp(argv[0], "GQCS") == 0)
		cmd_gqcs(ARG(1));
	else if (strcmp(argv[0], "DRAIN") == 0)
		cmd_drain(ARG(1), ARG(2), ARG(3), OPT(4));
	else if (strcmp(argv[0], "WAITEV") == 0)
		cmd_waitev(ARG(1), ARG(2));
	else if (strcmp(argv[0], "GOR") == 0) {
		PREAD_SLOT r = find_tag(atoi(ARG(1)));

		if (r)
			cmd_gor("GOR", r, atoi(ARG(2)) != 0, 0);
		else
			say("GOR error=notag");
	} else if (strcmp(argv[0], "CANCEL") == 0)
		cmd_cancel(ARG(1));
	else if (strcmp(argv[0], "REPLY") == 0)
		cmd_reply(ARG(1), ARG(2), argc > 3 ? argv[3] : "-", OPT(4));
	else if (strcmp(argv[0], "REPLYPACK") == 0)
		cmd_replypack(ARG(1), ARG(2), 1);
	else if (strcmp(argv[0], "REPLYUNPACK") == 0)
		cmd_replypack(ARG(1), ARG(2), 0);
	else if (strcmp(argv[0], "CLOSE") == 0)
		cmd_close();
	else if (strcmp(argv[0], "CLOSEIOCP") == 0)
		cmd_closeiocp();
	else if (strcmp(argv[0], "GQCSBG") == 0)
		cmd_gqcsbg(ARG(1));
	else if (strcmp(argv[0], "BASICS") == 0)
		cmd_basics();
	else if (strcmp(argv[0], "QUIT") == 0)
		return 0;
	else
		say("ERROR unknown command %s", argv[0]);
#undef ARG
#undef OPT
	return 1;
}

int main(int argc, char **argv)
{
	static char line[4 * DATA_ARG_MAX];
	DWORD secs = 30;
	HANDLE wd;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--watchdog") == 0 && i + 1 < argc) {
			secs = (DWORD)strtoul(argv[++i], NULL, 0);
		} else if (strcmp(argv[i], "--as-uid") == 0 && i + 1 < argc) {
#ifndef _WIN32
			/* Linux only: become an unprivileged user (SPEC §8.11). */
			unsigned long uid = strtoul(argv[++i], NULL, 0);

			if (setgroups(0, NULL) != 0 || setgid((gid_t)uid) != 0 ||
			    setuid((uid_t)uid) != 0) {
				say("ERROR cannot drop to uid %lu", uid);
				return 2;
			}
#else
			i++;
#endif
		}
	}
	wd = CreateThread(NULL, 0, watchdog, (LPVOID)(ULONG_PTR)secs, 0, NULL);
	if (wd)
		CloseHandle(wd);
	say("READY pid=%u", (unsigned)GetCurrentProcessId());
	while (fgets(line, sizeof(line), stdin))
		if (!run(line))
			break;
	say("BYE");
	return 0;
}
