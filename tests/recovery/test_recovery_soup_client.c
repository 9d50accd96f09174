/* The SoupBinTCP client against wbsim's SoupBinTCP server, in one process over loopback
 * TCP: replay from 1 and from k, rejects, mid-stream disconnects, silence, end of session,
 * heartbeats both ways, logout; and the client driven from bytes alone. The history comes
 * from the simulator (known ground truth) and, when present, from a real ITCH capture. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "serve.h"
#include "soup_client.h"

#define SESSION "WBSIM00042"

static struct wb_serve_history *sim_history;

struct rig {
	const struct wb_serve_history *h;
	struct wb_soup_server *srv;
	struct wb_soup_client *cli;
	uint64_t expect;     /* sequence the next message must carry */
	uint64_t got;
	uint64_t out_of_order; /* messages whose sequence was not expect (repeat or gap) */
	uint64_t bad_bytes;  /* messages not equal to the history at their sequence */
	uint64_t first;
	uint64_t events[WB_SOUP_EV_STOPPED + 1];
};

static void on_message(void *arg, uint64_t seq, const uint8_t *msg, uint16_t len)
{
	struct rig *r = arg;
	if (r->got == 0)
		r->first = seq;
	if (seq != r->expect)
		r->out_of_order++;
	r->expect = seq + 1;
	r->got++;
	uint16_t hlen;
	const uint8_t *want = seq >= 1 && seq <= r->h->count ? wb_serve_history_msg(r->h, seq, &hlen) : NULL;
	if (!want || hlen != len || memcmp(want, msg, len) != 0)
		r->bad_bytes++;
}

static void on_event(void *arg, enum wb_soup_event ev, const char *detail)
{
	struct rig *r = arg;
	(void)detail;
	r->events[ev]++;
}

static void rig_init(struct rig *r, const struct wb_serve_history *h, const struct wb_soup_server_opts *so,
		     struct wb_soup_client_opts *co)
{
	memset(r, 0, sizeof(*r));
	r->h = h;
	assert_int_equal(wb_soup_server_create(so, h, &r->srv), 0);
	co->server.addr = INADDR_LOOPBACK;
	co->server.port = wb_soup_server_port(r->srv);
	co->on_message = on_message;
	co->on_event = on_event;
	co->arg = r;
	assert_int_equal(wb_soup_client_create(co, &r->cli), 0);
}

static void rig_free(struct rig *r)
{
	wb_soup_client_destroy(r->cli);
	wb_soup_server_destroy(r->srv);
}

static void server_opts(struct wb_soup_server_opts *so)
{
	wb_soup_server_opts_default(so);
	strcpy(so->user, "wbuser");
	strcpy(so->pass, "wbpass");
}

static void client_opts(struct wb_soup_client_opts *co)
{
	wb_soup_client_opts_default(co);
	strcpy(co->user, "WBUSER"); /* credentials are case-insensitive */
	strcpy(co->pass, "wbpass");
	co->reconnect_min_ms = 10;
	co->reconnect_max_ms = 80;
}

static void client_stats(struct rig *r, struct wb_soup_client_stats *st) { wb_soup_client_stats(r->cli, st); }

typedef int (*done_fn)(struct rig *r);

/* Turns both poll loops until done(r) or max_ms passed; returns done(r). */
static int run(struct rig *r, done_fn done, uint64_t max_ms)
{
	uint64_t end = wb_serve_now_ms() + max_ms;
	struct pollfd pfd[20];
	while (!(done && done(r)) && wb_serve_now_ms() < end) {
		int n = wb_soup_server_pollfds(r->srv, pfd, 19);
		int has_cli = wb_soup_client_pollfd(r->cli, &pfd[n]);
		int t = wb_soup_client_timeout(r->cli, wb_serve_now_ms());
		if (t < 0 || t > 5)
			t = 5;
		poll(pfd, (nfds_t)(n + has_cli), t);
		uint64_t now = wb_serve_now_ms();
		wb_soup_server_service(r->srv, pfd, n, now);
		wb_soup_client_service(r->cli, has_cli ? pfd[n].revents : 0, now);
	}
	return done ? done(r) : 1;
}

static int stopped(struct rig *r)
{
	struct wb_soup_client_stats st;
	client_stats(r, &st);
	return st.state == WB_SOUP_ST_STOPPED;
}

static int logged_in(struct rig *r)
{
	struct wb_soup_client_stats st;
	client_stats(r, &st);
	return st.state == WB_SOUP_ST_LOGGED_IN;
}

