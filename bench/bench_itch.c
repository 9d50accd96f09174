/* bench_itch: ITCH 5.0 decode and decode+book cost per message, from memory.
 *
 * wbsim generates a day-like session (default 32M messages, 3000 symbols, about two
 * million live orders at the peak) into one buffer in Nasdaq file framing. Then, over
 * the same buffer:
 *   1. baseline: the framing walk alone (wb_itch_file_next, touching each type byte);
 *   2. parse only: framing + wb_itch_decode; 1 and 2 again with the stream copied
 *      256 KB at a time into a buffer that stays in cache (as a NIC's DDIO writes
 *      packets), timing only the walks: parse cost without the DRAM stream;
 *   3. parse + book: the mean from an untimed pass as the worker runs it (32 messages
 *      decoded, the next packet hinted, applied in one wb_bookset_apply_itch_burst call,
 *      published); then a
 *      second pass on fresh books timing every message with rdtsc for p50/p99/p99.9/max,
 *      one wb_bookset_apply_itch per message (no prefetch: a burst cannot be timed per
 *      message; bench_book day times the prefetching single call).
 * Book passes run under mlockall (prefaulted, as a worker runs). Passes 1 and 2 run three times; the best is reported (least disturbed by neighbours).
 * Prints a table with ratios against the baseline, the book's memory and the RSS.
 *
 * usage: bench_itch [messages (default 32000000)] [symbols (default 3000)] [seed (default 1)] */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <x86intrin.h>

#include "book.h"
#include "itch.h"
#include "mold.h"
#include "day.h"
#include "sim.h"

#define PUBLISH_EVERY 32 /* messages per packet, roughly, on a busy feed */
#define HIST_CYCLES (1 << 20)
#define SLOW_NS 2000
#define HOT_WINDOW (256u << 10) /* bytes: 128 full 2 KB rx buffers, inside L2 */

/* TSC ticks per ns, measured against the monotonic clock over 200 ms. */
static double tsc_per_ns(void)
{
	double t0 = now_s();
	uint64_t c0 = __rdtsc();
	while (now_s() - t0 < 0.2)
		;
	double t1 = now_s();
	uint64_t c1 = __rdtsc();
	return (double)(c1 - c0) / ((t1 - t0) * 1e9);
}

/* The tail the machine itself adds: gaps over SLOW_NS seen by an idle rdtsc loop. */
static void machine_gaps(double tpn, double secs, uint64_t *gaps, double *stolen_frac)
{
	uint64_t slow = (uint64_t)(SLOW_NS * tpn), start = __rdtsc(), last = start, n = 0, lost = 0;
	uint64_t span = (uint64_t)(secs * 1e9 * tpn);
	while (last - start < span) {
		uint64_t t = __rdtsc();
		if (t - last > slow) {
			n++;
			lost += t - last;
		}
		last = t;
	}
	*gaps = n;
	*stolen_frac = (double)lost / (double)span;
}

static long rss_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(field);
	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, field, n))
			v = atol(line + n + 1);
	}
	if (f)
		fclose(f);
	return v;
}

static double pass_framing(const struct day *st, uint64_t *sink)
{
	struct wb_itch_file_iter it = {st->buf, st->buf + st->len};
	const uint8_t *m;
	uint16_t l;
	uint64_t acc = 0;
	double t0 = now_s();
	while (wb_itch_file_next(&it, &m, &l) == 1)
		acc += m[0] + l;
	double t = now_s() - t0;
	*sink += acc;
	return t;
}

static double pass_parse(const struct day *st, uint64_t *sink, uint64_t *errors)
{
	struct wb_itch_file_iter it = {st->buf, st->buf + st->len};
	struct wb_itch_msg msg;
	const uint8_t *m;
	uint16_t l;
	uint64_t acc = 0, err = 0;
	double t0 = now_s();
	while (wb_itch_file_next(&it, &m, &l) == 1) {
		if (wb_itch_decode(m, l, &msg) != WB_ITCH_OK)
			err++;
		acc += msg.ts ^ msg.locate;
	}
	double t = now_s() - t0;
	*sink += acc;
	*errors += err;
	return t;
}

/* Framing (parse == false) or parse over the stream copied HOT_WINDOW at a time into one
 * buffer that stays in cache, as packets a NIC just wrote (DDIO) are; only the walks are
 * timed. Fresh bytes every window: a short window walked over and over would let the
 * branch predictor learn its type sequence (an 8000-message window repeated parses at
 * 5.0 ns/msg here, 32000 at 9.7). Returns seconds. */
