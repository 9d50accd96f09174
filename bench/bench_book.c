/* bench_book: cost of applying one decoded ITCH message to the order-by-order books.
 *
 * Generates a day-like stream in memory (thousands of symbols, a million and more live
 * orders, 40% adds / 35% deletes / 15% replaces / executions, cancels, trades), prefills
 * the books, then times every message with rdtsc twice over the same stream: once only
 * building the decoded message (the baseline), once building and applying it. Prints
 * mean, p50/p99/p99.9/max of both, their difference and ratio, publish cost and memory.
 *
 * usage: bench_book [messages (default 6000000)] [symbols (default 4000)] [prefill (default 1500000)]
 *                   [prefetch distance (default 1: wb_bookset_prefetch_itch one message ahead; 0 = off)]
 *
 * bench_book day [messages (default 24000000)] [symbols (default 3000)] [seed (default 1)]
 *                [order ring slots (default 0: the power of two >= 4 x max orders)]
 *   (built when wbsim is): a wbsim day in Nasdaq file framing, replayed from memory the
 *   way a worker handles packets: decode a packet's worth of messages (32), apply them,
 *   publish once per 32 packets (a worker's rx burst). Passes on fresh books, after a
 *   parse-only baseline: "burst" (wb_bookset_apply_itch_burst per packet, as the worker
 *   does), "single" (one wb_bookset_apply_itch per message), "single-pf8" (plus
 *   wb_bookset_prefetch_itch 8 messages ahead) and "single-pf8-deep" (plus
 *   wb_bookset_prefetch_itch_deep at 4). Each pass runs twice: untimed for ns/message over
 *   the whole pass (decode + apply + publish), then with rdtsc around every message (every
 *   packet for bursts) for the distribution, with single passes' means by message type.
 *   WB_BENCH_PASS=name,repeats runs only that pass, untimed, repeats times (A/B runs);
 *   WB_BENCH_DAY_CACHE=FILE keeps the generated day in FILE for the next run. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#include "book.h"
#ifdef WB_BENCH_DAY
#include <sys/mman.h>

#include "day.h"
#include "itch.h"
#include "mold.h"
#endif

/* Compact generated message: what a decoder would hand over, in 32 bytes. */
struct rec {
	uint64_t ref, ref2; /* order ref; new ref (U) or match (E/C/P) */
	uint32_t shares, price;
	uint16_t locate;
	char type, side;
	uint8_t pad[4];
};

