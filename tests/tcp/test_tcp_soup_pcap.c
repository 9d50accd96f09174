/* The SoupBinTCP-ITCH plug-in end to end: make_tcp_pcap.py writes a TCP session carrying
 * the real BX sample (with retransmissions, overlaps, reordering, lost segments); its
 * frames go through the plug-in, and the final books must equal a rebuild of the same
 * .itch file applied directly. A hole never filled must be declared, with its size, and
 * leave the books stale; a reconnection replaying from before it must heal them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "book.h"
#include "book_fixture.h"
#include "config.h"
#include "feed.h"
#include "itch.h"
#include "soup.h"
#include "tcp_pcap.h"
#include "tcp_reasm.h"

extern const struct wb_feed_proto wb_feed_soup_itch;

#define MAX_SYMBOLS 65536
#define BATCH 65536
#define ALL_MAX (1u << 16) /* events kept by a run or the reference */

static char itch_path[4200], gen_path[4200], tmp_dir[256];

struct truth {
	uint64_t messages, lost_forever_bytes, first_lost_sequence, duplicates_replayed, lost_filled;
	uint64_t retransmits, overlaps, reordered, frames;
};

static uint64_t json_u64(const char *js, const char *key)
{
	char k[64];
	snprintf(k, sizeof(k), "\"%s\": ", key);
	const char *p = strstr(js, k);
	assert_non_null(p);
	return strtoull(p + strlen(k), NULL, 10);
}

/* Runs the generator; returns the pcap path in out. */
static void generate(const char *opts, char *out, size_t n, struct truth *t)
{
	static int k;
	snprintf(out, n, "%s/s%d.pcap", tmp_dir, k++);
	char cmd[16384];
	snprintf(cmd, sizeof(cmd), "python3 '%s' '%s' '%s' %s", gen_path, itch_path, out, opts);
	FILE *pp = popen(cmd, "r");
	assert_non_null(pp);
	char js[4096] = { 0 };
	size_t got = fread(js, 1, sizeof(js) - 1, pp);
	assert_int_equal(pclose(pp), 0);
	assert_true(got > 0);
	*t = (struct truth){
		.messages = json_u64(js, "messages"),
		.lost_forever_bytes = json_u64(js, "lost_forever_bytes"),
		.duplicates_replayed = json_u64(js, "duplicates_replayed"),
		.lost_filled = json_u64(js, "lost_filled"),
		.retransmits = json_u64(js, "retransmits"),
		.overlaps = json_u64(js, "overlaps"),
		.reordered = json_u64(js, "reordered"),
		.frames = json_u64(js, "frames"),
	};
	const char *fl = strstr(js, "\"first_lost_sequence\": ");
	t->first_lost_sequence = fl && fl[23] != 'n' ? strtoull(fl + 23, NULL, 10) : 0;
}

static void feed_conf(struct wb_feed_conf *fc)
{
	memset(fc, 0, sizeof(*fc));
	snprintf(fc->protocol, sizeof(fc->protocol), "itch50-soupbintcp");
	fc->line[0].addr = 0x0a090001; /* 10.9.0.1:9001, the server */
	fc->line[0].port = 9001;
	fc->max_orders = 1 << 16;
	fc->max_levels = 1 << 16;
	fc->max_symbols = MAX_SYMBOLS;
	fc->snapshot_depth = 32;
	fc->gap_timeout_ms = 100; /* raised to the TCP minimum (500 ms) by the plug-in */
}

static uint64_t counter(void *st, const char *name)
{
	struct wb_counter c[128];
	size_t n = wb_feed_soup_itch.counters(st, c, 128);
	assert_true(n <= 128);
	for (size_t i = 0; i < n; i++)
		if (strcmp(c[i].name, name) == 0)
			return c[i].value;
	fail_msg("no counter %s", name);
	return 0;
}

/* The reference: the .itch file straight into a bookset, one message per call; its
 * events go to all (when not NULL, ALL_MAX at most). */
