/* Block codec: the columnar, delta-encoded layout of event blocks, compression and the
 * checksummed block header (docs/capture-format.md, "Blocks"). Shared by the writer and
 * every reader. */
#ifndef WB_BLOCK_H
#define WB_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "format.h"

/* Columns for n events into out (exactly 64 * n bytes). */
void wb_block_encode_events(const struct wb_event *ev, uint32_t n, uint8_t *out);
/* The inverse; len must be 64 * n. Returns 0 or -EBADMSG. */
int wb_block_decode_events(const uint8_t *in, size_t len, uint32_t n, struct wb_event *ev);

/* Header bounds for the records of an event block (seq, times), from the events. */
void wb_block_describe_events(struct wb_cap_block_header *h, const struct wb_event *ev, uint32_t n);

/* Compresses raw into dst + 128 (codec zstd at level, or none when zstd saves less than 1/32),
 * completes h (sizes, checksums), copies it to dst, zero-pads to 4096. dst_cap must be at
 * least wb_block_dst_bound(raw_bytes). *padded gets the bytes to write. */
struct ZSTD_CCtx_s;
int wb_block_seal(struct ZSTD_CCtx_s *cctx, int level, struct wb_cap_block_header *h, const void *raw,
		  size_t raw_bytes, uint8_t *dst, size_t dst_cap, size_t *padded);
size_t wb_block_dst_bound(size_t raw_bytes);

/* Header checks, without and with the payload. why names the failure. -EBADMSG on failure. */
int wb_block_check_header(const struct wb_cap_block_header *h, const char **why);
int wb_block_check_payload(const struct wb_cap_block_header *h, const void *payload, const char **why);
/* Payload -> raw bytes (out_cap >= h->raw_bytes). */
struct ZSTD_DCtx_s;
int wb_block_decompress(struct ZSTD_DCtx_s *dctx, const struct wb_cap_block_header *h, const void *payload,
			void *out, size_t out_cap, const char **why);

uint64_t wb_cap_hash(const void *p, size_t n);
void wb_cap_file_header_seal(struct wb_cap_file_header *fh);
int wb_cap_file_header_check(const struct wb_cap_file_header *fh, const char **why);

#endif
