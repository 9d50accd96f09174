/* Book semantics, one message class at a time: book effect, events, integrity, policies,
 * operator requests, full tables, price-level books. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "book_fixture.h"

#define LOC 7

static int setup_flag(void **state)
{
	static struct fx f;
	struct wb_itch_msg r = msg_dir(LOC, "AAPL");

	if (fx_init(&f, 64, 32, 16, WB_POLICY_FLAG))
		return -1;
	fx_apply(&f, &r);
	*state = &f;
	return 0;
}

static int setup_freeze(void **state)
{
	static struct fx f;
	struct wb_itch_msg r = msg_dir(LOC, "MSFT");

	if (fx_init(&f, 64, 32, 16, WB_POLICY_FREEZE))
		return -1;
	fx_apply(&f, &r);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	wb_bookset_destroy(f->bs);
	return 0;
}

static void apply_ok(struct fx *f, struct wb_itch_msg m)
{
	assert_int_equal(fx_apply(f, &m), 0);
}

static struct wb_top top_of(struct fx *f, uint16_t loc)
{
	struct wb_top t;

	wb_bookset_publish(f->bs);
	assert_int_equal(wb_bookset_read_top(f->bs, loc, WB_TOP_MAX_DEPTH, &t), 0);
	return t;
}

static void assert_level(const struct wb_level *l, int64_t price, uint64_t shares, uint32_t orders)
{
	assert_int_equal(l->price, price);
	assert_int_equal(l->shares, shares);
	assert_int_equal(l->orders, orders);
}

/* Only the last event of a message carries BATCH_END. */
static void assert_batch_end(const struct fx *f)
{
	assert_true(f->batch.n > 0);
	for (uint32_t i = 0; i + 1 < f->batch.n; i++)
		assert_false(f->ev[i].flags & WB_EVF_BATCH_END);
	assert_true(f->ev[f->batch.n - 1].flags & WB_EVF_BATCH_END);
}

struct qwalk {
	uint64_t refs[16];
	uint32_t shares[16];
	size_t n;
};

static void collect_order(void *arg, const struct wb_order_info *o)
{
	struct qwalk *q = arg;

	if (q->n < 16) {
		q->refs[q->n] = o->ref;
		q->shares[q->n] = o->shares;
	}
	q->n++;
}

static struct qwalk queue_at(struct fx *f, char side, int64_t price)
{
	struct qwalk q = { .n = 0 };

	size_t visited = wb_bookset_walk_orders(f->bs, LOC, side, price, collect_order, &q);

	assert_int_equal(visited, q.n);
	return q;
}

static void test_book_symbol_directory(void **state)
{
	struct fx *f = *state;
	struct wb_symbol_stats st;
	struct wb_itch_msg r = msg_dir(9, "BRK B");

	assert_int_equal(wb_bookset_find(f->bs, "AAPL"), LOC);
	assert_int_equal(wb_bookset_find(f->bs, "AAPL    "), LOC);
	assert_int_equal(wb_bookset_find(f->bs, "AAP"), -ENOENT);
	assert_int_equal(fx_apply(f, &r), 0);
	assert_int_equal(f->batch.n, 1);
	assert_int_equal(f->ev[0].type, WB_EV_SYMBOL);
	assert_memory_equal(&f->ev[0].aux, "BRK B   ", 8);
	assert_int_equal(f->ev[0].shares, 100);
	assert_int_equal(wb_bookset_find(f->bs, "BRK B"), 9);
	assert_int_equal(wb_bookset_next_symbol(f->bs, 0), LOC);
	assert_int_equal(wb_bookset_next_symbol(f->bs, LOC + 1), 9);
	assert_int_equal(wb_bookset_next_symbol(f->bs, 10), -ENOENT);
	struct wb_top t;
	assert_int_equal(wb_bookset_read_top(f->bs, 3, 4, &t), -ENOENT);
	t = top_of(f, 9);
	assert_string_equal(t.stock, "BRK B");
	assert_int_equal(t.trading_state, ' ');
	assert_int_equal(wb_bookset_symbol_stats(f->bs, 9, &st), 0);
	assert_string_equal(st.stock, "BRK B");
}

