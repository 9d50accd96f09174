/* Readers never see a torn or half-batched snapshot: the writer rewrites every level of a
 * synthetic book each generation g (shares = g * (rank + 1), seq = g) one level at a time,
 * publishing after every update, while a reader thread checks the invariant.
 * Order books are read live (no snapshot): the writer replaces every order of a book each
 * generation, in random order, and a reader checks every read is a state between two
 * whole messages. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "book.h"

#define LOC 3
#define DEPTH 8
#define UPDATES 1000000

struct shared {
	struct wb_bookset *bs;
	int (*check)(const struct wb_top *t, uint64_t *last); /* 0 ok, -1 torn, -2 backwards */
	atomic_int stop, started;
	_Atomic uint64_t reads; /* the writer of the live test waits on it */
	uint64_t busy, empty, torn, backwards;
};

static int check_top(const struct wb_top *t, uint64_t *last_g)
{
	uint64_t g = t->seq;

	if (t->nbids != DEPTH || t->nasks != DEPTH)
		return -1;
	for (uint32_t i = 0; i < DEPTH; i++) {
		if (t->bids[i].shares != g * (i + 1) || t->asks[i].shares != g * (i + 1))
			return -1;
		if (t->bids[i].price != 10000 - (int64_t)i || t->asks[i].price != 10001 + (int64_t)i)
			return -1;
	}
	if (t->ts_exch != g)
		return -1;
	if (g < *last_g)
		return -2;
	*last_g = g;
	return 0;
}

static void *reader(void *arg)
{
	struct shared *sh = arg;
	uint64_t last_g = 0;
	struct wb_top t;

	atomic_store_explicit(&sh->started, 1, memory_order_release);

	while (!atomic_load_explicit(&sh->stop, memory_order_acquire)) {
		int rc = wb_bookset_read_top(sh->bs, LOC, DEPTH, &t);

		if (rc == -EAGAIN) {
			sh->busy++;
			continue;
		}
		if (rc != 0 || t.seq == 0) {
			sh->empty++;
			continue;
		}
		atomic_fetch_add_explicit(&sh->reads, 1, memory_order_relaxed);
		rc = sh->check(&t, &last_g);
		if (rc == -1)
			sh->torn++;
		else if (rc == -2)
			sh->backwards++;
	}
	return NULL;
}

static void test_book_seqlock_no_torn_reads(void **state)
{
	struct wb_book_opts o = {
		.max_orders = 16, .max_levels = 64, .max_symbols = 8, .snapshot_depth = DEPTH,
		.price_decimals = 4, .policy = WB_POLICY_FLAG, .numa_node = -1,
	};
	struct shared sh = { 0 };
	struct wb_event ev[4];
	struct wb_event_batch batch = { .ev = ev, .cap = 4 };
	pthread_t th;
	unsigned order[2 * DEPTH];
	uint64_t rng = 88172645463325252ull;

	(void)state;
	sh.check = check_top;
	assert_int_equal(wb_bookset_create(&o, &sh.bs), 0);
	assert_int_equal(wb_bookset_define_symbol(sh.bs, LOC, "SYNTH   "), 0);
	for (unsigned i = 0; i < 2 * DEPTH; i++)
		order[i] = i;
	assert_int_equal(pthread_create(&th, NULL, reader, &sh), 0);
	while (!atomic_load_explicit(&sh.started, memory_order_acquire))
		sched_yield();

	for (uint64_t g = 1, n = 0; n < UPDATES; g++) {
		struct wb_msg_meta meta = { .seq = g };

		/* a fresh random order of the 16 level updates each generation */
		for (unsigned i = 2 * DEPTH - 1; i > 0; i--) {
			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			unsigned j = (unsigned)(rng % (i + 1)), tmp = order[i];
			order[i] = order[j];
			order[j] = tmp;
		}
		for (unsigned k = 0; k < 2 * DEPTH; k++, n++) {
			unsigned lv = order[k];
			char side = lv < DEPTH ? 'B' : 'S';
			unsigned rank = lv % DEPTH;
			int64_t price = side == 'B' ? 10000 - (int64_t)rank : 10001 + (int64_t)rank;

			batch.n = 0;
			assert_int_equal(wb_bookset_set_level(sh.bs, LOC, side, price, (uint32_t)(g * (rank + 1)),
							      k == 2 * DEPTH - 1, g, &meta, &batch),
					 0);
			/* publishing mid-batch must not expose the half-written generation */
			wb_bookset_publish(sh.bs);
		}
	}
	atomic_store_explicit(&sh.stop, 1, memory_order_release);
	pthread_join(th, NULL);
	printf("# reads %llu busy %llu empty %llu torn %llu backwards %llu\n", (unsigned long long)sh.reads,
	       (unsigned long long)sh.busy, (unsigned long long)sh.empty, (unsigned long long)sh.torn,
	       (unsigned long long)sh.backwards);
	assert_true(sh.reads > 0);
	assert_int_equal(sh.torn, 0);
	assert_int_equal(sh.backwards, 0);

	struct wb_symbol_stats st;
	assert_int_equal(wb_bookset_symbol_stats(sh.bs, LOC, &st), 0);
	assert_int_equal(st.integrity_total, 0);
	wb_bookset_destroy(sh.bs);
}

