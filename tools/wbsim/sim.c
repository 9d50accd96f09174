/* wbsim: deterministic ITCH 5.0 session, its Mold/pcap framing, faults and ground truth. */
#include "sim.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mold.h"
#include "wire.h"

#define NIL UINT32_MAX
#define TICK 100                       /* $0.01 in Price(4) */
#define NS_PER_HOUR 3600000000000ULL
#define DAY_START (4 * NS_PER_HOUR)    /* 04:00, first message */
#define DAY_END (20 * NS_PER_HOUR)     /* 20:00, last message */
#define MARKET_OPEN (9 * NS_PER_HOUR + 30 * 60000000000ULL)
#define MARKET_CLOSE (16 * NS_PER_HOUR)
#define MAX_RESUMES 64
#define CROSS_SYMBOLS 10               /* symbols with an opening/closing cross print */

/* ---------------------------------------------------------------- random numbers */

/* xoshiro256**: fast, and its streams do not depend on libc. */
struct rng {
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t res = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

static inline double rng_unit(struct rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

static inline uint32_t rng_below(struct rng *r, uint32_t n)
{
	return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Failures before the first success of probability p, capped. */
static uint32_t rng_geom(struct rng *r, double p, uint32_t cap)
{
	double u = 1.0 - rng_unit(r); /* (0, 1] */
	double k = floor(log(u) / log(1.0 - p));
	return k >= cap ? cap : (uint32_t)k;
}

/* ---------------------------------------------------------------- order model */

struct sim_order {
	uint64_t ref;
	uint32_t shares;
	uint32_t price;   /* Price(4) */
	uint32_t sym_pos; /* index in its symbol's order list */
	uint32_t prev, next; /* time priority within its level; next doubles as free list */
	uint16_t locate;
	uint8_t side;     /* 0 bid, 1 ask */
};

struct sim_level {
	uint32_t price;
	uint32_t orders;
	uint64_t shares;
	uint32_t head, tail;
};

/* Levels kept worst first so the busy end (the best) moves little on insert. */
struct sim_side {
	struct sim_level *lv;
	uint32_t n, cap;
};

struct sim_symbol {
	char stock[8];
	int64_t mid; /* ticks */
	struct sim_side side[2];
	uint32_t *orders;
	uint32_t norders, cap;
	bool halted;
};

struct sim_resume {
	uint64_t at; /* message index */
	uint16_t locate;
	char type;   /* 'H' or 'h' */
};

enum sim_phase { PH_START, PH_DIR, PH_SYS_START, PH_ACTION, PH_MWCB, PH_FLOW, PH_END_SYSTEM, PH_END_MESSAGES, PH_DONE };

/* ---------------------------------------------------------------- lines */

struct sim_line_out {
	FILE *f;
	const struct wb_sim_line *cfg;
	struct rng rng;
	uint16_t ip_id;
	uint32_t burst_left;
	uint64_t last_ts;
	bool held;
	uint8_t held_buf[WB_SIM_MOLD_PAYLOAD_MAX + 64];
	size_t held_len;
	int held_copies;
	json_t *lost;      /* [[seq, count], ...] */
	json_t *truncated; /* [[seq, count, bytes kept], ...] */
	struct wb_sim_line_stats st;
};

struct wb_sim {
	struct wb_sim_opts o;
	struct rng flow, clock;
	enum sim_phase phase;
	uint64_t emitted;
	uint64_t last_ts;
	uint64_t slot_ns;      /* DAY span per message, scaled */
	uint64_t next_ref, next_match;
	uint64_t midnight_ns;

	struct sim_symbol *sym; /* index = locate, [0] unused */
	double *cdf;            /* activity by rank */
	uint16_t *by_rank;      /* locate of each activity rank */

	struct sim_order *pool;
	uint32_t pool_n, pool_cap, free_head;
	uint64_t live, peak_live, added;

	bool open_sent, close_sent;
	uint32_t open_cross_left, close_cross_left;
	struct sim_resume resume[MAX_RESUMES];
	uint32_t nresume;

	/* virtual packer: packet count independent of outputs */
	size_t vp_len;
	uint32_t vp_count;
	uint64_t packets;

	uint64_t per_type[128];
	struct sim_line_out line[2];
	bool lines_used;
};

/* ---------------------------------------------------------------- options */

void wb_sim_opts_default(struct wb_sim_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->symbols = 3000;
	o->messages = 1000000;
	o->seed = 1;
	strcpy(o->session, "WBSIM00001");
	o->year = 2026;
	o->month = 11;
	o->day = 20;
	wb_sim_parse_endpoint("233.54.12.111:26477", &o->line[0].group, &o->line[0].port);
	wb_sim_parse_endpoint("233.49.196.111:26477", &o->line[1].group, &o->line[1].port);
	o->line[0].lag_ns = 0;
	o->line[1].lag_ns = 5000;
}

int wb_sim_parse_endpoint(const char *s, uint32_t *group, uint16_t *port)
{
	unsigned a, b, c, d, p;
	char tail;
	if (sscanf(s, "%u.%u.%u.%u:%u%c", &a, &b, &c, &d, &p, &tail) != 5)
		return -EINVAL;
	if (a > 255 || b > 255 || c > 255 || d > 255 || p == 0 || p > 65535)
		return -EINVAL;
	*group = (a << 24) | (b << 16) | (c << 8) | d;
	*port = (uint16_t)p;
	return 0;
}

static int days_in_month(int y, int m)
{
	static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : dm[m - 1];
}

int wb_sim_parse_date(const char *s, int *year, int *month, int *day)
{
	int y, m, d;
	char tail;
	if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3)
		return -EINVAL;
	if (y < 1970 || y > 2200 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
		return -EINVAL;
	*year = y;
	*month = m;
	*day = d;
	return 0;
}

/* Days since 1970-01-01 (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Day of month of the n-th Sunday (1-based) of a month. */
static int nth_sunday(int y, int m, int n)
{
	int64_t first = days_from_civil(y, m, 1);
	int wd = (int)((first + 4) % 7); /* 1970-01-01 was a Thursday; 0 = Sunday */
	return 1 + (7 - wd) % 7 + 7 * (n - 1);
}

uint64_t wb_sim_midnight_ns(int year, int month, int day)
{
	/* US DST: from the second Sunday of March to the first Sunday of November, 02:00. */
	int key = month * 100 + day;
	bool dst = key > 300 + nth_sunday(year, 3, 2) && key <= 1100 + nth_sunday(year, 11, 1);
	int64_t secs = days_from_civil(year, month, day) * 86400 + (dst ? 4 : 5) * 3600;
	return (uint64_t)secs * 1000000000ULL;
}

static bool prob_ok(double p) { return p >= 0.0 && p <= 1.0; }

static int check_opts(const struct wb_sim_opts *o)
{
	if (o->symbols == 0 || o->symbols > 65535)
		return -EINVAL;
	if (o->messages < 2ULL * o->symbols + 100 || o->messages > (1ULL << 40))
		return -EINVAL;
	if (strlen(o->session) == 0 || strlen(o->session) > 10)
		return -EINVAL;
	if (o->month < 1 || o->month > 12 || o->day < 1 || o->day > days_in_month(o->year, o->month))
		return -EINVAL;
	for (int i = 0; i < 2; i++) {
		const struct wb_sim_faults *f = &o->line[i].faults;
		if (!prob_ok(f->loss) || !prob_ok(f->burst) || !prob_ok(f->dup) || !prob_ok(f->reorder) ||
		    !prob_ok(f->trunc) || !prob_ok(f->garbage))
			return -EINVAL;
		if (f->burst > 0 && f->burst_len == 0)
			return -EINVAL;
	}
	return 0;
}

/* ---------------------------------------------------------------- symbols */

static int cmp_stock(const void *a, const void *b) { return memcmp(a, b, 8); }

static int make_symbols(struct wb_sim *s, struct rng *r)
{
	uint32_t n = s->o.symbols;
	uint32_t hcap = 1;
	while (hcap < n * 4)
		hcap <<= 1;
	uint64_t *seen = calloc(hcap, sizeof(*seen));
	char (*names)[8] = calloc(n, 8);
	int ret = -ENOMEM;
	if (!seen || !names)
		goto out_free;
	for (uint32_t i = 0; i < n;) {
		/* mostly 3-4 letters, like a real listing */
		uint32_t u = rng_below(r, 100);
		int len = u < 1 ? 1 : u < 8 ? 2 : u < 38 ? 3 : u < 88 ? 4 : 5;
		char name[8];
		memset(name, ' ', 8);
		for (int k = 0; k < len; k++)
			name[k] = (char)('A' + rng_below(r, 26));
		uint64_t key;
		memcpy(&key, name, 8);
		uint32_t h = (uint32_t)((key * 0x9e3779b97f4a7c15ULL) >> 32) & (hcap - 1);
		while (seen[h] && seen[h] != key)
			h = (h + 1) & (hcap - 1);
		if (seen[h] == key)
			continue;
		seen[h] = key;
		memcpy(names[i++], name, 8);
	}
	/* Nasdaq hands out locates in alphabetical order */
	qsort(names, n, 8, cmp_stock);
	for (uint32_t i = 0; i < n; i++) {
		struct sim_symbol *sy = &s->sym[i + 1];
		memcpy(sy->stock, names[i], 8);
		double lo = log(200.0), hi = log(40000.0); /* $2 .. $400 */
		sy->mid = (int64_t)exp(lo + (hi - lo) * rng_unit(r));
	}
	/* activity: Zipf over a random ranking of the symbols */
	for (uint32_t i = 0; i < n; i++)
		s->by_rank[i] = (uint16_t)(i + 1);
	for (uint32_t i = n - 1; i > 0; i--) {
		uint32_t j = rng_below(r, i + 1);
		uint16_t t = s->by_rank[i];
		s->by_rank[i] = s->by_rank[j];
		s->by_rank[j] = t;
	}
	double acc = 0;
	for (uint32_t i = 0; i < n; i++) {
		acc += 1.0 / pow((double)(i + 1), 0.8);
		s->cdf[i] = acc;
	}
	for (uint32_t i = 0; i < n; i++)
		s->cdf[i] /= acc;
	ret = 0;
out_free:
	free(seen);
	free(names);
	return ret;
}

static uint16_t pick_symbol(struct wb_sim *s)
{
	double u = rng_unit(&s->flow);
	uint32_t lo = 0, hi = s->o.symbols - 1;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (s->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return s->by_rank[lo];
}

/* ---------------------------------------------------------------- book model */

static inline int64_t side_key(int side, uint32_t price) { return side == 0 ? (int64_t)price : -(int64_t)price; }

/* Index of the level at price, or where it would be inserted; *found tells which. */
static uint32_t level_find(const struct sim_side *sd, int side, uint32_t price, bool *found)
{
	int64_t key = side_key(side, price);
	uint32_t lo = 0, hi = sd->n;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		int64_t k = side_key(side, sd->lv[mid].price);
		if (k < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < sd->n && sd->lv[lo].price == price;
	return lo;
}

static inline bool best_price(const struct sim_symbol *sy, int side, uint32_t *price)
{
	const struct sim_side *sd = &sy->side[side];
	if (sd->n == 0)
		return false;
	*price = sd->lv[sd->n - 1].price;
	return true;
}

static int grow(void **p, uint32_t *cap, size_t elem, uint32_t need)
{
	if (need <= *cap)
		return 0;
	uint32_t nc = *cap ? *cap * 2 : 16;
	while (nc < need)
		nc *= 2;
	void *np = realloc(*p, (size_t)nc * elem);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = nc;
	return 0;
}

static int order_alloc(struct wb_sim *s, uint32_t *out)
{
	if (s->free_head != NIL) {
		*out = s->free_head;
		s->free_head = s->pool[*out].next;
		return 0;
	}
	int ret = grow((void **)&s->pool, &s->pool_cap, sizeof(*s->pool), s->pool_n + 1);
	if (ret)
		return ret;
	*out = s->pool_n++;
	return 0;
}

/* Links order oi (fields set) into its symbol and level, at the back of the queue. */
static int order_insert(struct wb_sim *s, uint32_t oi)
{
	struct sim_order *o = &s->pool[oi];
	struct sim_symbol *sy = &s->sym[o->locate];
	struct sim_side *sd = &sy->side[o->side];
	bool found;
	uint32_t li = level_find(sd, o->side, o->price, &found);
	if (!found) {
		int ret = grow((void **)&sd->lv, &sd->cap, sizeof(*sd->lv), sd->n + 1);
		if (ret)
			return ret;
		memmove(&sd->lv[li + 1], &sd->lv[li], (size_t)(sd->n - li) * sizeof(*sd->lv));
		sd->n++;
		sd->lv[li] = (struct sim_level){.price = o->price, .head = NIL, .tail = NIL};
	}
	int ret = grow((void **)&sy->orders, &sy->cap, sizeof(*sy->orders), sy->norders + 1);
	if (ret)
		return ret;
	struct sim_level *lv = &sd->lv[li];
	o->prev = lv->tail;
	o->next = NIL;
	if (lv->tail != NIL)
		s->pool[lv->tail].next = oi;
	else
		lv->head = oi;
	lv->tail = oi;
	lv->orders++;
	lv->shares += o->shares;
	o->sym_pos = sy->norders;
	sy->orders[sy->norders++] = oi;
	s->live++;
	if (s->live > s->peak_live)
		s->peak_live = s->live;
	return 0;
}

static void order_remove(struct wb_sim *s, uint32_t oi)
{
	struct sim_order *o = &s->pool[oi];
	struct sim_symbol *sy = &s->sym[o->locate];
	struct sim_side *sd = &sy->side[o->side];
	bool found;
	uint32_t li = level_find(sd, o->side, o->price, &found);
	struct sim_level *lv = &sd->lv[li];
	if (o->prev != NIL)
		s->pool[o->prev].next = o->next;
	else
		lv->head = o->next;
	if (o->next != NIL)
		s->pool[o->next].prev = o->prev;
	else
		lv->tail = o->prev;
	lv->orders--;
	lv->shares -= o->shares;
	if (lv->orders == 0) {
		memmove(&sd->lv[li], &sd->lv[li + 1], (size_t)(sd->n - li - 1) * sizeof(*sd->lv));
		sd->n--;
	}
	uint32_t last = sy->orders[--sy->norders];
	sy->orders[o->sym_pos] = last;
	s->pool[last].sym_pos = o->sym_pos;
	o->next = s->free_head;
	s->free_head = oi;
	s->live--;
}

static void order_reduce(struct wb_sim *s, uint32_t oi, uint32_t shares)
{
	struct sim_order *o = &s->pool[oi];
	if (shares >= o->shares) {
		order_remove(s, oi);
		return;
	}
	struct sim_side *sd = &s->sym[o->locate].side[o->side];
	bool found;
	uint32_t li = level_find(sd, o->side, o->price, &found);
	sd->lv[li].shares -= shares;
	o->shares -= shares;
}

/* ---------------------------------------------------------------- message builders */

static void set_stock(char dst[8], const struct sim_symbol *sy) { memcpy(dst, sy->stock, 8); }

static uint32_t gen_shares(struct wb_sim *s)
{
	uint32_t u = rng_below(&s->flow, 20);
	if (u == 0)
		return 1 + rng_below(&s->flow, 99); /* odd lot */
	if (u == 1)
		return 100 * (10 + rng_below(&s->flow, 90)); /* block */
	return 100 * (1 + rng_geom(&s->flow, 0.45, 30));
}

/* A valid resting price on side near want (ticks): never locks or crosses the book. */
static bool place_price(const struct sim_symbol *sy, int side, int64_t want, uint32_t *price)
{
	uint32_t opp;
	if (side == 0) {
		if (best_price(sy, 1, &opp) && want * TICK >= (int64_t)opp)
			want = (int64_t)opp / TICK - 1;
		if (want < 1)
			return false;
	} else {
		if (best_price(sy, 0, &opp) && want * TICK <= (int64_t)opp)
			want = (int64_t)opp / TICK + 1;
		if (want < 1)
			want = 1;
	}
	if (want > 400000) /* $4000: keeps Price(4) and the walk bounded */
		return false;
	*price = (uint32_t)(want * TICK);
	return true;
}

static int gen_add(struct wb_sim *s, uint16_t loc, struct wb_itch_msg *m)
{
	struct sim_symbol *sy = &s->sym[loc];
	if (rng_below(&s->flow, 8) == 0)
		sy->mid += rng_below(&s->flow, 2) ? 1 : -1;
	if (sy->mid < 100)
		sy->mid = 100;
	int side = (int)rng_below(&s->flow, 2);
	int64_t d = rng_geom(&s->flow, 0.35, 60);
	uint32_t price;
	if (!place_price(sy, side, side == 0 ? sy->mid - d : sy->mid + 1 + d, &price)) {
		side = !side;
		if (!place_price(sy, side, side == 0 ? sy->mid - d : sy->mid + 1 + d, &price))
			return -ERANGE;
	}
	uint32_t oi;
	int ret = order_alloc(s, &oi);
	if (ret)
		return ret;
	struct sim_order *o = &s->pool[oi];
	o->ref = s->next_ref++;
	o->shares = gen_shares(s);
	o->price = price;
	o->locate = loc;
	o->side = (uint8_t)side;
	ret = order_insert(s, oi);
	if (ret)
		return ret;
	s->added++;
	static const char mpids[8][4] = {{'G','S','C','O'}, {'M','S','C','O'}, {'J','P','M','S'}, {'U','B','S','S'},
					 {'C','D','R','G'}, {'V','I','R','T'}, {'S','U','S','Q'}, {'N','I','T','E'}};
	bool attributed = rng_below(&s->flow, 10) == 0;
	m->type = attributed ? 'F' : 'A';
	m->locate = loc;
	m->u.add.ref = o->ref;
	m->u.add.side = side == 0 ? 'B' : 'S';
	m->u.add.shares = o->shares;
	set_stock(m->u.add.stock, sy);
	m->u.add.price = price;
	if (attributed)
		memcpy(m->u.add.mpid, mpids[rng_below(&s->flow, 8)], 4);
	else
		memset(m->u.add.mpid, ' ', 4);
	return 0;
}

/* A live order of an active symbol, usually a recent one: most orders on a real feed
 * are canceled or replaced soon after they were added. False when a few tries found none. */
static bool pick_live(struct wb_sim *s, uint32_t *oi)
{
	for (int t = 0; t < 8; t++) {
		struct sim_symbol *sy = &s->sym[pick_symbol(s)];
		if (!sy->norders)
			continue;
		uint32_t k;
		if (rng_unit(&s->flow) < 0.75) /* the list is roughly in arrival order at its end */
			k = sy->norders - 1 - rng_geom(&s->flow, 0.15, sy->norders - 1);
		else
			k = rng_below(&s->flow, sy->norders);
		*oi = sy->orders[k];
		return true;
	}
	return false;
}

/* The oldest order at the best level of a trading symbol: what a marketable order hits. */
static bool pick_best(struct wb_sim *s, uint32_t *oi)
{
	for (int t = 0; t < 8; t++) {
		struct sim_symbol *sy = &s->sym[pick_symbol(s)];
		if (sy->halted || sy->norders == 0)
			continue;
		int side = (int)rng_below(&s->flow, 2);
		if (sy->side[side].n == 0)
			side = !side;
		struct sim_side *sd = &sy->side[side];
		*oi = sd->lv[sd->n - 1].head;
		return true;
	}
	return false;
}

static bool gen_delete(struct wb_sim *s, struct wb_itch_msg *m)
{
	uint32_t oi;
	if (!pick_live(s, &oi))
		return false;
	m->type = 'D';
	m->locate = s->pool[oi].locate;
	m->u.del.ref = s->pool[oi].ref;
	order_remove(s, oi);
	return true;
}

static bool gen_cancel(struct wb_sim *s, struct wb_itch_msg *m)
{
	uint32_t oi;
	if (!pick_live(s, &oi))
		return false;
	struct sim_order *o = &s->pool[oi];
	if (o->shares < 2) {
		m->type = 'D';
		m->locate = o->locate;
		m->u.del.ref = o->ref;
		order_remove(s, oi);
		return true;
	}
	uint32_t k = 1 + rng_below(&s->flow, o->shares - 1);
	m->type = 'X';
	m->locate = o->locate;
	m->u.cancel.ref = o->ref;
	m->u.cancel.shares = k;
	order_reduce(s, oi, k);
	return true;
}

static int gen_replace(struct wb_sim *s, struct wb_itch_msg *m, bool *done)
{
	uint32_t oi;
	*done = false;
	if (!pick_live(s, &oi))
		return 0;
	struct sim_order old = s->pool[oi];
	struct sim_symbol *sy = &s->sym[old.locate];
	int64_t want = (int64_t)old.price / TICK + (int64_t)rng_below(&s->flow, 5) - 2;
	uint32_t price;
	if (!place_price(sy, old.side, want, &price))
		return 0;
	order_remove(s, oi);
	uint32_t ni;
	int ret = order_alloc(s, &ni);
	if (ret)
		return ret;
	struct sim_order *o = &s->pool[ni];
	o->ref = s->next_ref++;
	o->shares = gen_shares(s);
	o->price = price;
	o->locate = old.locate;
	o->side = old.side;
	ret = order_insert(s, ni);
	if (ret)
		return ret;
	m->type = 'U';
	m->locate = old.locate;
	m->u.replace.old_ref = old.ref;
	m->u.replace.new_ref = o->ref;
	m->u.replace.shares = o->shares;
	m->u.replace.price = price;
	*done = true;
	return 0;
}

static bool gen_execute(struct wb_sim *s, struct wb_itch_msg *m, bool with_price)
{
	uint32_t oi;
	if (!pick_best(s, &oi))
		return false;
	struct sim_order *o = &s->pool[oi];
	uint32_t k = o->shares == 1 || rng_unit(&s->flow) < 0.55 ? o->shares : 1 + rng_below(&s->flow, o->shares - 1);
	m->locate = o->locate;
	if (with_price) {
		m->type = 'C';
		m->u.exec_px.ref = o->ref;
		m->u.exec_px.shares = k;
		m->u.exec_px.match = ++s->next_match;
		m->u.exec_px.printable = rng_below(&s->flow, 8) ? 'Y' : 'N';
		m->u.exec_px.price = o->price;
	} else {
		m->type = 'E';
		m->u.exec.ref = o->ref;
		m->u.exec.shares = k;
		m->u.exec.match = ++s->next_match;
	}
	order_reduce(s, oi, k);
	return true;
}

/* A price inside the spread (or at the mid when a side is empty). */
static uint32_t inside_price(const struct sim_symbol *sy)
{
	uint32_t bid, ask;
	if (best_price(sy, 0, &bid) && best_price(sy, 1, &ask))
		return (bid / TICK + (ask / TICK - bid / TICK) / 2) * TICK;
	return (uint32_t)(sy->mid * TICK);
}

static bool gen_trade(struct wb_sim *s, struct wb_itch_msg *m)
{
	uint16_t loc = pick_symbol(s);
	struct sim_symbol *sy = &s->sym[loc];
	if (sy->halted)
		return false;
	m->type = 'P';
	m->locate = loc;
	m->u.trade.ref = 0; /* Nasdaq zeroes the reference of hidden executions */
	m->u.trade.side = rng_below(&s->flow, 2) ? 'B' : 'S';
	m->u.trade.shares = gen_shares(s);
	set_stock(m->u.trade.stock, sy);
	m->u.trade.price = inside_price(sy);
	m->u.trade.match = ++s->next_match;
	return true;
}

static void gen_cross(struct wb_sim *s, uint16_t loc, char cross_type, struct wb_itch_msg *m)
{
	struct sim_symbol *sy = &s->sym[loc];
	m->type = 'Q';
	m->locate = loc;
	m->u.cross.shares = 100ULL * (100 + rng_below(&s->flow, 100000));
	set_stock(m->u.cross.stock, sy);
	m->u.cross.price = inside_price(sy);
	m->u.cross.match = ++s->next_match;
	m->u.cross.cross_type = cross_type;
}

static bool schedule_resume(struct wb_sim *s, uint16_t loc, char type)
{
	if (s->nresume == MAX_RESUMES)
		return false;
	s->resume[s->nresume++] = (struct sim_resume){
		.at = s->emitted + 50 + rng_below(&s->flow, 2000), .locate = loc, .type = type};
	return true;
}

/* The rarer message types, each a sprinkle. Returns false to fall back to an add. */
static bool gen_other(struct wb_sim *s, char type, struct wb_itch_msg *m)
{
	uint16_t loc = pick_symbol(s);
	struct sim_symbol *sy = &s->sym[loc];
	uint32_t px = inside_price(sy);
	m->locate = loc;
	m->type = type;
	switch (type) {
	case 'I': {
		static const char dirs[] = "BSNO";
		static const char var[] = "L123456789ABC ";
		uint64_t t = s->last_ts;
		m->u.noii.paired = 100ULL * rng_below(&s->flow, 50000);
		m->u.noii.imbalance = 100ULL * rng_below(&s->flow, 5000);
		m->u.noii.direction = dirs[rng_below(&s->flow, 4)];
		set_stock(m->u.noii.stock, sy);
		m->u.noii.far_price = px;
		m->u.noii.near_price = px;
		m->u.noii.ref_price = px;
		m->u.noii.cross_type = t < MARKET_OPEN ? 'O' : t < MARKET_CLOSE ? 'C' : 'H';
		m->u.noii.variation = var[rng_below(&s->flow, sizeof(var) - 1)];
		return true;
	}
	case 'N':
		set_stock(m->u.rpii.stock, sy);
		m->u.rpii.interest = "BSAN"[rng_below(&s->flow, 4)];
		return true;
	case 'Y':
		set_stock(m->u.regsho.stock, sy);
		m->u.regsho.action = (char)('0' + rng_below(&s->flow, 3));
		return true;
	case 'L':
		memcpy(m->u.mpp.mpid, "VIRT", 4);
		set_stock(m->u.mpp.stock, sy);
		m->u.mpp.primary_mm = rng_below(&s->flow, 2) ? 'Y' : 'N';
		m->u.mpp.mm_mode = 'N';
		m->u.mpp.state = 'A';
		return true;
	case 'K':
		set_stock(m->u.ipo.stock, sy);
		m->u.ipo.release_time = 11 * 3600 + 60 * rng_below(&s->flow, 240);
		m->u.ipo.qualifier = rng_below(&s->flow, 10) ? 'A' : 'C';
		m->u.ipo.price = px;
		return true;
	case 'J':
		set_stock(m->u.luld.stock, sy);
		m->u.luld.ref_price = px;
		m->u.luld.upper = px + px / 20;
		m->u.luld.lower = px - px / 20;
		m->u.luld.extension = rng_below(&s->flow, 3);
		return true;
	case 'O':
		set_stock(m->u.dlcr.stock, sy);
		m->u.dlcr.eligible = 'Y';
		m->u.dlcr.min_price = px - px / 5;
		m->u.dlcr.max_price = px + px / 5;
		m->u.dlcr.near_price = px;
		m->u.dlcr.near_time = s->last_ts;
		m->u.dlcr.lower_collar = px - px / 10;
		m->u.dlcr.upper_collar = px + px / 10;
		return true;
	case 'W':
		m->locate = 0;
		m->u.mwcb_status.level = '1';
		return true;
	case 'B':
		if (s->next_match == 0)
			return false;
		m->locate = 0;
		m->u.broken.match = 1 + rng_next(&s->flow) % s->next_match;
		return true;
	case 'H':
		if (sy->halted || !schedule_resume(s, loc, 'H'))
			return false;
		sy->halted = true;
		set_stock(m->u.action.stock, sy);
		if (rng_below(&s->flow, 2)) {
			m->u.action.state = 'H';
			memcpy(m->u.action.reason, "T1  ", 4);
		} else {
			m->u.action.state = 'P';
			memcpy(m->u.action.reason, "LUDP", 4);
		}
		m->u.action.reserved = ' ';
		return true;
	case 'h':
		if (sy->halted || !schedule_resume(s, loc, 'h'))
			return false;
		sy->halted = true;
		set_stock(m->u.op_halt.stock, sy);
		m->u.op_halt.market_code = 'Q';
		m->u.op_halt.action = 'H';
		return true;
	}
	return false;
}

static bool gen_resume(struct wb_sim *s, struct wb_itch_msg *m)
{
	for (uint32_t i = 0; i < s->nresume; i++) {
		if (s->resume[i].at > s->emitted)
			continue;
		struct sim_resume r = s->resume[i];
		s->resume[i] = s->resume[--s->nresume];
		struct sim_symbol *sy = &s->sym[r.locate];
		sy->halted = false;
		m->locate = r.locate;
		m->type = r.type;
		if (r.type == 'H') {
			set_stock(m->u.action.stock, sy);
			m->u.action.state = 'T';
			m->u.action.reserved = ' ';
			memset(m->u.action.reason, ' ', 4);
		} else {
			set_stock(m->u.op_halt.stock, sy);
			m->u.op_halt.market_code = 'Q';
			m->u.op_halt.action = 'T';
		}
		return true;
	}
	return false;
}

/* Cumulative mix of the order flow after adds and deletes (docs/wbsim.md). */
static const struct {
	char type;
	double share;
} flow_mix[] = {
	{'U', 0.150}, {'E', 0.045}, {'C', 0.005}, {'X', 0.020}, {'P', 0.010}, {'I', 0.008},
	{'N', 0.003}, {'Y', 0.0015}, {'L', 0.0015}, {'B', 0.001}, {'H', 0.0003}, {'h', 0.0001},
	{'K', 0.0002}, {'J', 0.0002}, {'W', 0.0001}, {'O', 0.0001},
};

static int gen_flow(struct wb_sim *s, struct wb_itch_msg *m)
{
	if (gen_resume(s, m))
		return 0;
	if (s->open_cross_left) {
		gen_cross(s, s->by_rank[--s->open_cross_left], 'O', m);
		return 0;
	}
	if (s->close_cross_left) {
		gen_cross(s, s->by_rank[--s->close_cross_left], 'C', m);
		return 0;
	}
	/* the book builds up in the morning and drains later; the day averages 40/35 */
	bool morning = s->emitted * 10 < s->o.messages * 4;
	double add = morning ? 0.47 : 0.36, del = morning ? 0.28 : 0.38;
	double u = rng_unit(&s->flow);
	if (u >= add) {
		u -= add;
		if (u < del) {
			if (gen_delete(s, m))
				return 0;
		} else {
			u -= del;
			for (size_t i = 0; i < sizeof(flow_mix) / sizeof(flow_mix[0]); i++) {
				if (u >= flow_mix[i].share) {
					u -= flow_mix[i].share;
					continue;
				}
				char t = flow_mix[i].type;
				bool ok = false;
				int ret = 0;
				if (t == 'U')
					ret = gen_replace(s, m, &ok);
				else if (t == 'E' || t == 'C')
					ok = gen_execute(s, m, t == 'C');
				else if (t == 'X')
					ok = gen_cancel(s, m);
				else if (t == 'P')
					ok = gen_trade(s, m);
				else
					ok = gen_other(s, t, m);
				if (ret)
					return ret;
				if (ok)
					return 0;
				break;
			}
		}
	}
	for (int t = 0; t < 8; t++) {
		int ret = gen_add(s, pick_symbol(s), m);
		if (ret != -ERANGE)
			return ret;
	}
	return -ERANGE;
}

/* ---------------------------------------------------------------- session */

static void sys_event(struct wb_itch_msg *m, char code)
{
	m->type = 'S';
	m->locate = 0;
	m->u.sys.event_code = code;
}

static void directory(const struct wb_sim *s, uint16_t loc, struct rng *r, struct wb_itch_msg *m)
{
	static const char cats[] = "QQQGGSNNAPZ";
	m->type = 'R';
	m->locate = loc;
	memcpy(m->u.dir.stock, s->sym[loc].stock, 8);
	char cat = cats[rng_below(r, sizeof(cats) - 1)];
	bool nasdaq = cat == 'Q' || cat == 'G' || cat == 'S';
	bool etp = rng_below(r, 10) == 0;
	m->u.dir.market_category = cat;
	m->u.dir.financial_status = nasdaq ? 'N' : ' ';
	m->u.dir.round_lot_size = 100;
	m->u.dir.round_lots_only = 'N';
	m->u.dir.issue_classification = etp ? 'Q' : 'C';
	memcpy(m->u.dir.issue_sub_type, etp ? "I " : "Z ", 2);
	m->u.dir.authenticity = 'P';
	m->u.dir.short_sale_threshold = 'N';
	m->u.dir.ipo_flag = nasdaq ? 'N' : ' ';
	m->u.dir.luld_tier = rng_below(r, 4) == 0 ? '1' : '2';
	m->u.dir.etp_flag = etp ? 'Y' : 'N';
	m->u.dir.etp_leverage = etp && rng_below(r, 3) == 0 ? 3 : (etp ? 1 : 0);
	m->u.dir.inverse = etp && rng_below(r, 4) == 0 ? 'Y' : 'N';
}

int wb_sim_create(const struct wb_sim_opts *opts, struct wb_sim **out)
{
	int ret = check_opts(opts);
	if (ret)
		return ret;
	struct wb_sim *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->o = *opts;
	rng_seed(&s->flow, opts->seed, 1);
	rng_seed(&s->clock, opts->seed, 2);
	rng_seed(&s->line[0].rng, opts->seed, 3);
	rng_seed(&s->line[1].rng, opts->seed, 4);
	s->line[0].cfg = &s->o.line[0];
	s->line[1].cfg = &s->o.line[1];
	s->slot_ns = (DAY_END - DAY_START) / opts->messages;
	s->next_ref = 1;
	s->free_head = NIL;
	s->midnight_ns = wb_sim_midnight_ns(opts->year, opts->month, opts->day);
	ret = -ENOMEM;
	s->sym = calloc((size_t)opts->symbols + 1, sizeof(*s->sym));
	s->cdf = calloc(opts->symbols, sizeof(*s->cdf));
	s->by_rank = calloc(opts->symbols, sizeof(*s->by_rank));
	if (!s->sym || !s->cdf || !s->by_rank)
		goto out_destroy;
	struct rng names;
	rng_seed(&names, opts->seed, 5);
	ret = make_symbols(s, &names);
	if (ret)
		goto out_destroy;
	*out = s;
	return 0;
out_destroy:
	wb_sim_destroy(s);
	return ret;
}

void wb_sim_destroy(struct wb_sim *s)
{
	if (!s)
		return;
	if (s->sym) {
		for (uint32_t i = 0; i <= s->o.symbols; i++) {
			free(s->sym[i].side[0].lv);
			free(s->sym[i].side[1].lv);
			free(s->sym[i].orders);
		}
	}
	for (int i = 0; i < 2; i++) {
		if (s->line[i].f)
			fclose(s->line[i].f);
		json_decref(s->line[i].lost);
		json_decref(s->line[i].truncated);
	}
	free(s->sym);
	free(s->cdf);
	free(s->by_rank);
	free(s->pool);
	free(s);
}

/* ITCH time of message idx: its slot from 04:00 to 20:00 plus jitter inside the slot. */
static uint64_t slot_start(const struct wb_sim *s, uint64_t idx)
{
	return DAY_START + (uint64_t)(((unsigned __int128)idx * (DAY_END - DAY_START)) / s->o.messages);
}

static void count_packet(struct wb_sim *s, size_t len)
{
	if (s->vp_count && s->vp_len + 2 + len > WB_SIM_MOLD_PAYLOAD_MAX) {
		s->packets++;
		s->vp_len = WB_MOLD_HDR_LEN;
		s->vp_count = 0;
	}
	if (!s->vp_count)
		s->vp_len = WB_MOLD_HDR_LEN;
	s->vp_len += 2 + len;
	s->vp_count++;
}

int wb_sim_next(struct wb_sim *s, struct wb_itch_msg *m, uint64_t *seq)
{
	uint64_t idx = s->emitted;
	uint32_t nsym = s->o.symbols;
	uint64_t ts = slot_start(s, idx) + (s->slot_ns > 1 ? rng_next(&s->clock) % s->slot_ns : 0);
	memset(m, 0, sizeof(*m));
	switch (s->phase) {
	case PH_DONE:
		return 0;
	case PH_START:
		sys_event(m, 'O');
		s->phase = PH_DIR;
		break;
	case PH_DIR:
		directory(s, (uint16_t)idx, &s->flow, m);
		if (idx == nsym)
			s->phase = PH_SYS_START;
		break;
	case PH_SYS_START:
		sys_event(m, 'S');
		s->phase = PH_ACTION;
		break;
	case PH_ACTION: {
		uint16_t loc = (uint16_t)(idx - nsym - 1);
		m->type = 'H';
		m->locate = loc;
		memcpy(m->u.action.stock, s->sym[loc].stock, 8);
		m->u.action.state = 'T';
		m->u.action.reserved = ' ';
		memset(m->u.action.reason, ' ', 4);
		if (loc == nsym)
			s->phase = PH_MWCB;
		break;
	}
	case PH_MWCB:
		m->type = 'V';
		/* S&P 500 7%/13%/20% below a 6000.00 reference, Price(8) */
		m->u.mwcb_decline.level[0] = 558000000000ULL;
		m->u.mwcb_decline.level[1] = 522000000000ULL;
		m->u.mwcb_decline.level[2] = 480000000000ULL;
		s->phase = PH_FLOW;
		break;
	case PH_FLOW:
		if (!s->open_sent && slot_start(s, idx) >= MARKET_OPEN) {
			sys_event(m, 'Q');
			ts = MARKET_OPEN;
			s->open_sent = true;
			s->open_cross_left = nsym < CROSS_SYMBOLS ? nsym : CROSS_SYMBOLS;
		} else if (!s->close_sent && slot_start(s, idx) >= MARKET_CLOSE) {
			sys_event(m, 'M');
			ts = MARKET_CLOSE;
			s->close_sent = true;
			s->open_cross_left = 0;
			s->close_cross_left = nsym < CROSS_SYMBOLS ? nsym : CROSS_SYMBOLS;
		} else {
			int ret = gen_flow(s, m);
			if (ret)
				return ret;
		}
		if (idx + 1 == s->o.messages - 2)
			s->phase = PH_END_SYSTEM;
		break;
	case PH_END_SYSTEM:
		sys_event(m, 'E');
		s->phase = PH_END_MESSAGES;
		break;
	case PH_END_MESSAGES:
		sys_event(m, 'C');
		s->phase = PH_DONE;
		break;
	}
	if (ts <= s->last_ts)
		ts = s->last_ts + 1;
	s->last_ts = ts;
	m->ts = ts;
	m->tracking = 0;
	s->emitted++;
	s->per_type[(uint8_t)m->type & 127]++;
	count_packet(s, wb_itch_msg_len((uint8_t)m->type));
	if (s->phase == PH_DONE && s->vp_count) {
		s->packets++;
		s->vp_count = 0;
	}
	if (seq)
		*seq = idx + 1;
	return 1;
}

int wb_sim_next_encoded(struct wb_sim *s, uint8_t *buf, size_t *len, struct wb_itch_msg *m)
{
	struct wb_itch_msg local;
	if (!m)
		m = &local;
	int ret = wb_sim_next(s, m, NULL);
	if (ret <= 0)
		return ret;
	*len = wb_itch_encode(m, buf);
	return *len ? 1 : -EPROTO;
}

void wb_sim_stats(const struct wb_sim *s, struct wb_sim_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->messages = s->emitted;
	out->packets = s->packets;
	memcpy(out->per_type, s->per_type, sizeof(out->per_type));
	out->live_orders = s->live;
	out->peak_live_orders = s->peak_live;
	out->orders_added = s->added;
	out->line[0] = s->line[0].st;
	out->line[1] = s->line[1].st;
}

/* ---------------------------------------------------------------- packets and frames */

void wb_sim_mold_begin(struct wb_sim_mold_packet *p, const char session[10], uint64_t seq)
{
	memcpy(p->buf, session, WB_MOLD_SESSION_LEN);
	wb_put_be64(p->buf + 10, seq);
	wb_put_be16(p->buf + 18, 0);
	p->len = WB_MOLD_HDR_LEN;
	p->count = 0;
	p->seq = seq;
	p->last_ts = 0;
}

bool wb_sim_mold_fits(const struct wb_sim_mold_packet *p, size_t msg_len)
{
	return p->count == 0 || p->len + 2 + msg_len <= WB_SIM_MOLD_PAYLOAD_MAX;
}

void wb_sim_mold_add(struct wb_sim_mold_packet *p, const uint8_t *msg, uint16_t msg_len)
{
	wb_put_be16(p->buf + p->len, msg_len);
	memcpy(p->buf + p->len + 2, msg, msg_len);
	p->len += 2 + (size_t)msg_len;
	p->count++;
	wb_put_be16(p->buf + 18, p->count);
}

size_t wb_sim_mold_control(uint8_t *buf, const char session[10], uint64_t next_seq, uint16_t count)
{
	memcpy(buf, session, WB_MOLD_SESSION_LEN);
	wb_put_be64(buf + 10, next_seq);
	wb_put_be16(buf + 18, count);
	return WB_MOLD_HDR_LEN;
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

size_t wb_sim_frame_build(uint8_t *frame, uint32_t group, uint16_t port, uint16_t ip_id,
			  const uint8_t *payload, size_t len)
{
	const uint32_t src_ip = (10u << 24) | (1u << 16) | (1u << 8) | 1u;
	const uint16_t src_port = 40000;
	size_t total = WB_SIM_ETH_HDR + WB_SIM_IP_HDR + WB_SIM_UDP_HDR + len;
	if (total > WB_SIM_FRAME_MAX)
		return 0;
	uint8_t *eth = frame, *ip = frame + WB_SIM_ETH_HDR, *udp = ip + WB_SIM_IP_HDR;
	/* 01:00:5e + low 23 bits of the group (RFC 1112) */
	const uint8_t dst_mac[6] = {0x01, 0x00, 0x5e, (uint8_t)((group >> 16) & 0x7f), (uint8_t)(group >> 8), (uint8_t)group};
	const uint8_t src_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
	memcpy(eth, dst_mac, 6);
	memcpy(eth + 6, src_mac, 6);
	wb_put_be16(eth + 12, 0x0800);

	uint16_t ip_len = (uint16_t)(WB_SIM_IP_HDR + WB_SIM_UDP_HDR + len);
	ip[0] = 0x45;
	ip[1] = 0;
	wb_put_be16(ip + 2, ip_len);
	wb_put_be16(ip + 4, ip_id);
	wb_put_be16(ip + 6, 0); /* DF clear, no fragments */
	ip[8] = 32;
	ip[9] = 17;
	wb_put_be16(ip + 10, 0);
	wb_put_be32(ip + 12, src_ip);
	wb_put_be32(ip + 16, group);
	wb_put_be16(ip + 10, csum_fold(csum_add(0, ip, WB_SIM_IP_HDR)));

	uint16_t udp_len = (uint16_t)(WB_SIM_UDP_HDR + len);
	wb_put_be16(udp, src_port);
	wb_put_be16(udp + 2, port);
	wb_put_be16(udp + 4, udp_len);
	wb_put_be16(udp + 6, 0);
	memcpy(udp + WB_SIM_UDP_HDR, payload, len);
	uint32_t sum = csum_add(0, ip + 12, 8); /* pseudo header: addresses, protocol, length */
	sum += 17 + udp_len;
	sum = csum_add(sum, udp, udp_len);
	uint16_t c = csum_fold(sum);
	wb_put_be16(udp + 6, c == 0 ? 0xffff : c);
	return total;
}

int wb_sim_pcap_open(const char *path, FILE **out)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -errno;
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	uint8_t hdr[24];
	uint32_t magic = 0xa1b23c4d, snaplen = 65535, linktype = 1, zero = 0;
	uint16_t vmaj = 2, vmin = 4;
	memcpy(hdr, &magic, 4);
	memcpy(hdr + 4, &vmaj, 2);
	memcpy(hdr + 6, &vmin, 2);
	memcpy(hdr + 8, &zero, 4);
	memcpy(hdr + 12, &zero, 4);
	memcpy(hdr + 16, &snaplen, 4);
	memcpy(hdr + 20, &linktype, 4);
	if (fwrite(hdr, 1, sizeof(hdr), f) != sizeof(hdr)) {
		int ret = -EIO;
		fclose(f);
		return ret;
	}
	*out = f;
	return 0;
}

int wb_sim_pcap_write(FILE *f, uint64_t ts_ns, const uint8_t *frame, size_t len)
{
	uint32_t rec[4] = {(uint32_t)(ts_ns / 1000000000ULL), (uint32_t)(ts_ns % 1000000000ULL), (uint32_t)len,
			   (uint32_t)len};
	if (fwrite(rec, 1, sizeof(rec), f) != sizeof(rec) || fwrite(frame, 1, len, f) != len)
		return -EIO;
	return 0;
}

int wb_sim_pcap_close(FILE *f)
{
	int ret = ferror(f) ? -EIO : 0;
	if (fclose(f) != 0 && ret == 0)
		ret = -errno;
	return ret;
}

/* ---------------------------------------------------------------- line output with faults */

static int line_emit(struct sim_line_out *l, uint64_t ts, const uint8_t *payload, size_t len)
{
	uint8_t frame[WB_SIM_FRAME_MAX];
	size_t flen = wb_sim_frame_build(frame, l->cfg->group, l->cfg->port, l->ip_id++, payload, len);
	if (!flen)
		return -EMSGSIZE;
	if (ts <= l->last_ts)
		ts = l->last_ts + 1;
	l->last_ts = ts;
	l->st.frames++;
	return wb_sim_pcap_write(l->f, ts, frame, flen);
}

static json_t *pair(uint64_t a, uint64_t b) { return json_pack("[II]", (json_int_t)a, (json_int_t)b); }

static int line_flush_held(struct sim_line_out *l)
{
	if (!l->held)
		return 0;
	l->held = false;
	for (int c = 0; c < l->held_copies; c++) {
		int ret = line_emit(l, l->last_ts + 1000, l->held_buf, l->held_len);
		if (ret)
			return ret;
	}
	return 0;
}

/* Offers one data packet to a line: the line's own random stream decides its faults,
 * drawing the same numbers for every packet so each fault is independent of the rest. */
static int line_send(struct sim_line_out *l, const struct wb_sim_mold_packet *p, uint64_t ts)
{
	const struct wb_sim_faults *f = &l->cfg->faults;
	double u_loss = rng_unit(&l->rng), u_burst = rng_unit(&l->rng), u_dup = rng_unit(&l->rng);
	double u_reorder = rng_unit(&l->rng), u_trunc = rng_unit(&l->rng), u_garbage = rng_unit(&l->rng);
	uint64_t r_trunc = rng_next(&l->rng), r_garbage = rng_next(&l->rng), r_lag = rng_next(&l->rng);
	int ret;

	ts += l->cfg->lag_ns + (l->cfg->lag_ns ? r_lag % l->cfg->lag_ns : 0);
	l->st.data_packets++;
	if (u_garbage < f->garbage) {
		uint8_t junk[256];
		uint64_t x = r_garbage;
		size_t glen = 1 + (size_t)(r_garbage % 200);
		for (size_t i = 0; i < glen; i += 8) {
			uint64_t v = splitmix64(&x);
			memcpy(junk + i, &v, 8);
		}
		ret = line_emit(l, ts, junk, glen);
		if (ret)
			return ret;
		l->st.garbage++;
	}
	bool lost = false;
	if (l->burst_left) {
		l->burst_left--;
		lost = true;
	} else if (u_burst < f->burst) {
		l->burst_left = f->burst_len - 1;
		l->st.bursts++;
		lost = true;
	} else if (u_loss < f->loss) {
		lost = true;
	}
	if (lost) {
		l->st.lost_packets++;
		l->st.lost_messages += p->count;
		return json_array_append_new(l->lost, pair(p->seq, p->count)) ? -ENOMEM : 0;
	}
	size_t len = p->len;
	if (u_trunc < f->trunc) {
		len = 1 + (size_t)(r_trunc % (p->len - 1));
		l->st.truncated++;
		if (json_array_append_new(l->truncated, json_pack("[III]", (json_int_t)p->seq, (json_int_t)p->count,
								   (json_int_t)len)))
			return -ENOMEM;
	}
	int copies = u_dup < f->dup ? 2 : 1;
	l->st.duplicated += (uint64_t)(copies - 1);
	if (u_reorder < f->reorder && !l->held) {
		memcpy(l->held_buf, p->buf, len);
		l->held_len = len;
		l->held_copies = copies;
		l->held = true;
		l->st.reordered++;
		return 0;
	}
	for (int c = 0; c < copies; c++) {
		ret = line_emit(l, ts, p->buf, len);
		if (ret)
			return ret;
	}
	/* a held packet goes out right after the next packet actually sent */
	return line_flush_held(l);
}

static int line_packet(struct wb_sim *s, const struct wb_sim_mold_packet *p)
{
	for (int i = 0; i < 2; i++) {
		if (!s->line[i].f)
			continue;
		int ret = line_send(&s->line[i], p, s->midnight_ns + p->last_ts);
		if (ret)
			return ret;
	}
	return 0;
}

static int lines_finish(struct wb_sim *s, uint64_t next_seq)
{
	char session[WB_MOLD_SESSION_LEN];
	memset(session, ' ', sizeof(session));
	memcpy(session, s->o.session, strlen(s->o.session));
	for (int i = 0; i < 2; i++) {
		struct sim_line_out *l = &s->line[i];
		if (!l->f)
			continue;
		int ret = line_flush_held(l);
		if (ret)
			return ret;
		uint8_t eos[WB_MOLD_HDR_LEN];
		wb_sim_mold_control(eos, session, next_seq, WB_MOLD_END_OF_SESSION);
		ret = line_emit(l, l->last_ts + 1000, eos, sizeof(eos));
		if (ret)
			return ret;
	}
	return 0;
}

/* ---------------------------------------------------------------- run and truth */

static int line_open(struct wb_sim *s, int i, const char *path)
{
	struct sim_line_out *l = &s->line[i];
	int ret = wb_sim_pcap_open(path, &l->f);
	if (ret)
		return ret;
	l->lost = json_array();
	l->truncated = json_array();
	if (!l->lost || !l->truncated)
		return -ENOMEM;
	s->o.line[i].enabled = true;
	s->lines_used = true;
	return 0;
}

int wb_sim_run(struct wb_sim *s, const char *itch_path, const char *pcap_a, const char *pcap_b,
	       wb_sim_progress_cb progress, void *arg)
{
	FILE *itch = NULL;
	struct wb_sim_mold_packet pkt;
	char session[WB_MOLD_SESSION_LEN];
	uint8_t msg[128];
	size_t len;
	int ret;

	if (s->emitted)
		return -EALREADY; /* the Mold sequence must start at 1 */
	memset(session, ' ', sizeof(session));
	memcpy(session, s->o.session, strlen(s->o.session));
	if (itch_path) {
		itch = fopen(itch_path, "wb");
		if (!itch)
			return -errno;
		setvbuf(itch, NULL, _IOFBF, 1 << 20);
	}
	if (pcap_a && (ret = line_open(s, 0, pcap_a)))
		goto out_close_itch;
	if (pcap_b && (ret = line_open(s, 1, pcap_b)))
		goto out_close_itch;

	wb_sim_mold_begin(&pkt, session, 1);
	struct wb_itch_msg m;
	while ((ret = wb_sim_next_encoded(s, msg + 2, &len, &m)) == 1) {
		if (itch) {
			wb_put_be16(msg, (uint16_t)len);
			if (fwrite(msg, 1, len + 2, itch) != len + 2) {
				ret = -EIO;
				goto out_close_itch;
			}
		}
		if (s->lines_used) {
			if (!wb_sim_mold_fits(&pkt, len)) {
				if ((ret = line_packet(s, &pkt)))
					goto out_close_itch;
				wb_sim_mold_begin(&pkt, session, pkt.seq + pkt.count);
			}
			wb_sim_mold_add(&pkt, msg + 2, (uint16_t)len);
			pkt.last_ts = m.ts;
		}
		if (progress && (s->emitted & 0xfffff) == 0)
			progress(arg, s->emitted, s->o.messages);
	}
	if (ret < 0)
		goto out_close_itch;
	if (s->lines_used) {
		if (pkt.count && (ret = line_packet(s, &pkt)))
			goto out_close_itch;
		if ((ret = lines_finish(s, s->emitted + 1)))
			goto out_close_itch;
	}
	if (progress)
		progress(arg, s->emitted, s->o.messages);
	ret = 0;
	for (int i = 0; i < 2; i++) {
		if (s->line[i].f) {
			int r = wb_sim_pcap_close(s->line[i].f);
			s->line[i].f = NULL;
			if (r && !ret)
				ret = r;
		}
	}
	if (itch) {
		if ((ferror(itch) || fclose(itch) != 0) && !ret)
			ret = -EIO;
		itch = NULL;
	}
	return ret;

out_close_itch:
	if (itch)
		fclose(itch);
	return ret;
}

static json_t *price_str(uint32_t price)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%u.%04u", price / 10000, price % 10000);
	return json_string(buf);
}

static json_t *side_json(const struct sim_side *sd)
{
	json_t *arr = json_array();
	for (uint32_t i = sd->n; arr && i-- > 0;) {
		const struct sim_level *lv = &sd->lv[i];
		json_array_append_new(arr, json_pack("{s:o,s:I,s:I}", "price", price_str(lv->price), "shares",
						     (json_int_t)lv->shares, "orders", (json_int_t)lv->orders));
	}
	return arr;
}

static json_t *line_json(const struct wb_sim *s, int i)
{
	const struct sim_line_out *l = &s->line[i];
	const struct wb_sim_line *c = &s->o.line[i];
	char group[32];
	snprintf(group, sizeof(group), "%u.%u.%u.%u", c->group >> 24, (c->group >> 16) & 255, (c->group >> 8) & 255,
		 c->group & 255);
	return json_pack("{s:s,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:O,s:O}", "group", group, "port", c->port,
			 "frames", (json_int_t)l->st.frames, "data_packets", (json_int_t)l->st.data_packets,
			 "lost_packets", (json_int_t)l->st.lost_packets, "lost_messages",
			 (json_int_t)l->st.lost_messages, "bursts", (json_int_t)l->st.bursts, "duplicated",
			 (json_int_t)l->st.duplicated, "reordered", (json_int_t)l->st.reordered, "truncated",
			 (json_int_t)l->st.truncated, "garbage", (json_int_t)l->st.garbage, "lost", l->lost,
			 "truncated_packets", l->truncated);
}

int wb_sim_truth(const struct wb_sim *s, json_t **out)
{
	if (s->phase != PH_DONE)
		return -EAGAIN;
	char date[16];
	snprintf(date, sizeof(date), "%04d-%02d-%02d", s->o.year, s->o.month, s->o.day);
	json_t *root = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "session", s->o.session, "date", date, "seed",
				 (json_int_t)s->o.seed, "messages", (json_int_t)s->emitted, "packets",
				 (json_int_t)s->packets, "orders_added", (json_int_t)s->added, "live_orders",
				 (json_int_t)s->live, "peak_live_orders", (json_int_t)s->peak_live);
	json_t *types = json_object(), *lines = json_object(), *syms = json_array();
	if (!root || !types || !lines || !syms)
		goto out_free;
	for (int t = 0; t < 128; t++) {
		if (s->per_type[t]) {
			char key[2] = {(char)t, 0};
			json_object_set_new(types, key, json_integer((json_int_t)s->per_type[t]));
		}
	}
	json_object_set_new(root, "per_type", types);
	types = NULL;
	for (int i = 0; i < 2; i++) {
		if (s->o.line[i].enabled && s->line[i].lost)
			json_object_set_new(lines, i == 0 ? "A" : "B", line_json(s, i));
	}
	json_object_set_new(root, "lines", lines);
	lines = NULL;
	for (uint32_t loc = 1; loc <= s->o.symbols; loc++) {
		const struct sim_symbol *sy = &s->sym[loc];
		char name[9];
		memcpy(name, sy->stock, 8);
		int n = 8;
		while (n > 0 && name[n - 1] == ' ')
			n--;
		name[n] = 0;
		json_t *js = json_pack("{s:s,s:i,s:o,s:o}", "symbol", name, "locate", (int)loc, "bids",
				       side_json(&sy->side[0]), "asks", side_json(&sy->side[1]));
		if (!js || json_array_append_new(syms, js))
			goto out_free;
	}
	json_object_set_new(root, "symbols", syms);
	*out = root;
	return 0;
out_free:
	json_decref(root);
	json_decref(types);
	json_decref(lines);
	json_decref(syms);
	return -ENOMEM;
}

int wb_sim_write_truth(const struct wb_sim *s, const char *path)
{
	json_t *t;
	int ret = wb_sim_truth(s, &t);
	if (ret)
		return ret;
	ret = json_dump_file(t, path, JSON_INDENT(1) | JSON_PRESERVE_ORDER) ? -EIO : 0;
	json_decref(t);
	return ret;
}
