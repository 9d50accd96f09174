#include "iex_pcap.h"

#include <errno.h>
#include <limits.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint16_t be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static uint32_t be32(const uint8_t *p) { return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]; }

int iex_shared_path(const char *rel, char *buf, size_t n)
{
	const char *shared = getenv("WB_SHARED_DIR");
	const char *src = getenv("WB_SOURCE_DIR");
	if (shared && *shared)
		snprintf(buf, n, "%s/data/%s", shared, rel);
	else
		snprintf(buf, n, "%s/../shared/data/%s", src ? src : ".", rel);
	return access(buf, R_OK) == 0 ? 0 : -ENOENT;
}

/* UDP payload bounds of an Ethernet frame; 0 when it is UDP over IPv4 and whole. */
static int udp_view(const uint8_t *f, uint32_t caplen, struct iex_datagram *d, int *cut)
{
	uint32_t off = 12;
	*cut = 0;
	if (caplen < 14)
		return -1;
	uint16_t type = be16(f + off);
	while ((type == 0x8100 || type == 0x88A8) && caplen >= off + 6) {
		off += 4;
		type = be16(f + off);
	}
	off += 2;
	if (type != 0x0800 || caplen < off + 20 || f[off + 9] != 17)
		return -1;
	uint32_t ihl = (uint32_t)(f[off] & 0x0F) * 4;
	uint32_t tot = be16(f + off + 2);
	if (caplen < off + tot || tot < ihl + 8) {
		*cut = 1;
		return -1;
	}
	const uint8_t *udp = f + off + ihl;
	uint32_t ulen = be16(udp + 4);
	if (ulen < 8 || ulen > tot - ihl) {
		*cut = 1;
		return -1;
	}
	d->dst_addr = be32(f + off + 16);
	d->dst_port = be16(udp + 2);
	d->payload = udp + 8;
	d->len = ulen - 8;
	return 0;
}

int iex_capture_load(const char *path, const char *tmpdir, struct iex_capture *cap)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	char plain[PATH_MAX];
	int rc = 0;
	memset(cap, 0, sizeof(*cap));
	size_t plen = strlen(path);
	if (plen > 3 && strcmp(path + plen - 3, ".gz") == 0) {
		const char *base = strrchr(path, '/');
		snprintf(plain, sizeof(plain), "%s/%.*s", tmpdir, (int)(strlen(base ? base + 1 : path) - 3),
			 base ? base + 1 : path);
		char cmd[2 * PATH_MAX + 32];
		snprintf(cmd, sizeof(cmd), "gzip -dc '%s' > '%s'", path, plain);
		if (system(cmd) != 0)
			return -EIO;
	} else {
		snprintf(plain, sizeof(plain), "%s", path);
	}
	pcap_t *pc = pcap_open_offline(plain, errbuf);
	if (!pc) {
		fprintf(stderr, "%s: %s\n", plain, errbuf);
		return -EIO;
	}
	size_t cap_n = 1024, data_cap = 1 << 20, data_len = 0;
	size_t *offs = malloc(cap_n * sizeof(*offs));
	cap->dgrams = malloc(cap_n * sizeof(*cap->dgrams));
	cap->data = malloc(data_cap);
	if (!offs || !cap->dgrams || !cap->data) {
		rc = -ENOMEM;
		goto out_close;
	}
	struct pcap_pkthdr *ph;
	const uint8_t *frame;
	int r;
	int nsec = pcap_get_tstamp_precision(pc) == PCAP_TSTAMP_PRECISION_NANO;
	while ((r = pcap_next_ex(pc, &ph, &frame)) == 1) {
		cap->records++;
		struct iex_datagram d;
		int cut;
		if (ph->caplen < ph->len) {
			cap->truncated_records++;
			continue;
		}
		if (udp_view(frame, ph->caplen, &d, &cut) < 0) {
			if (cut)
				cap->truncated_records++;
			else
				cap->not_udp++;
			continue;
		}
		d.ts_ns = (uint64_t)ph->ts.tv_sec * 1000000000ULL + (uint64_t)ph->ts.tv_usec * (nsec ? 1 : 1000);
		if (cap->n == cap_n) {
			cap_n *= 2;
			void *a = realloc(offs, cap_n * sizeof(*offs));
			void *b = realloc(cap->dgrams, cap_n * sizeof(*cap->dgrams));
			if (a)
				offs = a;
			if (b)
				cap->dgrams = b;
			if (!a || !b) {
				rc = -ENOMEM;
				goto out_close;
			}
		}
		if (data_len + d.len > data_cap) {
			data_cap *= 2;
			void *a = realloc(cap->data, data_cap);
			if (!a) {
				rc = -ENOMEM;
				goto out_close;
			}
			cap->data = a;
		}
		memcpy(cap->data + data_len, d.payload, d.len);
		offs[cap->n] = data_len;
		data_len += d.len;
		cap->dgrams[cap->n++] = d;
	}
	/* A file cut inside its last record ends with an error: that record is truncated. */
	if (r == PCAP_ERROR)
		cap->truncated_records++;
	for (size_t k = 0; k < cap->n; k++)
		cap->dgrams[k].payload = cap->data + offs[k];
out_close:
	free(offs);
	pcap_close(pc);
	if (rc < 0)
		iex_capture_free(cap);
	return rc;
}

void iex_capture_free(struct iex_capture *cap)
{
	free(cap->dgrams);
	free(cap->data);
	memset(cap, 0, sizeof(*cap));
}
