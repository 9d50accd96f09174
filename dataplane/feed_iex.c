/* IEX-TP v1 plug-ins: "iex-deep" (DEEP 1.0, price-level books) and "iex-tops" (TOPS 1.6,
 * top of book). Sequencing, A/B arbitration and restart rules: docs/iex.md. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "feed.h"
#include "iex.h"

#define LINES 2

/* Named counters; the order is the order of counters(). */
enum iex_counter {
	C_PACKETS_A, C_PACKETS_B,
	C_HEARTBEATS,
	C_MESSAGES,
	C_DUPLICATES_A, C_DUPLICATES_B,
	C_DUPLICATE_SEGMENTS,
	C_STALE_SEGMENTS,
	C_GAPS,
	C_GAPS_FILLED,
	C_GAPS_DECLARED,
	C_GAP_MESSAGES,
	C_HELD_SEGMENTS,
	C_REORDER_FULL,
	C_OFFSET_MISMATCHES,
	C_SEQUENCE_RESETS,
	C_SESSION_CHANGES,
	C_MALFORMED_A, C_MALFORMED_B,
	C_WRONG_PROTOCOL,
	C_UNKNOWN_MESSAGES,
	C_SHORT_MESSAGES,
	C_SYMBOLS,
	C_SYMBOL_TABLE_FULL,
	C_LINE_SILENCES,
	C_BOOK_ERRORS,
	C_FIXED_MAX
};

static const struct {
	const char *name;
	const char *help;
	int8_t line;
} counter_desc[C_FIXED_MAX] = {
	[C_PACKETS_A] = { "packets_total", "IEX-TP segments received", 0 },
	[C_PACKETS_B] = { "packets_total", "IEX-TP segments received", 1 },
	[C_HEARTBEATS] = { "heartbeats_total", "segments with no messages", -1 },
	[C_MESSAGES] = { "messages_total", "messages applied (first copy of each sequence)", -1 },
	[C_DUPLICATES_A] = { "duplicates_total", "messages whose sequence was already applied", 0 },
	[C_DUPLICATES_B] = { "duplicates_total", "messages whose sequence was already applied", 1 },
	[C_DUPLICATE_SEGMENTS] = { "duplicate_segments_total", "segments holding only duplicates", -1 },
	[C_STALE_SEGMENTS] = { "stale_segments_total", "segments sent before the current sequence restart", -1 },
	[C_GAPS] = { "gaps_total", "sequence gaps seen (a sequence beyond the expected one)", -1 },
	[C_GAPS_FILLED] = { "gaps_filled_total", "gaps closed by the other line before gap_timeout_ms", -1 },
	[C_GAPS_DECLARED] = { "gaps_declared_total", "gaps given up: messages lost, books stale", -1 },
	[C_GAP_MESSAGES] = { "gap_messages_total", "messages lost in declared gaps", -1 },
	[C_HELD_SEGMENTS] = { "reorder_held_segments_total", "segments held while a gap was open", -1 },
	[C_REORDER_FULL] = { "reorder_full_total", "segments that could not be held (buffer full or too long)", -1 },
	[C_OFFSET_MISMATCHES] = { "offset_mismatches_total", "in-sequence segments whose stream offset did not follow", -1 },
	[C_SEQUENCE_RESETS] = { "sequence_resets_total", "sequence restarts at 1 under the same session (books cleared)", -1 },
	[C_SESSION_CHANGES] = { "session_changes_total", "new session ids (books cleared)", -1 },
	[C_MALFORMED_A] = { "malformed_segments_total", "segments dropped whole: short, bad version, blocks not filling the payload", 0 },
	[C_MALFORMED_B] = { "malformed_segments_total", "segments dropped whole: short, bad version, blocks not filling the payload", 1 },
	[C_WRONG_PROTOCOL] = { "wrong_protocol_segments_total", "segments of another message protocol id", -1 },
	[C_UNKNOWN_MESSAGES] = { "unknown_messages_total", "messages of a type outside the feed's set (skipped by length)", -1 },
	[C_SHORT_MESSAGES] = { "short_messages_total", "messages shorter than their type's layout", -1 },
	[C_SYMBOLS] = { "symbols_total", "symbols given a locate", -1 },
	[C_SYMBOL_TABLE_FULL] = { "symbol_table_full_total", "messages for a new symbol when max_symbols locates were taken", -1 },
	[C_LINE_SILENCES] = { "line_silences_total", "times a line was silent for line_silence_ms", -1 },
	[C_BOOK_ERRORS] = { "book_errors_total", "internal errors returned by the book", -1 },
};

