/* wbsim: command line of the ITCH 5.0 exchange simulator (docs/wbsim.md). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "serve.h"
#include "sim.h"
#ifdef WB_HAVE_LIVE
#include "live.h"
#endif

static void usage(FILE *out)
{
	fprintf(out,
		"usage: wbsim gen [options]\n"
		"       wbsim serve [options]   (recovery servers: wbsim serve --help)\n"
		"       wbsim live [options]    (send a session through a DPDK port: wbsim live --help)\n"
		"\n"
		"Generates a deterministic Nasdaq TotalView-ITCH 5.0 session: system events, a stock\n"
		"directory, trading actions and a realistic order flow, written as an ITCH file\n"
		"and/or MoldUDP64 pcaps for lines A and B, plus the ground truth (final books).\n"
		"The same seed always gives byte-identical outputs.\n"
		"\n"
		"Session:\n"
		"  --symbols N        symbols, locates 1..N (default 3000, at most 65535)\n"
		"  --messages N       messages in the session, system events included\n"
		"                     (default 1000000; suffixes k and M accepted: 20M)\n"
		"  --seed N           random seed (default 1)\n"
		"  --session NAME     MoldUDP64 session, at most 10 characters (default WBSIM00001)\n"
		"  --date YYYY-MM-DD  trading date for pcap times, New York midnight + ITCH time\n"
		"                     (default 2026-11-20)\n"
		"\n"
		"Outputs (at least one):\n"
		"  --itch FILE        Nasdaq file framing: u16 big-endian length + message\n"
		"  --out-a FILE       pcap (ns) of line A: Ethernet/IPv4/UDP/MoldUDP64\n"
		"  --out-b FILE       pcap of line B, same packets a few microseconds later\n"
		"  --truth FILE       ground truth JSON: counts, injected faults, final books\n"
		"\n"
		"Lines:\n"
		"  --line-a G:P       group and port of line A (default 233.54.12.111:26477)\n"
		"  --line-b G:P       group and port of line B (default 233.49.196.111:26477)\n"
		"  --lag-b NS         line B lag and jitter in ns (default 5000)\n"
		"\n"
		"Faults, per data packet, seeded independently of the messages (same for -b):\n"
		"  --loss-a P         lose the packet with probability P (default 0)\n"
		"  --burst-loss-a P:LEN  start a burst of LEN lost packets with probability P\n"
		"  --dup-a P          send the packet twice\n"
		"  --reorder-a P      swap the packet with the next one sent\n"
		"  --trunc-a P        cut the UDP payload short at a random length\n"
		"  --garbage-a P      send a random non-Mold datagram before the packet\n"
		"\n"
		"Other:\n"
		"  --quiet            no summary on stderr\n"
		"  -h, --help         this text\n"
		"\n"
		"Examples:\n"
		"  wbsim gen --symbols 50 --messages 200k --itch day.itch --truth day.json\n"
		"  wbsim gen --messages 20M --out-a a.pcap --out-b b.pcap --loss-a 0.001 \\\n"
		"            --burst-loss-b 0.0001:20 --truth truth.json\n");
}

/* Unsigned integer with an optional k/M/G suffix. */
static int parse_count(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -EINVAL;
	uint64_t mul = 1;
	if (*end == 'k' || *end == 'K')
		mul = 1000, end++;
	else if (*end == 'M')
		mul = 1000000, end++;
	else if (*end == 'G')
		mul = 1000000000, end++;
	if (*end || v > UINT64_MAX / mul)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

static int parse_prob(const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || !(v >= 0.0 && v <= 1.0))
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_burst(const char *s, struct wb_sim_faults *f)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", s);
	char *colon = strchr(buf, ':');
	uint64_t len;
	if (!colon)
		return -EINVAL;
	*colon = 0;
	if (parse_prob(buf, &f->burst) || parse_count(colon + 1, &len) || len == 0 || len > 1000000)
		return -EINVAL;
	f->burst_len = (uint32_t)len;
	return 0;
}

struct progress {
	struct timespec t0;
};

