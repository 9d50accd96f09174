#include "pkt.h"

#include <errno.h>
#include <string.h>

#include "wire.h"

#define ETH_HLEN 14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88A8
#define IPPROTO_UDP_ 17
#define IPPROTO_TCP_ 6

uint32_t wb_csum_partial(const uint8_t *p, uint32_t len, uint32_t sum)
{
	while (len > 1) {
		sum += (uint32_t)((p[0] << 8) | p[1]);
		p += 2;
		len -= 2;
	}
	if (len)
		sum += (uint32_t)(p[0] << 8);
	return sum;
}

uint16_t wb_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	return (uint16_t)sum;
}

/* One's-complement sum of an IPv4 header in native 32-bit words: the folded sum of a
 * valid header is 0xFFFF in either byte order, so no swapping is needed. */
static inline bool ipv4_header_ok(const uint8_t *ip, uint32_t ihl)
{
	uint64_t sum = 0;
	for (uint32_t i = 0; i < ihl; i += 4) {
		uint32_t w;
		memcpy(&w, ip + i, 4);
		sum += w;
	}
	sum = (sum & 0xFFFFFFFF) + (sum >> 32);
	sum = (sum & 0xFFFFFFFF) + (sum >> 32);
	uint32_t s32 = (uint32_t)sum;
	s32 = (s32 & 0xFFFF) + (s32 >> 16);
	s32 = (s32 & 0xFFFF) + (s32 >> 16);
	return s32 == 0xFFFF;
}

enum wb_pkt_verdict wb_pkt_decode(const uint8_t *f, uint32_t len, bool check_udp_sum,
				  struct wb_udp_view *out)
{
	if (len < ETH_HLEN)
		return WB_PKT_BAD_LENGTH;
	uint32_t off = 12;
	uint16_t type = wb_be16(f + off);
	out->vlan = 0;
	/* Up to two tags (QinQ); the inner tag is the one that names the VLAN. */
	for (int tags = 0; (type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ) && tags < 2; tags++) {
		if (len < off + 6)
			return WB_PKT_BAD_LENGTH;
		out->vlan = wb_be16(f + off + 2) & 0x0FFF;
		off += 4;
		type = wb_be16(f + off);
	}
	off += 2;
	if (type != ETHERTYPE_IPV4)
		return WB_PKT_NOT_IPV4;
	if (len < off + 20)
		return WB_PKT_BAD_LENGTH;
	const uint8_t *ip = f + off;
	uint32_t ihl = (uint32_t)(ip[0] & 0x0F) * 4;
	if ((ip[0] >> 4) != 4)
		return WB_PKT_NOT_IPV4;
	uint32_t tot = wb_be16(ip + 2);
	if (ihl < 20 || tot < ihl || len < off + tot || len < off + ihl)
		return WB_PKT_BAD_LENGTH;
	if (!ipv4_header_ok(ip, ihl))
		return WB_PKT_BAD_CHECKSUM;
	uint16_t frag = wb_be16(ip + 6);
	if (frag & 0x3FFF) /* MF set or a non-zero offset */
		return WB_PKT_FRAGMENT;
	if (ip[9] == IPPROTO_TCP_) {
		const uint8_t *tcp = ip + ihl;
		uint32_t seglen = tot - ihl;
		uint32_t doff = seglen >= 20 ? (uint32_t)(tcp[12] >> 4) * 4 : 0;
		if (seglen < 20 || doff < 20 || doff > seglen)
			return WB_PKT_BAD_LENGTH;
		out->src_addr = wb_be32(ip + 12);
		out->dst_addr = wb_be32(ip + 16);
		out->src_port = wb_be16(tcp);
		out->dst_port = wb_be16(tcp + 2);
		out->tcp_seq = wb_be32(tcp + 4);
		out->tcp_ack = wb_be32(tcp + 8);
		out->tcp_flags = tcp[13] & 0x1F;
		out->payload = tcp + doff;
		out->len = seglen - doff;
		return WB_PKT_TCP;
	}
	if (ip[9] != IPPROTO_UDP_)
		return WB_PKT_NOT_UDP;
	const uint8_t *udp = ip + ihl;
	uint32_t ulen_avail = tot - ihl;
	if (ulen_avail < 8)
		return WB_PKT_BAD_LENGTH;
	uint32_t ulen = wb_be16(udp + 4);
	if (ulen < 8 || ulen > ulen_avail)
		return WB_PKT_BAD_LENGTH;
	out->src_addr = wb_be32(ip + 12);
	out->dst_addr = wb_be32(ip + 16);
	out->src_port = wb_be16(udp);
	out->dst_port = wb_be16(udp + 2);
	out->payload = udp + 8;
	out->len = ulen - 8;
	if (check_udp_sum && wb_be16(udp + 6) != 0) {
		uint32_t sum = wb_csum_partial(ip + 12, 8, 0);
		sum += IPPROTO_UDP_ + ulen;
		sum = wb_csum_partial(udp, ulen, sum);
		if (wb_csum_fold(sum) != 0xFFFF)
			return WB_PKT_BAD_CHECKSUM;
	}
	return WB_PKT_FEED;
}

void wb_classifier_init(struct wb_classifier *c)
{
	memset(c, 0, sizeof(*c));
}

static int classifier_insert(struct wb_classifier *c, uint64_t key, uint16_t feed, uint8_t line)
{
	if (key == 0)
		return -EINVAL;
	if (c->n * 2 >= WB_CLASSIFY_SLOTS)
		return -ENOSPC;
	uint32_t i = (uint32_t)((key * 0x9E3779B97F4A7C15ULL) >> 56) & (WB_CLASSIFY_SLOTS - 1);
	while (c->slot[i].key) {
		if (c->slot[i].key == key)
			return -EEXIST;
		i = (i + 1) & (WB_CLASSIFY_SLOTS - 1);
	}
	c->slot[i].key = key;
	c->slot[i].line.feed = feed;
	c->slot[i].line.line = line;
	c->n++;
	return 0;
}

int wb_classifier_add(struct wb_classifier *c, uint32_t addr, uint16_t port, uint16_t feed, uint8_t line)
{
	return classifier_insert(c, ((uint64_t)addr << 16) | port, feed, line);
}

int wb_classifier_add_tcp(struct wb_classifier *c, uint32_t server_addr, uint16_t server_port, uint16_t feed)
{
	return classifier_insert(c, WB_CLASSIFY_TCP | ((uint64_t)server_addr << 16) | server_port, feed, 0);
}

const char *wb_pkt_verdict_name(enum wb_pkt_verdict v)
{
	static const char *const names[WB_PKT_VERDICT_MAX] = {
		[WB_PKT_FEED] = "feed",
		[WB_PKT_UNMATCHED] = "unmatched",
		[WB_PKT_NOT_IPV4] = "not_ipv4",
		[WB_PKT_NOT_UDP] = "not_udp",
		[WB_PKT_FRAGMENT] = "ip_fragment",
		[WB_PKT_BAD_LENGTH] = "bad_length",
		[WB_PKT_BAD_CHECKSUM] = "bad_checksum",
		[WB_PKT_TCP] = "tcp",
	};
	return (unsigned)v < WB_PKT_VERDICT_MAX ? names[v] : "invalid";
}
