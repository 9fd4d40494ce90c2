/*
 * fltport-spy — read fltport-minispy's log: connects to "MiniSpyPort",
 * polls GetMiniSpyLog (minispy_proto.h) and prints each record as a line
 * of a live table or as one JSON object per line.  See man fltport-spy(1).
 *
 * Records are taken out of the filter's ring as they are read: one reader
 * sees each record once.  A gap in the sequence numbers means records were
 * lost: the ring was full (the next record's dropped says how many), or an
 * earlier reader's reply never arrived (it gave up or disconnected), which
 * only the gap shows.
 */
#include "mspy.h"
#include "sc_common.h"

#include <fltport/port.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REPLY_CAP (64u * 1024u)
#define CONNECT_NS (5 * (int64_t)1000000000)
#define REQUEST_NS (10 * (int64_t)1000000000)
#define FILETIME_UNIX_EPOCH 116444736000000000LL
#define PATH_BYTES (4 * MSPY_NAMES_MAX + 1) /* a path re-encoded from the wire */

static struct {
	const char *port;
	bool json, self, header;
	const char *output;
	long pid;
	unsigned ops;
	const char *prefix;
	unsigned long count;
	unsigned interval_ms;
} o;

static volatile sig_atomic_t stop;
static FILE *out;
static unsigned long printed;

/* One record as read from the wire. */
struct view {
	uint32_t seq, record_type, status;
	int64_t time;
	unsigned op;
	long pid;
	unsigned long tid;
	long uid; /* -1: unknown */
	uint32_t flags, dropped;
	uint8_t major;
	const uint32_t *name, *new_name; /* wire units; new_name may be NULL */
	size_t name_units, new_units;
	char process[16];
	char path[PATH_BYTES], new_path[PATH_BYTES]; /* the exact bytes */
};

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* The operation of a record without the fltport block (another minispy). */
static unsigned op_of_irp(const struct fltport_mspy_record_data *d)
{
	switch (d->major) {
	case FLTPORT_MSPY_IRP_MJ_CREATE:
		return d->information == FLTPORT_MSPY_FILE_CREATED ? FLTPORT_MSPY_OP_CREATE
								   : FLTPORT_MSPY_OP_OPEN;
	case FLTPORT_MSPY_IRP_MJ_ACQUIRE_FOR_SECTION_SYNCHRONIZATION:
		return FLTPORT_MSPY_OP_EXEC;
	case FLTPORT_MSPY_IRP_MJ_READ:
		return FLTPORT_MSPY_OP_READ;
	case FLTPORT_MSPY_IRP_MJ_WRITE:
		return FLTPORT_MSPY_OP_WRITE;
	case FLTPORT_MSPY_IRP_MJ_CLEANUP:
		return FLTPORT_MSPY_OP_CLOSE_WRITE;
	case FLTPORT_MSPY_IRP_MJ_SET_INFORMATION:
		return d->arg[1] == FLTPORT_MSPY_FILE_RENAME_INFORMATION ? FLTPORT_MSPY_OP_RENAME
									 : FLTPORT_MSPY_OP_DELETE;
	default:
		return 0;
	}
}

static const char *irp_name(uint8_t major)
{
	switch (major) {
	case FLTPORT_MSPY_IRP_MJ_CREATE:
		return "IRP_MJ_CREATE";
	case FLTPORT_MSPY_IRP_MJ_READ:
		return "IRP_MJ_READ";
	case FLTPORT_MSPY_IRP_MJ_WRITE:
		return "IRP_MJ_WRITE";
	case FLTPORT_MSPY_IRP_MJ_SET_INFORMATION:
		return "IRP_MJ_SET_INFORMATION";
	case FLTPORT_MSPY_IRP_MJ_CLEANUP:
		return "IRP_MJ_CLEANUP";
	case FLTPORT_MSPY_IRP_MJ_ACQUIRE_FOR_SECTION_SYNCHRONIZATION:
		return "IRP_MJ_ACQUIRE_FOR_SECTION_SYNCHRONIZATION";
	default:
		return "?";
	}
}

