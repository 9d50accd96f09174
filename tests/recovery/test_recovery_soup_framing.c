/* SoupBinTCP framing and fixed packets: every split point, random chunking against a known
 * packet list, malformed lengths, early stop, and a round trip through every builder. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "soup.h"

/* ---------------------------------------------------------------- a known stream */

struct want {
	char type;
	uint32_t off; /* payload offset in the stream */
	uint16_t len;
};

struct stream {
	uint8_t *bytes;
	size_t len, cap;
	struct want *pkts;
	size_t npkts, cap_pkts;
	size_t empty; /* zero-length packets written */
};

static uint64_t rng_state;
static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 32);
}

static void put(struct stream *s, const uint8_t *p, size_t n)
{
	if (n == 0)
		return;
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->bytes = realloc(s->bytes, s->cap);
		assert_non_null(s->bytes);
	}
	memcpy(s->bytes + s->len, p, n);
	s->len += n;
}

/* Appends one packet of the given type and payload and records it as expected. */
static void add_packet(struct stream *s, char type, const uint8_t *payload, uint16_t len)
{
	uint8_t hdr[3] = {(uint8_t)((len + 1) >> 8), (uint8_t)(len + 1), (uint8_t)type};
	put(s, hdr, 3);
	if (s->npkts == s->cap_pkts) {
		s->cap_pkts = s->cap_pkts ? s->cap_pkts * 2 : 64;
		s->pkts = realloc(s->pkts, s->cap_pkts * sizeof(*s->pkts));
		assert_non_null(s->pkts);
	}
	s->pkts[s->npkts++] = (struct want){type, (uint32_t)s->len, len};
	put(s, payload, len);
}

static void add_empty(struct stream *s)
{
	static const uint8_t zero[2] = {0, 0};
	put(s, zero, 2);
	s->empty++;
}

/* Real ITCH messages as sequenced data when the capture is there, random ones otherwise,
 * mixed with heartbeats, debug text, empty packets and one packet of the maximum length. */
static void make_stream(struct stream *s, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	rng_state = seed * 0x9E3779B97F4A7C15ull + 7;
	const char *dir = getenv("WB_SHARED_DIR");
	char path[512];
	snprintf(path, sizeof(path), "%s/data/itch/totalview-117msgs.itch", dir ? dir : "../shared");
	FILE *f = fopen(path, "rb");
	uint8_t msg[65535];
	for (int i = 0; i < 400; i++) {
		uint32_t r = rnd() % 16;
		if (r == 0) {
			add_packet(s, WB_SOUP_SERVER_HEARTBEAT, NULL, 0);
		} else if (r == 1) {
			add_packet(s, WB_SOUP_DEBUG, (const uint8_t *)"debug text", 10);
		} else if (r == 2) {
			add_empty(s);
		} else {
			uint16_t len = 0;
			uint8_t lb[2];
			if (f && fread(lb, 1, 2, f) == 2) {
				len = (uint16_t)((lb[0] << 8) | lb[1]);
				assert_int_equal(fread(msg, 1, len, f), len);
			} else {
				len = (uint16_t)(1 + rnd() % 300);
				for (uint16_t k = 0; k < len; k++)
					msg[k] = (uint8_t)rnd();
			}
			add_packet(s, WB_SOUP_SEQUENCED, msg, len);
		}
		if (i == 200) {
			for (uint32_t k = 0; k < 65534; k++)
				msg[k] = (uint8_t)(k * 7);
			add_packet(s, WB_SOUP_SEQUENCED, msg, 65534); /* length field 65535 */
		}
	}
	if (f)
		fclose(f);
}

static void free_stream(struct stream *s)
{
	free(s->bytes);
	free(s->pkts);
}

/* Collects what the framer delivers and checks it against the expected list in order. */
struct check {
	const struct stream *s;
	size_t next;
	int stop_after; /* stop after this many deliveries in one feed (0 = never) */
	int in_feed;
};

static int check_cb(void *arg, const struct wb_soup_packet *p)
{
	struct check *c = arg;
	assert_true(c->next < c->s->npkts);
	const struct want *w = &c->s->pkts[c->next];
	assert_int_equal(p->type, w->type);
	assert_int_equal(p->len, w->len);
	assert_memory_equal(p->payload, c->s->bytes + w->off, w->len);
	c->next++;
	c->in_feed++;
	return c->stop_after && c->in_feed >= c->stop_after;
}

/* ---------------------------------------------------------------- tests */

