/* fltuser.h on the native user-side API: port handles, overlapped reads. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat/compat.h"
#include "compat/wname.h"

/* A pending overlapped FilterGetMessage.  Two references: the submitter's
 * (until it has recorded the token) and the completion's. */
struct fpw_read {
	struct fpw_read *next;
	struct fpw_port *port;
	LPOVERLAPPED ov;
	PFILTER_MESSAGE_HEADER buf;
	uint64_t token;
	bool listed;
	atomic_int refs;
};

static void read_put(struct fpw_read *r)
{
	if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
		free(r);
}

static void unlist(struct fpw_port *p, struct fpw_read *r)
{
	for (struct fpw_read **pp = &p->reads; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	r->listed = false;
}

static void port_close(struct fpw_obj *o)
{
	/* Pending reads complete with STATUS_CANCELLED, blocked calls wake;
	 * the connection is freed with the last reference. */
	fltport_shutdown(((struct fpw_port *)o)->conn);
}

static void port_destroy(struct fpw_obj *o)
{
	struct fpw_port *p = (struct fpw_port *)o;

	if (p->iocp) /* before the connection goes: its waiters read it */
		fpw_iocp_port_remove(p->iocp, p);
	fltport_close(p->conn);
	if (p->iocp)
		fpw_obj_put(fpw_iocp_obj(p->iocp));
	pthread_mutex_destroy(&p->lock);
	free(p);
}

bool fpw_port_associate(struct fpw_port *p, struct fpw_iocp *q, ULONG_PTR key)
{
	bool ok = false;

	pthread_mutex_lock(&p->lock);
	if (!p->iocp) {
		fpw_obj_get(fpw_iocp_obj(q));
		p->iocp = q;
		p->key = key;
		ok = true;
	}
	pthread_mutex_unlock(&p->lock);
	if (ok)
		fpw_iocp_port_add(q, p);
	return ok;
}

/* ---- connect ---- */

static HRESULT connect_error(int rc, uint32_t status)
{
	switch (rc) {
	case -ENOENT:
		return HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND);
	case -EACCES:
		return E_ACCESSDENIED;
	case -EUSERS:
		return HRESULT_FROM_WIN32(ERROR_CONNECTION_COUNT_LIMIT);
	case -ECONNREFUSED:
		return fpw_hresult_from_ntstatus((NTSTATUS)status);
	case -EPROTO:
		return HRESULT_FROM_WIN32(ERROR_REVISION_MISMATCH);
	case -E2BIG:
		return HRESULT_FROM_WIN32(ERROR_ARITHMETIC_OVERFLOW);
	case -EINVAL:
	case -ENAMETOOLONG:
		return HRESULT_FROM_WIN32(ERROR_INVALID_NAME);
	case -ETIMEDOUT:
		return HRESULT_FROM_WIN32(ERROR_TIMEOUT);
	case -ENOMEM:
		return E_OUTOFMEMORY;
	case -ECONNRESET:
		return E_HANDLE;
	default:
		return E_FAIL;
	}
}

static int64_t connect_timeout(void)
{
	const char *s = getenv("FLTPORT_CONNECT_TIMEOUT_MS");
	long ms = s ? strtol(s, NULL, 10) : 0;

	return (ms > 0 ? ms : 60000) * 1000000LL;
}