struct live {
	uint64_t ref;
	uint32_t shares, price;
	uint16_t locate;
	char side;
};

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static inline uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static inline double urand(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

/* Ticks away from the top: mostly near it, a long thin tail. */
static uint32_t depth_ticks(void)
{
	uint32_t d = 0;

	while (d < 400 && (rnd() & 3) != 0)
		d += (uint32_t)(1 + (rnd() & 1));
	return d;
}

struct gen {
	struct live *live;
	size_t nlive, cap;
	uint32_t *mid; /* per symbol */
	uint32_t nsyms;
	uint64_t next_ref, next_match;
};

static uint16_t pick_symbol(struct gen *g)
{
	double u = urand();

	/* activity skewed toward a few hundred busy names */
	return (uint16_t)(g->nsyms * u * u);
}

static void gen_add(struct gen *g, struct rec *r)
{
	uint16_t loc = pick_symbol(g);
	char side = rnd() & 1 ? 'B' : 'S';
	uint32_t tick = 100, d = depth_ticks();
	uint32_t price = side == 'B' ? g->mid[loc] - tick * (1 + d) : g->mid[loc] + tick * (1 + d);
	struct live *l = &g->live[g->nlive++];

	*r = (struct rec){ .ref = g->next_ref++, .shares = (uint32_t)(100 * (1 + rnd() % 10)), .price = price,
			   .locate = loc, .type = 'A', .side = side };
	*l = (struct live){ .ref = r->ref, .shares = r->shares, .price = price, .locate = loc, .side = side };
}

/* A live order: mostly a recent one (most orders die young), sometimes any. */
static size_t pick_live(struct gen *g)
{
	size_t recent = g->nlive < 8192 ? g->nlive : 8192;

	if (rnd() % 10 < 7)
		return g->nlive - 1 - rnd() % recent;
	return rnd() % g->nlive;
}

static void live_remove(struct gen *g, size_t i)
{
	g->live[i] = g->live[--g->nlive];
}

static void gen_one(struct gen *g, struct rec *r)
{
	unsigned k = (unsigned)(rnd() % 100);
	size_t i;

	if (k < 40 || g->nlive < 1000 || g->nlive + 1 >= g->cap) {
		if (g->nlive + 1 < g->cap) {
			gen_add(g, r);
			return;
		}
	}
	i = pick_live(g);
	struct live *l = &g->live[i];
	*r = (struct rec){ .ref = l->ref, .locate = l->locate, .side = l->side };
	if (k < 75) {
		r->type = 'D';
		live_remove(g, i);
	} else if (k < 90) {
		uint32_t d = depth_ticks();

		r->type = 'U';
		r->ref2 = g->next_ref++;
		r->shares = (uint32_t)(100 * (1 + rnd() % 10));
		r->price = l->side == 'B' ? g->mid[l->locate] - 100 * (1 + d) : g->mid[l->locate] + 100 * (1 + d);
		l->ref = r->ref2;
		l->shares = r->shares;
		l->price = r->price;
	} else if (k < 97) {
		r->type = k < 95 ? 'E' : 'C';
		r->ref2 = g->next_match++;
		r->shares = rnd() & 1 ? l->shares : (uint32_t)(1 + rnd() % l->shares);
		r->price = l->price;
		if (r->shares == l->shares)
			live_remove(g, i);
		else
			l->shares -= r->shares;
	} else if (k < 98) {
		r->type = 'X';
		r->shares = l->shares > 1 ? (uint32_t)(1 + rnd() % (l->shares - 1)) : 1;
		if (r->shares == l->shares)
			live_remove(g, i);
		else
			l->shares -= r->shares;
	} else {
		r->type = 'P';
		r->ref = 0;
		r->ref2 = g->next_match++;
		r->shares = 100;
		r->price = g->mid[r->locate];
	}
}

/* The "decoder": turns a compact record into the decoded message the book consumes. */
static inline void to_msg(const struct rec *r, uint64_t ts, struct wb_itch_msg *m)
{
	m->type = r->type;
	m->locate = r->locate;
	m->ts = ts;
	switch (r->type) {
	case 'A':
		m->u.add.ref = r->ref;
		m->u.add.side = r->side;
		m->u.add.shares = r->shares;
		m->u.add.price = r->price;
		break;
	case 'D':
		m->u.del.ref = r->ref;
		break;
	case 'U':
		m->u.replace.old_ref = r->ref;
		m->u.replace.new_ref = r->ref2;
		m->u.replace.shares = r->shares;
		m->u.replace.price = r->price;
		break;
	case 'E':
		m->u.exec.ref = r->ref;
		m->u.exec.shares = r->shares;
		m->u.exec.match = r->ref2;
		break;
	case 'C':
		m->u.exec_px.ref = r->ref;
		m->u.exec_px.shares = r->shares;
		m->u.exec_px.match = r->ref2;
		m->u.exec_px.printable = 'Y';
		m->u.exec_px.price = r->price;
		break;
	case 'X':
		m->u.cancel.ref = r->ref;
		m->u.cancel.shares = r->shares;
		break;
	case 'P':
		m->u.trade.ref = 0;
		m->u.trade.side = 'B';
		m->u.trade.shares = r->shares;
		m->u.trade.price = r->price;
		m->u.trade.match = r->ref2;
		break;
	}
}

static double tsc_per_ns(void)
{
	struct timespec a, b;
	uint64_t t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &a);
	t0 = __rdtsc();
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000000000ll + (b.tv_nsec - a.tv_nsec) < 200000000ll);
	t1 = __rdtsc();
	return (double)(t1 - t0) / (double)((b.tv_sec - a.tv_sec) * 1000000000ll + (b.tv_nsec - a.tv_nsec));
}

