/* hostinfo.c - /proc readings, libnuma, and a memcpy bandwidth probe. */
#include "cli/hostinfo.h"

#include <numa.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collectives/sync.h"

static uint64_t meminfo_kb(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	unsigned long long v = 0;
	size_t n = strlen(key);
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, n) == 0 && line[n] == ':') {
			sscanf(line + n + 1, "%llu", &v);
			break;
		}
	fclose(f);
	return v;
}

void ep_hostinfo_read(struct ep_hostinfo *h)
{
	memset(h, 0, sizeof(*h));
	gethostname(h->hostname, sizeof(h->hostname) - 1);
	h->cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
	h->numa_nodes = numa_available() >= 0 ? numa_num_configured_nodes() : 1;
	if (h->numa_nodes < 1)
		h->numa_nodes = 1;
	h->mem_total = meminfo_kb("MemTotal") * 1024;
	h->mem_available = meminfo_kb("MemAvailable") * 1024;
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	snprintf(h->cpu_model, sizeof(h->cpu_model), "unknown");
	while (f && fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');
		if (strncmp(line, "model name", 10) == 0 && c) {
			c += 2;
			c[strcspn(c, "\n")] = 0;
			snprintf(h->cpu_model, sizeof(h->cpu_model), "%s", c);
			break;
		}
	}
	if (f)
		fclose(f);
}

#define COPY_BYTES (64u << 20)
#define COPY_ROUNDS 4

struct copier {
	char *src, *dst;
};

static void *copy_thread(void *arg)
{
	struct copier *c = arg;
	memcpy(c->dst, c->src, COPY_BYTES);
	return NULL;
}

static double measure(int threads)
{
	double best = 0;
	struct copier c[threads];
	pthread_t tid[threads];
	int ok = 1;
	for (int i = 0; i < threads; i++) {
		c[i].src = malloc(COPY_BYTES);
		c[i].dst = malloc(COPY_BYTES);
		ok &= c[i].src && c[i].dst;
		if (c[i].src && c[i].dst) { /* fault the pages in before timing */
			memset(c[i].src, 1, COPY_BYTES);
			memset(c[i].dst, 2, COPY_BYTES);
		}
	}
	for (int round = 0; ok && round < COPY_ROUNDS; round++) {
		int started = 0;
		int64_t t0 = ep_now_ns();
		for (int i = 0; i < threads; i++)
			started += pthread_create(&tid[started], NULL, copy_thread, &c[i]) == 0;
		for (int i = 0; i < started; i++)
			pthread_join(tid[i], NULL);
		double s = (double)(ep_now_ns() - t0) * 1e-9;
		double gbs = (double)COPY_BYTES * started / s / 1e9;
		if (started == threads && gbs > best)
			best = gbs;
	}
	for (int i = 0; i < threads; i++) {
		free(c[i].src);
		free(c[i].dst);
	}
	return best;
}

double ep_host_copy_gbs(int threads)
{
	static double cache[257];
	if (threads < 1)
		threads = 1;
	if (threads > 256)
		threads = 256;
	if (cache[threads] == 0)
		cache[threads] = measure(threads);
	return cache[threads];
}
