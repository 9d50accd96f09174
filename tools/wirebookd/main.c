/* wirebookd: the appliance. Boot order: config, placement, control socket, EAL and
 * ports, feeds, persistence threads, workers; then serve the control socket until a
 * signal (or, in replay, until every input is exhausted and every ring is drained). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "config.h"
#include "ctl.h"
#include "dataplane.h"
#include "placement.h"
#include "rawring.h"
#include "sessions.h"

static volatile sig_atomic_t stop_requested, reload_requested;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_requested = 1;
	else
		stop_requested = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: wirebookd -c FILE.yaml [options]\n"
		"\n"
		"The wirebook market-data feed handler: pinned DPDK workers parse exchange feeds into\n"
		"per-symbol order books and hand every event to persistence threads that write\n"
		"compressed captures; a control socket serves status, stats and books (see wbctl).\n"
		"\n"
		"Options:\n"
		"  -c, --config FILE        configuration (docs/config.md); required\n"
		"      --check-config       validate FILE, print the resolved plan (threads, cores,\n"
		"                           NUMA nodes, ports) and exit 0, or 2 listing every error\n"
		"      --replay PCAP        replace the configured ports with a DPDK net_pcap device\n"
		"                           reading PCAP; repeat for several files (lines A and B may\n"
		"                           be in any file). Exits 0 once every input is exhausted and\n"
		"                           every ring is drained\n"
		"      --hold               with --replay: keep serving the control socket after the\n"
		"                           inputs end, until SIGINT/SIGTERM\n"
		"      --capture-dir DIR    override capture.directory\n"
		"      --no-capture         write no capture (events are counted and dropped)\n"
		"      --socket PATH        override control.socket\n"
		"      --summary-json FILE  write the final stats as JSON at exit\n"
		"      --books-json FILE    write every symbol's final book at full depth as JSON at exit\n"
		"      --topology-xml FILE  resolve placement against an hwloc XML topology (testing)\n"
		"      --check-udp-checksum verify UDP checksums in software (NICs normally do it)\n"
		"  -q, --quiet              no summary on stdout\n"
		"  -h, --help               this text\n"
		"  -V, --version            print the version\n"
		"\n"
		"Signals: SIGINT/SIGTERM stop the workers, drain the rings, close the capture,\n"
		"remove the socket and exit 0. SIGHUP re-reads the config file and applies what is\n"
		"safe live, or refuses listing the fields that need a restart (as `wbctl config reload`).\n"
		"Exit status: 0 success, 1 runtime failure, 2 bad configuration or usage.\n");
}

enum {
	OPT_CHECK = 256,
	OPT_REPLAY,
	OPT_HOLD,
	OPT_CAPDIR,
	OPT_NOCAP,
	OPT_SOCKET,
	OPT_SUMMARY,
	OPT_BOOKS,
	OPT_TOPO,
	OPT_UDPSUM,
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* DPDK's --no-shconf leaves no lock behind; this one makes a second daemon with the same
 * file prefix refuse to start. */
static int lock_prefix(const char *prefix, char *path, size_t n)
{
	const char *dir = access("/run", W_OK) == 0 ? "/run" : "/tmp";
	snprintf(path, n, "%s/wirebook-%s.lock", dir, prefix);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return -EADDRINUSE;
	}
	return fd;
}

static bool recovery_wanted(void *arg, unsigned feed, char session[10], uint64_t *from_seq)
{
	struct wb_dataplane *dp = arg;
	return wb_dataplane_feed_proto(dp, feed)->recovery_wanted(wb_dataplane_feed_state(dp, feed), session, from_seq);
}

static int recovery_push(void *arg, unsigned feed, uint64_t seq, const uint8_t *msg, uint16_t len)
{
	struct wb_dataplane *dp = arg;
	return wb_dataplane_feed_proto(dp, feed)->recovery_push(wb_dataplane_feed_state(dp, feed), seq, msg, len);
}

static int write_json_file(const char *path, json_t *j)
{
	if (json_dump_file(j, path, JSON_INDENT(1) | JSON_SORT_KEYS) != 0) {
		fprintf(stderr, "wirebookd: cannot write %s: %s\n", path, strerror(errno));
		return -EIO;
	}
	return 0;
}

