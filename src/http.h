/*
 * http.h - the REST API as a pure function of a request, so it can be fuzzed without a socket.
 *
 * http.c owns the routes: it parses a request already framed by the server (method, path,
 * query, headers, body) and fills a reply; a reply that starts an SSE stream or a server-side
 * wait carries what the stream or the wait asked for, for the server to take.
 */
#ifndef ERRINJ_HTTP_H
#define ERRINJ_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ERRINJ__BODY_MAX (1024 * 1024)
#define ERRINJ__QUERY_MAX 64

struct errinj__query_arg {
    const char *key;   /* raw, percent-encoded */
    const char *value; /* raw, percent-encoded; NULL for a key without '=' */
};

struct errinj__http_request {
    const char *method;
    const char *path; /* raw, percent-encoded, without the query */
    const struct errinj__query_arg *query;
    size_t query_count; /* more than ERRINJ__QUERY_MAX is refused */
    const char *(*header)(void *ctx, const char *name); /* case-insensitive lookup, NULL if absent */
    void *header_ctx;
    const char *body;
    size_t body_len;
    bool body_too_large;
};

/* What an SSE subscriber asked for. */
struct errinj__filter {
    char **injections; /* NULL-terminated, or NULL for any */
    unsigned types;    /* bit per errinj_type; 0 = any */
    unsigned phases;   /* bit per phase */
    long long shard;   /* -1 = any */
    long long since;   /* replay after this seq; -1 = live only */
};
void errinj__filter_free(struct errinj__filter *f);
/* Whether the event in a history frame is one the subscriber asked for (SSE and WebSocket alike). */
struct frame;
bool errinj__filter_passes(const struct errinj__filter *f, const struct frame *fr);

/* What a server-side wait (GET .../injection/{name}/wait) asked for. */
#define ERRINJ__WAIT_COUNT_MAX 10000
#define ERRINJ__WAIT_TIMEOUT_MAX_MS (3600ll * 1000)
struct errinj__wait_query {
    char *name;          /* decoded, malloc'd */
    unsigned phases;     /* bit per phase */
    uint64_t count;      /* events wanted, 1 to ERRINJ__WAIT_COUNT_MAX */
    uint64_t after;      /* only events with a higher seq */
    int64_t timeout_ms;  /* 0 to ERRINJ__WAIT_TIMEOUT_MAX_MS */
};

struct errinj__http_reply {
    int status;
    char *body; /* malloc'd or NULL */
    size_t body_len;
    const char *content_type;
    const char *allow;           /* for 405: the Allow header */
    const char *cache_control;   /* NULL: "no-store" */
    const char *etag;            /* the dashboard's files: ETag and Content-Security-Policy */
    const char *csp;
    bool auth_challenge;         /* a 401: WWW-Authenticate: Bearer */
    bool close_connection;       /* Connection: close (the request's framing cannot be trusted) */
    bool stream;                 /* start an SSE stream with `filter` */
    bool websocket;              /* upgrade to a WebSocket session (ws.h) with `filter` */
    struct errinj__filter filter; /* owned by the reply until taken */
    bool has_seq;                /* send Errinj-Seq: seq (an enable's answer) */
    uint64_t seq;
    char *warning;               /* Errinj-Warning, malloc'd, or NULL */
    bool wait;                   /* start a server-side wait with `wait_query` */
    struct errinj__wait_query wait_query; /* owned by the reply until taken */
};

/* What the router needs to know of the server. */
struct errinj__http_config {
    const char *token;
    bool allow_remote;
    void (*status)(void *ctx, unsigned *subscribers, uint64_t *dropped); /* may be NULL */
    void *status_ctx;
};

void errinj__http_handle(const struct errinj__http_config *cfg, const struct errinj__http_request *req,
                         struct errinj__http_reply *reply);
void errinj__http_reply_free(struct errinj__http_reply *reply);
/* Routes a request that needs no cross-origin or token check (a command of an authorized
 * WebSocket session): the same validation and effects as over HTTP. */
void errinj__http_route_trusted(const struct errinj__http_request *req, struct errinj__http_reply *reply);
/* Sets reply to a JSON error {"message","code"}. */
void errinj__http_error(struct errinj__http_reply *reply, int status, const char *message);

#endif /* ERRINJ_HTTP_H */
