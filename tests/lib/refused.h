/*
 * refused.h - the table of requests errinj's REST API must refuse, written once and run by two
 * drivers: tests/unit/test_http.c hands each row to the router as a pure function (no socket),
 * tests/attack/bad_input.c sends it over a socket to a real server in the test host. A row
 * that both can run pins the same answer at both layers; a row only one can run says so in its
 * flags, and why in its comment.
 *
 * Every row runs against the same state: the server's token is REFUSED_TOKEN, and the injection
 * REFUSED_PRE ("attack.pre") is enabled with the parameters {"k":"v","n":7}. A request carries
 * "Host: 127.0.0.1:{PORT}" and "Authorization: Bearer <REFUSED_TOKEN>" unless its flags say
 * otherwise, and {PORT} in its target and headers is the server's port (the pure driver's is
 * REFUSED_PURE_PORT). Afterwards the state must be what it was before, except for the one name
 * a control row enables. A few control rows show the boundary from the good side (a 255-byte
 * name, a body of exactly 1 MiB, "%2F" that is part of a name).
 */
#ifndef ERRINJ_TESTLIB_REFUSED_H
#define ERRINJ_TESTLIB_REFUSED_H

#include "net.h"

#include <stdbool.h>
#include <stddef.h>

#define REFUSED_TOKEN "attack-token"
#define REFUSED_PRE "attack.pre"
#define REFUSED_PRE_PARAMS "{\"k\":\"v\",\"n\":7}"
#define REFUSED_PURE_PORT 10000
#define REFUSED_ONE_MIB (1024 * 1024)

/* The body a row sends. */
enum refused_body {
    REFUSED_BODY_TEXT,               /* .body (.body_len, or strlen), or none */
    REFUSED_BODY_MIB_PLUS_1,         /* 1 MiB + 1 bytes */
    REFUSED_BODY_MIB_PLUS_1_CHUNKED, /* the same, sent with Transfer-Encoding: chunked */
    REFUSED_BODY_MIB_EXACT_JSON,     /* a JSON object of exactly 1 MiB: {"k":"vvv...v"} */
    REFUSED_BODY_DEEP_JSON,          /* 5000 '[': past jansson's nesting limit */
};

enum refused_flags {
    REFUSED_NO_HOST = 1 << 0,      /* no default Host header (the row brings its own, or none) */
    REFUSED_NO_AUTH = 1 << 1,      /* no Authorization header with the right token */
    REFUSED_ALLOW_REMOTE = 1 << 2, /* the server runs with allow_remote: pure driver only */
    REFUSED_PURE_ONLY = 1 << 3,    /* a request no socket can carry to the router as it is */
};

struct refused {
    const char *what;   /* the bad input, in words */
    const char *method; /* method and target ({PORT} replaced); query after '?' as sent */
    const char *target;
    const char *headers; /* more header lines, each ending in "\r\n" ({PORT} replaced) */
    unsigned flags;
    const char *body;
    size_t body_len; /* when the body has NUL bytes */
    enum refused_body gen;
    /* Raw bytes: the whole request as it travels ({PORT}, {HOST}, {AUTH} replaced), for what
     * only a socket can send (NUL bytes, bad framing, not HTTP). The pure driver skips these. */
    const char *raw;
    size_t raw_len; /* when raw has NUL bytes */
    int status;     /* expected; 0: no HTTP reply (the server closed the connection) */
    const char *expect;  /* a substring of the error message (or of a 200 body); NULL: not checked */
    const char *enables; /* a control row that enables this name (and changes nothing else) */
    const char *header;  /* a header line the answer must have ("WWW-Authenticate: Bearer") */
    bool closes;         /* the server must close the connection after its answer */
};

extern const struct refused refused_requests[];
extern const size_t refused_count;

/* The row's body, generated or as written; always NUL-terminated (data never NULL). Pair with
 * free(out->data). */
void refused_body(const struct refused *row, struct net_buf *out);

/* Appends tpl[0, len) to out with {PORT}, {HOST} ("Host: 127.0.0.1:PORT\r\n") and {AUTH} (the
 * Authorization line with REFUSED_TOKEN) replaced. */
void refused_expand(const char *tpl, size_t len, unsigned port, struct net_buf *out);

#endif
