/* The appliance configuration: one YAML schema (docs/config.md), loaded with libcyaml,
 * validated with errors that name file, line, field and reason. */
#ifndef WB_CONFIG_H
#define WB_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WB_MAX_PORTS 16
#define WB_MAX_WORKERS 16
#define WB_MAX_PERSISTERS 16
#define WB_MAX_FEEDS 64
#define WB_MAX_RXQ_PER_WORKER 16
#define WB_MAX_EAL_ARGS 32
#define WB_NAME_LEN 32
#define WB_MAX_ACL_IDS 32          /* uids or gids per control ACL list */
#define WB_MAX_FILTER_SYMBOLS 1024 /* feeds[].symbols entries */
#define WB_SYMBOL_LEN 9            /* 8 characters and a NUL */

enum wb_numa_policy { WB_NUMA_WARN = 0, WB_NUMA_REFUSE = 1, WB_NUMA_IGNORE = 2 };
enum wb_durability { WB_DURABLE_NONE = 0, WB_DURABLE_INTERVAL = 1, WB_DURABLE_BLOCK = 2 };
enum wb_log_level { WB_LOG_ERROR = 0, WB_LOG_WARN = 1, WB_LOG_INFO = 2, WB_LOG_DEBUG = 3 };
enum wb_config_policy { WB_CFG_INTEGRITY_FLAG = 0, WB_CFG_INTEGRITY_FREEZE = 1 };

struct wb_endpoint {
	uint32_t addr; /* IPv4, host byte order */
	uint16_t port; /* host byte order */
};

struct wb_port_conf {
	char name[WB_NAME_LEN];
	char device[256];  /* PCI address "0000:3b:00.0" or a vdev string "net_pcap0,rx_pcap=..." */
	uint16_t rx_queues;
	uint16_t tx_queues;
	uint16_t rx_descriptors;
	uint16_t tx_descriptors;
	uint32_t mempool_size; /* mbufs */
	uint32_t mbuf_cache;
	bool promiscuous;
	char exception_tap[16]; /* kernel interface (net_tap) for the port's host traffic; "" = none */
	uint32_t exception_pps; /* host frames per second forwarded to the kernel at most */
};

struct wb_rxq_conf {
	uint16_t port;  /* index into ports[] */
	uint16_t queue;
};

struct wb_worker_conf {
	char name[WB_NAME_LEN];
	unsigned lcore;
	uint32_t nrxq;
	struct wb_rxq_conf rxq[WB_MAX_RXQ_PER_WORKER];
	uint32_t ring_size;   /* events; power of two */
	uint16_t burst;       /* rx burst size */
	int persister;        /* index into persisters[], -1 = none (events counted only) */
};

struct wb_persister_conf {
	char name[WB_NAME_LEN];
	unsigned lcore;
};

struct wb_feed_conf {
	char name[WB_NAME_LEN];
	char protocol[WB_NAME_LEN]; /* a registered plug-in name, e.g. "itch50-moldudp64" */
	struct wb_endpoint line[2]; /* line A, line B */
	bool has_line_b;
	uint16_t port;   /* index into ports[] carrying it */
	uint16_t queue;
	int worker;      /* derived: the worker polling port/queue */
	bool raw_capture;
	char credentials[256]; /* SoupBinTCP login "user:password" file, mode 0600; "" = none */
	/* book sizing and policy */
	uint32_t max_orders;
	uint32_t order_ring; /* order ring slots, a power of two; 0 = the one at or above 4 x max_orders */
	uint32_t max_levels;
	uint32_t max_symbols;
	uint32_t snapshot_depth;
	enum wb_config_policy integrity_policy;
	/* recovery (MoldUDP64 re-request server, SoupBinTCP); addr 0 = none */
	struct wb_endpoint rerequest;
	struct wb_endpoint soup;
	struct wb_endpoint rerequest_source; /* our address:port re-requests leave from; responses come back to it */
	uint8_t rerequest_mac[6];            /* next hop towards the re-request server; 00:.. = broadcast */
	uint32_t gap_timeout_ms;
	uint32_t line_silence_ms;
	uint32_t reorder_buffer; /* packets held while a gap is open */
	/* symbols to keep (events of others are dropped before the ring); 0 = all. Live. */
	uint32_t nsymbols;
	char symbols[WB_MAX_FILTER_SYMBOLS][WB_SYMBOL_LEN];
};