static void test_book_add_builds_levels(void **state)
{
	struct fx *f = *state;
	struct wb_top t;

	apply_ok(f, msg_add(LOC, 1, 'B', 100, 1000000));
	assert_int_equal(f->batch.n, 1);
	const struct wb_event *e = &f->ev[0];
	assert_int_equal(e->type, WB_EV_ORDER_ADD);
	assert_int_equal(e->ref, 1);
	assert_int_equal(e->side, 'B');
	assert_int_equal(e->price, 1000000);
	assert_int_equal(e->shares, 100);
	assert_int_equal(e->level_shares, 100);
	assert_int_equal(e->level_orders, 1);
	assert_int_equal(e->locate, LOC);
	assert_int_equal(e->feed, 3);
	assert_int_equal(e->seq, f->seq);
	assert_int_equal(e->ts_exch, f->ts);
	assert_int_equal(e->ts_recv, 1700000000000000000ull + f->seq);
	assert_int_equal(e->aux, 0);
	assert_batch_end(f);

	/* an order book is read live: the order is visible before any publish */
	assert_int_equal(wb_bookset_read_top(f->bs, LOC, 8, &t), 0);
	assert_int_equal(t.nbids, 1);
	assert_level(&t.bids[0], 1000000, 100, 1);
	assert_int_equal(t.seq, f->seq);

	apply_ok(f, msg_add(LOC, 2, 'B', 200, 1010000));
	apply_ok(f, msg_add(LOC, 3, 'B', 50, 1010000));
	assert_int_equal(f->ev[0].level_shares, 250);
	assert_int_equal(f->ev[0].level_orders, 2);
	apply_ok(f, msg_add(LOC, 4, 'S', 300, 1030000));
	apply_ok(f, msg_add(LOC, 5, 'S', 10, 1020000));

	struct wb_itch_msg fm = msg_add(LOC, 6, 'S', 10, 1040000);
	fm.type = 'F';
	memcpy(fm.u.add.mpid, "GSCO", 4);
	apply_ok(f, fm);
	assert_memory_equal(&f->ev[0].aux, "GSCO", 4);

	t = top_of(f, LOC);
	assert_int_equal(t.nbids, 2);
	assert_int_equal(t.nasks, 3);
	assert_level(&t.bids[0], 1010000, 250, 2);
	assert_level(&t.bids[1], 1000000, 100, 1);
	assert_level(&t.asks[0], 1020000, 10, 1);
	assert_level(&t.asks[1], 1030000, 300, 1);
	assert_level(&t.asks[2], 1040000, 10, 1);
	assert_int_equal(t.seq, f->seq);
	assert_int_equal(t.ts_exch, f->ts);
	assert_int_equal(t.health, WB_HEALTH_OK);
	/* a shallower read gets only what it asked for */
	assert_int_equal(wb_bookset_read_top(f->bs, LOC, 1, &t), 0);
	assert_int_equal(t.nasks, 1);

	struct qwalk q = queue_at(f, 'B', 1010000);
	assert_int_equal(q.n, 2);
	assert_int_equal(q.refs[0], 2);
	assert_int_equal(q.refs[1], 3);

	struct wb_bookset_stats bst;
	wb_bookset_stats(f->bs, &bst);
	assert_int_equal(bst.live_orders, 6);
	assert_int_equal(bst.live_levels, 5);
	assert_int_equal(bst.integrity_total, 0);
	assert_true(bst.memory_bytes > 64 * 32);
}

static void test_book_execution_at_order_price(void **state)
{
	struct fx *f = *state;

	apply_ok(f, msg_add(LOC, 10, 'S', 300, 2000000));
	apply_ok(f, msg_add(LOC, 11, 'S', 100, 2000000));
	apply_ok(f, msg_exec(LOC, 10, 120, 777));
	assert_int_equal(f->batch.n, 1);
	assert_int_equal(f->ev[0].type, WB_EV_ORDER_EXEC);
	assert_int_equal(f->ev[0].ref, 10);
	assert_int_equal(f->ev[0].price, 2000000);
	assert_int_equal(f->ev[0].shares, 120);
	assert_int_equal(f->ev[0].aux, 777);
	assert_int_equal(f->ev[0].side, 'S');
	assert_int_equal(f->ev[0].level_shares, 280);
	assert_int_equal(f->ev[0].level_orders, 2);
	assert_batch_end(f);

	/* executing the rest removes the order */
	apply_ok(f, msg_exec(LOC, 10, 180, 778));
	assert_int_equal(f->ev[0].level_shares, 100);
	assert_int_equal(f->ev[0].level_orders, 1);
	struct qwalk q = queue_at(f, 'S', 2000000);
	assert_int_equal(q.n, 1);
	assert_int_equal(q.refs[0], 11);
	apply_ok(f, msg_exec(LOC, 11, 100, 779));
	assert_int_equal(f->ev[0].level_shares, 0);
	assert_int_equal(f->ev[0].level_orders, 0);
	struct wb_top t = top_of(f, LOC);
	assert_int_equal(t.nasks, 0);
	/* the reference is gone: executing it again is an unknown order */
	apply_ok(f, msg_exec(LOC, 11, 1, 780));
	assert_int_equal(f->ev[0].type, WB_EV_INTEGRITY);
	assert_int_equal(f->ev[0].side, WB_INT_UNKNOWN_ORDER);
}

