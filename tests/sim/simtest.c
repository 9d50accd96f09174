/* Helpers shared by the wbsim tests. */
#include "simtest.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "wire.h"

void simtest_mkdtemp(char *out, size_t n)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(out, n, "%s/wbsim-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(out));
}

void simtest_rmdir(const char *dir)
{
	static const char *const files[] = {"d.itch", "a.pcap", "b.pcap", "t.json"};
	char path[512];
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

uint8_t *simtest_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc(sz > 0 ? (size_t)sz : 1);
	if (buf && fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = (size_t)sz;
	return buf;
}

void simtest_opts(struct wb_sim_opts *o, uint64_t seed)
{
	wb_sim_opts_default(o);
	o->symbols = SIMTEST_SYMBOLS;
	o->messages = SIMTEST_MESSAGES;
	o->seed = seed;
}

int simtest_gen(const struct wb_sim_opts *o, const char *dir, int with_b)
{
	char itch[512], a[512], b[512], truth[512];
	snprintf(itch, sizeof(itch), "%s/d.itch", dir);
	snprintf(a, sizeof(a), "%s/a.pcap", dir);
	snprintf(b, sizeof(b), "%s/b.pcap", dir);
	snprintf(truth, sizeof(truth), "%s/t.json", dir);
	struct wb_sim *s;
	int ret = wb_sim_create(o, &s);
	if (ret)
		return ret;
	ret = wb_sim_run(s, itch, a, with_b ? b : NULL, NULL, NULL);
	if (!ret)
		ret = wb_sim_write_truth(s, truth);
	wb_sim_destroy(s);
	return ret;
}

static uint16_t csum(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

struct simtest_frame *simtest_pcap_frames(const uint8_t *buf, size_t len, size_t *n)
{
	assert_true(len >= 24);
	assert_int_equal(wb_le32(buf), 0xa1b23c4d); /* nanosecond pcap, written little-endian here */
	assert_int_equal(wb_le16(buf + 4), 2);
	assert_int_equal(wb_le16(buf + 6), 4);
	assert_int_equal(wb_le32(buf + 20), 1); /* LINKTYPE_ETHERNET */
	size_t cap = 1024, cnt = 0;
	struct simtest_frame *fr = malloc(cap * sizeof(*fr));
	assert_non_null(fr);
	size_t off = 24;
	uint64_t last_ts = 0;
	while (off < len) {
		assert_true(len - off >= 16);
		uint64_t ts = (uint64_t)wb_le32(buf + off) * 1000000000ULL + wb_le32(buf + off + 4);
		uint32_t caplen = wb_le32(buf + off + 8), wirelen = wb_le32(buf + off + 12);
		assert_int_equal(caplen, wirelen);
		assert_true(wb_le32(buf + off + 4) < 1000000000u);
		assert_true(ts > last_ts); /* capture times strictly increase */
		last_ts = ts;
		off += 16;
		assert_true(len - off >= caplen);
		const uint8_t *f = buf + off, *ip = f + 14, *udp = ip + 20;
		assert_true(caplen >= 42);
		assert_int_equal(wb_be16(f + 12), 0x0800);
		uint32_t dst = wb_be32(ip + 16);
		const uint8_t mac[6] = {0x01, 0x00, 0x5e, (uint8_t)((dst >> 16) & 0x7f), (uint8_t)(dst >> 8), (uint8_t)dst};
		assert_memory_equal(f, mac, 6);
		assert_int_equal(ip[0], 0x45);
		assert_int_equal(ip[8], 32);              /* TTL */
		assert_int_equal(ip[9], 17);              /* UDP */
		assert_int_equal(wb_be16(ip + 6) & 0x4000, 0); /* DF clear */
		assert_int_equal(wb_be32(ip + 12), 0x0a010101);
		assert_int_equal(wb_be16(ip + 2), caplen - 14);
		assert_int_equal(csum(0, ip, 20), 0xffff);
		uint16_t ulen = wb_be16(udp + 4);
		assert_int_equal(ulen, caplen - 34);
		assert_int_equal(wb_be16(udp), 40000);
		uint32_t sum = csum(0, ip + 12, 8) + 17u + ulen;
		assert_int_equal(csum(sum, udp, ulen), 0xffff);
		if (cnt == cap) {
			cap *= 2;
			fr = realloc(fr, cap * sizeof(*fr));
			assert_non_null(fr);
		}
		fr[cnt++] = (struct simtest_frame){.ts_ns = ts, .dst_ip = dst, .dst_port = wb_be16(udp + 2),
						  .payload = udp + 8, .len = ulen - 8u};
		off += caplen;
	}
	*n = cnt;
	return fr;
}
