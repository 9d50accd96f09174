/* TCP reassembly against a known byte stream: every case checks that the delivered stream
 * is byte-exact at its offsets, that nothing is delivered twice and that every byte is
 * either delivered or inside a declared hole. Seeded property tests cut random streams
 * into random segments and inject retransmissions, overlaps, reordering and loss. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcp_reasm.h"

#define MS 1000000ULL
#define STREAM_MAX (1u << 20)

/* What the flow told: checked as it happens against the ground-truth stream. */
struct sink {
	const uint8_t *truth;
	uint64_t truth_len;
	uint64_t pos;          /* next offset the flow must tell about */
	uint64_t delivered, hole_bytes;
	uint32_t holes, opens, closes;
	uint8_t last_close, last_hole_reason;
	uint8_t hole_map[STREAM_MAX]; /* 1 = byte declared lost */
};

static struct sink *sink_new(const uint8_t *truth, uint64_t len)
{
	struct sink *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->truth = truth;
	s->truth_len = len;
	return s;
}

static void on_delivery(void *arg, const struct wb_tcp_delivery *d)
{
	struct sink *s = arg;
	switch (d->what) {
	case WB_TCP_OPEN:
		s->opens++;
		s->pos = 0;
		break;
	case WB_TCP_DATA:
		assert_int_equal(d->offset, s->pos);
		assert_true(d->len > 0);
		assert_true(d->offset + d->len <= s->truth_len);
		assert_memory_equal(d->data, s->truth + d->offset, d->len);
		s->pos += d->len;
		s->delivered += d->len;
		break;
	case WB_TCP_HOLE:
		assert_int_equal(d->offset, s->pos);
		assert_true(d->len > 0);
		assert_true(d->offset + d->len <= s->truth_len);
		memset(s->hole_map + d->offset, 1, d->len);
		s->pos += d->len;
		s->hole_bytes += d->len;
		s->holes++;
		s->last_hole_reason = d->reason;
		break;
	case WB_TCP_CLOSE:
		s->closes++;
		s->last_close = d->reason;
		break;
	default:
		fail_msg("unknown delivery %u", d->what);
	}
}

static const uint32_t ISN = 1000;

static void send_seg(struct wb_tcp_flow *f, struct sink *s, uint32_t isn, uint64_t off, uint32_t len, uint8_t flags,
		     uint64_t ts)
{
	struct wb_tcp_seg seg = {
		.src_addr = 0x0a090001, .dst_addr = 0x0a090002, .src_port = 9001, .dst_port = 40001,
		.seq = isn + 1 + (uint32_t)off, .flags = flags | WB_TCP_ACK,
		.payload = s->truth + off, .len = len, .ts_recv = ts,
	};
	wb_tcp_flow_input(f, &seg, on_delivery, s);
}

static void send_syn(struct wb_tcp_flow *f, struct sink *s, uint32_t isn, uint64_t ts)
{
	struct wb_tcp_seg seg = { .seq = isn, .flags = WB_TCP_SYN | WB_TCP_ACK, .ts_recv = ts };
	wb_tcp_flow_input(f, &seg, on_delivery, s);
}

static uint8_t *random_stream(uint64_t n, unsigned seed)
{
	uint8_t *b = malloc(n);
	assert_non_null(b);
	srand(seed);
	for (uint64_t i = 0; i < n; i++)
		b[i] = (uint8_t)rand();
	return b;
}

struct fixture {
	struct wb_tcp_flow *flow;
	struct sink *sink;
	uint8_t *stream;
	struct wb_tcp_counters c;
};

static void setup_flow(struct fixture *fx, uint64_t n, uint32_t bytes_cap, uint32_t seg_cap, uint32_t isn)
{
	fx->stream = random_stream(n, 7);
	fx->sink = sink_new(fx->stream, n);
	assert_int_equal(wb_tcp_flow_init(&fx->flow, bytes_cap, seg_cap), 0);
	send_syn(fx->flow, fx->sink, isn, 1 * MS);
	assert_int_equal(fx->sink->opens, 1);
}