static double since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
	struct progress *p = arg;
	fprintf(stderr, "\r%" PRIu64 "/%" PRIu64 " messages (%.0f%%) %.1f s", done, total,
		100.0 * (double)done / (double)total, since(&p->t0));
	if (done == total)
		fputc('\n', stderr);
}

enum {
	OPT_SYMBOLS = 256, OPT_MESSAGES, OPT_SEED, OPT_SESSION, OPT_DATE, OPT_ITCH, OPT_OUT_A, OPT_OUT_B,
	OPT_TRUTH, OPT_LINE_A, OPT_LINE_B, OPT_LAG_B, OPT_QUIET,
	OPT_FAULT = 512, /* + line * 16 + fault index */
};

static const char *const fault_names[] = {"loss", "burst-loss", "dup", "reorder", "trunc", "garbage"};

static int set_fault(struct wb_sim_faults *f, int which, const char *arg)
{
	switch (which) {
	case 0: return parse_prob(arg, &f->loss);
	case 1: return parse_burst(arg, f);
	case 2: return parse_prob(arg, &f->dup);
	case 3: return parse_prob(arg, &f->reorder);
	case 4: return parse_prob(arg, &f->trunc);
	case 5: return parse_prob(arg, &f->garbage);
	}
	return -EINVAL;
}

static void print_summary(struct wb_sim *sim, const char *out_a, const char *out_b, double secs)
{
	struct wb_sim_stats st;
	wb_sim_stats(sim, &st);
	fprintf(stderr, "wbsim: %" PRIu64 " messages, %" PRIu64 " Mold packets, %" PRIu64 " orders added, %" PRIu64
		" live at end (peak %" PRIu64 "), %.2f s (%.1f M msg/s)\n",
		st.messages, st.packets, st.orders_added, st.live_orders, st.peak_live_orders, secs,
		(double)st.messages / secs / 1e6);
	const char *outs[2] = {out_a, out_b};
	for (int i = 0; i < 2; i++) {
		const struct wb_sim_line_stats *l = &st.line[i];
		if (!outs[i])
			continue;
		fprintf(stderr, "wbsim: line %c: %" PRIu64 " frames; lost %" PRIu64 " packets (%" PRIu64
			" messages, %" PRIu64 " bursts), %" PRIu64 " duplicated, %" PRIu64 " reordered, %" PRIu64
			" truncated, %" PRIu64 " garbage\n",
			'A' + i, l->frames, l->lost_packets, l->lost_messages, l->bursts, l->duplicated, l->reordered,
			l->truncated, l->garbage);
	}
}