static void test_book_execution_with_price_emits_trade(void **state)
{
	struct fx *f = *state;

	apply_ok(f, msg_add(LOC, 20, 'B', 500, 990000));
	apply_ok(f, msg_exec_px(LOC, 20, 200, 900, 'Y', 995000));
	assert_int_equal(f->batch.n, 2);
	assert_int_equal(f->ev[0].type, WB_EV_ORDER_EXEC);
	assert_int_equal(f->ev[0].price, 990000);
	assert_int_equal(f->ev[0].shares, 200);
	assert_int_equal(f->ev[0].level_shares, 300);
	assert_int_equal(f->ev[1].type, WB_EV_TRADE);
	assert_int_equal(f->ev[1].price, 995000);
	assert_int_equal(f->ev[1].shares, 200);
	assert_int_equal(f->ev[1].aux, 900);
	assert_int_equal(f->ev[1].ref, 20);
	assert_int_equal(f->ev[1].side, 'B');
	assert_int_equal(f->ev[1].flags & (WB_EVF_WITH_PRICE | WB_EVF_NONPRINTABLE), WB_EVF_WITH_PRICE);
	assert_batch_end(f);

	apply_ok(f, msg_exec_px(LOC, 20, 300, 901, 'N', 996000));
	assert_int_equal(f->batch.n, 2);
	assert_true(f->ev[1].flags & WB_EVF_NONPRINTABLE);
	assert_int_equal(f->ev[0].level_orders, 0);
	assert_int_equal(top_of(f, LOC).nbids, 0);
}

static void test_book_cancel_and_delete(void **state)
{
	struct fx *f = *state;

	apply_ok(f, msg_add(LOC, 30, 'B', 500, 990000));
	apply_ok(f, msg_add(LOC, 31, 'B', 100, 990000));
	apply_ok(f, msg_cancel(LOC, 30, 150));
	assert_int_equal(f->ev[0].type, WB_EV_ORDER_CANCEL);
	assert_int_equal(f->ev[0].shares, 150);
	assert_int_equal(f->ev[0].price, 990000);
	assert_int_equal(f->ev[0].level_shares, 450);
	struct qwalk q = queue_at(f, 'B', 990000);
	assert_int_equal(q.n, 2);
	assert_int_equal(q.refs[0], 30); /* a partial cancel keeps priority */
	assert_int_equal(q.shares[0], 350);

	apply_ok(f, msg_del(LOC, 30));
	assert_int_equal(f->batch.n, 1);
	assert_int_equal(f->ev[0].type, WB_EV_ORDER_DELETE);
	assert_int_equal(f->ev[0].shares, 350);
	assert_int_equal(f->ev[0].level_shares, 100);
	assert_int_equal(f->ev[0].level_orders, 1);
	assert_batch_end(f);
	struct wb_top t = top_of(f, LOC);
	assert_level(&t.bids[0], 990000, 100, 1);

	apply_ok(f, msg_del(LOC, 31));
	assert_int_equal(top_of(f, LOC).nbids, 0);
	struct wb_symbol_stats st;
	assert_int_equal(wb_bookset_symbol_stats(f->bs, LOC, &st), 0);
	assert_int_equal(st.live_orders, 0);
	assert_int_equal(st.integrity_total, 0);
}

static void test_book_replace_goes_to_back_of_queue(void **state)
{
	struct fx *f = *state;

	apply_ok(f, msg_add(LOC, 41, 'S', 100, 1500000));
	apply_ok(f, msg_add(LOC, 42, 'S', 200, 1500000));
	apply_ok(f, msg_add(LOC, 43, 'S', 300, 1500000));

	/* same price, new size: leaves the front, joins the back */
	apply_ok(f, msg_replace(LOC, 41, 51, 150, 1500000));
	assert_int_equal(f->batch.n, 2);
	assert_int_equal(f->ev[0].type, WB_EV_ORDER_DELETE);
	assert_true(f->ev[0].flags & WB_EVF_REPLACE);
	assert_int_equal(f->ev[0].ref, 41);
	assert_int_equal(f->ev[0].shares, 100);
	assert_int_equal(f->ev[1].type, WB_EV_ORDER_REPLACE);
	assert_true(f->ev[1].flags & WB_EVF_REPLACE);
	assert_int_equal(f->ev[1].ref, 51);
	assert_int_equal(f->ev[1].aux, 41);
	assert_int_equal(f->ev[1].side, 'S');
	assert_int_equal(f->ev[1].price, 1500000);
	assert_int_equal(f->ev[1].shares, 150);
	assert_int_equal(f->ev[1].level_shares, 650);
	assert_int_equal(f->ev[1].level_orders, 3);
	assert_batch_end(f);
	struct qwalk q = queue_at(f, 'S', 1500000);
	assert_int_equal(q.n, 3);
	assert_int_equal(q.refs[0], 42);
	assert_int_equal(q.refs[1], 43);
	assert_int_equal(q.refs[2], 51);
	assert_int_equal(q.shares[2], 150);

	/* new price: a new level, same side */
	apply_ok(f, msg_replace(LOC, 42, 52, 200, 1490000));
	q = queue_at(f, 'S', 1500000);
	assert_int_equal(q.n, 2);
	assert_int_equal(q.refs[0], 43);
	struct wb_top t = top_of(f, LOC);
	assert_int_equal(t.nasks, 2);
	assert_level(&t.asks[0], 1490000, 200, 1);
	assert_level(&t.asks[1], 1500000, 450, 2);

	/* the old reference is dead, the new one lives */
	apply_ok(f, msg_del(LOC, 42));
	assert_int_equal(f->ev[0].type, WB_EV_INTEGRITY);
	apply_ok(f, msg_del(LOC, 52));
	assert_int_equal(f->ev[0].type, WB_EV_ORDER_DELETE);
	assert_int_equal(f->ev[0].shares, 200);
}

