/* SoupBinTCP recovery client: one state machine, driven by a poll loop or by bytes alone. */
#include "soup_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define OUT_MAX 512   /* pending outbound bytes: login, heartbeats, logout */
#define RX_CHUNK 65536

struct wb_soup_client {
	struct wb_soup_client_opts o;
	enum wb_soup_state state;
	int fd;                 /* socket mode only; -1 when closed */
	bool bytes_only;
	char session[WB_SOUP_SESSION_LEN]; /* requested, then the one Login Accepted named */
	uint64_t next_seq;      /* next sequence to deliver / to ask for at login */
	uint64_t last_rx_ms;    /* last byte received (or connect start) */
	uint64_t last_tx_ms;    /* last byte sent */
	uint64_t reconnect_at_ms;
	uint32_t backoff_ms;
	bool link_up;           /* bytes-only mode: the caller's stream is up */
	struct wb_soup_client_stats st;
	uint8_t out[OUT_MAX];
	size_t out_len;
	struct wb_soup_framer framer;
	uint8_t rx[RX_CHUNK];
};

static const char *const state_names[] = {
	[WB_SOUP_ST_IDLE] = "idle",           [WB_SOUP_ST_CONNECTING] = "connecting",
	[WB_SOUP_ST_LOGIN_SENT] = "login-sent", [WB_SOUP_ST_LOGGED_IN] = "logged-in",
	[WB_SOUP_ST_LOGGING_OUT] = "logging-out", [WB_SOUP_ST_BACKOFF] = "backoff",
	[WB_SOUP_ST_STOPPED] = "stopped",
};

static const char *const event_names[] = {
	[WB_SOUP_EV_CONNECTING] = "connecting",
	[WB_SOUP_EV_LOGIN_SENT] = "login-sent",
	[WB_SOUP_EV_LOGGED_IN] = "logged-in",
	[WB_SOUP_EV_REJECTED_AUTH] = "rejected-not-authorized",
	[WB_SOUP_EV_REJECTED_SESSION] = "rejected-session-unavailable",
	[WB_SOUP_EV_END_OF_SESSION] = "end-of-session",
	[WB_SOUP_EV_TIMEOUT] = "timeout",
	[WB_SOUP_EV_CONNECTION_LOST] = "connection-lost",
	[WB_SOUP_EV_PROTOCOL_ERROR] = "protocol-error",
	[WB_SOUP_EV_STOPPED] = "stopped",
};

