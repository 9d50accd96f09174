/* wb_placement_resolve on synthetic hwloc topologies (tests/data/topo) and a fake sysfs:
 * NUMA policy refuse/warn/ignore, cores the topology lacks, isolation warnings. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "placement.h"

struct fixture {
	char sysfs[64];
	char two_node[4096];
	char one_node[4096];
	struct wb_config cfg;
	struct wb_plan plan;
	char err[2048];
};

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Fake sysfs: devices/system/cpu/{isolated,nohz_full}; NULL removes the file. */
static void set_cpulists(struct fixture *fx, const char *isolated, const char *nohz_full)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/devices/system/cpu/isolated", fx->sysfs);
	if (isolated)
		write_file(path, isolated);
	else
		unlink(path);
	snprintf(path, sizeof(path), "%s/devices/system/cpu/nohz_full", fx->sysfs);
	if (nohz_full)
		write_file(path, nohz_full);
	else
		unlink(path);
}

/* One port, one worker polling it, one persister, the control thread. */
static void make_config(struct wb_config *c, const char *device, unsigned worker_core,
			enum wb_numa_policy policy)
{
	wb_config_defaults(c);
	c->numa_policy = policy;
	c->nports = 1;
	snprintf(c->ports[0].name, sizeof(c->ports[0].name), "p0");
	snprintf(c->ports[0].device, sizeof(c->ports[0].device), "%s", device);
	c->nworkers = 1;
	snprintf(c->workers[0].name, sizeof(c->workers[0].name), "w0");
	c->workers[0].lcore = worker_core;
	c->workers[0].nrxq = 1;
	c->npersisters = 1;
	snprintf(c->persisters[0].name, sizeof(c->persisters[0].name), "pz0");
	c->persisters[0].lcore = 10;
	c->control_lcore = 8;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	const char *src = getenv("WB_SOURCE_DIR");
	char path[256];

	if (!fx)
		return -1;
	if (!src)
		src = ".";
	snprintf(fx->two_node, sizeof(fx->two_node), "%s/tests/data/topo/two-node-nic1.xml", src);
	snprintf(fx->one_node, sizeof(fx->one_node), "%s/tests/data/topo/one-node.xml", src);
	snprintf(fx->sysfs, sizeof(fx->sysfs), "/tmp/wb-test-sysfs-XXXXXX");
	if (!mkdtemp(fx->sysfs))
		return -1;
	snprintf(path, sizeof(path), "%s/devices", fx->sysfs);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/devices/system", fx->sysfs);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/devices/system/cpu", fx->sysfs);
	mkdir(path, 0755);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char path[256];

	set_cpulists(fx, NULL, NULL);
	snprintf(path, sizeof(path), "%s/devices/system/cpu", fx->sysfs);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/devices/system", fx->sysfs);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/devices", fx->sysfs);
	rmdir(path);
	rmdir(fx->sysfs);
	free(fx);
	return 0;
}

static int resolve(struct fixture *fx, const char *xml)
{
	struct wb_placement_opts opts = { .topology_xml = xml, .sysfs_root = fx->sysfs };

	return wb_placement_resolve(&fx->cfg, &opts, &fx->plan, fx->err, sizeof(fx->err));
}

static unsigned count_warnings(const struct wb_plan *p, const char *needle)
{
	unsigned n = 0;

	for (unsigned i = 0; i < p->nwarnings; i++)
		n += strstr(p->warnings[i], needle) != NULL;
	return n;
}

static void test_config_topology_files_present(void **state)
{
	struct fixture *fx = *state;

	if (access(fx->two_node, R_OK) != 0) {
		print_message("SKIP: %s missing (set WB_SOURCE_DIR)\n", fx->two_node);
		skip();
	}
	assert_int_equal(access(fx->one_node, R_OK), 0);
}

static void test_config_numa_refuse(void **state)
{
	struct fixture *fx = *state;

	set_cpulists(fx, "1-15", NULL);
	make_config(&fx->cfg, "0000:3b:00.0", 1, WB_NUMA_REFUSE);
	assert_int_equal(resolve(fx, fx->two_node), -EINVAL);
	assert_string_equal(fx->err,
			    "config: cores.workers[0].lcore: worker w0 on core 1 (NUMA node 0) "
			    "polls port p0 on NUMA node 1; move it to a core of node 1 or set "
			    "numa_policy: warn\n");
	assert_int_equal(fx->plan.nnodes, 2);
	assert_int_equal(fx->plan.ncores, 16);
	assert_int_equal(fx->plan.ports[0].numa_node, 1);
	assert_int_equal(fx->plan.threads[0].numa_node, 0);
}

