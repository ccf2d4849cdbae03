/* internode.c - hierarchical normal dispatch/combine: rail peers over the network, forwarding in the node.
 *
 * Node arena: counts [R][R] | expert_counts [R][E] | rdma_counts [R][N] |
 * P receive areas laid out as collectives/intranode.c lays them out. Local
 * rank g writes the count rows of its rail sources (s, g) only, and the
 * rows it forwards; every area row has exactly one writer per dispatch.
 *
 * Dispatch record (16-byte aligned): x row | scales [S] f32 | token i32 |
 * local-rank bits u32 | topk ids [K] i32 (global) | weights [K] f32.
 * Combine record: partial [H] bf16 | weight partials [K] f32.
 *
 * Signal accounting: every step sends a fixed number of signals to each rail
 * peer, computable on both sides from counts both know, so a receiver waits
 * for "expect + k" where expect counts everything consumed so far. Per peer
 * the stream is ordered, so reaching a count implies every earlier step's
 * data is in place.
 */
#include "collectives/internode.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/combine_kernels.h"
#include "collectives/error.h"
#include "collectives/numeric.h"
#include "collectives/traffic.h"

#define CHUNK_BYTES (512 * 1024)


struct arena_plan {
	size_t counts, expert_counts, rdma_counts, areas; /* from the arena start */
	size_t area_bytes, total;
};

static void plan_arena(const struct ep_shape *s, int per_node, size_t cap, struct arena_plan *p)
{
	size_t R = (size_t)s->num_ranks, E = (size_t)s->num_experts, N = R / (size_t)per_node;
	p->counts = 0;
	p->expert_counts = ep_align_up(R * R * 4, EP_PAGE);
	p->rdma_counts = ep_align_up(p->expert_counts + R * E * 4, EP_PAGE);
	p->areas = ep_align_up(p->rdma_counts + R * N * 4, EP_PAGE);
	p->area_bytes = ep_recv_area_bytes(s, cap);
	p->total = p->areas + (size_t)per_node * p->area_bytes;
}

size_t ep_internode_arena_bytes(const struct ep_shape *s, int ranks_per_node, size_t capacity)
{
	struct arena_plan p;
	plan_arena(s, ranks_per_node, capacity, &p);
	return p.total;
}

void ep_internode_arena_view(const struct ep_shape *s, int ranks_per_node, size_t capacity, void *arena, int local,
			     int32_t **counts, struct ep_recv_area *area)
{
	struct arena_plan p;
	plan_arena(s, ranks_per_node, capacity, &p);
	*counts = (int32_t *)((char *)arena + p.counts);
	*area = ep_recv_area_at((char *)arena + p.areas + (size_t)local * p.area_bytes, s, capacity);
}

/* Byte offsets inside a dispatch record. */
static size_t rec_scales(const struct ep_shape *s)
{
	return ep_dtype_row_bytes(s->dtype, s->hidden);
}
static size_t rec_meta(const struct ep_shape *s)
{
	return rec_scales(s) + 4 * (size_t)ep_dtype_num_scales(s->dtype, s->hidden);
}
static size_t rec_topk(const struct ep_shape *s)
{
	return rec_meta(s) + 8;
}

size_t ep_internode_rank_bytes(const struct ep_shape *s, int ranks_per_node,
			       const struct ep_internode_sizes *sizes)
{
	size_t R = (size_t)s->num_ranks, T = (size_t)s->num_tokens, H = (size_t)s->hidden;
	size_t K = (size_t)s->num_topk, P = (size_t)(ranks_per_node > 0 ? ranks_per_node : 1);
	size_t N = R / P, rec = ep_align_up(rec_topk(s) + 8 * K, 16), crec = ep_align_up(2 * H + 4 * K, 16);
	size_t meta = ep_align_up(4 * (R + (size_t)s->num_experts + N), 16);
	size_t regions = 2 * N * meta + (sizes->rdma_capacity + 1) * rec + (sizes->send_capacity + 1) * crec +
			 2 * (CHUNK_BYTES + rec + crec);
	size_t iov = 2 * (CHUNK_BYTES / (rec < crec ? rec : crec) + 1) * sizeof(struct iovec); /* gathered puts */
	return regions + P * sizeof(*((struct ep_internode *)0)->areas) + 4 * R * R + T * R + 4 * N +
	       4 * (size_t)ep_local_experts(s) + 4 * (sizes->rdma_capacity + 1) * P + 4 * K + iov + 64;
}

void ep_internode_fini(struct ep_internode *ctx)
{
	free(ctx->areas);
	for (int i = 0; i < EP_NET_NUM_REGIONS; i++)
		free(ctx->region[i]);
	free(ctx->rank_prefix_matrix);
	free(ctx->is_token_in_rank);
	free(ctx->num_tokens_per_rdma_rank);
	free(ctx->num_recv_tokens_per_expert);
	free(ctx->fwd_rows);
	free(ctx->iov);
	free(ctx->zeros);
	free(ctx->wacc);
	memset(ctx, 0, sizeof(*ctx));
}