static void teardown_flow(struct fixture *fx)
{
	wb_tcp_flow_fini(fx->flow);
	free(fx->sink);
	free(fx->stream);
}

static void counters(struct fixture *fx)
{
	wb_tcp_flow_counters(fx->flow, &fx->c);
}

static void test_tcp_init_rejects_zero_caps(void **state)
{
	(void)state;
	struct wb_tcp_flow *f = NULL;
	assert_int_equal(wb_tcp_flow_init(&f, 0, 8), -22);
	assert_int_equal(wb_tcp_flow_init(&f, 4096, 0), -22);
	assert_null(f);
}

static void test_tcp_in_order(void **state)
{
	(void)state;
	struct fixture fx;
	setup_flow(&fx, 10000, 4096, 16, ISN);
	for (uint64_t off = 0; off < 10000; off += 1000)
		send_seg(fx.flow, fx.sink, ISN, off, 1000, 0, 2 * MS);
	assert_int_equal(fx.sink->delivered, 10000);
	assert_int_equal(wb_tcp_flow_next_offset(fx.flow), 10000);
	counters(&fx);
	assert_int_equal(fx.c.segments, 11);
	assert_int_equal(fx.c.bytes_delivered, 10000);
	assert_int_equal(fx.c.ooo_segments_held, 0);
	assert_int_equal(fx.c.holes_opened, 0);
	teardown_flow(&fx);
}

static void test_tcp_retransmission_of_delivered_bytes(void **state)
{
	(void)state;
	struct fixture fx;
	setup_flow(&fx, 3000, 4096, 16, ISN);
	send_seg(fx.flow, fx.sink, ISN, 0, 1000, 0, 2 * MS);
	send_seg(fx.flow, fx.sink, ISN, 0, 1000, 0, 3 * MS);    /* whole copy */
	send_seg(fx.flow, fx.sink, ISN, 500, 1500, 0, 4 * MS);  /* half old, half new */
	send_seg(fx.flow, fx.sink, ISN, 1999, 1001, 0, 5 * MS); /* one byte old */
	assert_int_equal(fx.sink->delivered, 3000);
	counters(&fx);
	assert_int_equal(fx.c.retrans_bytes_trimmed, 1000 + 500 + 1);
	assert_int_equal(fx.c.bytes_delivered, 3000);
	teardown_flow(&fx);
}

static void test_tcp_ooo_held_then_filled(void **state)
{
	(void)state;
	struct fixture fx;
	setup_flow(&fx, 3000, 4096, 16, ISN);
	send_seg(fx.flow, fx.sink, ISN, 1000, 1000, 0, 2 * MS);
	send_seg(fx.flow, fx.sink, ISN, 2000, 1000, 0, 3 * MS);
	assert_int_equal(fx.sink->delivered, 0);
	assert_int_equal(wb_tcp_flow_held_bytes(fx.flow), 2000);
	send_seg(fx.flow, fx.sink, ISN, 0, 1000, 0, 4 * MS);
	assert_int_equal(fx.sink->delivered, 3000);
	assert_int_equal(wb_tcp_flow_held_bytes(fx.flow), 0);
	counters(&fx);
	assert_int_equal(fx.c.ooo_segments_held, 2);
	assert_int_equal(fx.c.holes_opened, 1);
	assert_int_equal(fx.c.holes_filled, 1);
	assert_int_equal(fx.c.holes_declared, 0);
	teardown_flow(&fx);
}

