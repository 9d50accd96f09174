/* The iex-deep and iex-tops plug-ins on generated segments with known ground truth:
 * events and books, batch consistency, A/B arbitration with different segment
 * boundaries, gaps, sequence restarts, session changes, malformed input, table full. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "feed.h"
#include "iex.h"

extern const struct wb_feed_proto wb_feed_iex_deep;
extern const struct wb_feed_proto wb_feed_iex_tops;

#define EV_CAP 4096

struct harness {
	const struct wb_feed_proto *proto;
	void *feed;
	struct wb_event ev[EV_CAP];
	struct wb_event_batch batch;
};

static void harness_init_recovery(struct harness *h, const struct wb_feed_proto *proto, uint32_t max_symbols,
				  uint32_t gap_timeout_ms, uint32_t reorder_buffer)
{
	struct wb_feed_conf fc;
	memset(&fc, 0, sizeof(fc));
	snprintf(fc.name, sizeof(fc.name), "iex-test");
	snprintf(fc.protocol, sizeof(fc.protocol), "%s", proto->name);
	fc.max_symbols = max_symbols;
	fc.max_levels = 4096;
	fc.max_orders = 16;
	fc.snapshot_depth = 8;
	fc.line_silence_ms = 100;
	fc.gap_timeout_ms = gap_timeout_ms;
	fc.reorder_buffer = reorder_buffer;
	h->proto = proto;
	assert_int_equal(proto->create(&fc, 3, -1, &h->feed), 0);
	h->batch = (struct wb_event_batch){ .ev = h->ev, .n = 0, .cap = EV_CAP };
}

/* No reorder buffer: every gap is declared at once. */
static void harness_init(struct harness *h, const struct wb_feed_proto *proto, uint32_t max_symbols)
{
	harness_init_recovery(h, proto, max_symbols, 0, 0);
}

static void harness_fini(struct harness *h)
{
	h->proto->destroy(h->feed);
}

/* Hands one datagram to the plug-in as the worker does, then publishes the books. */
static void deliver_at(struct harness *h, const uint8_t *seg, size_t len, uint8_t line, uint64_t ts_recv)
{
	struct wb_rx_meta rx = { .ts_recv = ts_recv, .line = line };
	h->batch.n = 0;
	h->proto->on_datagram(h->feed, seg, (uint32_t)len, &rx, &h->batch);
	wb_bookset_publish(h->proto->books(h->feed));
}

static uint64_t counter(struct harness *h, const char *name, int line)
{
	struct wb_counter c[64];
	size_t n = h->proto->counters(h->feed, c, 64);
	assert_true(n <= 64);
	uint64_t sum = 0;
	bool found = false;
	for (size_t k = 0; k < n; k++) {
		if (strcmp(c[k].name, name) == 0 && (line == -2 || c[k].line == line)) {
			sum += c[k].value;
			found = true;
		}
	}
	if (!found)
		fail_msg("no counter %s", name);
	return sum;
}

static void deliver(struct harness *h, const uint8_t *seg, size_t len, uint8_t line)
{
	deliver_at(h, seg, len, line, 1000);
}

/* ---- segment building ---- */

struct seg {
	uint8_t buf[2048];
	size_t len;
	uint16_t count;
};

static void seg_start(struct seg *s)
{
	s->len = WB_IEXTP_HDR_LEN;
	s->count = 0;
}

static void seg_add(struct seg *s, enum wb_iex_feed feed, const struct wb_iex_msg *m)
{
	size_t l = wb_iex_encode(feed, m, s->buf + s->len + 2);
	assert_true(l > 0);
	s->buf[s->len] = (uint8_t)l;
	s->buf[s->len + 1] = 0;
	s->len += 2 + l;
	s->count++;
}

static void seg_finish(struct seg *s, uint16_t proto, uint32_t session, int64_t first_seq, int64_t offset,
		       int64_t send_time)
{
	struct wb_iextp_hdr h = { .version = 1, .protocol = proto, .channel = 1, .session = session,
				  .payload_len = (uint16_t)(s->len - WB_IEXTP_HDR_LEN), .count = s->count,
				  .offset = offset, .first_seq = first_seq, .send_time = send_time };
	wb_iextp_put_hdr(s->buf, &h);
}

static struct wb_iex_msg level_msg(const char *sym, char side, int64_t price, uint32_t size, uint8_t complete)
{
	struct wb_iex_msg m = { .type = side == 'B' ? '8' : '5', .ts = 1493000000000000000LL };
	memset(m.symbol, ' ', 8);
	memcpy(m.symbol, sym, strlen(sym));
	m.u.level.event_flags = complete;
	m.u.level.size = size;
	m.u.level.price = price;
	return m;
}

static struct wb_iex_msg sym_msg(char type, const char *sym)
{
	struct wb_iex_msg m = { .type = type, .ts = 1493000000000000001LL };
	memset(m.symbol, ' ', 8);
	memcpy(m.symbol, sym, strlen(sym));
	return m;
}

/* One DEEP segment of n level messages. */
static size_t deep_segment(struct seg *s, const struct wb_iex_msg *msgs, int n, uint32_t session,
			   int64_t first_seq, int64_t offset, int64_t send_time)
{
	seg_start(s);
	for (int k = 0; k < n; k++)
		seg_add(s, WB_IEX_DEEP, &msgs[k]);
	seg_finish(s, WB_IEXTP_PROTO_DEEP, session, first_seq, offset, send_time);
	return s->len;
}

static size_t heartbeat(struct seg *s, uint16_t proto, uint32_t session, int64_t next_seq, int64_t offset,
			int64_t send_time)
{
	seg_start(s);
	seg_finish(s, proto, session, next_seq, offset, send_time);
	return s->len;
}

/* ---- book inspection ---- */