const char *wb_soup_state_name(enum wb_soup_state s)
{
	return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

const char *wb_soup_event_name(enum wb_soup_event ev)
{
	return (unsigned)ev < sizeof(event_names) / sizeof(event_names[0]) ? event_names[ev] : "?";
}

void wb_soup_client_opts_default(struct wb_soup_client_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->heartbeat_ms = 1000;
	o->timeout_ms = 15000;
	o->reconnect_min_ms = 100;
	o->reconnect_max_ms = 5000;
}

int wb_soup_client_create(const struct wb_soup_client_opts *opts, struct wb_soup_client **out)
{
	if (!opts->on_message || opts->heartbeat_ms == 0 || opts->timeout_ms == 0 ||
	    opts->reconnect_min_ms == 0 || opts->reconnect_min_ms > opts->reconnect_max_ms)
		return -EINVAL;
	struct wb_soup_client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->o = *opts;
	c->o.user[sizeof(c->o.user) - 1] = '\0';
	c->o.pass[sizeof(c->o.pass) - 1] = '\0';
	c->fd = -1;
	c->bytes_only = opts->transport_send != NULL;
	c->state = WB_SOUP_ST_IDLE;
	memset(c->session, ' ', sizeof(c->session));
	*out = c;
	return 0;
}

void wb_soup_client_destroy(struct wb_soup_client *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

/* Session without its padding, for event details. */
static void session_text(const char s[WB_SOUP_SESSION_LEN], char out[WB_SOUP_SESSION_LEN + 1])
{
	size_t a = 0, b = WB_SOUP_SESSION_LEN;
	while (a < b && s[a] == ' ')
		a++;
	while (b > a && s[b - 1] == ' ')
		b--;
	memcpy(out, s + a, b - a);
	out[b - a] = '\0';
}

static void emit(struct wb_soup_client *c, enum wb_soup_event ev, const char *detail)
{
	if (c->o.on_event)
		c->o.on_event(c->o.arg, ev, detail ? detail : "");
}

static void close_link(struct wb_soup_client *c)
{
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	} else if (c->link_up && c->o.transport_close) {
		c->o.transport_close(c->o.arg);
	}
	c->link_up = false;
	/* the framer is reset at the next login, not here: this may run inside its callback */
	c->out_len = 0;
}

static void schedule_reconnect(struct wb_soup_client *c, uint64_t now_ms)
{
	close_link(c);
	c->state = WB_SOUP_ST_BACKOFF;
	c->reconnect_at_ms = now_ms + c->backoff_ms;
	c->backoff_ms = c->backoff_ms >= c->o.reconnect_max_ms / 2 ? c->o.reconnect_max_ms : c->backoff_ms * 2;
}

static void finish(struct wb_soup_client *c, enum wb_soup_event ev, const char *detail)
{
	close_link(c);
	c->state = WB_SOUP_ST_STOPPED;
	emit(c, ev, detail);
}

static void link_lost(struct wb_soup_client *c, enum wb_soup_event ev, const char *detail, uint64_t now_ms)
{
	if (c->state == WB_SOUP_ST_LOGGING_OUT) {
		finish(c, WB_SOUP_EV_STOPPED, "logged out");
		return;
	}
	if (c->state == WB_SOUP_ST_STOPPED || c->state == WB_SOUP_ST_IDLE || c->state == WB_SOUP_ST_BACKOFF)
		return;
	schedule_reconnect(c, now_ms);
	emit(c, ev, detail);
}

/* Writes what the socket takes now and keeps the rest; -ENOBUFS when the peer stopped reading. */
static int flush_out(struct wb_soup_client *c)
{
	while (c->out_len > 0) {
		ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		memmove(c->out, c->out + n, c->out_len - (size_t)n);
		c->out_len -= (size_t)n;
	}
	return 0;
}

static int send_bytes(struct wb_soup_client *c, const uint8_t *data, size_t n, uint64_t now_ms)
{
	c->last_tx_ms = now_ms;
	if (c->bytes_only)
		return c->o.transport_send(c->o.arg, data, n) < 0 ? -EPIPE : 0;
	if (c->out_len + n > sizeof(c->out))
		return -ENOBUFS;
	memcpy(c->out + c->out_len, data, n);
	c->out_len += n;
	return flush_out(c);
}

static void begin_connect(struct wb_soup_client *c, uint64_t now_ms)
{
	char ep[32], detail[64];
	wb_endpoint_format(&c->o.server, ep, sizeof(ep));
	c->st.connects++;
	c->state = WB_SOUP_ST_CONNECTING;
	c->last_rx_ms = now_ms;
	c->last_tx_ms = now_ms;
	emit(c, WB_SOUP_EV_CONNECTING, ep);
	if (c->bytes_only)
		return; /* the caller brings the stream up and calls wb_soup_client_connected */

	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(detail, sizeof(detail), "socket: %s", strerror(errno));
		c->st.connection_lost++;
		link_lost(c, WB_SOUP_EV_CONNECTION_LOST, detail, now_ms);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(c->o.server.port),
				 .sin_addr.s_addr = htonl(c->o.server.addr)};
	c->fd = fd;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		wb_soup_client_connected(c, now_ms);
		return;
	}
	if (errno != EINPROGRESS) {
		snprintf(detail, sizeof(detail), "connect %s: %s", ep, strerror(errno));
		c->st.connection_lost++;
		link_lost(c, WB_SOUP_EV_CONNECTION_LOST, detail, now_ms);
	}
}

