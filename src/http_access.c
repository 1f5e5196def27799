/*
 * http_access.c - who may call the REST API: a loopback Host unless remote access is allowed,
 * an Origin that is the server's own, and the bearer token when one is set.
 *
 * A browser page from elsewhere can send requests to a loopback port (DNS rebinding, or a plain
 * cross-origin fetch), so the Host and Origin checks run before anything else; the token is
 * compared in time that does not depend on where it differs.
 */
#include "http_routes.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

/* ---- security checks ------------------------------------------------------------------- */

/* True when the Host header names a loopback host: localhost, 127.0.0.0/8 or [::1]. */
bool errinj__http_host_is_loopback(const char *host)
{
    char name[256];
    size_t len;
    if (host[0] == '[') {
        const char *end = strchr(host, ']');
        if (end == NULL || (size_t)(end - host - 1) >= sizeof(name))
            return false;
        len = (size_t)(end - host - 1);
        memcpy(name, host + 1, len);
        name[len] = '\0';
        struct in6_addr a6;
        return inet_pton(AF_INET6, name, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6) &&
               (end[1] == '\0' || end[1] == ':');
    }
    const char *colon = strchr(host, ':');
    len = colon != NULL ? (size_t)(colon - host) : strlen(host);
    if (len == 0 || len >= sizeof(name))
        return false;
    memcpy(name, host, len);
    name[len] = '\0';
    if (strcasecmp(name, "localhost") == 0)
        return true;
    struct in_addr a4;
    return inet_pton(AF_INET, name, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* A browser names the page's origin; only a page served from this very host:port may call us. */
bool errinj__http_origin_allowed(const char *origin, const char *host)
{
    if (origin == NULL)
        return true;
    if (host == NULL || strncasecmp(origin, "http://", 7) != 0)
        return false;
    return strcasecmp(origin + 7, host) == 0;
}

/* Compares in time that depends only on the expected token's length. */
static bool token_matches(const char *expected, const char *given)
{
    size_t elen = strlen(expected), glen = strlen(given);
    unsigned char diff = (unsigned char)(elen != glen);
    for (size_t i = 0; i < elen; i++)
        diff |= (unsigned char)(expected[i] ^ (i < glen ? given[i] : 0));
    return diff == 0;
}

bool errinj__http_authorized(const char *token, const char *authorization)
{
    if (token == NULL || token[0] == '\0')
        return true;
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return false;
    return token_matches(token, authorization + 7);
}

/* A browser cannot set Authorization on a WebSocket, so the WebSocket's handshake may carry the
 * token as the subprotocol "errinj.bearer.TOKEN" of its Sec-WebSocket-Protocol list (never in
 * the URL, which logs and the Referer keep). The server echoes only "errinj". */
bool errinj__http_subprotocol_authorized(const char *token, const char *protocols)
{
    static const char prefix[] = "errinj.bearer.";
    char given[512];
    if (token == NULL || token[0] == '\0')
        return true;
    for (const char *p = protocols; p != NULL && *p != '\0';) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m > 0 && (p[m - 1] == ' ' || p[m - 1] == '\t'))
            m--;
        if (m > sizeof(prefix) - 1 && m - (sizeof(prefix) - 1) < sizeof(given) &&
            strncmp(p, prefix, sizeof(prefix) - 1) == 0) {
            memcpy(given, p + sizeof(prefix) - 1, m - (sizeof(prefix) - 1));
            given[m - (sizeof(prefix) - 1)] = '\0';
            if (token_matches(token, given))
                return true;
        }
        p += n;
    }
    return false;
}

