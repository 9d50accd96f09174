/* Persister + wbcap end to end: round trip of every event type, the rebuilt book against
 * a naive reconstruction, a corrupted block, retention, raw packets to pcapng (tshark),
 * ring drop markers, and the raw ring itself. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "capfile.h"
#include "capture.h"

static char bindir[PATH_MAX];

static void make_tmpdir(char *buf, size_t n)
{
	snprintf(buf, n, "/tmp/wbpersist.XXXXXX");
	assert_non_null(mkdtemp(buf));
}

static void rm_rf(const char *dir)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static struct wb_persister *start_persister(const char *dir, struct wb_capture_conf *cap, struct wb_evring *ring,
					    struct wb_rawring *raw)
{
	snprintf(cap->directory, sizeof(cap->directory), "%s", dir);
	if (!cap->block_bytes)
		cap->block_bytes = 16 << 10;
	if (!cap->rotate_bytes)
		cap->rotate_bytes = 64 << 20;
	cap->queue_depth = 4;
	const char *names[] = { "itch" }, *protos[] = { "itch50-moldudp64" };
	struct wb_persister_opts o = { .cap = cap, .name = "t", .core = UINT_MAX, .nfeeds = 1, .feed_names = names,
				       .feed_protocols = protos, .price_decimals = 4 };
	struct wb_persister *p;
	assert_int_equal(wb_persister_create(&o, &p), 0);
	if (ring)
		assert_int_equal(wb_persister_attach(p, ring, "w0"), 0);
	if (raw)
		assert_int_equal(wb_persister_attach_raw(p, raw, "raw0"), 0);
	assert_int_equal(wb_persister_start(p), 0);
	return p;
}

static void push_all(struct wb_evring *r, const struct wb_event *ev, uint32_t n)
{
	for (uint32_t i = 0; i < n;) {
		if (wb_evring_count(r) + 1 > r->size) {
			usleep(50);
			continue;
		}
		assert_int_equal(wb_evring_push(r, &ev[i], 1), 1);
		i++;
	}
}

/* Generated session: 4 symbols, orders added, executed, canceled, deleted, replaced,
 * plus one of every other event type; ground truth kept alongside. */
#define NSYM 4
static const char *syms[NSYM] = { "AAPL", "MSFT", "ZVZZT", "QQQ" };

static uint32_t gen_session(struct wb_event *ev, uint32_t cap)
{
	uint32_t n = 0;
	uint64_t seq = 1, rng = 12345;
	uint64_t ts = 34200000000000ull;
	for (int s = 0; s < NSYM; s++) {
		struct wb_event *e = &ev[n++];
		memset(e, 0, sizeof(*e));
		e->type = WB_EV_SYMBOL;
		e->locate = (uint16_t)(s + 1);
		char sym[8];
		memset(sym, ' ', 8);
		memcpy(sym, syms[s], strlen(syms[s]));
		memcpy(&e->aux, sym, 8);
		e->seq = seq++;
		e->ts_exch = ts++;
		e->ts_recv = 1700000000000000000ull + e->seq * 1000;
	}
	uint64_t live[NSYM][64] = { { 0 } };
	uint32_t nlive[NSYM] = { 0 };
	uint64_t next_ref = 1;
	while (n + 8 < cap) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t r = (uint32_t)(rng >> 33);
		int s = (int)(r % NSYM);
		struct wb_event *e = &ev[n];
		memset(e, 0, sizeof(*e));
		e->locate = (uint16_t)(s + 1);
		e->seq = seq++;
		e->ts_exch = ts += 1000 + r % 5000;
		e->ts_recv = 1700000000000000000ull + e->seq * 1000 + r % 100;
		uint32_t op = (r >> 8) % 10;
		if (nlive[s] < 4 || op < 3 || nlive[s] == 64) {
			if (nlive[s] == 64)
				op = 5;
			else {
				e->type = WB_EV_ORDER_ADD;
				e->ref = next_ref++;
				e->side = (r >> 12) & 1 ? 'B' : 'S';
				e->price = (e->side == 'B' ? 1000000 : 1010000) + (int64_t)((r >> 14) % 20) * 100 *
					   (e->side == 'B' ? -1 : 1);
				e->shares = 100 * (1 + (r >> 20) % 9);
				live[s][nlive[s]++] = e->ref;
				n++;
				continue;
			}
		}
		/* find the live order for ref-based events: the test reads its state from ev[] */
		uint32_t k = (r >> 16) % nlive[s];
		uint64_t ref = live[s][k];
		const struct wb_event *add = NULL;
		uint32_t remaining = 0;
		for (uint32_t i = 0; i < n; i++)
			if ((ev[i].type == WB_EV_ORDER_ADD || ev[i].type == WB_EV_ORDER_REPLACE) && ev[i].ref == ref) {
				add = &ev[i];
				remaining = ev[i].shares;
			} else if (add && ev[i].ref == ref &&
				   (ev[i].type == WB_EV_ORDER_EXEC || ev[i].type == WB_EV_ORDER_CANCEL)) {
				remaining -= ev[i].shares;
			}
		e->ref = ref;
		e->side = add->side;
		e->price = add->price;
		if (op < 5 && remaining > 100) {
			e->type = op == 3 ? WB_EV_ORDER_EXEC : WB_EV_ORDER_CANCEL;
			e->shares = 100;
			e->aux = op == 3 ? seq * 7 : 0;
		} else if (op < 8) {
			e->type = WB_EV_ORDER_DELETE;
			e->shares = remaining;
			live[s][k] = live[s][--nlive[s]];
		} else {
			/* replace: DELETE flagged REPLACE, then the new order */
			e->type = WB_EV_ORDER_DELETE;
			e->flags = WB_EVF_REPLACE;
			e->shares = remaining;
			struct wb_event *e2 = &ev[++n];
			*e2 = *e;
			e2->type = WB_EV_ORDER_REPLACE;
			e2->aux = ref;
			e2->ref = next_ref++;
			e2->price = e->price + (e->side == 'B' ? -100 : 100);
			e2->shares = 200;
			live[s][k] = e2->ref;
		}
		n++;
	}
	/* one of every other type */
	for (uint8_t t = WB_EV_LEVEL; t < WB_EV_TYPE_MAX && n < cap; t++) {
		if (t == WB_EV_SYMBOL)
			continue;
		struct wb_event *e = &ev[n++];
		memset(e, 0, sizeof(*e));
		e->type = t;
		e->locate = 3;
		e->seq = seq++;
		e->ts_exch = ts += 10;
		e->ts_recv = 1700000000000000000ull + e->seq * 1000;
		e->aux = 0x5EADBEEFCAFEF00Dull + t; /* jansson reads signed 64-bit integers */
		e->price = -12345;
		e->side = t == WB_EV_LEVEL ? 'S' : 'x';
		e->level_shares = t == WB_EV_LEVEL ? 0 : 70000;
		e->level_orders = 3;
		e->flags = WB_EVF_BATCH_END;
		if (t == WB_EV_GAP || t == WB_EV_DROP) {
			/* integrity markers that are part of the data, not of this test */
			e->type = WB_EV_OTHER;
		}
	}
	return n;
}

