/* Capture file reading, indexing and torn-tail recovery. */
#define _GNU_SOURCE
#include "capfile.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "block.h"

static int pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, (uint8_t *)buf + done, n - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -ENODATA;
		done += (size_t)r;
	}
	return 0;
}

static int pwrite_full(int fd, const void *buf, size_t n, uint64_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pwrite(fd, (const uint8_t *)buf + done, n - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)r;
	}
	return 0;
}

static void detect_end(struct wb_capfile *f)
{
	struct wb_cap_block_header h;
	const char *why;
	f->closed = false;
	f->index_offset = 0;
	if (f->size < WB_CAP_FILE_HEADER_BYTES + WB_CAP_ALIGN || f->size % WB_CAP_ALIGN)
		return;
	if (wb_capfile_read_header(f, f->size - WB_CAP_ALIGN, &h, &why) || h.kind != WB_BLK_END)
		return;
	f->closed = true;
	/* END names where the INDEX block is */
	f->index_offset = h.seq_first;
}

int wb_capfile_open(const char *path, bool writable, struct wb_capfile **out, const char **why)
{
	int ret;
	struct wb_capfile *f = calloc(1, sizeof(*f));
	if (!f) {
		*why = "out of memory";
		return -ENOMEM;
	}
	snprintf(f->path, sizeof(f->path), "%s", path);
	f->fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (f->fd < 0) {
		ret = -errno;
		*why = strerror(errno);
		goto out_free;
	}
	struct stat st;
	if (fstat(f->fd, &st)) {
		ret = -errno;
		*why = strerror(errno);
		goto out_close;
	}
	f->size = (uint64_t)st.st_size;
	ret = pread_full(f->fd, &f->hdr, sizeof(f->hdr), 0);
	if (ret) {
		*why = "file shorter than its header";
		ret = -EBADMSG;
		goto out_close;
	}
	ret = wb_cap_file_header_check(&f->hdr, why);
	if (ret)
		goto out_close;
	detect_end(f);
	*out = f;
	return 0;

out_close:
	close(f->fd);
out_free:
	free(f);
	return ret;
}

void wb_capfile_close(struct wb_capfile *f)
{
	if (!f)
		return;
	close(f->fd);
	free(f);
}

int wb_capfile_read_header(struct wb_capfile *f, uint64_t off, struct wb_cap_block_header *h, const char **why)
{
	if (off >= f->size)
		return -ENODATA;
	if (off + sizeof(*h) > f->size) {
		*why = "block header cut short by the end of the file";
		return -EPIPE;
	}
	int ret = pread_full(f->fd, h, sizeof(*h), off);
	if (ret) {
		*why = "read error";
		return ret;
	}
	ret = wb_block_check_header(h, why);
	if (ret)
		return ret;
	if (off + h->padded_bytes > f->size) {
		*why = "block cut short by the end of the file";
		return -EPIPE;
	}
	return 0;
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
	if (*cap >= need)
		return 0;
	uint8_t *n = realloc(*buf, need);
	if (!n)
		return -ENOMEM;
	*buf = n;
	*cap = need;
	return 0;
}

int wb_capfile_read_block(struct wb_capfile *f, uint64_t off, struct wb_capblock *b, ZSTD_DCtx *dctx, const char **why)
{
	int ret = wb_capfile_read_header(f, off, &b->h, why);
	if (ret)
		return ret;
	b->offset = off;
	if (grow(&b->stored, &b->stored_cap, b->h.stored_bytes + 1) || grow(&b->raw, &b->raw_cap, b->h.raw_bytes + 1)) {
		*why = "out of memory";
		return -ENOMEM;
	}
	ret = pread_full(f->fd, b->stored, b->h.stored_bytes, off + sizeof(b->h));
	if (ret) {
		*why = "read error";
		return ret;
	}
	ret = wb_block_check_payload(&b->h, b->stored, why);
	if (ret)
		return ret;
	return wb_block_decompress(dctx, &b->h, b->stored, b->raw, b->raw_cap, why);
}

void wb_capblock_free(struct wb_capblock *b)
{
	free(b->stored);
	free(b->raw);
	memset(b, 0, sizeof(*b));
}

uint64_t wb_capfile_resync(struct wb_capfile *f, uint64_t off)
{
	struct wb_cap_block_header h;
	const char *why;
	for (off = wb_cap_align(off + 1); off < f->size; off += WB_CAP_ALIGN)
		if (wb_capfile_read_header(f, off, &h, &why) == 0)
			return off;
	return f->size;
}

