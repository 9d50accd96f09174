/* The control commands that read the running dataplane (status, stats, book, symbols,
 * freeze, reset) and the live part of a reload, registered when the appliance is
 * attached. Everything here runs on the control thread; workers pick changes up through
 * atomics they own the reading of. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "ctl.h"
#include "dataplane.h"

#ifndef WB_VERSION
#define WB_VERSION "0.1.0"
#endif

struct ctl_dp {
	struct wb_ctl *ctl;
	struct wb_dataplane *dp;
	struct wb_persister *const *persisters;
	unsigned npersisters;
};

/* One attached appliance per process. */
static struct ctl_dp the_dp;

static const char *const health_names[] = { "ok", "flagged", "frozen", "stale" };

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static json_t *cmd_status(void *arg, json_t *req, char *err, size_t errlen)
{
	(void)req, (void)err, (void)errlen;
	struct ctl_dp *d = arg;
	const struct wb_ctl_opts *o = wb_ctl_options(d->ctl);
	const struct wb_config *cfg = o->cfg;
	json_t *threads = json_array();
	json_array_append_new(threads, json_pack("{s:s,s:s,s:i,s:s}", "name", "control", "role", "control", "core",
						 (int)cfg->control_lcore, "state", "serving"));
	for (unsigned i = 0; i < wb_dataplane_nworkers(d->dp); i++) {
		struct wb_worker_stats ws;
		wb_dataplane_worker_stats(d->dp, i, &ws);
		json_array_append_new(threads, json_pack("{s:s,s:s,s:i,s:i,s:s}", "name", ws.name, "role", "worker",
							 "core", (int)ws.lcore, "numa_node", ws.numa_node, "state",
							 ws.state));
	}
	for (unsigned i = 0; i < d->npersisters; i++)
		json_array_append_new(threads, json_pack("{s:s,s:s,s:i,s:s}", "name", cfg->persisters[i].name, "role",
							 "persister", "core", (int)cfg->persisters[i].lcore, "state",
							 d->persisters[i] ? "writing" : "off"));
	uint64_t up = (wall_ns() - o->start_ns) / 1000000ULL;
	return json_pack("{s:s,s:I,s:s,s:s,s:i,s:s,s:o}", "version", WB_VERSION, "uptime_ms", (json_int_t)up, "config",
			 o->config_path ? o->config_path : "", "socket", o->socket_path ? o->socket_path : "", "pid",
			 (int)getpid(), "log_level", wb_log_level_name(cfg->log_level), "threads", threads);
}

static json_t *cmd_stats(void *arg, json_t *req, char *err, size_t errlen)
{
	(void)req, (void)err, (void)errlen;
	struct ctl_dp *d = arg;
	return wb_stats_json(d->dp, d->persisters, d->npersisters, wb_ctl_options(d->ctl)->cfg);
}

static json_t *cmd_symbols(void *arg, json_t *req, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	struct ctl_dp *d = arg;
	json_int_t limit = json_integer_value(json_object_get(req, "limit"));
	json_t *out = json_array();
	for (unsigned f = 0; f < wb_dataplane_nfeeds(d->dp); f++) {
		struct wb_bookset *bs = wb_dataplane_feed_books(d->dp, f);
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
							     "health", ss.health < 4 ? health_names[ss.health] : "?",
							     "messages_total", (json_int_t)ss.msgs,
							     "integrity_events_total", (json_int_t)ss.integrity_total,
							     "live_orders", (int)ss.live_orders));
		}
	}
	return json_pack("{s:o}", "symbols", out);
}

static json_t *cmd_book(void *arg, json_t *req, char *err, size_t errlen)
{
	struct ctl_dp *d = arg;
	const char *sym = json_string_value(json_object_get(req, "symbol"));
	if (!sym || !*sym) {
		snprintf(err, errlen, "book: missing \"symbol\"");
		return NULL;
	}
	json_t *dj = json_object_get(req, "depth");
	json_int_t depth = dj ? json_integer_value(dj) : 10;
	if (dj && (!json_is_integer(dj) || depth < 1 || depth > WB_TOP_MAX_DEPTH)) {
		snprintf(err, errlen, "book: \"depth\" must be an integer from 1 to %d", WB_TOP_MAX_DEPTH);
		return NULL;
	}
	char e[256];
	json_t *b = wb_book_json(d->dp, sym, (uint32_t)depth, -1, e, sizeof(e));
	if (!b)
		snprintf(err, errlen, "book: %s", e);
	return b;
}

