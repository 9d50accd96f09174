/* Shared helpers for the book tests: a bookset, an event batch and ITCH message builders. */
#ifndef WB_TEST_BOOK_FIXTURE_H
#define WB_TEST_BOOK_FIXTURE_H

#include <string.h>

#include "book.h"

#define FX_EVENTS 64

struct fx {
	struct wb_bookset *bs;
	struct wb_event ev[FX_EVENTS];
	struct wb_event_batch batch;
	uint64_t seq;
	uint64_t ts;
};

/* A bookset with an order ring of ring slots (0: sized from orders). */
static inline int fx_init_ring(struct fx *f, uint32_t orders, uint32_t levels, uint32_t symbols,
			       enum wb_integrity_policy policy, uint32_t ring)
{
	struct wb_book_opts o = {
		.max_orders = orders,
		.order_ring = ring,
		.max_levels = levels,
		.max_symbols = symbols,
		.snapshot_depth = 8,
		.price_decimals = 4,
		.feed = 3,
		.policy = policy,
		.numa_node = -1,
	};

	memset(f, 0, sizeof(*f));
	f->batch.ev = f->ev;
	f->batch.cap = FX_EVENTS;
	f->seq = 100;
	f->ts = 34200000000000ull;
	return wb_bookset_create(&o, &f->bs);
}

static inline int fx_init(struct fx *f, uint32_t orders, uint32_t levels, uint32_t symbols,
			  enum wb_integrity_policy policy)
{
	return fx_init_ring(f, orders, levels, symbols, policy, 0);
}

/* xorshift64: the tests' reproducible generator, each with its own state and seed. */
static inline uint64_t fx_xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Two booksets fed the same stream have the same bookset-wide counts. Needs cmocka.h. */
static inline void fx_assert_stats_equal(struct wb_bookset *x, struct wb_bookset *y)
{
	struct wb_bookset_stats sx, sy;

	wb_bookset_stats(x, &sx);
	wb_bookset_stats(y, &sy);
	assert_int_equal(sx.msgs, sy.msgs);
	assert_int_equal(sx.live_orders, sy.live_orders);
	assert_int_equal(sx.live_levels, sy.live_levels);
	assert_int_equal(sx.order_table_full, sy.order_table_full);
	assert_int_equal(sx.integrity_total, sy.integrity_total);
	assert_int_equal(sx.event_overflow, sy.event_overflow);
	assert_int_equal(sx.stale_orders, sy.stale_orders);
}

/* Two reads of a book have the same levels, field by field (a level's padding is not
 * part of the book). Needs cmocka.h first. */
static inline void fx_assert_levels_equal(const struct wb_top *a, const struct wb_top *b)
{
	assert_int_equal(a->nbids, b->nbids);
	assert_int_equal(a->nasks, b->nasks);
	for (uint32_t k = 0; k < a->nbids; k++) {
		assert_int_equal(a->bids[k].price, b->bids[k].price);
		assert_int_equal(a->bids[k].shares, b->bids[k].shares);
		assert_int_equal(a->bids[k].orders, b->bids[k].orders);
	}
	for (uint32_t k = 0; k < a->nasks; k++) {
		assert_int_equal(a->asks[k].price, b->asks[k].price);
		assert_int_equal(a->asks[k].shares, b->asks[k].shares);
		assert_int_equal(a->asks[k].orders, b->asks[k].orders);
	}
}

/* Applies one message into an emptied batch; seq and ts advance by one each time. */
static inline int fx_apply(struct fx *f, struct wb_itch_msg *m)
{
	struct wb_msg_meta meta = { .seq = ++f->seq, .ts_recv = 1700000000000000000ull + f->seq };

	int rc;

	m->ts = ++f->ts;
	f->batch.n = 0;
	rc = wb_bookset_apply_itch(f->bs, m, &meta, &f->batch);
	/* the bound a feed reserves batch room by */
	assert_true(f->batch.n <= WB_BOOK_MAX_EVENTS_PER_MSG);
	return rc;
}

static inline struct wb_itch_msg msg_dir(uint16_t loc, const char *sym)
{
	struct wb_itch_msg m = { .type = 'R', .locate = loc };

	memset(m.u.dir.stock, ' ', 8);
	memcpy(m.u.dir.stock, sym, strlen(sym));
	m.u.dir.market_category = 'Q';
	m.u.dir.round_lot_size = 100;
	return m;
}

static inline struct wb_itch_msg msg_add(uint16_t loc, uint64_t ref, char side, uint32_t shares, uint32_t price)
{
	struct wb_itch_msg m = { .type = 'A', .locate = loc };

	m.u.add.ref = ref;
	m.u.add.side = side;
	m.u.add.shares = shares;
	m.u.add.price = price;
	memcpy(m.u.add.stock, "TEST    ", 8);
	memcpy(m.u.add.mpid, "    ", 4);
	return m;
}

static inline struct wb_itch_msg msg_exec(uint16_t loc, uint64_t ref, uint32_t shares, uint64_t match)
{
	struct wb_itch_msg m = { .type = 'E', .locate = loc };

	m.u.exec.ref = ref;
	m.u.exec.shares = shares;
	m.u.exec.match = match;
	return m;
}

static inline struct wb_itch_msg msg_exec_px(uint16_t loc, uint64_t ref, uint32_t shares, uint64_t match,
					     char printable, uint32_t price)
{
	struct wb_itch_msg m = { .type = 'C', .locate = loc };

	m.u.exec_px.ref = ref;
	m.u.exec_px.shares = shares;
	m.u.exec_px.match = match;
	m.u.exec_px.printable = printable;
	m.u.exec_px.price = price;
	return m;
}

static inline struct wb_itch_msg msg_cancel(uint16_t loc, uint64_t ref, uint32_t shares)
{
	struct wb_itch_msg m = { .type = 'X', .locate = loc };

	m.u.cancel.ref = ref;
	m.u.cancel.shares = shares;
	return m;
}

static inline struct wb_itch_msg msg_del(uint16_t loc, uint64_t ref)
{
	struct wb_itch_msg m = { .type = 'D', .locate = loc };

	m.u.del.ref = ref;
	return m;
}

static inline struct wb_itch_msg msg_replace(uint16_t loc, uint64_t old_ref, uint64_t new_ref, uint32_t shares,
					     uint32_t price)
{
	struct wb_itch_msg m = { .type = 'U', .locate = loc };

	m.u.replace.old_ref = old_ref;
	m.u.replace.new_ref = new_ref;
	m.u.replace.shares = shares;
	m.u.replace.price = price;
	return m;
}

#endif
