/* Builds the stats and book JSON from lock-free reads of dataplane, feed, book and
 * persistence counters. Units are in every name. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "capture.h"
#include "ctl.h"
#include "dataplane.h"

static json_t *latency_json(const struct wb_histo_snap *s)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I}", "count", (json_int_t)s->total, "p50_ns",
			 (json_int_t)wb_histo_quantile(s, 0.50), "p99_ns", (json_int_t)wb_histo_quantile(s, 0.99),
			 "p999_ns", (json_int_t)wb_histo_quantile(s, 0.999), "max_ns", (json_int_t)s->max);
}

static json_t *feed_json(struct wb_dataplane *dp, const struct wb_config *cfg, unsigned f)
{
	const struct wb_feed_conf *fc = &cfg->feeds[f];
	const struct wb_feed_proto *p = wb_dataplane_feed_proto(dp, f);
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(fc->name));
	json_object_set_new(o, "protocol", json_string(fc->protocol));
	json_object_set_new(o, "worker", json_integer(wb_dataplane_feed_worker(dp, f)));
	json_t *lines = json_object();
	json_t *feedc = json_object();
	for (unsigned l = 0; l < 2; l++) {
		if (l == 1 && !fc->has_line_b)
			continue;
		struct wb_line_stats ls;
		wb_dataplane_line_stats(dp, f, l, &ls);
		char ep[32];
		wb_endpoint_format(&fc->line[l], ep, sizeof(ep));
		json_t *lo = json_pack("{s:s,s:I,s:I}", "endpoint", ep, "packets_total", (json_int_t)ls.packets,
				       "bytes_total", (json_int_t)ls.bytes);
		json_object_set_new(lines, l ? "B" : "A", lo);
	}
	struct wb_counter cs[128];
	size_t n = p->counters(wb_dataplane_feed_state(dp, f), cs, 128);
	if (n > 128)
		n = 128;
	for (size_t i = 0; i < n; i++) {
		json_t *dst = feedc;
		if (cs[i].line >= 0) {
			dst = json_object_get(lines, cs[i].line ? "B" : "A");
			if (!dst)
				continue;
		}
		json_object_set_new(dst, cs[i].name, json_integer((json_int_t)cs[i].value));
	}
	json_object_set_new(o, "lines", lines);
	json_object_set_new(o, "counters", feedc);
	struct wb_bookset *bs = wb_dataplane_feed_books(dp, f);
	if (bs) {
		struct wb_bookset_stats bst;
		wb_bookset_stats(bs, &bst);
		json_object_set_new(o, "books",
				    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "messages_total",
					      (json_int_t)bst.msgs, "symbols", (json_int_t)bst.symbols, "live_orders",
					      (json_int_t)bst.live_orders, "max_orders", (json_int_t)bst.max_orders,
					      "stale_orders", (json_int_t)bst.stale_orders, "live_levels", (json_int_t)bst.live_levels, "max_levels",
					      (json_int_t)bst.max_levels, "order_table_full_total",
					      (json_int_t)bst.order_table_full, "level_table_full_total",
					      (json_int_t)bst.level_table_full, "integrity_events_total",
					      (json_int_t)bst.integrity_total, "event_overflow_total",
					      (json_int_t)bst.event_overflow, "survivor_moves_total",
					      (json_int_t)bst.survivor_moves, "orders_added_total", (json_int_t)bst.orders_added, "memory_bytes", (json_int_t)bst.memory_bytes));
	}
	return o;
}

json_t *wb_stats_json(struct wb_dataplane *dp, struct wb_persister *const *persisters, unsigned npersisters,
		      const struct wb_config *cfg)
{
	json_t *root = json_object();
	json_t *ports = json_array();
	for (unsigned i = 0; i < wb_dataplane_nports(dp); i++) {
		struct wb_port_stats ps;
		wb_dataplane_port_stats(dp, i, &ps);
		json_array_append_new(ports, json_pack("{s:s,s:i,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "name", ps.name,
						       "port_id", ps.port_id, "numa_node", ps.numa_node,
						       "rx_packets_total", (json_int_t)ps.rx_packets, "rx_bytes_total",
						       (json_int_t)ps.rx_bytes, "rx_missed_total", (json_int_t)ps.rx_missed,
						       "rx_errors_total", (json_int_t)ps.rx_errors, "rx_nombuf_total",
						       (json_int_t)ps.rx_nombuf, "tx_packets_total", (json_int_t)ps.tx_packets,
						       "tx_errors_total", (json_int_t)ps.tx_errors));
	}
	json_object_set_new(root, "ports", ports);

	json_t *workers = json_array();
	uint64_t hz = wb_dataplane_tsc_hz(dp);
	for (unsigned i = 0; i < wb_dataplane_nworkers(dp); i++) {
		struct wb_worker_stats ws;
		wb_dataplane_worker_stats(dp, i, &ws);
		json_t *v = json_object();
		for (int k = 0; k < WB_PKT_VERDICT_MAX; k++) {
			char name[64];
			snprintf(name, sizeof(name), "%s_packets_total", wb_pkt_verdict_name((enum wb_pkt_verdict)k));
			json_object_set_new(v, name, json_integer((json_int_t)ws.verdicts[k]));
		}
		double total = (double)(ws.busy_tsc + ws.idle_tsc);
		json_t *w = json_pack(
			"{s:s,s:i,s:i,s:s,s:I,s:I,s:I,s:I,s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "name", ws.name,
			"lcore", (int)ws.lcore, "numa_node", ws.numa_node, "state", ws.state, "bursts_total",
			(json_int_t)ws.bursts, "rx_packets_total", (json_int_t)ws.packets, "rx_bytes_total",
			(json_int_t)ws.bytes, "empty_polls_total", (json_int_t)ws.empty_polls, "busy_ratio",
			total > 0 ? (double)ws.busy_tsc / total : 0.0, "busy_ns_total",
			(json_int_t)(hz ? (uint64_t)((__uint128_t)ws.busy_tsc * 1000000000ULL / hz) : 0),
			"multi_segment_drops_total", (json_int_t)ws.multi_segment_drops, "foreign_feed_drops_total",
			(json_int_t)ws.foreign_feed_drops, "events_total", (json_int_t)ws.events,
			"event_batch_overflow_total", (json_int_t)ws.event_batch_overflow, "ring_drops_events_total",
			(json_int_t)ws.ring_drops, "ring_high_water_events", (json_int_t)ws.ring_high_water,
			"ring_size_events", (json_int_t)ws.ring_size, "ring_occupancy_events",
			(json_int_t)ws.ring_occupancy, "packets", v);
		json_object_set_new(w, "host_to_kernel_packets_total", json_integer((json_int_t)ws.host_to_kernel));
		json_object_set_new(w, "host_rate_dropped_packets_total", json_integer((json_int_t)ws.host_rate_dropped));
		json_object_set_new(w, "host_tx_failed_packets_total", json_integer((json_int_t)ws.host_tx_failed));
		json_object_set_new(w, "kernel_to_wire_packets_total", json_integer((json_int_t)ws.kernel_to_wire));
		json_object_set_new(w, "kernel_tx_failed_packets_total", json_integer((json_int_t)ws.kernel_tx_failed));
		json_object_set_new(w, "frames_sent_total", json_integer((json_int_t)ws.frames_sent));
		json_object_set_new(w, "frames_send_failed_total", json_integer((json_int_t)ws.frames_send_failed));
		json_object_set_new(w, "ring_waits_total", json_integer((json_int_t)ws.ring_waits));
		json_object_set_new(w, "ring_wait_ns_total",
				    json_integer((json_int_t)(hz ? (uint64_t)((__uint128_t)ws.ring_wait_tsc * 1000000000ULL / hz) : 0)));
		json_object_set_new(w, "raw_ring_packets_total", json_integer((json_int_t)ws.raw_packets));
		json_object_set_new(w, "raw_ring_drops_total", json_integer((json_int_t)ws.raw_drops));
		json_object_set_new(w, "raw_ring_high_water_bytes", json_integer((json_int_t)ws.raw_high_water_bytes));
		json_array_append_new(workers, w);
	}
	json_object_set_new(root, "workers", workers);
	json_object_set_new(root, "unmatched_packets_total", json_integer((json_int_t)wb_dataplane_unmatched(dp)));

	struct wb_histo_snap lat;
	memset(&lat, 0, sizeof(lat));
	wb_dataplane_latency(dp, &lat);
	json_object_set_new(root, "latency_rx_to_book", latency_json(&lat));

	json_t *feeds = json_array();
	for (unsigned f = 0; f < wb_dataplane_nfeeds(dp); f++)
		json_array_append_new(feeds, feed_json(dp, cfg, f));
	json_object_set_new(root, "feeds", feeds);

	json_t *pers = json_array();
	for (unsigned i = 0; i < npersisters; i++) {
		if (!persisters[i])
			continue;
		struct wb_persist_stats s;
		wb_persister_stats(persisters[i], &s);
		json_array_append_new(
			pers, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:I,s:I}", "name",
					cfg->persisters[i].name, "events_in_total", (json_int_t)s.events_in,
					"raw_packets_in_total", (json_int_t)s.raw_packets_in, "bytes_in_total",
					(json_int_t)s.bytes_in, "bytes_out_total", (json_int_t)s.bytes_out,
					"blocks_written_total", (json_int_t)s.blocks_written, "blocks_durable_total",
					(json_int_t)s.blocks_durable, "files_written_total", (json_int_t)s.files_written,
					"files_removed_retention_total", (json_int_t)s.files_removed_retention,
					"write_errors_total", (json_int_t)s.write_errors, "events_lost_disk_total",
					(json_int_t)s.events_lost_disk, "durable_lag_ns", (json_int_t)s.durable_lag_ns,
					"compression_ratio", s.compression_ratio, "write_latency_p50_ns",
					(json_int_t)s.write_latency_ns_p50, "write_latency_p99_ns",
					(json_int_t)s.write_latency_ns_p99, "write_latency_max_ns",
					(json_int_t)s.write_latency_ns_max));
		json_t *pj = json_array_get(pers, json_array_size(pers) - 1);
		json_object_set_new(pj, "zstd_level", json_integer(s.zstd_level));
		json_object_set_new(pj, "durability", json_string(s.durability == WB_DURABLE_BLOCK ? "block"
								  : s.durability == WB_DURABLE_INTERVAL ? "interval" : "none"));
	}
	json_object_set_new(root, "persisters", pers);
	/* Book to durable over every persister: counts add, each percentile is the worst
	 * persister's (exact with one persister, the common case). */
	uint64_t dc = 0, d50 = 0, d99 = 0, d999 = 0, dmax = 0;
	for (unsigned i = 0; i < npersisters; i++) {
		if (!persisters[i])
			continue;
		struct wb_persist_stats ps;
		wb_persister_stats(persisters[i], &ps);
		dc += ps.book_to_durable_count;
#define WORST(a, b) ((a) = (b) > (a) ? (b) : (a))
		WORST(d50, ps.book_to_durable_p50_ns);
		WORST(d99, ps.book_to_durable_p99_ns);
		WORST(d999, ps.book_to_durable_p999_ns);
		WORST(dmax, ps.book_to_durable_max_ns);
#undef WORST
	}
	json_object_set_new(root, "latency_book_to_durable",
			    json_pack("{s:I,s:I,s:I,s:I,s:I}", "count", (json_int_t)dc, "p50_ns", (json_int_t)d50,
				      "p99_ns", (json_int_t)d99, "p999_ns", (json_int_t)d999, "max_ns", (json_int_t)dmax));
	return root;
}

