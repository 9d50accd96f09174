/* The persister thread: rings -> blocks -> io_uring writes -> durable files. */
#define _GNU_SOURCE
#include "capture.h"
#include "histo.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "block.h"
#include "capfile.h"

#define MAX_STREAMS 64
#define LAT_SAMPLES 1024
#define OP_WRITE 1ull
#define OP_FSYNC 2ull
#define OP_SHIFT 32

struct stream {
	char name[WB_NAME_LEN];
	bool raw;
	struct wb_evring *ev;
	struct wb_rawring *rr;
	struct wb_event *evstage; /* events staged for the next block */
	uint8_t *rawstage;        /* raw records staged */
	uint32_t nrec, cap_rec;
	size_t rawlen, rawcap;
	uint64_t raw_ts_min, raw_ts_max;
	uint64_t first_mono;      /* when the first staged record arrived */
	/* blocks of this stream lost to the disk, to be marked in the next written block */
	uint64_t lost_events, lost_first_seq, lost_last_seq;
	_Atomic uint64_t consumed;
};

enum slot_state { SLOT_FREE = 0, SLOT_BUSY = 1 };

struct ioslot {
	uint8_t *buf;
	enum slot_state state;
	int pending;      /* CQEs still expected */
	bool complete;    /* all CQEs in, waiting for its turn in write order */
	int res;          /* first error, or 0 */
	bool durable_op;  /* an fsync was linked */
	uint64_t order;   /* submission number */
	uint64_t submit_mono;
	uint64_t first_mono;
	struct wb_cap_block_header h;
	uint64_t offset;
	uint32_t file_gen;
};

struct pub_stats {
	_Atomic uint64_t v[32];
};

enum {
	S_EVENTS_IN, S_RAW_IN, S_BYTES_IN, S_BYTES_OUT, S_BLOCKS_WRITTEN, S_BLOCKS_DURABLE, S_FILES_WRITTEN,
	S_FILES_REMOVED, S_WRITE_ERRORS, S_EVENTS_LOST, S_DURABLE_LAG, S_LAT_P50, S_LAT_P99, S_LAT_MAX, S_RAW_LOST,
	S_DROP_MARKERS, S_RECOVERED_CUT, S_FILES_RECOVERED, S_DIRECT_IO, S_ZSTD_LEVEL, S_DURABILITY, S_COUNT
};

_Static_assert(S_COUNT <= 32, "pub_stats holds every counter");

/* Settings a reload may change while the thread runs: the control thread stores them and
 * bumps gen; the persister copies them into cap between blocks. */
struct live_conf {
	_Atomic int zstd_level;
	_Atomic int durability;
	_Atomic uint32_t durability_ms, retention_hours;
	_Atomic uint64_t retention_bytes;
	_Atomic uint32_t gen;
};

struct wb_persister {
	struct wb_capture_conf cap;
	struct live_conf live;
	uint32_t live_seen;
	char name[WB_NAME_LEN];
	unsigned core;
	void (*on_durable)(void *arg, const struct wb_persist_durable *d);
	void *on_durable_arg;
	struct wb_cap_file_header fhdr_template;

	struct stream streams[MAX_STREAMS];
	uint32_t nstreams;

	struct io_uring ring;
	bool ring_ok;
	struct ioslot *slots;
	uint32_t nslots;
	size_t slot_cap;
	uint8_t *scratch;         /* columns of one event block */
	ZSTD_CCtx *cctx;
	uint64_t next_order, report_order;

	/* the file being written */
	int fd;
	bool file_failed;         /* a write failed: drop blocks until the next rotation */
	bool direct;
	bool direct_warned;
	char path[PATH_MAX + 128];
	uint64_t file_off;
	uint64_t file_open_mono;
	uint32_t file_index, file_gen, file_blocks;
	uint32_t failed_gen;      /* last file that had a write fail */
	uint64_t retry_mono;      /* no file: when to try opening one again */
	bool disk_trouble;        /* logged once until a file works again */
	struct wb_capmap map;     /* the current file's blocks */
	struct wb_capmap dir;     /* symbol directory of the session (dir entries only) */
	uint16_t *locs;
	uint64_t *loc_bitmap;
	uint64_t last_fsync_mono;
	bool interval_fsync_inflight;
	uint64_t interval_fsync_upto;
	uint64_t written_oldest_mono;  /* oldest first event among blocks written since the last fsync */
	uint64_t fsync_oldest_mono;    /* the same, for the fsync in flight */
	struct wb_histo durable_hist;  /* first event taken off the ring to durable, ns */

	uint64_t lat[LAT_SAMPLES];
	uint32_t nlat;
	uint64_t lat_max;
	uint64_t local[S_COUNT];
	struct pub_stats pub;