static FILE *run_wbcap(const char *args)
{
	char cmd[PATH_MAX * 2];
	snprintf(cmd, sizeof(cmd), "%s/wbcap %s", bindir, args);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	return f;
}

static void test_roundtrip_jsonl(void **state)
{
	(void)state;
	char dir[64];
	make_tmpdir(dir, sizeof(dir));
	enum { CAP = 20000 };
	struct wb_event *ev = calloc(CAP, sizeof(*ev));
	uint32_t n = gen_session(ev, CAP);
	struct wb_evring ring;
	assert_int_equal(wb_evring_init(&ring, 1024, NULL), 0);
	struct wb_capture_conf cap = { .zstd_level = 1, .rotate_bytes = 256 << 10 };
	struct wb_persister *p = start_persister(dir, &cap, &ring, NULL);
	push_all(&ring, ev, n);
	assert_int_equal(wb_persister_stop(p), 0);
	struct wb_persist_stats st;
	wb_persister_stats(p, &st);
	assert_int_equal(st.events_in, n);
	assert_int_equal(st.events_lost_disk, 0);
	assert_true(st.files_written >= 2); /* rotation by size happened */
	assert_true(st.compression_ratio > 1.0);
	wb_persister_destroy(p);

	char args[256];
	snprintf(args, sizeof(args), "cat %s --format jsonl", dir);
	FILE *f = run_wbcap(args);
	char line[1024];
	uint32_t i = 0;
	while (fgets(line, sizeof(line), f)) {
		assert_true(i < n);
		json_error_t err;
		json_t *j = json_loads(line, 0, &err);
		assert_non_null(j);
		const struct wb_event *e = &ev[i];
		assert_int_equal(json_integer_value(json_object_get(j, "ts_recv")), (json_int_t)e->ts_recv);
		assert_int_equal(json_integer_value(json_object_get(j, "ts_exch")), (json_int_t)e->ts_exch);
		assert_int_equal(json_integer_value(json_object_get(j, "seq")), (json_int_t)e->seq);
		assert_int_equal(json_integer_value(json_object_get(j, "ref")), (json_int_t)e->ref);
		assert_int_equal((uint64_t)json_integer_value(json_object_get(j, "aux")), e->aux);
		assert_int_equal(json_integer_value(json_object_get(j, "price_raw")), e->price);
		assert_int_equal(json_integer_value(json_object_get(j, "shares")), e->shares);
		assert_int_equal(json_integer_value(json_object_get(j, "level_shares")), e->level_shares);
		assert_int_equal(json_integer_value(json_object_get(j, "level_orders")), e->level_orders);
		assert_int_equal(json_integer_value(json_object_get(j, "locate")), e->locate);
		assert_int_equal(json_integer_value(json_object_get(j, "side")), e->side);
		assert_int_equal(json_integer_value(json_object_get(j, "feed")), e->feed);
		assert_int_equal(json_integer_value(json_object_get(j, "flags")), e->flags);
		const char *tn = json_string_value(json_object_get(j, "type"));
		assert_non_null(tn);
		static const char *names[] = { "NONE", "ORDER_ADD", "ORDER_EXEC", "ORDER_CANCEL", "ORDER_DELETE",
					       "ORDER_REPLACE", "LEVEL", "TRADE", "TRADE_BREAK", "STATUS", "SYMBOL",
					       "SYSTEM", "INTEGRITY", "GAP", "DROP", "QUOTE", "OTHER" };
		assert_string_equal(tn, names[e->type]);
		if (e->locate >= 1 && e->locate <= NSYM)
			assert_string_equal(json_string_value(json_object_get(j, "symbol")), syms[e->locate - 1]);
		json_decref(j);
		i++;
	}
	assert_int_equal(pclose(f), 0);
	assert_int_equal(i, n);

	/* --symbol and --from/--to select exactly the matching events */
	uint64_t mid = ev[n / 2].ts_exch;
	uint32_t expect = 0;
	for (uint32_t k = 0; k < n; k++)
		if (ev[k].locate == 2 && ev[k].ts_exch >= mid)
			expect++;
	snprintf(args, sizeof(args), "cat %s --symbol MSFT --from %llu --format csv", dir, (unsigned long long)mid);
	f = run_wbcap(args);
	uint32_t got = 0;
	while (fgets(line, sizeof(line), f))
		got += strstr(line, ",MSFT,") != NULL;
	assert_int_equal(pclose(f), 0);
	assert_int_equal(got, expect);

	snprintf(args, sizeof(args), "verify %s", dir);
	f = run_wbcap(args);
	while (fgets(line, sizeof(line), f))
		;
	assert_int_equal(pclose(f), 0);
	free(ev);
	free(ring.slots);
	rm_rf(dir);
}