static void test_tcp_partial_overlaps_both_sides(void **state)
{
	(void)state;
	struct fixture fx;
	setup_flow(&fx, 400, 4096, 16, ISN);
	send_seg(fx.flow, fx.sink, ISN, 100, 100, 0, 2 * MS); /* held [100,200) */
	send_seg(fx.flow, fx.sink, ISN, 50, 100, 0, 3 * MS);  /* overlaps its head: [50,100) new */
	send_seg(fx.flow, fx.sink, ISN, 180, 70, 0, 4 * MS);  /* overlaps its tail: [200,250) new */
	send_seg(fx.flow, fx.sink, ISN, 300, 50, 0, 5 * MS);  /* a second piece */
	send_seg(fx.flow, fx.sink, ISN, 240, 70, 0, 6 * MS);  /* bridges both pieces */
	counters(&fx);
	assert_int_equal(fx.c.overlap_bytes_trimmed, 50 + 20 + 10 + 10);
	assert_int_equal(fx.c.holes_opened, 2);
	assert_int_equal(fx.c.holes_filled, 1); /* the gap [250,300) */
	assert_int_equal(wb_tcp_flow_held_bytes(fx.flow), 300);
	/* in-order data that runs into the held piece: trimmed, then the rest delivered */
	send_seg(fx.flow, fx.sink, ISN, 0, 60, 0, 7 * MS);
	send_seg(fx.flow, fx.sink, ISN, 350, 50, 0, 8 * MS);
	assert_int_equal(fx.sink->delivered, 400);
	counters(&fx);
	assert_int_equal(fx.c.overlap_bytes_trimmed, 90 + 10);
	assert_int_equal(fx.c.holes_filled, 2);
	teardown_flow(&fx);
}

static void test_tcp_several_holes_filled_out_of_order(void **state)
{
	(void)state;
	struct fixture fx;
	setup_flow(&fx, 1000, 4096, 16, ISN);
	/* pieces at 100, 300, 500, 700, 900; holes before each */
	for (uint64_t off = 100; off < 1000; off += 200)
		send_seg(fx.flow, fx.sink, ISN, off, 100, 0, 2 * MS);
	counters(&fx);
	assert_int_equal(fx.c.holes_opened, 5);
	const uint64_t fill[] = { 600, 200, 800, 400, 0 };
	for (int i = 0; i < 5; i++) {
		send_seg(fx.flow, fx.sink, ISN, fill[i], 100, 0, (3 + i) * MS);
		assert_int_equal(fx.sink->delivered, i < 4 ? 0 : 1000);
	}
	counters(&fx);
	assert_int_equal(fx.c.holes_filled, 5);
	assert_int_equal(fx.c.holes_declared, 0);
	teardown_flow(&fx);
}

static void test_tcp_retransmission_fills_old_hole(void **state)
{
	(void)state;
	struct fixture fx;
	setup_flow(&fx, 5000, 8192, 16, ISN);
	wb_tcp_flow_set_hole_timeout(fx.flow, 500 * MS);
	send_seg(fx.flow, fx.sink, ISN, 0, 1000, 0, 10 * MS);
	for (uint64_t off = 2000; off < 5000; off += 1000)
		send_seg(fx.flow, fx.sink, ISN, off, 1000, 0, (20 + off / 100) * MS);
	/* the kernel's retransmission, 400 ms later: within the timeout */
	assert_int_equal(wb_tcp_flow_expire(fx.flow, 400 * MS, on_delivery, fx.sink), 0);
	send_seg(fx.flow, fx.sink, ISN, 1000, 1000, 0, 410 * MS);
	assert_int_equal(fx.sink->delivered, 5000);
	assert_int_equal(fx.sink->holes, 0);
	counters(&fx);
	assert_int_equal(fx.c.holes_filled, 1);
	teardown_flow(&fx);
}

