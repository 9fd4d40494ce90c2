/*
 * libFuzzer target: the Windows layer's header and offset arithmetic
 * (issue 8): FilterSendMessage, FilterGetMessage and FilterReplyMessage
 * with buffer sizes at the edges, replies against the sender's capacity,
 * stale and made-up MessageIds — against a real in-process filter written
 * with fltkernel.h (FltCreateCommunicationPort, FltSendMessage).
 *
 * One filter port, one connection (an async handle associated with an I/O
 * completion port) and one sender thread (FltSendMessage) live for the whole
 * run; each input leaves them as it found them.  Each of the first 8
 * records of the script (fuzz_util.h, FZW_*) is one step:
 *
 *   FZW_SEND      FilterSendMessage: [0] in size class, [1] out size class,
 *                 [2] bit 0 in NULL, bit 1 out NULL, bit 2 no lpBytesReturned;
 *                 [3..6] in raw, [7..10] out raw, [11..14] the MessageNotify
 *                 status, [15] the class of the length it claims to have written
 *                 and [16..19] its raw value.
 *   FZW_EXCHANGE  the filter sends (FltSendMessage), the user side gets and
 *                 replies: [0] bit 0 wants a reply, bit 1 get posted before
 *                 the send, bit 2 retry a too-small get synchronously,
 *                 bit 3 event without an IOCP packet; [1] get size class,
 *                 [2..5] raw; [6] message length class, [7..10] raw; [11]
 *                 reply capacity class, [12..15] raw; [16] retry size class;
 *                 then up to three replies of 6 bytes: id class, size class,
 *                 u32 raw.
 *   FZW_CANCEL    an overlapped get with nothing coming, cancelled by
 *                 CancelIoEx(ov) ([0] bit 0) or CancelIo ([0] bit 1 clear
 *                 too: a second CancelIoEx that finds nothing).
 *   FZW_HANDLES   every call with a made-up handle ([0..7]): E_HANDLE.
 *
 * Size classes name the edges: 0, below a header, a header alone, one less
 * than needed, exact, one more, 0xFFFFFFFF, the port's limit and one more,
 * or a raw size (see size_class()).  Every buffer is an exact-size heap block (ASan sees a
 * write past it), or for sizes above 1 MiB ends at a PROT_NONE page of a
 * 4 GiB reservation.  Every HRESULT, NTSTATUS, byte count, header field and
 * payload byte is checked against what the SPEC says it must be.
 *
 * Build and run: `make fuzz-win` (docs/TESTING.md).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <windows.h>
#include <fltuser.h>
#include <fltkernel.h>
#include <ntstatus.h>

#include "client/client_int.h"
#include "compat/compat.h"
#include "core/frame.h"
#include "fltport/port.h"
#include "fuzz_util.h"

#define MAX_MESSAGE FLTPORT_DEFAULT_MAX_MESSAGE /* the Windows layer's ports use the default */
#define HDR ((uint32_t)sizeof(FILTER_MESSAGE_HEADER))
#define RHDR ((uint32_t)sizeof(FILTER_REPLY_HEADER))
#define HEAP_MAX (1u << 20)                 /* larger buffers come from the reservation */
#define BIG ((size_t)0xFFFFFFFFu + 64)      /* the reservation: any DWORD size fits */
#define SENDER_TIMEOUT_100NS (-100000000LL) /* 10 s: only a bound, replies end it */
#define KEY 0x4B4559u
#define WIN_STEPS 8 /* steps are independent here: longer scripts only take longer */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

_Static_assert(HDR == 16 && RHDR == 16, "FILTER_MESSAGE_HEADER / FILTER_REPLY_HEADER");

/* ---- the filter (fltkernel.h) ---- */

static PFLT_PORT server_port, client_port; /* client_port: under the layer's lock */
static pthread_mutex_t klock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	NTSTATUS status; /* what MessageNotify returns */
	ULONG claim;     /* the length it says it wrote */
	ULONG in_len;    /* what it saw */
	ULONG out_len;
	bool in_null, out_null;
	int calls;
} notify;
static atomic_int nconnect, ndisconnect;
static uint8_t pattern[MAX_MESSAGE + 1]; /* every payload: byte i is (uint8_t)(i * 7 + 1) */

