/* End to end without DPDK: the real IEX captures go through the iex-deep / iex-tops
 * plug-ins datagram by datagram, exactly as the dataplane hands them over, and the
 * result is compared with tests/iex/iex_count.py, an independent reader: per-type
 * message counts, sequencing counters, and every symbol's final book level by level. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "feed.h"
#include "iex.h"
#include "iex_pcap.h"

extern const struct wb_feed_proto wb_feed_iex_deep;
extern const struct wb_feed_proto wb_feed_iex_tops;

#define EV_CAP 65536

static struct wb_event events[EV_CAP];

static const struct {
	char type;
	const char *counter;
} type_counters[] = {
	{ 'S', "system_event_messages_total" },         { 'D', "security_directory_messages_total" },
	{ 'H', "trading_status_messages_total" },       { 'I', "retail_liquidity_messages_total" },
	{ 'O', "operational_halt_messages_total" },     { 'P', "short_sale_price_test_messages_total" },
	{ 'E', "security_event_messages_total" },       { '8', "price_level_buy_messages_total" },
	{ '5', "price_level_sell_messages_total" },     { 'T', "trade_report_messages_total" },
	{ 'X', "official_price_messages_total" },       { 'B', "trade_break_messages_total" },
	{ 'A', "auction_information_messages_total" },  { 'Q', "quote_update_messages_total" },
};

struct replay {
	const struct wb_feed_proto *proto;
	void *feed;
	struct wb_bookset *books;
	uint64_t ev_by_type[WB_EV_TYPE_MAX];
	uint64_t overflow;
};

static uint64_t counter(struct replay *r, const char *name, int line)
{
	struct wb_counter c[64];
	size_t n = r->proto->counters(r->feed, c, 64);
	uint64_t sum = 0;
	bool found = false;
	for (size_t k = 0; k < n && k < 64; k++) {
		if (strcmp(c[k].name, name) == 0 && (line == -2 || c[k].line == line)) {
			sum += c[k].value;
			found = true;
		}
	}
	if (!found)
		fail_msg("no counter %s", name);
	return sum;
}

static json_t *reference(const char *capture)
{
	char out[4096], cmd[8192];
	const char *src = getenv("WB_SOURCE_DIR");
	snprintf(out, sizeof(out), "%s/ref-%s.json", WB_IEX_TMP_DIR, strrchr(capture, '/') + 1);
	snprintf(cmd, sizeof(cmd), "python3 '%s/tests/iex/iex_count.py' '%s' '%s'", src ? src : ".", capture, out);
	assert_int_equal(system(cmd), 0);
	json_error_t err;
	json_t *j = json_load_file(out, 0, &err);
	if (!j)
		fail_msg("%s: %s", out, err.text);
	return j;
}

/* lines = 1: every datagram on line A; 2: each datagram on A, then the same on B. */
static void replay(struct replay *r, const struct wb_feed_proto *proto, const struct iex_capture *cap, int lines)
{
	struct wb_feed_conf fc;
	memset(&fc, 0, sizeof(fc));
	fc.max_symbols = 16384;
	fc.max_levels = 262144;
	fc.max_orders = 16;
	fc.snapshot_depth = 10;
	fc.gap_timeout_ms = 500; /* the configuration's defaults */
	fc.reorder_buffer = 4096;
	memset(r, 0, sizeof(*r));
	r->proto = proto;
	assert_int_equal(proto->create(&fc, 0, -1, &r->feed), 0);
	r->books = proto->books(r->feed);
	struct wb_event_batch b = { .ev = events, .cap = EV_CAP };
	for (size_t k = 0; k < cap->n; k++) {
		for (int line = 0; line < lines; line++) {
			struct wb_rx_meta rx = { .ts_recv = cap->dgrams[k].ts_ns, .line = (uint8_t)line };
			b.n = 0;
			proto->on_datagram(r->feed, cap->dgrams[k].payload, cap->dgrams[k].len, &rx, &b);
			wb_bookset_publish(r->books);
			for (uint32_t e = 0; e < b.n; e++)
				r->ev_by_type[events[e].type]++;
		}
	}
	r->overflow = b.overflow;
}

struct side_levels {
	size_t nb, na;
	int64_t bpx[4096], apx[4096];
	uint64_t bsz[4096], asz[4096];
};

static void collect(void *arg, char side, const struct wb_level *lvl)
{
	struct side_levels *s = arg;
	if (side == 'B' && s->nb < 4096) {
		s->bpx[s->nb] = lvl->price;
		s->bsz[s->nb++] = lvl->shares;
	} else if (side == 'S' && s->na < 4096) {
		s->apx[s->na] = lvl->price;
		s->asz[s->na++] = lvl->shares;
	}
}

