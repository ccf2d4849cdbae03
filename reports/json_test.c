/* json_test.c - the JSON writer's exact output, escaping, numbers and misuse. */
#include "reports/json.h"
#include "tests/harness.h"

#include <errno.h>

/* The text of j, failing the case if it has none. */
static const char *text_of(const struct ep_json *j)
{
	size_t len = 12345;
	const char *t = ep_json_text(j, &len);
	if (!t)
		EP_FAIL("no text: error %d", ep_json_error(j));
	EP_ASSERT_UINT_EQ(len, strlen(t));
	return t;
}

EP_TEST(nested_document_exact)
{
	struct ep_json *j = ep_json_new();
	EP_ASSERT(j);
	ep_json_begin_object(j, NULL);
	ep_json_string(j, "name", "dispatch");
	ep_json_int(j, "ranks", 8);
	ep_json_begin_array(j, "times_us");
	ep_json_double(j, NULL, 1.5);
	ep_json_double(j, NULL, 2.25);
	ep_json_end_array(j);
	ep_json_begin_object(j, "empty");
	ep_json_end_object(j);
	ep_json_begin_array(j, "none");
	ep_json_end_array(j);
	ep_json_bool(j, "ok", 7);
	ep_json_null(j, "note");
	ep_json_string(j, "missing", NULL);
	ep_json_uint(j, "bytes", 18446744073709551615ull);
	ep_json_int(j, "neg", -9223372036854775807ll - 1);
	ep_json_begin_array(j, "rows");
	ep_json_begin_object(j, NULL);
	ep_json_int(j, "r", 0);
	ep_json_end_object(j);
	ep_json_begin_array(j, NULL);
	ep_json_bool(j, NULL, 0);
	ep_json_end_array(j);
	ep_json_end_array(j);
	ep_json_end_object(j);
	EP_ASSERT_INT_EQ(ep_json_error(j), 0);
	EP_ASSERT_STR_EQ(text_of(j), "{\n"
				     "  \"name\": \"dispatch\",\n"
				     "  \"ranks\": 8,\n"
				     "  \"times_us\": [\n"
				     "    1.5,\n"
				     "    2.25\n"
				     "  ],\n"
				     "  \"empty\": {},\n"
				     "  \"none\": [],\n"
				     "  \"ok\": true,\n"
				     "  \"note\": null,\n"
				     "  \"missing\": null,\n"
				     "  \"bytes\": 18446744073709551615,\n"
				     "  \"neg\": -9223372036854775808,\n"
				     "  \"rows\": [\n"
				     "    {\n"
				     "      \"r\": 0\n"
				     "    },\n"
				     "    [\n"
				     "      false\n"
				     "    ]\n"
				     "  ]\n"
				     "}\n");
	ep_json_free(j);
}

EP_TEST(top_level_scalars)
{
	struct ep_json *j = ep_json_new();
	ep_json_int(j, NULL, 42);
	EP_ASSERT_STR_EQ(text_of(j), "42\n");
	ep_json_free(j);
	j = ep_json_new();
	ep_json_begin_array(j, NULL);
	ep_json_end_array(j);
	EP_ASSERT_STR_EQ(text_of(j), "[]\n");
	ep_json_free(j);
}

EP_TEST(escaping)
{
	struct ep_json *j = ep_json_new();
	ep_json_begin_object(j, NULL);
	/* é, €, and U+1F600 in UTF-8 pass through; DEL is not a control. */
	ep_json_string(j, "q\"k\n",
		       "a\"b\\c\n\t\r\b\f\x01\x1f\x7f/ "
		       "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80!");
	ep_json_string(j, "", "");
	ep_json_end_object(j);
	EP_ASSERT_STR_EQ(text_of(j),
			 "{\n"
			 "  \"q\\\"k\\n\": \"a\\\"b\\\\c\\n\\t\\r\\b\\f\\u0001\\u001f\x7f/ "
			 "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80!\",\n"
			 "  \"\": \"\"\n"
			 "}\n");
	ep_json_free(j);
}

/* The text ep_json_double() gives v, as a top-level document without its newline. */
static const char *double_text(double v)
{
	static char out[64];
	struct ep_json *j = ep_json_new();
	ep_json_double(j, NULL, v);
	const char *t = text_of(j);
	snprintf(out, sizeof(out), "%.*s", (int)strlen(t) - 1, t);
	ep_json_free(j);
	return out;
}