static void test_book_trades_crosses_breaks(void **state)
{
	struct fx *f = *state;
	struct wb_itch_msg p = { .type = 'P', .locate = LOC };
	struct wb_itch_msg q = { .type = 'Q', .locate = LOC };
	struct wb_itch_msg b = { .type = 'B', .locate = LOC };

	p.u.trade.ref = 99;
	p.u.trade.side = 'B';
	p.u.trade.shares = 400;
	p.u.trade.price = 1234500;
	p.u.trade.match = 5001;
	apply_ok(f, p);
	assert_int_equal(f->batch.n, 1);
	assert_int_equal(f->ev[0].type, WB_EV_TRADE);
	assert_int_equal(f->ev[0].price, 1234500);
	assert_int_equal(f->ev[0].shares, 400);
	assert_int_equal(f->ev[0].aux, 5001);
	assert_int_equal(f->ev[0].ref, 99);
	assert_int_equal(f->ev[0].side, 'B');
	assert_false(f->ev[0].flags & WB_EVF_CROSS);
	assert_batch_end(f);

	q.u.cross.shares = 5000000000ull;
	q.u.cross.price = 1230000;
	q.u.cross.match = 5002;
	q.u.cross.cross_type = 'O';
	apply_ok(f, q);
	assert_int_equal(f->ev[0].type, WB_EV_TRADE);
	assert_true(f->ev[0].flags & WB_EVF_CROSS);
	assert_int_equal(f->ev[0].shares, UINT32_MAX); /* saturates */
	assert_int_equal(f->ev[0].side, 'O');
	assert_int_equal(f->ev[0].aux, 5002);

	b.u.broken.match = 5001;
	apply_ok(f, b);
	assert_int_equal(f->ev[0].type, WB_EV_TRADE_BREAK);
	assert_int_equal(f->ev[0].aux, 5001);
	/* none of these touched the book */
	struct wb_top t = top_of(f, LOC);
	assert_int_equal(t.nbids + t.nasks, 0);
}

static void test_book_status_system_and_other(void **state)
{
	struct fx *f = *state;
	struct wb_itch_msg h = { .type = 'H', .locate = LOC };
	struct wb_itch_msg oh = { .type = 'h', .locate = LOC };
	struct wb_itch_msg s = { .type = 'S', .locate = 0 };

	h.u.action.state = 'T';
	memcpy(h.u.action.reason, "    ", 4);
	apply_ok(f, h);
	assert_int_equal(f->ev[0].type, WB_EV_STATUS);
	assert_int_equal(f->ev[0].side, 'T');
	assert_int_equal(top_of(f, LOC).trading_state, 'T');

	oh.u.op_halt.market_code = 'Q';
	oh.u.op_halt.action = 'H';
	apply_ok(f, oh);
	assert_int_equal(f->ev[0].type, WB_EV_STATUS);
	assert_int_equal(f->ev[0].side, 'h');
	assert_int_equal(f->ev[0].aux & 0xff, 'Q');
	assert_int_equal(top_of(f, LOC).trading_state, 'h');
	oh.u.op_halt.action = 'T';
	apply_ok(f, oh);
	assert_int_equal(top_of(f, LOC).trading_state, 'T');

	s.u.sys.event_code = 'O';
	apply_ok(f, s);
	assert_int_equal(f->ev[0].type, WB_EV_SYSTEM);
	assert_int_equal(f->ev[0].side, 'O');
	assert_batch_end(f);

	const char others[] = "YLVWKJINO";
	for (size_t i = 0; i < sizeof(others) - 1; i++) {
		struct wb_itch_msg o = { .type = others[i], .locate = LOC };

		if (o.type == 'I') {
			o.u.noii.paired = 1000;
			o.u.noii.imbalance = 250;
			o.u.noii.ref_price = 1500000;
			o.u.noii.direction = 'B';
		} else if (o.type == 'J') {
			o.u.luld.ref_price = 2000000;
			o.u.luld.upper = 2100000;
			o.u.luld.lower = 1900000;
		}
		apply_ok(f, o);
		assert_int_equal(f->batch.n, 1);
		assert_int_equal(f->ev[0].type, WB_EV_OTHER);
		assert_int_equal(f->ev[0].side, (uint8_t)others[i]);
		assert_int_equal(f->ev[0].locate, LOC);
		if (o.type == 'I') {
			assert_int_equal(f->ev[0].ref, 1000);
			assert_int_equal(f->ev[0].aux, 250);
			assert_int_equal(f->ev[0].price, 1500000);
			assert_int_equal(f->ev[0].level_orders & 0xff, 'B');
		} else if (o.type == 'J') {
			assert_int_equal(f->ev[0].price, 2000000);
			assert_int_equal(f->ev[0].aux, (2100000ull << 32) | 1900000);
		}
	}
}

static uint64_t reason_count(struct fx *f, uint16_t loc, int reason)
{
	struct wb_symbol_stats st;

	assert_int_equal(wb_bookset_symbol_stats(f->bs, loc, &st), 0);
	return st.integrity[reason];
}