/* Naive book: order map replayed from the generated events up to index upto. */
static void naive_book(const struct wb_event *ev, uint32_t upto, uint16_t locate, char *out, size_t outn)
{
	struct { int64_t price; uint64_t shares; uint32_t orders; char side; } lv[256];
	int nlv = 0;
	struct { uint64_t ref; int64_t price; uint32_t shares; char side; } o[4096];
	int no = 0;
	for (uint32_t i = 0; i < upto; i++) {
		const struct wb_event *e = &ev[i];
		if (e->locate != locate)
			continue;
		if (e->type == WB_EV_ORDER_ADD || e->type == WB_EV_ORDER_REPLACE) {
			o[no].ref = e->ref;
			o[no].price = e->price;
			o[no].shares = e->shares;
			o[no].side = (char)e->side;
			no++;
			continue;
		}
		for (int k = 0; k < no; k++) {
			if (o[k].ref != e->ref)
				continue;
			if (e->type == WB_EV_ORDER_EXEC || e->type == WB_EV_ORDER_CANCEL)
				o[k].shares -= e->shares;
			if (e->type == WB_EV_ORDER_DELETE)
				o[k].shares = 0;
		}
	}
	for (int k = 0; k < no; k++) {
		if (!o[k].shares)
			continue;
		int j;
		for (j = 0; j < nlv && !(lv[j].price == o[k].price && lv[j].side == o[k].side); j++)
			;
		if (j == nlv) {
			lv[nlv].price = o[k].price;
			lv[nlv].side = o[k].side;
			lv[nlv].shares = 0;
			lv[nlv].orders = 0;
			nlv++;
		}
		lv[j].shares += o[k].shares;
		lv[j].orders++;
	}
	/* best first: bids descending, asks ascending (insertion sort per side) */
	for (int a = 1; a < nlv; a++) {
		__typeof__(lv[0]) t = lv[a];
		int b = a - 1;
		while (b >= 0 && (lv[b].side != t.side ? lv[b].side > t.side
				  : t.side == 'B' ? lv[b].price < t.price : lv[b].price > t.price)) {
			lv[b + 1] = lv[b];
			b--;
		}
		lv[b + 1] = t;
	}
	size_t w = (size_t)snprintf(out, outn, "{\"symbol\":\"%s\",", syms[locate - 1]);
	for (int side = 0; side < 2; side++) {
		char want = side ? 'S' : 'B';
		w += (size_t)snprintf(out + w, outn - w, "\"%s\":[", side ? "asks" : "bids");
		int cnt = 0;
		for (int j = 0; j < nlv; j++) {
			if (lv[j].side != want || cnt == 5)
				continue;
			w += (size_t)snprintf(out + w, outn - w, "%s{\"price\":\"%lld.%04lld\",\"shares\":%llu,\"orders\":%u}",
					      cnt ? "," : "", (long long)(lv[j].price / 10000),
					      (long long)(lv[j].price % 10000), (unsigned long long)lv[j].shares,
					      lv[j].orders);
			cnt++;
		}
		w += (size_t)snprintf(out + w, outn - w, "]%s", side ? "}\n" : ",");
	}
}

