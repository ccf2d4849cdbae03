/* npy_test.c - .npy headers byte for byte, shapes, errors, and numpy reading them. */
#define _GNU_SOURCE /* nftw */
#include "reports/npy.h"
#include "collectives/error.h"
#include "tests/harness.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>

static char scratch[] = "/tmp/ep_npy_test.XXXXXX";

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
static void make_scratch(void)
{
	if (!mkdtemp(scratch))
		EP_FAIL("mkdtemp: %s", strerror(errno));
	atexit(rm_scratch);
}

/* scratch + "/" + name, in a ring of buffers. */
static const char *path_of(const char *name)
{
	static char buf[4][256];
	static unsigned next;
	char *b = buf[next++ % 4];
	if ((size_t)snprintf(b, sizeof(buf[0]), "%s/%s", scratch, name) >=
	    sizeof(buf[0]))
		EP_FAIL("path too long: %s", name);
	return b;
}

/* The whole file, malloc'ed; *len gets its size. */
static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		EP_FAIL("fopen %s: %s", path, strerror(errno));
	size_t cap = 1 << 16, n = 0;
	unsigned char *buf = malloc(cap);
	for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
		n += got;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
	}
	fclose(f);
	EP_ASSERT(buf);
	*len = n;
	return buf;
}

static int entries_in_scratch(void)
{
	DIR *d = opendir(scratch);
	EP_ASSERT(d);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

/* Checks the fixed parts of a header and returns the data offset. */
static size_t check_prefix(const unsigned char *buf, size_t len)
{
	EP_ASSERT(len >= 64);
	EP_ASSERT(memcmp(buf, "\x93NUMPY\x01\x00", 8) == 0);
	size_t offset = 10 + (buf[8] | (size_t)buf[9] << 8);
	EP_ASSERT_UINT_EQ(offset % 64, 0);
	EP_ASSERT(offset <= len);
	EP_ASSERT_INT_EQ(buf[offset - 1], '\n');
	return offset;
}

/* A 3x4 '<u2' array. The dict is 59 characters:
 *   {'descr': '<u2', 'fortran_order': False, 'shape': (3, 4), }
 * 10 + 59 + 1 ('\n') = 70, so 58 spaces pad the header to 128 and the
 * header length field is 128 - 10 = 118 = 0x76. */
EP_TEST(header_exact)
{
	make_scratch();
	uint16_t data[12];
	for (int i = 0; i < 12; i++)
		data[i] = (uint16_t)(0x0102 * i + 0x8000);
	size_t shape[] = {3, 4};
	EP_ASSERT_INT_EQ(ep_npy_write(path_of("a.npy"), EP_NPY_U2, shape, 2, data), 0);

	unsigned char want[128];
	memcpy(want, "\x93NUMPY\x01\x00\x76\x00", 10);
	const char *dict = "{'descr': '<u2', 'fortran_order': False, 'shape': (3, 4), }";
	EP_ASSERT_UINT_EQ(strlen(dict), 59);
	memcpy(want + 10, dict, 59);
	memset(want + 69, ' ', 58);
	want[127] = '\n';

	size_t len;
	unsigned char *buf = slurp(path_of("a.npy"), &len);
	EP_ASSERT_UINT_EQ(len, 128 + 24);
	for (size_t i = 0; i < 128; i++)
		if (buf[i] != want[i])
			EP_FAIL("header byte %zu: 0x%02x, want 0x%02x", i,
				buf[i], want[i]);
	EP_ASSERT_UINT_EQ(check_prefix(buf, len), 128);
	/* Data at 128, little-endian. */
	for (int i = 0; i < 12; i++)
		EP_ASSERT_UINT_EQ(buf[128 + 2 * i] | buf[128 + 2 * i + 1] << 8,
				  data[i]);
	free(buf);
	EP_ASSERT_INT_EQ(entries_in_scratch(), 1);
	rm_scratch();
}

/* Reads back the dict of path (without padding) and the data offset. */
static size_t read_dict(const char *path, char *dict, size_t cap,
			unsigned char **data, size_t *data_len)
{
	size_t len;
	unsigned char *buf = slurp(path, &len);
	size_t offset = check_prefix(buf, len);
	size_t end = offset - 1;
	while (end > 10 && buf[end - 1] == ' ')
		end--;
	EP_ASSERT(end - 10 < cap);
	memcpy(dict, buf + 10, end - 10);
	dict[end - 10] = '\0';
	*data_len = len - offset;
	*data = malloc(*data_len + 1);
	memcpy(*data, buf + offset, *data_len);
	free(buf);
	return offset;
}

EP_TEST(one_d)
{
	make_scratch();
	int32_t v[5] = {-1, 0, 1, 2147483647, -2147483647 - 1};
	size_t shape[] = {5};
	EP_ASSERT_INT_EQ(ep_npy_write(path_of("v.npy"), EP_NPY_I4, shape, 1, v), 0);
	char dict[256];
	unsigned char *data;
	size_t n;
	EP_ASSERT_UINT_EQ(read_dict(path_of("v.npy"), dict, sizeof(dict), &data, &n), 128);
	EP_ASSERT_STR_EQ(dict, "{'descr': '<i4', 'fortran_order': False, 'shape': (5,), }");
	EP_ASSERT_UINT_EQ(n, sizeof(v));
	EP_ASSERT(memcmp(data, v, sizeof(v)) == 0);
	free(data);
	rm_scratch();
}

EP_TEST(zero_d)
{
	make_scratch();
	float x = 1.5f;
	EP_ASSERT_INT_EQ(ep_npy_write(path_of("s.npy"), EP_NPY_F4, NULL, 0, &x), 0);
	char dict[256];
	unsigned char *data;
	size_t n;
	EP_ASSERT_UINT_EQ(read_dict(path_of("s.npy"), dict, sizeof(dict), &data, &n), 128);
	EP_ASSERT_STR_EQ(dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }");
	EP_ASSERT_UINT_EQ(n, 4);
	EP_ASSERT(memcmp(data, "\x00\x00\xc0\x3f", 4) == 0);
	free(data);
	rm_scratch();
}

/* Zero-size arrays need no data pointer and have no data bytes, even when
 * the other dims multiply past SIZE_MAX. */
EP_TEST(zero_size)
{
	make_scratch();
	size_t shape[] = {0, 3};
	EP_ASSERT_INT_EQ(ep_npy_write(path_of("e.npy"), EP_NPY_U1, shape, 2, NULL), 0);
	char dict[256];
	unsigned char *data;
	size_t n;
	EP_ASSERT_UINT_EQ(read_dict(path_of("e.npy"), dict, sizeof(dict), &data, &n), 128);
	EP_ASSERT_STR_EQ(dict, "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 3), }");
	EP_ASSERT_UINT_EQ(n, 0);
	free(data);

	size_t empty1[] = {0};
	EP_ASSERT_INT_EQ(ep_npy_write(path_of("e1.npy"), EP_NPY_I8, empty1, 1, NULL), 0);
	read_dict(path_of("e1.npy"), dict, sizeof(dict), &data, &n);
	EP_ASSERT_STR_EQ(dict, "{'descr': '<i8', 'fortran_order': False, 'shape': (0,), }");
	EP_ASSERT_UINT_EQ(n, 0);
	free(data);

	size_t huge[] = {(size_t)1 << 40, (size_t)1 << 40, 0};
	EP_ASSERT_INT_EQ(ep_npy_write(path_of("h.npy"), EP_NPY_BOOL, huge, 3, NULL), 0);
	rm_scratch();
}

/* 11 + 53 + 64 = 128: a 64-character shape needs no padding at all. */
EP_TEST(no_padding_needed)
{
	make_scratch();
	size_t shape[] = {0, 12345678901234567890u, 12345678901234567890u,
			  123456789012345u};
	EP_ASSERT_INT_EQ(ep_npy_write(path_of("p.npy"), EP_NPY_I1, shape, 4, NULL), 0);
	size_t len;
	unsigned char *buf = slurp(path_of("p.npy"), &len);
	EP_ASSERT_UINT_EQ(len, 128);
	EP_ASSERT_UINT_EQ(check_prefix(buf, len), 128);
	EP_ASSERT(memcmp(buf + 10 + 117 - 3, ", }\n", 4) == 0);
	free(buf);
	rm_scratch();
}

/* Every dtype and ndim: data offset a multiple of 64, right size. */
EP_TEST(all_dtypes_and_ranks)
{
	make_scratch();
	static const char *descr[] = {"|b1", "|u1", "|i1", "<u2", "<i4", "<i8", "<f4"};
	static const size_t size[] = {1, 1, 1, 2, 4, 8, 4};
	unsigned char data[2 * 3 * 4 * 5 * 8];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i & 1); /* valid bools too */
	size_t shape[] = {2, 3, 4, 5};
	for (int t = EP_NPY_BOOL; t <= EP_NPY_F4; t++) {
		EP_ASSERT_UINT_EQ(ep_npy_itemsize(t), size[t]);
		for (int nd = 0; nd <= 4; nd++) {
			size_t count = 1;
			for (int i = 0; i < nd; i++)
				count *= shape[i];
			EP_ASSERT_INT_EQ(ep_npy_write(path_of("t.npy"), t, shape, nd, data), 0);
			char dict[256];
			unsigned char *back;
			size_t n;
			read_dict(path_of("t.npy"), dict, sizeof(dict), &back, &n);
			EP_ASSERT(strstr(dict, descr[t]));
			EP_ASSERT_UINT_EQ(n, count * size[t]);
			EP_ASSERT(memcmp(back, data, n) == 0);
			free(back);
		}
	}
	EP_ASSERT_UINT_EQ(ep_npy_itemsize((enum ep_npy_dtype)99), 0);
	EP_ASSERT_INT_EQ(entries_in_scratch(), 1);
	rm_scratch();
}