static struct wb_bookset *rebuild_events(struct wb_event *all, uint32_t *nall)
{
	struct wb_book_opts bo = { .max_orders = 1 << 16, .max_levels = 1 << 16, .max_symbols = MAX_SYMBOLS,
				   .snapshot_depth = 32, .price_decimals = 4, .numa_node = -1 };
	struct wb_bookset *bs;
	assert_int_equal(wb_bookset_create(&bo, &bs), 0);
	FILE *f = fopen(itch_path, "rb");
	assert_non_null(f);
	static struct wb_event ev[BATCH];
	struct wb_event_batch b = { .ev = ev, .cap = BATCH };
	uint8_t hdr[2], msg[65536];
	uint64_t seq = 1;
	while (fread(hdr, 1, 2, f) == 2) {
		uint16_t n = (uint16_t)(hdr[0] << 8 | hdr[1]);
		assert_int_equal(fread(msg, 1, n, f), n);
		struct wb_itch_msg m;
		if (wb_itch_decode(msg, n, &m) == WB_ITCH_OK) {
			struct wb_msg_meta meta = { .seq = seq };
			wb_bookset_apply_itch(bs, &m, &meta, &b);
		}
		seq++;
		for (uint32_t k = 0; all && k < b.n; k++) {
			assert_true(*nall < ALL_MAX);
			all[(*nall)++] = ev[k];
		}
		b.n = 0;
	}
	fclose(f);
	wb_bookset_publish(bs);
	return bs;
}

static struct wb_bookset *rebuild(void)
{
	return rebuild_events(NULL, NULL);
}

/* Event a of the plug-in equals event b of the reference in every field but the receive
 * time (the pcap's, which the reference has not). */
static void assert_event_equal(const struct wb_event *a, const struct wb_event *b)
{
	struct wb_event x = *a, y = *b;
	x.ts_recv = y.ts_recv = 0;
	if (memcmp(&x, &y, sizeof(x)) != 0)
		fail_msg("event seq %llu type %u differs from the one-message-per-call reference (ref %llu/%llu, "
			 "flags %u/%u, level shares %u/%u)",
			 (unsigned long long)b->seq, b->type, (unsigned long long)a->ref, (unsigned long long)b->ref,
			 a->flags, b->flags, a->level_shares, b->level_shares);
}

struct run {
	void *st;
	struct wb_bookset *books;
	uint64_t gap_events, integrity_gap_events, gap_detail_bytes;
	struct wb_event *all; /* when not NULL: every event of the run, in order (ALL_MAX at most) */
	uint32_t nall;
	uint64_t seg_ts; /* receive time of the segment being handed over */
	bool in_call;
	uint32_t drains; /* times the plug-in emptied the batch during a call */
};

/* The events the plug-in handed over (at the end of a call, or drained during one). */
static void take(struct wb_event_batch *b, void *arg)
{
	struct run *r = arg;
	r->drains += r->in_call;
	for (uint32_t k = 0; k < b->n; k++) {
		const struct wb_event *e = &b->ev[k];
		/* messages are applied in bursts, but never later than the segment that completed them */
		if (e->type != WB_EV_GAP && !(e->type == WB_EV_INTEGRITY && e->side == WB_INT_GAP_DECLARED))
			assert_int_equal(e->ts_recv, r->seg_ts);
		if (r->all) {
			assert_true(r->nall < ALL_MAX);
			r->all[r->nall++] = *e;
		}
		if (e->type == WB_EV_GAP) {
			r->gap_events++;
			r->gap_detail_bytes += e->ref;
		}
		if (e->type == WB_EV_INTEGRITY && e->side == WB_INT_GAP_DECLARED)
			r->integrity_gap_events++;
	}
	b->n = 0;
}

#define SMALL_BATCH 256 /* a filled hole releases more: the plug-in must drain it, not overflow */