static void expect_integrity(struct fx *f, int reason)
{
	int seen = 0;

	for (uint32_t i = 0; i < f->batch.n; i++)
		if (f->ev[i].type == WB_EV_INTEGRITY && f->ev[i].side == reason)
			seen = 1;
	assert_true(seen);
}

/* WB_BOOK_MAX_EVENTS_PER_MSG is reached, not only bounded (fx_apply checks the bound on
 * every message of every book test): feeds reserve batch room by it. */
static void test_book_events_per_message_bound_reached(void **state)
{
	struct fx *f = *state;

	/* an execution with price larger than its order: integrity, execution, trade */
	apply_ok(f, msg_add(LOC, 70, 'B', 100, 1000000));
	apply_ok(f, msg_exec_px(LOC, 70, 150, 9, 'Y', 1000000));
	assert_int_equal(f->batch.n, WB_BOOK_MAX_EVENTS_PER_MSG);
	assert_int_equal(f->ev[0].type, WB_EV_INTEGRITY);
	assert_int_equal(f->ev[1].type, WB_EV_ORDER_EXEC);
	assert_int_equal(f->ev[2].type, WB_EV_TRADE);

	/* a replace that locks the book: delete, replace, integrity */
	apply_ok(f, msg_add(LOC, 71, 'B', 100, 1000000));
	apply_ok(f, msg_add(LOC, 72, 'S', 100, 1010000));
	apply_ok(f, msg_replace(LOC, 71, 73, 100, 1010000));
	assert_int_equal(f->batch.n, WB_BOOK_MAX_EVENTS_PER_MSG);
	assert_int_equal(f->ev[0].type, WB_EV_ORDER_DELETE);
	assert_int_equal(f->ev[1].type, WB_EV_ORDER_REPLACE);
	assert_int_equal(f->ev[2].type, WB_EV_INTEGRITY);
	assert_int_equal(f->ev[2].side, WB_INT_LOCKED);
}

static void test_book_integrity_each_reason_flag_policy(void **state)
{
	struct fx *f = *state;
	struct wb_bookset_stats bst;

	for (uint64_t ref = 1000; ref < 1005; ref++) {
		static const char types[] = "ECXDU";
		struct wb_itch_msg m = msg_del(LOC, ref);

		m.type = types[ref - 1000];
		m.u.replace.old_ref = ref; /* same offset as the other refs */
		apply_ok(f, m);
		expect_integrity(f, WB_INT_UNKNOWN_ORDER);
		assert_int_equal(f->ev[0].ref, ref);
	}
	assert_int_equal(reason_count(f, LOC, WB_INT_UNKNOWN_ORDER), 5);

	apply_ok(f, msg_add(LOC, 60, 'B', 100, 1000000));
	apply_ok(f, msg_exec(LOC, 60, 150, 1));
	expect_integrity(f, WB_INT_EXEC_TOO_LARGE);
	assert_int_equal(f->ev[0].aux, 150);
	assert_int_equal(f->ev[1].type, WB_EV_ORDER_EXEC);
	assert_int_equal(f->ev[1].shares, 100); /* clamped to what was there */
	assert_int_equal(top_of(f, LOC).nbids, 0);

	apply_ok(f, msg_add(LOC, 61, 'B', 100, 1000000));
	apply_ok(f, msg_cancel(LOC, 61, 101));
	expect_integrity(f, WB_INT_EXEC_TOO_LARGE);
	assert_int_equal(reason_count(f, LOC, WB_INT_EXEC_TOO_LARGE), 2);

	apply_ok(f, msg_add(LOC, 62, 'B', 100, 1000000));
	apply_ok(f, msg_add(LOC, 62, 'S', 100, 1100000));
	expect_integrity(f, WB_INT_DUPLICATE_ORDER);
	struct wb_top t = top_of(f, LOC);
	assert_int_equal(t.nasks, 0); /* the duplicate did not rest */
	assert_level(&t.bids[0], 1000000, 100, 1);

	apply_ok(f, msg_add(LOC, 63, 'S', 100, 1000000));
	expect_integrity(f, WB_INT_LOCKED);
	apply_ok(f, msg_add(LOC, 64, 'S', 100, 990000));
	expect_integrity(f, WB_INT_CROSSED);
	assert_int_equal(f->ev[1].aux, 1000000);
	/* an add behind the top cannot lock or cross the book a second time */
	apply_ok(f, msg_add(LOC, 65, 'S', 100, 1200000));
	assert_int_equal(f->batch.n, 1);

	apply_ok(f, msg_add(LOC, 66, 'X', 100, 1200000));
	expect_integrity(f, WB_INT_BAD_SIDE);
	assert_int_equal(f->ev[0].aux, 'X');

	struct wb_itch_msg far = msg_add(40000, 67, 'B', 1, 1);
	apply_ok(f, far);
	expect_integrity(f, WB_INT_UNKNOWN_LOCATE);
	assert_int_equal(f->ev[0].locate, 40000);

	assert_int_equal(reason_count(f, LOC, WB_INT_LOCKED), 1);
	assert_int_equal(reason_count(f, LOC, WB_INT_CROSSED), 1);
	assert_int_equal(reason_count(f, LOC, WB_INT_DUPLICATE_ORDER), 1);
	assert_int_equal(reason_count(f, LOC, WB_INT_BAD_SIDE), 1);
	wb_bookset_stats(f->bs, &bst);
	assert_int_equal(bst.integrity_total, 5 + 2 + 1 + 2 + 1 + 1);
	/* policy flag: the book keeps going */
	t = top_of(f, LOC);
	assert_int_equal(t.health, WB_HEALTH_FLAGGED);
	assert_int_equal(t.nasks, 3);
	apply_ok(f, msg_del(LOC, 64));
	assert_int_equal(f->ev[0].type, WB_EV_ORDER_DELETE);
}

