/* wbctl: the operator CLI. Sends one JSON request over the control socket and prints the
 * answer as a table, or raw with --json. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/wirebook/wirebook.sock"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: wbctl [-s SOCKET] [--json] COMMAND [ARGS]\n"
		"\n"
		"Asks a running wirebookd over its control socket.\n"
		"\n"
		"Commands:\n"
		"  status                  version, uptime, config, every thread with its core and state\n"
		"  stats                   every counter: ports, workers, feed lines, books, rings, capture\n"
		"  book SYMBOL [--depth N] the live book (N levels per side, default 10, at most 32) with\n"
		"                          mid, spread (price and basis points), size imbalance, microprice\n"
		"  symbols [--limit N]     symbols with trading state, integrity state and message counts\n"
		"  freeze SYMBOL           hold updates off for SYMBOL until reset (admin)\n"
		"  reset SYMBOL            clear a frozen, flagged or stale book and resynchronise it (admin)\n"
		"  top [--interval MS] [--count N]\n"
		"                          refreshing view: per-feed messages/s, gaps, latency\n"
		"                          percentiles, ring fill, disk rate\n"
		"  metrics                 every counter in Prometheus text exposition\n"
		"  config show             the effective configuration (JSON)\n"
		"  config reload           re-read the config file, apply what is safe live, or refuse\n"
		"                          listing the fields that need a restart (admin)\n"
		"  replay --symbol S [--from T] [--to T] [--format jsonl|csv]\n"
		"                          stream captured events of S to stdout (admin); T is ISO 8601\n"
		"                          receive time, HH:MM:SS[.f] or ns exchange time\n"
		"  feeds                   per feed and line: state (ok, gap, recovering, silent), next\n"
		"                          sequence, gaps open/filled/declared, duplicates, last packet age\n"
		"  gaps [--limit N]        recent gaps: sequence range, how repaired (other line,\n"
		"                          re-request, soupbintcp, declared), re-requests, time taken\n"
		"  backfill FEED FROM_SEQ COUNT\n"
		"                          ask the feed's re-request server for COUNT messages (admin)\n"
		"  help                    the commands this daemon serves\n"
		"\n"
		"Options:\n"
		"  -s, --socket PATH   control socket (default $WIREBOOK_SOCKET or " DEFAULT_SOCKET ")\n"
		"  -j, --json          print the raw JSON response\n"
		"  -h, --help          this text\n"
		"Exit status: 0 ok, 1 the daemon answered with an error, 2 usage, 3 cannot connect\n"
		"or the connection ended early.\n");
}

static int connect_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "wbctl: socket path too long: %s\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "wbctl: cannot connect to %s: %s (is wirebookd running? -s names the socket)\n", path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int send_request(int fd, json_t *req)
{
	char *s = json_dumps(req, JSON_COMPACT);
	if (!s)
		return -1;
	/* One write per line, newline included: the daemon sees whole requests. */
	size_t len = strlen(s);
	char *line = realloc(s, len + 2);
	if (!line) {
		free(s);
		return -1;
	}
	line[len] = '\n';
	int ok = write(fd, line, len + 1) == (ssize_t)(len + 1);
	free(line);
	return ok ? 0 : -1;
}

/* One response line; NULL if the daemon closed first or sent no JSON. */
static json_t *read_response(FILE *in)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, in);
	json_t *resp = NULL;
	if (n > 0) {
		json_error_t e;
		resp = json_loadb(line, (size_t)n, 0, &e);
	}
	free(line);
	return resp;
}

static json_t *request(int fd, FILE *in, json_t *req)
{
	if (send_request(fd, req) < 0)
		return NULL;
	return read_response(in);
}

static long long I(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}
static const char *S(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static void print_status(json_t *r)
{
	printf("wirebookd %s  pid %lld  up %.1f s\nconfig %s\nsocket %s\n\n", S(r, "version"), I(r, "pid"),
	       (double)I(r, "uptime_ms") / 1000.0, S(r, "config"), S(r, "socket"));
	printf("%-16s %-10s %5s %5s  %s\n", "THREAD", "ROLE", "CORE", "NODE", "STATE");
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(r, "threads"), i, t) {
		json_t *node = json_object_get(t, "numa_node");
		char nb[16] = "-";
		if (node)
			snprintf(nb, sizeof(nb), "%lld", (long long)json_integer_value(node));
		printf("%-16s %-10s %5lld %5s  %s\n", S(t, "name"), S(t, "role"), I(t, "core"), nb, S(t, "state"));
	}
}

