/*
 * fltportctl — the fltmc of Linux: what fltport runs on this machine.
 *
 *   filters, instances, volumes, attach, detach   as fltmc prints them
 *   ports, connections, stats                     beyond fltmc: ports, their
 *                                                 connections and counters
 *   --json                                        one JSON document per command
 *
 * Everything comes from the management plane (fltport/mgmt.h): each running
 * filter and port answers for itself, to root and to the user it runs as.
 * Exit codes: 0 done, 1 error or not found, 2 usage, 3 permission (an object
 * refused this user, or a listing is incomplete because some did).  See man
 * fltportctl(8).
 */
#include <fltport/mgmt.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef FLTPORT_VERSION_STRING
#define FLTPORT_VERSION_STRING "unknown"
#endif

#define PROG "fltportctl"

enum { CTL_OK = 0, CTL_ERR = 1, CTL_USAGE = 2, CTL_PERM = 3 };

static bool json;

/* ---- text output ------------------------------------------------------- */

/* A name as it may be shown on a terminal: control bytes become '?', so
 * that a hostile mount point or port name cannot move the cursor or fake
 * a line.  Rotating buffers: a few may be used in one printf. */
static const char *vis(const char *s)
{
	static char bufs[6][FLTPORT_MGMT_PATH_MAX];
	static unsigned next;
	char *b = bufs[next++ % 6];
	size_t i;

	for (i = 0; s[i] && i < FLTPORT_MGMT_PATH_MAX - 1; i++) {
		unsigned char c = (unsigned char)s[i];

		b[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	b[i] = '\0';
	return b;
}

/* A left-aligned cell `w` wide, always followed by at least one space, so
 * that a long name pushes the row right instead of running into the next
 * column. */
static void cell(const char *s, int w)
{
	int n = printf("%s", vis(s));

	if (n < 0)
		return;
	if (n >= w)
		putchar(' ');
	else
		printf("%*s", w - n, "");
}

static void fmt_local(int64_t ns, char *buf, size_t cap)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;

	if (ns <= 0 || !localtime_r(&t, &tm) || !strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, cap, "-");
}

static void fmt_utc(int64_t ns, char *buf, size_t cap)
{
	time_t t = (time_t)(ns / 1000000000);
	char day[48];
	struct tm tm;

	if (ns <= 0 || !gmtime_r(&t, &tm) || !strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm))
		buf[0] = '\0';
	else
		snprintf(buf, cap, "%s.%03dZ", day, (int)(ns % 1000000000 / 1000000));
}

/* ---- JSON output ------------------------------------------------------- */

/* The byte length of the valid UTF-8 sequence at p, 0 if it is not one
 * (overlong forms, surrogates and code points past U+10FFFF included).
 * Stops at the NUL: a continuation test fails on it first. */
static size_t utf8_len(const unsigned char *p)
{
	unsigned c = p[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0))
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))
			return 0;
		return 4;
	}
	return 0;
}

/* A JSON string.  Names and paths are bytes on Linux: a byte that is not
 * part of valid UTF-8 becomes U+FFFD, so the document always parses. */
static void json_str(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	putchar('"');
	while (*p) {
		size_t n = utf8_len(p);

		if (n == 0) {
			fputs("\\ufffd", stdout);
			p++;
		} else if (*p == '"' || *p == '\\') {
			printf("\\%c", *p++);
		} else if (*p == '\n' || *p == '\t') {
			fputs(*p == '\n' ? "\\n" : "\\t", stdout);
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			printf("\\u%04x", *p++);
		} else {
			fwrite(p, 1, n, stdout);
			p += n;
		}
	}
	putchar('"');
}

/* A small writer that keeps commas and indentation right. */
#define JW_DEPTH 16
static struct {
	int depth;
	bool items[JW_DEPTH]; /* an item was written at this depth */
} jw;

static void jw_item(const char *key)
{
	if (jw.depth > 0) {
		if (jw.items[jw.depth])
			putchar(',');
		jw.items[jw.depth] = true;
		printf("\n%*s", 2 * jw.depth, "");
	}
	if (key) {
		json_str(key);
		fputs(": ", stdout);
	}
}

static void jw_open(const char *key, char c)
{
	jw_item(key);
	putchar(c);
	if (jw.depth < JW_DEPTH - 1)
		jw.depth++;
	jw.items[jw.depth] = false;
}

static void jw_close(char c)
{
	bool had = jw.items[jw.depth];

	if (jw.depth > 0)
		jw.depth--;
	if (had)
		printf("\n%*s", 2 * jw.depth, "");
	putchar(c);
	if (jw.depth == 0)
		putchar('\n');
}

static void jw_str(const char *key, const char *v)
{
	jw_item(key);
	json_str(v);
}

static void jw_strn(const char *key, const char *v)
{
	if (v) {
		jw_str(key, v);
	} else {
		jw_item(key);
		fputs("null", stdout);
	}
}

static void jw_u64(const char *key, uint64_t v)
{
	jw_item(key);
	printf("%" PRIu64, v);
}

static void jw_i64(const char *key, int64_t v)
{
	jw_item(key);
	printf("%" PRId64, v);
}

static void jw_time(const char *key, const char *key_ns, int64_t ns)
{
	char buf[64];

	fmt_utc(ns, buf, sizeof(buf));
	jw_strn(key, buf[0] ? buf : NULL);
	jw_i64(key_ns, ns);
}

/* ---- errors ------------------------------------------------------------ */

static int exit_code(int err)
{
	return err == -EACCES || err == -EPERM ? CTL_PERM : CTL_ERR;
}

static const char *err_text(const char *kind, int err)
{
	static char buf[128];

	switch (-err) {
	case ENOENT:
		snprintf(buf, sizeof(buf), "no %s of that name is running", kind ? kind : "object");
		return buf;
	case EACCES:
		if (!kind) {
			snprintf(buf, sizeof(buf), "permission denied (the port directory %s)",
				 fltport_dir());
			return buf;
		}
		return "permission denied: it answers only root and the user it runs as";
	case ETIMEDOUT:
		return "no answer in time (it may be hung)";
	case EEXIST:
		return "already attached there";
	case ENXIO:
		return "no instance of it is attached there";
	default:
		/* fltport_strerror() speaks of ports; for the rest strerror()
		 * says it better. */
		return kind && strcmp(kind, "port") == 0 ? fltport_strerror(err) : strerror(-err);
	}
}