/* Parse the record at p (avail bytes); its length, or 0 if malformed. */
static size_t parse(const char *p, size_t avail, struct view *v)
{
	struct fltport_mspy_log_record h;
	const struct fltport_mspy_ext *x;
	size_t units, max;

	if (avail < sizeof(h) + 4)
		return 0;
	memcpy(&h, p, sizeof(h));
	if (h.length < sizeof(h) + 4 || h.length > avail || h.length % 4)
		return 0;
	v->name = (const uint32_t *)(p + sizeof(h));
	max = (h.length - sizeof(h)) / 4;
	for (units = 0; units < max && v->name[units]; units++)
		;
	if (units == max)
		return 0; /* no NUL */
	v->seq = h.sequence_number;
	v->record_type = h.record_type;
	v->status = (uint32_t)h.data.status;
	v->time = h.data.originating_time;
	v->pid = (long)h.data.process_id;
	v->tid = (unsigned long)h.data.thread_id;
	v->major = h.data.major;
	v->op = op_of_irp(&h.data);
	v->uid = -1;
	v->flags = v->dropped = 0;
	v->process[0] = '\0';
	v->new_name = NULL;
	v->new_units = 0;
	x = fltport_mspy_ext_of(p, h.length);
	if (x) {
		v->op = x->op <= FLTPORT_MSPY_OP_RENAME ? x->op : 0;
		v->uid = x->uid == FLTPORT_MSPY_UID_UNKNOWN ? -1 : (long)x->uid;
		v->flags = x->flags;
		v->dropped = x->dropped;
		memcpy(v->process, x->process, sizeof(v->process));
		v->process[sizeof(v->process) - 1] = '\0';
		if (x->new_name_len) {
			v->new_name = fltport_mspy_ext_new_name(x);
			v->new_units = x->new_name_len; /* fltport_mspy_ext_of checked it fits */
		}
	}
	v->name_units = units;
	mspy_utf8_encode(v->name, units, v->path, sizeof(v->path));
	v->new_path[0] = '\0';
	if (v->new_name)
		mspy_utf8_encode(v->new_name, v->new_units, v->new_path, sizeof(v->new_path));
	return h.length;
}

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool wanted(const struct view *v)
{
	if (!o.self && v->pid == (long)getpid())
		return false;
	if (o.pid >= 0 && v->pid != o.pid)
		return false;
	if (!(o.ops & (1u << v->op)))
		return false;
	if (o.prefix && !has_prefix(v->path, o.prefix) &&
	    !(v->new_name && has_prefix(v->new_path, o.prefix)))
		return false;
	return true;
}

/* ---- JSON --------------------------------------------------------------- */

/* A JSON string from wire units: escaped bytes (U+DC80..U+DCFF) stay
 * lone-surrogate escapes, as Python's surrogateescape reads them back. */
static void json_units(const uint32_t *u, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		uint32_t c = u[i];
		char b[8];

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", (char)c);
		else if (c < 0x20 || (c >= 0xD800 && c <= 0xDFFF))
			fprintf(out, "\\u%04x",
				c >= 0xDC80 && c <= 0xDCFF ? c
				: c < 0x20                 ? c
							   : 0xFFFD);
		else if (c > 0x10FFFF)
			fputs("\\ufffd", out);
		else if (mspy_utf8_encode(&c, 1, b, sizeof(b)))
			fputs(b, out);
	}
	fputc('"', out);
}

static void json_bytes(const char *s)
{
	uint32_t u[64];
	size_t n = strlen(s);

	if (n > 60)
		n = 60;
	json_units(u, mspy_utf8_decode(s, n, u));
}

static void print_json(const struct view *v)
{
	int64_t t = v->time - FILETIME_UNIX_EPOCH;
	time_t sec = (time_t)(t / 10000000);
	struct tm tm;
	char when[32];

	gmtime_r(&sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(out, "{\"seq\":%u,\"time\":\"%s.%06lldZ\",\"op\":\"%s\",\"irp\":\"%s\",", v->seq,
		when, (long long)(t % 10000000 / 10), mspy_op_name(v->op), irp_name(v->major));
	fprintf(out, "\"pid\":%ld,\"tid\":%lu,\"uid\":%ld,\"process\":", v->pid, v->tid, v->uid);
	json_bytes(v->process);
	fputs(",\"path\":", out);
	json_units(v->name, v->name_units);
	if (v->new_name) {
		fputs(",\"new_path\":", out);
		json_units(v->new_name, v->new_units);
	}
	fprintf(out,
		",\"status\":%u,\"result\":\"0x%08X\",\"dropped_before\":%u,\"dir\":%s,"
		"\"truncated\":%s}\n",
		v->status, v->status, v->dropped,
		v->flags & FLTPORT_MSPY_EXT_DIRECTORY ? "true" : "false",
		v->flags & FLTPORT_MSPY_EXT_TRUNCATED ? "true" : "false");
}

/* ---- table -------------------------------------------------------------- */

/* Print wire units for a terminal: printable text as UTF-8; controls
 * (C0, DEL, C1), spaces, backslashes and escaped bytes as \xNN, so a
 * name can neither move the cursor nor be mistaken for two columns. */
static void print_units(const uint32_t *u, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t c = u[i];
		char b[8];

		if (c >= 0xDC80 && c <= 0xDCFF)
			fprintf(out, "\\x%02x", (unsigned)(c - 0xDC00));
		else if (c <= 0x20 || c == '\\' || (c >= 0x7F && c < 0xA0))
			fprintf(out, "\\x%02x", (unsigned)c);
		else if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF)
			fputs("\\x3f", out);
		else if (mspy_utf8_encode(&c, 1, b, sizeof(b)))
			fputs(b, out);
	}
}