int wb_capmap_add(struct wb_capmap *m, uint64_t offset, const struct wb_cap_block_header *h, const uint16_t *locs,
		  uint32_t nloc)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		void *n = realloc(m->blk, cap * sizeof(*m->blk));
		if (!n)
			return -ENOMEM;
		m->blk = n;
		m->cap = cap;
	}
	struct wb_capblk_info *b = &m->blk[m->n];
	b->offset = offset;
	b->h = *h;
	b->nloc = nloc;
	b->loc_off = (uint32_t)m->nlocs;
	if (locs && nloc && nloc != UINT32_MAX) {
		if (m->nlocs + nloc > m->locs_cap) {
			size_t cap = m->locs_cap ? m->locs_cap : 1024;
			while (cap < m->nlocs + nloc)
				cap *= 2;
			void *n = realloc(m->locs, cap * sizeof(*m->locs));
			if (!n)
				return -ENOMEM;
			m->locs = n;
			m->locs_cap = cap;
		}
		memcpy(m->locs + m->nlocs, locs, nloc * sizeof(*locs));
		m->nlocs += nloc;
	}
	m->n++;
	return 0;
}

int wb_capmap_add_dir(struct wb_capmap *m, uint8_t feed, uint16_t locate, const char symbol[8])
{
	for (size_t i = 0; i < m->ndir; i++)
		if (m->dir[i].feed == feed && m->dir[i].locate == locate) {
			memcpy(m->dir[i].symbol, symbol, 8);
			return 0;
		}
	if (m->ndir == m->dir_cap) {
		size_t cap = m->dir_cap ? m->dir_cap * 2 : 64;
		void *n = realloc(m->dir, cap * sizeof(*m->dir));
		if (!n)
			return -ENOMEM;
		m->dir = n;
		m->dir_cap = cap;
	}
	struct wb_cap_dir_entry *d = &m->dir[m->ndir++];
	memset(d, 0, sizeof(*d));
	d->feed = feed;
	d->locate = locate;
	memcpy(d->symbol, symbol, 8);
	return 0;
}

void wb_capmap_free(struct wb_capmap *m)
{
	free(m->blk);
	free(m->locs);
	free(m->dir);
	memset(m, 0, sizeof(*m));
}

int wb_capmap_serialize(const struct wb_capmap *m, uint8_t **buf, size_t *len)
{
	size_t n = 8 + m->ndir * sizeof(struct wb_cap_dir_entry);
	for (size_t i = 0; i < m->n; i++) {
		uint32_t nl = m->blk[i].nloc == UINT32_MAX ? 0 : m->blk[i].nloc;
		n += sizeof(struct wb_cap_index_entry) + ((2 * (size_t)nl + 7) & ~(size_t)7);
	}
	uint8_t *p = calloc(1, n), *w = p;
	if (!p)
		return -ENOMEM;
	uint32_t cnt[2] = { (uint32_t)m->n, (uint32_t)m->ndir };
	memcpy(w, cnt, 8);
	w += 8;
	for (size_t i = 0; i < m->n; i++) {
		const struct wb_capblk_info *b = &m->blk[i];
		uint32_t nl = b->nloc == UINT32_MAX ? 0 : b->nloc;
		struct wb_cap_index_entry e = {
			.offset = b->offset, .padded_bytes = b->h.padded_bytes, .records = b->h.records,
			.stream = b->h.stream, .kind = b->h.kind, .nlocates = nl,
			.seq_first = b->h.seq_first, .seq_last = b->h.seq_last,
			.ts_recv_min = b->h.ts_recv_min, .ts_recv_max = b->h.ts_recv_max,
			.ts_exch_min = b->h.ts_exch_min, .ts_exch_max = b->h.ts_exch_max,
		};
		memcpy(w, &e, sizeof(e));
		w += sizeof(e);
		if (nl)
			memcpy(w, m->locs + b->loc_off, 2 * (size_t)nl);
		w += (2 * (size_t)nl + 7) & ~(size_t)7;
	}
	if (m->ndir)
		memcpy(w, m->dir, m->ndir * sizeof(*m->dir));
	*buf = p;
	*len = n;
	return 0;
}

