/* SoupBinTCP 3.00 framing and fixed packets (PROTOCOLS.md section 2). */
#include "soup.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define LOGIN_PAYLOAD 46    /* user 6 + password 10 + session 10 + sequence 20 */
#define ACCEPTED_PAYLOAD 30 /* session 10 + sequence 20 */
#define SEQ_FIELD 20

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

void wb_soup_framer_init(struct wb_soup_framer *f)
{
	f->have = 0;
	f->packets = 0;
	f->empty = 0;
	f->overflow = 0;
}

/* Hands one whole packet (length prefix included) to cb; true when cb asked to stop. */
static bool deliver(struct wb_soup_framer *f, const uint8_t *pkt, uint16_t plen, wb_soup_cb cb, void *arg,
		    uint32_t *delivered)
{
	if (plen == 0) {
		f->empty++;
		return false;
	}
	struct wb_soup_packet p = {.type = (char)pkt[2], .payload = pkt + 3, .len = (uint16_t)(plen - 1)};
	f->packets++;
	(*delivered)++;
	return cb(arg, &p) != 0;
}

/* After an early stop: keep the unread bytes behind what is already held. */
static void hold(struct wb_soup_framer *f, const uint8_t *data, size_t n)
{
	size_t room = sizeof(f->buf) - f->have;
	size_t take = n < room ? n : room;
	if (take)
		memcpy(f->buf + f->have, data, take);
	f->have += (uint32_t)take;
	f->overflow += n - take;
}

uint32_t wb_soup_feed(struct wb_soup_framer *f, const uint8_t *data, size_t n, wb_soup_cb cb, void *arg)
{
	uint32_t delivered = 0;
	static const uint8_t none[1];
	if (n == 0)
		data = none; /* memcpy from NULL is undefined even for 0 bytes */

	/* Held bytes first: a partial packet, or several packets left by an early stop. */
	while (f->have > 0) {
		if (f->have < 2) {
			size_t take = n < 2 - f->have ? n : 2 - f->have;
			memcpy(f->buf + f->have, data, take);
			f->have += (uint32_t)take, data += take, n -= take;
			if (f->have < 2)
				return delivered;
		}
		uint16_t plen = be16(f->buf);
		uint32_t total = 2u + plen;
		if (f->have < total) {
			size_t take = n < total - f->have ? n : total - f->have;
			memcpy(f->buf + f->have, data, take);
			f->have += (uint32_t)take, data += take, n -= take;
			if (f->have < total)
				return delivered;
		}
		bool stop = deliver(f, f->buf, plen, cb, arg, &delivered);
		memmove(f->buf, f->buf + total, f->have - total);
		f->have -= total;
		if (stop) {
			hold(f, data, n);
			return delivered;
		}
	}

	/* Then straight from the caller's bytes, copying only a trailing partial packet. */
	while (n > 0) {
		if (n < 2 || n < 2u + be16(data)) {
			memcpy(f->buf, data, n);
			f->have = (uint32_t)n;
			return delivered;
		}
		uint16_t plen = be16(data);
		bool stop = deliver(f, data, plen, cb, arg, &delivered);
		data += 2u + plen, n -= 2u + plen;
		if (stop) {
			hold(f, data, n);
			return delivered;
		}
	}
	return delivered;
}

/* ---------------------------------------------------------------- fields */

/* Alpha field: left-justified, right-padded with spaces. */
static void put_alpha(uint8_t *out, size_t width, const char *s)
{
	size_t n = s ? strnlen(s, width) : 0;
	if (n)
		memcpy(out, s, n);
	memset(out + n, ' ', width - n);
}

/* Span of a field without its space/NUL padding on either side. */
static void trim(const uint8_t *p, size_t n, size_t *first, size_t *len)
{
	size_t a = 0, b = n;
	while (a < b && (p[a] == ' ' || p[a] == '\0'))
		a++;
	while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\0'))
		b--;
	*first = a;
	*len = b - a;
}

/* Session: right-justified on the wire (spec, nassau); all spaces = current session. */
static void put_session(uint8_t *out, const char session[WB_SOUP_SESSION_LEN])
{
	size_t a = 0, n = 0;
	if (session)
		trim((const uint8_t *)session, WB_SOUP_SESSION_LEN, &a, &n);
	memset(out, ' ', WB_SOUP_SESSION_LEN - n);
	if (n)
		memcpy(out + WB_SOUP_SESSION_LEN - n, session + a, n);
}

