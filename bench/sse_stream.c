/*
 * sse_stream.c - see sse_stream.h. Three layers, each a small state machine fed whatever the
 * previous one produced: the HTTP response head, the chunked transfer coding, and SSE lines (or,
 * after a 101, WebSocket frames).
 * A line that arrives whole in one read is parsed in place; only a line split across reads is
 * copied, so the common case costs one memchr per line.
 */
#define _GNU_SOURCE
#include "sse_stream.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { CHUNK_SIZE, CHUNK_EXT, CHUNK_DATA, CHUNK_DATA_CR, CHUNK_DATA_LF, CHUNK_END };

void sse_stream_init(struct sse_stream *s, enum sse_input input, bool keep_data, const struct sse_callbacks *cb,
                     void *arg)
{
    memset(s, 0, sizeof(*s));
    s->input = input;
    s->keep_data = keep_data;
    s->cb = *cb;
    s->arg = arg;
    s->head_done = input != SSE_INPUT_HTTP && input != SSE_INPUT_WEBSOCKET;
    s->status = s->head_done ? 200 : 0;
}

void sse_stream_free(struct sse_stream *s)
{
    free(s->line);
    free(s->data);
    s->line = s->data = NULL;
}

static bool grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return true;
    size_t cap2 = *cap ? *cap : 256;
    while (cap2 < need)
        cap2 *= 2;
    char *p = realloc(*buf, cap2);
    if (p == NULL)
        return false;
    *buf = p;
    *cap = cap2;
    return true;
}

static bool data_append(struct sse_stream *s, const char *p, size_t n, bool newline_first)
{
    if (!grow(&s->data, &s->data_cap, s->data_len + n + 2))
        return false;
    if (newline_first)
        s->data[s->data_len++] = '\n';
    memcpy(s->data + s->data_len, p, n);
    s->data_len += n;
    s->data[s->data_len] = '\0';
    return true;
}

static void dispatch(struct sse_stream *s, bool has_data)
{
    if (s->has_id || has_data || s->name[0] != '\0') {
        struct sse_event ev = {s->has_id, s->id, s->name, s->data != NULL ? s->data : "", s->data_len};
        s->cb.on_event(s, &ev, s->arg);
    }
    s->has_id = false;
    s->name[0] = '\0';
    s->data_len = 0;
    if (s->data != NULL)
        s->data[0] = '\0';
}

/* One complete line, without its LF (a trailing CR is dropped here). */
static void handle_line(struct sse_stream *s, const char *p, size_t n)
{
    if (n > 0 && p[n - 1] == '\r')
        n--;
    if (s->input == SSE_INPUT_JSON_LINES) {
        if (n == 0)
            return;
        s->data_len = 0;
        if (!data_append(s, p, n, false)) {
            s->failed = true;
            return;
        }
        dispatch(s, true);
        return;
    }
    if (n == 0) {
        dispatch(s, s->has_data);
        s->has_data = false;
        return;
    }
    if (p[0] == ':') {
        if (s->cb.on_comment != NULL) {
            size_t skip = n > 1 && p[1] == ' ' ? 2 : 1;
            s->cb.on_comment(s, p + skip, n - skip, s->arg);
        }
        return;
    }
    const char *colon = memchr(p, ':', n);
    size_t flen = colon != NULL ? (size_t)(colon - p) : n;
    const char *v = colon != NULL ? colon + 1 : p + n;
    size_t vlen = (size_t)(p + n - v);
    if (vlen > 0 && v[0] == ' ')
        v++, vlen--;
    if (flen == 2 && memcmp(p, "id", 2) == 0) {
        uint64_t id = 0;
        size_t i = 0;
        for (; i < vlen && v[i] >= '0' && v[i] <= '9'; i++)
            id = id * 10 + (uint64_t)(v[i] - '0');
        s->has_id = i > 0 && i == vlen;
        s->id = id;
    } else if (flen == 5 && memcmp(p, "event", 5) == 0) {
        size_t m = vlen < sizeof(s->name) - 1 ? vlen : sizeof(s->name) - 1;
        memcpy(s->name, v, m);
        s->name[m] = '\0';
    } else if (flen == 4 && memcmp(p, "data", 4) == 0) {
        if ((s->keep_data || s->name[0] != '\0') && !data_append(s, v, vlen, s->has_data))
            s->failed = true;
        s->has_data = true;
    }
}

