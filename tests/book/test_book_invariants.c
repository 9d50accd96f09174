/* White-box invariants of the order store: book/book.c is compiled into this test, so it
 * sees the tables. After every step of a random stream (adds, executions, cancels,
 * deletes and replaces, with references below, at and beyond the ring tag's limit;
 * price-level updates; operator resets, double resets and freezes; partial sweeps):
 *  - every level record is exactly one of free, live (in its side's array, with its
 *    locate and side, not a zombie) or zombie (a reset book's, still with orders): none
 *    leaks, none is in two states;
 *  - each level's order count is the number of order records naming it;
 *  - the orders on zombie levels are exactly the stale count, the rest the live count, per
 *    book and in all; the live level count is exact;
 *  - every survivor is found from its reference, every ring record from the reference its
 *    tag and slot rebuild, and the survivor count is exact;
 *  - a model of the live orders agrees with the book on each one's price, side, locate and
 *    shares, and on every unknown order, duplicate and table-full it predicts.
 * Tiny tables (16- and 1024-slot rings, 24 levels, 48 orders) keep every path busy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "../../book/book.c"
#include "book_fixture.h"

#define SYMS 4	      /* locates 0-2 order by order, 3 price-level */
#define MAX_MODEL 4096 /* model records before dead ones are compacted away */

struct model_order {
	uint64_t ref;
	int64_t price;
	uint32_t shares;
	uint16_t locate;
	uint8_t side;
	uint8_t live;
};

struct run {
	struct fx f;
	uint64_t rng, next_ref, tag_limit;
	struct model_order orders[MAX_MODEL];
	uint32_t n;
	uint8_t frozen[SYMS];
	uint64_t n_adds, n_unknown, n_dups, n_full, n_resets, n_high;
};

static uint64_t rnd(struct run *r) { return fx_xorshift(&r->rng); }

static struct model_order *model_live(struct run *r, uint64_t ref)
{
	for (uint32_t i = 0; i < r->n; i++)
		if (r->orders[i].live && r->orders[i].ref == ref)
			return &r->orders[i];
	return NULL;
}

static void model_push(struct run *r, struct model_order o)
{
	if (r->n == MAX_MODEL) {
		uint32_t j = 0;

		for (uint32_t i = 0; i < r->n; i++)
			if (r->orders[i].live)
				r->orders[j++] = r->orders[i];
		r->n = j;
	}
	assert_true(r->n < MAX_MODEL);
	r->orders[r->n++] = o;
}

/* Mostly new references; some beyond the tag's limit or just below it; many reused. */
static uint64_t pick_ref(struct run *r)
{
	uint32_t k = (uint32_t)(rnd(r) % 100);

	if (k < 55)
		return r->next_ref++;
	if (k < 65)
		return r->tag_limit + (rnd(r) % 64) * 16 + rnd(r) % 16;
	if (k < 70)
		return r->tag_limit - 1 - rnd(r) % 4;
	if (r->n && k < 95)
		return r->orders[rnd(r) % r->n].ref;
	return r->next_ref - 1 - rnd(r) % 64;
}

static int has_event(const struct run *r, uint8_t type, int reason)
{
	for (uint32_t i = 0; i < r->f.batch.n; i++)
		if (r->f.ev[i].type == type && (reason < 0 || r->f.ev[i].side == reason))
			return 1;
	return 0;
}

static int table_full(const struct run *r)
{
	return has_event(r, WB_EV_INTEGRITY, WB_INT_ORDER_TABLE_FULL) ||
	       has_event(r, WB_EV_INTEGRITY, WB_INT_LEVEL_TABLE_FULL);
}

