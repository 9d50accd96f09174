/* A generated stream with known ground truth (the naive model) drives the tables hard:
 * hundreds of levels per side, a hash at its minimum size, replaces, partial executions,
 * and an operator reset that must free exactly one symbol's orders. */
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

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
	return fx_xorshift(&rng_state);
}

static uint64_t pick_live(const struct naive *nv, uint16_t *loc)
{
	if (nv->n == 0)
		return 0;
	for (int tries = 0; tries < 64; tries++) {
		const struct norder *o = &nv->o[rnd() % nv->n];
		if (o->live) {
			*loc = o->locate;
			return o->ref;
		}
	}
	return 0;
}

static void test_book_generated_stream_matches_naive(void **state)
{
	enum { SYMS = 4, STEPS = 60000, MAXLIVE = 1500 };
	struct fx f;
	struct naive nv = { .cap = MAXLIVE + 8 };
	uint64_t next_ref = 1;
	size_t live = 0, compared = 0;

	(void)state;
	nv.o = calloc(nv.cap, sizeof(*nv.o));
	assert_non_null(nv.o);
	/* a hash barely over 2x the orders and levels enough for a deep book */
	assert_int_equal(fx_init(&f, MAXLIVE, 4 * MAXLIVE, SYMS, WB_POLICY_FLAG), 0);
	for (uint16_t l = 0; l < SYMS; l++) {
		struct wb_itch_msg r = msg_dir(l, l == 0 ? "AAA" : l == 1 ? "BBB" : l == 2 ? "CCC" : "DDD");
		fx_apply(&f, &r);
	}
	for (int step = 0; step < STEPS; step++) {
		struct wb_itch_msg m;
		uint16_t loc = (uint16_t)(rnd() % SYMS);
		uint64_t ref = 0;
		unsigned r = (unsigned)(rnd() % 100);

		if (live < 50 || (r < 45 && live < MAXLIVE)) {
			char side = rnd() & 1 ? 'B' : 'S';
			/* bids below 10000, asks above: never locked or crossed; spread over ~600 ticks */
			uint32_t dist = (uint32_t)(rnd() % 16 == 0 ? rnd() % 600 : rnd() % 20);
			uint32_t price = side == 'B' ? 10000 - 1 - dist : 10000 + 1 + dist;
			m = msg_add(loc, next_ref++, side, (uint32_t)(1 + rnd() % 500), price);
		} else if ((ref = pick_live(&nv, &loc)) == 0) {
			continue;
		} else if (r < 70) {
			m = msg_del(loc, ref);
		} else if (r < 85) {
			const struct norder *o = naive_find(&nv, ref);
			uint32_t dist = (uint32_t)(rnd() % 30);
			uint32_t price = o->side == 'B' ? 10000 - 1 - dist : 10000 + 1 + dist;
			m = msg_replace(loc, ref, next_ref++, (uint32_t)(1 + rnd() % 500), price);
		} else if (r < 93) {
			const struct norder *o = naive_find(&nv, ref);
			m = msg_exec(loc, ref, (uint32_t)(1 + rnd() % o->shares), (uint64_t)step);
		} else if (r < 96) {
			const struct norder *o = naive_find(&nv, ref);
			m = msg_exec_px(loc, ref, (uint32_t)(1 + rnd() % o->shares), (uint64_t)step, 'Y', 10000);
		} else {
			const struct norder *o = naive_find(&nv, ref);
			m = msg_cancel(loc, ref, (uint32_t)(1 + rnd() % o->shares));
		}
		naive_apply(&nv, &m);
		assert_int_equal(fx_apply(&f, &m), 0);
		for (uint32_t i = 0; i < f.batch.n; i++)
			assert_int_not_equal(f.ev[i].type, WB_EV_INTEGRITY);
		live = 0;
		for (size_t i = 0; i < nv.n; i++)
			live += nv.o[i].live;
		if (step % 5000 == 4999)
			for (uint16_t l = 0; l < SYMS; l++)
				compared += compare_symbol(f.bs, &nv, l);
	}
	for (uint16_t l = 0; l < SYMS; l++)
		compared += compare_symbol(f.bs, &nv, l);

	/* an operator reset of one symbol frees exactly its orders */
	struct wb_bookset_stats bst;
	wb_bookset_stats(f.bs, &bst);
	assert_int_equal(bst.live_orders, live);
	size_t of0 = 0;
	for (size_t i = 0; i < nv.n; i++)
		if (nv.o[i].live && nv.o[i].locate == 0) {
			of0++;
			nv.o[i].live = 0;
		}
	assert_int_equal(wb_bookset_request_reset(f.bs, 0), 0);
	wb_bookset_service(f.bs);
	wb_bookset_stats(f.bs, &bst);
	assert_int_equal(bst.live_orders, live - of0);
	for (uint16_t l = 0; l < SYMS; l++)
		compare_symbol(f.bs, &nv, l);
	printf("# %d steps, %zu live orders at end, %zu levels compared\n", STEPS, live, compared);
	wb_bookset_destroy(f.bs);
	free(nv.o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_book_generated_stream_matches_naive),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
