#include "cli/json.h"

#include <inttypes.h>
#include <string.h>

void json_init(struct json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
}

/* Before any value or key: a comma unless it is the first at this depth,
 * or the value that follows a key. */
static void sep(struct json *j)
{
	if (j->after_key) {
		j->after_key = 0;
		return;
	}
	if (j->count[j->depth]++)
		fputc(',', j->f);
}

static void nest_open(struct json *j, char ch)
{
	sep(j);
	fputc(ch, j->f);
	if (j->depth < JSON_DEPTH_MAX - 1)
		j->depth++;
	j->count[j->depth] = 0;
}

static void nest_close(struct json *j, char ch)
{
	fputc(ch, j->f);
	if (j->depth > 0)
		j->depth--;
}

void json_obj_begin(struct json *j) { nest_open(j, '{'); }
void json_obj_end(struct json *j) { nest_close(j, '}'); }
void json_arr_begin(struct json *j) { nest_open(j, '['); }
void json_arr_end(struct json *j) { nest_close(j, ']'); }

static void put_string(struct json *j, const char *s, size_t n)
{
	fputc('"', j->f);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		switch (ch) {
		case '"': fputs("\\\"", j->f); break;
		case '\\': fputs("\\\\", j->f); break;
		case '\b': fputs("\\b", j->f); break;
		case '\f': fputs("\\f", j->f); break;
		case '\n': fputs("\\n", j->f); break;
		case '\r': fputs("\\r", j->f); break;
		case '\t': fputs("\\t", j->f); break;
		default:
			/* Control bytes and DEL escaped; bytes >= 0x80 pass as
			 * they are (names are expected to be UTF-8). */
			if (ch < 0x20 || ch == 0x7f)
				fprintf(j->f, "\\u%04x", ch);
			else
				fputc(ch, j->f);
		}
	}
	fputc('"', j->f);
}

void json_key(struct json *j, const char *key)
{
	sep(j);
	put_string(j, key, strlen(key));
	fputc(':', j->f);
	j->after_key = 1;
}

void json_strn(struct json *j, const char *s, size_t n)
{
	sep(j);
	put_string(j, s, n);
}

void json_str(struct json *j, const char *s)
{
	if (!s) {
		json_null(j);
		return;
	}
	json_strn(j, s, strlen(s));
}

void json_u64(struct json *j, uint64_t v)
{
	sep(j);
	fprintf(j->f, "%" PRIu64, v);
}

void json_i64(struct json *j, int64_t v)
{
	sep(j);
	fprintf(j->f, "%" PRId64, v);
}

void json_f64(struct json *j, double v)
{
	sep(j);
	if (v != v || v - v != 0)	/* NaN and infinities are not JSON */
		fputs("null", j->f);
	else
		fprintf(j->f, "%.6f", v);
}

void json_bool(struct json *j, int v)
{
	sep(j);
	fputs(v ? "true" : "false", j->f);
}

void json_null(struct json *j)
{
	sep(j);
	fputs("null", j->f);
}

void json_end(struct json *j)
{
	fputc('\n', j->f);
	fflush(j->f);
}
