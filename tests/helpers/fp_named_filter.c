/*
 * fp_named_filter — a named filter engine on the management plane, for the
 * management tests (tests/compat/test_compat_mgmt.c).  Root; run it inside
 * the test's mount namespace and attach it only to file systems the test
 * mounted there.
 *
 *   fp_named_filter NAME ALTITUDE [PATH]...
 *
 * Creates the filter "NAME" at ALTITUDE ("-": the default), attaches it to
 * each PATH and prints "READY pid=P" (or "ERROR what=W rc=R" and exits 1).
 * Then one line per event:
 *   SETUP op=attach|detach instance=I volume=V   an attach or detach request;
 *         refused with EPERM when the instance name starts with "refuse"
 *         (attach) or "keep" (detach)
 *   OPEN path=P   an open of a file whose name starts with "probe"
 * SIGTERM destroys the filter and prints "DESTROYED"; exits by itself
 * after 60 s (DEADLINE, exit 3).
 */
#include "testutil.h"

#include <fltport/filter.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int on_open(void *cookie, const struct fltport_filter_event *ev)
{
	const char *base = strrchr(ev->path, '/');

	(void)cookie;
	base = base ? base + 1 : ev->path;
	if (strncmp(base, "probe", 5) == 0)
		tu_say("OPEN path=%s", ev->path);
	return FLTPORT_ALLOW;
}

static int on_setup(void *cookie, const char *volume, const char *instance, bool detach)
{
	(void)cookie;
	tu_say("SETUP op=%s instance=%s volume=%s", detach ? "detach" : "attach", instance, volume);
	if (!detach && strncmp(instance, "refuse", 6) == 0)
		return -EPERM;
	if (detach && strncmp(instance, "keep", 4) == 0)
		return -EPERM;
	return 0;
}

int main(int argc, char **argv)
{
	struct fltport_filter_config cfg = { .pre_open = on_open, .instance_setup = on_setup };
	struct timespec limit = { .tv_sec = 60 };
	fltport_filter *f = NULL;
	sigset_t set;
	int rc, sig;

	if (argc < 3) {
		fprintf(stderr, "usage: fp_named_filter NAME ALTITUDE [PATH]...\n");
		return 2;
	}
	/* Blocked before the engine's threads exist, so that they inherit it
	 * and sigtimedwait below takes the signal. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	cfg.name = argv[1];
	cfg.altitude = strcmp(argv[2], "-") == 0 ? NULL : argv[2];
	rc = fltport_filter_create(&cfg, &f);
	if (rc < 0) {
		tu_say("ERROR what=create rc=%d", rc);
		return 1;
	}
	for (int i = 3; i < argc; i++) {
		rc = fltport_filter_attach(f, argv[i]);
		if (rc < 0) {
			tu_say("ERROR what=attach rc=%d", rc);
			fltport_filter_destroy(f);
			return 1;
		}
	}
	tu_say("READY pid=%d", (int)getpid());
	sig = sigtimedwait(&set, NULL, &limit);
	fltport_filter_destroy(f);
	if (sig < 0) {
		tu_say("DEADLINE");
		return 3;
	}
	tu_say("DESTROYED");
	return 0;
}
