#include "dataplane.h"
#include "rawring.h"
#include "tcp_reasm.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>

#define MAX_BURST 512
#define BATCH_EVENTS 8192     /* events one packet can produce is far below this */
#define REPLAY_EMPTY_POLLS 256 /* consecutive empty polls before a pcap counts as exhausted */

struct dp_rxq {
	uint16_t port_id;
	uint16_t queue;
	bool replay;
	bool exhausted;
	uint32_t empty_run;
	uint64_t nombuf_seen;
};

struct dp_feed {
	const struct wb_feed_proto *proto;
	void *state;
	int worker;
	bool raw_capture;
};

_Static_assert(WB_MAX_FEEDS <= 64, "publish_pending has a bit per feed");

struct dp_worker {
	struct wb_dataplane *dp;
	unsigned index;
	unsigned lcore;
	int numa_node;
	uint16_t burst;
	uint32_t nrxq;
	struct dp_rxq rxq[WB_MAX_REPLAY > WB_MAX_RXQ_PER_WORKER ? WB_MAX_REPLAY : WB_MAX_RXQ_PER_WORKER];
	struct wb_evring ring;
	struct wb_rawring raw; /* raw UDP payloads of feeds with raw_capture; buf NULL = none */
	struct wb_event_batch batch;
	_Atomic bool stop;
	_Atomic bool inputs_done;
	_Atomic int state;
	/* counters: written here only, read by the control plane with relaxed loads */
	_Atomic uint64_t bursts, packets, bytes, empty_polls, busy_tsc, idle_tsc;
	_Atomic uint64_t verdicts[WB_PKT_VERDICT_MAX];
	_Atomic uint64_t multi_seg, foreign_feed, events;
	_Atomic uint64_t ring_waits, ring_wait_tsc; /* replay: flushes that waited for ring room, and how long */
	uint64_t waited_tsc;                        /* this poll's share of ring_wait_tsc: not busy time */
	_Atomic uint64_t line_packets[WB_MAX_FEEDS][4], line_bytes[WB_MAX_FEEDS][4]; /* A, B, R, S */
	struct wb_histo latency; /* rx to book updated and events batched, ns */
	uint64_t publish_pending; /* bit per feed whose books changed in this burst */
	/* transmit and the kernel exception path */
	int tx_port;             /* port the worker sends on (its first rx port), -1 = none */
	uint16_t tx_queue;
	struct rte_mempool *tx_pool;
	struct wb_tx tx;         /* handed to plug-ins */
	int host_port;           /* the tap port whose traffic this worker bridges, -1 = none */
	uint64_t host_tokens, host_last_tsc, host_rate_tsc; /* token bucket: TSC ticks per frame */
	uint64_t host_burst;
	_Atomic uint64_t host_to_kernel, host_rate_dropped, host_tx_failed, kernel_to_wire, kernel_tx_failed;
	_Atomic uint64_t frames_sent, frames_send_failed;
};

struct wb_dataplane {
	const struct wb_config *cfg;
	bool eal_up;
	bool started;
	bool replay;
	bool check_udp_sum;
	unsigned nports;
	struct {
		char name[WB_NAME_LEN];
		uint16_t port_id;
		bool up;
		struct rte_mempool *pool;
		int tap;               /* index into taps[] of this port's exception interface, -1 = none */
	} ports[WB_MAX_PORTS > WB_MAX_REPLAY ? WB_MAX_PORTS : WB_MAX_REPLAY];
	unsigned ntaps;
	struct {
		char name[WB_NAME_LEN];
		uint16_t port_id;
		bool up;
		struct rte_mempool *pool;
		uint32_t pps;
	} taps[WB_MAX_PORTS];
	unsigned nworkers;
	struct dp_worker *workers[WB_MAX_WORKERS];
	unsigned nfeeds;
	struct dp_feed feeds[WB_MAX_FEEDS];
	struct wb_classifier cls;
	int ts_offset;     /* mbuf dynfield of the rx timestamp, -1 = none */
	uint64_t ts_flag;
	uint64_t tsc_hz;
	uint64_t wall_base_ns, tsc_base;
};

enum { ST_STARTING, ST_POLLING, ST_INPUTS_DONE, ST_STOPPED };
static const char *const state_names[] = { "starting", "polling", "inputs-done", "stopped" };

#define INC(x) atomic_store_explicit(&(x), atomic_load_explicit(&(x), memory_order_relaxed) + 1, memory_order_relaxed)
#define ADD(x, n) atomic_store_explicit(&(x), atomic_load_explicit(&(x), memory_order_relaxed) + (n), memory_order_relaxed)
#define GET(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void errf(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
}

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline uint64_t tsc_to_ns(const struct wb_dataplane *dp, uint64_t ticks)
{
	return (uint64_t)((__uint128_t)ticks * 1000000000ULL / dp->tsc_hz);
}

/* A replay reads files, which cannot overflow: rather than drop the events the persister
 * has no room for yet, the worker waits for it (live, the NIC ring would overflow
 * instead, so the live path drops and counts). Waiting ends when the consumer has stood
 * still for 10 s (a persister compresses a block at a time: seconds at zstd 19), or on
 * stop: then the live path's drop, counted, so nothing hangs. */
#define REPLAY_STALL_SECONDS 10
static void replay_wait_room(struct dp_worker *w, uint32_t need)
{
	if (wb_evring_room(&w->ring) >= need)
		return;
	uint64_t t0 = rte_rdtsc(), progress = t0;
	uint64_t tail = atomic_load_explicit(&w->ring.tail, memory_order_relaxed);
	INC(w->ring_waits);
	while (wb_evring_room(&w->ring) < need && !atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		uint64_t now = rte_rdtsc(), t = atomic_load_explicit(&w->ring.tail, memory_order_relaxed);
		if (t != tail) {
			tail = t;
			progress = now;
		} else if (now - progress > REPLAY_STALL_SECONDS * w->dp->tsc_hz) {
			break;
		}
		rte_pause();
	}
	uint64_t waited = rte_rdtsc() - t0;
	ADD(w->ring_wait_tsc, waited);
	w->waited_tsc += waited;
}