static json_t *levels_json(const struct wb_level *lv, uint32_t n, uint8_t decimals)
{
	json_t *a = json_array();
	for (uint32_t i = 0; i < n; i++) {
		char px[32];
		wb_price_format(px, sizeof(px), lv[i].price, decimals);
		json_array_append_new(a, json_pack("{s:s,s:I,s:I}", "price", px, "shares", (json_int_t)lv[i].shares,
						   "orders", (json_int_t)lv[i].orders));
	}
	return a;
}

json_t *wb_book_json(struct wb_dataplane *dp, const char *symbol, uint32_t depth, int feed, char *err, size_t errlen)
{
	for (unsigned f = 0; f < wb_dataplane_nfeeds(dp); f++) {
		if (feed >= 0 && (unsigned)feed != f)
			continue;
		struct wb_bookset *bs = wb_dataplane_feed_books(dp, f);
		if (!bs)
			continue;
		int loc = wb_bookset_find(bs, symbol);
		if (loc < 0)
			continue;
		static __thread struct wb_top top;
		int r = wb_bookset_read_top(bs, (uint16_t)loc, depth, &top);
		/* a symbol the worker is changing back to back: give it up to ~2 ms */
		for (int tries = 0; r == -EAGAIN && tries < 40; tries++) {
			nanosleep(&(struct timespec){ 0, 50000 }, NULL);
			r = wb_bookset_read_top(bs, (uint16_t)loc, depth, &top);
		}
		if (r < 0) {
			snprintf(err, errlen, "%s: snapshot busy, try again", symbol);
			return NULL;
		}
		uint8_t dec = wb_bookset_price_decimals(bs);
		json_t *o = json_pack("{s:s,s:o,s:o}", "symbol", top.stock, "bids", levels_json(top.bids, top.nbids, dec),
				      "asks", levels_json(top.asks, top.nasks, dec));
		json_object_set_new(o, "feed", json_integer(f));
		json_object_set_new(o, "locate", json_integer(loc));
		char st[2] = { top.trading_state ? top.trading_state : ' ', 0 };
		json_object_set_new(o, "trading_state", json_string(st));
		json_object_set_new(o, "seq", json_integer((json_int_t)top.seq));
		json_object_set_new(o, "decimals", json_integer(dec));
		static const char *const health[] = { "ok", "flagged", "frozen", "stale" };
		json_object_set_new(o, "health", json_string(top.health < 4 ? health[top.health] : "?"));
		return o;
	}
	snprintf(err, errlen, "unknown symbol '%s'", symbol);
	return NULL;
}