int ep_internode_init(struct ep_internode *ctx, const struct ep_shape *s, int ranks_per_node,
		      int node, int local, void *arena, const struct ep_internode_sizes *sizes,
		      struct ep_waiter *w, struct ep_transport *net)
{
	struct arena_plan p;
	int P = ranks_per_node, R = s->num_ranks, N = R / P, E = s->num_experts;
	size_t T = (size_t)s->num_tokens, H = (size_t)s->hidden, K = (size_t)s->num_topk;
	memset(ctx, 0, sizeof(*ctx));
	if (P <= 0 || R % P || N > EP_INTERNODE_MAX_NODES || P > EP_INTERNODE_MAX_RANKS_PER_NODE)
		return -EINVAL;
	plan_arena(s, P, sizes->capacity, &p);
	ctx->shape = *s;
	ctx->nodes = N;
	ctx->per_node = P;
	ctx->node = node;
	ctx->local = local;
	ctx->rank = node * P + local;
	ctx->net_per_node = P, ctx->net_local = local, ctx->net_node_first = node * P;
	ctx->sizes = *sizes;
	ctx->waiter = w;
	ctx->net = net;
	ctx->rec_bytes = ep_align_up(rec_topk(s) + 8 * K, 16);
	ctx->crec_bytes = ep_align_up(2 * H + 4 * K, 16);
	ctx->meta_bytes = ep_align_up(4 * ((size_t)R + (size_t)E + (size_t)N), 16);
	size_t big = ctx->rec_bytes > ctx->crec_bytes ? ctx->rec_bytes : ctx->crec_bytes;
	ctx->chunk = (int)(CHUNK_BYTES / big) > 0 ? (int)(CHUNK_BYTES / big) : 1;
	/* a transport that puts from anywhere sends each payload straight from x */
	if (net && ep_transport_has_putv(net) &&
	    (!(ctx->iov = calloc(3 * (size_t)ctx->chunk, sizeof(struct iovec))) ||
	     !(ctx->zeros = calloc(1, ctx->crec_bytes))))
		return -ENOMEM;
	char *base = arena;
	ctx->counts = (int32_t *)(base + p.counts);
	ctx->expert_counts = (int32_t *)(base + p.expert_counts);
	ctx->rdma_counts = (int32_t *)(base + p.rdma_counts);
	ctx->areas = calloc((size_t)P, sizeof(*ctx->areas));
	ctx->region_bytes[EP_NET_META] = 2 * (size_t)N * ctx->meta_bytes;
	ctx->region_bytes[EP_NET_RECV] = (sizes->rdma_capacity + 1) * ctx->rec_bytes;
	ctx->region_bytes[EP_NET_COMBINE] = (sizes->send_capacity + 1) * ctx->crec_bytes;
	ctx->region_bytes[EP_NET_STAGE] = (size_t)ctx->chunk * ctx->rec_bytes;
	ctx->region_bytes[EP_NET_CSTAGE] = (size_t)ctx->chunk * ctx->crec_bytes;
	for (int i = 0; i < EP_NET_NUM_REGIONS; i++)
		ctx->region[i] = calloc(1, ctx->region_bytes[i]);
	ctx->rank_prefix_matrix = calloc((size_t)R * R, 4);
	ctx->is_token_in_rank = calloc(T * (size_t)R + 1, 1);
	ctx->num_tokens_per_rdma_rank = calloc((size_t)N, 4);
	ctx->num_recv_tokens_per_expert = calloc((size_t)ep_local_experts(s) + 1, 4);
	ctx->fwd_rows = malloc(4 * ((sizes->rdma_capacity + 1) * (size_t)P));
	ctx->wacc = calloc(K + 1, sizeof(float));
	int ok = ctx->areas && ctx->rank_prefix_matrix && ctx->is_token_in_rank &&
		 ctx->num_tokens_per_rdma_rank && ctx->num_recv_tokens_per_expert && ctx->fwd_rows &&
		 ctx->wacc;
	for (int i = 0; i < EP_NET_NUM_REGIONS; i++)
		ok = ok && ctx->region[i];
	if (!ok) {
		ep_internode_fini(ctx);
		return -ENOMEM;
	}
	for (int r = 0; r < P; r++)
		ctx->areas[r] = ep_recv_area_at(base + p.areas + (size_t)r * p.area_bytes, s, sizes->capacity);
	ctx->areas_base = base + p.areas;
	ctx->areas_bytes = (size_t)P * p.area_bytes;
	for (int i = 0; i < EP_NET_NUM_REGIONS; i++) {
		int rc = ep_transport_reg_mem(net, i, ctx->region[i], ctx->region_bytes[i]);
		if (rc) {
			ep_internode_fini(ctx);
			return rc;
		}
	}
	if (ctx->iov) { /* the areas, shared with the node's ranks, as a put target */
		int rc = ep_transport_reg_mem(net, EP_NET_AREAS, ctx->areas_base, ctx->areas_bytes);
		if (rc) {
			ep_internode_fini(ctx);
			return rc;
		}
	}
	return 0;
}

/* The rail peer on node `node` as the transport knows it (ep_internode_net_ids). */
static int net_of(const struct ep_internode *ctx, int node)
{
	return node * ctx->net_per_node + ctx->net_local;
}

int ep_internode_peers(const struct ep_internode *ctx, int *peers)
{
	int n = 0;
	for (int m = 0; m < ctx->nodes; m++)
		if (m != ctx->node)
			peers[n++] = net_of(ctx, m);
	return n;
}

static int peer_of(const struct ep_internode *ctx, int node)
{
	return node * ctx->per_node + ctx->local;
}


/* A network failure: one line naming this rank, its phase and the transport's account. */
static int net_fail(struct ep_internode *ctx, int rc)
{
	struct ep_waiter *w = ctx->waiter;
	ep_sync_fail(w, rc, "rank %d (node %d) in phase %s: %s", net_of(ctx, ctx->node), ctx->node,
		     atomic_load(&w->sync->ctl[w->rank].phase), ctx->net->error);
	return rc;
}

/* Node barrier whose timeout message names global ranks (the job's: a
 * group of a larger job names its world ranks, net_of). */
static int node_barrier(struct ep_internode *ctx)
{
	struct ep_waiter *w = ctx->waiter;
	int rc = ep_barrier(w);
	if (rc != -EP_ETIMEDOUT)
		return rc;
	struct ep_sync *s = w->sync;
	int missing = -1;
	for (int r = 0; r < s->num_ranks && missing < 0; r++)
		if ((int32_t)(atomic_load(&s->ctl[r].arrive.value) - w->epoch) < 0)
			missing = r;
	struct ep_rank_ctl *me = &s->ctl[w->rank];
	snprintf(me->message, sizeof(me->message),
		 "rank %d (node %d) timed out after %.1f s in phase %s waiting for rank %d of its node (local %d, in phase %s)",
		 net_of(ctx, ctx->node), ctx->node, (double)w->timeout_ns / 1e9, atomic_load(&me->phase),
		 missing >= 0 ? ctx->net_node_first + missing : -1, missing,
		 missing >= 0 ? atomic_load(&s->ctl[missing].phase) : "?");
	return rc;
}

/* Waits until node m has signalled `target` times in all. */
static int wait_to(struct ep_internode *ctx, int m, uint32_t target)
{
	struct ep_traffic *t = ctx->waiter->traffic;
	ep_traffic_waits(t, ctx->rank, peer_of(ctx, m)); /* for the state block: whom this rank waits for */
	int rc = ep_transport_wait(ctx->net, net_of(ctx, m), target);
	if (!rc) /* a wait that failed keeps naming its peer, as sync.h's do */
		ep_traffic_waits(t, ctx->rank, -1);
	return rc ? net_fail(ctx, rc) : 0;
}

/* Waits for the k-th signal from node m beyond those consumed. */
static int wait_from(struct ep_internode *ctx, int m, uint32_t k)
{
	return wait_to(ctx, m, ctx->expect[m] + k);
}

static uint32_t nchunks(const struct ep_internode *ctx, int64_t rows)
{
	return rows <= 0 ? 1 : (uint32_t)((rows + ctx->chunk - 1) / ctx->chunk);
}

int ep_internode_barrier(struct ep_internode *ctx)
{
	int rc = node_barrier(ctx);
	if (rc)
		return rc;
	for (int m = 0; m < ctx->nodes; m++)
		if (m != ctx->node && (rc = ep_transport_signal(ctx->net, net_of(ctx, m))))
			return net_fail(ctx, rc);
	for (int m = 0; m < ctx->nodes; m++)
		if (m != ctx->node) {
			if ((rc = wait_from(ctx, m, 1)))
				return rc;
			ctx->expect[m]++;
		}
	return 0;
}

/* The notify step's arithmetic over the R count rows in the arena. */
static int build_handle(struct ep_internode *ctx)
{
	const struct ep_shape *s = &ctx->shape;
	int R = s->num_ranks, N = ctx->nodes;
	int P = ctx->per_node, me = ctx->rank;
	for (int j = 0; j < R; j++) {
		int32_t acc = 0;
		for (int i = 0; i < R; i++) {
			acc += ctx->counts[i * R + j];
			ctx->rank_prefix_matrix[i * R + j] = acc;
		}
		if ((size_t)acc > ctx->sizes.capacity)
			return -EP_ENOSPC;
	}
	/* every rank's network buffer and combine buffer must fit too */
	for (int q = 0; q < R; q++) {
		int64_t in = 0, out = 0;
		for (int sn = 0; sn < N; sn++)
			in += ctx->rdma_counts[(sn * P + q % P) * N + q / P];
		for (int m = 0; m < N; m++)
			out += ctx->rdma_counts[q * N + m];
		if ((size_t)in > ctx->sizes.rdma_capacity || (size_t)out > ctx->sizes.send_capacity)
			return -EP_ENOSPC;
	}
	ep_recv_tokens_per_expert(s, me, ctx->expert_counts, ctx->num_recv_tokens_per_expert);
	ctx->have_handle = 1;
	return 0;
}

