/* UNIX socket server for the control protocol: one request per line, one JSON response
 * per line (a replay streams lines until its end marker). Bounded request size, bounded
 * clients, slow clients cut off, peers checked against the ACL; a client that vanishes
 * mid-request or mid-stream changes nothing but a counter. No DPDK here. */
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

#include "replay.h"

#ifndef WB_VERSION
#define WB_VERSION "0.1.0"
#endif

struct client {
	int fd;
	struct wb_ctl_peer peer;
	size_t len;
	uint64_t started_ms; /* when the pending partial request began; 0 = none */
	char *buf;
	/* an active replay stream: out[out_off..out_len) still to send */
	struct wb_replay *replay;
	char *out;
	size_t out_len, out_off;
	bool replay_done;
};

struct wb_ctl {
	struct wb_ctl_opts o;
	int listen_fd;
	int lock_fd;
	char lock_path[128];
	unsigned nclients;
	struct client clients[WB_CTL_MAX_CLIENTS];
	struct wb_ctl_cmd cmds[WB_CTL_MAX_COMMANDS];
	unsigned ncmds;
	wb_ctl_apply_fn apply;
	void *apply_arg;
	uid_t self_uid;
	uint64_t next_metrics_ms;
	/* counters */
	uint64_t requests, errors, malformed, oversized, unknown_cmds, timeouts, refused_full, disconnects;
	uint64_t denied, reloads, reloads_refused, reloads_failed, metrics_writes, metrics_write_errors;
	uint64_t replays, replays_completed, replays_aborted, replay_events, replay_bytes;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static json_t *error_resp(const char *fmt, const char *arg)
{
	char *msg;
	if (asprintf(&msg, fmt, arg) < 0)
		return json_pack("{s:b,s:s}", "ok", 0, "error", "out of memory");
	json_t *r = json_pack("{s:b,s:s}", "ok", 0, "error", msg);
	free(msg);
	return r;
}

static json_t *ok_resp(json_t *result)
{
	return json_pack("{s:b,s:o}", "ok", 1, "result", result);
}

static int bind_socket(struct wb_ctl *c, const struct wb_ctl_opts *o, char *err, size_t errlen)
{
	int ret;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(o->socket_path) >= sizeof(sa.sun_path) || strlen(o->socket_path) + 6 > sizeof(c->lock_path)) {
		snprintf(err, errlen, "control socket path too long: %s", o->socket_path);
		return -ENAMETOOLONG;
	}
	/* The lock file decides who owns the path, so two daemons never race on it. */
	snprintf(c->lock_path, sizeof(c->lock_path), "%s.lock", o->socket_path);
	c->lock_fd = open(c->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (c->lock_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "control socket lock %s: %s", c->lock_path, strerror(errno));
		return ret;
	}
	if (flock(c->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		ret = -EADDRINUSE;
		snprintf(err, errlen, "another wirebookd is already serving %s (lock %s is held)", o->socket_path,
			 c->lock_path);
		goto out_close_lock;
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
	return 0;
out_unlink:
	unlink(o->socket_path);
out_close:
	close(c->listen_fd);
	c->listen_fd = -1;
out_unlock:
	unlink(c->lock_path);
out_close_lock:
	close(c->lock_fd);
	c->lock_fd = -1;
	return ret;
}

int wb_ctl_create(const struct wb_ctl_opts *o, struct wb_ctl **out, char *err, size_t errlen)
{
	struct wb_ctl *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->o = *o;
	c->listen_fd = -1;
	c->lock_fd = -1;
	c->self_uid = geteuid();
	if (o->socket_path) {
		int ret = bind_socket(c, o, err, errlen);
		if (ret < 0) {
			free(c);
			return ret;
		}
	}
	*out = c;
	return 0;
}

int wb_ctl_register(struct wb_ctl *c, const struct wb_ctl_cmd *cmd)
{
	for (unsigned i = 0; i < c->ncmds; i++) {
		if (!strcmp(c->cmds[i].name, cmd->name)) {
			c->cmds[i] = *cmd;
			return 0;
		}
	}
	if (c->ncmds == WB_CTL_MAX_COMMANDS)
		return -ENOSPC;
	c->cmds[c->ncmds++] = *cmd;
	return 0;
}

void wb_ctl_set_apply(struct wb_ctl *c, wb_ctl_apply_fn fn, void *arg)
{
	c->apply = fn;
	c->apply_arg = arg;
}

static void drop_client(struct wb_ctl *c, unsigned i)
{
	struct client *cli = &c->clients[i];
	if (cli->replay) {
		c->replays_aborted++;
		wb_replay_close(cli->replay);
	}
	free(cli->out);
	close(cli->fd);
	free(cli->buf);
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

/* ---- access control ---- */

static bool in_list(const uint32_t *ids, uint32_t n, uint32_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* The peer's primary group or any of its supplementary groups is listed. */
static bool group_listed(const uint32_t *ids, uint32_t n, const struct wb_ctl_peer *peer)
{
	if (in_list(ids, n, peer->gid))
		return true;
	for (uint32_t i = 0; i < peer->ngroups && i < WB_CTL_PEER_GROUPS; i++)
		if (in_list(ids, n, peer->groups[i]))
			return true;
	return false;
}

bool wb_ctl_may_admin(const struct wb_ctl *c, const struct wb_ctl_peer *peer)
{
	const struct wb_control_conf *cc = &c->o.cfg->control;
	if (peer->uid == 0 || peer->uid == c->self_uid)
		return true;
	return in_list(cc->admin_uids, cc->nadmin_uids, peer->uid) ||
	       group_listed(cc->admin_gids, cc->nadmin_gids, peer);
}

bool wb_ctl_may_read(const struct wb_ctl *c, const struct wb_ctl_peer *peer)
{
	const struct wb_control_conf *cc = &c->o.cfg->control;
	if (wb_ctl_may_admin(c, peer))
		return true;
	if (!cc->nread_uids && !cc->nread_gids)
		return true; /* the socket's mode and group already decided who can connect */
	return in_list(cc->read_uids, cc->nread_uids, peer->uid) || group_listed(cc->read_gids, cc->nread_gids, peer);
}

/* ---- built-in commands ---- */

static json_t *run_registered(struct wb_ctl *c, const char *name, json_t *req, char *err, size_t errlen)
{
	for (unsigned i = 0; i < c->ncmds; i++)
		if (!strcmp(c->cmds[i].name, name))
			return c->cmds[i].run(c->cmds[i].arg, req, err, errlen);
	snprintf(err, errlen, "the appliance is still starting (%s); try again", name);
	return NULL;
}

static json_t *control_counters(const struct wb_ctl *c)
{
	json_t *o = json_object();
#define P(k, v) json_object_set_new(o, k, json_integer((json_int_t)(v)))
	P("requests_total", c->requests);
	P("errors_total", c->errors);
	P("malformed_total", c->malformed);
	P("oversized_total", c->oversized);
	P("unknown_commands_total", c->unknown_cmds);
	P("timeouts_total", c->timeouts);
	P("refused_full_total", c->refused_full);
	P("disconnects_total", c->disconnects);
	P("denied_total", c->denied);
	P("reloads_total", c->reloads);
	P("reloads_refused_total", c->reloads_refused);
	P("reloads_failed_total", c->reloads_failed);
	P("metrics_file_writes_total", c->metrics_writes);
	P("metrics_file_errors_total", c->metrics_write_errors);
	P("replays_total", c->replays);
	P("replays_completed_total", c->replays_completed);
	P("replays_aborted_total", c->replays_aborted);
	P("replay_events_total", c->replay_events);
	P("replay_bytes_total", c->replay_bytes);
	P("clients", c->nclients);
#undef P
	return o;
}

/* The registered stats plus the control plane's own counters. */
static json_t *full_stats(struct wb_ctl *c, char *err, size_t errlen)
{
	json_t *s = run_registered(c, "stats", NULL, err, errlen);
	if (!s)
		return NULL;
	json_object_set_new(s, "control", control_counters(c));
	return s;
}

json_t *wb_ctl_reload(struct wb_ctl *c)
{
	static const char *const self_fields[] = { "control.read_uids", "control.read_gids", "control.admin_uids",
						   "control.admin_gids", "control.metrics_file",
						   "control.metrics_interval_ms", "log_level" };
	c->reloads++;
	if (!c->o.config_path) {
		c->reloads_failed++;
		return error_resp("reload: the daemon was started without a config file%s", "");
	}
	char *err = malloc(16384);
	struct wb_config *next = malloc(sizeof(*next));
	json_t *resp = NULL;
	if (!err || !next) {
		c->reloads_failed++;
		resp = error_resp("reload: out of memory%s", "");
		goto out_free;
	}
	long ncores = c->o.ncores ? (long)c->o.ncores : sysconf(_SC_NPROCESSORS_CONF);
	err[0] = 0;
	if (wb_config_load(c->o.config_path, (unsigned)ncores, next, err, 16384) < 0) {
		c->reloads_failed++;
		size_t l = strlen(err);
		while (l && err[l - 1] == '\n')
			err[--l] = 0;
		resp = json_pack("{s:b,s:s,s:s}", "ok", 0, "error", "reload: the file does not validate; nothing changed",
				 "details", err);
		goto out_free;
	}
	/* Command-line overrides stay in force: they are not the file's to change. */
	memcpy(next->capture.directory, c->o.cfg->capture.directory, sizeof(next->capture.directory));
	memcpy(next->control.socket, c->o.cfg->control.socket, sizeof(next->control.socket));
	json_t *restart = json_array(), *live = json_array();
	wb_config_diff(c->o.cfg, next, restart, live);
	if (json_array_size(restart)) {
		/* All or nothing: a half-applied file would match neither the old nor the new one. */
		c->reloads_refused++;
		char msg[1024] = "reload refused: these fields need a restart:";
		size_t i;
		json_t *v;
		json_array_foreach(restart, i, v) {
			strncat(msg, " ", sizeof(msg) - strlen(msg) - 1);
			strncat(msg, json_string_value(v), sizeof(msg) - strlen(msg) - 1);
		}
		strncat(msg, "; nothing changed", sizeof(msg) - strlen(msg) - 1);
		resp = json_pack("{s:b,s:s,s:o,s:o}", "ok", 0, "error", msg, "restart_required", restart, "live",
				 live);
		goto out_free;
	}
	json_t *applied = json_array();
	if (c->apply && c->apply(c->apply_arg, c->o.cfg, next, applied, err, 16384) < 0) {
		c->reloads_failed++;
		resp = json_pack("{s:b,s:s,s:o,s:o}", "ok", 0, "error", err, "applied", applied, "live", live);
		json_decref(restart);
		goto out_free;
	}
	size_t i;
	json_t *v;
	json_array_foreach(live, i, v) {
		for (size_t k = 0; k < sizeof(self_fields) / sizeof(self_fields[0]); k++)
			if (!strcmp(json_string_value(v), self_fields[k]))
				json_array_append_new(applied, json_string(self_fields[k]));
	}
	/* The running config becomes the file's; every live field is now in force. */
	memcpy(c->o.cfg, next, sizeof(*next));
	c->next_metrics_ms = 0;
	resp = ok_resp(json_pack("{s:s,s:o,s:o,s:o}", "config", c->o.config_path, "changed", live, "applied", applied,
				 "restart_required", restart));
out_free:
	free(next);
	free(err);
	return resp;
}

static json_t *cmd_help(const struct wb_ctl *c)
{
	static const struct {
		const char *name, *help;
		bool admin;
	} builtin[] = {
		{ "help", "this list", false },
		{ "config_show", "the effective configuration", false },
		{ "metrics", "every counter in Prometheus text exposition", false },
		{ "reload", "re-read the config file and apply what is safe live", true },
		{ "replay", "stream captured events: symbol, from, to, format (jsonl|csv)", true },
	};
	json_t *a = json_array();
	for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
		json_array_append_new(a, json_pack("{s:s,s:s,s:b}", "cmd", builtin[i].name, "help", builtin[i].help,
						   "admin", builtin[i].admin));
	for (unsigned i = 0; i < c->ncmds; i++)
		json_array_append_new(a, json_pack("{s:s,s:s,s:b}", "cmd", c->cmds[i].name, "help",
						   c->cmds[i].help ? c->cmds[i].help : "", "admin", c->cmds[i].admin));
	return json_pack("{s:o}", "commands", a);
}

static const char *opt_string(json_t *req, const char *key, bool *bad)
{
	json_t *v = json_object_get(req, key);
	if (!v)
		return NULL;
	if (!json_is_string(v)) {
		*bad = true;
		return NULL;
	}
	return json_string_value(v);
}

/* Validates a replay request and opens its walk; cli NULL (tests) closes it at once. */
static json_t *cmd_replay(struct wb_ctl *c, json_t *req, struct client *cli)
{
	bool bad = false;
	const char *sym = opt_string(req, "symbol", &bad);
	const char *from = opt_string(req, "from", &bad);
	const char *to = opt_string(req, "to", &bad);
	const char *fmt = opt_string(req, "format", &bad);
	if (bad)
		return error_resp("replay: symbol, from, to and format must be strings%s", "");
	if (!sym || !*sym || strlen(sym) > 8)
		return error_resp("replay: \"symbol\" must name one symbol (1 to 8 characters)%s", "");
	struct wb_replay_opts ro = { .dir = c->o.cfg->capture.directory, .symbol = sym };
	if (from && wb_replay_parse_time(from, &ro.from) < 0)
		return error_resp("replay: bad \"from\" time '%s' (ISO 8601 receive time, HH:MM:SS[.f] or ns "
				  "exchange time)",
				  from);
	if (to && wb_replay_parse_time(to, &ro.to) < 0)
		return error_resp("replay: bad \"to\" time '%s' (ISO 8601 receive time, HH:MM:SS[.f] or ns "
				  "exchange time)",
				  to);
	if (!fmt || !strcmp(fmt, "jsonl"))
		ro.format = WB_REPLAY_JSONL;
	else if (!strcmp(fmt, "csv"))
		ro.format = WB_REPLAY_CSV;
	else
		return error_resp("replay: unknown format '%s' (jsonl, csv)", fmt);
	if (cli && cli->replay)
		return error_resp("replay: a replay is already streaming on this connection%s", "");
	char err[PATH_MAX + 128];
	struct wb_replay *r;
	if (wb_replay_open(&ro, &r, err, sizeof(err)) < 0)
		return error_resp("replay: %s", err);
	c->replays++;
	if (!cli) {
		wb_replay_close(r);
	} else {
		cli->out = malloc(WB_CTL_STREAM_BUF);
		if (!cli->out) {
			wb_replay_close(r);
			return error_resp("replay: out of memory%s", "");
		}
		cli->replay = r;
		cli->out_len = cli->out_off = 0;
		cli->replay_done = false;
	}
	return ok_resp(json_pack("{s:s,s:s,s:s}", "stream", ro.format == WB_REPLAY_CSV ? "csv" : "jsonl", "symbol",
				 sym, "end", "a line {\"end\":true,...} follows the last event"));
}

static bool is_admin_builtin(const char *cmd)
{
	return !strcmp(cmd, "reload") || !strcmp(cmd, "replay");
}

static json_t *dispatch(struct wb_ctl *c, const struct wb_ctl_peer *peer, json_t *req, const char *cmd,
			struct client *cli)
{
	const struct wb_ctl_cmd *reg = NULL;
	for (unsigned i = 0; i < c->ncmds; i++)
		if (!strcmp(c->cmds[i].name, cmd))
			reg = &c->cmds[i];
	bool builtin = !strcmp(cmd, "help") || !strcmp(cmd, "config_show") || !strcmp(cmd, "metrics") ||
		       is_admin_builtin(cmd);
	bool known = builtin || reg || !strcmp(cmd, "stats");
	if (!known) {
		c->unknown_cmds++;
		return error_resp("unknown command '%s' (\"help\" lists them)", cmd);
	}
	bool admin = builtin ? is_admin_builtin(cmd) : reg && reg->admin;
	if (!wb_ctl_may_read(c, peer) || (admin && !wb_ctl_may_admin(c, peer))) {
		c->denied++;
		char msg[256];
		snprintf(msg, sizeof(msg), "permission denied: uid %u gid %u may not run '%s'%s", (unsigned)peer->uid,
			 (unsigned)peer->gid, cmd, admin ? " (an admin command: control.admin_uids/admin_gids)"
							 : " (control.read_uids/read_gids)");
		return json_pack("{s:b,s:s}", "ok", 0, "error", msg);
	}
	char err[512] = "";
	json_t *r;
	if (!strcmp(cmd, "help"))
		return ok_resp(cmd_help(c));
	if (!strcmp(cmd, "config_show"))
		return ok_resp(wb_config_json(c->o.cfg));
	if (!strcmp(cmd, "reload"))
		return wb_ctl_reload(c);
	if (!strcmp(cmd, "replay"))
		return cmd_replay(c, req, cli);
	if (!strcmp(cmd, "stats")) {
		r = full_stats(c, err, sizeof(err));
		return r ? ok_resp(r) : json_pack("{s:b,s:s}", "ok", 0, "error", err);
	}
	if (!strcmp(cmd, "metrics")) {
		r = full_stats(c, err, sizeof(err));
		if (!r)
			return json_pack("{s:b,s:s}", "ok", 0, "error", err);
		char *text = wb_metrics_render(r);
		json_decref(r);
		if (!text)
			return error_resp("metrics: out of memory%s", "");
		json_t *resp = ok_resp(json_pack("{s:s}", "text", text));
		free(text);
		return resp;
	}
	r = reg->run(reg->arg, req, err, sizeof(err));
	return r ? ok_resp(r) : json_pack("{s:b,s:s}", "ok", 0, "error", err[0] ? err : "failed");
}

static json_t *handle(struct wb_ctl *c, const struct wb_ctl_peer *peer, const char *line, size_t len,
		      struct client *cli)
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
	if (!cmd) {
		c->malformed++;
		resp = error_resp("request has no string \"cmd\"%s", "");
	} else {
		resp = dispatch(c, peer, req, cmd, cli);
	}
	if (!resp)
		resp = error_resp("internal error%s", "");
	bool ok = !json_is_false(json_object_get(resp, "ok"));
	if (!ok)
		c->errors++;
	/* Audit trail: mutations at info, every request at debug (log_level is live). */
	enum wb_log_level lvl = c->o.cfg->log_level;
	if (cmd && (lvl >= WB_LOG_DEBUG || (lvl >= WB_LOG_INFO && (is_admin_builtin(cmd) || !strcmp(cmd, "freeze") ||
								   !strcmp(cmd, "reset")))))
		fprintf(stderr, "wirebookd: control: uid %d gid %d %s: %s\n", (int)peer->uid, (int)peer->gid, cmd,
			ok ? "ok" : json_string_value(json_object_get(resp, "error")));
	json_decref(req);
	return resp;
}

json_t *wb_ctl_handle_peer(struct wb_ctl *c, const struct wb_ctl_peer *peer, const char *line, size_t len)
{
	return handle(c, peer, line, len, NULL);
}

json_t *wb_ctl_handle(struct wb_ctl *c, const char *line, size_t len)
{
	struct wb_ctl_peer root = { 0, 0 };
	return handle(c, &root, line, len, NULL);
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
		/* Unknown credentials get the least privilege there is. */
		cli->peer.uid = (uid_t)-1;
		cli->peer.gid = (gid_t)-1;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
			cli->peer.uid = cred.uid;
			cli->peer.gid = cred.gid;
		}
		/* Operators are usually let in by a supplementary group. A peer in more than 256
		 * (ERANGE: the kernel copies none) is judged by its uid and primary group only. */
		socklen_t gl = sizeof(cli->peer.groups);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, cli->peer.groups, &gl) == 0)
			cli->peer.ngroups = (uint32_t)(gl / sizeof(gid_t));
		cli->buf = malloc(WB_CTL_MAX_REQUEST);
		if (!cli->buf) {
			close(fd);
			continue;
		}
		c->nclients++;
	}
}

