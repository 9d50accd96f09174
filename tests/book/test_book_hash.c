/* The fast paths of the book against ground truth: orders live in their hash slots and move
 * when a neighbour is erased (queues must survive every move), snapshots rewrite levels
 * only when the published depth changed (they must still equal the full book's top), and
 * the prefetch calls must not change anything. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "book_fixture.h"
#include "naive_book.h"

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint64_t rnd(void)
{
	return fx_xorshift(&rng_state);
}

static uint64_t pick_live(const struct naive *nv, uint16_t *loc)
{
	for (int tries = 0; tries < 64 && nv->n; tries++) {
		const struct norder *o = &nv->o[rnd() % nv->n];
		if (o->live) {
			*loc = o->locate;
			return o->ref;
		}
	}
	return 0;
}

static size_t naive_live(const struct naive *nv)
{
	size_t live = 0;

	for (size_t i = 0; i < nv->n; i++)
		live += nv->o[i].live;
	return live;
}

/* Drives a book and the naive model with one reference generator; checks every queue. */
static void run_refs(uint64_t (*next_ref)(uint64_t i), uint32_t max_live, int steps, int check_every, uint32_t ring)
{
	enum { SYMS = 3 };
	struct fx f;
	struct naive nv = { .cap = max_live + 8 };
	uint64_t made = 0;

	nv.o = calloc(nv.cap, sizeof(*nv.o));
	assert_non_null(nv.o);
	/* the smallest table: max_live orders in 1.5x-2x as many slots */
	assert_int_equal(fx_init_ring(&f, max_live, 8 * max_live, SYMS, WB_POLICY_FLAG, ring), 0);
	for (uint16_t l = 0; l < SYMS; l++) {
		struct wb_itch_msg r = msg_dir(l, l == 0 ? "AAA" : l == 1 ? "BBB" : "CCC");
		fx_apply(&f, &r);
	}
	for (int step = 0; step < steps; step++) {
		struct wb_itch_msg m;
		uint16_t loc = (uint16_t)(rnd() % SYMS);
		uint64_t ref;
		size_t live = naive_live(&nv);
		unsigned r = (unsigned)(rnd() % 100);

		if (live < 8 || (r < 50 && live < max_live)) {
			char side = rnd() & 1 ? 'B' : 'S';
			/* few prices: long queues, so moved orders have neighbours on both sides */
			uint32_t dist = (uint32_t)(rnd() % 4);
			ref = next_ref(made++);
			if (naive_find(&nv, ref))
				continue;
			m = msg_add(loc, ref, side, (uint32_t)(1 + rnd() % 300),
				    side == 'B' ? 10000 - 1 - dist : 10000 + 1 + dist);
		} else if ((ref = pick_live(&nv, &loc)) == 0) {
			continue;
		} else if (r < 75) {
			m = msg_del(loc, ref);
		} else if (r < 90) {
			const struct norder *o = naive_find(&nv, ref);
			uint64_t nref = next_ref(made++);
			if (naive_find(&nv, nref))
				continue;
			m = msg_replace(loc, ref, nref, (uint32_t)(1 + rnd() % 300),
					o->side == 'B' ? 10000 - 1 - (uint32_t)(rnd() % 4) : 10000 + 1 + (uint32_t)(rnd() % 4));
		} else {
			const struct norder *o = naive_find(&nv, ref);
			m = msg_exec(loc, ref, (uint32_t)(1 + rnd() % o->shares), (uint64_t)step);
		}
		naive_apply(&nv, &m);
		assert_int_equal(fx_apply(&f, &m), 0);
		for (uint32_t i = 0; i < f.batch.n; i++)
			assert_int_not_equal(f.ev[i].type, WB_EV_INTEGRITY);
		if (step % check_every == check_every - 1)
			for (uint16_t l = 0; l < SYMS; l++)
				compare_symbol(f.bs, &nv, l);
	}
	for (uint16_t l = 0; l < SYMS; l++)
		compare_symbol(f.bs, &nv, l);
	struct wb_bookset_stats bst;
	wb_bookset_stats(f.bs, &bst);
	assert_int_equal(bst.live_orders, naive_live(&nv));
	assert_int_equal(bst.integrity_total, 0);

	/* a reset frees exactly one symbol's orders while erasing moves the others around */
	size_t of1 = 0;
	for (size_t i = 0; i < nv.n; i++)
		if (nv.o[i].live && nv.o[i].locate == 1) {
			of1++;
			nv.o[i].live = 0;
		}
	assert_int_equal(wb_bookset_request_reset(f.bs, 1), 0);
	wb_bookset_service(f.bs);
	wb_bookset_stats(f.bs, &bst);
	assert_int_equal(bst.live_orders, naive_live(&nv));
	assert_true(of1 > 0);
	for (uint16_t l = 0; l < SYMS; l++)
		compare_symbol(f.bs, &nv, l);
	/* every surviving order is still found: delete them all through the hash */
	for (size_t i = 0; i < nv.n; i++) {
		if (!nv.o[i].live)
			continue;
		struct wb_itch_msg m = msg_del(nv.o[i].locate, nv.o[i].ref);
		assert_int_equal(fx_apply(&f, &m), 0);
		assert_int_equal(f.batch.n, 1);
		assert_int_equal(f.ev[0].type, WB_EV_ORDER_DELETE);
		nv.o[i].live = 0;
	}
	wb_bookset_stats(f.bs, &bst);
	assert_int_equal(bst.live_orders, 0);
	assert_int_equal(bst.live_levels, 0);
	wb_bookset_destroy(f.bs);
	free(nv.o);
}

