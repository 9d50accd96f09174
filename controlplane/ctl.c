/* UNIX socket server for the control protocol: one request per line, one JSON response
 * per line. Bounded request size, bounded clients, slow clients cut off; a client that
 * vanishes mid-request changes nothing. */
#define _GNU_SOURCE
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "dataplane.h"

#ifndef WB_VERSION
#define WB_VERSION "0.1.0"
#endif

struct client {
	int fd;
	uid_t uid;
	gid_t gid;
	size_t len;
	uint64_t started_ms; /* when the pending partial request began; 0 = none */
	char *buf;
};

struct wb_ctl {
	struct wb_ctl_opts o;
	int listen_fd;
	int lock_fd;
	char lock_path[128];
	unsigned nclients;
	struct client clients[WB_CTL_MAX_CLIENTS];
	/* counters */
	uint64_t requests, errors, malformed, oversized, unknown_cmds, timeouts, refused_full, disconnects;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int wb_ctl_create(const struct wb_ctl_opts *o, struct wb_ctl **out, char *err, size_t errlen)
{
	int ret;
	struct wb_ctl *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->o = *o;
	c->listen_fd = -1;
	c->lock_fd = -1;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(o->socket_path) >= sizeof(sa.sun_path) || strlen(o->socket_path) + 6 > sizeof(c->lock_path)) {
		snprintf(err, errlen, "control socket path too long: %s", o->socket_path);
		ret = -ENAMETOOLONG;
		goto out_free;
	}
	/* The lock file decides who owns the path, so two daemons never race on it. */
	snprintf(c->lock_path, sizeof(c->lock_path), "%s.lock", o->socket_path);
	c->lock_fd = open(c->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (c->lock_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "control socket lock %s: %s", c->lock_path, strerror(errno));
		goto out_free;
	}
	if (flock(c->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		ret = -EADDRINUSE;
		snprintf(err, errlen, "another wirebookd is already serving %s (lock %s is held)", o->socket_path,
			 c->lock_path);
		close(c->lock_fd);
		c->lock_fd = -1;
		goto out_free;
	}
	unlink(o->socket_path); /* stale socket of a daemon that died: we hold the lock */
	strcpy(sa.sun_path, o->socket_path);
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->listen_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto out_unlock;
	}
	if (bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(c->listen_fd, 128) < 0) {
		ret = -errno;
		snprintf(err, errlen, "control socket %s: %s", o->socket_path, strerror(errno));
		goto out_close;
	}
	mode_t mode = o->cfg->control.mode ? o->cfg->control.mode : 0660;
	if (chmod(o->socket_path, mode) < 0) {
		ret = -errno;
		snprintf(err, errlen, "chmod %s: %s", o->socket_path, strerror(errno));
		goto out_unlink;
	}
	if (o->cfg->control.group[0]) {
		struct group *g = getgrnam(o->cfg->control.group);
		if (!g || chown(o->socket_path, (uid_t)-1, g->gr_gid) < 0) {
			ret = -EINVAL;
			snprintf(err, errlen, "control socket group '%s': %s", o->cfg->control.group,
				 g ? strerror(errno) : "no such group");
			goto out_unlink;
		}
	}
	*out = c;
	return 0;
out_unlink:
	unlink(o->socket_path);
out_close:
	close(c->listen_fd);
out_unlock:
	unlink(c->lock_path);
	close(c->lock_fd);
out_free:
	free(c);
	return ret;
}

void wb_ctl_attach(struct wb_ctl *c, struct wb_dataplane *dp, struct wb_persister *const *persisters,
		   unsigned npersisters)
{
	c->o.dp = dp;
	c->o.persisters = persisters;
	c->o.npersisters = npersisters;
}

static void drop_client(struct wb_ctl *c, unsigned i)
{
	close(c->clients[i].fd);
	free(c->clients[i].buf);
	c->clients[i] = c->clients[--c->nclients];
}

