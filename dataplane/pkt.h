/* Frame decode (Ethernet, 802.1Q, IPv4, UDP) and classification of a datagram to a feed
 * line by (destination address, destination port). No DPDK: the worker hands it bytes.
 * The verdict is an enum so that TCP feeds and the kernel exception path are new
 * verdicts, not a rewrite. */
#ifndef WB_PKT_H
#define WB_PKT_H

#include <stdbool.h>
#include <stdint.h>

enum wb_pkt_verdict {
	WB_PKT_FEED = 0,       /* UDP datagram of a configured feed line */
	WB_PKT_UNMATCHED,      /* valid UDP, no configured line */
	WB_PKT_NOT_IPV4,       /* ARP, IPv6, LLDP...: the host's traffic */
	WB_PKT_NOT_UDP,        /* IPv4 but not UDP (ICMP, IGMP, TCP) */
	WB_PKT_FRAGMENT,       /* IPv4 fragment: feeds never fragment */
	WB_PKT_BAD_LENGTH,     /* truncated frame, or IP/UDP lengths that disagree with it */
	WB_PKT_BAD_CHECKSUM,   /* IPv4 header or (when checked) UDP checksum */
	WB_PKT_TCP,            /* a TCP segment (a TCP feed's, or the host's) */
	WB_PKT_VERDICT_MAX
};

/* The layer-4 payload of a frame: UDP datagram or (verdict WB_PKT_TCP) TCP segment. */
struct wb_udp_view {
	const uint8_t *payload;
	uint32_t len;
	uint32_t src_addr, dst_addr; /* host order */
	uint16_t src_port, dst_port;
	uint16_t vlan;               /* 0 = untagged */
	uint32_t tcp_seq, tcp_ack;   /* TCP only */
	uint8_t tcp_flags;           /* TCP only: FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 */
};

/* Decodes one frame. check_udp_sum: verify the UDP checksum in software (NICs usually
 * do it; the worker passes the PMD's verdict in l4_bad when known). */
enum wb_pkt_verdict wb_pkt_decode(const uint8_t *frame, uint32_t len, bool check_udp_sum,
				  struct wb_udp_view *out);

/* A line of a feed, as the classifier returns it. */
struct wb_line_key {
	uint16_t feed;
	uint8_t line; /* 0 = A, 1 = B */
};

#define WB_CLASSIFY_SLOTS 256 /* power of two, >= 2 x lines */

/* Open-addressed table of (dst addr, dst port) -> line. Read-only on the hot path. */
struct wb_classifier {
	uint32_t n;
	struct {
		uint64_t key; /* addr << 16 | port; 0 = empty */
		struct wb_line_key line;
	} slot[WB_CLASSIFY_SLOTS];
};

void wb_classifier_init(struct wb_classifier *c);
/* -EEXIST if the endpoint is already a line, -ENOSPC when full. */
int wb_classifier_add(struct wb_classifier *c, uint32_t addr, uint16_t port, uint16_t feed, uint8_t line);

/* TCP feeds are keyed by their server (the segment's source): a separate key space. */
#define WB_CLASSIFY_TCP (1ULL << 48)
/* -EEXIST / -ENOSPC as wb_classifier_add. */
int wb_classifier_add_tcp(struct wb_classifier *c, uint32_t server_addr, uint16_t server_port, uint16_t feed);

static inline const struct wb_line_key *wb_classify_key(const struct wb_classifier *c, uint64_t key)
{
	uint32_t i = (uint32_t)((key * 0x9E3779B97F4A7C15ULL) >> 56) & (WB_CLASSIFY_SLOTS - 1);
	for (;;) {
		if (c->slot[i].key == key)
			return &c->slot[i].line;
		if (c->slot[i].key == 0)
			return 0;
		i = (i + 1) & (WB_CLASSIFY_SLOTS - 1);
	}
}

static inline const struct wb_line_key *wb_classify_tcp(const struct wb_classifier *c, uint32_t src_addr,
							uint16_t src_port)
{
	return wb_classify_key(c, WB_CLASSIFY_TCP | ((uint64_t)src_addr << 16) | src_port);
}

static inline const struct wb_line_key *wb_classify(const struct wb_classifier *c, uint32_t addr, uint16_t port)
{
	return wb_classify_key(c, ((uint64_t)addr << 16) | port);
}

const char *wb_pkt_verdict_name(enum wb_pkt_verdict v);

/* Internet checksum of a buffer (RFC 1071), folded, not complemented. */
uint32_t wb_csum_partial(const uint8_t *p, uint32_t len, uint32_t sum);
uint16_t wb_csum_fold(uint32_t sum);

#endif