static uint64_t ref_random(uint64_t i)
{
	(void)i;
	return rnd() | 1;
}

/* Multiples of a large power of two: the worst case for a hash that keeps low bits. */
static uint64_t ref_strided(uint64_t i)
{
	return (i + 1) << 24;
}

/* Sequential, the ITCH case: with survivors, references wrap the table many times. */
static uint64_t ref_sequential(uint64_t i)
{
	return i + 1;
}

static void test_book_hash_random_refs_keep_queues(void **state)
{
	(void)state;
	run_refs(ref_random, 200, 40000, 997, 0);
}

static void test_book_hash_strided_refs_keep_queues(void **state)
{
	(void)state;
	run_refs(ref_strided, 200, 40000, 997, 0);
}

static void test_book_hash_sequential_refs_wrap_the_table(void **state)
{
	(void)state;
	run_refs(ref_sequential, 64, 60000, 499, 0);
}

/* A ring far smaller than the live orders (book.order_ring): most orders live in the
 * survivor table, queues and counts stay exact; a ring that is not a power of two is refused. */
static void test_book_small_ring_keeps_queues(void **state)
{
	struct fx f;

	(void)state;
	run_refs(ref_sequential, 200, 40000, 997, 16);
	run_refs(ref_random, 200, 20000, 997, 16);
	assert_int_equal(fx_init_ring(&f, 1024, 1024, 4, WB_POLICY_FLAG, 3000), -EINVAL);
}

/* Every order still live when a reference one ring later takes its slot is counted as it
 * moves to the survivor table; an add into a slot a delete emptied moves nothing. */
static void test_book_survivor_moves_counted(void **state)
{
	struct fx f;
	struct wb_bookset_stats bst;

	(void)state;
	assert_int_equal(fx_init_ring(&f, 1024, 1024, 4, WB_POLICY_FLAG, 16), 0);
	struct wb_itch_msg d = msg_dir(1, "ONE");
	assert_int_equal(fx_apply(&f, &d), 0);
	for (uint64_t r = 1; r <= 40; r++) {
		struct wb_itch_msg m = msg_add(1, r, 'B', 100, (uint32_t)(1000000 + r * 100));
		assert_int_equal(fx_apply(&f, &m), 0);
	}
	wb_bookset_stats(f.bs, &bst);
	assert_int_equal(bst.survivor_moves, 40 - 16); /* refs 17..40 each moved the one 16 before */
	for (uint64_t r = 33; r <= 40; r++) {
		struct wb_itch_msg m = msg_del(1, r);
		assert_int_equal(fx_apply(&f, &m), 0);
	}
	for (uint64_t r = 49; r <= 56; r++) { /* the slots refs 33..40 emptied */
		struct wb_itch_msg m = msg_add(1, r, 'S', 100, (uint32_t)(2000000 + r * 100));
		assert_int_equal(fx_apply(&f, &m), 0);
		assert_int_equal(f.ev[0].type, WB_EV_ORDER_ADD);
	}
	wb_bookset_stats(f.bs, &bst);
	assert_int_equal(bst.survivor_moves, 24);
	assert_int_equal(bst.live_orders, 40);
	assert_int_equal(bst.integrity_total, 0);
	wb_bookset_destroy(f.bs);
}

