/* hostinfo.h - what this host is and how fast it copies memory. */
#ifndef EP_HOSTINFO_H
#define EP_HOSTINFO_H

#include <stdint.h>

struct ep_hostinfo {
	char hostname[256];
	char cpu_model[128];
	int cores;        /* online CPUs */
	int numa_nodes;   /* 1 when libnuma is unavailable */
	uint64_t mem_total, mem_available; /* bytes, from /proc/meminfo */
};

void ep_hostinfo_read(struct ep_hostinfo *h);

/* Aggregate memcpy bandwidth of `threads` threads each copying its own
 * 64 MiB buffer (best of a few rounds), in GB/s (1e9 bytes copied per
 * second). Cached per thread count. 0 on failure. */
double ep_host_copy_gbs(int threads);

#endif