static void test_book_end_and_at(void **state)
{
	(void)state;
	char dir[64];
	make_tmpdir(dir, sizeof(dir));
	enum { CAP = 6000 };
	struct wb_event *ev = calloc(CAP, sizeof(*ev));
	uint32_t n = gen_session(ev, CAP);
	/* the trailing one-of-each events touch locate 3 with odd prices: keep books to orders */
	while (n && ev[n - 1].type > WB_EV_ORDER_REPLACE)
		n--;
	struct wb_evring ring;
	assert_int_equal(wb_evring_init(&ring, 1024, NULL), 0);
	struct wb_capture_conf cap = { .zstd_level = 3, .block_bytes = 8192 };
	struct wb_persister *p = start_persister(dir, &cap, &ring, NULL);
	push_all(&ring, ev, n);
	assert_int_equal(wb_persister_stop(p), 0);
	wb_persister_destroy(p);

	char args[256], want[8192], got[8192];
	for (uint16_t loc = 1; loc <= NSYM; loc++) {
		for (int at = 0; at < 2; at++) {
			uint32_t upto = at ? n / 2 : n;
			naive_book(ev, upto, loc, want, sizeof(want));
			if (at)
				snprintf(args, sizeof(args), "book %s %s --depth 5 --json --at %llu", dir, syms[loc - 1],
					 (unsigned long long)ev[upto - 1].ts_exch);
			else
				snprintf(args, sizeof(args), "book %s %s --depth 5 --json", dir, syms[loc - 1]);
			FILE *f = run_wbcap(args);
			assert_non_null(fgets(got, sizeof(got), f));
			assert_int_equal(pclose(f), 0);
			assert_string_equal(got, want);
		}
	}
	free(ev);
	free(ring.slots);
	rm_rf(dir);
}

static void test_corrupted_block(void **state)
{
	(void)state;
	char dir[64];
	make_tmpdir(dir, sizeof(dir));
	enum { N = 20000 };
	struct wb_event *ev = calloc(N, sizeof(*ev));
	for (uint32_t i = 0; i < N; i++) {
		ev[i].seq = i + 1;
		ev[i].type = WB_EV_TRADE;
		ev[i].ts_recv = 1700000000000000000ull + i;
		ev[i].aux = i * 2654435761u;
	}
	struct wb_evring ring;
	assert_int_equal(wb_evring_init(&ring, 1024, NULL), 0);
	struct wb_capture_conf cap = { .zstd_level = 1, .block_bytes = 64 * 1000 };
	struct wb_persister *p = start_persister(dir, &cap, &ring, NULL);
	push_all(&ring, ev, N);
	assert_int_equal(wb_persister_stop(p), 0);
	wb_persister_destroy(p);

	/* flip a payload byte of the second block */
	char **names;
	size_t nn;
	assert_int_equal(wb_cap_list_dir(dir, &names, &nn), 0);
	assert_int_equal(nn, 1);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, names[0]);
	struct wb_capfile *f;
	const char *why;
	assert_int_equal(wb_capfile_open(path, false, &f, &why), 0);
	struct wb_cap_block_header h;
	assert_int_equal(wb_capfile_read_header(f, WB_CAP_FILE_HEADER_BYTES, &h, &why), 0);
	uint64_t second = WB_CAP_FILE_HEADER_BYTES + h.padded_bytes;
	wb_capfile_close(f);
	int fd = open(path, O_RDWR);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, (off_t)second + 200), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)second + 200), 1);
	close(fd);

	char args[512], line[1024];
	snprintf(args, sizeof(args), "verify %s 2>&1", dir);
	FILE *o = run_wbcap(args);
	bool named = false;
	char expect[64];
	snprintf(expect, sizeof(expect), "block 1 at offset %llu", (unsigned long long)second);
	while (fgets(line, sizeof(line), o))
		named |= strstr(line, "BAD") && strstr(line, expect) && strstr(line, "checksum");
	assert_int_equal(WEXITSTATUS(pclose(o)), 1);
	assert_true(named);

	/* cat skips it with a warning and still prints every other block */
	snprintf(args, sizeof(args), "cat %s --format csv 2>%s/err.txt", dir, dir);
	o = run_wbcap(args);
	uint32_t rows = 0;
	while (fgets(line, sizeof(line), o))
		rows++;
	assert_int_equal(WEXITSTATUS(pclose(o)), 1);
	assert_int_equal(rows, 1 + N - 1000); /* header + all but the 1000 events of block 1 */
	snprintf(path, sizeof(path), "%s/err.txt", dir);
	FILE *e = fopen(path, "r");
	assert_non_null(e);
	bool warned = false;
	while (fgets(line, sizeof(line), e))
		warned |= strstr(line, "warning") && strstr(line, "block 1") && strstr(line, "skipped");
	fclose(e);
	assert_true(warned);
	wb_cap_names_free(names, nn);
	free(ev);
	free(ring.slots);
	rm_rf(dir);
}

/* N incompressible trades with sequence 1..N: files fill at a known pace. */
static struct wb_event *make_trades(uint32_t n, uint64_t rng)
{
	struct wb_event *ev = calloc(n, sizeof(*ev));
	assert_non_null(ev);
	for (uint32_t i = 0; i < n; i++) {
		ev[i].seq = i + 1;
		ev[i].type = WB_EV_TRADE;
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		ev[i].aux = rng;
		ev[i].ts_recv = 1700000000000000000ull + i;
	}
	return ev;
}

/* Retention by age: closed files older than retention_hours go when a new file opens;
 * younger ones, a file without its END record (a writer may still have it) and files
 * that are not captures stay. */
