/* The control plane: newline-delimited JSON requests over a UNIX stream socket, served by
 * one thread off the dataplane cores. It only reads lock-free views and counters, and
 * posts operator requests the workers apply themselves.
 *
 * ctl.c (no DPDK) owns the socket, the peer-credential ACL, request parsing, dispatch,
 * the built-in commands (config_show, reload, metrics, replay, help) and the metrics
 * file; ctl_dp.c registers the commands that read the running dataplane. */
#ifndef WB_CTL_H
#define WB_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

#define WB_CTL_MAX_REQUEST 65536 /* bytes in one request line */
#define WB_CTL_MAX_CLIENTS 128
#define WB_CTL_REQUEST_TIMEOUT_MS 5000
#define WB_CTL_MAX_COMMANDS 32
#define WB_CTL_STREAM_BUF 65536 /* replay output buffered per client: the flow-control window */

struct wb_dataplane;
struct wb_persister;
struct wb_ctl;

/* Applies the live-safe part of a validated reload (running -> next) to the running
 * appliance; appends a line per applied change to applied (a JSON array). Called on the
 * control thread before the running config is replaced. */
typedef int (*wb_ctl_apply_fn)(void *arg, const struct wb_config *running, const struct wb_config *next,
			       json_t *applied, char *err, size_t errlen);

struct wb_ctl_opts {
	struct wb_config *cfg;     /* the running config; reload rewrites its live fields */
	const char *config_path;   /* re-read by reload; NULL = reload refused */
	const char *socket_path;   /* NULL = no socket (tests, fuzzing): wb_ctl_handle only */
	struct wb_dataplane *dp;
	struct wb_persister *const *persisters;
	unsigned npersisters;
	uint64_t start_ns;
	unsigned ncores;           /* for reload validation; 0 = sysconf */
};

/* The credentials of the peer that sent a request. */
#define WB_CTL_PEER_GROUPS 256
struct wb_ctl_peer {
	uid_t uid;
	gid_t gid;                         /* primary group (SO_PEERCRED) */
	uint32_t ngroups;                  /* supplementary groups (SO_PEERGROUPS) */
	gid_t groups[WB_CTL_PEER_GROUPS];
};

/* A command served by a module. admin: mutating, allowed to admins only. run returns the
 * result object, or NULL with a message in err. */
struct wb_ctl_cmd {
	const char *name;
	bool admin;
	json_t *(*run)(void *arg, json_t *req, char *err, size_t errlen);
	void *arg;
	const char *help;
};

/* Binds the socket (refusing if another daemon serves it) with the configured mode and group. */
int wb_ctl_create(const struct wb_ctl_opts *o, struct wb_ctl **out, char *err, size_t errlen);
/* Hands the running appliance to the control plane (the socket is bound before the EAL
 * starts so that a second daemon fails fast) and registers the dataplane commands
 * (ctl_dp.c, DPDK builds only). */
void wb_ctl_attach(struct wb_ctl *c, struct wb_dataplane *dp, struct wb_persister *const *persisters,
		   unsigned npersisters);
/* Adds or replaces a command; -ENOSPC when the table is full. */
int wb_ctl_register(struct wb_ctl *c, const struct wb_ctl_cmd *cmd);
/* Reload applies its live part through fn (else only the control plane's own fields). */
void wb_ctl_set_apply(struct wb_ctl *c, wb_ctl_apply_fn fn, void *arg);
/* Serves requests for up to timeout_ms, streams replays, writes the metrics file when
 * due; returns 0 or a negative errno. */
int wb_ctl_poll(struct wb_ctl *c, int timeout_ms);
/* Re-reads the config file and applies what is safe (SIGHUP and the reload command).
 * Returns the response object ({"ok":...}). */
json_t *wb_ctl_reload(struct wb_ctl *c);
/* The options the ctl runs with (cfg is the running config). */
const struct wb_ctl_opts *wb_ctl_options(const struct wb_ctl *c);
/* Closes every client and removes the socket file. */
void wb_ctl_destroy(struct wb_ctl *c);

/* Handles one request line as root; returns a new response object ({"ok":...}). Exposed
 * for tests and the fuzz target; works on a ctl with no socket and no dataplane. */
json_t *wb_ctl_handle(struct wb_ctl *c, const char *line, size_t len);
/* The same, checked against the ACL for peer. */
json_t *wb_ctl_handle_peer(struct wb_ctl *c, const struct wb_ctl_peer *peer, const char *line, size_t len);
/* Whether peer may read / mutate under the running config. */
bool wb_ctl_may_read(const struct wb_ctl *c, const struct wb_ctl_peer *peer);
bool wb_ctl_may_admin(const struct wb_ctl *c, const struct wb_ctl_peer *peer);

/* The effective config as JSON (config_show). */
json_t *wb_config_json(const struct wb_config *cfg);
/* Compares two validated configs: fields that need a restart go to restart, live-safe
 * ones to live (JSON arrays of field paths). */
void wb_config_diff(const struct wb_config *a, const struct wb_config *b, json_t *restart, json_t *live);

/* Prometheus text exposition (version 0.0.4) of a stats object; malloc'ed string. */
char *wb_metrics_render(json_t *stats);
/* Writes the exposition to path through a temp file and rename (textfile collector). */
int wb_metrics_write_file(const char *path, json_t *stats);

/* Everything counted anywhere, as one JSON object (stats command, --summary-json). */
json_t *wb_stats_json(struct wb_dataplane *dp, struct wb_persister *const *persisters, unsigned npersisters,
		      const struct wb_config *cfg);
/* One symbol's published book in the common shape, at most depth levels. */
json_t *wb_book_json(struct wb_dataplane *dp, const char *symbol, uint32_t depth, int feed, char *err, size_t errlen);
/* Every symbol's book at full depth (writer stopped): {"symbols":[...]} for one feed. */
json_t *wb_books_full_json(struct wb_dataplane *dp, unsigned feed);

#endif
