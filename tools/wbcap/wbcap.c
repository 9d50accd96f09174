/* wbcap: read wirebook captures (docs/wbcap.md). ls, cat, verify, book, stats, pcap. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "block.h"
#include "book.h"
#include "capfile.h"
#include "rawring.h"

static const char *type_name(uint8_t t)
{
	return wb_cap_event_type_name(t);
}

/* ---- times ---- */

enum clock_kind { CLK_NONE = 0, CLK_RECV = 1, CLK_EXCH = 2 };

struct when {
	enum clock_kind clk;
	uint64_t ns;
};

/* ISO-8601 -> receive clock (UNIX ns); digits or HH:MM:SS[.f] -> exchange clock (ns since midnight). */
static int parse_time(const char *s, struct when *w)
{
	struct wb_cap_time t;
	int r = wb_cap_parse_time(s, &t);
	if (r == 0) {
		w->clk = t.clock == WB_CAP_CLOCK_RECV ? CLK_RECV : CLK_EXCH;
		w->ns = t.ns;
	}
	return r;
}

static void fmt_epoch(uint64_t ns, char *buf, size_t n)
{
	time_t t = (time_t)(ns / 1000000000ull);
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t l = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + l, n - l, ".%09lluZ", (unsigned long long)(ns % 1000000000ull));
}

static void fmt_price(int64_t price, unsigned decimals, char *buf, size_t n)
{
	wb_price_format(buf, n, price, (uint8_t)decimals);
}

/* Symbol bytes up to the first space or NUL; anything that is not printable ASCII (or
 * would need escaping in JSON and CSV) becomes '?', so every output stays well formed. */
static void fmt_symbol(const char sym[8], char out[9])
{
	int n = 0;
	for (int i = 0; i < 8 && sym[i] && sym[i] != ' '; i++) {
		unsigned char ch = (unsigned char)sym[i];
		out[n++] = ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\\' && ch != ',' ? (char)ch : '?';
	}
	out[n] = 0;
}

/* ---- walking a directory ---- */

struct dirent_sym {
	uint8_t feed;
	uint16_t locate;
	char sym[9];
};

struct walk {
	const char *dir;
	char **names;
	size_t nnames;
	ZSTD_DCtx *dctx;
	struct wb_capblock blk;
	struct wb_event *ev;
	size_t evcap;
	/* symbol directory learned from indexes and SYMBOL events */
	struct dirent_sym *syms;
	size_t nsyms, symcap;
	/* filter */
	const char *symbol;
	struct when from, to;
	unsigned decimals;
	uint64_t warnings;
	bool progress;
};

static void learn_symbol(struct walk *w, uint8_t feed, uint16_t locate, const char raw[8])
{
	char s[9];
	fmt_symbol(raw, s);
	for (size_t i = 0; i < w->nsyms; i++)
		if (w->syms[i].feed == feed && w->syms[i].locate == locate) {
			memcpy(w->syms[i].sym, s, 9);
			return;
		}
	if (w->nsyms == w->symcap) {
		size_t cap = w->symcap ? w->symcap * 2 : 256;
		void *n = realloc(w->syms, cap * sizeof(*w->syms));
		if (!n)
			return;
		w->syms = n;
		w->symcap = cap;
	}
	struct dirent_sym *d = &w->syms[w->nsyms++];
	d->feed = feed;
	d->locate = locate;
	memcpy(d->sym, s, 9);
}

static void learn_symbol_cb(void *arg, uint8_t feed, uint16_t locate, const char symbol[8])
{
	learn_symbol(arg, feed, locate, symbol);
}

static const char *symbol_of(const struct walk *w, uint8_t feed, uint16_t locate)
{
	for (size_t i = 0; i < w->nsyms; i++)
		if (w->syms[i].feed == feed && w->syms[i].locate == locate)
			return w->syms[i].sym;
	return "";
}

static bool symbol_match(const struct walk *w, uint8_t feed, uint16_t locate)
{
	return !w->symbol || !strcmp(symbol_of(w, feed, locate), w->symbol);
}

static bool in_range(const struct walk *w, const struct wb_event *e)
{
	if (w->from.clk && (w->from.clk == CLK_RECV ? e->ts_recv : e->ts_exch) < w->from.ns)
		return false;
	if (w->to.clk && (w->to.clk == CLK_RECV ? e->ts_recv : e->ts_exch) > w->to.ns)
		return false;
	return true;
}

