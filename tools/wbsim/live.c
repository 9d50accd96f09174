/* wbsim live: sends a generated session through a DPDK port (net_memif into a wirebookd,
 * or net_af_packet in a test namespace) at a given rate, and answers MoldUDP64
 * re-requests that arrive on the same port from the session's history.
 *
 * The session is what `wbsim gen` wrote: the line pcaps (faults already injected) are
 * sent merged by capture time; the --itch file (every message, in sequence) is the
 * history the re-request server answers from. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "live.h"
#include "mold.h"
#include "pkt.h"
#include "wire.h"

#define MAX_FRAME 1600
#define RESP_PAYLOAD_MAX 1400

struct frame {
	uint64_t ts_ns;
	uint32_t len;
	uint32_t off; /* into the frame store */
};

struct history {
	uint8_t *data;     /* the .itch file */
	size_t size;
	uint64_t *off;     /* off[seq] = offset of message seq's length prefix; off[0] unused */
	uint64_t n;        /* messages */
};

static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

static int load_file(const char *path, uint8_t **data, size_t *size)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	*data = malloc(sz > 0 ? (size_t)sz : 1);
	if (!*data || fread(*data, 1, (size_t)sz, f) != (size_t)sz) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	*size = (size_t)sz;
	return 0;
}

static int load_history(const char *path, struct history *h)
{
	int ret = load_file(path, &h->data, &h->size);
	if (ret)
		return ret;
	size_t cap = 1024;
	h->off = malloc(cap * sizeof(*h->off));
	h->n = 0;
	for (size_t p = 0; p + 2 <= h->size;) {
		uint16_t l = wb_be16(h->data + p);
		if (p + 2 + l > h->size)
			return -EBADMSG;
		if (h->n + 2 >= cap) {
			cap *= 2;
			h->off = realloc(h->off, cap * sizeof(*h->off));
		}
		h->off[++h->n] = p;
		p += 2 + (size_t)l;
	}
	return 0;
}

/* Reads a classic pcap (micro or nano) into the store, appending frames. */
static int load_pcap(const char *path, uint8_t **store, size_t *used, size_t *cap, struct frame **fr, size_t *nfr,
		     size_t *frcap)
{
	uint8_t *d;
	size_t sz;
	int ret = load_file(path, &d, &sz);
	if (ret)
		return ret;
	if (sz < 24)
		return -EBADMSG;
	uint32_t magic = wb_le32(d);
	bool nano = magic == 0xA1B23C4D;
	if (!nano && magic != 0xA1B2C3D4)
		return -EBADMSG;
	for (size_t p = 24; p + 16 <= sz;) {
		uint64_t sec = wb_le32(d + p), frac = wb_le32(d + p + 4);
		uint32_t incl = wb_le32(d + p + 8);
		if (p + 16 + incl > sz)
			break; /* a cut last record */
		if (*nfr == *frcap) {
			*frcap = *frcap ? *frcap * 2 : 4096;
			*fr = realloc(*fr, *frcap * sizeof(**fr));
		}
		if (*used + incl > *cap) {
			*cap = (*cap + incl) * 2;
			*store = realloc(*store, *cap);
		}
		memcpy(*store + *used, d + p + 16, incl);
		(*fr)[(*nfr)++] = (struct frame){ .ts_ns = sec * 1000000000ULL + (nano ? frac : frac * 1000),
						  .len = incl, .off = (uint32_t)*used };
		*used += incl;
		p += 16 + incl;
	}
	free(d);
	return 0;
}

static int cmp_frame(const void *a, const void *b)
{
	const struct frame *x = a, *y = b;
	return x->ts_ns < y->ts_ns ? -1 : x->ts_ns > y->ts_ns;
}

