/*
 * fltport-soak: filters and services under random SIGKILLs and restarts for
 * a given time, then a bounded stop and the checks (docs/TESTING.md, "Soak").
 * Not part of `make test`: `make soak` runs it (SOAK_SECONDS).
 *
 *   fltport-soak [--seconds N] [--seed S] [--filters F] [--services S]
 *                [--senders T] [--kill-ms MS] [--heap-tolerance BYTES]
 *
 * The orchestrator is single-threaded and never calls the library: it
 * forks and execs /proc/self/exe in the filter or service role, reads their
 * report lines, kills and restarts them.  Filter 0 and service 0 of every
 * filter are never killed (the long-lived processes whose fds and heap are
 * checked; every other survivor is checked too).
 *
 * The seed fixes every random choice (sizes, deadlines, kill schedule);
 * timing does not replay exactly.
 */
#include "soak.h"

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PROCS 64        /* alive at once */
#define MAX_LINES 4096      /* final report lines kept per process */
#define STOP_BOUND_MS 90000 /* a process must finish each stop phase within this */
#define GDB_BOUND_MS 60000
#define DEFAULT_HEAP_TOL (64 * 1024)

enum role { R_FILTER, R_SERVICE };

struct proc {
	enum role role;
	unsigned slot;     /* filter K, or service slot */
	unsigned filter;   /* the filter it serves (services) */
	unsigned instance; /* unique over the run */
	bool killable;
	pid_t pid;
	int in, out;
	char buf[8192];
	size_t blen;
	char stats[1024];
	char done[1024];
	char **lines;
	size_t nlines;
	bool sent_done, stopping, exited, killed, hung;
	int status; /* exit code, or 128 + signal */
};

struct slot {
	struct proc *cur;
	int64_t restart_at; /* > 0: dead, restart then */
};

struct totals {
	long f[6];  /* sent delivered expired disconnected overflow other */
	long s[10]; /* service counters, see svc_keys */
};

static const char *const f_keys[6] = { "sent",         "delivered", "expired",
				       "disconnected", "overflow",  "other" };
static const char *const svc_keys[10] = { "got_sync",     "got_async", "emsgsize", "replies",
					  "replies_late", "req_sent",  "req_ok",   "req_timedout",
					  "req_notconn",  "req_other" };

static struct {
	uint64_t seed;
	int seconds;
	unsigned filters, services, senders;
	int kill_ms;
	long heap_tol;
} opt;

static struct soak_rng rng;
static struct slot *slots; /* filters first, then services */
static unsigned nslots;
static unsigned next_instance = 1;
static pid_t *all_pids; /* every filter pid started, for the reuse check */
static size_t nall_pids, cap_all_pids;
static struct proc **finished; /* survivors that went through the stop */
static size_t nfinished;
static struct totals killed_totals;
static long kills[2], restarts, unexpected, child_fails, hangs, stop_hangs;
static volatile sig_atomic_t interrupted;
static unsigned passed, failed;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p) {
		fprintf(stderr, "fltport-soak: out of memory\n");
		exit(2);
	}
	return p;
}

