/* TCP reassembly of one direction (docs/tcp-feeds.md). Stream offsets are 64-bit and
 * counted from the byte after the ISN; a sequence number maps to an offset by its serial
 * distance (RFC 1982) from the next expected byte, so 2^32 wrap-around needs no case.
 * Held bytes live at window[offset % cap]: the window covers [nxt, nxt + cap), so held
 * pieces never alias and merging them moves no bytes. */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tcp_reasm.h"

#define MAX_AHEAD (1ULL << 30) /* TCP's largest receive window: anything further is not this stream */
#define DEFAULT_HOLE_TIMEOUT_NS 1000000000ULL

struct held_piece {
	uint64_t start, end; /* stream offsets, end exclusive */
	uint64_t ts_first;   /* earliest arrival of any of its bytes: how old the hole before it is */
};

struct flow_counters {
	_Atomic uint64_t segments, bytes_delivered, retrans_bytes_trimmed, overlap_bytes_trimmed;
	_Atomic uint64_t ooo_segments_held, ooo_full, holes_opened, holes_filled, holes_declared;
	_Atomic uint64_t hole_bytes_declared, syn_resets, rst_resets, fin_resets, unsynced_segments;
	_Atomic uint64_t bad_segments;
};

struct wb_tcp_flow {
	uint8_t *window;
	uint32_t cap;
	struct held_piece *held; /* sorted by start, disjoint, not adjacent */
	uint32_t nheld, held_cap;
	uint64_t timeout_ns;
	bool connected;
	bool fin_pending;
	uint32_t isn;
	uint64_t nxt;        /* next stream offset to deliver */
	uint64_t fin_off;    /* offset of the FIN (one past the last data byte) */
	uint64_t fin_ts;
	uint64_t hole_since; /* 0 = no hole open */
	wb_tcp_deliver_fn cb;
	void *arg;
	struct flow_counters c;
};

#define INC(x) atomic_fetch_add_explicit(&(x), 1, memory_order_relaxed)
#define ADD(x, n) atomic_fetch_add_explicit(&(x), (n), memory_order_relaxed)
#define GET(x) atomic_load_explicit(&(x), memory_order_relaxed)

int wb_tcp_flow_init(struct wb_tcp_flow **flow, uint32_t ooo_bytes_cap, uint32_t ooo_segments_cap)
{
	if (!flow || !ooo_bytes_cap || !ooo_segments_cap)
		return -EINVAL;
	struct wb_tcp_flow *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->window = malloc(ooo_bytes_cap);
	if (!f->window)
		goto out_free_flow;
	f->held = calloc(ooo_segments_cap, sizeof(*f->held));
	if (!f->held)
		goto out_free_window;
	f->cap = ooo_bytes_cap;
	f->held_cap = ooo_segments_cap;
	f->timeout_ns = DEFAULT_HOLE_TIMEOUT_NS;
	*flow = f;
	return 0;
out_free_window:
	free(f->window);
out_free_flow:
	free(f);
	return -ENOMEM;
}

void wb_tcp_flow_fini(struct wb_tcp_flow *f)
{
	if (!f)
		return;
	free(f->held);
	free(f->window);
	free(f);
}

void wb_tcp_flow_set_hole_timeout(struct wb_tcp_flow *f, uint64_t timeout_ns)
{
	f->timeout_ns = timeout_ns;
}

int wb_tcp_flow_connected(const struct wb_tcp_flow *f)
{
	return f->connected;
}

uint64_t wb_tcp_flow_next_offset(const struct wb_tcp_flow *f)
{
	return f->nxt;
}

uint32_t wb_tcp_flow_held_bytes(const struct wb_tcp_flow *f)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < f->nheld; i++)
		n += f->held[i].end - f->held[i].start;
	return (uint32_t)n;
}

void wb_tcp_flow_counters(const struct wb_tcp_flow *f, struct wb_tcp_counters *out)
{
	struct wb_tcp_flow *m = (struct wb_tcp_flow *)f; /* relaxed loads of _Atomic need non-const */
	*out = (struct wb_tcp_counters){
		.segments = GET(m->c.segments),
		.bytes_delivered = GET(m->c.bytes_delivered),
		.retrans_bytes_trimmed = GET(m->c.retrans_bytes_trimmed),
		.overlap_bytes_trimmed = GET(m->c.overlap_bytes_trimmed),
		.ooo_segments_held = GET(m->c.ooo_segments_held),
		.ooo_full = GET(m->c.ooo_full),
		.holes_opened = GET(m->c.holes_opened),
		.holes_filled = GET(m->c.holes_filled),
		.holes_declared = GET(m->c.holes_declared),
		.hole_bytes_declared = GET(m->c.hole_bytes_declared),
		.syn_resets = GET(m->c.syn_resets),
		.rst_resets = GET(m->c.rst_resets),
		.fin_resets = GET(m->c.fin_resets),
		.unsynced_segments = GET(m->c.unsynced_segments),
		.bad_segments = GET(m->c.bad_segments),
	};
}