/* Per-type message counters, named for what they count. */
static const struct {
	char type;
	const char *name;
} type_desc[] = {
	{ 'S', "system_event_messages_total" },
	{ 'D', "security_directory_messages_total" },
	{ 'H', "trading_status_messages_total" },
	{ 'I', "retail_liquidity_messages_total" },
	{ 'O', "operational_halt_messages_total" },
	{ 'P', "short_sale_price_test_messages_total" },
	{ 'E', "security_event_messages_total" },
	{ '8', "price_level_buy_messages_total" },
	{ '5', "price_level_sell_messages_total" },
	{ 'T', "trade_report_messages_total" },
	{ 'X', "official_price_messages_total" },
	{ 'B', "trade_break_messages_total" },
	{ 'A', "auction_information_messages_total" },
	{ 'Q', "quote_update_messages_total" },
};
#define NTYPES (sizeof(type_desc) / sizeof(type_desc[0]))

/* A level found while clearing a book: collected first, removed after the walk. */
struct clear_level {
	int64_t price;
	char side;
};

/* TOPS top of book, kept to remove the previous best when a quote moves it. */
struct top_quote {
	int64_t bid, ask; /* 0 = no level on that side */
};

#define HELD_SLOT_BYTES 1504 /* a full Ethernet MTU of UDP payload */

/* A segment that arrived ahead of a gap, waiting for the other line to fill it. */
struct held_segment {
	int64_t first_seq;
	uint64_t ts_recv;
	uint32_t len;
	uint16_t count;
	uint8_t line;
	uint8_t data[HELD_SLOT_BYTES];
};

struct iex_feed {
	enum wb_iex_feed kind;
	uint16_t protocol;
	uint8_t feed_index;
	struct wb_bookset *books;

	/* symbol -> locate: open addressing on the 8 symbol bytes; locate 0 = empty slot */
	uint64_t *sym_keys;
	uint16_t *sym_locates;
	uint32_t sym_mask;
	uint32_t max_locate; /* locates 1..max_locate are usable */
	uint32_t next_locate;

	struct top_quote *tops;     /* TOPS only, indexed by locate */
	struct clear_level *scratch; /* for clearing books on a restart */
	size_t scratch_cap, scratch_n;

	/* sequencing (one stream, both lines arbitrated per message sequence) */
	bool have_session;
	uint32_t session;
	int64_t expected_seq;    /* next message sequence to apply */
	int64_t expected_offset; /* stream offset after the last applied segment; -1 unknown */
	int64_t epoch_send_time; /* send time of the segment that began the current restart */
	int64_t newest_send_time;

	/* reorder buffer: held[held_order[0..nheld)] sorted by first sequence */
	uint64_t gap_timeout_ns; /* 0 = hold nothing, declare gaps at once */
	uint32_t held_cap, nheld, nfree;
	struct held_segment *held;
	uint32_t *held_order;
	uint32_t *held_free;
	int64_t announced;          /* next sequence announced by heartbeats */
	uint64_t gap_since_ns;      /* data clock when the open gap was seen; 0 = no gap */
	uint64_t gap_idle_since_ns; /* idle clock when on_idle first saw the gap */
	uint64_t clock_ns;          /* data clock: the slowest line's latest receive time */
	uint64_t line_ts[LINES];

	/* Silence is timed on on_idle's clock alone, so replayed pcap stamps cannot skew it. */
	uint64_t line_silence_ns;
	uint64_t last_seen_ns[LINES]; /* on_idle time at which the line was last known alive */
	bool rx_since_idle[LINES];
	bool line_silent[LINES];

	uint64_t c[C_FIXED_MAX];
	uint64_t type_count[NTYPES];
	uint8_t type_slot[256]; /* type byte -> type_desc index + 1; 0 = not counted */
};

/* Single writer: relaxed stores let counters() read from another thread without a race. */
static inline void bump(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, *c + n, __ATOMIC_RELAXED);
}

