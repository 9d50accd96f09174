/* Drives the fuzz target's entry point with 100k seeded mutations of valid requests
 * (byte flips, truncations, splices, inserted JSON tokens) under ASan+UBSan, so the
 * request parser is fuzzed in every build, clang or not. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const seeds[] = {
	"{\"cmd\":\"status\"}",
	"{\"cmd\":\"stats\"}",
	"{\"cmd\":\"metrics\"}",
	"{\"cmd\":\"config_show\"}",
	"{\"cmd\":\"reload\"}",
	"{\"cmd\":\"help\"}",
	"{\"cmd\":\"book\",\"symbol\":\"AAPL\",\"depth\":5}",
	"{\"cmd\":\"symbols\",\"limit\":10}",
	"{\"cmd\":\"freeze\",\"symbol\":\"MSFT\"}",
	"{\"cmd\":\"reset\",\"symbol\":\"MSFT\"}",
	"{\"cmd\":\"replay\",\"symbol\":\"AAPL\",\"from\":\"09:30:00\",\"to\":\"2025-11-20T14:30:00.5Z\",\"format\":\"csv\"}",
	"{\"cmd\":\"replay\",\"symbol\":\"AAPL\",\"from\":\"1\",\"format\":\"jsonl\"}",
};

static const char *const tokens[] = { "{", "}", "[", "]", "\"", ":", ",", "null", "true", "1e999", "-0",
				      "\\u0000", "\\ud800", "\"cmd\"", "\"replay\"", "\"symbol\"", "99999999999999999999" };

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

int main(int argc, char **argv)
{
	unsigned long iters = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
	uint8_t buf[4096];
	size_t nseeds = sizeof(seeds) / sizeof(seeds[0]);
	for (size_t i = 0; i < nseeds; i++)
		LLVMFuzzerTestOneInput((const uint8_t *)seeds[i], strlen(seeds[i]));
	for (unsigned long it = 0; it < iters; it++) {
		const char *s = seeds[next() % nseeds];
		size_t n = strlen(s);
		memcpy(buf, s, n);
		int muts = 1 + (int)(next() % 4);
		for (int m = 0; m < muts; m++) {
			switch (next() % 5) {
			case 0: /* flip a byte */
				if (n)
					buf[next() % n] = (uint8_t)next();
				break;
			case 1: /* truncate */
				if (n)
					n = next() % n;
				break;
			case 2: { /* insert a token */
				const char *t = tokens[next() % (sizeof(tokens) / sizeof(tokens[0]))];
				size_t tl = strlen(t), at = n ? next() % (n + 1) : 0;
				if (n + tl < sizeof(buf)) {
					memmove(buf + at + tl, buf + at, n - at);
					memcpy(buf + at, t, tl);
					n += tl;
				}
				break;
			}
			case 3: { /* splice another seed's tail */
				const char *o = seeds[next() % nseeds];
				size_t ol = strlen(o), from = next() % ol, at = n ? next() % n : 0;
				if (at + ol - from < sizeof(buf)) {
					memcpy(buf + at, o + from, ol - from);
					n = at + ol - from;
				}
				break;
			}
			default: /* duplicate a range */
				if (n && n * 2 < sizeof(buf)) {
					size_t a = next() % n;
					memcpy(buf + n, buf + a, n - a);
					n += n - a;
				}
			}
		}
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("%lu mutated requests answered\n", iters);
	return 0;
}
