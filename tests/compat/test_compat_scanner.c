/*
 * The scanner sample's shape, end to end (issue 3, point 2; SPEC §3.3,
 * §3.6, §5, §8.14).
 *
 * This process is the filter, written only with fltkernel.h: it creates
 * the port, and 4 threads send 10,000 SCANNER_NOTIFICATIONs (scaled by
 * FLTPORT_TEST_SCALE) with a reply buffer and a 10 s timeout.  The user side
 * is tests/compat/clients/win_scanner.c, a Windows-style service (windows.h
 * + fltuser.h only): a completion port, 4 threads × 8 pre-posted overlapped
 * reads with embedded OVERLAPPEDs, a packed reply per message, repost.
 * Every reply must match its own message (sequence number, checksum of the
 * scanned bytes, and the "foul" verdict).  Then FltCloseClientPort ends the
 * connection: every posted read completes with ERROR_INVALID_HANDLE and the
 * service exits 0 after printing its counts.
 */
#ifdef FP_PLAIN
#include "plain_criterion.h" /* the TSan pass builds this suite without Criterion */
#else
#include <criterion/criterion.h>
#endif

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include <windows.h>
#include <fltkernel.h>

#define SENDERS 4
#define CLIENT_THREADS "4"
#define CLIENT_REQUESTS "8"

#include "clients/scanner_wire.h"
#include "winport.h"

_Static_assert(sizeof(SCANNER_NOTIFICATION) == 1032, "SCANNER_NOTIFICATION layout");
_Static_assert(offsetof(SCANNER_NOTIFICATION, Contents) == 8, "Contents at 8");
_Static_assert(sizeof(SCANNER_REPLY) == 12, "SCANNER_REPLY layout");
_Static_assert(offsetof(SCANNER_REPLY, Seq) == 4 && offsetof(SCANNER_REPLY, Sum) == 8,
	       "SCANNER_REPLY fields");
_Static_assert(sizeof(FILTER_MESSAGE_HEADER) == 16 && sizeof(FILTER_REPLY_HEADER) == 16, "headers");

static BOOLEAN scan(const UCHAR *p, ULONG n)
{
	for (ULONG i = 0; i + 4 <= n; i++)
		if (memcmp(p + i, "foul", 4) == 0)
			return FALSE;
	return TRUE;
}

static struct {
	pthread_mutex_t lock;
	PFLT_PORT server;
	PFLT_PORT client;
	int nconn, ndisc;
	long total;
	atomic_long next, answered, foul, bad;
	char first_bad[256];
} g = { .lock = PTHREAD_MUTEX_INITIALIZER };

static NTSTATUS on_connect(PFLT_PORT client, PVOID server_cookie, PVOID ctx, ULONG ctx_len,
			   PVOID *conn_cookie)
{
	(void)server_cookie;
	(void)ctx;
	(void)ctx_len;
	pthread_mutex_lock(&g.lock);
	g.client = client;
	g.nconn++;
	pthread_mutex_unlock(&g.lock);
	*conn_cookie = &g.client;
	return STATUS_SUCCESS;
}

static VOID on_disconnect(PVOID conn_cookie)
{
	pthread_mutex_lock(&g.lock);
	g.ndisc++;
	pthread_mutex_unlock(&g.lock);
	FltCloseClientPort(NULL, (PFLT_PORT *)conn_cookie);
}

static void note_bad(const char *fmt, long seq, unsigned v)
{
	if (atomic_fetch_add(&g.bad, 1) == 0) {
		pthread_mutex_lock(&g.lock);
		snprintf(g.first_bad, sizeof(g.first_bad), fmt, seq, v);
		pthread_mutex_unlock(&g.lock);
	}
}

