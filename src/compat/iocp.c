/* I/O completion ports: a FIFO of completion packets and the threads that
 * wait for them. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "compat/compat.h"

struct packet {
	struct packet *next;
	DWORD bytes;
	ULONG_PTR key;
	LPOVERLAPPED ov;
	NTSTATUS status;
};

struct fpw_iocp {
	struct fpw_obj obj;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct packet *head, *tail;
	bool closed;
	/* Associated ports: with exactly one (the usual case: a service's
	 * port and its completion port), a waiter with no packet reads that
	 * port's connection itself, so an overlapped read's message completes
	 * on the waiting thread (fltport_run_completions): one wake-up per
	 * message instead of the receive thread's and then the waiter's. */
	struct fpw_port *port; /* the first associated, until it goes */
	unsigned nports;
	unsigned npumping; /* waiters inside fltport_run_completions() */
};

/* The completion port this thread is reading a connection for: a packet it
 * posts itself (its own read's completion) needs no wake-up. */
static _Thread_local struct fpw_iocp *tl_pumping;

void fpw_iocp_port_add(struct fpw_iocp *q, struct fpw_port *p)
{
	pthread_mutex_lock(&q->lock);
	if (!q->port && !q->nports)
		q->port = p;
	q->nports++;
	pthread_mutex_unlock(&q->lock);
}

void fpw_iocp_port_remove(struct fpw_iocp *q, struct fpw_port *p)
{
	pthread_mutex_lock(&q->lock);
	if (q->port == p)
		q->port = NULL;
	q->nports--;
	pthread_mutex_unlock(&q->lock);
}

/* Wake the waiters reading the port's connection (q->lock held; the port
 * stays while it is q->port). */
static void wake_pumpers(struct fpw_iocp *q)
{
	if (q->npumping && q->port && tl_pumping != q)
		fltport_wake_completions(q->port->conn);
}

struct fpw_obj *fpw_iocp_obj(struct fpw_iocp *q)
{
	return &q->obj;
}

static void iocp_close(struct fpw_obj *o)
{
	struct fpw_iocp *q = (struct fpw_iocp *)o;

	/* Waiters return ERROR_ABANDONED_WAIT_0; later packets are dropped. */
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->cond);
	if (q->npumping && q->port)
		fltport_wake_completions(q->port->conn);
	pthread_mutex_unlock(&q->lock);
}

static void iocp_destroy(struct fpw_obj *o)
{
	struct fpw_iocp *q = (struct fpw_iocp *)o;

	while (q->head) {
		struct packet *p = q->head;

		q->head = p->next;
		free(p);
	}
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

void fpw_iocp_post(struct fpw_iocp *q, DWORD bytes, ULONG_PTR key, LPOVERLAPPED ov, NTSTATUS status)
{
	struct packet *p = malloc(sizeof(*p));

	if (!p)
		return; /* like a full kernel queue: the completion is lost */
	*p = (struct packet){ .bytes = bytes, .key = key, .ov = ov, .status = status };
	pthread_mutex_lock(&q->lock);
	if (q->closed) {
		pthread_mutex_unlock(&q->lock);
		free(p);
		return;
	}
	if (q->tail)
		q->tail->next = p;
	else
		q->head = p;
	q->tail = p;
	wake_pumpers(q);
	pthread_mutex_unlock(&q->lock);
	/* After the unlock (a waiter woken under it would block on the lock
	 * at once); the caller's reference keeps q alive. */
	pthread_cond_signal(&q->cond);
}

static HANDLE iocp_new(void)
{
	struct fpw_iocp *q = calloc(1, sizeof(*q));
	pthread_condattr_t a;

	if (!q) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return NULL;
	}
	fpw_obj_init(&q->obj, FPW_IOCP, iocp_close, iocp_destroy);
	pthread_mutex_init(&q->lock, NULL);
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cond, &a);
	pthread_condattr_destroy(&a);
	return fpw_handle_new(&q->obj);
}

FLTPORT_WINAPI HANDLE CreateIoCompletionPort(HANDLE file, HANDLE existing, ULONG_PTR key,
					     DWORD threads)
{
	struct fpw_obj *port, *qo;
	HANDLE h;
	bool ok;

	(void)threads;
	if (file == INVALID_HANDLE_VALUE) {
		if (existing) {
			SetLastError(ERROR_INVALID_PARAMETER);
			return NULL;
		}
		return iocp_new();
	}
	port = fpw_handle_get(file, FPW_PORT);
	if (!port)
		return NULL;
	h = existing ? existing : iocp_new();
	qo = h ? fpw_handle_get(h, FPW_IOCP) : NULL;
	if (!qo) {
		if (h && !existing)
			CloseHandle(h);
		fpw_obj_put(port);
		return NULL;
	}
	ok = fpw_port_associate((struct fpw_port *)port, (struct fpw_iocp *)qo, key);
	fpw_obj_put(qo);
	fpw_obj_put(port);
	if (!ok) {
		if (!existing)
			CloseHandle(h);
		SetLastError(ERROR_INVALID_PARAMETER);
		return NULL;
	}
	return h;
}

/* A deadline (absolute, CLOCK_MONOTONIC ns; INT64_MAX: none) as a timeout
 * for the native API. */
static int64_t left_ns(int64_t deadline)
{
	struct timespec now;
	int64_t n;

	if (deadline == INT64_MAX)
		return FLTPORT_INFINITE;
	clock_gettime(CLOCK_MONOTONIC, &now);
	n = deadline - ((int64_t)now.tv_sec * 1000000000 + now.tv_nsec);
	return n > 0 ? n : FLTPORT_POLL;
}