/* Rows from source (sn, g) into this rank's network buffer, and where they start. */
static int64_t rdma_rows_from(const struct ep_internode *ctx, int sn, int64_t *start)
{
	int N = ctx->nodes, P = ctx->per_node, g = ctx->local;
	int64_t off = 0;
	for (int k = 0; k < sn; k++)
		off += ctx->rdma_counts[(k * P + g) * N + ctx->node];
	if (start)
		*start = off;
	return ctx->rdma_counts[(sn * P + g) * N + ctx->node];
}

/* Where this rank's block starts in rail peer (m, g)'s network buffer. */
static int64_t my_block_at(const struct ep_internode *ctx, int m)
{
	int N = ctx->nodes, P = ctx->per_node, g = ctx->local;
	int64_t off = 0;
	for (int k = 0; k < ctx->node; k++)
		off += ctx->rdma_counts[(k * P + g) * N + m];
	return off;
}

/* Start of node m's block in source q's combine buffer (q's tokens to m, in order). */
static int64_t combine_block(const struct ep_internode *ctx, int q, int m)
{
	int64_t off = 0;
	for (int k = 0; k < m; k++)
		off += ctx->rdma_counts[q * ctx->nodes + k];
	return off;
}

static uint32_t node_bits(const struct ep_internode *ctx, int t, int m)
{
	const uint8_t *itr = ctx->is_token_in_rank + (size_t)t * ctx->shape.num_ranks + m * ctx->per_node;
	uint32_t bits = 0;
	for (int d = 0; d < ctx->per_node; d++)
		bits |= (uint32_t)(itr[d] != 0) << d;
	return bits;
}

/* Token t's meta (token, destination bits) and top-k at rec + rec_meta(s). */
static void pack_meta(const struct ep_internode *ctx, const struct ep_dispatch_in *in, int t, uint32_t bits,
		      char *meta_at)
{
	int K = ctx->shape.num_topk;
	int32_t meta[2] = {t, (int32_t)bits};
	memcpy(meta_at, meta, 8);
	int32_t *idx = (int32_t *)(meta_at + 8);
	float *wt = (float *)(meta_at + 8 + 4 * (size_t)K);
	for (int j = 0; j < K; j++) {
		idx[j] = in->topk_idx ? (int32_t)in->topk_idx[(size_t)t * K + j] : -1;
		wt[j] = in->topk_weights ? in->topk_weights[(size_t)t * K + j] : 0.0f;
	}
}

/* Token t's record after its payload (scales, meta, top-k): tail stands
 * for record offset rec_scales(s). Not for INT8, whose scale comes from
 * quantising the payload. */
static void pack_tail(const struct ep_internode *ctx, const struct ep_dispatch_in *in, int t, uint32_t bits,
		      char *tail)
{
	const struct ep_shape *s = &ctx->shape;
	int S = ep_dtype_num_scales(s->dtype, s->hidden);
	if (S)
		memcpy(tail, in->x_scales + (size_t)t * S, 4 * (size_t)S);
	pack_meta(ctx, in, t, bits, tail + (rec_meta(s) - rec_scales(s)));
}

/* Writes token t's record (payload, scales, meta, topk) at rec. */
static void pack_record(struct ep_internode *ctx, const struct ep_dispatch_in *in, int t,
			uint32_t bits, char *rec)
{
	const struct ep_shape *s = &ctx->shape;
	int H = s->hidden;
	size_t in_row = s->dtype == EP_DTYPE_FP8 ? (size_t)H : (size_t)H * 2;
	const char *src = (const char *)in->x + (size_t)t * in_row;
	if (s->dtype == EP_DTYPE_INT8) {
		float scale = ep_int8_quant_row((const uint16_t *)src, (size_t)H, (int8_t *)rec);
		memcpy(rec + rec_scales(s), &scale, 4);
		pack_meta(ctx, in, t, bits, rec + rec_meta(s));
		return;
	}
	memcpy(rec, src, ep_dtype_row_bytes(s->dtype, H));
	pack_tail(ctx, in, t, bits, rec + rec_scales(s));
}

/* Appends [p, p + len) to a gather list, merged with the last piece when adjacent. */
static void gather(struct iovec *iov, int *n, const void *p, size_t len)
{
	if (!len)
		return;
	if (*n > 0 && (const char *)iov[*n - 1].iov_base + iov[*n - 1].iov_len == (const char *)p) {
		iov[*n - 1].iov_len += len;
		return;
	}
	iov[(*n)++] = (struct iovec){(void *)p, len};
}

/* Does dispatch put records gathered from x and the stage (putv), rather
 * than packed whole into the stage? Not for INT8 (quantised payloads).
 * Gathered dispatch splits the network buffer: payloads [rdma_capacity + 1]
 * of rec_scales bytes, then tails [rdma_capacity + 1] (scales, meta, top-k),
 * and lands a payload bound for the receiving rank itself straight in its
 * receive area (region EP_NET_AREAS), at its final row. */
static int gathers_dispatch(const struct ep_internode *ctx)
{
	return ctx->iov && ctx->shape.dtype != EP_DTYPE_INT8;
}

/* Record i's tail (scales, meta, top-k) in this rank's network buffer. */
static char *rec_tail(const struct ep_internode *ctx, int64_t i)
{
	size_t head = rec_scales(&ctx->shape), tb = ctx->rec_bytes - head;
	if (gathers_dispatch(ctx))
		return ctx->region[EP_NET_RECV] + (ctx->sizes.rdma_capacity + 1) * head + (size_t)i * tb;
	return ctx->region[EP_NET_RECV] + (size_t)i * ctx->rec_bytes + head;
}

/* A chunk of records for a remote node being gathered (split layout):
 * pieces in ctx->iov, [0, chunk) payloads for the rail peer itself, [chunk,
 * 2 chunk) the other payloads, [2 chunk, 3 chunk) the tails. */
struct chunk_out {
	int n[3];         /* pieces in each list */
	int direct, other; /* records whose payload goes to the rail peer's area, or to the buffer */
	int64_t row;      /* the rail peer's area row of the next direct payload */
	int64_t slot;     /* the network-buffer payload slot of the next other payload */
};

/* Stages record c of a chunk to a remote node: gathered (the payload stays
 * in x, the tail goes to the stage) or packed whole into the stage. */