struct walk_ctx {
	json_t *bids, *asks;
	uint8_t decimals;
};

static void walk_cb(void *arg, char side, const struct wb_level *lvl)
{
	struct walk_ctx *w = arg;
	char px[32];
	wb_price_format(px, sizeof(px), lvl->price, w->decimals);
	json_array_append_new(side == 'B' ? w->bids : w->asks,
			      json_pack("{s:s,s:I,s:I}", "price", px, "shares", (json_int_t)lvl->shares, "orders",
					(json_int_t)lvl->orders));
}

json_t *wb_books_full_json(struct wb_dataplane *dp, unsigned feed)
{
	struct wb_bookset *bs = wb_dataplane_feed_books(dp, feed);
	json_t *syms = json_array();
	if (!bs)
		return json_pack("{s:o}", "symbols", syms);
	for (int loc = wb_bookset_next_symbol(bs, 0); loc >= 0; loc = wb_bookset_next_symbol(bs, (uint32_t)loc + 1)) {
		struct wb_symbol_stats ss;
		if (wb_bookset_symbol_stats(bs, (uint16_t)loc, &ss) < 0)
			continue;
		struct walk_ctx w = { json_array(), json_array(), wb_bookset_price_decimals(bs) };
		wb_bookset_walk_levels(bs, (uint16_t)loc, walk_cb, &w);
		json_array_append_new(syms, json_pack("{s:s,s:i,s:o,s:o}", "symbol", ss.stock, "locate", loc, "bids",
						      w.bids, "asks", w.asks));
		if (loc >= 65535)
			break;
	}
	return json_pack("{s:o}", "symbols", syms);
}