static NTSTATUS on_connect(PFLT_PORT client, PVOID cookie, PVOID ctx, ULONG ctx_len,
			   PVOID *conn_cookie)
{
	(void)cookie;
	(void)ctx;
	(void)ctx_len;
	client_port = client;
	*conn_cookie = NULL;
	atomic_fetch_add(&nconnect, 1);
	return STATUS_SUCCESS;
}

static VOID on_disconnect(PVOID conn_cookie)
{
	(void)conn_cookie;
	FltCloseClientPort(NULL, &client_port);
	atomic_fetch_add(&ndisconnect, 1);
}

static NTSTATUS on_message(PVOID cookie, PVOID in, ULONG in_len, PVOID out, ULONG out_len,
			   PULONG ret)
{
	ULONG n = in_len < out_len ? in_len : out_len;
	NTSTATUS st;

	(void)cookie;
	pthread_mutex_lock(&klock);
	notify.in_len = in_len;
	notify.out_len = out_len;
	notify.in_null = in == NULL;
	notify.out_null = out == NULL;
	notify.calls++;
	if (n)
		memcpy(out, in, n);
	*ret = notify.claim;
	st = notify.status;
	pthread_mutex_unlock(&klock);
	return st;
}

/* ---- buffers ---- */

struct buf {
	uint8_t *p;
	size_t size;
	bool heap;
};

static uint8_t *big_main, *big_sender; /* BIG bytes each, then a PROT_NONE page */

static uint8_t *reserve(void)
{
	uint8_t *p = mmap(NULL, BIG + 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			  -1, 0);

	if (p == MAP_FAILED || mprotect(p, BIG, PROT_READ | PROT_WRITE) != 0)
		fz_fail("reserving %zu bytes: %s", BIG, strerror(errno));
	return p;
}

/* A buffer of exactly `size` bytes: the heap, or the end of a reservation
 * (aligned as callers' buffers are: it ends up to 7 bytes short of the
 * guard page). */
static struct buf buf_get(size_t size, uint8_t *big)
{
	struct buf b = { .size = size, .heap = size <= HEAP_MAX };

	b.p = b.heap ? malloc(size) : (uint8_t *)((uintptr_t)(big + BIG - size) & ~(uintptr_t)7);
	if (!b.p)
		fz_fail("malloc(%zu)", size);
	return b;
}

static void buf_put(struct buf *b)
{
	if (b->heap)
		free(b->p);
	b->p = NULL;
}

/* A size at an edge around `natural`: class bytes 0..8 name the edges, 9 a
 * raw size below 70000 (across the inline limit), any other value a raw
 * size below 2 KiB.  Edges that move megabytes (the port's limit) and
 * memfd payloads are thus rare among mutations, which keeps executions
 * fast; libFuzzer's switch tracing still finds every one. */
static uint32_t size_class(uint8_t c, uint32_t natural, uint32_t raw)
{
	switch (c) {
	case 0:
		return 0;
	case 1:
		return 1 + raw % (HDR - 1);
	case 2:
		return HDR;
	case 3:
		return natural ? natural - 1 : 0;
	case 4:
		return natural;
	case 5:
		return natural + 1;
	case 6:
		return 0xFFFFFFFFu;
	case 7:
		return MAX_MESSAGE + HDR;
	case 8:
		return MAX_MESSAGE + HDR + 1;
	case 9:
		return raw % 70000u;
	default:
		return raw % 2048u;
	}
}

/* A payload length: 0, small, the inline limit and one more (the memfd
 * path), the port's limit and one more, 0xFFFFFFFF, a raw length below
 * 70000 (class 9); any other class byte, a raw length below 2 KiB. */
static uint32_t len_class(uint8_t c, uint32_t raw)
{
	switch (c) {
	case 0:
		return 0;
	case 1:
		return raw % 64u;
	case 2:
		return FP_INLINE_MAX;
	case 3:
		return FP_INLINE_MAX + 1;
	case 4:
		return MAX_MESSAGE;
	case 5:
		return MAX_MESSAGE + 1;
	case 6:
		return 0xFFFFFFFFu;
	case 9:
		return raw % 70000u;
	default:
		return raw % 2048u;
	}
}

