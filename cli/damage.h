/* damage.h - the data faults of --fault (bitflip, corrupt, permute, drop, stale) done to a rank's outputs.
 *
 * An op of a variant lists the output tensors its last run wrote as views:
 * rows of bytes that the check compares (valid rows only). The damage is
 * generic over views, so every variant gets every data fault and each must
 * end in a mismatch that names the rank and the tensor (cli/fault.h).
 * Nothing here blocks or allocates.
 */
#ifndef EP_DAMAGE_H
#define EP_DAMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "cli/fault.h"

struct ep_tensor_view {
	const char *name;   /* as the check names it: "recv_x", "packed_recv_x", ... */
	uint8_t *base;      /* the first valid row (writable memory behind the outputs' const view) */
	size_t rows;        /* valid rows */
	size_t row_bytes;
};

/* The view f aims at among v[0..n-1]: bitflip's tensor by name; for the
 * other data faults (and corrupt) the received rows, v[0] of the op that
 * receives. NULL when none of v is the one. */
const struct ep_tensor_view *ep_damage_target(const struct ep_fault *f, const struct ep_tensor_view *v, int n,
					      int receives);

/* Does f to t. stale_row: the previous pass's bytes of t's last row
 * (row_bytes of them), or NULL (zeros). 0, or -EP_EUSAGE with the reason
 * in err: t has no rows, or no two different rows to permute. */
int ep_damage_apply(const struct ep_fault *f, const struct ep_tensor_view *t, const uint8_t *stale_row, char *err,
		    size_t len);

#endif
