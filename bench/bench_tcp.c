/* bench_tcp: TCP reassembly + SoupBinTCP framing + ITCH decode + book, per core, from a
 * pcap in memory, beside the same messages as MoldUDP64 packets through the
 * itch50-moldudp64 plug-in in the same run (the baseline).
 *
 * The pcap comes from tests/tcp/make_tcp_pcap.py (the ITCH file it was made from is the
 * second argument: the Mold packets are built from it, up to 1400 bytes each). Each round
 * starts from fresh plug-in state (created outside the timing); every call is timed with
 * rdtsc. Prints messages/s, p50/p99/p99.9/max per segment (per packet for Mold), and the
 * ratio of TCP to Mold throughput. Never run by CI (docs/performance.md, TCP feeds).
 *
 * usage: bench_tcp PCAP ITCH_FILE [rounds (default 30)] */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#include "config.h"
#include "feed.h"
#include "tcp_pcap.h"
#include "tcp_reasm.h"

extern const struct wb_feed_proto wb_feed_soup_itch;
extern const struct wb_feed_proto wb_feed_itch_mold;

#define MOLD_PAYLOAD 1400
#define BATCH 65536

struct mold_pkt {
	uint32_t off, len;
};

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double tsc_per_ns(void)
{
	double t0 = now_s();
	uint64_t c0 = __rdtsc();
	while (now_s() - t0 < 0.2)
		;
	return (double)(__rdtsc() - c0) / ((now_s() - t0) * 1e9);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* Packs the file's messages into Mold packets; returns the packet count. */
static uint32_t build_mold(const char *itch, uint8_t **buf, struct mold_pkt **pkts, uint64_t *messages)
{
	FILE *f = fopen(itch, "rb");
	if (!f)
		return 0;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *in = malloc((size_t)sz);
	if (!in || fread(in, 1, (size_t)sz, f) != (size_t)sz) {
		fclose(f);
		free(in);
		return 0;
	}
	fclose(f);
	/* worst case one packet per message: header + block per message */
	uint64_t cap_pkts = (uint64_t)sz / 2 + 1;
	*buf = malloc((size_t)sz + cap_pkts * 20);
	*pkts = calloc(cap_pkts, sizeof(**pkts));
	uint32_t np = 0;
	uint64_t seq = 1, out = 0;
	long i = 0;
	*messages = 0;
	while (i + 2 <= sz) {
		struct mold_pkt *p = &(*pkts)[np++];
		p->off = (uint32_t)out;
		uint8_t *h = *buf + out;
		memcpy(h, "SESSION001", 10);
		put_be(h + 10, seq, 8);
		uint32_t len = 20, count = 0;
		while (i + 2 <= sz) {
			uint16_t n = (uint16_t)(in[i] << 8 | in[i + 1]);
			if (count && len + 2 + n > MOLD_PAYLOAD)
				break;
			memcpy(h + len, in + i, 2u + n);
			len += 2u + n;
			i += 2 + n;
			count++;
		}
		put_be(h + 18, count, 2);
		p->len = len;
		out += len;
		seq += count;
		*messages += count;
	}
	free(in);
	return np;
}

static void feed_conf(struct wb_feed_conf *fc)
{
	memset(fc, 0, sizeof(*fc));
	fc->line[0].addr = 0x0a090001;
	fc->line[0].port = 9001;
	fc->max_orders = 1 << 16;
	fc->max_levels = 1 << 16;
	fc->max_symbols = 65536;
	fc->snapshot_depth = 8;
	fc->gap_timeout_ms = 100;
	fc->reorder_buffer = 1024;
}

static uint64_t counter(const struct wb_feed_proto *p, void *st, const char *name)
{
	struct wb_counter c[128];
	size_t n = p->counters(st, c, 128);
	for (size_t i = 0; i < n && i < 128; i++)
		if (strcmp(c[i].name, name) == 0)
			return c[i].value;
	return 0;
}

struct result {
	double msgs_per_s;
	uint64_t calls;
	double p50, p99, p999, max; /* ns per call */
	uint64_t messages;
};

static void summarise(uint64_t *cyc, uint64_t n, double tpn, double secs, uint64_t msgs, struct result *r)
{
	qsort(cyc, n, sizeof(*cyc), cmp_u64);
	r->calls = n;
	r->p50 = (double)cyc[n / 2] / tpn;
	r->p99 = (double)cyc[(uint64_t)((double)n * 0.99)] / tpn;
	r->p999 = (double)cyc[(uint64_t)((double)n * 0.999)] / tpn;
	r->max = (double)cyc[n - 1] / tpn;
	r->messages = msgs;
	r->msgs_per_s = (double)msgs / secs;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s PCAP ITCH_FILE [rounds]\n", argv[0]);
		return 2;
	}
	int rounds = argc > 3 ? atoi(argv[3]) : 30;
	struct tcp_pcap p;
	int ret = tcp_pcap_load(argv[1], &p);
	if (ret < 0) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(-ret));
		return 1;
	}
	uint8_t *mold;
	struct mold_pkt *mp;
	uint64_t file_msgs;
	uint32_t npk = build_mold(argv[2], &mold, &mp, &file_msgs);
	if (!npk) {
		fprintf(stderr, "%s: cannot read\n", argv[2]);
		return 1;
	}
	static struct wb_event ev[BATCH];
	struct wb_event_batch b = { .ev = ev, .cap = BATCH };
	double tpn = tsc_per_ns();
	uint64_t *tcyc = malloc(sizeof(uint64_t) * p.nsegs * (uint64_t)rounds);
	uint64_t *mcyc = malloc(sizeof(uint64_t) * npk * (uint64_t)rounds);
	uint64_t tn = 0, mn = 0, tmsgs = 0, mmsgs = 0;
	double tsecs = 0, msecs = 0;
	struct wb_feed_conf fc;
	feed_conf(&fc);
	for (int r = 0; r < rounds; r++) {
		void *st;
		/* TCP: every frame of the pcap, both directions, as the worker would hand them */
		if (wb_feed_soup_itch.create(&fc, 0, -1, &st) < 0)
			return 1;
		double t0 = now_s();
		for (uint32_t i = 0; i < p.nsegs; i++) {
			struct wb_rx_meta meta = { .ts_recv = p.segs[i].ts_recv, .flags = WB_RX_F_REPLAY };
			b.n = 0;
			uint64_t c0 = __rdtsc();
			wb_feed_soup_itch.on_tcp_segment(st, &p.segs[i], &meta, &b);
			wb_bookset_publish(wb_feed_soup_itch.books(st));
			tcyc[tn++] = __rdtsc() - c0;
		}
		tsecs += now_s() - t0;
		tmsgs += counter(&wb_feed_soup_itch, st, "messages_total");
		wb_feed_soup_itch.destroy(st);

		if (wb_feed_itch_mold.create(&fc, 0, -1, &st) < 0)
			return 1;
		t0 = now_s();
		for (uint32_t i = 0; i < npk; i++) {
			struct wb_rx_meta meta = { .ts_recv = 1, .flags = WB_RX_F_REPLAY };
			b.n = 0;
			uint64_t c0 = __rdtsc();
			wb_feed_itch_mold.on_datagram(st, mold + mp[i].off, mp[i].len, &meta, &b);
			wb_bookset_publish(wb_feed_itch_mold.books(st));
			mcyc[mn++] = __rdtsc() - c0;
		}
		msecs += now_s() - t0;
		mmsgs += counter(&wb_feed_itch_mold, st, "messages_total");
		wb_feed_itch_mold.destroy(st);
	}
	struct result tr, mr;
	summarise(tcyc, tn, tpn, tsecs, tmsgs, &tr);
	summarise(mcyc, mn, tpn, msecs, mmsgs, &mr);
	printf("bench_tcp: %u frames (%u TCP segments, both directions), %" PRIu64 " messages in the file, %d rounds\n",
	       (unsigned)p.frames, p.nsegs, file_msgs, rounds);
	printf("%-34s %12s %10s %9s %9s %9s %9s\n", "path", "msgs/s", "calls", "p50 ns", "p99 ns", "p99.9 ns",
	       "max ns");
	printf("%-34s %12.0f %10" PRIu64 " %9.0f %9.0f %9.0f %9.0f\n", "mold: itch50-moldudp64 (baseline)",
	       mr.msgs_per_s, mr.calls, mr.p50, mr.p99, mr.p999, mr.max);
	printf("%-34s %12.0f %10" PRIu64 " %9.0f %9.0f %9.0f %9.0f\n", "tcp: reasm+soup+itch+book", tr.msgs_per_s,
	       tr.calls, tr.p50, tr.p99, tr.p999, tr.max);
	printf("ratio tcp/mold msgs/s: %.2f   (applied: tcp %" PRIu64 ", mold %" PRIu64 " messages)\n",
	       tr.msgs_per_s / mr.msgs_per_s, tr.messages, mr.messages);
	free(tcyc);
	free(mcyc);
	free(mold);
	free(mp);
	tcp_pcap_free(&p);
	return 0;
}