int wb_capmap_parse(struct wb_capmap *m, const uint8_t *buf, size_t len)
{
	uint32_t cnt[2];
	if (len < 8)
		return -EBADMSG;
	memcpy(cnt, buf, 8);
	size_t off = 8;
	for (uint32_t i = 0; i < cnt[0]; i++) {
		struct wb_cap_index_entry e;
		if (off + sizeof(e) > len)
			return -EBADMSG;
		memcpy(&e, buf + off, sizeof(e));
		off += sizeof(e);
		size_t lb = (2 * (size_t)e.nlocates + 7) & ~(size_t)7;
		if (off + lb > len)
			return -EBADMSG;
		struct wb_cap_block_header h = {
			.kind = e.kind, .records = e.records, .stream = e.stream, .padded_bytes = e.padded_bytes,
			.seq_first = e.seq_first, .seq_last = e.seq_last, .ts_recv_min = e.ts_recv_min,
			.ts_recv_max = e.ts_recv_max, .ts_exch_min = e.ts_exch_min, .ts_exch_max = e.ts_exch_max,
		};
		uint16_t *locs = malloc(lb + 2);
		if (!locs)
			return -ENOMEM;
		memcpy(locs, buf + off, 2 * (size_t)e.nlocates);
		int ret = wb_capmap_add(m, e.offset, &h, locs, e.kind == WB_BLK_EVENTS ? e.nlocates : UINT32_MAX);
		free(locs);
		if (ret)
			return ret;
		off += lb;
	}
	if (off + (size_t)cnt[1] * sizeof(struct wb_cap_dir_entry) > len)
		return -EBADMSG;
	for (uint32_t i = 0; i < cnt[1]; i++) {
		struct wb_cap_dir_entry d;
		memcpy(&d, buf + off + i * sizeof(d), sizeof(d));
		int ret = wb_capmap_add_dir(m, d.feed, d.locate, d.symbol);
		if (ret)
			return ret;
	}
	return 0;
}

static int map_from_index(struct wb_capfile *f, struct wb_capmap *m)
{
	struct wb_capblock b = { 0 };
	const char *why;
	ZSTD_DCtx *d = ZSTD_createDCtx();
	int ret = d ? wb_capfile_read_block(f, f->index_offset, &b, d, &why) : -ENOMEM;
	if (!ret && b.h.kind != WB_BLK_INDEX)
		ret = -EBADMSG;
	if (!ret)
		ret = wb_capmap_parse(m, b.raw, b.h.raw_bytes);
	wb_capblock_free(&b);
	ZSTD_freeDCtx(d);
	if (!ret)
		m->from_index = true;
	return ret;
}

int wb_capfile_map(struct wb_capfile *f, struct wb_capmap *m)
{
	memset(m, 0, sizeof(*m));
	if (f->closed && map_from_index(f, m) == 0)
		return 0;
	wb_capmap_free(m);
	uint64_t off = WB_CAP_FILE_HEADER_BYTES;
	while (off < f->size) {
		struct wb_cap_block_header h;
		const char *why = NULL;
		int ret = wb_capfile_read_header(f, off, &h, &why);
		if (ret == -ENODATA)
			break;
		if (ret == -EPIPE) {
			m->torn_offset = off;
			m->torn_why = why;
			break;
		}
		if (ret) {
			m->bad_headers++;
			off = wb_capfile_resync(f, off);
			continue;
		}
		if (h.kind == WB_BLK_EVENTS || h.kind == WB_BLK_RAW) {
			ret = wb_capmap_add(m, off, &h, NULL, UINT32_MAX);
			if (ret)
				return ret;
		}
		off += h.padded_bytes;
	}
	return 0;
}

uint32_t wb_cap_collect_locates(const struct wb_event *ev, uint32_t n, uint16_t *locs, uint64_t *bitmap)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint16_t l = ev[i].locate;
		uint64_t bit = 1ull << (l & 63);
		if (!(bitmap[l >> 6] & bit)) {
			bitmap[l >> 6] |= bit;
			locs[k++] = l;
		}
	}
	/* sorted from the bitmap; also clears it for the next block */
	uint32_t j = 0;
	for (uint32_t w = 0; w < 1024 && j < k; w++) {
		uint64_t word = bitmap[w];
		while (word) {
			locs[j++] = (uint16_t)(w * 64 + (uint32_t)__builtin_ctzll(word));
			word &= word - 1;
		}
		bitmap[w] = 0;
	}
	return k;
}