static json_t *freeze_reset(struct ctl_dp *d, json_t *req, bool freeze, char *err, size_t errlen)
{
	const char *sym = json_string_value(json_object_get(req, "symbol"));
	if (!sym) {
		snprintf(err, errlen, "missing \"symbol\"");
		return NULL;
	}
	for (unsigned f = 0; f < wb_dataplane_nfeeds(d->dp); f++) {
		struct wb_bookset *bs = wb_dataplane_feed_books(d->dp, f);
		int loc = bs ? wb_bookset_find(bs, sym) : -ENOENT;
		if (loc < 0)
			continue;
		int r = freeze ? wb_bookset_request_freeze(bs, (uint16_t)loc) : wb_bookset_request_reset(bs, (uint16_t)loc);
		if (r < 0) {
			snprintf(err, errlen, "request refused: %s", strerror(-r));
			return NULL;
		}
		return json_pack("{s:s,s:i,s:i,s:s}", "symbol", sym, "feed", (int)f, "locate", loc, "requested",
				 freeze ? "freeze" : "reset");
	}
	snprintf(err, errlen, "unknown symbol '%s'", sym);
	return NULL;
}

static json_t *cmd_freeze(void *arg, json_t *req, char *err, size_t errlen)
{
	return freeze_reset(arg, req, true, err, errlen);
}

static json_t *cmd_reset(void *arg, json_t *req, char *err, size_t errlen)
{
	return freeze_reset(arg, req, false, err, errlen);
}

static uint64_t counter(const struct wb_counter *cs, size_t n, const char *name, int line)
{
	for (size_t i = 0; i < n; i++)
		if (cs[i].line == line && !strcmp(cs[i].name, name))
			return cs[i].value;
	return 0;
}

/* Per feed and line: state, next sequence, gaps, duplicates, last packet age. A line is
 * "silent" when nothing came for recovery.line_silence_ms (the alarm operators watch). */
static json_t *cmd_feeds(void *arg, json_t *req, char *err, size_t errlen)
{
	(void)req, (void)err, (void)errlen;
	struct ctl_dp *d = arg;
	const struct wb_config *cfg = wb_ctl_options(d->ctl)->cfg;
	json_t *feeds = json_array();
	uint64_t now = wall_ns();
	for (unsigned f = 0; f < wb_dataplane_nfeeds(d->dp); f++) {
		const struct wb_feed_conf *fc = &cfg->feeds[f];
		const struct wb_feed_proto *p = wb_dataplane_feed_proto(d->dp, f);
		struct wb_counter cs[160];
		size_t n = p->counters(wb_dataplane_feed_state(d->dp, f), cs, 160);
		if (n > 160)
			n = 160;
		uint64_t silence_ns = (uint64_t)(fc->line_silence_ms ? fc->line_silence_ms : 2000) * 1000000ULL;
		bool recovering = counter(cs, n, "recovering", -1);
		json_t *lines = json_object();
		bool any_silent = false;
		for (int l = 0; l < 2; l++) {
			if (l == 1 && !fc->has_line_b)
				continue;
			struct wb_line_stats ls;
			wb_dataplane_line_stats(d->dp, f, (unsigned)l, &ls);
			uint64_t last = counter(cs, n, "line_last_packet_ns", l);
			uint64_t age = last && now > last ? now - last : 0;
			bool silent = !last || age > silence_ns;
			any_silent |= silent;
			char ep[32];
			wb_endpoint_format(&fc->line[l], ep, sizeof(ep));
			json_object_set_new(lines, l ? "B" : "A",
					    json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "endpoint", ep, "state",
						      silent ? "silent" : "receiving", "packets_total", (json_int_t)ls.packets,
						      "packets_won_total",
						      (json_int_t)counter(cs, n, "line_packets_won_total", l),
						      "duplicate_packets_total",
						      (json_int_t)counter(cs, n, "line_duplicate_packets_total", l),
						      "missing_taken_from_other_total",
						      (json_int_t)counter(cs, n, "line_missing_taken_from_other_total", l),
						      "last_packet_age_ms", last ? (json_int_t)(age / 1000000ULL) : (json_int_t)-1));
		}
		uint64_t opened = counter(cs, n, "gaps_total", -1), declared = counter(cs, n, "gaps_declared_total", -1);
		struct wb_gap_record open_gap[1];
		bool gap_now = p->gaps && p->gaps(wb_dataplane_feed_state(d->dp, f), open_gap, 1) == 1 &&
			       open_gap[0].repair == WB_GAP_OPEN;
		const char *state = recovering ? "recovering" : gap_now ? "gap" : any_silent ? "silent" : "ok";
		json_array_append_new(
			feeds, json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "name", fc->name, "protocol", fc->protocol,
					 "state", state, "next_sequence", (json_int_t)counter(cs, n, "next_sequence", -1),
					 "gaps_open", (json_int_t)(gap_now ? 1 : 0), "gaps_total", (json_int_t)opened,
					 "gaps_filled_total", (json_int_t)(opened - declared - (gap_now ? 1 : 0)),
					 "gaps_declared_total", (json_int_t)declared, "rerequests_sent_total",
					 (json_int_t)counter(cs, n, "rerequests_sent_total", -1), "lines", lines));
	}
	return json_pack("{s:o}", "feeds", feeds);
}