#define HIST 65536 /* cycles, 1-cycle buckets; beyond goes to the last bucket and max */

struct dist {
	uint64_t *hist;
	uint64_t n, sum, max;
	uint64_t type_n[256], type_sum[256]; /* per message type (day mode) */
};

static inline void dist_add(struct dist *d, uint64_t c)
{
	d->hist[c < HIST ? c : HIST - 1]++;
	d->n++;
	d->sum += c;
	if (c > d->max)
		d->max = c;
}

static double dist_pct(const struct dist *d, double p)
{
	uint64_t want = (uint64_t)(p * (double)d->n), acc = 0;

	for (uint64_t c = 0; c < HIST; c++) {
		acc += d->hist[c];
		if (acc > want)
			return (double)c;
	}
	return (double)d->max;
}

static void dist_print(const char *name, const struct dist *d, double tpn)
{
	printf("%-22s mean %7.1f  p50 %7.1f  p99 %7.1f  p99.9 %7.1f  max %9.1f ns\n", name,
	       (double)d->sum / (double)d->n / tpn, dist_pct(d, 0.5) / tpn, dist_pct(d, 0.99) / tpn,
	       dist_pct(d, 0.999) / tpn, (double)d->max / tpn);
}

#ifdef WB_BENCH_DAY
#ifndef DAY_BURST
#define DAY_BURST 32 /* messages decoded, then applied, per packet (-DDAY_BURST=N to vary) */
#endif

static double day_parse(const struct day *d, uint64_t *sink)
{
	struct wb_itch_file_iter it = { d->buf, d->buf + d->len };
	struct wb_itch_msg m;
	const uint8_t *p;
	uint16_t l;
	double t0 = now_s();

	while (wb_itch_file_next(&it, &p, &l) == 1) {
		wb_itch_decode(p, l, &m);
		*sink += m.ts ^ m.locate;
	}
	return now_s() - t0;
}

/* How a pass hands messages to the book. */
struct pass {
	const char *name;
	int burst;	    /* 1: wb_bookset_apply_itch_burst per packet (the worker's call); 2: and the
			     * next packet's first loads started before it (the worker's hint) */
	unsigned ahead;	    /* single calls: wb_bookset_prefetch_itch this many messages ahead */
	int deep;	    /* single calls: wb_bookset_prefetch_itch_deep at ahead / 2 */
	unsigned pub_every; /* packets between wb_bookset_publish calls */
	unsigned pkt_msgs;  /* messages per packet (at most DAY_BURST) */
};

static const struct pass passes[] = {
	/* what a worker does: a call per packet, the next one hinted, publish per rx burst */
	{ "burst", 2, 0, 0, 32, DAY_BURST },
	{ "burst-cold", 1, 0, 0, 32, DAY_BURST }, /* the same without the hint: each packet starts cold */
	/* small packets, as a quiet feed sends them (IEX DEEP's capture: 3.2 messages a packet) */
	{ "burst4", 2, 0, 0, 256, 4 },
	{ "burst4-cold", 1, 0, 0, 256, 4 },
	{ "single", 0, 0, 0, 32, DAY_BURST },
	{ "single-pf8", 0, 8, 0, 32, DAY_BURST },
	{ "single-pf8-deep", 0, 8, 1, 32, DAY_BURST },
};

/* One pass on fresh books; returns seconds. The timed pass fills dist: per message for
 * single calls, per packet for bursts (the TSC read inside a burst is not possible). */
