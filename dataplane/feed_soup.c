/* Nasdaq TotalView-ITCH 5.0 over SoupBinTCP, read off the NIC ring (docs/tcp-feeds.md).
 * The kernel owns the session (login, heartbeats) through the exception path; this
 * reassembles a copy of the server -> client stream, frames SoupBinTCP packets, numbers
 * the Sequenced Data packets from Login Accepted and applies their ITCH messages to the
 * books as feed_itch.c does. A declared TCP hole leaves the stream unframeable: the books
 * go stale until a new connection's replay catches up with the last applied sequence. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "feed.h"
#include "itch.h"
#include "soup.h"
#include "tcp_reasm.h"

#define OOO_BYTES (4u << 20)   /* > any receive window a feed client advertises */
#define OOO_SEGMENTS 1024
#define MIN_HOLE_TIMEOUT_MS 500 /* a hole waits at least one kernel RTO for its retransmission */
#define PENDING_MSGS 64         /* decoded messages held for one burst apply */

struct soup_feed {
	struct wb_bookset *books;
	uint8_t feed;
	struct wb_endpoint server; /* line A: the flow's source */
	struct wb_tcp_flow *flow;
	struct wb_soup_framer *framer;
	bool framing;       /* the connection's stream is frameable from its first byte */
	bool logged_in;     /* Login Accepted seen on this connection */
	bool stale;         /* books stale: a hole, or sequences never seen */
	bool replay;        /* segments carry recorded times: the idle clock is not theirs */
	bool lost_for_good; /* a login skipped sequences the books never saw: stale stays */
	char session[WB_SOUP_SESSION_LEN];
	bool have_session;
	uint64_t next_seq;  /* sequence of the next Sequenced Data packet on this connection */
	uint64_t expected;  /* next sequence to apply to the books */
	/* the call in progress, for the callbacks */
	struct wb_event_batch *out;
	uint64_t ts;
	/* Decoded messages not yet applied: a segment's messages go to the books in bursts,
	 * which start each message's loads ahead of its apply. Applied before anything else
	 * touches the books or the event batch, and at the end of every call. */
	struct wb_itch_msg pending[PENDING_MSGS];
	uint64_t pending_seq[PENDING_MSGS];
	uint32_t npending;
	_Atomic uint64_t segments, client_segments, foreign_segments, stream_bytes, connections;
	_Atomic uint64_t logins, logins_rejected, session_changes, sequenced, messages, duplicate_messages;
	_Atomic uint64_t heartbeats, end_of_session, debug_packets, unexpected_packets, unnumbered_packets;
	_Atomic uint64_t unframed_bytes, partial_bytes_at_close, holes, hole_bytes, gaps_declared, gap_messages_lost;
	_Atomic uint64_t stale_cleared, itch_short, itch_unknown, itch_empty, datagrams_ignored, expected_seq, stale_now;
};

#define INC(x) atomic_fetch_add_explicit(&(x), 1, memory_order_relaxed)
#define ADD(x, n) atomic_fetch_add_explicit(&(x), (n), memory_order_relaxed)
#define GET(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define PUT(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)

static void soup_destroy(void *st)
{
	struct soup_feed *f = st;
	if (!f)
		return;
	wb_tcp_flow_fini(f->flow);
	free(f->framer);
	wb_bookset_destroy(f->books);
	free(f);
}

static int soup_create(const struct wb_feed_conf *fc, uint8_t feed_index, int numa_node, void **state)
{
	int ret;
	struct soup_feed *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	struct wb_book_opts bo;
	wb_feed_book_opts(fc, feed_index, numa_node, &bo);
	ret = wb_bookset_create(&bo, &f->books);
	if (ret < 0)
		goto out_destroy;
	ret = wb_tcp_flow_init(&f->flow, OOO_BYTES, OOO_SEGMENTS);
	if (ret < 0)
		goto out_destroy;
	uint32_t ms = fc->gap_timeout_ms > MIN_HOLE_TIMEOUT_MS ? fc->gap_timeout_ms : MIN_HOLE_TIMEOUT_MS;
	wb_tcp_flow_set_hole_timeout(f->flow, (uint64_t)ms * 1000000ULL);
	ret = -ENOMEM;
	f->framer = malloc(sizeof(*f->framer));
	if (!f->framer)
		goto out_destroy;
	wb_soup_framer_init(f->framer);
	f->feed = feed_index;
	f->server = fc->line[0];
	f->expected = 1;
	PUT(f->expected_seq, 1);
	*state = f;
	return 0;
out_destroy:
	soup_destroy(f);
	return ret;
}

