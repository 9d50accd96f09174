/* Core and NUMA placement from an hwloc topology: which node each thread's core and
 * each port's PCI device sit on, the NUMA policy, and core isolation warnings. */
#define _GNU_SOURCE
#include "placement.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <hwloc.h>

#define MAX_CPUS 4096

struct out {
	char *buf;
	size_t len, used;
	const char *file;
	unsigned count;
};

static void __attribute__((format(printf, 3, 4)))
fail(struct out *o, const char *field, const char *fmt, ...)
{
	char reason[384];
	va_list ap;
	int n;

	o->count++;
	if (!o->buf || !o->len)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	n = snprintf(o->buf + o->used, o->len - o->used, "%s: %s: %s\n", o->file, field, reason);
	/* only whole lines */
	if (n < 0 || o->used + (size_t)n >= o->len)
		o->buf[o->used] = '\0';
	else
		o->used += (size_t)n;
}

static void __attribute__((format(printf, 2, 3)))
warn(struct wb_plan *plan, const char *fmt, ...)
{
	va_list ap;

	if (plan->nwarnings >= sizeof(plan->warnings) / sizeof(plan->warnings[0]))
		return;
	va_start(ap, fmt);
	vsnprintf(plan->warnings[plan->nwarnings++], sizeof(plan->warnings[0]), fmt, ap);
	va_end(ap);
}

/* Parses a kernel cpulist ("0-3,8,10-11") into set; a missing file is an empty list. */
static void read_cpulist(const char *root, const char *name, unsigned char *set)
{
	char path[512], buf[4096];
	const char *s;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/devices/system/cpu/%s", root, name);
	f = fopen(path, "r");
	if (!f)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	s = buf;
	while (*s) {
		unsigned a, b;
		int used = 0;
		if (sscanf(s, "%u-%u%n", &a, &b, &used) == 2 && used > 0) {
		} else if (sscanf(s, "%u%n", &a, &used) == 1 && used > 0) {
			b = a;
		} else {
			break;
		}
		for (unsigned c = a; c <= b && c < MAX_CPUS; c++)
			set[c] = 1;
		s += used;
		if (*s != ',')
			break;
		s++;
	}
}

/* NUMA node of an OS cpu index, -1 when the topology does not have that cpu. */
static int node_of_cpu(hwloc_topology_t topo, unsigned cpu)
{
	hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(topo, cpu);
	hwloc_obj_t node = NULL;

	if (!pu)
		return -1;
	while ((node = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, node)))
		if (node->cpuset && hwloc_bitmap_isset(node->cpuset, cpu))
			return (int)node->os_index;
	return -1;
}

/* "DDDD:BB:DD.F" or "BB:DD.F"; anything else is a DPDK vdev string. */
static bool parse_pci(const char *s, unsigned *dom, unsigned *bus, unsigned *dev, unsigned *fn)
{
	int used = 0;

	if (sscanf(s, "%4x:%2x:%2x.%1x%n", dom, bus, dev, fn, &used) == 4 && !s[used])
		return true;
	*dom = 0;
	used = 0;
	return sscanf(s, "%2x:%2x.%1x%n", bus, dev, fn, &used) == 3 && !s[used];
}

/* NUMA node of a port's device: -1 for a vdev (any node) or when it cannot be told. */
static int node_of_device(hwloc_topology_t topo, const struct wb_port_conf *p,
			  struct wb_plan *plan)
{
	unsigned dom, bus, dev, fn;
	hwloc_obj_t pci, anc;
	int node;

	if (!parse_pci(p->device, &dom, &bus, &dev, &fn))
		return -1;
	pci = hwloc_get_pcidev_by_busid(topo, dom, bus, dev, fn);
	if (!pci) {
		warn(plan, "port %s: PCI device %s is not in the topology; its NUMA node is unknown",
		     p->name, p->device);
		return -1;
	}
	anc = hwloc_get_non_io_ancestor_obj(topo, pci);
	if (!anc || !anc->nodeset || hwloc_bitmap_weight(anc->nodeset) != 1)
		return -1;
	node = hwloc_bitmap_first(anc->nodeset);
	return node;
}

