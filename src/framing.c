/*
 * framing.c - request-line and message-length checks (see framing.h).
 *
 * libmicrohttpd parses the request line in place: it writes a NUL over the space after the method
 * and over the last space before the version, so method, URI and version are consecutive strings
 * in one buffer. A request line without a NUL of its own therefore has the URI start right after
 * the method's terminator (give or take the extra spaces libmicrohttpd tolerates) and the version
 * right after the URI's; any other layout means a NUL the client sent.
 */
#define _GNU_SOURCE
#include "framing.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

bool errinj__request_line_has_nul(const struct errinj__request_line *line, const char *method, const char *version)
{
    if (line->uri == NULL || method == NULL || version == NULL)
        return true;
    /* Method, then libmicrohttpd's NUL, then only spaces up to the URI. */
    const char *p = method + strlen(method);
    if (p >= line->uri)
        return true;
    for (p++; p < line->uri; p++)
        if (*p != ' ')
            return true;
    /* The URI up to its first NUL, then libmicrohttpd's NUL, then the version. Only addresses
     * are compared here: nothing past the URI's own NUL is read, since the URI may end its
     * buffer (the version then lies elsewhere, which is a NUL the client sent). */
    return line->uri + line->uri_len + 1 != version;
}

struct lengths {
    unsigned content_length;
    const char *first_length;
    bool lengths_differ;
    unsigned transfer_encoding;
    const char *coding;
};

static enum MHD_Result collect_lengths(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct lengths *l = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (l->content_length++ == 0)
            l->first_length = value;
        else if (strcmp(l->first_length, value) != 0)
            l->lengths_differ = true;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        l->transfer_encoding++;
        l->coding = value;
    }
    return MHD_YES;
}

/* True for "chunked", the one transfer coding libmicrohttpd decodes (spaces around allowed). */
static bool is_chunked(const char *coding)
{
    coding += strspn(coding, " \t");
    size_t n = strlen(coding);
    while (n > 0 && (coding[n - 1] == ' ' || coding[n - 1] == '\t'))
        n--;
    return n == 7 && strncasecmp(coding, "chunked", 7) == 0;
}

int errinj__framing_check(struct MHD_Connection *conn, const struct errinj__request_line *line, const char *method,
                          const char *version, const char **why)
{
    if (errinj__request_line_has_nul(line, method, version)) {
        *why = "the request line contains a NUL byte";
        return 400;
    }
    struct lengths l = {0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_lengths, &l);
    if (l.content_length > 0 && l.transfer_encoding > 0) {
        *why = "Content-Length and Transfer-Encoding together";
        return 400;
    }
    if (l.lengths_differ) {
        *why = "two different Content-Length headers";
        return 400;
    }
    if (l.transfer_encoding > 1 || (l.transfer_encoding == 1 && !is_chunked(l.coding))) {
        *why = "unsupported transfer coding; only chunked is implemented";
        return 501;
    }
    return 0;
}
