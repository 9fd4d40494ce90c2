/*
 * The compat tests' in-process filters: a Windows-style filter port open
 * to everyone.  Include after <fltkernel.h>.
 */
#ifndef FP_TEST_WINPORT_H
#define FP_TEST_WINPORT_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

#include "testutil.h"

/* FltCreateCommunicationPort of "\<name>" with a NULL DACL (everyone may
 * connect) and one connection at most; its status. */
static inline NTSTATUS tw_open_port_cookie(const char *name, PFLT_CONNECT_NOTIFY on_connect,
					   PFLT_DISCONNECT_NOTIFY on_disconnect,
					   PFLT_MESSAGE_NOTIFY on_message, PVOID cookie,
					   PFLT_PORT *server)
{
	WCHAR wname[128];
	PSECURITY_DESCRIPTOR sd = NULL;
	UNICODE_STRING uname;
	OBJECT_ATTRIBUTES oa;
	NTSTATUS st;
	size_t i;

	wname[0] = L'\\';
	for (i = 0; name[i] && i + 2 < ARRAYSIZE(wname); i++)
		wname[i + 1] = (WCHAR)(unsigned char)name[i];
	wname[i + 1] = 0;
	RtlInitUnicodeString(&uname, wname);
	st = FltBuildDefaultSecurityDescriptor(&sd, FLT_PORT_ALL_ACCESS);
	if (st != STATUS_SUCCESS)
		return st;
	st = RtlSetDaclSecurityDescriptor(sd, TRUE, NULL, FALSE);
	if (st == STATUS_SUCCESS) {
		InitializeObjectAttributes(&oa, &uname, OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE,
					   NULL, sd);
		st = FltCreateCommunicationPort(NULL, server, &oa, cookie, on_connect,
						on_disconnect, on_message, 1);
	}
	FltFreeSecurityDescriptor(sd);
	return st;
}

static inline NTSTATUS tw_open_port(const char *name, PFLT_CONNECT_NOTIFY on_connect,
				    PFLT_DISCONNECT_NOTIFY on_disconnect,
				    PFLT_MESSAGE_NOTIFY on_message, PFLT_PORT *server)
{
	return tw_open_port_cookie(name, on_connect, on_disconnect, on_message, NULL, server);
}

/* One connection of a test filter: tw_on_connect / tw_on_disconnect keep
 * it in the struct given as the port's cookie (tw_open_conn_port). */
struct tw_conn {
	pthread_mutex_t lock;
	PFLT_PORT server, client;
	int nconn, ndisc;
};
#define TW_CONN_INIT                              \
	{                                         \
		.lock = PTHREAD_MUTEX_INITIALIZER \
	}

static inline NTSTATUS tw_on_connect(PFLT_PORT client, PVOID server_cookie, PVOID ctx,
				     ULONG ctx_len, PVOID *conn_cookie)
{
	struct tw_conn *c = (struct tw_conn *)server_cookie;

	(void)ctx;
	(void)ctx_len;
	pthread_mutex_lock(&c->lock);
	c->client = client;
	c->nconn++;
	pthread_mutex_unlock(&c->lock);
	*conn_cookie = c;
	return STATUS_SUCCESS;
}

static inline VOID tw_on_disconnect(PVOID conn_cookie)
{
	struct tw_conn *c = (struct tw_conn *)conn_cookie;

	pthread_mutex_lock(&c->lock);
	c->ndisc++;
	pthread_mutex_unlock(&c->lock);
	FltCloseClientPort(NULL, &c->client);
}

/* For tu_wait_until: DisconnectNotify has run. */
static inline bool tw_disconnected(void *arg)
{
	struct tw_conn *c = (struct tw_conn *)arg;
	bool done;

	pthread_mutex_lock(&c->lock);
	done = c->ndisc > 0;
	pthread_mutex_unlock(&c->lock);
	return done;
}

/* A port whose one connection c keeps (tw_on_connect, tw_on_disconnect). */
static inline NTSTATUS tw_open_conn_port(const char *name, struct tw_conn *c,
					 PFLT_MESSAGE_NOTIFY on_message)
{
	return tw_open_port_cookie(name, tw_on_connect, tw_on_disconnect, on_message, c,
				   &c->server);
}

/* Tests that send signals to a helper assert the kernel's delivery of
 * them to the helper's handler.  Under ThreadSanitizer the runtime defers a
 * signal that lands on a thread blocked outside its interceptors (futex
 * waits) until that thread next enters one: 1 run in 3 lost it.  The native
 * and ASan passes run them. */
#ifdef __SANITIZE_THREAD__
#define TW_SKIP_SIGNALS_UNDER_TSAN() \
	cr_skip_test("signal delivery is ThreadSanitizer's, not the kernel's, under TSan")
#else
#define TW_SKIP_SIGNALS_UNDER_TSAN() ((void)0)
#endif

/* tu_spawn() with SIGINT, SIGHUP and SIGTERM at their defaults, whatever
 * this runner inherited (a shell's background job ignores SIGINT, and a
 * helper would keep that, as a Windows child keeps an ignored Ctrl+C). */
static inline struct tu_proc tw_spawn_sigdfl(const char *helper, const char *const *args)
{
	static const int sigs[] = { SIGINT, SIGHUP, SIGTERM };
	struct sigaction dfl = { .sa_handler = SIG_DFL }, old[3];
	struct tu_proc p;

	sigemptyset(&dfl.sa_mask);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &dfl, &old[i]);
	p = tu_spawn(helper, args);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
	return p;
}

/* The next line of helper p starting with `prefix` within 15 s, or "" (a
 * failed expectation: the test goes on to its end, where tu_wait() kills a
 * helper that stays, so that none outlives it holding the runner's pipes). */
static inline const char *tw_line(struct tu_proc *p, const char *prefix, char *line, size_t n)
{
	bool got = tu_expect(p, prefix, line, n, 15000);

	cr_expect(got, "no %s line", prefix);
	if (!got)
		line[0] = '\0';
	return line;
}

#endif