/* Report a failed call on `kind` `name` (both may be NULL; `volume` for
 * attach and detach): one line on stderr and, with --json, an error
 * document on stdout.  `text` NULL: the usual text for the error.
 * Returns the exit code. */
static int fail(const char *cmd, const char *kind, const char *name, const char *volume, int err,
		const char *text)
{
	const char *ename = strerrorname_np(-err);

	if (!text)
		text = err_text(kind, err);
	if (volume)
		fprintf(stderr, PROG ": %s \"%s\" %s %s: %s\n", cmd, vis(name),
			strcmp(cmd, "detach") == 0 ? "from" : "to", vis(volume), text);
	else if (name)
		fprintf(stderr, PROG ": %s \"%s\": %s\n", kind, vis(name), text);
	else
		fprintf(stderr, PROG ": %s: %s\n", cmd, text);
	if (json) {
		jw_open(NULL, '{');
		jw_open("error", '{');
		jw_str("command", cmd);
		if (kind && name)
			jw_str(strchr(kind, ' ') ? "name" : kind, name);
		if (volume)
			jw_str("volume", volume);
		jw_i64("errno", -err);
		jw_str("code", ename ? ename : "");
		jw_str("message", text);
		jw_close('}');
		jw_close('}');
	}
	return exit_code(err);
}

/* After a listing: say how many objects refused this user. */
static int listing_done(size_t denied, const char *one, const char *many)
{
	if (denied == 0)
		return CTL_OK;
	fprintf(stderr,
		PROG ": %zu %s refused to answer this user (they answer only root and the user "
		     "they run as): the listing is incomplete%s\n",
		denied, denied == 1 ? one : many,
		geteuid() != 0 ? "; run as root to see them all" : "");
	return CTL_PERM;
}

/* ---- names of bits ----------------------------------------------------- */

struct bitname {
	unsigned bit;
	const char *name;
};

static const struct bitname filter_features[] = {
	{ FLTPORT_FILTER_HAVE_PIDFD, "pidfd" },
	{ FLTPORT_FILTER_HAVE_DENY_ERRNO, "deny_errno" },
	{ FLTPORT_FILTER_HAVE_PRE_CONTENT, "pre_content" },
	{ FLTPORT_FILTER_HAVE_NOTIFY, "notify" },
	{ FLTPORT_FILTER_HAVE_RENAME, "rename" },
	{ FLTPORT_FILTER_HAVE_PIDFD_INFO, "pidfd_info" },
	{ FLTPORT_FILTER_HAVE_FD_ERROR, "fd_error" },
	{ 0, NULL },
};

static const struct bitname instance_flags[] = {
	{ FLTPORT_ATTACH_MOUNT, "mount" },
	{ FLTPORT_ATTACH_SUBMOUNTS, "submounts" },
	{ FLTPORT_INSTANCE_FOUND, "found" },
	{ 0, NULL },
};

static void jw_bits(const char *key, unsigned v, const struct bitname *names)
{
	jw_open(key, '[');
	for (const struct bitname *b = names; b->name; b++) {
		if (v & b->bit)
			jw_str(NULL, b->name);
	}
	jw_close(']');
}

/* ---- counters ---------------------------------------------------------- */

/* The counters, by name, as the JSON keys and the text lines show them. */
struct counter {
	const char *name;
	size_t off, size; /* in the stats struct: a uint64_t or a uint32_t */
};

/* clang-format off */
#define COUNTER(type, f) { #f, offsetof(type, f), sizeof(((type *)0)->f) }
/* clang-format on */
#define FC(f) COUNTER(struct fltport_filter_stats, f)
#define PC(f) COUNTER(struct fltport_port_stats, f)

static const struct counter filter_counters[] = {
	FC(seen),        FC(allowed),    FC(denied),        FC(fast),          FC(timed_out),
	FC(overflowed),  FC(late),       FC(cached),        FC(answer_errors), FC(post_events),
	FC(queue_depth), FC(in_flight),  FC(max_in_flight), FC(throttled),     FC(kernel_denied),
	FC(submounts),   { NULL, 0, 0 },
};

static const struct counter port_counters[] = {
	PC(connects),    PC(refused),   PC(disconnects), PC(sent),     PC(sent_bytes),
	PC(replies),     PC(timed_out), PC(cancelled),   PC(received), PC(received_bytes),
	PC(connections), PC(pending),   { NULL, 0, 0 },
};

static uint64_t counter_value(const void *st, const struct counter *c)
{
	const char *p = (const char *)st + c->off;
	uint32_t v32;
	uint64_t v64;

	if (c->size == sizeof(v32)) {
		memcpy(&v32, p, sizeof(v32));
		return v32;
	}
	memcpy(&v64, p, sizeof(v64));
	return v64;
}

static void jw_counters(const void *st, const struct counter *list)
{
	jw_open("stats", '{');
	for (const struct counter *c = list; c->name; c++)
		jw_u64(c->name, counter_value(st, c));
	jw_close('}');
}

static void print_counters(const void *st, const struct counter *list, int indent)
{
	for (const struct counter *c = list; c->name; c++)
		printf("%*s%-16s %" PRIu64 "\n", indent, "", c->name, counter_value(st, c));
}

static void jw_filter_stats(const struct fltport_filter_stats *st)
{
	jw_counters(st, filter_counters);
}

static void jw_port_stats(const struct fltport_port_stats *st)
{
	jw_counters(st, port_counters);
}

/* ---- the management calls -------------------------------------------- */

/* Records are what each running object answered: their strings are
 * terminated here, so that no answer can make a printf read past one. */
#define TERMINATE(a) ((a)[sizeof(a) - 1] = '\0')

