/*
 * mhd_ws.c - the WebSocket upgrade as libmicrohttpd answers it: the handshake checked, the
 * subscriber limit applied (streams and sessions share max_subscribers), the session registered
 * with ws.c, and the 101 queued. From the 101 on the session is ws.c's.
 */
#include "server.h"
#include "ws.h"

static const char *lookup_header(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

enum MHD_Result errinj__mhd_ws_start(struct errinj_server *srv, struct MHD_Connection *conn, struct request_state *st,
                                     struct errinj__http_reply *reply)
{
    char accept[29];
    bool with_protocol = false;
    const char *why = NULL;
    int bad = errinj__ws_handshake(lookup_header, conn, accept, &with_protocol, &why);
    pthread_mutex_lock(&srv->mu);
    bool full = srv->client_count + errinj__ws_count(srv->ws) >= srv->max_subscribers;
    pthread_mutex_unlock(&srv->mu);
    if (bad != 0 || full) {
        errinj__http_error(reply, bad != 0 ? bad : 503, bad != 0 ? why : "too many subscribers");
        return errinj__mhd_queue_reply(conn, reply);
    }
    struct MHD_Response *resp = errinj__ws_open(srv->ws, &reply->filter, accept, with_protocol, &st->ws_pending, reply);
    if (resp == NULL)
        return errinj__mhd_queue_reply(conn, reply);
    errinj__conns_park(srv->conns, errinj__conns_of(conn), NULL, NULL); /* out of the REST budget, as streams are */
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    MHD_destroy_response(resp);
    return ret;
}