/* Whether a block can hold anything the filter wants (index time ranges and locates). */
static bool block_wanted(const struct walk *w, const struct wb_capmap *m, const struct wb_capblk_info *b)
{
	const struct wb_cap_block_header *h = &b->h;
	if (w->from.clk && (w->from.clk == CLK_RECV ? h->ts_recv_max : h->ts_exch_max) < w->from.ns)
		return false;
	if (w->to.clk && (w->to.clk == CLK_RECV ? h->ts_recv_min : h->ts_exch_min) > w->to.ns)
		return false;
	if (w->symbol && b->nloc != UINT32_MAX && h->kind == WB_BLK_EVENTS) {
		bool any = false;
		for (size_t i = 0; i < w->nsyms && !any; i++) {
			if (strcmp(w->syms[i].sym, w->symbol))
				continue;
			for (uint32_t k = 0; k < b->nloc && !any; k++)
				any = m->locs[b->loc_off + k] == w->syms[i].locate;
		}
		/* a symbol not in any directory yet may be defined inside this very block */
		bool known = false;
		for (size_t i = 0; i < w->nsyms && !known; i++)
			known = !strcmp(w->syms[i].sym, w->symbol);
		return any || !known;
	}
	return true;
}

typedef int (*event_fn)(struct walk *w, const struct wb_event *e, void *arg);
typedef int (*raw_fn)(struct walk *w, const struct wb_rawrec *r, const uint8_t *payload, void *arg);

static int walk_open(struct walk *w, const char *dir)
{
	memset(w, 0, sizeof(*w));
	w->dir = dir;
	w->decimals = 4;
	int ret = wb_cap_list_dir(dir, &w->names, &w->nnames);
	if (ret) {
		fprintf(stderr, "wbcap: %s: %s\n", dir, strerror(-ret));
		return ret;
	}
	w->dctx = ZSTD_createDCtx();
	w->progress = isatty(2);
	/* the directories of every closed file first, so --symbol can use the indexes */
	wb_cap_read_directories(dir, w->names, w->nnames, learn_symbol_cb, w, &w->decimals);
	return 0;
}

static void walk_close(struct walk *w)
{
	if (w->progress)
		fprintf(stderr, "\r%60s\r", "");
	wb_cap_names_free(w->names, w->nnames);
	wb_capblock_free(&w->blk);
	ZSTD_freeDCtx(w->dctx);
	free(w->ev);
	free(w->syms);
}

static int walk_events(struct walk *w, event_fn efn, raw_fn rfn, void *arg)
{
	for (size_t i = 0; i < w->nnames; i++) {
		char path[PATH_MAX + 256];
		snprintf(path, sizeof(path), "%s/%s", w->dir, w->names[i]);
		if (w->progress)
			fprintf(stderr, "\rwbcap: file %zu/%zu", i + 1, w->nnames);
		struct wb_capfile *f;
		const char *why = NULL;
		if (wb_capfile_open(path, false, &f, &why)) {
			fprintf(stderr, "wbcap: warning: %s: %s; skipped\n", path, why);
			w->warnings++;
			continue;
		}
		struct wb_capmap m;
		if (wb_capfile_map(f, &m)) {
			wb_capfile_close(f);
			return -ENOMEM;
		}
		if (m.bad_headers) {
			fprintf(stderr, "wbcap: warning: %s: %llu damaged block headers skipped\n", path,
				(unsigned long long)m.bad_headers);
			w->warnings++;
		}
		for (size_t b = 0; b < m.n; b++) {
			struct wb_capblk_info *bi = &m.blk[b];
			if ((bi->h.kind == WB_BLK_EVENTS && !efn) || (bi->h.kind == WB_BLK_RAW && !rfn))
				continue;
			if (!block_wanted(w, &m, bi))
				continue;
			int ret = wb_capfile_read_block(f, bi->offset, &w->blk, w->dctx, &why);
			if (ret) {
				fprintf(stderr, "wbcap: warning: %s: block %zu at offset %llu: %s; skipped\n", path, b,
					(unsigned long long)bi->offset, why);
				w->warnings++;
				continue;
			}
			const struct wb_cap_block_header *h = &w->blk.h;
			if (h->kind == WB_BLK_RAW) {
				size_t off = 0;
				for (uint32_t k = 0; k < h->records && off + sizeof(struct wb_rawrec) <= h->raw_bytes; k++) {
					const struct wb_rawrec *r = (const void *)(w->blk.raw + off);
					if (off + wb_rawrec_bytes(r->len) > h->raw_bytes)
						break;
					ret = rfn(w, r, (const uint8_t *)(r + 1), arg);
					if (ret)
						goto out;
					off += wb_rawrec_bytes(r->len);
				}
				continue;
			}
			if (h->kind != WB_BLK_EVENTS)
				continue;
			if (w->evcap < h->records) {
				void *n = realloc(w->ev, (size_t)h->records * sizeof(*w->ev));
				if (!n) {
					ret = -ENOMEM;
					goto out;
				}
				w->ev = n;
				w->evcap = h->records;
			}
			if (wb_block_decode_events(w->blk.raw, h->raw_bytes, h->records, w->ev)) {
				fprintf(stderr, "wbcap: warning: %s: block %zu does not decode; skipped\n", path, b);
				w->warnings++;
				continue;
			}
			for (uint32_t k = 0; k < h->records; k++) {
				const struct wb_event *e = &w->ev[k];
				if (e->type == WB_EV_SYMBOL)
					learn_symbol(w, e->feed, e->locate, (const char *)&e->aux);
				if (!in_range(w, e) || (w->symbol && !symbol_match(w, e->feed, e->locate)))
					continue;
				ret = efn(w, e, arg);
				if (ret)
					goto out;
			}
			continue;
out:
			wb_capmap_free(&m);
			wb_capfile_close(f);
			return ret;
		}
		wb_capmap_free(&m);
		wb_capfile_close(f);
	}
	return 0;
}

