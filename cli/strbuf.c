/*
 * strbuf.c - the growable string of strbuf.h, and the URL pieces errinjctl builds with it.
 */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reserve(strbuf *sb, size_t extra)
{
    if (sb->len + extra + 1 <= sb->cap)
        return;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < sb->len + extra + 1)
        cap *= 2;
    char *grown = realloc(sb->s, cap);
    if (!grown) {
        fputs("errinjctl: out of memory\n", stderr);
        exit(3);
    }
    sb->s = grown;
    sb->cap = cap;
}

void strbuf_append_n(strbuf *sb, const char *s, size_t len)
{
    reserve(sb, len);
    memcpy(sb->s + sb->len, s, len);
    sb->len += len;
    sb->s[sb->len] = '\0';
}

void strbuf_append(strbuf *sb, const char *s)
{
    strbuf_append_n(sb, s, strlen(s));
}

void strbuf_appendf(strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    reserve(sb, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(sb->s + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void strbuf_append_url_encoded(strbuf *sb, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '.' || *p == '_' || *p == '~') {
            strbuf_append_n(sb, (const char *)p, 1);
        } else {
            char escaped[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            strbuf_append_n(sb, escaped, 3);
        }
    }
}

void strbuf_append_query(strbuf *sb, const char *key, const char *value)
{
    strbuf_append(sb, strchr(strbuf_str(sb), '?') ? "&" : "?");
    strbuf_append(sb, key);
    strbuf_append(sb, "=");
    strbuf_append_url_encoded(sb, value);
}

const char *strbuf_str(const strbuf *sb)
{
    return sb->s ? sb->s : "";
}

void strbuf_free(strbuf *sb)
{
    free(sb->s);
    sb->s = NULL;
    sb->len = sb->cap = 0;
}