/* What MessageNotify says it wrote, around what it wrote: exactly that,
 * one more, a raw length below 2 KiB, or (class byte 0xFF only: it moves
 * megabytes) 0xFFFFFFFF. */
static uint32_t claim_class(uint8_t c, uint32_t written, uint32_t raw)
{
	if (c == 0xFF)
		return 0xFFFFFFFFu;
	switch (c % 3) {
	case 0:
		return written;
	case 1:
		return written + 1;
	default:
		return raw % 2048u;
	}
}

/* ---- the sender thread (FltSendMessage) ---- */

static struct {
	pthread_t th;
	bool go, busy, quit; /* under slock */
	ULONG len, cap;
	bool wants;
	NTSTATUS status;
	ULONG reply_len;
	struct buf reply;
} snd;
static pthread_mutex_t slock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t scond = PTHREAD_COND_INITIALIZER;

static void *sender_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&slock);
	for (;;) {
		LARGE_INTEGER t = { .QuadPart = SENDER_TIMEOUT_100NS };
		ULONG rlen;
		NTSTATUS st;

		while (!snd.go && !snd.quit)
			pthread_cond_wait(&scond, &slock);
		if (snd.quit)
			break;
		snd.go = false;
		rlen = snd.cap;
		pthread_mutex_unlock(&slock);
		st = FltSendMessage(NULL, &client_port, pattern, snd.len,
				    snd.wants ? snd.reply.p : NULL, snd.wants ? &rlen : NULL, &t);
		pthread_mutex_lock(&slock);
		snd.status = st;
		snd.reply_len = rlen;
		snd.busy = false;
		pthread_cond_broadcast(&scond);
	}
	pthread_mutex_unlock(&slock);
	return NULL;
}

static void sender_start(ULONG len, bool wants, ULONG cap)
{
	pthread_mutex_lock(&slock);
	snd.len = len;
	snd.wants = wants;
	snd.cap = cap;
	snd.reply = buf_get(wants ? cap : 0, big_sender);
	snd.busy = snd.go = true;
	pthread_cond_broadcast(&scond);
	pthread_mutex_unlock(&slock);
}

static NTSTATUS sender_wait(ULONG *reply_len)
{
	struct timespec ts;
	NTSTATUS st;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += FZ_WAIT_MS / 1000;
	pthread_mutex_lock(&slock);
	while (snd.busy)
		if (pthread_cond_timedwait(&scond, &slock, &ts) == ETIMEDOUT)
			fz_fail("FltSendMessage still waiting after %d ms", FZ_WAIT_MS);
	st = snd.status;
	*reply_len = snd.reply_len;
	pthread_mutex_unlock(&slock);
	return st;
}

/* ---- the user side ---- */

static HANDLE port, event, iocp;

static void at_exit(void)
{
	pthread_mutex_lock(&slock);
	snd.quit = true;
	pthread_cond_broadcast(&scond);
	pthread_mutex_unlock(&slock);
	pthread_join(snd.th, NULL);
	CloseHandle(port);
	CloseHandle(iocp);
	CloseHandle(event);
	FltportUnloadFilter(NULL);
	if (atomic_load(&nconnect) != atomic_load(&ndisconnect))
		fz_fail("%d connects, %d disconnects after the unload", atomic_load(&nconnect),
			atomic_load(&ndisconnect));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	UNICODE_STRING name;
	OBJECT_ATTRIBUTES oa;
	PSECURITY_DESCRIPTOR sd;
	NTSTATUS st;
	HRESULT hr;

	(void)argc;
	(void)argv;
	fz_private_dir("win", at_exit);
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 7 + 1);
	big_main = reserve();
	big_sender = reserve();
	RtlInitUnicodeString(&name, L"\\fz-win");
	if (FltBuildDefaultSecurityDescriptor(&sd, FLT_PORT_ALL_ACCESS) != STATUS_SUCCESS ||
	    RtlSetDaclSecurityDescriptor(sd, TRUE, NULL, FALSE) != STATUS_SUCCESS)
		fz_fail("security descriptor");
	InitializeObjectAttributes(&oa, &name, OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE, NULL, sd);
	st = FltCreateCommunicationPort(NULL, &server_port, &oa, NULL, on_connect, on_disconnect,
					on_message, 1);
	FltFreeSecurityDescriptor(sd);
	if (st != STATUS_SUCCESS)
		fz_fail("FltCreateCommunicationPort: 0x%08X", (unsigned)st);
	hr = FilterConnectCommunicationPort(L"\\fz-win", 0, NULL, 0, NULL, &port);
	if (hr != S_OK)
		fz_fail("FilterConnectCommunicationPort: 0x%08X", (unsigned)hr);
	event = CreateEventW(NULL, TRUE, FALSE, NULL);
	iocp = CreateIoCompletionPort(port, NULL, KEY, 0);
	if (!event || !iocp || pthread_create(&snd.th, NULL, sender_main, NULL) != 0)
		fz_fail("event, completion port or sender thread");
	return 0;
}