static void term_filter(struct fltport_filter_info *f)
{
	TERMINATE(f->name);
	TERMINATE(f->altitude);
}

static void term_port(struct fltport_port_info *p)
{
	TERMINATE(p->name);
}

static int list_filters(struct fltport_filter_info **f, size_t *n, size_t *denied)
{
	int rc = fltport_mgmt_filters(f, n, denied);

	for (size_t i = 0; rc == 0 && i < *n; i++)
		term_filter(&(*f)[i]);
	return rc;
}

static int list_instances(const char *filter, struct fltport_instance_info **in, size_t *n,
			  size_t *denied)
{
	int rc = fltport_mgmt_instances(filter, in, n, denied);

	for (size_t i = 0; rc == 0 && i < *n; i++) {
		TERMINATE((*in)[i].filter);
		TERMINATE((*in)[i].name);
		TERMINATE((*in)[i].altitude);
		TERMINATE((*in)[i].volume);
		TERMINATE((*in)[i].path);
	}
	return rc;
}

static int list_volumes(struct fltport_volume_info **v, size_t *n)
{
	int rc = fltport_mgmt_volumes(v, n);

	for (size_t i = 0; rc == 0 && i < *n; i++) {
		TERMINATE((*v)[i].mount_point);
		TERMINATE((*v)[i].source);
		TERMINATE((*v)[i].fstype);
	}
	return rc;
}

static int list_ports(struct fltport_port_info **p, size_t *n, size_t *denied)
{
	int rc = fltport_mgmt_ports(p, n, denied);

	for (size_t i = 0; rc == 0 && i < *n; i++)
		term_port(&(*p)[i]);
	return rc;
}

static int list_conns(const char *port, struct fltport_conn_info **c, size_t *n)
{
	int rc = fltport_mgmt_connections(port, c, n);

	for (size_t i = 0; rc == 0 && i < *n; i++)
		TERMINATE((*c)[i].exe);
	return rc;
}

static int get_filter(const char *name, struct fltport_filter_info *f)
{
	int rc = fltport_mgmt_filter(name, f);

	if (rc == 0)
		term_filter(f);
	return rc;
}

static int get_port(const char *name, struct fltport_port_info *p)
{
	int rc = fltport_mgmt_port(name, p);

	if (rc == 0)
		term_port(p);
	return rc;
}

/* ---- sorting ----------------------------------------------------------- */

/* Altitudes are decimal strings ("385250.5"); higher first, as fltmc. */
static int cmp_filter(const void *a, const void *b)
{
	const struct fltport_filter_info *x = a, *y = b;
	double ax = strtod(x->altitude, NULL), ay = strtod(y->altitude, NULL);

	if (ax != ay)
		return ax < ay ? 1 : -1;
	return strcmp(x->name, y->name);
}

static int cmp_instance(const void *a, const void *b)
{
	const struct fltport_instance_info *x = a, *y = b;
	int c = strcmp(x->filter, y->filter);

	if (c == 0)
		c = strcmp(x->volume, y->volume);
	return c ? c : strcmp(x->name, y->name);
}

static int cmp_port(const void *a, const void *b)
{
	const struct fltport_port_info *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static int cmp_conn(const void *a, const void *b)
{
	const struct fltport_conn_info *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* ---- commands ---------------------------------------------------------- */

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	int min_args, max_args; /* operands after the options */
	const char *usage;
	const char *help;
};

static const struct command *find_command(const char *name);
static void command_usage(FILE *f, const struct command *c);

/* Parse a command's options; on return argv[optind..] are its operands.
 * `extra` adds the command's own options (NULL-terminated), handled by
 * `on_opt`.  Returns -1 to go on, or an exit code. */
static int parse_opts(const struct command *c, int argc, char **argv, const char *shortopts,
		      const struct option *extra, int (*on_opt)(int opt, const char *arg))
{
	struct option opts[16];
	size_t n = 0;
	int o, nargs;

	opts[n++] = (struct option){ "json", no_argument, NULL, 'J' };
	opts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	for (; extra && extra->name && n < 15; extra++)
		opts[n++] = *extra;
	opts[n] = (struct option){ NULL, 0, NULL, 0 };
	optind = 0; /* a full reinitialisation (glibc): a second getopt pass */
	while ((o = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		if (o == 'J') {
			json = true;
		} else if (o == 'h') {
			command_usage(stdout, c);
			return CTL_OK;
		} else if (o == '?' || !on_opt || on_opt(o, optarg) != 0) {
			command_usage(stderr, c);
			return CTL_USAGE;
		}
	}
	nargs = argc - optind;
	if (nargs < c->min_args || nargs > c->max_args) {
		fprintf(stderr, PROG " %s: %s operands\n", c->name,
			nargs < c->min_args ? "missing" : "too many");
		command_usage(stderr, c);
		return CTL_USAGE;
	}
	return -1;
}

/* filters */

static int cmd_filters(int argc, char **argv)
{
	struct fltport_filter_info *f = NULL;
	size_t n = 0, denied = 0;
	int rc = parse_opts(find_command("filters"), argc, argv, "h", NULL, NULL);

	if (rc >= 0)
		return rc;
	rc = list_filters(&f, &n, &denied);
	if (rc < 0)
		return fail("filters", NULL, NULL, NULL, rc, NULL);
	qsort(f, n, sizeof(*f), cmp_filter);
	if (json) {
		jw_open(NULL, '{');
		jw_open("filters", '[');
		for (size_t i = 0; i < n; i++) {
			jw_open(NULL, '{');
			jw_str("name", f[i].name);
			jw_str("altitude", f[i].altitude);
			jw_i64("pid", f[i].pid);
			jw_u64("uid", f[i].uid);
			jw_u64("instances", f[i].instances);
			jw_u64("frame", 0);
			jw_bits("features", f[i].features, filter_features);
			jw_time("started", "started_ns", f[i].started_ns);
			jw_filter_stats(&f[i].stats);
			jw_close('}');
		}
		jw_close(']');
		jw_u64("denied", denied);
		jw_close('}');
	} else {
		printf("\nFilter Name                     Num Instances    Altitude    Frame\n"
		       "------------------------------  -------------  ------------  -----\n");
		for (size_t i = 0; i < n; i++) {
			cell(f[i].name, 33);
			printf("%8" PRIu32 "       ", f[i].instances);
			cell(f[i].altitude, 11);
			printf("%5d\n", 0);
		}
	}
	fltport_mgmt_free(f);
	return listing_done(denied, "filter", "filters");
}

/* instances */

static const char *inst_filter, *inst_volume;

static int instances_opt(int opt, const char *arg)
{
	if (opt == 'f')
		inst_filter = arg;
	else if (opt == 'v')
		inst_volume = arg;
	else
		return -1;
	return 0;
}

/* The features of a filter, for fltmc's SprtFtrs column; 0 if unknown. */
static unsigned features_of(const struct fltport_filter_info *f, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(f[i].name, name) == 0)
			return f[i].features;
	}
	return 0;
}

