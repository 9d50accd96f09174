/* IEX-TP v1 segment parser and DEEP/TOPS message decoder: the OMI per-message captures
 * field by field, an encode/decode round trip of every type with random fields, and
 * every class of malformed segment and message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iex.h"
#include "iex_pcap.h"

/* Loads one shared capture; skips the test when the shared data is absent. */
static int load_or_skip(const char *rel, struct iex_capture *cap)
{
	char path[4096];
	if (iex_shared_path(rel, path, sizeof(path)) < 0) {
		fprintf(stderr, "SKIP: %s not found (set WB_SHARED_DIR)\n", path);
		return -1;
	}
	assert_int_equal(iex_capture_load(path, WB_IEX_TMP_DIR, cap), 0);
	return 0;
}

static void decode_single(const struct iex_capture *cap, enum wb_iex_feed feed, uint16_t proto,
			  struct wb_iextp_hdr *h, struct wb_iex_msg *m)
{
	struct wb_iextp_iter it;
	const uint8_t *msg = NULL;
	uint16_t len = 0;
	assert_int_equal(cap->n, 1);
	assert_int_equal(wb_iextp_parse(cap->dgrams[0].payload, cap->dgrams[0].len, h, &it), 0);
	assert_int_equal(h->protocol, proto);
	assert_int_equal(h->count, 1);
	assert_int_equal(wb_iextp_next(&it, &msg, &len), 1);
	assert_int_equal(wb_iex_decode(feed, msg, len, m), WB_IEX_OK);
	assert_int_equal(wb_iextp_next(&it, &msg, &len), 0);
}

static void test_iex_omi_deep_buy(void **state)
{
	(void)state;
	struct iex_capture cap;
	if (load_or_skip("omi/Iex/Deep.IexTp.v1.0/PriceLevelBuyUpdateMessage.pcap", &cap) < 0)
		skip();
	struct wb_iextp_hdr h;
	struct wb_iex_msg m;
	decode_single(&cap, WB_IEX_DEEP, WB_IEXTP_PROTO_DEEP, &h, &m);
	assert_int_equal(h.version, 1);
	assert_int_equal(h.channel, 1);
	assert_int_equal(h.session, 1222443008);
	assert_int_equal(h.payload_len, 32);
	assert_int_equal(h.offset, 11243153);
	assert_int_equal(h.first_seq, 355166);
	assert_int_equal(h.send_time, 1611692981295127661LL);
	assert_int_equal(m.type, '8');
	assert_int_equal(m.u.level.event_flags, WB_IEX_EVENT_COMPLETE);
	assert_int_equal(m.ts, 1611692981294956478LL);
	assert_memory_equal(m.symbol, "V       ", 8);
	assert_int_equal(m.u.level.size, 190);
	assert_int_equal(m.u.level.price, 2027700); /* 202.77 */
	iex_capture_free(&cap);
}

static void test_iex_omi_deep_sell(void **state)
{
	(void)state;
	struct iex_capture cap;
	if (load_or_skip("omi/Iex/Deep.IexTp.v1.0/PriceLevelSellUpdateMessage.pcap", &cap) < 0)
		skip();
	struct wb_iextp_hdr h;
	struct wb_iex_msg m;
	decode_single(&cap, WB_IEX_DEEP, WB_IEXTP_PROTO_DEEP, &h, &m);
	assert_int_equal(h.first_seq, 355282);
	assert_int_equal(m.type, '5');
	assert_int_equal(m.u.level.event_flags, 1);
	assert_int_equal(m.ts, 1611692982062856490LL);
	assert_memory_equal(m.symbol, "UNH     ", 8);
	assert_int_equal(m.u.level.size, 82);
	assert_int_equal(m.u.level.price, 3441400); /* 344.14 */
	iex_capture_free(&cap);
}

