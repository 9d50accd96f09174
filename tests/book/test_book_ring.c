/* The order ring and its survivor table against a naive model: references in and out of
 * order, re-added after a delete or an eviction, duplicates of evicted orders, ref 0 and
 * references that wrap 2^64, a 16-slot ring where almost every order is a survivor, a
 * table exactly full, and operator resets whose stale orders are swept a part at a time
 * while other orders shift backwards across the sweep and the table's end. Every message's
 * events are predicted field by field from the model, and the same stream goes through
 * wb_bookset_apply_itch_burst on a twin bookset, whose events must be the same. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "book_fixture.h"
#include "naive_book.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
	return fx_xorshift(&rng_state);
}

/* ---------------------------------------------------------------- events */

static int ev_same(const struct wb_event *x, const struct wb_event *y)
{
	return x->type == y->type && x->side == y->side && x->ref == y->ref && x->locate == y->locate &&
	       x->price == y->price && x->shares == y->shares && x->level_shares == y->level_shares &&
	       x->level_orders == y->level_orders && x->aux == y->aux && x->flags == y->flags && x->seq == y->seq &&
	       x->ts_exch == y->ts_exch && x->ts_recv == y->ts_recv && x->feed == y->feed;
}

static void ev_print(const char *what, const struct wb_event *e)
{
	print_message("%s: type %u side %u ref %llu loc %u price %lld shares %u lvl %u/%u aux %llu flags 0x%x seq %llu\n",
		      what, e->type, e->side, (unsigned long long)e->ref, e->locate, (long long)e->price, e->shares,
		      e->level_shares, e->level_orders, (unsigned long long)e->aux, e->flags,
		      (unsigned long long)e->seq);
}

/* Field by field (the record's layout is not part of the comparison). */
static void assert_events_equal(const struct wb_event *want, uint32_t nwant, const struct wb_event *got, uint32_t ngot,
				const char *ctx)
{
	if (nwant != ngot)
		print_message("%s: %u events expected, %u seen\n", ctx, nwant, ngot);
	for (uint32_t i = 0; i < nwant && i < ngot; i++)
		if (!ev_same(&want[i], &got[i])) {
			print_message("%s: event %u differs\n", ctx, i);
			ev_print("  want", &want[i]);
			ev_print("  got ", &got[i]);
			fail();
		}
	if (nwant != ngot) {
		for (uint32_t i = 0; i < nwant; i++)
			ev_print("  want", &want[i]);
		for (uint32_t i = 0; i < ngot; i++)
			ev_print("  got ", &got[i]);
	}
	assert_int_equal(nwant, ngot);
}

/* ---------------------------------------------------------------- the simulation */

#define NSYM 3 /* locates 1..NSYM */
#define MAX_BURST 40
#define ACC_CAP (4 * MAX_BURST + 8)
#define DEAD_CAP 512

struct cfg {
	const char *name;
	uint32_t ring, max_orders, live_cap;
	int steps;
	uint64_t ref_base;    /* first monotonic reference (may wrap 2^64) */
	uint32_t stride;      /* monotonic references advance 1..stride */
	const uint64_t *pool; /* when set, adds draw pool_pct of their references from it */
	size_t npool;
	unsigned pool_pct;
	unsigned add_pct;  /* share of messages that add while below live_cap */
	int reset_every;   /* mean messages between operator resets */
	int service_every; /* mean messages between service calls */
	int refill;        /* after the run, fill the table to exactly max_orders again */
};

struct sim {
	const struct cfg *cfg;
	struct fx a; /* one wb_bookset_apply_itch per message */
	struct fx b; /* the same stream through wb_bookset_apply_itch_burst */
	struct naive nv;
	size_t live;
	uint64_t *stale; /* references of orders a reset left stale that the book may still hold */
	size_t nstale, stale_cap;
	uint64_t dead[DEAD_CAP];
	unsigned ndead, dead_pos;
	uint64_t mono;
	uint64_t integ[NSYM + 1][WB_INT_REASON_MAX];
	uint64_t table_full;
	/* the open burst */
	struct wb_itch_msg pend[MAX_BURST];
	uint64_t pseq[MAX_BURST];
	uint32_t npend, blen;
	struct wb_event acc[ACC_CAP];
	uint32_t nacc;
	struct wb_event bev[ACC_CAP];
	uint64_t seq, ts, ts_recv;
	uint8_t flags;
	uint64_t step;
	/* what the stream reached */
	uint64_t n_add, n_dup, n_unknown, n_stale_touch, n_full, n_resets, n_partial, n_too_large, n_bursts;
	uint64_t n_stale_readd, n_dead_readd, n_nonmono;
};

static void stale_push(struct sim *s, uint64_t ref)
{
	if (s->nstale == s->stale_cap) {
		s->stale_cap = s->stale_cap ? 2 * s->stale_cap : 256;
		s->stale = realloc(s->stale, s->stale_cap * sizeof(*s->stale));
		assert_non_null(s->stale);
	}
	s->stale[s->nstale++] = ref;
}

/* A message touched ref: if a reset left it stale, the book erases it (if not swept yet). */
static int stale_take(struct sim *s, uint64_t ref)
{
	for (size_t i = 0; i < s->nstale; i++)
		if (s->stale[i] == ref) {
			s->stale[i] = s->stale[--s->nstale];
			s->n_stale_touch++;
			return 1;
		}
	return 0;
}

static void dead_push(struct sim *s, uint64_t ref)
{
	s->dead[s->dead_pos] = ref;
	s->dead_pos = (s->dead_pos + 1) % DEAD_CAP;
	if (s->ndead < DEAD_CAP)
		s->ndead++;
}

static struct norder *pick_live(struct sim *s)
{
	if (s->live == 0 || s->nv.n == 0)
		return NULL;
	size_t start = rnd() % s->nv.n;

	for (size_t k = 0; k < s->nv.n; k++) {
		struct norder *o = &s->nv.o[(start + k) % s->nv.n];
		if (o->live)
			return o;
	}
	return NULL;
}

static void m_level(const struct naive *nv, uint16_t loc, char side, int64_t price, uint64_t *shares, uint32_t *orders)
{
	*shares = 0;
	*orders = 0;
	for (size_t i = 0; i < nv->n; i++) {
		const struct norder *o = &nv->o[i];
		if (o->live && o->locate == loc && o->side == side && o->price == price) {
			*shares += o->shares;
			(*orders)++;
		}
	}
}

static int64_t rnd_price(char side)
{
	/* ten levels a side, never locked or crossed */
	return side == 'B' ? 9990 + (int64_t)(rnd() % 10) : 10001 + (int64_t)(rnd() % 10);
}

/* ---- expected events ---- */

struct want {
	struct wb_event ev[8];
	uint32_t n;
};

static struct wb_event *want_base(struct sim *s, struct want *w, const struct wb_itch_msg *m, uint8_t type, uint16_t loc)
{
	struct wb_event *e = &w->ev[w->n++];

	memset(e, 0, sizeof(*e));
	e->ts_exch = m->ts;
	e->ts_recv = s->ts_recv;
	e->seq = s->seq;
	e->type = type;
	e->locate = loc;
	e->feed = 3;
	e->flags = s->flags;
	return e;
}

static void want_order(struct sim *s, struct want *w, const struct wb_itch_msg *m, uint8_t type, uint16_t loc, char side,
		       uint64_t ref, uint64_t aux, int64_t price, uint32_t shares, uint8_t flags)
{
	struct wb_event *e = want_base(s, w, m, type, loc);
	uint64_t lsh;
	uint32_t lord;

	m_level(&s->nv, loc, side, price, &lsh, &lord);
	e->side = (uint8_t)side;
	e->ref = ref;
	e->aux = aux;
	e->price = price;
	e->shares = shares;
	e->level_shares = (uint32_t)lsh;
	e->level_orders = (uint16_t)lord;
	e->flags |= flags;
}