static void check_invariants(struct run *r)
{
	struct wb_bookset *bs = r->f.bs;
	uint32_t nlev = bs->opts.max_levels;
	uint32_t *named = calloc(nlev + 1, sizeof(*named));
	uint8_t *state = calloc(nlev + 1, 1); /* 0 unseen, 1 free, 2 live */
	uint64_t nsurv = 0, live = 0, stale = 0, live_levels = 0, book_live[SYMS] = { 0 };

	assert_non_null(named);
	assert_non_null(state);
	for (uint64_t i = 0; i < table_slots(bs); i++) {
		struct order *o = table_slot(bs, i);

		if (o->level == NIL)
			continue;
		assert_true(o->level <= nlev);
		named[o->level]++;
		if (i > bs->ring_mask) {
			nsurv++;
			assert_ptr_equal(surv_find(bs, survivor_of(o)->ref), o);
		} else {
			assert_true(order_ref(bs, o) < bs->tag_limit);
			assert_ptr_equal(order_locate(bs, order_ref(bs, o)), o);
		}
	}
	assert_int_equal(nsurv, bs->nsurv);
	for (uint32_t li = bs->level_free; li != NIL; li = bs->levels[li].free_next) {
		assert_int_equal(state[li], 0);
		assert_int_equal(named[li], 0);
		state[li] = 1;
	}
	for (uint16_t l = 0; l < SYMS; l++) {
		for (int s = 0; s < 2; s++) {
			const struct side *sd = &bs->books[l].side[s];

			for (uint32_t k = 0; k < sd->n; k++) {
				uint32_t li = bs->arena[sd->off + k].level;
				const struct level *lv = &bs->levels[li];

				assert_int_equal(state[li], 0);
				state[li] = 2;
				assert_false(lv->zombie);
				assert_int_equal(lv->locate, l);
				assert_int_equal(lv->side, s);
				assert_int_equal(lv->orders, named[li]);
				live += named[li];
				book_live[l] += named[li];
				live_levels++;
			}
		}
	}
	for (uint32_t li = 1; li <= nlev; li++) {
		if (state[li])
			continue;
		/* neither free nor in a book: a zombie, holding orders */
		assert_true(bs->levels[li].zombie);
		assert_true(named[li] > 0);
		assert_int_equal(bs->levels[li].orders, named[li]);
		stale += named[li];
	}
	assert_int_equal(live, CNT_GET(bs->live_orders));
	assert_int_equal(stale, bs->stale_orders);
	assert_int_equal(live_levels, CNT_GET(bs->live_levels));
	for (uint16_t l = 0; l < SYMS; l++)
		assert_int_equal(book_live[l], CNT_GET(bs->books[l].live_orders));

	uint64_t model = 0;

	for (uint32_t i = 0; i < r->n; i++) {
		const struct model_order *m = &r->orders[i];

		if (!m->live)
			continue;
		model++;
		struct order *o = order_locate(bs, m->ref);
		assert_non_null(o);
		const struct level *lv = &bs->levels[o->level];
		assert_false(lv->zombie);
		assert_int_equal(lv->price, m->price);
		assert_int_equal(lv->locate, m->locate);
		assert_int_equal(lv->side, m->side);
		assert_int_equal(o->shares, m->shares);
	}
	assert_int_equal(model, live);
	free(named);
	free(state);
}

static void step_add(struct run *r, uint16_t loc)
{
	uint64_t ref = pick_ref(r);
	uint8_t side = (uint8_t)(rnd(r) & 1);
	uint32_t shares = 1 + (uint32_t)(rnd(r) % 100), price = 100 + (uint32_t)(rnd(r) % 6);
	struct wb_itch_msg m = msg_add(loc, ref, side ? 'S' : 'B', shares, price);
	const struct model_order *dup = model_live(r, ref);

	assert_int_equal(fx_apply(&r->f, &m), 0);
	if (r->frozen[loc]) {
		assert_int_equal(r->f.batch.n, 0);
		return;
	}
	if (dup) {
		assert_true(has_event(r, WB_EV_INTEGRITY, WB_INT_DUPLICATE_ORDER));
		r->n_dups++;
	} else if (has_event(r, WB_EV_ORDER_ADD, -1)) {
		model_push(r, (struct model_order){ ref, price, shares, loc, side, 1 });
		r->n_adds++;
		r->n_high += ref >= r->tag_limit;
	} else {
		assert_true(table_full(r));
		r->n_full++;
	}
}

