/* trace_test.c - the routing trace format: a round trip, and every refusal trace.h promises. */
#include "reference/trace.h"

#include "collectives/error.h"
#include "tests/harness.h"

/* A 2-step trace of 3 tokens, top-2 of 8 experts, with or without weights. */
static void sample(struct ep_trace *t, int32_t *ids, float *w, int weights)
{
	static const int32_t v[12] = {0, 1, 7, -1, 2, 3, 4, 5, -1, -1, 6, 0};
	memcpy(ids, v, sizeof(v));
	for (int i = 0; i < 12; i++)
		w[i] = 0.25f * (float)(i % 4);
	*t = (struct ep_trace){.layer = 3, .num_experts = 8, .num_topk = 2, .num_steps = 2, .tokens_per_step = 3,
			       .ids = ids, .weights = weights ? w : NULL};
	snprintf(t->model, sizeof(t->model), "synthetic");
}

/* Parses buf[len]; returns the code and leaves the message in err. */
static int parse(const void *buf, size_t len, char *err)
{
	struct ep_trace t;
	err[0] = 0;
	int rc = ep_trace_parse(buf, len, "t", &t, err, 256);
	ep_trace_free(&t);
	if (rc)
		EP_ASSERT(err[0] && !strchr(err, '\n'));
	return rc;
}

EP_TEST(round_trip_with_and_without_weights)
{
	for (int weights = 0; weights < 2; weights++) {
		struct ep_trace t, back;
		int32_t ids[12];
		float w[12];
		void *buf;
		size_t len;
		char err[256] = "";
		sample(&t, ids, w, weights);
		EP_ASSERT_INT_EQ(ep_trace_encode(&t, &buf, &len), 0);
		EP_ASSERT_UINT_EQ(len, 128 + 48 * (1 + weights));
		EP_ASSERT_INT_EQ(ep_trace_parse(buf, len, "t", &back, err, sizeof(err)), 0);
		EP_ASSERT_STR_EQ(back.model, "synthetic");
		EP_ASSERT_INT_EQ(back.layer, 3);
		EP_ASSERT_INT_EQ(back.num_steps, 2);
		EP_ASSERT_INT_EQ(back.tokens_per_step, 3);
		EP_ASSERT(memcmp(back.ids, ids, sizeof(ids)) == 0);
		EP_ASSERT(weights ? back.weights && memcmp(back.weights, w, sizeof(w)) == 0 : !back.weights);
		EP_ASSERT_INT_EQ((int)strlen(back.sha256), 64);
		int64_t row[2];
		ep_trace_row(&back, 1, 2, row); /* step 1, token 2: ids[10..11] */
		EP_ASSERT(row[0] == 6 && row[1] == 0);
		ep_trace_free(&back);
		free(buf);
	}
}

/* The file layout of trace.h, byte for byte: magic, fields, checksum, name. */
EP_TEST(header_layout_is_the_documented_one)
{
	struct ep_trace t;
	int32_t ids[12];
	float w[12];
	unsigned char *b;
	size_t len;
	char hex[EP_SHA256_HEX], got[EP_SHA256_HEX];
	sample(&t, ids, w, 1);
	EP_ASSERT_INT_EQ(ep_trace_encode(&t, (void **)&b, &len), 0);
	EP_ASSERT(memcmp(b, "EPTRACE\0", 8) == 0);
	EP_ASSERT(b[8] == 1 && b[12] == 1 && b[16] == 8 && b[20] == 2 && b[24] == 2 && b[28] == 3 && b[32] == 3);
	EP_ASSERT(b[36] == 0 && strcmp((char *)b + 72, "synthetic") == 0);
	EP_ASSERT(b[128] == 0 && b[132] == 1 && b[136] == 7 && b[140] == 0xff); /* ids 0, 1, 7, -1 */
	ep_sha256_of(b + 128, len - 128, hex);
	for (int i = 0; i < 32; i++)
		snprintf(got + 2 * i, 3, "%02x", b[40 + i]);
	EP_ASSERT_STR_EQ(got, hex);
	free(b);
}