static void test_retention_by_age(void **state)
{
	(void)state;
	char dir[64], path[PATH_MAX];
	make_tmpdir(dir, sizeof(dir));
	enum { N = 30000 };
	struct wb_event *ev = make_trades(N, 11);
	struct wb_evring ring;
	assert_int_equal(wb_evring_init(&ring, 1024, NULL), 0);
	/* a first session without retention: several closed files */
	struct wb_capture_conf cap = { .zstd_level = 1, .block_bytes = 16 << 10, .rotate_bytes = 128 << 10 };
	struct wb_persister *p = start_persister(dir, &cap, &ring, NULL);
	push_all(&ring, ev, N);
	assert_int_equal(wb_persister_stop(p), 0);
	wb_persister_destroy(p);
	char **old;
	size_t nold;
	assert_int_equal(wb_cap_list_dir(dir, &old, &nold), 0);
	assert_true(nold >= 3);
	/* all of them three hours old; one more old file cut before its END; a stranger */
	struct timeval tv[2] = { { time(NULL) - 3 * 3600, 0 }, { time(NULL) - 3 * 3600, 0 } };
	for (size_t i = 0; i < nold; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, old[i]);
		assert_int_equal(utimes(path, tv), 0);
	}
	char torn[PATH_MAX], cmd[2 * PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/%s", dir, old[0]);
	snprintf(torn, sizeof(torn), "%s/19990101T000000-000000.wbcap", dir);
	snprintf(cmd, sizeof(cmd), "head -c 8192 %s > %s", path, torn);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(utimes(torn, tv), 0);
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("operator notes\n", f);
	fclose(f);
	assert_int_equal(utimes(path, tv), 0);

	/* the next session keeps one hour */
	cap.retention_hours = 1;
	cap.rotate_bytes = 1 << 20;
	p = start_persister(dir, &cap, &ring, NULL);
	push_all(&ring, ev, 1000);
	assert_int_equal(wb_persister_stop(p), 0);
	struct wb_persist_stats st;
	wb_persister_stats(p, &st);
	wb_persister_destroy(p);
	assert_int_equal(st.files_removed_retention, nold);
	for (size_t i = 0; i < nold; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, old[i]);
		if (access(path, F_OK) == 0)
			fail_msg("%s is 3 hours old and closed: retention should have removed it", old[i]);
	}
	assert_int_equal(access(torn, F_OK), 0);
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	assert_int_equal(access(path, F_OK), 0);
	char **now;
	size_t nnow;
	assert_int_equal(wb_cap_list_dir(dir, &now, &nnow), 0);
	assert_int_equal(nnow, 1 + st.files_written); /* the torn file and this session's */
	wb_cap_names_free(now, nnow);
	wb_cap_names_free(old, nold);
	free(ev);
	free(ring.slots);
	rm_rf(dir);
}

static void test_retention_oldest_first(void **state)
{
	(void)state;
	char dir[64];
	make_tmpdir(dir, sizeof(dir));
	enum { N = 60000 };
	struct wb_event *ev = make_trades(N, 7);
	struct wb_evring ring;
	assert_int_equal(wb_evring_init(&ring, 1024, NULL), 0);
	struct wb_capture_conf cap = { .zstd_level = 1, .block_bytes = 16 << 10, .rotate_bytes = 128 << 10,
				       .retention_bytes = 512 << 10 };
	struct wb_persister *p = start_persister(dir, &cap, &ring, NULL);
	push_all(&ring, ev, N);
	assert_int_equal(wb_persister_stop(p), 0);
	struct wb_persist_stats st;
	wb_persister_stats(p, &st);
	wb_persister_destroy(p);
	assert_true(st.files_written > 6);
	assert_true(st.files_removed_retention > 0);
	char **names;
	size_t nn;
	assert_int_equal(wb_cap_list_dir(dir, &names, &nn), 0);
	assert_int_equal(nn + st.files_removed_retention, st.files_written);
	/* the survivors are the newest: their file numbers are the last ones */
	for (size_t i = 0; i < nn; i++) {
		char want[16];
		snprintf(want, sizeof(want), "-%06llu.wbcap", (unsigned long long)(st.files_removed_retention + i));
		assert_non_null(strstr(names[i], want));
	}
	/* and the capture still starts where the oldest survivor starts, with no damage */
	char args[256], line[512];
	snprintf(args, sizeof(args), "verify %s", dir);
	FILE *o = run_wbcap(args);
	while (fgets(line, sizeof(line), o))
		;
	assert_int_equal(pclose(o), 0);
	wb_cap_names_free(names, nn);
	free(ev);
	free(ring.slots);
	rm_rf(dir);
}

