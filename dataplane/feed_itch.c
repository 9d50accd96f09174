/* Nasdaq TotalView-ITCH 5.0 over MoldUDP64: session tracking, line A/B arbitration by
 * sequence (first copy wins), a bounded reorder buffer that holds packets after a gap
 * until the other line (or a retransmission) fills it, then ITCH decode into the books. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "feed.h"
#include "itch.h"
#include "mold.h"
#include "pkt.h"
#include "rawring.h"
#include "wire.h"

#define REORDER_SLOT_BYTES 1504 /* a full Ethernet MTU of UDP payload */
#define SEEN_BITS (1u << 18)     /* per-line window of delivered sequences: > a full reorder buffer */
#define NLINES 4                 /* A, B, re-request responses, SoupBinTCP recovery */
#define GAP_LOG 256              /* recent gaps kept for wbctl gaps */
#define RECOVERY_RING_BYTES (16u << 20)
#define RECOVERY_STALL_FACTOR 100 /* a recovery making no progress for 100 gap timeouts is given up */

struct held_packet {
	uint64_t seq;     /* first block's sequence */
	uint64_t ts_recv;
	uint32_t len;
	uint8_t line;
	uint8_t data[REORDER_SLOT_BYTES];
};

/* Counters are written by the worker only and read by anyone with relaxed loads. */
struct line_counters {
	_Atomic uint64_t packets, bytes, packets_won, duplicate_packets, duplicate_messages;
	_Atomic uint64_t missing, missing_lost, heartbeats, end_of_session, malformed_packets, foreign_session;
	_Atomic uint64_t last_packet_ns;
};

/* The symbol filter (feeds[].symbols): names sorted as raw 8-byte words, and a bitmap of
 * the locates known to carry them. The control thread fills it before publishing it;
 * after that only the worker sets bits, when a directory message names a kept symbol. */
struct symbol_filter {
	uint32_t n;
	uint64_t names[WB_MAX_FILTER_SYMBOLS];
	_Atomic uint64_t keep[65536 / 64];
};

#define FILTER_RETIRED_MAX 8

/* Kept apart from the hot struct: written by the control thread, read by the worker. */
struct itch_filter_slot {
	_Atomic(struct symbol_filter *) cur;
	_Atomic(struct symbol_filter *) seen; /* the worker's last load: older ones are free */
	struct symbol_filter *retired[FILTER_RETIRED_MAX];
	_Atomic uint64_t dropped;
};

struct itch_feed {
	struct wb_bookset *books;
	uint8_t feed;
	uint64_t gap_timeout_ns;
	char session[WB_MOLD_SESSION_LEN];
	bool have_session;
	uint64_t expected;          /* next sequence to apply */
	uint64_t line_next[2];      /* next sequence each line was seen to carry */
	uint64_t *seen[2];          /* bit per sequence (mod SEEN_BITS): delivered on this line */
	/* reorder buffer: held[order[0..nheld)] sorted by seq */
	uint32_t cap, nheld;
	struct held_packet *held;
	uint32_t *order;
	uint32_t *free_slots;
	uint32_t nfree;
	uint64_t announced;         /* next sequence announced by heartbeats / end of session */
	uint64_t gap_since_ns;      /* when the open gap was first seen (data time) */
	uint64_t clock_ns;          /* how far every active line has got: min of line_ts */
	uint64_t line_ts[2];        /* latest receive time per line; 0 = line not seen */
	struct line_counters line[NLINES];
	/* gap log: one writer (the worker), readers copy a slot under its version */
	struct {
		_Atomic uint32_t version;
		struct wb_gap_record r;
	} gap_log[GAP_LOG];
	_Atomic uint64_t gap_log_n;
	bool gap_open;
	uint64_t gap_first, gap_last; /* the record's range [first, last) */
	uint8_t gap_fill_line;
	uint32_t gap_slot;
	/* MoldUDP64 re-requests from the worker's TX queue */
	struct wb_tx tx;
	bool have_tx, replay;
	struct wb_endpoint rr_server, rr_source;
	uint8_t rr_mac[6];
	uint64_t req_next_ns, req_interval_ns;
	_Atomic uint64_t requests_sent, request_send_failed, backfills_sent;
	_Atomic uint64_t backfill_seq;   /* posted by the control thread; 0 = none */
	_Atomic uint32_t backfill_count;
	/* SoupBinTCP recovery: the control thread keeps the session, the worker applies */
	bool soup_configured;
	_Atomic bool recovering;
	uint64_t recover_progress_ns, recover_expected;
	struct wb_rawring recov;
	_Atomic uint64_t recoveries, recoveries_completed, recoveries_given_up, recovery_push_dropped;
	_Atomic uint64_t live_dropped_recovering;
	_Atomic uint64_t messages, gaps, gap_messages_filled, gaps_declared, gap_messages_lost;
	_Atomic uint64_t held_packets, reorder_full, session_changes, block_overruns;
	_Atomic uint64_t itch_short, itch_unknown, itch_empty, expected_seq;
	struct itch_filter_slot filter;
};

#define INC(x) atomic_fetch_add_explicit(&(x), 1, memory_order_relaxed)
#define ADD(x, n) atomic_fetch_add_explicit(&(x), (n), memory_order_relaxed)
#define GET(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void itch_destroy(void *st)
{
	struct itch_feed *f = st;
	if (!f)
		return;
	wb_bookset_destroy(f->books);
	free(f->held);
	free(f->order);
	free(f->free_slots);
	free(f->seen[0]);
	free(f->seen[1]);
	if (f->recov.buf)
		wb_rawring_free(&f->recov);
	free(atomic_load(&f->filter.cur));
	for (int i = 0; i < FILTER_RETIRED_MAX; i++)
		free(f->filter.retired[i]);
	free(f);
}

