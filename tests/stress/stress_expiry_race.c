/*
 * stress_expiry_race — SPEC §8.12: a message whose deadline expired is never
 * delivered; "taken" versus "expired" is decided exactly once.
 *
 * This process is the filter.  An fp_stress_service process keeps 1 or 2
 * threads in fltport_get() (short timeouts, in a loop) while we send 10,000
 * rounds (default scale), one message each, with deadlines spread over
 * 1..200 µs, a few of 1..2 ms, and every 8th FLTPORT_POLL, so that expiry
 * and the read race.  The service records every round it took (and, when a
 * reply is wanted, what fltport_reply() returned).  Proved, per round:
 *   no reply wanted:  send 0 ⇔ taken exactly once;
 *                     send -ETIMEDOUT ⇔ never taken;
 *   reply wanted:     send 0 ⇔ taken once and fltport_reply() returned 0
 *                     (and the reply bytes are the round's);
 *                     send -ETIMEDOUT ⇔ never taken, or taken once and
 *                     fltport_reply() returned -ENOENT (reply too late).
 * Never twice, never both, never neither.  The counts of each outcome are
 * printed; an outcome that never occurred only warns (machine speed).
 * Two more variants SIGSTOP the service for 10 rounds in every 1000, so that
 * expired messages pile up unread and are found by a service that wakes up
 * later: they must still never be delivered.
 */
#include "stress_wire.h"
#include "testutil.h"

#include <fltport/port.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WATCHDOG_S 600
#define STOP_TIMEOUT_NS (10 * 1000000000LL)

static atomic_long failures;
static volatile sig_atomic_t frozen_pid; /* resumed by the watchdog */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (atomic_fetch_add(&failures, 1) < 100)
		printf("FAIL: %s\n", line);
	fflush(stdout);
}