static void test_config_numa_warn(void **state)
{
	struct fixture *fx = *state;

	set_cpulists(fx, "1-15", NULL);
	make_config(&fx->cfg, "0000:3b:00.0", 1, WB_NUMA_WARN);
	assert_int_equal(resolve(fx, fx->two_node), 0);
	assert_string_equal(fx->err, "");
	assert_int_equal(fx->plan.nwarnings, 1);
	assert_string_equal(fx->plan.warnings[0],
			    "worker w0 on core 1 (NUMA node 0) polls port p0 on NUMA node 1: "
			    "every packet crosses the socket interconnect");
}

static void test_config_numa_ignore(void **state)
{
	struct fixture *fx = *state;

	set_cpulists(fx, "1-15", NULL);
	make_config(&fx->cfg, "0000:3b:00.0", 1, WB_NUMA_IGNORE);
	assert_int_equal(resolve(fx, fx->two_node), 0);
	assert_int_equal(fx->plan.nwarnings, 0);
	/* the plan still tells the truth about where things are */
	assert_int_equal(fx->plan.ports[0].numa_node, 1);
}

static void test_config_worker_on_nic_node_is_clean(void **state)
{
	struct fixture *fx = *state;
	const struct wb_plan *p = &fx->plan;

	set_cpulists(fx, "8-15", NULL);
	make_config(&fx->cfg, "0000:3b:00.0", 9, WB_NUMA_REFUSE);
	assert_int_equal(resolve(fx, fx->two_node), 0);
	assert_string_equal(fx->err, "");
	assert_int_equal(p->nwarnings, 0);
	assert_int_equal(p->nthreads, 3);
	assert_string_equal(p->threads[0].role, "worker");
	assert_string_equal(p->threads[0].name, "w0");
	assert_int_equal(p->threads[0].core, 9);
	assert_int_equal(p->threads[0].numa_node, 1);
	assert_true(p->threads[0].isolated);
	assert_string_equal(p->threads[1].role, "persister");
	assert_int_equal(p->threads[1].numa_node, 1);
	assert_string_equal(p->threads[2].role, "control");
	assert_int_equal(p->threads[2].core, 8);
	assert_int_equal(p->nports, 1);
	assert_string_equal(p->ports[0].device, "0000:3b:00.0");
	assert_int_equal(p->ports[0].numa_node, 1);
}

static void test_config_core_beyond_topology(void **state)
{
	struct fixture *fx = *state;

	set_cpulists(fx, "0-31", NULL);
	make_config(&fx->cfg, "0000:3b:00.0", 20, WB_NUMA_WARN);
	fx->cfg.control_lcore = 16;
	assert_int_equal(resolve(fx, fx->two_node), -EINVAL);
	assert_string_equal(fx->err,
			    "config: cores.workers[0].lcore: core 20 does not exist in the topology "
			    "(it has 16 logical cpus)\n"
			    "config: cores.control: core 16 does not exist in the topology (it has "
			    "16 logical cpus)\n");
}

static void test_config_isolation_warnings(void **state)
{
	struct fixture *fx = *state;

	/* only a busy-polling worker's core is checked; persister and control sleep */
	set_cpulists(fx, "2-3", NULL);
	make_config(&fx->cfg, "0000:3b:00.0", 9, WB_NUMA_REFUSE);
	assert_int_equal(resolve(fx, fx->two_node), 0);
	assert_int_equal(fx->plan.nwarnings, 1);
	assert_string_equal(fx->plan.warnings[0],
			    "core 9 (worker w0) is not isolated: add it to isolcpus= and "
			    "nohz_full= on the kernel command line");
	assert_false(fx->plan.threads[0].isolated);

	/* nohz_full alone counts, and lists with several ranges parse */
	set_cpulists(fx, NULL, "1,4-5,9,12-13\n");
	assert_int_equal(resolve(fx, fx->two_node), 0);
	assert_int_equal(fx->plan.nwarnings, 0);
	assert_true(fx->plan.threads[0].isolated);
	assert_false(fx->plan.threads[1].isolated); /* persister on 10 */

	/* no files at all (a kernel without isolation): every worker warns */
	set_cpulists(fx, NULL, NULL);
	fx->cfg.nworkers = 2;
	snprintf(fx->cfg.workers[1].name, sizeof(fx->cfg.workers[1].name), "w1");
	fx->cfg.workers[1].lcore = 11;
	assert_int_equal(resolve(fx, fx->two_node), 0);
	assert_int_equal(count_warnings(&fx->plan, "is not isolated"), 2);
	assert_int_equal(count_warnings(&fx->plan, "core 11 (worker w1)"), 1);
}

