/* The capture file format (docs/capture-format.md is the normative text): a file header,
 * then blocks, each a 128-byte header and a compressed payload, padded to 4096 bytes so
 * blocks can be written with O_DIRECT. A cleanly closed file ends with an INDEX block and
 * an END block. Everything is little-endian. */
#ifndef WB_FORMAT_H
#define WB_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define WB_CAP_FILE_MAGIC "WBCAPF\r\n"   /* 8 bytes, no NUL */
#define WB_CAP_VERSION 1
#define WB_CAP_ALIGN 4096
#define WB_CAP_FILE_HEADER_BYTES 8192
#define WB_CAP_BLOCK_MAGIC 0x4B425057u   /* "WPBK" read as little-endian bytes */
#define WB_CAP_MAX_FEEDS 64
#define WB_CAP_SUFFIX ".wbcap"

enum wb_cap_block_kind {
	WB_BLK_EVENTS = 1, /* struct wb_event records, columnar layout */
	WB_BLK_RAW = 2,    /* struct wb_rawrec records with payloads */
	WB_BLK_INDEX = 3,  /* time and symbol index of the file's blocks */
	WB_BLK_END = 4,    /* clean close marker, empty payload */
};

enum wb_cap_codec { WB_CODEC_NONE = 0, WB_CODEC_ZSTD = 1 };

struct wb_cap_feed_desc {
	char name[32];     /* NUL padded */
	char protocol[32]; /* NUL padded */
};

/* The first 8192 bytes of a file. */
struct wb_cap_file_header {
	char magic[8];             /* WB_CAP_FILE_MAGIC */
	uint32_t version;          /* WB_CAP_VERSION */
	uint32_t header_bytes;     /* 8192: where the first block starts */
	uint64_t session_id;       /* random per writer start; sequence continuity holds within it */
	uint32_t file_index;       /* 0, 1, 2... within the session */
	uint32_t nfeeds;
	uint64_t created_ns;       /* UNIX epoch ns */
	uint8_t price_decimals;    /* 4 for ITCH and IEX */
	uint8_t reserved0[7];
	char writer[32];           /* persister name, NUL padded */
	uint8_t reserved1[48];
	struct wb_cap_feed_desc feeds[WB_CAP_MAX_FEEDS];
	uint8_t reserved2[WB_CAP_FILE_HEADER_BYTES - 128 - 64 * WB_CAP_MAX_FEEDS - 8];
	uint64_t header_xxh64;     /* XXH64(seed 0) of the 8184 bytes before it */
};

_Static_assert(sizeof(struct wb_cap_file_header) == WB_CAP_FILE_HEADER_BYTES, "file header size");

struct wb_cap_block_header {
	uint32_t magic;         /* WB_CAP_BLOCK_MAGIC */
	uint8_t version;        /* WB_CAP_VERSION */
	uint8_t kind;           /* enum wb_cap_block_kind */
	uint8_t codec;          /* enum wb_cap_codec */
	uint8_t layout;         /* 1 */
	uint32_t stored_bytes;  /* payload bytes after this header, as stored (compressed) */
	uint32_t raw_bytes;     /* payload bytes after decompression */
	uint32_t records;       /* events, packets, or index entries */
	uint16_t stream;        /* the writer's ring number: sequence continuity is per stream */
	uint16_t flags;
	uint32_t block_index;   /* 0, 1, 2... within the file */
	uint32_t padded_bytes;  /* header + payload + zero padding: a multiple of 4096 */
	uint64_t seq_first;     /* seq of the first and last record (events) */
	uint64_t seq_last;
	uint64_t ts_recv_min;   /* over the records, UNIX epoch ns */
	uint64_t ts_recv_max;
	uint64_t ts_exch_min;   /* over the records, feed clock (ITCH: ns since midnight) */
	uint64_t ts_exch_max;
	uint64_t block_time_ns; /* when the writer sealed the block, UNIX epoch ns */
	uint8_t reserved[24];
	uint64_t payload_xxh64; /* XXH64(seed 0) of the stored payload */
	uint64_t header_xxh64;  /* XXH64(seed 0) of the 120 bytes before it */
};

_Static_assert(sizeof(struct wb_cap_block_header) == 128, "block header size");

/* INDEX payload: u32 nblocks, u32 ndir, then nblocks entries (each followed by its
 * nlocates u16 locates, padded to 8 bytes), then ndir directory entries. */
struct wb_cap_index_entry {
	uint64_t offset;        /* of the block header in the file */
	uint32_t padded_bytes;
	uint32_t records;
	uint16_t stream;
	uint8_t kind;
	uint8_t reserved;
	uint32_t nlocates;      /* distinct locates in the block (any feed) */
	uint64_t seq_first, seq_last;
	uint64_t ts_recv_min, ts_recv_max;
	uint64_t ts_exch_min, ts_exch_max;
};

_Static_assert(sizeof(struct wb_cap_index_entry) == 72, "index entry size");

struct wb_cap_dir_entry {
	uint8_t feed;
	uint8_t reserved;
	uint16_t locate;
	uint32_t reserved2;
	char symbol[8];         /* raw, space padded */
};

_Static_assert(sizeof(struct wb_cap_dir_entry) == 16, "directory entry size");

static inline uint64_t wb_cap_align(uint64_t n)
{
	return (n + WB_CAP_ALIGN - 1) & ~(uint64_t)(WB_CAP_ALIGN - 1);
}

#endif
