/* Per-symbol order books for one feed: order-by-order (ITCH) or price-level (IEX DEEP).
 * One writer (the worker that owns the feed); any number of lock-free readers of the
 * published top-of-book snapshots (seqlock per symbol). */
#ifndef WB_BOOK_H
#define WB_BOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "itch.h"

#define WB_BOOK_MAX_LOCATES 65536 /* ITCH locate is u16 */
#define WB_TOP_MAX_DEPTH 32       /* deepest published snapshot */
/* Most events one ITCH message adds to a batch (an execution with price larger than its
 * order: integrity, execution, trade; a replace that crosses: delete, replace, integrity). */
#define WB_BOOK_MAX_EVENTS_PER_MSG 3

enum wb_integrity_policy {
	WB_POLICY_FLAG = 0,   /* keep applying, mark the symbol flagged */
	WB_POLICY_FREEZE = 1, /* hold updates off until an operator reset */
};

enum wb_symbol_health {
	WB_HEALTH_OK = 0,
	WB_HEALTH_FLAGGED = 1, /* integrity events seen, policy flag */
	WB_HEALTH_FROZEN = 2,  /* integrity event under policy freeze, or operator freeze */
	WB_HEALTH_STALE = 3,   /* a gap was declared; waiting for recovery */
};

struct wb_book_opts {
	uint32_t max_orders;     /* live orders across all symbols (the survivor table is sized from it) */
	uint32_t order_ring;     /* order ring slots (16 B), a power of two; 0 = the power of two >= 4 x max_orders.
				  * More slots, fewer orders move to the survivor table (docs/book.md) */
	uint32_t max_levels;     /* live price levels across all symbols and sides */
	uint32_t max_symbols;    /* highest locate + 1 that will be seen (<= 65536) */
	uint32_t snapshot_depth; /* levels per side published to readers (<= WB_TOP_MAX_DEPTH) */
	uint8_t price_decimals;  /* 4 for ITCH and IEX */
	uint8_t feed;            /* feed index written into events */
	enum wb_integrity_policy policy;
	int numa_node;           /* allocate on this node; -1 = local */
};

struct wb_bookset;

/* Context of the message being applied, copied into its events. */
struct wb_msg_meta {
	uint64_t seq;
	uint64_t ts_recv;
	uint8_t flags; /* OR-ed into every event (e.g. WB_EVF_RECOVERED) */
};

int wb_bookset_create(const struct wb_book_opts *opts, struct wb_bookset **out);
void wb_bookset_destroy(struct wb_bookset *bs);

/* ---- writer side (the owning worker only) ---- */

/* Applies one decoded ITCH message: book changes, directory, trading state, trades,
 * integrity checks. Appends its events to out. Returns 0, or a negative errno only for
 * an internal error (integrity problems are events and counters, not errors). */
int wb_bookset_apply_itch(struct wb_bookset *bs, const struct wb_itch_msg *m,
			  const struct wb_msg_meta *meta, struct wb_event_batch *out);

/* Applies n decoded messages in order, exactly as n calls of wb_bookset_apply_itch would
 * (message i with sequence seqs[i]; ts_recv and flags, e.g. WB_EVF_RECOVERED, are the
 * packet's), starting each one's loads (order slots, book) 8 messages ahead of its apply
 * and the next ones (its level, the tops of its book's side arrays) 4 ahead.
 * What a worker calls per packet: the per-message call, its checks and its prefetch call
 * cost as much as a small message's work. Returns 0, or -EINVAL for a NULL bs or out (or
 * NULL msgs or seqs with n > 0). */
int wb_bookset_apply_itch_burst(struct wb_bookset *bs, const struct wb_itch_msg *msgs, const uint64_t *seqs,
				uint32_t n, uint64_t ts_recv, uint8_t flags, struct wb_event_batch *out);