/* Ethernet/IPv4/UDP unicast around payload; returns the frame length. */
static uint32_t build_unicast(uint8_t *f, const uint8_t *dst_mac, uint32_t src, uint16_t sport, uint32_t dst,
			      uint16_t dport, const uint8_t *pl, uint32_t len)
{
	memcpy(f, dst_mac, 6);
	memcpy(f + 6, "\x02\x00\x00\x00\x00\x09", 6);
	wb_put_be16(f + 12, 0x0800);
	uint8_t *ip = f + 14;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	wb_put_be16(ip + 2, (uint16_t)(28 + len));
	ip[8] = 64;
	ip[9] = 17;
	wb_put_be32(ip + 12, src);
	wb_put_be32(ip + 16, dst);
	wb_put_be16(ip + 10, (uint16_t)~wb_csum_fold(wb_csum_partial(ip, 20, 0)));
	uint8_t *udp = ip + 20;
	wb_put_be16(udp, sport);
	wb_put_be16(udp + 2, dport);
	wb_put_be16(udp + 4, (uint16_t)(8 + len));
	wb_put_be16(udp + 6, 0);
	memcpy(udp + 8, pl, len);
	uint32_t s = wb_csum_partial(ip + 12, 8, 0) + 17 + 8 + len;
	uint16_t c = (uint16_t)~wb_csum_fold(wb_csum_partial(udp, 8 + len, s));
	wb_put_be16(udp + 6, c ? c : 0xFFFF);
	return 14 + 28 + len;
}

struct live {
	uint16_t port;
	struct rte_mempool *mp;
	struct history hist;
	char session[WB_MOLD_SESSION_LEN];
	uint32_t server_addr;
	uint16_t server_port;
	bool answer;
	uint64_t requests, requests_ignored, resp_packets, resp_messages, tx_fail;
};

static void send_frame(struct live *l, const uint8_t *f, uint32_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(l->mp);
	if (!m) {
		l->tx_fail++;
		return;
	}
	uint8_t *d = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)len);
	memcpy(d, f, len);
	/* A ring full for a moment is back-pressure, not loss: retry briefly. */
	for (int tries = 0; tries < 100000; tries++)
		if (rte_eth_tx_burst(l->port, 0, &m, 1) == 1)
			return;
	rte_pktmbuf_free(m);
	l->tx_fail++;
}

static void answer_request(struct live *l, const uint8_t *frame, uint32_t flen)
{
	struct wb_udp_view v;
	if (wb_pkt_decode(frame, flen, false, &v) != WB_PKT_FEED || v.dst_addr != l->server_addr ||
	    v.dst_port != l->server_port || v.len < WB_MOLD_HDR_LEN)
		return;
	l->requests++;
	uint64_t seq = wb_be64(v.payload + 10);
	uint16_t count = wb_be16(v.payload + 18);
	if (!l->answer || memcmp(v.payload, l->session, WB_MOLD_SESSION_LEN) != 0 || seq < 1 || seq > l->hist.n) {
		l->requests_ignored++;
		return;
	}
	uint64_t end = seq + count;
	if (end > l->hist.n + 1)
		end = l->hist.n + 1;
	uint8_t pl[RESP_PAYLOAD_MAX + 64], f[MAX_FRAME + 64];
	while (seq < end) {
		memcpy(pl, l->session, WB_MOLD_SESSION_LEN);
		wb_put_be64(pl + 10, seq);
		uint32_t len = WB_MOLD_HDR_LEN;
		uint16_t n = 0;
		while (seq + n < end) {
			const uint8_t *m = l->hist.data + l->hist.off[seq + n];
			uint16_t ml = wb_be16(m);
			if (n && len + 2 + ml > RESP_PAYLOAD_MAX)
				break;
			memcpy(pl + len, m, 2 + (size_t)ml);
			len += 2 + ml;
			n++;
		}
		wb_put_be16(pl + 18, n);
		uint32_t fl = build_unicast(f, frame + 6, l->server_addr, l->server_port, v.src_addr, v.src_port, pl, len);
		send_frame(l, f, fl);
		l->resp_packets++;
		l->resp_messages += n;
		seq += n;
	}
}

