/* The ground truth is proven by an independent, deliberately naive rebuild of the
 * generated ITCH file: hand-decoded offsets (PROTOCOLS.md 3.3), orders in a plain array
 * indexed by reference, levels found by scanning. Also checks the session's shape and
 * its message mix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "simtest.h"
#include "wire.h"

struct naive_order {
	uint32_t shares; /* 0 = not live */
	uint32_t price;
	uint16_t locate;
	char side;
};

struct naive {
	struct naive_order *o; /* index = reference */
	size_t cap;
	uint64_t max_ref;
	uint64_t bad_ref; /* E/C/X/D/U for an order that is not live, or too many shares */
};

static struct naive_order *naive_get(struct naive *nv, uint64_t ref)
{
	if (ref >= nv->cap || nv->o[ref].shares == 0) {
		nv->bad_ref++;
		return NULL;
	}
	return &nv->o[ref];
}

static void naive_add(struct naive *nv, uint64_t ref, uint16_t loc, char side, uint32_t shares, uint32_t price)
{
	if (ref >= nv->cap) {
		size_t nc = nv->cap ? nv->cap : 1024;
		while (nc <= ref)
			nc *= 2;
		nv->o = realloc(nv->o, nc * sizeof(*nv->o));
		assert_non_null(nv->o);
		memset(nv->o + nv->cap, 0, (nc - nv->cap) * sizeof(*nv->o));
		nv->cap = nc;
	}
	assert_int_equal(nv->o[ref].shares, 0); /* references are unique for the day */
	assert_true(shares > 0);
	nv->o[ref] = (struct naive_order){.shares = shares, .price = price, .locate = loc, .side = side};
	if (ref > nv->max_ref)
		nv->max_ref = ref;
}

static void naive_reduce(struct naive *nv, uint64_t ref, uint32_t shares)
{
	struct naive_order *o = naive_get(nv, ref);
	if (!o)
		return;
	if (shares > o->shares) {
		nv->bad_ref++;
		return;
	}
	o->shares -= shares;
}

struct naive_level {
	uint32_t price;
	uint64_t shares;
	uint32_t orders;
};

/* Aggregates one side of one symbol by scanning every order; best first. */
static size_t naive_levels(const struct naive *nv, uint16_t loc, char side, struct naive_level *lv, size_t cap)
{
	size_t n = 0;
	for (uint64_t r = 0; r <= nv->max_ref && r < nv->cap; r++) {
		const struct naive_order *o = &nv->o[r];
		if (!o->shares || o->locate != loc || o->side != side)
			continue;
		size_t i = 0;
		while (i < n && lv[i].price != o->price)
			i++;
		if (i == n) {
			assert_true(n < cap);
			lv[n++] = (struct naive_level){.price = o->price};
		}
		lv[i].shares += o->shares;
		lv[i].orders++;
	}
	/* insertion sort, best first */
	for (size_t i = 1; i < n; i++) {
		struct naive_level t = lv[i];
		size_t j = i;
		while (j > 0 && (side == 'B' ? lv[j - 1].price < t.price : lv[j - 1].price > t.price)) {
			lv[j] = lv[j - 1];
			j--;
		}
		lv[j] = t;
	}
	return n;
}

struct session {
	char dir[256];
	uint8_t *itch;
	size_t itch_len;
	json_t *truth;
};

static int setup(void **state)
{
	struct session *s = calloc(1, sizeof(*s));
	struct wb_sim_opts o;
	simtest_opts(&o, 42);
	simtest_mkdtemp(s->dir, sizeof(s->dir));
	assert_int_equal(simtest_gen(&o, s->dir, 0), 0);
	char path[512];
	snprintf(path, sizeof(path), "%s/d.itch", s->dir);
	s->itch = simtest_read(path, &s->itch_len);
	assert_non_null(s->itch);
	snprintf(path, sizeof(path), "%s/t.json", s->dir);
	json_error_t err;
	s->truth = json_load_file(path, 0, &err);
	assert_non_null(s->truth);
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	struct session *s = *state;
	simtest_rmdir(s->dir);
	free(s->itch);
	json_decref(s->truth);
	free(s);
	return 0;
}

static void check_no_cross(const struct naive *nv, uint16_t nsym)
{
	static struct naive_level b[4096], a[4096];
	for (uint16_t loc = 1; loc <= nsym; loc++) {
		size_t nb = naive_levels(nv, loc, 'B', b, 4096), na = naive_levels(nv, loc, 'S', a, 4096);
		if (nb && na)
			assert_true(b[0].price < a[0].price);
	}
}

