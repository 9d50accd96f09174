/* Nasdaq TotalView-ITCH 5.0 decoder and encoder (PROTOCOLS.md section 3).
 * Offsets are from the type byte; every load is an explicit big-endian one. */
#include "itch.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSSE3__
#include <tmmintrin.h>
#elif defined(__x86_64__)
/* every x86-64 build, the fuzz targets included, must test the path the appliance runs */
#error "parsers/itch.c: compile with WB_PARSER_ARCH_FLAGS (-mssse3), see cmake/WbCommon.cmake"
#endif

#include "wire.h"

/* Layout length by type byte; 0 marks a type that is not one of the 23. */
static const uint8_t itch_len[256] = {
	['S'] = 12, ['R'] = 39, ['H'] = 25, ['Y'] = 20, ['L'] = 26, ['V'] = 35,
	['W'] = 12, ['K'] = 28, ['J'] = 35, ['h'] = 21, ['A'] = 36, ['F'] = 40,
	['E'] = 31, ['C'] = 36, ['X'] = 23, ['D'] = 19, ['U'] = 35, ['P'] = 44,
	['Q'] = 40, ['B'] = 19, ['I'] = 50, ['N'] = 20, ['O'] = 48,
};

size_t wb_itch_msg_len(uint8_t type)
{
	return itch_len[type];
}

/* Fixed-width alpha copies: the sizes are constants so these compile to plain moves. */
#define GET_ALPHA(dst, p, off) memcpy((dst), (p) + (off), sizeof(dst))
#define PUT_ALPHA(b, off, src) memcpy((b) + (off), (src), sizeof(src))

#ifdef __SSSE3__
/* The order messages (A F E C X D U, 98% of a day) decode without a branch on their type:
 * a type the predictor cannot guess costs a mispredict per message, more than the rest
 * of the parse. Each is five byte shuffles of three 16-byte loads inside [p, p + need):
 * the masks put every field at its place in the struct, big-endian fields reversed.
 * Built once from the field lists below; the roundtrip, capture and fuzz tests run it. */
#define FAST_TYPES 8 /* slot 0: not a fast type; 7 order types */

struct fast_layout {
	__m128i mask[2][2]; /* [output half of the union][input window] */
	__m128i fill[2];    /* constant bytes (A's MPID: spaces) */
	uint8_t win[2];     /* input windows' offsets from the type byte */
};

struct fast_field {
	uint8_t wire, width, dst, be; /* wire offset, bytes, offset in the union, big-endian */
};

static uint8_t fast_slot[256];
static struct fast_layout fast[FAST_TYPES];
static uint8_t fast_used = 1;
static __m128i fast_header; /* type, locate, tracking, timestamp into the struct's first 16 bytes */

#define FIELD(wire, width, member, be) { (wire), (width), (uint8_t)offsetof(struct wb_itch_msg, u.member) - \
					  (uint8_t)offsetof(struct wb_itch_msg, u), (be) }

static void fast_add(uint8_t type, const struct fast_field *f, size_t n, bool mpid_spaces)
{
	struct fast_layout *l = &fast[fast_used];
	uint8_t fill[32] = {0}, need = itch_len[type];

	l->win[0] = need - 16 < 11 ? need - 16 : 11;
	l->win[1] = need - 16;
	uint8_t sel[2][32];
	memset(sel, 0x80, sizeof(sel)); /* pshufb: a set high bit writes 0 */
	for (size_t i = 0; i < n; i++) {
		for (uint8_t b = 0; b < f[i].width; b++) {
			uint8_t src = f[i].be ? f[i].wire + f[i].width - 1 - b : f[i].wire + b;
			uint8_t d = f[i].dst + b;
			int w = src < l->win[0] + 16 ? 0 : 1;
			/* a field list that does not fit the windows is a bug in this file: stop
			 * at start-up rather than decode wrong */
			if (src < l->win[w] || src >= l->win[w] + 16 || d >= 32 || fast_used >= FAST_TYPES)
				abort();
			sel[w][d] = (uint8_t)(src - l->win[w]);
		}
	}
	if (mpid_spaces)
		memset(fill + (offsetof(struct wb_itch_msg, u.add.mpid) - offsetof(struct wb_itch_msg, u)), ' ', 4);
	for (int h = 0; h < 2; h++) {
		for (int w = 0; w < 2; w++)
			memcpy(&l->mask[h][w], sel[w] + 16 * h, 16);
		memcpy(&l->fill[h], fill + 16 * h, 16);
	}
	fast_slot[type] = fast_used++;
}

