/* wbsim recovery servers: MoldUDP64 re-request (UDP) and SoupBinTCP (TCP) from a history. */
#define _GNU_SOURCE /* accept4 */
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mold.h"
#include "soup.h"

uint64_t wb_serve_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* ---------------------------------------------------------------- history */

/* Grows the history by one message. */
static int history_add(struct wb_serve_history *h, uint64_t *cap_msgs, uint64_t *cap_bytes, const uint8_t *msg,
		       uint16_t len)
{
	if (h->count + 1 >= *cap_msgs) {
		uint64_t n = *cap_msgs ? *cap_msgs * 2 : 4096;
		uint64_t *o = realloc(h->offset, n * sizeof(*o));
		if (!o)
			return -ENOMEM;
		h->offset = o;
		*cap_msgs = n;
	}
	uint64_t end = h->offset[h->count];
	if (end + len > *cap_bytes) {
		uint64_t n = *cap_bytes ? *cap_bytes * 2 : 1 << 16;
		while (n < end + len)
			n *= 2;
		uint8_t *d = realloc(h->data, n);
		if (!d)
			return -ENOMEM;
		h->data = d;
		*cap_bytes = n;
	}
	memcpy(h->data + end, msg, len);
	h->count++;
	h->offset[h->count] = end + len;
	return 0;
}

static struct wb_serve_history *history_new(const char *session)
{
	struct wb_serve_history *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->offset = calloc(1, sizeof(*h->offset));
	if (!h->offset) {
		free(h);
		return NULL;
	}
	memset(h->session, ' ', sizeof(h->session));
	memcpy(h->session, session, strnlen(session, sizeof(h->session)));
	return h;
}

void wb_serve_history_free(struct wb_serve_history *h)
{
	if (!h)
		return;
	free(h->data);
	free(h->offset);
	free(h);
}

int wb_serve_history_from_sim(const struct wb_sim_opts *opts, struct wb_serve_history **out)
{
	struct wb_sim *sim;
	int rc = wb_sim_create(opts, &sim);
	if (rc < 0)
		return rc;
	struct wb_serve_history *h = history_new(opts->session);
	if (!h) {
		rc = -ENOMEM;
		goto out_destroy_sim;
	}
	uint64_t cap_msgs = 1, cap_bytes = 0;
	uint8_t buf[128];
	size_t len;
	struct wb_itch_msg m;
	while ((rc = wb_sim_next_encoded(sim, buf, &len, &m)) == 1) {
		rc = history_add(h, &cap_msgs, &cap_bytes, buf, (uint16_t)len);
		if (rc < 0)
			goto out_free_history;
	}
	if (rc < 0)
		goto out_free_history;
	wb_sim_destroy(sim);
	*out = h;
	return 0;

out_free_history:
	wb_serve_history_free(h);
out_destroy_sim:
	wb_sim_destroy(sim);
	return rc;
}

int wb_serve_history_from_itch(const char *path, const char *session, struct wb_serve_history **out)
{
	int rc = 0;
	uint8_t *file = NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	struct stat sb;
	if (fstat(fileno(f), &sb) < 0) {
		rc = -errno;
		goto out_close;
	}
	file = malloc(sb.st_size ? (size_t)sb.st_size : 1);
	if (!file) {
		rc = -ENOMEM;
		goto out_close;
	}
	if (fread(file, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
		rc = -EIO;
		goto out_free_file;
	}
	struct wb_serve_history *h = history_new(session);
	if (!h) {
		rc = -ENOMEM;
		goto out_free_file;
	}
	uint64_t cap_msgs = 1, cap_bytes = 0;
	struct wb_itch_file_iter it = {file, file + sb.st_size};
	const uint8_t *msg;
	uint16_t len;
	while ((rc = wb_itch_file_next(&it, &msg, &len)) == 1) {
		rc = history_add(h, &cap_msgs, &cap_bytes, msg, len);
		if (rc < 0)
			break;
	}
	if (rc < 0) {
		wb_serve_history_free(h);
		rc = rc == -EMSGSIZE ? -EBADMSG : rc;
		goto out_free_file;
	}
	*out = h;
out_free_file:
	free(file);
out_close:
	fclose(f);
	return rc;
}

/* ---------------------------------------------------------------- sockets */

static int bind_socket(int type, uint32_t addr, uint16_t port, int *out)
{
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(addr)};
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || (type == SOCK_STREAM && listen(fd, 16) < 0)) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

