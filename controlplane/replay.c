/* Replay from capture for the control socket: the same walk and line formats as
 * `wbcap cat --format jsonl|csv`, cut into bounded chunks that resume where they stopped. */
#define _GNU_SOURCE
#include "replay.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "block.h"
#include "book.h"
#include "capfile.h"

#define MAX_LINE 512 /* longest formatted event line */
#define FEEDS 256


/* Symbol names per feed, indexed by locate; allocated when a feed's first name is learned. */
typedef char symname[9];

struct wb_replay {
	struct wb_replay_opts o;
	char dir[PATH_MAX];
	char symbol[9];
	char **names;
	size_t nnames, file;
	struct wb_capfile *f;
	struct wb_capmap m;
	bool mapped;
	size_t blk;
	struct wb_capblock cb;
	ZSTD_DCtx *dctx;
	struct wb_event *ev;
	size_t evcap;
	uint32_t nev, k;
	symname *syms[FEEDS];
	unsigned decimals;
	bool header_done, done;
	uint64_t events, bad_blocks;
};

int wb_replay_parse_time(const char *s, struct wb_replay_time *t)
{
	struct wb_cap_time ct;
	int r = wb_cap_parse_time(s, &ct);
	if (r == 0) {
		t->clock = (enum wb_replay_clock)ct.clock;
		t->ns = ct.ns;
	}
	return r;
}

static void learn(struct wb_replay *r, uint8_t feed, uint16_t locate, const char raw[8])
{
	if (!r->syms[feed]) {
		r->syms[feed] = calloc(65536, sizeof(symname));
		if (!r->syms[feed])
			return;
	}
	char *d = r->syms[feed][locate];
	int n = 0;
	for (int i = 0; i < 8 && raw[i] && raw[i] != ' '; i++)
		d[n++] = raw[i];
	d[n] = 0;
}

static void learn_cb(void *arg, uint8_t feed, uint16_t locate, const char symbol[8])
{
	learn(arg, feed, locate, symbol);
}

static const char *symbol_of(const struct wb_replay *r, uint8_t feed, uint16_t locate)
{
	return r->syms[feed] ? r->syms[feed][locate] : "";
}

int wb_replay_open(const struct wb_replay_opts *o, struct wb_replay **out, char *err, size_t errlen)
{
	int ret;
	struct wb_replay *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->o = *o;
	snprintf(r->dir, sizeof(r->dir), "%s", o->dir);
	r->o.dir = r->dir;
	if (o->symbol) {
		snprintf(r->symbol, sizeof(r->symbol), "%s", o->symbol);
		r->o.symbol = r->symbol;
	}
	r->decimals = 4;
	ret = wb_cap_list_dir(r->dir, &r->names, &r->nnames);
	if (ret < 0) {
		snprintf(err, errlen, "capture directory %s: %s", r->dir, strerror(-ret));
		goto out_free;
	}
	r->dctx = ZSTD_createDCtx();
	if (!r->dctx) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out_names;
	}
	/* Directories of the closed files first, so a symbol defined in an earlier file is known. */
	wb_cap_read_directories(r->dir, r->names, r->nnames, learn_cb, r, &r->decimals);
	*out = r;
	return 0;
out_names:
	wb_cap_names_free(r->names, r->nnames);
out_free:
	free(r);
	return ret;
}

static uint64_t clock_of(enum wb_replay_clock c, const struct wb_event *e)
{
	return c == WB_CLOCK_RECV ? e->ts_recv : e->ts_exch;
}

static bool wanted(const struct wb_replay *r, const struct wb_event *e)
{
	if (r->o.from.clock && clock_of(r->o.from.clock, e) < r->o.from.ns)
		return false;
	if (r->o.to.clock && clock_of(r->o.to.clock, e) > r->o.to.ns)
		return false;
	return !r->o.symbol || !strcmp(symbol_of(r, e->feed, e->locate), r->o.symbol);
}

static bool block_wanted(const struct wb_replay *r, const struct wb_cap_block_header *h)
{
	if (h->kind != WB_BLK_EVENTS)
		return false;
	if (r->o.from.clock &&
	    (r->o.from.clock == WB_CLOCK_RECV ? h->ts_recv_max : h->ts_exch_max) < r->o.from.ns)
		return false;
	if (r->o.to.clock && (r->o.to.clock == WB_CLOCK_RECV ? h->ts_recv_min : h->ts_exch_min) > r->o.to.ns)
		return false;
	return true;
}


