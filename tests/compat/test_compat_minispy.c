/*
 * A minispy user program written only against the Windows API
 * (tests/compat/clients/win_minispy.c) with fltport-minispy (issue 11, must
 * show 3): it lists volumes and MiniSpy's instances, attaches and detaches
 * with /a and /d, and reads LOG_RECORDs with FilterSendMessage(GetMiniSpyLog)
 * — and gets the records fltport-spy --json shows.
 *
 * A record is read once (the filter's ring hands it out), so the two
 * readers read two recorders of the same file operations: two
 * fltport-minispy processes, each with its own port directory, both
 * attached to the tmpfs the operations happen on (the first one through
 * win_minispy's /a).  Root; a private mount namespace with tmpfs file
 * systems this test mounted (tests/filter/fsbox.h).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../filter/fsbox.h"
#include "testutil.h"

#define LINE_MS 15000
#define MAXREC 64

static struct tu_proc spy1 = { -1, -1 }, spy2 = { -1, -1 };
static char dir1[256], dir2[256];
static char fs2[320];

/* Start a program of build/bin (or a helper, FP_HELPER_DIR) with FLTPORT_DIR
 * set to `dir`; it dies with this process. */
static struct tu_proc spawn_in(const char *dir, const char *prog, const char *const *args)
{
	struct tu_proc p = { .pid = -1, .out = -1 };
	const char *argv[16];
	char path[512];
	size_t n = 0;
	int fds[2];

	snprintf(path, sizeof(path), "%s/%s",
		 strncmp(prog, "fltport-", 8) == 0 ? FP_BIN_DIR : FP_HELPER_DIR, prog);
	argv[n++] = path;
	for (; args && args[n - 1] && n < 15; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	fflush(NULL);
	p.pid = fork();
	cr_assert_geq(p.pid, 0);
	if (p.pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (dup2(fds[1], STDOUT_FILENO) < 0 || setenv("FLTPORT_DIR", dir, 1) != 0)
			_exit(126);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	p.out = fds[0];
	return p;
}

static void stop(struct tu_proc *p)
{
	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
		tu_wait(p, LINE_MS);
	}
	p->pid = -1;
	p->out = -1;
}

static void setup(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root: fanotify permission events and mounts");
	/* Both port directories before the namespace (their watchers outside). */
	snprintf(dir1, sizeof(dir1), "%s", tu_temp_dir("fltport-mspy1"));
	snprintf(dir2, sizeof(dir2), "%s", tu_temp_dir("fltport-mspy2"));
	fsbox_init();
	snprintf(fs2, sizeof(fs2), "%s/fs2", fsbox_dir);
	cr_assert_eq(mkdir(fs2, 0755), 0);
	cr_assert_eq(mount("fltport-test2", fs2, "tmpfs", 0, "size=16m,mode=0755"), 0, "mount: %s",
		     strerror(errno));
}

static void teardown(void)
{
	stop(&spy1);
	stop(&spy2);
	if (fs2[0]) {
		umount2(fs2, MNT_DETACH);
		rmdir(fs2);
	}
	fsbox_fini();
}

TestSuite(win_minispy, .init = setup, .fini = teardown, .timeout = 120);

static struct tu_proc start_minispy(const char *dir, const char *path)
{
	const char *args[] = { "--quiet", path, NULL };
	struct tu_proc p = spawn_in(dir, "fltport-minispy", args);
	char line[512];