/* An instance is on `volume` when its mount point or the path attached is
 * that path (as given, or resolved). */
static bool on_volume(const struct fltport_instance_info *in, const char *volume)
{
	char real[PATH_MAX];

	if (strcmp(in->volume, volume) == 0 || strcmp(in->path, volume) == 0)
		return true;
	if (!realpath(volume, real))
		return false;
	return strcmp(in->volume, real) == 0 || strcmp(in->path, real) == 0;
}

static int cmd_instances(int argc, char **argv)
{
	static const struct option extra[] = { { "filter", required_argument, NULL, 'f' },
					       { "volume", required_argument, NULL, 'v' },
					       { NULL, 0, NULL, 0 } };
	const struct command *c = find_command("instances");
	struct fltport_instance_info *in = NULL;
	struct fltport_filter_info *f = NULL;
	size_t n = 0, nf = 0, denied = 0;
	int rc = parse_opts(c, argc, argv, "hf:v:", extra, instances_opt);

	if (rc >= 0)
		return rc;
	if (optind < argc) {
		if (inst_filter) {
			fprintf(stderr, PROG " instances: the filter is given twice\n");
			return CTL_USAGE;
		}
		inst_filter = argv[optind];
	}
	rc = list_instances(inst_filter, &in, &n, &denied);
	if (rc < 0)
		return fail("instances", inst_filter ? "filter" : NULL, inst_filter, NULL, rc,
			    NULL);
	if (n == 0 && inst_filter) {
		/* An empty listing of one filter: tell "no instances" from "no
		 * such filter" (or one that refuses this user). */
		struct fltport_filter_info fi;

		rc = get_filter(inst_filter, &fi);
		if (rc < 0) {
			fltport_mgmt_free(in);
			return fail("instances", "filter", inst_filter, NULL, rc, NULL);
		}
	}
	qsort(in, n, sizeof(*in), cmp_instance);
	if (!json && list_filters(&f, &nf, NULL) < 0)
		nf = 0; /* SprtFtrs left at 0: a listing, not worth failing for */
	if (json) {
		jw_open(NULL, '{');
		jw_open("instances", '[');
	} else {
		printf("\nFilter                Volume Name                              Altitude"
		       "        Instance Name       Frame   SprtFtrs  VlStatus\n"
		       "--------------------  -------------------------------------  ------------"
		       "  ----------------------  -----   --------  --------\n");
	}
	for (size_t i = 0; i < n; i++) {
		if (inst_volume && !on_volume(&in[i], inst_volume))
			continue;
		if (json) {
			jw_open(NULL, '{');
			jw_str("filter", in[i].filter);
			jw_str("name", in[i].name);
			jw_str("altitude", in[i].altitude);
			jw_str("volume", in[i].volume);
			jw_str("path", in[i].path);
			jw_u64("frame", 0);
			jw_bits("flags", in[i].flags, instance_flags);
			jw_i64("pid", in[i].pid);
			jw_close('}');
			continue;
		}
		cell(in[i].filter, 22);
		cell(in[i].volume, 42);
		cell(in[i].altitude, 11);
		cell(in[i].name, 22);
		printf("%5d     %08x\n", 0, features_of(f, nf, in[i].filter));
	}
	if (json) {
		jw_close(']');
		jw_u64("denied", denied);
		jw_close('}');
	}
	fltport_mgmt_free(in);
	if (f)
		fltport_mgmt_free(f);
	return listing_done(denied, "filter", "filters");
}

/* volumes */

static int cmd_volumes(int argc, char **argv)
{
	struct fltport_volume_info *v = NULL;
	struct fltport_instance_info *in = NULL;
	size_t n = 0, ni = 0;
	int rc = parse_opts(find_command("volumes"), argc, argv, "h", NULL, NULL);

	if (rc >= 0)
		return rc;
	rc = list_volumes(&v, &n);
	if (rc < 0)
		return fail("volumes", NULL, NULL, NULL, rc, NULL);
	/* Which instances each volume carries (those this user may see). */
	if (json && list_instances(NULL, &in, &ni, NULL) < 0) {
		in = NULL;
		ni = 0;
	}
	/* In mount-table order: a mount after the one it is mounted on. */
	if (json) {
		jw_open(NULL, '{');
		jw_open("volumes", '[');
		for (size_t i = 0; i < n; i++) {
			char dev[32];

			snprintf(dev, sizeof(dev), "%" PRIu32 ":%" PRIu32, v[i].dev_major,
				 v[i].dev_minor);
			jw_open(NULL, '{');
			jw_str("mount_point", v[i].mount_point);
			jw_str("source", v[i].source);
			jw_str("fstype", v[i].fstype);
			jw_u64("mount_id", v[i].mount_id);
			jw_str("device", dev);
			jw_u64("instances", v[i].instances);
			jw_open("attached", '[');
			for (size_t k = 0; k < ni; k++) {
				if (strcmp(in[k].volume, v[i].mount_point) != 0)
					continue;
				jw_open(NULL, '{');
				jw_str("filter", in[k].filter);
				jw_str("instance", in[k].name);
				jw_str("altitude", in[k].altitude);
				jw_close('}');
			}
			jw_close(']');
			jw_close('}');
		}
		jw_close(']');
		jw_close('}');
	} else {
		printf("\nDos Name                        Volume Name                              "
		       "FileSystem  Status    Instances\n"
		       "------------------------------  ---------------------------------------  "
		       "----------  --------  ---------\n");
		for (size_t i = 0; i < n; i++) {
			cell(v[i].mount_point, 32);
			cell(v[i].source, 41);
			cell(v[i].fstype, 12);
			cell("", 10);
			printf("%9" PRIu32 "\n", v[i].instances);
		}
	}
	fltport_mgmt_free(v);
	fltport_mgmt_free(in);
	return CTL_OK;
}