static void send_json(int fd, json_t *resp)
{
	char *s = json_dumps(resp, JSON_COMPACT);
	if (!s)
		return;
	size_t len = strlen(s);
	struct iovec iov[2] = { { s, len }, { "\n", 1 } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	/* A vanished client is its own problem: never SIGPIPE the daemon. */
	size_t sent = 0, total = len + 1;
	while (sent < total) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				struct pollfd p = { .fd = fd, .events = POLLOUT };
				if (poll(&p, 1, 1000) <= 0)
					break;
				continue;
			}
			break;
		}
		sent += (size_t)n;
		while (mh.msg_iovlen && (size_t)n >= mh.msg_iov[0].iov_len) {
			n -= (ssize_t)mh.msg_iov[0].iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen) {
			mh.msg_iov[0].iov_base = (char *)mh.msg_iov[0].iov_base + n;
			mh.msg_iov[0].iov_len -= (size_t)n;
		}
	}
	free(s);
}

static json_t *error_resp(const char *fmt, const char *arg)
{
	char msg[512];
	snprintf(msg, sizeof(msg), fmt, arg);
	return json_pack("{s:b,s:s}", "ok", 0, "error", msg);
}

static json_t *ok_resp(json_t *result)
{
	return json_pack("{s:b,s:o}", "ok", 1, "result", result);
}

static json_t *cmd_status(struct wb_ctl *c)
{
	const struct wb_config *cfg = c->o.cfg;
	json_t *threads = json_array();
	json_array_append_new(threads, json_pack("{s:s,s:s,s:i,s:s}", "name", "control", "role", "control", "core",
						 (int)cfg->control_lcore, "state", "serving"));
	for (unsigned i = 0; i < wb_dataplane_nworkers(c->o.dp); i++) {
		struct wb_worker_stats ws;
		wb_dataplane_worker_stats(c->o.dp, i, &ws);
		json_array_append_new(threads, json_pack("{s:s,s:s,s:i,s:i,s:s}", "name", ws.name, "role", "worker",
							 "core", (int)ws.lcore, "numa_node", ws.numa_node, "state",
							 ws.state));
	}
	for (unsigned i = 0; i < c->o.npersisters; i++)
		json_array_append_new(threads, json_pack("{s:s,s:s,s:i,s:s}", "name", cfg->persisters[i].name, "role",
							 "persister", "core", (int)cfg->persisters[i].lcore, "state",
							 c->o.persisters[i] ? "writing" : "off"));
	uint64_t up = (wall_ns() - c->o.start_ns) / 1000000ULL;
	return json_pack("{s:s,s:I,s:s,s:s,s:i,s:o}", "version", WB_VERSION, "uptime_ms", (json_int_t)up, "config",
			 c->o.config_path ? c->o.config_path : "", "socket", c->o.socket_path, "pid", (int)getpid(),
			 "threads", threads);
}

static json_t *cmd_symbols(struct wb_ctl *c, json_t *req)
{
	json_int_t limit = json_integer_value(json_object_get(req, "limit"));
	json_t *out = json_array();
	static const char *const health[] = { "ok", "flagged", "frozen", "stale" };
	for (unsigned f = 0; f < wb_dataplane_nfeeds(c->o.dp); f++) {
		struct wb_bookset *bs = wb_dataplane_feed_books(c->o.dp, f);
		if (!bs)
			continue;
		for (int loc = wb_bookset_next_symbol(bs, 0); loc >= 0;
		     loc = loc < 65535 ? wb_bookset_next_symbol(bs, (uint32_t)loc + 1) : -1) {
			if (limit > 0 && (json_int_t)json_array_size(out) >= limit)
				break;
			struct wb_symbol_stats ss;
			if (wb_bookset_symbol_stats(bs, (uint16_t)loc, &ss) < 0)
				continue;
			char st[2] = { ss.trading_state ? ss.trading_state : ' ', 0 };
			json_array_append_new(out, json_pack("{s:s,s:i,s:i,s:s,s:s,s:I,s:I,s:i}", "symbol", ss.stock,
							     "feed", (int)f, "locate", loc, "trading_state", st,
							     "health", ss.health < 4 ? health[ss.health] : "?",
							     "messages_total", (json_int_t)ss.msgs,
							     "integrity_events_total", (json_int_t)ss.integrity_total,
							     "live_orders", (int)ss.live_orders));
		}
	}
	return ok_resp(json_pack("{s:o}", "symbols", out));
}