static struct wb_event *want_integ(struct sim *s, struct want *w, const struct wb_itch_msg *m, uint16_t loc,
				   uint8_t reason, uint64_t ref)
{
	struct wb_event *e = want_base(s, w, m, WB_EV_INTEGRITY, loc);

	e->side = reason;
	e->ref = ref;
	s->integ[loc][reason]++;
	return e;
}

/* The add of ref (an A, or the new half of a U): duplicate, table full, or a new order at
 * the back of its queue. stale0: the book's stale orders before the message; got: what the
 * book emitted, consulted only where the model cannot know (see below). */
static void expect_add(struct sim *s, struct want *w, const struct wb_itch_msg *m, uint16_t loc, uint64_t ref, char side,
		       int64_t price, uint32_t shares, uint8_t type, uint64_t aux, uint8_t flags, uint64_t stale0,
		       const struct wb_event *got, uint32_t ngot)
{
	if (naive_find(&s->nv, ref)) {
		struct wb_event *e = want_integ(s, w, m, loc, WB_INT_DUPLICATE_ORDER, ref);
		e->price = price;
		e->shares = shares;
		s->n_dup++;
		return;
	}
	int was_stale = stale_take(s, ref);
	int full_if_gone = s->live + stale0 - (uint64_t)was_stale >= s->cfg->max_orders;
	int full_if_kept = s->live + stale0 >= s->cfg->max_orders;
	int full = full_if_kept;

	if (full_if_gone != full_if_kept) {
		/* a stale order of this reference frees its slot if the sweep has not already:
		 * the model does not know which, either answer is right */
		uint32_t i = w->n;
		full = i < ngot && got[i].type == WB_EV_INTEGRITY && got[i].side == WB_INT_ORDER_TABLE_FULL;
	}
	if (full) {
		struct wb_event *e = want_integ(s, w, m, loc, WB_INT_ORDER_TABLE_FULL, ref);
		e->price = price;
		e->shares = shares;
		s->table_full++;
		s->n_full++;
		return;
	}
	naive_add(&s->nv, loc, ref, side, price, shares);
	s->live++;
	s->n_add++;
	s->n_stale_readd += (uint64_t)was_stale;
	want_order(s, w, m, type, loc, side, ref, aux, price, shares, flags);
}

static void order_gone(struct sim *s, struct norder *o)
{
	o->live = 0;
	s->live--;
	dead_push(s, o->ref);
}

/* Applies m to the model and lists the events the book must emit for it. */
/* The live order an E/C/X/D/U names; NULL, with the unknown-order event it predicts (a
 * stale reference is erased on the way), when there is none. */
static struct norder *expect_find(struct sim *s, struct want *w, const struct wb_itch_msg *m, uint64_t ref)
{
	struct norder *o = naive_find(&s->nv, ref);

	if (!o) {
		stale_take(s, ref);
		want_integ(s, w, m, m->locate, WB_INT_UNKNOWN_ORDER, ref);
		s->n_unknown++;
	}
	return o;
}

static void expect_msg(struct sim *s, const struct wb_itch_msg *m, uint64_t stale0, const struct wb_event *got,
		       uint32_t ngot, struct want *w)
{
	struct norder *o;
	uint64_t ref;

	w->n = 0;
	switch (m->type) {
	case 'A':
	case 'F': {
		uint64_t aux = 0;
		if (m->type == 'F')
			memcpy(&aux, m->u.add.mpid, 4);
		expect_add(s, w, m, m->locate, m->u.add.ref, m->u.add.side, m->u.add.price, m->u.add.shares,
			   WB_EV_ORDER_ADD, aux, 0, stale0, got, ngot);
		break;
	}
	case 'E':
	case 'C':
	case 'X': {
		uint32_t q = m->type == 'E' ? m->u.exec.shares : m->type == 'C' ? m->u.exec_px.shares : m->u.cancel.shares;
		uint64_t match = m->type == 'E' ? m->u.exec.match : m->type == 'C' ? m->u.exec_px.match : 0;

		ref = m->type == 'E' ? m->u.exec.ref : m->type == 'C' ? m->u.exec_px.ref : m->u.cancel.ref;
		o = expect_find(s, w, m, ref);
		if (!o)
			break;
		uint16_t ol = o->locate;
		char sd = o->side;
		int64_t px = o->price;
		uint32_t applied = q;

		if (q > o->shares) {
			struct wb_event *e = want_integ(s, w, m, ol, WB_INT_EXEC_TOO_LARGE, ref);
			e->price = px;
			e->shares = o->shares;
			e->aux = q;
			applied = o->shares;
			s->n_too_large++;
		}
		o->shares -= applied;
		if (o->shares == 0)
			order_gone(s, o);
		want_order(s, w, m, m->type == 'X' ? WB_EV_ORDER_CANCEL : WB_EV_ORDER_EXEC, ol, sd, ref, match, px, applied,
			   0);
		if (m->type == 'C') {
			struct wb_event *e = want_base(s, w, m, WB_EV_TRADE, m->locate);
			e->ref = ref;
			e->aux = match;
			e->price = m->u.exec_px.price;
			e->shares = applied;
			e->side = (uint8_t)sd;
			e->flags |= WB_EVF_WITH_PRICE | (m->u.exec_px.printable == 'N' ? WB_EVF_NONPRINTABLE : 0);
		}
		break;
	}
	case 'D':
	case 'U': {
		ref = m->type == 'D' ? m->u.del.ref : m->u.replace.old_ref;
		o = expect_find(s, w, m, ref);
		if (!o)
			break;
		uint16_t ol = o->locate;
		char sd = o->side;
		int64_t px = o->price;
		uint32_t left = o->shares;

		order_gone(s, o);
		want_order(s, w, m, WB_EV_ORDER_DELETE, ol, sd, ref, 0, px, left, m->type == 'U' ? WB_EVF_REPLACE : 0);
		if (m->type == 'U')
			expect_add(s, w, m, ol, m->u.replace.new_ref, sd, m->u.replace.price, m->u.replace.shares,
				   WB_EV_ORDER_REPLACE, ref, WB_EVF_REPLACE, stale0, got, ngot);
		break;
	}
	default:
		fail_msg("unexpected message type %c", m->type);
	}
	if (w->n)
		w->ev[w->n - 1].flags |= WB_EVF_BATCH_END;
}

/* ---- the burst twin ---- */

static void flush(struct sim *s)
{
	struct wb_event_batch bb = { .ev = s->bev, .cap = ACC_CAP };
	char ctx[96];

	if (s->npend == 0)
		return;
	assert_int_equal(wb_bookset_apply_itch_burst(s->b.bs, s->pend, s->pseq, s->npend, s->ts_recv, s->flags, &bb), 0);
	assert_int_equal(bb.overflow, 0);
	snprintf(ctx, sizeof(ctx), "%s: burst of %u ending at step %llu", s->cfg->name, s->npend,
		 (unsigned long long)s->step);
	assert_events_equal(s->acc, s->nacc, bb.ev, bb.n, ctx);
	s->npend = 0;
	s->nacc = 0;
	s->n_bursts++;
}

static void burst_begin(struct sim *s)
{
	s->blen = 1 + (uint32_t)(rnd() % MAX_BURST);
	s->ts_recv += 1000;
	s->flags = rnd() % 5 == 0 ? WB_EVF_RECOVERED : 0;
}

static uint64_t book_stale(struct wb_bookset *bs)
{
	struct wb_bookset_stats st;

	wb_bookset_stats(bs, &st);
	return st.stale_orders;
}