/* Parsed sessions come out left-justified and space padded, the MoldUDP64 spelling. */
static void get_session(const uint8_t *p, char session[WB_SOUP_SESSION_LEN])
{
	size_t a, n;
	trim(p, WB_SOUP_SESSION_LEN, &a, &n);
	memcpy(session, p + a, n);
	memset(session + n, ' ', WB_SOUP_SESSION_LEN - n);
}

static void put_seq(uint8_t *out, uint64_t seq)
{
	char digits[SEQ_FIELD];
	size_t n = 0;
	do {
		digits[n++] = (char)('0' + seq % 10);
		seq /= 10;
	} while (seq && n < SEQ_FIELD);
	memset(out, ' ', SEQ_FIELD - n);
	for (size_t i = 0; i < n; i++)
		out[SEQ_FIELD - 1 - i] = (uint8_t)digits[i];
}

static int get_seq(const uint8_t *p, uint64_t *seq)
{
	size_t a, n;
	trim(p, SEQ_FIELD, &a, &n);
	if (n == 0)
		return -EBADMSG;
	uint64_t v = 0;
	for (size_t i = a; i < a + n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -EBADMSG;
		uint64_t d = (uint64_t)(p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EBADMSG;
		v = v * 10 + d;
	}
	*seq = v;
	return 0;
}

static void get_alpha(const uint8_t *p, size_t width, char *out)
{
	size_t a, n;
	trim(p, width, &a, &n);
	memcpy(out, p + a, n);
	out[n] = '\0';
}

/* ---------------------------------------------------------------- builders */

size_t wb_soup_build_login(uint8_t *out, const char *user, const char *pass,
			   const char session[WB_SOUP_SESSION_LEN], uint64_t seq)
{
	put_be16(out, 1 + LOGIN_PAYLOAD);
	out[2] = WB_SOUP_LOGIN_REQUEST;
	put_alpha(out + 3, 6, user);
	put_alpha(out + 9, 10, pass);
	put_session(out + 19, session);
	put_seq(out + 29, seq);
	return 3 + LOGIN_PAYLOAD;
}

size_t wb_soup_build_simple(uint8_t *out, char type)
{
	put_be16(out, 1);
	out[2] = (uint8_t)type;
	return 3;
}

size_t wb_soup_build_accepted(uint8_t *out, const char session[WB_SOUP_SESSION_LEN], uint64_t seq)
{
	put_be16(out, 1 + ACCEPTED_PAYLOAD);
	out[2] = WB_SOUP_LOGIN_ACCEPTED;
	put_session(out + 3, session);
	put_seq(out + 13, seq);
	return 3 + ACCEPTED_PAYLOAD;
}

size_t wb_soup_build_rejected(uint8_t *out, char reason)
{
	put_be16(out, 2);
	out[2] = WB_SOUP_LOGIN_REJECTED;
	out[3] = (uint8_t)reason;
	return 4;
}

size_t wb_soup_build_sequenced_hdr(uint8_t *out, uint16_t msg_len)
{
	/* The length field counts the type byte too: a 65535-byte message cannot be framed. */
	put_be16(out, (uint16_t)(msg_len + 1));
	out[2] = WB_SOUP_SEQUENCED;
	return 3;
}

/* ---------------------------------------------------------------- parsers */

int wb_soup_parse_accepted(const struct wb_soup_packet *p, char session[WB_SOUP_SESSION_LEN], uint64_t *seq)
{
	if (p->type != WB_SOUP_LOGIN_ACCEPTED || p->len != ACCEPTED_PAYLOAD)
		return -EBADMSG;
	uint64_t v;
	if (get_seq(p->payload + 10, &v))
		return -EBADMSG;
	get_session(p->payload, session);
	*seq = v;
	return 0;
}

int wb_soup_parse_login(const struct wb_soup_packet *p, char user[7], char pass[11],
			char session[WB_SOUP_SESSION_LEN], uint64_t *seq)
{
	if (p->type != WB_SOUP_LOGIN_REQUEST || p->len != LOGIN_PAYLOAD)
		return -EBADMSG;
	uint64_t v;
	if (get_seq(p->payload + 26, &v))
		return -EBADMSG;
	get_alpha(p->payload, 6, user);
	get_alpha(p->payload + 6, 10, pass);
	get_session(p->payload + 16, session);
	*seq = v;
	return 0;
}

int wb_soup_parse_rejected(const struct wb_soup_packet *p, char *reason)
{
	if (p->type != WB_SOUP_LOGIN_REJECTED || p->len != 1)
		return -EBADMSG;
	*reason = (char)p->payload[0];
	return 0;
}
