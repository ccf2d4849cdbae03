/* pmix.c - node 0's address published and read through PMIx (see pmix.h). */
#include "cli/cluster/pmix.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pmix.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/error.h"

#define KEY "epbench.master_addr"

int ep_pmix_present(void)
{
	return getenv("PMIX_RANK") != NULL || getenv("PMIX_NAMESPACE") != NULL;
}

/* The first IPv4 address of an interface that is up and not loopback. */
static int first_ipv4(char *out, size_t len)
{
	struct ifaddrs *all = NULL;
	int rc = -1;
	if (getifaddrs(&all))
		return -1;
	for (struct ifaddrs *i = all; i && rc; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && (i->ifa_flags & IFF_UP) &&
		    !(i->ifa_flags & IFF_LOOPBACK))
			rc = inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out, (socklen_t)len) ? 0 : -1;
	freeifaddrs(all);
	return rc;
}

static int publish(const char *addr, char *err, size_t elen)
{
	char mine[64];
	pmix_value_t v;
	if (!addr || !*addr) {
		if (first_ipv4(mine, sizeof(mine)))
			return snprintf(err, elen, "PMIx: node 0 has no IPv4 address to publish (give --node-addr)"),
			       -EP_ENODEV;
		addr = mine;
	}
	PMIX_VALUE_LOAD(&v, (void *)addr, PMIX_STRING);
	pmix_status_t rc = PMIx_Put(PMIX_GLOBAL, KEY, &v);
	PMIX_VALUE_DESTRUCT(&v);
	if (rc == PMIX_SUCCESS)
		rc = PMIx_Commit();
	if (rc != PMIX_SUCCESS)
		return snprintf(err, elen, "PMIx: publishing node 0's address failed: %s", PMIx_Error_string(rc)),
		       -EP_ENODEV;
	return 0;
}

/* Fence with the data collected, then rank 0's address into host. */
static int fence_and_read(const pmix_proc_t *me, double timeout_s, char *host, size_t len, char *err, size_t elen)
{
	pmix_info_t info[2];
	bool collect = true;
	int secs = timeout_s < 1 ? 1 : (int)timeout_s;
	PMIX_INFO_LOAD(&info[0], PMIX_COLLECT_DATA, &collect, PMIX_BOOL);
	PMIX_INFO_LOAD(&info[1], PMIX_TIMEOUT, &secs, PMIX_INT);
	pmix_status_t rc = PMIx_Fence(NULL, 0, info, 2);
	pmix_proc_t root;
	pmix_value_t *val = NULL;
	PMIX_PROC_LOAD(&root, me->nspace, 0);
	if (rc == PMIX_SUCCESS)
		rc = PMIx_Get(&root, KEY, &info[1], 1, &val);
	PMIX_INFO_DESTRUCT(&info[0]);
	PMIX_INFO_DESTRUCT(&info[1]);
	if (rc != PMIX_SUCCESS || !val || val->type != PMIX_STRING || !val->data.string) {
		snprintf(err, elen, "PMIx: no address from node 0 within %d s (%s): set MASTER_ADDR, or check that every "
			 "node started", secs, rc == PMIX_SUCCESS ? "not a string" : PMIx_Error_string(rc));
		if (val)
			PMIX_VALUE_RELEASE(val);
		return rc == PMIX_ERR_TIMEOUT ? -EP_ETIMEDOUT : -EP_ENODEV;
	}
	snprintf(host, len, "%s", val->data.string);
	PMIX_VALUE_RELEASE(val);
	return 0;
}

int ep_pmix_master(const char *addr, double timeout_s, char *host, size_t len, char *err, size_t elen)
{
	pmix_proc_t me;
	pmix_status_t st = PMIx_Init(&me, NULL, 0);
	if (st != PMIX_SUCCESS) {
		snprintf(err, elen, "PMIx_Init failed (%s): set MASTER_ADDR and MASTER_PORT instead", PMIx_Error_string(st));
		return -EP_ENODEV;
	}
	int rc = me.rank == 0 ? publish(addr, err, elen) : 0;
	char ignored[16];
	/* node 0 fences even when it could not publish, so nobody waits for it in vain */
	int got = fence_and_read(&me, timeout_s, host, len, rc ? ignored : err, rc ? sizeof(ignored) : elen);
	PMIx_Finalize(NULL, 0);
	return rc ? rc : got;
}