static void print_counters(const char *indent, json_t *o)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v) {
		if (json_is_integer(v))
			printf("%s%-40s %15lld\n", indent, k, (long long)json_integer_value(v));
		else if (json_is_real(v))
			printf("%s%-40s %15.3f\n", indent, k, json_real_value(v));
		else if (json_is_string(v))
			printf("%s%-40s %15s\n", indent, k, json_string_value(v));
	}
}

static void print_stats(json_t *r)
{
	size_t i;
	json_t *x;
	printf("PORTS\n");
	json_array_foreach(json_object_get(r, "ports"), i, x) {
		printf("  %s\n", S(x, "name"));
		print_counters("    ", x);
	}
	printf("WORKERS\n");
	json_array_foreach(json_object_get(r, "workers"), i, x) {
		printf("  %s\n", S(x, "name"));
		print_counters("    ", x);
		print_counters("    ", json_object_get(x, "packets"));
	}
	printf("  %-42s %15lld\n", "unmatched_packets_total", I(r, "unmatched_packets_total"));
	printf("LATENCY rx to book (per packet)\n");
	print_counters("    ", json_object_get(r, "latency_rx_to_book"));
	printf("LATENCY book to durable (per block or fdatasync)\n");
	print_counters("    ", json_object_get(r, "latency_book_to_durable"));
	printf("FEEDS\n");
	json_array_foreach(json_object_get(r, "feeds"), i, x) {
		printf("  %s (%s)\n", S(x, "name"), S(x, "protocol"));
		const char *ln;
		json_t *l;
		json_object_foreach(json_object_get(x, "lines"), ln, l) {
			printf("    line %s\n", ln);
			print_counters("      ", l);
		}
		print_counters("    ", json_object_get(x, "counters"));
		printf("    books\n");
		print_counters("      ", json_object_get(x, "books"));
	}
	printf("CAPTURE\n");
	json_array_foreach(json_object_get(r, "persisters"), i, x) {
		printf("  %s\n", S(x, "name"));
		print_counters("    ", x);
	}
	printf("CONTROL\n");
	print_counters("    ", json_object_get(r, "control"));
}

static double px(json_t *lvl)
{
	return strtod(S(lvl, "price"), NULL);
}

static void print_book(json_t *r)
{
	json_t *bids = json_object_get(r, "bids"), *asks = json_object_get(r, "asks");
	printf("%s  feed %lld  locate %lld  trading state %s  health %s  seq %lld\n\n", S(r, "symbol"), I(r, "feed"),
	       I(r, "locate"), S(r, "trading_state"), S(r, "health"), I(r, "seq"));
	printf("%8s %10s %14s | %-14s %10s %8s\n", "ORDERS", "SHARES", "BID", "ASK", "SHARES", "ORDERS");
	size_t n = json_array_size(bids) > json_array_size(asks) ? json_array_size(bids) : json_array_size(asks);
	for (size_t i = 0; i < n; i++) {
		json_t *b = json_array_get(bids, i), *a = json_array_get(asks, i);
		if (b)
			printf("%8lld %10lld %14s | ", I(b, "orders"), I(b, "shares"), S(b, "price"));
		else
			printf("%8s %10s %14s | ", "", "", "");
		if (a)
			printf("%-14s %10lld %8lld\n", S(a, "price"), I(a, "shares"), I(a, "orders"));
		else
			printf("\n");
	}
	json_t *b0 = json_array_get(bids, 0), *a0 = json_array_get(asks, 0);
	if (b0 && a0) {
		double bp = px(b0), ap = px(a0), bs = (double)I(b0, "shares"), as = (double)I(a0, "shares");
		double mid = (bp + ap) / 2, spread = ap - bp;
		printf("\nmid %.4f  spread %.4f (%.2f bps)  imbalance %+.3f  microprice %.4f\n", mid, spread,
		       mid > 0 ? spread / mid * 1e4 : 0.0, (bs - as) / (bs + as), (bp * as + ap * bs) / (bs + as));
	} else {
		printf("\none-sided or empty book: no mid, spread or microprice\n");
	}
}

