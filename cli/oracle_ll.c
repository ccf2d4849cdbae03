/* oracle_ll.c - golden and verify for low-latency mode (see oracle.h).
 *
 * The packed tensors are written and read in the --dump layout:
 * packed_recv_x [L][R*N][H], packed_recv_x_scales [L][R*N][S] (row-major,
 * float, or int32 words of four UE8M0 bytes), packed_recv_count [L],
 * packed_recv_src_info [L][R*N], packed_recv_layout_range [L][R]; only the
 * first packed_recv_count[e] rows of expert e are defined. DeepEP's receive
 * order inside an expert depends on timing; with order_any, verify first
 * puts every expert's rows in epbench's canonical order (source ranks
 * ascending, then source token, as packed_recv_layout_range and
 * packed_recv_src_info say where each row came from), then compares exactly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ll_packed.h"
#include "cli/low_latency.h"
#include "cli/oracle.h"
#include "collectives/error.h"
#include "collectives/numeric.h"
#include "reference/low_latency_ref.h"
#include "reference/transform.h"
#include "reports/atomic_file.h"

/* One rank's low-latency tensors, in the dump layout. */
struct ll_tensors {
	size_t L, RN, R, H, S, T, K, row;    /* S: scale words per row (0 for BF16) */
	uint16_t *x, *combine_x, *combined;
	void *packed, *scales, *colmajor;    /* scales: [L][RN][S]; colmajor: DeepEP's [L][S][RN] */
	int32_t *count, *src;
	int64_t *range;
};

static void ll_free(struct ll_tensors *t)
{
	free(t->x), free(t->combine_x), free(t->combined), free(t->packed), free(t->scales);
	free(t->colmajor), free(t->count), free(t->src), free(t->range);
}

static int ll_alloc(const struct ep_ll_config *c, size_t T, struct ll_tensors *t)
{
	memset(t, 0, sizeof(*t));
	t->R = (size_t)c->num_ranks, t->L = (size_t)c->num_experts / t->R, t->RN = t->R * (size_t)c->max_tokens;
	t->H = (size_t)c->hidden, t->S = (size_t)ep_ll_scale_cols(c), t->T = T, t->K = (size_t)c->num_topk;
	t->row = ep_ll_row_bytes(c);
	size_t rows = t->L * t->RN;
	t->x = calloc(T * t->H + 1, 2), t->combined = calloc(T * t->H + 1, 2);
	t->combine_x = calloc(rows * t->H + 1, 2);
	t->packed = calloc(rows * t->row + 1, 1);
	t->scales = calloc(rows * t->S + 1, 4), t->colmajor = calloc(rows * t->S + 1, 4);
	t->count = calloc(t->L + 1, 4), t->src = calloc(rows + 1, 4), t->range = calloc(t->L * t->R + 1, 8);
	return t->x && t->combined && t->combine_x && t->packed && t->scales && t->colmajor && t->count && t->src &&
	       t->range ? 0 : -ENOMEM;
}

/* DeepEP's column-major scales from the row-major ones. */
static void transpose_scales(struct ll_tensors *t)
{
	const uint32_t *rm = t->scales;
	uint32_t *cm = t->colmajor;
	for (size_t e = 0; e < t->L; e++)
		for (size_t p = 0; p < t->RN; p++)
			for (size_t b = 0; b < t->S; b++)
				cm[(e * t->S + b) * t->RN + p] = rm[(e * t->RN + p) * t->S + b];
}

static struct ep_ll_dispatch_out ll_out(struct ll_tensors *t)
{
	return (struct ep_ll_dispatch_out){.packed_recv_x = t->packed, .packed_recv_x_scales = t->S ? t->colmajor : NULL,
					   .packed_recv_count = t->count, .packed_recv_src_info = t->src,
					   .packed_recv_layout_range = t->range};
}

/* "packed_recv_x[3]" -> 3 (the expert), or -1 for a name without an index. */
static int expert_of(const char *tensor, size_t *base_len)
{
	const char *b = strchr(tensor, '[');
	*base_len = b ? (size_t)(b - tensor) : strlen(tensor);
	return b ? atoi(b + 1) : -1;
}