static void print_row(const struct view *v)
{
	int64_t t = v->time - FILETIME_UNIX_EPOCH;
	time_t sec = (time_t)(t / 10000000);
	char when[16], proc[64], result[16];
	struct tm tm;

	if (o.header) {
		fprintf(out, "%-12s  %-11s  %7s  %-15s  %-10s  %s\n", "TIME", "OP", "PID",
			"PROCESS", "RESULT", "PATH");
		o.header = false;
	}
	if (v->dropped)
		fprintf(out, "-- %u records dropped (the filter's ring was full) --\n", v->dropped);
	localtime_r(&sec, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	sc_escape(v->process, proc, sizeof(proc));
	if (v->status == FLTPORT_MSPY_STATUS_SUCCESS)
		snprintf(result, sizeof(result), "SUCCESS");
	else
		snprintf(result, sizeof(result), "0x%08X", v->status);
	fprintf(out, "%s.%03d  %-11s  %7ld  %-15s  %-10s  ", when, (int)(t % 10000000 / 10000),
		mspy_op_name(v->op), v->pid, proc, result);
	print_units(v->name, v->name_units);
	if (v->new_name) {
		fputs(" -> ", out);
		print_units(v->new_name, v->new_units);
	}
	fputc('\n', out);
}

/* ---- the loop ----------------------------------------------------------- */

/* Print the wanted records of one reply.  False once --count is reached. */
static bool print_reply(const char *buf, size_t len)
{
	static struct view v;
	size_t off = 0;

	while (off < len) {
		size_t n = parse(buf + off, len - off, &v);

		if (!n) {
			fprintf(stderr, "fltport-spy: malformed record at offset %zu\n", off);
			return true;
		}
		off += n;
		if (!wanted(&v))
			continue;
		if (o.json)
			print_json(&v);
		else
			print_row(&v);
		if (o.count && ++printed >= o.count)
			return false;
	}
	return true;
}

static void pause_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL); /* a signal ends it early: the loop checks stop */
}

static int check_version(fltport_conn *c)
{
	struct fltport_mspy_command cmd = { .command = FLTPORT_MSPY_GET_VERSION };
	struct fltport_mspy_version ver = { 0, 0 };
	size_t got = 0;
	uint32_t status = 0;
	int rc = fltport_request(c, &cmd, sizeof(cmd), NULL, 0, &ver, sizeof(ver), &got, &status,
				 REQUEST_NS);

	if (rc < 0) {
		fprintf(stderr, "fltport-spy: version: %s\n", fltport_strerror(rc));
		return -1;
	}
	if (status || got != sizeof(ver) || ver.major != FLTPORT_MSPY_MAJOR) {
		fprintf(stderr,
			"fltport-spy: the filter speaks minispy %u.%u (status 0x%08X), not %u.x\n",
			ver.major, ver.minor, status, FLTPORT_MSPY_MAJOR);
		return -1;
	}
	return 0;
}

static int run(fltport_conn *c)
{
	struct fltport_mspy_command cmd = { .command = FLTPORT_MSPY_GET_LOG };
	static uint64_t buf[REPLY_CAP / sizeof(uint64_t)];

	while (!stop) {
		size_t got = 0;
		uint32_t status = 0;
		int rc = fltport_request(c, &cmd, sizeof(cmd), NULL, 0, buf, sizeof(buf), &got,
					 &status, REQUEST_NS);

		if (rc == -ETIMEDOUT)
			continue;
		if (rc < 0) {
			fprintf(stderr, "fltport-spy: the filter went away (%s)\n",
				fltport_strerror(rc));
			return 1;
		}
		if (status == FLTPORT_MSPY_STATUS_SUCCESS) {
			bool more = print_reply((const char *)buf, got);

			fflush(out);
			if (!more)
				return 0;
			continue;
		}
		if (status != FLTPORT_MSPY_STATUS_NO_MORE_ENTRIES) {
			fprintf(stderr, "fltport-spy: GetMiniSpyLog: status 0x%08X\n", status);
			return 1;
		}
		pause_ms(o.interval_ms);
	}
	return 0;
}