static const char *proc_name(const struct proc *p)
{
	char *b = tu_scratch();

	if (p->role == R_FILTER)
		snprintf(b, 2048, "filter %u (instance %u, pid %d)", p->slot, p->instance,
			 (int)p->pid);
	else
		snprintf(b, 2048, "service %u.%u (instance %u, pid %d)", p->filter,
			 p->slot % opt.services, p->instance, (int)p->pid);
	return b;
}

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		passed++;
		return;
	}
	failed++;
	printf("  FAILED: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* ------------------------------------------------------------------ */
/* Processes                                                            */
/* ------------------------------------------------------------------ */

static void remember_pid(pid_t pid)
{
	if (nall_pids == cap_all_pids) {
		cap_all_pids = cap_all_pids ? cap_all_pids * 2 : 256;
		all_pids = realloc(all_pids, cap_all_pids * sizeof(*all_pids));
		if (!all_pids)
			exit(2);
	}
	all_pids[nall_pids++] = pid;
}

static bool pid_unique(pid_t pid)
{
	size_t n = 0;

	for (size_t i = 0; i < nall_pids; i++)
		n += all_pids[i] == pid;
	return n == 1;
}

static void spawn(struct slot *sl, unsigned k)
{
	struct proc *p = xcalloc(1, sizeof(*p));
	char a[8][32];
	char *argv[24];
	int in[2], out[2], n = 0;

	p->role = k < opt.filters ? R_FILTER : R_SERVICE;
	p->slot = p->role == R_FILTER ? k : k - opt.filters;
	p->filter = p->role == R_FILTER ? k : p->slot / opt.services;
	p->instance = next_instance++;
	p->killable = p->role == R_FILTER ? p->slot != 0 : p->slot % opt.services != 0;
	snprintf(a[0], 32, "%u", p->filter);
	snprintf(a[1], 32, "%u", p->instance);
	snprintf(a[2], 32, "%llu", (unsigned long long)opt.seed);
	snprintf(a[3], 32, "%u", opt.senders);
	snprintf(a[4], 32, "%ld", opt.heap_tol);
	argv[n++] = "fltport-soak";
	argv[n++] = p->role == R_FILTER ? "filter" : "service";
	argv[n++] = p->role == R_FILTER ? "--index" : "--filter";
	argv[n++] = a[0];
	argv[n++] = "--instance";
	argv[n++] = a[1];
	argv[n++] = "--seed";
	argv[n++] = a[2];
	argv[n++] = "--senders";
	argv[n++] = a[3];
	argv[n++] = "--heap-tolerance";
	argv[n++] = a[4];
	argv[n] = NULL;
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
		perror("fltport-soak: pipe2");
		exit(2);
	}
	fflush(NULL);
	p->pid = fork();
	if (p->pid < 0) {
		perror("fltport-soak: fork");
		exit(2);
	}
	if (p->pid == 0) {
		/* Own process group: a Ctrl-C reaches the orchestrator only,
		 * which then stops everyone in order. */
		setpgid(0, 0);
		if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0)
			_exit(126);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	p->in = in[1];
	p->out = out[0];
	fcntl(p->out, F_SETFL, O_NONBLOCK);
	if (p->role == R_FILTER)
		remember_pid(p->pid);
	sl->cur = p;
	sl->restart_at = 0;
}

static void add_stats(struct totals *t, const char *line)
{
	for (int i = 0; i < 6; i++)
		t->f[i] += tu_field_num(line, f_keys[i]);
	for (int i = 0; i < 10; i++)
		t->s[i] += tu_field_num(line, svc_keys[i]);
}

static void keep_line(struct proc *p, const char *line)
{
	if (!p->lines)
		p->lines = xcalloc(MAX_LINES, sizeof(*p->lines));
	if (p->nlines < MAX_LINES)
		p->lines[p->nlines++] = strdup(line);
}

static void handle_line(struct proc *p, const char *line)
{
	if (strncmp(line, "STATS ", 6) == 0) {
		snprintf(p->stats, sizeof(p->stats), "%.1000s", line);
	} else if (strncmp(line, "FAIL ", 5) == 0) {
		child_fails++;
		printf("  %s: %s\n", proc_name(p), line);
	} else if (strncmp(line, "HANG ", 5) == 0) {
		hangs++;
		printf("  %s: %s\n", proc_name(p), line);
	} else if (strncmp(line, "SENDER ", 7) == 0 || strncmp(line, "PAIR ", 5) == 0 ||
		   strncmp(line, "RECV ", 5) == 0) {
		keep_line(p, line);
	} else if (strncmp(line, "SENT-DONE", 9) == 0) {
		p->sent_done = true;
	} else if (strncmp(line, "DONE ", 5) == 0) {
		snprintf(p->done, sizeof(p->done), "%.1000s", line);
	} else if (strncmp(line, "READY", 5) != 0) {
		printf("  %s: %s\n", proc_name(p), line);
	}
}

/* Read what p wrote; on EOF reap it (bounded). */
static void read_proc(struct proc *p)
{
	for (;;) {
		ssize_t n = read(p->out, p->buf + p->blen, sizeof(p->buf) - 1 - p->blen);
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return; /* EAGAIN */
		if (n == 0) {
			close(p->out);
			p->out = -1;
			return;
		}
		p->blen += (size_t)n;
		p->buf[p->blen] = '\0';
		while ((nl = strchr(p->buf, '\n')) != NULL) {
			*nl = '\0';
			handle_line(p, p->buf);
			p->blen -= (size_t)(nl + 1 - p->buf);
			memmove(p->buf, nl + 1, p->blen + 1);
		}
		if (p->blen == sizeof(p->buf) - 1)
			p->blen = 0; /* an overlong line: dropped */
	}
}