static int seal_write(int fd, uint64_t off, struct wb_cap_block_header *h, const void *raw, size_t raw_len,
		      uint64_t *next)
{
	size_t cap = wb_block_dst_bound(raw_len), padded;
	uint8_t *dst = aligned_alloc(WB_CAP_ALIGN, cap);
	if (!dst)
		return -ENOMEM;
	ZSTD_CCtx *c = ZSTD_createCCtx();
	int ret = wb_block_seal(c, 3, h, raw, raw_len, dst, cap, &padded);
	if (!ret)
		ret = pwrite_full(fd, dst, padded, off);
	if (!ret)
		*next = off + padded;
	ZSTD_freeCCtx(c);
	free(dst);
	return ret;
}

int wb_capfile_write_trailer(int fd, uint64_t off, const struct wb_capmap *m, uint64_t *end)
{
	uint8_t *idx;
	size_t len;
	int ret = wb_capmap_serialize(m, &idx, &len);
	if (ret)
		return ret;
	struct wb_cap_block_header h = { .kind = WB_BLK_INDEX, .records = (uint32_t)m->n, .block_index = (uint32_t)m->n };
	uint64_t index_off = off, next;
	ret = seal_write(fd, off, &h, idx, len, &next);
	free(idx);
	if (ret)
		return ret;
	struct wb_cap_block_header e = { .kind = WB_BLK_END, .seq_first = index_off, .block_index = (uint32_t)m->n + 1 };
	ret = seal_write(fd, next, &e, NULL, 0, end);
	return ret;
}

int wb_capfile_recover(const char *path, struct wb_cap_recovery *r)
{
	struct wb_capfile *f;
	const char *why = NULL;
	memset(r, 0, sizeof(*r));
	int ret = wb_capfile_open(path, true, &f, &why);
	if (ret == -EBADMSG) {
		struct stat st;
		if (stat(path, &st) == 0 && st.st_size <= WB_CAP_FILE_HEADER_BYTES) {
			/* killed while creating the file: it never held a block */
			r->why = why;
			r->removed = true;
			r->cut_bytes = (uint64_t)st.st_size;
			return unlink(path) ? -errno : 0;
		}
		r->why = why;
		return ret;
	}
	if (ret) {
		r->why = why;
		return ret;
	}
	if (f->closed) {
		r->was_closed = true;
		goto out_close;
	}
	ZSTD_DCtx *d = ZSTD_createDCtx();
	struct wb_capmap m = { 0 };
	struct wb_capblock b = { 0 };
	struct wb_event *ev = NULL;
	uint16_t *locs = malloc(65536 * sizeof(*locs));
	uint64_t *bitmap = calloc(1024, sizeof(*bitmap));
	uint64_t off = WB_CAP_FILE_HEADER_BYTES;
	if (!d || !locs || !bitmap) {
		ret = -ENOMEM;
		goto out_free;
	}
	r->why = "end of data";
	while (off < f->size) {
		ret = wb_capfile_read_block(f, off, &b, d, &r->why);
		if (ret)
			break;
		if (b.h.kind == WB_BLK_EVENTS) {
			struct wb_event *nev = realloc(ev, (size_t)b.h.records * sizeof(*ev) + 64);
			if (!nev) {
				ret = -ENOMEM;
				goto out_free;
			}
			ev = nev;
			if (wb_block_decode_events(b.raw, b.h.raw_bytes, b.h.records, ev)) {
				r->why = "event block does not decode";
				break;
			}
			uint32_t nl = wb_cap_collect_locates(ev, b.h.records, locs, bitmap);
			for (uint32_t i = 0; i < b.h.records; i++)
				if (ev[i].type == WB_EV_SYMBOL)
					wb_capmap_add_dir(&m, ev[i].feed, ev[i].locate, (const char *)&ev[i].aux);
			ret = wb_capmap_add(&m, off, &b.h, locs, nl);
		} else if (b.h.kind == WB_BLK_RAW) {
			ret = wb_capmap_add(&m, off, &b.h, NULL, UINT32_MAX);
		} else {
			r->why = "index or end block in the middle of an unclosed file";
			break;
		}
		if (ret)
			goto out_free;
		r->blocks_kept++;
		off += b.h.padded_bytes;
	}
	r->cut_at = off;
	r->cut_bytes = f->size - off;
	if (ftruncate(f->fd, (off_t)off)) {
		ret = -errno;
		goto out_free;
	}
	uint64_t end;
	ret = wb_capfile_write_trailer(f->fd, off, &m, &end);
	if (!ret && fdatasync(f->fd))
		ret = -errno;
out_free:
	free(bitmap);
	free(locs);
	free(ev);
	wb_capblock_free(&b);
	wb_capmap_free(&m);
	ZSTD_freeDCtx(d);
out_close:
	wb_capfile_close(f);
	return ret;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int wb_cap_list_dir(const char *dir, char ***names, size_t *n)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	char **v = NULL;
	size_t k = 0, cap = 0;
	struct dirent *de;
	size_t sl = strlen(WB_CAP_SUFFIX);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l <= sl || strcmp(de->d_name + l - sl, WB_CAP_SUFFIX))
			continue;
		if (k == cap) {
			cap = cap ? cap * 2 : 16;
			char **nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				goto out_nomem;
			v = nv;
		}
		v[k] = strdup(de->d_name);
		if (!v[k])
			goto out_nomem;
		k++;
	}
	closedir(d);
	if (k)
		qsort(v, k, sizeof(*v), cmp_names);
	*names = v;
	*n = k;
	return 0;