/* Optional, for callers of wb_bookset_apply_itch (the burst call does this itself): starts
 * loading what applying m will touch (its order's slot, a replace's new slot, the survivor
 * slot its order may have moved to or be moved to, its book), so a caller that applies
 * messages in batches can hide those cache misses by calling it a few messages ahead. No
 * effect on the book; any message is accepted (unknown types, references or locates
 * cost a wasted prefetch); bs and m must not be NULL. */
void wb_bookset_prefetch_itch(const struct wb_bookset *bs, const struct wb_itch_msg *m);
/* Optional, for a caller that holds the next burst while it applies this one (a worker
 * with the next packet of its rx burst): starts the loads of the next burst's first
 * messages, which wb_bookset_apply_itch_burst would otherwise start only when that burst
 * begins, with no earlier messages to hide them behind. Looks at the first
 * WB_BOOK_PREFETCH_MSGS messages; no effect on the book; any message is accepted. The
 * book keeps the first message of the last two hints: a burst call whose adds' survivor
 * prefetch is off that starts with one of them, an order message, skips what its hint
 * started. Writer's thread only. */
void wb_bookset_prefetch_itch_burst(struct wb_bookset *bs, const struct wb_itch_msg *msgs, uint32_t n);
/* How many of a burst's first messages the burst call starts cold (and the hint covers). */
#define WB_BOOK_PREFETCH_MSGS 8
/* Optional second stage, for a message whose first stage ran a few messages earlier:
 * follows its order to its level (or, for an add, to the top of the side it searches).
 * Use over a burst: prefetch i+8, prefetch_deep i+4, apply i. It measures slower than
 * prefetch alone on a wbsim day (docs/performance.md, Book), so the burst call does not
 * use it; kept for other mixes. */
void wb_bookset_prefetch_itch_deep(const struct wb_bookset *bs, const struct wb_itch_msg *m);

/* Price-level feeds (IEX DEEP): sets the size at price on side ('B'/'S'); size 0 removes.
 * batch_end marks the book consistent (only then do readers see it). */
int wb_bookset_set_level(struct wb_bookset *bs, uint16_t locate, char side, int64_t price,
			 uint32_t size, bool batch_end, uint64_t ts_exch,
			 const struct wb_msg_meta *meta, struct wb_event_batch *out);

/* Names a symbol (directory messages of non-ITCH feeds). */
int wb_bookset_define_symbol(struct wb_bookset *bs, uint16_t locate, const char stock[8]);
/* Sets the trading state character ('T','H','P','Q',...). */
void wb_bookset_set_trading_state(struct wb_bookset *bs, uint16_t locate, char state);

/* Publishes the snapshots of the price-level books changed since the last call (the
 * worker calls it once per rx burst; a book with an open batch waits for its end). Order
 * books need no publish: readers read them live. */
void wb_bookset_publish(struct wb_bookset *bs);

/* Marks every book stale (declared gap) or healthy again (recovery caught up). */
void wb_bookset_set_stale(struct wb_bookset *bs, bool stale);

/* Applies operator requests posted by the control plane (freeze/reset) and sweeps the
 * next 16,384 order slots for orders a reset left stale; the worker calls it from its
 * idle path. */
void wb_bookset_service(struct wb_bookset *bs);

/* ---- readers (any thread, lock-free) ---- */

struct wb_level {
	int64_t price;
	uint64_t shares;
	uint32_t orders;
};

struct wb_top {
	uint16_t locate;
	char stock[9];            /* NUL-terminated, trailing spaces trimmed */
	char trading_state;       /* ' ' until known */
	uint8_t health;           /* enum wb_symbol_health */
	uint32_t nbids, nasks;    /* levels filled, best first */
	struct wb_level bids[WB_TOP_MAX_DEPTH];
	struct wb_level asks[WB_TOP_MAX_DEPTH];
	uint64_t ts_exch;         /* exchange time of the last applied update */
	uint64_t seq;             /* feed sequence of the last applied update */
};