/* attach, detach */

static const char *opt_instance, *opt_altitude;
static unsigned opt_flags;

static int attach_opt(int opt, const char *arg)
{
	switch (opt) {
	case 'i':
		opt_instance = arg;
		return 0;
	case 'a':
		opt_altitude = arg;
		return 0;
	case 'M':
		opt_flags |= FLTPORT_ATTACH_MOUNT;
		return 0;
	case 'S':
		opt_flags |= FLTPORT_ATTACH_SUBMOUNTS;
		return 0;
	default:
		return -1;
	}
}

/* An altitude as FltMgr takes it: decimal digits, at most one '.'. */
static bool altitude_valid(const char *a)
{
	size_t len = strlen(a), dots = 0, digits = 0;

	if (len == 0 || len > FLTPORT_ALTITUDE_MAX)
		return false;
	for (const char *p = a; *p; p++) {
		if (*p == '.')
			dots++;
		else if (*p >= '0' && *p <= '9')
			digits++;
		else
			return false;
	}
	return dots <= 1 && digits > 0;
}

/* The volume as the filter process must see it: it has its own working
 * directory, so a relative path is resolved here; an absolute one is
 * resolved when it exists (symbolic links), else sent as given (detach of
 * a path gone since).  0, or the exit code after reporting (with --json,
 * an error document too). */
static int volume_arg(const char *cmd, const char *filter, const char *in, char *out, size_t cap)
{
	char real[PATH_MAX];

	if (realpath(in, real)) {
		snprintf(out, cap, "%s", real);
		return 0;
	}
	if (in[0] != '/') {
		int err = -errno;

		return fail(cmd, "filter", filter, in, err, strerror(-err));
	}
	snprintf(out, cap, "%s", in);
	return 0;
}

/* The name of the instance attached on `volume`, for the report. */
static bool instance_on(const char *filter, const char *volume, char *name, size_t cap)
{
	struct fltport_instance_info *in = NULL;
	size_t n = 0;
	bool found = false;

	if (list_instances(filter, &in, &n, NULL) < 0)
		return false;
	for (size_t i = 0; i < n && !found; i++) {
		if (strcmp(in[i].path, volume) == 0 || strcmp(in[i].volume, volume) == 0) {
			snprintf(name, cap, "%s", in[i].name);
			found = true;
		}
	}
	fltport_mgmt_free(in);
	return found;
}

static const char *perm_hint(int err, const char *what)
{
	static char buf[128];

	if (err != -EACCES || geteuid() == 0)
		return NULL;
	snprintf(buf, sizeof(buf),
		 "permission denied: %s needs root or the user the filter runs as", what);
	return buf;
}

static int cmd_attach(int argc, char **argv)
{
	static const struct option extra[] = { { "instance", required_argument, NULL, 'i' },
					       { "altitude", required_argument, NULL, 'a' },
					       { "mount", no_argument, NULL, 'M' },
					       { "submounts", no_argument, NULL, 'S' },
					       { NULL, 0, NULL, 0 } };
	const struct command *c = find_command("attach");
	char volume[FLTPORT_MGMT_PATH_MAX], inst[FLTPORT_NAME_MAX + 1];
	const char *filter;
	bool named;
	int rc = parse_opts(c, argc, argv, "hi:a:", extra, attach_opt);

	if (rc >= 0)
		return rc;
	filter = argv[optind];
	if (opt_altitude && !altitude_valid(opt_altitude)) {
		fprintf(stderr,
			PROG " attach: bad altitude \"%s\" (decimal digits, at most one '.', "
			     "at most %u bytes)\n",
			vis(opt_altitude), FLTPORT_ALTITUDE_MAX);
		return CTL_USAGE;
	}
	if (opt_instance && (!opt_instance[0] || strlen(opt_instance) > FLTPORT_NAME_MAX)) {
		fprintf(stderr, PROG " attach: bad instance name (1 to %u bytes)\n",
			FLTPORT_NAME_MAX);
		return CTL_USAGE;
	}
	rc = volume_arg("attach", filter, argv[optind + 1], volume, sizeof(volume));
	if (rc)
		return rc;
	rc = fltport_mgmt_attach(filter, volume, opt_instance, opt_altitude, opt_flags);
	if (rc < 0)
		return fail("attach", "filter", filter, volume, rc, perm_hint(rc, "attach"));
	named = instance_on(filter, volume, inst, sizeof(inst));
	if (json) {
		jw_open(NULL, '{');
		jw_open("attached", '{');
		jw_str("filter", filter);
		jw_str("volume", volume);
		jw_strn("instance", named ? inst : opt_instance);
		jw_strn("altitude", opt_altitude);
		jw_bits("flags", opt_flags, instance_flags);
		jw_close('}');
		jw_close('}');
	} else {
		printf("Attached filter \"%s\" to %s", vis(filter), vis(volume));
		if (named || opt_instance)
			printf(" (instance \"%s\")", vis(named ? inst : opt_instance));
		printf(".\n");
	}
	return CTL_OK;
}

