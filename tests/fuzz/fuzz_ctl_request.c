/* libFuzzer target for the control request path: one request line into wb_ctl_handle on
 * a control plane with no socket and no dataplane, first as root, then as an outsider. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static json_t *fuzz_stats(void *arg, json_t *req, char *err, size_t errlen)
{
	(void)arg, (void)req, (void)err, (void)errlen;
	return json_pack("{s:[{s:s,s:i}],s:{s:i,s:i,s:i,s:i,s:i}}", "feeds", "name", "f\"\\\n", "x_total", 1,
			 "latency_rx_to_book", "count", 1, "p50_ns", 1, "p99_ns", 2, "p999_ns", 3, "max_ns", 4);
}

static struct wb_ctl *fuzz_ctl(void)
{
	static struct wb_ctl *c;
	static struct wb_config cfg;
	if (c)
		return c;
	wb_config_defaults(&cfg);
	cfg.log_level = WB_LOG_ERROR;
	/* No config file: reload is refused; replay reads an empty directory. */
	snprintf(cfg.capture.directory, sizeof(cfg.capture.directory), "/nonexistent-wirebook-capture");
	struct wb_ctl_opts o = { .cfg = &cfg };
	char err[256];
	if (wb_ctl_create(&o, &c, err, sizeof(err)) < 0)
		abort();
	struct wb_ctl_cmd stats = { "stats", false, fuzz_stats, NULL, "" };
	wb_ctl_register(c, &stats);
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > WB_CTL_MAX_REQUEST)
		return 0;
	struct wb_ctl *c = fuzz_ctl();
	json_t *r = wb_ctl_handle(c, (const char *)data, size);
	if (!r || !json_object_get(r, "ok"))
		abort(); /* every request gets an answer with "ok" */
	json_decref(r);
	struct wb_ctl_peer nobody = { 65534, 65534 };
	r = wb_ctl_handle_peer(c, &nobody, (const char *)data, size);
	if (!r || !json_object_get(r, "ok"))
		abort();
	json_decref(r);
	return 0;
}
