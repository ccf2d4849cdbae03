/* compare.c - memcmp rows, scan the wrong ones, keep the first mismatch. */
#include "reference/compare.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "collectives/numeric.h"

size_t ep_elem_size(enum ep_elem kind)
{
	switch (kind) {
	case EP_ELEM_BF16: return 2;
	case EP_ELEM_FP8:
	case EP_ELEM_I8:
	case EP_ELEM_U8: return 1;
	case EP_ELEM_I32:
	case EP_ELEM_F32: return 4;
	case EP_ELEM_I64: return 8;
	}
	return 1;
}

void ep_report_init(struct ep_check_report *rep, int num_ranks, uint64_t *by_src)
{
	memset(rep, 0, sizeof(*rep));
	rep->num_ranks = num_ranks;
	rep->wrong_rows_by_src = by_src;
	if (by_src)
		memset(by_src, 0, sizeof(uint64_t) * (size_t)num_ranks);
}

static void format_value(enum ep_elem kind, const void *p, char *buf, size_t len)
{
	switch (kind) {
	case EP_ELEM_BF16: {
		uint16_t v;
		memcpy(&v, p, 2);
		snprintf(buf, len, "%.6g (bf16 0x%04x)", (double)ep_bf16_to_f32(v), v);
		break;
	}
	case EP_ELEM_FP8: {
		uint8_t v = *(const uint8_t *)p;
		snprintf(buf, len, "%.6g (e4m3 0x%02x)", (double)ep_e4m3_to_f32(v), v);
		break;
	}
	case EP_ELEM_I8: snprintf(buf, len, "%d", *(const int8_t *)p); break;
	case EP_ELEM_U8: snprintf(buf, len, "%u", *(const uint8_t *)p); break;
	case EP_ELEM_I32: {
		int32_t v;
		memcpy(&v, p, 4);
		snprintf(buf, len, "%" PRId32, v);
		break;
	}
	case EP_ELEM_I64: {
		int64_t v;
		memcpy(&v, p, 8);
		snprintf(buf, len, "%" PRId64, v);
		break;
	}
	case EP_ELEM_F32: {
		float v;
		uint32_t u;
		memcpy(&v, p, 4);
		memcpy(&u, p, 4);
		snprintf(buf, len, "%.9g (f32 0x%08x)", (double)v, u);
		break;
	}
	}
}

/* Fills m with the mismatch at column c of a row. */
static void set_mismatch(struct ep_mismatch *m, const char *tensor, enum ep_elem kind, const void *e, const void *a,
			 int64_t row, int64_t c, int src_rank, int64_t src_token)
{
	snprintf(m->tensor, sizeof(m->tensor), "%s", tensor);
	m->row = row;
	m->col = c;
	m->src_rank = src_rank;
	m->src_token = src_token;
	format_value(kind, e, m->expected, sizeof(m->expected));
	format_value(kind, a, m->actual, sizeof(m->actual));
}

/* The first differing column of two rows of n elements (n when none). */
static size_t first_diff(const void *expected, const void *actual, size_t n, size_t es)
{
	size_t c = 0;
	while (c < n && !memcmp((const char *)expected + c * es, (const char *)actual + c * es, es))
		c++;
	return c;
}

size_t ep_compare_row(struct ep_check_report *rep, const char *tensor, enum ep_elem kind,
		      const void *expected, const void *actual, size_t n, int64_t row,
		      int src_rank, int64_t src_token)
{
	size_t es = ep_elem_size(kind);
	const struct ep_check_hooks *h = rep->hooks;
	if (h && h->skip && h->skip(h->ctx, tensor))
		return 0;
	if (h && h->expected)
		h->expected(h->ctx, tensor, row, expected, n * es);
	rep->checked_bytes += n * es;
	if (memcmp(expected, actual, n * es) == 0)
		return 0;
	size_t wrong = 0;
	for (size_t c = 0; c < n; c++) {
		const char *e = (const char *)expected + c * es, *a = (const char *)actual + c * es;
		if (memcmp(e, a, es) == 0)
			continue;
		if (!wrong && !rep->has_first) {
			set_mismatch(&rep->first, tensor, kind, e, a, row, (int64_t)c, src_rank, src_token);
			rep->has_first = 1;
		}
		wrong++;
	}
	rep->wrong_elems += wrong;
	rep->wrong_rows++;
	if (rep->wrong_rows_by_src && src_rank >= 0 && src_rank < rep->num_ranks)
		rep->wrong_rows_by_src[src_rank]++;
	return wrong;
}

size_t ep_compare_handle_row(struct ep_check_report *rep, const char *tensor, enum ep_elem kind,
			     const void *expected, const void *actual, size_t n, int64_t row,
			     int src_rank, int64_t src_token)
{
	const struct ep_check_hooks *h = rep->hooks;
	size_t es = ep_elem_size(kind);
	if (h && h->skip && h->skip(h->ctx, tensor))
		return 0;
	size_t wrong = ep_compare_row(rep, tensor, kind, expected, actual, n, row, src_rank, src_token);
	rep->handle_checked_bytes += n * es;
	rep->handle_wrong_elems += wrong;
	if (wrong && !rep->has_handle_first) {
		size_t c = first_diff(expected, actual, n, es);
		set_mismatch(&rep->handle_first, tensor, kind, (const char *)expected + c * es,
			     (const char *)actual + c * es, row, (int64_t)c, src_rank, src_token);
		rep->has_handle_first = 1;
	}
	return wrong;
}

void ep_report_scalar(struct ep_check_report *rep, const char *tensor, long long expected,
		      long long actual)
{
	if (expected == actual)
		return;
	rep->wrong_elems++;
	rep->wrong_rows++;
	if (rep->has_first)
		return;
	struct ep_mismatch *m = &rep->first;
	snprintf(m->tensor, sizeof(m->tensor), "%s", tensor);
	m->row = m->col = -1;
	m->src_rank = -1;
	m->src_token = -1;
	snprintf(m->expected, sizeof(m->expected), "%lld", expected);
	snprintf(m->actual, sizeof(m->actual), "%lld", actual);
	rep->has_first = 1;
}

void ep_mismatch_format(const struct ep_mismatch *m, char *buf, size_t len)
{
	if (m->row < 0) {
		snprintf(buf, len, "%s: expected %s, got %s", m->tensor, m->expected, m->actual);
		return;
	}
	int n = snprintf(buf, len, "%s[%" PRId64 "][%" PRId64 "]: expected %s, got %s", m->tensor,
			 m->row, m->col, m->expected, m->actual);
	if (m->src_rank >= 0 && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, " (row from rank %d token %" PRId64 ")",
			 m->src_rank, m->src_token);
}