static double pass_hot(const struct day *st, uint8_t *hot, bool parse, uint64_t *sink, uint64_t *errors)
{
	struct wb_itch_file_iter it = {st->buf, st->buf + st->len};
	struct wb_itch_msg msg;
	const uint8_t *m;
	uint16_t l;
	uint64_t acc = 0, err = 0;
	double t = 0;

	while (it.p < it.end) {
		const uint8_t *start = it.p;
		struct wb_itch_file_iter w = it;
		/* the whole messages that fit the window */
		while (wb_itch_file_next(&w, &m, &l) == 1 && (size_t)(w.p - start) <= HOT_WINDOW)
			it = w;
		size_t n = (size_t)(it.p - start);
		if (n == 0)
			break;
		memcpy(hot, start, n);
		struct wb_itch_file_iter h = {hot, hot + n};
		double t0 = now_s();
		if (parse) {
			while (wb_itch_file_next(&h, &m, &l) == 1) {
				if (wb_itch_decode(m, l, &msg) != WB_ITCH_OK)
					err++;
				acc += msg.ts ^ msg.locate;
			}
		} else {
			while (wb_itch_file_next(&h, &m, &l) == 1)
				acc += m[0] + l;
		}
		t += now_s() - t0;
	}
	*sink += acc;
	*errors += err;
	return t;
}

struct book_run {
	double secs;
	uint64_t *hist;   /* cycles per message, NULL = untimed */
	uint64_t max_cycles;
	uint64_t slow_by_type[128]; /* messages over SLOW_NS, by type: where the tail comes from */
	uint64_t slow_cycles;
	struct wb_bookset_stats bst;
	long rss_kb;
	uint64_t events;
};

static int pass_book(const struct day *st, const struct wb_book_opts *bo, struct book_run *r)
{
	struct wb_bookset *bs;
	int ret = wb_bookset_create(bo, &bs);
	if (ret)
		return ret;
	struct wb_event evs[256];
	struct wb_event_batch batch = {.ev = evs, .cap = 256};
	struct wb_msg_meta meta = {0};
	struct wb_itch_file_iter it = {st->buf, st->buf + st->len};
	struct wb_itch_msg msg;
	const uint8_t *m;
	uint16_t l;
	uint64_t seq = 0, events = 0;
	double t0 = now_s();
	if (r->hist) {
		while (wb_itch_file_next(&it, &m, &l) == 1) {
			uint64_t c0 = __rdtsc();
			wb_itch_decode(m, l, &msg);
			meta.seq = ++seq;
			wb_bookset_apply_itch(bs, &msg, &meta, &batch);
			uint64_t c = __rdtsc() - c0;
			r->hist[c < HIST_CYCLES ? c : HIST_CYCLES - 1]++;
			if (c > r->max_cycles)
				r->max_cycles = c;
			if (c > r->slow_cycles)
				r->slow_by_type[(uint8_t)msg.type & 127]++;
			events += batch.n;
			batch.n = 0;
			if ((seq & (PUBLISH_EVERY - 1)) == 0)
				wb_bookset_publish(bs);
		}
	} else {
		/* the worker's call: a packet's worth decoded, then applied in one burst */
		struct wb_itch_msg msgs[PUBLISH_EVERY];
		uint64_t seqs[PUBLISH_EVERY];
		for (;;) {
			uint32_t n = day_next_burst(&it, msgs, seqs, PUBLISH_EVERY, &seq);
			if (n == 0)
				break;
			day_hint(bs, &it, PUBLISH_EVERY); /* the worker hints the next packet first */
			wb_bookset_apply_itch_burst(bs, msgs, seqs, n, 0, 0, &batch);
			events += batch.n;
			batch.n = 0;
			wb_bookset_publish(bs);
		}
	}
	wb_bookset_publish(bs);
	r->secs = now_s() - t0;
	r->events = events;
	wb_bookset_stats(bs, &r->bst);
	r->bst.event_overflow += batch.overflow;
	r->rss_kb = rss_kb("VmRSS:");
	wb_bookset_destroy(bs);
	return 0;
}