static void on_alarm(int sig)
{
	static const char msg[] = "stress_expiry_race: TIMEOUT\n";

	(void)sig;
	if (frozen_pid > 0)
		kill((pid_t)frozen_pid, SIGCONT);
	(void)!write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	_exit(1);
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* ------------------------------------------------------------------ */
/* Filter side                                                          */
/* ------------------------------------------------------------------ */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static fltport_client *the_client;
static atomic_int connects, disconnects;

static int on_connect(fltport_client *client, void *server_cookie, const void *ctx, size_t ctx_len,
		      const struct fltport_peer *peer, void **conn_cookie, uint32_t *status)
{
	pthread_mutex_lock(&lock);
	the_client = client;
	pthread_mutex_unlock(&lock);
	atomic_fetch_add(&connects, 1);
	*conn_cookie = client;
	return 0;
}

static void on_disconnect(void *conn_cookie)
{
	fltport_client_close(conn_cookie);
	atomic_fetch_add(&disconnects, 1);
}

static bool one_disconnect(void *arg)
{
	(void)arg;
	return atomic_load(&disconnects) >= 1;
}

struct variant {
	const char *name;
	bool reply;
	int getters;
	bool freeze; /* rounds 500..509 of every 1000 go to a SIGSTOPped service */
};

struct outcome {
	long delivered;  /* send 0: taken (and replied) */
	long expired;    /* send -ETIMEDOUT, never taken */
	long late_reply; /* send -ETIMEDOUT, taken, reply refused with -ENOENT */
};

/* 1 in 8 rounds polls, 1 in 8 waits 1..2 ms, the rest 1..200 µs. */
static int64_t deadline_of(long r)
{
	uint64_t h = mix64((uint64_t)r * 0x9e3779b97f4a7c15ULL + 1);

	if (r % 8 == 0)
		return FLTPORT_POLL;
	if (r % 8 == 1)
		return 1000000 + (int64_t)(h % 1000000);
	return 1 + (int64_t)(h % 200000);
}

static int send_round(fltport_client *client, const struct variant *v, long r)
{
	struct exp_msg m = { .round = (uint64_t)r, .check = (uint64_t)r ^ EXP_MAGIC };
	uint64_t reply = 0;
	size_t rl = sizeof(reply);
	uint32_t st = 0xffffffffu;
	int rc;

	if (!v->reply)
		return fltport_send(client, &m, sizeof(m), NULL, 0, NULL, NULL, NULL,
				    deadline_of(r));
	rc = fltport_send(client, &m, sizeof(m), NULL, 0, &reply, &rl, &st, deadline_of(r));
	if (rc == 0 && (rl != sizeof(reply) || reply != (uint64_t)r || st != 0))
		fail("%s round %ld: reply len %zu value %llu status %u, want 8 %ld 0", v->name, r,
		     rl, (unsigned long long)reply, st, r);
	return rc;
}

static void send_rounds(fltport_client *client, const struct variant *v, int *res, long rounds,
			pid_t pid)
{
	struct exp_msg stop = { .round = EXP_STOP, .check = EXP_STOP ^ EXP_MAGIC };
	int rc;

	for (long r = 0; r < rounds; r++) {
		if (v->freeze && r % 1000 == 500) {
			frozen_pid = pid;
			kill(pid, SIGSTOP);
		}
		res[r] = send_round(client, v, r);
		if (res[r] != 0 && res[r] != -ETIMEDOUT)
			fail("%s round %ld: fltport_send: %d", v->name, r, res[r]);
		if (v->freeze && r % 1000 == 509)
			kill(pid, SIGCONT);
	}
	if (v->freeze)
		kill(pid, SIGCONT);
	frozen_pid = 0;
	rc = fltport_send(client, &stop, sizeof(stop), NULL, 0, NULL, NULL, NULL, STOP_TIMEOUT_NS);
	if (rc != 0)
		fail("%s: STOP: fltport_send: %d", v->name, rc);
}

/* Read the service's records into got[] (times taken) and reply_rc[]. */
static void read_records(const char *path, const struct variant *v, unsigned char *got,
			 int *reply_rc, long rounds, long want)
{
	FILE *f = fopen(path, "rb");
	struct exp_rec rec;
	long n = 0;

	if (!f) {
		fail("%s: cannot open %s", v->name, path);
		return;
	}
	while (fread(&rec, sizeof(rec), 1, f) == 1) {
		n++;
		if (rec.round >= (uint64_t)rounds) {
			fail("%s: service took unknown round %llu", v->name,
			     (unsigned long long)rec.round);
			continue;
		}
		if (got[rec.round] < 255)
			got[rec.round]++;
		reply_rc[rec.round] = (int)rec.reply_rc;
	}
	fclose(f);
	if (n != want)
		fail("%s: record file has %ld rounds, DONE said %ld", v->name, n, want);
}

static void check_round(const struct variant *v, long r, int res, int got, int reply_rc,
			struct outcome *o)
{
	if (got > 1) {
		fail("%s round %ld: delivered %d times", v->name, r, got);
	} else if (res == 0) {
		if (got == 0)
			fail("%s round %ld: send returned 0 but never delivered", v->name, r);
		else if (v->reply && reply_rc != 0)
			fail("%s round %ld: send returned 0 but the reply got %d", v->name, r,
			     reply_rc);
		else
			o->delivered++;
	} else if (res == -ETIMEDOUT) {
		if (got == 0)
			o->expired++;
		else if (!v->reply)
			fail("%s round %ld: send returned -ETIMEDOUT but it was delivered", v->name,
			     r);
		else if (reply_rc != -ENOENT)
			fail("%s round %ld: send returned -ETIMEDOUT but the reply got %d, want "
			     "-ENOENT",
			     v->name, r, reply_rc);
		else
			o->late_reply++;
	}
	if (!v->reply && got == 1 && reply_rc != 0)
		fail("%s round %ld: no reply wanted, yet reply result %d", v->name, r, reply_rc);
}

static void report(const struct variant *v, long rounds, const struct outcome *o)
{
	printf("%s: %ld rounds: delivered %ld, timed out undelivered %ld", v->name, rounds,
	       o->delivered, o->expired);
	if (v->reply)
		printf(", taken but reply too late (-ENOENT) %ld", o->late_reply);
	printf("\n");
	if (o->delivered == 0)
		printf("WARNING: %s: no round was delivered (machine speed?)\n", v->name);
	if (o->expired + o->late_reply == 0)
		printf("WARNING: %s: no round timed out (machine speed?)\n", v->name);
}

static bool finish_service(struct tu_proc *p, const struct variant *v, long *got, long *enoent)
{
	char line[256];
	long errors = -1;
	int code;

	if (!tu_expect(p, "DONE", line, sizeof(line), 60000)) {
		fail("%s: service printed no DONE line", v->name);
		tu_kill(p, SIGKILL);
		return false;
	}
	if (sscanf(line, "DONE got=%ld enoent=%ld errors=%ld", got, enoent, &errors) != 3)
		fail("%s: bad line '%s'", v->name, line);
	if (errors != 0)
		fail("%s: service reported %ld errors", v->name, errors);
	code = tu_wait(p, 30000);
	if (code != 0)
		fail("%s: service exit code %d, want 0", v->name, code);
	return true;
}

static void check_all(const struct variant *v, const int *res, const unsigned char *got,
		      const int *reply_rc, long rounds, long enoent)
{
	struct outcome o = { 0 };

	for (long r = 0; r < rounds; r++)
		check_round(v, r, res[r], got[r], reply_rc[r], &o);
	if (v->reply && o.late_reply != enoent)
		fail("%s: service counted %ld -ENOENT replies, rounds show %ld", v->name, enoent,
		     o.late_reply);
	report(v, rounds, &o);
}

static void run_variant(const char *dir, const struct variant *v, long rounds,
			const struct fltport_access *access)
{
	struct fltport_server_config cfg = {
		.on_connect = on_connect,
		.on_disconnect = on_disconnect,
		.max_connections = 1,
		.access = *access,
	};
	char path[128], ng[16];
	const char *port = tu_port_name("stress-exp");
	const char *args[] = { "expiry", port, ng, v->reply ? "1" : "0", path, NULL };
	int *res = calloc((size_t)rounds, sizeof(int));
	int *reply_rc = calloc((size_t)rounds, sizeof(int));
	unsigned char *got = calloc((size_t)rounds, 1);
	fltport_server *srv;
	fltport_client *client;
	struct tu_proc p;
	long ngot = -1, enoent = 0;
	char line[64];
	int rc;

	if (!res || !reply_rc || !got) {
		fail("out of memory");
		goto out;
	}
	atomic_store(&connects, 0);
	atomic_store(&disconnects, 0);
	rc = fltport_server_create(port, &cfg, &srv);
	if (rc != 0) {
		fail("%s: fltport_server_create: %d", v->name, rc);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/records", dir);
	snprintf(ng, sizeof(ng), "%d", v->getters);
	p = tu_spawn("fp_stress_service", args);
	if (!tu_expect(&p, "READY", line, sizeof(line), 30000)) {
		fail("%s: service printed no READY line", v->name);
		tu_kill(&p, SIGKILL);
		fltport_server_destroy(srv);
		goto out;
	}
	pthread_mutex_lock(&lock);
	client = the_client;
	pthread_mutex_unlock(&lock);

	send_rounds(client, v, res, rounds, p.pid);
	if (finish_service(&p, v, &ngot, &enoent)) {
		if (!tu_wait_until(one_disconnect, NULL, 10000))
			fail("%s: the disconnect callback did not run", v->name);
	}
	fltport_server_destroy(srv);
	if (atomic_load(&connects) != 1 || atomic_load(&disconnects) != 1)
		fail("%s: %d connects, %d disconnects, want 1 and 1", v->name,
		     atomic_load(&connects), atomic_load(&disconnects));
	if (ngot >= 0) {
		read_records(path, v, got, reply_rc, rounds, ngot);
		check_all(v, res, got, reply_rc, rounds, enoent);
	}
	unlink(path);
out:
	free(res);
	free(reply_rc);
	free(got);
}

int main(void)
{
	static const struct variant variants[] = {
		{ "no reply, 1 getter", false, 1, false },
		{ "no reply, 2 getters", false, 2, false },
		{ "reply, 2 getters", true, 2, false },
		{ "no reply, service frozen at times", false, 2, true },
		{ "reply, service frozen at times", true, 2, true },
	};
	struct fltport_access access = { 0 };
	uid_t me = geteuid();
	const char *dir;
	long rounds;

	signal(SIGALRM, on_alarm);
	alarm(WATCHDOG_S);
	setvbuf(stdout, NULL, _IOLBF, 0);
	dir = tu_private_dir();
	/* The default policy (root only) when root; else admit our own uid. */
	if (me != 0) {
		access.mode = FLTPORT_ACCESS_LIST;
		access.uids = &me;
		access.nuids = 1;
	}
	rounds = tu_scaled(10000, 200);
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++)
		run_variant(dir, &variants[i], rounds, &access);
	rmdir(dir);

	if (atomic_load(&failures)) {
		printf("stress_expiry_race: FAILED (%ld failures)\n", atomic_load(&failures));
		return 1;
	}
	printf("stress_expiry_race: OK: %ld rounds x %zu variants, no message both expired and "
	       "delivered\n",
	       rounds, sizeof(variants) / sizeof(variants[0]));
	return 0;
}
