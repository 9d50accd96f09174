/* Real captures through Mold and ITCH: every message decodes, known messages decode
 * field by field, and per-type totals of the .itch files match an independent count.
 * Expected values were read by hand from the capture bytes (PROTOCOLS.md 3.5 for Add Order). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "itch.h"
#include "peek_check.h"
#include "mold.h"
#include "pcap_udp.h"

#define OMI_DIR "data/omi/Nasdaq"
#define OMI_2023 OMI_DIR "/Nasdaq.Equities.TotalView.Itch.v5.0.20230822"
#define OMI_OLD OMI_DIR "/Nasdaq.Equities.TotalView.Itch.v5.0"

static char shared_dir[2048];

static void shared_path(char *buf, size_t n, const char *rel)
{
	snprintf(buf, n, "%s/%s", shared_dir, rel);
}

/* Calls fn for every ITCH message in one pcap; returns Mold/ITCH errors seen. */
struct pcap_walk {
	uint64_t packets, messages, mold_errors, itch_errors;
	uint64_t per_type[256];
};

static void walk_pcap(const char *path, struct pcap_walk *w,
		      void (*fn)(const struct wb_itch_msg *, void *), void *arg)
{
	struct wb_pcap_udp *pu;
	const uint8_t *pl;
	size_t len;
	uint64_t frame;

	assert_int_equal(wb_pcap_udp_open(path, &pu), 0);
	while (wb_pcap_udp_next(pu, &pl, &len, &frame) == 1) {
		struct wb_mold_hdr hdr;
		struct wb_mold_iter it;
		const uint8_t *msg;
		uint16_t mlen;
		int r;

		w->packets++;
		if (wb_mold_parse(pl, len, &hdr, &it) < 0) {
			w->mold_errors++;
			continue;
		}
		while ((r = wb_mold_next(&it, &msg, &mlen)) == 1) {
			struct wb_itch_msg m;
			if (wb_itch_decode(msg, mlen, &m) != WB_ITCH_OK) {
				w->itch_errors++;
				continue;
			}
			/* Every real message carries exactly its layout: nothing appended. */
			assert_int_equal(mlen, wb_itch_msg_len((uint8_t)m.type));
			w->messages++;
			w->per_type[(uint8_t)m.type]++;
			if (fn)
				fn(&m, arg);
		}
		if (r < 0)
			w->mold_errors++;
	}
	assert_int_equal(wb_pcap_udp_skipped(pu), 0);
	wb_pcap_udp_close(pu);
}

/* The OMI files hold one message type each; the file name says which. */
static const struct {
	const char *file;
	char type;
	unsigned messages;
} omi_files[] = {
	{ OMI_2023 "/AddOrderNoMPID.pcap", 'A', 5 },
	{ OMI_2023 "/AddOrderWithMPID.pcap", 'F', 5 },
	{ OMI_2023 "/CrossTrade.pcap", 'Q', 5 },
	{ OMI_2023 "/LULDAuctionCollar.pcap", 'J', 5 },
	{ OMI_2023 "/MarketParticipantPosition.pcap", 'L', 5 },
	{ OMI_2023 "/NetOrderImbalanceIndicator.pcap", 'I', 5 },
	{ OMI_2023 "/NonCrossTrade.pcap", 'P', 5 },
	{ OMI_2023 "/OrderCancel.pcap", 'X', 5 },
	{ OMI_2023 "/OrderDelete.pcap", 'D', 5 },
	{ OMI_2023 "/OrderExecuted.pcap", 'E', 5 },
	{ OMI_2023 "/OrderExecutedWithPrice.pcap", 'C', 5 },
	{ OMI_2023 "/OrderReplace.pcap", 'U', 5 },
	{ OMI_2023 "/RegSHORestriction.pcap", 'Y', 5 },
	{ OMI_2023 "/StockTradingAction.pcap", 'H', 5 },
	{ OMI_2023 "/SystemEvent.pcap", 'S', 1 },
	{ OMI_OLD "/AddOrderNoMpidAttributionMessage.pcap", 'A', 1 },
	{ OMI_OLD "/MarketParticipantPositionMessage.pcap", 'L', 1 },
	{ OMI_OLD "/NetOrderImbalanceIndicatorMessage.pcap", 'I', 1 },
	{ OMI_OLD "/OrderDeleteMessage.pcap", 'D', 1 },
	{ OMI_OLD "/OrderExecutedMessage.pcap", 'E', 1 },
	{ OMI_OLD "/OrderReplaceMessage.pcap", 'U', 1 },
	{ OMI_OLD "/StockTradingActionMessage.pcap", 'H', 1 },
};

