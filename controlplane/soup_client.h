/* SoupBinTCP recovery client (docs/recovery.md): logs into a SoupBinTCP server at a wanted
 * sequence and hands every sequenced message, numbered, to a callback. It owns no thread:
 * the control-plane poll loop drives it through pollfd/service. The protocol state machine
 * is also drivable from bytes alone (transport_send + connected/on_bytes/disconnected/tick)
 * so a TCP stream reassembled off the NIC ring can feed the same code. */
#ifndef WB_SOUP_CLIENT_H
#define WB_SOUP_CLIENT_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "soup.h"

enum wb_soup_state {
	WB_SOUP_ST_IDLE,       /* created, not started */
	WB_SOUP_ST_CONNECTING, /* TCP connect in progress */
	WB_SOUP_ST_LOGIN_SENT, /* connected, Login Request sent, awaiting A or J */
	WB_SOUP_ST_LOGGED_IN,  /* receiving sequenced data */
	WB_SOUP_ST_LOGGING_OUT,/* Logout Request sent, awaiting the server's close */
	WB_SOUP_ST_BACKOFF,    /* disconnected, waiting to reconnect at last + 1 */
	WB_SOUP_ST_STOPPED,    /* terminal: stopped, rejected or end of session */
};

enum wb_soup_event {
	WB_SOUP_EV_CONNECTING,       /* detail: "a.b.c.d:port" */
	WB_SOUP_EV_LOGIN_SENT,       /* detail: "session S seq N" requested */
	WB_SOUP_EV_LOGGED_IN,        /* detail: "session S next N" from Login Accepted */
	WB_SOUP_EV_REJECTED_AUTH,    /* J 'A': not authorized; stopped, no reconnect */
	WB_SOUP_EV_REJECTED_SESSION, /* J 'S': session not available; stopped */
	WB_SOUP_EV_END_OF_SESSION,   /* Z: disconnected, no reconnect */
	WB_SOUP_EV_TIMEOUT,          /* nothing received for timeout_ms: reconnecting */
	WB_SOUP_EV_CONNECTION_LOST,  /* peer closed, error or refused: reconnecting */
	WB_SOUP_EV_PROTOCOL_ERROR,   /* malformed or unexpected packet: reconnecting */
	WB_SOUP_EV_STOPPED,          /* after wb_soup_client_stop */
};

struct wb_soup_client_opts {
	struct wb_endpoint server;
	char user[7], pass[11];   /* NUL-terminated; sent space padded */
	uint32_t heartbeat_ms;     /* send R after this much send silence (default 1000) */
	uint32_t timeout_ms;       /* receive silence that kills the link (default 15000) */
	uint32_t reconnect_min_ms; /* first reconnect delay, doubled per failure (default 100) */
	uint32_t reconnect_max_ms; /* backoff ceiling (default 5000) */
	void (*on_message)(void *arg, uint64_t seq, const uint8_t *msg, uint16_t len);
	void (*on_event)(void *arg, enum wb_soup_event ev, const char *detail); /* may be NULL */
	void *arg;
	/* Bytes-only mode when non-NULL: the client opens no socket and writes through this;
	 * returns bytes taken (all or nothing for these small packets) or a negative errno. */
	int (*transport_send)(void *arg, const uint8_t *data, size_t n);
	void (*transport_close)(void *arg); /* bytes-only mode: drop the stream (may be NULL) */
};

struct wb_soup_client_stats {
	uint64_t connects;          /* connection attempts */
	uint64_t logins;            /* Login Accepted */
	uint64_t rejects_auth;      /* J 'A' */
	uint64_t rejects_session;   /* J 'S' */
	uint64_t rejects_other;     /* J with another code */
	uint64_t reconnects;        /* reconnect attempts after a lost link or a timeout */
	uint64_t timeouts;
	uint64_t connection_lost;
	uint64_t protocol_errors;   /* malformed A/J, data before login, unknown type */
	uint64_t heartbeats_sent;
	uint64_t heartbeats_received;
	uint64_t debug_packets;
	uint64_t messages;          /* sequenced data delivered */
	uint64_t bytes;             /* bytes received from the server */
	uint64_t last_seq;          /* last sequence delivered (0 = none yet) */
	uint64_t next_seq;          /* sequence the next S will carry / the next login asks */
	char session[WB_SOUP_SESSION_LEN + 1];
	enum wb_soup_state state;
	const char *state_name;
};

struct wb_soup_client;

/* Fills defaults (timings above, user/pass empty). */
void wb_soup_client_opts_default(struct wb_soup_client_opts *o);

/* 0, -EINVAL (no on_message, zero timings, min > max) or -ENOMEM. */
int wb_soup_client_create(const struct wb_soup_client_opts *opts, struct wb_soup_client **out);
void wb_soup_client_destroy(struct wb_soup_client *c);

/* Begins connecting (socket mode) or waits for wb_soup_client_connected (bytes-only mode).
 * session: 10 bytes, all spaces = the current session; seq: next wanted (0 = from now).
 * -EALREADY when running; -errno when the socket cannot be created. */
int wb_soup_client_start(struct wb_soup_client *c, const char session[WB_SOUP_SESSION_LEN], uint64_t seq,
			 uint64_t now_ms);
/* Graceful logout: sends O when logged in and waits for the close; otherwise stops now. */
void wb_soup_client_stop(struct wb_soup_client *c, uint64_t now_ms);

/* Socket mode. pollfd: 1 with *pfd filled, 0 when nothing to poll now (backoff, stopped).
 * service: call every loop turn (revents 0 when the fd was not ready): it completes the
 * connect, reads, frames, sends heartbeats, detects the timeout and reconnects. */
int wb_soup_client_pollfd(const struct wb_soup_client *c, struct pollfd *pfd);
void wb_soup_client_service(struct wb_soup_client *c, short revents, uint64_t now_ms);
/* Milliseconds until the next timer is due (for the poll timeout); -1 when none. */
int wb_soup_client_timeout(const struct wb_soup_client *c, uint64_t now_ms);

/* Bytes-only entries (also used by service). connected: the stream is up, the login goes
 * out; on_bytes: bytes from the server; disconnected: the stream is gone; tick: timers. */
void wb_soup_client_connected(struct wb_soup_client *c, uint64_t now_ms);
void wb_soup_client_on_bytes(struct wb_soup_client *c, const uint8_t *data, size_t n, uint64_t now_ms);
void wb_soup_client_disconnected(struct wb_soup_client *c, uint64_t now_ms);
void wb_soup_client_tick(struct wb_soup_client *c, uint64_t now_ms);
/* Bytes-only mode: true when the client wants a (re)connection now. */
int wb_soup_client_wants_connect(const struct wb_soup_client *c, uint64_t now_ms);

void wb_soup_client_stats(const struct wb_soup_client *c, struct wb_soup_client_stats *out);
const char *wb_soup_state_name(enum wb_soup_state s);
const char *wb_soup_event_name(enum wb_soup_event ev);

#endif
