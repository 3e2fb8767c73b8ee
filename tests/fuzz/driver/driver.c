/* Runs a fuzz target's LLVMFuzzerTestOneInput without libFuzzer, so the
 * default test run (gcc, no -fsanitize=fuzzer) exercises the parsers too:
 *
 *   driver [-n RUNS]          RUNS deterministic inputs (default 2000, or
 *                             CRYO_FUZZ_RUNS), made from the seed store
 *   driver FILE...            each file as one input (libFuzzer crash files)
 *   driver --seeds DIR        write a starting corpus for libFuzzer
 *   driver --save FILE ...    write each input to FILE before running it:
 *                             after a crash FILE holds the input that did it
 *
 * The inputs depend on the target (FUZZ_TARGET_IMAGE picks the patch-script
 * format of fuzz_store_image; else raw devices for fuzz_store_open): bit
 * flips biased to the superblock, slots and chunk summaries, overwritten
 * runs, truncations, patch scripts with and without checksum repair. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../fuzz_common.h"
#include "store/format.h"

#include "driver_rng.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


#ifdef FUZZ_TARGET_IMAGE
/* A patch script for fuzz_store_image. */
static size_t make_input(uint64_t *rs, unsigned i, uint8_t *buf, size_t cap)
{
	size_t n = 0;
	unsigned patches = 1 + (unsigned)(rnd(rs) % 4);

	(void)i;
	buf[n++] = (uint8_t)((rnd(rs) % 4 ? 1 : 0) | (rnd(rs) % 10 == 0 ? 2 : 0) |
			     (rnd(rs) % 4 == 0 ? 4 : 0));
	if (buf[0] & 2) {
		uint16_t keep = (uint16_t)(32768 + rnd(rs) % 32768);
		buf[n++] = (uint8_t)keep;
		buf[n++] = (uint8_t)(keep >> 8);
	}
	for (unsigned p = 0; p < patches && n + 5 + 16 < cap; p++) {
		unsigned len = 1 + (unsigned)(rnd(rs) % 16);
		uint64_t off = rnd(rs);

		/* mostly the state and chunk summaries: what the repair reaches */
		buf[n++] = (uint8_t)(rnd(rs) % 8 ? 1 + rnd(rs) % 3 : 0) | (uint8_t)(rnd(rs) & 0xfc);
		buf[n++] = (uint8_t)off;
		buf[n++] = (uint8_t)(off >> 8);
		buf[n++] = (uint8_t)(off >> 16);
		buf[n++] = (uint8_t)len;
		for (unsigned b = 0; b < len; b++) {
			uint64_t v = rnd(rs);
			/* small numbers and all-ones break counts and lengths best */
			buf[n++] = v % 3 == 0 ? 0xff : v % 3 == 1 ? (uint8_t)(v >> 8) % 4 : (uint8_t)(v >> 8);
		}
	}
	return n;
}
#else
/* A whole device for fuzz_store_open: the seed store, damaged. */
static size_t make_input(uint64_t *rs, unsigned i, uint8_t *buf, size_t cap)
{
	size_t len = 0, nch;
	const uint8_t *seed = fuzz_seed_image(CODEC_LZ4, &len);
	uint64_t chunks[512];

	if (len > cap)
		len = cap;
	memcpy(buf, seed, len);
	nch = fuzz_chunks(buf, len, chunks, 512);
	switch (i % 5) {
	case 0:	/* superblock and slots */
		for (unsigned b = 1 + (unsigned)(rnd(rs) % 3); b; b--) {
			uint64_t bit = rnd(rs) % (3 * FMT_BLOCK * 8);
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		break;
	case 1:	/* a chunk's summary */
		if (nch) {
			uint64_t c = chunks[rnd(rs) % nch];
			for (unsigned b = 1 + (unsigned)(rnd(rs) % 3); b; b--) {
				uint64_t bit = rnd(rs) % (512 * 8);
				buf[c + bit / 8] ^= (uint8_t)(1u << (bit % 8));
			}
		}
		break;
	case 2:	/* truncated, often at a block boundary */
		len = (size_t)(rnd(rs) % len);
		if (rnd(rs) % 2)
			len -= len % FMT_BLOCK;
		if (len < FMT_SEG_START)
			len = FMT_SEG_START;	/* shorter would be an overlay */
		break;
	case 3:	/* a run of garbage anywhere */
	{
		uint64_t at = rnd(rs) % len, n = 1 + rnd(rs) % 64;
		for (uint64_t b = 0; b < n && at + b < len; b++)
			buf[at + b] = (uint8_t)rnd(rs);
		break;
	}
	default:	/* a short overlay: a new superblock and slots */
		len = 1 + (size_t)(rnd(rs) % (3 * FMT_BLOCK));
		for (size_t b = 0; b < len; b++)
			if (rnd(rs) % 64 == 0)
				buf[b] = (uint8_t)rnd(rs);
		break;
	}
	return len;
}
#endif

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 1;
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)(n > 0 ? n : 1));
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "%s: cannot read\n", path);
		fclose(f);
		free(buf);
		return 1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
}