/* ---- a reset leaves its orders stale for the sweep: absent to every lookup meanwhile ---- */

static int count_type(const struct fx *f, uint8_t type)
{
	int n = 0;

	for (uint32_t i = 0; i < f->batch.n; i++)
		n += f->ev[i].type == type;
	return n;
}

static void test_book_reset_sweeps_stale_orders(void **state)
{
	enum { ORDERS = 20000 }; /* sequential: all in the 131072-slot ring, whose first 16,384 slots one service call sweeps */
	struct fx f;
	struct wb_bookset_stats bst;
	struct wb_symbol_stats st;
	(void)state;

	assert_int_equal(fx_init(&f, ORDERS, 4096, 4, WB_POLICY_FLAG), 0);
	for (uint16_t l = 1; l <= 2; l++) {
		struct wb_itch_msg d = msg_dir(l, l == 1 ? "ONE" : "TWO");
		assert_int_equal(fx_apply(&f, &d), 0);
	}
	/* sequential references, interleaved: symbol 1 gets the odd ones, symbol 2 the even */
	for (uint64_t r = 1; r <= ORDERS; r++) {
		struct wb_itch_msg m = msg_add(r & 1 ? 1 : 2, r, 'B', 100, (uint32_t)(1000000 + (r % 50) * 100));
		assert_int_equal(fx_apply(&f, &m), 0);
		assert_int_equal(f.ev[0].type, WB_EV_ORDER_ADD);
	}
	assert_int_equal(wb_bookset_request_reset(f.bs, 1), 0);
	wb_bookset_service(f.bs);
	wb_bookset_stats(f.bs, &bst);
	assert_int_equal(bst.live_orders, ORDERS / 2);
	/* one call swept the first 16,384 slots: the rest of symbol 1's orders wait in the table */
	assert_true(bst.stale_orders > 0 && bst.stale_orders < ORDERS / 2);
	assert_int_equal(wb_bookset_symbol_stats(f.bs, 1, &st), 0);
	assert_int_equal(st.live_orders, 0);
	struct wb_top top;
	assert_int_equal(wb_bookset_read_top(f.bs, 1, 4, &top), 0);
	assert_int_equal(top.nbids, 0);

	/* a stale order is unknown to an execution, and its reference is free for a new add */
	struct wb_itch_msg m = msg_exec(1, ORDERS - 1, 10, 7);
	assert_int_equal(fx_apply(&f, &m), 0);
	assert_int_equal(f.ev[0].type, WB_EV_INTEGRITY);
	assert_int_equal(f.ev[0].side, WB_INT_UNKNOWN_ORDER);
	m = msg_add(1, ORDERS - 3, 'S', 300, 2000000);
	assert_int_equal(fx_apply(&f, &m), 0);
	assert_int_equal(f.ev[0].type, WB_EV_ORDER_ADD);
	assert_int_equal(count_type(&f, WB_EV_INTEGRITY), 0);
	assert_int_equal(wb_bookset_read_top(f.bs, 1, 4, &top), 0);
	assert_int_equal(top.nasks, 1);
	assert_int_equal(top.asks[0].price, 2000000);
	assert_int_equal(top.asks[0].shares, 300);
	assert_int_equal(top.asks[0].orders, 1);

	/* stale orders hold slots: the table is full for new ones until they are swept */
	uint64_t next = ORDERS + 1;
	wb_bookset_stats(f.bs, &bst);
	uint64_t room = bst.max_orders - bst.live_orders - bst.stale_orders;
	for (uint64_t i = 0; i < room; i++, next++) {
		m = msg_add(2, next, 'B', 100, 1000000);
		assert_int_equal(fx_apply(&f, &m), 0);
		assert_int_equal(f.ev[0].type, WB_EV_ORDER_ADD);
	}
	m = msg_add(2, next, 'B', 100, 1000000);
	assert_int_equal(fx_apply(&f, &m), 0);
	assert_int_equal(f.ev[0].type, WB_EV_INTEGRITY);
	assert_int_equal(f.ev[0].side, WB_INT_ORDER_TABLE_FULL);

	/* the sweep ends, however many rounds the shifts of deletes cost it */
	int calls = 0;
	do {
		wb_bookset_service(f.bs);
		wb_bookset_stats(f.bs, &bst);
	} while (bst.stale_orders && ++calls < 64);
	assert_int_equal(bst.stale_orders, 0);
	m = msg_add(2, next, 'B', 100, 1000000);
	assert_int_equal(fx_apply(&f, &m), 0);
	assert_int_equal(f.ev[0].type, WB_EV_ORDER_ADD);
	next++;

	/* every order of symbol 2 survived the sweep's shifts: deleting all empties the table */
	for (uint64_t r = 2; r <= ORDERS; r += 2) {
		m = msg_del(2, r);
		assert_int_equal(fx_apply(&f, &m), 0);
		assert_int_equal(f.ev[0].type, WB_EV_ORDER_DELETE);
	}
	for (uint64_t r = ORDERS + 1; r < next; r++) {
		m = msg_del(2, r);
		assert_int_equal(fx_apply(&f, &m), 0);
		assert_int_equal(f.ev[0].type, WB_EV_ORDER_DELETE);
	}
	m = msg_del(1, ORDERS - 3);
	assert_int_equal(fx_apply(&f, &m), 0);
	assert_int_equal(f.ev[0].type, WB_EV_ORDER_DELETE);
	wb_bookset_stats(f.bs, &bst);
	assert_int_equal(bst.live_orders, 0);
	assert_int_equal(bst.live_levels, 0);
	wb_bookset_destroy(f.bs);
}