static void test_tcp_wraparound(void **state)
{
	(void)state;
	struct fixture fx;
	const uint32_t isn = 0xFFFFF000u; /* the stream crosses 2^32 at offset 4095 */
	setup_flow(&fx, 20000, 16384, 16, isn);
	send_seg(fx.flow, fx.sink, isn, 0, 3000, 0, 2 * MS);
	send_seg(fx.flow, fx.sink, isn, 5000, 3000, 0, 3 * MS); /* held across the wrap */
	send_seg(fx.flow, fx.sink, isn, 3000, 2500, 0, 4 * MS); /* fills, overlaps 500 */
	send_seg(fx.flow, fx.sink, isn, 2000, 2000, 0, 5 * MS); /* old bytes across the wrap */
	for (uint64_t off = 8000; off < 20000; off += 1500)
		send_seg(fx.flow, fx.sink, isn, off, off + 1500 > 20000 ? 20000 - off : 1500, 0, 6 * MS);
	assert_int_equal(fx.sink->delivered, 20000);
	counters(&fx);
	assert_int_equal(fx.c.retrans_bytes_trimmed, 2000);
	assert_int_equal(fx.c.overlap_bytes_trimmed, 500);
	assert_int_equal(fx.c.bad_segments, 0);
	teardown_flow(&fx);
}

static void test_tcp_fin_in_order_and_out_of_order(void **state)
{
	(void)state;
	struct fixture fx;
	setup_flow(&fx, 3000, 4096, 16, ISN);
	send_seg(fx.flow, fx.sink, ISN, 0, 1000, 0, 2 * MS);
	/* FIN with the last bytes, before the middle arrives: held, connection still open */
	send_seg(fx.flow, fx.sink, ISN, 2000, 1000, WB_TCP_FIN, 3 * MS);
	assert_true(wb_tcp_flow_connected(fx.flow));
	assert_int_equal(fx.sink->closes, 0);
	send_seg(fx.flow, fx.sink, ISN, 1000, 1000, 0, 4 * MS);
	assert_int_equal(fx.sink->delivered, 3000);
	assert_int_equal(fx.sink->closes, 1);
	assert_int_equal(fx.sink->last_close, WB_TCP_FIN);
	assert_false(wb_tcp_flow_connected(fx.flow));
	/* a retransmitted FIN after the end: no connection, ignored and counted */
	send_seg(fx.flow, fx.sink, ISN, 2000, 1000, WB_TCP_FIN, 5 * MS);
	assert_int_equal(fx.sink->delivered, 3000);
	counters(&fx);
	assert_int_equal(fx.c.fin_resets, 1);
	assert_int_equal(fx.c.unsynced_segments, 1);
	/* a new connection starts at offset 0 with its own ISN */
	send_syn(fx.flow, fx.sink, 77, 6 * MS);
	assert_int_equal(fx.sink->opens, 2);
	send_seg(fx.flow, fx.sink, 77, 0, 3000, WB_TCP_FIN, 7 * MS);
	assert_int_equal(fx.sink->delivered, 6000);
	assert_int_equal(fx.sink->closes, 2);
	teardown_flow(&fx);
}

static void test_tcp_rst_declares_open_holes(void **state)
{
	(void)state;
	struct fixture fx;
	setup_flow(&fx, 3000, 4096, 16, ISN);
	send_seg(fx.flow, fx.sink, ISN, 0, 500, 0, 2 * MS);
	send_seg(fx.flow, fx.sink, ISN, 1000, 500, 0, 3 * MS);
	send_seg(fx.flow, fx.sink, ISN, 2000, 500, 0, 4 * MS);
	struct wb_tcp_seg rst = { .seq = ISN + 1 + 2500, .flags = WB_TCP_RST, .ts_recv = 5 * MS };
	wb_tcp_flow_input(fx.flow, &rst, on_delivery, fx.sink);
	/* both holes told with their sizes, the held bytes delivered between them, then CLOSE */
	assert_int_equal(fx.sink->holes, 2);
	assert_int_equal(fx.sink->hole_bytes, 1000);
	assert_int_equal(fx.sink->last_hole_reason, WB_TCP_HOLE_RESET);
	assert_int_equal(fx.sink->delivered, 1500);
	assert_int_equal(fx.sink->closes, 1);
	assert_int_equal(fx.sink->last_close, WB_TCP_RST);
	assert_false(wb_tcp_flow_connected(fx.flow));
	counters(&fx);
	assert_int_equal(fx.c.rst_resets, 1);
	assert_int_equal(fx.c.holes_declared, 2);
	assert_int_equal(fx.c.hole_bytes_declared, 1000);
	teardown_flow(&fx);
}