/* One message: to the book, the model and the open burst; its events checked. */
static void sim_msg(struct sim *s, struct wb_itch_msg m)
{
	struct wb_bookset_stats st;
	struct want w;
	char ctx[96];

	if (s->npend == 0)
		burst_begin(s);
	m.ts = ++s->ts;
	s->seq++;
	s->step++;
	uint64_t stale0 = book_stale(s->a.bs);
	struct wb_msg_meta meta = { .seq = s->seq, .ts_recv = s->ts_recv, .flags = s->flags };

	s->a.batch.n = 0;
	assert_int_equal(wb_bookset_apply_itch(s->a.bs, &m, &meta, &s->a.batch), 0);
	expect_msg(s, &m, stale0, s->a.ev, s->a.batch.n, &w);
	snprintf(ctx, sizeof(ctx), "%s: step %llu, %c of ref %llu", s->cfg->name, (unsigned long long)s->step, m.type,
		 (unsigned long long)(m.type == 'A' || m.type == 'F' ? m.u.add.ref : m.u.del.ref));
	assert_events_equal(w.ev, w.n, s->a.ev, s->a.batch.n, ctx);

	memcpy(&s->acc[s->nacc], s->a.ev, s->a.batch.n * sizeof(struct wb_event));
	s->nacc += s->a.batch.n;
	s->pend[s->npend] = m;
	s->pseq[s->npend++] = s->seq;

	wb_bookset_stats(s->a.bs, &st);
	assert_int_equal(st.live_orders, s->live);
	assert_int_equal(st.order_table_full, s->table_full);
	/* messages only ever erase stale orders, and only ones a reset left */
	assert_true(st.stale_orders <= stale0);
	assert_true(st.stale_orders <= s->nstale);
	if (st.stale_orders == 0)
		s->nstale = 0;
	if (s->npend == s->blen)
		flush(s);
}

/* ---- comparing the book with the model ---- */

static void check_levels(struct wb_bookset *bs, const struct naive *nv, uint16_t loc)
{
	static struct got g;
	static struct nlevel want[4096];

	memset(g.n, 0, sizeof(g.n));
	wb_bookset_walk_levels(bs, loc, got_level, &g);
	for (int sd = 0; sd < 2; sd++) {
		size_t nw = naive_levels(nv, loc, sd ? 'S' : 'B', want, 4096);

		assert_int_equal(g.n[sd], nw);
		for (size_t i = 0; i < nw; i++) {
			assert_int_equal(g.lv[sd][i].price, want[i].price);
			assert_int_equal(g.lv[sd][i].shares, want[i].shares);
			assert_int_equal(g.lv[sd][i].orders, want[i].orders);
		}
	}
}

struct qgot {
	struct wb_order_info o[4096];
	size_t n;
};

static void q_order(void *arg, const struct wb_order_info *o)
{
	struct qgot *q = arg;

	assert_true(q->n < 4096);
	q->o[q->n++] = *o;
}

static int cmp_arrival(const void *x, const void *y)
{
	const struct norder *a = *(const struct norder *const *)x, *b = *(const struct norder *const *)y;

	return a->arrival < b->arrival ? -1 : a->arrival > b->arrival;
}

/* The FIFO queue at one level is exactly the model's: same orders, same sizes, by arrival. */
static size_t check_queue(struct wb_bookset *bs, const struct naive *nv, uint16_t loc, char side, int64_t price)
{
	static struct qgot q;
	static const struct norder *want[4096];
	size_t nw = 0;

	for (size_t i = 0; i < nv->n; i++) {
		const struct norder *o = &nv->o[i];
		if (o->live && o->locate == loc && o->side == side && o->price == price) {
			assert_true(nw < 4096);
			want[nw++] = o;
		}
	}
	qsort(want, nw, sizeof(want[0]), cmp_arrival);
	q.n = 0;
	assert_int_equal(wb_bookset_walk_orders(bs, loc, side, price, q_order, &q), nw);
	assert_int_equal(q.n, nw);
	for (size_t k = 0; k < nw; k++) {
		if (q.o[k].ref != want[k]->ref)
			print_message("queue %u %c %lld: position %zu is ref %llu, want %llu\n", loc, side, (long long)price, k,
				      (unsigned long long)q.o[k].ref, (unsigned long long)want[k]->ref);
		assert_int_equal(q.o[k].ref, want[k]->ref);
		assert_int_equal(q.o[k].shares, want[k]->shares);
		assert_int_equal(q.o[k].price, price);
		assert_int_equal(q.o[k].side, side);
	}
	return nw;
}

/* Full depth of every symbol, per-symbol counters, and a few queues (the best of each side
 * and one random level). */
static void check_books(struct sim *s, struct wb_bookset *bs)
{
	for (uint16_t l = 1; l <= NSYM; l++) {
		struct wb_symbol_stats st;
		uint32_t live = 0;

		check_levels(bs, &s->nv, l);
		assert_int_equal(wb_bookset_symbol_stats(bs, l, &st), 0);
		for (size_t i = 0; i < s->nv.n; i++)
			live += s->nv.o[i].live && s->nv.o[i].locate == l;
		assert_int_equal(st.live_orders, live);
		for (int r = 0; r < WB_INT_REASON_MAX; r++)
			assert_int_equal(st.integrity[r], s->integ[l][r]);
		for (int sd = 0; sd < 2; sd++) {
			char side = sd ? 'S' : 'B';
			int64_t best = 0;
			if (naive_best(&s->nv, l, side, &best))
				check_queue(bs, &s->nv, l, side, best);
			check_queue(bs, &s->nv, l, side, rnd_price(side));
		}
	}
}

static void check_twins(struct sim *s)
{
	struct wb_bookset_stats y;

	flush(s);
	fx_assert_stats_equal(s->a.bs, s->b.bs);
	wb_bookset_stats(s->b.bs, &y);
	assert_int_equal(y.event_overflow, 0);
	check_books(s, s->b.bs);
}

/* ---- operator requests ---- */

/* Ring and survivor slots: what the sweep goes round. */
static uint64_t table_slots(const struct cfg *c)
{
	uint64_t ring = c->ring;

	if (!ring)
		for (ring = 16; ring < c->max_orders; ring <<= 1)
			;
	return ring + 3ull * c->max_orders / 2 + 1;
}

/* One service call looks at 16,384 slots: when that is a whole round of the table plus a
 * second look at every survivor it erases, no stale order is left after it. */
static int sweep_completes(const struct cfg *c)
{
	return table_slots(c) + c->max_orders <= 16384;
}

static void sim_service(struct sim *s)
{
	flush(s);
	uint64_t before = book_stale(s->a.bs);

	wb_bookset_service(s->a.bs);
	wb_bookset_service(s->b.bs);
	uint64_t after = book_stale(s->a.bs);

	assert_int_equal(after, book_stale(s->b.bs));
	assert_true(after <= before);
	assert_true(after <= s->nstale);
	if (sweep_completes(s->cfg))
		assert_int_equal(after, 0);
	if (after)
		s->n_partial++;
	else
		s->nstale = 0;
}

static void sim_reset(struct sim *s, uint16_t loc)
{
	struct wb_symbol_stats st;
	size_t moved = 0;

	flush(s);
	uint64_t before = book_stale(s->a.bs);

	for (size_t i = 0; i < s->nv.n; i++) {
		struct norder *o = &s->nv.o[i];
		if (o->live && o->locate == loc) {
			o->live = 0;
			s->live--;
			stale_push(s, o->ref);
			moved++;
		}
	}
	assert_int_equal(wb_bookset_request_reset(s->a.bs, loc), 0);
	assert_int_equal(wb_bookset_request_reset(s->b.bs, loc), 0);
	/* the service call applies the reset and sweeps a first part at once */
	wb_bookset_service(s->a.bs);
	wb_bookset_service(s->b.bs);
	uint64_t after = book_stale(s->a.bs);

	assert_int_equal(after, book_stale(s->b.bs));
	assert_true(after <= before + moved);
	assert_true(after <= s->nstale);
	if (sweep_completes(s->cfg))
		assert_int_equal(after, 0);
	assert_int_equal(wb_bookset_symbol_stats(s->a.bs, loc, &st), 0);
	assert_int_equal(st.live_orders, 0);
	static struct got g;
	memset(g.n, 0, sizeof(g.n));
	assert_int_equal(wb_bookset_walk_levels(s->a.bs, loc, got_level, &g), 0);
	if (after)
		s->n_partial++;
	else
		s->nstale = 0;
	s->n_resets++;
}