static void flush_events(struct dp_worker *w)
{
	if (!w->batch.n)
		return;
	if (w->dp->replay) {
		/* in pieces a ring can hold (an end-of-input drain can batch more than a small
		 * ring's size): with nothing dropped, a packet's events may span two pushes */
		for (uint32_t done = 0, k; done < w->batch.n; done += k) {
			k = w->batch.n - done < w->ring.size / 2 ? w->batch.n - done : w->ring.size / 2;
			replay_wait_room(w, k + 1); /* + 1: a drop marker may go first */
			wb_evring_push(&w->ring, w->batch.ev + done, k);
		}
	} else {
		wb_evring_push(&w->ring, w->batch.ev, w->batch.n);
	}
	ADD(w->events, w->batch.n);
	w->batch.n = 0;
}

/* The batch's drain: a plug-in with more events than fit (a TCP hole filled) hands the
 * worker what it has so far, as a packet's end would. */
static void batch_drain(struct wb_event_batch *b, void *arg)
{
	(void)b;
	flush_events(arg);
}

/* Host traffic the kernel owns (ARP, ICMP, IGMP, TCP, unicast UDP to us), under a
 * token bucket so a flood cannot take the worker's time. */
static bool host_admit(struct dp_worker *w, uint64_t tsc)
{
	uint64_t refill = (tsc - w->host_last_tsc) / w->host_rate_tsc;
	if (refill) {
		w->host_tokens = w->host_tokens + refill > w->host_burst ? w->host_burst : w->host_tokens + refill;
		w->host_last_tsc += refill * w->host_rate_tsc;
	}
	if (!w->host_tokens) {
		INC(w->host_rate_dropped);
		return false;
	}
	w->host_tokens--;
	return true;
}

static void handle_tcp(struct dp_worker *w, const struct wb_udp_view *v, uint64_t tsc, uint64_t ts_recv)
{
	struct wb_dataplane *dp = w->dp;
	const struct wb_line_key *lk = wb_classify_tcp(&dp->cls, v->src_addr, v->src_port);
	if (!lk)
		return;
	struct dp_feed *f = &dp->feeds[lk->feed];
	if (unlikely(f->worker != (int)w->index)) {
		INC(w->foreign_feed);
		return;
	}
	INC(w->line_packets[lk->feed][0]);
	ADD(w->line_bytes[lk->feed][0], v->len);
	struct wb_tcp_seg seg = { .src_addr = v->src_addr, .dst_addr = v->dst_addr, .src_port = v->src_port,
				  .dst_port = v->dst_port, .seq = v->tcp_seq, .ack = v->tcp_ack,
				  .flags = v->tcp_flags, .payload = v->payload, .len = v->len, .ts_recv = ts_recv };
	struct wb_rx_meta meta = { .tsc = tsc, .src_addr = v->src_addr, .src_port = v->src_port, .ts_recv = ts_recv };
	f->proto->on_tcp_segment(f->state, &seg, &meta, &w->batch);
	w->publish_pending |= 1ull << lk->feed;
	flush_events(w);
}

/* A frame of the rx burst, decoded and classified once (a packet is classified one
 * step ahead of its processing, for the feed's hint). */
struct frame_class {
	struct wb_udp_view v;
	const struct wb_line_key *lk; /* the feed line, for WB_PKT_FEED */
	enum wb_pkt_verdict verdict;
	bool multi_seg;
};