EP_TEST(damaged_files_are_refused_with_one_line)
{
	struct ep_trace t;
	int32_t ids[12];
	float w[12];
	unsigned char *b, *c;
	size_t len;
	char err[256];
	sample(&t, ids, w, 1);
	EP_ASSERT_INT_EQ(ep_trace_encode(&t, (void **)&b, &len), 0);
	c = malloc(len + 4);
	memcpy(c, b, len);
	c[150] ^= 0x10; /* one body bit */
	EP_ASSERT_INT_EQ(parse(c, len, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "checksum"));
	memcpy(c, b, len);
	EP_ASSERT_INT_EQ(parse(c, len - 1, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "truncated"));
	EP_ASSERT_INT_EQ(parse(c, 100, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "header"));
	c[len] = 0;
	EP_ASSERT_INT_EQ(parse(c, len + 1, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "longer"));
	c[0] = 'X';
	EP_ASSERT_INT_EQ(parse(c, len, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "magic"));
	memcpy(c, b, len);
	c[8] = 2;
	EP_ASSERT_INT_EQ(parse(c, len, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "version 2"));
	memcpy(c, b, len);
	c[12] = 3;
	EP_ASSERT_INT_EQ(parse(c, len, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "flags 0x3"));
	memcpy(c, b, len);
	c[20] = 9; /* K > E */
	EP_ASSERT_INT_EQ(parse(c, len, err), -EP_EUSAGE);
	memcpy(c, b, len);
	memset(c + 72, 'a', 56); /* a name without its NUL */
	EP_ASSERT_INT_EQ(parse(c, len, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "NUL"));
	EP_ASSERT_INT_EQ(parse(b, 0, err), -EP_EUSAGE);
	free(c);
	free(b);
}

/* Checksums that hold over bad contents: the content checks still refuse. */
EP_TEST(bad_ids_and_weights_are_refused)
{
	struct ep_trace t;
	int32_t ids[12];
	float w[12];
	void *b;
	size_t len;
	char err[256];
	sample(&t, ids, w, 1);
	ids[5] = 8; /* step 0 token 2 slot 1 */
	EP_ASSERT_INT_EQ(ep_trace_encode(&t, &b, &len), 0);
	EP_ASSERT_INT_EQ(parse(b, len, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "step 0 token 2 slot 1 has expert 8, outside [-1, 8)"));
	free(b);
	ids[5] = 2; /* the same expert twice in a row */
	EP_ASSERT_INT_EQ(ep_trace_encode(&t, &b, &len), 0);
	EP_ASSERT_INT_EQ(parse(b, len, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "twice"));
	free(b);
	ids[5] = -2;
	EP_ASSERT_INT_EQ(ep_trace_encode(&t, &b, &len), 0);
	EP_ASSERT_INT_EQ(parse(b, len, err), -EP_EUSAGE);
	free(b);
	ids[5] = 3;
	w[7] = NAN;
	EP_ASSERT_INT_EQ(ep_trace_encode(&t, &b, &len), 0);
	EP_ASSERT_INT_EQ(parse(b, len, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "weight"));
	free(b);
	w[7] = 0; /* -1 twice in a row is no repeat */
	EP_ASSERT_INT_EQ(ep_trace_encode(&t, &b, &len), 0);
	EP_ASSERT_INT_EQ(parse(b, len, err), 0);
	free(b);
}

/* A header whose sizes overflow or exceed the limit is refused before any allocation. */
EP_TEST(huge_headers_are_refused)
{
	struct ep_trace t;
	int32_t ids[12];
	float w[12];
	unsigned char *b;
	size_t len;
	char err[256];
	sample(&t, ids, w, 0);
	EP_ASSERT_INT_EQ(ep_trace_encode(&t, (void **)&b, &len), 0);
	memset(b + 24, 0xff, 3); /* ~16M steps */
	memset(b + 28, 0xff, 3);
	EP_ASSERT_INT_EQ(parse(b, len, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "2 GiB"));
	free(b);
}

EP_TEST_MAIN()