static bool reap(struct proc *p, int bound_ms)
{
	int64_t end = tu_now_ms() + bound_ms;
	int st;

	for (;;) {
		pid_t r = waitpid(p->pid, &st, WNOHANG);

		if (r == p->pid) {
			p->exited = true;
			p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			return true;
		}
		if (tu_now_ms() >= end)
			return false;
		tu_sleep_ms(5);
	}
}

static void free_proc(struct proc *p)
{
	for (size_t i = 0; i < p->nlines; i++)
		free(p->lines[i]);
	free(p->lines);
	free(p);
}

/* A process that ended (its stdout closed): reap it and account for it. */
static void ended(struct slot *sl)
{
	struct proc *p = sl->cur;

	if (!reap(p, 10000)) {
		kill(p->pid, SIGKILL);
		reap(p, 10000);
	}
	close(p->in);
	sl->cur = NULL;
	if (p->stopping && !p->killed) {
		finished[nfinished++] = p;
		return;
	}
	if (!p->killed) {
		unexpected++;
		printf("  UNEXPECTED: %s ended with status %d\n", proc_name(p), p->status);
	}
	add_stats(&killed_totals, p->stats);
	if (!p->stopping)
		sl->restart_at = tu_now_ms() + (int64_t)soak_range(&rng, 50, 1000);
	free_proc(p);
}

/* Read every child's output for up to timeout_ms; handle ends. */
static void pump(int timeout_ms)
{
	struct pollfd pfd[MAX_PROCS];
	unsigned idx[MAX_PROCS], n = 0;

	for (unsigned i = 0; i < nslots && n < MAX_PROCS; i++) {
		if (slots[i].cur && slots[i].cur->out >= 0) {
			pfd[n] = (struct pollfd){ .fd = slots[i].cur->out, .events = POLLIN };
			idx[n++] = i;
		}
	}
	if (poll(pfd, n, timeout_ms) <= 0)
		return;
	for (unsigned j = 0; j < n; j++) {
		struct slot *sl = &slots[idx[j]];

		if (!pfd[j].revents)
			continue;
		read_proc(sl->cur);
		if (sl->cur->out < 0)
			ended(sl);
	}
}

static void kill_one(void)
{
	unsigned cand[MAX_PROCS], n = 0;
	bool filters = soak_pct(&rng, 20);
	struct slot *sl;

	for (int pass = 0; pass < 2 && n == 0; pass++, filters = !filters) {
		for (unsigned i = 0; i < nslots && n < MAX_PROCS; i++) {
			struct proc *p = slots[i].cur;

			if (p && p->killable && (p->role == R_FILTER) == filters)
				cand[n++] = i;
		}
	}
	if (n == 0)
		return;
	sl = &slots[cand[soak_range(&rng, 0, n - 1)]];
	sl->cur->killed = true;
	kills[sl->cur->role]++;
	kill(sl->cur->pid, SIGKILL);
	/* Dead: its stdout reaches EOF; read what it said last. */
	while (sl->cur->out >= 0) {
		struct pollfd pfd = { .fd = sl->cur->out, .events = POLLIN };

		poll(&pfd, 1, 1000);
		read_proc(sl->cur);
	}
	ended(sl);
}

/* ------------------------------------------------------------------ */
/* Stop                                                                 */
/* ------------------------------------------------------------------ */

static void backtrace_of(pid_t pid)
{
	char arg[32];
	struct tu_proc g;
	pid_t gp;

	snprintf(arg, sizeof(arg), "%d", (int)pid);
	printf("  gdb -p %d (thread apply all bt):\n", (int)pid);
	fflush(stdout);
	gp = fork();
	if (gp == 0) {
		dup2(STDOUT_FILENO, STDERR_FILENO);
		execlp("gdb", "gdb", "-p", arg, "-batch", "-nx", "-ex", "thread apply all bt",
		       (char *)NULL);
		_exit(127);
	}
	if (gp < 0)
		return;
	g = (struct tu_proc){ .pid = gp, .out = -1 };
	if (tu_wait(&g, GDB_BOUND_MS) == 127)
		printf("  (gdb not found)\n");
}

static void hung(struct proc *p, const char *what)
{
	p->hung = true;
	stop_hangs++;
	printf("  HANG: %s did not %s within %d s\n", proc_name(p), what, STOP_BOUND_MS / 1000);
	backtrace_of(p->pid);
	p->killed = true; /* not a survivor any more */
	kill(p->pid, SIGKILL);
}