	pthread_t thread;
	bool started;
	_Atomic bool stop;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void publish(struct wb_persister *p)
{
	for (int i = 0; i < S_COUNT; i++)
		atomic_store_explicit(&p->pub.v[i], p->local[i], memory_order_relaxed);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void update_latency_stats(struct wb_persister *p)
{
	uint64_t tmp[LAT_SAMPLES];
	uint32_t n = p->nlat < LAT_SAMPLES ? p->nlat : LAT_SAMPLES;
	if (!n)
		return;
	memcpy(tmp, p->lat, n * sizeof(*tmp));
	qsort(tmp, n, sizeof(*tmp), cmp_u64);
	p->local[S_LAT_P50] = tmp[n / 2];
	p->local[S_LAT_P99] = tmp[(n * 99) / 100];
	p->local[S_LAT_MAX] = p->lat_max;
}

/* ---- files ---- */

static void log_disk_trouble(struct wb_persister *p, const char *path, int err)
{
	if (p->disk_trouble)
		return;
	p->disk_trouble = true;
	fprintf(stderr, "capture: %s: %s; dropping blocks until space returns\n", path, strerror(err));
}

static int sync_dir(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	int ret = fsync(dfd) ? -errno : 0;
	close(dfd);
	return ret;
}

static void apply_retention(struct wb_persister *p)
{
	if (!p->cap.retention_bytes && !p->cap.retention_hours)
		return;
	char **names;
	size_t n;
	if (wb_cap_list_dir(p->cap.directory, &names, &n))
		return;
	uint64_t *sizes = calloc(n + 1, sizeof(*sizes)), total = 0;
	time_t *mtimes = calloc(n + 1, sizeof(*mtimes));
	char path[PATH_MAX + 256];
	for (size_t i = 0; sizes && mtimes && i < n; i++) {
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", p->cap.directory, names[i]);
		if (stat(path, &st) == 0) {
			sizes[i] = (uint64_t)st.st_blocks * 512;
			mtimes[i] = st.st_mtime;
			total += sizes[i];
		}
	}
	time_t now = time(NULL);
	for (size_t i = 0; sizes && mtimes && i < n; i++) {
		bool over_bytes = p->cap.retention_bytes && total > p->cap.retention_bytes;
		bool too_old = p->cap.retention_hours && now - mtimes[i] > (time_t)p->cap.retention_hours * 3600;
		if (!over_bytes && !too_old)
			break;
		snprintf(path, sizeof(path), "%s/%s", p->cap.directory, names[i]);
		if (!strcmp(path, p->path))
			continue;
		/* never a file some writer still has open: only files closed with END */
		struct wb_capfile *f;
		const char *why;
		if (wb_capfile_open(path, false, &f, &why))
			continue;
		bool closed = f->closed;
		wb_capfile_close(f);
		if (!closed)
			continue;
		if (unlink(path) == 0) {
			total -= sizes[i];
			p->local[S_FILES_REMOVED]++;
		}
	}
	free(sizes);
	free(mtimes);
	wb_cap_names_free(names, n);
}

static int open_file(struct wb_persister *p)
{
	uint64_t now = real_ns();
	time_t secs = (time_t)(now / 1000000000ull);
	struct tm tm;
	gmtime_r(&secs, &tm);
	char stamp[32];
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	snprintf(p->path, sizeof(p->path), "%s/%s.%09lluZ-%s-%08llx-%06u%s", p->cap.directory, stamp,
		 (unsigned long long)(now % 1000000000ull), p->name,
		 (unsigned long long)(p->fhdr_template.session_id & 0xffffffffu), p->file_index, WB_CAP_SUFFIX);
	int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
	int fd = open(p->path, flags | O_DIRECT, 0644);
	p->direct = fd >= 0;
	if (fd < 0 && errno == EINVAL) {
		if (!p->direct_warned)
			fprintf(stderr, "capture: %s: O_DIRECT not supported here (tmpfs?); using buffered writes\n",
				p->cap.directory);
		p->direct_warned = true;
		fd = open(p->path, flags, 0644);
	}
	if (fd < 0) {
		int err = errno;
		log_disk_trouble(p, p->path, err);
		p->path[0] = 0;
		return -err;
	}
	/* preallocation failing (full disk, tmpfs limits) is not fatal: writes will tell */
	(void)fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)p->cap.rotate_bytes);
	struct wb_cap_file_header *fh = aligned_alloc(WB_CAP_ALIGN, sizeof(*fh));
	int ret = fh ? 0 : -ENOMEM;
	if (fh) {
		*fh = p->fhdr_template;
		fh->file_index = p->file_index;
		fh->created_ns = now;
		wb_cap_file_header_seal(fh);
		ssize_t w = pwrite(fd, fh, sizeof(*fh), 0);
		ret = w == (ssize_t)sizeof(*fh) ? 0 : (w < 0 ? -errno : -ENOSPC);
		free(fh);
	}
	if (!ret && p->cap.durability != WB_DURABLE_NONE && (fdatasync(fd) || sync_dir(p->cap.directory)))
		ret = -errno;
	if (!ret)
		ret = io_uring_register_files_update(&p->ring, 0, &fd, 1) == 1 ? 0 : -EIO;
	if (ret) {
		log_disk_trouble(p, p->path, -ret);
		close(fd);
		unlink(p->path);
		p->path[0] = 0;
		return ret;
	}
	if (p->disk_trouble)
		fprintf(stderr, "capture: %s: writing again\n", p->path);
	p->disk_trouble = false;
	p->fd = fd;
	p->file_failed = false;
	p->file_off = WB_CAP_FILE_HEADER_BYTES;
	p->file_open_mono = mono_ns();
	p->file_index++;
	p->file_gen++;
	p->file_blocks = 0;
	p->local[S_FILES_WRITTEN]++;
	p->local[S_DIRECT_IO] = p->direct;
	wb_capmap_free(&p->map);
	apply_retention(p);
	return 0;
}