static void test_book_integrity_freeze_holds_until_reset(void **state)
{
	struct fx *f = *state;
	struct wb_symbol_stats st;
	struct wb_bookset_stats bst;

	apply_ok(f, msg_add(LOC, 1, 'B', 100, 1000000));
	apply_ok(f, msg_add(LOC, 2, 'S', 100, 1010000));
	apply_ok(f, msg_del(LOC, 999)); /* unknown: freezes under this policy */
	expect_integrity(f, WB_INT_UNKNOWN_ORDER);
	assert_int_equal(top_of(f, LOC).health, WB_HEALTH_FROZEN);

	/* updates keep arriving: held, counted, not applied, events carry no book change */
	apply_ok(f, msg_add(LOC, 3, 'B', 500, 1005000));
	assert_int_equal(f->batch.n, 0);
	apply_ok(f, msg_del(LOC, 1));
	assert_int_equal(f->batch.n, 0);
	assert_int_equal(wb_bookset_symbol_stats(f->bs, LOC, &st), 0);
	assert_int_equal(st.held, 2);
	assert_int_equal(st.live_orders, 2);
	struct wb_top t = top_of(f, LOC);
	assert_level(&t.bids[0], 1000000, 100, 1);
	/* non-book messages still flow, marked stale */
	struct wb_itch_msg p = { .type = 'P', .locate = LOC };
	apply_ok(f, p);
	assert_int_equal(f->ev[0].type, WB_EV_TRADE);
	assert_true(f->ev[0].flags & WB_EVF_STALE);

	assert_int_equal(wb_bookset_request_reset(f->bs, LOC), 0);
	wb_bookset_service(f->bs);
	t = top_of(f, LOC);
	assert_int_equal(t.health, WB_HEALTH_OK);
	assert_int_equal(t.nbids + t.nasks, 0);
	wb_bookset_stats(f->bs, &bst);
	assert_int_equal(bst.live_orders, 0);
	assert_int_equal(bst.live_levels, 0);
	/* the reset freed the references: they can be added again */
	apply_ok(f, msg_add(LOC, 1, 'B', 70, 1000000));
	assert_int_equal(f->ev[0].type, WB_EV_ORDER_ADD);
	assert_false(f->ev[0].flags & WB_EVF_STALE);
	assert_level(&top_of(f, LOC).bids[0], 1000000, 70, 1);
	/* history is kept */
	assert_int_equal(reason_count(f, LOC, WB_INT_UNKNOWN_ORDER), 1);
}

static void test_book_operator_freeze_and_reset(void **state)
{
	struct fx *f = *state;
	struct wb_symbol_stats st;

	apply_ok(f, msg_add(LOC, 1, 'B', 100, 1000000));
	assert_int_equal(wb_bookset_request_freeze(f->bs, LOC), 0);
	assert_int_equal(wb_bookset_request_freeze(f->bs, 60000), -ENOENT);
	/* nothing changes until the writer services the request */
	apply_ok(f, msg_add(LOC, 2, 'B', 100, 1000000));
	assert_int_equal(f->ev[0].type, WB_EV_ORDER_ADD);
	wb_bookset_service(f->bs);
	assert_int_equal(top_of(f, LOC).health, WB_HEALTH_FROZEN);
	apply_ok(f, msg_add(LOC, 3, 'B', 100, 1000000));
	assert_int_equal(f->batch.n, 0);
	assert_int_equal(wb_bookset_symbol_stats(f->bs, LOC, &st), 0);
	assert_int_equal(st.held, 1);
	assert_int_equal(st.integrity_total, 0);
	assert_level(&top_of(f, LOC).bids[0], 1000000, 200, 2);

	assert_int_equal(wb_bookset_request_reset(f->bs, LOC), 0);
	wb_bookset_service(f->bs);
	assert_int_equal(top_of(f, LOC).health, WB_HEALTH_OK);
	assert_int_equal(top_of(f, LOC).nbids, 0);
	apply_ok(f, msg_add(LOC, 3, 'B', 100, 1000000));
	assert_int_equal(f->ev[0].type, WB_EV_ORDER_ADD);
}

static void test_book_stale_marks_health_and_events(void **state)
{
	struct fx *f = *state;

	wb_bookset_set_stale(f->bs, true);
	assert_int_equal(top_of(f, LOC).health, WB_HEALTH_STALE);
	apply_ok(f, msg_add(LOC, 1, 'B', 100, 1000000));
	assert_true(f->ev[0].flags & WB_EVF_STALE);
	wb_bookset_set_stale(f->bs, false);
	assert_int_equal(top_of(f, LOC).health, WB_HEALTH_OK);
	apply_ok(f, msg_add(LOC, 2, 'B', 100, 1000000));
	assert_false(f->ev[0].flags & WB_EVF_STALE);
}