/* ---- the stream ---- */

static uint64_t pick_ref_add(struct sim *s)
{
	const struct cfg *c = s->cfg;
	unsigned p = (unsigned)(rnd() % 100);

	if (c->pool && p < c->pool_pct) {
		uint64_t ref = c->pool[rnd() % c->npool];
		s->n_dead_readd += naive_find(&s->nv, ref) == NULL; /* pool references come round again and again */
		return ref;
	}
	if (p < 45) {
		s->mono += 1 + rnd() % c->stride;
		return s->mono;
	}
	if (p < 58) {
		s->n_nonmono++;
		return s->mono - rnd() % (4ull * c->ring + 64);
	}
	if (p < 70 && s->ndead) {
		s->n_dead_readd++;
		return s->dead[rnd() % s->ndead];
	}
	if (p < 78 && s->live)
		return pick_live(s)->ref;
	if (p < 88 && s->nstale)
		return s->stale[rnd() % s->nstale];
	if (p < 95 && s->live) /* the ring slot of a live order, a ring or a few away */
		return pick_live(s)->ref + (rnd() & 1 ? 1 : -1) * (uint64_t)c->ring * (1 + rnd() % 3);
	return rnd() % 40; /* ref 0 and its neighbours */
}

/* A reference for an E C X D U that is not (or no longer) live. */
static uint64_t pick_ref_other(struct sim *s)
{
	unsigned p = (unsigned)(rnd() % 100);

	if (p < 40 && s->ndead)
		return s->dead[rnd() % s->ndead];
	if (p < 70 && s->nstale)
		return s->stale[rnd() % s->nstale];
	if (s->cfg->pool && (p < 85 || s->cfg->pool_pct == 100))
		return s->cfg->pool[rnd() % s->cfg->npool];
	if (p < 90)
		return s->mono - rnd() % 512;
	return s->mono + 1 + rnd() % 1000; /* above every reference added */
}

static uint16_t rnd_loc(void)
{
	return (uint16_t)(1 + rnd() % NSYM);
}

static struct wb_itch_msg gen_add(struct sim *s)
{
	char side = rnd() & 1 ? 'B' : 'S';
	struct wb_itch_msg m = msg_add(rnd_loc(), pick_ref_add(s), side, (uint32_t)(1 + rnd() % 300),
				       (uint32_t)rnd_price(side));

	if (rnd() % 10 == 0) {
		m.type = 'F';
		memcpy(m.u.add.mpid, "MPQ", 4);
		m.u.add.mpid[3] = (char)('A' + rnd() % 26);
	}
	return m;
}

static struct wb_itch_msg gen_msg(struct sim *s)
{
	const struct cfg *c = s->cfg;
	unsigned r = (unsigned)(rnd() % 100);

	if (s->live < 4 || (r < c->add_pct && (s->live < c->live_cap || rnd() % 4 == 0)))
		return gen_add(s);

	struct norder *o = rnd() % 100 < 82 ? pick_live(s) : NULL;
	uint64_t ref = o ? o->ref : pick_ref_other(s);
	uint16_t loc = o ? (rnd() % 20 ? o->locate : rnd_loc()) : rnd_loc(); /* sometimes another symbol's locate */
	uint32_t have = o ? o->shares : 1 + (uint32_t)(rnd() % 300);
	uint32_t part = 1 + (uint32_t)(rnd() % have), over = have + 1 + (uint32_t)(rnd() % 50);

	r = (unsigned)(rnd() % 100);
	if (r < 40)
		return msg_del(loc, ref);
	if (r < 65) {
		/* a replace keeps its order's side: price it there (a "dead" pick may be live again) */
		const struct norder *lo = o ? o : naive_find(&s->nv, ref);
		char side = lo ? lo->side : 'B';
		return msg_replace(loc, ref, pick_ref_add(s), (uint32_t)(1 + rnd() % 300), (uint32_t)rnd_price(side));
	}
	if (r < 80)
		return msg_exec(loc, ref, rnd() % 10 ? part : over, s->step);
	if (r < 88)
		return msg_exec_px(loc, ref, rnd() % 10 ? part : over, s->step, rnd() & 1 ? 'Y' : 'N', 9000);
	return msg_cancel(loc, ref, rnd() % 20 ? part : over);
}

static void sim_init(struct sim *s, const struct cfg *c)
{
	memset(s, 0, sizeof(*s));
	s->cfg = c;
	s->nv.cap = c->max_orders + 8;
	s->nv.o = calloc(s->nv.cap, sizeof(*s->nv.o));
	assert_non_null(s->nv.o);
	assert_int_equal(fx_init_ring(&s->a, c->max_orders, 8192, NSYM + 1, WB_POLICY_FLAG, c->ring), 0);
	assert_int_equal(fx_init_ring(&s->b, c->max_orders, 8192, NSYM + 1, WB_POLICY_FLAG, c->ring), 0);
	for (uint16_t l = 1; l <= NSYM; l++) {
		char name[8];
		snprintf(name, sizeof(name), "RING%u", l);
		assert_int_equal(wb_bookset_define_symbol(s->a.bs, l, name), 0);
		assert_int_equal(wb_bookset_define_symbol(s->b.bs, l, name), 0);
	}
	s->mono = c->ref_base;
	s->seq = 1000;
	s->ts = 34200000000000ull;
	s->ts_recv = 1700000000000000000ull;
}

static void sim_free(struct sim *s)
{
	wb_bookset_destroy(s->a.bs);
	wb_bookset_destroy(s->b.bs);
	free(s->nv.o);
	free(s->stale);
}

/* The run: random messages, resets and service calls, checked throughout; then the stale
 * orders drained, every live order deleted by reference, and the table filled once more. */