static void print_summary(json_t *st, const struct wb_config *cfg, double secs)
{
	printf("\nwirebook summary (%.2f s)\n", secs);
	json_t *feeds = json_object_get(st, "feeds");
	size_t i;
	json_t *f;
	json_array_foreach(feeds, i, f) {
		json_t *lines = json_object_get(f, "lines");
		json_t *books = json_object_get(f, "books");
		json_t *ctr = json_object_get(f, "counters");
		printf("  feed %-16s %s\n", json_string_value(json_object_get(f, "name")),
		       json_string_value(json_object_get(f, "protocol")));
		const char *ln;
		json_t *l;
		json_object_foreach(lines, ln, l) {
			printf("    line %s %-22s packets %10lld  bytes %12lld", ln,
			       json_string_value(json_object_get(l, "endpoint")),
			       (long long)json_integer_value(json_object_get(l, "packets_total")),
			       (long long)json_integer_value(json_object_get(l, "bytes_total")));
			json_t *won = json_object_get(l, "line_packets_won_total");
			json_t *dup = json_object_get(l, "line_duplicate_packets_total");
			if (won)
				printf("  won %lld  dup %lld", (long long)json_integer_value(won),
				       (long long)json_integer_value(dup));
			printf("\n");
		}
		json_t *msgs = json_object_get(ctr, "messages_total");
		if (msgs)
			printf("    messages %lld  gaps %lld  declared %lld\n", (long long)json_integer_value(msgs),
			       (long long)json_integer_value(json_object_get(ctr, "gaps_total")),
			       (long long)json_integer_value(json_object_get(ctr, "gaps_declared_total")));
		if (books)
			printf("    books: %lld symbols, %lld live orders, %lld levels, %lld integrity events, %.1f MiB\n",
			       (long long)json_integer_value(json_object_get(books, "symbols")),
			       (long long)json_integer_value(json_object_get(books, "live_orders")),
			       (long long)json_integer_value(json_object_get(books, "live_levels")),
			       (long long)json_integer_value(json_object_get(books, "integrity_events_total")),
			       (double)json_integer_value(json_object_get(books, "memory_bytes")) / 1048576.0);
		if (books) {
			long long added = json_integer_value(json_object_get(books, "orders_added_total"));
			long long moved = json_integer_value(json_object_get(books, "survivor_moves_total"));
			printf("    orders: %lld added, %lld outlived the order ring\n", added, moved);
			/* past one in eight the moves cost the worker time (docs/book.md) */
			if (moved * 8 > added)
				printf("    hint: one order in %lld outlived the order ring: a larger book.order_ring "
				       "makes the worker faster for more memory (docs/config.md)\n",
				       moved ? added / moved : 0);
		}
	}
	printf("  unmatched packets %lld\n", (long long)json_integer_value(json_object_get(st, "unmatched_packets_total")));
	json_t *w;
	json_array_foreach(json_object_get(st, "workers"), i, w)
		printf("  worker %s (lcore %lld): %lld packets, %lld events, ring drops %lld\n",
		       json_string_value(json_object_get(w, "name")), (long long)json_integer_value(json_object_get(w, "lcore")),
		       (long long)json_integer_value(json_object_get(w, "rx_packets_total")),
		       (long long)json_integer_value(json_object_get(w, "events_total")),
		       (long long)json_integer_value(json_object_get(w, "ring_drops_events_total")));
	json_t *lat = json_object_get(st, "latency_rx_to_book");
	printf("  rx-to-book latency per packet: p50 %lld ns, p99 %lld ns, p99.9 %lld ns, max %lld ns\n",
	       (long long)json_integer_value(json_object_get(lat, "p50_ns")),
	       (long long)json_integer_value(json_object_get(lat, "p99_ns")),
	       (long long)json_integer_value(json_object_get(lat, "p999_ns")),
	       (long long)json_integer_value(json_object_get(lat, "max_ns")));
	json_t *p;
	json_array_foreach(json_object_get(st, "persisters"), i, p)
		printf("  capture %s: %lld events, %lld bytes in, %lld bytes out (ratio %.2f), %lld blocks, %lld lost to disk errors -> %s\n",
		       json_string_value(json_object_get(p, "name")),
		       (long long)json_integer_value(json_object_get(p, "events_in_total")),
		       (long long)json_integer_value(json_object_get(p, "bytes_in_total")),
		       (long long)json_integer_value(json_object_get(p, "bytes_out_total")),
		       json_real_value(json_object_get(p, "compression_ratio")),
		       (long long)json_integer_value(json_object_get(p, "blocks_written_total")),
		       (long long)json_integer_value(json_object_get(p, "events_lost_disk_total")), cfg->capture.directory);
}

