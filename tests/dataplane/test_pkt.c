/* Frame decode and classification: every verdict, VLAN tags, checksums, the line table. */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pkt.h"
#include "wire.h"

/* Builds Ethernet [VLAN] IPv4 UDP around payload into f; returns the frame length. */
static uint32_t build(uint8_t *f, int vlans, uint32_t dst, uint16_t dport, const uint8_t *pl, uint16_t plen, bool udp_sum)
{
	uint32_t o = 12;
	memset(f, 0, 12);
	for (int i = 0; i < vlans; i++) {
		wb_put_be16(f + o, i == 0 && vlans == 2 ? 0x88A8 : 0x8100);
		wb_put_be16(f + o + 2, (uint16_t)(100 + i));
		o += 4;
	}
	wb_put_be16(f + o, 0x0800);
	o += 2;
	uint8_t *ip = f + o;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	wb_put_be16(ip + 2, (uint16_t)(28 + plen));
	ip[8] = 32;
	ip[9] = 17;
	wb_put_be32(ip + 12, 0x0A010101);
	wb_put_be32(ip + 16, dst);
	wb_put_be16(ip + 10, (uint16_t)~wb_csum_fold(wb_csum_partial(ip, 20, 0)));
	uint8_t *udp = ip + 20;
	wb_put_be16(udp, 40000);
	wb_put_be16(udp + 2, dport);
	wb_put_be16(udp + 4, (uint16_t)(8 + plen));
	wb_put_be16(udp + 6, 0);
	memcpy(udp + 8, pl, plen);
	if (udp_sum) {
		uint32_t s = wb_csum_partial(ip + 12, 8, 0) + 17 + 8 + plen;
		s = wb_csum_partial(udp, 8u + plen, s);
		uint16_t c = (uint16_t)~wb_csum_fold(s);
		wb_put_be16(udp + 6, c ? c : 0xFFFF);
	}
	return o + 28 + plen;
}

static void test_decode_plain_and_vlan(void **st)
{
	(void)st;
	uint8_t f[256], pl[10] = "0123456789";
	struct wb_udp_view v;
	for (int vl = 0; vl <= 2; vl++) {
		uint32_t n = build(f, vl, 0xE9366F6F, 26477, pl, sizeof(pl), true);
		assert_int_equal(wb_pkt_decode(f, n, true, &v), WB_PKT_FEED);
		assert_int_equal(v.dst_addr, 0xE9366F6F);
		assert_int_equal(v.dst_port, 26477);
		assert_int_equal(v.src_port, 40000);
		assert_int_equal(v.len, 10);
		assert_memory_equal(v.payload, pl, 10);
		assert_int_equal(v.vlan, vl ? 100 + vl - 1 : 0);
	}
}

static void test_decode_errors(void **st)
{
	(void)st;
	uint8_t f[256], pl[10] = { 0 };
	struct wb_udp_view v;
	uint32_t n = build(f, 0, 0xE9366F6F, 26477, pl, sizeof(pl), true);
	for (uint32_t cut = 0; cut < n; cut++) /* every truncation is a length error, never a read past it */
		assert_int_equal(wb_pkt_decode(f, cut, false, &v), WB_PKT_BAD_LENGTH);
	uint8_t g[256];
	memcpy(g, f, n);
	g[14 + 8] ^= 1; /* TTL: IP header checksum breaks */
	assert_int_equal(wb_pkt_decode(g, n, false, &v), WB_PKT_BAD_CHECKSUM);
	memcpy(g, f, n);
	g[n - 1] ^= 0xFF; /* payload: only the UDP checksum notices */
	assert_int_equal(wb_pkt_decode(g, n, false, &v), WB_PKT_FEED);
	assert_int_equal(wb_pkt_decode(g, n, true, &v), WB_PKT_BAD_CHECKSUM);
	memcpy(g, f, n);
	wb_put_be16(g + 12, 0x86DD);
	assert_int_equal(wb_pkt_decode(g, n, false, &v), WB_PKT_NOT_IPV4);
	memcpy(g, f, n);
	g[14 + 9] = 1; /* ICMP */
	wb_put_be16(g + 14 + 10, 0);
	wb_put_be16(g + 14 + 10, (uint16_t)~wb_csum_fold(wb_csum_partial(g + 14, 20, 0)));
	assert_int_equal(wb_pkt_decode(g, n, false, &v), WB_PKT_NOT_UDP);
	memcpy(g, f, n);
	g[14 + 9] = 6; /* TCP, but 18 bytes cannot hold a TCP header */
	wb_put_be16(g + 14 + 10, 0);
	wb_put_be16(g + 14 + 10, (uint16_t)~wb_csum_fold(wb_csum_partial(g + 14, 20, 0)));
	assert_int_equal(wb_pkt_decode(g, n, false, &v), WB_PKT_BAD_LENGTH);
	memcpy(g, f, n);
	wb_put_be16(g + 14 + 6, 0x2000); /* more fragments */
	wb_put_be16(g + 14 + 10, 0);
	wb_put_be16(g + 14 + 10, (uint16_t)~wb_csum_fold(wb_csum_partial(g + 14, 20, 0)));
	assert_int_equal(wb_pkt_decode(g, n, false, &v), WB_PKT_FRAGMENT);
	memcpy(g, f, n);
	wb_put_be16(g + 14 + 20 + 4, 200); /* UDP length beyond the IP datagram */
	assert_int_equal(wb_pkt_decode(g, n, false, &v), WB_PKT_BAD_LENGTH);
}

