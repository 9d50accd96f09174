/* MoldUDP64 downstream framing (PROTOCOLS.md section 1): header and message-block iteration. */
#ifndef WB_MOLD_H
#define WB_MOLD_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define WB_MOLD_HDR_LEN 20
#define WB_MOLD_SESSION_LEN 10
#define WB_MOLD_HEARTBEAT 0x0000
#define WB_MOLD_END_OF_SESSION 0xFFFF

struct wb_mold_hdr {
	char session[WB_MOLD_SESSION_LEN]; /* opaque, not NUL-terminated */
	uint64_t seq;                      /* sequence of the first block; next expected for hb/eos */
	uint16_t count;                    /* blocks; 0 heartbeat, 0xFFFF end of session */
};

/* Walks the message blocks of one packet by their wire length. */
struct wb_mold_iter {
	const uint8_t *p;
	const uint8_t *end;
	uint16_t left; /* blocks still announced by the header */
};

/* Parses the 20-byte header; -EMSGSIZE when the packet is shorter. On success *it
 * is positioned at the first block (left = 0 for heartbeat and end of session). */
int wb_mold_parse(const uint8_t *pkt, size_t len, struct wb_mold_hdr *hdr, struct wb_mold_iter *it);

/* Next block: returns 1 with *msg and *len set, 0 when all announced blocks were read,
 * -EMSGSIZE when a block header or body runs past the packet (the rest is unusable). */
static inline int wb_mold_next(struct wb_mold_iter *it, const uint8_t **msg, uint16_t *len)
{
	if (it->left == 0)
		return 0;
	if (it->end - it->p < 2)
		return -EMSGSIZE;
	uint16_t l = (uint16_t)((it->p[0] << 8) | it->p[1]);
	if (it->end - it->p - 2 < (ptrdiff_t)l)
		return -EMSGSIZE;
	*msg = it->p + 2;
	*len = l;
	it->p += 2 + (size_t)l;
	it->left--;
	return 1;
}

/* Builds a request packet (section 1.2) into buf (>= 20 bytes); returns its length. */
size_t wb_mold_build_request(uint8_t *buf, const char session[WB_MOLD_SESSION_LEN], uint64_t seq, uint16_t count);

/* Bytes ahead the file walk prefetches (docs/performance.md, "Fourth pass": the scan). */
#define WB_ITCH_FILE_PREFETCH 2048

/* Nasdaq file framing for offline use: u16 BE length then the message. Same iterator
 * contract as wb_mold_next, without a block count. */
struct wb_itch_file_iter {
	const uint8_t *p;
	const uint8_t *end;
};
static inline int wb_itch_file_next(struct wb_itch_file_iter *it, const uint8_t **msg, uint16_t *len)
{
	if (it->p == it->end)
		return 0;
	if (it->end - it->p < 2)
		return -EMSGSIZE;
	uint16_t l = (uint16_t)((it->p[0] << 8) | it->p[1]);
	if (it->end - it->p - 2 < (ptrdiff_t)l)
		return -EMSGSIZE;
	*msg = it->p + 2;
	*len = l;
	/* each length gives the next block's address, a chain of dependent loads: start the
	 * bytes 2 KB on before the walk reaches them (a prefetch never faults, even past end) */
	__builtin_prefetch(it->p + WB_ITCH_FILE_PREFETCH);
	it->p += 2 + (size_t)l;
	return 1;
}

#endif
