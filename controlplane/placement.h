/* Core and NUMA placement: resolves which core runs what, on which NUMA node, and each
 * port's node, from an hwloc topology (the live machine, or an XML file in tests), then
 * applies the configured NUMA policy and warns about cores that are not isolated. */
#ifndef WB_PLACEMENT_H
#define WB_PLACEMENT_H

#include <stdio.h>

#include "config.h"

#define WB_PLAN_MAX_THREADS (WB_MAX_WORKERS + WB_MAX_PERSISTERS + 1)

struct wb_plan_thread {
	char role[16];          /* "worker", "persister", "control" */
	char name[WB_NAME_LEN];
	unsigned core;          /* OS cpu index (= DPDK lcore id) */
	int numa_node;          /* -1 unknown */
	bool isolated;          /* in isolcpus or nohz_full */
};

struct wb_plan_port {
	char name[WB_NAME_LEN];
	char device[256];
	int numa_node;          /* -1 = virtual device or unknown: any node */
};

struct wb_plan {
	unsigned nthreads, nports;
	struct wb_plan_thread threads[WB_PLAN_MAX_THREADS];
	struct wb_plan_port ports[WB_MAX_PORTS];
	unsigned nnodes;         /* NUMA nodes in the topology */
	unsigned ncores;         /* logical cpus in the topology */
	unsigned nwarnings;
	char warnings[32][256];  /* NUMA mismatches under policy warn, non-isolated cores */
};

struct wb_placement_opts {
	const char *topology_xml; /* NULL = this machine */
	const char *sysfs_root;   /* NULL = "/sys"; tests point it at a fake tree */
};

/* Resolves cfg against the topology. Returns 0, or -EINVAL with one line per problem in
 * err (a core the topology does not have; a worker on another node than its port under
 * policy refuse). */
int wb_placement_resolve(const struct wb_config *cfg, const struct wb_placement_opts *opts,
			 struct wb_plan *plan, char *err, size_t errlen);

/* Prints the plan as operators read it (--check-config). */
void wb_plan_print(const struct wb_plan *plan, FILE *out);

/* Pins the calling thread to core; 0 or negative errno. */
int wb_pin_self(unsigned core);

#endif