struct levels {
	size_t n;
	char side[256];
	int64_t price[256];
	uint64_t shares[256];
};

static void collect(void *arg, char side, const struct wb_level *lvl)
{
	struct levels *l = arg;
	assert_true(l->n < 256);
	l->side[l->n] = side;
	l->price[l->n] = lvl->price;
	l->shares[l->n] = lvl->shares;
	l->n++;
}

static void walk(struct harness *h, const char *sym, struct levels *out)
{
	memset(out, 0, sizeof(*out));
	int loc = wb_bookset_find(h->proto->books(h->feed), sym);
	assert_true(loc > 0);
	wb_bookset_walk_levels(h->proto->books(h->feed), (uint16_t)loc, collect, out);
}

static size_t count_events(struct harness *h, uint8_t type)
{
	size_t n = 0;
	for (uint32_t k = 0; k < h->batch.n; k++)
		n += h->ev[k].type == type;
	return n;
}

static const struct wb_event *find_event(struct harness *h, uint8_t type)
{
	for (uint32_t k = 0; k < h->batch.n; k++)
		if (h->ev[k].type == type)
			return &h->ev[k];
	return NULL;
}

/* ---- tests ---- */

static void test_iex_feed_deep_messages(void **state)
{
	(void)state;
	struct harness *h = malloc(sizeof(*h));
	struct seg s;
	harness_init(h, &wb_feed_iex_deep, 64);

	struct wb_iex_msg msgs[6];
	msgs[0] = sym_msg('H', "AAPL");
	msgs[0].u.status.status = 'T';
	memcpy(msgs[0].u.status.reason, "    ", 4);
	msgs[1] = level_msg("AAPL", 'B', 1500000, 300, 0);
	msgs[2] = level_msg("AAPL", 'S', 1501000, 200, 1);
	msgs[3] = sym_msg('T', "AAPL");
	msgs[3].u.trade.sale_flags = 0x20;
	msgs[3].u.trade.size = 50;
	msgs[3].u.trade.price = 1500500;
	msgs[3].u.trade.trade_id = 987654;
	msgs[4] = sym_msg('X', "AAPL");
	msgs[4].u.official.price_type = 'Q';
	msgs[4].u.official.price = 1499900;
	msgs[5] = (struct wb_iex_msg){ .type = 'S', .ts = 5 };
	msgs[5].u.sys.event = 'R';
	deliver(h, s.buf, deep_segment(&s, msgs, 6, 9, 1, 0, 100), 0);

	assert_int_equal(counter(h, "messages_total", -1), 6);
	assert_int_equal(counter(h, "price_level_buy_messages_total", -1), 1);
	assert_int_equal(counter(h, "price_level_sell_messages_total", -1), 1);
	assert_int_equal(counter(h, "trading_status_messages_total", -1), 1);
	assert_int_equal(counter(h, "trade_report_messages_total", -1), 1);
	assert_int_equal(counter(h, "official_price_messages_total", -1), 1);
	assert_int_equal(counter(h, "system_event_messages_total", -1), 1);
	assert_int_equal(counter(h, "symbols_total", -1), 1);

	const struct wb_event *e = find_event(h, WB_EV_SYMBOL);
	assert_non_null(e);
	assert_memory_equal(&e->aux, "AAPL    ", 8);
	assert_int_equal(e->feed, 3);
	e = find_event(h, WB_EV_STATUS);
	assert_non_null(e);
	assert_int_equal(e->side, 'T');
	assert_int_equal(e->seq, 1);
	assert_int_equal(count_events(h, WB_EV_LEVEL), 2);
	/* Only the update that ends the IEX event ends the batch. */
	for (uint32_t k = 0; k < h->batch.n; k++) {
		if (h->ev[k].type != WB_EV_LEVEL)
			continue;
		if (h->ev[k].side == 'B') {
			assert_int_equal(h->ev[k].flags & WB_EVF_BATCH_END, 0);
			assert_int_equal(h->ev[k].seq, 2);
		} else {
			assert_int_equal(h->ev[k].flags & WB_EVF_BATCH_END, WB_EVF_BATCH_END);
			assert_int_equal(h->ev[k].seq, 3);
		}
	}
	e = find_event(h, WB_EV_TRADE);
	assert_non_null(e);
	assert_int_equal(e->price, 1500500);
	assert_int_equal(e->shares, 50);
	assert_int_equal(e->aux, 987654);
	assert_int_equal(e->ref, 0x20);
	assert_int_equal(e->seq, 4);
	assert_int_equal(e->ts_exch, 1493000000000000001ULL);
	e = find_event(h, WB_EV_OTHER);
	assert_non_null(e);
	assert_int_equal(e->side, 'X');
	assert_int_equal(e->price, 1499900);
	assert_int_equal(e->aux, 'Q');
	e = find_event(h, WB_EV_SYSTEM);
	assert_non_null(e);
	assert_int_equal(e->side, 'R');
	assert_int_equal(e->locate, 0);

	struct levels l;
	walk(h, "AAPL", &l);
	assert_int_equal(l.n, 2);
	struct wb_top top;
	int loc = wb_bookset_find(h->proto->books(h->feed), "AAPL");
	assert_int_equal(wb_bookset_read_top(h->proto->books(h->feed), (uint16_t)loc, 8, &top), 0);
	assert_int_equal(top.trading_state, 'T');
	assert_int_equal(top.nbids, 1);
	assert_int_equal(top.bids[0].price, 1500000);
	assert_int_equal(top.bids[0].shares, 300);
	assert_int_equal(top.asks[0].price, 1501000);
	harness_fini(h);
	free(h);
}