int main(int argc, char **argv)
{
	static struct wb_config cfg;
	const char *config_path = NULL, *capdir = NULL, *sock = NULL, *summary = NULL, *books = NULL, *topo = NULL;
	const char *replay[WB_MAX_REPLAY];
	unsigned nreplay = 0;
	bool check = false, hold = false, nocap = false, quiet = false, udpsum = false;
	static const struct option longopts[] = {
		{ "config", required_argument, 0, 'c' },   { "check-config", no_argument, 0, OPT_CHECK },
		{ "replay", required_argument, 0, OPT_REPLAY }, { "hold", no_argument, 0, OPT_HOLD },
		{ "capture-dir", required_argument, 0, OPT_CAPDIR }, { "no-capture", no_argument, 0, OPT_NOCAP },
		{ "socket", required_argument, 0, OPT_SOCKET }, { "summary-json", required_argument, 0, OPT_SUMMARY },
		{ "books-json", required_argument, 0, OPT_BOOKS }, { "topology-xml", required_argument, 0, OPT_TOPO },
		{ "check-udp-checksum", no_argument, 0, OPT_UDPSUM }, { "quiet", no_argument, 0, 'q' },
		{ "help", no_argument, 0, 'h' },           { "version", no_argument, 0, 'V' },
		{ 0, 0, 0, 0 },
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "c:qhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': config_path = optarg; break;
		case OPT_CHECK: check = true; break;
		case OPT_REPLAY:
			if (nreplay == WB_MAX_REPLAY) {
				fprintf(stderr, "wirebookd: at most %d --replay files\n", WB_MAX_REPLAY);
				return 2;
			}
			if (access(optarg, R_OK) != 0) {
				fprintf(stderr, "wirebookd: --replay %s: %s\n", optarg, strerror(errno));
				return 2;
			}
			replay[nreplay++] = optarg;
			break;
		case OPT_HOLD: hold = true; break;
		case OPT_CAPDIR: capdir = optarg; break;
		case OPT_NOCAP: nocap = true; break;
		case OPT_SOCKET: sock = optarg; break;
		case OPT_SUMMARY: summary = optarg; break;
		case OPT_BOOKS: books = optarg; break;
		case OPT_TOPO: topo = optarg; break;
		case OPT_UDPSUM: udpsum = true; break;
		case 'q': quiet = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("wirebookd 0.1.0\n"); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!config_path || optind != argc) {
		fprintf(stderr, optind != argc ? "wirebookd: unexpected argument '%s'\n" : "wirebookd: -c FILE is required\n",
			optind < argc ? argv[optind] : "");
		usage(stderr);
		return 2;
	}
	if (hold && !nreplay) {
		fprintf(stderr, "wirebookd: --hold only makes sense with --replay\n");
		return 2;
	}

	static char err[16384];
	long ncores = sysconf(_SC_NPROCESSORS_CONF);
	if (wb_config_load(config_path, (unsigned)ncores, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s", err);
		if (err[0] && err[strlen(err) - 1] != '\n')
			fputc('\n', stderr);
		fprintf(stderr, "wirebookd: %s: invalid configuration\n", config_path);
		return 2;
	}
	for (uint32_t i = 0; i < cfg.nfeeds; i++) {
		if (!wb_feed_proto_find(cfg.feeds[i].protocol)) {
			fprintf(stderr, "%s: feeds[%u].protocol: unknown protocol '%s' (known:", config_path, i,
				cfg.feeds[i].protocol);
			for (const struct wb_feed_proto *const *p = wb_feed_protos(); *p; p++)
				fprintf(stderr, " %s", (*p)->name);
			fprintf(stderr, ")\n");
			return 2;
		}
	}
	static struct wb_plan plan;
	struct wb_placement_opts popts = { .topology_xml = topo, .sysfs_root = NULL };
	if (wb_placement_resolve(&cfg, &popts, &plan, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s", err);
		if (err[0] && err[strlen(err) - 1] != '\n')
			fputc('\n', stderr);
		return 2;
	}
	if (check) {
		printf("%s: configuration valid\n", config_path);
		wb_plan_print(&plan, stdout);
		return 0;
	}
	for (unsigned i = 0; i < plan.nwarnings; i++)
		fprintf(stderr, "wirebookd: warning: %s\n", plan.warnings[i]);
	if (capdir)
		snprintf(cfg.capture.directory, sizeof(cfg.capture.directory), "%s", capdir);
	if (sock)
		snprintf(cfg.control.socket, sizeof(cfg.control.socket), "%s", sock);

	int ret = 1;
	char lock_path[256];
	const char *prefix = cfg.file_prefix[0] ? cfg.file_prefix : "wirebook";
	int lock_fd = lock_prefix(prefix, lock_path, sizeof(lock_path));
	if (lock_fd < 0) {
		fprintf(stderr, "wirebookd: %s\n",
			lock_fd == -EADDRINUSE ? "another wirebookd is running with the same DPDK file prefix" : strerror(-lock_fd));
		fprintf(stderr, "wirebookd: (prefix '%s', lock %s); set dpdk.file_prefix to run a second instance\n", prefix,
			lock_path);
		return 1;
	}

	uint64_t start_ns = wall_ns();
	struct wb_ctl *ctl = NULL;
	struct wb_ctl_opts copts = { .cfg = &cfg, .config_path = config_path, .socket_path = cfg.control.socket,
				     .start_ns = start_ns, .ncores = (unsigned)ncores };
	/* The socket is taken before the EAL so a second daemon fails fast and clearly. */
	if (wb_ctl_create(&copts, &ctl, err, sizeof(err)) < 0) {
		fprintf(stderr, "wirebookd: %s\n", err);
		goto out_unlock;
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct wb_dataplane *dp = NULL;
	struct wb_dp_opts dopts = { .cfg = &cfg, .replay = nreplay ? replay : NULL, .nreplay = nreplay,
				    .prog = argv[0], .check_udp_checksum = udpsum };
	if (wb_dataplane_create(&dopts, &dp, err, sizeof(err)) < 0) {
		fprintf(stderr, "wirebookd: %s\n", err);
		goto out_ctl;
	}

	/* Persistence threads, each draining the rings of the workers that name it. */
	static struct wb_persister *pers[WB_MAX_PERSISTERS];
	unsigned npers = nocap ? 0 : cfg.npersisters;
	const char *feed_names[WB_MAX_FEEDS], *feed_protos[WB_MAX_FEEDS];
	for (uint32_t i = 0; i < cfg.nfeeds; i++) {
		feed_names[i] = cfg.feeds[i].name;
		feed_protos[i] = cfg.feeds[i].protocol;
	}
	bool ring_consumed[WB_MAX_WORKERS] = { false };
	if (npers && mkdir(cfg.capture.directory, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "wirebookd: capture directory %s: %s\n", cfg.capture.directory, strerror(errno));
		goto out_dp;
	}
	for (unsigned i = 0; i < npers; i++) {
		struct wb_persister_opts po = { .cap = &cfg.capture, .name = cfg.persisters[i].name,
						.core = cfg.persisters[i].lcore, .nfeeds = cfg.nfeeds,
						.feed_names = feed_names, .feed_protocols = feed_protos,
						.price_decimals = 4 };
		if (wb_persister_create(&po, &pers[i]) < 0) {
			fprintf(stderr, "wirebookd: persister %s: cannot open capture in %s\n", po.name, cfg.capture.directory);
			goto out_pers;
		}
		for (unsigned w = 0; w < wb_dataplane_nworkers(dp); w++) {
			if (cfg.workers[w].persister != (int)i)
				continue;
			wb_persister_attach(pers[i], wb_dataplane_ring(dp, w), cfg.workers[w].name);
			struct wb_rawring *raw = wb_dataplane_rawring(dp, w);
			if (raw) {
				char rn[WB_NAME_LEN + 8];
				snprintf(rn, sizeof(rn), "%s-raw", cfg.workers[w].name);
				wb_persister_attach_raw(pers[i], raw, rn);
			}
			ring_consumed[w] = true;
		}
		if (wb_persister_start(pers[i]) < 0) {
			fprintf(stderr, "wirebookd: persister %s: cannot start\n", po.name);
			goto out_pers;
		}
	}
	copts.dp = dp;
	copts.persisters = pers;
	copts.npersisters = npers;
	wb_ctl_attach(ctl, dp, pers, cfg.npersisters); /* NULL entries: capture off */

	/* TCP feeds: the kernel keeps each SoupBinTCP session (through the exception path);
	 * the workers read the same stream off the NIC ring. Replays have no server. */
	struct wb_sessions *sessions = NULL;
	bool tcp_feed[WB_MAX_FEEDS] = { false }, recover_feed[WB_MAX_FEEDS] = { false };
	for (unsigned f = 0; f < wb_dataplane_nfeeds(dp); f++) {
		const struct wb_feed_proto *p = wb_dataplane_feed_proto(dp, f);
		tcp_feed[f] = !nreplay && p->on_tcp_segment != NULL;
		recover_feed[f] = !nreplay && p->recovery_wanted && cfg.feeds[f].soup.addr;
	}
	struct wb_recovery_hooks hooks = { .wanted = recovery_wanted, .push = recovery_push, .arg = dp };
	if (wb_sessions_create(&cfg, tcp_feed, recover_feed, &hooks, &sessions, err, sizeof(err)) < 0) {
		fprintf(stderr, "wirebookd: %s\n", err);
		goto out_pers;
	}

	if (wb_dataplane_start(dp) < 0) {
		fprintf(stderr, "wirebookd: cannot launch workers\n");
		goto out_sessions;
	}
	wb_sessions_start(sessions, mono_ms());
	if (!quiet)
		fprintf(stderr, "wirebookd: running (%s%s), control socket %s\n", nreplay ? "replay" : "live",
			hold ? ", hold" : "", cfg.control.socket);

	uint64_t counted_only = 0;
	bool inputs_done_seen = false;
	while (!stop_requested) {
		wb_ctl_poll(ctl, 5);
		wb_sessions_service(sessions, mono_ms());
		if (reload_requested) {
			reload_requested = 0;
			json_t *r = wb_ctl_reload(ctl);
			char *txt = json_dumps(r, JSON_COMPACT);
			fprintf(stderr, "wirebookd: SIGHUP reload: %s\n", txt ? txt : "?");
			free(txt);
			json_decref(r);
		}
		/* Rings with no persister are drained here so their workers never see them full. */
		for (unsigned w = 0; w < wb_dataplane_nworkers(dp); w++) {
			if (ring_consumed[w])
				continue;
			struct wb_evring *r = wb_dataplane_ring(dp, w);
			const struct wb_event *run;
			uint32_t n;
			while ((n = wb_evring_peek(r, &run, 4096)) > 0) {
				counted_only += n;
				wb_evring_release(r, n);
			}
			struct wb_rawring *raw = wb_dataplane_rawring(dp, w);
			const struct wb_rawrec *rec;
			while (raw && (rec = wb_rawring_peek(raw)))
				wb_rawring_release(raw, rec);
		}
		if (nreplay && !inputs_done_seen && wb_dataplane_inputs_done(dp)) {
			inputs_done_seen = true;
			if (!quiet)
				fprintf(stderr, "wirebookd: replay inputs exhausted%s\n",
					hold ? "; holding (SIGINT/SIGTERM to exit)" : "");
			if (!hold)
				break;
		}
	}
	/* Log out first, while the workers still bridge the kernel's frames. */
	wb_sessions_stop(sessions, mono_ms());
	for (uint64_t t0 = mono_ms(); mono_ms() - t0 < 300;) {
		wb_sessions_service(sessions, mono_ms());
		usleep(5000);
	}
	wb_dataplane_stop(dp);
	ret = 0;
	for (unsigned i = 0; i < npers; i++)
		if (wb_persister_stop(pers[i]) < 0)
			ret = 1;

	json_t *st = wb_stats_json(dp, pers, npers, &cfg);
	json_object_set_new(st, "events_counted_not_captured_total", json_integer((json_int_t)counted_only));
	json_object_set_new(st, "elapsed_ns", json_integer((json_int_t)(wall_ns() - start_ns)));
	json_object_set_new(st, "sessions", wb_sessions_json(sessions));
	if (summary && write_json_file(summary, st) < 0)
		ret = 1;
	if (books) {
		json_t *all = json_object();
		json_t *feeds = json_array();
		for (unsigned f = 0; f < wb_dataplane_nfeeds(dp); f++) {
			json_t *b = wb_books_full_json(dp, f);
			json_object_set_new(b, "feed", json_string(cfg.feeds[f].name));
			json_array_append_new(feeds, b);
		}
		json_object_set_new(all, "feeds", feeds);
		if (write_json_file(books, all) < 0)
			ret = 1;
		json_decref(all);
	}
	if (!quiet)
		print_summary(st, &cfg, (double)(wall_ns() - start_ns) / 1e9);
	json_decref(st);

out_sessions:
	wb_sessions_destroy(sessions);
out_pers:
	for (unsigned i = 0; i < npers; i++) {
		if (pers[i])
			wb_persister_destroy(pers[i]);
	}
out_dp:
	wb_dataplane_destroy(dp);
out_ctl:
	wb_ctl_destroy(ctl);
out_unlock:
	close(lock_fd);
	unlink(lock_path);
	return ret;
}
