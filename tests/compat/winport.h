/*
 * The compat tests' in-process filters: a Windows-style filter port open
 * to everyone.  Include after <fltkernel.h>.
 */
#ifndef FP_TEST_WINPORT_H
#define FP_TEST_WINPORT_H

#include <pthread.h>
#include <stdbool.h>

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

#endif