/* ---- snapshots: levels rewritten only when the top changed, always equal to the book ---- */

struct top_want {
	struct wb_level lv[2][WB_TOP_MAX_DEPTH];
	uint32_t n[2];
};

static void want_level(void *arg, char side, const struct wb_level *l)
{
	struct top_want *w = arg;
	int s = side == 'S';

	if (w->n[s] < WB_TOP_MAX_DEPTH)
		w->lv[s][w->n[s]++] = *l;
}

/* The published top equals the first depth levels of the full book. */
static void check_top(struct fx *f, uint16_t loc, uint32_t depth, uint64_t want_seq)
{
	struct top_want w = { 0 };
	struct wb_top top;

	wb_bookset_publish(f->bs);
	wb_bookset_walk_levels(f->bs, loc, want_level, &w);
	assert_int_equal(wb_bookset_read_top(f->bs, loc, depth, &top), 0);
	assert_int_equal(top.seq, want_seq);
	assert_string_equal(top.stock, "TOPS");
	assert_int_equal(top.nbids, w.n[0] < depth ? w.n[0] : depth);
	assert_int_equal(top.nasks, w.n[1] < depth ? w.n[1] : depth);
	for (uint32_t i = 0; i < top.nbids; i++) {
		assert_int_equal(top.bids[i].price, w.lv[0][i].price);
		assert_int_equal(top.bids[i].shares, w.lv[0][i].shares);
		assert_int_equal(top.bids[i].orders, w.lv[0][i].orders);
	}
	for (uint32_t i = 0; i < top.nasks; i++) {
		assert_int_equal(top.asks[i].price, w.lv[1][i].price);
		assert_int_equal(top.asks[i].shares, w.lv[1][i].shares);
		assert_int_equal(top.asks[i].orders, w.lv[1][i].orders);
	}
}

