/* text_file_test.c - bounded reads, quoting and report-path checks. */
#include "reports/text_file.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "collectives/error.h"
#include "tests/harness.h"

EP_TEST(quote_escapes_control_bytes_and_cuts_long_values)
{
	char q[128];
	EP_ASSERT_STR_EQ(ep_quote("a\r\nb\x01\xff\\", q, sizeof(q)), "a\\r\\nb\\x01\\xff\\\\");
	char longv[200];
	memset(longv, 'x', sizeof(longv) - 1);
	longv[199] = 0;
	ep_quote(longv, q, sizeof(q));
	EP_ASSERT_INT_EQ(strlen(q), 63);
	EP_ASSERT(strcmp(q + 60, "...") == 0);
	char tiny[4];
	ep_quote("abcdef", tiny, sizeof(tiny));
	EP_ASSERT(strlen(tiny) < sizeof(tiny));
}

EP_TEST(read_refuses_directory_device_binary_and_too_large)
{
	char *t, err[256];
	size_t n;
	EP_ASSERT_INT_EQ(ep_text_file_read("routing file", "/tmp", 100, &t, &n, err, sizeof(err)), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "routing file '/tmp' is a directory") != NULL);
	EP_ASSERT_INT_EQ(ep_text_file_read("routing file", "/dev/zero", 100, &t, &n, err, sizeof(err)), -EP_EUSAGE);
	char path[64];
	snprintf(path, sizeof(path), "/tmp/ep_text_file_test_%d", (int)getpid());
	FILE *f = fopen(path, "w");
	fputs("0123456789", f);
	fclose(f);
	EP_ASSERT_INT_EQ(ep_text_file_read("x", path, 9, &t, &n, err, sizeof(err)), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "larger than 9 bytes") != NULL);
	EP_ASSERT_INT_EQ(ep_text_file_read("x", path, 10, &t, &n, err, sizeof(err)), 0);
	EP_ASSERT_INT_EQ(n, 10);
	EP_ASSERT_STR_EQ(t, "0123456789");
	free(t);
	f = fopen(path, "w");
	fwrite("ab\0cd", 1, 5, f);
	fclose(f);
	EP_ASSERT_INT_EQ(ep_text_file_read("x", path, 100, &t, &n, err, sizeof(err)), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "NUL byte at offset 2") != NULL);
	unlink(path);
}

EP_TEST(read_takes_a_pipe)
{
	int fds[2];
	EP_ASSERT_INT_EQ(pipe(fds), 0);
	EP_ASSERT_INT_EQ(write(fds[1], "1 2\n", 4), 4);
	close(fds[1]);
	char path[64], *t, err[256];
	size_t n;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[0]);
	EP_ASSERT_INT_EQ(ep_text_file_read("x", path, 100, &t, &n, err, sizeof(err)), 0);
	EP_ASSERT_STR_EQ(t, "1 2\n");
	free(t);
}

EP_TEST(output_paths_are_checked_before_any_work)
{
	char err[256], path[64];
	EP_ASSERT_INT_EQ(ep_output_path_check("--json", "", err, sizeof(err)), -EP_EUSAGE);
	EP_ASSERT_INT_EQ(ep_output_path_check("--json", "/tmp", err, sizeof(err)), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "not a directory") != NULL);
	EP_ASSERT_INT_EQ(ep_output_path_check("--csv", "/nonexistent/r.csv", err, sizeof(err)), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "'/nonexistent' does not exist") != NULL);
	EP_ASSERT_INT_EQ(ep_output_path_check("--json", "/proc/x", err, sizeof(err)), -EP_EUSAGE);
	snprintf(path, sizeof(path), "/tmp/ep_out_%d.json", (int)getpid());
	EP_ASSERT_INT_EQ(ep_output_path_check("--json", path, err, sizeof(err)), 0);
	EP_ASSERT(access(path, F_OK) != 0); /* the probe file is gone again */
	EP_ASSERT_INT_EQ(ep_output_dir_check("--dump", "", err, sizeof(err)), -EP_EUSAGE);
	EP_ASSERT_INT_EQ(ep_output_dir_check("--dump", "/etc/passwd", err, sizeof(err)), -EP_EUSAGE);
	EP_ASSERT_INT_EQ(ep_output_dir_check("--dump", "/etc/passwd/sub", err, sizeof(err)), -EP_EUSAGE);
	snprintf(path, sizeof(path), "/tmp/ep_dump_%d/a/b", (int)getpid());
	EP_ASSERT_INT_EQ(ep_output_dir_check("--dump", path, err, sizeof(err)), 0);
}

EP_TEST_MAIN()
