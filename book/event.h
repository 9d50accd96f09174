/* The event record: every book change, trade, status change and integrity event, in one
 * fixed 64-byte layout. It is the contract between workers, the capture and its readers
 * (docs/events.md); change it only with a capture format version bump. */
#ifndef WB_EVENT_H
#define WB_EVENT_H

#include <stdint.h>

enum wb_event_type {
	WB_EV_NONE = 0,
	WB_EV_ORDER_ADD = 1,     /* ref, side, price, shares = order size; aux = MPID (F) */
	WB_EV_ORDER_EXEC = 2,    /* ref, side, price = order price, shares = executed, aux = match */
	WB_EV_ORDER_CANCEL = 3,  /* ref, side, price, shares = canceled */
	WB_EV_ORDER_DELETE = 4,  /* ref, side, price, shares = remaining shares removed */
	WB_EV_ORDER_REPLACE = 5, /* the new order: ref = new, aux = old ref; follows a DELETE flagged REPLACE */
	WB_EV_LEVEL = 6,         /* price-level books: side, price, level_shares = new size (0 removes) */
	WB_EV_TRADE = 7,         /* a print: price, shares, aux = match/trade id, ref = order ref or 0 */
	WB_EV_TRADE_BREAK = 8,   /* aux = match/trade id */
	WB_EV_STATUS = 9,        /* trading state: side = state char, aux = reason (raw bytes) */
	WB_EV_SYMBOL = 10,       /* directory: aux = symbol (8 raw bytes) */
	WB_EV_SYSTEM = 11,       /* system event: side = event code */
	WB_EV_INTEGRITY = 12,    /* side = enum wb_integrity_reason, ref = order ref, aux = detail */
	WB_EV_GAP = 13,          /* seq = first missing, aux = count, side = enum wb_gap_state */
	WB_EV_DROP = 14,         /* written by the capture: seq = first dropped, aux = count, ref = last seq */
	WB_EV_QUOTE = 15,        /* top of book from a BBO feed: price = bid, aux = ask (price units), shares = bid size, level_shares = ask size */
	WB_EV_OTHER = 16,        /* any other decoded message: side = raw type; price/shares/aux per docs/events.md */
	WB_EV_TYPE_MAX
};

enum wb_event_flags {
	WB_EVF_REPLACE = 0x01,       /* part of an order replace */
	WB_EVF_NONPRINTABLE = 0x02,  /* execution not to be counted in volume */
	WB_EVF_BATCH_END = 0x04,     /* the book is consistent after this event */
	WB_EVF_STALE = 0x08,         /* the book was stale or frozen when this happened */
	WB_EVF_RECOVERED = 0x10,     /* came from a retransmission or recovery session */
	WB_EVF_WITH_PRICE = 0x20,    /* execution at an explicit price (ITCH C) */
	WB_EVF_CROSS = 0x40,         /* cross trade (ITCH Q) */
};

enum wb_integrity_reason {
	WB_INT_UNKNOWN_ORDER = 1,   /* E/C/X/D/U for an order not in the book */
	WB_INT_EXEC_TOO_LARGE = 2,  /* execution or cancel larger than the order */
	WB_INT_CROSSED = 3,         /* best bid > best ask after an update */
	WB_INT_LOCKED = 4,          /* best bid == best ask after an update */
	WB_INT_ORDER_TABLE_FULL = 5,
	WB_INT_LEVEL_TABLE_FULL = 6,
	WB_INT_DUPLICATE_ORDER = 7, /* add with a reference already live */
	WB_INT_GAP_DECLARED = 8,    /* unrecoverable sequence gap: books stale */
	WB_INT_UNKNOWN_LOCATE = 9,  /* locate outside the configured symbol table */
	WB_INT_BAD_SIDE = 10,       /* add with a side byte other than 'B'/'S' */
	WB_INT_REASON_MAX
};

struct wb_event {
	uint64_t ts_exch;      /* exchange timestamp in the feed's own clock (ITCH: ns since midnight) */
	uint64_t ts_recv;      /* receive time, ns since the UNIX epoch */
	uint64_t seq;          /* feed sequence number of the message */
	uint64_t ref;          /* order reference (or 0) */
	uint64_t aux;          /* per type: match number, new/old ref, symbol bytes, ... */
	int64_t price;         /* fixed point at the feed's precision (4 decimals for ITCH/IEX) */
	uint32_t shares;       /* per type */
	uint32_t level_shares; /* aggregate shares at price on side after the change (saturating) */
	uint16_t locate;       /* symbol index within the feed */
	uint16_t level_orders; /* orders at the level after the change (saturating) */
	uint8_t type;          /* enum wb_event_type */
	uint8_t side;          /* 'B', 'S', or per type */
	uint8_t feed;          /* feed index in the config */
	uint8_t flags;         /* enum wb_event_flags */
};

_Static_assert(sizeof(struct wb_event) == 64, "event record is one cache line");

/* A worker-local batch the book appends to; the worker flushes it to its ring. */
struct wb_event_batch {
	struct wb_event *ev;
	uint32_t n;
	uint32_t cap;
	uint64_t overflow; /* events that did not fit: counted, never written past cap */
	/* Optional, set by the batch's owner: hands the events on and empties the batch, so
	 * a producer with more to add than fits (a TCP hole filled, releasing everything held
	 * behind it) loses none. NULL: the batch cannot be emptied early. */
	void (*drain)(struct wb_event_batch *b, void *arg);
	void *drain_arg;
};

static inline struct wb_event *wb_batch_push(struct wb_event_batch *b)
{
	if (__builtin_expect(b->n == b->cap, 0)) {
		b->overflow++;
		return 0;
	}
	return &b->ev[b->n++];
}

/* Makes room for need (at most cap) more events, draining the batch when it has less.
 * Call between whole messages only: events already in the batch may leave it. Without a
 * drain, or past cap, pushes still never write beyond the batch: they count overflow. */
static inline void wb_batch_reserve(struct wb_event_batch *b, uint32_t need)
{
	if (b->cap - b->n < need && b->drain)
		b->drain(b, b->drain_arg);
}

const char *wb_event_type_name(uint8_t type);
const char *wb_integrity_reason_name(uint8_t reason);

#endif