static void test_book_snapshot_tracks_top_through_deep_changes(void **state)
{
	enum { DEPTH = 8, LEVELS = 20 };
	struct fx f;
	struct wb_itch_msg m;
	uint64_t ref = 1;

	(void)state;
	assert_int_equal(fx_init(&f, 4096, 4096, 2, WB_POLICY_FLAG), 0);
	m = msg_dir(1, "TOPS");
	fx_apply(&f, &m);
	/* 20 levels per side, two orders each; publishing after every message */
	for (uint32_t i = 0; i < LEVELS; i++)
		for (int k = 0; k < 2; k++) {
			m = msg_add(1, ref++, 'B', 100 + i, 5000 - i);
			fx_apply(&f, &m);
			check_top(&f, 1, DEPTH, f.seq);
			m = msg_add(1, ref++, 'S', 200 + i, 6000 + i);
			fx_apply(&f, &m);
			check_top(&f, 1, DEPTH, f.seq);
		}
	/* a change deep in the book: the published levels stay, the sequence moves on */
	m = msg_cancel(1, 2 * (2 * 15) + 1, 10); /* first bid order of level 15 */
	fx_apply(&f, &m);
	check_top(&f, 1, DEPTH, f.seq);
	/* every order from the top down: each removal pulls a deeper level into the top */
	for (uint64_t r = 1; r < ref; r++) {
		m = msg_del(1, r);
		fx_apply(&f, &m);
		assert_int_equal(f.ev[0].type, WB_EV_ORDER_DELETE);
		check_top(&f, 1, DEPTH, f.seq);
	}
	/* replaces and executions between publishes, deep and at the top */
	uint64_t first = ref;
	for (uint32_t i = 0; i < LEVELS; i++) {
		m = msg_add(1, ref++, i & 1 ? 'S' : 'B', 100, i & 1 ? 6000 + i : 5000 - i);
		fx_apply(&f, &m);
	}
	check_top(&f, 1, DEPTH, f.seq);
	for (uint64_t r = first; r < ref; r += 3) {
		/* alternately to the top and deep, on the order's own side */
		int ask = (r - first) & 1, top = ((r - first) / 3) & 1;
		m = msg_replace(1, r, ref + r, 50, ask ? (top ? 5999 : 6050) : (top ? 5001 : 4950));
		fx_apply(&f, &m);
		m = msg_exec(1, ref + r, 20, r);
		fx_apply(&f, &m);
		check_top(&f, 1, DEPTH, f.seq);
	}
	wb_bookset_destroy(f.bs);
}

/* ---- prefetch: hints only ---- */

static void test_book_prefetch_changes_nothing(void **state)
{
	struct fx a, b;
	struct wb_itch_msg msgs[6000];
	size_t n = 0;
	uint64_t ref = 1;

	(void)state;
	assert_int_equal(fx_init(&a, 512, 512, 4, WB_POLICY_FLAG), 0);
	assert_int_equal(fx_init(&b, 512, 512, 4, WB_POLICY_FLAG), 0);
	msgs[n++] = msg_dir(1, "PFX");
	while (n < 6000) {
		unsigned r = (unsigned)(rnd() % 10);
		uint16_t loc = (uint16_t)(rnd() % 6); /* 4 and 5 are outside the table */
		uint64_t old = ref > 1 ? 1 + rnd() % (ref - 1) : 1; /* often dead: unknown orders */

		if (r < 5)
			msgs[n++] = msg_add(loc, ref++, rnd() % 7 ? (rnd() & 1 ? 'B' : 'S') : 'Z', 100,
					    (uint32_t)(5000 + rnd() % 40));
		else if (r < 7)
			msgs[n++] = msg_del(loc, old);
		else if (r < 8)
			msgs[n++] = msg_replace(loc, old, ref++, 50, (uint32_t)(5000 + rnd() % 40));
		else if (r < 9)
			msgs[n] = msg_exec(loc, old, 30, n), n++;
		else
			msgs[n++] = msg_cancel(loc, old, 500);
	}
	for (size_t i = 0; i < n; i++) {
		if (i + 8 < n)
			wb_bookset_prefetch_itch(b.bs, &msgs[i + 8]);
		if (i + 4 < n)
			wb_bookset_prefetch_itch_deep(b.bs, &msgs[i + 4]);
		struct wb_itch_msg ma = msgs[i], mb = msgs[i];
		assert_int_equal(fx_apply(&a, &ma), 0);
		assert_int_equal(fx_apply(&b, &mb), 0);
		assert_int_equal(a.batch.n, b.batch.n);
		assert_memory_equal(a.ev, b.ev, a.batch.n * sizeof(struct wb_event));
	}
	struct wb_bookset_stats sa, sb;
	wb_bookset_stats(a.bs, &sa);
	wb_bookset_stats(b.bs, &sb);
	assert_int_equal(sa.live_orders, sb.live_orders);
	assert_int_equal(sa.integrity_total, sb.integrity_total);
	assert_true(sa.integrity_total > 0); /* the stream did exercise the unknown and bad cases */
	wb_bookset_destroy(a.bs);
	wb_bookset_destroy(b.bs);
}

/* ---- a burst is the same as its messages one at a time ---- */