static int day_book(const struct day *d, const struct wb_book_opts *bo, const struct pass *ps, struct dist *dist,
		    double *secs, uint64_t *publish_cycles, struct wb_bookset_stats *st)
{
	unsigned packets = 0;
	struct wb_itch_file_iter it = { d->buf, d->buf + d->len };
	struct wb_itch_msg burst[DAY_BURST];
	uint64_t seqs[DAY_BURST];
	struct wb_event ev[DAY_BURST * 4];
	struct wb_event_batch batch = { .ev = ev, .cap = DAY_BURST * 4 };
	struct wb_msg_meta meta = { 0 };
	struct wb_bookset *bs;
	uint64_t seq = 0;
	unsigned ahead = ps->ahead;
	int rc = wb_bookset_create(bo, &bs);

	if (rc)
		return rc;
	double t0 = now_s();
	for (;;) {
		unsigned n = day_next_burst(&it, burst, seqs, ps->pkt_msgs, &seq);

		if (n == 0)
			break;
		batch.n = 0;
		if (ps->burst) {
			uint64_t c0 = dist ? __rdtsc() : 0;

			/* the worker's hint: the next packet's first messages peeked at and their
			 * loads started, as the feed does */
			if (ps->burst == 2)
				day_hint(bs, &it, ps->pkt_msgs);
			wb_bookset_apply_itch_burst(bs, burst, seqs, n, 0, 0, &batch);
			if (dist)
				dist_add(dist, __rdtsc() - c0);
		} else {
			for (unsigned i = 0; i < ahead && i < n; i++)
				wb_bookset_prefetch_itch(bs, &burst[i]);
			/* the timed pass reads the TSC around every message; the untimed one gives ns/msg */
			for (unsigned i = 0; i < n; i++) {
				uint64_t c0 = dist ? __rdtsc() : 0;

				if (ahead && i + ahead < n)
					wb_bookset_prefetch_itch(bs, &burst[i + ahead]);
				if (ps->deep && i + ahead / 2 < n)
					wb_bookset_prefetch_itch_deep(bs, &burst[i + ahead / 2]);
				meta.seq = seqs[i];
				wb_bookset_apply_itch(bs, &burst[i], &meta, &batch);
				if (dist) {
					uint64_t c = __rdtsc() - c0;

					dist_add(dist, c);
					dist->type_n[(uint8_t)burst[i].type]++;
					dist->type_sum[(uint8_t)burst[i].type] += c;
				}
			}
		}
		if (++packets % ps->pub_every == 0) {
			uint64_t p0 = __rdtsc();
			wb_bookset_publish(bs);
			*publish_cycles += __rdtsc() - p0;
		}
	}
	wb_bookset_publish(bs);
	*secs = now_s() - t0;
	wb_bookset_stats(bs, st);
	st->event_overflow += batch.overflow;
	wb_bookset_destroy(bs);
	return 0;
}