static void run_cfg(const struct cfg *c, uint64_t seed)
{
	static struct sim s;
	struct wb_bookset_stats st;

	rng_state = seed;
	sim_init(&s, c);
	for (int i = 0; i < c->steps; i++) {
		sim_msg(&s, gen_msg(&s));
		if (rnd() % (uint64_t)c->reset_every == 0)
			sim_reset(&s, rnd_loc());
		else if (rnd() % (uint64_t)c->service_every == 0)
			sim_service(&s);
		if (i % 8 == 7)
			for (uint16_t l = 1; l <= NSYM; l++)
				check_levels(s.a.bs, &s.nv, l);
		if (i % 64 == 63)
			check_books(&s, s.a.bs);
		if (i % 2048 == 2047) {
			check_twins(&s);
			for (uint16_t l = 1; l <= NSYM; l++)
				compare_symbol(s.a.bs, &s.nv, l);
		}
	}
	check_twins(&s);

	/* the sweep ends whatever the shifts cost it */
	int calls = 0;
	while (book_stale(s.a.bs) && calls++ < 64)
		sim_service(&s);
	assert_int_equal(book_stale(s.a.bs), 0);
	assert_int_equal(book_stale(s.b.bs), 0);
	check_twins(&s);
	for (uint16_t l = 1; l <= NSYM; l++)
		compare_symbol(s.a.bs, &s.nv, l);

	/* every live order is found by its reference */
	for (size_t i = 0; i < s.nv.n; i++)
		if (s.nv.o[i].live)
			sim_msg(&s, msg_del(s.nv.o[i].locate, s.nv.o[i].ref));
	check_twins(&s);
	wb_bookset_stats(s.a.bs, &st);
	assert_int_equal(st.live_orders, 0);
	assert_int_equal(st.live_levels, 0);
	assert_int_equal(st.stale_orders, 0);

	/* no slot leaked: exactly max_orders fit again, references out of order */
	if (c->refill) {
		uint64_t base = s.mono + 100000;
		for (uint32_t k = 0; k < c->max_orders; k++)
			sim_msg(&s, msg_add(rnd_loc(), base + (uint64_t)((k * 7919u) % c->max_orders) * 3, 'B', 10,
					    (uint32_t)rnd_price('B')));
		sim_msg(&s, msg_add(1, base - 1, 'S', 10, 10005));
		check_twins(&s);
		wb_bookset_stats(s.a.bs, &st);
		assert_int_equal(st.live_orders, c->max_orders);
		assert_int_equal(s.a.ev[0].side, WB_INT_ORDER_TABLE_FULL);
	}

	print_message("%s: %llu msgs, %llu bursts, adds %llu, dup %llu, unknown %llu, too large %llu, full %llu, "
		      "resets %llu, partial sweeps %llu, stale touched %llu, stale re-added %llu, dead re-added %llu, "
		      "below-newest %llu\n",
		      c->name, (unsigned long long)s.step, (unsigned long long)s.n_bursts, (unsigned long long)s.n_add,
		      (unsigned long long)s.n_dup, (unsigned long long)s.n_unknown, (unsigned long long)s.n_too_large,
		      (unsigned long long)s.n_full, (unsigned long long)s.n_resets, (unsigned long long)s.n_partial,
		      (unsigned long long)s.n_stale_touch, (unsigned long long)s.n_stale_readd,
		      (unsigned long long)s.n_dead_readd, (unsigned long long)s.n_nonmono);
	/* the stream did reach what it was built for */
	assert_true(s.n_dup > 50);
	assert_true(s.n_unknown > 50);
	assert_true(s.n_resets > 5);
	assert_true(s.n_dead_readd + s.n_stale_readd > 50);
	if (c->live_cap >= c->max_orders)
		assert_true(s.n_full > 20);
	if (table_slots(c) > 16384) { /* more than one service call's sweep */
		assert_true(s.n_partial > 10);
		assert_true(s.n_stale_touch > 20);
	}
	sim_free(&s);
}

/* ---------------------------------------------------------------- random streams */

/* A 16-slot ring under 300 orders: nearly every order is a survivor, the survivor table
 * runs at up to 2/3 load, and the table is driven to exactly full over and over. */
static void test_ring_tiny_ring_full_table(void **state)
{
	static const struct cfg c = { .name = "tiny ring, full", .ring = 16, .max_orders = 300, .live_cap = 300,
				      .steps = 24000, .ref_base = 1, .stride = 3, .add_pct = 55, .reset_every = 900,
				      .service_every = 40, .refill = 1 };
	(void)state;
	run_cfg(&c, 0x1234567887654321ull);
}

/* References that run up to 2^64 - 1 and wrap to 0 (the newest reference is then far above
 * every later one), a 64-slot ring, and a table big enough that a service call sweeps only
 * part of it: stale orders meet adds, lookups and evictions. */
static void test_ring_refs_wrap_partial_sweeps(void **state)
{
	static const struct cfg c = { .name = "wrapping refs", .ring = 64, .max_orders = 16000, .live_cap = 250,
				      .steps = 16000, .ref_base = UINT64_MAX - 6000, .stride = 2, .add_pct = 42, .reset_every = 500,
				      .service_every = 30 };
	(void)state;
	run_cfg(&c, 0xDEADBEEFCAFEF00Dull);
}

/* A ring of 32768 slots (a service call sweeps half of it) under a 400-order table: stale
 * orders wait in the ring and are evicted by adds a ring of references later, and the
 * stale orders count against max_orders. */
static void test_ring_big_ring_stale_evictions(void **state)
{
	static const struct cfg c = { .name = "big ring", .ring = 32768, .max_orders = 400, .live_cap = 220,
				      .steps = 16000, .ref_base = 1, .stride = 400, .add_pct = 42, .reset_every = 400,
				      .service_every = 60, .refill = 1 };
	(void)state;
	run_cfg(&c, 0x0F1E2D3C4B5A6978ull);
}

/* Survivor home as book.c computes it (Fibonacci hashing onto the exact table size); used
 * only to choose references that crowd one part of the table. If the hash changes, the
 * test still holds, it only crowds less. */
static uint64_t surv_home_of(uint64_t ref, uint64_t nslots)
{
	return (uint64_t)(((unsigned __int128)(ref * 0x9E3779B97F4A7C15ull) * nslots) >> 64);
}

/* Survivors packed around the end of the table (probe runs wrap to its start), and a table
 * of 16,385 slots in all (16-slot ring + 16,369 survivor slots) so a service call sweeps one
 * slot less than a round, less one per survivor it erases. Every reference comes from a
 * pool whose survivor homes lie in 60 slots around the table's end (runs of a hundred and
 * more survivors), so a drain ends inside that crowd, the next reset's first sweep stops
 * just short of where it started (inside it again), and until the next service call
 * deletes and adds of the other symbols' orders shift survivors back across the sweep
 * position and across the table's end. (Measured with a counting copy of book.c: some
 * 90,000 backward shifts, 2,000 across the table's end, dozens across the sweep.) */
static void test_ring_crowded_survivors_partial_sweeps(void **state)
{
	enum { MAX = 10912, POOL = 1000 };
	static uint64_t pool[POOL];
	const uint64_t n = 3ull * MAX / 2 + 1;
	size_t np = 0;

	(void)state;
	assert_int_equal(16 + n, 16385);
	rng_state = 0xA5A5A5A55A5A5A5Aull;
	while (np < POOL) {
		uint64_t ref = rnd() >> (rnd() % 40); /* large and small references */
		uint64_t h = surv_home_of(ref, n);
		if (h >= n - 40 || h < 20)
			pool[np++] = ref;
	}
	static const struct cfg base = { .name = "crowded survivors", .ring = 16, .max_orders = MAX, .live_cap = 220,
					 .steps = 30000, .ref_base = 5000, .stride = 2, .add_pct = 42,
					 .reset_every = 100, .service_every = 100 };
	struct cfg c = base;
	c.pool = pool;
	c.npool = POOL;
	c.pool_pct = 100;
	run_cfg(&c, 0x77777777AAAAAAAAull);
}

/* ---------------------------------------------------------------- targeted cases */

static void expect_ev(const struct fx *f, uint32_t i, uint8_t type, uint8_t side)
{
	assert_true(f->batch.n > i);
	if (f->ev[i].type != type || (type == WB_EV_INTEGRITY && f->ev[i].side != side))
		ev_print("unexpected", &f->ev[i]);
	assert_int_equal(f->ev[i].type, type);
	if (type == WB_EV_INTEGRITY)
		assert_int_equal(f->ev[i].side, side);
}

static void add_ok(struct fx *f, uint16_t loc, uint64_t ref, char side, uint32_t shares, uint32_t price)
{
	struct wb_itch_msg m = msg_add(loc, ref, side, shares, price);

	assert_int_equal(fx_apply(f, &m), 0);
	assert_int_equal(f->batch.n, 1);
	expect_ev(f, 0, WB_EV_ORDER_ADD, 0);
	assert_int_equal(f->ev[0].ref, ref);
}

static void add_int(struct fx *f, uint16_t loc, uint64_t ref, char side, uint32_t shares, uint32_t price, uint8_t why)
{
	struct wb_itch_msg m = msg_add(loc, ref, side, shares, price);

	assert_int_equal(fx_apply(f, &m), 0);
	assert_int_equal(f->batch.n, 1);
	expect_ev(f, 0, WB_EV_INTEGRITY, why);
	assert_int_equal(f->ev[0].ref, ref);
}