/* Applies the pending messages, in sequence, with the receive time of the call. */
static void flush_pending(struct soup_feed *f)
{
	if (f->npending == 0)
		return;
	wb_batch_reserve(f->out, f->npending * WB_BOOK_MAX_EVENTS_PER_MSG);
	wb_bookset_apply_itch_burst(f->books, f->pending, f->pending_seq, f->npending, f->ts, 0, f->out);
	f->npending = 0;
}

static void emit_gap(struct soup_feed *f, uint64_t first, uint64_t count, uint64_t detail)
{
	flush_pending(f);
	wb_batch_reserve(f->out, 2);
	struct wb_event *e = wb_batch_push(f->out);
	if (!e)
		return;
	memset(e, 0, sizeof(*e));
	e->type = WB_EV_GAP;
	e->seq = first;
	e->aux = count;
	e->ref = detail;
	e->ts_recv = f->ts;
	e->feed = f->feed;
	e->flags = WB_EVF_BATCH_END;
	struct wb_event *i = wb_batch_push(f->out);
	if (!i)
		return;
	*i = *e;
	i->type = WB_EV_INTEGRITY;
	i->side = WB_INT_GAP_DECLARED;
	i->aux = detail ? detail : count;
}

static void set_stale(struct soup_feed *f, bool stale)
{
	if (f->stale == stale)
		return;
	flush_pending(f); /* messages before the change carry the books' state before it */
	f->stale = stale;
	wb_bookset_set_stale(f->books, stale);
	PUT(f->stale_now, stale);
}

static void apply_message(struct soup_feed *f, const uint8_t *msg, uint16_t len, uint64_t seq)
{
	int d = wb_itch_decode(msg, len, &f->pending[f->npending]);
	if (d == WB_ITCH_OK) {
		f->pending_seq[f->npending] = seq;
		if (++f->npending == PENDING_MSGS)
			flush_pending(f);
	} else if (d == WB_ITCH_ERR_SHORT) {
		INC(f->itch_short);
	} else if (d == WB_ITCH_ERR_UNKNOWN) {
		INC(f->itch_unknown);
	} else {
		INC(f->itch_empty);
	}
	INC(f->messages);
}

/* The connection's replay has reached the first sequence the books have not applied:
 * nothing was lost, the books are whole again. */
static void caught_up(struct soup_feed *f)
{
	if (!f->stale || f->lost_for_good)
		return;
	set_stale(f, false);
	INC(f->stale_cleared);
}

/* Login Accepted: the next Sequenced Data packet carries seq. Behind the books: the
 * replay's first part is skipped; ahead: the sequences between were never seen. */
static void on_login(struct soup_feed *f, const struct wb_soup_packet *p)
{
	char session[WB_SOUP_SESSION_LEN];
	uint64_t seq;
	if (wb_soup_parse_accepted(p, session, &seq) < 0) {
		INC(f->unexpected_packets);
		return;
	}
	INC(f->logins);
	if (f->have_session && memcmp(session, f->session, WB_SOUP_SESSION_LEN) != 0)
		INC(f->session_changes);
	memcpy(f->session, session, WB_SOUP_SESSION_LEN);
	f->have_session = true;
	f->logged_in = true;
	/* "0" asks for the most recent message: the server numbers from its own position */
	f->next_seq = seq ? seq : f->expected;
	if (f->next_seq > f->expected) {
		uint64_t lost = f->next_seq - f->expected;
		INC(f->gaps_declared);
		ADD(f->gap_messages_lost, lost);
		set_stale(f, true);
		f->lost_for_good = true;
		emit_gap(f, f->expected, lost, 0);
		f->expected = f->next_seq;
		PUT(f->expected_seq, f->expected);
	} else if (f->next_seq == f->expected) {
		caught_up(f);
	}
}

static void on_sequenced(struct soup_feed *f, const struct wb_soup_packet *p)
{
	INC(f->sequenced);
	if (!f->logged_in) {
		/* numbered from a Login Accepted we never saw: cannot be placed */
		INC(f->unnumbered_packets);
		if (!f->stale) {
			set_stale(f, true);
			INC(f->gaps_declared);
			emit_gap(f, f->expected, 0, 1);
		}
		return;
	}
	uint64_t seq = f->next_seq++;
	if (seq < f->expected) {
		INC(f->duplicate_messages);
		return;
	}
	if (seq == f->expected)
		caught_up(f);
	apply_message(f, p->payload, p->len, seq);
	f->expected = seq + 1;
	PUT(f->expected_seq, f->expected);
}

