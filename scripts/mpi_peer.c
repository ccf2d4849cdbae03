/* mpi_peer.c - the same dispatch/combine traffic done with MPI_Alltoallv: the peer epbench is compared with.
 *
 * usage: mpirun -np R mpi_peer TOKENS HIDDEN TOPK EXPERTS ITERS WARMUP SEED
 *
 * BF16, uniform routing from epbench's own generator (reference/inputs.h), so
 * the routing and every row are identical to `epbench intranode` with the
 * same seed and shape. Dispatch = pack the rows per destination (one copy)
 * then MPI_Alltoallv; its receive order (source rank, then token) is
 * DeepEP's, so no unpack is needed. Combine = MPI_Alltoallv of the expert
 * outputs back to their owners, then the fp32 sum over destination ranks in
 * ascending order with one rounding, with epbench's own reduction kernel
 * (collectives/combine_kernels.h), so the two differ in communication only. Received dispatch
 * rows are checked against the generator. Per iteration the time is the max
 * over ranks; rank 0 prints one line:
 *   mpi_alltoallv ranks R dispatch_median_us D combine_median_us C wrong N
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/combine_kernels.h"
#include "collectives/layout.h"
#include "collectives/numeric.h"
#include "reference/inputs.h"
#include "reference/transform.h"

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One rank's traffic: its inputs, the exchange plan and the buffers. */
struct peer {
	int me, R, T, H, K, E, iters, warmup;
	uint64_t seed;
	struct ep_shape s;
	struct ep_routing routing;
	size_t row;                      /* bytes of one bf16 row */
	uint16_t *x;                     /* [T][H] this rank's tokens */
	uint8_t *in_rank;                /* [T][R] is_token_in_rank */
	int *scount, *sdispl, *rcount, *rdispl; /* bytes per peer, both ways */
	size_t sent, recvd;              /* rows */
	uint16_t *sendbuf, *recvbuf, *expert_out, *back, *combined;
	const uint16_t **rows; /* [R] the rows of one token, for the reduction */
	size_t *cursor;
	double *td, *tc;                 /* per-iteration max over ranks, us */
};

/* Inputs from epbench's generators, the layout, and the exchange plan. */
static void setup(struct peer *p)
{
	int R = p->R, T = p->T, K = p->K, E = p->E;
	p->s = (struct ep_shape){.num_ranks = R, .num_tokens = T, .hidden = p->H, .num_topk = K,
				 .num_experts = E, .expert_alignment = 1, .with_topk = 1};
	p->routing = (struct ep_routing){.kind = EP_ROUTE_UNIFORM, .payload = EP_PAYLOAD_WIDE};
	p->row = (size_t)p->H * 2;
	int64_t *idx = malloc(sizeof(int64_t) * (size_t)T * K + 8);
	float *w = malloc(sizeof(float) * (size_t)T * K + 8);
	int32_t *per_rank = calloc((size_t)R, sizeof(int32_t)), *per_expert = calloc((size_t)E, sizeof(int32_t));
	int *rows_in = malloc(sizeof(int) * R);
	p->x = malloc(p->row * (size_t)T + 8);
	p->in_rank = malloc((size_t)T * R + 8);
	ep_gen_routing(&p->s, &p->routing, p->seed, p->me, idx, w);
	for (int t = 0; t < T; t++)
		ep_gen_bf16_row(p->seed, &p->routing, EP_STREAM_X, p->me, t, p->H, p->x + (size_t)t * p->H);
	struct ep_layout lay = {per_rank, NULL, per_expert, p->in_rank};
	ep_get_dispatch_layout(idx, T, K, E, R, 0, &lay);
	p->scount = malloc(sizeof(int) * R), p->sdispl = malloc(sizeof(int) * R);
	p->rcount = malloc(sizeof(int) * R), p->rdispl = malloc(sizeof(int) * R);
	MPI_Alltoall(per_rank, 1, MPI_INT, rows_in, 1, MPI_INT, MPI_COMM_WORLD);
	for (int r = 0; r < R; r++) {
		p->scount[r] = per_rank[r] * (int)p->row;
		p->sdispl[r] = (int)(p->sent * p->row);
		p->sent += (size_t)per_rank[r];
		p->rcount[r] = rows_in[r] * (int)p->row;
		p->rdispl[r] = (int)(p->recvd * p->row);
		p->recvd += (size_t)rows_in[r];
	}
	p->sendbuf = malloc(p->sent * p->row + 8), p->recvbuf = malloc(p->recvd * p->row + 8);
	p->expert_out = malloc(p->recvd * p->row + 8), p->back = malloc(p->sent * p->row + 8);
	p->combined = malloc(p->row * (size_t)T + 8);
	p->rows = malloc(sizeof(*p->rows) * (size_t)p->R);
	p->cursor = malloc(sizeof(size_t) * R);
	p->td = malloc(sizeof(double) * (size_t)p->iters), p->tc = malloc(sizeof(double) * (size_t)p->iters);
	free(idx), free(w), free(per_rank), free(per_expert), free(rows_in);
}