static void test_tcp_new_syn_resets_connection(void **state)
{
	(void)state;
	struct fixture fx;
	setup_flow(&fx, 3000, 4096, 16, ISN);
	send_seg(fx.flow, fx.sink, ISN, 0, 1000, 0, 2 * MS);
	send_syn(fx.flow, fx.sink, ISN, 2 * MS); /* the SYN-ACK again: same ISN, ignored */
	assert_int_equal(fx.sink->opens, 1);
	send_seg(fx.flow, fx.sink, ISN, 2000, 1000, 0, 3 * MS);
	send_syn(fx.flow, fx.sink, 5555, 4 * MS);
	assert_int_equal(fx.sink->opens, 2);
	assert_int_equal(fx.sink->closes, 1);
	assert_int_equal(fx.sink->last_close, WB_TCP_SYN);
	assert_int_equal(fx.sink->holes, 1);
	assert_int_equal(fx.sink->hole_bytes, 1000);
	assert_int_equal(wb_tcp_flow_next_offset(fx.flow), 0);
	counters(&fx);
	assert_int_equal(fx.c.syn_resets, 2);
	/* SYN+RST is nonsense: counted, ignored */
	struct wb_tcp_seg bad = { .seq = 1, .flags = WB_TCP_SYN | WB_TCP_RST, .ts_recv = 5 * MS };
	wb_tcp_flow_input(fx.flow, &bad, on_delivery, fx.sink);
	counters(&fx);
	assert_int_equal(fx.c.bad_segments, 1);
	assert_true(wb_tcp_flow_connected(fx.flow));
	teardown_flow(&fx);
}

static void test_tcp_no_syn_no_stream(void **state)
{
	(void)state;
	uint8_t *stream = random_stream(100, 3);
	struct sink *s = sink_new(stream, 100);
	struct wb_tcp_flow *f;
	assert_int_equal(wb_tcp_flow_init(&f, 1024, 4), 0);
	send_seg(f, s, ISN, 0, 100, 0, 1);
	assert_int_equal(s->delivered, 0);
	struct wb_tcp_counters c;
	wb_tcp_flow_counters(f, &c);
	assert_int_equal(c.unsynced_segments, 1);
	wb_tcp_flow_fini(f);
	free(s);
	free(stream);
}

static void test_tcp_byte_window_full_declares(void **state)
{
	(void)state;
	struct fixture fx;
	setup_flow(&fx, 5000, 1000, 16, ISN);
	send_seg(fx.flow, fx.sink, ISN, 100, 500, 0, 2 * MS); /* hole [0,100) */
	send_seg(fx.flow, fx.sink, ISN, 600, 500, 0, 3 * MS); /* ends at 1100 > window 1000 */
	assert_int_equal(fx.sink->holes, 1);
	assert_int_equal(fx.sink->hole_bytes, 100);
	assert_int_equal(fx.sink->last_hole_reason, WB_TCP_HOLE_FULL);
	assert_true(fx.sink->hole_map[0] && fx.sink->hole_map[99] && !fx.sink->hole_map[100]);
	assert_int_equal(fx.sink->delivered, 1000);
	/* a lone segment beyond the whole window: the bytes before it are declared */
	send_seg(fx.flow, fx.sink, ISN, 2500, 500, 0, 4 * MS);
	assert_int_equal(fx.sink->holes, 2);
	assert_int_equal(fx.sink->hole_bytes, 100 + 1400);
	assert_int_equal(fx.sink->delivered, 1500);
	counters(&fx);
	assert_int_equal(fx.c.ooo_full, 2);
	assert_int_equal(fx.c.holes_declared, 2);
	assert_int_equal(fx.c.hole_bytes_declared, 1500);
	teardown_flow(&fx);
}