static uint64_t hist_pct(const uint64_t *h, uint64_t n, double pct)
{
	uint64_t want = (uint64_t)((double)n * pct / 100.0), acc = 0;
	for (uint64_t c = 0; c < HIST_CYCLES; c++) {
		acc += h[c];
		if (acc > want)
			return c;
	}
	return HIST_CYCLES - 1;
}

static double best_of(double a, double b) { return a < b ? a : b; }

int main(int argc, char **argv)
{
	uint64_t messages = argc > 1 ? strtoull(argv[1], NULL, 10) : 32000000ULL;
	uint32_t symbols = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 3000;
	uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
	struct day st = {0};
	uint64_t sink = 0, errors = 0;

	double tg = now_s();
	int ret = day_generate(&st, messages, symbols, seed);
	if (ret) {
		fprintf(stderr, "bench_itch: generation failed: %s\n", strerror(-ret));
		return 1;
	}
	const struct wb_sim_stats ss = st.ss;
	tg = now_s() - tg;
	printf("bench_itch: %" PRIu64 " messages, %u symbols, seed %" PRIu64 ", %.0f MB in file framing, generated "
	       "in %.1f s\n",
	       st.msgs, symbols, seed, (double)st.len / 1e6, tg);
	printf("  mix: A+F %.1f%%  D %.1f%%  U %.1f%%  E+C %.1f%%  X %.1f%%; orders added %" PRIu64
	       ", live at peak %" PRIu64 ", at end %" PRIu64 "\n",
	       100.0 * (double)(ss.per_type['A'] + ss.per_type['F']) / (double)st.msgs,
	       100.0 * (double)ss.per_type['D'] / (double)st.msgs, 100.0 * (double)ss.per_type['U'] / (double)st.msgs,
	       100.0 * (double)(ss.per_type['E'] + ss.per_type['C']) / (double)st.msgs,
	       100.0 * (double)ss.per_type['X'] / (double)st.msgs, ss.orders_added, ss.peak_live_orders,
	       ss.live_orders);

	double tpn = tsc_per_ns();
	uint64_t ovh = UINT64_MAX;
	for (int i = 0; i < 1000; i++) {
		uint64_t a = __rdtsc(), b = __rdtsc();
		if (b - a < ovh)
			ovh = b - a;
	}
	printf("  TSC %.3f GHz (calibrated against CLOCK_MONOTONIC), rdtsc pair overhead %" PRIu64 " cycles\n\n",
	       tpn, ovh);

	uint64_t gaps;
	double stolen;
	machine_gaps(tpn, 1.0, &gaps, &stolen);
	printf("  machine: an idle rdtsc loop sees %" PRIu64 " gaps over %d ns per second (%.1f%% of the time lost)\n",
	       gaps, SLOW_NS, 100.0 * stolen);

	double t_frame = 1e9, t_parse = 1e9, t_hframe = 1e9, t_hparse = 1e9;
	uint8_t *hot = malloc(HOT_WINDOW);
	if (!hot) {
		fprintf(stderr, "bench_itch: no memory for the %u KB in-cache window\n", HOT_WINDOW >> 10);
		return 1;
	}
	for (int i = 0; i < 3; i++) {
		t_frame = best_of(t_frame, pass_framing(&st, &sink));
		t_parse = best_of(t_parse, pass_parse(&st, &sink, &errors));
		t_hframe = best_of(t_hframe, pass_hot(&st, hot, false, &sink, &errors));
		t_hparse = best_of(t_hparse, pass_hot(&st, hot, true, &sink, &errors));
	}
	free(hot);
	if (errors) {
		fprintf(stderr, "bench_itch: %" PRIu64 " messages failed to decode\n", errors);
		return 1;
	}

	struct wb_book_opts bo = {
		.max_orders = (uint32_t)(ss.peak_live_orders + ss.peak_live_orders / 4 + 1024),
		.max_levels = (uint32_t)(ss.peak_live_orders / 2 + 65536),
		.max_symbols = symbols + 1,
		.snapshot_depth = 5,
		.price_decimals = 4,
		.feed = 0,
		.policy = WB_POLICY_FLAG,
		.numa_node = -1,
	};
	/* a worker runs on locked, prefaulted memory: without this the first touch of each
	 * book page (a fault of tens of us on this VM) dominates p99.9 */
	bool locked = mlockall(MCL_CURRENT | MCL_FUTURE) == 0;
	printf("memory locked and prefaulted (mlockall): %s\n\n", locked ? "yes" : "no, first-touch faults included");
	struct book_run mean = {0}, timed = {0};
	if ((ret = pass_book(&st, &bo, &mean))) {
		fprintf(stderr, "bench_itch: book pass failed: %s\n", strerror(-ret));
		return 1;
	}
	timed.hist = calloc(HIST_CYCLES, sizeof(uint64_t));
	timed.slow_cycles = (uint64_t)(SLOW_NS * tpn);
	if (!timed.hist || (ret = pass_book(&st, &bo, &timed))) {
		fprintf(stderr, "bench_itch: timed book pass failed\n");
		return 1;
	}

	double n = (double)st.msgs;
	double ns_frame = t_frame * 1e9 / n, ns_parse = t_parse * 1e9 / n, ns_book = mean.secs * 1e9 / n;
	printf("%-34s %10s %10s %12s\n", "stage (from memory)", "ns/msg", "Mmsg/s", "x baseline");
	printf("%-34s %10.2f %10.1f %12.2f\n", "1 baseline: framing walk", ns_frame, n / t_frame / 1e6, 1.0);
	printf("%-34s %10.2f %10.1f %12.2f\n", "2 parse only (framing + decode)", ns_parse, n / t_parse / 1e6,
	       ns_parse / ns_frame);
	printf("%-34s %10.2f %10.1f %12.2f\n", "3 parse + book (burst/32, publish)", ns_book, n / mean.secs / 1e6,
	       ns_book / ns_frame);
	printf("   decode alone (2 - 1): %.2f ns/msg; book alone (3 - 2): %.2f ns/msg\n", ns_parse - ns_frame,
	       ns_book - ns_parse);
	printf("   in cache (%u KB windows): framing %.2f ns/msg, parse %.2f ns/msg, decode alone %.2f ns/msg\n\n",
	       HOT_WINDOW >> 10, t_hframe * 1e9 / n, t_hparse * 1e9 / n, (t_hparse - t_hframe) * 1e9 / n);

	printf("parse + book, per message (rdtsc around decode + apply, includes ~%.0f ns timer cost):\n",
	       (double)ovh / tpn);
	printf("   p50 %.0f ns   p99 %.0f ns   p99.9 %.0f ns   p99.99 %.0f ns   max %.1f us   (timed pass mean %.1f ns)\n",
	       (double)hist_pct(timed.hist, st.msgs, 50) / tpn, (double)hist_pct(timed.hist, st.msgs, 99) / tpn,
	       (double)hist_pct(timed.hist, st.msgs, 99.9) / tpn, (double)hist_pct(timed.hist, st.msgs, 99.99) / tpn,
	       (double)timed.max_cycles / tpn / 1e3, timed.secs * 1e9 / n);
	printf("   messages over %d ns by type:", SLOW_NS);
	for (int t = 0; t < 128; t++) {
		if (timed.slow_by_type[t])
			printf(" %c %" PRIu64 " (%.2f%%)", t, timed.slow_by_type[t],
			       100.0 * (double)timed.slow_by_type[t] / (double)ss.per_type[t]);
	}
	printf("\n");
	printf("\nbook: %" PRIu64 " live orders / %" PRIu64 " max, %" PRIu64 " live levels / %" PRIu64
	       " max, %" PRIu64 " integrity events, %" PRIu64 " table-full, %" PRIu64 " events (%" PRIu64
	       " overflowed)\n",
	       mean.bst.live_orders, mean.bst.max_orders, mean.bst.live_levels, mean.bst.max_levels,
	       mean.bst.integrity_total, mean.bst.order_table_full + mean.bst.level_table_full, mean.events,
	       mean.bst.event_overflow);
	printf("memory: book preallocated %.1f MB; RSS with books %.1f MB (stream buffer %.1f MB included), peak RSS "
	       "%.1f MB\n",
	       (double)mean.bst.memory_bytes / 1e6, (double)mean.rss_kb / 1e3, (double)st.len / 1e6,
	       (double)rss_kb("VmHWM:") / 1e3);
	if (ss.live_orders != mean.bst.live_orders)
		printf("WARNING: the book ends with %" PRIu64 " live orders, the simulator with %" PRIu64 "\n",
		       mean.bst.live_orders, ss.live_orders);
	printf("(sink %" PRIu64 ")\n", sink & 1);
	free(timed.hist);
	free(st.buf);
	return 0;
}
