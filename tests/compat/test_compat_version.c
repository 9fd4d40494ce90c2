/*
 * SPEC §8.27: a client and a server of different wire versions fail the
 * connect with STATUS_REVISION_MISMATCH → 0x8007051A, and the client gets no
 * handle.  The server here is a fake one (a raw SOCK_SEQPACKET listener in
 * a thread of this process) that answers as a future fltport would; the
 * client is the real FilterConnectCommunicationPort.  (The other direction,
 * a client of another version reaching a real server, is in
 * tests/integration/test_connect.c.)
 */
#ifdef FP_PLAIN
#include "plain_criterion.h" /* the TSan pass builds this suite without Criterion */
#else
#include <criterion/criterion.h>
#endif

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/frame.h"
#include "fltport/port.h"
#include "testutil.h"

#include <windows.h>
#include <fltuser.h>

enum answer { ANSWER_NEWER_VERSION, ANSWER_GARBAGE, ANSWER_NOTHING };

struct fake {
	int lfd;
	enum answer answer;
	uint16_t client_version; /* what the client sent */
	int got_connect;
};

static void *fake_main(void *arg)
{
	struct fake *fk = arg;
	struct pollfd p = { .fd = fk->lfd, .events = POLLIN };
	uint8_t buf[FP_FRAME_MAX], out[FP_HDR_SIZE];
	struct fp_hdr h = { .magic = FP_MAGIC,
			    .version = FLTPORT_WIRE_VERSION + 1,
			    .type = FP_T_CONNECT_RESULT,
			    .err = -EPROTO };
	ssize_t n;
	int fd;

	if (poll(&p, 1, 20000) != 1 || (fd = accept(fk->lfd, NULL, NULL)) < 0)
		return NULL;
	p.fd = fd;
	if (poll(&p, 1, 20000) == 1 && (n = recv(fd, buf, sizeof(buf), 0)) >= 8) {
		fk->got_connect = buf[6] == FP_T_CONNECT;
		fk->client_version = (uint16_t)(buf[4] | buf[5] << 8);
	}
	if (fk->answer == ANSWER_NEWER_VERSION) {
		fp_hdr_encode(&h, out);
		send(fd, out, sizeof(out), MSG_NOSIGNAL);
	} else if (fk->answer == ANSWER_GARBAGE) {
		memset(out, 0x5A, sizeof(out));
		send(fd, out, sizeof(out), MSG_NOSIGNAL);
	}
	close(fd);
	return NULL;
}

static HRESULT connect_to_fake(enum answer answer, HANDLE *port, struct fake *fk)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *name;
	WCHAR wname[64];
	pthread_t t;
	HRESULT hr;
	size_t i;

	tu_private_dir();
	name = tu_port_name("future");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", fltport_dir(), name);
	memset(fk, 0, sizeof(*fk));
	fk->answer = answer;
	fk->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert(fk->lfd >= 0);
	cr_assert_eq(bind(fk->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(fk->lfd, 4), 0);
	cr_assert_eq(pthread_create(&t, NULL, fake_main, fk), 0);
	wname[0] = L'\\';
	for (i = 0; name[i]; i++)
		wname[i + 1] = (WCHAR)name[i];
	wname[i + 1] = 0;
	hr = FilterConnectCommunicationPort(wname, 0, NULL, 0, NULL, port);
	pthread_join(t, NULL);
	close(fk->lfd);
	return hr;
}

Test(version, newer_server_is_revision_mismatch, .timeout = 60)
{
	HANDLE port = NULL;
	struct fake fk;
	HRESULT hr = connect_to_fake(ANSWER_NEWER_VERSION, &port, &fk);

	cr_assert_eq(hr, (HRESULT)0x8007051A, "hr 0x%08X", (unsigned)hr);
	cr_assert_eq(port, INVALID_HANDLE_VALUE);
	cr_assert(fk.got_connect, "the client sent CONNECT");
	cr_assert_eq(fk.client_version, FLTPORT_WIRE_VERSION);
}

Test(version, non_fltport_server_is_revision_mismatch, .timeout = 60)
{
	HANDLE port = NULL;
	struct fake fk;
	HRESULT hr = connect_to_fake(ANSWER_GARBAGE, &port, &fk);

	cr_assert_eq(hr, (HRESULT)0x8007051A, "hr 0x%08X", (unsigned)hr);
	cr_assert_eq(port, INVALID_HANDLE_VALUE);
}

Test(version, server_gone_during_handshake, .timeout = 60)
{
	HANDLE port = NULL;
	struct fake fk;
	HRESULT hr = connect_to_fake(ANSWER_NOTHING, &port, &fk);

	cr_assert_eq(hr, E_HANDLE, "hr 0x%08X", (unsigned)hr);
	cr_assert_eq(port, INVALID_HANDLE_VALUE);
}
