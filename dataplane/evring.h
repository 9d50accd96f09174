/* Single-producer/single-consumer ring of event records from a worker to a persistence
 * thread. Indices on separate cache lines, each side caching the other's index
 * (rigtorp SPSCQueue, rte_ring SP/SC), acquire/release ordering, bulk operations.
 * A full ring never blocks the producer: what does not fit is dropped and counted, and
 * the next push that fits is preceded by a WB_EV_DROP marker naming the lost range. (A
 * replay, whose input cannot overflow, waits for room first: dataplane.c, flush_events.) */
#ifndef WB_EVRING_H
#define WB_EVRING_H

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

#define WB_CACHE_LINE 64

struct wb_evring {
	/* producer line */
	_Alignas(WB_CACHE_LINE) _Atomic uint64_t head; /* next slot to write */
	uint64_t head_cache_tail;                      /* producer's view of tail */
	uint64_t drop_events;                          /* events dropped: ring full */
	uint64_t drop_batches;                         /* pushes that dropped anything */
	uint64_t drop_pending;                         /* dropped since the last marker */
	uint64_t drop_first_seq, drop_last_seq;
	uint64_t high_water;                           /* max occupancy seen by the producer */
	uint64_t pushed;                               /* events accepted */
	/* consumer line */
	_Alignas(WB_CACHE_LINE) _Atomic uint64_t tail; /* next slot to read */
	uint64_t tail_cache_head;
	/* constant */
	_Alignas(WB_CACHE_LINE) uint64_t mask;
	uint32_t size;
	uint8_t feed_hint;
	struct wb_event *slots;
};

/* size: a power of two. Slots are allocated on numa_node by the caller-supplied memory
 * (slots may be NULL to let the ring malloc them). */
static inline int wb_evring_init(struct wb_evring *r, uint32_t size, struct wb_event *slots)
{
	if (size < 2 || (size & (size - 1)))
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	r->slots = slots ? slots : aligned_alloc(WB_CACHE_LINE, (size_t)size * sizeof(struct wb_event));
	if (!r->slots)
		return -ENOMEM;
	r->size = size;
	r->mask = size - 1;
	return 0;
}

static inline uint64_t wb_evring_count(const struct wb_evring *r)
{
	return atomic_load_explicit(&r->head, memory_order_acquire) -
	       atomic_load_explicit(&r->tail, memory_order_acquire);
}

/* Producer: slots free for a push now (refreshes its view of the consumer). */
static inline uint64_t wb_evring_room(struct wb_evring *r)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);

	r->head_cache_tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	return r->size - (head - r->head_cache_tail);
}

/* Producer: pushes n events; returns how many were accepted (all or none of a batch is
 * the caller's choice: we accept what fits, marker first). Never blocks. */
static inline uint32_t wb_evring_push(struct wb_evring *r, const struct wb_event *ev, uint32_t n)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint32_t need = n + (r->drop_pending ? 1u : 0u);
	uint64_t free_slots = r->size - (head - r->head_cache_tail);
	if (free_slots < need) {
		r->head_cache_tail = atomic_load_explicit(&r->tail, memory_order_acquire);
		free_slots = r->size - (head - r->head_cache_tail);
	}
	if (free_slots < need) {
		/* The whole batch goes: a partial batch would split a packet's events. */
		if (n) {
			if (!r->drop_pending)
				r->drop_first_seq = ev[0].seq;
			r->drop_last_seq = ev[n - 1].seq;
			r->drop_pending += n;
			r->drop_events += n;
			r->drop_batches++;
		}
		return 0;
	}
	if (r->drop_pending) {
		struct wb_event *m = &r->slots[head & r->mask];
		memset(m, 0, sizeof(*m));
		m->type = WB_EV_DROP;
		m->feed = ev[0].feed;
		m->ts_recv = ev[0].ts_recv;
		m->seq = r->drop_first_seq;
		m->ref = r->drop_last_seq;
		m->aux = r->drop_pending;
		r->drop_pending = 0;
		head++;
	}
	for (uint32_t i = 0; i < n; i++)
		r->slots[(head + i) & r->mask] = ev[i];
	head += n;
	atomic_store_explicit(&r->head, head, memory_order_release);
	r->pushed += n;
	uint64_t occ = head - r->head_cache_tail;
	if (occ > r->high_water)
		r->high_water = occ;
	return n;
}

/* Consumer: up to max events visible now; returns a pointer run (may wrap: call twice). */
static inline uint32_t wb_evring_peek(struct wb_evring *r, const struct wb_event **run, uint32_t max)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	if (r->tail_cache_head == tail)
		r->tail_cache_head = atomic_load_explicit(&r->head, memory_order_acquire);
	uint64_t avail = r->tail_cache_head - tail;
	if (avail == 0)
		return 0;
	uint64_t idx = tail & r->mask;
	uint64_t contig = r->size - idx;
	uint32_t n = (uint32_t)(avail < contig ? avail : contig);
	if (n > max)
		n = max;
	*run = &r->slots[idx];
	return n;
}

static inline void wb_evring_release(struct wb_evring *r, uint32_t n)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	atomic_store_explicit(&r->tail, tail + n, memory_order_release);
}

#endif