static int server_logged_in(struct rig *r)
{
	struct wb_soup_server_stats ss;
	wb_soup_server_stats(r->srv, &ss);
	return ss.logins == 1;
}

static int got_all(struct rig *r) { return r->expect == r->h->count + 1; }

static int timed_out(struct rig *r) { return r->events[WB_SOUP_EV_TIMEOUT] > 0; }

static const char blank[WB_SOUP_SESSION_LEN] = "          ";

/* ---------------------------------------------------------------- tests */

static void replay_from(const struct wb_serve_history *h, uint64_t from)
{
	struct wb_soup_server_opts so;
	struct wb_soup_client_opts co;
	struct rig r;
	server_opts(&so);
	client_opts(&co);
	rig_init(&r, h, &so, &co);
	r.expect = from;
	assert_int_equal(wb_soup_client_start(r.cli, from == 1 ? blank : SESSION, from, wb_serve_now_ms()), 0);
	assert_true(run(&r, stopped, 10000));

	struct wb_soup_client_stats st;
	client_stats(&r, &st);
	assert_int_equal(r.got, h->count - from + 1);
	assert_int_equal(r.first, from);
	assert_int_equal(r.out_of_order, 0);
	assert_int_equal(r.bad_bytes, 0);
	assert_int_equal(st.last_seq, h->count);
	assert_int_equal(st.messages, h->count - from + 1);
	assert_int_equal(st.logins, 1);
	assert_int_equal(st.reconnects, 0);
	assert_memory_equal(st.session, h->session, strlen(st.session));
	assert_int_equal(r.events[WB_SOUP_EV_END_OF_SESSION], 1);
	rig_free(&r);
}

/* Login at 1 (current session): every message 1..N, numbered, equal to the history. */
static void test_login_at_1_gets_everything(void **state)
{
	(void)state;
	replay_from(sim_history, 1);
}

/* Login at k (named session): exactly k..N. */
static void test_login_at_k_gets_k_to_end(void **state)
{
	(void)state;
	replay_from(sim_history, 1234);
	replay_from(sim_history, sim_history->count);
}

/* The real Nasdaq BX sample (12,012 messages) replayed whole. */
static void test_real_capture_replay(void **state)
{
	(void)state;
	const char *dir = getenv("WB_SHARED_DIR");
	char path[512];
	snprintf(path, sizeof(path), "%s/data/itch/ritch-bx-sample.itch", dir ? dir : "../shared");
	if (access(path, R_OK) != 0) {
		fprintf(stderr, "SKIP: %s absent (set WB_SHARED_DIR)\n", path);
		skip();
	}
	struct wb_serve_history *h;
	assert_int_equal(wb_serve_history_from_itch(path, SESSION, &h), 0);
	assert_int_equal(h->count, 12012);
	replay_from(h, 1);
	wb_serve_history_free(h);
}

static void reject_case(const char *pass, const char *session, enum wb_soup_event want, uint64_t auth,
			uint64_t sess)
{
	struct wb_soup_server_opts so;
	struct wb_soup_client_opts co;
	struct rig r;
	server_opts(&so);
	client_opts(&co);
	strcpy(co.pass, pass);
	rig_init(&r, sim_history, &so, &co);
	assert_int_equal(wb_soup_client_start(r.cli, session, 1, wb_serve_now_ms()), 0);
	assert_true(run(&r, stopped, 3000));
	/* and it stays stopped: no reconnect storm against a server that said no */
	run(&r, NULL, 300);

	struct wb_soup_client_stats st;
	struct wb_soup_server_stats ss;
	client_stats(&r, &st);
	wb_soup_server_stats(r.srv, &ss);
	assert_int_equal(r.events[want], 1);
	assert_int_equal(st.state, WB_SOUP_ST_STOPPED);
	assert_int_equal(st.rejects_auth, auth);
	assert_int_equal(st.rejects_session, sess);
	assert_int_equal(st.connects, 1);
	assert_int_equal(st.reconnects, 0);
	assert_int_equal(ss.connections, 1);
	assert_int_equal(ss.rejects_auth, auth);
	assert_int_equal(ss.rejects_session, sess);
	assert_int_equal(r.got, 0);
	rig_free(&r);
}

static void test_bad_password_rejected_a(void **state)
{
	(void)state;
	reject_case("wrong", blank, WB_SOUP_EV_REJECTED_AUTH, 1, 0);
}