static void stage_record(struct ep_internode *ctx, const struct ep_dispatch_in *in, int t, uint32_t bits, int c,
			 struct chunk_out *o)
{
	const struct ep_shape *s = &ctx->shape;
	size_t rb = ctx->rec_bytes, head = rec_scales(s), tb = rb - head;
	char *stage = ctx->region[EP_NET_STAGE];
	if (!gathers_dispatch(ctx)) {
		pack_record(ctx, in, t, bits, stage + (size_t)c * rb);
		return;
	}
	char *tail = stage + (size_t)c * tb;
	pack_tail(ctx, in, t, bits, tail);
	int direct = bits >> ctx->local & 1, list = direct ? 0 : 1;
	gather(ctx->iov + (size_t)list * ctx->chunk, &o->n[list], (const char *)in->x + (size_t)t * head, head);
	gather(ctx->iov + 2 * (size_t)ctx->chunk, &o->n[2], tail, tb);
	o->direct += direct;
	o->other += !direct;
}

/* Puts the c staged records to node m's network buffer at record `at`
 * (gathered: the payloads to the rail peer's area and to the buffer, then
 * the tails), and starts the next chunk. */
static int put_staged(struct ep_internode *ctx, int m, int64_t at, int c, struct chunk_out *o)
{
	const struct ep_shape *s = &ctx->shape;
	size_t rb = ctx->rec_bytes, head = rec_scales(s), tb = rb - head;
	int q = net_of(ctx, m), rc = 0;
	if (!gathers_dispatch(ctx))
		return ep_transport_put(ctx->net, q, ctx->region[EP_NET_STAGE], EP_NET_RECV, (size_t)at * rb,
					(size_t)c * rb);
	size_t x_at = (size_t)((char *)ctx->areas[ctx->local].x - ctx->areas_base);
	if (o->direct && (rc = ep_transport_putv(ctx->net, q, ctx->iov, o->n[0], EP_NET_AREAS,
						 x_at + (size_t)o->row * head)))
		return rc;
	if (o->other && (rc = ep_transport_putv(ctx->net, q, ctx->iov + ctx->chunk, o->n[1], EP_NET_RECV,
						(size_t)o->slot * head)))
		return rc;
	rc = ep_transport_putv(ctx->net, q, ctx->iov + 2 * (size_t)ctx->chunk, o->n[2], EP_NET_RECV,
			       (ctx->sizes.rdma_capacity + 1) * head + (size_t)at * tb);
	o->row += o->direct;
	o->slot += o->other;
	o->n[0] = o->n[1] = o->n[2] = o->direct = o->other = 0;
	return rc;
}

/* Where forward finds the payloads of one source node's records. */
struct fwd_src {
	const char *x_own; /* own node (not INT8): in this rank's dispatch input, at their token */
	int split;         /* another node, gathered dispatch: a payload for this rank landed in
			    * its area at its row, the others at consecutive payload slots */
	int64_t slot;      /* split: the next payload slot */
};

/* The own node's part of dispatch.forward, done in slices between the puts
 * to other nodes (a put that waits for socket room leaves the CPU to the
 * copy), and finished by forward_all. */
struct own_forward {
	int cached;       /* dispatch with the previous handle */
	int64_t next, end; /* own node's network rows still to forward */
	int32_t first[EP_INTERNODE_MAX_RANKS_PER_NODE];  /* each local rank's row of the first one */
	int32_t cursor[EP_INTERNODE_MAX_RANKS_PER_NODE]; /* each local rank's next row */
	struct fwd_src src;
};

static void forward_rows(struct ep_internode *ctx, int64_t first, int64_t last, int32_t *cursor, int cached,
			 struct fwd_src *src);

/* Forwards up to `rows` more of the own node's rows. Does not block. */
static void forward_own(struct ep_internode *ctx, struct own_forward *o, int64_t rows)
{
	int64_t last = o->end - o->next < rows ? o->end : o->next + rows;
	forward_rows(ctx, o->next, last, o->cursor, o->cached, &o->src);
	o->next = last;
}

/* Sends this rank's records for node m (own node: their tails in place,
 * the payloads stay in x; INT8: whole records in place); after each chunk
 * to another node, forwards a chunk of the own node's rows (of). */
static int send_to_node(struct ep_internode *ctx, const struct ep_dispatch_in *in, int m, struct own_forward *of)
{
	const struct ep_shape *s = &ctx->shape;
	int T = s->num_tokens, own = m == ctx->node, R = s->num_ranks, me = ctx->rank;
	size_t rb = ctx->rec_bytes;
	int64_t at = my_block_at(ctx, m), start = at;
	struct chunk_out o = {.slot = at};
	if (me > 0) /* our rows at (m, g) follow those of every lower global rank */
		o.row = ctx->rank_prefix_matrix[(size_t)(me - 1) * R + (size_t)(m * ctx->per_node + ctx->local)];
	int c = 0, rc;
	uint32_t sent = 0;
	for (int t = 0; t < T; t++) {
		uint32_t bits = node_bits(ctx, t, m);
		if (!bits)
			continue;
		if (own) {
			if (s->dtype == EP_DTYPE_INT8)
				pack_record(ctx, in, t, bits, ctx->region[EP_NET_RECV] + (size_t)(at + c++) * rb);
			else
				pack_tail(ctx, in, t, bits, rec_tail(ctx, at + c++));
			continue;
		}
		stage_record(ctx, in, t, bits, c++, &o);
		if (c < ctx->chunk)
			continue;
		if ((rc = put_staged(ctx, m, at, c, &o)) || (rc = ep_transport_signal(ctx->net, net_of(ctx, m))))
			return net_fail(ctx, rc);
		ctx->last_dispatch.net_bytes[m] += (uint64_t)c * rb;
		at += c;
		c = 0;
		sent++;
		ep_traffic_sent(ctx->waiter->traffic, ctx->op_seq, ctx->rank, peer_of(ctx, m), (uint32_t)(at - start));
		forward_own(ctx, of, ctx->chunk);
	}
	if (own)
		return 0;
	if (c > 0 && (rc = put_staged(ctx, m, at, c, &o)))
		return net_fail(ctx, rc);
	ctx->last_dispatch.net_bytes[m] += (uint64_t)c * rb;
	if ((c > 0 || sent == 0) && (rc = ep_transport_signal(ctx->net, net_of(ctx, m))))
		return net_fail(ctx, rc);
	ep_traffic_sent(ctx->waiter->traffic, ctx->op_seq, ctx->rank, peer_of(ctx, m), (uint32_t)(at + c - start));
	return 0;
}

/* The payload of a record with destination bits `bits` and token t. */
static const char *fwd_payload(struct ep_internode *ctx, struct fwd_src *src, int64_t i, uint32_t bits, int32_t t,
			       const int32_t *cursor)
{
	size_t row_bytes = rec_scales(&ctx->shape);
	if (src->x_own)
		return src->x_own + (size_t)t * row_bytes;
	if (!src->split)
		return ctx->region[EP_NET_RECV] + (size_t)i * ctx->rec_bytes;
	if (bits >> ctx->local & 1)
		return (const char *)ctx->areas[ctx->local].x + (size_t)cursor[ctx->local] * row_bytes;
	return ctx->region[EP_NET_RECV] + (size_t)(src->slot++) * row_bytes;
}

/* Forwards network-buffer rows [first, last) to the local ranks, each at
 * its next row (cursor); a payload already in place is not copied. */
