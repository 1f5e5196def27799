/*
 * sse_stream.h - the benchmarks' own reader of errinj's event stream, fed with whatever bytes
 * arrive (split anywhere) from a socket or a pipe.
 *
 * It is deliberately separate from cli/sse.c: the benchmarks measure the server against an
 * independent client, and they need a reader that costs almost nothing per event so that a
 * thousand of them fit on one core. It understands just enough: an HTTP/1.1 response head
 * (status 200 or not, chunked or not), the SSE fields `id`, `event` and `data`, comments, and
 * a blank line that ends an event. In SSE_INPUT_RAW it reads SSE without HTTP around it (the
 * output of `curl -N`); in SSE_INPUT_JSON_LINES each line is one event's data (the output of
 * `errinjctl events --json`). In SSE_INPUT_WEBSOCKET it reads the answer to a WebSocket handshake
 * on GET .../ws (101, then server frames): the 101 counts as the ": connected" comment, each text
 * message is an event whose id is its "seq", and {"overflow":{...}} is an "overflow" event.
 */
#ifndef BENCH_SSE_STREAM_H
#define BENCH_SSE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sse_input { SSE_INPUT_HTTP, SSE_INPUT_RAW, SSE_INPUT_JSON_LINES, SSE_INPUT_WEBSOCKET };

struct sse_stream;

/* One event, valid during the callback. `data` is NUL-terminated; it is empty when the stream
 * was told not to keep data (see sse_stream_init) and the event is unnamed. */
struct sse_event {
    bool has_id;
    uint64_t id;
    const char *name; /* "" for unnamed events, "overflow" for overflow notices */
    const char *data;
    size_t data_len;
};

struct sse_callbacks {
    void (*on_event)(struct sse_stream *s, const struct sse_event *ev, void *arg);
    void (*on_comment)(struct sse_stream *s, const char *text, size_t len, void *arg); /* may be NULL */
};

struct sse_stream {
    enum sse_input input;
    bool keep_data; /* copy data of unnamed events too (named ones are always kept) */
    struct sse_callbacks cb;
    void *arg;

    /* HTTP response head and chunked transfer coding. */
    bool head_done;
    int status;
    bool chunked;
    int chunk_state;
    uint64_t chunk_left;

    /* The line being assembled when it spans reads. */
    char *line;
    size_t line_len, line_cap;

    /* The event being assembled. */
    bool has_id;
    uint64_t id;
    char name[32];
    bool has_data; /* a data field came, kept or not */
    char *data;
    size_t data_len, data_cap;

    bool failed; /* a malformed response: the stream stops parsing */
    uint64_t bytes;
};

void sse_stream_init(struct sse_stream *s, enum sse_input input, bool keep_data, const struct sse_callbacks *cb,
                     void *arg);
void sse_stream_free(struct sse_stream *s);

/* Feeds bytes as they arrived. Returns false once the response is not a 200 event stream or is
 * malformed (s->status says which status came). */
bool sse_stream_feed(struct sse_stream *s, const char *buf, size_t len);

/* Reads an unsigned integer JSON member `"key":N` from data; false when absent. */
bool sse_json_u64(const char *data, size_t len, const char *key, uint64_t *out);

#endif