static void step_order_msg(struct run *r, uint16_t loc)
{
	const struct model_order *pick = &r->orders[rnd(r) % r->n];
	uint64_t ref = rnd(r) % 8 ? pick->ref : pick_ref(r);
	struct model_order *o = model_live(r, ref);
	uint16_t mloc = o && rnd(r) % 10 ? o->locate : loc; /* sometimes under another locate */
	uint32_t kind = (uint32_t)(rnd(r) % 4), shares = 1 + (uint32_t)(rnd(r) % 120);
	uint64_t new_ref = rnd(r) % 5 ? pick_ref(r) : ref;
	uint32_t new_price = 100 + (uint32_t)(rnd(r) % 6);
	struct wb_itch_msg m = kind == 0 ? msg_exec(mloc, ref, shares, 7)
			       : kind == 1 ? msg_cancel(mloc, ref, shares)
			       : kind == 2 ? msg_del(mloc, ref)
					   : msg_replace(mloc, ref, new_ref, shares, new_price);
	const struct model_order *dup = kind == 3 ? model_live(r, new_ref) : NULL;

	assert_int_equal(fx_apply(&r->f, &m), 0);
	if (r->frozen[mloc]) {
		assert_int_equal(r->f.batch.n, 0);
		return;
	}
	if (!o) {
		assert_true(has_event(r, WB_EV_INTEGRITY, WB_INT_UNKNOWN_ORDER));
		r->n_unknown++;
		return;
	}
	assert_false(has_event(r, WB_EV_INTEGRITY, WB_INT_UNKNOWN_ORDER));
	if (kind <= 1) {
		o->shares -= shares < o->shares ? shares : o->shares;
		o->live = o->shares != 0;
		return;
	}
	o->live = 0;
	if (kind == 2)
		return;
	if (dup && dup != o) {
		assert_true(has_event(r, WB_EV_INTEGRITY, WB_INT_DUPLICATE_ORDER));
	} else if (has_event(r, WB_EV_ORDER_REPLACE, -1)) {
		/* the new order keeps the original's side and locate */
		model_push(r, (struct model_order){ new_ref, new_price, shares, o->locate, o->side, 1 });
	} else {
		assert_true(table_full(r));
		r->n_full++;
	}
}

/* An operator request served without the service call's sweep, so stale orders linger. */
static void step_request(struct run *r, uint16_t loc, int reset)
{
	struct wb_bookset *bs = r->f.bs;

	if (reset) {
		assert_int_equal(wb_bookset_request_reset(bs, loc), 0);
		if (rnd(r) & 1)
			assert_int_equal(wb_bookset_request_reset(bs, loc), 0);
	} else {
		assert_int_equal(wb_bookset_request_freeze(bs, loc), 0);
	}
	atomic_store(&bs->requests_pending, 0);
	serve_requests(bs);
	r->frozen[loc] = !reset;
	if (reset) {
		for (uint32_t i = 0; i < r->n; i++)
			if (r->orders[i].locate == loc)
				r->orders[i].live = 0;
		r->n_resets++;
	}
}

static void run_stream(uint32_t ring, uint64_t seed, uint32_t steps)
{
	static struct run r;

	memset(&r, 0, sizeof(r));
	r.rng = seed;
	r.next_ref = 1;
	assert_int_equal(fx_init_ring(&r.f, 48, 24, SYMS, WB_POLICY_FLAG, ring), 0);
	r.tag_limit = r.f.bs->tag_limit;
	for (uint32_t step = 0; step < steps; step++) {
		uint32_t k = (uint32_t)(rnd(&r) % 1000);
		uint16_t loc = (uint16_t)(rnd(&r) % 3);

		if (k < 400 || r.n == 0) {
			step_add(&r, loc);
		} else if (k < 850) {
			step_order_msg(&r, loc);
		} else if (k < 870) {
			r.f.batch.n = 0;
			assert_int_equal(wb_bookset_set_level(r.f.bs, 3, rnd(&r) & 1 ? 'B' : 'S',
							      100 + (int64_t)(rnd(&r) % 8),
							      rnd(&r) % 3 ? 1 + (uint32_t)(rnd(&r) % 50) : 0,
							      rnd(&r) & 1, 0, NULL, &r.f.batch),
					 0);
		} else if (k < 890) {
			step_request(&r, (uint16_t)(rnd(&r) % SYMS), 1);
		} else if (k < 895) {
			step_request(&r, (uint16_t)(rnd(&r) % SYMS), 0);
		} else if (k < 960 && r.f.bs->stale_orders) {
			sweep_stale(r.f.bs, 1 + (uint32_t)(rnd(&r) % 8));
		}
		check_invariants(&r);
	}
	print_message("ring %u seed %llu: %llu adds (%llu beyond the tag), %llu unknown, %llu duplicates, "
		      "%llu table full, %llu resets, %llu survivor moves\n",
		      ring, (unsigned long long)seed, (unsigned long long)r.n_adds, (unsigned long long)r.n_high,
		      (unsigned long long)r.n_unknown, (unsigned long long)r.n_dups, (unsigned long long)r.n_full,
		      (unsigned long long)r.n_resets, (unsigned long long)CNT_GET(r.f.bs->survivor_moves));
	/* every path the invariants guard was taken */
	assert_true(r.n_high > 0 && r.n_unknown > 0 && r.n_dups > 0 && r.n_full > 0 && r.n_resets > 0);
	assert_true(ring > 64 || CNT_GET(r.f.bs->survivor_moves) > 0);
	wb_bookset_destroy(r.f.bs);
}