static void test_iex_omi_tops_quote(void **state)
{
	(void)state;
	struct iex_capture cap;
	if (load_or_skip("omi/Iex/Tops.IexTp.v1.6/QuoteUpdateMessage.pcap", &cap) < 0)
		skip();
	struct wb_iextp_hdr h;
	struct wb_iex_msg m;
	decode_single(&cap, WB_IEX_TOPS, WB_IEXTP_PROTO_TOPS, &h, &m);
	assert_int_equal(h.session, 1150681088);
	assert_int_equal(h.first_seq, 49821);
	assert_int_equal(h.offset, 1639902);
	assert_int_equal(m.type, 'Q');
	assert_int_equal(m.u.quote.quote_flags, 0);
	assert_int_equal(m.ts, 1517065700930439360LL);
	assert_memory_equal(m.symbol, "ATSG    ", 8);
	assert_int_equal(m.u.quote.bid_size, 18773);
	assert_int_equal(m.u.quote.bid, 241900);
	assert_int_equal(m.u.quote.ask, 242500);
	assert_int_equal(m.u.quote.ask_size, 60677);
	/* The same bytes are not a DEEP message. */
	struct wb_iex_msg m2;
	assert_int_equal(wb_iex_decode(WB_IEX_DEEP, cap.dgrams[0].payload + 42, 42, &m2), WB_IEX_ERR_UNKNOWN);
	iex_capture_free(&cap);
}

static void test_iex_omi_heartbeat(void **state)
{
	(void)state;
	struct iex_capture cap;
	if (load_or_skip("omi/Iex/Deep.IexTp.v1.0/Heartbeat.pcap", &cap) < 0)
		skip();
	struct wb_iextp_hdr h;
	struct wb_iextp_iter it;
	const uint8_t *msg;
	uint16_t len;
	assert_int_equal(cap.n, 1);
	assert_int_equal(cap.dgrams[0].len, WB_IEXTP_HDR_LEN);
	assert_int_equal(wb_iextp_parse(cap.dgrams[0].payload, cap.dgrams[0].len, &h, &it), 0);
	assert_int_equal(h.count, 0);
	assert_int_equal(h.payload_len, 0);
	assert_int_equal(h.offset, 0);    /* next byte */
	assert_int_equal(h.first_seq, 1); /* next sequence */
	assert_int_equal(wb_iextp_next(&it, &msg, &len), 0);
	iex_capture_free(&cap);
}

/* IEXTools example: two whole TOPS packets then a third cut 46 bytes short. */
static void test_iex_truncated_capture(void **state)
{
	(void)state;
	struct iex_capture cap;
	if (load_or_skip("iex/IEXTools-example1.pcapng", &cap) < 0)
		skip();
	assert_int_equal(cap.n, 2);
	assert_int_equal(cap.truncated_records, 1);
	size_t msgs = 0;
	for (size_t k = 0; k < cap.n; k++) {
		struct wb_iextp_hdr h;
		struct wb_iextp_iter it;
		const uint8_t *msg;
		uint16_t len;
		assert_int_equal(wb_iextp_parse(cap.dgrams[k].payload, cap.dgrams[k].len, &h, &it), 0);
		assert_int_equal(h.protocol, WB_IEXTP_PROTO_TOPS);
		while (wb_iextp_next(&it, &msg, &len) > 0) {
			struct wb_iex_msg m;
			assert_int_equal(wb_iex_decode(WB_IEX_TOPS, msg, len, &m), WB_IEX_OK);
			msgs++;
		}
	}
	assert_int_equal(msgs, 53); /* counted by tests/iex/iex_count.py */
	iex_capture_free(&cap);
}

static const char deep_types[] = "SDHIOPE85TXBA";
static const char tops_types[] = "SDHIOPEQTXBA";

static uint64_t rnd(void)
{
	return ((uint64_t)rand() << 40) ^ ((uint64_t)rand() << 20) ^ (uint64_t)rand();
}

static void fill_random(struct wb_iex_msg *m, char type)
{
	uint8_t raw[sizeof(*m)];
	for (size_t k = 0; k < sizeof(raw); k++)
		raw[k] = (uint8_t)rand();
	memcpy(m, raw, sizeof(*m));
	m->type = type;
	m->ts = (int64_t)(rnd() >> 1);
	for (int k = 0; k < 8; k++)
		m->symbol[k] = (char)('A' + rand() % 26);
}

