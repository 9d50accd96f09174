/* The appliance configuration: the YAML schema (libcyaml), its conversion into
 * struct wb_config, and the cross-field rules. Every problem is reported as
 * "FILE:LINE: FIELD: REASON"; lines come from one libyaml pass over the file. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grp.h>
#include <pwd.h>

#include <cyaml/cyaml.h>
#include <yaml.h>

#define PATH_LEN 160

/* ------------------------------------------------------------------ */
/* Error collection                                                    */

/* Field path -> line of its key (or of its sequence entry) in the file. */
struct line_entry {
	char path[PATH_LEN];
	int line;
};

struct line_map {
	struct line_entry *e;
	size_t n, cap;
};

#define MAX_REPORTED 128

struct errs {
	char *buf;
	size_t len, used;
	const char *file;
	const struct line_map *lines; /* NULL: config built in code, line 0 */
	unsigned count;
	/* one error per field: a bad value must not also trip every rule that reads it */
	unsigned nreported;
	char reported[MAX_REPORTED][PATH_LEN];
};

/* Line of path, or of its nearest written ancestor; a key given twice has two entries,
 * last picks the second. */
static int line_of_nth(const struct line_map *m, const char *path, bool last)
{
	char p[PATH_LEN];
	int found;

	if (!m)
		return 0;
	snprintf(p, sizeof(p), "%s", path);
	for (;;) {
		found = 0;
		for (size_t i = 0; i < m->n; i++) {
			if (strcmp(m->e[i].path, p) == 0) {
				found = m->e[i].line;
				if (!last)
					break;
			}
		}
		if (found)
			return found;
		/* a defaulted field: blame the nearest enclosing field that is written */
		char *dot = strrchr(p, '.'), *br = strrchr(p, '[');
		char *cut = dot > br ? dot : br;
		if (!cut)
			return 1;
		*cut = '\0';
	}
}

static int line_of(const struct line_map *m, const char *path)
{
	return line_of_nth(m, path, false);
}

static void report_at(struct errs *e, int line, const char *field, const char *fmt, va_list ap)
{
	char reason[512], msg[800];
	int n;

	for (unsigned i = 0; i < e->nreported; i++)
		if (strcmp(e->reported[i], field) == 0)
			return;
	if (e->nreported < MAX_REPORTED)
		snprintf(e->reported[e->nreported++], PATH_LEN, "%s", field);
	e->count++;
	if (!e->buf || e->len == 0)
		return;
	vsnprintf(reason, sizeof(reason), fmt, ap);
	n = snprintf(msg, sizeof(msg), "%s:%d: %s: %s\n", e->file, line, field, reason);
	if (n < 0)
		return;
	/* only whole lines: a cut message would mislead more than a missing one */
	if (e->used + (size_t)n + 1 > e->len)
		return;
	memcpy(e->buf + e->used, msg, (size_t)n + 1);
	e->used += (size_t)n;
}

static void __attribute__((format(printf, 3, 4)))
report(struct errs *e, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report_at(e, line_of(e->lines, field), field, fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 4, 5)))
report_line(struct errs *e, int line, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report_at(e, line, field, fmt, ap);
	va_end(ap);
}

static void errs_init(struct errs *e, char *buf, size_t len, const char *file,
		      const struct line_map *lines)
{
	e->buf = buf;
	e->len = len;
	e->used = 0;
	e->file = file;
	e->lines = lines;
	e->count = 0;
	e->nreported = 0;
	if (buf && len)
		buf[0] = '\0';
}

/* ------------------------------------------------------------------ */
/* Line map: one libyaml pass                                          */

static int line_map_add(struct line_map *m, const char *path, int line)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 128;
		struct line_entry *e = realloc(m->e, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		m->e = e;
		m->cap = cap;
	}
	snprintf(m->e[m->n].path, PATH_LEN, "%s", path);
	m->e[m->n].line = line;
	m->n++;
	return 0;
}

static int line_map_walk(struct line_map *m, yaml_document_t *doc, yaml_node_t *node,
			 const char *path, int depth)
{
	char sub[PATH_LEN];
	int rc;

	if (!node || depth > 16)
		return 0;
	if (node->type == YAML_MAPPING_NODE) {
		for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
		     p < node->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);
			if (!k || k->type != YAML_SCALAR_NODE)
				continue;
			snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "",
				 (const char *)k->data.scalar.value);
			rc = line_map_add(m, sub, (int)k->start_mark.line + 1);
			if (rc)
				return rc;
			rc = line_map_walk(m, doc, yaml_document_get_node(doc, p->value), sub,
					   depth + 1);
			if (rc)
				return rc;
		}
	} else if (node->type == YAML_SEQUENCE_NODE) {
		unsigned i = 0;
		for (yaml_node_item_t *it = node->data.sequence.items.start;
		     it < node->data.sequence.items.top; it++, i++) {
			yaml_node_t *v = yaml_document_get_node(doc, *it);
			if (!v)
				continue;
			snprintf(sub, sizeof(sub), "%s[%u]", path, i);
			rc = line_map_add(m, sub, (int)v->start_mark.line + 1);
			if (rc)
				return rc;
			rc = line_map_walk(m, doc, v, sub, depth + 1);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* Builds the map; a YAML syntax error is reported (with libyaml's line) and -EINVAL. */
static int line_map_build(struct line_map *m, FILE *f, struct errs *e)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	int rc = 0;

	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		report_line(e, (int)parser.problem_mark.line + 1, "(syntax)", "%s%s%s",
			    parser.problem ? parser.problem : "invalid YAML",
			    parser.context ? " " : "", parser.context ? parser.context : "");
		rc = -EINVAL;
		goto out_parser;
	}
	rc = line_map_walk(m, &doc, yaml_document_get_root_node(&doc), "", 0);
	yaml_document_delete(&doc);
out_parser:
	yaml_parser_delete(&parser);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Schema-shaped structs: pointers are NULL when a key is absent       */

struct y_port {
	char *name, *device;
	int64_t *rx_queues, *tx_queues, *rx_descriptors, *tx_descriptors;
	int64_t *mempool_size, *mbuf_cache;
	char *promiscuous; /* libcyaml 1.3 reads any unknown word as true: we parse it */
	char *exception_tap;
	int64_t *exception_pps;
};

struct y_rxq {
	char *port;
	int64_t *queue;
};

struct y_worker {
	char *name;
	int64_t lcore;
	struct y_rxq *rx;
	unsigned rx_count;
	int64_t *ring_size, *burst;
	char *persister;
};

struct y_persister {
	char *name;
	int64_t lcore;
};

struct y_cores {
	int64_t *control;
	struct y_worker *workers;
	unsigned workers_count;
	struct y_persister *persisters;
	unsigned persisters_count;
};

struct y_book {
	int64_t *max_orders, *max_levels, *max_symbols, *snapshot_depth, *order_ring;
	char *integrity_policy;
};

struct y_recovery {
	char *rerequest, *soup, *source, *rerequest_mac;
	int64_t *gap_timeout_ms, *line_silence_ms, *reorder_buffer;
};

struct y_feed {
	char *name, *protocol, *line_a, *line_b, *port;
	int64_t *queue;
	char *raw_capture;
	char *credentials;
	struct y_book *book;
	struct y_recovery *recovery;
	char **symbols;
	unsigned symbols_count;
};

struct y_capture {
	char *directory;
	int64_t *zstd_level, *block_bytes, *rotate_bytes, *rotate_seconds;
	char *durability;
	int64_t *durability_ms, *retention_bytes, *retention_hours, *queue_depth;
};

struct y_control {
	char *socket;
	int64_t *mode;
	char *group, *metrics_file;
	int64_t *metrics_interval_ms;
	char **read_uids, **read_gids, **admin_uids, **admin_gids;
	unsigned read_uids_count, read_gids_count, admin_uids_count, admin_gids_count;
};

struct y_dpdk {
	char *file_prefix;
	char **eal_args;
	unsigned eal_args_count;
};

struct y_top {
	char *numa_policy, *log_level;
	struct y_dpdk *dpdk;
	struct y_port *ports;
	unsigned ports_count;
	struct y_cores *cores;
	struct y_feed *feeds;
	unsigned feeds_count;
	struct y_capture *capture;
	struct y_control *control;
};

#define REQ CYAML_FLAG_POINTER
#define OPT (CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL)
#define STR(key, flags, st, m) CYAML_FIELD_STRING_PTR(key, flags, st, m, 0, CYAML_UNLIMITED)
#define INT(key, st, m) CYAML_FIELD_INT_PTR(key, OPT, st, m)

static const cyaml_schema_value_t string_entry = {
	CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

static const cyaml_schema_field_t port_fields[] = {
	STR("name", REQ, struct y_port, name),
	STR("device", REQ, struct y_port, device),
	INT("rx_queues", struct y_port, rx_queues),
	INT("tx_queues", struct y_port, tx_queues),
	INT("rx_descriptors", struct y_port, rx_descriptors),
	INT("tx_descriptors", struct y_port, tx_descriptors),
	INT("mempool_size", struct y_port, mempool_size),
	INT("mbuf_cache", struct y_port, mbuf_cache),
	STR("promiscuous", OPT, struct y_port, promiscuous),
	STR("exception_tap", OPT, struct y_port, exception_tap),
	INT("exception_pps", struct y_port, exception_pps),
	CYAML_FIELD_END,
};
static const cyaml_schema_value_t port_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct y_port, port_fields),
};

static const cyaml_schema_field_t rxq_fields[] = {
	STR("port", REQ, struct y_rxq, port),
	INT("queue", struct y_rxq, queue),
	CYAML_FIELD_END,
};
static const cyaml_schema_value_t rxq_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct y_rxq, rxq_fields),
};