static void forward_rows(struct ep_internode *ctx, int64_t first, int64_t last, int32_t *cursor, int cached,
			 struct fwd_src *src)
{
	const struct ep_shape *s = &ctx->shape;
	int P = ctx->per_node, K = s->num_topk, L = ep_local_experts(s);
	int S = ep_dtype_num_scales(s->dtype, s->hidden);
	size_t row_bytes = ep_dtype_row_bytes(s->dtype, s->hidden), sc = rec_scales(s);
	int topk = !cached && s->with_topk;
	for (int64_t i = first; i < last; i++) {
		const char *tail = rec_tail(ctx, i);
		int32_t meta[2];
		memcpy(meta, tail + (rec_meta(s) - sc), 8);
		uint32_t bits = (uint32_t)meta[1];
		const char *payload = fwd_payload(ctx, src, i, bits, meta[0], cursor);
		const int32_t *idx = (const int32_t *)(tail + (rec_topk(s) - sc));
		const float *wt = (const float *)(tail + (rec_topk(s) - sc) + 4 * (size_t)K);
		for (int d = 0; d < P; d++) {
			if (!(bits >> d & 1)) {
				if (!cached)
					ctx->fwd_rows[(size_t)i * P + d] = -1;
				continue;
			}
			struct ep_recv_area *a = &ctx->areas[d];
			size_t row = (size_t)cursor[d]++;
			char *dst = (char *)a->x + row * row_bytes;
			if (dst != payload) {
				memcpy(dst, payload, row_bytes);
				ctx->last_dispatch.nvl_bytes += row_bytes;
			}
			if (S)
				memcpy(a->x_scales + row * (size_t)S, tail, 4 * (size_t)S);
			ctx->last_dispatch.nvl_bytes += 4 * (size_t)S;
			if (cached)
				continue;
			ctx->fwd_rows[(size_t)i * P + d] = (int32_t)row;
			a->src_idx[row] = meta[0];
			if (!topk)
				continue;
			int64_t lo = (int64_t)(ctx->node * P + d) * L;
			for (int j = 0; j < K; j++) {
				int64_t v = idx[j];
				int mine = v >= lo && v < lo + L;
				a->topk_idx[row * (size_t)K + j] = mine ? v - lo : -1;
				a->topk_weights[row * (size_t)K + j] = mine ? wt[j] : 0.0f;
			}
		}
	}
}

/* Rows global source q sends local rank d of this node (from the count rows). */
static uint32_t rows_to_local(const struct ep_internode *ctx, int q, int d)
{
	return (uint32_t)ctx->counts[(size_t)q * ctx->shape.num_ranks + (size_t)(ctx->node * ctx->per_node + d)];
}

/* Rows this rank, as forwarder, hands local rank d in one dispatch: those
 * of every rail source (s, g) for d. */
static uint32_t forwarded_to(const struct ep_internode *ctx, int d)
{
	uint32_t rows = 0;
	for (int sn = 0; sn < ctx->nodes; sn++)
		rows += rows_to_local(ctx, peer_of(ctx, sn), d);
	return rows;
}

/* Traffic words of a dispatch (collectives/traffic.h): the records this
 * rank puts to each rail peer, known at the start; the receiver counts
 * their arrival, chunk by chunk, in forward. */
static void expect_records(struct ep_internode *ctx, const int32_t *per_node)
{
	for (int m = 0; m < ctx->nodes; m++)
		if (m != ctx->node)
			ep_traffic_expect(ctx->waiter->traffic, ctx->op_seq, ctx->rank, peer_of(ctx, m),
					  (uint32_t)per_node[m], (uint32_t)ctx->rec_bytes, EP_HOP_NET);
}

/* The forward hop's words: rows for each local rank, and those copied so far. */
static void publish_forward(struct ep_internode *ctx, const int32_t *done, int expect)
{
	const struct ep_shape *s = &ctx->shape;
	uint32_t rb = (uint32_t)(ep_dtype_row_bytes(s->dtype, s->hidden) + 4 * (size_t)ep_dtype_num_scales(s->dtype, s->hidden));
	for (int d = 0; d < ctx->per_node; d++) {
		int q = ctx->node * ctx->per_node + d;
		if (expect)
			ep_traffic_expect(ctx->waiter->traffic, ctx->op_seq, ctx->rank, q, forwarded_to(ctx, d), rb, EP_HOP_SHM);
		ep_traffic_arrived(ctx->waiter->traffic, ctx->op_seq, ctx->rank, q, (uint32_t)done[d]);
	}
}

/* Where the own node's forward starts: its rows in the network buffer
 * (tails in place), payloads in x_own, or whole records when x_own is NULL. */
static void own_forward_begin(struct ep_internode *ctx, struct own_forward *o, int cached, const char *x_own)
{
	int R = ctx->shape.num_ranks, n = ctx->node, P = ctx->per_node, q = ctx->rank;
	int64_t start, rows = rdma_rows_from(ctx, n, &start);
	o->cached = cached;
	o->next = start;
	o->end = start + rows;
	for (int d = 0; d < P; d++)
		o->first[d] = o->cursor[d] = q > 0 ? ctx->rank_prefix_matrix[(q - 1) * R + n * P + d] : 0;
	o->src = (struct fwd_src){x_own, 0, start};
}

/* dispatch.forward: the rest of the own node's records (o), then every
 * other node's chunk by chunk as its signals arrive. 0 or the failed
 * wait's code. */
static int forward_all(struct ep_internode *ctx, struct own_forward *o, int64_t t0)
{
	int R = ctx->shape.num_ranks, N = ctx->nodes, P = ctx->per_node, n = ctx->node, me = ctx->rank, rc;
	int cached = o->cached;
	int32_t cursor[P], done[P];
	memset(done, 0, sizeof(done));
	publish_forward(ctx, done, 1);
	forward_own(ctx, o, o->end - o->next);
	for (int d = 0; d < P; d++)
		done[d] = o->cursor[d] - o->first[d];
	publish_forward(ctx, done, 0);
	ctx->num_rdma_recv = (size_t)(o->end - o->src.slot);
	for (int k = 1; k < N; k++) {
		int sn = (n + k) % N, q = peer_of(ctx, sn);
		int64_t start, rows = rdma_rows_from(ctx, sn, &start);
		ctx->num_rdma_recv += (size_t)rows;
		for (int d = 0; d < P; d++) {
			cursor[d] = q > 0 ? ctx->rank_prefix_matrix[(q - 1) * R + n * P + d] : 0;
			done[d] -= cursor[d];
		}
		uint32_t chunks = nchunks(ctx, rows);
		struct fwd_src src = {NULL, gathers_dispatch(ctx), start};
		for (uint32_t c = 0; c < chunks; c++) {
			if ((rc = wait_from(ctx, sn, c + 1)))
				return rc;
			int64_t first = start + (int64_t)c * ctx->chunk;
			int64_t last = first + ctx->chunk < start + rows ? first + ctx->chunk : start + rows;
			ep_traffic_arrived(ctx->waiter->traffic, ctx->op_seq, q, me, (uint32_t)(last - start));
			forward_rows(ctx, first, last, cursor, cached, &src);
		}
		for (int d = 0; d < P; d++)
			done[d] += cursor[d];
		publish_forward(ctx, done, 0);
		ctx->expect[sn] += chunks;
		ctx->last_dispatch.arrival_ns[sn] = ep_now_ns() - t0;
	}
	return 0;
}