/* Readers never see a half-applied IEX event, even across a segment boundary. */
static void test_iex_feed_batch_consistency(void **state)
{
	(void)state;
	struct harness *h = malloc(sizeof(*h));
	struct seg s;
	harness_init(h, &wb_feed_iex_deep, 64);
	struct wb_iex_msg m[2] = { level_msg("MSFT", 'B', 700000, 100, 1), level_msg("MSFT", 'S', 701000, 100, 1) };
	deliver(h, s.buf, deep_segment(&s, m, 2, 9, 1, 0, 100), 0);
	int loc = wb_bookset_find(h->proto->books(h->feed), "MSFT");
	struct wb_top top;

	/* One event moves both sides; its first half ends a segment. */
	m[0] = level_msg("MSFT", 'B', 700000, 0, 0);
	deliver(h, s.buf, deep_segment(&s, m, 1, 9, 3, 64, 101), 0);
	assert_int_equal(wb_bookset_read_top(h->proto->books(h->feed), (uint16_t)loc, 8, &top), 0);
	assert_int_equal(top.nbids, 1); /* still the consistent book */
	assert_int_equal(top.bids[0].price, 700000);

	m[0] = level_msg("MSFT", 'B', 699000, 400, 0);
	m[1] = level_msg("MSFT", 'S', 701000, 0, 1);
	deliver(h, s.buf, deep_segment(&s, m, 2, 9, 4, 96, 102), 0);
	assert_int_equal(wb_bookset_read_top(h->proto->books(h->feed), (uint16_t)loc, 8, &top), 0);
	assert_int_equal(top.nbids, 1);
	assert_int_equal(top.bids[0].price, 699000);
	assert_int_equal(top.bids[0].shares, 400);
	assert_int_equal(top.nasks, 0);
	harness_fini(h);
	free(h);
}

/* Naive reference book for the generated streams: [symbol][side] price -> size. */
#define NSYM 5
#define NPX 16
struct ref_book {
	uint32_t size[NSYM][2][NPX];
};
static const char *const gen_syms[NSYM] = { "AAA", "BBBB", "CC", "DDDDD", "E" };

static struct wb_iex_msg gen_level(struct ref_book *rb, unsigned *seed)
{
	int sym = (int)(rand_r(seed) % NSYM), side = (int)(rand_r(seed) % 2), px = (int)(rand_r(seed) % NPX);
	uint32_t size = rand_r(seed) % 3 == 0 ? 0 : 100 * (1 + rand_r(seed) % 9);
	/* Bids below asks so the generated books never cross. */
	int64_t price = side == 0 ? 100000 + px * 100 : 200000 + px * 100;
	rb->size[sym][side][px] = size;
	return level_msg(gen_syms[sym], side == 0 ? 'B' : 'S', price, size, rand_r(seed) % 4 != 0);
}

static void check_ref(struct harness *h, const struct ref_book *rb)
{
	for (int sym = 0; sym < NSYM; sym++) {
		struct levels l;
		int loc = wb_bookset_find(h->proto->books(h->feed), gen_syms[sym]);
		memset(&l, 0, sizeof(l));
		if (loc > 0)
			wb_bookset_walk_levels(h->proto->books(h->feed), (uint16_t)loc, collect, &l);
		size_t want = 0;
		for (int side = 0; side < 2; side++) {
			for (int px = 0; px < NPX; px++) {
				if (!rb->size[sym][side][px])
					continue;
				want++;
				int64_t price = side == 0 ? 100000 + px * 100 : 200000 + px * 100;
				bool hit = false;
				for (size_t k = 0; k < l.n; k++)
					hit |= l.side[k] == (side ? 'S' : 'B') && l.price[k] == price &&
					       l.shares[k] == rb->size[sym][side][px];
				if (!hit)
					fail_msg("%s side %d price %lld size %u missing", gen_syms[sym], side,
						 (long long)price, rb->size[sym][side][px]);
			}
		}
		assert_int_equal(l.n, want);
	}
}

/* Lines A and B carry the same messages cut into different segments; whichever copy of a
 * sequence arrives first is applied, the other is a duplicate. */
static void test_iex_feed_ab_arbitration(void **state)
{
	(void)state;
	enum { N = 600 };
	static struct wb_iex_msg msgs[N];
	struct ref_book rb;
	unsigned seed = 11;
	memset(&rb, 0, sizeof(rb));
	for (int k = 0; k < N; k++)
		msgs[k] = gen_level(&rb, &seed);

	for (int scenario = 0; scenario < 3; scenario++) {
		struct harness *h = malloc(sizeof(*h));
		if (scenario < 2)
			harness_init(h, &wb_feed_iex_deep, 64);
		else /* A ahead of B at random, gaps held until B fills them */
			harness_init_recovery(h, &wb_feed_iex_deep, 64, 500, 1024);
		int next[2] = { 0, 0 };
		int64_t off[2] = { 0, 0 };
		int dropped_a = 0;
		while (next[0] < N || next[1] < N) {
			int line;
			if (scenario != 1) /* random interleaving */
				line = next[0] >= N ? 1 : next[1] >= N ? 0 : (int)(rand_r(&seed) % 2);
			else /* B leads, A loses every third segment */
				line = next[1] < N && next[1] <= next[0] + 8 ? 1 : 0;
			int n = 1 + (int)(rand_r(&seed) % (line ? 7 : 4));
			if (next[line] + n > N)
				n = N - next[line];
			struct seg s;
			size_t len = deep_segment(&s, &msgs[next[line]], n, 77, next[line] + 1, off[line],
						  1000 + next[line]);
			bool drop = scenario > 0 && line == 0 && rand_r(&seed) % 3 == 0;
			if (!drop)
				deliver(h, s.buf, len, (uint8_t)line);
			else
				dropped_a++;
			next[line] += n;
			off[line] += (int64_t)(len - WB_IEXTP_HDR_LEN);
		}
		assert_int_equal(counter(h, "messages_total", -1), N);
		assert_int_equal(counter(h, "gaps_total", -1), scenario == 2 ? counter(h, "gaps_filled_total", -1) : 0);
		assert_int_equal(counter(h, "offset_mismatches_total", -1), 0);
		uint64_t dups = counter(h, "duplicates_total", 0) + counter(h, "duplicates_total", 1);
		if (scenario == 0)
			assert_int_equal(dups, N);
		else
			assert_true(dropped_a > 0 && dups < N);
		if (scenario == 2) {
			assert_true(counter(h, "reorder_held_segments_total", -1) > 0);
			assert_int_equal(counter(h, "gaps_filled_total", -1), counter(h, "gaps_total", -1));
			assert_int_equal(counter(h, "gaps_declared_total", -1), 0);
		}
		assert_int_equal(counter(h, "packets_total", -2), counter(h, "packets_total", 0) + counter(h, "packets_total", 1));
		check_ref(h, &rb);
		harness_fini(h);
		free(h);
	}
}

