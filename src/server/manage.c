/*
 * A server port on the management plane (fltport/mgmt.h): what it is, its
 * counters, its connections.
 */
#include "server/server_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/debug.h"

static void read_counters(const struct fp_port_counters *c, struct fltport_port_stats *st)
{
	st->connects = atomic_load_explicit(&c->connects, memory_order_relaxed);
	st->refused = atomic_load_explicit(&c->refused, memory_order_relaxed);
	st->disconnects = atomic_load_explicit(&c->disconnects, memory_order_relaxed);
	st->sent = atomic_load_explicit(&c->sent, memory_order_relaxed);
	st->sent_bytes = atomic_load_explicit(&c->sent_bytes, memory_order_relaxed);
	st->replies = atomic_load_explicit(&c->replies, memory_order_relaxed);
	st->timed_out = atomic_load_explicit(&c->timed_out, memory_order_relaxed);
	st->cancelled = atomic_load_explicit(&c->cancelled, memory_order_relaxed);
	st->received = atomic_load_explicit(&c->received, memory_order_relaxed);
	st->received_bytes = atomic_load_explicit(&c->received_bytes, memory_order_relaxed);
	st->pending = atomic_load_explicit(&c->pending, memory_order_relaxed);
}

/* The executable at connect time, as the pid still names it (it is
 * connected: it cannot have been reused yet unless it exited).  Read
 * before taking srv->lock: /proc is no place to wait under it. */
char *fp_port_peer_exe(pid_t pid)
{
	char path[64], exe[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	return strdup(exe);
}

/* srv->lock held; takes `exe`. */
void fp_port_count_connect(struct fltport_server *srv, struct fltport_client *c, char *exe)
{
	c->exe = exe;
	c->since_ns = fp_mgmt_realtime();
	c->conn_id = ++srv->next_conn_id;
	fp_count(&srv->cnt.connects, 1);
	atomic_store_explicit(&c->cnt.connects, 1, memory_order_relaxed);
}

/* The connection's own counters only (the port's are summed when asked). */
void fp_port_count_send(struct fltport_client *c, size_t len, int rc, bool wants_reply)
{
	struct fp_port_counters *a = &c->cnt;

	if (rc >= 0) {
		fp_count(&a->sent, 1);
		fp_count(&a->sent_bytes, len);
		if (wants_reply)
			fp_count(&a->replies, 1);
	} else if (rc == -ETIMEDOUT) {
		fp_count(&a->timed_out, 1);
	} else if (rc == -ENOTCONN) {
		fp_count(&a->cancelled, 1);
	}
}

static void add_counters(struct fp_port_counters *to, const struct fp_port_counters *from)
{
#define FP_ADD(f) fp_count(&to->f, atomic_load_explicit(&from->f, memory_order_relaxed))
	FP_ADD(sent);
	FP_ADD(sent_bytes);
	FP_ADD(replies);
	FP_ADD(timed_out);
	FP_ADD(cancelled);
	FP_ADD(received);
	FP_ADD(received_bytes);
#undef FP_ADD
}

/* A connection is freed (srv->lock held): its counts stay in the port's. */
void fp_port_count_retire(struct fltport_server *srv, struct fltport_client *c)
{
	add_counters(&srv->cnt, &c->cnt);
}

static int emit_info(struct fltport_server *srv, struct fp_mgmt_out *out)
{
	struct fltport_port_info in;

	memset(&in, 0, sizeof(in));
	snprintf(in.name, sizeof(in.name), "%s", srv->mreg.name);
	in.pid = (int32_t)getpid();
	in.uid = (uint32_t)geteuid();
	in.max_connections = (uint32_t)srv->cfg.max_connections;
	in.started_ns = srv->mreg.started_ns;
	pthread_mutex_lock(&srv->lock);
	read_counters(&srv->cnt, &in.stats);
	for (struct fltport_client *c = srv->clients; c; c = c->next) {
		struct fltport_port_stats cs;

		read_counters(&c->cnt, &cs);
		in.stats.sent += cs.sent;
		in.stats.sent_bytes += cs.sent_bytes;
		in.stats.replies += cs.replies;
		in.stats.timed_out += cs.timed_out;
		in.stats.cancelled += cs.cancelled;
		in.stats.received += cs.received;
		in.stats.received_bytes += cs.received_bytes;
		in.stats.pending += cs.pending;
	}
	in.stats.connections = (uint32_t)(srv->nconn > 0 ? srv->nconn : 0);
	pthread_mutex_unlock(&srv->lock);
	return fp_mgmt_emit(out, &in, sizeof(in));
}

/* A snapshot under the server lock (which the I/O thread needs: nothing
 * slow under it), sent after. */
static int emit_connections(struct fltport_server *srv, struct fp_mgmt_out *out)
{
	struct fltport_conn_info *v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	pthread_mutex_lock(&srv->lock);
	for (struct fltport_client *c = srv->clients; c; c = c->next) {
		struct fltport_conn_info *e;

		if (c->state != FP_C_ACTIVE || c->killed)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct fltport_conn_info *nv = realloc(v, ncap * sizeof(*nv));

			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
			cap = ncap;
		}
		e = &v[n++];
		memset(e, 0, sizeof(*e));
		e->id = c->conn_id;
		e->pid = (int32_t)c->peer.pid;
		e->uid = (uint32_t)c->peer.uid;
		e->gid = (uint32_t)c->peer.gid;
		e->since_ns = c->since_ns;
		snprintf(e->exe, sizeof(e->exe), "%s", c->exe ? c->exe : "");
		read_counters(&c->cnt, &e->stats);
		e->stats.connections = 1;
	}
	pthread_mutex_unlock(&srv->lock);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = fp_mgmt_emit(out, &v[i], sizeof(v[i]));
	free(v);
	return rc;
}

