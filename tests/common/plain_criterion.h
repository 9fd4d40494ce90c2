/*
 * Build a Criterion suite as a plain executable (no Criterion, no BoxFort
 * sandbox), so that ThreadSanitizer can run it: CI's TSan pass runs only
 * plain executables (docs/DESIGN.md).  Supports the subset the suites
 * built this way use: Test(), cr_assert*, cr_skip.  Each test runs in a
 * forked child (120 s alarm); the last line is "N passed, N failed".
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

struct fp_plain_test {
	const char *name;
	fp_plain_fn fn;
};

static struct fp_plain_test fp_plain_tests[128];
static int fp_plain_ntests;

static inline void fp_plain_register(const char *name, fp_plain_fn fn)
{
	if (fp_plain_ntests < 128)
		fp_plain_tests[fp_plain_ntests++] = (struct fp_plain_test){ name, fn };
}

static inline void fp_plain_check(int ok, const char *expr, const char *file, int line,
				  const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return;
	fprintf(stderr, "FAIL %s:%d: %s", file, line, expr);
	if (fmt && *fmt) {
		fputs(": ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	fputc('\n', stderr);
	exit(1);
}

#define Test(suite, name, ...)                                                           \
	static void suite##_##name(void);                                                \
	__attribute__((constructor)) static void fp_plain_reg_##suite##_##name(void)     \
	{                                                                                \
		fp_plain_register(#suite "::" #name, suite##_##name);                    \
	}                                                                                \
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
#define cr_skip(...)                                    \
	do {                                            \
		printf("skipped: " __VA_ARGS__);        \
		printf("\n");                           \
		return;                                 \
	} while (0)

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
			alarm(120);
			fp_plain_tests[i].fn();
			fflush(stdout);
			_exit(0);
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