int ep_internode_dispatch(struct ep_internode *ctx, const struct ep_dispatch_in *in, int cached,
			  struct ep_dispatch_out *out)
{
	const struct ep_shape *s = &ctx->shape;
	struct ep_waiter *w = ctx->waiter;
	int R = s->num_ranks, E = s->num_experts, N = ctx->nodes;
	int me = ctx->rank, n = ctx->node;
	int rc;
	if (cached && !ctx->have_handle)
		return -EINVAL;
	int64_t t0 = ep_now_ns();
	memset(&ctx->last_dispatch, 0, sizeof(ctx->last_dispatch));

	ctx->op_seq = ep_traffic_begin(w->traffic, me, "dispatch");
	expect_records(ctx, cached ? ctx->num_tokens_per_rdma_rank : in->layout->num_tokens_per_rdma_rank);
	/* notify: count rows to and from the rail peers */
	ep_set_phase(w, "dispatch.notify");
	size_t slot = (size_t)(ctx->dispatches++ & 1) * (size_t)N;
	char *meta = ctx->region[EP_NET_META];
	if (!cached) {
		const struct ep_layout *lay = in->layout;
		int32_t *row = (int32_t *)(meta + (slot + (size_t)n) * ctx->meta_bytes);
		memcpy(row, lay->num_tokens_per_rank, 4 * (size_t)R);
		memcpy(row + R, lay->num_tokens_per_expert, 4 * (size_t)E);
		memcpy(row + R + E, lay->num_tokens_per_rdma_rank, 4 * (size_t)N);
		memcpy(ctx->num_tokens_per_rdma_rank, lay->num_tokens_per_rdma_rank, 4 * (size_t)N);
		memcpy(ctx->is_token_in_rank, lay->is_token_in_rank, (size_t)s->num_tokens * R);
	}
	for (int k = 1; k < N; k++) {
		int m = (n + k) % N;
		if (!cached && (rc = ep_transport_put(ctx->net, net_of(ctx, m),
						      meta + (slot + (size_t)n) * ctx->meta_bytes, EP_NET_META,
						      (slot + (size_t)n) * ctx->meta_bytes, ctx->meta_bytes)))
			return net_fail(ctx, rc);
		if ((rc = ep_transport_signal(ctx->net, net_of(ctx, m))))
			return net_fail(ctx, rc);
	}
	for (int k = 0; k < N; k++) {
		int m = (n + k) % N;
		if (m != n) {
			if ((rc = wait_from(ctx, m, 1)))
				return rc;
			ctx->expect[m]++;
		}
		if (cached)
			continue;
		const int32_t *row = (const int32_t *)(meta + (slot + (size_t)m) * ctx->meta_bytes);
		int q = peer_of(ctx, m);
		memcpy(ctx->counts + (size_t)q * R, row, 4 * (size_t)R);
		memcpy(ctx->expert_counts + (size_t)q * E, row + R, 4 * (size_t)E);
		memcpy(ctx->rdma_counts + (size_t)q * N, row + R + E, 4 * (size_t)N);
	}
	/* everyone in the node has published its rail's rows */
	if ((rc = node_barrier(ctx)))
		return rc;
	if (!cached && (rc = build_handle(ctx)))
		return rc;
	ctx->num_recv = (size_t)ctx->rank_prefix_matrix[(R - 1) * R + me];
	for (int m = 0; m < N; m++)
		ctx->last_dispatch.rdma_tokens += (uint64_t)ctx->rdma_counts[me * N + m];

	/* send: our own node's tails in place, then the other nodes, starting
	 * after our own, with the own node's forward between their chunks */
	ep_set_phase(w, "dispatch.send");
	struct own_forward own;
	own_forward_begin(ctx, &own, cached, s->dtype == EP_DTYPE_INT8 ? NULL : (const char *)in->x);
	for (int k = 0; k < N; k++)
		if ((rc = send_to_node(ctx, in, (n + k) % N, &own)))
			return rc;

	/* forward: the rest of the own node's records, then each source's chunks */
	ep_set_phase(w, "dispatch.forward");
	if ((rc = forward_all(ctx, &own, t0)))
		return rc;
	ep_set_phase(w, "dispatch.recv");
	if ((rc = node_barrier(ctx)))
		return rc;

	int topk = !cached && in->topk_idx;
	*out = ep_recv_area_outputs(&ctx->areas[ctx->local], s, ctx->num_recv, topk,
				    topk && in->topk_weights, ctx->num_recv_tokens_per_expert,
				    ctx->rank_prefix_matrix);
	ep_set_phase(w, "idle");
	return 0;
}

uint16_t *ep_internode_combine_x(struct ep_internode *ctx)
{
	return ctx->areas[ctx->local].combine_x;
}

float *ep_internode_combine_w(struct ep_internode *ctx)
{
	return ctx->areas[ctx->local].combine_w;
}

/* The node partial of network row i: local destinations ascending, from +0. */
static void node_partial(struct ep_internode *ctx, int64_t i, int with_w, char *rec)
{
	const struct ep_shape *s = &ctx->shape;
	int P = ctx->per_node, H = s->hidden, K = s->num_topk, n = 0;
	const uint16_t *rows[P > 0 ? P : 1];
	float *wacc = ctx->wacc;
	for (int j = 0; j < K; j++)
		wacc[j] = 0.0f;
	for (int d = 0; d < P; d++) {
		int32_t row = ctx->fwd_rows[(size_t)i * P + d];
		if (row < 0)
			continue;
		rows[n++] = ctx->areas[d].combine_x + (size_t)row * H;
		ctx->last_combine.nvl_bytes += 2 * (uint64_t)H;
		if (with_w)
			for (int j = 0; j < K; j++)
				wacc[j] += ctx->areas[d].combine_w[(size_t)row * K + j];
	}
	ep_bf16_reduce_rows(rows, n, 0, (size_t)H, (uint16_t *)rec);
	memcpy(rec + 2 * (size_t)H, wacc, 4 * (size_t)K);
}

/* The one local rank whose combine row, by itself, is network row i's node
 * partial; -1 when several rows meet there, or ctx->raw_rows is off. Why a
 * lone row may stand for its partial: the partial is bf16(+0 + float(r)),
 * which is r except that -0 becomes +0 and a NaN the canonical NaN
 * (numeric.h), and the weights' is +0 + w, which is w except for -0 (a
 * NaN weight is quieted by the source's first addition either way). The
 * source's final sum adds the partial to an accumulator that started as
 * float(first) + 0.0f, which round-to-nearest never makes -0, nor any sum
 * after it, so a -0 addend acts as +0 does; a NaN addend makes the sum NaN,
 * rounded to the canonical NaN either way. Two biases start the sum at
 * float(bias0) + float(bias1), which can be -0: raw_rows is off then. */
static int single_row(const struct ep_internode *ctx, int64_t i)
{
	int P = ctx->per_node, one = -1;
	if (!ctx->raw_rows)
		return -1;
	for (int d = 0; d < P; d++) {
		if (ctx->fwd_rows[(size_t)i * P + d] < 0)
			continue;
		if (one >= 0)
			return -1;
		one = d;
	}
	return one;
}

/* Network rows [first, last) as combine records gathered into ctx->iov (at
 * most 3 pieces a record): a lone row's partial is the row itself (with its
 * weights or zeros, then zero padding), any other is reduced into the
 * stage. Returns the number of pieces. */