static json_t *cmd_book(struct wb_ctl *c, json_t *req)
{
	const char *sym = json_string_value(json_object_get(req, "symbol"));
	if (!sym || !*sym)
		return error_resp("book: missing \"symbol\"%s", "");
	json_t *d = json_object_get(req, "depth");
	json_int_t depth = d ? json_integer_value(d) : 10;
	if (d && (!json_is_integer(d) || depth < 1 || depth > WB_TOP_MAX_DEPTH)) {
		char msg[64];
		snprintf(msg, sizeof(msg), "%d", WB_TOP_MAX_DEPTH);
		return error_resp("book: \"depth\" must be an integer from 1 to %s", msg);
	}
	char err[256];
	json_t *b = wb_book_json(c->o.dp, sym, (uint32_t)depth, -1, err, sizeof(err));
	if (!b)
		return error_resp("book: %s", err);
	return ok_resp(b);
}

static json_t *cmd_freeze_reset(struct wb_ctl *c, json_t *req, bool freeze)
{
	const char *sym = json_string_value(json_object_get(req, "symbol"));
	if (!sym)
		return error_resp("missing \"symbol\"%s", "");
	for (unsigned f = 0; f < wb_dataplane_nfeeds(c->o.dp); f++) {
		struct wb_bookset *bs = wb_dataplane_feed_books(c->o.dp, f);
		int loc = bs ? wb_bookset_find(bs, sym) : -ENOENT;
		if (loc < 0)
			continue;
		int r = freeze ? wb_bookset_request_freeze(bs, (uint16_t)loc) : wb_bookset_request_reset(bs, (uint16_t)loc);
		if (r < 0)
			return error_resp("request refused: %s", strerror(-r));
		return ok_resp(json_pack("{s:s,s:s}", "symbol", sym, "requested", freeze ? "freeze" : "reset"));
	}
	return error_resp("unknown symbol '%s'", sym);
}

json_t *wb_ctl_handle(struct wb_ctl *c, const char *line, size_t len)
{
	json_error_t jerr;
	c->requests++;
	json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req || !json_is_object(req)) {
		c->malformed++;
		c->errors++;
		char msg[256];
		snprintf(msg, sizeof(msg), "malformed request: %s (expected one JSON object per line, e.g. {\"cmd\":\"status\"})",
			 req ? "not an object" : jerr.text);
		json_decref(req);
		return json_pack("{s:b,s:s}", "ok", 0, "error", msg);
	}
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	json_t *resp;
	if (!c->o.dp && cmd) {
		resp = error_resp("the appliance is still starting (%s); try again", cmd);
	} else if (!cmd) {
		c->malformed++;
		resp = error_resp("request has no string \"cmd\"%s", "");
	} else if (!strcmp(cmd, "status")) {
		resp = ok_resp(cmd_status(c));
	} else if (!strcmp(cmd, "stats")) {
		json_t *s = wb_stats_json(c->o.dp, c->o.persisters, c->o.npersisters, c->o.cfg);
		json_object_set_new(s, "control",
				    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i}", "requests_total", (json_int_t)c->requests,
					      "errors_total", (json_int_t)c->errors, "malformed_total",
					      (json_int_t)c->malformed, "oversized_total", (json_int_t)c->oversized,
					      "unknown_commands_total", (json_int_t)c->unknown_cmds, "timeouts_total",
					      (json_int_t)c->timeouts, "refused_full_total", (json_int_t)c->refused_full,
					      "clients", (int)c->nclients));
		resp = ok_resp(s);
	} else if (!strcmp(cmd, "book")) {
		resp = cmd_book(c, req);
	} else if (!strcmp(cmd, "symbols")) {
		resp = cmd_symbols(c, req);
	} else if (!strcmp(cmd, "freeze")) {
		resp = cmd_freeze_reset(c, req, true);
	} else if (!strcmp(cmd, "reset")) {
		resp = cmd_freeze_reset(c, req, false);
	} else {
		c->unknown_cmds++;
		resp = error_resp("unknown command '%s' (commands: status, stats, book, symbols, freeze, reset)", cmd);
	}
	if (json_is_false(json_object_get(resp, "ok")))
		c->errors++;
	json_decref(req);
	return resp;
}