/* Bytes of the event stream proper (after HTTP and chunking). */
static void feed_lines(struct sse_stream *s, const char *p, size_t n)
{
    while (n > 0 && !s->failed) {
        const char *nl = memchr(p, '\n', n);
        if (nl == NULL) {
            if (!grow(&s->line, &s->line_cap, s->line_len + n)) {
                s->failed = true;
                return;
            }
            memcpy(s->line + s->line_len, p, n);
            s->line_len += n;
            return;
        }
        size_t m = (size_t)(nl - p);
        if (s->line_len > 0) {
            if (!grow(&s->line, &s->line_cap, s->line_len + m)) {
                s->failed = true;
                return;
            }
            memcpy(s->line + s->line_len, p, m);
            s->line_len += m;
            size_t len = s->line_len;
            s->line_len = 0;
            handle_line(s, s->line, len);
        } else {
            handle_line(s, p, m);
        }
        p = nl + 1;
        n -= m + 1;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void feed_chunked(struct sse_stream *s, const char *p, size_t n)
{
    while (n > 0 && !s->failed) {
        switch (s->chunk_state) {
        case CHUNK_SIZE: {
            int h = hexval(*p);
            if (h >= 0) {
                s->chunk_left = s->chunk_left * 16 + (uint64_t)h;
            } else if (*p == '\n') {
                s->chunk_state = s->chunk_left > 0 ? CHUNK_DATA : CHUNK_END;
            } else {
                s->chunk_state = CHUNK_EXT; /* ";ext" or the CR before LF */
            }
            p++, n--;
            break;
        }
        case CHUNK_EXT:
            if (*p == '\n')
                s->chunk_state = s->chunk_left > 0 ? CHUNK_DATA : CHUNK_END;
            p++, n--;
            break;
        case CHUNK_DATA: {
            size_t m = n < s->chunk_left ? n : (size_t)s->chunk_left;
            feed_lines(s, p, m);
            s->chunk_left -= m;
            p += m, n -= m;
            if (s->chunk_left == 0)
                s->chunk_state = CHUNK_DATA_CR;
            break;
        }
        case CHUNK_DATA_CR:
            if (*p == '\r') {
                s->chunk_state = CHUNK_DATA_LF;
            } else if (*p == '\n') {
                s->chunk_state = CHUNK_SIZE;
            } else {
                s->failed = true;
                return;
            }
            p++, n--;
            break;
        case CHUNK_DATA_LF:
            if (*p != '\n') {
                s->failed = true;
                return;
            }
            s->chunk_state = CHUNK_SIZE;
            p++, n--;
            break;
        default: /* CHUNK_END: trailers, ignored */
            return;
        }
    }
}

/* One text message of a WebSocket session, as the event it carries. */
static void ws_message(struct sse_stream *s, const char *p, size_t n)
{
    static const char overflow[] = "{\"overflow\":";
    bool is_overflow = n >= sizeof(overflow) - 1 && memcmp(p, overflow, sizeof(overflow) - 1) == 0;
    s->data_len = 0;
    if (is_overflow) {
        strcpy(s->name, "overflow");
    } else {
        /* The seq member, found by its quote-s-e-q: scanning key by key (or memmem) cost the
         * thousand-session client more than everything else it does. errinj puts seq early. */
        const char *at = NULL;
        for (size_t i = 0; i + 6 <= n && at == NULL; i++)
            if (p[i] == 'q' && i >= 3 && p[i - 1] == 'e' && p[i - 2] == 's' && p[i - 3] == '"' && p[i + 1] == '"')
                at = p + i - 3;
        s->has_id = at != NULL && sse_json_u64(at, (size_t)(p + n - at), "seq", &s->id);
    }
    if ((s->keep_data || is_overflow) && !data_append(s, p, n, false)) {
        s->failed = true;
        return;
    }
    dispatch(s, true);
}

/* Parses the server frames at p; returns how many bytes whole frames took. */
static size_t ws_frames(struct sse_stream *s, const char *p, size_t n)
{
    size_t used = 0;
    while (n - used >= 2 && !s->failed) {
        const unsigned char *f = (const unsigned char *)p + used;
        uint64_t len = f[1] & 0x7f;
        size_t head = 2;
        if (len == 126) {
            if (n - used < 4)
                break;
            len = (uint64_t)f[2] << 8 | f[3];
            head = 4;
        } else if (len == 127) {
            if (n - used < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | f[2 + i];
            head = 10;
        }
        if (f[1] & 0x80 || len > n - used - head) {
            s->failed = (f[1] & 0x80) != 0; /* a server never masks */
            break;
        }
        if ((f[0] & 0x0f) == 1 && (f[0] & 0x80))
            ws_message(s, (const char *)f + head, (size_t)len);
        used += head + (size_t)len;
    }
    return used;
}

/* The whole size of the frame that starts at p (n bytes of it known), or of its header while the
 * header is incomplete. */
static size_t ws_frame_need(const unsigned char *p, size_t n)
{
    if (n < 2)
        return 2;
    uint64_t len = p[1] & 0x7f;
    size_t head = len == 126 ? 4 : len == 127 ? 10 : 2;
    if (n < head)
        return head;
    if (len == 126)
        len = (uint64_t)p[2] << 8 | p[3];
    else if (len == 127)
        for (int i = 0, k = 0; i < 8; i++, k++)
            len = (k == 0 ? 0 : len << 8) | p[2 + i];
    return head + (size_t)len;
}

/* Frames are parsed where they arrived; only a frame split across reads is copied (until it is
 * whole), as lines are. */
static void feed_ws(struct sse_stream *s, const char *p, size_t n)
{
    while (s->line_len > 0 && n > 0 && !s->failed) {
        size_t need = ws_frame_need((const unsigned char *)s->line, s->line_len);
        size_t take = need - s->line_len < n ? need - s->line_len : n;
        if (!grow(&s->line, &s->line_cap, s->line_len + take)) {
            s->failed = true;
            return;
        }
        memcpy(s->line + s->line_len, p, take);
        s->line_len += take;
        p += take, n -= take;
        if (s->line_len == ws_frame_need((const unsigned char *)s->line, s->line_len)) {
            size_t used = ws_frames(s, s->line, s->line_len);
            if (used == s->line_len)
                s->line_len = 0;
        }
    }
    if (n == 0 || s->failed)
        return;
    size_t used = ws_frames(s, p, n);
    if (used < n && !s->failed) {
        if (!grow(&s->line, &s->line_cap, n - used)) {
            s->failed = true;
            return;
        }
        memcpy(s->line, p + used, n - used);
        s->line_len = n - used;
    }
}

/* Parses the response head held in s->line (len bytes up to and including the blank line). */
static bool parse_head(struct sse_stream *s, const char *head, size_t len)
{
    if (len < 12 || memcmp(head, "HTTP/1.", 7) != 0)
        return false;
    s->status = atoi(head + 9);
    if (s->input == SSE_INPUT_WEBSOCKET) {
        if (s->status == 101 && s->cb.on_comment != NULL)
            s->cb.on_comment(s, "connected", 9, s->arg);
        return s->status == 101;
    }
    const char *p = memchr(head, '\n', len);
    while (p != NULL && p + 1 < head + len) {
        const char *line = p + 1;
        const char *end = memchr(line, '\n', (size_t)(head + len - line));
        if (end == NULL)
            break;
        static const char te[] = "transfer-encoding:";
        if ((size_t)(end - line) > sizeof(te) - 1 && strncasecmp(line, te, sizeof(te) - 1) == 0) {
            const char *v = line + sizeof(te) - 1;
            while (v < end && *v == ' ')
                v++;
            if ((size_t)(end - v) >= 7 && strncasecmp(v, "chunked", 7) == 0)
                s->chunked = true;
        }
        p = end;
    }
    return s->status == 200;
}

bool sse_stream_feed(struct sse_stream *s, const char *buf, size_t len)
{
    if (s->failed)
        return false;
    s->bytes += len;
    if (!s->head_done) {
        /* The head is small and comes once: collect it in the line buffer. */
        size_t old = s->line_len;
        if (!grow(&s->line, &s->line_cap, old + len + 1)) {
            s->failed = true;
            return false;
        }
        memcpy(s->line + old, buf, len);
        s->line_len += len;
        s->line[s->line_len] = '\0';
        char *end = strstr(s->line, "\r\n\r\n");
        if (end == NULL)
            return true;
        size_t head_len = (size_t)(end - s->line) + 4;
        s->head_done = true;
        if (!parse_head(s, s->line, head_len)) {
            s->failed = true;
            return false;
        }
        size_t rest = s->line_len - head_len;
        char *tmp = NULL;
        if (rest > 0) {
            tmp = malloc(rest);
            if (tmp == NULL) {
                s->failed = true;
                return false;
            }
            memcpy(tmp, s->line + head_len, rest);
        }
        s->line_len = 0;
        if (rest > 0) {
            bool ok = sse_stream_feed(s, tmp, rest);
            s->bytes -= rest;
            free(tmp);
            return ok;
        }
        return true;
    }
    if (s->input == SSE_INPUT_WEBSOCKET)
        feed_ws(s, buf, len);
    else if (s->chunked)
        feed_chunked(s, buf, len);
    else
        feed_lines(s, buf, len);
    return !s->failed;
}

bool sse_json_u64(const char *data, size_t len, const char *key, uint64_t *out)
{
    size_t klen = strlen(key);
    for (const char *p = data; p + klen + 3 <= data + len; p++) {
        p = memchr(p, '"', (size_t)(data + len - p));
        if (p == NULL || p + klen + 3 > data + len)
            return false;
        if (memcmp(p + 1, key, klen) == 0 && p[klen + 1] == '"' && p[klen + 2] == ':') {
            const char *v = p + klen + 3;
            uint64_t x = 0;
            bool any = false;
            while (v < data + len && *v >= '0' && *v <= '9') {
                x = x * 10 + (uint64_t)(*v - '0');
                v++;
                any = true;
            }
            if (any)
                *out = x;
            return any;
        }
    }
    return false;
}
