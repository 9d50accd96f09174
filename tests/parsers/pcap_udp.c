/* Test helper: Ethernet (optionally 802.1Q/QinQ tagged) / IPv4 / UDP stripping over libpcap. */
#include "pcap_udp.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <stdlib.h>
#include <unistd.h>

#include "wire.h"

struct wb_pcap_udp {
	pcap_t *pcap;
	uint64_t frame;
	uint64_t skipped;
};

int wb_pcap_udp_open(const char *path, struct wb_pcap_udp **out)
{
	char err[PCAP_ERRBUF_SIZE];
	struct wb_pcap_udp *pu;
	int ret;

	if (access(path, R_OK) != 0)
		return -ENOENT;
	pu = calloc(1, sizeof(*pu));
	if (!pu)
		return -ENOMEM;
	pu->pcap = pcap_open_offline(path, err);
	if (!pu->pcap) {
		ret = -EIO;
		goto out_free;
	}
	if (pcap_datalink(pu->pcap) != DLT_EN10MB) {
		ret = -EPROTO;
		goto out_close;
	}
	*out = pu;
	return 0;

out_close:
	pcap_close(pu->pcap);
out_free:
	free(pu);
	return ret;
}

/* Returns the UDP payload inside one Ethernet frame, or NULL when it is not IPv4/UDP. */
static const uint8_t *udp_payload(const uint8_t *p, size_t caplen, size_t *len)
{
	size_t off = 12;
	uint16_t ethertype;

	if (caplen < 14)
		return NULL;
	ethertype = wb_be16(p + off);
	/* 802.1Q and 802.1ad tags: the OMI captures carry one VLAN tag. */
	while (ethertype == 0x8100 || ethertype == 0x88a8) {
		off += 4;
		if (caplen < off + 2)
			return NULL;
		ethertype = wb_be16(p + off);
	}
	off += 2;
	if (ethertype != 0x0800 || caplen < off + 20)
		return NULL;
	size_t ihl = (size_t)(p[off] & 0x0f) * 4;
	if ((p[off] >> 4) != 4 || ihl < 20 || p[off + 9] != 17 || caplen < off + ihl + 8)
		return NULL;
	off += ihl;
	size_t udp_len = wb_be16(p + off + 4);
	if (udp_len < 8 || caplen < off + udp_len)
		return NULL;
	*len = udp_len - 8;
	return p + off + 8;
}

int wb_pcap_udp_next(struct wb_pcap_udp *pu, const uint8_t **payload, size_t *len, uint64_t *frame)
{
	struct pcap_pkthdr *h;
	const u_char *data;

	for (;;) {
		int r = pcap_next_ex(pu->pcap, &h, &data);
		if (r != 1)
			return 0;
		pu->frame++;
		const uint8_t *pl = udp_payload(data, h->caplen, len);
		if (!pl) {
			pu->skipped++;
			continue;
		}
		*payload = pl;
		*frame = pu->frame;
		return 1;
	}
}

uint64_t wb_pcap_udp_skipped(const struct wb_pcap_udp *pu)
{
	return pu->skipped;
}

void wb_pcap_udp_close(struct wb_pcap_udp *pu)
{
	if (!pu)
		return;
	pcap_close(pu->pcap);
	free(pu);
}