static void handle_cqe(struct wb_persister *p, struct io_uring_cqe *cqe);

static void wait_all(struct wb_persister *p)
{
	for (;;) {
		bool busy = false;
		for (uint32_t i = 0; i < p->nslots; i++)
			busy |= p->slots[i].state == SLOT_BUSY;
		if (!busy && !p->interval_fsync_inflight)
			return;
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&p->ring, &cqe) == 0) {
			handle_cqe(p, cqe);
			io_uring_cqe_seen(&p->ring, cqe);
		}
	}
}

static void report_durable(struct wb_persister *p, struct ioslot *s)
{
	p->local[S_BLOCKS_DURABLE]++;
	wb_histo_record(&p->durable_hist, mono_ns() - s->first_mono);
	if (p->on_durable) {
		struct wb_persist_durable d = {
			.stream = s->h.stream, .kind = s->h.kind, .records = s->h.records,
			.seq_first = s->h.seq_first, .seq_last = s->h.seq_last, .offset = s->offset, .file = p->path,
		};
		p->on_durable(p->on_durable_arg, &d);
	}
}

static void close_file(struct wb_persister *p)
{
	if (p->fd < 0)
		return;
	wait_all(p);
	if (!p->file_failed) {
		struct wb_capmap m = p->map;
		m.dir = p->dir.dir;
		m.ndir = p->dir.ndir;
		uint64_t end;
		int ret = wb_capfile_write_trailer(p->fd, p->file_off, &m, &end);
		if (!ret && fdatasync(p->fd))
			ret = -errno;
		if (ret)
			log_disk_trouble(p, p->path, -ret);
		else if (p->cap.durability != WB_DURABLE_BLOCK)
			p->local[S_BLOCKS_DURABLE] = p->local[S_BLOCKS_WRITTEN];
	}
	/* unused preallocation goes back to the file system */
	close(p->fd);
	p->fd = -1;
	p->path[0] = 0;
	wb_capmap_free(&p->map);
}

/* ---- blocks ---- */

static void note_lost(struct stream *st, const struct wb_cap_block_header *h)
{
	if (h->kind != WB_BLK_EVENTS)
		return;
	if (!st->lost_events)
		st->lost_first_seq = h->seq_first;
	st->lost_last_seq = h->seq_last;
	st->lost_events += h->records;
}

static void block_lost(struct wb_persister *p, const struct wb_cap_block_header *h)
{
	if (h->kind == WB_BLK_EVENTS)
		p->local[S_EVENTS_LOST] += h->records;
	else
		p->local[S_RAW_LOST] += h->records;
	note_lost(&p->streams[h->stream], h);
}

static void slot_done(struct wb_persister *p, struct ioslot *s)
{
	uint64_t lat = mono_ns() - s->submit_mono;
	p->lat[p->nlat++ % LAT_SAMPLES] = lat;
	if (lat > p->lat_max)
		p->lat_max = lat;
	if (s->res) {
		p->local[S_WRITE_ERRORS]++;
		block_lost(p, &s->h);
		if (s->file_gen == p->file_gen) {
			p->file_failed = true;
			log_disk_trouble(p, p->path, -s->res);
		}
	} else {
		p->local[S_BLOCKS_WRITTEN]++;
		p->local[S_BYTES_OUT] += s->h.padded_bytes;
		if (!p->written_oldest_mono || s->first_mono < p->written_oldest_mono)
			p->written_oldest_mono = s->first_mono;
	}
	s->state = SLOT_FREE;
}

static void handle_cqe(struct wb_persister *p, struct io_uring_cqe *cqe)
{
	uint64_t ud = cqe->user_data;
	uint32_t op = (uint32_t)(ud >> OP_SHIFT), idx = (uint32_t)ud;
	if (op == 3) {
		/* an interval fdatasync: everything written before it is durable */
		p->interval_fsync_inflight = false;
		if (cqe->res == 0) {
			p->local[S_BLOCKS_DURABLE] = p->interval_fsync_upto;
			/* the oldest block this fsync made durable bounds the latency of all of them */
			if (p->fsync_oldest_mono)
				wb_histo_record(&p->durable_hist, mono_ns() - p->fsync_oldest_mono);
		}
		return;
	}
	struct ioslot *s = &p->slots[idx];
	if (op == OP_WRITE && cqe->res != (int)s->h.padded_bytes && !s->res)
		s->res = cqe->res < 0 ? cqe->res : -ENOSPC;
	if (op == OP_FSYNC && cqe->res < 0 && !s->res)
		s->res = cqe->res;
	if (--s->pending)
		return;
	s->complete = true;
	/* blocks retire in write order, so durable reports never skip one */
	for (bool again = true; again;) {
		again = false;
		for (uint32_t i = 0; i < p->nslots; i++) {
			struct ioslot *t = &p->slots[i];
			if (t->state != SLOT_BUSY || !t->complete || t->order != p->report_order)
				continue;
			/* after a failed write the file has a hole: recovery would cut there, so
			 * nothing after it in that file may be called durable */
			if (t->res)
				p->failed_gen = t->file_gen;
			if (t->durable_op && !t->res && t->file_gen != p->failed_gen)
				report_durable(p, t);
			p->report_order++;
			slot_done(p, t);
			again = true;
		}
	}
}

