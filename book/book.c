/* Per-symbol order books: one writer applies ITCH messages (or price-level updates), any
 * number of readers copy the top of book: order books live under a per-book seqlock,
 * price-level books from seqlocked snapshots published at batch ends. All storage is sized
 * at create time; the apply path never allocates, blocks, logs or locks. See docs/book.md. */
#include "book.h"

#include <errno.h>
#include <numa.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define NIL 0u /* level 0 of the pool is never used: an order slot with level NIL is empty */
#define SIDE_BID 0
#define SIDE_ASK 1
#define READ_RETRIES 4096
#define ARENA_CLASSES 28
#define ARENA_MIN_CAP 4u
#define HUGE_PAGE (2u << 20)
#define SWEEP_SLOTS 16384u /* slots a service call sweeps: 512 KiB, tens of microseconds */
/* per-message helpers, inlined whatever gcc's size heuristics say: the apply path is a few
 * hundred instructions and every call, spill and reload shows (docs/performance.md) */
#define HOT_INLINE inline __attribute__((always_inline))
/* the exceptional paths: kept out of line so the common ones stay short */
#define COLD __attribute__((noinline, cold))

#define NAME_DIRTY 0x4u /* top_dirty bit: the symbol's name changed since the last publish */

#define REQ_FREEZE 0x1u
#define REQ_RESET 0x2u

/* Single-writer counters that other threads read: relaxed load + store, no lock prefix. */
#define CNT_ADD(a, v) \
	atomic_store_explicit(&(a), atomic_load_explicit(&(a), memory_order_relaxed) + (v), memory_order_relaxed)
#define CNT_SUB(a, v) \
	atomic_store_explicit(&(a), atomic_load_explicit(&(a), memory_order_relaxed) - (v), memory_order_relaxed)
#define CNT_GET(a) atomic_load_explicit(&(a), memory_order_relaxed)

/* A resting order: 16 bytes, four per cache line, never split. Its price, side and symbol
 * are its level's. The queue at a level is arrival order, kept as a stamp rather than
 * links: linking an add behind the level's tail, or unlinking a delete from its
 * neighbours, would touch one or two more random orders per message (DRAM misses, most of
 * the cost of a day). Half the size of a record carrying its reference and symbol: twice
 * the ring's slots for the same memory, and twice the young orders in cache. */
struct order {
	uint32_t level;	  /* pool index of its level; NIL: the slot is empty */
	uint32_t shares;
	uint32_t arrival; /* bookset-wide add count when added, mod 2^32: the queue position */
	uint32_t tag;	  /* in the ring: ref >> ring_bits (the slot is ref's low bits) */
} __attribute__((aligned(16)));

_Static_assert(sizeof(struct order) == 16, "four orders per cache line");

/* A survivor carries its whole reference: its slot is a hash of it. */
struct survivor {
	struct order o;
	uint64_t ref;
	uint64_t pad;
} __attribute__((aligned(32)));

_Static_assert(sizeof(struct survivor) == 32, "two survivors per cache line");

/* A price level: the aggregate its queue of orders adds up to. Records stay where they
 * are while the level lives, so an order reaches its level in one load, without a search.
 * A reset book's levels that still have orders stay behind as zombies (the orders are
 * stale): each is freed when the sweep has erased its last order. */
struct level {
	int64_t price;
	uint64_t shares;
	uint32_t orders;
	uint32_t free_next; /* free-list link while unused */
	uint16_t locate;
	uint8_t side;	/* SIDE_BID / SIDE_ASK */
	uint8_t zombie; /* its book was reset: its orders are stale */
	uint32_t pad;
};

_Static_assert(sizeof(struct level) == 32, "two levels per cache line");

/* Entry of a side's sorted level array: key = price for bids, -price for asks, so both
 * sides sort ascending with the best level last (near-top changes move few entries). */
struct lvent {
	int64_t key;
	uint32_t level;
	uint32_t pad;
};

struct side {
	uint32_t off; /* arena offset of the array */
	uint32_t n;
	uint8_t cls; /* capacity class: ARENA_MIN_CAP << cls, 0xff = none */
};

/* Everything an order message touches sits in the first cache line. */
struct book {
	struct side side[2];
	uint64_t last_seq, last_ts;
	_Atomic uint64_t msgs;
	_Atomic uint32_t live_orders;
	uint8_t defined, frozen, flagged, dirty, batch_open;
	uint8_t top_dirty; /* bit per side: a level within the published depth changed; NAME_DIRTY */
	char trading_state;
	_Atomic uint8_t health;
	/* Live-read seqlock of an order book: odd while the writer changes it (the reader
	 * copies the top straight from the levels). Price-level books publish snapshots. */
	_Atomic uint32_t wseq;
	/* cold: integrity, operator requests, directory */
	char stock[8];
	_Atomic uint8_t price_level; /* fed by set_level: readers see it at batch ends only */
	_Atomic uint32_t request; /* REQ_* posted by the control plane */
	_Atomic uint64_t held, integrity_total;
	_Atomic uint64_t integrity[WB_INT_REASON_MAX];
} __attribute__((aligned(64)));

_Static_assert(offsetof(struct book, stock) <= 64, "order-path fields of a book fit one cache line");

/* Published top of book of one symbol; levels[] holds depth bids then depth asks. */
struct snap {
	_Atomic uint32_t seq; /* odd while the writer updates it */
	uint32_t nbids, nasks;
	char trading_state;
	uint8_t health;
	char stock[9];
	uint64_t ts_exch, last_seq;
	struct wb_level levels[];
};

struct region {
	void *p;
	size_t n;
};

struct wb_bookset {
	/* hot, writer only */
	/* Orders live in a ring indexed by reference (ref & ring_mask): exchanges number
	 * orders in sequence, so adds fill the ring front to back and the many orders that die
	 * young are found where they were just written. An order still live when a reference
	 * one ring later claims its slot moves to the survivor table (open addressing). */
	struct order *ring;
	uint64_t ring_mask, ring_bytes;
	uint64_t tag_limit; /* 2^32 << ring_bits: a reference at or above it lives in the survivor table */
	uint32_t ring_bits;
	struct survivor *surv;
	uint64_t nsurv_slots;
	uint32_t surv_disp;    /* longest distance from home any survivor was stored at */
	uint64_t nsurv;	       /* orders in the survivor table (live or stale) */
	uint64_t hi_ref;       /* highest reference ever added: a higher one cannot be live */
	_Atomic uint64_t arrivals; /* orders added so far: the next order's arrival (read by stats) */
	uint64_t stale_orders; /* orders of reset books still in the tables: 0 on the hot path */
	uint64_t sweep_at;     /* next slot the sweep of stale orders looks at (ring, then survivors) */
	/* Adds prefetch the survivor slot their slot's holder would move to only while adds
	 * often find their slot held (pf_moves: all ones or 0, set per window of adds): with a
	 * ring large for the day's order lifetimes those prefetches are random lines wasted. */
	uint64_t pf_moves;
	uint64_t window_arrivals, window_moves; /* arrivals and survivor_moves at the window's start */
	/* The last two hints (wb_bookset_prefetch_itch_burst; a worker hints packet k + 1
	 * before it applies packet k): the key of each one's first message and how many it
	 * started. The burst that begins with that message skips their first stage. */
	uint64_t hint_key[2];
	uint32_t hint_n[2];
	uint32_t hint_next;
	/* some book was fed by set_level: until then no book's price_level (in the book's
	 * second cache line, which order messages otherwise never touch) needs a look */
	uint8_t price_levels;
	struct level *levels;
	uint32_t level_free;
	struct lvent *arena;
	uint32_t arena_top, arena_cap;
	uint32_t arena_free[ARENA_CLASSES]; /* offset + 1 of a free block per class, 0 = none */
	struct book *books;
	uint16_t *dirty_list;
	uint32_t ndirty;
	struct wb_event scratch; /* target of writes when a batch is full */
	struct wb_book_opts opts;
	uint8_t stale;
	size_t snap_stride;
	unsigned char *snaps;

	/* read by other threads */
	_Atomic uint64_t msgs, live_orders, live_levels;
	_Atomic uint64_t order_table_full, level_table_full, integrity_total;
	_Atomic uint64_t symbols, event_overflow;
	_Atomic uint64_t stale_pending; /* copy of stale_orders for readers */
	_Atomic uint64_t survivor_moves; /* orders moved from the ring to the survivor table */
	_Atomic uint32_t requests_pending;
	uint64_t memory_bytes;

	struct region r_ring, r_surv, r_levels, r_arena, r_books, r_dirty, r_snaps;
};

/* Context of the message being applied, copied into its events. */
struct apply {
	struct wb_bookset *bs;
	struct wb_event_batch *out;
	uint64_t ts, seq, ts_recv;
	uint8_t flags; /* this message's: base, plus STALE when its book is frozen or stale */
	uint8_t base;  /* the caller's flags */
};

/* ---------------------------------------------------------------- memory */

/* Maps n bytes (2 MiB-aligned when that large) on node (or local for -1), backed by
 * transparent huge pages where the kernel gives them, and touches every page now so the
 * hot path never takes a page fault. The mapping starts PROT_NONE: under
 * mlockall(MCL_FUTURE), as latency-minded processes run, a readable mapping is populated
 * with small pages the moment it is made, before the huge-page advice could apply (seen:
 * 16 of 64 MiB huge that way, all of it this way). */