static void test_tcp_segment_slots_full_declares(void **state)
{
	(void)state;
	struct fixture fx;
	setup_flow(&fx, 1000, 4096, 2, ISN);
	send_seg(fx.flow, fx.sink, ISN, 100, 100, 0, 2 * MS);
	send_seg(fx.flow, fx.sink, ISN, 300, 100, 0, 3 * MS);
	send_seg(fx.flow, fx.sink, ISN, 190, 20, 0, 3 * MS); /* touches a piece: no new slot */
	assert_int_equal(fx.sink->holes, 0);
	send_seg(fx.flow, fx.sink, ISN, 500, 100, 0, 4 * MS); /* a third piece: no slot */
	assert_int_equal(fx.sink->holes, 1);
	assert_int_equal(fx.sink->hole_bytes, 100);
	assert_int_equal(fx.sink->delivered, 110);
	assert_int_equal(wb_tcp_flow_held_bytes(fx.flow), 200);
	counters(&fx);
	assert_int_equal(fx.c.ooo_full, 1);
	teardown_flow(&fx);
}

static void test_tcp_timeout_declares(void **state)
{
	(void)state;
	struct fixture fx;
	setup_flow(&fx, 5000, 8192, 16, ISN);
	wb_tcp_flow_set_hole_timeout(fx.flow, 100 * MS);
	send_seg(fx.flow, fx.sink, ISN, 0, 1000, 0, 10 * MS);
	send_seg(fx.flow, fx.sink, ISN, 2000, 1000, 0, 20 * MS); /* hole [1000,2000) opens at 20 ms */
	send_seg(fx.flow, fx.sink, ISN, 3000, 1000, 0, 110 * MS);
	assert_int_equal(fx.sink->holes, 0);
	/* in receive time: the next segment 101 ms after the hole opened declares it */
	send_seg(fx.flow, fx.sink, ISN, 4000, 500, 0, 121 * MS);
	assert_int_equal(fx.sink->holes, 1);
	assert_int_equal(fx.sink->hole_bytes, 1000);
	assert_int_equal(fx.sink->last_hole_reason, WB_TCP_HOLE_TIMEOUT);
	assert_int_equal(fx.sink->delivered, 3500);
	assert_true(fx.sink->hole_map[1000] && fx.sink->hole_map[1999] && !fx.sink->hole_map[2000]);
	/* the retransmission arrives too late: trimmed, not delivered twice */
	send_seg(fx.flow, fx.sink, ISN, 1000, 1000, 0, 130 * MS);
	assert_int_equal(fx.sink->delivered, 3500);
	/* explicit expiry with a tail hole before a FIN */
	send_seg(fx.flow, fx.sink, ISN, 4800, 200, WB_TCP_FIN, 200 * MS);
	assert_int_equal(wb_tcp_flow_expire(fx.flow, 250 * MS, on_delivery, fx.sink), 0);
	assert_int_equal(wb_tcp_flow_expire(fx.flow, 301 * MS, on_delivery, fx.sink), 1);
	assert_int_equal(fx.sink->hole_bytes, 1300);
	assert_int_equal(fx.sink->delivered, 3700);
	assert_int_equal(fx.sink->closes, 1);
	assert_int_equal(fx.sink->last_close, WB_TCP_FIN);
	counters(&fx);
	assert_int_equal(fx.c.holes_declared, 2);
	assert_int_equal(fx.c.retrans_bytes_trimmed, 1000);
	teardown_flow(&fx);
}

/* ---- seeded property tests ---- */

struct planned {
	uint64_t off;
	uint32_t len;
	uint8_t flags;
};

static uint32_t rnd(uint32_t n)
{
	return (uint32_t)rand() % n;
}

/* Cuts [0, n) into segments, then adds retransmissions, overlapping pieces and
 * duplicates, drops the segments touching lost ranges (never sent), rewrites lost to the
 * bytes no segment carries, and reorders within a window. */
