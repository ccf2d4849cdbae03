/* preflight.c - this host's set-up, item by item (see preflight.h). */
#define _GNU_SOURCE
#include "cli/preflight.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>

#include "reports/provenance.h"

#define MAX_PORTS 32

static struct ep_pf_item *add(struct ep_preflight *pf, enum ep_pf_level level, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static struct ep_pf_item *add(struct ep_preflight *pf, enum ep_pf_level level, const char *name, const char *fmt, ...)
{
	static struct ep_pf_item spare;
	struct ep_pf_item *it = pf->n < EP_PREFLIGHT_MAX_ITEMS ? &pf->items[pf->n++] : &spare;
	va_list ap;
	memset(it, 0, sizeof(*it));
	it->level = level;
	snprintf(it->name, sizeof(it->name), "%s", name);
	va_start(ap, fmt);
	vsnprintf(it->value, sizeof(it->value), fmt, ap);
	va_end(ap);
	return it;
}

/* The item's reason, and its fix unless it passed. */
static void say(struct ep_pf_item *it, const char *reason, const char *fix)
{
	snprintf(it->reason, sizeof(it->reason), "%s", reason);
	snprintf(it->fix, sizeof(it->fix), "%s", fix && it->level != EP_PF_PASS ? fix : "");
}

/* The first line of root/path, without its newline, into buf. 0 or -1. */
static int read_line(const struct ep_pf_opts *o, const char *path, char *buf, size_t len)
{
	char full[4096];
	snprintf(full, sizeof(full), "%.2000s%.2000s", o->root ? o->root : "", path);
	FILE *f = fopen(full, "r");
	if (!f)
		return -1;
	char *got = fgets(buf, (int)len, f);
	fclose(f);
	if (!got)
		return -1;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* Names in root/path (sorted), at most max. Returns the count. */
static int list_dir(const struct ep_pf_opts *o, const char *path, char names[][64], int max)
{
	char full[4096];
	snprintf(full, sizeof(full), "%.2000s%.2000s", o->root ? o->root : "", path);
	struct dirent **ents;
	int n = scandir(full, &ents, NULL, alphasort), k = 0;
	for (int i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.' && k < max)
			snprintf(names[k++], 64, "%.63s", ents[i]->d_name);
		free(ents[i]);
	}
	if (n >= 0)
		free(ents);
	return k;
}

/* The RoCE v2 GID of port folder p (sysfs path ending in '/'): the
 * IPv4-mapped one first (what rdma_cm uses over IPv4), its address in addr.
 * Its index, or -1. */
static int roce_v2_gid(const struct ep_pf_opts *o, const char *p, char *addr, size_t len, int *v4)
{
	char types[64][64], path[640];
	snprintf(path, sizeof(path), "%.500sgid_attrs/types", p);
	int nt = list_dir(o, path, types, 64), gid = -1;
	for (int i = 0; i < nt && !*v4; i++) {
		char t[64], g[80];
		snprintf(path, sizeof(path), "%.400sgid_attrs/types/%.20s", p, types[i]);
		int is_v2 = read_line(o, path, t, sizeof(t)) == 0 && !strcmp(t, "RoCE v2");
		snprintf(path, sizeof(path), "%.400sgids/%.20s", p, types[i]);
		if (!is_v2 || read_line(o, path, g, sizeof(g)) || !strcmp(g, "0000:0000:0000:0000:0000:0000:0000:0000"))
			continue;
		*v4 = !strncmp(g, "0000:0000:0000:0000:0000:ffff:", 30) && strlen(g) >= 39;
		if (gid >= 0 && !*v4)
			continue;
		gid = atoi(types[i]);
		if (*v4)
			snprintf(addr, len, " (IPv4 %ld.%ld.%ld.%ld)", strtol((char[]){g[30], g[31], 0}, NULL, 16),
				 strtol((char[]){g[32], g[33], 0}, NULL, 16), strtol((char[]){g[35], g[36], 0}, NULL, 16),
				 strtol((char[]){g[37], g[38], 0}, NULL, 16));
	}
	return gid;
}

/* One port of an RDMA device: state, link layer, rate, MTU, RoCE v2 GID. Returns its rate (Gb/s), 0 if not up. */
static double check_port(const struct ep_pf_opts *o, struct ep_preflight *pf, const char *dev, const char *port)
{
	char p[512], v[256], ll[64] = "", name[48], ndev[64] = "";
	snprintf(p, sizeof(p), "/sys/class/infiniband/%.40s/ports/%.20s/", dev, port);
	char path[640];
	snprintf(path, sizeof(path), "%.500sstate", p);
	int up = read_line(o, path, v, sizeof(v)) == 0 && strstr(v, "ACTIVE");
	snprintf(name, sizeof(name), "port %.16s/%.8s state", dev, port);
	say(add(pf, up ? EP_PF_PASS : EP_PF_FAIL, name, "%s", v[0] ? v : "unreadable"),
	    up ? "the port carries traffic" : "the port is not ACTIVE: runs over it cannot work",
	    up ? NULL : "check the cable and the switch port (ibstat, ibv_devinfo)");
	snprintf(path, sizeof(path), "%.500slink_layer", p);
	read_line(o, path, ll, sizeof(ll));
	snprintf(path, sizeof(path), "%.500srate", p);
	double gbps = read_line(o, path, v, sizeof(v)) == 0 ? strtod(v, NULL) : 0;
	snprintf(name, sizeof(name), "port %.16s/%.8s rate", dev, port);
	say(add(pf, gbps > 0 ? EP_PF_PASS : EP_PF_WARN, name, "%g Gb/s, %s", gbps, ll[0] ? ll : "link layer unknown"),
	    gbps > 0 ? "active speed x width, as ibv_query_port gives it" : "the port reports no rate", NULL);
	if (strcmp(ll, "Ethernet"))
		return up ? gbps : 0;
	snprintf(path, sizeof(path), "%.500sgid_attrs/ndevs/0", p);
	read_line(o, path, ndev, sizeof(ndev));
	snprintf(path, sizeof(path), "/sys/class/net/%.63s/mtu", ndev);
	long mtu = ndev[0] && read_line(o, path, v, sizeof(v)) == 0 ? strtol(v, NULL, 10) : 0;
	snprintf(name, sizeof(name), "port %.16s/%.8s mtu", dev, port);
	char fix[160];
	snprintf(fix, sizeof(fix), "ip link set %.40s mtu 9000 (and the switch ports), for RoCE's 4096-byte MTU", ndev[0] ? ndev : "DEV");
	say(add(pf, mtu >= 4200 ? EP_PF_PASS : EP_PF_WARN, name, "%ld on %s", mtu, ndev[0] ? ndev : "no netdev"),
	    mtu >= 4200 ? "fits RoCE's 4096-byte path MTU" : "RoCE falls back to a 1024-byte path MTU: more packets per byte", fix);
	char addr[64] = "";
	int v4 = 0, gid = roce_v2_gid(o, p, addr, sizeof(addr), &v4);
	snprintf(name, sizeof(name), "port %.16s/%.8s RoCE v2 GID", dev, port);
	struct ep_pf_item *it = gid >= 0 ? add(pf, EP_PF_PASS, name, "index %d%s", gid, addr) : add(pf, EP_PF_FAIL, name, "none");
	say(it,
	    gid >= 0 ? (v4 ? "the IPv4 GID rdma_cm uses" : "an IPv6 GID only: rdma_cm needs IPv6 addressing")
		     : "no RoCE v2 GID: rdma_cm cannot route to this port",
	    gid >= 0 ? NULL : "give the port's netdev an IP address (ip addr add ... dev NETDEV)");
	return up ? gbps : 0;
}

/* Every device and port; every active port at the same rate. Returns the devices found. */
static int check_rdma(const struct ep_pf_opts *o, struct ep_preflight *pf)
{
	char devs[16][64], ports[MAX_PORTS][64], path[512], v[64], name[48];
	double rates[MAX_PORTS * 4];
	char where[MAX_PORTS * 4][48];
	int nd = list_dir(o, "/sys/class/infiniband", devs, 16), nr = 0;
	for (int d = 0; d < nd; d++) {
		snprintf(path, sizeof(path), "/sys/class/infiniband/%.63s/ports", devs[d]);
		int np = list_dir(o, path, ports, MAX_PORTS);
		for (int i = 0; i < np && nr < MAX_PORTS * 4; i++)
			if ((rates[nr] = check_port(o, pf, devs[d], ports[i])) > 0)
				snprintf(where[nr++], sizeof(where[0]), "%.20s/%.20s", devs[d], ports[i]);
		snprintf(path, sizeof(path), "/sys/class/infiniband/%.63s/device/numa_node", devs[d]);
		long node = read_line(o, path, v, sizeof(v)) == 0 ? strtol(v, NULL, 10) : -1;
		snprintf(name, sizeof(name), "device %.24s NUMA node", devs[d]);
		say(add(pf, EP_PF_PASS, name, node >= 0 ? "%ld" : "unknown", node),
		    "ranks are pinned nearest their NIC where the host has several NUMA nodes", NULL);
	}
	pf->port_gbps = nr ? rates[0] : 0;
	for (int i = 1; i < nr; i++)
		if (rates[i] != rates[0]) {
			pf->port_gbps = 0;
			char val[128];
			snprintf(val, sizeof(val), "%s %g Gb/s, %s %g Gb/s", where[0], rates[0], where[i], rates[i]);
			say(add(pf, EP_PF_FAIL, "ports at one rate", "%s", val),
			    "ports at different rates: the slowest bounds every rank that shares its traffic",
			    "reseat or replace the slow port's cable or transceiver; check the switch port's speed");
			break;
		}
	return nd;
}

static void check_memlock(const struct ep_pf_opts *o, struct ep_preflight *pf, int have_rdma)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_MEMLOCK, &rl) || rl.rlim_cur == RLIM_INFINITY) {
		say(add(pf, EP_PF_PASS, "locked memory", "unlimited"), "verbs can register what it needs", NULL);
		return;
	}
	double have = (double)rl.rlim_cur / 1048576.0, need = (double)o->pin_bytes / 1048576.0;
	if (!have_rdma && !o->want_verbs) {
		say(add(pf, EP_PF_PASS, "locked memory", "%.0f MiB", have), "not needed: no RDMA device, runs use TCP", NULL);
		return;
	}
	int ok = (double)rl.rlim_cur >= (double)o->pin_bytes;
	say(add(pf, ok ? EP_PF_PASS : EP_PF_FAIL, "locked memory", "%.0f MiB, verbs registers about %.0f MiB per rank", have,
		need), ok ? "enough for verbs' registrations" : "ibv_reg_mr will fail: the limit is below what verbs registers",
	    "ulimit -l unlimited (or '* - memlock unlimited' in /etc/security/limits.conf, LimitMEMLOCK= for services)");
}