static void poll_requests(struct live *l)
{
	struct rte_mbuf *rx[32];
	uint16_t n = rte_eth_rx_burst(l->port, 0, rx, 32);
	for (uint16_t i = 0; i < n; i++) {
		if (rx[i]->nb_segs == 1)
			answer_request(l, rte_pktmbuf_mtod(rx[i], const uint8_t *), rx[i]->data_len);
		rte_pktmbuf_free(rx[i]);
	}
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: wbsim live --port VDEV --pcap A.pcap [--pcap B.pcap] --itch SESSION.itch [options]\n"
		"\n"
		"Sends a session written by `wbsim gen` through a DPDK port, line pcaps merged by\n"
		"capture time, and answers MoldUDP64 re-requests that arrive on the port from the\n"
		"session's history (the --itch file, every message in sequence).\n"
		"\n"
		"  --port VDEV          DPDK virtual device, e.g. net_memif0,role=server,socket=/tmp/wb.sock\n"
		"                       (the memif server must start before its client)\n"
		"  --pcap FILE          a line's pcap from wbsim gen --out-a/--out-b (repeat for B)\n"
		"  --itch FILE          the same session from wbsim gen --itch: the re-request history\n"
		"  --session NAME       MoldUDP64 session the history answers for (default WBSIM00001)\n"
		"  --rerequest G:P      address and UDP port the re-request server answers on\n"
		"                       (default 10.1.1.9:9000)\n"
		"  --no-answer          count re-requests but never answer (a dead re-request server)\n"
		"  --rate PPS           packets per second (default 100000; 0 = as fast as possible)\n"
		"  --linger-ms N        keep answering re-requests N ms after the last packet (default 2000)\n"
		"  --core N             the core to run on (default 0)\n"
		"  --file-prefix NAME   DPDK file prefix (default wbsim-PID)\n"
		"  -h, --help           this text\n"
		"Prints packets sent, re-requests answered and messages retransmitted at exit.\n");
}

