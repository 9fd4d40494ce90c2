/*
 * Debug output never holds up an open (issue 7, defect 6).  With
 * FLTPORT_DEBUG=1 and stderr on a full pipe nobody reads, the engine's
 * workers, deadline thread and reader used to block in fprintf on their
 * first line, and every open on the marked file system waited (20 s under a
 * 200 ms deadline, until the test gave up).  Now a line goes to a bounded
 * buffer that a thread of its own writes out, and a line that does not fit
 * is dropped and counted: a helper's thousands of opens each complete at
 * once, and fltport_debug_dropped() says lines were lost.
 */
#ifdef FP_PLAIN
#include "plain_criterion.h" /* the TSan pass builds this suite without Criterion */
#else
#include <criterion/criterion.h>
#endif

#include <stdlib.h>

#include <fltport/filter.h>
#include <fltport/port.h>

#include "fsbox.h"
#include "jam.h"
#include "testutil.h"

#define MS ((int64_t)1000000)

static int allow(void *cookie, const struct fltport_filter_event *ev)
{
	return FLTPORT_ALLOW;
}

static void init(void)
{
	/* Before the filter exists: it reads FLTPORT_DEBUG once. */
	cr_assert_eq(setenv("FLTPORT_DEBUG", "1", 1), 0);
	fsbox_init();
}

TestSuite(filter_debug, .init = init, .fini = fsbox_fini);

Test(filter_debug, stuck_stderr_delays_no_open, .timeout = 180)
{
	struct fltport_filter_config cfg = { .pre_open = allow, .deadline_ns = 200 * MS };
	long n = tu_scaled(2000, 500); /* one line each: far more than a pipe holds */
	char count[32], line[256] = "";
	const char *args[] = { "loop", NULL, count, NULL };
	struct tu_jam jam;
	struct tu_proc p;
	int64_t t0, ms;
	bool done;

	cr_assert_eq(mkdir(fsbox_path("w"), 0755), 0);
	fsbox_write(fsbox_path("w/f"), "data", 0644);
	cr_assert_eq(fltport_filter_attach(fsbox_filter_create(&cfg), fsbox_path("w")), 0);
	args[1] = fsbox_path("w/f");
	snprintf(count, sizeof(count), "%ld", n);

	/* Nothing may print while stderr is stuck: record, unjam, then assert. */
	tu_jam_stderr(&jam);
	t0 = tu_now_ms();
	p = tu_spawn("fp_filter_opener", args);
	done = tu_expect(&p, "LOOP", line, sizeof(line), 60000);
	ms = tu_now_ms() - t0;
	tu_unjam_stderr(&jam);
	tu_wait(&p, FSBOX_LINE_MS);

	cr_assert(done, "%ld opens not done in %lld ms with stderr stuck", n, (long long)ms);
	cr_expect_eq(tu_field_num(line, "ok"), n, "%s", line);
	cr_expect_lt(strtod(tu_field(line, "maxms"), NULL), 5000.0, "an open waited: %s", line);
	cr_expect_gt(fltport_debug_dropped(), 0, "no debug line dropped with stderr stuck");
}
