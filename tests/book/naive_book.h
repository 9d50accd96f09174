/* A deliberately naive order book model for differential tests: a flat array of orders
 * scanned linearly; levels rebuilt by sorting; queues compared by arrival order. Include
 * after cmocka.h and book_fixture.h. */
#ifndef WB_TEST_NAIVE_BOOK_H
#define WB_TEST_NAIVE_BOOK_H

#include <stdlib.h>
#include <string.h>

/* ---- the naive model ---- */

struct norder {
	uint64_t ref;
	uint64_t arrival; /* queue position: later arrivals go behind */
	int64_t price;
	uint32_t shares;
	uint16_t locate;
	char side;
	char live;
};

struct naive {
	struct norder *o;
	size_t n, cap;
	uint64_t clock;
	uint64_t integrity[WB_INT_REASON_MAX]; /* what the model itself finds wrong */
};

static inline struct norder *naive_find(struct naive *nv, uint64_t ref)
{
	for (size_t i = 0; i < nv->n; i++)
		if (nv->o[i].live && nv->o[i].ref == ref)
			return &nv->o[i];
	return NULL;
}

static inline void naive_add(struct naive *nv, uint16_t loc, uint64_t ref, char side, int64_t price, uint32_t shares)
{
	size_t i;

	/* reuse a dead slot so the array stays small */
	for (i = 0; i < nv->n && nv->o[i].live; i++)
		;
	if (i == nv->n) {
		assert_true(nv->n < nv->cap);
		nv->n++;
	}
	nv->o[i] = (struct norder){ .ref = ref, .arrival = ++nv->clock, .price = price, .shares = shares,
				    .locate = loc, .side = side, .live = 1 };
}

static inline void naive_reduce(struct naive *nv, uint64_t ref, uint32_t shares)
{
	struct norder *o = naive_find(nv, ref);

	if (!o) {
		nv->integrity[WB_INT_UNKNOWN_ORDER]++;
		return;
	}
	if (shares > o->shares)
		nv->integrity[WB_INT_EXEC_TOO_LARGE]++;
	o->shares -= shares < o->shares ? shares : o->shares;
	if (o->shares == 0)
		o->live = 0;
}

/* Best price of a side by a full scan; 0 when the side is empty. */
static inline int naive_best(const struct naive *nv, uint16_t loc, char side, int64_t *best)
{
	int any = 0;

	for (size_t i = 0; i < nv->n; i++) {
		const struct norder *o = &nv->o[i];
		if (!o->live || o->locate != loc || o->side != side)
			continue;
		if (!any || (side == 'B' ? o->price > *best : o->price < *best))
			*best = o->price;
		any = 1;
	}
	return any;
}

/* An order that joined at the top of its side while it meets the other side. */
static inline void naive_check_cross(struct naive *nv, uint16_t loc, char side, int64_t price)
{
	int64_t bid = 0, ask = 0;

	if (!naive_best(nv, loc, 'B', &bid) || !naive_best(nv, loc, 'S', &ask))
		return;
	if ((side == 'B' ? bid : ask) != price || bid < ask)
		return;
	nv->integrity[bid == ask ? WB_INT_LOCKED : WB_INT_CROSSED]++;
}

static inline void naive_apply(struct naive *nv, const struct wb_itch_msg *m)
{
	struct norder *o;

	switch (m->type) {
	case 'A':
	case 'F':
		if (naive_find(nv, m->u.add.ref)) {
			nv->integrity[WB_INT_DUPLICATE_ORDER]++;
			break;
		}
		naive_add(nv, m->locate, m->u.add.ref, m->u.add.side, m->u.add.price, m->u.add.shares);
		naive_check_cross(nv, m->locate, m->u.add.side, m->u.add.price);
		break;
	case 'E':
		naive_reduce(nv, m->u.exec.ref, m->u.exec.shares);
		break;
	case 'C':
		naive_reduce(nv, m->u.exec_px.ref, m->u.exec_px.shares);
		break;
	case 'X':
		naive_reduce(nv, m->u.cancel.ref, m->u.cancel.shares);
		break;
	case 'D':
		o = naive_find(nv, m->u.del.ref);
		if (!o) {
			nv->integrity[WB_INT_UNKNOWN_ORDER]++;
			break;
		}
		o->live = 0;
		break;
	case 'U':
		o = naive_find(nv, m->u.replace.old_ref);
		if (!o) {
			nv->integrity[WB_INT_UNKNOWN_ORDER]++;
			break;
		}
		o->live = 0;
		naive_add(nv, o->locate, m->u.replace.new_ref, o->side, m->u.replace.price, m->u.replace.shares);
		naive_check_cross(nv, o->locate, o->side, m->u.replace.price);
		break;
	default:
		break;
	}
}

