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
#include "json.h"

#include "events.h"
#include "util.h"

#include <stdint.h>
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
        size_t n = errinj__utf8_sequence((const unsigned char *)s + i, len - i, NULL);
        if (n > 0) {
            memcpy(fixed + o, s + i, n);
            o += n;
            i += n;
            continue;
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
    if (n == 0)
        return; /* s may be NULL then (an empty tail): memcpy must not see it */
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

/*
 * A JSON string as jansson writes it; bytes that are not UTF-8 become U+FFFD. The frame grows to
 * at most `limit` bytes: the string is cut before the first character that would not fit (never
 * inside an escape or a UTF-8 sequence) and still closed. Returns true when it was cut. The work
 * is bounded by what is written, so a huge value costs no more than the part that fits.
 */
static bool frame_string_within(struct frame_buf *b, const char *str, size_t limit)
{
    const unsigned char *s = (const unsigned char *)str;
    frame_put(b, "\"", 1);
    for (;;) {
        size_t room = b->len + 1 < limit ? limit - b->len - 1 : 0; /* the closing quote */
        /* Copy the longest run that needs no escape in one go. */
        size_t run = 0;
        while (run < room && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
            run++;
        frame_put(b, (const char *)s, run);
        s += run;
        room -= run;
        if (*s == '\0')
            break;
        unsigned c = *s;
        char esc[8];
        size_t n = 1, out;
        const char *piece = esc;
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            out = 2;
        } else if (c < 0x20) {
            const char *named = c == '\b' ? "\\b" : c == '\f' ? "\\f" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                                : c == '\t' ? "\\t" : NULL;
            if (named != NULL)
                piece = named, out = 2;
            else
                out = (size_t)snprintf(esc, sizeof(esc), "\\u%04X", c);
        } else if (c < 0x80) {
            out = 1; /* a plain character the run stopped at for want of room */
            piece = (const char *)s;
        } else {
            n = errinj__utf8_sequence(s, strnlen((const char *)s, 4), NULL);
            if (n == 0)
                piece = "\xef\xbf\xbd", out = 3, n = 1;
            else
                piece = (const char *)s, out = n;
        }
        if (out > room) {
            frame_put(b, "\"", 1);
            return true;
        }
        frame_put(b, piece, out);
        s += n;
    }
    frame_put(b, "\"", 1);
    return false;
}

static void frame_string(struct frame_buf *b, const char *str)
{
    frame_string_within(b, str, SIZE_MAX);
}

char *errinj__record_sse_frame(const struct errinj__record *rec, size_t *len)
{
    errinj_event ev;
    errinj__record_to_event(rec, &ev);
    struct frame_buf b = {0};
    frame_reserve(&b, 256);
    frame_puts(&b, "id: ");
    frame_uint(&b, ev.seq);
    frame_puts(&b, "\ndata: ");
    size_t line_start = b.len - 6;
    frame_puts(&b, "{\"injection\":");
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
    /* What follows the parameters, written first so that the parameters know their room. */
    static const char truncated[] = ",\"truncated\":true";
    struct frame_buf tail = {0};
    if (ev.file != NULL) {
        frame_puts(&tail, ",\"file\":");
        frame_string(&tail, ev.file);
        frame_puts(&tail, ",\"line\":");
        frame_int(&tail, ev.line);
    }
    if (ev.detail != NULL) {
        /* Already a compact JSON object (its maker's contract), so it is copied as it is. */
        frame_puts(&tail, ",\"detail\":");
        frame_puts(&tail, ev.detail);
    }
    /* The line: the parameters' "}", the tail, "}" and the line feed; a tail too long for the
     * line (a huge file name or detail) is left out rather than the event. */
    size_t fixed = b.len - line_start + 1 + (sizeof(truncated) - 1) + 2;
    if (tail.failed || fixed + tail.len > ERRINJ__EVENT_LINE_MAX)
        tail.len = 0;
    size_t limit = line_start + ERRINJ__EVENT_LINE_MAX - (fixed - (b.len - line_start)) - tail.len;
    bool cut = false;
    for (size_t i = 0; ev.parameters[i] != NULL && !cut; i += 2) {
        size_t mark = b.len;
        if (i > 0)
            frame_put(&b, ",", 1);
        /* A pair whose key does not fit with at least an empty value is left out. */
        if (frame_string_within(&b, ev.parameters[i], limit > 3 ? limit - 3 : 0) || b.len + 3 > limit) {
            b.len = mark;
            cut = true;
            break;
        }
        frame_put(&b, ":", 1);
        cut = frame_string_within(&b, ev.parameters[i + 1], limit);
    }
    frame_put(&b, "}", 1);
    if (cut)
        frame_puts(&b, truncated);
    frame_put(&b, tail.p, tail.len);
    free(tail.p);
    frame_put(&b, "}\n\n", 4); /* with its NUL, which len leaves out */
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    *len = b.len - 1;
    return b.p;
}