static json_t *cmd_gaps(void *arg, json_t *req, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	struct ctl_dp *d = arg;
	const struct wb_config *cfg = wb_ctl_options(d->ctl)->cfg;
	json_int_t limit = json_integer_value(json_object_get(req, "limit"));
	if (limit <= 0 || limit > 256)
		limit = 256;
	static const char *const repairs[] = { "open", "other line", "re-request", "soupbintcp", "declared" };
	json_t *gaps = json_array();
	for (unsigned f = 0; f < wb_dataplane_nfeeds(d->dp); f++) {
		const struct wb_feed_proto *p = wb_dataplane_feed_proto(d->dp, f);
		if (!p->gaps)
			continue;
		static struct wb_gap_record r[256];
		size_t n = p->gaps(wb_dataplane_feed_state(d->dp, f), r, (size_t)limit);
		for (size_t i = 0; i < n; i++) {
			uint64_t took = r[i].closed_ns > r[i].opened_ns ? r[i].closed_ns - r[i].opened_ns : 0;
			json_array_append_new(
				gaps, json_pack("{s:s,s:I,s:I,s:I,s:s,s:i,s:I,s:I}", "feed", cfg->feeds[f].name, "first_seq",
						(json_int_t)r[i].first_seq, "last_seq",
						(json_int_t)(r[i].first_seq + (r[i].count ? r[i].count - 1 : 0)), "messages",
						(json_int_t)r[i].count, "repair", r[i].repair < 5 ? repairs[r[i].repair] : "?",
						"rerequests", (int)r[i].requests, "opened_ns", (json_int_t)r[i].opened_ns,
						"took_ns", (json_int_t)(r[i].repair == WB_GAP_OPEN ? -1 : (json_int_t)took)));
		}
	}
	return json_pack("{s:o}", "gaps", gaps);
}

static json_t *cmd_backfill(void *arg, json_t *req, char *err, size_t errlen)
{
	struct ctl_dp *d = arg;
	const struct wb_config *cfg = wb_ctl_options(d->ctl)->cfg;
	const char *feed = json_string_value(json_object_get(req, "feed"));
	json_t *js = json_object_get(req, "from_seq"), *jc = json_object_get(req, "count");
	if (!feed || !json_is_integer(js) || !json_is_integer(jc) || json_integer_value(js) < 1 ||
	    json_integer_value(jc) < 1 || json_integer_value(jc) > 65534) {
		snprintf(err, errlen, "backfill: needs \"feed\", \"from_seq\" >= 1 and \"count\" 1..65534");
		return NULL;
	}
	for (unsigned f = 0; f < wb_dataplane_nfeeds(d->dp); f++) {
		if (strcmp(cfg->feeds[f].name, feed))
			continue;
		const struct wb_feed_proto *p = wb_dataplane_feed_proto(d->dp, f);
		int r = p->backfill ? p->backfill(wb_dataplane_feed_state(d->dp, f), (uint64_t)json_integer_value(js),
						  (uint32_t)json_integer_value(jc))
				    : -ENOTSUP;
		if (r < 0) {
			snprintf(err, errlen, "backfill %s: %s", feed,
				 r == -ENOTSUP ? "no re-request server configured (recovery.rerequest)"
				 : r == -EBUSY ? "a backfill is still being sent; try again"
					       : strerror(-r));
			return NULL;
		}
		return json_pack("{s:s,s:I,s:I,s:s}", "feed", feed, "from_seq", json_integer_value(js), "count",
				 json_integer_value(jc), "requested", "re-request posted to the feed's worker");
	}
	snprintf(err, errlen, "backfill: unknown feed '%s'", feed);
	return NULL;
}

/* Live part of a reload: symbol filters go to the feed plug-ins (an atomic pointer swap
 * the worker reads), the rest is recorded in the running config the control plane and
 * persisters read. */