static int on_packet(void *arg, const struct wb_soup_packet *p)
{
	struct soup_feed *f = arg;
	switch (p->type) {
	case WB_SOUP_SEQUENCED:
		on_sequenced(f, p);
		break;
	case WB_SOUP_LOGIN_ACCEPTED:
		on_login(f, p);
		break;
	case WB_SOUP_SERVER_HEARTBEAT:
		INC(f->heartbeats);
		break;
	case WB_SOUP_END_OF_SESSION:
		INC(f->end_of_session);
		break;
	case WB_SOUP_DEBUG:
		INC(f->debug_packets);
		break;
	case WB_SOUP_LOGIN_REJECTED:
		INC(f->logins_rejected);
		break;
	default:
		INC(f->unexpected_packets);
		break;
	}
	return 0;
}

static void on_stream(void *arg, const struct wb_tcp_delivery *d)
{
	struct soup_feed *f = arg;
	switch (d->what) {
	case WB_TCP_OPEN:
		INC(f->connections);
		wb_soup_framer_init(f->framer);
		f->framing = true;
		f->logged_in = false;
		break;
	case WB_TCP_DATA:
		ADD(f->stream_bytes, d->len);
		if (f->framing)
			wb_soup_feed(f->framer, d->data, d->len, on_packet, f);
		else
			ADD(f->unframed_bytes, d->len);
		break;
	case WB_TCP_HOLE:
		/* packet boundaries after the hole are unknown: nothing more on this connection */
		INC(f->holes);
		ADD(f->hole_bytes, d->len);
		f->framing = false;
		set_stale(f, true);
		INC(f->gaps_declared);
		emit_gap(f, f->expected, 0, d->len);
		break;
	case WB_TCP_CLOSE:
		if (f->framing)
			ADD(f->partial_bytes_at_close, f->framer->have);
		f->framing = false;
		f->logged_in = false;
		break;
	}
}

static void soup_on_tcp_segment(void *st, const struct wb_tcp_seg *seg, const struct wb_rx_meta *meta,
				struct wb_event_batch *out)
{
	struct soup_feed *f = st;
	if (seg->src_addr != f->server.addr || seg->src_port != f->server.port) {
		if (seg->dst_addr == f->server.addr && seg->dst_port == f->server.port)
			INC(f->client_segments); /* the client's own segments: the kernel's business */
		else
			INC(f->foreign_segments);
		return;
	}
	INC(f->segments);
	f->replay = meta && (meta->flags & WB_RX_F_REPLAY);
	f->out = out;
	f->ts = seg->ts_recv;
	wb_tcp_flow_input(f->flow, seg, on_stream, f);
	flush_pending(f);
}

static void soup_on_datagram(void *st, const uint8_t *p, uint32_t len, const struct wb_rx_meta *meta,
			     struct wb_event_batch *out)
{
	(void)p;
	(void)len;
	(void)meta;
	(void)out;
	INC(((struct soup_feed *)st)->datagrams_ignored);
}

static void soup_on_idle(void *st, uint64_t now_ns, struct wb_event_batch *out)
{
	struct soup_feed *f = st;
	wb_bookset_service(f->books);
	/* in a replay the wall clock is not the segments' clock: their own times expire holes */
	if (f->replay)
		return;
	f->out = out;
	f->ts = now_ns;
	wb_tcp_flow_expire(f->flow, now_ns, on_stream, f);
	flush_pending(f);
}

static struct wb_bookset *soup_books(void *st)
{
	return ((struct soup_feed *)st)->books;
}