/* Huge pages, NUMA balancing, CPU governor, kernel, rdma-core. */
static void check_host(const struct ep_pf_opts *o, struct ep_preflight *pf)
{
	char v[256], cpus[512][64], path[512];
	FILE *f;
	char mi[4096];
	long huge = 0;
	snprintf(mi, sizeof(mi), "%.2000s/proc/meminfo", o->root ? o->root : "");
	if ((f = fopen(mi, "r"))) {
		while (fgets(v, sizeof(v), f))
			if (!strncmp(v, "HugePages_Total:", 16))
				huge = strtol(v + 16, NULL, 10);
		fclose(f);
	}
	char thp[64] = "unknown";
	read_line(o, "/sys/kernel/mm/transparent_hugepage/enabled", thp, sizeof(thp));
	say(add(pf, EP_PF_PASS, "huge pages", "%ld reserved; transparent: %s", huge, thp),
	    "informational: epbench's buffers do not need huge pages", NULL);
	int bal = read_line(o, "/proc/sys/kernel/numa_balancing", v, sizeof(v)) == 0 ? atoi(v) : 0;
	say(add(pf, bal ? EP_PF_WARN : EP_PF_PASS, "numa balancing", "%s", bal ? "on" : "off"),
	    bal ? "the kernel migrates pages under the pinned ranks: timings drift" : "pages stay where the ranks put them",
	    bal ? "sysctl -w kernel.numa_balancing=0" : NULL);
	int n = list_dir(o, "/sys/devices/system/cpu", cpus, 512), with = 0, slow = 0;
	char other[64] = "";
	for (int i = 0; i < n; i++) {
		if (strncmp(cpus[i], "cpu", 3) || cpus[i][3] < '0' || cpus[i][3] > '9')
			continue;
		snprintf(path, sizeof(path), "/sys/devices/system/cpu/%.63s/cpufreq/scaling_governor", cpus[i]);
		if (read_line(o, path, v, sizeof(v)))
			continue;
		with++;
		if (strcmp(v, "performance"))
			slow++, snprintf(other, sizeof(other), "%.63s", v);
	}
	if (!with)
		say(add(pf, EP_PF_PASS, "cpu governor", "no cpufreq"), "a VM or a fixed clock: nothing to set", NULL);
	else
		say(add(pf, slow ? EP_PF_WARN : EP_PF_PASS, "cpu governor", slow ? "%d of %d cpus '%s'" : "performance on %d cpus",
			slow ? slow : with, with, other),
		    slow ? "cores clock down between iterations: latencies vary" : "cores stay at full clock",
		    slow ? "cpupower frequency-set -g performance" : NULL);
	char kernel[128] = "unknown";
	struct utsname u;
	if (read_line(o, "/proc/sys/kernel/osrelease", kernel, sizeof(kernel)) && !uname(&u))
		snprintf(kernel, sizeof(kernel), "%s", u.release);
	say(add(pf, EP_PF_PASS, "kernel", "%s", kernel), "informational; compared between nodes", NULL);
	struct ep_provenance prov;
	ep_provenance_collect(&prov, "");
	const char *rc = strstr(prov.libs, "libibverbs");
	say(add(pf, EP_PF_PASS, "rdma-core", "%.*s", rc ? (int)strcspn(rc, ",") : 7, rc ? rc : "unknown"),
	    "the libibverbs epbench was built with; compared between nodes", NULL);
}