EP_TEST(bad_arguments)
{
	make_scratch();
	const char *p = path_of("bad.npy");
	size_t shape[] = {1, 1, 1, 1, 1};
	char d[8] = {0};
	EP_ASSERT_INT_EQ(ep_npy_write(p, EP_NPY_U1, shape, 5, d), -EINVAL);
	EP_ASSERT_INT_EQ(ep_npy_write(p, EP_NPY_U1, shape, -1, d), -EINVAL);
	EP_ASSERT_INT_EQ(ep_npy_write(p, (enum ep_npy_dtype)7, shape, 1, d), -EINVAL);
	EP_ASSERT_INT_EQ(ep_npy_write(p, EP_NPY_U1, NULL, 1, d), -EINVAL);
	EP_ASSERT_INT_EQ(ep_npy_write(p, EP_NPY_U1, shape, 1, NULL), -EINVAL);
	EP_ASSERT_INT_EQ(ep_npy_write(NULL, EP_NPY_U1, shape, 1, d), -EINVAL);
	size_t big[] = {(size_t)1 << 40, (size_t)1 << 40};
	EP_ASSERT_INT_EQ(ep_npy_write(p, EP_NPY_U1, big, 2, d), -EOVERFLOW);
	size_t big2[] = {SIZE_MAX / 2 + 1}; /* fits as a count, not as bytes */
	EP_ASSERT_INT_EQ(ep_npy_write(p, EP_NPY_U2, big2, 1, d), -EOVERFLOW);
	EP_ASSERT_INT_EQ(ep_npy_write(path_of("no/such.npy"), EP_NPY_U1, shape, 1, d), -ENOENT);
	EP_ASSERT_INT_EQ(entries_in_scratch(), 0);
	rm_scratch();
}

