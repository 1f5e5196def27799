/*
 * stream.h - one SSE subscriber's cursor into the history, turned into the bytes it is sent.
 *
 * stream.c owns what a stream has been sent: its filter, the last seq it was given or
 * skipped, the greeting and heartbeat it owes, and the rest of a frame too large for one read.
 * It knows nothing of sockets or libmicrohttpd: the server (server_sse.c) calls
 * errinj__stream_read() from libmicrohttpd's content reader and suspends the connection when
 * it returns 0. Every function runs with the server's mutex held (it guards the history and
 * the frame reference counts).
 */
#ifndef ERRINJ_STREAM_H
#define ERRINJ_STREAM_H

#include "history.h"
#include "http.h"

#include <sys/types.h>

struct errinj__stream {
    struct errinj__filter filter;
    uint64_t cursor; /* the last seq this stream has been given or skipped */
    bool greeted;    /* ": connected" written */
    bool ping_due;   /* a ": ping" is owed */
    struct frame_text *pending; /* a frame larger than one read, sent from pending_off on */
    size_t pending_off;
};

/*
 * Starts a stream with filter (taken). `published` is the last seq published now: a live stream
 * starts after it, so whatever fires after the client reads ": connected" reaches it and nothing
 * fired before is sent late; a replay (filter.since) starts after since, or from the start of the
 * history for a since above `published` (an id from an earlier run of the process).
 */
void errinj__stream_init(struct errinj__stream *s, struct errinj__filter *filter, uint64_t published);
/* Drops the pending frame's reference and the filter. */
void errinj__stream_fini(struct errinj__stream *s);

/* The stream's end: returned by errinj__stream_read() once a stopping server gave it everything. */
#define ERRINJ__STREAM_END ((ssize_t)-1)

/*
 * Writes what the stream is owed into buf (at most max bytes): the rest of a pending frame;
 * else the greeting, a due ping, then the frames past its cursor that pass its filter, with an
 * `overflow` event for each run of seqs it can no longer get (evicted, lost or never kept).
 * Returns the bytes written, 0 when there is nothing to send now, or ERRINJ__STREAM_END when the
 * server is stopping and the stream has what was published (or the rest is filtered out).
 */
ssize_t errinj__stream_read(struct errinj__stream *s, const struct errinj__history_view *h, bool stopping, char *buf,
                            size_t max);

/* True when the stream has been handed seq whole (its cursor is past it, no part left to send). */
static inline bool errinj__stream_delivered(const struct errinj__stream *s, uint64_t seq)
{
    return s->cursor >= seq && s->pending == NULL;
}

#endif /* ERRINJ_STREAM_H */
