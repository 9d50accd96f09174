/* Real data end to end: the Nasdaq BX ITCH 5.0 sample (shared/data/itch) goes through the
 * real book, whose events go through a ring and a persister to disk. The capture must
 * hold exactly the events the book produced, and `wbcap book` rebuilt from the capture
 * must equal the book's own final depth for every symbol. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "book.h"
#include "capture.h"
#include "itch.h"

static char bindir[PATH_MAX], sample[PATH_MAX + 64];

struct expect {
	char bids[32768], asks[32768];
	int nb, na;
};

/* wbcap's JSON for one level, best first, at most 32 per side */
static void add_level(void *arg, char side, const struct wb_level *l)
{
	struct expect *x = arg;
	char *dst = side == 'B' ? x->bids : x->asks;
	int *n = side == 'B' ? &x->nb : &x->na;
	if (*n == 32)
		return;
	char px[32];
	wb_price_format(px, sizeof(px), l->price, 4);
	size_t used = strlen(dst);
	snprintf(dst + used, sizeof(x->bids) - used, "%s{\"price\":\"%s\",\"shares\":%llu,\"orders\":%u}",
		 *n ? "," : "", px, (unsigned long long)l->shares, l->orders);
	(*n)++;
}

/* wbcap book (--at at_ns when non-zero) against the book's own full depth, per symbol;
 * returns how many symbols with resting orders matched. */
static int compare_books(const struct wb_bookset *bs, const char *dir, uint64_t at_ns)
{
	char cmd[PATH_MAX * 2];
	static char line[65536];
	FILE *o;
	int checked = 0;
	for (int loc = wb_bookset_next_symbol(bs, 0); loc >= 0; loc = wb_bookset_next_symbol(bs, (uint32_t)loc + 1)) {
		struct wb_symbol_stats top;
		assert_int_equal(wb_bookset_symbol_stats(bs, (uint16_t)loc, &top), 0);
		static struct expect x;
		memset(&x, 0, sizeof(x));
		wb_bookset_walk_levels(bs, (uint16_t)loc, add_level, &x);
		if (!top.stock[0] && !x.nb && !x.na)
			continue; /* a locate with neither name nor orders */
		static char expect[70000];
		snprintf(expect, sizeof(expect), "{\"symbol\":\"%s\",\"bids\":[%s],\"asks\":[%s]}\n", top.stock, x.bids,
			 x.asks);
		int w = snprintf(cmd, sizeof(cmd), "%s/wbcap book %s %s --depth 32 --json", bindir, dir, top.stock);
		if (at_ns)
			snprintf(cmd + w, sizeof(cmd) - (size_t)w, " --at %llu", (unsigned long long)at_ns);
		o = popen(cmd, "r");
		line[0] = 0;
		char *got = fgets(line, sizeof(line), o);
		int rc = pclose(o);
		if (!x.nb && !x.na && !got)
			continue; /* a directory entry with no orders: wbcap says so and exits 1 */
		assert_int_equal(rc, 0);
		assert_string_equal(line, expect);
		if (x.nb + x.na)
			checked++;
	}
	print_message("books compared%s: %d symbols with resting orders\n", at_ns ? " at mid-session" : "", checked);
	return checked;
}