/* ---- cat ---- */

enum out_format { FMT_TEXT, FMT_CSV, FMT_JSONL };

static int print_event(struct walk *w, const struct wb_event *e, void *arg)
{
	enum out_format fmt = *(enum out_format *)arg;
	char px[48], ts[48], side[8];
	fmt_price(e->price, w->decimals, px, sizeof(px));
	fmt_epoch(e->ts_recv, ts, sizeof(ts));
	if (isprint(e->side) && e->side != '"' && e->side != '\\' && e->side != ',')
		snprintf(side, sizeof(side), "%c", e->side);
	else
		snprintf(side, sizeof(side), "%u", e->side);
	const char *sym = symbol_of(w, e->feed, e->locate);
	switch (fmt) {
	case FMT_TEXT:
		printf("%s %15llu %10llu %-13s %-8s %s %12s %8u ref=%llu aux=%llu lvl=%u/%u feed=%u loc=%u fl=0x%02x\n", ts,
		       (unsigned long long)e->ts_exch, (unsigned long long)e->seq, type_name(e->type), sym, side, px,
		       e->shares, (unsigned long long)e->ref, (unsigned long long)e->aux, e->level_shares,
		       e->level_orders, e->feed, e->locate, e->flags);
		break;
	case FMT_CSV:
		printf("%llu,%llu,%llu,%s,%u,%u,%s,%s,%s,%u,%llu,%llu,%u,%u,%u\n", (unsigned long long)e->ts_recv,
		       (unsigned long long)e->ts_exch, (unsigned long long)e->seq, type_name(e->type), e->feed,
		       e->locate, sym, side, px, e->shares, (unsigned long long)e->ref, (unsigned long long)e->aux,
		       e->level_shares, e->level_orders, e->flags);
		break;
	case FMT_JSONL:
		printf("{\"ts_recv\":%llu,\"ts_exch\":%llu,\"seq\":%llu,\"type\":\"%s\",\"feed\":%u,\"locate\":%u,"
		       "\"symbol\":\"%s\",\"side\":%u,\"price\":\"%s\",\"price_raw\":%lld,\"shares\":%u,\"ref\":%llu,"
		       "\"aux\":%llu,\"level_shares\":%u,\"level_orders\":%u,\"flags\":%u}\n",
		       (unsigned long long)e->ts_recv, (unsigned long long)e->ts_exch, (unsigned long long)e->seq,
		       type_name(e->type), e->feed, e->locate, sym, e->side, px, (long long)e->price, e->shares,
		       (unsigned long long)e->ref, (unsigned long long)e->aux, e->level_shares, e->level_orders,
		       e->flags);
		break;
	}
	return ferror(stdout) ? -EIO : 0;
}

/* ---- verify ---- */

struct cont {
	uint64_t session;
	uint16_t stream;
	uint8_t feed;
	uint64_t last;
};