static void test_decode_tcp(void **st)
{
	(void)st;
	uint8_t f[128];
	memset(f, 0, sizeof(f));
	wb_put_be16(f + 12, 0x0800);
	uint8_t *ip = f + 14, *tcp = ip + 20;
	ip[0] = 0x45;
	wb_put_be16(ip + 2, 20 + 24 + 5);
	ip[8] = 64;
	ip[9] = 6;
	wb_put_be32(ip + 12, 0x0A090001);
	wb_put_be32(ip + 16, 0x0A090002);
	wb_put_be16(ip + 10, (uint16_t)~wb_csum_fold(wb_csum_partial(ip, 20, 0)));
	wb_put_be16(tcp, 9001);
	wb_put_be16(tcp + 2, 40001);
	wb_put_be32(tcp + 4, 0xFFFFFFF0);
	wb_put_be32(tcp + 8, 77);
	tcp[12] = 6 << 4; /* 24-byte header: one option word */
	tcp[13] = 0x18;   /* PSH ACK */
	memcpy(tcp + 24, "hello", 5);
	struct wb_udp_view v;
	assert_int_equal(wb_pkt_decode(f, 14 + 49, false, &v), WB_PKT_TCP);
	assert_int_equal(v.src_addr, 0x0A090001);
	assert_int_equal(v.src_port, 9001);
	assert_int_equal(v.dst_port, 40001);
	assert_int_equal(v.tcp_seq, 0xFFFFFFF0);
	assert_int_equal(v.tcp_ack, 77);
	assert_int_equal(v.tcp_flags, 0x18);
	assert_int_equal(v.len, 5);
	assert_memory_equal(v.payload, "hello", 5);
	tcp[12] = 15 << 4; /* data offset past the segment */
	assert_int_equal(wb_pkt_decode(f, 14 + 49, false, &v), WB_PKT_BAD_LENGTH);
	struct wb_classifier c;
	wb_classifier_init(&c);
	assert_int_equal(wb_classifier_add_tcp(&c, 0x0A090001, 9001, 3), 0);
	assert_int_equal(wb_classifier_add(&c, 0x0A090001, 9001, 4, 0), 0); /* UDP: another key space */
	assert_int_equal(wb_classify_tcp(&c, 0x0A090001, 9001)->feed, 3);
	assert_int_equal(wb_classify(&c, 0x0A090001, 9001)->feed, 4);
	assert_null(wb_classify_tcp(&c, 0x0A090002, 40001));
}

static void test_classifier(void **st)
{
	(void)st;
	struct wb_classifier c;
	wb_classifier_init(&c);
	assert_int_equal(wb_classifier_add(&c, 0xE9366F6F, 26477, 0, 0), 0);
	assert_int_equal(wb_classifier_add(&c, 0xE931C46F, 26477, 0, 1), 0);
	assert_int_equal(wb_classifier_add(&c, 0xE9366F6F, 26477, 1, 0), -EEXIST);
	const struct wb_line_key *k = wb_classify(&c, 0xE931C46F, 26477);
	assert_non_null(k);
	assert_int_equal(k->feed, 0);
	assert_int_equal(k->line, 1);
	assert_null(wb_classify(&c, 0xE9366F6F, 26478));
	assert_null(wb_classify(&c, 0xE9366F70, 26477));
	int added = 2;
	for (uint32_t i = 0; i < 1000 && wb_classifier_add(&c, 0xEF000000 + i, 1000, 2, 0) == 0; i++)
		added++;
	assert_int_equal(added, WB_CLASSIFY_SLOTS / 2); /* bounded, full is -ENOSPC */
	for (uint32_t i = 0; i < (uint32_t)added - 2; i++)
		assert_non_null(wb_classify(&c, 0xEF000000 + i, 1000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_plain_and_vlan),
		cmocka_unit_test(test_decode_errors),
		cmocka_unit_test(test_decode_tcp),
		cmocka_unit_test(test_classifier),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