int wb_soup_client_start(struct wb_soup_client *c, const char session[WB_SOUP_SESSION_LEN], uint64_t seq,
			 uint64_t now_ms)
{
	if (c->state != WB_SOUP_ST_IDLE && c->state != WB_SOUP_ST_STOPPED)
		return -EALREADY;
	if (session)
		memcpy(c->session, session, WB_SOUP_SESSION_LEN);
	else
		memset(c->session, ' ', WB_SOUP_SESSION_LEN);
	c->next_seq = seq;
	c->backoff_ms = c->o.reconnect_min_ms;
	wb_soup_framer_init(&c->framer);
	begin_connect(c, now_ms);
	return 0;
}

void wb_soup_client_stop(struct wb_soup_client *c, uint64_t now_ms)
{
	uint8_t pkt[3];
	if (c->state == WB_SOUP_ST_LOGGED_IN || c->state == WB_SOUP_ST_LOGIN_SENT) {
		wb_soup_build_simple(pkt, WB_SOUP_LOGOUT);
		c->state = WB_SOUP_ST_LOGGING_OUT;
		c->last_rx_ms = now_ms; /* the close must come within timeout_ms */
		if (send_bytes(c, pkt, sizeof(pkt), now_ms) == 0)
			return;
	}
	if (c->state != WB_SOUP_ST_STOPPED && c->state != WB_SOUP_ST_IDLE)
		finish(c, WB_SOUP_EV_STOPPED, "stopped");
}

void wb_soup_client_connected(struct wb_soup_client *c, uint64_t now_ms)
{
	if (c->state != WB_SOUP_ST_CONNECTING)
		return;
	uint8_t pkt[64];
	char detail[80], sess[WB_SOUP_SESSION_LEN + 1];
	wb_soup_framer_init(&c->framer);
	c->out_len = 0;
	c->link_up = c->bytes_only;
	c->state = WB_SOUP_ST_LOGIN_SENT;
	c->last_rx_ms = now_ms;
	size_t n = wb_soup_build_login(pkt, c->o.user, c->o.pass, c->session, c->next_seq);
	if (send_bytes(c, pkt, n, now_ms) < 0) {
		c->st.connection_lost++;
		link_lost(c, WB_SOUP_EV_CONNECTION_LOST, "login could not be sent", now_ms);
		return;
	}
	session_text(c->session, sess);
	snprintf(detail, sizeof(detail), "session '%s' seq %llu", sess, (unsigned long long)c->next_seq);
	emit(c, WB_SOUP_EV_LOGIN_SENT, detail);
}

static void protocol_error(struct wb_soup_client *c, const char *detail)
{
	c->st.protocol_errors++;
	/* reconnect from the last sequence delivered: the stream after this point is suspect */
	link_lost(c, WB_SOUP_EV_PROTOCOL_ERROR, detail, c->last_rx_ms);
}

