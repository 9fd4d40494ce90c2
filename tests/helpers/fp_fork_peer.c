/*
 * fp_fork_peer NAME — a service that forks a worker without exec
 * (tests/integration/test_regress.c, the fork rule of docs/DESIGN.md).
 *
 * Connects to NAME, then forks.  The child tries a request on the
 * inherited connection (2 s deadline) and prints
 *   CHILD pid=P request=RC ended=E
 * then lives on for 60 s holding whatever it inherited.  The parent prints
 * CONNECTED and waits to be killed (60 s at most).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <fltport/port.h>

#include "testutil.h"

int main(int argc, char **argv)
{
	fltport_conn *c;
	pid_t pid;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: fp_fork_peer NAME\n");
		return 64;
	}
	rc = fltport_connect(argv[1], NULL, 0, 0, 10000000000LL, &c, NULL);
	if (rc < 0) {
		tu_say("CONNECT_ERR rc=%d", rc);
		return 1;
	}
	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		uint32_t st = 0;

		alarm(60);
		rc = fltport_request(c, "c", 1, NULL, 0, NULL, 0, NULL, &st, 2000000000LL);
		tu_say("CHILD pid=%d request=%d ended=%d", (int)getpid(), rc,
		       fltport_conn_ended(c) ? 1 : 0);
		sleep(60);
		_exit(0);
	}
	tu_say("CONNECTED child=%d", (int)pid);
	sleep(60);
	fltport_close(c);
	return 0;
}
