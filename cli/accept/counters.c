/* counters.c - snapshots of the interface and RDMA port counters, their deltas. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/accept/counters.h"

void ep_nic_iface(const char *root, const char *addr, char *ifname, int size, int *loopback)
{
	struct ifaddrs *ifs = NULL;
	struct in_addr want = {0};
	int any = !addr || !*addr || inet_pton(AF_INET, addr, &want) != 1;
	(void)root;
	ifname[0] = 0;
	*loopback = 0;
	if (getifaddrs(&ifs))
		return;
	for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP))
			continue;
		int lo = !!(i->ifa_flags & IFF_LOOPBACK);
		struct in_addr a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
		if ((any && !lo) || (!any && a.s_addr == want.s_addr)) {
			snprintf(ifname, (size_t)size, "%s", i->ifa_name);
			*loopback = lo;
			break;
		}
	}
	freeifaddrs(ifs);
}

static int read_ull(const char *path, unsigned long long *v)
{
	FILE *f = fopen(path, "re");
	int ok = f && fscanf(f, "%llu", v) == 1;
	if (f)
		fclose(f);
	return ok ? 0 : -1;
}

/* Every file of dir as "prefix file" counters. */
static void read_dir(struct ep_nic_snap *s, const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[1024];
	while (d && (e = readdir(d)) && s->n < EP_NIC_MAX) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (read_ull(path, &s->v[s->n]))
			continue;
		snprintf(s->name[s->n], sizeof(s->name[0]), "%.20s %.40s", prefix, e->d_name);
		s->n++;
	}
	if (d)
		closedir(d);
}

static void read_rdma(const char *root, struct ep_nic_snap *s)
{
	char dir[256], sub[700], prefix[64];
	snprintf(dir, sizeof(dir), "%s/sys/class/infiniband", root);
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		for (int port = 1; port <= 2; port++) {
			snprintf(prefix, sizeof(prefix), "%.40s/%d", e->d_name, port);
			snprintf(sub, sizeof(sub), "%s/%s/ports/%d/counters", dir, e->d_name, port);
			read_dir(s, sub, prefix);
			snprintf(prefix, sizeof(prefix), "%.40s/%d hw", e->d_name, port);
			snprintf(sub, sizeof(sub), "%s/%s/ports/%d/hw_counters", dir, e->d_name, port);
			read_dir(s, sub, prefix);
		}
	}
	if (d)
		closedir(d);
}

void ep_nic_read(const char *root, const char *addr, struct ep_nic_snap *s)
{
	char dir[256];
	root = root ? root : "";
	memset(s, 0, sizeof(*s));
	ep_nic_iface(root, addr, s->iface, sizeof(s->iface), &s->loopback);
	if (s->iface[0]) {
		snprintf(dir, sizeof(dir), "%s/sys/class/net/%s/statistics", root, s->iface);
		read_dir(s, dir, s->iface);
	}
	read_rdma(root, s);
	if (!s->n)
		snprintf(s->note, sizeof(s->note), "no counters readable (%s)",
			 s->iface[0] ? "interface statistics unreadable" : "address on no interface here");
}

static int find(const struct ep_nic_snap *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->name[i], name))
			return i;
	return -1;
}

void ep_nic_delta(const struct ep_nic_snap *before, const struct ep_nic_snap *after, struct ep_nic_snap *d)
{
	*d = *after;
	for (int i = 0; i < d->n; i++) {
		int k = find(before, d->name[i]);
		unsigned long long b = k >= 0 ? before->v[k] : 0;
		d->v[i] = d->v[i] >= b ? d->v[i] - b : d->v[i];
	}
}

int ep_nic_is_error(const char *name)
{
	static const char *const bad[] = {"err", "drop", "retr", "nak", "out_of", "discard", "timeout", "seq_",
					  "collision", "missed", "over", "carrier", "abort", "fifo", "ecn", "cnp"};
	const char *c = strrchr(name, ' ');
	c = c ? c + 1 : name;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (strstr(c, bad[i]))
			return 1;
	return 0;
}

double ep_nic_tx_bytes(const struct ep_nic_snap *d)
{
	char name[64];
	snprintf(name, sizeof(name), "%s tx_bytes", d->iface);
	int k = d->iface[0] ? find(d, name) : -1;
	if (k >= 0)
		return (double)d->v[k];
	double words = -1;
	for (int i = 0; i < d->n; i++)
		if (strstr(d->name[i], " port_xmit_data"))
			words = (words < 0 ? 0 : words) + (double)d->v[i];
	return words < 0 ? -1 : 4 * words;
}

double ep_nic_nominal_gbs(const char *root, const char *iface)
{
	char path[256];
	unsigned long long mbps = 0;
	root = root ? root : "";
	if (!iface || !*iface)
		return 0;
	snprintf(path, sizeof(path), "%s/sys/class/net/%s/device", root, iface);
	if (access(path, F_OK)) /* veth, bridge, lo: a nominal speed that limits nothing */
		return 0;
	snprintf(path, sizeof(path), "%s/sys/class/net/%s/speed", root, iface);
	FILE *f = fopen(path, "re");
	int ok = f && fscanf(f, "%llu", &mbps) == 1 && mbps > 0 && mbps < 100000000ULL;
	if (f)
		fclose(f);
	return ok ? (double)mbps / 8000.0 : 0;
}
