#include "sessions.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "soup_client.h"

struct session {
	struct wb_sessions *owner;
	bool recovery;      /* started on demand for a MoldUDP64 feed's gap */
	bool running;
	uint64_t pushed, push_failed, starts;
	unsigned feed;
	char name[WB_NAME_LEN];
	struct wb_soup_client *client;
	uint64_t events[WB_SOUP_EV_STOPPED + 1];
	char last_event[160];
};

struct wb_sessions {
	struct wb_recovery_hooks hooks;
	unsigned n;
	struct session s[WB_MAX_FEEDS];
};

int wb_credentials_read(const char *path, char user[7], char pass[11], char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "credentials %s: %s", path, strerror(errno));
		return -errno;
	}
	struct stat st;
	int ret = -EPERM;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		snprintf(err, errlen, "credentials %s: %s", path, strerror(errno));
		goto out_close;
	}
	/* A password others can read is not a secret any more: refuse, don't warn. */
	if ((st.st_mode & 077) || st.st_uid != geteuid()) {
		snprintf(err, errlen, "credentials %s: mode %04o owner %u: must be mode 0600 and owned by uid %u",
			 path, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)geteuid());
		goto out_close;
	}
	char buf[128];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		ret = -errno;
		snprintf(err, errlen, "credentials %s: %s", path, strerror(errno));
		goto out_close;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	char *colon = strchr(buf, ':');
	ret = -EINVAL;
	if (!colon || colon == buf || strlen(colon + 1) == 0 || (size_t)(colon - buf) > 6 || strlen(colon + 1) > 10) {
		snprintf(err, errlen, "credentials %s: expected one line 'user:password' (user 1-6, password 1-10 characters)",
			 path);
		goto out_close;
	}
	memcpy(user, buf, (size_t)(colon - buf));
	user[colon - buf] = '\0';
	snprintf(pass, 11, "%s", colon + 1);
	ret = 0;
out_close:
	close(fd);
	return ret;
}

static void on_message(void *arg, uint64_t seq, const uint8_t *msg, uint16_t len)
{
	struct session *s = arg;
	/* A TCP feed's stream is applied from the NIC ring: the kernel copy only counts. */
	if (!s->recovery)
		return;
	if (s->owner->hooks.push(s->owner->hooks.arg, s->feed, seq, msg, len) == 0)
		s->pushed++;
	else
		s->push_failed++;
}

static void on_event(void *arg, enum wb_soup_event ev, const char *detail)
{
	struct session *s = arg;
	if ((unsigned)ev <= WB_SOUP_EV_STOPPED)
		s->events[ev]++;
	snprintf(s->last_event, sizeof(s->last_event), "%s%s%s", wb_soup_event_name(ev), detail ? ": " : "",
		 detail ? detail : "");
	fprintf(stderr, "wirebookd: feed %s: soupbintcp %s\n", s->name, s->last_event);
}

int wb_sessions_create(const struct wb_config *cfg, const bool *tcp_feed, const bool *recover_feed,
		       const struct wb_recovery_hooks *hooks, struct wb_sessions **out, char *err, size_t errlen)
{
	struct wb_sessions *ss = calloc(1, sizeof(*ss));
	if (!ss)
		return -ENOMEM;
	if (hooks)
		ss->hooks = *hooks;
	int ret = 0;
	for (unsigned i = 0; i < cfg->nfeeds; i++) {
		bool recovery = !tcp_feed[i] && recover_feed && recover_feed[i] && hooks;
		if (!tcp_feed[i] && !recovery)
			continue;
		const struct wb_feed_conf *fc = &cfg->feeds[i];
		struct session *s = &ss->s[ss->n];
		s->owner = ss;
		s->recovery = recovery;
		s->feed = i;
		snprintf(s->name, sizeof(s->name), "%s", fc->name);
		struct wb_soup_client_opts o;
		wb_soup_client_opts_default(&o);
		o.server = recovery ? fc->soup : fc->line[0];
		if (fc->credentials[0]) {
			char e2[512];
			ret = wb_credentials_read(fc->credentials, o.user, o.pass, e2, sizeof(e2));
			if (ret) {
				snprintf(err, errlen, "feed %s: %s", fc->name, e2);
				goto out_destroy;
			}
		}
		o.on_message = on_message;
		o.on_event = on_event;
		o.arg = s;
		ret = wb_soup_client_create(&o, &s->client);
		if (ret) {
			snprintf(err, errlen, "feed %s: SoupBinTCP client: %s", fc->name, strerror(-ret));
			goto out_destroy;
		}
		ss->n++;
	}
	*out = ss;
	return 0;
out_destroy:
	wb_sessions_destroy(ss);
	return ret;
}