static int cmd_detach(int argc, char **argv)
{
	static const struct option extra[] = { { "instance", required_argument, NULL, 'i' },
					       { NULL, 0, NULL, 0 } };
	const struct command *c = find_command("detach");
	char volume[FLTPORT_MGMT_PATH_MAX];
	const char *filter;
	int rc = parse_opts(c, argc, argv, "hi:", extra, attach_opt);

	if (rc >= 0)
		return rc;
	filter = argv[optind];
	if (optind + 2 < argc) { /* fltmc's form: detach FILTER VOLUME INSTANCE */
		if (opt_instance) {
			fprintf(stderr, PROG " detach: the instance is given twice\n");
			return CTL_USAGE;
		}
		opt_instance = argv[optind + 2];
	}
	rc = volume_arg("detach", filter, argv[optind + 1], volume, sizeof(volume));
	if (rc)
		return rc;
	rc = fltport_mgmt_detach(filter, volume, opt_instance);
	if (rc < 0)
		return fail("detach", "filter", filter, volume, rc, perm_hint(rc, "detach"));
	if (json) {
		jw_open(NULL, '{');
		jw_open("detached", '{');
		jw_str("filter", filter);
		jw_str("volume", volume);
		jw_strn("instance", opt_instance);
		jw_close('}');
		jw_close('}');
	} else {
		printf("Detached filter \"%s\" from %s", vis(filter), vis(volume));
		if (opt_instance)
			printf(" (instance \"%s\")", vis(opt_instance));
		printf(".\n");
	}
	return CTL_OK;
}

/* ports */

static int cmd_ports(int argc, char **argv)
{
	struct fltport_port_info *p = NULL;
	size_t n = 0, denied = 0;
	int rc = parse_opts(find_command("ports"), argc, argv, "h", NULL, NULL);

	if (rc >= 0)
		return rc;
	rc = list_ports(&p, &n, &denied);
	if (rc < 0)
		return fail("ports", NULL, NULL, NULL, rc, NULL);
	qsort(p, n, sizeof(*p), cmp_port);
	if (json) {
		jw_open(NULL, '{');
		jw_open("ports", '[');
		for (size_t i = 0; i < n; i++) {
			jw_open(NULL, '{');
			jw_str("name", p[i].name);
			jw_i64("pid", p[i].pid);
			jw_u64("uid", p[i].uid);
			jw_u64("connections", p[i].stats.connections);
			jw_u64("max_connections", p[i].max_connections);
			jw_time("started", "started_ns", p[i].started_ns);
			jw_port_stats(&p[i].stats);
			jw_close('}');
		}
		jw_close(']');
		jw_u64("denied", denied);
		jw_close('}');
	} else {
		printf("\nPort Name                            Pid     Uid  Conns    Max        "
		       "Sent"
		       "    Received  Started\n"
		       "------------------------------  --------  ------  -----  -----  ----------"
		       "  ----------  -------------------\n");
		for (size_t i = 0; i < n; i++) {
			char t[64];

			fmt_local(p[i].started_ns, t, sizeof(t));
			cell(p[i].name, 32);
			printf("%8" PRId32 "  %6" PRIu32 "  %5" PRIu32 "  %5" PRIu32 "  %10" PRIu64
			       "  %10" PRIu64 "  %s\n",
			       p[i].pid, p[i].uid, p[i].stats.connections, p[i].max_connections,
			       p[i].stats.sent, p[i].stats.received, t);
		}
	}
	fltport_mgmt_free(p);
	return listing_done(denied, "port", "ports");
}

/* connections */

static void jw_conn(const struct fltport_conn_info *c)
{
	jw_open(NULL, '{');
	jw_u64("id", c->id);
	jw_i64("pid", c->pid);
	jw_u64("uid", c->uid);
	jw_u64("gid", c->gid);
	jw_str("exe", c->exe);
	jw_time("since", "since_ns", c->since_ns);
	jw_port_stats(&c->stats);
	jw_close('}');
}

static int cmd_connections(int argc, char **argv)
{
	struct fltport_conn_info *c = NULL;
	const char *port;
	size_t n = 0;
	int rc = parse_opts(find_command("connections"), argc, argv, "h", NULL, NULL);

	if (rc >= 0)
		return rc;
	port = argv[optind];
	rc = list_conns(port, &c, &n);
	if (rc < 0)
		return fail("connections", "port", port, NULL, rc, NULL);
	qsort(c, n, sizeof(*c), cmp_conn);
	if (json) {
		jw_open(NULL, '{');
		jw_str("port", port);
		jw_open("connections", '[');
		for (size_t i = 0; i < n; i++)
			jw_conn(&c[i]);
		jw_close(']');
		jw_close('}');
	} else {
		printf("\n    Id       Pid     Uid     Gid  Since                      Sent    "
		       "Received"
		       "  Pending  Exe\n"
		       "------  --------  ------  ------  -------------------  ----------  "
		       "----------"
		       "  -------  ---\n");
		for (size_t i = 0; i < n; i++) {
			char t[64];

			fmt_local(c[i].since_ns, t, sizeof(t));
			printf("%6" PRIu64 "  %8" PRId32 "  %6" PRIu32 "  %6" PRIu32
			       "  %-19s  %10" PRIu64 "  %10" PRIu64 "  %7" PRIu32 "  %s\n",
			       c[i].id, c[i].pid, c[i].uid, c[i].gid, t, c[i].stats.sent,
			       c[i].stats.received, c[i].stats.pending, vis(c[i].exe));
		}
	}
	fltport_mgmt_free(c);
	return CTL_OK;
}

/* stats */

struct stats_set {
	struct fltport_filter_info *f;
	size_t nf;
	struct fltport_port_info *p;
	size_t np;
	struct fltport_conn_info **c; /* per port; NULL if not known */
	size_t *nc;
	size_t denied;
	bool own; /* f and p are our malloc'd copies, not the library's arrays */
};

static void stats_free(struct stats_set *s)
{
	for (size_t i = 0; s->c && i < s->np; i++) {
		if (s->c[i])
			fltport_mgmt_free(s->c[i]);
	}
	free(s->c);
	free(s->nc);
	if (s->own) {
		free(s->f);
		free(s->p);
		return;
	}
	if (s->f)
		fltport_mgmt_free(s->f);
	if (s->p)
		fltport_mgmt_free(s->p);
}

/* The connections of each port in the set (a port that ends meanwhile,
 * or refuses, is shown without them). */