static int format_event(const struct wb_replay *r, const struct wb_event *e, char *out, size_t n)
{
	char px[48], side[8];
	wb_price_format(px, sizeof(px), e->price, (uint8_t)r->decimals);
	const char *tn = wb_cap_event_type_name(e->type);
	const char *sym = symbol_of(r, e->feed, e->locate);
	if (r->o.format == WB_REPLAY_CSV) {
		if (isprint(e->side) && e->side != '"' && e->side != '\\' && e->side != ',')
			snprintf(side, sizeof(side), "%c", e->side);
		else
			snprintf(side, sizeof(side), "%u", e->side);
		return snprintf(out, n, "%llu,%llu,%llu,%s,%u,%u,%s,%s,%s,%u,%llu,%llu,%u,%u,%u\n",
				(unsigned long long)e->ts_recv, (unsigned long long)e->ts_exch,
				(unsigned long long)e->seq, tn, e->feed, e->locate, sym, side, px, e->shares,
				(unsigned long long)e->ref, (unsigned long long)e->aux, e->level_shares, e->level_orders,
				e->flags);
	}
	return snprintf(out, n,
			"{\"ts_recv\":%llu,\"ts_exch\":%llu,\"seq\":%llu,\"type\":\"%s\",\"feed\":%u,\"locate\":%u,"
			"\"symbol\":\"%s\",\"side\":%u,\"price\":\"%s\",\"price_raw\":%lld,\"shares\":%u,\"ref\":%llu,"
			"\"aux\":%llu,\"level_shares\":%u,\"level_orders\":%u,\"flags\":%u}\n",
			(unsigned long long)e->ts_recv, (unsigned long long)e->ts_exch, (unsigned long long)e->seq, tn,
			e->feed, e->locate, sym, e->side, px, (long long)e->price, e->shares,
			(unsigned long long)e->ref, (unsigned long long)e->aux, e->level_shares, e->level_orders,
			e->flags);
}

static void close_file(struct wb_replay *r)
{
	if (r->mapped)
		wb_capmap_free(&r->m);
	r->mapped = false;
	if (r->f)
		wb_capfile_close(r->f);
	r->f = NULL;
	r->blk = 0;
	r->file++;
}

/* Decodes the next wanted block into r->ev; false when every file is read. */
static bool next_block(struct wb_replay *r)
{
	for (;;) {
		if (!r->f) {
			if (r->file >= r->nnames)
				return false;
			char path[PATH_MAX + 256];
			const char *why;
			snprintf(path, sizeof(path), "%s/%s", r->dir, r->names[r->file]);
			if (wb_capfile_open(path, false, &r->f, &why)) {
				r->f = NULL;
				r->bad_blocks++;
				r->file++;
				continue;
			}
			if (wb_capfile_map(r->f, &r->m)) {
				r->bad_blocks++;
				close_file(r);
				continue;
			}
			r->mapped = true;
			r->blk = 0;
		}
		if (r->blk >= r->m.n) {
			close_file(r);
			continue;
		}
		struct wb_capblk_info *bi = &r->m.blk[r->blk++];
		if (!block_wanted(r, &bi->h))
			continue;
		const char *why;
		if (wb_capfile_read_block(r->f, bi->offset, &r->cb, r->dctx, &why)) {
			r->bad_blocks++;
			continue;
		}
		const struct wb_cap_block_header *h = &r->cb.h;
		if (r->evcap < h->records) {
			void *n = realloc(r->ev, (size_t)h->records * sizeof(*r->ev));
			if (!n) {
				r->bad_blocks++;
				continue;
			}
			r->ev = n;
			r->evcap = h->records;
		}
		if (wb_block_decode_events(r->cb.raw, h->raw_bytes, h->records, r->ev)) {
			r->bad_blocks++;
			continue;
		}
		r->nev = h->records;
		r->k = 0;
		return true;
	}
}

size_t wb_replay_fill(struct wb_replay *r, char *buf, size_t cap, bool *done)
{
	size_t used = 0;
	char line[MAX_LINE];
	if (!r->header_done && r->o.format == WB_REPLAY_CSV) {
		static const char hdr[] =
			"ts_recv,ts_exch,seq,type,feed,locate,symbol,side,price,shares,ref,aux,level_shares,level_orders,flags\n";
		if (cap < sizeof(hdr))
			goto out;
		memcpy(buf, hdr, sizeof(hdr) - 1);
		used = sizeof(hdr) - 1;
	}
	r->header_done = true;
	while (!r->done) {
		if (r->k >= r->nev && !next_block(r)) {
			r->done = true;
			break;
		}
		for (; r->k < r->nev; r->k++) {
			const struct wb_event *e = &r->ev[r->k];
			if (e->type == WB_EV_SYMBOL)
				learn(r, e->feed, e->locate, (const char *)&e->aux);
			if (!wanted(r, e))
				continue;
			int n = format_event(r, e, line, sizeof(line));
			if (n < 0 || (size_t)n >= sizeof(line))
				continue;
			if (used + (size_t)n > cap)
				goto out; /* resumes at this event */
			memcpy(buf + used, line, (size_t)n);
			used += (size_t)n;
			r->events++;
		}
	}
out:
	*done = r->done;
	return used;
}

uint64_t wb_replay_events(const struct wb_replay *r)
{
	return r->events;
}

uint64_t wb_replay_bad_blocks(const struct wb_replay *r)
{
	return r->bad_blocks;
}

void wb_replay_close(struct wb_replay *r)
{
	if (!r)
		return;
	if (r->f) {
		if (r->mapped)
			wb_capmap_free(&r->m);
		wb_capfile_close(r->f);
	}
	wb_cap_names_free(r->names, r->nnames);
	wb_capblock_free(&r->cb);
	ZSTD_freeDCtx(r->dctx);
	free(r->ev);
	for (int i = 0; i < FEEDS; i++)
		free(r->syms[i]);
	free(r);
}
