/* bench_iex: the real IEX DEEP capture replayed from memory on one core.
 *
 *   bench_iex [CAPTURE] [REPEATS]
 *
 * CAPTURE defaults to $WB_SHARED_DIR/data/iex/DEEP10.pcap.gz (decompressed into /tmp).
 * Three passes over the same segments, each REPEATS times (default 5):
 *   baseline    copy every payload once (memcpy into a buffer)
 *   parse       IEX-TP segment checks + DEEP decode of every message
 *   parse+book  the iex-deep plug-in's on_datagram (sequencing, locates, books, events)
 *               then wb_bookset_publish, as the worker does per packet
 * Prints messages/s, ns/message and the per-segment distribution (p50/p99/p99.9/max),
 * with each pass's mean as a ratio of the baseline measured in the same run. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#include "feed.h"
#include "iex.h"
#include "iex_pcap.h"

extern const struct wb_feed_proto wb_feed_iex_deep;

static double tsc_per_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void calibrate(void)
{
	uint64_t t0 = now_ns(), c0 = __rdtsc();
	while (now_ns() - t0 < 200000000ULL)
		;
	uint64_t t1 = now_ns(), c1 = __rdtsc();
	tsc_per_ns = (double)(c1 - c0) / (double)(t1 - t0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct result {
	const char *name;
	double total_ns;
	uint64_t msgs;
	double p50, p99, p999, max;
};

static void summarize(struct result *r, uint64_t *cycles, size_t n, uint64_t msgs)
{
	uint64_t sum = 0;
	for (size_t k = 0; k < n; k++)
		sum += cycles[k];
	qsort(cycles, n, sizeof(*cycles), cmp_u64);
	r->total_ns = (double)sum / tsc_per_ns;
	r->msgs = msgs;
	r->p50 = (double)cycles[n / 2] / tsc_per_ns;
	r->p99 = (double)cycles[(size_t)((double)n * 0.99)] / tsc_per_ns;
	r->p999 = (double)cycles[(size_t)((double)n * 0.999)] / tsc_per_ns;
	r->max = (double)cycles[n - 1] / tsc_per_ns;
}

static volatile uint64_t sink;

int main(int argc, char **argv)
{
	char path[4096];
	struct iex_capture cap;
	int repeats = argc > 2 ? atoi(argv[2]) : 5;
	if (argc > 1 && argv[1][0]) {
		snprintf(path, sizeof(path), "%s", argv[1]);
	} else if (iex_shared_path("iex/DEEP10.pcap.gz", path, sizeof(path)) < 0) {
		fprintf(stderr, "bench_iex: %s not found; pass a capture or set WB_SHARED_DIR\n", path);
		return 2;
	}
	if (repeats < 1)
		repeats = 1;
	int rc = iex_capture_load(path, "/tmp", &cap);
	if (rc < 0) {
		fprintf(stderr, "bench_iex: %s: %s\n", path, strerror(-rc));
		return 1;
	}
	calibrate();
	size_t nseg = cap.n * (size_t)repeats;
	uint64_t *cycles = malloc(nseg * sizeof(*cycles));
	struct wb_event *ev = malloc(65536 * sizeof(*ev));
	if (!cycles || !ev)
		return 1;
	struct result res[3];
	uint64_t msgs = 0;

	/* baseline: copy each payload once, as an rx path that copies out of the mbuf would */
	static uint8_t copy[65536];
	size_t i = 0;
	for (int rep = 0; rep < repeats; rep++) {
		for (size_t k = 0; k < cap.n; k++) {
			const uint8_t *p = cap.dgrams[k].payload;
			uint32_t len = cap.dgrams[k].len;
			uint64_t t0 = __rdtsc();
			memcpy(copy, p, len);
			__asm__ volatile("" : : "r"(copy) : "memory");
			cycles[i++] = __rdtsc() - t0;
		}
	}
	/* message count, outside the timed loops */
	for (size_t k = 0; k < cap.n; k++) {
		struct wb_iextp_hdr h;
		struct wb_iextp_iter it;
		if (wb_iextp_parse(cap.dgrams[k].payload, cap.dgrams[k].len, &h, &it) == 0)
			msgs += h.count;
	}
	summarize(&res[0], cycles, nseg, msgs * (uint64_t)repeats);
	res[0].name = "baseline (memcpy payload)";

	i = 0;
	for (int rep = 0; rep < repeats; rep++) {
		for (size_t k = 0; k < cap.n; k++) {
			uint64_t t0 = __rdtsc();
			struct wb_iextp_hdr h;
			struct wb_iextp_iter it;
			if (wb_iextp_parse(cap.dgrams[k].payload, cap.dgrams[k].len, &h, &it) == 0) {
				const uint8_t *msg;
				uint16_t len;
				while (wb_iextp_next(&it, &msg, &len) > 0) {
					struct wb_iex_msg m;
					if (wb_iex_decode(WB_IEX_DEEP, msg, len, &m) == WB_IEX_OK)
						sink += (uint64_t)m.ts;
				}
			}
			cycles[i++] = __rdtsc() - t0;
		}
	}
	summarize(&res[1], cycles, nseg, msgs * (uint64_t)repeats);
	res[1].name = "parse (IEX-TP + DEEP decode)";

	struct wb_feed_conf fc;
	memset(&fc, 0, sizeof(fc));
	fc.max_symbols = 16384;
	fc.max_levels = 262144;
	fc.max_orders = 1024;
	fc.snapshot_depth = 10;
	i = 0;
	uint64_t events = 0;
	for (int rep = 0; rep < repeats; rep++) {
		void *feed;
		rc = wb_feed_iex_deep.create(&fc, 0, -1, &feed);
		if (rc < 0) {
			fprintf(stderr, "bench_iex: create: %s\n", strerror(-rc));
			return 1;
		}
		struct wb_bookset *bs = wb_feed_iex_deep.books(feed);
		struct wb_event_batch b = { .ev = ev, .cap = 65536 };
		for (size_t k = 0; k < cap.n; k++) {
			struct wb_rx_meta rx = { .ts_recv = cap.dgrams[k].ts_ns };
			b.n = 0;
			uint64_t t0 = __rdtsc();
			wb_feed_iex_deep.on_datagram(feed, cap.dgrams[k].payload, cap.dgrams[k].len, &rx, &b);
			wb_bookset_publish(bs);
			cycles[i++] = __rdtsc() - t0;
			events += b.n;
		}
		wb_feed_iex_deep.destroy(feed);
	}
	summarize(&res[2], cycles, nseg, msgs * (uint64_t)repeats);
	res[2].name = "parse+book (on_datagram+publish)";

	printf("bench_iex: %s\n", path);
	printf("  %zu segments, %llu messages, %d repeats, TSC %.3f GHz, %llu events/pass\n", cap.n,
	       (unsigned long long)msgs, repeats, tsc_per_ns, (unsigned long long)(events / (uint64_t)repeats));
	printf("  %-34s %12s %9s %9s %9s %9s %9s %9s\n", "pass", "msgs/s", "ns/msg", "p50 ns", "p99 ns",
	       "p99.9 ns", "max ns", "x base");
	for (int k = 0; k < 3; k++) {
		double mps = (double)res[k].msgs / (res[k].total_ns / 1e9);
		printf("  %-34s %12.0f %9.1f %9.0f %9.0f %9.0f %9.0f %9.2f\n", res[k].name, mps,
		       res[k].total_ns / (double)res[k].msgs, res[k].p50, res[k].p99, res[k].p999, res[k].max,
		       res[k].total_ns / res[0].total_ns);
	}
	printf("  (per-segment percentiles; a segment holds %.1f messages on average)\n",
	       (double)msgs / (double)cap.n);
	free(cycles);
	free(ev);
	iex_capture_free(&cap);
	return 0;
}
