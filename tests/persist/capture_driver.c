/* Test driver: pushes generated events through a real ring and persister at full speed
 * and prints each block's sequence range once the persister reports it durable:
 *   D <stream> <seq_first> <seq_last>
 * Used by the crash (kill -9) and full-disk tests. --recover only runs create's recovery. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capfile.h"
#include "capture.h"

static void on_durable(void *arg, const struct wb_persist_durable *d)
{
	(void)arg;
	char line[128];
	int n = snprintf(line, sizeof(line), "D %u %llu %llu\n", d->stream, (unsigned long long)d->seq_first,
			 (unsigned long long)d->seq_last);
	/* unbuffered: a line written before kill -9 must be in the file. A line being written
	 * when the kill lands may be cut short at a page boundary (the kernel stops a write
	 * between pages on a fatal signal): readers take only newline-terminated lines. */
	if (write(1, line, (size_t)n) != n)
		abort();
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

int main(int argc, char **argv)
{
	struct wb_capture_conf cap = { .zstd_level = 1, .block_bytes = 64 << 10, .rotate_bytes = 4 << 20,
				       .durability = WB_DURABLE_BLOCK, .queue_depth = 4 };
	uint64_t events = 0, seq = 1;
	bool recover = false, random_aux = false, noise = false, free_when_full = false, freed = false;
	static const struct option opts[] = {
		{ "events", required_argument, 0, 'n' },     { "durability", required_argument, 0, 'd' },
		{ "rotate-bytes", required_argument, 0, 'r' }, { "block-bytes", required_argument, 0, 'b' },
		{ "recover", no_argument, 0, 'R' },          { "random", no_argument, 0, 'x' },
		{ "seq", required_argument, 0, 's' },        { "retention-bytes", required_argument, 0, 'k' },
		{ "free-when-full", no_argument, 0, 'F' },  { "noise", no_argument, 0, 'N' },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n': events = strtoull(optarg, NULL, 10); break;
		case 'd':
			cap.durability = !strcmp(optarg, "none") ? WB_DURABLE_NONE
					 : !strcmp(optarg, "interval") ? WB_DURABLE_INTERVAL : WB_DURABLE_BLOCK;
			cap.durability_ms = 10;
			break;
		case 'r': cap.rotate_bytes = strtoull(optarg, NULL, 10); break;
		case 'b': cap.block_bytes = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'R': recover = true; break;
		case 'x': random_aux = true; break;
		case 's': seq = strtoull(optarg, NULL, 10); break;
		case 'k': cap.retention_bytes = strtoull(optarg, NULL, 10); break;
		case 'F': free_when_full = true; break;
		case 'N': noise = true; break;
		default: return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: capture_driver [options] DIR\n");
		return 2;
	}
	snprintf(cap.directory, sizeof(cap.directory), "%s", argv[optind]);
	const char *names[] = { "itch" }, *protos[] = { "itch50-moldudp64" };
	struct wb_persister_opts o = { .cap = &cap, .name = "drv", .core = UINT_MAX, .nfeeds = 1, .feed_names = names,
				       .feed_protocols = protos, .price_decimals = 4, .on_durable = on_durable };
	struct wb_persister *p;
	int ret = wb_persister_create(&o, &p);
	if (ret) {
		fprintf(stderr, "capture_driver: create: %s\n", strerror(-ret));
		return 1;
	}
	if (recover) {
		wb_persister_destroy(p);
		return 0;
	}
	struct wb_evring ring;
	if (wb_evring_init(&ring, 1 << 14, NULL) || wb_persister_attach(p, &ring, "w0") || wb_persister_start(p))
		return 1;
	struct wb_event batch[16];
	uint64_t pushed = 0, first = seq;
	while (!events || pushed < events) {
		/* the driver is no dataplane: it waits for room, so the capture has no drop markers */
		if (wb_evring_count(&ring) + 16 > ring.size) {
			usleep(10);
			continue;
		}
		for (int i = 0; i < 16; i++) {
			struct wb_event *e = &batch[i];
			memset(e, 0, sizeof(*e));
			e->seq = seq++;
			e->ts_exch = 34200000000000ull + e->seq * 1000;
			e->ts_recv = 1700000000000000000ull + e->seq * 997;
			e->type = (uint8_t)(1 + e->seq % 5);
			e->side = e->seq & 1 ? 'B' : 'S';
			e->locate = (uint16_t)(1 + e->seq % 8);
			e->ref = e->seq * 4;
			e->price = 1000000 + (int64_t)(e->seq % 100) * 100;
			e->shares = 100;
			e->aux = random_aux ? next_rand() : e->seq;
			if (noise) {
				/* every field random: zstd cannot shrink it, blocks are stored uncompressed */
				uint8_t *b = (uint8_t *)e;
				for (size_t k = 0; k < sizeof(*e); k += 8) {
					uint64_t r = next_rand();
					memcpy(b + k, &r, 8);
				}
				if (e->type == WB_EV_SYMBOL || e->type == WB_EV_DROP || e->type == WB_EV_GAP)
					e->type = WB_EV_OTHER;
			}
		}
		wb_evring_push(&ring, batch, 16);
		pushed += 16;
		if (free_when_full && !freed && pushed % 65536 == 0) {
			/* once the disk has filled, an operator frees the oldest half of the files */
			struct wb_persist_stats s;
			wb_persister_stats(p, &s);
			char **files;
			size_t nn;
			if (s.events_lost_disk && wb_cap_list_dir(cap.directory, &files, &nn) == 0) {
				for (size_t i = 0; i < nn / 2; i++) {
					char path[PATH_MAX + 256];
					snprintf(path, sizeof(path), "%s/%s", cap.directory, files[i]);
					unlink(path);
				}
				printf("FREED %zu files\n", nn / 2);
				fflush(stdout);
				wb_cap_names_free(files, nn);
				freed = true;
				usleep(300000); /* the persister retries opening a file every 200 ms */
			}
		}
	}
	ret = wb_persister_stop(p);
	struct wb_persist_stats st;
	wb_persister_stats(p, &st);
	printf("STATS pushed=%llu events_in=%llu events_lost_disk=%llu write_errors=%llu blocks_written=%llu "
	       "files_written=%llu files_removed=%llu first_seq=%llu last_seq=%llu ring_drops=%llu drop_markers=%llu\n",
	       (unsigned long long)pushed, (unsigned long long)st.events_in, (unsigned long long)st.events_lost_disk,
	       (unsigned long long)st.write_errors, (unsigned long long)st.blocks_written,
	       (unsigned long long)st.files_written, (unsigned long long)st.files_removed_retention,
	       (unsigned long long)first, (unsigned long long)(seq - 1), (unsigned long long)ring.drop_events,
	       (unsigned long long)st.drop_markers_written);
	fflush(stdout);
	wb_persister_destroy(p);
	free(ring.slots);
	return st.events_in == pushed ? 0 : 1;
}
