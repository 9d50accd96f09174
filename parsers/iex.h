/* IEX-TP v1 transport and the IEX DEEP 1.0 / TOPS 1.6 messages (PROTOCOLS.md section 5).
 * Little-endian, length-driven and bounds-checked; no allocation. */
#ifndef WB_IEX_H
#define WB_IEX_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define WB_IEXTP_HDR_LEN 40
#define WB_IEXTP_VERSION 1
#define WB_IEXTP_PROTO_TOPS 0x8003
#define WB_IEXTP_PROTO_DEEP 0x8004
#define WB_IEX_PRICE_SCALE 10000LL /* prices are int64 with 4 implied decimals */
#define WB_IEX_SYMBOL_LEN 8
#define WB_IEXTP_MAX_SEQ (INT64_MAX / 2) /* larger sequences or offsets are malformed */

/* Which message set a segment carries; decides which type bytes are valid. */
enum wb_iex_feed {
	WB_IEX_DEEP = 0, /* DEEP 1.0: price level updates '8'/'5' */
	WB_IEX_TOPS = 1, /* TOPS 1.6: quote update 'Q' */
};

/* Price Level Update event flags: the book is consistent after this update. */
#define WB_IEX_EVENT_COMPLETE 0x01

struct wb_iextp_hdr {
	uint8_t version;
	uint16_t protocol;    /* WB_IEXTP_PROTO_* */
	uint32_t channel;
	uint32_t session;
	uint16_t payload_len; /* bytes after the header, block length prefixes included */
	uint16_t count;       /* messages; 0 = heartbeat (seq/offset are then the next ones) */
	int64_t offset;       /* stream byte offset of the first payload byte */
	int64_t first_seq;    /* sequence of the first message */
	int64_t send_time;    /* ns since the UNIX epoch */
};

/* Walks the message blocks of one validated segment. */
struct wb_iextp_iter {
	const uint8_t *p;
	const uint8_t *end;
	uint16_t left;
};

/* Parses and validates one segment: -EMSGSIZE when shorter than the header or than
 * its payload length, -EPROTO for a version other than 1, -EBADMSG when the blocks do
 * not exactly fill the payload (count mismatch, a block running past it, an empty
 * block, a heartbeat with payload) or for a sequence < 1 or offset < 0. On success *it is at the first block; every block
 * it yields is then known to be in bounds, so a segment is applied whole or not at all. */
int wb_iextp_parse(const uint8_t *seg, size_t len, struct wb_iextp_hdr *hdr, struct wb_iextp_iter *it);

/* Next block: 1 with msg and len set, 0 after the last one. */
static inline int wb_iextp_next(struct wb_iextp_iter *it, const uint8_t **msg, uint16_t *len)
{
	if (it->left == 0)
		return 0;
	uint16_t l = (uint16_t)(it->p[0] | (it->p[1] << 8));
	*msg = it->p + 2;
	*len = l;
	it->p += 2 + (size_t)l;
	it->left--;
	return 1;
}

/* Writes a segment header into buf (>= 40 bytes). Used by tests, bench and simulators. */
void wb_iextp_put_hdr(uint8_t *buf, const struct wb_iextp_hdr *hdr);

/* Decoded message. Symbols are raw (space padded, not NUL-terminated). */
struct wb_iex_msg {
	char type;       /* 'S','D','H',... */
	uint8_t flags;   /* the byte after the type: flags or sub-type, per message */
	int64_t ts;      /* ns since the UNIX epoch */
	char symbol[WB_IEX_SYMBOL_LEN]; /* all spaces for System Event */
	union {
		struct { char event; } sys;                                        /* S */
		struct { uint32_t round_lot; int64_t adjusted_poc; uint8_t luld_tier; } dir; /* D */
		struct { char status; char reason[4]; } status;                    /* H */
		struct { char indicator; } retail;                                 /* I */
		struct { char status; } op_halt;                                   /* O */
		struct { uint8_t in_effect; char detail; } ssr;                    /* P */
		struct { char event; } sec_event;                                  /* E */
		struct { uint8_t event_flags; uint32_t size; int64_t price; } level; /* 8, 5 */
		struct { uint8_t sale_flags; uint32_t size; int64_t price; uint64_t trade_id; } trade; /* T, B */
		struct { char price_type; int64_t price; } official;              /* X */
		struct {                                                           /* A */
			char auction_type;
			uint32_t paired_shares;
			int64_t reference_price, indicative_price;
			uint32_t imbalance_shares;
			char imbalance_side;
			uint8_t extension;
			uint32_t scheduled_time; /* seconds since the UNIX epoch */
			int64_t auction_book_price, collar_reference, lower_collar, upper_collar;
		} auction;
		struct { uint8_t quote_flags; uint32_t bid_size; int64_t bid, ask; uint32_t ask_size; } quote; /* Q */
	} u;
};

enum wb_iex_err {
	WB_IEX_OK = 0,
	WB_IEX_ERR_SHORT = -1,   /* shorter than the type's layout */
	WB_IEX_ERR_UNKNOWN = -2, /* type not part of this feed's message set */
	WB_IEX_ERR_EMPTY = -3,   /* zero-length block */
};

/* Layout length of a type in a feed's message set, or 0 when it is not part of it. */
size_t wb_iex_msg_len(enum wb_iex_feed feed, uint8_t type);

/* Decodes one message of len bytes (longer is accepted: later spec versions append
 * fields). Returns WB_IEX_OK or a wb_iex_err; never reads past p + len. */
int wb_iex_decode(enum wb_iex_feed feed, const uint8_t *p, size_t len, struct wb_iex_msg *out);

/* Encodes m into buf (at least wb_iex_msg_len bytes); returns its length, or 0 when
 * the type is not part of the feed's set. */
size_t wb_iex_encode(enum wb_iex_feed feed, const struct wb_iex_msg *m, uint8_t *buf);

/* "Price Level Update (buy)", "unknown" otherwise. */
const char *wb_iex_type_name(uint8_t type);

#endif