static uint32_t plan_segments(struct planned *p, uint32_t max, uint64_t n, uint8_t *lost, int reorder)
{
	uint32_t k = 0;
	for (uint64_t off = 0; off < n && k < max;) {
		uint32_t len = 1 + rnd(1460);
		if (off + len > n)
			len = (uint32_t)(n - off);
		uint8_t fl = off + len == n ? WB_TCP_FIN : 0;
		p[k++] = (struct planned){ off, len, fl };
		uint32_t r = rnd(10);
		if (r == 0 && k < max) /* duplicate */
			p[k++] = (struct planned){ off, len, fl };
		if (r == 1 && k < max && off > 0) { /* retransmission of an earlier range */
			uint64_t o = rnd((uint32_t)off);
			uint32_t l = 1 + rnd(2000);
			if (o + l > n)
				l = (uint32_t)(n - o);
			p[k++] = (struct planned){ o, l, 0 };
		}
		if (r == 2 && k < max) { /* an overlapping piece from a repacketised retransmission */
			uint64_t o = off + rnd(len);
			uint32_t l = 1 + rnd(3000);
			if (o + l > n)
				l = (uint32_t)(n - o);
			p[k++] = (struct planned){ o, l, 0 };
		}
		off += len;
	}
	/* drop every segment that touches a lost range: those bytes never arrive */
	uint32_t w = 0;
	for (uint32_t i = 0; i < k; i++) {
		bool touches = false;
		for (uint64_t b = p[i].off; b < p[i].off + p[i].len && !touches; b++)
			touches = lost[b];
		if (!touches)
			p[w++] = p[i];
	}
	k = w;
	/* the bytes no kept segment carries are the ground truth of what is lost */
	memset(lost, 1, n);
	for (uint32_t i = 0; i < k; i++)
		memset(lost + p[i].off, 0, p[i].len);
	for (uint32_t i = 0; reorder && i + 1 < k; i++) {
		uint32_t j = i + rnd(reorder < (int)(k - i) ? (uint32_t)reorder : k - i);
		struct planned t = p[i];
		p[i] = p[j];
		p[j] = t;
	}
	return k;
}

static struct wb_tcp_counters run_property(unsigned seed, bool lossy, uint32_t bytes_cap, uint32_t seg_cap,
					   uint32_t isn)
{
	srand(seed);
	uint64_t n = 20000 + rnd(200000);
	uint8_t *stream = malloc(n);
	uint8_t *lost = calloc(n, 1);
	assert_non_null(stream);
	assert_non_null(lost);
	for (uint64_t i = 0; i < n; i++)
		stream[i] = (uint8_t)rand();
	if (lossy)
		for (int h = 0; h < 3; h++) {
			uint64_t o = rnd((uint32_t)(n - 4000));
			memset(lost + o, 1, 1 + rnd(3000));
		}
	uint32_t max = 4000;
	struct planned *p = calloc(max, sizeof(*p));
	assert_non_null(p);
	uint32_t k = plan_segments(p, max, n, lost, 1 + (int)rnd(12));

	struct sink *s = sink_new(stream, n);
	struct wb_tcp_flow *f;
	assert_int_equal(wb_tcp_flow_init(&f, bytes_cap, seg_cap), 0);
	wb_tcp_flow_set_hole_timeout(f, 1000 * MS);
	send_syn(f, s, isn, 1);
	for (uint32_t i = 0; i < k; i++)
		send_seg(f, s, isn, p[i].off, p[i].len, p[i].flags, 2 + i);
	/* the FIN may have been lost with its segment: then the stream has no end yet */
	wb_tcp_flow_expire(f, 1000 * MS * 10, on_delivery, s);
	struct wb_tcp_counters c;
	wb_tcp_flow_counters(f, &c);

	/* every byte once: delivered exactly (checked in on_delivery) or declared */
	assert_int_equal(s->delivered, c.bytes_delivered);
	assert_int_equal(s->hole_bytes, c.hole_bytes_declared);
	if (s->closes) {
		assert_int_equal(s->pos, n);
		assert_int_equal(s->delivered + s->hole_bytes, n);
	} else {
		assert_true(s->pos <= n);
	}
	/* with room for everything, exactly the lost bytes are declared, nothing else */
	if (bytes_cap >= n && seg_cap >= 64) {
		assert_int_equal(c.ooo_full, 0);
		for (uint64_t b = 0; b < s->pos; b++)
			if (lost[b] != s->hole_map[b])
				fail_msg("seed %u: byte %llu lost=%u declared=%u", seed, (unsigned long long)b, lost[b],
					 s->hole_map[b]);
		if (!lossy) {
			assert_int_equal(s->holes, 0);
			assert_int_equal(s->delivered, n);
			assert_int_equal(s->closes, 1);
		}
	}
	/* any declared byte was really missing, or the buffer was full */
	if (c.ooo_full == 0)
		for (uint64_t b = 0; b < s->pos; b++)
			if (s->hole_map[b] && !lost[b])
				fail_msg("seed %u: byte %llu declared but it arrived", seed, (unsigned long long)b);
	wb_tcp_flow_fini(f);
	free(s);
	free(p);
	free(lost);
	free(stream);
	return c;
}

