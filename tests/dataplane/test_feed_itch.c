/* The ITCH/MoldUDP64 plug-in without DPDK: sequencing across lines A and B, a gap the other
 * line fills, duplicates never applied twice, a new session clearing the day's books, and
 * another session's noise ignored. Packets are built with the project's encoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "feed.h"
#include "itch.h"
#include "mold.h"
#include "wire.h"

extern const struct wb_feed_proto wb_feed_itch_mold;

static struct wb_event evs[4096];
static struct wb_event_batch batch = { evs, 0, 4096, 0 };

static uint32_t packet_at(uint8_t *buf, const char *session, uint64_t seq, uint16_t n, uint16_t locate);

/* One Mold packet carrying n messages from seq: add orders ref = seq, 100 shares at 10.00. */
static uint32_t packet(uint8_t *buf, const char *session, uint64_t seq, uint16_t n)
{
	return packet_at(buf, session, seq, n, 1);
}

/* The same for another locate. */
static uint32_t packet_at(uint8_t *buf, const char *session, uint64_t seq, uint16_t n, uint16_t locate)
{
	memcpy(buf, session, WB_MOLD_SESSION_LEN);
	wb_put_be64(buf + 10, seq);
	wb_put_be16(buf + 18, n);
	uint32_t off = WB_MOLD_HDR_LEN;
	for (uint16_t i = 0; i < n; i++) {
		struct wb_itch_msg m = { .type = 'A', .locate = locate, .ts = 34200000000000ULL + seq + i };
		m.u.add.ref = seq + i;
		m.u.add.side = 'B';
		m.u.add.shares = 100;
		memcpy(m.u.add.stock, "TEST    ", 8);
		m.u.add.price = 100000;
		memset(m.u.add.mpid, ' ', 4);
		size_t l = wb_itch_encode(&m, buf + off + 2);
		wb_put_be16(buf + off, (uint16_t)l);
		off += 2 + (uint32_t)l;
	}
	return off;
}

static uint32_t directory_of(uint8_t *buf, const char *session, uint64_t seq, uint16_t locate, const char *stock);

/* The stock directory names locate 1 so the book is findable. */
static uint32_t directory(uint8_t *buf, const char *session, uint64_t seq)
{
	return directory_of(buf, session, seq, 1, "TEST    ");
}

static uint32_t directory_of(uint8_t *buf, const char *session, uint64_t seq, uint16_t locate, const char *stock)
{
	memcpy(buf, session, WB_MOLD_SESSION_LEN);
	wb_put_be64(buf + 10, seq);
	wb_put_be16(buf + 18, 1);
	struct wb_itch_msg m = { .type = 'R', .locate = locate, .ts = 1 };
	memcpy(m.u.dir.stock, stock, 8);
	m.u.dir.round_lot_size = 100;
	size_t l = wb_itch_encode(&m, buf + WB_MOLD_HDR_LEN + 2);
	wb_put_be16(buf + WB_MOLD_HDR_LEN, (uint16_t)l);
	return WB_MOLD_HDR_LEN + 2 + (uint32_t)l;
}

static uint64_t counter(void *st, const char *name, int line)
{
	struct wb_counter cs[128];
	size_t n = wb_feed_itch_mold.counters(st, cs, 128);
	for (size_t i = 0; i < n && i < 128; i++)
		if (cs[i].line == line && !strcmp(cs[i].name, name))
			return cs[i].value;
	fail_msg("no counter %s", name);
	return 0;
}

static void feed(void *st, const uint8_t *p, uint32_t len, uint8_t line)
{
	struct wb_rx_meta m = { .ts_recv = 1, .line = line, .flags = WB_RX_F_REPLAY };
	wb_feed_itch_mold.on_datagram(st, p, len, &m, &batch);
	batch.n = 0;
}