static void test_parsers_omi_every_message_decodes(void **state)
{
	(void)state;
	char path[4096], pattern[4096];
	uint64_t total = 0;
	glob_t g;

	for (size_t i = 0; i < sizeof(omi_files) / sizeof(omi_files[0]); i++) {
		struct pcap_walk w = { 0 };
		shared_path(path, sizeof(path), omi_files[i].file);
		walk_pcap(path, &w, NULL, NULL);
		assert_int_equal(w.mold_errors, 0);
		assert_int_equal(w.itch_errors, 0);
		assert_int_equal(w.messages, omi_files[i].messages);
		assert_int_equal(w.per_type[(uint8_t)omi_files[i].type], omi_files[i].messages);
		total += w.messages;
	}

	/* Every pcap in the folders, including ones this table does not name. */
	shared_path(pattern, sizeof(pattern), OMI_DIR "/*TotalView*/*.pcap");
	assert_int_equal(glob(pattern, 0, NULL, &g), 0);
	uint64_t all = 0;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		struct pcap_walk w = { 0 };
		walk_pcap(g.gl_pathv[i], &w, NULL, NULL);
		assert_int_equal(w.mold_errors, 0);
		assert_int_equal(w.itch_errors, 0);
		all += w.messages;
	}
	globfree(&g);
	/* 38 + 1 in Multiple.Packets.pcap, 71 + 7 in the single-type files. */
	assert_int_equal(total + 39, all);
	assert_int_equal(all, 117);
}

static void collect_first(const struct wb_itch_msg *m, void *arg)
{
	struct wb_itch_msg *first = arg;
	if (first->type == 0)
		*first = *m;
}

static struct wb_itch_msg first_msg(const char *rel)
{
	char path[4096];
	struct pcap_walk w = { 0 };
	struct wb_itch_msg m = { 0 };

	shared_path(path, sizeof(path), rel);
	walk_pcap(path, &w, collect_first, &m);
	return m;
}

#define assert_alpha(field, lit) assert_memory_equal((field), (lit), sizeof(field))