static int apply_live(void *arg, const struct wb_config *running, const struct wb_config *next, json_t *applied,
		      char *err, size_t errlen)
{
	struct ctl_dp *d = arg;
	char name[64];
	const struct wb_capture_conf *ca = &running->capture, *cb = &next->capture;
	if (ca->zstd_level != cb->zstd_level || ca->durability != cb->durability ||
	    ca->durability_ms != cb->durability_ms || ca->retention_bytes != cb->retention_bytes ||
	    ca->retention_hours != cb->retention_hours) {
		for (unsigned i = 0; i < d->npersisters; i++) {
			int r = wb_persister_set_live(d->persisters[i], cb);
			if (r < 0) {
				snprintf(err, errlen, "capture: %s; nothing changed", strerror(-r));
				return r;
			}
		}
		static const char *const names[] = { "capture.zstd_level", "capture.durability", "capture.durability_ms",
						     "capture.retention_bytes", "capture.retention_hours" };
		const bool changed[] = { ca->zstd_level != cb->zstd_level, ca->durability != cb->durability,
					 ca->durability_ms != cb->durability_ms,
					 ca->retention_bytes != cb->retention_bytes,
					 ca->retention_hours != cb->retention_hours };
		for (unsigned k = 0; k < 5; k++)
			if (changed[k] && d->npersisters)
				json_array_append_new(applied, json_string(names[k]));
	}
	for (unsigned f = 0; f < wb_dataplane_nfeeds(d->dp) && f < next->nfeeds; f++) {
		if (running->feeds[f].integrity_policy == next->feeds[f].integrity_policy)
			continue;
		struct wb_bookset *bs = wb_dataplane_feed_books(d->dp, f);
		if (!bs)
			continue;
		wb_bookset_set_policy(bs, next->feeds[f].integrity_policy == WB_CFG_INTEGRITY_FREEZE ? WB_POLICY_FREEZE
												   : WB_POLICY_FLAG);
		snprintf(name, sizeof(name), "feeds[%u].integrity_policy", f);
		json_array_append_new(applied, json_string(name));
	}
	for (unsigned f = 0; f < wb_dataplane_nfeeds(d->dp) && f < next->nfeeds; f++) {
		const struct wb_feed_conf *a = &running->feeds[f], *b = &next->feeds[f];
		if (a->nsymbols == b->nsymbols && !memcmp(a->symbols, b->symbols, a->nsymbols * sizeof(a->symbols[0])))
			continue;
		const struct wb_feed_proto *p = wb_dataplane_feed_proto(d->dp, f);
		if (!p->set_symbol_filter) {
			snprintf(err, errlen, "feeds[%u].symbols: protocol %s has no symbol filter; nothing changed", f,
				 p->name);
			return -ENOTSUP;
		}
		int r = p->set_symbol_filter(wb_dataplane_feed_state(d->dp, f), b->symbols, b->nsymbols);
		if (r < 0) {
			snprintf(err, errlen, "feeds[%u].symbols: %s", f, strerror(-r));
			return r;
		}
		snprintf(name, sizeof(name), "feeds[%u].symbols", f);
		json_array_append_new(applied, json_string(name));
	}
	return 0;
}

void wb_ctl_attach(struct wb_ctl *c, struct wb_dataplane *dp, struct wb_persister *const *persisters,
		   unsigned npersisters)
{
	the_dp = (struct ctl_dp){ c, dp, persisters, npersisters };
	const struct wb_ctl_cmd cmds[] = {
		{ "status", false, cmd_status, &the_dp, "version, uptime, config, every thread with its core and state" },
		{ "stats", false, cmd_stats, &the_dp, "every counter: ports, workers, feed lines, books, rings, capture" },
		{ "book", false, cmd_book, &the_dp, "one symbol's live book: symbol, depth" },
		{ "symbols", false, cmd_symbols, &the_dp, "every symbol with trading state and integrity health" },
		{ "freeze", true, cmd_freeze, &the_dp, "hold a symbol's book until reset: symbol" },
		{ "reset", true, cmd_reset, &the_dp, "clear a frozen or stale book and resynchronise it: symbol" },
		{ "feeds", false, cmd_feeds, &the_dp, "per feed and line: state, next sequence, gaps, duplicates, last packet age" },
		{ "gaps", false, cmd_gaps, &the_dp, "recent gaps: sequence range, how repaired, how long it took: limit" },
		{ "backfill", true, cmd_backfill, &the_dp, "re-request messages: feed, from_seq, count" },
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		wb_ctl_register(c, &cmds[i]);
	wb_ctl_set_apply(c, apply_live, &the_dp);
}