static void reap(struct wb_persister *p)
{
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&p->ring, &cqe) == 0) {
		handle_cqe(p, cqe);
		io_uring_cqe_seen(&p->ring, cqe);
	}
}

static struct ioslot *free_slot(struct wb_persister *p)
{
	for (;;) {
		for (uint32_t i = 0; i < p->nslots; i++)
			if (p->slots[i].state == SLOT_FREE)
				return &p->slots[i];
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&p->ring, &cqe) == 0) {
			handle_cqe(p, cqe);
			io_uring_cqe_seen(&p->ring, cqe);
		}
	}
}

static bool file_ready(struct wb_persister *p, uint64_t next_bytes)
{
	uint64_t now = mono_ns();
	if (p->fd >= 0 && (p->file_failed ||
			   (p->file_blocks && p->file_off + next_bytes + 2 * WB_CAP_ALIGN > p->cap.rotate_bytes) ||
			   (p->cap.rotate_seconds && now - p->file_open_mono >= p->cap.rotate_seconds * 1000000000ull))) {
		bool failed = p->file_failed;
		close_file(p);
		if (failed)
			p->retry_mono = now; /* retry at once: the rotation is the retry */
	}
	if (p->fd < 0 && now >= p->retry_mono) {
		if (open_file(p))
			p->retry_mono = now + 200000000ull;
	}
	return p->fd >= 0;
}

static void submit_block(struct wb_persister *p, struct stream *st, struct ioslot *s, size_t padded)
{
	s->state = SLOT_BUSY;
	s->complete = false;
	s->res = 0;
	s->order = p->next_order++;
	s->submit_mono = mono_ns();
	s->first_mono = st->first_mono;
	s->offset = p->file_off;
	s->file_gen = p->file_gen;
	s->durable_op = p->cap.durability == WB_DURABLE_BLOCK;
	s->pending = s->durable_op ? 2 : 1;
	uint32_t idx = (uint32_t)(s - p->slots);
	struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);
	io_uring_prep_write_fixed(sqe, 0, s->buf, (unsigned)padded, p->file_off, (int)idx);
	sqe->flags |= IOSQE_FIXED_FILE;
	sqe->user_data = (OP_WRITE << OP_SHIFT) | idx;
	if (s->durable_op) {
		sqe->flags |= IOSQE_IO_LINK;
		sqe = io_uring_get_sqe(&p->ring);
		io_uring_prep_fsync(sqe, 0, IORING_FSYNC_DATASYNC);
		sqe->flags |= IOSQE_FIXED_FILE;
		sqe->user_data = (OP_FSYNC << OP_SHIFT) | idx;
	}
	io_uring_submit(&p->ring);
	p->file_off += padded;
	p->file_blocks++;
}

/* A DROP marker for blocks this stream lost to the disk, first in the next block written
 * (the stage keeps one spare slot for it). */
static void stage_lost_marker(struct wb_persister *p, struct stream *st)
{
	if (!st->lost_events || st->raw)
		return;
	memmove(&st->evstage[1], &st->evstage[0], (size_t)st->nrec * sizeof(*st->evstage));
	struct wb_event *m = &st->evstage[0];
	memset(m, 0, sizeof(*m));
	m->type = WB_EV_DROP;
	m->seq = st->lost_first_seq;
	m->ref = st->lost_last_seq;
	m->aux = st->lost_events;
	m->ts_recv = st->evstage[1].ts_recv;
	m->feed = st->evstage[1].feed;
	st->nrec++;
	st->lost_events = 0;
	p->local[S_DROP_MARKERS]++;
}

static void seal_stream(struct wb_persister *p, struct stream *st)
{
	if (!st->nrec)
		return;
	struct wb_cap_block_header h = { .stream = (uint16_t)(st - p->streams), .block_time_ns = real_ns() };
	const void *raw;
	size_t raw_len;
	uint32_t nloc = UINT32_MAX;
	struct ioslot *s = free_slot(p);
	if (file_ready(p, p->slot_cap))
		stage_lost_marker(p, st);
	if (st->raw) {
		h.kind = WB_BLK_RAW;
		h.records = st->nrec;
		h.ts_recv_min = h.ts_exch_min = st->raw_ts_min;
		h.ts_recv_max = h.ts_exch_max = st->raw_ts_max;
		raw = st->rawstage;
		raw_len = st->rawlen;
	} else {
		h.kind = WB_BLK_EVENTS;
		wb_block_describe_events(&h, st->evstage, st->nrec);
		wb_block_encode_events(st->evstage, st->nrec, p->scratch);
		raw = p->scratch;
		raw_len = 64 * (size_t)st->nrec;
	}
	p->local[S_BYTES_IN] += raw_len;
	if (p->fd < 0 || p->file_failed) {
		block_lost(p, &h);
		goto out_reset;
	}
	if (!st->raw) {
		nloc = wb_cap_collect_locates(st->evstage, st->nrec, p->locs, p->loc_bitmap);
		for (uint32_t i = 0; i < st->nrec; i++)
			if (st->evstage[i].type == WB_EV_SYMBOL)
				wb_capmap_add_dir(&p->dir, st->evstage[i].feed, st->evstage[i].locate,
						  (const char *)&st->evstage[i].aux);
	}
	h.block_index = p->file_blocks;
	size_t padded;
	if (wb_block_seal(p->cctx, p->cap.zstd_level, &h, raw, raw_len, s->buf, p->slot_cap, &padded)) {
		block_lost(p, &h);
		goto out_reset;
	}
	s->h = h;
	wb_capmap_add(&p->map, p->file_off, &h, p->locs, nloc);
	submit_block(p, st, s, padded);
out_reset:
	st->nrec = 0;
	st->rawlen = 0;
}