static void test_parsers_omi_known_fields(void **state)
{
	(void)state;
	struct wb_itch_msg m;

	/* PROTOCOLS.md 3.5. */
	m = first_msg(OMI_2023 "/AddOrderNoMPID.pcap");
	assert_int_equal(m.type, 'A');
	assert_int_equal(m.locate, 5528);
	assert_int_equal(m.tracking, 0);
	assert_int_equal(m.ts, 34199999894278ULL);
	assert_int_equal(m.u.add.ref, 23508286);
	assert_int_equal(m.u.add.side, 'B');
	assert_int_equal(m.u.add.shares, 1600);
	assert_alpha(m.u.add.stock, "IVOO    ");
	assert_int_equal(m.u.add.price, 873900);
	assert_alpha(m.u.add.mpid, "    ");

	m = first_msg(OMI_2023 "/AddOrderWithMPID.pcap");
	assert_int_equal(m.type, 'F');
	assert_int_equal(m.locate, 1738);
	assert_int_equal(m.ts, 34199999977782ULL);
	assert_int_equal(m.u.add.ref, 18923125);
	assert_int_equal(m.u.add.side, 'S');
	assert_int_equal(m.u.add.shares, 100);
	assert_alpha(m.u.add.stock, "CASY    ");
	assert_int_equal(m.u.add.price, 2555200);
	assert_alpha(m.u.add.mpid, "FLTU");

	m = first_msg(OMI_2023 "/CrossTrade.pcap");
	assert_int_equal(m.type, 'Q');
	assert_int_equal(m.locate, 983);
	assert_int_equal(m.tracking, 1);
	assert_int_equal(m.ts, 34200000483331ULL);
	assert_int_equal(m.u.cross.shares, 0);
	assert_alpha(m.u.cross.stock, "BAC-Q   ");
	assert_int_equal(m.u.cross.price, 0);
	assert_int_equal(m.u.cross.match, 255550);
	assert_int_equal(m.u.cross.cross_type, 'O');

	m = first_msg(OMI_2023 "/LULDAuctionCollar.pcap");
	assert_int_equal(m.type, 'J');
	assert_int_equal(m.locate, 11325);
	assert_int_equal(m.ts, 34215592415125ULL);
	assert_alpha(m.u.luld.stock, "ZXZZT   ");
	assert_int_equal(m.u.luld.ref_price, 133400);
	assert_int_equal(m.u.luld.upper, 140100);
	assert_int_equal(m.u.luld.lower, 109200);
	assert_int_equal(m.u.luld.extension, 0);

	m = first_msg(OMI_2023 "/MarketParticipantPosition.pcap");
	assert_int_equal(m.type, 'L');
	assert_int_equal(m.locate, 3648);
	assert_alpha(m.u.mpp.mpid, "MAXM");
	assert_alpha(m.u.mpp.stock, "FDLS    ");
	assert_int_equal(m.u.mpp.primary_mm, 'Y');
	assert_int_equal(m.u.mpp.mm_mode, 'N');
	assert_int_equal(m.u.mpp.state, 'A');

	m = first_msg(OMI_2023 "/NetOrderImbalanceIndicator.pcap");
	assert_int_equal(m.type, 'I');
	assert_int_equal(m.locate, 7853);
	assert_int_equal(m.ts, 34200000087025ULL);
	assert_int_equal(m.u.noii.paired, 0);
	assert_int_equal(m.u.noii.imbalance, 0);
	assert_int_equal(m.u.noii.direction, 'O');
	assert_alpha(m.u.noii.stock, "PFTAW   ");
	assert_int_equal(m.u.noii.cross_type, 'O');
	assert_int_equal(m.u.noii.variation, ' ');

	m = first_msg(OMI_2023 "/NonCrossTrade.pcap");
	assert_int_equal(m.type, 'P');
	assert_int_equal(m.locate, 4499);
	assert_int_equal(m.tracking, 2);
	assert_int_equal(m.u.trade.ref, 0);
	assert_int_equal(m.u.trade.side, 'B');
	assert_int_equal(m.u.trade.shares, 100);
	assert_alpha(m.u.trade.stock, "GOOGL   ");
	assert_int_equal(m.u.trade.price, 1284600);
	assert_int_equal(m.u.trade.match, 255554);

	m = first_msg(OMI_2023 "/OrderCancel.pcap");
	assert_int_equal(m.type, 'X');
	assert_int_equal(m.locate, 9413);
	assert_int_equal(m.u.cancel.ref, 33823232);
	assert_int_equal(m.u.cancel.shares, 100);

	m = first_msg(OMI_2023 "/OrderDelete.pcap");
	assert_int_equal(m.type, 'D');
	assert_int_equal(m.locate, 3353);
	assert_int_equal(m.ts, 34199999889645ULL);
	assert_int_equal(m.u.del.ref, 23442714);

	m = first_msg(OMI_2023 "/OrderExecuted.pcap");
	assert_int_equal(m.type, 'E');
	assert_int_equal(m.locate, 2345);
	assert_int_equal(m.tracking, 2);
	assert_int_equal(m.u.exec.ref, 23499418);
	assert_int_equal(m.u.exec.shares, 25);
	assert_int_equal(m.u.exec.match, 255547);

	m = first_msg(OMI_2023 "/OrderExecutedWithPrice.pcap");
	assert_int_equal(m.type, 'C');
	assert_int_equal(m.locate, 5092);
	assert_int_equal(m.u.exec_px.ref, 19993566);
	assert_int_equal(m.u.exec_px.shares, 4926);
	assert_int_equal(m.u.exec_px.match, 255581);
	assert_int_equal(m.u.exec_px.printable, 'N');
	assert_int_equal(m.u.exec_px.price, 224800);

	m = first_msg(OMI_2023 "/OrderReplace.pcap");
	assert_int_equal(m.type, 'U');
	assert_int_equal(m.locate, 7603);
	assert_int_equal(m.ts, 34199999836649ULL);
	assert_int_equal(m.u.replace.old_ref, 15108479);
	assert_int_equal(m.u.replace.new_ref, 21361351);
	assert_int_equal(m.u.replace.shares, 100);
	assert_int_equal(m.u.replace.price, 1062600);

	m = first_msg(OMI_2023 "/RegSHORestriction.pcap");
	assert_int_equal(m.type, 'Y');
	assert_int_equal(m.locate, 9405);
	assert_alpha(m.u.regsho.stock, "SOPA    ");
	assert_int_equal(m.u.regsho.action, '1');

	m = first_msg(OMI_2023 "/StockTradingAction.pcap");
	assert_int_equal(m.type, 'H');
	assert_int_equal(m.locate, 11325);
	assert_int_equal(m.ts, 34215592125541ULL);
	assert_alpha(m.u.action.stock, "ZXZZT   ");
	assert_int_equal(m.u.action.state, 'P');
	assert_int_equal(m.u.action.reserved, ' ');
	assert_alpha(m.u.action.reason, "LUDP");

	m = first_msg(OMI_2023 "/SystemEvent.pcap");
	assert_int_equal(m.type, 'S');
	assert_int_equal(m.locate, 0);
	assert_int_equal(m.ts, 34200000070384ULL);
	assert_int_equal(m.u.sys.event_code, 'Q');
}

