/* attn_gather.c - the attention-TP all-gather of combined slices, and its check. */
#include "cli/attn_gather.h"

#include <string.h>

#include "collectives/ep.h"
#include "collectives/group.h"
#include "collectives/transport/transport.h"

size_t ep_attn_gather_slot_bytes(int P, size_t slot_rows, int hidden)
{
	return ep_align_up((size_t)P * slot_rows * (size_t)hidden * 2, EP_PAGE);
}

uint16_t *ep_attn_gather_slot(const struct ep_attn_gather *a, int r)
{
	return a->slots + (size_t)(r % a->P) * a->slot_rows * (size_t)a->hidden;
}

size_t ep_attn_gather_recv_bytes(int tp, size_t slot_rows, int hidden)
{
	return ep_align_up((size_t)tp * slot_rows * (size_t)hidden * 2, EP_PAGE);
}

static int spans(const struct ep_attn_gather *a)
{
	return a->net && a->tp > a->P;
}

/* This rank's rows into the receive area of every member on another node
 * (rail: of its rail peer there, the node's area). */
static int put_rows(struct ep_attn_gather *a)
{
	struct ep_attn_net *n = a->net;
	size_t H = (size_t)a->hidden, slot = a->slot_rows * H * 2, rows = (size_t)a->len(a->ctx, n->me);
	memset(n->net_bytes, 0, sizeof(n->net_bytes));
	for (int i = 0; i < a->tp; i++) {
		int r = a->d * a->tp + i, rc;
		if (r / a->P == n->me / a->P || !rows || (n->rail && r % a->P != n->me % a->P))
			continue;
		if ((rc = ep_transport_put(n->t, r, ep_attn_gather_slot(a, n->me), n->recv_id,
					   (size_t)(n->me % a->tp) * slot, rows * H * 2))) {
			ep_sync_fail(a->waiter, rc, "rank %d in phase attn_tp_gather: putting combined rows to rank %d: %s",
				     n->me, r, n->t->error);
			return rc;
		}
		if (r / a->P < (int)(sizeof(n->net_bytes) / sizeof(n->net_bytes[0])))
			n->net_bytes[r / a->P] += rows * H * 2;
	}
	return 0;
}

int ep_attn_gather_run(struct ep_attn_gather *a)
{
	size_t bytes[1] = {2 * (size_t)a->hidden};
	void *outs[1] = {a->out};
	struct ep_group_piece pieces[a->tp];
	int rc;
	ep_set_phase(a->waiter, "attn_tp_gather");
	if (spans(a) && ((rc = a->net->ready(a->net->ctx)) || (rc = put_rows(a)) || (rc = a->net->exchange(a->net->ctx))))
		return rc;
	for (int i = 0; i < a->tp; i++) {
		int r = a->d * a->tp + i;
		const uint16_t *from = spans(a) && r / a->P != a->net->me / a->P
			? a->net->recv + (size_t)i * a->slot_rows * (size_t)a->hidden : ep_attn_gather_slot(a, r);
		pieces[i] = (struct ep_group_piece){from, (size_t)a->len(a->ctx, r)};
	}
	return ep_group_gather(a->waiter, pieces, a->tp, 1, bytes, outs);
}

size_t ep_attn_gather_rows(struct ep_attn_gather *a)
{
	size_t n = 0;
	for (int i = 0; i < a->tp; i++)
		n += (size_t)a->len(a->ctx, a->d * a->tp + i);
	return n;
}

void ep_attn_gather_check(struct ep_attn_gather *a, struct ep_check_report *rep)
{
	size_t H = (size_t)a->hidden, at = 0;
	uint16_t want[H + 1];
	for (int i = 0; i < a->tp; i++) {
		int r = a->d * a->tp + i;
		for (int t = 0; t < a->len(a->ctx, r); t++, at++) {
			if (a->expected(a->ctx, r, t, want)) {
				ep_report_scalar(rep, "reference_out_of_memory", 0, 1);
				return;
			}
			ep_compare_row(rep, "attn_tp_gathered_x", EP_ELEM_BF16, want, a->out + at * H, H, (int64_t)at, r, t);
		}
	}
}

void ep_attn_gather_bytes(struct ep_attn_gather *a, size_t own_rows, uint64_t *alg, uint64_t *wire)
{
	uint64_t rows = ep_attn_gather_rows(a), row = 2 * (uint64_t)a->hidden;
	*alg = rows * row;
	*wire = (rows - own_rows) * row;
}