static void send_cmd(struct proc *p, const char *cmd)
{
	(void)!write(p->in, cmd, strlen(cmd));
}

/* Wait until every process of `role` satisfies done(p) or has ended. */
static void wait_phase(enum role role, bool (*done)(const struct proc *), const char *what)
{
	int64_t end = tu_now_ms() + STOP_BOUND_MS;

	for (;;) {
		bool all = true;

		for (unsigned i = 0; i < nslots; i++) {
			struct proc *p = slots[i].cur;

			if (p && p->role == role && !done(p))
				all = false;
		}
		if (all)
			return;
		if (tu_now_ms() >= end)
			break;
		pump(100);
	}
	for (unsigned i = 0; i < nslots; i++) {
		struct proc *p = slots[i].cur;

		if (p && p->role == role && !done(p))
			hung(p, what);
	}
	end = tu_now_ms() + 30000;
	while (tu_now_ms() < end) { /* collect the killed */
		bool any = false;

		for (unsigned i = 0; i < nslots; i++)
			any |= slots[i].cur && slots[i].cur->role == role && slots[i].cur->hung;
		if (!any)
			return;
		pump(100);
	}
}

static bool senders_done(const struct proc *p)
{
	return p->sent_done;
}

static bool never(const struct proc *p)
{
	(void)p;
	return false; /* until it has ended (slot emptied) */
}

static void stop_role(enum role role, const char *cmd)
{
	for (unsigned i = 0; i < nslots; i++) {
		struct proc *p = slots[i].cur;

		if (p && p->role == role) {
			if (strcmp(cmd, "stop\n") == 0)
				p->stopping = true;
			send_cmd(p, cmd);
		}
	}
}

static void stop_all(void)
{
	stop_role(R_FILTER, "stop-send\n");
	wait_phase(R_FILTER, senders_done, "finish its senders after stop-send");
	stop_role(R_SERVICE, "stop\n");
	wait_phase(R_SERVICE, never, "exit after stop");
	stop_role(R_FILTER, "stop\n");
	wait_phase(R_FILTER, never, "exit after stop");
}

/* ------------------------------------------------------------------ */
/* Checks                                                               */
/* ------------------------------------------------------------------ */

static void check_senders(const struct proc *p, struct totals *t)
{
	for (size_t i = 0; i < p->nlines; i++) {
		const char *l = p->lines[i];
		long v[6], sum = 0;

		if (strncmp(l, "SENDER ", 7) != 0)
			continue;
		for (int k = 0; k < 6; k++) {
			v[k] = tu_field_num(l, f_keys[k]);
			t->f[k] += v[k];
			sum += k ? v[k] : 0;
		}
		check(v[0] == sum && v[5] == 0,
		      "%s sender %lld: sent %ld != delivered+expired+disconnected+overflow %ld, "
		      "or other %ld != 0",
		      proc_name(p), tu_field_num(l, "id"), v[0], sum - v[5], v[5]);
	}
}

static const struct proc *survivor_by_instance(unsigned instance)
{
	for (size_t i = 0; i < nfinished; i++) {
		if (finished[i]->role == R_SERVICE && finished[i]->instance == instance)
			return finished[i];
	}
	return NULL;
}

static const char *recv_line(const struct proc *s, pid_t filter_pid)
{
	for (size_t i = 0; i < s->nlines; i++) {
		if (strncmp(s->lines[i], "RECV ", 5) == 0 &&
		    tu_field_num(s->lines[i], "filter_pid") == filter_pid)
			return s->lines[i];
	}
	return "";
}

/* Messages the filter sent to a surviving service against what it took.
 * Without reply: delivered <= taken <= delivered + disconnected (expired
 * messages are never taken; a message taken as the connection ended may be
 * reported disconnected).  With reply: delivered + overflow <= taken <= sent. */