static void check_hr(const char *what, HRESULT got, HRESULT want)
{
	if (got != want)
		fz_fail("%s: HRESULT 0x%08X, want 0x%08X", what, (unsigned)got, (unsigned)want);
}

/* ---- FZW_SEND ---- */

static void step_send(const struct fz_step *st)
{
	const uint8_t fl = fz_u8(st, 2);
	const DWORD in_len = size_class(fz_u8(st, 0), fz_u32(st, 3) % 4096u, fz_u32(st, 3));
	const DWORD out_len = size_class(fz_u8(st, 1), in_len, fz_u32(st, 7));
	const bool in_null = fl & 1, out_null = fl & 2, no_ret = fl & 4;
	struct buf in = buf_get(in_null ? 0 : in_len, big_main);
	struct buf out = buf_get(out_null ? 0 : out_len, big_main);
	DWORD ret = 0xDEADBEEF, want_ret, cap = out_null ? 0 : out_len;
	HRESULT hr, want;
	int calls;

	if (cap > MAX_MESSAGE)
		cap = MAX_MESSAGE;
	if (!in_null && in_len <= MAX_MESSAGE)
		memcpy(in.p, pattern, in_len);
	pthread_mutex_lock(&klock);
	notify.status = (NTSTATUS)fz_u32(st, 11);
	notify.claim = claim_class(fz_u8(st, 15), in_len < cap ? in_len : cap, fz_u32(st, 16));
	calls = notify.calls;
	pthread_mutex_unlock(&klock);
	hr = FilterSendMessage(port, in_null ? NULL : in.p, in_len, out_null ? NULL : out.p,
			       out_len, no_ret ? NULL : &ret);
	fz_trace("FilterSendMessage(in %u%s, out %u%s): 0x%08X, %u returned", in_len,
		 in_null ? " NULL" : "", out_len, out_null ? " NULL" : "", (unsigned)hr, ret);
	if (no_ret || (in_null && in_len) || in_len > MAX_MESSAGE) {
		check_hr("FilterSendMessage (refused)", hr, E_INVALIDARG);
		goto out;
	}
	pthread_mutex_lock(&klock);
	want = fpw_hresult_from_ntstatus(notify.status);
	want_ret = notify.claim < cap ? notify.claim : cap;
	if (notify.calls != calls + 1 || notify.in_len != in_len || notify.out_len != cap ||
	    notify.in_null != (in_len == 0) || notify.out_null != (cap == 0))
		fz_fail("MessageNotify saw in %u%s, out %u%s (call %d of %d); sent in %u, out %u",
			notify.in_len, notify.in_null ? " NULL" : "", notify.out_len,
			notify.out_null ? " NULL" : "", notify.calls, calls + 1, in_len, cap);
	pthread_mutex_unlock(&klock);
	check_hr("FilterSendMessage", hr, want);
	if (ret != want_ret)
		fz_fail("FilterSendMessage: %u bytes returned, want %u", ret, want_ret);
	if (memcmp(out.p, pattern, ret < in_len ? ret : in_len) != 0)
		fz_fail("FilterSendMessage: the output is not the echo of the input");
out:
	buf_put(&in);
	buf_put(&out);
}