static void test_sim_truth_equals_naive_rebuild(void **state)
{
	struct session *s = *state;
	struct naive nv = {0};
	const uint8_t *p = s->itch, *end = s->itch + s->itch_len;
	uint64_t n = 0;
	uint16_t nsym = SIMTEST_SYMBOLS;
	while (p < end) {
		assert_true(end - p >= 2);
		uint16_t len = wb_be16(p);
		const uint8_t *m = p + 2;
		assert_true(end - m >= len);
		p = m + len;
		n++;
		uint16_t loc = wb_be16(m + 1);
		switch (m[0]) {
		case 'A':
		case 'F':
			assert_int_equal(len, m[0] == 'A' ? 36 : 40);
			assert_true(loc >= 1 && loc <= nsym);
			naive_add(&nv, wb_be64(m + 11), loc, (char)m[19], wb_be32(m + 20), wb_be32(m + 32));
			break;
		case 'E':
			naive_reduce(&nv, wb_be64(m + 11), wb_be32(m + 19));
			break;
		case 'C':
			naive_reduce(&nv, wb_be64(m + 11), wb_be32(m + 19));
			break;
		case 'X':
			naive_reduce(&nv, wb_be64(m + 11), wb_be32(m + 19));
			break;
		case 'D': {
			struct naive_order *o = naive_get(&nv, wb_be64(m + 11));
			if (o)
				o->shares = 0;
			break;
		}
		case 'U': {
			struct naive_order *o = naive_get(&nv, wb_be64(m + 11));
			if (!o)
				break;
			struct naive_order old = *o;
			o->shares = 0;
			assert_int_equal(old.locate, loc);
			naive_add(&nv, wb_be64(m + 19), old.locate, old.side, wb_be32(m + 27), wb_be32(m + 31));
			break;
		}
		}
		/* the book never locks or crosses along the way, not only at the end */
		if (n % 25000 == 0)
			check_no_cross(&nv, nsym);
	}
	assert_int_equal(nv.bad_ref, 0); /* every E/C/X/D/U named a live order */
	assert_int_equal(n, json_integer_value(json_object_get(s->truth, "messages")));

	json_t *syms = json_object_get(s->truth, "symbols");
	assert_int_equal(json_array_size(syms), nsym);
	static struct naive_level lv[4096];
	uint64_t live = 0;
	for (uint16_t loc = 1; loc <= nsym; loc++) {
		json_t *js = json_array_get(syms, loc - 1);
		assert_int_equal(json_integer_value(json_object_get(js, "locate")), loc);
		for (int side = 0; side < 2; side++) {
			json_t *arr = json_object_get(js, side == 0 ? "bids" : "asks");
			size_t nl = naive_levels(&nv, loc, side == 0 ? 'B' : 'S', lv, 4096);
			assert_int_equal(json_array_size(arr), nl);
			for (size_t i = 0; i < nl; i++) {
				json_t *jl = json_array_get(arr, i);
				char px[32];
				snprintf(px, sizeof(px), "%u.%04u", lv[i].price / 10000, lv[i].price % 10000);
				assert_string_equal(json_string_value(json_object_get(jl, "price")), px);
				assert_int_equal(json_integer_value(json_object_get(jl, "shares")), lv[i].shares);
				assert_int_equal(json_integer_value(json_object_get(jl, "orders")), lv[i].orders);
				live += lv[i].orders;
			}
		}
	}
	assert_int_equal(live, json_integer_value(json_object_get(s->truth, "live_orders")));
	assert_true(live > 1000); /* the day ends with real books, not empty ones */
	check_no_cross(&nv, nsym);
	free(nv.o);
}

static double price_of(json_t *lvl) { return atof(json_string_value(json_object_get(lvl, "price"))); }

