/*
 * history.h - the server's kept events, as the parts that run on the server thread read them.
 *
 * server.c owns the history: a ring of finished SSE frames indexed by seq, which it fills as
 * it drains events and evicts by count and by bytes. The streams, the server-side waits
 * (wait.c) and the WebSocket sessions read it through a view that is valid only while the
 * server's mutex is held; none of them keeps a pointer into it past that.
 */
#ifndef ERRINJ_HISTORY_H
#define ERRINJ_HISTORY_H

#include "internal.h"

#include <string.h>

/* A finished SSE frame "id: N\ndata: {...}\n\n", shared by the history and any client in the
 * middle of sending it. */
struct frame_text {
    unsigned refs; /* under the server's mutex */
    size_t len;
    char *bytes;
};

struct frame {
    struct frame_text *text; /* NULL: this seq was lost (the ring was full) or never kept */
    size_t len;
    struct errinj__entry *entry;
    uint8_t type, phase;
    unsigned shard;
};

/* The kept seqs are oldest..newest (none when oldest > newest). */
struct errinj__history_view {
    const struct frame *frames;
    size_t cap;
    uint64_t oldest;
    uint64_t newest;
};

static inline const struct frame *errinj__history_at(const struct errinj__history_view *h, uint64_t seq)
{
    return &h->frames[seq % h->cap];
}

/* The event JSON inside a kept frame (after "data: ", without the blank line). */
static inline const char *errinj__frame_json(const struct frame *f, size_t *len)
{
    const char *data = memchr(f->text->bytes, '\n', f->len);
    data = data != NULL ? data + 1 + 6 : f->text->bytes; /* "data: " */
    *len = (size_t)(f->text->bytes + f->len - 2 - data);
    return data;
}

#endif /* ERRINJ_HISTORY_H */
