/*
 * mhd_dispatch.c - answering a request with what the REST layer made of it.
 *
 * http.c turns a request into a reply without touching a socket; the reply says what kind of
 * answer it is, and this file turns each kind into libmicrohttpd calls: a plain reply with its
 * headers, an SSE stream (mhd_sse.c), or a server-side wait, whose connection is suspended until
 * wait.c has its answer (no thread waits). A new kind of answer (a protocol upgrade, say) is one
 * more case in errinj__mhd_dispatch() and a file of its own beside mhd_sse.c.
 */
#include "server.h"

#include <stdio.h>

enum MHD_Result errinj__mhd_queue_reply(struct MHD_Connection *conn, const struct errinj__http_reply *reply)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(reply->body_len, reply->body != NULL ? reply->body : "",
                                        MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, reply->content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                            reply->cache_control != NULL ? reply->cache_control : "no-store");
    if (reply->etag != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, reply->etag);
    if (reply->csp != NULL) {
        MHD_add_response_header(resp, "Content-Security-Policy", reply->csp);
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    }
    if (reply->allow != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, reply->allow);
    if (reply->auth_challenge)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (reply->close_connection)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (reply->has_seq) {
        char seq[24];
        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)reply->seq);
        MHD_add_response_header(resp, "Errinj-Seq", seq);
    }
    if (reply->warning != NULL)
        MHD_add_response_header(resp, "Errinj-Warning", reply->warning);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)reply->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- server-side waits ----------------------------------------------------------------------- */

void errinj__mhd_resume(void *conn)
{
    MHD_resume_connection(conn);
}

enum MHD_Result errinj__mhd_answer_wait(struct errinj_server *srv, struct MHD_Connection *conn,
                                        struct request_state *st)
{
    pthread_mutex_lock(&srv->mu);
    if (errinj__waiter_gone(st->waiter)) {
        /* Its client left: end the request without an answer; the completion callback forgets
         * the waiter, which frees its slot. */
        pthread_mutex_unlock(&srv->mu);
        return MHD_NO;
    }
    if (!errinj__waiter_done(st->waiter)) {
        errinj__waiter_suspended(st->waiter);
        MHD_suspend_connection(conn);
        pthread_mutex_unlock(&srv->mu);
        return MHD_YES;
    }
    struct errinj__http_reply reply;
    errinj__waiter_answer(srv->waits, st->waiter, &reply);
    st->waiter = NULL;
    pthread_mutex_unlock(&srv->mu);
    enum MHD_Result ret = errinj__mhd_queue_reply(conn, &reply);
    errinj__http_reply_free(&reply);
    return ret;
}

/* The connection guard saw the client of a held wait close its socket (server thread). */
static void wait_hangup(void *arg)
{
    struct request_state *st = arg;
    struct errinj_server *srv = st->srv;
    pthread_mutex_lock(&srv->mu);
    if (st->waiter != NULL)
        errinj__waiter_hangup(srv->waits, st->waiter);
    pthread_mutex_unlock(&srv->mu);
}

/* Starts a wait: answered now when the history settles it, else the connection is suspended
 * and the server thread resumes it once the answer is ready (no thread waits). */
static enum MHD_Result start_wait(struct errinj_server *srv, struct MHD_Connection *conn, struct request_state *st,
                                  struct errinj__http_reply *reply)
{
    pthread_mutex_lock(&srv->mu);
    if (srv->stopping) {
        pthread_mutex_unlock(&srv->mu);
        errinj__http_error(reply, 503, "server is stopping");
        return errinj__mhd_queue_reply(conn, reply);
    }
    struct errinj__history_view h = errinj__history_view_of(&srv->history);
    st->waiter = errinj__wait_start(srv->waits, &h, &reply->wait_query, conn, errinj__now_mono_ns(), reply);
    pthread_mutex_unlock(&srv->mu);
    if (st->waiter == NULL)
        return errinj__mhd_queue_reply(conn, reply);
    /* Waits count against max_subscribers: out of the REST budget, which would shed them, and
     * watched, so that a client that leaves frees its slot at once, not at the wait's timeout. */
    st->srv = srv;
    if (errinj__conns_park(srv->conns, errinj__conns_of(conn), wait_hangup, st) != 0)
        errinj__log("errinj server: cannot watch a wait's socket; it holds its slot until its answer");
    return errinj__mhd_answer_wait(srv, conn, st);
}

/* ---- the dispatch ------------------------------------------------------------------------ */

enum MHD_Result errinj__mhd_dispatch(struct errinj_server *srv, struct MHD_Connection *conn,
                                     struct request_state *st, struct errinj__http_reply *reply)
{
    if (reply->stream)
        return errinj__sse_start(srv, conn, reply);
    if (reply->websocket)
        return errinj__mhd_ws_start(srv, conn, st, reply);
    if (reply->wait)
        return start_wait(srv, conn, st, reply);
    return errinj__mhd_queue_reply(conn, reply);
}
