/*
 * history.h - the server's kept events: finished SSE frames indexed by seq.
 *
 * history.c owns the store: a ring of `cap` frames, also bounded in bytes, that the server
 * thread fills as it drains events. Seqs it never got (lost when the ring between firing
 * threads and the server was full, or published before the server started) are kept as
 * placeholders without text, so that every reader can tell "filtered out" from "missed" and
 * report the second as an overflow. The store takes no lock: the server's mutex guards it and
 * the reference counts of its frames. The streams (stream.c), the server-side waits (wait.c)
 * and the WebSocket sessions read it through a view valid only while that mutex is held; none
 * of them keeps a pointer into it past that, except a frame_text reference it took.
 */
#ifndef ERRINJ_HISTORY_H
#define ERRINJ_HISTORY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct errinj__entry;

/* A finished SSE frame "id: N\ndata: {...}\n\n", shared by the history and any client in the
 * middle of sending it. */
struct frame_text {
    unsigned refs; /* under the server's mutex */
    size_t len;
    char *bytes;
};

/* Takes bytes (malloc'd, len long) into a frame text with one reference; frees bytes and
 * returns NULL when out of memory. */
struct frame_text *errinj__frame_text_new(char *bytes, size_t len);
/* Drops one reference; the last frees the text. NULL is ignored. */
void errinj__frame_text_unref(struct frame_text *t);

struct frame {
    struct frame_text *text; /* NULL: this seq was lost (the ring was full) or never kept */
    size_t len;
    struct errinj__entry *entry; /* a reference (errinj__entry_ref): the name stays readable */
    uint8_t type, phase;
    unsigned shard;
};

/* The store. Its fields are read by the server's files and by tests; only history.c writes them. */
struct errinj__history {
    struct frame *frames;
    size_t cap;       /* frames kept at most */
    size_t bytes_max; /* text bytes kept at most (the newest frame is kept whatever its size) */
    size_t bytes;     /* text bytes kept now */
    uint64_t oldest;  /* first seq still kept; newest + 1 when empty */
    uint64_t newest;  /* last seq stored */
};

/* An empty store of cap frames and bytes_max bytes, whose next seq is after_seq + 1. Returns 0 or
 * ERRINJ_ENOMEM. Pair with errinj__history_fini(). */
int errinj__history_init(struct errinj__history *h, size_t cap, size_t bytes_max, uint64_t after_seq);
/* Drops every frame's reference and the ring. */
void errinj__history_fini(struct errinj__history *h);

/*
 * Stores the frame of seq, taking its text reference and its entry reference (NULL for a
 * placeholder; a frame without text is one).
 * The seqs between the newest kept and seq become placeholders; the oldest frames are evicted
 * until the count and the bytes fit. A seq not above the newest is dropped (the ring delivers in
 * order, so this does not happen).
 */
void errinj__history_store(struct errinj__history *h, uint64_t seq, const struct frame *in);

/* The kept seqs are oldest..newest (none when oldest > newest). */
struct errinj__history_view {
    const struct frame *frames;
    size_t cap;
    uint64_t oldest;
    uint64_t newest;
};

static inline struct errinj__history_view errinj__history_view_of(const struct errinj__history *h)
{
    return (struct errinj__history_view){h->frames, h->cap, h->oldest, h->newest};
}

/* The frame of a kept seq (oldest <= seq <= newest). */
static inline const struct frame *errinj__history_at(const struct errinj__history_view *h, uint64_t seq)
{
    return &h->frames[seq % h->cap];
}

/*
 * The first seq after `cursor` (cursor < newest) that a subscriber can still be sent, and in
 * *skipped how many before it it can no longer get: evicted, never kept, or lost in the ring.
 * A subscriber that skipped some owes its client an overflow notice before that event.
 */
static inline uint64_t errinj__history_next(const struct errinj__history_view *h, uint64_t cursor,
                                            uint64_t *skipped)
{
    uint64_t next = cursor + 1;
    *skipped = 0;
    if (next < h->oldest) {
        *skipped = h->oldest - next;
        next = h->oldest;
    }
    while (next <= h->newest && errinj__history_at(h, next)->text == NULL) {
        (*skipped)++;
        next++;
    }
    return next;
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