static int itch_set_symbol_filter(void *st, const char (*symbols)[WB_SYMBOL_LEN], uint32_t n);

static int itch_create(const struct wb_feed_conf *fc, uint8_t feed_index, int numa_node, void **state)
{
	int ret = -ENOMEM;
	struct itch_feed *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	struct wb_book_opts bo;
	wb_feed_book_opts(fc, feed_index, numa_node, &bo);
	ret = wb_bookset_create(&bo, &f->books);
	if (ret < 0)
		goto out_free;
	ret = -ENOMEM;
	f->feed = feed_index;
	f->cap = fc->reorder_buffer ? fc->reorder_buffer : 1024;
	f->gap_timeout_ns = (uint64_t)(fc->gap_timeout_ms ? fc->gap_timeout_ms : 100) * 1000000ULL;
	f->held = calloc(f->cap, sizeof(*f->held));
	f->order = calloc(f->cap, sizeof(*f->order));
	f->free_slots = calloc(f->cap, sizeof(*f->free_slots));
	f->seen[0] = calloc(SEEN_BITS / 64, sizeof(uint64_t));
	f->seen[1] = calloc(SEEN_BITS / 64, sizeof(uint64_t));
	if (!f->held || !f->order || !f->free_slots || !f->seen[0] || !f->seen[1])
		goto out_free;
	for (uint32_t i = 0; i < f->cap; i++)
		f->free_slots[i] = f->cap - 1 - i;
	f->nfree = f->cap;
	f->expected = 1;
	f->line_next[0] = f->line_next[1] = 1;
	f->rr_server = fc->rerequest;
	f->rr_source = fc->rerequest_source;
	memcpy(f->rr_mac, fc->rerequest_mac, 6);
	if (!(f->rr_mac[0] | f->rr_mac[1] | f->rr_mac[2] | f->rr_mac[3] | f->rr_mac[4] | f->rr_mac[5]))
		memset(f->rr_mac, 0xFF, 6);
	f->soup_configured = fc->soup.addr != 0;
	if (f->soup_configured) {
		ret = wb_rawring_init(&f->recov, RECOVERY_RING_BYTES);
		if (ret == 0)
			memset(f->recov.buf, 0, RECOVERY_RING_BYTES); /* fault it in before the hot path */
		if (ret < 0)
			goto out_free;
	}
	if (fc->nsymbols) {
		ret = itch_set_symbol_filter(f, fc->symbols, fc->nsymbols);
		if (ret < 0)
			goto out_free;
	}
	*state = f;
	return 0;
out_free:
	itch_destroy(f);
	return ret;
}

static inline bool seen_get(const uint64_t *m, uint64_t seq)
{
	return m[(seq % SEEN_BITS) / 64] >> (seq % 64) & 1;
}
static inline void seen_put(uint64_t *m, uint64_t seq, bool on)
{
	uint64_t bit = 1ULL << (seq % 64);
	if (on)
		m[(seq % SEEN_BITS) / 64] |= bit;
	else
		m[(seq % SEEN_BITS) / 64] &= ~bit;
}

/* Which sequences this line has delivered: a jump past line_next is a hole in the line
 * (missing); a late packet that fills it (reordering) takes it back. */
static void account_line(struct itch_feed *f, uint8_t line, uint64_t seq, uint64_t end)
{
	uint64_t *m = f->seen[line];
	uint64_t next = f->line_next[line];
	struct line_counters *lc = &f->line[line];
	if (seq > next) {
		uint64_t from = seq - next > SEEN_BITS ? seq - SEEN_BITS : next;
		for (uint64_t s = from; s < seq; s++)
			seen_put(m, s, false);
		ADD(lc->missing, seq - next);
	}
	uint64_t late = 0;
	for (uint64_t s = seq; s < end; s++) {
		if (s >= next || s + SEEN_BITS <= next) {
			seen_put(m, s, true);
		} else if (!seen_get(m, s)) {
			seen_put(m, s, true);
			late++;
		}
	}
	if (late)
		atomic_store_explicit(&lc->missing, GET(lc->missing) - late, memory_order_relaxed);
	if (end > next)
		f->line_next[line] = end;
}

