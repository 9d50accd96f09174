/* Feed protocol plug-ins. One descriptor per protocol (like testpmd's fwd_engine): the
 * worker hands each classified UDP payload to its feed's on_datagram and knows nothing
 * else about the protocol. Adding a protocol = one file + one line in feed.c's table. */
#ifndef WB_FEED_H
#define WB_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "book.h"
#include "config.h"
#include "event.h"

struct wb_rx_meta {
	uint64_t ts_recv;  /* ns since the UNIX epoch (pcap timestamp in replay) */
	uint64_t tsc;      /* TSC at rx, for latency */
	uint32_t src_addr; /* IPv4 source, host order */
	uint16_t src_port;
	uint8_t line;      /* 0 = line A, 1 = line B */
	uint8_t flags;     /* WB_RX_F_* */
};

/* ts_recv is a recorded time (replay), not a clock: separately read files run ahead of
 * each other, so plug-ins must not time gaps out on it. */
#define WB_RX_F_REPLAY 0x01

/* A named counter a plug-in exports; units are in the name (_total, _bytes, _ns). */
struct wb_counter {
	const char *name;
	const char *help;
	uint64_t value;
	int8_t line;       /* -1 = whole feed, 0 = A, 1 = B */
};

struct wb_tcp_seg; /* tcp_reasm.h */

/* How a plug-in sends a frame (a MoldUDP64 re-request) from its worker's TX queue on the
 * feed's port. send returns 0 or -ENOBUFS/-EAGAIN; never blocks. */
struct wb_tx {
	int (*send)(void *ctx, const uint8_t *frame, uint32_t len);
	void *ctx;
	uint8_t port_mac[6]; /* the source MAC to put in frames */
};

/* A sequence gap as operators see it (wbctl gaps). */
enum wb_gap_repair {
	WB_GAP_OPEN = 0,       /* still missing */
	WB_GAP_OTHER_LINE = 1, /* the other line's copy arrived */
	WB_GAP_REREQUEST = 2,  /* a MoldUDP64 re-request answered */
	WB_GAP_SOUP = 3,       /* replayed over a SoupBinTCP recovery session */
	WB_GAP_DECLARED = 4,   /* given up: the messages are lost, books stale */
};

struct wb_gap_record {
	uint64_t first_seq, count; /* count: messages missing when the gap was last seen whole */
	uint64_t opened_ns, closed_ns;
	uint8_t repair;            /* enum wb_gap_repair */
	uint8_t requests;          /* re-requests sent for it */
};

/* Receive lines beyond A and B: recovery traffic enters the same sequencing path. */
#define WB_LINE_REREQUEST 2 /* unicast responses to our re-requests */
#define WB_LINE_SOUP 3      /* messages replayed by a SoupBinTCP recovery session */

/* Appends one counter for a plug-in's counters(): writes while there is room, counts always
 * (so the caller learns how many exist). */
static inline void wb_counter_put(struct wb_counter *out, size_t max, size_t *n, const char *name, const char *help,
				  uint64_t value, int8_t line)
{
	if (*n < max)
		out[*n] = (struct wb_counter){ .name = name, .help = help, .value = value, .line = line };
	(*n)++;
}

struct wb_feed_proto {
	const char *name;        /* config "protocol:" value */
	const char *description;
	int (*create)(const struct wb_feed_conf *fc, uint8_t feed_index, int numa_node, void **state);
	void (*destroy)(void *state);
	/* Hot path: one UDP payload. Appends events to out; never blocks or allocates. */
	void (*on_datagram)(void *state, const uint8_t *payload, uint32_t len,
			    const struct wb_rx_meta *meta, struct wb_event_batch *out);
	/* Hot path, TCP feeds (on_datagram unused): one TCP segment of the feed's session, either
	 * direction, decoded from a frame on the NIC ring. NULL for UDP feeds. */
	void (*on_tcp_segment)(void *state, const struct wb_tcp_seg *seg, const struct wb_rx_meta *meta,
			       struct wb_event_batch *out);
	/* Optional hot-path hint: the payload on_datagram will get next (the following packet
	 * of the rx burst), handed over before the current one is processed, so the plug-in can
	 * start the loads its first messages will need. Must change nothing and count nothing:
	 * the payload may be malformed, and on_datagram still sees it in full. */
	void (*prefetch_datagram)(void *state, const uint8_t *payload, uint32_t len);
	/* Called when the worker's rx queues were empty: timers (gap timeouts, line silence). */
	void (*on_idle)(void *state, uint64_t now_ns, struct wb_event_batch *out);
	struct wb_bookset *(*books)(void *state);
	/* Copies up to max counters; returns how many exist. Safe from any thread. */
	size_t (*counters)(void *state, struct wb_counter *out, size_t max);
	/* Optional, from the control thread: keep only the events of these symbols (n = 0:
	 * all). The worker picks the new filter up through an atomic pointer. */
	int (*set_symbol_filter)(void *state, const char (*symbols)[WB_SYMBOL_LEN], uint32_t n);
	/* Optional: the worker hands the plug-in a way to transmit (before it starts). */
	void (*attach_tx)(void *state, const struct wb_tx *tx);
	/* Optional, any thread: the most recent gaps, newest first; returns how many. */
	size_t (*gaps)(void *state, struct wb_gap_record *out, size_t max);
	/* Optional, control thread: whether a SoupBinTCP recovery session is wanted now, and
	 * from where (session, next sequence). */
	bool (*recovery_wanted)(void *state, char session[10], uint64_t *from_seq);
	/* Optional, control thread: hands one recovered message (sequence seq) to the worker,
	 * which applies it in sequence. -ENOBUFS when the handoff ring is full. */
	int (*recovery_push)(void *state, uint64_t seq, const uint8_t *msg, uint16_t len);
	/* Optional, control thread: an operator's re-request of count messages from seq;
	 * the worker sends it. -ENOTSUP without a re-request server, -EBUSY if one is pending. */
	int (*backfill)(void *state, uint64_t seq, uint32_t count);
};

/* The book options every plug-in derives from its feed's config (price decimals: 4). */
void wb_feed_book_opts(const struct wb_feed_conf *fc, uint8_t feed_index, int numa_node, struct wb_book_opts *bo);

const struct wb_feed_proto *wb_feed_proto_find(const char *name);
/* NULL-terminated list, for --help and config validation. */
const struct wb_feed_proto *const *wb_feed_protos(void);

#endif
