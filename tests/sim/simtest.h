/* Helpers shared by the wbsim tests: scratch directories, whole-file reads, sessions
 * generated with the library, and a minimal pcap reader that checks every frame. */
#ifndef WB_SIMTEST_H
#define WB_SIMTEST_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sim.h"

/* Test sessions are small so every test stays fast under the sanitizers. */
#define SIMTEST_SYMBOLS 50
#define SIMTEST_MESSAGES 200000

/* Creates a fresh directory under $TMPDIR (or /tmp); aborts the test on failure. */
void simtest_mkdtemp(char *out, size_t n);
/* Removes the files simtest_gen writes and the directory itself. */
void simtest_rmdir(const char *dir);
/* Reads a whole file into a malloc'd buffer; NULL if it cannot. */
uint8_t *simtest_read(const char *path, size_t *len);

/* Generates a session into dir/{d.itch,a.pcap,b.pcap,t.json} (b.pcap only when
 * with_b); returns 0 or -errno. */
int simtest_gen(const struct wb_sim_opts *o, const char *dir, int with_b);
/* Default small options for tests, seeded. */
void simtest_opts(struct wb_sim_opts *o, uint64_t seed);

/* One pcap record: the UDP payload of a checked Ethernet/IPv4/UDP frame. */
struct simtest_frame {
	uint64_t ts_ns;
	uint32_t dst_ip;
	uint16_t dst_port;
	const uint8_t *payload;
	size_t len;
};

/* Parses a whole nanosecond pcap; checks the file header, and for every frame the
 * multicast MAC, IPv4 header checksum, TTL, UDP checksum and lengths (cmocka asserts).
 * Returns the frames in a malloc'd array pointing into buf. */
struct simtest_frame *simtest_pcap_frames(const uint8_t *buf, size_t len, size_t *n);

#endif