static size_t soup_counters(void *st, struct wb_counter *out, size_t max)
{
	struct soup_feed *f = st;
	struct wb_tcp_counters t;
	wb_tcp_flow_counters(f->flow, &t);
	size_t n = 0;
#define C(nm, hp, v) wb_counter_put(out, max, &n, nm, hp, v, -1)
	C("server_segments_total", "TCP segments from the server endpoint (line A)", GET(f->segments));
	C("client_segments_total", "TCP segments from the client to the server: ignored", GET(f->client_segments));
	C("foreign_segments_total", "TCP segments of neither direction of the session", GET(f->foreign_segments));
	C("udp_datagrams_ignored_total", "UDP datagrams classified to this TCP feed", GET(f->datagrams_ignored));
	C("stream_bytes_total", "server stream bytes reassembled in order", GET(f->stream_bytes));
	C("connections_total", "TCP connections seen opening (SYN)", GET(f->connections));
	C("tcp_retrans_bytes_trimmed_total", "bytes seen again after delivery", t.retrans_bytes_trimmed);
	C("tcp_overlap_bytes_trimmed_total", "bytes seen again while held out of order", t.overlap_bytes_trimmed);
	C("tcp_ooo_segments_held_total", "segments held out of order", t.ooo_segments_held);
	C("tcp_ooo_full_total", "times the out-of-order buffer was full", t.ooo_full);
	C("tcp_holes_opened_total", "holes opened in the stream", t.holes_opened);
	C("tcp_holes_filled_total", "holes filled by a retransmission or late segment", t.holes_filled);
	C("tcp_holes_declared_total", "holes given up on: books stale", GET(f->holes));
	C("tcp_hole_bytes_total", "stream bytes in declared holes", GET(f->hole_bytes));
	C("tcp_fin_total", "connections ended by FIN", t.fin_resets);
	C("tcp_rst_total", "connections ended by RST", t.rst_resets);
	C("tcp_unsynced_segments_total", "segments outside a connection (no SYN seen)", t.unsynced_segments);
	C("tcp_bad_segments_total", "segments contradicting the stream", t.bad_segments);
	C("unframed_bytes_total", "stream bytes after a hole, not frameable until the next connection",
	  GET(f->unframed_bytes));
	C("partial_packet_bytes_at_close_total", "bytes of an unfinished SoupBinTCP packet when a connection ended",
	  GET(f->partial_bytes_at_close));
	C("logins_accepted_total", "SoupBinTCP Login Accepted", GET(f->logins));
	C("logins_rejected_total", "SoupBinTCP Login Rejected", GET(f->logins_rejected));
	C("session_changes_total", "Login Accepted naming another session", GET(f->session_changes));
	C("sequenced_packets_total", "SoupBinTCP Sequenced Data packets", GET(f->sequenced));
	C("unnumbered_packets_total", "Sequenced Data before any Login Accepted on the connection",
	  GET(f->unnumbered_packets));
	C("messages_total", "ITCH messages applied in sequence", GET(f->messages));
	C("duplicate_messages_total", "replayed messages already applied", GET(f->duplicate_messages));
	C("heartbeats_total", "SoupBinTCP server heartbeats", GET(f->heartbeats));
	C("end_of_session_total", "SoupBinTCP End of Session", GET(f->end_of_session));
	C("debug_packets_total", "SoupBinTCP Debug packets", GET(f->debug_packets));
	C("unexpected_packets_total", "client-side or malformed packet types from the server",
	  GET(f->unexpected_packets));
	C("gaps_declared_total", "gaps declared (holes, sequences skipped by a login): books stale",
	  GET(f->gaps_declared));
	C("gap_messages_lost_total", "messages known lost (a login ahead of the books)", GET(f->gap_messages_lost));
	C("stale_cleared_total", "times a replay caught up and the books were healthy again", GET(f->stale_cleared));
	C("stale", "1 while the books are stale", GET(f->stale_now));
	C("next_sequence", "next SoupBinTCP sequence to apply", GET(f->expected_seq));
	C("itch_short_messages_total", "ITCH messages shorter than their layout", GET(f->itch_short));
	C("itch_unknown_messages_total", "ITCH messages of an unknown type", GET(f->itch_unknown));
	C("itch_empty_messages_total", "Sequenced Data packets with no message", GET(f->itch_empty));
#undef C
	return n;
}

const struct wb_feed_proto wb_feed_soup_itch = {
	.name = "itch50-soupbintcp",
	.description = "Nasdaq TotalView-ITCH 5.0 over SoupBinTCP, reassembled off the NIC ring (kernel keeps the session)",
	.create = soup_create,
	.destroy = soup_destroy,
	.on_datagram = soup_on_datagram,
	.on_tcp_segment = soup_on_tcp_segment,
	.on_idle = soup_on_idle,
	.books = soup_books,
	.counters = soup_counters,
};