FLTPORT_WINAPI HRESULT FilterConnectCommunicationPort(LPCWSTR name, DWORD options, LPCVOID ctx,
						      WORD ctx_len, LPSECURITY_ATTRIBUTES sa,
						      HANDLE *out)
{
	char uname[FPW_NAME_BYTES];
	struct fpw_port *p;
	fltport_conn *conn;
	uint32_t status = 0;
	HANDLE h;
	int rc;

	(void)sa; /* bInheritHandle: see docs/PORTING.md */
	if (out)
		*out = INVALID_HANDLE_VALUE;
	if (!out || !name || (options & ~(DWORD)FLT_PORT_FLAG_SYNC_HANDLE) ||
	    (ctx == NULL) != (ctx_len == 0))
		return E_INVALIDARG;
	if (ctx_len > FLT_PORT_CONTEXT_MAX)
		return HRESULT_FROM_WIN32(ERROR_ARITHMETIC_OVERFLOW);
	if (fpw_wname_to_utf8(name, wcslen(name), uname, sizeof(uname)) < 0 ||
	    fltport_name_valid(uname) < 0)
		return HRESULT_FROM_WIN32(ERROR_INVALID_NAME);
	rc = fltport_connect(uname, ctx, ctx_len, 0, connect_timeout(), &conn, &status);
	if (rc < 0)
		return connect_error(rc, status);
	p = calloc(1, sizeof(*p));
	if (!p) {
		fltport_close(conn);
		return E_OUTOFMEMORY;
	}
	fpw_obj_init(&p->obj, FPW_PORT, port_close, port_destroy);
	p->conn = conn;
	p->sync = options & FLT_PORT_FLAG_SYNC_HANDLE;
	pthread_mutex_init(&p->lock, NULL);
	h = fpw_handle_new(&p->obj);
	if (!h)
		return E_OUTOFMEMORY;
	*out = h;
	return S_OK;
}

/* ---- send ---- */

FLTPORT_WINAPI HRESULT FilterSendMessage(HANDLE h, LPVOID in, DWORD in_len, LPVOID out,
					 DWORD out_len, LPDWORD returned)
{
	struct fpw_obj *o = fpw_handle_get(h, FPW_PORT);
	size_t got = 0;
	uint32_t status = 0;
	HRESULT hr;
	int rc;

	if (!o)
		return E_HANDLE;
	if (!returned || (!in && in_len)) {
		fpw_obj_put(o);
		return E_INVALIDARG;
	}
	if (!out)
		out_len = 0; /* §8.16: ignored without a buffer */
	rc = fltport_request(((struct fpw_port *)o)->conn, in, in_len, NULL, 0, out, out_len, &got,
			     &status, FLTPORT_INFINITE);
	fpw_obj_put(o);
	switch (rc) {
	case 0:
		*returned = (DWORD)got;
		hr = fpw_hresult_from_ntstatus((NTSTATUS)status);
		break;
	case -EOPNOTSUPP:
		hr = HRESULT_FROM_WIN32(ERROR_INVALID_FUNCTION);
		break;
	case -EMSGSIZE:
	case -EINVAL:
		hr = E_INVALIDARG;
		break;
	case -ENOMEM:
		hr = E_OUTOFMEMORY;
		break;
	case -EMFILE:
	case -ENFILE:
	case -ENOBUFS:
		hr = HRESULT_FROM_WIN32(ERROR_NO_SYSTEM_RESOURCES);
		break;
	default:
		hr = E_HANDLE; /* disconnected (0x80070006) */
		break;
	}
	return hr;
}

/* ---- get ---- */

static NTSTATUS get_status(int err)
{
	switch (err) {
	case 0:
		return STATUS_SUCCESS;
	case -EMSGSIZE:
		return STATUS_BUFFER_TOO_SMALL;
	case -ECANCELED:
		return STATUS_CANCELLED;
	default:
		return STATUS_INVALID_HANDLE; /* the filter side ended it (§8.14, §8.28) */
	}
}

/* Fill the header in front of the payload; fds are not part of the Windows
 * API and are closed. */
static DWORD fill_header(PFILTER_MESSAGE_HEADER hdr, const struct fltport_msg *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		close(m->fds[i]);
	hdr->ReplyLength = m->wants_reply ? (ULONG)(m->reply_cap + sizeof(FILTER_REPLY_HEADER)) : 0;
	hdr->MessageId = m->id;
	return (DWORD)(sizeof(FILTER_MESSAGE_HEADER) + m->len);
}