static void classify_frame(const struct dp_worker *w, struct rte_mbuf *m, struct frame_class *fc)
{
	const struct wb_dataplane *dp = w->dp;
	fc->lk = NULL;
	fc->verdict = WB_PKT_FEED;
	fc->multi_seg = m->nb_segs != 1;
	if (unlikely(fc->multi_seg))
		return;
	const uint8_t *frame = rte_pktmbuf_mtod(m, const uint8_t *);
	fc->verdict = wb_pkt_decode(frame, m->data_len, dp->check_udp_sum, &fc->v);
	if (fc->verdict == WB_PKT_FEED && (m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_BAD)
		fc->verdict = WB_PKT_BAD_CHECKSUM;
	if (fc->verdict == WB_PKT_FEED) {
		fc->lk = wb_classify(&dp->cls, fc->v.dst_addr, fc->v.dst_port);
		if (!fc->lk)
			fc->verdict = WB_PKT_UNMATCHED;
	}
}

/* Hands the feed that will process this frame next a look at it (ITCH: its first
 * messages' order slots and books start loading behind the current packet's work). */
static void hint_frame(const struct dp_worker *w, const struct frame_class *fc)
{
	if (fc->multi_seg || fc->verdict != WB_PKT_FEED)
		return;
	const struct dp_feed *f = &w->dp->feeds[fc->lk->feed];
	if (f->worker == (int)w->index && f->proto->prefetch_datagram)
		f->proto->prefetch_datagram(f->state, fc->v.payload, fc->v.len);
}

static bool handle_frame(struct dp_worker *w, struct rte_mbuf *m, const struct frame_class *fc, uint64_t tsc,
			 bool pcap_time)
{
	struct wb_dataplane *dp = w->dp;
	if (unlikely(fc->multi_seg)) {
		INC(w->multi_seg);
		return false;
	}
	struct wb_udp_view v = fc->v;
	enum wb_pkt_verdict verdict = fc->verdict;
	const struct wb_line_key *lk = fc->lk;
	INC(w->verdicts[verdict]);
	if (verdict != WB_PKT_FEED) {
		if (verdict == WB_PKT_TCP)
			handle_tcp(w, &v, tsc, dp->wall_base_ns + tsc_to_ns(dp, tsc - dp->tsc_base));
		bool host = verdict == WB_PKT_NOT_IPV4 || verdict == WB_PKT_NOT_UDP || verdict == WB_PKT_TCP ||
			    verdict == WB_PKT_FRAGMENT || (verdict == WB_PKT_UNMATCHED && !(v.dst_addr >> 28 == 0xE));
		return host && w->host_port >= 0 && host_admit(w, tsc);
	}
	struct dp_feed *f = &dp->feeds[lk->feed];
	if (unlikely(f->worker != (int)w->index)) {
		/* Another worker owns this feed's books: never write them from here. */
		INC(w->foreign_feed);
		return false;
	}
	INC(w->line_packets[lk->feed][lk->line]);
	ADD(w->line_bytes[lk->feed][lk->line], v.len);
	uint64_t ts_recv;
	/* net_pcap stamps each mbuf with the capture time in microseconds; NIC clocks are
	 * device ticks, so live ports use the TSC-derived wall clock. */
	if (pcap_time && dp->ts_offset >= 0 && (m->ol_flags & dp->ts_flag))
		ts_recv = *RTE_MBUF_DYNFIELD(m, dp->ts_offset, rte_mbuf_timestamp_t *) * 1000ULL;
	else
		ts_recv = dp->wall_base_ns + tsc_to_ns(dp, tsc - dp->tsc_base);
	if (f->raw_capture && w->raw.buf) {
		struct wb_rawrec rh = { .len = v.len, .feed = (uint8_t)lk->feed, .line = lk->line,
					.dst_port = v.dst_port, .dst_addr = v.dst_addr, .ts_recv = ts_recv };
		wb_rawring_push_rec(&w->raw, &rh, v.payload);
	}
	struct wb_rx_meta meta = {
		.tsc = tsc,
		.src_addr = v.src_addr,
		.src_port = v.src_port,
		.line = lk->line,
		.flags = pcap_time ? WB_RX_F_REPLAY : 0,
		.ts_recv = ts_recv,
	};
	f->proto->on_datagram(f->state, v.payload, v.len, &meta, &w->batch);
	w->publish_pending |= 1ull << lk->feed;
	flush_events(w);
	wb_histo_record(&w->latency, tsc_to_ns(dp, rte_rdtsc() - tsc));
	return false;
}

/* Readers' snapshots are refreshed once per rx burst, not per packet: a symbol that
 * changes several times in a burst is copied out once (docs/book.md, "Publication"). */
static void publish_pending(struct dp_worker *w)
{
	while (w->publish_pending) {
		unsigned i = (unsigned)__builtin_ctzll(w->publish_pending);
		w->publish_pending &= w->publish_pending - 1;
		struct dp_feed *f = &w->dp->feeds[i];
		struct wb_bookset *bs = f->proto->books(f->state);
		if (bs)
			wb_bookset_publish(bs);
	}
}

/* Frames the kernel sent on the tap go out on the wire port. */
static void bridge_kernel(struct dp_worker *w)
{
	struct wb_dataplane *dp = w->dp;
	struct rte_mbuf *pkts[32];
	uint16_t n = rte_eth_rx_burst(dp->taps[w->host_port].port_id, 0, pkts, 32);
	if (!n)
		return;
	uint16_t sent = rte_eth_tx_burst((uint16_t)w->tx_port, w->tx_queue, pkts, n);
	ADD(w->kernel_to_wire, sent);
	if (sent < n) {
		ADD(w->kernel_tx_failed, n - sent);
		rte_pktmbuf_free_bulk(pkts + sent, n - sent);
	}
}

static int worker_send(void *ctx, const uint8_t *frame, uint32_t len)
{
	struct dp_worker *w = ctx;
	struct rte_mbuf *m = rte_pktmbuf_alloc(w->tx_pool);
	if (!m) {
		INC(w->frames_send_failed);
		return -ENOBUFS;
	}
	uint8_t *d = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)len);
	if (!d) {
		rte_pktmbuf_free(m);
		INC(w->frames_send_failed);
		return -ENOBUFS;
	}
	memcpy(d, frame, len);
	if (rte_eth_tx_burst((uint16_t)w->tx_port, w->tx_queue, &m, 1) != 1) {
		rte_pktmbuf_free(m);
		INC(w->frames_send_failed);
		return -EAGAIN;
	}
	INC(w->frames_sent);
	return 0;
}

static void run_idle(struct dp_worker *w, uint64_t now_ns)
{
	struct wb_dataplane *dp = w->dp;
	for (unsigned i = 0; i < dp->nfeeds; i++) {
		struct dp_feed *f = &dp->feeds[i];
		if (f->worker != (int)w->index)
			continue;
		if (f->proto->on_idle)
			f->proto->on_idle(f->state, now_ns, &w->batch);
		struct wb_bookset *bs = f->proto->books(f->state);
		if (bs)
			wb_bookset_publish(bs);
		flush_events(w);
	}
}

/* A pcap input is exhausted when it keeps returning nothing and no mbuf shortage explains it. */
static bool replay_exhausted(struct dp_rxq *q)
{
	if (q->exhausted)
		return true;
	if (++q->empty_run < REPLAY_EMPTY_POLLS)
		return false;
	struct rte_eth_stats st;
	if (rte_eth_stats_get(q->port_id, &st) == 0 && st.rx_nombuf != q->nombuf_seen) {
		q->nombuf_seen = st.rx_nombuf;
		q->empty_run = 0;
		return false;
	}
	q->exhausted = true;
	return true;
}