static void test_tcp_property_lossless(void **state)
{
	(void)state;
	uint64_t trimmed = 0, held = 0;
	for (unsigned seed = 1; seed <= 60; seed++) {
		struct wb_tcp_counters c = run_property(seed, false, 1u << 20, 256, seed * 0x9E3779B9u);
		trimmed += c.retrans_bytes_trimmed + c.overlap_bytes_trimmed;
		held += c.ooo_segments_held;
	}
	/* the plans really exercised retransmission, overlap and reordering */
	assert_true(trimmed > 0);
	assert_true(held > 0);
}

static void test_tcp_property_lossless_near_wrap(void **state)
{
	(void)state;
	for (unsigned seed = 100; seed < 130; seed++)
		run_property(seed, false, 1u << 20, 256, 0xFFFFFFFFu - seed * 1000);
}

static void test_tcp_property_lossy(void **state)
{
	(void)state;
	uint64_t declared = 0;
	for (unsigned seed = 200; seed < 260; seed++)
		declared += run_property(seed, true, 1u << 20, 256, seed * 0x85EBCA6Bu).holes_declared;
	assert_true(declared >= 60);
}

static void test_tcp_property_small_buffers(void **state)
{
	(void)state;
	uint64_t full = 0;
	for (unsigned seed = 300; seed < 360; seed++)
		full += run_property(seed, seed % 2, 4096 + 97 * seed, 2 + seed % 5, seed * 0xC2B2AE35u).ooo_full;
	assert_true(full > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_init_rejects_zero_caps),
		cmocka_unit_test(test_tcp_in_order),
		cmocka_unit_test(test_tcp_retransmission_of_delivered_bytes),
		cmocka_unit_test(test_tcp_ooo_held_then_filled),
		cmocka_unit_test(test_tcp_partial_overlaps_both_sides),
		cmocka_unit_test(test_tcp_several_holes_filled_out_of_order),
		cmocka_unit_test(test_tcp_retransmission_fills_old_hole),
		cmocka_unit_test(test_tcp_wraparound),
		cmocka_unit_test(test_tcp_fin_in_order_and_out_of_order),
		cmocka_unit_test(test_tcp_rst_declares_open_holes),
		cmocka_unit_test(test_tcp_new_syn_resets_connection),
		cmocka_unit_test(test_tcp_no_syn_no_stream),
		cmocka_unit_test(test_tcp_byte_window_full_declares),
		cmocka_unit_test(test_tcp_segment_slots_full_declares),
		cmocka_unit_test(test_tcp_timeout_declares),
		cmocka_unit_test(test_tcp_property_lossless),
		cmocka_unit_test(test_tcp_property_lossless_near_wrap),
		cmocka_unit_test(test_tcp_property_lossy),
		cmocka_unit_test(test_tcp_property_small_buffers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