/* A state between two whole replace messages: every level present, one order each, the
 * right price, shares (rank + 1) * g with g at most one generation apart across levels. */
static int check_live(const struct wb_top *t, uint64_t *last_seq)
{
	uint64_t gmin = UINT64_MAX, gmax = 0;

	if (t->nbids != DEPTH || t->nasks != DEPTH)
		return -1;
	for (uint32_t i = 0; i < 2 * DEPTH; i++) {
		const struct wb_level *l = i < DEPTH ? &t->bids[i] : &t->asks[i - DEPTH];
		uint32_t rank = i % DEPTH;
		int64_t price = i < DEPTH ? 10000 - (int64_t)rank : 10001 + (int64_t)rank;

		if (l->price != price || l->orders != 1 || l->shares % (rank + 1))
			return -1;
		uint64_t g = l->shares / (rank + 1);
		gmin = g < gmin ? g : gmin;
		gmax = g > gmax ? g : gmax;
	}
	if (gmax - gmin > 1)
		return -1;
	if (t->seq < *last_seq)
		return -2;
	*last_seq = t->seq;
	return 0;
}

static void test_book_live_reads_never_torn(void **state)
{
	struct wb_book_opts o = {
		.max_orders = 64, .max_levels = 64, .max_symbols = 8, .snapshot_depth = DEPTH,
		.price_decimals = 4, .policy = WB_POLICY_FLAG, .numa_node = -1,
	};
	struct shared sh = { 0 };
	struct wb_event ev[8];
	struct wb_event_batch batch = { .ev = ev, .cap = 8 };
	uint64_t ref[2 * DEPTH], next_ref = 1, seq = 0, rng = 88172645463325252ull;
	unsigned order[2 * DEPTH];
	struct wb_itch_msg m;
	pthread_t th;

	(void)state;
	assert_int_equal(wb_bookset_create(&o, &sh.bs), 0);
	assert_int_equal(wb_bookset_define_symbol(sh.bs, LOC, "LIVE    "), 0);
	/* generation 1: one order per level */
	for (unsigned lv = 0; lv < 2 * DEPTH; lv++) {
		unsigned rank = lv % DEPTH;
		struct wb_msg_meta meta = { .seq = ++seq };

		memset(&m, 0, sizeof(m));
		m.type = 'A';
		m.locate = LOC;
		m.u.add.ref = ref[lv] = next_ref++;
		m.u.add.side = lv < DEPTH ? 'B' : 'S';
		m.u.add.shares = rank + 1;
		m.u.add.price = (uint32_t)(lv < DEPTH ? 10000 - rank : 10001 + rank);
		batch.n = 0;
		assert_int_equal(wb_bookset_apply_itch(sh.bs, &m, &meta, &batch), 0);
		order[lv] = lv;
	}
	sh.check = check_live;
	assert_int_equal(pthread_create(&th, NULL, reader, &sh), 0);
	while (!atomic_load_explicit(&sh.started, memory_order_acquire))
		sched_yield();
	for (uint64_t g = 2, n = 0; n < UPDATES; g++) {
		for (unsigned i = 2 * DEPTH - 1; i > 0; i--) {
			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			unsigned j = (unsigned)(rng % (i + 1)), tmp = order[i];
			order[i] = order[j];
			order[j] = tmp;
		}
		/* a feed pauses between packets; here every 256 generations the writer waits
		 * (at most a second) for one more read, so reads interleave even on a loaded host */
		if (g % 256 == 0) {
			uint64_t r0 = atomic_load_explicit(&sh.reads, memory_order_relaxed);
			for (int w = 0; w < 100000 && atomic_load_explicit(&sh.reads, memory_order_relaxed) == r0; w++)
				usleep(10);
		}
		/* each replace frees the level and takes one again inside one message */
		for (unsigned k = 0; k < 2 * DEPTH; k++, n++) {
			unsigned lv = order[k], rank = lv % DEPTH;
			struct wb_msg_meta meta = { .seq = ++seq };

			memset(&m, 0, sizeof(m));
			m.type = 'U';
			m.locate = LOC;
			m.u.replace.old_ref = ref[lv];
			m.u.replace.new_ref = ref[lv] = next_ref++;
			m.u.replace.shares = (uint32_t)(g * (rank + 1));
			m.u.replace.price = (uint32_t)(lv < DEPTH ? 10000 - rank : 10001 + rank);
			batch.n = 0;
			assert_int_equal(wb_bookset_apply_itch(sh.bs, &m, &meta, &batch), 0);
		}
	}
	atomic_store_explicit(&sh.stop, 1, memory_order_release);
	pthread_join(th, NULL);
	printf("# live: reads %llu busy %llu empty %llu torn %llu backwards %llu\n", (unsigned long long)sh.reads,
	       (unsigned long long)sh.busy, (unsigned long long)sh.empty, (unsigned long long)sh.torn,
	       (unsigned long long)sh.backwards);
	assert_true(sh.reads > 0);
	assert_int_equal(sh.torn, 0);
	assert_int_equal(sh.backwards, 0);
	struct wb_symbol_stats st;
	assert_int_equal(wb_bookset_symbol_stats(sh.bs, LOC, &st), 0);
	assert_int_equal(st.integrity_total, 0);
	wb_bookset_destroy(sh.bs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_book_seqlock_no_torn_reads),
		cmocka_unit_test(test_book_live_reads_never_torn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