/* One sender: takes sequence numbers until the total is reached. */
static void *sender(void *arg)
{
	SCANNER_NOTIFICATION n;

	(void)arg;
	for (;;) {
		long seq = atomic_fetch_add(&g.next, 1);
		SCANNER_REPLY r;
		ULONG rlen = sizeof(r);
		LARGE_INTEGER timeout;
		NTSTATUS st;
		BOOLEAN safe;

		if (seq >= g.total)
			return NULL;
		memset(&n, 0, sizeof(n));
		n.Reserved = (ULONG)seq;
		n.BytesToScan = 1 + (ULONG)((seq * 37) % SCANNER_READ_BUFFER_SIZE);
		for (ULONG i = 0; i < SCANNER_READ_BUFFER_SIZE; i++)
			n.Contents[i] = (UCHAR)('a' + (i * 7 + (ULONG)seq) % 26);
		if (seq % 5 == 0 && n.BytesToScan >= 4)
			memcpy(n.Contents + (ULONG)seq % (n.BytesToScan - 3), "foul", 4);
		safe = scan(n.Contents, n.BytesToScan);
		memset(&r, 0xEE, sizeof(r));
		timeout.QuadPart = -100000000LL; /* 10 s */
		st = FltSendMessage(NULL, &g.client, &n, sizeof(n), &r, &rlen, &timeout);
		if (st != STATUS_SUCCESS) {
			note_bad("seq %ld: FltSendMessage 0x%08X", seq, (unsigned)st);
			continue;
		}
		if (rlen != sizeof(r)) {
			note_bad("seq %ld: ReplyLength %u", seq, rlen);
			continue;
		}
		if (r.Seq != (ULONG)seq) {
			note_bad("seq %ld: the reply is for seq %u", seq, r.Seq);
			continue;
		}
		if (r.Sum != tu_fnv1a32(n.Contents, n.BytesToScan)) {
			note_bad("seq %ld: checksum 0x%08X", seq, r.Sum);
			continue;
		}
		if (r.SafeToOpen != safe) {
			note_bad("seq %ld: verdict %u", seq, r.SafeToOpen);
			continue;
		}
		if (!safe)
			atomic_fetch_add(&g.foul, 1);
		atomic_fetch_add(&g.answered, 1);
	}
}

static bool disconnected(void *arg)
{
	bool done;

	(void)arg;
	pthread_mutex_lock(&g.lock);
	done = g.ndisc >= 1;
	pthread_mutex_unlock(&g.lock);
	return done;
}

/* SPEC §3.3, §3.6, §5, §8.14; issue 3 point 2: 10,000 messages from 4
 * filter threads to a scanner-style client (IOCP, 4 threads × 8 pre-posted
 * overlapped reads, packed replies, repost), every one answered correctly;
 * FltCloseClientPort then completes every posted read with
 * ERROR_INVALID_HANDLE and the client exits 0. */
Test(scanner, soak_10000, .timeout = 60)
{
	char line[512], arg[128];
	pthread_t th[SENDERS];
	struct tu_proc p;
	const char *name;
	NTSTATUS st;
	int rc;

	tu_private_dir();
	name = tu_port_name("scan");
	g.total = tu_scaled(10000, 1000);
	st = tw_open_port(name, on_connect, on_disconnect, NULL, &g.server);
	cr_assert_eq(st, STATUS_SUCCESS, "FltCreateCommunicationPort: 0x%08X", (unsigned)st);

	snprintf(arg, sizeof(arg), "\\%s", name);
	p = tu_spawn("win_scanner", (const char *const[]){ arg, CLIENT_THREADS, CLIENT_REQUESTS,
							   "--watchdog", "55", NULL });
	cr_assert(tu_expect(&p, "CONNECTED", line, sizeof(line), 15000), "no CONNECTED (%s)", line);
	cr_assert_str_eq(line, "CONNECTED hr=0x00000000");
	cr_assert(tu_expect(&p, "READY", line, sizeof(line), 15000), "no READY (%s)", line);
	cr_assert_str_eq(line, "READY posted=32");

	for (int t = 0; t < SENDERS; t++)
		cr_assert_eq(pthread_create(&th[t], NULL, sender, NULL), 0);
	for (int t = 0; t < SENDERS; t++) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 50;
		cr_assert_eq(pthread_timedjoin_np(th[t], NULL, &ts), 0, "sender %d stuck", t);
	}
	cr_assert_eq(atomic_load(&g.bad), 0, "%ld bad replies; first: %s", atomic_load(&g.bad),
		     g.first_bad);
	cr_assert_eq(atomic_load(&g.answered), g.total, "answered %ld of %ld",
		     atomic_load(&g.answered), g.total);
	cr_assert_gt(atomic_load(&g.foul), 0, "some messages must be foul");

	/* (No look at g.client here: DisconnectNotify may be clearing it under
	 * the port lock right now; test_compat_user checks the NULLing.) */
	FltCloseClientPort(NULL, &g.client);
	cr_assert(tu_expect(&p, "DONE", line, sizeof(line), 15000), "no DONE (%s)", line);
	snprintf(arg, sizeof(arg), "DONE answered=%ld failed=32 bad=0 lasterr=6 wait=0", g.total);
	cr_assert_str_eq(line, arg);
	rc = tu_wait(&p, 10000);
	cr_assert_eq(rc, 0, "win_scanner exit code %d", rc);
	cr_assert(tu_wait_until(disconnected, NULL, 10000), "DisconnectNotify");
	FltportUnloadFilter(NULL);
	cr_assert_eq(g.ndisc, 1, "DisconnectNotify exactly once");
	cr_assert_eq(g.nconn, 1);
}