/* With a reorder buffer, a gap on line A waits for line B (or a timeout). */
static void test_iex_feed_reorder(void **state)
{
	(void)state;
	struct harness *h = malloc(sizeof(*h));
	struct seg s;
	struct wb_iex_msg m[7];
	for (int k = 0; k < 7; k++)
		m[k] = level_msg("RE", 'B', 1000 + k, (uint32_t)(10 + k), 1);
	const uint64_t t0 = 1000000000ULL, ms = 1000000ULL;

	/* Filled by the other line, with different segment boundaries. */
	harness_init_recovery(h, &wb_feed_iex_deep, 64, 50, 16);
	deliver_at(h, s.buf, deep_segment(&s, &m[0], 2, 5, 1, 0, 10), 0, t0);
	deliver_at(h, s.buf, deep_segment(&s, &m[4], 2, 5, 5, 128, 12), 0, t0 + ms);
	assert_int_equal(counter(h, "gaps_total", -1), 1);
	assert_int_equal(counter(h, "reorder_held_segments_total", -1), 1);
	assert_int_equal(counter(h, "messages_total", -1), 2);
	assert_null(find_event(h, WB_EV_GAP));
	deliver_at(h, s.buf, deep_segment(&s, &m[0], 4, 5, 1, 0, 11), 1, t0 + 2 * ms);
	assert_int_equal(counter(h, "messages_total", -1), 6);
	assert_int_equal(counter(h, "gaps_filled_total", -1), 1);
	assert_int_equal(counter(h, "gaps_declared_total", -1), 0);
	assert_int_equal(counter(h, "duplicates_total", 1), 2);
	struct levels l;
	walk(h, "RE", &l);
	assert_int_equal(l.n, 6);
	/* A heartbeat announcing more opens a gap that data then fills. */
	deliver_at(h, s.buf, heartbeat(&s, WB_IEXTP_PROTO_DEEP, 5, 8, 224, 13), 0, t0 + 3 * ms);
	assert_int_equal(counter(h, "gaps_total", -1), 2);
	deliver_at(h, s.buf, deep_segment(&s, &m[6], 1, 5, 7, 192, 12), 1, t0 + 4 * ms);
	assert_int_equal(counter(h, "gaps_filled_total", -1), 2);
	assert_int_equal(counter(h, "gaps_declared_total", -1), 0);
	harness_fini(h);

	/* Nobody fills it: declared once the data clock has moved past gap_timeout_ms. */
	harness_init_recovery(h, &wb_feed_iex_deep, 64, 50, 16);
	deliver_at(h, s.buf, deep_segment(&s, &m[0], 2, 5, 1, 0, 10), 0, t0);
	deliver_at(h, s.buf, deep_segment(&s, &m[4], 2, 5, 5, 128, 12), 0, t0 + ms);
	deliver_at(h, s.buf, deep_segment(&s, &m[6], 1, 5, 7, 192, 13), 0, t0 + 20 * ms);
	assert_int_equal(counter(h, "messages_total", -1), 2);
	assert_int_equal(counter(h, "gaps_declared_total", -1), 0);
	deliver_at(h, s.buf, heartbeat(&s, WB_IEXTP_PROTO_DEEP, 5, 8, 224, 14), 0, t0 + 60 * ms);
	assert_int_equal(counter(h, "gaps_declared_total", -1), 1);
	assert_int_equal(counter(h, "gap_messages_total", -1), 2);
	assert_int_equal(counter(h, "messages_total", -1), 5);
	const struct wb_event *e = find_event(h, WB_EV_GAP);
	assert_non_null(e);
	assert_int_equal(e->seq, 3);
	assert_int_equal(e->aux, 2);
	harness_fini(h);

	/* The idle clock ends a gap when no datagram comes at all. */
	harness_init_recovery(h, &wb_feed_iex_deep, 64, 50, 16);
	deliver_at(h, s.buf, deep_segment(&s, &m[0], 2, 5, 1, 0, 10), 0, t0);
	deliver_at(h, s.buf, deep_segment(&s, &m[4], 2, 5, 5, 128, 12), 0, t0 + ms);
	h->batch.n = 0;
	h->proto->on_idle(h->feed, 7 * t0, &h->batch);
	h->proto->on_idle(h->feed, 7 * t0 + 40 * ms, &h->batch);
	assert_int_equal(counter(h, "gaps_declared_total", -1), 0);
	h->proto->on_idle(h->feed, 7 * t0 + 60 * ms, &h->batch);
	assert_int_equal(counter(h, "gaps_declared_total", -1), 1);
	assert_int_equal(counter(h, "messages_total", -1), 4);
	assert_non_null(find_event(h, WB_EV_GAP));
	harness_fini(h);

	/* A full buffer gives up the oldest gaps so the stream keeps moving. */
	harness_init_recovery(h, &wb_feed_iex_deep, 64, 50, 2);
	deliver_at(h, s.buf, deep_segment(&s, &m[0], 2, 5, 1, 0, 10), 0, t0);
	deliver_at(h, s.buf, deep_segment(&s, &m[4], 1, 5, 5, 128, 11), 0, t0);
	deliver_at(h, s.buf, deep_segment(&s, &m[5], 1, 5, 7, 192, 12), 0, t0);
	deliver_at(h, s.buf, deep_segment(&s, &m[6], 1, 5, 9, 256, 13), 0, t0);
	assert_int_equal(counter(h, "reorder_full_total", -1), 1);
	assert_int_equal(counter(h, "gaps_declared_total", -1), 3);
	assert_int_equal(counter(h, "gap_messages_total", -1), 4);
	assert_int_equal(counter(h, "messages_total", -1), 5);
	harness_fini(h);
	free(h);
}

