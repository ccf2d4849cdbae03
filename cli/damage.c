/* damage.c - the data faults, generic over output views (see damage.h). */
#include "cli/damage.h"

#include <stdio.h>
#include <string.h>

#include "collectives/error.h"

const struct ep_tensor_view *ep_damage_target(const struct ep_fault *f, const struct ep_tensor_view *v, int n,
					      int receives)
{
	if (f->tensor[0]) {
		for (int i = 0; i < n; i++)
			if (strcmp(v[i].name, f->tensor) == 0)
				return &v[i];
		return NULL;
	}
	return receives && n > 0 ? &v[0] : NULL;
}

/* Permute: the last row and the latest one before it that differs. */
static int permute(const struct ep_tensor_view *t)
{
	uint8_t *last = t->base + (t->rows - 1) * t->row_bytes;
	for (size_t r = t->rows - 1; r-- > 0;) {
		uint8_t *other = t->base + r * t->row_bytes;
		if (memcmp(other, last, t->row_bytes) == 0)
			continue;
		for (size_t b = 0; b < t->row_bytes; b++) {
			uint8_t x = other[b];
			other[b] = last[b];
			last[b] = x;
		}
		return 0;
	}
	return -1;
}

int ep_damage_apply(const struct ep_fault *f, const struct ep_tensor_view *t, const uint8_t *stale_row, char *err,
		    size_t len)
{
	if (!t->rows || !t->row_bytes) {
		snprintf(err, len, "--fault %s: %s has no rows on rank %d in this run", f->name, t->name, f->rank);
		return -EP_EUSAGE;
	}
	uint8_t *last = t->base + (t->rows - 1) * t->row_bytes;
	switch (f->kind) {
	case EP_FAULT_BITFLIP: /* the low bit of the middle byte: a value, never only padding */
		last[t->row_bytes / 2] ^= 1;
		return 0;
	case EP_FAULT_PERMUTE:
		if (permute(t) == 0)
			return 0;
		snprintf(err, len, "--fault permute: rank %d has no two different rows of %s to swap", f->rank, t->name);
		return -EP_EUSAGE;
	case EP_FAULT_DROP:
		memset(last, 0, t->row_bytes);
		return 0;
	case EP_FAULT_STALE:
		if (stale_row)
			memcpy(last, stale_row, t->row_bytes);
		else
			memset(last, 0, t->row_bytes);
		return 0;
	default:
		return 0;
	}
}
