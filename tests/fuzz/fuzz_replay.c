/* Replay driver for fuzz_mold_itch.c without libFuzzer: seeded random mutations of the real
 * OMI TotalView packets (plus one synthetic packet carrying all 23 ITCH types), each fed to
 * LLVMFuzzerTestOneInput in a heap buffer of exactly its size so ASan sees any overread.
 *
 *   test_parsers_fuzz_replay [--iterations N] [--seed S]
 *   test_parsers_fuzz_replay --write-seeds DIR     seed corpus for the libFuzzer build
 *
 * Exit 0 pass (a failed property aborts), 77 when the captures are missing, 2 on usage/IO. */
#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itch.h"
#include "mold.h"
#include "pcap_udp.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEEDS 256
#define MAX_PKT 2048

struct seed {
	uint8_t *data;
	size_t len;
};

static struct seed seeds[MAX_SEEDS];
static size_t nseeds;
static uint64_t rng_state;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static int add_seed(const uint8_t *p, size_t len)
{
	if (nseeds == MAX_SEEDS || len > MAX_PKT)
		return -ENOSPC;
	seeds[nseeds].data = malloc(len ? len : 1);
	if (!seeds[nseeds].data)
		return -ENOMEM;
	memcpy(seeds[nseeds].data, p, len);
	seeds[nseeds].len = len;
	nseeds++;
	return 0;
}

static int load_captures(const char *shared)
{
	char pattern[4096];
	glob_t g;
	int ret = 0;

	snprintf(pattern, sizeof(pattern), "%s/data/omi/Nasdaq/*TotalView*/*.pcap", shared);
	if (glob(pattern, 0, NULL, &g) != 0)
		return -ENOENT;
	for (size_t i = 0; i < g.gl_pathc && ret == 0; i++) {
		struct wb_pcap_udp *pu;
		const uint8_t *pl;
		size_t len;
		uint64_t frame;

		ret = wb_pcap_udp_open(g.gl_pathv[i], &pu);
		if (ret < 0)
			break;
		while (ret == 0 && wb_pcap_udp_next(pu, &pl, &len, &frame) == 1)
			ret = add_seed(pl, len);
		wb_pcap_udp_close(pu);
	}
	globfree(&g);
	return ret;
}

/* One Mold packet with a random-valued message of every type, then a heartbeat and an
 * end of session: the captures lack R, V, W, K, h, B, N and O. */
static int add_synthetic(void)
{
	static const char types[] = "SRHYLVWKJhAFECXDUPQBINO";
	uint8_t pkt[MAX_PKT];
	size_t n = wb_mold_build_request(pkt, "SYNTH00001", 1, (uint16_t)(sizeof(types) - 1));
	int ret;

	for (size_t i = 0; i < sizeof(types) - 1; i++) {
		size_t len = wb_itch_msg_len((uint8_t)types[i]);
		wb_put_be16(pkt + n, (uint16_t)len);
		for (size_t k = 0; k < len; k++)
			pkt[n + 2 + k] = (uint8_t)rng();
		pkt[n + 2] = (uint8_t)types[i];
		n += 2 + len;
	}
	ret = add_seed(pkt, n);
	if (ret < 0)
		return ret;
	n = wb_mold_build_request(pkt, "SYNTH00001", 24, WB_MOLD_HEARTBEAT);
	ret = add_seed(pkt, n);
	if (ret < 0)
		return ret;
	n = wb_mold_build_request(pkt, "SYNTH00001", 24, WB_MOLD_END_OF_SESSION);
	return add_seed(pkt, n);
}

static const uint16_t lengths[] = { 0, 1, 2, 11, 12, 18, 19, 20, 35, 36, 39, 40, 49, 50, 0x7fff, 0xfffe, 0xffff };
static const char itch_types[] = "SRHYLVWKJhAFECXDUPQBINO";

/* Positions of the block length fields of a well-formed seed (targets for mutation). */
static size_t block_offsets(const uint8_t *p, size_t len, size_t *out, size_t max)
{
	size_t n = 0, off = WB_MOLD_HDR_LEN;
	while (n < max && off + 2 <= len) {
		out[n++] = off;
		off += 2 + wb_be16(p + off);
	}
	return n;
}