/* Every field of every type survives encode then decode. */
static void test_iex_roundtrip_every_type(void **state)
{
	(void)state;
	srand(42);
	for (int feed = 0; feed < 2; feed++) {
		const char *types = feed == WB_IEX_DEEP ? deep_types : tops_types;
		for (const char *t = types; *t; t++) {
			for (int rep = 0; rep < 200; rep++) {
				struct wb_iex_msg in, out;
				uint8_t buf[128];
				fill_random(&in, *t);
				size_t len = wb_iex_encode((enum wb_iex_feed)feed, &in, buf);
				assert_int_equal(len, wb_iex_msg_len((enum wb_iex_feed)feed, (uint8_t)*t));
				memset(&out, 0, sizeof(out));
				assert_int_equal(wb_iex_decode((enum wb_iex_feed)feed, buf, len, &out), WB_IEX_OK);
				assert_int_equal(out.type, *t);
				assert_int_equal(out.ts, in.ts);
				/* Re-encoding the decoded message gives the same bytes. */
				uint8_t buf2[128];
				assert_int_equal(wb_iex_encode((enum wb_iex_feed)feed, &out, buf2), len);
				assert_memory_equal(buf, buf2, len);
				/* Longer messages (fields appended by later versions) still decode. */
				uint8_t longer[160];
				memcpy(longer, buf, len);
				memset(longer + len, 0xEE, 16);
				struct wb_iex_msg out2;
				assert_int_equal(wb_iex_decode((enum wb_iex_feed)feed, longer, len + 16, &out2), WB_IEX_OK);
				assert_int_equal(wb_iex_encode((enum wb_iex_feed)feed, &out2, buf2), len);
				assert_memory_equal(buf, buf2, len);
				/* One byte short of the layout is refused. */
				assert_int_equal(wb_iex_decode((enum wb_iex_feed)feed, buf, len - 1, &out2), WB_IEX_ERR_SHORT);
			}
		}
	}
	/* Spot-check decoded values against the table layout. */
	struct wb_iex_msg a = { .type = 'A' }, d;
	memcpy(a.symbol, "ZIEXT   ", 8);
	a.u.auction.auction_type = 'C';
	a.u.auction.paired_shares = 1234;
	a.u.auction.reference_price = 101500;
	a.u.auction.indicative_price = 101600;
	a.u.auction.imbalance_shares = 77;
	a.u.auction.imbalance_side = 'B';
	a.u.auction.extension = 2;
	a.u.auction.scheduled_time = 1500000000;
	a.u.auction.upper_collar = 111650;
	uint8_t buf[80];
	assert_int_equal(wb_iex_encode(WB_IEX_DEEP, &a, buf), 80);
	assert_int_equal(buf[1], 'C');
	assert_int_equal(buf[42], 'B');
	assert_int_equal(buf[43], 2);
	assert_int_equal(wb_iex_decode(WB_IEX_DEEP, buf, 80, &d), WB_IEX_OK);
	assert_int_equal(d.u.auction.paired_shares, 1234);
	assert_int_equal(d.u.auction.imbalance_shares, 77);
	assert_int_equal(d.u.auction.scheduled_time, 1500000000);
	assert_int_equal(d.u.auction.upper_collar, 111650);
}

static void test_iex_decode_errors(void **state)
{
	(void)state;
	uint8_t buf[64] = { 0 };
	struct wb_iex_msg m;
	assert_int_equal(wb_iex_decode(WB_IEX_DEEP, buf, 0, &m), WB_IEX_ERR_EMPTY);
	buf[0] = 'Z';
	assert_int_equal(wb_iex_decode(WB_IEX_DEEP, buf, 64, &m), WB_IEX_ERR_UNKNOWN);
	buf[0] = 'Q';
	assert_int_equal(wb_iex_decode(WB_IEX_DEEP, buf, 64, &m), WB_IEX_ERR_UNKNOWN);
	buf[0] = '8';
	assert_int_equal(wb_iex_decode(WB_IEX_TOPS, buf, 64, &m), WB_IEX_ERR_UNKNOWN);
	assert_int_equal(wb_iex_decode(WB_IEX_DEEP, buf, 29, &m), WB_IEX_ERR_SHORT);
	assert_int_equal(wb_iex_decode(WB_IEX_DEEP, buf, 1, &m), WB_IEX_ERR_SHORT);
	assert_string_equal(wb_iex_type_name('8'), "Price Level Update (buy)");
	assert_string_equal(wb_iex_type_name('Z'), "unknown");
}