static int day_main(int argc, char **argv)
{
	uint64_t messages = argc > 2 ? strtoull(argv[2], NULL, 10) : 24000000;
	uint32_t symbols = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 3000;
	uint64_t seed = argc > 4 ? strtoull(argv[4], NULL, 10) : 1;
	uint32_t ring = argc > 5 ? (uint32_t)strtoul(argv[5], NULL, 10) : 0;
	struct day d = { 0 };
	uint64_t sink = 0;
	double tpn, tparse = 1e9;
	int rc;

	const char *cache = getenv("WB_BENCH_DAY_CACHE");

	if (!cache || !day_load(&d, cache, messages, symbols, seed)) {
		rc = day_generate(&d, messages, symbols, seed);
		if (rc) {
			fprintf(stderr, "bench_book: wbsim: %s\n", strerror(-rc));
			return 1;
		}
		if (cache)
			day_save(&d, cache, messages, symbols, seed);
	}
	/* a worker's memory is resident: no page faults inside the timed passes */
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		fprintf(stderr, "bench_book: mlockall: %s (continuing)\n", strerror(errno));
	struct wb_book_opts bo = {
		.max_orders = (uint32_t)(d.ss.peak_live_orders + d.ss.peak_live_orders / 4 + 1024),
		.max_levels = (uint32_t)(d.ss.peak_live_orders / 2 + 65536),
		.max_symbols = symbols + 1, .snapshot_depth = 10, .price_decimals = 4,
		.policy = WB_POLICY_FLAG, .numa_node = -1, .order_ring = ring,
	};
	tpn = tsc_per_ns();
	printf("bench_book day: %llu messages, %u symbols, seed %llu, %.0f MB; A+F %.1f%% D %.1f%% U %.1f%% "
	       "E+C %.1f%% X %.1f%%; orders added %llu, live at peak %llu; TSC %.3f GHz\n",
	       (unsigned long long)d.msgs, symbols, (unsigned long long)seed, (double)d.len / 1e6,
	       100.0 * (double)(d.ss.per_type['A'] + d.ss.per_type['F']) / (double)d.msgs,
	       100.0 * (double)d.ss.per_type['D'] / (double)d.msgs, 100.0 * (double)d.ss.per_type['U'] / (double)d.msgs,
	       100.0 * (double)(d.ss.per_type['E'] + d.ss.per_type['C']) / (double)d.msgs,
	       100.0 * (double)d.ss.per_type['X'] / (double)d.msgs, (unsigned long long)d.ss.orders_added,
	       (unsigned long long)d.ss.peak_live_orders, tpn);
	/* WB_BENCH_PASS=name,repeats: only that pass, untimed, repeated (A/B comparisons of
	 * two builds on a noisy machine want many short samples) */
	const char *only = getenv("WB_BENCH_PASS");
	if (only) {
		char name[32];
		unsigned orep = 1;
		const struct pass *ps = NULL;

		if (sscanf(only, "%31[^,],%u", name, &orep) < 1)
			name[0] = '\0';
		for (size_t k = 0; k < sizeof(passes) / sizeof(passes[0]); k++)
			if (strcmp(passes[k].name, name) == 0)
				ps = &passes[k];
		if (!ps) {
			fprintf(stderr, "bench_book: WB_BENCH_PASS=%s: no such pass (burst, burst-cold, burst4, "
					"burst4-cold, single, single-pf8, single-pf8-deep)\n", only);
			return 2;
		}
		/* the first walk over a freshly loaded stream runs 2-3x slower (seen with the day
		 * read from WB_BENCH_DAY_CACHE): walk it once untimed, as the full run's parse
		 * passes do */
		(void)day_parse(&d, &sink);
		for (unsigned r = 0; r < orep; r++) {
			struct wb_bookset_stats st;
			double secs;
			uint64_t pub = 0;

			if (day_book(&d, &bo, ps, NULL, &secs, &pub, &st))
				return 1;
			printf("pass %s: %.1f ns/msg (%llu moved to survivors)\n", ps->name, secs * 1e9 / (double)d.msgs, (unsigned long long)st.survivor_moves);
		}
		free(d.buf);
		return 0;
	}
	for (int r = 0; r < 3; r++) {
		double t = day_parse(&d, &sink);
		tparse = t < tparse ? t : tparse;
	}
	printf("parse only (framing + decode, best of 3)   %6.1f ns/msg\n", tparse * 1e9 / (double)d.msgs);
	for (size_t k = 0; k < sizeof(passes) / sizeof(passes[0]); k++) {
		const struct pass *ps = &passes[k];
		struct dist dist = { .hist = calloc(HIST, sizeof(uint64_t)) };
		struct wb_bookset_stats st;
		double secs, tsecs;
		uint64_t pub = 0, tpub = 0;

		if (!dist.hist)
			return 1;
		rc = day_book(&d, &bo, ps, NULL, &secs, &pub, &st);
		if (!rc)
			rc = day_book(&d, &bo, ps, &dist, &tsecs, &tpub, &st);
		if (rc) {
			fprintf(stderr, "bench_book: wb_bookset_create: %s\n", strerror(-rc));
			return 1;
		}
		printf("parse + book, %-16s: %6.1f ns/msg (%.1f M msg/s, x%.1f parse)\n", ps->name,
		       secs * 1e9 / (double)d.msgs, (double)d.msgs / secs / 1e6, secs / tparse);
		if (ps->burst) {
			dist_print("  timed pass: per packet", &dist, tpn);
		} else {
			dist_print("  timed pass: per message", &dist, tpn);
			printf("  mean by type (ns, share):");
			for (int t = 0; t < 256; t++)
				if (dist.type_n[t] * 1000 >= dist.n)
					printf(" %c %.1f (%.1f%%)", t,
					       (double)dist.type_sum[t] / (double)dist.type_n[t] / tpn,
					       100.0 * (double)dist.type_n[t] / (double)dist.n);
			printf("\n");
		}
		printf("  publish: %.1f ns/msg; timed pass total %.1f ns/msg\n", (double)pub / tpn / (double)d.msgs,
		       tsecs * 1e9 / (double)d.msgs);
		if (k == 0)
			printf("  book: %llu live orders at end, %llu levels, %llu moved to survivors, integrity %llu, "
			       "table full %llu/%llu, overflow %llu, memory %.1f MiB for %llu orders / %llu levels\n",
			       (unsigned long long)st.live_orders, (unsigned long long)st.live_levels,
			       (unsigned long long)st.survivor_moves,
			       (unsigned long long)st.integrity_total, (unsigned long long)st.order_table_full,
			       (unsigned long long)st.level_table_full, (unsigned long long)st.event_overflow,
			       (double)st.memory_bytes / 1048576.0, (unsigned long long)st.max_orders,
			       (unsigned long long)st.max_levels);
		free(dist.hist);
	}
	fprintf(stderr, "(sink %llu)\n", (unsigned long long)sink);
	free(d.buf);
	return 0;
}
#endif