static void test_sim_truth_no_locked_or_crossed(void **state)
{
	struct session *s = *state;
	json_t *syms = json_object_get(s->truth, "symbols");
	size_t i, both = 0;
	json_t *js;
	json_array_foreach(syms, i, js) {
		json_t *b = json_object_get(js, "bids"), *a = json_object_get(js, "asks");
		assert_true(json_is_array(b) && json_is_array(a)); /* empty books are listed too */
		for (size_t k = 1; k < json_array_size(b); k++)
			assert_true(price_of(json_array_get(b, k)) < price_of(json_array_get(b, k - 1)));
		for (size_t k = 1; k < json_array_size(a); k++)
			assert_true(price_of(json_array_get(a, k)) > price_of(json_array_get(a, k - 1)));
		if (json_array_size(b) && json_array_size(a)) {
			both++;
			assert_true(price_of(json_array_get(b, 0)) < price_of(json_array_get(a, 0)));
		}
	}
	assert_true(both > SIMTEST_SYMBOLS / 2);
}

/* Session shape: system events in order, a directory entry per locate before any order,
 * timestamps strictly increasing from 04:00 to 20:00. */
static void test_sim_truth_session_shape(void **state)
{
	struct session *s = *state;
	const uint8_t *p = s->itch, *end = s->itch + s->itch_len;
	char events[16];
	size_t nev = 0;
	uint64_t last_ts = 0, n = 0;
	uint32_t dir_seen = 0, first_order = 0;
	while (p < end) {
		uint16_t len = wb_be16(p);
		const uint8_t *m = p + 2;
		p = m + len;
		n++;
		uint64_t ts = wb_be48(m + 5);
		assert_true(ts > last_ts);
		last_ts = ts;
		assert_true(ts >= 4ULL * 3600000000000ULL && ts <= 20ULL * 3600000000000ULL + 1000000ULL);
		if (m[0] == 'S') {
			assert_true(nev < sizeof(events));
			events[nev++] = (char)m[11];
		}
		if (m[0] == 'R') {
			assert_int_equal(len, 39);
			assert_int_equal(wb_be16(m + 1), ++dir_seen); /* locates 1..N in order */
			assert_int_equal(wb_be32(m + 21), 100);      /* round lot */
			assert_int_equal(m[29], 'P');
			assert_true(m[11] >= 'A' && m[11] <= 'Z');
		}
		if ((m[0] == 'A' || m[0] == 'F') && !first_order)
			first_order = (uint32_t)n;
	}
	assert_int_equal(nev, 6);
	assert_memory_equal(events, "OSQMEC", 6);
	assert_int_equal(dir_seen, SIMTEST_SYMBOLS);
	assert_true(first_order > dir_seen);
}

static void test_sim_truth_mix(void **state)
{
	struct session *s = *state;
	uint64_t count[128] = {0}, n = 0;
	for (const uint8_t *p = s->itch; p < s->itch + s->itch_len; p += 2 + wb_be16(p)) {
		count[p[2] & 127]++;
		n++;
	}
	/* the truth's per-type counts are the ones in the file */
	json_t *pt = json_object_get(s->truth, "per_type");
	const char *types = "SRHYLVWKJhAFECXDUPQBINO";
	for (const char *t = types; *t; t++) {
		char key[2] = {*t, 0};
		assert_true(count[(int)*t] > 0); /* every one of the 23 types appears */
		assert_int_equal(json_integer_value(json_object_get(pt, key)), count[(int)*t]);
	}
	assert_int_equal(json_object_size(pt), 23);
	double pct_add = 100.0 * (double)(count['A'] + count['F']) / (double)n;
	double pct_del = 100.0 * (double)count['D'] / (double)n;
	double pct_rep = 100.0 * (double)count['U'] / (double)n;
	double pct_exe = 100.0 * (double)(count['E'] + count['C']) / (double)n;
	print_message("adds %.1f%% deletes %.1f%% replaces %.1f%% executions %.1f%%\n", pct_add, pct_del, pct_rep,
		      pct_exe);
	assert_true(pct_add >= 35.0 && pct_add <= 45.0);
	assert_true(pct_del >= 30.0 && pct_del <= 40.0);
	assert_true(pct_rep >= 10.0 && pct_rep <= 23.0);
	assert_true(pct_exe >= 2.0 && pct_exe <= 10.0);
	assert_true(count['F'] > count['A'] / 20 && count['F'] < count['A']); /* some adds carry an MPID */
	assert_int_equal(count['Q'], 20); /* opening and closing crosses for ten symbols */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sim_truth_equals_naive_rebuild),
		cmocka_unit_test(test_sim_truth_no_locked_or_crossed),
		cmocka_unit_test(test_sim_truth_session_shape),
		cmocka_unit_test(test_sim_truth_mix),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