static void test_unknown_session_rejected_s(void **state)
{
	(void)state;
	reject_case("wbpass", "NOSUCHSESS", WB_SOUP_EV_REJECTED_SESSION, 0, 1);
}

/* The server drops the connection every 700 messages: the client reconnects each time at
 * last + 1 and ends with every message exactly once, in order. */
static void test_disconnect_mid_stream_resumes(void **state)
{
	(void)state;
	struct wb_soup_server_opts so;
	struct wb_soup_client_opts co;
	struct rig r;
	server_opts(&so);
	so.disconnect_after = 700;
	client_opts(&co);
	rig_init(&r, sim_history, &so, &co);
	r.expect = 1;
	assert_int_equal(wb_soup_client_start(r.cli, blank, 1, wb_serve_now_ms()), 0);
	assert_true(run(&r, stopped, 10000));

	uint64_t drops = (sim_history->count - 1) / 700;
	struct wb_soup_client_stats st;
	struct wb_soup_server_stats ss;
	client_stats(&r, &st);
	wb_soup_server_stats(r.srv, &ss);
	assert_int_equal(r.got, sim_history->count);
	assert_int_equal(r.out_of_order, 0);
	assert_int_equal(r.bad_bytes, 0);
	assert_int_equal(ss.forced_disconnects, drops);
	assert_int_equal(st.connection_lost, drops);
	assert_int_equal(st.reconnects, drops);
	assert_int_equal(st.logins, drops + 1);
	assert_int_equal(ss.messages_sent, sim_history->count); /* nothing sent twice */
	assert_int_equal(r.events[WB_SOUP_EV_END_OF_SESSION], 1);

	/* the same when the server drops everyone after one buffer (64 KiB) of the replay */
	rig_free(&r);
	server_opts(&so);
	client_opts(&co);
	rig_init(&r, sim_history, &so, &co);
	r.expect = 1;
	assert_true(sim_history->offset[sim_history->count] + 3 * sim_history->count > 65536 + 4096);
	wb_soup_server_set_silent(r.srv, true);
	assert_int_equal(wb_soup_client_start(r.cli, blank, 1, wb_serve_now_ms()), 0);
	assert_true(run(&r, server_logged_in, 3000));
	wb_soup_server_set_silent(r.srv, false);
	wb_soup_server_service(r.srv, NULL, 0, wb_serve_now_ms()); /* one fill of the replay */
	wb_soup_server_drop_all(r.srv);
	assert_true(run(&r, stopped, 10000));
	assert_true(r.first == 1);
	client_stats(&r, &st);
	assert_int_equal(r.got, sim_history->count);
	assert_int_equal(r.out_of_order, 0);
	assert_int_equal(r.bad_bytes, 0);
	assert_int_equal(st.logins, 2);
	assert_int_equal(st.connection_lost, 1);
	rig_free(&r);
}

/* A silent server (no data, no heartbeats) is timed out and reconnected to at last + 1. */
static void test_silent_server_times_out(void **state)
{
	(void)state;
	struct wb_soup_server_opts so;
	struct wb_soup_client_opts co;
	struct rig r;
	server_opts(&so);
	so.end_of_session = false;
	so.heartbeat_ms = 30;
	client_opts(&co);
	co.heartbeat_ms = 30;
	co.timeout_ms = 500; /* well above a scheduling stall on a loaded 2-core machine */
	rig_init(&r, sim_history, &so, &co);
	r.expect = 1;
	assert_int_equal(wb_soup_client_start(r.cli, blank, 1, wb_serve_now_ms()), 0);
	assert_true(run(&r, got_all, 10000));
	/* heartbeats alone keep the link up well past the timeout */
	run(&r, NULL, 700);
	assert_int_equal(r.events[WB_SOUP_EV_TIMEOUT], 0);

	wb_soup_server_set_silent(r.srv, true);
	assert_true(run(&r, timed_out, 3000));
	wb_soup_server_set_silent(r.srv, false);
	r.events[WB_SOUP_EV_LOGGED_IN] = 0;
	assert_true(run(&r, logged_in, 3000));

	struct wb_soup_client_stats st;
	client_stats(&r, &st);
	assert_int_equal(st.timeouts, 1);
	assert_true(st.reconnects >= 1);
	assert_int_equal(st.logins, 2);
	assert_int_equal(st.next_seq, sim_history->count + 1); /* logged in again at last + 1 */
	assert_int_equal(r.got, sim_history->count);
	assert_int_equal(r.out_of_order, 0);
	rig_free(&r);
}