static void test_invariants_tiny_ring(void **state)
{
	(void)state;
	run_stream(16, 88172645463325252ull, 50000);
	run_stream(16, 7, 50000);
}

static void test_invariants_ring_larger_than_the_table(void **state)
{
	(void)state;
	run_stream(1024, 3, 50000);
}

struct walked {
	uint64_t refs[16];
	size_t n;
};

static void walk_cb(void *arg, const struct wb_order_info *o)
{
	struct walked *w = arg;

	if (w->n < 16)
		w->refs[w->n++] = o->ref;
}

/* Arrival stamps are 32-bit: a level's queue stays in arrival order across the wrap of
 * the bookset's add counter (set here just below 2^32, where a day would take years). */
static void test_invariants_arrival_wrap(void **state)
{
	struct fx f;
	struct wb_itch_msg m;
	struct walked w = { 0 };
	static const uint64_t want[] = { 2, 3, 4, 5, 6, 7, 9 };

	(void)state;
	assert_int_equal(fx_init(&f, 64, 16, 2, WB_POLICY_FLAG), 0);
	m = msg_dir(0, "WRAP");
	assert_int_equal(fx_apply(&f, &m), 0);
	atomic_store(&f.bs->arrivals, (1ull << 32) - 3);
	for (uint64_t ref = 1; ref <= 7; ref++) {
		m = msg_add(0, ref, 'B', 100, 100000);
		assert_int_equal(fx_apply(&f, &m), 0);
	}
	/* the first order is replaced at its price: the new reference joins the back */
	m = msg_replace(0, 1, 9, 50, 100000);
	assert_int_equal(fx_apply(&f, &m), 0);
	assert_true(CNT_GET(f.bs->arrivals) > (1ull << 32)); /* the stamps wrapped */
	assert_int_equal(wb_bookset_walk_orders(f.bs, 0, 'B', 100000, walk_cb, &w), 7);
	assert_int_equal(w.n, 7);
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(w.refs[i], want[i]);
	wb_bookset_destroy(f.bs);
}

/* The hint's bookkeeping: a worker hints packet k + 1 before it applies packet k, so the
 * book keeps two; the lean burst that starts with a hinted order message takes its hint
 * (and skips the prefetches it started), any other burst leaves it; a hint that starts
 * with another type is not kept. Burst results are the same either way (test_book_hash). */
static void test_invariants_hint_bookkeeping(void **state)
{
	struct fx f;
	struct wb_itch_msg p1[10], p2[10], p3[3], sys = { .type = 'S', .locate = 0 };
	uint64_t seqs[10] = { 0 };

	(void)state;
	assert_int_equal(fx_init_ring(&f, 256, 64, 2, WB_POLICY_FLAG, 4096), 0);
	for (uint32_t i = 0; i < 10; i++) {
		p1[i] = msg_add(0, 1 + i, 'B', 100, 100000 - i * 100);
		p2[i] = msg_add(0, 11 + i, 'S', 100, 200000 + i * 100);
	}
	for (uint32_t i = 0; i < 3; i++)
		p3[i] = msg_del(0, 1 + i);
	wb_bookset_prefetch_itch_burst(f.bs, p1, 10);
	assert_int_equal(wb_bookset_apply_itch_burst(f.bs, p1, seqs, 10, 0, 0, &f.batch), 0);
	assert_int_equal(f.bs->hint_n[0] + f.bs->hint_n[1], 0); /* taken by its burst */
	f.batch.n = 0;
	wb_bookset_prefetch_itch_burst(f.bs, p3, 3); /* packet 3, hinted before packet 2 applies */
	wb_bookset_prefetch_itch_burst(f.bs, p2, 10);
	assert_int_equal(f.bs->hint_n[0] + f.bs->hint_n[1], 3 + WB_BOOK_PREFETCH_MSGS);
	assert_int_equal(wb_bookset_apply_itch_burst(f.bs, p2, seqs, 10, 0, 0, &f.batch), 0);
	assert_int_equal(f.bs->hint_n[0] + f.bs->hint_n[1], 3); /* packet 3's is still there */
	f.batch.n = 0;
	assert_int_equal(wb_bookset_apply_itch_burst(f.bs, p3, seqs, 3, 0, 0, &f.batch), 0);
	assert_int_equal(f.bs->hint_n[0] + f.bs->hint_n[1], 0);
	f.batch.n = 0;
	wb_bookset_prefetch_itch_burst(f.bs, &sys, 1); /* not an order message: nothing kept */
	assert_int_equal(f.bs->hint_n[0] + f.bs->hint_n[1], 0);
	assert_int_equal(CNT_GET(f.bs->live_orders), 17);
	wb_bookset_destroy(f.bs);
}

