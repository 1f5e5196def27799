/*
 * mhd_sse.c - SSE stream responses: GET /v2/error_injection/events as libmicrohttpd sees it.
 *
 * A stream is a response whose content reader asks its cursor (stream.c) for bytes. When there
 * is nothing to send, the reader suspends the connection before returning 0: returning 0 from a
 * content reader without suspending makes libmicrohttpd call it again at once and spin. The
 * server thread resumes the suspended streams when it stored new events, when a heartbeat is
 * due, and when the connection guard saw the client close its socket (a suspended connection
 * notices nothing by itself), so a slot is freed at once rather than at the next heartbeat.
 * Resuming a connection that is not suspended is not allowed; `suspended` tracks it under mu.
 */
#include "server.h"

#include <stdlib.h>

void errinj__sse_resume_all_locked(struct errinj_server *srv)
{
    for (struct sse_client *c = srv->clients; c != NULL; c = c->next) {
        if (c->suspended) {
            c->suspended = false;
            MHD_resume_connection(c->conn);
        }
    }
}

void errinj__sse_ping_all(struct errinj_server *srv)
{
    pthread_mutex_lock(&srv->mu);
    for (struct sse_client *c = srv->clients; c != NULL; c = c->next)
        c->stream.ping_due = true;
    errinj__sse_resume_all_locked(srv);
    pthread_mutex_unlock(&srv->mu);
}

bool errinj__sse_delivered_locked(const struct errinj_server *srv, uint64_t seq)
{
    for (const struct sse_client *c = srv->clients; c != NULL; c = c->next)
        if (!errinj__stream_delivered(&c->stream, seq))
            return false;
    return true;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct sse_client *c = cls;
    struct errinj_server *srv = c->srv;
    pthread_mutex_lock(&srv->mu);
    if (c->peer_gone) {
        /* The client closed its socket: end the connection now rather than at the next write. */
        pthread_mutex_unlock(&srv->mu);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    struct errinj__history_view h = errinj__history_view_of(&srv->history);
    ssize_t n = errinj__stream_read(&c->stream, &h, srv->stopping, buf, max);
    if (n == 0) {
        /* Nothing to send: suspend until the server thread has news (never return 0 otherwise). */
        c->suspended = true;
        MHD_suspend_connection(c->conn);
    }
    pthread_mutex_unlock(&srv->mu);
    return n == ERRINJ__STREAM_END ? MHD_CONTENT_READER_END_OF_STREAM : n;
}

/* The connection guard saw the client of a stream close its socket (server thread). */
static void stream_hangup(void *arg)
{
    struct sse_client *c = arg;
    struct errinj_server *srv = c->srv;
    pthread_mutex_lock(&srv->mu);
    c->peer_gone = true;
    if (c->suspended) {
        c->suspended = false;
        MHD_resume_connection(c->conn);
    }
    pthread_mutex_unlock(&srv->mu);
}

static void stream_free(void *cls)
{
    struct sse_client *c = cls;
    struct errinj_server *srv = c->srv;
    errinj__conns_stream_ended(c->rec);
    pthread_mutex_lock(&srv->mu);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    srv->client_count--;
    errinj__stream_fini(&c->stream); /* frame reference counts are guarded by mu */
    pthread_mutex_unlock(&srv->mu);
    free(c);
}

enum MHD_Result errinj__sse_start(struct errinj_server *srv, struct MHD_Connection *conn,
                                  struct errinj__http_reply *reply)
{
    struct sse_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        errinj__http_error(reply, 500, "out of memory");
        return errinj__mhd_queue_reply(conn, reply);
    }
    c->srv = srv;
    c->conn = conn;
    pthread_mutex_lock(&srv->mu);
    if (srv->client_count + errinj__ws_count(srv->ws) >= srv->max_subscribers || srv->stopping) {
        pthread_mutex_unlock(&srv->mu);
        free(c);
        errinj__http_error(reply, 503, srv->stopping ? "server is stopping" : "too many subscribers");
        return errinj__mhd_queue_reply(conn, reply);
    }
    /* Registered before ": connected" is written, from the last seq published (not just stored):
     * whatever fires after the client reads it has a seq above this cursor, and nothing fired
     * before it is sent late. */
    errinj__stream_init(&c->stream, &reply->filter, errinj__seq_last());
    c->next = srv->clients;
    if (srv->clients != NULL)
        srv->clients->prev = c;
    srv->clients = c;
    srv->client_count++;
    pthread_mutex_unlock(&srv->mu);
    /* Watched from now on: a client that leaves frees its slot without waiting for a heartbeat. */
    c->rec = errinj__conns_of(conn);
    if (errinj__conns_make_stream(srv->conns, &c->rec, stream_hangup, c) != 0)
        errinj__log("errinj server: cannot watch a stream's socket; the heartbeat will find it closed");

    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, stream_read, c, stream_free);
    if (resp == NULL) {
        stream_free(c);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}