/* ---- overlapped gets ---- */

struct get {
	OVERLAPPED ov;
	struct buf b;
	DWORD size;
	bool pending;
	bool packet; /* a completion packet is expected on the IOCP */
};

/* Post an overlapped FilterGetMessage; checks the immediate result. */
static void get_post(struct get *g, DWORD size, bool null_buf, bool no_packet)
{
	HRESULT hr;

	memset(&g->ov, 0, sizeof(g->ov));
	g->ov.hEvent = (HANDLE)((uintptr_t)event | (no_packet ? 1u : 0u));
	g->size = size;
	g->b = buf_get(null_buf ? 0 : size, big_main);
	g->packet = !no_packet;
	hr = FilterGetMessage(port, null_buf ? NULL : (PFILTER_MESSAGE_HEADER)g->b.p, size, &g->ov);
	fz_trace("FilterGetMessage(%u%s): 0x%08X", size, null_buf ? " NULL" : "", (unsigned)hr);
	g->pending = hr == HRESULT_FROM_WIN32(ERROR_IO_PENDING);
	if (null_buf)
		check_hr("FilterGetMessage (NULL buffer)", hr, E_INVALIDARG);
	else if (size < HDR)
		check_hr("FilterGetMessage (small)", hr,
			 HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER));
	else
		check_hr("FilterGetMessage (overlapped)", hr, HRESULT_FROM_WIN32(ERROR_IO_PENDING));
}

/* What a hang left behind, for a failure that does not reproduce: the
 * sender thread, the user side's queue and readers, the slot words. */
static void dump_state(void)
{
	struct fpw_obj *o = fpw_handle_get(port, FPW_PORT);
	struct fltport_conn *c;
	NTSTATUS sst;
	bool busy;

	pthread_mutex_lock(&slock);
	busy = snd.busy;
	sst = snd.status;
	pthread_mutex_unlock(&slock);
	if (busy)
		fprintf(stderr, "==fuzz harness: sender still in FltSendMessage (len %u, %s)\n",
			snd.len, snd.wants ? "wants a reply" : "no reply");
	else
		fprintf(stderr, "==fuzz harness: sender returned 0x%08X (len %u, %s)\n",
			(unsigned)sst, snd.len, snd.wants ? "wants a reply" : "no reply");
	if (!o)
		return;
	c = ((struct fpw_port *)o)->conn;
	pthread_mutex_lock(&c->lock);
	fprintf(stderr,
		"==fuzz harness: user side: %zu queued, %u readers, ended %d, closing %d, "
		"ev_set %d\n",
		c->qlen, c->nreaders, c->ended, c->closing, c->ev_set);
	for (struct fp_qmsg *m = c->qhead; m; m = m->next)
		fprintf(stderr, "==fuzz harness:   queued id %llx len %u flags %x\n",
			(unsigned long long)m->rx.h.id, m->rx.h.len, m->rx.h.flags);
	for (struct fp_reader *r = c->rhead; r; r = r->next)
		fprintf(stderr, "==fuzz harness:   reader cap %zu async %d token %llu\n", r->cap,
			r->fn != NULL, (unsigned long long)r->token);
	for (uint32_t i = 0; i < c->nslots; i++) {
		uint32_t w = atomic_load(&c->page->slot[i]);

		if (w)
			fprintf(stderr, "==fuzz harness:   slot %u word %08x (seq %u state %u)\n",
				i, w, w >> 4, w & 15u);
	}
	pthread_mutex_unlock(&c->lock);
	fpw_obj_put(o);
}