static void add_thread(struct wb_plan *plan, const char *role, const char *name, unsigned core)
{
	struct wb_plan_thread *t = &plan->threads[plan->nthreads++];

	snprintf(t->role, sizeof(t->role), "%s", role);
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->core = core;
	t->numa_node = -1;
	t->isolated = false;
}

static void list_threads(const struct wb_config *cfg, struct wb_plan *plan)
{
	for (unsigned i = 0; i < cfg->nworkers && i < WB_MAX_WORKERS; i++)
		add_thread(plan, "worker", cfg->workers[i].name, cfg->workers[i].lcore);
	for (unsigned i = 0; i < cfg->npersisters && i < WB_MAX_PERSISTERS; i++)
		add_thread(plan, "persister", cfg->persisters[i].name, cfg->persisters[i].lcore);
	add_thread(plan, "control", "control", cfg->control_lcore);
}

static const char *thread_field(const struct wb_plan *plan, unsigned t, char *buf, size_t n)
{
	const struct wb_plan_thread *th = &plan->threads[t];
	unsigned nw = 0;

	if (strcmp(th->role, "control") == 0)
		return "cores.control";
	for (unsigned i = 0; i < t; i++)
		nw += strcmp(plan->threads[i].role, th->role) == 0;
	snprintf(buf, n, "cores.%ss[%u].lcore", th->role, nw);
	return buf;
}

/* Under policy warn or refuse, a worker polling a port on another node. */
static void check_numa(const struct wb_config *cfg, struct wb_plan *plan, struct out *o)
{
	char field[64];

	if (cfg->numa_policy == WB_NUMA_IGNORE)
		return;
	for (unsigned w = 0; w < cfg->nworkers && w < WB_MAX_WORKERS; w++) {
		const struct wb_worker_conf *wc = &cfg->workers[w];
		const struct wb_plan_thread *t = &plan->threads[w];
		for (unsigned q = 0; q < wc->nrxq && q < WB_MAX_RXQ_PER_WORKER; q++) {
			unsigned p = wc->rxq[q].port;
			bool seen = false;
			if (p >= plan->nports || plan->ports[p].numa_node < 0 || t->numa_node < 0 ||
			    plan->ports[p].numa_node == t->numa_node)
				continue;
			/* one message per worker and port, however many of its queues it polls */
			for (unsigned k = 0; k < q; k++)
				seen |= wc->rxq[k].port == p;
			if (seen)
				continue;
			if (cfg->numa_policy == WB_NUMA_REFUSE) {
				snprintf(field, sizeof(field), "cores.workers[%u].lcore", w);
				fail(o, field,
				     "worker %s on core %u (NUMA node %d) polls port %s on NUMA node "
				     "%d; move it to a core of node %d or set numa_policy: warn",
				     wc->name, wc->lcore, t->numa_node, plan->ports[p].name,
				     plan->ports[p].numa_node, plan->ports[p].numa_node);
			} else {
				warn(plan,
				     "worker %s on core %u (NUMA node %d) polls port %s on NUMA node "
				     "%d: every packet crosses the socket interconnect",
				     wc->name, wc->lcore, t->numa_node, plan->ports[p].name,
				     plan->ports[p].numa_node);
			}
		}
	}
}

int wb_placement_resolve(const struct wb_config *cfg, const struct wb_placement_opts *opts,
			 struct wb_plan *plan, char *err, size_t errlen)
{
	static unsigned char isolated[MAX_CPUS];
	const char *root = opts && opts->sysfs_root ? opts->sysfs_root : "/sys";
	struct out o = { err, errlen, 0, cfg->path[0] ? cfg->path : "config", 0 };
	hwloc_topology_t topo;
	char field[64];
	int rc, n;