static int worker_main(void *arg)
{
	struct dp_worker *w = arg;
	struct wb_dataplane *dp = w->dp;
	struct rte_mbuf *pkts[MAX_BURST], *host[MAX_BURST];
	uint64_t last_idle_tsc = rte_rdtsc();
	w->host_last_tsc = last_idle_tsc;
	const uint64_t idle_every = dp->tsc_hz / 1000; /* timers at most every ms while busy */
	atomic_store(&w->state, ST_POLLING);
	while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		uint64_t t0 = rte_rdtsc();
		uint32_t got = 0, exhausted = 0;
		w->waited_tsc = 0;
		for (uint32_t i = 0; i < w->nrxq; i++) {
			struct dp_rxq *q = &w->rxq[i];
			if (q->exhausted) {
				exhausted++;
				continue;
			}
			uint16_t n = rte_eth_rx_burst(q->port_id, q->queue, pkts, w->burst);
			if (n == 0) {
				if (q->replay && replay_exhausted(q))
					exhausted++;
				continue;
			}
			q->empty_run = 0;
			got += n;
			INC(w->bursts);
			uint64_t bytes = 0;
			uint16_t nfree = 0, nhost = 0;
			struct frame_class fcs[2];
			for (uint16_t k = 0; k < n && k < 3; k++)
				rte_prefetch0(rte_pktmbuf_mtod(pkts[k], void *));
			classify_frame(w, pkts[0], &fcs[0]);
			for (uint16_t k = 0; k < n; k++) {
				/* classify the next frame and let its feed start its loads now: they land
				 * while this one is processed */
				if (k + 1 < n) {
					if (k + 2 < n)
						rte_prefetch0(rte_pktmbuf_mtod(pkts[k + 2], void *));
					classify_frame(w, pkts[k + 1], &fcs[(k + 1) & 1]);
					hint_frame(w, &fcs[(k + 1) & 1]);
				}
				bytes += pkts[k]->pkt_len;
				if (handle_frame(w, pkts[k], &fcs[k & 1], t0, q->replay))
					host[nhost++] = pkts[k];
				else
					pkts[nfree++] = pkts[k];
			}
			publish_pending(w);
			rte_pktmbuf_free_bulk(pkts, nfree);
			if (nhost) {
				uint16_t sent = rte_eth_tx_burst(w->dp->taps[w->host_port].port_id, 0, host, nhost);
				ADD(w->host_to_kernel, sent);
				if (sent < nhost) {
					ADD(w->host_tx_failed, nhost - sent);
					rte_pktmbuf_free_bulk(host + sent, nhost - sent);
				}
			}
			ADD(w->packets, n);
			ADD(w->bytes, bytes);
		}
		if (w->host_port >= 0)
			bridge_kernel(w);
		uint64_t t1 = rte_rdtsc();
		if (got) {
			ADD(w->busy_tsc, t1 - t0 - (w->waited_tsc < t1 - t0 ? w->waited_tsc : t1 - t0));
			if (t1 - last_idle_tsc > idle_every) {
				run_idle(w, dp->replay ? 0 : dp->wall_base_ns + tsc_to_ns(dp, t1 - dp->tsc_base));
				last_idle_tsc = t1;
			}
			continue;
		}
		INC(w->empty_polls);
		ADD(w->idle_tsc, t1 - t0);
		if (w->nrxq && exhausted == w->nrxq) {
			if (!atomic_load_explicit(&w->inputs_done, memory_order_relaxed)) {
				/* End of input: whatever gap is still open will never fill. */
				run_idle(w, UINT64_MAX);
				atomic_store(&w->state, ST_INPUTS_DONE);
				atomic_store_explicit(&w->inputs_done, true, memory_order_release);
			}
			/* Still apply operator requests (freeze/reset) while holding. */
			if (t1 - last_idle_tsc > idle_every / 8) {
				run_idle(w, 0);
				last_idle_tsc = t1;
			}
			rte_pause();
			continue;
		}
		if (t1 - last_idle_tsc > idle_every / 8) {
			run_idle(w, dp->replay ? 0 : dp->wall_base_ns + tsc_to_ns(dp, t1 - dp->tsc_base));
			last_idle_tsc = t1;
		}
	}
	flush_events(w);
	atomic_store(&w->state, ST_STOPPED);
	return 0;
}

/* ---- setup ---- */

static bool is_pci_address(const char *s)
{
	unsigned a, b, c, d;
	char tail;
	return sscanf(s, "%x:%x:%x.%x%c", &a, &b, &c, &d, &tail) == 4 || sscanf(s, "%x:%x.%x%c", &b, &c, &d, &tail) == 3;
}

static void device_name(const char *device, char *name, size_t n)
{
	size_t len = strcspn(device, ",");
	if (len >= n)
		len = n - 1;
	memcpy(name, device, len);
	name[len] = '\0';
}

static int build_eal_args(const struct wb_dp_opts *o, char **argv, int max, char *store, size_t storelen)
{
	const struct wb_config *cfg = o->cfg;
	int argc = 0;
	size_t used = 0;
#define ARG(...)                                                                          \
	do {                                                                              \
		if (argc >= max - 1 || used >= storelen)                                  \
			return -E2BIG;                                                    \
		int l_ = snprintf(store + used, storelen - used, __VA_ARGS__);            \
		if (l_ < 0 || (size_t)l_ >= storelen - used)                              \
			return -E2BIG;                                                    \
		argv[argc++] = store + used;                                              \
		used += (size_t)l_ + 1;                                                   \
	} while (0)
	ARG("%s", o->prog ? o->prog : "wirebookd");
	char cores[256];
	int cl = snprintf(cores, sizeof(cores), "%u", cfg->control_lcore);
	unsigned nw = o->nreplay ? 1 : cfg->nworkers;
	for (unsigned i = 0; i < nw && i < cfg->nworkers; i++)
		if (cfg->workers[i].lcore != cfg->control_lcore)
			cl += snprintf(cores + cl, sizeof(cores) - (size_t)cl, ",%u", cfg->workers[i].lcore);
	ARG("-l");
	ARG("%s", cores);
	ARG("--main-lcore=%u", cfg->control_lcore);
	ARG("--file-prefix=%s", cfg->file_prefix[0] ? cfg->file_prefix : "wirebook");
	ARG("--log-level=%s", cfg->log_level >= WB_LOG_DEBUG ? "info" : "warning");
	for (uint32_t i = 0; i < cfg->neal_args; i++)
		ARG("%s", cfg->eal_args[i]);
	if (o->nreplay) {
		for (unsigned i = 0; i < o->nreplay; i++)
			ARG("--vdev=net_pcap_wb%u,rx_pcap=%s,tx_pcap=/dev/null", i, o->replay[i]);
	} else {
		for (uint32_t i = 0; i < cfg->nports; i++) {
			if (is_pci_address(cfg->ports[i].device))
				ARG("--allow=%s", cfg->ports[i].device);
			else
				ARG("--vdev=%s", cfg->ports[i].device);
			if (cfg->ports[i].exception_tap[0])
				ARG("--vdev=net_tap_wb%u,iface=%s", i, cfg->ports[i].exception_tap);
		}
	}
#undef ARG
	argv[argc] = NULL;
	return argc;
}