static int handle(void *obj, enum fp_mgmt_op op, const void *in, size_t len,
		  struct fp_mgmt_out *out)
{
	struct fltport_server *srv = obj;

	(void)in;
	(void)len;
	switch (op) {
	case FP_MGMT_INFO:
		return emit_info(srv, out);
	case FP_MGMT_CONNECTIONS:
		return emit_connections(srv, out);
	default:
		return -EOPNOTSUPP;
	}
}

/* A port works without its control socket (a name too long for the longer
 * control path, a read-only directory): it is then only not listed. */
void fp_port_manage_register(struct fltport_server *srv, const char *name)
{
	int rc = fp_mgmt_register(&srv->mreg, FP_MGMT_PORT, name, handle, srv);

	if (rc < 0) {
		fp_debug("port %s is not listed by the management plane: %s", name, strerror(-rc));
		return;
	}
	pthread_mutex_lock(&srv->lock);
	srv->mgmt_state = FP_MGMT_ON;
	pthread_mutex_unlock(&srv->lock);
}

/* Once, whoever comes first (close or destroy, maybe at once on two
 * threads); a second caller waits until it is done, so that destroy never
 * frees the server under a running handler. */
void fp_port_manage_unregister(struct fltport_server *srv)
{
	pthread_mutex_lock(&srv->lock);
	if (srv->mgmt_state != FP_MGMT_ON) {
		while (srv->mgmt_state == FP_MGMT_LEAVING)
			pthread_cond_wait(&srv->state_cond, &srv->lock);
		pthread_mutex_unlock(&srv->lock);
		return;
	}
	srv->mgmt_state = FP_MGMT_LEAVING;
	pthread_mutex_unlock(&srv->lock);
	fp_mgmt_unregister(&srv->mreg);
	pthread_mutex_lock(&srv->lock);
	srv->mgmt_state = FP_MGMT_OFF;
	pthread_cond_broadcast(&srv->state_cond);
	pthread_mutex_unlock(&srv->lock);
}
