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
 * ascending order with one rounding, as epbench's combine. Received dispatch
 * rows are checked against the generator. Per iteration the time is the max
 * over ranks; rank 0 prints one line:
 *   mpi_alltoallv ranks R dispatch_median_us D combine_median_us C wrong N
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(int argc, char **argv)
{
	MPI_Init(&argc, &argv);
	int me, R;
	MPI_Comm_rank(MPI_COMM_WORLD, &me);
	MPI_Comm_size(MPI_COMM_WORLD, &R);
	if (argc != 8) {
		if (me == 0)
			fprintf(stderr, "usage: mpi_peer TOKENS HIDDEN TOPK EXPERTS ITERS WARMUP SEED\n");
		MPI_Finalize();
		return 2;
	}
	int T = atoi(argv[1]), H = atoi(argv[2]), K = atoi(argv[3]), E = atoi(argv[4]);
	int iters = atoi(argv[5]), warmup = atoi(argv[6]);
	uint64_t seed = strtoull(argv[7], NULL, 0);
	struct ep_shape s = {.num_ranks = R, .num_tokens = T, .hidden = H, .num_topk = K,
			     .num_experts = E, .expert_alignment = 1, .with_topk = 1};
	struct ep_routing routing = {.kind = EP_ROUTE_UNIFORM};
	size_t row = (size_t)H * 2;

	int64_t *idx = malloc(sizeof(int64_t) * (size_t)T * K + 8);
	float *w = malloc(sizeof(float) * (size_t)T * K + 8);
	uint16_t *x = malloc(row * (size_t)T + 8);
	int32_t *per_rank = calloc((size_t)R, sizeof(int32_t));
	int32_t *per_expert = calloc((size_t)E, sizeof(int32_t));
	uint8_t *in_rank = malloc((size_t)T * R + 8);
	ep_gen_routing(&s, &routing, seed, me, idx, w);
	for (int t = 0; t < T; t++)
		ep_gen_bf16_row(seed, EP_STREAM_X, me, t, H, x + (size_t)t * H);
	struct ep_layout lay = {per_rank, NULL, per_expert, in_rank};
	ep_get_dispatch_layout(idx, T, K, E, R, 0, &lay);

	int *scount = malloc(sizeof(int) * R), *sdispl = malloc(sizeof(int) * R);
	int *rcount = malloc(sizeof(int) * R), *rdispl = malloc(sizeof(int) * R);
	int *rows_in = malloc(sizeof(int) * R);
	MPI_Alltoall(per_rank, 1, MPI_INT, rows_in, 1, MPI_INT, MPI_COMM_WORLD);
	size_t sent = 0, recvd = 0;
	for (int r = 0; r < R; r++) {
		scount[r] = per_rank[r] * (int)row;
		sdispl[r] = (int)(sent * row);
		sent += (size_t)per_rank[r];
		rcount[r] = rows_in[r] * (int)row;
		rdispl[r] = (int)(recvd * row);
		recvd += (size_t)rows_in[r];
	}
	uint16_t *sendbuf = malloc(sent * row + 8), *recvbuf = malloc(recvd * row + 8);
	uint16_t *expert_out = malloc(recvd * row + 8), *back = malloc(sent * row + 8);
	uint16_t *combined = malloc(row * (size_t)T + 8);
	float *acc = malloc(sizeof(float) * (size_t)H);
	size_t *cursor = malloc(sizeof(size_t) * R);
	double *td = malloc(sizeof(double) * (size_t)iters), *tc = malloc(sizeof(double) * (size_t)iters);

	for (int it = -warmup; it < iters; it++) { /* dispatch: pack + exchange */
		MPI_Barrier(MPI_COMM_WORLD);
		double t0 = MPI_Wtime();
		for (int r = 0; r < R; r++)
			cursor[r] = (size_t)sdispl[r] / row;
		for (int t = 0; t < T; t++)
			for (int r = 0; r < R; r++)
				if (in_rank[(size_t)t * R + r])
					memcpy(sendbuf + cursor[r]++ * (size_t)H, x + (size_t)t * H, row);
		MPI_Alltoallv(sendbuf, scount, sdispl, MPI_BYTE, recvbuf, rcount, rdispl, MPI_BYTE, MPI_COMM_WORLD);
		double dt = MPI_Wtime() - t0, mx;
		MPI_Allreduce(&dt, &mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
		if (it >= 0)
			td[it] = mx * 1e6;
	}
	/* Check the rows: source-rank blocks, tokens ascending (regenerated routing). */
	long wrong = 0;
	uint16_t *want = malloc(row + 8);
	int64_t *sidx = malloc(sizeof(int64_t) * (size_t)T * K + 8);
	float *sw = malloc(sizeof(float) * (size_t)T * K + 8);
	size_t m = 0;
	int L = E / R;
	for (int src = 0; src < R; src++) {
		ep_gen_routing(&s, &routing, seed, src, sidx, sw);
		for (int t = 0; t < T; t++) {
			int hit = 0;
			for (int j = 0; j < K; j++)
				hit |= sidx[(size_t)t * K + j] / L == me;
			if (!hit)
				continue;
			ep_gen_bf16_row(seed, EP_STREAM_X, src, t, H, want);
			wrong += memcmp(want, recvbuf + m * (size_t)H, row) != 0;
			ep_expert_transform(me, -1, recvbuf + m * (size_t)H, H, expert_out + m * (size_t)H);
			m++;
		}
	}
	for (int it = -warmup; it < iters; it++) { /* combine: exchange back + reduce */
		MPI_Barrier(MPI_COMM_WORLD);
		double t0 = MPI_Wtime();
		MPI_Alltoallv(expert_out, rcount, rdispl, MPI_BYTE, back, scount, sdispl, MPI_BYTE, MPI_COMM_WORLD);
		for (int r = 0; r < R; r++)
			cursor[r] = (size_t)sdispl[r] / row;
		for (int t = 0; t < T; t++) {
			memset(acc, 0, sizeof(float) * (size_t)H);
			for (int r = 0; r < R; r++) {
				if (!in_rank[(size_t)t * R + r])
					continue;
				const uint16_t *y = back + cursor[r]++ * (size_t)H;
				for (int c = 0; c < H; c++)
					acc[c] += ep_bf16_to_f32(y[c]);
			}
			ep_f32_row_to_bf16(acc, combined + (size_t)t * H, (size_t)H);
		}
		double dt = MPI_Wtime() - t0, mx;
		MPI_Allreduce(&dt, &mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
		if (it >= 0)
			tc[it] = mx * 1e6;
	}
	long total_wrong = 0;
	MPI_Reduce(&wrong, &total_wrong, 1, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
	if (me == 0)
		printf("mpi_alltoallv ranks %d dispatch_median_us %.1f combine_median_us %.1f wrong %ld\n", R,
		       median(td, iters), median(tc, iters), total_wrong);
	MPI_Finalize();
	return total_wrong ? 1 : 0;
}