/* Sends what the stream has buffered and refills it only once it is all sent, so a slow
 * reader holds at most WB_CTL_STREAM_BUF bytes here. Returns false to drop the client. */
static bool pump_replay(struct wb_ctl *c, struct client *cli)
{
	for (int rounds = 0; rounds < 16; rounds++) {
		if (cli->out_off == cli->out_len) {
			if (cli->replay_done) {
				json_t *end = json_pack("{s:b,s:I,s:I}", "end", 1, "events",
							(json_int_t)wb_replay_events(cli->replay), "bad_blocks",
							(json_int_t)wb_replay_bad_blocks(cli->replay));
				c->replay_events += wb_replay_events(cli->replay);
				c->replays_completed++;
				wb_replay_close(cli->replay);
				cli->replay = NULL;
				free(cli->out);
				cli->out = NULL;
				send_json(cli->fd, end);
				json_decref(end);
				return true;
			}
			cli->out_len = wb_replay_fill(cli->replay, cli->out, WB_CTL_STREAM_BUF, &cli->replay_done);
			cli->out_off = 0;
			continue;
		}
		ssize_t n = send(cli->fd, cli->out + cli->out_off, cli->out_len - cli->out_off, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		cli->out_off += (size_t)n;
		c->replay_bytes += (uint64_t)n;
	}
	return true;
}

/* Reads what the client sent; answers each complete line. Returns false to drop it. */
static bool serve_client(struct wb_ctl *c, struct client *cli)
{
	for (;;) {
		/* While streaming, requests wait in the socket: the stream comes first. */
		if (cli->replay)
			return true;
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
		while (!cli->replay && (nl = memchr(cli->buf, '\n', cli->len))) {
			size_t l = (size_t)(nl - cli->buf);
			json_t *resp = handle(c, &cli->peer, cli->buf, l, cli);
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

static void write_metrics_file(struct wb_ctl *c, uint64_t now)
{
	const struct wb_control_conf *cc = &c->o.cfg->control;
	if (!cc->metrics_file[0] || now < c->next_metrics_ms)
		return;
	c->next_metrics_ms = now + (cc->metrics_interval_ms ? cc->metrics_interval_ms : 10000);
	char err[256];
	json_t *s = full_stats(c, err, sizeof(err));
	if (!s)
		return;
	if (wb_metrics_write_file(cc->metrics_file, s) < 0)
		c->metrics_write_errors++;
	else
		c->metrics_writes++;
	json_decref(s);
}

int wb_ctl_poll(struct wb_ctl *c, int timeout_ms)
{
	if (c->listen_fd < 0) {
		write_metrics_file(c, mono_ms());
		return 0;
	}
	struct pollfd pfd[WB_CTL_MAX_CLIENTS + 1];
	pfd[0] = (struct pollfd){ .fd = c->listen_fd, .events = POLLIN };
	for (unsigned i = 0; i < c->nclients; i++)
		pfd[i + 1] = (struct pollfd){ .fd = c->clients[i].fd,
					      .events = (short)(c->clients[i].replay ? POLLOUT : POLLIN) };
	unsigned n = c->nclients;
	int r = poll(pfd, n + 1, timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	/* Serve existing clients first, from the back, so drops don't disturb indices. */
	uint64_t now = mono_ms();
	for (unsigned i = n; i-- > 0;) {
		struct client *cli = &c->clients[i];
		bool keep = true;
		if (cli->replay && (pfd[i + 1].revents & (POLLERR | POLLHUP))) {
			keep = false; /* vanished mid-stream: counted as an aborted replay */
		} else if (cli->replay) {
			if (pfd[i + 1].revents & POLLOUT)
				keep = pump_replay(c, cli);
		} else if (pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) {
			keep = serve_client(c, cli);
			if (keep && cli->replay)
				keep = pump_replay(c, cli);
		}
		/* A fresh clock: serve_client may have stamped started_ms after `now` was read. */
		if (keep && !cli->replay && cli->started_ms && mono_ms() - cli->started_ms > WB_CTL_REQUEST_TIMEOUT_MS) {
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
	write_metrics_file(c, now);
	return 0;
}

void wb_ctl_destroy(struct wb_ctl *c)
{
	if (!c)
		return;
	while (c->nclients)
		drop_client(c, c->nclients - 1);
	if (c->listen_fd >= 0) {
		close(c->listen_fd);
		unlink(c->o.socket_path);
	}
	if (c->lock_fd >= 0) {
		unlink(c->lock_path);
		close(c->lock_fd);
	}
	free(c);
}

const struct wb_ctl_opts *wb_ctl_options(const struct wb_ctl *c)
{
	return &c->o;
}