static int on_packet(void *arg, const struct wb_soup_packet *p)
{
	struct wb_soup_client *c = arg;
	char detail[80], sess[WB_SOUP_SESSION_LEN + 1];
	uint64_t seq;
	char reason;

	switch (p->type) {
	case WB_SOUP_SEQUENCED:
		if (c->state != WB_SOUP_ST_LOGGED_IN && c->state != WB_SOUP_ST_LOGGING_OUT) {
			protocol_error(c, "sequenced data before Login Accepted");
			return 1;
		}
		c->st.messages++;
		c->st.last_seq = c->next_seq;
		c->o.on_message(c->o.arg, c->next_seq++, p->payload, p->len);
		return 0;
	case WB_SOUP_SERVER_HEARTBEAT:
		c->st.heartbeats_received++;
		return 0;
	case WB_SOUP_DEBUG:
		c->st.debug_packets++;
		return 0;
	case WB_SOUP_LOGIN_ACCEPTED:
		if (c->state != WB_SOUP_ST_LOGIN_SENT || wb_soup_parse_accepted(p, c->session, &seq) < 0) {
			protocol_error(c, "unexpected or malformed Login Accepted");
			return 1;
		}
		c->next_seq = seq;
		c->state = WB_SOUP_ST_LOGGED_IN;
		c->st.logins++;
		c->backoff_ms = c->o.reconnect_min_ms;
		session_text(c->session, sess);
		snprintf(detail, sizeof(detail), "session '%s' next %llu", sess, (unsigned long long)seq);
		emit(c, WB_SOUP_EV_LOGGED_IN, detail);
		return 0;
	case WB_SOUP_LOGIN_REJECTED:
		if (wb_soup_parse_rejected(p, &reason) < 0) {
			protocol_error(c, "malformed Login Rejected");
			return 1;
		}
		/* A and S will not change by retrying: stop rather than storm the server */
		if (reason == 'A') {
			c->st.rejects_auth++;
			finish(c, WB_SOUP_EV_REJECTED_AUTH, "not authorized");
		} else if (reason == 'S') {
			c->st.rejects_session++;
			finish(c, WB_SOUP_EV_REJECTED_SESSION, "session not available");
		} else {
			c->st.rejects_other++;
			snprintf(detail, sizeof(detail), "unknown reject code 0x%02x", (unsigned char)reason);
			finish(c, WB_SOUP_EV_REJECTED_AUTH, detail);
		}
		return 1;
	case WB_SOUP_END_OF_SESSION:
		snprintf(detail, sizeof(detail), "last %llu", (unsigned long long)c->st.last_seq);
		finish(c, WB_SOUP_EV_END_OF_SESSION, detail);
		return 1;
	default:
		/* unknown types are skipped: a newer server may add some */
		c->st.protocol_errors++;
		return 0;
	}
}

void wb_soup_client_on_bytes(struct wb_soup_client *c, const uint8_t *data, size_t n, uint64_t now_ms)
{
	if (c->state != WB_SOUP_ST_LOGIN_SENT && c->state != WB_SOUP_ST_LOGGED_IN &&
	    c->state != WB_SOUP_ST_LOGGING_OUT)
		return;
	c->st.bytes += n;
	c->last_rx_ms = now_ms;
	wb_soup_feed(&c->framer, data, n, on_packet, c);
}

void wb_soup_client_disconnected(struct wb_soup_client *c, uint64_t now_ms)
{
	if (c->state == WB_SOUP_ST_STOPPED || c->state == WB_SOUP_ST_IDLE || c->state == WB_SOUP_ST_BACKOFF)
		return;
	if (c->state != WB_SOUP_ST_LOGGING_OUT)
		c->st.connection_lost++;
	c->link_up = false; /* the stream is gone already: nothing to close */
	link_lost(c, WB_SOUP_EV_CONNECTION_LOST, "connection closed", now_ms);
}

void wb_soup_client_tick(struct wb_soup_client *c, uint64_t now_ms)
{
	uint8_t pkt[3];
	switch (c->state) {
	case WB_SOUP_ST_BACKOFF:
		if (now_ms >= c->reconnect_at_ms) {
			c->st.reconnects++;
			begin_connect(c, now_ms);
		}
		return;
	case WB_SOUP_ST_CONNECTING:
	case WB_SOUP_ST_LOGIN_SENT:
	case WB_SOUP_ST_LOGGED_IN:
	case WB_SOUP_ST_LOGGING_OUT:
		if (now_ms - c->last_rx_ms >= c->o.timeout_ms) {
			c->st.timeouts++;
			link_lost(c, WB_SOUP_EV_TIMEOUT, "nothing received", now_ms);
			return;
		}
		if (c->state == WB_SOUP_ST_LOGGED_IN && now_ms - c->last_tx_ms >= c->o.heartbeat_ms) {
			wb_soup_build_simple(pkt, WB_SOUP_CLIENT_HEARTBEAT);
			if (send_bytes(c, pkt, sizeof(pkt), now_ms) < 0) {
				c->st.connection_lost++;
				link_lost(c, WB_SOUP_EV_CONNECTION_LOST, "heartbeat could not be sent", now_ms);
				return;
			}
			c->st.heartbeats_sent++;
		}
		return;
	default:
		return;
	}
}