static void split_everywhere(const struct stream *s, size_t from, size_t to, size_t step)
{
	static struct wb_soup_framer f;
	for (size_t k = from; k <= to; k += step) {
		wb_soup_framer_init(&f);
		struct check c = {.s = s};
		uint32_t got = wb_soup_feed(&f, s->bytes, k, check_cb, &c);
		got += wb_soup_feed(&f, s->bytes + k, s->len - k, check_cb, &c);
		assert_int_equal(got, s->npkts);
		assert_int_equal(c.next, s->npkts);
		assert_int_equal(f.packets, s->npkts);
		assert_int_equal(f.empty, s->empty);
		assert_int_equal(f.have, 0);
	}
}

/* Every packet type split at every byte boundary, including inside the length field. */
static void test_split_at_every_boundary(void **state)
{
	(void)state;
	struct stream s = {0};
	uint8_t pkt[64];
	char session[10];
	memcpy(session, "SESSION001", 10);
	/* the fixed packets from the builders, then small data packets */
	size_t n = wb_soup_build_login(pkt, "user", "secret", session, 12345);
	add_packet(&s, WB_SOUP_LOGIN_REQUEST, pkt + 3, (uint16_t)(n - 3));
	n = wb_soup_build_accepted(pkt, session, 77);
	add_packet(&s, WB_SOUP_LOGIN_ACCEPTED, pkt + 3, (uint16_t)(n - 3));
	add_packet(&s, WB_SOUP_LOGIN_REJECTED, (const uint8_t *)"A", 1);
	add_packet(&s, WB_SOUP_SERVER_HEARTBEAT, NULL, 0);
	add_empty(&s);
	add_packet(&s, WB_SOUP_CLIENT_HEARTBEAT, NULL, 0);
	add_packet(&s, WB_SOUP_SEQUENCED, (const uint8_t *)"AddOrderBytes", 13);
	add_packet(&s, WB_SOUP_UNSEQUENCED, (const uint8_t *)"x", 1);
	add_packet(&s, WB_SOUP_END_OF_SESSION, NULL, 0);
	split_everywhere(&s, 0, s.len, 1);
	free_stream(&s);

	/* the long mixed stream: every boundary of its first 4 KiB, then a sample */
	make_stream(&s, 1);
	split_everywhere(&s, 0, 4096, 1);
	split_everywhere(&s, 4097, s.len, 3001);
	split_everywhere(&s, s.len - 8, s.len, 1);
	free_stream(&s);
}

/* A long stream fed in random pieces (seeded) gives exactly the same packets. */
static void test_random_chunking(void **state)
{
	(void)state;
	static struct wb_soup_framer f;
	struct stream s;
	make_stream(&s, 2);
	for (uint64_t seed = 1; seed <= 20; seed++) {
		rng_state = seed;
		wb_soup_framer_init(&f);
		struct check c = {.s = &s};
		size_t off = 0;
		uint32_t got = 0;
		while (off < s.len) {
			/* mostly small pieces, sometimes big ones, sometimes empty */
			size_t piece = rnd() % 8 == 0 ? rnd() % 70000 : rnd() % 64;
			if (piece > s.len - off)
				piece = s.len - off;
			got += wb_soup_feed(&f, s.bytes + off, piece, check_cb, &c);
			off += piece;
		}
		assert_int_equal(got, s.npkts);
		assert_int_equal(c.next, s.npkts);
		assert_int_equal(f.empty, s.empty);
		assert_int_equal(f.have, 0);
	}
	/* and one byte at a time */
	wb_soup_framer_init(&f);
	struct check c = {.s = &s};
	for (size_t off = 0; off < s.len; off++)
		wb_soup_feed(&f, s.bytes + off, 1, check_cb, &c);
	assert_int_equal(c.next, s.npkts);
	free_stream(&s);
}

static int count_cb(void *arg, const struct wb_soup_packet *p)
{
	(void)p;
	(*(int *)arg)++;
	return 0;
}

/* Lengths of 0 are counted and skipped; a length promising more than arrived waits
 * without delivering; a length of 1 is a bare type byte. */