static uint32_t pull_events(struct wb_persister *p, struct stream *st)
{
	uint32_t got = 0;
	/* at most one block per turn: a producer that never lets the ring empty must not
	 * starve the other rings, completions, timers and stats */
	while (got < st->cap_rec) {
		uint32_t room = st->cap_rec - st->nrec;
		const struct wb_event *run;
		uint32_t n = wb_evring_peek(st->ev, &run, room);
		if (!n)
			break;
		if (!st->nrec)
			st->first_mono = mono_ns();
		memcpy(&st->evstage[st->nrec], run, (size_t)n * sizeof(*run));
		wb_evring_release(st->ev, n);
		st->nrec += n;
		got += n;
		if (st->nrec == st->cap_rec)
			seal_stream(p, st);
	}
	p->local[S_EVENTS_IN] += got;
	atomic_fetch_add_explicit(&st->consumed, got, memory_order_relaxed);
	return got;
}

static uint32_t pull_raw(struct wb_persister *p, struct stream *st)
{
	uint32_t got = 0;
	const struct wb_rawrec *r;
	while (got < 4096 && (r = wb_rawring_peek(st->rr))) {
		size_t need = wb_rawrec_bytes(r->len);
		if (st->rawlen + need > st->rawcap)
			seal_stream(p, st);
		if (!st->nrec) {
			st->first_mono = mono_ns();
			st->raw_ts_min = UINT64_MAX;
			st->raw_ts_max = 0;
		}
		memcpy(st->rawstage + st->rawlen, r, need);
		st->rawlen += need;
		st->nrec++;
		st->raw_ts_min = r->ts_recv < st->raw_ts_min ? r->ts_recv : st->raw_ts_min;
		st->raw_ts_max = r->ts_recv > st->raw_ts_max ? r->ts_recv : st->raw_ts_max;
		wb_rawring_release(st->rr, r);
		got++;
	}
	p->local[S_RAW_IN] += got;
	atomic_fetch_add_explicit(&st->consumed, got, memory_order_relaxed);
	return got;
}

static void timers(struct wb_persister *p, uint64_t now)
{
	uint64_t flush_ns = (p->cap.durability_ms ? p->cap.durability_ms : 200) * 1000000ull;
	uint64_t oldest = now;
	for (uint32_t i = 0; i < p->nstreams; i++) {
		struct stream *st = &p->streams[i];
		if (st->nrec && now - st->first_mono >= flush_ns)
			seal_stream(p, st);
		if (st->nrec && st->first_mono < oldest)
			oldest = st->first_mono;
	}
	if (p->cap.durability == WB_DURABLE_INTERVAL && p->fd >= 0 && !p->file_failed &&
	    !p->interval_fsync_inflight && now - p->last_fsync_mono >= p->cap.durability_ms * 1000000ull) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);
		if (sqe) {
			io_uring_prep_fsync(sqe, 0, IORING_FSYNC_DATASYNC);
			sqe->flags |= IOSQE_FIXED_FILE;
			sqe->user_data = 3ull << OP_SHIFT;
			p->interval_fsync_upto = p->local[S_BLOCKS_WRITTEN];
			p->fsync_oldest_mono = p->written_oldest_mono;
			p->written_oldest_mono = 0;
			p->interval_fsync_inflight = true;
			io_uring_submit(&p->ring);
		}
		p->last_fsync_mono = now;
	}
	/* an idle capture keeps its file: empty files every rotate_seconds help nobody */
	if (p->fd >= 0 && p->file_blocks && p->cap.rotate_seconds &&
	    now - p->file_open_mono >= p->cap.rotate_seconds * 1000000000ull)
		file_ready(p, 0);
	for (uint32_t i = 0; i < p->nslots; i++)
		if (p->slots[i].state == SLOT_BUSY && p->slots[i].first_mono < oldest)
			oldest = p->slots[i].first_mono;
	if (p->cap.durability == WB_DURABLE_NONE)
		p->local[S_DURABLE_LAG] = 0;
	else
		p->local[S_DURABLE_LAG] = now - oldest;
	update_latency_stats(p);
}

int wb_persister_set_live(struct wb_persister *p, const struct wb_capture_conf *c)
{
	if (!p || !c)
		return -EINVAL;
	if (c->zstd_level < -131072 || c->zstd_level > 22)
		return -ERANGE;
	atomic_store_explicit(&p->live.zstd_level, c->zstd_level, memory_order_relaxed);
	atomic_store_explicit(&p->live.durability, (int)c->durability, memory_order_relaxed);
	atomic_store_explicit(&p->live.durability_ms, c->durability_ms, memory_order_relaxed);
	atomic_store_explicit(&p->live.retention_hours, c->retention_hours, memory_order_relaxed);
	atomic_store_explicit(&p->live.retention_bytes, c->retention_bytes, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->live.gen, 1, memory_order_release);
	return 0;
}