/* The burst in each of its first-stage modes (pf_mode: lean, survivors' old references,
 * full) gives the events one call per message gives, byte for byte, on a stream that
 * wraps a 16-slot ring: the modes differ only in prefetches. FULL is forced by setting
 * the adds' survivor prefetch on before every burst (a day turns it on only after 65,536
 * adds with many moves). */
static void test_invariants_burst_modes(void **state)
{
	enum { N = 30000 };
	static struct wb_itch_msg msgs[N];
	static uint64_t seqs[N];
	static struct wb_event e1[256], e2[256], e3[256]; /* room for every event of a burst */
	struct fx one, lean, full;
	uint64_t rng = 4242, ref = 1;
	unsigned modes_seen = 0;

	(void)state;
	assert_int_equal(fx_init_ring(&one, 48, 24, 2, WB_POLICY_FLAG, 16), 0);
	assert_int_equal(fx_init_ring(&lean, 48, 24, 2, WB_POLICY_FLAG, 16), 0);
	assert_int_equal(fx_init_ring(&full, 48, 24, 2, WB_POLICY_FLAG, 16), 0);
	for (uint32_t i = 0; i < N; i++) {
		uint64_t k = fx_xorshift(&rng) % 100, back = 1 + fx_xorshift(&rng) % 40;
		uint64_t old = ref > back ? ref - back : 1;
		uint32_t px = 1000 + (uint32_t)(fx_xorshift(&rng) % 6) * 100;
		char side = fx_xorshift(&rng) & 1 ? 'B' : 'S';

		px += side == 'S' ? 2000 : 0;
		if (k < 45)
			msgs[i] = msg_add(0, ref++, side, 100, px);
		else if (k < 80)
			msgs[i] = msg_del(0, old);
		else if (k < 92)
			msgs[i] = msg_replace(0, old, ref++, 50, px);
		else
			msgs[i] = msg_exec(0, old, 30, i);
		msgs[i].ts = 1000 + i;
		seqs[i] = 1 + i;
	}
	for (uint32_t i = 0, k; i < N; i += k) {
		struct wb_event_batch b1 = { .ev = e1, .cap = 256 }, b2 = { .ev = e2, .cap = 256 },
				      b3 = { .ev = e3, .cap = 256 };

		k = 1 + (uint32_t)(fx_xorshift(&rng) % 40);
		k = k > N - i ? N - i : k;
		for (uint32_t j = 0; j < k; j++) {
			struct wb_msg_meta meta = { .seq = seqs[i + j], .ts_recv = 7 };
			assert_int_equal(wb_bookset_apply_itch(one.bs, &msgs[i + j], &meta, &b1), 0);
		}
		struct pf_ctx pc;
		pf_ctx_init(lean.bs, &pc);
		modes_seen |= 1u << (pc.adds_mask ? PF_FULL : pc.moved_below ? PF_MOVED : PF_LEAN);
		full.bs->pf_moves = ~0ull;
		assert_int_equal(wb_bookset_apply_itch_burst(lean.bs, &msgs[i], &seqs[i], k, 7, 0, &b2), 0);
		assert_int_equal(wb_bookset_apply_itch_burst(full.bs, &msgs[i], &seqs[i], k, 7, 0, &b3), 0);
		assert_int_equal(b1.n, b2.n);
		assert_int_equal(b1.n, b3.n);
		assert_memory_equal(e1, e2, b1.n * sizeof(struct wb_event));
		assert_memory_equal(e1, e3, b1.n * sizeof(struct wb_event));
		assert_int_equal(b1.overflow + b2.overflow + b3.overflow, 0);
	}
	/* the natural bookset went from lean to the survivors' mode; the forced one was full */
	assert_int_equal(modes_seen, (1u << PF_LEAN) | (1u << PF_MOVED));
	assert_true(CNT_GET(full.bs->survivor_moves) > 0);
	wb_bookset_destroy(one.bs);
	wb_bookset_destroy(lean.bs);
	wb_bookset_destroy(full.bs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_invariants_tiny_ring),
		cmocka_unit_test(test_invariants_ring_larger_than_the_table),
		cmocka_unit_test(test_invariants_arrival_wrap),
		cmocka_unit_test(test_invariants_hint_bookkeeping),
		cmocka_unit_test(test_invariants_burst_modes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
