/* libFuzzer target: the input is one MoldUDP64 packet. Every block is decoded as ITCH; the
 * same bytes are also walked with the file framing and decoded as one bare message.
 * Beyond "no crash, no out-of-bounds read" (ASan), each decoded message must re-encode to
 * the exact bytes it came from, and each error must match the length table; the peek a
 * worker's hint uses must agree with the decode on its verdict and on the fields it gives. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "itch.h"
#include "mold.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks one message's verdict against the length table, and the round trip. */
static void check_message(const uint8_t *msg, size_t len)
{
	struct wb_itch_msg m, pk;
	uint8_t again[64];
	int r = wb_itch_decode(msg, len, &m);

	/* the hint's peek gives the decode's verdict and, on success, its fields */
	if (wb_itch_peek(msg, len, &pk) != r)
		abort();
	if (r == WB_ITCH_OK && (pk.type != m.type || pk.locate != m.locate))
		abort();
	if (r == WB_ITCH_OK && strchr("AFECXDU", m.type) && pk.u.del.ref != m.u.del.ref)
		abort();
	if (r == WB_ITCH_OK && m.type == 'U' && pk.u.replace.new_ref != m.u.replace.new_ref)
		abort();

	if (len == 0) {
		if (r != WB_ITCH_ERR_EMPTY)
			abort();
		return;
	}
	size_t need = wb_itch_msg_len(msg[0]);
	if (need == 0) {
		if (r != WB_ITCH_ERR_UNKNOWN)
			abort();
		return;
	}
	if (len < need) {
		if (r != WB_ITCH_ERR_SHORT)
			abort();
		return;
	}
	if (r != WB_ITCH_OK || (uint8_t)m.type != msg[0])
		abort();
	/* Every byte of the layout lands in a field: encode gives the input back. */
	if (need > sizeof(again) || wb_itch_encode(&m, again) != need || memcmp(again, msg, need) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wb_mold_hdr hdr;
	struct wb_mold_iter it;
	struct wb_itch_file_iter fit;
	const uint8_t *msg;
	uint16_t len;
	int r;

	if (wb_mold_parse(data, size, &hdr, &it) == 0) {
		uint32_t blocks = 0;
		while ((r = wb_mold_next(&it, &msg, &len)) == 1) {
			if (msg < data + WB_MOLD_HDR_LEN || msg + len > data + size)
				abort();
			check_message(msg, len);
			blocks++;
		}
		/* Heartbeat and end of session never yield blocks; others at most count. */
		if (blocks > (hdr.count == WB_MOLD_END_OF_SESSION ? 0u : hdr.count))
			abort();
		if (r == 0 && blocks != (hdr.count == WB_MOLD_END_OF_SESSION ? 0u : hdr.count))
			abort();
	} else if (size >= WB_MOLD_HDR_LEN) {
		abort();
	}

	fit.p = data;
	fit.end = data + size;
	while ((r = wb_itch_file_next(&fit, &msg, &len)) == 1)
		check_message(msg, len);
	if (r == 0 && fit.p != data + size)
		abort();

	check_message(data, size);
	return 0;
}
