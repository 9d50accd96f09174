/* The effective config as JSON, and the reload diff: which changed fields the running
 * appliance can take live and which need a restart. One table per section says which. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static const char *const numa_names[] = { "warn", "refuse", "ignore" };
static const char *const durability_names[] = { "none", "interval", "block" };
static const char *const policy_names[] = { "flag", "freeze" };

static json_t *ids_json(const uint32_t *ids, uint32_t n)
{
	json_t *a = json_array();
	for (uint32_t i = 0; i < n; i++)
		json_array_append_new(a, json_integer(ids[i]));
	return a;
}

static json_t *ep_json(const struct wb_endpoint *ep)
{
	char b[32];
	if (!ep->addr && !ep->port)
		return json_null();
	wb_endpoint_format(ep, b, sizeof(b));
	return json_string(b);
}

json_t *wb_config_json(const struct wb_config *cfg)
{
	json_t *root = json_object();
	json_object_set_new(root, "path", json_string(cfg->path));
	json_object_set_new(root, "numa_policy", json_string(numa_names[cfg->numa_policy % 3]));
	json_object_set_new(root, "log_level", json_string(wb_log_level_name(cfg->log_level)));
	json_t *eal = json_array();
	for (uint32_t i = 0; i < cfg->neal_args; i++)
		json_array_append_new(eal, json_string(cfg->eal_args[i]));
	json_object_set_new(root, "dpdk", json_pack("{s:s,s:o}", "file_prefix", cfg->file_prefix, "eal_args", eal));
	json_t *ports = json_array();
	for (uint32_t i = 0; i < cfg->nports; i++) {
		const struct wb_port_conf *p = &cfg->ports[i];
		json_array_append_new(ports, json_pack("{s:s,s:s,s:i,s:i,s:i,s:i,s:I,s:I,s:b,s:s,s:I}", "name", p->name,
						       "device", p->device, "rx_queues", p->rx_queues, "tx_queues",
						       p->tx_queues, "rx_descriptors", p->rx_descriptors, "tx_descriptors",
						       p->tx_descriptors, "mempool_size", (json_int_t)p->mempool_size,
						       "mbuf_cache", (json_int_t)p->mbuf_cache, "promiscuous",
						       p->promiscuous, "exception_tap", p->exception_tap, "exception_pps",
						       (json_int_t)p->exception_pps));
	}
	json_object_set_new(root, "ports", ports);
	json_t *workers = json_array();
	for (uint32_t i = 0; i < cfg->nworkers; i++) {
		const struct wb_worker_conf *w = &cfg->workers[i];
		json_t *rx = json_array();
		for (uint32_t q = 0; q < w->nrxq; q++)
			json_array_append_new(rx, json_pack("{s:s,s:i}", "port",
							    w->rxq[q].port < cfg->nports ? cfg->ports[w->rxq[q].port].name : "?",
							    "queue", w->rxq[q].queue));
		json_array_append_new(
			workers, json_pack("{s:s,s:I,s:o,s:I,s:i,s:s}", "name", w->name, "lcore", (json_int_t)w->lcore, "rx",
					   rx, "ring_size", (json_int_t)w->ring_size, "burst", w->burst, "persister",
					   w->persister >= 0 && (uint32_t)w->persister < cfg->npersisters
						   ? cfg->persisters[w->persister].name
						   : ""));
	}
	json_t *pers = json_array();
	for (uint32_t i = 0; i < cfg->npersisters; i++)
		json_array_append_new(pers, json_pack("{s:s,s:I}", "name", cfg->persisters[i].name, "lcore",
						      (json_int_t)cfg->persisters[i].lcore));
	json_object_set_new(root, "cores", json_pack("{s:I,s:o,s:o}", "control", (json_int_t)cfg->control_lcore,
						     "workers", workers, "persisters", pers));
	json_t *feeds = json_array();
	for (uint32_t i = 0; i < cfg->nfeeds; i++) {
		const struct wb_feed_conf *f = &cfg->feeds[i];
		json_t *syms = json_array();
		for (uint32_t k = 0; k < f->nsymbols; k++)
			json_array_append_new(syms, json_string(f->symbols[k]));
		json_t *o = json_pack("{s:s,s:s,s:o,s:o,s:s,s:i,s:b,s:i,s:o}", "name", f->name, "protocol", f->protocol,
				      "line_a", ep_json(&f->line[0]), "line_b",
				      f->has_line_b ? ep_json(&f->line[1]) : json_null(), "port",
				      f->port < cfg->nports ? cfg->ports[f->port].name : "?", "queue", f->queue,
				      "raw_capture", f->raw_capture, "worker", f->worker, "symbols", syms);
		json_object_set_new(o, "book",
				    json_pack("{s:I,s:I,s:I,s:I,s:I,s:s}", "max_orders", (json_int_t)f->max_orders,
					      "order_ring", (json_int_t)f->order_ring,
					      "max_levels", (json_int_t)f->max_levels, "max_symbols",
					      (json_int_t)f->max_symbols, "snapshot_depth", (json_int_t)f->snapshot_depth,
					      "integrity_policy", policy_names[f->integrity_policy % 2]));
		json_object_set_new(o, "recovery",
				    json_pack("{s:o,s:o,s:I,s:I,s:I}", "rerequest", ep_json(&f->rerequest), "soup",
					      ep_json(&f->soup), "gap_timeout_ms", (json_int_t)f->gap_timeout_ms,
					      "line_silence_ms", (json_int_t)f->line_silence_ms, "reorder_buffer",
					      (json_int_t)f->reorder_buffer));
		json_array_append_new(feeds, o);
	}
	json_object_set_new(root, "feeds", feeds);
	const struct wb_capture_conf *cp = &cfg->capture;
	json_object_set_new(root, "capture",
			    json_pack("{s:s,s:i,s:I,s:I,s:I,s:s,s:I,s:I,s:I,s:I}", "directory", cp->directory,
				      "zstd_level", cp->zstd_level, "block_bytes", (json_int_t)cp->block_bytes,
				      "rotate_bytes", (json_int_t)cp->rotate_bytes, "rotate_seconds",
				      (json_int_t)cp->rotate_seconds, "durability", durability_names[cp->durability % 3],
				      "durability_ms", (json_int_t)cp->durability_ms, "retention_bytes",
				      (json_int_t)cp->retention_bytes, "retention_hours", (json_int_t)cp->retention_hours,
				      "queue_depth", (json_int_t)cp->queue_depth));
	const struct wb_control_conf *cc = &cfg->control;
	char mode[8];
	snprintf(mode, sizeof(mode), "0%o", cc->mode);
	json_object_set_new(root, "control",
			    json_pack("{s:s,s:s,s:s,s:s,s:I,s:o,s:o,s:o,s:o}", "socket", cc->socket, "mode", mode,
				      "group", cc->group, "metrics_file", cc->metrics_file, "metrics_interval_ms",
				      (json_int_t)cc->metrics_interval_ms, "read_uids",
				      ids_json(cc->read_uids, cc->nread_uids), "read_gids",
				      ids_json(cc->read_gids, cc->nread_gids), "admin_uids",
				      ids_json(cc->admin_uids, cc->nadmin_uids), "admin_gids",
				      ids_json(cc->admin_gids, cc->nadmin_gids)));
	return root;
}

/* One comparable field: where it lives in both configs, its size, and whether the
 * running appliance can take a new value. */