static uint16_t bound_port(int fd)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return 0;
	return ntohs(sa.sin_port);
}

/* ---------------------------------------------------------------- re-request */

struct wb_rerequest_server {
	struct wb_rerequest_opts o;
	const struct wb_serve_history *h;
	int fd;
	uint64_t rng;
	struct wb_rerequest_stats st;
	struct wb_sim_mold_packet pkt;
};

int wb_rerequest_server_create(const struct wb_rerequest_opts *opts, const struct wb_serve_history *h,
			       struct wb_rerequest_server **out)
{
	if (!(opts->drop >= 0.0 && opts->drop <= 1.0))
		return -EINVAL;
	struct wb_rerequest_server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	int rc = bind_socket(SOCK_DGRAM, opts->addr, opts->port, &s->fd);
	if (rc < 0) {
		free(s);
		return rc;
	}
	s->o = *opts;
	s->h = h;
	s->rng = opts->seed * 0x9E3779B97F4A7C15ull + 1;
	*out = s;
	return 0;
}

void wb_rerequest_server_destroy(struct wb_rerequest_server *s)
{
	if (!s)
		return;
	close(s->fd);
	free(s);
}

int wb_rerequest_server_fd(const struct wb_rerequest_server *s) { return s->fd; }
uint16_t wb_rerequest_server_port(const struct wb_rerequest_server *s) { return bound_port(s->fd); }

void wb_rerequest_server_stats(const struct wb_rerequest_server *s, struct wb_rerequest_stats *out) { *out = s->st; }

static double next_unit(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return (double)(*x >> 11) / 9007199254740992.0;
}

static void send_packet(struct wb_rerequest_server *s, const struct sockaddr_in *to)
{
	if (s->o.drop > 0 && next_unit(&s->rng) < s->o.drop) {
		s->st.packets_dropped++;
		return;
	}
	if (sendto(s->fd, s->pkt.buf, s->pkt.len, 0, (const struct sockaddr *)to, sizeof(*to)) < 0) {
		s->st.send_errors++;
		return;
	}
	s->st.packets_sent++;
	s->st.messages_sent += s->pkt.count;
}

/* Answers one request with ordinary downstream packets, each within one MTU. */
static void answer(struct wb_rerequest_server *s, const uint8_t *req, size_t n, const struct sockaddr_in *from)
{
	struct wb_mold_hdr hdr;
	struct wb_mold_iter it;
	if (n != WB_MOLD_HDR_LEN || wb_mold_parse(req, n, &hdr, &it) < 0 ||
	    memcmp(hdr.session, s->h->session, WB_MOLD_SESSION_LEN) != 0 || hdr.seq < 1 ||
	    hdr.seq > s->h->count || hdr.count == 0 || hdr.count == WB_MOLD_END_OF_SESSION) {
		s->st.ignored++;
		return;
	}
	s->st.requests++;
	uint64_t last = hdr.seq + hdr.count - 1;
	if (last > s->h->count)
		last = s->h->count;
	wb_sim_mold_begin(&s->pkt, s->h->session, hdr.seq);
	for (uint64_t seq = hdr.seq; seq <= last; seq++) {
		uint16_t len;
		const uint8_t *msg = wb_serve_history_msg(s->h, seq, &len);
		if (!wb_sim_mold_fits(&s->pkt, len)) {
			send_packet(s, from);
			wb_sim_mold_begin(&s->pkt, s->h->session, seq);
		}
		wb_sim_mold_add(&s->pkt, msg, len);
	}
	send_packet(s, from);
}

void wb_rerequest_server_service(struct wb_rerequest_server *s)
{
	uint8_t req[64];
	/* bounded so a request flood cannot starve the SoupBinTCP side of the loop */
	for (int i = 0; i < 64; i++) {
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(s->fd, req, sizeof(req), 0, (struct sockaddr *)&from, &flen);
		if (n < 0)
			return;
		answer(s, req, (size_t)n, &from);
	}
}

/* ---------------------------------------------------------------- SoupBinTCP */

#define CONN_OUT 65536
#define CONN_RX 16384

enum conn_state { CONN_AWAIT_LOGIN, CONN_STREAMING, CONN_CLOSING };