/* Wait for a posted get to complete; its status. */
static NTSTATUS get_wait(struct get *g)
{
	DWORD bytes = 0xDEADBEEF, want_err;
	ULONG_PTR key = 0;
	LPOVERLAPPED pov = NULL;
	NTSTATUS st;
	BOOL ok;

	if (WaitForSingleObject(event, FZ_WAIT_MS) != WAIT_OBJECT_0) {
		dump_state();
		fz_fail("an overlapped FilterGetMessage did not complete in %d ms (status 0x%08X)",
			FZ_WAIT_MS, (unsigned)__atomic_load_n(&g->ov.Internal, __ATOMIC_ACQUIRE));
	}
	st = (NTSTATUS)g->ov.Internal;
	ok = GetOverlappedResult(port, &g->ov, &bytes, FALSE);
	want_err = RtlNtStatusToDosError(st);
	if (ok != NT_SUCCESS(st) || bytes != g->ov.InternalHigh ||
	    (!ok && GetLastError() != want_err))
		fz_fail("GetOverlappedResult: %d, %u bytes, error %u; status 0x%08X, %llu bytes",
			ok, bytes, (unsigned)GetLastError(), (unsigned)st,
			(unsigned long long)g->ov.InternalHigh);
	/* The event is set before the packet is queued: wait for the packet. */
	if (g->packet) {
		ok = GetQueuedCompletionStatus(iocp, &bytes, &key, &pov, FZ_WAIT_MS);
		if (pov != &g->ov || key != KEY || bytes != g->ov.InternalHigh ||
		    ok != NT_SUCCESS(st))
			fz_fail("completion packet: ok %d ov %p (want %p) key %lx bytes %u", ok,
				(void *)pov, (void *)&g->ov, (unsigned long)key, bytes);
	}
	ok = GetQueuedCompletionStatus(iocp, &bytes, &key, &pov, 0);
	if (ok || pov)
		fz_fail("an unexpected completion packet (ov %p)", (void *)pov);
	ResetEvent(event);
	g->pending = false;
	return st;
}

/* ---- FZW_EXCHANGE ---- */

struct exchange {
	bool wants;
	ULONG len, cap;    /* the message; the sender's reply capacity */
	ULONG arg;         /* cap as the message carries it */
	bool taken;        /* a get has it */
	ULONGLONG id;      /* its MessageId */
	bool replied;      /* a reply reached the sender */
	ULONG reply_bytes; /* how many bytes the replier offered */
};

static ULONGLONG last_id; /* of the previous exchange: a stale id */

/* A completed get: check the header and the payload. */
static void check_message(struct exchange *x, const struct get *g)
{
	const FILTER_MESSAGE_HEADER *h = (const FILTER_MESSAGE_HEADER *)g->b.p;
	const ULONG want_reply_len = x->wants ? x->arg + RHDR : 0;

	if (g->ov.InternalHigh != HDR + x->len || h->ReplyLength != want_reply_len ||
	    h->MessageId == 0 || h->MessageId == last_id)
		fz_fail("message: %llu bytes (want %u), ReplyLength %u (want %u), id %llx (last "
			"%llx)",
			(unsigned long long)g->ov.InternalHigh, HDR + x->len, h->ReplyLength,
			want_reply_len, (unsigned long long)h->MessageId,
			(unsigned long long)last_id);
	if (memcmp(g->b.p + HDR, pattern, x->len) != 0)
		fz_fail("message: the payload is not what FltSendMessage sent");
	x->taken = true;
	x->id = h->MessageId;
}

/* A get of `size` bytes for the message on its way: overlapped, or
 * synchronous (it is queued or coming: it cannot block for long). */
static void get_message(struct exchange *x, DWORD size, bool sync, bool no_packet)
{
	struct get g = { 0 };
	NTSTATUS st;

	if (sync) {
		const HRESULT want = size < HDR || size - HDR < x->len
					     ? HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER)
					     : S_OK;
		HRESULT hr;

		g.b = buf_get(size, big_main);
		hr = FilterGetMessage(port, (PFILTER_MESSAGE_HEADER)g.b.p, size, NULL);
		fz_trace("FilterGetMessage(%u, sync): 0x%08X", size, (unsigned)hr);
		check_hr("FilterGetMessage (sync)", hr, want);
		if (hr == S_OK) {
			g.ov.InternalHigh = HDR + x->len; /* the sync call says nothing more */
			check_message(x, &g);
		}
		buf_put(&g.b);
		return;
	}
	get_post(&g, size, false, no_packet);
	if (g.pending) {
		st = get_wait(&g);
		if (st == STATUS_SUCCESS)
			check_message(x, &g);
		else if (st != STATUS_BUFFER_TOO_SMALL || size - HDR >= x->len)
			fz_fail("get of %u for %u bytes: status 0x%08X", size, x->len,
				(unsigned)st);
	}
	buf_put(&g.b);
}

