/*
 * fltkernel.h's port calls on the native filter-side API.  A PFLT_PORT is
 * either a server port or a client port wrapper; client port variables are
 * read and cleared under one lock, as FltMgr's PortLock does, so that
 * FltSendMessage and FltCloseClientPort on the same variable never race
 * (SPEC §2.4).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compat/compat.h"
#include "compat/wname.h"

#define SD_MAGIC 0x44534650u /* "PFSD" */

struct fpk_sd {
	uint32_t magic;
	bool everyone;
};

enum { FPK_SERVER = 1, FPK_CLIENT };

struct _FLT_PORT {
	int kind;
};

struct fpk_server {
	struct _FLT_PORT hdr;
	struct fpk_server *next; /* all servers, for FltportUnloadFilter */
	PFLT_FILTER filter;
	fltport_server *srv;
	PVOID cookie;
	PFLT_CONNECT_NOTIFY on_connect;
	PFLT_DISCONNECT_NOTIFY on_disconnect;
	PFLT_MESSAGE_NOTIFY on_message;
	struct fpk_client *clients; /* accepted, not yet freed (port_lock) */
};

/* A client port.  References: the connection's (until DisconnectNotify has
 * run), the variable's (until FltCloseClientPort), and one per send in
 * progress.  The last one closes the native client port. */
struct fpk_client {
	struct _FLT_PORT hdr;
	struct fpk_server *server;
	fltport_client *native;
	PVOID cookie;
	atomic_int refs;
	bool orphaned;                  /* its server was unloaded: native is gone */
	struct fpk_client *prev, *next; /* server->clients */
};

static pthread_mutex_t port_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fpk_server *servers;

static void client_put(struct fpk_client *c)
{
	bool orphaned;

	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	pthread_mutex_lock(&port_lock);
	orphaned = c->orphaned;
	if (!orphaned) {
		if (c->prev)
			c->prev->next = c->next;
		else
			c->server->clients = c->next;
		if (c->next)
			c->next->prev = c->prev;
	}
	pthread_mutex_unlock(&port_lock);
	if (!orphaned)
		fltport_client_close(c->native);
	free(c);
}

/* ---- callbacks: native → Windows ---- */

static int connect_tramp(fltport_client *native, void *server_cookie, const void *ctx,
			 size_t ctx_len, const struct fltport_peer *peer, void **conn_cookie,
			 uint32_t *status)
{
	struct fpk_server *s = server_cookie;
	struct fpk_client *c = calloc(1, sizeof(*c));
	NTSTATUS st;

	(void)peer;
	if (!c) {
		*status = (uint32_t)STATUS_INSUFFICIENT_RESOURCES;
		return -1;
	}
	c->hdr.kind = FPK_CLIENT;
	c->server = s;
	c->native = native;
	atomic_init(&c->refs, 2); /* the connection's and the variable's */
	st = s->on_connect((PFLT_PORT)c, s->cookie, ctx_len ? (PVOID)ctx : NULL, (ULONG)ctx_len,
			   &c->cookie);
	if (!NT_SUCCESS(st)) {
		/* Rejected: the native client port is not ours to close. */
		free(c);
		*status = (uint32_t)st;
		return -1;
	}
	pthread_mutex_lock(&port_lock);
	c->next = s->clients;
	if (s->clients)
		s->clients->prev = c;
	s->clients = c;
	pthread_mutex_unlock(&port_lock);
	*conn_cookie = c;
	return 0;
}

static void disconnect_tramp(void *conn_cookie)
{
	struct fpk_client *c = conn_cookie;

	c->server->on_disconnect(c->cookie);
	client_put(c);
}

static uint32_t message_tramp(void *conn_cookie, const struct fltport_request *req, void *out,
			      size_t out_cap, size_t *out_len)
{
	struct fpk_client *c = conn_cookie;
	ULONG ret = 0;
	NTSTATUS st;

	fltport_close_fds(req->fds, req->nfds); /* the Windows API carries no fds */
	st = c->server->on_message(c->cookie, req->in_len ? (PVOID)req->in : NULL,
				   (ULONG)req->in_len, out, (ULONG)out_cap, &ret);
	*out_len = ret;
	return (uint32_t)st;
}

/* ---- names, security ---- */

FLTPORT_WINAPI VOID RtlInitUnicodeString(PUNICODE_STRING d, PCWSTR s)
{
	size_t n = s ? wcslen(s) * sizeof(WCHAR) : 0;

	if (n > 0xFFFCu)
		n = 0xFFFCu - (0xFFFCu % sizeof(WCHAR));
	d->Buffer = (PWSTR)s;
	d->Length = (USHORT)n;
	d->MaximumLength = s ? (USHORT)(n + sizeof(WCHAR)) : 0;
}