struct wb_symbol_stats {
	uint16_t locate;
	char stock[9];
	char trading_state;
	uint8_t health;
	uint64_t msgs;                                /* messages applied to this symbol */
	uint64_t integrity[WB_INT_REASON_MAX];        /* per reason */
	uint64_t integrity_total;
	uint32_t live_orders;
	uint64_t held;                                /* order messages dropped while frozen */
};

struct wb_bookset_stats {
	uint64_t msgs;
	uint64_t live_orders, max_orders;
	uint64_t live_levels, max_levels;
	uint64_t order_table_full, level_table_full;
	uint64_t integrity_total;
	uint64_t symbols;          /* defined symbols */
	uint64_t event_overflow;   /* events lost because a batch was full */
	uint64_t stale_orders;     /* orders of reset books not yet swept from the table */
	uint64_t orders_added;     /* adds applied (A, F and the new order of U) */
	uint64_t survivor_moves;   /* orders still live a ring of references later, moved to the
				    * survivor table: many per add means book.order_ring is small
				    * for the day's order lifetimes (docs/book.md) */
	uint64_t memory_bytes;     /* preallocated */
};

/* Locate of a symbol ("AAPL", trailing spaces optional), or -ENOENT. */
int wb_bookset_find(const struct wb_bookset *bs, const char *symbol);
/* Copies the top of book, at most depth (<= snapshot_depth) levels per side: an order
 * book live, as of the last whole message; a price-level book from its snapshot, as of
 * its last complete batch. Retries on a torn read. Returns 0, -ENOENT for an undefined
 * locate, -EAGAIN if the writer kept it busy. */
int wb_bookset_read_top(const struct wb_bookset *bs, uint16_t locate, uint32_t depth, struct wb_top *out);
int wb_bookset_symbol_stats(const struct wb_bookset *bs, uint16_t locate, struct wb_symbol_stats *out);
/* Next defined locate at or after from, or -ENOENT. */
int wb_bookset_next_symbol(const struct wb_bookset *bs, uint32_t from);
void wb_bookset_stats(const struct wb_bookset *bs, struct wb_bookset_stats *out);
uint8_t wb_bookset_price_decimals(const struct wb_bookset *bs);

/* Operator requests, posted from the control plane, applied by the worker. */
int wb_bookset_request_freeze(struct wb_bookset *bs, uint16_t locate);
int wb_bookset_request_reset(struct wb_bookset *bs, uint16_t locate);

/* Full depth, for when the writer is stopped (end of replay, tests). cb gets levels best
 * first; returns the number of levels visited. */
typedef void (*wb_level_cb)(void *arg, char side, const struct wb_level *lvl);
size_t wb_bookset_walk_levels(const struct wb_bookset *bs, uint16_t locate, wb_level_cb cb, void *arg);

/* One resting order, as seen by wb_bookset_walk_orders. */
struct wb_order_info {
	uint64_t ref;
	int64_t price;
	uint32_t shares;
	char side;
};
typedef void (*wb_order_cb)(void *arg, const struct wb_order_info *o);
/* The FIFO queue at one price level, front (oldest) first; same rule as walk_levels.
 * Returns the number of orders visited (0 if there is no such level, or no memory).
 * Diagnostic: the queue is kept as arrival stamps, so this scans the whole order table
 * (tens of milliseconds at a full day's size) and allocates. Never on the worker. */
size_t wb_bookset_walk_orders(const struct wb_bookset *bs, uint16_t locate, char side, int64_t price,
			      wb_order_cb cb, void *arg);

/* Formats a fixed-point price at decimals ("123.4500"); returns chars written. */
int wb_price_format(char *buf, size_t n, int64_t price, uint8_t decimals);

/* Control thread: the integrity policy applied from the next integrity event on. */
void wb_bookset_set_policy(struct wb_bookset *bs, enum wb_integrity_policy policy);

#endif
