/* Injected faults match the truth file exactly: the test reads the pcaps back, checks
 * every frame, and recomputes losses, duplicates, reorders, truncations and garbage
 * from what is on the wire. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mold.h"
#include "simtest.h"
#include "wire.h"

struct observed {
	uint64_t data, dup, inversions, truncated, garbage, eos, eos_seq;
	uint8_t *seen; /* per sequence: first message of a packet seen intact */
	json_t *trunc; /* [[seq or -1, bytes]] */
};

static json_int_t jint(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

/* Reads one line's pcap and classifies every frame by its Mold content. */
static void observe(const char *dir, const char *name, uint32_t group, struct observed *ob)
{
	char path[512];
	size_t len, n;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	uint8_t *buf = simtest_read(path, &len);
	assert_non_null(buf);
	struct simtest_frame *fr = simtest_pcap_frames(buf, len, &n);
	memset(ob, 0, sizeof(*ob));
	ob->seen = calloc(SIMTEST_MESSAGES + 2, 1);
	ob->trunc = json_array();
	uint64_t max_seq = 0;
	for (size_t i = 0; i < n; i++) {
		const struct simtest_frame *f = &fr[i];
		assert_int_equal(f->dst_ip, group);
		assert_int_equal(f->dst_port, 26477);
		size_t cmp = f->len < 10 ? f->len : 10;
		if (memcmp(f->payload, "WBSIM00001", cmp) != 0) {
			ob->garbage++;
			continue;
		}
		struct wb_mold_hdr h;
		struct wb_mold_iter it;
		if (wb_mold_parse(f->payload, f->len, &h, &it) != 0) {
			ob->truncated++; /* cut inside the header: no sequence to read */
			json_array_append_new(ob->trunc, json_pack("[II]", (json_int_t)-1, (json_int_t)f->len));
			continue;
		}
		if (h.count == WB_MOLD_END_OF_SESSION) {
			ob->eos++;
			ob->eos_seq = h.seq;
			assert_int_equal(i, n - 1); /* end of session closes the line */
			continue;
		}
		const uint8_t *msg;
		uint16_t mlen;
		int r, blocks = 0;
		while ((r = wb_mold_next(&it, &msg, &mlen)) == 1) {
			assert_int_equal(wb_itch_msg_len(msg[0]), mlen);
			blocks++;
		}
		if (r < 0 || it.p != f->payload + f->len) {
			ob->truncated++;
			json_array_append_new(ob->trunc, json_pack("[II]", (json_int_t)h.seq, (json_int_t)f->len));
			continue;
		}
		assert_int_equal(blocks, h.count);
		assert_true(f->len <= WB_SIM_MOLD_PAYLOAD_MAX);
		assert_true(h.seq >= 1 && h.seq + h.count <= SIMTEST_MESSAGES + 1);
		if (ob->seen[h.seq]) {
			ob->dup++;
			continue;
		}
		ob->data++;
		if (h.seq < max_seq)
			ob->inversions++;
		else
			max_seq = h.seq;
		for (uint64_t q = h.seq; q < h.seq + h.count; q++)
			ob->seen[q] = 1;
	}
	free(fr);
	free(buf);
}

static json_t *load_truth(const char *dir)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/t.json", dir);
	json_t *t = json_load_file(path, 0, NULL);
	assert_non_null(t);
	return t;
}