/* Python reads the header dict as the literal it claims to be (no numpy
 * needed), and the header length matches. */
EP_TEST(python_reads_header)
{
	if (system("command -v python3 >/dev/null 2>&1") != 0)
		EP_SKIP("python3 not found");
	make_scratch();
	size_t shape[] = {7, 1, 3};
	int64_t v[21] = {0};
	EP_ASSERT_INT_EQ(ep_npy_write(path_of("h.npy"), EP_NPY_I8, shape, 3, v), 0);
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "python3 -c '"
		 "import ast, struct, sys\n"
		 "b = open(sys.argv[1], \"rb\").read()\n"
		 "assert b[:8] == b\"\\x93NUMPY\\x01\\x00\"\n"
		 "(n,) = struct.unpack(\"<H\", b[8:10])\n"
		 "assert (10 + n) %% 64 == 0 and b[9 + n] == 10\n"
		 "d = ast.literal_eval(b[10:10 + n].decode(\"latin1\"))\n"
		 "assert d == {\"descr\": \"<i8\", \"fortran_order\": False, \"shape\": (7, 1, 3)}, d\n"
		 "assert len(b) == 10 + n + 21 * 8\n"
		 "' %s",
		 path_of("h.npy"));
	EP_ASSERT_INT_EQ(system(cmd), 0);
	rm_scratch();
}