__attribute__((constructor)) static void fast_init(void)
{
	static const struct fast_field add[] = {
		FIELD(11, 8, add.ref, 1), FIELD(19, 1, add.side, 0), FIELD(20, 4, add.shares, 1),
		FIELD(24, 8, add.stock, 0), FIELD(32, 4, add.price, 1), FIELD(36, 4, add.mpid, 0),
	};
	static const struct fast_field exec[] = {
		FIELD(11, 8, exec.ref, 1), FIELD(19, 4, exec.shares, 1), FIELD(23, 8, exec.match, 1),
	};
	static const struct fast_field exec_px[] = {
		FIELD(11, 8, exec_px.ref, 1), FIELD(19, 4, exec_px.shares, 1), FIELD(23, 8, exec_px.match, 1),
		FIELD(31, 1, exec_px.printable, 0), FIELD(32, 4, exec_px.price, 1),
	};
	static const struct fast_field cancel[] = { FIELD(11, 8, cancel.ref, 1), FIELD(19, 4, cancel.shares, 1) };
	static const struct fast_field del[] = { FIELD(11, 8, del.ref, 1) };
	static const struct fast_field replace[] = {
		FIELD(11, 8, replace.old_ref, 1), FIELD(19, 8, replace.new_ref, 1), FIELD(27, 4, replace.shares, 1),
		FIELD(31, 4, replace.price, 1),
	};
	uint8_t h[16];

	fast_add('A', add, 5, true); /* all but the MPID, which A does not carry */
	fast_add('F', add, 6, false);
	fast_add('E', exec, 3, false);
	fast_add('C', exec_px, 5, false);
	fast_add('X', cancel, 2, false);
	fast_add('D', del, 1, false);
	fast_add('U', replace, 4, false);
	/* the header: type; locate and tracking (2-byte BE); the 6-byte BE timestamp */
	memset(h, 0x80, sizeof(h));
	h[offsetof(struct wb_itch_msg, type)] = 0;
	h[offsetof(struct wb_itch_msg, locate)] = 2;
	h[offsetof(struct wb_itch_msg, locate) + 1] = 1;
	h[offsetof(struct wb_itch_msg, tracking)] = 4;
	h[offsetof(struct wb_itch_msg, tracking) + 1] = 3;
	for (int b = 0; b < 6; b++)
		h[offsetof(struct wb_itch_msg, ts) + b] = (uint8_t)(10 - b);
	memcpy(&fast_header, h, 16);
}

_Static_assert(offsetof(struct wb_itch_msg, u) == 16 && sizeof(((struct wb_itch_msg *)0)->u) >= 32,
	       "the fast decode writes the 16-byte header and the union's first 32 bytes");
#endif

/* The verdict on a message of len bytes before any field is read (decode and peek give
 * the same one); *need: its type's layout length. */
static inline int itch_verdict(const uint8_t *p, size_t len, size_t *need)
{
	if (len == 0)
		return WB_ITCH_ERR_EMPTY;
	*need = itch_len[p[0]];
	if (*need == 0)
		return WB_ITCH_ERR_UNKNOWN;
	return len < *need ? WB_ITCH_ERR_SHORT : WB_ITCH_OK;
}

int wb_itch_peek(const uint8_t *p, size_t len, struct wb_itch_msg *out)
{
	size_t need;
	int r = itch_verdict(p, len, &need);

	if (r != WB_ITCH_OK)
		return r;
	/* no switch on the type (the least predictable byte of a feed): every layout holding
	 * a reference is long enough for it, and the others get a harmless value */
	out->type = (char)p[0];
	out->locate = wb_be16(p + 1);
	out->u.del.ref = need >= 19 ? wb_be64(p + 11) : 0;
	out->u.replace.new_ref = need >= 27 ? wb_be64(p + 19) : 0;
	return WB_ITCH_OK;
}

