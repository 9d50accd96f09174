/* Test helper: loads the UDP payloads of a pcap/pcapng capture (gzip allowed) into
 * memory with libpcap, the way the dataplane would see them. */
#ifndef WB_TEST_IEX_PCAP_H
#define WB_TEST_IEX_PCAP_H

#include <stddef.h>
#include <stdint.h>

struct iex_datagram {
	const uint8_t *payload;
	uint32_t len;
	uint64_t ts_ns;
	uint32_t dst_addr; /* host order */
	uint16_t dst_port;
};

struct iex_capture {
	struct iex_datagram *dgrams;
	size_t n;
	size_t records;           /* pcap records read */
	size_t truncated_records; /* captured shorter than on the wire (or than the IP length) */
	size_t not_udp;
	uint8_t *data;            /* payload storage */
};

/* Path of a shared data file ("iex/DEEP10.pcap.gz") under $WB_SHARED_DIR (default
 * $WB_SOURCE_DIR/../shared) into buf; 0, or -ENOENT when it is not there. */
int iex_shared_path(const char *rel, char *buf, size_t n);

/* Loads path (a .gz is decompressed into tmpdir first). 0 or a negative errno. */
int iex_capture_load(const char *path, const char *tmpdir, struct iex_capture *cap);
void iex_capture_free(struct iex_capture *cap);

#endif
