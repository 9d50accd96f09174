/* wbctl: the operator CLI. Sends one JSON request over the control socket and prints the
 * answer as a table, or raw with --json. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
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
		"  freeze SYMBOL           hold updates off for SYMBOL until reset\n"
		"  reset SYMBOL            clear a frozen or flagged book and resume it\n"
		"\n"
		"Options:\n"
		"  -s, --socket PATH   control socket (default $WIREBOOK_SOCKET or " DEFAULT_SOCKET ")\n"
		"  -j, --json          print the raw JSON response\n"
		"  -h, --help          this text\n"
		"Exit status: 0 ok, 1 the daemon answered with an error, 2 usage, 3 cannot connect.\n");
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

static json_t *request(int fd, json_t *req)
{
	char *s = json_dumps(req, JSON_COMPACT);
	size_t len = strlen(s);
	if (write(fd, s, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
		free(s);
		return NULL;
	}
	free(s);
	size_t cap = 1 << 16, used = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (used == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
		}
		ssize_t n = read(fd, buf + used, cap - used);
		if (n <= 0)
			break;
		used += (size_t)n;
		if (memchr(buf + used - (size_t)n, '\n', (size_t)n))
			break;
	}
	json_error_t e;
	json_t *resp = json_loadb(buf, used, 0, &e);
	free(buf);
	return resp;
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

int main(int argc, char **argv)
{
	const char *sock = getenv("WIREBOOK_SOCKET");
	bool raw = false;
	long depth = 10, limit = 0;
	static const struct option lo[] = {
		{ "socket", required_argument, 0, 's' }, { "json", no_argument, 0, 'j' },
		{ "depth", required_argument, 0, 'd' },  { "limit", required_argument, 0, 'l' },
		{ "help", no_argument, 0, 'h' },          { 0, 0, 0, 0 },
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "+s:jd:l:h", lo, NULL)) != -1) {
		switch (opt) {
		case 's': sock = optarg; break;
		case 'j': raw = true; break;
		case 'd': depth = strtol(optarg, NULL, 10); break;
		case 'l': limit = strtol(optarg, NULL, 10); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[optind++];
	/* Options may also follow the command ("wbctl book AAPL --depth 5 --json"). */
	const char *arg = NULL;
	while (optind < argc) {
		opt = getopt_long(argc, argv, "+s:jd:l:h", lo, NULL);
		if (opt == -1) {
			if (!arg)
				arg = argv[optind];
			optind++;
			continue;
		}
		switch (opt) {
		case 's': sock = optarg; break;
		case 'j': raw = true; break;
		case 'd': depth = strtol(optarg, NULL, 10); break;
		case 'l': limit = strtol(optarg, NULL, 10); break;
		default: usage(stderr); return 2;
		}
	}
	if (!sock)
		sock = DEFAULT_SOCKET;
	json_t *req = json_pack("{s:s}", "cmd", cmd);
	if (!strcmp(cmd, "book") || !strcmp(cmd, "freeze") || !strcmp(cmd, "reset")) {
		if (!arg) {
			fprintf(stderr, "wbctl: %s needs a SYMBOL\n", cmd);
			return 2;
		}
		json_object_set_new(req, "symbol", json_string(arg));
		if (!strcmp(cmd, "book"))
			json_object_set_new(req, "depth", json_integer(depth));
	} else if (!strcmp(cmd, "symbols") && limit > 0) {
		json_object_set_new(req, "limit", json_integer(limit));
	}
	int fd = connect_socket(sock);
	if (fd < 0)
		return 3;
	json_t *resp = request(fd, req);
	close(fd);
	json_decref(req);
	if (!resp) {
		fprintf(stderr, "wbctl: no valid response from %s\n", sock);
		return 3;
	}
	int rc = 0;
	if (json_is_true(json_object_get(resp, "ok"))) {
		json_t *r = json_object_get(resp, "result");
		if (raw) {
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
		rc = 1;
	}
	json_decref(resp);
	return rc;
}