static void tell(struct wb_tcp_flow *f, uint8_t what, uint8_t reason, const uint8_t *data, uint32_t len,
		 uint64_t ts)
{
	struct wb_tcp_delivery d = {
		.what = what, .reason = reason, .data = data, .len = len, .offset = f->nxt, .ts_recv = ts,
	};
	f->cb(f->arg, &d);
}

static void deliver(struct wb_tcp_flow *f, const uint8_t *data, uint32_t len, uint64_t ts)
{
	tell(f, WB_TCP_DATA, 0, data, len, ts);
	f->nxt += len;
	ADD(f->c.bytes_delivered, len);
}

static void remove_held(struct wb_tcp_flow *f, uint32_t i, uint32_t n)
{
	memmove(&f->held[i], &f->held[i + n], (f->nheld - i - n) * sizeof(f->held[0]));
	f->nheld -= n;
}

/* Delivers held pieces the stream has reached; returns how many. */
static uint32_t deliver_held(struct wb_tcp_flow *f, uint64_t ts)
{
	uint32_t n = 0;
	while (f->nheld && f->held[0].start == f->nxt) {
		uint64_t len = f->held[0].end - f->nxt;
		uint32_t idx = (uint32_t)(f->nxt % f->cap);
		uint32_t first = len < (uint64_t)(f->cap - idx) ? (uint32_t)len : f->cap - idx;
		deliver(f, f->window + idx, first, ts);
		if (len > first)
			deliver(f, f->window, (uint32_t)(len - first), ts);
		remove_held(f, 0, 1);
		n++;
	}
	return n;
}

/* Bytes delivered in order may cover held pieces: trim them (the copies are the same). */
static void trim_held(struct wb_tcp_flow *f)
{
	while (f->nheld && f->held[0].start < f->nxt) {
		struct held_piece *h = &f->held[0];
		if (h->end <= f->nxt) {
			ADD(f->c.overlap_bytes_trimmed, h->end - h->start);
			remove_held(f, 0, 1);
			INC(f->c.holes_filled);
		} else {
			ADD(f->c.overlap_bytes_trimmed, f->nxt - h->start);
			h->start = f->nxt;
		}
	}
}

static void restart_hole_clock(struct wb_tcp_flow *f)
{
	uint64_t since = 0;
	for (uint32_t i = 0; i < f->nheld; i++)
		if (!since || f->held[i].ts_first < since)
			since = f->held[i].ts_first;
	if (!since && f->fin_pending && f->fin_off > f->nxt)
		since = f->fin_ts;
	f->hole_since = since;
}

static void end_connection(struct wb_tcp_flow *f, uint8_t reason, uint64_t ts)
{
	tell(f, WB_TCP_CLOSE, reason, NULL, 0, ts);
	f->connected = false;
	f->fin_pending = false;
	f->nheld = 0;
	f->hole_since = 0;
}

static void check_fin(struct wb_tcp_flow *f, uint64_t ts)
{
	if (f->connected && f->fin_pending && f->nxt >= f->fin_off) {
		INC(f->c.fin_resets);
		end_connection(f, WB_TCP_FIN, ts);
	}
}

/* Gives up on the first hole: tells its size, moves past it, delivers what was held
 * after it. Returns 0 when there was no hole. */
static int declare_first_hole(struct wb_tcp_flow *f, uint8_t reason, uint64_t ts)
{
	uint64_t hole_end;
	if (f->nheld)
		hole_end = f->held[0].start;
	else if (f->fin_pending && f->fin_off > f->nxt)
		hole_end = f->fin_off;
	else
		return 0;
	uint32_t len = (uint32_t)(hole_end - f->nxt);
	tell(f, WB_TCP_HOLE, reason, NULL, len, ts);
	f->nxt = hole_end;
	INC(f->c.holes_declared);
	ADD(f->c.hole_bytes_declared, len);
	deliver_held(f, ts);
	restart_hole_clock(f);
	check_fin(f, ts);
	return 1;
}

static void write_window(struct wb_tcp_flow *f, uint64_t off, const uint8_t *src, uint64_t n)
{
	uint32_t idx = (uint32_t)(off % f->cap);
	uint64_t first = n < (uint64_t)(f->cap - idx) ? n : f->cap - idx;
	memcpy(f->window + idx, src, first);
	if (n > first)
		memcpy(f->window, src + first, n - first);
}

