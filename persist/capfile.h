/* Reading capture files: open and check the file header, walk blocks (through the
 * file's INDEX when it was closed cleanly, by scanning headers otherwise), read and check
 * a block, recover a torn tail, build and parse the per-file index. */
#ifndef WB_CAPFILE_H
#define WB_CAPFILE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"

struct ZSTD_DCtx_s;

struct wb_capfile {
	int fd;
	char path[PATH_MAX];
	uint64_t size;
	struct wb_cap_file_header hdr;
	bool closed;          /* ends with a valid END block */
	uint64_t index_offset; /* of the INDEX block when closed, else 0 */
};

/* One block's place and description. nloc == UINT32_MAX: locates unknown (no index). */
struct wb_capblk_info {
	uint64_t offset;
	struct wb_cap_block_header h;
	uint32_t loc_off, nloc;
};

struct wb_capmap {
	struct wb_capblk_info *blk;
	size_t n, cap;
	uint16_t *locs;
	size_t nlocs, locs_cap;
	struct wb_cap_dir_entry *dir;
	size_t ndir, dir_cap;
	bool from_index;
	/* problems met while scanning without an index: damaged headers, torn tail */
	uint64_t bad_headers;
	uint64_t torn_offset; /* where an unreadable tail starts, or 0 */
	const char *torn_why;
};

/* A read block: header, stored payload, and decompressed payload (buffers grow). */
struct wb_capblock {
	uint64_t offset;
	struct wb_cap_block_header h;
	uint8_t *stored;
	size_t stored_cap;
	uint8_t *raw;
	size_t raw_cap;
};

int wb_capfile_open(const char *path, bool writable, struct wb_capfile **out, const char **why);
void wb_capfile_close(struct wb_capfile *f);

/* The header at off: 0; -ENODATA at the end of the file; -EPIPE if the block would run
 * past the end (torn); -EBADMSG with why for a damaged header. */
int wb_capfile_read_header(struct wb_capfile *f, uint64_t off, struct wb_cap_block_header *h, const char **why);
/* Header, payload checksum and decompression of the block at off. */
int wb_capfile_read_block(struct wb_capfile *f, uint64_t off, struct wb_capblock *b, struct ZSTD_DCtx_s *dctx,
			  const char **why);
void wb_capblock_free(struct wb_capblock *b);
/* After a damaged header at off: the next aligned offset holding a valid header, or the
 * file size. */
uint64_t wb_capfile_resync(struct wb_capfile *f, uint64_t off);

/* The file's data blocks (EVENTS and RAW) in file order, with the directory. */
int wb_capfile_map(struct wb_capfile *f, struct wb_capmap *m);
void wb_capmap_free(struct wb_capmap *m);
/* Appends one block description (locs may be NULL with nloc UINT32_MAX). */
int wb_capmap_add(struct wb_capmap *m, uint64_t offset, const struct wb_cap_block_header *h, const uint16_t *locs,
		  uint32_t nloc);
int wb_capmap_add_dir(struct wb_capmap *m, uint8_t feed, uint16_t locate, const char symbol[8]);
/* The INDEX payload for m (malloc'ed). */
int wb_capmap_serialize(const struct wb_capmap *m, uint8_t **buf, size_t *len);
int wb_capmap_parse(struct wb_capmap *m, const uint8_t *buf, size_t len);

/* Recovery of one file not closed cleanly: keeps the valid prefix of blocks, truncates
 * the rest, and closes the file with an INDEX and an END block. cut_bytes and cut_at say
 * what was removed (0 = nothing), why the reason. Returns 0 or a negative errno. */
struct wb_cap_recovery {
	uint64_t cut_bytes, cut_at, blocks_kept;
	const char *why;
	bool was_closed;
	bool removed; /* the file had no valid header and no data: deleted */
};
int wb_capfile_recover(const char *path, struct wb_cap_recovery *r);

/* Appends INDEX (from m) and END blocks at off with pwrite; the new size goes to *end. */
int wb_capfile_write_trailer(int fd, uint64_t off, const struct wb_capmap *m, uint64_t *end);

/* The capture files in dir, sorted by name (= by time). Free with wb_cap_names_free. */
int wb_cap_list_dir(const char *dir, char ***names, size_t *n);
void wb_cap_names_free(char **names, size_t n);

/* Distinct locates of an event array, sorted, into locs (room for 65536). */
uint32_t wb_cap_collect_locates(const struct wb_event *ev, uint32_t n, uint16_t *locs, uint64_t *bitmap);

/* A time bound as typed on a command line: ISO 8601 ("2026-11-20T14:30:00.5Z", offsets
 * allowed) is a receive time, ns since the epoch; plain digits (ns) or HH:MM:SS[.f] are an
 * exchange time, ns since midnight. 0 or -EINVAL. */
enum wb_cap_clock { WB_CAP_CLOCK_NONE = 0, WB_CAP_CLOCK_RECV = 1, WB_CAP_CLOCK_EXCH = 2 };
struct wb_cap_time {
	enum wb_cap_clock clock;
	uint64_t ns;
};
int wb_cap_parse_time(const char *s, struct wb_cap_time *t);

/* An event type as the capture readers print it ("ORDER_ADD"), "UNKNOWN" otherwise. */
const char *wb_cap_event_type_name(uint8_t type);

/* Reads the symbol directory of every closed file of names[0..n) in dir, calling cb for
 * each (feed, locate, symbol) so that a reader knows the names before the first event;
 * *decimals gets the first file's price precision. Files that do not open are skipped. */
typedef void (*wb_cap_symbol_fn)(void *arg, uint8_t feed, uint16_t locate, const char symbol[8]);
void wb_cap_read_directories(const char *dir, char *const *names, size_t n, wb_cap_symbol_fn cb, void *arg,
			     unsigned *decimals);

#endif