/* ---- options ------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fltport-spy [options]\n"
		"Print the file operations fltport-minispy records, as they happen.\n"
		"\n"
		"  --json           one JSON object per line instead of a table\n"
		"  -o, --output FILE  write to FILE instead of stdout\n"
		"  --pid N          only operations of process N\n"
		"  --op LIST        only these operations: open,exec,read,write,close-write,\n"
		"                   create,delete,rename\n"
		"  --path PREFIX    only paths starting with PREFIX (a rename: either path)\n"
		"  --count N        exit after N records\n"
		"  --interval MS    poll every MS milliseconds while idle (default 200)\n"
		"  --self           also show this program's own operations\n"
		"  --no-header      no table header\n"
		"  --port NAME      port name (default %s)\n"
		"  --help, --version\n",
		FLTPORT_MSPY_PORT);
}

enum {
	OPT_JSON = 256,
	OPT_PID,
	OPT_OP,
	OPT_PATH,
	OPT_COUNT,
	OPT_INTERVAL,
	OPT_SELF,
	OPT_NO_HEADER,
	OPT_PORT,
	OPT_HELP,
	OPT_VERSION,
};

static const struct option longopts[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "output", required_argument, NULL, 'o' },
	{ "pid", required_argument, NULL, OPT_PID },
	{ "op", required_argument, NULL, OPT_OP },
	{ "path", required_argument, NULL, OPT_PATH },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "interval", required_argument, NULL, OPT_INTERVAL },
	{ "self", no_argument, NULL, OPT_SELF },
	{ "no-header", no_argument, NULL, OPT_NO_HEADER },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static int parse_args(int argc, char **argv, bool *quit)
{
	unsigned long v;
	int c, bad = 0;

	o.port = FLTPORT_MSPY_PORT;
	o.pid = -1;
	o.ops = MSPY_OPS_ALL;
	o.interval_ms = 200;
	o.header = true;
	while ((c = getopt_long(argc, argv, "o:", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			o.json = true;
			break;
		case 'o':
			o.output = optarg;
			break;
		case OPT_PID:
			if (sc_parse_num(optarg, 0x7FFFFFFF, &v))
				o.pid = (long)v;
			else
				bad = -1;
			break;
		case OPT_OP:
			bad |= mspy_ops_parse(optarg, &o.ops);
			break;
		case OPT_PATH:
			o.prefix = optarg;
			break;
		case OPT_COUNT:
			if (sc_parse_num(optarg, 0xFFFFFFFFul, &v) && v > 0)
				o.count = v;
			else
				bad = -1;
			break;
		case OPT_INTERVAL:
			if (sc_parse_num(optarg, 60000, &v) && v > 0)
				o.interval_ms = (unsigned)v;
			else
				bad = -1;
			break;
		case OPT_SELF:
			o.self = true;
			break;
		case OPT_NO_HEADER:
			o.header = false;
			break;
		case OPT_PORT:
			o.port = optarg;
			break;
		case OPT_HELP:
			usage(stdout);
			*quit = true;
			return 0;
		case OPT_VERSION:
			printf("fltport-spy %s (minispy %u.%u)\n", FLTPORT_VERSION_STRING,
			       FLTPORT_MSPY_MAJOR, FLTPORT_MSPY_MINOR);
			*quit = true;
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (bad || optind != argc) {
		fprintf(stderr, "fltport-spy: bad option or argument (see --help)\n");
		return 2;
	}
	return 0;
}

static const char *connect_hint(int rc)
{
	switch (rc) {
	case -ENOENT:
		return " (is fltport-minispy running?)";
	case -EACCES:
		return " (root only, unless fltport-minispy runs with --any-user)";
	case -EUSERS:
		return " (another reader is connected: fltport-minispy --clients N)";
	default:
		return "";
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	bool quit = false;
	fltport_conn *c = NULL;
	int rc = parse_args(argc, argv, &quit);

	if (rc || quit)
		return rc;
	out = stdout;
	if (o.output) {
		out = fopen(o.output, "we");
		if (!out) {
			fprintf(stderr, "fltport-spy: %s: %s\n", o.output, strerror(errno));
			return 1;
		}
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = fltport_connect(o.port, NULL, 0, 0, CONNECT_NS, &c, NULL);
	if (rc < 0) {
		fprintf(stderr, "fltport-spy: connect %s: %s%s\n", o.port,
			rc == -ENOENT ? "no such port" : fltport_strerror(rc), connect_hint(rc));
		rc = 1;
	} else {
		rc = check_version(c) < 0 ? 1 : run(c);
		fltport_close(c);
	}
	if (fflush(out) != 0 || (o.output && fclose(out) != 0)) {
		fprintf(stderr, "fltport-spy: writing: %s\n", strerror(errno));
		rc = 1;
	}
	return rc;
}