static void test_ring_drop_marker(void **state)
{
	(void)state;
	char dir[64];
	make_tmpdir(dir, sizeof(dir));
	struct wb_evring ring;
	assert_int_equal(wb_evring_init(&ring, 64, NULL), 0);
	struct wb_event ev[200];
	memset(ev, 0, sizeof(ev));
	for (int i = 0; i < 200; i++) {
		ev[i].seq = (uint64_t)i + 1;
		ev[i].type = WB_EV_TRADE;
	}
	/* fill the ring before the persister runs: 64 fit, the next 36 are dropped */
	for (int i = 0; i < 100; i++)
		wb_evring_push(&ring, &ev[i], 1);
	assert_int_equal(ring.drop_events, 36);
	struct wb_capture_conf cap = { .zstd_level = 1 };
	struct wb_persister *p = start_persister(dir, &cap, &ring, NULL);
	push_all(&ring, &ev[100], 100);
	assert_int_equal(wb_persister_stop(p), 0);
	struct wb_persist_ring_stats rs;
	assert_int_equal(wb_persister_ring_stats(p, 0, &rs), 0);
	assert_int_equal(rs.drop_events, 36);
	assert_int_equal(rs.high_water, 64);
	assert_int_equal(rs.consumed, 64 + 1 + 100);
	assert_int_equal(wb_persister_ring_stats(p, 1, &rs), -ENOENT);
	wb_persister_destroy(p);
	char args[256], line[512];
	snprintf(args, sizeof(args), "verify %s", dir);
	FILE *o = run_wbcap(args);
	bool marker = false;
	while (fgets(line, sizeof(line), o))
		marker |= strstr(line, "MISSING") && strstr(line, "36 events lost, seq 65-100");
	assert_int_equal(WEXITSTATUS(pclose(o)), 1);
	assert_true(marker);
	free(ring.slots);
	rm_rf(dir);
}

static void test_rawring(void **state)
{
	(void)state;
	struct wb_rawring r;
	assert_int_equal(wb_rawring_init(&r, 4096), 0);
	uint8_t pay[3000]; /* the last push offers all of it, to be refused */
	for (int i = 0; i < 1500; i++)
		pay[i] = (uint8_t)i;
	uint32_t pushed = 0, popped = 0, drops = 0;
	/* odd sizes make records straddle the end and exercise the pad word */
	for (int round = 0; round < 200; round++) {
		uint32_t len = (uint32_t)(1 + (round * 37) % 700);
		if (wb_rawring_push(&r, 1, round & 1, (uint64_t)round, pay, len))
			pushed++;
		else
			drops++;
		if (round % 10 == 0) {
			const struct wb_rawrec *rec;
			while ((rec = wb_rawring_peek(&r))) {
				assert_int_equal(rec->ts_recv % 2, rec->line);
				assert_memory_equal(rec + 1, pay, rec->len);
				assert_int_equal(rec->len, 1 + (rec->ts_recv * 37) % 700);
				wb_rawring_release(&r, rec);
				popped++;
			}
		}
	}
	const struct wb_rawrec *rec;
	while ((rec = wb_rawring_peek(&r))) {
		wb_rawring_release(&r, rec);
		popped++;
	}
	assert_int_equal(pushed, popped);
	assert_int_equal(drops, r.drop_packets);
	assert_true(drops > 0);
	assert_false(wb_rawring_push(&r, 0, 0, 0, pay, 3000)); /* larger than half the ring */
	assert_int_equal(r.drop_toolarge, 1);
	wb_rawring_free(&r);
}

/* Packets the raw ring dropped are not silent: the next stored packet carries the count,
 * and wbcap verify names it and says NOT WHOLE. */
static void test_raw_drops_verified(void **state)
{
	(void)state;
	char dir[64];
	make_tmpdir(dir, sizeof(dir));
	struct wb_rawring raw;
	assert_int_equal(wb_rawring_init(&raw, 4096), 0);
	uint8_t pay[200];
	memset(pay, 0xab, sizeof(pay));
	/* no consumer yet: the ring fills, the rest are dropped */
	uint32_t stored = 0;
	for (int i = 0; i < 100; i++)
		stored += wb_rawring_push(&raw, 0, 0, 1700000000000000000ull + (uint64_t)i, pay, sizeof(pay));
	uint64_t dropped = raw.drop_packets;
	assert_true(stored > 0 && dropped > 0);
	assert_int_equal(stored + dropped, 100);
	struct wb_capture_conf cap = { .zstd_level = 1 };
	struct wb_persister *p = start_persister(dir, &cap, NULL, &raw);
	struct wb_persist_stats st;
	for (int i = 0; i < 2000; i++) {
		wb_persister_stats(p, &st);
		if (st.raw_packets_in == stored)
			break;
		usleep(1000);
	}
	/* room again: this packet carries the count of the ones before it */
	while (!wb_rawring_push(&raw, 0, 0, 1700000000000000999ull, pay, sizeof(pay)))
		usleep(50);
	assert_int_equal(wb_persister_stop(p), 0);
	wb_persister_destroy(p);
	char args[256], line[1024], want[160];
	snprintf(args, sizeof(args), "verify %s", dir);
	FILE *o = run_wbcap(args);
	bool named = false, summary = false;
	snprintf(want, sizeof(want), "raw ring dropped %llu packets before the one received at 1700000000000000999 ns",
		 (unsigned long long)dropped);
	char sum[96];
	snprintf(sum, sizeof(sum), "; %u raw packets, %llu dropped by the raw ring", stored + 1,
		 (unsigned long long)dropped);
	while (fgets(line, sizeof(line), o)) {
		named |= strstr(line, "MISSING") && strstr(line, want);
		summary |= !strncmp(line, "NOT WHOLE", 9) && strstr(line, sum);
	}
	assert_int_equal(WEXITSTATUS(pclose(o)), 1);
	assert_true(named);
	assert_true(summary);
	wb_rawring_free(&raw);
	rm_rf(dir);
}