/* A valid three-message DEEP segment, built for the malformed cases below. */
static size_t build_segment(uint8_t *seg)
{
	struct wb_iextp_hdr h = { .version = 1, .protocol = WB_IEXTP_PROTO_DEEP, .channel = 1,
				  .session = 7, .count = 3, .offset = 100, .first_seq = 10, .send_time = 5 };
	size_t off = WB_IEXTP_HDR_LEN;
	for (int k = 0; k < 3; k++) {
		struct wb_iex_msg m = { .type = '8', .ts = 1 };
		memcpy(m.symbol, "AAPL    ", 8);
		m.u.level.size = 100;
		m.u.level.price = 1500000 + k;
		size_t l = wb_iex_encode(WB_IEX_DEEP, &m, seg + off + 2);
		seg[off] = (uint8_t)l;
		seg[off + 1] = 0;
		off += 2 + l;
	}
	h.payload_len = (uint16_t)(off - WB_IEXTP_HDR_LEN);
	wb_iextp_put_hdr(seg, &h);
	return off;
}

static void test_iex_malformed_segments(void **state)
{
	(void)state;
	uint8_t seg[256], bad[256];
	struct wb_iextp_hdr h;
	struct wb_iextp_iter it;
	size_t len = build_segment(seg);
	assert_int_equal(len, 40 + 3 * 32);
	assert_int_equal(wb_iextp_parse(seg, len, &h, &it), 0);
	assert_int_equal(h.count, 3);
	assert_int_equal(h.payload_len, 96);

	/* Every truncation fails cleanly: short header, or payload past the datagram. */
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(wb_iextp_parse(seg, cut, &h, &it), -EMSGSIZE);
	/* Trailing bytes beyond payload_len (padding) are ignored. */
	assert_int_equal(wb_iextp_parse(seg, len + 10, &h, &it), 0);

	memcpy(bad, seg, len);
	bad[0] = 2;
	assert_int_equal(wb_iextp_parse(bad, len, &h, &it), -EPROTO);

	/* Count says more blocks than the payload holds, or fewer. */
	memcpy(bad, seg, len);
	bad[14] = 4;
	assert_int_equal(wb_iextp_parse(bad, len, &h, &it), -EBADMSG);
	bad[14] = 2;
	assert_int_equal(wb_iextp_parse(bad, len, &h, &it), -EBADMSG);
	/* A heartbeat with a payload. */
	bad[14] = 0;
	assert_int_equal(wb_iextp_parse(bad, len, &h, &it), -EBADMSG);

	/* A block length running past the payload, and an empty block. */
	memcpy(bad, seg, len);
	bad[40 + 32] = 31 + 32;
	assert_int_equal(wb_iextp_parse(bad, len, &h, &it), -EBADMSG);
	bad[40 + 32] = 0;
	assert_int_equal(wb_iextp_parse(bad, len, &h, &it), -EBADMSG);

	/* Sequence < 1 and a negative offset. */
	memcpy(bad, seg, len);
	memset(bad + 24, 0, 8);
	assert_int_equal(wb_iextp_parse(bad, len, &h, &it), -EBADMSG);
	memcpy(bad, seg, len);
	memset(bad + 16, 0xFF, 8);
	assert_int_equal(wb_iextp_parse(bad, len, &h, &it), -EBADMSG);

	/* Random corruption of header and block lengths never reads out of bounds (ASan). */
	srand(7);
	for (int rep = 0; rep < 20000; rep++) {
		memcpy(bad, seg, len);
		int flips = 1 + rand() % 4;
		for (int k = 0; k < flips; k++)
			bad[rand() % len] = (uint8_t)rand();
		size_t blen = (size_t)(rand() % (int)(len + 1));
		uint8_t *exact = malloc(blen ? blen : 1);
		memcpy(exact, bad, blen);
		if (wb_iextp_parse(exact, blen, &h, &it) == 0) {
			const uint8_t *msg;
			uint16_t mlen;
			while (wb_iextp_next(&it, &msg, &mlen) > 0) {
				struct wb_iex_msg m;
				(void)wb_iex_decode(WB_IEX_DEEP, msg, mlen, &m);
			}
		}
		free(exact);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iex_omi_deep_buy),
		cmocka_unit_test(test_iex_omi_deep_sell),
		cmocka_unit_test(test_iex_omi_tops_quote),
		cmocka_unit_test(test_iex_omi_heartbeat),
		cmocka_unit_test(test_iex_truncated_capture),
		cmocka_unit_test(test_iex_roundtrip_every_type),
		cmocka_unit_test(test_iex_decode_errors),
		cmocka_unit_test(test_iex_malformed_segments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