/* Every interface that is up (not loopback): speed and MTU. */
static void check_net(const struct ep_pf_opts *o, struct ep_preflight *pf)
{
	char ifs[64][64], path[512], v[64], name[48];
	int n = list_dir(o, "/sys/class/net", ifs, 64), up = 0;
	for (int i = 0; i < n; i++) {
		if (!strcmp(ifs[i], "lo"))
			continue;
		snprintf(path, sizeof(path), "/sys/class/net/%.63s/operstate", ifs[i]);
		if (read_line(o, path, v, sizeof(v)) || (strcmp(v, "up") && strcmp(v, "unknown")))
			continue;
		up++;
		snprintf(path, sizeof(path), "/sys/class/net/%.63s/speed", ifs[i]);
		long mbps = read_line(o, path, v, sizeof(v)) == 0 ? strtol(v, NULL, 10) : -1;
		snprintf(path, sizeof(path), "/sys/class/net/%.63s/mtu", ifs[i]);
		long mtu = read_line(o, path, v, sizeof(v)) == 0 ? strtol(v, NULL, 10) : 0;
		snprintf(name, sizeof(name), "interface %.32s", ifs[i]);
		if (mbps > 0)
			say(add(pf, EP_PF_PASS, name, "%g Gb/s, MTU %ld", (double)mbps / 1000, mtu), "TCP's line rate", NULL);
		else
			say(add(pf, EP_PF_WARN, name, "speed unknown, MTU %ld", mtu),
			    "a virtual interface reports no speed: the rate must be measured (iperf3) to judge a run", NULL);
	}
	if (!up)
		say(add(pf, EP_PF_WARN, "network", "no interface up"), "only --local-nodes jobs can run here", NULL);
}