static size_t mutate(uint8_t *buf, size_t len, const struct seed *other)
{
	size_t pos = len ? rng() % len : 0;
	size_t offs[64], nb;

	switch (rng() % 11) {
	case 0: /* bit flip */
		if (len)
			buf[pos] ^= (uint8_t)(1u << (rng() % 8));
		break;
	case 1: /* interesting byte */
		if (len) {
			static const uint8_t v[] = { 0, 1, 0x20, 0x7f, 0x80, 0xff };
			buf[pos] = v[rng() % sizeof(v)];
		}
		break;
	case 2: /* interesting 16-bit value anywhere */
		if (len >= 2) {
			pos = rng() % (len - 1);
			wb_put_be16(buf + pos, lengths[rng() % (sizeof(lengths) / sizeof(lengths[0]))]);
		}
		break;
	case 3: /* truncate */
		len = len ? rng() % len : 0;
		break;
	case 4: { /* append random bytes */
		size_t add = 1 + rng() % 64;
		if (len + add > MAX_PKT)
			add = MAX_PKT - len;
		for (size_t i = 0; i < add; i++)
			buf[len + i] = (uint8_t)rng();
		len += add;
		break;
	}
	case 5: /* insert one byte */
		if (len < MAX_PKT) {
			memmove(buf + pos + 1, buf + pos, len - pos);
			buf[pos] = (uint8_t)rng();
			len++;
		}
		break;
	case 6: /* delete a span */
		if (len) {
			size_t cut = 1 + rng() % (len - pos);
			memmove(buf + pos, buf + pos + cut, len - pos - cut);
			len -= cut;
		}
		break;
	case 7: { /* splice: our prefix, another packet's suffix */
		size_t from = other->len ? rng() % other->len : 0;
		size_t take = other->len - from;
		if (pos + take > MAX_PKT)
			take = MAX_PKT - pos;
		memcpy(buf + pos, other->data + from, take);
		len = pos + take;
		break;
	}
	case 8: /* Mold message count */
		if (len >= WB_MOLD_HDR_LEN)
			wb_put_be16(buf + 18, lengths[rng() % (sizeof(lengths) / sizeof(lengths[0]))]);
		break;
	case 9: /* block length off by a little or a lot */
		nb = block_offsets(buf, len, offs, 64);
		if (nb) {
			size_t o = offs[rng() % nb];
			uint16_t l = wb_be16(buf + o);
			int d = (int)(rng() % 5) - 2;
			wb_put_be16(buf + o, (rng() & 1) ? (uint16_t)(l + d) : lengths[rng() % (sizeof(lengths) / sizeof(lengths[0]))]);
		}
		break;
	case 10: /* a block's type byte becomes another (known or not) type */
		nb = block_offsets(buf, len, offs, 64);
		if (nb) {
			size_t o = offs[rng() % nb] + 2;
			if (o < len)
				buf[o] = (rng() & 3) ? (uint8_t)itch_types[rng() % (sizeof(itch_types) - 1)] : (uint8_t)rng();
		}
		break;
	}
	return len;
}

static int write_seeds(const char *dir)
{
	char path[4096];
	for (size_t i = 0; i < nseeds; i++) {
		snprintf(path, sizeof(path), "%s/seed-%03zu", dir, i);
		FILE *f = fopen(path, "wb");
		if (!f) {
			fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
			return 2;
		}
		if (fwrite(seeds[i].data, 1, seeds[i].len, f) != seeds[i].len) {
			fclose(f);
			return 2;
		}
		fclose(f);
	}
	printf("fuzz_replay: wrote %zu seeds to %s\n", nseeds, dir);
	return 0;
}

int main(int argc, char **argv)
{
	const char *env = getenv("WB_SHARED_DIR"), *src = getenv("WB_SOURCE_DIR"), *seed_dir = NULL;
	uint64_t iterations = 200000, seed = 1;
	static uint8_t buf[MAX_PKT + 64];
	char shared[2048];
	int ret;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--iterations") && i + 1 < argc)
			iterations = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--write-seeds") && i + 1 < argc)
			seed_dir = argv[++i];
		else {
			fprintf(stderr, "usage: %s [--iterations N] [--seed S] [--write-seeds DIR]\n", argv[0]);
			return 2;
		}
	}
	if (env)
		snprintf(shared, sizeof(shared), "%s", env);
	else
		snprintf(shared, sizeof(shared), "%s/../shared", src ? src : ".");

	rng_state = seed * 0x9e3779b97f4a7c15ULL + 1;
	ret = load_captures(shared);
	if (ret < 0 || nseeds == 0) {
		fprintf(stderr, "SKIP: no OMI TotalView captures under %s/data/omi/Nasdaq (set WB_SHARED_DIR)\n", shared);
		return 77;
	}
	size_t real = nseeds;
	if (add_synthetic() < 0)
		return 2;
	if (seed_dir)
		return write_seeds(seed_dir);

	/* The unmutated seeds must pass first: they are well formed. */
	for (size_t i = 0; i < nseeds; i++)
		LLVMFuzzerTestOneInput(seeds[i].data, seeds[i].len);

	for (uint64_t it = 0; it < iterations; it++) {
		const struct seed *s = &seeds[rng() % nseeds];
		size_t len = s->len;
		memcpy(buf, s->data, len);
		for (unsigned k = 1 + rng() % 4; k; k--)
			len = mutate(buf, len, &seeds[rng() % nseeds]);
		uint8_t *exact = malloc(len ? len : 1);
		if (!exact)
			return 2;
		memcpy(exact, buf, len);
		LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	printf("fuzz_replay: %zu real + %zu synthetic seeds, %" PRIu64 " mutations (seed %" PRIu64 "), no property failed\n",
	       real, nseeds - real, iterations, seed);
	for (size_t i = 0; i < nseeds; i++)
		free(seeds[i].data);
	return 0;
}
