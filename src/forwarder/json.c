#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Deeper than any network config; a deeper text is left to the core to judge. */
#define MAX_DEPTH 64

static void reserve(struct buf *b, size_t more) {
  if (b->len + more + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + more + 1) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    static const char msg[] = "kube-ipam: out of memory\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(1);
  }
  b->p = p;
  b->cap = cap;
}

void buf_put(struct buf *b, const void *s, size_t n) {
  reserve(b, n);
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

void buf_puts(struct buf *b, const char *s) { buf_put(b, s, strlen(s)); }

void buf_putc(struct buf *b, char c) { buf_put(b, &c, 1); }

void buf_printf(struct buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  reserve(b, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

int json_peek(struct json *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
  return j->p < j->end ? (unsigned char)*j->p : -1;
}

static int hex4(const char *p, const char *end, unsigned *out) {
  if (end - p < 4) return -1;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  *out = v;
  return 0;
}

static void put_utf8(struct buf *b, unsigned cp) {
  char s[4];
  if (cp < 0x80) {
    s[0] = (char)cp;
    buf_put(b, s, 1);
  } else if (cp < 0x800) {
    s[0] = (char)(0xc0 | cp >> 6);
    s[1] = (char)(0x80 | (cp & 0x3f));
    buf_put(b, s, 2);
  } else if (cp < 0x10000) {
    s[0] = (char)(0xe0 | cp >> 12);
    s[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    s[2] = (char)(0x80 | (cp & 0x3f));
    buf_put(b, s, 3);
  } else {
    s[0] = (char)(0xf0 | cp >> 18);
    s[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    s[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    s[3] = (char)(0x80 | (cp & 0x3f));
    buf_put(b, s, 4);
  }
}

/* Decodes into `out` when it is not NULL; only walks the string otherwise. */
static int string_into(struct json *j, struct buf *out) {
  if (json_peek(j) != '"') return -1;
  j->p++;
  if (out) {
    out->len = 0;
    buf_put(out, "", 0);
  }
  while (j->p < j->end) {
    unsigned char c = (unsigned char)*j->p++;
    if (c == '"') return 0;
    if (c < 0x20) return -1;
    if (c != '\\') {
      if (out) buf_put(out, &c, 1);
      continue;
    }
    if (j->p >= j->end) return -1;
    char e = *j->p++;
    unsigned cp;
    switch (e) {
      case '"': cp = '"'; break;
      case '\\': cp = '\\'; break;
      case '/': cp = '/'; break;
      case 'b': cp = '\b'; break;
      case 'f': cp = '\f'; break;
      case 'n': cp = '\n'; break;
      case 'r': cp = '\r'; break;
      case 't': cp = '\t'; break;
      case 'u':
        if (hex4(j->p, j->end, &cp)) return -1;
        j->p += 4;
        if (cp >= 0xd800 && cp < 0xdc00) {
          unsigned lo;
          if (j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u' && !hex4(j->p + 2, j->end, &lo) && lo >= 0xdc00 &&
              lo < 0xe000) {
            j->p += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else {
            cp = 0xfffd; /* a lone surrogate, as a JavaScript string written out as UTF-8 reads */
          }
        } else if (cp >= 0xdc00 && cp < 0xe000) {
          cp = 0xfffd;
        }
        break;
      default: return -1;
    }
    if (out) put_utf8(out, cp);
  }
  return -1;
}

int json_string(struct json *j, struct buf *out) { return string_into(j, out); }

static int number_span(struct json *j, const char **start) {
  if (json_peek(j) < 0) return -1;
  const char *p = j->p, *end = j->end;
  *start = p;
  if (p < end && *p == '-') p++;
  if (p >= end) return -1;
  if (*p == '0') p++;
  else if (*p >= '1' && *p <= '9') while (p < end && *p >= '0' && *p <= '9') p++;
  else return -1;
  if (p < end && *p == '.') {
    p++;
    if (p >= end || *p < '0' || *p > '9') return -1;
    while (p < end && *p >= '0' && *p <= '9') p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (p >= end || *p < '0' || *p > '9') return -1;
    while (p < end && *p >= '0' && *p <= '9') p++;
  }
  j->p = p;
  return 0;
}

int json_number(struct json *j, double *out) {
  const char *start;
  if (number_span(j, &start)) return -1;
  struct buf tmp = {0}; /* strtod needs the terminator the text does not have */
  buf_put(&tmp, start, (size_t)(j->p - start));
  *out = strtod(tmp.p, NULL);
  free(tmp.p);
  return 0;
}

int json_key_is(const struct buf *key, const char *name) {
  size_t n = strlen(name);
  return key->len == n && memcmp(key->p, name, n) == 0;
}

int json_literal(struct json *j, const char *word) {
  size_t n = strlen(word);
  if (json_peek(j) < 0 || (size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) return -1;
  j->p += n;
  return 0;
}

int json_object_begin(struct json *j) {
  if (json_peek(j) != '{') return -1;
  j->p++;
  return 0;
}

int json_object_next(struct json *j, int *first, struct buf *key) {
  int c = json_peek(j);
  if (c == '}' && *first) {
    j->p++;
    return 0;
  }
  if (!*first) {
    if (c == '}') {
      j->p++;
      return 0;
    }
    if (c != ',') return -1;
    j->p++;
  }
  *first = 0;
  if (string_into(j, key)) return -1;
  if (json_peek(j) != ':') return -1;
  j->p++;
  return 1;
}

static int skip_at(struct json *j, int depth) {
  if (depth > MAX_DEPTH) return -1;
  int c = json_peek(j);
  switch (c) {
    case '"': return string_into(j, NULL);
    case '{': {
      j->p++;
      int first = 1, more;
      while ((more = json_object_next(j, &first, NULL)) == 1)
        if (skip_at(j, depth + 1)) return -1;
      return more;
    }
    case '[': {
      j->p++;
      int first = 1;
      for (;;) {
        int c2 = json_peek(j);
        if (c2 == ']') {
          j->p++;
          return 0;
        }
        if (!first) {
          if (c2 != ',') return -1;
          j->p++;
        }
        first = 0;
        if (skip_at(j, depth + 1)) return -1;
      }
    }
    case 't': return json_literal(j, "true");
    case 'f': return json_literal(j, "false");
    case 'n': return json_literal(j, "null");
    default: {
      const char *start;
      return number_span(j, &start);
    }
  }
}

int json_skip(struct json *j) { return skip_at(j, 0); }

/* The code point at s (well-formed, see utf8_valid) and its length in bytes. */
static unsigned utf8_next(const unsigned char *s, size_t *len) {
  if (s[0] < 0x80) return *len = 1, s[0];
  if (s[0] < 0xe0) return *len = 2, (unsigned)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
  if (s[0] < 0xf0) return *len = 3, (unsigned)(s[0] & 0x0f) << 12 | (unsigned)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
  return *len = 4, (unsigned)(s[0] & 0x07) << 18 | (unsigned)(s[1] & 0x3f) << 12 | (unsigned)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
}

int utf8_valid(const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    unsigned min;
    if (c >= 0xc2 && c <= 0xdf) len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, min = 0x10000;
    else return 0;
    if (n - i < len) return 0;
    for (size_t k = 1; k < len; k++)
      if ((s[i + k] & 0xc0) != 0x80) return 0;
    size_t got;
    unsigned cp = utf8_next(s + i, &got);
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return 0;
    i += len;
  }
  return 1;
}

void json_quote(struct buf *out, const char *str, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = (const unsigned char *)str;
  buf_putc(out, '"');
  size_t i = 0;
  while (i < n) {
    size_t run = i;
    while (run < n && s[run] >= 0x20 && s[run] < 0x7f && s[run] != '"' && s[run] != '\\') run++;
    buf_put(out, s + i, run - i);
    i = run;
    if (i >= n) break;
    size_t len;
    unsigned cp = utf8_next(s + i, &len);
    i += len;
    if (cp == '"' || cp == '\\') {
      char esc[2] = {'\\', (char)cp};
      buf_put(out, esc, 2);
      continue;
    }
    unsigned units[2];
    int count = 1;
    units[0] = cp;
    if (cp >= 0x10000) {
      units[0] = 0xd800 + ((cp - 0x10000) >> 10);
      units[1] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
      count = 2;
    }
    for (int k = 0; k < count; k++) {
      char esc[6] = {'\\', 'u', hex[units[k] >> 12 & 0xf], hex[units[k] >> 8 & 0xf], hex[units[k] >> 4 & 0xf], hex[units[k] & 0xf]};
      buf_put(out, esc, 6);
    }
  }
  buf_putc(out, '"');
}