int main(int argc, char **argv)
{
#ifdef WB_BENCH_DAY
	if (argc > 1 && strcmp(argv[1], "day") == 0)
		return day_main(argc, argv);
#endif
	size_t nmsgs = argc > 1 ? strtoull(argv[1], NULL, 10) : 6000000;
	uint32_t nsyms = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 4000;
	size_t prefill = argc > 3 ? strtoull(argv[3], NULL, 10) : 1500000;
	size_t ahead = argc > 4 ? strtoull(argv[4], NULL, 10) : 1;
	struct gen g = { .cap = 3000000, .nsyms = nsyms, .next_ref = 1, .next_match = 1 };
	struct wb_book_opts o = {
		.max_orders = 3000000, .max_levels = 1500000, .max_symbols = nsyms, .snapshot_depth = 10,
		.price_decimals = 4, .feed = 0, .policy = WB_POLICY_FLAG, .numa_node = 0,
	};
	struct wb_event ev[16];
	struct wb_event_batch batch = { .ev = ev, .cap = 16 };
	struct dist base = { 0 }, full = { 0 };
	struct wb_bookset *bs;
	struct wb_bookset_stats st;
	struct rec *pre, *recs;
	uint64_t counts[256] = { 0 }, publish_cyc = 0, publishes = 0, sink = 0;
	double tpn;
	int rc;

	if (nsyms == 0 || nsyms > WB_BOOK_MAX_LOCATES || prefill >= g.cap) {
		fprintf(stderr, "bench_book: bad arguments\n");
		return 2;
	}
	g.live = calloc(g.cap, sizeof(*g.live));
	g.mid = calloc(nsyms, sizeof(*g.mid));
	pre = calloc(prefill, sizeof(*pre));
	recs = calloc(nmsgs, sizeof(*recs));
	base.hist = calloc(HIST, sizeof(uint64_t));
	full.hist = calloc(HIST, sizeof(uint64_t));
	if (!g.live || !g.mid || !pre || !recs || !base.hist || !full.hist) {
		fprintf(stderr, "bench_book: out of memory\n");
		return 1;
	}
	for (uint32_t s = 0; s < nsyms; s++)
		g.mid[s] = (uint32_t)(100000 + rnd() % 5000000) / 100 * 100 + 50; /* $10-$510, between ticks */
	for (size_t i = 0; i < prefill; i++)
		gen_add(&g, &pre[i]);
	for (size_t i = 0; i < nmsgs; i++) {
		gen_one(&g, &recs[i]);
		counts[(uint8_t)recs[i].type]++;
	}

	rc = wb_bookset_create(&o, &bs);
	if (rc) {
		fprintf(stderr, "bench_book: wb_bookset_create: %s\n", strerror(-rc));
		return 1;
	}
	for (uint32_t s = 0; s < nsyms; s++) {
		char sym[9];
		snprintf(sym, sizeof(sym), "S%-7u", s % 10000000u);
		wb_bookset_define_symbol(bs, (uint16_t)s, sym);
	}
	for (size_t i = 0; i < prefill; i++) {
		struct wb_itch_msg m;
		struct wb_msg_meta meta = { .seq = i + 1 };

		to_msg(&pre[i], i, &m);
		batch.n = 0;
		wb_bookset_apply_itch(bs, &m, &meta, &batch);
	}
	wb_bookset_publish(bs);
	tpn = tsc_per_ns();

	/* baseline: the same loop and timer, building the message but not applying it */
	for (size_t i = 0; i < nmsgs; i++) {
		struct wb_itch_msg m;
		uint64_t t0 = __rdtsc();

		to_msg(&recs[i], i, &m);
		sink += m.u.add.ref ^ m.locate;
		__asm__ volatile("" ::"g"(&m) : "memory");
		uint64_t t1 = __rdtsc();
		dist_add(&base, t1 - t0);
	}
	for (size_t i = 0; i < nmsgs; i++) {
		struct wb_itch_msg m;
		struct wb_msg_meta meta = { .seq = prefill + i + 1 };
		uint64_t t0 = __rdtsc();

		/* as a worker does over a burst: the next message is decoded before this one applies */
		if (ahead && i + ahead < nmsgs) {
			struct wb_itch_msg next;

			to_msg(&recs[i + ahead], i + ahead, &next);
			wb_bookset_prefetch_itch(bs, &next);
		}
		to_msg(&recs[i], i, &m);
		batch.n = 0;
		wb_bookset_apply_itch(bs, &m, &meta, &batch);
		uint64_t t1 = __rdtsc();
		dist_add(&full, t1 - t0);
		sink += batch.n;
		/* a packet holds ~16 messages: publish as the worker would, timed apart */
		if ((i & 15) == 15) {
			uint64_t p0 = __rdtsc();
			wb_bookset_publish(bs);
			publish_cyc += __rdtsc() - p0;
			publishes++;
		}
	}
	wb_bookset_stats(bs, &st);

	printf("bench_book: %zu messages, %u symbols, prefill %zu orders, prefetch %zu ahead, TSC %.3f GHz\n", nmsgs,
	       nsyms, prefill, ahead, tpn);
	printf("mix: A %.1f%%  D %.1f%%  U %.1f%%  E %.1f%%  C %.1f%%  X %.1f%%  P %.1f%%\n",
	       100.0 * counts['A'] / nmsgs, 100.0 * counts['D'] / nmsgs, 100.0 * counts['U'] / nmsgs,
	       100.0 * counts['E'] / nmsgs, 100.0 * counts['C'] / nmsgs, 100.0 * counts['X'] / nmsgs,
	       100.0 * counts['P'] / nmsgs);
	dist_print("baseline (build msg)", &base, tpn);
	dist_print("build + apply", &full, tpn);
	printf("apply alone (mean)     %.1f ns;  ratio build+apply / baseline %.2fx\n",
	       ((double)full.sum - (double)base.sum) / (double)nmsgs / tpn, (double)full.sum / (double)base.sum);
	printf("publish per 16 msgs    %.1f ns mean\n", (double)publish_cyc / (double)publishes / tpn);
	printf("live orders %llu (max %llu), live levels %llu (max %llu), integrity %llu, table full %llu/%llu\n",
	       (unsigned long long)st.live_orders, (unsigned long long)st.max_orders,
	       (unsigned long long)st.live_levels, (unsigned long long)st.max_levels,
	       (unsigned long long)st.integrity_total, (unsigned long long)st.order_table_full,
	       (unsigned long long)st.level_table_full);
	printf("memory %.1f MiB preallocated (%.1f bytes per max order incl. levels and snapshots)\n",
	       (double)st.memory_bytes / 1048576.0, (double)st.memory_bytes / (double)st.max_orders);
	fprintf(stderr, "(sink %llu)\n", (unsigned long long)sink);
	wb_bookset_destroy(bs);
	free(base.hist);
	free(full.hist);
	free(recs);
	free(pre);
	free(g.mid);
	free(g.live);
	return 0;
}
