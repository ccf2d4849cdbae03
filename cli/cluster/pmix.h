/* pmix.h - the master address through the launcher's key-value service (PMIx), for mpirun and srun --mpi=pmix.
 *
 * Under Open MPI's mpirun (and Slurm with PMIx) every node process is a PMIx
 * client, so node 0 can publish the address it will listen at and the
 * others can read it after a fence: no MASTER_ADDR to set by hand. The
 * fence and the read carry the --timeout (PMIX_TIMEOUT), so a node that
 * never arrives ends the wait with a message instead of a hang.
 */
#ifndef EP_CLUSTER_PMIX_H
#define EP_CLUSTER_PMIX_H

#include <stddef.h>

/* Is this process a PMIx client (PMIX_RANK or PMIX_NAMESPACE set by its launcher)? */
int ep_pmix_present(void);

/* PMIx rank 0 publishes addr (its own address, "" to pick the first
 * non-loopback IPv4 address of this host); everyone then reads rank 0's
 * into host. Blocks at most timeout_s. 0, or -EP_ETIMEDOUT / -EP_ENODEV with
 * one line in err. */
int ep_pmix_master(const char *addr, double timeout_s, char *host, size_t len, char *err, size_t elen);

#endif