static const cyaml_schema_field_t worker_fields[] = {
	STR("name", REQ, struct y_worker, name),
	CYAML_FIELD_INT("lcore", CYAML_FLAG_DEFAULT, struct y_worker, lcore),
	CYAML_FIELD_SEQUENCE("rx", REQ, struct y_worker, rx, &rxq_entry, 1, CYAML_UNLIMITED),
	INT("ring_size", struct y_worker, ring_size),
	INT("burst", struct y_worker, burst),
	STR("persister", OPT, struct y_worker, persister),
	CYAML_FIELD_END,
};
static const cyaml_schema_value_t worker_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct y_worker, worker_fields),
};

static const cyaml_schema_field_t persister_fields[] = {
	STR("name", REQ, struct y_persister, name),
	CYAML_FIELD_INT("lcore", CYAML_FLAG_DEFAULT, struct y_persister, lcore),
	CYAML_FIELD_END,
};
static const cyaml_schema_value_t persister_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct y_persister, persister_fields),
};

static const cyaml_schema_field_t cores_fields[] = {
	INT("control", struct y_cores, control),
	CYAML_FIELD_SEQUENCE("workers", REQ, struct y_cores, workers, &worker_entry, 1,
			     CYAML_UNLIMITED),
	CYAML_FIELD_SEQUENCE("persisters", OPT, struct y_cores, persisters, &persister_entry, 0,
			     CYAML_UNLIMITED),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t book_fields[] = {
	INT("max_orders", struct y_book, max_orders),
	INT("order_ring", struct y_book, order_ring),
	INT("max_levels", struct y_book, max_levels),
	INT("max_symbols", struct y_book, max_symbols),
	INT("snapshot_depth", struct y_book, snapshot_depth),
	STR("integrity_policy", OPT, struct y_book, integrity_policy),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t recovery_fields[] = {
	STR("rerequest", OPT, struct y_recovery, rerequest),
	STR("soup", OPT, struct y_recovery, soup),
	STR("source", OPT, struct y_recovery, source),
	STR("rerequest_mac", OPT, struct y_recovery, rerequest_mac),
	INT("gap_timeout_ms", struct y_recovery, gap_timeout_ms),
	INT("line_silence_ms", struct y_recovery, line_silence_ms),
	INT("reorder_buffer", struct y_recovery, reorder_buffer),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t feed_fields[] = {
	STR("name", REQ, struct y_feed, name),
	STR("protocol", REQ, struct y_feed, protocol),
	STR("line_a", REQ, struct y_feed, line_a),
	STR("line_b", OPT, struct y_feed, line_b),
	STR("port", REQ, struct y_feed, port),
	INT("queue", struct y_feed, queue),
	STR("raw_capture", OPT, struct y_feed, raw_capture),
	STR("credentials", OPT, struct y_feed, credentials),
	CYAML_FIELD_MAPPING_PTR("book", OPT, struct y_feed, book, book_fields),
	CYAML_FIELD_MAPPING_PTR("recovery", OPT, struct y_feed, recovery, recovery_fields),
	CYAML_FIELD_SEQUENCE("symbols", OPT, struct y_feed, symbols, &string_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_END,
};
static const cyaml_schema_value_t feed_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct y_feed, feed_fields),
};

static const cyaml_schema_field_t capture_fields[] = {
	STR("directory", OPT, struct y_capture, directory),
	INT("zstd_level", struct y_capture, zstd_level),
	INT("block_bytes", struct y_capture, block_bytes),
	INT("rotate_bytes", struct y_capture, rotate_bytes),
	INT("rotate_seconds", struct y_capture, rotate_seconds),
	STR("durability", OPT, struct y_capture, durability),
	INT("durability_ms", struct y_capture, durability_ms),
	INT("retention_bytes", struct y_capture, retention_bytes),
	INT("retention_hours", struct y_capture, retention_hours),
	INT("queue_depth", struct y_capture, queue_depth),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t control_fields[] = {
	STR("socket", OPT, struct y_control, socket),
	INT("mode", struct y_control, mode),
	STR("group", OPT, struct y_control, group),
	STR("metrics_file", OPT, struct y_control, metrics_file),
	INT("metrics_interval_ms", struct y_control, metrics_interval_ms),
	CYAML_FIELD_SEQUENCE("read_uids", OPT, struct y_control, read_uids, &string_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_SEQUENCE("read_gids", OPT, struct y_control, read_gids, &string_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_SEQUENCE("admin_uids", OPT, struct y_control, admin_uids, &string_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_SEQUENCE("admin_gids", OPT, struct y_control, admin_gids, &string_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t dpdk_fields[] = {
	STR("file_prefix", OPT, struct y_dpdk, file_prefix),
	CYAML_FIELD_SEQUENCE("eal_args", OPT, struct y_dpdk, eal_args, &string_entry, 0,
			     CYAML_UNLIMITED),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t top_fields[] = {
	STR("numa_policy", OPT, struct y_top, numa_policy),
	STR("log_level", OPT, struct y_top, log_level),
	CYAML_FIELD_MAPPING_PTR("dpdk", OPT, struct y_top, dpdk, dpdk_fields),
	CYAML_FIELD_SEQUENCE("ports", REQ, struct y_top, ports, &port_entry, 1, CYAML_UNLIMITED),
	CYAML_FIELD_MAPPING_PTR("cores", REQ, struct y_top, cores, cores_fields),
	CYAML_FIELD_SEQUENCE("feeds", REQ, struct y_top, feeds, &feed_entry, 1, CYAML_UNLIMITED),
	CYAML_FIELD_MAPPING_PTR("capture", OPT, struct y_top, capture, capture_fields),
	CYAML_FIELD_MAPPING_PTR("control", OPT, struct y_top, control, control_fields),
	CYAML_FIELD_END,
};
static const cyaml_schema_value_t top_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct y_top, top_fields),
};

/* ------------------------------------------------------------------ */
/* libcyaml diagnostics -> "FILE:LINE: FIELD: REASON"                  */

#define CY_MAX_FRAMES 16

/* libcyaml logs one reason line, then "Backtrace:", then one frame per line, innermost
 * first; we keep them and build the field path after the load fails. */
struct cy_log {
	char reason[256];
	bool in_backtrace;
	unsigned nframes;
	char frames[CY_MAX_FRAMES][256];
};

static void cy_log_fn(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
	struct cy_log *l = ctx;
	char line[256];
	char *s;
	size_t n;

	if (level < CYAML_LOG_ERROR)
		return;
	vsnprintf(line, sizeof(line), fmt, args);
	n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == ' '))
		line[--n] = '\0';
	s = line;
	if (strncmp(s, "Load: ", 6) == 0)
		s += 6;
	if (strcmp(s, "Backtrace:") == 0) {
		l->in_backtrace = true;
		return;
	}
	if (l->in_backtrace) {
		if (l->nframes < CY_MAX_FRAMES) {
			while (*s == ' ')
				s++;
			snprintf(l->frames[l->nframes++], sizeof(l->frames[0]), "%s", s);
		}
		return;
	}
	if (!l->reason[0])
		snprintf(l->reason, sizeof(l->reason), "%s", s);
}

/* Text between the first pair of single quotes of s, or NULL. */
static bool quoted(const char *s, char *out, size_t n)
{
	const char *a = strchr(s, '\''), *b;

	if (!a)
		return false;
	b = strchr(a + 1, '\'');
	if (!b || (size_t)(b - a - 1) >= n)
		return false;
	memcpy(out, a + 1, (size_t)(b - a - 1));
	out[b - a - 1] = '\0';
	return true;
}

static const char *event_word(const char *ev)
{
	if (strstr(ev, "SCALAR"))
		return "a scalar";
	if (strstr(ev, "SEQUENCE"))
		return "a sequence";
	if (strstr(ev, "MAPPING"))
		return "a mapping";
	if (strstr(ev, "ALIAS"))
		return "an alias";
	return ev;
}

static void cy_report(struct errs *e, const struct cy_log *l, cyaml_err_t err)
{
	char path[PATH_LEN] = "", item[96], reason[320], key[96];
	const char *r = l->reason;
	bool twice = false;
	unsigned first = 0;
	bool seq_count = strstr(r, "entries") != NULL;

	/* the innermost "mapping field" frame of a missing-key error names a sibling */
	if (strncmp(r, "Missing required mapping field: ", 32) == 0 && l->nframes &&
	    strncmp(l->frames[0], "in mapping field", 16) == 0)
		first = 1;
	if (seq_count && l->nframes && strncmp(l->frames[0], "in sequence entry", 17) == 0)
		first = 1;
	for (unsigned i = l->nframes; i-- > first;) {
		const char *f = l->frames[i];
		size_t n = strlen(path);
		if (strncmp(f, "in mapping field", 16) == 0 && quoted(f, item, sizeof(item)))
			snprintf(path + n, sizeof(path) - n, "%s%s", n ? "." : "", item);
		else if (strncmp(f, "in sequence entry", 17) == 0 && quoted(f, item, sizeof(item)))
			/* libcyaml counts entries from 1 */
			snprintf(path + n, sizeof(path) - n, "[%ld]", strtol(item, NULL, 10) - 1);
	}

	if (strncmp(r, "Unexpected key: ", 16) == 0) {
		snprintf(key, sizeof(key), "%s", r + 16);
		snprintf(reason, sizeof(reason), "unknown key");
	} else if (strncmp(r, "Missing required mapping field: ", 32) == 0) {
		snprintf(key, sizeof(key), "%s", r + 32);
		snprintf(reason, sizeof(reason), "missing required key");
	} else if (strncmp(r, "Mapping field already seen: ", 28) == 0) {
		snprintf(key, sizeof(key), "%s", r + 28);
		snprintf(reason, sizeof(reason), "key given twice");
		twice = true;
		if (strlen(path) >= strlen(key) &&
		    strcmp(path + strlen(path) - strlen(key), key) == 0)
			key[0] = '\0';
	} else {
		key[0] = '\0';
		if (strncmp(r, "Invalid INT value: ", 19) == 0 && quoted(r, item, sizeof(item)))
			snprintf(reason, sizeof(reason), "'%s' is not an integer", item);
		else if (strncmp(r, "Invalid BOOL value: ", 20) == 0 && quoted(r, item, sizeof(item)))
			snprintf(reason, sizeof(reason), "'%s' is not a boolean (true or false)",
				 item);
		else if (strncmp(r, "Expecting ", 10) == 0 && strstr(r, ", got event: ")) {
			char want[32] = "";
			sscanf(r + 10, "%31[A-Z_]", want);
			for (char *c = want; *c; c++)
				*c = (char)tolower((unsigned char)*c);
			snprintf(reason, sizeof(reason), "expected %s %s, got %s",
				 want[0] == 'i' ? "an" : "a",
				 strcmp(want, "int") == 0 ? "integer" : want,
				 event_word(strstr(r, ", got event: ") + 13));
		} else if (strncmp(r, "Insufficient entries", 20) == 0)
			snprintf(reason, sizeof(reason), "needs at least one entry");
		else if (r[0])
			snprintf(reason, sizeof(reason), "%s", r);
		else
			snprintf(reason, sizeof(reason), "%s", cyaml_strerror(err));
	}
	if (key[0]) {
		size_t n = strlen(path);
		snprintf(path + n, sizeof(path) - n, "%s%s", n ? "." : "", key);
	}
	if (twice)
		report_line(e, line_of_nth(e->lines, path, true), path, "%s", reason);
	else
		report(e, path[0] ? path : "(document)", "%s", reason);
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static bool name_ok(const char *s)
{
	if (!s[0])
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

/* Copies a string into a fixed field, reporting when it does not fit. */
static void take_str(struct errs *e, const char *path, const char *v, char *dst, size_t n)
{
	if (!v)
		return;
	if (strlen(v) >= n) {
		report(e, path, "too long (%zu characters, at most %zu)", strlen(v), n - 1);
		return;
	}
	memcpy(dst, v, strlen(v) + 1);
}

/* Stores a present integer if it fits its C type; if not, reports the documented range
 * here (validation could not see the value) and leaves the default. */
static bool fits(struct errs *e, const char *path, const int64_t *v, int64_t tmin,
		 int64_t tmax, int64_t rmin, int64_t rmax)
{
	if (!v)
		return false;
	if (*v < tmin || *v > tmax) {
		report(e, path, "%" PRId64 " is out of range (%" PRId64 "..%" PRId64 ")", *v,
		       rmin, rmax);
		return false;
	}
	return true;
}

#define TAKE(e, path, v, dst, rmin, rmax)                                                  \
	do {                                                                               \
		if (fits((e), (path), (v), (int64_t)0,                                     \
			 sizeof(dst) >= 8 ? INT64_MAX                                      \
					  : (int64_t)(__typeof__(dst))~(__typeof__(dst))0, \
			 (rmin), (rmax)))                                                  \
			(dst) = (__typeof__(dst))*(v);                                     \
	} while (0)

static int name_index(const char *name, const void *base, size_t stride, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(name, (const char *)base + (size_t)i * stride) == 0)
			return (int)i;
	return -1;
}

static int pick(const char *v, const char *const *names, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(v, names[i]) == 0)
			return (int)i;
	return -1;
}

static const char *const numa_names[] = { "warn", "refuse", "ignore" };
static const char *const log_names[] = { "error", "warn", "info", "debug" };
static const char *const durability_names[] = { "none", "interval", "block" };
static const char *const integrity_names[] = { "flag", "freeze" };

static void take_enum(struct errs *e, const char *path, const char *v,
		      const char *const *names, unsigned n, int *dst)
{
	char list[128] = "";
	int i;

	if (!v)
		return;
	i = pick(v, names, n);
	if (i >= 0) {
		*dst = i;
		return;
	}
	for (unsigned k = 0; k < n; k++) {
		size_t len = strlen(list);
		snprintf(list + len, sizeof(list) - len, "%s%s", k ? ", " : "", names[k]);
	}
	report(e, path, "'%s' is not one of %s", v, list);
}

/* YAML 1.1 booleans, nothing else: a typo must not silently mean true. */
static void take_bool(struct errs *e, const char *path, const char *v, bool *dst)
{
	static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes", "on", "On" };
	static const char *const no[] = { "false", "False", "FALSE", "no", "No", "off", "Off" };

	if (!v)
		return;
	if (pick(v, yes, 7) >= 0)
		*dst = true;
	else if (pick(v, no, 7) >= 0)
		*dst = false;
	else
		report(e, path, "'%s' is not a boolean (true or false)", v);
}

static int take_mac(const char *v, uint8_t mac[6])
{
	unsigned b[6];
	char tail;
	if (sscanf(v, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (b[i] > 255)
			return -EINVAL;
		mac[i] = (uint8_t)b[i];
	}
	return 0;
}

static void take_endpoint(struct errs *e, const char *path, const char *v,
			  struct wb_endpoint *dst)
{
	if (!v)
		return;
	if (wb_endpoint_parse(v, dst) < 0)
		report(e, path, "'%s' is not an IPv4:port endpoint (e.g. 233.54.12.111:26477)", v);
}

/* ------------------------------------------------------------------ */
/* Public helpers                                                      */

int wb_endpoint_parse(const char *s, struct wb_endpoint *ep)
{
	char host[INET_ADDRSTRLEN];
	const char *colon;
	struct in_addr a;
	unsigned long port;
	char *end;

	if (!s || !ep)
		return -EINVAL;
	colon = strchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host) || colon == s)
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	if (inet_pton(AF_INET, host, &a) != 1)
		return -EINVAL;
	if (!isdigit((unsigned char)colon[1]))
		return -EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || port == 0 || port > 65535)
		return -EINVAL;
	ep->addr = ntohl(a.s_addr);
	ep->port = (uint16_t)port;
	return 0;
}

void wb_endpoint_format(const struct wb_endpoint *ep, char *buf, size_t n)
{
	snprintf(buf, n, "%u.%u.%u.%u:%u", ep->addr >> 24, (ep->addr >> 16) & 0xff,
		 (ep->addr >> 8) & 0xff, ep->addr & 0xff, ep->port);
}

const char *wb_log_level_name(enum wb_log_level l)
{
	if ((unsigned)l < sizeof(log_names) / sizeof(log_names[0]))
		return log_names[l];
	return "unknown";
}

int wb_config_find_line(const struct wb_config *cfg, uint32_t addr, uint16_t port, int *line)
{
	for (uint32_t i = 0; i < cfg->nfeeds; i++) {
		const struct wb_feed_conf *f = &cfg->feeds[i];
		for (int l = 0; l < (f->has_line_b ? 2 : 1); l++) {
			if (f->line[l].addr == addr && f->line[l].port == port) {
				if (line)
					*line = l;
				return (int)i;
			}
		}
	}
	return -1;
}

static void port_defaults(struct wb_port_conf *p)
{
	memset(p, 0, sizeof(*p));
	p->rx_queues = 1;
	p->tx_queues = 1;
	p->rx_descriptors = 1024;
	p->tx_descriptors = 512;
	p->mempool_size = 8191;
	p->mbuf_cache = 256;
	p->promiscuous = true;
	p->exception_pps = 10000;
}

static void worker_defaults(struct wb_worker_conf *w)
{
	memset(w, 0, sizeof(*w));
	w->ring_size = 65536;
	w->burst = 32;
	w->persister = -1;
}

static void feed_defaults(struct wb_feed_conf *f)
{
	memset(f, 0, sizeof(*f));
	f->worker = -1;
	f->raw_capture = false;
	f->max_orders = 1u << 20;
	f->max_levels = 1u << 18;
	f->max_symbols = 16384;
	f->snapshot_depth = 10;
	f->integrity_policy = WB_CFG_INTEGRITY_FLAG;
	f->gap_timeout_ms = 500;
	f->line_silence_ms = 2000;
	f->reorder_buffer = 4096;
}

void wb_config_defaults(struct wb_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->numa_policy = WB_NUMA_WARN;
	cfg->log_level = WB_LOG_INFO;
	cfg->control_lcore = 0;
	snprintf(cfg->file_prefix, sizeof(cfg->file_prefix), "wirebook");
	for (unsigned i = 0; i < WB_MAX_PORTS; i++)
		port_defaults(&cfg->ports[i]);
	for (unsigned i = 0; i < WB_MAX_WORKERS; i++)
		worker_defaults(&cfg->workers[i]);
	for (unsigned i = 0; i < WB_MAX_FEEDS; i++)
		feed_defaults(&cfg->feeds[i]);
	snprintf(cfg->capture.directory, sizeof(cfg->capture.directory),
		 "/var/lib/wirebook/capture");
	cfg->capture.zstd_level = 1;
	cfg->capture.block_bytes = 1u << 20;
	cfg->capture.rotate_bytes = 1ull << 30;
	cfg->capture.rotate_seconds = 3600;
	cfg->capture.durability = WB_DURABLE_INTERVAL;
	cfg->capture.durability_ms = 100;
	cfg->capture.retention_bytes = 0;
	cfg->capture.retention_hours = 0;
	cfg->capture.queue_depth = 8;
	snprintf(cfg->control.socket, sizeof(cfg->control.socket),
		 "/run/wirebook/wirebook.sock");
	cfg->control.mode = 0660;
	cfg->control.metrics_interval_ms = 10000;
}

/* ------------------------------------------------------------------ */
/* Conversion: schema structs -> struct wb_config                      */

static void convert_ports(struct errs *e, const struct y_top *y, struct wb_config *cfg)
{
	char p[PATH_LEN];

	if (y->ports_count > WB_MAX_PORTS)
		report(e, "ports", "too many ports (%u, at most %d)", y->ports_count, WB_MAX_PORTS);
	cfg->nports = y->ports_count > WB_MAX_PORTS ? WB_MAX_PORTS : y->ports_count;
	for (unsigned i = 0; i < cfg->nports; i++) {
		const struct y_port *yp = &y->ports[i];
		struct wb_port_conf *c = &cfg->ports[i];
#define F(k) (snprintf(p, sizeof(p), "ports[%u]." k, i), p)
		take_str(e, F("name"), yp->name, c->name, sizeof(c->name));
		take_str(e, F("device"), yp->device, c->device, sizeof(c->device));
		TAKE(e, F("rx_queues"), yp->rx_queues, c->rx_queues, 1, 16);
		TAKE(e, F("tx_queues"), yp->tx_queues, c->tx_queues, 0, 16);
		TAKE(e, F("rx_descriptors"), yp->rx_descriptors, c->rx_descriptors, 64, 16384);
		TAKE(e, F("tx_descriptors"), yp->tx_descriptors, c->tx_descriptors, 64, 16384);
		TAKE(e, F("mempool_size"), yp->mempool_size, c->mempool_size, 1023, 16777215);
		TAKE(e, F("mbuf_cache"), yp->mbuf_cache, c->mbuf_cache, 0, 512);
		take_bool(e, F("promiscuous"), yp->promiscuous, &c->promiscuous);
		take_str(e, F("exception_tap"), yp->exception_tap, c->exception_tap, sizeof(c->exception_tap));
		if (c->exception_tap[0] && !name_ok(c->exception_tap))
			report(e, F("exception_tap"), "'%s' is not an interface name", c->exception_tap);
		TAKE(e, F("exception_pps"), yp->exception_pps, c->exception_pps, 1, 10000000);
#undef F
	}
}

static void convert_cores(struct errs *e, const struct y_cores *y, struct wb_config *cfg)
{
	char p[PATH_LEN];

	if (y->control)
		TAKE(e, "cores.control", y->control, cfg->control_lcore, 0, (int64_t)UINT32_MAX);
	if (y->persisters_count > WB_MAX_PERSISTERS)
		report(e, "cores.persisters", "too many persisters (%u, at most %d)",
		       y->persisters_count, WB_MAX_PERSISTERS);
	cfg->npersisters = y->persisters_count > WB_MAX_PERSISTERS ? WB_MAX_PERSISTERS
								    : y->persisters_count;
	for (unsigned i = 0; i < cfg->npersisters; i++) {
		struct wb_persister_conf *c = &cfg->persisters[i];
		snprintf(p, sizeof(p), "cores.persisters[%u].name", i);
		take_str(e, p, y->persisters[i].name, c->name, sizeof(c->name));
		snprintf(p, sizeof(p), "cores.persisters[%u].lcore", i);
		TAKE(e, p, &y->persisters[i].lcore, c->lcore, 0, (int64_t)UINT32_MAX);
	}

	if (y->workers_count > WB_MAX_WORKERS)
		report(e, "cores.workers", "too many workers (%u, at most %d)", y->workers_count,
		       WB_MAX_WORKERS);
	cfg->nworkers = y->workers_count > WB_MAX_WORKERS ? WB_MAX_WORKERS : y->workers_count;
	for (unsigned i = 0; i < cfg->nworkers; i++) {
		const struct y_worker *yw = &y->workers[i];
		struct wb_worker_conf *c = &cfg->workers[i];
#define F(k) (snprintf(p, sizeof(p), "cores.workers[%u]." k, i), p)
		take_str(e, F("name"), yw->name, c->name, sizeof(c->name));
		TAKE(e, F("lcore"), &yw->lcore, c->lcore, 0, (int64_t)UINT32_MAX);
		TAKE(e, F("ring_size"), yw->ring_size, c->ring_size, 1024, 67108864);
		TAKE(e, F("burst"), yw->burst, c->burst, 1, 512);
		if (yw->persister) {
			c->persister = name_index(yw->persister, cfg->persisters,
						  sizeof(cfg->persisters[0]), cfg->npersisters);
			if (c->persister < 0)
				report(e, F("persister"), "unknown persister '%s'", yw->persister);
		}
		if (yw->rx_count > WB_MAX_RXQ_PER_WORKER)
			report(e, F("rx"), "too many rx queues (%u, at most %d)", yw->rx_count,
			       WB_MAX_RXQ_PER_WORKER);
#undef F
		c->nrxq = yw->rx_count > WB_MAX_RXQ_PER_WORKER ? WB_MAX_RXQ_PER_WORKER
							       : yw->rx_count;
		for (unsigned q = 0; q < c->nrxq; q++) {
			const struct y_rxq *yq = &yw->rx[q];
			int port = name_index(yq->port, cfg->ports, sizeof(cfg->ports[0]),
					      cfg->nports);
			snprintf(p, sizeof(p), "cores.workers[%u].rx[%u].port", i, q);
			if (port < 0) {
				report(e, p, "unknown port '%s'", yq->port);
				/* keep validation from piling more errors on this entry */
				c->rxq[q].port = UINT16_MAX;
			} else {
				c->rxq[q].port = (uint16_t)port;
			}
			snprintf(p, sizeof(p), "cores.workers[%u].rx[%u].queue", i, q);
			TAKE(e, p, yq->queue, c->rxq[q].queue, 0, 15);
		}
	}
}

/* feeds[i].symbols: ITCH stock names, 1..8 printable characters, no duplicates. */
static void take_symbols(struct errs *e, unsigned i, const struct y_feed *yf, struct wb_feed_conf *c)
{
	char p[PATH_LEN];

	if (yf->symbols_count > WB_MAX_FILTER_SYMBOLS) {
		snprintf(p, sizeof(p), "feeds[%u].symbols", i);
		report(e, p, "too many symbols (%u, at most %d)", yf->symbols_count, WB_MAX_FILTER_SYMBOLS);
		return;
	}
	c->nsymbols = 0;
	for (unsigned k = 0; k < yf->symbols_count; k++) {
		const char *v = yf->symbols[k];
		size_t n = strlen(v);
		bool ok = n >= 1 && n < WB_SYMBOL_LEN;
		for (size_t j = 0; ok && j < n; j++)
			ok = isgraph((unsigned char)v[j]);
		snprintf(p, sizeof(p), "feeds[%u].symbols[%u]", i, k);
		if (!ok) {
			report(e, p, "'%s' is not a symbol (1 to 8 printable characters, no spaces)", v);
			continue;
		}
		bool dup = false;
		for (uint32_t j = 0; j < c->nsymbols && !dup; j++)
			dup = !strcmp(c->symbols[j], v);
		if (dup) {
			report(e, p, "'%s' is listed twice", v);
			continue;
		}
		memcpy(c->symbols[c->nsymbols++], v, n + 1);
	}
}

static void convert_feeds(struct errs *e, const struct y_top *y, struct wb_config *cfg)
{
	char p[PATH_LEN];

	if (y->feeds_count > WB_MAX_FEEDS)
		report(e, "feeds", "too many feeds (%u, at most %d)", y->feeds_count, WB_MAX_FEEDS);
	cfg->nfeeds = y->feeds_count > WB_MAX_FEEDS ? WB_MAX_FEEDS : y->feeds_count;
	for (unsigned i = 0; i < cfg->nfeeds; i++) {
		const struct y_feed *yf = &y->feeds[i];
		struct wb_feed_conf *c = &cfg->feeds[i];
		int port, pol;
#define F(k) (snprintf(p, sizeof(p), "feeds[%u]." k, i), p)
		take_str(e, F("name"), yf->name, c->name, sizeof(c->name));
		take_str(e, F("protocol"), yf->protocol, c->protocol, sizeof(c->protocol));
		take_endpoint(e, F("line_a"), yf->line_a, &c->line[0]);
		if (yf->line_b) {
			c->has_line_b = true;
			take_endpoint(e, F("line_b"), yf->line_b, &c->line[1]);
		}
		port = name_index(yf->port, cfg->ports, sizeof(cfg->ports[0]), cfg->nports);
		if (port < 0) {
			report(e, F("port"), "unknown port '%s'", yf->port);
			c->port = UINT16_MAX;
		} else {
			c->port = (uint16_t)port;
		}
		TAKE(e, F("queue"), yf->queue, c->queue, 0, 15);
		take_bool(e, F("raw_capture"), yf->raw_capture, &c->raw_capture);
		take_str(e, F("credentials"), yf->credentials, c->credentials, sizeof(c->credentials));
		if (yf->book) {
			const struct y_book *b = yf->book;
			TAKE(e, F("book.max_orders"), b->max_orders, c->max_orders, 1024, 268435456);
			TAKE(e, F("book.order_ring"), b->order_ring, c->order_ring, 0, 1073741824);
			TAKE(e, F("book.max_levels"), b->max_levels, c->max_levels, 1024, 67108864);
			TAKE(e, F("book.max_symbols"), b->max_symbols, c->max_symbols, 1, 65536);
			TAKE(e, F("book.snapshot_depth"), b->snapshot_depth, c->snapshot_depth, 1, 32);
			pol = (int)c->integrity_policy;
			take_enum(e, F("book.integrity_policy"), b->integrity_policy,
				  integrity_names, 2, &pol);
			c->integrity_policy = (enum wb_config_policy)pol;
		}
		if (yf->recovery) {
			const struct y_recovery *r = yf->recovery;
			take_endpoint(e, F("recovery.rerequest"), r->rerequest, &c->rerequest);
			take_endpoint(e, F("recovery.soup"), r->soup, &c->soup);
			take_endpoint(e, F("recovery.source"), r->source, &c->rerequest_source);
			if (r->rerequest_mac && take_mac(r->rerequest_mac, c->rerequest_mac) < 0)
				report(e, F("recovery.rerequest_mac"), "'%s' is not a MAC address (aa:bb:cc:dd:ee:ff)",
				       r->rerequest_mac);
			TAKE(e, F("recovery.gap_timeout_ms"), r->gap_timeout_ms, c->gap_timeout_ms,
			     1, 60000);
			TAKE(e, F("recovery.line_silence_ms"), r->line_silence_ms,
			     c->line_silence_ms, 10, 600000);
			TAKE(e, F("recovery.reorder_buffer"), r->reorder_buffer, c->reorder_buffer,
			     0, 1048576);
		}
		take_symbols(e, i, yf, c);
#undef F
	}
}

static void convert_capture(struct errs *e, const struct y_capture *y, struct wb_capture_conf *c)
{
	int d = (int)c->durability;

	take_str(e, "capture.directory", y->directory, c->directory, sizeof(c->directory));
	if (y->zstd_level) {
		if (*y->zstd_level < -7 || *y->zstd_level > 19)
			report(e, "capture.zstd_level", "%" PRId64 " is out of range (-7..19)",
			       *y->zstd_level);
		else
			c->zstd_level = (int)*y->zstd_level;
	}
	TAKE(e, "capture.block_bytes", y->block_bytes, c->block_bytes, 65536, 67108864);
	TAKE(e, "capture.rotate_bytes", y->rotate_bytes, c->rotate_bytes, 1048576,
	     1099511627776LL);
	TAKE(e, "capture.rotate_seconds", y->rotate_seconds, c->rotate_seconds, 0, 86400);
	take_enum(e, "capture.durability", y->durability, durability_names, 3, &d);
	c->durability = (enum wb_durability)d;
	TAKE(e, "capture.durability_ms", y->durability_ms, c->durability_ms, 1, 60000);
	TAKE(e, "capture.retention_bytes", y->retention_bytes, c->retention_bytes, 0, INT64_MAX);
	TAKE(e, "capture.retention_hours", y->retention_hours, c->retention_hours, 0, 87600);
	TAKE(e, "capture.queue_depth", y->queue_depth, c->queue_depth, 1, 256);
}

/* One ACL list: numeric ids or user/group names resolved now (a name that does not
 * exist is an error rather than a silently empty list). */
static void take_ids(struct errs *e, const char *key, char *const *v, unsigned n, bool group, uint32_t *out,
		     uint32_t *nout)
{
	char p[PATH_LEN];

	if (n > WB_MAX_ACL_IDS) {
		snprintf(p, sizeof(p), "control.%s", key);
		report(e, p, "too many entries (%u, at most %d)", n, WB_MAX_ACL_IDS);
		return;
	}
	*nout = 0;
	for (unsigned k = 0; k < n; k++) {
		char *end;
		snprintf(p, sizeof(p), "control.%s[%u]", key, k);
		errno = 0;
		unsigned long id = strtoul(v[k], &end, 10);
		if (v[k][0] && !*end && !errno && isdigit((unsigned char)v[k][0]) && id < UINT32_MAX) {
			out[(*nout)++] = (uint32_t)id;
			continue;
		}
		if (group) {
			struct group *g = getgrnam(v[k]);
			if (g) {
				out[(*nout)++] = (uint32_t)g->gr_gid;
				continue;
			}
			report(e, p, "'%s' is neither a gid nor a known group", v[k]);
		} else {
			struct passwd *pw = getpwnam(v[k]);
			if (pw) {
				out[(*nout)++] = (uint32_t)pw->pw_uid;
				continue;
			}
			report(e, p, "'%s' is neither a uid nor a known user", v[k]);
		}
	}
}

static void convert_control(struct errs *e, const struct y_control *y, struct wb_control_conf *c)
{
	take_ids(e, "read_uids", y->read_uids, y->read_uids_count, false, c->read_uids, &c->nread_uids);
	take_ids(e, "read_gids", y->read_gids, y->read_gids_count, true, c->read_gids, &c->nread_gids);
	take_ids(e, "admin_uids", y->admin_uids, y->admin_uids_count, false, c->admin_uids, &c->nadmin_uids);
	take_ids(e, "admin_gids", y->admin_gids, y->admin_gids_count, true, c->admin_gids, &c->nadmin_gids);
	take_str(e, "control.socket", y->socket, c->socket, sizeof(c->socket));
	if (y->mode) {
		if (*y->mode < 0 || *y->mode > 0777)
			report(e, "control.mode",
			       "0%" PRIo64 " is out of range (0..0777); write it in octal with a "
			       "leading 0, e.g. 0660",
			       (uint64_t)*y->mode);
		else
			c->mode = (uint32_t)*y->mode;
	}
	take_str(e, "control.group", y->group, c->group, sizeof(c->group));
	take_str(e, "control.metrics_file", y->metrics_file, c->metrics_file,
		 sizeof(c->metrics_file));
	TAKE(e, "control.metrics_interval_ms", y->metrics_interval_ms, c->metrics_interval_ms,
	     100, 3600000);
}

static void convert(struct errs *e, const struct y_top *y, struct wb_config *cfg)
{
	int v;

	v = (int)cfg->numa_policy;
	take_enum(e, "numa_policy", y->numa_policy, numa_names, 3, &v);
	cfg->numa_policy = (enum wb_numa_policy)v;
	v = (int)cfg->log_level;
	take_enum(e, "log_level", y->log_level, log_names, 4, &v);
	cfg->log_level = (enum wb_log_level)v;
	if (y->dpdk) {
		take_str(e, "dpdk.file_prefix", y->dpdk->file_prefix, cfg->file_prefix,
			 sizeof(cfg->file_prefix));
		if (y->dpdk->eal_args_count > WB_MAX_EAL_ARGS)
			report(e, "dpdk.eal_args", "too many arguments (%u, at most %d)",
			       y->dpdk->eal_args_count, WB_MAX_EAL_ARGS);
		for (unsigned i = 0; i < y->dpdk->eal_args_count && i < WB_MAX_EAL_ARGS; i++) {
			char p[PATH_LEN];
			snprintf(p, sizeof(p), "dpdk.eal_args[%u]", i);
			take_str(e, p, y->dpdk->eal_args[i], cfg->eal_args[i],
				 sizeof(cfg->eal_args[i]));
			cfg->neal_args = i + 1;
		}
	}
	convert_ports(e, y, cfg);
	convert_cores(e, y->cores, cfg);
	convert_feeds(e, y, cfg);
	if (y->capture)
		convert_capture(e, y->capture, &cfg->capture);
	if (y->control)
		convert_control(e, y->control, &cfg->control);
}

/* ------------------------------------------------------------------ */
/* Cross-field validation                                              */

static void check_range(struct errs *e, const char *path, int64_t v, int64_t min, int64_t max)
{
	if (v < min || v > max)
		report(e, path, "%" PRId64 " is out of range (%" PRId64 "..%" PRId64 ")", v, min,
		       max);
}

static void check_pow2(struct errs *e, const char *path, int64_t v, int64_t min, int64_t max)
{
	if (v < min || v > max)
		check_range(e, path, v, min, max);
	else if (!is_pow2((uint64_t)v))
		report(e, path, "%" PRId64 " is not a power of two", v);
}

static void check_name(struct errs *e, const char *path, const char *name)
{
	if (!name[0])
		report(e, path, "must not be empty");
	else if (!name_ok(name))
		report(e, path, "'%s' may only contain letters, digits, '-', '_' and '.'", name);
}

static void check_core(struct errs *e, const char *path, unsigned core, unsigned ncores)
{
	if (core < ncores)
		return;
	if (ncores == 1)
		report(e, path, "core %u does not exist on this machine (it has core 0)", core);
	else
		report(e, path, "core %u does not exist on this machine (it has cores 0-%u)", core,
		       ncores - 1);
}

static void check_ports(struct errs *e, const struct wb_config *cfg)
{
	char p[PATH_LEN];

	for (unsigned i = 0; i < cfg->nports; i++) {
		const struct wb_port_conf *c = &cfg->ports[i];
#define F(k) (snprintf(p, sizeof(p), "ports[%u]." k, i), p)
		check_name(e, F("name"), c->name);
		for (unsigned j = 0; j < i; j++)
			if (c->name[0] && strcmp(c->name, cfg->ports[j].name) == 0)
				report(e, F("name"), "duplicate port name '%s' (also ports[%u])",
				       c->name, j);
		if (!c->device[0])
			report(e, F("device"), "must not be empty");
		check_range(e, F("rx_queues"), c->rx_queues, 1, 16);
		check_range(e, F("tx_queues"), c->tx_queues, 0, 16);
		check_pow2(e, F("rx_descriptors"), c->rx_descriptors, 64, 16384);
		check_pow2(e, F("tx_descriptors"), c->tx_descriptors, 64, 16384);
		check_range(e, F("mempool_size"), c->mempool_size, 1023, 16777215);
		check_range(e, F("mbuf_cache"), c->mbuf_cache, 0, 512);
#undef F
	}
}

/* Which worker polls port/queue, or -1. */
static int poller_of(const struct wb_config *cfg, unsigned port, unsigned queue)
{
	for (unsigned w = 0; w < cfg->nworkers; w++)
		for (unsigned q = 0; q < cfg->workers[w].nrxq; q++)
			if (cfg->workers[w].rxq[q].port == port &&
			    cfg->workers[w].rxq[q].queue == queue)
				return (int)w;
	return -1;
}

static void check_threads(struct errs *e, const struct wb_config *cfg, unsigned ncores)
{
	char p[PATH_LEN];

	check_core(e, "cores.control", cfg->control_lcore, ncores);
	for (unsigned i = 0; i < cfg->npersisters; i++) {
		const struct wb_persister_conf *c = &cfg->persisters[i];
#define F(k) (snprintf(p, sizeof(p), "cores.persisters[%u]." k, i), p)
		check_name(e, F("name"), c->name);
		for (unsigned j = 0; j < i; j++) {
			if (c->name[0] && strcmp(c->name, cfg->persisters[j].name) == 0)
				report(e, F("name"),
				       "duplicate persister name '%s' (also cores.persisters[%u])",
				       c->name, j);
			if (c->lcore == cfg->persisters[j].lcore)
				report(e, F("lcore"),
				       "core %u is already used by persister %s; two persisters "
				       "may not share a core",
				       c->lcore, cfg->persisters[j].name);
		}
		check_core(e, F("lcore"), c->lcore, ncores);
#undef F
	}

	for (unsigned i = 0; i < cfg->nworkers; i++) {
		const struct wb_worker_conf *c = &cfg->workers[i];
#define F(k) (snprintf(p, sizeof(p), "cores.workers[%u]." k, i), p)
		check_name(e, F("name"), c->name);
		check_core(e, F("lcore"), c->lcore, ncores);
		if (c->lcore == cfg->control_lcore)
			report(e, F("lcore"),
			       "core %u is also the control core; a worker busy-polls its core "
			       "and shares it with nothing",
			       c->lcore);
		for (unsigned j = 0; j < cfg->npersisters; j++)
			if (c->lcore == cfg->persisters[j].lcore)
				report(e, F("lcore"),
				       "core %u is also used by persister %s; a worker busy-polls "
				       "its core and shares it with nothing",
				       c->lcore, cfg->persisters[j].name);
		for (unsigned j = 0; j < i; j++) {
			if (c->name[0] && strcmp(c->name, cfg->workers[j].name) == 0)
				report(e, F("name"),
				       "duplicate worker name '%s' (also cores.workers[%u])",
				       c->name, j);
			if (c->lcore == cfg->workers[j].lcore)
				report(e, F("lcore"),
				       "core %u is already used by worker %s; a worker busy-polls "
				       "its core and shares it with nothing",
				       c->lcore, cfg->workers[j].name);
		}
		check_pow2(e, F("ring_size"), c->ring_size, 1024, 67108864);
		check_range(e, F("burst"), c->burst, 1, 512);
		if (c->persister >= (int)cfg->npersisters)
			report(e, F("persister"), "persister %d does not exist", c->persister);
		if (c->nrxq == 0)
			report(e, F("rx"), "a worker must poll at least one queue");
		if (c->nrxq > WB_MAX_RXQ_PER_WORKER)
			report(e, F("rx"), "too many rx queues (%u, at most %d)", c->nrxq,
			       WB_MAX_RXQ_PER_WORKER);
#undef F
		for (unsigned q = 0; q < c->nrxq && q < WB_MAX_RXQ_PER_WORKER; q++) {
			const struct wb_rxq_conf *r = &c->rxq[q];
			const struct wb_port_conf *port;
			if (r->port == UINT16_MAX)
				continue; /* unknown name, already reported */
			if (r->port >= cfg->nports) {
				snprintf(p, sizeof(p), "cores.workers[%u].rx[%u].port", i, q);
				report(e, p, "port %u does not exist", r->port);
				continue;
			}
			port = &cfg->ports[r->port];
			snprintf(p, sizeof(p), "cores.workers[%u].rx[%u].queue", i, q);
			if (r->queue >= port->rx_queues) {
				report(e, p, "queue %u does not exist on port %s (it has %u rx queues)",
				       r->queue, port->name, port->rx_queues);
				continue;
			}
			int w = poller_of(cfg, r->port, r->queue);
			if (w >= 0 && (unsigned)w < i)
				report(e, p, "port %s queue %u is already polled by worker %s",
				       port->name, r->queue, cfg->workers[w].name);
			for (unsigned k = 0; k < q; k++)
				if (c->rxq[k].port == r->port && c->rxq[k].queue == r->queue)
					report(e, p, "port %s queue %u is listed twice", port->name,
					       r->queue);
		}
	}
}

static void check_endpoint_set(struct errs *e, const char *path, const struct wb_endpoint *ep)
{
	if (ep->addr == 0 || ep->port == 0)
		report(e, path, "missing or not an IPv4:port endpoint");
}

static void check_feeds(struct errs *e, const struct wb_config *cfg)
{
	static const char *const line_key[2] = { "line_a", "line_b" };
	char p[PATH_LEN], ep[32];

	for (unsigned i = 0; i < cfg->nfeeds; i++) {
		const struct wb_feed_conf *c = &cfg->feeds[i];
#define F(k) (snprintf(p, sizeof(p), "feeds[%u]." k, i), p)
		check_name(e, F("name"), c->name);
		for (unsigned j = 0; j < i; j++)
			if (c->name[0] && strcmp(c->name, cfg->feeds[j].name) == 0)
				report(e, F("name"), "duplicate feed name '%s' (also feeds[%u])",
				       c->name, j);
		if (!c->protocol[0])
			report(e, F("protocol"), "must not be empty");
		for (int l = 0; l < (c->has_line_b ? 2 : 1); l++) {
			snprintf(p, sizeof(p), "feeds[%u].%s", i, line_key[l]);
			if (c->line[l].addr == 0 || c->line[l].port == 0) {
				check_endpoint_set(e, p, &c->line[l]);
				continue;
			}
			wb_endpoint_format(&c->line[l], ep, sizeof(ep));
			/* every earlier line, this feed's line A included */
			for (unsigned j = 0; j <= i; j++) {
				const struct wb_feed_conf *o = &cfg->feeds[j];
				int nl = j == i ? l : (o->has_line_b ? 2 : 1);
				for (int m = 0; m < nl; m++)
					if (o->line[m].addr == c->line[l].addr &&
					    o->line[m].port == c->line[l].port)
						report(e, p, "%s is already line %c of feed %s", ep,
						       'A' + m, o->name);
			}
		}
		if (c->port == UINT16_MAX) {
			/* unknown name, already reported */
		} else if (c->port >= cfg->nports) {
			report(e, F("port"), "port %u does not exist", c->port);
		} else if (c->queue >= cfg->ports[c->port].rx_queues) {
			report(e, F("queue"), "queue %u does not exist on port %s (it has %u rx queues)",
			       c->queue, cfg->ports[c->port].name, cfg->ports[c->port].rx_queues);
		} else if (poller_of(cfg, c->port, c->queue) < 0) {
			report(e, F("queue"), "port %s queue %u is not polled by any worker",
			       cfg->ports[c->port].name, c->queue);
		}
		check_range(e, F("book.max_orders"), c->max_orders, 1024, 268435456);
		if (c->order_ring) /* 0: the power of two at or above 4 x max_orders */
			check_pow2(e, F("book.order_ring"), c->order_ring, 1024, 1073741824);
		check_range(e, F("book.max_levels"), c->max_levels, 1024, 67108864);
		check_range(e, F("book.max_symbols"), c->max_symbols, 1, 65536);
		check_range(e, F("book.snapshot_depth"), c->snapshot_depth, 1, 32);
		check_range(e, F("recovery.gap_timeout_ms"), c->gap_timeout_ms, 1, 60000);
		check_range(e, F("recovery.line_silence_ms"), c->line_silence_ms, 10, 600000);
		check_range(e, F("recovery.reorder_buffer"), c->reorder_buffer, 0, 1048576);
		if (c->rerequest.addr && !c->rerequest_source.addr)
			report(e, F("recovery.source"), "required with recovery.rerequest: the address responses come back to");
#undef F
	}
}

static void check_rest(struct errs *e, const struct wb_config *cfg)
{
	const struct wb_capture_conf *c = &cfg->capture;

	if (!cfg->file_prefix[0])
		report(e, "dpdk.file_prefix", "must not be empty");
	if (cfg->neal_args > WB_MAX_EAL_ARGS)
		report(e, "dpdk.eal_args", "too many arguments (%u, at most %d)", cfg->neal_args,
		       WB_MAX_EAL_ARGS);
	if (!c->directory[0])
		report(e, "capture.directory", "must not be empty");
	check_range(e, "capture.zstd_level", c->zstd_level, -7, 19);
	check_range(e, "capture.block_bytes", c->block_bytes, 65536, 67108864);
	if (c->block_bytes % 64)
		report(e, "capture.block_bytes", "%u is not a multiple of 64 (the event size)",
		       c->block_bytes);
	check_range(e, "capture.rotate_bytes", (int64_t)c->rotate_bytes, 1048576,
		    1099511627776LL);
	check_range(e, "capture.rotate_seconds", c->rotate_seconds, 0, 86400);
	check_range(e, "capture.durability_ms", c->durability_ms, 1, 60000);
	check_range(e, "capture.retention_hours", c->retention_hours, 0, 87600);
	check_range(e, "capture.queue_depth", c->queue_depth, 1, 256);
	if (!cfg->control.socket[0])
		report(e, "control.socket", "must not be empty");
	if (cfg->control.mode > 0777)
		report(e, "control.mode", "0%o is out of range (0..0777)", cfg->control.mode);
	check_range(e, "control.metrics_interval_ms", cfg->control.metrics_interval_ms, 100,
		    3600000);
}

static void validate(struct errs *e, const struct wb_config *cfg, unsigned ncores)
{
	if (cfg->nports == 0)
		report(e, "ports", "needs at least one entry");
	if (cfg->nports > WB_MAX_PORTS || cfg->nworkers > WB_MAX_WORKERS ||
	    cfg->npersisters > WB_MAX_PERSISTERS || cfg->nfeeds > WB_MAX_FEEDS) {
		report(e, "(document)", "more ports, workers, persisters or feeds than supported");
		return;
	}
	if (cfg->nworkers == 0)
		report(e, "cores.workers", "needs at least one entry");
	check_ports(e, cfg);
	check_threads(e, cfg, ncores);
	check_feeds(e, cfg);
	check_rest(e, cfg);
}

/* Feed -> the worker that polls its port/queue. */
static void derive(struct wb_config *cfg)
{
	for (unsigned i = 0; i < cfg->nfeeds && i < WB_MAX_FEEDS; i++)
		cfg->feeds[i].worker = poller_of(cfg, cfg->feeds[i].port, cfg->feeds[i].queue);
}

int wb_config_validate(const struct wb_config *cfg, unsigned ncores, char *err, size_t errlen)
{
	struct errs e;

	errs_init(&e, err, errlen, cfg->path[0] ? cfg->path : "config", NULL);
	validate(&e, cfg, ncores);
	return e.count ? -EINVAL : 0;
}

int wb_config_resolve(struct wb_config *cfg, unsigned ncores, char *err, size_t errlen)
{
	int rc = wb_config_validate(cfg, ncores, err, errlen);

	if (rc == 0)
		derive(cfg);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Load                                                                */

static long line_number(const char *msg, size_t file_len)
{
	return strtol(msg + file_len + 1, NULL, 10);
}

/* Orders the collected lines by line number (stable), as an editor would walk them. */
static void sort_errors(struct errs *e)
{
	size_t flen = strlen(e->file), n = 0;
	char *lines[MAX_REPORTED + 1];
	char *copy, *tok, *save = NULL;

	if (!e->buf || !e->used)
		return;
	copy = strdup(e->buf);
	if (!copy)
		return;
	for (tok = strtok_r(copy, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
		if (n == MAX_REPORTED + 1)
			goto out_copy; /* more than we track: leave them in discovery order */
		lines[n++] = tok;
	}
	for (size_t i = 1; i < n; i++) {
		char *cur = lines[i];
		size_t j = i;
		while (j > 0 && line_number(lines[j - 1], flen) > line_number(cur, flen)) {
			lines[j] = lines[j - 1];
			j--;
		}
		lines[j] = cur;
	}
	e->used = 0;
	for (size_t i = 0; i < n; i++)
		e->used += (size_t)snprintf(e->buf + e->used, e->len - e->used, "%s\n", lines[i]);
out_copy:
	free(copy);
}

int wb_config_load(const char *path, unsigned ncores, struct wb_config *cfg, char *err,
		   size_t errlen)
{
	struct line_map lines = { 0 };
	struct cy_log log = { 0 };
	cyaml_config_t cy = {
		.log_fn = cy_log_fn,
		.log_ctx = &log,
		.mem_fn = cyaml_mem,
		.log_level = CYAML_LOG_ERROR,
		.flags = CYAML_CFG_NO_ALIAS,
	};
	struct y_top *y = NULL;
	struct errs e;
	cyaml_err_t cerr;
	FILE *f;
	int rc;

	wb_config_defaults(cfg);
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	errs_init(&e, err, errlen, path, NULL);

	f = fopen(path, "r");
	if (!f) {
		rc = -errno;
		report_line(&e, 0, "(file)", "cannot open: %s", strerror(-rc));
		return rc;
	}
	rc = line_map_build(&lines, f, &e);
	fclose(f);
	if (rc)
		goto out_lines;
	e.lines = &lines;

	cerr = cyaml_load_file(path, &cy, &top_schema, (cyaml_data_t **)&y, NULL);
	if (cerr != CYAML_OK) {
		cy_report(&e, &log, cerr);
		rc = cerr == CYAML_ERR_OOM ? -ENOMEM : -EINVAL;
		goto out_lines;
	}
	if (!y) {
		report_line(&e, 1, "(document)", "the file is empty");
		rc = -EINVAL;
		goto out_lines;
	}

	convert(&e, y, cfg);
	validate(&e, cfg, ncores);
	sort_errors(&e);
	if (e.count == 0)
		derive(cfg);
	rc = e.count ? -EINVAL : 0;
	cyaml_free(&cy, &top_schema, y, 0);
out_lines:
	free(lines.e);
	return rc;
}