static uint64_t live_orders(void *st)
{
	struct wb_bookset *bs = wb_feed_itch_mold.books(st);
	struct wb_bookset_stats s;
	wb_bookset_stats(bs, &s);
	return s.live_orders;
}

/* The plug-in over a 4,096-order book; order_ring 0 lets the book size its ring. */
static void *create_ring(uint32_t order_ring)
{
	struct wb_feed_conf fc;
	memset(&fc, 0, sizeof(fc));
	fc.max_orders = 4096;
	fc.order_ring = order_ring;
	fc.max_levels = 1024;
	fc.max_symbols = 16;
	fc.snapshot_depth = 10;
	fc.reorder_buffer = 64;
	fc.gap_timeout_ms = 50;
	void *st = NULL;
	assert_int_equal(wb_feed_itch_mold.create(&fc, 0, -1, &st), 0);
	return st;
}

static void *create(void)
{
	return create_ring(0);
}

static void test_arbitration_and_gap(void **state)
{
	(void)state;
	void *st = create();
	uint8_t p[4096];
	feed(st, p, directory(p, "DAY0000001", 1), 0);
	feed(st, p, directory(p, "DAY0000001", 1), 1); /* B's copy: a duplicate */
	feed(st, p, packet(p, "DAY0000001", 2, 5), 0);  /* 2..6 on A */
	feed(st, p, packet(p, "DAY0000001", 7, 5), 0);  /* 7..11 on A; B lost it (below) */
	feed(st, p, packet(p, "DAY0000001", 12, 5), 1); /* 12..16 reach B first: B wins them */
	feed(st, p, packet(p, "DAY0000001", 2, 5), 1);  /* B's late copies: duplicates */
	assert_int_equal(counter(st, "messages_total", -1), 16);
	assert_int_equal(live_orders(st), 15);
	/* A loses 17..21; B carries them after A's 22..26: held, then filled by B. */
	feed(st, p, packet(p, "DAY0000001", 22, 5), 0);
	assert_int_equal(counter(st, "messages_total", -1), 16);
	assert_int_equal(counter(st, "reorder_held_packets_total", -1), 1);
	feed(st, p, packet(p, "DAY0000001", 17, 5), 1);
	assert_int_equal(counter(st, "messages_total", -1), 26);
	assert_int_equal(counter(st, "next_sequence", -1), 27);
	assert_int_equal(counter(st, "gaps_declared_total", -1), 0);
	assert_int_equal(live_orders(st), 25);
	assert_int_equal(counter(st, "line_duplicate_packets_total", 1), 2);
	struct wb_gap_record g[4];
	assert_int_equal(wb_feed_itch_mold.gaps(st, g, 4), 1);
	assert_int_equal(g[0].first_seq, 17);
	assert_int_equal(g[0].count, 5);
	assert_int_equal(g[0].repair, WB_GAP_OTHER_LINE);
	wb_feed_itch_mold.destroy(st);
}

static void test_new_session_clears_and_noise_ignored(void **state)
{
	(void)state;
	void *st = create();
	uint8_t p[4096];
	feed(st, p, directory(p, "DAY0000001", 1), 0);
	feed(st, p, packet(p, "DAY0000001", 2, 10), 0);
	assert_int_equal(live_orders(st), 10);
	/* Another session's packet not at sequence 1 is noise: counted, nothing reset. */
	feed(st, p, packet(p, "GARBAGE999", 500, 3), 0);
	assert_int_equal(counter(st, "line_foreign_session_packets_total", 0), 1);
	assert_int_equal(live_orders(st), 10);
	assert_int_equal(counter(st, "session_changes_total", -1), 0);
	/* The next day starts at 1: the old day's orders are gone, sequencing restarts. */
	feed(st, p, directory(p, "DAY0000002", 1), 0);
	assert_int_equal(counter(st, "session_changes_total", -1), 1);
	assert_int_equal(live_orders(st), 0);
	feed(st, p, packet(p, "DAY0000002", 2, 3), 0);
	assert_int_equal(live_orders(st), 3);
	assert_int_equal(counter(st, "next_sequence", -1), 5);
	wb_feed_itch_mold.destroy(st);
}