/* Holds [s, e) (s > nxt) in the window, merging with the pieces it touches. Returns false
 * when it does not fit: the caller declares the first hole and tries again. */
static bool hold(struct wb_tcp_flow *f, uint64_t s, uint64_t e, const uint8_t *p, uint64_t ts)
{
	if (e - f->nxt > f->cap)
		return false;
	/* pieces i..j-1 overlap or touch [s, e) */
	uint32_t i = 0;
	while (i < f->nheld && f->held[i].end < s)
		i++;
	uint32_t j = i;
	while (j < f->nheld && f->held[j].start <= e)
		j++;
	uint32_t k = j - i;
	if (k == 0 && f->nheld == f->held_cap)
		return false;
	/* copy only the bytes no piece holds yet: first copy wins, as in the kernel */
	uint64_t at = s;
	for (uint32_t x = i; x < j && at < e; x++) {
		struct held_piece *h = &f->held[x];
		if (h->start > at)
			write_window(f, at, p + (at - s), (h->start < e ? h->start : e) - at);
		uint64_t lo = h->start > s ? h->start : s;
		uint64_t hi = h->end < e ? h->end : e;
		if (hi > lo)
			ADD(f->c.overlap_bytes_trimmed, hi - lo);
		if (h->end > at)
			at = h->end;
	}
	if (at < e)
		write_window(f, at, p + (at - s), e - at);
	INC(f->c.ooo_segments_held);
	if (k == 0) {
		memmove(&f->held[i + 1], &f->held[i], (f->nheld - i) * sizeof(f->held[0]));
		f->held[i] = (struct held_piece){ .start = s, .end = e, .ts_first = ts ? ts : 1 };
		f->nheld++;
		INC(f->c.holes_opened);
	} else {
		struct held_piece m = f->held[i];
		if (s < m.start)
			m.start = s;
		if (f->held[j - 1].end > e)
			m.end = f->held[j - 1].end;
		else
			m.end = e;
		for (uint32_t x = i + 1; x < j; x++)
			if (f->held[x].ts_first < m.ts_first)
				m.ts_first = f->held[x].ts_first;
		f->held[i] = m;
		remove_held(f, i + 1, k - 1);
		ADD(f->c.holes_filled, k - 1);
	}
	if (!f->hole_since)
		f->hole_since = ts ? ts : 1;
	return true;
}

/* Data of a segment at sequence seq: trims what was delivered, delivers what is next,
 * holds what is ahead. */
static void place(struct wb_tcp_flow *f, uint32_t seq, const uint8_t *p, uint32_t len, uint64_t ts)
{
	uint32_t nxt_seq = f->isn + 1 + (uint32_t)f->nxt;
	int64_t s = (int64_t)f->nxt + (int32_t)(seq - nxt_seq);
	int64_t e = s + len;
	if (e <= (int64_t)f->nxt) {
		ADD(f->c.retrans_bytes_trimmed, len);
		return;
	}
	if (s < (int64_t)f->nxt) {
		uint64_t cut = f->nxt - (uint64_t)s;
		ADD(f->c.retrans_bytes_trimmed, cut);
		p += cut;
		s = (int64_t)f->nxt;
	}
	if ((uint64_t)s - f->nxt > MAX_AHEAD) {
		INC(f->c.bad_segments);
		return;
	}
	if (f->fin_pending && (uint64_t)e > f->fin_off) {
		/* bytes after the FIN cannot be part of this connection */
		INC(f->c.bad_segments);
		if ((uint64_t)s >= f->fin_off)
			return;
		e = (int64_t)f->fin_off;
	}
	for (;;) {
		if ((uint64_t)s == f->nxt) {
			deliver(f, p, (uint32_t)(e - s), ts);
			trim_held(f);
			ADD(f->c.holes_filled, deliver_held(f, ts));
			return;
		}
		if (hold(f, (uint64_t)s, (uint64_t)e, p, ts))
			return;
		INC(f->c.ooo_full);
		if (f->nheld) {
			declare_first_hole(f, WB_TCP_HOLE_FULL, ts);
		} else {
			/* nothing held: the segment alone is beyond the window; the bytes before it are lost */
			uint32_t lost = (uint32_t)((uint64_t)s - f->nxt);
			tell(f, WB_TCP_HOLE, WB_TCP_HOLE_FULL, NULL, lost, ts);
			f->nxt = (uint64_t)s;
			INC(f->c.holes_declared);
			ADD(f->c.hole_bytes_declared, lost);
		}
		if (!f->connected)
			return;
		if ((int64_t)f->nxt >= e)
			return;
		if (s < (int64_t)f->nxt) {
			/* the declared hole's held data ran into this segment */
			uint64_t cut = f->nxt - (uint64_t)s;
			ADD(f->c.overlap_bytes_trimmed, cut);
			p += cut;
			s = (int64_t)f->nxt;
		}
	}
}