static void read_done(void *arg, int err, void *buf, const struct fltport_msg *m)
{
	struct fpw_read *r = arg;
	struct fpw_port *p = r->port;
	DWORD bytes = err == 0 ? fill_header(r->buf, m) : 0;
	struct fpw_iocp *q;
	ULONG_PTR key;

	(void)buf;
	pthread_mutex_lock(&p->lock);
	if (r->listed)
		unlist(p, r);
	q = p->iocp;
	key = p->key;
	if (q)
		fpw_obj_get(fpw_iocp_obj(q));
	pthread_mutex_unlock(&p->lock);
	fpw_complete(r->ov, get_status(err), bytes, q, key);
	if (q)
		fpw_obj_put(fpw_iocp_obj(q));
	read_put(r);
	fpw_obj_put(&p->obj);
}

static HRESULT get_overlapped(struct fpw_port *p, PFILTER_MESSAGE_HEADER buf, DWORD size,
			      LPOVERLAPPED ov)
{
	struct fpw_read *r = calloc(1, sizeof(*r));
	uint64_t token = 0;
	int rc;

	if (!r)
		return E_OUTOFMEMORY;
	r->port = p;
	r->ov = ov;
	r->buf = buf;
	atomic_init(&r->refs, 2);
	ov->Internal = (ULONG_PTR)(LONG_PTR)STATUS_PENDING;
	ov->InternalHigh = 0;
	if (ov->hEvent)
		ResetEvent((HANDLE)((uintptr_t)ov->hEvent & ~(uintptr_t)3));
	pthread_mutex_lock(&p->lock);
	r->next = p->reads;
	p->reads = r;
	r->listed = true;
	pthread_mutex_unlock(&p->lock);
	fpw_obj_get(&p->obj); /* the completion's */
	rc = fltport_get_async(p->conn, (uint8_t *)buf + sizeof(FILTER_MESSAGE_HEADER),
			       size - sizeof(FILTER_MESSAGE_HEADER), read_done, r, &token);
	pthread_mutex_lock(&p->lock);
	if (rc < 0 && r->listed)
		unlist(p, r);
	r->token = token;
	pthread_mutex_unlock(&p->lock);
	if (rc < 0) {
		read_put(r); /* the completion's: it will never run */
		read_put(r);
		fpw_obj_put(&p->obj);
		return rc == -ECANCELED ? HRESULT_FROM_WIN32(ERROR_OPERATION_ABORTED) : E_HANDLE;
	}
	read_put(r);
	return HRESULT_FROM_WIN32(ERROR_IO_PENDING);
}

static HRESULT get_sync(struct fpw_port *p, PFILTER_MESSAGE_HEADER buf, DWORD size, LPOVERLAPPED ov)
{
	struct fltport_msg m;
	DWORD bytes = 0;
	int rc = fltport_get(p->conn, (uint8_t *)buf + sizeof(FILTER_MESSAGE_HEADER),
			     size - sizeof(FILTER_MESSAGE_HEADER), &m, FLTPORT_INFINITE);

	if (rc == 0)
		bytes = fill_header(buf, &m);
	if (ov)
		fpw_complete(ov, get_status(rc), bytes, NULL, 0);
	switch (rc) {
	case 0:
		return S_OK;
	case -EMSGSIZE:
		return HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER);
	case -ECANCELED:
		return HRESULT_FROM_WIN32(ERROR_OPERATION_ABORTED);
	default:
		return E_HANDLE;
	}
}