FLTPORT_WINAPI NTSTATUS FltBuildDefaultSecurityDescriptor(PSECURITY_DESCRIPTOR *sd,
							  ACCESS_MASK access)
{
	struct fpk_sd *d;

	(void)access;
	if (!sd)
		return STATUS_INVALID_PARAMETER;
	d = calloc(1, sizeof(*d));
	if (!d)
		return STATUS_INSUFFICIENT_RESOURCES;
	d->magic = SD_MAGIC;
	*sd = d;
	return STATUS_SUCCESS;
}

FLTPORT_WINAPI VOID FltFreeSecurityDescriptor(PSECURITY_DESCRIPTOR sd)
{
	free(sd);
}

FLTPORT_WINAPI NTSTATUS RtlSetDaclSecurityDescriptor(PSECURITY_DESCRIPTOR sd, BOOLEAN present,
						     PACL dacl, BOOLEAN defaulted)
{
	struct fpk_sd *d = sd;

	(void)defaulted;
	if (!d || d->magic != SD_MAGIC)
		return STATUS_INVALID_PARAMETER;
	if (present && dacl) {
		if (getenv("FLTPORT_DEBUG") && strcmp(getenv("FLTPORT_DEBUG"), "1") == 0)
			fprintf(stderr,
				"fltport[%d]: RtlSetDaclSecurityDescriptor: ACLs are not "
				"supported; use the default (root only) or a NULL DACL "
				"(everyone)\n",
				(int)getpid());
		return STATUS_NOT_SUPPORTED;
	}
	d->everyone = true; /* a NULL DACL, or none, grants everyone */
	return STATUS_SUCCESS;
}

/* ---- server ports ---- */

static NTSTATUS create_status(int rc)
{
	switch (rc) {
	case -EADDRINUSE:
		return STATUS_OBJECT_NAME_COLLISION;
	case -EINVAL:
	case -ENAMETOOLONG:
		return STATUS_OBJECT_NAME_INVALID;
	case -ENOMEM:
		return STATUS_INSUFFICIENT_RESOURCES;
	case -EACCES:
	case -EPERM:
		return STATUS_ACCESS_DENIED;
	default:
		return STATUS_UNSUCCESSFUL;
	}
}

FLTPORT_WINAPI NTSTATUS FltCreateCommunicationPort(PFLT_FILTER filter, PFLT_PORT *out,
						   POBJECT_ATTRIBUTES oa, PVOID cookie,
						   PFLT_CONNECT_NOTIFY cn,
						   PFLT_DISCONNECT_NOTIFY dn,
						   PFLT_MESSAGE_NOTIFY mn, LONG max_connections)
{
	struct fltport_server_config cfg = { 0 };
	const struct fpk_sd *sd;
	char name[FPW_NAME_BYTES];
	struct fpk_server *s;
	int rc;

	if (!out || !oa || !oa->ObjectName || !cn || !dn || max_connections <= 0 ||
	    !(oa->Attributes & OBJ_KERNEL_HANDLE))
		return STATUS_INVALID_PARAMETER;
	sd = oa->SecurityDescriptor;
	if (sd && sd->magic != SD_MAGIC)
		return STATUS_INVALID_PARAMETER;
	if (!oa->ObjectName->Buffer ||
	    fpw_wname_to_utf8(oa->ObjectName->Buffer, oa->ObjectName->Length / sizeof(WCHAR), name,
			      sizeof(name)) < 0 ||
	    fltport_name_valid(name) < 0)
		return STATUS_OBJECT_NAME_INVALID;
	s = calloc(1, sizeof(*s));
	if (!s)
		return STATUS_INSUFFICIENT_RESOURCES;
	s->hdr.kind = FPK_SERVER;
	s->filter = filter;
	s->cookie = cookie;
	s->on_connect = cn;
	s->on_disconnect = dn;
	s->on_message = mn;
	cfg.cookie = s;
	cfg.on_connect = connect_tramp;
	cfg.on_disconnect = disconnect_tramp;
	cfg.on_message = mn ? message_tramp : NULL;
	cfg.max_connections = max_connections;
	cfg.access.mode = sd && sd->everyone ? FLTPORT_ACCESS_EVERYONE : FLTPORT_ACCESS_ROOT;
	rc = fltport_server_create(name, &cfg, &s->srv);
	if (rc < 0) {
		free(s);
		return create_status(rc);
	}
	pthread_mutex_lock(&port_lock);
	s->next = servers;
	servers = s;
	pthread_mutex_unlock(&port_lock);
	*out = (PFLT_PORT)s;
	return STATUS_SUCCESS;
}

FLTPORT_WINAPI VOID FltCloseCommunicationPort(PFLT_PORT port)
{
	struct fpk_server *s = (struct fpk_server *)port;

	if (s && s->hdr.kind == FPK_SERVER)
		fltport_server_close(s->srv);
}

/* After the native server is destroyed (which freed the native client
 * ports), the client ports whose variables the filter never closed. */