static int setup_port(struct wb_dataplane *dp, unsigned idx, const char *name, const struct wb_port_conf *pc,
		      char *err, size_t errlen)
{
	uint16_t pid;
	if (rte_eth_dev_get_port_by_name(name, &pid) != 0) {
		errf(err, errlen, "port %s: no DPDK device named '%s' (is the driver present and the device bound?)",
		     pc->name, name);
		return -ENODEV;
	}
	int socket = rte_eth_dev_socket_id(pid);
	if (socket < 0)
		socket = (int)rte_socket_id();
	char pool_name[RTE_MEMPOOL_NAMESIZE];
	snprintf(pool_name, sizeof(pool_name), "wb_mbuf_%u", idx);
	struct rte_mempool *mp = rte_pktmbuf_pool_create(pool_name, pc->mempool_size, pc->mbuf_cache, 0,
							 RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	if (!mp) {
		errf(err, errlen, "port %s: mempool of %u mbufs on socket %d: %s", pc->name, pc->mempool_size, socket,
		     rte_strerror(rte_errno));
		return -ENOMEM;
	}
	dp->ports[idx].pool = mp;
	struct rte_eth_dev_info info;
	int ret = rte_eth_dev_info_get(pid, &info);
	if (ret) {
		errf(err, errlen, "port %s: dev_info: %s", pc->name, strerror(-ret));
		return ret;
	}
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	if (dp->ts_offset >= 0 && (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_TIMESTAMP))
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TIMESTAMP;
	if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_CHECKSUM)
		conf.rxmode.offloads |= info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_CHECKSUM;
	uint16_t txq = pc->tx_queues ? pc->tx_queues : 1;
	ret = rte_eth_dev_configure(pid, pc->rx_queues, txq, &conf);
	if (ret) {
		errf(err, errlen, "port %s: configure %u rx / %u tx queues: %s", pc->name, pc->rx_queues, txq,
		     strerror(-ret));
		return ret;
	}
	uint16_t nrx = pc->rx_descriptors, ntx = pc->tx_descriptors ? pc->tx_descriptors : 512;
	rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nrx, &ntx);
	for (uint16_t q = 0; q < pc->rx_queues; q++) {
		struct rte_eth_rxconf rxc = info.default_rxconf;
		rxc.offloads = conf.rxmode.offloads;
		ret = rte_eth_rx_queue_setup(pid, q, nrx, (unsigned)socket, &rxc, mp);
		if (ret) {
			errf(err, errlen, "port %s: rx queue %u: %s", pc->name, q, strerror(-ret));
			return ret;
		}
	}
	for (uint16_t q = 0; q < txq; q++) {
		ret = rte_eth_tx_queue_setup(pid, q, ntx, (unsigned)socket, NULL);
		if (ret) {
			errf(err, errlen, "port %s: tx queue %u: %s", pc->name, q, strerror(-ret));
			return ret;
		}
	}
	ret = rte_eth_dev_start(pid);
	if (ret) {
		errf(err, errlen, "port %s: start: %s", pc->name, strerror(-ret));
		return ret;
	}
	/* Multicast lines are filtered here by address and port, not by the NIC. */
	if (pc->promiscuous)
		rte_eth_promiscuous_enable(pid);
	rte_eth_allmulticast_enable(pid);
	snprintf(dp->ports[idx].name, sizeof(dp->ports[idx].name), "%s", pc->name);
	dp->ports[idx].port_id = pid;
	dp->ports[idx].up = true;
	return 0;
}