void wb_sessions_start(struct wb_sessions *ss, uint64_t now_ms)
{
	for (unsigned i = 0; i < ss->n; i++) {
		if (ss->s[i].recovery)
			continue;
		wb_soup_client_start(ss->s[i].client, "          ", 1, now_ms);
		ss->s[i].running = true;
	}
}

/* Starts a recovery session when its feed asks for one, stops it once caught up. */
static void steer_recovery(struct wb_sessions *ss, struct session *s, uint64_t now_ms)
{
	char session[10];
	uint64_t from = 0;
	bool wanted = ss->hooks.wanted(ss->hooks.arg, s->feed, session, &from);
	if (wanted && !s->running) {
		if (wb_soup_client_start(s->client, session, from, now_ms) == 0) {
			s->running = true;
			s->starts++;
			fprintf(stderr, "wirebookd: feed %s: gap timed out: SoupBinTCP recovery from sequence %llu\n",
				s->name, (unsigned long long)from);
		}
	} else if (!wanted && s->running) {
		wb_soup_client_stop(s->client, now_ms);
		s->running = false;
		fprintf(stderr, "wirebookd: feed %s: recovery caught up (%llu messages replayed)\n", s->name,
			(unsigned long long)s->pushed);
	}
}

void wb_sessions_service(struct wb_sessions *ss, uint64_t now_ms)
{
	for (unsigned i = 0; i < ss->n; i++) {
		if (ss->s[i].recovery)
			steer_recovery(ss, &ss->s[i], now_ms);
		struct pollfd pfd = { .fd = -1 };
		short rev = 0;
		if (wb_soup_client_pollfd(ss->s[i].client, &pfd) == 1 && poll(&pfd, 1, 0) > 0)
			rev = pfd.revents;
		wb_soup_client_service(ss->s[i].client, rev, now_ms);
	}
}

void wb_sessions_stop(struct wb_sessions *ss, uint64_t now_ms)
{
	for (unsigned i = 0; i < ss->n; i++)
		wb_soup_client_stop(ss->s[i].client, now_ms);
}

void wb_sessions_destroy(struct wb_sessions *ss)
{
	if (!ss)
		return;
	for (unsigned i = 0; i < ss->n; i++)
		wb_soup_client_destroy(ss->s[i].client);
	free(ss);
}

json_t *wb_sessions_json(const struct wb_sessions *ss)
{
	json_t *o = json_object();
	for (unsigned i = 0; ss && i < ss->n; i++) {
		struct wb_soup_client_stats st;
		wb_soup_client_stats(ss->s[i].client, &st);
		json_object_set_new(
			o, ss->s[i].name,
			json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s}", "state", st.state_name,
				  "session", st.session, "connects_total", (json_int_t)st.connects, "logins_total",
				  (json_int_t)st.logins, "rejects_auth_total", (json_int_t)st.rejects_auth,
				  "rejects_session_total", (json_int_t)st.rejects_session, "reconnects_total",
				  (json_int_t)st.reconnects, "timeouts_total", (json_int_t)st.timeouts,
				  "heartbeats_sent_total", (json_int_t)st.heartbeats_sent, "heartbeats_received_total",
				  (json_int_t)st.heartbeats_received, "messages_total", (json_int_t)st.messages,
				  "bytes_total", (json_int_t)st.bytes, "last_sequence", (json_int_t)st.last_seq,
				  "last_event", ss->s[i].last_event));
		json_t *o2 = json_object_get(o, ss->s[i].name);
		json_object_set_new(o2, "role", json_string(ss->s[i].recovery ? "recovery" : "tcp-feed"));
		json_object_set_new(o2, "recoveries_started_total", json_integer((json_int_t)ss->s[i].starts));
		json_object_set_new(o2, "messages_handed_over_total", json_integer((json_int_t)ss->s[i].pushed));
		json_object_set_new(o2, "handover_failed_total", json_integer((json_int_t)ss->s[i].push_failed));
	}
	return o;
}
