/* The persister: one thread, pinned to its core, drains the event rings (and optional
 * raw-packet rings) of one or more workers into zstd-compressed capture files written
 * with io_uring. Disk trouble never reaches the workers: what cannot be written is
 * counted and marked in the capture. Format: docs/capture-format.md.
 * A block is sealed when it holds block_bytes of events, or when its oldest event has
 * waited durability_ms (200 ms when 0), whatever the durability mode. */
#ifndef WB_CAPTURE_H
#define WB_CAPTURE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "evring.h"
#include "rawring.h"

struct wb_persister;

/* A block the persister has made durable (durability "block": after its fdatasync;
 * other modes: when its file is closed). Called on the persister thread, in write order. */
struct wb_persist_durable {
	uint16_t stream;   /* attach order, events and raw rings counted together */
	uint8_t kind;      /* enum wb_cap_block_kind */
	uint32_t records;
	uint64_t seq_first, seq_last;
	uint64_t offset;   /* of the block in its file */
	const char *file;  /* full path */
};

struct wb_persister_opts {
	const struct wb_capture_conf *cap;
	const char *name;
	unsigned core; /* pin; UINT_MAX = don't pin */
	uint32_t nfeeds;
	const char *const *feed_names;
	const char *const *feed_protocols;
	uint8_t price_decimals;
	/* optional */
	void (*on_durable)(void *arg, const struct wb_persist_durable *d);
	void *on_durable_arg;
};

/* Recovers torn tails of this persister's files in the directory first (files whose name
 * carries "-NAME-"), logging what it cut to stderr. Create every persister sharing a
 * directory before starting any. */
int wb_persister_create(const struct wb_persister_opts *o, struct wb_persister **out);
int wb_persister_attach(struct wb_persister *p, struct wb_evring *ring, const char *ring_name);
int wb_persister_attach_raw(struct wb_persister *p, struct wb_rawring *ring, const char *ring_name);
int wb_persister_start(struct wb_persister *p);
/* Drains every attached ring to empty, writes the last blocks, fdatasyncs, closes the
 * file with its index, joins the thread. The producers must have stopped. Returns 0, or
 * -EIO when some block could not be written during the run (see the stats). */
int wb_persister_stop(struct wb_persister *p);
void wb_persister_destroy(struct wb_persister *p);
/* A reload's live capture settings (zstd_level, durability, durability_ms,
 * retention_bytes, retention_hours), from any thread; the persister takes them before its
 * next block. -ERANGE for a zstd level zstd does not have. */
int wb_persister_set_live(struct wb_persister *p, const struct wb_capture_conf *c);

struct wb_persist_stats {
	uint64_t events_in, raw_packets_in, bytes_in, bytes_out, blocks_written, blocks_durable, files_written,
		files_removed_retention, write_errors, events_lost_disk, durable_lag_ns, write_latency_ns_p50,
		write_latency_ns_p99, write_latency_ns_max;
	double compression_ratio; /* bytes_in / bytes_out */
	uint64_t raw_packets_lost_disk;
	uint64_t drop_markers_written; /* DROP events added for blocks lost to disk errors */
	uint64_t recovered_bytes_cut;  /* by create's recovery */
	uint64_t files_recovered;
	uint64_t direct_io;            /* 1 while the current file uses O_DIRECT */
	int zstd_level;                /* in force (a reload may have changed it) */
	int durability;                /* enum wb_durability in force */
	/* Book to durable: from the persister taking a block's first event off its ring
	 * (microseconds after the worker updated the book) to the fdatasync that made the
	 * block durable. Per block with durability block, per fdatasync (its oldest block)
	 * with durability interval; empty with durability none. */
	uint64_t book_to_durable_count, book_to_durable_p50_ns, book_to_durable_p99_ns, book_to_durable_p999_ns,
		book_to_durable_max_ns;
};
void wb_persister_stats(const struct wb_persister *p, struct wb_persist_stats *out);

struct wb_persist_ring_stats {
	char name[WB_NAME_LEN];
	bool raw;
	uint64_t size;       /* slots (events) or bytes (raw) */
	uint64_t occupancy;  /* now, same unit */
	uint64_t high_water; /* producer's maximum, same unit */
	uint64_t pushed;     /* accepted by the ring */
	uint64_t drop_events, drop_batches; /* ring full: events (raw: packets), pushes */
	uint64_t consumed;   /* records taken by the persister */
};
/* i < number of attached rings, else -ENOENT. From any thread. */
int wb_persister_ring_stats(const struct wb_persister *p, uint32_t i, struct wb_persist_ring_stats *out);

#endif