static unsigned check_pairs(const struct proc *f)
{
	unsigned n = 0;

	if (!pid_unique(f->pid))
		return 0; /* a reused pid: services cannot tell the instances apart */
	for (size_t i = 0; i < f->nlines; i++) {
		const char *l = f->lines[i];
		const struct proc *s;
		const char *r;
		long d, x, got, rd, ro, rs, rgot;

		if (strncmp(l, "PAIR ", 5) != 0)
			continue;
		s = survivor_by_instance((unsigned)tu_field_num(l, "svc"));
		if (!s)
			continue;
		r = recv_line(s, f->pid);
		d = tu_field_num(l, "nr_delivered");
		x = tu_field_num(l, "nr_disconnected");
		got = tu_field_num(r, "noreply");
		rd = tu_field_num(l, "r_delivered");
		ro = tu_field_num(l, "r_overflow");
		rs = tu_field_num(l, "r_sent");
		rgot = tu_field_num(r, "reply");
		check(d <= got && got <= d + x,
		      "%s -> %s, no reply: delivered %ld, taken %ld, disconnected %ld",
		      proc_name(f), proc_name(s), d, got, x);
		check(rd + ro <= rgot && rgot <= rs,
		      "%s -> %s, reply: delivered %ld + overflow %ld, taken %ld, sent %ld",
		      proc_name(f), proc_name(s), rd, ro, rgot, rs);
		n++;
	}
	return n;
}

static void check_resources(const struct proc *p)
{
	long f0 = tu_field_num(p->done, "fds_base"), f1 = tu_field_num(p->done, "fds_end");
	long h0 = tu_field_num(p->done, "heap_base"), h1 = tu_field_num(p->done, "heap_end");

	if (h0 >= 0)
		printf("  %-44s fds %3ld -> %-3ld  heap %9ld -> %-9ld (%+ld)\n", proc_name(p), f0,
		       f1, h0, h1, h1 - h0);
	else
		printf("  %-44s fds %3ld -> %-3ld  heap: LeakSanitizer at exit\n", proc_name(p), f0,
		       f1);
	check(p->done[0] != '\0', "%s: no DONE line", proc_name(p));
	/* A filter's fds_base: the fds open at its start that are still open
	 * (a service may have connected before the count; soak_filter.c). */
	check(f1 == f0, "%s: %ld fds at the end, %ld of the start's still open", proc_name(p), f1,
	      f0);
	if (h0 >= 0)
		check(h1 <= h0 + opt.heap_tol, "%s: heap %ld bytes at the end, %ld at the start",
		      proc_name(p), h1, h0);
}

static void print_totals(const char *what, const struct totals *t)
{
	printf("  %-22s %10ld %10ld %10ld %12ld %9ld %6ld\n", what, t->f[0], t->f[1], t->f[2],
	       t->f[3], t->f[4], t->f[5]);
}

static void summary(int64_t ms)
{
	struct totals surv = { 0 }, all;
	unsigned npairs = 0;

	printf("\nsoak: checks\n");
	for (size_t i = 0; i < nfinished; i++) {
		const struct proc *p = finished[i];

		check(p->status == 0, "%s exited with status %d", proc_name(p), p->status);
		check_resources(p);
		if (p->role == R_FILTER) {
			check_senders(p, &surv);
			npairs += check_pairs(p);
		} else {
			add_stats(&surv, p->stats); /* service counters only */
		}
	}
	check(unexpected == 0, "%ld processes ended without being killed or stopped", unexpected);
	check(child_fails == 0, "%ld failures reported by the processes", child_fails);
	check(hangs == 0, "%ld hangs reported by the processes", hangs);
	check(stop_hangs == 0, "%ld processes did not stop within %d s", stop_hangs,
	      STOP_BOUND_MS / 1000);

	all = surv;
	for (int i = 0; i < 6; i++)
		all.f[i] += killed_totals.f[i];
	for (int i = 0; i < 10; i++)
		all.s[i] += killed_totals.s[i];
	printf("\nsoak: seed=%llu duration=%.1f s filters=%u services=%u (x%u) senders=%u\n",
	       (unsigned long long)opt.seed, (double)ms / 1000, opt.filters, opt.services,
	       opt.filters, opt.senders);
	printf("  SIGKILLs: %ld filters, %ld services; restarts %ld; processes started %u\n",
	       kills[R_FILTER], kills[R_SERVICE], restarts, next_instance - 1);
	printf("  %-22s %10s %10s %10s %12s %9s %6s\n", "fltport_send", "sent", "delivered",
	       "expired", "disconnected", "overflow", "other");
	print_totals("surviving filters", &surv);
	print_totals("all (killed: last 1s)", &all);
	printf("  requests: sent %ld ok %ld timedout %ld disconnected %ld other %ld\n", all.s[5],
	       all.s[6], all.s[7], all.s[8], all.s[9]);
	printf("  gets: sync %ld async %ld emsgsize %ld; replies %ld (+%ld to senders gone)\n",
	       all.s[0], all.s[1], all.s[2], all.s[3], all.s[4]);
	printf("  pairs cross-checked (surviving filter x service): %u\n", npairs);
}

