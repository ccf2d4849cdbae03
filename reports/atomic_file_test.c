/* atomic_file_test.c - ep_write_file_atomic and ep_mkdir_p in a scratch directory. */
#define _GNU_SOURCE /* nftw */
#include "reports/atomic_file.h"
#include "tests/harness.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>

static char scratch[] = "/tmp/ep_atomic_test.XXXXXX";

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void rm_scratch(void)
{
	nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh scratch directory. A failing assert exit()s and the atexit hook
 * removes it; the harness leaves a passing case through _exit(), so every
 * case ends with rm_scratch(). */
static const char *make_scratch(void)
{
	if (!mkdtemp(scratch))
		EP_FAIL("mkdtemp: %s", strerror(errno));
	atexit(rm_scratch);
	return scratch;
}

/* dir + "/" + name in a ring of buffers, so a few can be alive at once. */
static const char *join(const char *dir, const char *name)
{
	static char buf[8][512];
	static unsigned next;
	char *b = buf[next++ % 8];
	char copy[512]; /* dir may be an earlier result from the ring */
	if ((size_t)snprintf(copy, sizeof(copy), "%s", dir) >= sizeof(copy) ||
	    (size_t)snprintf(b, sizeof(buf[0]), "%s/%s", copy, name) >=
		    sizeof(buf[0]))
		EP_FAIL("path too long: %s/%s", dir, name);
	return b;
}

/* Reads a whole (small) file into buf; returns its length or -1. */
static long slurp(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	return (long)n;
}

/* Number of directory entries other than . and .., and whether any
 * name contains ".tmp.". */
static int count_entries(const char *dir, int *tmp_seen)
{
	DIR *d = opendir(dir);
	if (!d)
		EP_FAIL("opendir %s: %s", dir, strerror(errno));
	int n = 0;
	*tmp_seen = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		n++;
		if (strstr(e->d_name, ".tmp."))
			*tmp_seen = 1;
	}
	closedir(d);
	return n;
}

EP_TEST(writes_content)
{
	const char *dir = make_scratch();
	const char *path = join(dir, "out.json");
	const char msg[] = "{\"hello\": 1}\n";
	EP_ASSERT_INT_EQ(ep_write_file_atomic(path, msg, sizeof(msg) - 1), 0);
	char buf[64];
	EP_ASSERT_INT_EQ(slurp(path, buf, sizeof(buf)), sizeof(msg) - 1);
	EP_ASSERT(memcmp(buf, msg, sizeof(msg) - 1) == 0);
	int tmp_seen;
	EP_ASSERT_INT_EQ(count_entries(dir, &tmp_seen), 1);
	EP_ASSERT_INT_EQ(tmp_seen, 0);
	rm_scratch();
}

EP_TEST(empty_file)
{
	const char *dir = make_scratch();
	const char *path = join(dir, "empty");
	EP_ASSERT_INT_EQ(ep_write_file_atomic(path, NULL, 0), 0);
	struct stat st;
	EP_ASSERT_INT_EQ(stat(path, &st), 0);
	EP_ASSERT_INT_EQ(st.st_size, 0);
	rm_scratch();
}

EP_TEST(replaces_existing)
{
	const char *dir = make_scratch();
	const char *path = join(dir, "f");
	EP_ASSERT_INT_EQ(ep_write_file_atomic(path, "a much longer old text", 22), 0);
	struct stat before;
	EP_ASSERT_INT_EQ(stat(path, &before), 0);
	EP_ASSERT_INT_EQ(ep_write_file_atomic(path, "new", 3), 0);
	char buf[64];
	EP_ASSERT_INT_EQ(slurp(path, buf, sizeof(buf)), 3);
	EP_ASSERT(memcmp(buf, "new", 3) == 0);
	/* A new inode, not the old one truncated in place. */
	struct stat after;
	EP_ASSERT_INT_EQ(stat(path, &after), 0);
	EP_ASSERT(after.st_ino != before.st_ino);
	int tmp_seen;
	EP_ASSERT_INT_EQ(count_entries(dir, &tmp_seen), 1);
	EP_ASSERT_INT_EQ(tmp_seen, 0);
	rm_scratch();
}

EP_TEST(vectored_write)
{
	const char *dir = make_scratch();
	const char *path = join(dir, "v");
	struct iovec iov[3] = {
		{.iov_base = "head", .iov_len = 4},
		{.iov_base = "", .iov_len = 0},
		{.iov_base = "-tail", .iov_len = 5},
	};
	EP_ASSERT_INT_EQ(ep_write_file_atomicv(path, iov, 3), 0);
	char buf[64];
	EP_ASSERT_INT_EQ(slurp(path, buf, sizeof(buf)), 9);
	EP_ASSERT(memcmp(buf, "head-tail", 9) == 0);
	rm_scratch();
}