/* Line A: loss, bursts, duplicates and reordering; the gaps are exactly the truth's list. */
static void test_sim_faults_loss_dup_reorder(void **state)
{
	(void)state;
	char dir[256];
	struct wb_sim_opts o;
	simtest_opts(&o, 3);
	o.line[0].faults = (struct wb_sim_faults){.loss = 0.01, .burst = 0.002, .burst_len = 6, .dup = 0.02,
						  .reorder = 0.02};
	simtest_mkdtemp(dir, sizeof(dir));
	assert_int_equal(simtest_gen(&o, dir, 1), 0);
	json_t *t = load_truth(dir);
	json_t *la = json_object_get(json_object_get(t, "lines"), "A");
	struct observed ob;
	observe(dir, "a.pcap", o.line[0].group, &ob);

	assert_true(jint(la, "lost_packets") > 20);
	assert_true(jint(la, "bursts") > 0);
	assert_true(jint(la, "duplicated") > 20);
	assert_true(jint(la, "reordered") > 20);
	assert_int_equal(ob.dup, jint(la, "duplicated"));
	assert_int_equal(ob.inversions, jint(la, "reordered"));
	assert_int_equal(ob.garbage, 0);
	assert_int_equal(ob.truncated, 0);
	assert_int_equal(ob.eos, 1);
	assert_int_equal(ob.eos_seq, SIMTEST_MESSAGES + 1);
	assert_int_equal(ob.data + (uint64_t)jint(la, "lost_packets"), jint(t, "packets"));
	assert_int_equal(jint(la, "data_packets"), jint(t, "packets"));
	assert_int_equal(jint(la, "frames"), ob.data + ob.dup + ob.eos);

	/* every missing sequence is in the truth's lost list, and nothing else is */
	uint8_t *lost = calloc(SIMTEST_MESSAGES + 2, 1);
	size_t i;
	json_t *pair;
	uint64_t lost_msgs = 0;
	json_array_foreach(json_object_get(la, "lost"), i, pair) {
		uint64_t seq = (uint64_t)json_integer_value(json_array_get(pair, 0));
		uint64_t cnt = (uint64_t)json_integer_value(json_array_get(pair, 1));
		for (uint64_t q = seq; q < seq + cnt; q++)
			lost[q] = 1;
		lost_msgs += cnt;
	}
	assert_int_equal(json_array_size(json_object_get(la, "lost")), jint(la, "lost_packets"));
	assert_int_equal(lost_msgs, jint(la, "lost_messages"));
	for (uint64_t q = 1; q <= SIMTEST_MESSAGES; q++)
		assert_int_equal(ob.seen[q], !lost[q]);

	/* line B had no faults: every message exactly once, in order */
	json_t *lb = json_object_get(json_object_get(t, "lines"), "B");
	struct observed obb;
	observe(dir, "b.pcap", o.line[1].group, &obb);
	assert_int_equal(jint(lb, "lost_packets"), 0);
	assert_int_equal(obb.dup + obb.inversions + obb.garbage + obb.truncated, 0);
	for (uint64_t q = 1; q <= SIMTEST_MESSAGES; q++)
		assert_int_equal(obb.seen[q], 1);
	assert_int_equal(obb.data, jint(t, "packets"));

	free(lost);
	free(ob.seen);
	free(obb.seen);
	json_decref(ob.trunc);
	json_decref(obb.trunc);
	json_decref(t);
	simtest_rmdir(dir);
}

/* Line B: truncated packets and garbage datagrams, each exactly as recorded. */
static void test_sim_faults_trunc_garbage(void **state)
{
	(void)state;
	char dir[256];
	struct wb_sim_opts o;
	simtest_opts(&o, 5);
	o.line[1].faults = (struct wb_sim_faults){.trunc = 0.03, .garbage = 0.03};
	simtest_mkdtemp(dir, sizeof(dir));
	assert_int_equal(simtest_gen(&o, dir, 1), 0);
	json_t *t = load_truth(dir);
	json_t *lb = json_object_get(json_object_get(t, "lines"), "B");
	struct observed ob;
	observe(dir, "b.pcap", o.line[1].group, &ob);
	assert_true(jint(lb, "truncated") > 50);
	assert_true(jint(lb, "garbage") > 50);
	assert_int_equal(ob.truncated, jint(lb, "truncated"));
	assert_int_equal(ob.garbage, jint(lb, "garbage"));
	assert_int_equal(jint(lb, "frames"), ob.data + ob.truncated + ob.garbage + ob.eos);
	assert_int_equal(ob.data + ob.truncated, jint(t, "packets"));

	/* each truncated frame is the recorded packet cut at the recorded length */
	json_t *rec = json_object_get(lb, "truncated_packets");
	assert_int_equal(json_array_size(rec), json_array_size(ob.trunc));
	for (size_t i = 0; i < json_array_size(rec); i++) {
		json_t *r = json_array_get(rec, i), *w = json_array_get(ob.trunc, i);
		json_int_t wseq = json_integer_value(json_array_get(w, 0));
		json_int_t wlen = json_integer_value(json_array_get(w, 1));
		assert_int_equal(json_integer_value(json_array_get(r, 2)), wlen);
		if (wseq >= 0)
			assert_int_equal(json_integer_value(json_array_get(r, 0)), wseq);
		/* the messages of a truncated packet never arrived whole */
		uint64_t seq = (uint64_t)json_integer_value(json_array_get(r, 0));
		assert_int_equal(ob.seen[seq], 0);
	}
	free(ob.seen);
	json_decref(ob.trunc);
	json_decref(t);
	simtest_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sim_faults_loss_dup_reorder),
		cmocka_unit_test(test_sim_faults_trunc_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