/* The time of one collective step, max over ranks, into t[it] (timed iterations). */
static void record(double t0, int it, double *t)
{
	double dt = MPI_Wtime() - t0, mx;
	MPI_Allreduce(&dt, &mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
	if (it >= 0)
		t[it] = mx * 1e6;
}

/* Dispatch: pack the rows per destination, then exchange. */
static void time_dispatch(struct peer *p)
{
	for (int it = -p->warmup; it < p->iters; it++) {
		MPI_Barrier(MPI_COMM_WORLD);
		double t0 = MPI_Wtime();
		for (int r = 0; r < p->R; r++)
			p->cursor[r] = (size_t)p->sdispl[r] / p->row;
		for (int t = 0; t < p->T; t++)
			for (int r = 0; r < p->R; r++)
				if (p->in_rank[(size_t)t * p->R + r])
					memcpy(p->sendbuf + p->cursor[r]++ * (size_t)p->H, p->x + (size_t)t * p->H, p->row);
		MPI_Alltoallv(p->sendbuf, p->scount, p->sdispl, MPI_BYTE, p->recvbuf, p->rcount, p->rdispl, MPI_BYTE,
			      MPI_COMM_WORLD);
		record(t0, it, p->td);
	}
}

/* The received rows against the generator (source-rank blocks, tokens
 * ascending), and the expert stand-in's outputs. Returns the wrong rows. */
static long check_rows(struct peer *p)
{
	long wrong = 0;
	uint16_t *want = malloc(p->row + 8);
	int64_t *sidx = malloc(sizeof(int64_t) * (size_t)p->T * p->K + 8);
	float *sw = malloc(sizeof(float) * (size_t)p->T * p->K + 8);
	size_t m = 0;
	int L = p->E / p->R;
	for (int src = 0; src < p->R; src++) {
		ep_gen_routing(&p->s, &p->routing, p->seed, src, sidx, sw);
		for (int t = 0; t < p->T; t++) {
			int hit = 0;
			for (int j = 0; j < p->K; j++)
				hit |= sidx[(size_t)t * p->K + j] / L == p->me;
			if (!hit)
				continue;
			ep_gen_bf16_row(p->seed, &p->routing, EP_STREAM_X, src, t, p->H, want);
			wrong += memcmp(want, p->recvbuf + m * (size_t)p->H, p->row) != 0;
			ep_expert_transform(p->routing.payload, p->me, -1, p->recvbuf + m * (size_t)p->H, p->H, p->expert_out + m * (size_t)p->H);
			m++;
		}
	}
	free(want), free(sidx), free(sw);
	return wrong;
}

/* Combine: exchange back, then the fp32 sum over destinations, one rounding. */
static void time_combine(struct peer *p)
{
	for (int it = -p->warmup; it < p->iters; it++) {
		MPI_Barrier(MPI_COMM_WORLD);
		double t0 = MPI_Wtime();
		MPI_Alltoallv(p->expert_out, p->rcount, p->rdispl, MPI_BYTE, p->back, p->scount, p->sdispl, MPI_BYTE,
			      MPI_COMM_WORLD);
		for (int r = 0; r < p->R; r++)
			p->cursor[r] = (size_t)p->sdispl[r] / p->row;
		for (int t = 0; t < p->T; t++) {
			int n = 0;
			for (int r = 0; r < p->R; r++)
				if (p->in_rank[(size_t)t * p->R + r])
					p->rows[n++] = p->back + p->cursor[r]++ * (size_t)p->H;
			ep_bf16_reduce_rows(p->rows, n, 0, (size_t)p->H, p->combined + (size_t)t * p->H);
		}
		record(t0, it, p->tc);
	}
}

int main(int argc, char **argv)
{
	struct peer p = {0};
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &p.me);
	MPI_Comm_size(MPI_COMM_WORLD, &p.R);
	if (argc != 8) {
		if (p.me == 0)
			fprintf(stderr, "usage: mpi_peer TOKENS HIDDEN TOPK EXPERTS ITERS WARMUP SEED\n");
		MPI_Finalize();
		return 2;
	}
	p.T = atoi(argv[1]), p.H = atoi(argv[2]), p.K = atoi(argv[3]), p.E = atoi(argv[4]);
	p.iters = atoi(argv[5]), p.warmup = atoi(argv[6]);
	p.seed = strtoull(argv[7], NULL, 0);
	setup(&p);
	time_dispatch(&p);
	long wrong = check_rows(&p), total_wrong = 0;
	time_combine(&p);
	MPI_Reduce(&wrong, &total_wrong, 1, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
	if (p.me == 0)
		printf("mpi_alltoallv ranks %d dispatch_median_us %.1f combine_median_us %.1f wrong %ld\n", p.R,
		       median(p.td, p.iters), median(p.tc, p.iters), total_wrong);
	MPI_Finalize();
	return total_wrong ? 1 : 0;
}