static bool filter_has(const struct symbol_filter *sf, uint64_t name)
{
	uint32_t lo = 0, hi = sf->n;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (sf->names[mid] == name)
			return true;
		if (sf->names[mid] < name)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Drops the events of unlisted locates appended since n0 (the books still see every
 * message: a filter change never leaves a book inconsistent). */
static void filter_events(struct itch_feed *f, struct symbol_filter *sf, struct wb_event_batch *out, uint32_t n0)
{
	if (atomic_load_explicit(&f->filter.seen, memory_order_relaxed) != sf)
		atomic_store_explicit(&f->filter.seen, sf, memory_order_release);
	uint32_t k = n0;
	for (uint32_t i = n0; i < out->n; i++) {
		struct wb_event *e = &out->ev[i];
		_Atomic uint64_t *w = &sf->keep[e->locate / 64];
		uint64_t bit = 1ULL << (e->locate % 64);
		if (e->type == WB_EV_SYMBOL && filter_has(sf, e->aux))
			atomic_store_explicit(w, atomic_load_explicit(w, memory_order_relaxed) | bit,
					      memory_order_relaxed);
		bool keep = e->type == WB_EV_SYSTEM || e->type == WB_EV_GAP ||
			    (atomic_load_explicit(w, memory_order_relaxed) & bit);
		if (!keep) {
			INC(f->filter.dropped);
			continue;
		}
		if (k != i)
			out->ev[k] = *e;
		k++;
	}
	out->n = k;
}

#define PACKET_MSGS_MAX 256 /* decoded per round; a packet with more blocks takes several */

/* Applies a packet's decoded messages to the books in one call (which prefetches each
 * message's order slot and book 8 messages ahead); then drops the events of symbols the
 * filter leaves out. */
static void apply_msgs(struct itch_feed *f, const struct wb_itch_msg *msgs, const uint64_t *seqs, uint32_t n,
		       uint64_t ts_recv, uint8_t line, struct wb_event_batch *out)
{
	wb_batch_reserve(out, n * WB_BOOK_MAX_EVENTS_PER_MSG);
	uint32_t n0 = out->n; /* after the reserve: the filter looks at this packet's events */
	wb_bookset_apply_itch_burst(f->books, msgs, seqs, n, ts_recv, line >= WB_LINE_REREQUEST ? WB_EVF_RECOVERED : 0,
				    out);
	struct symbol_filter *sf = atomic_load_explicit(&f->filter.cur, memory_order_acquire);
	if (sf)
		filter_events(f, sf, out, n0);
}

/* Applies the blocks of one packet from sequence f->expected on; earlier blocks are
 * duplicates already applied. The packet is decoded first, so the book can start each
 * message's loads ahead of its apply. Returns messages applied. */
static uint64_t apply_packet(struct itch_feed *f, const uint8_t *p, uint32_t len, uint64_t ts_recv,
			     uint8_t line, struct wb_event_batch *out)
{
	struct wb_mold_hdr h;
	struct wb_mold_iter it;
	if (wb_mold_parse(p, len, &h, &it) < 0)
		return 0;
	struct wb_itch_msg msgs[PACKET_MSGS_MAX];
	uint64_t seqs[PACKET_MSGS_MAX];
	uint64_t seq = h.seq;
	const uint8_t *msg;
	uint16_t mlen;
	int r = 0;
	uint64_t applied = 0;
	do {
		uint32_t n = 0;
		uint64_t seq0 = seq;
		while (n < PACKET_MSGS_MAX && (r = wb_mold_next(&it, &msg, &mlen)) > 0) {
			if (seq < f->expected) {
				seq++;
				seq0 = seq;
				continue;
			}
			int d = wb_itch_decode(msg, mlen, &msgs[n]);
			if (d == WB_ITCH_OK)
				seqs[n++] = seq;
			else if (d == WB_ITCH_ERR_SHORT)
				INC(f->itch_short);
			else if (d == WB_ITCH_ERR_UNKNOWN)
				INC(f->itch_unknown);
			else
				INC(f->itch_empty);
			seq++;
		}
		if (f->gap_open)
			for (uint32_t i = 0; i < n; i++)
				if (seqs[i] == f->gap_first)
					f->gap_fill_line = line;
		apply_msgs(f, msgs, seqs, n, ts_recv, line, out);
		/* Messages that did not decode still take their sequence: the stream moves past them. */
		applied += seq - seq0;
		if (seq > f->expected)
			f->expected = seq;
	} while (r > 0);
	if (r < 0) {
		/* The rest of the packet is unusable; its sequences stay open as a gap. */
		INC(f->block_overruns);
		INC(f->line[line].malformed_packets);
	}
	ADD(f->messages, applied);
	if (applied)
		INC(f->line[line].packets_won);
	return applied;
}

static void release_held(struct itch_feed *f, uint32_t k)
{
	f->free_slots[f->nfree++] = f->order[k];
	memmove(&f->order[k], &f->order[k + 1], (f->nheld - k - 1) * sizeof(f->order[0]));
	f->nheld--;
}

/* ---- gap log ---- */

static void gap_log_put(struct itch_feed *f, uint32_t slot, const struct wb_gap_record *r)
{
	_Atomic uint32_t *v = &f->gap_log[slot].version;
	uint32_t ver = atomic_load_explicit(v, memory_order_relaxed);
	atomic_store_explicit(v, ver + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	f->gap_log[slot].r = *r;
	atomic_store_explicit(v, ver + 2, memory_order_release);
}

/* One past the last sequence of the open gap: the first held packet, or the sequence a
 * heartbeat announced. */
static uint64_t gap_end(const struct itch_feed *f)
{
	if (f->nheld)
		return f->held[f->order[0]].seq;
	return f->announced > f->expected ? f->announced : f->expected;
}

static void gap_close(struct itch_feed *f, uint64_t now, uint8_t repair, uint64_t count)
{
	struct wb_gap_record r = f->gap_log[f->gap_slot].r;
	r.closed_ns = now ? now : 1;
	r.repair = repair;
	if (count)
		r.count = count;
	gap_log_put(f, f->gap_slot, &r);
	f->gap_open = false;
}

/* Opens or closes the gap record as the stream moves; starts the re-request clock. */
static void track_gap(struct itch_feed *f, uint64_t now)
{
	uint64_t end = gap_end(f);
	bool open = end > f->expected;
	/* One record per gap: it closes once its whole range is in, however many fills it took. */
	if (f->gap_open && (!open || f->expected >= f->gap_last)) {
		static const uint8_t by_line[NLINES] = { WB_GAP_OTHER_LINE, WB_GAP_OTHER_LINE, WB_GAP_REREQUEST,
							 WB_GAP_SOUP };
		uint8_t repair = f->gap_fill_line < NLINES ? by_line[f->gap_fill_line] : WB_GAP_OTHER_LINE;
		gap_close(f, now, repair, 0);
		ADD(f->gap_messages_filled, f->gap_last - f->gap_first);
	}
	if (!f->gap_open && open) {
		uint64_t n = atomic_load_explicit(&f->gap_log_n, memory_order_relaxed);
		f->gap_slot = (uint32_t)(n % GAP_LOG);
		struct wb_gap_record r = { .first_seq = f->expected, .count = end - f->expected, .opened_ns = now ? now : 1 };
		gap_log_put(f, f->gap_slot, &r);
		atomic_store_explicit(&f->gap_log_n, n + 1, memory_order_release);
		f->gap_open = true;
		f->gap_first = f->expected;
		f->gap_last = end;
		f->gap_fill_line = 0xFF;
		INC(f->gaps);
		/* Give the other line a moment before asking the server. */
		f->req_interval_ns = f->gap_timeout_ns / 16 > 200000 ? f->gap_timeout_ns / 16 : 200000;
		f->req_next_ns = now + f->req_interval_ns;
	}
}

static size_t itch_gaps(void *st, struct wb_gap_record *out, size_t max)
{
	struct itch_feed *f = st;
	uint64_t n = atomic_load_explicit(&f->gap_log_n, memory_order_acquire);
	size_t got = 0;
	for (uint64_t i = n; i > 0 && got < max && n - i < GAP_LOG; i--) {
		uint32_t slot = (uint32_t)((i - 1) % GAP_LOG);
		for (int tries = 0; tries < 100; tries++) {
			uint32_t v0 = atomic_load_explicit(&f->gap_log[slot].version, memory_order_acquire);
			if (v0 & 1)
				continue;
			struct wb_gap_record r = f->gap_log[slot].r;
			atomic_thread_fence(memory_order_acquire);
			if (atomic_load_explicit(&f->gap_log[slot].version, memory_order_relaxed) == v0) {
				out[got++] = r;
				break;
			}
		}
	}
	return got;
}

/* ---- MoldUDP64 re-requests ---- */

static int send_request(struct itch_feed *f, uint64_t seq, uint32_t count)
{
	uint8_t frame[14 + 20 + 8 + WB_MOLD_HDR_LEN];
	memcpy(frame, f->rr_mac, 6);
	memcpy(frame + 6, f->tx.port_mac, 6);
	wb_put_be16(frame + 12, 0x0800);
	uint8_t *ip = frame + 14, *udp = ip + 20, *pl = udp + 8;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	wb_put_be16(ip + 2, 20 + 8 + WB_MOLD_HDR_LEN);
	ip[8] = 64;
	ip[9] = 17;
	wb_put_be32(ip + 12, f->rr_source.addr);
	wb_put_be32(ip + 16, f->rr_server.addr);
	wb_put_be16(ip + 10, (uint16_t)~wb_csum_fold(wb_csum_partial(ip, 20, 0)));
	wb_mold_build_request(pl, f->session, seq, (uint16_t)(count > 65534 ? 65534 : count));
	wb_put_be16(udp, f->rr_source.port);
	wb_put_be16(udp + 2, f->rr_server.port);
	wb_put_be16(udp + 4, 8 + WB_MOLD_HDR_LEN);
	wb_put_be16(udp + 6, 0);
	uint32_t sum = wb_csum_partial(ip + 12, 8, 0) + 17 + 8 + WB_MOLD_HDR_LEN;
	uint16_t c = (uint16_t)~wb_csum_fold(wb_csum_partial(udp, 8 + WB_MOLD_HDR_LEN, sum));
	wb_put_be16(udp + 6, c ? c : 0xFFFF);
	int r = f->tx.send(f->tx.ctx, frame, sizeof(frame));
	if (r < 0)
		INC(f->request_send_failed);
	return r;
}

/* While a gap is missing on every line, ask the re-request server, doubling the interval. */
static void maybe_request(struct itch_feed *f, uint64_t now)
{
	if (!f->gap_open || !f->have_tx || !f->rr_server.addr || f->replay || now < f->req_next_ns)
		return;
	if (send_request(f, f->expected, (uint32_t)(gap_end(f) - f->expected)) == 0) {
		INC(f->requests_sent);
		struct wb_gap_record r = f->gap_log[f->gap_slot].r;
		if (r.requests < 255)
			r.requests++;
		gap_log_put(f, f->gap_slot, &r);
	}
	f->req_interval_ns *= 2;
	f->req_next_ns = now + f->req_interval_ns;
}

static void itch_attach_tx(void *st, const struct wb_tx *tx)
{
	struct itch_feed *f = st;
	f->tx = *tx;
	f->have_tx = tx->send != NULL;
}

static int itch_backfill(void *st, uint64_t seq, uint32_t count)
{
	struct itch_feed *f = st;
	if (!f->rr_server.addr || !f->have_tx)
		return -ENOTSUP;
	if (seq == 0 || count == 0)
		return -EINVAL;
	if (atomic_load_explicit(&f->backfill_count, memory_order_acquire))
		return -EBUSY;
	atomic_store_explicit(&f->backfill_seq, seq, memory_order_relaxed);
	atomic_store_explicit(&f->backfill_count, count, memory_order_release);
	return 0;
}

/* The open gap, if any, is as old as the earliest packet held beyond it (not the first
 * packet ever held: one line running steadily ahead keeps the buffer non-empty). */
static void restart_gap_clock(struct itch_feed *f)
{
	if (f->nheld) {
		uint64_t ts = f->held[f->order[0]].ts_recv;
		f->gap_since_ns = ts ? ts : 1;
	} else if (f->announced <= f->expected) {
		f->gap_since_ns = 0;
	}
}

/* Applies held packets that the stream has reached; drops those it has passed. */
static void drain_held(struct itch_feed *f, struct wb_event_batch *out)
{
	while (f->nheld) {
		struct held_packet *hp = &f->held[f->order[0]];
		if (hp->seq > f->expected)
			break;
		apply_packet(f, hp->data, hp->len, hp->ts_recv, hp->line, out);
		release_held(f, 0);
	}
	restart_gap_clock(f);
}

static void emit_gap(struct itch_feed *f, uint64_t first, uint64_t count, uint64_t ts, struct wb_event_batch *out)
{
	wb_batch_reserve(out, 2);
	struct wb_event *e = wb_batch_push(out);
	if (!e)
		return;
	memset(e, 0, sizeof(*e));
	e->type = WB_EV_GAP;
	e->seq = first;
	e->aux = count;
	e->ts_recv = ts;
	e->feed = f->feed;
	e->flags = WB_EVF_BATCH_END;
	struct wb_event *i = wb_batch_push(out);
	if (!i)
		return;
	*i = *e;
	i->type = WB_EV_INTEGRITY;
	i->side = WB_INT_GAP_DECLARED;
}

/* The gap cannot be filled: record it, skip to the first held packet and go on. */
static void declare_gap(struct itch_feed *f, struct wb_event_batch *out)
{
	uint64_t next = f->nheld ? f->held[f->order[0]].seq : f->announced;
	if (next <= f->expected) {
		f->gap_since_ns = 0;
		return;
	}
	uint64_t lost = next - f->expected;
	for (int l = 0; l < 2; l++) {
		/* Sequences of the gap this line skipped too are lost, not taken from the other. */
		uint64_t n = 0;
		for (uint64_t s = f->expected; s < next; s++)
			if (s < f->line_next[l] && s + SEEN_BITS > f->line_next[l] && !seen_get(f->seen[l], s))
				n++;
		ADD(f->line[l].missing_lost, n);
	}
	INC(f->gaps_declared);
	ADD(f->gap_messages_lost, lost);
	emit_gap(f, f->expected, lost, f->clock_ns, out);
	if (f->gap_open)
		gap_close(f, f->clock_ns, WB_GAP_DECLARED, lost);
	/* Messages are missing from every book's history: none can be trusted. */
	wb_bookset_set_stale(f->books, true);
	f->expected = next;
	drain_held(f, out);
	if (!f->nheld)
		f->gap_since_ns = 0;
}

static void hold_packet(struct itch_feed *f, const uint8_t *p, uint32_t len, uint64_t seq, uint64_t ts,
			uint8_t line, struct wb_event_batch *out)
{
	if (len > REORDER_SLOT_BYTES || f->nfree == 0) {
		INC(f->reorder_full);
		if (atomic_load_explicit(&f->recovering, memory_order_relaxed)) {
			/* The recovery session replays everything from the gap on: drop, don't skip. */
			INC(f->live_dropped_recovering);
			return;
		}
		/* Nowhere to hold it: give up on the oldest gap so the stream moves on. */
		declare_gap(f, out);
		if (seq <= f->expected) {
			apply_packet(f, p, len, ts, line, out);
			drain_held(f, out);
			return;
		}
		if (len > REORDER_SLOT_BYTES || f->nfree == 0) {
			INC(f->line[line].malformed_packets);
			return;
		}
	}
	/* Insert sorted by seq; a second copy of a held packet is a duplicate. */
	uint32_t k = f->nheld;
	while (k > 0 && f->held[f->order[k - 1]].seq > seq)
		k--;
	if (k > 0 && f->held[f->order[k - 1]].seq == seq) {
		/* Same packet from the other line: keep the longer copy, one may be truncated. */
		struct held_packet *dup = &f->held[f->order[k - 1]];
		if (len > dup->len) {
			memcpy(dup->data, p, len);
			dup->len = len;
			dup->line = line;
		}
		INC(f->line[line].duplicate_packets);
		return;
	}
	uint32_t slot = f->free_slots[--f->nfree];
	struct held_packet *hp = &f->held[slot];
	hp->seq = seq;
	hp->ts_recv = ts;
	hp->len = len;
	hp->line = line;
	memcpy(hp->data, p, len);
	memmove(&f->order[k + 1], &f->order[k], (f->nheld - k) * sizeof(f->order[0]));
	f->order[k] = slot;
	f->nheld++;
	INC(f->held_packets);
	if (!f->gap_since_ns)
		f->gap_since_ns = ts ? ts : 1;
}

/* The slowest line may still be behind the gap's start: no time has passed for it. */
static inline bool gap_expired(const struct itch_feed *f)
{
	return f->gap_since_ns && f->clock_ns > f->gap_since_ns && f->clock_ns - f->gap_since_ns > f->gap_timeout_ns;
}

static void new_session(struct itch_feed *f, const char session[WB_MOLD_SESSION_LEN])
{
	if (f->have_session) {
		/* A new session is a new day: yesterday's orders must not meet today's. */
		INC(f->session_changes);
		for (int l = wb_bookset_next_symbol(f->books, 0); l >= 0;
		     l = l < 65535 ? wb_bookset_next_symbol(f->books, (uint32_t)l + 1) : -1)
			wb_bookset_request_reset(f->books, (uint16_t)l);
		wb_bookset_service(f->books);
		wb_bookset_set_stale(f->books, false);
	}
	memcpy(f->session, session, WB_MOLD_SESSION_LEN);
	f->have_session = true;
	f->expected = 1;
	f->announced = 0;
	f->line_next[0] = f->line_next[1] = 1;
	memset(f->seen[0], 0, SEEN_BITS / 8);
	memset(f->seen[1], 0, SEEN_BITS / 8);
	while (f->nheld)
		release_held(f, 0);
	f->gap_since_ns = 0;
	if (f->gap_open)
		gap_close(f, f->clock_ns, WB_GAP_DECLARED, 0);
	atomic_store_explicit(&f->recovering, false, memory_order_relaxed);
}

/* A gap timed out. With a SoupBinTCP server the books go stale and the control thread
 * replays the stream from the gap; otherwise the gap is declared and skipped. */
static void gap_timed_out(struct itch_feed *f, struct wb_event_batch *out)
{
	if (f->soup_configured && !f->replay) {
		if (!atomic_load_explicit(&f->recovering, memory_order_relaxed)) {
			INC(f->recoveries);
			f->recover_progress_ns = f->clock_ns;
			f->recover_expected = f->expected;
			wb_bookset_set_stale(f->books, true);
			emit_gap(f, f->expected, gap_end(f) - f->expected, f->clock_ns, out);
			atomic_store_explicit(&f->recovering, true, memory_order_release);
		}
		return;
	}
	do
		declare_gap(f, out);
	while (f->nheld);
}

static void process(struct itch_feed *f, const uint8_t *p, uint32_t len, uint64_t ts, uint8_t line, bool replay,
		    struct wb_event_batch *out)
{
	struct line_counters *lc = &f->line[line];
	INC(lc->packets);
	ADD(lc->bytes, len);
	atomic_store_explicit(&lc->last_packet_ns, ts, memory_order_relaxed);
	f->replay = replay;
	if (line < 2) {
		/* A gap times out only once every line carrying traffic has moved past it: in a
		 * replay one line's file can be read ahead of the other's. */
		if (ts > f->line_ts[line])
			f->line_ts[line] = ts;
		uint64_t a = f->line_ts[0], b = f->line_ts[1];
		uint64_t now = !a ? b : !b ? a : (a < b ? a : b);
		if (now > f->clock_ns)
			f->clock_ns = now;
	}

	struct wb_mold_hdr h;
	struct wb_mold_iter it;
	if (wb_mold_parse(p, len, &h, &it) < 0) {
		INC(lc->malformed_packets);
		return;
	}
	if (!f->have_session) {
		new_session(f, h.session);
	} else if (memcmp(h.session, f->session, WB_MOLD_SESSION_LEN) != 0) {
		/* A new session starts at sequence 1; anything else under another name is
		 * noise on the line, never a reason to throw the day's books away. */
		if (h.seq != 1 || h.count == WB_MOLD_END_OF_SESSION || line >= WB_LINE_REREQUEST) {
			INC(lc->foreign_session);
			return;
		}
		new_session(f, h.session);
	}

	uint64_t count = 0;
	if (h.count == WB_MOLD_HEARTBEAT)
		INC(lc->heartbeats); /* carries the next sequence: a gap at the tail shows here */
	else if (h.count == WB_MOLD_END_OF_SESSION)
		INC(lc->end_of_session);
	else
		count = h.count;
	uint64_t seq = h.seq;
	uint64_t end = seq + count; /* one past the packet's last sequence */
	if (line < 2)
		account_line(f, line, seq, end);

	if (count == 0) {
		if (seq > f->announced && line < 2)
			f->announced = seq;
		if (seq > f->expected && !f->nheld && !f->gap_since_ns)
			f->gap_since_ns = ts ? ts : 1;
	} else if (end <= f->expected) {
		INC(lc->duplicate_packets);
		ADD(lc->duplicate_messages, count);
	} else if (seq > f->expected) {
		hold_packet(f, p, len, seq, ts, line, out);
	} else {
		if (seq < f->expected)
			ADD(lc->duplicate_messages, f->expected - seq);
		apply_packet(f, p, len, ts, line, out);
		if (f->nheld)
			drain_held(f, out);
	}
	track_gap(f, line < 2 ? ts : f->clock_ns);
}

/* Recovered messages the control thread handed over, applied as recovery line packets. */
static void drain_recovery(struct itch_feed *f, struct wb_event_batch *out)
{
	const struct wb_rawrec *rec;
	uint32_t budget = 256; /* bounded: the live lines still get their turn */
	while (budget-- && (rec = wb_rawring_peek(&f->recov))) {
		process(f, (const uint8_t *)(rec + 1), rec->len, f->clock_ns, WB_LINE_SOUP, false, out);
		wb_rawring_release(&f->recov, rec);
	}
}

/* Recovery caught up with the live lines: books healthy again. Or it stalled: give up. */
static void check_recovery(struct itch_feed *f, struct wb_event_batch *out)
{
	if (!atomic_load_explicit(&f->recovering, memory_order_relaxed))
		return;
	if (f->expected != f->recover_expected) {
		f->recover_expected = f->expected;
		f->recover_progress_ns = f->clock_ns;
	}
	if (!f->gap_open) {
		atomic_store_explicit(&f->recovering, false, memory_order_release);
		INC(f->recoveries_completed);
		wb_bookset_set_stale(f->books, false);
		f->gap_since_ns = 0;
		return;
	}
	if (f->clock_ns > f->recover_progress_ns &&
	    f->clock_ns - f->recover_progress_ns > f->gap_timeout_ns * RECOVERY_STALL_FACTOR) {
		INC(f->recoveries_given_up);
		atomic_store_explicit(&f->recovering, false, memory_order_release);
		do
			declare_gap(f, out);
		while (f->nheld);
	}
}

static void itch_on_datagram(void *st, const uint8_t *p, uint32_t len, const struct wb_rx_meta *meta,
			     struct wb_event_batch *out)
{
	struct itch_feed *f = st;
	bool replay = meta->flags & WB_RX_F_REPLAY;
	uint8_t line = meta->line < NLINES ? meta->line : 1;
	if (f->recov.buf && atomic_load_explicit(&f->recovering, memory_order_relaxed))
		drain_recovery(f, out);
	process(f, p, len, meta->ts_recv, line, replay, out);
	if (!replay) {
		if (!atomic_load_explicit(&f->recovering, memory_order_relaxed) && gap_expired(f))
			gap_timed_out(f, out);
		maybe_request(f, meta->ts_recv);
		check_recovery(f, out);
	}
	atomic_store_explicit(&f->expected_seq, f->expected, memory_order_relaxed);
}

/* The next packet's first messages, peeked into locals only: their order slots and books
 * start loading while this packet applies (a packet's first messages have no earlier ones
 * of their own to hide the loads behind). Anything malformed just ends the hint. */
static void itch_prefetch_datagram(void *st, const uint8_t *p, uint32_t len)
{
	struct itch_feed *f = st;
	struct wb_mold_hdr h;
	struct wb_mold_iter it;
	struct wb_itch_msg msgs[WB_BOOK_PREFETCH_MSGS];
	const uint8_t *msg;
	uint16_t mlen;
	uint32_t n = 0;

	if (wb_mold_parse(p, len, &h, &it) < 0 || h.count == WB_MOLD_HEARTBEAT || h.count == WB_MOLD_END_OF_SESSION)
		return;
	/* a packet wholly behind the stream is a duplicate: nothing of it will be applied */
	if (h.seq + h.count <= f->expected)
		return;
	/* nor will the blocks of one straddling it (a line's retransmission): start after them */
	for (uint64_t skip = h.seq < f->expected ? f->expected - h.seq : 0; skip; skip--)
		if (wb_mold_next(&it, &msg, &mlen) <= 0)
			return;
	while (n < WB_BOOK_PREFETCH_MSGS && wb_mold_next(&it, &msg, &mlen) > 0)
		if (wb_itch_peek(msg, mlen, &msgs[n]) == WB_ITCH_OK)
			n++;
	if (n)
		wb_bookset_prefetch_itch_burst(f->books, msgs, n);
}

static void itch_on_idle(void *st, uint64_t now_ns, struct wb_event_batch *out)
{
	struct itch_feed *f = st;
	wb_bookset_service(f->books);
	if (now_ns > f->clock_ns)
		f->clock_ns = now_ns;
	if (f->recov.buf)
		drain_recovery(f, out);
	uint32_t bf = atomic_load_explicit(&f->backfill_count, memory_order_acquire);
	if (bf && f->have_session) {
		if (send_request(f, atomic_load_explicit(&f->backfill_seq, memory_order_relaxed), bf) == 0)
			INC(f->backfills_sent);
		atomic_store_explicit(&f->backfill_count, 0, memory_order_release);
	}
	if (now_ns == UINT64_MAX) {
		/* End of input: whatever is still open can never fill. */
		atomic_store_explicit(&f->recovering, false, memory_order_relaxed);
		if (f->gap_since_ns || f->nheld || f->announced > f->expected)
			do
				declare_gap(f, out);
			while (f->nheld);
	} else if (now_ns) {
		if (!atomic_load_explicit(&f->recovering, memory_order_relaxed) && gap_expired(f))
			gap_timed_out(f, out);
		maybe_request(f, now_ns);
		check_recovery(f, out);
	}
	atomic_store_explicit(&f->expected_seq, f->expected, memory_order_relaxed);
}

static bool itch_recovery_wanted(void *st, char session[10], uint64_t *from_seq)
{
	struct itch_feed *f = st;
	if (!atomic_load_explicit(&f->recovering, memory_order_acquire))
		return false;
	memcpy(session, f->session, WB_MOLD_SESSION_LEN);
	*from_seq = atomic_load_explicit(&f->expected_seq, memory_order_relaxed);
	return true;
}

/* Control thread: one recovered message, framed as a one-block Mold packet. */
static int itch_recovery_push(void *st, uint64_t seq, const uint8_t *msg, uint16_t len)
{
	struct itch_feed *f = st;
	if (!f->recov.buf)
		return -ENOTSUP;
	uint8_t pkt[WB_MOLD_HDR_LEN + 2 + 65535];
	memcpy(pkt, f->session, WB_MOLD_SESSION_LEN);
	wb_put_be64(pkt + 10, seq);
	wb_put_be16(pkt + 18, 1);
	wb_put_be16(pkt + 20, len);
	memcpy(pkt + 22, msg, len);
	struct wb_rawrec h = { .len = (uint32_t)(22 + len), .feed = f->feed, .line = WB_LINE_SOUP };
	if (!wb_rawring_push_rec(&f->recov, &h, pkt)) {
		INC(f->recovery_push_dropped);
		return -ENOBUFS;
	}
	return 0;
}

static struct wb_bookset *itch_books(void *st)
{
	return ((struct itch_feed *)st)->books;
}

static size_t itch_counters(void *st, struct wb_counter *out, size_t max)
{
	struct itch_feed *f = st;
	size_t n = 0;
#define C(nm, hp, v, l) wb_counter_put(out, max, &n, nm, hp, v, l)
	for (int l = 0; l < 2; l++) {
		struct line_counters *lc = &f->line[l];
		C("line_packets_won_total", "packets that carried a sequence first", GET(lc->packets_won), l);
		C("line_duplicate_packets_total", "packets entirely already applied", GET(lc->duplicate_packets), l);
		C("line_duplicate_messages_total", "messages already applied", GET(lc->duplicate_messages), l);
		uint64_t missing = GET(lc->missing), lost = GET(lc->missing_lost);
		C("line_missing_messages_total", "messages this line never delivered (net of late arrivals)", missing, l);
		C("line_missing_taken_from_other_total", "messages missing on this line but taken from the other",
		  missing > lost ? missing - lost : 0, l);
		C("line_heartbeats_total", "MoldUDP64 heartbeats", GET(lc->heartbeats), l);
		C("line_end_of_session_total", "MoldUDP64 end-of-session packets", GET(lc->end_of_session), l);
		C("line_malformed_packets_total", "packets shorter than the Mold header or with a block past the end",
		  GET(lc->malformed_packets), l);
		C("line_foreign_session_packets_total", "packets of another session not starting at sequence 1",
		  GET(lc->foreign_session), l);
		C("line_last_packet_ns", "receive time of the last packet, ns since the epoch", GET(lc->last_packet_ns), l);
	}
	C("messages_total", "ITCH messages applied in sequence", GET(f->messages), -1);
	C("next_sequence", "next MoldUDP64 sequence expected", GET(f->expected_seq), -1);
	C("gaps_total", "sequence gaps opened (missing on every line so far)", GET(f->gaps), -1);
	C("rerequest_packets_total", "re-request responses received (recovery line R)",
	  GET(f->line[WB_LINE_REREQUEST].packets), -1);
	C("rerequest_packets_won_total", "re-request responses that carried a sequence first",
	  GET(f->line[WB_LINE_REREQUEST].packets_won), -1);
	C("rerequests_sent_total", "MoldUDP64 re-requests sent from the worker's TX queue", GET(f->requests_sent), -1);
	C("rerequest_send_failed_total", "re-requests the TX queue refused", GET(f->request_send_failed), -1);
	C("backfills_sent_total", "operator re-requests (wbctl backfill) sent", GET(f->backfills_sent), -1);
	C("recoveries_total", "SoupBinTCP recoveries started after a gap timed out", GET(f->recoveries), -1);
	C("recoveries_completed_total", "recoveries that caught up with the live lines", GET(f->recoveries_completed),
	  -1);
	C("recoveries_given_up_total", "recoveries that made no progress: gap declared", GET(f->recoveries_given_up), -1);
	C("recovered_messages_packets_total", "messages handed over by the recovery session",
	  GET(f->line[WB_LINE_SOUP].packets), -1);
	C("recovery_push_dropped_total", "recovered messages that found the handoff ring full",
	  GET(f->recovery_push_dropped), -1);
	C("live_dropped_recovering_packets_total", "live packets dropped while recovering with a full buffer",
	  GET(f->live_dropped_recovering), -1);
	C("recovering", "1 while a SoupBinTCP recovery is running", atomic_load(&f->recovering) ? 1 : 0, -1);
	C("gap_messages_filled_total", "messages of open gaps later filled", GET(f->gap_messages_filled), -1);
	C("gaps_declared_total", "gaps given up on: books flagged", GET(f->gaps_declared), -1);
	C("gap_messages_lost_total", "messages in declared gaps", GET(f->gap_messages_lost), -1);
	C("reorder_held_packets_total", "packets held while a gap was open", GET(f->held_packets), -1);
	C("reorder_full_total", "times the reorder buffer was full", GET(f->reorder_full), -1);
	C("session_changes_total", "MoldUDP64 session name changes", GET(f->session_changes), -1);
	C("block_overruns_total", "message blocks running past the packet", GET(f->block_overruns), -1);
	C("itch_short_messages_total", "ITCH messages shorter than their layout", GET(f->itch_short), -1);
	C("itch_unknown_messages_total", "ITCH messages of an unknown type", GET(f->itch_unknown), -1);
	C("itch_empty_messages_total", "zero-length message blocks", GET(f->itch_empty), -1);
	C("symbol_filter_dropped_events_total", "events of symbols outside feeds[].symbols, dropped before the ring",
	  GET(f->filter.dropped), -1);
#undef C
	return n;
}

const struct wb_feed_proto wb_feed_itch_mold = {
	.name = "itch50-moldudp64",
	.description = "Nasdaq TotalView-ITCH 5.0 over MoldUDP64 (line A/B arbitration, order-by-order books)",
	.create = itch_create,
	.destroy = itch_destroy,
	.on_datagram = itch_on_datagram,
	.prefetch_datagram = itch_prefetch_datagram,
	.on_idle = itch_on_idle,
	.books = itch_books,
	.counters = itch_counters,
	.attach_tx = itch_attach_tx,
	.gaps = itch_gaps,
	.recovery_wanted = itch_recovery_wanted,
	.recovery_push = itch_recovery_push,
	.backfill = itch_backfill,
	.set_symbol_filter = itch_set_symbol_filter,
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Control thread: builds the filter, marks the locates already in the directory, then
 * publishes it; the replaced one is freed once the worker has moved past it. */
static int itch_set_symbol_filter(void *st, const char (*symbols)[WB_SYMBOL_LEN], uint32_t n)
{
	struct itch_feed *f = st;
	struct itch_filter_slot *fs = &f->filter;
	struct symbol_filter *cur = atomic_load(&fs->cur);
	struct symbol_filter *seen = atomic_load(&fs->seen);
	int free_slot = -1;
	for (int i = 0; i < FILTER_RETIRED_MAX; i++) {
		if (fs->retired[i] && seen == cur) {
			free(fs->retired[i]);
			fs->retired[i] = NULL;
		}
		if (!fs->retired[i] && free_slot < 0)
			free_slot = i;
	}
	if (cur && free_slot < 0)
		return -EBUSY; /* the worker has not moved past the older filters yet */
	if (n > WB_MAX_FILTER_SYMBOLS)
		return -E2BIG;
	struct symbol_filter *sf = NULL;
	if (n) {
		sf = calloc(1, sizeof(*sf));
		if (!sf)
			return -ENOMEM;
		for (uint32_t i = 0; i < n; i++) {
			/* ITCH stock names are 8 bytes, space padded: the raw word of the SYMBOL event */
			char raw[8];
			memset(raw, ' ', sizeof(raw));
			memcpy(raw, symbols[i], strnlen(symbols[i], 8));
			memcpy(&sf->names[i], raw, 8);
			int loc = wb_bookset_find(f->books, symbols[i]);
			if (loc >= 0)
				atomic_store_explicit(&sf->keep[loc / 64], sf->keep[loc / 64] | (1ULL << (loc % 64)),
						      memory_order_relaxed);
		}
		sf->n = n;
		qsort(sf->names, n, sizeof(sf->names[0]), cmp_u64);
	}
	atomic_store_explicit(&fs->cur, sf, memory_order_release);
	if (cur)
		fs->retired[free_slot] = cur;
	return 0;
}