	cr_assert(tu_expect(&p, "READY", line, sizeof(line), LINE_MS),
		  "fltport-minispy did not start");
	return p;
}

/* Run win_minispy with FLTPORT_DIR=dir1; its output lines in `out`. */
static int win_minispy(char (*out)[1024], size_t *n, size_t max, const char *const *args)
{
	struct tu_proc p = spawn_in(dir1, "win_minispy", args);

	*n = 0;
	while (*n < max && tu_read_line(&p, out[*n], sizeof(out[0]), 30000))
		(*n)++;
	return tu_wait(&p, LINE_MS);
}

/* The line of `lines` that starts with `prefix` and contains `part`. */
static const char *find(char (*lines)[1024], size_t n, const char *prefix, const char *part)
{
	for (size_t i = 0; i < n; i++)
		if (strncmp(lines[i], prefix, strlen(prefix)) == 0 && strstr(lines[i], part))
			return lines[i];
	return NULL;
}

/* The VOLUME line of win_minispy /l for `mp` exactly. */
static const char *volume_line(char (*lines)[1024], size_t n, const char *mp)
{
	for (size_t i = 0; i < n; i++) {
		const char *name = strstr(lines[i], " name=");

		if (strncmp(lines[i], "VOLUME ", 7) == 0 && name && strcmp(name + 6, mp) == 0)
			return lines[i];
	}
	return NULL;
}

/* A JSON string field of one fltport-spy line ("" if absent). */
static const char *json_str(const char *line, const char *key)
{
	char pat[64], *out = tu_scratch();
	const char *p, *e;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	p = strstr(line, pat);
	out[0] = '\0';
	if (!p)
		return out;
	p += strlen(pat);
	e = strchr(p, '"');
	if (e)
		snprintf(out, 2048, "%.*s", (int)(e - p), p);
	return out;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void file_ops(void)
{
	char buf[16];
	int fd;

	/* One write and one read per file: the kernel merges repeated
	 * reads or writes still queued (docs/MINISPY.md, "Limits"). */
	fd = open(fsbox_path("data-1"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "hello", 5), 5);
	close(fd);
	fd = open(fsbox_path("data-1"), O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(read(fd, buf, sizeof(buf)), 5);
	close(fd);
	cr_assert_eq(rename(fsbox_path("data-1"), fsbox_path("zz-end")), 0);
	cr_assert_eq(unlink(fsbox_path("zz-end")), 0); /* the last one: the marker */
}

Test(win_minispy, same_records_as_fltport_spy)
{
	static char out[512][1024];
	static char keys_win[MAXREC][512], keys_spy[MAXREC][512];
	char *pw[MAXREC], *ps[MAXREC];
	char pid[32], prefix[400], line[4096];
	size_t n, nw = 0, ns = 0;
	const char *l;

	/* The Windows reader's recorder on the second tmpfs, the reference
	 * recorder on the first one. */
	spy1 = start_minispy(dir1, fs2);
	spy2 = start_minispy(dir2, fsbox_mnt);

	/* Volumes: MiniSpy on fs2, not yet on fs; then /a attaches it. */
	cr_assert_eq(win_minispy(out, &n, 512, (const char *[]){ "/v", "/l", NULL }), 0);
	cr_expect_not_null(find(out, n, "VERSION", "major=2 minor=0 bytes=4"));
	l = volume_line(out, n, fs2);
	cr_assert_not_null(l, "fs2 not listed");
	cr_expect(strstr(l, "attached=yes instance=MiniSpy Instance") != NULL, "%s", l);
	l = volume_line(out, n, fsbox_mnt);
	cr_assert_not_null(l, "fs not listed");
	cr_expect(strstr(l, "attached=no") != NULL, "%s", l);
	cr_assert_eq(win_minispy(out, &n, 512, (const char *[]){ "/a", fsbox_mnt, "/l", NULL }), 0,
		     "%s", n ? out[0] : "");
	cr_expect_not_null(find(out, n, "ATTACHED", "instance=MiniSpy Instance"));
	l = volume_line(out, n, fsbox_mnt);
	cr_assert_not_null(l);
	cr_expect(strstr(l, "attached=yes") != NULL, "%s", l);

	file_ops();

	/* The Windows reader: every record up to the marker's delete. */
	cr_assert_eq(win_minispy(out, &n, 512, (const char *[]){ "/g", "/zz-end", NULL }), 0, "%s",
		     n ? out[n - 1] : "");
	snprintf(pid, sizeof(pid), "pid=%d ", (int)getpid());
	snprintf(prefix, sizeof(prefix), "%s/", fsbox_mnt);
	for (size_t i = 0; i < n; i++) {
		const char *name = strstr(out[i], " name=");

		cr_expect(strncmp(out[i], "MALFORMED", 9) != 0, "%s", out[i]);
		if (strncmp(out[i], "RECORD ", 7) != 0 || !strstr(out[i], pid) || !name ||
		    strncmp(name + 6, prefix, strlen(prefix)) != 0)
			continue;
		cr_assert_lt(nw, MAXREC);
		snprintf(keys_win[nw], sizeof(keys_win[0]), "%s %s %s", tu_field(out[i], "op"),
			 tu_field(out[i], "irp"), name + 6);
		pw[nw] = keys_win[nw];
		nw++;
	}

	/* The same operations, as fltport-spy shows the reference recorder's. */
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	{
		const char *args[] = { "--json", "--pid", pid, "--path", prefix, NULL };
		struct tu_proc spy = spawn_in(dir2, "fltport-spy", args);
		bool end = false;

		while (!end && tu_read_line(&spy, line, sizeof(line), LINE_MS)) {
			const char *path = json_str(line, "path");

			cr_assert_lt(ns, MAXREC);
			snprintf(keys_spy[ns], sizeof(keys_spy[0]), "%s %s %s",
				 json_str(line, "op"), json_str(line, "irp"), path);
			ps[ns] = keys_spy[ns];
			ns++;
			end = strcmp(json_str(line, "op"), "delete") == 0 &&
			      strstr(path, "/zz-end") != NULL;
		}
		stop(&spy);
		cr_assert(end, "fltport-spy never showed the marker's delete");
	}

	qsort(pw, nw, sizeof(pw[0]), cmp_str);
	qsort(ps, ns, sizeof(ps[0]), cmp_str);
	for (size_t i = 0; i < nw && i < ns; i++)
		cr_expect_str_eq(pw[i], ps[i], "record %zu differs", i);
	cr_assert_eq(nw, ns, "win_minispy read %zu records, fltport-spy showed %zu", nw, ns);
	/* Every kind the operations raise is there. */
	for (const char *const *k =
		     (const char *const[]){ "create IRP_MJ_CREATE", "open IRP_MJ_CREATE",
					    "write IRP_MJ_WRITE", "close-write IRP_MJ_CLEANUP",
					    "read IRP_MJ_READ", "rename IRP_MJ_SET_INFORMATION",
					    "delete IRP_MJ_SET_INFORMATION", NULL };
	     *k; k++) {
		bool seen = false;

		for (size_t i = 0; i < nw; i++)
			seen |= strncmp(pw[i], *k, strlen(*k)) == 0;
		cr_expect(seen, "no \"%s\" record", *k);
	}

	/* /d detaches: MiniSpy is gone from the volume. */
	cr_assert_eq(win_minispy(out, &n, 512, (const char *[]){ "/d", fsbox_mnt, "/l", NULL }), 0,
		     "%s", n ? out[0] : "");
	cr_expect_not_null(find(out, n, "DETACHED", fsbox_mnt));
	l = volume_line(out, n, fsbox_mnt);
	cr_assert_not_null(l);
	cr_expect(strstr(l, "attached=no") != NULL, "%s", l);
	cr_assert_eq(win_minispy(out, &n, 512, (const char *[]){ "/d", fsbox_mnt, NULL }), 1);
	cr_expect_not_null(find(out, n, "ERROR", "hr=0x801F0015"), "%s", n ? out[0] : "");
}