static int stats_conns(struct stats_set *s)
{
	s->c = calloc(s->np ? s->np : 1, sizeof(*s->c));
	s->nc = calloc(s->np ? s->np : 1, sizeof(*s->nc));
	if (!s->c || !s->nc)
		return -ENOMEM;
	for (size_t i = 0; i < s->np; i++) {
		if (list_conns(s->p[i].name, &s->c[i], &s->nc[i]) < 0) {
			s->c[i] = NULL;
			s->nc[i] = 0;
		}
	}
	return 0;
}

/* One named object: a filter, a port, or both of that name. */
static int stats_named(const char *name, struct stats_set *s)
{
	struct fltport_filter_info fi;
	struct fltport_port_info pi;
	int rf = get_filter(name, &fi);
	int rp = get_port(name, &pi);

	if (rf < 0 && rf != -ENOENT)
		return fail("stats", "filter", name, NULL, rf, NULL);
	if (rp < 0 && rp != -ENOENT)
		return fail("stats", "port", name, NULL, rp, NULL);
	if (rf == -ENOENT && rp == -ENOENT)
		return fail("stats", "filter or port", name, NULL, -ENOENT, NULL);
	/* Copies of our own (s->own: stats_free() uses free() on them). */
	s->own = true;
	if (rf == 0) {
		s->f = malloc(sizeof(fi));
		if (!s->f)
			return fail("stats", NULL, NULL, NULL, -ENOMEM, NULL);
		*s->f = fi;
		s->nf = 1;
	}
	if (rp == 0) {
		s->p = malloc(sizeof(pi));
		if (!s->p)
			return fail("stats", NULL, NULL, NULL, -ENOMEM, NULL);
		*s->p = pi;
		s->np = 1;
	}
	return -1;
}

static void stats_print_tables(const struct stats_set *s)
{
	printf("\nFilter Name                           Seen     Allowed      Denied   Timed Out"
	       "  Overflowed  In Flight\n"
	       "------------------------------  ----------  ----------  ----------  ----------"
	       "  ----------  ---------\n");
	for (size_t i = 0; i < s->nf; i++) {
		const struct fltport_filter_stats *st = &s->f[i].stats;

		cell(s->f[i].name, 32);
		printf("%10" PRIu64 "  %10" PRIu64 "  %10" PRIu64 "  %10" PRIu64 "  %10" PRIu64
		       "  %9" PRIu32 "\n",
		       st->seen, st->allowed, st->denied, st->timed_out, st->overflowed,
		       st->in_flight);
	}
	printf("\nPort Name                        Conns        Sent     Replies   Timed Out"
	       "   Cancelled    Received  Pending\n"
	       "------------------------------  ------  ----------  ----------  ----------"
	       "  ----------  ----------  -------\n");
	for (size_t i = 0; i < s->np; i++) {
		const struct fltport_port_stats *st = &s->p[i].stats;

		cell(s->p[i].name, 32);
		printf("%6" PRIu32 "  %10" PRIu64 "  %10" PRIu64 "  %10" PRIu64 "  %10" PRIu64
		       "  %10" PRIu64 "  %7" PRIu32 "\n",
		       st->connections, st->sent, st->replies, st->timed_out, st->cancelled,
		       st->received, st->pending);
	}
}

static void stats_print_blocks(const struct stats_set *s)
{
	for (size_t i = 0; i < s->nf; i++) {
		printf("Filter \"%s\" (pid %" PRId32 ", altitude %s)\n", vis(s->f[i].name),
		       s->f[i].pid, vis(s->f[i].altitude));
		print_counters(&s->f[i].stats, filter_counters, 2);
	}
	for (size_t i = 0; i < s->np; i++) {
		printf("Port \"%s\" (pid %" PRId32 ")\n", vis(s->p[i].name), s->p[i].pid);
		print_counters(&s->p[i].stats, port_counters, 2);
		for (size_t j = 0; j < s->nc[i]; j++) {
			const struct fltport_conn_info *c = &s->c[i][j];

			printf("  Connection %" PRIu64 " (pid %" PRId32 ", uid %" PRIu32 ", %s)\n",
			       c->id, c->pid, c->uid, c->exe[0] ? vis(c->exe) : "exe unknown");
			print_counters(&c->stats, port_counters, 4);
		}
	}
}

static void stats_json(const struct stats_set *s, bool with_denied)
{
	jw_open(NULL, '{');
	jw_open("filters", '[');
	for (size_t i = 0; i < s->nf; i++) {
		jw_open(NULL, '{');
		jw_str("name", s->f[i].name);
		jw_str("altitude", s->f[i].altitude);
		jw_i64("pid", s->f[i].pid);
		jw_filter_stats(&s->f[i].stats);
		jw_close('}');
	}
	jw_close(']');
	jw_open("ports", '[');
	for (size_t i = 0; i < s->np; i++) {
		jw_open(NULL, '{');
		jw_str("name", s->p[i].name);
		jw_i64("pid", s->p[i].pid);
		jw_port_stats(&s->p[i].stats);
		jw_open("connections", '[');
		for (size_t j = 0; j < s->nc[i]; j++)
			jw_conn(&s->c[i][j]);
		jw_close(']');
		jw_close('}');
	}
	jw_close(']');
	if (with_denied)
		jw_u64("denied", s->denied);
	jw_close('}');
}

