/* preflight.h - is this host set up for a meaningful acceptance run? One verdict per item, with its fix.
 *
 * Each item is PASS, WARN or FAIL with its value, one line of reason and,
 * when not PASS, the fix. Read from sysfs and procfs under a root folder
 * ("" on a real host; tests point it at a crafted tree), plus getrlimit and
 * uname: nothing is changed, nothing waits, nothing needs privileges.
 *
 * Items: RDMA devices; per port its state, link layer, rate (Gb/s, from
 * sysfs' "rate", what ibv_query_port's active speed x width gives), MTU
 * (the netdev's, for RoCE) and the RoCE v2 GID a connection will use; every
 * port of the host at the same rate; the NIC's NUMA node; the locked-memory
 * limit against what verbs will register; huge pages; automatic NUMA
 * balancing; the CPU frequency governor; kernel and rdma-core versions;
 * for TCP, each interface that is up, with its speed and MTU.
 */
#ifndef EP_PREFLIGHT_H
#define EP_PREFLIGHT_H

#include <stddef.h>
#include <stdio.h>

#define EP_PREFLIGHT_MAX_ITEMS 96

enum ep_pf_level { EP_PF_PASS, EP_PF_WARN, EP_PF_FAIL };

struct ep_pf_item {
	char name[48];          /* "port rxe0/1 rate", "cpu governor", ... */
	enum ep_pf_level level;
	char value[128];        /* what was found */
	char reason[200];       /* why this level, one line */
	char fix[200];          /* what to do ("" when PASS) */
};

struct ep_preflight {
	int n;
	struct ep_pf_item items[EP_PREFLIGHT_MAX_ITEMS];
	double port_gbps;       /* the common port rate, 0 when none or when they differ */
};

struct ep_pf_opts {
	const char *root;       /* prefix of /sys and /proc ("" or NULL: the real ones) */
	int want_verbs;         /* 1: the runs need RDMA (--transport verbs): no device is a FAIL */
	size_t pin_bytes;       /* what verbs will register per process (the memlock need) */
};

/* Fills pf. Never fails: what cannot be read is an item of its own (WARN). */
void ep_preflight_run(const struct ep_pf_opts *o, struct ep_preflight *pf);

/* The worst level of pf. */
enum ep_pf_level ep_preflight_worst(const struct ep_preflight *pf);
const char *ep_pf_level_name(enum ep_pf_level l);

/* A table, worst items first, then a line per fix. */
void ep_preflight_print(FILE *out, const struct ep_preflight *pf);

#endif
