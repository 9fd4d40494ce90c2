#include <errno.h>
#include <string.h>

#include "fltport/port.h"

/* Texts for the errors this library returns, in the library's terms;
 * anything else falls back to strerror().  One errno can mean different
 * things to different calls (port.h lists them per call): the text covers
 * each of them. */
FLTPORT_API const char *fltport_strerror(int err)
{
	switch (-err) {
	case 0:
		return "success";
	case ENOENT:
		return "no such port (or its server is gone), "
		       "or no sender waits for this message id";
	case EACCES:
		return "access denied (the port's access policy, an untrusted server, "
		       "or no write permission on the port directory)";
	case EUSERS:
		return "port connection limit reached";
	case ECONNREFUSED:
		return "connection rejected by the server's connect callback";
	case EPROTO:
		return "wire protocol version mismatch";
	case E2BIG:
		return "connection context too large";
	case ENOTCONN:
		return "port disconnected";
	case ETIMEDOUT:
		return "deadline passed";
	case EMSGSIZE:
		return "message larger than the buffer or the port's limit";
	case EOVERFLOW:
		return "reply larger than the sender's capacity (truncated)";
	case ECANCELED:
		return "cancelled";
	case EOPNOTSUPP:
		return "the port has no message callback";
	case EADDRINUSE:
		return "port name in use by a live server";
	case EINVAL:
		return "invalid argument (or a relative $FLTPORT_DIR)";
	case ENAMETOOLONG:
		return "port name too long for the port directory (or $FLTPORT_DIR too long)";
	case ECONNRESET:
		return "server closed the connection during the handshake";
	default:
		return strerror(-err);
	}
}