static void del_ok(struct fx *f, uint16_t loc, uint64_t ref, uint32_t shares)
{
	struct wb_itch_msg m = msg_del(loc, ref);

	assert_int_equal(fx_apply(f, &m), 0);
	assert_int_equal(f->batch.n, 1);
	expect_ev(f, 0, WB_EV_ORDER_DELETE, 0);
	assert_int_equal(f->ev[0].ref, ref);
	assert_int_equal(f->ev[0].shares, shares);
}

static void unknown(struct fx *f, struct wb_itch_msg m, uint64_t ref)
{
	assert_int_equal(fx_apply(f, &m), 0);
	assert_int_equal(f->batch.n, 1);
	expect_ev(f, 0, WB_EV_INTEGRITY, WB_INT_UNKNOWN_ORDER);
	assert_int_equal(f->ev[0].ref, ref);
}

static size_t queue(struct fx *f, uint16_t loc, char side, int64_t price, uint64_t *refs, size_t max)
{
	static struct qgot q;

	q.n = 0;
	size_t n = wb_bookset_walk_orders(f->bs, loc, side, price, q_order, &q);
	assert_int_equal(n, q.n);
	assert_true(n <= max);
	for (size_t i = 0; i < n; i++)
		refs[i] = q.o[i].ref;
	return n;
}