static int cmd_verify(const char *dir, bool verbose)
{
	struct walk w;
	if (walk_open(&w, dir))
		return 2;
	struct cont *c = NULL;
	size_t nc = 0;
	uint64_t bad = 0, missing = 0, jumps = 0, blocks = 0, events = 0, unclosed = 0, gaps = 0;
	uint64_t raw_packets = 0, raw_missing = 0;
	for (size_t i = 0; i < w.nnames; i++) {
		char path[PATH_MAX + 256];
		snprintf(path, sizeof(path), "%s/%s", dir, w.names[i]);
		if (w.progress)
			fprintf(stderr, "\rwbcap: verify %zu/%zu", i + 1, w.nnames);
		struct wb_capfile *f;
		const char *why = NULL;
		if (wb_capfile_open(path, false, &f, &why)) {
			printf("BAD %s: %s\n", path, why);
			bad++;
			continue;
		}
		if (!f->closed) {
			printf("WARN %s: not closed (writer still running, or crashed and not yet recovered)\n", path);
			unclosed++;
		}
		uint64_t off = WB_CAP_FILE_HEADER_BYTES;
		uint32_t bi = 0;
		while (off < f->size) {
			int ret = wb_capfile_read_block(f, off, &w.blk, w.dctx, &why);
			if (ret == -EPIPE) {
				printf("BAD %s: torn tail at offset %llu: %s\n", path, (unsigned long long)off, why);
				bad++;
				break;
			}
			if (ret) {
				/* a damaged header loses the length: look for the next good header */
				bool hdr_ok = w.blk.offset == off && w.blk.h.magic == WB_CAP_BLOCK_MAGIC &&
					      wb_block_check_header(&w.blk.h, &why) == 0;
				printf("BAD %s: block %u at offset %llu: %s\n", path, bi, (unsigned long long)off, why);
				bad++;
				off = hdr_ok ? off + w.blk.h.padded_bytes : wb_capfile_resync(f, off);
				bi++;
				continue;
			}
			const struct wb_cap_block_header *h = &w.blk.h;
			bi++;
			if (h->kind == WB_BLK_EVENTS) {
				blocks++;
				if (w.evcap < h->records) {
					w.ev = realloc(w.ev, (size_t)h->records * sizeof(*w.ev));
					w.evcap = h->records;
				}
				if (wb_block_decode_events(w.blk.raw, h->raw_bytes, h->records, w.ev)) {
					printf("BAD %s: block %u at offset %llu: does not decode\n", path, bi - 1,
					       (unsigned long long)off);
					bad++;
				} else {
					events += h->records;
					for (uint32_t k = 0; k < h->records; k++) {
						const struct wb_event *e = &w.ev[k];
						struct cont *s = NULL;
						for (size_t j = 0; j < nc && !s; j++)
							if (c[j].session == f->hdr.session_id && c[j].stream == h->stream &&
							    c[j].feed == e->feed)
								s = &c[j];
						if (!s) {
							c = realloc(c, (nc + 1) * sizeof(*c));
							s = &c[nc++];
							*s = (struct cont){ f->hdr.session_id, h->stream, e->feed, 0 };
						}
						if (e->type == WB_EV_DROP) {
							printf("MISSING %s: block %u: drop marker: %llu events lost, seq %llu-%llu (stream %u feed %u)\n",
							       path, bi - 1, (unsigned long long)e->aux,
							       (unsigned long long)e->seq, (unsigned long long)e->ref,
							       h->stream, e->feed);
							missing += e->aux;
							if (e->ref > s->last)
								s->last = e->ref;
							continue;
						}
						if (e->type == WB_EV_GAP) {
							printf("GAP %s: feed %u declared a sequence gap: %llu messages from %llu\n",
							       path, e->feed, (unsigned long long)e->aux,
							       (unsigned long long)e->seq);
							gaps++;
						}
						if (!e->seq)
							continue;
						if (s->last && e->seq > s->last + 1 && e->type != WB_EV_GAP) {
							printf("JUMP %s: block %u: stream %u feed %u: seq %llu follows %llu with no drop marker\n",
							       path, bi - 1, h->stream, e->feed, (unsigned long long)e->seq,
							       (unsigned long long)s->last);
							jumps++;
						}
						if (e->seq > s->last)
							s->last = e->type == WB_EV_GAP ? e->seq + e->aux - 1 : e->seq;
					}
				}
			} else if (h->kind == WB_BLK_RAW) {
				blocks++;
				/* raw packets carry the count the ring dropped just before each one */
				size_t ro = 0;
				for (uint32_t k = 0; k < h->records && ro + sizeof(struct wb_rawrec) <= h->raw_bytes; k++) {
					const struct wb_rawrec *r = (const void *)(w.blk.raw + ro);
					if (ro + wb_rawrec_bytes(r->len) > h->raw_bytes)
						break;
					raw_packets++;
					if (r->dropped_before) {
						printf("MISSING %s: block %u: raw ring dropped %u packets before the one received at %llu ns (feed %u line %u)\n",
						       path, bi - 1, r->dropped_before, (unsigned long long)r->ts_recv, r->feed,
						       r->line);
						raw_missing += r->dropped_before;
					}
					ro += wb_rawrec_bytes(r->len);
				}
			}
			if (verbose && (h->kind == WB_BLK_EVENTS || h->kind == WB_BLK_RAW))
				printf("ok %s block %u offset %llu stream %u kind %s records %u seq %llu-%llu\n", path, bi - 1,
				       (unsigned long long)off, h->stream, h->kind == WB_BLK_EVENTS ? "events" : "raw",
				       h->records, (unsigned long long)h->seq_first, (unsigned long long)h->seq_last);
			off += h->padded_bytes;
		}
		wb_capfile_close(f);
	}
	bool whole = !bad && !missing && !jumps && !raw_missing;
	printf("%s: %zu files, %llu blocks, %llu events; %llu damaged, %llu events in drop markers, %llu unexplained jumps, %llu feed gaps, %llu unclosed files",
	       whole ? "WHOLE" : "NOT WHOLE", w.nnames, (unsigned long long)blocks, (unsigned long long)events,
	       (unsigned long long)bad, (unsigned long long)missing, (unsigned long long)jumps,
	       (unsigned long long)gaps, (unsigned long long)unclosed);
	if (raw_packets || raw_missing)
		printf("; %llu raw packets, %llu dropped by the raw ring", (unsigned long long)raw_packets,
		       (unsigned long long)raw_missing);
	printf("\n");
	free(c);
	walk_close(&w);
	return whole ? 0 : 1;
}

/* ---- ls ---- */

