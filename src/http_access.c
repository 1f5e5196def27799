/*
 * http_access.c - who may call the REST API: a loopback Host unless remote access is allowed,
 * an Origin that is the server's own, and the bearer token when one is set.
 *
 * A browser page from elsewhere can send requests to a loopback port (DNS rebinding, or a plain
 * cross-origin fetch), so the Host and Origin checks run before anything else; the token is
 * compared in time that does not depend on where it differs.
 */
#include "http_routes.h"

#include <string.h>
#include <strings.h>

/* ---- security checks ------------------------------------------------------------------- */

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