struct wb_capture_conf {
	char directory[PATH_MAX];
	int zstd_level;          /* -7..19; negative = fast levels */
	uint32_t block_bytes;    /* uncompressed events per block */
	uint64_t rotate_bytes;
	uint32_t rotate_seconds;
	enum wb_durability durability;
	uint32_t durability_ms;  /* for WB_DURABLE_INTERVAL */
	uint64_t retention_bytes;  /* 0 = unlimited */
	uint32_t retention_hours;  /* 0 = unlimited */
	uint32_t queue_depth;      /* io_uring writes in flight */
};

struct wb_control_conf {
	char socket[108];
	uint32_t mode;       /* e.g. 0660 */
	char group[64];      /* "" = leave as is */
	char metrics_file[PATH_MAX]; /* "" = off */
	uint32_t metrics_interval_ms;
	/* Who may use the socket (SO_PEERCRED). Root and the daemon's own uid are always
	 * admin; empty read lists = anyone who can open the socket may read. */
	uint32_t nread_uids, nread_gids, nadmin_uids, nadmin_gids;
	uint32_t read_uids[WB_MAX_ACL_IDS], read_gids[WB_MAX_ACL_IDS];
	uint32_t admin_uids[WB_MAX_ACL_IDS], admin_gids[WB_MAX_ACL_IDS];
};

struct wb_config {
	char path[PATH_MAX];
	enum wb_numa_policy numa_policy;
	enum wb_log_level log_level;
	unsigned control_lcore;
	char file_prefix[64];           /* DPDK --file-prefix; "" = "wirebook" */
	uint32_t neal_args;
	char eal_args[WB_MAX_EAL_ARGS][128];
	uint32_t nports, nworkers, npersisters, nfeeds;
	struct wb_port_conf ports[WB_MAX_PORTS];
	struct wb_worker_conf workers[WB_MAX_WORKERS];
	struct wb_persister_conf persisters[WB_MAX_PERSISTERS];
	struct wb_feed_conf feeds[WB_MAX_FEEDS];
	struct wb_capture_conf capture;
	struct wb_control_conf control;
};

/* Loads and validates path. On error returns a negative errno and writes one line per
 * problem into err ("FILE:LINE: FIELD: reason"), as many as fit. ncores is the number of
 * cores this machine has (sysconf), used to reject cores it does not have. */
int wb_config_load(const char *path, unsigned ncores, struct wb_config *cfg, char *err, size_t errlen);

/* Validation only (cross-field rules), for a config built in code. */
int wb_config_validate(const struct wb_config *cfg, unsigned ncores, char *err, size_t errlen);

/* wb_config_validate, then derives what the file does not say (each feed's worker from
 * its port/queue), as wb_config_load does: for a config built in code. */
int wb_config_resolve(struct wb_config *cfg, unsigned ncores, char *err, size_t errlen);

/* Fills defaults for everything optional. */
void wb_config_defaults(struct wb_config *cfg);

/* Index of the feed whose line A or B is (addr, port), or -1; line gets 0 (A) or 1 (B). */
int wb_config_find_line(const struct wb_config *cfg, uint32_t addr, uint16_t port, int *line);

/* "a.b.c.d:port" -> endpoint; 0 or -EINVAL. */
int wb_endpoint_parse(const char *s, struct wb_endpoint *ep);
/* endpoint -> "a.b.c.d:port" */
void wb_endpoint_format(const struct wb_endpoint *ep, char *buf, size_t n);

const char *wb_log_level_name(enum wb_log_level l);

#endif
