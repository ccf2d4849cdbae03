/* cases_test.c - case files expand into exactly the options they hold. */
#include "cli/cases.h"

#include <sys/stat.h>

#include "collectives/error.h"
#include "tests/harness.h"

static const char *write_tmp(const char *name, const char *text, size_t len)
{
	static char path[256];
	snprintf(path, sizeof(path), "/tmp/ep_cases_test_%d_%s", (int)getpid(), name);
	FILE *f = fopen(path, "wb");
	EP_ASSERT(f != NULL);
	EP_ASSERT_INT_EQ(fwrite(text, 1, len, f), len);
	fclose(f);
	return path;
}

/* Expands `prog --case PATH rest...`; returns the code, fills out/argc. */
static int expand(const char *path, const char *rest, int *n, char ***out, char **storage, char *err)
{
	char *argv[] = {"intranode", "--case", (char *)path, (char *)rest, NULL};
	return ep_cases_expand(rest ? 4 : 3, argv, n, out, storage, err, 256);
}

/* The buffer of words was not NUL-terminated after the last file: strtok
 * read past it (ASan: heap-buffer-overflow; else garbage arguments). */
EP_TEST(empty_file_gives_no_options)
{
	char **v, *st, err[256];
	int n;
	const char *p = write_tmp("empty", "", 0);
	for (int i = 0; i < 50; i++) {
		EP_ASSERT_INT_EQ(expand(p, NULL, &n, &v, &st, err), 0);
		EP_ASSERT_INT_EQ(n, 1);
		EP_ASSERT(v[1] == NULL);
		free(v);
		free(st);
	}
	unlink(p);
}

EP_TEST(words_comments_crlf_and_no_final_newline)
{
	char **v, *st, err[256];
	int n;
	const char *text = "# a preset\r\n-r 4 --hidden 256 # trailing comment\r\n\t-t 64";
	const char *p = write_tmp("words", text, strlen(text));
	EP_ASSERT_INT_EQ(expand(p, "-t", &n, &v, &st, err), 0);
	EP_ASSERT_INT_EQ(n, 8); /* prog, 6 words of the file, then the command line's */
	EP_ASSERT_STR_EQ(v[1], "-r");
	EP_ASSERT_STR_EQ(v[4], "256");
	EP_ASSERT_STR_EQ(v[6], "64");
	EP_ASSERT_STR_EQ(v[7], "-t"); /* the command line comes last, so it overrides */
	EP_ASSERT(v[8] == NULL);
	free(v);
	free(st);
	unlink(p);
}

EP_TEST(directory_device_binary_and_missing_are_refused)
{
	char **v, *st, err[256];
	int n;
	EP_ASSERT_INT_EQ(expand("/tmp", NULL, &n, &v, &st, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "is a directory") != NULL);
	EP_ASSERT_INT_EQ(expand("/dev/zero", NULL, &n, &v, &st, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "not a regular file") != NULL);
	const char *p = write_tmp("bin", "-r\0 4", 5);
	EP_ASSERT_INT_EQ(expand(p, NULL, &n, &v, &st, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "not text") != NULL);
	unlink(p);
	EP_ASSERT_INT_EQ(expand("/nonexistent/x.case", NULL, &n, &v, &st, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "/nonexistent/x.case") != NULL);
}

EP_TEST(file_of_words_that_are_not_options_is_refused)
{
	char **v, *st, err[256];
	int n;
	const char *p = write_tmp("plain", "hello world\n", 12);
	EP_ASSERT_INT_EQ(expand(p, NULL, &n, &v, &st, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "must hold options") != NULL);
	unlink(p);
}

EP_TEST_MAIN()