/* One FilterReplyMessage; checks the result against the state. */
static void reply(struct exchange *x, uint8_t id_class, uint8_t size_class_, uint32_t raw)
{
	const ULONG cap = x->arg;
	const DWORD size = size_class(size_class_, RHDR + cap, raw);
	ULONGLONG id;
	struct buf b;
	HRESULT hr, want;

	switch (id_class % 6) {
	case 0:
		id = x->id;
		break;
	case 1:
		id = last_id;
		break;
	case 2:
		id = raw | (ULONGLONG)raw << 32;
		break;
	case 3:
		id = x->id | 0xFFFFu;
		break;
	case 4:
		id = x->id + 0x10000u;
		break;
	default:
		id = 0;
		break;
	}
	b = buf_get(size, big_main);
	if (size >= RHDR) {
		((PFILTER_REPLY_HEADER)b.p)->Status = STATUS_SUCCESS;
		((PFILTER_REPLY_HEADER)b.p)->MessageId = id;
		if (size - RHDR <= MAX_MESSAGE)
			memcpy(b.p + RHDR, pattern, size - RHDR);
	}
	hr = FilterReplyMessage(port, (PFILTER_REPLY_HEADER)b.p, size);
	fz_trace("FilterReplyMessage(id %llx, %u): 0x%08X", (unsigned long long)id, size,
		 (unsigned)hr);
	if (size < RHDR || size - RHDR > MAX_MESSAGE)
		want = E_INVALIDARG;
	else if (!x->taken || !x->wants || x->replied || id != x->id)
		want = ERROR_FLT_NO_WAITER_FOR_REPLY;
	else if (size - RHDR > cap)
		want = HRESULT_FROM_WIN32(ERROR_MORE_DATA);
	else
		want = S_OK;
	check_hr("FilterReplyMessage", hr, want);
	if (want == S_OK || want == HRESULT_FROM_WIN32(ERROR_MORE_DATA)) {
		x->replied = true;
		x->reply_bytes = size - RHDR;
	}
	buf_put(&b);
}

/* The sender's result, against what the replies did. */
static void check_sender(const struct exchange *x)
{
	ULONG rlen;
	NTSTATUS st = sender_wait(&rlen), want;
	ULONG want_len = 0;

	if (x->len > MAX_MESSAGE) {
		want = STATUS_INVALID_PARAMETER;
	} else if (!x->wants) {
		want = STATUS_SUCCESS;
	} else if (x->reply_bytes > x->arg) {
		want = STATUS_BUFFER_OVERFLOW;
		want_len = x->arg;
	} else {
		want = STATUS_SUCCESS;
		want_len = x->reply_bytes;
	}
	if (st != want || (x->wants && x->len <= MAX_MESSAGE && rlen != want_len))
		fz_fail("FltSendMessage: 0x%08X, reply %u bytes; want 0x%08X, %u bytes",
			(unsigned)st, rlen, (unsigned)want, want_len);
	if (x->wants && x->len <= MAX_MESSAGE && rlen && memcmp(snd.reply.p, pattern, rlen) != 0)
		fz_fail("FltSendMessage: the reply is not what FilterReplyMessage sent");
}