static void print_feeds(json_t *r)
{
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(r, "feeds"), i, f) {
		printf("%s (%s): %s, next sequence %lld, gaps open %lld, filled %lld, declared %lld, re-requests %lld\n",
		       S(f, "name"), S(f, "protocol"), S(f, "state"), I(f, "next_sequence"), I(f, "gaps_open"),
		       I(f, "gaps_filled_total"), I(f, "gaps_declared_total"), I(f, "rerequests_sent_total"));
		printf("  %-4s %-22s %-10s %12s %12s %12s %14s %14s\n", "LINE", "ENDPOINT", "STATE", "PACKETS", "WON",
		       "DUPLICATES", "FROM OTHER", "LAST AGE ms");
		const char *ln;
		json_t *l;
		json_object_foreach(json_object_get(f, "lines"), ln, l)
			printf("  %-4s %-22s %-10s %12lld %12lld %12lld %14lld %14lld\n", ln, S(l, "endpoint"), S(l, "state"),
			       I(l, "packets_total"), I(l, "packets_won_total"), I(l, "duplicate_packets_total"),
			       I(l, "missing_taken_from_other_total"), I(l, "last_packet_age_ms"));
	}
}

static void print_gaps(json_t *r)
{
	printf("%-14s %14s %14s %9s %-12s %10s %14s\n", "FEED", "FIRST SEQ", "LAST SEQ", "MESSAGES", "REPAIR",
	       "REQUESTS", "TOOK us");
	size_t i;
	json_t *g;
	json_array_foreach(json_object_get(r, "gaps"), i, g) {
		long long took = I(g, "took_ns");
		printf("%-14s %14lld %14lld %9lld %-12s %10lld ", S(g, "feed"), I(g, "first_seq"), I(g, "last_seq"),
		       I(g, "messages"), S(g, "repair"), I(g, "rerequests"));
		if (took < 0)
			printf("%14s\n", "(open)");
		else
			printf("%14.1f\n", (double)took / 1000.0);
	}
}

static void print_symbols(json_t *r)
{
	printf("%-10s %4s %6s %5s %-8s %12s %10s %10s\n", "SYMBOL", "FEED", "LOCATE", "STATE", "HEALTH", "MESSAGES",
	       "INTEGRITY", "ORDERS");
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(r, "symbols"), i, s)
		printf("%-10s %4lld %6lld %5s %-8s %12lld %10lld %10lld\n", S(s, "symbol"), I(s, "feed"), I(s, "locate"),
		       S(s, "trading_state"), S(s, "health"), I(s, "messages_total"), I(s, "integrity_events_total"),
		       I(s, "live_orders"));
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static long long feed_msgs(json_t *f)
{
	json_t *c = json_object_get(f, "counters");
	json_t *m = json_object_get(c, "messages_total");
	return m ? (long long)json_integer_value(m) : I(json_object_get(f, "books"), "messages_total");
}