int wb_itch_decode(const uint8_t *p, size_t len, struct wb_itch_msg *out)
{
	size_t need;
	int r = itch_verdict(p, len, &need);
	if (r != WB_ITCH_OK)
		return r;
	uint8_t t = p[0];

#ifdef __SSSE3__
	uint8_t slot = fast_slot[t];
	if (__builtin_expect(slot != 0, 1)) {
		const struct fast_layout *l = &fast[slot];
		/* every window lies in [p, p + need): need >= 19 for these types */
		__m128i hd = _mm_loadu_si128((const __m128i *)p);
		__m128i w0 = _mm_loadu_si128((const __m128i *)(p + l->win[0]));
		__m128i w1 = _mm_loadu_si128((const __m128i *)(p + l->win[1]));
		__m128i u0 = _mm_or_si128(_mm_shuffle_epi8(w0, l->mask[0][0]), _mm_shuffle_epi8(w1, l->mask[0][1]));
		__m128i u1 = _mm_or_si128(_mm_shuffle_epi8(w0, l->mask[1][0]), _mm_shuffle_epi8(w1, l->mask[1][1]));
		_mm_storeu_si128((__m128i *)out, _mm_shuffle_epi8(hd, fast_header));
		_mm_storeu_si128((__m128i *)&out->u, _mm_or_si128(u0, l->fill[0]));
		_mm_storeu_si128((__m128i *)((char *)&out->u + 16), _mm_or_si128(u1, l->fill[1]));
		return WB_ITCH_OK;
	}
#endif
	out->type = (char)t;
	out->locate = wb_be16(p + 1);
	out->tracking = wb_be16(p + 3);
	out->ts = wb_be48(p + 5);

	switch (t) {
	case 'A':
	case 'F':
		out->u.add.ref = wb_be64(p + 11);
		out->u.add.side = (char)p[19];
		out->u.add.shares = wb_be32(p + 20);
		GET_ALPHA(out->u.add.stock, p, 24);
		out->u.add.price = wb_be32(p + 32);
		if (t == 'F')
			GET_ALPHA(out->u.add.mpid, p, 36);
		else
			memset(out->u.add.mpid, ' ', sizeof(out->u.add.mpid));
		break;
	case 'E':
		out->u.exec.ref = wb_be64(p + 11);
		out->u.exec.shares = wb_be32(p + 19);
		out->u.exec.match = wb_be64(p + 23);
		break;
	case 'C':
		out->u.exec_px.ref = wb_be64(p + 11);
		out->u.exec_px.shares = wb_be32(p + 19);
		out->u.exec_px.match = wb_be64(p + 23);
		out->u.exec_px.printable = (char)p[31];
		out->u.exec_px.price = wb_be32(p + 32);
		break;
	case 'X':
		out->u.cancel.ref = wb_be64(p + 11);
		out->u.cancel.shares = wb_be32(p + 19);
		break;
	case 'D':
		out->u.del.ref = wb_be64(p + 11);
		break;
	case 'U':
		out->u.replace.old_ref = wb_be64(p + 11);
		out->u.replace.new_ref = wb_be64(p + 19);
		out->u.replace.shares = wb_be32(p + 27);
		out->u.replace.price = wb_be32(p + 31);
		break;
	case 'P':
		out->u.trade.ref = wb_be64(p + 11);
		out->u.trade.side = (char)p[19];
		out->u.trade.shares = wb_be32(p + 20);
		GET_ALPHA(out->u.trade.stock, p, 24);
		out->u.trade.price = wb_be32(p + 32);
		out->u.trade.match = wb_be64(p + 36);
		break;
	case 'Q':
		out->u.cross.shares = wb_be64(p + 11);
		GET_ALPHA(out->u.cross.stock, p, 19);
		out->u.cross.price = wb_be32(p + 27);
		out->u.cross.match = wb_be64(p + 31);
		out->u.cross.cross_type = (char)p[39];
		break;
	case 'B':
		out->u.broken.match = wb_be64(p + 11);
		break;
	case 'S':
		out->u.sys.event_code = (char)p[11];
		break;
	case 'R':
		GET_ALPHA(out->u.dir.stock, p, 11);
		out->u.dir.market_category = (char)p[19];
		out->u.dir.financial_status = (char)p[20];
		out->u.dir.round_lot_size = wb_be32(p + 21);
		out->u.dir.round_lots_only = (char)p[25];
		out->u.dir.issue_classification = (char)p[26];
		GET_ALPHA(out->u.dir.issue_sub_type, p, 27);
		out->u.dir.authenticity = (char)p[29];
		out->u.dir.short_sale_threshold = (char)p[30];
		out->u.dir.ipo_flag = (char)p[31];
		out->u.dir.luld_tier = (char)p[32];
		out->u.dir.etp_flag = (char)p[33];
		out->u.dir.etp_leverage = wb_be32(p + 34);
		out->u.dir.inverse = (char)p[38];
		break;
	case 'H':
		GET_ALPHA(out->u.action.stock, p, 11);
		out->u.action.state = (char)p[19];
		out->u.action.reserved = (char)p[20];
		GET_ALPHA(out->u.action.reason, p, 21);
		break;
	case 'Y':
		GET_ALPHA(out->u.regsho.stock, p, 11);
		out->u.regsho.action = (char)p[19];
		break;
	case 'L':
		GET_ALPHA(out->u.mpp.mpid, p, 11);
		GET_ALPHA(out->u.mpp.stock, p, 15);
		out->u.mpp.primary_mm = (char)p[23];
		out->u.mpp.mm_mode = (char)p[24];
		out->u.mpp.state = (char)p[25];
		break;
	case 'V':
		out->u.mwcb_decline.level[0] = wb_be64(p + 11);
		out->u.mwcb_decline.level[1] = wb_be64(p + 19);
		out->u.mwcb_decline.level[2] = wb_be64(p + 27);
		break;
	case 'W':
		out->u.mwcb_status.level = (char)p[11];
		break;
	case 'K':
		GET_ALPHA(out->u.ipo.stock, p, 11);
		out->u.ipo.release_time = wb_be32(p + 19);
		out->u.ipo.qualifier = (char)p[23];
		out->u.ipo.price = wb_be32(p + 24);
		break;
	case 'J':
		GET_ALPHA(out->u.luld.stock, p, 11);
		out->u.luld.ref_price = wb_be32(p + 19);
		out->u.luld.upper = wb_be32(p + 23);
		out->u.luld.lower = wb_be32(p + 27);
		out->u.luld.extension = wb_be32(p + 31);
		break;
	case 'h':
		GET_ALPHA(out->u.op_halt.stock, p, 11);
		out->u.op_halt.market_code = (char)p[19];
		out->u.op_halt.action = (char)p[20];
		break;
	case 'I':
		out->u.noii.paired = wb_be64(p + 11);
		out->u.noii.imbalance = wb_be64(p + 19);
		out->u.noii.direction = (char)p[27];
		GET_ALPHA(out->u.noii.stock, p, 28);
		out->u.noii.far_price = wb_be32(p + 36);
		out->u.noii.near_price = wb_be32(p + 40);
		out->u.noii.ref_price = wb_be32(p + 44);
		out->u.noii.cross_type = (char)p[48];
		out->u.noii.variation = (char)p[49];
		break;
	case 'N':
		GET_ALPHA(out->u.rpii.stock, p, 11);
		out->u.rpii.interest = (char)p[19];
		break;
	case 'O':
		GET_ALPHA(out->u.dlcr.stock, p, 11);
		out->u.dlcr.eligible = (char)p[19];
		out->u.dlcr.min_price = wb_be32(p + 20);
		out->u.dlcr.max_price = wb_be32(p + 24);
		out->u.dlcr.near_price = wb_be32(p + 28);
		out->u.dlcr.near_time = wb_be64(p + 32);
		out->u.dlcr.lower_collar = wb_be32(p + 40);
		out->u.dlcr.upper_collar = wb_be32(p + 44);
		break;
	}
	return WB_ITCH_OK;
}