static void check_side(const char *sym, const char *side, json_t *want, size_t n, const int64_t *px,
		       const uint64_t *sz)
{
	if (json_array_size(want) != n)
		fail_msg("%s %s: %zu levels, reference has %zu", sym, side, n, json_array_size(want));
	for (size_t k = 0; k < n; k++) {
		json_t *lv = json_array_get(want, k);
		int64_t wpx = json_integer_value(json_array_get(lv, 0));
		int64_t wsz = json_integer_value(json_array_get(lv, 1));
		if (wpx != px[k] || (uint64_t)wsz != sz[k])
			fail_msg("%s %s level %zu: %lld x %llu, reference %lld x %lld", sym, side, k,
				 (long long)px[k], (unsigned long long)sz[k], (long long)wpx, (long long)wsz);
	}
}

/* Every symbol's final book equals the reference, and no other symbol holds a level. */
static void check_books(struct replay *r, json_t *ref)
{
	json_t *books = json_object_get(ref, "books");
	const char *sym;
	json_t *want;
	size_t ref_levels = 0, levels = 0;
	static struct side_levels s;
	json_object_foreach(books, sym, want) {
		int loc = wb_bookset_find(r->books, sym);
		if (loc < 0)
			fail_msg("%s: no book", sym);
		memset(&s, 0, sizeof(s));
		wb_bookset_walk_levels(r->books, (uint16_t)loc, collect, &s);
		check_side(sym, "bids", json_object_get(want, "bids"), s.nb, s.bpx, s.bsz);
		check_side(sym, "asks", json_object_get(want, "asks"), s.na, s.apx, s.asz);
		ref_levels += json_array_size(json_object_get(want, "bids")) + json_array_size(json_object_get(want, "asks"));
	}
	for (int loc = wb_bookset_next_symbol(r->books, 0); loc >= 0; loc = wb_bookset_next_symbol(r->books, (uint32_t)loc + 1)) {
		memset(&s, 0, sizeof(s));
		levels += wb_bookset_walk_levels(r->books, (uint16_t)loc, collect, &s);
	}
	assert_int_equal(levels, ref_levels);
}

static void check_counts(struct replay *r, json_t *ref, int lines)
{
	uint64_t msgs = (uint64_t)json_integer_value(json_object_get(ref, "messages"));
	assert_int_equal(counter(r, "packets_total", 0), json_integer_value(json_object_get(ref, "packets")));
	assert_int_equal(counter(r, "messages_total", -1), msgs);
	json_t *types = json_object_get(ref, "types");
	for (size_t k = 0; k < sizeof(type_counters) / sizeof(type_counters[0]); k++) {
		char t[2] = { type_counters[k].type, 0 };
		json_t *v = json_object_get(types, t);
		uint64_t want = v ? (uint64_t)json_integer_value(v) : 0;
		if (counter(r, type_counters[k].counter, -1) != want)
			fail_msg("%s: %llu, reference %llu", type_counters[k].counter,
				 (unsigned long long)counter(r, type_counters[k].counter, -1), (unsigned long long)want);
	}
	assert_int_equal(counter(r, "symbols_total", -1), json_integer_value(json_object_get(ref, "symbols")));
	assert_int_equal(counter(r, "sequence_resets_total", -1), json_integer_value(json_object_get(ref, "restarts")));
	assert_int_equal(counter(r, "gaps_total", -1), json_integer_value(json_object_get(ref, "gaps")));
	assert_int_equal(counter(r, "heartbeats_total", -1),
			 json_integer_value(json_object_get(ref, "heartbeats")) * lines);
	assert_int_equal(counter(r, "malformed_segments_total", -2), 0);
	assert_int_equal(counter(r, "unknown_messages_total", -1), 0);
	assert_int_equal(counter(r, "short_messages_total", -1), 0);
	assert_int_equal(counter(r, "offset_mismatches_total", -1), 0);
	assert_int_equal(counter(r, "duplicates_total", 0), 0);
	assert_int_equal(counter(r, "duplicates_total", 1), lines == 2 ? msgs : 0);
	assert_int_equal(counter(r, "book_errors_total", -1), 0);
	assert_int_equal(counter(r, "gaps_declared_total", -1), 0);
	assert_int_equal(counter(r, "reorder_held_segments_total", -1), 0);
	assert_int_equal(r->overflow, 0);
	/* Trades and breaks become events one for one. */
	json_t *t = json_object_get(types, "T"), *bk = json_object_get(types, "B");
	assert_int_equal(r->ev_by_type[WB_EV_TRADE], t ? json_integer_value(t) : 0);
	assert_int_equal(r->ev_by_type[WB_EV_TRADE_BREAK], bk ? json_integer_value(bk) : 0);
}