static int cmd_gen(int argc, char **argv)
{
	struct wb_sim_opts o;
	const char *itch = NULL, *out_a = NULL, *out_b = NULL, *truth = NULL;
	bool quiet = false;
	struct option longopts[64] = {
		{"symbols", required_argument, NULL, OPT_SYMBOLS},
		{"messages", required_argument, NULL, OPT_MESSAGES},
		{"seed", required_argument, NULL, OPT_SEED},
		{"session", required_argument, NULL, OPT_SESSION},
		{"date", required_argument, NULL, OPT_DATE},
		{"itch", required_argument, NULL, OPT_ITCH},
		{"out-a", required_argument, NULL, OPT_OUT_A},
		{"out-b", required_argument, NULL, OPT_OUT_B},
		{"truth", required_argument, NULL, OPT_TRUTH},
		{"line-a", required_argument, NULL, OPT_LINE_A},
		{"line-b", required_argument, NULL, OPT_LINE_B},
		{"lag-b", required_argument, NULL, OPT_LAG_B},
		{"quiet", no_argument, NULL, OPT_QUIET},
		{"help", no_argument, NULL, 'h'},
	};
	char names[12][24];
	int n = 14;
	for (int line = 0; line < 2; line++) {
		for (int k = 0; k < 6; k++) {
			char *name = names[line * 6 + k];
			snprintf(name, 24, "%s-%c", fault_names[k], line ? 'b' : 'a');
			longopts[n++] = (struct option){name, required_argument, NULL, OPT_FAULT + line * 16 + k};
		}
	}
	wb_sim_opts_default(&o);

	int c, idx = 0;
	uint64_t v;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
		int bad = 0;
		switch (c) {
		case OPT_SYMBOLS:
			bad = parse_count(optarg, &v) || v == 0 || v > 65535;
			o.symbols = (uint32_t)v;
			break;
		case OPT_MESSAGES:
			bad = parse_count(optarg, &v);
			o.messages = v;
			break;
		case OPT_SEED:
			bad = parse_count(optarg, &o.seed);
			break;
		case OPT_SESSION:
			bad = strlen(optarg) == 0 || strlen(optarg) > 10;
			if (!bad)
				snprintf(o.session, sizeof(o.session), "%s", optarg);
			break;
		case OPT_DATE:
			bad = wb_sim_parse_date(optarg, &o.year, &o.month, &o.day);
			break;
		case OPT_ITCH: itch = optarg; break;
		case OPT_OUT_A: out_a = optarg; break;
		case OPT_OUT_B: out_b = optarg; break;
		case OPT_TRUTH: truth = optarg; break;
		case OPT_LINE_A:
			bad = wb_sim_parse_endpoint(optarg, &o.line[0].group, &o.line[0].port);
			break;
		case OPT_LINE_B:
			bad = wb_sim_parse_endpoint(optarg, &o.line[1].group, &o.line[1].port);
			break;
		case OPT_LAG_B:
			bad = parse_count(optarg, &v) || v > 1000000000;
			o.line[1].lag_ns = (uint32_t)v;
			break;
		case OPT_QUIET: quiet = true; break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			if (c >= OPT_FAULT) {
				int line = (c - OPT_FAULT) / 16, k = (c - OPT_FAULT) % 16;
				bad = set_fault(&o.line[line].faults, k, optarg);
				break;
			}
			usage(stderr);
			return 2;
		}
		if (bad) {
			fprintf(stderr, "wbsim: invalid value '%s' for --%s (see wbsim gen --help)\n", optarg,
				longopts[idx].name);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wbsim: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!itch && !out_a && !out_b && !truth) {
		fprintf(stderr, "wbsim: no output given: use --itch, --out-a, --out-b or --truth\n");
		return 2;
	}
	if (o.messages < 2ULL * o.symbols + 100) {
		fprintf(stderr, "wbsim: --messages %" PRIu64 " is too few for %u symbols (need at least %" PRIu64 ")\n",
			o.messages, o.symbols, (uint64_t)2 * o.symbols + 100);
		return 2;
	}

	struct wb_sim *sim;
	int ret = wb_sim_create(&o, &sim);
	if (ret) {
		fprintf(stderr, "wbsim: cannot create the session: %s\n", strerror(-ret));
		return 1;
	}
	struct progress pr;
	clock_gettime(CLOCK_MONOTONIC, &pr.t0);
	bool show = !quiet && isatty(STDERR_FILENO) && o.messages >= 2000000;
	ret = wb_sim_run(sim, itch, out_a, out_b, show ? on_progress : NULL, &pr);
	if (ret) {
		fprintf(stderr, "wbsim: generation failed: %s\n", strerror(-ret));
		goto out_destroy;
	}
	if (truth && (ret = wb_sim_write_truth(sim, truth))) {
		fprintf(stderr, "wbsim: cannot write %s: %s\n", truth, strerror(-ret));
		goto out_destroy;
	}
	if (!quiet)
		print_summary(sim, out_a, out_b, since(&pr.t0));
out_destroy:
	wb_sim_destroy(sim);
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "gen"))
		return cmd_gen(argc - 1, argv + 1);
#ifdef WB_HAVE_LIVE
	if (!strcmp(argv[1], "live"))
		return wb_sim_live_main(argc - 1, argv + 1);
#endif
	if (!strcmp(argv[1], "serve"))
		return wb_serve_main(argc - 1, argv + 1); /* recovery servers, docs/recovery.md */
	fprintf(stderr, "wbsim: unknown command '%s' (try wbsim --help)\n", argv[1]);
	return 2;
}