static int gather_partials(struct ep_internode *ctx, int64_t first, int64_t last, int with_w)
{
	const struct ep_shape *s = &ctx->shape;
	size_t cb = ctx->crec_bytes, xb = 2 * (size_t)s->hidden, wb = 4 * (size_t)s->num_topk;
	char *stage = ctx->region[EP_NET_CSTAGE];
	int n = 0;
	for (int64_t i = first; i < last; i++) {
		int d = single_row(ctx, i);
		if (d < 0) {
			char *rec = stage + (size_t)(i - first) * cb;
			node_partial(ctx, i, with_w, rec);
			gather(ctx->iov, &n, rec, cb);
			continue;
		}
		size_t row = (size_t)ctx->fwd_rows[(size_t)i * ctx->per_node + d];
		const struct ep_recv_area *a = &ctx->areas[d];
		gather(ctx->iov, &n, a->combine_x + row * (size_t)s->hidden, xb);
		if (with_w)
			gather(ctx->iov, &n, a->combine_w + row * (size_t)s->num_topk, wb);
		gather(ctx->iov, &n, ctx->zeros, cb - xb - (with_w ? wb : 0));
		ctx->last_combine.nvl_bytes += xb;
	}
	return n;
}

/* Puts the partials of network rows [start + first, start + last) to q at combine record at + first. */
static int put_partials(struct ep_internode *ctx, int q, int64_t start, int64_t first, int64_t last, int64_t at,
			int with_w)
{
	size_t cb = ctx->crec_bytes;
	char *stage = ctx->region[EP_NET_CSTAGE];
	if (ctx->iov) {
		int n = gather_partials(ctx, start + first, start + last, with_w);
		return ep_transport_putv(ctx->net, q, ctx->iov, n, EP_NET_COMBINE, (size_t)(at + first) * cb);
	}
	for (int64_t i = first; i < last; i++)
		node_partial(ctx, start + i, with_w, stage + (size_t)(i - first) * cb);
	return ep_transport_put(ctx->net, q, stage, EP_NET_COMBINE, (size_t)(at + first) * cb,
				(size_t)(last - first) * cb);
}

/* combine.final's progress through this rank's tokens, kept between calls
 * so that the sum advances between the puts of combine.reduce, over
 * partials that have just landed (still in cache), instead of after them. */
struct final_sum {
	const uint16_t *bias0, *bias1;       /* [T][H] or NULL */
	uint16_t *combined_x;                /* [T][H] */
	float *combined_w;                   /* [T][K] or NULL */
	int with_w;                          /* sum the weight partials too */
	int t;                               /* the next token to sum */
	int64_t own_start;                   /* own node's first network row from this rank */
	int64_t at[EP_INTERNODE_MAX_NODES];  /* records: this rank's block for node m in its combine buffer */
	int64_t k[EP_INTERNODE_MAX_NODES];   /* node m's next partial */
	uint32_t got[EP_INTERNODE_MAX_NODES]; /* node m's chunks seen */
	uint32_t base[EP_INTERNODE_MAX_NODES]; /* node m's signals before its first chunk (notify's included) */
	int64_t t0;                          /* op start, for arrival times */
};

static int sum_tokens(struct ep_internode *ctx, struct final_sum *f, int block, int max_tokens);

/* Reduces the rows that came from remote node sn and returns the partials
 * to (sn, g), chunk by chunk; between chunks the final sum takes whatever
 * partials have arrived (f), without blocking. */
static int reduce_for(struct ep_internode *ctx, int sn, struct final_sum *f)
{
	int q = peer_of(ctx, sn), rc;
	size_t cb = ctx->crec_bytes;
	int64_t start, rows = rdma_rows_from(ctx, sn, &start);
	int64_t at = combine_block(ctx, q, ctx->node);
	/* (sn, g) said its combine buffer is free */
	if ((rc = wait_from(ctx, sn, 1)))
		return rc;
	ctx->expect[sn]++;
	uint32_t chunks = nchunks(ctx, rows);
	for (uint32_t c = 0; c < chunks; c++) {
		int64_t first = (int64_t)c * ctx->chunk;
		int64_t last = first + ctx->chunk < rows ? first + ctx->chunk : rows;
		if ((last > first && (rc = put_partials(ctx, net_of(ctx, sn), start, first, last, at, f->with_w))) ||
		    (rc = ep_transport_signal(ctx->net, net_of(ctx, sn))))
			return net_fail(ctx, rc);
		ep_traffic_sent(ctx->waiter->traffic, ctx->op_seq, ctx->rank, q, (uint32_t)last);
		ctx->last_combine.net_bytes[sn] += (uint64_t)(last - first) * cb;
		/* at most a chunk's worth: summing more delays our puts, which
		 * the peer's own sum waits for (2 x 2 over veth: +47% without) */
		if ((rc = sum_tokens(ctx, f, 0, ctx->chunk)))
			return rc;
	}
	return 0;
}

/* Traffic words of a combine: this rank's combine input is in place for
 * every local forwarder (they pull it), and the partials it owes each
 * rail source are expected; the source counts them in combine.recv. */
static void expect_combine(struct ep_internode *ctx)
{
	const struct ep_shape *s = &ctx->shape;
	struct ep_traffic *t = ctx->waiter->traffic;
	int P = ctx->per_node, R = s->num_ranks;
	ctx->op_seq = ep_traffic_begin(t, ctx->rank, "combine");
	for (int g = 0; g < P; g++) {
		uint32_t rows = 0;
		for (int sn = 0; sn < ctx->nodes; sn++)
			rows += (uint32_t)ctx->counts[(size_t)(sn * P + g) * R + (size_t)ctx->rank];
		ep_traffic_expect(t, ctx->op_seq, ctx->rank, ctx->node * P + g, rows, (uint32_t)(2 * s->hidden), EP_HOP_SHM);
		ep_traffic_arrived(t, ctx->op_seq, ctx->rank, ctx->node * P + g, rows);
	}
	for (int sn = 0; sn < ctx->nodes; sn++) {
		int64_t start, rows = rdma_rows_from(ctx, sn, &start);
		if (sn != ctx->node)
			ep_traffic_expect(t, ctx->op_seq, ctx->rank, peer_of(ctx, sn), (uint32_t)rows,
					  (uint32_t)ctx->crec_bytes, EP_HOP_NET);
	}
}

/* Has node m's partial k arrived (its chunk's signal)? Does not block. */
static int partial_ready(struct ep_internode *ctx, const struct final_sum *f, int m, int64_t k)
{
	uint32_t need = (uint32_t)(k / ctx->chunk) + 1;
	return f->got[m] >= need || ep_transport_test(ctx->net, net_of(ctx, m), f->base[m] + need);
}

/* Waits until node m's partial k (in this rank's combine block for m) has
 * arrived: its chunk's signal; f->got[m] counts the chunks seen. */
