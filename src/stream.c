/*
 * stream.c - an SSE subscriber's cursor into the history, turned into bytes (see stream.h).
 *
 * A stream costs nothing until it reads: the frames are made once, kept in the history, and
 * copied into each stream's read buffer from there. A frame larger than one read is not copied
 * per client either: the stream keeps a reference to it and an offset. A client that falls
 * behind what the history keeps is told exactly how many seqs it missed, in an `overflow`
 * event, before the next event it gets; nothing is lost silently.
 */
#include "stream.h"
#include "json.h"

#include "registry.h"

#include <stdlib.h>

void errinj__stream_init(struct errinj__stream *s, struct errinj__filter *filter, uint64_t published)
{
    *s = (struct errinj__stream){.filter = *filter};
    *filter = (struct errinj__filter){0};
    if (s->filter.since < 0)
        s->cursor = published; /* live only: nothing published before this moment */
    else if ((uint64_t)s->filter.since > published)
        s->cursor = 0; /* an id from an earlier run of the process: replay all this run kept */
    else
        s->cursor = (uint64_t)s->filter.since;
}

void errinj__stream_fini(struct errinj__stream *s)
{
    errinj__frame_text_unref(s->pending);
    s->pending = NULL;
    errinj__filter_free(&s->filter);
}

/* Appends text to buf if it fits; otherwise, when buf is still empty and the text is a shared
 * frame, sends what fits and keeps a reference to the frame with the offset to go on from (no
 * copy per client, however large the frame). Returns false when the read is full. */
static bool emit(struct errinj__stream *s, char *buf, size_t max, size_t *used, const char *text, size_t len,
                 struct frame_text *shared)
{
    if (*used + len <= max) {
        memcpy(buf + *used, text, len);
        *used += len;
        return true;
    }
    if (*used > 0 || shared == NULL)
        return false;
    memcpy(buf, text, max);
    shared->refs++;
    s->pending = shared;
    s->pending_off = max;
    *used = max;
    return true;
}

ssize_t errinj__stream_read(struct errinj__stream *s, const struct errinj__history_view *h, bool stopping, char *buf,
                            size_t max)
{
    if (s->pending != NULL) {
        size_t left = s->pending->len - s->pending_off;
        size_t n = left < max ? left : max;
        memcpy(buf, s->pending->bytes + s->pending_off, n);
        s->pending_off += n;
        if (s->pending_off == s->pending->len) {
            errinj__frame_text_unref(s->pending);
            s->pending = NULL;
        }
        return (ssize_t)n;
    }
    /* Stopping ends the stream once it has what was published: a program that fires and then
     * exits at once (errinj-run's sqlite3, cp) must still be seen to have fired. */
    if (stopping && s->cursor >= h->newest)
        return ERRINJ__STREAM_END;
    size_t used = 0;
    if (!s->greeted) {
        emit(s, buf, max, &used, ": connected\n\n", 13, NULL);
        s->greeted = true;
    }
    if (s->ping_due && emit(s, buf, max, &used, ": ping\n\n", 8, NULL))
        s->ping_due = false;
    while (s->cursor < h->newest) {
        uint64_t skipped;
        uint64_t next = errinj__history_next(h, s->cursor, &skipped);
        if (skipped > 0) {
            char notice[ERRINJ__OVERFLOW_FRAME_MAX];
            size_t n = errinj__json_overflow_frame(notice, skipped, next);
            if (!emit(s, buf, max, &used, notice, n, NULL))
                break;
            s->cursor = next - 1;
            continue;
        }
        const struct frame *fr = errinj__history_at(h, next);
        if (errinj__filter_passes(&s->filter, fr) && !emit(s, buf, max, &used, fr->text->bytes, fr->len, fr->text))
            break;
        s->cursor = next;
        if (s->pending != NULL)
            break;
    }
    if (used == 0 && stopping)
        return ERRINJ__STREAM_END; /* the rest was filtered out */
    return (ssize_t)used;
}
