/* inputs_test.c - seed-derived routing and payload properties. */
#include "reference/inputs.h"

#include "collectives/error.h"
#include "collectives/numeric.h"
#include "tests/harness.h"

static struct ep_shape shape(int R, int T, int K, int E)
{
	return (struct ep_shape){.num_ranks = R, .num_tokens = T, .hidden = 256, .num_topk = K,
				 .num_experts = E, .with_topk = 1};
}

EP_TEST(uniform_distinct_in_range_and_deterministic)
{
	struct ep_shape s = shape(4, 500, 8, 64);
	struct ep_routing r = {.kind = EP_ROUTE_UNIFORM};
	int64_t a[500 * 8], b[500 * 8], c[500 * 8];
	float wa[500 * 8], wb[500 * 8], wc[500 * 8];
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &r, 42, 1, a, wa), 0);
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &r, 42, 1, b, wb), 0);
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &r, 42, 2, c, wc), 0);
	EP_ASSERT(memcmp(a, b, sizeof(a)) == 0 && memcmp(wa, wb, sizeof(wa)) == 0);
	EP_ASSERT(memcmp(a, c, sizeof(a)) != 0);
	int hist[64] = {0};
	for (int t = 0; t < 500; t++)
		for (int j = 0; j < 8; j++) {
			int64_t e = a[t * 8 + j];
			EP_ASSERT(e >= 0 && e < 64);
			EP_ASSERT(wa[t * 8 + j] > 0.0f && wa[t * 8 + j] < 1.0f);
			hist[e]++;
			for (int k = 0; k < j; k++)
				EP_ASSERT(a[t * 8 + k] != e);
		}
	for (int e = 0; e < 64; e++) /* 62.5 expected per expert */
		EP_ASSERT(hist[e] > 25 && hist[e] < 110);
}

EP_TEST(masked_ratio_one_masks_everything)
{
	struct ep_shape s = shape(2, 50, 4, 8);
	struct ep_routing r = {.kind = EP_ROUTE_UNIFORM, .masked_ratio = 1.0};
	int64_t a[200];
	float w[200];
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &r, 1, 0, a, w), 0);
	for (int i = 0; i < 200; i++)
		EP_ASSERT_INT_EQ(a[i], -1);
}

EP_TEST(hot_expert_first_and_zipf_skewed)
{
	struct ep_shape s = shape(2, 200, 3, 16);
	struct ep_routing hot = {.kind = EP_ROUTE_HOT, .hot_expert = 9};
	struct ep_routing zipf = {.kind = EP_ROUTE_ZIPF, .zipf_s = 2.0};
	int64_t a[600];
	float w[600];
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &hot, 3, 0, a, w), 0);
	for (int t = 0; t < 200; t++) {
		EP_ASSERT_INT_EQ(a[t * 3], 9);
		EP_ASSERT(a[t * 3 + 1] != 9 && a[t * 3 + 2] != 9);
	}
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &zipf, 3, 0, a, w), 0);
	int first = 0, last = 0;
	for (int i = 0; i < 600; i++) {
		first += a[i] == 0;
		last += a[i] == 15;
	}
	EP_ASSERT(first > 170); /* P(0) = 0.63 per draw: in nearly every token */
	EP_ASSERT(last < 40);
}

EP_TEST(group_limited_uses_at_most_topk_groups)
{
	struct ep_shape s = shape(8, 300, 8, 64);
	struct ep_routing r = {.kind = EP_ROUTE_UNIFORM, .num_groups = 8, .num_topk_groups = 2};
	int64_t a[300 * 8];
	float w[300 * 8];
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &r, 5, 3, a, w), 0);
	for (int t = 0; t < 300; t++) {
		int groups[8] = {0}, n = 0;
		for (int j = 0; j < 8; j++)
			if (!groups[a[t * 8 + j] / 8]++)
				n++;
		EP_ASSERT(n <= 2);
	}
}

EP_TEST(payload_finite_bounded_and_seed_dependent)
{
	uint16_t a[1000], b[1000];
	ep_gen_bf16_row(1, EP_PAYLOAD_NARROW, EP_STREAM_X, 0, 0, 1000, a);
	ep_gen_bf16_row(2, EP_PAYLOAD_NARROW, EP_STREAM_X, 0, 0, 1000, b);
	EP_ASSERT(memcmp(a, b, sizeof(a)) != 0);
	ep_gen_bf16_row(1, EP_PAYLOAD_NARROW, EP_STREAM_BIAS0, 0, 0, 1000, b);
	EP_ASSERT(memcmp(a, b, sizeof(a)) != 0);
	int neg = 0;
	for (int i = 0; i < 1000; i++) {
		float v = ep_bf16_to_f32(a[i]);
		EP_ASSERT(isfinite(v));
		EP_ASSERT(fabsf(v) >= 1.0f / 128 && fabsf(v) < 2.0f);
		neg += v < 0;
	}
	EP_ASSERT(neg > 400 && neg < 600);
}

EP_TEST(routing_file_errors_name_line_and_value)
{
	char path[] = "/tmp/ep_routing_XXXXXX";
	int fd = mkstemp(path);
	EP_ASSERT(fd >= 0);
	const char text[] = "# comment\n1 2\n\n3 9\n";
	EP_ASSERT(write(fd, text, sizeof(text) - 1) == (ssize_t)(sizeof(text) - 1));
	close(fd);
	int64_t *rows = NULL;
	size_t n = 0;
	char err[256];
	EP_ASSERT_INT_EQ(ep_load_routing_file(path, 2, 8, &rows, &n, err, sizeof(err)), -EP_EUSAGE);
	EP_ASSERT(strstr(err, ":4:") && strstr(err, "'9'"));
	EP_ASSERT_INT_EQ(ep_load_routing_file(path, 2, 16, &rows, &n, err, sizeof(err)), 0);
	EP_ASSERT_INT_EQ(n, 2);
	EP_ASSERT_INT_EQ(rows[3], 9);
	free(rows);
	EP_ASSERT_INT_EQ(ep_load_routing_file(path, 3, 16, &rows, &n, err, sizeof(err)), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "2 entries, want 3"));
	unlink(path);
}

EP_TEST_MAIN()
