/*
 * mhd_ws.c - the WebSocket upgrade as libmicrohttpd answers it: the handshake checked (RFC 6455
 * section 4.2.1; nettle hashes the accept key), the subscriber limit applied (streams and
 * sessions share max_subscribers), the session registered with ws.c, and the 101 queued. From
 * the 101 on the session is ws.c's.
 */
#include "server.h"
#include "ws.h"

#include <nettle/base64.h>
#include <nettle/sha1.h>

#include <string.h>
#include <strings.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* True when the comma-separated list has token (case-insensitive when nocase). */
static bool list_has(const char *list, const char *token, bool nocase)
{
    size_t tlen = strlen(token);
    for (const char *p = list; p != NULL && *p != '\0';) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m > 0 && (p[m - 1] == ' ' || p[m - 1] == '\t'))
            m--;
        if (m == tlen && (nocase ? strncasecmp(p, token, tlen) : strncmp(p, token, tlen)) == 0)
            return true;
        p += n;
    }
    return false;
}

/*
 * Checks a WebSocket handshake's headers (RFC 6455 section 4.2.1): Upgrade, Connection,
 * Sec-WebSocket-Version 13 and a 16-byte Sec-WebSocket-Key. On success returns 0 with the
 * Sec-WebSocket-Accept value in accept (NUL-terminated) and *with_protocol true when the client
 * offered the subprotocol "errinj" (to be echoed). Otherwise returns 400 or 426 (another
 * version) with a static reason in *why. Pure: header(ctx, name) is the request's lookup.
 */
static int ws_handshake(const char *(*header)(void *ctx, const char *name), void *ctx, char accept[29],
                        bool *with_protocol, const char **why)
{
    const char *upgrade = header(ctx, "Upgrade");
    const char *connection = header(ctx, "Connection");
    const char *version = header(ctx, "Sec-WebSocket-Version");
    const char *key = header(ctx, "Sec-WebSocket-Key");
    const char *protocols = header(ctx, "Sec-WebSocket-Protocol");
    if (upgrade == NULL || !list_has(upgrade, "websocket", true) || connection == NULL ||
        !list_has(connection, "upgrade", true)) {
        *why = "a WebSocket handshake needs Upgrade: websocket and Connection: Upgrade";
        return 400;
    }
    if (version == NULL || strcmp(version, "13") != 0) {
        *why = "Sec-WebSocket-Version must be 13";
        return 426;
    }
    struct base64_decode_ctx b64;
    uint8_t raw[BASE64_DECODE_LENGTH(24) + 1];
    size_t raw_len = sizeof(raw);
    base64_decode_init(&b64);
    if (key == NULL || strlen(key) != 24 || !base64_decode_update(&b64, &raw_len, raw, 24, key) ||
        !base64_decode_final(&b64) || raw_len != 16) {
        *why = "Sec-WebSocket-Key must be 16 bytes in base64";
        return 400;
    }
    *with_protocol = protocols != NULL && list_has(protocols, "errinj", false);
    if (protocols != NULL && protocols[strspn(protocols, " \t,")] != '\0' && !*with_protocol) {
        *why = "the only subprotocol is errinj (offer it beside errinj.bearer.TOKEN)";
        return 400;
    }
    struct sha1_ctx sha;
    uint8_t digest[SHA1_DIGEST_SIZE];
    sha1_init(&sha);
    sha1_update(&sha, 24, (const uint8_t *)key);
    sha1_update(&sha, sizeof(WS_GUID) - 1, (const uint8_t *)WS_GUID);
    sha1_digest(&sha, SHA1_DIGEST_SIZE, digest);
    base64_encode_raw(accept, SHA1_DIGEST_SIZE, digest);
    accept[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = '\0';
    return 0;
}

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
    int bad = ws_handshake(lookup_header, conn, accept, &with_protocol, &why);
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
