/*
 * fp_filter_service — the user-mode scanning service for tests/filter/.
 *
 *   fp_filter_service <port> <mode> [errno]
 *
 * Connects to <port> (retrying for up to 10 s), prints "READY pid=<pid>",
 * then takes messages from the filter.  Each message carries the event's
 * fd; the service reads the file's content through it (never by path).
 *
 *   scan     reply status 0 (allow) or EPERM if the content contains
 *            "EVIL" (or the errno given as third argument); reply data is
 *            the first bytes read through the fd
 *   noreply  take every message, never reply (a service that hangs)
 *   hang     print "GOT" on the first message and then sleep forever
 *            (a service that dies mid-decision when the test kills it)
 *
 * Exits 0 when the filter ends the connection.
 */
#include "testutil.h"

#include <fltport/port.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS ((int64_t)1000000)

static fltport_conn *connect_retry(const char *port)
{
	int64_t end = tu_now_ms() + 10000;
	fltport_conn *c = NULL;
	int rc;

	for (;;) {
		rc = fltport_connect(port, NULL, 0, 0, 2000 * MS, &c, NULL);
		if (rc == 0)
			return c;
		if (tu_now_ms() > end) {
			tu_say("CONNECT rc=%d", rc);
			exit(1);
		}
		tu_sleep_ms(20);
	}
}

int main(int argc, char **argv)
{
	static char buf[8192];
	fltport_conn *c;
	const char *mode;
	int evil_errno = EPERM;
	bool said_got = false;

	if (argc < 3) {
		fprintf(stderr, "usage: fp_filter_service <port> <scan|noreply|hang> [errno]\n");
		return 2;
	}
	mode = argv[2];
	if (argc >= 4)
		evil_errno = atoi(argv[3]);
	c = connect_retry(argv[1]);
	tu_say("READY pid=%d", (int)getpid());
	for (;;) {
		struct fltport_msg msg;
		char content[4096];
		ssize_t n = 0;
		uint32_t status;
		int rc = fltport_get(c, buf, sizeof(buf), &msg, FLTPORT_INFINITE);

		if (rc == -ENOTCONN || rc == -ECANCELED)
			break;
		if (rc != 0)
			continue;
		if (msg.nfds > 0)
			n = pread(msg.fds[0], content, sizeof(content) - 1, 0);
		for (unsigned i = 0; i < msg.nfds; i++)
			close(msg.fds[i]);
		if (n < 0)
			n = 0;
		content[n] = '\0';
		if (strcmp(mode, "noreply") == 0)
			continue;
		if (strcmp(mode, "hang") == 0) {
			if (!said_got)
				tu_say("GOT");
			said_got = true;
			for (;;)
				pause();
		}
		status = strstr(content, "EVIL") ? (uint32_t)evil_errno : 0;
		if (msg.wants_reply)
			(void)fltport_reply(c, msg.id, status, content,
					    (size_t)n < msg.reply_cap ? (size_t)n : msg.reply_cap);
	}
	fltport_close(c);
	return 0;
}