static void step_exchange(const struct fz_step *st)
{
	const uint8_t fl = fz_u8(st, 0);
	struct exchange x = { .wants = fl & 1 };
	struct get g = { 0 };
	DWORD size;

	x.len = len_class(fz_u8(st, 6), fz_u32(st, 7));
	x.cap = len_class(fz_u8(st, 11), fz_u32(st, 12));
	x.arg = x.cap < MAX_MESSAGE ? x.cap : MAX_MESSAGE;
	size = size_class(fz_u8(st, 1), HDR + x.len, fz_u32(st, 2));
	fz_trace("exchange: len %u, %s %u, get %u", x.len, x.wants ? "reply cap" : "no reply",
		 x.cap, size);
	if (x.len > MAX_MESSAGE) {
		sender_start(x.len, x.wants, x.cap);
		check_sender(&x);
		buf_put(&snd.reply);
		return;
	}
	if (fl & 2) {
		get_post(&g, size, false, fl & 8);
		sender_start(x.len, x.wants, x.cap);
		if (g.pending) {
			NTSTATUS s = get_wait(&g);

			if (s == STATUS_SUCCESS)
				check_message(&x, &g);
			else if (s != STATUS_BUFFER_TOO_SMALL || size - HDR >= x.len)
				fz_fail("get of %u for %u bytes: status 0x%08X", size, x.len,
					(unsigned)s);
		}
		buf_put(&g.b);
	} else {
		sender_start(x.len, x.wants, x.cap);
		get_message(&x, size, false, fl & 8);
	}
	if (!x.taken)
		get_message(&x, size_class(fz_u8(st, 16), HDR + x.len, fz_u32(st, 2)), fl & 4,
			    fl & 8);
	if (!x.taken)
		get_message(&x, HDR + x.len, false, false);
	for (size_t off = 17; off + 6 <= st->len && off < 17 + 3 * 6; off += 6)
		reply(&x, fz_u8(st, off), fz_u8(st, off + 1), fz_u32(st, off + 2));
	if (x.wants && !x.replied)
		reply(&x, 0, 2, 0); /* an empty reply releases the sender */
	check_sender(&x);
	last_id = x.id;
	buf_put(&snd.reply);
}

/* ---- FZW_CANCEL, FZW_HANDLES ---- */

static void step_cancel(const struct fz_step *st)
{
	const uint8_t fl = fz_u8(st, 0);
	struct get g = { 0 };
	BOOL ok;

	get_post(&g, size_class(fz_u8(st, 1), HDR + 64, fz_u32(st, 2)), fl & 4, fl & 8);
	if (!g.pending) {
		buf_put(&g.b);
		return;
	}
	ok = (fl & 1) ? CancelIoEx(port, &g.ov) : CancelIo(port);
	if (!ok || get_wait(&g) != STATUS_CANCELLED || g.ov.InternalHigh != 0)
		fz_fail("cancelled get: %d, status 0x%08X, %llu bytes", ok, (unsigned)g.ov.Internal,
			(unsigned long long)g.ov.InternalHigh);
	ok = (fl & 2) ? CancelIoEx(port, &g.ov) : CancelIo(port);
	if (ok || GetLastError() != ERROR_NOT_FOUND)
		fz_fail("a second cancel: %d, error %u", ok, (unsigned)GetLastError());
	buf_put(&g.b);
}

static void step_handles(const struct fz_step *st)
{
	HANDLE h = (HANDLE)(uintptr_t)fz_u64(st, 0);
	struct fpw_obj *o = fpw_handle_get(h, FPW_PORT);
	FILTER_MESSAGE_HEADER m;
	FILTER_REPLY_HEADER r = { 0 };
	OVERLAPPED ov = { 0 };
	DWORD n;

	/* A value that decodes to the live port is the port, not made up. */
	if (o) {
		fpw_obj_put(o);
		return;
	}
	check_hr("FilterSendMessage (bad handle)", FilterSendMessage(h, NULL, 0, NULL, 0, &n),
		 E_HANDLE);
	check_hr("FilterGetMessage (bad handle)", FilterGetMessage(h, &m, sizeof(m), &ov),
		 E_HANDLE);
	check_hr("FilterReplyMessage (bad handle)", FilterReplyMessage(h, &r, sizeof(r)), E_HANDLE);
	if (CancelIoEx(h, NULL) || GetLastError() != ERROR_INVALID_HANDLE)
		fz_fail("CancelIoEx (bad handle) succeeded");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_script s;
	struct fz_step st;

	fz_script_init(&s, data, size);
	while (s.steps < WIN_STEPS && fz_next(&s, &st)) {
		switch (FZ_KIND(st.op)) {
		case FZW_SEND:
			step_send(&st);
			break;
		case FZW_EXCHANGE:
			step_exchange(&st);
			break;
		case FZW_CANCEL:
			step_cancel(&st);
			break;
		default:
			step_handles(&st);
			break;
		}
	}
	return 0;
}
