/* Capture costs, each against a baseline measured in the same run:
 *   1. block encoding per zstd level (-5, 1, 3): the columnar delta layout vs plain zstd
 *      on the 64-byte rows, GB/s of event input per core, events/s, compression ratio;
 *   2. the persister end to end (ring -> blocks -> io_uring -> DIR), durability none;
 *   3. ring handoff per event in bulk (push 32 at a time, a consumer draining) vs a plain
 *      copy of the same events.
 *
 *   bench_persist [--events N] [--dir DIR] [--block-bytes B]
 *
 * Input is ITCH-like generated flow (adds near the touch, cancels, executions, replaces,
 * 2,000 symbols with a skewed mix, nanosecond timestamps, increasing order references). */
#define _GNU_SOURCE
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "block.h"
#include "capture.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void print_dist(const char *what, uint64_t *v, size_t n, const char *unit, double div)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	printf("  %-34s p50 %9.1f  p99 %9.1f  p99.9 %9.1f  max %9.1f %s\n", what, (double)v[n / 2] / div,
	       (double)v[(n * 99) / 100] / div, (double)v[(n * 999) / 1000] / div, (double)v[n - 1] / div, unit);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void gen_itch_like(struct wb_event *ev, size_t n)
{
	uint64_t ts = 34200000000000ull, seq = 1, ref = 1000000;
	for (size_t i = 0; i < n; i++) {
		struct wb_event *e = &ev[i];
		memset(e, 0, sizeof(*e));
		uint64_t r = rnd();
		ts += 50 + r % 3000;
		e->ts_exch = ts;
		e->ts_recv = 1700000000000000000ull + ts + 20000 + (r >> 40) % 500;
		e->seq = seq++;
		uint32_t sym = (uint32_t)((r >> 8) % 100 < 70 ? (r >> 16) % 50 : (r >> 16) % 2000);
		e->locate = (uint16_t)(sym + 1);
		e->side = (r >> 24) & 1 ? 'B' : 'S';
		int64_t mid = 100000 + (int64_t)sym * 1300;
		e->price = mid + (e->side == 'B' ? -1 : 1) * (int64_t)((r >> 28) % 30) * 100;
		uint32_t op = (uint32_t)((r >> 36) % 100);
		if (op < 45) {
			e->type = WB_EV_ORDER_ADD;
			e->ref = ref++;
			e->shares = 100 * (uint32_t)(1 + (r >> 44) % 5);
		} else if (op < 85) {
			e->type = WB_EV_ORDER_DELETE;
			e->ref = ref - 1 - (r >> 44) % 5000;
			e->shares = 100;
		} else if (op < 93) {
			e->type = WB_EV_ORDER_CANCEL;
			e->ref = ref - 1 - (r >> 44) % 5000;
			e->shares = 100;
		} else {
			e->type = WB_EV_ORDER_EXEC;
			e->ref = ref - 1 - (r >> 44) % 500;
			e->shares = 100;
			e->aux = 5000000 + seq / 10;
		}
		e->level_shares = 100 * (uint32_t)((r >> 50) % 30);
		e->level_orders = (uint16_t)((r >> 56) % 8);
		e->flags = WB_EVF_BATCH_END;
	}
}

static void bench_codec(const struct wb_event *ev, size_t n, uint32_t block_bytes)
{
	uint32_t per = block_bytes / 64;
	size_t nblocks = n / per;
	uint8_t *cols = malloc(block_bytes);
	size_t cap = wb_block_dst_bound(block_bytes);
	uint8_t *dst = aligned_alloc(4096, cap);
	uint64_t *lat = malloc(nblocks * sizeof(*lat));
	ZSTD_CCtx *c = ZSTD_createCCtx();
	static const int levels[] = { -5, 1, 3 };
	printf("1. block encoding, %u-byte blocks (%u events), %zu blocks, one core\n", block_bytes, per, nblocks);
	for (size_t li = 0; li < 3; li++) {
		int lvl = levels[li];
		double gbs[2], ratio[2];
		for (int columnar = 0; columnar < 2; columnar++) {
			uint64_t in = 0, out = 0, t0 = now_ns();
			for (size_t b = 0; b < nblocks; b++) {
				uint64_t s = now_ns();
				const struct wb_event *be = ev + b * per;
				struct wb_cap_block_header h = { .kind = WB_BLK_EVENTS };
				size_t padded;
				if (columnar) {
					wb_block_describe_events(&h, be, per);
					wb_block_encode_events(be, per, cols);
					wb_block_seal(c, lvl, &h, cols, block_bytes, dst, cap, &padded);
					out += h.stored_bytes;
				} else {
					size_t z = ZSTD_compressCCtx(c, dst, cap, be, block_bytes, lvl);
					out += z;
				}
				in += block_bytes;
				lat[b] = now_ns() - s;
			}
			double secs = (double)(now_ns() - t0) / 1e9;
			gbs[columnar] = (double)in / secs / 1e9;
			ratio[columnar] = (double)in / (double)out;
			char what[64];
			snprintf(what, sizeof(what), "level %d %s: us/block", lvl, columnar ? "columnar" : "plain rows");
			print_dist(what, lat, nblocks, "us", 1000.0);
			printf("     %-32s %.3f GB/s  %.1f Mevents/s  ratio %.2f\n", columnar ? "columnar+delta+zstd" : "plain zstd (baseline)",
			       gbs[columnar], gbs[columnar] * 1e9 / 64 / 1e6, ratio[columnar]);
		}
		printf("     level %d: columnar/plain speed %.2fx, ratio %.2fx\n", lvl, gbs[1] / gbs[0], ratio[1] / ratio[0]);
	}
	ZSTD_freeCCtx(c);
	free(cols);
	free(dst);
	free(lat);
}