static void compare_books(struct wb_bookset *x, struct wb_bookset *y, uint16_t symbols)
{
	fx_assert_stats_equal(x, y);
	for (uint16_t l = 0; l < symbols; l++) {
		struct wb_symbol_stats qx, qy;
		struct wb_top tx, ty;

		assert_int_equal(wb_bookset_symbol_stats(x, l, &qx), 0);
		assert_int_equal(wb_bookset_symbol_stats(y, l, &qy), 0);
		assert_int_equal(qx.msgs, qy.msgs);
		assert_int_equal(qx.health, qy.health);
		assert_int_equal(qx.held, qy.held);
		assert_int_equal(qx.live_orders, qy.live_orders);
		assert_memory_equal(qx.integrity, qy.integrity, sizeof(qx.integrity));
		int rx = wb_bookset_read_top(x, l, 8, &tx), ry = wb_bookset_read_top(y, l, 8, &ty);
		assert_int_equal(rx, ry);
		if (rx == 0)
			fx_assert_levels_equal(&tx, &ty);
	}
}

/* wb_bookset_apply_itch_burst (the worker's call, each burst hinted by the one before as a
 * worker does, sometimes with garbage) against one wb_bookset_apply_itch per message, on a stream with every kind of trouble: unknown and stale orders, bad sides and
 * locates, crossed books under the freeze policy (held messages), operator resets between
 * bursts, references that wrap the order ring into the survivor table, and a batch too
 * small for one burst's events. Events must match byte for byte, and so must the books. */