int wb_sim_live_main(int argc, char **argv)
{
	const char *port = NULL, *itch = NULL, *pcaps[2] = { NULL, NULL };
	int npcap = 0, core = 0;
	uint64_t rate = 100000, linger_ms = 2000;
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "wbsim-%d", (int)getpid());
	static struct live l;
	memcpy(l.session, "WBSIM00001", WB_MOLD_SESSION_LEN);
	l.server_addr = 0x0A010109;
	l.server_port = 9000;
	l.answer = true;
	static const struct option lo[] = {
		{ "port", required_argument, 0, 'p' },      { "pcap", required_argument, 0, 'a' },
		{ "itch", required_argument, 0, 'i' },      { "session", required_argument, 0, 's' },
		{ "rerequest", required_argument, 0, 'r' }, { "no-answer", no_argument, 0, 'n' },
		{ "rate", required_argument, 0, 'R' },      { "linger-ms", required_argument, 0, 'l' },
		{ "core", required_argument, 0, 'c' },      { "file-prefix", required_argument, 0, 'f' },
		{ "help", no_argument, 0, 'h' },            { 0, 0, 0, 0 },
	};
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (o) {
		case 'p': port = optarg; break;
		case 'a':
			if (npcap == 2) {
				fprintf(stderr, "wbsim live: at most two --pcap (lines A and B)\n");
				return 2;
			}
			pcaps[npcap++] = optarg;
			break;
		case 'i': itch = optarg; break;
		case 's': {
			size_t n = strlen(optarg);
			if (n == 0 || n > WB_MOLD_SESSION_LEN) {
				fprintf(stderr, "wbsim live: --session: 1 to 10 characters\n");
				return 2;
			}
			memset(l.session, ' ', WB_MOLD_SESSION_LEN);
			memcpy(l.session, optarg, n);
			break;
		}
		case 'r': {
			unsigned a, b, c, d, p;
			if (sscanf(optarg, "%u.%u.%u.%u:%u", &a, &b, &c, &d, &p) != 5 || a > 255 || b > 255 || c > 255 ||
			    d > 255 || p == 0 || p > 65535) {
				fprintf(stderr, "wbsim live: --rerequest '%s': expected A.B.C.D:PORT\n", optarg);
				return 2;
			}
			l.server_addr = a << 24 | b << 16 | c << 8 | d;
			l.server_port = (uint16_t)p;
			break;
		}
		case 'n': l.answer = false; break;
		case 'R': rate = strtoull(optarg, NULL, 10); break;
		case 'l': linger_ms = strtoull(optarg, NULL, 10); break;
		case 'c': core = atoi(optarg); break;
		case 'f': snprintf(prefix, sizeof(prefix), "%s", optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!port || !npcap || !itch) {
		fprintf(stderr, "wbsim live: --port, --pcap and --itch are required\n");
		usage(stderr);
		return 2;
	}
	if (load_history(itch, &l.hist) < 0) {
		fprintf(stderr, "wbsim live: %s: not a Nasdaq-framed ITCH file\n", itch);
		return 1;
	}
	uint8_t *store = NULL;
	size_t used = 0, cap = 0, nfr = 0, frcap = 0;
	struct frame *fr = NULL;
	for (int i = 0; i < npcap; i++) {
		if (load_pcap(pcaps[i], &store, &used, &cap, &fr, &nfr, &frcap) < 0) {
			fprintf(stderr, "wbsim live: %s: cannot read as a classic pcap\n", pcaps[i]);
			return 1;
		}
	}
	qsort(fr, nfr, sizeof(*fr), cmp_frame);

	char corearg[16], vdev[512], pfx[96];
	snprintf(corearg, sizeof(corearg), "%d", core);
	snprintf(vdev, sizeof(vdev), "--vdev=%s", port);
	snprintf(pfx, sizeof(pfx), "--file-prefix=%s", prefix);
	char *eal[] = { "wbsim", "-l", corearg, "--no-huge", "-m", "512", "--no-pci", "--no-shconf", pfx,
			"--log-level=warning", vdev, NULL };
	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])) - 1, eal) < 0) {
		fprintf(stderr, "wbsim live: EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (rte_eth_dev_count_avail() < 1) {
		fprintf(stderr, "wbsim live: no DPDK port from '%s'\n", port);
		return 1;
	}
	l.port = 0;
	l.mp = rte_pktmbuf_pool_create("wbsim_live", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	if (!l.mp || rte_eth_dev_configure(l.port, 1, 1, &conf) || rte_eth_rx_queue_setup(l.port, 0, 1024, 0, NULL, l.mp) ||
	    rte_eth_tx_queue_setup(l.port, 0, 1024, 0, NULL) || rte_eth_dev_start(l.port)) {
		fprintf(stderr, "wbsim live: port setup failed\n");
		return 1;
	}
	rte_eth_promiscuous_enable(l.port);
	/* A memif server has nobody to talk to until its client connects. */
	struct rte_eth_link link;
	uint64_t hz = rte_get_tsc_hz(), t_wait = rte_rdtsc();
	do {
		rte_eth_link_get_nowait(l.port, &link);
		if (link.link_status)
			break;
		rte_delay_ms(10);
	} while (!stop && rte_rdtsc() - t_wait < 60 * hz);
	if (!link.link_status) {
		fprintf(stderr, "wbsim live: link of '%s' never came up\n", port);
		return 1;
	}
	fprintf(stderr, "wbsim live: link up, sending %zu frames at %s\n", nfr, rate ? "a fixed rate" : "full speed");
	uint64_t t0 = rte_rdtsc(), sent = 0;
	for (size_t i = 0; i < nfr && !stop; i++) {
		if (rate) {
			uint64_t due = t0 + (uint64_t)((__uint128_t)i * hz / rate);
			while (rte_rdtsc() < due)
				poll_requests(&l);
		}
		send_frame(&l, store + fr[i].off, fr[i].len);
		sent++;
		if ((i & 31) == 0)
			poll_requests(&l);
	}
	uint64_t t_end = rte_rdtsc();
	while (!stop && rte_rdtsc() - t_end < linger_ms * hz / 1000)
		poll_requests(&l);
	double secs = (double)(t_end - t0) / (double)hz;
	printf("wbsim live: %" PRIu64 " frames in %.3f s (%.0f packets/s); re-requests %" PRIu64 " (ignored %" PRIu64
	       "), answered with %" PRIu64 " packets / %" PRIu64 " messages; %" PRIu64 " tx failures\n",
	       sent, secs, secs > 0 ? (double)sent / secs : 0.0, l.requests, l.requests_ignored, l.resp_packets,
	       l.resp_messages, l.tx_fail);
	rte_eth_dev_stop(l.port);
	rte_eth_dev_close(l.port);
	rte_eal_cleanup();
	return l.tx_fail ? 1 : 0;
}