/* The kernel's side of a port: a net_tap interface for ARP, ICMP, IGMP and TCP sessions. */
static int setup_tap(struct wb_dataplane *dp, unsigned port, const struct wb_port_conf *pc, char *err, size_t errlen)
{
	char name[64];
	snprintf(name, sizeof(name), "net_tap_wb%u", port);
	uint16_t pid;
	if (rte_eth_dev_get_port_by_name(name, &pid) != 0) {
		errf(err, errlen, "port %s: exception interface %s: no tap device (is /dev/net/tun there?)", pc->name,
		     pc->exception_tap);
		return -ENODEV;
	}
	unsigned t = dp->ntaps;
	char pool_name[RTE_MEMPOOL_NAMESIZE];
	snprintf(pool_name, sizeof(pool_name), "wb_tap_%u", t);
	int socket = (int)rte_socket_id();
	dp->taps[t].pool = rte_pktmbuf_pool_create(pool_name, 2047, 64, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	if (!dp->taps[t].pool || rte_eth_dev_configure(pid, 1, 1, &conf) ||
	    rte_eth_rx_queue_setup(pid, 0, 512, (unsigned)socket, NULL, dp->taps[t].pool) ||
	    rte_eth_tx_queue_setup(pid, 0, 512, (unsigned)socket, NULL) || rte_eth_dev_start(pid)) {
		errf(err, errlen, "port %s: exception interface %s: setup failed", pc->name, pc->exception_tap);
		if (dp->taps[t].pool)
			rte_mempool_free(dp->taps[t].pool);
		dp->taps[t].pool = NULL;
		return -EIO;
	}
	snprintf(dp->taps[t].name, sizeof(dp->taps[t].name), "%s", pc->exception_tap);
	dp->taps[t].port_id = pid;
	dp->taps[t].up = true;
	dp->taps[t].pps = pc->exception_pps ? pc->exception_pps : 10000;
	dp->ports[port].tap = (int)t;
	dp->ntaps++;
	return 0;
}

static struct dp_worker *worker_alloc(int node)
{
	struct dp_worker *w = rte_zmalloc_socket("wb_worker", sizeof(*w), RTE_CACHE_LINE_SIZE, node);
	return w;
}

int wb_dataplane_create(const struct wb_dp_opts *o, struct wb_dataplane **out, char *err, size_t errlen)
{
	const struct wb_config *cfg = o->cfg;
	int ret;
	if (o->nreplay > WB_MAX_REPLAY) {
		errf(err, errlen, "at most %d --replay files", WB_MAX_REPLAY);
		return -E2BIG;
	}
	struct wb_dataplane *dp = calloc(1, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	dp->cfg = cfg;
	dp->replay = o->nreplay > 0;
	dp->check_udp_sum = o->check_udp_checksum;
	dp->ts_offset = -1;
	for (unsigned i = 0; i < RTE_DIM(dp->ports); i++)
		dp->ports[i].tap = -1;

	char *argv[WB_MAX_EAL_ARGS + WB_MAX_PORTS + WB_MAX_REPLAY + 16];
	static char store[16384];
	int argc = build_eal_args(o, argv, (int)RTE_DIM(argv), store, sizeof(store));
	if (argc < 0) {
		errf(err, errlen, "EAL arguments too long");
		ret = argc;
		goto out_free;
	}
	if (rte_eal_init(argc, argv) < 0) {
		errf(err, errlen, "DPDK EAL init failed: %s (arguments:%s%s...)", rte_strerror(rte_errno),
		     argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
		ret = -rte_errno;
		goto out_free;
	}
	dp->eal_up = true;
	dp->tsc_hz = rte_get_tsc_hz();
	dp->tsc_base = rte_rdtsc();
	dp->wall_base_ns = wall_ns();
	if (rte_mbuf_dyn_rx_timestamp_register(&dp->ts_offset, &dp->ts_flag) != 0)
		dp->ts_offset = -1;

	/* Ports: the configured ones, or one net_pcap per replay file. */
	if (dp->replay) {
		struct wb_port_conf pc = cfg->nports ? cfg->ports[0] : (struct wb_port_conf){ 0 };
		pc.rx_queues = 1;
		pc.tx_queues = 1;
		if (!pc.rx_descriptors)
			pc.rx_descriptors = 1024;
		if (pc.mempool_size < 8191)
			pc.mempool_size = 8191;
		if (!pc.mbuf_cache)
			pc.mbuf_cache = 256;
		pc.promiscuous = true;
		for (unsigned i = 0; i < o->nreplay; i++) {
			char name[64];
			snprintf(name, sizeof(name), "net_pcap_wb%u", i);
			snprintf(pc.name, sizeof(pc.name), "replay%u", i);
			ret = setup_port(dp, i, name, &pc, err, errlen);
			if (ret)
				goto out_destroy;
			dp->nports++;
		}
	} else {
		for (uint32_t i = 0; i < cfg->nports; i++) {
			char name[256];
			device_name(cfg->ports[i].device, name, sizeof(name));
			ret = setup_port(dp, i, name, &cfg->ports[i], err, errlen);
			if (ret)
				goto out_destroy;
			dp->nports++;
			if (cfg->ports[i].exception_tap[0]) {
				ret = setup_tap(dp, i, &cfg->ports[i], err, errlen);
				if (ret)
					goto out_destroy;
			}
		}
	}

	/* Workers: in replay one worker polls every input and owns every feed. */
	dp->nworkers = dp->replay ? 1 : cfg->nworkers;
	for (unsigned i = 0; i < dp->nworkers; i++) {
		const struct wb_worker_conf *wc = &cfg->workers[i];
		int node = (int)rte_lcore_to_socket_id(wc->lcore);
		struct dp_worker *w = worker_alloc(node);
		if (!w) {
			errf(err, errlen, "worker %s: out of memory on node %d", wc->name, node);
			ret = -ENOMEM;
			goto out_destroy;
		}
		dp->workers[i] = w;
		w->dp = dp;
		w->index = i;
		w->lcore = wc->lcore;
		w->numa_node = node;
		w->burst = wc->burst ? (wc->burst > MAX_BURST ? MAX_BURST : wc->burst) : 32;
		if (dp->replay) {
			for (unsigned p = 0; p < dp->nports; p++)
				w->rxq[w->nrxq++] = (struct dp_rxq){ .port_id = dp->ports[p].port_id, .replay = true };
		} else {
			for (uint32_t q = 0; q < wc->nrxq; q++)
				w->rxq[w->nrxq++] = (struct dp_rxq){
					.port_id = dp->ports[wc->rxq[q].port].port_id, .queue = wc->rxq[q].queue };
		}
		/* Transmit on the first port it polls, on the queue numbered like its rx queue. */
		w->tx_port = -1;
		w->host_port = -1;
		if (!dp->replay && w->nrxq) {
			unsigned pidx = wc->rxq[0].port;
			uint16_t txq = wc->rxq[0].queue;
			uint16_t ntx = cfg->ports[pidx].tx_queues ? cfg->ports[pidx].tx_queues : 1;
			if (txq < ntx) {
				w->tx_port = dp->ports[pidx].port_id;
				w->tx_queue = txq;
				w->tx_pool = dp->ports[pidx].pool;
				w->tx = (struct wb_tx){ .send = worker_send, .ctx = w };
				struct rte_ether_addr mac;
				if (rte_eth_macaddr_get(dp->ports[pidx].port_id, &mac) == 0)
					memcpy(w->tx.port_mac, mac.addr_bytes, 6);
				/* The worker on queue 0 bridges the port's host traffic. */
				if (txq == 0 && dp->ports[pidx].tap >= 0) {
					w->host_port = dp->ports[pidx].tap;
					uint32_t pps = dp->taps[w->host_port].pps;
					w->host_rate_tsc = dp->tsc_hz / pps ? dp->tsc_hz / pps : 1;
					w->host_burst = pps / 10 > 64 ? pps / 10 : 64;
					w->host_tokens = w->host_burst;
				}
			} else if (dp->ports[pidx].tap >= 0) {
				errf(err, errlen, "worker %s: port %s has an exception interface but no tx queue %u: set tx_queues > %u",
				     wc->name, cfg->ports[pidx].name, txq, txq);
				ret = -EINVAL;
				goto out_destroy;
			}
		}
		uint32_t rsize = wc->ring_size ? wc->ring_size : 65536;
		struct wb_event *slots = rte_malloc_socket("wb_ring", (size_t)rsize * sizeof(struct wb_event),
							   RTE_CACHE_LINE_SIZE, node);
		struct wb_event *batch = rte_malloc_socket("wb_batch", BATCH_EVENTS * sizeof(struct wb_event),
							   RTE_CACHE_LINE_SIZE, node);
		if (!slots || !batch || wb_evring_init(&w->ring, rsize, slots) < 0) {
			errf(err, errlen, "worker %s: event ring of %u events on node %d: out of memory or not a power of two",
			     wc->name, rsize, node);
			rte_free(slots);
			rte_free(batch);
			ret = -ENOMEM;
			goto out_destroy;
		}
		w->batch = (struct wb_event_batch){ .ev = batch, .cap = BATCH_EVENTS, .drain = batch_drain, .drain_arg = w };
		/* Fault every page in now: without hugepages a first touch on the hot path costs
		 * a page fault, hundreds of microseconds on a virtual machine. */
		memset(slots, 0, (size_t)rsize * sizeof(struct wb_event));
		memset(batch, 0, BATCH_EVENTS * sizeof(struct wb_event));
	}

	/* Feeds and the classifier. */
	wb_classifier_init(&dp->cls);
	for (uint32_t i = 0; i < cfg->nfeeds; i++) {
		const struct wb_feed_conf *fc = &cfg->feeds[i];
		struct dp_feed *f = &dp->feeds[i];
		f->proto = wb_feed_proto_find(fc->protocol);
		if (!f->proto) {
			errf(err, errlen, "feed %s: unknown protocol '%s'", fc->name, fc->protocol);
			ret = -EINVAL;
			goto out_destroy;
		}
		f->worker = dp->replay ? 0 : fc->worker;
		f->raw_capture = fc->raw_capture;
		struct dp_worker *fw = dp->workers[f->worker];
		if (fc->raw_capture && fw && !fw->raw.buf) {
			/* As many bytes as the event ring holds: a few seconds of a busy feed. */
			uint64_t bytes = (uint64_t)fw->ring.size * sizeof(struct wb_event);
			if (bytes < (1u << 20))
				bytes = 1u << 20;
			ret = wb_rawring_init(&fw->raw, bytes);
			if (ret == 0)
				memset(fw->raw.buf, 0, bytes);
			if (ret) {
				errf(err, errlen, "feed %s: raw capture ring of %llu bytes: %s", fc->name,
				     (unsigned long long)bytes, strerror(-ret));
				goto out_destroy;
			}
		}
		int node = dp->workers[f->worker] ? dp->workers[f->worker]->numa_node : -1;
		ret = f->proto->create(fc, (uint8_t)i, node, &f->state);
		if (ret) {
			errf(err, errlen, "feed %s: %s: %s", fc->name, fc->protocol, strerror(-ret));
			goto out_destroy;
		}
		dp->nfeeds++;
		if (fw && f->proto->attach_tx && fw->tx.send)
			f->proto->attach_tx(f->state, &fw->tx);
		if (f->proto->on_tcp_segment) {
			/* A TCP feed is one stream from its server (line A's endpoint). */
			ret = wb_classifier_add_tcp(&dp->cls, fc->line[0].addr, fc->line[0].port, (uint16_t)i);
			if (ret) {
				errf(err, errlen, "feed %s: server endpoint already used by another feed", fc->name);
				goto out_destroy;
			}
			continue;
		}
		if (fc->rerequest_source.addr) {
			/* Responses to our re-requests come back to this unicast endpoint: line R. */
			ret = wb_classifier_add(&dp->cls, fc->rerequest_source.addr, fc->rerequest_source.port, (uint16_t)i,
						WB_LINE_REREQUEST);
			if (ret) {
				errf(err, errlen, "feed %s: recovery.source already used by another line", fc->name);
				goto out_destroy;
			}
		}
		for (int l = 0; l < 2; l++) {
			if (l == 1 && !fc->has_line_b)
				continue;
			ret = wb_classifier_add(&dp->cls, fc->line[l].addr, fc->line[l].port, (uint16_t)i, (uint8_t)l);
			if (ret) {
				errf(err, errlen, "feed %s: line %c: %s", fc->name, 'A' + l,
				     ret == -EEXIST ? "endpoint already used by another line" : "too many lines");
				goto out_destroy;
			}
		}
	}
	*out = dp;
	return 0;

out_destroy:
	wb_dataplane_destroy(dp);
	return ret;
out_free:
	free(dp);
	return ret;
}

int wb_dataplane_start(struct wb_dataplane *dp)
{
	for (unsigned i = 0; i < dp->nworkers; i++) {
		struct dp_worker *w = dp->workers[i];
		int ret = rte_eal_remote_launch(worker_main, w, w->lcore);
		if (ret)
			return ret;
	}
	dp->started = true;
	return 0;
}

bool wb_dataplane_inputs_done(const struct wb_dataplane *dp)
{
	if (!dp->replay)
		return false;
	for (unsigned i = 0; i < dp->nworkers; i++)
		if (!atomic_load_explicit(&dp->workers[i]->inputs_done, memory_order_acquire))
			return false;
	return true;
}

void wb_dataplane_stop(struct wb_dataplane *dp)
{
	if (!dp->started)
		return;
	for (unsigned i = 0; i < dp->nworkers; i++)
		atomic_store(&dp->workers[i]->stop, true);
	for (unsigned i = 0; i < dp->nworkers; i++)
		rte_eal_wait_lcore(dp->workers[i]->lcore);
	dp->started = false;
}

void wb_dataplane_destroy(struct wb_dataplane *dp)
{
	if (!dp)
		return;
	wb_dataplane_stop(dp);
	for (unsigned i = 0; i < dp->nfeeds; i++)
		if (dp->feeds[i].proto && dp->feeds[i].state)
			dp->feeds[i].proto->destroy(dp->feeds[i].state);
	for (unsigned i = 0; i < dp->nworkers; i++) {
		struct dp_worker *w = dp->workers[i];
		if (!w)
			continue;
		rte_free(w->ring.slots);
		if (w->raw.buf)
			wb_rawring_free(&w->raw);
		rte_free(w->batch.ev);
		rte_free(w);
	}
	for (unsigned i = 0; i < RTE_DIM(dp->ports); i++) {
		if (dp->ports[i].up) {
			rte_eth_dev_stop(dp->ports[i].port_id);
			rte_eth_dev_close(dp->ports[i].port_id);
		}
		if (dp->ports[i].pool)
			rte_mempool_free(dp->ports[i].pool);
	}
	for (unsigned i = 0; i < dp->ntaps; i++) {
		if (dp->taps[i].up) {
			rte_eth_dev_stop(dp->taps[i].port_id);
			rte_eth_dev_close(dp->taps[i].port_id);
		}
		if (dp->taps[i].pool)
			rte_mempool_free(dp->taps[i].pool);
	}
	if (dp->eal_up)
		rte_eal_cleanup();
	free(dp);
}

/* ---- readers ---- */

unsigned wb_dataplane_nworkers(const struct wb_dataplane *dp) { return dp->nworkers; }
unsigned wb_dataplane_nports(const struct wb_dataplane *dp) { return dp->nports; }
unsigned wb_dataplane_nfeeds(const struct wb_dataplane *dp) { return dp->nfeeds; }
struct wb_evring *wb_dataplane_ring(struct wb_dataplane *dp, unsigned w) { return &dp->workers[w]->ring; }
struct wb_rawring *wb_dataplane_rawring(struct wb_dataplane *dp, unsigned w)
{
	return dp->workers[w]->raw.buf ? &dp->workers[w]->raw : NULL;
}
const struct wb_feed_proto *wb_dataplane_feed_proto(const struct wb_dataplane *dp, unsigned f) { return dp->feeds[f].proto; }
void *wb_dataplane_feed_state(const struct wb_dataplane *dp, unsigned f) { return dp->feeds[f].state; }
int wb_dataplane_feed_worker(const struct wb_dataplane *dp, unsigned f) { return dp->feeds[f].worker; }
uint64_t wb_dataplane_tsc_hz(const struct wb_dataplane *dp) { return dp->tsc_hz; }

struct wb_bookset *wb_dataplane_feed_books(const struct wb_dataplane *dp, unsigned f)
{
	return dp->feeds[f].proto->books(dp->feeds[f].state);
}

void wb_dataplane_port_stats(const struct wb_dataplane *dp, unsigned p, struct wb_port_stats *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", dp->ports[p].name);
	out->port_id = dp->ports[p].port_id;
	out->numa_node = rte_eth_dev_socket_id(dp->ports[p].port_id);
	struct rte_eth_stats st;
	if (rte_eth_stats_get(dp->ports[p].port_id, &st) == 0) {
		out->rx_packets = st.ipackets;
		out->rx_bytes = st.ibytes;
		out->rx_missed = st.imissed;
		out->rx_errors = st.ierrors;
		out->rx_nombuf = st.rx_nombuf;
		out->tx_packets = st.opackets;
		out->tx_errors = st.oerrors;
	}
}

void wb_dataplane_worker_stats(const struct wb_dataplane *dp, unsigned i, struct wb_worker_stats *out)
{
	struct dp_worker *w = dp->workers[i];
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", dp->cfg->workers[i].name);
	out->lcore = w->lcore;
	out->numa_node = w->numa_node;
	int st = atomic_load(&w->state);
	out->state = dp->started || st != ST_STARTING ? state_names[st] : "stopped";
	out->bursts = GET(w->bursts);
	out->packets = GET(w->packets);
	out->bytes = GET(w->bytes);
	out->empty_polls = GET(w->empty_polls);
	out->busy_tsc = GET(w->busy_tsc);
	out->idle_tsc = GET(w->idle_tsc);
	for (int v = 0; v < WB_PKT_VERDICT_MAX; v++)
		out->verdicts[v] = GET(w->verdicts[v]);
	out->multi_segment_drops = GET(w->multi_seg);
	out->foreign_feed_drops = GET(w->foreign_feed);
	out->events = GET(w->events);
	out->event_batch_overflow = w->batch.overflow;
	out->ring_drops = w->ring.drop_events;
	out->ring_waits = GET(w->ring_waits);
	out->ring_wait_tsc = GET(w->ring_wait_tsc);
	out->ring_high_water = w->ring.high_water;
	out->ring_size = w->ring.size;
	out->ring_occupancy = wb_evring_count(&w->ring);
	out->host_to_kernel = GET(w->host_to_kernel);
	out->host_rate_dropped = GET(w->host_rate_dropped);
	out->host_tx_failed = GET(w->host_tx_failed);
	out->kernel_to_wire = GET(w->kernel_to_wire);
	out->kernel_tx_failed = GET(w->kernel_tx_failed);
	out->frames_sent = GET(w->frames_sent);
	out->frames_send_failed = GET(w->frames_send_failed);
	if (w->raw.buf) {
		out->raw_packets = w->raw.pushed;
		out->raw_drops = w->raw.drop_packets + w->raw.drop_toolarge;
		out->raw_high_water_bytes = w->raw.high_water;
	}
}

void wb_dataplane_line_stats(const struct wb_dataplane *dp, unsigned f, unsigned line, struct wb_line_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < dp->nworkers; i++) {
		out->packets += GET(dp->workers[i]->line_packets[f][line & 3]);
		out->bytes += GET(dp->workers[i]->line_bytes[f][line & 3]);
	}
}

uint64_t wb_dataplane_unmatched(const struct wb_dataplane *dp)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < dp->nworkers; i++)
		n += GET(dp->workers[i]->verdicts[WB_PKT_UNMATCHED]);
	return n;
}

void wb_dataplane_latency(const struct wb_dataplane *dp, struct wb_histo_snap *snap)
{
	for (unsigned i = 0; i < dp->nworkers; i++)
		wb_histo_merge(snap, &dp->workers[i]->latency);
}
