/* compare.h - byte-exact comparison of output tensors, with a report a human can act on.
 *
 * Rows are compared with memcmp; only a differing row is scanned element by
 * element. The report keeps counts, the first mismatch in full (tensor, row,
 * column, both values, the row's source rank and token) and the number of
 * wrong rows per source rank, from which the launcher builds the
 * (source, destination) matrix.
 */
#ifndef EP_COMPARE_H
#define EP_COMPARE_H

#include <stddef.h>
#include <stdint.h>

/* Element kinds, for printing values. */
enum ep_elem { EP_ELEM_BF16, EP_ELEM_FP8, EP_ELEM_I8, EP_ELEM_U8, EP_ELEM_I32, EP_ELEM_I64, EP_ELEM_F32 };

struct ep_mismatch {
	char tensor[40];
	int64_t row, col;
	char expected[48], actual[48];
	int src_rank;      /* -1 when the row has no single source */
	int64_t src_token; /* -1 likewise */
};

/* What golden and verify add to the checks (a run leaves them NULL). */
struct ep_check_hooks {
	void *ctx;
	/* 1: the tensor is not compared (verify: the library did not produce it) */
	int (*skip)(void *ctx, const char *tensor);
	/* every expected row, before it is compared (golden writes them out);
	 * row is the compared row's index in its tensor, bytes its size */
	void (*expected)(void *ctx, const char *tensor, int64_t row, const void *data, size_t bytes);
};

struct ep_check_report {
	int num_ranks;
	uint64_t checked_bytes;
	uint64_t wrong_elems;
	uint64_t wrong_rows;          /* (tensor, row) pairs with any wrong element */
	uint64_t *wrong_rows_by_src;  /* [num_ranks], caller-owned, may be NULL */
	uint64_t handle_checked_bytes; /* of checked_bytes, those of handle tensors (ep_compare_handle_row) */
	uint64_t handle_wrong_elems;  /* of wrong_elems, those in handle tensors */
	int has_first;
	struct ep_mismatch first;
	int has_handle_first;         /* the first wrong element of a handle tensor (verify names it) */
	struct ep_mismatch handle_first;
	const struct ep_check_hooks *hooks; /* set after ep_report_init; NULL in runs */
};

/* Starts an empty report (by_src zeroed when given). */
void ep_report_init(struct ep_check_report *rep, int num_ranks, uint64_t *by_src);

/* Compares n elements of one row; returns the number of wrong elements. */
size_t ep_compare_row(struct ep_check_report *rep, const char *tensor, enum ep_elem kind,
		      const void *expected, const void *actual, size_t n, int64_t row,
		      int src_rank, int64_t src_token);

/* ep_compare_row for a handle tensor: metadata whose values products and
 * versions may define differently (Ascend's assist_info_for_combine,
 * ep_recv_counts). Its wrong elements count as wrong like any other and
 * are also counted in handle_wrong_elems, which the report prints on a
 * line of its own, so a user can tell them from wrong data; the first of
 * them is also kept in handle_first. A skipped tensor counts nowhere. */
size_t ep_compare_handle_row(struct ep_check_report *rep, const char *tensor, enum ep_elem kind,
			     const void *expected, const void *actual, size_t n, int64_t row,
			     int src_rank, int64_t src_token);

/* Records a mismatch that is not an element (e.g. a row count). */
void ep_report_scalar(struct ep_check_report *rep, const char *tensor, long long expected,
		      long long actual);

/* Formats the first mismatch as one line into buf. */
void ep_mismatch_format(const struct ep_mismatch *m, char *buf, size_t len);

size_t ep_elem_size(enum ep_elem kind);

#endif