out_nomem:
	closedir(d);
	wb_cap_names_free(v, k);
	return -ENOMEM;
}

void wb_cap_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* The times operators and researchers type: ISO 8601 is receive time (UNIX ns), digits
 * or HH:MM:SS[.f] are exchange time (ns since midnight). */
int wb_cap_parse_time(const char *s, struct wb_cap_time *t)
{
	char *end;
	if (strchr(s, '-') && strchr(s, 'T')) {
		struct tm tm = { 0 };
		const char *r = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
		if (!r)
			return -EINVAL;
		uint64_t frac = 0;
		if (*r == '.') {
			int digits = 0;
			for (r++; isdigit((unsigned char)*r); r++, digits++)
				if (digits < 9)
					frac = frac * 10 + (uint64_t)(*r - '0');
			for (; digits < 9; digits++)
				frac *= 10;
		}
		int64_t off = 0;
		if (*r == '+' || *r == '-') {
			int hh, mm;
			if (sscanf(r + 1, "%2d:%2d", &hh, &mm) != 2)
				return -EINVAL;
			off = (int64_t)(hh * 3600 + mm * 60) * (*r == '-' ? -1 : 1);
		} else if (*r && strcmp(r, "Z")) {
			return -EINVAL;
		}
		time_t sec = timegm(&tm);
		if (sec < 0)
			return -EINVAL;
		t->clock = WB_CAP_CLOCK_RECV;
		t->ns = (uint64_t)((int64_t)sec - off) * 1000000000ull + frac;
		return 0;
	}
	if (strchr(s, ':')) {
		unsigned h, m;
		double sec;
		char tail;
		if (sscanf(s, "%u:%u:%lf%c", &h, &m, &sec, &tail) != 3 || h > 47 || m > 59 || sec < 0 || sec >= 61)
			return -EINVAL;
		t->clock = WB_CAP_CLOCK_EXCH;
		t->ns = (uint64_t)h * 3600000000000ull + (uint64_t)m * 60000000000ull + (uint64_t)(sec * 1e9 + 0.5);
		return 0;
	}
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || end == s || *s == '-')
		return -EINVAL;
	t->clock = WB_CAP_CLOCK_EXCH;
	t->ns = v;
	return 0;
}

static const char *const cap_type_names[WB_EV_TYPE_MAX] = {
	"NONE", "ORDER_ADD", "ORDER_EXEC", "ORDER_CANCEL", "ORDER_DELETE", "ORDER_REPLACE", "LEVEL", "TRADE",
	"TRADE_BREAK", "STATUS", "SYMBOL", "SYSTEM", "INTEGRITY", "GAP", "DROP", "QUOTE", "OTHER",
};

const char *wb_cap_event_type_name(uint8_t type)
{
	return type < WB_EV_TYPE_MAX ? cap_type_names[type] : "UNKNOWN";
}

void wb_cap_read_directories(const char *dir, char *const *names, size_t n, wb_cap_symbol_fn cb, void *arg,
			     unsigned *decimals)
{
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX + 256];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		struct wb_capfile *f;
		const char *why;
		if (wb_capfile_open(path, false, &f, &why))
			continue;
		if (i == 0)
			*decimals = f->hdr.price_decimals;
		struct wb_capmap m;
		if (f->closed && wb_capfile_map(f, &m) == 0) {
			for (size_t k = 0; k < m.ndir; k++)
				cb(arg, m.dir[k].feed, m.dir[k].locate, m.dir[k].symbol);
			wb_capmap_free(&m);
		}
		wb_capfile_close(f);
	}
}
