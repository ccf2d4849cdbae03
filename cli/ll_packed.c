/* ll_packed.c - low-latency receive layouts in the --dump layout (see ll_packed.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ll_packed.h"
#include "collectives/numeric.h"
#include "reports/atomic_file.h"

int ep_ll_packed_init(struct ep_ll_packed *p, const struct ep_ll_config *c, size_t n)
{
	memset(p, 0, sizeof(*p));
	p->n = n, p->R = (size_t)c->num_ranks, p->L = (size_t)c->num_experts / p->R;
	p->RN = p->R * (size_t)c->max_tokens, p->H = (size_t)c->hidden, p->S = (size_t)ep_ll_scale_cols(c);
	p->row = ep_ll_row_bytes(c), p->fp8 = c->dtype == EP_DTYPE_FP8, p->ue8m0 = c->use_ue8m0;
	size_t rows = n * p->L * p->RN;
	p->x = calloc(rows * p->row + 1, 1);
	p->scales = p->S ? calloc(rows * p->S + 1, 4) : NULL;
	p->count = calloc(n * p->L + 1, 4);
	p->src = calloc(rows + 1, 4);
	p->range = calloc(n * p->L * p->R + 1, 8);
	return p->x && (!p->S || p->scales) && p->count && p->src && p->range ? 0 : -ENOMEM;
}

void ep_ll_packed_fini(struct ep_ll_packed *p)
{
	free(p->x), free(p->scales), free(p->count), free(p->src), free(p->range);
	memset(p, 0, sizeof(*p));
}

size_t ep_ll_packed_rows(const struct ep_ll_packed *p, size_t b, size_t e)
{
	int32_t c = p->count[b * p->L + e];
	return c < 0 ? 0 : (size_t)c > p->RN ? p->RN : (size_t)c;
}

void ep_ll_packed_put(struct ep_ll_packed *p, size_t b, const struct ep_ll_dispatch_out *o)
{
	size_t L = p->L, RN = p->RN, S = p->S;
	memcpy(p->count + b * L, o->packed_recv_count, L * 4);
	memcpy(p->range + b * L * p->R, o->packed_recv_layout_range, L * p->R * 8);
	for (size_t e = 0; e < L; e++) {
		size_t n = ep_ll_packed_rows(p, b, e), at = (b * L + e) * RN;
		memcpy(p->x + at * p->row, (const uint8_t *)o->packed_recv_x + e * RN * p->row, n * p->row);
		memcpy(p->src + at, o->packed_recv_src_info + e * RN, n * 4);
		const uint32_t *cm = o->packed_recv_x_scales; /* [L][S][RN] */
		for (size_t r = 0; S && r < n; r++)
			for (size_t k = 0; k < S; k++)
				p->scales[(at + r) * S + k] = cm[(e * S + k) * RN + r];
	}
}

float ep_ll_packed_scale(const struct ep_ll_packed *p, size_t b, size_t e, size_t r, size_t k)
{
	const uint32_t *w = p->scales + ((b * p->L + e) * p->RN + r) * p->S;
	if (p->ue8m0) /* byte k % 4 of word k / 4 */
		return ep_ue8m0_to_f32((uint8_t)(w[k / 4] >> (8 * (k % 4))));
	float f;
	memcpy(&f, w + k, 4);
	return f;
}

/* "x[3]" after the prefix -> ("x", 3); -1 without an index. */
static int suffix_of(const char *tensor, const char **suf, size_t *len)
{
	const char *end = strchr(tensor, '['), *s = tensor + strlen(tensor);
	s = end ? end : s;
	/* the suffix is what follows the prefix: one of the five names' tails */
	static const char *const tails[] = {"_x_scales", "_src_info", "_layout_range", "_count", "_x"};
	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		size_t n = strlen(tails[i]);
		if ((size_t)(s - tensor) >= n && !strncmp(s - n, tails[i], n)) {
			*suf = tails[i], *len = n;
			return end ? atoi(end + 1) : -1;
		}
	}
	*suf = NULL, *len = 0;
	return -1;
}

void ep_ll_packed_capture(struct ep_ll_packed *p, size_t b, const char *tensor, int64_t row, const void *data,
			  size_t bytes)
{
	const char *suf;
	size_t n;
	int e = suffix_of(tensor, &suf, &n);
	size_t at = (b * p->L + (e >= 0 ? (size_t)e : 0)) * p->RN + (size_t)row;
	if (!suf)
		return;
	if (!strcmp(suf, "_x") && e >= 0)
		memcpy(p->x + at * p->row, data, bytes);
	else if (!strcmp(suf, "_x_scales") && e >= 0 && p->scales)
		memcpy(p->scales + at * p->S, data, bytes);
	else if (!strcmp(suf, "_src_info") && e >= 0)
		memcpy(p->src + at, data, bytes);
	else if (!strcmp(suf, "_count"))
		memcpy(p->count + b * p->L, data, bytes);
	else if (!strcmp(suf, "_layout_range"))
		memcpy(p->range + (b * p->L + (size_t)row) * p->R, data, bytes);
}

int ep_rank_npy_write(const char *dir, int me, const char *name, enum ep_npy_dtype d, const size_t *shape, int nd,
		      const void *data)
{
	char path[4096];
	int rc, n = snprintf(path, sizeof(path), "%s/rank%d", dir, me);
	if (n < 0 || (size_t)n + strlen(name) + 6 >= sizeof(path))
		return -ENAMETOOLONG;
	if ((rc = ep_mkdir_p(path)))
		return rc;
	snprintf(path + n, sizeof(path) - (size_t)n, "/%s.npy", name);
	return ep_npy_write(path, d, shape, nd, data);
}

int ep_ll_packed_write(const struct ep_ll_packed *p, const char *dir, int me, const char *prefix, int blocked)
{
	int o = blocked ? 1 : 0, rc = 0;
	size_t n = blocked ? p->n : 1;
	struct {
		const char *tail;
		enum ep_npy_dtype d;
		int nd;
		size_t shape[3];
		const void *data;
	} f[] = {
		{"_x", p->fp8 ? EP_NPY_U1 : EP_NPY_U2, 3, {p->L, p->RN, p->H}, p->x},
		{"_x_scales", p->ue8m0 ? EP_NPY_I4 : EP_NPY_F4, 3, {p->L, p->RN, p->S}, p->fp8 ? p->scales : NULL},
		{"_count", EP_NPY_I4, 1, {p->L}, p->count},
		{"_src_info", EP_NPY_I4, 2, {p->L, p->RN}, p->src},
		{"_layout_range", EP_NPY_I8, 2, {p->L, p->R}, p->range},
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]) && !rc; i++) {
		char name[96];
		size_t shape[4] = {n};
		if (!f[i].data)
			continue;
		memcpy(shape + o, f[i].shape, sizeof(size_t) * (size_t)f[i].nd);
		snprintf(name, sizeof(name), "%s%s", prefix, f[i].tail);
		rc = ep_rank_npy_write(dir, me, name, f[i].d, shape, f[i].nd + o, f[i].data);
	}
	return rc;
}

int ep_ll_row_key_cmp(const void *a, const void *b)
{
	const struct ep_ll_row_key *x = a, *y = b;
	return x->src != y->src ? (x->src > y->src) - (x->src < y->src)
	       : x->token != y->token ? (x->token > y->token) - (x->token < y->token) : (x->p > y->p) - (x->p < y->p);
}