static int cmd_stats(int argc, char **argv)
{
	struct stats_set s = { 0 };
	size_t d = 0;
	int rc = parse_opts(find_command("stats"), argc, argv, "h", NULL, NULL);

	if (rc >= 0)
		return rc;
	if (optind < argc) {
		rc = stats_named(argv[optind], &s);
		if (rc >= 0)
			goto out;
	} else {
		rc = list_filters(&s.f, &s.nf, &s.denied);
		if (rc < 0) {
			rc = fail("stats", NULL, NULL, NULL, rc, NULL);
			goto out;
		}
		rc = list_ports(&s.p, &s.np, &d);
		if (rc < 0) {
			rc = fail("stats", NULL, NULL, NULL, rc, NULL);
			goto out;
		}
		s.denied += d;
		qsort(s.f, s.nf, sizeof(*s.f), cmp_filter);
		qsort(s.p, s.np, sizeof(*s.p), cmp_port);
	}
	rc = stats_conns(&s);
	if (rc < 0) {
		rc = fail("stats", NULL, NULL, NULL, rc, NULL);
		goto out;
	}
	if (json)
		stats_json(&s, optind >= argc);
	else if (optind < argc)
		stats_print_blocks(&s);
	else
		stats_print_tables(&s);
	rc = listing_done(s.denied, "filter or port", "filters and ports");
out:
	stats_free(&s);
	return rc;
}

/* help */

static int cmd_help(int argc, char **argv);
static void usage(FILE *f);

static const struct command commands[] = {
	{ "filters", cmd_filters, 0, 0, "filters",
	  "List the running filters: name, number of instances, altitude, frame (always 0),\n"
	  "highest altitude first, as fltmc filters does." },
	{ "instances", cmd_instances, 0, 1, "instances [FILTER] [-f FILTER] [-v VOLUME]",
	  "List the instances of every filter, of FILTER, or on VOLUME (a mount point):\n"
	  "filter, volume, altitude, instance name, as fltmc instances does.  SprtFtrs is\n"
	  "the filter's features (FLTPORT_FILTER_HAVE_* bits)." },
	{ "volumes", cmd_volumes, 0, 0, "volumes",
	  "List the mounted file systems of this mount namespace: mount point (Dos Name),\n"
	  "source (Volume Name), file system, and how many instances are attached." },
	{ "attach", cmd_attach, 2, 2,
	  "attach FILTER VOLUME [-i INSTANCE] [-a ALTITUDE] [--mount] [--submounts]",
	  "Ask the running filter FILTER to attach an instance to VOLUME (a mount point or\n"
	  "any path on the file system).  --mount: that mount only; --submounts: also the\n"
	  "file systems mounted below it.  The filter may refuse.  Needs root or the user\n"
	  "the filter runs as." },
	{ "detach", cmd_detach, 2, 3, "detach FILTER VOLUME [INSTANCE] [-i INSTANCE]",
	  "Ask the running filter FILTER to detach its instance from VOLUME (by default\n"
	  "the instance there; -i names one).  The filter may refuse.  Needs root or the\n"
	  "user the filter runs as." },
	{ "ports", cmd_ports, 0, 0, "ports",
	  "List the server ports: name, process, owner, connections, messages." },
	{ "connections", cmd_connections, 1, 1, "connections PORT",
	  "List the connections of PORT: process, user, since, counters, executable." },
	{ "stats", cmd_stats, 0, 1, "stats [FILTER|PORT]",
	  "Counters of every filter and port, or all counters of one filter or port (and\n"
	  "of each of the port's connections)." },
	{ "help", cmd_help, 0, 1, "help [COMMAND]", "Describe COMMAND, or every command." },
	{ NULL, NULL, 0, 0, NULL, NULL },
};

static const struct command *find_command(const char *name)
{
	for (const struct command *c = commands; c->name; c++) {
		if (strcmp(c->name, name) == 0)
			return c;
	}
	return NULL;
}

static void command_usage(FILE *f, const struct command *c)
{
	fprintf(f, "usage: " PROG " [--json] %s\n\n%s\n", c->usage, c->help);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: " PROG " [--json] COMMAND [ARGS]\n"
		   "Show and control fltport's running filters and ports (fltmc for Linux).\n\n"
		   "Commands (no command: filters):\n");
	for (const struct command *c = commands; c->name; c++)
		fprintf(f, "  %s\n", c->usage);
	fprintf(f, "\nOptions:\n"
		   "  --json      one JSON document on stdout (errors too)\n"
		   "  --help      this text; help COMMAND describes one command\n"
		   "  --version   the version\n\n"
		   "Exit status: 0 done, 1 error or not found, 2 usage, 3 permission (an object\n"
		   "refused this user, or a listing left some out).  Ports and control sockets\n"
		   "are in $FLTPORT_DIR (default " FLTPORT_DEFAULT_DIR "); see fltportctl(8).\n");
}

static int cmd_help(int argc, char **argv)
{
	const struct command *c;
	int rc = parse_opts(find_command("help"), argc, argv, "h", NULL, NULL);

	if (rc >= 0)
		return rc;
	if (optind >= argc) {
		usage(stdout);
		return CTL_OK;
	}
	c = find_command(argv[optind]);
	if (!c) {
		fprintf(stderr, PROG " help: no command \"%s\"\n", vis(argv[optind]));
		return CTL_USAGE;
	}
	command_usage(stdout, c);
	return CTL_OK;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'J' },
					      { "help", no_argument, NULL, 'h' },
					      { "version", no_argument, NULL, 'V' },
					      { NULL, 0, NULL, 0 } };
	static char *no_cmd[] = { "filters", NULL };
	const struct command *c;
	int o, rc;

	/* "+": stop at the command; its own options are parsed after it. */
	while ((o = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
		switch (o) {
		case 'J':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return CTL_OK;
		case 'V':
			printf(PROG " %s (fltport wire protocol %u)\n", FLTPORT_VERSION_STRING,
			       FLTPORT_WIRE_VERSION);
			return CTL_OK;
		default:
			usage(stderr);
			return CTL_USAGE;
		}
	}
	if (optind >= argc) { /* as fltmc: no command lists the filters */
		argc = 1;
		argv = no_cmd;
	} else {
		argc -= optind;
		argv += optind;
	}
	c = find_command(argv[0]);
	if (!c) {
		fprintf(stderr, PROG ": unknown command \"%s\" (see " PROG " --help)\n",
			vis(argv[0]));
		return CTL_USAGE;
	}
	rc = c->run(argc, argv);
	if (fflush(stdout) != 0 && rc == CTL_OK) {
		fprintf(stderr, PROG ": writing the output: %s\n", strerror(errno));
		rc = CTL_ERR;
	}
	return rc;
}