/* Takes a reload's settings: the next block seals at the new level; durability and
 * retention apply from the next block, fsync and file. */
static void take_live(struct wb_persister *p)
{
	uint32_t gen = atomic_load_explicit(&p->live.gen, memory_order_acquire);
	if (gen == p->live_seen)
		return;
	p->live_seen = gen;
	p->cap.zstd_level = atomic_load_explicit(&p->live.zstd_level, memory_order_relaxed);
	p->cap.durability = (enum wb_durability)atomic_load_explicit(&p->live.durability, memory_order_relaxed);
	p->cap.durability_ms = atomic_load_explicit(&p->live.durability_ms, memory_order_relaxed);
	p->cap.retention_hours = atomic_load_explicit(&p->live.retention_hours, memory_order_relaxed);
	p->cap.retention_bytes = atomic_load_explicit(&p->live.retention_bytes, memory_order_relaxed);
	p->local[S_ZSTD_LEVEL] = (uint64_t)(int64_t)p->cap.zstd_level;
	p->local[S_DURABILITY] = (uint64_t)p->cap.durability;
}

static void *persister_main(void *arg)
{
	struct wb_persister *p = arg;
	uint64_t last_timer = 0;
	for (;;) {
		take_live(p);
		bool stopping = atomic_load_explicit(&p->stop, memory_order_acquire);
		uint64_t work = 0;
		for (uint32_t i = 0; i < p->nstreams; i++)
			work += p->streams[i].raw ? pull_raw(p, &p->streams[i]) : pull_events(p, &p->streams[i]);
		reap(p);
		uint64_t now = mono_ns();
		if (now - last_timer >= 1000000ull) {
			timers(p, now);
			publish(p);
			last_timer = now;
		}
		if (stopping && !work)
			break;
		if (!work) {
			struct timespec ts = { 0, 20000 };
			nanosleep(&ts, NULL);
		}
	}
	for (uint32_t i = 0; i < p->nstreams; i++)
		seal_stream(p, &p->streams[i]);
	close_file(p);
	p->local[S_DURABLE_LAG] = 0;
	update_latency_stats(p);
	publish(p);
	return NULL;
}

/* ---- API ---- */

static void recover_dir(struct wb_persister *p)
{
	char **names;
	size_t n;
	if (wb_cap_list_dir(p->cap.directory, &names, &n))
		return;
	char tag[WB_NAME_LEN + 3], path[PATH_MAX + 256];
	snprintf(tag, sizeof(tag), "-%s-", p->name);
	for (size_t i = 0; i < n; i++) {
		if (!strstr(names[i], tag))
			continue;
		snprintf(path, sizeof(path), "%s/%s", p->cap.directory, names[i]);
		/* the header names the writer exactly; the file name tag is only a first filter */
		struct wb_capfile *f;
		const char *why;
		if (wb_capfile_open(path, false, &f, &why) == 0) {
			bool mine = !strncmp(f->hdr.writer, p->name, sizeof(f->hdr.writer));
			wb_capfile_close(f);
			if (!mine)
				continue;
		}
		struct wb_cap_recovery r;
		int ret = wb_capfile_recover(path, &r);
		if (ret) {
			fprintf(stderr, "capture: recovery: %s: %s (%s); left as is\n", path, strerror(-ret),
				r.why ? r.why : "?");
			continue;
		}
		if (r.was_closed)
			continue;
		p->local[S_FILES_RECOVERED]++;
		p->local[S_RECOVERED_CUT] += r.cut_bytes;
		if (r.removed)
			fprintf(stderr, "capture: recovery: %s: removed, it held no block (%s)\n", path, r.why);
		else
			fprintf(stderr, "capture: recovery: %s: kept %llu blocks, cut %llu bytes at offset %llu (%s)\n",
				path, (unsigned long long)r.blocks_kept, (unsigned long long)r.cut_bytes,
				(unsigned long long)r.cut_at, r.why);
	}
	wb_cap_names_free(names, n);
}

