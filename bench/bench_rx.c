/* Rx + decode + classify cost per packet on net_null and net_pcap, against a bare rx loop
 * (rx burst + free) measured in the same run on the same device.
 *
 *   bench_rx [--seconds S] [--burst N]      (runs as root; EAL without hugepages)
 *
 * net_null's mbufs are pre-filled with a real 64-byte UDP frame to a configured line, so
 * the decode path is the real one; net_pcap replays a generated pcap from memory
 * (infinite_rx). Prints per-burst ns/packet distributions and the added cost. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "pkt.h"
#include "wire.h"

#define FRAME_LEN 64
#define NSAMPLES (1u << 22)

static uint8_t frame[FRAME_LEN];
static uint64_t *samples;

static void build_frame(void)
{
	memset(frame, 0, sizeof(frame));
	memcpy(frame, "\x01\x00\x5e\x36\x6f\x6f\x02\x00\x00\x00\x00\x01", 12);
	wb_put_be16(frame + 12, 0x0800);
	uint8_t *ip = frame + 14;
	ip[0] = 0x45;
	wb_put_be16(ip + 2, FRAME_LEN - 14);
	ip[8] = 32;
	ip[9] = 17;
	wb_put_be32(ip + 12, 0x0A010101);
	wb_put_be32(ip + 16, 0xE9366F6F);
	wb_put_be16(ip + 10, (uint16_t)~wb_csum_fold(wb_csum_partial(ip, 20, 0)));
	uint8_t *udp = ip + 20;
	wb_put_be16(udp, 40000);
	wb_put_be16(udp + 2, 26477);
	wb_put_be16(udp + 4, FRAME_LEN - 34);
}

static void fill_mbuf(struct rte_mempool *mp, void *arg, void *obj, unsigned idx)
{
	(void)mp;
	(void)arg;
	(void)idx;
	struct rte_mbuf *m = obj;
	memcpy((uint8_t *)m->buf_addr + RTE_PKTMBUF_HEADROOM, frame, FRAME_LEN);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct result {
	double mean, p50, p99, p999, max;
	uint64_t pkts;
};

/* Per-burst cost divided by the burst size, in ns, for `seconds`. */
static struct result run(uint16_t port, int mode, double seconds, uint16_t burst, const struct wb_classifier *cls)
{
	struct rte_mbuf *pkts[512];
	uint64_t hz = rte_get_tsc_hz(), end = rte_rdtsc() + (uint64_t)(seconds * (double)hz);
	uint64_t n = 0, pk = 0, total = 0, sink = 0;
	while (rte_rdtsc() < end) {
		uint64_t t0 = rte_rdtsc();
		uint16_t got = rte_eth_rx_burst(port, 0, pkts, burst);
		if (mode) {
			for (uint16_t i = 0; i < got; i++) {
				if (i + 1 < got) /* as the worker does */
					rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
				struct wb_udp_view v;
				const uint8_t *f = rte_pktmbuf_mtod(pkts[i], const uint8_t *);
				if (wb_pkt_decode(f, pkts[i]->data_len, false, &v) == WB_PKT_FEED) {
					const struct wb_line_key *k = wb_classify(cls, v.dst_addr, v.dst_port);
					sink += k ? k->line + 1 : 0;
				}
			}
		}
		rte_pktmbuf_free_bulk(pkts, got);
		uint64_t t1 = rte_rdtsc();
		if (!got)
			continue;
		total += t1 - t0;
		pk += got;
		if (n < NSAMPLES)
			samples[n++] = (t1 - t0) * 1000000000ULL / hz / got;
	}
	if (sink == 0 && mode)
		fprintf(stderr, "bench_rx: no packet classified: the frame is wrong\n");
	qsort(samples, n, sizeof(samples[0]), cmp_u64);
	struct result r = { .pkts = pk };
	if (n) {
		r.mean = (double)total * 1e9 / (double)hz / (double)pk;
		r.p50 = (double)samples[n / 2];
		r.p99 = (double)samples[(size_t)((double)n * 0.99)];
		r.p999 = (double)samples[(size_t)((double)n * 0.999)];
		r.max = (double)samples[n - 1];
	}
	return r;
}

static int setup(uint16_t port, struct rte_mempool *mp)
{
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	if (rte_eth_dev_configure(port, 1, 1, &conf) || rte_eth_rx_queue_setup(port, 0, 1024, 0, NULL, mp) ||
	    rte_eth_tx_queue_setup(port, 0, 512, 0, NULL) || rte_eth_dev_start(port))
		return -1;
	return 0;
}