static void test_itch_sample_capture(void **state)
{
	(void)state;
	FILE *in = fopen(sample, "rb");
	assert_non_null(in);
	struct wb_book_opts bo = { .max_orders = 1 << 16, .max_levels = 1 << 14, .max_symbols = 65536,
				   .snapshot_depth = 10, .price_decimals = 4, .feed = 0, .numa_node = -1 };
	struct wb_bookset *bs;
	assert_int_equal(wb_bookset_create(&bo, &bs), 0);
	char dir[] = "/tmp/wbpitch.XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct wb_capture_conf cap = { .zstd_level = 1, .block_bytes = 256 << 10, .rotate_bytes = 64 << 20,
				       .queue_depth = 4 };
	snprintf(cap.directory, sizeof(cap.directory), "%s", dir);
	const char *names[] = { "bx" }, *protos[] = { "itch50-moldudp64" };
	struct wb_persister_opts po = { .cap = &cap, .name = "itch", .core = UINT_MAX, .nfeeds = 1,
					.feed_names = names, .feed_protocols = protos, .price_decimals = 4 };
	struct wb_persister *p;
	struct wb_evring ring;
	assert_int_equal(wb_evring_init(&ring, 4096, NULL), 0);
	assert_int_equal(wb_persister_create(&po, &p), 0);
	assert_int_equal(wb_persister_attach(p, &ring, "w0"), 0);
	assert_int_equal(wb_persister_start(p), 0);

	struct wb_event evbuf[256];
	struct wb_event_batch batch = { .ev = evbuf, .cap = 256 };
	uint8_t msg[256], lenb[2];
	uint64_t seq = 1, events = 0, msgs = 0;
	while (fread(lenb, 1, 2, in) == 2) {
		size_t len = (size_t)lenb[0] << 8 | lenb[1];
		assert_true(len > 0 && len <= sizeof(msg));
		assert_int_equal(fread(msg, 1, len, in), len);
		struct wb_itch_msg m;
		if (wb_itch_decode(msg, len, &m))
			continue;
		struct wb_msg_meta meta = { .seq = seq++, .ts_recv = 1577700000000000000ull + m.ts };
		batch.n = 0;
		assert_int_equal(wb_bookset_apply_itch(bs, &m, &meta, &batch), 0);
		msgs++;
		while (batch.n && wb_evring_count(&ring) + batch.n + 1 > ring.size)
			usleep(20);
		if (batch.n)
			assert_int_equal(wb_evring_push(&ring, batch.ev, batch.n), batch.n);
		events += batch.n;
	}
	fclose(in);
	assert_int_equal(batch.overflow, 0);
	assert_int_equal(wb_persister_stop(p), 0);
	struct wb_persist_stats st;
	wb_persister_stats(p, &st);
	assert_int_equal(st.events_in, events);
	assert_int_equal(ring.drop_events, 0);
	print_message("ITCH sample: %llu messages -> %llu events, %llu bytes in, %llu on disk, ratio %.2f\n",
		      (unsigned long long)msgs, (unsigned long long)events, (unsigned long long)st.bytes_in,
		      (unsigned long long)st.bytes_out, st.compression_ratio);
	assert_true(msgs > 12000);
	wb_persister_destroy(p);

	/* every event came back, and the capture is whole */
	char cmd[PATH_MAX * 2], line[4096];
	snprintf(cmd, sizeof(cmd), "%s/wbcap verify %s", bindir, dir);
	FILE *o = popen(cmd, "r");
	char last[4096] = "";
	while (fgets(line, sizeof(line), o))
		snprintf(last, sizeof(last), "%s", line);
	assert_int_equal(pclose(o), 0);
	char want[128];
	snprintf(want, sizeof(want), "blocks, %llu events;", (unsigned long long)events);
	assert_non_null(strstr(last, want));

	/* the book rebuilt from the capture equals the live book, for every symbol */
	assert_true(compare_books(bs, dir, 0) >= 3);
	/* and at an instant in the middle: a second book fed up to that time */
	struct wb_bookset *half;
	assert_int_equal(wb_bookset_create(&bo, &half), 0);
	in = fopen(sample, "rb");
	uint64_t k = 0, t_mid = 0;
	while (fread(lenb, 1, 2, in) == 2) {
		size_t len = (size_t)lenb[0] << 8 | lenb[1];
		assert_int_equal(fread(msg, 1, len, in), len);
		struct wb_itch_msg m;
		if (wb_itch_decode(msg, len, &m))
			continue;
		if (++k == msgs / 2)
			t_mid = m.ts;
		if (t_mid && m.ts > t_mid)
			break;
		struct wb_msg_meta meta = { .seq = k };
		batch.n = 0;
		assert_int_equal(wb_bookset_apply_itch(half, &m, &meta, &batch), 0);
	}
	fclose(in);
	assert_true(compare_books(half, dir, t_mid) >= 3);
	wb_bookset_destroy(half);
	wb_bookset_destroy(bs);
	free(ring.slots);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const char *b = getenv("WB_BIN_DIR"), *sh = getenv("WB_SHARED_DIR"), *src = getenv("WB_SOURCE_DIR");
	snprintf(bindir, sizeof(bindir), "%s", b ? b : "build/bin");
	if (sh)
		snprintf(sample, sizeof(sample), "%s/data/itch/ritch-bx-sample.itch", sh);
	else
		snprintf(sample, sizeof(sample), "%s/../shared/data/itch/ritch-bx-sample.itch", src ? src : ".");
	if (access(sample, R_OK)) {
		fprintf(stderr, "SKIP: %s not found (real ITCH sample from shared/data)\n", sample);
		return 77;
	}
	char probe[PATH_MAX + 16];
	snprintf(probe, sizeof(probe), "%s/wbcap", bindir);
	if (access(probe, X_OK)) {
		fprintf(stderr, "SKIP: %s not built\n", probe);
		return 77;
	}
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_itch_sample_capture) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
