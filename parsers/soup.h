/* SoupBinTCP 3.00 (PROTOCOLS.md section 2): packet framing over a byte stream, and the
 * fixed packets a client or server builds. No sockets here: the bytes may come from a
 * kernel socket or from a TCP stream reassembled off the NIC ring. */
#ifndef WB_SOUP_H
#define WB_SOUP_H

#include <stddef.h>
#include <stdint.h>

#define WB_SOUP_MAX_PACKET 65537 /* 2-byte length + up to 65535 bytes */
#define WB_SOUP_SESSION_LEN 10

enum wb_soup_type {
	WB_SOUP_DEBUG = '+',
	WB_SOUP_LOGIN_ACCEPTED = 'A',
	WB_SOUP_LOGIN_REJECTED = 'J',
	WB_SOUP_SEQUENCED = 'S',
	WB_SOUP_SERVER_HEARTBEAT = 'H',
	WB_SOUP_END_OF_SESSION = 'Z',
	WB_SOUP_LOGIN_REQUEST = 'L',
	WB_SOUP_UNSEQUENCED = 'U',
	WB_SOUP_CLIENT_HEARTBEAT = 'R',
	WB_SOUP_LOGOUT = 'O',
};

/* One framed packet: type and payload (after the type byte). */
struct wb_soup_packet {
	char type;
	const uint8_t *payload;
	uint16_t len; /* payload bytes (packet length - 1) */
};

/* Frames packets out of a byte stream that arrives in arbitrary pieces (a length field
 * may be split across reads). Holds at most one partial packet; no allocation. */
struct wb_soup_framer {
	uint8_t buf[WB_SOUP_MAX_PACKET];
	uint32_t have;     /* bytes of the partial packet held */
	uint64_t packets;  /* complete packets framed */
	uint64_t empty;    /* packets with length 0 (no type byte): counted, skipped */
	uint64_t overflow; /* bytes left after an early stop that did not fit in buf: lost, counted */
};

void wb_soup_framer_init(struct wb_soup_framer *f);

/* Feeds n bytes; calls cb for each complete packet in stream order. Returns the number
 * of packets delivered. cb may stop early by returning non-zero: the bytes after that
 * packet are kept for the next call (returned value counts delivered packets), up to
 * sizeof(buf) of them; any excess is counted in overflow. */
typedef int (*wb_soup_cb)(void *arg, const struct wb_soup_packet *p);
uint32_t wb_soup_feed(struct wb_soup_framer *f, const uint8_t *data, size_t n, wb_soup_cb cb, void *arg);

/* Builders: write the packet (length prefix included) into out; return its length. */
size_t wb_soup_build_login(uint8_t *out, const char *user, const char *pass,
			   const char session[WB_SOUP_SESSION_LEN], uint64_t seq); /* 49 bytes */
size_t wb_soup_build_simple(uint8_t *out, char type); /* H, R, O, Z: 3 bytes */
size_t wb_soup_build_accepted(uint8_t *out, const char session[WB_SOUP_SESSION_LEN], uint64_t seq); /* 33 */
size_t wb_soup_build_rejected(uint8_t *out, char reason); /* 4 */
/* Sequenced data header only (3 bytes): the caller sends the message after it.
 * msg_len <= 65534 (the length field counts the type byte). */
size_t wb_soup_build_sequenced_hdr(uint8_t *out, uint16_t msg_len);

/* Parsers for the fixed payloads; 0 or -EBADMSG. Numeric fields are trimmed of spaces
 * (and NULs) on both sides. */
int wb_soup_parse_accepted(const struct wb_soup_packet *p, char session[WB_SOUP_SESSION_LEN], uint64_t *seq);
int wb_soup_parse_login(const struct wb_soup_packet *p, char user[7], char pass[11],
			char session[WB_SOUP_SESSION_LEN], uint64_t *seq);
/* Parsed sessions are left-justified and space padded (the MoldUDP64 spelling); user and
 * password come out trimmed and NUL-terminated. Login Rejected: the reason code. */
int wb_soup_parse_rejected(const struct wb_soup_packet *p, char *reason);

#endif