struct ll_capture {
	struct ll_tensors *t;
	int ue8m0;
};

/* Golden: each expected row into the dump-layout tensors. */
static void ll_capture_row(void *ctx, const char *tensor, int64_t row, const void *data, size_t bytes)
{
	struct ll_capture *c = ctx;
	struct ll_tensors *t = c->t;
	size_t n;
	int e = expert_of(tensor, &n);
	size_t at = e >= 0 ? (size_t)e * t->RN + (size_t)row : (size_t)row;
	if (!strncmp(tensor, "packed_recv_x_scales", n) && n == 20)
		memcpy((char *)t->scales + at * t->S * 4, data, bytes);
	else if (!strncmp(tensor, "packed_recv_x", n) && n == 13)
		memcpy((char *)t->packed + at * t->row, data, bytes);
	else if (!strncmp(tensor, "packed_recv_src_info", n))
		memcpy(t->src + at, data, bytes);
	else if (!strcmp(tensor, "packed_recv_count"))
		memcpy(t->count, data, bytes);
	else if (!strcmp(tensor, "packed_recv_layout_range"))
		memcpy(t->range + (size_t)row * t->R, data, bytes);
	else if (!strcmp(tensor, "combined_x"))
		memcpy(t->combined + (size_t)row * t->H, data, bytes);
}

/* The harness's expert step on the expected packed rows: combine_x. */
static void ll_experts(const struct ep_ll_config *c, enum ep_payload payload, int me, struct ll_tensors *t)
{
	uint16_t deq[t->H];
	float sc[t->H / 128 + 1];
	for (size_t e = 0; e < t->L; e++)
		for (size_t p = 0; p < (size_t)t->count[e] && p < t->RN; p++) {
			size_t at = e * t->RN + p;
			const void *src = (const char *)t->packed + at * t->row;
			if (c->dtype == EP_DTYPE_FP8) {
				const uint32_t *w = (const uint32_t *)t->scales + at * t->S;
				for (size_t b = 0; b < t->H / 128; b++)
					sc[b] = c->use_ue8m0 ? ep_ue8m0_to_f32((uint8_t)(w[b / 4] >> (8 * (b % 4))))
							     : ((const float *)w)[b];
				ep_fp8_dequant_row(src, sc, t->H, deq);
				src = deq;
			}
			ep_expert_transform(payload, me, (int)e, src, (int)t->H, t->combine_x + at * t->H);
		}
}

/* The dump's files of one rank (present ones only). */
static int ll_write(const struct ep_ll_config *c, struct ll_tensors *t, const int64_t *idx, const float *w, int me,
		    const char *dir)
{
	char path[8192];
	int n = snprintf(path, sizeof(path), "%s/rank%d", dir, me), rc;
	if ((rc = ep_mkdir_p(path)))
		return rc;
	int fp8 = c->dtype == EP_DTYPE_FP8;
	struct { const char *name; enum ep_npy_dtype d; int nd; size_t shape[3]; const void *data; } f[] = {
		{"x", EP_NPY_U2, 2, {t->T, t->H}, t->x},
		{"topk_idx", EP_NPY_I8, 2, {t->T, t->K}, idx},
		{"topk_weights", EP_NPY_F4, 2, {t->T, t->K}, w},
		{"packed_recv_x", fp8 ? EP_NPY_U1 : EP_NPY_U2, 3, {t->L, t->RN, t->H}, t->packed},
		{"packed_recv_x_scales", c->use_ue8m0 ? EP_NPY_I4 : EP_NPY_F4, 3, {t->L, t->RN, t->S}, fp8 ? t->scales : NULL},
		{"packed_recv_count", EP_NPY_I4, 1, {t->L}, t->count},
		{"packed_recv_src_info", EP_NPY_I4, 2, {t->L, t->RN}, t->src},
		{"packed_recv_layout_range", EP_NPY_I8, 2, {t->L, t->R}, t->range},
		{"combine_x", EP_NPY_U2, 3, {t->L, t->RN, t->H}, t->combine_x},
		{"combined_x", EP_NPY_U2, 2, {t->T, t->H}, t->combined},
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]) && !rc; i++) {
		if (!f[i].data)
			continue;
		snprintf(path + n, sizeof(path) - (size_t)n, "/%s.npy", f[i].name);
		rc = ep_npy_write(path, f[i].d, f[i].shape, f[i].nd, f[i].data);
	}
	return rc;
}