static int load(const char *rel, struct iex_capture *cap, char *path, size_t n)
{
	if (iex_shared_path(rel, path, n) < 0)
		return -1;
	assert_int_equal(iex_capture_load(path, WB_IEX_TMP_DIR, cap), 0);
	return 0;
}

static void test_iex_replay_deep(void **state)
{
	(void)state;
	char path[4096];
	struct iex_capture cap;
	if (load("iex/DEEP10.pcap.gz", &cap, path, sizeof(path)) < 0)
		skip();
	json_t *ref = reference(path);
	/* The file's facts: 121,314 whole packets, a cut last record, 391,999 messages. */
	assert_int_equal(cap.n, 121314);
	assert_int_equal(cap.truncated_records, 1);
	assert_int_equal(json_integer_value(json_object_get(ref, "truncated_records")), 1);
	assert_int_equal(json_integer_value(json_object_get(ref, "messages")), 391999);
	assert_int_equal(json_integer_value(json_object_get(ref, "symbols")), 7802);
	assert_int_equal(json_integer_value(json_object_get(ref, "restarts")), 11);

	static struct replay r;
	for (int lines = 1; lines <= 2; lines++) {
		replay(&r, &wb_feed_iex_deep, &cap, lines);
		check_counts(&r, ref, lines);
		check_books(&r, ref);
		/* The capture's books cross (test data): integrity events fire and are counted. */
		struct wb_bookset_stats st;
		wb_bookset_stats(r.books, &st);
		assert_true(r.ev_by_type[WB_EV_INTEGRITY] > 0);
		assert_int_equal(st.integrity_total, r.ev_by_type[WB_EV_INTEGRITY]);
		assert_int_equal(r.ev_by_type[WB_EV_LEVEL] >= 12941 + 14627, 1);
		r.proto->destroy(r.feed);
	}
	json_decref(ref);
	iex_capture_free(&cap);
}

static void test_iex_replay_tops(void **state)
{
	(void)state;
	char path[4096];
	struct iex_capture cap;
	if (load("iex/TOPS16.pcapng.gz", &cap, path, sizeof(path)) < 0)
		skip();
	json_t *ref = reference(path);
	assert_int_equal(cap.n, 13022);
	assert_int_equal(json_integer_value(json_object_get(ref, "messages")), 57674);
	assert_int_equal(json_integer_value(json_object_get(ref, "symbols")), 7799);
	static struct replay r;
	for (int lines = 1; lines <= 2; lines++) {
		replay(&r, &wb_feed_iex_tops, &cap, lines);
		check_counts(&r, ref, lines);
		check_books(&r, ref);
		json_t *q = json_object_get(json_object_get(ref, "types"), "Q");
		assert_int_equal(r.ev_by_type[WB_EV_QUOTE], json_integer_value(q));
		r.proto->destroy(r.feed);
	}
	json_decref(ref);
	iex_capture_free(&cap);
}

/* Two whole TOPS packets and a third cut short: the cut one never reaches the feed. */
static void test_iex_replay_truncated(void **state)
{
	(void)state;
	char path[4096];
	struct iex_capture cap;
	if (load("iex/IEXTools-example1.pcapng", &cap, path, sizeof(path)) < 0)
		skip();
	json_t *ref = reference(path);
	assert_int_equal(cap.truncated_records, 1);
	static struct replay r;
	replay(&r, &wb_feed_iex_tops, &cap, 1);
	check_counts(&r, ref, 1);
	check_books(&r, ref);
	r.proto->destroy(r.feed);

	/* Had the cut datagram reached the plug-in, it is a malformed segment, not a crash. */
	replay(&r, &wb_feed_iex_tops, &cap, 1);
	struct wb_event_batch b = { .ev = events, .cap = EV_CAP };
	struct wb_rx_meta rx = { .line = 0 };
	const struct iex_datagram *d = &cap.dgrams[1];
	r.proto->on_datagram(r.feed, d->payload, d->len - 46, &rx, &b);
	assert_int_equal(counter(&r, "malformed_segments_total", 0), 1);
	assert_int_equal(b.n, 0);
	r.proto->destroy(r.feed);
	json_decref(ref);
	iex_capture_free(&cap);
}

int main(void)
{
	char path[4096];
	if (iex_shared_path("iex/DEEP10.pcap.gz", path, sizeof(path)) < 0) {
		fprintf(stderr, "SKIP: real IEX captures not found at %s (set WB_SHARED_DIR)\n", path);
		return 77;
	}
	if (system("python3 -c 'import json' 2>/dev/null") != 0) {
		fprintf(stderr, "SKIP: python3 not available for the independent reader\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iex_replay_deep),
		cmocka_unit_test(test_iex_replay_tops),
		cmocka_unit_test(test_iex_replay_truncated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
