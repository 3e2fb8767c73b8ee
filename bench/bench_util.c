/* Helpers shared by the store benchmarks: see bench_util.h. */
#define LOG_PREFIX "bench: "
#include "bench_util.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

uint64_t bu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t bu_percentile(uint64_t *v, size_t n, double p)
{
	size_t i;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	/* nearest rank */
	i = (size_t)ceil(p / 100.0 * (double)n);
	if (i > 0)
		i--;
	if (i >= n)
		i = n - 1;
	return v[i];
}

/* ---- PRNG ---- */

uint64_t bu_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void bu_rng_seed(struct bu_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++) {
		seed = bu_mix64(seed);
		r->s[i] = seed | 1;
	}
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t bu_rng_next(struct bu_rng *r)
{
	uint64_t *s = r->s;
	uint64_t res = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

uint64_t bu_rng_below(struct bu_rng *r, uint64_t n)
{
	/* multiply-shift: bias is negligible for the sizes used here */
	return (uint64_t)(((unsigned __int128)bu_rng_next(r) * n) >> 64);
}

/* ---- pages ---- */

enum bu_page_kind bu_page_kind_of(uint64_t seed, uint64_t vpn)
{
	uint64_t h = bu_mix64(seed ^ (vpn * 0x2545f4914f6cdd1dull)) % 100;

	if (h < 30)
		return BU_ZERO;
	if (h < 70)
		return BU_TEXT;
	return BU_RANDOM;
}

void bu_page_random(struct bu_rng *r, void *page)
{
	uint64_t *w = page;

	for (unsigned i = 0; i < BU_PAGE / 8; i++)
		w[i] = bu_rng_next(r);
}

static const char *const words[] = {
	"the", "of", "and", "a", "to", "in", "is", "you", "that", "it", "he", "was",
	"for", "on", "are", "as", "with", "his", "they", "I", "at", "be", "this",
	"have", "from", "or", "one", "had", "by", "word", "but", "not", "what",
	"all", "were", "we", "when", "your", "can", "said", "there", "use", "an",
	"each", "which", "she", "do", "how", "their", "if", "will", "up", "other",
	"about", "out", "many", "then", "them", "these", "so", "some", "her",
	"would", "make", "like", "him", "into", "time", "has", "look", "two",
	"more", "write", "go", "see", "number", "no", "way", "could", "people",
	"0x7ffd3a2c", "struct", "return", "NULL", "errno", "malloc", "{", "}",
	"int", "char", "/usr/lib", "PATH=", "HOME=", "LANG=C.UTF-8", "\t", "==",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

/* Text-like memory: words, punctuation, a few numbers. lz4 stores it in
 * about half its size, like heap strings, source code or a text buffer. */
static void page_text(struct bu_rng *r, uint8_t *p)
{
	size_t off = 0;

	while (off < BU_PAGE) {
		uint64_t x = bu_rng_next(r);
		const char *w = words[x % NWORDS];
		size_t n = strlen(w);
		char sep = (x >> 32) % 12 == 0 ? '\n' : ((x >> 40) % 9 == 0 ? ',' : ' ');

		if ((x >> 48) % 16 == 0) {
			char num[24];
			n = (size_t)snprintf(num, sizeof(num), "%u", (unsigned)(x >> 20) % 100000);
			if (off + n > BU_PAGE)
				n = BU_PAGE - off;
			memcpy(p + off, num, n);
		} else {
			if (off + n > BU_PAGE)
				n = BU_PAGE - off;
			memcpy(p + off, w, n);
		}
		off += n;
		if (off < BU_PAGE)
			p[off++] = (uint8_t)sep;
	}
}

enum bu_page_kind bu_page_gen(uint64_t seed, uint64_t vpn, uint32_t version, void *page)
{
	enum bu_page_kind k = bu_page_kind_of(seed, vpn);
	struct bu_rng r;

	bu_rng_seed(&r, seed ^ bu_mix64(vpn) ^ ((uint64_t)version << 40));
	switch (k) {
	case BU_ZERO:
		memset(page, 0, BU_PAGE);
		break;
	case BU_TEXT:
		page_text(&r, page);
		break;
	case BU_RANDOM:
		bu_page_random(&r, page);
		break;
	}
	return k;
}

int bu_pool_init(struct bu_pool *p, uint64_t seed, size_t npages)
{
	memset(p, 0, sizeof(*p));
	p->pages = aligned_alloc(BU_PAGE, npages * BU_PAGE);
	p->kinds = calloc(npages, sizeof(*p->kinds));
	if (!p->pages || !p->kinds) {
		bu_pool_free(p);
		return -ENOMEM;
	}
	p->n = npages;
	p->seed = seed;
	/* half text, half random: the pool serves non-zero pages only */
	for (size_t i = 0; i < npages; i++) {
		struct bu_rng r;

		bu_rng_seed(&r, seed ^ bu_mix64(i + 1));
		p->kinds[i] = (i & 1) ? BU_RANDOM : BU_TEXT;
		if (p->kinds[i] == BU_TEXT)
			page_text(&r, p->pages + i * BU_PAGE);
		else
			bu_page_random(&r, p->pages + i * BU_PAGE);
	}
	return 0;
}

void bu_pool_free(struct bu_pool *p)
{
	free(p->pages);
	free(p->kinds);
	p->pages = NULL;
	p->kinds = NULL;
}

enum bu_page_kind bu_pool_page(const struct bu_pool *p, uint64_t vpn, uint32_t version,
			       void *page)
{
	enum bu_page_kind k = bu_page_kind_of(p->seed, vpn);
	uint64_t h = bu_mix64(vpn ^ ((uint64_t)version << 40) ^ p->seed);
	size_t i;
	uint64_t stamp[2] = { vpn, version };

	if (k == BU_ZERO && version == 0) {
		memset(page, 0, BU_PAGE);
		return k;
	}
	if (k == BU_ZERO)
		k = BU_TEXT;	/* a zero page written to since */
	i = (size_t)((h % (p->n / 2)) * 2 + (k == BU_RANDOM ? 1 : 0));
	memcpy(page, p->pages + i * BU_PAGE, BU_PAGE);
	memcpy(page, stamp, sizeof(stamp));
	return k;
}

void bu_pool_page_random(const struct bu_pool *p, uint64_t vpn, uint32_t version, void *page)
{
	uint64_t h = bu_mix64(vpn ^ ((uint64_t)version << 40) ^ p->seed);
	uint64_t stamp[2] = { vpn, version };
	size_t i = (size_t)((h % (p->n / 2)) * 2 + 1);

	memcpy(page, p->pages + i * BU_PAGE, BU_PAGE);
	memcpy(page, stamp, sizeof(stamp));
}

/* ---- limits ---- */

void bu_scratch_path(char *buf, size_t len, const char *dir, const char *name)
{
	snprintf(buf, len, "%s/%s.%d", dir, name, (int)getpid());
}

double bu_raw_write_mibs(const char *dir, uint64_t bytes)
{
	char path[4096];
	const size_t bs = 1 << 20;
	uint8_t *buf = aligned_alloc(BU_PAGE, bs);
	struct bu_rng r;
	uint64_t t0, t1, done = 0;
	int fd, err = 0;

	if (!buf)
		return -ENOMEM;
	bu_rng_seed(&r, 42);
	for (size_t i = 0; i < bs; i += BU_PAGE)
		bu_page_random(&r, buf + i);
	bu_scratch_path(path, sizeof(path), dir, "raw-write");
	sync();
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0) {
		err = -errno;
		pr_err("%s: %s\n", path, strerror(errno));
		free(buf);
		return err;
	}
	t0 = bu_now_ns();
	while (done < bytes) {
		size_t n = bytes - done < bs ? (size_t)(bytes - done) : bs;
		ssize_t w;

		buf[0] = (uint8_t)done;	/* every MiB differs */
		w = write(fd, buf, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		done += (uint64_t)w;
	}
	if (!err && fdatasync(fd))
		err = -errno;
	t1 = bu_now_ns();
	close(fd);
	unlink(path);
	free(buf);
	if (err) {
		pr_err("raw write in %s: %s\n", dir, strerror(-err));
		return err;
	}
	return (double)bytes / BU_MIB / bu_secs(t1 - t0);
}

double bu_memcpy_mibs(void)
{
	const size_t n = 256u << 20;
	uint8_t *a = malloc(n), *b = malloc(n);
	uint64_t t0, best = UINT64_MAX;

	if (!a || !b) {
		free(a);
		free(b);
		return -ENOMEM;
	}
	memset(a, 1, n);
	memset(b, 2, n);
	for (int i = 0; i < 3; i++) {
		t0 = bu_now_ns();
		memcpy(b, a, n);
		t0 = bu_now_ns() - t0;
		if (t0 < best)
			best = t0;
		a[i] = b[n - 1 - i];	/* keep the copy observable */
	}
	free(a);
	free(b);
	return (double)n / BU_MIB / bu_secs(best);
}

int bu_drop_caches(void)
{
	int fd, err = 0;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0)
		return -errno;
	if (write(fd, "3\n", 2) != 2)
		err = -errno;
	close(fd);
	return err;
}

uint64_t bu_file_disk_bytes(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (uint64_t)st.st_blocks * 512;
}

uint64_t bu_fs_free(const char *dir)
{
	struct statvfs v;

	return statvfs(dir, &v) ? 0 : (uint64_t)v.f_bavail * v.f_frsize;
}

/* ---- counting io: a file store_io of our own, so a bench can count what
 * the store reads and writes and set readahead advice on its fd ---- */

struct count_io {
	struct store_io io;
	int fd;
	struct bu_count *c;
};

static int cnt_pread(struct store_io *io, void *buf, size_t len, uint64_t off)
{
	struct count_io *ci = (struct count_io *)io;
	size_t done = 0;

	ci->c->rd_bytes += len;
	ci->c->rd_ops++;
	while (done < len) {
		ssize_t r = pread(ci->fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;
		done += (size_t)r;
	}
	return 0;
}

static int cnt_pwrite(struct store_io *io, const void *buf, size_t len, uint64_t off)
{
	struct count_io *ci = (struct count_io *)io;
	size_t done = 0;

	ci->c->wr_bytes += len;
	ci->c->wr_ops++;
	while (done < len) {
		ssize_t r = pwrite(ci->fd, (const char *)buf + done, len - done,
				   (off_t)(off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		done += (size_t)r;
	}
	return 0;
}

static int cnt_sync(struct store_io *io)
{
	struct count_io *ci = (struct count_io *)io;

	ci->c->syncs++;
	return fdatasync(ci->fd) ? -errno : 0;
}

static uint64_t cnt_size(struct store_io *io)
{
	struct count_io *ci = (struct count_io *)io;
	struct stat st;

	return fstat(ci->fd, &st) ? 0 : (uint64_t)st.st_size;
}

static int cnt_resize(struct store_io *io, uint64_t size)
{
	struct count_io *ci = (struct count_io *)io;

	return ftruncate(ci->fd, (off_t)size) ? -errno : 0;
}

static void cnt_close(struct store_io *io)
{
	struct count_io *ci = (struct count_io *)io;

	close(ci->fd);
	free(ci);
}

static const struct store_io_ops count_ops = {
	.pread = cnt_pread,
	.pwrite = cnt_pwrite,
	.sync = cnt_sync,
	.size = cnt_size,
	.resize = cnt_resize,
	.close = cnt_close,
};

int bu_count_io_open2(const char *path, int flags, int advice, struct bu_count *c,
		      struct store_io **out)
{
	struct count_io *ci = calloc(1, sizeof(*ci));
	int err;

	if (!ci)
		return -ENOMEM;
	ci->fd = open(path, flags | O_CLOEXEC);
	if (ci->fd < 0) {
		err = -errno;
		pr_err("%s: %s\n", path, strerror(errno));
		free(ci);
		return err;
	}
	if (advice >= 0)
		posix_fadvise(ci->fd, 0, 0, advice);
	ci->io.ops = &count_ops;
	ci->c = c;
	*out = &ci->io;
	return 0;
}

int bu_count_io_open(const char *path, struct bu_count *c, struct store_io **out)
{
	return bu_count_io_open2(path, O_RDWR, -1, c, out);
}

/* ---- results ---- */

int bu_results_init(struct bu_results *r, const char *name, const char *path)
{
	FILE *f;

	memset(r, 0, sizeof(*r));
	r->name = name;
	r->path = path;
	f = fopen("/proc/loadavg", "r");
	if (f) {
		double l1 = 0, l5 = 0;

		if (fscanf(f, "%lf %lf", &l1, &l5) == 2)
			bu_note(r, "machine load at start: %.2f (1 min), %.2f (5 min) on %ld CPUs; other work perturbs the figures",
				l1, l5, sysconf(_SC_NPROCESSORS_ONLN));
		fclose(f);
	}
	if (!path)
		return 0;
	f = fopen(path, "r");
	if (!f)
		return 0;	/* first run: nothing to compare with */
	r->prev = calloc(1, 1 << 20);
	if (r->prev && fread(r->prev, 1, (1 << 20) - 1, f) == 0) {
		free(r->prev);
		r->prev = NULL;
	}
	fclose(f);
	return 0;
}

double bu_prev(const struct bu_results *r, const char *key)
{
	char pat[80];
	const char *p;
	char *end;
	double v;

	if (!r->prev)
		return NAN;
	snprintf(pat, sizeof(pat), "\"%s\": {\"value\": ", key);
	p = strstr(r->prev, pat);
	if (!p)
		return NAN;
	p += strlen(pat);
	v = strtod(p, &end);
	return end == p ? NAN : v;
}

static void fmt_num(char *buf, size_t len, double v)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else if (fabs(v) >= 100 || v == 0)
		snprintf(buf, len, "%.0f", v);
	else if (fabs(v) >= 10)
		snprintf(buf, len, "%.1f", v);
	else
		snprintf(buf, len, "%.3g", v);
}

void bu_report(struct bu_results *r, const char *key, const char *label, double value,
	       const char *unit, double limit, const char *limit_label)
{
	char v[32], l[32], pv[32], ratio[32];
	double prev = bu_prev(r, key);

	fmt_num(v, sizeof(v), value);
	fmt_num(l, sizeof(l), limit);
	fmt_num(pv, sizeof(pv), prev);
	if (limit > 0 && !isnan(limit))
		snprintf(ratio, sizeof(ratio), "%.3f", value / limit);
	else
		snprintf(ratio, sizeof(ratio), "-");
	printf("  %-40s %9s %-7s | limit %9s %-7s %-34s | ratio %7s | prev %9s\n",
	       label, v, unit, l, unit, limit_label, ratio, pv);
	fflush(stdout);
	if (r->nfig < BU_MAX_FIG) {
		struct bu_fig *f = &r->fig[r->nfig++];

		snprintf(f->key, sizeof(f->key), "%s", key);
		snprintf(f->unit, sizeof(f->unit), "%s", unit);
		f->value = value;
		f->limit = limit;
	}
}

void bu_note(struct bu_results *r, const char *fmt, ...)
{
	size_t used = strlen(r->notes);
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	printf("  note: %s\n", line);
	fflush(stdout);
	if (used + strlen(line) + 2 < sizeof(r->notes))
		snprintf(r->notes + used, sizeof(r->notes) - used, "%s\n", line);
}

static void json_str(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* The previous file's figures this run did not measure (a run of one
 * size: BENCH_FREEZE_MIB), copied as they were, so a partial run does not
 * drop the others' "prev". Lines we wrote: one figure per line. */
static void keep_unmeasured(const struct bu_results *r, FILE *f)
{
	int n = r->nfig;

	for (const char *p = r->prev, *nl; p && *p; p = nl + 1) {
		const char *k = p + 5, *ke;
		bool measured = false;
		size_t len;

		nl = strchr(p, '\n');
		if (!nl)
			break;
		if (strncmp(p, "    \"", 5) || !(ke = memchr(k, '"', (size_t)(nl - k))) ||
		    strncmp(ke, "\": {\"value\": ", 12))
			continue;
		for (int i = 0; i < r->nfig && !measured; i++)
			measured = strlen(r->fig[i].key) == (size_t)(ke - k) &&
				   !strncmp(r->fig[i].key, k, (size_t)(ke - k));
		len = (size_t)(nl - p);
		if (len && p[len - 1] == ',')
			len--;
		if (!measured)
			fprintf(f, "%s%.*s", n++ ? ",\n" : "", (int)len, p);
	}
}

static void json_num(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

int bu_results_finish(struct bu_results *r)
{
	char tmp[4200], when[64];
	time_t now = time(NULL);
	struct tm tm;
	FILE *f;
	int err = 0;

	if (!r->path) {
		free(r->prev);
		r->prev = NULL;
		return 0;
	}
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(tmp, sizeof(tmp), "%s.tmp", r->path);
	f = fopen(tmp, "w");
	if (!f) {
		pr_err("%s: %s\n", tmp, strerror(errno));
		return -errno;
	}
	fprintf(f, "{\n  \"bench\": \"%s\",\n  \"time\": \"%s\",\n  \"figures\": {\n",
		r->name, when);
	for (int i = 0; i < r->nfig; i++) {
		const struct bu_fig *g = &r->fig[i];

		fprintf(f, "%s    \"%s\": {\"value\": ", i ? ",\n" : "", g->key);
		json_num(f, g->value);
		fprintf(f, ", \"unit\": \"%s\", \"limit\": ", g->unit);
		json_num(f, g->limit);
		fprintf(f, ", \"ratio\": ");
		json_num(f, g->limit > 0 ? g->value / g->limit : NAN);
		fprintf(f, "}");
	}
	keep_unmeasured(r, f);
	fprintf(f, "\n");
	free(r->prev);
	r->prev = NULL;
	fprintf(f, "  },\n  \"notes\": [");
	for (const char *p = r->notes, *nl; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (!nl)
			break;
		fprintf(f, "%s\n    ", p == r->notes ? "" : ",");
		json_str(f, p, (size_t)(nl - p));
	}
	fprintf(f, "\n  ]\n}\n");
	if (fflush(f) || ferror(f))
		err = -EIO;
	fclose(f);
	if (!err && rename(tmp, r->path))
		err = -errno;
	if (err)
		pr_err("%s: cannot write results: %s\n", r->path, strerror(-err));
	return err;
}

int bu_parse_args(int argc, char **argv, const char *name, struct bu_args *a)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "json", required_argument, NULL, 'j' },
		{ "scale", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	a->dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	a->json = NULL;
	a->scale = 1.0;
	while ((c = getopt_long(argc, argv, "d:j:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			a->dir = optarg;
			break;
		case 'j':
			a->json = optarg;
			break;
		case 's':
			a->scale = strtod(optarg, NULL);
			if (!(a->scale > 0 && a->scale <= 1)) {
				fprintf(stderr, "%s: --scale wants a number in (0, 1]\n", name);
				return 2;
			}
			break;
		default:
			fprintf(stderr,
				"usage: %s [--dir DIR] [--json RESULTS.json] [--scale F]\n"
				"  --dir    scratch directory on the file system to measure\n"
				"           (default $TMPDIR or /tmp)\n"
				"  --json   previous results are read from it, then overwritten\n"
				"  --scale  shrink every size by F (0 < F <= 1) for a quick try\n",
				name);
			return 2;
		}
	}
	return 0;
}