static void run_pcap(const char *pcap, struct run *r, struct wb_event *all)
{
	struct tcp_pcap p;
	assert_int_equal(tcp_pcap_load(pcap, &p), 0);
	assert_int_equal(p.bad_checksum, 0);
	assert_int_equal(p.not_tcp, 0);
	struct wb_feed_conf fc;
	feed_conf(&fc);
	memset(r, 0, sizeof(*r));
	r->all = all;
	assert_int_equal(wb_feed_soup_itch.create(&fc, 0, -1, &r->st), 0);
	static struct wb_event ev[SMALL_BATCH];
	struct wb_event_batch b = { .ev = ev, .cap = SMALL_BATCH, .drain = take, .drain_arg = r };
	for (uint32_t i = 0; i < p.nsegs; i++) {
		struct wb_rx_meta meta = { .ts_recv = p.segs[i].ts_recv, .src_addr = p.segs[i].src_addr,
					   .src_port = p.segs[i].src_port, .flags = WB_RX_F_REPLAY };
		r->seg_ts = p.segs[i].ts_recv;
		r->in_call = true;
		wb_feed_soup_itch.on_tcp_segment(r->st, &p.segs[i], &meta, &b);
		r->in_call = false;
		assert_int_equal(b.overflow, 0);
		take(&b, r); /* the worker's flush at the end of the call */
	}
	r->books = wb_feed_soup_itch.books(r->st);
	wb_bookset_publish(r->books);
	tcp_pcap_free(&p);
}

/* Every symbol's published book and counts equal the reference's. */
static void assert_books_equal(struct wb_bookset *got, struct wb_bookset *want, uint8_t want_health)
{
	static struct wb_top a, b;
	int nsym = 0;
	for (int l = wb_bookset_next_symbol(want, 0); l >= 0; l = wb_bookset_next_symbol(want, (uint32_t)l + 1)) {
		assert_int_equal(wb_bookset_read_top(want, (uint16_t)l, 32, &a), 0);
		assert_int_equal(wb_bookset_read_top(got, (uint16_t)l, 32, &b), 0);
		assert_string_equal(a.stock, b.stock);
		fx_assert_levels_equal(&a, &b);
		assert_int_equal(a.seq, b.seq);
		assert_int_equal(b.health == WB_HEALTH_STALE, want_health == WB_HEALTH_STALE);
		struct wb_symbol_stats sa, sb;
		assert_int_equal(wb_bookset_symbol_stats(want, (uint16_t)l, &sa), 0);
		assert_int_equal(wb_bookset_symbol_stats(got, (uint16_t)l, &sb), 0);
		assert_int_equal(sa.live_orders, sb.live_orders);
		nsym++;
	}
	assert_true(nsym > 0);
	struct wb_bookset_stats x, y;
	wb_bookset_stats(want, &x);
	wb_bookset_stats(got, &y);
	assert_int_equal(x.live_orders, y.live_orders);
	assert_int_equal(x.symbols, y.symbols);
}