/* One screen of `top` from two stats samples dt seconds apart (prev may be NULL). */
static void print_top(json_t *cur, json_t *prev, double dt, bool tty)
{
	if (tty)
		printf("\033[H\033[2J");
	time_t now = time(NULL);
	char ts[32];
	strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&now));
	json_t *lat = json_object_get(cur, "latency_rx_to_book");
	printf("wirebook top  %s  rx->book p50 %lld ns  p99 %lld ns  p99.9 %lld ns  max %lld ns\n\n", ts,
	       I(lat, "p50_ns"), I(lat, "p99_ns"), I(lat, "p999_ns"), I(lat, "max_ns"));
	printf("%-16s %12s %12s %8s %8s %10s %8s\n", "FEED", "MSGS/S", "MESSAGES", "GAPS", "LOST", "INTEGRITY",
	       "HEALTH");
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(cur, "feeds"), i, f) {
		json_t *pf = prev ? json_array_get(json_object_get(prev, "feeds"), i) : NULL;
		double rate = pf && dt > 0 ? (double)(feed_msgs(f) - feed_msgs(pf)) / dt : 0.0;
		json_t *c = json_object_get(f, "counters");
		long long lost = I(c, "gap_messages_lost_total"), integ = I(json_object_get(f, "books"), "integrity_events_total");
		printf("%-16s %12.0f %12lld %8lld %8lld %10lld %8s\n", S(f, "name"), rate, feed_msgs(f), I(c, "gaps_total"),
		       lost, integ, lost ? "GAPPED" : integ ? "FLAGGED" : "ok");
	}
	printf("\n%-16s %6s %12s %9s %12s %10s %10s\n", "WORKER", "LCORE", "PKTS/S", "BUSY", "RING FILL", "RING HWM",
	       "RING DROPS");
	json_t *w;
	json_array_foreach(json_object_get(cur, "workers"), i, w) {
		json_t *pw = prev ? json_array_get(json_object_get(prev, "workers"), i) : NULL;
		double rate = pw && dt > 0 ? (double)(I(w, "rx_packets_total") - I(pw, "rx_packets_total")) / dt : 0.0;
		long long size = I(w, "ring_size_events");
		printf("%-16s %6lld %12.0f %8.1f%% %11.1f%% %10lld %10lld\n", S(w, "name"), I(w, "lcore"), rate,
		       100.0 * json_real_value(json_object_get(w, "busy_ratio")),
		       size ? 100.0 * (double)I(w, "ring_occupancy_events") / (double)size : 0.0,
		       I(w, "ring_high_water_events"), I(w, "ring_drops_events_total"));
	}
	printf("\n%-16s %12s %12s %8s %12s %10s\n", "CAPTURE", "DISK MB/S", "EVENTS/S", "RATIO", "DURABLE LAG",
	       "LOST");
	json_t *p;
	json_array_foreach(json_object_get(cur, "persisters"), i, p) {
		json_t *pp = prev ? json_array_get(json_object_get(prev, "persisters"), i) : NULL;
		double mbs = pp && dt > 0 ? (double)(I(p, "bytes_out_total") - I(pp, "bytes_out_total")) / dt / 1e6 : 0.0;
		double evs = pp && dt > 0 ? (double)(I(p, "events_in_total") - I(pp, "events_in_total")) / dt : 0.0;
		printf("%-16s %12.2f %12.0f %8.2f %9.1f ms %10lld\n", S(p, "name"), mbs, evs,
		       json_real_value(json_object_get(p, "compression_ratio")), (double)I(p, "durable_lag_ns") / 1e6,
		       I(p, "events_lost_disk_total"));
	}
	fflush(stdout);
}

static int run_top(int fd, FILE *in, long interval_ms, long count)
{
	bool tty = isatty(1);
	json_t *prev = NULL;
	uint64_t prev_t = 0;
	json_t *req = json_pack("{s:s}", "cmd", "stats");
	int rc = 0;
	for (long n = 0; count <= 0 || n < count; n++) {
		if (n)
			usleep((useconds_t)interval_ms * 1000);
		json_t *resp = request(fd, in, req);
		uint64_t t = mono_ns();
		if (!resp) {
			fprintf(stderr, "wbctl: top: the daemon went away\n");
			rc = 3;
			break;
		}
		if (!json_is_true(json_object_get(resp, "ok"))) {
			fprintf(stderr, "wbctl: %s\n", S(resp, "error"));
			json_decref(resp);
			rc = 1;
			break;
		}
		json_t *cur = json_incref(json_object_get(resp, "result"));
		json_decref(resp);
		print_top(cur, prev, prev ? (double)(t - prev_t) / 1e9 : 0.0, tty);
		if (!tty)
			printf("\n");
		json_decref(prev);
		prev = cur;
		prev_t = t;
	}
	json_decref(prev);
	json_decref(req);
	return rc;
}

