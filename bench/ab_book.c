/* bench_ab_book: A/B of builds of the book in one process, for machines too noisy for
 * back-to-back runs (docs/performance.md, Book: the host moves one pass by 10-15% from one
 * minute to the next, more than most changes are worth).
 *
 * Each LIB is book/book.c + book/event.c built as a shared object (scripts/ab-book.sh
 * builds them from git revisions or the working tree). The driver loads them all, then
 * runs whole-day burst passes (32 messages decoded, one wb_bookset_apply_itch_burst call,
 * publish: what a worker does) over one wbsim day, every LIB once per round, the order
 * reversed every other round so neither side always runs first. Prints each pass, then per
 * LIB the mean and best ns/msg and the median of its per-round ratios to the first LIB,
 * with quartiles: a paired comparison that cancels the slower swings of the machine. The
 * LIBs must agree on the final live orders (else exit 1): a faster wrong book is no win.
 *
 * usage: bench_ab_book [-r ROUNDS (default 12)] [-R RING_SLOTS (default 0)]
 *                      [-m MESSAGES (default 24000000)] [-s SYMBOLS (default 3000)] LIB.so...
 *   WB_BENCH_DAY_CACHE=FILE reuses (or writes) the generated day, as bench_book day does.
 *   The LIBs' book.h must match this build's (the options struct is passed across). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "book.h"
#include "day.h"
#include "itch.h"
#include "mold.h"

#define BURST 32
#define MAX_LIBS 8
#define MAX_ROUNDS 1000

struct lib {
	const char *path;
	int (*create)(const struct wb_book_opts *, struct wb_bookset **);
	void (*destroy)(struct wb_bookset *);
	int (*burst)(struct wb_bookset *, const struct wb_itch_msg *, const uint64_t *, uint32_t, uint64_t, uint8_t,
		     struct wb_event_batch *);
	void (*publish)(struct wb_bookset *);
	void (*stats)(const struct wb_bookset *, struct wb_bookset_stats *);
	double ns[MAX_ROUNDS];
	uint64_t live_orders;
};

static int lib_load(struct lib *l, const char *path)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		fprintf(stderr, "bench_ab_book: %s\n", dlerror());
		return -1;
	}
	l->path = path;
	l->create = (int (*)(const struct wb_book_opts *, struct wb_bookset **))dlsym(h, "wb_bookset_create");
	l->destroy = (void (*)(struct wb_bookset *))dlsym(h, "wb_bookset_destroy");
	l->burst = (int (*)(struct wb_bookset *, const struct wb_itch_msg *, const uint64_t *, uint32_t, uint64_t,
			    uint8_t, struct wb_event_batch *))dlsym(h, "wb_bookset_apply_itch_burst");
	l->publish = (void (*)(struct wb_bookset *))dlsym(h, "wb_bookset_publish");
	l->stats = (void (*)(const struct wb_bookset *, struct wb_bookset_stats *))dlsym(h, "wb_bookset_stats");
	if (!l->create || !l->destroy || !l->burst || !l->publish || !l->stats) {
		fprintf(stderr, "bench_ab_book: %s lacks the book's entry points\n", path);
		return -1;
	}
	return 0;
}

/* One pass on fresh books: ns per message over the whole day. */
static int pass(struct lib *l, const struct day *d, const struct wb_book_opts *bo, double *ns)
{
	static struct wb_itch_msg msgs[BURST];
	static uint64_t seqs[BURST];
	static struct wb_event ev[BURST * WB_BOOK_MAX_EVENTS_PER_MSG];
	struct wb_event_batch b = { .ev = ev, .cap = BURST * WB_BOOK_MAX_EVENTS_PER_MSG };
	struct wb_itch_file_iter it = { d->buf, d->buf + d->len };
	struct wb_bookset_stats st;
	struct wb_bookset *bs;
	uint64_t seq = 0;
	int rc = l->create(bo, &bs);

	if (rc)
		return rc;
	double t0 = now_s();
	for (;;) {
		uint32_t n = day_next_burst(&it, msgs, seqs, BURST, &seq);

		if (n == 0)
			break;
		b.n = 0;
		l->burst(bs, msgs, seqs, n, 0, 0, &b);
		l->publish(bs);
	}
	*ns = (now_s() - t0) * 1e9 / (double)d->msgs;
	l->stats(bs, &st);
	l->live_orders = st.live_orders;
	l->destroy(bs);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_ab_book [-r ROUNDS] [-R RING_SLOTS] [-m MESSAGES] [-s SYMBOLS] LIB.so...\n"
			"  A/B of book builds in one process: alternating whole-day burst passes, paired\n"
			"  ratios to the first LIB (median, quartiles). scripts/ab-book.sh builds the LIBs.\n");
}