static void test_declared_at_end_of_input(void **state)
{
	(void)state;
	void *st = create();
	uint8_t p[4096];
	feed(st, p, directory(p, "DAY0000001", 1), 0);
	feed(st, p, packet(p, "DAY0000001", 5, 2), 0); /* 2..4 never come */
	wb_feed_itch_mold.on_idle(st, UINT64_MAX, &batch);
	int gap_events = 0;
	for (uint32_t i = 0; i < batch.n; i++)
		gap_events += evs[i].type == WB_EV_GAP && evs[i].seq == 2 && evs[i].aux == 3;
	batch.n = 0;
	assert_int_equal(gap_events, 1);
	assert_int_equal(counter(st, "gap_messages_lost_total", -1), 3);
	assert_int_equal(counter(st, "messages_total", -1), 3);
	struct wb_top top;
	wb_bookset_publish(wb_feed_itch_mold.books(st)); /* as the worker does after each turn */
	assert_int_equal(wb_bookset_read_top(wb_feed_itch_mold.books(st), 1, 10, &top), 0);
	assert_int_equal(top.health, WB_HEALTH_STALE);
	wb_feed_itch_mold.destroy(st);
}

/* book.order_ring reaches the book the plug-in creates: 65,536 slots instead of the
 * 16,384 (4 x max_orders) of the default, 16 bytes each. */
static void test_order_ring_reaches_the_book(void **state)
{
	(void)state;
	void *dflt = create(), *big = create_ring(65536);
	struct wb_bookset_stats a, b;

	wb_bookset_stats(wb_feed_itch_mold.books(dflt), &a);
	wb_bookset_stats(wb_feed_itch_mold.books(big), &b);
	assert_int_equal(b.memory_bytes - a.memory_bytes, (65536 - 16384) * 16);
	wb_feed_itch_mold.destroy(dflt);
	wb_feed_itch_mold.destroy(big);
}

/* Where a drained batch's events go: in order, for the test to check. */
struct drained {
	struct wb_event ev[1024];
	uint32_t n, drains;
};

static void drain_to(struct wb_event_batch *b, void *arg)
{
	struct drained *d = arg;
	assert_true(d->n + b->n <= 1024);
	memcpy(d->ev + d->n, b->ev, b->n * sizeof(*b->ev));
	d->n += b->n;
	d->drains++;
	b->n = 0;
}

/* A 32-event batch draining into a struct drained, and replay rx metadata: what the
 * drain tests hand the plug-in. */
struct rig {
	struct wb_event small[32];
	struct drained d;
	struct wb_event_batch b;
	struct wb_rx_meta m;
};

static struct rig *rig_new(void)
{
	static struct rig r;
	memset(&r, 0, sizeof(r));
	r.b = (struct wb_event_batch){ .ev = r.small, .cap = 32, .drain = drain_to, .drain_arg = &r.d };
	r.m = (struct wb_rx_meta){ .ts_recv = 1, .line = 0, .flags = WB_RX_F_REPLAY };
	return &r;
}

/* A gap filled after 40 packets were held releases 200 messages in one call, more events
 * than the 32-event batch holds: the plug-in drains it between packets and loses none. */
