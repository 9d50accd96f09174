#include "iex.h"

#include <string.h>

#include "wire.h"

static inline void put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void put_le32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void put_le64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

int wb_iextp_parse(const uint8_t *seg, size_t len, struct wb_iextp_hdr *hdr, struct wb_iextp_iter *it)
{
	if (len < WB_IEXTP_HDR_LEN)
		return -EMSGSIZE;
	hdr->version = seg[0];
	hdr->protocol = wb_le16(seg + 2);
	hdr->channel = wb_le32(seg + 4);
	hdr->session = wb_le32(seg + 8);
	hdr->payload_len = wb_le16(seg + 12);
	hdr->count = wb_le16(seg + 14);
	hdr->offset = (int64_t)wb_le64(seg + 16);
	hdr->first_seq = (int64_t)wb_le64(seg + 24);
	hdr->send_time = (int64_t)wb_le64(seg + 32);
	if (hdr->version != WB_IEXTP_VERSION)
		return -EPROTO;
	if (len - WB_IEXTP_HDR_LEN < hdr->payload_len)
		return -EMSGSIZE;
	/* Bounded so that sequence and offset arithmetic downstream cannot overflow. */
	if (hdr->first_seq < 1 || hdr->first_seq > WB_IEXTP_MAX_SEQ ||
	    hdr->offset < 0 || hdr->offset > WB_IEXTP_MAX_SEQ)
		return -EBADMSG;

	/* Walk once up front so the caller never applies half a segment. */
	const uint8_t *p = seg + WB_IEXTP_HDR_LEN;
	const uint8_t *end = p + hdr->payload_len;
	for (uint16_t k = 0; k < hdr->count; k++) {
		if (end - p < 2)
			return -EBADMSG;
		uint16_t l = wb_le16(p);
		if (l == 0 || end - p - 2 < (ptrdiff_t)l)
			return -EBADMSG;
		p += 2 + (size_t)l;
	}
	if (p != end)
		return -EBADMSG;
	it->p = seg + WB_IEXTP_HDR_LEN;
	it->end = end;
	it->left = hdr->count;
	return 0;
}

void wb_iextp_put_hdr(uint8_t *buf, const struct wb_iextp_hdr *hdr)
{
	buf[0] = hdr->version;
	buf[1] = 0;
	put_le16(buf + 2, hdr->protocol);
	put_le32(buf + 4, hdr->channel);
	put_le32(buf + 8, hdr->session);
	put_le16(buf + 12, hdr->payload_len);
	put_le16(buf + 14, hdr->count);
	put_le64(buf + 16, (uint64_t)hdr->offset);
	put_le64(buf + 24, (uint64_t)hdr->first_seq);
	put_le64(buf + 32, (uint64_t)hdr->send_time);
}

size_t wb_iex_msg_len(enum wb_iex_feed feed, uint8_t type)
{
	switch (type) {
	case 'S': return 10;
	case 'D': return 31;
	case 'H': return 22;
	case 'I': return 18;
	case 'O': return 18;
	case 'P': return 19;
	case 'E': return 18;
	case 'T': return 38;
	case 'X': return 26;
	case 'B': return 38;
	case 'A': return 80;
	case '8':
	case '5': return feed == WB_IEX_DEEP ? 30 : 0;
	case 'Q': return feed == WB_IEX_TOPS ? 42 : 0;
	default: return 0;
	}
}

int wb_iex_decode(enum wb_iex_feed feed, const uint8_t *p, size_t len, struct wb_iex_msg *out)
{
	if (len == 0)
		return WB_IEX_ERR_EMPTY;
	size_t need = wb_iex_msg_len(feed, p[0]);
	if (need == 0)
		return WB_IEX_ERR_UNKNOWN;
	if (len < need)
		return WB_IEX_ERR_SHORT;
	out->type = (char)p[0];
	out->flags = p[1];
	out->ts = (int64_t)wb_le64(p + 2);
	if (out->type == 'S') {
		memset(out->symbol, ' ', sizeof(out->symbol));
		out->u.sys.event = (char)p[1];
		return WB_IEX_OK;
	}
	memcpy(out->symbol, p + 10, WB_IEX_SYMBOL_LEN);
	const uint8_t *b = p + 18; /* the type-specific body */
	switch (out->type) {
	case 'D':
		out->u.dir.round_lot = wb_le32(b);
		out->u.dir.adjusted_poc = (int64_t)wb_le64(b + 4);
		out->u.dir.luld_tier = b[12];
		break;
	case 'H':
		out->u.status.status = (char)p[1];
		memcpy(out->u.status.reason, b, 4);
		break;
	case 'I': out->u.retail.indicator = (char)p[1]; break;
	case 'O': out->u.op_halt.status = (char)p[1]; break;
	case 'P':
		out->u.ssr.in_effect = p[1];
		out->u.ssr.detail = (char)b[0];
		break;
	case 'E': out->u.sec_event.event = (char)p[1]; break;
	case '8':
	case '5':
		out->u.level.event_flags = p[1];
		out->u.level.size = wb_le32(b);
		out->u.level.price = (int64_t)wb_le64(b + 4);
		break;
	case 'T':
	case 'B':
		out->u.trade.sale_flags = p[1];
		out->u.trade.size = wb_le32(b);
		out->u.trade.price = (int64_t)wb_le64(b + 4);
		out->u.trade.trade_id = wb_le64(b + 12);
		break;
	case 'X':
		out->u.official.price_type = (char)p[1];
		out->u.official.price = (int64_t)wb_le64(b);
		break;
	case 'A':
		out->u.auction.auction_type = (char)p[1];
		out->u.auction.paired_shares = wb_le32(b);
		out->u.auction.reference_price = (int64_t)wb_le64(b + 4);
		out->u.auction.indicative_price = (int64_t)wb_le64(b + 12);
		out->u.auction.imbalance_shares = wb_le32(b + 20);
		out->u.auction.imbalance_side = (char)b[24];
		out->u.auction.extension = b[25];
		out->u.auction.scheduled_time = wb_le32(b + 26);
		out->u.auction.auction_book_price = (int64_t)wb_le64(b + 30);
		out->u.auction.collar_reference = (int64_t)wb_le64(b + 38);
		out->u.auction.lower_collar = (int64_t)wb_le64(b + 46);
		out->u.auction.upper_collar = (int64_t)wb_le64(b + 54);
		break;
	case 'Q':
		out->u.quote.quote_flags = p[1];
		out->u.quote.bid_size = wb_le32(b);
		out->u.quote.bid = (int64_t)wb_le64(b + 4);
		out->u.quote.ask = (int64_t)wb_le64(b + 12);
		out->u.quote.ask_size = wb_le32(b + 20);
		break;
	}
	return WB_IEX_OK;
}