struct field {
	const char *name;
	size_t off, size;
	bool live;
};

#define TOP(m, lv) { #m, offsetof(struct wb_config, m), sizeof(((struct wb_config *)0)->m), lv }
#define FEED(m, lv) { #m, offsetof(struct wb_feed_conf, m), sizeof(((struct wb_feed_conf *)0)->m), lv }

static const struct field top_fields[] = {
	TOP(numa_policy, false),
	TOP(log_level, true),
	TOP(control_lcore, false),
	TOP(file_prefix, false),
	TOP(eal_args, false),
	TOP(neal_args, false),
	TOP(nports, false),
	TOP(ports, false),
	TOP(nworkers, false),
	TOP(workers, false),
	TOP(npersisters, false),
	TOP(persisters, false),
	TOP(nfeeds, false),
	TOP(capture.directory, false),
	TOP(capture.zstd_level, true),
	TOP(capture.block_bytes, false),
	TOP(capture.rotate_bytes, false),
	TOP(capture.rotate_seconds, false),
	TOP(capture.durability, true),
	TOP(capture.durability_ms, true),
	TOP(capture.retention_bytes, true),
	TOP(capture.retention_hours, true),
	TOP(capture.queue_depth, false),
	TOP(control.socket, false),
	TOP(control.mode, false),
	TOP(control.group, false),
	TOP(control.metrics_file, true),
	TOP(control.metrics_interval_ms, true),
};

