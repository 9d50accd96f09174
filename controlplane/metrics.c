/* Prometheus text exposition (format 0.0.4) of the stats object. Every metric is named
 * wirebook_<scope>_<key> with the unit in the name; _ns values become _seconds; keys
 * ending _total are counters, the rest gauges; latency histograms become summaries.
 * Samples of one family are grouped under one HELP and one TYPE line. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

/* Families in first-seen order: name -> {"help","type","samples"}. */
struct expo {
	json_t *families;
};

static const struct {
	const char *key, *help;
} helps[] = {
	{ "rx_packets_total", "packets received" },
	{ "rx_bytes_total", "bytes received" },
	{ "rx_missed_total", "packets the NIC dropped for lack of rx descriptors (imissed)" },
	{ "rx_nombuf_total", "packets dropped for lack of mbufs (rx_nombuf)" },
	{ "rx_errors_total", "receive errors" },
	{ "busy_ratio", "share of polling time spent on packets (0..1)" },
	{ "ring_high_water_events", "highest occupancy of the event ring" },
	{ "ring_occupancy_events", "events in the event ring now" },
	{ "ring_drops_events_total", "events dropped because the event ring was full" },
	{ "ring_waits_total", "replay: event flushes that waited for room in the event ring instead of dropping" },
	{ "ring_wait_ns_total", "replay: time the worker waited for room in the event ring" },
	{ "bytes_in_total", "uncompressed bytes handed to the persister" },
	{ "bytes_out_total", "compressed bytes written" },
	{ "compression_ratio", "bytes in divided by bytes out" },
	{ "durable_lag_seconds", "age of the oldest event not yet durable" },
	{ "messages_total", "messages applied" },
	{ "gaps_total", "sequence gaps opened" },
	{ "integrity_events_total", "book integrity events" },
	{ "orders_added_total", "orders added to the books (A, F, and the new order of a replace)" },
	{ "survivor_moves_total", "orders still live a ring of references later, moved to the survivor table (raise book.order_ring when many per add)" },
	{ "denied_total", "requests refused by the access control list" },
};

static void help_for(const char *scope, const char *key, char *out, size_t n)
{
	for (size_t i = 0; i < sizeof(helps) / sizeof(helps[0]); i++) {
		if (!strcmp(helps[i].key, key)) {
			snprintf(out, n, "%s: %s", scope, helps[i].help);
			return;
		}
	}
	/* The key already says what it counts and in which unit. */
	snprintf(out, n, "%s: %s", scope, key);
	for (char *p = out + strlen(scope) + 2; *p; p++)
		if (*p == '_')
			*p = ' ';
}

static void sanitize(char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
			*s = '_';
}

/* Label values: backslash, double quote and newline escaped. */
static void label_escape(const char *in, char *out, size_t n)
{
	size_t o = 0;
	for (; *in && o + 3 < n; in++) {
		if (*in == '\\' || *in == '"') {
			out[o++] = '\\';
			out[o++] = *in;
		} else if (*in == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *in;
		}
	}
	out[o] = 0;
}

static void add_sample(struct expo *x, const char *family, const char *type, const char *help, const char *labels,
		       const char *suffix, double v)
{
	json_t *f = json_object_get(x->families, family);
	if (!f) {
		f = json_pack("{s:s,s:s,s:s}", "help", help, "type", type, "samples", "");
		json_object_set_new(x->families, family, f);
	}
	char line[1024];
	if (v == (double)(long long)v && v < 9e15 && v > -9e15)
		snprintf(line, sizeof(line), "%s%s%s %lld\n", family, suffix, labels, (long long)v);
	else
		snprintf(line, sizeof(line), "%s%s%s %.9g\n", family, suffix, labels, v);
	const char *old = json_string_value(json_object_get(f, "samples"));
	char *joined;
	if (asprintf(&joined, "%s%s", old, line) < 0)
		return;
	json_object_set_new(f, "samples", json_string(joined));
	free(joined);
}

/* Every number in o becomes wirebook_<scope>_<key>{labels}. */
static void add_numbers(struct expo *x, const char *scope, json_t *o, const char *labels)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v) {
		if (!json_is_number(v))
			continue;
		char key[128], fam[256], help[256];
		snprintf(key, sizeof(key), "%s", k);
		double val = json_number_value(v);
		size_t kl = strlen(key);
		if (kl > 3 && !strcmp(key + kl - 3, "_ns")) {
			snprintf(key + kl - 3, sizeof(key) - (kl - 3), "_seconds");
			val /= 1e9;
		} else if (kl > 9 && !strcmp(key + kl - 9, "_ns_total")) {
			snprintf(key + kl - 9, sizeof(key) - (kl - 9), "_seconds_total");
			val /= 1e9;
		}
		bool counter = strlen(key) > 6 && !strcmp(key + strlen(key) - 6, "_total");
		snprintf(fam, sizeof(fam), "wirebook_%s_%s", scope, key);
		sanitize(fam);
		help_for(scope, key, help, sizeof(help));
		add_sample(x, fam, counter ? "counter" : "gauge", help, labels, "", val);
	}
}