EP_TEST(doubles_shortest_form)
{
	EP_ASSERT_STR_EQ(double_text(0.1), "0.1");
	EP_ASSERT_STR_EQ(double_text(-2.5), "-2.5");
	EP_ASSERT_STR_EQ(double_text(3.0), "3");
	EP_ASSERT_STR_EQ(double_text(1e300), "1e+300");
	EP_ASSERT_STR_EQ(double_text(1e-7), "1e-07");
	EP_ASSERT_STR_EQ(double_text(-0.0), "-0");
	EP_ASSERT_STR_EQ(double_text(1.0 / 3.0), "0.3333333333333333"); /* 16 */
	EP_ASSERT_STR_EQ(double_text(0.1 + 0.2), "0.30000000000000004"); /* 17 */
}

/* Whatever the value, the text reads back bit for bit. */
EP_TEST(doubles_round_trip)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		double v;
		memcpy(&v, &x, sizeof(v));
		if (!isfinite(v))
			continue;
		double back = strtod(double_text(v), NULL);
		if (memcmp(&back, &v, sizeof(v)) != 0)
			EP_FAIL("%a printed as %s reads back as %a", v,
				double_text(v), back);
	}
}

EP_TEST(non_finite_is_null)
{
	struct ep_json *j = ep_json_new();
	ep_json_begin_object(j, NULL);
	ep_json_double(j, "nan", NAN);
	ep_json_double(j, "inf", INFINITY);
	ep_json_double(j, "ninf", -INFINITY);
	ep_json_end_object(j);
	EP_ASSERT_STR_EQ(text_of(j), "{\n"
				     "  \"nan\": null,\n"
				     "  \"inf\": null,\n"
				     "  \"ninf\": null\n"
				     "}\n");
	ep_json_free(j);
}

/* A writer that has been misused: error -EINVAL, no text, and it stays so. */
static void expect_misuse(struct ep_json *j)
{
	EP_ASSERT_INT_EQ(ep_json_error(j), -EINVAL);
	size_t len = 99;
	EP_ASSERT(ep_json_text(j, &len) == NULL);
	EP_ASSERT_UINT_EQ(len, 0);
	ep_json_end_object(j); /* ignored, error unchanged */
	ep_json_end_array(j);
	EP_ASSERT_INT_EQ(ep_json_error(j), -EINVAL);
	EP_ASSERT(ep_json_text(j, NULL) == NULL);
	ep_json_free(j);
}

EP_TEST(misuse_key_in_array)
{
	struct ep_json *j = ep_json_new();
	ep_json_begin_array(j, NULL);
	ep_json_int(j, "k", 1);
	expect_misuse(j);
}

EP_TEST(misuse_missing_key_in_object)
{
	struct ep_json *j = ep_json_new();
	ep_json_begin_object(j, NULL);
	ep_json_int(j, NULL, 1);
	expect_misuse(j);
	j = ep_json_new();
	ep_json_begin_object(j, NULL);
	ep_json_begin_array(j, NULL);
	expect_misuse(j);
}

EP_TEST(misuse_key_at_top_level)
{
	struct ep_json *j = ep_json_new();
	ep_json_begin_object(j, "k");
	expect_misuse(j);
}

EP_TEST(misuse_unbalanced_end)
{
	struct ep_json *j = ep_json_new();
	ep_json_end_object(j);
	expect_misuse(j);
	j = ep_json_new();
	ep_json_begin_object(j, NULL);
	ep_json_end_array(j);
	expect_misuse(j);
	j = ep_json_new();
	ep_json_begin_array(j, NULL);
	ep_json_end_array(j);
	ep_json_end_array(j);
	expect_misuse(j);
}

EP_TEST(misuse_second_top_level_value)
{
	struct ep_json *j = ep_json_new();
	ep_json_int(j, NULL, 1);
	ep_json_int(j, NULL, 2);
	expect_misuse(j);
}

EP_TEST(misuse_is_sticky)
{
	struct ep_json *j = ep_json_new();
	ep_json_begin_object(j, NULL);
	ep_json_int(j, NULL, 1); /* misuse */
	ep_json_int(j, "a", 1);  /* fine on its own, ignored now */
	ep_json_end_object(j);
	expect_misuse(j);
}

