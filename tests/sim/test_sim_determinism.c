/* Same seed -> byte-identical ITCH file, pcaps and truth; another seed -> different;
 * faults never change the message stream; the iteration API yields the file's bytes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "simtest.h"
#include "wire.h"

static const char *const outputs[] = {"d.itch", "a.pcap", "b.pcap", "t.json"};

static int same_file(const char *d1, const char *d2, const char *name)
{
	char p1[512], p2[512];
	size_t l1, l2;
	snprintf(p1, sizeof(p1), "%s/%s", d1, name);
	snprintf(p2, sizeof(p2), "%s/%s", d2, name);
	uint8_t *b1 = simtest_read(p1, &l1), *b2 = simtest_read(p2, &l2);
	assert_non_null(b1);
	assert_non_null(b2);
	assert_true(l1 > 0);
	int same = l1 == l2 && memcmp(b1, b2, l1) == 0;
	free(b1);
	free(b2);
	return same;
}

static void faulty(struct wb_sim_opts *o, uint64_t seed)
{
	simtest_opts(o, seed);
	o->line[0].faults = (struct wb_sim_faults){.loss = 0.01, .burst = 0.002, .burst_len = 4, .dup = 0.01,
						   .reorder = 0.01, .trunc = 0.01, .garbage = 0.01};
	o->line[1].faults.loss = 0.02;
}

static void test_sim_determinism_same_seed(void **state)
{
	(void)state;
	char d1[256], d2[256];
	struct wb_sim_opts o;
	faulty(&o, 7);
	simtest_mkdtemp(d1, sizeof(d1));
	simtest_mkdtemp(d2, sizeof(d2));
	assert_int_equal(simtest_gen(&o, d1, 1), 0);
	assert_int_equal(simtest_gen(&o, d2, 1), 0);
	for (size_t i = 0; i < 4; i++)
		assert_true(same_file(d1, d2, outputs[i]));
	simtest_rmdir(d1);
	simtest_rmdir(d2);
}

static void test_sim_determinism_other_seed(void **state)
{
	(void)state;
	char d1[256], d2[256];
	struct wb_sim_opts o;
	simtest_mkdtemp(d1, sizeof(d1));
	simtest_mkdtemp(d2, sizeof(d2));
	faulty(&o, 7);
	assert_int_equal(simtest_gen(&o, d1, 1), 0);
	faulty(&o, 8);
	assert_int_equal(simtest_gen(&o, d2, 1), 0);
	for (size_t i = 0; i < 4; i++)
		assert_false(same_file(d1, d2, outputs[i]));
	simtest_rmdir(d1);
	simtest_rmdir(d2);
}

/* Faults draw from their own streams: the messages and final books do not move. */
static void test_sim_determinism_faults_independent(void **state)
{
	(void)state;
	char d1[256], d2[256], p[512];
	struct wb_sim_opts o;
	simtest_mkdtemp(d1, sizeof(d1));
	simtest_mkdtemp(d2, sizeof(d2));
	faulty(&o, 7);
	assert_int_equal(simtest_gen(&o, d1, 1), 0);
	simtest_opts(&o, 7);
	assert_int_equal(simtest_gen(&o, d2, 1), 0);
	assert_true(same_file(d1, d2, "d.itch"));
	assert_false(same_file(d1, d2, "a.pcap"));
	json_t *t[2];
	const char *dirs[2] = {d1, d2};
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s/t.json", dirs[i]);
		t[i] = json_load_file(p, 0, NULL);
		assert_non_null(t[i]);
	}
	assert_true(json_equal(json_object_get(t[0], "symbols"), json_object_get(t[1], "symbols")));
	assert_true(json_equal(json_object_get(t[0], "per_type"), json_object_get(t[1], "per_type")));
	/* line B's faults did not shift line A's choices either: A lost the same packets */
	json_decref(t[1]);
	faulty(&o, 7);
	o.line[1].faults = (struct wb_sim_faults){.dup = 0.5};
	assert_int_equal(simtest_gen(&o, d2, 1), 0);
	snprintf(p, sizeof(p), "%s/t.json", d2);
	t[1] = json_load_file(p, 0, NULL);
	json_t *la0 = json_object_get(json_object_get(t[0], "lines"), "A");
	json_t *la1 = json_object_get(json_object_get(t[1], "lines"), "A");
	assert_true(json_array_size(json_object_get(la0, "lost")) > 0);
	assert_true(json_equal(la0, la1));
	assert_true(same_file(d1, d2, "a.pcap"));
	json_decref(t[0]);
	json_decref(t[1]);
	simtest_rmdir(d1);
	simtest_rmdir(d2);
}