static void test_book_tables_full_are_counted(void **state)
{
	struct fx f;
	struct wb_bookset_stats bst;
	struct wb_itch_msg r = msg_dir(1, "TINY");

	(void)state;
	assert_int_equal(fx_init(&f, 3, 2, 4, WB_POLICY_FLAG), 0);
	fx_apply(&f, &r);
	apply_ok(&f, msg_add(1, 1, 'B', 10, 100));
	apply_ok(&f, msg_add(1, 2, 'B', 10, 100));
	apply_ok(&f, msg_add(1, 3, 'S', 10, 200));
	apply_ok(&f, msg_add(1, 4, 'S', 10, 200));
	expect_integrity(&f, WB_INT_ORDER_TABLE_FULL);
	apply_ok(&f, msg_del(1, 1));
	apply_ok(&f, msg_add(1, 5, 'B', 10, 90)); /* order slot free, but a third level is not */
	expect_integrity(&f, WB_INT_LEVEL_TABLE_FULL);
	apply_ok(&f, msg_add(1, 6, 'B', 10, 100)); /* existing level: fine */
	assert_int_equal(f.ev[0].type, WB_EV_ORDER_ADD);
	wb_bookset_stats(f.bs, &bst);
	assert_int_equal(bst.order_table_full, 1);
	assert_int_equal(bst.level_table_full, 1);
	assert_int_equal(bst.live_orders, 3);
	assert_int_equal(bst.max_orders, 3);
	assert_int_equal(reason_count(&f, 1, WB_INT_ORDER_TABLE_FULL), 1);
	assert_int_equal(reason_count(&f, 1, WB_INT_LEVEL_TABLE_FULL), 1);
	wb_bookset_destroy(f.bs);
}

static void test_book_event_batch_overflow_counted(void **state)
{
	struct fx *f = *state;
	struct wb_bookset_stats bst;

	apply_ok(f, msg_add(LOC, 1, 'B', 500, 990000));
	f->batch.cap = 1;
	apply_ok(f, msg_exec_px(LOC, 1, 100, 9, 'Y', 991000));
	assert_int_equal(f->batch.n, 1);
	assert_int_equal(f->batch.overflow, 1);
	f->batch.cap = FX_EVENTS;
	wb_bookset_stats(f->bs, &bst);
	assert_int_equal(bst.event_overflow, 1);
	/* the book effect happened anyway */
	assert_level(&top_of(f, LOC).bids[0], 990000, 400, 1);
}

static void test_book_price_level_batches(void **state)
{
	struct fx *f = *state;
	struct wb_msg_meta meta = { .seq = 5, .ts_recv = 6 };
	struct wb_top t;

	f->batch.n = 0;
	assert_int_equal(wb_bookset_set_level(f->bs, LOC, 'B', 250000, 100, false, 11, &meta, &f->batch), 0);
	assert_int_equal(wb_bookset_set_level(f->bs, LOC, 'S', 251000, 300, false, 11, &meta, &f->batch), 0);
	assert_int_equal(f->batch.n, 2);
	assert_int_equal(f->ev[0].type, WB_EV_LEVEL);
	assert_int_equal(f->ev[0].level_shares, 100);
	assert_false(f->ev[1].flags & WB_EVF_BATCH_END);
	/* an open batch is not published */
	wb_bookset_publish(f->bs);
	assert_int_equal(wb_bookset_read_top(f->bs, LOC, 8, &t), 0);
	assert_int_equal(t.nbids + t.nasks, 0);
	assert_int_equal(wb_bookset_set_level(f->bs, LOC, 'B', 249000, 700, true, 12, &meta, &f->batch), 0);
	assert_true(f->ev[2].flags & WB_EVF_BATCH_END);
	t = top_of(f, LOC);
	assert_int_equal(t.nbids, 2);
	assert_level(&t.bids[0], 250000, 100, 0);
	assert_level(&t.bids[1], 249000, 700, 0);
	assert_level(&t.asks[0], 251000, 300, 0);
	assert_int_equal(t.ts_exch, 12);

	/* resize, remove */
	f->batch.n = 0;
	assert_int_equal(wb_bookset_set_level(f->bs, LOC, 'B', 250000, 0, false, 13, &meta, &f->batch), 0);
	assert_int_equal(wb_bookset_set_level(f->bs, LOC, 'S', 251000, 50, true, 13, &meta, &f->batch), 0);
	t = top_of(f, LOC);
	assert_int_equal(t.nbids, 1);
	assert_level(&t.bids[0], 249000, 700, 0);
	assert_level(&t.asks[0], 251000, 50, 0);

	/* a transient cross inside a batch is fine; one left at batch end is not */
	f->batch.n = 0;
	wb_bookset_set_level(f->bs, LOC, 'B', 252000, 10, false, 14, &meta, &f->batch);
	assert_int_equal(reason_count(f, LOC, WB_INT_CROSSED), 0);
	wb_bookset_set_level(f->bs, LOC, 'B', 252000, 0, true, 14, &meta, &f->batch);
	assert_int_equal(reason_count(f, LOC, WB_INT_CROSSED), 0);
	wb_bookset_set_level(f->bs, LOC, 'B', 253000, 10, true, 15, &meta, &f->batch);
	assert_int_equal(reason_count(f, LOC, WB_INT_CROSSED), 1);
	assert_int_equal(wb_bookset_set_level(f->bs, LOC, 'Z', 1, 1, true, 15, &meta, &f->batch), 0);
	assert_int_equal(reason_count(f, LOC, WB_INT_BAD_SIDE), 1);

	/* a trading action on a price-level book reaches its published snapshot (order
	 * messages look at a book's price_level only once some book has one) */
	struct wb_itch_msg h = { .type = 'H', .locate = LOC };
	h.u.action.state = 'H';
	memcpy(h.u.action.reason, "    ", 4);
	assert_int_equal(fx_apply(f, &h), 0);
	assert_int_equal(top_of(f, LOC).trading_state, 'H');
	h.u.action.state = 'T';
	assert_int_equal(fx_apply(f, &h), 0);
	assert_int_equal(top_of(f, LOC).trading_state, 'T');
}

