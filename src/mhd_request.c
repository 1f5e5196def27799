/*
 * mhd_request.c - reading a request: libmicrohttpd's callbacks from the request line to the
 * end of the body, and the limits applied on the way.
 *
 * libmicrohttpd calls, for each request: the URI log callback with the raw request URI (which
 * makes the request's state), the access handler once the head is complete (where the framing
 * checks run, before any body is read), again for each piece of body, and once more with no
 * body left (where http.c makes the reply and mhd_dispatch.c sends it), then the completion
 * callback. A body over 1 MiB is read and thrown away, then answered 413, so that the client
 * gets a JSON answer rather than a reset. Paths and queries stay percent-encoded: http.c
 * decodes names itself, so that "%2F" is part of a name rather than a path separator.
 */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Called by libmicrohttpd with the request line's URI before anything else (and before it splits
 * off the query); what it returns is the request's *con_cls. Only the URI's own bytes are read:
 * where it lies is all the framing check needs. */
void *errinj__mhd_on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls, (void)conn;
    struct request_state *st = calloc(1, sizeof(*st));
    if (st != NULL)
        st->line = (struct errinj__request_line){uri, strlen(uri)};
    return st;
}

struct query_collect {
    struct errinj__query_arg args[ERRINJ__QUERY_MAX + 1];
    size_t count;
};

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct query_collect *q = cls;
    if (q->count <= ERRINJ__QUERY_MAX)
        q->args[q->count] = (struct errinj__query_arg){key, value};
    q->count++;
    return MHD_YES;
}

static const char *lookup_header(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

/* The head is complete: a request whose line or length cannot be trusted is answered before its
 * body is read, and the connection closed, since what follows on it could be anything. */
static enum MHD_Result check_head(struct MHD_Connection *conn, struct request_state *st, const char *method,
                                  const char *version)
{
    errinj__conns_head_done(errinj__conns_of(conn));
    const char *why = NULL;
    int bad = errinj__framing_check(conn, &st->line, method, version, &why);
    if (bad == 0)
        return MHD_YES;
    struct errinj__http_reply refusal = {0};
    errinj__http_error(&refusal, bad, why);
    refusal.close_connection = true;
    enum MHD_Result ret = errinj__mhd_queue_reply(conn, &refusal);
    errinj__http_reply_free(&refusal);
    return ret;
}

/* Keeps up to the body limit and discards the rest, so that the end can answer 413. */
static enum MHD_Result take_body(struct request_state *st, const char *data, size_t *size)
{
    size_t n = *size;
    if (!st->too_large && st->len + n <= ERRINJ__BODY_MAX) {
        char *grown = realloc(st->body, st->len + n);
        if (grown == NULL)
            return MHD_NO;
        st->body = grown;
        memcpy(st->body + st->len, data, n);
        st->len += n;
    } else {
        st->too_large = true;
        free(st->body);
        st->body = NULL;
        st->len = 0;
    }
    *size = 0;
    return MHD_YES;
}

enum MHD_Result errinj__mhd_on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                       const char *version, const char *upload_data, size_t *upload_data_size,
                                       void **con_cls)
{
    struct errinj_server *srv = cls;
    struct request_state *st = *con_cls;
    if (st == NULL)
        return MHD_NO; /* out of memory in on_uri */
    if (!st->started) {
        st->started = true;
        return check_head(conn, st, method, version);
    }
    if (st->waiter != NULL)
        return errinj__mhd_answer_wait(srv, conn, st);
    if (*upload_data_size > 0)
        return take_body(st, upload_data, upload_data_size);
    struct query_collect q = {.count = 0};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_query, &q);
    struct errinj__http_request req = {
        .method = method,
        .path = url,
        .query = q.args,
        .query_count = q.count,
        .header = lookup_header,
        .header_ctx = conn,
        .body = st->body != NULL ? st->body : "",
        .body_len = st->len,
        .body_too_large = st->too_large,
    };
    struct errinj__http_reply reply;
    errinj__http_handle(&srv->http, &req, &reply);
    enum MHD_Result ret = errinj__mhd_dispatch(srv, conn, st, &reply);
    errinj__http_reply_free(&reply);
    return ret;
}

void errinj__mhd_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    struct errinj_server *srv = cls;
    errinj__conns_unpark(errinj__conns_of(conn)); /* before st, its hang-up's argument, is freed */
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        errinj__conns_request_done(srv->conns, errinj__conns_of(conn));
    struct request_state *st = *con_cls;
    if (st != NULL && st->waiter != NULL) {
        pthread_mutex_lock(&srv->mu);
        errinj__waiter_abandon(srv->waits, st->waiter);
        pthread_mutex_unlock(&srv->mu);
    }
    if (st != NULL && st->ws_pending != NULL)
        errinj__ws_abandon(srv->ws, st->ws_pending); /* its 101 never went out */
    if (st != NULL) {
        free(st->body);
        free(st);
        *con_cls = NULL;
    }
}

/* Keeps the path and query exactly as sent (see the top of this file). */
size_t errinj__mhd_keep_escaped(void *cls, struct MHD_Connection *conn, char *uri)
{
    (void)cls, (void)conn;
    return strlen(uri);
}

/* libmicrohttpd reports every client that leaves mid-stream, which is normal for event streams:
 * its messages reach stderr only with ERRINJ_DEBUG set. Start failures are error codes anyway. */
void errinj__mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (getenv("ERRINJ_DEBUG") == NULL)
        return;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    errinj__log("errinj server: %s", line);
}