/* The header response, then raw lines to stdout until the {"end":...} line. */
static int run_replay(int fd, FILE *in, json_t *req)
{
	json_t *resp = request(fd, in, req);
	if (!resp) {
		fprintf(stderr, "wbctl: no valid response\n");
		return 3;
	}
	if (!json_is_true(json_object_get(resp, "ok"))) {
		fprintf(stderr, "wbctl: %s\n", S(resp, "error"));
		json_decref(resp);
		return 1;
	}
	json_decref(resp);
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 3;
	while ((n = getline(&line, &cap, in)) > 0) {
		if (!strncmp(line, "{\"end\":", 7)) {
			json_error_t e;
			json_t *end = json_loads(line, 0, &e);
			fprintf(stderr, "wbctl: replay: %lld events\n", I(end, "events"));
			if (I(end, "bad_blocks"))
				fprintf(stderr, "wbctl: replay: warning: %lld capture blocks did not read\n",
					I(end, "bad_blocks"));
			json_decref(end);
			rc = 0;
			break;
		}
		if (fwrite(line, 1, (size_t)n, stdout) != (size_t)n) {
			rc = 1;
			break;
		}
	}
	free(line);
	if (rc == 3)
		fprintf(stderr, "wbctl: replay: the stream ended before its end marker\n");
	return rc;
}