/* numpy loads every dtype and shape with the values written. */
EP_TEST(numpy_loads)
{
	if (system("python3 -c 'import numpy' >/dev/null 2>&1") != 0)
		EP_SKIP("python3 with numpy not available (python3 -c 'import numpy' failed)");
	make_scratch();
	uint16_t u2[12];
	for (int i = 0; i < 12; i++)
		u2[i] = (uint16_t)(1000 * i + 7);
	size_t s34[] = {3, 4};
	EP_ASSERT_INT_EQ(ep_npy_write(path_of("u2.npy"), EP_NPY_U2, s34, 2, u2), 0);
	int32_t i4[] = {-5, 0, 2147483647};
	size_t s3[] = {3};
	EP_ASSERT_INT_EQ(ep_npy_write(path_of("i4.npy"), EP_NPY_I4, s3, 1, i4), 0);
	float f4 = -0.25f;
	EP_ASSERT_INT_EQ(ep_npy_write(path_of("f4.npy"), EP_NPY_F4, NULL, 0, &f4), 0);
	unsigned char b1[] = {1, 0, 0, 1, 1, 0};
	size_t s1232[] = {1, 2, 3, 1};
	EP_ASSERT_INT_EQ(ep_npy_write(path_of("b1.npy"), EP_NPY_BOOL, s1232, 4, b1), 0);
	int64_t i8[] = {-9223372036854775807ll - 1, 1};
	size_t s21[] = {2, 1};
	EP_ASSERT_INT_EQ(ep_npy_write(path_of("i8.npy"), EP_NPY_I8, s21, 2, i8), 0);
	int8_t i1[] = {-128, 127};
	size_t s2[] = {2};
	EP_ASSERT_INT_EQ(ep_npy_write(path_of("i1.npy"), EP_NPY_I1, s2, 1, i1), 0);
	size_t s05[] = {0, 5};
	EP_ASSERT_INT_EQ(ep_npy_write(path_of("e.npy"), EP_NPY_U1, s05, 2, NULL), 0);

	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
		 "cd %s && python3 -c '"
		 "import numpy as np\n"
		 "a = np.load(\"u2.npy\")\n"
		 "assert a.dtype == np.uint16 and a.shape == (3, 4)\n"
		 "assert (a.ravel() == np.arange(12) * 1000 + 7).all(), a\n"
		 "a = np.load(\"i4.npy\")\n"
		 "assert a.dtype == np.int32 and a.tolist() == [-5, 0, 2147483647], a\n"
		 "a = np.load(\"f4.npy\")\n"
		 "assert a.dtype == np.float32 and a.shape == () and a == -0.25, a\n"
		 "a = np.load(\"b1.npy\")\n"
		 "assert a.dtype == np.bool_ and a.shape == (1, 2, 3, 1)\n"
		 "assert a.ravel().tolist() == [True, False, False, True, True, False]\n"
		 "a = np.load(\"i8.npy\")\n"
		 "assert a.dtype == np.int64 and a.tolist() == [[-2 ** 63], [1]], a\n"
		 "a = np.load(\"i1.npy\")\n"
		 "assert a.dtype == np.int8 and a.tolist() == [-128, 127], a\n"
		 "a = np.load(\"e.npy\")\n"
		 "assert a.dtype == np.uint8 and a.shape == (0, 5), a\n"
		 "'",
		 scratch);
	EP_ASSERT_INT_EQ(system(cmd), 0);
	rm_scratch();
}

/* Written, read back: every dtype and rank. */
EP_TEST(read_round_trip)
{
	make_scratch();
	int64_t i8[6] = {-1, 0, 1, 2, 3, 1ll << 40};
	size_t s23[] = {2, 3}, s0[] = {0};
	char err[256];
	struct ep_npy a;
	EP_ASSERT_INT_EQ(ep_npy_write(path_of("i8.npy"), EP_NPY_I8, s23, 2, i8), 0);
	EP_ASSERT_INT_EQ(ep_npy_read(path_of("i8.npy"), 1 << 20, &a, err, sizeof(err)), 0);
	EP_ASSERT(a.dtype == EP_NPY_I8 && a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3 && a.count == 6);
	EP_ASSERT(memcmp(a.data, i8, sizeof(i8)) == 0);
	ep_npy_free(&a);
	EP_ASSERT_INT_EQ(ep_npy_write(path_of("e.npy"), EP_NPY_F4, s0, 1, NULL), 0);
	EP_ASSERT_INT_EQ(ep_npy_read(path_of("e.npy"), 1 << 20, &a, err, sizeof(err)), 0);
	EP_ASSERT(a.ndim == 1 && a.count == 0 && a.data);
	ep_npy_free(&a);
	float f = 2.5f;
	EP_ASSERT_INT_EQ(ep_npy_write(path_of("s.npy"), EP_NPY_F4, NULL, 0, &f), 0);
	EP_ASSERT_INT_EQ(ep_npy_read(path_of("s.npy"), 1 << 20, &a, err, sizeof(err)), 0);
	EP_ASSERT(a.ndim == 0 && a.count == 1 && *(float *)a.data == 2.5f);
	ep_npy_free(&a);
	rm_scratch();
}