	if (err && errlen)
		err[0] = '\0';
	memset(plan, 0, sizeof(*plan));
	if (hwloc_topology_init(&topo) < 0)
		return -ENOMEM;
	if (opts && opts->topology_xml && hwloc_topology_set_xml(topo, opts->topology_xml) < 0) {
		rc = errno ? -errno : -EINVAL;
		fail(&o, "(topology)", "cannot read %s: %s", opts->topology_xml, strerror(-rc));
		goto out_topology;
	}
	/* Linux sysfs finds PCI devices and their nodes; libpciaccess would only add names
	 * (and leaks its name database) */
	hwloc_topology_set_components(topo, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "pci");
	/* PCI objects are filtered out by default; keep them to locate the NICs */
	hwloc_topology_set_io_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
	if (hwloc_topology_load(topo) < 0) {
		rc = errno ? -errno : -EINVAL;
		fail(&o, "(topology)", "cannot load the topology: %s", strerror(-rc));
		goto out_topology;
	}
	n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
	plan->ncores = n > 0 ? (unsigned)n : 0;
	n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
	plan->nnodes = n > 0 ? (unsigned)n : 1;

	/* static: the placement runs once, at start-up, on one thread */
	memset(isolated, 0, sizeof(isolated));
	read_cpulist(root, "isolated", isolated);
	read_cpulist(root, "nohz_full", isolated);

	list_threads(cfg, plan);
	for (unsigned t = 0; t < plan->nthreads; t++) {
		struct wb_plan_thread *th = &plan->threads[t];
		if (!hwloc_get_pu_obj_by_os_index(topo, th->core)) {
			fail(&o, thread_field(plan, t, field, sizeof(field)),
			     "core %u does not exist in the topology (it has %u logical cpus)",
			     th->core, plan->ncores);
			continue;
		}
		th->numa_node = node_of_cpu(topo, th->core);
		th->isolated = th->core < MAX_CPUS && isolated[th->core];
		/* only a busy-polling core suffers from the scheduler tick and other tasks */
		if (!th->isolated && strcmp(th->role, "worker") == 0)
			warn(plan,
			     "core %u (worker %s) is not isolated: add it to isolcpus= and "
			     "nohz_full= on the kernel command line",
			     th->core, th->name);
	}

	for (unsigned p = 0; p < cfg->nports && p < WB_MAX_PORTS; p++) {
		struct wb_plan_port *pp = &plan->ports[plan->nports++];
		snprintf(pp->name, sizeof(pp->name), "%s", cfg->ports[p].name);
		snprintf(pp->device, sizeof(pp->device), "%s", cfg->ports[p].device);
		pp->numa_node = node_of_device(topo, &cfg->ports[p], plan);
	}

	check_numa(cfg, plan, &o);
	rc = o.count ? -EINVAL : 0;
out_topology:
	hwloc_topology_destroy(topo);
	return rc;
}

void wb_plan_print(const struct wb_plan *plan, FILE *out)
{
	char node[16];

	fprintf(out, "topology: %u logical cpus, %u NUMA node%s\n\n", plan->ncores, plan->nnodes,
		plan->nnodes == 1 ? "" : "s");
	fprintf(out, "%-32s %-10s %5s %5s  %s\n", "THREAD", "ROLE", "CORE", "NODE", "ISOLATED");
	for (unsigned i = 0; i < plan->nthreads; i++) {
		const struct wb_plan_thread *t = &plan->threads[i];
		if (t->numa_node < 0)
			snprintf(node, sizeof(node), "?");
		else
			snprintf(node, sizeof(node), "%d", t->numa_node);
		fprintf(out, "%-32s %-10s %5u %5s  %s\n", t->name, t->role, t->core, node,
			t->isolated ? "yes" : "no");
	}
	fprintf(out, "\n%-32s %5s  %s\n", "PORT", "NODE", "DEVICE");
	for (unsigned i = 0; i < plan->nports; i++) {
		const struct wb_plan_port *p = &plan->ports[i];
		if (p->numa_node < 0)
			snprintf(node, sizeof(node), "any");
		else
			snprintf(node, sizeof(node), "%d", p->numa_node);
		fprintf(out, "%-32s %5s  %s\n", p->name, node, p->device);
	}
	if (plan->nwarnings) {
		fprintf(out, "\nwarnings:\n");
		for (unsigned i = 0; i < plan->nwarnings; i++)
			fprintf(out, "  %s\n", plan->warnings[i]);
	}
}

int wb_pin_self(unsigned core)
{
	cpu_set_t set;
	int rc;

	if (core >= CPU_SETSIZE)
		return -EINVAL;
	CPU_ZERO(&set);
	CPU_SET(core, &set);
	rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	return rc ? -rc : 0;
}