static void test_raw_pcapng_tshark(void **state)
{
	(void)state;
	if (access("/usr/bin/tshark", X_OK)) {
		print_message("SKIP: tshark not installed\n");
		skip();
	}
	char dir[64];
	make_tmpdir(dir, sizeof(dir));
	struct wb_rawring raw;
	assert_int_equal(wb_rawring_init(&raw, 1 << 16), 0);
	struct wb_capture_conf cap = { .zstd_level = 1 };
	struct wb_persister *p = start_persister(dir, &cap, NULL, &raw);
	enum { NP = 50 };
	uint8_t pay[NP][64];
	for (int i = 0; i < NP; i++) {
		struct wb_rawrec h = { .len = (uint32_t)(8 + i), .feed = 0, .line = (uint8_t)(i & 1),
				       .dst_addr = 0xE9360C6F /* 233.54.12.111 */, .dst_port = 26477,
				       .ts_recv = 1700000000123456789ull + (uint64_t)i * 1000001 };
		for (int k = 0; k < 64; k++)
			pay[i][k] = (uint8_t)(i * 3 + k);
		while (!wb_rawring_push_rec(&raw, &h, pay[i]))
			usleep(50);
	}
	assert_int_equal(wb_persister_stop(p), 0);
	struct wb_persist_stats st;
	wb_persister_stats(p, &st);
	assert_int_equal(st.raw_packets_in, NP);
	wb_persister_destroy(p);
	char args[512], line[1024];
	snprintf(args, sizeof(args), "pcap %s -o %s/out.pcapng", dir, dir);
	FILE *o = run_wbcap(args);
	assert_int_equal(pclose(o), 0);
	char cmd[512];
	snprintf(cmd, sizeof(cmd),
		 "tshark -r %s/out.pcapng -T fields -e frame.time_epoch -e udp.dstport -e ip.dst -e data 2>/dev/null", dir);
	o = popen(cmd, "r");
	int i = 0;
	while (fgets(line, sizeof(line), o)) {
		assert_true(i < NP);
		char want[512];
		uint64_t ts = 1700000000123456789ull + (uint64_t)i * 1000001;
		int w = snprintf(want, sizeof(want), "%llu.%09llu\t26477\t233.54.12.111\t",
				 (unsigned long long)(ts / 1000000000ull), (unsigned long long)(ts % 1000000000ull));
		for (int k = 0; k < 8 + i; k++)
			w += snprintf(want + w, sizeof(want) - (size_t)w, "%02x", pay[i][k]);
		snprintf(want + w, sizeof(want) - (size_t)w, "\n");
		assert_string_equal(line, want);
		i++;
	}
	assert_int_equal(pclose(o), 0);
	assert_int_equal(i, NP);
	wb_rawring_free(&raw);
	rm_rf(dir);
}

/* A torn tail (power loss mid-write: a block cut short, then garbage) is cut by the next
 * create, the file is closed with an index, and every whole block before it survives. */
static void test_torn_tail_recovery(void **state)
{
	(void)state;
	char dir[64];
	make_tmpdir(dir, sizeof(dir));
	enum { N = 10000 };
	struct wb_event *ev = calloc(N, sizeof(*ev));
	for (uint32_t i = 0; i < N; i++) {
		ev[i].seq = i + 1;
		ev[i].type = WB_EV_TRADE;
		ev[i].aux = i * 2654435761u;
	}
	struct wb_evring ring;
	assert_int_equal(wb_evring_init(&ring, 1024, NULL), 0);
	struct wb_capture_conf cap = { .zstd_level = 1, .block_bytes = 64 * 1000 };
	struct wb_persister *p = start_persister(dir, &cap, &ring, NULL);
	push_all(&ring, ev, N);
	assert_int_equal(wb_persister_stop(p), 0);
	wb_persister_destroy(p);

	char **names;
	size_t nn;
	assert_int_equal(wb_cap_list_dir(dir, &names, &nn), 0);
	assert_int_equal(nn, 1);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, names[0]);
	/* find block 5 (events 5001..6000), cut the file 100 bytes into its payload */
	struct wb_capfile *f;
	const char *why;
	assert_int_equal(wb_capfile_open(path, false, &f, &why), 0);
	assert_true(f->closed);
	uint64_t off = WB_CAP_FILE_HEADER_BYTES;
	for (int b = 0; b < 5; b++) {
		struct wb_cap_block_header h;
		assert_int_equal(wb_capfile_read_header(f, off, &h, &why), 0);
		off += h.padded_bytes;
	}
	wb_capfile_close(f);
	assert_int_equal(truncate(path, (off_t)off + 228), 0);
	int fd = open(path, O_WRONLY | O_APPEND);
	char junk[5000];
	memset(junk, 0xA5, sizeof(junk));
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);

	/* recovery runs in create: a new persister in the same directory */
	snprintf(cap.directory, sizeof(cap.directory), "%s", dir);
	const char *fnames[] = { "itch" }, *protos[] = { "itch50-moldudp64" };
	struct wb_persister_opts o = { .cap = &cap, .name = "t", .core = UINT_MAX, .nfeeds = 1, .feed_names = fnames,
				       .feed_protocols = protos, .price_decimals = 4 };
	assert_int_equal(wb_persister_create(&o, &p), 0);
	struct wb_persist_stats st;
	wb_persister_stats(p, &st);
	assert_int_equal(st.files_recovered, 1);
	assert_int_equal(st.recovered_bytes_cut, 228 + sizeof(junk));
	wb_persister_destroy(p);

	char args[256], line[512];
	snprintf(args, sizeof(args), "verify %s", dir);
	FILE *out = run_wbcap(args);
	while (fgets(line, sizeof(line), out))
		;
	assert_int_equal(pclose(out), 0);
	snprintf(args, sizeof(args), "cat %s --format csv", dir);
	out = run_wbcap(args);
	uint32_t rows = 0;
	while (fgets(line, sizeof(line), out))
		rows++;
	assert_int_equal(pclose(out), 0);
	assert_int_equal(rows, 1 + 5000);
	wb_cap_names_free(names, nn);
	free(ev);
	free(ring.slots);
	rm_rf(dir);
}

