/* An independent reader (tshark's MoldUDP64 dissector) sees exactly the packets and
 * messages the truth announces, in sequence, with valid checksums. Skips without tshark. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "simtest.h"

static int have_tshark(void) { return system("command -v tshark >/dev/null 2>&1") == 0; }

static void check_line(const char *dir, const char *name, json_t *truth, json_t *line)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "tshark -r %s/%s -d udp.port==26477,moldudp64 -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE "
		 "-T fields -E separator=, -e moldudp64.session -e moldudp64.sequence -e moldudp64.count "
		 "-e ip.checksum.status -e udp.checksum.status 2>/dev/null",
		 dir, name);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char row[256];
	uint64_t frames = 0, data = 0, msgs = 0, next = 1, eos = 0;
	while (fgets(row, sizeof(row), p)) {
		char session[32];
		unsigned long long seq;
		unsigned count, ipok, udpok;
		assert_int_equal(sscanf(row, "%31[^,],%llu,%u,%u,%u", session, &seq, &count, &ipok, &udpok), 5);
		assert_string_equal(session, "WBSIM00001");
		assert_int_equal(ipok, 1); /* 1 = good in Wireshark's checksum status */
		assert_int_equal(udpok, 1);
		frames++;
		assert_int_equal(seq, next); /* no gap, no overlap */
		if (count == 0xffff) {
			eos++;
			continue;
		}
		data++;
		msgs += count;
		next = seq + count;
	}
	assert_int_equal(pclose(p), 0);
	assert_int_equal(eos, 1);
	assert_int_equal(data, json_integer_value(json_object_get(truth, "packets")));
	assert_int_equal(msgs, json_integer_value(json_object_get(truth, "messages")));
	assert_int_equal(frames, json_integer_value(json_object_get(line, "frames")));
}

static void test_sim_tshark_counts(void **state)
{
	(void)state;
	char dir[256], path[512];
	struct wb_sim_opts o;
	simtest_opts(&o, 9);
	simtest_mkdtemp(dir, sizeof(dir));
	assert_int_equal(simtest_gen(&o, dir, 1), 0);
	snprintf(path, sizeof(path), "%s/t.json", dir);
	json_t *t = json_load_file(path, 0, NULL);
	assert_non_null(t);
	json_t *lines = json_object_get(t, "lines");
	check_line(dir, "a.pcap", t, json_object_get(lines, "A"));
	check_line(dir, "b.pcap", t, json_object_get(lines, "B"));
	json_decref(t);
	simtest_rmdir(dir);
}

int main(void)
{
	if (!have_tshark()) {
		fprintf(stderr, "SKIP: tshark not installed\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sim_tshark_counts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