struct conn {
	int fd;
	enum conn_state state;
	uint64_t next_seq;  /* next sequenced message to send */
	uint64_t sent;      /* sequenced messages sent on this connection */
	bool eos_sent;
	uint64_t last_rx_ms, last_tx_ms;
	uint32_t out_head, out_tail;
	struct wb_soup_framer framer;
	uint8_t out[CONN_OUT];
	uint8_t rx[CONN_RX];
};

struct wb_soup_server {
	struct wb_soup_server_opts o;
	const struct wb_serve_history *h;
	int listen_fd;
	bool silent;
	struct wb_soup_server_stats st;
	struct conn **conns; /* max_clients slots, NULL when free */
	uint64_t now_ms;     /* of the service call in progress */
};

void wb_soup_server_opts_default(struct wb_soup_server_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->addr = INADDR_LOOPBACK;
	o->heartbeat_ms = 1000;
	o->timeout_ms = 15000;
	o->end_of_session = true;
	o->max_clients = 16;
}

int wb_soup_server_create(const struct wb_soup_server_opts *opts, const struct wb_serve_history *h,
			  struct wb_soup_server **out)
{
	if (opts->heartbeat_ms == 0 || opts->timeout_ms == 0 || opts->max_clients == 0)
		return -EINVAL;
	int rc = -ENOMEM;
	struct wb_soup_server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->conns = calloc(opts->max_clients, sizeof(*s->conns));
	if (!s->conns)
		goto out_free_server;
	rc = bind_socket(SOCK_STREAM, opts->addr, opts->port, &s->listen_fd);
	if (rc < 0)
		goto out_free_conns;
	s->o = *opts;
	s->o.user[sizeof(s->o.user) - 1] = '\0';
	s->o.pass[sizeof(s->o.pass) - 1] = '\0';
	s->h = h;
	*out = s;
	return 0;

out_free_conns:
	free(s->conns);
out_free_server:
	free(s);
	return rc;
}

static void conn_close(struct wb_soup_server *s, uint32_t i)
{
	close(s->conns[i]->fd);
	free(s->conns[i]);
	s->conns[i] = NULL;
	s->st.active--;
}

void wb_soup_server_destroy(struct wb_soup_server *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->o.max_clients; i++)
		if (s->conns[i])
			conn_close(s, i);
	close(s->listen_fd);
	free(s->conns);
	free(s);
}

uint16_t wb_soup_server_port(const struct wb_soup_server *s) { return bound_port(s->listen_fd); }
void wb_soup_server_set_silent(struct wb_soup_server *s, bool silent) { s->silent = silent; }
void wb_soup_server_stats(const struct wb_soup_server *s, struct wb_soup_server_stats *out) { *out = s->st; }

void wb_soup_server_drop_all(struct wb_soup_server *s)
{
	for (uint32_t i = 0; i < s->o.max_clients; i++) {
		if (s->conns[i]) {
			s->st.forced_disconnects++;
			conn_close(s, i);
		}
	}
}

static uint32_t out_room(struct conn *c)
{
	if (c->out_head > 0 && c->out_head == c->out_tail)
		c->out_head = c->out_tail = 0;
	if (c->out_head > CONN_OUT / 2) {
		memmove(c->out, c->out + c->out_head, c->out_tail - c->out_head);
		c->out_tail -= c->out_head;
		c->out_head = 0;
	}
	return CONN_OUT - c->out_tail;
}

static void out_put(struct conn *c, const uint8_t *p, size_t n)
{
	memcpy(c->out + c->out_tail, p, n);
	c->out_tail += (uint32_t)n;
}

