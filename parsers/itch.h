/* Nasdaq TotalView-ITCH 5.0 decoder (PROTOCOLS.md section 3): all 23 message types
 * into one tagged struct. Length-driven and bounds-checked; no allocation. */
#ifndef WB_ITCH_H
#define WB_ITCH_H

#include <stddef.h>
#include <stdint.h>

#define WB_ITCH_PRICE4_SCALE 10000ULL     /* Price(4) */
#define WB_ITCH_PRICE8_SCALE 100000000ULL /* Price(8), MWCB decline levels only */

/* Decoded message. Alpha fields are copied raw (space padded, not NUL-terminated). */
struct wb_itch_msg {
	char type;         /* 'S','R','H',... */
	uint16_t locate;   /* stock locate */
	uint16_t tracking; /* tracking number */
	uint64_t ts;       /* ns since midnight */
	union {
		struct { char event_code; } sys; /* S */
		struct {                         /* R */
			char stock[8];
			char market_category, financial_status;
			uint32_t round_lot_size;
			char round_lots_only, issue_classification, issue_sub_type[2], authenticity;
			char short_sale_threshold, ipo_flag, luld_tier, etp_flag;
			uint32_t etp_leverage;
			char inverse;
		} dir;
		struct { char stock[8]; char state, reserved, reason[4]; } action;        /* H */
		struct { char stock[8]; char action; } regsho;                           /* Y */
		struct { char mpid[4], stock[8]; char primary_mm, mm_mode, state; } mpp; /* L */
		struct { uint64_t level[3]; } mwcb_decline;                              /* V, Price(8) */
		struct { char level; } mwcb_status;                                      /* W */
		struct { char stock[8]; uint32_t release_time; char qualifier; uint32_t price; } ipo; /* K */
		struct { char stock[8]; uint32_t ref_price, upper, lower, extension; } luld;         /* J */
		struct { char stock[8]; char market_code, action; } op_halt;                          /* h */
		struct {                          /* A, F (mpid all spaces for A) */
			uint64_t ref;
			char side;
			uint32_t shares;
			char stock[8];
			uint32_t price;
			char mpid[4];
		} add;
		struct { uint64_t ref; uint32_t shares; uint64_t match; } exec; /* E */
		struct {                                                        /* C */
			uint64_t ref;
			uint32_t shares;
			uint64_t match;
			char printable;
			uint32_t price;
		} exec_px;
		struct { uint64_t ref; uint32_t shares; } cancel;                              /* X */
		struct { uint64_t ref; } del;                                                  /* D */
		struct { uint64_t old_ref, new_ref; uint32_t shares, price; } replace;         /* U */
		struct { uint64_t ref; char side; uint32_t shares; char stock[8]; uint32_t price; uint64_t match; } trade; /* P */
		struct { uint64_t shares; char stock[8]; uint32_t price; uint64_t match; char cross_type; } cross;       /* Q */
		struct { uint64_t match; } broken;                                                                      /* B */
		struct {                                                                                                /* I */
			uint64_t paired, imbalance;
			char direction, stock[8];
			uint32_t far_price, near_price, ref_price;
			char cross_type, variation;
		} noii;
		struct { char stock[8]; char interest; } rpii; /* N */
		struct {                                       /* O */
			char stock[8];
			char eligible;
			uint32_t min_price, max_price, near_price;
			uint64_t near_time;
			uint32_t lower_collar, upper_collar;
		} dlcr;
	} u;
};

/* Decode counters' classes: a shorter message than its layout, or an unknown type. */
enum wb_itch_err {
	WB_ITCH_OK = 0,
	WB_ITCH_ERR_SHORT = -1,   /* shorter than the type's layout */
	WB_ITCH_ERR_UNKNOWN = -2, /* type byte not one of the 23 */
	WB_ITCH_ERR_EMPTY = -3,   /* zero-length block */
};

/* Layout length of a type including the type byte, or 0 for an unknown type. */
size_t wb_itch_msg_len(uint8_t type);

/* Decodes one message of len bytes (a longer message is accepted, the extra bytes
 * ignored). Returns WB_ITCH_OK or a wb_itch_err; never reads past p + len. */
int wb_itch_decode(const uint8_t *p, size_t len, struct wb_itch_msg *out);

/* The fields a book needs to start its loads, and only those: type, locate, the
 * reference first in the union of the order messages (u.del.ref: A F E C X D U) and a
 * replace's new reference (u.replace.new_ref). The rest of out is unspecified (the two
 * reference fields may hold other bytes for other types). A fraction of a decode's cost,
 * for hints about messages the full decode sees later. Returns WB_ITCH_OK or a
 * wb_itch_err, as wb_itch_decode would; never reads past p + len. */
int wb_itch_peek(const uint8_t *p, size_t len, struct wb_itch_msg *out);

/* Encodes m into buf (at least wb_itch_msg_len(m->type) bytes); returns the length or 0
 * for an unknown type. Used by the simulator and tests. */
size_t wb_itch_encode(const struct wb_itch_msg *m, uint8_t *buf);

/* Human-readable name of a type ("Add Order"), "unknown" otherwise. */
const char *wb_itch_type_name(uint8_t type);

#endif