/* Levels of one side, best first. */
struct nlevel {
	int64_t price;
	uint64_t shares;
	uint32_t orders;
};

static inline int cmp_price_desc(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

static inline size_t naive_levels(const struct naive *nv, uint16_t loc, char side, struct nlevel *out, size_t max)
{
	int64_t *prices = calloc(nv->n + 1, sizeof(*prices));
	size_t np = 0, nl = 0;

	assert_non_null(prices);
	for (size_t i = 0; i < nv->n; i++)
		if (nv->o[i].live && nv->o[i].locate == loc && nv->o[i].side == side)
			prices[np++] = nv->o[i].price;
	qsort(prices, np, sizeof(*prices), cmp_price_desc);
	for (size_t i = 0; i < np; i++) {
		if (nl > 0 && out[nl - 1].price == prices[i])
			continue;
		assert_true(nl < max);
		out[nl] = (struct nlevel){ .price = prices[i] };
		for (size_t j = 0; j < nv->n; j++) {
			const struct norder *o = &nv->o[j];
			if (o->live && o->locate == loc && o->side == side && o->price == prices[i]) {
				out[nl].shares += o->shares;
				out[nl].orders++;
			}
		}
		nl++;
	}
	free(prices);
	if (side == 'S') /* asks best first = ascending */
		for (size_t i = 0; i < nl / 2; i++) {
			struct nlevel t = out[i];
			out[i] = out[nl - 1 - i];
			out[nl - 1 - i] = t;
		}
	return nl;
}

/* ---- comparing a book with the model ---- */

struct got {
	struct nlevel lv[2][4096];
	size_t n[2];
};

static inline void got_level(void *arg, char side, const struct wb_level *l)
{
	struct got *g = arg;
	int s = side == 'S';

	assert_true(g->n[s] < 4096);
	g->lv[s][g->n[s]++] = (struct nlevel){ .price = l->price, .shares = l->shares, .orders = l->orders };
}

struct gotq {
	uint64_t refs[4096];
	size_t n;
};

static inline void got_order(void *arg, const struct wb_order_info *o)
{
	struct gotq *q = arg;

	assert_true(q->n < 4096);
	q->refs[q->n++] = o->ref;
}

/* Full depth and every queue of one symbol equal the model's. Returns levels compared. */
static inline size_t compare_symbol(struct wb_bookset *bs, const struct naive *nv, uint16_t loc)
{
	static struct got g;
	static struct nlevel want[4096];
	static struct gotq q;
	size_t total = 0;

	memset(g.n, 0, sizeof(g.n));
	wb_bookset_walk_levels(bs, loc, got_level, &g);
	for (int s = 0; s < 2; s++) {
		char side = s ? 'S' : 'B';
		size_t nw = naive_levels(nv, loc, side, want, 4096);

		assert_int_equal(g.n[s], nw);
		for (size_t i = 0; i < nw; i++) {
			assert_int_equal(g.lv[s][i].price, want[i].price);
			assert_int_equal(g.lv[s][i].shares, want[i].shares);
			assert_int_equal(g.lv[s][i].orders, want[i].orders);
			/* the queue: the level's live orders by arrival */
			q.n = 0;
			wb_bookset_walk_orders(bs, loc, side, want[i].price, got_order, &q);
			assert_int_equal(q.n, want[i].orders);
			uint64_t last = 0;
			for (size_t k = 0; k < q.n; k++) {
				const struct norder *o = NULL;
				for (size_t j = 0; j < nv->n && !o; j++)
					if (nv->o[j].live && nv->o[j].ref == q.refs[k])
						o = &nv->o[j];
				assert_non_null(o);
				assert_int_equal(o->locate, loc);
				assert_int_equal(o->price, want[i].price);
				assert_true(o->arrival > last);
				last = o->arrival;
			}
		}
		total += nw;
	}
	return total;
}

#endif
