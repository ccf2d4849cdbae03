/* low_latency_net.c - the network half of low-latency mode: blocks to and from the ranks of other nodes.
 *
 * Every rank of another node is a transport peer (a full mesh). Per
 * collective send (dispatch.send, combine.send, ep_ll_barrier) a rank
 * signals each remote rank exactly once, after the puts of that send, so a
 * receiver waits for "target" signals from each, target being the number
 * of its own sends so far. The areas written here, their parities and
 * slots are laid out by low_latency.c (see its file comment); puts address
 * them as offsets into region LL_NET_AREAS, which starts at net_recv[0].
 * Ranks here are the group's; the transport knows them as world ranks
 * (ll_world: the same unless the group is strided in the world).
 */
#include "collectives/low_latency_int.h"

#include <stdatomic.h>
#include <string.h>

#include "collectives/error.h"
#include "collectives/traffic.h"

/* Slot of rank q in the remote areas of a rank of `node` (q is elsewhere). */
static size_t remote_slot(const struct ep_ll *ctx, int q, int node)
{
	int P = ctx->cfg.ranks_per_node;
	return (size_t)(q < node * P ? q : q - P);
}

/* Remote source s's block of dispatch `call` in this rank's receive area. */
struct block {
	const int32_t *first; /* [L+1]: messages for my expert e are [first[e], first[e+1]) */
	const int32_t *lists; /* [first[L]] source tokens */
	const char *msgs;     /* [first[L]][wire_msg] */
};

static struct block block_of(const struct ep_ll *ctx, int s, uint32_t call)
{
	int L = ctx->cfg.num_experts / ctx->cfg.num_ranks;
	const char *b = ll_region(ctx, ctx->local) + ctx->off.net_recv[call & 1] +
			remote_slot(ctx, s, ctx->node) * ctx->off.block;
	const int32_t *first = (const int32_t *)b;
	size_t head = ep_align_up(((size_t)L + 1 + (size_t)first[L]) * sizeof(int32_t), 16);
	return (struct block){first, first + L + 1, b + head};
}

struct ll_source ep_ll_net_source(const struct ep_ll *ctx, int e, int s, uint32_t call)
{
	struct block b = block_of(ctx, s, call);
	return (struct ll_source){b.lists + b.first[e], b.msgs + (size_t)b.first[e] * ctx->off.wire_msg,
				  ctx->off.wire_msg, 0, b.first[e + 1] - b.first[e]};
}

/* Remote owners' rows sit in this rank's combine receive area, in the order
 * of its own lists (ctx->net_first, from the last dispatch.send). */
const uint16_t *ep_ll_net_expert_row(const struct ep_ll *ctx, int64_t g, int32_t slot)
{
	int o = (int)(g / (ctx->cfg.num_experts / ctx->cfg.num_ranks));
	const char *b = ll_region(ctx, ctx->local) + ctx->off.net_crecv[ctx->comb_calls & 1] +
			remote_slot(ctx, o, ctx->node) * ctx->off.cblock;
	return (const uint16_t *)b + ((size_t)ctx->net_first[g] + (size_t)slot) * (size_t)ctx->cfg.hidden;
}

int ep_ll_peers(const struct ep_ll *ctx, int *peers)
{
	int n = 0;
	for (int q = 0; ctx->net && q < ctx->cfg.num_ranks; q++)
		if (!ll_is_local(ctx, q))
			peers[n++] = ll_world(ctx, q);
	return n;
}

/* A transport failure: one line naming this rank, its phase and the transport's account. */
static int net_fail(struct ep_ll *ctx, int rc)
{
	struct ep_waiter *w = ctx->waiter;
	ep_sync_fail(w, rc, "rank %d (node %d) in phase %s: %s", ll_world(ctx, ctx->rank), ctx->node,
		     atomic_load(&w->sync->ctl[w->rank].phase), ctx->net->error);
	return rc;
}

/* Waits until every remote rank has signalled target times; notes in f
 * (when given and not yet done) when each node's last rank was seen. */
int ep_ll_net_wait(struct ep_ll *ctx, uint32_t target, struct ep_ll_figures *f)
{
	int R = ctx->cfg.num_ranks, P = ctx->cfg.ranks_per_node;
	for (int i = 1; ctx->net && i < R; i++) {
		int q = (ctx->rank + i) % R;
		if (ll_is_local(ctx, q))
			continue;
		int64_t t0 = ep_now_ns();
		ep_traffic_waits(ctx->waiter->traffic, ctx->rank, q); /* for the state block */
		int rc = ep_transport_wait(ctx->net, ll_world(ctx, q), target);
		ctx->waiter->wait_ns += ep_now_ns() - t0; /* a wait on a peer, as the flags' are */
		if (rc)
			return net_fail(ctx, rc); /* the failed wait keeps naming q */
		ep_traffic_waits(ctx->waiter->traffic, ctx->rank, -1);
		if (f && !f->landed) {
			int64_t t = ep_now_ns() - f->start_ns;
			if (t > f->arrival_ns[q / P])
				f->arrival_ns[q / P] = t;
		}
	}
	if (f)
		f->landed = 1;
	return 0;
}

/* Signals every remote rank once: one more collective send. */
static int signal_remote(struct ep_ll *ctx)
{
	int R = ctx->cfg.num_ranks;
	for (int i = 1; ctx->net && i < R; i++) {
		int q = (ctx->rank + i) % R, rc;
		if (!ll_is_local(ctx, q) && (rc = ep_transport_signal(ctx->net, ll_world(ctx, q))))
			return net_fail(ctx, rc);
	}
	ctx->net_sends++;
	return 0;
}