static void test_iex_feed_gaps(void **state)
{
	(void)state;
	struct harness *h = malloc(sizeof(*h));
	struct seg s;
	harness_init(h, &wb_feed_iex_deep, 64);
	struct wb_iex_msg m[3] = { level_msg("IBM", 'B', 1000, 1, 1), level_msg("IBM", 'B', 1001, 1, 1),
				   level_msg("IBM", 'B', 1002, 1, 1) };
	deliver(h, s.buf, deep_segment(&s, m, 3, 5, 1, 0, 10), 0);
	/* Sequences 4..6 never arrive. */
	deliver(h, s.buf, deep_segment(&s, m, 2, 5, 7, 192, 12), 0);
	assert_int_equal(counter(h, "gaps_total", -1), 1);
	assert_int_equal(counter(h, "gaps_declared_total", -1), 1);
	assert_int_equal(counter(h, "gap_messages_total", -1), 3);
	const struct wb_event *e = find_event(h, WB_EV_GAP);
	assert_non_null(e);
	assert_int_equal(e->seq, 4);
	assert_int_equal(e->aux, 3);
	e = find_event(h, WB_EV_INTEGRITY);
	assert_non_null(e);
	assert_int_equal(e->side, WB_INT_GAP_DECLARED);
	int loc = wb_bookset_find(h->proto->books(h->feed), "IBM");
	struct wb_top top;
	assert_int_equal(wb_bookset_read_top(h->proto->books(h->feed), (uint16_t)loc, 8, &top), 0);
	assert_int_equal(top.health, WB_HEALTH_STALE);

	/* A heartbeat announcing a later next sequence reveals a gap at the tail. */
	deliver(h, s.buf, heartbeat(&s, WB_IEXTP_PROTO_DEEP, 5, 20, 1000, 13), 1);
	assert_int_equal(counter(h, "heartbeats_total", -1), 1);
	assert_int_equal(counter(h, "gaps_total", -1), 2);
	assert_int_equal(counter(h, "gap_messages_total", -1), 3 + 11);
	/* A heartbeat that agrees with what was applied is quiet. */
	deliver(h, s.buf, heartbeat(&s, WB_IEXTP_PROTO_DEEP, 5, 20, 1000, 14), 0);
	assert_int_equal(counter(h, "gaps_total", -1), 2);
	assert_int_equal(counter(h, "messages_total", -1), 5);

	/* A whole old segment again is a duplicate segment. */
	deliver(h, s.buf, deep_segment(&s, m, 3, 5, 1, 0, 10), 1);
	assert_int_equal(counter(h, "duplicate_segments_total", -1), 1);
	assert_int_equal(counter(h, "duplicates_total", 1), 3);
	assert_int_equal(counter(h, "messages_total", -1), 5);
	/* An in-sequence segment at the wrong stream offset is counted. */
	deliver(h, s.buf, deep_segment(&s, m, 1, 5, 20, 999, 15), 0);
	assert_int_equal(counter(h, "offset_mismatches_total", -1), 1);
	harness_fini(h);
	free(h);
}

/* A restart at sequence 1 under the same session starts a new miniature day: books are
 * cleared, locates kept; the other line's late copies neither restart again nor apply. */
static void test_iex_feed_sequence_restart(void **state)
{
	(void)state;
	struct harness *h = malloc(sizeof(*h));
	struct seg s, old_tail;
	harness_init(h, &wb_feed_iex_deep, 64);
	struct wb_iex_msg m[3] = { level_msg("AA", 'B', 1000, 5, 1), level_msg("BB", 'S', 2000, 6, 1),
				   level_msg("AA", 'S', 3000, 7, 1) };
	deliver(h, s.buf, deep_segment(&s, m, 2, 5, 1, 0, 10), 0);
	size_t tail_len = deep_segment(&old_tail, &m[2], 1, 5, 3, 64, 11);
	deliver(h, old_tail.buf, tail_len, 0);
	int loc_aa = wb_bookset_find(h->proto->books(h->feed), "AA");
	int loc_bb = wb_bookset_find(h->proto->books(h->feed), "BB");

	struct wb_iex_msg r[1] = { level_msg("BB", 'B', 1500, 9, 1) };
	size_t rlen = deep_segment(&s, r, 1, 5, 1, 0, 50);
	deliver(h, s.buf, rlen, 0);
	assert_int_equal(counter(h, "sequence_resets_total", -1), 1);
	const struct wb_event *e = find_event(h, WB_EV_SYSTEM);
	assert_non_null(e);
	assert_int_equal(e->side, 'R');
	assert_int_equal(count_events(h, WB_EV_LEVEL), 3 + 1); /* three removed, one set */
	struct levels l;
	walk(h, "AA", &l);
	assert_int_equal(l.n, 0);
	walk(h, "BB", &l);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.price[0], 1500);
	assert_int_equal(wb_bookset_find(h->proto->books(h->feed), "AA"), loc_aa);
	assert_int_equal(wb_bookset_find(h->proto->books(h->feed), "BB"), loc_bb);

	/* Line B's copy of the restart segment, and its copy of the old day's tail. */
	deliver(h, s.buf, rlen, 1);
	deliver(h, old_tail.buf, tail_len, 1);
	assert_int_equal(counter(h, "sequence_resets_total", -1), 1);
	assert_int_equal(counter(h, "stale_segments_total", -1), 1);
	assert_int_equal(counter(h, "duplicate_segments_total", -1), 1);
	assert_int_equal(counter(h, "gaps_total", -1), 0);
	walk(h, "AA", &l);
	assert_int_equal(l.n, 0);

	/* A new session id also clears. */
	struct wb_iex_msg n1[1] = { level_msg("AA", 'B', 1100, 1, 1) };
	deliver(h, s.buf, deep_segment(&s, n1, 1, 6, 1, 0, 60), 0);
	assert_int_equal(counter(h, "session_changes_total", -1), 1);
	walk(h, "BB", &l);
	assert_int_equal(l.n, 0);
	walk(h, "AA", &l);
	assert_int_equal(l.n, 1);
	harness_fini(h);
	free(h);
}