/* Writes what the socket takes; -errno when the connection is dead. */
static int conn_flush(struct wb_soup_server *s, struct conn *c)
{
	while (c->out_head < c->out_tail) {
		ssize_t n = send(c->fd, c->out + c->out_head, c->out_tail - c->out_head, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c->out_head += (uint32_t)n;
		c->last_tx_ms = s->now_ms;
	}
	return 0;
}

static bool session_ok(const struct wb_soup_server *s, const char session[WB_SOUP_SESSION_LEN])
{
	static const char blank[WB_SOUP_SESSION_LEN] = "          ";
	return memcmp(session, blank, WB_SOUP_SESSION_LEN) == 0 ||
	       memcmp(session, s->h->session, WB_SOUP_SESSION_LEN) == 0;
}

struct packet_ctx {
	struct wb_soup_server *s;
	struct conn *c;
	bool close; /* logout or protocol error: drop the connection */
};

static void on_login(struct packet_ctx *x, const struct wb_soup_packet *p)
{
	struct wb_soup_server *s = x->s;
	struct conn *c = x->c;
	char user[7], pass[11], session[WB_SOUP_SESSION_LEN];
	uint64_t seq;
	uint8_t pkt[64];

	if (wb_soup_parse_login(p, user, pass, session, &seq) < 0) {
		s->st.protocol_errors++;
		x->close = true;
		return;
	}
	if (s->o.user[0] && (strcasecmp(user, s->o.user) != 0 || strcasecmp(pass, s->o.pass) != 0)) {
		s->st.rejects_auth++;
		out_put(c, pkt, wb_soup_build_rejected(pkt, 'A'));
		c->state = CONN_CLOSING;
		return;
	}
	if (!session_ok(s, session)) {
		s->st.rejects_session++;
		out_put(c, pkt, wb_soup_build_rejected(pkt, 'S'));
		c->state = CONN_CLOSING;
		return;
	}
	/* 0 = from now: the history is complete, so "now" is just past its end */
	uint64_t end = s->h->count + 1;
	c->next_seq = seq == 0 || seq > end ? end : seq;
	c->state = CONN_STREAMING;
	s->st.logins++;
	out_put(c, pkt, wb_soup_build_accepted(pkt, s->h->session, c->next_seq));
}

static int on_client_packet(void *arg, const struct wb_soup_packet *p)
{
	struct packet_ctx *x = arg;
	struct wb_soup_server *s = x->s;
	if (x->c->state == CONN_AWAIT_LOGIN) {
		if (p->type != WB_SOUP_LOGIN_REQUEST) {
			s->st.protocol_errors++;
			x->close = true;
			return 1;
		}
		on_login(x, p);
		return x->close || x->c->state == CONN_CLOSING;
	}
	switch (p->type) {
	case WB_SOUP_CLIENT_HEARTBEAT:
		s->st.heartbeats_received++;
		return 0;
	case WB_SOUP_LOGOUT:
		s->st.logouts++;
		x->close = true;
		return 1;
	case WB_SOUP_UNSEQUENCED:
		s->st.unsequenced++;
		return 0;
	case WB_SOUP_DEBUG:
		return 0;
	default:
		s->st.protocol_errors++;
		return 0;
	}
}

/* Reads the client; false when the connection must go. */
static bool conn_read(struct wb_soup_server *s, struct conn *c)
{
	struct packet_ctx x = {s, c, false};
	for (;;) {
		ssize_t n = recv(c->fd, c->rx, sizeof(c->rx), 0);
		if (n == 0)
			return false;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
		c->last_rx_ms = s->now_ms;
		if (c->state == CONN_CLOSING)
			continue;
		wb_soup_feed(&c->framer, c->rx, (size_t)n, on_client_packet, &x);
		if (x.close)
			return false;
	}
}

/* Queues replay, end of session and heartbeats; false when the connection must go. */
static bool conn_fill(struct wb_soup_server *s, struct conn *c)
{
	uint8_t pkt[8];
	if (c->state == CONN_STREAMING) {
		while (c->next_seq <= s->h->count) {
			if (s->o.disconnect_after && c->sent >= s->o.disconnect_after)
				break;
			uint16_t len;
			const uint8_t *msg = wb_serve_history_msg(s->h, c->next_seq, &len);
			if (out_room(c) < 3u + len)
				break;
			out_put(c, pkt, wb_soup_build_sequenced_hdr(pkt, len));
			out_put(c, msg, len);
			c->next_seq++;
			c->sent++;
			s->st.messages_sent++;
		}
		if (c->next_seq > s->h->count && s->o.end_of_session && !c->eos_sent && out_room(c) >= 3) {
			out_put(c, pkt, wb_soup_build_simple(pkt, WB_SOUP_END_OF_SESSION));
			c->eos_sent = true;
			s->st.end_of_session_sent++;
		}
	}
	if (c->state == CONN_STREAMING && c->out_head == c->out_tail &&
	    s->now_ms - c->last_tx_ms >= s->o.heartbeat_ms) {
		out_put(c, pkt, wb_soup_build_simple(pkt, WB_SOUP_SERVER_HEARTBEAT));
		s->st.heartbeats_sent++;
	}
	if (conn_flush(s, c) < 0)
		return false;
	bool drained = c->out_head == c->out_tail;
	if (drained && c->state == CONN_CLOSING)
		return false;
	if (drained && s->o.disconnect_after && c->sent >= s->o.disconnect_after && c->next_seq <= s->h->count) {
		s->st.forced_disconnects++;
		return false;
	}
	return true;
}

static void accept_clients(struct wb_soup_server *s)
{
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		uint32_t i = 0;
		while (i < s->o.max_clients && s->conns[i])
			i++;
		struct conn *c = i < s->o.max_clients ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			s->st.refused++;
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		c->state = CONN_AWAIT_LOGIN;
		c->last_rx_ms = c->last_tx_ms = s->now_ms;
		wb_soup_framer_init(&c->framer);
		s->conns[i] = c;
		s->st.connections++;
		s->st.active++;
	}
}

