/* MoldUDP64 downstream header parsing and request building (PROTOCOLS.md section 1). */
#include "mold.h"

#include <string.h>

#include "wire.h"

int wb_mold_parse(const uint8_t *pkt, size_t len, struct wb_mold_hdr *hdr, struct wb_mold_iter *it)
{
	if (len < WB_MOLD_HDR_LEN)
		return -EMSGSIZE;
	memcpy(hdr->session, pkt, WB_MOLD_SESSION_LEN);
	hdr->seq = wb_be64(pkt + 10);
	hdr->count = wb_be16(pkt + 18);
	it->p = pkt + WB_MOLD_HDR_LEN;
	it->end = pkt + len;
	/* End of session announces 0xFFFF but carries no blocks. */
	it->left = hdr->count == WB_MOLD_END_OF_SESSION ? 0 : hdr->count;
	return 0;
}

size_t wb_mold_build_request(uint8_t *buf, const char session[WB_MOLD_SESSION_LEN], uint64_t seq, uint16_t count)
{
	memcpy(buf, session, WB_MOLD_SESSION_LEN);
	wb_put_be64(buf + 10, seq);
	wb_put_be16(buf + 18, count);
	return WB_MOLD_HDR_LEN;
}