static atomic_uint durable_reports;
static void count_durable(void *arg, const struct wb_persist_durable *d)
{
	(void)arg;
	(void)d;
	atomic_fetch_add(&durable_reports, 1);
}

/* A trickle of events: the flush timer seals blocks, durability "interval" makes them
 * durable within its period, rotation by time starts new files, and stats say so while
 * the persister runs. Then durability "block" reports every block once. */
static void test_interval_durability_and_time_rotation(void **state)
{
	(void)state;
	char dir[64];
	make_tmpdir(dir, sizeof(dir));
	struct wb_evring ring;
	assert_int_equal(wb_evring_init(&ring, 1024, NULL), 0);
	struct wb_capture_conf cap = { .zstd_level = -5, .durability = WB_DURABLE_INTERVAL, .durability_ms = 20,
				       .rotate_seconds = 1 };
	struct wb_persister *p = start_persister(dir, &cap, &ring, NULL);
	struct wb_event e = { .type = WB_EV_TRADE };
	struct wb_persist_stats st;
	for (int i = 0; i < 130; i++) {
		e.seq = (uint64_t)i + 1;
		assert_int_equal(wb_evring_push(&ring, &e, 1), 1);
		usleep(10000);
	}
	wb_persister_stats(p, &st);
	assert_true(st.blocks_written > 10);
	assert_true(st.blocks_durable > 0);
	assert_true(st.files_written >= 2);
	/* staged and unsynced events are at most a flush plus a sync period old (with slack) */
	assert_true(st.durable_lag_ns < 500000000ull);
	assert_int_equal(wb_persister_stop(p), 0);
	wb_persister_stats(p, &st);
	assert_int_equal(st.events_in, 130);
	assert_int_equal(st.blocks_durable, st.blocks_written);
	assert_int_equal(st.durable_lag_ns, 0);
	wb_persister_destroy(p);

	atomic_store(&durable_reports, 0);
	struct wb_capture_conf cap2 = { .zstd_level = 1, .durability = WB_DURABLE_BLOCK, .block_bytes = 4096 };
	snprintf(cap2.directory, sizeof(cap2.directory), "%s", dir);
	const char *names[] = { "itch" }, *protos[] = { "itch50-moldudp64" };
	struct wb_persister_opts o = { .cap = &cap2, .name = "t2", .core = UINT_MAX, .nfeeds = 1, .feed_names = names,
				       .feed_protocols = protos, .price_decimals = 4, .on_durable = count_durable };
	assert_int_equal(wb_persister_create(&o, &p), 0);
	assert_int_equal(wb_persister_attach(p, &ring, "w0"), 0);
	assert_int_equal(wb_persister_start(p), 0);
	struct wb_event ev[640];
	memset(ev, 0, sizeof(ev));
	for (int i = 0; i < 640; i++) {
		ev[i].seq = 1000 + (uint64_t)i;
		ev[i].type = WB_EV_TRADE;
	}
	push_all(&ring, ev, 640);
	assert_int_equal(wb_persister_stop(p), 0);
	wb_persister_stats(p, &st);
	assert_int_equal(st.blocks_written, 10); /* 64 events per 4 KiB block */
	assert_int_equal(atomic_load(&durable_reports), 10);
	assert_int_equal(st.blocks_durable, 10);
	wb_persister_destroy(p);
	free(ring.slots);
	rm_rf(dir);
}

int main(void)
{
	const char *b = getenv("WB_BIN_DIR");
	snprintf(bindir, sizeof(bindir), "%s", b ? b : "build/bin");
	char probe[PATH_MAX + 16];
	snprintf(probe, sizeof(probe), "%s/wbcap", bindir);
	if (access(probe, X_OK)) {
		fprintf(stderr, "SKIP: %s not built\n", probe);
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rawring),
		cmocka_unit_test(test_raw_drops_verified),
		cmocka_unit_test(test_roundtrip_jsonl),
		cmocka_unit_test(test_book_end_and_at),
		cmocka_unit_test(test_corrupted_block),
		cmocka_unit_test(test_retention_oldest_first),
		cmocka_unit_test(test_retention_by_age),
		cmocka_unit_test(test_torn_tail_recovery),
		cmocka_unit_test(test_interval_durability_and_time_rotation),
		cmocka_unit_test(test_ring_drop_marker),
		cmocka_unit_test(test_raw_pcapng_tshark),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
