/*
 * net.h - the one HTTP/1.1 and SSE client of the C tests (unit, attack and stress tests).
 *
 * The tests need to see exactly what the server sends and to misbehave on purpose (send half
 * a request, stop reading, reset the connection), which no HTTP library lets them do. So this
 * is hand-rolled: one request per connection, every read and write bounded by a socket
 * timeout or a deadline so that no test can hang on a server that stopped answering, chunked
 * transfer encoding decoded incrementally, an SSE line parser just strict enough to check ids,
 * and a raw reader (net_inbox) for tests that look at the bytes as they travel. Nothing here
 * fails a test by itself: every function returns what happened, and the test asserts.
 */
#ifndef ERRINJ_TESTLIB_NET_H
#define ERRINJ_TESTLIB_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- connections ------------------------------------------------------------------------------ */

/* Connects to the loopback address of `family` (AF_INET or AF_INET6) on port; reads and writes
 * then time out after timeout_s. -1 on failure (errno set). rcvbuf > 0 shrinks the receive
 * buffer before connecting (a slow reader). */
int net_connect_family(int family, unsigned port, double timeout_s, int rcvbuf);

/* net_connect_family() on 127.0.0.1. */
int net_connect(unsigned port, double timeout_s, int rcvbuf);

/* A connection to 127.0.0.1:port whose connect() does not wait: a server that stopped
 * accepting leaves it in the listener's backlog. Non-blocking; -1 on failure. */
int net_connect_nowait(unsigned port);

/* Closes with a TCP reset instead of a FIN: the abrupt disconnect of a crashed client. */
void net_reset(int fd);

/* Sends all of buf (MSG_NOSIGNAL); false when the connection failed first. */
bool net_send_all(int fd, const void *buf, size_t len);

/* True when fd has neither data nor an end of stream to read: the server keeps it open. */
bool net_nothing_pending(int fd);

/* Waits for the server to close fd (EOF or reset), reading and dropping what comes first;
 * false if it has not within `seconds`. */
bool net_closed_by_peer(int fd, double seconds);

/* ---- a growable byte buffer, always NUL-terminated ------------------------------------------- */

struct net_buf {
    char *data;
    size_t len, cap;
};

bool net_buf_add(struct net_buf *b, const void *p, size_t n);
/* Drops the first n bytes. */
void net_buf_consume(struct net_buf *b, size_t n);

/* ---- chunked transfer decoding ---------------------------------------------------------------- */

/* Decodes a chunked body incrementally: raw bytes in, body bytes out. */
struct net_chunked {
    enum { CH_SIZE, CH_DATA, CH_DATA_CRLF, CH_TRAILER, CH_DONE, CH_ERROR } state;
    size_t left;   /* bytes left in the current chunk */
    char line[64]; /* the size line being read */
    size_t line_len;
};

/* Feeds raw bytes; appends decoded bytes to out. Returns false on a malformed stream. */
bool net_chunked_feed(struct net_chunked *c, const char *p, size_t n, struct net_buf *out);

/* ---- plain requests ----------------------------------------------------------------------------- */

struct net_response {
    int status;          /* 0: no response (connection failed, closed or timed out) */
    char headers[2048];  /* the status line and header block, as sent */
    struct net_buf body; /* decoded; never NULL after a read */
};

void net_response_free(struct net_response *r);

/* Case-insensitive header lookup in r->headers: copies the value into out. */
bool net_header(const struct net_response *r, const char *name, char *out, size_t len);

/* Reads a response to its end (Content-Length, chunked end, or EOF). false if none. */
bool net_read_response(int fd, struct net_response *r);

/*
 * One request on a new connection ("Connection: close"). `extra` holds more header lines,
 * each ending in "\r\n" (or NULL); a Host header naming the loopback address and port is added
 * unless `extra` has one. Returns the status (r->status), 0 when nothing came back. Pair with
 * net_response_free().
 */
int net_request_family(int family, unsigned port, const char *method, const char *target, const char *extra,
                       const char *body, size_t body_len, double timeout_s, struct net_response *r);

