/* The control plane: newline-delimited JSON requests over a UNIX stream socket, served by
 * one thread off the dataplane cores. It only reads lock-free views and counters, and
 * posts operator requests the workers apply themselves. */
#ifndef WB_CTL_H
#define WB_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

#define WB_CTL_MAX_REQUEST 65536 /* bytes in one request line */
#define WB_CTL_MAX_CLIENTS 128
#define WB_CTL_REQUEST_TIMEOUT_MS 5000

struct wb_dataplane;
struct wb_persister;
struct wb_ctl;

struct wb_ctl_opts {
	const struct wb_config *cfg;
	const char *config_path;
	const char *socket_path;
	struct wb_dataplane *dp;
	struct wb_persister *const *persisters;
	unsigned npersisters;
	uint64_t start_ns;
};

/* Binds the socket (refusing if another daemon serves it) with the configured mode and group. */
int wb_ctl_create(const struct wb_ctl_opts *o, struct wb_ctl **out, char *err, size_t errlen);
/* Hands the running appliance to the control plane (the socket is bound before the EAL
 * starts so that a second daemon fails fast). */
void wb_ctl_attach(struct wb_ctl *c, struct wb_dataplane *dp, struct wb_persister *const *persisters,
		   unsigned npersisters);
/* Serves requests for up to timeout_ms; returns 0 or a negative errno. */
int wb_ctl_poll(struct wb_ctl *c, int timeout_ms);
/* Closes every client and removes the socket file. */
void wb_ctl_destroy(struct wb_ctl *c);

/* Handles one request object; returns a new response object ({"ok":...}). Exposed for
 * tests and the fuzz target. */
json_t *wb_ctl_handle(struct wb_ctl *c, const char *line, size_t len);

/* Everything counted anywhere, as one JSON object (stats command, --summary-json). */
json_t *wb_stats_json(struct wb_dataplane *dp, struct wb_persister *const *persisters, unsigned npersisters,
		      const struct wb_config *cfg);
/* One symbol's published book in the common shape, at most depth levels. */
json_t *wb_book_json(struct wb_dataplane *dp, const char *symbol, uint32_t depth, int feed, char *err, size_t errlen);
/* Every symbol's book at full depth (writer stopped): {"symbols":[...]} for one feed. */
json_t *wb_books_full_json(struct wb_dataplane *dp, unsigned feed);

#endif