FLTPORT_WINAPI HRESULT FilterGetMessage(HANDLE h, PFILTER_MESSAGE_HEADER buf, DWORD size,
					LPOVERLAPPED ov)
{
	struct fpw_obj *o = fpw_handle_get(h, FPW_PORT);
	struct fpw_port *p = (struct fpw_port *)o;
	HRESULT hr;

	if (!o)
		return E_HANDLE;
	if (!buf) {
		hr = E_INVALIDARG;
	} else if (size < sizeof(FILTER_MESSAGE_HEADER)) {
		hr = HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER);
	} else if (fltport_conn_ended(p->conn)) {
		hr = E_HANDLE; /* §8.14: at once, no completion */
	} else if (ov && !p->sync) {
		hr = get_overlapped(p, buf, size, ov);
	} else {
		hr = get_sync(p, buf, size, ov);
	}
	fpw_obj_put(o);
	return hr;
}

/* ---- reply ---- */

FLTPORT_WINAPI HRESULT FilterReplyMessage(HANDLE h, PFILTER_REPLY_HEADER buf, DWORD size)
{
	struct fpw_obj *o = fpw_handle_get(h, FPW_PORT);
	int rc;

	if (!o)
		return E_HANDLE;
	if (!buf || size < sizeof(FILTER_REPLY_HEADER)) {
		fpw_obj_put(o);
		return E_INVALIDARG;
	}
	rc = fltport_reply(((struct fpw_port *)o)->conn, buf->MessageId, (uint32_t)buf->Status,
			   (uint8_t *)buf + sizeof(FILTER_REPLY_HEADER),
			   size - sizeof(FILTER_REPLY_HEADER));
	fpw_obj_put(o);
	switch (rc) {
	case 0:
		return S_OK;
	case -ENOENT:
		return ERROR_FLT_NO_WAITER_FOR_REPLY;
	case -EOVERFLOW:
		if (getenv("FLTPORT_DEBUG") && strcmp(getenv("FLTPORT_DEBUG"), "1") == 0)
			fprintf(stderr,
				"fltport[%d]: FilterReplyMessage: %u bytes of reply data "
				"(dwReplyBufferSize %u - sizeof(FILTER_REPLY_HEADER) 16) exceed "
				"the "
				"sender's reply buffer; if the size is sizeof(a struct holding "
				"FILTER_REPLY_HEADER and your reply), padding is the likely cause: "
				"pass sizeof(FILTER_REPLY_HEADER) + sizeof(reply) or pack the "
				"struct\n",
				(int)getpid(), size - 16u, size);
		return HRESULT_FROM_WIN32(ERROR_MORE_DATA);
	case -EMSGSIZE:
	case -EINVAL:
		return E_INVALIDARG;
	case -ENOMEM:
		return E_OUTOFMEMORY;
	case -EMFILE:
	case -ENFILE:
	case -ENOBUFS:
		/* Nothing was sent; the message can be answered again. */
		return HRESULT_FROM_WIN32(ERROR_NO_SYSTEM_RESOURCES);
	default:
		return E_HANDLE;
	}
}

/* ---- cancel ---- */

FLTPORT_WINAPI BOOL CancelIoEx(HANDLE h, LPOVERLAPPED ov)
{
	struct fpw_obj *o = fpw_handle_get(h, FPW_PORT);
	struct fpw_port *p = (struct fpw_port *)o;
	int n = 0;

	if (!o)
		return FALSE;
	if (!ov) {
		n = fltport_cancel_gets(p->conn);
	} else {
		for (;;) {
			struct fpw_read *r;
			uint64_t token = 0;
			bool found = false;

			pthread_mutex_lock(&p->lock);
			for (r = p->reads; r; r = r->next)
				if (r->ov == ov) {
					found = true;
					token = r->token;
					break;
				}
			pthread_mutex_unlock(&p->lock);
			if (found && token == 0) {
				sched_yield(); /* being posted right now: its token is coming */
				continue;
			}
			n = found && fltport_cancel_get(p->conn, token) == 0;
			break;
		}
	}
	fpw_obj_put(o);
	if (n <= 0) {
		SetLastError(ERROR_NOT_FOUND);
		return FALSE;
	}
	return TRUE;
}

FLTPORT_WINAPI BOOL CancelIo(HANDLE h)
{
	return CancelIoEx(h, NULL);
}