/* One request without a body on the kept-alive connection *fd (-1: none yet) to 127.0.0.1,
 * reconnecting once when the server closed it. Returns the status, 0 when nothing came back;
 * free r with net_response_free(). */
int net_keepalive_request(int *fd, unsigned port, const char *method, const char *target, double timeout_s,
                          struct net_response *r);

/* net_request_family() on 127.0.0.1. */
int net_request(unsigned port, const char *method, const char *target, const char *extra, const char *body,
                size_t body_len, double timeout_s, struct net_response *r);

/* An integer field of GET /v2/error_injection/status ("seq", "subscribers", ...), or -1.
 * `extra` carries the Authorization line when the server has a token. */
long long net_status_field(unsigned port, const char *extra, const char *key, double timeout_s);

/* ---- SSE streams ---------------------------------------------------------------------------------- */

/* One parsed SSE event: id (0 if none), whether it was an overflow notice, and the data line. */
struct net_sse_event {
    uint64_t id;
    bool overflow;
    uint64_t dropped, next_seq; /* of an overflow notice */
    const char *data;           /* valid until the next read */
    size_t data_len;
};

struct net_sse {
    int fd;
    int status;
    char headers[2048];
    bool chunked;
    struct net_chunked ch;
    struct net_buf text; /* decoded stream bytes; parsed up to text_off */
    size_t text_off;
    bool ended_cleanly; /* the chunked body ended with its last chunk */
    bool closed;        /* EOF or error */
    uint64_t comments, bytes;
    /* the event being gathered */
    uint64_t cur_id;
    bool cur_overflow;
    struct net_buf cur_data;
    struct net_buf event_data; /* the data of the event net_sse_next() returned last */
};

/* Opens GET target as an event stream and reads the response head. status 0 on failure.
 * Pair with net_sse_close(), whatever it returned. */
bool net_sse_open(struct net_sse *s, unsigned port, const char *target, const char *extra, double timeout_s,
                  int rcvbuf);

/* net_sse_open(), then reads up to the first comment (": connected"): from then on the stream
 * gets whatever fires. false unless the status was 200 and the comment came. */
bool net_sse_open_connected(struct net_sse *s, unsigned port, const char *target, const char *extra,
                            double timeout_s, int rcvbuf);

/* Closes the stream (with a TCP reset if `reset`) and frees its buffers. */
void net_sse_close(struct net_sse *s, bool reset);

/* Reads up to max bytes once (blocking up to the socket timeout). false at EOF or error. */
bool net_sse_read(struct net_sse *s, size_t max);

/*
 * Takes the next complete event out of what was read: 1 and *ev, or 0 when more bytes are
 * needed. Comments are counted and skipped. -1 on a line the server never sends.
 */
int net_sse_next(struct net_sse *s, struct net_sse_event *ev);

/* The next event, reading as needed: 1 and *ev, 0 when the stream ended or the socket timed
 * out first, -1 as net_sse_next(). */
int net_sse_next_event(struct net_sse *s, struct net_sse_event *ev);

/* ---- raw reading: the bytes as they travel ------------------------------------------------------ */

/* What the server sent on a connection, NUL-terminated. */
struct net_inbox {
    char *data;
    size_t len, cap;
    bool eof;  /* the server closed (or reset) the connection */
    int error; /* the errno that ended it, 0 for a clean close */
};

void net_inbox_free(struct net_inbox *in);

/* Reads once, waiting until `deadline` (test_now()); false when the deadline passed first. */
bool net_inbox_read(int fd, struct net_inbox *in, double deadline);

/* Reads until `needle` has arrived after offset `from`; returns where, or NULL at the end of
 * the connection or the deadline. */
const char *net_inbox_until(int fd, struct net_inbox *in, size_t from, const char *needle, double deadline);

/* Reads until the server closes the connection; false at the deadline. */
bool net_inbox_to_eof(int fd, struct net_inbox *in, double deadline);

#endif