static void report(const char *dev, struct result bare, struct result full)
{
	printf("%-9s %-22s %8.2f %8.1f %8.1f %8.1f %8.1f %12.1f\n", dev, "bare rx + free", bare.mean, bare.p50, bare.p99,
	       bare.p999, bare.max, (double)bare.pkts / 1e6);
	printf("%-9s %-22s %8.2f %8.1f %8.1f %8.1f %8.1f %12.1f\n", dev, "rx + decode + classify", full.mean, full.p50,
	       full.p99, full.p999, full.max, (double)full.pkts / 1e6);
	printf("%-9s added by decode + classify: %.2f ns/packet (ratio %.2fx of the bare loop)\n\n", dev,
	       full.mean - bare.mean, bare.mean > 0 ? full.mean / bare.mean : 0);
}

int main(int argc, char **argv)
{
	double seconds = 2.0;
	int burst = 32;
	static const struct option lo[] = { { "seconds", required_argument, 0, 's' },
					    { "burst", required_argument, 0, 'b' },
					    { "help", no_argument, 0, 'h' },
					    { 0, 0, 0, 0 } };
	int o;
	while ((o = getopt_long(argc, argv, "s:b:h", lo, NULL)) != -1) {
		if (o == 's')
			seconds = atof(optarg);
		else if (o == 'b')
			burst = atoi(optarg);
		else {
			printf("usage: bench_rx [--seconds S] [--burst N]\n");
			return o == 'h' ? 0 : 2;
		}
	}
	build_frame();
	const char *pcap = "/tmp/bench_rx.pcap";
	FILE *f = fopen(pcap, "wb");
	if (!f)
		return 1;
	uint32_t gh[6] = { 0xA1B2C3D4, 0x00040002, 0, 0, 65535, 1 };
	fwrite(gh, 4, 6, f);
	for (int i = 0; i < 4096; i++) {
		uint32_t ph[4] = { 1763650800, (uint32_t)i, FRAME_LEN, FRAME_LEN };
		fwrite(ph, 4, 4, f);
		fwrite(frame, 1, FRAME_LEN, f);
	}
	fclose(f);
	char pcap_arg[256];
	snprintf(pcap_arg, sizeof(pcap_arg), "--vdev=net_pcap0,rx_pcap=%s,tx_pcap=/dev/null,infinite_rx=1", pcap);
	char *eal[] = { argv[0], "-l", "1", "--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--file-prefix=wbbench",
			"--log-level=warning", "--vdev=net_null0,size=64,copy=0", pcap_arg, NULL };
	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])) - 1, eal) < 0) {
		fprintf(stderr, "bench_rx: EAL init failed (run as root)\n");
		return 1;
	}
	samples = malloc(NSAMPLES * sizeof(*samples));
	struct wb_classifier cls;
	wb_classifier_init(&cls);
	wb_classifier_add(&cls, 0xE9366F6F, 26477, 0, 0);
	wb_classifier_add(&cls, 0xE931C46F, 26477, 0, 1);
	for (int i = 0; i < 20; i++) /* a realistic table: other feeds' lines */
		wb_classifier_add(&cls, 0xE9000000u + (uint32_t)i * 7919u, (uint16_t)(30000 + i), (uint16_t)(1 + i), 0);

	struct rte_mempool *mp_null = rte_pktmbuf_pool_create("bn", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
	struct rte_mempool *mp_pcap = rte_pktmbuf_pool_create("bp", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
	if (!mp_null || !mp_pcap)
		return 1;
	rte_mempool_obj_iter(mp_null, fill_mbuf, NULL);
	uint16_t pnull, ppcap;
	if (rte_eth_dev_get_port_by_name("net_null0", &pnull) || rte_eth_dev_get_port_by_name("net_pcap0", &ppcap) ||
	    setup(pnull, mp_null) || setup(ppcap, mp_pcap)) {
		fprintf(stderr, "bench_rx: port setup failed\n");
		return 1;
	}
	printf("bench_rx: %.1f s per run, burst %d, 64-byte UDP frames to a configured line, %d lines in the table\n\n",
	       seconds, burst, cls.n);
	printf("%-9s %-22s %8s %8s %8s %8s %8s %12s\n", "device", "loop", "mean", "p50", "p99", "p99.9", "max",
	       "Mpackets");
	printf("%-9s %-22s %8s %8s %8s %8s %8s\n", "", "", "ns/pkt", "ns/pkt", "ns/pkt", "ns/pkt", "ns/pkt");
	for (int rep = 0; rep < 2; rep++) { /* alternate to share the machine's noise */
		struct result b = run(pnull, 0, seconds / 2, (uint16_t)burst, &cls);
		struct result c = run(pnull, 1, seconds / 2, (uint16_t)burst, &cls);
		report("net_null", b, c);
		b = run(ppcap, 0, seconds / 2, (uint16_t)burst, &cls);
		c = run(ppcap, 1, seconds / 2, (uint16_t)burst, &cls);
		report("net_pcap", b, c);
	}
	rte_eth_dev_stop(pnull);
	rte_eth_dev_stop(ppcap);
	rte_eal_cleanup();
	unlink(pcap);
	return 0;
}
