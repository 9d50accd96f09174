/* The real BX sample (12,012 messages) against a deliberately naive reconstruction: the
 * final books, at full depth and queue by queue, are equal, and the integrity events are
 * exactly the problems the naive model finds on its own. The sample was drawn message by
 * message from a real day, so some orders it touches were never added (117 references)
 * and executions that took liquidity are missing (the book crosses 279 times); the book
 * must report those, and nothing else. */
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
#include "itch.h"
#include "naive_book.h"


static uint8_t *load_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void test_book_replay_bx_sample_matches_naive(void **state)
{
	const char *shared = getenv("WB_SHARED_DIR");
	const char *src = getenv("WB_SOURCE_DIR");
	char path[1024];
	size_t len, off = 0, msgs = 0, levels = 0;
	uint8_t *buf;
	struct fx f;
	struct naive nv = { .cap = 20000 };
	struct wb_bookset_stats bst;
	uint64_t types[256] = { 0 };
	uint64_t seen[WB_INT_REASON_MAX] = { 0 };

	(void)state;
	if (shared)
		snprintf(path, sizeof(path), "%s/data/itch/ritch-bx-sample.itch", shared);
	else
		snprintf(path, sizeof(path), "%s/../shared/data/itch/ritch-bx-sample.itch", src ? src : ".");
	buf = load_file(path, &len);
	if (!buf) {
		printf("SKIP: %s not found (real captures live in ../shared/data)\n", path);
		exit(77);
	}
	nv.o = calloc(nv.cap, sizeof(*nv.o));
	assert_non_null(nv.o);
	assert_int_equal(fx_init(&f, 8192, 8192, 65536, WB_POLICY_FLAG), 0);

	while (off + 2 <= len) {
		size_t mlen = ((size_t)buf[off] << 8) | buf[off + 1];
		struct wb_itch_msg m;

		assert_true(off + 2 + mlen <= len);
		assert_int_equal(wb_itch_decode(buf + off + 2, mlen, &m), WB_ITCH_OK);
		off += 2 + mlen;
		types[(uint8_t)m.type]++;
		naive_apply(&nv, &m);
		f.batch.n = 0;
		struct wb_msg_meta meta = { .seq = ++msgs };
		assert_int_equal(wb_bookset_apply_itch(f.bs, &m, &meta, &f.batch), 0);
		for (uint32_t i = 0; i < f.batch.n; i++)
			if (f.ev[i].type == WB_EV_INTEGRITY) {
				assert_true(f.ev[i].side > 0 && f.ev[i].side < WB_INT_REASON_MAX);
				seen[f.ev[i].side]++;
			}
		assert_true(f.batch.n > 0);
		assert_true(f.ev[f.batch.n - 1].flags & WB_EVF_BATCH_END);
	}
	assert_int_equal(off, len);
	assert_int_equal(msgs, 12012);

	wb_bookset_stats(f.bs, &bst);
	uint64_t total = 0;
	for (int r = 1; r < WB_INT_REASON_MAX; r++) {
		uint64_t per_symbol = 0;
		for (int loc = wb_bookset_next_symbol(f.bs, 0); loc >= 0;
		     loc = wb_bookset_next_symbol(f.bs, (uint32_t)loc + 1)) {
			struct wb_symbol_stats st;
			assert_int_equal(wb_bookset_symbol_stats(f.bs, (uint16_t)loc, &st), 0);
			per_symbol += st.integrity[r];
		}
		if (seen[r] != nv.integrity[r] || per_symbol != seen[r])
			fail_msg("integrity %s: book events %llu, book counters %llu, naive model %llu",
				 wb_integrity_reason_name((uint8_t)r), (unsigned long long)seen[r],
				 (unsigned long long)per_symbol, (unsigned long long)nv.integrity[r]);
		total += seen[r];
	}
	assert_int_equal(bst.integrity_total, total);
	/* the sample's defects, also counted by a separate script when this test was written */
	assert_int_equal(nv.integrity[WB_INT_UNKNOWN_ORDER], 117);
	assert_int_equal(nv.integrity[WB_INT_CROSSED], 279);
	assert_int_equal(total, 117 + 279);
	assert_int_equal(bst.event_overflow, 0);
	size_t live = 0;
	for (size_t i = 0; i < nv.n; i++)
		live += nv.o[i].live;
	assert_int_equal(bst.live_orders, live);
	for (int loc = wb_bookset_next_symbol(f.bs, 0); loc >= 0; loc = wb_bookset_next_symbol(f.bs, (uint32_t)loc + 1))
		levels += compare_symbol(f.bs, &nv, (uint16_t)loc);
	/* every locate that holds orders in the model is a defined symbol */
	for (size_t i = 0; i < nv.n; i++)
		if (nv.o[i].live) {
			struct wb_symbol_stats st;
			assert_int_equal(wb_bookset_symbol_stats(f.bs, nv.o[i].locate, &st), 0);
			assert_true(st.stock[0] != '\0');
		}
	printf("# integrity: unknown_order %llu crossed %llu locked %llu\n",
	       (unsigned long long)seen[WB_INT_UNKNOWN_ORDER], (unsigned long long)seen[WB_INT_CROSSED],
	       (unsigned long long)seen[WB_INT_LOCKED]);
	printf("# %zu messages (A %llu F %llu E %llu C %llu X %llu D %llu U %llu), %llu symbols, %zu live orders, %zu levels compared\n",
	       msgs, (unsigned long long)types['A'], (unsigned long long)types['F'], (unsigned long long)types['E'],
	       (unsigned long long)types['C'], (unsigned long long)types['X'], (unsigned long long)types['D'],
	       (unsigned long long)types['U'], (unsigned long long)bst.symbols, live, levels);
	assert_true(levels > 0);
	wb_bookset_destroy(f.bs);
	free(nv.o);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_book_replay_bx_sample_matches_naive),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