static int cmd_ls(const char *dir)
{
	struct walk w;
	if (walk_open(&w, dir))
		return 2;
	printf("%-64s %6s %8s %12s %-31s %-31s %12s %7s\n", "file", "state", "blocks", "records", "first (recv)",
	       "last (recv)", "bytes", "ratio");
	for (size_t i = 0; i < w.nnames; i++) {
		char path[PATH_MAX + 256], a[48] = "-", b[48] = "-";
		snprintf(path, sizeof(path), "%s/%s", dir, w.names[i]);
		struct wb_capfile *f;
		const char *why;
		if (wb_capfile_open(path, false, &f, &why)) {
			printf("%-64s %s\n", w.names[i], why);
			continue;
		}
		struct wb_capmap m;
		wb_capfile_map(f, &m);
		uint64_t recs = 0, rawb = 0, padb = 0, lo = UINT64_MAX, hi = 0;
		for (size_t k = 0; k < m.n; k++) {
			recs += m.blk[k].h.records;
			padb += m.blk[k].h.padded_bytes;
			rawb += m.blk[k].h.kind == WB_BLK_EVENTS ? 64ull * m.blk[k].h.records : 0;
			lo = m.blk[k].h.ts_recv_min < lo ? m.blk[k].h.ts_recv_min : lo;
			hi = m.blk[k].h.ts_recv_max > hi ? m.blk[k].h.ts_recv_max : hi;
		}
		if (m.n) {
			fmt_epoch(lo, a, sizeof(a));
			fmt_epoch(hi, b, sizeof(b));
		}
		printf("%-64s %6s %8zu %12llu %-31s %-31s %12llu %7.2f\n", w.names[i], f->closed ? "closed" : "open",
		       m.n, (unsigned long long)recs, a, b, (unsigned long long)f->size,
		       padb ? (double)rawb / (double)padb : 0.0);
		wb_capmap_free(&m);
		wb_capfile_close(f);
	}
	walk_close(&w);
	return 0;
}

/* ---- stats ---- */

struct symcount {
	uint8_t feed;
	uint16_t locate;
	uint64_t n[WB_EV_TYPE_MAX + 1];
};

struct statsacc {
	struct symcount *s;
	size_t n;
};

static int count_event(struct walk *w, const struct wb_event *e, void *arg)
{
	(void)w;
	struct statsacc *a = arg;
	struct symcount *s = NULL;
	for (size_t i = 0; i < a->n && !s; i++)
		if (a->s[i].feed == e->feed && a->s[i].locate == e->locate)
			s = &a->s[i];
	if (!s) {
		void *nv = realloc(a->s, (a->n + 1) * sizeof(*a->s));
		if (!nv)
			return -ENOMEM;
		a->s = nv;
		s = &a->s[a->n++];
		memset(s, 0, sizeof(*s));
		s->feed = e->feed;
		s->locate = e->locate;
	}
	s->n[e->type < WB_EV_TYPE_MAX ? e->type : WB_EV_TYPE_MAX]++;
	return 0;
}

static int cmd_stats(struct walk *w)
{
	struct statsacc a = { 0 };
	int ret = walk_events(w, count_event, NULL, &a);
	printf("%-8s %4s %6s %10s %9s %9s %9s %9s %9s %9s %9s\n", "symbol", "feed", "locate", "events", "add", "exec",
	       "cancel", "delete", "replace", "trade", "other");
	for (size_t i = 0; i < a.n; i++) {
		const struct symcount *s = &a.s[i];
		uint64_t total = 0;
		for (int t = 0; t <= WB_EV_TYPE_MAX; t++)
			total += s->n[t];
		uint64_t other = total - s->n[1] - s->n[2] - s->n[3] - s->n[4] - s->n[5] - s->n[7];
		printf("%-8s %4u %6u %10llu %9llu %9llu %9llu %9llu %9llu %9llu %9llu\n",
		       symbol_of(w, s->feed, s->locate), s->feed, s->locate, (unsigned long long)total,
		       (unsigned long long)s->n[1], (unsigned long long)s->n[2], (unsigned long long)s->n[3],
		       (unsigned long long)s->n[4], (unsigned long long)s->n[5], (unsigned long long)s->n[7],
		       (unsigned long long)other);
	}
	free(a.s);
	return ret ? 2 : 0;
}

/* ---- book ---- */

struct order {
	uint64_t ref; /* 0 = empty */
	int64_t price;
	uint32_t shares;
	uint8_t side;
	bool tomb;
};

struct level {
	int64_t price;
	uint64_t shares;
	uint32_t orders;
	uint8_t side;
};

struct bookacc {
	struct order *o;
	size_t cap, used;
	struct level *lv; /* price-level feeds */
	size_t nlv;
	int feed; /* -1 until the symbol's first event fixes it */
};

