/* group.c - gathers and reduces of group members' rows in shared memory. */
#include "collectives/group.h"

#include <errno.h>
#include <string.h>

#include "collectives/combine_kernels.h"

#define REDUCE_MAX_MEMBERS 4096

int ep_group_gather(struct ep_waiter *w, const struct ep_group_piece *pieces, int members, int ntensors,
		    const size_t *row_bytes, void *const *outs)
{
	int rc;
	if ((rc = ep_barrier(w)))
		return rc;
	for (int k = 0; k < ntensors; k++) {
		char *to = outs[k];
		for (int i = 0; to && i < members; i++) {
			const struct ep_group_piece *p = &pieces[i * ntensors + k];
			size_t n = p->rows * row_bytes[k];
			if (n)
				memcpy(to, p->data, n);
			to += n;
		}
	}
	return ep_barrier(w);
}

/* Both reduces: row r to outs[r] when outs, else to out + r H. */
static int reduce(struct ep_waiter *w, const uint16_t *const *parts, int members, int pair, size_t rows, size_t H,
		  uint16_t *out, uint16_t *const *outs)
{
	int rc;
	if (members < 1 || members > REDUCE_MAX_MEMBERS)
		return -EINVAL;
	if ((rc = ep_barrier(w)))
		return rc;
	const uint16_t *row[members];
	for (size_t r = 0; r < rows; r++) {
		for (int i = 0; i < members; i++)
			row[i] = parts[i] + r * H;
		ep_bf16_reduce_rows(row, members, pair && members >= 2, H, outs ? outs[r] : out + r * H);
	}
	return ep_barrier(w);
}

int ep_group_reduce(struct ep_waiter *w, const uint16_t *const *parts, int members, int pair, size_t rows, size_t H,
		    uint16_t *out)
{
	return reduce(w, parts, members, pair, rows, H, out, NULL);
}

int ep_group_reduce_to(struct ep_waiter *w, const uint16_t *const *parts, int members, int pair, size_t rows, size_t H,
		       uint16_t *const *outs)
{
	return reduce(w, parts, members, pair, rows, H, NULL, outs);
}