/* Multiple.Packets.pcap: a 1-block packet then a 38-block packet of the live session. */
static void test_parsers_omi_multiple_packets_mold(void **state)
{
	(void)state;
	char path[4096];
	struct wb_pcap_udp *pu;
	const uint8_t *pl;
	size_t len;
	uint64_t frame;
	static const struct { uint64_t seq; uint16_t count; } want[] = { { 14764496, 1 }, { 19009117, 38 } };

	shared_path(path, sizeof(path), OMI_OLD "/Multiple.Packets.pcap");
	assert_int_equal(wb_pcap_udp_open(path, &pu), 0);
	for (size_t i = 0; i < 2; i++) {
		struct wb_mold_hdr hdr;
		struct wb_mold_iter it;
		const uint8_t *msg;
		uint16_t mlen;
		unsigned blocks = 0;

		assert_int_equal(wb_pcap_udp_next(pu, &pl, &len, &frame), 1);
		assert_int_equal(wb_mold_parse(pl, len, &hdr, &it), 0);
		assert_memory_equal(hdr.session, "000010059B", WB_MOLD_SESSION_LEN);
		assert_int_equal(hdr.seq, want[i].seq);
		assert_int_equal(hdr.count, want[i].count);
		while (wb_mold_next(&it, &msg, &mlen) == 1)
			blocks++;
		assert_int_equal(blocks, want[i].count);
		/* The blocks fill the datagram exactly. */
		assert_ptr_equal(it.p, pl + len);
	}
	assert_int_equal(wb_pcap_udp_next(pu, &pl, &len, &frame), 0);
	wb_pcap_udp_close(pu);
}

/* Per-type totals counted independently of this decoder (framing plus first byte only). */
struct type_count { char type; unsigned n; };