static void bench_persister(const struct wb_event *ev, size_t n, const char *dir, uint32_t block_bytes)
{
	static const int levels[] = { -5, 1, 3 };
	printf("2. persister end to end into %s (durability none, queue depth 8); producer on the other core\n", dir);
	for (size_t li = 0; li < 3; li++) {
		struct wb_capture_conf cap = { .zstd_level = levels[li], .block_bytes = block_bytes, .rotate_bytes = 256ull << 20,
					       .durability = WB_DURABLE_NONE, .queue_depth = 8, .retention_bytes = 1ull << 30 };
		snprintf(cap.directory, sizeof(cap.directory), "%s", dir);
		struct wb_persister_opts o = { .cap = &cap, .name = "bench", .core = 1, .price_decimals = 4 };
		struct wb_persister *p;
		struct wb_evring ring;
		if (wb_persister_create(&o, &p) || wb_evring_init(&ring, 1 << 16, NULL) || wb_persister_attach(p, &ring, "r") ||
		    wb_persister_start(p)) {
			fprintf(stderr, "bench_persist: persister setup failed\n");
			return;
		}
		uint64_t t0 = now_ns();
		for (size_t i = 0; i < n;) {
			uint32_t k = n - i < 32 ? (uint32_t)(n - i) : 32;
			if (wb_evring_count(&ring) + k + 1 > ring.size)
				continue;
			wb_evring_push(&ring, ev + i, k);
			i += k;
		}
		wb_persister_stop(p);
		double secs = (double)(now_ns() - t0) / 1e9;
		struct wb_persist_stats st;
		wb_persister_stats(p, &st);
		printf("   level %2d: %.3f GB/s of events in, %.1f Mevents/s, ratio %.2f, write p50 %.0f us p99 %.0f us max %.0f us\n",
		       levels[li], (double)st.bytes_in / secs / 1e9, (double)st.events_in / secs / 1e6, st.compression_ratio,
		       st.write_latency_ns_p50 / 1e3, st.write_latency_ns_p99 / 1e3, st.write_latency_ns_max / 1e3);
		wb_persister_destroy(p);
		free(ring.slots);
	}
}

struct drain {
	struct wb_evring *r;
	atomic_bool stop;
	uint64_t got;
};

static void *drainer(void *arg)
{
	struct drain *d = arg;
	for (;;) {
		const struct wb_event *run;
		uint32_t n = wb_evring_peek(d->r, &run, 4096);
		if (n) {
			d->got += n;
			wb_evring_release(d->r, n);
		} else if (atomic_load(&d->stop) && !wb_evring_count(d->r)) {
			return NULL;
		}
	}
}

static void bench_handoff(const struct wb_event *ev, size_t n)
{
	enum { BATCH = 32, GROUP = 1024 };
	size_t groups = n / GROUP;
	uint64_t *push = malloc(groups * sizeof(*push)), *copy = malloc(groups * sizeof(*copy));
	struct wb_evring ring;
	wb_evring_init(&ring, 1 << 16, NULL);
	struct drain d = { .r = &ring };
	pthread_t t;
	pthread_create(&t, NULL, drainer, &d);
	uint64_t full_waits = 0;
	for (size_t g = 0; g < groups; g++) {
		/* time only pushes that fit: a full ring is the consumer's cost, not the handoff's */
		while (wb_evring_count(&ring) + GROUP + 1 > ring.size)
			full_waits++;
		uint64_t s = now_ns();
		for (size_t i = 0; i < GROUP; i += BATCH)
			wb_evring_push(&ring, ev + g * GROUP + i, BATCH);
		push[g] = now_ns() - s;
	}
	atomic_store(&d.stop, true);
	pthread_join(t, NULL);
	struct wb_event *sink = malloc(GROUP * sizeof(*sink));
	for (size_t g = 0; g < groups; g++) {
		uint64_t s = now_ns();
		for (size_t i = 0; i < GROUP; i += BATCH)
			memcpy(sink + i, ev + g * GROUP + i, BATCH * sizeof(*sink));
		__asm__ volatile("" ::"r"(sink) : "memory");
		copy[g] = now_ns() - s;
	}
	printf("3. handoff: push %d events at a time, consumer draining on the other core (%zu x %d events)\n", BATCH,
	       groups, GROUP);
	print_dist("ring push: ns/event", push, groups, "ns", GROUP);
	print_dist("plain copy (baseline): ns/event", copy, groups, "ns", GROUP);
	printf("     received %llu of %zu, ring drops %llu\n", (unsigned long long)d.got, groups * GROUP,
	       (unsigned long long)ring.drop_events);
	free(sink);
	free(push);
	free(copy);
	free(ring.slots);
}

int main(int argc, char **argv)
{
	size_t n = 4000000;
	const char *dir = "/tmp/wb-bench-persist";
	uint32_t block_bytes = 1 << 20;
	static const struct option opts[] = { { "events", required_argument, 0, 'n' }, { "dir", required_argument, 0, 'd' },
					      { "block-bytes", required_argument, 0, 'b' }, { 0, 0, 0, 0 } };
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'n')
			n = strtoull(optarg, NULL, 10);
		else if (c == 'd')
			dir = optarg;
		else if (c == 'b')
			block_bytes = (uint32_t)strtoul(optarg, NULL, 10);
		else
			return 2;
	}
	struct wb_event *ev = malloc(n * sizeof(*ev));
	gen_itch_like(ev, n);
	bench_codec(ev, n, block_bytes);
	bench_persister(ev, n, dir, block_bytes);
	bench_handoff(ev, n);
	free(ev);
	return 0;
}