static void orphan_clients(struct fpk_server *s)
{
	for (;;) {
		struct fpk_client *c;

		pthread_mutex_lock(&port_lock);
		c = s->clients;
		if (c) {
			s->clients = c->next;
			c->orphaned = true;
		}
		pthread_mutex_unlock(&port_lock);
		if (!c)
			return;
		client_put(c); /* the variable's reference: it is invalid now */
	}
}

FLTPORT_WINAPI VOID FltportUnloadFilter(PFLT_FILTER filter)
{
	for (;;) {
		struct fpk_server **pp, *s = NULL;

		pthread_mutex_lock(&port_lock);
		for (pp = &servers; *pp; pp = &(*pp)->next)
			if ((*pp)->filter == filter) {
				s = *pp;
				*pp = s->next;
				break;
			}
		pthread_mutex_unlock(&port_lock);
		if (!s)
			return;
		/* Every DisconnectNotify runs (dropping the connections'
		 * references); then the native client ports are gone. */
		fltport_server_destroy(s->srv);
		orphan_clients(s);
		free(s);
	}
}

/* ---- client ports ---- */

FLTPORT_WINAPI VOID FltCloseClientPort(PFLT_FILTER filter, PFLT_PORT *var)
{
	struct fpk_client *c;

	(void)filter;
	if (!var)
		return;
	pthread_mutex_lock(&port_lock);
	c = (struct fpk_client *)*var;
	*var = NULL;
	pthread_mutex_unlock(&port_lock);
	if (!c || c->hdr.kind != FPK_CLIENT)
		return;
	fltport_client_disconnect(c->native);
	client_put(c);
}

/* 100-ns Windows timeouts → relative nanoseconds (SPEC §2.5, §8.1). */
static int64_t timeout_ns(const LARGE_INTEGER *t)
{
	struct timespec ts;
	int64_t now100, delta;

	if (!t)
		return FLTPORT_INFINITE;
	if (t->QuadPart == 0)
		return FLTPORT_POLL;
	if (t->QuadPart < 0) {
		if (t->QuadPart < INT64_MIN / 100 + 1)
			return FLTPORT_INFINITE;
		return -t->QuadPart * 100;
	}
	/* Absolute: 100-ns units since 1601-01-01 UTC. */
	clock_gettime(CLOCK_REALTIME, &ts);
	now100 = ((int64_t)ts.tv_sec + 11644473600LL) * 10000000LL + ts.tv_nsec / 100;
	delta = t->QuadPart - now100;
	if (delta <= 0)
		return FLTPORT_POLL;
	return delta > INT64_MAX / 100 ? FLTPORT_INFINITE : delta * 100;
}

FLTPORT_WINAPI NTSTATUS FltSendMessage(PFLT_FILTER filter, PFLT_PORT *var, PVOID msg, ULONG len,
				       PVOID reply, PULONG reply_len, PLARGE_INTEGER timeout)
{
	struct fpk_client *c;
	size_t rlen = reply_len ? *reply_len : 0;
	int rc;

	(void)filter;
	if (!var || !msg || (reply && !reply_len))
		return STATUS_INVALID_PARAMETER;
	pthread_mutex_lock(&port_lock);
	c = (struct fpk_client *)*var;
	if (c && c->hdr.kind == FPK_CLIENT)
		atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&port_lock);
	if (!c)
		return STATUS_PORT_DISCONNECTED;
	if (c->hdr.kind != FPK_CLIENT)
		return STATUS_INVALID_PARAMETER;
	rc = fltport_send(c->native, msg, len, NULL, 0, reply, reply ? &rlen : NULL, NULL,
			  timeout_ns(timeout));
	client_put(c);
	switch (rc) {
	case 0:
		if (reply)
			*reply_len = (ULONG)rlen;
		return STATUS_SUCCESS;
	case -ETIMEDOUT:
		return STATUS_TIMEOUT;
	case -EOVERFLOW:
		*reply_len = (ULONG)rlen;
		return STATUS_BUFFER_OVERFLOW;
	case -EMSGSIZE:
	case -EINVAL:
		return STATUS_INVALID_PARAMETER;
	case -ENOMEM:
	case -EMFILE:
	case -ENFILE:
	case -ENOBUFS:
		return STATUS_INSUFFICIENT_RESOURCES;
	default:
		return STATUS_PORT_DISCONNECTED;
	}
}

FLTPORT_WINAPI NTSTATUS FltportGetClientInfo(PFLT_PORT port, PFLTPORT_CLIENT_INFO info)
{
	struct fpk_client *c = (struct fpk_client *)port;
	struct fltport_peer peer;

	if (!c || !info || c->hdr.kind != FPK_CLIENT)
		return STATUS_INVALID_PARAMETER;
	fltport_client_peer(c->native, &peer);
	info->ProcessId = (ULONG)peer.pid;
	info->UserId = (ULONG)peer.uid;
	info->GroupId = (ULONG)peer.gid;
	return STATUS_SUCCESS;
}