static uint32_t pow2_at_least(uint32_t v)
{
	uint32_t p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

static inline uint32_t sym_hash(uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	return (uint32_t)key;
}

/* Locate of a symbol, assigning the next one on first appearance; 0 when the table is
 * full. *fresh tells the caller to announce the new symbol. */
static uint16_t symbol_locate(struct iex_feed *f, const char sym[WB_IEX_SYMBOL_LEN], bool *fresh)
{
	uint64_t key;
	memcpy(&key, sym, sizeof(key));
	*fresh = false;
	for (uint32_t i = sym_hash(key) & f->sym_mask;; i = (i + 1) & f->sym_mask) {
		if (f->sym_locates[i] == 0) {
			if (f->next_locate > f->max_locate) {
				bump(&f->c[C_SYMBOL_TABLE_FULL], 1);
				return 0;
			}
			uint16_t locate = (uint16_t)f->next_locate++;
			f->sym_keys[i] = key;
			f->sym_locates[i] = locate;
			if (wb_bookset_define_symbol(f->books, locate, sym) < 0)
				bump(&f->c[C_BOOK_ERRORS], 1);
			bump(&f->c[C_SYMBOLS], 1);
			*fresh = true;
			return locate;
		}
		if (f->sym_keys[i] == key)
			return f->sym_locates[i];
	}
}

/* Room reserved per IEX message: the most it adds is 7 (a new symbol's event, a quote's,
 * four level changes of a top-of-book quote and one cross check at its batch end); 10
 * leaves a margin for a message type added later. */
#define EVENTS_PER_MSG_MAX 10

static struct wb_event *event_push(struct iex_feed *f, struct wb_event_batch *out, uint8_t type,
				   uint16_t locate, int64_t ts, const struct wb_msg_meta *meta)
{
	struct wb_event *e = wb_batch_push(out);
	if (!e)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->ts_exch = (uint64_t)ts;
	e->ts_recv = meta->ts_recv;
	e->seq = meta->seq;
	e->locate = locate;
	e->type = type;
	e->feed = f->feed_index;
	e->flags = WB_EVF_BATCH_END | meta->flags;
	return e;
}

static void collect_level(void *arg, char side, const struct wb_level *lvl)
{
	struct iex_feed *f = arg;
	if (f->scratch_n < f->scratch_cap)
		f->scratch[f->scratch_n++] = (struct clear_level){ .price = lvl->price, .side = side };
}

/* Empties every book (sequence restart, new session): the levels leave through the book
 * as size-0 updates, so readers and the capture see them go. Then one SYSTEM event. */
static void clear_books(struct iex_feed *f, char why, int64_t ts, const struct wb_msg_meta *meta,
			struct wb_event_batch *out)
{
	for (uint32_t locate = 1; locate < f->next_locate; locate++) {
		f->scratch_n = 0;
		wb_bookset_walk_levels(f->books, (uint16_t)locate, collect_level, f);
		for (size_t k = 0; k < f->scratch_n; k++) {
			bool last = k + 1 == f->scratch_n;
			/* a restart empties thousands of levels in one call: the batch may be handed
			 * on inside a symbol's level batch, whose last event still ends it */
			wb_batch_reserve(out, 2);
			if (wb_bookset_set_level(f->books, (uint16_t)locate, f->scratch[k].side,
						 f->scratch[k].price, 0, last, (uint64_t)ts, meta, out) < 0)
				bump(&f->c[C_BOOK_ERRORS], 1);
		}
		if (f->tops)
			f->tops[locate] = (struct top_quote){ 0, 0 };
	}
	wb_batch_reserve(out, 1);
	struct wb_event *e = event_push(f, out, WB_EV_SYSTEM, 0, ts, meta);
	if (e)
		e->side = (uint8_t)why;
	wb_bookset_set_stale(f->books, false);
}

/* A planned change to a TOPS top-of-book side. */
struct top_op {
	char side;
	int64_t price;
	uint32_t size;
};

/* Plans one side of a quote: the book holds at most one level per side, the best. */
static int plan_top_side(struct top_op *ops, int n, char side, int64_t *cur, int64_t price, uint32_t size)
{
	bool want = size != 0 && price != 0;
	if (*cur != 0 && (!want || *cur != price))
		ops[n++] = (struct top_op){ side, *cur, 0 };
	if (want)
		ops[n++] = (struct top_op){ side, price, size };
	*cur = want ? price : 0;
	return n;
}

static void apply_quote(struct iex_feed *f, uint16_t locate, const struct wb_iex_msg *m,
			const struct wb_msg_meta *meta, struct wb_event_batch *out)
{
	struct top_quote *t = &f->tops[locate];
	struct top_op ops[4];
	int n = plan_top_side(ops, 0, 'B', &t->bid, m->u.quote.bid, m->u.quote.bid_size);
	n = plan_top_side(ops, n, 'S', &t->ask, m->u.quote.ask, m->u.quote.ask_size);
	struct wb_event *e = event_push(f, out, WB_EV_QUOTE, locate, m->ts, meta);
	if (e) {
		e->price = m->u.quote.bid;
		e->aux = (uint64_t)m->u.quote.ask;
		e->shares = m->u.quote.bid_size;
		e->level_shares = m->u.quote.ask_size;
		e->ref = m->u.quote.quote_flags;
		if (n > 0)
			e->flags &= (uint8_t)~WB_EVF_BATCH_END; /* the last level update ends it */
	}
	for (int k = 0; k < n; k++) {
		if (wb_bookset_set_level(f->books, locate, ops[k].side, ops[k].price, ops[k].size,
					 k + 1 == n, (uint64_t)m->ts, meta, out) < 0)
			bump(&f->c[C_BOOK_ERRORS], 1);
	}
}

static void apply_message(struct iex_feed *f, const struct wb_iex_msg *m, const struct wb_msg_meta *meta,
			  struct wb_event_batch *out)
{
	struct wb_event *e;
	uint16_t locate = 0;
	if (m->type != 'S') {
		bool fresh;
		locate = symbol_locate(f, m->symbol, &fresh);
		if (locate == 0)
			return;
		if (fresh && m->type != 'D') {
			e = event_push(f, out, WB_EV_SYMBOL, locate, m->ts, meta);
			if (e)
				memcpy(&e->aux, m->symbol, 8);
		}
	}
	switch (m->type) {
	case 'S':
		e = event_push(f, out, WB_EV_SYSTEM, 0, m->ts, meta);
		if (e)
			e->side = (uint8_t)m->u.sys.event;
		break;
	case 'D':
		e = event_push(f, out, WB_EV_SYMBOL, locate, m->ts, meta);
		if (e) {
			memcpy(&e->aux, m->symbol, 8);
			e->shares = m->u.dir.round_lot;
			e->price = m->u.dir.adjusted_poc;
			e->ref = (uint64_t)m->flags | (uint64_t)m->u.dir.luld_tier << 8;
		}
		break;
	case 'H':
		wb_bookset_set_trading_state(f->books, locate, m->u.status.status);
		e = event_push(f, out, WB_EV_STATUS, locate, m->ts, meta);
		if (e) {
			e->side = (uint8_t)m->u.status.status;
			memcpy(&e->aux, m->u.status.reason, 4);
		}
		break;
	case '8':
	case '5':
		if (wb_bookset_set_level(f->books, locate, m->type == '8' ? 'B' : 'S', m->u.level.price,
					 m->u.level.size, m->u.level.event_flags & WB_IEX_EVENT_COMPLETE,
					 (uint64_t)m->ts, meta, out) < 0)
			bump(&f->c[C_BOOK_ERRORS], 1);
		break;
	case 'Q':
		apply_quote(f, locate, m, meta, out);
		break;
	case 'T':
	case 'B':
		e = event_push(f, out, m->type == 'T' ? WB_EV_TRADE : WB_EV_TRADE_BREAK, locate, m->ts, meta);
		if (e) {
			e->price = m->u.trade.price;
			e->shares = m->u.trade.size;
			e->aux = m->u.trade.trade_id;
			e->ref = m->u.trade.sale_flags;
		}
		break;
	case 'X':
		e = event_push(f, out, WB_EV_OTHER, locate, m->ts, meta);
		if (e) {
			e->side = 'X';
			e->price = m->u.official.price;
			e->aux = (uint8_t)m->u.official.price_type;
		}
		break;
	case 'A':
		e = event_push(f, out, WB_EV_OTHER, locate, m->ts, meta);
		if (e) {
			e->side = 'A';
			e->price = m->u.auction.reference_price;
			e->shares = m->u.auction.paired_shares;
			e->level_shares = m->u.auction.imbalance_shares;
			e->aux = (uint64_t)m->u.auction.indicative_price;
			e->ref = (uint64_t)(uint8_t)m->u.auction.auction_type |
				 (uint64_t)(uint8_t)m->u.auction.imbalance_side << 8 |
				 (uint64_t)m->u.auction.extension << 16 |
				 (uint64_t)m->u.auction.scheduled_time << 32;
		}
		break;
	default: /* O, P, E, I: one status byte and at most one detail byte */
		e = event_push(f, out, WB_EV_OTHER, locate, m->ts, meta);
		if (e) {
			e->side = (uint8_t)m->type;
			e->aux = m->flags;
			if (m->type == 'P')
				e->ref = (uint8_t)m->u.ssr.detail;
		}
		break;
	}
}

/* Drops every held segment and open gap: the stream starts over. */
static void forget_held(struct iex_feed *f)
{
	while (f->nheld)
		f->held_free[f->nfree++] = f->held_order[--f->nheld];
	f->announced = 0;
	f->gap_since_ns = 0;
	f->gap_idle_since_ns = 0;
}

/* Session and restart rules (docs/iex.md): returns -1 when the segment belongs to a
 * stream already left behind, 0 otherwise (books cleared first on a new day). */
static int sequence_epoch(struct iex_feed *f, const struct wb_iextp_hdr *h, uint8_t line,
			  const struct wb_msg_meta *meta, struct wb_event_batch *out)
{
	if (f->have_session && h->session != f->session && h->send_time <= f->newest_send_time) {
		/* The late line still sending the previous session. */
		bump(&f->c[C_STALE_SEGMENTS], 1);
		bump(&f->c[line ? C_DUPLICATES_B : C_DUPLICATES_A], h->count);
		return -1;
	}
	if (!f->have_session || h->session != f->session) {
		if (f->have_session) {
			bump(&f->c[C_SESSION_CHANGES], 1);
			clear_books(f, 'N', h->send_time, meta, out);
		}
		forget_held(f);
		f->have_session = true;
		f->session = h->session;
		f->expected_seq = h->first_seq;
		f->expected_offset = h->offset;
		f->epoch_send_time = h->send_time;
	} else if (h->send_time < f->epoch_send_time) {
		/* The late line's copy of a day that a restart already ended. */
		bump(&f->c[C_STALE_SEGMENTS], 1);
		bump(&f->c[line ? C_DUPLICATES_B : C_DUPLICATES_A], h->count);
		return -1;
	} else if (h->first_seq == 1 && f->expected_seq > 1 && h->send_time > f->newest_send_time) {
		/* Older copies of a restart segment fall through as ordinary duplicates. */
		bump(&f->c[C_SEQUENCE_RESETS], 1);
		clear_books(f, 'R', h->send_time, meta, out);
		forget_held(f);
		f->expected_seq = 1;
		f->expected_offset = h->offset;
		f->epoch_send_time = h->send_time;
	}
	if (h->send_time > f->newest_send_time)
		f->newest_send_time = h->send_time;
	return 0;
}

/* Applies a segment that reaches past the expected sequence, skipping the messages
 * already applied; a segment entirely behind it counts as duplicates. */
static void apply_segment(struct iex_feed *f, const uint8_t *p, uint32_t len, uint64_t ts_recv,
			  uint8_t line, struct wb_event_batch *out)
{
	struct wb_iextp_hdr h;
	struct wb_iextp_iter it;
	if (wb_iextp_parse(p, len, &h, &it) < 0)
		return; /* validated before it was held */
	int64_t end = h.first_seq + h.count;
	if (end <= f->expected_seq) {
		bump(&f->c[C_DUPLICATE_SEGMENTS], 1);
		bump(&f->c[line ? C_DUPLICATES_B : C_DUPLICATES_A], h.count);
		return;
	}
	if (h.first_seq == f->expected_seq && f->expected_offset >= 0 && h.offset != f->expected_offset)
		bump(&f->c[C_OFFSET_MISMATCHES], 1);
	int64_t skip = f->expected_seq - h.first_seq;
	if (skip > 0)
		bump(&f->c[line ? C_DUPLICATES_B : C_DUPLICATES_A], (uint64_t)skip);
	/* The offset after this segment is exact only when it was applied from its start. */
	f->expected_offset = skip == 0 ? h.offset + h.payload_len : -1;
	f->expected_seq = end;

	struct wb_msg_meta meta = { .ts_recv = ts_recv, .flags = 0 };
	const uint8_t *msg;
	uint16_t mlen;
	for (int64_t seq = h.first_seq; wb_iextp_next(&it, &msg, &mlen) > 0; seq++) {
		if (seq < h.first_seq + skip)
			continue;
		struct wb_iex_msg m;
		int rc = wb_iex_decode(f->kind, msg, mlen, &m);
		if (rc != WB_IEX_OK) {
			bump(&f->c[rc == WB_IEX_ERR_SHORT ? C_SHORT_MESSAGES : C_UNKNOWN_MESSAGES], 1);
			continue;
		}
		bump(&f->c[C_MESSAGES], 1);
		uint8_t slot = f->type_slot[(uint8_t)m.type];
		if (slot)
			bump(&f->type_count[slot - 1], 1);
		meta.seq = (uint64_t)seq;
		wb_batch_reserve(out, EVENTS_PER_MSG_MAX); /* held segments drain in one call */
		apply_message(f, &m, &meta, out);
	}
}

static void open_gap(struct iex_feed *f)
{
	if (f->gap_since_ns)
		return;
	f->gap_since_ns = f->clock_ns ? f->clock_ns : 1;
	f->gap_idle_since_ns = 0;
	bump(&f->c[C_GAPS], 1);
}

/* Gives up on [expected, target): counted, reported, books marked stale. */
static void skip_to(struct iex_feed *f, int64_t target, uint64_t ts_recv, struct wb_event_batch *out)
{
	if (target <= f->expected_seq)
		return;
	int64_t lost = target - f->expected_seq;
	bump(&f->c[C_GAPS_DECLARED], 1);
	bump(&f->c[C_GAP_MESSAGES], (uint64_t)lost);
	/* No IEX gap fill yet: the books may miss updates until the next restart or session. */
	wb_bookset_set_stale(f->books, true);
	struct wb_msg_meta m = { .seq = (uint64_t)f->expected_seq, .ts_recv = ts_recv };
	wb_batch_reserve(out, 2);
	struct wb_event *e = event_push(f, out, WB_EV_GAP, 0, 0, &m);
	if (e)
		e->aux = (uint64_t)lost;
	e = event_push(f, out, WB_EV_INTEGRITY, 0, 0, &m);
	if (e) {
		e->side = WB_INT_GAP_DECLARED;
		e->aux = (uint64_t)lost;
	}
	f->expected_seq = target;
	f->expected_offset = -1;
}

/* Applies the held segments the stream has reached; closes the gap when none is left. */
static void drain_held(struct iex_feed *f, struct wb_event_batch *out)
{
	while (f->nheld) {
		struct held_segment *hs = &f->held[f->held_order[0]];
		if (hs->first_seq > f->expected_seq)
			break;
		apply_segment(f, hs->data, hs->len, hs->ts_recv, hs->line, out);
		f->held_free[f->nfree++] = f->held_order[0];
		memmove(&f->held_order[0], &f->held_order[1], (f->nheld - 1) * sizeof(f->held_order[0]));
		f->nheld--;
	}
	if (f->gap_since_ns && f->nheld == 0 && f->announced <= f->expected_seq) {
		f->gap_since_ns = 0;
		bump(&f->c[C_GAPS_FILLED], 1);
	}
}

/* The open gap cannot be filled: skip to the first held segment and go on. */
static void declare_gap(struct iex_feed *f, struct wb_event_batch *out)
{
	int64_t next = f->nheld ? f->held[f->held_order[0]].first_seq : f->announced;
	f->gap_since_ns = 0;
	skip_to(f, next, f->clock_ns, out);
	drain_held(f, out);
	if (f->nheld || f->announced > f->expected_seq)
		open_gap(f);
}

static bool gap_expired(const struct iex_feed *f)
{
	return f->gap_since_ns && f->clock_ns > f->gap_since_ns && f->clock_ns - f->gap_since_ns > f->gap_timeout_ns;
}

/* Keeps a segment that arrived ahead of a gap, sorted by first sequence. Returns false
 * when it cannot be held (too long, or the buffer is full). */
static bool hold_segment(struct iex_feed *f, const uint8_t *p, uint32_t len, const struct wb_iextp_hdr *h,
			 uint64_t ts_recv, uint8_t line)
{
	if (len > HELD_SLOT_BYTES || f->nfree == 0) {
		bump(&f->c[C_REORDER_FULL], 1);
		return false;
	}
	uint32_t k = f->nheld;
	while (k > 0 && f->held[f->held_order[k - 1]].first_seq > h->first_seq)
		k--;
	if (k > 0 && f->held[f->held_order[k - 1]].first_seq == h->first_seq &&
	    f->held[f->held_order[k - 1]].count >= h->count) {
		bump(&f->c[line ? C_DUPLICATES_B : C_DUPLICATES_A], h->count);
		return true;
	}
	uint32_t slot = f->held_free[--f->nfree];
	struct held_segment *hs = &f->held[slot];
	hs->first_seq = h->first_seq;
	hs->count = h->count;
	hs->ts_recv = ts_recv;
	hs->len = len;
	hs->line = line;
	memcpy(hs->data, p, len);
	memmove(&f->held_order[k + 1], &f->held_order[k], (f->nheld - k) * sizeof(f->held_order[0]));
	f->held_order[k] = slot;
	f->nheld++;
	bump(&f->c[C_HELD_SEGMENTS], 1);
	return true;
}

static void iex_on_datagram(void *state, const uint8_t *payload, uint32_t len,
			    const struct wb_rx_meta *rx, struct wb_event_batch *out)
{
	struct iex_feed *f = state;
	uint8_t line = rx->line ? 1 : 0;
	struct wb_iextp_hdr h;
	struct wb_iextp_iter it;

	bump(&f->c[line ? C_PACKETS_B : C_PACKETS_A], 1);
	f->rx_since_idle[line] = true;
	/* Gaps time out on the slowest line's clock: a replayed line may run ahead. */
	if (rx->ts_recv > f->line_ts[line])
		f->line_ts[line] = rx->ts_recv;
	uint64_t a = f->line_ts[0], b = f->line_ts[1];
	uint64_t now = !a ? b : !b ? a : (a < b ? a : b);
	if (now > f->clock_ns)
		f->clock_ns = now;

	if (wb_iextp_parse(payload, len, &h, &it) < 0) {
		bump(&f->c[line ? C_MALFORMED_B : C_MALFORMED_A], 1);
		return;
	}
	if (h.protocol != f->protocol) {
		bump(&f->c[C_WRONG_PROTOCOL], 1);
		return;
	}
	struct wb_msg_meta meta = { .seq = (uint64_t)h.first_seq, .ts_recv = rx->ts_recv, .flags = 0 };
	if (sequence_epoch(f, &h, line, &meta, out) < 0)
		goto out_check_gap;

	if (h.count == 0) {
		/* A heartbeat names the next sequence: a gap at the tail shows here. */
		bump(&f->c[C_HEARTBEATS], 1);
		if (h.first_seq > f->announced)
			f->announced = h.first_seq;
		if (f->announced > f->expected_seq) {
			if (f->gap_timeout_ns == 0) {
				bump(&f->c[C_GAPS], 1);
				skip_to(f, f->announced, rx->ts_recv, out);
			} else {
				open_gap(f);
			}
		}
		/* A heartbeat at the expected sequence also names the next stream offset. */
		if (h.first_seq == f->expected_seq) {
			if (f->expected_offset >= 0 && h.offset != f->expected_offset)
				bump(&f->c[C_OFFSET_MISMATCHES], 1);
			f->expected_offset = h.offset;
		}
		goto out_check_gap;
	}
	if (h.first_seq > f->expected_seq) {
		if (f->gap_timeout_ns && hold_segment(f, payload, len, &h, rx->ts_recv, line)) {
			open_gap(f);
			goto out_check_gap;
		}
		/* Not held: give up on what is missing before it. */
		while (f->nheld && f->held[f->held_order[0]].first_seq < h.first_seq)
			declare_gap(f, out);
		if (h.first_seq > f->expected_seq) {
			if (!f->gap_since_ns)
				bump(&f->c[C_GAPS], 1);
			f->gap_since_ns = 0;
			skip_to(f, h.first_seq, rx->ts_recv, out);
		}
	}
	apply_segment(f, payload, len, rx->ts_recv, line, out);
	drain_held(f, out);

out_check_gap:
	if (gap_expired(f))
		declare_gap(f, out);
}

static void iex_on_idle(void *state, uint64_t now_ns, struct wb_event_batch *out)
{
	struct iex_feed *f = state;
	wb_bookset_service(f->books);
	/* The idle clock ends a gap that no datagram will fill (line down, end of replay). */
	if (f->gap_since_ns) {
		if (!f->gap_idle_since_ns)
			f->gap_idle_since_ns = now_ns;
		else if (now_ns - f->gap_idle_since_ns > f->gap_timeout_ns)
			while (f->gap_since_ns)
				declare_gap(f, out);
	}
	if (f->line_silence_ns == 0)
		return;
	for (int l = 0; l < LINES; l++) {
		if (f->rx_since_idle[l]) {
			f->rx_since_idle[l] = false;
			f->line_silent[l] = false;
			f->last_seen_ns[l] = now_ns;
		} else if (f->last_seen_ns[l] && !f->line_silent[l] && now_ns > f->last_seen_ns[l] &&
			   now_ns - f->last_seen_ns[l] > f->line_silence_ns) {
			f->line_silent[l] = true;
			bump(&f->c[C_LINE_SILENCES], 1);
		}
	}
}

static void iex_destroy(void *state)
{
	struct iex_feed *f = state;
	if (!f)
		return;
	wb_bookset_destroy(f->books);
	free(f->sym_keys);
	free(f->sym_locates);
	free(f->tops);
	free(f->scratch);
	free(f->held);
	free(f->held_order);
	free(f->held_free);
	free(f);
}

static int iex_create(const struct wb_feed_conf *fc, uint8_t feed_index, int numa_node,
		      enum wb_iex_feed kind, void **state)
{
	if (fc->max_symbols < 2 || fc->max_symbols > WB_BOOK_MAX_LOCATES)
		return -EINVAL;
	struct iex_feed *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	int rc = -ENOMEM;
	f->kind = kind;
	f->protocol = kind == WB_IEX_DEEP ? WB_IEXTP_PROTO_DEEP : WB_IEXTP_PROTO_TOPS;
	f->feed_index = feed_index;
	f->max_locate = fc->max_symbols - 1;
	f->next_locate = 1;
	f->expected_offset = -1;
	f->line_silence_ns = (uint64_t)fc->line_silence_ms * 1000000ULL;
	for (size_t k = 0; k < NTYPES; k++)
		f->type_slot[(uint8_t)type_desc[k].type] = (uint8_t)(k + 1);

	uint32_t slots = pow2_at_least(fc->max_symbols * 2);
	f->sym_mask = slots - 1;
	f->sym_keys = calloc(slots, sizeof(*f->sym_keys));
	f->sym_locates = calloc(slots, sizeof(*f->sym_locates));
	if (!f->sym_keys || !f->sym_locates)
		goto out_free_feed;
	if (kind == WB_IEX_TOPS) {
		f->tops = calloc(fc->max_symbols, sizeof(*f->tops));
		if (!f->tops)
			goto out_free_feed;
	}
	f->scratch_cap = fc->max_levels ? fc->max_levels : 1;
	f->scratch = calloc(f->scratch_cap, sizeof(*f->scratch));
	if (!f->scratch)
		goto out_free_feed;

	f->gap_timeout_ns = (uint64_t)fc->gap_timeout_ms * 1000000ULL;
	f->held_cap = f->gap_timeout_ns ? fc->reorder_buffer : 0;
	if (f->held_cap) {
		f->held = calloc(f->held_cap, sizeof(*f->held));
		f->held_order = calloc(f->held_cap, sizeof(*f->held_order));
		f->held_free = calloc(f->held_cap, sizeof(*f->held_free));
		if (!f->held || !f->held_order || !f->held_free)
			goto out_free_feed;
		for (uint32_t k = 0; k < f->held_cap; k++)
			f->held_free[k] = f->held_cap - 1 - k;
		f->nfree = f->held_cap;
	}

	struct wb_book_opts bo;
	wb_feed_book_opts(fc, feed_index, numa_node, &bo);
	if (!bo.max_orders)
		bo.max_orders = 1; /* price-level books hold no orders */
	rc = wb_bookset_create(&bo, &f->books);
	if (rc < 0)
		goto out_free_feed;
	*state = f;
	return 0;

out_free_feed:
	iex_destroy(f);
	return rc;
}

static int iex_deep_create(const struct wb_feed_conf *fc, uint8_t feed_index, int numa_node, void **state)
{
	return iex_create(fc, feed_index, numa_node, WB_IEX_DEEP, state);
}

static int iex_tops_create(const struct wb_feed_conf *fc, uint8_t feed_index, int numa_node, void **state)
{
	return iex_create(fc, feed_index, numa_node, WB_IEX_TOPS, state);
}

static struct wb_bookset *iex_books(void *state)
{
	return ((struct iex_feed *)state)->books;
}

static size_t iex_counters(void *state, struct wb_counter *out, size_t max)
{
	struct iex_feed *f = state;
	size_t n = 0;
	for (size_t k = 0; k < C_FIXED_MAX; k++, n++) {
		if (n < max)
			out[n] = (struct wb_counter){ counter_desc[k].name, counter_desc[k].help,
						      __atomic_load_n(&f->c[k], __ATOMIC_RELAXED),
						      counter_desc[k].line };
	}
	for (size_t k = 0; k < NTYPES; k++, n++) {
		if (n < max)
			out[n] = (struct wb_counter){ type_desc[k].name, "messages of this type applied",
						      __atomic_load_n(&f->type_count[k], __ATOMIC_RELAXED), -1 };
	}
	return n;
}

const struct wb_feed_proto wb_feed_iex_deep = {
	.name = "iex-deep",
	.description = "IEX DEEP 1.0 over IEX-TP v1: price-level books",
	.create = iex_deep_create,
	.destroy = iex_destroy,
	.on_datagram = iex_on_datagram,
	.on_idle = iex_on_idle,
	.books = iex_books,
	.counters = iex_counters,
};

const struct wb_feed_proto wb_feed_iex_tops = {
	.name = "iex-tops",
	.description = "IEX TOPS 1.6 over IEX-TP v1: top of book and quotes",
	.create = iex_tops_create,
	.destroy = iex_destroy,
	.on_datagram = iex_on_datagram,
	.on_idle = iex_on_idle,
	.books = iex_books,
	.counters = iex_counters,
};