size_t wb_iex_encode(enum wb_iex_feed feed, const struct wb_iex_msg *m, uint8_t *buf)
{
	size_t len = wb_iex_msg_len(feed, (uint8_t)m->type);
	if (len == 0)
		return 0;
	memset(buf, 0, len);
	buf[0] = (uint8_t)m->type;
	buf[1] = m->flags;
	put_le64(buf + 2, (uint64_t)m->ts);
	if (m->type == 'S') {
		buf[1] = (uint8_t)m->u.sys.event;
		return len;
	}
	memcpy(buf + 10, m->symbol, WB_IEX_SYMBOL_LEN);
	uint8_t *b = buf + 18;
	switch (m->type) {
	case 'D':
		put_le32(b, m->u.dir.round_lot);
		put_le64(b + 4, (uint64_t)m->u.dir.adjusted_poc);
		b[12] = m->u.dir.luld_tier;
		break;
	case 'H':
		buf[1] = (uint8_t)m->u.status.status;
		memcpy(b, m->u.status.reason, 4);
		break;
	case 'I': buf[1] = (uint8_t)m->u.retail.indicator; break;
	case 'O': buf[1] = (uint8_t)m->u.op_halt.status; break;
	case 'P':
		buf[1] = m->u.ssr.in_effect;
		b[0] = (uint8_t)m->u.ssr.detail;
		break;
	case 'E': buf[1] = (uint8_t)m->u.sec_event.event; break;
	case '8':
	case '5':
		buf[1] = m->u.level.event_flags;
		put_le32(b, m->u.level.size);
		put_le64(b + 4, (uint64_t)m->u.level.price);
		break;
	case 'T':
	case 'B':
		buf[1] = m->u.trade.sale_flags;
		put_le32(b, m->u.trade.size);
		put_le64(b + 4, (uint64_t)m->u.trade.price);
		put_le64(b + 12, m->u.trade.trade_id);
		break;
	case 'X':
		buf[1] = (uint8_t)m->u.official.price_type;
		put_le64(b, (uint64_t)m->u.official.price);
		break;
	case 'A':
		buf[1] = (uint8_t)m->u.auction.auction_type;
		put_le32(b, m->u.auction.paired_shares);
		put_le64(b + 4, (uint64_t)m->u.auction.reference_price);
		put_le64(b + 12, (uint64_t)m->u.auction.indicative_price);
		put_le32(b + 20, m->u.auction.imbalance_shares);
		b[24] = (uint8_t)m->u.auction.imbalance_side;
		b[25] = m->u.auction.extension;
		put_le32(b + 26, m->u.auction.scheduled_time);
		put_le64(b + 30, (uint64_t)m->u.auction.auction_book_price);
		put_le64(b + 38, (uint64_t)m->u.auction.collar_reference);
		put_le64(b + 46, (uint64_t)m->u.auction.lower_collar);
		put_le64(b + 54, (uint64_t)m->u.auction.upper_collar);
		break;
	case 'Q':
		buf[1] = m->u.quote.quote_flags;
		put_le32(b, m->u.quote.bid_size);
		put_le64(b + 4, (uint64_t)m->u.quote.bid);
		put_le64(b + 12, (uint64_t)m->u.quote.ask);
		put_le32(b + 20, m->u.quote.ask_size);
		break;
	}
	return len;
}

const char *wb_iex_type_name(uint8_t type)
{
	switch (type) {
	case 'S': return "System Event";
	case 'D': return "Security Directory";
	case 'H': return "Trading Status";
	case 'I': return "Retail Liquidity Indicator";
	case 'O': return "Operational Halt Status";
	case 'P': return "Short Sale Price Test Status";
	case 'E': return "Security Event";
	case '8': return "Price Level Update (buy)";
	case '5': return "Price Level Update (sell)";
	case 'T': return "Trade Report";
	case 'X': return "Official Price";
	case 'B': return "Trade Break";
	case 'A': return "Auction Information";
	case 'Q': return "Quote Update";
	default: return "unknown";
	}
}