/* Login "from now" on a finished session: accepted at N + 1, then Z stops the client. */
static void test_end_of_session_stops_client(void **state)
{
	(void)state;
	struct wb_soup_server_opts so;
	struct wb_soup_client_opts co;
	struct rig r;
	server_opts(&so);
	client_opts(&co);
	rig_init(&r, sim_history, &so, &co);
	assert_int_equal(wb_soup_client_start(r.cli, blank, 0, wb_serve_now_ms()), 0);
	assert_true(run(&r, stopped, 3000));
	run(&r, NULL, 200);
	struct wb_soup_client_stats st;
	client_stats(&r, &st);
	assert_int_equal(r.events[WB_SOUP_EV_END_OF_SESSION], 1);
	assert_int_equal(st.state, WB_SOUP_ST_STOPPED);
	assert_int_equal(st.next_seq, sim_history->count + 1);
	assert_int_equal(st.messages, 0);
	assert_int_equal(st.connects, 1);
	rig_free(&r);
}

/* An idle logged-in link: heartbeats both ways, no timeout; then a graceful logout. */
static void test_heartbeats_both_ways(void **state)
{
	(void)state;
	struct wb_soup_server_opts so;
	struct wb_soup_client_opts co;
	struct rig r;
	server_opts(&so);
	so.end_of_session = false;
	so.heartbeat_ms = 40;
	so.timeout_ms = 1500;
	client_opts(&co);
	co.heartbeat_ms = 40;
	co.timeout_ms = 1500;
	rig_init(&r, sim_history, &so, &co);
	assert_int_equal(wb_soup_client_start(r.cli, blank, 0, wb_serve_now_ms()), 0);
	assert_true(run(&r, logged_in, 3000));
	run(&r, NULL, 600);

	struct wb_soup_client_stats st;
	struct wb_soup_server_stats ss;
	client_stats(&r, &st);
	wb_soup_server_stats(r.srv, &ss);
	assert_int_equal(st.state, WB_SOUP_ST_LOGGED_IN);
	assert_int_equal(st.timeouts, 0);
	assert_int_equal(ss.timeouts, 0);
	assert_true(st.heartbeats_sent >= 5);
	assert_true(st.heartbeats_received >= 5);
	assert_true(ss.heartbeats_received >= 5);

	wb_soup_client_stop(r.cli, wb_serve_now_ms());
	assert_true(run(&r, stopped, 2000));
	wb_soup_server_stats(r.srv, &ss);
	client_stats(&r, &st);
	assert_int_equal(ss.logouts, 1);
	/* the server read the logout, so it read every heartbeat sent before it */
	assert_int_equal(ss.heartbeats_received, st.heartbeats_sent);
	assert_int_equal(ss.active, 0);
	assert_int_equal(r.events[WB_SOUP_EV_STOPPED], 1);
	rig_free(&r);
}

/* The server drops a client that logs in and then says nothing. */
static void test_server_drops_silent_client(void **state)
{
	(void)state;
	struct wb_soup_server_opts so;
	struct wb_soup_server *srv;
	server_opts(&so);
	so.end_of_session = false;
	so.timeout_ms = 200;
	so.heartbeat_ms = 50;
	assert_int_equal(wb_soup_server_create(&so, sim_history, &srv), 0);

	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(wb_soup_server_port(srv)),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	uint8_t login[64];
	size_t n = wb_soup_build_login(login, "wbuser", "wbpass", blank, 0);
	assert_int_equal(send(fd, login, n, 0), (ssize_t)n);

	struct wb_soup_server_stats ss = {0};
	uint64_t end = wb_serve_now_ms() + 3000;
	struct pollfd pfd[4];
	while (ss.timeouts == 0 && wb_serve_now_ms() < end) {
		int k = wb_soup_server_pollfds(srv, pfd, 4);
		poll(pfd, (nfds_t)k, 5);
		wb_soup_server_service(srv, pfd, k, wb_serve_now_ms());
		wb_soup_server_stats(srv, &ss);
	}
	assert_int_equal(ss.timeouts, 1);
	assert_int_equal(ss.logins, 1);
	assert_int_equal(ss.active, 0);
	assert_true(ss.heartbeats_sent >= 2); /* the server kept its side alive meanwhile */
	/* the client sees Login Accepted, heartbeats, then the close */
	uint8_t buf[4096];
	ssize_t got, total = 0;
	while ((got = recv(fd, buf, sizeof(buf), 0)) > 0)
		total += got;
	assert_int_equal(got, 0);
	assert_true(total >= 33 + 3);
	close(fd);
	wb_soup_server_destroy(srv);
}

