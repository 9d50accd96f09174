/* wbsim: a deterministic Nasdaq TotalView-ITCH 5.0 exchange simulator (docs/wbsim.md).
 * One seed gives one session: the same messages, packets, faults and ground truth on
 * every run. The simulator keeps its own model of every live order, so every E/C/X/D/U
 * names a real live order and the final books are known exactly (the ground truth). */
#ifndef WB_SIM_H
#define WB_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "itch.h"

#define WB_SIM_MOLD_PAYLOAD_MAX 1400 /* bytes of UDP payload a Mold packet may fill */
#define WB_SIM_FRAME_MAX 1600        /* Ethernet + IPv4 + UDP + payload */
#define WB_SIM_ETH_HDR 14
#define WB_SIM_IP_HDR 20
#define WB_SIM_UDP_HDR 8

/* Faults injected on one line; every probability is per data packet and in [0, 1]. */
struct wb_sim_faults {
	double loss;        /* independent loss */
	double burst;       /* probability a burst of burst_len losses starts here */
	uint32_t burst_len; /* packets lost per burst (>= 1 when burst > 0) */
	double dup;         /* the packet is sent twice */
	double reorder;     /* the packet is swapped with the next one sent */
	double trunc;       /* the UDP payload is cut short at a random length */
	double garbage;     /* a random non-Mold datagram is sent before the packet */
};

/* One multicast line (A or B). Addresses and ports in host byte order. */
struct wb_sim_line {
	bool enabled;
	uint32_t group;   /* destination multicast group */
	uint16_t port;    /* destination UDP port */
	uint32_t lag_ns;  /* extra delay of this line (B lags A), plus up to lag_ns jitter */
	struct wb_sim_faults faults;
};

struct wb_sim_opts {
	uint32_t symbols;      /* locates 1..symbols (<= 65535) */
	uint64_t messages;     /* total messages in the session, system events included */
	uint64_t seed;
	char session[11];      /* Mold session, space padded to 10 on the wire */
	int year, month, day;  /* trading date; pcap times = its midnight in New York + ITCH time */
	struct wb_sim_line line[2]; /* [0] = A, [1] = B */
};

/* Defaults: 3000 symbols, 1,000,000 messages, seed 1, session WBSIM00001, 2026-11-20,
 * line A 233.54.12.111:26477, line B 233.49.196.111:26477 lagging 5 us, no faults,
 * both lines disabled until an output asks for them. */
void wb_sim_opts_default(struct wb_sim_opts *o);

/* Parses "a.b.c.d:port" into group/port; -EINVAL when malformed. */
int wb_sim_parse_endpoint(const char *s, uint32_t *group, uint16_t *port);
/* Parses "YYYY-MM-DD"; -EINVAL when malformed. */
int wb_sim_parse_date(const char *s, int *year, int *month, int *day);
/* UNIX time in ns of midnight in New York (EST or EDT) on the given date. */
uint64_t wb_sim_midnight_ns(int year, int month, int day);

struct wb_sim;

/* Creates a session; -EINVAL for options out of range (messages too few to carry the
 * directory and system events, symbols 0 or > 65535, bad probabilities). */
int wb_sim_create(const struct wb_sim_opts *opts, struct wb_sim **out);
void wb_sim_destroy(struct wb_sim *s);

/* Next message of the session, in order: returns 1 with *m (and its sequence number
 * in *seq if non-NULL), 0 when the session has ended. The model is updated as the
 * message is returned. */
int wb_sim_next(struct wb_sim *s, struct wb_itch_msg *m, uint64_t *seq);

/* Same, encoded with wb_itch_encode into buf (at least 64 bytes); *len its length. */
int wb_sim_next_encoded(struct wb_sim *s, uint8_t *buf, size_t *len, struct wb_itch_msg *m);

/* Runs the rest of the session into the outputs: an ITCH file in Nasdaq file framing
 * (NULL = none) and one pcap per enabled line (NULL path disables that line).
 * progress (may be NULL) is called about every million messages. Returns 0 or -errno. */
typedef void (*wb_sim_progress_cb)(void *arg, uint64_t done, uint64_t total);
int wb_sim_run(struct wb_sim *s, const char *itch_path, const char *pcap_a, const char *pcap_b,
	       wb_sim_progress_cb progress, void *arg);

struct wb_sim_line_stats {
	uint64_t frames;         /* pcap records written, garbage and duplicates included */
	uint64_t data_packets;   /* Mold data packets offered to the line */
	uint64_t lost_packets;   /* independent and burst losses */
	uint64_t lost_messages;
	uint64_t bursts;
	uint64_t duplicated;
	uint64_t reordered;
	uint64_t truncated;
	uint64_t garbage;
};

struct wb_sim_stats {
	uint64_t messages;      /* returned so far */
	uint64_t packets;       /* Mold data packets completed so far */
	uint64_t per_type[128]; /* by type byte */
	uint64_t live_orders;
	uint64_t peak_live_orders;
	uint64_t orders_added;
	struct wb_sim_line_stats line[2];
};
void wb_sim_stats(const struct wb_sim *s, struct wb_sim_stats *out);

/* The ground truth (docs/wbsim.md): counts, injected faults per line, and every
 * symbol's book at full depth, aggregated by price, best level first. Valid once the
 * session has ended; -EAGAIN before. The caller owns *out (json_decref). */
int wb_sim_truth(const struct wb_sim *s, json_t **out);
int wb_sim_write_truth(const struct wb_sim *s, const char *path);

/* ---- packet building, reusable by a live sender ---- */

/* Assembles one MoldUDP64 downstream packet. */
struct wb_sim_mold_packet {
	uint8_t buf[WB_SIM_MOLD_PAYLOAD_MAX + 64];
	size_t len;         /* bytes used, header included */
	uint16_t count;     /* message blocks */
	uint64_t seq;       /* sequence of the first block */
	uint64_t last_ts;   /* ITCH time of the last message added */
};
void wb_sim_mold_begin(struct wb_sim_mold_packet *p, const char session[10], uint64_t seq);
/* True when a message of msg_len bytes still fits under WB_SIM_MOLD_PAYLOAD_MAX
 * (an empty packet always takes one message). */
bool wb_sim_mold_fits(const struct wb_sim_mold_packet *p, size_t msg_len);
void wb_sim_mold_add(struct wb_sim_mold_packet *p, const uint8_t *msg, uint16_t msg_len);
/* Header-only packet: heartbeat (count 0) or end of session (0xFFFF), seq = next expected. */
size_t wb_sim_mold_control(uint8_t *buf, const char session[10], uint64_t next_seq, uint16_t count);

/* Builds Ethernet/IPv4/UDP around payload into frame (>= WB_SIM_FRAME_MAX bytes):
 * multicast MAC of the group, source 02:00:00:00:00:01, source 10.1.1.1:40000, TTL 32,
 * DF clear, correct IPv4 and UDP checksums. Returns the frame length or 0 if too big. */
size_t wb_sim_frame_build(uint8_t *frame, uint32_t group, uint16_t port, uint16_t ip_id,
			  const uint8_t *payload, size_t len);

/* Classic pcap, nanosecond magic 0xa1b23c4d, LINKTYPE_ETHERNET. */
int wb_sim_pcap_open(const char *path, FILE **out);
int wb_sim_pcap_write(FILE *f, uint64_t ts_ns, const uint8_t *frame, size_t len);
int wb_sim_pcap_close(FILE *f);

#endif