static int region_alloc(struct region *r, size_t n, int node)
{
	size_t align = n >= HUGE_PAGE ? HUGE_PAGE : 4096;
	uint8_t *raw, *p;

	n = (n + 4095) & ~(size_t)4095;
	raw = mmap(NULL, n + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return -ENOMEM;
	p = (uint8_t *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
	if (p > raw)
		munmap(raw, (size_t)(p - raw));
	if (raw + n + align > p + n)
		munmap(p + n, (size_t)(raw + n + align - (p + n)));
	if (node >= 0 && numa_available() >= 0)
		numa_tonode_memory(p, n, node);
	/* random probes over hundreds of MiB: 2 MiB pages cut the TLB misses (best effort) */
	if (n >= HUGE_PAGE)
		(void)madvise(p, n, MADV_HUGEPAGE);
	if (mprotect(p, n, PROT_READ | PROT_WRITE)) {
		munmap(p, n);
		return -ENOMEM;
	}
	memset(p, 0, n);
	r->p = p;
	r->n = n;
	return 0;
}

static void region_free(struct region *r)
{
	if (!r->p)
		return;
	munmap(r->p, r->n);
	r->p = NULL;
}

static struct snap *snap_of(const struct wb_bookset *bs, uint32_t locate)
{
	return (struct snap *)(bs->snaps + (size_t)locate * bs->snap_stride);
}

static uint64_t pow2_at_least(uint64_t n)
{
	uint64_t p = 16;

	while (p < n)
		p <<= 1;
	return p;
}

int wb_bookset_create(const struct wb_book_opts *opts, struct wb_bookset **out)
{
	struct wb_bookset *bs;
	uint64_t rcap, scap;
	int rc;

	if (!opts || !out || opts->max_orders == 0 || opts->max_levels == 0 || opts->max_symbols == 0 ||
	    opts->max_symbols > WB_BOOK_MAX_LOCATES || opts->snapshot_depth > WB_TOP_MAX_DEPTH ||
	    opts->max_orders > (1u << 30) || opts->max_levels >= UINT32_MAX / 8 || opts->order_ring > (1u << 30) ||
	    (opts->order_ring & (opts->order_ring - 1)))
		return -EINVAL;
	bs = calloc(1, sizeof(*bs));
	if (!bs)
		return -ENOMEM;
	bs->opts = *opts;

	/* the ring spans at least four times max_orders consecutive references unless told
	 * otherwise (at twice, a wbsim day moved one order in eight to the survivors, the
	 * summary's hint; at four times, one in 32 and 0.91x the time); the survivor table can
	 * hold every live order at load <= 2/3, which keeps its linear probes short */
	rcap = opts->order_ring ? opts->order_ring : pow2_at_least(4ull * opts->max_orders);
	if (rcap > (1ull << 31))
		rcap = 1ull << 31; /* a tag's limit, 2^32 << ring bits, must fit 64 bits */
	scap = 3ull * opts->max_orders / 2 + 1;
	bs->ring_mask = rcap - 1;
	bs->ring_bytes = rcap * sizeof(struct order);
	bs->ring_bits = (uint32_t)__builtin_ctzll(rcap);
	bs->tag_limit = (1ull << 32) << bs->ring_bits;
	bs->nsurv_slots = scap;
	/* the arena holds every side's sorted array; 4x covers doubling slack and classes */
	bs->arena_cap = 4 * opts->max_levels + 2 * ARENA_MIN_CAP * opts->max_symbols;
	bs->snap_stride = (sizeof(struct snap) + 2 * (size_t)opts->snapshot_depth * sizeof(struct wb_level) + 63) &
			  ~(size_t)63;

	rc = region_alloc(&bs->r_ring, rcap * sizeof(struct order), opts->numa_node);
	if (rc)
		goto out_free_bs;
	rc = region_alloc(&bs->r_surv, scap * sizeof(struct survivor), opts->numa_node);
	if (rc)
		goto out_free_ring;
	rc = region_alloc(&bs->r_levels, ((size_t)opts->max_levels + 1) * sizeof(struct level), opts->numa_node);
	if (rc)
		goto out_free_surv;
	rc = region_alloc(&bs->r_arena, (size_t)bs->arena_cap * sizeof(struct lvent), opts->numa_node);
	if (rc)
		goto out_free_levels;
	rc = region_alloc(&bs->r_books, (size_t)opts->max_symbols * sizeof(struct book), opts->numa_node);
	if (rc)
		goto out_free_arena;
	rc = region_alloc(&bs->r_dirty, (size_t)opts->max_symbols * sizeof(uint16_t), opts->numa_node);
	if (rc)
		goto out_free_books;
	rc = region_alloc(&bs->r_snaps, (size_t)opts->max_symbols * bs->snap_stride, opts->numa_node);
	if (rc)
		goto out_free_dirty;

	bs->ring = bs->r_ring.p;
	bs->surv = bs->r_surv.p;
	bs->levels = bs->r_levels.p;
	bs->arena = bs->r_arena.p;
	bs->books = bs->r_books.p;
	bs->dirty_list = bs->r_dirty.p;
	bs->snaps = bs->r_snaps.p;
	bs->memory_bytes = sizeof(*bs) + bs->r_ring.n + bs->r_surv.n + bs->r_levels.n + bs->r_arena.n +
			   bs->r_books.n + bs->r_dirty.n + bs->r_snaps.n;

	/* level free list in index order, so a fresh pool fills memory front to back */
	for (uint32_t i = 1; i <= opts->max_levels; i++)
		bs->levels[i].free_next = i < opts->max_levels ? i + 1 : NIL;
	bs->level_free = 1;
	for (uint32_t l = 0; l < opts->max_symbols; l++) {
		struct book *b = &bs->books[l];
		struct snap *sn = snap_of(bs, l);

		b->side[0].cls = b->side[1].cls = 0xff;
		b->trading_state = ' ';
		sn->trading_state = ' ';
	}
	*out = bs;
	return 0;

out_free_dirty:
	region_free(&bs->r_dirty);
out_free_books:
	region_free(&bs->r_books);
out_free_arena:
	region_free(&bs->r_arena);
out_free_levels:
	region_free(&bs->r_levels);
out_free_surv:
	region_free(&bs->r_surv);
out_free_ring:
	region_free(&bs->r_ring);
out_free_bs:
	free(bs);
	return rc;
}

void wb_bookset_destroy(struct wb_bookset *bs)
{
	if (!bs)
		return;
	region_free(&bs->r_snaps);
	region_free(&bs->r_dirty);
	region_free(&bs->r_books);
	region_free(&bs->r_arena);
	region_free(&bs->r_levels);
	region_free(&bs->r_surv);
	region_free(&bs->r_ring);
	free(bs);
}

/* ---------------------------------------------------------------- order store */

static inline struct order *ring_slot(const struct wb_bookset *bs, uint64_t ref)
{
	return &bs->ring[ref & bs->ring_mask];
}

/* Does ring record o (its slot: ref's) hold ref? A reference at or above tag_limit never
 * matches: its tag would not fit, so it is kept in the survivor table. */
static HOT_INLINE bool ring_holds(const struct wb_bookset *bs, const struct order *o, uint64_t ref)
{
	return o->level != NIL && (uint64_t)o->tag == ref >> bs->ring_bits;
}

static inline bool in_ring(const struct wb_bookset *bs, const struct order *o)
{
	/* one unsigned compare: below the ring wraps to a huge distance */
	return (uintptr_t)o - (uintptr_t)bs->ring < bs->ring_bytes;
}

static inline struct survivor *survivor_of(struct order *o)
{
	return (struct survivor *)((char *)o - offsetof(struct survivor, o));
}

/* The reference of a live ring record: its tag above, its slot below. */
static inline uint64_t ring_ref(const struct wb_bookset *bs, const struct order *o)
{
	return (uint64_t)o->tag << bs->ring_bits | (uint64_t)(o - bs->ring);
}

/* The reference of a live record in either table. */
static inline uint64_t order_ref(const struct wb_bookset *bs, const struct order *o)
{
	if (in_ring(bs, o))
		return ring_ref(bs, o);
	return survivor_of((struct order *)o)->ref;
}

/* Survivors are scattered by Fibonacci hashing (they are the orders whose references the
 * ring has wrapped past, and low bits would pile them up in runs), mapped onto any table
 * size by a multiply-high: the table is exactly 1.5 x max_orders, not the next power of two. */
static inline uint64_t fib_home(uint64_t ref, uint64_t nslots)
{
	return (uint64_t)(((unsigned __int128)(ref * 0x9E3779B97F4A7C15ull) * nslots) >> 64);
}

static inline uint64_t surv_home(const struct wb_bookset *bs, uint64_t ref)
{
	return fib_home(ref, bs->nsurv_slots);
}

static inline uint64_t surv_next(const struct wb_bookset *bs, uint64_t i)
{
	return i + 1 == bs->nsurv_slots ? 0 : i + 1;
}

/* Slots from a forward to b, around the end of the table. */
static inline uint64_t surv_dist(const struct wb_bookset *bs, uint64_t a, uint64_t b)
{
	return b >= a ? b - a : b + bs->nsurv_slots - a;
}

/* Survivor record holding ref, or NULL (never further than surv_disp from home). */
static inline struct order *surv_find(const struct wb_bookset *bs, uint64_t ref)
{
	uint64_t i = surv_home(bs, ref);

	for (uint32_t d = 0; d <= bs->surv_disp; d++, i = surv_next(bs, i)) {
		struct survivor *sv = &bs->surv[i];

		if (sv->o.level == NIL)
			return NULL;
		if (sv->ref == ref)
			return &sv->o;
	}
	return NULL;
}

/* Claims a survivor slot for ref (not in the table): the first empty slot from its home
 * (no tombstones, so nothing with its reference sits past it). The table holds every live
 * and stale order at most, and has half as many slots again: one is empty. The caller
 * fills the record, level last (NIL until then). */
static struct order *surv_claim(struct wb_bookset *bs, uint64_t ref)
{
	uint64_t i = surv_home(bs, ref);
	uint32_t d = 0;

	while (bs->surv[i].o.level != NIL) {
		i = surv_next(bs, i);
		d++;
	}
	bs->surv[i].ref = ref;
	if (d > bs->surv_disp)
		bs->surv_disp = d;
	bs->nsurv++;
	return &bs->surv[i].o;
}

/* Moves ring record src, holding ref, to the survivor table. */
static void surv_insert(struct wb_bookset *bs, const struct order *src, uint64_t ref)
{
	*surv_claim(bs, ref) = *src;
	CNT_ADD(bs->survivor_moves, 1);
}

/* Empties survivor slot i. Backward-shift deletion: no tombstones, probe chains stay short;
 * a shifted order keeps its arrival, so its queue position. No order sits more than
 * surv_disp past its home, so the scan stops there even inside a long run. */
static void surv_erase(struct wb_bookset *bs, uint64_t i)
{
	uint64_t j = i;

	for (;;) {
		j = surv_next(bs, j);
		if (bs->surv[j].o.level == NIL || surv_dist(bs, i, j) > bs->surv_disp)
			break;
		uint64_t k = surv_home(bs, bs->surv[j].ref);
		if (surv_dist(bs, k, j) >= surv_dist(bs, i, j)) {
			bs->surv[i] = bs->surv[j];
			i = j;
		}
	}
	bs->surv[i].o.level = NIL;
	bs->nsurv--;
}

/* Frees o's slot. A survivor's slot may be refilled by the shift. */
static HOT_INLINE void slot_free(struct wb_bookset *bs, struct order *o)
{
	if (__builtin_expect(in_ring(bs, o), 1))
		o->level = NIL;
	else
		surv_erase(bs, (uint64_t)(survivor_of(o) - bs->surv));
}

/* The live record of ref, ignoring staleness, or NULL. */
static HOT_INLINE struct order *order_locate(const struct wb_bookset *bs, uint64_t ref)
{
	struct order *o = ring_slot(bs, ref);

	if (__builtin_expect(ring_holds(bs, o, ref), 1))
		return o;
	if (bs->nsurv == 0)
		return NULL;
	return surv_find(bs, ref);
}

/* Both tables as one run of slots, ring first: what the sweep and the queue walk scan. */
static inline uint64_t table_slots(const struct wb_bookset *bs)
{
	return bs->ring_mask + 1 + bs->nsurv_slots;
}

static inline struct order *table_slot(const struct wb_bookset *bs, uint64_t i)
{
	return i <= bs->ring_mask ? &bs->ring[i] : &bs->surv[i - bs->ring_mask - 1].o;
}

/* A reset leaves its book's orders in the tables (finding them all would mean a scan, too
 * long to hold the feed for): they are stale, treated as absent wherever met and erased by
 * the sweep of wb_bookset_service. Their levels stay behind as zombies until then, which
 * is what marks them. Only looked at while bs->stale_orders != 0. */
static inline bool order_stale(const struct wb_bookset *bs, const struct order *o)
{
	return bs->levels[o->level].zombie;
}

static void level_release(struct wb_bookset *bs, uint32_t li)
{
	bs->levels[li].zombie = 0;
	bs->levels[li].free_next = bs->level_free;
	bs->level_free = li;
}

/* Erases stale order o; its zombie level goes with its last order. */
static void stale_erase(struct wb_bookset *bs, struct order *o)
{
	uint32_t li = o->level;

	if (--bs->levels[li].orders == 0)
		level_release(bs, li);
	slot_free(bs, o);
	bs->stale_orders--;
	CNT_SUB(bs->stale_pending, 1);
}

/* Erases the stale orders among the next budget slots, ring first, then survivors. The
 * count of stale orders is exact, so the sweep goes round until it is 0 (a delete's
 * backward shift can move one behind the sweep: it is found on the next round). */
static void sweep_stale(struct wb_bookset *bs, uint32_t budget)
{
	uint64_t total = table_slots(bs);

	while (bs->stale_orders && budget--) {
		uint64_t i = bs->sweep_at;
		struct order *o = table_slot(bs, i);
		bool erased = o->level != NIL && order_stale(bs, o);

		if (erased)
			stale_erase(bs, o);
		/* a ring slot stays empty; a survivor may shift into i: look at it again */
		if (!erased || i <= bs->ring_mask)
			bs->sweep_at = i + 1 == total ? 0 : i + 1; /* no division: 16,384 steps a call */
	}
}

/* ---------------------------------------------------------------- side arrays */

static inline uint32_t class_cap(uint8_t cls) { return ARENA_MIN_CAP << cls; }

static int arena_get(struct wb_bookset *bs, uint8_t cls, uint32_t *off)
{
	uint32_t cap = class_cap(cls);

	if (bs->arena_free[cls]) {
		*off = bs->arena_free[cls] - 1;
		bs->arena_free[cls] = bs->arena[*off].level;
		return 0;
	}
	if (bs->arena_cap - bs->arena_top < cap)
		return -ENOSPC;
	*off = bs->arena_top;
	bs->arena_top += cap;
	return 0;
}

static void arena_put(struct wb_bookset *bs, uint8_t cls, uint32_t off)
{
	bs->arena[off].level = bs->arena_free[cls];
	bs->arena_free[cls] = off + 1;
}

static inline int64_t side_key(int s, int64_t price) { return s == SIDE_BID ? price : -price; }

/* Position of key in the side's array, or where it would be inserted (*found = 0).
 * Looks near the top first: most changes happen there. */
static HOT_INLINE uint32_t side_search(const struct wb_bookset *bs, const struct side *sd, int64_t key, int *found)
{
	const struct lvent *a = bs->arena + sd->off, *p = a + sd->n;
	const struct lvent *stop = sd->n > 8 ? p - 8 : a;
	uint32_t lo = 0, hi;

	while (p > stop && p[-1].key > key)
		p--;
	if (p > stop || stop == a) {
		*found = p > a && p[-1].key == key;
		return (uint32_t)(p - a) - (uint32_t)*found;
	}
	hi = (uint32_t)(stop - a);
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (a[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < sd->n && a[lo].key == key;
	return lo;
}

/* Moves the n entries from a one place up (down): most level changes are near the top,
 * a few entries, where a call to memmove costs more than the copy. */
static HOT_INLINE void lvent_shift_up(struct lvent *a, uint32_t n)
{
	if (n > 8) {
		memmove(a + 1, a, n * sizeof(*a));
		return;
	}
	while (n) {
		a[n] = a[n - 1];
		n--;
	}
}

static HOT_INLINE void lvent_shift_down(struct lvent *a, uint32_t n)
{
	if (n > 8) {
		memmove(a, a + 1, n * sizeof(*a));
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		a[i] = a[i + 1];
}

static int side_insert(struct wb_bookset *bs, struct side *sd, uint32_t pos, int64_t key, uint32_t level)
{
	if (sd->cls == 0xff || sd->n == class_cap(sd->cls)) {
		uint8_t cls = sd->cls == 0xff ? 0 : sd->cls + 1;
		uint32_t off;

		if (cls >= ARENA_CLASSES || arena_get(bs, cls, &off))
			return -ENOSPC;
		if (sd->n)
			memcpy(bs->arena + off, bs->arena + sd->off, sd->n * sizeof(struct lvent));
		if (sd->cls != 0xff)
			arena_put(bs, sd->cls, sd->off);
		sd->off = off;
		sd->cls = cls;
	}
	struct lvent *a = bs->arena + sd->off;
	lvent_shift_up(a + pos, sd->n - pos);
	a[pos].key = key;
	a[pos].level = level;
	sd->n++;
	return 0;
}

static void side_remove(struct wb_bookset *bs, struct side *sd, uint32_t pos)
{
	struct lvent *a = bs->arena + sd->off;

	lvent_shift_down(a + pos, sd->n - pos - 1);
	sd->n--;
}

static void side_release(struct wb_bookset *bs, struct side *sd)
{
	if (sd->cls != 0xff)
		arena_put(bs, sd->cls, sd->off);
	sd->cls = 0xff;
	sd->n = 0;
	sd->off = 0;
}

static inline const struct level *side_best(const struct wb_bookset *bs, const struct side *sd)
{
	return sd->n ? &bs->levels[bs->arena[sd->off + sd->n - 1].level] : NULL;
}

/* Marks the book's published levels out of date when a level at price on side s (present
 * in the side's array) is within the snapshot depth: deeper changes cannot alter it. */
static inline void top_mark(const struct wb_bookset *bs, struct book *b, int s, int64_t price)
{
	const struct side *sd = &b->side[s];
	uint32_t depth = bs->opts.snapshot_depth;

	if (sd->n <= depth || side_key(s, price) >= bs->arena[sd->off + sd->n - depth].key)
		b->top_dirty |= (uint8_t)(1u << s);
}

/* A new, empty level at price on side s of the book of locate, entered at pos of the
 * side's array; NIL when the pool or arena is full. */
static uint32_t level_new(struct wb_bookset *bs, struct book *b, int s, uint32_t pos, int64_t key, int64_t price)
{
	uint32_t li = bs->level_free;

	if (li == NIL)
		return NIL;
	if (side_insert(bs, &b->side[s], pos, key, li))
		return NIL;
	bs->level_free = bs->levels[li].free_next;
	bs->levels[li] = (struct level){ .price = price, .locate = (uint16_t)(b - bs->books), .side = (uint8_t)s };
	CNT_ADD(bs->live_levels, 1);
	return li;
}

/* Level at price (key: its side key) on side s, created (empty) if absent; NIL when the
 * pool or arena is full. */
static HOT_INLINE uint32_t level_get(struct wb_bookset *bs, struct book *b, int s, int64_t key, int64_t price)
{
	struct side *sd = &b->side[s];
	int found;
	uint32_t pos = side_search(bs, sd, key, &found);

	if (__builtin_expect(found, 1))
		return bs->arena[sd->off + pos].level;
	return level_new(bs, b, s, pos, key, price);
}

static void level_drop(struct wb_bookset *bs, struct book *b, int s, uint32_t li)
{
	struct side *sd = &b->side[s];
	int found;
	uint32_t pos = side_search(bs, sd, side_key(s, bs->levels[li].price), &found);

	if (found)
		side_remove(bs, sd, pos);
	level_release(bs, li);
	CNT_SUB(bs->live_levels, 1);
}

/* ---------------------------------------------------------------- events */

/* The next record of the batch; when it is full, a scratch record (counted as overflow). */
static HOT_INLINE struct wb_event *ev_next(struct apply *c)
{
	struct wb_event *e = wb_batch_push(c->out);

	return __builtin_expect(e != NULL, 1) ? e : &c->bs->scratch;
}

static inline struct wb_event *emit(struct apply *c, uint8_t type, uint16_t locate)
{
	struct wb_event *e = ev_next(c);

	e->ts_exch = c->ts;
	e->ts_recv = c->ts_recv;
	e->seq = c->seq;
	e->ref = 0;
	e->aux = 0;
	e->price = 0;
	e->shares = 0;
	e->level_shares = 0;
	e->locate = locate;
	e->level_orders = 0;
	e->type = type;
	e->side = 0;
	e->feed = c->bs->opts.feed;
	e->flags = c->flags;
	return e;
}

static inline uint8_t side_char(int s) { return (uint8_t)('B' + ('S' - 'B') * s); }

/* An order event: every field stored once, from values computed before (emit's zeroing
 * pass is twice the stores, and the compiler cannot drop the first ones when the record
 * might alias the level it reads). lshares/lorders: the level after the change,
 * saturated to the record's fields. */
static HOT_INLINE void ev_order(struct apply *c, uint8_t type, uint16_t locate, int s, uint64_t ref, uint64_t aux,
				int64_t price, uint32_t shares, uint64_t lshares, uint32_t lorders, uint8_t flags)
{
	struct wb_event *e = ev_next(c);

	e->ts_exch = c->ts;
	e->ts_recv = c->ts_recv;
	e->seq = c->seq;
	e->ref = ref;
	e->aux = aux;
	e->price = price;
	e->shares = shares;
	e->level_shares = lshares > UINT32_MAX ? UINT32_MAX : (uint32_t)lshares;
	e->locate = locate;
	e->level_orders = lorders > UINT16_MAX ? UINT16_MAX : (uint16_t)lorders;
	e->type = type;
	e->side = side_char(s);
	e->feed = c->bs->opts.feed;
	e->flags = (uint8_t)(c->flags | flags);
}

static uint64_t raw8(const char *p, size_t n)
{
	uint64_t v = 0;

	memcpy(&v, p, n < 8 ? n : 8);
	return v;
}

/* ---------------------------------------------------------------- health */

static void book_touch(struct wb_bookset *bs, struct book *b, uint16_t locate)
{
	if (!b->dirty) {
		b->dirty = 1;
		bs->dirty_list[bs->ndirty++] = locate;
	}
}

static inline void book_wbegin(struct book *b)
{
	atomic_store_explicit(&b->wseq, atomic_load_explicit(&b->wseq, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static inline void book_wend(struct book *b)
{
	atomic_store_explicit(&b->wseq, atomic_load_explicit(&b->wseq, memory_order_relaxed) + 1,
			      memory_order_release);
}

/* Order books are read live: only a price-level book needs its snapshot rewritten. */
static inline void book_touch_pl(struct wb_bookset *bs, struct book *b, uint16_t locate)
{
	if (bs->price_levels && atomic_load_explicit(&b->price_level, memory_order_relaxed))
		book_touch(bs, b, locate);
}

static void health_update(struct wb_bookset *bs, struct book *b, uint16_t locate)
{
	uint8_t h = b->frozen ? WB_HEALTH_FROZEN : bs->stale ? WB_HEALTH_STALE
			      : b->flagged		    ? WB_HEALTH_FLAGGED
							    : WB_HEALTH_OK;

	if (atomic_load_explicit(&b->health, memory_order_relaxed) != h) {
		atomic_store_explicit(&b->health, h, memory_order_relaxed);
		book_touch(bs, b, locate);
	}
}

/* Counts an integrity problem, emits its event and applies the policy. b may be NULL
 * (locate outside the table). */
static COLD struct wb_event *integrity(struct apply *c, struct book *b, uint16_t locate, uint8_t reason, uint64_t ref)
{
	struct wb_bookset *bs = c->bs;
	struct wb_event *e;

	CNT_ADD(bs->integrity_total, 1);
	if (b) {
		CNT_ADD(b->integrity[reason], 1);
		CNT_ADD(b->integrity_total, 1);
		if (__atomic_load_n(&bs->opts.policy, __ATOMIC_RELAXED) == WB_POLICY_FREEZE)
			b->frozen = 1;
		else
			b->flagged = 1;
		health_update(bs, b, locate);
	}
	e = emit(c, WB_EV_INTEGRITY, locate);
	e->side = reason;
	e->ref = ref;
	return e;
}

static COLD void cross_event(struct apply *c, struct book *b, uint16_t locate, int s, int64_t key, int64_t opp_key,
			    uint64_t ref)
{
	struct wb_event *e = integrity(c, b, locate, key + opp_key == 0 ? WB_INT_LOCKED : WB_INT_CROSSED, ref);

	e->price = side_key(s, key);
	e->aux = (uint64_t)side_key(!s, opp_key);
}

/* After an order joined side s at the level of key: is it at or through the other side?
 * With keys (price for bids, -price for asks) both questions are one sum: bid >= ask is
 * key + opp_key >= 0 from either side (prices are far inside +-2^62: no overflow). */
static HOT_INLINE void check_cross(struct apply *c, struct book *b, uint16_t locate, int s, int64_t key, uint64_t ref)
{
	const struct side *own = &b->side[s], *opp = &b->side[!s];
	const struct lvent *arena = c->bs->arena;

	if (!opp->n)
		return;
	int64_t opp_key = arena[opp->off + opp->n - 1].key;

	/* only a change at the top can lock or cross the book */
	if (__builtin_expect(key + opp_key >= 0, 0) && arena[own->off + own->n - 1].key == key)
		cross_event(c, b, locate, s, key, opp_key, ref);
}

/* ---------------------------------------------------------------- orders */

static inline struct book *book_of(struct wb_bookset *bs, uint16_t locate)
{
	return &bs->books[locate];
}

/* Stores a new order in ring slot o (empty, or holding an order a ring older), or in the
 * survivor table when o is NULL, at the back of its level's queue; every check on the
 * reference and the table is done. */
static HOT_INLINE void order_store(struct apply *c, struct book *b, struct order *o, uint16_t locate, uint64_t ref,
				   int s, int64_t price, uint32_t shares, uint8_t type, uint64_t aux, uint8_t ev_flags)
{
	struct wb_bookset *bs = c->bs;
	int64_t key = side_key(s, price);

	/* a stale holder goes first: its zombie level, if it was the last order, frees a record */
	if (__builtin_expect(bs->stale_orders != 0, 0) && o && o->level != NIL && order_stale(bs, o))
		stale_erase(bs, o);
	uint32_t li = level_get(bs, b, s, key, price);

	if (__builtin_expect(li == NIL, 0)) {
		CNT_ADD(bs->level_table_full, 1);
		struct wb_event *e = integrity(c, b, locate, WB_INT_LEVEL_TABLE_FULL, ref);
		e->price = price;
		e->shares = shares;
		return;
	}
	if (__builtin_expect(o == NULL, 0)) {
		o = surv_claim(bs, ref);
	} else if (__builtin_expect(o->level != NIL, 0)) {
		/* an order one ring of references older still holds the slot: it survives elsewhere */
		surv_insert(bs, o, ring_ref(bs, o));
	}
	struct level *lv = &bs->levels[li];
	uint64_t lshares = lv->shares + shares;
	uint32_t lorders = lv->orders + 1;

	/* field by field: a compound literal is built on the stack and copied */
	o->tag = (uint32_t)(ref >> bs->ring_bits); /* a survivor's is unused */
	o->arrival = (uint32_t)CNT_GET(bs->arrivals);
	CNT_ADD(bs->arrivals, 1);
	o->level = li;
	o->shares = shares;
	lv->shares = lshares;
	lv->orders = lorders;
	bs->hi_ref = ref > bs->hi_ref ? ref : bs->hi_ref;
	CNT_ADD(b->live_orders, 1);
	CNT_ADD(bs->live_orders, 1);
	ev_order(c, type, locate, s, ref, aux, price, shares, lshares, lorders, ev_flags);
	check_cross(c, b, locate, s, key, ref);
}

/* The add of a reference that may already be live (at or below the highest one added
 * while survivors exist, or in its ring slot), or with the tables full. */
static COLD void order_add_checked(struct apply *c, struct book *b, uint16_t locate, uint64_t ref, int s,
				   int64_t price, uint32_t shares, uint8_t type, uint64_t aux, uint8_t ev_flags)
{
	struct wb_bookset *bs = c->bs;
	struct order *o = ring_slot(bs, ref), *dup;

	dup = ring_holds(bs, o, ref) ? o : NULL;
	if (!dup && bs->nsurv != 0 && ref <= bs->hi_ref)
		dup = surv_find(bs, ref);
	if (dup) {
		if (bs->stale_orders != 0 && order_stale(bs, dup)) {
			/* the reference of an order a reset left behind: it is gone, this one is new */
			stale_erase(bs, dup);
		} else {
			struct wb_event *e = integrity(c, b, locate, WB_INT_DUPLICATE_ORDER, ref);
			e->price = price;
			e->shares = shares;
			return;
		}
	}
	/* stale orders still hold slots: counting them keeps room for every one in the tables */
	if (CNT_GET(bs->live_orders) + bs->stale_orders >= bs->opts.max_orders) {
		CNT_ADD(bs->order_table_full, 1);
		struct wb_event *e = integrity(c, b, locate, WB_INT_ORDER_TABLE_FULL, ref);
		e->price = price;
		e->shares = shares;
		return;
	}
	/* a reference too high for a ring tag is kept in the survivor table */
	order_store(c, b, ref < bs->tag_limit ? o : NULL, locate, ref, s, price, shares, type, aux, ev_flags);
}

/* Adds an order on side s at the back of its level's queue. A reference above every one
 * added so far cannot be live: the common add checks only its own ring slot (and that the
 * reference fits a ring tag). */
static HOT_INLINE void order_add(struct apply *c, struct book *b, uint16_t locate, uint64_t ref, int s, int64_t price,
				 uint32_t shares, uint8_t type, uint64_t aux, uint8_t ev_flags)
{
	struct wb_bookset *bs = c->bs;
	struct order *o = ring_slot(bs, ref);

	if (__builtin_expect(ring_holds(bs, o, ref) | (bs->nsurv != 0 && ref <= bs->hi_ref) | (ref >= bs->tag_limit) |
				     (CNT_GET(bs->live_orders) + bs->stale_orders >= bs->opts.max_orders),
			     0)) {
		order_add_checked(c, b, locate, ref, s, price, shares, type, aux, ev_flags);
		return;
	}
	order_store(c, b, o, locate, ref, s, price, shares, type, aux, ev_flags);
}

/* Takes shares (at most its size) off order o at level lv, removing it and its emptied
 * level when none are left. *lshares, *lorders: the level's aggregate after the change. */
static HOT_INLINE void order_take(struct wb_bookset *bs, struct order *o, struct level *lv, uint32_t shares,
				  uint64_t *lshares, uint32_t *lorders)
{
	struct book *b = &bs->books[lv->locate];
	uint32_t gone = shares == o->shares;

	*lshares = lv->shares - shares;
	*lorders = lv->orders - gone;
	lv->shares = *lshares;
	lv->orders = *lorders;
	if (!gone) {
		o->shares -= shares;
		return;
	}
	if (*lorders == 0)
		level_drop(bs, b, lv->side, o->level);
	slot_free(bs, o);
	CNT_SUB(b->live_orders, 1);
	CNT_SUB(bs->live_orders, 1);
}

/* The lookup of a reference not in its ring slot (a survivor, or unknown), or while
 * reset books leave stale orders behind. Counts an unknown order. Out of line but not
 * cold: a survivor is found here (one lookup in ten on a 2M-message wbsim day). */
static __attribute__((noinline)) struct order *order_find_checked(struct apply *c, struct book *b, uint16_t locate, uint64_t ref)
{
	struct order *o = order_locate(c->bs, ref);

	if (o && c->bs->stale_orders != 0 && order_stale(c->bs, o)) {
		stale_erase(c->bs, o); /* its book was reset: the order is gone */
		o = NULL;
	}
	if (!o)
		integrity(c, b, locate, WB_INT_UNKNOWN_ORDER, ref);
	return o;
}

/* Looks up ref for an E/C/X/D/U; counts an unknown order. */
static HOT_INLINE struct order *order_find(struct apply *c, struct book *b, uint16_t locate, uint64_t ref)
{
	struct order *o = ring_slot(c->bs, ref);

	if (__builtin_expect(ring_holds(c->bs, o, ref) && c->bs->stale_orders == 0, 1))
		return o;
	return order_find_checked(c, b, locate, ref);
}

/* Takes shares off order o (reference ref; execution or cancel), removing it at 0. Emits
 * type with the price the order rests at; returns the shares applied. */
static HOT_INLINE uint32_t order_reduce(struct apply *c, struct order *o, uint64_t ref, uint32_t shares, uint8_t type,
					uint64_t aux)
{
	struct wb_bookset *bs = c->bs;
	struct level *lv = &bs->levels[o->level];
	uint16_t locate = lv->locate;
	uint64_t lshares;
	int64_t price = lv->price;
	uint32_t applied = shares, lorders;
	int s = lv->side;

	if (__builtin_expect(shares > o->shares, 0)) {
		struct wb_event *ie = integrity(c, &bs->books[locate], locate, WB_INT_EXEC_TOO_LARGE, ref);
		ie->price = price;
		ie->shares = o->shares;
		ie->aux = shares;
		applied = o->shares;
	}
	order_take(bs, o, lv, applied, &lshares, &lorders);
	ev_order(c, type, locate, s, ref, aux, price, applied, lshares, lorders, 0);
	return applied;
}

/* Deletes order o (reference ref), emitting ORDER_DELETE with the remaining shares. */
static HOT_INLINE void order_delete(struct apply *c, struct order *o, uint64_t ref, uint8_t ev_flags)
{
	struct level *lv = &c->bs->levels[o->level];
	uint16_t locate = lv->locate;
	uint64_t lshares;
	int64_t price = lv->price;
	uint32_t shares = o->shares, lorders;
	int s = lv->side;

	order_take(c->bs, o, lv, shares, &lshares, &lorders);
	ev_order(c, WB_EV_ORDER_DELETE, locate, s, ref, 0, price, shares, lshares, lorders, ev_flags);
}

/* ---------------------------------------------------------------- apply */

/* the types whose apply adds an order (U adds its new reference) */
static const uint8_t pf_adds[256] = { ['A'] = 1, ['F'] = 1, ['U'] = 1 };

/* 'B' and 'S' in one load: two compares mispredict on the half of adds that sell */
static const uint8_t side_ok[256] = { ['B'] = 1, ['S'] = 1 };

static const uint8_t order_type[256] = { ['A'] = 1, ['F'] = 1, ['E'] = 1, ['C'] = 1, ['X'] = 1, ['D'] = 1, ['U'] = 1 };

static inline int order_msg(char t)
{
	return order_type[(uint8_t)t];
}

static void apply_other(struct apply *c, const struct wb_itch_msg *m)
{
	struct wb_event *e = emit(c, WB_EV_OTHER, m->locate);

	e->side = (uint8_t)m->type;
	switch (m->type) {
	case 'Y':
		e->aux = raw8(m->u.regsho.stock, 8);
		e->shares = (uint8_t)m->u.regsho.action;
		break;
	case 'L':
		e->aux = raw8(m->u.mpp.mpid, 4) | (uint64_t)(uint8_t)m->u.mpp.primary_mm << 32 |
			 (uint64_t)(uint8_t)m->u.mpp.mm_mode << 40 | (uint64_t)(uint8_t)m->u.mpp.state << 48;
		break;
	case 'V':
		e->price = (int64_t)m->u.mwcb_decline.level[0];
		e->aux = m->u.mwcb_decline.level[1];
		e->ref = m->u.mwcb_decline.level[2];
		break;
	case 'W':
		e->shares = (uint8_t)m->u.mwcb_status.level;
		break;
	case 'K':
		e->price = m->u.ipo.price;
		e->shares = m->u.ipo.release_time;
		e->aux = (uint8_t)m->u.ipo.qualifier;
		break;
	case 'J':
		e->price = m->u.luld.ref_price;
		e->aux = (uint64_t)m->u.luld.upper << 32 | m->u.luld.lower;
		e->shares = m->u.luld.extension;
		break;
	case 'I':
		e->ref = m->u.noii.paired;
		e->aux = m->u.noii.imbalance;
		e->price = m->u.noii.ref_price;
		e->shares = m->u.noii.near_price;
		e->level_shares = m->u.noii.far_price;
		e->level_orders = (uint16_t)((uint8_t)m->u.noii.direction | (uint8_t)m->u.noii.cross_type << 8);
		break;
	case 'N':
		e->shares = (uint8_t)m->u.rpii.interest;
		break;
	case 'O':
		e->price = m->u.dlcr.near_price;
		e->ref = m->u.dlcr.near_time;
		e->aux = (uint64_t)m->u.dlcr.max_price << 32 | m->u.dlcr.min_price;
		e->shares = m->u.dlcr.lower_collar;
		e->level_shares = m->u.dlcr.upper_collar;
		e->level_orders = (uint8_t)m->u.dlcr.eligible;
		break;
	default:
		break;
	}
}

static void set_stock(struct wb_bookset *bs, struct book *b, uint16_t locate, const char stock[8])
{
	memcpy(b->stock, stock, 8);
	b->top_dirty |= NAME_DIRTY;
	if (!b->defined) {
		b->defined = 1;
		CNT_ADD(bs->symbols, 1);
	}
	book_touch(bs, b, locate);
}

/* An order whose locate is not the message's (a feed error, counted nowhere else): its
 * book changes too, so readers of it must retry. */
static HOT_INLINE struct book *other_begin(struct wb_bookset *bs, uint16_t locate, const struct order *o)
{
	uint16_t oloc = bs->levels[o->level].locate;

	if (__builtin_expect(oloc == locate, 1))
		return NULL;
	book_wbegin(&bs->books[oloc]);
	return &bs->books[oloc];
}

/* Applies one message; c carries the burst's context (seq set by the caller). */
static HOT_INLINE void apply_one(struct wb_bookset *bs, const struct wb_itch_msg *m, struct apply *c)
{
	struct wb_event_batch *out = c->out;
	struct book *b = NULL, *ob = NULL; /* ob: another book an order message reached */
	struct wb_event *e;
	struct order *o;
	uint32_t n0 = out->n;
	uint16_t loc = m->locate;

	c->ts = m->ts;
	c->flags = c->base;
	if (__builtin_expect(loc >= bs->opts.max_symbols, 0)) {
		e = integrity(c, NULL, loc, WB_INT_UNKNOWN_LOCATE, 0);
		e->aux = (uint8_t)m->type;
		goto out_mark_end;
	}
	b = book_of(bs, loc);
	CNT_ADD(b->msgs, 1);
	if (__builtin_expect(b->frozen | bs->stale, 0)) {
		c->flags |= WB_EVF_STALE;
		if (b->frozen && order_msg(m->type)) {
			/* a frozen book holds its state for inspection until an operator reset */
			CNT_ADD(b->held, 1);
			goto out_mark_end;
		}
	}

	book_wbegin(b);
	switch (m->type) {
	case 'A':
	case 'F':
		if (__builtin_expect(!side_ok[(uint8_t)m->u.add.side], 0)) {
			e = integrity(c, b, loc, WB_INT_BAD_SIDE, m->u.add.ref);
			e->aux = (uint8_t)m->u.add.side;
			break;
		}
		order_add(c, b, loc, m->u.add.ref, m->u.add.side == 'S' ? SIDE_ASK : SIDE_BID, m->u.add.price,
			  m->u.add.shares, WB_EV_ORDER_ADD, m->type == 'F' ? raw8(m->u.add.mpid, 4) : 0, 0);
		break;
	case 'E':
		o = order_find(c, b, loc, m->u.exec.ref);
		if (o == NULL)
			break;
		ob = other_begin(bs, loc, o);
		order_reduce(c, o, m->u.exec.ref, m->u.exec.shares, WB_EV_ORDER_EXEC, m->u.exec.match);
		break;
	case 'C': {
		o = order_find(c, b, loc, m->u.exec_px.ref);
		if (o == NULL)
			break;
		ob = other_begin(bs, loc, o);
		uint8_t side = side_char(bs->levels[o->level].side);
		uint32_t sh = order_reduce(c, o, m->u.exec_px.ref, m->u.exec_px.shares, WB_EV_ORDER_EXEC,
					   m->u.exec_px.match);

		e = emit(c, WB_EV_TRADE, loc);
		e->ref = m->u.exec_px.ref;
		e->aux = m->u.exec_px.match;
		e->price = m->u.exec_px.price;
		e->shares = sh;
		e->side = side;
		e->flags |= WB_EVF_WITH_PRICE | (m->u.exec_px.printable == 'N' ? WB_EVF_NONPRINTABLE : 0);
		break;
	}
	case 'X':
		o = order_find(c, b, loc, m->u.cancel.ref);
		if (o == NULL)
			break;
		ob = other_begin(bs, loc, o);
		order_reduce(c, o, m->u.cancel.ref, m->u.cancel.shares, WB_EV_ORDER_CANCEL, 0);
		break;
	case 'D':
		o = order_find(c, b, loc, m->u.del.ref);
		if (o == NULL)
			break;
		ob = other_begin(bs, loc, o);
		order_delete(c, o, m->u.del.ref, 0);
		break;
	case 'U': {
		o = order_find(c, b, loc, m->u.replace.old_ref);
		if (o == NULL)
			break;
		ob = other_begin(bs, loc, o);
		int side = bs->levels[o->level].side;
		uint16_t oloc = bs->levels[o->level].locate;

		order_delete(c, o, m->u.replace.old_ref, WB_EVF_REPLACE);
		/* the new order keeps the original's side and locate and joins the back of its queue */
		order_add(c, book_of(bs, oloc), oloc, m->u.replace.new_ref, side, m->u.replace.price,
			  m->u.replace.shares, WB_EV_ORDER_REPLACE, m->u.replace.old_ref, WB_EVF_REPLACE);
		break;
	}
	case 'P':
		e = emit(c, WB_EV_TRADE, loc);
		e->ref = m->u.trade.ref;
		e->side = (uint8_t)m->u.trade.side;
		e->shares = m->u.trade.shares;
		e->price = m->u.trade.price;
		e->aux = m->u.trade.match;
		break;
	case 'Q':
		e = emit(c, WB_EV_TRADE, loc);
		e->side = (uint8_t)m->u.cross.cross_type;
		e->shares = m->u.cross.shares > UINT32_MAX ? UINT32_MAX : (uint32_t)m->u.cross.shares;
		e->price = m->u.cross.price;
		e->aux = m->u.cross.match;
		e->flags |= WB_EVF_CROSS;
		break;
	case 'B':
		e = emit(c, WB_EV_TRADE_BREAK, loc);
		e->aux = m->u.broken.match;
		break;
	case 'R':
		set_stock(bs, b, loc, m->u.dir.stock);
		e = emit(c, WB_EV_SYMBOL, loc);
		e->aux = raw8(m->u.dir.stock, 8);
		e->side = (uint8_t)m->u.dir.market_category;
		e->shares = m->u.dir.round_lot_size;
		break;
	case 'H':
		b->trading_state = m->u.action.state;
		book_touch_pl(bs, b, loc);
		e = emit(c, WB_EV_STATUS, loc);
		e->side = (uint8_t)m->u.action.state;
		e->aux = raw8(m->u.action.reason, 4);
		break;
	case 'h':
		/* operational halt: 'h' while halted, 'T' when the market resumes it */
		b->trading_state = m->u.op_halt.action == 'H' ? 'h' : 'T';
		book_touch_pl(bs, b, loc);
		e = emit(c, WB_EV_STATUS, loc);
		e->side = (uint8_t)b->trading_state;
		e->aux = (uint8_t)m->u.op_halt.market_code | (uint64_t)(uint8_t)m->u.op_halt.action << 8;
		e->ref = 'h';
		break;
	case 'S':
		e = emit(c, WB_EV_SYSTEM, loc);
		e->side = (uint8_t)m->u.sys.event_code;
		break;
	default:
		apply_other(c, m);
		break;
	}
	if (order_msg(m->type)) {
		b->last_seq = c->seq;
		b->last_ts = c->ts;
		book_touch_pl(bs, b, loc);
	}
	if (__builtin_expect(ob != NULL, 0))
		book_wend(ob);
	book_wend(b);

out_mark_end:
	if (out->n > n0)
		out->ev[out->n - 1].flags |= WB_EVF_BATCH_END;
}

#define PREFETCH_AHEAD WB_BOOK_PREFETCH_MSGS /* messages between a burst's prefetch and its apply */
#define LEVEL_AHEAD 4	  /* messages between the second stage (the order's level) and the apply */

/* What the prefetch of a burst needs, read once per burst into locals: the event
 * stores of each apply (byte stores may alias anything) would otherwise make every
 * message reload them from the bookset. */
struct pf_ctx {
	const struct order *ring;
	const struct survivor *surv;
	const struct level *levels;
	const struct book *books;
	const struct lvent *arena;
	uint64_t ring_mask, nsurv_slots;
	uint64_t moved_below; /* a reference below this is a ring behind the newest, with survivors */
	uint64_t adds_mask;   /* pf_moves: the adds' survivor prefetch on or off */
	uint32_t max_symbols;
};

static inline void pf_ctx_init(const struct wb_bookset *bs, struct pf_ctx *pc)
{
	pc->ring = bs->ring;
	pc->levels = bs->levels;
	pc->surv = bs->surv;
	pc->books = bs->books;
	pc->arena = bs->arena;
	pc->ring_mask = bs->ring_mask;
	pc->nsurv_slots = bs->nsurv_slots;
	/* as of the burst's start: the newest reference moves by a packet at most meanwhile */
	pc->moved_below = bs->nsurv != 0 && bs->hi_ref > bs->ring_mask ? bs->hi_ref - bs->ring_mask : 0;
	pc->adds_mask = bs->pf_moves;
	pc->max_symbols = bs->opts.max_symbols;
}

/* What the first stage looks for besides the slots and the book: nothing (no survivors,
 * the adds' survivor prefetch off), the survivor slot of a reference a ring behind the
 * newest (a rare, predictable branch), or that and each add's eviction (branch-free). */
enum pf_mode { PF_LEAN, PF_MOVED, PF_FULL };

/* Starts loading the slots of m's references and m's book. Branch-free: the message type
 * is the least predictable thing on a feed, and a mispredicted switch here cost as much
 * as the loads it started. Fields of the union a type does not have are still in bounds
 * (ring and table indices are masked, the locate clamped): a few wasted prefetches. A F E
 * C X D U all carry the (old) reference first in the union. */
static HOT_INLINE void prefetch_msg(const struct pf_ctx *pc, const struct wb_itch_msg *m, enum pf_mode mode)
{
	/* selects by mask, not by ?: or &&, which gcc compiles to branches on the type */
	uint64_t ref = m->u.del.ref, is_u = -(uint64_t)(m->type == 'U');
	uint64_t ref2 = ref ^ ((ref ^ m->u.replace.new_ref) & is_u);
	uint64_t slot = (uint64_t)&pc->ring[ref & pc->ring_mask];
	uint32_t loc = m->locate < pc->max_symbols ? m->locate : 0;

	__builtin_prefetch((const void *)slot, 1, 3);
	__builtin_prefetch(&pc->ring[ref2 & pc->ring_mask], 1, 3);
	__builtin_prefetch(&pc->books[loc], 1, 3);
	if (mode == PF_LEAN)
		return;
	if (mode == PF_MOVED) {
		if (__builtin_expect(ref < pc->moved_below, 0))
			__builtin_prefetch(&pc->surv[fib_home(ref, pc->nsurv_slots)], 1, 3);
		return;
	}

	uint64_t adds = -(uint64_t)pf_adds[(uint8_t)m->type] & pc->adds_mask;
	/* a reference one ring behind the newest has most likely moved to the survivors; an
	 * add's slot is most likely held by the order one ring before it, if that is still
	 * live, and the survivor home it would move to depends on that reference alone (only
	 * while adds often move their slot's holder: pf_moves) */
	uint64_t moved = -(uint64_t)(ref < pc->moved_below);
	uint64_t sref = ref ^ ((ref ^ (ref2 - pc->ring_mask - 1)) & adds);
	uint64_t home = (uint64_t)&pc->surv[fib_home(sref, pc->nsurv_slots)];

	/* without it the wbsim day ran 10% slower (interleaved runs, docs/performance.md) */
	__builtin_prefetch((const void *)(slot ^ ((slot ^ home) & (moved | adds))), 1, 3);
}

/* The second stage, a few messages after the first: the slot and the book are cached by
 * now. The order's slot names its level (the head of a delete's, execution's, cancel's or
 * replace's chain: price, side, locate); the book's side arrays end at their best levels,
 * where an add's search starts, the cross check reads the other side, and an emptied
 * level's search looks. Unchecked: an empty slot names record 0, any slot a valid
 * record, an empty side its array's first entry. */
static HOT_INLINE void prefetch_second(const struct pf_ctx *pc, const struct wb_itch_msg *m)
{
	const struct book *b = &pc->books[m->locate < pc->max_symbols ? m->locate : 0];
	uint32_t n0 = b->side[0].n, n1 = b->side[1].n;

	__builtin_prefetch(&pc->levels[pc->ring[m->u.del.ref & pc->ring_mask].level], 1, 3);
	__builtin_prefetch(&pc->arena[b->side[0].off + n0 - (n0 != 0)], 0, 3);
	__builtin_prefetch(&pc->arena[b->side[1].off + n1 - (n1 != 0)], 0, 3);
}

#define PF_WINDOW 65536u /* adds between decisions on the adds' survivor prefetch */

/* Turns the adds' survivor prefetch on while more than one add in PF_MOVES_SHARE moved its
 * slot's holder over the last window (the wbsim day: one in four at the default ring, none
 * at 8x, where the prefetch made the day 12% slower). */
#define PF_MOVES_SHARE 8u
static void pf_window(struct wb_bookset *bs)
{
	uint64_t moves = CNT_GET(bs->survivor_moves) - bs->window_moves;
	uint64_t adds = CNT_GET(bs->arrivals) - bs->window_arrivals;

	bs->pf_moves = moves * PF_MOVES_SHARE > adds ? ~0ull : 0;
	bs->window_arrivals = CNT_GET(bs->arrivals);
	bs->window_moves = CNT_GET(bs->survivor_moves);
}

static inline void pf_window_check(struct wb_bookset *bs)
{
	if (__builtin_expect(CNT_GET(bs->arrivals) - bs->window_arrivals >= PF_WINDOW, 0))
		pf_window(bs);
}

/* What identifies a burst's first message to the hint that preceded it: the fields both
 * the hint's peek and the decode give alike for an order message; 0 for any other type,
 * whose union the decode may have left partly unwritten. */
static inline uint64_t hint_key_of(const struct wb_itch_msg *m)
{
	if (!order_type[(uint8_t)m->type])
		return 0;
	return m->u.del.ref ^ ((uint64_t)m->locate << 48) ^ ((uint64_t)(uint8_t)m->type << 40);
}

void wb_bookset_prefetch_itch_burst(struct wb_bookset *bs, const struct wb_itch_msg *msgs, uint32_t n)
{
	struct pf_ctx pc;
	uint32_t i;

	/* the lean stage (slots and book): a burst with survivors adds their lines itself */
	pf_ctx_init(bs, &pc);
	for (i = 0; i < n && i < PREFETCH_AHEAD; i++)
		prefetch_msg(&pc, &msgs[i], PF_LEAN);
	bs->hint_key[bs->hint_next] = n ? hint_key_of(&msgs[0]) : 0;
	bs->hint_n[bs->hint_next] = bs->hint_key[bs->hint_next] ? i : 0;
	bs->hint_next ^= 1;
}

void wb_bookset_prefetch_itch(const struct wb_bookset *bs, const struct wb_itch_msg *m)
{
	struct pf_ctx pc;

	pf_ctx_init(bs, &pc);
	prefetch_msg(&pc, m, PF_FULL);
}

int wb_bookset_apply_itch(struct wb_bookset *bs, const struct wb_itch_msg *m, const struct wb_msg_meta *meta,
			  struct wb_event_batch *out)
{
	struct apply c = { .bs = bs, .out = out };
	uint64_t overflow0;

	if (!bs || !m || !out)
		return -EINVAL;
	if (meta) {
		c.seq = meta->seq;
		c.ts_recv = meta->ts_recv;
		c.base = meta->flags;
	}
	overflow0 = out->overflow;
	CNT_ADD(bs->msgs, 1);
	apply_one(bs, m, &c);
	pf_window_check(bs);
	if (out->overflow != overflow0)
		CNT_ADD(bs->event_overflow, out->overflow - overflow0);
	return 0;
}

/* The burst's loop, compiled once per first-stage mode (pf_mode): with no survivors a
 * fifth of the stage's instructions go, and with survivors but the adds' prefetch off
 * (a ring large enough for the feed) the survivor hash is computed only for the rare old
 * reference. */
static HOT_INLINE void apply_burst(struct wb_bookset *bs, const struct pf_ctx *pcp, const struct wb_itch_msg *msgs,
				   const uint64_t *seqs, uint32_t n, struct apply *c, enum pf_mode mode)
{
	const struct pf_ctx pc = *pcp;
	uint32_t i = 0;

	/* the first messages have no earlier ones to hide their loads behind: start them all,
	 * unless the hint of the burst did the slots and books (a mismatch,
	 * as when the caller dropped duplicates the hint saw, just starts them again), then
	 * the levels of the first few, which the second stage below starts only from i + 4 */
	if (mode != PF_FULL && n) {
		uint64_t key = hint_key_of(&msgs[0]);
		unsigned h = key == bs->hint_key[1];

		if (key && bs->hint_n[h] && key == bs->hint_key[h]) {
			i = bs->hint_n[h];
			bs->hint_n[h] = 0;
		}
	}
	for (; i < n && i < PREFETCH_AHEAD; i++)
		prefetch_msg(&pc, &msgs[i], mode);
	for (i = 0; i < n && i < LEVEL_AHEAD; i++)
		prefetch_second(&pc, &msgs[i]);
	for (i = 0; i < n; i++) {
		if (i + PREFETCH_AHEAD < n)
			prefetch_msg(&pc, &msgs[i + PREFETCH_AHEAD], mode);
		/* second stage, four messages ahead (2 or 6 measured slower) */
		if (i + LEVEL_AHEAD < n)
			prefetch_second(&pc, &msgs[i + LEVEL_AHEAD]);
		c->seq = seqs[i];
		apply_one(bs, &msgs[i], c);
	}
}

int wb_bookset_apply_itch_burst(struct wb_bookset *bs, const struct wb_itch_msg *msgs, const uint64_t *seqs,
				uint32_t n, uint64_t ts_recv, uint8_t flags, struct wb_event_batch *out)
{
	struct apply c = { .bs = bs, .out = out, .ts_recv = ts_recv, .base = flags };
	struct pf_ctx pc;
	uint64_t overflow0;

	if (!bs || !out || (n && (!msgs || !seqs)))
		return -EINVAL;
	overflow0 = out->overflow;
	pf_ctx_init(bs, &pc);
	if (pc.adds_mask)
		apply_burst(bs, &pc, msgs, seqs, n, &c, PF_FULL);
	else if (pc.moved_below)
		apply_burst(bs, &pc, msgs, seqs, n, &c, PF_MOVED);
	else
		apply_burst(bs, &pc, msgs, seqs, n, &c, PF_LEAN);
	pf_window_check(bs);
	CNT_ADD(bs->msgs, n);
	if (out->overflow != overflow0)
		CNT_ADD(bs->event_overflow, out->overflow - overflow0);
	return 0;
}

/* Second stage, a few messages after the first: the slot and the book are cached by now,
 * so follow them to the order's level, or to the top of the side an add searches (and the
 * other side's best, which the cross check reads). Reads only; a stale guess costs a
 * wasted prefetch. */
void wb_bookset_prefetch_itch_deep(const struct wb_bookset *bs, const struct wb_itch_msg *m)
{
	const struct order *o;

	switch (m->type) {
	case 'A':
	case 'F': {
		if (m->locate >= bs->opts.max_symbols || (m->u.add.side != 'B' && m->u.add.side != 'S'))
			break;
		const struct side *sd = &bs->books[m->locate].side[m->u.add.side == 'S'];
		const struct side *opp = &bs->books[m->locate].side[m->u.add.side != 'S'];
		if (sd->n) {
			__builtin_prefetch(&bs->arena[sd->off + sd->n - 1], 0, 3);
			if (sd->n > 4)
				__builtin_prefetch(&bs->arena[sd->off + sd->n - 5], 0, 3);
		}
		if (opp->n)
			__builtin_prefetch(&bs->arena[opp->off + opp->n - 1], 0, 3);
		break;
	}
	case 'E':
	case 'C':
	case 'X':
	case 'D':
	case 'U':
		o = ring_slot(bs, m->u.del.ref);
		if (ring_holds(bs, o, m->u.del.ref))
			__builtin_prefetch(&bs->levels[o->level], 1, 3);
		break;
	default:
		break;
	}
}

/* ---------------------------------------------------------------- price-level books */

int wb_bookset_set_level(struct wb_bookset *bs, uint16_t locate, char side, int64_t price, uint32_t size,
			 bool batch_end, uint64_t ts_exch, const struct wb_msg_meta *meta, struct wb_event_batch *out)
{
	struct apply c = { .bs = bs, .out = out, .ts = ts_exch };
	struct wb_event *e;
	struct book *b;
	uint32_t n0;
	uint64_t overflow0;
	int s;

	if (!bs || !out)
		return -EINVAL;
	if (meta) {
		c.seq = meta->seq;
		c.ts_recv = meta->ts_recv;
		c.flags = meta->flags;
	}
	n0 = out->n;
	overflow0 = out->overflow;
	CNT_ADD(bs->msgs, 1);
	if (locate >= bs->opts.max_symbols) {
		integrity(&c, NULL, locate, WB_INT_UNKNOWN_LOCATE, 0);
		goto out_mark_end;
	}
	b = book_of(bs, locate);
	/* flag first, then the bracket: a live reader that sees the bracket sees the flag and
	 * moves to the snapshot, which shows batch ends only */
	if (!atomic_load_explicit(&b->price_level, memory_order_relaxed)) {
		bs->price_levels = 1;
		atomic_store_explicit(&b->price_level, 1, memory_order_release);
		b->top_dirty |= 3; /* its snapshot was never kept: write both sides at the next publish */
	}
	book_wbegin(b);
	CNT_ADD(b->msgs, 1);
	if (b->frozen | bs->stale)
		c.flags |= WB_EVF_STALE;
	if (side != 'B' && side != 'S') {
		e = integrity(&c, b, locate, WB_INT_BAD_SIDE, 0);
		e->aux = (uint8_t)side;
		e->price = price;
		goto out_batch;
	}
	if (b->frozen) {
		CNT_ADD(b->held, 1);
		goto out_batch;
	}
	s = side == 'B' ? SIDE_BID : SIDE_ASK;
	if (size == 0) {
		int found;
		uint32_t pos = side_search(bs, &b->side[s], side_key(s, price), &found);

		if (found) {
			top_mark(bs, b, s, price);
			level_drop(bs, b, s, bs->arena[b->side[s].off + pos].level);
		}
	} else {
		uint32_t li = level_get(bs, b, s, side_key(s, price), price);

		if (li == NIL) {
			CNT_ADD(bs->level_table_full, 1);
			e = integrity(&c, b, locate, WB_INT_LEVEL_TABLE_FULL, 0);
			e->price = price;
			e->shares = size;
			goto out_batch;
		}
		bs->levels[li].shares = size;
		top_mark(bs, b, s, price);
	}
	e = emit(&c, WB_EV_LEVEL, locate);
	e->side = (uint8_t)side;
	e->price = price;
	e->shares = size;
	e->level_shares = size;
	b->last_seq = c.seq;
	b->last_ts = ts_exch;

out_batch:
	/* a price-level batch may pass through crossed states; judge it only when complete */
	b->batch_open = !batch_end;
	book_touch(bs, b, locate);
	if (batch_end && !b->frozen) {
		const struct level *bid = side_best(bs, &b->side[SIDE_BID]);
		const struct level *ask = side_best(bs, &b->side[SIDE_ASK]);

		if (bid && ask && bid->price >= ask->price) {
			e = integrity(&c, b, locate, bid->price == ask->price ? WB_INT_LOCKED : WB_INT_CROSSED, 0);
			e->price = bid->price;
			e->aux = (uint64_t)ask->price;
		}
	}
	book_wend(b);
out_mark_end:
	if (batch_end && out->n > n0)
		out->ev[out->n - 1].flags |= WB_EVF_BATCH_END;
	if (out->overflow != overflow0)
		CNT_ADD(bs->event_overflow, out->overflow - overflow0);
	return 0;
}

int wb_bookset_define_symbol(struct wb_bookset *bs, uint16_t locate, const char stock[8])
{
	if (!bs || !stock)
		return -EINVAL;
	if (locate >= bs->opts.max_symbols)
		return -ERANGE;
	struct book *b = book_of(bs, locate);

	book_wbegin(b);
	set_stock(bs, b, locate, stock);
	book_wend(b);
	return 0;
}

void wb_bookset_set_trading_state(struct wb_bookset *bs, uint16_t locate, char state)
{
	if (!bs || locate >= bs->opts.max_symbols)
		return;
	book_wbegin(&bs->books[locate]);
	bs->books[locate].trading_state = state;
	book_wend(&bs->books[locate]);
	book_touch(bs, &bs->books[locate], locate);
}

/* ---------------------------------------------------------------- publish */

static uint32_t side_top(const struct wb_bookset *bs, const struct side *sd, uint32_t depth, struct wb_level *dst)
{
	uint32_t n = sd->n < depth ? sd->n : depth;

	if (n == 0)
		return 0;
	/* locals: the stores to dst would otherwise force reloads of every index each level */
	const struct lvent *best = bs->arena + sd->off + sd->n - 1;
	const struct level *levels = bs->levels;

	for (uint32_t i = 0; i < n; i++) {
		const struct level *lv = &levels[(best - i)->level];
		struct wb_level w = { .price = lv->price, .shares = lv->shares, .orders = lv->orders };

		dst[i] = w;
	}
	return n;
}

static void stock_copy(char dst[9], const char src[8])
{
	int n = 8;

	while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\0'))
		n--;
	memcpy(dst, src, (size_t)n);
	dst[n] = '\0';
}

static void snap_write(struct wb_bookset *bs, uint16_t locate)
{
	struct book *b = &bs->books[locate];
	struct snap *sn = snap_of(bs, locate);
	uint32_t depth = bs->opts.snapshot_depth;
	uint32_t s0 = atomic_load_explicit(&sn->seq, memory_order_relaxed);

	atomic_store_explicit(&sn->seq, s0 + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	/* most updates are deeper than the snapshot: then only the header changes */
	if (b->top_dirty & (1u << SIDE_BID))
		sn->nbids = side_top(bs, &b->side[SIDE_BID], depth, sn->levels);
	if (b->top_dirty & (1u << SIDE_ASK))
		sn->nasks = side_top(bs, &b->side[SIDE_ASK], depth, sn->levels + depth);
	sn->trading_state = b->trading_state;
	sn->health = atomic_load_explicit(&b->health, memory_order_relaxed);
	if (b->top_dirty & NAME_DIRTY)
		stock_copy(sn->stock, b->stock);
	b->top_dirty = 0;
	sn->ts_exch = b->last_ts;
	sn->last_seq = b->last_seq;
	atomic_store_explicit(&sn->seq, s0 + 2, memory_order_release);
}

/* Starts loading what snap_write will touch for one book: its snapshot lines and the
 * level records of the sides it rewrites, so a publish overlaps the misses of all its
 * books instead of taking them one after another. */
static void snap_prefetch(const struct wb_bookset *bs, uint16_t locate)
{
	const struct book *b = &bs->books[locate];
	const unsigned char *sn = (const unsigned char *)snap_of(bs, locate);
	uint32_t depth = bs->opts.snapshot_depth;

	__builtin_prefetch(sn, 1, 3);
	for (int s = 0; s < 2; s++) {
		const struct side *sd = &b->side[s];
		uint32_t n = sd->n < depth ? sd->n : depth;

		if (!(b->top_dirty & (1u << s)) || n == 0)
			continue;
		const struct lvent *best = bs->arena + sd->off + sd->n - 1;

		for (uint32_t i = 0; i < n; i++)
			__builtin_prefetch(&bs->levels[(best - i)->level], 0, 3);
		size_t first = offsetof(struct snap, levels) + (size_t)s * depth * sizeof(struct wb_level);

		for (size_t off = first & ~(size_t)63; off < first + n * sizeof(struct wb_level); off += 64)
			__builtin_prefetch(sn + off, 1, 3);
	}
}

void wb_bookset_publish(struct wb_bookset *bs)
{
	uint32_t keep = 0;

	if (!bs)
		return;
	for (uint32_t i = 0; i < bs->ndirty; i++)
		snap_prefetch(bs, bs->dirty_list[i]);
	for (uint32_t i = 0; i < bs->ndirty; i++) {
		uint16_t locate = bs->dirty_list[i];
		struct book *b = &bs->books[locate];

		if (b->batch_open) {
			/* readers only ever see a price-level book at a batch end */
			bs->dirty_list[keep++] = locate;
			continue;
		}
		snap_write(bs, locate);
		b->dirty = 0;
	}
	bs->ndirty = keep;
}

void wb_bookset_set_stale(struct wb_bookset *bs, bool stale)
{
	if (!bs)
		return;
	bs->stale = stale;
	for (uint32_t l = 0; l < bs->opts.max_symbols; l++)
		if (bs->books[l].defined)
			health_update(bs, &bs->books[l], (uint16_t)l);
}

/* ---------------------------------------------------------------- operator requests */

static void book_reset(struct wb_bookset *bs, struct book *b, uint16_t locate)
{
	book_wbegin(b);
	for (int s = 0; s < 2; s++) {
		struct side *sd = &b->side[s];

		for (uint32_t i = 0; i < sd->n; i++) {
			uint32_t li = bs->arena[sd->off + i].level;

			/* a level with orders stays a zombie, marking them stale, until the sweep
			 * has erased the last (a price-level book's levels have none) */
			if (bs->levels[li].orders)
				bs->levels[li].zombie = 1;
			else
				level_release(bs, li);
			CNT_SUB(bs->live_levels, 1);
		}
		side_release(bs, sd);
	}
	/* its orders turn stale in place, for the sweep to erase */
	uint32_t live = CNT_GET(b->live_orders);
	bs->stale_orders += live;
	CNT_ADD(bs->stale_pending, live);
	CNT_SUB(bs->live_orders, live);
	atomic_store_explicit(&b->live_orders, 0, memory_order_relaxed);
	b->top_dirty |= 3;
	b->frozen = 0;
	b->flagged = 0;
	b->batch_open = 0;
	/* inside the bracket: no reader sees the emptied book still marked frozen */
	health_update(bs, b, locate);
	book_wend(b);
	book_touch(bs, b, locate);
}

static void serve_requests(struct wb_bookset *bs)
{
	for (uint32_t l = 0; l < bs->opts.max_symbols; l++) {
		struct book *b = &bs->books[l];
		uint32_t req;

		if (!atomic_load_explicit(&b->request, memory_order_relaxed))
			continue;
		req = atomic_exchange_explicit(&b->request, 0, memory_order_acquire);
		if (req & REQ_RESET) {
			book_reset(bs, b, (uint16_t)l);
		} else if (req & REQ_FREEZE) {
			b->frozen = 1;
			health_update(bs, b, (uint16_t)l);
		}
	}
}

void wb_bookset_service(struct wb_bookset *bs)
{
	if (!bs)
		return;
	if (atomic_exchange_explicit(&bs->requests_pending, 0, memory_order_acquire))
		serve_requests(bs);
	if (bs->stale_orders)
		sweep_stale(bs, SWEEP_SLOTS);
}

static int post_request(struct wb_bookset *bs, uint16_t locate, uint32_t req)
{
	if (!bs)
		return -EINVAL;
	if (locate >= bs->opts.max_symbols)
		return -ENOENT;
	atomic_fetch_or_explicit(&bs->books[locate].request, req, memory_order_release);
	atomic_store_explicit(&bs->requests_pending, 1, memory_order_release);
	return 0;
}

int wb_bookset_request_freeze(struct wb_bookset *bs, uint16_t locate)
{
	return post_request(bs, locate, REQ_FREEZE);
}

int wb_bookset_request_reset(struct wb_bookset *bs, uint16_t locate)
{
	return post_request(bs, locate, REQ_RESET);
}

/* ---------------------------------------------------------------- readers */

static int defined(const struct wb_bookset *bs, uint32_t locate)
{
	return bs && locate < bs->opts.max_symbols && bs->books[locate].defined;
}

int wb_bookset_find(const struct wb_bookset *bs, const char *symbol)
{
	char want[9];
	size_t n;

	if (!bs || !symbol)
		return -EINVAL;
	n = strlen(symbol);
	while (n > 0 && symbol[n - 1] == ' ')
		n--;
	if (n == 0 || n > 8)
		return -ENOENT;
	memcpy(want, symbol, n);
	want[n] = '\0';
	for (uint32_t l = 0; l < bs->opts.max_symbols; l++) {
		char have[9];

		if (!bs->books[l].defined)
			continue;
		stock_copy(have, bs->books[l].stock);
		if (strcmp(have, want) == 0)
			return (int)l;
	}
	return -ENOENT;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

#define RD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* Up to depth levels of one side, best first, straight from the writer's arrays. The
 * values may be torn (the caller's seqlock check decides); the indices are bounded so a
 * torn one never reads outside the pools. False when an index is impossible. */
static bool side_read_live(const struct wb_bookset *bs, const struct side *sd, uint32_t depth, struct wb_level *dst,
			   uint32_t *n_out)
{
	uint32_t off = RD(sd->off), n = RD(sd->n);

	if (off > bs->arena_cap || n > bs->arena_cap - off)
		return false;
	uint32_t k = n < depth ? n : depth;

	for (uint32_t i = 0; i < k; i++) {
		uint32_t li = RD(bs->arena[off + n - 1 - i].level);

		if (li == NIL || li > bs->opts.max_levels)
			return false;
		const struct level *lv = &bs->levels[li];

		dst[i].price = RD(lv->price);
		dst[i].shares = RD(lv->shares);
		dst[i].orders = RD(lv->orders);
	}
	*n_out = k;
	return true;
}

/* An order book read live under its seqlock: no copy on the writer's side at all. */
static int read_top_live(const struct wb_bookset *bs, uint16_t locate, uint32_t depth, struct wb_top *out)
{
	struct book *b = &((struct wb_bookset *)bs)->books[locate];

	for (int tries = 0; tries < READ_RETRIES; tries++) {
		uint32_t s1 = atomic_load_explicit(&b->wseq, memory_order_acquire);
		uint64_t stock;

		if (s1 & 1) {
			cpu_relax();
			continue;
		}
		if (atomic_load_explicit(&b->price_level, memory_order_relaxed))
			return -EXDEV; /* became a price-level book: its snapshot shows batch ends */
		out->locate = locate;
		stock = RD(*(const uint64_t *)b->stock);
		out->trading_state = RD(b->trading_state);
		out->health = atomic_load_explicit(&b->health, memory_order_relaxed);
		out->ts_exch = RD(b->last_ts);
		out->seq = RD(b->last_seq);
		bool ok = side_read_live(bs, &b->side[SIDE_BID], depth, out->bids, &out->nbids) &&
			  side_read_live(bs, &b->side[SIDE_ASK], depth, out->asks, &out->nasks);

		atomic_thread_fence(memory_order_acquire);
		if (ok && atomic_load_explicit(&b->wseq, memory_order_relaxed) == s1) {
			char raw[8];

			memcpy(raw, &stock, 8);
			stock_copy(out->stock, raw);
			return 0;
		}
		cpu_relax();
	}
	return -EAGAIN;
}

int wb_bookset_read_top(const struct wb_bookset *bs, uint16_t locate, uint32_t depth, struct wb_top *out)
{
	const struct snap *sn;
	uint32_t sdepth;

	if (!bs || !out)
		return -EINVAL;
	if (!defined(bs, locate))
		return -ENOENT;
	sdepth = bs->opts.snapshot_depth;
	if (depth > sdepth)
		depth = sdepth;
	if (!atomic_load_explicit(&bs->books[locate].price_level, memory_order_acquire)) {
		int rc = read_top_live(bs, locate, depth, out);

		if (rc != -EXDEV)
			return rc;
	}
	sn = snap_of(bs, locate);
	for (int tries = 0; tries < READ_RETRIES; tries++) {
		uint32_t s1 = atomic_load_explicit(&((struct snap *)sn)->seq, memory_order_acquire);

		if (s1 & 1) {
			cpu_relax();
			continue;
		}
		out->locate = locate;
		memcpy(out->stock, sn->stock, sizeof(out->stock));
		out->trading_state = sn->trading_state;
		out->health = sn->health;
		out->nbids = sn->nbids < depth ? sn->nbids : depth;
		out->nasks = sn->nasks < depth ? sn->nasks : depth;
		memcpy(out->bids, sn->levels, out->nbids * sizeof(struct wb_level));
		memcpy(out->asks, sn->levels + sdepth, out->nasks * sizeof(struct wb_level));
		out->ts_exch = sn->ts_exch;
		out->seq = sn->last_seq;
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&((struct snap *)sn)->seq, memory_order_relaxed) == s1) {
			out->stock[8] = '\0';
			return 0;
		}
		cpu_relax();
	}
	return -EAGAIN;
}

int wb_bookset_symbol_stats(const struct wb_bookset *bs, uint16_t locate, struct wb_symbol_stats *out)
{
	struct book *b;

	if (!bs || !out)
		return -EINVAL;
	if (locate >= bs->opts.max_symbols)
		return -ENOENT;
	b = &((struct wb_bookset *)bs)->books[locate];
	memset(out, 0, sizeof(*out));
	out->locate = locate;
	stock_copy(out->stock, b->stock);
	out->trading_state = b->trading_state;
	out->health = atomic_load_explicit(&b->health, memory_order_relaxed);
	out->msgs = CNT_GET(b->msgs);
	for (int r = 0; r < WB_INT_REASON_MAX; r++)
		out->integrity[r] = CNT_GET(b->integrity[r]);
	out->integrity_total = CNT_GET(b->integrity_total);
	out->live_orders = CNT_GET(b->live_orders);
	out->held = CNT_GET(b->held);
	return 0;
}

int wb_bookset_next_symbol(const struct wb_bookset *bs, uint32_t from)
{
	if (!bs)
		return -EINVAL;
	for (uint32_t l = from; l < bs->opts.max_symbols; l++)
		if (bs->books[l].defined)
			return (int)l;
	return -ENOENT;
}

void wb_bookset_stats(const struct wb_bookset *bs, struct wb_bookset_stats *out)
{
	struct wb_bookset *w = (struct wb_bookset *)bs;

	if (!bs || !out)
		return;
	out->msgs = CNT_GET(w->msgs);
	out->live_orders = CNT_GET(w->live_orders);
	out->max_orders = bs->opts.max_orders;
	out->live_levels = CNT_GET(w->live_levels);
	out->max_levels = bs->opts.max_levels;
	out->order_table_full = CNT_GET(w->order_table_full);
	out->level_table_full = CNT_GET(w->level_table_full);
	out->integrity_total = CNT_GET(w->integrity_total);
	out->symbols = CNT_GET(w->symbols);
	out->event_overflow = CNT_GET(w->event_overflow);
	out->stale_orders = CNT_GET(w->stale_pending);
	out->survivor_moves = CNT_GET(w->survivor_moves);
	out->orders_added = CNT_GET(w->arrivals);
	out->memory_bytes = bs->memory_bytes;
}

uint8_t wb_bookset_price_decimals(const struct wb_bookset *bs)
{
	return bs ? bs->opts.price_decimals : 0;
}

size_t wb_bookset_walk_levels(const struct wb_bookset *bs, uint16_t locate, wb_level_cb cb, void *arg)
{
	size_t visited = 0;

	if (!bs || !cb || locate >= bs->opts.max_symbols)
		return 0;
	for (int s = 0; s < 2; s++) {
		const struct side *sd = &bs->books[locate].side[s];

		for (uint32_t i = sd->n; i > 0; i--) {
			const struct level *lv = &bs->levels[bs->arena[sd->off + i - 1].level];
			struct wb_level out = { .price = lv->price, .shares = lv->shares, .orders = lv->orders };

			cb(arg, (char)side_char(s), &out);
			visited++;
		}
	}
	return visited;
}

struct queued {
	uint64_t age; /* adds since it arrived: arrivals are stamped mod 2^32 */
	uint64_t ref;
	uint32_t shares;
};

static int queued_cmp(const void *a, const void *b)
{
	const struct queued *x = a, *y = b;

	return x->age > y->age ? -1 : x->age < y->age; /* oldest first */
}

size_t wb_bookset_walk_orders(const struct wb_bookset *bs, uint16_t locate, char side, int64_t price,
			      wb_order_cb cb, void *arg)
{
	const struct side *sd;
	size_t visited = 0;
	uint32_t pos;
	int s, found;

	if (!bs || !cb || locate >= bs->opts.max_symbols || (side != 'B' && side != 'S'))
		return 0;
	s = side == 'B' ? SIDE_BID : SIDE_ASK;
	sd = &bs->books[locate].side[s];
	pos = side_search(bs, sd, side_key(s, price), &found);
	if (!found)
		return 0;
	uint32_t li = bs->arena[sd->off + pos].level;
	const struct level *lv = &bs->levels[li];
	struct queued *q = malloc((size_t)lv->orders * sizeof(*q));
	uint32_t n = 0, now = (uint32_t)CNT_GET(bs->arrivals);

	if (!q)
		return 0;
	/* the queue is the level's orders by arrival: a scan of the tables (no links to follow) */
	for (uint64_t i = 0; i < table_slots(bs) && n < lv->orders; i++) {
		const struct order *o = table_slot(bs, i);

		if (o->level == li)
			q[n++] = (struct queued){ .age = (uint32_t)(now - o->arrival), .ref = order_ref(bs, o),
						  .shares = o->shares };
	}
	qsort(q, n, sizeof(*q), queued_cmp);
	for (uint32_t k = 0; k < n; k++) {
		struct wb_order_info info = { .ref = q[k].ref, .price = lv->price, .shares = q[k].shares, .side = side };

		cb(arg, &info);
		visited++;
	}
	free(q);
	return visited;
}

int wb_price_format(char *buf, size_t n, int64_t price, uint8_t decimals)
{
	uint64_t scale = 1, mag;
	const char *sign = "";
	int rc;

	if (!buf || n == 0)
		return -EINVAL;
	if (decimals > 18)
		decimals = 18;
	for (uint8_t i = 0; i < decimals; i++)
		scale *= 10;
	if (price < 0) {
		sign = "-";
		mag = (uint64_t)0 - (uint64_t)price;
	} else {
		mag = (uint64_t)price;
	}
	if (decimals == 0)
		rc = snprintf(buf, n, "%s%llu", sign, (unsigned long long)mag);
	else
		rc = snprintf(buf, n, "%s%llu.%0*llu", sign, (unsigned long long)(mag / scale), (int)decimals,
			      (unsigned long long)(mag % scale));
	if (rc < 0)
		return -EINVAL;
	return rc < (int)n ? rc : (int)n - 1;
}

/* From the control thread (config reload): the next integrity event follows the new
 * policy; books already flagged or frozen keep their state until reset. */
void wb_bookset_set_policy(struct wb_bookset *bs, enum wb_integrity_policy policy)
{
	__atomic_store_n(&bs->opts.policy, policy, __ATOMIC_RELAXED);
}