void ep_ll_net_start(const struct ep_ll *ctx, struct ep_ll_figures *f)
{
	if (!ctx->net)
		return;
	memset(f, 0, sizeof(*f));
	f->start_ns = ep_now_ns();
}

int ep_ll_barrier(struct ep_ll *ctx)
{
	struct ep_waiter *w = ctx->waiter;
	int rc = ep_barrier(w);
	if (rc == -EP_ETIMEDOUT && ctx->net) {
		int missing = -1;
		for (int l = 0; l < w->sync->num_ranks && missing < 0; l++)
			if ((int32_t)(atomic_load(&w->sync->ctl[l].arrive.value) - w->epoch) < 0)
				missing = l;
		ep_ll_name_globally(ctx, missing);
	}
	if (rc || (rc = signal_remote(ctx)))
		return rc;
	return ep_ll_net_wait(ctx, ctx->net_sends, NULL);
}

int ep_ll_exchange(struct ep_ll *ctx)
{
	int rc = signal_remote(ctx);
	return rc ? rc : ep_ll_net_wait(ctx, ctx->net_sends, NULL);
}

/* Across nodes: one block per remote rank d (the prefix of this rank's
 * counts for d's experts, the token lists, the messages in list order) out
 * of the send area into the staging area, one put into d's receive area,
 * one signal. Also keeps, per expert, where its rows will start in the
 * owner's combine block (the same prefix). */
int ep_ll_net_send_blocks(struct ep_ll *ctx, const struct ll_send_area *a, uint32_t call)
{
	const struct ep_ll_config *c = &ctx->cfg;
	int R = c->num_ranks, L = c->num_experts / R, N = c->max_tokens, P = c->ranks_per_node;
	size_t payload = ep_ll_row_bytes(c) + (c->dtype == EP_DTYPE_FP8 ? (size_t)c->hidden / 32 : 0);
	size_t wmsg = ctx->off.wire_msg, at = 0;
	char *stage = ll_region(ctx, ctx->local) + ctx->off.net_stage;
	for (int i = 1; i < R; i++) {
		int d = (ctx->rank + i) % R, rc;
		if (ll_is_local(ctx, d))
			continue;
		int32_t *first = (int32_t *)(stage + at), *lists = first + L + 1, n = 0;
		const int32_t *count = ctx->send_count + (size_t)d * L;
		for (int e = 0; e < L; e++) {
			first[e] = ctx->net_first[(size_t)d * L + e] = n;
			n += count[e];
		}
		first[L] = n;
		char *msgs = stage + at + ep_align_up(((size_t)L + 1 + (size_t)n) * sizeof(int32_t), 16);
		for (int e = 0; e < L; e++) {
			const int32_t *list = a->lists + ((size_t)d * L + e) * N;
			memcpy(lists + first[e], list, sizeof(int32_t) * (size_t)count[e]);
			for (int32_t k = 0; k < count[e]; k++)
				memcpy(msgs + (size_t)(first[e] + k) * wmsg, a->rows + (size_t)list[k] * ctx->off.msg,
				       payload);
		}
		size_t len = (size_t)(msgs - (stage + at)) + (size_t)n * wmsg;
		size_t dst = ctx->off.net_recv[call & 1] - ctx->off.net_recv[0] +
			     remote_slot(ctx, ctx->rank, d / P) * ctx->off.block;
		if ((rc = ep_transport_put(ctx->net, ll_world(ctx, d), stage + at, LL_NET_AREAS, dst, len)) ||
		    (rc = ep_transport_signal(ctx->net, ll_world(ctx, d))))
			return net_fail(ctx, rc);
		ctx->last_dispatch.net_bytes[d / P] += len;
		at = ep_align_up(at + len, 64);
	}
	ctx->net_sends++;
	return 0;
}

/* Across nodes: per remote token owner t, the rows of t's tokens, expert by
 * expert (each expert's are contiguous in the combine area), into t's
 * combine receive area; then one signal. */
int ep_ll_net_send_combine(struct ep_ll *ctx, uint32_t call)
{
	const struct ep_ll_config *c = &ctx->cfg;
	int R = c->num_ranks, L = c->num_experts / R, P = c->ranks_per_node, rc;
	size_t RN = (size_t)R * c->max_tokens, rowb = (size_t)c->hidden * sizeof(uint16_t);
	const uint16_t *area = ll_combine_area(ctx, ctx->local);
	for (int i = 1; i < R; i++) {
		int t = (ctx->rank + i) % R;
		if (ll_is_local(ctx, t))
			continue;
		size_t dst = ctx->off.net_crecv[call & 1] - ctx->off.net_recv[0] +
			     remote_slot(ctx, ctx->rank, t / P) * ctx->off.cblock;
		size_t at = 0;
		for (int e = 0; e < L; e++) {
			uint64_t range = (uint64_t)ctx->out.packed_recv_layout_range[(size_t)e * R + t];
			size_t begin = (size_t)(range >> 32), n = (size_t)(range & 0xffffffff);
			if (n && (rc = ep_transport_put(ctx->net, ll_world(ctx, t), area + ((size_t)e * RN + begin) * c->hidden,
							LL_NET_AREAS, dst + at * rowb, n * rowb)))
				return net_fail(ctx, rc);
			at += n;
		}
		if ((rc = ep_transport_signal(ctx->net, ll_world(ctx, t))))
			return net_fail(ctx, rc);
		ctx->last_combine.net_bytes[t / P] += at * rowb;
	}
	ctx->net_sends++;
	return 0;
}

