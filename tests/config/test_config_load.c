/* wb_config_load: every field of a full example lands where expected, and each class of
 * bad input gets its exact "FILE:LINE: FIELD: REASON" message. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

/* Lines are numbered: the error tests below name them. */
static const char *const base_lines[] = {
	"numa_policy: warn",                            /* 1 */
	"log_level: info",                              /* 2 */
	"ports:",                                       /* 3 */
	"  - name: p0",                                 /* 4 */
	"    device: \"0000:3b:00.0\"",                 /* 5 */
	"    rx_queues: 2",                             /* 6 */
	"cores:",                                       /* 7 */
	"  control: 0",                                 /* 8 */
	"  workers:",                                   /* 9 */
	"    - name: w0",                               /* 10 */
	"      lcore: 1",                               /* 11 */
	"      rx: [ { port: p0, queue: 0 } ]",         /* 12 */
	"      persister: pz0",                         /* 13 */
	"  persisters:",                                /* 14 */
	"    - name: pz0",                              /* 15 */
	"      lcore: 0",                               /* 16 */
	"feeds:",                                       /* 17 */
	"  - name: f0",                                 /* 18 */
	"    protocol: itch50-moldudp64",               /* 19 */
	"    line_a: 233.54.12.111:26477",              /* 20 */
	"    line_b: 233.49.196.111:26477",             /* 21 */
	"    port: p0",                                 /* 22 */
	"    queue: 0",                                 /* 23 */
};
#define BASE_N (sizeof(base_lines) / sizeof(base_lines[0]))

struct tmpcfg {
	char path[64];
	char err[4096];
	struct wb_config cfg;
};

static int setup(void **state)
{
	struct tmpcfg *t = calloc(1, sizeof(*t));
	int fd;

	if (!t)
		return -1;
	snprintf(t->path, sizeof(t->path), "/tmp/wb-test-config-XXXXXX.yaml");
	fd = mkstemps(t->path, 5);
	if (fd < 0) {
		free(t);
		return -1;
	}
	close(fd);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tmpcfg *t = *state;

	unlink(t->path);
	free(t);
	return 0;
}

