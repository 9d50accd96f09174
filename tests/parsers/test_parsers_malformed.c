/* Malformed Mold packets and ITCH messages: each class returns its error and nothing
 * reads out of bounds (buffers are heap-allocated to the exact size so ASan sees overreads).
 * Also the encode/decode round trip of every type with seeded random field values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "itch.h"
#include "peek_check.h"
#include "mold.h"
#include "wire.h"

/* The 23 types and layout lengths of PROTOCOLS.md 3.2. */
static const struct { char type; size_t len; } layouts[] = {
	{ 'S', 12 }, { 'R', 39 }, { 'H', 25 }, { 'Y', 20 }, { 'L', 26 }, { 'V', 35 }, { 'W', 12 }, { 'K', 28 },
	{ 'J', 35 }, { 'h', 21 }, { 'A', 36 }, { 'F', 40 }, { 'E', 31 }, { 'C', 36 }, { 'X', 23 }, { 'D', 19 },
	{ 'U', 35 }, { 'P', 44 }, { 'Q', 40 }, { 'B', 19 }, { 'I', 50 }, { 'N', 20 }, { 'O', 48 },
};
#define NLAYOUTS (sizeof(layouts) / sizeof(layouts[0]))

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void)
{
	/* xorshift64*: fixed seed so a failure reproduces. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

/* A heap copy of exactly n bytes: any read past it is an ASan error. */
static uint8_t *exact(const uint8_t *src, size_t n)
{
	uint8_t *p = malloc(n ? n : 1);
	assert_non_null(p);
	if (n)
		memcpy(p, src, n);
	return p;
}

static size_t put_block(uint8_t *p, const uint8_t *msg, uint16_t len)
{
	wb_put_be16(p, len);
	memcpy(p + 2, msg, len);
	return 2 + (size_t)len;
}

static size_t put_header(uint8_t *p, uint64_t seq, uint16_t count)
{
	memcpy(p, "SESSION01 ", WB_MOLD_SESSION_LEN);
	wb_put_be64(p + 10, seq);
	wb_put_be16(p + 18, count);
	return WB_MOLD_HDR_LEN;
}

static void test_parsers_layout_table(void **state)
{
	(void)state;
	unsigned known = 0;
	for (unsigned t = 0; t < 256; t++)
		if (wb_itch_msg_len((uint8_t)t))
			known++;
	assert_int_equal(known, 23);
	for (size_t i = 0; i < NLAYOUTS; i++) {
		assert_int_equal(wb_itch_msg_len((uint8_t)layouts[i].type), layouts[i].len);
		assert_string_not_equal(wb_itch_type_name((uint8_t)layouts[i].type), "unknown");
	}
	assert_string_equal(wb_itch_type_name('A'), "Add Order");
	assert_string_equal(wb_itch_type_name('Z'), "unknown");
}

static void test_parsers_mold_short_header(void **state)
{
	(void)state;
	uint8_t pkt[WB_MOLD_HDR_LEN];
	struct wb_mold_hdr hdr;
	struct wb_mold_iter it;

	put_header(pkt, 7, 0);
	for (size_t len = 0; len < WB_MOLD_HDR_LEN; len++) {
		uint8_t *p = exact(pkt, len);
		assert_int_equal(wb_mold_parse(p, len, &hdr, &it), -EMSGSIZE);
		free(p);
	}
	uint8_t *p = exact(pkt, sizeof(pkt));
	assert_int_equal(wb_mold_parse(p, sizeof(pkt), &hdr, &it), 0);
	free(p);
}

static void test_parsers_mold_heartbeat_and_end_of_session(void **state)
{
	(void)state;
	uint8_t pkt[WB_MOLD_HDR_LEN], *p;
	struct wb_mold_hdr hdr;
	struct wb_mold_iter it;
	const uint8_t *msg = NULL;
	uint16_t len;

	put_header(pkt, 1234567890123ULL, WB_MOLD_HEARTBEAT);
	p = exact(pkt, sizeof(pkt));
	assert_int_equal(wb_mold_parse(p, sizeof(pkt), &hdr, &it), 0);
	assert_memory_equal(hdr.session, "SESSION01 ", WB_MOLD_SESSION_LEN);
	assert_int_equal(hdr.seq, 1234567890123ULL); /* next expected */
	assert_int_equal(hdr.count, 0);
	assert_int_equal(it.left, 0);
	assert_int_equal(wb_mold_next(&it, &msg, &len), 0);
	free(p);

	put_header(pkt, 99, WB_MOLD_END_OF_SESSION);
	p = exact(pkt, sizeof(pkt));
	assert_int_equal(wb_mold_parse(p, sizeof(pkt), &hdr, &it), 0);
	assert_int_equal(hdr.count, 0xFFFF);
	assert_int_equal(hdr.seq, 99);
	/* No blocks follow end of session: the iterator must not try to read 65535 of them. */
	assert_int_equal(it.left, 0);
	assert_int_equal(wb_mold_next(&it, &msg, &len), 0);
	free(p);
}

static void test_parsers_mold_block_past_packet(void **state)
{
	(void)state;
	uint8_t buf[256], msg_d[19] = { 'D' }, *p;
	struct wb_mold_hdr hdr;
	struct wb_mold_iter it;
	const uint8_t *msg = NULL;
	uint16_t len;
	size_t n;

	/* Second block announces 19 bytes but only 10 are in the packet. */
	n = put_header(buf, 1, 2);
	n += put_block(buf + n, msg_d, 19);
	wb_put_be16(buf + n, 19);
	memset(buf + n + 2, 0, 10);
	n += 12;
	p = exact(buf, n);
	assert_int_equal(wb_mold_parse(p, n, &hdr, &it), 0);
	assert_int_equal(wb_mold_next(&it, &msg, &len), 1);
	assert_int_equal(len, 19);
	assert_int_equal(msg[0], 'D');
	assert_int_equal(wb_mold_next(&it, &msg, &len), -EMSGSIZE);
	free(p);

	/* A block length field cut in half. */
	n = put_header(buf, 1, 2);
	n += put_block(buf + n, msg_d, 19);
	buf[n++] = 0;
	p = exact(buf, n);
	assert_int_equal(wb_mold_parse(p, n, &hdr, &it), 0);
	assert_int_equal(wb_mold_next(&it, &msg, &len), 1);
	assert_int_equal(wb_mold_next(&it, &msg, &len), -EMSGSIZE);
	free(p);

	/* More blocks announced than present. */
	n = put_header(buf, 1, 3);
	n += put_block(buf + n, msg_d, 19);
	n += put_block(buf + n, msg_d, 19);
	p = exact(buf, n);
	assert_int_equal(wb_mold_parse(p, n, &hdr, &it), 0);
	assert_int_equal(wb_mold_next(&it, &msg, &len), 1);
	assert_int_equal(wb_mold_next(&it, &msg, &len), 1);
	assert_int_equal(wb_mold_next(&it, &msg, &len), -EMSGSIZE);
	free(p);

	/* Bytes after the announced blocks are not read as blocks. */
	n = put_header(buf, 1, 1);
	n += put_block(buf + n, msg_d, 19);
	n += put_block(buf + n, msg_d, 19);
	p = exact(buf, n);
	assert_int_equal(wb_mold_parse(p, n, &hdr, &it), 0);
	assert_int_equal(wb_mold_next(&it, &msg, &len), 1);
	assert_int_equal(wb_mold_next(&it, &msg, &len), 0);
	free(p);
}

static void test_parsers_mold_zero_length_block(void **state)
{
	(void)state;
	uint8_t buf[128], msg_d[19] = { 'D' }, *p;
	struct wb_mold_hdr hdr;
	struct wb_mold_iter it;
	struct wb_itch_msg m;
	const uint8_t *msg = NULL;
	uint16_t len;
	size_t n;

	n = put_header(buf, 10, 2);
	n += put_block(buf + n, msg_d, 0);
	n += put_block(buf + n, msg_d, 19);
	p = exact(buf, n);
	assert_int_equal(wb_mold_parse(p, n, &hdr, &it), 0);
	assert_int_equal(wb_mold_next(&it, &msg, &len), 1);
	assert_int_equal(len, 0);
	assert_int_equal(wb_itch_decode(msg, len, &m), WB_ITCH_ERR_EMPTY);
	/* The empty block consumed its sequence number; the next one still decodes. */
	assert_int_equal(wb_mold_next(&it, &msg, &len), 1);
	assert_int_equal(wb_itch_decode(msg, len, &m), WB_ITCH_OK);
	assert_int_equal(m.type, 'D');
	assert_int_equal(wb_mold_next(&it, &msg, &len), 0);
	free(p);

	assert_int_equal(wb_itch_decode(NULL, 0, &m), WB_ITCH_ERR_EMPTY);
	assert_int_equal(wb_itch_peek(NULL, 0, &m), WB_ITCH_ERR_EMPTY);
}

static void test_parsers_mold_build_request(void **state)
{
	(void)state;
	uint8_t buf[WB_MOLD_HDR_LEN];
	struct wb_mold_hdr hdr;
	struct wb_mold_iter it;
	static const uint8_t want[WB_MOLD_HDR_LEN] = {
		'0', '0', '0', '0', '1', '0', '0', '5', '9', 'B',
		0x00, 0x00, 0x00, 0x00, 0x01, 0x22, 0x0e, 0x5d, 0x01, 0x2c,
	};

	assert_int_equal(wb_mold_build_request(buf, "000010059B", 19009117, 300), WB_MOLD_HDR_LEN);
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(wb_mold_parse(buf, sizeof(buf), &hdr, &it), 0);
	assert_int_equal(hdr.seq, 19009117);
	assert_int_equal(hdr.count, 300);
}

static void test_parsers_itch_short_every_type(void **state)
{
	(void)state;
	uint8_t full[64];
	struct wb_itch_msg m;

	for (size_t i = 0; i < NLAYOUTS; i++) {
		size_t need = wb_itch_msg_len((uint8_t)layouts[i].type);
		for (size_t k = 0; k < sizeof(full); k++)
			full[k] = (uint8_t)rng();
		full[0] = (uint8_t)layouts[i].type;
		/* Every length from the bare type byte to one byte short of the layout. */
		for (size_t len = 1; len < need; len++) {
			uint8_t *p = exact(full, len);
			assert_int_equal(wb_itch_decode(p, len, &m), WB_ITCH_ERR_SHORT);
			assert_int_equal(wb_itch_peek(p, len, &m), WB_ITCH_ERR_SHORT);
			free(p);
		}
		uint8_t *p = exact(full, need);
		assert_int_equal(wb_itch_decode(p, need, &m), WB_ITCH_OK);
		assert_int_equal(m.type, layouts[i].type);
		assert_peek_agrees(p, need, &m); /* within the layout too (ASan: exact allocation) */
		free(p);
	}
}

static void test_parsers_itch_unknown_type(void **state)
{
	(void)state;
	uint8_t buf[64] = { 0 };
	struct wb_itch_msg m;
	unsigned unknown = 0;

	for (unsigned t = 0; t < 256; t++) {
		if (wb_itch_msg_len((uint8_t)t))
			continue;
		buf[0] = (uint8_t)t;
		for (size_t len = 1; len <= sizeof(buf); len += 21) {
			uint8_t *p = exact(buf, len);
			assert_int_equal(wb_itch_decode(p, len, &m), WB_ITCH_ERR_UNKNOWN);
			assert_int_equal(wb_itch_peek(p, len, &m), WB_ITCH_ERR_UNKNOWN);
			free(p);
		}
		assert_string_equal(wb_itch_type_name((uint8_t)t), "unknown");
		m.type = (char)t;
		assert_int_equal(wb_itch_encode(&m, buf), 0);
		unknown++;
	}
	assert_int_equal(unknown, 256 - 23);
}

static void test_parsers_itch_longer_than_layout(void **state)
{
	(void)state;
	uint8_t buf[128], out[128];
	struct wb_itch_msg m, ref;

	for (size_t i = 0; i < NLAYOUTS; i++) {
		size_t need = layouts[i].len;
		for (size_t k = 0; k < sizeof(buf); k++)
			buf[k] = (uint8_t)rng();
		buf[0] = (uint8_t)layouts[i].type;
		assert_int_equal(wb_itch_decode(buf, need, &ref), WB_ITCH_OK);
		/* Appended fields (exchanges extend messages) are ignored, not misread. */
		for (size_t extra = 1; extra <= 40; extra += 13) {
			uint8_t *p = exact(buf, need + extra);
			assert_int_equal(wb_itch_decode(p, need + extra, &m), WB_ITCH_OK);
			assert_int_equal(wb_itch_encode(&m, out), need);
			assert_memory_equal(out, buf, need);
			assert_int_equal(m.ts, ref.ts);
			free(p);
		}
	}
}

static void test_parsers_itch_roundtrip_random(void **state)
{
	(void)state;
	uint8_t in[64], out[80];
	struct wb_itch_msg m, m2;

	rng_state = 20240601;
	for (size_t i = 0; i < NLAYOUTS; i++) {
		size_t need = layouts[i].len;
		for (int iter = 0; iter < 2000; iter++) {
			for (size_t k = 0; k < need; k++)
				in[k] = (uint8_t)rng();
			in[0] = (uint8_t)layouts[i].type;
			uint8_t *p = exact(in, need);
			assert_int_equal(wb_itch_decode(p, need, &m), WB_ITCH_OK);
			free(p);
			memset(out, 0xA5, sizeof(out));
			/* bytes -> fields -> bytes is the identity: every byte lands in a field and back. */
			assert_int_equal(wb_itch_encode(&m, out), need);
			assert_memory_equal(out, in, need);
			/* encode writes exactly the layout, nothing after it. */
			assert_int_equal(out[need], 0xA5);
			/* fields -> bytes -> fields keeps the common header and the full 48-bit stamp. */
			assert_int_equal(wb_itch_decode(out, need, &m2), WB_ITCH_OK);
			assert_int_equal(m2.type, m.type);
			assert_int_equal(m2.locate, m.locate);
			assert_int_equal(m2.tracking, m.tracking);
			assert_int_equal(m2.ts, m.ts);
			assert_true(m.ts < (1ULL << 48));
		}
	}
}

/* Field values chosen at the edges of each width, through encode then decode. */
static void test_parsers_itch_roundtrip_fields(void **state)
{
	(void)state;
	uint8_t buf[64];
	struct wb_itch_msg m = { 0 }, d;

	rng_state = 77;
	for (int iter = 0; iter < 1000; iter++) {
		m.type = 'P';
		m.locate = (uint16_t)rng();
		m.tracking = (uint16_t)rng();
		m.ts = rng() & 0xFFFFFFFFFFFFULL;
		m.u.trade.ref = rng();
		m.u.trade.side = (rng() & 1) ? 'B' : 'S';
		m.u.trade.shares = (uint32_t)rng();
		memcpy(m.u.trade.stock, "ZVZZT   ", 8);
		m.u.trade.price = (uint32_t)rng();
		m.u.trade.match = rng();
		assert_int_equal(wb_itch_encode(&m, buf), 44);
		assert_int_equal(wb_itch_decode(buf, 44, &d), WB_ITCH_OK);
		assert_int_equal(d.locate, m.locate);
		assert_int_equal(d.tracking, m.tracking);
		assert_int_equal(d.ts, m.ts);
		assert_int_equal(d.u.trade.ref, m.u.trade.ref);
		assert_int_equal(d.u.trade.side, m.u.trade.side);
		assert_int_equal(d.u.trade.shares, m.u.trade.shares);
		assert_memory_equal(d.u.trade.stock, m.u.trade.stock, 8);
		assert_int_equal(d.u.trade.price, m.u.trade.price);
		assert_int_equal(d.u.trade.match, m.u.trade.match);

		m.type = 'V';
		for (int k = 0; k < 3; k++)
			m.u.mwcb_decline.level[k] = rng();
		assert_int_equal(wb_itch_encode(&m, buf), 35);
		assert_int_equal(wb_itch_decode(buf, 35, &d), WB_ITCH_OK);
		for (int k = 0; k < 3; k++)
			assert_int_equal(d.u.mwcb_decline.level[k], m.u.mwcb_decline.level[k]);
	}

	/* Extremes: the largest 48-bit stamp and Price(4)/Price(8) values. */
	m.type = 'A';
	m.ts = 0xFFFFFFFFFFFFULL;
	m.u.add.price = UINT32_MAX;
	m.u.add.ref = UINT64_MAX;
	assert_int_equal(wb_itch_encode(&m, buf), 36);
	assert_int_equal(wb_itch_decode(buf, 36, &d), WB_ITCH_OK);
	assert_int_equal(d.ts, 0xFFFFFFFFFFFFULL);
	assert_int_equal(d.u.add.price, UINT32_MAX);
	assert_int_equal(d.u.add.ref, UINT64_MAX);
	assert_memory_equal(d.u.add.mpid, "    ", 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parsers_layout_table),
		cmocka_unit_test(test_parsers_mold_short_header),
		cmocka_unit_test(test_parsers_mold_heartbeat_and_end_of_session),
		cmocka_unit_test(test_parsers_mold_block_past_packet),
		cmocka_unit_test(test_parsers_mold_zero_length_block),
		cmocka_unit_test(test_parsers_mold_build_request),
		cmocka_unit_test(test_parsers_itch_short_every_type),
		cmocka_unit_test(test_parsers_itch_unknown_type),
		cmocka_unit_test(test_parsers_itch_longer_than_layout),
		cmocka_unit_test(test_parsers_itch_roundtrip_random),
		cmocka_unit_test(test_parsers_itch_roundtrip_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
