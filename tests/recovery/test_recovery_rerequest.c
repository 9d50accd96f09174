/* The MoldUDP64 re-request server over loopback UDP: exact answers, several packets for a
 * large request, the tail of the session, and requests it must ignore. */
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

#include "mold.h"
#include "serve.h"

#define SESSION "WBSIM00042"

static struct wb_serve_history *hist;

struct answer {
	uint64_t messages, packets;
	uint64_t first, next; /* first sequence seen, sequence expected next */
	uint64_t out_of_order, bad_bytes, wrong_session;
	size_t max_packet;
};

struct peer {
	struct wb_rerequest_server *srv;
	int fd;
	struct sockaddr_in to;
};

static void peer_open(struct peer *p, double drop)
{
	struct wb_rerequest_opts o = {.addr = INADDR_LOOPBACK, .drop = drop, .seed = 3};
	assert_int_equal(wb_rerequest_server_create(&o, hist, &p->srv), 0);
	p->fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(p->fd >= 0);
	int big = 4 << 20;
	setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	struct sockaddr_in me = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(p->fd, (struct sockaddr *)&me, sizeof(me)), 0);
	p->to = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(wb_rerequest_server_port(p->srv)),
				     .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
}

static void peer_close(struct peer *p)
{
	close(p->fd);
	wb_rerequest_server_destroy(p->srv);
}