int ep_ll_golden_rank(const struct ep_run *run, int ranks_per_node, int me, const char *dir)
{
	struct ep_ll_config c;
	struct ep_ll_ref ref;
	struct ll_tensors t = {0};
	ep_ll_run_config(run, ranks_per_node ? ranks_per_node : run->shape.num_ranks, &c);
	int rc = ep_ll_ref_init(&ref, &c, run->shape.num_tokens, &run->routing, run->cfg->seed,
				run->routing.uneven_tokens, me);
	if (rc)
		return rc;
	int T = ep_ll_ref_tokens(&ref, me);
	if (ref.overflow)
		rc = -ERANGE; /* a (source, expert) list longer than num_max_dispatch_tokens_per_rank */
	if (!rc && !(rc = ll_alloc(&c, (size_t)T, &t))) {
		for (int tok = 0; tok < T; tok++)
			ep_gen_bf16_row(run->cfg->seed, &run->routing, EP_STREAM_X, me, tok, c.hidden, t.x + (size_t)tok * t.H);
		struct ll_capture cap = {.t = &t, .ue8m0 = c.use_ue8m0};
		struct ep_check_hooks hooks = {.ctx = &cap, .expected = ll_capture_row};
		struct ep_check_report rep;
		struct ep_ll_dispatch_out out = ll_out(&t);
		ep_report_init(&rep, c.num_ranks, NULL);
		rep.hooks = &hooks;
		ep_ll_ref_check_dispatch(&ref, &out, &rep);
		ep_ll_ref_check_combine(&ref, t.combined, &rep);
		ll_experts(&c, run->routing.payload, me, &t);
		rc = ll_write(&c, &t, ep_ll_ref_topk_idx(&ref, me), ep_ll_ref_topk_weights(&ref, me), me, dir);
	}
	ll_free(&t);
	ep_ll_ref_fini(&ref);
	return rc;
}

/* Verify */

enum { L_COUNT, L_RANGE, L_X, L_SCALES, L_SRC, L_COMBINED, L_N };
static const char *const ll_names[L_N] = {"packed_recv_count", "packed_recv_layout_range", "packed_recv_x",
					  "packed_recv_x_scales", "packed_recv_src_info", "combined_x"};

static int ll_skip(void *ctx, const char *tensor)
{
	const int *present = ctx;
	size_t n;
	expert_of(tensor, &n);
	for (int i = 0; i < L_N; i++)
		if (strlen(ll_names[i]) == n && !strncmp(ll_names[i], tensor, n))
			return !present[i];
	return 0;
}

/* Rank me's outputs into t (absent ones stay zero). 0 or an exit status. */
static int ll_load_outputs(const struct ep_ll_config *c, const char *dir, int me, struct ll_tensors *t, int *present)
{
	int fp8 = c->dtype == EP_DTYPE_FP8;
	const struct { enum ep_npy_dtype d; int nd; size_t shape[3]; void *to; int want; } f[L_N] = {
		{EP_NPY_I4, 1, {t->L}, t->count, 1},
		{EP_NPY_I8, 2, {t->L, t->R}, t->range, 1},
		{fp8 ? EP_NPY_U1 : EP_NPY_U2, 3, {t->L, t->RN, t->H}, t->packed, 1},
		{c->use_ue8m0 ? EP_NPY_I4 : EP_NPY_F4, 3, {t->L, t->RN, t->S}, t->scales, fp8},
		{EP_NPY_I4, 2, {t->L, t->RN}, t->src, 1},
		{EP_NPY_U2, 2, {t->T, t->H}, t->combined, 1},
	};
	for (int i = 0; i < L_N; i++) {
		struct ep_npy a;
		int rc = f[i].want ? ep_oracle_load(dir, me, ll_names[i], f[i].d, f[i].nd, f[i].shape, &a, 0) : 1;
		if (rc > 1 || rc < 0)
			return rc;
		if ((present[i] = rc == 0)) {
			memcpy(f[i].to, a.data, a.count * ep_npy_itemsize(a.dtype));
			ep_npy_free(&a);
		}
	}
	return 0;
}


