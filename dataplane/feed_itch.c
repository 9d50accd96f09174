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

#define REORDER_SLOT_BYTES 1504 /* a full Ethernet MTU of UDP payload */
#define SEEN_BITS (1u << 18)     /* per-line window of delivered sequences: > a full reorder buffer */

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
	struct line_counters line[2];
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
	struct wb_book_opts bo = {
		.max_orders = fc->max_orders,
		.max_levels = fc->max_levels,
		.max_symbols = fc->max_symbols,
		.snapshot_depth = fc->snapshot_depth,
		.price_decimals = 4,
		.feed = feed_index,
		.policy = fc->integrity_policy == WB_CFG_INTEGRITY_FREEZE ? WB_POLICY_FREEZE : WB_POLICY_FLAG,
		.numa_node = numa_node,
	};
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

/* Applies the blocks of one packet from sequence f->expected on; earlier blocks are
 * duplicates already applied. Returns messages applied. */
static uint64_t apply_packet(struct itch_feed *f, const uint8_t *p, uint32_t len, uint64_t ts_recv,
			     uint8_t line, struct wb_event_batch *out)
{
	struct wb_mold_hdr h;
	struct wb_mold_iter it;
	if (wb_mold_parse(p, len, &h, &it) < 0)
		return 0;
	uint64_t seq = h.seq;
	uint64_t applied = 0;
	const uint8_t *msg;
	uint16_t mlen;
	int r;
	while ((r = wb_mold_next(&it, &msg, &mlen)) > 0) {
		if (seq < f->expected) {
			seq++;
			continue;
		}
		struct wb_itch_msg m;
		int d = wb_itch_decode(msg, mlen, &m);
		if (d == WB_ITCH_OK) {
			struct wb_msg_meta meta = { .seq = seq, .ts_recv = ts_recv, .flags = 0 };
			uint32_t n0 = out->n;
			wb_bookset_apply_itch(f->books, &m, &meta, out);
			struct symbol_filter *sf = atomic_load_explicit(&f->filter.cur, memory_order_acquire);
			if (sf)
				filter_events(f, sf, out, n0);
		} else if (d == WB_ITCH_ERR_SHORT) {
			INC(f->itch_short);
		} else if (d == WB_ITCH_ERR_UNKNOWN) {
			INC(f->itch_unknown);
		} else {
			INC(f->itch_empty);
		}
		seq++;
		f->expected = seq;
		applied++;
	}
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
	if (f->have_session)
		INC(f->session_changes);
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
}

static void itch_on_datagram(void *st, const uint8_t *p, uint32_t len, const struct wb_rx_meta *meta,
			     struct wb_event_batch *out)
{
	struct itch_feed *f = st;
	uint8_t line = meta->line & 1;
	struct line_counters *lc = &f->line[line];
	INC(lc->packets);
	ADD(lc->bytes, len);
	atomic_store_explicit(&lc->last_packet_ns, meta->ts_recv, memory_order_relaxed);
	/* A gap times out only once every line carrying traffic has moved past it: in a
	 * replay one line's file can be read ahead of the other's. */
	if (meta->ts_recv > f->line_ts[line])
		f->line_ts[line] = meta->ts_recv;
	uint64_t a = f->line_ts[0], b = f->line_ts[1];
	uint64_t now = !a ? b : !b ? a : (a < b ? a : b);
	if (now > f->clock_ns)
		f->clock_ns = now;

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
		if (h.seq != 1 || h.count == WB_MOLD_END_OF_SESSION) {
			INC(lc->foreign_session);
			return;
		}
		new_session(f, h.session);
	}

	uint64_t count;
	if (h.count == WB_MOLD_HEARTBEAT || h.count == WB_MOLD_END_OF_SESSION) {
		/* Both carry the next sequence: a gap at the tail shows here. */
		if (h.count == WB_MOLD_HEARTBEAT)
			INC(lc->heartbeats);
		else
			INC(lc->end_of_session);
		count = 0;
	} else {
		count = h.count;
	}
	uint64_t seq = h.seq;
	uint64_t end = seq + count; /* one past the packet's last sequence */

	account_line(f, line, seq, end);

	if (count == 0) {
		if (seq > f->announced)
			f->announced = seq;
		if (seq > f->expected && !f->nheld) {
			/* Tail gap announced by a heartbeat: nothing to hold, but it is open. */
			if (!f->gap_since_ns) {
				f->gap_since_ns = meta->ts_recv ? meta->ts_recv : 1;
				INC(f->gaps);
			}
		}
		goto check_timeout;
	}
	if (end <= f->expected) {
		INC(lc->duplicate_packets);
		ADD(lc->duplicate_messages, count);
		return;
	}
	if (seq > f->expected) {
		if (!f->nheld && !f->gap_since_ns)
			INC(f->gaps);
		hold_packet(f, p, len, seq, meta->ts_recv, line, out);
		goto check_timeout;
	}
	if (seq < f->expected)
		ADD(lc->duplicate_messages, f->expected - seq);
	uint64_t before_gap = f->nheld;
	apply_packet(f, p, len, meta->ts_recv, line, out);
	if (before_gap) {
		uint64_t exp0 = f->expected;
		drain_held(f, out);
		ADD(f->gap_messages_filled, f->expected - exp0);
	}
	atomic_store_explicit(&f->expected_seq, f->expected, memory_order_relaxed);
	return;

check_timeout:
	if (!(meta->flags & WB_RX_F_REPLAY) && gap_expired(f))
		declare_gap(f, out);
	atomic_store_explicit(&f->expected_seq, f->expected, memory_order_relaxed);
}

static void itch_on_idle(void *st, uint64_t now_ns, struct wb_event_batch *out)
{
	struct itch_feed *f = st;
	wb_bookset_service(f->books);
	if (now_ns > f->clock_ns)
		f->clock_ns = now_ns;
	if (gap_expired(f)) {
		do
			declare_gap(f, out);
		while (f->nheld);
		atomic_store_explicit(&f->expected_seq, f->expected, memory_order_relaxed);
	}
}

static struct wb_bookset *itch_books(void *st)
{
	return ((struct itch_feed *)st)->books;
}

static size_t itch_counters(void *st, struct wb_counter *out, size_t max)
{
	struct itch_feed *f = st;
	size_t n = 0;
#define C(nm, hp, v, l)                                                                   \
	do {                                                                              \
		if (n < max)                                                              \
			out[n] = (struct wb_counter){ .name = nm, .help = hp, .value = v, .line = l }; \
		n++;                                                                      \
	} while (0)
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
	.on_idle = itch_on_idle,
	.books = itch_books,
	.counters = itch_counters,
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