/* Sends raw request bytes, lets the server answer, collects what comes back within 150 ms. */
static void ask_raw(struct peer *p, const uint8_t *req, size_t n, struct answer *a)
{
	memset(a, 0, sizeof(*a));
	assert_int_equal(sendto(p->fd, req, n, 0, (struct sockaddr *)&p->to, sizeof(p->to)), (ssize_t)n);
	struct pollfd sp = {.fd = wb_rerequest_server_fd(p->srv), .events = POLLIN};
	assert_int_equal(poll(&sp, 1, 1000), 1);
	wb_rerequest_server_service(p->srv);

	uint8_t pkt[2048];
	struct pollfd cp = {.fd = p->fd, .events = POLLIN};
	while (poll(&cp, 1, 150) == 1) {
		ssize_t len = recv(p->fd, pkt, sizeof(pkt), 0);
		assert_true(len > 0);
		struct wb_mold_hdr hdr;
		struct wb_mold_iter it;
		assert_int_equal(wb_mold_parse(pkt, (size_t)len, &hdr, &it), 0);
		if (memcmp(hdr.session, hist->session, 10) != 0)
			a->wrong_session++;
		if ((size_t)len > a->max_packet)
			a->max_packet = (size_t)len;
		if (a->packets++ == 0)
			a->first = a->next = hdr.seq;
		if (hdr.seq != a->next)
			a->out_of_order++;
		const uint8_t *msg;
		uint16_t mlen;
		uint64_t seq = hdr.seq;
		int rc;
		while ((rc = wb_mold_next(&it, &msg, &mlen)) == 1) {
			uint16_t hlen;
			const uint8_t *want = wb_serve_history_msg(hist, seq, &hlen);
			if (hlen != mlen || memcmp(want, msg, mlen) != 0)
				a->bad_bytes++;
			seq++;
			a->messages++;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(seq - hdr.seq, hdr.count);
		a->next = seq;
	}
}

static void ask(struct peer *p, const char *session, uint64_t seq, uint16_t count, struct answer *a)
{
	uint8_t req[WB_MOLD_HDR_LEN];
	size_t n = wb_mold_build_request(req, session, seq, count);
	ask_raw(p, req, n, a);
}

/* A small request comes back as exactly those messages, in one packet. */
static void test_exact_messages(void **state)
{
	(void)state;
	struct peer p;
	struct answer a;
	peer_open(&p, 0);
	ask(&p, SESSION, 10, 5, &a);
	assert_int_equal(a.packets, 1);
	assert_int_equal(a.messages, 5);
	assert_int_equal(a.first, 10);
	assert_int_equal(a.next, 15);
	assert_int_equal(a.bad_bytes, 0);
	assert_int_equal(a.wrong_session, 0);

	ask(&p, SESSION, 1, 1, &a);
	assert_int_equal(a.messages, 1);
	assert_int_equal(a.first, 1);
	assert_int_equal(a.bad_bytes, 0);

	struct wb_rerequest_stats st;
	wb_rerequest_server_stats(p.srv, &st);
	assert_int_equal(st.requests, 2);
	assert_int_equal(st.messages_sent, 6);
	peer_close(&p);
}

/* 2000 messages do not fit one datagram: several packets, each within 1400 bytes,
 * contiguous, together exactly the range. */
static void test_large_request_spans_packets(void **state)
{
	(void)state;
	struct peer p;
	struct answer a;
	peer_open(&p, 0);
	ask(&p, SESSION, 500, 2000, &a);
	assert_int_equal(a.messages, 2000);
	assert_true(a.packets > 10);
	assert_true(a.max_packet <= WB_SIM_MOLD_PAYLOAD_MAX);
	assert_int_equal(a.first, 500);
	assert_int_equal(a.next, 2500);
	assert_int_equal(a.out_of_order, 0);
	assert_int_equal(a.bad_bytes, 0);
	struct wb_rerequest_stats st;
	wb_rerequest_server_stats(p.srv, &st);
	assert_int_equal(st.packets_sent, a.packets);
	peer_close(&p);
}

/* A request running past the end returns what exists; one starting past it, nothing. */
static void test_request_beyond_end(void **state)
{
	(void)state;
	struct peer p;
	struct answer a;
	peer_open(&p, 0);
	ask(&p, SESSION, hist->count - 3, 100, &a);
	assert_int_equal(a.messages, 4);
	assert_int_equal(a.first, hist->count - 3);
	assert_int_equal(a.bad_bytes, 0);

	ask(&p, SESSION, hist->count + 1, 10, &a);
	assert_int_equal(a.packets, 0);
	struct wb_rerequest_stats st;
	wb_rerequest_server_stats(p.srv, &st);
	assert_int_equal(st.requests, 1);
	assert_int_equal(st.ignored, 1);
	peer_close(&p);
}

/* seq 0, another session, count 0, a short or long datagram: no answer, each counted. */
static void test_ignored_requests(void **state)
{
	(void)state;
	struct peer p;
	struct answer a;
	peer_open(&p, 0);
	ask(&p, SESSION, 0, 10, &a);
	assert_int_equal(a.packets, 0);
	ask(&p, "OTHERSESS1", 1, 10, &a);
	assert_int_equal(a.packets, 0);
	ask(&p, SESSION, 1, 0, &a);
	assert_int_equal(a.packets, 0);
	uint8_t req[WB_MOLD_HDR_LEN + 2];
	wb_mold_build_request(req, SESSION, 1, 10);
	ask_raw(&p, req, WB_MOLD_HDR_LEN - 1, &a);
	assert_int_equal(a.packets, 0);
	ask_raw(&p, req, WB_MOLD_HDR_LEN + 2, &a);
	assert_int_equal(a.packets, 0);

	struct wb_rerequest_stats st;
	wb_rerequest_server_stats(p.srv, &st);
	assert_int_equal(st.ignored, 5);
	assert_int_equal(st.requests, 0);
	assert_int_equal(st.messages_sent, 0);
	/* and it still answers a good one afterwards */
	ask(&p, SESSION, 7, 3, &a);
	assert_int_equal(a.messages, 3);
	peer_close(&p);
}

/* The drop option loses response packets and counts them. */
static void test_drop_probability(void **state)
{
	(void)state;
	struct peer p;
	struct answer a;
	peer_open(&p, 1.0);
	ask(&p, SESSION, 1, 100, &a);
	assert_int_equal(a.packets, 0);
	struct wb_rerequest_stats st;
	wb_rerequest_server_stats(p.srv, &st);
	assert_int_equal(st.requests, 1);
	assert_true(st.packets_dropped >= 2);
	assert_int_equal(st.packets_sent, 0);
	peer_close(&p);

	struct wb_rerequest_opts bad = {.addr = INADDR_LOOPBACK, .drop = 1.5};
	struct wb_rerequest_server *s;
	assert_int_equal(wb_rerequest_server_create(&bad, hist, &s), -EINVAL);
}

static int setup(void **state)
{
	(void)state;
	struct wb_sim_opts o;
	wb_sim_opts_default(&o);
	o.symbols = 20;
	o.messages = 3000;
	o.seed = 11;
	strcpy(o.session, SESSION);
	return wb_serve_history_from_sim(&o, &hist);
}

static int teardown(void **state)
{
	(void)state;
	wb_serve_history_free(hist);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_messages),
		cmocka_unit_test(test_large_request_spans_packets),
		cmocka_unit_test(test_request_beyond_end),
		cmocka_unit_test(test_ignored_requests),
		cmocka_unit_test(test_drop_probability),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