/* ---------------------------------------------------------------- bytes only */

struct wire {
	uint8_t sent[4096];
	size_t sent_len;
	int closes;
};

static struct wire bytes_wire;
static struct rig bytes_rig;

static int capture_send(void *arg, const uint8_t *data, size_t n)
{
	(void)arg;
	assert_true(bytes_wire.sent_len + n <= sizeof(bytes_wire.sent));
	memcpy(bytes_wire.sent + bytes_wire.sent_len, data, n);
	bytes_wire.sent_len += n;
	return (int)n;
}

static void capture_close(void *arg)
{
	(void)arg;
	bytes_wire.closes++;
}

static void on_message_bytes(void *arg, uint64_t seq, const uint8_t *msg, uint16_t len)
{
	struct rig *r = arg;
	(void)msg;
	if (seq != r->expect)
		r->out_of_order++;
	r->expect = seq + 1;
	r->got++;
	r->bad_bytes += len != (uint16_t)(seq % 50 + 1);
}

/* No socket at all: the state machine from bytes, split at random points, with the
 * clock supplied by the test. */
static void test_bytes_only_state_machine(void **state)
{
	(void)state;
	struct wb_soup_client_opts co;
	struct wb_soup_client *c;
	struct wb_soup_client_stats st;
	client_opts(&co);
	co.on_message = on_message_bytes;
	co.on_event = on_event;
	co.arg = &bytes_rig;
	co.transport_send = capture_send;
	co.transport_close = capture_close;
	co.heartbeat_ms = 1000;
	co.timeout_ms = 15000;
	memset(&bytes_rig, 0, sizeof(bytes_rig));
	memset(&bytes_wire, 0, sizeof(bytes_wire));
	assert_int_equal(wb_soup_client_create(&co, &c), 0);

	uint64_t now = 1000000;
	assert_int_equal(wb_soup_client_start(c, "SESS      ", 500, now), 0);
	assert_true(wb_soup_client_wants_connect(c, now));
	wb_soup_client_connected(c, now);
	/* the login went out with the requested session and sequence */
	assert_int_equal(bytes_wire.sent_len, 49);
	assert_memory_equal(bytes_wire.sent + 19, "      SESS                 500", 30);

	/* Login Accepted at 500, 200 sequenced messages, a debug packet, split randomly */
	static uint8_t stream[200 * 60 + 64];
	size_t len = wb_soup_build_accepted(stream, "SESS      ", 500);
	len += wb_soup_build_simple(stream + len, WB_SOUP_SERVER_HEARTBEAT);
	memcpy(stream + len, "\x00\x03+hi", 5);
	len += 5;
	for (uint64_t seq = 500; seq < 700; seq++) {
		uint16_t ml = (uint16_t)(seq % 50 + 1);
		len += wb_soup_build_sequenced_hdr(stream + len, ml);
		memset(stream + len, 'x', ml);
		len += ml;
	}
	bytes_rig.expect = 500;
	uint64_t x = 12345;
	for (size_t off = 0; off < len;) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		size_t piece = (size_t)(x >> 33) % 97;
		if (piece > len - off)
			piece = len - off;
		wb_soup_client_on_bytes(c, stream + off, piece, now);
		off += piece;
	}
	wb_soup_client_stats(c, &st);
	assert_int_equal(st.state, WB_SOUP_ST_LOGGED_IN);
	assert_int_equal(bytes_rig.got, 200);
	assert_int_equal(bytes_rig.out_of_order, 0);
	assert_int_equal(bytes_rig.bad_bytes, 0);
	assert_int_equal(st.debug_packets, 1);
	assert_int_equal(st.heartbeats_received, 1);
	assert_int_equal(st.last_seq, 699);

	/* one second of send silence: exactly one R goes out */
	bytes_wire.sent_len = 0;
	wb_soup_client_tick(c, now + 999);
	assert_int_equal(bytes_wire.sent_len, 0);
	wb_soup_client_tick(c, now + 1000);
	assert_int_equal(bytes_wire.sent_len, 3);
	assert_memory_equal(bytes_wire.sent, "\x00\x01R", 3);
	/* 15 s of receive silence: timeout, the stream is closed, reconnect after backoff */
	wb_soup_client_tick(c, now + 15000);
	wb_soup_client_stats(c, &st);
	assert_int_equal(st.timeouts, 1);
	assert_int_equal(st.state, WB_SOUP_ST_BACKOFF);
	assert_int_equal(bytes_wire.closes, 1);
	assert_false(wb_soup_client_wants_connect(c, now + 15000));
	wb_soup_client_tick(c, now + 15000 + co.reconnect_min_ms);
	assert_true(wb_soup_client_wants_connect(c, now + 15000 + co.reconnect_min_ms));
	bytes_wire.sent_len = 0;
	wb_soup_client_connected(c, now + 15020);
	assert_memory_equal(bytes_wire.sent + 19, "      SESS                 700", 30); /* last + 1 */

	/* sequenced data before Login Accepted is a protocol error: drop and reconnect */
	uint8_t early[8];
	size_t el = wb_soup_build_sequenced_hdr(early, 1);
	early[el++] = 'x';
	wb_soup_client_on_bytes(c, early, el, now + 15030);
	wb_soup_client_stats(c, &st);
	assert_int_equal(st.protocol_errors, 1);
	assert_int_equal(st.state, WB_SOUP_ST_BACKOFF);
	assert_int_equal(bytes_rig.got, 200);

	/* reconnect, accepted, then Z in the same read as data: data delivered, then stopped */
	wb_soup_client_tick(c, now + 20000);
	wb_soup_client_connected(c, now + 20000);
	len = wb_soup_build_accepted(stream, "SESS      ", 700);
	len += wb_soup_build_sequenced_hdr(stream + len, 1);
	stream[len++] = 'y';
	len += wb_soup_build_simple(stream + len, WB_SOUP_END_OF_SESSION);
	len += wb_soup_build_sequenced_hdr(stream + len, 1); /* after Z: must be ignored */
	stream[len++] = 'z';
	wb_soup_client_on_bytes(c, stream, len, now + 20001);
	wb_soup_client_stats(c, &st);
	assert_int_equal(st.state, WB_SOUP_ST_STOPPED);
	assert_int_equal(st.last_seq, 700);
	assert_int_equal(bytes_rig.got, 201);
	assert_int_equal(bytes_rig.events[WB_SOUP_EV_END_OF_SESSION], 1);
	/* nothing more happens once stopped */
	wb_soup_client_tick(c, now + 100000);
	assert_false(wb_soup_client_wants_connect(c, now + 100000));
	wb_soup_client_destroy(c);
}

