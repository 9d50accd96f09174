/* Test and bench helper: reads a classic pcap (us or ns stamps) into memory and decodes
 * Ethernet/IPv4/TCP frames into wb_tcp_seg, verifying both checksums. */
#ifndef WB_TEST_TCP_PCAP_H
#define WB_TEST_TCP_PCAP_H

#include <stdint.h>

#include "tcp_reasm.h"

struct tcp_pcap {
	uint8_t *data;  /* the whole file */
	uint64_t size;
	uint64_t frames, tcp, bad_checksum, not_tcp;
	struct wb_tcp_seg *segs; /* every valid TCP frame, in file order; payloads point into data */
	uint32_t nsegs;
};

/* 0 or a negative errno. */
int tcp_pcap_load(const char *path, struct tcp_pcap *p);
void tcp_pcap_free(struct tcp_pcap *p);

#endif