static void accept_clients(struct wb_ctl *c)
{
	for (;;) {
		int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (c->nclients == WB_CTL_MAX_CLIENTS) {
			c->refused_full++;
			json_t *r = error_resp("too many control clients (%s); try again", "128");
			send_json(fd, r);
			json_decref(r);
			close(fd);
			continue;
		}
		struct ucred cred;
		socklen_t cl = sizeof(cred);
		struct client *cli = &c->clients[c->nclients];
		memset(cli, 0, sizeof(*cli));
		cli->fd = fd;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
			cli->uid = cred.uid;
			cli->gid = cred.gid;
		}
		cli->buf = malloc(WB_CTL_MAX_REQUEST);
		if (!cli->buf) {
			close(fd);
			continue;
		}
		c->nclients++;
	}
}

/* Reads what the client sent; answers each complete line. Returns false to drop it. */
static bool serve_client(struct wb_ctl *c, struct client *cli)
{
	for (;;) {
		ssize_t n = read(cli->fd, cli->buf + cli->len, WB_CTL_MAX_REQUEST - cli->len);
		if (n == 0) {
			c->disconnects++;
			return false;
		}
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		if (!cli->len)
			cli->started_ms = mono_ms();
		cli->len += (size_t)n;
		char *nl;
		while ((nl = memchr(cli->buf, '\n', cli->len))) {
			size_t l = (size_t)(nl - cli->buf);
			json_t *resp = wb_ctl_handle(c, cli->buf, l);
			send_json(cli->fd, resp);
			json_decref(resp);
			memmove(cli->buf, nl + 1, cli->len - l - 1);
			cli->len -= l + 1;
			cli->started_ms = cli->len ? mono_ms() : 0;
		}
		if (cli->len == WB_CTL_MAX_REQUEST) {
			c->oversized++;
			c->errors++;
			char lim[32];
			snprintf(lim, sizeof(lim), "%d", WB_CTL_MAX_REQUEST);
			json_t *r = error_resp("request too large (limit %s bytes per line); closing", lim);
			send_json(cli->fd, r);
			json_decref(r);
			return false;
		}
	}
}

int wb_ctl_poll(struct wb_ctl *c, int timeout_ms)
{
	struct pollfd pfd[WB_CTL_MAX_CLIENTS + 1];
	pfd[0] = (struct pollfd){ .fd = c->listen_fd, .events = POLLIN };
	for (unsigned i = 0; i < c->nclients; i++)
		pfd[i + 1] = (struct pollfd){ .fd = c->clients[i].fd, .events = POLLIN };
	unsigned n = c->nclients;
	int r = poll(pfd, n + 1, timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	/* Serve existing clients first, from the back, so drops don't disturb indices. */
	uint64_t now = mono_ms();
	for (unsigned i = n; i-- > 0;) {
		struct client *cli = &c->clients[i];
		bool keep = true;
		if (pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR))
			keep = serve_client(c, cli);
		if (keep && cli->started_ms && now - cli->started_ms > WB_CTL_REQUEST_TIMEOUT_MS) {
			c->timeouts++;
			json_t *e = error_resp("request not completed within %s ms; closing", "5000");
			send_json(cli->fd, e);
			json_decref(e);
			keep = false;
		}
		if (!keep)
			drop_client(c, i);
	}
	if (pfd[0].revents & POLLIN)
		accept_clients(c);
	return 0;
}

void wb_ctl_destroy(struct wb_ctl *c)
{
	if (!c)
		return;
	while (c->nclients)
		drop_client(c, c->nclients - 1);
	close(c->listen_fd);
	unlink(c->o.socket_path);
	unlink(c->lock_path);
	close(c->lock_fd);
	free(c);
}