static int partial_arrived(struct ep_internode *ctx, struct final_sum *f, int m, int64_t k)
{
	uint32_t need = (uint32_t)(k / ctx->chunk) + 1;
	if (f->got[m] >= need)
		return 0;
	int idle = !ep_transport_test(ctx->net, net_of(ctx, m), f->base[m] + need), rc;
	if (idle)
		ep_set_phase(ctx->waiter, "combine.recv");
	rc = wait_to(ctx, m, f->base[m] + need);
	if (idle)
		ep_set_phase(ctx->waiter, "combine.final");
	if (rc)
		return rc;
	f->got[m] = need;
	int64_t rows = ctx->rdma_counts[ctx->rank * ctx->nodes + m], seen = (int64_t)need * ctx->chunk;
	ep_traffic_arrived(ctx->waiter->traffic, ctx->op_seq, peer_of(ctx, m), ctx->rank,
			   (uint32_t)(seen < rows ? seen : rows));
	if (need == nchunks(ctx, rows))
		ctx->last_combine.arrival_ns[m] = ep_now_ns() - f->t0;
	return 0;
}

/* Node m's partial k for this rank: its row and weight partials, from the
 * combine buffer, or (own node) the local row itself when it is alone, else
 * the own node's partial, reduced here into the combine buffer just before
 * the final sum reads it. */
static const uint16_t *partial_of(struct ep_internode *ctx, const struct final_sum *f, int m, int64_t k,
				  const float **pw)
{
	const struct ep_shape *s = &ctx->shape;
	int own = m == ctx->node, d = own ? single_row(ctx, f->own_start + k) : -1;
	if (d >= 0) {
		size_t row = (size_t)ctx->fwd_rows[(size_t)(f->own_start + k) * ctx->per_node + d];
		*pw = ctx->areas[d].combine_w + row * (size_t)s->num_topk;
		return ctx->areas[d].combine_x + row * (size_t)s->hidden;
	}
	char *rec = ctx->region[EP_NET_COMBINE] + (size_t)(f->at[m] + k) * ctx->crec_bytes;
	if (own)
		node_partial(ctx, f->own_start + k, f->with_w, rec);
	*pw = (const float *)(rec + 2 * (size_t)s->hidden);
	return (const uint16_t *)rec;
}

/* combine.recv and combine.final: from token f->t on, at most max_tokens
 * tokens, each token's bias, then its node partials in ascending node
 * order, one sum from +0 (DeepEP), one more rounding. block: wait for
 * partials still on their way; else stop (0) at the first token one of
 * whose partials has not arrived. 0 or a failed wait's code. */
static int sum_tokens(struct ep_internode *ctx, struct final_sum *f, int block, int max_tokens)
{
	const struct ep_shape *s = &ctx->shape;
	int N = ctx->nodes, n = ctx->node, H = s->hidden, K = s->num_topk, rc;
	int T = max_tokens < s->num_tokens - f->t ? f->t + max_tokens : s->num_tokens; /* end of this call */
	const uint16_t *rows[N + 2];
	float wsum[K > 0 ? K : 1];
	for (; f->t < T; f->t++) {
		int t = f->t, nr = 0;
		for (int m = 0; m < N && !block; m++)
			if (m != n && node_bits(ctx, t, m) && !partial_ready(ctx, f, m, f->k[m]))
				return 0;
		size_t off = (size_t)t * H;
		if (f->bias0)
			rows[nr++] = f->bias0 + off;
		if (f->bias1)
			rows[nr++] = f->bias1 + off;
		for (int j = 0; j < K; j++)
			wsum[j] = 0.0f;
		for (int m = 0; m < N; m++) {
			if (!node_bits(ctx, t, m))
				continue;
			if (m != n && (rc = partial_arrived(ctx, f, m, f->k[m])))
				return rc;
			const float *pw;
			rows[nr++] = partial_of(ctx, f, m, f->k[m]++, &pw);
			if (f->with_w)
				for (int j = 0; j < K; j++)
					wsum[j] += pw[j];
		}
		ep_bf16_reduce_rows(rows, nr, f->bias0 && f->bias1, (size_t)H, f->combined_x + off);
		if (f->combined_w)
			memcpy(f->combined_w + (size_t)t * K, wsum, sizeof(float) * (size_t)K);
	}
	return 0;
}

/* The sum's starting point: token 0, every node's first partial; a remote
 * node's chunk signals follow the one its combine.notify sends. */
static void final_begin(struct ep_internode *ctx, struct final_sum *f, int64_t t0)
{
	int N = ctx->nodes, me = ctx->rank;
	f->t = 0;
	f->t0 = t0;
	rdma_rows_from(ctx, ctx->node, &f->own_start);
	for (int m = 0; m < N; m++) {
		f->at[m] = combine_block(ctx, me, m);
		f->k[m] = 0;
		f->got[m] = 0;
		f->base[m] = ctx->expect[m] + (m != ctx->node);
	}
}

/* The rest of the final sum, blocking; then every chunk signal is
 * consumed (a node with no partials for us still signalled once). */
static int combine_final(struct ep_internode *ctx, struct final_sum *f)
{
	int N = ctx->nodes, n = ctx->node, me = ctx->rank, rc;
	ep_set_phase(ctx->waiter, "combine.final");
	if ((rc = sum_tokens(ctx, f, 1, ctx->shape.num_tokens)))
		return rc;
	for (int m = 0; m < N; m++) {
		uint32_t chunks = nchunks(ctx, ctx->rdma_counts[me * N + m]);
		if (m != n && (rc = partial_arrived(ctx, f, m, (int64_t)(chunks - 1) * ctx->chunk)))
			return rc;
		if (m != n)
			ctx->expect[m] += chunks;
	}
	return 0;
}

int ep_internode_combine(struct ep_internode *ctx, const uint16_t *bias0, const uint16_t *bias1,
			 uint16_t *combined_x, float *combined_w)
{
	const struct ep_shape *s = &ctx->shape;
	struct ep_waiter *w = ctx->waiter;
	int N = ctx->nodes, n = ctx->node, rc;
	if (!ctx->have_handle)
		return -EINVAL;
	int64_t t0 = ep_now_ns();
	memset(&ctx->last_combine, 0, sizeof(ctx->last_combine));
	expect_combine(ctx);
	ep_set_phase(w, "combine.notify");
	/* our combine buffer is free: the previous combine is fully reduced */
	for (int m = 0; m < N; m++)
		if (m != n && (rc = ep_transport_signal(ctx->net, net_of(ctx, m))))
			return net_fail(ctx, rc);
	if ((rc = node_barrier(ctx))) /* every local combine input is in place */
		return rc;
	ep_set_phase(w, "combine.reduce");
	struct final_sum f = {.bias0 = bias0, .bias1 = bias1, .combined_x = combined_x, .combined_w = combined_w,
			      .with_w = combined_w != NULL && s->with_topk};
	ctx->raw_rows = !(bias0 && bias1); /* every rank passes the same biases: see single_row */
	final_begin(ctx, &f, t0);
	/* the own node's partials are reduced by the final sum, as it reaches them */
	for (int k = 1; k < N; k++)
		if ((rc = reduce_for(ctx, (n + k) % N, &f)))
			return rc;

	ctx->last_combine.rdma_tokens = ctx->last_dispatch.rdma_tokens;
	if ((rc = combine_final(ctx, &f)))
		return rc;
	ep_set_phase(w, "combine.done");
	if ((rc = node_barrier(ctx))) /* local forwarders finished reading our input */
		return rc;
	ep_set_phase(w, "idle");
	return 0;
}