int wb_persister_create(const struct wb_persister_opts *o, struct wb_persister **out)
{
	if (!o || !o->cap || !o->name || !out || o->nfeeds > WB_CAP_MAX_FEEDS || !o->cap->directory[0])
		return -EINVAL;
	if (o->cap->block_bytes < 4096 || o->cap->block_bytes > (64u << 20) || o->cap->zstd_level < -131072 ||
	    o->cap->zstd_level > 22)
		return -EINVAL;
	int ret;
	struct wb_persister *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cap = *o->cap;
	p->local[S_ZSTD_LEVEL] = (uint64_t)(int64_t)p->cap.zstd_level;
	p->local[S_DURABILITY] = (uint64_t)p->cap.durability;
	if (!p->cap.queue_depth)
		p->cap.queue_depth = 4;
	if (!p->cap.rotate_bytes)
		p->cap.rotate_bytes = 1ull << 30;
	snprintf(p->name, sizeof(p->name), "%s", o->name);
	p->core = o->core;
	p->on_durable = o->on_durable;
	p->on_durable_arg = o->on_durable_arg;
	p->fd = -1;
	struct wb_cap_file_header *fh = &p->fhdr_template;
	memcpy(fh->magic, WB_CAP_FILE_MAGIC, 8);
	fh->version = WB_CAP_VERSION;
	fh->header_bytes = WB_CAP_FILE_HEADER_BYTES;
	fh->session_id = real_ns() ^ ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)p;
	fh->nfeeds = o->nfeeds;
	fh->price_decimals = o->price_decimals;
	snprintf(fh->writer, sizeof(fh->writer), "%s", o->name);
	for (uint32_t i = 0; i < o->nfeeds; i++) {
		if (o->feed_names && o->feed_names[i])
			strncpy(fh->feeds[i].name, o->feed_names[i], sizeof(fh->feeds[i].name) - 1);
		if (o->feed_protocols && o->feed_protocols[i])
			strncpy(fh->feeds[i].protocol, o->feed_protocols[i], sizeof(fh->feeds[i].protocol) - 1);
	}
	if (mkdir(p->cap.directory, 0755) && errno != EEXIST) {
		ret = -errno;
		fprintf(stderr, "capture: %s: %s\n", p->cap.directory, strerror(errno));
		goto out_free;
	}
	recover_dir(p);

	p->nslots = p->cap.queue_depth;
	/* one spare event for a disk-loss marker; raw stages hold at least one jumbo packet */
	size_t stage = p->cap.block_bytes + 64 < 70000 ? 70000 : p->cap.block_bytes + 64;
	p->slot_cap = wb_block_dst_bound(stage);
	p->slots = calloc(p->nslots, sizeof(*p->slots));
	p->scratch = malloc(p->cap.block_bytes + 64);
	p->cctx = ZSTD_createCCtx();
	p->locs = malloc(65536 * sizeof(*p->locs));
	p->loc_bitmap = calloc(1024, sizeof(*p->loc_bitmap));
	if (!p->slots || !p->scratch || !p->cctx || !p->locs || !p->loc_bitmap) {
		ret = -ENOMEM;
		goto out_free;
	}
	struct iovec *iov = calloc(p->nslots, sizeof(*iov));
	if (!iov) {
		ret = -ENOMEM;
		goto out_free;
	}
	for (uint32_t i = 0; i < p->nslots; i++) {
		p->slots[i].buf = aligned_alloc(WB_CAP_ALIGN, p->slot_cap);
		if (!p->slots[i].buf) {
			free(iov);
			ret = -ENOMEM;
			goto out_free;
		}
		iov[i].iov_base = p->slots[i].buf;
		iov[i].iov_len = p->slot_cap;
	}
	ret = io_uring_queue_init(2 * p->nslots + 8, &p->ring, 0);
	if (ret) {
		free(iov);
		fprintf(stderr, "capture: io_uring setup: %s\n", strerror(-ret));
		goto out_free;
	}
	p->ring_ok = true;
	ret = io_uring_register_buffers(&p->ring, iov, p->nslots);
	free(iov);
	if (ret) {
		fprintf(stderr, "capture: io_uring buffer registration: %s\n", strerror(-ret));
		goto out_free;
	}
	int sparse = -1;
	ret = io_uring_register_files(&p->ring, &sparse, 1);
	if (ret) {
		fprintf(stderr, "capture: io_uring file registration: %s\n", strerror(-ret));
		goto out_free;
	}
	publish(p);
	*out = p;
	return 0;

out_free:
	wb_persister_destroy(p);
	return ret;
}

static int attach(struct wb_persister *p, struct wb_evring *ev, struct wb_rawring *rr, const char *name)
{
	if (!p || p->started || (!ev && !rr))
		return -EINVAL;
	if (p->nstreams == MAX_STREAMS)
		return -ENOSPC;
	struct stream *st = &p->streams[p->nstreams];
	memset(st, 0, sizeof(*st));
	snprintf(st->name, sizeof(st->name), "%s", name ? name : "ring");
	st->ev = ev;
	st->rr = rr;
	st->raw = rr != NULL;
	if (st->raw) {
		st->rawcap = p->cap.block_bytes < 70000 ? 70000 : p->cap.block_bytes;
		st->rawstage = malloc(st->rawcap);
		if (!st->rawstage)
			return -ENOMEM;
	} else {
		st->cap_rec = p->cap.block_bytes / 64;
		st->evstage = malloc(((size_t)st->cap_rec + 1) * sizeof(*st->evstage));
		if (!st->evstage)
			return -ENOMEM;
	}
	p->nstreams++;
	return 0;
}

int wb_persister_attach(struct wb_persister *p, struct wb_evring *ring, const char *ring_name)
{
	return attach(p, ring, NULL, ring_name);
}

int wb_persister_attach_raw(struct wb_persister *p, struct wb_rawring *ring, const char *ring_name)
{
	return attach(p, NULL, ring, ring_name);
}