static const struct field feed_fields[] = {
	FEED(name, false),
	FEED(protocol, false),
	FEED(line, false),
	FEED(has_line_b, false),
	FEED(port, false),
	FEED(queue, false),
	FEED(raw_capture, false),
	FEED(max_orders, false),
	FEED(order_ring, false),
	FEED(max_levels, false),
	FEED(max_symbols, false),
	FEED(snapshot_depth, false),
	FEED(integrity_policy, true),
	FEED(rerequest, false),
	FEED(soup, false),
	FEED(gap_timeout_ms, false),
	FEED(line_silence_ms, false),
	FEED(reorder_buffer, false),
};

static bool ids_differ(const uint32_t *a, uint32_t na, const uint32_t *b, uint32_t nb)
{
	return na != nb || memcmp(a, b, na * sizeof(*a));
}

/* The config loader zeroes the whole struct first, so padding and unused tails compare equal. */
void wb_config_diff(const struct wb_config *a, const struct wb_config *b, json_t *restart, json_t *live)
{
	char name[96];
	for (size_t i = 0; i < sizeof(top_fields) / sizeof(top_fields[0]); i++) {
		const struct field *f = &top_fields[i];
		if (memcmp((const char *)a + f->off, (const char *)b + f->off, f->size))
			json_array_append_new(f->live ? live : restart, json_string(f->name));
	}
	const struct wb_control_conf *ca = &a->control, *cb = &b->control;
	if (ids_differ(ca->read_uids, ca->nread_uids, cb->read_uids, cb->nread_uids))
		json_array_append_new(live, json_string("control.read_uids"));
	if (ids_differ(ca->read_gids, ca->nread_gids, cb->read_gids, cb->nread_gids))
		json_array_append_new(live, json_string("control.read_gids"));
	if (ids_differ(ca->admin_uids, ca->nadmin_uids, cb->admin_uids, cb->nadmin_uids))
		json_array_append_new(live, json_string("control.admin_uids"));
	if (ids_differ(ca->admin_gids, ca->nadmin_gids, cb->admin_gids, cb->nadmin_gids))
		json_array_append_new(live, json_string("control.admin_gids"));
	uint32_t n = a->nfeeds < b->nfeeds ? a->nfeeds : b->nfeeds;
	for (uint32_t k = 0; k < n; k++) {
		const struct wb_feed_conf *fa = &a->feeds[k], *fb = &b->feeds[k];
		for (size_t i = 0; i < sizeof(feed_fields) / sizeof(feed_fields[0]); i++) {
			const struct field *f = &feed_fields[i];
			if (!memcmp((const char *)fa + f->off, (const char *)fb + f->off, f->size))
				continue;
			snprintf(name, sizeof(name), "feeds[%u].%s", k, f->name);
			json_array_append_new(f->live ? live : restart, json_string(name));
		}
		if (fa->nsymbols != fb->nsymbols ||
		    memcmp(fa->symbols, fb->symbols, fa->nsymbols * sizeof(fa->symbols[0]))) {
			snprintf(name, sizeof(name), "feeds[%u].symbols", k);
			json_array_append_new(live, json_string(name));
		}
	}
}
