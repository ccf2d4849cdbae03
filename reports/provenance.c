/* provenance.c - build, host and run facts of a result (see provenance.h). */
#define _GNU_SOURCE
#include "reports/provenance.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "build_info.h"
#include "collectives/simd.h"

/* The first line of a small sysfs file, into buf ("" when unreadable). */
static void read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	buf[0] = 0;
	if (f) {
		if (fgets(buf, (int)len, f))
			buf[strcspn(buf, "\n")] = 0;
		fclose(f);
	}
}

static void cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	snprintf(buf, len, "unknown");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
			snprintf(buf, len, "%s", strchr(line, ':') + 2);
			buf[strcspn(buf, "\n")] = 0;
			break;
		}
	if (f)
		fclose(f);
}

static void simd(struct ep_provenance *p)
{
	size_t n = 0;
	p->cpu_simd[0] = 0;
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	const struct { const char *name; int has; } feats[] = {
		{"sse4.2", __builtin_cpu_supports("sse4.2")}, {"avx", __builtin_cpu_supports("avx")},
		{"avx2", __builtin_cpu_supports("avx2")},     {"fma", __builtin_cpu_supports("fma")},
		{"avx512f", __builtin_cpu_supports("avx512f")}, {"avx512bw", __builtin_cpu_supports("avx512bw")},
	};
	for (size_t i = 0; i < sizeof(feats) / sizeof(feats[0]); i++)
		if (feats[i].has && n < sizeof(p->cpu_simd))
			n += (size_t)snprintf(p->cpu_simd + n, sizeof(p->cpu_simd) - n, "%s%s", n ? " " : "", feats[i].name);
#endif
	snprintf(p->build_simd, sizeof(p->build_simd), "baseline build; combine and cast kernels: %s (widest here: %s)",
		 ep_simd_name(ep_simd_active()), ep_simd_name(ep_simd_best()));
}

void ep_provenance_collect(struct ep_provenance *p, const char *version)
{
	struct utsname u;
	memset(p, 0, sizeof(*p));
	snprintf(p->version, sizeof(p->version), "%s", version);
	snprintf(p->commit, sizeof(p->commit), "%s", EP_BUILD_COMMIT);
	snprintf(p->compiler, sizeof(p->compiler), "%s", EP_BUILD_COMPILER);
	snprintf(p->cflags, sizeof(p->cflags), "%s", EP_BUILD_CFLAGS);
	snprintf(p->sanitizer, sizeof(p->sanitizer), "%s", EP_BUILD_SANITIZER);
	snprintf(p->libs, sizeof(p->libs), "%s", EP_BUILD_LIBS);
	if (uname(&u) == 0)
		snprintf(p->kernel, sizeof(p->kernel), "%s", u.release);
	cpu_model(p->cpu_model, sizeof(p->cpu_model));
	simd(p);
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(p->start_utc, sizeof(p->start_utc), "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void ep_provenance_rdma(struct ep_provenance *p, const char *dev)
{
	char name[64] = "", path[512], fw[64], rate[64];
	if (dev) {
		snprintf(name, sizeof(name), "%s", dev);
	} else {
		DIR *d = opendir("/sys/class/infiniband");
		struct dirent *e;
		while (d && (e = readdir(d)))
			if (e->d_name[0] != '.') {
				snprintf(name, sizeof(name), "%.63s", e->d_name);
				break;
			}
		if (d)
			closedir(d);
	}
	if (!name[0])
		return;
	snprintf(path, sizeof(path), "/sys/class/infiniband/%s/fw_ver", name);
	read_line(path, fw, sizeof(fw));
	snprintf(path, sizeof(path), "/sys/class/infiniband/%s/ports/1/rate", name);
	read_line(path, rate, sizeof(rate));
	snprintf(p->rdma, sizeof(p->rdma), "%s, firmware %s, port 1 rate %s", name, fw[0] ? fw : "unknown",
		 rate[0] ? rate : "unknown");
}