FLTPORT_WINAPI BOOL GetQueuedCompletionStatus(HANDLE h, LPDWORD bytes, PULONG_PTR key,
					      LPOVERLAPPED *ov, DWORD ms)
{
	struct fpw_obj *o = fpw_handle_get(h, FPW_IOCP);
	struct fpw_iocp *q = (struct fpw_iocp *)o;
	int64_t deadline = fpw_deadline_ms(ms);
	struct packet *p = NULL;
	struct timespec ts = { .tv_sec = (time_t)(deadline / 1000000000),
			       .tv_nsec = (long)(deadline % 1000000000) };
	bool closed = false, pump = true;
	BOOL ok;

	if (ov)
		*ov = NULL;
	if (!o)
		return FALSE;
	if (!bytes || !key || !ov) {
		fpw_obj_put(o);
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	pthread_mutex_lock(&q->lock);
	while (!(p = q->head) && !(closed = q->closed)) {
		struct fpw_port *port = NULL;
		int r;

		if (pump && q->nports == 1 && q->port && fpw_obj_tryget(&q->port->obj))
			port = q->port;
		if (port) {
			/* Read the port's connection here until a completion
			 * (ours, or posted by another thread: it wakes us). */
			q->npumping++;
			pthread_mutex_unlock(&q->lock);
			tl_pumping = q;
			r = fltport_run_completions(port->conn, left_ns(deadline));
			tl_pumping = NULL;
			fpw_obj_put(&port->obj);
			pthread_mutex_lock(&q->lock);
			q->npumping--;
			if (r == -ETIMEDOUT && !q->head)
				break;
			if (r < 0 && r != -ETIMEDOUT)
				pump = false; /* no read posted, or the port ended: wait */
			continue;
		}
		r = deadline == INT64_MAX ? pthread_cond_wait(&q->cond, &q->lock)
					  : pthread_cond_timedwait(&q->cond, &q->lock, &ts);
		if (r == ETIMEDOUT)
			break;
	}
	if (p) {
		q->head = p->next;
		if (!q->head)
			q->tail = NULL;
	}
	pthread_mutex_unlock(&q->lock);
	fpw_obj_put(o);
	if (!p) {
		SetLastError(closed ? ERROR_ABANDONED_WAIT_0 : WAIT_TIMEOUT);
		return FALSE;
	}
	*bytes = p->bytes;
	*key = p->key;
	*ov = p->ov;
	ok = NT_SUCCESS(p->status) ? TRUE : FALSE;
	if (!ok)
		SetLastError(RtlNtStatusToDosError(p->status));
	free(p);
	return ok;
}

FLTPORT_WINAPI BOOL PostQueuedCompletionStatus(HANDLE h, DWORD bytes, ULONG_PTR key,
					       LPOVERLAPPED ov)
{
	struct fpw_obj *o = fpw_handle_get(h, FPW_IOCP);

	if (!o)
		return FALSE;
	fpw_iocp_post((struct fpw_iocp *)o, bytes, key, ov, STATUS_SUCCESS);
	fpw_obj_put(o);
	return TRUE;
}

void fpw_complete(LPOVERLAPPED ov, NTSTATUS status, DWORD bytes, struct fpw_iocp *q, ULONG_PTR key)
{
	HANDLE ev = ov->hEvent;
	struct fpw_obj *eo;

	pthread_mutex_lock(&fpw_wait_lock);
	/* Atomic stores: programs poll Internal without a lock
	 * (HasOverlappedIoCompleted), as they may on Windows. */
	__atomic_store_n(&ov->InternalHigh, (ULONG_PTR)bytes, __ATOMIC_RELAXED);
	__atomic_store_n(&ov->Internal, (ULONG_PTR)(LONG_PTR)status, __ATOMIC_RELEASE);
	fpw_wait_broadcast();
	pthread_mutex_unlock(&fpw_wait_lock);
	if (ev && (eo = fpw_handle_get((HANDLE)((uintptr_t)ev & ~(uintptr_t)3), FPW_EVENT))) {
		fpw_set_event_obj(eo);
		fpw_obj_put(eo);
	}
	/* hEvent with its low bit set: "do not queue a completion packet". */
	if (q && !((uintptr_t)ev & 1))
		fpw_iocp_post(q, bytes, key, ov, status);
}

FLTPORT_WINAPI BOOL GetOverlappedResult(HANDLE h, LPOVERLAPPED ov, LPDWORD bytes, BOOL wait)
{
	struct fpw_obj *o = fpw_handle_get(h, FPW_PORT);
	NTSTATUS st;

	if (!o)
		return FALSE;
	fpw_obj_put(o);
	if (!ov || !bytes) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return FALSE;
	}
	pthread_mutex_lock(&fpw_wait_lock);
	while ((NTSTATUS)ov->Internal == STATUS_PENDING && wait)
		fpw_wait_until(INT64_MAX);
	st = (NTSTATUS)ov->Internal;
	*bytes = (DWORD)ov->InternalHigh;
	pthread_mutex_unlock(&fpw_wait_lock);
	if (st == STATUS_PENDING) {
		SetLastError(ERROR_IO_INCOMPLETE);
		return FALSE;
	}
	if (!NT_SUCCESS(st)) {
		SetLastError(RtlNtStatusToDosError(st));
		return FALSE;
	}
	return TRUE;
}