static int group_setup(void **state)
{
	(void)state;
	const char *src = getenv("WB_SOURCE_DIR");
	const char *shared = getenv("WB_SHARED_DIR");
	char def[2048];
	if (!src)
		src = ".";
	if (!shared) {
		snprintf(def, sizeof(def), "%s/../shared", src);
		shared = def;
	}
	snprintf(itch_path, sizeof(itch_path), "%s/data/itch/ritch-bx-sample.itch", shared);
	snprintf(gen_path, sizeof(gen_path), "%s/tests/tcp/make_tcp_pcap.py", src);
	struct stat sb;
	if (stat(itch_path, &sb) != 0) {
		fprintf(stderr, "SKIP: %s not found (real captures live in ../shared/data)\n", itch_path);
		exit(77);
	}
	if (system("python3 -c 'import argparse' >/dev/null 2>&1") != 0) {
		fprintf(stderr, "SKIP: python3 not available to generate the pcaps\n");
		exit(77);
	}
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/wb-tcp-test-XXXXXX");
	assert_non_null(mkdtemp(tmp_dir));
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_tcp_soup_clean_session(void **state)
{
	(void)state;
	char pcap[512];
	struct truth t;
	generate("--seed 1", pcap, sizeof(pcap), &t);
	struct run r;
	run_pcap(pcap, &r, NULL);
	struct wb_bookset *want = rebuild();
	assert_int_equal(counter(r.st, "messages_total"), t.messages);
	assert_int_equal(counter(r.st, "sequenced_packets_total"), t.messages);
	assert_int_equal(counter(r.st, "logins_accepted_total"), 1);
	assert_int_equal(counter(r.st, "next_sequence"), t.messages + 1);
	assert_int_equal(counter(r.st, "tcp_fin_total"), 1);
	assert_int_equal(counter(r.st, "tcp_holes_declared_total"), 0);
	assert_true(counter(r.st, "client_segments_total") > 0);
	assert_books_equal(r.books, want, WB_HEALTH_OK);
	wb_bookset_destroy(want);
	wb_feed_soup_itch.destroy(r.st);
}

static void test_tcp_soup_injected_faults_exact(void **state)
{
	(void)state;
	struct wb_bookset *want = rebuild();
	for (int seed = 2; seed <= 4; seed++) {
		char opts[256], pcap[512];
		snprintf(opts, sizeof(opts),
			 "--seed %d --retransmit 40 --overlap 40 --reorder 80 --lose-filled 12 --isn %u", seed,
			 0xFFFFFFFFu - 50000u * (unsigned)seed);
		struct truth t;
		generate(opts, pcap, sizeof(pcap), &t);
		struct run r;
		run_pcap(pcap, &r, NULL);
		assert_int_equal(counter(r.st, "messages_total"), t.messages);
		assert_int_equal(counter(r.st, "duplicate_messages_total"), 0);
		assert_int_equal(counter(r.st, "tcp_holes_declared_total"), 0);
		assert_int_equal(counter(r.st, "stale"), 0);
		assert_int_equal(r.gap_events, 0);
		assert_true(counter(r.st, "tcp_retrans_bytes_trimmed_total") > 0);
		assert_true(counter(r.st, "tcp_ooo_segments_held_total") > 0);
		assert_true(counter(r.st, "tcp_holes_filled_total") >= t.lost_filled);
		assert_books_equal(r.books, want, WB_HEALTH_OK);
		wb_feed_soup_itch.destroy(r.st);
	}
	wb_bookset_destroy(want);
}

static void test_tcp_soup_hole_never_filled_declared(void **state)
{
	(void)state;
	char pcap[512];
	struct truth t;
	generate("--seed 5 --retransmit 10 --reorder 20 --lose-forever", pcap, sizeof(pcap), &t);
	assert_true(t.lost_forever_bytes > 0);
	struct run r;
	run_pcap(pcap, &r, NULL);
	/* declared from the segments' own receive times (the heartbeats a second later) */
	assert_int_equal(counter(r.st, "tcp_holes_declared_total"), 1);
	assert_int_equal(counter(r.st, "tcp_hole_bytes_total"), t.lost_forever_bytes);
	assert_int_equal(r.gap_events, 1);
	assert_int_equal(r.integrity_gap_events, 1);
	assert_int_equal(r.gap_detail_bytes, t.lost_forever_bytes);
	assert_int_equal(counter(r.st, "stale"), 1);
	/* everything before the hole applied, nothing after it guessed at */
	assert_int_equal(counter(r.st, "messages_total"), t.first_lost_sequence - 1);
	assert_int_equal(counter(r.st, "next_sequence"), t.first_lost_sequence);
	assert_true(counter(r.st, "unframed_bytes_total") > 0);
	int l = wb_bookset_next_symbol(r.books, 0);
	assert_true(l >= 0);
	static struct wb_top top;
	assert_int_equal(wb_bookset_read_top(r.books, (uint16_t)l, 1, &top), 0);
	assert_int_equal(top.health, WB_HEALTH_STALE);
	wb_feed_soup_itch.destroy(r.st);
}

static void test_tcp_soup_reconnect_replay_heals(void **state)
{
	(void)state;
	char pcap[512];
	struct truth t;
	generate("--seed 6 --overlap 10 --reorder 20 --lose-forever --reconnect-back 7", pcap, sizeof(pcap), &t);
	struct run r;
	run_pcap(pcap, &r, NULL);
	assert_int_equal(counter(r.st, "tcp_holes_declared_total"), 1);
	assert_int_equal(counter(r.st, "connections_total"), 2);
	assert_int_equal(counter(r.st, "logins_accepted_total"), 2);
	assert_int_equal(counter(r.st, "duplicate_messages_total"), t.duplicates_replayed);
	assert_int_equal(counter(r.st, "messages_total"), t.messages);
	assert_int_equal(counter(r.st, "stale_cleared_total"), 1);
	assert_int_equal(counter(r.st, "stale"), 0);
	struct wb_bookset *want = rebuild();
	assert_books_equal(r.books, want, WB_HEALTH_OK);
	wb_bookset_destroy(want);
	wb_feed_soup_itch.destroy(r.st);
}

/* The plug-in applies a segment's messages in bursts: its events must be the events of one
 * message per call, in the same order, field by field, through faults (no gap) and up to a
 * hole declared for good (nothing after it, nothing before it held back). */
static void test_tcp_soup_burst_events_equal_single_calls(void **state)
{
	(void)state;
	struct wb_event *want = calloc(ALL_MAX, sizeof(*want));
	struct wb_event *got = calloc(ALL_MAX, sizeof(*got));
	assert_non_null(want);
	assert_non_null(got);
	uint32_t nwant = 0;
	struct wb_bookset *ref = rebuild_events(want, &nwant);
	assert_true(nwant > 12000);

	char pcap[512];
	struct truth t;
	/* an early segment back 150 segments late: thousands of messages released in one call */
	generate("--seed 3 --retransmit 40 --overlap 40 --reorder 80 --lose-filled 12 --late-retransmit 150", pcap,
		 sizeof(pcap), &t);
	struct run r;
	run_pcap(pcap, &r, got);
	assert_int_equal(counter(r.st, "messages_total"), t.messages);
	assert_true(r.drains > 0);
	assert_int_equal(r.nall, nwant);
	for (uint32_t i = 0; i < nwant; i++)
		assert_event_equal(&got[i], &want[i]);
	wb_feed_soup_itch.destroy(r.st);

	generate("--seed 5 --retransmit 10 --reorder 20 --lose-forever", pcap, sizeof(pcap), &t);
	run_pcap(pcap, &r, got);
	uint32_t before = 0;
	while (before < nwant && want[before].seq < t.first_lost_sequence)
		before++;
	assert_true(before > 0 && before < nwant);
	/* every event of the messages before the hole, then the gap and its integrity event */
	assert_int_equal(r.nall, before + 2);
	for (uint32_t i = 0; i < before; i++)
		assert_event_equal(&got[i], &want[i]);
	assert_int_equal(got[before].type, WB_EV_GAP);
	assert_int_equal(got[before].seq, t.first_lost_sequence);
	assert_int_equal(got[before + 1].type, WB_EV_INTEGRITY);
	wb_feed_soup_itch.destroy(r.st);

	wb_bookset_destroy(ref);
	free(want);
	free(got);
}

/* Soup stream bytes of n add orders from seq (refs = seq, locate 1). */
static size_t soup_adds(uint8_t *out, uint64_t seq, int n)
{
	size_t len = 0;
	for (int i = 0; i < n; i++) {
		struct wb_itch_msg m = { .type = 'A', .locate = 1, .ts = 34200000000000ULL + seq + (uint64_t)i };
		m.u.add.ref = seq + (uint64_t)i;
		m.u.add.side = 'B';
		m.u.add.shares = 100;
		m.u.add.price = 1000000;
		memcpy(m.u.add.stock, "TEST    ", 8);
		memcpy(m.u.add.mpid, "    ", 4);
		uint8_t msg[64];
		size_t l = wb_itch_encode(&m, msg);
		len += wb_soup_build_sequenced_hdr(out + len, (uint16_t)l);
		memcpy(out + len, msg, l);
		len += l;
	}
	return len;
}

/* One call fills a hole (its data applied) and then declares a second hole that timed out
 * meanwhile: the messages it applied are whole-book messages, not stale ones, and come
 * before the gap. Needs the burst applied before the books go stale. */
static void test_tcp_soup_fill_then_hole_in_one_call(void **state)
{
	(void)state;
	struct wb_feed_conf fc;
	feed_conf(&fc);
	void *st;
	assert_int_equal(wb_feed_soup_itch.create(&fc, 0, -1, &st), 0);
	static uint8_t stream[65536];
	size_t cut[6], len = wb_soup_build_accepted(stream, "SESSION001", 1);
	cut[0] = 0;
	for (int k = 0; k < 5; k++) { /* five segments of 10 messages: 1..10, 11..20, ... */
		len += soup_adds(stream + len, 1 + 10 * (uint64_t)k, 10);
		cut[k + 1] = len;
	}
	const uint32_t isn = 1000;
	const uint64_t ms = 1000000ULL;
	struct wb_tcp_seg syn = { .src_addr = fc.line[0].addr, .src_port = fc.line[0].port, .dst_addr = 0x0a090002,
				  .dst_port = 40001, .seq = isn, .flags = WB_TCP_SYN, .ts_recv = ms };
	static struct wb_event ev[BATCH];
	struct wb_event_batch b = { .ev = ev, .cap = BATCH };
	struct wb_rx_meta meta = { .flags = WB_RX_F_REPLAY };
	wb_feed_soup_itch.on_tcp_segment(st, &syn, &meta, &b);
	/* segment k carries stream bytes [cut[k], cut[k+1]); 1 comes late, 3 never */
	static const int order[] = { 0, 2, 4, 1 };
	static const uint64_t at[] = { 2, 3, 4, 600 };
	uint32_t stale_adds = 0, adds = 0, gap_at = 0, k_gap = 0;
	for (int j = 0; j < 4; j++) {
		int k = order[j];
		struct wb_tcp_seg seg = syn;
		seg.flags = WB_TCP_ACK | WB_TCP_PSH;
		seg.seq = isn + 1 + (uint32_t)cut[k];
		seg.payload = stream + cut[k];
		seg.len = (uint32_t)(cut[k + 1] - cut[k]);
		seg.ts_recv = at[j] * ms;
		b.n = 0;
		wb_feed_soup_itch.on_tcp_segment(st, &seg, &meta, &b);
		if (j < 3)
			continue;
		for (uint32_t i = 0; i < b.n; i++) {
			if (ev[i].type == WB_EV_ORDER_ADD) {
				adds++;
				stale_adds += (ev[i].flags & WB_EVF_STALE) != 0;
				assert_int_equal(gap_at, 0); /* no message after the gap */
			}
			if (ev[i].type == WB_EV_GAP && !gap_at) {
				gap_at = i;
				k_gap = (uint32_t)ev[i].seq;
			}
		}
	}
	assert_int_equal(counter(st, "tcp_holes_declared_total"), 1);
	assert_int_equal(adds, 20); /* 11..30, released by the late segment */
	assert_int_equal(stale_adds, 0);
	assert_true(gap_at == 20);
	assert_int_equal(k_gap, 31);
	assert_int_equal(counter(st, "messages_total"), 30);
	wb_feed_soup_itch.destroy(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_soup_clean_session),
		cmocka_unit_test(test_tcp_soup_injected_faults_exact),
		cmocka_unit_test(test_tcp_soup_hole_never_filled_declared),
		cmocka_unit_test(test_tcp_soup_reconnect_replay_heals),
		cmocka_unit_test(test_tcp_soup_burst_events_equal_single_calls),
		cmocka_unit_test(test_tcp_soup_fill_then_hole_in_one_call),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