/* Where a drained batch's events go, for the test to count. */
struct drained {
	uint32_t n, levels, systems, drains;
};

static void drain_count(struct wb_event_batch *b, void *arg)
{
	struct drained *d = arg;
	for (uint32_t i = 0; i < b->n; i++) {
		d->levels += b->ev[i].type == WB_EV_LEVEL;
		d->systems += b->ev[i].type == WB_EV_SYSTEM;
	}
	d->n += b->n;
	d->drains++;
	b->n = 0;
}

/* A restart empties 60 levels in one call into a 16-event batch: the plug-in drains it
 * as it goes and every removal reaches the worker. */
static void test_iex_feed_restart_drains_batch(void **state)
{
	(void)state;
	struct harness *h = malloc(sizeof(*h));
	struct seg s;
	struct drained d = { 0 };
	harness_init(h, &wb_feed_iex_deep, 64);
	int64_t seq = 1;
	for (int k = 0; k < 3; k++) {
		struct wb_iex_msg m[20];
		for (int i = 0; i < 20; i++)
			m[i] = level_msg("AA", 'B', 1000 + 10 * (20 * k + i), 5, 1);
		deliver(h, s.buf, deep_segment(&s, m, 20, 5, seq, (seq - 1) * 64, 10 + k), 0);
		seq += 20;
	}
	struct levels l;
	walk(h, "AA", &l);
	assert_int_equal(l.n, 60);
	h->batch.cap = 16;
	h->batch.drain = drain_count;
	h->batch.drain_arg = &d;
	struct wb_iex_msg r[1] = { level_msg("BB", 'B', 1500, 9, 1) };
	deliver(h, s.buf, deep_segment(&s, r, 1, 5, 1, 0, 50), 0);
	drain_count(&h->batch, &d); /* the worker's flush after the call */
	assert_int_equal(counter(h, "sequence_resets_total", -1), 1);
	assert_int_equal(h->batch.overflow, 0);
	assert_true(d.drains > 4);
	assert_int_equal(d.levels, 60 + 1); /* every removal, then BB's level */
	assert_int_equal(d.systems, 1);
	walk(h, "AA", &l);
	assert_int_equal(l.n, 0);
	harness_fini(h);
	free(h);
}

/* 200 messages held behind a gap reach a 16-event batch in one call when the other line
 * fills it, and a gap declared into a full batch: nothing overflows, all is handed on. */
static void test_iex_feed_held_segments_drain_batch(void **state)
{
	(void)state;
	struct harness *h = malloc(sizeof(*h));
	struct seg s;
	struct drained d = { 0 };
	struct wb_iex_msg m[20];
	const uint64_t t0 = 1000000000ULL, ms = 1000000ULL;

	harness_init_recovery(h, &wb_feed_iex_deep, 64, 50, 64);
	for (int k = 0; k < 20; k++)
		m[k] = level_msg("HD", 'B', 1000 + k, (uint32_t)(10 + k), 1);
	deliver_at(h, s.buf, deep_segment(&s, m, 2, 5, 1, 0, 10), 0, t0);
	for (int j = 0; j < 10; j++) { /* 5..204 held: 3 and 4 are missing */
		int64_t first = 5 + 20 * j;
		deliver_at(h, s.buf, deep_segment(&s, m, 20, 5, first, (first - 1) * 32, 11 + j), 0, t0 + ms);
	}
	assert_int_equal(counter(h, "reorder_held_segments_total", -1), 10);
	h->batch.cap = 16;
	h->batch.drain = drain_count;
	h->batch.drain_arg = &d;
	deliver_at(h, s.buf, deep_segment(&s, m, 2, 5, 3, 64, 30), 1, t0 + 2 * ms);
	drain_count(&h->batch, &d);
	assert_int_equal(h->batch.overflow, 0);
	assert_int_equal(counter(h, "messages_total", -1), 204);
	assert_int_equal(d.levels, 202); /* every update of the call: 3..204 */
	assert_true(d.drains > 10);

	/* a gap declared into a batch one event short of full: drained first */
	deliver_at(h, s.buf, deep_segment(&s, m, 1, 5, 300, 299 * 32, 31), 0, t0 + 3 * ms); /* 205..299 missing */
	h->proto->on_idle(h->feed, 7 * t0, &h->batch);
	d = (struct drained){ 0 };
	h->batch.n = 15;
	h->proto->on_idle(h->feed, 7 * t0 + 60 * ms, &h->batch); /* the idle clock passes 50 ms */
	drain_count(&h->batch, &d);
	assert_int_equal(counter(h, "gaps_declared_total", -1), 1);
	assert_int_equal(h->batch.overflow, 0);
	assert_int_equal(d.n, 15 + 2 + 1); /* what was there, the gap and its integrity event, 300 */
	harness_fini(h);
	free(h);
}