void ep_preflight_run(const struct ep_pf_opts *o, struct ep_preflight *pf)
{
	memset(pf, 0, sizeof(*pf));
	int devs = check_rdma(o, pf);
	if (!devs)
		say(add(pf, o->want_verbs ? EP_PF_FAIL : EP_PF_WARN, "rdma devices", "none"),
		    o->want_verbs ? "--transport verbs needs an RDMA device" : "internode runs will use TCP",
		    o->want_verbs ? "load the NIC's driver (or rdma_rxe for Soft-RoCE); ibv_devices must list it" : NULL);
	check_memlock(o, pf, devs > 0);
	check_host(o, pf);
	check_net(o, pf);
}

enum ep_pf_level ep_preflight_worst(const struct ep_preflight *pf)
{
	enum ep_pf_level w = EP_PF_PASS;
	for (int i = 0; i < pf->n; i++)
		w = pf->items[i].level > w ? pf->items[i].level : w;
	return w;
}

const char *ep_pf_level_name(enum ep_pf_level l)
{
	return l == EP_PF_FAIL ? "FAIL" : l == EP_PF_WARN ? "WARN" : "PASS";
}

void ep_preflight_print(FILE *out, const struct ep_preflight *pf)
{
	fprintf(out, "# %-4s  %-28s %-44s %s\n", "", "item", "found", "why");
	for (int lvl = EP_PF_FAIL; lvl >= EP_PF_PASS; lvl--)
		for (int i = 0; i < pf->n; i++) {
			const struct ep_pf_item *it = &pf->items[i];
			if ((int)it->level != lvl)
				continue;
			fprintf(out, "  %-4s  %-28s %-44s %s\n", ep_pf_level_name(it->level), it->name, it->value, it->reason);
			if (it->fix[0])
				fprintf(out, "        fix: %s\n", it->fix);
		}
}