int wb_persister_start(struct wb_persister *p)
{
	if (!p || p->started)
		return -EINVAL;
	atomic_store(&p->stop, false);
	int ret = pthread_create(&p->thread, NULL, persister_main, p);
	if (ret)
		return -ret;
	p->started = true;
	if (p->core != UINT_MAX) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(p->core, &set);
		ret = pthread_setaffinity_np(p->thread, sizeof(set), &set);
		if (ret)
			fprintf(stderr, "capture: %s: cannot pin to core %u: %s\n", p->name, p->core, strerror(ret));
	}
	char tname[16];
	snprintf(tname, sizeof(tname), "wbcap-%.9s", p->name);
	pthread_setname_np(p->thread, tname);
	return 0;
}

int wb_persister_stop(struct wb_persister *p)
{
	if (!p || !p->started)
		return -EINVAL;
	atomic_store_explicit(&p->stop, true, memory_order_release);
	pthread_join(p->thread, NULL);
	p->started = false;
	return p->local[S_WRITE_ERRORS] ? -EIO : 0;
}

void wb_persister_destroy(struct wb_persister *p)
{
	if (!p)
		return;
	if (p->started)
		wb_persister_stop(p);
	if (p->fd >= 0)
		close(p->fd);
	if (p->ring_ok)
		io_uring_queue_exit(&p->ring);
	for (uint32_t i = 0; p->slots && i < p->nslots; i++)
		free(p->slots[i].buf);
	for (uint32_t i = 0; i < p->nstreams; i++) {
		free(p->streams[i].evstage);
		free(p->streams[i].rawstage);
	}
	free(p->slots);
	free(p->scratch);
	free(p->locs);
	free(p->loc_bitmap);
	ZSTD_freeCCtx(p->cctx);
	wb_capmap_free(&p->map);
	wb_capmap_free(&p->dir);
	free(p);
}

void wb_persister_stats(const struct wb_persister *p, struct wb_persist_stats *out)
{
	uint64_t v[S_COUNT];
	for (int i = 0; i < S_COUNT; i++)
		v[i] = atomic_load_explicit(&((struct wb_persister *)p)->pub.v[i], memory_order_relaxed);
	memset(out, 0, sizeof(*out));
	out->events_in = v[S_EVENTS_IN];
	out->raw_packets_in = v[S_RAW_IN];
	out->bytes_in = v[S_BYTES_IN];
	out->bytes_out = v[S_BYTES_OUT];
	out->blocks_written = v[S_BLOCKS_WRITTEN];
	out->blocks_durable = v[S_BLOCKS_DURABLE];
	out->files_written = v[S_FILES_WRITTEN];
	out->files_removed_retention = v[S_FILES_REMOVED];
	out->write_errors = v[S_WRITE_ERRORS];
	out->events_lost_disk = v[S_EVENTS_LOST];
	out->durable_lag_ns = v[S_DURABLE_LAG];
	struct wb_histo_snap hs;
	memset(&hs, 0, sizeof(hs));
	wb_histo_merge(&hs, &p->durable_hist);
	out->book_to_durable_count = hs.total;
	out->book_to_durable_p50_ns = wb_histo_quantile(&hs, 0.50);
	out->book_to_durable_p99_ns = wb_histo_quantile(&hs, 0.99);
	out->book_to_durable_p999_ns = wb_histo_quantile(&hs, 0.999);
	out->book_to_durable_max_ns = hs.max;
	out->write_latency_ns_p50 = v[S_LAT_P50];
	out->write_latency_ns_p99 = v[S_LAT_P99];
	out->write_latency_ns_max = v[S_LAT_MAX];
	out->compression_ratio = v[S_BYTES_OUT] ? (double)v[S_BYTES_IN] / (double)v[S_BYTES_OUT] : 0.0;
	out->raw_packets_lost_disk = v[S_RAW_LOST];
	out->drop_markers_written = v[S_DROP_MARKERS];
	out->zstd_level = (int)(int64_t)v[S_ZSTD_LEVEL];
	out->durability = (int)v[S_DURABILITY];
	out->recovered_bytes_cut = v[S_RECOVERED_CUT];
	out->files_recovered = v[S_FILES_RECOVERED];
	out->direct_io = v[S_DIRECT_IO];
}

int wb_persister_ring_stats(const struct wb_persister *p, uint32_t i, struct wb_persist_ring_stats *out)
{
	if (!p || i >= p->nstreams)
		return -ENOENT;
	const struct stream *st = &p->streams[i];
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", st->name);
	out->raw = st->raw;
	out->consumed = atomic_load_explicit(&((struct stream *)st)->consumed, memory_order_relaxed);
	/* producer counters are plain fields: a torn read is impossible on 64-bit, staleness is fine */
	if (st->raw) {
		out->size = st->rr->size;
		out->occupancy = wb_rawring_used(st->rr);
		out->high_water = *(volatile const uint64_t *)&st->rr->high_water;
		out->pushed = *(volatile const uint64_t *)&st->rr->pushed;
		out->drop_events = *(volatile const uint64_t *)&st->rr->drop_packets;
		out->drop_batches = out->drop_events;
	} else {
		out->size = st->ev->size;
		out->occupancy = wb_evring_count(st->ev);
		out->high_water = *(volatile const uint64_t *)&st->ev->high_water;
		out->pushed = *(volatile const uint64_t *)&st->ev->pushed;
		out->drop_events = *(volatile const uint64_t *)&st->ev->drop_events;
		out->drop_batches = *(volatile const uint64_t *)&st->ev->drop_batches;
	}
	return 0;
}