/* ------------------------------------------------------------------ */

static void parse(int argc, char **argv)
{
	opt.seed = (uint64_t)soak_arg_num(argc, argv, "--seed",
					  (long long)(tu_now_ns() ^ ((int64_t)getpid() << 32)));
	opt.seed &= 0x7fffffffffffffffULL;
	opt.seconds = (int)soak_arg_num(argc, argv, "--seconds", 300);
	opt.filters = (unsigned)soak_arg_num(argc, argv, "--filters", 2);
	opt.services = (unsigned)soak_arg_num(argc, argv, "--services", 3);
	opt.senders = (unsigned)soak_arg_num(argc, argv, "--senders", 4);
	opt.kill_ms = (int)soak_arg_num(argc, argv, "--kill-ms", 1000);
	opt.heap_tol = (long)soak_arg_num(argc, argv, "--heap-tolerance", DEFAULT_HEAP_TOL);
	if (opt.filters < 1 || opt.services < 1 || opt.filters * (opt.services + 1) > MAX_PROCS ||
	    opt.seconds < 1 || opt.kill_ms < 1) {
		fprintf(stderr, "fltport-soak: bad arguments (filters x (services + 1) <= %d)\n",
			MAX_PROCS);
		exit(2);
	}
}

static void run(int64_t t0)
{
	int64_t end = t0 + (int64_t)opt.seconds * 1000;
	int64_t next_kill = t0 + (int64_t)soak_range(&rng, 1, 2 * (uint64_t)opt.kill_ms);

	while (!interrupted && tu_now_ms() < end) {
		pump(20);
		if (tu_now_ms() >= next_kill) {
			kill_one();
			next_kill = tu_now_ms() +
				    (int64_t)soak_range(&rng, 1, 2 * (uint64_t)opt.kill_ms);
		}
		for (unsigned i = 0; i < nslots; i++) {
			if (!slots[i].cur && slots[i].restart_at &&
			    tu_now_ms() >= slots[i].restart_at) {
				spawn(&slots[i], i);
				restarts++;
			}
		}
	}
}

int soak_run_main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	const char *dir;
	int64_t t0, t1;

	parse(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	soak_rng_seed(&rng, opt.seed, 0, 0, 0);
	dir = tu_temp_dir("fltport-soak"); /* removed at exit, also if we are killed */
	setenv("FLTPORT_DIR", dir, 1);
	/* No per-thread malloc caches: mallinfo2 then counts exactly the
	 * bytes in use, and a leak cannot hide in a cache. */
	setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0", 1);
	printf("soak: seed=%llu seconds=%d filters=%u services=%u senders=%u kill-ms=%d "
	       "heap-tolerance=%ld dir=%s\n",
	       (unsigned long long)opt.seed, opt.seconds, opt.filters, opt.services, opt.senders,
	       opt.kill_ms, opt.heap_tol, dir);
	printf("soak: replay with: %s --seed %llu --seconds %d\n", argv[0],
	       (unsigned long long)opt.seed, opt.seconds);

	nslots = opt.filters * (1 + opt.services);
	slots = xcalloc(nslots, sizeof(*slots));
	finished = xcalloc(4 * MAX_PROCS, sizeof(*finished));
	for (unsigned i = 0; i < nslots; i++)
		spawn(&slots[i], i);
	t0 = tu_now_ms();
	run(t0);
	if (interrupted)
		printf("soak: interrupted after %.1f s: stopping\n",
		       (double)(tu_now_ms() - t0) / 1000);
	t1 = tu_now_ms();
	stop_all();
	printf("soak: stopped every process in %.1f s\n", (double)(tu_now_ms() - t1) / 1000);
	summary(t1 - t0);
	for (size_t i = 0; i < nfinished; i++)
		free_proc(finished[i]);
	free(finished);
	free(slots);
	free(all_pids);
	if (interrupted) {
		printf("soak: interrupted: %u passed, %u failed\n", passed, failed);
		return 130;
	}
	if (failed) {
		printf("soak: FAILED: %u passed, %u failed (seed %llu)\n", passed, failed,
		       (unsigned long long)opt.seed);
		return 1;
	}
	printf("soak: %u passed, 0 failed\n", passed);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "filter") == 0)
		return soak_filter_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], "service") == 0)
		return soak_service_main(argc, argv);
	return soak_run_main(argc, argv);
}
