/* provenance.h - which build, host and run produced a result, so that nobody has to guess later.
 *
 * Build facts are embedded at build time (scripts/build-info.sh: the source
 * commit, "unknown" outside git and "-dirty" for a changed tree; the
 * compiler, its flags, the sanitizer, library versions); host facts are read
 * when the run starts (kernel release, CPU model and the SIMD features this
 * build selects among, memory, NUMA nodes); run facts come from the command
 * (transport, the launcher convention, the seed, RDMA device, firmware and
 * port rate when verbs ran) and the start time in UTC.
 */
#ifndef EP_PROVENANCE_H
#define EP_PROVENANCE_H

#include <stdint.h>

struct ep_provenance {
	char version[32];
	char commit[64];          /* "1a2b3c4d5e6f", "...-dirty" or "unknown" */
	char compiler[128];
	char cflags[512];
	char sanitizer[32];       /* "none", "address", ... */
	char libs[256];           /* "libibverbs 1.14, librdmacm 1.3, libgsl 2.7.1, ..." */
	char kernel[128];         /* uname -r */
	char cpu_model[128];
	char cpu_simd[128];       /* what the CPU offers among those the build can use */
	char build_simd[128];     /* what the build compiles for and selects at run time */
	uint64_t mem_total;       /* bytes */
	int numa_nodes, cores;
	char transport[200];      /* as the run's header says it */
	char launcher[200];       /* node jobs: which convention gave nodes and rank; else "" */
	char environment[320];    /* options the deployment's environment set (cli/deploy_env.h); else "" */
	char rdma[256];           /* verbs: device, firmware, port rate; else "" */
	uint64_t seed;
	char start_utc[32];       /* "2026-11-30T13:45:00Z" */
};

/* Build and host facts, and now as the start time. */
void ep_provenance_collect(struct ep_provenance *p, const char *version);

/* The RDMA device's firmware and port rate (sysfs), for a run over verbs
 * on dev (NULL: the first device). Leaves rdma empty when there is none. */
void ep_provenance_rdma(struct ep_provenance *p, const char *dev);

#endif
