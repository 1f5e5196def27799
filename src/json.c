/*
 * json.c - the JSON the library reads and writes, with jansson.
 *
 * Parameters arrive as JSON objects (REST bodies, ERRINJ_AT_STARTUP) and are kept as
 * strings: non-string values are stringified as ScyllaDB does, so 5 becomes "5" and
 * {"a":1} becomes "{\"a\":1}". Events leave as one compact line each, control characters
 * escaped, so an event always fits one SSE `data:` line. jansson refuses
 * strings that are not UTF-8; parameters set from C may be any bytes, so those are
 * converted lossily (U+FFFD) rather than dropped.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int errinj__config_from_json(const json_t *params, struct errinj__config **out, const char **why)
{
    *out = NULL;
    if (params == NULL || json_is_null(params)) {
        *out = errinj__config_new(NULL);
        return *out != NULL ? 0 : ERRINJ_ENOMEM;
    }
    if (!json_is_object(params)) {
        *why = "parameters must be a JSON object";
        return ERRINJ_EINVAL;
    }
    size_t n = json_object_size(params);
    const char **kv = calloc(2 * n + 1, sizeof(*kv));
    char **owned = calloc(n + 1, sizeof(*owned));
    int rc = 0;
    size_t i = 0;
    const char *key;
    json_t *value;
    if (kv == NULL || owned == NULL) {
        rc = ERRINJ_ENOMEM;
        goto out;
    }
    json_object_foreach((json_t *)params, key, value) {
        if (strlen(key) != json_object_iter_key_len(json_object_key_to_iter(key))) {
            *why = "parameter names must not contain NUL";
            rc = ERRINJ_EINVAL;
            goto out;
        }
        kv[2 * i] = key;
        if (json_is_string(value)) {
            if (strlen(json_string_value(value)) != json_string_length(value)) {
                *why = "parameter values must not contain NUL";
                rc = ERRINJ_EINVAL;
                goto out;
            }
            kv[2 * i + 1] = json_string_value(value);
        } else {
            owned[i] = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
            if (owned[i] == NULL) {
                rc = ERRINJ_ENOMEM;
                goto out;
            }
            kv[2 * i + 1] = owned[i];
        }
        i++;
    }
    *out = errinj__config_new(kv);
    if (*out == NULL)
        rc = ERRINJ_ENOMEM;
out:
    for (size_t k = 0; owned != NULL && k < n; k++)
        free(owned[k]);
    free(owned);
    free(kv);
    return rc;
}

json_t *errinj__json_string_lossy(const char *s)
{
    json_t *j = json_string(s);
    if (j != NULL)
        return j;
    /* Not UTF-8: copy valid runs and replace each bad byte with U+FFFD. */
    size_t len = strlen(s);
    char *fixed = malloc(3 * len + 1);
    if (fixed == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = 0;
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80)
            n = 1;
        else if (c >= 0xc2 && c <= 0xdf)
            n = 2;
        else if (c >= 0xe0 && c <= 0xef)
            n = 3;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 4;
        char probe[5] = {0};
        if (n > 0 && i + n <= len) {
            memcpy(probe, s + i, n);
            json_t *ok = json_stringn(probe, n);
            if (ok != NULL) {
                json_decref(ok);
                memcpy(fixed + o, probe, n);
                o += n;
                i += n;
                continue;
            }
        }
        memcpy(fixed + o, "\xef\xbf\xbd", 3);
        o += 3;
        i++;
    }
    j = json_stringn(fixed, o);
    free(fixed);
    return j;
}

/* ---- SSE frames ------------------------------------------------------------------------------ */

/*
 * Frames are written by hand rather than through jansson: the consumer thread makes one per
 * event, and building a json_t tree, dumping it and copying it cost several microseconds per
 * event (most of the server's CPU under load). The output is byte for byte what jansson's
 * compact dump gives: the same key order, the same escapes.
 */
struct frame_buf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void frame_reserve(struct frame_buf *b, size_t more)
{
    if (b->failed || b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more)
        cap *= 2;
    char *grown = realloc(b->p, cap);
    if (grown == NULL) {
        b->failed = true;
        return;
    }
    b->p = grown;
    b->cap = cap;
}