static void test_book_create_rejects_bad_opts(void **state)
{
	struct wb_book_opts o = { .max_orders = 10, .max_levels = 10, .max_symbols = 70000, .snapshot_depth = 4 };
	struct wb_bookset *bs = NULL;

	(void)state;
	assert_int_equal(wb_bookset_create(&o, &bs), -EINVAL);
	o.max_symbols = 10;
	o.snapshot_depth = WB_TOP_MAX_DEPTH + 1;
	assert_int_equal(wb_bookset_create(&o, &bs), -EINVAL);
	o.snapshot_depth = 4;
	o.max_orders = 0;
	assert_int_equal(wb_bookset_create(&o, &bs), -EINVAL);
	assert_null(bs);
}

static void test_book_price_format_and_names(void **state)
{
	char buf[32];

	(void)state;
	assert_int_equal(wb_price_format(buf, sizeof(buf), 1234500, 4), 8);
	assert_string_equal(buf, "123.4500");
	wb_price_format(buf, sizeof(buf), -5, 4);
	assert_string_equal(buf, "-0.0005");
	wb_price_format(buf, sizeof(buf), 42, 0);
	assert_string_equal(buf, "42");
	assert_int_equal(wb_price_format(buf, 4, 1234500, 4), 3);
	assert_string_equal(buf, "123");
	assert_string_equal(wb_event_type_name(WB_EV_ORDER_REPLACE), "order_replace");
	assert_string_equal(wb_event_type_name(200), "unknown");
	assert_string_equal(wb_integrity_reason_name(WB_INT_CROSSED), "crossed");
	assert_string_equal(wb_integrity_reason_name(0), "unknown");
	for (int t = 1; t < WB_EV_TYPE_MAX; t++)
		assert_string_not_equal(wb_event_type_name((uint8_t)t), "unknown");
	for (int r = 1; r < WB_INT_REASON_MAX; r++)
		assert_string_not_equal(wb_integrity_reason_name((uint8_t)r), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_book_symbol_directory, setup_flag, teardown),
		cmocka_unit_test_setup_teardown(test_book_add_builds_levels, setup_flag, teardown),
		cmocka_unit_test_setup_teardown(test_book_execution_at_order_price, setup_flag, teardown),
		cmocka_unit_test_setup_teardown(test_book_execution_with_price_emits_trade, setup_flag, teardown),
		cmocka_unit_test_setup_teardown(test_book_cancel_and_delete, setup_flag, teardown),
		cmocka_unit_test_setup_teardown(test_book_replace_goes_to_back_of_queue, setup_flag, teardown),
		cmocka_unit_test_setup_teardown(test_book_trades_crosses_breaks, setup_flag, teardown),
		cmocka_unit_test_setup_teardown(test_book_status_system_and_other, setup_flag, teardown),
		cmocka_unit_test_setup_teardown(test_book_integrity_each_reason_flag_policy, setup_flag, teardown),
		cmocka_unit_test_setup_teardown(test_book_integrity_freeze_holds_until_reset, setup_freeze, teardown),
		cmocka_unit_test_setup_teardown(test_book_operator_freeze_and_reset, setup_flag, teardown),
		cmocka_unit_test_setup_teardown(test_book_stale_marks_health_and_events, setup_flag, teardown),
		cmocka_unit_test(test_book_tables_full_are_counted),
		cmocka_unit_test_setup_teardown(test_book_event_batch_overflow_counted, setup_flag, teardown),
		cmocka_unit_test_setup_teardown(test_book_price_level_batches, setup_flag, teardown),
		cmocka_unit_test_setup_teardown(test_book_events_per_message_bound_reached, setup_flag, teardown),
		cmocka_unit_test(test_book_create_rejects_bad_opts),
		cmocka_unit_test(test_book_price_format_and_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
