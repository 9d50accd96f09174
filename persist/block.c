/* Block codec. Event blocks are transposed into per-field columns, and the fields that
 * move slowly (times, sequence, order reference, price) are stored as zigzag deltas, so
 * zstd sees long runs of small, similar bytes: that is what makes level 1 fast. */
#include "block.h"

#include <errno.h>
#include <string.h>
#include <xxhash.h>
#include <zstd.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the capture format is little-endian; add byte swapping for this target"
#endif

static inline uint64_t zigzag(uint64_t v, uint64_t prev)
{
	uint64_t d = v - prev;
	return (d << 1) ^ (uint64_t)((int64_t)d >> 63);
}

static inline uint64_t unzigzag(uint64_t z, uint64_t prev)
{
	return prev + ((z >> 1) ^ (0 - (z & 1)));
}

uint64_t wb_cap_hash(const void *p, size_t n)
{
	return XXH64(p, n, 0);
}

/* Each column is stored as byte planes: byte 0 of every value, then byte 1, ... The high
 * planes of small deltas are long zero runs, which zstd matches in a few long steps. */
/* Column order, offsets in multiples of n bytes (docs/capture-format.md, "Event blocks"). */
enum col_kind { COL_DELTA, COL_RAW };
struct col {
	size_t off;         /* offsetof in struct wb_event */
	unsigned width;     /* bytes */
	enum col_kind kind;
};

static const struct col cols[] = {
	{ offsetof(struct wb_event, ts_exch), 8, COL_DELTA },
	{ offsetof(struct wb_event, ts_recv), 8, COL_DELTA },
	{ offsetof(struct wb_event, seq), 8, COL_DELTA },
	{ offsetof(struct wb_event, ref), 8, COL_DELTA },
	{ offsetof(struct wb_event, aux), 8, COL_RAW },
	{ offsetof(struct wb_event, price), 8, COL_DELTA },
	{ offsetof(struct wb_event, shares), 4, COL_RAW },
	{ offsetof(struct wb_event, level_shares), 4, COL_RAW },
	{ offsetof(struct wb_event, locate), 2, COL_RAW },
	{ offsetof(struct wb_event, level_orders), 2, COL_RAW },
	{ offsetof(struct wb_event, type), 1, COL_RAW },
	{ offsetof(struct wb_event, side), 1, COL_RAW },
	{ offsetof(struct wb_event, feed), 1, COL_RAW },
	{ offsetof(struct wb_event, flags), 1, COL_RAW },
};

#define COL_CHUNK 1024 /* values staged per pass: stays in L1 */

void wb_block_encode_events(const struct wb_event *ev, uint32_t n, uint8_t *out)
{
	uint64_t tmp[COL_CHUNK];
	size_t base = 0;
	for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++) {
		const struct col *col = &cols[c];
		uint64_t prev = 0;
		for (uint32_t i0 = 0; i0 < n; i0 += COL_CHUNK) {
			uint32_t m = n - i0 < COL_CHUNK ? n - i0 : COL_CHUNK;
			for (uint32_t i = 0; i < m; i++) {
				uint64_t v = 0;
				memcpy(&v, (const uint8_t *)&ev[i0 + i] + col->off, col->width);
				if (col->kind == COL_DELTA) {
					tmp[i] = zigzag(v, prev);
					prev = v;
				} else {
					tmp[i] = v;
				}
			}
			/* planes of a chunk land at their place in the whole column's planes */
			for (unsigned k = 0; k < col->width; k++) {
				uint8_t *plane = out + base * n + (size_t)k * n + i0;
				for (uint32_t i = 0; i < m; i++)
					plane[i] = (uint8_t)(tmp[i] >> (8 * k));
			}
		}
		base += col->width;
	}
}

int wb_block_decode_events(const uint8_t *in, size_t len, uint32_t n, struct wb_event *ev)
{
	if (len != 64 * (size_t)n)
		return -EBADMSG;
	uint64_t tmp[COL_CHUNK];
	size_t base = 0;
	memset(ev, 0, (size_t)n * sizeof(*ev));
	for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++) {
		const struct col *col = &cols[c];
		uint64_t prev = 0;
		for (uint32_t i0 = 0; i0 < n; i0 += COL_CHUNK) {
			uint32_t m = n - i0 < COL_CHUNK ? n - i0 : COL_CHUNK;
			memset(tmp, 0, m * sizeof(*tmp));
			for (unsigned k = 0; k < col->width; k++) {
				const uint8_t *plane = in + base * n + (size_t)k * n + i0;
				for (uint32_t i = 0; i < m; i++)
					tmp[i] |= (uint64_t)plane[i] << (8 * k);
			}
			for (uint32_t i = 0; i < m; i++) {
				uint64_t v = tmp[i];
				if (col->kind == COL_DELTA) {
					v = unzigzag(v, prev);
					prev = v;
				}
				memcpy((uint8_t *)&ev[i0 + i] + col->off, &v, col->width);
			}
		}
		base += col->width;
	}
	return 0;
}

void wb_block_describe_events(struct wb_cap_block_header *h, const struct wb_event *ev, uint32_t n)
{
	h->records = n;
	if (!n)
		return;
	h->seq_first = ev[0].seq;
	h->seq_last = ev[n - 1].seq;
	uint64_t rmin = UINT64_MAX, rmax = 0, emin = UINT64_MAX, emax = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t r = ev[i].ts_recv, e = ev[i].ts_exch;
		rmin = r < rmin ? r : rmin;
		rmax = r > rmax ? r : rmax;
		emin = e < emin ? e : emin;
		emax = e > emax ? e : emax;
	}
	h->ts_recv_min = rmin;
	h->ts_recv_max = rmax;
	h->ts_exch_min = emin;
	h->ts_exch_max = emax;
}