size_t wb_itch_encode(const struct wb_itch_msg *m, uint8_t *b)
{
	uint8_t t = (uint8_t)m->type;
	size_t len = itch_len[t];
	if (len == 0)
		return 0;

	b[0] = t;
	wb_put_be16(b + 1, m->locate);
	wb_put_be16(b + 3, m->tracking);
	wb_put_be48(b + 5, m->ts);

	switch (t) {
	case 'A':
	case 'F':
		wb_put_be64(b + 11, m->u.add.ref);
		b[19] = (uint8_t)m->u.add.side;
		wb_put_be32(b + 20, m->u.add.shares);
		PUT_ALPHA(b, 24, m->u.add.stock);
		wb_put_be32(b + 32, m->u.add.price);
		if (t == 'F')
			PUT_ALPHA(b, 36, m->u.add.mpid);
		break;
	case 'E':
		wb_put_be64(b + 11, m->u.exec.ref);
		wb_put_be32(b + 19, m->u.exec.shares);
		wb_put_be64(b + 23, m->u.exec.match);
		break;
	case 'C':
		wb_put_be64(b + 11, m->u.exec_px.ref);
		wb_put_be32(b + 19, m->u.exec_px.shares);
		wb_put_be64(b + 23, m->u.exec_px.match);
		b[31] = (uint8_t)m->u.exec_px.printable;
		wb_put_be32(b + 32, m->u.exec_px.price);
		break;
	case 'X':
		wb_put_be64(b + 11, m->u.cancel.ref);
		wb_put_be32(b + 19, m->u.cancel.shares);
		break;
	case 'D':
		wb_put_be64(b + 11, m->u.del.ref);
		break;
	case 'U':
		wb_put_be64(b + 11, m->u.replace.old_ref);
		wb_put_be64(b + 19, m->u.replace.new_ref);
		wb_put_be32(b + 27, m->u.replace.shares);
		wb_put_be32(b + 31, m->u.replace.price);
		break;
	case 'P':
		wb_put_be64(b + 11, m->u.trade.ref);
		b[19] = (uint8_t)m->u.trade.side;
		wb_put_be32(b + 20, m->u.trade.shares);
		PUT_ALPHA(b, 24, m->u.trade.stock);
		wb_put_be32(b + 32, m->u.trade.price);
		wb_put_be64(b + 36, m->u.trade.match);
		break;
	case 'Q':
		wb_put_be64(b + 11, m->u.cross.shares);
		PUT_ALPHA(b, 19, m->u.cross.stock);
		wb_put_be32(b + 27, m->u.cross.price);
		wb_put_be64(b + 31, m->u.cross.match);
		b[39] = (uint8_t)m->u.cross.cross_type;
		break;
	case 'B':
		wb_put_be64(b + 11, m->u.broken.match);
		break;
	case 'S':
		b[11] = (uint8_t)m->u.sys.event_code;
		break;
	case 'R':
		PUT_ALPHA(b, 11, m->u.dir.stock);
		b[19] = (uint8_t)m->u.dir.market_category;
		b[20] = (uint8_t)m->u.dir.financial_status;
		wb_put_be32(b + 21, m->u.dir.round_lot_size);
		b[25] = (uint8_t)m->u.dir.round_lots_only;
		b[26] = (uint8_t)m->u.dir.issue_classification;
		PUT_ALPHA(b, 27, m->u.dir.issue_sub_type);
		b[29] = (uint8_t)m->u.dir.authenticity;
		b[30] = (uint8_t)m->u.dir.short_sale_threshold;
		b[31] = (uint8_t)m->u.dir.ipo_flag;
		b[32] = (uint8_t)m->u.dir.luld_tier;
		b[33] = (uint8_t)m->u.dir.etp_flag;
		wb_put_be32(b + 34, m->u.dir.etp_leverage);
		b[38] = (uint8_t)m->u.dir.inverse;
		break;
	case 'H':
		PUT_ALPHA(b, 11, m->u.action.stock);
		b[19] = (uint8_t)m->u.action.state;
		b[20] = (uint8_t)m->u.action.reserved;
		PUT_ALPHA(b, 21, m->u.action.reason);
		break;
	case 'Y':
		PUT_ALPHA(b, 11, m->u.regsho.stock);
		b[19] = (uint8_t)m->u.regsho.action;
		break;
	case 'L':
		PUT_ALPHA(b, 11, m->u.mpp.mpid);
		PUT_ALPHA(b, 15, m->u.mpp.stock);
		b[23] = (uint8_t)m->u.mpp.primary_mm;
		b[24] = (uint8_t)m->u.mpp.mm_mode;
		b[25] = (uint8_t)m->u.mpp.state;
		break;
	case 'V':
		wb_put_be64(b + 11, m->u.mwcb_decline.level[0]);
		wb_put_be64(b + 19, m->u.mwcb_decline.level[1]);
		wb_put_be64(b + 27, m->u.mwcb_decline.level[2]);
		break;
	case 'W':
		b[11] = (uint8_t)m->u.mwcb_status.level;
		break;
	case 'K':
		PUT_ALPHA(b, 11, m->u.ipo.stock);
		wb_put_be32(b + 19, m->u.ipo.release_time);
		b[23] = (uint8_t)m->u.ipo.qualifier;
		wb_put_be32(b + 24, m->u.ipo.price);
		break;
	case 'J':
		PUT_ALPHA(b, 11, m->u.luld.stock);
		wb_put_be32(b + 19, m->u.luld.ref_price);
		wb_put_be32(b + 23, m->u.luld.upper);
		wb_put_be32(b + 27, m->u.luld.lower);
		wb_put_be32(b + 31, m->u.luld.extension);
		break;
	case 'h':
		PUT_ALPHA(b, 11, m->u.op_halt.stock);
		b[19] = (uint8_t)m->u.op_halt.market_code;
		b[20] = (uint8_t)m->u.op_halt.action;
		break;
	case 'I':
		wb_put_be64(b + 11, m->u.noii.paired);
		wb_put_be64(b + 19, m->u.noii.imbalance);
		b[27] = (uint8_t)m->u.noii.direction;
		PUT_ALPHA(b, 28, m->u.noii.stock);
		wb_put_be32(b + 36, m->u.noii.far_price);
		wb_put_be32(b + 40, m->u.noii.near_price);
		wb_put_be32(b + 44, m->u.noii.ref_price);
		b[48] = (uint8_t)m->u.noii.cross_type;
		b[49] = (uint8_t)m->u.noii.variation;
		break;
	case 'N':
		PUT_ALPHA(b, 11, m->u.rpii.stock);
		b[19] = (uint8_t)m->u.rpii.interest;
		break;
	case 'O':
		PUT_ALPHA(b, 11, m->u.dlcr.stock);
		b[19] = (uint8_t)m->u.dlcr.eligible;
		wb_put_be32(b + 20, m->u.dlcr.min_price);
		wb_put_be32(b + 24, m->u.dlcr.max_price);
		wb_put_be32(b + 28, m->u.dlcr.near_price);
		wb_put_be64(b + 32, m->u.dlcr.near_time);
		wb_put_be32(b + 40, m->u.dlcr.lower_collar);
		wb_put_be32(b + 44, m->u.dlcr.upper_collar);
		break;
	}
	return len;
}

const char *wb_itch_type_name(uint8_t type)
{
	switch (type) {
	case 'S': return "System Event";
	case 'R': return "Stock Directory";
	case 'H': return "Stock Trading Action";
	case 'Y': return "Reg SHO Restriction";
	case 'L': return "Market Participant Position";
	case 'V': return "MWCB Decline Level";
	case 'W': return "MWCB Status";
	case 'K': return "IPO Quoting Period Update";
	case 'J': return "LULD Auction Collar";
	case 'h': return "Operational Halt";
	case 'A': return "Add Order";
	case 'F': return "Add Order with MPID";
	case 'E': return "Order Executed";
	case 'C': return "Order Executed With Price";
	case 'X': return "Order Cancel";
	case 'D': return "Order Delete";
	case 'U': return "Order Replace";
	case 'P': return "Trade";
	case 'Q': return "Cross Trade";
	case 'B': return "Broken Trade";
	case 'I': return "Net Order Imbalance Indicator";
	case 'N': return "Retail Price Improvement Indicator";
	case 'O': return "DLCR Price Discovery";
	default: return "unknown";
	}
}