static void write_text(struct tmpcfg *t, const char *text)
{
	FILE *f = fopen(t->path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	fclose(f);
}

/* Writes the base config with line `line` replaced by `with` (which may hold several
 * lines, or none); line 0 replaces nothing. */
static void write_base(struct tmpcfg *t, unsigned line, const char *with)
{
	FILE *f = fopen(t->path, "w");

	assert_non_null(f);
	for (unsigned i = 1; i <= BASE_N; i++) {
		if (i == line) {
			if (with[0])
				fprintf(f, "%s\n", with);
		} else {
			fprintf(f, "%s\n", base_lines[i - 1]);
		}
	}
	fclose(f);
}

/* The expected error text: each "%s" is the temp file's path. */
static void expect_errors(struct tmpcfg *t, unsigned ncores, const char *fmt, ...)
{
	char want[4096], pathed[4096];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	/* substitute the path for every "@" */
	size_t o = 0;
	for (const char *c = want; *c && o + sizeof(t->path) < sizeof(pathed); c++) {
		if (*c == '@')
			o += (size_t)snprintf(pathed + o, sizeof(pathed) - o, "%s", t->path);
		else
			pathed[o++] = *c;
	}
	pathed[o] = '\0';
	rc = wb_config_load(t->path, ncores, &t->cfg, t->err, sizeof(t->err));
	assert_int_equal(rc, -EINVAL);
	assert_string_equal(t->err, pathed);
}

static const char *source_dir(void)
{
	const char *s = getenv("WB_SOURCE_DIR");
	return s ? s : ".";
}

/* ---- valid configs ---- */

static void test_config_base_loads(void **state)
{
	struct tmpcfg *t = *state;
	const struct wb_config *c = &t->cfg;

	write_base(t, 0, "");
	/* control and persister pz0 share core 0: allowed, both sleep */
	assert_int_equal(wb_config_load(t->path, 2, &t->cfg, t->err, sizeof(t->err)), 0);
	assert_string_equal(t->err, "");
	assert_int_equal(c->nports, 1);
	assert_int_equal(c->nworkers, 1);
	assert_int_equal(c->npersisters, 1);
	assert_int_equal(c->nfeeds, 1);
	assert_int_equal(c->workers[0].persister, 0);
	assert_int_equal(c->feeds[0].worker, 0);
	assert_true(c->feeds[0].has_line_b);
	/* documented defaults for everything the file leaves out */
	assert_int_equal(c->ports[0].rx_descriptors, 1024);
	assert_int_equal(c->ports[0].tx_descriptors, 512);
	assert_int_equal(c->ports[0].mempool_size, 8191);
	assert_int_equal(c->ports[0].mbuf_cache, 256);
	assert_true(c->ports[0].promiscuous);
	assert_int_equal(c->workers[0].ring_size, 65536);
	assert_int_equal(c->workers[0].burst, 32);
	assert_string_equal(c->file_prefix, "wirebook");
	assert_int_equal(c->neal_args, 0);
	assert_false(c->feeds[0].raw_capture);
	assert_int_equal(c->feeds[0].snapshot_depth, 10);
	assert_int_equal(c->feeds[0].integrity_policy, WB_CFG_INTEGRITY_FLAG);
	assert_int_equal(c->feeds[0].rerequest.addr, 0);
	assert_int_equal(c->feeds[0].gap_timeout_ms, 500);
	assert_string_equal(c->capture.directory, "/var/lib/wirebook/capture");
	assert_int_equal(c->capture.durability, WB_DURABLE_INTERVAL);
	assert_string_equal(c->control.socket, "/run/wirebook/wirebook.sock");
	assert_int_equal(c->control.mode, 0660);
}

static void test_config_itch_example_every_field(void **state)
{
	struct tmpcfg *t = *state;
	const struct wb_config *c = &t->cfg;
	const struct wb_feed_conf *f = &c->feeds[0];
	char path[4096];
	int line = -1;

	snprintf(path, sizeof(path), "%s/examples/itch.yaml", source_dir());
	assert_int_equal(wb_config_load(path, 16, &t->cfg, t->err, sizeof(t->err)), 0);
	assert_string_equal(c->path, path);
	assert_int_equal(c->numa_policy, WB_NUMA_REFUSE);
	assert_int_equal(c->log_level, WB_LOG_INFO);
	assert_string_equal(c->file_prefix, "wirebook");
	assert_int_equal(c->neal_args, 2);
	assert_string_equal(c->eal_args[0], "--socket-mem");
	assert_string_equal(c->eal_args[1], "0,2048");

	assert_int_equal(c->nports, 1);
	assert_string_equal(c->ports[0].name, "nasdaq0");
	assert_string_equal(c->ports[0].device, "0000:3b:00.0");
	assert_int_equal(c->ports[0].rx_queues, 1);
	assert_int_equal(c->ports[0].tx_queues, 1);
	assert_int_equal(c->ports[0].rx_descriptors, 4096);
	assert_int_equal(c->ports[0].tx_descriptors, 512);
	assert_int_equal(c->ports[0].mempool_size, 32767);
	assert_int_equal(c->ports[0].mbuf_cache, 512);
	assert_true(c->ports[0].promiscuous);

	assert_int_equal(c->control_lcore, 8);
	assert_int_equal(c->nworkers, 1);
	assert_string_equal(c->workers[0].name, "itch-w0");
	assert_int_equal(c->workers[0].lcore, 9);
	assert_int_equal(c->workers[0].nrxq, 1);
	assert_int_equal(c->workers[0].rxq[0].port, 0);
	assert_int_equal(c->workers[0].rxq[0].queue, 0);
	assert_int_equal(c->workers[0].ring_size, 1048576);
	assert_int_equal(c->workers[0].burst, 32);
	assert_int_equal(c->workers[0].persister, 0);
	assert_int_equal(c->npersisters, 1);
	assert_string_equal(c->persisters[0].name, "itch-pz0");
	assert_int_equal(c->persisters[0].lcore, 10);

	assert_int_equal(c->nfeeds, 1);
	assert_string_equal(f->name, "nasdaq-itch");
	assert_string_equal(f->protocol, "itch50-moldudp64");
	assert_int_equal(f->line[0].addr, (233u << 24) | (54u << 16) | (12u << 8) | 111u);
	assert_int_equal(f->line[0].port, 26477);
	assert_true(f->has_line_b);
	assert_int_equal(f->line[1].addr, (233u << 24) | (49u << 16) | (196u << 8) | 111u);
	assert_int_equal(f->line[1].port, 26477);
	assert_int_equal(f->port, 0);
	assert_int_equal(f->queue, 0);
	assert_int_equal(f->worker, 0);
	assert_true(f->raw_capture);
	assert_int_equal(f->max_orders, 6000000);
	assert_int_equal(f->order_ring, 0);
	assert_int_equal(f->max_levels, 1000000);
	assert_int_equal(f->max_symbols, 16384);
	assert_int_equal(f->snapshot_depth, 10);
	assert_int_equal(f->integrity_policy, WB_CFG_INTEGRITY_FLAG);
	assert_int_equal(f->rerequest.addr, (10u << 24) | 1u);
	assert_int_equal(f->rerequest.port, 9000);
	assert_int_equal(f->soup.port, 9001);
	assert_int_equal(f->gap_timeout_ms, 500);
	assert_int_equal(f->line_silence_ms, 2000);
	assert_int_equal(f->reorder_buffer, 4096);

	assert_string_equal(c->capture.directory, "/var/lib/wirebook/capture");
	assert_int_equal(c->capture.zstd_level, 1);
	assert_int_equal(c->capture.block_bytes, 1048576);
	assert_int_equal(c->capture.rotate_bytes, 1073741824ull);
	assert_int_equal(c->capture.rotate_seconds, 3600);
	assert_int_equal(c->capture.durability, WB_DURABLE_INTERVAL);
	assert_int_equal(c->capture.durability_ms, 100);
	assert_int_equal(c->capture.retention_bytes, 2199023255552ull);
	assert_int_equal(c->capture.retention_hours, 720);
	assert_int_equal(c->capture.queue_depth, 8);

	assert_string_equal(c->control.socket, "/run/wirebook/wirebook.sock");
	assert_int_equal(c->control.mode, 0660);
	assert_string_equal(c->control.group, "wirebook");
	assert_string_equal(c->control.metrics_file,
			    "/var/lib/node_exporter/textfile/wirebook.prom");
	assert_int_equal(c->control.metrics_interval_ms, 10000);

	/* the lines resolve to the feed, A and B */
	assert_int_equal(wb_config_find_line(c, f->line[1].addr, 26477, &line), 0);
	assert_int_equal(line, 1);
	assert_int_equal(wb_config_find_line(c, f->line[0].addr, 26477, &line), 0);
	assert_int_equal(line, 0);
	assert_int_equal(wb_config_find_line(c, f->line[0].addr, 26478, &line), -1);

	/* on this 2-core build machine the same file names the cores it lacks */
	assert_int_equal(wb_config_load(path, 2, &t->cfg, t->err, sizeof(t->err)), -EINVAL);
	assert_non_null(strstr(t->err, ": cores.control: core 8 does not exist on this machine "
				       "(it has cores 0-1)\n"));
}

static void test_config_minimal_example_loads(void **state)
{
	struct tmpcfg *t = *state;
	char path[4096];

	snprintf(path, sizeof(path), "%s/examples/minimal.yaml", source_dir());
	assert_int_equal(wb_config_load(path, 2, &t->cfg, t->err, sizeof(t->err)), 0);
	assert_string_equal(t->cfg.ports[0].device, "net_null0");
	assert_int_equal(t->cfg.neal_args, 5);
	assert_string_equal(t->cfg.eal_args[4], "--no-shconf");
	assert_int_equal(t->cfg.workers[0].lcore, 1);
	assert_int_equal(t->cfg.persisters[0].lcore, 0);
	assert_int_equal(t->cfg.control.mode, 0600);
}

/* ---- schema errors reported by libcyaml ---- */

static void test_config_unknown_key(void **state)
{
	write_base(*state, 6, "    rx_qeues: 2");
	expect_errors(*state, 2, "@:6: ports[0].rx_qeues: unknown key\n");
}

static void test_config_unknown_top_level_key(void **state)
{
	write_base(*state, 2, "log_levle: info");
	expect_errors(*state, 2, "@:2: log_levle: unknown key\n");
}

static void test_config_wrong_type(void **state)
{
	write_base(*state, 6, "    rx_queues: many");
	expect_errors(*state, 2, "@:6: ports[0].rx_queues: 'many' is not an integer\n");
}

static void test_config_sequence_where_string_expected(void **state)
{
	write_base(*state, 19, "    protocol: [itch]");
	expect_errors(*state, 2, "@:19: feeds[0].protocol: expected a string, got a sequence\n");
}

static void test_config_missing_required_key(void **state)
{
	write_base(*state, 20, "");
	/* an absent key is blamed on the line of its enclosing entry */
	expect_errors(*state, 2, "@:18: feeds[0].line_a: missing required key\n");
}

static void test_config_duplicate_key(void **state)
{
	write_base(*state, 6, "    rx_queues: 2\n    rx_queues: 3");
	expect_errors(*state, 2, "@:7: ports[0].rx_queues: key given twice\n");
}

static void test_config_bad_boolean(void **state)
{
	write_base(*state, 6, "    rx_queues: 2\n    promiscuous: sometimes");
	expect_errors(*state, 2,
		      "@:7: ports[0].promiscuous: 'sometimes' is not a boolean (true or false)\n");
}

static void test_config_syntax_error(void **state)
{
	struct tmpcfg *t = *state;
	char want[128];

	write_base(t, 12, "      rx: [ { port: p0, queue: 0 }");
	assert_int_equal(wb_config_load(t->path, 2, &t->cfg, t->err, sizeof(t->err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:13: (syntax): ", t->path);
	assert_memory_equal(t->err, want, strlen(want));
}

static void test_config_empty_and_missing_file(void **state)
{
	struct tmpcfg *t = *state;
	char want[256];

	write_text(t, "");
	expect_errors(t, 2, "@:1: (document): the file is empty\n");
	assert_int_equal(wb_config_load("/nonexistent/wb.yaml", 2, &t->cfg, t->err,
					sizeof(t->err)),
			 -ENOENT);
	snprintf(want, sizeof(want),
		 "/nonexistent/wb.yaml:0: (file): cannot open: No such file or directory\n");
	assert_string_equal(t->err, want);
}

/* ---- values and cross-field rules ---- */

static void test_config_unknown_port_in_worker(void **state)
{
	write_base(*state, 12, "      rx: [ { port: p9, queue: 0 } ]");
	/* every problem is collected, not just the first */
	expect_errors(*state, 2,
		      "@:12: cores.workers[0].rx[0].port: unknown port 'p9'\n"
		      "@:23: feeds[0].queue: port p0 queue 0 is not polled by any worker\n");
}

static void test_config_unknown_port_in_feed(void **state)
{
	write_base(*state, 22, "    port: p7");
	expect_errors(*state, 2, "@:22: feeds[0].port: unknown port 'p7'\n");
}

static void test_config_recovery_keys(void **state)
{
	struct tmpcfg *t = *state;
	write_base(t, 23,
		   "    queue: 0\n"
		   "    credentials: /etc/wirebook/soup.cred\n"
		   "    recovery: { rerequest: 10.0.0.1:9000, source: 10.0.0.2:40100, rerequest_mac: \"02:00:00:00:00:07\" }");
	assert_int_equal(wb_config_load(t->path, 16, &t->cfg, t->err, sizeof(t->err)), 0);
	const struct wb_feed_conf *fc = &t->cfg.feeds[0];
	assert_string_equal(fc->credentials, "/etc/wirebook/soup.cred");
	assert_int_equal(fc->rerequest.addr, 0x0A000001);
	assert_int_equal(fc->rerequest_source.addr, 0x0A000002);
	assert_int_equal(fc->rerequest_source.port, 40100);
	assert_int_equal(fc->rerequest_mac[5], 7);
}

/* The order ring: 0 (absent) lets the book size it from max_orders; a power of two is kept. */
static void test_config_order_ring(void **state)
{
	struct tmpcfg *t = *state;
	write_base(t, 23, "    queue: 0\n    book: { max_orders: 2000000, order_ring: 16777216 }");
	assert_int_equal(wb_config_load(t->path, 16, &t->cfg, t->err, sizeof(t->err)), 0);
	assert_int_equal(t->cfg.feeds[0].order_ring, 16777216);
	assert_int_equal(t->cfg.feeds[0].max_orders, 2000000);
	write_base(t, 23, "    queue: 0\n    book: { max_orders: 2000000 }");
	assert_int_equal(wb_config_load(t->path, 16, &t->cfg, t->err, sizeof(t->err)), 0);
	assert_int_equal(t->cfg.feeds[0].order_ring, 0);
}

static void test_config_rerequest_needs_source(void **state)
{
	write_base(*state, 23, "    queue: 0\n    recovery: { rerequest: 10.0.0.1:9000 }");
	expect_errors(*state, 2,
		      "@:24: feeds[0].recovery.source: required with recovery.rerequest: the address responses "
		      "come back to\n");
}

static void test_config_bad_mac(void **state)
{
	write_base(*state, 23,
		   "    queue: 0\n    recovery: { rerequest: 10.0.0.1:9000, source: 10.0.0.2:1, rerequest_mac: \"02:00\" }");
	expect_errors(*state, 2,
		      "@:24: feeds[0].recovery.rerequest_mac: '02:00' is not a MAC address (aa:bb:cc:dd:ee:ff)\n");
}

static void test_config_exception_tap(void **state)
{
	struct tmpcfg *t = *state;
	write_base(t, 6, "    rx_queues: 2\n    exception_tap: wbtap0\n    exception_pps: 5000");
	assert_int_equal(wb_config_load(t->path, 16, &t->cfg, t->err, sizeof(t->err)), 0);
	assert_string_equal(t->cfg.ports[0].exception_tap, "wbtap0");
	assert_int_equal(t->cfg.ports[0].exception_pps, 5000);
	write_base(t, 6, "    rx_queues: 2\n    exception_tap: \"bad name\"");
	expect_errors(*state, 2, "@:7: ports[0].exception_tap: 'bad name' is not an interface name\n");
}

static void test_config_queue_polled_twice(void **state)
{
	write_base(*state, 13,
		   "      persister: pz0\n"
		   "    - name: w1\n"
		   "      lcore: 2\n"
		   "      rx: [ { port: p0, queue: 0 } ]");
	expect_errors(*state, 4,
		      "@:16: cores.workers[1].rx[0].queue: port p0 queue 0 is already polled by "
		      "worker w0\n");
}

static void test_config_queue_beyond_rx_queues(void **state)
{
	write_base(*state, 12, "      rx: [ { port: p0, queue: 2 } ]");
	expect_errors(*state, 2,
		      "@:12: cores.workers[0].rx[0].queue: queue 2 does not exist on port p0 (it "
		      "has 2 rx queues)\n"
		      "@:23: feeds[0].queue: port p0 queue 0 is not polled by any worker\n");
}

static void test_config_feed_queue_not_polled(void **state)
{
	write_base(*state, 23, "    queue: 1");
	expect_errors(*state, 2,
		      "@:23: feeds[0].queue: port p0 queue 1 is not polled by any worker\n");
}

static void test_config_duplicate_names(void **state)
{
	write_base(*state, 6, "    rx_queues: 2\n  - name: p0\n    device: net_null0");
	expect_errors(*state, 2, "@:7: ports[1].name: duplicate port name 'p0' (also ports[0])\n");
	write_base(*state, 23,
		   "    queue: 0\n"
		   "  - name: f0\n"
		   "    protocol: itch50-moldudp64\n"
		   "    line_a: 233.54.12.112:26477\n"
		   "    port: p0");
	expect_errors(*state, 2, "@:24: feeds[1].name: duplicate feed name 'f0' (also feeds[0])\n");
}

static void test_config_same_line_twice(void **state)
{
	write_base(*state, 21, "    line_b: 233.54.12.111:26477");
	expect_errors(*state, 2,
		      "@:21: feeds[0].line_b: 233.54.12.111:26477 is already line A of feed f0\n");
	write_base(*state, 23,
		   "    queue: 0\n"
		   "  - name: f1\n"
		   "    protocol: itch50-moldudp64\n"
		   "    line_a: 233.49.196.111:26477\n"
		   "    port: p0");
	expect_errors(*state, 2,
		      "@:26: feeds[1].line_a: 233.49.196.111:26477 is already line B of feed f0\n");
}

static void test_config_bad_endpoints(void **state)
{
	static const char *const bad[] = { "233.54.12.111", "233.54.12:26477",
					   "233.54.12.111:99999", "233.54.12.111:0",
					   "233.54.12.111:26x", "nasdaq:26477" };
	char line[128], want[256];

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "    line_a: \"%s\"", bad[i]);
		write_base(*state, 20, line);
		snprintf(want, sizeof(want),
			 "@:20: feeds[0].line_a: '%s' is not an IPv4:port endpoint (e.g. "
			 "233.54.12.111:26477)\n",
			 bad[i]);
		expect_errors(*state, 2, "%s", want);
	}
}

static void test_config_empty_protocol(void **state)
{
	write_base(*state, 19, "    protocol: \"\"");
	expect_errors(*state, 2, "@:19: feeds[0].protocol: must not be empty\n");
}

static void test_config_worker_core_shared(void **state)
{
	write_base(*state, 11, "      lcore: 0");
	expect_errors(*state, 2,
		      "@:11: cores.workers[0].lcore: core 0 is also the control core; a worker "
		      "busy-polls its core and shares it with nothing\n");
	write_base(*state, 16, "      lcore: 1");
	expect_errors(*state, 2,
		      "@:11: cores.workers[0].lcore: core 1 is also used by persister pz0; a "
		      "worker busy-polls its core and shares it with nothing\n");
	write_base(*state, 13,
		   "      persister: pz0\n"
		   "    - name: w1\n"
		   "      lcore: 1\n"
		   "      rx: [ { port: p0, queue: 1 } ]");
	expect_errors(*state, 4,
		      "@:15: cores.workers[1].lcore: core 1 is already used by worker w0; a "
		      "worker busy-polls its core and shares it with nothing\n");
}

static void test_config_persisters_share_core(void **state)
{
	write_base(*state, 16, "      lcore: 0\n    - name: pz1\n      lcore: 0");
	expect_errors(*state, 4,
		      "@:18: cores.persisters[1].lcore: core 0 is already used by persister pz0; "
		      "two persisters may not share a core\n");
}

static void test_config_core_beyond_machine(void **state)
{
	write_base(*state, 11, "      lcore: 7");
	expect_errors(*state, 2,
		      "@:11: cores.workers[0].lcore: core 7 does not exist on this machine (it "
		      "has cores 0-1)\n");
	write_base(*state, 8, "  control: 3");
	expect_errors(*state, 1,
		      "@:8: cores.control: core 3 does not exist on this machine (it has core 0)\n"
		      "@:11: cores.workers[0].lcore: core 1 does not exist on this machine (it "
		      "has core 0)\n");
}

static void test_config_unknown_persister(void **state)
{
	write_base(*state, 13, "      persister: pz9");
	expect_errors(*state, 2, "@:13: cores.workers[0].persister: unknown persister 'pz9'\n");
}

static void test_config_ring_size_not_power_of_two(void **state)
{
	write_base(*state, 13, "      persister: pz0\n      ring_size: 100000");
	expect_errors(*state, 2, "@:14: cores.workers[0].ring_size: 100000 is not a power of two\n");
}

/* One out-of-range value per numeric key class, each with its documented range. */
static void test_config_out_of_range(void **state)
{
	static const struct {
		unsigned line;
		const char *with;
		const char *want;
	} cases[] = {
		{ 6, "    rx_queues: 17", "@:6: ports[0].rx_queues: 17 is out of range (1..16)\n" },
		{ 6, "    rx_queues: 70000",
		  "@:6: ports[0].rx_queues: 70000 is out of range (1..16)\n" },
		{ 6, "    rx_queues: -1", "@:6: ports[0].rx_queues: -1 is out of range (1..16)\n" },
		{ 6, "    rx_queues: 2\n    rx_descriptors: 32",
		  "@:7: ports[0].rx_descriptors: 32 is out of range (64..16384)\n" },
		{ 6, "    rx_queues: 2\n    tx_descriptors: 1000",
		  "@:7: ports[0].tx_descriptors: 1000 is not a power of two\n" },
		{ 6, "    rx_queues: 2\n    mempool_size: 100",
		  "@:7: ports[0].mempool_size: 100 is out of range (1023..16777215)\n" },
		{ 6, "    rx_queues: 2\n    mbuf_cache: 513",
		  "@:7: ports[0].mbuf_cache: 513 is out of range (0..512)\n" },
		{ 13, "      persister: pz0\n      burst: 0",
		  "@:14: cores.workers[0].burst: 0 is out of range (1..512)\n" },
		{ 13, "      persister: pz0\n      ring_size: 512",
		  "@:14: cores.workers[0].ring_size: 512 is out of range (1024..67108864)\n" },
		{ 23, "    queue: 0\n    book: { snapshot_depth: 33 }",
		  "@:24: feeds[0].book.snapshot_depth: 33 is out of range (1..32)\n" },
		{ 23, "    queue: 0\n    book: { max_symbols: 65537 }",
		  "@:24: feeds[0].book.max_symbols: 65537 is out of range (1..65536)\n" },
		{ 23, "    queue: 0\n    book: { order_ring: 3000000 }",
		  "@:24: feeds[0].book.order_ring: 3000000 is not a power of two\n" },
		{ 23, "    queue: 0\n    book: { order_ring: 512 }",
		  "@:24: feeds[0].book.order_ring: 512 is out of range (1024..1073741824)\n" },
		{ 23, "    queue: 0\n    recovery:\n      gap_timeout_ms: 0",
		  "@:25: feeds[0].recovery.gap_timeout_ms: 0 is out of range (1..60000)\n" },
		{ 23, "    queue: 0\ncapture:\n  zstd_level: 20",
		  "@:25: capture.zstd_level: 20 is out of range (-7..19)\n" },
		{ 23, "    queue: 0\ncapture:\n  queue_depth: 0",
		  "@:25: capture.queue_depth: 0 is out of range (1..256)\n" },
		{ 23, "    queue: 0\ncapture:\n  block_bytes: 100000",
		  "@:25: capture.block_bytes: 100000 is not a multiple of 64 (the event size)\n" },
		{ 23, "    queue: 0\ncontrol:\n  mode: 660",
		  "@:25: control.mode: 01224 is out of range (0..0777); write it in octal with a "
		  "leading 0, e.g. 0660\n" },
		{ 23, "    queue: 0\ncontrol:\n  metrics_interval_ms: 10",
		  "@:25: control.metrics_interval_ms: 10 is out of range (100..3600000)\n" },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_base(*state, cases[i].line, cases[i].with);
		expect_errors(*state, 2, "%s", cases[i].want);
	}
}

static void test_config_bad_enum_and_name(void **state)
{
	write_base(*state, 1, "numa_policy: sometimes");
	expect_errors(*state, 2, "@:1: numa_policy: 'sometimes' is not one of warn, refuse, ignore\n");
	write_base(*state, 23, "    queue: 0\ncapture:\n  durability: always");
	expect_errors(*state, 2,
		      "@:25: capture.durability: 'always' is not one of none, interval, block\n");
	write_base(*state, 4, "  - name: \"p 0\"");
	expect_errors(*state, 2,
		      "@:4: ports[0].name: 'p 0' may only contain letters, digits, '-', '_' and '.'\n"
		      "@:12: cores.workers[0].rx[0].port: unknown port 'p0'\n"
		      "@:22: feeds[0].port: unknown port 'p0'\n");
	write_base(*state, 4, "  - name: a-very-long-port-name-that-does-not-fit");
	expect_errors(*state, 2,
		      "@:4: ports[0].name: too long (39 characters, at most 31)\n"
		      "@:12: cores.workers[0].rx[0].port: unknown port 'p0'\n"
		      "@:22: feeds[0].port: unknown port 'p0'\n");
}

/* Only whole lines fit the buffer; the return code still says how it went. */
static void test_config_error_buffer_holds_whole_lines(void **state)
{
	struct tmpcfg *t = *state;
	char small[80];

	write_base(t, 12, "      rx: [ { port: p9, queue: 0 } ]");
	assert_int_equal(wb_config_load(t->path, 2, &t->cfg, small, sizeof(small)), -EINVAL);
	assert_true(strlen(small) < sizeof(small));
	if (small[0])
		assert_int_equal(small[strlen(small) - 1], '\n');
	assert_null(strstr(small, "feeds[0]"));
	assert_int_equal(wb_config_load(t->path, 2, &t->cfg, NULL, 0), -EINVAL);
}

/* A config built in code: validate, then resolve derives each feed's worker. */
static void test_config_built_in_code(void **state)
{
	struct wb_config *c = &((struct tmpcfg *)*state)->cfg;
	char err[1024];

	wb_config_defaults(c);
	c->nports = 1;
	snprintf(c->ports[0].name, sizeof(c->ports[0].name), "p0");
	snprintf(c->ports[0].device, sizeof(c->ports[0].device), "net_null0");
	c->nworkers = 1;
	snprintf(c->workers[0].name, sizeof(c->workers[0].name), "w0");
	c->workers[0].lcore = 1;
	c->workers[0].nrxq = 1;
	c->nfeeds = 1;
	snprintf(c->feeds[0].name, sizeof(c->feeds[0].name), "f0");
	snprintf(c->feeds[0].protocol, sizeof(c->feeds[0].protocol), "itch50-moldudp64");
	assert_int_equal(wb_endpoint_parse("233.54.12.111:26477", &c->feeds[0].line[0]), 0);
	assert_int_equal(wb_config_validate(c, 2, err, sizeof(err)), 0);
	assert_int_equal(c->feeds[0].worker, -1);
	assert_int_equal(wb_config_resolve(c, 2, err, sizeof(err)), 0);
	assert_int_equal(c->feeds[0].worker, 0);

	c->workers[0].ring_size = 3000;
	c->feeds[0].queue = 1;
	assert_int_equal(wb_config_validate(c, 2, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
			    "config:0: cores.workers[0].ring_size: 3000 is not a power of two\n"
			    "config:0: feeds[0].queue: queue 1 does not exist on port p0 (it has 1 "
			    "rx queues)\n");
}

static void test_config_endpoint_round_trip(void **state)
{
	struct wb_endpoint ep;
	char buf[32];

	(void)state;
	assert_int_equal(wb_endpoint_parse("233.49.196.111:26477", &ep), 0);
	wb_endpoint_format(&ep, buf, sizeof(buf));
	assert_string_equal(buf, "233.49.196.111:26477");
	assert_int_equal(wb_endpoint_parse(":1", &ep), -EINVAL);
	assert_int_equal(wb_endpoint_parse("1.2.3.4:", &ep), -EINVAL);
	assert_int_equal(wb_endpoint_parse("1.2.3.4:+5", &ep), -EINVAL);
	assert_string_equal(wb_log_level_name(WB_LOG_DEBUG), "debug");
	assert_string_equal(wb_log_level_name((enum wb_log_level)9), "unknown");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_config_base_loads),
		T(test_config_itch_example_every_field),
		T(test_config_minimal_example_loads),
		T(test_config_unknown_key),
		T(test_config_recovery_keys),
		T(test_config_order_ring),
		T(test_config_rerequest_needs_source),
		T(test_config_bad_mac),
		T(test_config_exception_tap),
		T(test_config_unknown_top_level_key),
		T(test_config_wrong_type),
		T(test_config_sequence_where_string_expected),
		T(test_config_missing_required_key),
		T(test_config_duplicate_key),
		T(test_config_bad_boolean),
		T(test_config_syntax_error),
		T(test_config_empty_and_missing_file),
		T(test_config_unknown_port_in_worker),
		T(test_config_unknown_port_in_feed),
		T(test_config_queue_polled_twice),
		T(test_config_queue_beyond_rx_queues),
		T(test_config_feed_queue_not_polled),
		T(test_config_duplicate_names),
		T(test_config_same_line_twice),
		T(test_config_bad_endpoints),
		T(test_config_empty_protocol),
		T(test_config_worker_core_shared),
		T(test_config_persisters_share_core),
		T(test_config_core_beyond_machine),
		T(test_config_unknown_persister),
		T(test_config_ring_size_not_power_of_two),
		T(test_config_out_of_range),
		T(test_config_bad_enum_and_name),
		T(test_config_error_buffer_holds_whole_lines),
		T(test_config_built_in_code),
		T(test_config_endpoint_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