int main(int argc, char **argv)
{
	unsigned rounds = 12, ring = 0, symbols = 3000;
	unsigned long long messages = 24000000;
	struct lib libs[MAX_LIBS];
	struct day d = { 0 };
	int o, nl;

	while ((o = getopt(argc, argv, "r:R:m:s:h")) != -1) {
		switch (o) {
		case 'r': rounds = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'R': ring = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'm': messages = strtoull(optarg, NULL, 10); break;
		case 's': symbols = (unsigned)strtoul(optarg, NULL, 10); break;
		default: usage(); return o == 'h' ? 0 : 2;
		}
	}
	nl = argc - optind;
	if (nl < 1 || nl > MAX_LIBS || rounds < 1 || rounds > MAX_ROUNDS) {
		usage();
		return 2;
	}
	for (int i = 0; i < nl; i++)
		if (lib_load(&libs[i], argv[optind + i]))
			return 1;
	const char *cache = getenv("WB_BENCH_DAY_CACHE");
	if (!cache || !day_load(&d, cache, messages, symbols, 1)) {
		int rc = day_generate(&d, messages, symbols, 1);
		if (rc) {
			fprintf(stderr, "bench_ab_book: wbsim: %s\n", strerror(-rc));
			return 1;
		}
		if (cache)
			day_save(&d, cache, messages, symbols, 1);
	}
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		fprintf(stderr, "bench_ab_book: mlockall failed (continuing with page faults possible)\n");
	struct wb_book_opts bo = {
		.max_orders = (uint32_t)(d.ss.peak_live_orders + d.ss.peak_live_orders / 4 + 1024),
		.max_levels = (uint32_t)(d.ss.peak_live_orders / 2 + 65536),
		.max_symbols = symbols + 1, .snapshot_depth = 10, .price_decimals = 4,
		.policy = WB_POLICY_FLAG, .numa_node = -1, .order_ring = ring,
	};
	printf("bench_ab_book: %llu messages, %u symbols, ring %u slots, %u rounds, %d builds\n",
	       (unsigned long long)d.msgs, symbols, ring, rounds, nl);
	/* the first walk over a freshly loaded stream is slow: once, untimed */
	{
		struct wb_itch_file_iter it = { d.buf, d.buf + d.len };
		const uint8_t *p;
		uint16_t len;
		volatile uint8_t sink = 0;
		while (wb_itch_file_next(&it, &p, &len) == 1)
			sink ^= p[0];
	}
	for (unsigned r = 0; r < rounds; r++) {
		printf("round %3u:", r);
		for (int k = 0; k < nl; k++) {
			int i = (r & 1) ? nl - 1 - k : k;
			if (pass(&libs[i], &d, &bo, &libs[i].ns[r])) {
				fprintf(stderr, "bench_ab_book: %s: wb_bookset_create failed\n", libs[i].path);
				return 1;
			}
			printf("  [%d] %6.1f", i, libs[i].ns[r]);
		}
		printf("\n");
		fflush(stdout);
	}
	int differ = 0;
	for (int i = 0; i < nl; i++) {
		double sum = 0, best = 1e300, ratio[MAX_ROUNDS];
		for (unsigned r = 0; r < rounds; r++) {
			sum += libs[i].ns[r];
			best = libs[i].ns[r] < best ? libs[i].ns[r] : best;
			ratio[r] = libs[i].ns[r] / libs[0].ns[r];
		}
		qsort(ratio, rounds, sizeof(double), cmp_double);
		printf("[%d] %-40s mean %6.1f  best %6.1f ns/msg   paired ratio to [0]: median %.3f (quartiles %.3f-%.3f)\n",
		       i, libs[i].path, sum / rounds, best, ratio[rounds / 2], ratio[rounds / 4], ratio[3 * rounds / 4]);
		differ |= libs[i].live_orders != libs[0].live_orders;
	}
	if (differ) {
		fprintf(stderr, "bench_ab_book: the builds end with different live orders: not the same book\n");
		return 1;
	}
	free(d.buf);
	return 0;
}
