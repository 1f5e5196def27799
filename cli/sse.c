/*
 * sse.c - the incremental Server-Sent Events parser declared in sse.h.
 *
 * Bytes are gathered into a line buffer until a line end (LF, CR or CRLF) completes the line;
 * each complete line is then interpreted as the WHATWG rules say. A CR ending a chunk cannot
 * yet tell whether an LF follows, so the parser remembers it (after_cr) and swallows an LF at
 * the start of the next chunk: a CRLF split across two reads is one line end, not two.
 * Buffers grow by doubling and never past max_line (+1 for a terminating NUL), which bounds
 * memory whatever the peer sends.
 */
#include "sse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void sse_parser_init(sse_parser *p, sse_event_fn on_event, sse_comment_fn on_comment, void *arg,
                     size_t max_line)
{
    memset(p, 0, sizeof(*p));
    p->on_event = on_event;
    p->on_comment = on_comment;
    p->arg = arg;
    p->max_line = max_line ? max_line : SSE_DEFAULT_MAX_LINE;
    p->retry_ms = -1;
    p->at_start = 1;
}

void sse_parser_free(sse_parser *p)
{
    free(p->line);
    free(p->data);
    free(p->type);
    free(p->id_buffer);
    free(p->last_id);
    p->line = p->data = p->type = p->id_buffer = p->last_id = NULL;
    p->line_len = p->line_cap = p->data_len = p->data_cap = 0;
}

const char *sse_parser_last_event_id(const sse_parser *p)
{
    return p->last_id ? p->last_id : "";
}

long sse_parser_retry_ms(const sse_parser *p)
{
    return p->retry_ms;
}

/* Makes room for `need` bytes in *buf (capacity *cap), within max_line + 1. */
static int reserve(const sse_parser *p, char **buf, size_t *cap, size_t need)
{
    if (need > p->max_line + 1)
        return SSE_ETOOLONG;
    if (need <= *cap)
        return 0;
    size_t new_cap = *cap ? *cap : 256;
    while (new_cap < need)
        new_cap *= 2;
    if (new_cap > p->max_line + 1)
        new_cap = p->max_line + 1;
    char *grown = realloc(*buf, new_cap);
    if (!grown)
        return SSE_ENOMEM;
    *buf = grown;
    *cap = new_cap;
    return 0;
}

/* Replaces *slot with a NUL-terminated copy of len bytes; returns 0 or SSE_ENOMEM (*slot kept). */
static int set_copy(char **slot, const char *s, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return SSE_ENOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    free(*slot);
    *slot = copy;
    return 0;
}

/* Whether the field name of length len is `name`. */
static int field_is(const char *field, size_t len, const char *name)
{
    return len == strlen(name) && memcmp(field, name, len) == 0;
}

/* A blank line: hands the gathered event to on_event and starts a new one. */
static int dispatch(sse_parser *p)
{
    /* The last event id string is set even when no event is dispatched (no data). */
    const char *id = p->id_buffer ? p->id_buffer : "";
    if (set_copy(&p->last_id, id, strlen(id)) != 0)
        return SSE_ENOMEM;

    if (p->data_len == 0) {
        free(p->type);
        p->type = NULL;
        return 0;
    }
    /* Every data line appended an LF; the last one is not part of the data. */
    p->data_len--;
    p->data[p->data_len] = '\0';

    sse_event ev = {
        .type = p->type && p->type[0] ? p->type : "message",
        .data = p->data,
        .data_len = p->data_len,
        .id = p->last_id,
    };
    int rc = p->on_event ? p->on_event(p->arg, &ev) : 0;
    p->data_len = 0;
    free(p->type);
    p->type = NULL;
    return rc;
}

/* Interprets one complete line, NUL-terminated at line[len]. */
static int process_line(sse_parser *p, char *line, size_t len)
{
    if (p->at_start) {
        p->at_start = 0;
        if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            line += 3;
            len -= 3;
        }
    }
    if (len == 0)
        return dispatch(p);

    if (line[0] == ':') {
        char *text = line + 1;
        size_t text_len = len - 1;
        if (text_len > 0 && text[0] == ' ') {
            text++;
            text_len--;
        }
        return p->on_comment ? p->on_comment(p->arg, text, text_len) : 0;
    }

    char *colon = memchr(line, ':', len);
    size_t field_len = colon ? (size_t)(colon - line) : len;
    char *value = colon ? colon + 1 : line + len;
    size_t value_len = len - (size_t)(value - line);
    if (value_len > 0 && value[0] == ' ') {
        value++;
        value_len--;
    }

    if (field_is(line, field_len, "data")) {
        int rc = reserve(p, &p->data, &p->data_cap, p->data_len + value_len + 2);
        if (rc)
            return rc;
        memcpy(p->data + p->data_len, value, value_len);
        p->data_len += value_len;
        p->data[p->data_len++] = '\n';
        p->data[p->data_len] = '\0';
    } else if (field_is(line, field_len, "event")) {
        return set_copy(&p->type, value, value_len);
    } else if (field_is(line, field_len, "id")) {
        /* An id holding a NUL is ignored, as the rules say. */
        return memchr(value, '\0', value_len) ? 0 : set_copy(&p->id_buffer, value, value_len);
    } else if (field_is(line, field_len, "retry")) {
        if (value_len == 0 || strspn(value, "0123456789") != value_len)
            return 0;
        long ms = 0;
        for (size_t i = 0; i < value_len; i++) {
            if (ms > (INT32_MAX - 9) / 10) {
                ms = INT32_MAX; /* absurdly long: clamp rather than overflow */
                break;
            }
            ms = ms * 10 + (value[i] - '0');
        }
        p->retry_ms = ms;
    }
    /* Any other field is ignored, as the rules say. */
    return 0;
}

int sse_parser_feed(sse_parser *p, const char *buf, size_t len)
{
    if (p->error)
        return p->error;

    size_t i = 0;
    while (i < len) {
        if (p->after_cr) {
            p->after_cr = 0;
            if (buf[i] == '\n') {
                i++;
                continue;
            }
        }

        size_t end = i;
        while (end < len && buf[end] != '\n' && buf[end] != '\r')
            end++;

        size_t piece = end - i;
        int rc = reserve(p, &p->line, &p->line_cap, p->line_len + piece + 1);
        if (rc) {
            p->error = rc;
            return rc;
        }
        memcpy(p->line + p->line_len, buf + i, piece);
        p->line_len += piece;
        if (end == len)
            break; /* the line goes on in the next chunk */

        p->after_cr = buf[end] == '\r';
        i = end + 1;
        p->line[p->line_len] = '\0';
        size_t line_len = p->line_len;
        p->line_len = 0;
        rc = process_line(p, p->line, line_len);
        if (rc) {
            if (rc == SSE_ENOMEM || rc == SSE_ETOOLONG)
                p->error = rc;
            return rc;
        }
    }
    return 0;
}

int sse_parser_finish(sse_parser *p)
{
    p->line_len = 0;
    p->data_len = 0;
    free(p->type);
    p->type = NULL;
    p->after_cr = 0;
    p->at_start = 1;
    return p->error;
}