/* wb_sim_next_encoded yields exactly the bytes of the --itch file. */
static void test_sim_determinism_iteration_api(void **state)
{
	(void)state;
	char d[256], p[512];
	struct wb_sim_opts o;
	simtest_opts(&o, 11);
	simtest_mkdtemp(d, sizeof(d));
	assert_int_equal(simtest_gen(&o, d, 0), 0);
	snprintf(p, sizeof(p), "%s/d.itch", d);
	size_t len;
	uint8_t *file = simtest_read(p, &len);
	assert_non_null(file);
	struct wb_sim *s;
	assert_int_equal(wb_sim_create(&o, &s), 0);
	json_t *t;
	assert_int_equal(wb_sim_truth(s, &t), -EAGAIN); /* no truth before the end */
	uint8_t buf[128];
	size_t mlen, off = 0;
	struct wb_itch_msg m;
	uint64_t n = 0;
	while (wb_sim_next_encoded(s, buf, &mlen, &m) == 1) {
		assert_true(off + 2 + mlen <= len);
		assert_int_equal(wb_be16(file + off), mlen);
		assert_memory_equal(file + off + 2, buf, mlen);
		assert_int_equal(m.type, buf[0]);
		off += 2 + mlen;
		n++;
	}
	assert_int_equal(off, len);
	assert_int_equal(n, SIMTEST_MESSAGES);
	assert_int_equal(wb_sim_next(s, &m, NULL), 0); /* stays ended */
	struct wb_sim_stats st;
	wb_sim_stats(s, &st);
	assert_int_equal(st.messages, SIMTEST_MESSAGES);
	assert_true(st.peak_live_orders >= st.live_orders);
	assert_int_equal(wb_sim_truth(s, &t), 0);
	json_decref(t);
	wb_sim_destroy(s);
	free(file);
	simtest_rmdir(d);
}

static void test_sim_determinism_bad_options(void **state)
{
	(void)state;
	struct wb_sim_opts o;
	struct wb_sim *s = NULL;
	simtest_opts(&o, 1);
	o.symbols = 0;
	assert_int_equal(wb_sim_create(&o, &s), -EINVAL);
	simtest_opts(&o, 1);
	o.messages = 2 * o.symbols; /* no room for the directory and system events */
	assert_int_equal(wb_sim_create(&o, &s), -EINVAL);
	simtest_opts(&o, 1);
	o.line[0].faults.loss = 1.5;
	assert_int_equal(wb_sim_create(&o, &s), -EINVAL);
	simtest_opts(&o, 1);
	o.line[1].faults.burst = 0.1; /* a burst needs a length */
	assert_int_equal(wb_sim_create(&o, &s), -EINVAL);
	assert_null(s);
	uint32_t g;
	uint16_t port;
	assert_int_equal(wb_sim_parse_endpoint("233.54.12.111:26477", &g, &port), 0);
	assert_int_equal(g, 0xe9360c6f);
	assert_int_equal(port, 26477);
	assert_int_equal(wb_sim_parse_endpoint("233.54.12.300:1", &g, &port), -EINVAL);
	assert_int_equal(wb_sim_parse_endpoint("233.54.12.1", &g, &port), -EINVAL);
	int y, mo, d;
	assert_int_equal(wb_sim_parse_date("2026-02-29", &y, &mo, &d), -EINVAL);
	assert_int_equal(wb_sim_parse_date("2028-02-29", &y, &mo, &d), 0);
	/* New York midnight: EST in November, EDT in July */
	assert_int_equal(wb_sim_midnight_ns(2026, 11, 20), 1795150800ULL * 1000000000ULL);
	assert_int_equal(wb_sim_midnight_ns(2026, 7, 1), 1782878400ULL * 1000000000ULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sim_determinism_same_seed),
		cmocka_unit_test(test_sim_determinism_other_seed),
		cmocka_unit_test(test_sim_determinism_faults_independent),
		cmocka_unit_test(test_sim_determinism_iteration_api),
		cmocka_unit_test(test_sim_determinism_bad_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