static uint32_t expire_at(struct wb_tcp_flow *f, uint64_t now)
{
	uint32_t n = 0;
	while (f->connected && f->hole_since && now > f->hole_since && now - f->hole_since > f->timeout_ns) {
		if (!declare_first_hole(f, WB_TCP_HOLE_TIMEOUT, now)) {
			f->hole_since = 0;
			break;
		}
		n++;
	}
	return n;
}

/* Declares every open hole, delivering what was held between them, then CLOSE. */
static void abort_connection(struct wb_tcp_flow *f, uint8_t reason, uint64_t ts)
{
	while (declare_first_hole(f, WB_TCP_HOLE_RESET, ts) && f->connected)
		;
	if (f->connected)
		end_connection(f, reason, ts);
}

static void open_connection(struct wb_tcp_flow *f, uint32_t isn, uint64_t ts)
{
	f->connected = true;
	f->isn = isn;
	f->nxt = 0;
	f->nheld = 0;
	f->fin_pending = false;
	f->hole_since = 0;
	INC(f->c.syn_resets);
	tell(f, WB_TCP_OPEN, WB_TCP_SYN, NULL, 0, ts);
}

void wb_tcp_flow_input(struct wb_tcp_flow *f, const struct wb_tcp_seg *seg, wb_tcp_deliver_fn cb, void *arg)
{
	f->cb = cb;
	f->arg = arg;
	INC(f->c.segments);
	uint8_t fl = seg->flags;
	uint64_t ts = seg->ts_recv;
	if ((fl & WB_TCP_SYN) && (fl & (WB_TCP_RST | WB_TCP_FIN))) {
		INC(f->c.bad_segments);
		return;
	}
	if (fl & WB_TCP_SYN) {
		if (f->connected && seg->seq == f->isn) {
			/* the SYN-ACK again: its data, if any, is trimmed like any retransmission */
			if (seg->len)
				place(f, seg->seq + 1, seg->payload, seg->len, ts);
			goto out_expire;
		}
		if (f->connected)
			abort_connection(f, WB_TCP_SYN, ts);
		open_connection(f, seg->seq, ts);
		if (seg->len)
			place(f, seg->seq + 1, seg->payload, seg->len, ts);
		goto out_expire;
	}
	if (!f->connected) {
		INC(f->c.unsynced_segments);
		return;
	}
	if (fl & WB_TCP_RST) {
		INC(f->c.rst_resets);
		abort_connection(f, WB_TCP_RST, ts);
		return;
	}
	if (fl & WB_TCP_FIN) {
		uint32_t nxt_seq = f->isn + 1 + (uint32_t)f->nxt;
		int64_t fo = (int64_t)f->nxt + (int32_t)(seg->seq + seg->len - nxt_seq);
		if (fo < (int64_t)f->nxt && !f->fin_pending) {
			/* a FIN before bytes already delivered contradicts the stream */
			INC(f->c.bad_segments);
		} else if (!f->fin_pending) {
			if (seg->len)
				place(f, seg->seq, seg->payload, seg->len, ts);
			f->fin_pending = true;
			f->fin_off = (uint64_t)fo;
			f->fin_ts = ts ? ts : 1;
			/* held bytes past the FIN cannot belong to the connection */
			while (f->nheld && f->held[f->nheld - 1].start >= f->fin_off) {
				f->nheld--;
				INC(f->c.bad_segments);
			}
			if (f->nheld && f->held[f->nheld - 1].end > f->fin_off)
				f->held[f->nheld - 1].end = f->fin_off;
			check_fin(f, ts);
			if (f->connected)
				restart_hole_clock(f);
			goto out_expire;
		}
	}
	if (seg->len) {
		place(f, seg->seq, seg->payload, seg->len, ts);
		check_fin(f, ts);
		if (f->connected && f->hole_since)
			restart_hole_clock(f);
	}
out_expire:
	expire_at(f, ts);
}

uint32_t wb_tcp_flow_expire(struct wb_tcp_flow *f, uint64_t now_ns, wb_tcp_deliver_fn cb, void *arg)
{
	f->cb = cb;
	f->arg = arg;
	return expire_at(f, now_ns);
}

void wb_tcp_flow_reset(struct wb_tcp_flow *f, uint64_t now_ns, wb_tcp_deliver_fn cb, void *arg)
{
	f->cb = cb;
	f->arg = arg;
	if (f->connected)
		abort_connection(f, WB_TCP_RST, now_ns);
}
