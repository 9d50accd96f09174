/* Single-producer/single-consumer byte ring of raw UDP payloads from a worker to a
 * persistence thread (the optional per-feed raw capture). Same discipline as evring.h:
 * indices on separate cache lines, each side caching the other's index, acquire/release.
 * A record never wraps: when it does not fit before the end, a pad word sends the
 * consumer back to offset 0. A full ring never blocks the producer: the packet is dropped
 * and counted, and the next stored record says how many were lost just before it. */
#ifndef WB_RAWRING_H
#define WB_RAWRING_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef WB_CACHE_LINE
#define WB_CACHE_LINE 64
#endif

#define WB_RAWREC_PAD 0xFFFFFFFFu /* len value: skip to the ring's start */

/* One record; the payload follows, the whole padded to 8 bytes. The same layout is
 * stored in raw capture blocks (docs/capture-format.md). */
struct wb_rawrec {
	uint32_t len;            /* payload bytes */
	uint8_t feed;            /* feed index in the config */
	uint8_t line;            /* 0 = line A, 1 = line B */
	uint16_t dst_port;       /* original UDP destination port, host order */
	uint32_t dst_addr;       /* original IPv4 destination, host order */
	uint32_t dropped_before; /* packets this ring dropped just before this one (saturating) */
	uint64_t ts_recv;        /* receive time, ns since the UNIX epoch */
};

_Static_assert(sizeof(struct wb_rawrec) == 24, "raw record header is 24 bytes");

struct wb_rawring {
	/* producer line */
	_Alignas(WB_CACHE_LINE) _Atomic uint64_t head; /* next byte to write */
	uint64_t head_cache_tail;
	uint64_t drop_packets;  /* packets dropped: ring full */
	uint64_t drop_bytes;    /* their payload bytes */
	uint64_t drop_toolarge; /* packets larger than half the ring, never storable */
	uint64_t drop_pending;  /* dropped since the last stored record */
	uint64_t high_water;    /* max bytes in use seen by the producer */
	uint64_t pushed;        /* packets accepted */
	/* consumer line */
	_Alignas(WB_CACHE_LINE) _Atomic uint64_t tail; /* next byte to read */
	uint64_t tail_cache_head;
	/* constant */
	_Alignas(WB_CACHE_LINE) uint64_t mask;
	uint64_t size;
	uint8_t *buf;
};

static inline uint64_t wb_rawrec_bytes(uint32_t len)
{
	return sizeof(struct wb_rawrec) + (((uint64_t)len + 7) & ~7ull);
}

/* bytes: a power of two, at least 4096. */
static inline int wb_rawring_init(struct wb_rawring *r, uint64_t bytes)
{
	if (bytes < 4096 || (bytes & (bytes - 1)))
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	r->buf = aligned_alloc(WB_CACHE_LINE, bytes);
	if (!r->buf)
		return -ENOMEM;
	r->size = bytes;
	r->mask = bytes - 1;
	return 0;
}

static inline void wb_rawring_free(struct wb_rawring *r)
{
	free(r->buf);
	r->buf = NULL;
}

static inline uint64_t wb_rawring_used(const struct wb_rawring *r)
{
	return atomic_load_explicit(&r->head, memory_order_acquire) -
	       atomic_load_explicit(&r->tail, memory_order_acquire);
}

/* Producer: stores one packet with its full header (len, dropped_before filled here).
 * Never blocks; false when dropped. */
static inline bool wb_rawring_push_rec(struct wb_rawring *r, const struct wb_rawrec *h, const void *payload)
{
	uint64_t need = wb_rawrec_bytes(h->len);
	if (need > r->size / 2) {
		r->drop_toolarge++;
		r->drop_packets++;
		r->drop_bytes += h->len;
		r->drop_pending++;
		return false;
	}
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t to_end = r->size - (head & r->mask);
	uint64_t total = to_end < need ? to_end + need : need;
	if (r->size - (head - r->head_cache_tail) < total) {
		r->head_cache_tail = atomic_load_explicit(&r->tail, memory_order_acquire);
		if (r->size - (head - r->head_cache_tail) < total) {
			r->drop_packets++;
			r->drop_bytes += h->len;
			r->drop_pending++;
			return false;
		}
	}
	if (to_end < need) {
		uint32_t pad = WB_RAWREC_PAD;
		memcpy(r->buf + (head & r->mask), &pad, sizeof(pad));
		head += to_end;
	}
	struct wb_rawrec *rec = (struct wb_rawrec *)(void *)(r->buf + (head & r->mask));
	*rec = *h;
	rec->dropped_before = r->drop_pending > UINT32_MAX ? UINT32_MAX : (uint32_t)r->drop_pending;
	memcpy(rec + 1, payload, h->len);
	head += need;
	atomic_store_explicit(&r->head, head, memory_order_release);
	r->drop_pending = 0;
	r->pushed++;
	uint64_t used = head - r->head_cache_tail;
	if (used > r->high_water)
		r->high_water = used;
	return true;
}

static inline bool wb_rawring_push(struct wb_rawring *r, uint8_t feed, uint8_t line, uint64_t ts_recv,
				   const void *payload, uint32_t len)
{
	struct wb_rawrec h = { .len = len, .feed = feed, .line = line, .ts_recv = ts_recv };
	return wb_rawring_push_rec(r, &h, payload);
}

/* Consumer: the next record, or NULL when empty. Stays valid until released. */
static inline const struct wb_rawrec *wb_rawring_peek(struct wb_rawring *r)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	if (r->tail_cache_head == tail)
		r->tail_cache_head = atomic_load_explicit(&r->head, memory_order_acquire);
	if (r->tail_cache_head == tail)
		return NULL;
	uint32_t len;
	memcpy(&len, r->buf + (tail & r->mask), sizeof(len));
	if (len == WB_RAWREC_PAD) {
		/* the producer skipped the end: the record is at offset 0 */
		tail += r->size - (tail & r->mask);
		atomic_store_explicit(&r->tail, tail, memory_order_release);
		if (r->tail_cache_head == tail)
			r->tail_cache_head = atomic_load_explicit(&r->head, memory_order_acquire);
		if (r->tail_cache_head == tail)
			return NULL;
	}
	return (const struct wb_rawrec *)(const void *)(r->buf + (tail & r->mask));
}

static inline void wb_rawring_release(struct wb_rawring *r, const struct wb_rawrec *rec)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	atomic_store_explicit(&r->tail, tail + wb_rawrec_bytes(rec->len), memory_order_release);
}

#endif