int wb_soup_client_wants_connect(const struct wb_soup_client *c, uint64_t now_ms)
{
	(void)now_ms;
	return c->state == WB_SOUP_ST_CONNECTING;
}

int wb_soup_client_pollfd(const struct wb_soup_client *c, struct pollfd *pfd)
{
	if (c->fd < 0)
		return 0;
	pfd->fd = c->fd;
	pfd->events = POLLIN;
	if (c->state == WB_SOUP_ST_CONNECTING || c->out_len > 0)
		pfd->events |= POLLOUT;
	pfd->revents = 0;
	return 1;
}

int wb_soup_client_timeout(const struct wb_soup_client *c, uint64_t now_ms)
{
	uint64_t due;
	switch (c->state) {
	case WB_SOUP_ST_BACKOFF:
		due = c->reconnect_at_ms;
		break;
	case WB_SOUP_ST_CONNECTING:
	case WB_SOUP_ST_LOGIN_SENT:
	case WB_SOUP_ST_LOGGING_OUT:
		due = c->last_rx_ms + c->o.timeout_ms;
		break;
	case WB_SOUP_ST_LOGGED_IN:
		due = c->last_rx_ms + c->o.timeout_ms;
		if (c->last_tx_ms + c->o.heartbeat_ms < due)
			due = c->last_tx_ms + c->o.heartbeat_ms;
		break;
	default:
		return -1;
	}
	if (due <= now_ms)
		return 0;
	return due - now_ms > INT32_MAX ? INT32_MAX : (int)(due - now_ms);
}

static void read_socket(struct wb_soup_client *c, uint64_t now_ms)
{
	char detail[64];
	/* bounded: a fast server must not starve the rest of the control-plane loop */
	for (int i = 0; i < 16 && c->fd >= 0; i++) {
		ssize_t n = recv(c->fd, c->rx, sizeof(c->rx), 0);
		if (n > 0) {
			wb_soup_client_on_bytes(c, c->rx, (size_t)n, now_ms);
			continue;
		}
		if (n == 0) {
			wb_soup_client_disconnected(c, now_ms);
			return;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno == EINTR)
			continue;
		snprintf(detail, sizeof(detail), "recv: %s", strerror(errno));
		c->st.connection_lost++;
		link_lost(c, WB_SOUP_EV_CONNECTION_LOST, detail, now_ms);
		return;
	}
}

void wb_soup_client_service(struct wb_soup_client *c, short revents, uint64_t now_ms)
{
	char detail[64];
	if (c->fd >= 0 && c->state == WB_SOUP_ST_CONNECTING && (revents & (POLLOUT | POLLERR | POLLHUP))) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			snprintf(detail, sizeof(detail), "connect: %s", strerror(err));
			c->st.connection_lost++;
			link_lost(c, WB_SOUP_EV_CONNECTION_LOST, detail, now_ms);
		} else {
			wb_soup_client_connected(c, now_ms);
		}
	}
	if (c->fd >= 0 && c->state != WB_SOUP_ST_CONNECTING && (revents & (POLLIN | POLLERR | POLLHUP)))
		read_socket(c, now_ms);
	if (c->fd >= 0 && c->out_len > 0 && (revents & POLLOUT)) {
		int rc = flush_out(c);
		if (rc < 0) {
			snprintf(detail, sizeof(detail), "send: %s", strerror(-rc));
			c->st.connection_lost++;
			link_lost(c, WB_SOUP_EV_CONNECTION_LOST, detail, now_ms);
		}
	}
	wb_soup_client_tick(c, now_ms);
}

void wb_soup_client_stats(const struct wb_soup_client *c, struct wb_soup_client_stats *out)
{
	*out = c->st;
	out->next_seq = c->next_seq;
	session_text(c->session, out->session);
	out->state = c->state;
	out->state_name = wb_soup_state_name(c->state);
}