/* Unfinished documents have no text yet, but are not errors. */
EP_TEST(incomplete_has_no_text)
{
	struct ep_json *j = ep_json_new();
	EP_ASSERT(ep_json_text(j, NULL) == NULL); /* nothing written */
	ep_json_begin_object(j, NULL);
	ep_json_begin_array(j, "a");
	ep_json_int(j, NULL, 1);
	EP_ASSERT(ep_json_text(j, NULL) == NULL);
	ep_json_end_array(j);
	EP_ASSERT(ep_json_text(j, NULL) == NULL);
	EP_ASSERT_INT_EQ(ep_json_error(j), 0);
	ep_json_end_object(j);
	EP_ASSERT_STR_EQ(text_of(j), "{\n  \"a\": [\n    1\n  ]\n}\n");
	ep_json_free(j);
}

/* What ep_json_new() returns on ENOMEM is accepted everywhere. */
EP_TEST(null_writer)
{
	struct ep_json *j = NULL;
	ep_json_begin_object(j, NULL);
	ep_json_string(j, "a", "b");
	ep_json_int(j, "a", 1);
	ep_json_uint(j, "a", 1);
	ep_json_double(j, "a", 1);
	ep_json_bool(j, "a", 1);
	ep_json_null(j, "a");
	ep_json_begin_array(j, "a");
	ep_json_end_array(j);
	ep_json_end_object(j);
	EP_ASSERT_INT_EQ(ep_json_error(j), -ENOMEM);
	EP_ASSERT(ep_json_text(j, NULL) == NULL);
	ep_json_free(j);
}

/* 100000 rows, far past the initial buffer; compared with the same text
 * built by snprintf. */
EP_TEST(large_document)
{
	enum { N = 100000 };
	struct ep_json *j = ep_json_new();
	ep_json_begin_array(j, NULL);
	for (int i = 0; i < N; i++) {
		char s[32];
		snprintf(s, sizeof(s), "row %d", i);
		ep_json_begin_object(j, NULL);
		ep_json_int(j, "i", i);
		ep_json_string(j, "s", s);
		ep_json_end_object(j);
	}
	ep_json_end_array(j);

	size_t cap = (size_t)N * 64 + 16, n = 0;
	char *want = malloc(cap);
	EP_ASSERT(want);
	n += (size_t)snprintf(want + n, cap - n, "[\n");
	for (int i = 0; i < N; i++)
		n += (size_t)snprintf(want + n, cap - n,
				      "  {\n    \"i\": %d,\n    \"s\": \"row %d\"\n  }%s\n",
				      i, i, i + 1 < N ? "," : "");
	n += (size_t)snprintf(want + n, cap - n, "]\n");

	size_t len;
	const char *t = ep_json_text(j, &len);
	EP_ASSERT(t);
	EP_ASSERT_UINT_EQ(len, n);
	EP_ASSERT(memcmp(t, want, n) == 0);
	free(want);
	ep_json_free(j);
}

/* Python's json module accepts the document and reads back the values. */
EP_TEST(python_parses)
{
	if (system("command -v python3 >/dev/null 2>&1") != 0)
		EP_SKIP("python3 not found");
	struct ep_json *j = ep_json_new();
	ep_json_begin_object(j, NULL);
	ep_json_string(j, "s", "a\"b\\\n\x01\xc3\xa9");
	ep_json_double(j, "x", 0.1);
	ep_json_double(j, "third", 1.0 / 3.0);
	ep_json_double(j, "nan", NAN);
	ep_json_uint(j, "big", 18446744073709551615ull);
	ep_json_begin_array(j, "a");
	ep_json_bool(j, NULL, 1);
	ep_json_begin_object(j, NULL);
	ep_json_end_object(j);
	ep_json_begin_array(j, NULL);
	ep_json_int(j, NULL, -3);
	ep_json_end_array(j);
	ep_json_end_array(j);
	ep_json_end_object(j);
	size_t len;
	const char *t = ep_json_text(j, &len);
	EP_ASSERT(t);

	FILE *py = popen("python3 -c '"
			 "import json, sys\n"
			 "d = json.load(sys.stdin)\n"
			 "assert d[\"s\"] == \"a\\\"b\\\\\\n\\x01\\u00e9\", d[\"s\"]\n"
			 "assert d[\"x\"] == 0.1 and d[\"third\"] == 1 / 3\n"
			 "assert d[\"nan\"] is None and d[\"big\"] == 2 ** 64 - 1\n"
			 "assert d[\"a\"] == [True, {}, [-3]]\n"
			 "'",
			 "w");
	EP_ASSERT(py);
	EP_ASSERT_UINT_EQ(fwrite(t, 1, len, py), len);
	int status = pclose(py);
	EP_ASSERT(WIFEXITED(status));
	EP_ASSERT_INT_EQ(WEXITSTATUS(status), 0);
	ep_json_free(j);
}

EP_TEST_MAIN()