static int write_seeds(const char *dir, uint8_t *buf, size_t cap)
{
	uint64_t rs = 42;

	mkdir(dir, 0755);
	for (unsigned i = 0; i < 16; i++) {
		char path[4096];
		size_t n = make_input(&rs, i, buf, cap);
		FILE *f;

		snprintf(path, sizeof(path), "%s/seed-%02u", dir, i);
		f = fopen(path, "wb");
		if (!f || fwrite(buf, 1, n, f) != n) {
			fprintf(stderr, "%s: cannot write\n", path);
			if (f)
				fclose(f);
			return 1;
		}
		fclose(f);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "runs", required_argument, NULL, 'n' },
		{ "seeds", required_argument, NULL, 's' },
		{ "save", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	const char *env = getenv("CRYO_FUZZ_RUNS"), *seeds = NULL, *save = NULL;
	unsigned runs = env && atoi(env) > 0 ? (unsigned)atoi(env) : 2000;
	size_t cap = 0;
	uint64_t rs = 1;
	unsigned seen;
	uint8_t *buf;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "n:s:", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			runs = (unsigned)atoi(optarg);
			break;
		case 's':
			seeds = optarg;
			break;
		case 'S':
			save = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s [-n RUNS] [--seeds DIR] [--save FILE] [FILE...]\n",
				argv[0]);
			return 2;
		}
	}
	setenv("CRYO_LOG", "quiet", 0);
	if (optind < argc) {
		for (int i = optind; i < argc; i++)
			rc |= run_file(argv[i]);
		return rc;
	}
#ifdef FUZZ_TARGET_IMAGE
	enum codec codec = CODEC_RAW;
#else
	enum codec codec = CODEC_LZ4;
#endif
	if (!fuzz_seed_image(codec, &cap)) {
		fprintf(stderr, "FAIL: no seed store\n");
		return 1;
	}
	buf = malloc(cap + 4096);
	if (!buf)
		return 1;
	if (seeds) {
		rc = write_seeds(seeds, buf, cap + 4096);
		free(buf);
		return rc;
	}
	/* The unchanged store must open and show its snapshots, or every
	 * mutated run below tests only the error path of a broken seed. */
	/* The checksum repair must agree with the store: on an intact store
	 * it changes nothing. Else the image target tests the repair only. */
	memcpy(buf, fuzz_seed_image(codec, &cap), cap);
	fuzz_fix_checksums(buf, cap);
	if (memcmp(buf, fuzz_seed_image(codec, &cap), cap)) {
		size_t at = 0;

		while (buf[at] == fuzz_seed_image(codec, &cap)[at])
			at++;
		fprintf(stderr, "FAIL: checksum repair changes an intact store at byte %zu\n", at);
		free(buf);
		return 1;
	}
	seen = fuzz_exercise(fuzz_seed_image(codec, &cap), cap, 0);
	if (seen == 0) {
		fprintf(stderr, "FAIL: the seed store shows no readable snapshot\n");
		free(buf);
		return 1;
	}
	for (unsigned i = 0; i < runs; i++) {
		size_t n = make_input(&rs, i, buf, cap + 4096);

		if (save) {
			FILE *f = fopen(save, "wb");
			if (!f || fwrite(buf, 1, n, f) != n) {
				fprintf(stderr, "%s: cannot write\n", save);
				return 1;
			}
			fclose(f);
		}
		LLVMFuzzerTestOneInput(buf, n);
	}
	{
		struct fuzz_tally t;

		fuzz_tally(&t);
		printf("%u inputs run, no crash: %lu opened (%lu fsck clean), %lu snapshots read, "
		       "%lu commits after opening\n", runs, t.opened - 1, t.fsck_clean - 1,
		       t.snaps_read - seen, t.committed);
	}
	free(buf);
	return 0;
}