static size_t hslot(uint64_t ref, size_t cap)
{
	return (size_t)((ref * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
}

static struct order *order_find(struct bookacc *b, uint64_t ref)
{
	for (size_t i = hslot(ref, b->cap);; i = (i + 1) & (b->cap - 1)) {
		if (!b->o[i].ref && !b->o[i].tomb)
			return NULL;
		if (b->o[i].ref == ref)
			return &b->o[i];
	}
}

static int order_put(struct bookacc *b, uint64_t ref, uint8_t side, int64_t price, uint32_t shares)
{
	if (2 * (b->used + 1) > b->cap) {
		struct bookacc nb = { .cap = b->cap ? b->cap * 2 : 1024 };
		nb.o = calloc(nb.cap, sizeof(*nb.o));
		if (!nb.o)
			return -ENOMEM;
		for (size_t i = 0; i < b->cap; i++)
			if (b->o[i].ref)
				order_put(&nb, b->o[i].ref, b->o[i].side, b->o[i].price, b->o[i].shares);
		free(b->o);
		b->o = nb.o;
		b->cap = nb.cap;
		b->used = nb.used;
	}
	struct order *o = order_find(b, ref);
	if (!o) {
		size_t i = hslot(ref, b->cap);
		while (b->o[i].ref)
			i = (i + 1) & (b->cap - 1);
		o = &b->o[i];
		b->used++;
	}
	*o = (struct order){ ref, price, shares, side, false };
	return 0;
}

static void order_del(struct bookacc *b, uint64_t ref)
{
	struct order *o = b->cap ? order_find(b, ref) : NULL;
	if (o) {
		o->ref = 0;
		o->tomb = true;
	}
}

static int apply_event(struct walk *w, const struct wb_event *e, void *arg)
{
	(void)w;
	struct bookacc *b = arg;
	if (b->feed < 0)
		b->feed = e->feed;
	if (e->feed != b->feed)
		return 0;
	struct order *o;
	switch (e->type) {
	case WB_EV_ORDER_ADD:
	case WB_EV_ORDER_REPLACE:
		if (e->type == WB_EV_ORDER_REPLACE)
			order_del(b, e->aux);
		return order_put(b, e->ref, e->side, e->price, e->shares);
	case WB_EV_ORDER_EXEC:
	case WB_EV_ORDER_CANCEL:
		o = b->cap ? order_find(b, e->ref) : NULL;
		if (o) {
			o->shares = e->shares >= o->shares ? 0 : o->shares - e->shares;
			if (!o->shares)
				order_del(b, e->ref);
		}
		return 0;
	case WB_EV_ORDER_DELETE:
		order_del(b, e->ref);
		return 0;
	case WB_EV_LEVEL:
		for (size_t i = 0; i < b->nlv; i++)
			if (b->lv[i].side == e->side && b->lv[i].price == e->price) {
				b->lv[i].shares = e->level_shares;
				b->lv[i].orders = e->level_orders;
				return 0;
			}
		if (!e->level_shares)
			return 0;
		void *n = realloc(b->lv, (b->nlv + 1) * sizeof(*b->lv));
		if (!n)
			return -ENOMEM;
		b->lv = n;
		b->lv[b->nlv++] = (struct level){ e->price, e->level_shares, e->level_orders, e->side };
		return 0;
	default:
		return 0;
	}
}

static int cmp_bid(const void *a, const void *b)
{
	int64_t x = ((const struct level *)a)->price, y = ((const struct level *)b)->price;
	return x > y ? -1 : x < y;
}

static int cmp_ask(const void *a, const void *b)
{
	return -cmp_bid(a, b);
}

static void print_side(const struct walk *w, struct level *lv, size_t n, unsigned depth, bool json, const char *name)
{
	size_t k = n < depth ? n : depth;
	char px[48];
	if (json) {
		printf("\"%s\":[", name);
		for (size_t i = 0; i < k; i++) {
			fmt_price(lv[i].price, w->decimals, px, sizeof(px));
			printf("%s{\"price\":\"%s\",\"shares\":%llu,\"orders\":%u}", i ? "," : "", px,
			       (unsigned long long)lv[i].shares, lv[i].orders);
		}
		printf("]");
		return;
	}
	printf("%s\n", name);
	for (size_t i = 0; i < k; i++) {
		fmt_price(lv[i].price, w->decimals, px, sizeof(px));
		printf("  %14s %12llu %6u\n", px, (unsigned long long)lv[i].shares, lv[i].orders);
	}
}

static int cmd_book(struct walk *w, const char *symbol, unsigned depth, bool json)
{
	struct bookacc b = { .feed = -1 };
	w->symbol = symbol;
	int ret = walk_events(w, apply_event, NULL, &b);
	if (ret) {
		fprintf(stderr, "wbcap: book: %s\n", strerror(-ret));
		return 2;
	}
	if (b.feed < 0) {
		fprintf(stderr, "wbcap: book: no events for symbol %s\n", symbol);
		return 1;
	}
	/* per-order books aggregate into levels; level books are already levels */
	struct level *bids = NULL, *asks = NULL;
	size_t nb = 0, na = 0;
	struct level *all = malloc((b.used + b.nlv + 1) * sizeof(*all));
	size_t nall = 0;
	for (size_t i = 0; i < b.cap; i++)
		if (b.o[i].ref)
			all[nall++] = (struct level){ b.o[i].price, b.o[i].shares, 1, b.o[i].side };
	for (size_t i = 0; i < b.nlv; i++)
		if (b.lv[i].shares)
			all[nall++] = b.lv[i];
	bids = malloc((nall + 1) * sizeof(*bids));
	asks = malloc((nall + 1) * sizeof(*asks));
	for (size_t i = 0; i < nall; i++) {
		struct level *side = all[i].side == 'B' ? bids : asks;
		size_t *ns = all[i].side == 'B' ? &nb : &na;
		size_t j;
		for (j = 0; j < *ns && side[j].price != all[i].price; j++)
			;
		if (j == *ns)
			side[(*ns)++] = all[i];
		else {
			side[j].shares += all[i].shares;
			side[j].orders += all[i].orders;
		}
	}
	qsort(bids, nb, sizeof(*bids), cmp_bid);
	qsort(asks, na, sizeof(*asks), cmp_ask);
	if (json) {
		printf("{\"symbol\":\"%s\",", symbol);
		print_side(w, bids, nb, depth, true, "bids");
		printf(",");
		print_side(w, asks, na, depth, true, "asks");
		printf("}\n");
	} else {
		printf("%s\n", symbol);
		print_side(w, bids, nb, depth, false, "bids");
		print_side(w, asks, na, depth, false, "asks");
	}
	free(all);
	free(bids);
	free(asks);
	free(b.o);
	free(b.lv);
	return 0;
}

/* ---- pcap ---- */

static void put16be(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static int write_pcapng_rec(struct walk *w, const struct wb_rawrec *r, const uint8_t *payload, void *arg)
{
	(void)w;
	FILE *out = arg;
	uint8_t hdr[42] = { 0 };
	uint32_t dst = r->dst_addr;
	/* multicast destinations get their multicast MAC; the rest a local one */
	if ((dst >> 28) == 0xE) {
		uint8_t mac[6] = { 0x01, 0x00, 0x5e, (uint8_t)((dst >> 16) & 0x7f), (uint8_t)(dst >> 8), (uint8_t)dst };
		memcpy(hdr, mac, 6);
	} else {
		uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
		memcpy(hdr, mac, 6);
	}
	uint8_t src_mac[6] = { 0x02, 0, 0, 0, r->feed, (uint8_t)(0x10 + r->line) };
	memcpy(hdr + 6, src_mac, 6);
	put16be(hdr + 12, 0x0800);
	uint8_t *ip = hdr + 14;
	ip[0] = 0x45;
	put16be(ip + 2, (uint16_t)(20 + 8 + r->len));
	ip[8] = 64;
	ip[9] = 17;
	uint32_t src = 0xC0000200u | (uint32_t)(1 + r->line); /* 192.0.2.1 line A, .2 line B */
	for (int i = 0; i < 4; i++) {
		ip[12 + i] = (uint8_t)(src >> (24 - 8 * i));
		ip[16 + i] = (uint8_t)(dst >> (24 - 8 * i));
	}
	uint32_t sum = 0;
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	put16be(ip + 10, (uint16_t)~sum);
	uint8_t *udp = ip + 20;
	put16be(udp, (uint16_t)(20000 + r->line));
	put16be(udp + 2, r->dst_port);
	put16be(udp + 4, (uint16_t)(8 + r->len));
	uint32_t caplen = 42 + r->len, padded = (caplen + 3) & ~3u;
	uint32_t blen = 32 + padded;
	uint32_t epb[7] = { 6, blen, 0, (uint32_t)(r->ts_recv >> 32), (uint32_t)r->ts_recv, caplen, caplen };
	static const uint8_t zero[4];
	fwrite(epb, 4, 7, out);
	fwrite(hdr, 1, 42, out);
	fwrite(payload, 1, r->len, out);
	fwrite(zero, 1, padded - caplen, out);
	fwrite(&blen, 4, 1, out);
	return ferror(out) ? -EIO : 0;
}

static int cmd_pcap(struct walk *w, const char *outpath)
{
	FILE *out = fopen(outpath, "wb");
	if (!out) {
		fprintf(stderr, "wbcap: %s: %s\n", outpath, strerror(errno));
		return 2;
	}
	/* section header, then one Ethernet interface with nanosecond timestamps */
	uint32_t shb[7] = { 0x0A0D0D0A, 28, 0x1A2B3C4D, 0x00000001, 0xFFFFFFFF, 0xFFFFFFFF, 28 };
	uint32_t idb[8] = { 1, 32, 1 /* linktype Ethernet, reserved 0 */, 0xFFFF, 0x0001 | (9u << 16) /* if_tsresol, len 1... */, 0, 0, 32 };
	/* if_tsresol option: code 9, length 1, value 9 (10^-9), padded; then opt_endofopt */
	uint8_t *ib = (uint8_t *)idb;
	memset(ib + 8, 0, 16);
	ib[8] = 1;                 /* LinkType = 1 (16 bits), reserved */
	ib[12] = 0xFF;             /* SnapLen 65535 */
	ib[13] = 0xFF;
	ib[16] = 9;                /* option code 9 */
	ib[18] = 1;                /* option length 1 */
	ib[20] = 9;                /* nanoseconds */
	/* bytes 24..27: opt_endofopt (0,0) + pad(0,0) is implied by the zeroed words */
	idb[7] = 32;
	fwrite(shb, 4, 7, out);
	fwrite(idb, 4, 8, out);
	int ret = walk_events(w, NULL, write_pcapng_rec, out);
	if (fclose(out) || ret) {
		fprintf(stderr, "wbcap: %s: write failed\n", outpath);
		return 2;
	}
	return w->warnings ? 1 : 0;
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f, "usage: wbcap ls DIR\n"
		   "       wbcap cat DIR [--symbol S] [--from T] [--to T] [--format text|csv|jsonl]\n"
		   "       wbcap verify DIR [-v]\n"
		   "       wbcap book DIR SYMBOL [--at T] [--depth N] [--json]\n"
		   "       wbcap stats DIR [--symbol S] [--from T] [--to T]\n"
		   "       wbcap pcap DIR -o FILE [--from T] [--to T]\n"
		   "T: ISO-8601 (2024-01-02T14:30:00.5Z: receive time) or ns since midnight / HH:MM:SS.fff\n"
		   "   (exchange time). See wbcap(1), docs/wbcap.md.\n");
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		usage(argc > 1 && !strcmp(argv[1], "--help") ? stdout : stderr);
		return 2;
	}
	const char *cmd = argv[1], *dir = NULL, *symbol = NULL, *outpath = NULL;
	static const struct option opts[] = {
		{ "symbol", required_argument, 0, 's' }, { "from", required_argument, 0, 'f' },
		{ "to", required_argument, 0, 't' },     { "format", required_argument, 0, 'F' },
		{ "at", required_argument, 0, 'a' },     { "depth", required_argument, 0, 'd' },
		{ "json", no_argument, 0, 'j' },         { "output", required_argument, 0, 'o' },
		{ "verbose", no_argument, 0, 'v' },      { 0, 0, 0, 0 },
	};
	struct when from = { 0 }, to = { 0 };
	enum out_format fmt = FMT_TEXT;
	unsigned depth = 10;
	bool json = false, verbose = false;
	optind = 2;
	int c;
	while ((c = getopt_long(argc, argv, "o:v", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			symbol = optarg;
			break;
		case 'f':
		case 't':
		case 'a':
			if (parse_time(optarg, c == 'f' ? &from : &to)) {
				fprintf(stderr, "wbcap: bad time '%s': use ISO-8601 or ns since midnight\n", optarg);
				return 2;
			}
			break;
		case 'F':
			if (!strcmp(optarg, "text"))
				fmt = FMT_TEXT;
			else if (!strcmp(optarg, "csv"))
				fmt = FMT_CSV;
			else if (!strcmp(optarg, "jsonl"))
				fmt = FMT_JSONL;
			else {
				fprintf(stderr, "wbcap: unknown format '%s' (text, csv, jsonl)\n", optarg);
				return 2;
			}
			break;
		case 'd':
			depth = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'j':
			json = true;
			break;
		case 'o':
			outpath = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	/* positional arguments may come before or after the options */
	int npos = argc - optind;
	bool is_book = !strcmp(cmd, "book");
	if (npos != (is_book ? 2 : 1)) {
		usage(stderr);
		return 2;
	}
	dir = argv[optind];
	if (is_book)
		symbol = argv[optind + 1];
	if (!strcmp(cmd, "verify"))
		return cmd_verify(dir, verbose);
	if (!strcmp(cmd, "ls"))
		return cmd_ls(dir);
	struct walk w;
	int ret;
	if (!strcmp(cmd, "cat") || !strcmp(cmd, "stats") || !strcmp(cmd, "book") || !strcmp(cmd, "pcap")) {
		if (walk_open(&w, dir))
			return 2;
		w.from = from;
		w.to = to;
	} else {
		usage(stderr);
		return 2;
	}
	if (!strcmp(cmd, "cat")) {
		w.symbol = symbol;
		if (fmt == FMT_CSV)
			printf("ts_recv,ts_exch,seq,type,feed,locate,symbol,side,price,shares,ref,aux,level_shares,level_orders,flags\n");
		ret = walk_events(&w, print_event, NULL, &fmt) ? 2 : (w.warnings ? 1 : 0);
	} else if (!strcmp(cmd, "stats")) {
		w.symbol = symbol;
		ret = cmd_stats(&w);
	} else if (!strcmp(cmd, "book")) {
		ret = cmd_book(&w, symbol, depth, json);
	} else {
		if (!outpath) {
			fprintf(stderr, "wbcap: pcap needs -o FILE\n");
			walk_close(&w);
			return 2;
		}
		ret = cmd_pcap(&w, outpath);
	}
	walk_close(&w);
	return ret;
}
