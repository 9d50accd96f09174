/* A control plane with no socket and no dataplane over the demo config, with a fake
 * "stats" command whose counts the tests know. */
#ifndef WB_CTL_FIXTURE_H
#define WB_CTL_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static json_t *fake_stats(void *arg, json_t *req, char *err, size_t errlen)
{
	(void)arg, (void)req, (void)err, (void)errlen;
	return json_loads("{\"ports\":[{\"name\":\"wire0\",\"rx_packets_total\":10,\"rx_missed_total\":2,"
			  "\"rx_nombuf_total\":1}],"
			  "\"workers\":[{\"name\":\"w0\",\"busy_ratio\":0.25,\"ring_high_water_events\":7,"
			  "\"packets\":{\"feed_packets_total\":9}}],"
			  "\"unmatched_packets_total\":1,"
			  "\"latency_rx_to_book\":{\"count\":4,\"p50_ns\":1000,\"p99_ns\":2000,\"p999_ns\":3000,"
			  "\"max_ns\":4000},"
			  "\"feeds\":[{\"name\":\"nasdaq-itch\",\"lines\":{\"A\":{\"packets_total\":5,\"endpoint\":\"x\"}},"
			  "\"counters\":{\"messages_total\":42,\"gaps_total\":3},\"books\":{\"symbols\":2}}],"
			  "\"persisters\":[{\"name\":\"pz0\",\"bytes_in_total\":640,\"bytes_out_total\":64,"
			  "\"compression_ratio\":10.0,\"durable_lag_ns\":1500000}]}",
			  0, NULL);
}

static json_t *fake_freeze(void *arg, json_t *req, char *err, size_t errlen)
{
	(void)arg, (void)err, (void)errlen;
	return json_pack("{s:O}", "symbol", json_object_get(req, "symbol"));
}

/* The demo config with this suffix applied (sed-like "old\0new" pairs), written to path. */
static int write_demo(const char *path, const char *const *edits, int nedits)
{
	const char *src = getenv("WB_SOURCE_DIR");
	char in[4096];
	snprintf(in, sizeof(in), "%s/examples/demo.yaml", src ? src : ".");
	FILE *f = fopen(in, "r");
	if (!f)
		return -1;
	static char text[65536];
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = 0;
	for (int i = 0; i < nedits; i += 2) {
		char *at = strstr(text, edits[i]);
		if (!at)
			return -1;
		static char tmp[65536];
		snprintf(tmp, sizeof(tmp), "%.*s%s%s", (int)(at - text), text, edits[i + 1], at + strlen(edits[i]));
		memcpy(text, tmp, sizeof(text));
	}
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	fclose(f);
	return 0;
}

struct fixture {
	struct wb_config *cfg;
	struct wb_ctl *ctl;
	char path[64];
};

static int fixture_open(struct fixture *fx)
{
	/* A capture directory that cannot exist: the demo's may, on a machine that ran it. */
	static const char *const edits[] = { "/tmp/wirebook-demo/capture", "/nonexistent/wbctltest/capture" };
	char err[8192];
	snprintf(fx->path, sizeof(fx->path), "/tmp/wbctltest.%d.yaml", (int)getpid());
	if (write_demo(fx->path, edits, 2) < 0)
		return -1;
	fx->cfg = calloc(1, sizeof(*fx->cfg));
	if (!fx->cfg || wb_config_load(fx->path, 2, fx->cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s", err);
		return -1;
	}
	struct wb_ctl_opts o = { .cfg = fx->cfg, .config_path = fx->path, .ncores = 2 };
	if (wb_ctl_create(&o, &fx->ctl, err, sizeof(err)) < 0)
		return -1;
	struct wb_ctl_cmd stats = { "stats", false, fake_stats, NULL, "fake" };
	struct wb_ctl_cmd freeze = { "freeze", true, fake_freeze, NULL, "fake" };
	wb_ctl_register(fx->ctl, &stats);
	wb_ctl_register(fx->ctl, &freeze);
	return 0;
}

static void fixture_close(struct fixture *fx)
{
	wb_ctl_destroy(fx->ctl);
	free(fx->cfg);
	unlink(fx->path);
}

#endif
