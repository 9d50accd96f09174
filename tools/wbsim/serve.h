/* wbsim recovery servers (docs/recovery.md): a MoldUDP64 re-request server on UDP and a
 * SoupBinTCP server on TCP, both answering from one in-memory session history. Each is
 * nonblocking and single-threaded: the caller's poll loop drives it. */
#ifndef WB_SERVE_H
#define WB_SERVE_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "sim.h"

/* ---------------------------------------------------------------- history */

/* Encoded ITCH messages of one session, sequence 1..count. */
struct wb_serve_history {
	char session[10];  /* MoldUDP64 spelling: left-justified, space padded */
	uint64_t count;
	uint8_t *data;     /* messages back to back */
	uint64_t *offset;  /* count + 1 entries: message seq spans offset[seq-1]..offset[seq] */
};

/* The whole session a simulator run with these options generates. 0, -EINVAL, -ENOMEM. */
int wb_serve_history_from_sim(const struct wb_sim_opts *opts, struct wb_serve_history **out);
/* An ITCH file in Nasdaq file framing (wbsim gen --itch), named session (<= 10 chars).
 * -errno on I/O, -EBADMSG on a truncated frame. */
int wb_serve_history_from_itch(const char *path, const char *session, struct wb_serve_history **out);
void wb_serve_history_free(struct wb_serve_history *h);

static inline const uint8_t *wb_serve_history_msg(const struct wb_serve_history *h, uint64_t seq, uint16_t *len)
{
	*len = (uint16_t)(h->offset[seq] - h->offset[seq - 1]);
	return h->data + h->offset[seq - 1];
}

/* ---------------------------------------------------------------- re-request */

struct wb_rerequest_opts {
	uint32_t addr;      /* bind address, host order */
	uint16_t port;      /* 0 = any free port (see wb_rerequest_server_port) */
	double drop;        /* probability of dropping each response packet, for tests */
	uint64_t seed;      /* for drop */
};

struct wb_rerequest_stats {
	uint64_t requests;         /* well-formed requests answered */
	uint64_t ignored;          /* wrong size, seq < 1, other session, nothing at seq */
	uint64_t messages_sent;
	uint64_t packets_sent;
	uint64_t packets_dropped;  /* by the drop option */
	uint64_t send_errors;
};

struct wb_rerequest_server;

int wb_rerequest_server_create(const struct wb_rerequest_opts *opts, const struct wb_serve_history *h,
			       struct wb_rerequest_server **out);
void wb_rerequest_server_destroy(struct wb_rerequest_server *s);
int wb_rerequest_server_fd(const struct wb_rerequest_server *s);
uint16_t wb_rerequest_server_port(const struct wb_rerequest_server *s);
/* Answers every request waiting on the socket; call when the fd is readable. */
void wb_rerequest_server_service(struct wb_rerequest_server *s);
void wb_rerequest_server_stats(const struct wb_rerequest_server *s, struct wb_rerequest_stats *out);

/* ---------------------------------------------------------------- SoupBinTCP */

struct wb_soup_server_opts {
	uint32_t addr;
	uint16_t port;           /* 0 = any free port */
	char user[7], pass[11];  /* empty user = any credentials accepted */
	uint32_t heartbeat_ms;   /* send H after this much send silence (default 1000) */
	uint32_t timeout_ms;     /* client silence that drops it (default 15000) */
	bool end_of_session;     /* send Z after the last message (default true) */
	uint32_t max_clients;    /* default 16 */
	uint64_t disconnect_after; /* tests: close a connection after it sent this many messages */
};

struct wb_soup_server_stats {
	uint64_t connections;
	uint64_t refused;          /* over max_clients */
	uint64_t logins;
	uint64_t rejects_auth;
	uint64_t rejects_session;
	uint64_t messages_sent;
	uint64_t heartbeats_sent;
	uint64_t heartbeats_received;
	uint64_t end_of_session_sent;
	uint64_t logouts;
	uint64_t timeouts;          /* clients dropped for silence */
	uint64_t forced_disconnects;/* by disconnect_after or wb_soup_server_drop_all */
	uint64_t protocol_errors;   /* first packet not a valid login, malformed packets */
	uint64_t unsequenced;       /* U packets received (ignored) */
	uint32_t active;
};

struct wb_soup_server;

void wb_soup_server_opts_default(struct wb_soup_server_opts *o);
int wb_soup_server_create(const struct wb_soup_server_opts *opts, const struct wb_serve_history *h,
			  struct wb_soup_server **out);
void wb_soup_server_destroy(struct wb_soup_server *s);
uint16_t wb_soup_server_port(const struct wb_soup_server *s);
/* Fills up to max pollfds (listener first); returns how many. */
int wb_soup_server_pollfds(const struct wb_soup_server *s, struct pollfd *pfd, int max);
/* Handles the revents of the pollfds filled above, then timers; call every loop turn. */
void wb_soup_server_service(struct wb_soup_server *s, const struct pollfd *pfd, int n, uint64_t now_ms);
/* Tests: stop sending anything at all (no answers, no data, no heartbeats) while silent. */
void wb_soup_server_set_silent(struct wb_soup_server *s, bool silent);
/* Tests: close every client connection now. */
void wb_soup_server_drop_all(struct wb_soup_server *s);
void wb_soup_server_stats(const struct wb_soup_server *s, struct wb_soup_server_stats *out);

/* ---------------------------------------------------------------- wbsim serve */

struct wb_serve_run_opts {
	bool rerequest_on, soup_on;
	struct wb_rerequest_opts rerequest;
	struct wb_soup_server_opts soup;
	bool quiet;
};

/* Runs the enabled servers on h until SIGINT/SIGTERM, then prints their counters to
 * stderr. 0 or -errno (a server could not bind). */
int wb_serve_run(const struct wb_serve_run_opts *o, const struct wb_serve_history *h);

uint64_t wb_serve_now_ms(void);

/* `wbsim serve ARGS`: parses argv (argv[0] = "serve"), runs, returns the exit status. */
int wb_serve_main(int argc, char **argv);

#endif
