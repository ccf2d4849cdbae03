/* trace.c - the routing trace format (see trace.h): a checked reader and an encoder.
 *
 * The reader trusts nothing in the file: sizes are multiplied with overflow
 * checks before any comparison with the file's length, the checksum is
 * verified before a single id is looked at, and every id and weight is
 * checked once here, so replay (ep_trace_row) needs no checks.
 */
#include "reference/trace.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/error.h"
#include "reports/text_file.h"

#define FLAG_WEIGHTS 1u
#define MAX_EXPERTS (1 << 20)
#define MAX_TOPK 1024

static uint32_t get32(const unsigned char *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void put32(unsigned char *b, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

static int bad(char *err, size_t len, const char *name, const char *why)
{
	snprintf(err, len, "trace '%s' %s", name, why);
	return -EP_EUSAGE;
}

/* Body bytes of S steps x N tokens x K slots (ids, and weights when w), or
 * 0 when they do not fit a size_t. */
static size_t body_bytes(uint32_t S, uint32_t N, uint32_t K, int w)
{
	size_t n;
	if (__builtin_mul_overflow((size_t)S, (size_t)N, &n) || __builtin_mul_overflow(n, (size_t)K, &n) ||
	    __builtin_mul_overflow(n, (size_t)(w ? 8 : 4), &n))
		return 0;
	return n;
}

/* The header's fields into t, each checked against the format's limits. */
static int parse_header(const unsigned char *b, size_t len, const char *name, struct ep_trace *t, uint32_t *flags,
			char *err, size_t errlen)
{
	if (len < 8 || memcmp(b, EP_TRACE_MAGIC, 8))
		return bad(err, errlen, name, "is not a routing trace (no EPTRACE magic; scripts/trace_convert.py makes one)");
	if (len < EP_TRACE_HEADER)
		return bad(err, errlen, name, "is truncated in its 128-byte header");
	uint32_t v = get32(b + 8), E = get32(b + 16), K = get32(b + 20), S = get32(b + 24), N = get32(b + 28);
	*flags = get32(b + 12);
	if (v != EP_TRACE_VERSION) {
		snprintf(err, errlen, "trace '%s' has version %u; this epbench reads version %d", name, v, EP_TRACE_VERSION);
		return -EP_EUSAGE;
	}
	if (*flags & ~FLAG_WEIGHTS || get32(b + 36)) {
		snprintf(err, errlen, "trace '%s' has flags 0x%x and reserved %u (want flags 0 or 1, reserved 0)", name,
			 *flags, get32(b + 36));
		return -EP_EUSAGE;
	}
	if (E < 1 || E > MAX_EXPERTS || K < 1 || K > MAX_TOPK || K > E || S < 1 || S > INT32_MAX || N < 1 ||
	    N > INT32_MAX) {
		snprintf(err, errlen, "trace '%s' has experts %u, top-k %u, steps %u, tokens per step %u "
			 "(want 1 <= K <= E <= %d, K <= %d, S >= 1, N >= 1)", name, E, K, S, N, MAX_EXPERTS, MAX_TOPK);
		return -EP_EUSAGE;
	}
	if (!memchr(b + 72, 0, EP_TRACE_MODEL))
		return bad(err, errlen, name, "has a model name without its NUL (at most 55 bytes)");
	*t = (struct ep_trace){.layer = (int32_t)get32(b + 32), .num_experts = (int)E, .num_topk = (int)K,
			       .num_steps = (int)S, .tokens_per_step = (int)N};
	memcpy(t->model, b + 72, EP_TRACE_MODEL);
	return 0;
}

/* Every id in [-1, E) and none twice in its row; every weight finite. */
static int check_body(const struct ep_trace *t, const char *name, char *err, size_t errlen)
{
	size_t K = (size_t)t->num_topk, rows = (size_t)t->num_steps * (size_t)t->tokens_per_step;
	for (size_t r = 0; r < rows; r++) {
		const int32_t *row = t->ids + r * K;
		for (size_t j = 0; j < K; j++) {
			int dup = 0;
			for (size_t i = 0; i < j && row[j] >= 0; i++)
				dup |= row[i] == row[j];
			if (row[j] >= -1 && row[j] < t->num_experts && !dup)
				continue;
			char why[64];
			if (dup)
				snprintf(why, sizeof(why), "twice in its row");
			else
				snprintf(why, sizeof(why), "outside [-1, %d)", t->num_experts);
			snprintf(err, errlen, "trace '%s': step %zu token %zu slot %zu has expert %d, %s", name,
				 r / (size_t)t->tokens_per_step, r % (size_t)t->tokens_per_step, j, (int)row[j], why);
			return -EP_EUSAGE;
		}
	}
	for (size_t i = 0; t->weights && i < rows * K; i++)
		if (!isfinite(t->weights[i])) {
			snprintf(err, errlen, "trace '%s': step %zu token %zu slot %zu has weight %g (want a finite float)",
				 name, i / K / (size_t)t->tokens_per_step, i / K % (size_t)t->tokens_per_step, i % K,
				 (double)t->weights[i]);
			return -EP_EUSAGE;
		}
	return 0;
}

/* Copies n little-endian 32-bit words (ids or float bits) out of the file. */
static void get_words(void *dst, const unsigned char *src, size_t n)
{
	uint32_t *d = dst;
	for (size_t i = 0; i < n; i++)
		d[i] = get32(src + 4 * i);
}

int ep_trace_parse(const void *buf, size_t len, const char *name, struct ep_trace *t, char *err, size_t errlen)
{
	const unsigned char *b = buf;
	uint32_t flags;
	char hex[EP_SHA256_HEX], want[EP_SHA256_HEX];
	memset(t, 0, sizeof(*t));
	int rc = parse_header(b, len, name, t, &flags, err, errlen);
	if (rc)
		return rc;
	int w = flags & FLAG_WEIGHTS;
	size_t body = body_bytes((uint32_t)t->num_steps, (uint32_t)t->tokens_per_step, (uint32_t)t->num_topk, w);
	if (!body || body > EP_TRACE_MAX_BYTES)
		return bad(err, errlen, name, "has a header whose body would exceed 2 GiB");
	if (len - EP_TRACE_HEADER != body) {
		snprintf(err, errlen, "trace '%s' is %s: %zu body bytes, its header needs %zu (%d steps x %d tokens x %d ids%s)",
			 name, len - EP_TRACE_HEADER < body ? "truncated" : "longer than its header says",
			 len - EP_TRACE_HEADER, body, t->num_steps, t->tokens_per_step, t->num_topk, w ? " and weights" : "");
		return -EP_EUSAGE;
	}
	for (int i = 0; i < 32; i++)
		snprintf(want + 2 * i, 3, "%02x", b[40 + i]);
	ep_sha256_of(b + EP_TRACE_HEADER, body, hex);
	if (strcmp(hex, want)) {
		snprintf(err, errlen, "trace '%s' fails its checksum: the body's SHA-256 is %.16s..., the header says %.16s... (damaged file)",
			 name, hex, want);
		return -EP_EUSAGE;
	}
	memcpy(t->sha256, hex, sizeof(hex));
	size_t n = body / (w ? 8 : 4);
	t->ids = malloc(4 * n + 1);
	t->weights = w ? malloc(4 * n + 1) : NULL;
	if (!t->ids || (w && !t->weights)) {
		ep_trace_free(t);
		return -EP_ENOMEM;
	}
	get_words(t->ids, b + EP_TRACE_HEADER, n);
	if (w)
		get_words(t->weights, b + EP_TRACE_HEADER + 4 * n, n);
	if ((rc = check_body(t, name, err, errlen)))
		ep_trace_free(t);
	return rc;
}

int ep_trace_read(const char *path, struct ep_trace *t, char *err, size_t errlen)
{
	char *buf = NULL, q[256];
	size_t len = 0;
	memset(t, 0, sizeof(*t));
	int rc = ep_file_read("trace", path, EP_TRACE_HEADER + EP_TRACE_MAX_BYTES, &buf, &len, err, errlen);
	if (rc)
		return rc;
	rc = ep_trace_parse(buf, len, ep_quote(path, q, sizeof(q)), t, err, errlen);
	free(buf);
	return rc;
}

void ep_trace_free(struct ep_trace *t)
{
	if (!t)
		return;
	free(t->ids);
	free(t->weights);
	t->ids = NULL;
	t->weights = NULL;
}

int ep_trace_encode(const struct ep_trace *t, void **buf, size_t *len)
{
	if (t->num_experts < 1 || t->num_experts > MAX_EXPERTS || t->num_topk < 1 || t->num_topk > MAX_TOPK ||
	    t->num_steps < 1 || t->tokens_per_step < 1 || !t->ids || !memchr(t->model, 0, EP_TRACE_MODEL))
		return -EINVAL;
	int w = t->weights != NULL;
	size_t body = body_bytes((uint32_t)t->num_steps, (uint32_t)t->tokens_per_step, (uint32_t)t->num_topk, w);
	if (!body || body > EP_TRACE_MAX_BYTES)
		return -EINVAL;
	unsigned char *b = calloc(1, EP_TRACE_HEADER + body);
	if (!b)
		return -ENOMEM;
	size_t n = body / (w ? 8 : 4);
	memcpy(b, EP_TRACE_MAGIC, 8);
	put32(b + 8, EP_TRACE_VERSION);
	put32(b + 12, w ? FLAG_WEIGHTS : 0);
	put32(b + 16, (uint32_t)t->num_experts);
	put32(b + 20, (uint32_t)t->num_topk);
	put32(b + 24, (uint32_t)t->num_steps);
	put32(b + 28, (uint32_t)t->tokens_per_step);
	put32(b + 32, (uint32_t)t->layer);
	memcpy(b + 72, t->model, strlen(t->model));
	for (size_t i = 0; i < n; i++) {
		uint32_t u;
		put32(b + EP_TRACE_HEADER + 4 * i, (uint32_t)t->ids[i]);
		if (w) {
			memcpy(&u, &t->weights[i], 4);
			put32(b + EP_TRACE_HEADER + 4 * (n + i), u);
		}
	}
	char hex[EP_SHA256_HEX];
	ep_sha256_of(b + EP_TRACE_HEADER, body, hex);
	for (int i = 0; i < 32; i++)
		b[40 + i] = (unsigned char)strtoul((char[3]){hex[2 * i], hex[2 * i + 1], 0}, NULL, 16);
	*buf = b;
	*len = EP_TRACE_HEADER + body;
	return 0;
}

void ep_trace_row(const struct ep_trace *t, int step, int64_t token, int64_t *row)
{
	const int32_t *from = t->ids + ((size_t)step * (size_t)t->tokens_per_step + (size_t)token) * (size_t)t->num_topk;
	for (int j = 0; j < t->num_topk; j++)
		row[j] = from[j];
}