static void test_held_packets_drain_the_batch(void **state)
{
	(void)state;
	void *st = create();
	uint8_t p[4096];
	struct rig *r = rig_new();

	feed(st, p, directory(p, "DAY0000001", 1), 0);
	for (uint64_t seq = 7; seq < 7 + 40 * 5; seq += 5) /* 2..6 lost: everything after is held */
		feed(st, p, packet(p, "DAY0000001", seq, 5), 0);
	assert_int_equal(counter(st, "messages_total", -1), 1);
	wb_feed_itch_mold.on_datagram(st, p, packet(p, "DAY0000001", 2, 5), &r->m, &r->b);
	drain_to(&r->b, &r->d); /* the worker's flush at the end of the call */
	assert_int_equal(r->b.overflow, 0);
	assert_true(r->d.drains > 2);
	assert_int_equal(counter(st, "messages_total", -1), 206);
	assert_int_equal(r->d.n, 205); /* one add event per message, 2..206 */
	for (uint32_t i = 0; i < r->d.n; i++) {
		assert_int_equal(r->d.ev[i].type, WB_EV_ORDER_ADD);
		assert_int_equal(r->d.ev[i].seq, 2 + i);
	}
	assert_int_equal(live_orders(st), 205);
	wb_feed_itch_mold.destroy(st);
}

/* A gap declared into a batch one event short of full: drained first, both its events kept. */
static void test_gap_into_full_batch(void **state)
{
	(void)state;
	void *st = create();
	uint8_t p[4096];
	static struct wb_event small[4];
	static struct drained d;
	struct wb_event_batch b = { .ev = small, .cap = 4, .drain = drain_to, .drain_arg = &d };

	feed(st, p, directory(p, "DAY0000001", 1), 0);
	feed(st, p, packet(p, "DAY0000001", 5, 2), 0); /* 2..4 never come */
	d.n = 0;
	b.n = 3;
	wb_feed_itch_mold.on_idle(st, UINT64_MAX, &b);
	drain_to(&b, &d);
	assert_int_equal(b.overflow, 0);
	assert_int_equal(counter(st, "gaps_declared_total", -1), 1);
	int gaps = 0, integrity = 0;
	for (uint32_t i = 0; i < d.n; i++) {
		gaps += d.ev[i].type == WB_EV_GAP;
		integrity += d.ev[i].type == WB_EV_INTEGRITY && d.ev[i].side == WB_INT_GAP_DECLARED;
	}
	assert_int_equal(gaps, 1);
	assert_int_equal(integrity, 1);
	wb_feed_itch_mold.destroy(st);
}

/* With a symbol filter, a drain in the middle of released packets must not let an
 * unlisted symbol's events through: the filter looks at each packet's events after the
 * room for them was made. */
static void test_filter_holds_across_drains(void **state)
{
	(void)state;
	void *st = create();
	uint8_t p[4096];
	struct rig *r = rig_new();
	const char keep[1][WB_SYMBOL_LEN] = { "TEST" };

	assert_int_equal(wb_feed_itch_mold.set_symbol_filter(st, keep, 1), 0);
	feed(st, p, directory(p, "DAY0000001", 1), 0);
	feed(st, p, directory_of(p, "DAY0000001", 2, 2, "OTHER   "), 0);
	/* 3..7 lost; then packets alternate between the kept and the unlisted symbol */
	for (uint64_t seq = 8, k = 0; k < 20; seq += 5, k++)
		feed(st, p, packet_at(p, "DAY0000001", seq, 5, (uint16_t)(1 + (k & 1))), 0);
	r->d.n = 0;
	wb_feed_itch_mold.on_datagram(st, p, packet(p, "DAY0000001", 3, 5), &r->m, &r->b);
	drain_to(&r->b, &r->d);
	assert_int_equal(r->b.overflow, 0);
	assert_int_equal(counter(st, "messages_total", -1), 107);
	assert_int_equal(r->d.n, 5 + 50); /* 3..7 and the kept symbol's ten packets */
	for (uint32_t i = 0; i < r->d.n; i++)
		assert_int_equal(r->d.ev[i].locate, 1);
	wb_feed_itch_mold.destroy(st);
}

/* All of the plug-in's counter values, in their order. */
static size_t counters_all(void *st, uint64_t *v, size_t max)
{
	struct wb_counter cs[128];
	size_t n = wb_feed_itch_mold.counters(st, cs, 128);
	for (size_t i = 0; i < n && i < 128 && i < max; i++)
		v[i] = cs[i].value;
	return n;
}