int main(int argc, char **argv)
{
	const char *sock = getenv("WIREBOOK_SOCKET");
	const char *symbol = NULL, *from = NULL, *to = NULL, *format = NULL;
	bool raw = false;
	long depth = 10, limit = 0, interval = 1000, count = 0;
	enum { O_SYMBOL = 256, O_FROM, O_TO, O_FORMAT, O_INTERVAL, O_COUNT };
	static const struct option lo[] = {
		{ "socket", required_argument, 0, 's' },    { "json", no_argument, 0, 'j' },
		{ "depth", required_argument, 0, 'd' },     { "limit", required_argument, 0, 'l' },
		{ "symbol", required_argument, 0, O_SYMBOL }, { "from", required_argument, 0, O_FROM },
		{ "to", required_argument, 0, O_TO },       { "format", required_argument, 0, O_FORMAT },
		{ "interval", required_argument, 0, O_INTERVAL }, { "count", required_argument, 0, O_COUNT },
		{ "help", no_argument, 0, 'h' },            { 0, 0, 0, 0 },
	};
	/* A daemon that closes first is reported ("no valid response"), not a silent death. */
	signal(SIGPIPE, SIG_IGN);
	/* Options may come before or after the command ("wbctl book AAPL --depth 5 --json"). */
	const char *pos[4] = { NULL, NULL, NULL, NULL };
	int npos = 0, opt;
	while (optind < argc) {
		opt = getopt_long(argc, argv, "+s:jd:l:h", lo, NULL);
		if (opt == -1) {
			if (npos < 4)
				pos[npos++] = argv[optind];
			else {
				fprintf(stderr, "wbctl: unexpected argument '%s'\n", argv[optind]);
				return 2;
			}
			optind++;
			continue;
		}
		switch (opt) {
		case 's': sock = optarg; break;
		case 'j': raw = true; break;
		case 'd': depth = strtol(optarg, NULL, 10); break;
		case 'l': limit = strtol(optarg, NULL, 10); break;
		case O_SYMBOL: symbol = optarg; break;
		case O_FROM: from = optarg; break;
		case O_TO: to = optarg; break;
		case O_FORMAT: format = optarg; break;
		case O_INTERVAL: interval = strtol(optarg, NULL, 10); break;
		case O_COUNT: count = strtol(optarg, NULL, 10); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!npos) {
		usage(stderr);
		return 2;
	}
	const char *cmd = pos[0], *arg = pos[1];
	if (!sock)
		sock = DEFAULT_SOCKET;
	if (interval < 100)
		interval = 100;
	json_t *req;
	if (!strcmp(cmd, "config")) {
		if (!arg || (strcmp(arg, "show") && strcmp(arg, "reload"))) {
			fprintf(stderr, "wbctl: config needs 'show' or 'reload'\n");
			return 2;
		}
		req = json_pack("{s:s}", "cmd", !strcmp(arg, "show") ? "config_show" : "reload");
	} else if (!strcmp(cmd, "top")) {
		req = json_pack("{s:s}", "cmd", "stats");
	} else if (!strcmp(cmd, "replay")) {
		if (!symbol)
			symbol = arg;
		if (!symbol) {
			fprintf(stderr, "wbctl: replay needs --symbol SYMBOL\n");
			return 2;
		}
		req = json_pack("{s:s,s:s}", "cmd", "replay", "symbol", symbol);
		if (from)
			json_object_set_new(req, "from", json_string(from));
		if (to)
			json_object_set_new(req, "to", json_string(to));
		if (format)
			json_object_set_new(req, "format", json_string(format));
	} else {
		req = json_pack("{s:s}", "cmd", cmd);
	}
	if (!strcmp(cmd, "book") || !strcmp(cmd, "freeze") || !strcmp(cmd, "reset")) {
		if (!arg) {
			fprintf(stderr, "wbctl: %s needs a SYMBOL\n", cmd);
			json_decref(req);
			return 2;
		}
		json_object_set_new(req, "symbol", json_string(arg));
		if (!strcmp(cmd, "book"))
			json_object_set_new(req, "depth", json_integer(depth));
	} else if ((!strcmp(cmd, "symbols") || !strcmp(cmd, "gaps")) && limit > 0) {
		json_object_set_new(req, "limit", json_integer(limit));
	} else if (!strcmp(cmd, "backfill")) {
		char *e1 = NULL, *e2 = NULL;
		long long from_seq = npos > 2 ? strtoll(pos[2], &e1, 10) : 0;
		long long cnt = npos > 3 ? strtoll(pos[3], &e2, 10) : 0;
		if (npos != 4 || *e1 || *e2 || from_seq < 1 || cnt < 1 || cnt > 65534) {
			fprintf(stderr, "wbctl: backfill FEED FROM_SEQ COUNT (FROM_SEQ >= 1, COUNT 1..65534)\n");
			json_decref(req);
			return 2;
		}
		json_object_set_new(req, "feed", json_string(arg));
		json_object_set_new(req, "from_seq", json_integer(from_seq));
		json_object_set_new(req, "count", json_integer(cnt));
	}
	int fd = connect_socket(sock);
	if (fd < 0) {
		json_decref(req);
		return 3;
	}
	FILE *in = fdopen(dup(fd), "r");
	if (!in) {
		close(fd);
		json_decref(req);
		return 3;
	}
	int rc = 0;
	if (!strcmp(cmd, "top")) {
		rc = run_top(fd, in, interval, count);
		goto out;
	}
	if (!strcmp(cmd, "replay")) {
		rc = run_replay(fd, in, req);
		goto out;
	}
	json_t *resp = request(fd, in, req);
	if (!resp) {
		fprintf(stderr, "wbctl: no valid response from %s\n", sock);
		rc = 3;
		goto out;
	}
	if (json_is_true(json_object_get(resp, "ok"))) {
		json_t *r = json_object_get(resp, "result");
		if (!strcmp(cmd, "metrics") && !raw) {
			fputs(S(r, "text"), stdout);
		} else if (raw || !strcmp(cmd, "config")) {
			json_dumpf(r, stdout, JSON_INDENT(1));
			printf("\n");
		} else if (!strcmp(cmd, "status")) {
			print_status(r);
		} else if (!strcmp(cmd, "stats")) {
			print_stats(r);
		} else if (!strcmp(cmd, "book")) {
			print_book(r);
		} else if (!strcmp(cmd, "symbols")) {
			print_symbols(r);
		} else if (!strcmp(cmd, "feeds")) {
			print_feeds(r);
		} else if (!strcmp(cmd, "gaps")) {
			print_gaps(r);
		} else {
			json_dumpf(r, stdout, JSON_INDENT(1));
			printf("\n");
		}
	} else {
		if (raw) {
			json_dumpf(resp, stdout, JSON_INDENT(1));
			printf("\n");
		}
		fprintf(stderr, "wbctl: %s\n", S(resp, "error"));
		json_t *fields = json_object_get(resp, "restart_required");
		size_t i;
		json_t *v;
		json_array_foreach(fields, i, v)
			fprintf(stderr, "wbctl:   needs a restart: %s\n", json_string_value(v));
		const char *details = S(resp, "details");
		if (*details)
			fprintf(stderr, "%s\n", details);
		rc = 1;
	}
	json_decref(resp);
out:
	fclose(in);
	close(fd);
	json_decref(req);
	return rc;
}