EP_TEST(large_write)
{
	const char *dir = make_scratch();
	const char *path = join(dir, "big");
	size_t len = 8u << 20;
	unsigned char *data = malloc(len);
	EP_ASSERT(data);
	for (size_t i = 0; i < len; i++)
		data[i] = (unsigned char)(i * 131 + (i >> 13));
	EP_ASSERT_INT_EQ(ep_write_file_atomic(path, data, len), 0);
	unsigned char *back = malloc(len + 1);
	EP_ASSERT(back);
	EP_ASSERT_INT_EQ(slurp(path, (char *)back, len + 1), len);
	EP_ASSERT(memcmp(back, data, len) == 0);
	free(back);
	free(data);
	rm_scratch();
}

EP_TEST(missing_directory_is_enoent)
{
	const char *dir = make_scratch();
	const char *path = join(dir, "nope/out.json");
	EP_ASSERT_INT_EQ(ep_write_file_atomic(path, "x", 1), -ENOENT);
	int tmp_seen;
	EP_ASSERT_INT_EQ(count_entries(dir, &tmp_seen), 0);
	EP_ASSERT_INT_EQ(access(join(dir, "nope"), F_OK), -1);
	rm_scratch();
}

/* The rename fails (the target is a non-empty directory) after the data
 * went to the temp file: the temp file must go, the target must stay. */
EP_TEST(failed_rename_leaves_nothing)
{
	const char *dir = make_scratch();
	const char *target = join(dir, "taken");
	EP_ASSERT_INT_EQ(mkdir(target, 0755), 0);
	EP_ASSERT_INT_EQ(ep_write_file_atomic(join(target, "keep"), "k", 1), 0);
	int rc = ep_write_file_atomic(target, "data", 4);
	if (rc != -EISDIR && rc != -ENOTEMPTY && rc != -EEXIST)
		EP_FAIL("rename over a directory returned %d", rc);
	int tmp_seen;
	EP_ASSERT_INT_EQ(count_entries(dir, &tmp_seen), 1);
	EP_ASSERT_INT_EQ(tmp_seen, 0);
	struct stat st;
	EP_ASSERT_INT_EQ(stat(target, &st), 0);
	EP_ASSERT(S_ISDIR(st.st_mode));
	EP_ASSERT_INT_EQ(count_entries(target, &tmp_seen), 1);
	rm_scratch();
}

EP_TEST(bad_arguments)
{
	EP_ASSERT_INT_EQ(ep_write_file_atomic(NULL, "x", 1), -EINVAL);
	EP_ASSERT_INT_EQ(ep_write_file_atomic("", "x", 1), -EINVAL);
	EP_ASSERT_INT_EQ(ep_write_file_atomic("/tmp/ep_never_written", NULL, 1),
			 -EINVAL);
	EP_ASSERT_INT_EQ(access("/tmp/ep_never_written", F_OK), -1);
}

EP_TEST(mkdir_p_nested)
{
	const char *dir = make_scratch();
	EP_ASSERT_INT_EQ(ep_mkdir_p(join(dir, "a/b/c")), 0);
	struct stat st;
	EP_ASSERT_INT_EQ(stat(join(dir, "a/b/c"), &st), 0);
	EP_ASSERT(S_ISDIR(st.st_mode));
	/* Existing: still 0. Repeated and trailing slashes are fine. */
	EP_ASSERT_INT_EQ(ep_mkdir_p(join(dir, "a/b/c")), 0);
	EP_ASSERT_INT_EQ(ep_mkdir_p(join(dir, "a//b///d/")), 0);
	EP_ASSERT_INT_EQ(stat(join(dir, "a/b/d"), &st), 0);
	EP_ASSERT(S_ISDIR(st.st_mode));
	EP_ASSERT_INT_EQ(ep_mkdir_p(dir), 0);
	EP_ASSERT_INT_EQ(ep_mkdir_p("/"), 0);
	EP_ASSERT_INT_EQ(ep_mkdir_p("."), 0);
	rm_scratch();
}

EP_TEST(mkdir_p_mode)
{
	const char *dir = make_scratch();
	mode_t old = umask(0);
	int rc = ep_mkdir_p(join(dir, "m/n"));
	umask(old);
	EP_ASSERT_INT_EQ(rc, 0);
	struct stat st;
	EP_ASSERT_INT_EQ(stat(join(dir, "m"), &st), 0);
	EP_ASSERT_UINT_EQ(st.st_mode & 07777, 0755);
	EP_ASSERT_INT_EQ(stat(join(dir, "m/n"), &st), 0);
	EP_ASSERT_UINT_EQ(st.st_mode & 07777, 0755);
	rm_scratch();
}

EP_TEST(mkdir_p_file_in_the_way)
{
	const char *dir = make_scratch();
	EP_ASSERT_INT_EQ(ep_write_file_atomic(join(dir, "f"), "x", 1), 0);
	EP_ASSERT_INT_EQ(ep_mkdir_p(join(dir, "f")), -ENOTDIR);
	EP_ASSERT_INT_EQ(ep_mkdir_p(join(dir, "f/sub")), -ENOTDIR);
	EP_ASSERT_INT_EQ(ep_mkdir_p(""), -ENOENT);
	rm_scratch();
}

EP_TEST_MAIN()