static void test_malformed_lengths(void **state)
{
	(void)state;
	static struct wb_soup_framer f;
	wb_soup_framer_init(&f);
	int n = 0;
	const uint8_t zeros[6] = {0};
	assert_int_equal(wb_soup_feed(&f, zeros, sizeof(zeros), count_cb, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(f.empty, 3);
	assert_int_equal(f.have, 0);

	/* announces 65535 bytes, delivers 10: nothing comes out, the bytes are held */
	const uint8_t big[12] = {0xff, 0xff, 'S', 1, 2, 3, 4, 5, 6, 7, 8, 9};
	assert_int_equal(wb_soup_feed(&f, big, sizeof(big), count_cb, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(f.have, sizeof(big));
	/* the rest arrives: exactly one packet */
	static uint8_t rest[65535 - 10];
	assert_int_equal(wb_soup_feed(&f, rest, sizeof(rest), count_cb, &n), 1);
	assert_int_equal(n, 1);
	assert_int_equal(f.have, 0);

	/* one lone length byte */
	const uint8_t one[1] = {0};
	assert_int_equal(wb_soup_feed(&f, one, 1, count_cb, &n), 0);
	assert_int_equal(f.have, 1);
	const uint8_t type_only[2] = {1, 'H'};
	assert_int_equal(wb_soup_feed(&f, type_only, 2, count_cb, &n), 1);
	assert_int_equal(f.have, 0);
	assert_int_equal(f.packets, 2);

	/* feeding nothing is harmless */
	assert_int_equal(wb_soup_feed(&f, NULL, 0, count_cb, &n), 0);
}

/* A callback that stops keeps the bytes after its packet for the next call. */
static void test_early_stop_keeps_rest(void **state)
{
	(void)state;
	static struct wb_soup_framer f;
	struct stream s;
	make_stream(&s, 3);
	wb_soup_framer_init(&f);
	struct check c = {.s = &s, .stop_after = 1};
	uint32_t got = 0;
	for (size_t off = 0; off < s.len; off += 4000) {
		size_t piece = s.len - off < 4000 ? s.len - off : 4000;
		c.in_feed = 0;
		uint32_t d = wb_soup_feed(&f, s.bytes + off, piece, check_cb, &c);
		/* the held packets come out one per call with no new bytes */
		while (d == 1) {
			got++;
			c.in_feed = 0;
			d = wb_soup_feed(&f, NULL, 0, check_cb, &c);
		}
		assert_int_equal(d, 0);
	}
	assert_int_equal(got, s.npkts);
	assert_int_equal(f.overflow, 0);

	/* more than the framer can keep: the excess is counted, not silently dropped */
	wb_soup_framer_init(&f);
	c = (struct check){.s = &s, .stop_after = 1};
	wb_soup_feed(&f, s.bytes, s.len, check_cb, &c);
	assert_int_equal(c.next, 1);
	assert_int_equal(f.have + f.overflow, s.len - (3 + s.pkts[0].len));
	assert_true(f.overflow > 0);
	free_stream(&s);
}

static struct wb_soup_packet packet_of(const uint8_t *buf, size_t n)
{
	assert_int_equal((buf[0] << 8) | buf[1], n - 2);
	return (struct wb_soup_packet){.type = (char)buf[2], .payload = buf + 3, .len = (uint16_t)(n - 3)};
}

/* Every builder: exact layout from PROTOCOLS.md section 2 and a parse back. */
static void test_builders_round_trip(void **state)
{
	(void)state;
	uint8_t buf[64];
	char user[7], pass[11], session[10];
	uint64_t seq;
	const uint64_t seqs[] = {0, 1, 42, 1000000007ull, UINT64_MAX};

	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		size_t n = wb_soup_build_login(buf, "Trader", "pw", "WBSIM00001", seqs[i]);
		assert_int_equal(n, 49);
		assert_memory_equal(buf, "\x00\x2fL", 3);
		assert_memory_equal(buf + 3, "Traderpw        WBSIM00001", 26);
		struct wb_soup_packet p = packet_of(buf, n);
		assert_int_equal(wb_soup_parse_login(&p, user, pass, session, &seq), 0);
		assert_string_equal(user, "Trader");
		assert_string_equal(pass, "pw");
		assert_memory_equal(session, "WBSIM00001", 10);
		assert_true(seq == seqs[i]);

		n = wb_soup_build_accepted(buf, "ABC       ", seqs[i]);
		assert_int_equal(n, 33);
		assert_memory_equal(buf, "\x00\x1f" "A       ABC", 13); /* session right-justified */
		p = packet_of(buf, n);
		assert_int_equal(wb_soup_parse_accepted(&p, session, &seq), 0);
		assert_memory_equal(session, "ABC       ", 10); /* parsed back left-justified */
		assert_true(seq == seqs[i]);
	}
	/* the sequence is right-justified in 20 characters */
	wb_soup_build_login(buf, "u", "p", "          ", 12);
	assert_memory_equal(buf + 19, "                            12", 30);

	const char simple[] = {'H', 'R', 'O', 'Z'};
	for (size_t i = 0; i < sizeof(simple); i++) {
		assert_int_equal(wb_soup_build_simple(buf, simple[i]), 3);
		struct wb_soup_packet p = packet_of(buf, 3);
		assert_int_equal(p.type, simple[i]);
		assert_int_equal(p.len, 0);
	}
	char reason;
	assert_int_equal(wb_soup_build_rejected(buf, 'S'), 4);
	struct wb_soup_packet p = packet_of(buf, 4);
	assert_int_equal(wb_soup_parse_rejected(&p, &reason), 0);
	assert_int_equal(reason, 'S');

	/* sequenced header + message frames back to the message */
	uint8_t frame[3 + 36];
	assert_int_equal(wb_soup_build_sequenced_hdr(frame, 36), 3);
	for (int i = 0; i < 36; i++)
		frame[3 + i] = (uint8_t)i;
	static struct wb_soup_framer f;
	wb_soup_framer_init(&f);
	struct stream s = {0};
	add_packet(&s, WB_SOUP_SEQUENCED, frame + 3, 36);
	assert_memory_equal(s.bytes, frame, sizeof(frame));
	struct check c = {.s = &s};
	assert_int_equal(wb_soup_feed(&f, frame, sizeof(frame), check_cb, &c), 1);
	free_stream(&s);
}

/* Fixed payloads: padding on either side with spaces or NULs is accepted, anything else
 * is -EBADMSG and leaves the outputs alone. */
static void test_parse_padding_and_malformed(void **state)
{
	(void)state;
	uint8_t buf[64];
	char session[10], user[7], pass[11];
	uint64_t seq = 99;

	/* Login Accepted with left-justified, NUL-padded fields */
	uint8_t acc[30];
	memset(acc, 0, sizeof(acc));
	memcpy(acc, "S1", 2);
	memcpy(acc + 10, "  4711", 6);
	struct wb_soup_packet p = {.type = 'A', .payload = acc, .len = 30};
	assert_int_equal(wb_soup_parse_accepted(&p, session, &seq), 0);
	assert_memory_equal(session, "S1        ", 10);
	assert_true(seq == 4711);

	const char *bad_seqs[] = {"                    ", "12a                 ", "        -1          ",
				  "99999999999999999999", "1 2                 "};
	for (size_t i = 0; i < sizeof(bad_seqs) / sizeof(bad_seqs[0]); i++) {
		memcpy(acc + 10, bad_seqs[i], 20);
		seq = 99;
		assert_int_equal(wb_soup_parse_accepted(&p, session, &seq), -EBADMSG);
		assert_true(seq == 99);
	}
	/* 18446744073709551615 is the largest that fits */
	memcpy(acc + 10, "18446744073709551615", 20);
	assert_int_equal(wb_soup_parse_accepted(&p, session, &seq), 0);
	assert_true(seq == UINT64_MAX);

	/* wrong lengths and wrong types */
	p.len = 29;
	assert_int_equal(wb_soup_parse_accepted(&p, session, &seq), -EBADMSG);
	p.len = 30;
	p.type = 'J';
	assert_int_equal(wb_soup_parse_accepted(&p, session, &seq), -EBADMSG);

	size_t n = wb_soup_build_login(buf, "u", "p", "X         ", 5);
	p = packet_of(buf, n);
	p.len = 45;
	assert_int_equal(wb_soup_parse_login(&p, user, pass, session, &seq), -EBADMSG);
	p.len = 46;
	buf[3 + 46 - 1] = 'x';
	assert_int_equal(wb_soup_parse_login(&p, user, pass, session, &seq), -EBADMSG);

	char reason;
	const uint8_t two[2] = {'A', 'A'};
	p = (struct wb_soup_packet){.type = 'J', .payload = two, .len = 2};
	assert_int_equal(wb_soup_parse_rejected(&p, &reason), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_at_every_boundary),
		cmocka_unit_test(test_random_chunking),
		cmocka_unit_test(test_malformed_lengths),
		cmocka_unit_test(test_early_stop_keeps_rest),
		cmocka_unit_test(test_builders_round_trip),
		cmocka_unit_test(test_parse_padding_and_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