static void test_iex_feed_malformed(void **state)
{
	(void)state;
	struct harness *h = malloc(sizeof(*h));
	struct seg s;
	harness_init(h, &wb_feed_iex_deep, 64);
	struct wb_iex_msg m[2] = { level_msg("XYZ", 'B', 1000, 5, 1), level_msg("XYZ", 'S', 2000, 5, 1) };
	size_t len = deep_segment(&s, m, 2, 5, 1, 0, 10);

	deliver(h, s.buf, len - 1, 0);  /* truncated: payload length past the datagram */
	deliver(h, s.buf, 12, 1);       /* shorter than the header */
	s.buf[0] = 9;
	deliver(h, s.buf, len, 1);      /* bad version */
	s.buf[0] = 1;
	assert_int_equal(counter(h, "malformed_segments_total", 0), 1);
	assert_int_equal(counter(h, "malformed_segments_total", 1), 2);
	assert_int_equal(counter(h, "messages_total", -1), 0);
	assert_int_equal(h->batch.n, 0);

	/* A TOPS segment on a DEEP feed. */
	s.buf[2] = 0x03;
	deliver(h, s.buf, len, 0);
	assert_int_equal(counter(h, "wrong_protocol_segments_total", -1), 1);
	s.buf[2] = 0x04;

	/* An unknown type and a short message are skipped by length; the rest applies. */
	seg_start(&s);
	seg_add(&s, WB_IEX_DEEP, &m[0]);
	memcpy(s.buf + s.len, "\x05\x00Zabcd", 7);
	s.len += 7;
	s.count++;
	memcpy(s.buf + s.len, "\x03\x00" "8\x01\x02", 5);
	s.len += 5;
	s.count++;
	seg_add(&s, WB_IEX_DEEP, &m[1]);
	seg_finish(&s, WB_IEXTP_PROTO_DEEP, 5, 1, 0, 10);
	deliver(h, s.buf, s.len, 0);
	assert_int_equal(counter(h, "unknown_messages_total", -1), 1);
	assert_int_equal(counter(h, "short_messages_total", -1), 1);
	assert_int_equal(counter(h, "messages_total", -1), 2);
	struct levels l;
	walk(h, "XYZ", &l);
	assert_int_equal(l.n, 2);
	/* Sequences still advance past the bad messages. */
	deliver(h, s.buf, deep_segment(&s, m, 1, 5, 5, 0, 11), 0);
	assert_int_equal(counter(h, "gaps_total", -1), 0);
	harness_fini(h);
	free(h);
}

static void test_iex_feed_symbol_table_full(void **state)
{
	(void)state;
	struct harness *h = malloc(sizeof(*h));
	struct seg s;
	harness_init(h, &wb_feed_iex_deep, 4); /* locates 1..3 */
	struct wb_iex_msg m[5] = { level_msg("S1", 'B', 10, 1, 1), level_msg("S2", 'B', 10, 1, 1),
				   level_msg("S3", 'B', 10, 1, 1), level_msg("S4", 'B', 10, 1, 1),
				   level_msg("S1", 'B', 11, 1, 1) };
	deliver(h, s.buf, deep_segment(&s, m, 5, 5, 1, 0, 10), 0);
	assert_int_equal(counter(h, "symbols_total", -1), 3);
	assert_int_equal(counter(h, "symbol_table_full_total", -1), 1);
	assert_int_equal(wb_bookset_find(h->proto->books(h->feed), "S4"), -ENOENT);
	struct levels l;
	walk(h, "S1", &l);
	assert_int_equal(l.n, 2);
	harness_fini(h);
	free(h);

	/* A max_symbols the book cannot hold is refused at create. */
	struct wb_feed_conf fc = { .max_symbols = 1, .max_levels = 16 };
	void *f;
	assert_int_equal(wb_feed_iex_deep.create(&fc, 0, -1, &f), -EINVAL);
}

static struct wb_iex_msg quote(const char *sym, uint32_t bsz, int64_t bid, int64_t ask, uint32_t asz)
{
	struct wb_iex_msg m = sym_msg('Q', sym);
	m.u.quote.bid_size = bsz;
	m.u.quote.bid = bid;
	m.u.quote.ask = ask;
	m.u.quote.ask_size = asz;
	return m;
}

static size_t tops_segment(struct seg *s, const struct wb_iex_msg *m, int n, int64_t first_seq)
{
	seg_start(s);
	for (int k = 0; k < n; k++)
		seg_add(s, WB_IEX_TOPS, &m[k]);
	seg_finish(s, WB_IEXTP_PROTO_TOPS, 8, first_seq, 0, first_seq);
	return s->len;
}

