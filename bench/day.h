/* A wbsim day in Nasdaq file framing, in memory, for the book benchmarks (bench_book day,
 * bench_ab_book), and its cache file: generating 24M messages takes longer than replaying
 * them, and A/B runs want many short processes. Benchmarks only. */
#ifndef WB_BENCH_DAY_H
#define WB_BENCH_DAY_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "book.h"
#include "itch.h"
#include "mold.h"
#include "sim.h"

static inline double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct day {
	uint8_t *buf;
	size_t len;
	uint64_t msgs;
	struct wb_sim_stats ss;
};

static inline int day_generate(struct day *d, uint64_t messages, uint32_t symbols, uint64_t seed)
{
	struct wb_sim_opts o;
	struct wb_sim *sim;
	size_t cap = messages * 34 + 4096, len;
	int rc;

	wb_sim_opts_default(&o);
	o.messages = messages;
	o.symbols = symbols;
	o.seed = seed;
	rc = wb_sim_create(&o, &sim);
	if (rc)
		return rc;
	d->buf = malloc(cap);
	if (!d->buf) {
		rc = -ENOMEM;
		goto out_destroy;
	}
	while ((rc = wb_sim_next_encoded(sim, d->buf + d->len + 2, &len, NULL)) == 1) {
		d->buf[d->len] = (uint8_t)(len >> 8);
		d->buf[d->len + 1] = (uint8_t)len;
		d->len += 2 + len;
		d->msgs++;
		if (cap - d->len < 256) {
			rc = -ENOSPC;
			goto out_destroy;
		}
	}
	wb_sim_stats(sim, &d->ss);
out_destroy:
	wb_sim_destroy(sim);
	return rc < 0 ? rc : 0;
}

/* WB_BENCH_DAY_CACHE=FILE keeps a generated day between runs (generating 24M messages
 * takes longer than benchmarking them; A/B runs of two builds want many short processes).
 * The file holds the generator's arguments, its stats and the stream; any mismatch
 * regenerates. */
struct day_cache_hdr {
	char magic[8];
	uint64_t messages, symbols, seed, msgs, len;
	struct wb_sim_stats ss;
};

static inline int day_load(struct day *d, const char *path, uint64_t messages, uint32_t symbols, uint64_t seed)
{
	struct day_cache_hdr h;
	FILE *f = fopen(path, "rb");
	int ok = 0;

	if (!f)
		return 0;
	if (fread(&h, sizeof(h), 1, f) == 1 && memcmp(h.magic, "WBDAY01", 8) == 0 && h.messages == messages &&
	    h.symbols == symbols && h.seed == seed && (d->buf = malloc(h.len + 64)) != NULL) {
		ok = fread(d->buf, 1, h.len, f) == h.len;
		if (ok) {
			d->len = h.len;
			d->msgs = h.msgs;
			d->ss = h.ss;
		} else {
			free(d->buf);
			d->buf = NULL;
		}
	}
	fclose(f);
	return ok;
}

static inline void day_save(const struct day *d, const char *path, uint64_t messages, uint32_t symbols, uint64_t seed)
{
	struct day_cache_hdr h = { .magic = "WBDAY01", .messages = messages, .symbols = symbols, .seed = seed,
				   .msgs = d->msgs, .len = d->len, .ss = d->ss };
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(&h, sizeof(h), 1, f) != 1 || fwrite(d->buf, 1, d->len, f) != d->len)
		fprintf(stderr, "cannot write the day cache %s (continuing)\n", path);
	if (f)
		fclose(f);
}

/* Decodes the next packet's worth (at most max messages) of a day walk, numbering them
 * from *seq: what a worker hands the book per packet. Returns how many (0 at the end). */
static inline uint32_t day_next_burst(struct wb_itch_file_iter *it, struct wb_itch_msg *msgs, uint64_t *seqs,
				      uint32_t max, uint64_t *seq)
{
	const uint8_t *p;
	uint16_t l;
	uint32_t n = 0;

	while (n < max && wb_itch_file_next(it, &p, &l) == 1) {
		wb_itch_decode(p, l, &msgs[n]);
		seqs[n++] = ++*seq;
	}
	return n;
}

/* What a worker's ITCH feed does with the next packet of its rx burst before it processes
 * this one (dataplane/feed_itch.c, prefetch_datagram): peeks at its first messages (at
 * most max, the packet's size) and starts their loads. The walk itself does not move. */
static inline void day_hint(struct wb_bookset *bs, const struct wb_itch_file_iter *it, uint32_t max)
{
	struct wb_itch_file_iter peek = *it;
	struct wb_itch_msg msgs[WB_BOOK_PREFETCH_MSGS];
	const uint8_t *p;
	uint16_t l;
	uint32_t n = 0;

	if (max > WB_BOOK_PREFETCH_MSGS)
		max = WB_BOOK_PREFETCH_MSGS;
	while (n < max && wb_itch_file_next(&peek, &p, &l) == 1)
		if (wb_itch_peek(p, l, &msgs[n]) == WB_ITCH_OK)
			n++;
	if (n)
		wb_bookset_prefetch_itch_burst(bs, msgs, n);
}

#endif