int wb_soup_server_pollfds(const struct wb_soup_server *s, struct pollfd *pfd, int max)
{
	int n = 0;
	if (n < max)
		pfd[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
	for (uint32_t i = 0; i < s->o.max_clients && n < max; i++) {
		const struct conn *c = s->conns[i];
		if (!c)
			continue;
		short ev = POLLIN;
		bool more = c->state == CONN_STREAMING && (c->next_seq <= s->h->count || !c->eos_sent);
		if (!s->silent && (c->out_head < c->out_tail || more))
			ev |= POLLOUT;
		pfd[n++] = (struct pollfd){.fd = c->fd, .events = ev};
	}
	return n;
}

static short revents_of(const struct pollfd *pfd, int n, int fd)
{
	for (int i = 0; i < n; i++)
		if (pfd[i].fd == fd)
			return pfd[i].revents;
	return 0;
}

void wb_soup_server_service(struct wb_soup_server *s, const struct pollfd *pfd, int n, uint64_t now_ms)
{
	s->now_ms = now_ms;
	if (revents_of(pfd, n, s->listen_fd) & POLLIN)
		accept_clients(s);
	for (uint32_t i = 0; i < s->o.max_clients; i++) {
		struct conn *c = s->conns[i];
		if (!c)
			continue;
		short re = revents_of(pfd, n, c->fd);
		if ((re & (POLLIN | POLLHUP | POLLERR)) && !conn_read(s, c)) {
			conn_close(s, i);
			continue;
		}
		if (now_ms - c->last_rx_ms >= s->o.timeout_ms) {
			s->st.timeouts++;
			conn_close(s, i);
			continue;
		}
		if (!s->silent && !conn_fill(s, c))
			conn_close(s, i);
	}
}

/* ---------------------------------------------------------------- wbsim serve */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

int wb_serve_run(const struct wb_serve_run_opts *o, const struct wb_serve_history *h)
{
	struct wb_rerequest_server *rr = NULL;
	struct wb_soup_server *soup = NULL;
	int rc = 0;

	if (o->rerequest_on && (rc = wb_rerequest_server_create(&o->rerequest, h, &rr)) < 0) {
		fprintf(stderr, "wbsim serve: re-request server: %s\n", strerror(-rc));
		return rc;
	}
	if (o->soup_on && (rc = wb_soup_server_create(&o->soup, h, &soup)) < 0) {
		fprintf(stderr, "wbsim serve: SoupBinTCP server: %s\n", strerror(-rc));
		goto out_destroy_rerequest;
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (!o->quiet)
		fprintf(stderr, "wbsim serve: %" PRIu64 " messages, re-request port %u, soup port %u\n", h->count,
			rr ? wb_rerequest_server_port(rr) : 0, soup ? wb_soup_server_port(soup) : 0);

	int cap = 1 + (soup ? (int)o->soup.max_clients + 1 : 0);
	struct pollfd *pfd = calloc((size_t)cap, sizeof(*pfd));
	if (!pfd) {
		rc = -ENOMEM;
		goto out_destroy_soup;
	}
	while (!stop_requested) {
		int n = 0;
		if (rr)
			pfd[n++] = (struct pollfd){.fd = wb_rerequest_server_fd(rr), .events = POLLIN};
		int first_soup = n;
		if (soup)
			n += wb_soup_server_pollfds(soup, pfd + n, cap - n);
		if (poll(pfd, (nfds_t)n, 50) < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		if (rr && (pfd[0].revents & POLLIN))
			wb_rerequest_server_service(rr);
		if (soup)
			wb_soup_server_service(soup, pfd + first_soup, n - first_soup, wb_serve_now_ms());
	}
	free(pfd);

	if (rr) {
		struct wb_rerequest_stats st;
		wb_rerequest_server_stats(rr, &st);
		fprintf(stderr,
			"re-request: requests %" PRIu64 " ignored %" PRIu64 " messages %" PRIu64 " packets %" PRIu64
			" dropped %" PRIu64 " send-errors %" PRIu64 "\n",
			st.requests, st.ignored, st.messages_sent, st.packets_sent, st.packets_dropped, st.send_errors);
	}
	if (soup) {
		struct wb_soup_server_stats st;
		wb_soup_server_stats(soup, &st);
		fprintf(stderr,
			"soup: connections %" PRIu64 " logins %" PRIu64 " rejects-auth %" PRIu64 " rejects-session %" PRIu64
			" messages %" PRIu64 " heartbeats-sent %" PRIu64 " heartbeats-received %" PRIu64
			" end-of-session %" PRIu64 " logouts %" PRIu64 " timeouts %" PRIu64 " protocol-errors %" PRIu64
			"\n",
			st.connections, st.logins, st.rejects_auth, st.rejects_session, st.messages_sent,
			st.heartbeats_sent, st.heartbeats_received, st.end_of_session_sent, st.logouts, st.timeouts,
			st.protocol_errors);
	}
out_destroy_soup:
	wb_soup_server_destroy(soup);
out_destroy_rerequest:
	wb_rerequest_server_destroy(rr);
	return rc;
}

/* ---------------------------------------------------------------- command line */

static void serve_usage(FILE *out)
{
	fprintf(out,
		"usage: wbsim serve [session options] [--rerequest ADDR:PORT] [--soup ADDR:PORT] [options]\n"
		"\n"
		"Serves one session's history for gap recovery until SIGINT or SIGTERM, then prints\n"
		"the servers' counters. The history is generated (same options and seed as wbsim gen\n"
		"give the same messages) or read from an ITCH file (--from-itch).\n"
		"\n"
		"Session:\n"
		"  --symbols N --messages N --seed N --session NAME   as for wbsim gen\n"
		"  --from-itch FILE       serve the messages of FILE (Nasdaq file framing) instead\n"
		"\n"
		"Servers (at least one):\n"
		"  --rerequest A:P        MoldUDP64 re-request server on UDP A:P\n"
		"  --rerequest-drop P     drop each response packet with probability P (default 0)\n"
		"  --soup A:P             SoupBinTCP server on TCP A:P\n"
		"  --soup-user U          username, at most 6 characters (default: accept any)\n"
		"  --soup-pass P          password, at most 10 characters\n"
		"  --soup-heartbeat MS    server heartbeat after MS of silence (default 1000)\n"
		"  --soup-timeout MS      drop a client silent for MS (default 15000)\n"
		"  --no-eos               no End of Session after the last message: heartbeats only\n"
		"  --quiet                no start-up line\n"
		"\n"
		"Example:\n"
		"  wbsim serve --messages 200k --rerequest 127.0.0.1:26400 --soup 127.0.0.1:26401 \\\n"
		"              --soup-user wb --soup-pass secret\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	uint64_t mul = 1;
	if (*end == 'k')
		mul = 1000, end++;
	else if (*end == 'M')
		mul = 1000000, end++;
	if (errno || end == s || *s == '-' || *end || v > UINT64_MAX / mul)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

int wb_serve_main(int argc, char **argv)
{
	enum { O_SYMBOLS = 256, O_MESSAGES, O_SEED, O_SESSION, O_FROM_ITCH, O_RR, O_RR_DROP, O_SOUP, O_USER, O_PASS,
	       O_HB, O_TIMEOUT, O_NO_EOS, O_QUIET };
	static const struct option longopts[] = {
		{"symbols", required_argument, NULL, O_SYMBOLS},   {"messages", required_argument, NULL, O_MESSAGES},
		{"seed", required_argument, NULL, O_SEED},         {"session", required_argument, NULL, O_SESSION},
		{"from-itch", required_argument, NULL, O_FROM_ITCH}, {"rerequest", required_argument, NULL, O_RR},
		{"rerequest-drop", required_argument, NULL, O_RR_DROP}, {"soup", required_argument, NULL, O_SOUP},
		{"soup-user", required_argument, NULL, O_USER},    {"soup-pass", required_argument, NULL, O_PASS},
		{"soup-heartbeat", required_argument, NULL, O_HB}, {"soup-timeout", required_argument, NULL, O_TIMEOUT},
		{"no-eos", no_argument, NULL, O_NO_EOS},           {"quiet", no_argument, NULL, O_QUIET},
		{"help", no_argument, NULL, 'h'},                  {0},
	};
	struct wb_sim_opts so;
	struct wb_serve_run_opts ro = {0};
	const char *from_itch = NULL;
	wb_sim_opts_default(&so);
	wb_soup_server_opts_default(&ro.soup);

	int c, idx = 0;
	uint64_t v = 0;
	char *endp;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
		int bad = 0;
		switch (c) {
		case O_SYMBOLS:
			bad = parse_u64(optarg, &v) || v == 0 || v > 65535;
			so.symbols = (uint32_t)v;
			break;
		case O_MESSAGES: bad = parse_u64(optarg, &so.messages); break;
		case O_SEED: bad = parse_u64(optarg, &so.seed); break;
		case O_SESSION:
			bad = strlen(optarg) == 0 || strlen(optarg) > 10;
			if (!bad)
				snprintf(so.session, sizeof(so.session), "%s", optarg);
			break;
		case O_FROM_ITCH: from_itch = optarg; break;
		case O_RR:
			ro.rerequest_on = true;
			bad = wb_sim_parse_endpoint(optarg, &ro.rerequest.addr, &ro.rerequest.port) != 0;
			break;
		case O_RR_DROP:
			ro.rerequest.drop = strtod(optarg, &endp);
			bad = endp == optarg || *endp || !(ro.rerequest.drop >= 0.0 && ro.rerequest.drop <= 1.0);
			break;
		case O_SOUP:
			ro.soup_on = true;
			bad = wb_sim_parse_endpoint(optarg, &ro.soup.addr, &ro.soup.port) != 0;
			break;
		case O_USER:
			bad = strlen(optarg) > 6;
			snprintf(ro.soup.user, sizeof(ro.soup.user), "%s", optarg);
			break;
		case O_PASS:
			bad = strlen(optarg) > 10;
			snprintf(ro.soup.pass, sizeof(ro.soup.pass), "%s", optarg);
			break;
		case O_HB:
			bad = parse_u64(optarg, &v) || v == 0 || v > 3600000;
			ro.soup.heartbeat_ms = (uint32_t)v;
			break;
		case O_TIMEOUT:
			bad = parse_u64(optarg, &v) || v == 0 || v > 3600000;
			ro.soup.timeout_ms = (uint32_t)v;
			break;
		case O_NO_EOS: ro.soup.end_of_session = false; break;
		case O_QUIET: ro.quiet = true; break;
		case 'h':
			serve_usage(stdout);
			return 0;
		default:
			serve_usage(stderr);
			return 2;
		}
		if (bad) {
			fprintf(stderr, "wbsim serve: invalid value '%s' for --%s\n", optarg, longopts[idx].name);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wbsim serve: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!ro.rerequest_on && !ro.soup_on) {
		fprintf(stderr, "wbsim serve: no server given: use --rerequest and/or --soup\n");
		return 2;
	}
	ro.rerequest.seed = so.seed;

	struct wb_serve_history *h;
	int rc = from_itch ? wb_serve_history_from_itch(from_itch, so.session, &h) : wb_serve_history_from_sim(&so, &h);
	if (rc < 0) {
		fprintf(stderr, "wbsim serve: cannot build the history from %s: %s\n", from_itch ? from_itch : "the simulator",
			strerror(-rc));
		return 1;
	}
	rc = wb_serve_run(&ro, h);
	wb_serve_history_free(h);
	return rc < 0 ? 1 : 0;
}