static void frame_put(struct frame_buf *b, const char *s, size_t n)
{
    frame_reserve(b, n);
    if (!b->failed) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

static void frame_puts(struct frame_buf *b, const char *s)
{
    frame_put(b, s, strlen(s));
}

static void frame_int(struct frame_buf *b, long long v)
{
    char digits[24];
    frame_put(b, digits, (size_t)snprintf(digits, sizeof(digits), "%lld", v));
}

static void frame_uint(struct frame_buf *b, unsigned long long v)
{
    char digits[24];
    frame_put(b, digits, (size_t)snprintf(digits, sizeof(digits), "%llu", v));
}

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0 if none starts there. */
static size_t utf8_sequence(const unsigned char *s, size_t left)
{
    unsigned c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if (n > left)
        return 0;
    for (size_t k = 1; k < n; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* A JSON string as jansson writes it; bytes that are not UTF-8 become U+FFFD. */
static void frame_string(struct frame_buf *b, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t left = strlen(str);
    frame_put(b, "\"", 1);
    while (left > 0) {
        /* Copy the longest run that needs no escape in one go. */
        size_t run = 0;
        while (run < left && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
            run++;
        frame_put(b, (const char *)s, run);
        s += run;
        left -= run;
        if (left == 0)
            break;
        unsigned c = *s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            frame_put(b, esc, 2);
        } else if (c < 0x20) {
            const char *named = c == '\b' ? "\\b" : c == '\f' ? "\\f" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                                : c == '\t' ? "\\t" : NULL;
            if (named != NULL)
                frame_put(b, named, 2);
            else
                frame_put(b, esc, (size_t)snprintf(esc, sizeof(esc), "\\u%04X", c));
        } else {
            size_t n = utf8_sequence(s, left);
            if (n == 0)
                frame_put(b, "\xef\xbf\xbd", 3), n = 1;
            else
                frame_put(b, (const char *)s, n);
            s += n;
            left -= n;
            continue;
        }
        s++;
        left--;
    }
    frame_put(b, "\"", 1);
}

char *errinj__record_sse_frame(const struct errinj__record *rec, size_t *len)
{
    errinj_event ev;
    errinj__record_to_event(rec, &ev);
    struct frame_buf b = {0};
    frame_reserve(&b, 256);
    frame_puts(&b, "id: ");
    frame_uint(&b, ev.seq);
    frame_puts(&b, "\ndata: {\"injection\":");
    frame_string(&b, ev.injection);
    frame_puts(&b, ",\"type\":\"");
    frame_puts(&b, ev.type);
    frame_puts(&b, "\",\"phase\":\"");
    frame_puts(&b, ev.phase);
    frame_puts(&b, "\",\"shard\":");
    frame_uint(&b, ev.shard);
    frame_puts(&b, ",\"seq\":");
    frame_uint(&b, ev.seq);
    frame_puts(&b, ",\"thread\":");
    frame_int(&b, ev.thread);
    frame_puts(&b, ",\"ts_ns\":");
    frame_int(&b, ev.ts_ns);
    frame_puts(&b, ",\"enters\":");
    frame_uint(&b, ev.enters);
    frame_puts(&b, ",\"action\":\"");
    frame_puts(&b, ev.action);
    frame_puts(&b, "\",\"eval\":");
    frame_uint(&b, ev.eval);
    frame_puts(&b, ",\"parameters\":{");
    bool first = true;
    for (size_t i = 0; ev.parameters[i] != NULL; i += 2) {
        /* A key given twice from C: the first wins, as in errinj_handler_get(). */
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k += 2)
            seen = strcmp(ev.parameters[k], ev.parameters[i]) == 0;
        if (seen)
            continue;
        if (!first)
            frame_put(&b, ",", 1);
        first = false;
        frame_string(&b, ev.parameters[i]);
        frame_put(&b, ":", 1);
        frame_string(&b, ev.parameters[i + 1]);
    }
    frame_put(&b, "}", 1);
    if (ev.file != NULL) {
        frame_puts(&b, ",\"file\":");
        frame_string(&b, ev.file);
        frame_puts(&b, ",\"line\":");
        frame_int(&b, ev.line);
    }
    if (ev.detail != NULL) {
        /* Already a compact JSON object (its maker's contract), so it is copied as it is. */
        frame_puts(&b, ",\"detail\":");
        frame_puts(&b, ev.detail);
    }
    frame_put(&b, "}\n\n", 4); /* with its NUL, which len leaves out */
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    *len = b.len - 1;
    return b.p;
}