static void assert_queue(struct fx *f, uint16_t loc, char side, int64_t price, const uint64_t *want, size_t n)
{
	uint64_t got[64];

	assert_int_equal(queue(f, loc, side, price, got, 64), n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(got[i], want[i]);
}

static uint64_t live_orders(struct fx *f)
{
	struct wb_bookset_stats st;

	wb_bookset_stats(f->bs, &st);
	return st.live_orders;
}

/* Duplicates of evicted orders, and of the newest reference once a lower one evicted it;
 * re-adds after delete; queue order across ring and survivors. */
static void test_ring_duplicates_of_evicted_orders(void **state)
{
	struct fx f;
	struct wb_itch_msg m;

	(void)state;
	assert_int_equal(fx_init_ring(&f, 64, 256, 4, WB_POLICY_FLAG, 16), 0);
	add_ok(&f, 1, 5, 'B', 100, 5000);
	add_ok(&f, 1, 21, 'B', 200, 5000); /* slot 5: ref 5 moves to the survivors */
	add_int(&f, 1, 5, 'B', 1, 5000, WB_INT_DUPLICATE_ORDER);
	add_int(&f, 1, 21, 'B', 1, 5000, WB_INT_DUPLICATE_ORDER);
	assert_queue(&f, 1, 'B', 5000, (uint64_t[]){ 5, 21 }, 2);
	del_ok(&f, 1, 21, 200); /* the ring slot is empty, ref 5 is still a survivor */
	add_int(&f, 1, 5, 'B', 1, 5000, WB_INT_DUPLICATE_ORDER);
	m = msg_exec(1, 5, 10, 1);
	assert_int_equal(fx_apply(&f, &m), 0);
	expect_ev(&f, 0, WB_EV_ORDER_EXEC, 0);
	assert_int_equal(f.ev[0].level_shares, 90);

	/* the newest reference evicted by a lower one: still a duplicate */
	add_ok(&f, 2, 200, 'S', 100, 6000); /* slot 8, the newest reference */
	add_ok(&f, 2, 8, 'S', 100, 6000);   /* below the newest, same slot: 200 moves */
	add_int(&f, 2, 200, 'S', 5, 6000, WB_INT_DUPLICATE_ORDER);
	add_int(&f, 2, 8, 'S', 5, 6000, WB_INT_DUPLICATE_ORDER);
	m = msg_replace(2, 200, 200, 50, 6001); /* a replace to its own reference */
	assert_int_equal(fx_apply(&f, &m), 0);
	assert_int_equal(f.batch.n, 2);
	expect_ev(&f, 0, WB_EV_ORDER_DELETE, 0);
	expect_ev(&f, 1, WB_EV_ORDER_REPLACE, 0);
	add_int(&f, 2, 200, 'S', 5, 6000, WB_INT_DUPLICATE_ORDER);
	add_int(&f, 2, 8, 'S', 5, 6000, WB_INT_DUPLICATE_ORDER);
	del_ok(&f, 2, 200, 50);
	add_ok(&f, 2, 200, 'S', 70, 6000); /* re-added: behind 8 */
	add_int(&f, 2, 8, 'S', 5, 6000, WB_INT_DUPLICATE_ORDER);
	assert_queue(&f, 2, 'S', 6000, (uint64_t[]){ 8, 200 }, 2);

	/* a queue of orders that all share one ring slot, deleted from the middle */
	for (uint64_t k = 0; k < 10; k++)
		add_ok(&f, 3, 3 + 16 * (10 - k), 'B', (uint32_t)(10 + k), 7000); /* descending references */
	del_ok(&f, 3, 3 + 16 * 5, 15);
	del_ok(&f, 3, 3 + 16 * 10, 10);
	add_ok(&f, 3, 3 + 16 * 10, 'B', 99, 7000);
	add_int(&f, 3, 3 + 16 * 9, 'B', 1, 7000, WB_INT_DUPLICATE_ORDER);
	uint64_t want[] = { 3 + 16 * 9, 3 + 16 * 8, 3 + 16 * 7, 3 + 16 * 6, 3 + 16 * 4,
			    3 + 16 * 3, 3 + 16 * 2, 3 + 16 * 1, 3 + 16 * 10 };
	assert_queue(&f, 3, 'B', 7000, want, 9);
	for (size_t i = 0; i < 9; i++) {
		m = msg_del(3, want[i]);
		assert_int_equal(fx_apply(&f, &m), 0);
		expect_ev(&f, 0, WB_EV_ORDER_DELETE, 0);
	}
	assert_int_equal(live_orders(&f), 3);
	wb_bookset_destroy(f.bs);
}

/* Reference 0 (an empty slot is not "reference 0"), and references at the top of the
 * range that share its slot. */
static void test_ring_ref_zero_and_top_of_range(void **state)
{
	struct fx f;
	struct wb_itch_msg m;

	(void)state;
	assert_int_equal(fx_init_ring(&f, 32, 256, 4, WB_POLICY_FLAG, 16), 0);
	/* ref 0 is not found before it is added */
	unknown(&f, msg_del(1, 0), 0);
	add_ok(&f, 1, 0, 'B', 100, 5000);
	add_int(&f, 1, 0, 'B', 1, 5000, WB_INT_DUPLICATE_ORDER);
	add_ok(&f, 1, 16, 'B', 100, 5000); /* 0 moves to the survivors */
	add_int(&f, 1, 0, 'B', 1, 5000, WB_INT_DUPLICATE_ORDER);
	del_ok(&f, 1, 16, 100);
	add_int(&f, 1, 0, 'B', 1, 5000, WB_INT_DUPLICATE_ORDER);
	del_ok(&f, 1, 0, 100);
	unknown(&f, msg_exec(1, 0, 1, 1), 0);
	add_ok(&f, 1, 0, 'B', 30, 5000);

	add_ok(&f, 1, UINT64_MAX, 'S', 10, 6000);      /* slot 15 */
	add_ok(&f, 1, UINT64_MAX - 15, 'S', 11, 6000); /* slot 0: ref 0 moves */
	add_ok(&f, 1, 15, 'S', 12, 6000);               /* slot 15: the top reference moves */
	add_int(&f, 1, UINT64_MAX, 'S', 1, 6000, WB_INT_DUPLICATE_ORDER);
	add_int(&f, 1, 0, 'B', 1, 5000, WB_INT_DUPLICATE_ORDER);
	add_int(&f, 1, UINT64_MAX - 15, 'S', 1, 6000, WB_INT_DUPLICATE_ORDER);
	assert_queue(&f, 1, 'S', 6000, (uint64_t[]){ UINT64_MAX, UINT64_MAX - 15, 15 }, 3);
	m = msg_replace(1, 0, UINT64_MAX - 1, 40, 5001);
	assert_int_equal(fx_apply(&f, &m), 0);
	assert_int_equal(f.batch.n, 2);
	expect_ev(&f, 0, WB_EV_ORDER_DELETE, 0);
	expect_ev(&f, 1, WB_EV_ORDER_REPLACE, 0);
	unknown(&f, msg_del(1, 0), 0);
	del_ok(&f, 1, UINT64_MAX, 10);
	del_ok(&f, 1, UINT64_MAX - 15, 11);
	del_ok(&f, 1, 15, 12);
	del_ok(&f, 1, UINT64_MAX - 1, 40);
	assert_int_equal(live_orders(&f), 0);
	wb_bookset_destroy(f.bs);
}

/* A ring record keeps ref >> ring_bits as a 32-bit tag: references from 2^32 rings up
 * (2^36 with 16 slots) live in the survivor table. One of them that shares a slot with a
 * small reference, and whose tag would truncate to that reference's, is never mistaken
 * for it, before or after either is added. */
static void test_ring_references_beyond_the_tag(void **state)
{
	const uint64_t lim = 1ull << 36, small = 15, high = lim + 15, edge = lim - 1;
	struct fx f;
	struct wb_itch_msg m;
	struct wb_bookset_stats st;

	(void)state;
	assert_int_equal(fx_init_ring(&f, 32, 256, 4, WB_POLICY_FLAG, 16), 0);
	add_ok(&f, 1, small, 'B', 100, 5000); /* slot 15, tag 0 */
	unknown(&f, msg_exec(1, high, 1, 1), high); /* its truncated tag is 0 too */
	unknown(&f, msg_del(1, lim + 31), lim + 31);
	add_ok(&f, 1, high, 'B', 200, 5000); /* straight to the survivors: small stays put */
	wb_bookset_stats(f.bs, &st);
	assert_int_equal(st.survivor_moves, 0);
	add_ok(&f, 1, edge, 'B', 300, 5000); /* slot 15, the highest tag: small moves */
	wb_bookset_stats(f.bs, &st);
	assert_int_equal(st.survivor_moves, 1);
	add_int(&f, 1, small, 'B', 1, 5000, WB_INT_DUPLICATE_ORDER);
	add_int(&f, 1, high, 'B', 1, 5000, WB_INT_DUPLICATE_ORDER);
	add_int(&f, 1, edge, 'B', 1, 5000, WB_INT_DUPLICATE_ORDER);
	assert_queue(&f, 1, 'B', 5000, (uint64_t[]){ small, high, edge }, 3);
	m = msg_exec(1, high, 50, 7);
	assert_int_equal(fx_apply(&f, &m), 0);
	expect_ev(&f, 0, WB_EV_ORDER_EXEC, 0);
	assert_int_equal(f.ev[0].ref, high);
	assert_int_equal(f.ev[0].shares, 50);
	assert_int_equal(f.ev[0].level_shares, 550);
	m = msg_replace(1, edge, lim + 47, 60, 5001); /* the new reference goes to the survivors */
	assert_int_equal(fx_apply(&f, &m), 0);
	assert_int_equal(f.batch.n, 2);
	expect_ev(&f, 1, WB_EV_ORDER_REPLACE, 0);
	assert_int_equal(f.ev[1].ref, lim + 47);
	assert_queue(&f, 1, 'B', 5001, (uint64_t[]){ lim + 47 }, 1);
	del_ok(&f, 1, small, 100);
	unknown(&f, msg_del(1, edge), edge);
	del_ok(&f, 1, high, 150);
	del_ok(&f, 1, lim + 47, 60);
	unknown(&f, msg_del(1, high), high);
	assert_int_equal(live_orders(&f), 0);
	wb_bookset_destroy(f.bs);
}

/* A reset book's levels that still have orders stay behind as zombies, holding their
 * records until the last stale order is erased (by a lookup, an add into its slot, or the
 * sweep): with a pool of 4, another symbol gets a new level only as each is freed, and
 * never one that a stale order still points at. */
static void test_ring_reset_levels_freed_with_their_orders(void **state)
{
	enum { R = 32768 };
	struct fx f;
	struct wb_bookset_stats st;

	(void)state;
	assert_int_equal(fx_init_ring(&f, 64, 4, 4, WB_POLICY_FLAG, R), 0);
	/* beyond the slots the reset's first sweep reaches (0..16383) */
	add_ok(&f, 1, 20000, 'B', 10, 5000);
	add_ok(&f, 1, 20001, 'B', 11, 5001);
	add_ok(&f, 1, 20002, 'B', 12, 5002);
	add_ok(&f, 1, 20003, 'B', 13, 5002);
	assert_int_equal(wb_bookset_request_reset(f.bs, 1), 0);
	wb_bookset_service(f.bs);
	wb_bookset_stats(f.bs, &st);
	assert_int_equal(st.stale_orders, 4);
	assert_int_equal(st.live_levels, 0);
	add_ok(&f, 2, 30000, 'S', 1, 6000); /* the pool's fourth record */
	add_int(&f, 2, 30001, 'S', 1, 6001, WB_INT_LEVEL_TABLE_FULL);
	/* an add into the slot of 20001, the only order of its zombie: erased first, so the
	 * level record it frees is there for the add */
	add_ok(&f, 2, 20001 + R, 'S', 2, 6001);
	add_int(&f, 2, 30002, 'S', 1, 6002, WB_INT_LEVEL_TABLE_FULL);
	unknown(&f, msg_del(1, 20002), 20002); /* its level keeps 20003 */
	add_int(&f, 2, 30002, 'S', 1, 6002, WB_INT_LEVEL_TABLE_FULL);
	unknown(&f, msg_del(1, 20000), 20000); /* its level had no other: freed */
	add_ok(&f, 2, 30002, 'S', 3, 6002);
	add_int(&f, 2, 30003, 'S', 1, 6003, WB_INT_LEVEL_TABLE_FULL);
	wb_bookset_service(f.bs); /* the sweep erases 20003: its record back */
	wb_bookset_stats(f.bs, &st);
	assert_int_equal(st.stale_orders, 0);
	add_ok(&f, 1, 30003, 'B', 4, 5002);
	add_int(&f, 2, 30004, 'S', 1, 6004, WB_INT_LEVEL_TABLE_FULL);
	assert_queue(&f, 1, 'B', 5002, (uint64_t[]){ 30003 }, 1);
	assert_queue(&f, 2, 'S', 6001, (uint64_t[]){ 20001 + R }, 1);
	assert_queue(&f, 2, 'S', 6002, (uint64_t[]){ 30002 }, 1);
	wb_bookset_stats(f.bs, &st);
	assert_int_equal(st.live_levels, 4);
	assert_int_equal(st.live_orders, 4);
	wb_bookset_destroy(f.bs);
}

/* max_orders exactly: the last order fits, the next is order_table_full, a duplicate at
 * full is still a duplicate, a replace at full fits, and after every order is deleted the
 * same number fits again. */
static void test_ring_table_exactly_full(void **state)
{
	enum { MAX = 40 };
	struct fx f;
	struct wb_itch_msg m;
	struct wb_bookset_stats st;

	(void)state;
	assert_int_equal(fx_init_ring(&f, MAX, 256, 4, WB_POLICY_FLAG, 16), 0);
	for (int round = 0; round < 3; round++) {
		uint64_t base = 1000 + (uint64_t)round * 100000;
		/* all in ring slot 7 but the first: every one but the last is a survivor */
		for (uint64_t k = 0; k < MAX; k++)
			add_ok(&f, 1, base + 7 + 16 * ((k * 17) % MAX), 'B', 10, 5000 - (uint32_t)(k % 5));
		add_int(&f, 1, base + 8, 'B', 10, 5000, WB_INT_ORDER_TABLE_FULL);
		add_int(&f, 2, base + 7 + 16 * 3, 'S', 10, 6000, WB_INT_DUPLICATE_ORDER);
		m = msg_replace(1, base + 7 + 16 * 5, base + 9, 20, 4000);
		assert_int_equal(fx_apply(&f, &m), 0);
		assert_int_equal(f.batch.n, 2);
		expect_ev(&f, 0, WB_EV_ORDER_DELETE, 0);
		expect_ev(&f, 1, WB_EV_ORDER_REPLACE, 0);
		m = msg_exec(1, base + 7 + 16 * 6, 10, 1); /* the whole order */
		assert_int_equal(fx_apply(&f, &m), 0);
		expect_ev(&f, 0, WB_EV_ORDER_EXEC, 0);
		add_ok(&f, 1, base + 8, 'B', 10, 5000);
		add_int(&f, 1, base + 10, 'B', 10, 5000, WB_INT_ORDER_TABLE_FULL);
		wb_bookset_stats(f.bs, &st);
		assert_int_equal(st.live_orders, MAX);
		assert_int_equal(st.order_table_full, 2 * (uint64_t)(round + 1));
		/* every one is found */
		for (uint64_t k = 0; k < MAX; k++)
			if (k != 5 && k != 6)
				del_ok(&f, 1, base + 7 + 16 * k, 10);
		del_ok(&f, 1, base + 9, 20);
		del_ok(&f, 1, base + 8, 10);
		wb_bookset_stats(f.bs, &st);
		assert_int_equal(st.live_orders, 0);
		assert_int_equal(st.live_levels, 0);
	}
	wb_bookset_destroy(f.bs);
}

/* Stale orders in the half of a 32768-slot ring the first sweep did not reach: exact counts
 * as lookups, re-adds and evictions erase them one at a time; they hold slots against
 * max_orders; walk_orders does not list them at a level record reused after the reset. */
static void test_ring_stale_orders_exact_counts(void **state)
{
	enum { MAX = 64, R = 32768 };
	struct fx f;
	struct wb_itch_msg m;
	struct wb_bookset_stats st;
	uint64_t q[64];

	(void)state;
	assert_int_equal(fx_init_ring(&f, MAX, 256, 4, WB_POLICY_FLAG, R), 0);
	/* symbol 1: 40 orders in ring slots 20000..20039, two of them survivors; symbol 2: 10 */
	for (uint64_t k = 0; k < 40; k++)
		add_ok(&f, 1, 20000 + k, 'B', 100, 5000 - (uint32_t)(k % 4));
	add_ok(&f, 2, 20000 + R, 'S', 7, 6000);      /* slot 20000: symbol 1's 20000 moves */
	add_ok(&f, 2, 20001 + 2 * R, 'S', 7, 6000);  /* slot 20001: 20001 moves */
	for (uint64_t k = 2; k < 10; k++)
		add_ok(&f, 2, 25000 + k, 'S', 7, 6000 + (uint32_t)k);
	assert_int_equal(wb_bookset_request_reset(f.bs, 1), 0);
	wb_bookset_service(f.bs); /* the reset, and a sweep of ring slots 0..16383 */
	wb_bookset_stats(f.bs, &st);
	assert_int_equal(st.live_orders, 10);
	assert_int_equal(st.stale_orders, 40);

	/* lookups: the first erases, the second finds nothing either way */
	unknown(&f, msg_exec(1, 20005, 1, 1), 20005);
	wb_bookset_stats(f.bs, &st);
	assert_int_equal(st.stale_orders, 39);
	unknown(&f, msg_exec(1, 20005, 1, 1), 20005);
	unknown(&f, msg_del(2, 20000), 20000); /* a stale survivor, under another locate */
	unknown(&f, msg_cancel(1, 20006, 5), 20006);
	unknown(&f, msg_replace(1, 20007, 20007 + 3 * R, 5, 5000), 20007);
	wb_bookset_stats(f.bs, &st);
	assert_int_equal(st.stale_orders, 36);

	/* a re-add of a stale reference is a new order; one a ring later evicts the stale one */
	add_ok(&f, 1, 20001, 'B', 55, 5000); /* the stale 20001 is a survivor */
	add_ok(&f, 1, 20010, 'B', 66, 5000); /* the stale 20010 in its own slot */
	add_ok(&f, 1, 20011 + R, 'B', 77, 5000); /* evicts the stale 20011: erased, not moved */
	wb_bookset_stats(f.bs, &st);
	assert_int_equal(st.stale_orders, 33);
	unknown(&f, msg_del(1, 20011), 20011);
	wb_bookset_stats(f.bs, &st);
	assert_int_equal(st.stale_orders, 33);
	assert_int_equal(st.live_orders, 13);
	/* the level at 5000 (a new record: the reset's zombie keeps the stale orders') holds
	 * the new orders only */
	assert_queue(&f, 1, 'B', 5000, (uint64_t[]){ 20001, 20010, 20011 + R }, 3);
	add_ok(&f, 2, 30000, 'B', 9, 4999); /* another symbol takes a freed level record */
	assert_queue(&f, 2, 'B', 4999, (uint64_t[]){ 30000 }, 1);
	add_int(&f, 1, 20001, 'B', 1, 5000, WB_INT_DUPLICATE_ORDER);

	/* stale orders hold slots: 14 live + 33 stale = 47 of 64 */
	for (uint64_t k = 0; k < 17; k++)
		add_ok(&f, 2, 40000 + k, 'S', 1, 6100);
	add_int(&f, 2, 40100, 'S', 1, 6100, WB_INT_ORDER_TABLE_FULL);
	add_ok(&f, 1, 20012, 'B', 1, 5000); /* a stale reference: its slot is freed first */
	add_int(&f, 2, 40101, 'S', 1, 6100, WB_INT_ORDER_TABLE_FULL);
	m = msg_replace(2, 40000, 20013, 3, 6101); /* onto a stale reference */
	assert_int_equal(fx_apply(&f, &m), 0);
	assert_int_equal(f.batch.n, 2);
	expect_ev(&f, 1, WB_EV_ORDER_REPLACE, 0);
	wb_bookset_stats(f.bs, &st);
	assert_int_equal(st.stale_orders, 31);
	assert_int_equal(st.live_orders + st.stale_orders, MAX - 1);
	add_ok(&f, 2, 40102, 'S', 1, 6100);
	add_int(&f, 2, 40103, 'S', 1, 6100, WB_INT_ORDER_TABLE_FULL);

	/* the next service call sweeps the rest: room for 31 */
	wb_bookset_service(f.bs);
	wb_bookset_stats(f.bs, &st);
	assert_int_equal(st.stale_orders, 0);
	for (uint64_t k = 0; k < 31; k++)
		add_ok(&f, 3, 50000 + k * R, 'B', 1, 100); /* all in one ring slot */
	add_int(&f, 3, 50000 + 31 * R, 'B', 1, 100, WB_INT_ORDER_TABLE_FULL);
	assert_int_equal(queue(&f, 3, 'B', 100, q, 64), 31);
	for (uint64_t k = 0; k < 31; k++)
		assert_int_equal(q[k], 50000 + k * R);
	assert_queue(&f, 1, 'B', 5000, (uint64_t[]){ 20001, 20010, 20011 + R, 20012 }, 4);
	wb_bookset_destroy(f.bs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_duplicates_of_evicted_orders),
		cmocka_unit_test(test_ring_ref_zero_and_top_of_range),
		cmocka_unit_test(test_ring_references_beyond_the_tag),
		cmocka_unit_test(test_ring_reset_levels_freed_with_their_orders),
		cmocka_unit_test(test_ring_table_exactly_full),
		cmocka_unit_test(test_ring_stale_orders_exact_counts),
		cmocka_unit_test(test_ring_tiny_ring_full_table),
		cmocka_unit_test(test_ring_refs_wrap_partial_sweeps),
		cmocka_unit_test(test_ring_big_ring_stale_evictions),
		cmocka_unit_test(test_ring_crowded_survivors_partial_sweeps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
