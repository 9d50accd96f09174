/* Test helper: walks a classic pcap/pcapng file and hands out UDP payloads. */
#ifndef WB_TEST_PCAP_UDP_H
#define WB_TEST_PCAP_UDP_H

#include <stddef.h>
#include <stdint.h>

struct wb_pcap_udp;

/* Opens path; -ENOENT when missing, -EPROTO for a link type other than Ethernet. */
int wb_pcap_udp_open(const char *path, struct wb_pcap_udp **out);

/* Next UDP payload: returns 1 with *payload, *len and *frame (1-based) set,
 * 0 at end of file. Frames that are not Ethernet[/802.1Q]/IPv4/UDP are counted and skipped. */
int wb_pcap_udp_next(struct wb_pcap_udp *pu, const uint8_t **payload, size_t *len, uint64_t *frame);

/* Frames skipped because they were not IPv4/UDP or were cut short. */
uint64_t wb_pcap_udp_skipped(const struct wb_pcap_udp *pu);

void wb_pcap_udp_close(struct wb_pcap_udp *pu);

#endif
