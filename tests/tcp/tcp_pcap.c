/* Classic pcap reader and Ethernet/IPv4/TCP decoder for the TCP tests and bench. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkt.h"
#include "tcp_pcap.h"

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Returns 1 for a valid TCP segment, 0 for anything else, -1 for a bad checksum. */
static int decode(const uint8_t *fr, uint32_t len, uint64_t ts, struct wb_tcp_seg *s)
{
	if (len < 14 + 20 || be16(fr + 12) != 0x0800)
		return 0;
	const uint8_t *ip = fr + 14;
	uint32_t ihl = (ip[0] & 15) * 4u;
	uint32_t tot = be16(ip + 2);
	if ((ip[0] >> 4) != 4 || ihl < 20 || tot < ihl + 20 || 14 + tot > len || ip[9] != 6)
		return 0;
	if (wb_csum_fold(wb_csum_partial(ip, ihl, 0)) != 0xFFFF)
		return -1;
	const uint8_t *tcp = ip + ihl;
	uint32_t tcp_len = tot - ihl;
	uint32_t doff = (tcp[12] >> 4) * 4u;
	if (doff < 20 || doff > tcp_len)
		return 0;
	uint8_t pseudo[12];
	memcpy(pseudo, ip + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = 6;
	pseudo[10] = (uint8_t)(tcp_len >> 8);
	pseudo[11] = (uint8_t)tcp_len;
	uint32_t sum = wb_csum_partial(pseudo, 12, 0);
	if (wb_csum_fold(wb_csum_partial(tcp, tcp_len, sum)) != 0xFFFF)
		return -1;
	*s = (struct wb_tcp_seg){
		.src_addr = be32(ip + 12), .dst_addr = be32(ip + 16),
		.src_port = be16(tcp), .dst_port = be16(tcp + 2),
		.seq = be32(tcp + 4), .ack = be32(tcp + 8), .flags = tcp[13] & 0x1F,
		.payload = tcp + doff, .len = tcp_len - doff, .ts_recv = ts,
	};
	return 1;
}

int tcp_pcap_load(const char *path, struct tcp_pcap *p)
{
	int ret = -EBADMSG;
	memset(p, 0, sizeof(*p));
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	p->data = malloc(sz > 0 ? (size_t)sz : 1);
	if (!p->data) {
		ret = -ENOMEM;
		goto out_close;
	}
	if (sz < 24 || fread(p->data, 1, (size_t)sz, f) != (size_t)sz)
		goto out_free;
	p->size = (uint64_t)sz;
	uint32_t magic = le32(p->data);
	uint64_t frac_ns = magic == 0xA1B23C4D ? 1 : magic == 0xA1B2C3D4 ? 1000 : 0;
	if (!frac_ns)
		goto out_free; /* classic little-endian pcap only */
	uint64_t cap = (p->size - 24) / 16 + 1;
	p->segs = calloc(cap, sizeof(*p->segs));
	if (!p->segs) {
		ret = -ENOMEM;
		goto out_free;
	}
	for (uint64_t off = 24; off + 16 <= p->size;) {
		uint64_t ts = le32(p->data + off) * 1000000000ULL + le32(p->data + off + 4) * frac_ns;
		uint32_t incl = le32(p->data + off + 8);
		if (off + 16 + incl > p->size)
			break; /* a cut last record */
		p->frames++;
		int r = decode(p->data + off + 16, incl, ts, &p->segs[p->nsegs]);
		if (r > 0) {
			p->tcp++;
			p->nsegs++;
		} else if (r < 0) {
			p->bad_checksum++;
		} else {
			p->not_tcp++;
		}
		off += 16 + incl;
	}
	fclose(f);
	return 0;
out_free:
	free(p->segs);
	free(p->data);
	memset(p, 0, sizeof(*p));
out_close:
	fclose(f);
	return ret;
}

void tcp_pcap_free(struct tcp_pcap *p)
{
	free(p->segs);
	free(p->data);
	memset(p, 0, sizeof(*p));
}
