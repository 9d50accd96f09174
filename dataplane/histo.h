/* Log-bucketed latency histogram (HdrHistogram style: power-of-two ranges split into 16
 * linear sub-buckets, ~6% resolution). One writer; readers merge snapshots. */
#ifndef WB_HISTO_H
#define WB_HISTO_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define WB_HISTO_SUB_BITS 4
#define WB_HISTO_SUB (1u << WB_HISTO_SUB_BITS)
#define WB_HISTO_BUCKETS (64 * WB_HISTO_SUB)

struct wb_histo {
	_Atomic uint64_t count[WB_HISTO_BUCKETS];
	_Atomic uint64_t max;
	_Atomic uint64_t total;
};

static inline uint32_t wb_histo_index(uint64_t v)
{
	if (v < WB_HISTO_SUB)
		return (uint32_t)v;
	uint32_t msb = 63u - (uint32_t)__builtin_clzll(v);
	uint32_t shift = msb - WB_HISTO_SUB_BITS;
	uint32_t sub = (uint32_t)(v >> shift) & (WB_HISTO_SUB - 1);
	return (msb - WB_HISTO_SUB_BITS + 1) * WB_HISTO_SUB + sub;
}

/* Lowest value that lands in bucket i (the value reported for percentiles). */
static inline uint64_t wb_histo_value(uint32_t i)
{
	if (i < WB_HISTO_SUB)
		return i;
	uint32_t msb = i / WB_HISTO_SUB + WB_HISTO_SUB_BITS - 1;
	uint64_t sub = i % WB_HISTO_SUB;
	return (1ULL << msb) | (sub << (msb - WB_HISTO_SUB_BITS));
}

/* Writer only: plain relaxed read-modify-write, no lock prefix needed from one thread. */
static inline void wb_histo_record(struct wb_histo *h, uint64_t v)
{
	_Atomic uint64_t *c = &h->count[wb_histo_index(v)];
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1, memory_order_relaxed);
	atomic_store_explicit(&h->total, atomic_load_explicit(&h->total, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	if (v > atomic_load_explicit(&h->max, memory_order_relaxed))
		atomic_store_explicit(&h->max, v, memory_order_relaxed);
}

/* A plain copy for merging and percentiles. */
struct wb_histo_snap {
	uint64_t count[WB_HISTO_BUCKETS];
	uint64_t max, total;
};

static inline void wb_histo_merge(struct wb_histo_snap *s, const struct wb_histo *h)
{
	for (uint32_t i = 0; i < WB_HISTO_BUCKETS; i++) {
		uint64_t c = atomic_load_explicit(&h->count[i], memory_order_relaxed);
		s->count[i] += c;
		s->total += c;
	}
	uint64_t m = atomic_load_explicit(&h->max, memory_order_relaxed);
	if (m > s->max)
		s->max = m;
}

/* Value at quantile q (0..1); 0 when empty. */
static inline uint64_t wb_histo_quantile(const struct wb_histo_snap *s, double q)
{
	if (!s->total)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)s->total);
	if (rank >= s->total)
		rank = s->total - 1;
	uint64_t seen = 0;
	for (uint32_t i = 0; i < WB_HISTO_BUCKETS; i++) {
		seen += s->count[i];
		if (seen > rank) {
			uint64_t v = wb_histo_value(i);
			return v > s->max ? s->max : v;
		}
	}
	return s->max;
}

#endif
