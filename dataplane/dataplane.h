/* The DPDK dataplane: EAL, ports and mempools on their NUMA node, and one pinned polling
 * worker per configured lcore. Each worker rx-bursts its queues, decodes and classifies
 * frames, hands feed datagrams to their protocol plug-in, and pushes the resulting events
 * onto its own SPSC ring. Only the worker writes its books and counters. */
#ifndef WB_DATAPLANE_H
#define WB_DATAPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "evring.h"
#include "feed.h"
#include "histo.h"
#include "pkt.h"

#define WB_MAX_REPLAY 16

struct wb_dataplane;

struct wb_dp_opts {
	const struct wb_config *cfg;
	const char *const *replay; /* pcap files replacing the configured ports, or NULL */
	unsigned nreplay;
	const char *prog;          /* argv[0] for EAL */
	bool check_udp_checksum;   /* verify UDP checksums in software */
};

struct wb_port_stats {
	char name[WB_NAME_LEN];
	uint16_t port_id;
	int numa_node;
	uint64_t rx_packets, rx_bytes, rx_missed, rx_errors, rx_nombuf;
	uint64_t tx_packets, tx_errors;
};

struct wb_worker_stats {
	char name[WB_NAME_LEN];
	unsigned lcore;
	int numa_node;
	const char *state;          /* "starting", "polling", "inputs-done", "stopped" */
	uint64_t bursts, packets, bytes, empty_polls;
	uint64_t busy_tsc, idle_tsc; /* TSC ticks spent in productive vs empty polls (replay waits for ring room excluded) */
	uint64_t verdicts[WB_PKT_VERDICT_MAX];
	uint64_t multi_segment_drops, foreign_feed_drops;
	uint64_t events, event_batch_overflow;
	uint64_t ring_drops, ring_high_water, ring_size, ring_occupancy;
	uint64_t ring_waits, ring_wait_tsc; /* replay: flushes that waited for ring room; TSC ticks waited */
	uint64_t raw_packets, raw_drops, raw_high_water_bytes; /* raw-packet ring */
	/* exception path: host frames to the kernel's tap, and what the kernel sends back */
	uint64_t host_to_kernel, host_rate_dropped, host_tx_failed, kernel_to_wire, kernel_tx_failed;
	uint64_t frames_sent, frames_send_failed; /* frames plug-ins transmitted (re-requests) */
};

struct wb_line_stats {
	uint64_t packets, bytes;
};

/* EAL init, ports, mempools, feeds, rings (nothing runs yet). err gets a message. */
int wb_dataplane_create(const struct wb_dp_opts *opts, struct wb_dataplane **out, char *err, size_t errlen);
/* Launches the workers on their lcores. */
int wb_dataplane_start(struct wb_dataplane *dp);
/* Replay: true once every input is exhausted and every worker has flushed its events. */
bool wb_dataplane_inputs_done(const struct wb_dataplane *dp);
/* Stops and joins the workers (idempotent). */
void wb_dataplane_stop(struct wb_dataplane *dp);
/* Closes ports and cleans the EAL up. */
void wb_dataplane_destroy(struct wb_dataplane *dp);

unsigned wb_dataplane_nworkers(const struct wb_dataplane *dp);
unsigned wb_dataplane_nports(const struct wb_dataplane *dp);
unsigned wb_dataplane_nfeeds(const struct wb_dataplane *dp);
struct wb_evring *wb_dataplane_ring(struct wb_dataplane *dp, unsigned worker);
/* The worker's raw-packet ring, or NULL when none of its feeds captures raw packets. */
struct wb_rawring *wb_dataplane_rawring(struct wb_dataplane *dp, unsigned worker);
const struct wb_feed_proto *wb_dataplane_feed_proto(const struct wb_dataplane *dp, unsigned feed);
void *wb_dataplane_feed_state(const struct wb_dataplane *dp, unsigned feed);
struct wb_bookset *wb_dataplane_feed_books(const struct wb_dataplane *dp, unsigned feed);
int wb_dataplane_feed_worker(const struct wb_dataplane *dp, unsigned feed);

void wb_dataplane_port_stats(const struct wb_dataplane *dp, unsigned port, struct wb_port_stats *out);
void wb_dataplane_worker_stats(const struct wb_dataplane *dp, unsigned w, struct wb_worker_stats *out);
void wb_dataplane_line_stats(const struct wb_dataplane *dp, unsigned feed, unsigned line, struct wb_line_stats *out);
/* Unmatched = valid UDP to no configured line, summed over workers. */
uint64_t wb_dataplane_unmatched(const struct wb_dataplane *dp);
/* Receive-to-book latency (ns), merged over workers into snap (caller zeroes it). */
void wb_dataplane_latency(const struct wb_dataplane *dp, struct wb_histo_snap *snap);
/* TSC frequency, for converting. */
uint64_t wb_dataplane_tsc_hz(const struct wb_dataplane *dp);

#endif
