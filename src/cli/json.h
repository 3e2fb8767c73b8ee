/* A tiny JSON emitter for --json output: objects, arrays, strings with
 * proper escaping, integers, booleans. No parser: cryo only writes JSON.
 *
 * The emitter tracks commas by nesting depth; misuse (a value where a key
 * is due) is the caller's bug, not input, and simply produces bad JSON. */
#ifndef CRYO_CLI_JSON_H
#define CRYO_CLI_JSON_H

#include <stdint.h>
#include <stdio.h>

#define JSON_DEPTH_MAX	16

struct json {
	FILE *f;
	int depth;
	int count[JSON_DEPTH_MAX];	/* items written at each depth */
	int after_key;
};

void json_init(struct json *j, FILE *f);
void json_obj_begin(struct json *j);
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j);
void json_arr_end(struct json *j);
void json_key(struct json *j, const char *key);
void json_str(struct json *j, const char *s);
void json_strn(struct json *j, const char *s, size_t n);
void json_u64(struct json *j, uint64_t v);
void json_i64(struct json *j, int64_t v);
void json_f64(struct json *j, double v);
void json_bool(struct json *j, int v);
void json_null(struct json *j);
/* Ends the document with a newline. */
void json_end(struct json *j);

/* key + value in one call, inside an object. */
static inline void json_kv_str(struct json *j, const char *k, const char *v) { json_key(j, k); json_str(j, v); }
static inline void json_kv_u64(struct json *j, const char *k, uint64_t v) { json_key(j, k); json_u64(j, v); }
static inline void json_kv_bool(struct json *j, const char *k, int v) { json_key(j, k); json_bool(j, v); }

#endif