static void add_latency(struct expo *x, const char *family, const char *help, json_t *lat, const char *labels)
{
	static const struct {
		const char *key, *q;
	} qs[] = { { "p50_ns", "0.5" }, { "p99_ns", "0.99" }, { "p999_ns", "0.999" }, { "max_ns", "1" } };
	if (!lat)
		return;
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		char lb[512];
		if (labels[0])
			snprintf(lb, sizeof(lb), "%.*s,quantile=\"%s\"}", (int)strlen(labels) - 1, labels, qs[i].q);
		else
			snprintf(lb, sizeof(lb), "{quantile=\"%s\"}", qs[i].q);
		add_sample(x, family, "summary", help, lb, "",
			   (double)json_integer_value(json_object_get(lat, qs[i].key)) / 1e9);
	}
	add_sample(x, family, "summary", help, labels, "_count", (double)json_integer_value(json_object_get(lat, "count")));
}

static void label1(char *out, size_t n, const char *k, const char *v)
{
	char e[256];
	label_escape(v ? v : "", e, sizeof(e));
	snprintf(out, n, "{%s=\"%s\"}", k, e);
}

char *wb_metrics_render(json_t *stats)
{
	struct expo x = { json_object() };
	char lb[512], lb2[512];
	size_t i;
	json_t *o;
	json_array_foreach(json_object_get(stats, "ports"), i, o) {
		label1(lb, sizeof(lb), "port", json_string_value(json_object_get(o, "name")));
		add_numbers(&x, "port", o, lb);
	}
	json_array_foreach(json_object_get(stats, "workers"), i, o) {
		label1(lb, sizeof(lb), "worker", json_string_value(json_object_get(o, "name")));
		add_numbers(&x, "worker", o, lb);
		add_numbers(&x, "worker", json_object_get(o, "packets"), lb);
	}
	json_t *un = json_object_get(stats, "unmatched_packets_total");
	if (un)
		add_sample(&x, "wirebook_unmatched_packets_total", "counter",
			   "valid UDP packets to no configured feed line", "", "", json_number_value(un));
	add_latency(&x, "wirebook_rx_to_book_latency_seconds", "receive to book updated, per packet",
		    json_object_get(stats, "latency_rx_to_book"), "");
	add_latency(&x, "wirebook_book_to_durable_latency_seconds", "book updated to durable on disk, per block",
		    json_object_get(stats, "latency_book_to_durable"), "");
	json_array_foreach(json_object_get(stats, "feeds"), i, o) {
		const char *feed = json_string_value(json_object_get(o, "name"));
		label1(lb, sizeof(lb), "feed", feed);
		add_numbers(&x, "feed", json_object_get(o, "counters"), lb);
		add_numbers(&x, "book", json_object_get(o, "books"), lb);
		const char *ln;
		json_t *l;
		json_object_foreach(json_object_get(o, "lines"), ln, l) {
			char fe[256], le[16];
			label_escape(feed ? feed : "", fe, sizeof(fe));
			label_escape(ln, le, sizeof(le));
			snprintf(lb2, sizeof(lb2), "{feed=\"%s\",line=\"%s\"}", fe, le);
			add_numbers(&x, "line", l, lb2);
		}
	}
	json_array_foreach(json_object_get(stats, "persisters"), i, o) {
		label1(lb, sizeof(lb), "persister", json_string_value(json_object_get(o, "name")));
		add_numbers(&x, "persister", o, lb);
	}
	add_numbers(&x, "control", json_object_get(stats, "control"), "");

	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m) {
		json_decref(x.families);
		return NULL;
	}
	const char *fam;
	json_t *f;
	json_object_foreach(x.families, fam, f) {
		fprintf(m, "# HELP %s %s\n# TYPE %s %s\n%s", fam, json_string_value(json_object_get(f, "help")), fam,
			json_string_value(json_object_get(f, "type")), json_string_value(json_object_get(f, "samples")));
	}
	fclose(m);
	json_decref(x.families);
	return buf;
}

int wb_metrics_write_file(const char *path, json_t *stats)
{
	int ret = 0;
	char *text = wb_metrics_render(stats);
	if (!text)
		return -ENOMEM;
	char tmp[PATH_MAX + 16];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	/* node_exporter must never read a half-written file: write aside, then rename. */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = -errno;
		goto out_free;
	}
	size_t len = strlen(text), off = 0;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out_close;
		}
		off += (size_t)n;
	}
	if (close(fd) < 0) {
		ret = -errno;
		goto out_unlink;
	}
	if (rename(tmp, path) < 0) {
		ret = -errno;
		goto out_unlink;
	}
	goto out_free;
out_close:
	close(fd);
out_unlink:
	unlink(tmp);
out_free:
	free(text);
	return ret;
}
