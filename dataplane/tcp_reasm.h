/* TCP stream reassembly of one direction of one connection (server -> client), from the
 * frames a worker sees on the NIC ring. The kernel owns the session (exception path); this
 * only reads a copy of the byte stream. Bounded: out-of-order data lives in a window of
 * ooo_bytes_cap bytes indexed by stream offset, in at most ooo_segments_cap held pieces;
 * nothing is allocated after wb_tcp_flow_init. Pure C, no DPDK (docs/tcp-feeds.md). */
#ifndef WB_TCP_REASM_H
#define WB_TCP_REASM_H

#include <stdint.h>

#define WB_TCP_FIN 0x01
#define WB_TCP_SYN 0x02
#define WB_TCP_RST 0x04
#define WB_TCP_PSH 0x08
#define WB_TCP_ACK 0x10

/* One decoded TCP segment; addresses and ports in host order. */
struct wb_tcp_seg {
	uint32_t src_addr, dst_addr;
	uint16_t src_port, dst_port;
	uint32_t seq, ack;
	uint8_t flags; /* WB_TCP_* */
	const uint8_t *payload;
	uint32_t len;
	uint64_t ts_recv; /* ns; the clock hole timeouts run on */
};

enum wb_tcp_what {
	WB_TCP_OPEN = 1,  /* SYN: a new connection; stream offset 0 is the byte after the ISN */
	WB_TCP_DATA = 2,  /* data[0..len) are the next bytes in order, each delivered once */
	WB_TCP_HOLE = 3,  /* len bytes at offset will never come: declared lost, the stream goes on after them */
	WB_TCP_CLOSE = 4, /* the connection ended (reason = FIN, RST or SYN of the next one) */
};

enum wb_tcp_hole_reason {
	WB_TCP_HOLE_TIMEOUT = 1, /* older than the hole timeout */
	WB_TCP_HOLE_FULL = 2,    /* the out-of-order buffer could not hold what came after it */
	WB_TCP_HOLE_RESET = 3,   /* the connection ended (RST, SYN) with the hole open */
};

struct wb_tcp_delivery {
	uint8_t what;       /* enum wb_tcp_what */
	uint8_t reason;     /* HOLE: enum wb_tcp_hole_reason; CLOSE: WB_TCP_FIN, WB_TCP_RST or WB_TCP_SYN */
	const uint8_t *data; /* DATA only */
	uint32_t len;       /* DATA, HOLE: bytes */
	uint64_t offset;    /* stream offset of the first byte (0 = first byte after the SYN) */
	uint64_t ts_recv;   /* receive time of the segment (or expiry time) that caused it */
};

/* Called in stream order. Must not call back into the flow. */
typedef void (*wb_tcp_deliver_fn)(void *arg, const struct wb_tcp_delivery *d);

struct wb_tcp_counters {
	uint64_t segments;             /* segments given to the flow */
	uint64_t bytes_delivered;      /* payload bytes delivered in order */
	uint64_t retrans_bytes_trimmed;  /* bytes already delivered, seen again */
	uint64_t overlap_bytes_trimmed;  /* bytes already held out of order, seen again */
	uint64_t ooo_segments_held;    /* segments (or parts) put in the out-of-order buffer */
	uint64_t ooo_full;             /* times the buffer could not take a segment: a hole declared */
	uint64_t holes_opened;         /* holes seen (data past the next expected byte) */
	uint64_t holes_filled;         /* holes closed by a (re)transmission */
	uint64_t holes_declared;       /* holes given up on: WB_TCP_HOLE delivered */
	uint64_t hole_bytes_declared;  /* bytes in declared holes */
	uint64_t syn_resets;           /* SYNs that started a connection */
	uint64_t rst_resets;           /* RSTs that ended one */
	uint64_t fin_resets;           /* FINs reached in order: clean ends */
	uint64_t unsynced_segments;    /* segments with no connection (no SYN seen): ignored */
	uint64_t bad_segments;         /* SYN+RST/FIN, data past a FIN, seq outside any window */
};

struct wb_tcp_flow;

/* Preallocates the flow: an out-of-order window of ooo_bytes_cap bytes (>= 1) and room for
 * ooo_segments_cap held pieces (>= 1). The hole timeout starts at 1 s. 0 or -EINVAL/-ENOMEM. */
int wb_tcp_flow_init(struct wb_tcp_flow **flow, uint32_t ooo_bytes_cap, uint32_t ooo_segments_cap);
void wb_tcp_flow_fini(struct wb_tcp_flow *flow);

/* A hole older than this (receive time of later segments, or expire's now) is declared. */
void wb_tcp_flow_set_hole_timeout(struct wb_tcp_flow *flow, uint64_t timeout_ns);

/* Hot path: applies one segment of this flow; calls cb for what it makes deliverable.
 * Never blocks or allocates. */
void wb_tcp_flow_input(struct wb_tcp_flow *flow, const struct wb_tcp_seg *seg, wb_tcp_deliver_fn cb, void *arg);

/* Declares the holes that are older than the timeout at now_ns (and delivers the data held
 * after them). Returns the number of holes declared. */
uint32_t wb_tcp_flow_expire(struct wb_tcp_flow *flow, uint64_t now_ns, wb_tcp_deliver_fn cb, void *arg);

/* Ends the connection as if reset: open holes are declared, held data delivered, then
 * CLOSE (reason WB_TCP_RST). For a feed being stopped or reconfigured. */
void wb_tcp_flow_reset(struct wb_tcp_flow *flow, uint64_t now_ns, wb_tcp_deliver_fn cb, void *arg);

/* 1 while a connection is open (SYN seen, no FIN/RST reached yet). */
int wb_tcp_flow_connected(const struct wb_tcp_flow *flow);
/* Next stream offset expected, and bytes held out of order. */
uint64_t wb_tcp_flow_next_offset(const struct wb_tcp_flow *flow);
uint32_t wb_tcp_flow_held_bytes(const struct wb_tcp_flow *flow);

/* Copies the counters; the worker writes them, any thread may read (relaxed). */
void wb_tcp_flow_counters(const struct wb_tcp_flow *flow, struct wb_tcp_counters *out);

#endif