/* parse(bytes) must fail with a line containing want. */
static void refused(const char *bytes, size_t len, const char *want)
{
	struct ep_npy a;
	char err[256] = "";
	EP_ASSERT_INT_EQ(ep_npy_parse(bytes, len, "t.npy", &a, err, sizeof(err)), -EP_EUSAGE);
	if (!strstr(err, want))
		EP_FAIL("error '%s' does not say '%s'", err, want);
}

/* A format 1.0 file of header dict and data, into out; its length. */
static size_t npy_bytes(const char *dict, const void *data, size_t n, char *out)
{
	size_t hl = strlen(dict);
	memcpy(out, "\x93NUMPY\x01\x00", 8);
	out[8] = (char)(hl & 0xff), out[9] = (char)(hl >> 8);
	memcpy(out + 10, dict, hl);
	memcpy(out + 10 + hl, data, n);
	return 10 + hl + n;
}

EP_TEST(read_refuses_what_it_cannot_hold)
{
	static const char two[] = "\1\0\2\0", four[] = "\1\0\2\0";
	char b[512];
	struct ep_npy a;
	char err[256];
	size_t n = npy_bytes("{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }\n", two, 4, b);
	EP_ASSERT_INT_EQ(ep_npy_parse(b, n, "t.npy", &a, err, sizeof(err)), 0);
	EP_ASSERT(a.count == 2 && ((uint16_t *)a.data)[1] == 2);
	ep_npy_free(&a);
	refused("hello", 5, "not a .npy file");
	refused(b, 30, "truncated in its header");
	refused(b, n - 1, "truncated");
	b[n] = 0;
	refused(b, n + 1, "trailing bytes");
	n = npy_bytes("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }\n", two, 4, b);
	refused(b, n, "dtype '<f2'");
	n = npy_bytes("{'descr': '>u2', 'fortran_order': False, 'shape': (2,), }\n", two, 4, b);
	refused(b, n, "dtype '>u2'");
	n = npy_bytes("{'descr': '<u2', 'fortran_order': True, 'shape': (2,), }\n", two, 4, b);
	refused(b, n, "Fortran order");
	n = npy_bytes("{'descr': '<u2', 'fortran_order': False, 'shape': (2,1,1,1,1), }\n", two, 4, b);
	refused(b, n, "shape");
	n = npy_bytes("{'descr': '|b1', 'fortran_order': False, 'shape': (4,), }\n", four, 4, b);
	refused(b, n, "neither 0 nor 1");
	n = npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }\n", "", 0, b);
	refused(b, n, "too large");
	n = npy_bytes("{'fortran_order': False, 'shape': (2,), }\n", two, 4, b);
	refused(b, n, "no 'descr'");
}

/* Files numpy writes (format 1.0, and 2.0 when asked) read back. */
EP_TEST(read_what_numpy_writes)
{
	if (system("python3 -c 'import numpy' >/dev/null 2>&1") != 0)
		EP_SKIP("python3 with numpy not available (python3 -c 'import numpy' failed)");
	make_scratch();
	char cmd[1024], err[256];
	snprintf(cmd, sizeof(cmd),
		 "cd %s && python3 -c 'import numpy as np, numpy.lib.format as f\n"
		 "np.save(\"a.npy\", np.arange(12, dtype=np.int32).reshape(3, 4))\n"
		 "np.save(\"b.npy\", np.array([True, False]))\n"
		 "f.write_array(open(\"c.npy\", \"wb\"), np.arange(3, dtype=np.float32), version=(2, 0))'",
		 scratch);
	EP_ASSERT_INT_EQ(system(cmd), 0);
	struct ep_npy a;
	EP_ASSERT_INT_EQ(ep_npy_read(path_of("a.npy"), 1 << 20, &a, err, sizeof(err)), 0);
	EP_ASSERT(a.dtype == EP_NPY_I4 && a.shape[0] == 3 && a.shape[1] == 4 && ((int32_t *)a.data)[11] == 11);
	ep_npy_free(&a);
	EP_ASSERT_INT_EQ(ep_npy_read(path_of("b.npy"), 1 << 20, &a, err, sizeof(err)), 0);
	EP_ASSERT(a.dtype == EP_NPY_BOOL && a.count == 2);
	ep_npy_free(&a);
	EP_ASSERT_INT_EQ(ep_npy_read(path_of("c.npy"), 1 << 20, &a, err, sizeof(err)), 0);
	EP_ASSERT(a.dtype == EP_NPY_F4 && ((float *)a.data)[2] == 2.0f);
	ep_npy_free(&a);
	EP_ASSERT_INT_EQ(ep_npy_read(scratch, 1 << 20, &a, err, sizeof(err)), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "is a directory"));
	rm_scratch();
}

EP_TEST_MAIN()
