/* budget.c - memory and process limits of a run, checked before forking. */
#define _GNU_SOURCE
#include "cli/budget.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "cli/hostinfo.h"
#include "collectives/error.h"

size_t ep_budget_rank_floor(const struct ep_shape *s)
{
	double R = s->num_ranks, T = s->num_tokens, H = s->hidden, K = s->num_topk;
	double b = 3 * T * H + 12 * R * T * K; /* x (>= 1 byte), combined_x (2 bytes), routing */
	return b < 0x1p60 ? (size_t)b : (size_t)1 << 60;
}

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* How many more processes this user may start: the kernel's limits less
 * what runs now, and RLIMIT_NPROC (which does not bind root). */
static long procs_free(const char **which)
{
	struct sysinfo si;
	long running = sysinfo(&si) == 0 ? (long)si.procs : 0;
	long kernel = read_long("/proc/sys/kernel/threads-max"), pid_max = read_long("/proc/sys/kernel/pid_max");
	if (pid_max > 0 && (kernel < 0 || pid_max < kernel))
		kernel = pid_max;
	long left = kernel > 0 ? kernel - running : 1L << 30;
	*which = "kernel.threads-max/pid_max";
	struct rlimit rl;
	if (geteuid() != 0 && getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (long)rl.rlim_cur - running < left) {
		left = (long)rl.rlim_cur - running; /* counts all processes: an upper bound for ours */
		*which = "RLIMIT_NPROC (ulimit -u)";
	}
	return left;
}

int ep_budget_check(size_t shared_bytes, size_t rank_bytes, int procs, char *msg, size_t len)
{
	const char *which;
	long left = procs_free(&which);
	if (procs > left - 32) { /* a margin for the launcher, the shell and the system */
		snprintf(msg, len, "%d rank processes exceed what this machine allows: %ld more processes (%s); lower --num-ranks",
			 procs, left > 32 ? left - 32 : 0, which);
		return -EP_ENOMEM;
	}
	struct ep_hostinfo h;
	ep_hostinfo_read(&h);
	double per_rank = (double)rank_bytes + (double)EP_RANK_OVERHEAD_BYTES;
	double need = (double)shared_bytes + procs * per_rank, have = (double)h.mem_available;
	if (h.mem_available && need > have * 0.9) {
		snprintf(msg, len, "the run needs about %.2f GiB (%.2f GiB shared + %d ranks x %.3f GiB private) but %.2f GiB of memory is available (90%% usable); lower --num-tokens, --hidden or --num-ranks",
			 need / (1 << 30), (double)shared_bytes / (1 << 30), procs, per_rank / (1 << 30),
			 have / (1 << 30));
		return -EP_ENOMEM;
	}
	return 0;
}
