/* The little JSON the forwarder needs: read the few fields of a network config that decide where a request
 * goes, read the agent's one-line replies, and write the request line. Not a general parser: it walks the
 * text once, decodes only the strings asked for, and gives up (the caller then lets the core decide) on
 * anything it does not expect. */
#ifndef KUBE_IPAM_JSON_H
#define KUBE_IPAM_JSON_H

#include <stddef.h>

/* A growing byte buffer, always NUL-terminated. Allocation failure ends the process (buf.c). */
struct buf {
  char *p;
  size_t len, cap;
};
void buf_put(struct buf *b, const void *s, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A position in JSON text. */
struct json {
  const char *p, *end;
};

/* The next significant character (whitespace skipped, not consumed), or -1 at the end. */
int json_peek(struct json *j);
/* Skips one value of any kind. 0, or -1 when the text is not JSON (or nests deeper than we follow). */
int json_skip(struct json *j);
/* Decodes the string at the cursor into `out` (replacing its contents), as UTF-8. 0 or -1. */
int json_string(struct json *j, struct buf *out);
/* Reads the number at the cursor. 0 or -1. */
int json_number(struct json *j, double *out);
/* Consumes the literal `word` (true, false, null) at the cursor. 0 or -1. */
int json_literal(struct json *j, const char *word);

/* Walks an object: call json_object_begin once at '{', then json_object_next until it returns 0 (the
 * closing '}' consumed) or -1 (not JSON). On 1, `key` holds the next key and the cursor is at its value,
 * which the caller must consume (json_skip or a reader above). `key` may be NULL: the key is only walked. */
int json_object_begin(struct json *j);
int json_object_next(struct json *j, int *first, struct buf *key);

/* Whether a decoded key is `name`: all of it, so that a key holding \u0000 matches no name (as in JSON.parse,
 * where "a\u0000b" is not "a"). */
int json_key_is(const struct buf *key, const char *name);

/* Whether the bytes are well-formed UTF-8 (no overlong forms, no surrogates), as a JSON text must be. */
int utf8_valid(const char *s, size_t n);
/* Appends s (well-formed UTF-8, see utf8_valid) as a JSON string in pure ASCII: every character outside
 * printable ASCII is a \u escape, so the line means the same whatever way the reader splits its bytes. */
void json_quote(struct buf *out, const char *s, size_t n);

#endif