static void test_book_burst_equals_single(void **state)
{
	enum { SYMS = 6, N = 40000, CAP = 48 };
	static struct wb_itch_msg msgs[N];
	static uint64_t seqs[N];
	static struct wb_event ea[4 * CAP], eb[4 * CAP];
	struct wb_book_opts o = { .max_orders = 700, .max_levels = 400, .max_symbols = SYMS, .snapshot_depth = 8,
				  .price_decimals = 4, .feed = 2, .policy = WB_POLICY_FREEZE, .numa_node = -1 };
	struct wb_bookset *a, *b;
	uint64_t ref = 1;
	size_t n = 0;

	(void)state;
	assert_int_equal(wb_bookset_create(&o, &a), 0);
	assert_int_equal(wb_bookset_create(&o, &b), 0);
	for (uint16_t l = 0; l < SYMS - 1; l++) {
		char name[8];
		snprintf(name, sizeof(name), "S%u", l);
		msgs[n++] = msg_dir(l, name);
	}
	while (n < N) {
		unsigned r = (unsigned)(rnd() % 100);
		uint16_t loc = (uint16_t)(rnd() % 8) < 7 ? (uint16_t)(rnd() % (SYMS - 1)) : (uint16_t)(SYMS + rnd() % 3);
		/* mostly recent references (live), sometimes old ones (gone: unknown orders) */
		uint64_t back = rnd() % 8 ? 1 + rnd() % 200 : 1 + rnd() % 5000;
		uint64_t old = ref > back ? ref - back : 1;
		char side = rnd() % 50 ? (rnd() & 1 ? 'B' : 'S') : 'Q';
		uint32_t px = side == 'B' ? 5000 - (uint32_t)(rnd() % 30) : 5003 + (uint32_t)(rnd() % 30);

		if (rnd() % 400 == 0)
			px = side == 'B' ? 5010 : 4990; /* through the other side: locked or crossed */
		if (r < 45) {
			msgs[n] = msg_add(loc, ref++, side, 1 + (uint32_t)(rnd() % 500), px);
			if (rnd() % 10 == 0) {
				msgs[n].type = 'F';
				memcpy(msgs[n].u.add.mpid, "MPID", 4);
			}
			n++;
		} else if (r < 75) {
			msgs[n++] = msg_del(loc, old);
		} else if (r < 88) {
			msgs[n++] = msg_replace(loc, old, ref++, 1 + (uint32_t)(rnd() % 300), px);
		} else if (r < 93) {
			msgs[n] = msg_exec(loc, old, 1 + (uint32_t)(rnd() % 400), n);
			n++;
		} else if (r < 96) {
			msgs[n] = msg_exec_px(loc, old, 1 + (uint32_t)(rnd() % 400), n, rnd() & 1 ? 'Y' : 'N', 4999);
			n++;
		} else if (r < 99) {
			msgs[n++] = msg_cancel(loc, old, 1 + (uint32_t)(rnd() % 600));
		} else {
			msgs[n] = (struct wb_itch_msg){ .type = 'P', .locate = loc, .ts = n };
			msgs[n].u.trade.price = 5001;
			msgs[n].u.trade.shares = 100;
			msgs[n].u.trade.side = 'B';
			n++;
		}
	}
	for (size_t i = 0; i < n; i++) {
		msgs[i].ts = 34200000000000ull + i;
		seqs[i] = 1000 + i;
	}
	size_t i = 0, bursts = 0;
	uint64_t ts_recv = 1700000000000000000ull;
	while (i < n) {
		size_t k = 1 + rnd() % 40;
		uint8_t flags = bursts % 5 == 0 ? WB_EVF_RECOVERED : 0;
		struct wb_event_batch ba = { .ev = ea, .cap = bursts % 7 == 0 ? 5 : 4 * CAP };
		struct wb_event_batch bb = { .ev = eb, .cap = ba.cap };

		if (k > n - i)
			k = n - i;
		for (size_t j = 0; j < k; j++) {
			struct wb_msg_meta meta = { .seq = seqs[i + j], .ts_recv = ts_recv, .flags = flags };
			assert_int_equal(wb_bookset_apply_itch(a, &msgs[i + j], &meta, &ba), 0);
		}
		/* as a worker does: the next packet is hinted before this one applies; sometimes
		 * the hint is garbage (any type, locate and reference): it must change nothing */
		if (i + k < n)
			wb_bookset_prefetch_itch_burst(b, &msgs[i + k], (uint32_t)(n - i - k < 40 ? n - i - k : 40));
		if (bursts % 3 == 0) {
			struct wb_itch_msg junk[WB_BOOK_PREFETCH_MSGS + 2];
			for (size_t j = 0; j < WB_BOOK_PREFETCH_MSGS + 2; j++) {
				junk[j] = (struct wb_itch_msg){ .type = (char)rnd(), .locate = (uint16_t)rnd() };
				junk[j].u.replace.old_ref = (uint64_t)rnd() << 32 | (uint64_t)rnd();
				junk[j].u.replace.new_ref = ~junk[j].u.replace.old_ref;
			}
			wb_bookset_prefetch_itch_burst(b, junk, WB_BOOK_PREFETCH_MSGS + 2);
		}
		assert_int_equal(wb_bookset_apply_itch_burst(b, &msgs[i], &seqs[i], (uint32_t)k, ts_recv, flags, &bb), 0);
		assert_int_equal(ba.n, bb.n);
		assert_int_equal(ba.overflow, bb.overflow);
		assert_memory_equal(ea, eb, ba.n * sizeof(struct wb_event));
		if (++bursts % 150 == 0) {
			/* an operator resets a frozen book: its orders turn stale for the sweep */
			uint16_t l = (uint16_t)(rnd() % (SYMS - 1));
			assert_int_equal(wb_bookset_request_reset(a, l), 0);
			assert_int_equal(wb_bookset_request_reset(b, l), 0);
			wb_bookset_service(a);
			wb_bookset_service(b);
			compare_books(a, b, SYMS);
		}
		i += k;
		ts_recv += 1000;
	}
	compare_books(a, b, SYMS);
	struct wb_bookset_stats st;
	wb_bookset_stats(b, &st);
	/* the stream did reach the cases it was built for */
	assert_true(st.integrity_total > 1000);
	assert_true(st.event_overflow > 0);
	assert_true(ref > 4 * o.max_orders);
	assert_int_equal(wb_bookset_apply_itch_burst(b, msgs, seqs, 0, 0, 0, &(struct wb_event_batch){ .ev = eb, .cap = 1 }), 0);
	assert_int_equal(wb_bookset_apply_itch_burst(b, NULL, seqs, 1, 0, 0, &(struct wb_event_batch){ .ev = eb, .cap = 1 }),
			 -EINVAL);
	wb_bookset_destroy(a);
	wb_bookset_destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_book_hash_random_refs_keep_queues),
		cmocka_unit_test(test_book_hash_strided_refs_keep_queues),
		cmocka_unit_test(test_book_hash_sequential_refs_wrap_the_table),
		cmocka_unit_test(test_book_small_ring_keeps_queues),
		cmocka_unit_test(test_book_survivor_moves_counted),
		cmocka_unit_test(test_book_reset_sweeps_stale_orders),
		cmocka_unit_test(test_book_snapshot_tracks_top_through_deep_changes),
		cmocka_unit_test(test_book_prefetch_changes_nothing),
		cmocka_unit_test(test_book_burst_equals_single),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