size_t wb_block_dst_bound(size_t raw_bytes)
{
	return wb_cap_align(sizeof(struct wb_cap_block_header) + ZSTD_compressBound(raw_bytes));
}

int wb_block_seal(ZSTD_CCtx *cctx, int level, struct wb_cap_block_header *h, const void *raw, size_t raw_bytes,
		  uint8_t *dst, size_t dst_cap, size_t *padded)
{
	uint8_t *payload = dst + sizeof(*h);
	size_t room = dst_cap - sizeof(*h);
	size_t stored = 0;
	h->codec = WB_CODEC_NONE;
	if (raw_bytes && cctx) {
		size_t z = ZSTD_compressCCtx(cctx, payload, room, raw, raw_bytes, level);
		/* saving under 1/32 is not worth a decompression for every reader */
		if (!ZSTD_isError(z) && z < raw_bytes - raw_bytes / 32) {
			stored = z;
			h->codec = WB_CODEC_ZSTD;
		}
	}
	if (h->codec == WB_CODEC_NONE) {
		if (raw_bytes > room)
			return -ENOSPC;
		if (raw_bytes)
			memcpy(payload, raw, raw_bytes);
		stored = raw_bytes;
	}
	h->magic = WB_CAP_BLOCK_MAGIC;
	h->version = WB_CAP_VERSION;
	h->layout = 1;
	h->stored_bytes = (uint32_t)stored;
	h->raw_bytes = (uint32_t)raw_bytes;
	h->padded_bytes = (uint32_t)wb_cap_align(sizeof(*h) + stored);
	if (h->padded_bytes > dst_cap)
		return -ENOSPC;
	h->payload_xxh64 = XXH64(payload, stored, 0);
	h->header_xxh64 = XXH64(h, offsetof(struct wb_cap_block_header, header_xxh64), 0);
	memcpy(dst, h, sizeof(*h));
	memset(payload + stored, 0, h->padded_bytes - sizeof(*h) - stored);
	*padded = h->padded_bytes;
	return 0;
}

int wb_block_check_header(const struct wb_cap_block_header *h, const char **why)
{
	if (h->magic != WB_CAP_BLOCK_MAGIC) {
		*why = "bad block magic";
		return -EBADMSG;
	}
	if (h->header_xxh64 != XXH64(h, offsetof(struct wb_cap_block_header, header_xxh64), 0)) {
		*why = "block header checksum mismatch";
		return -EBADMSG;
	}
	if (h->version != WB_CAP_VERSION) {
		*why = "unsupported block version";
		return -EBADMSG;
	}
	if (h->padded_bytes < sizeof(*h) || h->padded_bytes % WB_CAP_ALIGN ||
	    h->stored_bytes > h->padded_bytes - sizeof(*h)) {
		*why = "inconsistent block lengths";
		return -EBADMSG;
	}
	if (h->codec > WB_CODEC_ZSTD || h->kind < WB_BLK_EVENTS || h->kind > WB_BLK_END) {
		*why = "unknown block kind or codec";
		return -EBADMSG;
	}
	if (h->kind == WB_BLK_EVENTS && h->raw_bytes != 64ull * h->records) {
		*why = "event block size does not match its record count";
		return -EBADMSG;
	}
	return 0;
}

int wb_block_check_payload(const struct wb_cap_block_header *h, const void *payload, const char **why)
{
	if (XXH64(payload, h->stored_bytes, 0) != h->payload_xxh64) {
		*why = "payload checksum mismatch";
		return -EBADMSG;
	}
	return 0;
}

int wb_block_decompress(ZSTD_DCtx *dctx, const struct wb_cap_block_header *h, const void *payload, void *out,
			size_t out_cap, const char **why)
{
	if (out_cap < h->raw_bytes) {
		*why = "block larger than the reader's buffer";
		return -EMSGSIZE;
	}
	if (h->codec == WB_CODEC_NONE) {
		if (h->stored_bytes != h->raw_bytes) {
			*why = "stored size differs from raw size";
			return -EBADMSG;
		}
		memcpy(out, payload, h->raw_bytes);
		return 0;
	}
	size_t r = ZSTD_decompressDCtx(dctx, out, h->raw_bytes, payload, h->stored_bytes);
	if (ZSTD_isError(r) || r != h->raw_bytes) {
		*why = "zstd decompression failed";
		return -EBADMSG;
	}
	return 0;
}

void wb_cap_file_header_seal(struct wb_cap_file_header *fh)
{
	fh->header_xxh64 = XXH64(fh, offsetof(struct wb_cap_file_header, header_xxh64), 0);
}

int wb_cap_file_header_check(const struct wb_cap_file_header *fh, const char **why)
{
	if (memcmp(fh->magic, WB_CAP_FILE_MAGIC, 8)) {
		*why = "not a wirebook capture (bad file magic)";
		return -EBADMSG;
	}
	if (fh->header_xxh64 != XXH64(fh, offsetof(struct wb_cap_file_header, header_xxh64), 0)) {
		*why = "file header checksum mismatch";
		return -EBADMSG;
	}
	if (fh->version != WB_CAP_VERSION || fh->header_bytes != WB_CAP_FILE_HEADER_BYTES) {
		*why = "unsupported capture format version";
		return -EBADMSG;
	}
	return 0;
}
