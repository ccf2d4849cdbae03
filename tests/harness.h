/* harness.h - the tiny unit-test harness every `<module>_test.c` includes.
 *
 * A test file defines cases with EP_TEST(name) { ... } and ends with
 * EP_TEST_MAIN(). Each case runs in its own forked process, in its own
 * process group, with a deadline (EP_TEST_TIMEOUT seconds, default 60), so a
 * crash or a hang fails that case only and leaves no process behind. Asserts
 * print both values and the source line. A case that cannot run here calls
 * EP_SKIP("reason"): it is counted as skipped, never as passed.
 *
 * The binary prints one line per case and closes with
 *   `<file>: N passed, N failed, N skipped`
 * which tests/run.sh adds up into the suite's closing line.
 */
#ifndef EP_TEST_HARNESS_H
#define EP_TEST_HARNESS_H

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef EP_TEST_TIMEOUT
#define EP_TEST_TIMEOUT 60
#endif

typedef void (*ep_test_fn)(void);
struct ep_test_case {
	const char *name;
	ep_test_fn fn;
};

#define EP_TEST_MAX_CASES 256
static struct ep_test_case ep_test_cases[EP_TEST_MAX_CASES];
static int ep_test_ncases;

#define EP_TEST(name_)                                                         \
	static void ep_test_##name_(void);                                     \
	__attribute__((constructor)) static void ep_test_reg_##name_(void)     \
	{                                                                      \
		if (ep_test_ncases < EP_TEST_MAX_CASES)                        \
			ep_test_cases[ep_test_ncases++] = (struct ep_test_case){ \
				#name_, ep_test_##name_};                      \
	}                                                                      \
	static void ep_test_##name_(void)

/* Exit codes a case process uses to report to the runner. */
#define EP_TEST_EXIT_FAIL 1
#define EP_TEST_EXIT_SKIP 77

#define EP_FAIL(...)                                                           \
	do {                                                                   \
		fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);              \
		fprintf(stderr, __VA_ARGS__);                                  \
		fputc('\n', stderr);                                           \
		exit(EP_TEST_EXIT_FAIL);                                       \
	} while (0)

#define EP_SKIP(reason)                                                        \
	do {                                                                   \
		fprintf(stderr, "  skipped: %s\n", reason);                    \
		exit(EP_TEST_EXIT_SKIP);                                       \
	} while (0)

#define EP_ASSERT(cond)                                                        \
	do {                                                                   \
		if (!(cond))                                                   \
			EP_FAIL("assertion failed: %s", #cond);                \
	} while (0)

#define EP_ASSERT_INT_EQ(a, b)                                                 \
	do {                                                                   \
		long long ep_a_ = (long long)(a), ep_b_ = (long long)(b);      \
		if (ep_a_ != ep_b_)                                            \
			EP_FAIL("%s == %s: %lld != %lld", #a, #b, ep_a_, ep_b_); \
	} while (0)

#define EP_ASSERT_UINT_EQ(a, b)                                                \
	do {                                                                   \
		unsigned long long ep_a_ = (unsigned long long)(a);            \
		unsigned long long ep_b_ = (unsigned long long)(b);            \
		if (ep_a_ != ep_b_)                                            \
			EP_FAIL("%s == %s: 0x%llx != 0x%llx", #a, #b, ep_a_,    \
				ep_b_);                                        \
	} while (0)

/* Bitwise float equality (distinguishes -0/+0, compares NaN payloads). */
#define EP_ASSERT_FLOAT_BITS_EQ(a, b)                                          \
	do {                                                                   \
		float ep_a_ = (a), ep_b_ = (b);                                \
		uint32_t ep_ua_, ep_ub_;                                       \
		memcpy(&ep_ua_, &ep_a_, 4);                                    \
		memcpy(&ep_ub_, &ep_b_, 4);                                    \
		if (ep_ua_ != ep_ub_)                                          \
			EP_FAIL("%s == %s: %a (0x%08x) != %a (0x%08x)", #a, #b, \
				(double)ep_a_, ep_ua_, (double)ep_b_, ep_ub_); \
	} while (0)

#define EP_ASSERT_NEAR(a, b, tol)                                              \
	do {                                                                   \
		double ep_a_ = (a), ep_b_ = (b);                               \
		if (!(fabs(ep_a_ - ep_b_) <= (tol)))                           \
			EP_FAIL("%s ~= %s: %.17g vs %.17g (tol %g)", #a, #b,    \
				ep_a_, ep_b_, (double)(tol));                  \
	} while (0)

#define EP_ASSERT_STR_EQ(a, b)                                                 \
	do {                                                                   \
		const char *ep_a_ = (a), *ep_b_ = (b);                         \
		if (!ep_a_ || !ep_b_ || strcmp(ep_a_, ep_b_) != 0)             \
			EP_FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b,           \
				ep_a_ ? ep_a_ : "(null)",                      \
				ep_b_ ? ep_b_ : "(null)");                     \
	} while (0)

static int ep_test_run_one(const struct ep_test_case *tc)
{
	pid_t pid = fork();
	if (pid < 0)
		return EP_TEST_EXIT_FAIL;
	if (pid == 0) {
		setpgid(0, 0);
		alarm(EP_TEST_TIMEOUT);
		tc->fn();
		fflush(NULL);
		_exit(0);
	}
	setpgid(pid, pid);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0)
		;
	kill(-pid, SIGKILL); /* whatever the case left in its group */
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	fprintf(stderr, "  killed by signal %d%s\n", WTERMSIG(status),
		WTERMSIG(status) == SIGALRM ? " (deadline)" : "");
	return EP_TEST_EXIT_FAIL;
}

#define EP_TEST_MAIN()                                                         \
	int main(int argc, char **argv)                                        \
	{                                                                      \
		int passed = 0, failed = 0, skipped = 0;                       \
		const char *only = argc > 1 ? argv[1] : NULL;                  \
		setvbuf(stdout, NULL, _IOLBF, 0);                              \
		for (int i = 0; i < ep_test_ncases; i++) {                     \
			const struct ep_test_case *tc = &ep_test_cases[i];     \
			if (only && strcmp(only, tc->name) != 0)               \
				continue;                                      \
			fflush(NULL);                                          \
			int rc = ep_test_run_one(tc);                          \
			const char *v = rc == 0 ? "ok"                         \
					: rc == EP_TEST_EXIT_SKIP ? "SKIP"     \
								  : "FAIL";    \
			printf("%-5s %s\n", v, tc->name);                      \
			if (rc == 0)                                           \
				passed++;                                      \
			else if (rc == EP_TEST_EXIT_SKIP)                      \
				skipped++;                                     \
			else                                                   \
				failed++;                                      \
		}                                                              \
		printf("%s: %d passed, %d failed, %d skipped\n", argv[0],      \
		       passed, failed, skipped);                               \
		return failed ? 1 : 0;                                         \
	}

#endif