static void test_config_one_node_machine(void **state)
{
	struct fixture *fx = *state;

	set_cpulists(fx, "1-3", NULL);
	make_config(&fx->cfg, "0000:17:00.0", 1, WB_NUMA_REFUSE);
	fx->cfg.control_lcore = 0;
	fx->cfg.persisters[0].lcore = 0;
	assert_int_equal(resolve(fx, fx->one_node), 0);
	assert_int_equal(fx->plan.nnodes, 1);
	assert_int_equal(fx->plan.ncores, 4);
	assert_int_equal(fx->plan.ports[0].numa_node, 0);
	assert_int_equal(fx->plan.threads[0].numa_node, 0);
	assert_int_equal(fx->plan.nwarnings, 0);
}

static void test_config_vdev_and_absent_pci(void **state)
{
	struct fixture *fx = *state;

	set_cpulists(fx, "0-15", NULL);
	/* a vdev runs on any node: no NUMA check, no warning */
	make_config(&fx->cfg, "net_pcap0,rx_pcap=/tmp/x.pcap", 1, WB_NUMA_REFUSE);
	assert_int_equal(resolve(fx, fx->two_node), 0);
	assert_int_equal(fx->plan.ports[0].numa_node, -1);
	assert_int_equal(fx->plan.nwarnings, 0);

	/* a PCI address the topology does not have: unknown node, said so */
	make_config(&fx->cfg, "0000:af:00.0", 1, WB_NUMA_REFUSE);
	assert_int_equal(resolve(fx, fx->two_node), 0);
	assert_int_equal(fx->plan.ports[0].numa_node, -1);
	assert_int_equal(fx->plan.nwarnings, 1);
	assert_string_equal(fx->plan.warnings[0],
			    "port p0: PCI device 0000:af:00.0 is not in the topology; its NUMA "
			    "node is unknown");

	/* the short form without a domain finds the NIC */
	make_config(&fx->cfg, "3b:00.0", 9, WB_NUMA_REFUSE);
	assert_int_equal(resolve(fx, fx->two_node), 0);
	assert_int_equal(fx->plan.ports[0].numa_node, 1);
}

static void test_config_bad_topology_file(void **state)
{
	struct fixture *fx = *state;

	make_config(&fx->cfg, "net_null0", 1, WB_NUMA_WARN);
	assert_true(resolve(fx, "/nonexistent/topology.xml") < 0);
	assert_non_null(strstr(fx->err, "config: (topology): cannot read /nonexistent/topology.xml"));
}

static void test_config_this_machine(void **state)
{
	struct fixture *fx = *state;
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	set_cpulists(fx, NULL, NULL);
	make_config(&fx->cfg, "net_null0", 0, WB_NUMA_REFUSE);
	fx->cfg.persisters[0].lcore = 0;
	fx->cfg.control_lcore = 0;
	assert_int_equal(resolve(fx, NULL), 0);
	assert_int_equal(fx->plan.ncores, (unsigned)n);
	assert_true(fx->plan.threads[0].numa_node >= 0);
}

static void test_config_plan_print(void **state)
{
	struct fixture *fx = *state;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	set_cpulists(fx, "9", NULL);
	make_config(&fx->cfg, "0000:3b:00.0", 9, WB_NUMA_WARN);
	assert_int_equal(resolve(fx, fx->two_node), 0);
	f = open_memstream(&text, &len);
	assert_non_null(f);
	wb_plan_print(&fx->plan, f);
	fclose(f);
	assert_non_null(strstr(text, "topology: 16 logical cpus, 2 NUMA nodes\n"));
	assert_non_null(strstr(text, "THREAD"));
	assert_non_null(
		strstr(text, "w0                               worker         9     1  yes\n"));
	assert_non_null(
		strstr(text, "pz0                              persister     10     1  no\n"));
	assert_non_null(strstr(text, "p0                                   1  0000:3b:00.0\n"));
	assert_null(strstr(text, "warnings:"));
	free(text);
}

static void test_config_pin_self(void **state)
{
	cpu_set_t before, after;

	(void)state;
	assert_int_equal(sched_getaffinity(0, sizeof(before), &before), 0);
	assert_int_equal(wb_pin_self(0), 0);
	assert_int_equal(sched_getaffinity(0, sizeof(after), &after), 0);
	assert_int_equal(CPU_COUNT(&after), 1);
	assert_true(CPU_ISSET(0, &after));
	assert_int_equal(wb_pin_self(CPU_SETSIZE), -EINVAL);
	assert_int_equal(sched_setaffinity(0, sizeof(before), &before), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_config_topology_files_present),
		T(test_config_numa_refuse),
		T(test_config_numa_warn),
		T(test_config_numa_ignore),
		T(test_config_worker_on_nic_node_is_clean),
		T(test_config_core_beyond_topology),
		T(test_config_isolation_warnings),
		T(test_config_one_node_machine),
		T(test_config_vdev_and_absent_pci),
		T(test_config_bad_topology_file),
		T(test_config_this_machine),
		T(test_config_plan_print),
		T(test_config_pin_self),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
