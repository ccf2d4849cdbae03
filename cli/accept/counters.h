/* counters.h - the NIC's own counters, read before and after a run: what crossed the wire, what went wrong.
 *
 * A snapshot holds every counter of the interface that carries this
 * node's data address (/sys/class/net/IF/statistics: bytes, packets,
 * errors, drops) and of every RDMA port (/sys/class/infiniband/DEV/ports/P
 * /counters, where port_xmit_data and port_rcv_data count 4-byte words,
 * and /hw_counters: retransmissions, RNR NAKs, out-of-buffer, ...;
 * Soft-RoCE has only hw_counters, so its wire bytes are the interface's).
 * Reading never fails: a counter that cannot be read is absent, and the
 * snapshot says why when nothing could be read. No waits.
 */
#ifndef EP_ACCEPT_COUNTERS_H
#define EP_ACCEPT_COUNTERS_H

#define EP_NIC_MAX 160

struct ep_nic_snap {
	char iface[32];                 /* "" when the address is on no interface here */
	int loopback;                   /* shared by every emulated node: not one node's traffic */
	int n;
	char name[EP_NIC_MAX][64];      /* "eth0 tx_bytes", "rxe0/1 hw rnr_nak_retry_err" */
	unsigned long long v[EP_NIC_MAX];
	char note[160];                 /* why nothing could be read, else "" */
};

/* The interface holding IPv4 address addr ("" or NULL: the first non-loopback one that is up). */
void ep_nic_iface(const char *root, const char *addr, char *ifname, int size, int *loopback);

/* Reads every counter under root ("" for the real /sys). */
void ep_nic_read(const char *root, const char *addr, struct ep_nic_snap *s);

/* after - before, counter by counter (a counter absent before is taken
 * as 0 then; one that went backwards, as reset: its after value). */
void ep_nic_delta(const struct ep_nic_snap *before, const struct ep_nic_snap *after, struct ep_nic_snap *d);

/* Is this counter an error or congestion counter (named when it moves)? */
int ep_nic_is_error(const char *name);

/* The bytes this node sent on the wire in d: the interface's tx_bytes, or
 * the RDMA ports' port_xmit_data x 4 when no interface counted; -1 when
 * neither was read. */
double ep_nic_tx_bytes(const struct ep_nic_snap *d);

/* The interface's nominal rate in GB/s when it limits something: 0 for
 * interfaces without a device (veth, bridges, loopback: their "speed" is
 * no limit) and when the speed is unknown. */
double ep_nic_nominal_gbs(const char *root, const char *iface);

#endif