/* Bad options are refused. */
static void test_bad_options(void **state)
{
	(void)state;
	struct wb_soup_client_opts co;
	struct wb_soup_client *c;
	client_opts(&co);
	assert_int_equal(wb_soup_client_create(&co, &c), -EINVAL); /* no on_message */
	co.on_message = on_message;
	co.reconnect_min_ms = 100;
	co.reconnect_max_ms = 50;
	assert_int_equal(wb_soup_client_create(&co, &c), -EINVAL);
	co.reconnect_max_ms = 5000;
	co.timeout_ms = 0;
	assert_int_equal(wb_soup_client_create(&co, &c), -EINVAL);
}

static int setup(void **state)
{
	(void)state;
	struct wb_sim_opts o;
	wb_sim_opts_default(&o);
	o.symbols = 20;
	o.messages = 3000;
	o.seed = 7;
	strcpy(o.session, SESSION);
	return wb_serve_history_from_sim(&o, &sim_history);
}

static int teardown(void **state)
{
	(void)state;
	wb_serve_history_free(sim_history);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_login_at_1_gets_everything),
		cmocka_unit_test(test_login_at_k_gets_k_to_end),
		cmocka_unit_test(test_real_capture_replay),
		cmocka_unit_test(test_bad_password_rejected_a),
		cmocka_unit_test(test_unknown_session_rejected_s),
		cmocka_unit_test(test_disconnect_mid_stream_resumes),
		cmocka_unit_test(test_silent_server_times_out),
		cmocka_unit_test(test_end_of_session_stops_client),
		cmocka_unit_test(test_heartbeats_both_ways),
		cmocka_unit_test(test_server_drops_silent_client),
		cmocka_unit_test(test_bytes_only_state_machine),
		cmocka_unit_test(test_bad_options),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