static void check_itch_file(const char *rel, uint64_t total, const struct type_count *want, size_t nwant)
{
	char path[4096];
	uint64_t per_type[256] = { 0 }, n = 0, errors = 0;
	struct wb_itch_file_iter it;
	const uint8_t *msg;
	uint16_t mlen;
	uint8_t *buf;
	struct stat st;
	FILE *f;
	int r;

	shared_path(path, sizeof(path), rel);
	assert_int_equal(stat(path, &st), 0);
	buf = malloc((size_t)st.st_size);
	assert_non_null(buf);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(buf, 1, (size_t)st.st_size, f), (size_t)st.st_size);
	fclose(f);

	it.p = buf;
	it.end = buf + st.st_size;
	while ((r = wb_itch_file_next(&it, &msg, &mlen)) == 1) {
		struct wb_itch_msg m;
		if (wb_itch_decode(msg, mlen, &m) != WB_ITCH_OK) {
			errors++;
			continue;
		}
		assert_true(m.ts < 86400ULL * 1000000000ULL);
		assert_peek_agrees(msg, mlen, &m); /* the worker's hint reads what the books apply */
		per_type[(uint8_t)m.type]++;
		n++;
	}
	assert_int_equal(r, 0);
	assert_int_equal(errors, 0);
	assert_int_equal(n, total);
	uint64_t sum = 0;
	for (size_t i = 0; i < nwant; i++) {
		assert_int_equal(per_type[(uint8_t)want[i].type], want[i].n);
		sum += want[i].n;
	}
	assert_int_equal(sum, total);
	free(buf);
}

static void test_parsers_itch_file_ritch(void **state)
{
	(void)state;
	static const struct type_count want[] = {
		{ 'A', 4997 }, { 'D', 1745 }, { 'E', 198 }, { 'F', 3 }, { 'H', 3 },
		{ 'P', 5000 }, { 'R', 3 }, { 'S', 6 }, { 'U', 12 }, { 'X', 45 },
	};
	check_itch_file("data/itch/ritch-bx-sample.itch", 12012, want, sizeof(want) / sizeof(want[0]));
}

static void test_parsers_itch_file_totalview(void **state)
{
	(void)state;
	static const struct type_count want[] = {
		{ 'A', 42 }, { 'C', 5 }, { 'D', 7 }, { 'E', 6 }, { 'F', 7 }, { 'H', 6 }, { 'I', 6 }, { 'J', 5 },
		{ 'L', 6 }, { 'P', 5 }, { 'Q', 5 }, { 'S', 1 }, { 'U', 6 }, { 'X', 5 }, { 'Y', 5 },
	};
	check_itch_file("data/itch/totalview-117msgs.itch", 117, want, sizeof(want) / sizeof(want[0]));
}

int main(void)
{
	const char *env = getenv("WB_SHARED_DIR");
	const char *src = getenv("WB_SOURCE_DIR");
	char probe[4096];
	struct stat st;

	if (env)
		snprintf(shared_dir, sizeof(shared_dir), "%s", env);
	else
		snprintf(shared_dir, sizeof(shared_dir), "%s/../shared", src ? src : ".");
	shared_path(probe, sizeof(probe), OMI_2023);
	if (stat(probe, &st) != 0) {
		fprintf(stderr, "SKIP: real captures not found at %s (set WB_SHARED_DIR)\n", probe);
		return 77;
	}
	shared_path(probe, sizeof(probe), "data/itch/ritch-bx-sample.itch");
	if (stat(probe, &st) != 0) {
		fprintf(stderr, "SKIP: %s not found (set WB_SHARED_DIR)\n", probe);
		return 77;
	}

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parsers_omi_every_message_decodes),
		cmocka_unit_test(test_parsers_omi_known_fields),
		cmocka_unit_test(test_parsers_omi_multiple_packets_mold),
		cmocka_unit_test(test_parsers_itch_file_ritch),
		cmocka_unit_test(test_parsers_itch_file_totalview),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
