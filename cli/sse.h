/*
 * sse.h - an incremental parser for Server-Sent Events (text/event-stream).
 *
 * The parser follows the WHATWG HTML rules for event streams. It is fed bytes as they
 * arrive from the network, in chunks split anywhere (in the middle of a line, between the CR
 * and the LF of a CRLF), and calls back once per complete event and once per comment line.
 *
 * Rules it implements:
 * - Lines end in LF, CR or CRLF. A leading UTF-8 byte order mark is skipped.
 * - A blank line dispatches the event gathered so far; an event without data is not
 *   dispatched (but its id still becomes the last event id).
 * - A line starting with ':' is a comment, reported to on_comment (the server says
 *   ": connected" and ": ping" that way).
 * - "field: value": one space after the colon is dropped; a line without a colon is a field
 *   with an empty value. Fields: "data" (several data lines are joined with LF), "event" (the
 *   event type, "message" when absent), "id" (persists across events until changed; ignored
 *   when it contains a NUL byte), "retry" (all digits: reconnection time in milliseconds).
 *   Unknown fields are ignored.
 * - An event left unfinished when the stream ends is discarded (sse_parser_finish()).
 *
 * Memory is bounded: a line longer than max_line bytes, or the data of one event longer than
 * max_line bytes, stops the parser with SSE_ETOOLONG. There is no global state; a parser is
 * used by one thread at a time.
 */
#ifndef ERRINJCTL_SSE_H
#define ERRINJCTL_SSE_H

#include <stddef.h>

/* The default cap on one line and on the data of one event: 4 MiB. */
#define SSE_DEFAULT_MAX_LINE ((size_t)4 << 20)

/* Return codes of sse_parser_feed() and sse_parser_finish(), besides 0 and a callback's own. */
enum {
    SSE_ENOMEM = -1,   /* out of memory */
    SSE_ETOOLONG = -2, /* a line or an event's data went over max_line bytes */
};

/* One dispatched event. Every pointer is valid only during the callback. */
typedef struct sse_event {
    const char *type; /* the "event" field, or "message" */
    const char *data; /* the data lines joined with LF, NUL-terminated */
    size_t data_len;  /* strlen(data), unless the data holds NUL bytes */
    const char *id;   /* the last event id ("" when none was ever set) */
} sse_event;

/*
 * Called for each dispatched event. Return 0 to go on; any other value stops the parser and
 * is returned by sse_parser_feed() (use a positive value to tell it from SSE_E* codes).
 */
typedef int (*sse_event_fn)(void *arg, const sse_event *ev);

/*
 * Called for each comment line, with the text after the ':' (one leading space dropped),
 * NUL-terminated, valid only during the call. Return values as for sse_event_fn.
 */
typedef int (*sse_comment_fn)(void *arg, const char *text, size_t len);

typedef struct sse_parser {
    /* Set by sse_parser_init(). */
    sse_event_fn on_event;     /* may be NULL */
    sse_comment_fn on_comment; /* may be NULL */
    void *arg;
    size_t max_line;

    /* Everything below is private to sse.c. */
    char *line; /* the line being gathered (not NUL-terminated while gathering) */
    size_t line_len, line_cap;
    char *data; /* the data buffer of the event being gathered */
    size_t data_len, data_cap;
    char *type;      /* the event type buffer, NULL when empty */
    char *id_buffer; /* the last event id buffer (persists across events) */
    char *last_id;   /* the last event id string, set at each dispatch */
    long retry_ms;   /* -1 until a valid retry field arrives */
    int after_cr;    /* the previous byte was a CR: an LF right after it is part of that line end */
    int at_start;    /* no line has been completed yet: a BOM may still be skipped */
    int error;       /* a sticky SSE_E* code once the parser failed, else 0 */
} sse_parser;

/*
 * Prepares `p` to parse a new stream. `max_line` 0 takes SSE_DEFAULT_MAX_LINE. Does not
 * allocate; pair with sse_parser_free().
 */
void sse_parser_init(sse_parser *p, sse_event_fn on_event, sse_comment_fn on_comment, void *arg,
                     size_t max_line);

/*
 * Parses `len` bytes of the stream (any split). Returns 0, SSE_ENOMEM, SSE_ETOOLONG, or the
 * non-zero value a callback returned. After SSE_E* the parser stays failed and returns the same
 * code; after a callback's stop the rest of that chunk is dropped, and feeding more continues
 * with the next byte given (the caller normally stops instead).
 */
int sse_parser_feed(sse_parser *p, const char *buf, size_t len);

/*
 * Ends the stream: a pending unfinished line and event are discarded, as the rules say. Returns
 * 0, or the sticky error. The parser may then be fed a new stream (the last event id is kept,
 * as a reconnecting client sends it in Last-Event-ID).
 */
int sse_parser_finish(sse_parser *p);

/* The last event id string: "" until an event was dispatched after an id field. */
const char *sse_parser_last_event_id(const sse_parser *p);

/* The reconnection time from the last valid "retry" field, or -1. */
long sse_parser_retry_ms(const sse_parser *p);

/* Releases the parser's buffers. `p` itself belongs to the caller. */
void sse_parser_free(sse_parser *p);

#endif
