/*
 * Build a Criterion suite as a plain executable (no Criterion, no BoxFort
 * sandbox), so that ThreadSanitizer can run it: CI's TSan pass runs only
 * plain executables (docs/DESIGN.md).  Supports the subset the suites
 * built this way use: Test(), TestSuite(.init, .fini), cr_assert*,
 * cr_expect*, cr_skip*, cr_log_info.  Each test runs in a forked child
 * (900 s alarm); the last line is "N passed, N failed".
 */
#ifndef FP_PLAIN_CRITERION_H
#define FP_PLAIN_CRITERION_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef void (*fp_plain_fn)(void);

struct fp_plain_suite {
	fp_plain_fn init, fini;
	int timeout; /* accepted for Criterion compatibility; the 900 s alarm applies */
};

struct fp_plain_test {
	const char *name;
	fp_plain_fn fn;
	const struct fp_plain_suite *suite;
};

static struct fp_plain_test fp_plain_tests[128];
static int fp_plain_ntests;
static int fp_plain_failed; /* cr_expect failures in this test */

static inline void fp_plain_register(const char *name, fp_plain_fn fn,
				     const struct fp_plain_suite *suite)
{
	if (fp_plain_ntests < 128)
		fp_plain_tests[fp_plain_ntests++] = (struct fp_plain_test){ name, fn, suite };
}

static inline void fp_plain_vreport(const char *what, const char *expr, const char *file, int line,
				    const char *fmt, va_list ap)
{
	fprintf(stderr, "%s %s:%d: %s", what, file, line, expr);
	if (fmt && *fmt) {
		fputs(": ", stderr);
		vfprintf(stderr, fmt, ap);
	}
	fputc('\n', stderr);
}

static inline void fp_plain_check(int ok, const char *expr, const char *file, int line,
				  const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return;
	va_start(ap, fmt);
	fp_plain_vreport("FAIL", expr, file, line, fmt, ap);
	va_end(ap);
	exit(1);
}

static inline void fp_plain_expect(int ok, const char *expr, const char *file, int line,
				   const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return;
	va_start(ap, fmt);
	fp_plain_vreport("FAIL (expect)", expr, file, line, fmt, ap);
	va_end(ap);
	fp_plain_failed = 1;
}

/* TestSuite(name, .init = f, .fini = g): a weak reference from Test()
 * finds it, or NULL for suites without one. */
#define TestSuite(suite, ...) struct fp_plain_suite fp_plain_suite_##suite = { __VA_ARGS__ }

#define Test(suite, name, ...)                                                                 \
	extern struct fp_plain_suite fp_plain_suite_##suite __attribute__((weak));             \
	static void suite##_##name(void);                                                      \
	__attribute__((constructor)) static void fp_plain_reg_##suite##_##name(void)           \
	{                                                                                      \
		fp_plain_register(#suite "::" #name, suite##_##name, &fp_plain_suite_##suite); \
	}                                                                                      \
	static void suite##_##name(void)

#define cr_assert(cond, ...) fp_plain_check(!!(cond), #cond, __FILE__, __LINE__, "" __VA_ARGS__)
#define cr_assert_eq(a, b, ...) cr_assert((a) == (b), __VA_ARGS__)
#define cr_assert_neq(a, b, ...) cr_assert((a) != (b), __VA_ARGS__)
#define cr_assert_gt(a, b, ...) cr_assert((a) > (b), __VA_ARGS__)
#define cr_assert_geq(a, b, ...) cr_assert((a) >= (b), __VA_ARGS__)
#define cr_assert_lt(a, b, ...) cr_assert((a) < (b), __VA_ARGS__)
#define cr_assert_leq(a, b, ...) cr_assert((a) <= (b), __VA_ARGS__)
#define cr_assert_not(cond, ...) cr_assert(!(cond), __VA_ARGS__)
#define cr_assert_arr_eq(a, b, n, ...) cr_assert(memcmp((a), (b), (n)) == 0, __VA_ARGS__)
#define cr_assert_null(a, ...) cr_assert((a) == NULL, __VA_ARGS__)
#define cr_assert_not_null(a, ...) cr_assert((a) != NULL, __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) cr_assert(strcmp((a), (b)) == 0, __VA_ARGS__)
#define cr_expect(cond, ...) fp_plain_expect(!!(cond), #cond, __FILE__, __LINE__, "" __VA_ARGS__)
#define cr_expect_eq(a, b, ...) cr_expect((a) == (b), __VA_ARGS__)
#define cr_expect_neq(a, b, ...) cr_expect((a) != (b), __VA_ARGS__)
#define cr_expect_gt(a, b, ...) cr_expect((a) > (b), __VA_ARGS__)
#define cr_expect_geq(a, b, ...) cr_expect((a) >= (b), __VA_ARGS__)
#define cr_expect_lt(a, b, ...) cr_expect((a) < (b), __VA_ARGS__)
#define cr_expect_leq(a, b, ...) cr_expect((a) <= (b), __VA_ARGS__)
#define cr_expect_arr_eq(a, b, n, ...) cr_expect(memcmp((a), (b), (n)) == 0, __VA_ARGS__)
#define cr_expect_not_null(a, ...) cr_expect((a) != NULL, __VA_ARGS__)
#define cr_expect_not(cond, ...) cr_expect(!(cond), __VA_ARGS__)
#define cr_expect_str_empty(a, ...) cr_expect((a)[0] == 0, __VA_ARGS__)
#define cr_expect_null(a, ...) cr_expect((a) == NULL, __VA_ARGS__)
#define cr_expect_str_eq(a, b, ...) cr_expect(strcmp((a), (b)) == 0, __VA_ARGS__)
#define cr_log_info(...)             \
	do {                         \
		printf(__VA_ARGS__); \
		printf("\n");        \
	} while (0)
/* A skip ends the test's process, wherever it is called from. */
#define cr_skip(...)                             \
	do {                                     \
		printf("skipped: " __VA_ARGS__); \
		printf("\n");                    \
		fflush(stdout);                  \
		exit(0);                         \
	} while (0)
#define cr_skip_test(...) cr_skip(__VA_ARGS__)

/* Each test (those whose name contains argv[1], if given) in its own forked process, as Criterion does: globals start
 * fresh and a failure ends only that test.  The parent never starts
 * threads, so forking it is safe. */
int main(int argc, char **argv)
{
	int passed = 0, failed = 0;

	for (int i = 0; i < fp_plain_ntests; i++) {
		pid_t pid;
		int st = 0;

		if (argc > 1 && !strstr(fp_plain_tests[i].name, argv[1]))
			continue; /* a name filter, for running one test */
		printf("running %s\n", fp_plain_tests[i].name);
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			const struct fp_plain_suite *su = fp_plain_tests[i].suite;

			alarm(900);
			if (su && su->init)
				su->init();
			fp_plain_tests[i].fn();
			if (su && su->fini)
				su->fini();
			fflush(stdout);
			exit(fp_plain_failed ? 1 : 0);
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0) {
			printf("FAILED %s (status 0x%x)\n", fp_plain_tests[i].name, st);
			failed++;
		} else {
			passed++;
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#endif
