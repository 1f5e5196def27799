/*
 * strbuf.h - a growable NUL-terminated string for building URLs and output lines.
 *
 * errinjctl is a short-lived command: running out of memory ends it (exit 3) instead of
 * threading an error through every caller.
 */
#ifndef ERRINJCTL_STRBUF_H
#define ERRINJCTL_STRBUF_H

#include <stddef.h>

typedef struct strbuf {
    char *s; /* NUL-terminated once anything was appended; NULL before */
    size_t len, cap;
} strbuf;

/* Appends len bytes. */
void strbuf_append_n(strbuf *sb, const char *s, size_t len);

/* Appends a NUL-terminated string. */
void strbuf_append(strbuf *sb, const char *s);

/* Appends printf-style. */
void strbuf_appendf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends `s` percent-encoded: everything but ALPHA, DIGIT, '-', '.', '_' and '~'. */
void strbuf_append_url_encoded(strbuf *sb, const char *s);

/* Appends a query parameter "?key=value", or "&key=value" once the string holds a '?'; the
 * value is percent-encoded, the key taken as it is. */
void strbuf_append_query(strbuf *sb, const char *key, const char *value);

/* The string so far ("" when empty); valid until the next append. */
const char *strbuf_str(const strbuf *sb);

/* Releases the buffer and empties sb. */
void strbuf_free(strbuf *sb);

#endif