/* The worker's hint (prefetch_datagram, the next packet before this one is processed):
 * on the real next packet, every truncation of it, a heartbeat, a foreign session and
 * random bytes, each in an exact-size buffer (ASan sees any read past it), it applies
 * nothing, counts nothing and consumes nothing: the packet still applies in full after. */
static void test_hint_changes_nothing(void **state)
{
	(void)state;
	void *st = create();
	uint8_t buf[2048];
	uint64_t before[128], after[128];

	feed(st, buf, directory(buf, "DAY0000001", 1), 0);
	feed(st, buf, packet(buf, "DAY0000001", 2, 10), 0);
	assert_int_equal(live_orders(st), 10);
	size_t nc = counters_all(st, before, 128);

	uint32_t len = packet(buf, "DAY0000001", 12, 20);
	for (uint32_t cut = 0; cut <= len; cut++) {
		uint8_t *p = malloc(cut ? cut : 1);
		assert_non_null(p);
		memcpy(p, buf, cut);
		wb_feed_itch_mold.prefetch_datagram(st, p, cut);
		free(p);
	}
	uint8_t hb[WB_MOLD_HDR_LEN];
	memcpy(hb, "DAY0000001", WB_MOLD_SESSION_LEN);
	wb_put_be64(hb + 10, 40);
	wb_put_be16(hb + 18, WB_MOLD_HEARTBEAT);
	wb_feed_itch_mold.prefetch_datagram(st, hb, sizeof(hb));
	uint8_t other[2048];
	wb_feed_itch_mold.prefetch_datagram(st, other, packet(other, "OTHER00001", 12, 20));
	/* blocks that frame well but do not decode: a short add, an unknown type, an empty one */
	uint8_t bad[WB_MOLD_HDR_LEN + 7 + 5 + 2];
	memcpy(bad, "DAY0000001", WB_MOLD_SESSION_LEN);
	wb_put_be64(bad + 10, 12);
	wb_put_be16(bad + 18, 3);
	wb_put_be16(bad + WB_MOLD_HDR_LEN, 5);
	memcpy(bad + WB_MOLD_HDR_LEN + 2, "A\x00\x01\x00\x00", 5);
	wb_put_be16(bad + WB_MOLD_HDR_LEN + 7, 3);
	memcpy(bad + WB_MOLD_HDR_LEN + 9, "z\x00\x01", 3);
	wb_put_be16(bad + WB_MOLD_HDR_LEN + 12, 0);
	wb_feed_itch_mold.prefetch_datagram(st, bad, sizeof(bad));
	for (int k = 0; k < 64; k++) {
		uint32_t n = 1 + (uint32_t)(k * 37) % 300;
		uint8_t *p = malloc(n);
		assert_non_null(p);
		for (uint32_t j = 0; j < n; j++)
			p[j] = (uint8_t)(j * 131 + k * 7);
		wb_feed_itch_mold.prefetch_datagram(st, p, n);
		free(p);
	}

	assert_int_equal(counters_all(st, after, 128), nc);
	assert_memory_equal(before, after, (nc < 128 ? nc : 128) * sizeof(uint64_t));
	assert_int_equal(live_orders(st), 10);
	feed(st, buf, len, 0);
	assert_int_equal(live_orders(st), 30);
	wb_feed_itch_mold.destroy(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arbitration_and_gap),
		cmocka_unit_test(test_new_session_clears_and_noise_ignored),
		cmocka_unit_test(test_declared_at_end_of_input),
		cmocka_unit_test(test_order_ring_reaches_the_book),
		cmocka_unit_test(test_held_packets_drain_the_batch),
		cmocka_unit_test(test_gap_into_full_batch),
		cmocka_unit_test(test_filter_holds_across_drains),
		cmocka_unit_test(test_hint_changes_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