/* Expert e's rows in canonical order: source ranks ascending, then source
 * token (where each row came from: the layout range and src_info). */
static void canonical_expert(struct ll_tensors *t, size_t e, struct ep_ll_row_key *k, char *rows, uint32_t *sc)
{
	size_t n = t->count[e] < 0 ? 0 : (size_t)t->count[e] > t->RN ? t->RN : (size_t)t->count[e], at = e * t->RN;
	for (size_t p = 0; p < n; p++) {
		k[p] = (struct ep_ll_row_key){(int32_t)t->R, t->src[at + p], (int32_t)p};
		for (size_t r = 0; r < t->R; r++) {
			uint64_t v = (uint64_t)t->range[e * t->R + r], begin = v >> 32, cnt = v & 0xffffffffu;
			if (p >= begin && p < begin + cnt)
				k[p].src = (int32_t)r;
		}
	}
	qsort(k, n, sizeof(*k), ep_ll_row_key_cmp);
	for (size_t p = 0; p < n; p++) {
		memcpy(rows + p * t->row, (char *)t->packed + (at + (size_t)k[p].p) * t->row, t->row);
		memcpy(sc + p * t->S, (uint32_t *)t->scales + (at + (size_t)k[p].p) * t->S, t->S * 4);
	}
	memcpy((char *)t->packed + at * t->row, rows, n * t->row);
	memcpy((uint32_t *)t->scales + at * t->S, sc, n * t->S * 4);
	for (size_t p = 0; p < n; p++)
		t->src[at + p] = k[p].token;
	uint32_t begin = 0;
	for (size_t r = 0; r < t->R; r++) {
		uint32_t cnt = (uint32_t)((uint64_t)t->range[e * t->R + r] & 0xffffffffu);
		t->range[e * t->R + r] = (int64_t)(((uint64_t)begin << 32) | cnt);
		begin += cnt;
	}
}

static int canonical_order(struct ll_tensors *t)
{
	struct ep_ll_row_key *k = malloc(sizeof(*k) * (t->RN + 1));
	char *rows = malloc(t->RN * t->row + 1);
	uint32_t *sc = malloc(t->RN * t->S * 4 + 4);
	for (size_t e = 0; k && rows && sc && e < t->L; e++)
		canonical_expert(t, e, k, rows, sc);
	int rc = k && rows && sc ? 0 : EP_EXIT_ENV;
	free(k), free(rows), free(sc);
	return rc;
}

int ep_ll_verify_rank(const struct ep_ll_config *c, const struct ep_routing *r, int num_tokens, int me,
		      const char *dir, int order_any, struct ep_check_report *rep, char *not_checked, size_t len)
{
	struct ep_ll_ref ref;
	struct ll_tensors t = {0};
	int present[L_N] = {0};
	int rc = ep_ll_ref_init(&ref, c, num_tokens, r, 0, 0, me);
	if (rc)
		return ep_error_exit_code(rc);
	if ((rc = ll_alloc(c, (size_t)ep_ll_ref_tokens(&ref, me), &t)) ||
	    (rc = ll_load_outputs(c, dir, me, &t, present)) || (order_any && (rc = canonical_order(&t)))) {
		rc = rc == -ENOMEM ? EP_EXIT_ENV : rc;
	} else {
		transpose_scales(&t);
		struct ep_ll_dispatch_out out = ll_out(&t);
		struct ep_check_hooks hooks = {.ctx = present, .skip = ll_skip};
		rep->hooks = &hooks;
		ep_ll_ref_check_dispatch(&ref, &out, rep);
		ep_ll_ref_check_combine(&ref, t.combined, rep);
		rep->hooks = NULL;
		for (int i = 0; i < L_N; i++)
			if (!present[i] && (i != L_SCALES || c->dtype == EP_DTYPE_FP8) && !strstr(not_checked, ll_names[i])) {
				size_t n = strlen(not_checked);
				snprintf(not_checked + n, len - n, "%s%s", n ? ", " : "", ll_names[i]);
			}
	}
	ll_free(&t);
	ep_ll_ref_fini(&ref);
	return rc;
}