/* TOPS: each quote replaces the previous best on each side. */
static void test_iex_tops_quotes(void **state)
{
	(void)state;
	struct harness *h = malloc(sizeof(*h));
	struct seg s;
	struct levels l;
	harness_init(h, &wb_feed_iex_tops, 64);
	struct wb_iex_msg q = quote("ATSG", 18773, 241900, 242500, 60677);
	q.u.quote.quote_flags = 0x40;
	deliver(h, s.buf, tops_segment(&s, &q, 1, 1), 0);
	const struct wb_event *e = find_event(h, WB_EV_QUOTE);
	assert_non_null(e);
	assert_int_equal(e->price, 241900);
	assert_int_equal(e->aux, 242500);
	assert_int_equal(e->shares, 18773);
	assert_int_equal(e->level_shares, 60677);
	assert_int_equal(e->ref, 0x40);
	assert_int_equal(h->ev[h->batch.n - 1].flags & WB_EVF_BATCH_END, WB_EVF_BATCH_END);
	walk(h, "ATSG", &l);
	assert_int_equal(l.n, 2);

	q = quote("ATSG", 100, 242000, 242500, 500);
	deliver(h, s.buf, tops_segment(&s, &q, 1, 2), 0);
	walk(h, "ATSG", &l);
	assert_int_equal(l.n, 2);
	for (size_t k = 0; k < l.n; k++) {
		if (l.side[k] == 'B') {
			assert_int_equal(l.price[k], 242000);
			assert_int_equal(l.shares[k], 100);
		} else {
			assert_int_equal(l.price[k], 242500);
			assert_int_equal(l.shares[k], 500);
		}
	}
	/* An empty bid side removes the level; read_top agrees. */
	q = quote("ATSG", 0, 0, 242600, 300);
	deliver(h, s.buf, tops_segment(&s, &q, 1, 3), 0);
	walk(h, "ATSG", &l);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.side[0], 'S');
	assert_int_equal(l.price[0], 242600);
	struct wb_top top;
	int loc = wb_bookset_find(h->proto->books(h->feed), "ATSG");
	assert_int_equal(wb_bookset_read_top(h->proto->books(h->feed), (uint16_t)loc, 8, &top), 0);
	assert_int_equal(top.nbids, 0);
	assert_int_equal(top.nasks, 1);
	assert_int_equal(top.asks[0].price, 242600);
	/* A price level update is not part of TOPS. */
	struct wb_iex_msg lv = level_msg("ATSG", 'B', 1, 1, 1);
	uint8_t raw[64];
	size_t ll = wb_iex_encode(WB_IEX_DEEP, &lv, raw);
	seg_start(&s);
	s.buf[s.len] = (uint8_t)ll;
	s.buf[s.len + 1] = 0;
	memcpy(s.buf + s.len + 2, raw, ll);
	s.len += 2 + ll;
	s.count = 1;
	seg_finish(&s, WB_IEXTP_PROTO_TOPS, 8, 4, 0, 4);
	deliver(h, s.buf, s.len, 0);
	assert_int_equal(counter(h, "unknown_messages_total", -1), 1);
	assert_int_equal(counter(h, "quote_update_messages_total", -1), 3);
	harness_fini(h);
	free(h);
}

static void test_iex_feed_counters_and_idle(void **state)
{
	(void)state;
	struct harness *h = malloc(sizeof(*h));
	struct seg s;
	harness_init(h, &wb_feed_iex_deep, 64);
	struct wb_counter c[64];
	size_t n = h->proto->counters(h->feed, c, 64);
	assert_true(n > 20 && n <= 64);
	for (size_t k = 0; k < n; k++) {
		size_t len = strlen(c[k].name);
		assert_true(len > 6 && strcmp(c[k].name + len - 6, "_total") == 0);
		assert_non_null(c[k].help);
	}
	/* Fewer slots than counters: the count is still reported, nothing written past max. */
	assert_int_equal(h->proto->counters(h->feed, c, 2), n);

	/* Silence is timed on the idle clock: pcap-era receive stamps do not matter. */
	struct wb_rx_meta rx = { .ts_recv = 1493000000000000000ULL, .line = 1 };
	const uint64_t t0 = 5000000000ULL;
	heartbeat(&s, WB_IEXTP_PROTO_DEEP, 5, 1, 0, 1);
	h->batch.n = 0;
	h->proto->on_datagram(h->feed, s.buf, (uint32_t)s.len, &rx, &h->batch);
	h->proto->on_idle(h->feed, t0, &h->batch);
	h->proto->on_idle(h->feed, t0 + 50000000ULL, &h->batch);
	assert_int_equal(counter(h, "line_silences_total", -1), 0);
	h->proto->on_idle(h->feed, t0 + 150000000ULL, &h->batch);
	h->proto->on_idle(h->feed, t0 + 250000000ULL, &h->batch);
	assert_int_equal(counter(h, "line_silences_total", -1), 1); /* once per silence; line A never spoke */
	h->proto->on_datagram(h->feed, s.buf, (uint32_t)s.len, &rx, &h->batch);
	h->proto->on_idle(h->feed, t0 + 300000000ULL, &h->batch);
	h->proto->on_idle(h->feed, t0 + 350000000ULL, &h->batch);
	assert_int_equal(counter(h, "line_silences_total", -1), 1);
	h->proto->on_idle(h->feed, t0 + 450000000ULL, &h->batch);
	assert_int_equal(counter(h, "line_silences_total", -1), 2);
	assert_int_equal(h->batch.n, 0);
	assert_string_equal(wb_feed_iex_deep.name, "iex-deep");
	assert_string_equal(wb_feed_iex_tops.name, "iex-tops");
	harness_fini(h);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iex_feed_deep_messages),
		cmocka_unit_test(test_iex_feed_batch_consistency),
		cmocka_unit_test(test_iex_feed_ab_arbitration),
		cmocka_unit_test(test_iex_feed_gaps),
		cmocka_unit_test(test_iex_feed_reorder),
		cmocka_unit_test(test_iex_feed_sequence_restart),
		cmocka_unit_test(test_iex_feed_restart_drains_batch),
		cmocka_unit_test(test_iex_feed_held_segments_drain_batch),
		cmocka_unit_test(test_iex_feed_malformed),
		cmocka_unit_test(test_iex_feed_symbol_table_full),
		cmocka_unit_test(test_iex_tops_quotes),
		cmocka_unit_test(test_iex_feed_counters_and_idle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
